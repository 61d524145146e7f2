/* scan.c - reading the directory: one pass over every entry's head, data
 * skipped by length, then the index (interrupted rewrites resolved,
 * duplicates refused, the lookup table filled). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"

/* A window over the storage (or over a memory copy of the image). */
struct reader {
	bs_image *img;
	const uint8_t *mem;           /* whole image in memory, or NULL */
	struct bs__parse_memo *memo;  /* metas in the image's pool, or NULL */
	uint8_t *buf;
	size_t cap, len;
	uint64_t start;
};

/* Small enough that a large entry's data costs at most this much extra
 * reading, large enough that small entries cost few reads. */
#define READ_WINDOW (1u << 16)

static bool reader_has(const struct reader *r, uint64_t off, size_t n)
{
	return r->mem || (off >= r->start && off - r->start <= r->len &&
			  n <= r->len - (off - r->start));
}

/* Makes [off, off+n) available; n must not pass the image's end. */
static int reader_get(struct reader *r, uint64_t off, size_t n, const uint8_t **p)
{
	if (r->mem) {
		*p = r->mem + off;
		return BS_OK;
	}
	if (reader_has(r, off, n)) {
		*p = r->buf + (off - r->start);
		return BS_OK;
	}
	size_t want = n > READ_WINDOW ? n : READ_WINDOW;
	if (want > r->img->io.size - off)
		want = (size_t)(r->img->io.size - off);
	if (want > r->cap) {
		uint8_t *b = realloc(r->buf, want);
		if (!b)
			return bs__err(r->img, NULL, off, BS_ENOMEM, "out of memory");
		r->buf = b;
		r->cap = want;
	}
	r->len = 0;
	int rc = bs__io_read(&r->img->io, NULL, r->buf, want, off);
	if (rc)
		return rc;
	r->start = off;
	r->len = want;
	*p = r->buf;
	return BS_OK;
}

/* Decodes the entry at OFF; *OUT gets it (maybe refused). */
static int scan_entry(struct reader *r, uint64_t off, bs_entry **out)
{
	bs_image *img = r->img;
	uint64_t avail = img->io.size - off;
	size_t head_len = avail < 512 ? (size_t)avail : 512;
	struct bs__layout lay;
	const char *why;
	const uint8_t *p;
	int rc;
	for (;;) {
		rc = reader_get(r, off, head_len, &p);
		if (rc)
			return rc;
		rc = bs__entry_layout(p, head_len, avail, &lay, &why);
		if (rc != BS_ERANGE)
			break;
		if (lay.head_need <= head_len)
			return bs__err(img, NULL, off, BS_ECORRUPT, "entry header cannot be read");
		head_len = lay.head_need;
	}
	if (rc)
		return bs__err(img, NULL, off, rc, "%s", why);
	bs_entry *e = bs__entry_new(img);
	if (!e)
		return bs__err(img, NULL, off, BS_ENOMEM, "out of memory");
	e->off = off;
	e->size = lay.size;
	*out = e;
	if (why) {
		/* The Entry's extent is known but its inside is not usable. */
		e->m = calloc(1, sizeof *e->m);
		e->status = BS_ECORRUPT;
		e->status_msg = strdup(why);
		if (!e->m || !e->status_msg)
			return bs__err(img, NULL, off, BS_ENOMEM, "out of memory");
		return BS_OK;
	}
	uint8_t tail[6 + BS_MAX_NAME_LEN];
	const uint8_t *tp;
	if (lay.tail_len > sizeof tail)
		lay.tail_len = sizeof tail; /* parse reports the trailing octets */
	if (lay.tail_len) {
		uint64_t toff = off + lay.data_rel + lay.data_len;
		if (reader_has(r, toff, lay.tail_len)) {
			rc = reader_get(r, toff, lay.tail_len, &tp);
			if (!rc)
				memcpy(tail, tp, lay.tail_len);
		} else {
			/* Past a large data area: read just the tail and keep the
			 * window on the head, which is needed again below. */
			rc = bs__io_read(&img->io, NULL, tail, lay.tail_len, toff);
		}
		if (rc)
			return rc;
	}
	rc = reader_get(r, off, lay.head_need, &p);
	if (rc)
		return rc;
	if (img->flags & BS_OPEN_RDONLY) {
		/* Through the data header: type, name, attributes, data length. */
		size_t hl = lay.data_rel < lay.head_need ? (size_t)lay.data_rel : lay.head_need;
		e->head_len = (uint32_t)hl;
		e->head_crc = bs__crc32c(0, p, hl);
	}
	uint64_t bad_rel = 0;
	struct bs__decoded d;
	rc = bs__entry_parse(p, tail, &lay, &d, &why, &bad_rel, r->memo);
	bs__entry_take(e, &d);
	e->data_off = off + lay.data_rel;
	e->data_len = lay.data_len;
	if (rc)
		return bs__err(img, NULL, off, rc, "out of memory");
	/* Hashed now, while type and name are in the cache. */
	if (e->m->type)
		e->khash = bs__key_hash(e->m->type, e->m->name);
	return BS_OK;
}

