#!/usr/bin/env bash
# test_vtpm_swtpm_cli.sh - blobstore-vtpm launched as swtpm is: swtpm's
# `socket` command line (options matched exactly, unknown ones named, exit
# statuses 0 and 1), --print-capabilities and --print-states, the pid file
# written once the sockets listen and removed at exit, a failed start that
# leaves nothing behind, libvirt's launch line with --terminate (a QEMU-like
# client passes the command channel with CMD_SET_DATAFD and goes away),
# swtpm_ioctl against it, CMD_INIT after CMD_STORE_VOLATILE as swtpm does,
# swtpm's state files imported on the first start (kept), --key, and the
# own command line's --create and key rules.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
for t in swtpm swtpm_ioctl tpm2_nvread tpm2_pcrread python3; do
	command -v $t >/dev/null || { echo "SKIP: needs swtpm, swtpm-tools, tpm2-tools, python3"; exit 0; }
done
C="python3 $here/vtpm_ctrl.py"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; vtpm_cleanup' EXIT

# expect STATUS CMD... - CMD exits with STATUS; its output is in $tmp/out, $tmp/err.
expect() {
	local want=$1 rc=0
	shift
	# Bounded: a server that starts when it should fail must not hang the suite.
	timeout 60 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	[ "$rc" = "$want" ] || { cat "$tmp/out" "$tmp/err"; fail "'$*' exited $rc, expected $want"; }
}
err_has() { grep -qF -- "$1" "$tmp/err" || { cat "$tmp/err"; fail "stderr lacks '$1'"; }; }

# serve DIR ARGS...: blobstore-vtpm socket on free ports; sets port, spid.
serve() {
	local dir=$1
	shift
	port=$(free_port_pair)
	"$VTPM" socket --tpm2 --tpmstate dir="$dir" --server type=tcp,port="$port" \
		--ctrl type=tcp,port=$((port + 1)) --pid file="$tmp/s.pid" \
		--log file="$tmp/vtpm.log",level=2 "$@" 2>>"$tmp/vtpm.err" &
	spid=$!
	pids+=("$spid")
	for _ in $(seq 100); do [ -s "$tmp/s.pid" ] && break; sleep 0.05; done
	# The pid file comes before the TPM starts (swtpm's order); the control
	# channel answers once it has started.
	$C "tcp:$((port + 1))" caps >/dev/null 2>&1 || { cat "$tmp/vtpm.err"; fail "blobstore-vtpm socket on $dir did not start"; }
}
X() { echo "swtpm:port=$port"; }
stop() {
	swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -s >/dev/null || fail "swtpm_ioctl -s"
	wait "$spid" || fail "exit status $? after CMD_SHUTDOWN"
}

echo "== the command line"
expect 0 "$VTPM" socket --print-capabilities
python3 - "$tmp/out" <<'PY' || fail "--print-capabilities"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["type"] == "swtpm" and "tpm-2.0" in c["features"] and "tpm-1.2" not in c["features"], c
for f in ("cmdarg-pwd-fd", "cmdarg-key-fd", "cmdarg-print-states", "cmdarg-migration",
          "nvram-backend-dir", "nvram-backend-file", "flags-opt-startup"):
    assert f in c["features"], f
assert not [f for f in c["features"] if f.startswith("rsa-keysize")]
PY
expect 0 "$VTPM" socket --tpm2 --print-capabilities
grep -q '"rsa-keysize-2048"' "$tmp/out" || fail "--tpm2 --print-capabilities lacks the RSA key sizes"
expect 0 "$VTPM" --version
expect 0 "$VTPM" socket --help
grep -q -- '--tpmstate' "$tmp/out" || fail "socket --help"
expect 1 "$VTPM" socket --bogus
err_has "unrecognized option '--bogus'"
expect 1 "$VTPM" socket --tpm2 --serv type=tcp,port=1
err_has "unrecognized option '--serv'"
expect 1 "$VTPM" socket --tpm2 --server type=tcp,port=2000,bogus=1 --tpmstate dir="$tmp"
err_has "--server: unknown option 'bogus=1'"
expect 1 "$VTPM" socket --tpm2 --ctrl path=/x --tpmstate dir="$tmp"
err_has "--ctrl: missing type"
expect 1 "$VTPM" socket --tpm2 --server port=99999 --tpmstate dir="$tmp"
err_has "outside valid range"
expect 1 "$VTPM" socket --tpm2 --server type=tcp,port=2000,bindaddr=not-an-address --tpmstate dir="$tmp"
err_has "bind address 'not-an-address'"
expect 1 "$VTPM" socket --tpm2 --tpmstate dir= --ctrl type=tcp,port=2000
err_has "'dir=' needs a value"
expect 1 "$VTPM" socket --tpm2 --flags bogus
err_has "--flags: unknown option 'bogus'"
expect 1 "$VTPM" socket --tpm2 --tpmstate dir="$tmp" --ctrl type=tcp,port=2000 --seccomp action=kill
err_has "only action=none"
expect 1 "$VTPM" socket --tpm2 --runas no-such-user-here --ctrl type=tcp,port=2000
err_has "User 'no-such-user-here' does not exist"
expect 1 "$VTPM" socket --tpm2 --profile name=default-v1
err_has "not supported"
expect 1 "$VTPM" socket stray
err_has "unknown parameter 'stray'"
expect 1 "$VTPM" socket --tpmstate dir="$tmp" --ctrl type=tcp,port=2000
err_has "--tpm2"
expect 1 "$VTPM" chardev --tpm2

