/* recovery.c - crash-safe compaction on fixed-size storage (block devices,
 * NBD exports), which cannot replace an image atomically by renaming.
 *
 * The last BS_RECOVERY_AREA octets of fixed-size storage belong to the
 * library: two copies of a 64-octet recovery record, at the area's start
 * and 2048 octets in.  Compaction of image C (built in memory):
 *   1. write C into free space past the directory end (at SRC), sync;
 *   2. write the record "pending: C is at SRC, LEN octets, checksum X" to
 *      both copies, sync;                                   <- commit point
 *   3. copy C to offset 0, sync;
 *   4. write the record "done" to both copies, sync.
 * A crash before 2 leaves the old image (C sits in unused space); after it,
 * the next writer finds the pending record and redoes 3 and 4 (idempotent:
 * C at SRC is intact and verified by its checksum), and a read-only opener
 * reads the directory at SRC without writing.  The record's copies are
 * self-validating (CRC-32C), so a torn record write leaves the other copy
 * or the previous state; the highest generation wins, "done" over "pending"
 * at equal generation.  See docs/FORMAT.md, "Fixed-size storage". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"

#define REC_MAGIC "BSRECOV1"
#define REC_LEN 64u
#define REC_COPY2 2048u
#define STATE_PENDING 1u
#define STATE_DONE 2u

struct record {
	uint32_t state;
	uint64_t gen, src, len;
	uint32_t crc;      /* CRC-32C of C */
	uint32_t head_len; /* C's framing and image entry, identical in old and new */
	uint32_t head_crc;
};

/* Prefixes the current message (a backend's or a nested call's) with WHAT. */
static int fail(bs_image *img, uint64_t off, int rc, const char *what)
{
	return bs__error_wrap(&(struct bs__where){.label = img->label}, off, rc, what);
}

static void encode(const struct record *r, uint8_t *p)
{
	memset(p, 0, REC_LEN);
	memcpy(p, REC_MAGIC, 8);
	bs_put_be32(p + 8, r->state);
	bs_put_be64(p + 16, r->gen);
	bs_put_be64(p + 24, r->src);
	bs_put_be64(p + 32, r->len);
	bs_put_be32(p + 40, r->crc);
	bs_put_be32(p + 44, r->head_len);
	bs_put_be32(p + 48, r->head_crc);
	bs_put_be32(p + 52, bs__crc32c(0, p, 52));
}

static bool decode(const uint8_t *p, uint64_t room, struct record *r)
{
	if (memcmp(p, REC_MAGIC, 8) || bs_get_be32(p + 52) != bs__crc32c(0, p, 52))
		return false;
	r->state = bs_get_be32(p + 8);
	r->gen = bs_get_be64(p + 16);
	r->src = bs_get_be64(p + 24);
	r->len = bs_get_be64(p + 32);
	r->crc = bs_get_be32(p + 40);
	r->head_len = bs_get_be32(p + 44);
	r->head_crc = bs_get_be32(p + 48);
	return (r->state == STATE_PENDING || r->state == STATE_DONE) && r->len >= 4 &&
	       r->src <= room && r->len <= room - r->src && r->head_len <= r->len &&
	       r->len <= SIZE_MAX / 2;
}

_Static_assert(BS__RECOVERY_WATCH == REC_COPY2 + REC_LEN, "a reader watches both copies");

/* The record in force: *HAVE false when neither copy is valid.  A reader
 * keeps the octets it read (bs__recovery_changed). */
static int read_record(bs_image *img, struct record *out, bool *have)
{
	uint8_t area[REC_COPY2 + REC_LEN];
	uint64_t at = img->io.size; /* the room: the area starts here */
	int rc = bs__io_read_beyond(&img->io, area, sizeof area, at);
	if (rc)
		return fail(img, at, rc, "cannot read the recovery area");
	if (img->flags & BS_OPEN_RDONLY) {
		memcpy(img->recov_seen, area, sizeof area);
		img->recov_at = at;
		img->recov_watch = true;
	}
	struct record r[2];
	bool ok[2] = {decode(area, img->io.size, &r[0]), decode(area + REC_COPY2, img->io.size, &r[1])};
	*have = ok[0] || ok[1];
	int pick = ok[0] ? 0 : 1;
	if (ok[0] && ok[1] &&
	    (r[1].gen > r[0].gen || (r[1].gen == r[0].gen && r[1].state == STATE_DONE)))
		pick = 1;
	if (*have)
		*out = r[pick];
	return BS_OK;
}

