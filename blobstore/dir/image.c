/* image.c - the directory: open, scan, append, delete, rewrite, compact.
 *
 * On storage an image is
 *   31 80  element*  00 00  [unused octets]
 * where each element is an Entry (tag 30) or free space (an OCTET STRING,
 * tag 04).  Directory changes commit with a single-octet write:
 *  - append writes "entry 00 00" just past the end-of-contents, syncs, then
 *    turns the old end-of-contents 00 00 into the empty OCTET STRING 04 00;
 *  - delete turns the entry's tag 30 into 04, so the whole entry becomes
 *    free space of the same length;
 *  - rewrite appends a new copy carrying bs.supersedes = old offset, then
 *    deletes the old copy; a reader that finds both takes the new one.
 * See docs/FORMAT.md for the argument. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "internal.h"

/* ---- storage access with error context ----------------------------------- */

/* A backend's message without the label it may start with (the image's
 * own message names the image already). */
static const char *backend_msg(const bs_image *img)
{
	const char *m = bs_errmsg();
	size_t n = strlen(img->label);
	if (!strncmp(m, img->label, n) && m[n] == ':' && m[n + 1] == ' ')
		return m + n + 2;
	return m;
}

int bs__read(bs_image *img, const bs_entry *e, void *buf, size_t len, uint64_t off)
{
	int rc = img->be->ops->read_at(img->be->ctx, buf, len, off + img->base);
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", backend_msg(img));
		return bs__err(img, e, off, rc, "read of %zu octets failed: %s", len, msg);
	}
	return BS_OK;
}

int bs__write(bs_image *img, const bs_entry *e, const void *buf, size_t len, uint64_t off)
{
	/* Fixed-size storage: the image stops where the recovery area starts. */
	if (img->fixed && (off > img->size || len > img->size - off))
		return bs__err(img, e, off, BS_ENOSPC,
			       "the image would outgrow its fixed-size storage (%llu octets for "
			       "the image, storage does not grow): delete or compact entries",
			       (unsigned long long)img->size);
	int rc = img->be->ops->write_at(img->be->ctx, buf, len, off);
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", backend_msg(img));
		return bs__err(img, e, off, rc, "write of %zu octets failed: %s", len, msg);
	}
	if (off + len > img->size)
		img->size = off + len;
	return BS_OK;
}

int bs__write2(bs_image *img, const bs_entry *e, const void *a, size_t alen, const void *b,
	       size_t blen, uint64_t off)
{
	if (!img->be->ops->writev_at) {
		uint8_t *buf = malloc(alen + blen ? alen + blen : 1);
		if (!buf)
			return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		memcpy(buf, a, alen);
		if (blen)
			memcpy(buf + alen, b, blen);
		int rc = bs__write(img, e, buf, alen + blen, off);
		free(buf);
		return rc;
	}
	struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
	int rc = img->be->ops->writev_at(img->be->ctx, iov, blen ? 2 : 1, off);
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", backend_msg(img));
		return bs__err(img, e, off, rc, "write of %zu octets failed: %s", alen + blen, msg);
	}
	if (off + alen + blen > img->size)
		img->size = off + alen + blen;
	return BS_OK;
}

int bs__sync(bs_image *img)
{
	if (img->flags & BS_OPEN_NOSYNC)
		return BS_OK;
	int rc = img->be->ops->sync(img->be->ctx);
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", backend_msg(img));
		return bs__err(img, NULL, BS_NO_OFFSET, rc, "sync failed: %s", msg);
	}
	return BS_OK;
}

/* ---- the lookup table ---------------------------------------------------- */

/* Eight octets at a time: open hashes every key, and a byte-at-a-time loop
 * was a tenth of opening a big image. */
static uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 32);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	size_t n = strlen(s), i = 0;
	uint64_t v;
	for (; i + 8 <= n; i += 8) {
		memcpy(&v, s + i, 8);
		h = hash_mix(h, v);
	}
	if (n >= 8) {
		memcpy(&v, s + n - 8, 8); /* the rest, in the last 8 octets */
	} else {
		v = 0;
		for (; i < n; i++)
			v |= (uint64_t)(uint8_t)s[i] << (8 * i);
	}
	return hash_mix(h, v ^ n);
}

/* Never 0: an entry's khash is 0 while it has no key.  The final mix
 * spreads every input bit over the low bits the table indexes by: keys
 * that differ only in their last octets ("entry-0001", "entry-0002") land
 * in the high bits of the last multiply, and without it they cluster. */
static uint64_t key_hash(const char *type, const char *name)
{
	uint64_t h = hash_str(0x6a09e667f3bcc909ull, type);
	h = name ? hash_str(hash_mix(h, 1), name) : hash_mix(h, 2);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h ? h : 1;
}

static bool same_key(const bs_entry *e, const char *type, const char *name)
{
	if (!e->m || !e->m->type || strcmp(e->m->type, type))
		return false;
	if (!name || !e->m->name)
		return !name && !e->m->name;
	return !strcmp(e->m->name, name);
}

/* The lookup table: open addressing with linear probing over slots that
 * keep each key's hash beside its entry, so that probing, inserting and
 * growing touch no entry (a cache miss each in a big image) until two
 * hashes match.  At most half the slots are used. */
struct bs_hslot {
	uint64_t h;
	bs_entry *e; /* NULL: empty */
};

static bs_entry *hash_find_h(const bs_image *img, uint64_t h, const char *type,
			     const char *name)
{
	if (!img->hash_size)
		return NULL;
	size_t mask = img->hash_size - 1;
	for (size_t i = h & mask; img->hash[i].e; i = (i + 1) & mask)
		if (img->hash[i].h == h && same_key(img->hash[i].e, type, name))
			return img->hash[i].e;
	return NULL;
}

/* Another entry with E's key, whose hash is H: E's meta is read only when
 * a stored hash matches (open looks up every entry, each a cache miss). */
static bs_entry *hash_find_like(const bs_image *img, uint64_t h, const bs_entry *e)
{
	size_t mask = img->hash_size - 1;
	for (size_t i = h & mask; img->hash[i].e; i = (i + 1) & mask)
		if (img->hash[i].h == h && same_key(img->hash[i].e, e->m->type, e->m->name))
			return img->hash[i].e;
	return NULL;
}

static bs_entry *hash_find(const bs_image *img, const char *type, const char *name)
{
	return hash_find_h(img, key_hash(type, name), type, name);
}

static void hash_put(struct bs_hslot *t, size_t mask, uint64_t h, bs_entry *e)
{
	size_t i = h & mask;
	while (t[i].e)
		i = (i + 1) & mask;
	t[i].h = h;
	t[i].e = e;
}

/* Room for WANT entries at half load. */
static int hash_grow(bs_image *img, size_t want)
{
	size_t n = img->hash_size ? img->hash_size : 64;
	while (n < want * 2)
		n *= 2;
	if (n == img->hash_size)
		return BS_OK;
	struct bs_hslot *t = bs__big_calloc(n * sizeof *t);
	if (!t)
		return BS_ENOMEM;
	for (size_t i = 0; i < img->hash_size; i++)
		if (img->hash[i].e)
			hash_put(t, n - 1, img->hash[i].h, img->hash[i].e);
	bs__big_free(img->hash, img->hash_size * sizeof *img->hash);
	img->hash = t;
	img->hash_size = n;
	return BS_OK;
}

/* Adds E under its khash (already set). */
static int hash_link(bs_image *img, bs_entry *e)
{
	if ((img->hash_used + 1) * 2 > img->hash_size && hash_grow(img, img->hash_used + 1))
		return BS_ENOMEM;
	hash_put(img->hash, img->hash_size - 1, e->khash, e);
	img->hash_used++;
	return BS_OK;
}

