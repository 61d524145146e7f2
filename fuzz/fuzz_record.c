/* fuzz_record.c - libFuzzer target: the structured-field (record) decoder
 * of the device layer (bs_record_decode, include/nvram.h).
 *
 * Decodes the input with a fixed list of known field names; a record it
 * accepts is strict DER, so it must encode back to exactly the input (a
 * decoder that accepted two encodings of one record would be a bug), and
 * every getter must answer without reading out of bounds.  Unknown
 * optional fields kept through bs_record_keep_unknown() must survive an
 * encode/decode round trip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/nvram.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static const char *const known[] = {"version", "counter", "name", "blob", "enabled", "flag"};

static void touch(const bs_record *r)
{
	int64_t i;
	int b;
	char *s = NULL;
	const uint8_t *p;
	size_t l;
	for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
		bs_record_get_int(r, known[k], &i);
		bs_record_get_bool(r, known[k], &b);
		if (bs_record_get_str(r, known[k], &s) == 0)
			free(s);
		s = NULL;
		bs_record_get_bytes(r, known[k], &p, &l);
		bs_record_has(r, known[k]);
	}
	for (size_t k = 0; k < bs_record_count(r); k++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		unsigned fl;
		MUST(bs_record_at(r, k, &name, &v, &vl, &fl) == 0);
		MUST(name && strlen(name) > 0);
		if (vl)
			MUST(v[0] == v[0]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bs_record *r;
	size_t nk = size ? data[0] % (sizeof known / sizeof *known + 1) : 0;
	if (bs_record_decode(data, size, known, nk, &r))
		return 0;
	touch(r);
	uint8_t *enc;
	size_t el;
	MUST(bs_record_encode(r, &enc, &el) == 0);
	/* LEN 0 decodes as an empty record, which encodes as 30 06 31 00 31 00. */
	if (size)
		MUST(el == size && !memcmp(enc, data, size));
	/* A fresh record keeping the unknown optional fields round-trips them. */
	bs_record *d, *back;
	MUST(bs_record_new(&d) == 0);
	if (bs_record_keep_unknown(d, r) == 0) {
		uint8_t *e2;
		size_t l2;
		MUST(bs_record_encode(d, &e2, &l2) == 0);
		MUST(bs_record_decode(e2, l2, known, nk, &back) == 0);
		MUST(bs_record_count(back) == bs_record_count(d));
		bs_record_free(back);
		free(e2);
	}
	bs_record_free(d);
	free(enc);
	bs_record_free(r);
	return 0;
}
