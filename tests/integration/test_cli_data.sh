#!/usr/bin/env bash
# tests/integration/test_cli_data.sh - data round trips through the tool:
# sizes around slot and page boundaries up to several MiB, both slot checks,
# replacing and growing; every value reads back the same after reopening and
# after compaction, and check passes throughout.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

img=$tmp/data.img
bs format "$img" >/dev/null

sizes="0 1 4095 4096 $((1048576 + 3)) $((5 * 1048576))"
quick && sizes="0 1 4095 4096 $((1048576 + 3)) $((3 * 1048576))"

# verify_all - every value written so far reads back unchanged.
verify_all() {
	for s in $sizes; do
		for check in crc32c sha256; do
			bs get "$img" blob --name "$check-$s" -o "$tmp/out.bin" --force ||
				fail "get $check-$s ($1)"
			cmp -s "$tmp/in-$check-$s" "$tmp/out.bin" || fail "$check-$s reads back other data ($1)"
		done
	done
}

# Create entries of every size with both checks, from files and from stdin.
for s in $sizes; do
	for check in crc32c sha256; do
		head -c "$s" /dev/urandom >"$tmp/in-$check-$s"
		if [ "$check" = sha256 ]; then
			bs put "$img" blob --name "$check-$s" --check sha256 - <"$tmp/in-$check-$s"
		else
			bs put "$img" blob --name "$check-$s" "$tmp/in-$check-$s"
		fi
	done
done
verify_all "after put"
checked "$img"

# Replace each value: smaller (in place), then larger (the entry grows).
for s in $sizes; do
	for check in crc32c sha256; do
		head -c $((s / 2)) /dev/urandom >"$tmp/in-$check-$s"
		bs put "$img" blob --name "$check-$s" "$tmp/in-$check-$s"
	done
done
verify_all "after replacing with less"
for s in $sizes; do
	for check in crc32c sha256; do
		head -c $((s + 4097)) /dev/urandom >"$tmp/in-$check-$s"
		bs put "$img" blob --name "$check-$s" "$tmp/in-$check-$s"
	done
done
verify_all "after growing"
bs list --json "$img" >"$tmp/list.json"
json "$tmp/list.json"
[ "$(jq_py "$tmp/list.json" 'sorted(set(e["check"] for e in d["entries"]))')" = "['crc32c', 'sha256']" ] ||
	fail "growing changed an entry's check"
checked "$img"

before=$(stat -c %s "$img")
bs compact -q "$img"
[ "$(stat -c %s "$img")" -lt "$before" ] || fail "compact reclaimed nothing after growing"
verify_all "after compact"
checked "$img"

echo "cli data: ok"
