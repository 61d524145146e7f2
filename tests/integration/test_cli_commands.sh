#!/usr/bin/env bash
# tests/integration/test_cli_commands.sh - every blobstore subcommand's
# normal use, its --help, and the --json outputs (valid JSON, right values).
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

img=$tmp/vm.img

# ---- help and version -------------------------------------------------------
commands="format info list put get rm attr check dump compact grow resize import-swtpm export-swtpm
	encrypt-init rekey salvage"
bs --help >"$tmp/help" || fail "--help"
for c in $commands; do
	grep -q "^  $c " "$tmp/help" || fail "--help does not list $c"
	bs "$c" --help >"$tmp/h1" || fail "$c --help"
	bs help "$c" >"$tmp/h2" || fail "help $c"
	cmp -s "$tmp/h1" "$tmp/h2" || fail "help $c and $c --help differ"
	grep -q "^usage: blobstore $c " "$tmp/h1" || fail "$c --help has no usage line"
done
for text in "Exit status:" "  6  entry refused" "NAME=int:42" "NAME=hex:00ff" "--wait" "--no-sync"; do
	grep -qF -- "$text" "$tmp/help" || fail "--help lacks '$text'"
done
bs put --help | grep -F "NAME=der:HEX" >/dev/null || fail "put --help lacks the attribute value syntax"
bs attr --help | grep -F "NAME=bool:true" >/dev/null || fail "attr --help lacks the attribute value syntax"
bs --version | grep '^blobstore [0-9]' >/dev/null || fail "--version"
# The man page has a synopsis line for every command and formats cleanly.
man=${SRCDIR:-$(dirname "$0")/../..}/docs/blobstore.1
for c in $commands; do
	grep -q "^\.B blobstore $c$" "$man" || fail "blobstore.1 has no synopsis for $c"
done
for section in "GLOBAL OPTIONS" "ATTRIBUTE VALUES" "EXIT STATUS" "FILES" "EXAMPLES"; do
	grep -q "^\.SH $section$" "$man" || fail "blobstore.1 has no $section section"
done
if command -v groff >/dev/null; then
	groff -man -Tutf8 -ww -z "$man" >"$tmp/groff" 2>&1 || fail "groff cannot format blobstore.1"
	[ ! -s "$tmp/groff" ] || { cat "$tmp/groff"; fail "groff warns about blobstore.1"; }
fi
expect_exit 1 bs
expect_exit 1 bs frobnicate "$img"
err_has "no command 'frobnicate'"
expect_exit 1 bs help frobnicate

# ---- format, info ------------------------------------------------------------
bs format "$img" >"$tmp/out" || fail "format"
grep -q "^formatted .*vm.img, image id [0-9a-f]\{32\}$" "$tmp/out" || fail "format output"
id=$(sed 's/.*image id //' "$tmp/out")
bs info "$img" >"$tmp/out" || fail "info"
grep -q "^id: *$id$" "$tmp/out" || fail "info does not show the image id"
grep -q "^entries: *1 " "$tmp/out" || fail "info entry count of a new image"
bs info --json "$img" >"$tmp/info.json"
json "$tmp/info.json"
[ "$(jq_py "$tmp/info.json" 'd["id"]')" = "$id" ] || fail "info --json id"
[ "$(jq_py "$tmp/info.json" 'd["entry_count"], d["library_entry_count"], d["refused_count"]')" = "(0, 1, 0)" ] ||
	fail "info --json counts"
[ "$(jq_py "$tmp/info.json" 'd["length"] == d["dir_end"] == d["used"] + d["free_holes"] + 4')" = True ] ||
	fail "info --json sizes do not add up"
[ "$(jq_py "$tmp/info.json" 'd["encrypted"], d["kdf"], d["encrypted_entry_count"]')" = "(False, None, 0)" ] ||
	fail "info --json encryption"
checked "$img"

