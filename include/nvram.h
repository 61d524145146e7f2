/* nvram.h - the device API: a device's state in one blobstore entry,
 * without version numbers.
 *
 * A device (a vTPM, firmware variables, a NIC's EEPROM, an RTC's CMOS)
 * opens its entry by type and name and puts and gets whole blobs.  The
 * real size of the last put is kept by the library: the entry's data area
 * holds two slots, and each slot's header carries its generation, length
 * and checksum (docs/FORMAT.md, blobstore/slots.c).  The device never
 * writes a length or a version.
 *
 * Upgrades work through three levels that follow one rule (docs/DEVICE-API.md):
 *   entry types  - entries of a device's family (a type prefix);
 *   attributes   - named, typed values on the entry (nvram_attr_*);
 *   fields       - named, typed values in a DER record in the data (nvram_rec_*).
 * An item is optional or mandatory.  A reader skips unknown optional items
 * and keeps them byte for byte when it writes back; an unknown mandatory
 * item makes the reader refuse with BS_EUNSUPPORTED and a message naming
 * it, and nothing is written.  So a new device version adds an optional
 * item when older versions can cope, and a mandatory one to stop them.
 *
 * Values are read-only (written once; stored in their natural universal
 * type: INTEGER, BOOLEAN, UTF8String, OCTET STRING) or read-write (stored
 * as a fixed-size OCTET STRING so that a later value has the same size:
 * integers 8 octets big-endian two's complement, booleans 1 octet 00/FF,
 * strings UTF-8 padded with NUL octets to the size fixed by the first
 * value, bytes exactly the size of the first value).
 *
 * Conventions are those of blobstore.h: int results are BS_OK or a negative
 * BS_E* code with the message in bs_errmsg(); objects created through an
 * OUT pointer are owned by the caller and freed with their own function;
 * a NULL handle to a free/close function is a no-op.  An nvram_dev borrows
 * its bs_image, which must outlive it; a bs_image and its devices must not
 * be used by two threads at once.
 *
 * Example (error handling shortened):
 *
 *	bs_image *img;
 *	nvram_dev *dev;
 *	bs_open("vm.img", BS_OPEN_CREATE, &img);
 *	nvram_open(img, "rtc.cmos", "rtc0", 128, NVRAM_OPEN_CREATE, &dev);
 *	nvram_put(dev, cmos, sizeof cmos);
 *	size_t n;
 *	if (nvram_get(dev, buf, sizeof buf, &n) == BS_ERANGE)
 *		... n is the size needed ...
 *	nvram_close(dev);
 *	bs_close(img);
 */
#ifndef NVRAM_H
#define NVRAM_H

#include <stddef.h>
#include <stdint.h>

#include "blobstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nvram_dev nvram_dev;
typedef struct nvram_rec nvram_rec;

/* Flags of nvram_open(). */
#define NVRAM_OPEN_CREATE 0x01u    /* create the entry when it does not exist */
#define NVRAM_OPEN_EXCL 0x02u      /* with CREATE: BS_EEXIST when it exists */
#define NVRAM_OPEN_MANDATORY 0x04u /* with CREATE: the entry's type is mandatory
				      (see nvram_types_check()) */
#define NVRAM_OPEN_SHA256 0x08u    /* with CREATE: SHA-256 slot checks, else CRC-32C */

/* Flags of attributes and record fields. */
#define NVRAM_ATTR_MANDATORY 0x01u /* readers that do not know it refuse */
#define NVRAM_ATTR_RW 0x02u        /* read-write: fixed-size OCTET STRING */

/* The mandatory flag attribute that marks an entry type as mandatory. */
#define NVRAM_ATTR_MANDATORY_TYPE "nvram.mandatory-type"

/* Options of nvram_open2(); zero-initialise, then set what you need. */
struct nvram_opts {
	size_t capacity;   /* data capacity when created (the entry grows on demand) */
	unsigned flags;    /* NVRAM_OPEN_* */
	/* The mandatory attributes this device version knows.  An entry with
	 * another mandatory attribute is refused (BS_EUNSUPPORTED naming it). */
	const char *const *known_attrs;
	size_t nknown_attrs;
};

/* Opens the entry TYPE/NAME (NAME may be NULL: the unnamed entry of TYPE)
 * in IMG as a device; with NVRAM_OPEN_CREATE a missing entry is created
 * with CAPACITY octets of data room and no data.  On success *OUT owns the
 * handle; release it with nvram_close().  nvram_open() knows no mandatory
 * attributes; nvram_open2() takes the list in OPTS.
 * Errors: BS_ENOENT (missing, no CREATE), BS_EEXIST (CREATE|EXCL),
 * BS_EUNSUPPORTED (unknown mandatory attribute, named in the message),
 * BS_ECORRUPT, BS_EINVAL, BS_ERDONLY, BS_ENOSPC, BS_EIO, BS_ENOMEM. */
