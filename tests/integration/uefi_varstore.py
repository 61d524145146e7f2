#!/usr/bin/env python3
# uefi_varstore.py - an independent reader of edk2 varstore files for the
# UEFI tests (not a copy of the C parser: written from the edk2 header
# definitions).  Usage:
#   uefi_varstore.py check FILE       validate the layout, print "N variables"
#   uefi_varstore.py vars FILE        one line per live variable:
#                                     GUID:NAME attrs mono pubkey ts sha256(data)
import hashlib, struct, sys, uuid

AUTH_GUID = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792").bytes_le

def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)

def parse(path, strict):
    b = open(path, "rb").read()
    if b[0x28:0x2c] != b"_FVH":
        fail("no _FVH signature")
    fv_len, = struct.unpack_from("<Q", b, 0x20)
    if fv_len != len(b):
        fail("FvLength %d != file size %d" % (fv_len, len(b)))
    hl, = struct.unpack_from("<H", b, 0x30)
    s = sum(struct.unpack_from("<%dH" % (hl // 2), b, 0)) & 0xffff
    if s != 0:
        fail("FV header checksum: sum is 0x%04x, not 0" % s)
    so = hl
    if b[so:so + 16] != AUTH_GUID:
        fail("store signature is not gEfiAuthenticatedVariableGuid")
    size, fmt, state = struct.unpack_from("<IBB", b, so + 16)
    if fmt != 0x5a or state != 0xfe:
        fail("store not formatted/healthy: %02x %02x" % (fmt, state))
    end = so + size
    pos = (so + 28 + 3) & ~3
    out = []
    while pos + 60 <= end:
        sid, st, _, attrs, mono = struct.unpack_from("<HBBIQ", b, pos)
        if sid != 0x55aa:
            break
        ts = b[pos + 16:pos + 32]
        pk, ns, ds = struct.unpack_from("<III", b, pos + 32)
        guid = str(uuid.UUID(bytes_le=b[pos + 44:pos + 60]))
        if pos + 60 + ns + ds > end:
            fail("variable at %d runs past the store" % pos)
        name = b[pos + 60:pos + 60 + ns]
        if ns < 2 or ns % 2 or name[-2:] != b"\0\0":
            fail("variable at %d: bad name" % pos)
        name = name[:-2].decode("utf-16-le")
        data = b[pos + 60 + ns:pos + 60 + ns + ds]
        if strict and st != 0x3f:
            fail("exported variable %s in state 0x%02x" % (name, st))
        if st == 0x3f:
            out.append("%s:%s %d %d %d %s %s" % (guid, name, attrs, mono, pk, ts.hex(),
                                              hashlib.sha256(data).hexdigest()))
        pos = (pos + 60 + ns + ds + 3) & ~3
    if strict and any(x != 0xff for x in b[pos:end]):
        fail("store area after the last variable is not erased (0xFF)")
    return out

if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    v = parse(path, cmd == "check")
    if cmd == "check":
        print("%d variables" % len(v))
    else:
        print("\n".join(v))
