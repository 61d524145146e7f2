#!/usr/bin/env bash
# test_vtpm_migration.sh - QEMU live migration (q35, OVMF, TCG, tpm-crb on
# the tpm-emulator backend) from swtpm to blobstore-vtpm and on to swtpm
# again, one VM: the firmware boots on swtpm and extends PCRs 0-7, the VM is
# paused and migrated to a QEMU whose TPM is blobstore-vtpm (swtpm's
# command line, --tpmstate dir=), then from there to a third QEMU on swtpm.
# QEMU carries the TPM state in the migration stream (CMD_GET_STATEBLOB on
# the source, CMD_SET_STATEBLOB and CMD_INIT on the destination).  Then the
# QEMUs are killed (SIGKILL: no CMD_SHUTDOWN) and each TPM is read through
# its control socket (CMD_SET_DATAFD): the NV index written before the boot
# and the firmware's PCRs are the same in all three, and blobstore-vtpm's
# image holds the migrated TPM.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
ovmf=/usr/share/OVMF
qemu=$(command -v qemu-system-x86_64 || true)
for t in swtpm tpm2_nvread tpm2_pcrread python3; do
	command -v $t >/dev/null || { echo "SKIP: needs swtpm, tpm2-tools, python3"; exit 0; }
done
if [ -z "$qemu" ] || [ ! -r $ovmf/OVMF_CODE_4M.fd ]; then
	echo "SKIP: needs qemu-system-x86 and ovmf"
	exit 0
