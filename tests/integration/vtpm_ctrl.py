#!/usr/bin/env python3
"""vtpm_ctrl.py - a client of swtpm's control channel for the vTPM tests.

  vtpm_ctrl.py CHAN init [FLAGS]        CMD_INIT; prints the result in hex
  vtpm_ctrl.py CHAN stop|shutdown|storevol|caps|config
  vtpm_ctrl.py CHAN lock RETRIES        CMD_LOCK_STORAGE
  vtpm_ctrl.py CHAN get TYPE FILE       CMD_GET_STATEBLOB (decrypted) into FILE
  vtpm_ctrl.py CHAN set TYPE FILE       CMD_SET_STATEBLOB with FILE's octets
  vtpm_ctrl.py CHAN tpm HEX             CMD_SET_DATAFD with a fresh socketpair,
                                        one TPM command over it; prints the answer
  vtpm_ctrl.py CHAN bridge              CMD_SET_DATAFD, then relays TPM traffic
                                        between stdin/stdout and the socketpair
                                        (tpm2-tools -T "cmd:vtpm_ctrl.py CHAN bridge")
  vtpm_ctrl.py unframe WIREBLOB OUT     the libtpms blob inside a plain wire blob
  vtpm_ctrl.py frame BLOB OUT           a plain wire blob around a libtpms blob
CHAN is tcp:PORT or unix:PATH.  Integers on the wire are big-endian
(swtpm's tpm_ioctl.h); the framing is swtpm's (docs/VTPM.md).
"""
import os
import socket
import struct
import sys
import threading


def connect(chan):
    kind, _, rest = chan.partition(":")
    if kind == "tcp":
        s = socket.create_connection(("127.0.0.1", int(rest)))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(rest)
    s.settimeout(30)
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed after %d of %d octets" % (len(b), n))
        b += c
    return b


def be32(v):
    return struct.pack(">I", v)


def res(s):
    return struct.unpack(">I", recv_exact(s, 4))[0]


def set_datafd(s):
    import time
    for _ in range(50):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        socket.send_fds(s, [be32(0x10)], [b.fileno()])
        b.close()
        r = res(s)
        if r != 0x1f:  # swtpm: an earlier data descriptor is still attached
            break
        a.close()
        time.sleep(0.1)
    if r:
        sys.exit("CMD_SET_DATAFD failed: 0x%x" % r)
    return a


def main():
    if sys.argv[1] == "unframe":
        b = open(sys.argv[2], "rb").read()
        assert b[0] == 2 and struct.unpack(">H", b[4:6])[0] == 4, "not a plain wire blob"
        tag, ln = struct.unpack(">HI", b[16:22])
        assert tag == 1
        open(sys.argv[3], "wb").write(b[22:22 + ln])
        return
    if sys.argv[1] == "frame":
        d = open(sys.argv[2], "rb").read()
        inner = struct.pack(">HI", 1, len(d)) + d
        body = struct.pack(">HI", 4, len(inner)) + inner
        open(sys.argv[3], "wb").write(struct.pack(">BBHHI", 2, 1, 10, 4, 10 + len(body)) + body)
        return
    chan, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    s = connect(chan)
    if cmd == "init":
        s.sendall(be32(2) + be32(int(args[0], 0) if args else 0))
        print("0x%x" % res(s))
    elif cmd in ("stop", "shutdown", "storevol"):
        s.sendall(be32({"stop": 0x0e, "shutdown": 3, "storevol": 0x0a}[cmd]))
        print("0x%x" % res(s))
    elif cmd == "caps":
        s.sendall(be32(1))
        r, caps = struct.unpack(">II", recv_exact(s, 8))
        print("0x%x 0x%x" % (r, caps))
    elif cmd == "config":
        s.sendall(be32(0x0f))
        r, flags = struct.unpack(">II", recv_exact(s, 8))
        print("0x%x 0x%x" % (r, flags))
    elif cmd == "lock":
        s.sendall(be32(0x13) + be32(int(args[0])))
        print("0x%x" % res(s))
    elif cmd == "get":
        s.sendall(be32(0x0c) + be32(1) + be32(int(args[0])) + be32(0))
        r, fl, tot, ln = struct.unpack(">IIII", recv_exact(s, 16))
        data = recv_exact(s, ln) if not r else b""
        open(args[1], "wb").write(data)
        print("0x%x %d" % (r, ln))
    elif cmd == "set":
        d = open(args[1], "rb").read()
        s.sendall(be32(0x0d) + be32(0) + be32(int(args[0])) + be32(len(d)))
        s.sendall(d)
        print("0x%x" % res(s))
    elif cmd == "tpm":
        a = set_datafd(s)
        a.sendall(bytes.fromhex(args[0]))
        h = recv_exact(a, 10)
        body = recv_exact(a, struct.unpack(">I", h[2:6])[0] - 10)
        print((h + body).hex())
    elif cmd == "bridge":
        a = set_datafd(s)

        def up():
            while True:
                d = os.read(0, 65536)
                if not d:
                    break
                a.sendall(d)
            a.shutdown(socket.SHUT_WR)
        threading.Thread(target=up, daemon=True).start()
        while True:
            d = a.recv(65536)
            if not d:
                break
            os.write(1, d)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
