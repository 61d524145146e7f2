#!/usr/bin/env bash
# test_vtpm_qemu.sh - QEMU's tpm-emulator backend against blobstore-vtpm:
# OVMF (q35, software emulation) boots with -chardev socket pointed at the
# server's UNIX control socket and -device tpm-tis.  QEMU hands the server
# its command channel with CMD_SET_DATAFD; the firmware's TPM traffic
# (TPM2_Startup, PCR extends) reaches the server, and the TPM's state lands
# in the image: the permall entry exists after the first boot and changes
# with the second.  The second boot is a cold one (CMD_INIT discards the
# volatile state QEMU's CMD_SHUTDOWN saved), so its TPM2_Startup succeeds.
# QEMU is stopped as soon as the UEFI shell appears (about 10 s per boot;
# one boot with BS_TEST_QUICK=1).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
ovmf=/usr/share/OVMF
qemu=$(command -v qemu-system-x86_64 || true)
if [ -z "$qemu" ] || [ ! -r $ovmf/OVMF_CODE_4M.fd ] || [ ! -r $ovmf/OVMF_VARS_4M.fd ]; then
	echo "SKIP: needs qemu-system-x86 and ovmf (apt-get install -y qemu-system-x86 ovmf)"
	exit 0
fi
img=$tmp/vtpm.img
ctrl=$tmp/ctrl.sock
qpid=
stop_qemu() {
	[ -n "$qpid" ] || return 0
	kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	qpid=
}
trap 'stop_qemu; vtpm_cleanup' EXIT

# boot N: one OVMF boot against a fresh server on the image, up to the shell.
boot() {
	local n=$1 serial=$tmp/serial$1.log
	: >"$serial"
	: >"$tmp/vtpm.log"
	vtpm_start --image "$img" --create --ctrl-unix "$ctrl"
	cp $ovmf/OVMF_VARS_4M.fd "$tmp/vars.fd"
	"$qemu" -machine q35 -accel tcg -m 256 -no-reboot \
		-drive if=pflash,format=raw,unit=0,readonly=on,file=$ovmf/OVMF_CODE_4M.fd \
		-drive if=pflash,format=raw,unit=1,file="$tmp/vars.fd" \
		-chardev socket,id=chrtpm,path="$ctrl" \
		-tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
		-display none -nodefaults -net none -serial file:"$serial" 2>"$tmp/qemu.err" &
	qpid=$!
	local t=0
	while [ $t -lt 120 ]; do
		sleep 0.5
		t=$((t + 1))
		grep -aq 'UEFI Interactive Shell' "$serial" && break
		kill -0 "$qpid" 2>/dev/null || { cat "$tmp/qemu.err"; fail "QEMU exited"; }
	done
	grep -aq 'UEFI Interactive Shell' "$serial" || fail "boot $n: no UEFI shell after 60 s"
	# QEMU answers SIGTERM with CMD_SHUTDOWN: the server stores the
	# volatile state and exits by itself.
	stop_qemu
	local i
	for i in $(seq 1 50); do
		kill -0 "$vtpm_pid" 2>/dev/null || break
		sleep 0.1
	done
	vtpm_stop TERM
	cp "$tmp/vtpm.log" "$tmp/vtpm$n.log"
	local extends
	extends=$(grep -c 'TPM2_PCR_Extend .* -> rc 0x0' "$tmp/vtpm$n.log" || true)
	echo "   boot $n: shell after about $((t / 2)) s; $extends PCR extends from the firmware"
	grep -q 'ctrl: CMD_SET_DATAFD -> 0x0' "$tmp/vtpm$n.log" || fail "boot $n: no CMD_SET_DATAFD"
	grep -q 'ctrl: CMD_INIT -> 0x0' "$tmp/vtpm$n.log" || fail "boot $n: no CMD_INIT"
	grep -q 'TPM2_Startup .* -> rc 0x0,' "$tmp/vtpm$n.log" || fail "boot $n: no successful TPM2_Startup"
	[ "$extends" -ge 3 ] || fail "boot $n: only $extends PCR extends reached the server"
	grep -q 'ctrl: CMD_SHUTDOWN -> 0x0' "$tmp/vtpm$n.log" || fail "boot $n: QEMU sent no CMD_SHUTDOWN"
	$BLOBSTORE check "$img"
	$BLOBSTORE get "$img" tpm2.libtpms --name permall -o "$tmp/permall$n" ||
		fail "boot $n: no permall entry in the image"
}

echo "== boot 1: fresh image"
boot 1
grep -q 'state: store permall .*: ok' "$tmp/vtpm1.log" || fail "permall never stored"
stores=$(grep -c 'state: store permall .*: ok' "$tmp/vtpm1.log")
[ "$stores" -ge 2 ] || fail "permall stored $stores times in boot 1 (manufacture, then TPM2_Startup)"
if quick; then
	echo "   (BS_TEST_QUICK: one boot only)"
	echo OK
	exit 0
fi
echo "== boot 2: same image, a cold boot"
boot 2
grep -q 'resumed from the volatile state' "$tmp/vtpm2.log" && fail "CMD_INIT resumed a stale volatile state"
cmp -s "$tmp/permall1" "$tmp/permall2" && fail "permall did not change with the second boot"
$BLOBSTORE list "$img"
echo OK
