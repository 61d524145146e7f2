/* storage.h - the storage layer: backends (file, block device, memory,
 * NBD in its own library) behind the table of blobstore/sys/backend.h, the
 * scheme table that maps URIs to them (uri.c), block-aligned I/O for block
 * storage, and the I/O view an image has of its storage.
 *
 * Nothing here knows what an image or an entry is: octets, sizes, syncs
 * and locks only. */
#ifndef BS_STORAGE_H
#define BS_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include <blobstore/backend.h>
#include <blobstore/sys/backend.h>

/* What bs_backend_new() makes (opaque outside this layer). */
struct bs_backend {
	const struct bs_backend_ops *ops;
	void *ctx;
	uint32_t block_size; /* preferred write alignment (1 when any) */
};

/* A message about storage LABEL alone. */
#define BS__AT(l) (&(struct bs__where){.label = (l)})

/* ---- an image's view of its storage (io.c) ---------------------------------- */

struct bs__io {
	struct bs_backend *be;
	const char *label;  /* names the storage in messages */
	uint64_t size;      /* octets of the storage the image uses */
	uint64_t base;      /* reads are shifted by this many octets (0 normally) */
	bool fixed;         /* the storage never grows: writes stop at SIZE */
	bool nosync;        /* syncs are skipped (BS_OPEN_NOSYNC) */
	/* A write or sync failed where the storage may or may not hold it (a
	 * commit octet, a slot): the owner's view may be stale, and a later
	 * write through it could land in a superseded copy or overwrite the
	 * last durable slot.  Set by the layers above; they refuse changes
	 * while it is set. */
	bool broken;
};

/* Read and write LEN octets at OFF of the image, messages naming W (NULL:
 * the storage's label).  Writes past SIZE grow SIZE, or fail with
 * BS_ENOSPC on fixed storage. */
int bs__io_read(struct bs__io *io, const struct bs__where *w, void *buf, size_t len, uint64_t off);
int bs__io_write(struct bs__io *io, const struct bs__where *w, const void *buf, size_t len,
		 uint64_t off);
/* A then B back to back at OFF in one storage write (writev when the
 * backend has it, else through a copy). */
int bs__io_write2(struct bs__io *io, const struct bs__where *w, const void *a, size_t alen,
		  const void *b, size_t blen, uint64_t off);
int bs__io_sync(struct bs__io *io);
/* Octets beyond SIZE (the recovery area of fixed storage), unshifted and
 * unbounded by SIZE. */
int bs__io_read_beyond(struct bs__io *io, void *buf, size_t len, uint64_t off);
int bs__io_write_beyond(struct bs__io *io, const void *buf, size_t len, uint64_t off);

/* True when BE is a file that another process replaced (a compaction
 * renamed a new file over it): its octets are a frozen old image. */
bool bs__file_replaced(const struct bs_backend *be);

/* ---- what interrupted replaces left beside a file (leftover.c) ---------------- */

/* A replace of a file (file.c) writes the new content to PATH BS__TMP_INFIX
 * and 8 lowercase hexadecimal digits, beside PATH, and renames it over PATH. */
#define BS__TMP_INFIX ".tmp-"

/* A temporary copy an interrupted replace left. */
struct bs__leftover {
	char *path;      /* the image's path with the copy's suffix (malloc'ed) */
	uint64_t octets; /* its size */
	int err;         /* 0: removed; else the errno its removal failed with */
};
/* Removes the copies that interrupted replaces of BE left, when BE is a file
 * opened for writing and holding its writer lock (BS_LOCK_EXCL); nothing for
 * other storage.  *OUT (malloc'ed, *N items; NULL and 0 when none) tells
 * each one found, removed or not.  Errors: BS_ENOMEM. */
int bs__backend_tidy(struct bs_backend *be, struct bs__leftover **out, size_t *n);
/* The same for the file PATH whose locked descriptor is IMAGE_FD (file.c):
 * only unlocked regular files named PATH BS__TMP_INFIX XXXXXXXX, with one
 * link, owned by PATH's owner or by this process's user; the directory is
 * synced after a removal when SYNC. */
int bs__leftovers_remove(const char *path, int image_fd, bool sync, struct bs__leftover **out,
			 size_t *n);
void bs__leftovers_free(struct bs__leftover *l, size_t n);

/* ---- block-aligned I/O (blockio.c) -------------------------------------------- */

/* Storage that reads and writes only whole, aligned blocks of BSZ octets:
 * unaligned writes become read-modify-write of the partial blocks, done in
 * one aligned write per chunk (so a write inside one block stays one block
 * write).  BOUNCE is CAP octets aligned for O_DIRECT. */
struct bs__blockio {
	void *ctx;
	int (*pread)(void *ctx, void *buf, size_t len, uint64_t off);
	int (*pwrite)(void *ctx, const void *buf, size_t len, uint64_t off);
	uint32_t bsz;
	uint8_t *bounce;
	size_t cap;
};
int bs__blockio_init(struct bs__blockio *io, uint32_t bsz);
void bs__blockio_free(struct bs__blockio *io);
int bs__blockio_read(struct bs__blockio *io, void *buf, size_t len, uint64_t off);
int bs__blockio_write(struct bs__blockio *io, const void *buf, size_t len, uint64_t off);

#endif