echo "== --print-states"
mkdir "$tmp/empty"
expect 0 "$VTPM" socket --tpm2 --print-states --tpmstate dir="$tmp/empty"
[ "$(cat "$tmp/out")" = '{ "type": "swtpm", "states": [] }' ] || fail "print-states (empty): $(cat "$tmp/out")"
[ -z "$(ls -A "$tmp/empty")" ] || fail "--print-states wrote into the directory"
expect 1 "$VTPM" socket --tpm2 --print-states
expect 1 "$VTPM" socket --tpm2 --tpmstate dir="$tmp/no-such-dir" --ctrl type=tcp,port=$(free_port_pair) --flags not-need-init
err_has "$tmp/no-such-dir"

echo "== no abbreviations: --pid file=P and --server type=unixio,path=S mean what they say"
mkdir "$tmp/st"
"$VTPM" socket --tpm2 --tpmstate dir="$tmp/st" --server type=unixio,path="$tmp/data.sock" \
	--ctrl type=unixio,path="$tmp/ctrl.sock",mode=0600 --pid file="$tmp/p.pid" \
	--flags not-need-init,startup-clear &
spid=$!
pids+=("$spid")
for _ in $(seq 100); do [ -s "$tmp/p.pid" ] && break; sleep 0.05; done
# The pid file appears once both sockets listen; swtpm's format.
[ -S "$tmp/data.sock" ] && [ -S "$tmp/ctrl.sock" ] || fail "sockets not there when the pid file is"
[ "$(cat "$tmp/p.pid")" = "$spid" ] || fail "pid file holds '$(cat "$tmp/p.pid")', not $spid"
[ "$(stat -c %a "$tmp/p.pid")" = 644 ] || fail "pid file mode $(stat -c %a "$tmp/p.pid")"
[ "$(stat -c %a "$tmp/ctrl.sock")" = 600 ] || fail "ctrl socket mode $(stat -c %a "$tmp/ctrl.sock")"
[ -e "$tmp/file=p.pid" ] || [ -e "$tmp/type=unixio" ] && fail "an option value was taken as a path"
$C "unix:$tmp/ctrl.sock" caps | grep -c '^0x0 ' >/dev/null || fail "CMD_GET_CAPABILITY over the UNIX socket"
swtpm_ioctl --unix "$tmp/ctrl.sock" -s || fail "swtpm_ioctl --unix -s"
wait "$spid" || fail "exit status after CMD_SHUTDOWN"
[ ! -e "$tmp/p.pid" ] || fail "pid file left after exit"
[ ! -e "$tmp/ctrl.sock" ] || fail "control socket left after exit"
[ -s "$tmp/st/blobstore-vtpm.permall" ] || fail "no image in the state directory"
expect 0 "$VTPM" socket --tpm2 --print-states --tpmstate backend-uri=dir://"$tmp/st",lock
grep -q '{"name": "permall", "size": [0-9]*}' "$tmp/out" || fail "print-states: $(cat "$tmp/out")"

echo "== a start that fails leaves nothing behind"
# The port is held by another listener for sure (another test may take a
# free port between the choice and the bind: then choose again).
busy=
for _ in 1 2 3 4 5 6 7 8 9 10; do
	port=$(free_port_pair)
	rm -f "$tmp/busy.ok"
	python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); open(sys.argv[2],"w").close(); time.sleep(30)' "$port" "$tmp/busy.ok" 2>/dev/null &
	busy=$!
	for _ in $(seq 1 50); do
		[ -e "$tmp/busy.ok" ] && break
		kill -0 "$busy" 2>/dev/null || break
		sleep 0.05
	done
	[ -e "$tmp/busy.ok" ] && break
	kill "$busy" 2>/dev/null || true
	busy=