int nvram_open(bs_image *img, const char *type, const char *name, size_t capacity,
	       unsigned flags, nvram_dev **out);
int nvram_open2(bs_image *img, const char *type, const char *name,
		const struct nvram_opts *opts, nvram_dev **out);

/* Closes the handle (writes nothing: every put was durable on return). */
void nvram_close(nvram_dev *dev);

/* The entry behind the device (borrowed; for tools and tests). */
bs_entry *nvram_entry(nvram_dev *dev);

/* Replaces the device's data with DATA/LEN (DATA may be NULL when LEN is
 * 0).  Crash-safe: interrupted, a later get returns the old or the new data.
 * LEN above the capacity grows the entry (also crash-safe).
 * Errors: BS_EINVAL, BS_ERDONLY, BS_EUNSUPPORTED, BS_ELIMIT, BS_ENOSPC, BS_EIO. */
int nvram_put(nvram_dev *dev, const void *data, size_t len);

/* Copies the device's data into BUF.  *LEN gets the data length; when
 * BUFSIZE is too small nothing is copied and BS_ERANGE is returned with
 * *LEN the size needed.  A new entry with nothing put yet has length 0.
 * Errors: BS_ERANGE, BS_ECORRUPT (both slots fail their check), BS_EIO. */
int nvram_get(nvram_dev *dev, void *buf, size_t bufsize, size_t *len);

/* Like nvram_get() into a malloc()ed buffer the caller frees (non-NULL
 * even for length 0). */
int nvram_get_alloc(nvram_dev *dev, void **out, size_t *len);

/* ---- attributes ----------------------------------------------------------
 * Names are printable ASCII without spaces, at most BS_MAX_ATTR_NAME_LEN
 * octets; "bs." and "nvram." prefixes are reserved.  FLAGS are
 * NVRAM_ATTR_*.  Every set rewrites the entry crash-safely (copy-on-write),
 * keeping the data and every other attribute byte for byte.  A mandatory
 * attribute set here is added to the handle's known list.
 * Set errors: BS_ERDONLY when the attribute exists and is read-only (or the
 * new value is read-only: read-only means written once; remove it first),
 * BS_EINVAL when a read-write value does not have the existing size, or the
 * name is invalid; those of bs_attr_set(). */
int nvram_attr_set_int(nvram_dev *dev, const char *name, unsigned flags, int64_t v);
int nvram_attr_set_uint(nvram_dev *dev, const char *name, unsigned flags, uint64_t v);
int nvram_attr_set_bool(nvram_dev *dev, const char *name, unsigned flags, int v);
int nvram_attr_set_str(nvram_dev *dev, const char *name, unsigned flags, const char *s);
int nvram_attr_set_bytes(nvram_dev *dev, const char *name, unsigned flags,
			 const void *p, size_t len);
/* Removes attribute NAME.  Errors: BS_ENOENT and those of the setters. */
int nvram_attr_remove(nvram_dev *dev, const char *name);

/* Getters accept both the read-only and the read-write encoding.  *FLAGS
 * (may be NULL) gets NVRAM_ATTR_MANDATORY and NVRAM_ATTR_RW as stored
 * (a read-only byte string and a read-write one share their encoding and
 * report NVRAM_ATTR_RW only through the set rules).
 * Errors: BS_ENOENT (absent), BS_ETYPE (another type or does not fit). */
int nvram_attr_get_int(nvram_dev *dev, const char *name, int64_t *out, unsigned *flags);
int nvram_attr_get_uint(nvram_dev *dev, const char *name, uint64_t *out, unsigned *flags);
int nvram_attr_get_bool(nvram_dev *dev, const char *name, int *out, unsigned *flags);
/* *OUT is malloc()ed, NUL-terminated; the caller frees it. */
int nvram_attr_get_str(nvram_dev *dev, const char *name, char **out, unsigned *flags);
/* *OUT is borrowed from the entry: valid until the entry next changes. */
int nvram_attr_get_bytes(nvram_dev *dev, const char *name, const uint8_t **out, size_t *len,
			 unsigned *flags);

/* ---- entry types ----------------------------------------------------------
 * A device family owns the types starting with PREFIX (say "mydev.").
 * Returns BS_OK when every entry of IMG with such a type is either of a
 * type in KNOWN[0..N) or optional; BS_EUNSUPPORTED naming the first entry
 * whose type is unknown and mandatory (created with NVRAM_OPEN_MANDATORY).
 * Unknown optional entries are left alone: nobody deletes them. */
int nvram_types_check(bs_image *img, const char *prefix, const char *const *known, size_t n);

