/* blobstore/backend.h - the storage an image lives on.
 *
 * bs_image_open() picks a backend from its URI; these calls make one
 * explicitly (hand it to bs_image_open_backend()).  Writing a backend of
 * your own: blobstore/sys/backend.h.  Conventions: blobstore/blobstore.h.
 */
#ifndef BLOBSTORE_BACKEND_H
#define BLOBSTORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The backend NAME denotes, as bs_image_open() uses it: a path (regular
 * file or block device), "file:///path", "blk:///path?size=N&bs=N&direct=1",
 * or a URI whose scheme a backend registered (bs_backend_register() in
 * blobstore/sys/backend.h; the NBD backend: bs_nbd_register()).  FLAGS are
 * BS_OPEN_* (RDONLY, CREATE, EXCL, NOSYNC).  Another "scheme://" is
 * BS_EINVAL, naming the registration it needs where that is known.
 * Errors: BS_EINVAL, BS_ENOENT, BS_EIO, BS_ENOMEM, and the backend's. */
int bs_backend_open(const char *name, unsigned flags, struct bs_backend **out);

/* A regular file.  Writers hold an exclusive open-file-description lock
 * (this host only); compaction and format replace the file atomically.
 * A block device path gives the block-device backend. */
int bs_backend_file(const char *path, unsigned flags, struct bs_backend **out);

/* A block device, or a regular file playing a fixed-size device.  The
 * storage never grows (BS_ENOSPC past its end); writes are whole blocks
 * (read-modify-write inside the backend).  Writers hold an exclusive OFD
 * lock and open a device O_EXCL: both protect against other processes on
 * this host only.  LABEL (may be NULL: PATH) names it in messages; OPTS
 * (may be NULL) as below. */
struct bs_blk_opts {
	uint32_t version;    /* BS_BLK_OPTS_VERSION */
	uint64_t size;       /* files: the device size (0: the file's size; a
				writer extends a smaller file); devices: use at
				most this much (0: all) */
	uint32_t block_size; /* 0: the device's logical block size (BLKSSZGET),
				512 for files; never below the device's */
	int direct;          /* non-zero: O_DIRECT, through aligned buffers */
};
#define BS_BLK_OPTS_VERSION 1u
#define BS_BLK_OPTS_INIT {.version = BS_BLK_OPTS_VERSION}
int bs_backend_blk(const char *path, const char *label, unsigned flags,
		   const struct bs_blk_opts *opts, struct bs_backend **out);

/* Memory.  INIT/LEN (INIT may be NULL when LEN is 0) is copied in.  The
 * content can be read back with bs_backend_mem_data() while the backend
 * lives (NULL for a backend that is not a memory backend). */
int bs_backend_mem(const void *init, size_t len, struct bs_backend **out);
const uint8_t *bs_backend_mem_data(const struct bs_backend *be, size_t *len);

/* Releases a backend that was not handed to bs_image_open_backend(). */
void bs_backend_free(struct bs_backend *be);

#ifdef __cplusplus
}
#endif
#endif