done
[ -n "$busy" ] || fail "no port could be held for the busy-port test"
pids+=("$busy")
mkdir "$tmp/f1"
expect 1 "$VTPM" socket --tpm2 --tpmstate dir="$tmp/f1" --server type=tcp,port="$port" \
	--ctrl type=tcp,port=$((port + 1)) --flags not-need-init --pid file="$tmp/f1.pid"
err_has "Address already in use"
[ -z "$(ls -A "$tmp/f1")" ] && [ ! -e "$tmp/f1.pid" ] || fail "a failed start left $(ls -A "$tmp/f1") $(ls "$tmp"/f1.pid 2>/dev/null)"
expect 1 "$VTPM" --image "$tmp/f2.img" --create --port "$port" --flags not-need-init --pid-file "$tmp/f2.pid"
[ ! -e "$tmp/f2.img" ] && [ ! -e "$tmp/f2.pid" ] || fail "own command line: a failed start left files"
kill "$busy"
# A state the TPM cannot start on: no pid file either, the state untouched.
mkdir "$tmp/f3"
printf 'not a TPM state' >"$tmp/f3/tpm2-00.permall"
port=$(free_port_pair)
expect 1 "$VTPM" socket --tpm2 --tpmstate dir="$tmp/f3" --server type=tcp,port="$port" \
	--ctrl type=tcp,port=$((port + 1)) --flags not-need-init --pid file="$tmp/f3.pid"
[ ! -e "$tmp/f3.pid" ] && [ ! -e "$tmp/f3/blobstore-vtpm.permall" ] || fail "failed start left files (f3)"
[ "$(cat "$tmp/f3/tpm2-00.permall")" = 'not a TPM state' ] || fail "swtpm's file changed"

echo "== the own command line creates an image only with --create"
port=$(free_port_pair)
expect 1 "$VTPM" --image "$tmp/typo.img" --port "$port" --flags not-need-init
err_has "give --create"
[ ! -e "$tmp/typo.img" ] || fail "an image was created without --create"
head -c 32 /dev/urandom >"$tmp/k"
"$BLOBSTORE" -q format "$tmp/plain.img"
expect 1 "$VTPM" --image "$tmp/plain.img" --key-file "$tmp/k" --port "$port" --flags not-need-init
err_has "blobstore encrypt-init"
vtpm_start --image "$tmp/enc.img" --create --key-file "$tmp/k" --port "$port" --flags not-need-init,startup-clear
export TPM2TOOLS_TCTI="swtpm:port=$port"
tpm2_getrandom 4 >/dev/null
vtpm_stop TERM
"$BLOBSTORE" get "$tmp/enc.img" tpm2.libtpms --name permall -o /dev/null 2>/dev/null &&
	fail "a new image created with a key holds the TPM state in the clear"
"$BLOBSTORE" --key-file "$tmp/k" get "$tmp/enc.img" tpm2.libtpms --name permall -o /dev/null ||
	fail "the key does not read the TPM state"
unset TPM2TOOLS_TCTI

echo "== libvirt's launch line: --ctrl unixio, --terminate, no --server"
mkdir "$tmp/lv"
chmod 0700 "$tmp/lv"
"$VTPM" socket --ctrl type=unixio,path="$tmp/lv.sock",mode=0600 --tpmstate dir="$tmp/lv",mode=0600 \
	--log file="$tmp/lv.log" --terminate --tpm2 --pid file="$tmp/lv.pid" &
lpid=$!
pids+=("$lpid")
for _ in $(seq 100); do [ -s "$tmp/lv.pid" ] && break; sleep 0.05; done
[ -S "$tmp/lv.sock" ] || fail "no control socket"
# What QEMU does: CMD_INIT, then TPM commands over a descriptor it passes.
[ "$($C "unix:$tmp/lv.sock" init 0)" = 0x0 ] || fail "CMD_INIT"
r=$($C "unix:$tmp/lv.sock" tpm 80010000000c000001440000)
[ "$r" = 80010000000a00000000 ] || fail "TPM2_Startup over CMD_SET_DATAFD answered $r"
# The passed descriptor closed with the client: --terminate ends the server.
for _ in $(seq 50); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$lpid" 2>/dev/null && fail "--terminate: still running after the command connection closed"
wait "$lpid" || fail "--terminate: exit status $?"
[ "$(stat -c %a "$tmp/lv/blobstore-vtpm.permall")" = 600 ] || fail "state file mode (mode=0600)"
[ ! -e "$tmp/lv.pid" ] || fail "pid file left after --terminate"
grep -q 'created' "$tmp/lv.log" || fail "libvirt's --log file= got nothing at level 1"
grep -q 'TPM2_Startup' "$tmp/lv.log" && fail "level 1 logs every command"

