#!/usr/bin/env bash
# test_vtpm_blobs.sh - state blobs on the control channel, against swtpm:
# a TPM moves from swtpm to blobstore-vtpm and back through
# CMD_GET_STATEBLOB / CMD_SET_STATEBLOB (swtpm_ioctl --save / --load), plain
# and encrypted with 128- and 256-bit migration keys, and as a bare libtpms
# blob, with an NV index and a PCR arriving; a blob libtpms refuses fails
# CMD_INIT and leaves the stored state as it was, and startable; two
# blobstore-vtpm processes on one image file hand the storage's lock over
# (--migration release-lock-outgoing / incoming, CMD_LOCK_STORAGE).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
for t in swtpm swtpm_ioctl tpm2_nvread tpm2_pcrread python3; do
	command -v $t >/dev/null || { echo "SKIP: needs swtpm, swtpm-tools, tpm2-tools, python3"; exit 0; }
done
C="python3 $here/vtpm_ctrl.py"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; vtpm_cleanup' EXIT

# run NAME BINARY ARGS...: a TPM on free ports; sets NAME_port, NAME_pid.
run() {
	local name=$1 bin=$2 port
	shift 2
	port=$(free_port_pair)
	if [ "$bin" = swtpm ]; then
		swtpm socket --tpm2 --server type=tcp,port="$port" --ctrl type=tcp,port=$((port + 1)) \
			"$@" 2>>"$tmp/$name.err" &
	else
		"$VTPM" socket --tpm2 --server type=tcp,port="$port" --ctrl type=tcp,port=$((port + 1)) \
			--log file="$tmp/vtpm.log",level=2 "$@" 2>>"$tmp/$name.err" &
	fi
	pids+=($!)
	eval "${name}_port=$port ${name}_pid=$!"
	for _ in $(seq 100); do
		$C "tcp:$((port + 1))" caps >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	cat "$tmp/$name.err"
	fail "$name ($bin) did not start"
}
ioctl() { local p=${1}_port; shift; swtpm_ioctl --tcp "127.0.0.1:$((${!p} + 1))" "$@"; }
ctl() { local p=${1}_port; shift; $C "tcp:$((${!p} + 1))" "$@"; }
tcti() { local p=${1}_port; echo "swtpm:port=${!p}"; }
down() { ioctl "$1" -s >/dev/null; local p=${1}_pid; wait "${!p}" || true; }
pcr16() { tpm2_pcrread -T "$(tcti "$1")" sha256:16 | awk '/16:/ {print $2}'; }
nvread() { tpm2_nvread -T "$(tcti "$1")" -C o -s 16 0x1500016 2>/dev/null; }
# move FROM TO: permanent and volatile state, as QEMU moves them.
move() {
	ioctl "$1" --save permanent "$tmp/perm.blob" >/dev/null || fail "--save permanent from $1"
	ioctl "$1" --save volatile "$tmp/vol.blob" >/dev/null || fail "--save volatile from $1"
	ioctl "$2" --load permanent "$tmp/perm.blob" >/dev/null || fail "--load permanent into $2"
	ioctl "$2" --load volatile "$tmp/vol.blob" >/dev/null || fail "--load volatile into $2"
	[ "$(ctl "$2" init 1)" = 0x0 ] || fail "CMD_INIT in $2 after the blobs"
}
keyhex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
keyhex 16 >"$tmp/m128"
keyhex 32 >"$tmp/m256"
printf 'sixteen octets!!' >"$tmp/nv.in"

echo "== a TPM in swtpm with an NV index and a PCR"
mkdir "$tmp/s0"
run a swtpm --tpmstate dir="$tmp/s0" --flags not-need-init,startup-clear
X=$(tcti a)
tpm2_nvdefine -T "$X" -Q 0x1500016 -C o -s 16 -a "ownerread|ownerwrite"
tpm2_nvwrite -T "$X" -Q 0x1500016 -C o -i "$tmp/nv.in"
tpm2_pcrextend -T "$X" "16:sha256=$(printf '%064d' 7)"
want=$(pcr16 a)
ioctl a -v >/dev/null # swtpm resumes from it at every start below
down a

