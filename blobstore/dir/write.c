/* write.c - creating, rewriting and deleting entries, and their data
 * through the slots (data.h).
 *
 * Every new encoding of an entry goes through build(): the attribute list
 * (codec.h) gets bs.slots, is sorted, encoded, and the data area filled
 * with the initial value, sealed under the image's key for an encrypted
 * entry.  A rewrite is copy-on-write: the new copy is appended naming the
 * old one in bs.supersedes, then the old one is deleted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dir.h"

int bs__writable(bs_image *img, const bs_entry *e)
{
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, e, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	if (img->io.broken)
		return bs__err(img, e, BS_NO_OFFSET, BS_ESTALE,
			       "an earlier write failed and left the storage state unknown: reopen the image");
	if (e && e->status)
		return bs__err(img, e, e->off, e->status, "entry refused: %s",
			       e->status_msg ? e->status_msg : bs_error_string(e->status));
	/* bs.key and the like change only through their own functions. */
	if (e && e->m && e->m->type && !strncmp(e->m->type, BS_RESERVED_PREFIX, 3))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the library's own entry");
	return BS_OK;
}

bs_entry *bs__key_entry(const bs_image *img)
{
	for (size_t i = 0; i < img->count; i++) {
		bs_entry *e = img->list[i];
		if (e->m && e->m->type && !strcmp(e->m->type, BS_TYPE_KEY) && !e->m->name)
			return e;
	}
	return NULL;
}

size_t bs__key_orphans(const bs_image *img)
{
	if (bs__key_entry(img))
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < img->count; i++)
		n += img->list[i]->aead;
	return n;
}

const char bs__key_lost_msg[] =
	"the image's key entry (bs.key) is missing or damaged, so no key can open its "
	"encrypted entries; encrypt-init would install a new key that cannot open them either: "
	"restore the image from a backup ('blobstore salvage' copies the plaintext entries)";

int bs__key_ready(bs_image *img, const bs_entry *e)
{
	if (img->key)
		return BS_OK;
	if (!bs__key_entry(img) && ((e && e->aead) || bs__key_orphans(img)))
		return bs__err(img, e, BS_NO_OFFSET, BS_ECORRUPT, "%s", bs__key_lost_msg);
	if (!bs__key_entry(img))
		return bs__err(img, e, BS_NO_OFFSET, BS_EKEY,
			       "no key: the image is not set up for encryption (blobstore encrypt-init)");
	return bs__err(img, e, BS_NO_OFFSET, BS_EKEY,
		       e ? "entry is encrypted and no key is loaded (give a key file or passphrase)"
			 : "no key is loaded (give a key file or passphrase)");
}

size_t bs__data_capacity(const bs_entry *e)
{
	if (!e->slotted)
		return (size_t)e->data_len;
	size_t c = (size_t)(e->data_len / 2 - bs__slot_hdr_len(e->alg));
	if (e->aead)
		return c > BS_AEAD_OVERHEAD ? c - BS_AEAD_OVERHEAD : 0;
	return c;
}

/* ---- the data of an existing entry ----------------------------------------------- */

/* E's slots, as the data layer sees them; put_slots() keeps what it learnt. */
static struct bs__slots slots_of(const bs_entry *e)
{
	return (struct bs__slots){e->data_off, e->data_len, e->alg, e->active, e->gen};
}

static void put_slots(bs_entry *e, const struct bs__slots *s)
{
	e->active = s->active;
	e->gen = s->gen;
}

