#!/usr/bin/env bash
# test_uefi_secureboot.sh - Secure Boot from certificates, proved by the
# firmware: 'blobstore uefi enroll' puts fresh test keys (openssl, made
# here) into a store made from Debian's empty OVMF_VARS_4M.fd, the store is
# exported, and OVMF's Secure Boot build (OVMF_CODE_4M.secboot.fd: q35, SMM,
# secure pflash, TCG) boots a tiny UEFI probe (uefi_sbprobe.c, built here
# with gcc and ld's PE emulation) from a FAT disk (QEMU's vvfat):
#   - the probe signed (sbsign) with the db key runs and reads the
#     firmware's own variables: SecureBoot=01, SetupMode=00; it also prints
#     QueryVariableInfo, whose maximum must be the capacity the tool counts;
#   - the unsigned probe is refused ("Access Denied": Secure Boot enforced);
#   - with SecureBootEnable set to 0 through 'uefi set' the signed probe
#     reports SecureBoot=00 (the check can fail).
# The enrolled signature lists equal efitools' cert-to-efi-sig-list output.
# QEMU is stopped as soon as the decisive line appears (3.5-5 s per boot).
set -euo pipefail
BS=${BLOBSTORE:?}
here=$(cd "$(dirname "$0")" && pwd)
ovmf=/usr/share/OVMF
code=$ovmf/OVMF_CODE_4M.secboot.fd
qemu=$(command -v qemu-system-x86_64 || true)
for t in openssl sbsign cert-to-efi-sig-list gcc ld; do
	command -v $t >/dev/null || { echo "SKIP: needs $t (tools/deps.sh check)"; exit 0; }
done
if [ ! -r $code ] || [ ! -r $ovmf/OVMF_VARS_4M.fd ] || [ -z "$qemu" ]; then
	echo "SKIP: needs qemu-system-x86 and ovmf"
	exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/uefisb.XXXXXX")
qpid=
cleanup() {
	if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; fi
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== test keys, enrolled"
for k in pk kek db; do
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=blobstore test $k/" \
		-keyout "$dir/$k.key" -out "$dir/$k.pem" 2>/dev/null
done
openssl x509 -in "$dir/db.pem" -outform DER -out "$dir/db.der"
owner=a0baa8a3-041d-48a8-bc87-c36d121b5e3d
img=$dir/sb.img
$BS uefi import "$img" $ovmf/OVMF_VARS_4M.fd
$BS uefi enroll "$img" --set-pk $owner "$dir/pk.pem" --add-kek $owner "$dir/kek.pem" \
	--add-db OvmfEnrollDefaultKeys "$dir/db.der" --secure-boot
$BS uefi list "$img" > "$dir/list"
grep -q "x509 owner $owner: subject CN=blobstore test db; issuer CN=blobstore test db" "$dir/list" ||
	{ cat "$dir/list"; fail "db does not show the test certificate"; }
for k in pk kek db; do
	name=$(echo $k | tr a-z A-Z); [ $k = db ] && name=db
	cert-to-efi-sig-list -g $owner "$dir/$k.pem" "$dir/$k.esl" >/dev/null
	$BS uefi get "$img" $name -o "$dir/$k.got"
	cmp "$dir/$k.esl" "$dir/$k.got" || fail "$name differs from cert-to-efi-sig-list's list"
done

echo "== the probe"
gcc -O2 -ffreestanding -fno-stack-protector -fno-stack-check -mno-red-zone -fpie \
	-fno-asynchronous-unwind-tables -fno-builtin -fno-ident \
	-c "$here/uefi_sbprobe.c" -o "$dir/probe.o"
ld -m i386pep --subsystem 10 -e efi_main --image-base 0x10000000 -nostdlib -s \
	-o "$dir/probe.efi" "$dir/probe.o"
sbsign --key "$dir/db.key" --cert "$dir/db.pem" --output "$dir/probe.signed.efi" \
	"$dir/probe.efi" 2>/dev/null

# boot VARS PROBE EXPECT: boots PROBE as the removable-media loader with a
# copy of VARS; EXPECT (an extended regexp) must appear on the serial port
# within 60 s.  The log stays in $dir/serial.log.
boot() {
	local vars=$1 probe=$2 expect=$3 log=$dir/serial.log
	rm -rf "$dir/esp" && mkdir -p "$dir/esp/EFI/BOOT"
	cp "$probe" "$dir/esp/EFI/BOOT/BOOTX64.EFI"
	cp "$vars" "$dir/run.fd"
	: > "$log"
	"$qemu" -machine q35,smm=on -accel tcg -m 256 -smp 1 -no-reboot \
		-global driver=cfi.pflash01,property=secure,value=on \
		-drive if=pflash,format=raw,unit=0,readonly=on,file="$code" \
		-drive if=pflash,format=raw,unit=1,file="$dir/run.fd" \
		-drive if=none,id=esp,format=raw,file=fat:"$dir/esp",snapshot=on \
		-device ide-hd,drive=esp,bus=ide.0,bootindex=0 \
		-display none -nodefaults -net none -serial file:"$log" 2>"$dir/qemu.err" &
	qpid=$!
	local start=$SECONDS found=
	while [ $((SECONDS - start)) -lt 60 ]; do
		if tr -d '\r' < "$log" | grep -aEq "$expect"; then found=1; break; fi
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.2
	done
	kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	qpid=
	tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;=?]*[A-Za-z]//g' | grep -a 'SBPROBE\|BdsDxe' | head -n 6
	[ -n "$found" ] || { cat "$dir/qemu.err"; fail "no '$expect' on the serial console"; }
	echo "   found after about $((SECONDS - start)) s"
}