modes="plain 128 256"
quick && modes="plain 256" # BS_TEST_QUICK (the ASan pass): one key size
for mode in $modes; do
	opt=()
	[ $mode = plain ] || opt=(--migration-key file="$tmp/m$mode",mode=aes-$mode-cbc)
	[ $mode = 128 ] && opt=(--migration-key file="$tmp/m128")
	echo "== swtpm -> blobstore-vtpm -> swtpm, migration key: $mode"
	run src swtpm --tpmstate dir="$tmp/s0" --flags not-need-init "${opt[@]}"
	mkdir -p "$tmp/v$mode" "$tmp/s$mode"
	run mid vtpm --tpmstate dir="$tmp/v$mode" "${opt[@]}"
	move src mid
	[ "$(nvread mid)" = "$(cat "$tmp/nv.in")" ] || fail "$mode: NV index lost swtpm -> blobstore-vtpm"
	[ "$(pcr16 mid)" = "$want" ] || fail "$mode: PCR 16 lost swtpm -> blobstore-vtpm"
	grep -q "CMD_SET_STATEBLOB permall: .*swtpm's framing$( [ $mode = plain ] || echo ', migration-key encrypted')" \
		"$tmp/vtpm.log" || fail "$mode: framing not recognised"
	ioctl src -v >/dev/null # swtpm's GET of the volatile state deleted its file
	down src
	run dst swtpm --tpmstate dir="$tmp/s$mode" "${opt[@]}"
	move mid dst
	[ "$(nvread dst)" = "$(cat "$tmp/nv.in")" ] || fail "$mode: NV index lost blobstore-vtpm -> swtpm"
	[ "$(pcr16 dst)" = "$want" ] || fail "$mode: PCR 16 lost blobstore-vtpm -> swtpm"
	if [ $mode != plain ]; then
		# What left blobstore-vtpm was encrypted with the migration key.
		python3 - "$tmp/perm.blob" <<'PY' || fail "$mode: the blob left in the clear"
import sys
b = open(sys.argv[1], "rb").read()
assert b[:4] == bytes([2, 1, 0, 10]) and b[5] & 0x06 == 0x06, b[:10].hex()
PY
	fi
	down dst
	# The destination image holds the TPM after a restart (it was stored).
	down mid
	run mid vtpm --tpmstate dir="$tmp/v$mode" --flags not-need-init,startup-clear "${opt[@]}"
	[ "$(nvread mid)" = "$(cat "$tmp/nv.in")" ] || fail "$mode: the migrated TPM was not stored"
	down mid
done

echo "== key errors: no migration key, the wrong size, the wrong key"
run src swtpm --tpmstate dir="$tmp/s0" --flags not-need-init --migration-key file="$tmp/m128"
ioctl src --save permanent "$tmp/enc.blob" >/dev/null
down src
mkdir "$tmp/vk"
run k vtpm --tpmstate dir="$tmp/vk"
[ "$(ctl k set 1 "$tmp/enc.blob")" = 0xd ] || fail "no migration key: not TPM_KEYNOTFOUND"
down k
run k vtpm --tpmstate dir="$tmp/vk" --migration-key file="$tmp/m256",mode=aes-256-cbc
[ "$(ctl k set 1 "$tmp/enc.blob")" = 0x28 ] || fail "a 256-bit key for a 128-bit blob: not TPM_BAD_KEY_PROPERTY"
down k
keyhex 16 >"$tmp/wrong"
run k vtpm --tpmstate dir="$tmp/vk" --migration-key file="$tmp/wrong"
[ "$(ctl k set 1 "$tmp/enc.blob")" = 0x21 ] || fail "the wrong key: not TPM_DECRYPT_ERROR"
down k

echo "== a bare libtpms blob is accepted"
run src swtpm --tpmstate dir="$tmp/s0" --flags not-need-init
ioctl src --save permanent "$tmp/plain.blob" >/dev/null
down src
$C unframe "$tmp/plain.blob" "$tmp/bare.blob"
mkdir "$tmp/vb"
run b vtpm --tpmstate dir="$tmp/vb"
[ "$(ctl b set 1 "$tmp/bare.blob")" = 0x0 ] || fail "bare blob refused"
[ "$(ctl b init 0)" = 0x0 ] || fail "CMD_INIT on a bare blob"
tpm2_startup -T "$(tcti b)" -c
[ "$(nvread b)" = "$(cat "$tmp/nv.in")" ] || fail "bare blob: NV index missing"
down b

