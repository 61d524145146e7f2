/* blobstore/nvram.h - the device API: a device's state in one blobstore
 * entry, without version numbers.
 *
 * A device (a vTPM, firmware variables, a NIC's EEPROM, an RTC's CMOS)
 * opens its entry by type and name and puts and gets whole blobs.  The
 * real size of the last put is kept by the library: the entry's data area
 * holds two slots, and each slot's header carries its generation, length
 * and checksum (docs/FORMAT.md).  The device never writes a length or a
 * version.
 *
 * Upgrades work through three levels that follow one rule (docs/DEVICE-API.md):
 *   entry types  - entries of a device's family (a type prefix);
 *   attributes   - named, typed values on the entry (bs_device_attr_*);
 *   fields       - named, typed values in a DER record in the data
 *                  (blobstore/record.h, bs_device_get_record()).
 * An item is optional or mandatory.  A reader skips unknown optional items
 * and keeps them byte for byte when it writes back; an unknown mandatory
 * item makes the reader refuse with BS_EUNSUPPORTED and a message naming
 * it, and nothing is written.  So a new device version adds an optional
 * item when older versions can cope, and a mandatory one to stop them.
 *
 * Attribute values are read-only (written once; their natural universal
 * type) or read-write (BS_ATTR_RW: a fixed-size OCTET STRING, so that a
 * later value has the same size; see the values of blobstore.h).  Read
 * them with the bs_attr_get_* of blobstore.h on bs_device_entry().
 *
 * Conventions: blobstore/blobstore.h.  A bs_device borrows its bs_image,
 * which must outlive it; an image and its devices must not be used by two
 * threads at once.
 *
 * Example (error handling shortened):
 *
 *	bs_image *img;
 *	bs_device *dev;
 *	struct bs_device_opts o = BS_DEVICE_OPTS_INIT;
 *	o.capacity = 128;
 *	o.flags = BS_DEVICE_CREATE;
 *	bs_image_open("vm.img", BS_OPEN_CREATE, &img);
 *	bs_device_open(img, "rtc.cmos", "rtc0", &o, &dev);
 *	bs_device_put(dev, cmos, sizeof cmos);
 *	size_t n;
 *	if (bs_device_get(dev, buf, sizeof buf, &n) == BS_ERANGE)
 *		... n is the size needed ...
 *	bs_device_close(dev);
 *	bs_image_close(img);
 */
#ifndef BLOBSTORE_NVRAM_H
#define BLOBSTORE_NVRAM_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>
#include <blobstore/record.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_device bs_device;

/* Flags of bs_device_opts. */
#define BS_DEVICE_CREATE 0x01u    /* create the entry when it does not exist */
#define BS_DEVICE_EXCL 0x02u      /* with CREATE: BS_EEXIST when it exists */
#define BS_DEVICE_MANDATORY 0x04u /* with CREATE: the entry's type is mandatory
				     (see bs_device_check_types()) */

/* The mandatory flag attribute that marks an entry type as mandatory. */
#define BS_DEVICE_MANDATORY_TYPE "nvram.mandatory-type"

struct bs_device_opts {
	uint32_t version;          /* BS_DEVICE_OPTS_VERSION */
	size_t capacity;           /* data capacity when created (the entry grows on demand) */
	unsigned flags;            /* BS_DEVICE_* */
	enum bs_checksum checksum; /* with CREATE: the slot check */
	/* A put that outgrows the entry grows it to LEN times GROW_FACTOR
	 * (0 and 1: exactly LEN), in the same crash-safe rewrite. */
	unsigned grow_factor;
	/* The mandatory attributes this device version knows (may be NULL
	 * when NKNOWN_ATTRS is 0).  An entry with another mandatory attribute
	 * is refused (BS_EUNSUPPORTED naming it). */
	const char *const *known_attrs;
	size_t nknown_attrs;
};
#define BS_DEVICE_OPTS_VERSION 1u
#define BS_DEVICE_OPTS_INIT {.version = BS_DEVICE_OPTS_VERSION}

/* Opens the entry TYPE/NAME (NAME may be NULL: the unnamed entry of TYPE)
 * in IMG as a device, with OPTS (may be NULL: open an existing entry,
 * knowing no mandatory attribute); with BS_DEVICE_CREATE a missing entry
 * is created with OPTS->capacity octets of data room and no data.
 * Errors: BS_EINVAL, BS_ENOENT (missing, no CREATE), BS_EEXIST
 * (CREATE|EXCL), BS_EUNSUPPORTED (unknown mandatory attribute, named in
 * the message), BS_ECORRUPT, BS_ERDONLY, BS_ESTALE, BS_ENOSPC, BS_EIO,
 * BS_ENOMEM. */
int bs_device_open(bs_image *img, const char *type, const char *name,
		   const struct bs_device_opts *opts, bs_device **out);

/* Closes the handle (writes nothing: every put was durable on return). */
void bs_device_close(bs_device *dev);

