#!/usr/bin/env bash
# test_vtpm_swtpm_setup.sh - manufacturing with swtpm_setup: swtpm_setup
# --tpm2 --create-ek-cert --create-platform-cert --lock-nvram --tpm
# "blobstore-vtpm socket" leaves, in the image, a TPM whose EK certificate
# (NV index 0x1c00002, issued by swtpm_localca) tpm2_nvread reads, with the
# persistent EK and write-locked NV; --not-overwrite keeps a TPM,
# --overwrite makes a new one; the same on a file:// volume (Proxmox) and
# with an encrypted state (--pwdfile, --cipher aes-256-cbc).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
for t in swtpm_setup swtpm_localca tpm2_nvread openssl python3; do
	command -v $t >/dev/null || { echo "SKIP: needs swtpm-tools, tpm2-tools, openssl, python3"; exit 0; }
done
C="python3 $here/vtpm_ctrl.py"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; vtpm_cleanup' EXIT

# A private certificate authority and configuration.
mkdir -p "$tmp/ca" "$tmp/home"
cat >"$tmp/localca.conf" <<EOC
statedir = $tmp/ca
signingkey = $tmp/ca/signkey.pem
issuercert = $tmp/ca/issuercert.pem
certserial = $tmp/ca/certserial
EOC
printf -- '--platform-manufacturer blobstore\n--platform-version 2.1\n--platform-model test\n' \
	>"$tmp/localca.options"
cat >"$tmp/setup.conf" <<EOC
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $tmp/localca.conf
create_certs_tool_options = $tmp/localca.options
active_pcr_banks = sha256
EOC
runas=()
[ "$(id -u)" -eq 0 ] && runas=(--runas root)
setup() { # STATE [swtpm_setup options]
	local st=$1
	shift
	HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home swtpm_setup --tpm2 --tpmstate "$st" \
		--create-ek-cert --create-platform-cert --lock-nvram --config "$tmp/setup.conf" \
		--tpm "$VTPM socket" --logfile "$tmp/setup.log" "${runas[@]}" "$@" >"$tmp/setup.out" 2>&1
}
serve() { # STATE-OPTION [options]
	port=$(free_port_pair)
	"$VTPM" socket --tpm2 --tpmstate "$1" --server type=tcp,port="$port" \
		--ctrl type=tcp,port=$((port + 1)) --flags not-need-init,startup-clear "${@:2}" &
	spid=$!
	pids+=("$spid")
	for _ in $(seq 100); do $C "tcp:$((port + 1))" caps >/dev/null 2>&1 && return 0; sleep 0.05; done
	fail "blobstore-vtpm on $1 did not start"
}
down() { $C "tcp:$((port + 1))" shutdown >/dev/null; wait "$spid" || true; }
ekcert() { # OUT
	tpm2_nvread -T "swtpm:port=$port" -C o 0x1c00002 -o "$1" 2>/dev/null || fail "tpm2_nvread 0x1c00002"
	openssl x509 -inform DER -in "$1" -noout -issuer | grep -c 'swtpm-localca' >/dev/null ||
		fail "0x1c00002 is not a certificate from swtpm_localca"
}

echo "== swtpm_setup into a state directory"
mkdir "$tmp/d"
setup "$tmp/d" || { cat "$tmp/setup.out" "$tmp/setup.log"; fail "swtpm_setup"; }
grep -q 'Successfully authored TPM state' "$tmp/setup.log" || fail "swtpm_setup log"
[ -s "$tmp/d/blobstore-vtpm.permall" ] || fail "no image in the state directory"
ls "$tmp/d" | grep -c '^tpm2-00' >/dev/null && fail "swtpm state files written beside the image"
serve "dir=$tmp/d"
ekcert "$tmp/ek1.der"
tpm2_nvread -T "swtpm:port=$port" -C o 0x1c08000 -o "$tmp/plat.der" 2>/dev/null || fail "platform certificate"
tpm2_getcap -T "swtpm:port=$port" handles-persistent | grep -c 0x81010001 >/dev/null || fail "no persistent EK"
# --lock-nvram: the certificate cannot be rewritten.
printf 'x' >"$tmp/x"
tpm2_nvwrite -T "swtpm:port=$port" -C o -i "$tmp/x" 0x1c00002 2>/dev/null && fail "EK certificate not write-locked"
down
if quick; then
	echo "   (BS_TEST_QUICK: manufacturing once)"
	echo OK
	exit 0
fi
echo "== --not-overwrite keeps the TPM, --overwrite makes a new one"
setup "$tmp/d" --not-overwrite || fail "swtpm_setup --not-overwrite"
serve "dir=$tmp/d"
ekcert "$tmp/ek2.der"
down
cmp -s "$tmp/ek1.der" "$tmp/ek2.der" || fail "--not-overwrite changed the TPM"
setup "$tmp/d" || true
grep -q "Found existing TPM state" "$tmp/setup.log" || fail "swtpm_setup did not see the TPM (print-states)"
setup "$tmp/d" --overwrite || fail "swtpm_setup --overwrite"
serve "dir=$tmp/d"
ekcert "$tmp/ek3.der"
down
cmp -s "$tmp/ek1.der" "$tmp/ek3.der" && fail "--overwrite kept the old TPM"

echo "== a file:// volume (Proxmox) and an encrypted state"
truncate -s 4M "$tmp/vol.raw"
setup "file://$tmp/vol.raw" || { cat "$tmp/setup.out" "$tmp/setup.log"; fail "swtpm_setup file://"; }
serve "backend-uri=file://$tmp/vol.raw"
ekcert "$tmp/ek4.der"
down
"$BLOBSTORE" check "$tmp/vol.raw" >/dev/null || fail "check of the file:// image"
# A blank volume (all zero, as a new Proxmox volume) becomes a new image.
truncate -s 4M "$tmp/blank.raw"
serve "backend-uri=file://$tmp/blank.raw"
down
"$BLOBSTORE" check "$tmp/blank.raw" >/dev/null || fail "check of the image made on a blank volume"
# A damaged image is never taken for a blank one.
cp "$tmp/vol.raw" "$tmp/zeroed.raw"
dd if=/dev/zero of="$tmp/zeroed.raw" bs=8 count=1 conv=notrunc 2>/dev/null
port=$(free_port_pair)
"$VTPM" socket --tpm2 --tpmstate "backend-uri=file://$tmp/zeroed.raw" --ctrl type=tcp,port="$port" \
	--flags not-need-init 2>"$tmp/err" && fail "started on an image whose start was zeroed"
grep -q 'not a blobstore image' "$tmp/err" || { cat "$tmp/err"; fail "message for a zeroed header"; }
printf 'a passphrase' >"$tmp/pw"
mkdir "$tmp/e"
setup "$tmp/e" --pwdfile "$tmp/pw" --cipher aes-256-cbc || { cat "$tmp/setup.out" "$tmp/setup.log"; fail "swtpm_setup --pwdfile"; }
"$BLOBSTORE" get "$tmp/e/blobstore-vtpm.permall" tpm2.libtpms --name permall -o /dev/null 2>/dev/null &&
	fail "the state of swtpm_setup --pwdfile is in the clear"
serve "dir=$tmp/e" --key pwdfile="$tmp/pw",mode=aes-256-cbc
ekcert "$tmp/ek5.der"
down
echo OK
