/* fuzz_entry.c - libFuzzer target: the entry and attribute decoder directly.
 *
 * Runs the two decoding steps open uses (bs__entry_layout on the entry's
 * head, bs__entry_parse on head and tail) over exactly-sized copies, so any
 * read past what the layout asked for is an ASan report; and the DER
 * primitives (der_check_elements, der_header, describe) over the raw input.
 * An entry the parser accepts must re-encode to the very same octets: the
 * decoder may not accept anything that is not the one DER encoding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static uint8_t *copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (c && n)
		memcpy(c, p, n);
	return c;
}

/* Re-encodes a parsed entry from its parts and compares. */
static void roundtrip(const uint8_t *data, const struct bs__layout *lay,
		      const struct bs__decoded *e)
{
	const struct bs__meta *m = e->m;
	size_t na = m->nmand + m->nopt;
	struct bs__enc_attr *a = calloc(na + 1, sizeof *a);
	MUST(a != NULL);
	for (size_t i = 0; i < na; i++) {
		a[i].tlv = m->attrs[i].tlv;
		a[i].len = m->attrs[i].tlv_len;
		MUST(m->attrs[i].mandatory == (i < m->nmand));
	}
	uint8_t *enc;
	size_t enc_len;
	uint64_t rel;
	int rc = bs__entry_encode(m->type, m->name, a, m->nmand, a + m->nmand, m->nopt,
				  lay->data_len, &enc, &enc_len, &rel);
	MUST(rc == BS_OK);
	MUST(enc_len == lay->size && rel == lay->data_rel);
	memcpy(enc + rel, data + rel, (size_t)lay->data_len);
	MUST(memcmp(enc, data, enc_len) == 0);
	free(enc);
	free(a);
}

static void entry(const uint8_t *data, size_t size)
{
	struct bs__layout lay;
	const char *why;
	/* Open's way: a short head first, longer when the layout asks. */
	size_t head_len = size < 64 ? size : 64;
	int rc;
	for (int tries = 0;; tries++) {
		uint8_t *head = copy(data, head_len);
		MUST(head != NULL);
		rc = bs__entry_layout(head, head_len, size, &lay, &why);
		free(head);
		if (rc != BS_ERANGE)
			break;
		MUST(lay.head_need > head_len && lay.head_need <= size);
		MUST(tries < 64);
		head_len = lay.head_need;
	}
	if (rc) {
		MUST(why != NULL);
		return;
	}
	MUST(lay.size <= size);
	if (why)
		return; /* extent known, inside unusable: open refuses it */
	MUST(lay.head_need <= lay.data_rel && lay.data_rel <= lay.size);
	MUST(lay.data_rel + lay.data_len + lay.tail_len == lay.size);
	/* The head through the data header, and the tail, each in its own
	 * allocation of exactly that size. */
	size_t tail_len = lay.tail_len > 6 + BS_MAX_NAME_LEN ? 6 + BS_MAX_NAME_LEN : lay.tail_len;
	lay.tail_len = tail_len;
	uint8_t *head = copy(data, lay.head_need);
	uint8_t *tail = copy(data + lay.data_rel + lay.data_len, tail_len);
	MUST(head && tail);
	struct bs__decoded e;
	memset(&e, 0, sizeof e);
	uint64_t bad = 0;
	rc = bs__entry_parse(head, tail, &lay, &e, &why, &bad, NULL);
	MUST(rc == BS_OK || rc == BS_ENOMEM);
	if (e.status) {
		MUST(why != NULL && e.status_msg != NULL);
		MUST(bad <= lay.size);
	} else if (rc == BS_OK) {
		MUST(e.m && e.m->type);
		MUST(e.m->nmand <= BS_MAX_ATTRS && e.m->nopt <= BS_MAX_ATTRS);
		if (e.slotted)
			MUST(lay.data_len / 2 >= bs__slot_hdr_len(e.alg));
		roundtrip(data, &lay, &e);
	}
	bs__meta_free(e.m);
	free(e.status_msg);
	free(head);
	free(tail);
}

static void primitives(const uint8_t *data, size_t size)
{
	uint8_t *p = copy(data, size);
	MUST(p != NULL);
	size_t count = 0;
	const char *why = bs__der_check_elements(p, size, &count);
	MUST(why || count <= size / 2);
	(void)bs__der_check_element(p, size);
	struct bs__tlv t;
	if (!bs__der_header(p, size, &t))
		MUST(t.hdr + t.len <= size && t.hdr <= 6);
	if (!bs__der_header_prefix(p, size, &t))
		MUST(t.hdr <= size);
	char desc[96];
	bs_value_describe(p, size, desc, sizeof desc);
	MUST(memchr(desc, 0, sizeof desc) != NULL);
	int64_t v;
	if (size <= 9 && bs__der_int_value(p, size, &v)) {
		uint8_t enc[BS__DER_MAX_INT];
		size_t n = bs__der_encode_int(v, enc, sizeof enc);
		MUST(n == size + 2 && !memcmp(enc + 2, p, size));
	}
	(void)bs_utf8_valid(p, size);
	(void)bs__ia5_valid(p, size);
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	entry(data, size);
	primitives(data, size);
	return 0;
}
