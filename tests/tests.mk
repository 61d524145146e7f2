# tests/tests.mk - test targets, included by the top-level Makefile.
#
# Conventions (add a file, no make edits needed):
#   tests/unit/test_*.c         cmocka programs; tests/unit/common.c is linked into each
#   tests/integration/test_*.sh drive the real tool ($BLOBSTORE) and peers
#   tests/interop/test_*.sh     independent ASN.1 tools over images the tool wrote
# Every test gets BLOBSTORE, BUILD_DIR, SRCDIR and TMPDIR in its environment.

CMOCKA_CFLAGS = $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
UNIT_COMMON := tests/unit/common.c tests/unit/fault.c
INTEG := $(sort $(wildcard tests/integration/test_*.sh))
INTEROP := $(sort $(wildcard tests/interop/test_*.sh))
EXAMPLE_BINS ?=

# Unit tests may look inside the library (its layers' headers).
$(O)/tests/%: tests/unit/%.c $(UNIT_COMMON) $(ALL_STATIC) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) $(call pkg_cflags,libtpms) $(CMOCKA_CFLAGS) -Itests/unit -o $@ $< \
	  $(UNIT_COMMON) $(ALL_STATIC) $(LDFLAGS) $(CMOCKA_LIBS) $(ALL_LIBS)

TEST_ENV = BLOBSTORE=$(CURDIR)/$(TOOL) BUILD_DIR=$(CURDIR)/$(O) SRCDIR=$(CURDIR)

.PHONY: tests
tests: all $(UNIT_BIN) $(EXAMPLE_BINS)

check-unit: tests
	@$(TEST_ENV) tests/run.sh "unit ($(BUILD))" $(UNIT_BIN)

check-integration: tests
	@$(TEST_ENV) tests/run.sh "integration ($(BUILD))" $(INTEG)

# The layer rule (docs/ARCHITECTURE.md); make check runs it as
# tests/integration/test_layers.sh.
check-layers: all
	@python3 tools/check-layers.py $(O)

check-interop: tests
	@$(TEST_ENV) tests/run.sh "interop ($(BUILD))" $(INTEROP)

# The README's test command: dependencies, every test, then the unit and
# integration tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
check: DEPS_FOR := check
check: deps
	@$(MAKE) --no-print-directory tests
	@$(TEST_ENV) tests/run.sh "all ($(BUILD))" $(UNIT_BIN) $(INTEG) $(INTEROP)
	@$(MAKE) --no-print-directory BUILD=asan check-asan

check-asan: tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  BS_TEST_QUICK=1 $(TEST_ENV) tests/run.sh "asan+ubsan" $(UNIT_BIN) $(INTEG)
