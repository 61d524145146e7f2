#!/bin/sh
# bench/plot.sh CSV OUTDIR - draws the benchmark plots from the CSV that
# make bench writes (bench,case,metric,value,unit rows) as PNGs in OUTDIR:
#   open.png    open and list: time per entry against the entry count
#   write.png   durable replace: each method's time over the limit's
#   crypt.png   put/get throughput over the raw primitive's
#   vtpm.png    TPM NV writes per second through each server, and the disk's
#               flush limit (the ceiling of any durable server)
# A part missing from the CSV (BENCH_ARGS picked others) gets no plot.
set -eu
csv=$1
out=$2
command -v gnuplot >/dev/null 2>&1 || {
	echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox); no plots" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
term='set terminal pngcairo size 1000,620 font "DejaVu Sans,11" noenhanced'

# value of METRIC for every case of BENCH, one "case<TAB>value" a line
pick() {
	awk -F, -v b="$1" -v m="$2" '$1 == b && $3 == m { print $2 "\t" $4 }' "$csv"
}

# ---- open: ns per entry against N (log-log) ------------------------------
awk -F, '$1 == "open" && $3 ~ /_ns_per_entry$/ && $2 ~ / entries$/ {
	n = $2 + 0; m = $3; sub(/_ns_per_entry$/, "", m); v[n, m] = $4; ns[n] = 1
}
END {
	split("ours_ro ours_rw tasn1_per_entry tasn1_whole_image dir_of_files", ms, " ")
	for (n in ns) {
		line = n
		for (i = 1; i <= 5; i++)
			line = line "\t" ((n, ms[i]) in v ? v[n, ms[i]] : "NaN")
		print line
	}
}' "$csv" | sort -n >"$tmp/open.dat"
if [ -s "$tmp/open.dat" ]; then
	gnuplot <<GP
$term
set output "$out/open.png"
set title "Open and list an image of N small entries: time per entry (lower is better)"
set xlabel "entries in the image (N)"
set ylabel "time per entry (ns, log scale)"
set logscale xy
set xrange [500:2000000]
set format x "%.0s%c"
set grid
set key outside below vertical maxrows 5 width -8
set terminal pngcairo size 1000,760 font "DejaVu Sans,11" noenhanced
set datafile missing "NaN"
plot "$tmp/open.dat" using 1:2 with linespoints lw 2 title "blobstore: bs_open read-only + list", \
     "" using 1:3 with linespoints lw 2 title "blobstore: bs_open read-write + list", \
     "" using 1:4 with linespoints lw 2 title "libtasn1, one decode per entry", \
     "" using 1:5 with linespoints lw 2 title "libtasn1, whole image in one call (super-linear; only to 10k)", \
     "" using 1:6 with linespoints lw 2 title "directory of one file per blob (swtpm dir): readdir + open/read each"
GP
fi

# ---- durable replace: ratio to pwrite + fdatasync ------------------------
awk -F, '$1 == "write" {
	s = $2 + 0; v[s, $3] = $4; ss[s] = 1
}
END {
	for (s in ss) {
		l = v[s, "limit_pwrite_fdatasync"]
		if (l <= 0) continue
		lab = s + 0 >= 1048576 ? (s / 1048576) " MiB" : (s / 1024) " KiB"
		print s "\t\"" lab "\"\t" v[s, "ours_bs_entry_write"] / l "\t" \
		      v[s, "tmp_fsync_rename_dirfsync"] / l "\t" v[s, "tmp_rename_nosync"] / l
	}
}' "$csv" | sort -n | cut -f2- >"$tmp/write.dat"
if [ -s "$tmp/write.dat" ]; then
	gnuplot <<GP
$term
set output "$out/write.png"
set title "Durable replace of one blob: time relative to one pwrite + fdatasync (the limit = 1)"
set xlabel "blob size"
set ylabel "time / limit's time (lower is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key outside below vertical maxrows 5 width -8
set terminal pngcairo size 1000,760 font "DejaVu Sans,11" noenhanced
plot "$tmp/write.dat" using 2:xtic(1) title "blobstore bs_entry_write (durable)", \
     "" using 3 title "temp file + fsync + rename + dir fsync (swtpm with fsync)", \
     "" using 4 title "temp file + rename, no sync (swtpm default; NOT durable)", \
     1 with lines lw 2 dt 2 lc rgb "black" title "the limit (1.0)", \
     1.15 with lines lw 1 dt 3 lc rgb "red" title "goal for blobstore (1.15)"
GP
fi

# ---- crypt: library throughput over the raw primitive's ------------------
awk -F, '$1 == "crypt" && $3 ~ /^ratio_/ {
	m = $3; sub(/^ratio_/, "", m); sub(/_vs_.*/, "", m)
	gsub(/_/, " ", m); print "\"" m "\"\t" $4
}' "$csv" >"$tmp/crypt.dat"
if [ -s "$tmp/crypt.dat" ]; then
	gnuplot <<GP
$term
set output "$out/crypt.png"
set title "64 KiB put and get: library throughput / raw primitive's on the same buffers"
set xlabel "operation (encrypted: vs raw EVP AES-256-GCM; sha256: vs raw EVP SHA-256; crc32c: vs raw CRC-32C)"
set ylabel "throughput ratio (higher is better; 1 = the primitive alone)"
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:1.2]
set grid ytics
set key top right
plot "$tmp/crypt.dat" using 0:2:xtic(1) with boxes notitle, \
     "" using 0:(\$2 + 0.04):(sprintf("%.2f", \$2)) with labels notitle, \
     0.7 with lines lw 2 dt 2 lc rgb "red" title "goal for encrypted put and get (0.70)"
GP
fi

# ---- vtpm: NV writes per second ------------------------------------------
pick vtpm swtpm_dir >"$tmp/v1"
if [ -s "$tmp/v1" ]; then
	{
		printf '"swtpm 0.7.1 dir\\n(no fsync: not durable)"\t%s\n' "$(cut -f2 "$tmp/v1")"
		pick vtpm blobstore_vtpm | awk -F'\t' '{ print "\"blobstore-vtpm\\n(durable)\"\t" $2 }'
		pick vtpm blobstore_vtpm_nosync |
			awk -F'\t' '{ print "\"blobstore-vtpm --no-sync\\n(not durable)\"\t" $2 }'
		pick vtpm flush_limit_4k |
			awk -F'\t' '{ print "\"flush limit: pwrite +\\nfdatasync, no TPM\"\t" $2 }'
	} >"$tmp/vtpm.dat"
	gnuplot <<GP
$term
set output "$out/vtpm.png"
set title "TPM2_NV_Write (32 octets) through the vTPM server, same raw-command client"
set ylabel "NV writes per second (log scale; higher is better)"
set logscale y
set style fill solid 0.8 border -1
set boxwidth 0.6
set bmargin 5
stats "$tmp/vtpm.dat" using 2 nooutput
set yrange [100:STATS_max * 4]
set grid ytics
plot "$tmp/vtpm.dat" using 0:2:xtic(1) with boxes notitle, \
     "" using 0:(\$2 * 1.15):(sprintf("%.0f/s", \$2)) with labels notitle
GP
fi
for f in "$out"/*.png; do
	[ -e "$f" ] && echo "plot: $f"
done
exit 0
