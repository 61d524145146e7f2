#!/usr/bin/env bash
# tests/integration/ceph_cluster.sh - a throwaway Ceph cluster for the RBD
# tests and benchmarks: one monitor and one bluestore OSD on a sparse file
# under DIR, pool "rbd" of size 1, no authentication, no manager, every
# address on 127.0.0.1.  It runs as whoever calls it (root or not) and
# touches nothing outside DIR.
#
#   ceph_cluster.sh start DIR      starts it; prints DIR/ceph.conf when I/O works
#   ceph_cluster.sh stop DIR       kills its daemons (SIGKILL: the data is thrown away)
#   ceph_cluster.sh kill-osd DIR   kill -9 of the OSD
#   ceph_cluster.sh start-osd DIR  starts the OSD again, returns when a write works
#
# Ports: the monitor listens on PORT and the daemons bind PORT+1..PORT+20,
# all below 32768; PORT is CEPH_PORT if set, else chosen at random among
# ranges that are free now (a start that loses a race for them retries).
# CEPH_WATCH_TIMEOUT (default 5) is osd_client_watch_timeout: how long the
# exclusive lock of a client that died stays with it before another client
# takes it over (Ceph's default is 30 s).
#
# Start-up is fast (about 2 s) because of what the research for the RBD
# backend measured: the bluestore block device's aio thread polls every
# bdev_aio_poll_ms (250 by default, and each of the ~10 device closes of
# mkfs and mount waits for it), the monitor proposes map changes every
# paxos_propose_interval (1 s), and mkfs runs an fsck unless told not to.
set -u -o pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $prog start|stop|kill-osd|start-osd DIR"
cmd=$1
mkdir -p "$2" || die "cannot create $2"
dir=$(cd "$2" && pwd -P)
conf=$dir/ceph.conf
T=10 # seconds for any one client command

for b in ceph-mon ceph-osd ceph monmaptool rados; do
	command -v "$b" >/dev/null || die "$b is not installed (Debian: ceph-mon ceph-osd ceph-common)"
done

c_ceph() { timeout -k 2 $T ceph -c "$conf" --connect-timeout 5 "$@"; }
c_rados() { timeout -k 2 $T rados -c "$conf" --client_mount_timeout 5 "$@"; }

# The pid of daemon NAME (mon.a, osd.0) if it runs from this directory.
pid_of() {
	local f=$dir/run/$1.pid p
	[ -s "$f" ] || return 1
	p=$(cat "$f")
	case $(cat "/proc/$p/comm" 2>/dev/null) in
	ceph-mon | ceph-osd) ;;
	*) return 1 ;;
	esac
	tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "-c $conf" || return 1
	echo "$p"
}

# Whether PID has exited: gone, or a zombie (the daemons' parent is
# whatever adopted them, which may reap late or never).
exited() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

# kill -9 PID and wait until it has exited.
kill_wait() {
	kill -KILL "$1" 2>/dev/null || return 0
	local i
	for i in $(seq 500); do
		exited "$1" && return 0
		sleep 0.01
	done
	die "pid $1 survived SIGKILL for 5 s"
}

# Whether TCP ports FIRST..FIRST+20 are all free on 127.0.0.1 now.
ports_free() {
	python3 - "$1" <<'PY'
import socket, sys
first = int(sys.argv[1])
held = []
try:
    for p in range(first, first + 21):
        s = socket.socket()
        s.bind(("127.0.0.1", p))
        held.append(s)
except OSError:
    sys.exit(1)
PY
}

write_conf() {
	local fsid=$1 port=$2
	cat >"$conf" <<EOF
# a throwaway test cluster made by $prog
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$port]
mon_initial_members = a
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
ms_bind_ipv6 = false
ms_bind_port_min = $((port + 1))
ms_bind_port_max = $((port + 20))
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $dir/keyring
run_dir = $dir/run
crash_dir = $dir/crash
log_file = $dir/log/\$name.log
log_to_stderr = false
err_to_stderr = false
mon_cluster_log_file = $dir/log/cluster.log
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
# the host disk may be fuller than the monitor likes
mon_data_avail_crit = 1
mon_data_avail_warn = 2

[client]
# clients of this cluster (tests): no admin sockets; a watch ping every
# second, so that a short osd_client_watch_timeout never expires a live one;
# and a new OSD map after 1 s instead of 10 s for an operation sent to an
# OSD that was killed (with a single OSD nobody reports it down, so a
# client learns of its restart only by asking)
admin_socket =
objecter_tick_interval = 1
objecter_timeout = 1

