#!/usr/bin/env bash
# test_uefi.sh - UEFI variable store: import edk2 varstore files (Debian's
# ovmf), export, import again; the variables survive, the exported file has
# the layout edk2 expects (checked by an independent reader), the tool can
# list/get/set/rm, unknown attributes are kept, and hostile files are
# refused without a crash.
set -euo pipefail
BS=${BLOBSTORE:?}
here=$(cd "$(dirname "$0")" && pwd)
py="python3 $here/uefi_varstore.py"
ovmf=/usr/share/OVMF
if [ ! -r $ovmf/OVMF_VARS_4M.ms.fd ]; then
	echo "SKIP: $ovmf/OVMF_VARS_4M.ms.fd missing (apt-get install ovmf)"
	exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/uefi.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for f in OVMF_VARS_4M.fd OVMF_VARS_4M.ms.fd; do
	echo "== $f: import, export, import again"
	src=$ovmf/$f
	$BS uefi import "$dir/a.img" "$src"
	$BS uefi export "$dir/a.img" "$dir/a.fd"
	[ "$(stat -c %s "$dir/a.fd")" = "$(stat -c %s "$src")" ] || fail "exported size differs"
	$py check "$dir/a.fd"
	# Same variables (GUID, name, attributes, count, pubkey index, timestamp, data).
	$py vars "$src" > "$dir/src.vars"
	$py vars "$dir/a.fd" > "$dir/a.vars"
	diff "$dir/src.vars" "$dir/a.vars" || fail "variables differ after export"
	$BS uefi import "$dir/b.img" "$dir/a.fd"
	$BS uefi list "$dir/a.img" --json > "$dir/a.json"
	$BS uefi list "$dir/b.img" --json > "$dir/b.json"
	cmp "$dir/a.json" "$dir/b.json" || fail "second import lists other variables"
	$BS uefi export "$dir/b.img" "$dir/b.fd"
	cmp "$dir/a.fd" "$dir/b.fd" || fail "second export differs"
	# Outside the variable area the file is the original byte for byte.
	$BS uefi export "$dir/a.img" "$dir/t.fd" --template "$src"
	cmp "$dir/a.fd" "$dir/t.fd" || fail "saved layout and --template give other files"
	rm -f "$dir/a.img" "$dir/b.img"
done

echo "== the store from OVMF_VARS_4M.ms.fd holds the Secure Boot keys"
$BS uefi import "$dir/ms.img" $ovmf/OVMF_VARS_4M.ms.fd
$BS uefi list "$dir/ms.img" > "$dir/list"
for v in 8be4df61-93ca-11d2-aa0d-00e098032b8c:PK 8be4df61-93ca-11d2-aa0d-00e098032b8c:KEK \
	d719b2cb-3d3a-4596-a3bc-dad00e67656f:db; do
	grep -q "^$v  attributes=0x27 " "$dir/list" || fail "$v missing or wrong attributes"
done
# Deleted copies in the original (state 0x3c) are not imported.
n=$(grep -c '^[0-9a-f-]*:' "$dir/list")
[ "$n" = "$($py vars $ovmf/OVMF_VARS_4M.ms.fd | wc -l)" ] || fail "variable count $n"

echo "== get, set, rm through the tool"
g=8be4df61-93ca-11d2-aa0d-00e098032b8c
$BS uefi get "$dir/ms.img" $g:Timeout -o "$dir/timeout"
[ "$(od -An -tx1 "$dir/timeout" | tr -d ' \n')" = "0000" ] || fail "Timeout is not 0"
printf '\005\000' | $BS uefi set "$dir/ms.img" $g:Timeout
printf 'hello' > "$dir/hello"
$BS uefi set "$dir/ms.img" 12345678-1234-5678-9abc-def012345678:Test-ä -i "$dir/hello" --attributes 0x3
$BS uefi rm "$dir/ms.img" $g:Key0001
$BS uefi export "$dir/ms.img" "$dir/ms.fd"
$py check "$dir/ms.fd"
$py vars "$dir/ms.fd" > "$dir/ms.vars"
grep -q "^$g:Timeout 7 0 0 0\{32\} $(printf '\005\000' | sha256sum | cut -d' ' -f1)$" "$dir/ms.vars" ||
	fail "Timeout not updated: $(grep Timeout "$dir/ms.vars")"
grep -q "^12345678-1234-5678-9abc-def012345678:Test-ä 3 0 0 0\{32\} $(sha256sum < "$dir/hello" | cut -d' ' -f1)$" \
	"$dir/ms.vars" || fail "new variable missing"
! grep -q ":Key0001 " "$dir/ms.vars" || fail "Key0001 not removed"
set +e
$BS uefi get "$dir/ms.img" $g:Key0001 -o "$dir/x"; rc=$?
set -e
[ $rc -eq 2 ] || fail "get of a removed variable: exit $rc, not 2"

echo "== an attribute the UEFI layer does not know is shown and kept"
$BS attr "$dir/ms.img" uefi.var --name $g:Lang --set note=str:mine
$BS uefi list "$dir/ms.img" | grep -A1 ":Lang " | grep 'attribute note = UTF8String "mine"' >/dev/null ||
	fail "unknown attribute not shown"
printf 'fra\0' | $BS uefi set "$dir/ms.img" $g:Lang
$BS attr "$dir/ms.img" uefi.var --name $g:Lang | grep note >/dev/null || fail "unknown attribute dropped"

echo "== hostile varstore files are refused, never crash"
cp $ovmf/OVMF_VARS_4M.ms.fd "$dir/bad.fd"
printf '\001' | dd of="$dir/bad.fd" bs=1 seek=$((0x32)) conv=notrunc status=none
refuse() {
	set +e
	$BS uefi import "$dir/h.img" "$1" 2> "$dir/err"
	rc=$?
	set -e
	[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "$2: exit $rc"
	grep -q "$3" "$dir/err" || fail "$2: message $(cat "$dir/err")"
}
refuse "$dir/bad.fd" "bad checksum" "checksum"
head -c 100 $ovmf/OVMF_VARS_4M.ms.fd > "$dir/short.fd"
refuse "$dir/short.fd" "truncated" "varstore"
cp $ovmf/OVMF_VARS_4M.ms.fd "$dir/big.fd"
# First variable's NameSize (offset 0x64 + 36) claims 4 GB.
printf '\377\377\377\377' | dd of="$dir/big.fd" bs=1 seek=$((0x64 + 36)) conv=notrunc status=none
refuse "$dir/big.fd" "huge name size" "runs past"
echo OK