echo "== a blob libtpms refuses leaves the stored state as it was, and startable"
img=$tmp/vb/blobstore-vtpm.permall
cp "$img" "$tmp/before.img"
python3 - "$tmp/bare.blob" "$tmp/bad.bare" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[40] ^= 0xff          # inside the libtpms payload, past its header
b[-1] ^= 0xff
open(sys.argv[2], "wb").write(b)
PY
$C frame "$tmp/bad.bare" "$tmp/bad.blob"
run b vtpm --tpmstate dir="$tmp/vb"
r=$(ctl b set 1 "$tmp/bad.blob")
if [ "$r" = 0x0 ]; then
	r=$(ctl b init 1)
	[ "$r" != 0x0 ] || fail "CMD_INIT accepted a corrupt permanent blob"
fi
echo "   refused with 0x${r#0x}"
cmp "$img" "$tmp/before.img" || fail "a refused blob changed the image"
grep -q 'the stored state is unchanged' "$tmp/vtpm.log" || fail "the refusal was not logged"
# The old state starts: CMD_INIT without a new blob.
[ "$(ctl b init 0)" = 0x0 ] || fail "the old state does not start after a refused blob"
tpm2_startup -T "$(tcti b)" -c
[ "$(nvread b)" = "$(cat "$tmp/nv.in")" ] || fail "the old state lost its NV index"
down b
"$BLOBSTORE" check "$img" >/dev/null || fail "check after the refused blob"

echo "== two blobstore-vtpm on one image file hand the lock over"
file=$tmp/shared.img
cp "$img" "$file"
run src vtpm --tpmstate backend-uri=file://"$file" --flags not-need-init,startup-clear \
	--migration release-lock-outgoing
run dst vtpm --tpmstate backend-uri=file://"$file" --migration incoming
# While the source holds the lock, the destination cannot take it.
[ "$(ctl dst lock 5)" != 0x0 ] || fail "CMD_LOCK_STORAGE took a lock another process holds"
tpm2_pcrextend -T "$(tcti src)" "16:sha256=$(printf '%064d' 9)"
want2=$(pcr16 src)
ioctl src --save permanent "$tmp/p.blob" >/dev/null
ioctl src --save volatile "$tmp/v.blob" >/dev/null
ioctl src --save savestate "$tmp/s.blob" >/dev/null # the last blob: the source lets go
# The source lets go after it has answered: wait for its log line.
for _ in $(seq 100); do
	grep -q 'migration: outgoing; storage lock released' "$tmp/vtpm.log" && break
	sleep 0.05
done
grep -q 'migration: outgoing; storage lock released' "$tmp/vtpm.log" || fail "no release"
ioctl dst --load permanent "$tmp/p.blob" >/dev/null
ioctl dst --load volatile "$tmp/v.blob" >/dev/null
[ "$(ctl dst init 1)" = 0x0 ] || fail "CMD_INIT on the destination"
[ "$(pcr16 dst)" = "$want2" ] || fail "PCR 16 did not arrive"
[ "$(nvread dst)" = "$(cat "$tmp/nv.in")" ] || fail "NV did not arrive"
# The destination holds the lock now: the source can no longer take it.
[ "$(ctl src lock 5)" != 0x0 ] || fail "the source took the lock back from the destination"
tpm2_getrandom -T "$(tcti src)" 4 >/dev/null 2>&1 && fail "the source served a command without its lock"
down dst
# The destination is gone: a failed-back source takes its lock again.
[ "$(ctl src lock 50)" = 0x0 ] || fail "CMD_LOCK_STORAGE after the destination left"
tpm2_getrandom -T "$(tcti src)" 4 >/dev/null || fail "the source after taking the lock back"
down src
"$BLOBSTORE" check "$file" >/dev/null || fail "check of the shared image"
echo OK
