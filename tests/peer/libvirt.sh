#!/usr/bin/env bash
# tests/peer/libvirt.sh BUILD_DIR - a libvirt domain whose TPM is
# blobstore-vtpm: a private libvirtd (and virtlogd) started here as root,
# with a directory first in its PATH in which `swtpm` is blobstore-vtpm
# (swtpm_setup and swtpm_ioctl stay Debian's).  A TCG domain with OVMF and
# <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm> is
# defined and started: libvirt runs swtpm_setup (which manufactures the TPM
# with EK certificates through blobstore-vtpm's --print-capabilities,
# --print-states and socket), then launches `swtpm socket --ctrl ...
# --tpmstate dir=... --log file=... --terminate --tpm2`, QEMU talks to it,
# and destroying the domain ends it.  The domain starts a second time on the
# same state (no new manufacturing), and the EK certificate libvirt had made
# (CN vmname:uuid) is read from the image with tpm2_nvread.
#
# Run by `make vtpm-peer-libvirt` (docs/VTPM.md); needs root and Debian's
# libvirt-daemon-system, libvirt-daemon-driver-qemu, qemu-system-x86, ovmf,
# swtpm-tools.  It uses libvirt's system directories (/run/libvirt,
# /var/lib/libvirt, /var/log/swtpm/libvirt) like any libvirtd, and removes
# the domain it defined; it must not run beside another libvirtd.
set -euo pipefail
BUILD_DIR=$(cd "${1:?usage: libvirt.sh BUILD_DIR}" && pwd)
VTPM=$BUILD_DIR/blobstore-vtpm
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (a system libvirtd)"; exit 0; }
for t in libvirtd virtlogd virsh swtpm_setup qemu-system-x86_64 tpm2_nvread; do
	command -v $t >/dev/null || { echo "SKIP: needs $t"; exit 0; }
done
pgrep -x libvirtd >/dev/null && { echo "FAIL: a libvirtd runs already"; exit 1; }
tmp=$(mktemp -d /tmp/bs-libvirt.XXXXXX)
chmod 0755 "$tmp"
name=bsvtpm$$
uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
URI="qemu:///system?socket=$tmp/run/libvirt-sock"
V() { virsh -q -c "$URI" "$@"; }
fail() { echo "FAIL: $*" >&2; tail -n 20 "$tmp/libvirtd.log" 2>/dev/null | sed 's/^/    libvirtd: /' >&2; exit 1; }
cleanup() {
	V destroy "$name" >/dev/null 2>&1 || true
	V undefine "$name" --nvram --tpm >/dev/null 2>&1 || true
	[ -s "$tmp/libvirtd.pid" ] && kill "$(cat "$tmp/libvirtd.pid")" 2>/dev/null || true
	[ -s "$tmp/virtlogd.pid" ] && kill "$(cat "$tmp/virtlogd.pid")" 2>/dev/null || true
	[ -n "${spid:-}" ] && kill -9 "$spid" 2>/dev/null || true
	sleep 0.5
	rm -f "/var/log/swtpm/libvirt/qemu/$name-swtpm.log" "/var/log/libvirt/qemu/$name.log"
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/run" "$tmp/bin"
ln -s "$VTPM" "$tmp/bin/swtpm"
cat >"$tmp/libvirtd.conf" <<EOC
unix_sock_dir = "$tmp/run"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "1:file:$tmp/libvirtd.log"
log_filters = "1:qemu 1:util.command 3:util 3:rpc 3:event 3:object 3:net 3:conf 3:security"
EOC
virtlogd --daemon --pid-file "$tmp/virtlogd.pid"
env PATH="$tmp/bin:$PATH" libvirtd --daemon --config "$tmp/libvirtd.conf" --pid-file "$tmp/libvirtd.pid"
for _ in $(seq 100); do [ -S "$tmp/run/libvirt-sock" ] && break; sleep 0.1; done
[ -S "$tmp/run/libvirt-sock" ] || fail "libvirtd did not start"
cat >"$tmp/domain.xml" <<EOX
<domain type='qemu'>
  <name>$name</name>
  <uuid>$uuid</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
    <firmware><feature enabled='no' name='secure-boot'/></firmware>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
    <serial type='file'><source path='$tmp/serial.log'/></serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
EOX
state=/var/lib/libvirt/swtpm/$uuid/tpm2
log=/var/log/swtpm/libvirt/qemu/$name-swtpm.log
V define "$tmp/domain.xml" >/dev/null
start=$(date +%s.%N)
V start "$name" >/dev/null || { tail -n 30 "/var/log/libvirt/qemu/$name.log"; cat "$log" 2>/dev/null; fail "virsh start"; }
echo "   virsh start: $(python3 -c "import sys; print(round($(date +%s.%N) - $start, 2))") s (swtpm_setup included)"
pid=$(pgrep -f "^$tmp/bin/swtpm socket" || true)
[ -n "$pid" ] || fail "no blobstore-vtpm process"
[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$VTPM")" ] || fail "the TPM process is not blobstore-vtpm"
tr '\0' ' ' <"/proc/$pid/cmdline" | sed 's/^/   libvirt ran: /'
echo
grep -q -- '--terminate' "/proc/$pid/cmdline" || fail "not libvirt's launch line"
[ -s "$state/blobstore-vtpm.permall" ] || fail "no image in $state"
[ "$(stat -c '%U %a' "$state/blobstore-vtpm.permall")" = "tss 600" ] ||
	fail "image owner and mode $(stat -c '%U %a' "$state/blobstore-vtpm.permall"), not tss 600"
grep -q 'Successfully authored TPM state' "$log" || fail "swtpm_setup did not manufacture the TPM"
# OVMF uses the TPM while it boots.
for _ in $(seq 120); do grep -aq 'UEFI Interactive Shell\|Shell>' "$tmp/serial.log" 2>/dev/null && break; sleep 0.25; done
V qemu-monitor-command "$name" --hmp 'info tpm' | grep -c 'tpm-crb' >/dev/null || fail "QEMU has no TPM"
V destroy "$name" >/dev/null
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "blobstore-vtpm still runs after virsh destroy"
grep -q 'tpm: started' "$log" || fail "the TPM never started (log)"
echo "== a second start on the same state: no new manufacturing"
n1=$(grep -c 'Successfully authored TPM state' "$log")
V start "$name" >/dev/null || fail "second virsh start"
sleep 3
V destroy "$name" >/dev/null
sleep 1
[ "$(grep -c 'Successfully authored TPM state' "$log")" = "$n1" ] || fail "swtpm_setup ran again"
echo "== the EK certificate libvirt made, read from the image"
"$BUILD_DIR/blobstore" check "$state/blobstore-vtpm.permall" >/dev/null || fail "check of the image"
port=$(python3 -c 'import random; print(random.randrange(3000, 30000, 2))')
"$VTPM" socket --tpm2 --tpmstate dir="$state" --server type=tcp,port="$port" \
	--ctrl type=tcp,port=$((port + 1)) --flags not-need-init,startup-clear &
spid=$!
sleep 0.5
tpm2_nvread -T "swtpm:port=$port" -C o 0x1c00002 -o "$tmp/ek.der" 2>/dev/null || fail "tpm2_nvread 0x1c00002"
openssl x509 -inform DER -in "$tmp/ek.der" -noout -subject | tee "$tmp/subject"
grep -q "$name:$uuid" "$tmp/subject" || fail "the EK certificate is not the domain's"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -s
wait "$spid" || true
spid=
echo "libvirt with blobstore-vtpm as swtpm: ok"
