#!/usr/bin/env bash
# test_uefi_json.sh - virt-firmware's JSON: 'uefi export IMAGE F.json' and
# 'uefi import IMAGE F.json' against files virt-fw-vars wrote (committed in
# uefi_data/, see its README: CI has no virt-firmware), round trips through
# JSON and varstore files, enrollment compared with virt-fw-vars', and
# malformed JSON refused with the line, column and octet.  With
# VIRT_FW_VARS=/path/to/virt-fw-vars set, also against the live program.
set -euo pipefail
BS=${BLOBSTORE:?}
here=$(cd "$(dirname "$0")" && pwd)
data=$here/uefi_data
py="python3 $here/uefi_varstore.py"
ovmf=/usr/share/OVMF
if [ ! -r $ovmf/OVMF_VARS_4M.ms.fd ] || [ ! -r $ovmf/OVMF_VARS_4M.fd ]; then
	echo "SKIP: Debian's ovmf is not installed"
	exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/uefijson.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# same_vars A.json B.json: the same variables (each object equal), any order.
same_vars() {
	python3 - "$1" "$2" <<'EOF' || fail "$1 and $2 hold other variables"
import json, sys
a, b = (json.load(open(f))["variables"] for f in sys.argv[1:3])
key = lambda v: (v["guid"], v["name"])
da, db = {key(v): v for v in a}, {key(v): v for v in b}
assert len(da) == len(a) and len(db) == len(b), "duplicates"
for k in sorted(set(da) | set(db)):
    if da.get(k) != db.get(k):
        print("differs:", k, da.get(k), db.get(k))
        sys.exit(1)
EOF
}

echo "== export: byte for byte what virt-fw-vars --output-json wrote"
$BS uefi import "$dir/ms.img" $ovmf/OVMF_VARS_4M.ms.fd
$BS uefi export "$dir/ms.img" "$dir/ms.json"
if [ "$(sha256sum < $ovmf/OVMF_VARS_4M.ms.fd | cut -d' ' -f1)" = \
	e6044c5d1fd81998a5967d907ec425e48da534832c7d9b0b4c7a702b62019c50 ]; then
	cmp "$dir/ms.json" "$data/OVMF_VARS_4M.ms.json" || fail "export differs from virt-fw-vars'"
else
	echo "   (another OVMF_VARS_4M.ms.fd than the fixture's: compared by variables only)"
fi
same_vars "$dir/ms.json" "$data/OVMF_VARS_4M.ms.json"
$BS uefi export "$dir/ms.img" "$dir/ms2.fd" --format json
cmp "$dir/ms.json" "$dir/ms2.fd" || fail "--format json and .json give other output"

echo "== import of virt-fw-vars' JSON, then a varstore file: the same variables"
$BS uefi import "$dir/j.img" "$data/OVMF_VARS_4M.ms.json" --template $ovmf/OVMF_VARS_4M.fd
$BS uefi export "$dir/j.img" "$dir/j.fd"
$py check "$dir/j.fd" >/dev/null
$py vars $ovmf/OVMF_VARS_4M.ms.fd | cut -d' ' -f1,2,5,6 > "$dir/src.vars"
$py vars "$dir/j.fd" | cut -d' ' -f1,2,5,6 > "$dir/j.vars"
diff "$dir/src.vars" "$dir/j.vars" || fail "JSON import changed variables"
$BS uefi export "$dir/j.img" "$dir/j.json"
cmp "$dir/ms.json" "$dir/j.json" || fail "JSON round trip differs"

echo "== the inputs virt-fw-vars takes, read as it reads them"
$BS uefi import "$dir/v.img" "$data/input-variants.json"
$BS uefi export "$dir/v.img" "$dir/v.json"
cmp "$dir/v.json" "$data/input-variants.out.json" || fail "input variants read otherwise"
$BS uefi get "$dir/v.img" "EfiGlobalVariable:MyVar" -o "$dir/myvar"
[ "$(od -An -tx1 "$dir/myvar" | tr -d ' \n')" = deadbeef ] || fail "GUID by name"

echo "== enroll as virt-fw-vars does"
$BS uefi import "$dir/e.img" $ovmf/OVMF_VARS_4M.fd
$BS uefi enroll "$dir/e.img" --set-pk 8be4df61-93ca-11d2-aa0d-00e098032b8c "$data/enroll-cert.pem" \
	--add-kek a0baa8a3-041d-48a8-bc87-c36d121b5e3d "$data/enroll-cert.pem" \
	--add-db MicrosoftVendor "$data/enroll-cert.pem" --secure-boot >/dev/null
