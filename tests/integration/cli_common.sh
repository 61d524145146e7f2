# tests/integration/cli_common.sh - shared setup of the test_cli_*.sh tests
# (sourced, not run): a scratch directory removed on exit, and assertions.
set -euo pipefail
: "${BLOBSTORE:?}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bs-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
bs() { "$BLOBSTORE" "$@"; }
quick() { [ -n "${BS_TEST_QUICK:-}" ]; }

# expect_exit STATUS COMMAND... - runs COMMAND, which must exit with STATUS;
# its output is left in $tmp/out and $tmp/err.
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		sed 's/^/    stderr: /' "$tmp/err" >&2
		fail "'$*' exited with $rc, expected $want"
	fi
}

# err_has TEXT - the last expect_exit's standard error contains TEXT.
err_has() {
	grep -qF -- "$1" "$tmp/err" || { cat "$tmp/err" >&2; fail "stderr lacks '$1'"; }
}

# json FILE - FILE holds one valid JSON document.
json() {
	python3 -m json.tool "$1" >/dev/null || { cat "$1" >&2; fail "$1 is not valid JSON"; }
}

# jq_py FILE EXPR - evaluates the Python expression EXPR over the JSON in
# FILE (bound to d) and prints the result.
jq_py() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# checked IMAGE - 'check' and 'check --schema' pass on IMAGE.
checked() {
	bs check "$1" >"$tmp/check.out" || { cat "$tmp/check.out" >&2; fail "check fails on $1"; }
	bs check --schema "$1" >"$tmp/check.out" ||
		{ cat "$tmp/check.out" >&2; fail "check --schema fails on $1"; }
}
