/* fuzz_uefi.c - libFuzzer target: the UEFI varstore importer
 * (bs_uefi_parse, include/blobstore/uefi.h) and what follows an accepted
 * file: building a varstore from its variables over the file itself must
 * succeed and parse back to the same variables, and an import into an
 * image in memory followed by an export must give them again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/backend.h>
#include <blobstore/uefi.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static void same_vars(const struct bs_uefi_store *a, const struct bs_uefi_store *b)
{
	MUST(a->nvars == b->nvars);
	for (size_t i = 0; i < a->nvars; i++) {
		const struct bs_uefi_var *x = &a->vars[i], *y = &b->vars[i];
		MUST(!memcmp(x->guid, y->guid, 16) && !strcmp(x->name, y->name));
		MUST(x->attributes == y->attributes && x->data_len == y->data_len);
		MUST(!x->data_len || !memcmp(x->data, y->data, x->data_len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bs_uefi_store *st;
	if (bs_uefi_parse(data, size, &st))
		return 0;
	uint8_t *out;
	size_t ol;
	if (bs_uefi_build(st->vars, st->nvars, data, size, &out, &ol) == 0) {
		struct bs_uefi_store *again;
		MUST(ol == size);
		MUST(bs_uefi_parse(out, ol, &again) == 0);
		same_vars(st, again);
		bs_uefi_store_free(again);
		free(out);
	}
	struct bs_backend *be;
	bs_image *im;
	MUST(bs_backend_mem(NULL, 0, &be) == 0);
	MUST(bs_image_open_backend(be, "fuzz.img", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im) == 0);
	size_t n = 0;
	if (bs_uefi_import(im, data, size, &n) == 0) {
		MUST(n == st->nvars);
		if (bs_uefi_export(im, NULL, 0, &out, &ol) == 0) {
			struct bs_uefi_store *again;
			MUST(bs_uefi_parse(out, ol, &again) == 0);
			MUST(again->nvars == st->nvars);
			bs_uefi_store_free(again);
			free(out);
		}
	}
	bs_image_close(im);
	bs_uefi_store_free(st);
	return 0;
}
