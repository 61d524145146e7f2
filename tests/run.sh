#!/usr/bin/env bash
# tests/run.sh TITLE TEST... - runs each test (a program or a .sh script),
# keeps its output in $BUILD_DIR/test-logs, shows the output of failures, and
# ends with the line "N passed, N failed".  Exit status 1 when any failed.
set -u
title=$1; shift
logdir=${BUILD_DIR:-build}/test-logs
mkdir -p "$logdir"
pass=0 fail=0 failed=()
export TMPDIR=${TMPDIR:-/tmp}
for t in "$@"; do
	name=$(basename "$t"); name=${name%.sh}
	log=$logdir/$name.log
	start=$(date +%s)
	if [ "${t%.sh}" != "$t" ]; then bash "$t" >"$log" 2>&1; else "$t" >"$log" 2>&1; fi
	rc=$?
	secs=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); printf 'PASS  %-40s %3ss\n' "$name" "$secs"
	else
		fail=$((fail + 1)); failed+=("$name")
		printf 'FAIL  %-40s %3ss (exit %d)\n' "$name" "$secs" "$rc"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
done
echo "== $title"
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
