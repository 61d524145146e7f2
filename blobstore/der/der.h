/* der.h - the DER layer: strict tag/length primitives over (pointer,
 * length), one iterative walker that both the strict element check and
 * bs_image_dump() use, header encoders, and the public value encoders
 * (bs_der_*).  Works on octets in memory; knows nothing of images. */
#ifndef BS_DER_H
#define BS_DER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

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
struct bs__tlv {
	uint32_t tag;
	bool constructed;
	size_t hdr; /* identifier + length octets */
	size_t len; /* content octets */
};

/* Reads one header from P/AVAIL strictly: minimal tag and length octets,
 * definite length below 2^32, and the content within AVAIL.  Returns NULL,
 * or a short static reason. */
const char *bs__der_header(const uint8_t *p, size_t avail, struct bs__tlv *t);
/* The same, but the content may extend past AVAIL (only the header must be
 * there); used when only a prefix of a large element is in memory.  The
 * common case (low tag number, short length) is inline: open decodes a
 * dozen headers per entry. */
const char *bs__der_header_prefix_any(const uint8_t *p, size_t avail, struct bs__tlv *t);
static inline const char *bs__der_header_prefix(const uint8_t *p, size_t avail,
						struct bs__tlv *t)
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
	return bs__der_header_prefix_any(p, avail, t);
}

/* ---- the walker (walk.c) ------------------------------------------------------
 * Visits the elements of a run of octets in order, depth first, without
 * recursion: a stack of the constructed elements it is inside, each
 * element's length charged against its parent's.  The octets may be
 * contiguous (P) or come through VIEW, which returns the octets available
 * at POS (NULL when they are not in memory, as a large data area in
 * bs_image_dump()). */
#define BS__DER_WALK_MAX 32u
struct bs__der_walk {
	const uint8_t *p;
	const uint8_t *(*view)(void *ctx, size_t pos, size_t *avail);
	void *ctx;
	size_t pos;
	size_t depth, max_depth;
	struct {
		size_t end;     /* where the element ends */
		unsigned child; /* children seen so far */
		int user;       /* the caller's mark, given to bs__der_walk_enter */
	} st[BS__DER_WALK_MAX + 1];
};
/* One element the walker stands on. */
struct bs__der_item {
	size_t pos;          /* first octet, relative to the walk's start */
	size_t depth;        /* 0: top level */
	unsigned index;      /* among its siblings */
	int parent;          /* the parent's mark (the top level's: TOP) */
	struct bs__tlv t;
	const uint8_t *p;    /* its first octet */
	size_t avail;        /* octets at P in memory (at least the header) */
};
/* Walks LEN octets, at most MAX_DEPTH (<= BS__DER_WALK_MAX) elements deep;
 * the top level carries the mark TOP. */
void bs__der_walk_init(struct bs__der_walk *w, const uint8_t *p, size_t len, size_t max_depth,
		       int top);
/* The next element: 1 with *IT filled; 0 at the end; -1 when the octets
 * there are malformed (*WHY says why; IT->pos, p and avail say where), or
 * -2 when they are not in memory (IT->pos). */
int bs__der_walk_next(struct bs__der_walk *w, struct bs__der_item *it, const char **why);
/* After next(): step into the constructed element IT, marked USER (false
 * when that would pass MAX_DEPTH: nothing changes), or over IT. */
bool bs__der_walk_enter(struct bs__der_walk *w, const struct bs__der_item *it, int user);
void bs__der_walk_skip(struct bs__der_walk *w, const struct bs__der_item *it);

/* ---- checks (walk.c) ------------------------------------------------------------ */

/* Checks that P/LEN is exactly one strictly DER-encoded element (nested
 * depth limited to BS_MAX_DEPTH); constructed contents are walked. */
const char *bs__der_check_element(const uint8_t *p, size_t len);
/* Checks a run of elements filling P/LEN exactly; *COUNT (may be NULL) gets
 * the number of top-level elements. */
const char *bs__der_check_elements(const uint8_t *p, size_t len, size_t *count);

/* ---- values and encoding (der.c) ------------------------------------------------ */

/* X.690 11.6 ordering: compare encodings as octet strings, the shorter
 * padded with zero octets. */
int bs__der_set_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Header encoding: returns its length (at most 6). */
size_t bs__der_put_header(uint8_t *out, uint8_t tag, size_t len);
size_t bs__der_header_len(size_t len);
/* INTEGER contents to int64; false when it does not fit or is not minimal. */
bool bs__der_int_value(const uint8_t *p, size_t len, int64_t *out);
/* Value encoders: write at most CAP octets to BUF and return the encoded
 * length, or 0 when CAP is too small (BS__DER_MAX_INT is enough for any
 * int64).  The public bs_value_encode_* (codec/value.c) build on them. */
#define BS__DER_MAX_INT 10u
size_t bs__der_encode_int(int64_t v, uint8_t *buf, size_t cap);
size_t bs__der_encode_bool(int v, uint8_t *buf, size_t cap);
size_t bs__der_encode_utf8(const char *s, uint8_t *buf, size_t cap);
size_t bs__der_encode_octets(const void *p, size_t len, uint8_t *buf, size_t cap);
/* A primitive element TAG with contents P/LEN. */
size_t bs__der_encode_prim(uint8_t tag, const void *p, size_t len, uint8_t *buf, size_t cap);
/* The description bs_value_describe() gives (der.c). */

/* The content rules of primitive universal type TAG (X.690 8, 10, 11):
 * NULL or why P/LEN breaks them. */
const char *bs__der_check_primitive(uint32_t tag, const uint8_t *p, size_t len);

#endif
