/* check.c - bs_image_check(): every entry's structure, slot checks and, when
 * asked, its decoding against the ASN.1 module. */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"

static const char *last_message(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

/* E's slots, reported through CB. */
static int check_slots(bs_image *img, bs_entry *e, bs_check_cb cb, void *ctx)
{
	struct bs__slot_report rep;
	int rc = bs__data_check(img, e, &rep);
	if (rc) {
		/* Not damage: another process moved the entry (reopen). */
		if (cb && rc != BS_ESTALE)
			cb(ctx, e, e->data_off, rc, last_message());
		return rc;
	}
	if (rep.newer_bad && cb) {
		/* A torn last write, or damage to the newest value: the two look
		 * alike, so the reader returns the previous value; say so. */
		char msg[200];
		if (rep.bad_gen > rep.gen)
			snprintf(msg, sizeof msg,
				 "slot %d claims generation %llu but fails its check; the entry "
				 "reads as generation %llu (an interrupted write, or damage)",
				 rep.bad_slot, (unsigned long long)rep.bad_gen,
				 (unsigned long long)rep.gen);
		else
			snprintf(msg, sizeof msg,
				 "slot %d holds generation %llu with a damaged generation field; "
				 "the entry reads as generation %llu",
				 rep.bad_slot, (unsigned long long)rep.gen + 1,
				 (unsigned long long)rep.gen);
		cb(ctx, e, rep.bad_off, BS_OK, msg);
	}
	return BS_OK;
}

int bs_image_check(bs_image *img, unsigned flags, bs_check_cb cb, void *ctx)
{
	if (!img)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image");
	bool schema = flags & BS_CHECK_SCHEMA;
	int first = BS_OK;
	for (size_t i = 0; i < img->count; i++) {
		bs_entry *e = img->list[i];
		int rc = BS_OK;
		if (e->status) {
			rc = e->status;
			if (cb)
				cb(ctx, e, e->off, rc, bs_entry_status_message(e));
		} else if (e->slotted) {
			rc = check_slots(img, e, cb, ctx);
			if (rc == BS_ESTALE)
				return rc;
		}
		if (!e->status && schema) {
			uint8_t *b = malloc((size_t)e->size);
			char why[256];
			int src;
			struct bs__where w;
			bs__where_of(img, e, &w);
			if (!b) {
				rc = BS_ENOMEM;
			} else if ((src = bs__io_read(&img->io, &w, b, (size_t)e->size, e->off))) {
				rc = src;
				if (cb)
					cb(ctx, e, e->off, rc, last_message());
			} else if (bs__schema_check_entry(b, (size_t)e->size, why, sizeof why)) {
				bool same = true;
				if ((img->flags & BS_OPEN_RDONLY) && !bs__head_same(img, e, &same) &&
				    !same) {
					free(b);
					return bs__err(img, e, e->off, BS_ESTALE,
						       "another process rewrote, deleted or moved "
						       "the entry during the check: reopen the image");
				}
				rc = rc ? rc : BS_ECORRUPT;
				if (cb)
					cb(ctx, e, e->off, BS_ECORRUPT, why);
			}
			free(b);
		}
		if (rc && !first)
			first = rc;
	}
	size_t orphans = bs__key_orphans(img);
	if (orphans) {
		char msg[400];
		snprintf(msg, sizeof msg, "%zu encrypted entr%s: %s", orphans,
			 orphans == 1 ? "y" : "ies", bs__key_lost_msg);
		if (cb)
			cb(ctx, NULL, BS_NO_OFFSET, BS_ECORRUPT, msg);
		if (!first)
			first = BS_ECORRUPT;
	}
	if (img->tail_entry) {
		/* Damage may have forged the end-of-contents: an error, with the
		 * message appends and compaction refuse with. */
		bs__dir_tail_refuse(img);
		if (cb)
			cb(ctx, NULL, img->tail_entry, BS_ECORRUPT, last_message());
		if (!first)
			first = BS_ECORRUPT;
	} else if (img->io.be->ops->resize && img->io.size > img->dir_end && cb) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "%llu octets after the end-of-contents (an interrupted append, or damage "
			 "that ended the directory early); the next change overwrites them",
			 (unsigned long long)(img->io.size - img->dir_end));
		cb(ctx, NULL, img->dir_end, BS_OK, msg);
	}
	if (img->superseded_pending && cb)
		cb(ctx, NULL, BS_NO_OFFSET, BS_OK,
		   "an interrupted rewrite left an old copy; the next writer removes it");
	return first;
}