static int hash_insert(bs_image *img, bs_entry *e)
{
	e->khash = key_hash(e->m->type, e->m->name);
	return hash_link(img, e);
}

/* Takes E out (if it is in), under the khash it was added with, whatever
 * its meta is now. */
static void hash_remove(bs_image *img, bs_entry *e)
{
	if (!img->hash_size)
		return;
	size_t mask = img->hash_size - 1, i = e->khash & mask;
	while (img->hash[i].e != e) {
		if (!img->hash[i].e)
			return;
		i = (i + 1) & mask;
	}
	/* Backward shift: move up each later slot of the run that may not
	 * sit before its home slot, so no lookup meets an early empty slot. */
	for (size_t j = i;;) {
		j = (j + 1) & mask;
		if (!img->hash[j].e)
			break;
		size_t home = img->hash[j].h & mask;
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		img->hash[i] = img->hash[j];
		i = j;
	}
	img->hash[i].e = NULL;
	img->hash_used--;
}

static int list_push(bs_image *img, bs_entry *e)
{
	if (img->count == img->cap) {
		size_t n = img->cap ? img->cap * 2 : 64;
		bs_entry **l = realloc(img->list, n * sizeof *l);
		if (!l)
			return BS_ENOMEM;
		img->list = l;
		img->cap = n;
	}
	e->index = img->count;
	img->list[img->count++] = e;
	return BS_OK;
}

static void list_remove(bs_image *img, bs_entry *e)
{
	size_t i = e->index;
	memmove(img->list + i, img->list + i + 1, (img->count - i - 1) * sizeof *img->list);
	img->count--;
	for (; i < img->count; i++)
		img->list[i]->index = i;
}

/* Entries come from the image's pool (pool.c); a freed entry goes on the
 * image's free list for the next one. */
static bs_entry *entry_new(bs_image *img)
{
	bs_entry *e = img->free_entries;
	if (e) {
		img->free_entries = e->hnext;
		memset(e, 0, sizeof *e);
		return e;
	}
	return bs__pool_alloc(&img->pool, sizeof *e); /* zeroed */
}

static void entry_free(bs_image *img, bs_entry *e)
{
	if (!e)
		return;
	bs__meta_free(e->m);
	free(e->status_msg);
	e->m = NULL;
	e->status_msg = NULL;
	e->hnext = img->free_entries;
	img->free_entries = e;
}

/* Releases every entry and pooled meta at once. */
static void pool_free(bs_image *img)
{
	bs__pool_destroy(&img->pool);
	img->free_entries = NULL;
}

/* ---- scanning ------------------------------------------------------------ */

/* A window over the storage (or over a memory copy of the image). */
struct reader {
	bs_image *img;
	const uint8_t *mem; /* whole image in memory, or NULL */
	struct bs_parse_memo *memo; /* metas in the image's pool, or NULL */
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
	if (want > r->img->size - off)
		want = (size_t)(r->img->size - off);
	if (want > r->cap) {
		uint8_t *b = realloc(r->buf, want);
		if (!b)
			return bs__err(r->img, NULL, off, BS_ENOMEM, "out of memory");
		r->buf = b;
		r->cap = want;
	}
	r->len = 0;
	int rc = bs__read(r->img, NULL, r->buf, want, off);
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
	uint64_t avail = img->size - off;
	size_t head_len = avail < 512 ? (size_t)avail : 512;
	struct entry_layout lay;
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
	bs_entry *e = entry_new(img);
	if (!e)
		return bs__err(img, NULL, off, BS_ENOMEM, "out of memory");
	e->off = off;
	e->size = lay.size;
	e->supersedes = UINT64_MAX;
	e->active = -1;
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
	if (lay.tail_len > sizeof tail) {
		lay.tail_len = sizeof tail; /* parse reports the trailing octets */
	}
	if (lay.tail_len) {
		uint64_t toff = off + lay.data_rel + lay.data_len;
		if (reader_has(r, toff, lay.tail_len)) {
			rc = reader_get(r, toff, lay.tail_len, &tp);
			if (!rc)
				memcpy(tail, tp, lay.tail_len);
		} else {
			/* Past a large data area: read just the tail and keep the
			 * window on the head, which is needed again below. */
			rc = bs__read(img, NULL, tail, lay.tail_len, toff);
		}
		if (rc)
			return rc;
	}
	rc = reader_get(r, off, lay.head_need, &p);
	if (rc)
		return rc;
	uint64_t bad_rel = 0;
	rc = bs__entry_parse(p, tail, &lay, e, &why, &bad_rel, r->memo);
	e->size = lay.size;
	e->data_off = off + lay.data_rel;
	if (rc)
		return bs__err(img, NULL, off, rc, "out of memory");
	/* Hashed now, while type and name are in the cache. */
	if (e->m->type)
		e->khash = key_hash(e->m->type, e->m->name);
	return BS_OK;
}

/* What a scan hands to index_entries: every keyed entry with its hash, in
 * directory order, so that building the table touches no entry. */
struct keylist {
	struct bs_hslot *v;
	size_t n, cap;
	size_t nsupersedes; /* entries with a bs.supersedes */
};

static int keylist_push(struct keylist *k, bs_entry *e)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 256;
		struct bs_hslot *v = realloc(k->v, cap * sizeof *v);
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

/* Reads the directory from storage (MEM NULL) or from a memory copy.  KEYS
 * (emptied first) is for the image's own scan: it gets the keys, and the
 * metas go to the image's pool.  Without it (compact's copy, whose metas
 * move to another image) metas are malloc'ed. */
