/* blobstore/record.h - structured values: a DER record of named, typed
 * fields, for device state kept in an entry's data.
 *
 *   Record ::= SEQUENCE { mandatory SET OF Attribute, optional SET OF Attribute }
 *
 * (blobstore/blobstore.asn).  Fields are Attributes: a name and a value
 * with the read-only/read-write encodings of blobstore.h's values, or a
 * flag.  Strict DER: SETs sorted (X.690 11.6), names unique across both
 * sets.  Fields follow the attribute rules: an unknown optional field is
 * kept byte for byte by a reader that writes the record back; an unknown
 * mandatory one refuses the record.
 *
 * Getters leave *OUT untouched when the field is absent (BS_ENOENT), so a
 * reader of an older record sets the default first:
 *	int64_t speed = 100;
 *	rc = bs_record_get_int(rec, "speed", &speed);
 *	if (rc && rc != BS_ENOENT) ...
 *
 * Conventions: blobstore/blobstore.h.
 */
#ifndef BLOBSTORE_RECORD_H
#define BLOBSTORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_record bs_record;

/* An empty record to fill with setters.  Errors: BS_EINVAL, BS_ENOMEM. */
int bs_record_new(bs_record **out);

/* Decodes DER/LEN (DER may be NULL when LEN is 0: an empty record).
 * KNOWN[0..N) (may be NULL when N is 0) are the field names this reader
 * understands; the others are unknown.  An unknown mandatory field refuses
 * the record: BS_EUNSUPPORTED, message "unknown mandatory field 'NAME'".
 * Unknown optional fields are kept (bs_record_keep_unknown()).
 * Errors: BS_EINVAL, BS_ECORRUPT (not a strict DER Record; the message
 * gives the offset), BS_EUNSUPPORTED, BS_ELIMIT, BS_ENOMEM. */
int bs_record_decode(const void *der, size_t len, const char *const *known, size_t n,
		     bs_record **out);

void bs_record_free(bs_record *rec);

/* Encodes REC as DER into a malloc()ed *OUT.  Errors: BS_EINVAL, BS_ENOMEM,
 * BS_ELIMIT. */
int bs_record_encode(const bs_record *rec, uint8_t **out, size_t *len);

/* Setters add or replace field NAME (the record is in memory, so read-only
 * fields may be replaced here too); FLAGS: BS_ATTR_MANDATORY, BS_ATTR_RW.
 * bs_record_set() takes the DER of one value element (NULL/0: a flag).
 * Errors: BS_EINVAL, BS_ELIMIT, BS_ENOMEM. */
int bs_record_set(bs_record *rec, const char *name, unsigned flags, const uint8_t *value,
		  size_t len);
int bs_record_set_int(bs_record *rec, const char *name, unsigned flags, int64_t v);
int bs_record_set_uint(bs_record *rec, const char *name, unsigned flags, uint64_t v);
int bs_record_set_bool(bs_record *rec, const char *name, unsigned flags, int v);
int bs_record_set_str(bs_record *rec, const char *name, unsigned flags, const char *s);
int bs_record_set_bytes(bs_record *rec, const char *name, unsigned flags, const void *p,
			size_t len);
int bs_record_set_flag(bs_record *rec, const char *name, unsigned flags);
/* Removes field NAME.  Errors: BS_EINVAL, BS_ENOENT. */
int bs_record_remove(bs_record *rec, const char *name);

/* Field NAME: its value's DER (borrowed, empty for a flag) and *FLAGS (may
 * be NULL: BS_ATTR_MANDATORY, BS_ATTR_KNOWN).  Errors: BS_EINVAL, BS_ENOENT. */
int bs_record_get(const bs_record *rec, const char *name, const uint8_t **value, size_t *len,
		  unsigned *flags);
/* Typed views (bs_value_decode_*).  Errors: BS_EINVAL, BS_ENOENT (absent:
 * *OUT untouched), BS_ETYPE, BS_ENOMEM. */
int bs_record_get_int(const bs_record *rec, const char *name, int64_t *out);
int bs_record_get_uint(const bs_record *rec, const char *name, uint64_t *out);
int bs_record_get_bool(const bs_record *rec, const char *name, int *out);
/* *OUT is malloc()ed, NUL-terminated. */
int bs_record_get_str(const bs_record *rec, const char *name, char **out);
/* *OUT borrowed from REC. */
int bs_record_get_bytes(const bs_record *rec, const char *name, const uint8_t **out,
			size_t *len);
/* Non-zero when field NAME is present. */
int bs_record_has(const bs_record *rec, const char *name);

/* Copies into DST every unknown optional field of SRC (a decoded record)
 * that DST does not set itself, byte for byte: what a reader writes back
 * then still holds what a newer writer added.  Errors: BS_EINVAL,
 * BS_ENOMEM, BS_ELIMIT. */
int bs_record_keep_unknown(bs_record *dst, const bs_record *src);

/* Fields in encoding order: I from 0 to bs_record_count()-1, as
 * bs_record_get() gives them.  Errors: BS_EINVAL, BS_ENOENT. */
size_t bs_record_count(const bs_record *rec);
int bs_record_at(const bs_record *rec, size_t i, const char **name, const uint8_t **value,
		 size_t *len, unsigned *flags);

#ifdef __cplusplus
}
#endif
#endif
