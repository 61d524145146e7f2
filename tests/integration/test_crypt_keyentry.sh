#!/usr/bin/env bash
# tests/integration/test_crypt_keyentry.sh - an image whose key entry
# (bs.key) is lost or damaged while encrypted entries remain: no command
# takes it for an image without encryption.  check reports it (exit 3, with
# and without the key), reads and rekey say why nothing can open the
# entries, encrypt-init and blobstore-vtpm refuse to install a new key over
# them, put refuses to add plaintext, and nothing changes the image.
. "$(dirname "$0")/cli_common.sh"

img=$tmp/enc.img
head -c 32 /dev/urandom >"$tmp/key"
bs format "$img" >/dev/null
bs encrypt-init "$img" --key-file "$tmp/key" >/dev/null
printf 'secret value' | bs put "$img" tpm2.libtpms --name permall --key-file "$tmp/key"
printf 'plain value' | bs put "$img" nvram --plain --key-file "$tmp/key"
checked "$img"
lost="key entry (bs.key) is missing or damaged"

# damage IMAGE HOW - one changed octet in the key entry: its type, or its
# entry header (the entry is then refused).
damage() {
	python3 - "$1" "$2" <<'PY'
import sys
p, how = sys.argv[1], sys.argv[2]
b = bytearray(open(p, "rb").read())
i = b.find(b"\x16\x06bs.key")
assert i > 0 and b.find(b"\x16\x06bs.key", i + 1) < 0
if how == "type":
    b[i + 7] = ord("z")          # "bs.kez"
else:
    b[i + 2] = ord("B")          # "Bs.key": not the library's type
open(p, "wb").write(bytes(b))
PY
}

for how in type other; do
	echo "== the key entry's type damaged ($how)"
	cp "$img" "$tmp/d.img"
	damage "$tmp/d.img" "$how"
	cp "$tmp/d.img" "$tmp/d.orig"
	expect_exit 3 bs check "$tmp/d.img"
	grep -q "1 encrypted entry: the image's $lost" "$tmp/out" || { cat "$tmp/out"; fail "check does not report the lost key entry"; }
	grep -q "no problems" "$tmp/out" && fail "check says no problems"
	expect_exit 3 bs check --json "$tmp/d.img"
	json "$tmp/out"
	[ "$(jq_py "$tmp/out" 'd["ok"]')" = False ] || fail "check --json says ok"
	expect_exit 3 bs check "$tmp/d.img" --key-file "$tmp/key"
	err_has "$lost"
	expect_exit 3 bs get "$tmp/d.img" tpm2.libtpms --name permall --key-file "$tmp/key"
	err_has "$lost"
	grep -q "not set up for encryption" "$tmp/err" && fail "get advises encrypt-init"
	expect_exit 3 bs get "$tmp/d.img" tpm2.libtpms --name permall
	err_has "$lost"
	# The plaintext entries still read.
	[ "$(bs get "$tmp/d.img" nvram)" = "plain value" ] || fail "a plaintext entry is lost"
	expect_exit 3 bs encrypt-init "$tmp/d.img" --key-file "$tmp/key"
	err_has "$lost"
	err_has "encrypt-init would install a new key that cannot open them"
	expect_exit 3 bs rekey "$tmp/d.img" --key-file "$tmp/key" --new-key-file "$tmp/key"
	err_has "$lost"
	printf 'more' | expect_exit 3 bs put "$tmp/d.img" other
	err_has "$lost"
	cmp "$tmp/d.img" "$tmp/d.orig" || fail "a refused command changed the image"
	# The TPM server refuses it too, with the same explanation.
	if [ -x "$BUILD_DIR/blobstore-vtpm" ]; then
		rc=0
		timeout 30 "$BUILD_DIR/blobstore-vtpm" --image "$tmp/d.img" --key-file "$tmp/key" --port 2 \
			--flags not-need-init >"$tmp/out" 2>"$tmp/err" || rc=$?
		[ "$rc" -ne 0 ] || fail "blobstore-vtpm started on an image whose key entry is lost"
		err_has "$lost"
		cmp "$tmp/d.img" "$tmp/d.orig" || fail "blobstore-vtpm changed the image"
	fi
done
echo OK
