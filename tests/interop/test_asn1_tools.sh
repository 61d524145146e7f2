#!/usr/bin/env bash
# tests/interop/test_asn1_tools.sh - images written by the tool are read
# without complaint by ASN.1 implementations nobody here wrote:
#   dumpasn1 -z         (DER checks on lengths, INTEGER, BOOLEAN, strings)
#   openssl asn1parse   (BER structure)
#   asn1Decoding        (libtasn1 against blobstore/blobstore.asn: Image, and
#                        every Entry cut out by the offsets unber reports)
#   unber -p | enber    (asn1c: a BER round trip must give the same octets)
# over images with UTF-8 names, attributes of every kind, entries above
# 1000 and 64 KiB octets, free space from deletes and rewrites, and after
# compact.  Damaged images must be rejected by them or by `blobstore check`.
set -euo pipefail
: "${SRCDIR:?}" "${BLOBSTORE:?}"

asn=$SRCDIR/blobstore/blobstore.asn
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bs-interop.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
bs() { "$BLOBSTORE" --no-sync "$@"; }

# N deterministic pseudo-random octets from SEED.
octets() {
	python3 -c 'import hashlib, sys
n, seed = int(sys.argv[1]), sys.argv[2].encode()
out = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range((n + 31) // 32))
sys.stdout.buffer.write(out[:n])' "$1" "$2"
}

# Top-level elements of an image as "OFFSET LENGTH KIND" (KIND entry, free
# or pad), from asn1c's unber rather than from our own code.
elements() {
	unber -p "$1" | python3 -c 'import re, sys
for line in sys.stdin:
    m = re.match(r"^    <([CP]) O=\"(\d+)\" T=\"\[UNIVERSAL (\d+)\]\" TL=\"(\d+)\" V=\"(\d+)\"", line)
    if m:
        kind = {"16": "entry", "4": "free", "5": "pad"}.get(m.group(3), "tag" + m.group(3))
        print(int(m.group(2)), int(m.group(4)) + int(m.group(5)), kind)'
}

# libtasn1 decodes FILE as TYPE.  (Never "| grep -q" here: with pipefail
# the writer's SIGPIPE would count as a failure.)
decodes() {
	asn1Decoding "$asn" "$1" "$2" >"$tmp/decoding.out" 2>&1 || true
	grep -q '^Decoding: SUCCESS$' "$tmp/decoding.out"
}

# dumpasn1 accepts FILE: no error or warning at all.
dumpasn1_ok() {
	local out=$tmp/dumpasn1.out
	dumpasn1 -z "$1" >"$out" 2>&1 || { tail -n 20 "$out"; return 1; }
	grep -q '^0 warnings, 0 errors\.$' "$out" || { tail -n 20 "$out"; return 1; }
	! grep -E -q '(Error|Warning)' "$out" || { grep -E -B3 '(Error|Warning)' "$out"; return 1; }
}

# Every independent reader accepts IMG; LABEL names it in failures.  With a
# third argument "no-dumpasn1" that one is left out (see the emoji below).
accept() {
	local label=$1 img=$2 dumpasn1=${3:-yes} out=$tmp/out
	[ "$dumpasn1" = no-dumpasn1 ] || dumpasn1_ok "$img" || fail "$label: dumpasn1"

	openssl asn1parse -inform DER -i -in "$img" >"$out" 2>&1 || { tail -n 5 "$out"; fail "$label: openssl"; }
	! grep -i -q 'error' "$out" || { grep -i error "$out"; fail "$label: openssl reported an error"; }

	asn1Decoding "$asn" "$img" Blobstore.Image >"$out" 2>&1 || { tail -n 5 "$out"; fail "$label: asn1Decoding"; }
	grep -q '^Decoding: SUCCESS$' "$out" || fail "$label: asn1Decoding did not succeed"

	bs check --schema "$img" >/dev/null || fail "$label: blobstore check --schema"

	unber -p "$img" >"$tmp/img.xml" || fail "$label: unber"
	enber "$tmp/img.xml" >"$tmp/img.ber" || fail "$label: enber"
	cmp -s "$img" "$tmp/img.ber" || fail "$label: unber | enber changed the octets"

	# Each element on its own: entries decode as Blobstore.Entry, free
	# elements are OCTET STRINGs, pads (what appends leave) are NULLs of
	# two octets, and together they tile the directory exactly.
	local off len kind n=0 free=0 pad=0 next=2 size
	size=$(wc -c <"$img")
	elements "$img" >"$tmp/elements"
	while read -r off len kind; do
		[ "$off" = "$next" ] || fail "$label: element at $off, expected $next"
		next=$((off + len))
		case $kind in
		entry)
			n=$((n + 1))
			dd if="$img" of="$tmp/entry.der" bs=1M iflag=skip_bytes,count_bytes \
				skip="$off" count="$len" status=none
			asn1Decoding "$asn" "$tmp/entry.der" Blobstore.Entry >"$out" 2>&1 ||
				{ tail -n 5 "$out"; fail "$label: entry at $off: asn1Decoding"; }
			grep -q '^Decoding: SUCCESS$' "$out" || fail "$label: entry at $off does not decode"
			[ "$dumpasn1" = no-dumpasn1 ] || dumpasn1_ok "$tmp/entry.der" ||
				fail "$label: entry at $off: dumpasn1"
			;;
		free) free=$((free + 1)) ;;
		pad)
			[ "$len" = 2 ] || fail "$label: pad at $off is $len octets"
			pad=$((pad + 1))
			;;
		*) fail "$label: element at $off has $kind" ;;
		esac
	done <"$tmp/elements"
	[ $((next + 2)) = "$size" ] || fail "$label: directory ends at $next, file at $size"
	[ "$(tail -c 2 "$img" | od -An -tx1 | tr -d ' \n')" = 0000 ] || fail "$label: no end-of-contents"
	echo "$label: $n entries, $free free elements, $pad pads: accepted by" \
		"$([ "$dumpasn1" = no-dumpasn1 ] || echo "dumpasn1, ")openssl, asn1Decoding, unber/enber"
	echo "$n $free $pad" >"$tmp/counts"
}

