#!/usr/bin/env bash
# test_vtpm_kdf.sh - blobstore-vtpm's --kdf-max-iter, --kdf-max-mem and
# --kdf-max-work (issue 15, D6): an image whose bs.key was edited to ask for
# a KDF cost above the ceiling does not start (exit 1, the image, the cost
# and the ceiling named, never "wrong key"), refused before anything is
# derived; a --kdf-max-* that covers an image's real costs lets it start.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
command -v python3 >/dev/null || { echo "SKIP: needs python3"; exit 0; }
bs() { "$BLOBSTORE" "$@"; }

# run_refused ARGS...: the server, given ARGS, exits 1 at start; its
# standard error is left in $tmp/err.
run_refused() {
	local rc=0
	timeout 20 "$VTPM" --server-unix "$tmp/cmd.sock" --ctrl-unix "$tmp/ctrl.sock" "$@" \
		>/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" -eq 1 ] || { cat "$tmp/err" >&2; fail "blobstore-vtpm $* exited with $rc, expected 1"; }
}
err_has() { grep -qF -- "$1" "$tmp/err" || { cat "$tmp/err" >&2; fail "stderr lacks '$1'"; }; }
no_wrong_key() { if grep -q "wrong key" "$tmp/err"; then cat "$tmp/err" >&2; fail "refusal reported as a wrong key"; fi; }
start() { vtpm_start --server-unix "$tmp/cmd.sock" --ctrl-unix "$tmp/ctrl.sock" --flags not-need-init "$@"; }

printf 'a vtpm passphrase\n' >"$tmp/pw"

echo "== PBKDF2 iterations edited above the ceiling"
img=$tmp/pbkdf2.img
bs format "$img" >/dev/null
bs encrypt-init "$img" --passphrase-file "$tmp/pw" --kdf pbkdf2-sha256 --pbkdf2-iter 32768 >/dev/null
# It starts as it is (a fresh TPM), and stores its state.
start --image "$img" --passphrase-file "$tmp/pw"
vtpm_stop TERM
bs list "$img" --passphrase-file "$tmp/pw" | grep -q 'tpm2.libtpms *permall' || fail "no permall stored"
# The DER INTEGER 32768 (02 03 00 80 00) of the cost becomes 2424832.
python3 - "$img" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
pat = bytes([0x30, 0x05, 0x02, 0x03, 0x00, 0x80, 0x00])
i = b.find(pat)
assert i >= 0 and b.find(pat, i + 1) < 0
b[i + 4:i + 7] = bytes([0x25, 0x00, 0x00])
open(p, 'wb').write(b)
PY
cp "$img" "$tmp/before"
run_refused --image "$img" --passphrase-file "$tmp/pw"
err_has "$img"
err_has "KDF cost refused before deriving: PBKDF2-SHA256 with 2424832 iterations, above the ceiling of 2400000"
err_has "--kdf-max-iter"
no_wrong_key
cmp -s "$img" "$tmp/before" || fail "a refused start changed the image"
# The ceiling raised to the edited cost: derived, and the wrap (which binds
# the cost) fails.
run_refused --image "$img" --passphrase-file "$tmp/pw" --kdf-max-iter 2424832
err_has "wrong key or passphrase"

echo "== scrypt work edited above the ceiling"
simg=$tmp/scrypt.img
bs format "$simg" >/dev/null
bs encrypt-init "$simg" --passphrase-file "$tmp/pw" --scrypt-n 16384 >/dev/null
# SEQUENCE { INTEGER 16384, INTEGER 8, INTEGER 1 }: p becomes 16, work 2^21.
python3 - "$simg" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
old = bytes.fromhex('300a02024000020108020101')
i = b.find(old)
assert i >= 0 and b.find(old, i + 1) < 0
b[i:i + len(old)] = bytes.fromhex('300a02024000020108020110')
open(p, 'wb').write(b)
PY
run_refused --image "$simg" --passphrase-fd 3 3<"$tmp/pw"
err_has "$simg"
err_has "is work N*r*p = 2097152, above the ceiling of 1048576"
err_has "--kdf-max-work"
no_wrong_key

echo "== a matching --kdf-max-* lets an image with high real costs start"
# Written with 2400001 iterations (asked for explicitly: encrypt-init
# needs no --kdf-max-iter for its own cost); the server needs the option.
himg=$tmp/high.img
bs format "$himg" >/dev/null
bs encrypt-init "$himg" --passphrase-file "$tmp/pw" --kdf pbkdf2-sha256 --pbkdf2-iter 2400001 >/dev/null
run_refused --image "$himg" --passphrase-file "$tmp/pw"
err_has "$himg"
err_has "2400001 iterations, above the ceiling of 2400000"
no_wrong_key
start --image "$himg" --passphrase-file "$tmp/pw" --kdf-max-iter 2400001
vtpm_stop TERM
# scrypt: memory 128*16384*16 = 32 MiB and work 262144, under ceilings
# below them refused, under matching ones started.
mimg=$tmp/mem.img
bs format "$mimg" >/dev/null
bs encrypt-init "$mimg" --passphrase-file "$tmp/pw" --scrypt-n 16384 --scrypt-r 16 >/dev/null
run_refused --image "$mimg" --passphrase-file "$tmp/pw" --kdf-max-mem 31M
err_has "needs 32 MiB of memory, above the ceiling of 31 MiB"
run_refused --image "$mimg" --passphrase-file "$tmp/pw" --kdf-max-work 262143
err_has "is work N*r*p = 262144, above the ceiling of 262143"
start --image "$mimg" --passphrase-file "$tmp/pw" --kdf-max-mem 32M --kdf-max-work 262144
vtpm_stop TERM

echo "== option errors"
for bad in "--kdf-max-iter x" "--kdf-max-iter 0" "--kdf-max-mem 12Q" "--kdf-max-work -1"; do
	rc=0
	# shellcheck disable=SC2086
	"$VTPM" --image "$img" --server-unix "$tmp/cmd.sock" $bad >/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" -eq 2 ] || fail "'$bad' exited with $rc, expected 2 (usage)"
	err_has "takes a positive"
done
run_refused --image "$img" --passphrase-file "$tmp/pw" --kdf-max-iter 100000001
err_has "above the hard limit 100000000"
echo ok
