/* api.h - the api layer: the public calls of blobstore.h and
 * blobstore_crypt.h over the directory (dir.h).
 *
 *   image.c   opening, closing, statistics, iteration, reserve, compact
 *   entry.c   finding, creating, reading, writing and deleting entries
 *   attr.c    attribute reads and changes
 *   key.c     user keys and the image's wrapped data key (the bs.key entry)
 *   check.c   bs_check()
 *   dump.c    bs_dump()
 *
 * What these files share is below. */
#ifndef BS_API_H
#define BS_API_H

#include "blobstore.h"
#include "blobstore_crypt.h"
#include "dir/dir.h"

/* "entry refused: WHY" for a refused E. */
int bs__refused(bs_image *img, const bs_entry *e);

/* bs_entry_create2() and a copy-on-write rewrite that allow the library's
 * own "bs." types and attribute names (key.c). */
int bs__entry_create_lib(bs_image *img, const char *type, const char *name,
			 const struct bs_entry_opts *opts, const void *data, size_t len,
			 bs_entry **out);
int bs__entry_rewrite_lib(bs_image *img, bs_entry *e, const struct bs_attr *attrs,
			  size_t nattrs, const void *data, size_t len);
/* bs_entry_write(), but an entry that has to grow gets at least CAPACITY
 * in the same crash-safe rewrite (the device layer's growth policy). */
int bs__entry_write_cap(bs_image *img, bs_entry *e, const void *data, size_t len,
			size_t capacity);
/* Test hook (tests/unit/test_crypt.c): a given data key. */
int bs__crypt_test_set_dek(bs_image *img, const uint8_t *dek);

#endif
