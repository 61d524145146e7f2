#!/usr/bin/env bash
# tools/demo.sh BUILD_DIR - the main job behind `make demo`.
#
# Part 1, the headline: a virtual TPM whose state lives in a blobstore image.
# Starts blobstore-vtpm on a fresh ./demo-image/vtpm.img, runs a tpm2-tools
# session against it (startup, getrandom, createprimary, a persistent key,
# NV define/write, a PCR extend), restarts the server and shows the state
# survived (nvread, the PCR, the persistent handle), kills it with -9 and
# shows the NV data survived that too, then lists, checks and dumps the image.
# Part 2, the format: stores a few device blobs in ./demo-image/demo.img
# (created on the first run, reused afterwards), sets attributes, lists them,
# reads them back and compares, compacts the image, salvages a truncated
# copy, and checks it with our checker and with three independent ASN.1
# readers (dumpasn1, openssl asn1parse, asn1Decoding).
# Prints every command before running it; stops at the first failure.
set -Eeuo pipefail

build=${1:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
bs=$build/blobstore
vtpm_bin=$build/blobstore-vtpm
[ -x "$bs" ] || { echo "demo: $bs is missing; run make first" >&2; exit 1; }
[ -x "$vtpm_bin" ] || { echo "demo: $vtpm_bin is missing; run make first" >&2; exit 1; }
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

# ---- part 1: the vTPM ------------------------------------------------------
vimg=$dir/vtpm.img
vlog=$dir/vtpm.log
vpid=
stop_server() { # SIGNAL
	[ -n "$vpid" ] || return 0
	kill -"$1" "$vpid" 2>/dev/null || true
	wait "$vpid" 2>/dev/null || true
	vpid=
}
trap 'stop_server KILL' EXIT
port=
start_server() {
	local try
	for try in 1 2 3 4 5 6 7 8 9 10; do
		[ -n "$port" ] || port=$((20000 + RANDOM % 20000))
		rm -f "$work/vtpm.pid"
		printf '$ blobstore-vtpm --image %s --create --port %s --flags not-need-init --log %s &\n' \
			"$vimg" "$port" "$vlog"
		"$vtpm_bin" --image "$vimg" --create --port "$port" --flags not-need-init --log "$vlog" \
			--pid-file "$work/vtpm.pid" 2>"$work/vtpm.err" &
		vpid=$!
		while kill -0 "$vpid" 2>/dev/null && [ ! -s "$work/vtpm.pid" ]; do sleep 0.05; done
		[ -s "$work/vtpm.pid" ] && return 0
		wait "$vpid" 2>/dev/null || true
		vpid=
		grep -q 'Address already in use' "$work/vtpm.err" || { cat "$work/vtpm.err" >&2; return 1; }
		port= # taken: another one
	done
	return 1
}
tpm() { run "$@"; }

step "vTPM: a TPM 2.0 (libtpms) whose state lives in $vimg"
rm -f "$vimg" "$vlog"
start_server
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
echo "(tpm2-tools talk to it through tpm2-tss's swtpm TCTI: TPM2TOOLS_TCTI=$TPM2TOOLS_TCTI)"
tpm tpm2_startup -c
tpm tpm2_getrandom --hex 16; echo
tpm tpm2_createprimary -Q -C o -g sha256 -G ecc -c "$work/primary.ctx"
tpm tpm2_evictcontrol -C o -c "$work/primary.ctx" 0x81000001
tpm tpm2_nvdefine 0x1500016 -C o -s 64 -a "ownerread|ownerwrite"
printf 'written by make demo at %s' "$(date -u +%FT%TZ)" >"$work/nv.in"
tpm tpm2_nvwrite 0x1500016 -C o -i "$work/nv.in"
tpm tpm2_pcrextend "16:sha256=$(printf demo | sha256sum | cut -d' ' -f1)"
tpm tpm2_pcrread sha256:16
echo "every NV change was stored in the image before the TPM answered:"
grep 'state: store' "$vlog" | sed 's/^[0-9.]* /   /' | tail -n 3

step "vTPM: stop the server (SIGTERM saves the volatile state) and start it again"
stop_server TERM
grep -E 'volatile state|stopped' "$vlog" | sed 's/^[0-9.]* /   /' | tail -n 2
start_server
grep 'resumed' "$vlog" | sed 's/^[0-9.]* /   /' | tail -n 1
echo "no TPM2_Startup needed: the TPM resumed where it stopped"
tpm tpm2_nvread 0x1500016 -C o -s "$(wc -c <"$work/nv.in")" -o "$work/nv.out"
cat "$work/nv.out"; echo
run cmp "$work/nv.in" "$work/nv.out"
tpm tpm2_pcrread sha256:16
tpm tpm2_getcap handles-persistent

step "vTPM: kill -9 the server, start it again: a cold start, NV state intact"
echo "$ kill -9 <server>"
stop_server KILL
start_server
tpm tpm2_startup -c
tpm tpm2_nvread 0x1500016 -C o -s "$(wc -c <"$work/nv.in")" -o "$work/nv.out"
run cmp "$work/nv.in" "$work/nv.out"
echo "NV data and the persistent key survived kill -9; the PCRs were reset (a cold boot):"
tpm tpm2_pcrread sha256:16
stop_server TERM

step "vTPM: the image"
run blobstore list "$vimg"
run blobstore check --schema "$vimg"
excerpt 16 blobstore dump "$vimg"

# ---- part 2: the format ------------------------------------------------------
step "format: device blobs in $img"
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
	run blobstore get "$img" "$1" "${name[@]}" -o "$3.out" --force
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

step "salvage: a copy cut short inside its last entry, and what it still holds"
head -c "$(($(wc -c <"$img") - 20))" "$img" >"$work/cut.img"
echo "$ blobstore list $work/cut.img"
blobstore list "$work/cut.img" || true
echo "$ blobstore salvage --force $work/cut.img $work/rescued.img   # reads the damaged copy only"
blobstore salvage --force "$work/cut.img" "$work/rescued.img" || [ $? -eq 3 ]
run blobstore list "$work/rescued.img"

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

step "done: $vimg ($(wc -c <"$vimg") octets, a fresh vTPM each run) and $img ($(wc -c <"$img") octets); run 'make demo' again to update them"
