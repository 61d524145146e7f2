/* open.c - formatting, opening and closing an image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "dir.h"

static int make_image_entry(uint8_t **out, size_t *out_len)
{
	uint8_t id[16], val[20];
	if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
		return BS_EIO;
	size_t vl = bs__der_encode_octets(id, sizeof id, val, sizeof val);
	struct bs__attrs l;
	int rc = bs__attrs_init(&l, 1);
	if (!rc)
		rc = bs__attrs_add(&l, BS_ATTR_ID, val, vl, false);
	uint64_t data_rel;
	if (!rc)
		rc = bs__entry_encode(BS_TYPE_IMAGE, NULL, NULL, 0, l.opt, l.nopt, 0, out, out_len,
				      &data_rel);
	bs__attrs_free(&l);
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
	const struct bs_backend_ops *ops = img->io.be->ops;
	if (ops->replace) {
		/* Atomic: the storage holds the whole image or stays as it was. */
		rc = ops->replace(img->io.be->ctx, b, n);
		if (rc)
			rc = bs__error_wrap(&(struct bs__where){.label = img->label}, BS_NO_OFFSET, rc,
					    "format failed");
	} else {
		/* Fixed storage: a clean recovery area and everything but the two
		 * identifying octets first, so an interrupted format never looks
		 * like an image. */
		rc = bs__recovery_clear(img);
		if (!rc)
			rc = bs__io_write(&img->io, NULL, b + 2, n - 2, 2);
		if (!rc)
			rc = bs__io_sync(&img->io);
		if (!rc)
			rc = bs__io_write(&img->io, NULL, b, 2, 0);
		if (!rc)
			rc = bs__io_sync(&img->io);
	}
	free(b);
	if (!rc && !img->io.fixed)
		rc = ops->size(img->io.be->ctx, &img->io.size);
	return rc;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* How often a reader scans again when a writer changed the directory
 * under its scan, pausing 1, 2, 4 .. 16 ms in between (about 0.4 s in
 * all: a writer that compacts many times a second). */
#define READER_TRIES 32

static void reader_pause(int tries)
{
	struct timespec ts = {0, 1000000L << (tries < 4 ? tries : 4)};
	nanosleep(&ts, NULL);
}

/* bs__recovery_open(); a reader whose open met a compaction that finished
 * and began again (the copy it was pointed at is being overwritten: its
 * checksum fails) reads the record again while it keeps changing. */
static int recovery_open(bs_image *img, uint64_t whole, int *tries)
{
	for (;; ++*tries) {
		int rc = bs__recovery_open(img);
		bool moved = false;
		if (!rc || !(img->flags & BS_OPEN_RDONLY) || *tries >= READER_TRIES ||
		    bs__recovery_changed(img, &moved) || !moved)
			return rc;
		img->io.size = whole;
		img->io.base = 0;
		reader_pause(*tries);
	}
}

/* Removes what killed compactions and formats left beside the image (a
 * writer holds the lock, so none is running) and keeps a note of each. */
static int tidy(bs_image *img)
{
	struct bs__leftover *l;
	size_t n;
	int rc = bs__backend_tidy(img->io.be, &l, &n);
	if (rc || !n)
		return rc;
	img->notes = calloc(n, sizeof *img->notes);
	for (size_t i = 0; img->notes && i < n; i++, img->nnotes++) {
		struct bs__note *t = &img->notes[i];
		char *msg = NULL;
		int k = l[i].err ?
				asprintf(&msg, "cannot remove %s (%llu octets) left by an interrupted "
					 "compaction: %s", l[i].path, (unsigned long long)l[i].octets,
					 strerror(l[i].err)) :
				asprintf(&msg, "removed %s (%llu octets) left by an interrupted compaction",
					 l[i].path, (unsigned long long)l[i].octets);
		if (k < 0)
			break;
		*t = (struct bs__note){.code = l[i].err ? BS_EIO : BS_OK, .sys_errno = l[i].err,
				       .path = l[i].path, .octets = l[i].octets, .message = msg};
		l[i].path = NULL; /* the note owns it */
	}
	bool all = img->notes && img->nnotes == n;
	bs__leftovers_free(l, n);
	return all ? BS_OK : bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
}