/* Writes REC to both copies (separate writes: a tear hits one), then syncs. */
static int write_record(bs_image *img, const struct record *rec)
{
	uint8_t p[REC_LEN];
	encode(rec, p);
	uint64_t at[2] = {img->io.size, img->io.size + REC_COPY2};
	for (int i = 0; i < 2; i++) {
		int rc = bs__io_write_beyond(&img->io, p, sizeof p, at[i]);
		if (rc)
			return fail(img, at[i], rc, "recovery record write failed");
	}
	return bs__io_sync(&img->io);
}

int bs__recovery_changed(bs_image *img, bool *changed)
{
	uint8_t area[REC_COPY2 + REC_LEN];
	*changed = false;
	if (!img->recov_watch)
		return BS_OK;
	int rc = bs__io_read_beyond(&img->io, area, sizeof area, img->recov_at);
	if (rc)
		return fail(img, img->recov_at, rc, "cannot read the recovery area");
	/* Any change counts, a torn record write included: every compaction
	 * writes its "pending" record before it moves anything, and its "done"
	 * record before any later write can reuse the space it copied from. */
	*changed = memcmp(area, img->recov_seen, sizeof area) != 0;
	return BS_OK;
}

int bs__recovery_clear(bs_image *img)
{
	static const uint8_t zeros[BS_RECOVERY_AREA];
	int rc = bs__io_write_beyond(&img->io, zeros, sizeof zeros, img->io.size);
	if (rc)
		return fail(img, img->io.size, rc, "cannot clear the recovery area");
	return BS_OK;
}

int bs__recovery_grow(bs_image *img, uint64_t total)
{
	const struct bs_backend_ops *ops = img->io.be->ops;
	if (total <= img->io.size)
		return BS_OK;
	if (!ops->reserve)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOSPC,
			       "fixed-size storage of %llu octets cannot hold %llu",
			       (unsigned long long)img->io.size, (unsigned long long)total);
	if (total > BS_MAX_IMAGE_SIZE - BS_RECOVERY_AREA)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "larger than the image limit");
	/* A writer finished any interrupted compaction at open, so the area
	 * holds nothing to keep: once the storage is larger, the old area is
	 * free space past the directory, and the new one, at the new end, is
	 * cleared.  A crash in between leaves a new end the backend reads as
	 * zeros (a grown RBD image) or whatever it held, which is no record of
	 * this image (the record names the image's head by checksum). */
	int rc = ops->reserve(img->io.be->ctx, total + BS_RECOVERY_AREA);
	uint64_t now = 0;
	if (!rc)
		rc = ops->size(img->io.be->ctx, &now);
	if (rc)
		return fail(img, BS_NO_OFFSET, rc, "growing the storage failed");
	if (now < total + BS_RECOVERY_AREA || now > BS_MAX_IMAGE_SIZE)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EIO,
			       "the storage is %llu octets after growing it to %llu",
			       (unsigned long long)now,
			       (unsigned long long)(total + BS_RECOVERY_AREA));
	img->io.size = now - BS_RECOVERY_AREA;
	rc = bs__recovery_clear(img);
	if (!rc)
		rc = bs__io_sync(&img->io);
	return rc;
}

/* Reads C (REC) from its source and checks it; *OUT is malloc()ed. */
static int load_copy(bs_image *img, const struct record *rec, uint8_t **out)
{
	uint8_t *c = malloc((size_t)rec->len);
	if (!c)
		return bs__err(img, NULL, rec->src, BS_ENOMEM, "out of memory");
	int rc = bs__io_read(&img->io, NULL, c, (size_t)rec->len, rec->src);
	if (!rc && bs__crc32c(0, c, (size_t)rec->len) != rec->crc)
		rc = bs__err(img, NULL, rec->src, BS_ECORRUPT,
			     "an interrupted compaction cannot be finished: its copy of the "
			     "image (%llu octets at offset %llu) fails its checksum",
			     (unsigned long long)rec->len, (unsigned long long)rec->src);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return BS_OK;
}