static int scan(bs_image *img, const uint8_t *mem, struct keylist *keys)
{
	struct bs_parse_memo memo = {.pool = &img->pool};
	struct reader r = {.img = img, .mem = mem, .memo = keys ? &memo : NULL};
	if (keys)
		keys->n = keys->nsupersedes = 0;
	const uint8_t *p;
	int rc;
	uint64_t pos = 2;
	img->holes = 0;
	for (;;) {
		if (img->size - pos < 2) {
			rc = bs__err(img, NULL, pos, BS_ECORRUPT,
				     "directory has no end-of-contents (truncated image?)");
			goto out;
		}
		size_t peek = img->size - pos < 16 ? (size_t)(img->size - pos) : 16;
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
			struct der_tlv t;
			const char *w = der_header_prefix(p, peek, &t);
			if (!w && t.len > img->size - pos - t.hdr)
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
			rc = list_push(img, e);
		if (!rc && keys && e->khash && keylist_push(keys, e)) {
			e = NULL; /* listed: freed with the others */
			rc = bs__err(img, NULL, pos, BS_ENOMEM, "out of memory");
		}
		if (rc) {
			entry_free(img, e);
			goto out;
		}
		pos += e->size;
	}
	rc = BS_OK;
out:
	free(r.buf);
	return rc;
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

static int delete_at(bs_image *img, bs_entry *e);

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
		if (j != SIZE_MAX && j < i && same_key(img->list[j], e->m->type, e->m->name)) {
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
	int rc = hash_grow(img, keys->n + 1);
	size_t mask = img->hash_size - 1;
	for (size_t i = 0; !rc && i < keys->n; i++) {
		if (i + 8 < keys->n)
			__builtin_prefetch(&img->hash[keys->v[i + 8].h & mask]);
		bs_entry *e = keys->v[i].e;
		if (nhidden && e->superseded)
			continue;
		bs_entry *d = hash_find_like(img, keys->v[i].h, e);
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
		hash_put(img->hash, mask, keys->v[i].h, e);
		img->hash_used++;
	}
	if (rc)
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	img->superseded_pending = nhidden;
	/* A writer finishes the interrupted rewrites now. */
	for (size_t i = 0; i < nhidden; i++) {
		if (!rc && !(img->flags & BS_OPEN_RDONLY)) {
			rc = delete_at(img, hidden[i]);
			if (!rc)
				img->superseded_pending--;
		}
		entry_free(img, hidden[i]);
	}
	free(hidden);
	return rc;
}

/* ---- formatting ---------------------------------------------------------- */

static int make_image_entry(uint8_t **out, size_t *out_len)
{
	uint8_t id[16], val[20], *attr;
	size_t alen;
	if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
		return BS_EIO;
	size_t vl = bs_der_octets(id, sizeof id, val, sizeof val);
	int rc = bs__attr_encode(BS_ATTR_ID, val, vl, &attr, &alen);
	if (rc)
		return rc;
	struct enc_attr a = {attr, alen};
	uint64_t data_rel;
	rc = bs__entry_encode(BS_TYPE_IMAGE, NULL, NULL, 0, &a, 1, 0, out, out_len, &data_rel);
	free(attr);
	return rc;
}

static int format(bs_image *img)
{
	uint8_t *ent;
	size_t elen;
	int rc = make_image_entry(&ent, &elen);
	if (rc)
		return bs__err(img, NULL, BS_NO_OFFSET, rc, "cannot build the image entry");
	size_t n = 2 + elen + 2;
	uint8_t *b = malloc(n);
	if (!b) {
		free(ent);
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	b[0] = DER_SET;
	b[1] = 0x80;
	memcpy(b + 2, ent, elen);
	b[n - 2] = b[n - 1] = 0;
	free(ent);
	const struct bs_backend_ops *ops = img->be->ops;
	if (ops->replace) {
		/* Atomic: the storage holds the whole image or stays as it was. */
		rc = ops->replace(img->be->ctx, b, n);
		if (rc)
			rc = bs__err(img, NULL, BS_NO_OFFSET, rc, "format failed: %s", backend_msg(img));
	} else {
		/* Fixed storage: a clean recovery area and everything but the two
		 * identifying octets first, so an interrupted format never looks
		 * like an image. */
		rc = bs__recovery_clear(img);
		if (!rc)
			rc = bs__write(img, NULL, b + 2, n - 2, 2);
		if (!rc)
			rc = bs__sync(img);
		if (!rc)
			rc = bs__write(img, NULL, b, 2, 0);
		if (!rc)
			rc = bs__sync(img);
	}
	free(b);
	if (!rc && !img->fixed)
		rc = ops->size(img->be->ctx, &img->size);
	return rc;
}

/* ---- open and close ------------------------------------------------------ */

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int bs_open_backend(struct bs_backend *be, const char *label, unsigned flags, bs_image **out)
{
	*out = NULL;
	bs_image *img = calloc(1, sizeof *img);
	if (!img || !(img->label = strdup(label ? label : "(image)"))) {
		free(img);
		bs_backend_free(be);
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	img->be = be;
	img->flags = flags;
	int rc = BS_OK;
	struct keylist keys = {0};
	if (!(flags & BS_OPEN_RDONLY) && be->ops->lock) {
		rc = be->ops->lock(be->ctx, BS_LOCK_EXCL | ((flags & BS_OPEN_WAIT) ? BS_LOCK_WAIT : 0));
		if (rc)
			goto fail; /* the backend's message names the image */
		img->locked = true;
	}
	rc = be->ops->size(be->ctx, &img->size);
	if (rc)
		goto fail;
	if (img->size > BS_MAX_IMAGE_SIZE) {
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "storage larger than the limit");
		goto fail;
	}
	/* Fixed-size storage keeps a recovery area at its end, and may hold an
	 * interrupted compaction to finish (or, read-only, to read around). */
	if (!be->ops->resize && (rc = bs__recovery_open(img)))
		goto fail;
	uint8_t start[16] = {0};
	size_t sl = img->size < sizeof start ? (size_t)img->size : sizeof start;
	if (sl && (rc = bs__read(img, NULL, start, sl, 0)))
		goto fail;
	bool blank = img->size == 0 || (!be->ops->resize && all_zero(start, sl));
	if (blank) {
		if (!(flags & BS_OPEN_CREATE) || (flags & BS_OPEN_RDONLY)) {
			rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ECORRUPT,
				     "empty: not a formatted image (run 'blobstore format')");
			goto fail;
		}
		if ((rc = format(img)))
			goto fail;
	} else if ((flags & BS_OPEN_CREATE) && (flags & BS_OPEN_EXCL)) {
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_EEXIST, "image already exists");
		goto fail;
	} else if (sl < 4) {
		rc = bs__err(img, NULL, 0, BS_ECORRUPT,
			     "not a blobstore image: %u octets are too short to be one", (unsigned)sl);
		goto fail;
	} else if (start[0] != DER_SET || start[1] != 0x80) {
		rc = bs__err(img, NULL, 0, BS_ECORRUPT,
			     "not a blobstore image (starts %02x %02x, not 31 80: an indefinite-length SET)",
			     sl > 0 ? start[0] : 0, sl > 1 ? start[1] : 0);
		goto fail;
	}
	/* A reader holds no lock: a writer may append while it scans, and the
	 * new entry then looks like one running past the end.  When the storage
	 * grew meanwhile, scan again. */
	for (int tries = 0;; tries++) {
		rc = scan(img, NULL, &keys);
		uint64_t now;
		if (!rc || !(flags & BS_OPEN_RDONLY) || tries == 8 ||
		    be->ops->size(be->ctx, &now) || now == img->size)
			break;
		for (size_t i = 0; i < img->count; i++)
			entry_free(img, img->list[i]);
		img->count = 0;
		img->size = now;
	}
	if (rc)
		goto fail;
	if (!img->count || img->list[0]->status || !img->list[0]->m->type ||
	    strcmp(img->list[0]->m->type, BS_TYPE_IMAGE)) {
		rc = bs__err(img, NULL, 2, BS_ECORRUPT,
			     "not a blobstore image: the first entry is not a valid bs.image entry");
		goto fail;
	}
	img->image_entry = img->list[0];
	const uint8_t *id;
	size_t idlen;
	if (bs_attr_get_bytes(img->image_entry, BS_ATTR_ID, &id, &idlen) == BS_OK && idlen == 16)
		memcpy(img->id, id, 16);
	if ((rc = index_entries(img, &keys)))
		goto fail;
	free(keys.v);
	/* Octets past the end-of-contents of a file are normally an interrupted
	 * append, never committed.  They are left alone all the same: damage
	 * that forged an end-of-contents would look the same, and cutting would
	 * destroy what follows.  The next append overwrites them, compact drops
	 * them, check reports them. */
	*out = img;
	return BS_OK;
fail:
	free(keys.v);
	bs_close(img);
	return rc;
}

int bs_open(const char *path, unsigned flags, bs_image **out)
{
	struct bs_backend *be;
	*out = NULL;
	if (!path)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image path");
	int rc = bs_backend_open(path, flags, &be);
	if (rc)
		return rc;
	return bs_open_backend(be, path, flags, out);
}

void bs_close(bs_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->count; i++)
		entry_free(img, img->list[i]);
	pool_free(img);
	free(img->list);
	bs__big_free(img->hash, img->hash_size * sizeof *img->hash);
	if (img->be) {
		if (img->locked && img->be->ops->lock)
			img->be->ops->lock(img->be->ctx, BS_LOCK_NONE);
		bs_backend_free(img->be);
	}
	bs__crypt_free(img->crypt);
	free(img->label);
	free(img);
}

const char *bs_image_label(const bs_image *img)
{
	return img ? img->label : "";
}

const uint8_t *bs_image_id(const bs_image *img)
{
	return img->id;
}

size_t bs_count(const bs_image *img)
{
	return img ? img->count : 0;
}

bs_entry *bs_entry_at(bs_image *img, size_t i)
{
	return img && i < img->count ? img->list[i] : NULL;
}