# ---- put: from a file, from stdin, with options ------------------------------
printf 'permall state v1' >"$tmp/permall"
bs put "$img" vtpm --name permall --check sha256 "$tmp/permall" || fail "put from a file"
printf 'volatile' | bs put "$img" vtpm --name volatilestate - || fail "put from stdin (-)"
printf 'no name' | bs put "$img" eeprom --capacity 1K --attr size=int:1024 --attr ro=bool:false \
	--attr label=str:'boot rom' --attr serial=hex:00ff10 --attr raw=der:0500 --attr plain=42 \
	--attr word=hello --attr yes=true --attr zip=007 --attr pre=str:int:5 --attr flagged ||
	fail "put with attributes"
[ "$(bs get "$img" vtpm --name permall)" = "permall state v1" ] || fail "get after put from a file"
[ "$(bs get "$img" vtpm --name volatilestate)" = "volatile" ] || fail "get after put from stdin"
[ "$(bs get "$img" eeprom)" = "no name" ] || fail "get of the unnamed entry"

# Names are UTF-8 and may hold quotes and backslashes: JSON escapes them.
odd=$tmp/odd.img
bs format -q "$odd"
printf 'u' | bs put "$odd" t --name 'café ☃ "q" \b'
bs list --json "$odd" >"$tmp/odd.json"
json "$tmp/odd.json"
[ "$(jq_py "$tmp/odd.json" 'd["entries"][0]["name"]')" = 'café ☃ "q" \b' ] || fail "JSON of a UTF-8 name"
[ "$(bs get "$odd" t --name 'café ☃ "q" \b')" = u ] || fail "get by a UTF-8 name"
bs dump "$odd" | grep -F 'name: UTF8String "café ☃ \x22q\x22 \x5cb"' >/dev/null || fail "dump of a UTF-8 name"

# ---- list --------------------------------------------------------------------
bs list "$img" >"$tmp/out" || fail "list"
grep -q "^ *OFFSET .*TYPE *NAME$" "$tmp/out" || fail "list header"
grep -q "^ *51 *[0-9]* *16 *16 sha256 *- *ok *vtpm *permall$" "$tmp/out" || { cat "$tmp/out"; fail "list: permall line"; }
grep -q " 7 *1024 crc32c *- *ok *eeprom *$" "$tmp/out" || { cat "$tmp/out"; fail "list: eeprom line"; }
grep -q "bs.image" "$tmp/out" && fail "list shows bs. entries without --all"
bs list --all "$img" | grep " bs.image" >/dev/null || fail "list --all does not show bs.image"
bs list "$img" --json >"$tmp/list.json"
json "$tmp/list.json"
[ "$(jq_py "$tmp/list.json" 'len(d["entries"])')" = 3 ] || fail "list --json count"
[ "$(jq_py "$tmp/list.json" '[e["name"] for e in d["entries"]]')" = "['permall', 'volatilestate', None]" ] ||
	fail "list --json names"
[ "$(jq_py "$tmp/list.json" 'd["entries"][0]["check"], d["entries"][2]["capacity"]')" = "('sha256', 1024)" ] ||
	fail "list --json fields"
[ "$(jq_py "$tmp/list.json" '[(e["size"], e["encryption"], e["status"]) for e in d["entries"]]')" = \
	"[(16, None, 'ok'), (8, None, 'ok'), (7, None, 'ok')]" ] || fail "list --json size, encryption, status"
bs list --json --all "$img" >"$tmp/all.json"
json "$tmp/all.json"
[ "$(jq_py "$tmp/all.json" 'd["entries"][0]["type"]')" = bs.image ] || fail "list --json --all"