int bs__head_same(bs_image *img, const bs_entry *e, bool *same)
{
	*same = true;
	if (!e->head_len)
		return BS_OK;
	uint8_t small[512], *h = e->head_len <= sizeof small ? small : malloc(e->head_len);
	if (!h)
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	int rc = bs__io_read(&img->io, NULL, h, e->head_len, e->off);
	*same = !rc && bs__crc32c(0, h, e->head_len) == e->head_crc;
	if (h != small)
		free(h);
	/* Storage that shrank under the entry (a file cut by a compaction)
	 * reads past its end: the entry moved, too. */
	return rc == BS_ECORRUPT ? BS_OK : rc;
}

/* What a scan hands to the index: every keyed entry with its hash, in
 * directory order, so that building the table touches no entry. */
struct keylist {
	struct bs__hslot *v;
	size_t n, cap;
	size_t nsupersedes; /* entries with a bs.supersedes */
};

static int keylist_push(struct keylist *k, bs_entry *e)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 256;
		struct bs__hslot *v = realloc(k->v, cap * sizeof *v);
		if (!v)
			return BS_ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n].h = e->khash;
	k->v[k->n++].e = e;
	if (e->supersedes != UINT64_MAX)
		k->nsupersedes++;
	return BS_OK;
}

/* Index of the entry starting at OFF (the list is in offset order after a
 * scan), or SIZE_MAX. */
