/* compact.c - rewriting the directory without free elements.
 *
 * The new image is built in memory; files replace the old one atomically
 * (rename), fixed-size storage copies it in place through a recovery
 * record (recovery.c).  Entries keep their handles: the new positions move
 * into them afterwards. */
#include <stdlib.h>
#include <string.h>

#include "dir.h"

static bool is_supersedes(const struct bs__attr_ref *a, void *ctx)
{
	BS_UNUSED(ctx);
	return !strcmp(a->cname, BS_ATTR_SUPERSEDES);
}

/* E's encoding without bs.supersedes (offsets change, and the copy it
 * names is gone) at B (E's octets, where the new one goes: never longer);
 * *N gets the new length.  Everything else stays byte for byte. */
static int drop_supersedes(bs_image *img, bs_entry *e, uint8_t *b, size_t *n)
{
	struct bs__attrs l;
	uint8_t *enc = NULL;
	size_t elen;
	uint64_t rel;
	int rc = bs__attrs_init(&l, e->m->nmand + e->m->nopt);
	if (!rc)
		rc = bs__attrs_keep(&l, e->m, is_supersedes, NULL);
	if (!rc)
		rc = bs__entry_encode(e->m->type, e->m->name, l.mand, l.nmand, l.opt, l.nopt,
				      e->data_len, &enc, &elen, &rel);
	bs__attrs_free(&l);
	if (rc)
		return rc == BS_ENOMEM ? bs__err(img, e, BS_NO_OFFSET, rc, "out of memory") : rc;
	memcpy(enc + rel, b + (e->data_off - e->off), (size_t)e->data_len);
	memcpy(b, enc, elen);
	free(enc);
	*n = elen;
	return BS_OK;
}

/* Moves the positions of the compacted copy C (POS octets) into the
 * image's entries (same order, same count). */
static int adopt_positions(bs_image *img, const uint8_t *c, size_t pos)
{
	bs_image tmp = {.io = {.be = img->io.be, .label = img->label, .size = pos},
			.label = img->label, .flags = BS_OPEN_RDONLY};
	int rc = bs__scan(&tmp, c, false); /* its metas move to IMG */
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
			bs__table_remove(img, e);
			struct bs__meta *sw = e->m;
			e->m = n->m;
			n->m = sw;
			bs__table_insert(img, e);
		}
	}
	for (size_t i = 0; i < tmp.count; i++)
		bs__entry_free(&tmp, tmp.list[i]);
	bs__pool_free(&tmp);
	free(tmp.list);
	if (!img->io.fixed)
		img->io.size = pos;
	img->dir_end = pos;
	img->holes = 0;
	return rc;
}

int bs__dir_compact(bs_image *img)
{
	int rc = bs__writable(img, NULL);
	if (!rc)
		rc = bs__dir_tail_refuse(img); /* it would cut off what lies there */
	if (rc)
		return rc;
	if (!img->io.be->ops->replace && !img->io.fixed)
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
		struct bs__where w;
		bs__where_of(img, e, &w);
		if ((rc = bs__io_read(&img->io, &w, b + pos, (size_t)e->size, e->off)))
			goto out;
		size_t n = (size_t)e->size;
		if (!e->status && e->supersedes != UINT64_MAX &&
		    (rc = drop_supersedes(img, e, b + pos, &n)))
			goto out;
		pos += n;
	}
	b[pos++] = 0;
	b[pos++] = 0;
	if (img->io.fixed) {
		/* In place, through a copy and a recovery record (recovery.c);
		 * it marks the handle broken itself once storage may differ. */
		rc = bs__compact_fixed(img, b, pos);
		if (rc)
			goto out;
	} else if ((rc = img->io.be->ops->replace(img->io.be->ctx, b, pos))) {
		/* A file may have been renamed into place before the failure
		 * (directory fsync): the offsets this handle knows are then wrong. */
		img->io.broken = true;
		rc = bs__error_wrap(&(struct bs__where){.label = img->label}, BS_NO_OFFSET, rc,
				    "compact failed");
		goto out;
	}
	rc = adopt_positions(img, b, pos);
out:
	free(b);
	return rc;
}
