#!/usr/bin/env bash
# test_rbd.sh - images on Ceph RBD, against a real cluster this test starts
# and stops itself (tests/integration/ceph_cluster.sh: one monitor, one
# bluestore OSD on a sparse file, pool size 1, no authentication, loopback
# ports below 32768), shared by every part:
#   - the store test suite and the RBD unit tests (lock, handover, grow, the
#     crash simulation) on the cluster;
#   - the command on rbd:// URIs, its errors (no pool, no image, a cluster
#     that does not answer, an image without the exclusive-lock feature, a
#     read-only snapshot);
#   - two processes standing for two hosts: a second writer refused (exit 4),
#     --wait=SECONDS bounded, a waiting writer taking over when the
#     holder closes, the vTPM state handed from one server to the next (its own
#     --image, and swtpm's --migration handover as QEMU drives it);
#   - fencing: the holder's lock broken with 'rbd lock rm' stops its writes;
#     a holder killed with -9 is taken over once its watch expires;
#   - clients killed with -9 in the middle of a put: old or new, never torn;
#   - kill -9 of the OSD in the middle of a run of puts and of a vTPM's NV
#     writes: every acknowledged put reads back after the OSD restarts.
# Skips only when the Ceph binaries are not installed.
here=$(cd "$(dirname "$0")" && pwd)
for b in ceph-mon ceph-osd ceph rados rbd monmaptool; do
	command -v "$b" >/dev/null ||
		{ echo "SKIP: $b not installed (Debian: ceph-mon ceph-osd ceph-common)"; exit 0; }
