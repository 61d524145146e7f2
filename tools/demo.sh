#!/usr/bin/env bash
# tools/demo.sh BUILD_DIR - the main job behind `make demo`.
#
# Stores a few device blobs in ./demo-image/demo.img (created on the first
# run, reused afterwards), sets attributes, lists them, reads them back and
# compares, compacts the image, and checks it with our checker and with three
# independent ASN.1 readers (dumpasn1, openssl asn1parse, asn1Decoding).
# Prints every command before running it; stops at the first failure.
set -Eeuo pipefail

build=${1:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
bs=$build/blobstore
[ -x "$bs" ] || { echo "demo: $bs is missing; run make first" >&2; exit 1; }
srcdir=$(cd "$(dirname "$0")/.." && pwd)
asn=$srcdir/blobstore/blobstore.asn

dir=demo-image
img=$dir/demo.img
work=$dir/work
mkdir -p "$work"

trap 'echo "demo: FAILED (tools/demo.sh line $LINENO, exit status $?)" >&2' ERR
step() { printf '\n== %s\n' "$*"; }
run() { printf '$'; printf ' %q' "$@"; echo; "$@"; }
# Runs a command, shows its first N lines and says how many were left out.
excerpt() {
	local n=$1; shift
	printf '$ %s | head -n %s\n' "$*" "$n"
	"$@" >"$work/out"
	head -n "$n" "$work/out"
	local total
	total=$(wc -l <"$work/out")
	[ "$total" -le "$n" ] || echo "   ... ($((total - n)) more lines)"
}
blobstore() { "$bs" "$@"; }

step "image $img"
if [ -s "$img" ]; then
	echo "reusing the image of an earlier run (delete $dir/ to start afresh)"
	run blobstore check "$img"
else
	run blobstore format "$img"
fi

step "a vTPM's permanent state: 1.2 KiB, SHA-256 slot check"
# Random data like a real permall; put creates the entry or, on later runs,
# replaces its data crash-safely.
head -c 1229 /dev/urandom >"$work/permall"
run blobstore put "$img" vtpm --name permall --check sha256 --capacity 16384 "$work/permall"

step "firmware variables with attributes"
head -c 4000 /dev/urandom >"$work/vars"
run blobstore put "$img" nvram --name "OVMF vars" --capacity 65536 \
	--attr owner=demo --attr secure-boot "$work/vars"
run blobstore attr "$img" nvram --name "OVMF vars" --set revision=int:2 --set vendor-key=hex:00c0ffee
run blobstore attr "$img" nvram --name "OVMF vars"

step "replace the permall (the old copy stays valid until the new one is synced)"
head -c 1300 /dev/urandom >"$work/permall"
run blobstore put "$img" vtpm --name permall "$work/permall"

step "an unnamed EEPROM, raw bytes from stdin"
printf 'serial=4711;mac=52:54:00:12:34:56\n' >"$work/eeprom"
printf '$ blobstore put %s eeprom - < %s\n' "$img" "$work/eeprom"
blobstore put "$img" eeprom - <"$work/eeprom"

step "list"
run blobstore list "$img"
run blobstore list "$img" --json

step "info"
run blobstore info "$img"

step "read back and compare"
readback() { # TYPE NAME FILE: get the entry (NAME "" for none), compare with FILE
	local name=()
	[ -z "$2" ] || name=(--name "$2")
	run blobstore get "$img" "$1" "${name[@]}" -o "$3.out"
	run cmp "$3" "$3.out"
}
readback vtpm permall "$work/permall"
readback nvram "OVMF vars" "$work/vars"
readback eeprom "" "$work/eeprom"
echo "all three blobs read back identical"

step "check: strict DER, slot checksums, and each entry decoded by libtasn1"
run blobstore check --schema "$img"

step "compact: rewritten copies and deleted entries left free space"
run blobstore info "$img" --json
run blobstore compact "$img"
run blobstore check "$img"

step "dump (excerpt)"
excerpt 24 blobstore dump "$img"

step "independent readers"
# dumpasn1: -z allows the empty OCTET STRINGs the format uses as free space;
# -e keeps it from guessing at ASN.1 inside the random data.
printf '$ dumpasn1 -z -e %s | tail -n 1\n' "$img"
dumpasn1 -z -e "$img" >"$work/dumpasn1.out" 2>&1 || true
tail -n 1 "$work/dumpasn1.out"
grep -q '^0 warnings, 0 errors\.$' "$work/dumpasn1.out" || {
	grep -E -B3 'Error|Warning' "$work/dumpasn1.out"
	exit 1
}
excerpt 14 openssl asn1parse -inform DER -i -in "$img"
printf '$ asn1Decoding %s %s Blobstore.Image | grep Decoding\n' "$asn" "$img"
asn1Decoding "$asn" "$img" Blobstore.Image >"$work/asn1Decoding.out" 2>&1 || {
	cat "$work/asn1Decoding.out"
	exit 1
}
grep 'Decoding:' "$work/asn1Decoding.out"

step "done: $img ($(wc -c <"$img") octets); run 'make demo' again to update it"
