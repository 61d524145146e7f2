/* fault.c - the fault-injecting memory backend of the tests (fault.h),
 * built on the public backend table like any backend outside the
 * library. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/sys/backend.h>

#include "fault.h"

struct mem_be {
	uint8_t *buf;
	size_t len, cap;
	/* fault injection */
	bool fault;
	struct fault_plan plan;
	struct fault_stats st;
	uint64_t ops; /* writes and syncs, for fail_at */
	/* power-loss journal (plan.journal): the content as of the last
	 * completed sync, and every change made since, in issue order */
	uint8_t *dur;
	size_t dur_len;
	struct pend *pend;
	size_t npend, pend_cap;
};

struct pend {
	struct fault_write w;
	uint8_t *data; /* WRITE and REPLACE: the octets asked for */
};

static void journal_clear(struct mem_be *m)
{
	for (size_t i = 0; i < m->npend; i++)
		free(m->pend[i].data);
	m->npend = 0;
}

/* Records a change (before it takes effect).  Out of memory the journal is
 * marked lost and the later power-loss replay refuses to run. */
static void journal_add(struct mem_be *m, int kind, uint64_t off, const void *data, size_t len)
{
	if (!m->plan.journal || m->st.journal_lost)
		return;
	if (m->npend == m->pend_cap) {
		size_t nc = m->pend_cap ? 2 * m->pend_cap : 16;
		struct pend *np = realloc(m->pend, nc * sizeof *np);
		if (!np) {
			m->st.journal_lost = 1;
			return;
		}
		m->pend = np;
		m->pend_cap = nc;
	}
	struct pend *p = &m->pend[m->npend];
	p->w = (struct fault_write){.kind = kind, .off = off, .len = len};
	p->data = NULL;
	if (data) {
		p->data = malloc(len ? len : 1);
		if (!p->data) {
			m->st.journal_lost = 1;
			return;
		}
		if (len)
			memcpy(p->data, data, len);
	}
	m->npend++;
}

static int replay(const struct mem_be *m, const size_t *order, const struct fault_fate *fates,
		  uint8_t **out, size_t *out_len);

/* Whether the operation just counted is one the plan fails. */
static bool failing(const struct mem_be *m)
{
	uint64_t n = m->plan.fail_count ? m->plan.fail_count : 1;
	return m->plan.fail_at && m->ops >= m->plan.fail_at && m->ops - m->plan.fail_at < n;
}

/* A sync completed: everything pending is durable (what a lossy failed
 * sync dropped is not: the durable content is rebuilt from the changes,
 * not copied from what reads return). */
static void journal_synced(struct mem_be *m)
{
	if (!m->plan.journal || m->st.journal_lost)
		return;
	struct fault_fate *all = malloc((m->npend ? m->npend : 1) * sizeof *all);
	uint8_t *d = NULL;
	size_t dl = 0;
	if (all)
		for (size_t i = 0; i < m->npend; i++)
			all[i] = (struct fault_fate){FATE_WHOLE, 0};
	if (!all || replay(m, NULL, all, &d, &dl)) {
		free(all);
		m->st.journal_lost = 1;
		return;
	}
	free(all);
	free(m->dur);
	m->dur = d;
	m->dur_len = dl;
	journal_clear(m);
}