done
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
: "${SRCDIR:?}"
bs() { "$BLOBSTORE" "$@"; }
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		sed 's/^/    stderr: /' "$tmp/err" >&2
		fail "'$*' exited with $rc, expected $want"
	fi
}
err_has() { grep -qF -- "$1" "$tmp/err" || { cat "$tmp/err" >&2; fail "stderr lacks '$1'"; }; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# less A B: A < B (decimals)
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

cluster=$tmp/ceph
cleanup() {
	local p
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$here/ceph_cluster.sh" stop "$cluster" 2>/dev/null || true
	vtpm_cleanup
}
trap cleanup EXIT

t0=$(now)
conf=$("$here/ceph_cluster.sh" start "$cluster") || fail "the Ceph cluster did not start"
echo "cluster up in $(since "$t0") s: $conf"
rbdc() { timeout 20 rbd -c "$conf" --client_mount_timeout 10 "$@"; }
u() { echo "rbd://rbd/$1?conf=$conf${2:-}"; }
# section TITLE: prints the title and the time since the start.
section() { echo "== $* ($(since "$t0") s)"; }
rbd_size() { rbdc info --format json "rbd/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])'; }

# ---------------------------------------------------------------------------
section "the store test suite and the RBD unit tests on the cluster"
if quick; then
	echo "(quick: the store suite on RBD runs in the full pass; test_rbd covers the backend here)"
else
	BS_TEST_STORES=rbd BS_TEST_RBD_CONF=$conf "$BUILD_DIR/tests/test_store" >"$tmp/store.log" 2>&1 ||
		{ tail -n 40 "$tmp/store.log"; fail "the store suite on RBD"; }
	grep -q 'store suite on RBD' "$tmp/store.log" || fail "the store suite did not run on RBD"
	grep -q 'skipping RBD' "$tmp/store.log" && { cat "$tmp/store.log"; fail "the store suite skipped RBD"; }
fi
BS_TEST_RBD_CONF=$conf "$BUILD_DIR/tests/test_rbd" >"$tmp/unit.log" 2>&1 ||
	{ tail -n 40 "$tmp/unit.log"; fail "test_rbd on the cluster"; }
grep -q SKIPPED "$tmp/unit.log" && { cat "$tmp/unit.log"; fail "test_rbd skipped tests"; }
grep 'rbd crash simulation' "$tmp/unit.log"

# ---------------------------------------------------------------------------
section "the command on rbd:// URIs"
head -c 3000 /dev/urandom >"$tmp/a"
head -c 70000 /dev/urandom >"$tmp/b"
printf 'small' >"$tmp/c"
img=$(u cli "&size=1M")
bs -q format "$img"
[ "$(rbd_size cli)" = 1048576 ] || fail "format did not create a 1 MiB RBD image"
rbdc info rbd/cli | grep -q 'exclusive-lock' || fail "the new RBD image lacks exclusive-lock"
bs put "$img" vtpm/permall "$tmp/a"
bs put "$img" vtpm/volatile "$tmp/b"
bs put "$img" cfg "$tmp/c"
bs put "$img" vtpm/permall "$tmp/c"
bs rm "$img" vtpm/volatile
bs -q compact "$img"
bs check "$img" >/dev/null
bs check --schema "$img" >/dev/null
bs get "$img" vtpm/permall | cmp -s - "$tmp/c" || fail "permall differs"
bs get "$img" cfg | cmp -s - "$tmp/c" || fail "cfg differs"
bs list "$img" >/dev/null
bs dump "$img" >/dev/null
expect_exit 8 bs format "$img"
err_has "already exists"
# The size is fixed (block semantics); grow resizes the RBD image.
head -c 2000000 /dev/urandom >"$tmp/big"
expect_exit 5 bs put "$img" big "$tmp/big"
bs grow "$img" 8M
# The image can use 8 MiB; the RBD image has the recovery area on top.
[ "$(rbd_size cli)" = $((8388608 + 4096)) ] || fail "grow made the RBD image $(rbd_size cli) octets"
bs put "$img" big "$tmp/big"
bs get "$img" big | cmp -s - "$tmp/big" || fail "big entry differs after grow"
bs info "$img" | grep -q '^size: *8388608 octets' || { bs info "$img"; fail "size after grow"; }
# An existing image keeps its size; a URI without conf= reads $CEPH_CONF.
CEPH_CONF=$conf bs get "rbd://rbd/cli?size=64k" cfg | cmp -s - "$tmp/c" || fail "CEPH_CONF"
# id= names the client (the test cluster logs each client to log/client.ID.log).
bs get "$(u cli "&id=vtpm-host7")" cfg | cmp -s - "$tmp/c" || fail "get with id="
[ -e "$cluster/log/client.vtpm-host7.log" ] || fail "id= did not name the client"
# A pool namespace is a third part of the name.
rbdc namespace create rbd/tenant1
bs -q format "rbd://rbd/tenant1/vm?conf=$conf&size=256k"
bs put "rbd://rbd/tenant1/vm?conf=$conf" cfg "$tmp/c"
rbdc ls rbd/tenant1 | grep -qx vm || fail "the image is not in the namespace"

section "errors name the URI"
expect_exit 2 bs list "$(u nothere)"
err_has "$(u nothere): no RBD image 'nothere' in pool 'rbd'"
expect_exit 2 bs list "rbd://nopool/x?conf=$conf"
err_has "no such pool"
expect_exit 2 bs list "rbd://rbd/x?conf=$tmp/none.conf"
err_has "cannot read the Ceph configuration $tmp/none.conf"
expect_exit 8 bs list "rbd://rbd/x?conf=$conf&colour=blue"
err_has "unknown, repeated or malformed option 'colour=blue'"
# A cluster that does not answer: a bounded wait and a clear message.
sed 's/^mon_host = .*/mon_host = [v2:127.0.0.1:1]/' "$conf" >"$tmp/dead.conf"
t=$(now)
expect_exit 5 bs list "rbd://rbd/cli?conf=$tmp/dead.conf&timeout=1"
err_has "rbd://rbd/cli?conf=$tmp/dead.conf&timeout=1: cannot reach the Ceph cluster"
less "$(since "$t")" 5 || fail "an unreachable cluster took $(since "$t") s with timeout=1"
# No exclusive-lock feature: nothing would stop a second writer: refused.
rbdc create --size 1M --image-feature layering rbd/nolock
expect_exit 6 bs format "$(u nolock)"
err_has "no exclusive-lock feature"
bs -q list "$(u nolock)" 2>/dev/null && fail "list of an unformatted image succeeded"
# A snapshot reads the image as it was, and cannot be written.
rbdc snap create rbd/cli@before
bs put "$img" cfg "$tmp/a"
bs get "$(u cli "&snap=before")" cfg | cmp -s - "$tmp/c" || fail "the snapshot is not the old state"
bs get "$img" cfg | cmp -s - "$tmp/a" || fail "the image is not the new state"
expect_exit 8 bs put "$(u cli "&snap=before")" cfg "$tmp/c"
err_has "read-only"
expect_exit 2 bs get "$(u cli "&snap=nosuch")" cfg
err_has "snapshot 'nosuch'"

# ---------------------------------------------------------------------------
section "two processes: the writer lock across clients"
port=$(free_port_pair)
[ -n "$port" ] || fail "no free port pair"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
vimg=$(u vtpm "&size=1M")
bs -q format "$vimg"
vtpm_start --image "$vimg" --port "$port" --flags not-need-init,startup-clear
holder=$vtpm_pid
# A second writer: refused at once, naming the holder.
t=$(now)
expect_exit 4 bs put "$vimg" x "$tmp/c"
err_has "locked by another writer (held by client 127.0.0.1:"
less "$(since "$t")" 3 || fail "refusing the second writer took $(since "$t") s"
# The tool's --wait=SECONDS bounds its wait on RBD as on files.
t=$(now)
expect_exit 4 bs --wait=1 put "$vimg" x "$tmp/c"
err_has "still locked after waiting 1 s"
less 0.9 "$(since "$t")" || fail "--wait=1 gave up before 1 s"
# A second server on the same image: refused, the first keeps running.
port2=$(free_port_pair)
timeout 20 "$VTPM" --image "$vimg" --port "$port2" --flags not-need-init >"$tmp/v2.out" 2>&1 &&
	fail "a second server started on a locked image"
grep -q "locked by another writer" "$tmp/v2.out" || { cat "$tmp/v2.out"; fail "second server's message"; }
kill -0 "$holder" || fail "the holder died"
# Readers take no lock.
bs list "$vimg" >/dev/null
# A waiting writer takes over as soon as the holder closes (SIGTERM).
tpm2_nvdefine -Q 0x1500020 -C o -s 16 -a "ownerread|ownerwrite"
printf 'from the source!' >"$tmp/nv.want"
tpm2_nvwrite -Q 0x1500020 -C o -i "$tmp/nv.want"
bs --wait=30 put "$vimg" waiter "$tmp/c" >"$tmp/wait.out" 2>&1 &
waiter=$!
sleep 0.5
kill -0 "$waiter" 2>/dev/null || { cat "$tmp/wait.out"; fail "the waiting writer did not wait"; }
t=$(now)
vtpm_stop TERM
wait "$waiter" || { cat "$tmp/wait.out"; fail "the waiting writer failed after the holder closed"; }
less "$(since "$t")" 5 || fail "the waiting writer took $(since "$t") s after the holder closed"
bs get "$vimg" waiter | cmp -s - "$tmp/c" || fail "the waiter's put"

section "handover: the TPM state moves to the next server on the same image"
# The source server has closed the image (lock released); the destination
# opens it, resumes from the state the source saved, and now holds the lock.
vtpm_start --image "$vimg" --port "$port" --flags not-need-init
grep -q 'resumed from the volatile state' "$tmp/vtpm.log" || fail "the destination did not resume"
tpm2_nvread -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out"
cmp -s "$tmp/nv.want" "$tmp/nv.out" || fail "the NV index did not move with the image"
expect_exit 4 bs put "$vimg" x "$tmp/c"
section "fencing: 'rbd lock rm' blocklists the holder, which can write no more"
locks() { rbdc lock ls --format json "rbd/$1"; }
lock_field() { python3 -c 'import json,sys; l=json.load(sys.stdin); print(l[0][sys.argv[1]] if l else "")' "$1"; }
id=$(locks vtpm | lock_field id)
locker=$(locks vtpm | lock_field locker)
[ -n "$id" ] || fail "no lock listed for the running server"
rbdc lock rm rbd/vtpm "$id" "$locker"
printf 'after the fencing' >"$tmp/nv2"
head -c 16 "$tmp/nv2" >"$tmp/nv2.want"
tpm2_nvwrite -Q 0x1500020 -C o -i "$tmp/nv2.want" 2>/dev/null && fail "a fenced server stored an NV write"
grep -q "fenced (blocklisted)" "$tmp/vtpm.log" || { tail "$tmp/vtpm.log"; fail "no fencing message"; }
# The image still holds the state from before the fencing, and is free.
bs put "$vimg" after-fence "$tmp/c"
bs check "$vimg" >/dev/null
vtpm_stop KILL
vtpm_start --image "$vimg" --port "$port" --flags not-need-init,startup-clear
tpm2_nvread -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out"
cmp -s "$tmp/nv.want" "$tmp/nv.out" || fail "the NV index changed across the fencing"

if quick; then
	echo "(quick: the takeover from a killed holder is checked in the full pass)"
	vtpm_stop TERM
else
	section "a holder killed with -9: its lock passes on once its watch expires"
	vtpm_stop KILL
	t=$(now)
	bs put "$vimg" after-kill "$tmp/c"
	took=$(since "$t")
	echo "took over from the killed holder in $took s (osd_client_watch_timeout 5 s)"
	less "$took" 15 || fail "taking over from a dead holder took $took s"
	bs get "$vimg" after-kill | cmp -s - "$tmp/c" || fail "put after the takeover"
fi

section "swtpm's shared-storage handover (--migration) between two servers on one RBD image"
# As QEMU drives it between two hosts: the destination starts with
# 'incoming' (no lock yet), the source with 'release-lock-outgoing' lets go
# after the last blob, the destination takes the lock at CMD_INIT.
C="python3 $here/vtpm_ctrl.py"
# swrun NAME ARGS...: blobstore-vtpm with swtpm's command line on free ports.
swrun() {
	local name=$1 p
	shift
	p=$(free_port_pair)
	"$VTPM" socket --tpm2 --server type=tcp,port="$p" --ctrl type=tcp,port=$((p + 1)) \
		--log file="$tmp/$name.log",level=2 "$@" 2>>"$tmp/$name.err" &
	eval "${name}_port=$p ${name}_pid=$!"
	for _ in $(seq 200); do
		$C "tcp:$((p + 1))" caps >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	cat "$tmp/$name.err" >&2
	fail "$name did not start"
}
swio() { local p=${1}_port; shift; swtpm_ioctl --tcp "127.0.0.1:$((${!p} + 1))" "$@"; }
swctl() { local p=${1}_port; shift; $C "tcp:$((${!p} + 1))" "$@"; }
swdown() { swio "$1" -s >/dev/null; local p=${1}_pid; wait "${!p}" || true; }
swrun src --tpmstate backend-uri="$vimg" --flags not-need-init,startup-clear \
	--migration release-lock-outgoing
swrun dst --tpmstate backend-uri="$vimg" --migration incoming
[ "$(swctl dst lock 5)" != 0x0 ] || fail "the destination took the lock the source holds"
printf 'over the wire!!!' >"$tmp/nv.want2"
tpm2_nvwrite -T "swtpm:port=$src_port" -Q 0x1500020 -C o -i "$tmp/nv.want2"
swio src --save permanent "$tmp/p.blob" >/dev/null
swio src --save volatile "$tmp/v.blob" >/dev/null
swio src --save savestate "$tmp/s.blob" >/dev/null
# The source lets go after it has answered: wait for its log line.
for _ in $(seq 100); do
	grep -q "migration: outgoing; storage lock released" "$tmp/src.log" && break
	sleep 0.05
done
grep -q "migration: outgoing; storage lock released" "$tmp/src.log" ||
	{ tail -n 5 "$tmp/src.log" "$tmp/src.err" >&2; fail "the source kept its lock"; }
swio dst --load permanent "$tmp/p.blob" >/dev/null
swio dst --load volatile "$tmp/v.blob" >/dev/null
[ "$(swctl dst init 1)" = 0x0 ] || fail "CMD_INIT on the destination"
tpm2_nvread -T "swtpm:port=$dst_port" -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out"
cmp -s "$tmp/nv.want2" "$tmp/nv.out" || fail "the NV index did not arrive"
[ "$(swctl src lock 5)" != 0x0 ] || fail "the source took the lock back from the destination"
swdown dst
swdown src
cp "$tmp/nv.want2" "$tmp/nv.want"

# ---------------------------------------------------------------------------
section "clients killed with -9 in the middle of a put: old or new, never torn"
kimg=$(u killed "&size=4M")
bs -q format "$kimg"
head -c 300000 /dev/urandom >"$tmp/v0"
bs put "$kimg" state "$tmp/v0"
bs put "$kimg" other "$tmp/c"
cp "$tmp/v0" "$tmp/cur"
rounds=5
quick && rounds=3
for r in $(seq "$rounds"); do
	head -c 300000 /dev/urandom >"$tmp/v$r"
	bs put "$kimg" state "$tmp/v$r" 2>/dev/null &
	p=$!
	sleep "0.0$((RANDOM % 9 + 1))"
	kill -9 "$p" 2>/dev/null || true
	done_rc=0
	wait "$p" 2>/dev/null || done_rc=$?
	# What a reader sees at once is old or new, and new if the put had
	# finished.  It is not final: the dead client's last requests may still
	# wait in the OSD's socket buffer and apply after the reader looked (the
	# old state then turns new).
	bs get "$kimg" state >"$tmp/got" || fail "round $r: get after the kill"
	seen=old
	cmp -s "$tmp/got" "$tmp/v$r" && seen=new
	[ $seen = new ] || cmp -s "$tmp/got" "$tmp/cur" ||
		fail "round $r: right after the kill the entry is neither old nor new"
	[ $done_rc -ne 0 ] || [ $seen = new ] || fail "round $r: a put that finished is not read back"
	# Fencing the dead client (what an orchestrator does before it trusts a
	# crashed host's image) settles it: once the OSDs know of the blocklist
	# they refuse its requests.  It also frees the lock for the next round.
	# One listing for both fields: the lock may expire between two.
	locks killed >"$tmp/locks.json"
	id=$(lock_field id <"$tmp/locks.json")
	[ -z "$id" ] || rbdc lock rm rbd/killed "$id" "$(lock_field locker <"$tmp/locks.json")" ||
		[ -z "$(locks killed | lock_field id)" ] || fail "round $r: could not fence the dead client"
	bs get "$kimg" state >"$tmp/got" || fail "round $r: get after fencing"
	if cmp -s "$tmp/got" "$tmp/v$r"; then
		cp "$tmp/v$r" "$tmp/cur"
	else
		[ $seen = old ] || fail "round $r: the new state turned old again"
		cmp -s "$tmp/got" "$tmp/cur" || fail "round $r: after fencing the entry is neither old nor new"
	fi
	bs get "$kimg" other | cmp -s - "$tmp/c" || fail "round $r: another entry changed"
	bs check "$kimg" >/dev/null || fail "round $r: check after the kill"
done
bs put "$kimg" state "$tmp/c"
bs check "$kimg" >/dev/null

# ---------------------------------------------------------------------------
section "kill -9 of the OSD in the middle of a run of puts"
oimg=$(u osd "&size=4M&timeout=60")
bs -q format "$oimg"
vtpm_start --image "$(u vtpm "&timeout=60")" --port "$port" --flags not-need-init,startup-clear
n=20
quick && n=12
: >"$tmp/acked"
(
	for i in $(seq "$n"); do
		printf 'put %d %s' "$i" "$RANDOM" >"$tmp/p$i"
		if bs put "$oimg" "e$i" "$tmp/p$i" 2>>"$tmp/puts.err"; then
			echo "$i" >>"$tmp/acked"
		fi
	done
) &
loop=$!
for _ in $(seq 200); do [ "$(wc -l <"$tmp/acked")" -ge 4 ] && break; sleep 0.05; done
"$here/ceph_cluster.sh" kill-osd "$cluster" || fail "kill-osd"
# An NV write while the OSD is gone: answered once it is back.
printf 'during the outage' | head -c 16 >"$tmp/nv3.want"
tpm2_nvwrite -Q 0x1500020 -C o -i "$tmp/nv3.want" >"$tmp/nvw.out" 2>&1 &
nvw=$!
# With the OSD gone, an open gives up after timeout= seconds, naming the URI.
t=$(now)
expect_exit 5 bs list "$(u osd "&timeout=2")"
err_has "$(u osd "&timeout=2"): rbd_open timed out after 2 s"
less "$(since "$t")" 8 || fail "an open with the OSD down took $(since "$t") s with timeout=2"
acked_down=$(wc -l <"$tmp/acked")
t=$(now)
"$here/ceph_cluster.sh" start-osd "$cluster" || fail "start-osd"
echo "OSD back in $(since "$t") s; $acked_down puts acknowledged when it was killed"
wait "$loop" || true
wait "$nvw" || { cat "$tmp/nvw.out"; fail "the NV write during the outage failed"; }
acked=$(wc -l <"$tmp/acked")
echo "$acked of $n puts acknowledged"
[ "$acked" -gt "$acked_down" ] || { cat "$tmp/puts.err"; fail "no put completed after the OSD came back"; }
while read -r i; do
	bs get "$oimg" "e$i" | cmp -s - "$tmp/p$i" || fail "acknowledged put e$i does not read back"
done <"$tmp/acked"
bs check "$oimg" >/dev/null
vtpm_stop TERM
vtpm_start --image "$vimg" --port "$port" --flags not-need-init
tpm2_nvread -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out"
cmp -s "$tmp/nv3.want" "$tmp/nv.out" || fail "the NV write acknowledged during the outage is lost"
vtpm_stop TERM
echo "rbd: ok ($(since "$t0") s)"