echo "== -d, --ctrl ...,terminate, --locality"
port=$(free_port_pair)
mkdir "$tmp/dm"
"$VTPM" socket -d --tpm2 --tpmstate dir="$tmp/dm" --server type=tcp,port="$port" \
	--ctrl type=tcp,port=$((port + 1)),terminate --flags not-need-init,startup-clear \
	--locality allow-set-locality,reject-locality-4 --pid file="$tmp/dm.pid" \
	--log file="$tmp/dm.log",level=2 || fail "-d: the parent exited $?"
# The parent returned once the daemon was ready: it answers at once.
dpid=$(cat "$tmp/dm.pid")
pids+=("$dpid")
kill -0 "$dpid" 2>/dev/null || fail "-d: no daemon"
# swtpm's in-band locality command: 3 is taken, 4 refused.
python3 - "$port" <<'PY' || fail "in-band SetLocality"
import socket, struct, sys
def cmd(loc):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(struct.pack(">HII", 0x8001, 11, 0x20001000) + bytes([loc]))
    r = s.recv(10)
    s.close()
    return struct.unpack(">I", r[6:10])[0]
assert cmd(3) == 0, "locality 3"
assert cmd(4) != 0, "locality 4 with reject-locality-4"
PY
grep -q 'swtpm_SetLocality locality 3 -> rc 0x0' "$tmp/dm.log" || fail "SetLocality not logged"
# ...,terminate: the end of a control connection ends the daemon.
[ "$($C "tcp:$((port + 1))" caps | cut -d' ' -f1)" = 0x0 ] || fail "CMD_GET_CAPABILITY"
for _ in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$dpid" 2>/dev/null && fail "--ctrl ...,terminate: still running"
grep -q 'terminating (--ctrl' "$tmp/dm.log" || fail "ctrl terminate not logged"
# -d with a state that does not start: the parent reports it.
printf 'junk' >"$tmp/dm/blobstore-vtpm.permall"
port=$(free_port_pair)
expect 1 "$VTPM" socket -d --tpm2 --tpmstate dir="$tmp/dm" --server type=tcp,port="$port" --flags not-need-init
err_has "not a blobstore image"

echo "== swtpm_ioctl, CMD_INIT after CMD_STORE_VOLATILE"
serve "$tmp/st" --flags not-need-init,startup-clear
export TPM2TOOLS_TCTI=$(X)
tpm2_pcrextend "16:sha256=$(printf '%064d' 1)"
want=$(tpm2_pcrread sha256:16 | awk '/16:/ {print $2}')
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -v || fail "swtpm_ioctl -v"
# swtpm resumes from the stored volatile state, and keeps it: no
# TPM2_Startup needed, twice.
for i in 1 2; do
	[ "$($C "tcp:$((port + 1))" init 0)" = 0x0 ] || fail "CMD_INIT"
	[ "$(tpm2_pcrread sha256:16 | awk '/16:/ {print $2}')" = "$want" ] || fail "CMD_INIT $i did not resume"
done
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -e | grep -c 'tpmEstablished is' >/dev/null || fail "swtpm_ioctl -e"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -g | grep -c 'flags: 0x0' >/dev/null || fail "swtpm_ioctl -g"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" --info 1 | grep -c TPM >/dev/null || fail "swtpm_ioctl --info"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -l 2 || fail "swtpm_ioctl -l"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" --save permanent "$tmp/perm.blob" || fail "--save"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" --save volatile "$tmp/vol.blob" || fail "--save volatile"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" --stop || fail "--stop"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" --load permanent "$tmp/perm.blob" || fail "--load"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" --load volatile "$tmp/vol.blob" || fail "--load volatile"
# swtpm_ioctl -i: PTM_INIT_FLAG_DELETE_VOLATILE, the volatile state is read and removed.
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -i || fail "swtpm_ioctl -i"
[ "$(tpm2_pcrread sha256:16 | awk '/16:/ {print $2}')" = "$want" ] || fail "-i: not resumed"
[ "$($C "tcp:$((port + 1))" init 0)" = 0x0 ] || fail "CMD_INIT"
tpm2_pcrread sha256:16 >/dev/null 2>&1 && fail "no volatile state left, yet no TPM2_Startup needed"
tpm2_startup -c
tpm2_createprimary -Q -C o -c "$tmp/primary.ctx"
tpm2_readpublic -Q -c "$tmp/primary.ctx"
tpm2_clear -Q
for n in "0x165 TPM2_FlushContext" "0x161 TPM2_ContextLoad" "0x162 TPM2_ContextSave" \
	"0x173 TPM2_ReadPublic" "0x126 TPM2_Clear" "0x17e TPM2_PCR_Read" "0x131 TPM2_CreatePrimary"; do
	grep -q "cc $n locality" "$tmp/vtpm.log" || fail "the log does not name $n"
