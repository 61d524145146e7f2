/* dir.h - the directory layer: an image as a directory of entries.
 *
 *   entries.c   the entry objects: list in directory order, pool, messages
 *   table.c     lookup by type and name (open addressing)
 *   scan.c      reading the directory at open: every entry's head, the
 *               copies an interrupted rewrite left, duplicates
 *   open.c      formatting, opening and closing an image
 *   commit.c    the one-octet commits: append, delete; adopting a new copy
 *   write.c     creating and rewriting entries, their data through slots
 *   compact.c   dropping free space, atomically
 *   recovery.c  the recovery record of fixed-size storage
 *   salvage.c   finding the intact entries of damaged storage
 *
 * On storage an image is
 *   31 80  element*  00 00  [unused octets]
 * where each element is an Entry (tag 30), free space (an OCTET STRING, tag
 * 04) or a pad (NULL, 05 00).  Directory changes commit with a single-octet
 * write (docs/FORMAT.md). */
#ifndef BS_DIR_H
#define BS_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "codec/codec.h"
#include "data/data.h"
#include "storage/storage.h"

struct bs_entry {
	struct bs_image *img; /* the image it belongs to */
	uint64_t off;         /* first octet of the Entry */
	uint64_t size;        /* whole Entry encoding */
	uint64_t data_off;    /* first content octet of the data OCTET STRING */
	uint64_t data_len;    /* its content length */
	struct bs__meta *m;
	int status;           /* BS_OK or why refused */
	char *status_msg;
	bool slotted;
	enum bs_check_alg alg;
	enum bs_aead aead;    /* bs.aead: slot payloads are nonce|ciphertext|tag */
	bool accepted;        /* an upper layer knows its mandatory attributes
				 (bs_entry_accept): it stays usable across rewrites */
	bool superseded;      /* a later copy replaces it (crash during rewrite) */
	uint64_t supersedes;  /* offset this entry replaces, or UINT64_MAX */
	/* slot cache (writers only) */
	int active;           /* -1 unknown, else 0 or 1 */
	uint64_t gen;         /* highest generation seen in either slot */
	size_t index;         /* position in the image's list */
	struct bs_entry *hnext;
	uint64_t khash;       /* hash of type and name, set when inserted */
	/* Read-only handles: the octets from off to data_off as the scan read
	 * them (length and CRC-32C), checked after every read through the
	 * offsets (another process may have moved the entry: write.c). */
	uint32_t head_len, head_crc;
};

/* One slot of the lookup table: a key's hash beside its entry. */
struct bs__hslot {
	uint64_t h;
	bs_entry *e; /* NULL: empty */
};

/* Octets of the recovery area a reader watches: both record copies. */
#define BS__RECOVERY_WATCH 2112u

struct bs_image {
	struct bs__io io;     /* the storage, and the room the image has in it */
	char *label;
	unsigned flags;       /* BS_OPEN_* */
	bool locked;
	uint64_t dir_end;     /* just past end-of-contents */
	uint64_t holes;       /* octets in free elements */
	/* Files: the offset of an entry that lies past the end-of-contents
	 * where no append puts one (behind zeros or free space), so damage
	 * may have forged the end and hidden it; 0 when none (scan.c).
	 * Appends and compaction refuse while it is set. */
	uint64_t tail_entry;
	bs_entry **list;      /* directory order, live and refused entries */
	size_t count, cap;
	struct bs__hslot *hash; /* lookup by type and name (table.c) */
	size_t hash_size, hash_used;
	uint8_t id[16];
	bs_entry *image_entry;
	uint64_t superseded_pending; /* entries hidden by a later copy */
	struct bs__sealkey *key;     /* the loaded data key, or NULL */
	struct bs_pool *pool;        /* entries and open's metas */
	bs_entry *free_entries;      /* freed ones, chained by hnext */
	/* Read-only handles of fixed-size storage: the recovery area's two
	 * records as the open read them, at RECOV_AT.  A compaction in place
	 * changes them before it moves any entry (recovery.c). */
	bool torn;            /* a reader's scan met a writer mid-change: scan again */
	bool recov_watch;
	uint64_t recov_at;
	uint8_t recov_seen[BS__RECOVERY_WATCH];
	struct bs__note *notes;      /* what the open did besides opening */
	size_t nnotes;
};

/* Something a writable open did besides opening (bs_image_note_at()): it
 * removed, or failed to remove, a temporary copy an interrupted compaction
 * or format left beside the image. */
struct bs__note {
	int code;        /* BS_OK: done; else why not */
	int sys_errno;   /* the errno of the call that failed, or 0 */
	char *path;      /* the file it is about */
	uint64_t octets; /* its size */
	char *message;   /* "removed PATH (N octets) left by ..." */
};

