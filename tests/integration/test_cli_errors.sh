#!/usr/bin/env bash
# tests/integration/test_cli_errors.sh - blobstore's exit statuses and error
# messages: usage errors, missing image or entry, bit flips, truncation, a
# locked image, entries refused for an unknown mandatory attribute, binary
# data and terminals.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

img=$tmp/vm.img
bs format "$img" >/dev/null
printf 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' | bs put "$img" vtpm --name permall
printf 'second' | bs put "$img" nvram

# flip IMAGE OFFSET - inverts one bit of the octet at OFFSET.
flip() {
	python3 - "$1" "$2" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)[0]
    f.seek(off)
    f.write(bytes([b ^ 0x01]))
PY
}

# ---- usage errors: 1 ---------------------------------------------------------
expect_exit 1 bs list
err_has "usage: blobstore list"
expect_exit 1 bs list "$img" --bogus
err_has "unknown option '--bogus'"
expect_exit 1 bs get "$img"
expect_exit 1 bs get "$img" vtpm extra
expect_exit 1 bs grow "$img" 12Q
err_has "bad size '12Q'"
expect_exit 1 bs resize "$img" vtpm --name permall -5
expect_exit 1 bs put "$img" t --attr x=int:abc - </dev/null
err_has "bad attribute value"
expect_exit 1 bs put "$img" t --attr x=hex:abc - </dev/null
expect_exit 1 bs put "$img" t --attr =5 - </dev/null
expect_exit 1 bs put "$img" t --check md5 - </dev/null
expect_exit 1 bs put "$img" t --name
err_has "--name needs a value"
expect_exit 1 bs list "$img" --json=yes
expect_exit 1 bs --bogus list "$img"

# ---- not found: 2 ------------------------------------------------------------
for cmd in "info" "list" "check" "dump" "compact" "get x" "rm x" "attr x" "grow 1M" "resize x 1K"; do
	# shellcheck disable=SC2086 # the command, IMAGE, then its other arguments
	expect_exit 2 bs ${cmd%% *} "$tmp/missing.img" $(echo "$cmd" | cut -s -d' ' -f2-)
	err_has "$tmp/missing.img: open: No such file or directory"
done
printf 'x' >"$tmp/in"
expect_exit 2 bs put "$tmp/missing.img" t "$tmp/in"
expect_exit 2 bs put "$img" t "$tmp/no-such-input"
err_has "$tmp/no-such-input: No such file or directory"
expect_exit 2 bs get "$img" vtpm
err_has "entry 'vtpm': no such entry"
expect_exit 2 bs get "$img" vtpm --name nosuch
err_has "entry 'vtpm'/'nosuch'"
expect_exit 2 bs rm "$img" nosuch
expect_exit 2 bs attr "$img" nosuch
expect_exit 2 bs resize "$img" nosuch 1K

# ---- other library errors: 8 -------------------------------------------------
expect_exit 8 bs format "$img"
err_has "already exists"
printf 'not an image, and never to be formatted' >"$tmp/other"
cp "$tmp/other" "$tmp/other.orig"
expect_exit 8 bs format "$tmp/other"
cmp "$tmp/other" "$tmp/other.orig" || fail "format overwrote a file"
expect_exit 3 bs list "$tmp/other"
err_has "not a blobstore image"
expect_exit 8 bs put "$img" bs.mine "$tmp/in"
err_has "reserved"
expect_exit 8 bs put "$img" "$(printf 'bad\ttype')" "$tmp/in"
: >"$tmp/empty.img"
expect_exit 3 bs list "$tmp/empty.img"
err_has "not a formatted image"
bs format "$tmp/empty.img" >/dev/null || fail "format of an empty file"

