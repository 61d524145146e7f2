/* blobstore.h - persistent device state in one ASN.1 image.
 *
 * An image is a directory of entries (docs/FORMAT.md).  Each entry has a type
 * (IA5String), an optional name (UTF-8), a set of mandatory attributes, a set
 * of optional attributes and a data area.  Entries the library creates keep
 * their data in two self-validating slots, so replacing data is crash-safe
 * and costs one write and one sync.
 *
 * Conventions (the same for every function here):
 *  - Functions that can fail return an int: BS_OK (0) or a negative BS_E*
 *    code.  The message of the last failure on the calling thread, naming the
 *    image, the entry and the byte offset where that applies, is returned by
 *    bs_errmsg().
 *  - Objects a function creates come back through an OUT pointer; the caller
 *    owns them and frees them with the matching free/close function.
 *  - bs_entry pointers are borrowed from their image: they stay valid until
 *    the entry is deleted or the image is closed, including across
 *    bs_entry_write(), bs_entry_resize(), bs_attr_set() and bs_compact().
 *  - A bs_image handle must not be used by two threads at once.
 *  - Strings are NUL-terminated; types are printable ASCII, names UTF-8.
 */
#ifndef BLOBSTORE_H
#define BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BS_VERSION_MAJOR 0
#define BS_VERSION_MINOR 1

/* Result codes.  Stable: they are part of the ABI and of the CLI's exit
 * codes (see blobstore(1)). */
enum bs_result {
	BS_OK = 0,
	BS_EINVAL = -1,       /* bad argument (NULL handle, invalid type or name) */
	BS_ENOMEM = -2,       /* out of memory */
	BS_EIO = -3,          /* the storage reported an I/O error */
	BS_ECORRUPT = -4,     /* the image or an entry is malformed or fails its check */
	BS_ENOENT = -5,       /* no such image, entry or attribute */
	BS_EEXIST = -6,       /* the entry or image already exists */
	BS_ELOCKED = -7,      /* another writer holds the image */
	BS_ENOSPC = -8,       /* the storage is full or cannot grow */
	BS_EUNSUPPORTED = -9, /* unknown mandatory attribute: entry refused */
	BS_ELIMIT = -10,      /* a size or count exceeds a documented limit */
	BS_ERDONLY = -11,     /* the image was opened read-only */
	BS_ERANGE = -12,      /* caller buffer too small (needed size reported) */
	BS_ETYPE = -13,       /* attribute value has another type than asked */
	BS_EKEY = -14,        /* wrong or missing key (encryption layer) */
};

/* Limits.  Every length in an image is checked against these and against
 * its enclosing element before use. */
#define BS_MAX_TYPE_LEN 255u            /* octets in an entry type */
#define BS_MAX_NAME_LEN 4096u           /* octets in an entry name */
#define BS_MAX_ATTR_NAME_LEN 255u       /* octets in an attribute name */
#define BS_MAX_ATTR_SIZE 65536u         /* octets in one encoded attribute */
#define BS_MAX_ATTRS 256u               /* attributes in one set */
#define BS_MAX_DEPTH 16u                /* nesting inside an attribute value */
#define BS_MAX_ENTRY_SIZE (1ull << 31)  /* octets in one encoded entry */
#define BS_MAX_ENTRIES (1u << 22)       /* entries in one image */
#define BS_MAX_IMAGE_SIZE (1ull << 44)  /* octets in one image */

typedef struct bs_image bs_image;
typedef struct bs_entry bs_entry;
struct bs_backend; /* blobstore_backend.h */

/* Open flags. */
#define BS_OPEN_RDONLY 0x01u /* no writes; takes no lock */
#define BS_OPEN_CREATE 0x02u /* create and format the image if it does not exist */
#define BS_OPEN_EXCL 0x04u   /* with CREATE: fail with BS_EEXIST if it exists */
#define BS_OPEN_WAIT 0x08u   /* wait for another writer instead of BS_ELOCKED */
#define BS_OPEN_NOSYNC 0x10u /* skip fsync: faster, not durable (tests, scratch) */

/* Last error message of this thread: "IMAGE: entry TYPE/NAME at offset N:
 * what happened".  Never NULL; valid until the next blobstore call on this
 * thread.  Contains no key material. */
const char *bs_errmsg(void);

/* Short constant description of a result code ("entry refused: unknown
 * mandatory attribute", ...).  Never NULL. */
const char *bs_strerror(int code);

