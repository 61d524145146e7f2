/* internal.h - what the store's files share and nobody else sees. */
#ifndef BS_INTERNAL_H
#define BS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blobstore.h"
#include "blobstore_backend.h"

#define BS_UNUSED(x) ((void)(x))

/* ---- errors (error.c) ---------------------------------------------------- */

/* Sets the thread's error and returns CODE.  Any of IMG, E may be NULL;
 * OFFSET is printed unless it is BS_NO_OFFSET. */
#define BS_NO_OFFSET UINT64_MAX
int bs__err(const bs_image *img, const bs_entry *e, uint64_t offset, int code,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int bs__err_key(const char *label, const char *type, const char *name, int code,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int bs__verr(const char *label, const char *type, const char *name, uint64_t offset,
	     int code, const char *fmt, va_list ap);
/* Backend errors: "LABEL: what: strerror(errno)" with the errno mapped. */
int bs__errno(const char *label, int err, uint64_t offset, const char *what);

/* ---- DER primitives (der.c) ---------------------------------------------- */

#define DER_BOOLEAN 0x01
#define DER_INTEGER 0x02
#define DER_BIT_STRING 0x03
#define DER_OCTET_STRING 0x04
#define DER_NULL 0x05
#define DER_OID 0x06
#define DER_UTF8STRING 0x0c
#define DER_PRINTABLESTRING 0x13
#define DER_IA5STRING 0x16
#define DER_UTCTIME 0x17
#define DER_GENERALIZEDTIME 0x18
#define DER_SEQUENCE 0x30
#define DER_SET 0x31

/* One decoded tag-length header.  TAG holds the identifier octets as read
 * (up to 4 for high tag numbers, big-endian in a uint32_t). */
struct der_tlv {
	uint32_t tag;
	bool constructed;
	size_t hdr; /* identifier + length octets */
	size_t len; /* content octets */
};

/* Reads one header from P/AVAIL strictly: minimal tag and length octets,
 * definite length below 2^32, and the content within AVAIL.  Returns 0, or
 * a short static reason. */
const char *der_header(const uint8_t *p, size_t avail, struct der_tlv *t);
/* The same, but the content may extend past AVAIL (only the header must be
 * there); used when only a prefix of a large element is in memory.  The
 * common case (low tag number, short length) is inline: open decodes a
 * dozen headers per entry. */
const char *der_header_prefix_any(const uint8_t *p, size_t avail, struct der_tlv *t);
static inline const char *der_header_prefix(const uint8_t *p, size_t avail, struct der_tlv *t)
{
	if (avail >= 4 && (p[0] & 0x1f) != 0x1f) {
		size_t hdr = 0, len = 0;
		if (p[1] < 0x80) {
			hdr = 2;
			len = p[1];
		} else if (p[1] == 0x81 && p[2] >= 0x80) {
			hdr = 3;
			len = p[2];
		} else if (p[1] == 0x82 && p[2] != 0) {
			hdr = 4;
			len = (size_t)p[2] << 8 | p[3];
		}
		if (hdr) { /* minimal: the rest (and every error) is the slow path's */
			t->tag = p[0];
			t->constructed = (p[0] & 0x20) != 0;
			t->hdr = hdr;
			t->len = len;
			return NULL;
		}
	}
	return der_header_prefix_any(p, avail, t);
}
/* Checks that P/LEN is exactly one strictly DER-encoded element (nested
 * depth limited to BS_MAX_DEPTH); constructed contents are walked. */
const char *der_check_element(const uint8_t *p, size_t len);
/* Checks a run of elements filling P/LEN exactly. */
const char *der_check_elements(const uint8_t *p, size_t len, size_t *count);
/* X.690 11.6 ordering: compare encodings as octet strings, the shorter
 * padded with zero octets. */
int der_set_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Header encoding: returns its length (at most 6). */
size_t der_put_header(uint8_t *out, uint8_t tag, size_t len);
size_t der_header_len(size_t len);
bool der_valid_utf8(const uint8_t *p, size_t len);
/* The value of one hexadecimal digit (either case), or -1. */
int bs__hexval(int c);
bool der_valid_ia5(const uint8_t *p, size_t len);
/* INTEGER contents to int64; false when it does not fit or is not minimal. */
bool der_int_value(const uint8_t *p, size_t len, int64_t *out);

/* ---- memory (pool.c) ------------------------------------------------------ */

/* Image-lifetime memory: zeroed, 16-aligned blocks of at most
 * BS_POOL_MAX_BLOCK octets, released all together by bs__pool_destroy
 * (never one by one).  NULL when out of memory or N is too large. */
struct bs_pool;
#define BS_POOL_MAX_BLOCK (8u << 10)
void *bs__pool_alloc(struct bs_pool **pool, size_t n);
void bs__pool_destroy(struct bs_pool **pool);
/* Zeroed memory for big tables, in huge pages when it is 2 MiB or more;
 * bs__big_free needs the size that was asked for. */
void *bs__big_calloc(size_t n);
void bs__big_free(void *p, size_t n);

/* ---- CRC-32C (crc32c.c) -------------------------------------------------- */
uint32_t bs_crc32c(uint32_t crc, const void *data, size_t len);
/* The same through one implementation (1 tables, 2 the crc32 instruction,
 * 3 carry-less multiplication folding), for the tests: false when this
 * CPU does not have it. */
bool bs__crc32c_with(int impl, uint32_t crc, const void *data, size_t len, uint32_t *out);

/* ---- entries (entry.c) --------------------------------------------------- */

struct bs_attr_ref {
	const uint8_t *name; /* not NUL-terminated in the encoding: see cname */
	char *cname;         /* NUL-terminated copy */
	size_t name_len;
	const uint8_t *value; /* DER of the value elements, empty for a flag */
	size_t value_len;
	const uint8_t *tlv;   /* the whole attribute encoding */
	size_t tlv_len;
	bool mandatory;
};

/* Everything about an entry except where it lives; replaced as a whole when
 * the entry is rewritten. */
struct bs_meta {
	char *type;
	char *name;          /* NULL when absent */
	uint8_t *sets;       /* the two SET OF Attribute encodings, back to back */
	size_t sets_len;
	struct bs_attr_ref *attrs; /* mandatory ones first */
	size_t nmand, nopt;
	/* Refused only for mandatory attributes this library does not know:
	 * the structure is sound, and an upper layer that knows them may
	 * accept the entry (bs_entry_accept). */
	bool unknown_mandatory;
	bool pooled; /* lives in an image's pool: bs__meta_free leaves it */
};

enum bs_check_alg { BS_CHECK_NONE = 0, BS_CHECK_CRC32C, BS_CHECK_SHA256 };
/* Authenticated encryption of a slotted entry's data (crypt.c). */
enum bs_aead { BS_AEAD_NONE = 0, BS_AEAD_AES256GCM, BS_AEAD_CHACHA20POLY1305 };

struct bs_entry {
	uint64_t off;      /* first octet of the Entry */
	uint64_t size;     /* whole Entry encoding */
	uint64_t data_off; /* first content octet of the data OCTET STRING */
	uint64_t data_len; /* its content length */
	struct bs_meta *m;
	int status;        /* BS_OK or why refused */
	char *status_msg;
	bool slotted;
	enum bs_check_alg alg;
	enum bs_aead aead;  /* bs.aead: slot payloads are nonce|ciphertext|tag */
	bool superseded;    /* a later copy replaces it (crash during rewrite) */
	uint64_t supersedes; /* offset this entry replaces, or UINT64_MAX */
	/* slot cache (writers only) */
	int active;         /* -1 unknown, else 0 or 1 */
	uint64_t gen;       /* highest generation seen in either slot */
	size_t index;       /* position in the image's list */
	struct bs_entry *hnext;
	uint64_t khash;      /* hash of type and name, set when inserted */
};

/* Slot header: generation (8), length (4), check (4 for CRC-32C, 32 for SHA-256). */
size_t bs__slot_hdr_len(enum bs_check_alg alg);

/* Parses the entry whose first octet is at HEAD (HEAD_LEN octets from the
 * entry start, at least through the data header) and TAIL (the octets after
 * the data contents up to the entry end).  Fills E (fields, meta, status).
 * Returns BS_OK, or BS_ECORRUPT for framing errors that make the entry's
 * extent unknowable; content errors only set E->status.  *NEED receives the
 * head length required when HEAD_LEN was too short (then BS_ERANGE). */
struct entry_layout {
	uint64_t size;      /* whole entry */
	uint64_t data_rel;  /* data contents offset from entry start */
	uint64_t data_len;
	size_t head_need;   /* octets from entry start through the data header */
	size_t tail_len;    /* octets after the data contents */
};
int bs__entry_layout(const uint8_t *head, size_t head_len, uint64_t avail,
		     struct entry_layout *lay, const char **why);
/* What a scan remembers between entries: its pool, and the last entry it
 * parsed without complaint, whose parse the next entry with octet-identical
 * type and attribute sets shares (entries of one kind usually have them).
 * Pooled metas may share: none is freed alone. */
struct bs_parse_memo {
	struct bs_pool **pool;
	const struct bs_meta *meta; /* NULL at first */
	size_t type_len;
	bool slotted;
	enum bs_check_alg alg;
	enum bs_aead aead;
	uint64_t supersedes;
};
/* With MEMO the meta comes from MEMO's pool when it fits (and may share
 * the memo's parse); without, from malloc. */
int bs__entry_parse(const uint8_t *head, const uint8_t *tail,
		    const struct entry_layout *lay, bs_entry *e, const char **why,
		    uint64_t *bad_rel, struct bs_parse_memo *memo);
void bs__meta_free(struct bs_meta *m);

/* Encodes an entry: TYPE, NAME (may be NULL), the two attribute sets given
 * as sorted lists of whole attribute encodings, and a data area of DATA_LEN
 * octets whose content is produced by the caller (the encoder only writes
 * the header).  Returns a malloc'ed buffer with the full entry (data area
 * zeroed) and its layout. */
struct enc_attr {
	const uint8_t *tlv;
	size_t len;
};
int bs__entry_encode(const char *type, const char *name, const struct enc_attr *mand,
		     size_t nmand, const struct enc_attr *opt, size_t nopt,
		     uint64_t data_len, uint8_t **out, size_t *out_len, uint64_t *data_rel);
/* Builds one attribute encoding (flag when VALUE_LEN is 0). */
int bs__attr_encode(const char *name, const uint8_t *value, size_t value_len,
		    uint8_t **out, size_t *out_len);
/* Parses the contents of one SET OF Attribute strictly (DER order, names,
 * value elements) into OUT[*N..], at most MAX in all; returns NULL or the
 * reason, *BAD the offset of the failing element.  Each parsed ref gets a
 * malloc()ed cname the caller frees, on failure too.  Also used by the
 * device API's records (nvram/record.c). */
const char *bs__attr_set_parse(const uint8_t *p, size_t len, bool mandatory,
			       struct bs_attr_ref *out, size_t *n, size_t max, size_t *bad);
/* Sorts attribute encodings (X.690 11.6) and rejects duplicates. */
int bs__attr_sort(struct enc_attr *a, size_t n);

/* Names of the library's own attributes and types. */
#define BS_TYPE_IMAGE "bs.image"
#define BS_ATTR_SLOTS "bs.slots"
#define BS_ATTR_ID "bs.id"
#define BS_ATTR_SUPERSEDES "bs.supersedes"
#define BS_ATTR_AEAD "bs.aead"
#define BS_TYPE_KEY "bs.key"
#define BS_RESERVED_PREFIX "bs."

/* ---- the image (image.c) ------------------------------------------------- */

struct bs_image {
	struct bs_backend *be;
	char *label;
	unsigned flags;
	bool locked;
	uint64_t size;     /* backend size */
	uint64_t dir_end;  /* just past end-of-contents */
	uint64_t holes;    /* octets in free elements */
	bs_entry **list;   /* directory order, live and refused entries */
	size_t count, cap;
	struct bs_hslot *hash; /* lookup by type and name (image.c) */
	size_t hash_size, hash_used;
	uint8_t id[16];
	bs_entry *image_entry;
	uint64_t superseded_pending; /* entries hidden by a later copy */
	/* A write or sync failed where the storage may or may not hold it
	 * (a commit octet, a slot): this handle's view may be stale, and a
	 * later write through it could land in a superseded copy or overwrite
	 * the last durable slot.  Changes are refused until the image is
	 * reopened, which reads the truth back. */
	bool broken;
	struct bs_crypt *crypt;      /* loaded data key (crypt.c), or NULL */
	/* Fixed-size storage (no resize): the last BS_RECOVERY_AREA octets
	 * hold the compaction recovery record (recovery.c), the image lives
	 * in [0, size) with size = storage size - BS_RECOVERY_AREA. */
	bool fixed;
	struct bs_pool *pool;        /* entries and open's metas (pool.c) */
	bs_entry *free_entries;      /* freed ones, chained by hnext */
	/* Read-only view of an interrupted compaction's copy: every read is
	 * shifted by BASE octets (0 normally). */
	uint64_t base;
};

int bs__sync(bs_image *img);
/* Writes A then B back to back at OFF in one storage write (writev when the
 * backend has it, else through a copy). */
int bs__write2(bs_image *img, const bs_entry *e, const void *a, size_t alen, const void *b,
	       size_t blen, uint64_t off);
int bs__read(bs_image *img, const bs_entry *e, void *buf, size_t len, uint64_t off);
int bs__write(bs_image *img, const bs_entry *e, const void *buf, size_t len, uint64_t off);

/* ---- slots (slots.c) ----------------------------------------------------- */
int bs__slots_init(enum bs_check_alg alg, uint8_t *area, size_t area_len,
		   const void *data, size_t len, uint64_t gen);
int bs__slot_read(bs_image *img, bs_entry *e, void **out, size_t *len,
		  uint8_t *buf, size_t bufsize, bool alloc);
int bs__slot_write(bs_image *img, bs_entry *e, const void *data, size_t len);
/* bs_entry_write(), but an entry that has to grow gets at least CAPACITY
 * in the same crash-safe rewrite (image.c). */
int bs__entry_write_cap(bs_image *img, bs_entry *e, const void *data, size_t len,
			size_t capacity);
size_t bs__slot_capacity(const bs_entry *e);
/* What callers may store: the slot capacity less the encryption overhead. */
size_t bs__data_capacity(const bs_entry *e);
/* The generation a copy-on-write copy of E starts at: above every
 * generation E's slots hold, so old slot copies never pass for new ones. */
int bs__slot_next_gen(bs_image *img, bs_entry *e, uint64_t *gen);
/* Verifies both slots, reporting through the callback. */
int bs__slot_check(bs_image *img, bs_entry *e, bs_check_cb cb, void *ctx);
/* What each slot of a slotted entry holds, for bs_dump(): header fields and
 * whether the slot passes its check; *CURRENT gets the slot a read returns,
 * or -1 when none does. */
struct bs_slot_view {
	uint64_t off; /* first octet of the slot header */
	uint64_t gen;
	uint32_t len;
	bool valid;
};
int bs__slot_inspect(bs_image *img, bs_entry *e, struct bs_slot_view v[2], int *current);
void bs__slot_put_header(enum bs_check_alg alg, uint8_t *hdr, uint64_t gen,
			 const void *data, size_t len);

/* ---- encryption (crypt.c) ------------------------------------------------ */
#define BS_AEAD_NONCE_LEN 12u
#define BS_AEAD_TAG_LEN 16u
#define BS_AEAD_OVERHEAD (BS_AEAD_NONCE_LEN + BS_AEAD_TAG_LEN)
#define BS_AEAD_ENTRY_ID_LEN 16u
struct bs_crypt;
void bs__crypt_free(struct bs_crypt *c);
/* BS_OK when IMG has a data key loaded, else BS_EKEY with a message naming E. */
int bs__crypt_ready(bs_image *img, const bs_entry *e);
/* The mandatory bs.aead attribute for a new entry (fresh entry identity);
 * *OUT is malloc'ed. */
int bs__crypt_attr(bs_image *img, enum bs_aead aead, uint8_t **out, size_t *out_len);
/* Seals DATA/LEN for an entry being built from its sorted attribute sets
 * into OUT (LEN + BS_AEAD_OVERHEAD octets): nonce | ciphertext | tag. */
int bs__crypt_seal_parts(bs_image *img, enum bs_aead aead, const char *type, const char *name,
			 const struct enc_attr *mand, size_t nmand, const struct enc_attr *opt,
			 size_t nopt, uint64_t gen, const void *data, size_t len, uint8_t *out);
/* The same for an existing entry. */
int bs__crypt_seal(bs_image *img, const bs_entry *e, uint64_t gen, const void *data,
		   size_t len, uint8_t *out);
/* Opens the slot payload IN/IN_LEN of generation GEN into OUT (IN_LEN -
 * BS_AEAD_OVERHEAD octets).  On failure OUT is wiped and BS_ECORRUPT
 * names the image, the entry and SLOT_OFF. */
int bs__crypt_open(bs_image *img, const bs_entry *e, uint64_t gen, const uint8_t *in,
		   size_t in_len, uint8_t *out, uint64_t slot_off);
/* Test hooks (tests/unit/test_crypt.c): fixed nonces and entry identities
 * instead of random ones (NULL: random again), and a given data key. */
void bs__crypt_test_fix(const uint8_t *nonce, const uint8_t *entry_id);
int bs__crypt_test_set_dek(bs_image *img, const uint8_t *dek);

/* ---- the library's own entries (image.c) --------------------------------- */
/* Like bs_entry_create2() but allows "bs." types and attribute names. */
int bs__entry_create_lib(bs_image *img, const char *type, const char *name,
			 const struct bs_entry_opts *opts, const void *data, size_t len,
			 bs_entry **out);
/* Copy-on-write rewrite of E with data DATA/LEN and the attributes ATTRS set
 * (added or replaced; "bs." names allowed).  Crash-safe like every rewrite. */
int bs__entry_rewrite_lib(bs_image *img, bs_entry *e, const struct bs_attr *attrs,
			  size_t nattrs, const void *data, size_t len);

/* ---- fixed-size storage (recovery.c) -------------------------------------- */
/* Octets at the end of fixed-size storage reserved for the compaction
 * recovery record (docs/FORMAT.md, "Fixed-size storage"). */
#define BS_RECOVERY_AREA 4096u
/* At open of fixed-size storage (IMG->size is the storage size): shrinks
 * IMG->size to the image's room and, when a compaction was interrupted,
 * finishes its copy (writers) or points IMG->base at the copy (readers). */
int bs__recovery_open(bs_image *img);
/* Zeroes the recovery area (format). */
int bs__recovery_clear(bs_image *img);
/* Crash-safe in-place compaction: makes the LEN-octet image C the image at
 * offset 0 through a copy in free space and a recovery record. */
int bs__compact_fixed(bs_image *img, const uint8_t *c, size_t len);

/* ---- block-aligned I/O (blockio.c) ----------------------------------------- */
/* Storage that reads and writes only whole, aligned blocks of BSZ octets:
 * unaligned writes become read-modify-write of the partial blocks, done in
 * one aligned write per chunk (so a write inside one block stays one block
 * write).  BOUNCE is CAP octets aligned for O_DIRECT. */
struct bs__blockio {
	void *ctx;
	int (*pread)(void *ctx, void *buf, size_t len, uint64_t off);
	int (*pwrite)(void *ctx, const void *buf, size_t len, uint64_t off);
	uint32_t bsz;
	uint8_t *bounce;
	size_t cap;
};
int bs__blockio_init(struct bs__blockio *io, uint32_t bsz);
void bs__blockio_free(struct bs__blockio *io);
int bs__blockio_read(struct bs__blockio *io, void *buf, size_t len, uint64_t off);
int bs__blockio_write(struct bs__blockio *io, const void *buf, size_t len, uint64_t off);

/* ---- schema (schema.c) --------------------------------------------------- */
/* Decodes one entry encoding against the module's Entry type with libtasn1. */
int bs__schema_check_entry(const uint8_t *der, size_t len, char *why, size_t whylen);

#endif
