#!/usr/bin/env bash
# tests/integration/test_cli_salvage.sh - 'blobstore salvage DAMAGED NEW'
# through the tool: truncations and overwritten ranges (zeros, garbage) of
# an image with plaintext and encrypted entries; every entry wholly outside
# the damage comes back byte for byte with its type, name and attributes,
# the encrypted ones opening with the same key; DAMAGED is never written
# (its checksum before and after); the report names each entry recovered and
# each loss with offsets, as text and as JSON; NEW is never replaced without
# --force and never is DAMAGED.  (tests/unit/test_salvage.c covers many more
# damage patterns through the library.)
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

img=$tmp/vm.img
key=$tmp/key
head -c 32 /dev/urandom >"$key"
bs format "$img" >/dev/null
head -c 1229 /dev/urandom >"$tmp/permall"
head -c 9000 /dev/urandom >"$tmp/vars"
head -c 300 /dev/urandom >"$tmp/eeprom"
head -c 5000 /dev/urandom >"$tmp/big"
bs put "$img" vtpm --name permall --check sha256 --attr serial=007 --attr rev=int:3 "$tmp/permall"
bs put "$img" nvram --name vars --capacity 4K "$tmp/eeprom"
bs put "$img" nvram --name vars "$tmp/vars" # grows: a rewrite, free space behind
bs put "$img" eeprom --attr flag "$tmp/eeprom"
bs encrypt-init "$img" --key-file "$key" >/dev/null
bs put "$img" secret --name tpm --key-file "$key" "$tmp/big"
bs put "$img" tail --plain "$tmp/eeprom"
bs list --all --json "$img" --key-file "$key" >"$tmp/list.json"
checked "$img"
size=$(stat -c %s "$img")

# The entries: type, name, offset, length, the file with their data.
python3 - "$tmp/list.json" "$tmp" >"$tmp/model" <<'PY'
import json, sys
files = {("vtpm", "permall"): "permall", ("nvram", "vars"): "vars", ("eeprom", None): "eeprom",
         ("secret", "tpm"): "big", ("tail", None): "eeprom"}
for e in json.load(open(sys.argv[1]))["entries"]:
    f = files.get((e["type"], e["name"]), "-")
    print(e["type"], e["name"] if e["name"] is not None else "-", e["offset"], e["length"], f)
PY
[ "$(wc -l <"$tmp/model")" = 7 ] || { cat "$tmp/model"; fail "the model image"; }
# Where the image id lies (its bs.id attribute): encryption is bound to it.
id_off=$(python3 -c 'import sys; print(open(sys.argv[1],"rb").read().find(b"\x16\x05bs.id\x04\x10"))' "$img")