/* ---- records: structured state in the data --------------------------------
 *   Record ::= SEQUENCE { mandatory SET OF Attribute, optional SET OF Attribute }
 * (blobstore/blobstore.asn).  Fields are Attributes: a name and a value
 * with the same read-only/read-write encodings as attributes, or a flag.
 * Strict DER: SETs sorted (X.690 11.6), names unique across both sets. */

/* An empty record to fill with setters.  Errors: BS_ENOMEM. */
int nvram_rec_new(nvram_rec **out);

/* Decodes DER/LEN.  KNOWN[0..N) are the field names this reader
 * understands (mandatory or optional); the others are unknown.  An unknown
 * mandatory field refuses the record: BS_EUNSUPPORTED, message "unknown
 * mandatory field 'NAME'".  Unknown optional fields are kept (see
 * nvram_rec_keep_unknown()).  LEN 0 decodes as an empty record.
 * Errors: BS_ECORRUPT (not a strict DER Record; the message gives the
 * offset), BS_EUNSUPPORTED, BS_ELIMIT, BS_ENOMEM, BS_EINVAL. */
int nvram_rec_decode(const void *der, size_t len, const char *const *known, size_t n,
		     nvram_rec **out);

void nvram_rec_free(nvram_rec *rec);

/* Setters add or replace field NAME (the record is in memory, so read-only
 * fields may be replaced here too).  Errors: BS_EINVAL, BS_ELIMIT, BS_ENOMEM. */
int nvram_rec_set_int(nvram_rec *rec, const char *name, unsigned flags, int64_t v);
int nvram_rec_set_bool(nvram_rec *rec, const char *name, unsigned flags, int v);
int nvram_rec_set_str(nvram_rec *rec, const char *name, unsigned flags, const char *s);
int nvram_rec_set_bytes(nvram_rec *rec, const char *name, unsigned flags, const void *p,
			size_t len);
int nvram_rec_set_flag(nvram_rec *rec, const char *name, unsigned flags);
/* Removes field NAME; BS_ENOENT when absent. */
int nvram_rec_remove(nvram_rec *rec, const char *name);

/* Getters: the field's value, or DEF when the field is absent.  Errors:
 * BS_ETYPE when present with another type (nothing is stored in *OUT). */
int nvram_rec_get_int(const nvram_rec *rec, const char *name, int64_t def, int64_t *out);
int nvram_rec_get_bool(const nvram_rec *rec, const char *name, int def, int *out);
/* *OUT is a malloc()ed copy of the value or of DEF (DEF may be NULL: then
 * *OUT is NULL when absent). */
int nvram_rec_get_str(const nvram_rec *rec, const char *name, const char *def, char **out);
/* *OUT borrowed from REC (or DEF/DEFLEN when absent). */
int nvram_rec_get_bytes(const nvram_rec *rec, const char *name, const uint8_t *def,
			size_t deflen, const uint8_t **out, size_t *len);
/* Non-zero when field NAME is present. */
int nvram_rec_has(const nvram_rec *rec, const char *name);

/* Copies into DST every unknown optional field of SRC (a decoded record)
 * that DST does not set itself, byte for byte: what a reader writes back
 * then still holds what a newer writer added.  Errors: BS_ENOMEM, BS_ELIMIT. */
int nvram_rec_keep_unknown(nvram_rec *dst, const nvram_rec *src);

/* Encodes REC as DER into a malloc()ed *OUT.  Errors: BS_ENOMEM, BS_ELIMIT. */
int nvram_rec_encode(const nvram_rec *rec, uint8_t **out, size_t *len);

/* Iteration (tools): field I of the record in encoding order.  NAME
 * borrowed; *VALUE the DER of the value (empty for a flag); *FLAGS gets
 * NVRAM_ATTR_MANDATORY; *KNOWN whether it was in the decoder's list (1 for
 * fields set through the setters).  Errors: BS_ENOENT past the end. */
size_t nvram_rec_count(const nvram_rec *rec);
int nvram_rec_field_at(const nvram_rec *rec, size_t i, const char **name, const uint8_t **value,
		       size_t *value_len, unsigned *flags, int *known);

/* Reads the device's data as a record (nvram_rec_decode() with KNOWN). */
int nvram_get_rec(nvram_dev *dev, const char *const *known, size_t n, nvram_rec **out);

/* Writes REC as the device's data, merged with the unknown optional fields
 * of the record stored now (decoded again with KNOWN, so a field a newer
 * writer added since this device read survives).  When the stored record
 * has an unknown mandatory field, or is not a record, nothing is written:
 * BS_EUNSUPPORTED or BS_ECORRUPT.  Other errors: those of nvram_put(). */
int nvram_put_rec(nvram_dev *dev, const nvram_rec *rec, const char *const *known, size_t n);

#ifdef __cplusplus
}
#endif
#endif
