/* backend_mem.c - images in memory, and the fault-injecting test backend
 * that crash simulation and I/O-error tests run on. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct mem_be {
	struct bs_backend be;
	uint8_t *buf;
	size_t len, cap;
	/* fault injection */
	bool fault;
	struct bs_fault_plan plan;
	struct bs_fault_stats st;
	uint64_t ops; /* writes and syncs, for fail_at */
};

static int m_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct mem_be *m = ctx;
	if (off > m->len || len > m->len - off)
		return bs__err_key("(memory)", NULL, NULL, BS_ECORRUPT,
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
	if (m->fault) {
		if (m->st.crashed)
			return bs__err_key("(memory)", NULL, NULL, BS_EIO, "power lost (simulated)");
		m->ops++;
		if (m->plan.fail_at && m->ops == m->plan.fail_at)
			return bs__err_key("(memory)", NULL, NULL, m->plan.fail_code ? m->plan.fail_code : BS_EIO,
					   "injected failure of write %llu",
					   (unsigned long long)m->st.writes + 1);
		m->st.writes++;
		if (m->plan.crash_after && m->st.writes == m->plan.crash_after) {
			m->st.crashed = 1;
			if (m->plan.tear_at != SIZE_MAX && m->plan.tear_at < len)
				len = m->plan.tear_at;
			if (len && (off > UINT64_MAX - len || grow(m, off + len > m->len ? off + len : m->len)))
				return BS_ENOSPC;
			memcpy(m->buf + off, buf, len);
			m->st.bytes_written += len;
			return bs__err_key("(memory)", NULL, NULL, BS_EIO, "power lost (simulated)");
		}
	}
	if (off > UINT64_MAX - len)
		return BS_EINVAL;
	if (off + len > m->len) {
		int rc = grow(m, off + len);
		if (rc)
			return bs__err_key("(memory)", NULL, NULL, rc, "cannot grow to %llu octets",
					   (unsigned long long)(off + len));
	}
	memcpy(m->buf + off, buf, len);
	if (m->fault)
		m->st.bytes_written += len;
	return BS_OK;
}

static int m_sync(void *ctx)
{
	struct mem_be *m = ctx;
	if (m->fault) {
		if (m->st.crashed)
			return bs__err_key("(memory)", NULL, NULL, BS_EIO, "power lost (simulated)");
		m->ops++;
		if (m->plan.fail_at && m->ops == m->plan.fail_at)
			return bs__err_key("(memory)", NULL, NULL, m->plan.fail_code ? m->plan.fail_code : BS_EIO,
					   "injected failure of sync");
		m->st.syncs++;
	}
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
	if (m->fault && m->st.crashed)
		return bs__err_key("(memory)", NULL, NULL, BS_EIO, "power lost (simulated)");
	if (size <= m->len) {
		m->len = (size_t)size;
		return BS_OK;
	}
	int rc = grow(m, size);
	return rc ? bs__err_key("(memory)", NULL, NULL, rc, "cannot grow") : BS_OK;
}

static int m_replace(void *ctx, const void *img, size_t len)
{
	struct mem_be *m = ctx;
	if (m->fault) {
		/* One atomic step, counted as one write: all or nothing. */
		if (m->st.crashed)
			return bs__err_key("(memory)", NULL, NULL, BS_EIO, "power lost (simulated)");
		m->ops++;
		if (m->plan.fail_at && m->ops == m->plan.fail_at)
			return bs__err_key("(memory)", NULL, NULL, BS_EIO, "injected failure of replace");
		m->st.writes++;
		if (m->plan.crash_after && m->st.writes == m->plan.crash_after) {
			m->st.crashed = 1;
			return bs__err_key("(memory)", NULL, NULL, BS_EIO, "power lost (simulated)");
		}
	}
	uint8_t *b = malloc(len ? len : 1);
	if (!b)
		return bs__err_key("(memory)", NULL, NULL, BS_ENOMEM, "out of memory");
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
		return bs__err_key("(memory)", NULL, NULL, BS_ENOMEM, "out of memory");
	}
	if (len)
		memcpy(m->buf, init, len);
	m->be.ops = &mem_ops;
	m->be.ctx = m;
	m->be.block_size = 1;
	*out = m;
	return BS_OK;
}

int bs_backend_mem(const void *init, size_t len, struct bs_backend **out)
{
	struct mem_be *m;
	*out = NULL;
	int rc = make(init, len, &m);
	if (!rc)
		*out = &m->be;
	return rc;
}

const uint8_t *bs_backend_mem_data(const struct bs_backend *be, size_t *len)
{
	const struct mem_be *m = be->ctx;
	*len = m->len;
	return m->buf;
}

int bs_backend_fault(const void *init, size_t len, const struct bs_fault_plan *plan,
		     struct bs_backend **out)
{
	struct mem_be *m;
	*out = NULL;
	int rc = make(init, len, &m);
	if (rc)
		return rc;
	m->fault = true;
	if (plan)
		m->plan = *plan;
	else
		m->plan.tear_at = SIZE_MAX;
	*out = &m->be;
	return BS_OK;
}

void bs_backend_fault_stats(const struct bs_backend *be, struct bs_fault_stats *out)
{
	*out = ((const struct mem_be *)be->ctx)->st;
}
