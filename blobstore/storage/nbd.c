/* nbd.c - images on network block device exports, through libnbd.
 *
 * Built into a library of its own (libblobstore-nbd, blobstore/nbd.h): it
 * uses the public backend table and error calls, and the storage layer's
 * block-aligned I/O, which that library carries too.
 *
 * An export has a fixed size (nbd_get_size) and never grows.  Durability
 * comes from the server: sync is NBD_CMD_FLUSH, and a writer refuses an
 * export that cannot flush unless it asked for BS_OPEN_NOSYNC.  When the
 * server offers FUA, small writes carry it; a sync whose writes since the
 * last flush all carried FUA has nothing left to do, so a slot write or a
 * commit octet costs one round trip instead of two.  Writes are aligned to
 * the export's minimum block size when it has one (blockio.c).
 *
 * NBD has no locks: nothing here stops a second writer on another
 * connection.  The operator runs one writer per export (docs/SCALING.md).
 * A dead connection is not re-established behind the caller's back: every
 * later operation fails with BS_EIO naming the URI, and the caller reopens. */
#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/nbd.h>

#include "storage.h"

/* FUA only for writes this small: a large FUA write costs as much as a
 * flush, and writes that large are never a whole commit. */
#define NBD_FUA_MAX (64u * 1024)
/* Largest request NBD servers accept without negotiation. */
#define NBD_REQ_MAX (32u << 20)

struct nbd_be {
	struct nbd_handle *h;
	char *uri;
	unsigned flags;
	uint64_t size;
	bool can_fua;
	bool fua_now;    /* the write in progress carries FUA */
	bool unflushed;  /* a write without FUA since the last flush */
	uint32_t max_req;
	struct bs__blockio io; /* when the export has a minimum block size */
	bool aligned;
	bool connected; /* past the connection: a dead handle means the server went away */
};

/* "URI: WHAT at offset OFF: libnbd's message". */
static int nbd_fail(struct nbd_be *n, const char *what, uint64_t off)
{
	const char *m = nbd_get_error();
	int e = nbd_get_errno();
	int code = BS_EIO;
	if (e == EROFS || e == EPERM)
		code = BS_ERDONLY;
	else if (e == ENOSPC)
		code = BS_ENOSPC;
	else if (e == ENOMEM)
		code = BS_ENOMEM;
	/* Once connected (ops set), a dead handle means the server went away. */
	bool dead = n->connected && n->h && nbd_aio_is_dead(n->h) == 1;
	if (off == BS_NO_OFFSET)
		return bs_error_set(n->uri, NULL, NULL, BS_NO_OFFSET, code, 0, "%s failed%s: %s", what,
				   dead ? " (connection to the server lost: reopen the image)" : "",
				   m ? m : strerror(e));
	return bs_error_set(n->uri, NULL, NULL, BS_NO_OFFSET, code, 0, "%s at offset %llu failed%s: %s", what,
			   (unsigned long long)off,
			   dead ? " (connection to the server lost: reopen the image)" : "",
			   m ? m : strerror(e));
}

static int raw_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct nbd_be *n = ctx;
	uint8_t *p = buf;
	while (len) {
		size_t k = len > n->max_req ? n->max_req : len;
		if (nbd_pread(n->h, p, k, off, 0) == -1)
			return nbd_fail(n, "nbd_pread", off);
		p += k;
		off += k;
		len -= k;
	}
	return BS_OK;
}

static int raw_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct nbd_be *n = ctx;
	const uint8_t *p = buf;
	uint32_t fl = n->fua_now ? LIBNBD_CMD_FLAG_FUA : 0;
	while (len) {
		size_t k = len > n->max_req ? n->max_req : len;
		if (nbd_pwrite(n->h, p, k, off, fl) == -1)
			return nbd_fail(n, "nbd_pwrite", off);
		p += k;
		off += k;
		len -= k;
	}
	return BS_OK;
}

static int n_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct nbd_be *n = ctx;
	if (off > n->size || len > n->size - off)
		return bs_error_set(n->uri, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
				   "read past the end of the %llu-octet export at offset %llu",
				   (unsigned long long)n->size, (unsigned long long)off);
	return n->aligned ? bs__blockio_read(&n->io, buf, len, off) : raw_read(n, buf, len, off);
}

static int n_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct nbd_be *n = ctx;
	if (off > n->size || len > n->size - off)
		return bs_error_set(n->uri, NULL, NULL, BS_NO_OFFSET, BS_ENOSPC, 0,
				   "write at offset %llu past the end of the %llu-octet export "
				   "(an export does not grow)",
				   (unsigned long long)off, (unsigned long long)n->size);
	n->fua_now = n->can_fua && !(n->flags & BS_OPEN_NOSYNC) && len <= NBD_FUA_MAX;
	int rc = n->aligned ? bs__blockio_write(&n->io, buf, len, off)
			    : raw_write(n, buf, len, off);
	/* Even a failed write may have reached the server in part. */
	if (!n->fua_now)
		n->unflushed = true;
	n->fua_now = false;
	return rc;
}

