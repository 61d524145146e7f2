#!/usr/bin/env bash
# test_fuzz_smoke.sh - the fuzz targets build, replay every input that once
# crashed them (fuzz/regressions/<target>/), and survive a short fuzz run.
# Only in the main build (the targets carry their own ASan/UBSan) and only
# where clang with libFuzzer is available; otherwise it reports a skip.
set -u
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SRCDIR/build}
case "$BUILD_DIR" in
*/build) ;;
*) echo "skip: fuzz smoke runs only in the main build, not in $BUILD_DIR"; exit 0 ;;
esac
if ! command -v clang >/dev/null 2>&1; then
	echo "skip: clang not installed"
	exit 0
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' |
	clang -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1; then
	echo "skip: clang cannot link libFuzzer (libclang-rt-dev missing?)"
	exit 0
fi
# Not the asan build's flags: fuzz.mk compiles its own instrumented copy.
unset MAKEFLAGS MFLAGS
make -C "$SRCDIR" --no-print-directory fuzz-smoke FUZZ_SECONDS=${FUZZ_SECONDS:-8} || exit 1
# The regressions once more, each file on its own, so a failure names it.
rc=0
for dir in "$SRCDIR"/fuzz/regressions/*/; do
	[ -d "$dir" ] || continue
	target=$(basename "$dir")
	bin=$SRCDIR/build-fuzz/$target
	[ -x "$bin" ] || { echo "FAIL: no fuzz target $target for $dir"; rc=1; continue; }
	for f in "$dir"*; do
		[ -f "$f" ] || continue
		if "$bin" "$f" >/dev/null 2>&1; then
			echo "ok: $target $(basename "$f")"
		else
			echo "FAIL: $target $(basename "$f")"
			"$bin" "$f" 2>&1 | tail -n 30
			rc=1
		fi
	done
done
exit $rc