int bs_stat(bs_image *img, struct bs_stat *out)
{
	memset(out, 0, sizeof *out);
	out->size = img->size;
	out->dir_end = img->dir_end;
	out->free_holes = img->holes;
	out->free_tail = img->size > img->dir_end ? img->size - img->dir_end : 0;
	out->entries = img->count;
	for (size_t i = 0; i < img->count; i++) {
		out->used += img->list[i]->size;
		if (img->list[i]->status)
			out->refused++;
	}
	return BS_OK;
}

/* ---- entry access -------------------------------------------------------- */

const char *bs_entry_type(const bs_entry *e)
{
	return e->m && e->m->type ? e->m->type : "";
}
const char *bs_entry_name(const bs_entry *e)
{
	return e->m ? e->m->name : NULL;
}
uint64_t bs_entry_offset(const bs_entry *e)
{
	return e->off;
}
uint64_t bs_entry_size(const bs_entry *e)
{
	return e->size;
}
size_t bs_entry_capacity(const bs_entry *e)
{
	return e->status ? 0 : bs__data_capacity(e);
}
int bs_entry_status(const bs_entry *e)
{
	return e->status;
}
const char *bs_entry_status_msg(const bs_entry *e)
{
	return e->status_msg ? e->status_msg : (e->status ? bs_strerror(e->status) : "ok");
}
int bs_entry_is_slotted(const bs_entry *e)
{
	return e->slotted;
}
const char *bs_entry_check(const bs_entry *e)
{
	if (!e->slotted)
		return NULL;
	return e->alg == BS_CHECK_SHA256 ? "sha256" : "crc32c";
}

int bs_image_read_raw(bs_image *img, uint64_t off, void *buf, size_t len)
{
	if (off > img->size || len > img->size - off)
		return bs__err(img, NULL, off, BS_ECORRUPT, "%zu octets past the end of the image",
			       len);
	return bs__read(img, NULL, buf, len, off);
}

static bool valid_type(const char *t)
{
	size_t n = strlen(t);
	if (!n || n > BS_MAX_TYPE_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)t[i] < 0x20 || (uint8_t)t[i] > 0x7e)
			return false;
	return true;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	return n <= BS_MAX_NAME_LEN && der_valid_utf8((const uint8_t *)s, n);
}

int bs_find(bs_image *img, const char *type, const char *name, bs_entry **out)
{
	*out = NULL;
	if (!img || !type)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "no type given");
	bs_entry *e = hash_find(img, type, name);
	if (!e) {
		return bs__err_key(img->label, type, name, BS_ENOENT, "no such entry");
	}
	*out = e;
	return BS_OK;
}

/* Entries that are refused or read-only images stop writes here. */
static int writable(bs_image *img, const bs_entry *e)
{
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, e, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	if (img->broken)
		return bs__err(img, e, BS_NO_OFFSET, BS_EIO,
			       "an earlier write failed and left the storage state unknown: reopen the image");
	if (e && e->status)
		return bs__err(img, e, e->off, e->status, "entry refused: %s",
			       bs_entry_status_msg(e));
	/* bs.key and the like change only through their own functions. */
	if (e && e->m && e->m->type && !strncmp(e->m->type, BS_RESERVED_PREFIX, 3))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the library's own entry");
	return BS_OK;
}

int bs_entry_read_alloc(bs_image *img, bs_entry *e, void **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (e->status)
		return bs__err(img, e, e->off, e->status, "entry refused: %s",
			       bs_entry_status_msg(e));
	if (e->slotted)
		return bs__slot_read(img, e, out, len, NULL, 0, true);
	uint8_t *b = malloc(e->data_len ? (size_t)e->data_len : 1);
	if (!b)
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	int rc = e->data_len ? bs__read(img, e, b, (size_t)e->data_len, e->data_off) : BS_OK;
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	*len = (size_t)e->data_len;
	return BS_OK;
}

int bs_entry_read(bs_image *img, bs_entry *e, void *buf, size_t bufsize, size_t *len)
{
	*len = 0;
	if (e->status)
		return bs__err(img, e, e->off, e->status, "entry refused: %s",
			       bs_entry_status_msg(e));
	if (e->slotted)
		return bs__slot_read(img, e, NULL, len, buf, bufsize, false);
	*len = (size_t)e->data_len;
	if (bufsize < e->data_len)
		return bs__err(img, e, BS_NO_OFFSET, BS_ERANGE, "buffer too small");
	return e->data_len ? bs__read(img, e, buf, (size_t)e->data_len, e->data_off) : BS_OK;
}

/* ---- directory changes --------------------------------------------------- */

/* Appends the encoded entry BUF/N; *OFF gets its offset.  Commit point: the
 * one-octet write that turns the old end-of-contents into free space. */
static int dir_append(bs_image *img, const uint8_t *buf, size_t n, uint64_t *off)
{
	uint64_t eoc = img->dir_end - 2;
	if (eoc + 2 + n + 2 > BS_MAX_IMAGE_SIZE)
		return bs__err(img, NULL, eoc, BS_ELIMIT, "image would exceed the size limit");
	uint8_t *tmp = malloc(n + 2);
	if (!tmp)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	memcpy(tmp, buf, n);
	tmp[n] = tmp[n + 1] = 0;
	int rc = bs__write(img, NULL, tmp, n + 2, eoc + 2);
	free(tmp);
	if (!rc)
		rc = bs__sync(img);
	if (!rc) {
		/* 00 00 -> 05 00: the end-of-contents becomes a NULL pad.  05 is
		 * two bit flips away from 00, so one flipped bit cannot forge an
		 * early end of the directory. */
		static const uint8_t pad_tag = DER_NULL;
		rc = bs__write(img, NULL, &pad_tag, 1, eoc);
		if (!rc)
			rc = bs__sync(img);
		if (!rc) {
			img->dir_end = eoc + 2 + n + 2;
			img->holes += 2;
			*off = eoc + 2;
			return BS_OK;
		}
		/* The commit octet may or may not be on storage now: the
		 * image's state is unknown, so stop using this handle's view. */
		img->broken = true;
		return rc;
	}
	/* Not committed: take back what went past the end (files). */
	if (img->be->ops->resize && img->size > img->dir_end &&
	    img->be->ops->resize(img->be->ctx, img->dir_end) == BS_OK)
		img->size = img->dir_end;
	return rc;
}

/* Turns the entry at E->off into free space, then wipes its contents. */
static int delete_at(bs_image *img, bs_entry *e)
{
	static const uint8_t free_tag = DER_OCTET_STRING;
	int rc = bs__write(img, e, &free_tag, 1, e->off);
	if (!rc)
		rc = bs__sync(img);
	if (rc) {
		img->broken = true; /* deleted or not: unknown */
		return rc;
	}
	img->holes += e->size;
	/* Wipe the old contents (deleted state may be secret).  The delete is
	 * already committed; a failure here leaves stale octets in free space. */
	struct der_tlv t;
	uint8_t hdr[8];
	size_t hl = e->size < sizeof hdr ? (size_t)e->size : sizeof hdr;
	if (bs__read(img, e, hdr, hl, e->off) || der_header_prefix(hdr, hl, &t))
		return BS_OK;
	static const uint8_t zeros[65536];
	uint64_t pos = e->off + t.hdr, end = e->off + e->size;
	while (pos < end) {
		size_t k = end - pos > sizeof zeros ? sizeof zeros : (size_t)(end - pos);
		if (bs__write(img, e, zeros, k, pos))
			return BS_OK;
		pos += k;
	}
	bs__sync(img);
	return BS_OK;
}

