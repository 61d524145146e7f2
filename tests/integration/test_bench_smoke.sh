#!/usr/bin/env bash
# tests/integration/test_bench_smoke.sh - `make bench BENCH_QUICK=1` runs
# every benchmark (open, durable write, RSS, crypto, vTPM, backends) on small
# sizes and leaves the CSV and the four PNG plots docs/PERFORMANCE.md
# describes.  The numbers themselves are not checked: a smoke run on a busy
# machine proves nothing about speed.
#
# make bench builds the release variant, so this runs only for the release
# build directory (build/) and skips elsewhere (the ASan pass); it skips
# when gnuplot is missing (tools/deps.sh bench installs it).
set -euo pipefail
: "${SRCDIR:?}" "${BUILD_DIR:?}"

case $BUILD_DIR in
*/build) ;;
*)
	echo "skip: make bench is checked with the release build only (BUILD_DIR=$BUILD_DIR)"
	exit 0
	;;
esac
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "skip: gnuplot is not installed (apt-get install gnuplot-nox)"
	exit 0
fi

# On the build directory's filesystem (a disk, unlike a tmpfs /tmp), apart
# from the real run's build/bench.
tmp=$(mktemp -d "$BUILD_DIR/bench-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

start=$(date +%s)
if ! make -s -C "$SRCDIR" bench BENCH_QUICK=1 BENCH_DIR="$tmp/data" BENCH_OUT="$tmp/out" \
	>"$tmp/log" 2>&1; then
	cat "$tmp/log"
	fail "make bench BENCH_QUICK=1 failed"
fi
elapsed=$(($(date +%s) - start))

csv=$tmp/out/results.csv
[ -s "$csv" ] || fail "no $csv"
[ "$(head -n1 "$csv")" = "bench,case,metric,value,unit" ] || fail "CSV header: $(head -n1 "$csv")"
for part in open write rss crypt; do
	grep -q "^$part," "$csv" || fail "no '$part' rows in the CSV"
done
grep -q '^open,1000 entries,ratio_ours_ro_vs_tasn1_per_entry,' "$csv" ||
	fail "no open ratio against libtasn1"
grep -q '^open,1000 entries,dir_of_files,' "$csv" || fail "no directory-of-files timing"
grep -q '^crypt,64 KiB,ratio_encrypted_get_vs_raw_aes256gcm_decrypt,' "$csv" ||
	fail "no encrypted get ratio"
if command -v swtpm >/dev/null 2>&1; then
	grep -q '^vtpm,nv_write 32 octets,swtpm_dir,' "$csv" || fail "no swtpm NV write rate"
	grep -q '^vtpm,nv_write 32 octets,blobstore_vtpm,' "$csv" || fail "no blobstore-vtpm rate"
fi
if command -v ceph-osd >/dev/null 2>&1 && command -v ceph-mon >/dev/null 2>&1; then
	grep -q '^rbd,replace 1200 octets,paired_ratio_blobstore_vs_raw,' "$csv" ||
		fail "no RBD replace ratio against raw librbd"
	grep -q '^rbd,open vtpm image,blobstore_rw_us,' "$csv" || fail "no RBD open time"
	grep -q '^vtpm,nv_write 32 octets,blobstore_vtpm_rbd,' "$csv" || fail "no vTPM rate on RBD"
	[ ! -e "$tmp/data/ceph" ] || fail "make bench left its Ceph cluster's files"
fi
# every value is a number
awk -F, 'NR > 1 && $4 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ { print; bad = 1 } END { exit bad }' \
	"$csv" || fail "non-numeric values in the CSV"

plots="open write crypt"
if command -v swtpm >/dev/null 2>&1; then
	plots="$plots vtpm"
fi
for plot in $plots; do
	png=$tmp/out/$plot.png
	[ -s "$png" ] || fail "no $plot.png"
	[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
		fail "$plot.png is not a PNG"
done
grep -q 'goal' "$tmp/log" || fail "the table does not state the goals"
echo "ok: make bench BENCH_QUICK=1 in ${elapsed}s: $(($(wc -l <"$csv") - 1)) CSV rows, plots: $plots"