$BS uefi export "$img" "$dir/sb.fd"
echo "== signed probe: the firmware reports Secure Boot enabled"
boot "$dir/sb.fd" "$dir/probe.signed.efi" 'SBPROBE: (SecureBoot|SetupMode)=.*'
sleep 0.5 # the rest of the probe's lines
tr -d '\r' < "$dir/serial.log" | grep -aq 'SBPROBE: SecureBoot=01' ||
	fail "SecureBoot is not 01: $(grep -a SBPROBE "$dir/serial.log" | tr -d '\r')"
tr -d '\r' < "$dir/serial.log" | grep -aq 'SBPROBE: SetupMode=00' || fail "SetupMode is not 00"
# The firmware's capacity (QueryVariableInfo's maximum) is the tool's.
fw_max=$(tr -d '\r' < "$dir/serial.log" | sed -n 's/.*QueryVariableInfo attr=07 max=\(0x[0-9a-f]*\).*/\1/p')
# Nine variables of 30000 octets each fit the per-variable limit (0x8400)
# but not the store: the import that would need them is refused.
python3 -c 'import json; print(json.dumps({"version": 2, "variables": [{"name": "Big%d" % i,
	"guid": "12345678-1234-5678-9abc-def012345678", "attr": 3, "data": "00" * 30000}
	for i in range(9)]}))' > "$dir/big.json"
cp "$img" "$dir/copy.img"
set +e
$BS uefi import --force "$dir/copy.img" "$dir/big.json" 2> "$dir/err"
rc=$?
set -e
[ $rc -eq 5 ] || fail "variables beyond the store's space: exit $rc, not 5 ($(cat "$dir/err"))"
ours=$(sed -n "s/.*of the variable store's \([0-9]*\).*/\1/p" "$dir/err")
[ -n "$fw_max" ] && [ "$((fw_max))" = "$ours" ] ||
	fail "capacity: firmware $fw_max, blobstore '$ours' ($(cat "$dir/err"))"
fw_maxvar=$(tr -d '\r' < "$dir/serial.log" | sed -n 's/.*QueryVariableInfo attr=07 .*maxvar=\(0x[0-9a-f]*\).*/\1/p')
set +e
head -c 40000 /dev/zero | $BS uefi set "$dir/copy.img" 12345678-1234-5678-9abc-def012345678:Big 2> "$dir/err"
rc=$?
set -e
limit=$(sed -n 's/.*allows at most \([0-9]*\) per.*/\1/p' "$dir/err")
[ $rc -eq 5 ] && [ -n "$fw_maxvar" ] && [ "$((fw_maxvar + 60))" = "$limit" ] ||
	fail "per-variable limit: firmware $fw_maxvar + 60, blobstore '$limit' (exit $rc: $(cat "$dir/err"))"
echo "   store capacity $ours octets and $limit per variable, as QueryVariableInfo says"

if [ -z "${BS_TEST_QUICK:-}" ]; then
	echo "== unsigned probe: refused"
	boot "$dir/sb.fd" "$dir/probe.efi" 'BdsDxe: failed to (load|start) Boot[0-9A-F]{4} .*Sata\(0x0,.*(Access Denied|Security Violation)|SBPROBE: SecureBoot'
	! grep -aq 'SBPROBE' "$dir/serial.log" || fail "the unsigned probe ran"

	echo "== SecureBootEnable=0: disabled"
	printf '\000' | $BS uefi set "$img" SecureBootEnable
	$BS uefi export "$img" "$dir/off.fd"
	boot "$dir/off.fd" "$dir/probe.signed.efi" 'SBPROBE: SecureBoot=..'
	tr -d '\r' < "$dir/serial.log" | grep -aq 'SBPROBE: SecureBoot=00' || fail "SecureBoot is not 00"
fi
echo OK
