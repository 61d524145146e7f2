/* codec.h - the codec layer: one directory entry's strict decoding and its
 * DER encoding, attribute encodings and the list builder every writer
 * uses, the library's own names, and the libtasn1 check against the
 * shipped module (blobstore.asn).  Works on octets in memory.
 *
 *   Entry ::= SEQUENCE { nvram NVRAM, name UTF8String OPTIONAL }
 *   NVRAM ::= SEQUENCE { type IA5String, mandatory SET OF Attribute,
 *                        optional SET OF Attribute, data OCTET STRING }
 *
 * Decoding happens in two steps so that open can skip data by length: the
 * layout step finds the data area from the entry's head; the parse step
 * checks everything but the data contents. */
#ifndef BS_CODEC_H
#define BS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "der/der.h"

/* Names of the library's own attributes and types. */
#define BS_TYPE_IMAGE "bs.image"
#define BS_TYPE_KEY "bs.key"
#define BS_ATTR_SLOTS "bs.slots"
#define BS_ATTR_ID "bs.id"
#define BS_ATTR_SUPERSEDES "bs.supersedes"
#define BS_ATTR_AEAD "bs.aead"
#define BS_RESERVED_PREFIX "bs."

/* The slot check of bs.slots, and the cipher of bs.aead. */
enum bs_check_alg { BS_CHECK_NONE = 0, BS_CHECK_CRC32C, BS_CHECK_SHA256 };
enum bs_aead { BS_AEAD_NONE = 0, BS_AEAD_AES256GCM, BS_AEAD_CHACHA20POLY1305 };
#define BS_AEAD_NONCE_LEN 12u
#define BS_AEAD_TAG_LEN 16u
#define BS_AEAD_OVERHEAD (BS_AEAD_NONCE_LEN + BS_AEAD_TAG_LEN)
#define BS_AEAD_ENTRY_ID_LEN 16u

/* Slot header: generation (8), length (4), check (4 for CRC-32C, 32 for
 * SHA-256). */
size_t bs__slot_hdr_len(enum bs_check_alg alg);

/* ---- decoded entries (entry.c) ------------------------------------------------ */

struct bs__attr_ref {
	const uint8_t *name; /* not NUL-terminated in the encoding: see cname */
	char *cname;         /* NUL-terminated copy */
	size_t name_len;
	const uint8_t *value; /* DER of the value element, empty for a flag */
	size_t value_len;
	const uint8_t *tlv;   /* the whole attribute encoding */
	size_t tlv_len;
	bool mandatory;
};

/* Everything about an entry except where it lives; replaced as a whole when
 * the entry is rewritten. */
struct bs__meta {
	char *type;
	char *name;          /* NULL when absent */
	uint8_t *sets;       /* the two SET OF Attribute encodings, back to back */
	size_t sets_len;
	struct bs__attr_ref *attrs; /* mandatory ones first */
	size_t nmand, nopt;
	/* Refused only for mandatory attributes this library does not know:
	 * the structure is sound, and an upper layer that knows them may
	 * accept the entry. */
	bool unknown_mandatory;
	bool pooled; /* lives in an image's pool: bs__meta_free leaves it */
};
void bs__meta_free(struct bs__meta *m);
/* M's attribute NAME (either set), or NULL. */
const struct bs__attr_ref *bs__meta_attr(const struct bs__meta *m, const char *name);

/* Where an entry's parts are, from its first octets. */
struct bs__layout {
	uint64_t size;      /* whole entry */
	uint64_t data_rel;  /* data contents offset from entry start */
	uint64_t data_len;
	size_t head_need;   /* octets from entry start through the data header */
	size_t tail_len;    /* octets after the data contents */
};
/* Finds the layout from HEAD/HEAD_LEN (the entry's first octets; AVAIL
 * octets of storage follow the entry start).  BS_ECORRUPT (*WHY) when the
 * entry's extent is unknowable; BS_OK with *WHY set when the extent is
 * known but the inside is not usable; BS_ERANGE with LAY->head_need when
 * HEAD_LEN is too short. */
int bs__entry_layout(const uint8_t *head, size_t head_len, uint64_t avail,
		     struct bs__layout *lay, const char **why);

/* What parsing an entry found. */
struct bs__decoded {
	struct bs__meta *m;
	int status;          /* BS_OK or why the entry is refused */
	char *status_msg;    /* malloc()ed, or NULL */
	bool slotted;
	enum bs_check_alg alg;
	enum bs_aead aead;   /* bs.aead: slot payloads are nonce|ciphertext|tag */
	uint64_t supersedes; /* the offset this entry replaces, or UINT64_MAX */
};