/* The last steps of a compaction, also what a writer's open redoes: the
 * new directory C over the start of the storage, synced, then the record
 * marked done.  Idempotent. */
static int copy_and_finish(bs_image *img, struct record *rec, const uint8_t *c)
{
	int rc = bs__io_write(&img->io, NULL, c, (size_t)rec->len, 0);
	if (!rc)
		rc = bs__io_sync(&img->io);
	if (!rc) {
		rec->state = STATE_DONE;
		rc = write_record(img, rec);
	}
	return rc;
}

int bs__recovery_open(bs_image *img)
{
	if (img->io.size < 2u * BS_RECOVERY_AREA)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOSPC,
			       "fixed-size storage of %llu octets is too small: it needs at least "
			       "%u (the last %u hold the recovery area)",
			       (unsigned long long)img->io.size, 2u * BS_RECOVERY_AREA,
			       BS_RECOVERY_AREA);
	img->io.fixed = true;
	img->io.size -= BS_RECOVERY_AREA;
	struct record rec;
	bool have;
	int rc = read_record(img, &rec, &have);
	if (rc || !have || rec.state != STATE_PENDING)
		return rc;
	/* The record must belong to this image: its head (framing and image
	 * entry, with the image id) is the same in the old and the new image,
	 * so it reads the same at offset 0 however far the copy got. */
	uint8_t *head = malloc(rec.head_len ? rec.head_len : 1);
	if (!head)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	rc = bs__io_read(&img->io, NULL, head, rec.head_len, 0);
	bool ours = !rc && bs__crc32c(0, head, rec.head_len) == rec.head_crc;
	free(head);
	if (rc || !ours)
		return rc;
	uint8_t *c = NULL;
	if ((rc = load_copy(img, &rec, &c)))
		return rc;
	if (img->flags & BS_OPEN_RDONLY) {
		/* Read the finished copy where it is; write nothing. */
		free(c);
		img->io.base = rec.src;
		img->io.size = rec.len;
		return BS_OK;
	}
	rc = copy_and_finish(img, &rec, c);
	free(c);
	if (rc)
		return fail(img, BS_NO_OFFSET, rc, "cannot finish an interrupted compaction");
	return BS_OK;
}

int bs__compact_fixed(bs_image *img, const uint8_t *c, size_t len)
{
	uint64_t bsz = img->io.be->block_size > 1 ? img->io.be->block_size : 1;
	uint64_t src = (img->dir_end + bsz - 1) / bsz * bsz;
	if (src > img->io.size || len > img->io.size - src)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOSPC,
			       "compaction of fixed-size storage writes the new directory (%zu "
			       "octets) after the old one's end first, and only %llu octets are "
			       "free there: delete entries, or copy the image to larger storage",
			       len, (unsigned long long)(img->io.size > src ? img->io.size - src : 0));
	struct bs__tlv t;
	if (len < 4 || bs__der_header_prefix(c + 2, len - 2, &t) || t.hdr + t.len > len - 2)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ECORRUPT,
			       "internal: compacted image has no image entry");
	struct record rec = {.state = STATE_PENDING, .src = src, .len = len,
			     .crc = bs__crc32c(0, c, len), .head_len = (uint32_t)(2 + t.hdr + t.len)};
	rec.head_crc = bs__crc32c(0, c, rec.head_len);
	struct record old;
	bool have;
	int rc = read_record(img, &old, &have);
	if (rc)
		return rc;
	rec.gen = have ? old.gen + 1 : 1;
	/* 1. The copy, in space no reader looks at. */
	rc = bs__io_write(&img->io, NULL, c, len, src);
	if (!rc)
		rc = bs__io_sync(&img->io);
	if (rc)
		return fail(img, BS_NO_OFFSET, rc, "compact failed");
	/* 2.-4. From the first record write on, storage may hold either. */
	img->io.broken = true;
	rc = write_record(img, &rec);
	if (!rc)
		rc = copy_and_finish(img, &rec, c);
	if (rc)
		return fail(img, BS_NO_OFFSET, rc,
			    "compact failed (the next writer's open finishes it)");
	img->io.broken = false;
	return BS_OK;
}