# ---- corrupt: 3, the message names the file and the offset --------------------
cp "$img" "$tmp/good.img"
checked "$img"
# A bit flip in the data: get and check fail, other entries still read.
cp "$tmp/good.img" "$tmp/flip.img"
off=$(python3 -c 'import sys; print(open(sys.argv[1],"rb").read().find(b"A"*32))' "$tmp/flip.img")
flip "$tmp/flip.img" $((off + 5))
expect_exit 3 bs get "$tmp/flip.img" vtpm --name permall
err_has "blobstore: $tmp/flip.img: entry 'vtpm'/'permall' at offset "
err_has "no valid data slot"
[ "$(bs get "$tmp/flip.img" nvram)" = second ] || fail "a bit flip in one entry broke another"
expect_exit 3 bs check "$tmp/flip.img"
grep -q "^$tmp/flip.img: entry 'vtpm'/'permall' at offset [0-9]*: .*no valid data slot" "$tmp/out" ||
	{ cat "$tmp/out"; fail "check does not name the entry and offset"; }
grep -q "3 entries checked: 1 problem$" "$tmp/out" || { cat "$tmp/out"; fail "check summary"; }
expect_exit 3 bs check --json "$tmp/flip.img"
json "$tmp/out"
[ "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["ok"], len(d["problems"]), d["problems"][0]["code"], d["problems"][0]["severity"], d["problems"][0]["entry"])' "$tmp/out")" = "False 1 BS_ECORRUPT error {'type': 'vtpm', 'name': 'permall'}" ] ||
	fail "check --json of a flipped image"
# The damage is named in list, and salvage is pointed to.
bs list "$tmp/flip.img" >"$tmp/out" || fail "list of an image with a damaged entry"
grep -q " damaged  *vtpm *permall$" "$tmp/out" || { cat "$tmp/out"; fail "list does not show the damaged entry"; }
grep -q "^damaged: 'vtpm'/'permall' at offset [0-9]*: no valid data slot" "$tmp/out" ||
	{ cat "$tmp/out"; fail "list does not explain the damage"; }
expect_exit 3 bs get "$tmp/flip.img" vtpm --name permall
err_has "blobstore salvage IMAGE NEW"
bs dump "$tmp/flip.img" | grep "slot 0: generation 1, .* FAILS" >/dev/null || fail "dump does not show the failing slot"
# Replacing the data repairs the entry.
printf 'repaired' | bs put "$tmp/flip.img" vtpm --name permall || fail "put over a corrupt slot"
[ "$(bs get "$tmp/flip.img" vtpm --name permall)" = repaired ] || fail "repair"
checked "$tmp/flip.img"
# Several problems: all are reported, one per line.
cp "$tmp/good.img" "$tmp/flip2.img"
flip "$tmp/flip2.img" $((off + 5))
off2=$(python3 -c 'import sys; print(open(sys.argv[1],"rb").read().find(b"second"))' "$tmp/flip2.img")
flip "$tmp/flip2.img" "$off2"
expect_exit 3 bs check "$tmp/flip2.img"
[ "$(grep -c 'no valid data slot' "$tmp/out")" -eq 2 ] || { cat "$tmp/out"; fail "check stops at the first problem"; }
# Damage to the newest value of an entry written twice: reads return the
# previous value, and that is never silent (for a TPM it is a rollback).
cp "$tmp/good.img" "$tmp/prev.img"
printf 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' | bs put "$tmp/prev.img" vtpm --name permall
offb=$(python3 -c 'import sys; print(open(sys.argv[1],"rb").read().find(b"B"*32))' "$tmp/prev.img")
flip "$tmp/prev.img" $((offb + 7))
bs get "$tmp/prev.img" vtpm --name permall >"$tmp/out" 2>"$tmp/err" || fail "get of an entry with a damaged newest value"
[ "$(cat "$tmp/out")" = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" ] || fail "get does not return the previous value"
err_has "blobstore: warning: $tmp/prev.img: entry 'vtpm'/'permall' at offset "
err_has "this is its previous value"
expect_exit 3 bs check "$tmp/prev.img"
grep -q "^$tmp/prev.img: entry 'vtpm'/'permall' at offset [0-9]*: reads its previous value: slot [01] claims generation 2" "$tmp/out" ||
	{ cat "$tmp/out"; fail "check does not say the entry reads its previous value"; }
grep -q "3 entries checked: 1 problem$" "$tmp/out" || { cat "$tmp/out"; fail "check summary of a previous value"; }
grep -q "a put of the entry replaces the damaged slot" "$tmp/out" || { cat "$tmp/out"; fail "check gives no hint for a previous value"; }
grep -q "blobstore salvage" "$tmp/out" && { cat "$tmp/out"; fail "check points to salvage for a previous value"; }
expect_exit 3 bs check --json "$tmp/prev.img"
json "$tmp/out"
[ "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["problems"][0]; print(d["ok"], d["problem_count"], p["code"], p["severity"], p["entry"]["name"], p["message"].startswith("reads its previous value"))' "$tmp/out")" = "False 1 BS_ECORRUPT error permall True" ] ||
	{ cat "$tmp/out"; fail "check --json of a previous value"; }
bs list "$tmp/prev.img" >"$tmp/out" || fail "list of an image with a previous value"
grep -q " previous  *vtpm *permall$" "$tmp/out" || { cat "$tmp/out"; fail "list does not show the previous value"; }
printf 'CCCC' | bs put "$tmp/prev.img" vtpm --name permall || fail "put over a damaged newest slot"
bs get "$tmp/prev.img" vtpm --name permall >"$tmp/out" 2>"$tmp/err" || fail "get after the repair"
[ "$(cat "$tmp/out")" = CCCC ] || fail "the repair is not read"
[ -s "$tmp/err" ] && { cat "$tmp/err"; fail "get warns after the repair"; }
checked "$tmp/prev.img"
# Damage inside one entry's encoding refuses that entry only; a type that
# is no longer text still gives valid JSON and escaped text.
cp "$tmp/good.img" "$tmp/type.img"
python3 - "$tmp/type.img" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"\x16\x05nvram")
b[i + 2] = 0xff
b[i + 3] = 0x01
open(p, "wb").write(bytes(b))
PY
bs list --json "$tmp/type.img" >"$tmp/list.json" || fail "list of an image with a damaged type"
json "$tmp/list.json"
[ "$(jq_py "$tmp/list.json" '[e["status"] for e in d["entries"]]')" = "['ok', 'damaged']" ] ||
	fail "a damaged type does not refuse just that entry"
