/* blobstore/sys/backend.h - for those who write a storage backend.
 *
 * An image reaches its storage only through this table, so that files,
 * block devices, network block devices, memory and test backends that
 * inject faults are interchangeable.  Every operation returns BS_OK or a
 * negative BS_E* code and sets the thread's error (bs_error_set() below;
 * messages start with the storage's label).  The library calls one
 * backend from one thread at a time.  Conventions: blobstore/blobstore.h.
 */
#ifndef BLOBSTORE_SYS_BACKEND_H
#define BLOBSTORE_SYS_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <blobstore/backend.h>
#include <blobstore/blobstore.h>
#include <blobstore/sys/util.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Lock requests. */
#define BS_LOCK_NONE 0   /* release */
#define BS_LOCK_EXCL 1   /* exclusive writer lock */
#define BS_LOCK_WAIT 2   /* or-ed in: block until granted */

struct bs_backend_ops {
	uint32_t version; /* BS_BACKEND_OPS_VERSION */
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
	/* Reserves room for TOTAL octets (may be NULL: nothing to do).  On
	 * fixed-size storage (resize NULL) it enlarges the storage to at least
	 * TOTAL octets and never shrinks it (may be NULL: it cannot grow); the
	 * library then moves its recovery area to the new end. */
	int (*reserve)(void *ctx, uint64_t total);
	/* Takes or releases the writer lock (BS_LOCK_*).  NULL: no locking. */
	int (*lock)(void *ctx, int how);
	/* Atomically replaces the whole content with LEN octets of IMG, durably
	 * (files: a locked temporary file, fsync, rename, directory fsync).
	 * NULL when the storage cannot; fixed-size storage then compacts in
	 * place through its recovery area, and other storage refuses to. */
	int (*replace)(void *ctx, const void *img, size_t len);
	/* Releases everything.  Must not write. */
	void (*close)(void *ctx);
	/* Optional: writes the IOVCNT (at most 8) buffers back to back at OFF,
	 * like write_at.  NULL: the library copies them into one buffer. */
	int (*writev_at)(void *ctx, const struct iovec *iov, int iovcnt, uint64_t off);
};
#define BS_BACKEND_OPS_VERSION 1u

/* Wraps CTX and OPS (which must outlive the backend) into a backend whose
 * preferred write alignment is BLOCK_SIZE (1: any).  On failure CTX is
 * closed through OPS.  Errors: BS_EINVAL (NULL, unknown ops version, a
 * required operation missing), BS_ENOMEM. */
int bs_backend_new(const struct bs_backend_ops *ops, void *ctx, uint32_t block_size,
		   struct bs_backend **out);
/* The CTX given to bs_backend_new(), when BE was made with OPS; else NULL. */
void *bs_backend_ctx(const struct bs_backend *be, const struct bs_backend_ops *ops);

/* Makes bs_backend_open() and bs_image_open() hand names starting with
 * "SCHEME://" to OPEN.  SCHEME is copied; registering one again replaces
 * it.  At most 32 schemes.  Errors: BS_EINVAL, BS_ELIMIT. */
typedef int (*bs_backend_open_fn)(const char *uri, unsigned flags, struct bs_backend **out);
int bs_backend_register(const char *scheme, bs_backend_open_fn open);

#ifdef __cplusplus
}
#endif
#endif