# The tool's offsets agree with unber's.
same_offsets() {
	local img=$1
	bs list --all --json "$img" | python3 -c 'import json, sys
for e in json.load(sys.stdin)["entries"]:
    print(e["offset"], e["length"], "entry")' >"$tmp/ours"
	grep ' entry$' "$tmp/elements" | cmp -s - "$tmp/ours" ||
		{ diff "$tmp/elements" "$tmp/ours" || true; fail "list --json offsets differ from unber's"; }
}

img=$tmp/a.img
bs format "$img" >/dev/null
octets 1229 permall >"$tmp/permall"
octets 10240 volatile >"$tmp/volatile"
octets 1001 segment >"$tmp/cer-segment"
octets 70000 big >"$tmp/big"
octets 300 gone >"$tmp/gone"

bs put "$img" vtpm --name permall --check sha256 "$tmp/permall"
bs put "$img" vtpm --name volatilestate --check crc32c "$tmp/volatile"
# One attribute of every kind the tool writes, plus raw DER.  (Positive
# INTEGERs only: dumpasn1 reports a negative INTEGER as an error, a rule of
# the certificate profiles it was written for, not of DER.)
bs put "$img" nvram --name 'Größe µ € 日本' --capacity 4K \
	--attr secure-boot --attr count=int:129 --attr big=int:0x7fffffffffffffff \
	--attr enabled=bool:true --attr disabled=bool:false --attr owner=str:'vm ü' \
	--attr key=hex:00ff10 --attr empty=hex: --attr oid=der:06032a0304 \
	--attr plain=42 "$tmp/cer-segment"
bs put "$img" big --name '≥ 64 KiB' "$tmp/big"
printf '' | bs put "$img" empty -
bs put "$img" eeprom "$tmp/gone"
bs put "$img" gone --name 'to delete' "$tmp/gone"
accept "fresh" "$img"
same_offsets "$img"
read -r _ free0 _ <"$tmp/counts"

# What dumpasn1 20210212 objects to although DER allows it, left to the
# other readers: names outside the Basic Multilingual Plane (4-octet UTF-8,
# which it miscounts: "Inconsistent object length") and negative INTEGERs.
bs format "$tmp/other.img" >/dev/null
bs put "$tmp/other.img" vtpm --name 'tpm 😀 𝄞' --attr 'note=str:🎹' --attr delta=int:-129 \
	--attr min=int:-0x8000000000000000 "$tmp/permall"
accept "4-octet UTF-8, negative INTEGERs" "$tmp/other.img" no-dumpasn1
bs list --json "$tmp/other.img" >"$tmp/out"
grep -q '"name": "tpm 😀 𝄞"' "$tmp/out" || fail "emoji name not listed"
bs attr "$tmp/other.img" vtpm --name 'tpm 😀 𝄞' --json >"$tmp/out"
grep -q '"der": "0202ff7f"' "$tmp/out" || { cat "$tmp/out"; fail "int:-129 is not 02 02 ff 7f"; }
grep -q '"der": "02088000000000000000"' "$tmp/out" || { cat "$tmp/out"; fail "INT64_MIN encoding"; }

# Free space: a delete, a rewrite (attribute change), a growth.
bs rm "$img" gone --name 'to delete'
bs attr "$img" nvram --name 'Größe µ € 日本' --set owner=str:other --remove plain
octets 20000 volatile2 >"$tmp/volatile"
bs put "$img" vtpm --name volatilestate "$tmp/volatile"
accept "with free space" "$img"
same_offsets "$img"
read -r _ free1 _ <"$tmp/counts"
[ "$free1" -gt "$free0" ] || fail "no new free elements after rm/attr/put (had $free0, now $free1)"

