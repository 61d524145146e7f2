/* fuzz_salvage.c - libFuzzer target: arbitrary octets salvaged.
 *
 * bs_image_salvage() over the memory backend into an empty one.  Nothing
 * may crash, leak or trip a sanitizer; the damaged storage must be left as
 * it was; every report item must be consistent (a recovered entry has a
 * type and a place in the new image, a loss has a reason); and the new
 * image must always open and pass check (but for entries refused for an
 * unknown mandatory attribute, which are copied as they are), holding one
 * entry per recovered item. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/backend.h>
#include <blobstore/blobstore.h>
#include <blobstore/crypt.h>
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                           \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "invariant failed: %s (line %d): %s\n", #cond, __LINE__, \
				last_error());                                                \
			abort();                                                             \
		}                                                                            \
	} while (0)

struct tally {
	size_t recovered, lost;
};

static void on_item(void *ctx, const struct bs_salvage_item *it)
{
	struct tally *t = ctx;
	MUST(it->version == BS_SALVAGE_ITEM_VERSION);
	if (it->recovered) {
		MUST(it->type != NULL && it->code == BS_OK && it->new_offset != UINT64_MAX);
		t->recovered++;
	} else {
		MUST(it->code != BS_OK && it->note != NULL && it->new_offset == UINT64_MAX);
		MUST(it->offset <= UINT64_MAX - it->length);
		t->lost++;
	}
}

/* Counts check's errors but the image-level one of a lost key entry. */
static void count_entry_errors(void *ctx, const bs_entry *e, uint64_t offset, int code,
			       const char *msg)
{
	(void)offset;
	(void)msg;
	if (code && code != BS_EUNSUPPORTED && (e || code != BS_ECORRUPT))
		++*(int *)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bs_backend *src, *dst;
	if (bs_backend_mem(data, size, &src))
		return 0;
	if (bs_backend_mem(NULL, 0, &dst)) {
		bs_backend_free(src);
		return 0;
	}
	struct tally t = {0};
	struct bs_salvage_opts o = BS_SALVAGE_OPTS_INIT;
	o.flags = BS_SALVAGE_NOSYNC;
	o.cb = on_item;
	o.ctx = &t;
	int rc = bs_image_salvage(src, "fuzz.img", dst, "new.img", &o);
	size_t sl, nl;
	const uint8_t *sd = bs_backend_mem_data(src, &sl);
	MUST(sl == size && (!size || !memcmp(sd, data, size)));
	MUST(rc == BS_OK || rc == BS_ENOMEM);
	if (rc == BS_OK) {
		const uint8_t *nd = bs_backend_mem_data(dst, &nl);
		struct bs_backend *copy;
		bs_image *img;
		MUST(!bs_backend_mem(nd, nl, &copy));
		MUST(bs_image_open_backend(copy, "new.img", BS_OPEN_RDONLY, &img) == BS_OK);
		int others = 0;
		int crc = bs_image_check(img, 0, count_entry_errors, &others);
		/* Or encrypted entries came back and their key entry did not:
		 * check says so, as an image-level problem. */
		MUST(crc == BS_OK || crc == BS_EUNSUPPORTED ||
		     (crc == BS_ECORRUPT && !others && !bs_image_is_encrypted(img)));
		/* The image entry is one of the recovered items (kept or rebuilt). */
		MUST(bs_image_count(img, BS_ITER_LIBRARY) == t.recovered);
		bs_image_close(img);
	}
	bs_backend_free(src);
	bs_backend_free(dst);
	return 0;
}
