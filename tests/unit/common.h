/* common.h - helpers shared by the unit tests: byte buffers, builders of
 * (possibly hostile) DER entries and images, images over memory. */
#ifndef BS_TEST_COMMON_H
#define BS_TEST_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <cmocka.h>

#include <blobstore/backend.h>
#include <blobstore/blobstore.h>
#include <blobstore/crypt.h>
#include <blobstore/nvram.h>
#include <blobstore/record.h>

#include "fault.h"

/* ---- shorthands over the public API, for assertions ---------------------------- */

/* The message of the last failure. */
const char *last_error(void);
/* Entry I in directory order, the library's own included (NULL past the end). */
bs_entry *t_entry_at(bs_image *img, size_t i);
/* Attribute I of one set of E (MANDATORY non-zero: the mandatory set). */
size_t t_attr_count(const bs_entry *e, int mandatory);
int t_attr_at(const bs_entry *e, int mandatory, size_t i, const char **name,
	      const uint8_t **value, size_t *value_len);
/* Value encoders returning the length (0: did not fit). */
size_t t_der_int(int64_t v, uint8_t *buf, size_t cap);
size_t t_der_bool(int v, uint8_t *buf, size_t cap);
size_t t_der_utf8(const char *s, uint8_t *buf, size_t cap);
size_t t_der_octets(const void *p, size_t len, uint8_t *buf, size_t cap);
/* A device attribute's typed value and its flags (BS_ATTR_MANDATORY,
 * BS_ATTR_RW as stored; FLAGS may be NULL). */
int t_dev_get_int(bs_device *d, const char *name, int64_t *out, unsigned *flags);
int t_dev_get_uint(bs_device *d, const char *name, uint64_t *out, unsigned *flags);
int t_dev_get_bool(bs_device *d, const char *name, int *out, unsigned *flags);
int t_dev_get_str(bs_device *d, const char *name, char **out, unsigned *flags);
int t_dev_get_bytes(bs_device *d, const char *name, const uint8_t **out, size_t *len,
		    unsigned *flags);
/* A record field, or DEF when absent (a copy of DEF for strings, NULL when
 * DEF is NULL). */
int t_rec_get_int(const bs_record *r, const char *name, int64_t def, int64_t *out);
int t_rec_get_bool(const bs_record *r, const char *name, int def, int *out);
int t_rec_get_str(const bs_record *r, const char *name, const char *def, char **out);
int t_rec_get_bytes(const bs_record *r, const char *name, const uint8_t *def, size_t deflen,
		    const uint8_t **out, size_t *len);
int t_rec_field_at(const bs_record *r, size_t i, const char **name, const uint8_t **value,
		   size_t *len, unsigned *flags, int *known);
/* The content of a memory or fault backend. */
const uint8_t *t_mem_data(const struct bs_backend *be, size_t *len);
/* The name of IMG's KDF, or NULL. */
const char *t_kdf_name(const bs_image *img);

/* Non-zero when BS_TEST_QUICK=1 (sanitizer runs): long loops shrink. */
bool t_quick(void);

/* A growable byte buffer; every allocation failure aborts the test. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_put(struct buf *b, const void *p, size_t n);
/* Appends N octets given as ints. */
void buf_bytes(struct buf *b, size_t n, ...);
/* Appends a minimal DER header for TAG and LEN. */
void buf_hdr(struct buf *b, uint8_t tag, size_t len);
void buf_tlv(struct buf *b, uint8_t tag, const void *c, size_t n);
void buf_str(struct buf *b, uint8_t tag, const char *s);

/* Attribute encodings appended to a SET's contents (caller keeps order). */
void t_attr_flag(struct buf *set, const char *name);
void t_attr_val(struct buf *set, const char *name, const void *der, size_t len);
/* The mandatory attribute SEQUENCE { "bs.slots", IA5String ALG }. */
void t_attr_slots(struct buf *set, const char *alg);

/* The parts of one Entry.  TYPE is raw octets (TYPE_LEN 0: strlen). */
struct t_entry {
	const char *type;
	size_t type_len;
	const uint8_t *mand;
	size_t mand_len;
	const uint8_t *opt;
	size_t opt_len;
	const uint8_t *data;
	size_t data_len;
	const char *name; /* NULL: no name */
	size_t name_len;  /* 0: strlen */
};
void t_build_entry(struct buf *out, const struct t_entry *e);
/* A raw (slot-less) entry TYPE/NAME holding DATA. */
void t_raw_entry(struct buf *out, const char *type, const char *name, const char *data);
/* A slotted entry (crc32c) of CAPACITY holding DATA/LEN in slot 0. */
void t_slotted_entry(struct buf *out, const char *type, const char *name, size_t capacity,
		     const void *data, size_t len);