# Every value still reads back.
bs get "$img" vtpm --name permall -o "$tmp/out.bin" --force && cmp "$tmp/permall" "$tmp/out.bin"
bs get "$img" vtpm --name volatilestate -o "$tmp/out.bin" --force && cmp "$tmp/volatile" "$tmp/out.bin"
bs get "$img" big --name '≥ 64 KiB' -o "$tmp/out.bin" --force && cmp "$tmp/big" "$tmp/out.bin"
bs get "$img" empty -o "$tmp/out.bin" --force && [ ! -s "$tmp/out.bin" ]

bs compact "$img" >/dev/null
accept "compacted" "$img"
same_offsets "$img"
read -r _ free2 pad2 <"$tmp/counts"
[ "$free2" = 0 ] || fail "compact left $free2 free elements"
[ "$pad2" = 0 ] || fail "compact left $pad2 pads"
bs get "$img" big --name '≥ 64 KiB' -o "$tmp/out.bin" --force && cmp "$tmp/big" "$tmp/out.bin"

# An attribute listing through libtasn1 names the attribute values we set.
bs attr "$img" nvram --name 'Größe µ € 日本' --json >"$tmp/attrs.json"
python3 - "$tmp/attrs.json" <<'EOF'
import json, sys
a = {x["name"]: x for x in json.load(open(sys.argv[1]))["attributes"]}
want = {"secure-boot": "", "count": "02020081", "big": "02087fffffffffffffff",
        "enabled": "0101ff", "disabled": "010100", "owner": "0c056f74686572",
        "key": "040300ff10", "empty": "0400", "oid": "06032a0304"}
for name, der in want.items():
    assert name in a, f"attribute {name} missing"
    assert a[name]["der"].lower() == der, f"{name}: {a[name]['der']} != {der}"
assert "plain" not in a, "removed attribute still there"
EOF

# Damage.  A length octet: every reader notices.
size=$(wc -c <"$img")
python3 - "$img" "$tmp/len.img" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
# The bs.image entry's length (offset 3): one more than the entry has.
d[3] += 1
open(sys.argv[2], "wb").write(d)
EOF
! decodes "$tmp/len.img" Blobstore.Image ||
	fail "asn1Decoding accepted a wrong length"
! openssl asn1parse -inform DER -in "$tmp/len.img" >/dev/null 2>&1 || fail "openssl accepted a wrong length"
! dumpasn1_ok "$tmp/len.img" >/dev/null || fail "dumpasn1 accepted a wrong length"
! bs check "$tmp/len.img" >/dev/null 2>&1 || fail "check accepted a wrong length"

# A non-minimal length (BER, not DER) in one entry: libtasn1 accepts it (it
# checks structure, not canonical DER); dumpasn1 and our check do not.
python3 - "$img" "$tmp/ber.img" "$tmp/elements" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
for line in open(sys.argv[3]):
    off, length, kind = line.split()
    off, length = int(off), int(length)
    if kind == "entry" and length - 2 < 128 and d[off + 1] == length - 2:
        break
else:
    sys.exit("no short entry")
# 30 L -> 30 81 L: the same value with a length in the long form.
d = d[:off + 1] + bytes([0x81]) + d[off + 1:]
open(sys.argv[2], "wb").write(d)
EOF
decodes "$tmp/ber.img" Blobstore.Image ||
	fail "libtasn1 no longer accepts a long-form length (update the comment above)"
! dumpasn1_ok "$tmp/ber.img" >/dev/null || fail "dumpasn1 accepted a non-minimal length"
set +e
bs check "$tmp/ber.img" >"$tmp/out" 2>&1
rc=$?
set -e
[ $rc = 3 ] || { cat "$tmp/out"; fail "check gave $rc for a non-minimal length, expected 3"; }

# A flipped bit in slot data: valid ASN.1, so only the slot check sees it.
big_off=$(bs list --json "$img" | python3 -c 'import json, sys
print(next(e["offset"] for e in json.load(sys.stdin)["entries"] if e["type"] == "big"))')
python3 - "$img" "$tmp/slot.img" "$big_off" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
# 1000 octets into the entry: inside slot 0, the current (only written) one.
d[int(sys.argv[3]) + 1000] ^= 0x10
open(sys.argv[2], "wb").write(d)
EOF
decodes "$tmp/slot.img" Blobstore.Image ||
	fail "a flip inside data broke the structure"
set +e
bs check "$tmp/slot.img" >"$tmp/out" 2>&1
rc=$?
set -e
[ $rc = 3 ] || { cat "$tmp/out"; fail "check gave $rc for a flipped data bit, expected 3"; }
echo "damaged images: rejected"
echo "interop: ok"
