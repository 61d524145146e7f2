#!/usr/bin/env bash
# tests/integration/test_cli_many.sh - many entries written by separate
# blobstore calls: counts, deletion, and every value read back after
# reopening and after compaction; check passes throughout.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

# A thousand entries, one put each (without fsync: the loop measures the
# tool, not the disk; each call is a process, which bounds the count).
# Every third is deleted, then every remaining value is read back after
# reopening and after compaction.
many=$tmp/many.img
n=1000
quick && n=200
bs format "$many" >/dev/null
for i in $(seq 1 "$n"); do
	printf 'value %d' "$i" | bs --no-sync put "$many" dev --name "n$i" --attr "index=int:$i"
done
for i in $(seq 3 3 "$n"); do
	bs --no-sync rm "$many" dev --name "n$i"
done
bs info --json "$many" >"$tmp/info.json"
json "$tmp/info.json"
[ "$(jq_py "$tmp/info.json" 'd["entry_count"]')" = $((n - n / 3)) ] || fail "entry count after the loop"
bs list --json "$many" >"$tmp/list.json"
json "$tmp/list.json"
[ "$(jq_py "$tmp/list.json" 'len(d["entries"])')" = $((n - n / 3)) ] || fail "list count after the loop"

verify_many() {
	for i in $(seq 1 "$n"); do
		if [ $((i % 3)) -eq 0 ]; then
			continue
		fi
		[ "$(bs get "$many" dev --name "n$i")" = "value $i" ] || fail "n$i reads back wrong ($1)"
	done
	# Deleted entries stay deleted (a sample: each one costs a process).
	for i in 3 $((n / 2 / 3 * 3)) $((n / 3 * 3)); do
		rc=0
		bs get "$many" dev --name "n$i" >/dev/null 2>&1 || rc=$?
		[ "$rc" -eq 2 ] || fail "deleted n$i: get exited $rc ($1)"
	done
}
verify_many "after reopen"
checked "$many"
bs compact "$many" >"$tmp/out"
grep -q "reclaimed [1-9][0-9]* octets" "$tmp/out" || fail "compact of the many-entry image"
verify_many "after compact"
bs attr "$many" dev --name n1 | grep -F "index = INTEGER 1" >/dev/null || fail "attributes after compact"
checked "$many"
echo "cli many entries: ok"
