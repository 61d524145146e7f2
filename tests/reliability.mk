# tests/reliability.mk - the long runs of the reliability tests (the short
# runs are part of `make check`), included by the top-level Makefile.
#
#   make crashtest    crash and power-loss simulation: test_crash in full, then
#                     test_powerloss with every tear offset (BS_CRASH_LONG=1)
#                     for each seed in CRASH_SEEDS; prints the totals
#   make stresstest   concurrency: writer lock, waiting writers, readers in
#                     other processes during replaces and compactions, for
#                     STRESS_SECONDS per phase
#   make hostiletest  the hostile-input table (docs/RELIABILITY.md)
#   make reliability  all three
# Seeds are printed; rerun one with BS_CRASH_SEED=N build/tests/test_powerloss.

CRASH_SEEDS ?= 1 2 3
STRESS_SECONDS ?= 10

.PHONY: crashtest stresstest hostiletest reliability

crashtest: tests
	@set -u; log=$(O)/crashtest.log; : >$$log; rc=0; \
	echo "== test_crash (every write, torn, recovery crashed, I/O errors; blocks of 4096 and 512)"; \
	BS_CRASH_LONG=1 $(TEST_ENV) $(O)/tests/test_crash >>$$log 2>&1 || rc=1; \
	for s in $(CRASH_SEEDS); do \
	  echo "== test_powerloss, long, seed $$s"; \
	  BS_CRASH_LONG=1 BS_CRASH_SEED=$$s $(TEST_ENV) $(O)/tests/test_powerloss >>$$log 2>&1 || rc=1; \
	done; \
	grep -E '^(crash|power-loss) simulation' $$log; \
	awk '/^crash simulation:/ { o += $$3; p += $$5; v += $$(NF-1) } \
	     /^power-loss simulation/ { for (i = 1; i <= NF; i++) { \
	       if ($$i ~ /^operations,?$$/) o += $$(i-1); \
	       if ($$i == "images,") p += $$(i-2); \
	       if ($$i == "violations") v += $$(i-1) } } \
	     END { printf "crash simulation: %d operations, %d crash points, %d violations\n", o, p, v }' $$log; \
	if [ $$rc != 0 ]; then grep -E 'FAILED|violation|ERROR' $$log | head -n 40; \
	  echo "crashtest FAILED (log: $$log)"; exit 1; fi

stresstest: tests
	@BS_STRESS_SECONDS=$(STRESS_SECONDS) $(TEST_ENV) $(O)/tests/test_concurrency

hostiletest: tests
	@BS_HOSTILE_PRINT=1 $(TEST_ENV) $(O)/tests/test_hostile

reliability: crashtest stresstest hostiletest