int bs__dir_open(struct bs_backend *be, const char *label, unsigned flags, bs_image **out)
{
	bs_image *img = calloc(1, sizeof *img);
	if (!img || !(img->label = strdup(label ? label : "(image)"))) {
		free(img);
		bs_backend_free(be);
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	img->io.be = be;
	img->io.label = img->label;
	img->io.nosync = (flags & BS_OPEN_NOSYNC) != 0;
	img->flags = flags;
	int rc = BS_OK;
	if (!(flags & BS_OPEN_RDONLY) && be->ops->lock) {
		rc = be->ops->lock(be->ctx, BS_LOCK_EXCL | ((flags & BS_OPEN_WAIT) ? BS_LOCK_WAIT : 0));
		if (rc)
			goto fail; /* the backend's message names the image */
		img->locked = true;
	}
	rc = be->ops->size(be->ctx, &img->io.size);
	if (rc)
		goto fail;
	if (img->io.size > BS_MAX_IMAGE_SIZE) {
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "storage larger than the limit");
		goto fail;
	}
	/* Fixed-size storage keeps a recovery area at its end, and may hold an
	 * interrupted compaction to finish (or, read-only, to read around). */
	uint64_t whole = img->io.size;
	int tries = 0;
	if (!be->ops->resize && (rc = recovery_open(img, whole, &tries)))
		goto fail;
	uint8_t start[16] = {0};
	size_t sl = img->io.size < sizeof start ? (size_t)img->io.size : sizeof start;
	if (sl && (rc = bs__io_read(&img->io, NULL, start, sl, 0)))
		goto fail;
	bool blank = img->io.size == 0 || (!be->ops->resize && all_zero(start, sl));
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
	char *failed = NULL; /* a reader's last failed scan's message */
	for (;; tries++) {
		rc = bs__scan(img, NULL, true);
		uint64_t now;
		bool moved = false;
		bool more = (flags & BS_OPEN_RDONLY) && tries < READER_TRIES;
		/* On fixed-size storage a compaction in place may have moved the
		 * entries while this reader scanned: its record changed. */
		if (more && img->io.fixed) {
			int r2 = bs__recovery_changed(img, &moved);
			if (r2) {
				rc = r2;
				break;
			}
		}
		bool torn = !rc && img->torn && more;
		if (rc == BS_ECORRUPT && more && !moved) {
			/* The scan may have read an element before and after a
			 * writer changed it (a delete between two reads of its
			 * head).  Damage stays put, a writer moves on: scan again
			 * until two scans fail alike. */
			const char *m = NULL;
			bs_error_last(&m, NULL);
			torn = !failed || !m || strcmp(failed, m);
			free(failed);
			failed = m ? strdup(m) : NULL;
		}
		if (!moved && !torn &&
		    (!rc || !more || img->io.fixed || be->ops->size(be->ctx, &now) ||
		     now == img->io.size))
			break;
		for (size_t i = 0; i < img->count; i++)
			bs__entry_free(img, img->list[i]);
		img->count = 0;
		img->torn = false;
		if (torn || moved)
			reader_pause(tries);
		if (moved) {
			img->io.size = whole;
			img->io.base = 0;
			if ((rc = recovery_open(img, whole, &tries)))
				break;
		} else if (!torn) {
			img->io.size = now;
		}
	}
	free(failed);
	if (rc)
		goto fail;
	img->image_entry = img->list[0];
	const struct bs__attr_ref *a = bs__meta_attr(img->image_entry->m, BS_ATTR_ID);
	struct bs__tlv t;
	if (a && !bs__der_header(a->value, a->value_len, &t) && t.tag == DER_OCTET_STRING &&
	    t.len == 16)
		memcpy(img->id, a->value + t.hdr, 16);
	if (img->locked && (rc = tidy(img)))
		goto fail;
	/* Octets past the end-of-contents of a file are normally an interrupted
	 * append, never committed.  They are left alone all the same: damage
	 * that forged an end-of-contents would look the same, and cutting would
	 * destroy what follows.  The next append overwrites them, compact drops
	 * them, check reports them. */
	*out = img;
	return BS_OK;
fail:
	bs__dir_close(img);
	return rc;
}

void bs__dir_close(bs_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->count; i++)
		bs__entry_free(img, img->list[i]);
	bs__pool_free(img);
	free(img->list);
	bs__big_free(img->hash, img->hash_size * sizeof *img->hash);
	if (img->io.be) {
		if (img->locked && img->io.be->ops->lock)
			img->io.be->ops->lock(img->io.be->ctx, BS_LOCK_NONE);
		bs_backend_free(img->io.be);
	}
	bs__sealkey_free(img->key);
	for (size_t i = 0; i < img->nnotes; i++) {
		free(img->notes[i].path);
		free(img->notes[i].message);
	}
	free(img->notes);
	free(img->label);
	free(img);
}
