/* mem.c - images in memory (bs_backend_mem()).  The tests' backend that
 * injects faults is built on the same public table, in tests/unit/fault.c. */
#include <stdlib.h>
#include <string.h>

#include "storage.h"

struct mem_be {
	uint8_t *buf;
	size_t len, cap;
};

static int m_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct mem_be *m = ctx;
	if (off > m->len || len > m->len - off)
		return bs__error(BS__AT("(memory)"), BS_NO_OFFSET, BS_ECORRUPT,
				   "read past the end of the storage at offset %llu",
				   (unsigned long long)off);
	memcpy(buf, m->buf + off, len);
	return BS_OK;
}

static int grow(struct mem_be *m, uint64_t size)
{
	if (size > BS_MAX_IMAGE_SIZE || size > SIZE_MAX / 2)
		return BS_ENOSPC;
	if (size > m->cap) {
		size_t n = m->cap ? m->cap : 4096;
		while (n < size)
			n *= 2;
		uint8_t *b = realloc(m->buf, n);
		if (!b)
			return BS_ENOMEM;
		m->buf = b;
		m->cap = n;
	}
	if (size > m->len)
		memset(m->buf + m->len, 0, (size_t)size - m->len);
	m->len = (size_t)size;
	return BS_OK;
}

static int m_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct mem_be *m = ctx;
	if (off > UINT64_MAX - len)
		return BS_EINVAL;
	if (off + len > m->len) {
		int rc = grow(m, off + len);
		if (rc)
			return bs__error(BS__AT("(memory)"), BS_NO_OFFSET, rc, "cannot grow to %llu octets",
					   (unsigned long long)(off + len));
	}
	memcpy(m->buf + off, buf, len);
	return BS_OK;
}

static int m_sync(void *ctx)
{
	BS_UNUSED(ctx); /* memory is as durable as it gets */
	return BS_OK;
}

static int m_size(void *ctx, uint64_t *out)
{
	*out = ((struct mem_be *)ctx)->len;
	return BS_OK;
}

static int m_resize(void *ctx, uint64_t size)
{
	struct mem_be *m = ctx;
	if (size <= m->len) {
		m->len = (size_t)size;
		return BS_OK;
	}
	int rc = grow(m, size);
	return rc ? bs__error(BS__AT("(memory)"), BS_NO_OFFSET, rc, "cannot grow") : BS_OK;
}

static int m_replace(void *ctx, const void *img, size_t len)
{
	struct mem_be *m = ctx;
	uint8_t *b = malloc(len ? len : 1);
	if (!b)
		return bs__error(BS__AT("(memory)"), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	memcpy(b, img, len);
	free(m->buf);
	m->buf = b;
	m->len = m->cap = len;
	return BS_OK;
}

static void m_close(void *ctx)
{
	struct mem_be *m = ctx;
	free(m->buf);
	free(m);
}

static const struct bs_backend_ops mem_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = m_read,
	.write_at = m_write,
	.sync = m_sync,
	.size = m_size,
	.resize = m_resize,
	.replace = m_replace,
	.close = m_close,
};

static int make(const void *init, size_t len, struct mem_be **out)
{
	struct mem_be *m = calloc(1, sizeof *m);
	if (!m || grow(m, len)) {
		free(m);
		return bs__error(BS__AT("(memory)"), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	if (len)
		memcpy(m->buf, init, len);
	*out = m;
	return BS_OK;
}

int bs_backend_mem(const void *init, size_t len, struct bs_backend **out)
{
	struct mem_be *m = NULL;
	if (!out || (len && !init))
		return bs__error(BS__AT("(memory)"), BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	int rc = make(init, len, &m);
	return rc ? rc : bs_backend_new(&mem_ops, m, 1, out);
}

const uint8_t *bs_backend_mem_data(const struct bs_backend *be, size_t *len)
{
	const struct mem_be *m = bs_backend_ctx(be, &mem_ops);
	if (!m || !len)
		return NULL;
	*len = m->len;
	return m->buf;
}

