/* fault.h - the tests' storage backend that injects faults: a memory
 * backend built on the public backend table (blobstore/sys/backend.h)
 * that counts writes and syncs, fails or "loses power" at a chosen one,
 * and keeps a journal from which every state storage could hold after a
 * power loss is rebuilt.  Crash, power-loss and I/O-error tests run on it. */
#ifndef TESTS_FAULT_H
#define TESTS_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/backend.h>

/* Fault injection, over memory.  Every write_at and sync is counted (from
 * 1).  After write number CRASH_AFTER (0: never) the backend "loses power":
 * that write is applied only partially when TEAR_AT is not SIZE_MAX (its
 * first TEAR_AT octets), and every later write and sync fails with BS_EIO
 * without effect.  FAIL_AT (0: never) makes that one operation (write or
 * sync, counted together) fail with FAIL_CODE without effect (but see
 * FAIL_WRITTEN).  The state
 * after the crash is what a new memory backend opened on
 * bs_backend_mem_data() sees. */
struct fault_plan {
	uint64_t crash_after;
	size_t tear_at;
	uint64_t fail_at;
	int fail_code;
	/* Non-zero: the FAIL_COUNT operations from FAIL_AT on all fail (0: one). */
	uint64_t fail_count;
	/* A write that FAIL_AT fails applies its first FAIL_WRITTEN octets
	 * before it fails (0: none), as a write cut short by a full disk
	 * does: a file then has grown by what fitted. */
	size_t fail_written;
	int journal; /* non-zero: keep the power-loss journal (below) */
	/* Non-zero: a sync that FAIL_AT fails loses the writes pending at it,
	 * as Linux may after a failed fsync (it marks the pages clean): reads
	 * still return them, but no later sync makes them durable, and a
	 * power loss loses them. */
	int lossy_sync;
};
int fault_backend_new(const void *init, size_t len, const struct fault_plan *plan,
		     struct bs_backend **out);
/* What the storage holds now (NULL for another backend). */
const uint8_t *fault_backend_data(const struct bs_backend *be, size_t *len);
/* Counters of the fault backend. */
struct fault_stats {
	uint64_t writes, syncs, bytes_written;
	int crashed;
	int journal_lost; /* the journal ran out of memory: no replay */
};
void fault_backend_stats(const struct bs_backend *be, struct fault_stats *out);

/* Power loss.  With PLAN->journal the fault backend keeps the content as of
 * the last completed sync and every change issued since (the one a crash
 * interrupted included, whole).  fault_backend_powerloss() builds what
 * storage could hold after power was lost at this point: starting from the
 * synced content, pending change ORDER[k] (NULL: issue order) is applied in
 * turn with FATES[i] (NULL: every change lost).  A write can be lost,
 * applied whole, torn after ARG octets, applied in the 512-octet sectors
 * whose bit (k % 64) is set in ARG (k counts the sectors the write touches),
 * or leave only its size (the storage grew, zeros where the data should
 * be).  A resize is lost or applied; a replace (atomic, durable on return)
 * is lost or applied whole.  *OUT (malloc()ed, *OUT_LEN octets) is the
 * result.  Errors: BS_EINVAL (no journal, bad ORDER or fate), BS_ENOMEM. */
#define FAULT_WRITE 0
#define FAULT_RESIZE 1   /* OFF is the new size */
#define FAULT_REPLACE 2  /* LEN octets replace the content */
struct fault_write {
	int kind;
	uint64_t off;
	size_t len;
};
/* Copies up to MAX pending changes to OUT; returns how many there are. */
size_t fault_backend_pending(const struct bs_backend *be, struct fault_write *out,
				size_t max);
#define FATE_LOST 0
#define FATE_WHOLE 1
#define FATE_PREFIX 2  /* the first ARG octets */
#define FATE_SECTORS 3 /* the sectors selected by the bits of ARG */
#define FATE_ZEROS 4   /* only the size change */
struct fault_fate {
	int fate;
	uint64_t arg;
};
int fault_backend_powerloss(const struct bs_backend *be, const size_t *order,
			    const struct fault_fate *fates, uint8_t **out, size_t *out_len);

#endif
