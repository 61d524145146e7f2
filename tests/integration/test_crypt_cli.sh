#!/usr/bin/env bash
# tests/integration/test_crypt_cli.sh - the tool's encryption: encrypt-init,
# put --encrypt, the key options on every data command, wrong and missing
# keys (exit 7), new entries encrypted by default (--plain by name), a key
# for an image without encryption refused, put --encrypt converting a
# plaintext entry with no plaintext left, protection in list/info/JSON, no
# plaintext in the image, check reporting every tampered
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
# A key given for an image without encryption is an error that says how to
# set encryption up, never a silent plaintext store.
echo data | expect_exit 7 bs put "$img" vtpm --encrypt --passphrase-file "$tmp/pw"
err_has "not set up for encryption"
err_has "blobstore encrypt-init"
echo data | expect_exit 7 bs put "$img" vtpm --key-file "$tmp/key.raw"
err_has "not set up for encryption"
expect_exit 7 bs list "$img" --key-file "$tmp/key.raw"
echo data | expect_exit 7 bs put "$img" vtpm --encrypt
err_has "encrypt-init"
bs list --json "$img" >"$tmp/list.json"
[ "$(jq_py "$tmp/list.json" 'len(d["entries"])')" = 0 ] || fail "a refused put stored something"
# An entry from before encryption was set up.
printf 'OLDPLAIN-MARKER-1' | bs put "$img" legacy
bs encrypt-init "$img" --passphrase-file "$tmp/pw" "${fast[@]}" >"$tmp/out" 2>"$tmp/err"
grep -q "new entries are encrypted" "$tmp/out" || fail "encrypt-init output"
grep -q "1 existing entry stays in plaintext" "$tmp/err" || fail "encrypt-init does not count plaintext entries"
expect_exit 8 bs encrypt-init "$img" --passphrase-file "$tmp/pw" "${fast[@]}"

# Every new entry is encrypted: without the key it is refused, naming --plain.
for i in 1 2 3; do printf '%s-%s' "$marker" "$i"; done >"$tmp/plain"
expect_exit 7 bs put "$img" vtpm -n permall "$tmp/plain"
err_has "new entries are encrypted"
err_has "--plain"
bs put "$img" vtpm -n permall --passphrase-file "$tmp/pw" "$tmp/plain"
bs put "$img" vtpm -n volatilestate --cipher chacha20-poly1305 \
	--passphrase-fd 3 "$tmp/plain" 3<"$tmp/pw"
echo "public" | bs put "$img" note --plain
bs list --json "$img" --passphrase-file "$tmp/pw" >"$tmp/list.json"
[ "$(jq_py "$tmp/list.json" '{e["type"] + "/" + str(e["name"]): e["encryption"] for e in d["entries"]}')" = \
	"{'legacy/None': None, 'vtpm/permall': 'aes-256-gcm', 'vtpm/volatilestate': 'chacha20-poly1305', 'note/None': None}" ] ||
	{ cat "$tmp/list.json"; fail "list --json encryption"; }
bs list "$img" >"$tmp/out"
grep -q "aes-256-gcm  *locked  *vtpm *permall" "$tmp/out" || { cat "$tmp/out"; fail "list: protection and status"; }
grep -q " -  *ok  *note" "$tmp/out" || { cat "$tmp/out"; fail "list: a plaintext entry"; }
bs info --json "$img" >"$tmp/info.json"
[ "$(jq_py "$tmp/info.json" 'd["encrypted"], d["kdf"], d["encrypted_entry_count"], d["entry_count"]')" = "(True, 'scrypt', 2, 4)" ] ||
	fail "info --json encryption"
bs info "$img" vtpm --name volatilestate | grep -q "^encryption:  chacha20-poly1305$" || fail "info of an entry: protection"
# Replace (slot write) and grow (rewrite) with the key given before the command.
bs --passphrase-file "$tmp/pw" put "$img" vtpm -n permall "$tmp/plain"
head -c 5000 /dev/zero | tr '\0' 'x' | cat "$tmp/plain" - >"$tmp/big"
bs put "$img" vtpm -n permall --passphrase-file "$tmp/pw" "$tmp/big"

