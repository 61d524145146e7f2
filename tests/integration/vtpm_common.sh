# tests/integration/vtpm_common.sh - shared by the test_vtpm_*.sh tests
# (sourced, not run): a scratch directory, and starting and stopping
# blobstore-vtpm.  Every server started here is killed on exit.
set -euo pipefail
: "${BUILD_DIR:?}" "${BLOBSTORE:?}"
VTPM=$BUILD_DIR/blobstore-vtpm
[ -x "$VTPM" ] || { echo "FAIL: $VTPM is missing"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bs-vtpm.XXXXXX")
vtpm_pid=
vtpm_cleanup() {
	if [ -n "$vtpm_pid" ]; then
		kill -9 "$vtpm_pid" 2>/dev/null || true
		wait "$vtpm_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap vtpm_cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -f "$tmp/vtpm.log" ] && tail -n 15 "$tmp/vtpm.log" | sed 's/^/    log: /' >&2
	exit 1
}
quick() { [ -n "${BS_TEST_QUICK:-}" ]; }

# shellcheck source=ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# vtpm_start ARGS...: starts the server (log in $tmp/vtpm.log, pid file
# $tmp/vtpm.pid) and waits until it listens.
vtpm_start() {
	rm -f "$tmp/vtpm.pid"
	"$VTPM" --pid-file "$tmp/vtpm.pid" --log "$tmp/vtpm.log" "$@" 2>>"$tmp/vtpm.err" &
	vtpm_pid=$!
	local i
	for i in $(seq 1 100); do
		[ -s "$tmp/vtpm.pid" ] && return 0
		kill -0 "$vtpm_pid" 2>/dev/null || { cat "$tmp/vtpm.err" >&2; fail "server exited at start"; }
		sleep 0.05
	done
	fail "server not ready after 5 s"
}

# vtpm_stop [SIGNAL]: stops the server (default SIGTERM: volatile state
# saved) and waits for it.  Stopped by SIGTERM, it must exit with status 0
# (under ASan that includes no leak report).
vtpm_stop() {
	local sig=${1:-TERM} rc=0
	[ -n "$vtpm_pid" ] || return 0
	kill -"$sig" "$vtpm_pid" 2>/dev/null || true
	wait "$vtpm_pid" 2>/dev/null || rc=$?
	vtpm_pid=
	if [ "$sig" = TERM ] && [ "$rc" -ne 0 ]; then
		sed 's/^/    stderr: /' "$tmp/vtpm.err" >&2
		fail "server exited with status $rc after SIGTERM"
	fi
	return 0
}
