# bench/bench.mk - benchmarks, included by the top-level Makefile.
#
#   make bench    builds build/bench/bench, runs every benchmark, prints the
#                 tables and writes build/bench/results.csv
# BENCH_ARGS picks a part (open, write, rss); BENCH_DIR must be on a real
# disk for the durable-write numbers to mean anything (default build/bench).

BENCH_BIN := $(O)/bench/bench
BENCH_ARGS ?= all

$(BENCH_BIN): bench/bench.c $(STATIC) $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS) $(LIBS)

# Encrypted put/get against raw EVP AES-256-GCM (docs/CRYPTO.md).
BENCH_CRYPT_BIN := $(O)/bench/bench_crypt

$(BENCH_CRYPT_BIN): bench/bench_crypt.c $(STATIC) $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS) $(LIBS)

# Per-operation costs on each storage backend (docs/SCALING.md).
BENCH_BACKENDS_BIN := $(O)/bench/bench_backends

$(BENCH_BACKENDS_BIN): bench/bench_backends.c $(STATIC) $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS) $(LIBS)

bench: $(BENCH_BIN) $(BENCH_CRYPT_BIN) $(BENCH_BACKENDS_BIN)
	BENCH_DIR=$${BENCH_DIR:-$(O)/bench} $(BENCH_BIN) $(BENCH_ARGS)
	$(BENCH_CRYPT_BIN)
	BENCH_DIR=$${BENCH_DIR:-$(O)/bench} $(BENCH_BACKENDS_BIN)