static int m_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct mem_be *m = ctx;
	if (off > m->len || len > m->len - off)
		return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
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
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "power lost (simulated)");
		m->ops++;
		if (failing(m)) {
			/* Cut short: what fitted is there, and nothing says so. */
			size_t k = m->plan.fail_written < len ? m->plan.fail_written : len;
			if (k && off <= UINT64_MAX - k &&
			    !grow(m, off + k > m->len ? off + k : m->len)) {
				journal_add(m, FAULT_WRITE, off, buf, k);
				memcpy(m->buf + off, buf, k);
			}
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET,
					    m->plan.fail_code ? m->plan.fail_code : BS_EIO, 0,
					   "injected failure of write %llu",
					   (unsigned long long)m->st.writes + 1);
		}
		m->st.writes++;
		journal_add(m, FAULT_WRITE, off, buf, len);
		if (m->plan.crash_after && m->st.writes == m->plan.crash_after) {
			m->st.crashed = 1;
			if (m->plan.tear_at != SIZE_MAX && m->plan.tear_at < len)
				len = m->plan.tear_at;
			if (len && (off > UINT64_MAX - len || grow(m, off + len > m->len ? off + len : m->len)))
				return BS_ENOSPC;
			memcpy(m->buf + off, buf, len);
			m->st.bytes_written += len;
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "power lost (simulated)");
		}
	}
	if (off > UINT64_MAX - len)
		return BS_EINVAL;
	if (off + len > m->len) {
		int rc = grow(m, off + len);
		if (rc)
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, rc, 0, "cannot grow to %llu octets",
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
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "power lost (simulated)");
		m->ops++;
		if (failing(m)) {
			if (m->plan.lossy_sync && m->plan.journal)
				journal_clear(m); /* never durable now */
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET,
					    m->plan.fail_code ? m->plan.fail_code : BS_EIO, 0,
					   "injected failure of sync");
		}
		m->st.syncs++;
		journal_synced(m);
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
		return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "power lost (simulated)");
	if (m->fault)
		journal_add(m, FAULT_RESIZE, size, NULL, 0);
	if (size <= m->len) {
		m->len = (size_t)size;
		return BS_OK;
	}
	int rc = grow(m, size);
	return rc ? bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, rc, 0, "cannot grow") : BS_OK;
}

static int m_replace(void *ctx, const void *img, size_t len)
{
	struct mem_be *m = ctx;
	if (m->fault) {
		/* One atomic step, counted as one write: all or nothing. */
		if (m->st.crashed)
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "power lost (simulated)");
		m->ops++;
		if (failing(m))
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET,
					    m->plan.fail_code ? m->plan.fail_code : BS_EIO, 0,
					   "injected failure of replace");
		m->st.writes++;
		journal_add(m, FAULT_REPLACE, 0, img, len);
		if (m->plan.crash_after && m->st.writes == m->plan.crash_after) {
			m->st.crashed = 1;
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "power lost (simulated)");
		}
	}
	uint8_t *b = malloc(len ? len : 1);
	if (!b)
		return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	memcpy(b, img, len);
	free(m->buf);
	m->buf = b;
	m->len = m->cap = len;
	if (m->fault)
		journal_synced(m); /* durable on return, like the file's rename */
	return BS_OK;
}

static void m_close(void *ctx)
{
	struct mem_be *m = ctx;
	journal_clear(m);
	free(m->pend);
	free(m->dur);
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
		return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	}
	if (len)
		memcpy(m->buf, init, len);
	*out = m;
	return BS_OK;
}

int fault_backend_new(const void *init, size_t len, const struct fault_plan *plan,
		     struct bs_backend **out)
{
	struct mem_be *m = NULL;
	*out = NULL;
	int rc = make(init, len, &m);
	if (rc)
		return rc;
	m->fault = true;
	if (plan)
		m->plan = *plan;
	else
		m->plan.tear_at = SIZE_MAX;
	if (m->plan.journal) {
		m->dur = malloc(len ? len : 1);
		if (!m->dur) {
			m_close(m);
			return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
		}
		if (len)
			memcpy(m->dur, init, len);
		m->dur_len = len;
	}
	return bs_backend_new(&mem_ops, m, 1, out);
}

const uint8_t *fault_backend_data(const struct bs_backend *be, size_t *len)
{
	const struct mem_be *m = bs_backend_ctx(be, &mem_ops);
	if (!m)
		return NULL;
	*len = m->len;
	return m->buf;
}

void fault_backend_stats(const struct bs_backend *be, struct fault_stats *out)
{
	*out = ((const struct mem_be *)bs_backend_ctx(be, &mem_ops))->st;
}

size_t fault_backend_pending(const struct bs_backend *be, struct fault_write *out,
				size_t max)
{
	const struct mem_be *m = bs_backend_ctx(be, &mem_ops);
	for (size_t i = 0; i < m->npend && i < max; i++)
		out[i] = m->pend[i].w;
	return m->npend;
}

