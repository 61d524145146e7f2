/* base.h - the base layer: what every layer of the library may use, and
 * which knows nothing of images.
 *
 *   errors   the thread's last error (code, errno of the failing system
 *            call, message naming the image, entry and offset)  error.c
 *   text     UTF-8, IA5 and identifier checks, hexadecimal digits  text.c
 *   bytes    big- and little-endian loads and stores: bs_put_be32() and
 *            the others of blobstore/sys/util.h, shared with the code above
 *   memory   image-lifetime pools and huge-page tables              pool.c
 */
#ifndef BS_BASE_H
#define BS_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>
#include <blobstore/sys/util.h>

#define BS_UNUSED(x) ((void)(x))

/* ---- errors (error.c) ------------------------------------------------------ */

/* What a message is about: the image's label, the entry's type and name.
 * Any of them may be NULL. */
struct bs__where {
	const char *label;
	const char *type;
	const char *name;
};

/* OFFSET is printed unless it is BS_NO_OFFSET (blobstore/sys/util.h). */

/* Sets the thread's error ("LABEL: entry 'TYPE'/'NAME' at offset N: MSG",
 * with the parts W gives) and returns CODE.  W may be NULL.  The errno of
 * the error is cleared: only bs__error_errno() records one. */
int bs__error(const struct bs__where *w, uint64_t offset, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int bs__verror(const struct bs__where *w, uint64_t offset, int code, int sys_errno,
	       const char *fmt, va_list ap);
/* A failed system call: "LABEL: WHAT: strerror(ERR)", the code mapped from
 * ERR (ENOSPC -> BS_ENOSPC, ...), ERR kept as the error's errno. */
int bs__error_errno(const char *label, int err, uint64_t offset, const char *what);
/* Re-states the current error for W at OFFSET as "WHAT: <current message>"
 * (the current message loses a leading "LABEL: " that W names already),
 * keeping its errno; returns CODE. */
int bs__error_wrap(const struct bs__where *w, uint64_t offset, int code, const char *what);

/* ---- text (text.c) --------------------------------------------------------- */

/* bs_utf8_valid() is public (blobstore/sys/util.h). */
bool bs__ia5_valid(const uint8_t *p, size_t len);
/* An identifier of the format (entry types, attribute names): 1 to MAX
 * octets of printable ASCII, space allowed only when SPACE_OK. */
bool bs__ident_valid(const uint8_t *p, size_t len, size_t max, bool space_ok);
/* The rule of attribute and record-field names: bs__ident_valid() of a C
 * string, at most BS_MAX_ATTR_NAME_LEN, no spaces; false for NULL. */
bool bs__name_valid(const char *name);
/* bs_hex_digit() is public (blobstore/sys/util.h). */

/* ---- memory (pool.c) ------------------------------------------------------- */

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

#endif