fi
ls /usr/lib/*/libtss2-tcti-cmd.so* >/dev/null 2>&1 || { echo "SKIP: needs libtss2-tcti-cmd0"; exit 0; }
if quick; then
	# QEMU and OVMF are the time here, not the server; the ASan pass
	# covers the same blob paths in test_vtpm_blobs.sh.
	echo "SKIP (BS_TEST_QUICK): the migration runs in the main pass"
	exit 0
fi
C="python3 $here/vtpm_ctrl.py"
Q="python3 $here/vtpm_qmp.py"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; vtpm_cleanup' EXIT
mkdir "$tmp/a" "$tmp/b" "$tmp/c"

echo "== the source TPM (swtpm) gets an NV index"
port=$(free_port_pair)
swtpm socket --tpm2 --tpmstate dir="$tmp/a" --server type=tcp,port="$port" \
	--ctrl type=tcp,port=$((port + 1)) --flags not-need-init,startup-clear &
p=$!
for _ in $(seq 100); do $C "tcp:$((port + 1))" caps >/dev/null 2>&1 && break; sleep 0.05; done
printf 'crossed two hosts' >"$tmp/nv.in"
tpm2_nvdefine -T "swtpm:port=$port" -Q 0x1500016 -C o -s 17 -a "ownerread|ownerwrite"
tpm2_nvwrite -T "swtpm:port=$port" -Q 0x1500016 -C o -i "$tmp/nv.in"
$C "tcp:$((port + 1))" shutdown >/dev/null
wait $p || true

echo "== three TPMs: swtpm, blobstore-vtpm, swtpm; three QEMUs"
swtpm socket --tpm2 --tpmstate dir="$tmp/a" --ctrl type=unixio,path="$tmp/a.sock" &
pids+=($!)
"$VTPM" socket --tpm2 --tpmstate dir="$tmp/b",mode=0600 --ctrl type=unixio,path="$tmp/b.sock",mode=0600 \
	--log file="$tmp/vtpm.log",level=2 --pid file="$tmp/b.pid" &
bpid=$!
pids+=($bpid)
swtpm socket --tpm2 --tpmstate dir="$tmp/c" --ctrl type=unixio,path="$tmp/c.sock" &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/a.sock" ] && [ -S "$tmp/b.sock" ] && [ -S "$tmp/c.sock" ] && break; sleep 0.05; done
mig=$(free_port_pair)
vm() { # NAME [QEMU options]
	local n=$1
	shift
	cp $ovmf/OVMF_VARS_4M.fd "$tmp/$n.vars"
	"$qemu" -machine q35 -accel tcg -m 128 -nodefaults -display none -no-reboot \
		-drive if=pflash,format=raw,readonly=on,file=$ovmf/OVMF_CODE_4M.fd \
		-drive if=pflash,format=raw,file="$tmp/$n.vars" \
		-chardev socket,id=chrtpm,path="$tmp/$n.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
		-device tpm-crb,tpmdev=tpm0 -serial file:"$tmp/$n.serial" \
		-qmp unix:"$tmp/$n.qmp",server=on,wait=off "$@" 2>>"$tmp/qemu.err" &
	pids+=($!)
	eval "q$n=$!"
	for _ in $(seq 100); do [ -S "$tmp/$n.qmp" ] && return 0; sleep 0.05; done
	cat "$tmp/qemu.err"
	fail "QEMU $n did not start"
}
vm a
vm b -incoming tcp:127.0.0.1:$mig
# OVMF measures itself and its configuration into PCRs 0-7 on the way
# to the UEFI shell.
t=0
while [ $t -lt 240 ] && ! grep -aq 'UEFI Interactive Shell\|Shell>' "$tmp/a.serial" 2>/dev/null; do
	sleep 0.25
	t=$((t + 1))
done
grep -aq 'UEFI Interactive Shell\|Shell>' "$tmp/a.serial" || fail "OVMF did not reach the shell in 60 s"
echo "   OVMF reached the shell after about $((t / 4)) s"
$Q "$tmp/a.qmp" stop >/dev/null

echo "== migrate swtpm -> blobstore-vtpm"
$Q "$tmp/a.qmp" migrate "{\"uri\": \"tcp:127.0.0.1:$mig\"}" >/dev/null
$Q "$tmp/a.qmp" wait-migration || { cat "$tmp/qemu.err"; fail "migration swtpm -> blobstore-vtpm"; }
grep -q "CMD_SET_STATEBLOB permall: .* (swtpm's framing)" "$tmp/vtpm.log" || fail "no framed permall arrived"
grep -q 'started on the state set with CMD_SET_STATEBLOB' "$tmp/vtpm.log" || fail "blobstore-vtpm did not start on it"
vm c -incoming tcp:127.0.0.1:$((mig + 1))

echo "== migrate blobstore-vtpm -> swtpm"
$Q "$tmp/b.qmp" migrate "{\"uri\": \"tcp:127.0.0.1:$((mig + 1))\"}" >/dev/null
$Q "$tmp/b.qmp" wait-migration || { cat "$tmp/qemu.err"; fail "migration blobstore-vtpm -> swtpm"; }
$Q "$tmp/c.qmp" query-status | grep -c '"paused"' >/dev/null || fail "the last QEMU is not paused with the VM"

# No CMD_SHUTDOWN: the TPMs keep running, for the checks.
kill -9 "$qa" "$qb" "$qc"
wait "$qa" "$qb" "$qc" 2>/dev/null || true
for n in a b c; do
	X="cmd:python3 $here/vtpm_ctrl.py unix:$tmp/$n.sock bridge"
	tpm2_pcrread -T "$X" sha256:0,1,2,3,4,5,6,7 >"$tmp/$n.pcrs" || fail "PCRs of TPM $n"
	tpm2_nvread -T "$X" -C o -s 17 0x1500016 >"$tmp/$n.nv" 2>/dev/null || fail "NV index of TPM $n"
	cmp -s "$tmp/nv.in" "$tmp/$n.nv" || fail "TPM $n: NV index holds '$(cat "$tmp/$n.nv")'"
done
grep -q '0x0000000000000000000000000000000000000000000000000000000000000000' "$tmp/a.pcrs" &&
	fail "a firmware PCR is still zero: $(cat "$tmp/a.pcrs")"
cmp "$tmp/a.pcrs" "$tmp/b.pcrs" || fail "PCRs differ between swtpm and blobstore-vtpm"
cmp "$tmp/a.pcrs" "$tmp/c.pcrs" || fail "PCRs differ after the way back to swtpm"
echo "   PCRs 0-7 and NV index 0x1500016 equal in all three TPMs"
$C "unix:$tmp/b.sock" shutdown >/dev/null
wait "$bpid" || fail "blobstore-vtpm exit status $?"
"$BLOBSTORE" check "$tmp/b/blobstore-vtpm.permall" >/dev/null || fail "check of blobstore-vtpm's image"
[ "$(stat -c %a "$tmp/b/blobstore-vtpm.permall")" = 600 ] || fail "image mode"
echo OK