static size_t find_offset(const bs_image *img, uint64_t off)
{
	size_t lo = 0, hi = img->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (img->list[mid]->off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < img->count && img->list[lo]->off == off ? lo : SIZE_MAX;
}

/* After a scan: hide copies replaced by a rewrite that a crash interrupted,
 * refuse duplicates, fill the lookup table. */
static int index_entries(bs_image *img, const struct keylist *keys)
{
	bs_entry **hidden = NULL;
	size_t nhidden = 0;
	/* Only a rewrite that a crash interrupted leaves a superseded copy:
	 * the two passes over every entry run only when the scan saw an entry
	 * that supersedes another. */
	for (size_t i = 0; keys->nsupersedes && i < img->count; i++) {
		bs_entry *e = img->list[i];
		/* An entry refused only for an unknown mandatory attribute is
		 * sound: its bs.supersedes counts (it may be a device's entry). */
		if (e->supersedes == UINT64_MAX ||
		    (e->status && !(e->m && e->m->unknown_mandatory)))
			continue;
		size_t j = find_offset(img, e->supersedes);
		if (j != SIZE_MAX && j < i && bs__same_key(img->list[j], e->m->type, e->m->name)) {
			img->list[j]->superseded = true;
			nhidden++;
		}
	}
	if (nhidden) {
		/* Drop superseded copies from the list (a writer deletes them below). */
		if (!(hidden = malloc(nhidden * sizeof *hidden)))
			return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		size_t k = 0, h = 0;
		for (size_t i = 0; i < img->count; i++) {
			bs_entry *e = img->list[i];
			if (e->superseded) {
				hidden[h++] = e;
				continue;
			}
			e->index = k;
			img->list[k++] = e;
		}
		img->count = k;
	}
	/* The table from the keys the scan hashed, in directory order, each
	 * slot fetched a few keys ahead: a big table is a cache miss per key. */
	int rc = bs__table_grow(img, keys->n + 1);
	size_t mask = img->hash_size - 1;
	for (size_t i = 0; !rc && i < keys->n; i++) {
		if (i + 8 < keys->n)
			__builtin_prefetch(&img->hash[keys->v[i + 8].h & mask]);
		bs_entry *e = keys->v[i].e;
		if (nhidden && e->superseded)
			continue;
		bs_entry *d = bs__table_find_like(img, keys->v[i].h, e);
		bool same = true;
		if (d && (img->flags & BS_OPEN_RDONLY) && !bs__head_same(img, d, &same) && !same) {
			/* Not a duplicate: a writer deleted D after this reader's
			 * scan passed it, and created the entry again at the end
			 * before the scan got there.  The open scans again. */
			img->torn = true;
		}
		if (d) {
			char msg[160];
			snprintf(msg, sizeof msg, "duplicate entry (also at offset %llu)",
				 (unsigned long long)d->off);
			if (!d->status) {
				d->status = BS_ECORRUPT;
				free(d->status_msg);
				d->status_msg = malloc(160);
				if (d->status_msg)
					snprintf(d->status_msg, 160,
						 "duplicate entry (also at offset %llu)",
						 (unsigned long long)e->off);
			}
			e->status = BS_ECORRUPT;
			free(e->status_msg);
			e->status_msg = strdup(msg);
			continue;
		}
		bs__table_put(img, keys->v[i].h, e);
	}
	if (rc)
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	img->superseded_pending = nhidden;
	/* A writer finishes the interrupted rewrites now. */
	for (size_t i = 0; i < nhidden; i++) {
		if (!rc && !(img->flags & BS_OPEN_RDONLY)) {
			rc = bs__dir_delete_at(img, hidden[i]);
			if (!rc)
				img->superseded_pending--;
		}
		bs__entry_free(img, hidden[i]);
	}
	free(hidden);
	return rc;
}

/* How far past the end-of-contents of a file tail_look() looks. */
#define TAIL_LOOK (4u << 20)

/* After the directory of a file: whether what follows its end-of-contents
 * reads as more directory where no append puts any (docs/FORMAT.md, "What
 * follows the end-of-contents").  An append writes its entry right after
 * the old end-of-contents, followed by 00 00, so an uncommitted one is an
 * entry there and an end-of-contents after it.  An entry behind zeros, pads
 * or free elements, or one right there but followed by more than an
 * end-of-contents, is what damage that forged an early end leaves (a flipped
 * bit in the length of a zero-filled free element of an old image): its
 * offset goes to IMG->tail_entry.  Looks at most TAIL_LOOK octets; fixed
 * storage keeps stale copies past the end and is not looked at. */
static int tail_look(struct reader *r)
{
	bs_image *img = r->img;
	img->tail_entry = 0;
	if (r->mem || !img->io.be->ops->resize)
		return BS_OK;
	uint64_t size = img->io.size, pos = img->dir_end;
	uint64_t lim = size - pos > TAIL_LOOK ? pos + TAIL_LOOK : size;
	bool direct = true;
	const uint8_t *p = NULL;
	int rc;
	while (pos < lim) {
		size_t k = lim - pos < 4096 ? (size_t)(lim - pos) : 4096;
		if ((rc = reader_get(r, pos, k, &p)))
			return rc;
		size_t z = 0;
		while (z < k && !p[z])
			z++;
		if (z) {
			pos += z;
			direct = false;
			continue;
		}
		if (p[0] == DER_NULL && k >= 2 && !p[1]) {
			pos += 2;
		} else if (p[0] == DER_OCTET_STRING) {
			struct bs__tlv t;
			if (bs__der_header_prefix(p, k, &t) || t.len > size - pos - t.hdr)
				return BS_OK;
			pos += t.hdr + t.len;
		} else {
			break;
		}
		direct = false;
	}
	if (pos >= lim || p[0] != DER_SEQUENCE)
		return BS_OK;
	/* An entry that passes the strict parse of every entry? */
	uint64_t avail = size - pos;
	size_t head_len = avail < 512 ? (size_t)avail : 512;
	struct bs__layout lay;
	const char *why;
	for (;;) {
		if ((rc = reader_get(r, pos, head_len, &p)))
			return rc;
		rc = bs__entry_layout(p, head_len, avail, &lay, &why);
		if (rc != BS_ERANGE)
			break;
		if (lay.head_need <= head_len || lay.head_need > avail)
			return BS_OK;
		head_len = lay.head_need;
	}
	uint8_t tail[6 + BS_MAX_NAME_LEN];
	if (rc || why || lay.tail_len > sizeof tail)
		return BS_OK;
	if (lay.tail_len &&
	    (rc = bs__io_read(&img->io, NULL, tail, lay.tail_len, pos + lay.data_rel + lay.data_len)))
		return rc;
	if ((rc = reader_get(r, pos, lay.head_need, &p)))
		return rc;
	struct bs__decoded d;
	uint64_t bad;
	rc = bs__entry_parse(p, tail, &lay, &d, &why, &bad, NULL);
	bool entry = !rc && (!d.status || (d.m && d.m->unknown_mandatory));
	bs__meta_free(d.m);
	free(d.status_msg);
	if (rc)
		return bs__err(img, NULL, pos, rc, "out of memory");
	if (!entry)
		return BS_OK;
	if (direct) {
		/* Right after the end: an append that did not commit, unless more
		 * than its end-of-contents follows it. */
		uint64_t end = pos + lay.size;
		if (size - end < 2)
			return BS_OK;
		if ((rc = reader_get(r, end, 2, &p)))
			return rc;
		if (!p[0] && !p[1])
			return BS_OK;
	}
	img->tail_entry = pos;
	return BS_OK;
}

int bs__scan(bs_image *img, const uint8_t *mem, bool index)
{
	struct bs__parse_memo memo = {.pool = &img->pool};
	struct reader r = {.img = img, .mem = mem, .memo = index ? &memo : NULL};
	struct keylist keys = {0};
	const uint8_t *p;
	int rc;
	uint64_t pos = 2, size = img->io.size;
	img->holes = 0;
	if (index && img->hash_used) {
		/* A reader's scan again after the storage grew under it. */
		memset(img->hash, 0, img->hash_size * sizeof *img->hash);
		img->hash_used = 0;
	}
	for (;;) {
		if (size - pos < 2) {
			rc = bs__err(img, NULL, pos, BS_ECORRUPT,
				     "directory has no end-of-contents (truncated image?)");
			goto out;
		}
		size_t peek = size - pos < 16 ? (size_t)(size - pos) : 16;
		rc = reader_get(&r, pos, peek, &p);
		if (rc)
			goto out;
		if (p[0] == 0) {
			if (p[1] != 0) {
				rc = bs__err(img, NULL, pos, BS_ECORRUPT,
					     "malformed end-of-contents (00 %02x)", p[1]);
				goto out;
			}
			img->dir_end = pos + 2;
			break;
		}
		if (p[0] == DER_NULL) {
			/* The pad an append leaves behind: exactly "05 00". */
			if (p[1] != 0) {
				rc = bs__err(img, NULL, pos, BS_ECORRUPT,
					     "malformed pad element (05 %02x)", p[1]);
				goto out;
			}
			img->holes += 2;
			pos += 2;
			continue;
		}
		if (p[0] == DER_OCTET_STRING) {
			struct bs__tlv t;
			const char *w = bs__der_header_prefix(p, peek, &t);
			if (!w && t.len > size - pos - t.hdr)
				w = "free element runs past the end of the image";
			if (w) {
				rc = bs__err(img, NULL, pos, BS_ECORRUPT, "free element: %s", w);
				goto out;
			}
			img->holes += t.hdr + t.len;
			pos += t.hdr + t.len;
			continue;
		}
		if (img->count >= BS_MAX_ENTRIES) {
			rc = bs__err(img, NULL, pos, BS_ELIMIT, "more than %u entries",
				     BS_MAX_ENTRIES);
			goto out;
		}
		bs_entry *e = NULL;
		rc = scan_entry(&r, pos, &e);
		if (!rc)
			rc = bs__list_push(img, e);
		if (!rc && index && e->khash && keylist_push(&keys, e)) {
			e = NULL; /* listed: freed with the others */
			rc = bs__err(img, NULL, pos, BS_ENOMEM, "out of memory");
		}
		if (rc) {
			bs__entry_free(img, e);
			goto out;
		}
		pos += e->size;
	}
	if ((rc = tail_look(&r)))
		goto out;
	if (index) {
		/* The first entry is the image's own; its bs.id is the image's. */
		if (!img->count || img->list[0]->status || !img->list[0]->m->type ||
		    strcmp(img->list[0]->m->type, BS_TYPE_IMAGE)) {
			rc = bs__err(img, NULL, 2, BS_ECORRUPT,
				     "not a blobstore image: the first entry is not a valid bs.image entry");
			goto out;
		}
		rc = index_entries(img, &keys);
	}
out:
	free(keys.v);
	free(r.buf);
	return rc;
}