bs list "$tmp/type.img" | grep -E 'damaged +\\xff\\x01ram' >/dev/null || fail "list does not escape a damaged type"
expect_exit 3 bs check --json "$tmp/type.img"
json "$tmp/out"
[ "$(bs get "$tmp/type.img" vtpm --name permall)" = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" ] ||
	fail "a damaged entry broke another"
bs dump "$tmp/type.img" >"$tmp/out" || fail "dump of an image with a damaged type"
grep -q 'type: IA5String "?\\x01ram"' "$tmp/out" || { cat "$tmp/out"; fail "dump of a damaged type"; }
# A bit flip in the directory: the image does not open.
cp "$tmp/good.img" "$tmp/dir.img"
eoff=$(bs list --json "$tmp/good.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["offset"])')
flip "$tmp/dir.img" "$eoff"
for cmd in "list" "check" "get vtpm --name permall" "info" "dump"; do
	# shellcheck disable=SC2086
	expect_exit 3 bs ${cmd%% *} "$tmp/dir.img" $(echo "$cmd" | cut -s -d' ' -f2-)
	err_has "blobstore: $tmp/dir.img: at offset $eoff: "
	err_has "'blobstore salvage IMAGE NEW' copies every intact entry"
done
# Truncated: the end-of-contents is gone.
for cut in 1 2 20; do
	cp "$tmp/good.img" "$tmp/trunc.img"
	truncate -s -"$cut" "$tmp/trunc.img"
	expect_exit 3 bs list "$tmp/trunc.img"
	err_has "$tmp/trunc.img: at offset "
	[ "$cut" -gt 2 ] || err_has "directory has no end-of-contents (truncated image?)"
	expect_exit 3 bs check "$tmp/trunc.img"
done

# ---- locked: 4 ----------------------------------------------------------------
# A holder takes the same open-file-description lock a writer takes, for
# HOLD seconds, and says so in $tmp/locked.
hold_lock() {
	rm -f "$tmp/locked"
	python3 - "$1" "$2" "$tmp/locked" <<'PY' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
F_OFD_SETLK = 37
fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[2]))
PY
	holder=$!
	for _ in $(seq 100); do [ -e "$tmp/locked" ] && return; sleep 0.05; done
	fail "the lock holder did not start"
}
cp "$tmp/good.img" "$tmp/lock.img"
hold_lock "$tmp/lock.img" 30
expect_exit 4 bs put "$tmp/lock.img" vtpm --name permall "$tmp/in"
err_has "$tmp/lock.img: locked by another writer"
expect_exit 4 bs rm "$tmp/lock.img" nvram
expect_exit 4 bs compact "$tmp/lock.img"
# Readers take no lock.
[ "$(bs get "$tmp/lock.img" nvram)" = second ] || fail "a reader waits for the writer lock"
bs check "$tmp/lock.img" >/dev/null || fail "check of a locked image"
kill "$holder"
wait "$holder" 2>/dev/null || true
# --wait: the writer waits for the holder, then succeeds.
hold_lock "$tmp/lock.img" 1
bs --wait put "$tmp/lock.img" vtpm --name permall "$tmp/in" || fail "put --wait"
wait "$holder"
[ "$(bs get "$tmp/lock.img" vtpm --name permall)" = x ] || fail "put --wait stored nothing"

