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
	$BS uefi export "$dir/a.img" "$dir/a.fd" --force
	[ "$(stat -c %s "$dir/a.fd")" = "$(stat -c %s "$src")" ] || fail "exported size differs"
	$py check "$dir/a.fd"
	# Same variables (GUID, name, attributes, count, pubkey index, timestamp, data).
	$py vars "$src" > "$dir/src.vars"
	$py vars "$dir/a.fd" > "$dir/a.vars"
	diff "$dir/src.vars" "$dir/a.vars" || fail "variables differ after export"
	$BS uefi import "$dir/b.img" "$dir/a.fd"
	$BS uefi list "$dir/a.img" --json | sed 's|^{"image": "[^"]*"|{|' > "$dir/a.json"
	$BS uefi list "$dir/b.img" --json | sed 's|^{"image": "[^"]*"|{|' > "$dir/b.json"
	cmp "$dir/a.json" "$dir/b.json" || fail "second import lists other variables"
	$BS uefi export "$dir/b.img" "$dir/b.fd" --force
	cmp "$dir/a.fd" "$dir/b.fd" || fail "second export differs"
	# Outside the variable area the file is the original byte for byte.
	$BS uefi export "$dir/a.img" "$dir/t.fd" --template "$src" --force
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
$BS uefi export "$dir/ms.img" "$dir/ms.fd" --force
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

echo "== names alone, attribute names"
$BS uefi get "$dir/ms.img" Timeout -o "$dir/t2"
[ "$(od -An -tx1 "$dir/t2" | tr -d ' \n')" = 0500 ] || fail "Timeout by name"
$BS uefi get "$dir/ms.img" InitialAttemptOrder -o /dev/null # unique in the store
$BS uefi set "$dir/ms.img" 11111111-2222-3333-4444-555555555555:Lang --attributes NV,BS < /dev/null
set +e
$BS uefi get "$dir/ms.img" Lang -o /dev/null 2> "$dir/err"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "ambiguous: .*8be4df61-93ca-11d2-aa0d-00e098032b8c:Lang.*11111111-2222-3333-4444-555555555555:Lang" "$dir/err" ||
	fail "an ambiguous name: exit $rc, $(cat "$dir/err")"
$BS uefi rm "$dir/ms.img" 11111111-2222-3333-4444-555555555555:Lang
$BS uefi get "$dir/ms.img" Lang -o /dev/null
$BS uefi set "$dir/ms.img" "{12345678-1234-5678-9ABC-DEF012345678}:Test-ä" --attributes 'NV|BS|RT' -i "$dir/hello"
$BS uefi list "$dir/ms.img" | grep -q '^12345678-1234-5678-9abc-def012345678:Test-ä  attributes=0x7 (NV,BS,RT) size=5$' ||
	fail "attribute names in and out"

echo "== list and get decode"
$BS uefi list "$dir/ms.img" > "$dir/list"
grep -A1 ':Boot0001 ' "$dir/list" | grep -q 'load option "UEFI QEMU HARDDISK QM00001 " PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0) (active)' ||
	fail "Boot0001 not decoded"
grep -A1 ':ConOut ' "$dir/list" | grep -q 'device path PciRoot(0x0)/Pci(0x1F,0x0)/Serial(0x0)/Uart(115200,8,N,1)/VenPcAnsi(),PciRoot' ||
	fail "ConOut not decoded"
grep -A2 ':KEK ' "$dir/list" | grep -q 'x509 owner 77fa9abd-0359-4d32-bd60-28f4e78f784b: subject CN=Microsoft Corporation KEK CA 2011,.*issuer CN=Microsoft Corporation Third Party Marketplace Root' ||
	fail "KEK certificates not decoded"
grep -A1 ':dbx ' "$dir/list" | grep -q 'sha256 owner a0baa8a3-041d-48a8-bc87-c36d121b5e3d: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' ||
	fail "dbx hash not decoded"
grep -A1 ':PlatformLang ' "$dir/list" | grep -q 'string "en"' || fail "PlatformLang not decoded"
$BS uefi get "$dir/ms.img" PK --decode | grep -q 'subject emailAddress=debian-devel@lists.debian.org,CN=Debian UEFI Secure Boot (PK/KEK key)' ||
	fail "get --decode PK"
$BS uefi list "$dir/ms.img" --json > "$dir/l.json"
python3 - "$dir/l.json" <<'PY' || fail "list --json"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"image", "variable_count", "variables"} and d["variable_count"] == len(d["variables"])
v = {x["name"]: x for x in d["variables"]}
for x in d["variables"]:
    assert set(x) == {"name", "guid", "attr", "attr_names", "size", "data", "decoded", "time",
                      "monotonic_count", "pubkey_index", "attributes"}, x.keys()
    assert x["size"] == len(x["data"]) // 2