/* Replaces E's view (meta, offsets) by the entry encoded at BUF, stored at OFF. */
static int adopt(bs_image *img, bs_entry *e, const uint8_t *buf, uint64_t off)
{
	struct entry_layout lay;
	const char *why;
	uint64_t bad;
	bs_entry tmp = {0};
	tmp.off = off;
	int rc = bs__entry_layout(buf, SIZE_MAX, UINT64_MAX, &lay, &why);
	if (!rc && !why)
		rc = bs__entry_parse(buf, buf + lay.data_rel + lay.data_len, &lay, &tmp, &why, &bad,
				     NULL);
	/* A mandatory attribute this library does not know is stored as the
	 * caller asked; the entry is then refused here just as on the next open. */
	if (rc || (why && tmp.status != BS_EUNSUPPORTED)) {
		char msg[256];
		snprintf(msg, sizeof msg, "%s", why ? why : "?"); /* WHY may be tmp's */
		bs__meta_free(tmp.m);
		free(tmp.status_msg);
		return bs__err(img, e, off, BS_ECORRUPT, "internal: new entry does not parse: %s",
			       msg);
	}
	bs__meta_free(e->m);
	free(e->status_msg);
	e->status = tmp.status;
	e->status_msg = tmp.status_msg;
	e->m = tmp.m;
	e->off = off;
	e->size = lay.size;
	e->data_off = off + lay.data_rel;
	e->data_len = lay.data_len;
	e->slotted = tmp.slotted;
	e->alg = tmp.alg;
	e->aead = tmp.aead;
	e->supersedes = tmp.supersedes;
	return BS_OK;
}

struct bs_entry_opts_int {
	size_t capacity;       /* what callers may store */
	enum bs_check_alg alg;
	bool raw;
	enum bs_aead aead;     /* encrypt the initial slot (bs.aead is in MAND) */
	uint64_t gen;          /* generation of the initial slot (0: 1) */
};

/* Encodes a complete entry from parts: attribute encodings (not yet
 * sorted), options and the initial data. */
static int build_entry(bs_image *img, const char *type, const char *name,
		       struct enc_attr *mand, size_t nmand, struct enc_attr *opt, size_t nopt,
		       const struct bs_entry_opts_int *o, const void *data, size_t len,
		       uint8_t **out, size_t *out_len)
{
	uint8_t slots_attr[32];
	size_t sl = 0;
	if (!o->raw) {
		/* SEQUENCE { IA5String "bs.slots", IA5String alg } */
		const char *alg = o->alg == BS_CHECK_SHA256 ? "sha256" : "crc32c";
		uint8_t *a;
		uint8_t v[8];
		v[0] = DER_IA5STRING;
		v[1] = 6;
		memcpy(v + 2, alg, 6);
		if (bs__attr_encode(BS_ATTR_SLOTS, v, 8, &a, &sl))
			return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		memcpy(slots_attr, a, sl);
		free(a);
		mand[nmand].tlv = slots_attr;
		mand[nmand].len = sl;
		nmand++;
	}
	if (bs__attr_sort(mand, nmand) || bs__attr_sort(opt, nopt))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "duplicate attribute");
	size_t h = bs__slot_hdr_len(o->alg);
	size_t ovh = o->aead ? BS_AEAD_OVERHEAD : 0;
	uint64_t gen = o->gen ? o->gen : 1;
	uint64_t data_len = o->raw ? len : 2 * ((uint64_t)h + o->capacity + ovh);
	uint64_t data_rel;
	int rc = bs__entry_encode(type, name, mand, nmand, opt, nopt, data_len, out, out_len,
				  &data_rel);
	if (rc)
		return bs__err_key(img->label, type, name, rc, "entry too large for the limits");
	if (o->raw) {
		if (len)
			memcpy(*out + data_rel, data, len);
	} else if (o->aead) {
		/* The sets are sorted now: the associated data is final. */
		uint8_t *ct = malloc(len + BS_AEAD_OVERHEAD);
		rc = ct ? bs__crypt_seal_parts(img, o->aead, type, name, mand, nmand, opt, nopt, gen,
					       data, len, ct)
			: bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		if (!rc)
			bs__slots_init(o->alg, *out + data_rel, (size_t)data_len, ct,
				       len + BS_AEAD_OVERHEAD, gen);
		free(ct);
		if (rc) {
			free(*out);
			*out = NULL;
			return rc;
		}
	} else {
		bs__slots_init(o->alg, *out + data_rel, (size_t)data_len, data, len, gen);
	}
	return BS_OK;
}

static int set_opts(bs_image *img, const char *type, const char *name, size_t capacity,
		    size_t len, struct bs_entry_opts_int *o)
{
	if (capacity < len)
		capacity = len;
	if (capacity > BS_MAX_ENTRY_SIZE / 2 - 64)
		return bs__err_key(img->label, type, name, BS_ELIMIT,
				   "capacity larger than the entry size limit");
	o->capacity = capacity;
	return BS_OK;
}

int bs_entry_create(bs_image *img, const char *type, const char *name, size_t capacity,
		    const struct bs_attr *attrs, size_t nattrs, const void *data, size_t len,
		    bs_entry **out)
{
	struct bs_entry_opts o = {.capacity = capacity, .attrs = attrs, .nattrs = nattrs};
	return bs_entry_create2(img, type, name, &o, data, len, out);
}

static int create_entry(bs_image *img, const char *type, const char *name,
			const struct bs_entry_opts *opts, const void *data, size_t len,
			bs_entry **out, bool lib);

int bs_entry_create2(bs_image *img, const char *type, const char *name,
		     const struct bs_entry_opts *opts, const void *data, size_t len,
		     bs_entry **out)
{
	return create_entry(img, type, name, opts, data, len, out, false);
}

int bs__entry_create_lib(bs_image *img, const char *type, const char *name,
			 const struct bs_entry_opts *opts, const void *data, size_t len,
			 bs_entry **out)
{
	return create_entry(img, type, name, opts, data, len, out, true);
}