done
stop
unset TPM2TOOLS_TCTI

echo "== swtpm's state files in DIR: imported on the first start, kept"
mkdir "$tmp/sw"
port=$(free_port_pair)
swtpm socket --tpm2 --tpmstate dir="$tmp/sw" --server type=tcp,port="$port" \
	--ctrl type=tcp,port=$((port + 1)) --flags not-need-init,startup-clear &
spid=$!
pids+=("$spid")
for _ in $(seq 100); do swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -c >/dev/null 2>&1 && break; sleep 0.05; done
export TPM2TOOLS_TCTI=$(X)
tpm2_nvdefine -Q 0x1500016 -C o -s 14 -a "ownerread|ownerwrite"
printf 'made by swtpm!' >"$tmp/nv.in"
tpm2_nvwrite -Q 0x1500016 -C o -i "$tmp/nv.in"
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -s
wait "$spid" || true
sha=$(sha256sum "$tmp/sw/tpm2-00.permall")
# What a crash in the middle of an earlier import leaves: ignored, replaced.
printf 'half an image' >"$tmp/sw/.blobstore-vtpm.permall.tmp"
: >"$tmp/vtpm.log"
serve "$tmp/sw" --flags not-need-init,startup-clear
export TPM2TOOLS_TCTI=$(X)
tpm2_nvread -Q 0x1500016 -C o -s 14 -o "$tmp/nv.out"
cmp "$tmp/nv.in" "$tmp/nv.out" || fail "NV index written by swtpm not read back"
grep -q "imported swtpm's state from $tmp/sw" "$tmp/vtpm.log" || fail "the import was not logged"
[ ! -e "$tmp/sw/.blobstore-vtpm.permall.tmp" ] || fail "a stale temporary image was left"
stop
[ "$(sha256sum "$tmp/sw/tpm2-00.permall")" = "$sha" ] || fail "swtpm's permall changed"
"$BLOBSTORE" check "$tmp/sw/blobstore-vtpm.permall" >/dev/null || fail "check of the imported image"
# swtpm refuses the directory while blobstore-vtpm serves it (DIR/.lock).
serve "$tmp/sw" --flags not-need-init
expect 1 timeout 10 swtpm socket --tpm2 --tpmstate dir="$tmp/sw" --server type=tcp,port=$(free_port_pair) --flags not-need-init
stop
unset TPM2TOOLS_TCTI

echo "== --key: a new state is encrypted; a plaintext one is encrypted crash-safely"
printf 'correct horse' >"$tmp/pw"
mkdir "$tmp/k1"
serve "$tmp/k1" --key pwdfile="$tmp/pw",mode=aes-256-cbc --flags not-need-init,startup-clear
[ "$($C "tcp:$((port + 1))" config)" = "0x0 0x1" ] || fail "CMD_GET_CONFIG with --key"
stop
"$BLOBSTORE" list "$tmp/k1/blobstore-vtpm.permall" >/dev/null 2>&1
"$BLOBSTORE" get "$tmp/k1/blobstore-vtpm.permall" tpm2.libtpms --name permall -o /dev/null 2>/dev/null &&
	fail "the state of --key is readable without the key"
# libvirt passes the passphrase on a descriptor (pwdfd=): the same key.
serve "$tmp/k1" --key pwdfd=5,mode=aes-256-cbc --flags not-need-init 5<"$tmp/pw"
stop
cp "$tmp/pw" "$tmp/pw.once"
serve "$tmp/st" --key pwdfile="$tmp/pw.once",remove=true --flags not-need-init,startup-clear
grep -q 'is encrypted (--key given)' "$tmp/vtpm.log" || fail "plaintext state not converted"
[ ! -e "$tmp/pw.once" ] || fail "--key ...,remove=true left the file"
stop
"$BLOBSTORE" get "$tmp/st/blobstore-vtpm.permall" tpm2.libtpms --name permall -o /dev/null 2>/dev/null &&
	fail "converted state still readable without the key"
port=$(free_port_pair)
expect 1 "$VTPM" socket --tpm2 --tpmstate dir="$tmp/st" --server type=tcp,port="$port" --flags not-need-init
err_has "encrypted; give its key"
echo OK
