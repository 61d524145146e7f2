# bench/bench.mk - benchmarks, included by the top-level Makefile.
#
#   make bench    builds the benchmark programs, runs every benchmark side by
#                 side, prints the tables, writes $(BENCH_OUT)/results.csv and
#                 draws $(BENCH_OUT)/*.png with gnuplot (docs/PERFORMANCE.md)
#
# BENCH_ARGS picks parts of bench/bench.c (open, write, rss; default all);
# the crypto, backend and vTPM benchmarks run only with "all".
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

# TPM NV writes per second: swtpm against blobstore-vtpm (a client only:
# it links nothing of the library).
BENCH_VTPM_BIN := $(O)/bench/bench_vtpm

$(BENCH_VTPM_BIN): bench/bench_vtpm.c bench/bench_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

bench: DEPS_FOR := bench
bench: deps
bench: $(BENCH_BIN) $(BENCH_CRYPT_BIN) $(BENCH_BACKENDS_BIN) $(BENCH_VTPM_BIN) $(VTPM)
	@mkdir -p $(BENCH_OUT)
	BENCH_DIR=$${BENCH_DIR:-$(O)/bench} BENCH_CSV=$(BENCH_OUT)/results.csv \
	  BENCH_QUICK=$(BENCH_QUICK) $(BENCH_BIN) $(BENCH_ARGS)
	@if [ "$(BENCH_ARGS)" = all ]; then \
	  set -e; export BENCH_DIR=$${BENCH_DIR:-$(O)/bench} BENCH_CSV=$(BENCH_OUT)/results.csv \
	    BENCH_QUICK=$(BENCH_QUICK); \
	  echo "$(BENCH_CRYPT_BIN)"; $(BENCH_CRYPT_BIN); \
	  echo "$(BENCH_VTPM_BIN) $(VTPM)"; $(BENCH_VTPM_BIN) $(VTPM); \
	  echo "$(BENCH_BACKENDS_BIN)"; $(BENCH_BACKENDS_BIN); \
	fi
	bench/plot.sh $(BENCH_OUT)/results.csv $(BENCH_OUT)