$BS uefi export "$dir/e.img" "$dir/e.json"
same_vars "$dir/e.json" "$data/enroll.json"
# Again: the same certificates are not added twice, nothing changes.
$BS uefi enroll "$dir/e.img" --add-kek a0baa8a3-041d-48a8-bc87-c36d121b5e3d "$data/enroll-cert.pem" \
	| grep -q "already present" || fail "a second enroll added the certificate again"
$BS uefi export "$dir/e.img" "$dir/e2.json"
cmp "$dir/e.json" "$dir/e2.json" || fail "a repeated enroll changed the store"

echo "== refusals: existing files and images, malformed JSON"
set +e
$BS uefi export "$dir/e.img" "$dir/e.json" 2> "$dir/err"; rc=$?
set -e
[ $rc -eq 8 ] && grep -q -- "--force replaces it" "$dir/err" || fail "export overwrote a file (exit $rc)"
$BS uefi export "$dir/e.img" "$dir/e.json" --force
set +e
$BS uefi import "$dir/e.img" "$data/input-variants.json" 2> "$dir/err"; rc=$?
set -e
[ $rc -eq 8 ] && grep -q "already holds 6 UEFI variables, among them the Secure Boot keys" "$dir/err" ||
	fail "import replaced variables without --force (exit $rc: $(cat "$dir/err"))"
$BS uefi export "$dir/e.img" "$dir/before.json" --force
bad() { # bad NAME JSON MESSAGE: refused, image unchanged
	printf '%s' "$2" > "$dir/bad.json"
	set +e
	$BS uefi import --force "$dir/e.img" "$dir/bad.json" 2> "$dir/err"; rc=$?
	set -e
	[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "$1: exit $rc"
	grep -qF -- "$3" "$dir/err" || fail "$1: message $(cat "$dir/err")"
	$BS uefi export "$dir/e.img" "$dir/after.json" --force
	cmp -s "$dir/before.json" "$dir/after.json" || fail "$1: the image changed"
}
g='"guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c"'
bad "not JSON" '{"version": 2, "variables": [' "end of input"
bad "bad hex" "{\"variables\": [{\"name\": \"X\", $g, \"data\": \"0g\"}]}" "line 1 column"
bad "version" "{\"version\": 3, \"variables\": []}" "version 3"
bad "no data" "{\"variables\": [{\"name\": \"X\", $g}]}" "has no \"data\""
bad "unknown key" "{\"variables\": [{\"name\": \"X\", $g, \"data\": \"\", \"count\": 1}]}" \
	'unknown key "count"'
bad "twice" "{\"variables\": [{\"name\": \"X\", $g, \"data\": \"\"}, {\"name\": \"X\", $g, \"data\": \"00\"}]}" \
	"are both"
bad "garbage db" '{"variables": [{"name": "db", "guid": "EfiImageSecurityDatabase", "data": "00112233"}]}' \
	"not a valid EFI_SIGNATURE_LIST"
bad "volatile" "{\"variables\": [{\"name\": \"SecureBoot\", $g, \"attr\": 6, \"data\": \"01\"}]}" \
	"is volatile"
bad "no NV" "{\"variables\": [{\"name\": \"X\", $g, \"attr\": 6, \"data\": \"01\"}]}" "lack NV"

if [ -n "${VIRT_FW_VARS:-}" ]; then
	echo "== against virt-fw-vars itself ($VIRT_FW_VARS)"
	# Ours into theirs: --set-json over the empty template gives a store
	# with our variables.
	$VIRT_FW_VARS -i $ovmf/OVMF_VARS_4M.fd --set-json "$dir/ms.json" -o "$dir/theirs.fd" 2>/dev/null
	$py vars "$dir/theirs.fd" | cut -d' ' -f1,2,5,6 | sort > "$dir/theirs.vars"
	sort "$dir/src.vars" | diff - "$dir/theirs.vars" || fail "virt-fw-vars read our JSON otherwise"
	# Theirs into ours, with an enrollment of theirs.
	$VIRT_FW_VARS -i $ovmf/OVMF_VARS_4M.fd --set-pk 8be4df61-93ca-11d2-aa0d-00e098032b8c \
		"$data/enroll-cert.pem" --secure-boot --output-json "$dir/live.json" 2>/dev/null
	$BS uefi import "$dir/live.img" "$dir/live.json"
	$BS uefi export "$dir/live.img" "$dir/live2.json"
	cmp "$dir/live.json" "$dir/live2.json" || fail "virt-fw-vars' JSON did not come back"
fi
echo OK