static int n_sync(void *ctx)
{
	struct nbd_be *n = ctx;
	if ((n->flags & BS_OPEN_NOSYNC) || !n->unflushed)
		return BS_OK;
	if (nbd_flush(n->h, 0) == -1)
		return nbd_fail(n, "nbd_flush", BS_NO_OFFSET);
	n->unflushed = false;
	return BS_OK;
}

static int n_size(void *ctx, uint64_t *out)
{
	*out = ((struct nbd_be *)ctx)->size;
	return BS_OK;
}

static void n_close(void *ctx)
{
	struct nbd_be *n = ctx;
	if (n->h) {
		/* A clean disconnect; pending writes were flushed by their calls. */
		if (nbd_aio_is_dead(n->h) != 1)
			nbd_shutdown(n->h, 0);
		nbd_close(n->h);
	}
	bs__blockio_free(&n->io);
	free(n->uri);
	free(n);
}

static const struct bs_backend_ops nbd_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = n_read,
	.write_at = n_write,
	.sync = n_sync,
	.size = n_size,
	.close = n_close,
};

int bs_backend_nbd(const char *uri, unsigned flags, struct bs_backend **out)
{
	if (!uri || !out)
		return bs_error_set("(nbd)", NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "no URI");
	struct nbd_be *n = calloc(1, sizeof *n);
	if (!n || !(n->uri = strdup(uri))) {
		free(n);
		return bs_error_set(uri, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	}
	n->flags = flags;
	n->max_req = NBD_REQ_MAX;
	int rc;
	n->h = nbd_create();
	if (!n->h) {
		rc = nbd_fail(n, "nbd_create", BS_NO_OFFSET);
		goto fail;
	}
	if (nbd_connect_uri(n->h, uri) == -1) {
		rc = nbd_fail(n, "connect", BS_NO_OFFSET);
		if (rc != BS_ENOMEM)
			rc = BS_EIO;
		goto fail;
	}
	int64_t sz = nbd_get_size(n->h);
	if (sz < 0) {
		rc = nbd_fail(n, "nbd_get_size", BS_NO_OFFSET);
		goto fail;
	}
	n->size = (uint64_t)sz;
	if (!(flags & BS_OPEN_RDONLY)) {
		if (nbd_is_read_only(n->h) == 1) {
			rc = bs_error_set(uri, NULL, NULL, BS_NO_OFFSET, BS_ERDONLY, 0,
					 "the server offers this export read-only");
			goto fail;
		}
		if (nbd_can_flush(n->h) != 1 && !(flags & BS_OPEN_NOSYNC)) {
			rc = bs_error_set(uri, NULL, NULL, BS_NO_OFFSET, BS_EUNSUPPORTED, 0,
					 "the server cannot flush this export, so no write "
					 "could be made durable; refused (open with "
					 "BS_OPEN_NOSYNC to accept a non-durable export)");
			goto fail;
		}
		n->can_fua = nbd_can_fua(n->h) == 1;
	}
	int64_t maxb = nbd_get_block_size(n->h, LIBNBD_SIZE_MAXIMUM);
	if (maxb > 0 && (uint64_t)maxb < n->max_req)
		n->max_req = (uint32_t)maxb;
	int64_t minb = nbd_get_block_size(n->h, LIBNBD_SIZE_MINIMUM);
	uint32_t bsz = minb > 1 && minb <= 65536 ? (uint32_t)minb : 1;
	if (bsz > 1) {
		if (bs__blockio_init(&n->io, bsz)) {
			rc = bs_error_set(uri, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
			goto fail;
		}
		n->io.ctx = n;
		n->io.pread = raw_read;
		n->io.pwrite = raw_write;
		n->aligned = true;
		n->size -= n->size % bsz;
		if (n->max_req % bsz)
			n->max_req -= n->max_req % bsz;
	}
	n->connected = true;
	return bs_backend_new(&nbd_ops, n, bsz, out);
fail:
	n_close(n);
	return rc;
}

int bs_nbd_register(void)
{
	static const char *const schemes[] = {"nbd", "nbds", "nbd+unix", "nbds+unix", "nbd+vsock",
					      "nbds+vsock"};
	for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
		int rc = bs_backend_register(schemes[i], bs_backend_nbd);
		if (rc)
			return rc;
	}
	return BS_OK;
}
