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

int bs__dir_tail_refuse(bs_image *img)
{
	if (!img->tail_entry)
		return BS_OK;
	return bs__err(img, NULL, img->tail_entry, BS_ECORRUPT,
		       "an entry follows the end-of-contents at offset %llu: damage may have "
		       "ended the directory early and hidden the entries after it; run "
		       "'blobstore salvage' (appends and compaction are refused, so as not "
		       "to destroy them)",
		       (unsigned long long)(img->dir_end - 2));
}

/* The thread's last message without the image's label (a message that
 * names the image again goes after it). */
static void last_msg(const bs_image *img, char *out, size_t n)
{
	const char *m = NULL;
	bs_error_last(&m, NULL);
	m = m ? m : "";
	size_t l = strlen(img->label);
	if (!strncmp(m, img->label, l) && m[l] == ':' && m[l + 1] == ' ')
		m += l + 2;
	snprintf(out, n, "%s", m);
}

/* RC, the failure FIRST described, stands; the message says that undoing
 * it (WHAT, at OFF) failed too, and why. */
static int undo_failed(bs_image *img, int rc, const char *first, uint64_t off, const char *what)
{
	char msg[1024];
	snprintf(msg, sizeof msg, "%s; %s failed too", first, what);
	return bs__error_wrap(&(struct bs__where){.label = img->label}, off, rc, msg);
}

/* Puts back what a failed append changed past the end-of-contents: the LEN
 * octets OLD that were at AT, and the storage's SIZE (a file that a write
 * cut short by a full disk may have grown), then syncs. */
static int take_back(bs_image *img, uint64_t at, const uint8_t *old, size_t len, uint64_t size)
{
	const struct bs_backend_ops *ops = img->io.be->ops;
	int rc = len ? bs__io_write(&img->io, NULL, old, len, at) : BS_OK;
	if (!rc && ops->resize) {
		/* Always: the size a failed write left is not known. */
		if ((rc = ops->resize(img->io.be->ctx, size)))
			rc = bs__error_wrap(&(struct bs__where){.label = img->label}, size, rc,
					    "truncate failed");
		else
			img->io.size = size;
	}
	if (!rc)
		rc = bs__io_sync(&img->io);
	if (rc && ops->resize) {
		uint64_t now;
		if (!ops->size(img->io.be->ctx, &now))
			img->io.size = now; /* what is there now, for check and the next append */
	}
	return rc;
}

int bs__dir_append(bs_image *img, const uint8_t *buf, size_t n, uint64_t *off)
{
	int rc = bs__dir_tail_refuse(img);
	if (rc)
		return rc;
	uint64_t eoc = img->dir_end - 2, at = eoc + 2, size = img->io.size;
	if (at + n + 2 > BS_MAX_IMAGE_SIZE)
		return bs__err(img, NULL, eoc, BS_ELIMIT, "image would exceed the size limit");
	/* A failed append leaves the storage as it was: the octets it writes
	 * over are kept to be put back (free space on fixed-size storage, what
	 * an earlier append that never committed left in a file), and a file
	 * is cut back to its size.  Fixed storage without room refuses the
	 * write before it starts (nothing to put back). */
	bool fits = !img->io.fixed || (n + 2 <= size && at <= size - n - 2);
	size_t olen = fits && size > at ? (size_t)(size - at < n + 2 ? size - at : n + 2) : 0;
	uint8_t *tmp = malloc(n + 2 + olen);
	if (!tmp)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	uint8_t *old = tmp + n + 2;
	if (olen && (rc = bs__io_read(&img->io, NULL, old, olen, at))) {
		free(tmp);
		return rc;
	}
	memcpy(tmp, buf, n);
	tmp[n] = tmp[n + 1] = 0;
	rc = bs__io_write(&img->io, NULL, tmp, n + 2, at);
	if (!rc)
		rc = bs__io_sync(&img->io);
	bool committed = false;
	if (!rc) {
		/* 00 00 -> 05 00: the end-of-contents becomes a NULL pad.  05 is
		 * two bit flips away from 00, so one flipped bit cannot forge an
		 * early end of the directory. */
		static const uint8_t pad_tag = DER_NULL, eoc_tag = 0;
		rc = bs__io_write(&img->io, NULL, &pad_tag, 1, eoc);
		if (!rc)
			rc = bs__io_sync(&img->io);
		if (!rc) {
			committed = true;
		} else {
			/* The commit octet may or may not be on storage (a failed
			 * sync may have lost it, or not): put the end-of-contents
			 * back and the append has not happened.  Only if that fails
			 * too is the image's state unknown, and this handle's view
			 * of it no longer to be used. */
			char first[640];
			last_msg(img, first, sizeof first);
			if (bs__io_write(&img->io, NULL, &eoc_tag, 1, eoc) || bs__io_sync(&img->io)) {
				img->io.broken = true;
				rc = undo_failed(img, rc, first, eoc,
						 "putting back the end-of-contents");
				free(tmp);
				return rc;
			}
		}
	}
	if (!committed && fits) {
		char first[640];
		last_msg(img, first, sizeof first);
		if (take_back(img, at, old, olen, size))
			rc = undo_failed(img, rc, first, at,
					 "taking back the octets it wrote past the end-of-contents");
	}
	free(tmp);
	if (!committed)
		return rc;
	img->dir_end = at + n + 2;
	img->holes += 2;
	*off = at;
	return BS_OK;
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
