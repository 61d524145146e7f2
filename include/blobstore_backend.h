/* blobstore_backend.h - the storage table under an image.
 *
 * An image reaches its storage only through these operations, so that files,
 * block devices, network block devices, memory and the fault-injecting test
 * backend are interchangeable.  Every operation returns BS_OK or a negative
 * BS_E* code and sets the thread's error message (bs_errmsg()).
 */
#ifndef BLOBSTORE_BACKEND_H
#define BLOBSTORE_BACKEND_H

#include "blobstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lock requests. */
#define BS_LOCK_EXCL 1   /* exclusive writer lock */
#define BS_LOCK_WAIT 2   /* or-ed in: block until granted */
#define BS_LOCK_NONE 0   /* release */

struct bs_backend_ops {
	/* Reads exactly LEN octets at OFF.  Reading past the end is BS_ECORRUPT
	 * (the image claims data the storage does not have). */
	int (*read_at)(void *ctx, void *buf, size_t len, uint64_t off);
	/* Writes exactly LEN octets at OFF, growing the storage if needed and
	 * possible (BS_ENOSPC otherwise). */
	int (*write_at)(void *ctx, const void *buf, size_t len, uint64_t off);
	/* Makes every completed write durable (fdatasync, NBD flush). */
	int (*sync)(void *ctx);
	/* Current size in octets. */
	int (*size)(void *ctx, uint64_t *out);
	/* Sets the size (truncate or extend).  NULL for fixed-size storage. */
	int (*resize)(void *ctx, uint64_t size);
	/* Reserves room for TOTAL octets (may be NULL: nothing to do). */
	int (*reserve)(void *ctx, uint64_t total);
	/* Takes or releases the writer lock (BS_LOCK_*).  NULL: no locking. */
	int (*lock)(void *ctx, int how);
	/* Atomically replaces the whole content with LEN octets of IMG, durably
	 * (files: a locked temporary file, fsync, rename, directory fsync).
	 * NULL when the storage cannot do it; compaction then fails with
	 * BS_EUNSUPPORTED rather than risk the only copy. */
	int (*replace)(void *ctx, const void *img, size_t len);
	/* Releases everything.  Must not write. */
	void (*close)(void *ctx);
};

struct bs_backend {
	const struct bs_backend_ops *ops;
	void *ctx;
	uint32_t block_size; /* preferred write alignment (1 when any) */
};

/* A file.  FLAGS: BS_OPEN_RDONLY, BS_OPEN_CREATE, BS_OPEN_EXCL, BS_OPEN_NOSYNC.
 * *OUT is heap-allocated; the image (or bs_backend_free) releases it. */
int bs_backend_file(const char *path, unsigned flags, struct bs_backend **out);

/* Memory.  INIT/LEN (may be NULL/0) is copied in.  The content can be read
 * back with bs_backend_mem_data() while the backend lives. */
int bs_backend_mem(const void *init, size_t len, struct bs_backend **out);
const uint8_t *bs_backend_mem_data(const struct bs_backend *be, size_t *len);

/* Fault injection, over memory.  Every write_at and sync is counted (from
 * 1).  After write number CRASH_AFTER (0: never) the backend "loses power":
 * that write is applied only partially when TEAR_AT is not SIZE_MAX (its
 * first TEAR_AT octets), and every later write and sync fails with BS_EIO
 * without effect.  FAIL_AT (0: never) makes that one operation (write or
 * sync, counted together) fail with FAIL_CODE without effect.  The state
 * after the crash is what a new memory backend opened on
 * bs_backend_mem_data() sees. */
struct bs_fault_plan {
	uint64_t crash_after;
	size_t tear_at;
	uint64_t fail_at;
	int fail_code;
};
int bs_backend_fault(const void *init, size_t len, const struct bs_fault_plan *plan,
		     struct bs_backend **out);
/* Counters of the fault backend. */
struct bs_fault_stats {
	uint64_t writes, syncs, bytes_written;
	int crashed;
};
void bs_backend_fault_stats(const struct bs_backend *be, struct bs_fault_stats *out);

/* Releases a backend that was not handed to bs_open_backend(). */
void bs_backend_free(struct bs_backend *be);

#ifdef __cplusplus
}
#endif
#endif
