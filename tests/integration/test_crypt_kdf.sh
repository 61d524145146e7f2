#!/usr/bin/env bash
# tests/integration/test_crypt_kdf.sh - KDF ceilings (issue 15, D6): a
# bs.key whose PBKDF2 cost was raised by an edit is refused before anything
# is derived (exit 8, the cost, the ceiling and --kdf-max-iter named, never
# "wrong key"); --kdf-max-iter raised lets the derivation run.
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
echo ok