[mon]
mon_data = $dir/mon.\$id
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid

[osd]
osd_data = $dir/osd.\$id
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 4294967296
bluestore_block_db_create = false
bluestore_block_wal_create = false
bdev_enable_discard = false
bluestore_fsck_on_mkfs = false
bdev_aio_poll_ms = 20
osd_memory_target = 1073741824
osd_client_watch_timeout = ${CEPH_WATCH_TIMEOUT:-5}
EOF
}

# Polls a 4 KiB write until it works (a client with a stale map after an
# OSD restart waits objecter_timeout before asking again: keep it short).
wait_io() {
	local end=$(($(date +%s) + $1))
	head -c 4096 /dev/urandom >"$dir/run/probe"
	until c_rados --objecter_timeout 1 --objecter_tick_interval 0.2 --rados_osd_op_timeout 5 \
		-p rbd put ceph-cluster-probe "$dir/run/probe" 2>/dev/null; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

start_osd() {
	ceph-osd -i 0 -c "$conf" >>"$dir/log/osd.0.out" 2>&1 || return 1
}

stop_all() {
	local p
	for n in osd.0 mon.a; do
		if p=$(pid_of $n); then kill_wait "$p"; fi
	done
	rm -f "$dir"/run/*.pid
}

# One attempt at a start on PORT; non-zero (daemons stopped) on failure.
try_start() {
	local port=$1 fsid uuid id pool
	stop_all
	rm -rf "$dir/mon.a" "$dir/osd.0" "$dir/run" "$dir/log" "$dir/crash" "$dir/monmap" "$conf"
	mkdir -p "$dir/run" "$dir/log" "$dir/crash" "$dir/mon.a" "$dir/osd.0"
	: >"$dir/keyring"
	fsid=$(cat /proc/sys/kernel/random/uuid)
	uuid=$(cat /proc/sys/kernel/random/uuid)
	write_conf "$fsid" "$port"
	log=$dir/log/mkfs.log
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >>"$log" 2>&1 &&
		ceph-mon --mkfs -i a -c "$conf" --monmap "$dir/monmap" >>"$log" 2>&1 &&
		ceph-mon -i a -c "$conf" >>"$log" 2>&1 || return 1
	local end=$(($(date +%s) + 20))
	until c_ceph mon stat >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] && pid_of mon.a >/dev/null || return 1
		sleep 0.1
	done
	id=$(c_ceph osd new "$uuid" 2>>"$log") && [ "$id" = 0 ] || return 1
	# The pool needs only the monitor: made while the OSD's mkfs runs.
	{ c_ceph osd pool create rbd 8 8 && c_ceph osd pool application enable rbd rbd; } >>"$log" 2>&1 &
	pool=$!
	ceph-osd -i 0 -c "$conf" --mkfs --osd-uuid "$uuid" >>"$log" 2>&1 && start_osd || {
		wait "$pool"
		return 1
	}
	wait "$pool" && wait_io 60
}

case $cmd in
start)
	t0=$(date +%s.%N)
	ok=
	for attempt in 1 2 3 4 5; do
		port=${CEPH_PORT:-}
		if [ -z "$port" ]; then
			for _ in $(seq 50); do
				port=$((10000 + RANDOM % 22000))
				ports_free "$port" && break
				port=
			done
			[ -n "$port" ] || die "no 21 free ports found below 32768"
		fi
		if try_start "$port"; then ok=1; break; fi
		echo "$prog: start on port $port failed (attempt $attempt), see $dir/log" >&2
		[ -z "${CEPH_PORT:-}" ] || break
	done
	if [ -z "$ok" ]; then
		tail -n 20 "$dir/log/mkfs.log" >&2 2>/dev/null
		stop_all
		die "the cluster did not start"
	fi
	awk -v p="$prog" -v a="$t0" -v b="$(date +%s.%N)" -v port="$port" \
		'BEGIN { printf "%s: cluster up in %.1f s (monitor 127.0.0.1:%s)\n", p, b - a, port }' >&2
	echo "$conf"
	;;
stop) stop_all ;;
kill-osd)
	p=$(pid_of osd.0) || die "osd.0 is not running"
	kill_wait "$p"
	;;
start-osd)
	pid_of mon.a >/dev/null || die "the monitor is not running"
	if p=$(pid_of osd.0); then kill_wait "$p"; fi
	start_osd || die "ceph-osd did not start (see $dir/log/osd.0.log)"
	wait_io 60 || die "no write worked within 60 s after the OSD started"
	;;
*) die "unknown command '$cmd'" ;;
esac