# verify NEW D0 D1 WHAT - every entry wholly outside [D0, D1) came back.
verify() {
	local new=$1 d0=$2 d1=$3 what=$4 type name off len file k=()
	# The key, when bs.key came back (a key for an image without it is an error).
	bs info --json "$new" | grep -q '"encrypted": true' && k=(--key-file "$key")
	while read -r type name off len file; do
		[ "$file" != - ] || continue
		if [ $((off + len)) -gt "$d0" ] && [ "$off" -lt "$d1" ]; then continue; fi
		# Encrypted under the image id, which the damage destroyed.
		if [ "$type" = secret ] && [ $((id_off + 25)) -gt "$d0" ] && [ "$id_off" -lt "$d1" ]; then
			continue
		fi
		local n=()
		[ "$name" = - ] || n=(--name "$name")
		if [ "$type" = secret ] && [ ${#k[@]} = 0 ]; then
			# bs.key was in the damage: the entry is there, undecryptable.
			bs info "$new" "$type" "${n[@]}" >/dev/null || fail "$what: $type/$name at $off did not come back"
			continue
		fi
		bs get "$new" "$type" "${n[@]}" "${k[@]}" -o "$tmp/got" --force ||
			fail "$what: $type/$name at $off did not come back"
		cmp -s "$tmp/got" "$tmp/$file" || fail "$what: $type/$name reads other data"
	done <"$tmp/model"
	# Attributes come back as they were.
	if ! awk '$1 == "vtpm" {exit !($3 + $4 > d0 && $3 < d1)}' d0="$d0" d1="$d1" "$tmp/model"; then
		bs attr "$new" vtpm --name permall >"$tmp/attr"
		grep -qF 'serial = UTF8String "007"' "$tmp/attr" || fail "$what: attribute serial"
		grep -qF 'rev = INTEGER 3' "$tmp/attr" || fail "$what: attribute rev"
	fi
	if [ ${#k[@]} = 0 ] && bs list --json "$new" | grep -q '"encryption": "'; then
		# Encrypted entries without bs.key: check reports the lost key entry.
		rc=0
		bs check "$new" >"$tmp/chk" || rc=$?
		[ "$rc" = 3 ] && grep -q "key entry (bs.key) is missing or damaged" "$tmp/chk" ||
			{ cat "$tmp/chk"; fail "$what: check does not report the lost key entry"; }
	else
		bs check "$new" "${k[@]}" >/dev/null || fail "$what: the new image does not pass check"
	fi
}

# salvage_case D0 D1 WHAT - salvages $tmp/d.img into a fresh NEW; the
# damaged file must not change.
salvage_case() {
	local before after rc=0
	before=$(sha256sum "$tmp/d.img" | cut -d' ' -f1)
	rm -f "$tmp/new.img"
	bs salvage "$tmp/d.img" "$tmp/new.img" >"$tmp/report" 2>"$tmp/err" || rc=$?
	after=$(sha256sum "$tmp/d.img" | cut -d' ' -f1)
	[ "$before" = "$after" ] || fail "$3: salvage changed the damaged image"
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { cat "$tmp/err"; fail "$3: salvage exited $rc"; }
	grep -q "entr[a-z]* recovered into $tmp/new.img, [0-9]* lost$" "$tmp/report" ||
		{ cat "$tmp/report"; fail "$3: no summary"; }
	verify "$tmp/new.img" "$1" "$2" "$3"
}

# Truncations: at entry boundaries and inside entries.
cuts="2 49 60 $((size / 3)) $((size / 2)) $((size - 1))"
while read -r _ _ off len _; do cuts="$cuts $off $((off + len)) $((off + len / 2))"; done <"$tmp/model"
quick && cuts=$(echo "$cuts" | tr ' ' '\n' | awk 'NR % 2')
for c in $cuts; do
	[ "$c" -lt "$size" ] || continue
	head -c "$c" "$img" >"$tmp/d.img"
	salvage_case "$c" "$size" "truncated at $c"
done

# Overwritten ranges: zeros and garbage, over whole entries, their heads,
# their middles, and the framing between them.
overwrite() { # START LENGTH zero|garbage
	cp "$img" "$tmp/d.img"
	if [ "$3" = zero ]; then src=/dev/zero; else src=/dev/urandom; fi
	head -c "$2" "$src" | dd of="$tmp/d.img" bs=1 seek="$1" conv=notrunc status=none
	salvage_case "$1" "$(($1 + $2))" "$3 over $1+$2"
}
while read -r _ _ off len _; do
	overwrite "$off" "$len" zero
	overwrite "$off" 8 garbage
	overwrite $((off + len / 2)) 64 garbage
	quick || overwrite "$off" 2 zero
done <"$tmp/model"
overwrite 0 2 garbage
overwrite 100 3000 zero

# The report: text and JSON name entries and losses with their offsets.
head -c $((size - 100)) "$img" >"$tmp/d.img"
expect_exit 3 bs salvage "$tmp/d.img" "$tmp/j.img" --json
json "$tmp/out"
python3 - "$tmp/out" "$tmp/model" "$((size - 100))" <<'PY' || fail "salvage --json report"
import json, sys
d = json.load(open(sys.argv[1]))
cut = int(sys.argv[3])
model = [l.split() for l in open(sys.argv[2])]
got = {(e["type"], e["name"] or "-"): e for e in d["recovered"]}
for t, n, off, ln, f in model:
    inside = int(off) + int(ln) <= cut
    if inside and ((t, n) not in got or got[(t, n)]["offset"] != int(off)):
        sys.exit(f"{t}/{n} at {off} not reported recovered")
assert d["lost"] and d["lost"][0]["status"] == "damaged", d["lost"]
assert d["lost"][0]["offset"] + d["lost"][0]["length"] == cut, d["lost"]
assert d["lost_count"] == len(d["lost"]) and d["recovered_count"] == len(d["recovered"])
PY
grep -q "^damaged   at " <(bs salvage "$tmp/d.img" "$tmp/k.img") || fail "text report lists no loss"
# An intact image: nothing lost, exit 0, same entries, same key.
bs salvage "$img" "$tmp/whole.img" >"$tmp/report" || fail "salvage of an intact image"
grep -q ", 0 lost$" "$tmp/report" || fail "an intact image lost something"
verify "$tmp/whole.img" "$size" "$size" "intact"
[ "$(bs info --json "$tmp/whole.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" = \
	"$(bs info --json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" ] ||
	fail "the new image has another image id"

# Nothing is replaced without --force, and DAMAGED never.
cp "$tmp/whole.img" "$tmp/keep.img"
expect_exit 8 bs salvage "$img" "$tmp/keep.img"
err_has "--force replaces it"
cmp "$tmp/keep.img" "$tmp/whole.img" || fail "salvage replaced NEW without --force"
bs salvage --force "$img" "$tmp/keep.img" >/dev/null || fail "salvage --force"
cp "$img" "$tmp/same.img"
expect_exit 1 bs salvage --force "$tmp/same.img" "$tmp/same.img"
err_has "same file"
cmp "$tmp/same.img" "$img" || fail "salvage wrote the damaged image"
expect_exit 1 bs salvage "$img" "$tmp/x.img" --key-file "$key"
err_has "needs no key"
expect_exit 2 bs salvage "$tmp/missing.img" "$tmp/y.img"
[ ! -e "$tmp/y.img" ] || fail "a failed salvage left NEW"
ls "$tmp"/.*.blobstore-* >/dev/null 2>&1 && fail "salvage left a temporary file"
# The errors that stop other commands on a damaged image point to salvage.
head -c 500 "$img" >"$tmp/d.img"
expect_exit 3 bs list "$tmp/d.img"
err_has "'blobstore salvage IMAGE NEW' copies every intact entry into a new image"
echo "cli salvage: ok"