/* CRC-32C computed bit by bit, independent of the library's. */
uint32_t t_crc32c_ref(uint32_t crc, const uint8_t *p, size_t n);
/* Writes a crc32c slot (header and data) of generation GEN at SLOT. */
void t_slot_put(uint8_t *slot, uint64_t gen, const void *data, size_t len);

/* "31 80" and a valid bs.image entry with a fixed identity. */
void t_image_begin(struct buf *img);
/* The closing end-of-contents "00 00". */
void t_image_end(struct buf *img);

/* Opens IMG/LEN over a new memory backend labelled "mem.img"; *BE (may be
 * NULL) receives the backend, which lives as long as the image. */
int t_open_mem(const void *img, size_t len, unsigned flags, bs_image **out,
	       struct bs_backend **be);
/* A malloc'ed copy of a memory backend's content. */
uint8_t *t_mem_copy(const struct bs_backend *be, size_t *len);

/* Reads entry TYPE/NAME and asserts its data is DATA/LEN. */
void t_assert_data(bs_image *img, const char *type, const char *name, const void *data,
		   size_t len);

/* A path under $TMPDIR unique to this process; free() it. */
char *t_tmppath(const char *what);

/* Deterministic pseudo-random octets (xorshift), seeded by SEED. */
void t_fill(void *p, size_t n, uint64_t seed);
uint64_t t_rand(uint64_t *state);

/* ---- one test suite over every storage backend ---------------------------
 * A store is a place images live: memory, a file, a regular file played as
 * a fixed-size block device, a loop device (root with losetup), or an NBD
 * export of nbdkit (memory or file plugin, on a UNIX socket in $TMPDIR,
 * started here and killed by t_store_free()). */
enum t_kind {
	T_MEM,
	T_FILE,
	T_FIXED,      /* blk:///file?size=4M&bs=4096: read-modify-write of 4 KiB blocks */
	T_LOOP,       /* blk:///dev/loopN?direct=1 (O_DIRECT) */
	T_NBD_MEM,    /* nbdkit memory plugin, with FUA and flush */
	T_NBD_FILE,   /* nbdkit file plugin */
	T_NBD_BLOCK,  /* nbdkit memory behind a 512-octet minimum block size */
	T_RBD,        /* a 4 MiB RBD image on the cluster of $BS_TEST_RBD_CONF */
	T_KINDS
};
struct t_store;
const char *t_kind_name(enum t_kind k);
/* A new store of kind K, or NULL (the reason printed) when this host cannot
 * provide it (no nbdkit, not root, losetup fails, no Ceph cluster), or when
 * $BS_TEST_STORES is set and does not name it (a comma-separated list of
 * mem, file, fixed, loop, nbd-mem, nbd-file, nbd-block, rbd).  RBD stores
 * need a cluster: tests/integration/test_rbd.sh starts one and runs the
 * suite with BS_TEST_RBD_CONF=its ceph.conf. */
struct t_store *t_store_new(enum t_kind k);
void t_store_free(struct t_store *s);
/* The name images of S are opened by (a path or URI; "mem.img"). */
const char *t_store_label(const struct t_store *s);
/* Blanks S, then formats and opens an empty image on it read-write. */
bs_image *t_store_fresh(struct t_store *s);
/* Closes *IM and opens the same storage again with FLAGS. */
void t_store_reopen(struct t_store *s, bs_image **im, unsigned flags);
/* The first octets of S's storage (up to the image's directory end) while
 * *IM is open; free() it. */
uint8_t *t_store_copy(struct t_store *s, bs_image *im, size_t *len);
/* Closes *IM, flips the bits XOR of the storage octet at OFF, reopens. */
void t_store_damage(struct t_store *s, bs_image **im, uint64_t off, uint8_t xor);

/* bs_image_check callback that counts problems. */
void t_count_cb(void *ctx, const bs_entry *e, uint64_t offset, int code, const char *msg);

#endif
