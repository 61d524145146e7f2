/* fuzz_record.c - libFuzzer target: the structured-field (record) decoder
 * of the device layer (nvram_rec_decode, include/nvram.h).
 *
 * Decodes the input with a fixed list of known field names; a record it
 * accepts is strict DER, so it must encode back to exactly the input (a
 * decoder that accepted two encodings of one record would be a bug), and
 * every getter must answer without reading out of bounds.  Unknown
 * optional fields kept through nvram_rec_keep_unknown() must survive an
 * encode/decode round trip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static const char *const known[] = {"version", "counter", "name", "blob", "enabled", "flag"};

static void touch(const nvram_rec *r)
{
	int64_t i;
	int b;
	char *s = NULL;
	const uint8_t *p;
	size_t l;
	for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
		nvram_rec_get_int(r, known[k], 0, &i);
		nvram_rec_get_bool(r, known[k], 0, &b);
		if (nvram_rec_get_str(r, known[k], NULL, &s) == 0)
			free(s);
		s = NULL;
		nvram_rec_get_bytes(r, known[k], NULL, 0, &p, &l);
		nvram_rec_has(r, known[k]);
	}
	for (size_t k = 0; k < nvram_rec_count(r); k++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		unsigned fl;
		int kn;
		MUST(nvram_rec_field_at(r, k, &name, &v, &vl, &fl, &kn) == 0);
		MUST(name && strlen(name) > 0);
		if (vl)
			MUST(v[0] == v[0]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nvram_rec *r;
	size_t nk = size ? data[0] % (sizeof known / sizeof *known + 1) : 0;
	if (nvram_rec_decode(data, size, known, nk, &r))
		return 0;
	touch(r);
	uint8_t *enc;
	size_t el;
	MUST(nvram_rec_encode(r, &enc, &el) == 0);
	/* LEN 0 decodes as an empty record, which encodes as 30 06 31 00 31 00. */
	if (size)
		MUST(el == size && !memcmp(enc, data, size));
	/* A fresh record keeping the unknown optional fields round-trips them. */
	nvram_rec *d, *back;
	MUST(nvram_rec_new(&d) == 0);
	if (nvram_rec_keep_unknown(d, r) == 0) {
		uint8_t *e2;
		size_t l2;
		MUST(nvram_rec_encode(d, &e2, &l2) == 0);
		MUST(nvram_rec_decode(e2, l2, known, nk, &back) == 0);
		MUST(nvram_rec_count(back) == nvram_rec_count(d));
		nvram_rec_free(back);
		free(e2);
	}
	nvram_rec_free(d);
	free(enc);
	nvram_rec_free(r);
	return 0;
}