# ---- refused for an unknown mandatory attribute: 6 -----------------------------
ref=$tmp/refused.img
cp "$tmp/good.img" "$ref"
printf 'future data' | bs put "$ref" future --name f --mandatory x.future=int:2 --attr note=kept ||
	fail "put --mandatory"
cp "$ref" "$tmp/refused.orig"
expect_exit 6 bs get "$ref" future --name f
err_has "$ref: entry 'future'/'f' at offset "
err_has "unknown mandatory attribute 'x.future'"
expect_exit 6 bs put "$ref" future --name f "$tmp/in"
expect_exit 6 bs attr "$ref" future --name f --set y=1
expect_exit 6 bs resize "$ref" future --name f 1M
bs list "$ref" >"$tmp/out" || fail "list with a refused entry"
grep -q " refused  *future *f$" "$tmp/out" || { cat "$tmp/out"; fail "list does not show the refused entry"; }
grep -q "^refused: 'future'/'f' at offset [0-9]*: unknown mandatory attribute 'x.future'" "$tmp/out" ||
	fail "list does not explain the refusal"
bs list --json "$ref" >"$tmp/list.json"
json "$tmp/list.json"
[ "$(jq_py "$tmp/list.json" '[(e["status"], e["capacity"]) for e in d["entries"] if e["type"] == "future"][0]')" = "('refused', None)" ] ||
	fail "list --json of a refused entry"
bs info --json "$ref" >"$tmp/info.json"
[ "$(jq_py "$tmp/info.json" 'd["refused_count"]')" = 1 ] || fail "info refused count"
bs attr "$ref" future --name f >"$tmp/out" || fail "attr of a refused entry"
grep -qF "REFUSED: unknown mandatory attribute 'x.future'" "$tmp/out" || fail "attr: refusal"
grep -qF "  mandatory x.future = INTEGER 2" "$tmp/out" || fail "attr: the unknown attribute"
grep -qF "  optional  note = UTF8String \"kept\"" "$tmp/out" || fail "attr: optional attribute"
expect_exit 6 bs check "$ref"
grep -q "unknown mandatory attribute 'x.future'" "$tmp/out" || fail "check does not report the refusal"
bs dump "$ref" | grep -F "REFUSED: unknown mandatory attribute 'x.future'" >/dev/null || fail "dump of a refused entry"
bs dump "$ref" | grep -F "value: INTEGER 2" >/dev/null || fail "dump does not show the unknown attribute's value"
# Readers changed nothing; other entries still work.
cmp "$ref" "$tmp/refused.orig" || fail "reading a refused entry changed the image"
[ "$(bs get "$ref" nvram)" = second ] || fail "a refused entry broke another"
# Writers keep it byte for byte.
printf 'other' | bs put "$ref" other || fail "put next to a refused entry"
bs compact -q "$ref" || fail "compact with a refused entry"
expect_exit 6 bs get "$ref" future --name f
bs dump "$ref" | grep -F "UTF8String \"kept\"" >/dev/null || fail "compact dropped the refused entry's attributes"
# A mandatory attribute set later refuses the entry from then on.
bs attr "$ref" nvram --mandatory y.future || fail "attr --mandatory"
expect_exit 6 bs get "$ref" nvram
err_has "unknown mandatory attribute 'y.future'"
# Refused entries hold what a newer version wrote: deleted only with --force.
expect_exit 6 bs rm "$ref" future --name f
err_has "--force deletes it anyway"
bs rm --force "$ref" future --name f || fail "rm --force of a refused entry"
bs rm "$ref" nvram --force || fail "rm --force of a refused entry"
checked "$ref"