/* The sealing context of encrypted E: its stored attribute sets, in L. */
static int sealctx_of(bs_image *img, const bs_entry *e, struct bs__sealctx *sc,
		      struct bs__attrs *l)
{
	int rc = bs__key_ready(img, e);
	if (rc)
		return rc;
	if (bs__attrs_init(l, e->m->nmand + e->m->nopt) || bs__attrs_keep(l, e->m, NULL, NULL)) {
		bs__attrs_free(l);
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	*sc = (struct bs__sealctx){img->key, e->aead,
				   {img->id, e->m->type, e->m->name, l->mand, l->opt, l->nmand,
				    l->nopt}};
	return BS_OK;
}

/* A read-only handle holds no lock: since its scan another process may
 * have rewritten or deleted E (a new copy elsewhere, the old one wiped) or
 * compacted the image (entries moved: on fixed-size storage in place, on a
 * file by renaming a new file over it).  E's offsets then point at other
 * octets: a wiped slot that fails its check, or another entry's valid
 * slot.  Checked after every read through them, so that the read happened
 * while E was still there: RC stands when E's head octets are still those
 * the scan read, no compaction began since and the file is still the
 * image; else BS_ESTALE.  A rewrite or delete changes the head's first
 * octet before it wipes anything, and a compaction its record before it
 * moves anything. */
static int reader_view(bs_image *img, bs_entry *e, int rc)
{
	if (!(img->flags & BS_OPEN_RDONLY) || rc == BS_ENOMEM || rc == BS_EINVAL)
		return rc;
	const char *why = NULL;
	bool moved = false;
	if (bs__file_replaced(img->io.be)) {
		why = "the image file was replaced or removed (a compaction in another process renames a new file over it)";
	} else {
		int r2 = bs__recovery_changed(img, &moved);
		if (r2)
			return r2;
		if (moved)
			why = "another process compacted the image in place";
	}
	if (!why) {
		bool same;
		int r2 = bs__head_same(img, e, &same);
		if (r2)
			return r2;
		if (!same)
			why = "another process rewrote, deleted or moved the entry";
	}
	if (!why)
		return rc;
	return bs__err(img, e, e->off, BS_ESTALE, "%s since this handle read the directory: reopen the image", why);
}

static int data_read(bs_image *img, bs_entry *e, void **out, size_t *len, uint8_t *buf,
		     size_t bufsize, bool alloc)
{
	struct bs__where w;
	bs__where_of(img, e, &w);
	if (!e->slotted) {
		size_t n = (size_t)e->data_len;
		if (!alloc && bufsize < n) {
			*len = n;
			return bs__err(img, e, BS_NO_OFFSET, BS_ERANGE, "buffer too small");
		}
		uint8_t *b = alloc ? malloc(n ? n : 1) : buf;
		if (!b)
			return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		int rc = n ? bs__io_read(&img->io, &w, b, n, e->data_off) : BS_OK;
		if (rc) {
			if (alloc)
				free(b);
			return rc;
		}
		if (alloc)
			*out = b;
		*len = n;
		return BS_OK;
	}
	struct bs__sealctx sc;
	struct bs__attrs l = {0};
	int rc = e->aead ? sealctx_of(img, e, &sc, &l) : BS_OK;
	if (rc)
		return rc;
	struct bs__slots s = slots_of(e);
	rc = bs__slot_read(&img->io, &w, &s, e->aead ? &sc : NULL, img->flags & BS_OPEN_RDONLY, out,
			   len, buf, bufsize, alloc);
	put_slots(e, &s);
	bs__attrs_free(&l);
	return rc;
}

int bs__data_read(bs_image *img, bs_entry *e, void **out, size_t *len, uint8_t *buf,
		  size_t bufsize, bool alloc)
{
	void *o = NULL;
	size_t l = 0;
	int rc = data_read(img, e, &o, &l, buf, bufsize, alloc);
	int v = reader_view(img, e, rc);
	if (v != rc) {
		if (!rc && alloc)
			free(o);
		return v;
	}
	if (!rc && alloc)
		*out = o;
	if (!rc || rc == BS_ERANGE)
		*len = l;
	return rc;
}

int bs__data_check(bs_image *img, bs_entry *e, struct bs__slot_report *rep)
{
	struct bs__where w;
	bs__where_of(img, e, &w);
	struct bs__sealctx sc;
	struct bs__attrs l = {0};
	/* Without the key only the slot checks can be verified. */
	bool authenticate = e->aead && img->key;
	int rc = authenticate ? sealctx_of(img, e, &sc, &l) : BS_OK;
	if (rc)
		return rc;
	struct bs__slots s = slots_of(e);
	rc = bs__slot_check(&img->io, &w, &s, authenticate ? &sc : NULL, rep);
	bs__attrs_free(&l);
	return reader_view(img, e, rc);
}

int bs__data_inspect(bs_image *img, bs_entry *e, struct bs__slot_view v[2], int *current)
{
	struct bs__where w;
	bs__where_of(img, e, &w);
	struct bs__slots s = slots_of(e);
	return reader_view(img, e, bs__slot_inspect(&img->io, &w, &s, v, current));
}

/* ---- building entries --------------------------------------------------------------- */

/* How an encoding is built. */
struct build {
	size_t capacity;       /* what callers may store */
	enum bs_check_alg alg;
	bool raw;
	enum bs_aead aead;     /* encrypt the initial slot (bs.aead is in the list) */
	uint64_t gen;          /* generation of the initial slot (0: 1) */
};

/* Encodes a complete entry from its attribute list L (not yet sorted), the
 * build options and the initial data. */
static int build(bs_image *img, const char *type, const char *name, struct bs__attrs *l,
		 const struct build *o, const void *data, size_t len, uint8_t **out,
		 size_t *out_len)
{
	if (!o->raw) {
		/* SEQUENCE { IA5String "bs.slots", IA5String alg } */
		const char *alg = o->alg == BS_CHECK_SHA256 ? "sha256" : "crc32c";
		uint8_t v[8] = {DER_IA5STRING, 6};
		memcpy(v + 2, alg, 6);
		int rc = bs__attrs_add(l, BS_ATTR_SLOTS, v, 8, true);
		if (rc)
			return bs__err(img, NULL, BS_NO_OFFSET, rc,
				       rc == BS_ELIMIT ? "too many attributes" : "out of memory");
	}
	if (bs__attrs_sort(l))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "duplicate attribute");
	size_t h = bs__slot_hdr_len(o->alg);
	size_t ovh = o->aead ? BS_AEAD_OVERHEAD : 0;
	uint64_t gen = o->gen ? o->gen : 1;
	uint64_t data_len = o->raw ? len : 2 * ((uint64_t)h + o->capacity + ovh);
	uint64_t data_rel;
	int rc = bs__entry_encode(type, name, l->mand, l->nmand, l->opt, l->nopt, data_len, out,
				  out_len, &data_rel);
	if (rc)
		return bs__err_key(img->label, type, name, rc, "entry too large for the limits");
	if (o->raw) {
		if (len)
			memcpy(*out + data_rel, data, len);
	} else if (o->aead) {
		/* The sets are sorted now: the associated data is final. */
		struct bs__sealctx sc = {img->key, o->aead,
					 {img->id, type, name, l->mand, l->opt, l->nmand, l->nopt}};
		struct bs__where w = {img->label, type, name};
		uint8_t *ct = malloc(len + BS_AEAD_OVERHEAD);
		rc = !ct ? bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory")
			 : (rc = bs__key_ready(img, NULL)) ? rc
			 : bs__seal(&sc, gen, data, len, ct, &w);
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

static int capacity_for(bs_image *img, const char *type, const char *name, size_t capacity,
			size_t len, struct build *o)
{
	if (capacity < len)
		capacity = len;
	if (capacity > BS_MAX_ENTRY_SIZE / 2 - 64)
		return bs__err_key(img->label, type, name, BS_ELIMIT,
				   "capacity larger than the entry size limit");
	o->capacity = capacity;
	return BS_OK;
}

/* Adds the caller's attributes ATTRS[0..N) to L; LIB allows "bs." names. */
static int add_attrs(bs_image *img, const bs_entry *e, struct bs__attrs *l,
		     const struct bs_attr *attrs, size_t n, bool lib)
{
	for (size_t i = 0; i < n; i++) {
		const struct bs_attr *a = &attrs[i];
		if (!a->name || (!lib && !strncmp(a->name, BS_RESERVED_PREFIX, 3)))
			return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
				       "attribute names starting with 'bs.' are reserved");
		int rc = bs__attrs_add(l, a->name, a->value, a->value_len,
				       (a->flags & BS_ATTR_MANDATORY) != 0);
		if (rc == BS_ELIMIT && (a->flags & BS_ATTR_MANDATORY ? l->nmand : l->nopt) >= l->cap)
			return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT, "too many attributes");
		if (rc)
			return bs__err(img, e, BS_NO_OFFSET, rc,
				       "attribute '%s': bad name or value (not DER)", a->name);
	}
	return BS_OK;
}

