#!/usr/bin/env bash
# test_versioned.sh - the three versions of examples/versioned/device.c over
# one image: upgrades and downgrades at the field, attribute and entry-type
# level (docs/DEVICE-API.md).  Needs BUILD_DIR (the examples are built there).
set -euo pipefail
ex=${BUILD_DIR:?}/examples
v1=$ex/versioned-v1 v2=$ex/versioned-v2 v3=$ex/versioned-v3
for v in "$v1" "$v2" "$v3"; do [ -x "$v" ] || { echo "missing $v (make tests)"; exit 1; }; done
dir=$(mktemp -d "${TMPDIR:-/tmp}/versioned.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
line() { grep -E "^$2( |=|$)" "$1" || true; }

echo "== v2 reads a v1 image: defaults for what v1 never wrote"
img=$dir/a.img
$v1 "$img" write 5 hello
$v2 "$img" read > "$dir/out"
grep -qx 'a=5' "$dir/out" && grep -qx 'b=hello' "$dir/out" && grep -qx 'c=none' "$dir/out" ||
	fail "v2 over v1: $(cat "$dir/out")"

if [ -n "${BLOBSTORE:-}" ] && command -v asn1Decoding >/dev/null; then
	echo "== the record in the data decodes as Blobstore.Record with libtasn1"
	"$BLOBSTORE" get "$img" versioned.state --name dev0 -o "$dir/rec.der"
	asn1Decoding "${SRCDIR:-.}/blobstore/blobstore.asn" "$dir/rec.der" Blobstore.Record \
		> "$dir/asn1" 2>&1 || true
	grep -q "Decoding: SUCCESS" "$dir/asn1" || fail "record does not decode: $(cat "$dir/asn1")"
fi

echo "== v1 reads a v2 image; after v1 writes, v2's items are still there byte for byte"
$v2 "$img" write 6 hi cval
$v2 "$img" dump > "$dir/v2.before"
$v1 "$img" read > "$dir/out"
grep -qx 'a=6' "$dir/out" && grep -qx 'b=hi' "$dir/out" || fail "v1 over v2: $(cat "$dir/out")"
$v1 "$img" write 7 again
$v2 "$img" dump > "$dir/v2.after"
grep -qx 'c=cval' "$dir/v2.after" || fail "field c lost: $(cat "$dir/v2.after")"
grep -qx 'a=7' "$dir/v2.after" || fail "v1's write not visible"
# Field c (encoding), attribute v2.serial and entry type versioned.log, as v2 wrote them.
for item in "field c" "attr v2.serial" "entry versioned.log"; do
	before=$(line "$dir/v2.before" "$item"); after=$(line "$dir/v2.after" "$item")
	[ -n "$before" ] || fail "v2 did not write $item"
	[ "$before" = "$after" ] || fail "$item changed: '$before' -> '$after'"
done
# v1 sees c as an unknown optional field and keeps it.
$v1 "$img" dump | grep '^field c optional unknown 0c046376616c$' >/dev/null || fail "v1 does not show c as unknown"

echo "== v1 and v2 refuse a v3 image, name the item, exit non-zero, change nothing"
refuse() { # refuse WHAT PATTERN: v3 adds WHAT, v1 and v2 must refuse naming PATTERN
	local what=$1 pat=$2 f=$dir/v3-$1.img
	cp "$img" "$f"
	$v3 "$f" write 8 x y 9 --new="$what"
	$v3 "$f" read | grep -x 'd=9' >/dev/null || [ "$what" != field ] || fail "v3 cannot read its own image"
	cp "$f" "$f.orig"
	for v in "$v1" "$v2"; do
		for cmd in read "write 1 2"; do
			set +e
			# shellcheck disable=SC2086
			$v "$f" $cmd > "$dir/out" 2> "$dir/err"
			rc=$?
			set -e
			[ $rc -ne 0 ] || fail "$(basename "$v") $cmd accepted a v3 $what"
			grep -q "$pat" "$dir/err" || fail "error does not name the $what: $(cat "$dir/err")"
			cmp "$f" "$f.orig" || fail "$(basename "$v") $cmd changed the image"
		done
	done
	echo "   $what: $(cat "$dir/err")"
}
refuse field "unknown mandatory field 'd'"
refuse attr "unknown mandatory attribute 'v3.layout'"
refuse type "unknown mandatory entry type 'versioned.keys'"

echo "== v3 keeps what v2 added, and reads its own mandatory items back"
f=$dir/v3-all.img
cp "$img" "$f"
$v3 "$f" write 9 z w 11
$v3 "$f" dump > "$dir/v3"
grep -qx 'd=11' "$dir/v3" && grep -qx 'c=w' "$dir/v3" || fail "v3: $(cat "$dir/v3")"
grep -q '^attr v3.layout mandatory 020103$' "$dir/v3" || fail "v3.layout missing"
grep -q '^entry versioned.keys$' "$dir/v3" && grep -q '^entry versioned.log$' "$dir/v3" ||
	fail "entry types missing"
echo OK