/* Opens the image at PATH: a file or block device path, or a URI
 * ("file:///path", "blk:///path?size=N", "nbd://host:port/export",
 * "nbd+unix:///export?socket=PATH"; see bs_backend_open()).  Writers take an
 * exclusive lock held until bs_close() where the storage has one (files,
 * block devices: this host only; NBD: none).  With BS_OPEN_CREATE a missing
 * or empty file, or all-zero fixed-size storage, is formatted.  Storage that
 * is not a blobstore image is refused, never re-formatted.
 * On success *OUT owns the handle.
 * Errors: BS_ENOENT, BS_EEXIST, BS_ELOCKED, BS_ECORRUPT, BS_EIO, BS_ENOMEM,
 * BS_EINVAL (unknown URI scheme), BS_EUNSUPPORTED (an NBD export that
 * cannot flush, without BS_OPEN_NOSYNC), BS_ENOSPC (fixed-size storage too
 * small to format). */
int bs_open(const char *path, unsigned flags, bs_image **out);

/* Like bs_open() over any storage backend.  On success the image owns BE
 * and closes it; on failure BE is closed too.  LABEL names the image in
 * messages (copied). */
int bs_open_backend(struct bs_backend *be, const char *label, unsigned flags,
		    bs_image **out);

/* Closes the image and releases its lock.  Every change was already made
 * durable by the call that made it; close writes nothing.  NULL is a no-op. */
void bs_close(bs_image *img);

/* The label given at open (the path for files). */
const char *bs_image_label(const bs_image *img);

/* The image's 16-byte identity, chosen at random when it was formatted. */
const uint8_t *bs_image_id(const bs_image *img);

struct bs_stat {
	uint64_t size;        /* octets of storage the image occupies */
	uint64_t dir_end;     /* offset just past the directory's end-of-contents */
	uint64_t used;        /* octets in live entries (framing included) */
	uint64_t free_holes;  /* octets in free (deleted) elements: compact reclaims */
	uint64_t free_tail;   /* octets past the directory end usable without growing */
	uint64_t entries;     /* live entries, library-internal ones included */
	uint64_t refused;     /* entries that are refused (see bs_entry_status) */
};
int bs_stat(bs_image *img, struct bs_stat *out);

/* Iteration in directory order: i from 0 to bs_count()-1. */
size_t bs_count(const bs_image *img);
bs_entry *bs_entry_at(bs_image *img, size_t i);

/* Finds the entry with TYPE and NAME (NULL: the entry without a name).
 * Errors: BS_ENOENT. */
int bs_find(bs_image *img, const char *type, const char *name, bs_entry **out);

/* Attribute flags. */
#define BS_ATTR_MANDATORY 0x01u /* readers that do not know it refuse the entry */

/* One attribute as given to bs_entry_create().  VALUE is the DER encoding of
 * the value element(s) after the name (build it with bs_der_*); NULL/0 makes
 * a flag. */
struct bs_attr {
	const char *name;
	unsigned flags;
	const uint8_t *value;
	size_t value_len;
};

/* Creates an entry whose data area holds up to CAPACITY octets, with initial
 * data DATA/LEN (LEN <= CAPACITY; DATA may be NULL when LEN is 0).  The new
 * entry is durable when this returns.  *OUT (may be NULL) receives it.
 * Errors: BS_EEXIST, BS_EINVAL, BS_ELIMIT, BS_ENOSPC, BS_EIO, BS_ERDONLY. */
int bs_entry_create(bs_image *img, const char *type, const char *name,
		    size_t capacity, const struct bs_attr *attrs, size_t nattrs,
		    const void *data, size_t len, bs_entry **out);

/* Options for bs_entry_create2(); zero-initialise, then set what you need. */
#define BS_ENTRY_RAW 0x01u /* no slots: data is the whole data area; replacing it
			      rewrites the entry (still crash-safe, but costs more) */
#define BS_ENTRY_ENCRYPT 0x02u /* encrypt the data with the image's key (see
				  blobstore_crypt.h); not with BS_ENTRY_RAW.
				  BS_EKEY when no key is loaded */
struct bs_entry_opts {
	size_t capacity;            /* data capacity (at least the initial length) */
	const struct bs_attr *attrs; /* NATTRS attributes, names not starting "bs." */
	size_t nattrs;
	const char *check;          /* slot check: NULL or "crc32c" (torn writes,
				       bit rot), "sha256" (strong detection) */
	unsigned flags;             /* BS_ENTRY_* */
	const char *cipher;         /* with BS_ENTRY_ENCRYPT: NULL or "aes-256-gcm",
				       "chacha20-poly1305"; CAPACITY stays the
				       plaintext capacity */
};
int bs_entry_create2(bs_image *img, const char *type, const char *name,
		     const struct bs_entry_opts *opts, const void *data, size_t len,
		     bs_entry **out);

