#!/usr/bin/env bash
# tests/integration/test_crypt_cli.sh - the tool's encryption: encrypt-init,
# put --encrypt, the key options on every data command, wrong and missing
# keys (exit 7), no plaintext in the image, check reporting every tampered
# entry, rekey between key files and passphrases (file and descriptor).
. "$(dirname "$0")/cli_common.sh"

img=$tmp/enc.img
marker=PLAINTEXT-MARKER-7f3a9c21e5
printf 'correct horse battery\n' >"$tmp/pw"
printf 'wrong horse battery\n' >"$tmp/badpw"
head -c 32 /dev/urandom >"$tmp/key.raw"
python3 -c 'import os; print(os.urandom(32).hex())' >"$tmp/key.hex"
fast=(--scrypt-n 1024)

bs format "$img" >/dev/null
# No encryption set up yet: an encrypted put is a key error.
echo data | expect_exit 7 bs put "$img" vtpm --encrypt --passphrase-file "$tmp/pw"
err_has "not set up"
bs encrypt-init "$img" --passphrase-file "$tmp/pw" "${fast[@]}" >/dev/null
expect_exit 8 bs encrypt-init "$img" --passphrase-file "$tmp/pw" "${fast[@]}"

for i in 1 2 3; do printf '%s-%s' "$marker" "$i"; done >"$tmp/plain"
bs put "$img" vtpm -n permall --encrypt --passphrase-file "$tmp/pw" "$tmp/plain"
bs put "$img" vtpm -n volatilestate --encrypt --cipher chacha20-poly1305 \
	--passphrase-fd 3 "$tmp/plain" 3<"$tmp/pw"
echo "public" | bs put "$img" note
# Replace (slot write) and grow (rewrite) with the key given before the command.
bs --passphrase-file "$tmp/pw" put "$img" vtpm -n permall "$tmp/plain"
head -c 5000 /dev/zero | tr '\0' 'x' | cat "$tmp/plain" - >"$tmp/big"
bs put "$img" vtpm -n permall --passphrase-file "$tmp/pw" "$tmp/big"

bs get "$img" vtpm -n permall --passphrase-file "$tmp/pw" -o "$tmp/got"
cmp "$tmp/got" "$tmp/big" || fail "decrypted data differs"
bs get "$img" vtpm -n volatilestate --passphrase-fd 4 -o "$tmp/got" 4<"$tmp/pw"
cmp "$tmp/got" "$tmp/plain" || fail "decrypted data differs (chacha20-poly1305)"
[ "$(bs get "$img" note)" = public ] || fail "plain entry unreadable"

# Missing and wrong keys: exit 7, before any data.
expect_exit 7 bs get "$img" vtpm -n permall
err_has "no key is loaded"
expect_exit 7 bs get "$img" vtpm -n permall --passphrase-file "$tmp/badpw"
err_has "wrong key or passphrase"
expect_exit 7 bs get "$img" vtpm -n permall --key-file "$tmp/key.raw"
[ ! -s "$tmp/out" ] || fail "data printed with a wrong key"

# No plaintext anywhere in the image.
if grep -c "PLAINTEXT-MARKER" "$img" >/dev/null; then fail "plaintext found in the image"; fi
if grep -c "correct horse" "$img" >/dev/null; then fail "passphrase found in the image"; fi

bs check "$img" --passphrase-file "$tmp/pw" >/dev/null
bs check --schema "$img" --passphrase-file "$tmp/pw" >/dev/null

# Rekey: passphrase -> hex key file -> passphrase from a descriptor (PBKDF2).
bs rekey "$img" --passphrase-file "$tmp/pw" --new-key-file "$tmp/key.hex" >/dev/null
expect_exit 7 bs get "$img" vtpm -n permall --passphrase-file "$tmp/pw"
bs get "$img" vtpm -n permall --key-file "$tmp/key.hex" -o "$tmp/got"
cmp "$tmp/got" "$tmp/big" || fail "data differs after rekey"
expect_exit 1 bs rekey "$img" --key-file "$tmp/key.hex"
bs rekey "$img" --key-file "$tmp/key.hex" --new-passphrase-fd 5 --kdf pbkdf2-sha256 \
	--pbkdf2-iter 1000 5<"$tmp/badpw" >/dev/null
expect_exit 7 bs get "$img" vtpm -n permall --key-file "$tmp/key.hex"
bs get "$img" vtpm -n volatilestate --passphrase-file "$tmp/badpw" -o "$tmp/got"
cmp "$tmp/got" "$tmp/plain" || fail "data differs after second rekey"

# Tamper with both encrypted entries' current slots, checksums recomputed as
# an attacker can: check (with the key) reports every one, and get refuses.
python3 - "$img" <<'PY'
import struct, sys
def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1))
    return crc ^ 0xffffffff
path = sys.argv[1]
img = bytearray(open(path, "rb").read())
done = 0
pos = 0
# Every slot header: 8-octet generation, 4-octet length, CRC-32C over both
# and the payload.  Find valid ones by checking the CRC at every offset of
# the encrypted entries' data areas.
for name in (b"permall", b"volatilestate"):
    end = img.find(b"\x0c" + bytes([len(name)]) + name)
    start = img.rfind(b"bs.aead", 0, end)
    best = None
    for off in range(start, end - 16):
        gen, ln = struct.unpack(">QI", img[off:off + 12])
        if 28 <= ln <= end - off - 16 and 0 < gen < 1000:
            if crc32c(img[off:off + 12] + img[off + 16:off + 16 + ln]) == struct.unpack(">I", img[off + 12:off + 16])[0]:
                if best is None or gen > best[1]:
                    best = (off, gen, ln)
    off, gen, ln = best
    img[off + 16 + 20] ^= 0x01  # a ciphertext octet
    c = crc32c(img[off:off + 12] + img[off + 16:off + 16 + ln])
    img[off + 12:off + 16] = struct.pack(">I", c)
    done += 1
open(path, "wb").write(img)
print(done)
PY
expect_exit 3 bs check "$img" --passphrase-file "$tmp/badpw"
grep -q "permall" "$tmp/out" "$tmp/err" || fail "check did not report permall"
grep -q "volatilestate" "$tmp/out" "$tmp/err" || fail "check did not report volatilestate"
grep -q "authentication failed" "$tmp/out" "$tmp/err" || fail "check did not say why"
expect_exit 3 bs get "$img" vtpm -n permall --passphrase-file "$tmp/badpw"
err_has "authentication failed"
[ ! -s "$tmp/out" ] || fail "data printed from a tampered entry"
# Without the key, check can verify the slot checksums only: they pass.
bs check "$img" >/dev/null

bs help rekey >/dev/null
bs --help | grep -- "--passphrase-fd" >/dev/null || fail "--passphrase-fd missing from --help"
echo "ok"
