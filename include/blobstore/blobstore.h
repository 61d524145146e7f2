/* blobstore/blobstore.h - persistent device state in one ASN.1 image.
 *
 * An image is a directory of entries (docs/FORMAT.md).  Each entry has a type
 * (IA5String), an optional name (UTF-8), a set of mandatory attributes, a set
 * of optional attributes and a data area.  Entries the library creates keep
 * their data in two self-validating slots, so replacing data is crash-safe
 * and costs one write and one sync.
 *
 * Conventions (the same for every function of every blobstore header):
 *  - Names are bs_<object>_<verb>.  Handles are opaque.
 *  - Functions that can fail return an int: BS_OK (0) or a negative BS_E*
 *    code.  bs_error_last() tells the thread's last failure: its code, a
 *    message naming the image, the entry and the byte offset where that
 *    applies, and the errno of the system call that failed.
 *  - NULL rule: a pointer argument is required unless its description says
 *    "(may be NULL)".  A call given NULL for a required pointer fails with
 *    BS_EINVAL and changes nothing.  Accessors that cannot fail return 0,
 *    NULL or "" for a NULL handle; close and free functions ignore NULL.
 *  - Outputs: objects and values a function produces come back through OUT
 *    pointers, written only on success (the one exception is the length a
 *    read reports with BS_ERANGE: the size needed).  Objects created through
 *    an OUT pointer are owned by the caller and released with their own
 *    close or free function; buffers with free().
 *  - Options and other structures the caller fills start with a version:
 *    initialise them with their _INIT macro, then set what you need.  A
 *    version this library does not know is BS_EINVAL.
 *  - bs_entry handles belong to their image (bs_entry_image()): they stay
 *    valid until the entry is deleted or the image is closed, across every
 *    write, rewrite and compaction.
 *  - A bs_image and its entries must not be used by two threads at once;
 *    different images may be.
 *  - Strings are NUL-terminated; types are printable ASCII, names UTF-8.
 *
 * Link with pkg-config blobstore.  Storage backends: blobstore/backend.h
 * (NBD: blobstore/nbd.h); encryption: blobstore/crypt.h; records in the
 * data: blobstore/record.h; the device API: blobstore/nvram.h.
 */
#ifndef BLOBSTORE_BLOBSTORE_H
#define BLOBSTORE_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BS_VERSION_MAJOR 0
#define BS_VERSION_MINOR 2

/* Result codes.  Stable: they are part of the ABI and of the CLI's exit
 * codes (see blobstore(1)). */
