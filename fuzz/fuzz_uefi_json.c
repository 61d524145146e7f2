/* fuzz_uefi_json.c - libFuzzer target: virt-firmware's JSON
 * (bs_uefi_json_parse) and what follows an accepted document: formatting
 * its variables (bs_uefi_json_format) and parsing that again gives the
 * same variables, and formatting those gives the same text; an import into
 * an image in memory (bs_uefi_import_json) either refuses or holds them. */
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

static void same(const struct bs_uefi_store *a, const struct bs_uefi_store *b)
{
	MUST(a->nvars == b->nvars);
	for (size_t i = 0; i < a->nvars; i++) {
		const struct bs_uefi_var *x = &a->vars[i], *y = &b->vars[i];
		MUST(!memcmp(x->guid, y->guid, 16) && !strcmp(x->name, y->name));
		MUST(x->attributes == y->attributes && x->data_len == y->data_len);
		MUST(!x->data_len || !memcmp(x->data, y->data, x->data_len));
		MUST(!memcmp(x->timestamp, y->timestamp, 16));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bs_uefi_store *st, *again;
	char *text, *text2;
	size_t tl, tl2;
	if (bs_uefi_json_parse((const char *)data, size, &st))
		return 0;
	MUST(bs_uefi_json_format(st->vars, st->nvars, &text, &tl) == 0);
	MUST(strlen(text) == tl);
	MUST(bs_uefi_json_parse(text, tl, &again) == 0);
	same(st, again);
	MUST(bs_uefi_json_format(again->vars, again->nvars, &text2, &tl2) == 0);
	MUST(tl == tl2 && !memcmp(text, text2, tl));
	struct bs_backend *be;
	bs_image *im;
	MUST(bs_backend_mem(NULL, 0, &be) == 0);
	MUST(bs_image_open_backend(be, "fuzz.img", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im) == 0);
	size_t n;
	if (bs_uefi_import_json(im, (const char *)data, size, NULL, 0, &n) == 0) {
		struct bs_uefi_store *loaded;
		MUST(n == st->nvars);
		MUST(bs_uefi_load(im, &loaded) == 0);
		same(st, loaded);
		bs_uefi_store_free(loaded);
	}
	bs_image_close(im);
	free(text);
	free(text2);
	bs_uefi_store_free(again);
	bs_uefi_store_free(st);
	return 0;
}