assert v["PK"]["attr_names"] == ["NV", "BS", "RT", "AT"] and v["PK"]["time"] == "2025-03-10T02:53:39Z"
s = v["db"]["decoded"]["signatures"]
assert [x["type"] for x in s] == ["x509", "x509"] and s[1]["subject"].startswith("CN=Microsoft Corporation UEFI CA 2011")
assert v["dbx"]["decoded"]["signatures"][0]["hash"].startswith("e3b0c442")
b = v["Boot0001"]["decoded"]
assert b["kind"] == "load_option" and b["device_path"].endswith("Sata(0x0,0xFFFF,0x0)") and b["active"]
assert v["Timeout"]["decoded"] == {"kind": "integer", "value": 5, "size": 2}
PY
$BS uefi get "$dir/ms.img" Boot0000 --json > "$dir/g.json"
python3 - "$dir/g.json" <<'PY' || fail "get --json"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"image", "output", "variable"} and d["output"] is None
o = d["variable"]["decoded"]
assert o["kind"] == "load_option" and o["description"] == "UiApp" and o["active"] is True
assert o["device_path"] == "Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(462CAA21-7614-4503-836E-8AB6F4662331)"
PY

echo "== set checks first, changes nothing when refused"
$BS uefi export "$dir/ms.img" "$dir/before.fd"
refuse_set() { # refuse_set WHAT MESSAGE ARGS...: refused, the store unchanged
	local what=$1 msg=$2
	shift 2
	set +e
	$BS uefi set "$dir/ms.img" "$@" 2> "$dir/err"; rc=$?
	set -e
	[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "$what: exit $rc"
	grep -q -- "$msg" "$dir/err" || fail "$what: message $(cat "$dir/err")"
	$BS uefi export "$dir/ms.img" "$dir/after.fd" --force
	cmp -s "$dir/before.fd" "$dir/after.fd" || fail "$what: the store changed"
}
printf 'garbage' > "$dir/garbage"
refuse_set "garbage as db" "not a valid EFI_SIGNATURE_LIST" db -i "$dir/garbage"
refuse_set "no NV" "lack NV" 12345678-1234-5678-9abc-def012345678:Vol --attributes BS,RT -i "$dir/hello"
refuse_set "AW" "AW is deprecated" 12345678-1234-5678-9abc-def012345678:Aw --attributes NV,BS,AW -i "$dir/hello"
refuse_set "wrong attributes" "must have the attributes NV,BS,RT,AT" KEK --attributes NV,BS,RT -i "$dir/garbage"
refuse_set "volatile" "is volatile" SetupMode -i "$dir/hello"
head -c 40000 /dev/zero > "$dir/big"
refuse_set "too large" "allows at most 33792" 12345678-1234-5678-9abc-def012345678:Big -i "$dir/big"
head -c 30000 /dev/zero > "$dir/30k"
for i in 1 2 3 4 5 6 7 8; do
	$BS uefi set "$dir/ms.img" 12345678-1234-5678-9abc-def012345678:Fill$i -i "$dir/30k"
done
$BS uefi export "$dir/ms.img" "$dir/before.fd" --force
refuse_set "store full" "of the variable store's 262044" 12345678-1234-5678-9abc-def012345678:Fill9 -i "$dir/30k"
for i in 1 2 3 4 5 6 7 8; do $BS uefi rm "$dir/ms.img" 12345678-1234-5678-9abc-def012345678:Fill$i; done

if command -v sign-efi-sig-list >/dev/null && command -v cert-to-efi-sig-list >/dev/null; then
	echo "== an authenticated write (sign-efi-sig-list): header checked, time kept, data stored"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=blobstore test KEK/" \
		-keyout "$dir/kek.key" -out "$dir/kek.pem" 2>/dev/null
	cert-to-efi-sig-list -g 11111111-2222-3333-4444-555555555555 "$dir/kek.pem" "$dir/db.esl" >/dev/null
	sign-efi-sig-list -t "2030-01-02 03:04:05" -k "$dir/kek.key" -c "$dir/kek.pem" db "$dir/db.esl" \
		"$dir/db.auth" >/dev/null
	$BS uefi set "$dir/ms.img" db -i "$dir/db.auth"
	$BS uefi get "$dir/ms.img" db -o "$dir/db.got"
	cmp "$dir/db.esl" "$dir/db.got" || fail "the authentication header was stored"
	$BS uefi get "$dir/ms.img" db --decode | grep -q 'time 2030-01-02T03:04:05Z' || fail "header time not kept"
	# A damaged header (CertType) is refused with its offset.
	cp "$dir/db.auth" "$dir/bad.auth"
	printf '\000' | dd of="$dir/bad.auth" bs=1 seek=24 conv=notrunc status=none
	$BS uefi export "$dir/ms.img" "$dir/before.fd" --force
	refuse_set "bad auth header" "at octet 24: authentication header CertType" db -i "$dir/bad.auth"
fi

echo "== an attribute the UEFI layer does not know is shown and kept"
$BS attr "$dir/ms.img" uefi.var --name $g:Lang --set note=str:mine
$BS uefi list "$dir/ms.img" | grep -A2 ":Lang " | grep 'attribute note = UTF8String "mine"' >/dev/null ||
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