enum bs_result {
	BS_OK = 0,
	BS_EINVAL = -1,       /* bad argument (NULL, invalid type or name, unknown version) */
	BS_ENOMEM = -2,       /* out of memory */
	BS_EIO = -3,          /* the storage reported an I/O error */
	BS_ECORRUPT = -4,     /* the image or an entry is malformed or fails its check */
	BS_ENOENT = -5,       /* no such image, entry or attribute */
	BS_EEXIST = -6,       /* the entry or image already exists */
	BS_ELOCKED = -7,      /* another writer holds the image */
	BS_ENOSPC = -8,       /* the storage is full or cannot grow */
	BS_EUNSUPPORTED = -9, /* unknown mandatory attribute or feature: refused */
	BS_ELIMIT = -10,      /* a size or count exceeds a documented limit */
	BS_ERDONLY = -11,     /* read-only: the image was opened so, or the value is */
	BS_ERANGE = -12,      /* caller buffer too small (needed size reported) */
	BS_ETYPE = -13,       /* attribute value has another type than asked */
	BS_EKEY = -14,        /* wrong or missing key (encryption layer) */
	BS_ESTALE = -15,      /* this handle's view may be stale: close and reopen */
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
struct bs_backend; /* blobstore/backend.h */

/* ---- errors ----------------------------------------------------------------- */

/* The last failure of this thread: returns its BS_E* code (BS_OK before any
 * failure).  *MESSAGE (may be NULL) gets "IMAGE: entry TYPE/NAME at offset
 * N: what happened" (never NULL, valid until the next blobstore call on
 * this thread, free of key material); *SYS_ERRNO (may be NULL) the errno of
 * the system call that failed, or 0 when none did. */
int bs_error_last(const char **message, int *sys_errno);

/* Short constant description of a result code ("entry refused: unknown
 * mandatory attribute", ...).  Never NULL. */
const char *bs_error_string(int code);

/* The parts of the thread's last failure that its message names, for
 * programs that report errors in a structured form (blobstore --json):
 * *LABEL the image or storage, *TYPE and *NAME the entry (*NAME NULL for
 * an unnamed entry too), each NULL when the message names none, as given
 * (not escaped) and valid until the next blobstore call on this thread;
 * *OFFSET the byte offset, UINT64_MAX when none.  Every pointer may be
 * NULL.  Returns the code bs_error_last() returns. */
int bs_error_where(const char **label, const char **type, const char **name,
		   uint64_t *offset);

/* ---- names of checks and ciphers --------------------------------------------- */

/* How a slot checks its data. */
enum bs_checksum {
	BS_CHECKSUM_DEFAULT = 0, /* CRC-32C */
	BS_CHECKSUM_CRC32C = 1,  /* torn writes, bit rot */
	BS_CHECKSUM_SHA256 = 2,  /* strong detection */
};
/* "crc32c", "sha256"; NULL for another value. */
const char *bs_checksum_name(enum bs_checksum c);
/* The checksum NAME denotes.  Errors: BS_EINVAL (unknown name). */
int bs_checksum_parse(const char *name, enum bs_checksum *out);

/* How an encrypted entry's data is sealed (blobstore/crypt.h). */
enum bs_cipher {
	BS_CIPHER_DEFAULT = 0,           /* AES-256-GCM */
	BS_CIPHER_AES_256_GCM = 1,
	BS_CIPHER_CHACHA20_POLY1305 = 2,
};
/* "aes-256-gcm", "chacha20-poly1305"; NULL for another value. */
const char *bs_cipher_name(enum bs_cipher c);
/* Errors: BS_EINVAL (unknown name). */
int bs_cipher_parse(const char *name, enum bs_cipher *out);

/* ---- images ------------------------------------------------------------------- */

/* Open flags. */
#define BS_OPEN_RDONLY 0x01u /* no writes; takes no lock */
#define BS_OPEN_CREATE 0x02u /* create and format the image if it does not exist */
#define BS_OPEN_EXCL 0x04u   /* with CREATE: fail with BS_EEXIST if it exists */
#define BS_OPEN_WAIT 0x08u   /* wait for another writer instead of BS_ELOCKED */
#define BS_OPEN_NOSYNC 0x10u /* skip fsync: faster, not durable (tests, scratch) */

/* Opens the image at URI: a file or block device path, or a URI
 * ("file:///path", "blk:///path?size=N", or one a registered backend
 * handles, such as "nbd://host:port/export" once bs_nbd_register() ran;
 * see bs_backend_open()).  Writers take an exclusive lock held until
 * bs_image_close() where the storage has one (files, block devices: this
 * host only).  With BS_OPEN_CREATE a missing or empty file, or all-zero
 * fixed-size storage, is formatted.  Storage that is not a blobstore image
 * is refused, never re-formatted.
 * Errors: BS_EINVAL (NULL, unknown URI scheme), BS_ENOENT, BS_EEXIST,
 * BS_ELOCKED, BS_ECORRUPT, BS_EIO, BS_ENOMEM, BS_EUNSUPPORTED (storage that
 * cannot flush, without BS_OPEN_NOSYNC), BS_ENOSPC (fixed-size storage too
 * small to format). */
int bs_image_open(const char *uri, unsigned flags, bs_image **out);

/* Like bs_image_open() over any storage backend.  The image takes BE, on
 * failure too (it is closed then).  LABEL (may be NULL) names the image in
 * messages (copied).  Errors: those of bs_image_open(). */
int bs_image_open_backend(struct bs_backend *be, const char *label, unsigned flags,
			  bs_image **out);

/* Closes the image and releases its lock.  Every change was already made
 * durable by the call that made it; close writes nothing. */
void bs_image_close(bs_image *img);

/* The label given at open (the path for files); "" for NULL. */
const char *bs_image_label(const bs_image *img);

/* The image's 16-octet identity, chosen at random when it was formatted;
 * NULL for NULL. */
const uint8_t *bs_image_id(const bs_image *img);

struct bs_image_stat {
	uint32_t version;     /* BS_IMAGE_STAT_VERSION */
	uint64_t size;        /* octets of storage the image occupies */
	uint64_t dir_end;     /* offset just past the directory's end-of-contents */
	uint64_t used;        /* octets in live entries (framing included) */
	uint64_t free_holes;  /* octets in free (deleted) elements: compact reclaims */
	uint64_t free_tail;   /* octets past the directory end usable without growing */
	uint64_t entries;     /* live entries, the library's own included */
	uint64_t refused;     /* entries that are refused (see bs_entry_status()) */
};
#define BS_IMAGE_STAT_VERSION 1u
#define BS_IMAGE_STAT_INIT {.version = BS_IMAGE_STAT_VERSION}
/* Fills *OUT (initialised with BS_IMAGE_STAT_INIT).  Errors: BS_EINVAL. */
int bs_image_stat(const bs_image *img, struct bs_image_stat *out);

/* Something an open did besides opening.  A writable open of an image in a
 * file removes the temporary copies that compactions (and formats) killed
 * midway left in the image's directory: regular files named IMAGE.tmp-
 * and 8 lowercase hexadecimal digits, with one link, owned by the image's
 * owner or by the caller's user, that no process holds locked (a running
 * compaction keeps its copy locked).  Nothing else is touched, symbolic
 * links are not followed, and the image still opens when a removal fails.
 * Each copy found becomes a note. */
struct bs_image_note {
	uint32_t version;    /* BS_IMAGE_NOTE_VERSION */
	int kind;            /* BS_NOTE_* */
	int code;            /* BS_OK when done; BS_EIO when it could not be */
	int sys_errno;       /* the errno of the call that failed, or 0 */
	const char *path;    /* the file it is about: IMAGE.tmp-XXXXXXXX */
	uint64_t octets;     /* its size */
	const char *message; /* for people, without the image's label: "removed
				IMAGE.tmp-1a2b3c4d (16777216 octets) left by an
				interrupted compaction" */
};
#define BS_IMAGE_NOTE_VERSION 1u
#define BS_IMAGE_NOTE_INIT {.version = BS_IMAGE_NOTE_VERSION}
/* Note kinds. */
#define BS_NOTE_LEFTOVER 1 /* a temporary copy an interrupted compaction left:
			      removed, or (CODE not BS_OK) it could not be */

/* How many notes the open of IMG made: 0 for NULL, for a read-only open
 * (it removes nothing) and for storage other than files. */
size_t bs_image_note_count(const bs_image *img);
/* Fills *OUT (initialised with BS_IMAGE_NOTE_INIT) with note I, I from 0
 * to bs_image_note_count()-1, in the order the open made them.  The
 * strings belong to IMG and stay valid until it is closed.
 * Errors: BS_EINVAL (NULL, unknown version), BS_ENOENT (past the end). */
int bs_image_note_at(const bs_image *img, size_t i, struct bs_image_note *out);

/* Iteration flags. */
#define BS_ITER_LIBRARY 0x01u /* include the library's own entries (types "bs.*") */

/* Entries in directory order: the first for PREV NULL, else the one after
 * PREV (which must be a live entry of IMG); NULL at the end or for a NULL
 * IMG.  The library's own entries are skipped without BS_ITER_LIBRARY.
 *	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, 0)); ) ... */
bs_entry *bs_entry_next(bs_image *img, const bs_entry *prev, unsigned flags);
/* How many entries bs_entry_next() visits with FLAGS (0 for NULL). */
size_t bs_image_count(const bs_image *img, unsigned flags);

/* Reads LEN raw octets of the image at OFF (for dump and diagnostic tools).
 * Errors: BS_EINVAL, BS_ECORRUPT (past the end), BS_EIO. */
int bs_image_read_raw(bs_image *img, uint64_t off, void *buf, size_t len);

/* Reserves room so that the image can grow to TOTAL octets without the
 * storage running out (files: fallocate; fixed-size devices: BS_ENOSPC when
 * TOTAL exceeds them; fixed-size storage that can be enlarged, such as an
 * RBD image, grows to TOTAL plus its recovery area).  Errors: BS_EINVAL,
 * BS_ERDONLY, BS_ESTALE, BS_ELIMIT, BS_ENOSPC, BS_EIO. */
int bs_image_reserve(bs_image *img, uint64_t total);

/* Rewrites the directory without free elements.  Crash-safe: interrupted,
 * the image is the old one or the new one.  Entries keep their handles.
 * On fixed-size storage the new directory is first written after the old
 * one's end, so it needs that much free room.
 * Errors: BS_EINVAL, BS_ERDONLY, BS_ESTALE, BS_ENOSPC, BS_EUNSUPPORTED
 * (storage that can neither replace nor hold a copy), BS_EIO, BS_ENOMEM. */
int bs_image_compact(bs_image *img);

/* Check flags. */
#define BS_CHECK_SCHEMA 0x01u /* also decode each entry with libtasn1 against the module */

/* Verifies every entry: structure, strict DER, slot checksums (and, with
 * the key loaded, authentication).  Reports each problem through CB (may
 * be NULL) with the entry (NULL for the image), the offset, the code (BS_OK
 * for a note) and a message; returns BS_OK or the first error code.  On a
 * read-only handle whose entries another process moved meanwhile it stops
 * with BS_ESTALE, which is not reported through CB: reopen and check again. */
typedef void (*bs_check_cb)(void *ctx, const bs_entry *e, uint64_t offset, int code,
			    const char *msg);
int bs_image_check(bs_image *img, unsigned flags, bs_check_cb cb, void *ctx);

/* Writes an annotated listing of the whole image to OUT for people: the
 * directory framing, every element with its offset, free space, each
 * entry's elements down to attribute values (unknown ones included), and a
 * summary of each data area (slot generations, lengths and check results
 * for slotted entries).  The format is for reading, not parsing.
 * Errors: BS_EINVAL, BS_EIO (storage or OUT), BS_ENOMEM. */
int bs_image_dump(bs_image *img, FILE *out);

/* ---- salvage ---------------------------------------------------------------------------
 * When an image no longer opens (truncated, a range overwritten, its
 * framing damaged), bs_image_salvage() copies what is intact into a new
 * image: it reads the damaged storage only, follows its directory where
 * that holds and elsewhere tries every offset as the start of an entry;
 * an entry counts when it passes the strict parse and, for a slotted
 * entry, a slot passes its check.  It is copied byte for byte (less
 * bs.supersedes), so encrypted entries stay encrypted and open with the
 * same key in the new image (which keeps the image id and bs.key). */

/* One entry or one damaged range, as bs_image_salvage() reports it.  The
 * strings are valid during the callback only. */
struct bs_salvage_item {
	uint32_t version;     /* BS_SALVAGE_ITEM_VERSION */
	int recovered;        /* non-zero: copied into the new image */
	const char *type;     /* the entry's type; NULL when none could be read */
	const char *name;     /* its name: NULL for an unnamed entry, or unknown */
	uint64_t offset;      /* where it starts in the damaged storage */
	uint64_t length;      /* octets it spans there */
	uint64_t new_offset;  /* where it starts in the new image; UINT64_MAX if lost */
	int code;             /* BS_OK when recovered; why lost: BS_ECORRUPT (damaged,
				 or no entry could be read), BS_EIO (unreadable storage),
				 BS_EEXIST (another copy of the entry is kept), BS_ESTALE
				 (past the directory's end on fixed-size storage), BS_EKEY
				 (encrypted under the id of a lost image entry) */
	const char *note;     /* why it is lost, or a remark on a recovered entry
				 (reads its previous value, raw, past the end); may be NULL */
};
#define BS_SALVAGE_ITEM_VERSION 1u
typedef void (*bs_salvage_cb)(void *ctx, const struct bs_salvage_item *item);

/* Salvage flags. */
#define BS_SALVAGE_PAST_END 0x01u /* also copy entries found past the directory's
				     end on fixed-size storage (always copied from
				     storage that grows, such as files) */
#define BS_SALVAGE_NOSYNC 0x02u   /* do not sync the new image (tests, scratch) */

struct bs_salvage_opts {
	uint32_t version;  /* BS_SALVAGE_OPTS_VERSION */
	unsigned flags;    /* BS_SALVAGE_* */
	bs_salvage_cb cb;  /* called for each recovered entry and each loss, in
			      the damaged storage's order (may be NULL) */
	void *ctx;
};
#define BS_SALVAGE_OPTS_VERSION 1u
#define BS_SALVAGE_OPTS_INIT {.version = BS_SALVAGE_OPTS_VERSION}

/* Writes a new image into the empty storage OUT from the intact entries of
 * DAMAGED, which it only reads (no write, sync, lock or resize).  LABEL and
 * OUT_LABEL (may be NULL) name the two in messages; OPTS may be NULL.  The
 * new image starts with the damaged one's image entry (a fresh one when
 * that is lost: then encrypted entries and bs.key are not copied, see
 * BS_EKEY above); of an entry found more than once, the copy inside the
 * directory, the newer of a rewrite, the higher slot generation wins.
 * Entries keep their order.  The caller keeps both backends.  BS_OK also
 * when entries were lost: the callback tells each.
 * Errors: BS_EINVAL, BS_EEXIST (OUT is not empty), BS_ELIMIT, BS_ENOMEM,
 * BS_EIO and BS_ENOSPC (writing OUT). */
int bs_image_salvage(struct bs_backend *damaged, const char *label, struct bs_backend *out,
		     const char *out_label, const struct bs_salvage_opts *opts);

/* The ASN.1 module the library was built with (NUL-terminated text). */
const char *bs_asn1_module_text(void);

/* ---- entries ---------------------------------------------------------------------- */

/* Finds the entry with TYPE and NAME (may be NULL: the entry without a
 * name).  Errors: BS_EINVAL, BS_ENOENT. */
int bs_entry_find(bs_image *img, const char *type, const char *name, bs_entry **out);

/* Attribute flags. */
#define BS_ATTR_MANDATORY 0x01u /* readers that do not know it refuse the entry */
#define BS_ATTR_RW 0x02u        /* a read-write value: fixed-size OCTET STRING */
#define BS_ATTR_KNOWN 0x04u     /* records: a field the decoder was told about */

/* One attribute to set: VALUE is the DER of exactly one value element
 * (bs_value_encode_*); NULL/0 makes a flag. */
struct bs_attr {
	uint32_t version; /* BS_ATTR_VERSION */
	const char *name;
	unsigned flags;   /* BS_ATTR_MANDATORY */
	const uint8_t *value;
	size_t value_len;
};
#define BS_ATTR_VERSION 1u
#define BS_ATTR(n, f, v, l) {BS_ATTR_VERSION, (n), (f), (v), (l)}

/* Entry flags. */
#define BS_ENTRY_RAW 0x01u     /* no slots: data is the whole data area; replacing it
				  rewrites the entry (still crash-safe, but costs more) */
#define BS_ENTRY_ENCRYPT 0x02u /* encrypt the data with the image's key
				  (blobstore/crypt.h); not with BS_ENTRY_RAW.
				  BS_EKEY when no key is loaded */

struct bs_entry_opts {
	uint32_t version;            /* BS_ENTRY_OPTS_VERSION */
	size_t capacity;             /* data capacity (at least the initial length) */
	const struct bs_attr *attrs; /* NATTRS attributes, names not starting "bs." */
	size_t nattrs;
	enum bs_checksum checksum;   /* slot check */
	unsigned flags;              /* BS_ENTRY_* */
	enum bs_cipher cipher;       /* with BS_ENTRY_ENCRYPT; CAPACITY stays the
					plaintext capacity */
};
#define BS_ENTRY_OPTS_VERSION 1u
#define BS_ENTRY_OPTS_INIT {.version = BS_ENTRY_OPTS_VERSION}

/* Creates the entry TYPE/NAME (NAME may be NULL) with OPTS (may be NULL:
 * the defaults) and the initial data DATA/LEN (DATA may be NULL when LEN is
 * 0).  The entry is durable when this returns.  *OUT (OUT may be NULL)
 * receives it.  Errors: BS_EINVAL, BS_EEXIST, BS_ELIMIT, BS_ENOSPC, BS_EIO,
 * BS_ERDONLY, BS_ESTALE, BS_EKEY. */
int bs_entry_create(bs_image *img, const char *type, const char *name,
		    const struct bs_entry_opts *opts, const void *data, size_t len,
		    bs_entry **out);

/* Accessors; strings live as long as the entry.  For NULL: NULL, "", 0. */
bs_image *bs_entry_image(const bs_entry *e);
const char *bs_entry_type(const bs_entry *e);
const char *bs_entry_name(const bs_entry *e);   /* NULL when unnamed */
uint64_t bs_entry_offset(const bs_entry *e);    /* of the entry's first octet */
uint64_t bs_entry_size(const bs_entry *e);      /* encoded entry, in octets */
size_t bs_entry_capacity(const bs_entry *e);    /* what a write may store */
/* Non-zero when the entry uses the two-slot data layout (bs.slots). */
int bs_entry_is_slotted(const bs_entry *e);
/* The slot check of a slotted entry (BS_CHECKSUM_DEFAULT otherwise). */
enum bs_checksum bs_entry_checksum(const bs_entry *e);
/* The cipher of an encrypted entry, BS_CIPHER_DEFAULT for a plain one; see
 * bs_entry_is_encrypted(). */
enum bs_cipher bs_entry_cipher(const bs_entry *e);
int bs_entry_is_encrypted(const bs_entry *e);

/* BS_OK, or why the entry is refused (BS_EUNSUPPORTED, BS_ECORRUPT);
 * BS_EINVAL for NULL.  The reason, formatted ("ok" when not refused), is
 * bs_entry_status_message()'s. */
int bs_entry_status(const bs_entry *e);
const char *bs_entry_status_message(const bs_entry *e);

/* What a read of E returns, as found on storage now. */
#define BS_STATE_CURRENT 0  /* its newest value (always, for a raw entry) */
#define BS_STATE_PREVIOUS 1 /* its previous value: the newest slot fails its
			       check (an interrupted write, or damage); the
			       next write replaces the damaged slot */
/* Checks E's slots (and, with the image's key, authenticates an encrypted
 * entry) and sets *STATE to BS_STATE_CURRENT or BS_STATE_PREVIOUS.  A
 * device that must not roll back (a TPM's counters) asks this after it
 * reads.  *STATE is untouched on failure.
 * Errors: BS_EINVAL (a NULL argument), E's refusal (see bs_entry_status()),
 * BS_ECORRUPT (no slot passes its check, or authentication fails), BS_EIO,
 * BS_ENOMEM, BS_ESTALE (read-only handles, as for bs_entry_read()). */
int bs_entry_check(bs_entry *e, int *state);

/* Declares that the caller (an upper layer such as the device API in
 * blobstore/nvram.h) understands the mandatory attributes NAMES[0..N)
 * (NAMES may be NULL when N is 0).  When E is refused only because of
 * mandatory attributes this library does not know, and each of them is in
 * NAMES, E becomes usable through this handle, and stays so across its
 * later rewrites.  BS_OK when E is not refused.
 * Errors: BS_EUNSUPPORTED naming the first mandatory attribute not in NAMES
 * (E stays refused); E's own status when it is refused for another reason;
 * BS_EINVAL. */
int bs_entry_accept(bs_entry *e, const char *const *names, size_t n);

/* Reads the entry's current data into BUF (may be NULL when BUFSIZE is 0).
 * *LEN receives the data length; when BUFSIZE is too small nothing is
 * copied and BS_ERANGE is returned with *LEN set to the size needed.  Data
 * failing its check is never copied.  A read-only handle holds no lock:
 * when another process rewrote, deleted or moved the entry (a compaction)
 * after the open read the directory, the read fails with BS_ESTALE (close
 * and reopen the image: the new handle sees the entry where it is now)
 * rather than return data from where the entry used to be.
 * Errors: BS_EINVAL, BS_ECORRUPT, BS_EUNSUPPORTED, BS_EKEY, BS_EIO, BS_ERANGE,
 * BS_ESTALE. */
int bs_entry_read(bs_entry *e, void *buf, size_t bufsize, size_t *len);

/* Like bs_entry_read() into a buffer allocated with malloc(); the caller
 * frees *OUT.  A zero-length value gives a non-NULL *OUT. */
int bs_entry_read_alloc(bs_entry *e, void **out, size_t *len);

/* Replaces the entry's data with DATA/LEN (DATA may be NULL when LEN is 0).
 * Crash-safe: interrupted at any point, the entry reads as the old or the
 * new data, and no other entry changes.  Durable on return unless
 * BS_OPEN_NOSYNC.  When LEN exceeds the capacity the entry is first
 * rewritten with a larger capacity (also crash-safe).
 * Errors: BS_EINVAL, BS_ERDONLY, BS_ESTALE, BS_EUNSUPPORTED, BS_ECORRUPT,
 * BS_EKEY, BS_ELIMIT, BS_ENOSPC, BS_EIO. */
int bs_entry_write(bs_entry *e, const void *data, size_t len);

/* Data and attributes replaced in ONE crash-safe step. */
struct bs_entry_update {
	uint32_t version;            /* BS_ENTRY_UPDATE_VERSION */
	const struct bs_attr *attrs; /* NATTRS attributes to add or replace, each in
					the set its flags choose (none: 0) */
	size_t nattrs;
	const void *data;            /* the new data (may be NULL when LEN is 0) */
	size_t len;
	size_t capacity;             /* room wanted afterwards (0: LEN) */
};
#define BS_ENTRY_UPDATE_VERSION 1u
#define BS_ENTRY_UPDATE_INIT {.version = BS_ENTRY_UPDATE_VERSION}
/* Replaces the data and sets the attributes of U in one crash-safe step:
 * interrupted, the entry reads entirely old or entirely new.  When every
 * attribute already has its value and the data fits, this is a plain
 * bs_entry_write(); otherwise one rewrite of the entry with room for at
 * least U->capacity octets.  Errors: those of bs_attr_set() and
 * bs_entry_write(). */
int bs_entry_update(bs_entry *e, const struct bs_entry_update *u);

/* Rewrites the entry with a data capacity of at least CAPACITY.  Crash-safe.
 * At or below the current capacity nothing changes: entries never shrink.
 * Errors: BS_EINVAL (a raw entry) and those of bs_entry_write(). */
int bs_entry_resize(bs_entry *e, size_t capacity);

/* Deletes the entry; its space becomes a free element.  Crash-safe; E is
 * invalid afterwards.  Refused entries can be deleted.
 * Errors: BS_EINVAL (the image's own entry), BS_ERDONLY, BS_ESTALE, BS_EIO. */
int bs_entry_delete(bs_entry *e);

/* ---- attributes ------------------------------------------------------------------- */

/* Attributes of E in encoding order, the mandatory set first: I from 0 to
 * bs_attr_count()-1.  *NAME and *VALUE (the DER of the value element,
 * empty for a flag) are borrowed from the entry and valid until it changes;
 * *FLAGS (may be NULL) gets BS_ATTR_MANDATORY.  Errors: BS_EINVAL,
 * BS_ENOENT (past the end). */
size_t bs_attr_count(const bs_entry *e);
int bs_attr_at(const bs_entry *e, size_t i, const char **name, const uint8_t **value,
	       size_t *value_len, unsigned *flags);

/* Finds attribute NAME in either set; *FLAGS (may be NULL) as above.
 * Errors: BS_EINVAL, BS_ENOENT. */
int bs_attr_get(const bs_entry *e, const char *name, const uint8_t **value, size_t *value_len,
		unsigned *flags);

/* Typed views of attribute NAME (bs_value_decode_* on its value: the
 * read-only and the read-write encodings both read).
 * Errors: BS_EINVAL, BS_ENOENT, BS_ETYPE, BS_ENOMEM (strings). */
int bs_attr_get_int(const bs_entry *e, const char *name, int64_t *out);
int bs_attr_get_uint(const bs_entry *e, const char *name, uint64_t *out);
int bs_attr_get_bool(const bs_entry *e, const char *name, int *out);
/* *OUT is malloc()ed and NUL-terminated; the caller frees it. */
int bs_attr_get_str(const bs_entry *e, const char *name, char **out);
/* *OUT borrowed from the entry. */
int bs_attr_get_bytes(const bs_entry *e, const char *name, const uint8_t **out, size_t *len);

/* Sets (adds or replaces) attribute NAME with the DER value VALUE/LEN
 * (NULL/0: a flag) in the set FLAGS chooses (BS_ATTR_MANDATORY); an
 * attribute of that name in the other set is removed.  Setting the value
 * an attribute has already is BS_OK and writes nothing.  Names starting
 * "bs." are the library's own and are refused.  Crash-safe (the entry is
 * rewritten).  Errors: BS_EINVAL, BS_ELIMIT, BS_ERDONLY, BS_ESTALE,
 * BS_EUNSUPPORTED, BS_ENOSPC, BS_EIO. */
int bs_attr_set(bs_entry *e, const char *name, unsigned flags, const uint8_t *value,
		size_t len);

/* Removes attribute NAME.  Errors: BS_ENOENT and those of bs_attr_set(). */
int bs_attr_remove(bs_entry *e, const char *name);

/* Non-zero when NAME can name an attribute: 1 to BS_MAX_ATTR_NAME_LEN
 * octets of printable ASCII without spaces.  Reserved prefixes ("bs.") are
 * not checked here; NULL is not a name. */
int bs_attr_name_valid(const char *name);

/* ---- values ---------------------------------------------------------------------------
 * The DER of one attribute or record-field value.  Read-only values (flags
 * 0) use their natural universal type: INTEGER, BOOLEAN, UTF8String,
 * OCTET STRING.  Read-write values (BS_ATTR_RW) are fixed-size OCTET
 * STRINGs, so that a later value has the same size: integers 8 octets
 * big-endian (two's complement for signed ones), booleans 1 octet 00/FF,
 * strings UTF-8 padded with NUL octets to SIZE (0: the string's own
 * length), bytes as they are.
 * Encoders write the DER into BUF/CAP and its length into *LEN; BS_ERANGE
 * with *LEN the size needed when CAP is too small.  BS_VALUE_MAX_INT is
 * enough for any integer or boolean.
 * Errors: BS_EINVAL (invalid UTF-8, a string longer than SIZE, unknown
 * flags), BS_ELIMIT (longer than BS_MAX_ATTR_SIZE), BS_ERANGE. */
#define BS_VALUE_MAX_INT 11u
int bs_value_encode_int(int64_t v, unsigned flags, uint8_t *buf, size_t cap, size_t *len);
int bs_value_encode_uint(uint64_t v, unsigned flags, uint8_t *buf, size_t cap, size_t *len);
int bs_value_encode_bool(int v, unsigned flags, uint8_t *buf, size_t cap, size_t *len);
int bs_value_encode_str(const char *s, unsigned flags, size_t size, uint8_t *buf, size_t cap,
			size_t *len);
int bs_value_encode_bytes(const void *p, size_t n, unsigned flags, uint8_t *buf, size_t cap,
			  size_t *len);

/* Decoders of one value element DER/LEN in either form; *FLAGS (may be
 * NULL) gets BS_ATTR_RW when it was the read-write form (bytes: always
 * 0, the two forms share their encoding).
 * Errors: BS_EINVAL, BS_ETYPE, BS_ENOMEM (strings). */
int bs_value_decode_int(const uint8_t *der, size_t len, int64_t *out, unsigned *flags);
int bs_value_decode_uint(const uint8_t *der, size_t len, uint64_t *out, unsigned *flags);
int bs_value_decode_bool(const uint8_t *der, size_t len, int *out, unsigned *flags);
/* *OUT is malloc()ed and NUL-terminated. */
int bs_value_decode_str(const uint8_t *der, size_t len, char **out, unsigned *flags);
/* *OUT borrowed from DER. */
int bs_value_decode_bytes(const uint8_t *der, size_t len, const uint8_t **out, size_t *n,
			  unsigned *flags);

/* Describes DER values for people ("INTEGER 42", "UTF8String \"x\"",
 * "OCTET STRING[2] 0a0b", ...) into BUF/CAP (always NUL-terminated when
 * CAP > 0). */
void bs_value_describe(const uint8_t *der, size_t len, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
