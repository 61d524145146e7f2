# bench/bench.mk - benchmarks, included by the top-level Makefile.
#
#   make bench    builds the benchmark programs, runs every benchmark side by
#                 side, prints the tables, writes $(BENCH_OUT)/results.csv and
#                 draws $(BENCH_OUT)/*.png with gnuplot (docs/PERFORMANCE.md)
#
# BENCH_ARGS picks parts of bench/bench.c (open, write, rss; default all);
# the crypto, backend, vTPM and RBD benchmarks run only with "all".  Those
# start a throwaway Ceph cluster in $(BENCH_DIR)/ceph first
# (tests/integration/ceph_cluster.sh) for RBD: bench_rbd, and an RBD row in
# bench_backends and bench_vtpm; without the Ceph binaries they run without.
# BENCH_DIR holds the images, files and TPM state (default build/bench); it
# must be on a real disk for the durable-write numbers to mean anything.
# BENCH_OUT gets the CSV and the plots (default build/bench).
# BENCH_QUICK=1: a smoke run (small sizes, few repetitions, well under a
# minute).  BENCH_1M=0 skips the million-entry image and directory.

BENCH_BIN := $(O)/bench/bench
BENCH_ARGS ?= all
BENCH_OUT ?= $(O)/bench
BENCH_QUICK ?= 0

$(BENCH_BIN): bench/bench.c bench/bench_util.h $(ALL_STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) -o $@ $< $(ALL_STATIC) $(LDFLAGS) $(ALL_LIBS)

# Encrypted and checksummed put/get against raw EVP AES-256-GCM, SHA-256
# and CRC-32C (docs/CRYPTO.md).
BENCH_CRYPT_BIN := $(O)/bench/bench_crypt

$(BENCH_CRYPT_BIN): bench/bench_crypt.c bench/bench_util.h $(ALL_STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) -o $@ $< $(ALL_STATIC) $(LDFLAGS) $(ALL_LIBS)

# Per-operation costs on each storage backend (docs/SCALING.md).
BENCH_BACKENDS_BIN := $(O)/bench/bench_backends

$(BENCH_BACKENDS_BIN): bench/bench_backends.c bench/bench_util.h $(ALL_STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) -o $@ $< $(ALL_STATIC) $(LDFLAGS) $(ALL_LIBS)

# Images on RBD against raw librbd (docs/SCALING.md): it links librbd itself
# for the raw side (Debian's librbd-dev has no pkg-config file).
BENCH_RBD_BIN := $(O)/bench/bench_rbd

$(BENCH_RBD_BIN): bench/bench_rbd.c bench/bench_util.h $(ALL_STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) -o $@ $< $(ALL_STATIC) $(LDFLAGS) $(ALL_LIBS) -lrbd -lrados

# TPM NV writes per second: swtpm against blobstore-vtpm (a client only:
# it links nothing of the library).
BENCH_VTPM_BIN := $(O)/bench/bench_vtpm

$(BENCH_VTPM_BIN): bench/bench_vtpm.c bench/bench_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

bench: DEPS_FOR := bench
bench: deps
bench: $(BENCH_BIN) $(BENCH_CRYPT_BIN) $(BENCH_BACKENDS_BIN) $(BENCH_VTPM_BIN) $(VTPM) $(BENCH_RBD_BIN)
	@mkdir -p $(BENCH_OUT)
	BENCH_DIR=$${BENCH_DIR:-$(O)/bench} BENCH_CSV=$(BENCH_OUT)/results.csv \
	  BENCH_QUICK=$(BENCH_QUICK) $(BENCH_BIN) $(BENCH_ARGS)
	@if [ "$(BENCH_ARGS)" = all ]; then \
	  set -e; export BENCH_DIR=$${BENCH_DIR:-$(O)/bench} BENCH_CSV=$(BENCH_OUT)/results.csv \
	    BENCH_QUICK=$(BENCH_QUICK); \
	  if command -v ceph-osd >/dev/null && command -v ceph-mon >/dev/null; then \
	    trap 'tests/integration/ceph_cluster.sh stop "$$BENCH_DIR/ceph"; rm -rf "$$BENCH_DIR/ceph"' EXIT; \
	    BENCH_RBD_CONF=$$(tests/integration/ceph_cluster.sh start "$$BENCH_DIR/ceph"); \
	    export BENCH_RBD_CONF; \
	  else echo "bench: no Ceph binaries (ceph-mon, ceph-osd): RBD not measured"; fi; \
	  echo "$(BENCH_RBD_BIN)"; $(BENCH_RBD_BIN); \
	  echo "$(BENCH_CRYPT_BIN)"; $(BENCH_CRYPT_BIN); \
	  echo "$(BENCH_VTPM_BIN) $(VTPM)"; $(BENCH_VTPM_BIN) $(VTPM); \
	  echo "$(BENCH_BACKENDS_BIN)"; $(BENCH_BACKENDS_BIN); \
	fi
	bench/plot.sh $(BENCH_OUT)/results.csv $(BENCH_OUT)
