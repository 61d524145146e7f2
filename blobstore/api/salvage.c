/* salvage.c - bs_image_salvage(): the intact entries of damaged storage,
 * copied into a new image.
 *
 * The scan (dir/salvage.c) finds every entry that passes the strict parse
 * and a slot check, wherever the directory's framing broke.  Here: which
 * copy of an entry found twice wins, what is past the end of the
 * directory, and the new image, written as "31 80", the image entry (its
 * id keeps encrypted entries readable), every other entry byte for byte
 * (less bs.supersedes, as compaction drops it), "00 00". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* What becomes of one scan item. */
struct fate {
	bool keep;          /* an entry copied into the new image */
	int code;           /* why not (BS_EEXIST, BS_ESTALE, BS_EKEY), or the scan's */
	char note[200];     /* a remark on a kept entry, or why it is not kept */
	uint64_t new_off;
};

static bool is_image_entry(const struct bs__found *f)
{
	return f->entry && !strcmp(f->d.m->type, BS_TYPE_IMAGE) && !f->d.m->name;
}

/* Order of entries by type, then name (unnamed first), then offset. */
static int by_key(const void *a, const void *b, void *ctx)
{
	const struct bs__found *base = ctx;
	const struct bs__found *x = &base[*(const size_t *)a];
	const struct bs__found *y = &base[*(const size_t *)b];
	int c = strcmp(x->d.m->type, y->d.m->type);
	if (c)
		return c;
	if (!x->d.m->name != !y->d.m->name)
		return x->d.m->name ? 1 : -1;
	if (x->d.m->name && (c = strcmp(x->d.m->name, y->d.m->name)))
		return c;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Whether copy A is to be kept over copy B of the same entry. */
static bool better(const struct bs__found *a, const struct bs__found *b)
{
	/* Inside the directory before past its end: an update that did not
	 * commit, or a stale copy on fixed-size storage, lies past the end. */
	if (a->past_end != b->past_end)
		return !a->past_end;
	/* A rewrite that stopped before deleting the old copy: the new one
	 * names the old one's offset. */
	if (a->d.supersedes == b->off)
		return true;
	if (b->d.supersedes == a->off)
		return false;
	if (a->gen != b->gen)
		return a->gen > b->gen;
	return a->off < b->off;
}

/* Keeps one copy of every entry found more than once. */
static int resolve_duplicates(const struct bs__found *f, size_t n, struct fate *fate)
{
	size_t m = 0, *idx = malloc((n ? n : 1) * sizeof *idx);
	if (!idx)
		return BS_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (fate[i].keep)
			idx[m++] = i;
	qsort_r(idx, m, sizeof *idx, by_key, (void *)f);
	for (size_t i = 0; i < m;) {
		size_t j = i + 1;
		while (j < m && !strcmp(f[idx[i]].d.m->type, f[idx[j]].d.m->type) &&
		       !f[idx[i]].d.m->name == !f[idx[j]].d.m->name &&
		       (!f[idx[i]].d.m->name || !strcmp(f[idx[i]].d.m->name, f[idx[j]].d.m->name)))
			j++;
		size_t win = idx[i];
		for (size_t k = i + 1; k < j; k++)
			if (better(&f[idx[k]], &f[win]))
				win = idx[k];
		for (size_t k = i; k < j; k++) {
			size_t x = idx[k];
			if (x == win)
				continue;
			fate[x].keep = false;
			fate[x].code = BS_EEXIST;
			snprintf(fate[x].note, sizeof fate[x].note,
				 "%s copy of the entry at offset %llu, which is kept",
				 f[win].d.supersedes == f[x].off ? "an old" : "another",
				 (unsigned long long)f[win].off);
		}
		i = j;
	}
	free(idx);
	return BS_OK;
}

static void add_note(struct fate *t, const char *s)
{
	size_t l = strlen(t->note);
	snprintf(t->note + l, sizeof t->note - l, "%s%s", l ? "; " : "", s);
}

static bool skip_supersedes(const struct bs__attr_ref *a, void *ctx)
{
	BS_UNUSED(ctx);
	return !strcmp(a->cname, BS_ATTR_SUPERSEDES);
}

/* Copies LEN octets from SRC at FROM to DST at TO. */
static int copy_range(struct bs__io *src, struct bs__io *dst, uint64_t from, uint64_t len,
		      uint64_t to)
{
	uint8_t *b = malloc(len < 65536 ? (len ? (size_t)len : 1) : 65536);
	if (!b)
		return BS_ENOMEM;
	int rc = BS_OK;
	for (uint64_t done = 0; !rc && done < len;) {
		size_t k = len - done < 65536 ? (size_t)(len - done) : 65536;
		rc = bs__io_read(src, NULL, b, k, from + done);
		if (!rc)
			rc = bs__io_write(dst, NULL, b, k, to + done);
		done += k;
	}
	free(b);
	return rc;
}

/* Writes entry F at TO of DST; *LEN gets its new length. */
static int write_entry(struct bs__io *src, struct bs__io *dst, const struct bs__found *f,
		       uint64_t to, uint64_t *len)
{
	if (f->d.supersedes == UINT64_MAX) {
		*len = f->len;
		return copy_range(src, dst, f->off, f->len, to);
	}
	/* Its offset means nothing in the new image, where it could even name
	 * another entry. */
	struct bs__attrs l;
	uint8_t *enc = NULL;
	size_t elen;
	uint64_t rel;
	const struct bs__meta *m = f->d.m;
	int rc = bs__attrs_init(&l, m->nmand + m->nopt);
	if (!rc)
		rc = bs__attrs_keep(&l, m, skip_supersedes, NULL);
	if (!rc)
		rc = bs__entry_encode(m->type, m->name, l.mand, l.nmand, l.opt, l.nopt, f->data_len,
				      &enc, &elen, &rel);
	bs__attrs_free(&l);
	if (rc)
		return rc;
	rc = bs__io_write(dst, NULL, enc, (size_t)rel, to);
	if (!rc)
		rc = copy_range(src, dst, f->data_off, f->data_len, to + rel);
	if (!rc)
		rc = bs__io_write(dst, NULL, enc + rel + f->data_len,
				  (size_t)(elen - rel - f->data_len), to + rel + f->data_len);
	free(enc);
	*len = elen;
	return rc;
}

/* The image entry with id ID: what format writes (dir/open.c). */
static int image_entry_with(const uint8_t id[16], uint8_t **out, size_t *len)
{
	uint8_t val[20];
	size_t vl = bs__der_encode_octets(id, 16, val, sizeof val);
	struct bs__attrs l;
	uint64_t rel;
	int rc = bs__attrs_init(&l, 1);
	if (!rc)
		rc = bs__attrs_add(&l, BS_ATTR_ID, val, vl, false);
	if (!rc)
		rc = bs__entry_encode(BS_TYPE_IMAGE, NULL, NULL, 0, l.opt, l.nopt, 0, out, len, &rel);
	bs__attrs_free(&l);
	return rc;
}

/* The id of a damaged image entry: its bs.id attribute, SEQUENCE {
 * IA5String "bs.id", OCTET STRING (16) }, looked for where the image entry
 * was (the directory's first octets).  *AT gets where the id starts. */
static bool find_image_id(struct bs__io *src, uint8_t id[16], uint64_t *at)
{
	static const uint8_t pat[] = {DER_IA5STRING, 5, 'b', 's', '.', 'i', 'd', DER_OCTET_STRING, 16};
	uint8_t b[512];
	size_t n = src->size < sizeof b ? (size_t)src->size : sizeof b;
	if (n < sizeof pat + 16 || bs__io_read(src, NULL, b, n, 0))
		return false;
	for (size_t i = 0; i + sizeof pat + 16 <= n; i++) {
		if (memcmp(b + i, pat, sizeof pat))
			continue;
		memcpy(id, b + i + sizeof pat, 16);
		*at = i + sizeof pat;
		return true;
	}
	return false;
}

/* A fresh image entry (a new id), from formatting a memory image. */
static int fresh_image_entry(uint8_t **out, size_t *len)
{
	struct bs_backend *mb;
	bs_image *tmp;
	int rc = bs_backend_mem(NULL, 0, &mb);
	if (rc)
		return rc;
	if ((rc = bs__dir_open(mb, "salvage", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &tmp)))
		return rc;
	bs_entry *e = tmp->image_entry;
	uint8_t *b = malloc((size_t)e->size);
	rc = !b ? BS_ENOMEM : bs__io_read(&tmp->io, NULL, b, (size_t)e->size, e->off);
	if (!rc) {
		*out = b;
		*len = (size_t)e->size;
		b = NULL;
	}
	free(b);
	bs__dir_close(tmp);
	return rc;
}

static void report(const struct bs_salvage_opts *o, const struct bs__found *f,
		   const struct fate *t)
{
	if (!o->cb)
		return;
	struct bs_salvage_item it = {.version = BS_SALVAGE_ITEM_VERSION};
	it.recovered = t->keep;
	it.offset = f->off;
	it.length = f->len;
	it.new_offset = t->keep ? t->new_off : UINT64_MAX;
	if (f->entry) {
		it.type = f->d.m->type;
		it.name = f->d.m->name;
	} else {
		it.type = f->type;
		it.name = f->name;
	}
	it.code = t->keep ? BS_OK : t->code;
	it.note = t->note[0] ? t->note : (!t->keep && f->why ? f->why : NULL);
	o->cb(o->ctx, &it);
}

int bs_image_salvage(struct bs_backend *damaged, const char *label, struct bs_backend *out,
		     const char *out_label, const struct bs_salvage_opts *opts)
{
	static const struct bs_salvage_opts defaults = BS_SALVAGE_OPTS_INIT;
	if (!opts)
		opts = &defaults;
	if (!damaged || !out || damaged == out)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL,
				 "salvage needs the damaged storage and another, empty one");
	if (opts->version != BS_SALVAGE_OPTS_VERSION ||
	    (opts->flags & ~(BS_SALVAGE_PAST_END | BS_SALVAGE_NOSYNC)))
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL,
				 "salvage options of unknown version or flags (BS_SALVAGE_OPTS_INIT)");
	label = label ? label : "(damaged image)";
	out_label = out_label ? out_label : "(new image)";
	struct bs__io src = {.be = damaged, .label = label};
	struct bs__io dst = {.be = out, .label = out_label,
			     .nosync = (opts->flags & BS_SALVAGE_NOSYNC) != 0};
	uint64_t out_size;
	int rc = damaged->ops->size(damaged->ctx, &src.size);
	if (!rc)
		rc = out->ops->size(out->ctx, &out_size);
	if (rc)
		return rc;
	if (src.size > BS_MAX_IMAGE_SIZE)
		return bs__error(BS__AT(label), BS_NO_OFFSET, BS_ELIMIT, "storage larger than the limit");
	if (out_size)
		return bs__error(BS__AT(out_label), BS_NO_OFFSET, BS_EEXIST,
				 "salvage writes into empty storage only (%llu octets there)",
				 (unsigned long long)out_size);
	/* Storage that grows holds nothing past the directory's end but what
	 * an update left that did not commit, or what damage cut off; fixed
	 * storage also keeps stale copies there (compaction in place). */
	bool past_end = (opts->flags & BS_SALVAGE_PAST_END) || damaged->ops->resize;
	struct bs__found *f;
	size_t n;
	if ((rc = bs__salvage_scan(&src, &f, &n)))
		return rc;
	struct fate *fate = calloc(n ? n : 1, sizeof *fate);
	uint8_t *img_entry = NULL;
	size_t img_len = 0;
	if (!fate) {
		rc = bs__error(BS__AT(label), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto out;
	}
	bool later_entry = false;
	for (size_t k = n; k-- > 0;) {
		struct fate *t = &fate[k];
		t->code = f[k].code;
		if (f[k].entry) {
			t->keep = true;
			if (f[k].past_end && !past_end) {
				t->keep = false;
				t->code = BS_ESTALE;
				snprintf(t->note, sizeof t->note,
					 "past the directory's end on fixed-size storage, where stale "
					 "copies of older or deleted entries stay (BS_SALVAGE_PAST_END, "
					 "salvage --past-end, copies it)");
			}
			later_entry |= t->keep;
		} else if (f[k].past_end && (f[k].zeros ? !later_entry : !past_end)) {
			/* Unused storage, not lost data. */
			t->code = BS_OK;
		}
	}
	if ((rc = resolve_duplicates(f, n, fate))) {
		rc = bs__error(BS__AT(label), BS_NO_OFFSET, rc, "out of memory");
		goto out;
	}
	/* The image entry first: the first kept one, or a fresh one. */
	size_t image = n;
	for (size_t k = 0; k < n && image == n; k++)
		if (fate[k].keep && is_image_entry(&f[k]))
			image = k;
	uint8_t id[16];
	uint64_t id_at = 0;
	bool have_id = image == n && find_image_id(&src, id, &id_at);
	if (image == n) {
		rc = have_id ? image_entry_with(id, &img_entry, &img_len)
			     : fresh_image_entry(&img_entry, &img_len);
		if (rc) {
			if (rc == BS_ENOMEM)
				rc = bs__error(BS__AT(label), BS_NO_OFFSET, rc, "out of memory");
			goto out;
		}
	}
	if (image == n && !have_id) {
		/* Encryption is bound to the lost image id. */
		for (size_t k = 0; k < n; k++) {
			if (!fate[k].keep || !(f[k].d.aead || !strcmp(f[k].d.m->type, BS_TYPE_KEY)))
				continue;
			fate[k].keep = false;
			fate[k].code = BS_EKEY;
			snprintf(fate[k].note, sizeof fate[k].note,
				 "encrypted under the image's id, which was in the image entry "
				 "(bs.image) that is lost");
		}
	}
	static const uint8_t head[2] = {DER_SET, 0x80}, eoc[2] = {0, 0};
	uint64_t pos = 2, len;
	rc = bs__io_write(&dst, NULL, head, 2, 0);
	if (!rc && image == n) {
		rc = bs__io_write(&dst, NULL, img_entry, img_len, pos);
		pos += img_len;
	} else if (!rc) {
		fate[image].new_off = pos;
		rc = write_entry(&src, &dst, &f[image], pos, &len);
		pos += len;
	}
	for (size_t k = 0; !rc && k < n; k++) {
		struct fate *t = &fate[k];
		if (!t->keep || k == image)
			continue;
		t->new_off = pos;
		rc = write_entry(&src, &dst, &f[k], pos, &len);
		pos += len;
		if (!f[k].d.slotted)
			add_note(t, "raw entry: its data has no check");
		if (f[k].newer_bad) {
			char b[120];
			snprintf(b, sizeof b, "its newest value is damaged: it reads its previous "
				 "value (generation %llu)", (unsigned long long)f[k].gen);
			add_note(t, b);
		}
		if (f[k].d.status)
			add_note(t, "refused here (a mandatory attribute this version does not "
				    "know): copied as it is");
		if (f[k].past_end)
			add_note(t, "found past the directory's end-of-contents");
	}
	if (!rc)
		rc = bs__io_write(&dst, NULL, eoc, 2, pos);
	if (!rc)
		rc = bs__io_sync(&dst);
	if (rc == BS_ENOMEM)
		rc = bs__error(BS__AT(out_label), BS_NO_OFFSET, rc, "out of memory");
	if (rc)
		goto out;
	if (image == n && opts->cb) {
		/* The image entry the new image starts with, made here. */
		char note[200];
		struct bs_salvage_item it = {.version = BS_SALVAGE_ITEM_VERSION, .recovered = 1,
					     .type = BS_TYPE_IMAGE, .offset = have_id ? id_at : 2,
					     .length = have_id ? 16 : 0, .new_offset = 2,
					     .code = BS_OK, .note = note};
		if (have_id)
			snprintf(note, sizeof note,
				 "the image entry is damaged: rebuilt with the image id found at "
				 "offset %llu (encrypted entries open only if that id is intact)",
				 (unsigned long long)id_at);
		else
			snprintf(note, sizeof note,
				 "the image entry is lost: the new image has a new image id");
		opts->cb(opts->ctx, &it);
	}
	for (size_t k = 0; k < n; k++)
		if (fate[k].keep || fate[k].code)
			report(opts, &f[k], &fate[k]);
out:
	free(img_entry);
	free(fate);
	bs__found_free(f, n);
	return rc;
}