# ---- binary data and terminals ------------------------------------------------
printf 'bin\001\000ary' | bs put "$img" blob
printf 'plain text\n' | bs put "$img" text
if command -v script >/dev/null; then
	rc=0
	script -qec "$BLOBSTORE get $img blob" /dev/null >"$tmp/out" 2>&1 || rc=$?
	[ "$rc" -eq 1 ] || fail "get of binary data to a terminal exited $rc"
	grep -q "refusing to write binary data to a terminal" "$tmp/out" || fail "binary refusal message"
	script -qec "$BLOBSTORE get $img text" /dev/null >"$tmp/out" 2>&1 || fail "get of text to a terminal"
	grep -q "plain text" "$tmp/out" || fail "text to a terminal"
	script -qec "$BLOBSTORE get --force $img blob" /dev/null >/dev/null 2>&1 || fail "get --force"
fi
bs get "$img" blob | cmp - <(printf 'bin\001\000ary') || fail "binary data to a pipe"

# The progress line: on a terminal, once work has taken a second, drawn
# with a carriage return and erased at the end; never with --quiet, never
# off a terminal.  Input that arrives after 1.5 s keeps put reading.
slow() { sh -c '(sleep 1.5; printf late) | "$@"' slow "$@"; }
if command -v script >/dev/null; then
	script -qec "sh -c '(sleep 1.5; printf late) | $BLOBSTORE put $img slow'" /dev/null \
		>"$tmp/out" 2>&1 || fail "put from a slow pipe on a terminal"
	grep -q $'\rblobstore: reading input\\.\\.\\. 1s' "$tmp/out" ||
		{ cat -v "$tmp/out" >&2; fail "no progress line on a terminal"; }
	grep -q $'\r\033\\[K' "$tmp/out" || { cat -v "$tmp/out" >&2; fail "progress line not erased"; }
	script -qec "sh -c '(sleep 1.5; printf late) | $BLOBSTORE --quiet put $img slow-quiet'" \
		/dev/null >"$tmp/out" 2>&1 || fail "put --quiet from a slow pipe on a terminal"
	if grep -q "reading input" "$tmp/out"; then cat -v "$tmp/out" >&2; fail "progress despite --quiet"; fi
	bs get "$img" slow | cmp - <(printf late) || fail "slow input stored"
fi
slow "$BLOBSTORE" put "$img" slow-pipe 2>"$tmp/err" || fail "put from a slow pipe"
if grep -q "reading input" "$tmp/err"; then fail "progress line off a terminal"; fi
bs get "$img" slow-pipe | cmp - <(printf late) || fail "slow piped input stored"

# ---- output errors: 5 ----------------------------------------------------------
if [ -w /dev/full ]; then
	expect_exit 5 bs get "$img" text -o /dev/full
	err_has "/dev/full"
fi
expect_exit 2 bs get "$img" text -o "$tmp/no/such/dir/file"
checked "$img"
echo "cli errors: ok"