int bs__dir_create(bs_image *img, const struct bs__newentry *ne, const void *data, size_t len,
		   bs_entry **out)
{
	const char *type = ne->type, *name = ne->name;
	int rc = bs__writable(img, NULL);
	if (rc)
		return rc;
	if (bs__table_find(img, type, name))
		return bs__err_key(img->label, type, name, BS_EEXIST, "entry already exists");
	struct build o = {.alg = ne->alg ? ne->alg : BS_CHECK_CRC32C, .raw = ne->raw,
			  .aead = ne->aead};
	if (o.aead && (rc = bs__key_ready(img, NULL)))
		return rc;
	if ((rc = capacity_for(img, type, name, o.raw ? len : ne->capacity, len, &o)))
		return rc;
	struct bs__attrs l;
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	if (bs__attrs_init(&l, ne->nattrs + 2))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	rc = add_attrs(img, NULL, &l, ne->attrs, ne->nattrs, ne->lib);
	for (size_t i = 0; !rc && i < ne->nattrs; i++)
		for (size_t j = i + 1; !rc && j < ne->nattrs; j++)
			if (!strcmp(ne->attrs[i].name, ne->attrs[j].name))
				rc = bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
					     "attribute '%s' given twice", ne->attrs[i].name);
	if (!rc && o.aead) {
		uint8_t *a;
		size_t al;
		if (!(rc = bs__seal_attr(o.aead, &a, &al))) {
			l.owned[l.nowned++] = a;
			rc = bs__attrs_add_tlv(&l, a, al, true);
		}
	}
	if (!rc)
		rc = build(img, type, name, &l, &o, data, len, &enc, &enc_len);
	uint64_t off;
	if (!rc)
		rc = bs__dir_append(img, enc, enc_len, &off);
	bs_entry *e = NULL;
	if (!rc) {
		e = bs__entry_new(img);
		if (!e || (rc = bs__dir_adopt(img, e, enc, off)) || (rc = bs__list_push(img, e))) {
			/* Stored, but this handle cannot track it: the caller reopens. */
			bs__entry_free(img, e);
			e = NULL;
			rc = bs__err(img, NULL, off, BS_ENOMEM, "out of memory after storing the entry");
		} else if (bs__table_insert(img, e)) {
			bs__list_remove(img, e);
			bs__entry_free(img, e);
			e = NULL;
			rc = bs__err(img, NULL, off, BS_ENOMEM, "out of memory after storing the entry");
		}
	}
	if (e) {
		e->active = o.raw ? -1 : 0;
		e->gen = 1;
		if (out)
			*out = e;
	}
	bs__attrs_free(&l);
	free(enc);
	return rc;
}

