/* fuzz_uefi.c - libFuzzer target: the UEFI varstore importer
 * (nvram_uefi_parse, include/nvram_uefi.h) and what follows an accepted
 * file: building a varstore from its variables over the file itself must
 * succeed and parse back to the same variables, and an import into an
 * image in memory followed by an export must give them again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobstore_backend.h"
#include "nvram_uefi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static void same_vars(const struct nvram_uefi_store *a, const struct nvram_uefi_store *b)
{
	MUST(a->nvars == b->nvars);
	for (size_t i = 0; i < a->nvars; i++) {
		const struct nvram_uefi_var *x = &a->vars[i], *y = &b->vars[i];
		MUST(!memcmp(x->guid, y->guid, 16) && !strcmp(x->name, y->name));
		MUST(x->attributes == y->attributes && x->data_len == y->data_len);
		MUST(!x->data_len || !memcmp(x->data, y->data, x->data_len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvram_uefi_store *st;
	if (nvram_uefi_parse(data, size, &st))
		return 0;
	uint8_t *out;
	size_t ol;
	if (nvram_uefi_build(st->vars, st->nvars, data, size, &out, &ol) == 0) {
		struct nvram_uefi_store *again;
		MUST(ol == size);
		MUST(nvram_uefi_parse(out, ol, &again) == 0);
		same_vars(st, again);
		nvram_uefi_store_free(again);
		free(out);
	}
	struct bs_backend *be;
	bs_image *im;
	MUST(bs_backend_mem(NULL, 0, &be) == 0);
	MUST(bs_open_backend(be, "fuzz.img", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im) == 0);
	size_t n = 0;
	if (nvram_uefi_import(im, data, size, &n) == 0) {
		MUST(n == st->nvars);
		if (nvram_uefi_export(im, NULL, 0, &out, &ol) == 0) {
			struct nvram_uefi_store *again;
			MUST(nvram_uefi_parse(out, ol, &again) == 0);
			MUST(again->nvars == st->nvars);
			nvram_uefi_store_free(again);
			free(out);
		}
	}
	bs_close(im);
	nvram_uefi_store_free(st);
	return 0;
}
