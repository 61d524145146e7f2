#!/usr/bin/env bash
# test_swtpm.sh - swtpm interoperability of import-swtpm / export-swtpm:
# swtpm_setup makes TPMs with EK and platform certificates (plain, key file
# AES-256, passphrase AES-128); each is imported, exported, and served again
# by swtpm (and by blobstore-vtpm when built) with the same certificates and
# persistent handles, read with tpm2-tools.  Also: byte-identical plain round
# trips, --force and stale blobs, wrong keys, malformed files, swtpm's lock.
set -euo pipefail
: "${BLOBSTORE:?}"
BUILD_DIR=${BUILD_DIR:-$(dirname "$BLOBSTORE")}

for t in swtpm swtpm_setup swtpm_ioctl swtpm_localca tpm2_nvread tpm2_getcap python3; do
	command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 0; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bs-swtpm.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
bs() { "$BLOBSTORE" --no-sync "$@"; }

# expect_exit STATUS COMMAND... - COMMAND must exit with STATUS; its
# standard error is left in $tmp/err.
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$rc" -eq "$want" ] || { cat "$tmp/err" >&2; fail "'$*' exited with $rc, expected $want"; }
}
err_has() { grep -qF -- "$1" "$tmp/err" || { cat "$tmp/err" >&2; fail "stderr lacks '$1'"; }; }

# swtpm_setup with a private certificate authority (swtpm_localca) under
# $tmp, a private HOME, and no user configuration.
mkdir -p "$tmp/ca" "$tmp/home"
cat >"$tmp/localca.conf" <<EOF
statedir = $tmp/ca
signingkey = $tmp/ca/signkey.pem
issuercert = $tmp/ca/issuercert.pem
certserial = $tmp/ca/certserial
EOF
printf -- '--platform-manufacturer blobstore\n--platform-version 2.1\n--platform-model test\n' \
	>"$tmp/localca.options"
cat >"$tmp/setup.conf" <<EOF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $tmp/localca.conf
create_certs_tool_options = $tmp/localca.options
active_pcr_banks = sha256
EOF
runas=()
[ "$(id -u)" -eq 0 ] && runas=(--runas root)

# make_tpm DIR [swtpm_setup options] - a TPM 2.0 with EK (RSA and ECC) and
# platform certificates.
make_tpm() {
	local dir=$1
	shift
	mkdir -p "$dir"
	HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home swtpm_setup --tpm2 --tpmstate "$dir" \
		--create-ek-cert --create-platform-cert --overwrite --config "$tmp/setup.conf" \
		--pcr-banks sha256 "${runas[@]}" "$@" >"$tmp/setup.log" 2>&1 ||
		{ cat "$tmp/setup.log" >&2; fail "swtpm_setup $*"; }
}

# shellcheck source=ports.sh
. "$(dirname "$0")/ports.sh"

