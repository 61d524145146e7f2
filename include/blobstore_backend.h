/* blobstore_backend.h - the storage table under an image.
 *
 * An image reaches its storage only through these operations, so that files,
 * block devices, network block devices, memory and the fault-injecting test
 * backend are interchangeable.  Every operation returns BS_OK or a negative
 * BS_E* code and sets the thread's error message (bs_errmsg()).
 */
#ifndef BLOBSTORE_BACKEND_H
#define BLOBSTORE_BACKEND_H

#include <sys/uio.h>

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
	/* Optional: writes the IOVCNT buffers back to back at OFF, like
	 * write_at.  NULL: the image copies them into one buffer first. */
	int (*writev_at)(void *ctx, const struct iovec *iov, int iovcnt, uint64_t off);
};

struct bs_backend {
	const struct bs_backend_ops *ops;
	void *ctx;
	uint32_t block_size; /* preferred write alignment (1 when any) */
};

/* A file.  FLAGS: BS_OPEN_RDONLY, BS_OPEN_CREATE, BS_OPEN_EXCL, BS_OPEN_NOSYNC.
 * *OUT is heap-allocated; the image (or bs_backend_free) releases it. */
int bs_backend_file(const char *path, unsigned flags, struct bs_backend **out);

/* A block device, or a regular file playing a fixed-size device.  The
 * storage never grows (BS_ENOSPC past its end); writes are whole blocks of
 * BLOCK_SIZE octets (read-modify-write inside the backend).  Writers hold an
 * exclusive OFD lock and open a device O_EXCL: both protect against other
 * processes on this host only.  LABEL (NULL: PATH) names it in messages. */
struct bs_blk_opts {
	uint64_t size;       /* files: the device size (0: the file's size; a
				writer extends a smaller file); devices: use at
				most this much (0: all) */
	uint32_t block_size; /* 0: the device's logical block size (BLKSSZGET),
				512 for files; never below the device's */
	int direct;          /* non-zero: O_DIRECT, through aligned buffers */
};
int bs_backend_blk(const char *path, const char *label, unsigned flags,
		   const struct bs_blk_opts *opts, struct bs_backend **out);

/* An NBD export through libnbd: URI as nbd_connect_uri() takes it
 * ("nbd://host:port/export", "nbd+unix:///export?socket=PATH").  Fixed size;
 * sync is an NBD flush (FUA writes where offered).  A writer refuses a
 * read-only export (BS_ERDONLY) and one that cannot flush (BS_EUNSUPPORTED)
 * unless FLAGS has BS_OPEN_NOSYNC.  No locking: one writer per export is
 * the operator's job.  Connection failures are BS_EIO naming the URI. */
int bs_backend_nbd(const char *uri, unsigned flags, struct bs_backend **out);

/* The backend that NAME denotes, as bs_open() uses it: a path (regular file
 * or block device), "file:///path", "blk:///path?size=N&bs=N&direct=1", or an
 * NBD URI ("nbd://", "nbd+unix://", ...).  Another "scheme://" is BS_EINVAL. */
int bs_backend_open(const char *name, unsigned flags, struct bs_backend **out);

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
	int journal; /* non-zero: keep the power-loss journal (below) */
};
int bs_backend_fault(const void *init, size_t len, const struct bs_fault_plan *plan,
		     struct bs_backend **out);
/* Counters of the fault backend. */
struct bs_fault_stats {
	uint64_t writes, syncs, bytes_written;
	int crashed;
	int journal_lost; /* the journal ran out of memory: no replay */
};
void bs_backend_fault_stats(const struct bs_backend *be, struct bs_fault_stats *out);

/* Power loss.  With PLAN->journal the fault backend keeps the content as of
 * the last completed sync and every change issued since (the one a crash
 * interrupted included, whole).  bs_backend_fault_powerloss() builds what
 * storage could hold after power was lost at this point: starting from the
 * synced content, pending change ORDER[k] (NULL: issue order) is applied in
 * turn with FATES[i] (NULL: every change lost).  A write can be lost,
 * applied whole, torn after ARG octets, applied in the 512-octet sectors
 * whose bit (k % 64) is set in ARG (k counts the sectors the write touches),
 * or leave only its size (the storage grew, zeros where the data should
 * be).  A resize is lost or applied; a replace (atomic, durable on return)
 * is lost or applied whole.  *OUT (malloc()ed, *OUT_LEN octets) is the
 * result.  Errors: BS_EINVAL (no journal, bad ORDER or fate), BS_ENOMEM. */
#define BS_FAULT_WRITE 0
#define BS_FAULT_RESIZE 1   /* OFF is the new size */
#define BS_FAULT_REPLACE 2  /* LEN octets replace the content */
struct bs_fault_write {
	int kind;
	uint64_t off;
	size_t len;
};
/* Copies up to MAX pending changes to OUT; returns how many there are. */
size_t bs_backend_fault_pending(const struct bs_backend *be, struct bs_fault_write *out,
				size_t max);
#define BS_FATE_LOST 0
#define BS_FATE_WHOLE 1
#define BS_FATE_PREFIX 2  /* the first ARG octets */
#define BS_FATE_SECTORS 3 /* the sectors selected by the bits of ARG */
#define BS_FATE_ZEROS 4   /* only the size change */
struct bs_fault_fate {
	int fate;
	uint64_t arg;
};
int bs_backend_fault_powerloss(const struct bs_backend *be, const size_t *order,
			       const struct bs_fault_fate *fates, uint8_t **out, size_t *out_len);

/* Releases a backend that was not handed to bs_open_backend(). */
void bs_backend_free(struct bs_backend *be);

#ifdef __cplusplus
}
#endif
#endif