/* ---- rewriting ----------------------------------------------------------------------- */

/* Attributes a rewrite replaces, drops or recomputes. */
static bool owned_by(const struct bs__attr_ref *a, void *ctx)
{
	const struct bs__rewrite *rw = ctx;
	for (size_t k = 0; k < rw->nset; k++)
		if (!strcmp(a->cname, rw->set[k].name))
			return true;
	return !strcmp(a->cname, BS_ATTR_SLOTS) || !strcmp(a->cname, BS_ATTR_SUPERSEDES) ||
	       (rw->attr && !strcmp(a->cname, rw->attr));
}

/* Overwrites OLD's data area with zeros, durably. */
static int wipe_data(bs_image *img, const bs_entry *old)
{
	static const uint8_t zeros[65536];
	struct bs__where w;
	bs__where_of(img, old, &w);
	int rc = BS_OK;
	for (uint64_t pos = old->data_off, end = old->data_off + old->data_len; !rc && pos < end;) {
		size_t k = end - pos > sizeof zeros ? sizeof zeros : (size_t)(end - pos);
		rc = bs__io_write(&img->io, &w, zeros, k, pos);
		pos += k;
	}
	return rc ? rc : bs__io_sync(&img->io);
}

int bs__dir_rewrite(bs_image *img, bs_entry *e, const struct bs__rewrite *rw)
{
	int rc;
	void *cur = NULL;
	size_t cur_len = 0;
	const void *data = rw->data;
	size_t len = rw->len;
	if (!data) {
		rc = bs__data_read(img, e, &cur, &cur_len, NULL, 0, true);
		if (rc)
			return rc;
		data = cur;
		len = cur_len;
	}
	struct bs__meta *m = e->m;
	struct bs__attrs l;
	uint8_t *enc = NULL;
	size_t enc_len;
	if (bs__attrs_init(&l, m->nmand + m->nopt + 2 + rw->nset)) {
		rc = bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto out;
	}
	/* Every attribute byte for byte, but the ones this rewrite owns. */
	rc = bs__attrs_keep(&l, m, owned_by, (void *)rw);
	if (!rc && rw->attr && !rw->remove) {
		rc = bs__attrs_add(&l, rw->attr, rw->value, rw->value_len,
				   (rw->attr_flags & BS_ATTR_MANDATORY) != 0);
		if (rc)
			rc = bs__err(img, e, BS_NO_OFFSET, rc, "attribute '%s': bad name or value",
				     rw->attr);
	}
	if (!rc)
		rc = add_attrs(img, e, &l, rw->set, rw->nset, true);
	if (rc)
		goto out;
	if (l.nmand + 1 > BS_MAX_ATTRS || l.nopt + 1 > BS_MAX_ATTRS) {
		rc = bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT, "too many attributes");
		goto out;
	}
	uint8_t iv[BS__DER_MAX_INT];
	size_t il = bs__der_encode_int((int64_t)e->off, iv, sizeof iv);
	if ((rc = bs__attrs_add(&l, BS_ATTR_SUPERSEDES, iv, il, false))) {
		rc = bs__err(img, e, BS_NO_OFFSET, rc, "out of memory");
		goto out;
	}
	/* The copy's generations continue the old ones, so that no slot of
	 * the old copy can be replayed into the new one. */
	struct build o = {.alg = e->alg, .raw = !e->slotted,
			  .aead = rw->aead ? rw->aead : e->aead};
	if (e->slotted) {
		struct bs__where w;
		bs__where_of(img, e, &w);
		struct bs__slots s = slots_of(e);
		if ((rc = bs__slot_next_gen(&img->io, &w, &s, &o.gen)))
			goto out;
	}
	size_t cap = rw->capacity > bs__data_capacity(e) ? rw->capacity : bs__data_capacity(e);
	if ((rc = capacity_for(img, m->type, m->name, o.raw ? len : cap, len, &o)))
		goto out;
	if (o.alg == BS_CHECK_NONE)
		o.alg = BS_CHECK_CRC32C;
	rc = build(img, m->type, m->name, &l, &o, data, len, &enc, &enc_len);
	if (rc)
		goto out;
	uint64_t off, old_off = e->off, old_size = e->size;
	if ((rc = bs__dir_append(img, enc, enc_len, &off)))
		goto out;
	/* Committed: the new copy wins from here on, even before the delete. */
	bs_entry old = *e;
	old.m = NULL;
	old.status_msg = NULL;
	if ((rc = bs__dir_adopt(img, e, enc, off)))
		goto out;
	e->active = o.raw ? -1 : 0;
	e->gen = o.gen ? o.gen : 1;
	bs__list_remove(img, e);
	bs__list_push(img, e); /* cannot fail: the slot just freed */
	old.off = old_off;
	old.size = old_size;
	old.m = e->m; /* for messages only */
	/* The old copy is superseded already: its data can go before the
	 * delete, so that no crash leaves it in storage (rw->wipe_old). */
	if (rw->wipe_old && (rc = wipe_data(img, &old)))
		goto out;
	rc = bs__dir_delete_at(img, &old);