/* The entry behind the device (borrowed), NULL for NULL. */
bs_entry *bs_device_entry(const bs_device *dev);

/* Replaces the device's data with DATA/LEN (DATA may be NULL when LEN is
 * 0).  Crash-safe: interrupted, a later get returns the old or the new data.
 * LEN above the capacity grows the entry (also crash-safe).
 * Errors: BS_EINVAL, BS_ERDONLY, BS_ESTALE, BS_EUNSUPPORTED, BS_EKEY,
 * BS_ELIMIT, BS_ENOSPC, BS_EIO. */
int bs_device_put(bs_device *dev, const void *data, size_t len);

/* Copies the device's data into BUF (may be NULL when BUFSIZE is 0).  *LEN
 * gets the data length; when BUFSIZE is too small nothing is copied and
 * BS_ERANGE is returned with *LEN the size needed.  A new entry with
 * nothing put yet has length 0.
 * Errors: BS_EINVAL, BS_ERANGE, BS_ECORRUPT (both slots fail their check),
 * BS_EKEY, BS_EIO. */
int bs_device_get(bs_device *dev, void *buf, size_t bufsize, size_t *len);

/* Like bs_device_get() into a malloc()ed buffer the caller frees (non-NULL
 * even for length 0). */
int bs_device_get_alloc(bs_device *dev, void **out, size_t *len);

/* ---- attributes ----------------------------------------------------------
 * Names are printable ASCII without spaces, at most BS_MAX_ATTR_NAME_LEN
 * octets; "bs." and "nvram." prefixes are reserved.  FLAGS are
 * BS_ATTR_MANDATORY and BS_ATTR_RW.  Every change rewrites the entry
 * crash-safely (copy-on-write), keeping the data and every other attribute
 * byte for byte; setting the value an attribute already has writes
 * nothing.  A mandatory attribute set here is added to the handle's known
 * list.
 * Errors: BS_ERDONLY when the attribute exists and is read-only with
 * another value (read-only means written once: remove it first), or when a
 * read-write attribute would become read-only; BS_ELIMIT when a read-write
 * value does not fit the attribute's size (integers and booleans keep
 * theirs; strings can get more room with bs_device_attr_reserve()); BS_EINVAL
 * for an invalid name or flags; those of bs_attr_set(). */
int bs_device_attr_set_int(bs_device *dev, const char *name, unsigned flags, int64_t v);
int bs_device_attr_set_uint(bs_device *dev, const char *name, unsigned flags, uint64_t v);
int bs_device_attr_set_bool(bs_device *dev, const char *name, unsigned flags, int v);
/* A read-write string is padded with NUL octets to its size: the size of
 * the first value, or what bs_device_attr_reserve() made room for. */
int bs_device_attr_set_str(bs_device *dev, const char *name, unsigned flags, const char *s);
/* A read-write byte string keeps the size of its first value. */
int bs_device_attr_set_bytes(bs_device *dev, const char *name, unsigned flags, const void *p,
			     size_t len);
/* Makes room for SIZE octets in read-write string attribute NAME: an
 * existing one keeps its value and grows to SIZE (never shrinks); a
 * missing one is created empty (FLAGS: BS_ATTR_MANDATORY).
 * Errors: BS_ETYPE (NAME is not a read-write string), BS_ELIMIT, and those
 * of the setters. */
int bs_device_attr_reserve(bs_device *dev, const char *name, unsigned flags, size_t size);
/* Removes attribute NAME.  Errors: BS_ENOENT and those of the setters. */
int bs_device_attr_remove(bs_device *dev, const char *name);

/* ---- entry types ----------------------------------------------------------
 * A device family owns the types starting with PREFIX (say "mydev.").
 * Returns BS_OK when every entry of IMG with such a type is either of a
 * type in KNOWN[0..N) (KNOWN may be NULL when N is 0) or optional;
 * BS_EUNSUPPORTED naming the first entry whose type is unknown and
 * mandatory (created with BS_DEVICE_MANDATORY).  Unknown optional entries
 * are left alone: nobody deletes them.  Errors: BS_EINVAL too. */
int bs_device_check_types(bs_image *img, const char *prefix, const char *const *known,
			  size_t n);

/* ---- records in the data ----------------------------------------------------- */

/* Reads the device's data as a record (bs_record_decode() with KNOWN). */
int bs_device_get_record(bs_device *dev, const char *const *known, size_t n, bs_record **out);

/* Writes REC as the device's data, with the unknown optional fields of the
 * record stored now (decoded again with KNOWN) that REC does not set, so
 * that a field a newer writer added since this device read survives; those
 * fields are added to REC (bs_record_keep_unknown()).  When the stored
 * record has an unknown mandatory field, or is not a record, nothing is
 * written: BS_EUNSUPPORTED or BS_ECORRUPT.  Other errors: those of
 * bs_device_put(). */
int bs_device_put_record(bs_device *dev, bs_record *rec, const char *const *known, size_t n);

#ifdef __cplusplus
}
#endif
#endif
