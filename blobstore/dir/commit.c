/* commit.c - the directory's one-octet commits.
 *
 *  - append writes "entry 00 00" just past the end-of-contents, syncs, then
 *    turns the old end-of-contents 00 00 into the pad 05 00;
 *  - delete turns the entry's tag 30 into 04, so the whole entry becomes
 *    free space of the same length;
 *  - a rewrite appends a new copy carrying bs.supersedes = old offset, then
 *    deletes the old copy; a reader that finds both takes the new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"

int bs__dir_append(bs_image *img, const uint8_t *buf, size_t n, uint64_t *off)
{
	uint64_t eoc = img->dir_end - 2;
	if (eoc + 2 + n + 2 > BS_MAX_IMAGE_SIZE)
		return bs__err(img, NULL, eoc, BS_ELIMIT, "image would exceed the size limit");
	uint8_t *tmp = malloc(n + 2);
	if (!tmp)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	memcpy(tmp, buf, n);
	tmp[n] = tmp[n + 1] = 0;
	int rc = bs__io_write(&img->io, NULL, tmp, n + 2, eoc + 2);
	free(tmp);
	if (!rc)
		rc = bs__io_sync(&img->io);
	if (!rc) {
		/* 00 00 -> 05 00: the end-of-contents becomes a NULL pad.  05 is
		 * two bit flips away from 00, so one flipped bit cannot forge an
		 * early end of the directory. */
		static const uint8_t pad_tag = DER_NULL;
		rc = bs__io_write(&img->io, NULL, &pad_tag, 1, eoc);
		if (!rc)
			rc = bs__io_sync(&img->io);
		if (!rc) {
			img->dir_end = eoc + 2 + n + 2;
			img->holes += 2;
			*off = eoc + 2;
			return BS_OK;
		}
		/* The commit octet may or may not be on storage now: the
		 * image's state is unknown, so stop using this handle's view. */
		img->io.broken = true;
		return rc;
	}
	/* Not committed: take back what went past the end (files). */
	const struct bs_backend_ops *ops = img->io.be->ops;
	if (ops->resize && img->io.size > img->dir_end &&
	    ops->resize(img->io.be->ctx, img->dir_end) == BS_OK)
		img->io.size = img->dir_end;
	return rc;
}

int bs__dir_delete_at(bs_image *img, bs_entry *e)
{
	static const uint8_t free_tag = DER_OCTET_STRING;
	struct bs__where w;
	bs__where_of(img, e, &w);
	int rc = bs__io_write(&img->io, &w, &free_tag, 1, e->off);
	if (!rc)
		rc = bs__io_sync(&img->io);
	if (rc) {
		img->io.broken = true; /* deleted or not: unknown */
		return rc;
	}
	img->holes += e->size;
	/* Wipe the old contents (deleted state may be secret).  The delete is
	 * already committed; a failure here leaves stale octets in free space. */
	struct bs__tlv t;
	uint8_t hdr[8];
	size_t hl = e->size < sizeof hdr ? (size_t)e->size : sizeof hdr;
	if (bs__io_read(&img->io, &w, hdr, hl, e->off) || bs__der_header_prefix(hdr, hl, &t))
		return BS_OK;
	/* Filled with ff, not zeros: one flipped bit in the free element's
	 * length then lands on ff octets, which no element starts with, and
	 * the open fails loudly; zeros would read as an end-of-contents and
	 * silently hide every later entry. */
	uint64_t pos = e->off + t.hdr, end = e->off + e->size;
	size_t chunk = end - pos > 65536 ? 65536 : (size_t)(end - pos);
	uint8_t *fill = malloc(chunk ? chunk : 1);
	if (!fill)
		return BS_OK; /* committed; the old octets stay */
	memset(fill, 0xff, chunk);
	while (pos < end) {
		size_t k = end - pos > chunk ? chunk : (size_t)(end - pos);
		if (bs__io_write(&img->io, &w, fill, k, pos))
			break;
		pos += k;
	}
	free(fill);
	if (pos >= end)
		bs__io_sync(&img->io);
	return BS_OK;
}

int bs__dir_adopt(bs_image *img, bs_entry *e, const uint8_t *buf, uint64_t off)
{
	struct bs__layout lay;
	const char *why;
	uint64_t bad;
	struct bs__decoded d = {0};
	int rc = bs__entry_layout(buf, SIZE_MAX, UINT64_MAX, &lay, &why);
	if (!rc && !why)
		rc = bs__entry_parse(buf, buf + lay.data_rel + lay.data_len, &lay, &d, &why, &bad,
				     NULL);
	/* A mandatory attribute this library does not know is stored as the
	 * caller asked; the entry is then refused here just as on the next open. */
	if (rc || (why && d.status != BS_EUNSUPPORTED)) {
		char msg[256];
		snprintf(msg, sizeof msg, "%s", why ? why : "?"); /* WHY may be D's */
		bs__meta_free(d.m);
		free(d.status_msg);
		return bs__err(img, e, off, BS_ECORRUPT, "internal: new entry does not parse: %s",
			       msg);
	}
	bs__meta_free(e->m);
	free(e->status_msg);
	bs__entry_take(e, &d);
	/* An entry an upper layer accepted stays accepted: the mandatory
	 * attributes the rewrite kept or added came from that layer. */
	if (e->accepted && e->status == BS_EUNSUPPORTED && e->m->unknown_mandatory) {
		e->status = BS_OK;
		free(e->status_msg);
		e->status_msg = NULL;
	}
	e->off = off;
	e->size = lay.size;
	e->data_off = off + lay.data_rel;
	e->data_len = lay.data_len;
	return BS_OK;
}