/* LIB: the library's own entry, which may use "bs." names. */
static int create_entry(bs_image *img, const char *type, const char *name,
			const struct bs_entry_opts *opts, const void *data, size_t len,
			bs_entry **out, bool lib)
{
	if (out)
		*out = NULL;
	if (!opts)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "no options");
	const struct bs_attr *attrs = opts->attrs;
	size_t nattrs = opts->nattrs, capacity = opts->capacity;
	if (!img || !type || (len && !data) || (nattrs && !attrs))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	int rc = writable(img, NULL);
	if (rc)
		return rc;
	if (!valid_type(type) || (name && !valid_name(name)))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "type must be 1-%u printable ASCII octets, name valid UTF-8 of at most %u octets",
			       BS_MAX_TYPE_LEN, BS_MAX_NAME_LEN);
	if (!lib && !strncmp(type, BS_RESERVED_PREFIX, 3))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "types starting with 'bs.' are reserved for the library");
	if (nattrs > BS_MAX_ATTRS - 2)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "too many attributes");
	if (hash_find(img, type, name))
		return bs__err_key(img->label, type, name, BS_EEXIST, "entry already exists");
	struct bs_entry_opts_int o = {.alg = BS_CHECK_CRC32C, .raw = opts->flags & BS_ENTRY_RAW};
	if (opts->check && !strcmp(opts->check, "sha256"))
		o.alg = BS_CHECK_SHA256;
	else if (opts->check && strcmp(opts->check, "crc32c"))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "unknown check '%s' (crc32c or sha256)", opts->check);
	if (opts->flags & ~(BS_ENTRY_RAW | BS_ENTRY_ENCRYPT))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "unknown entry flags");
	if (opts->flags & BS_ENTRY_ENCRYPT) {
		if (o.raw)
			return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
				       "encrypted entries keep their data in slots (not BS_ENTRY_RAW)");
		o.aead = BS_AEAD_AES256GCM;
		if (opts->cipher && !strcmp(opts->cipher, "chacha20-poly1305"))
			o.aead = BS_AEAD_CHACHA20POLY1305;
		else if (opts->cipher && strcmp(opts->cipher, "aes-256-gcm"))
			return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
				       "unknown cipher '%s' (aes-256-gcm or chacha20-poly1305)",
				       opts->cipher);
		if ((rc = bs__crypt_ready(img, NULL)))
			return rc;
	}
	if ((rc = set_opts(img, type, name, o.raw ? len : capacity, len, &o)))
		return rc;
	struct enc_attr *mand = calloc(nattrs + 2, sizeof *mand);
	struct enc_attr *opt = calloc(nattrs + 1, sizeof *opt);
	uint8_t **bufs = calloc(nattrs + 2, sizeof *bufs);
	size_t nm = 0, no = 0;
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	bs_entry *e = NULL;
	if (!mand || !opt || !bufs) {
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nattrs; i++) {
		const struct bs_attr *a = &attrs[i];
		if (!a->name || (!lib && !strncmp(a->name, BS_RESERVED_PREFIX, 3))) {
			rc = bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
				     "attribute names starting with 'bs.' are reserved");
			goto out;
		}
		size_t l;
		rc = bs__attr_encode(a->name, a->value, a->value_len, &bufs[i], &l);
		if (rc) {
			rc = bs__err(img, NULL, BS_NO_OFFSET, rc,
				     "attribute '%s': bad name or value (not DER)", a->name);
			goto out;
		}
		struct enc_attr *dst = (a->flags & BS_ATTR_MANDATORY) ? &mand[nm++] : &opt[no++];
		dst->tlv = bufs[i];
		dst->len = l;
	}
	for (size_t i = 0; i < nattrs; i++)
		for (size_t j = i + 1; j < nattrs; j++)
			if (!strcmp(attrs[i].name, attrs[j].name)) {
				rc = bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
					     "attribute '%s' given twice", attrs[i].name);
				goto out;
			}
	if (o.aead) {
		size_t l;
		if ((rc = bs__crypt_attr(img, o.aead, &bufs[nattrs], &l)))
			goto out;
		mand[nm].tlv = bufs[nattrs];
		mand[nm++].len = l;
	}
	rc = build_entry(img, type, name, mand, nm, opt, no, &o, data, len, &enc, &enc_len);
	if (rc)
		goto out;
	uint64_t off;
	rc = dir_append(img, enc, enc_len, &off);
	if (rc)
		goto out;
	e = entry_new(img);
	if (!e || (rc = adopt(img, e, enc, off)) || (rc = list_push(img, e))) {
		/* Stored, but this handle cannot track it: the caller reopens. */
		entry_free(img, e);
		e = NULL;
		rc = bs__err(img, NULL, off, BS_ENOMEM, "out of memory after storing the entry");
		goto out;
	}
	if (hash_insert(img, e)) {
		list_remove(img, e);
		entry_free(img, e);
		e = NULL;
		rc = bs__err(img, NULL, off, BS_ENOMEM, "out of memory after storing the entry");
		goto out;
	}
	e->active = o.raw ? -1 : 0;
	e->gen = 1;
	if (out)
		*out = e;
out:
	for (size_t i = 0; bufs && i <= nattrs; i++)
		free(bufs[i]);
	free(bufs);
	free(mand);
	free(opt);
	free(enc);
	return rc;
}

/* What a rewrite changes. */
struct rewrite {
	size_t capacity;      /* new capacity (slotted) */
	const void *data;     /* new data, or NULL to keep the current */
	size_t len;
	const char *attr;     /* attribute to set or remove, or NULL */
	const uint8_t *value; /* its new value (flag when value_len is 0) */
	size_t value_len;
	unsigned attr_flags;
	bool remove;
	const struct bs_attr *set; /* more attributes to set ("bs." allowed) */
	size_t nset;
};

/* Copy-on-write of E: append a new copy that names the old one in
 * bs.supersedes, then delete the old one.  Crash-safe at every write. */
static int rewrite(bs_image *img, bs_entry *e, const struct rewrite *rw)
{
	int rc;
	void *cur = NULL;
	size_t cur_len = 0;
	const void *data = rw->data;
	size_t len = rw->len;
	if (!data) {
		rc = bs_entry_read_alloc(img, e, &cur, &cur_len);
		if (rc)
			return rc;
		data = cur;
		len = cur_len;
	}
	struct bs_meta *m = e->m;
	size_t na = m->nmand + m->nopt;
	struct enc_attr *mand = calloc(na + 2 + rw->nset, sizeof *mand);
	struct enc_attr *opt = calloc(na + 2 + rw->nset, sizeof *opt);
	uint8_t **setbufs = calloc(rw->nset + 1, sizeof *setbufs);
	uint8_t *newattr = NULL, *sup = NULL;
	uint8_t *enc = NULL;
	size_t enc_len, nm = 0, no = 0;
	if (!mand || !opt || !setbufs) {
		rc = bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto out;
	}
	/* Every attribute byte for byte, but the ones this rewrite owns. */
	for (size_t i = 0; i < na; i++) {
		const struct bs_attr_ref *a = &m->attrs[i];
		bool owned = false;
		for (size_t k = 0; k < rw->nset; k++)
			owned = owned || !strcmp(a->cname, rw->set[k].name);
		if (owned || !strcmp(a->cname, BS_ATTR_SLOTS) ||
		    !strcmp(a->cname, BS_ATTR_SUPERSEDES) ||
		    (rw->attr && !strcmp(a->cname, rw->attr)))
			continue;
		struct enc_attr *dst = a->mandatory ? &mand[nm++] : &opt[no++];
		dst->tlv = a->tlv;
		dst->len = a->tlv_len;
	}
	if (rw->attr && !rw->remove) {
		size_t l;
		rc = bs__attr_encode(rw->attr, rw->value, rw->value_len, &newattr, &l);
		if (rc) {
			rc = bs__err(img, e, BS_NO_OFFSET, rc, "attribute '%s': bad name or value",
				     rw->attr);
			goto out;
		}
		struct enc_attr *dst = (rw->attr_flags & BS_ATTR_MANDATORY) ? &mand[nm++] : &opt[no++];
		dst->tlv = newattr;
		dst->len = l;
	}
	for (size_t k = 0; k < rw->nset; k++) {
		const struct bs_attr *a = &rw->set[k];
		size_t l;
		rc = bs__attr_encode(a->name, a->value, a->value_len, &setbufs[k], &l);
		if (rc) {
			rc = bs__err(img, e, BS_NO_OFFSET, rc, "attribute '%s': bad name or value",
				     a->name);
			goto out;
		}
		struct enc_attr *dst = (a->flags & BS_ATTR_MANDATORY) ? &mand[nm++] : &opt[no++];
		dst->tlv = setbufs[k];
		dst->len = l;
	}
	if (nm + 1 > BS_MAX_ATTRS || no + 1 > BS_MAX_ATTRS) {
		rc = bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT, "too many attributes");
		goto out;
	}
	uint8_t iv[BS_DER_MAX_INT];
	size_t il = bs_der_int((int64_t)e->off, iv, sizeof iv);
	size_t sl;
	if ((rc = bs__attr_encode(BS_ATTR_SUPERSEDES, iv, il, &sup, &sl))) {
		rc = bs__err(img, e, BS_NO_OFFSET, rc, "out of memory");
		goto out;
	}
	opt[no].tlv = sup;
	opt[no++].len = sl;
	/* The copy's generations continue the old ones, so that no slot of
	 * the old copy can be replayed into the new one. */
	struct bs_entry_opts_int o = {.alg = e->alg, .raw = !e->slotted, .aead = e->aead};
	if (e->slotted && (rc = bs__slot_next_gen(img, e, &o.gen)))
		goto out;
	size_t cap = rw->capacity > bs__data_capacity(e) ? rw->capacity : bs__data_capacity(e);
	if ((rc = set_opts(img, m->type, m->name, o.raw ? len : cap, len, &o)))
		goto out;
	if (o.alg == BS_CHECK_NONE)
		o.alg = BS_CHECK_CRC32C;
	rc = build_entry(img, m->type, m->name, mand, nm, opt, no, &o, data, len, &enc, &enc_len);
	if (rc)
		goto out;
	uint64_t off, old_off = e->off, old_size = e->size;
	if ((rc = dir_append(img, enc, enc_len, &off)))
		goto out;
	/* Committed: the new copy wins from here on, even before the delete. */
	bs_entry old = *e;
	old.m = NULL;
	old.status_msg = NULL;
	if ((rc = adopt(img, e, enc, off)))
		goto out;
	e->active = o.raw ? -1 : 0;
	e->gen = o.gen ? o.gen : 1;
	list_remove(img, e);
	list_push(img, e); /* cannot fail: the slot just freed */
	old.off = old_off;
	old.size = old_size;
	old.m = e->m; /* for messages only */
	rc = delete_at(img, &old);