out:
	if (cur && (e->aead || rw->aead))
		OPENSSL_cleanse(cur, cur_len);
	free(cur);
	bs__attrs_free(&l);
	free(enc);
	return rc;
}

int bs__data_write(bs_image *img, bs_entry *e, const void *data, size_t len, size_t capacity)
{
	if (e->slotted && len <= bs__data_capacity(e)) {
		struct bs__where w;
		bs__where_of(img, e, &w);
		struct bs__sealctx sc;
		struct bs__attrs l = {0};
		int rc = e->aead ? sealctx_of(img, e, &sc, &l) : BS_OK;
		if (rc)
			return rc;
		struct bs__slots s = slots_of(e);
		rc = bs__slot_write(&img->io, &w, &s, e->aead ? &sc : NULL, data, len);
		put_slots(e, &s);
		bs__attrs_free(&l);
		return rc;
	}
	struct bs__rewrite rw = {.data = data ? data : "", .len = len,
				 .capacity = capacity > len ? capacity : len};
	return bs__dir_rewrite(img, e, &rw);
}

int bs__dir_delete(bs_image *img, bs_entry *e)
{
	int rc = bs__dir_delete_at(img, e);
	if (rc)
		return rc;
	bs__table_remove(img, e);
	bs__list_remove(img, e);
	bs__entry_free(img, e);
	return BS_OK;
}