/* ---- messages and entry objects (entries.c) ----------------------------------- */

/* Sets the thread's error naming IMG and E (either may be NULL). */
int bs__err(const bs_image *img, const bs_entry *e, uint64_t offset, int code,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same for an entry known by type and name only. */
int bs__err_key(const char *label, const char *type, const char *name, int code,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void bs__where_of(const bs_image *img, const bs_entry *e, struct bs__where *w);

bs_entry *bs__entry_new(bs_image *img);
void bs__entry_free(bs_image *img, bs_entry *e);
/* Takes the decoded fields of D into E (E owns them afterwards). */
void bs__entry_take(bs_entry *e, struct bs__decoded *d);
int bs__list_push(bs_image *img, bs_entry *e);
void bs__list_remove(bs_image *img, bs_entry *e);
/* Releases every entry and pooled meta at once. */
void bs__pool_free(bs_image *img);

/* ---- lookup (table.c) ---------------------------------------------------------- */

uint64_t bs__key_hash(const char *type, const char *name);
bool bs__same_key(const bs_entry *e, const char *type, const char *name);
bs_entry *bs__table_find(const bs_image *img, const char *type, const char *name);
/* Another entry with E's key, whose hash is H. */
bs_entry *bs__table_find_like(const bs_image *img, uint64_t h, const bs_entry *e);
/* Room for WANT entries at half load. */
int bs__table_grow(bs_image *img, size_t want);
/* Adds E under H without a growth check (bs__table_grow made room). */
void bs__table_put(bs_image *img, uint64_t h, bs_entry *e);
/* Adds E under its key (hashing it), growing as needed. */
int bs__table_insert(bs_image *img, bs_entry *e);
/* Takes E out (if it is in), under the hash it was added with. */
void bs__table_remove(bs_image *img, bs_entry *e);

/* ---- scanning (scan.c) ----------------------------------------------------------- */

/* Reads the directory from storage (MEM NULL) or from a memory copy of
 * the image.  With INDEX (the image's own scan at open) metas go to the
 * image's pool and the entries are indexed afterwards: interrupted
 * rewrites resolved, duplicates refused, the lookup table filled.  Without
 * it (a compaction's copy) metas are malloc'ed and nothing is indexed. */
int bs__scan(bs_image *img, const uint8_t *mem, bool index);
/* Read-only handles: *SAME false when E's head octets on storage are no
 * longer those the scan read (another process rewrote, deleted or moved
 * it).  Errors: the storage's (reading past its end counts as moved). */
int bs__head_same(bs_image *img, const bs_entry *e, bool *same);

/* ---- images (open.c) -------------------------------------------------------------- */

int bs__dir_open(struct bs_backend *be, const char *label, unsigned flags, bs_image **out);
void bs__dir_close(bs_image *img);

/* ---- commits (commit.c) ------------------------------------------------------------ */

/* Appends the encoded entry BUF/N; *OFF gets its offset.  Commit point: the
 * one-octet write that turns the old end-of-contents into a pad. */
int bs__dir_append(bs_image *img, const uint8_t *buf, size_t n, uint64_t *off);
/* BS_ECORRUPT, with the message check gives, when IMG->tail_entry is set:
 * a write past the end-of-contents could destroy the entries it hides. */
int bs__dir_tail_refuse(bs_image *img);
/* Turns the entry at E->off into free space, then wipes its contents. */
int bs__dir_delete_at(bs_image *img, bs_entry *e);
/* Replaces E's view (meta, offsets) by the entry encoded at BUF, stored at OFF. */
int bs__dir_adopt(bs_image *img, bs_entry *e, const uint8_t *buf, uint64_t off);

/* ---- entries and their data (write.c) ---------------------------------------------- */

/* Refuses changes through a read-only or broken handle, to a refused
 * entry or to one of the library's own entries (E may be NULL). */
int bs__writable(bs_image *img, const bs_entry *e);

/* What a new entry is.  TYPE and NAME are valid (the caller checked). */
struct bs__newentry {
	const char *type, *name;
	const struct bs_attr *attrs;
	size_t nattrs;
	size_t capacity;
	enum bs_check_alg alg;
	bool raw;
	enum bs_aead aead;  /* encrypt the data with the loaded key */
	bool lib;           /* the library's own: "bs." names allowed */
};
int bs__dir_create(bs_image *img, const struct bs__newentry *ne, const void *data, size_t len,
		   bs_entry **out);

/* What a rewrite changes. */
struct bs__rewrite {
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
	enum bs_aead aead;    /* encrypt a plaintext entry (its bs.aead is in SET) */
	bool wipe_old;        /* zero the old copy's data before deleting it */
};
/* Copy-on-write of E: a new copy naming the old one in bs.supersedes is
 * appended, then the old one deleted.  Crash-safe at every write. */
int bs__dir_rewrite(bs_image *img, bs_entry *e, const struct bs__rewrite *rw);
/* Deletes E and forgets it (E is invalid afterwards). */
int bs__dir_delete(bs_image *img, bs_entry *e);

/* What callers may store in E: the slot capacity less the encryption
 * overhead, or the data length of a raw entry. */
size_t bs__data_capacity(const bs_entry *e);
/* BS_OK when IMG has a data key loaded, else BS_EKEY naming E. */
int bs__key_ready(bs_image *img, const bs_entry *e);
/* How many entries are encrypted while the image has no key entry (it was
 * lost or damaged: nothing can open them), and what to say about it. */
size_t bs__key_orphans(const bs_image *img);
extern const char bs__key_lost_msg[];
/* The image's own key entry (unnamed, type bs.key), or NULL. */
bs_entry *bs__key_entry(const bs_image *img);
/* E's current data (see bs__slot_read for BUF, ALLOC and BS_ERANGE). */
int bs__data_read(bs_image *img, bs_entry *e, void **out, size_t *len, uint8_t *buf,
		  size_t bufsize, bool alloc);
/* Replaces E's data in place (it fits), or by a rewrite to at least
 * CAPACITY when it does not. */
int bs__data_write(bs_image *img, bs_entry *e, const void *data, size_t len, size_t capacity);
/* Verifies E's slots (authenticating them when the key is loaded). */
int bs__data_check(bs_image *img, bs_entry *e, struct bs__slot_report *rep);
int bs__data_inspect(bs_image *img, bs_entry *e, struct bs__slot_view v[2], int *current);

/* ---- compaction (compact.c, recovery.c) --------------------------------------------- */

int bs__dir_compact(bs_image *img);

/* Octets at the end of fixed-size storage reserved for the compaction
 * recovery record (docs/FORMAT.md, "Fixed-size storage"). */
#define BS_RECOVERY_AREA 4096u
/* At open of fixed-size storage (IMG->io.size is the storage size): shrinks
 * the room to the image's and, when a compaction was interrupted, finishes
 * its copy (writers) or points the reads at the copy (readers). */
int bs__recovery_open(bs_image *img);
/* Zeroes the recovery area (format). */
int bs__recovery_clear(bs_image *img);
/* Read-only handles of fixed-size storage: *CHANGED when the recovery area
 * no longer holds what the open read (a compaction began or ended since:
 * the entries may have moved). */
int bs__recovery_changed(bs_image *img, bool *changed);
/* Grows fixed-size storage whose backend can enlarge it (its reserve
 * operation: RBD) so that the image has room for TOTAL octets, and moves the
 * recovery area to the new end.  Fixed storage without reserve: BS_ENOSPC. */
int bs__recovery_grow(bs_image *img, uint64_t total);
/* Crash-safe in-place compaction: makes the LEN-octet image C the image at
 * offset 0 through a copy in free space and a recovery record. */
int bs__compact_fixed(bs_image *img, const uint8_t *c, size_t len);

/* ---- salvage (salvage.c) -------------------------------------------------------------- */

/* One thing a salvage scan found: an intact entry, or octets where none
 * could be read (a damaged entry, garbage, a truncated end). */
struct bs__found {
	uint64_t off, len;    /* where, in the storage */
	bool entry;           /* an intact entry: D, DATA_*, GEN, NEWER_BAD */
	bool past_end;        /* after the directory's first end-of-contents */
	struct bs__decoded d; /* its parse (D.m owned, malloc'ed) */
	uint64_t data_off, data_len;
	uint64_t gen;         /* slotted: the generation a read returns */
	bool newer_bad;       /* the other slot claims a newer one and fails */
	/* Not an entry: what could be read of the one that starts at OFF, if
	 * any (malloc'ed or NULL), and why it is lost. */
	char *type, *name;
	int code;             /* BS_ECORRUPT, or the storage's read error */
	char *why;            /* malloc'ed */
	bool zeros;           /* not an entry, and every octet of it is zero */
};
/* Scans all of IO (its size) for entries without trusting the directory:
 * the framing is followed while it holds, and where it breaks every
 * offset is tried as the start of an entry that passes the strict parse
 * and the check of a data slot (raw entries: the parse alone).  Reads
 * only.  *OUT (N items, in storage order, malloc'ed) covers every octet
 * that is neither framing nor free space.  Errors: BS_ENOMEM. */
int bs__salvage_scan(struct bs__io *io, struct bs__found **out, size_t *n);
void bs__found_free(struct bs__found *f, size_t n);

#endif