out:
	for (size_t k = 0; setbufs && k < rw->nset; k++)
		free(setbufs[k]);
	free(setbufs);
	if (cur && e->aead)
		OPENSSL_cleanse(cur, cur_len);
	free(cur);
	free(mand);
	free(opt);
	free(newattr);
	free(sup);
	free(enc);
	return rc;
}

int bs__entry_write_cap(bs_image *img, bs_entry *e, const void *data, size_t len,
			size_t capacity)
{
	int rc = writable(img, e);
	if (rc)
		return rc;
	if (len && !data)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "no data");
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry holds no data");
	if (e->slotted && len <= bs__data_capacity(e))
		return bs__slot_write(img, e, data, len);
	struct rewrite rw = {.data = data, .len = len, .capacity = capacity > len ? capacity : len};
	if (!data)
		rw.data = "";
	return rewrite(img, e, &rw);
}

int bs_entry_write(bs_image *img, bs_entry *e, const void *data, size_t len)
{
	return bs__entry_write_cap(img, e, data, len, len);
}

int bs_entry_resize(bs_image *img, bs_entry *e, size_t capacity)
{
	int rc = writable(img, e);
	if (rc)
		return rc;
	if (!e->slotted)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
			       "entry has no slots: its capacity is its data");
	if (capacity <= bs__data_capacity(e))
		return BS_OK;
	struct rewrite rw = {.capacity = capacity};
	return rewrite(img, e, &rw);
}

int bs__entry_rewrite_lib(bs_image *img, bs_entry *e, const struct bs_attr *attrs,
			  size_t nattrs, const void *data, size_t len)
{
	int rc = writable(img, NULL);
	if (rc)
		return rc;
	if (e->status)
		return bs__err(img, e, e->off, e->status, "entry refused: %s",
			       bs_entry_status_msg(e));
	struct rewrite rw = {.data = data ? data : "", .len = len, .capacity = len,
			     .set = attrs, .nset = nattrs};
	return rewrite(img, e, &rw);
}

int bs_entry_update(bs_image *img, bs_entry *e, const struct bs_attr *attrs, size_t nattrs,
		    const void *data, size_t len)
{
	int rc = writable(img, e);
	if (rc)
		return rc;
	if ((len && !data) || (nattrs && !attrs))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	for (size_t i = 0; i < nattrs; i++)
		if (!attrs[i].name || !strncmp(attrs[i].name, BS_RESERVED_PREFIX, 3))
			return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
				       "attribute names starting with 'bs.' are reserved");
	return bs__entry_rewrite_lib(img, e, attrs, nattrs, data, len);
}

int bs_entry_delete(bs_image *img, bs_entry *e)
{
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, e, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry cannot be deleted");
	if (img->broken)
		return bs__err(img, e, BS_NO_OFFSET, BS_EIO,
			       "an earlier write failed and left the storage state unknown: reopen the image");
	int rc = delete_at(img, e);
	if (rc)
		return rc;
	hash_remove(img, e);
	list_remove(img, e);
	entry_free(img, e);
	return BS_OK;
}

/* ---- attributes ---------------------------------------------------------- */

size_t bs_attr_count(const bs_entry *e, int mandatory)
{
	if (!e->m)
		return 0;
	return mandatory ? e->m->nmand : e->m->nopt;
}

int bs_attr_at(const bs_entry *e, int mandatory, size_t i, const char **name,
	       const uint8_t **value, size_t *value_len)
{
	if (i >= bs_attr_count(e, mandatory))
		return BS_ENOENT;
	const struct bs_attr_ref *a = &e->m->attrs[(mandatory ? 0 : e->m->nmand) + i];
	*name = a->cname;
	*value = a->value;
	*value_len = a->value_len;
	return BS_OK;
}

int bs_attr_get(const bs_entry *e, const char *name, unsigned *flags, const uint8_t **value,
		size_t *value_len)
{
	if (!e->m)
		return BS_ENOENT;
	for (size_t i = 0; i < e->m->nmand + e->m->nopt; i++) {
		const struct bs_attr_ref *a = &e->m->attrs[i];
		if (!strcmp(a->cname, name)) {
			if (flags)
				*flags = a->mandatory ? BS_ATTR_MANDATORY : 0;
			*value = a->value;
			*value_len = a->value_len;
			return BS_OK;
		}
	}
	return bs__err(NULL, e, BS_NO_OFFSET, BS_ENOENT, "no attribute '%s'", name);
}

/* The single value element of attribute NAME, which must have TAG. */
static int attr_single(const bs_entry *e, const char *name, uint8_t tag, uint8_t tag2,
		       const uint8_t **c, size_t *len, uint8_t *got)
{
	const uint8_t *v;
	size_t vl;
	int rc = bs_attr_get(e, name, NULL, &v, &vl);
	if (rc)
		return rc;
	struct der_tlv t;
	if (!vl || der_header(v, vl, &t) || t.hdr + t.len != vl || (t.tag != tag && t.tag != tag2))
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ETYPE,
			       "attribute '%s' does not hold the asked type", name);
	*c = v + t.hdr;
	*len = t.len;
	if (got)
		*got = (uint8_t)t.tag;
	return BS_OK;
}

int bs_attr_get_int(const bs_entry *e, const char *name, int64_t *out)
{
	const uint8_t *c;
	size_t l;
	int rc = attr_single(e, name, DER_INTEGER, DER_INTEGER, &c, &l, NULL);
	if (rc)
		return rc;
	if (!der_int_value(c, l, out))
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ETYPE,
			       "attribute '%s' does not fit a 64-bit integer", name);
	return BS_OK;
}

int bs_attr_get_bool(const bs_entry *e, const char *name, int *out)
{
	const uint8_t *c;
	size_t l;
	int rc = attr_single(e, name, DER_BOOLEAN, DER_BOOLEAN, &c, &l, NULL);
	if (rc)
		return rc;
	*out = l == 1 && c[0] != 0;
	return BS_OK;
}

int bs_attr_get_str(const bs_entry *e, const char *name, char **out)
{
	const uint8_t *c;
	size_t l;
	*out = NULL;
	int rc = attr_single(e, name, DER_UTF8STRING, DER_IA5STRING, &c, &l, NULL);
	if (rc)
		return rc;
	if (memchr(c, 0, l))
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ETYPE, "attribute '%s' holds NUL", name);
	*out = malloc(l + 1);
	if (!*out)
		return BS_ENOMEM;
	memcpy(*out, c, l);
	(*out)[l] = 0;
	return BS_OK;
}

int bs_attr_get_bytes(const bs_entry *e, const char *name, const uint8_t **out, size_t *len)
{
	return attr_single(e, name, DER_OCTET_STRING, DER_OCTET_STRING, out, len, NULL);
}