/* What a scan remembers between entries: its pool, and the last entry it
 * parsed without complaint, whose parse the next entry with octet-identical
 * type and attribute sets shares (entries of one kind usually have them).
 * Pooled metas may share: none is freed alone. */
struct bs__parse_memo {
	struct bs_pool **pool;
	const struct bs__meta *meta; /* NULL at first */
	size_t type_len;
	bool slotted;
	enum bs_check_alg alg;
	enum bs_aead aead;
	uint64_t supersedes;
};
/* Parses the entry whose head is HEAD (at least LAY->head_need octets) and
 * TAIL (the LAY->tail_len octets after the data contents) into *D.  Content
 * errors refuse the entry (D->status, *WHY, *BAD_REL the entry-relative
 * offset); BS_ENOMEM is the only failure.  With MEMO the meta comes from
 * MEMO's pool when it fits (and may share the memo's parse); without, from
 * malloc. */
int bs__entry_parse(const uint8_t *head, const uint8_t *tail, const struct bs__layout *lay,
		    struct bs__decoded *d, const char **why, uint64_t *bad_rel,
		    struct bs__parse_memo *memo);

/* Parses the contents of one SET OF Attribute strictly (DER order, names,
 * value elements) into OUT[*N..], at most MAX in all; returns NULL or the
 * reason, *BAD the offset of the failing element.  Each parsed ref gets a
 * malloc()ed cname the caller frees, on failure too. */
const char *bs__attr_set_parse(const uint8_t *p, size_t len, bool mandatory,
			       struct bs__attr_ref *out, size_t *n, size_t max, size_t *bad);

/* ---- encoding (encode.c) ------------------------------------------------------- */

/* One attribute encoding, whole. */
struct bs__enc_attr {
	const uint8_t *tlv;
	size_t len;
};

/* Builds one attribute encoding (a flag when VALUE_LEN is 0) into a
 * malloc()ed *OUT.  Errors: BS_EINVAL (bad name, value not one DER
 * element), BS_ELIMIT, BS_ENOMEM. */
int bs__attr_encode(const char *name, const uint8_t *value, size_t value_len,
		    uint8_t **out, size_t *out_len);
/* Whether the attribute encoding TLV/LEN is named NAME. */
bool bs__attr_named(const uint8_t *tlv, size_t len, const char *name);

/* The attribute list a writer builds an entry from: two sets of whole
 * encodings, some borrowed (kept from a stored entry), some encoded here
 * and owned by the list. */
struct bs__attrs {
	struct bs__enc_attr *mand, *opt;
	size_t nmand, nopt, cap;
	uint8_t **owned;
	size_t nowned;
};
/* Room for CAP attributes in each set. */
int bs__attrs_init(struct bs__attrs *l, size_t cap);
void bs__attrs_free(struct bs__attrs *l);
/* Adds a borrowed encoding. */
int bs__attrs_add_tlv(struct bs__attrs *l, const uint8_t *tlv, size_t len, bool mandatory);
/* Encodes and adds NAME = VALUE (see bs__attr_encode). */
int bs__attrs_add(struct bs__attrs *l, const char *name, const uint8_t *value, size_t value_len,
		  bool mandatory);
/* Adds M's attributes, but those for which SKIP (may be NULL) says true. */
int bs__attrs_keep(struct bs__attrs *l, const struct bs__meta *m,
		   bool (*skip)(const struct bs__attr_ref *a, void *ctx), void *ctx);
/* Sorts N encodings (X.690 11.6).  BS_EINVAL on two equal ones. */
int bs__attr_sort(struct bs__enc_attr *a, size_t n);
/* Sorts both sets of L. */
int bs__attrs_sort(struct bs__attrs *l);

/* Encodes an entry: TYPE, NAME (may be NULL), the two attribute sets given
 * as sorted lists of whole attribute encodings, and a data area of DATA_LEN
 * octets whose content is produced by the caller (the encoder only writes
 * the header).  Returns a malloc'ed buffer with the full entry (data area
 * zeroed) and its layout. */
int bs__entry_encode(const char *type, const char *name, const struct bs__enc_attr *mand,
		     size_t nmand, const struct bs__enc_attr *opt, size_t nopt,
		     uint64_t data_len, uint8_t **out, size_t *out_len, uint64_t *data_rel);

/* ---- values (value.c) -------------------------------------------------------- */

/* The public bs_value_encode_* and bs_value_decode_* live here; this tells
 * the size of a read-write value V/VL (its OCTET STRING contents), 0 when
 * V is not an OCTET STRING. */
size_t bs__value_rw_size(const uint8_t *v, size_t vl);

/* ---- the module (schema.c) ------------------------------------------------------ */

/* Decodes one entry encoding against the module's Entry type with libtasn1. */
int bs__schema_check_entry(const uint8_t *der, size_t len, char *why, size_t whylen);

#endif
