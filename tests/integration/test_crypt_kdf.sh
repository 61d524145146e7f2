#!/usr/bin/env bash
# tests/integration/test_crypt_kdf.sh - KDF ceilings (issue 15, D6): a
# bs.key whose PBKDF2 cost was raised by an edit is refused before anything
# is derived (exit 8, the cost, the ceiling and --kdf-max-iter named, never
# "wrong key"); --kdf-max-iter raised lets the derivation run.  The same
# for scrypt (memory 128*N*r and work N*r*p edited above --kdf-max-mem and
# --kdf-max-work).  Costs asked for explicitly by encrypt-init and rekey
# need no --kdf-max-* for the key they write; a later command reading that
# bs.key does.
. "$(dirname "$0")/cli_common.sh"

img=$tmp/kdf.img
printf 'correct horse battery\n' >"$tmp/pw"
bs format "$img" >/dev/null
bs encrypt-init "$img" --passphrase-file "$tmp/pw" --kdf pbkdf2-sha256 --pbkdf2-iter 32768 >/dev/null
echo secret | bs put "$img" vtpm --passphrase-file "$tmp/pw" >/dev/null
# Patch the DER INTEGER 32768 (02 03 00 80 00) of the cost to 2424832 (0x250000).
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
expect_exit 8 bs get "$img" vtpm --passphrase-file "$tmp/pw"
err_has "2424832"
err_has "2400000"
err_has "--kdf-max-iter"
if grep -q "wrong key" "$tmp/err"; then echo "refusal reported as a wrong key" >&2; exit 1; fi
# Raised: it derives with the edited cost, and the wrap (which binds the
# cost) fails: exit 7.
expect_exit 7 bs get "$img" vtpm --passphrase-file "$tmp/pw" --kdf-max-iter 2424832
err_has "wrong key or passphrase"
expect_exit 1 bs get "$img" vtpm --passphrase-file "$tmp/pw" --kdf-max-iter x

# edit_scrypt IMAGE OLD NEW: replaces the scrypt costs SEQUENCE OLD (hex) by
# NEW (the same length), found exactly once in IMAGE.
edit_scrypt() {
	python3 - "$@" <<'PY'
import sys
p, old, new = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
assert len(old) == len(new)
b = bytearray(open(p, 'rb').read())
i = b.find(old)
assert i >= 0 and b.find(old, i + 1) < 0, "costs not found exactly once"
b[i:i + len(old)] = new
open(p, 'wb').write(b)
PY
}
# now: the seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# fast START: less than 0.4 s since START (a derivation of an edited cost
# takes 0.6 s or more; a refusal, milliseconds).
fast() { python3 -c 'import sys,time; sys.exit(time.time()-float(sys.argv[1]) >= 0.4)' "$1" ||
	fail "the refusal took more than 0.4 s: was the key derived?"; }

echo "== scrypt: memory and work edited above the ceilings"
simg=$tmp/scrypt.img
bs format "$simg" >/dev/null
bs encrypt-init "$simg" --passphrase-file "$tmp/pw" --scrypt-n 16384 --scrypt-r 8 >/dev/null
echo secret | bs put "$simg" vtpm --passphrase-file "$tmp/pw" >/dev/null
# The costs: SEQUENCE { INTEGER 16384, INTEGER 8, INTEGER 1 }.
costs=300a02024000020108020101
cp "$simg" "$tmp/mem.img"
cp "$simg" "$tmp/work.img"
# r = 127: 128*16384*127 octets = 254 MiB (ceiling 128 MiB), work 2080768.
edit_scrypt "$tmp/mem.img" $costs 300a0202400002017f020101
t0=$(now)
expect_exit 8 bs get "$tmp/mem.img" vtpm --passphrase-file "$tmp/pw"
fast "$t0"
err_has "$tmp/mem.img"
err_has "KDF cost refused before deriving"
err_has "254 MiB of memory, above the ceiling of 128 MiB"
err_has "--kdf-max-mem"
if grep -q "wrong key" "$tmp/err"; then echo "refusal reported as a wrong key" >&2; exit 1; fi
# Memory raised, the work (2080768 > 1048576) is still refused.
expect_exit 8 bs get "$tmp/mem.img" vtpm --passphrase-file "$tmp/pw" --kdf-max-mem 254M
err_has "work N*r*p = 2080768, above the ceiling of 1048576"
# p = 16: work 16384*8*16 = 2097152 (ceiling 1048576); memory 16 MiB.
edit_scrypt "$tmp/work.img" $costs 300a02024000020108020110
t0=$(now)
expect_exit 8 bs check "$tmp/work.img" --passphrase-file "$tmp/pw"
fast "$t0"
err_has "$tmp/work.img"
err_has "scrypt N=16384 r=8 p=16 is work N*r*p = 2097152, above the ceiling of 1048576"
err_has "--kdf-max-work"
if grep -q "wrong key" "$tmp/err"; then echo "refusal reported as a wrong key" >&2; exit 1; fi
# Raised: the derivation runs with the edited cost and the wrap, which
# binds it, fails.
expect_exit 7 bs get "$tmp/work.img" vtpm --passphrase-file "$tmp/pw" --kdf-max-work 2097152
err_has "wrong key or passphrase"
# The unedited image opens under the default ceilings.
[ "$(bs get "$simg" vtpm --passphrase-file "$tmp/pw")" = secret ] || fail "scrypt image unreadable"
# A ceiling below its costs (work 131072) refuses it; a matching one opens.
expect_exit 8 bs get "$simg" vtpm --passphrase-file "$tmp/pw" --kdf-max-work 131071
[ "$(bs get "$simg" vtpm --passphrase-file "$tmp/pw" --kdf-max-work 131072)" = secret ] ||
	fail "a matching --kdf-max-work does not open"