int bs_attr_set(bs_image *img, bs_entry *e, const char *name, unsigned flags,
		const uint8_t *value, size_t len)
{
	int rc = writable(img, e);
	if (rc)
		return rc;
	if (!name || !strncmp(name, BS_RESERVED_PREFIX, 3))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
			       "attribute names starting with 'bs.' are reserved");
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry is the library's");
	struct rewrite rw = {.attr = name, .value = value, .value_len = len, .attr_flags = flags};
	return rewrite(img, e, &rw);
}

int bs_attr_remove(bs_image *img, bs_entry *e, const char *name)
{
	int rc = writable(img, e);
	if (rc)
		return rc;
	const uint8_t *v;
	size_t vl;
	if (!name || !strncmp(name, BS_RESERVED_PREFIX, 3))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
			       "attribute names starting with 'bs.' are reserved");
	if ((rc = bs_attr_get(e, name, NULL, &v, &vl)))
		return rc;
	struct rewrite rw = {.attr = name, .remove = true};
	return rewrite(img, e, &rw);
}

/* ---- whole-image operations ---------------------------------------------- */

int bs_image_reserve(bs_image *img, uint64_t total)
{
	int rc = writable(img, NULL);
	if (rc)
		return rc;
	if (total > BS_MAX_IMAGE_SIZE)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "larger than the image limit");
	if (!img->be->ops->resize) {
		if (total > img->size)
			return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOSPC,
				       "fixed-size storage of %llu octets cannot hold %llu",
				       (unsigned long long)img->size, (unsigned long long)total);
		return BS_OK;
	}
	if (!img->be->ops->reserve)
		return BS_OK;
	rc = img->be->ops->reserve(img->be->ctx, total);
	if (rc)
		return bs__err(img, NULL, BS_NO_OFFSET, rc, "reserve failed: %s", backend_msg(img));
	return BS_OK;
}

int bs_compact(bs_image *img)
{
	int rc = writable(img, NULL);
	if (rc)
		return rc;
	if (!img->be->ops->replace && !img->fixed)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EUNSUPPORTED,
			       "this storage cannot replace the image atomically");
	uint64_t total = 4;
	for (size_t i = 0; i < img->count; i++)
		total += img->list[i]->size;
	if (total > SIZE_MAX / 2)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "image too large to compact");
	uint8_t *b = malloc((size_t)total);
	if (!b)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	size_t pos = 2;
	b[0] = DER_SET;
	b[1] = 0x80;
	for (size_t i = 0; i < img->count; i++) {
		bs_entry *e = img->list[i];
		if ((rc = bs__read(img, e, b + pos, (size_t)e->size, e->off)))
			goto out;
		if (!e->status && e->supersedes != UINT64_MAX) {
			/* Drop bs.supersedes: offsets change, and the copy it names
			 * is gone.  Everything else stays byte for byte. */
			struct bs_meta *m = e->m;
			size_t na = m->nmand + m->nopt, nm = 0, no = 0;
			struct enc_attr *mand = calloc(na + 1, sizeof *mand);
			struct enc_attr *opt = calloc(na + 1, sizeof *opt);
			if (!mand || !opt) {
				free(mand);
				free(opt);
				rc = bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
				goto out;
			}
			for (size_t k = 0; k < na; k++) {
				const struct bs_attr_ref *a = &m->attrs[k];
				if (!strcmp(a->cname, BS_ATTR_SUPERSEDES))
					continue;
				struct enc_attr *d = a->mandatory ? &mand[nm++] : &opt[no++];
				d->tlv = a->tlv;
				d->len = a->tlv_len;
			}
			uint8_t *enc;
			size_t elen;
			uint64_t rel;
			rc = bs__entry_encode(m->type, m->name, mand, nm, opt, no, e->data_len, &enc,
					      &elen, &rel);
			free(mand);
			free(opt);
			if (rc)
				goto out;
			memcpy(enc + rel, b + pos + (e->data_off - e->off), (size_t)e->data_len);
			memcpy(b + pos, enc, elen); /* never longer than the original */
			free(enc);
			pos += elen;
			continue;
		}
		pos += (size_t)e->size;
	}
	b[pos++] = 0;
	b[pos++] = 0;
	if (img->fixed) {
		/* In place, through a copy and a recovery record (recovery.c);
		 * it marks the handle broken itself once storage may differ. */
		rc = bs__compact_fixed(img, b, pos);
		if (rc)
			goto out;
	} else if ((rc = img->be->ops->replace(img->be->ctx, b, pos))) {
		/* A file may have been renamed into place before the failure
		 * (directory fsync): the offsets this handle knows are then wrong. */
		img->broken = true;
		rc = bs__err(img, NULL, BS_NO_OFFSET, rc, "compact failed: %s", backend_msg(img));
		goto out;
	}
	/* Re-read the new directory from memory and move the new positions
	 * into the existing handles (same order, same count). */
	{
		bs_image tmp = {.be = img->be, .label = img->label, .size = pos,
				.flags = BS_OPEN_RDONLY};
		rc = scan(&tmp, b, NULL); /* its metas move to IMG */
		if (!rc && tmp.count != img->count)
			rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ECORRUPT,
				     "internal: compacted directory differs");
		for (size_t i = 0; !rc && i < tmp.count; i++) {
			bs_entry *n = tmp.list[i], *e = img->list[i];
			e->off = n->off;
			e->size = n->size;
			e->data_off = n->data_off;
			e->data_len = n->data_len;
			e->supersedes = n->supersedes;
			if (!e->status) {
				hash_remove(img, e);
				struct bs_meta *sw = e->m;
				e->m = n->m;
				n->m = sw;
				hash_insert(img, e);
			}
		}
		for (size_t i = 0; i < tmp.count; i++)
			entry_free(&tmp, tmp.list[i]);
		pool_free(&tmp);
		free(tmp.list);
		if (!img->fixed)
			img->size = pos;
		img->dir_end = pos;
		img->holes = 0;
	}
out:
	free(b);
	return rc;
}

int bs_check(bs_image *img, int schema, bs_check_cb cb, void *ctx)
{
	int first = BS_OK;
	for (size_t i = 0; i < img->count; i++) {
		bs_entry *e = img->list[i];
		int rc = BS_OK;
		if (e->status) {
			rc = e->status;
			if (cb)
				cb(ctx, e, e->off, rc, bs_entry_status_msg(e));
		} else if (e->slotted) {
			rc = bs__slot_check(img, e, cb, ctx);
		}
		if (!e->status && schema) {
			uint8_t *b = malloc((size_t)e->size);
			char why[256];
			int src;
			if (!b) {
				rc = BS_ENOMEM;
			} else if ((src = bs__read(img, e, b, (size_t)e->size, e->off))) {
				rc = src;
				if (cb)
					cb(ctx, e, e->off, rc, bs_errmsg());
			} else if (bs__schema_check_entry(b, (size_t)e->size, why, sizeof why)) {
				rc = rc ? rc : BS_ECORRUPT;
				if (cb)
					cb(ctx, e, e->off, BS_ECORRUPT, why);
			}
			free(b);
		}
		if (rc && !first)
			first = rc;
	}
	if (img->be->ops->resize && img->size > img->dir_end && cb) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "%llu octets after the end-of-contents (an interrupted append, or damage "
			 "that ended the directory early); the next change overwrites them",
			 (unsigned long long)(img->size - img->dir_end));
		cb(ctx, NULL, img->dir_end, BS_OK, msg);
	}
	if (img->superseded_pending && cb)
		cb(ctx, NULL, BS_NO_OFFSET, BS_OK,
		   "an interrupted rewrite left an old copy; the next writer removes it");
	return first;
}
