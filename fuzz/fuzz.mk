# fuzz/fuzz.mk - libFuzzer targets, included by the top-level Makefile.
#
#   make fuzz         builds build-fuzz/ with clang (libFuzzer, ASan, UBSan),
#                     replays fuzz/regressions/<target>/, then fuzzes each
#                     target for FUZZ_SECONDS (default 60)
#   make fuzz-smoke   the same for 10 s per target (or FUZZ_SECONDS)
# Seeds: build-fuzz/seeds/<target>/ from fuzz/mkseeds.c (images the library
# made), plus the committed fuzz/corpus/<target>/.  New inputs go to
# build-fuzz/corpus/<target>/, crashes to build-fuzz/artifacts/.

FUZZ_CC ?= clang
FUZZ_O := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 8192
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_O)/%)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(LIB_INC) $(call pkg_cflags,libtasn1 libcrypto libtpms libnbd) \
  $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_O)/%.o,$(wildcard blobstore/*/*.c nvram/*.c)) \
                $(FUZZ_O)/gen/asn1tab.o $(FUZZ_O)/gen/asn1text.o

.PHONY: fuzz-smoke fuzz-build

$(FUZZ_O)/blobstore/%.o: blobstore/%.c $(HEADERS) $(wildcard blobstore/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_O)/nvram/%.o: nvram/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_O)/gen/%.o: $(O)/gen/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -Wmissing-prototypes -Wshadow,$(FUZZ_CFLAGS)) -Wno-missing-prototypes -c -o $@ $<

$(FUZZ_O)/libblobstore.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_O)/%: fuzz/%.c $(FUZZ_O)/libblobstore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_O)/libblobstore.a $(ALL_LIBS)

$(FUZZ_O)/mkseeds: fuzz/mkseeds.c tests/unit/fault.c $(ALL_STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PUB_INC) -Itests/unit -o $@ $< tests/unit/fault.c $(ALL_STATIC) $(LDFLAGS) \
	  $(ALL_LIBS)

fuzz-build: $(FUZZ_BINS) $(FUZZ_O)/mkseeds

fuzz: fuzz-build
	@set -e; rm -rf $(FUZZ_O)/seeds; $(FUZZ_O)/mkseeds $(FUZZ_O)/seeds; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_O)/corpus/$$t $(FUZZ_O)/seeds/$$t $(FUZZ_O)/artifacts; \
	  log=$(FUZZ_O)/$$t.log; \
	  if [ -n "$$(ls fuzz/regressions/$$t 2>/dev/null)" ]; then \
	    echo "== $$t: replaying fuzz/regressions/$$t"; \
	    $(FUZZ_O)/$$t fuzz/regressions/$$t/* >$$log 2>&1 || \
	      { tail -n 40 $$log; echo "== $$t: a regression input FAILED"; exit 1; }; \
	  fi; \
	  echo "== $$t: fuzzing for $(FUZZ_SECONDS) s (log: $$log)"; \
	  $(FUZZ_O)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -max_len=$(FUZZ_MAX_LEN) -artifact_prefix=$(FUZZ_O)/artifacts/$$t- \
	    $(FUZZ_O)/corpus/$$t $(FUZZ_O)/seeds/$$t \
	    $$(test -d fuzz/corpus/$$t && echo fuzz/corpus/$$t) >$$log 2>&1 || \
	    { tail -n 60 $$log; echo "== $$t: FAILED (input in $(FUZZ_O)/artifacts/)"; exit 1; }; \
	  grep -E '^(INFO: seed corpus|#[0-9]+ *DONE|Done [0-9]+ runs)' $$log || tail -n 2 $$log; \
	done

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz \
	  FUZZ_SECONDS=$(if $(filter command line,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),10)