echo "== explicit costs of encrypt-init and rekey need no --kdf-max-*"
himg=$tmp/high.img
bs format "$himg" >/dev/null
# 2400001 iterations: one above the default ceiling, asked for explicitly.
bs encrypt-init "$himg" --passphrase-file "$tmp/pw" --kdf pbkdf2-sha256 --pbkdf2-iter 2400001 \
	>/dev/null || fail "encrypt-init refused its own explicit cost"
# A later command reads an image asking for more than its ceiling.
expect_exit 8 bs put "$himg" vtpm --passphrase-file "$tmp/pw"
err_has "2400001 iterations, above the ceiling of 2400000"
echo high | bs put "$himg" vtpm --passphrase-file "$tmp/pw" --kdf-max-iter 2400001 >/dev/null
printf 'another passphrase\n' >"$tmp/pw2"
# rekey: the current bs.key still needs the option ...
expect_exit 8 bs rekey "$himg" --passphrase-file "$tmp/pw" --new-passphrase-file "$tmp/pw2" \
	--kdf pbkdf2-sha256 --pbkdf2-iter 2400002
err_has "2400001 iterations, above the ceiling of 2400000"
# ... and the new key's explicit cost, above the ceiling given, does not.
bs rekey "$himg" --passphrase-file "$tmp/pw" --kdf-max-iter 2400001 \
	--new-passphrase-file "$tmp/pw2" --kdf pbkdf2-sha256 --pbkdf2-iter 2400002 >/dev/null ||
	fail "rekey refused its own explicit cost"
expect_exit 8 bs get "$himg" vtpm --passphrase-file "$tmp/pw2" --kdf-max-iter 2400001
err_has "2400002 iterations, above the ceiling of 2400001"
[ "$(bs get "$himg" vtpm --passphrase-file "$tmp/pw2" --kdf-max-iter 2400002)" = high ] ||
	fail "rekeyed image unreadable"
# scrypt, under a low ceiling given: explicit costs above it are written,
# the same ceiling then refuses the image.
limg=$tmp/low.img
bs format "$limg" >/dev/null
bs --kdf-max-work 1000 --kdf-max-mem 64K encrypt-init "$limg" --passphrase-file "$tmp/pw" \
	--scrypt-n 1024 >/dev/null || fail "encrypt-init refused its own explicit scrypt cost"
expect_exit 8 bs --kdf-max-work 1000 --kdf-max-mem 64K list "$limg" --passphrase-file "$tmp/pw"
err_has "1 MiB of memory, above the ceiling of 0 MiB"
bs list "$limg" --passphrase-file "$tmp/pw" >/dev/null || fail "low.img unreadable"
# A cost not asked for explicitly (the default 600000 iterations) keeps
# the ceiling given.
dimg=$tmp/default.img
bs format "$dimg" >/dev/null
expect_exit 8 bs encrypt-init "$dimg" --passphrase-file "$tmp/pw" --kdf pbkdf2-sha256 \
	--kdf-max-iter 1000
err_has "600000 iterations, above the ceiling of 1000; writing them needs the ceiling raised"
# The hard limits stay: an explicit cost above them is refused.
expect_exit 8 bs encrypt-init "$dimg" --passphrase-file "$tmp/pw" --kdf pbkdf2-sha256 \
	--pbkdf2-iter 100000001
err_has "outside 1..100000000"
echo ok