# ---- attr --------------------------------------------------------------------
bs attr "$img" eeprom >"$tmp/out" || fail "attr listing"
# A bare VALUE is text whatever it looks like: types come from prefixes only.
for line in "optional  size = INTEGER 1024" \
	"optional  ro = BOOLEAN FALSE" "optional  label = UTF8String \"boot rom\"" \
	"optional  serial = OCTET STRING[3] 00ff10" "optional  raw = NULL" \
	"optional  plain = UTF8String \"42\"" "optional  word = UTF8String \"hello\"" \
	"optional  yes = UTF8String \"true\"" "optional  zip = UTF8String \"007\"" \
	"optional  pre = UTF8String \"int:5\"" "optional  flagged (flag)"; do
	grep -qF -- "  $line" "$tmp/out" || { cat "$tmp/out"; fail "attr listing lacks '$line'"; }
done
# The library's own attributes only with --all.
if grep -q "bs.slots" "$tmp/out"; then fail "attr shows bs.slots without --all"; fi
bs attr --all "$img" eeprom | grep -qF "  mandatory bs.slots = IA5String \"crc32c\"" ||
	fail "attr --all does not show bs.slots"
bs attr "$img" eeprom --set size=int:2048 --set note=str:changed --remove flagged || fail "attr changes"
bs attr "$img" eeprom --json >"$tmp/attr.json"
json "$tmp/attr.json"
[ "$(jq_py "$tmp/attr.json" '{a["name"]: (a["type"], a["value"]) for a in d["attributes"]}["size"]')" = "('INTEGER', 2048)" ] ||
	fail "attr --set did not replace size"
[ "$(jq_py "$tmp/attr.json" '{a["name"]: (a["type"], a["value"], a["read_write"]) for a in d["attributes"]}["serial"]')" = "('OCTET STRING', '00ff10', True)" ] ||
	fail "attr --json of an OCTET STRING"
[ "$(jq_py "$tmp/attr.json" '"bs.slots" in [a["name"] for a in d["attributes"]]')" = False ] ||
	fail "attr --json shows bs.slots without --all"
[ "$(jq_py "$tmp/attr.json" '{a["name"]: a["der"] for a in d["attributes"]}["note"]')" = 0c076368616e676564 ] ||
	fail "attr --set note der"
[ "$(jq_py "$tmp/attr.json" '"flagged" in [a["name"] for a in d["attributes"]]')" = False ] ||
	fail "attr --remove"
[ "$(bs get "$img" eeprom)" = "no name" ] || fail "data changed by attr"
expect_exit 2 bs attr "$img" eeprom --remove nosuch
expect_exit 8 bs attr "$img" eeprom --set bs.mine=1
err_has "reserved"
# put on an existing entry sets attributes too
printf 'no name 2' | bs put "$img" eeprom --attr size=int:9 || fail "put with --attr on an existing entry"
bs attr "$img" eeprom | grep -F "size = INTEGER 9" >/dev/null || fail "put --attr on an existing entry"
[ "$(bs get "$img" eeprom)" = "no name 2" ] || fail "put on an existing entry"

# ---- put replaces and grows, resize, get -o ------------------------------------
head -c 3000 /dev/urandom >"$tmp/big"
bs put "$img" vtpm --name volatilestate "$tmp/big" || fail "put growing an entry"
bs get "$img" vtpm --name volatilestate -o "$tmp/big.out" || fail "get -o"
cmp "$tmp/big" "$tmp/big.out" || fail "grown entry reads back other data"
bs resize "$img" vtpm --name permall 64K >"$tmp/out" || fail "resize"
grep -q "capacity 65536" "$tmp/out" || fail "resize output"
bs list --json "$img" >"$tmp/list.json"
[ "$(jq_py "$tmp/list.json" '[e["capacity"] for e in d["entries"] if e["name"] == "permall"][0]')" = 65536 ] ||
	fail "resize capacity"
[ "$(bs get "$img" vtpm --name permall)" = "permall state v1" ] || fail "resize changed the data"
bs put "$img" vtpm --name permall --capacity 128K "$tmp/permall" || fail "put --capacity on an existing entry"
[ "$(bs list --json "$img" | python3 -c 'import json,sys; print([e["capacity"] for e in json.load(sys.stdin)["entries"] if e["name"] == "permall"][0])')" = 131072 ] ||
	fail "put --capacity did not grow the entry"