/* Sets the length of D to N, new octets zero. */
static int pl_size(uint8_t **d, size_t *len, size_t *cap, uint64_t n)
{
	if (n > SIZE_MAX / 2)
		return BS_ENOSPC;
	if (n > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < n)
			c *= 2;
		uint8_t *b = realloc(*d, c);
		if (!b)
			return BS_ENOMEM;
		*d = b;
		*cap = c;
	}
	if (n > *len)
		memset(*d + *len, 0, (size_t)n - *len);
	*len = (size_t)n;
	return BS_OK;
}

/* Applies octets [FROM, TO) of write P to D. */
static int pl_apply(uint8_t **d, size_t *len, size_t *cap, const struct pend *p, size_t from,
		    size_t to)
{
	if (from >= to)
		return BS_OK;
	uint64_t end = p->w.off + to;
	if (end > *len) {
		int rc = pl_size(d, len, cap, end);
		if (rc)
			return rc;
	}
	memcpy(*d + p->w.off + from, p->data + from, to - from);
	return BS_OK;
}

int fault_backend_powerloss(const struct bs_backend *be, const size_t *order,
			       const struct fault_fate *fates, uint8_t **out, size_t *out_len)
{
	const struct mem_be *m = bs_backend_ctx(be, &mem_ops);
	*out = NULL;
	*out_len = 0;
	if (!m->fault || !m->plan.journal || m->st.journal_lost)
		return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				   "power-loss replay needs a fault backend with a complete journal");
	return replay(m, order, fates, out, out_len);
}

/* The durable content with the pending changes applied as FATES say. */
static int replay(const struct mem_be *m, const size_t *order, const struct fault_fate *fates,
		  uint8_t **out, size_t *out_len)
{
	size_t len = m->dur_len, cap = len ? len : 1;
	uint8_t *d = malloc(cap);
	if (!d)
		return BS_ENOMEM;
	if (len)
		memcpy(d, m->dur, len);
	int rc = BS_OK;
	for (size_t k = 0; k < m->npend && !rc; k++) {
		size_t i = order ? order[k] : k;
		if (i >= m->npend) {
			rc = BS_EINVAL;
			break;
		}
		const struct pend *p = &m->pend[i];
		struct fault_fate f = fates ? fates[i] : (struct fault_fate){FATE_LOST, 0};
		if (f.fate == FATE_LOST)
			continue;
		if (p->w.kind == FAULT_RESIZE) {
			rc = pl_size(&d, &len, &cap, p->w.off);
			continue;
		}
		if (p->w.kind == FAULT_REPLACE) {
			/* Atomic: whole or not at all. */
			rc = pl_size(&d, &len, &cap, 0);
			if (!rc)
				rc = pl_apply(&d, &len, &cap, p, 0, p->w.len);
			continue;
		}
		size_t n = p->w.len;
		switch (f.fate) {
		case FATE_WHOLE:
			rc = pl_apply(&d, &len, &cap, p, 0, n);
			break;
		case FATE_PREFIX:
			rc = pl_apply(&d, &len, &cap, p, 0, f.arg < n ? (size_t)f.arg : n);
			break;
		case FATE_SECTORS: {
			/* Sectors are 512-octet units of the storage, counted from
			 * the one holding the write's first octet. */
			size_t from = 0;
			for (unsigned k2 = 0; from < n; k2++) {
				size_t to = (size_t)(((p->w.off + from) / 512 + 1) * 512 - p->w.off);
				if (to > n)
					to = n;
				if ((f.arg >> (k2 % 64)) & 1)
					rc = pl_apply(&d, &len, &cap, p, from, to);
				if (rc)
					break;
				from = to;
			}
			break;
		}
		case FATE_ZEROS:
			/* The size grew, the data did not arrive. */
			if (p->w.off + n > len)
				rc = pl_size(&d, &len, &cap, p->w.off + n);
			break;
		default:
			rc = BS_EINVAL;
		}
	}
	if (rc) {
		free(d);
		return bs_error_set("(memory)", NULL, NULL, BS_NO_OFFSET, rc, 0, "power-loss replay failed");
	}
	*out = d;
	*out_len = len;
	return BS_OK;
}
