#!/bin/bash
# test_cli_readers.sh - 'get' and 'check' while another process rewrites
# the entry (it grows), deletes and re-creates it and compacts the image, on
# a file and on fixed-size storage (blk://): every get prints one of the
# values written, every check passes.  A read-only command holds no lock;
# when the library says an entry moved under it (BS_ESTALE) it reads again
# through a new open instead of reporting damage or failing.  The window
# between an open and its read is short, so this is the end-to-end view;
# test_concurrency (readers that keep their handles) catches the race.
. "$(dirname "$0")/cli_common.sh"

rounds=40
quick && rounds=15
for i in $(seq 0 9); do
	# Values of different sizes, so that a put grows the entry.
	python3 -c "import sys; sys.stdout.write(('value %d;' % $i) * (40 + 300 * $i))" >"$tmp/v$i"
done

run() { # IMAGE-URI
	local u=$1 pid i out
	bs -q format "$u"
	bs put "$u" state -n s "$tmp/v0"
	bs put "$u" other -n o "$tmp/v1"
	(
		while :; do
			for i in $(seq 1 9); do
				bs put "$u" state -n s "$tmp/v$i" || exit 1
				bs put "$u" other -n o "$tmp/v$((9 - i))" || exit 1
				if [ $((i % 3)) = 0 ]; then
					bs rm "$u" state -n s || exit 1
					bs put "$u" state -n s "$tmp/v$i" || exit 1
					bs -q compact "$u" || exit 1
				fi
			done
		done
	) >"$tmp/writer.log" 2>&1 &
	pid=$!
	for _ in $(seq "$rounds"); do
		rc=0
		bs get "$u" state -n s >"$tmp/got" 2>"$tmp/get.err" || rc=$?
		# Between a delete and the next put the entry is absent (exit 2).
		if [ "$rc" = 2 ] && grep -q "no such entry" "$tmp/get.err"; then
			continue
		fi
		[ "$rc" = 0 ] || { cat "$tmp/get.err" >&2; kill "$pid"; fail "$u: get exited $rc"; }
		ok=
		for i in $(seq 0 9); do cmp -s "$tmp/got" "$tmp/v$i" && ok=1 && break; done
		[ -n "$ok" ] || { kill "$pid"; fail "$u: get printed a value never written"; }
		rc=0
		bs check "$u" >"$tmp/check.out" 2>&1 || rc=$?
		[ "$rc" = 0 ] || { cat "$tmp/check.out" >&2; kill "$pid"; fail "$u: check exited $rc"; }
	done
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/writer.log" >&2; fail "$u: the writer failed"; }
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	bs check "$u" >/dev/null
}

run "$tmp/img"
truncate -s 4M "$tmp/fixed"
run "blk://$tmp/fixed?size=4M"
echo "ok"