# No silent no-ops: a smaller capacity is refused and changes nothing.
cp "$img" "$tmp/before.img"
expect_exit 8 bs put "$img" vtpm --name permall --capacity 1K "$tmp/permall"
err_has "capacities never shrink"
expect_exit 8 bs resize "$img" vtpm --name permall 1K
err_has "capacities never shrink"
cmp "$img" "$tmp/before.img" || fail "a refused shrink changed the image"
bs resize "$img" vtpm --name permall 128K >"$tmp/out"
grep -q "capacity 131072 already" "$tmp/out" || fail "resize to the same capacity"
expect_exit 1 bs put "$img" vtpm --name permall --check crc32c "$tmp/permall"
err_has "exists with check sha256"
checked "$img"

# ---- rm ----------------------------------------------------------------------
bs rm "$img" eeprom || fail "rm"
expect_exit 2 bs get "$img" eeprom
bs info --json "$img" >"$tmp/info.json"
[ "$(jq_py "$tmp/info.json" 'd["free_holes"] > 1000')" = True ] || fail "rm left no free space"

# ---- check -------------------------------------------------------------------
bs check "$img" >"$tmp/out" || fail "check"
grep -q "vm.img: 3 entries checked: no problems$" "$tmp/out" || fail "check summary"
bs check --schema --json "$img" >"$tmp/check.json" || fail "check --schema --json"
json "$tmp/check.json"
[ "$(jq_py "$tmp/check.json" 'd["ok"], d["schema"], d["problems"]')" = "(True, True, [])" ] ||
	fail "check --json fields"

# ---- dump --------------------------------------------------------------------
bs dump "$img" >"$tmp/dump" || fail "dump"
for text in "directory: SET, indefinite length" "Entry 'vtpm'/'permall': SEQUENCE" \
	"attribute: SEQUENCE, 18 octets 'bs.slots' = IA5String \"sha256\"" \
	"free space: OCTET STRING" "end-of-contents of the directory" \
	"slot 0: generation" "(current)" "name: UTF8String \"permall\""; do
	grep -qF -- "$text" "$tmp/dump" || { cat "$tmp/dump"; fail "dump lacks '$text'"; }
done
# Every directory element's offset is printed, in order, each once.
bs list --all --json "$img" >"$tmp/all.json"
for off in $(jq_py "$tmp/all.json" '" ".join(str(e["offset"]) for e in d["entries"])'); do
	grep -q "^ *$off    30 " "$tmp/dump" || fail "dump has no Entry line at offset $off"
done

# ---- compact, grow -----------------------------------------------------------
before=$(stat -c %s "$img")
bs compact "$img" >"$tmp/out" || fail "compact"
after=$(stat -c %s "$img")
grep -q "reclaimed $((before - after)) octets (directory $before -> $after)" "$tmp/out" ||
	{ cat "$tmp/out"; fail "compact output"; }
[ "$after" -lt "$before" ] || fail "compact reclaimed nothing"
bs compact -q "$img" >"$tmp/out" && [ ! -s "$tmp/out" ] || fail "compact -q printed something"
cmp "$tmp/big" <(bs get "$img" vtpm --name volatilestate) || fail "data changed by compact"
bs grow "$img" 1M >"$tmp/out" || fail "grow"
grep -q "reserved for 1048576 octets" "$tmp/out" || fail "grow output"
[ "$(stat -c %s "$img")" -eq "$after" ] || fail "grow changed the image size"
[ "$(( $(stat -c %b "$img") * $(stat -c %B "$img") ))" -ge 1048576 ] || fail "grow reserved no storage"
bs --wait --no-sync put "$img" later - </dev/null || fail "global options before the command"
bs put "$img" later2 - --no-sync -q </dev/null || fail "global options after the command"
checked "$img"
echo "cli commands: ok"
