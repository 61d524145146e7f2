#!/bin/bash
# test_nbd.sh - the tool on storage named by URI: NBD exports of nbdkit
# (memory and file plugins on UNIX sockets), a server that goes away, an
# export that cannot flush, fixed-size files through blk://, and a loop
# device when this host allows one.
. "$(dirname "$0")/cli_common.sh"

command -v nbdkit >/dev/null || { echo "SKIP: nbdkit not installed"; exit 0; }

pids=()
loopdev=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	[ -z "$loopdev" ] || losetup -d "$loopdev" || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# serve NAME ARGS... - starts nbdkit on $tmp/NAME.sock; sets $pid.
serve() {
	local sock=$tmp/$1.sock
	shift
	nbdkit --unix "$sock" --foreground --exit-with-parent "$@" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.02; done
	fail "nbdkit $* did not start"
}

head -c 3000 /dev/urandom >"$tmp/a"
head -c 70000 /dev/urandom >"$tmp/b"
printf 'small' >"$tmp/c"

# round_trip URI - format, put, get, rm, compact, check on URI.
round_trip() {
	local u=$1
	bs -q format "$u"
	bs put "$u" vtpm/permall "$tmp/a"
	bs put "$u" vtpm/volatile "$tmp/b"
	bs put "$u" cfg "$tmp/c"
	bs put "$u" vtpm/permall "$tmp/c" # in place
	bs put "$u" cfg "$tmp/b"          # grows: rewritten
	bs rm "$u" vtpm/volatile
	bs compact "$u" >"$tmp/compact.out"
	grep -E "reclaimed [1-9][0-9]* octets \(directory" "$tmp/compact.out" >/dev/null ||
		{ cat "$tmp/compact.out"; fail "$u: compact reports nothing reclaimed"; }
	bs check "$u" >/dev/null
	bs get "$u" vtpm/permall >"$tmp/o" && cmp -s "$tmp/o" "$tmp/c" || fail "$u: permall differs"
	bs get "$u" cfg >"$tmp/o" && cmp -s "$tmp/o" "$tmp/b" || fail "$u: cfg differs"
	expect_exit 2 bs get "$u" vtpm/volatile
	bs info "$u" >"$tmp/info"
	grep -q "free holes: *0 " "$tmp/info" || { cat "$tmp/info"; fail "$u: not compact"; }
	# format refuses an existing image.
	expect_exit 8 bs format "$u"
	err_has "already exists"
}

serve mem memory size=64M
round_trip "nbd+unix:///?socket=$tmp/mem.sock"

truncate -s 16M "$tmp/export.img"
serve file file "$tmp/export.img"
round_trip "nbd+unix:///?socket=$tmp/file.sock"
# The data is really in the served file.
grep -qa small "$tmp/export.img" || fail "file plugin: data not in the export file"

# The server goes away: a clear message naming the URI, non-zero exit.
kill "$pid"
wait "$pid" 2>/dev/null || true
expect_exit 5 bs list "nbd+unix:///?socket=$tmp/file.sock"
err_has "nbd+unix:///?socket=$tmp/file.sock"
err_has "connect failed"

# ...and mid-operation: nbdkit's delay filter holds a write while the
# server is killed underneath it.
serve slow --filter=delay memory size=64M wdelay=1
u="nbd+unix:///?socket=$tmp/slow.sock"
bs -q format "$u"
rc=0
{ bs put "$u" t/x "$tmp/a" >"$tmp/out" 2>"$tmp/err" || rc=$?; echo "$rc" >"$tmp/rc"; } &
putpid=$!
sleep 0.5
kill "$pid"
wait "$putpid"
[ "$(cat "$tmp/rc")" -eq 5 ] || { cat "$tmp/err"; fail "put during server death exited $(cat "$tmp/rc")"; }
err_has "$u"

# An export that cannot flush is refused for writing, unless --no-sync.
truncate -s 1M "$tmp/noflush.img"
f=$tmp/noflush.img
serve noflush eval get_size='echo 1048576' \
	pread="dd if=$f skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none" \
	pwrite="dd of=$f seek=\$4 oflag=seek_bytes conv=notrunc status=none"
u="nbd+unix:///?socket=$tmp/noflush.sock"
expect_exit 6 bs format "$u"
err_has "cannot flush"
bs -q --no-sync format "$u"

# Unknown schemes are refused, not taken for relative paths.
expect_exit 8 bs list "s3://bucket/vm.img"
err_has "unknown URI scheme"

# A regular file played as a fixed-size device: no growth past its size.
u="blk://$tmp/fixed.img?size=64k"
bs -q format "$u"
[ "$(stat -c %s "$tmp/fixed.img")" -eq 65536 ] || fail "fixed file not sized"
bs put "$u" a "$tmp/a"
expect_exit 5 bs put "$u" big "$tmp/b"
err_has "fixed-size storage"
bs get "$u" a | cmp -s - "$tmp/a" || fail "fixed: data differs"
[ "$(stat -c %s "$tmp/fixed.img")" -eq 65536 ] || fail "fixed file grew"

# A loop device, when this host lets us attach one.
if [ "$(id -u)" -eq 0 ] && truncate -s 4M "$tmp/loop.img" &&
	loopdev=$(losetup -f --show "$tmp/loop.img" 2>/dev/null); then
	bs -q format "$loopdev"
	bs put "$loopdev" vtpm/permall "$tmp/a"
	bs put "blk://$loopdev?direct=1" cfg "$tmp/b"
	bs rm "$loopdev" vtpm/permall
	bs -q compact "$loopdev"
	bs check "$loopdev" >/dev/null
	bs get "$loopdev" cfg | cmp -s - "$tmp/b" || fail "loop: data differs"
	# A second writer on this host is refused while the first holds it
	# (O_EXCL on the device node).
	python3 - "$loopdev" <<'EOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_EXCL)
time.sleep(3)
EOF
	holder=$!
	pids+=("$holder")
	sleep 0.5
	expect_exit 4 bs put "$loopdev" x "$tmp/c"
	err_has "in use"
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	bs put "$loopdev" x "$tmp/c"
else
	echo "note: loop device test skipped (needs root and a working 'losetup -f --show')"
fi
echo "ok"