/* Accessors; strings live as long as the entry. */
const char *bs_entry_type(const bs_entry *e);
const char *bs_entry_name(const bs_entry *e);   /* NULL when unnamed */
uint64_t bs_entry_offset(const bs_entry *e);    /* of the entry's first octet */
uint64_t bs_entry_size(const bs_entry *e);      /* encoded entry, in octets */
size_t bs_entry_capacity(const bs_entry *e);
/* BS_OK, or why the entry is refused (BS_EUNSUPPORTED, BS_ECORRUPT).  The
 * reason is also available, formatted, from bs_entry_status_msg(). */
int bs_entry_status(const bs_entry *e);
const char *bs_entry_status_msg(const bs_entry *e);
/* Declares that the caller (an upper layer such as the device API in
 * nvram.h) understands the mandatory attributes NAMES[0..N).  When E is
 * refused only because of mandatory attributes this library does not know,
 * and each of them is in NAMES, E becomes usable in this handle (status
 * BS_OK).  A rewrite of E (bs_attr_set(), a growing bs_entry_write()) parses
 * it again and refuses it again: call this after such calls.  BS_OK when E
 * is not refused.
 * Errors: BS_EUNSUPPORTED naming the first mandatory attribute not in NAMES
 * (E stays refused); E's own status when it is refused for another reason
 * (BS_ECORRUPT, an unknown slot check); BS_EINVAL. */
int bs_entry_accept(bs_image *img, bs_entry *e, const char *const *names, size_t n);
/* Non-zero when the entry uses the two-slot data layout (bs.slots). */
int bs_entry_is_slotted(const bs_entry *e);
/* The slot check of a slotted entry ("crc32c", "sha256"), else NULL. */
const char *bs_entry_check(const bs_entry *e);

/* Reads LEN raw octets of the image at OFF (for dump and diagnostic tools).
 * Errors: BS_ECORRUPT (past the end), BS_EIO. */
int bs_image_read_raw(bs_image *img, uint64_t off, void *buf, size_t len);

/* Reads the entry's current data into BUF.  *LEN receives the data length;
 * when BUFSIZE is too small nothing is copied and BS_ERANGE is returned with
 * *LEN set to the size needed.  Data failing its check is never copied.
 * Errors: BS_ECORRUPT, BS_EUNSUPPORTED, BS_EIO, BS_ERANGE. */
int bs_entry_read(bs_image *img, bs_entry *e, void *buf, size_t bufsize, size_t *len);

/* Like bs_entry_read() into a buffer allocated with malloc(); the caller
 * frees *OUT.  A zero-length value gives a non-NULL *OUT. */
int bs_entry_read_alloc(bs_image *img, bs_entry *e, void **out, size_t *len);

/* Replaces the entry's data.  Crash-safe: interrupted at any point, the
 * entry reads as the old or the new data, and no other entry changes.
 * Durable on return unless BS_OPEN_NOSYNC.  When LEN exceeds the capacity
 * the entry is first rewritten with a larger capacity (also crash-safe).
 * Errors: BS_ERDONLY, BS_EUNSUPPORTED, BS_ECORRUPT, BS_ELIMIT, BS_ENOSPC, BS_EIO. */
int bs_entry_write(bs_image *img, bs_entry *e, const void *data, size_t len);

/* Rewrites the entry with a data capacity of at least CAPACITY (never
 * shrinking below the current data).  Crash-safe. */
int bs_entry_resize(bs_image *img, bs_entry *e, size_t capacity);

/* Deletes the entry; its space becomes a free element.  Crash-safe; E is
 * invalid afterwards.  Refused entries can be deleted. */
int bs_entry_delete(bs_image *img, bs_entry *e);

/* Attributes.  Index-based iteration over one set (MANDATORY non-zero: the
 * mandatory set): NAME and VALUE (the DER of the value elements, empty for a
 * flag) are borrowed from the entry and valid until it changes. */
size_t bs_attr_count(const bs_entry *e, int mandatory);
int bs_attr_at(const bs_entry *e, int mandatory, size_t i, const char **name,
	       const uint8_t **value, size_t *value_len);