# wait_port PORT PID - until 127.0.0.1:PORT accepts (PID must stay alive).
wait_port() {
	for _ in $(seq 1 100); do
		kill -0 "$2" 2>/dev/null || return 1
		python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
			"$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

port=0
ctrl=0
server_pid=0

# start_swtpm DIR [--key ...] - swtpm on DIR on free ports.
start_swtpm() {
	local dir=$1
	shift
	port=$(free_port_pair)
	ctrl=$((port + 1))
	swtpm socket --tpm2 --tpmstate dir="$dir" --server type=tcp,port="$port" \
		--ctrl type=tcp,port="$ctrl" --flags not-need-init,startup-clear "$@" \
		--log file="$tmp/swtpm.log" >>"$tmp/swtpm.log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	wait_port "$port" "$server_pid" || { cat "$tmp/swtpm.log" >&2; fail "swtpm on $dir did not start"; }
}

# start_vtpm IMAGE [options] - the project's server on IMAGE.
start_vtpm() {
	local img=$1
	shift
	port=$(free_port_pair)
	ctrl=$((port + 1))
	"$BUILD_DIR/blobstore-vtpm" --image "$img" --port "$port" --ctrl-port "$ctrl" \
		--flags not-need-init,startup-clear --no-sync "$@" >"$tmp/vtpm.log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	wait_port "$port" "$server_pid" || { cat "$tmp/vtpm.log" >&2; fail "blobstore-vtpm did not start"; }
}

# stop_server [-v] - CMD_SHUTDOWN through the control channel (with -v the
# volatile state is stored first), then wait for the process.
stop_server() {
	if [ "${1:-}" = -v ]; then
		swtpm_ioctl --tcp "127.0.0.1:$ctrl" -v >/dev/null || fail "storing the volatile state"
	fi
	swtpm_ioctl --tcp "127.0.0.1:$ctrl" -s >/dev/null 2>&1 || kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
}

# read_tpm OUT - the EK certificates (RSA 0x1c00002, ECC 0x1c00016), the
# platform certificate (0x1c08000) and the persistent handles into OUT.*.
read_tpm() {
	local tcti=swtpm:host=127.0.0.1,port=$port idx
	for idx in 0x1c00002 0x1c00016 0x1c08000; do
		tpm2_nvread -T "$tcti" "$idx" -o "$1.$idx" 2>"$tmp/tpm2.err" ||
			{ cat "$tmp/tpm2.err" >&2; fail "tpm2_nvread $idx"; }
		[ -s "$1.$idx" ] || fail "empty NV index $idx"
	done
	tpm2_getcap -T "$tcti" handles-persistent >"$1.handles" || fail "tpm2_getcap"
	grep -q 0x81010001 "$1.handles" || { cat "$1.handles" >&2; fail "no persistent EK handle"; }
}

# same_tpm A B - what read_tpm saw is identical.
same_tpm() {
	local f
	for f in 0x1c00002 0x1c00016 0x1c08000 handles; do
		cmp -s "$1.$f" "$2.$f" || fail "$f differs between $1 and $2"
	done
}

# ---- a plain TPM: swtpm -> image -> swtpm ------------------------------------

make_tpm "$tmp/st0"
[ -s "$tmp/st0/tpm2-00.permall" ] || fail "swtpm_setup wrote no permall"
# The reference: swtpm serves a copy; its volatile state is stored on the
# way out, so the directory holds both blobs.
cp -a "$tmp/st0" "$tmp/ref"
start_swtpm "$tmp/ref"
read_tpm "$tmp/ref"
stop_server -v
[ -s "$tmp/ref/tpm2-00.volatilestate" ] || fail "swtpm stored no volatile state"

bs import-swtpm "$tmp/a.img" "$tmp/ref" >"$tmp/out"
grep -q 'tpm2-00.permall (version 2, plain) -> tpm2.libtpms/permall' "$tmp/out" ||
	{ cat "$tmp/out"; fail "import report"; }
# The order of earlier versions (DIR IMAGE) still works, with a warning.
bs import-swtpm "$tmp/ref" "$tmp/old-order.img" >/dev/null 2>"$tmp/err"
grep -q 'import-swtpm DIR IMAGE is deprecated' "$tmp/err" || fail "no deprecation warning"
cmp <(bs get "$tmp/old-order.img" tpm2.libtpms --name permall) \
	<(bs get "$tmp/a.img" tpm2.libtpms --name permall) || fail "import in the old order"
bs list "$tmp/a.img" >"$tmp/list"
grep -q 'tpm2.libtpms *permall' "$tmp/list" || fail "no permall entry"
grep -q 'tpm2.libtpms *volatilestate' "$tmp/list" || fail "no volatilestate entry"
bs check "$tmp/a.img" >/dev/null || fail "check after import"

bs export-swtpm "$tmp/a.img" "$tmp/new" >/dev/null
# swtpm's plain blobs are a pure function of the data: byte for byte.
cmp "$tmp/ref/tpm2-00.permall" "$tmp/new/tpm2-00.permall" || fail "permall changed"
cmp "$tmp/ref/tpm2-00.volatilestate" "$tmp/new/tpm2-00.volatilestate" || fail "volatilestate changed"
# export -> import -> export is byte-identical too.
bs import-swtpm "$tmp/b.img" "$tmp/new" >/dev/null
bs export-swtpm "$tmp/b.img" "$tmp/new2" >/dev/null
for f in permall volatilestate; do
	cmp "$tmp/new/tpm2-00.$f" "$tmp/new2/tpm2-00.$f" || fail "$f differs after a round trip"
done
cmp <(bs get "$tmp/a.img" tpm2.libtpms --name permall) <(bs get "$tmp/b.img" tpm2.libtpms --name permall) ||
	fail "permall data differs between the images"

start_swtpm "$tmp/new"
read_tpm "$tmp/new"
same_tpm "$tmp/ref" "$tmp/new"
# swtpm's lock on the directory keeps exports out while it runs.
expect_exit 4 bs export-swtpm --force "$tmp/a.img" "$tmp/new"
err_has "locked"
stop_server

# The project's server serves the imported image with the same TPM.
if [ -x "$BUILD_DIR/blobstore-vtpm" ]; then
	cp "$tmp/a.img" "$tmp/vtpm.img"
	start_vtpm "$tmp/vtpm.img"
	read_tpm "$tmp/vtpm"
	same_tpm "$tmp/ref" "$tmp/vtpm"
	stop_server
else
	echo "note: $BUILD_DIR/blobstore-vtpm not built: serving the imported image with it skipped"
fi

# ---- --force, stale blobs, refusals -----------------------------------------

expect_exit 8 bs import-swtpm "$tmp/a.img" "$tmp/st0"
err_has "already holds a TPM"
# st0 has no volatile state: the imported TPM must not keep ref's.
bs import-swtpm --force "$tmp/a.img" "$tmp/st0" >"$tmp/out"
grep -q 'removed tpm2.libtpms/volatilestate' "$tmp/out" || { cat "$tmp/out"; fail "stale volatilestate kept"; }
bs list "$tmp/a.img" | grep -q volatilestate && fail "volatilestate entry left"
cmp <(bs get "$tmp/a.img" tpm2.libtpms --name permall) \
	<(tail -c +17 "$tmp/st0/tpm2-00.permall") || fail "permall after --force import"
expect_exit 8 bs export-swtpm "$tmp/a.img" "$tmp/new"
err_has "already holds swtpm TPM 2.0 state"
bs export-swtpm --force "$tmp/a.img" "$tmp/new" >/dev/null
[ -e "$tmp/new/tpm2-00.volatilestate" ] && fail "export kept a stale volatilestate file"
cmp "$tmp/st0/tpm2-00.permall" "$tmp/new/tpm2-00.permall" || fail "permall after --force export"

# Malformed files: refused with the file and the offset, image untouched.
mkdir -p "$tmp/bad"
head -c 1000 "$tmp/st0/tpm2-00.permall" >"$tmp/bad/tpm2-00.permall"
expect_exit 3 bs import-swtpm "$tmp/c.img" "$tmp/bad"
err_has "$tmp/bad/tpm2-00.permall: at offset 6: the header's total length is"
[ -e "$tmp/c.img" ] && fail "image created for a refused import"
python3 - "$tmp/st0/tpm2-00.permall" "$tmp/bad/tpm2-00.permall" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[12:16] = (len(b)).to_bytes(4, 'big')  # the data record runs past the end
open(sys.argv[2], 'wb').write(b)
EOF
expect_exit 3 bs import-swtpm "$tmp/c.img" "$tmp/bad"
err_has "at offset 12: record length"
printf 'no header here, just bytes' >"$tmp/bad/tpm2-00.permall"
expect_exit 3 bs import-swtpm "$tmp/c.img" "$tmp/bad"
err_has "--headerless"
bs import-swtpm --headerless "$tmp/c.img" "$tmp/bad" >/dev/null
[ "$(bs get "$tmp/c.img" tpm2.libtpms --name permall)" = "no header here, just bytes" ] ||
	fail "headerless import"
rm -rf "$tmp/empty" && mkdir "$tmp/empty"
expect_exit 2 bs import-swtpm "$tmp/c.img" "$tmp/empty"
err_has "no tpm2-00.permall"
expect_exit 2 bs export-swtpm "$tmp/st0.img" "$tmp/x"

# ---- key file, AES-256 ---------------------------------------------------------

python3 -c 'import os; print(os.urandom(32).hex())' >"$tmp/key.hex"
make_tpm "$tmp/enc0" --keyfile "$tmp/key.hex" --cipher aes-256-cbc
[ "$(od -An -tx1 -j4 -N2 "$tmp/enc0/tpm2-00.permall" | tr -d ' ')" = 0009 ] ||
	fail "swtpm_setup did not write an AES-256 encrypted permall"
cp -a "$tmp/enc0" "$tmp/encref"
start_swtpm "$tmp/encref" --key file="$tmp/key.hex",mode=aes-256-cbc
read_tpm "$tmp/encref"
stop_server -v

# Into an encrypted image: the TPM state is stored encrypted there too.
head -c 32 /dev/urandom >"$tmp/img.key"
bs format "$tmp/e.img" >/dev/null
bs --key-file "$tmp/img.key" encrypt-init "$tmp/e.img" >/dev/null
expect_exit 7 bs import-swtpm --swtpm-key "$tmp/key.hex" "$tmp/e.img" "$tmp/encref"
err_has "give its key"
expect_exit 7 bs --key-file "$tmp/img.key" import-swtpm "$tmp/e.img" "$tmp/encref"
err_has "the blob is encrypted (aes-256-cbc): give its swtpm key"
python3 -c 'import os; print(os.urandom(32).hex())' >"$tmp/wrong.hex"
expect_exit 7 bs --key-file "$tmp/img.key" import-swtpm --swtpm-key "$tmp/wrong.hex" "$tmp/e.img" "$tmp/encref"
err_has "HMAC mismatch: wrong key"
bs list "$tmp/e.img" | grep -q tpm2.libtpms && fail "a failed import left entries"
bs --key-file "$tmp/img.key" import-swtpm --swtpm-key "$tmp/key.hex" "$tmp/e.img" "$tmp/encref" >"$tmp/out"
grep -q 'encrypted (aes-256-cbc)) -> tpm2.libtpms/permall, [0-9]* octets, encrypted' "$tmp/out" ||
	{ cat "$tmp/out"; fail "import report (encrypted)"; }
# No plaintext certificate in the image file.
python3 - "$tmp/encref.0x1c00002" "$tmp/e.img" <<'EOF' || fail "EK certificate in clear in the encrypted image"
import sys
cert = open(sys.argv[1], 'rb').read()
img = open(sys.argv[2], 'rb').read()
sys.exit(1 if cert[16:80] in img else 0)
EOF
expect_exit 7 bs get "$tmp/e.img" tpm2.libtpms --name permall

bs --key-file "$tmp/img.key" export-swtpm --swtpm-key "$tmp/key.hex" "$tmp/e.img" "$tmp/encnew" >/dev/null
[ "$(od -An -tx1 -j4 -N2 "$tmp/encnew/tpm2-00.permall" | tr -d ' ')" = 0009 ] ||
	fail "export did not encrypt with AES-256"
start_swtpm "$tmp/encnew" --key file="$tmp/key.hex",mode=aes-256-cbc
read_tpm "$tmp/encnew"
same_tpm "$tmp/encref" "$tmp/encnew"
stop_server
# The other way round: encrypted swtpm state -> plain export -> swtpm.
bs --key-file "$tmp/img.key" export-swtpm "$tmp/e.img" "$tmp/encplain" >/dev/null
[ "$(od -An -tx1 -j4 -N2 "$tmp/encplain/tpm2-00.permall" | tr -d ' ')" = 0000 ] || fail "plain export"
start_swtpm "$tmp/encplain"
read_tpm "$tmp/encplain"
same_tpm "$tmp/encref" "$tmp/encplain"
stop_server

# ---- passphrase, AES-128 (swtpm's defaults: pbkdf2, aes-128-cbc) --------------

printf 'correct horse battery staple\n' >"$tmp/pw"
make_tpm "$tmp/pw0" --pwdfile "$tmp/pw"
[ "$(od -An -tx1 -j4 -N2 "$tmp/pw0/tpm2-00.permall" | tr -d ' ')" = 0001 ] ||
	fail "swtpm_setup did not write an AES-128 encrypted permall"
cp -a "$tmp/pw0" "$tmp/pwref"
start_swtpm "$tmp/pwref" --key pwdfile="$tmp/pw"
read_tpm "$tmp/pwref"
stop_server
printf 'correct horse battery staple' >"$tmp/pw-nonl"
expect_exit 7 bs import-swtpm --swtpm-passphrase-file "$tmp/pw-nonl" "$tmp/p.img" "$tmp/pwref"
err_has "wrong key"
bs import-swtpm --swtpm-passphrase-file "$tmp/pw" "$tmp/p.img" "$tmp/pwref" >/dev/null
bs export-swtpm --swtpm-passphrase-file "$tmp/pw" "$tmp/p.img" "$tmp/pwnew" >/dev/null
[ "$(od -An -tx1 -j4 -N2 "$tmp/pwnew/tpm2-00.permall" | tr -d ' ')" = 0001 ] ||
	fail "passphrase export did not encrypt with AES-128"
start_swtpm "$tmp/pwnew" --key pwdfile="$tmp/pw"
read_tpm "$tmp/pwnew"
same_tpm "$tmp/pwref" "$tmp/pwnew"
stop_server

echo "ok: swtpm import/export (plain, key file AES-256, passphrase AES-128)"
