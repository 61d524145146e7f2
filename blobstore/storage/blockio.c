/* blockio.c - whole-block reads and writes for storage that wants them
 * (block devices, O_DIRECT, NBD exports with a minimum block size).
 *
 * A write of any extent becomes, per chunk, one aligned write of the blocks
 * it touches; the partial first and last blocks are read first and merged.
 * So a write that stays inside one block (a commit octet) is one block
 * write, which real devices perform atomically: the one-octet commits of the
 * directory stay atomic under read-modify-write (docs/FORMAT.md). */
#include <stdlib.h>
#include <string.h>

#include "storage.h"

/* Large enough to keep system calls few, small enough to allocate once. */
#define BLOCKIO_CHUNK (1u << 20)

int bs__blockio_init(struct bs__blockio *io, uint32_t bsz)
{
	size_t cap = BLOCKIO_CHUNK;
	if (cap < 2u * bsz)
		cap = 2u * bsz;
	void *p = NULL;
	if (posix_memalign(&p, bsz > 4096 ? bsz : 4096, cap))
		return BS_ENOMEM;
	io->bsz = bsz;
	io->bounce = p;
	io->cap = cap;
	return BS_OK;
}

void bs__blockio_free(struct bs__blockio *io)
{
	free(io->bounce);
	io->bounce = NULL;
}

int bs__blockio_read(struct bs__blockio *io, void *buf, size_t len, uint64_t off)
{
	uint8_t *out = buf;
	uint64_t bsz = io->bsz;
	while (len) {
		uint64_t a0 = off - off % bsz;
		uint64_t span = off + len - a0;
		span = (span + bsz - 1) / bsz * bsz;
		if (span > io->cap)
			span = io->cap;
		int rc = io->pread(io->ctx, io->bounce, (size_t)span, a0);
		if (rc)
			return rc;
		size_t k = (size_t)(a0 + span - off);
		if (k > len)
			k = len;
		memcpy(out, io->bounce + (off - a0), k);
		out += k;
		off += k;
		len -= k;
	}
	return BS_OK;
}

int bs__blockio_write(struct bs__blockio *io, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *in = buf;
	uint64_t bsz = io->bsz;
	while (len) {
		uint64_t a0 = off - off % bsz;
		uint64_t end = off + len;
		uint64_t a1 = (end + bsz - 1) / bsz * bsz;
		if (a1 - a0 > io->cap)
			a1 = a0 + io->cap;
		uint64_t cend = end < a1 ? end : a1; /* data end within this chunk */
		int rc;
		if (off > a0 && (rc = io->pread(io->ctx, io->bounce, (size_t)bsz, a0)))
			return rc;
		if (cend < a1 && (a1 - bsz > a0 || off == a0) &&
		    (rc = io->pread(io->ctx, io->bounce + (a1 - bsz - a0), (size_t)bsz, a1 - bsz)))
			return rc;
		size_t k = (size_t)(cend - off);
		memcpy(io->bounce + (off - a0), in, k);
		if ((rc = io->pwrite(io->ctx, io->bounce, (size_t)(a1 - a0), a0)))
			return rc;
		in += k;
		off += k;
		len -= k;
	}
	return BS_OK;
}
