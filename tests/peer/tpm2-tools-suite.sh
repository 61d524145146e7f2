#!/usr/bin/env bash
# tests/peer/tpm2-tools-suite.sh SIM [TEST...] - tpm2-tools' own integration
# suite (test/integration/tests/*.sh of a tpm2-tools 5.4 source tree) against
# a swtpm-compatible TPM binary SIM (swtpm, or build/blobstore-vtpm), as the
# suite's `make check` runs it: each test under dbus-run-session, through
# tpm2-abrmd (TPM2_ABRMD=tpm2-abrmd), the simulator started by the suite's
# own helpers.sh exactly as it starts swtpm:
#   $TPM2_SIM socket --tpm2 --server port=P --ctrl type=tcp,port=P+1
#             --seccomp action=none --flags not-need-init --tpmstate dir=$PWD
# The installed Debian tpm2-tools binaries are tested (no build).  Prints
# one line per test and the counts.
#
# env: TPM2_TOOLS_SRC  the tpm2-tools 5.4 source tree (required: it is not
#                      a Debian package; `make vtpm-peer-suite` documents it)
#      OUT             results directory (default /tmp/tpm2-suite.NAME)
#      JOBS            tests in parallel (default 2)
#      BASEPORT        first port (default 2421): test i uses BASEPORT+2i, +1
# Needs: tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus python3-yaml xxd
#        openssl bc iproute2 libtss2-dev pkg-config.
# helpers.sh finds the simulator with `ss -lntp4 | grep $TPM2_SIM`, so
# TPM2_SIM must be a bare name ending in "swtpm" that is the process's name:
# SIM is linked as "swtpm" into a private PATH directory.
set -u
SIM=$(readlink -f "$(command -v "${1:?usage: tpm2-tools-suite.sh SIM [TEST...]}")") ||
	{ echo "no such binary: $1"; exit 2; }
shift
SRC=${TPM2_TOOLS_SRC:?set TPM2_TOOLS_SRC to a tpm2-tools 5.4 source tree}
[ -d "$SRC/test/integration/tests" ] || { echo "$SRC has no test/integration/tests"; exit 2; }
OUT=${OUT:-/tmp/tpm2-suite.$(basename "$SIM")}
JOBS=${JOBS:-2}
BASEPORT=${BASEPORT:-2421}
for t in tpm2 tpm2-abrmd dbus-run-session ss python3 xxd bc; do
	command -v $t >/dev/null || { echo "missing $t"; exit 2; }
done
python3 -c 'import yaml' 2>/dev/null || { echo "missing python3-yaml"; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/logs" "$OUT/tmp"
ln -s "$SIM" "$OUT/bin/swtpm"
if [ $# -gt 0 ]; then
	tests=("$@")
else
	mapfile -t tests < <(cd "$SRC/test/integration/tests" && ls ./*.sh | sed 's|^\./||; s/\.sh$//')
fi
printf '%s\n' "${tests[@]}" | awk '{print NR - 1, $0}' >"$OUT/list"

run_one() {
	local i=$1 name=$2 port=$((BASEPORT + 2 * $1)) rc t0
	t0=$(date +%s.%N)
	(
		cd "$SRC/test/integration/tests" || exit 2
		export TPM2_SIM=swtpm TPM2_SIMPORT=$port PYTHON=python3 TPM2_ABRMD=tpm2-abrmd
		export PATH="$OUT/bin:$SRC/test/integration:$PATH"
		export TPM2_TOOLS_TEST_FIXTURES=$SRC/test/integration/fixtures
		export abs_srcdir=$SRC abs_builddir=$SRC srcdir=$SRC
		export TPM2TOOLS_TEST_PERSISTENT=false TMPDIR=$OUT/tmp
		exec timeout -k 5 300 dbus-run-session bash -- "./$name.sh"
	) >"$OUT/logs/$name.log" 2>&1 </dev/null
	rc=$?
	case $rc in 0) r=PASS ;; 77) r=SKIP ;; 124 | 137) r=TIMEOUT ;; *) r=FAIL ;; esac
	printf '%s %s %s %.1f\n' "$r" "$name" "$rc" "$(echo "$(date +%s.%N) - $t0" | bc)" | tee -a "$OUT/results"
}
export -f run_one
export OUT SRC BASEPORT
start=$(date +%s)
: >"$OUT/results"
xargs -P "$JOBS" -L 1 bash -c 'run_one "$0" "$1"' <"$OUT/list" >/dev/null
end=$(date +%s)
# A test killed by its timeout, or one that failed early, may leave its
# simulator behind (argv[0] is "swtpm": found by its state directory).
for p in $(pgrep -f -- "--tpmstate dir=$OUT/tmp/"); do kill -9 "$p" 2>/dev/null; done
sort -k2 "$OUT/results" >"$OUT/results.sorted"
pass=$(grep -c '^PASS' "$OUT/results")
fail=$(grep -c -E '^(FAIL|TIMEOUT)' "$OUT/results")
skip=$(grep -c '^SKIP' "$OUT/results")
echo "simulator: $SIM"
echo "suite: $SRC test/integration/tests, ${#tests[@]} tests, through tpm2-abrmd, $JOBS at a time"
echo "PASS $pass  FAIL $fail  SKIP $skip  wall $((end - start)) s"
grep -E '^(FAIL|TIMEOUT|SKIP)' "$OUT/results.sorted" | sed 's/^/  /'
echo "logs: $OUT/logs/"
[ "$fail" -eq 0 ]