/* Finds attribute NAME in either set.  *FLAGS (may be NULL) gets
 * BS_ATTR_MANDATORY when it is in the mandatory set.  Errors: BS_ENOENT. */
int bs_attr_get(const bs_entry *e, const char *name, unsigned *flags,
		const uint8_t **value, size_t *value_len);

/* Typed views of a single-element value.  Errors: BS_ENOENT, BS_ETYPE. */
int bs_attr_get_int(const bs_entry *e, const char *name, int64_t *out);
int bs_attr_get_bool(const bs_entry *e, const char *name, int *out);
/* UTF8String or IA5String; *OUT is malloc()ed and NUL-terminated. */
int bs_attr_get_str(const bs_entry *e, const char *name, char **out);
/* OCTET STRING contents, borrowed. */
int bs_attr_get_bytes(const bs_entry *e, const char *name, const uint8_t **out, size_t *len);

/* Sets (adds or replaces) attribute NAME with the DER value VALUE/LEN
 * (NULL/0: a flag) in the set chosen by FLAGS; an attribute of that name in
 * the other set is removed.  Names starting "bs." are the library's own and
 * are refused.  Crash-safe (the entry is rewritten).
 * Errors: BS_EINVAL, BS_ELIMIT, BS_ERDONLY, BS_EUNSUPPORTED, BS_ENOSPC, BS_EIO. */
int bs_attr_set(bs_image *img, bs_entry *e, const char *name, unsigned flags,
		const uint8_t *value, size_t len);

/* Removes attribute NAME.  Errors: BS_ENOENT and those of bs_attr_set(). */
int bs_attr_remove(bs_image *img, bs_entry *e, const char *name);

/* Replaces the entry's data with DATA/LEN and sets the NATTRS attributes
 * (added or replaced, in the set each one's flags choose) in ONE crash-safe
 * rewrite: interrupted, the entry reads entirely old or entirely new.  Costs
 * a rewrite of the entry (bs_entry_write() alone is cheaper when only data
 * changes).  Errors: those of bs_attr_set() and bs_entry_write(). */
int bs_entry_update(bs_image *img, bs_entry *e, const struct bs_attr *attrs, size_t nattrs,
		    const void *data, size_t len);

/* Reserves room so that the image can grow to TOTAL octets without the
 * storage running out (files: fallocate; fixed-size devices: BS_ENOSPC when
 * TOTAL exceeds them). */
int bs_image_reserve(bs_image *img, uint64_t total);

/* Rewrites the directory without free elements.  Crash-safe: interrupted,
 * the image is the old one or the new one.  Entries keep their handles.
 * On fixed-size storage the new directory is first written after the old
 * one's end, so it needs that much free room (BS_ENOSPC otherwise). */
int bs_compact(bs_image *img);

/* Verifies every entry: structure, strict DER, slot checksums.  Reports each
 * problem through CB (may be NULL) and returns BS_OK or the first error
 * code.  With SCHEMA non-zero each entry is also decoded with libtasn1
 * against the shipped ASN.1 module. */
typedef void (*bs_check_cb)(void *ctx, const bs_entry *e, uint64_t offset,
			    int code, const char *msg);
int bs_check(bs_image *img, int schema, bs_check_cb cb, void *ctx);

/* Writes an annotated listing of the whole image to OUT for people: the
 * directory framing, every element with its offset, free space, each
 * entry's elements down to attribute values (unknown ones included), and a
 * summary of each data area (slot generations, lengths and check results
 * for slotted entries).  The format is for reading, not parsing.
 * Errors: BS_EIO (storage or OUT), BS_ENOMEM. */
int bs_dump(bs_image *img, FILE *out);

/* The ASN.1 module the library was built with (NUL-terminated text). */
const char *bs_asn1_module(void);

/* DER value encoders for attribute values.  Each writes at most CAP octets
 * to BUF and returns the encoded length, or 0 when CAP is too small.
 * BS_DER_MAX_INT is enough for any int64 encoding. */
#define BS_DER_MAX_INT 10u
size_t bs_der_int(int64_t v, uint8_t *buf, size_t cap);
size_t bs_der_bool(int v, uint8_t *buf, size_t cap);
size_t bs_der_utf8(const char *s, uint8_t *buf, size_t cap);
size_t bs_der_octets(const void *p, size_t len, uint8_t *buf, size_t cap);

/* Describes one DER value for display ("INTEGER 42", "UTF8String \"x\"",
 * "OCTET STRING 0a0b", ...) into BUF (always NUL-terminated). */
void bs_der_describe(const uint8_t *der, size_t len, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
