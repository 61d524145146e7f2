#!/usr/bin/env bash
# tests/integration/test_cli_forged_end.sh - an old image (free space of
# zeros) whose free element lost one length bit: the zeros read as the
# end-of-contents and hide the entries after it.  'check' exits 3 naming
# the offset, 'put' and 'compact' refuse (exit 3) and leave the file as it
# was, 'salvage' brings the hidden entries back.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

img=$tmp/old.img
bs format "$img" >/dev/null
printf aaa >"$tmp/a"
printf bbb >"$tmp/b"
printf ccc >"$tmp/c"
bs put "$img" vtpm --name a "$tmp/a"
bs put "$img" tmp --name d --capacity 300 "$tmp/a"
bs put "$img" nvram --name b "$tmp/b"
bs put "$img" cfg "$tmp/c"
d_off=$(bs list --json "$img" | jq_py /dev/stdin '[e["offset"] for e in d["entries"] if e["type"] == "tmp"][0]')
b_off=$(bs list --json "$img" | jq_py /dev/stdin '[e["offset"] for e in d["entries"] if e["type"] == "nvram"][0]')
bs rm "$img" tmp --name d
checked "$img"
# Zeros where the delete wrote ff (an image written before that change),
# then the bit: 04 82 LL LL -> 04 02 LL LL.
python3 - "$img" "$d_off" <<'PY'
import sys
p, d = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
assert b[d] == 0x04 and b[d + 1] == 0x82, b[d:d + 4].hex()
n = b[d + 2] << 8 | b[d + 3]
assert b[d + 4:d + 4 + n] == b"\xff" * n
b[d + 4:d + 4 + n] = bytes(n)
b[d + 1] ^= 0x80
open(p, "wb").write(b)
PY
sum=$(sha256sum <"$img")
expect_exit 3 bs check "$img"
grep -qF "at offset $b_off: an entry follows the end-of-contents at offset $((d_off + 4))" "$tmp/out" ||
	{ cat "$tmp/out" >&2; fail "check does not name the hidden entry"; }
grep -qF "blobstore salvage" "$tmp/out" || fail "check does not point to salvage"
expect_exit 3 bs put "$img" new "$tmp/a"
err_has "an entry follows the end-of-contents"
expect_exit 3 bs compact "$img"
err_has "an entry follows the end-of-contents"
[ "$(sha256sum <"$img")" = "$sum" ] || fail "a refused change wrote to the image"
# Exit 3: the forged free element and the zeros behind it count as damage.
expect_exit 3 bs salvage "$img" "$tmp/new.img"
grep -qF "'nvram'/'b' -> offset" "$tmp/out" || { cat "$tmp/out" >&2; fail "b not in the report"; }
checked "$tmp/new.img"
[ "$(bs get "$tmp/new.img" nvram --name b)" = bbb ] || fail "b not recovered"
[ "$(bs get "$tmp/new.img" cfg)" = ccc ] || fail "cfg not recovered"
[ "$(bs get "$tmp/new.img" vtpm --name a)" = aaa ] || fail "a not recovered"
echo "ok: a forged end-of-contents is reported, refused and salvaged"
