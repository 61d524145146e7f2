#!/usr/bin/env bash
# test_uefi_qemu.sh - the firmware accepts exported variable stores: OVMF
# under QEMU (q35, SMM, secure pflash, software emulation) boots with a store
# that went through an image.
#   OVMF_CODE_4M.ms.fd + store from OVMF_VARS_4M.ms.fd: Secure Boot is
#     enforced, the unsigned built-in shell is refused ("Security Violation").
#   OVMF_CODE_4M.fd + store from OVMF_VARS_4M.fd: the shell starts.
# QEMU is stopped as soon as the expected line appears on the serial port.
set -euo pipefail
BS=${BLOBSTORE:?}
here=$(cd "$(dirname "$0")" && pwd)
ovmf=/usr/share/OVMF
qemu=$(command -v qemu-system-x86_64 || true)
for f in OVMF_CODE_4M.ms.fd OVMF_VARS_4M.ms.fd OVMF_CODE_4M.fd OVMF_VARS_4M.fd; do
	if [ ! -r $ovmf/$f ] || [ -z "$qemu" ]; then
		echo "SKIP: needs qemu-system-x86 and ovmf (apt-get install -y qemu-system-x86 ovmf)"
		exit 0
	fi
done
dir=$(mktemp -d "${TMPDIR:-/tmp}/uefiqemu.XXXXXX")
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# boot CODE VARS EXPECT REJECT: waits up to 90 s for EXPECT on the serial port;
# REJECT appearing first is a failure.
boot() {
	local code=$1 vars=$2 expect=$3 reject=$4 log=$dir/serial.log
	: > "$log"
	"$qemu" -machine q35,smm=on -accel tcg -m 256 -no-reboot \
		-global driver=cfi.pflash01,property=secure,value=on \
		-drive if=pflash,format=raw,unit=0,readonly=on,file="$code" \
		-drive if=pflash,format=raw,unit=1,file="$vars" \
		-display none -nodefaults -net none -serial file:"$log" &
	qpid=$!
	local t=0 found=
	while [ $t -lt 180 ]; do
		sleep 0.5
		t=$((t + 1))
		if grep -aq "$expect" "$log"; then found=1; break; fi
		if grep -aq "$reject" "$log"; then break; fi
		kill -0 "$qpid" 2>/dev/null || break
	done
	kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	qpid=
	tr -d '\r' < "$log" | grep -a 'BdsDxe\|Shell\|Security' | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g' | head -n 8
	[ -n "$found" ] || fail "no '$expect' on the serial console after $((t / 2)) s"
	echo "   found '$expect' after about $((t / 2)) s"
}

echo "== Secure Boot store (OVMF_VARS_4M.ms.fd) through an image: enforced"
$BS uefi import "$dir/ms.img" $ovmf/OVMF_VARS_4M.ms.fd
$BS uefi export "$dir/ms.img" "$dir/ms.fd"
cp "$dir/ms.fd" "$dir/ms.exported.fd"
boot $ovmf/OVMF_CODE_4M.ms.fd "$dir/ms.fd" "Security Violation" "UEFI Interactive Shell"

echo "== plain store (OVMF_VARS_4M.fd) through an image: the shell starts"
$BS uefi import "$dir/plain.img" $ovmf/OVMF_VARS_4M.fd
$BS uefi export "$dir/plain.img" "$dir/plain.fd"
boot $ovmf/OVMF_CODE_4M.fd "$dir/plain.fd" "UEFI Interactive Shell" "Security Violation"

# The SMM firmware writes variables into the store while it boots (the
# plain CODE build has no SMM, cannot write the secure flash and keeps its
# variables in memory): read that store back.
echo "== the store the firmware rewrote during the Secure Boot run imports again"
cmp -s "$dir/ms.fd" "$dir/ms.exported.fd" && fail "the firmware did not write the store"
$BS uefi import "$dir/after.img" "$dir/ms.fd"
$BS uefi export "$dir/after.img" "$dir/after.fd"
python3 "$here/uefi_varstore.py" check "$dir/after.fd"
python3 "$here/uefi_varstore.py" vars "$dir/ms.fd" > "$dir/fw.vars"
python3 "$here/uefi_varstore.py" vars "$dir/after.fd" > "$dir/after.vars"
diff "$dir/fw.vars" "$dir/after.vars" || fail "variables differ"
echo OK
