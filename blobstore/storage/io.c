/* io.c - an image's view of its storage: reads and writes bounded by the
 * image's room, messages that say where, syncs that honour NOSYNC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

static const struct bs__where *where(const struct bs__io *io, const struct bs__where *w)
{
	static _Thread_local struct bs__where lw;
	if (w)
		return w;
	lw = (struct bs__where){.label = io->label};
	return &lw;
}

int bs__io_read(struct bs__io *io, const struct bs__where *w, void *buf, size_t len, uint64_t off)
{
	int rc = io->be->ops->read_at(io->be->ctx, buf, len, off + io->base);
	if (rc) {
		char what[64];
		snprintf(what, sizeof what, "read of %zu octets failed", len);
		return bs__error_wrap(where(io, w), off, rc, what);
	}
	return BS_OK;
}

static int room(struct bs__io *io, const struct bs__where *w, size_t len, uint64_t off)
{
	/* Fixed-size storage: the image stops where the recovery area starts. */
	if (io->fixed && (off > io->size || len > io->size - off))
		return bs__error(where(io, w), off, BS_ENOSPC,
				 "the image would outgrow its fixed-size storage (%llu octets for "
				 "the image, storage does not grow): delete or compact entries",
				 (unsigned long long)io->size);
	return BS_OK;
}

static int written(struct bs__io *io, const struct bs__where *w, int rc, size_t len,
		   uint64_t off)
{
	if (rc) {
		char what[64];
		snprintf(what, sizeof what, "write of %zu octets failed", len);
		return bs__error_wrap(where(io, w), off, rc, what);
	}
	if (off + len > io->size)
		io->size = off + len;
	return BS_OK;
}

int bs__io_write(struct bs__io *io, const struct bs__where *w, const void *buf, size_t len,
		 uint64_t off)
{
	int rc = room(io, w, len, off);
	if (rc)
		return rc;
	return written(io, w, io->be->ops->write_at(io->be->ctx, buf, len, off), len, off);
}

int bs__io_write2(struct bs__io *io, const struct bs__where *w, const void *a, size_t alen,
		  const void *b, size_t blen, uint64_t off)
{
	if (!io->be->ops->writev_at) {
		uint8_t *buf = malloc(alen + blen ? alen + blen : 1);
		if (!buf)
			return bs__error(where(io, w), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		memcpy(buf, a, alen);
		if (blen)
			memcpy(buf + alen, b, blen);
		int rc = bs__io_write(io, w, buf, alen + blen, off);
		free(buf);
		return rc;
	}
	int rc = room(io, w, alen + blen, off);
	if (rc)
		return rc;
	struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
	rc = io->be->ops->writev_at(io->be->ctx, iov, blen ? 2 : 1, off);
	return written(io, w, rc, alen + blen, off);
}

int bs__io_sync(struct bs__io *io)
{
	if (io->nosync)
		return BS_OK;
	int rc = io->be->ops->sync(io->be->ctx);
	if (rc)
		return bs__error_wrap(where(io, NULL), BS_NO_OFFSET, rc, "sync failed");
	return BS_OK;
}

int bs__io_read_beyond(struct bs__io *io, void *buf, size_t len, uint64_t off)
{
	return io->be->ops->read_at(io->be->ctx, buf, len, off);
}

int bs__io_write_beyond(struct bs__io *io, const void *buf, size_t len, uint64_t off)
{
	return io->be->ops->write_at(io->be->ctx, buf, len, off);
}
