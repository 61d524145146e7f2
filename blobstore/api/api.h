/* api.h - the api layer: the public calls of blobstore/blobstore.h and
 * blobstore/crypt.h over the directory (dir.h).
 *
 *   image.c   opening, closing, the open's notes, statistics, iteration,
 *             reserve, compact
 *   entry.c   finding, creating, reading, writing and deleting entries
 *   attr.c    attribute reads and changes
 *   key.c     user keys and the image's wrapped data key (the bs.key entry)
 *   check.c   bs_image_check()
 *   dump.c    bs_image_dump()
 *   encrypt.c bs_entry_encrypt(): a plaintext entry made encrypted
 *   salvage.c bs_image_salvage(): the intact entries of a damaged image
 *
 * What these files share is below. */
#ifndef BS_API_H
#define BS_API_H

#include <blobstore/backend.h>
#include <blobstore/blobstore.h>
#include <blobstore/crypt.h>
#include <blobstore/sys/backend.h>
#include <blobstore/sys/util.h>

#include "dir/dir.h"

/* "entry refused: WHY" for a refused E. */
int bs__refused(bs_image *img, const bs_entry *e);

/* bs_entry_create() and a copy-on-write rewrite that allow the library's
 * own "bs." types and attribute names (key.c). */
int bs__entry_create_lib(bs_image *img, const char *type, const char *name,
			 const struct bs_entry_opts *opts, const void *data, size_t len,
			 bs_entry **out);
int bs__entry_rewrite_lib(bs_image *img, bs_entry *e, const struct bs_attr *attrs,
			  size_t nattrs, const void *data, size_t len);
/* Whether setting attribute NAME of E to VALUE/LEN in the set FLAGS
 * chooses would change nothing. */
bool bs__attr_unchanged(const bs_entry *e, const char *name, unsigned flags,
			const uint8_t *value, size_t len);
/* Test hook (tests/unit/test_crypt.c): a given data key. */
int bs__crypt_test_set_dek(bs_image *img, const uint8_t *dek);

#endif