# --encrypt converts a plaintext entry crash-safely: no plaintext of it is
# left in either slot (both held plaintext: two values were written).
printf 'OLDPLAIN-MARKER-2' | bs put "$img" legacy --passphrase-file "$tmp/pw" 2>"$tmp/err"
grep -q "stored in plaintext in this encrypted image" "$tmp/err" || fail "no warning for a plaintext entry"
[ "$(grep -c OLDPLAIN-MARKER "$img")" -ge 1 ] || fail "the test's plaintext is not in the image"
printf 'NEW-SECRET-VALUE' | bs put "$img" legacy --encrypt --passphrase-file "$tmp/pw" --json >"$tmp/put.json"
[ "$(jq_py "$tmp/put.json" 'd["action"], d["entry"]["encryption"]')" = "('encrypted', 'aes-256-gcm')" ] ||
	fail "put --encrypt --json"
if grep -q "OLDPLAIN-MARKER" "$img"; then fail "plaintext left after put --encrypt"; fi
if grep -q "NEW-SECRET-VALUE" "$img"; then fail "the new value stored in plaintext"; fi
[ "$(bs get "$img" legacy --passphrase-file "$tmp/pw")" = NEW-SECRET-VALUE ] || fail "converted entry reads back"
# --plain does not decrypt; bs.key cannot go while entries need it.
expect_exit 8 bs put "$img" legacy --plain --passphrase-file "$tmp/pw" "$tmp/plain"
err_has "does not decrypt"
expect_exit 8 bs rm "$img" bs.key --force
err_has "can never be read again"

bs get "$img" vtpm -n permall --passphrase-file "$tmp/pw" -o "$tmp/got" --force
cmp "$tmp/got" "$tmp/big" || fail "decrypted data differs"
bs get "$img" vtpm -n volatilestate --passphrase-fd 4 -o "$tmp/got" --force 4<"$tmp/pw"
cmp "$tmp/got" "$tmp/plain" || fail "decrypted data differs (chacha20-poly1305)"
[ "$(bs get "$img" note)" = public ] || fail "plain entry unreadable"
# Decrypted data written to a file is private.
bs get "$img" vtpm -n permall --passphrase-file "$tmp/pw" -o "$tmp/secret.out"
[ "$(stat -c %a "$tmp/secret.out")" = 600 ] || fail "decrypted data in a file others can read"

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
bs get "$img" vtpm -n permall --key-file "$tmp/key.hex" -o "$tmp/got" --force
cmp "$tmp/got" "$tmp/big" || fail "data differs after rekey"
expect_exit 1 bs rekey "$img" --key-file "$tmp/key.hex"
bs rekey "$img" --key-file "$tmp/key.hex" --new-passphrase-fd 5 --kdf pbkdf2-sha256 \
	--pbkdf2-iter 1000 5<"$tmp/badpw" >/dev/null
expect_exit 7 bs get "$img" vtpm -n permall --key-file "$tmp/key.hex"
bs get "$img" vtpm -n volatilestate --passphrase-file "$tmp/badpw" -o "$tmp/got" --force
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
# Without the key, check can verify the slot checksums only: they pass, and
# check says how many entries it could not authenticate.
bs check "$img" >"$tmp/out"
grep -q "^note: 3 encrypted entries were checked without the key" "$tmp/out" ||
	{ cat "$tmp/out"; fail "check does not count the unauthenticated entries"; }
bs check --json "$img" >"$tmp/check.json"
[ "$(jq_py "$tmp/check.json" 'd["ok"], d["unauthenticated_count"]')" = "(True, 3)" ] ||
	fail "check --json unauthenticated_count"

bs help rekey >/dev/null
bs --help | grep -- "--passphrase-fd" >/dev/null || fail "--passphrase-fd missing from --help"
echo "ok"
