/* nvram_internal.h - what the device API's files share: typed value codecs
 * used alike by attributes (nvram.c) and record fields (record.c). */
#ifndef NVRAM_INTERNAL_H
#define NVRAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvram.h"

enum nv_kind { NV_INT, NV_UINT, NV_BOOL, NV_STR, NV_BYTES };

/* One value to encode.  For read-write strings and bytes, RW_SIZE is the
 * fixed size (0: the value's own length). */
struct nv_value {
	enum nv_kind kind;
	bool rw;
	int64_t i;
	uint64_t u;
	const void *p;
	size_t len;
	size_t rw_size;
};

/* DER of the value element into a malloc()ed *OUT.
 * Errors: BS_EINVAL (invalid UTF-8, string longer than RW_SIZE), BS_ENOMEM. */
int nv_value_encode(const struct nv_value *v, uint8_t **out, size_t *out_len);

/* Decoders over the DER of one value element; *RW (may be NULL) tells which
 * encoding was found.  Errors: BS_ETYPE. */
int nv_value_int(const uint8_t *v, size_t vl, int64_t *out, bool *rw);
int nv_value_uint(const uint8_t *v, size_t vl, uint64_t *out, bool *rw);
int nv_value_bool(const uint8_t *v, size_t vl, int *out, bool *rw);
int nv_value_str(const uint8_t *v, size_t vl, char **out, bool *rw); /* BS_ENOMEM too */
int nv_value_bytes(const uint8_t *v, size_t vl, const uint8_t **out, size_t *len, bool *rw);
/* The octet-string contents when V is an OCTET STRING (the read-write form). */
bool nv_value_octets(const uint8_t *v, size_t vl, const uint8_t **c, size_t *cl);

/* Encodes REC plus the unknown optional fields of EXTRA (may be NULL) that
 * REC does not set itself (record.c). */
int nv_rec_encode_merged(const nvram_rec *rec, const nvram_rec *extra, uint8_t **out,
			 size_t *len);

/* nvram_put(), but a value that outgrows the entry grows it to at least
 * CAPACITY in the same crash-safe rewrite (nvram.c). */
int nv_put_cap(nvram_dev *dev, const void *data, size_t len, size_t capacity);

/* Valid attribute/field names (printable ASCII, no space, bounded). */
bool nv_valid_name(const char *name);

#endif
