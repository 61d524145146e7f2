#!/usr/bin/env bash
# test_vtpm_tools.sh - blobstore-vtpm against tpm2-tools (tpm2-tss's swtpm
# TCTI over TCP on 127.0.0.1): startup, getrandom, createprimary and
# evictcontrol, NV define/write/read, PCR extend/read; the state survives a
# clean restart (a resume: PCRs too, even after a session of only NV
# define and write) and a kill -9 (a cold start: NV and persistent handles
# stay, PCRs reset, TPM_RC_INITIALIZE until TPM2_Startup); kill -9 in the middle of a loop of
# NV writes leaves one of the written values, never a torn one, and never
# loses a write that was acknowledged; the copy a killed compaction left
# beside the image is removed at start and logged; the control channel answers as
# swtpm's protocol says, and refuses malformed input.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
for t in tpm2_startup tpm2_nvwrite python3; do
	command -v $t >/dev/null || { echo "SKIP: needs tpm2-tools and python3"; exit 0; }
done
ls /usr/lib/*/libtss2-tcti-swtpm.so* >/dev/null 2>&1 ||
	{ echo "SKIP: needs libtss2-tcti-swtpm0 (tpm2-tools)"; exit 0; }

img=$tmp/vtpm.img
port=$(free_port_pair)
[ -n "$port" ] || fail "no free port pair"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
start() { vtpm_start --image "$img" --create --port "$port" --flags not-need-init "$@"; }
pcr16() { tpm2_pcrread sha256:16 | awk '/16:/ {print $2}'; }

echo "== fresh image: a TPM is manufactured"
start
tpm2_startup -c
[ "$(tpm2_getrandom 16 | wc -c)" -eq 16 ] || fail "getrandom did not return 16 octets"
tpm2_createprimary -Q -C o -g sha256 -G ecc -c "$tmp/primary.ctx"
tpm2_evictcontrol -Q -C o -c "$tmp/primary.ctx" 0x81000001
tpm2_nvdefine -Q 0x1500016 -C o -s 32 -a "ownerread|ownerwrite"
printf 'state kept in a blobstore image' >"$tmp/nv.in"
tpm2_nvwrite -Q 0x1500016 -C o -i "$tmp/nv.in"
tpm2_nvread -Q 0x1500016 -C o -s 31 -o "$tmp/nv.out"
cmp "$tmp/nv.in" "$tmp/nv.out" || fail "nvread differs from nvwrite"
digest=$(printf 'x' | sha256sum | cut -d' ' -f1)
tpm2_pcrextend "16:sha256=$digest"
want=$(python3 -c 'import hashlib,sys; print("0x"+hashlib.sha256(bytes(32)+bytes.fromhex(sys.argv[1])).hexdigest().upper())' "$digest")
[ "$(pcr16)" = "$want" ] || fail "PCR 16 is $(pcr16), expected $want"
grep -q 'state: store permall .*: ok' "$tmp/vtpm.log" || fail "no permall store logged"

echo "== clean restart (SIGTERM): a resume, PCRs included"
vtpm_stop TERM
$BLOBSTORE check "$img"
$BLOBSTORE list "$img" >"$tmp/list"
grep -q 'tpm2.libtpms *permall' "$tmp/list" || fail "no permall entry"
grep -q 'tpm2.libtpms *volatilestate' "$tmp/list" || fail "no volatilestate entry after SIGTERM"
start
grep -q 'resumed from the volatile state' "$tmp/vtpm.log" || fail "not resumed"
[ "$(pcr16)" = "$want" ] || fail "PCR 16 lost across a clean restart"
tpm2_nvread -Q 0x1500016 -C o -s 31 -o "$tmp/nv.out"
cmp "$tmp/nv.in" "$tmp/nv.out" || fail "NV data lost across a clean restart"
tpm2_getcap handles-persistent | grep -q 0x81000001 || fail "persistent handle lost"
$BLOBSTORE get "$img" tpm2.libtpms --name volatilestate -o "$tmp/vol"
[ ! -s "$tmp/vol" ] || fail "volatile state not consumed by the resume"

echo "== kill -9: a cold start; NV and persistent handles stay, PCRs reset"
vtpm_stop KILL
$BLOBSTORE check "$img"
start
# No volatile state left (the resume consumed it): the TPM waits for
# TPM2_Startup, as swtpm does after a crash.
tpm2_getrandom 8 >/dev/null 2>&1 && fail "a cold start answered before TPM2_Startup"
tpm2_startup -c
[ "$(pcr16)" = "0x0000000000000000000000000000000000000000000000000000000000000000" ] ||
	fail "PCR 16 not reset by a cold start"
tpm2_nvread -Q 0x1500016 -C o -s 31 -o "$tmp/nv.out"
cmp "$tmp/nv.in" "$tmp/nv.out" || fail "NV data lost across kill -9"
tpm2_getcap handles-persistent | grep -q 0x81000001 || fail "persistent handle lost across kill -9"
tpm2_readpublic -Q -c 0x81000001 -o "$tmp/pub" || fail "persistent key unusable"

echo "== kill -9 during a loop of NV writes"
tpm2_nvdefine -Q 0x1500017 -C o -s 8 -a "ownerread|ownerwrite"
n=120
quick && n=40
: >"$tmp/acked"
(
	for i in $(seq 1 $n); do
		v=$(printf 'v%07d' "$i")
		printf '%s' "$v" >"$tmp/try"
		tpm2_nvwrite -Q 0x1500017 -C o -i "$tmp/try" 2>/dev/null || exit 0
		echo "$v" >>"$tmp/acked"
	done
) &
writer=$!
# Kill once a few writes went through, at some point inside a write.
for _ in $(seq 1 200); do
	[ "$(wc -l <"$tmp/acked")" -ge 5 ] && break
	sleep 0.05
done
sleep 0.0$((RANDOM % 10))
vtpm_stop KILL
wait "$writer" || true
last_acked=$(tail -n 1 "$tmp/acked")
[ -n "$last_acked" ] || fail "no write was acknowledged before the kill"
$BLOBSTORE check "$img" || fail "image check failed after kill -9"
start
tpm2_startup -c
tpm2_nvread -Q 0x1500017 -C o -s 8 -o "$tmp/val"
val=$(cat "$tmp/val")
echo "   last acknowledged $last_acked, read back $val after $(wc -l <"$tmp/acked") acknowledged writes"
[[ $val =~ ^v[0-9]{7}$ ]] || fail "torn NV value '$val'"
[[ $val > $last_acked || $val == "$last_acked" ]] || fail "acknowledged write $last_acked lost (read $val)"
max=$(printf 'v%07d' $(($(wc -l <"$tmp/acked") + 1)))
[[ $val < $max || $val == "$max" ]] || fail "value $val was never written"

echo "== control channel"
python3 - "$port" "$img" "$BLOBSTORE" <<'PY'
import socket, struct, subprocess, sys, tempfile, os
port = int(sys.argv[1]) + 1
def ctrl(payload, want):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(payload)
    data = b""
    while len(data) < want:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data
def check(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)
r = ctrl(struct.pack(">I", 1), 8)
res, caps = struct.unpack(">II", r)
need = 0x1 | 0x2 | 0x4 | 0x8 | 0x80 | 0x1000 | 0x2000 | 0x400 | 0x100 | 0x200
check(res == 0 and caps & need == need, "CMD_GET_CAPABILITY caps 0x%x" % caps)
r = ctrl(struct.pack(">II", 0x11, 0), 16)
check(struct.unpack(">IIII", r)[0:2] == (0, 4096), "CMD_SET_BUFFERSIZE query %r" % (r,))
r = ctrl(struct.pack(">II", 0x11, 2048), 4)
check(struct.unpack(">I", r[:4])[0] == 0xa, "SET_BUFFERSIZE while running must be refused")
r = ctrl(struct.pack(">I", 4), 8)
check(len(r) == 8 and struct.unpack(">I", r[:4])[0] == 0, "CMD_GET_TPMESTABLISHED")
r = ctrl(struct.pack(">IB", 5, 9), 4)
check(struct.unpack(">I", r)[0] == 0x3d, "locality 9 must be TPM_BAD_LOCALITY")
r = ctrl(struct.pack(">I", 0x7f), 4)
check(struct.unpack(">I", r)[0] == 0xa, "unknown command must be TPM_BAD_ORDINAL")
r = ctrl(struct.pack(">III", 7, 0x7fffffff, 0), 4)
check(struct.unpack(">I", r)[0] == 3, "huge HASH_DATA must be TPM_BAD_PARAMETER")
r = ctrl(struct.pack(">IQII", 0x12, 1, 0, 0), 12)
res, tot, ln = struct.unpack(">III", r[:12])
check(res == 0 and b"TPM" in r[12:], "CMD_GET_INFO")
if True:
    r = ctrl(struct.pack(">I", 6), 4) + ctrl(struct.pack(">II", 7, 3) + b"abc", 4) + ctrl(struct.pack(">I", 8), 4)
    check(struct.unpack(">III", r) == (0, 0, 0), "HASH_START/DATA/END %r" % (r,))
r = ctrl(struct.pack(">I", 10), 4)
check(struct.unpack(">I", r)[0] == 0, "CMD_STORE_VOLATILE")
r = ctrl(struct.pack(">I", 15), 8)
check(struct.unpack(">II", r) == (0, 0), "CMD_GET_CONFIG")
# GET_STATEBLOB permanent: swtpm's framing (a version-2 header with flag
# 0x04, record 4 around record 1) around the image's permall entry.
r = ctrl(struct.pack(">IIII", 12, 1, 1, 0), 16)
res, fl, tot, ln = struct.unpack(">IIII", r[:16])
r = ctrl(struct.pack(">IIII", 12, 1, 1, 0), 16 + tot)
blob = r[16:]
out = tempfile.mktemp()
subprocess.run([sys.argv[3], "get", sys.argv[2], "tpm2.libtpms", "--name", "permall", "-o", out], check=True)
want = open(out, "rb").read()
check(res == 0 and tot == ln == len(blob) and blob[:6] == bytes([2, 1, 0, 10, 0, 4])
      and struct.unpack(">I", blob[6:10])[0] == len(blob)
      and struct.unpack(">HI", blob[10:16]) == (4, len(want) + 6)
      and struct.unpack(">HI", blob[16:22]) == (1, len(want)) and blob[22:] == want,
      "GET_STATEBLOB permall")
os.unlink(out)
r = ctrl(struct.pack(">IIII", 12, 1, 3, 0), 16)
check(struct.unpack(">IIII", r[:16])[0] == 0x800, "missing savestate must be TPM_RETRY")
# SET_STATEBLOB while running is refused; a payload longer than announced too.
r = ctrl(struct.pack(">IIII", 13, 0, 1, 2) + b"xy", 4)
check(struct.unpack(">I", r)[0] == 0xa, "SET_STATEBLOB while running")
# An oversized TPM command drops the connection; the server lives on.
s = socket.create_connection(("127.0.0.1", port - 1))
s.sendall(struct.pack(">HII", 0x8001, 1 << 20, 0x17b))
check(s.recv(10) == b"", "oversized command must drop the connection")
s.close()
r = ctrl(struct.pack(">I", 1), 8)
check(struct.unpack(">I", r[:4])[0] == 0, "server alive after bad input")
print("control channel: ok")
PY
tpm2_nvread -Q 0x1500016 -C o -s 31 -o "$tmp/nv.out"
cmp "$tmp/nv.in" "$tmp/nv.out" || fail "NV data changed by the control tests"

echo "== CMD_SHUTDOWN stores the volatile state and ends the server"
python3 -c 'import socket,struct,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])+1)); s.sendall(struct.pack(">I",3)); assert struct.unpack(">I",s.recv(4))[0]==0' "$port"
wait "$vtpm_pid" || fail "server exit status after CMD_SHUTDOWN"
vtpm_pid=
$BLOBSTORE get "$img" tpm2.libtpms --name volatilestate -o "$tmp/vol"
[ -s "$tmp/vol" ] || fail "no volatile state after CMD_SHUTDOWN"
$BLOBSTORE check "$img"

echo "== the shortest session: startup, NV define and write, SIGTERM, resume, read"
img=$tmp/short.img
start
tpm2_startup -c
tpm2_nvdefine -Q 0x1500018 -C o -s 16 -a "ownerread|ownerwrite"
printf 'short session 16' >"$tmp/short.in"
tpm2_nvwrite -Q 0x1500018 -C o -i "$tmp/short.in"
vtpm_stop TERM
: >"$tmp/vtpm.log"
start
grep -q 'resumed from the volatile state' "$tmp/vtpm.log" || fail "short session not resumed"
tpm2_nvread -Q 0x1500018 -C o -s 16 -o "$tmp/short.out" || fail "nvread after the resume"
cmp "$tmp/short.in" "$tmp/short.out" || fail "NV data lost across the short session's restart"
vtpm_stop KILL

echo "== the copy a killed compaction left beside the image: removed at start, logged"
cp "$img" "$img.tmp-0123abcd"
size=$(stat -c %s "$img.tmp-0123abcd")
: >"$tmp/vtpm.log"
start
grep -qF "state: $img: removed $img.tmp-0123abcd ($size octets) left by an interrupted compaction" \
	"$tmp/vtpm.log" || fail "the removal of a killed compaction's copy is not logged"
[ ! -e "$img.tmp-0123abcd" ] || fail "the copy a killed compaction left is still there"
vtpm_stop TERM

echo "== a damaged newest permall: the server says it starts from older state"
# The newest slot of permall (the dump marks it current): one flipped bit
# in its data makes reads return the previous value, a rollback for a TPM.
cur=$($BLOBSTORE dump "$img" | awk '/Entry .tpm2.libtpms.\/.permall./ {p = 1} p && /slot [01]: .*\(current\)/ {print $1; exit}')
[ -n "$cur" ] || fail "no current permall slot in the dump"
python3 -c 'import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1)[0]; f.seek(off); f.write(bytes([b ^ 0x04]))' "$img" $((cur + 16 + 8))
rc=0
$BLOBSTORE check "$img" >"$tmp/check.out" || rc=$?
[ "$rc" -eq 3 ] || { cat "$tmp/check.out"; fail "check exited $rc on a damaged newest permall, expected 3"; }
grep -q "entry 'tpm2.libtpms'/'permall' at offset [0-9]*: reads its previous value" "$tmp/check.out" ||
	{ cat "$tmp/check.out"; fail "check does not name the rolled-back permall"; }
: >"$tmp/vtpm.log"
: >"$tmp/vtpm.err"
start
grep -q "warning: $img: entry tpm2.libtpms/permall at offset [0-9]* reads its previous value" "$tmp/vtpm.err" ||
	{ cat "$tmp/vtpm.err"; fail "no warning on stderr for a rolled-back permall"; }
grep -q "warning: $img: entry tpm2.libtpms/permall .* reads its previous value" "$tmp/vtpm.log" ||
	{ cat "$tmp/vtpm.log"; fail "no warning in the log for a rolled-back permall"; }
[ "$(grep -c 'reads its previous value' "$tmp/vtpm.err")" -eq 1 ] || fail "the warning is not given once"
tpm2_startup -c
tpm2_getrandom 8 >/dev/null || fail "the TPM does not answer from its previous state"
vtpm_stop TERM
echo OK
