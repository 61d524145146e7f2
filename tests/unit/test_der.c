/* test_der.c - the strict DER primitives: value encoders (public API), the
 * header reader, the element checker and the SET OF order (internal). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "api/api.h"

#define HDR_OK(...)                                                                   \
	do {                                                                          \
		const uint8_t in_[] = {__VA_ARGS__};                                  \
		struct bs__tlv t_;                                                    \
		const char *w_ = bs__der_header(in_, sizeof in_, &t_);                    \
		if (w_)                                                               \
			fail_msg("header rejected: %s", w_);                          \
	} while (0)

static const char *hdr(const uint8_t *p, size_t n, struct bs__tlv *t)
{
	return bs__der_header(p, n, t);
}

static const char *check(const uint8_t *p, size_t n)
{
	return bs__der_check_element(p, n);
}

#define REJECT(fn, ...)                                                               \
	do {                                                                          \
		const uint8_t in_[] = {__VA_ARGS__};                                  \
		struct bs__tlv t_;                                                    \
		(void)t_;                                                             \
		if (!fn)                                                              \
			fail_msg("accepted: " #__VA_ARGS__);                          \
	} while (0)

/* ---- encoders ---------------------------------------------------------- */

static void int_case(int64_t v, const uint8_t *want, size_t wlen)
{
	uint8_t b[BS_VALUE_MAX_INT];
	size_t n = t_der_int(v, b, sizeof b);
	assert_int_equal(n, wlen);
	assert_memory_equal(b, want, wlen);
	assert_null(check(b, n));
	int64_t back;
	assert_true(bs__der_int_value(b + 2, n - 2, &back));
	assert_true(back == v);
	/* Too small a buffer: nothing, not a truncated encoding. */
	assert_int_equal(t_der_int(v, b, n - 1), 0);
	char d[64];
	bs_value_describe(b, n, d, sizeof d);
	char want_d[64];
	snprintf(want_d, sizeof want_d, "INTEGER %lld", (long long)v);
	assert_string_equal(d, want_d);
}

static void test_int_round_trip(void **state)
{
	(void)state;
	int_case(0, (const uint8_t[]){2, 1, 0}, 3);
	int_case(1, (const uint8_t[]){2, 1, 1}, 3);
	int_case(-1, (const uint8_t[]){2, 1, 0xff}, 3);
	int_case(127, (const uint8_t[]){2, 1, 0x7f}, 3);
	int_case(128, (const uint8_t[]){2, 2, 0, 0x80}, 4);
	int_case(255, (const uint8_t[]){2, 2, 0, 0xff}, 4);
	int_case(256, (const uint8_t[]){2, 2, 1, 0}, 4);
	int_case(-128, (const uint8_t[]){2, 1, 0x80}, 3);
	int_case(-129, (const uint8_t[]){2, 2, 0xff, 0x7f}, 4);
	int_case(-256, (const uint8_t[]){2, 2, 0xff, 0x00}, 4);
	int_case(INT64_MAX, (const uint8_t[]){2, 8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		 10);
	int_case(INT64_MIN, (const uint8_t[]){2, 8, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10);
	int_case((int64_t)1 << 31, (const uint8_t[]){2, 5, 0, 0x80, 0, 0, 0}, 7);
	/* Every value round-trips minimally across the whole range. */
	uint64_t s = 7;
	for (int i = 0; i < 20000; i++) {
		int64_t v = (int64_t)t_rand(&s) >> (t_rand(&s) % 64);
		uint8_t b[BS_VALUE_MAX_INT];
		size_t n = t_der_int(v, b, sizeof b);
		assert_true(n >= 3 && n <= 10);
		assert_null(check(b, n));
		int64_t back;
		assert_true(bs__der_int_value(b + 2, n - 2, &back));
		assert_true(back == v);
	}
}

static void test_int_value_rejects(void **state)
{
	(void)state;
	int64_t v;
	assert_false(bs__der_int_value((const uint8_t[]){0}, 0, &v));
	assert_false(bs__der_int_value((const uint8_t[]){0, 1}, 2, &v));
	assert_false(bs__der_int_value((const uint8_t[]){0xff, 0x80}, 2, &v));
	/* Nine octets do not fit an int64, even when minimal. */
	assert_false(bs__der_int_value((const uint8_t[]){0, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, &v));
	assert_true(bs__der_int_value((const uint8_t[]){0, 0x80}, 2, &v));
	assert_true(v == 128);
}

static void test_bool_round_trip(void **state)
{
	(void)state;
	uint8_t b[3];
	assert_int_equal(t_der_bool(1, b, sizeof b), 3);
	assert_memory_equal(b, ((const uint8_t[]){1, 1, 0xff}), 3);
	assert_null(check(b, 3));
	assert_int_equal(t_der_bool(42, b, sizeof b), 3);
	assert_int_equal(b[2], 0xff);
	assert_int_equal(t_der_bool(0, b, sizeof b), 3);
	assert_memory_equal(b, ((const uint8_t[]){1, 1, 0}), 3);
	assert_null(check(b, 3));
	assert_int_equal(t_der_bool(1, b, 2), 0);
	char d[32];
	t_der_bool(1, b, sizeof b);
	bs_value_describe(b, 3, d, sizeof d);
	assert_string_equal(d, "BOOLEAN TRUE");
}

static void test_utf8_round_trip(void **state)
{
	(void)state;
	uint8_t b[64];
	size_t n = t_der_utf8("", b, sizeof b);
	assert_int_equal(n, 2);
	assert_memory_equal(b, ((const uint8_t[]){0x0c, 0}), 2);
	n = t_der_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", b, sizeof b);
	assert_int_equal(n, 2 + 15);
	assert_int_equal(b[0], 0x0c);
	assert_int_equal(b[1], 15);
	assert_memory_equal(b + 2, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15);
	assert_null(check(b, n));
	/* Invalid UTF-8 is never encoded. */
	assert_int_equal(t_der_utf8("\xff", b, sizeof b), 0);
	assert_int_equal(t_der_utf8("\xc0\x80", b, sizeof b), 0);
	assert_int_equal(t_der_utf8("\xed\xa0\x80", b, sizeof b), 0);
	assert_int_equal(t_der_utf8("abc", b, 4), 0);
	/* Long strings take the long length form. */
	char s[300];
	memset(s, 'x', sizeof s - 1);
	s[sizeof s - 1] = 0;
	uint8_t big[400];
	n = t_der_utf8(s, big, sizeof big);
	assert_int_equal(n, 4 + 299);
	assert_memory_equal(big, ((const uint8_t[]){0x0c, 0x82, 0x01, 0x2b}), 4);
	assert_null(check(big, n));
}

static void test_octets_round_trip(void **state)
{
	(void)state;
	uint8_t b[8];
	assert_int_equal(t_der_octets(NULL, 0, b, sizeof b), 2);
	assert_memory_equal(b, ((const uint8_t[]){4, 0}), 2);
	assert_int_equal(t_der_octets("\x00\xff", 2, b, sizeof b), 4);
	assert_memory_equal(b, ((const uint8_t[]){4, 2, 0, 0xff}), 4);
	assert_int_equal(t_der_octets("abcdefg", 7, b, sizeof b), 0);
	size_t sizes[] = {127, 128, 255, 256, 65535, 65536, 70000};
	size_t hl[] = {2, 3, 3, 4, 4, 5, 5};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		uint8_t *d = malloc(sizes[i]), *o = malloc(sizes[i] + 8);
		assert_non_null(d);
		assert_non_null(o);
		t_fill(d, sizes[i], i);
		size_t n = t_der_octets(d, sizes[i], o, sizes[i] + 8);
		assert_int_equal(n, hl[i] + sizes[i]);
		struct bs__tlv t;
		assert_null(hdr(o, n, &t));
		assert_int_equal(t.tag, 4);
		assert_int_equal(t.hdr, hl[i]);
		assert_int_equal(t.len, sizes[i]);
		assert_memory_equal(o + t.hdr, d, sizes[i]);
		assert_null(check(o, n));
		assert_int_equal(t_der_octets(d, sizes[i], o, n - 1), 0);
		free(d);
		free(o);
	}
}

static void test_describe(void **state)
{
	(void)state;
	char d[128];
	const uint8_t v[] = {0x0c, 2, 'h', 'i', 0x04, 2, 0x0a, 0x0b, 0x05, 0};
	bs_value_describe(v, sizeof v, d, sizeof d);
	assert_string_equal(d, "UTF8String \"hi\", OCTET STRING[2] 0a0b, NULL");
	bs_value_describe((const uint8_t[]){0x04, 5, 1}, 3, d, sizeof d);
	assert_non_null(strstr(d, "malformed"));
	/* Tiny buffers stay terminated. */
	bs_value_describe(v, sizeof v, d, 5);
	assert_true(strlen(d) < 5);
	char one[1] = {'x'};
	bs_value_describe(v, sizeof v, one, 1);
	assert_int_equal(one[0], 0);
}

/* ---- headers ----------------------------------------------------------- */

static void test_header_minimal_lengths(void **state)
{
	(void)state;
	HDR_OK(0x04, 0x00);
	HDR_OK(0x04, 0x01, 0xaa);
	struct bs__tlv t;
	uint8_t b[300] = {0x04, 0x81, 0x80};
	assert_null(hdr(b, 3 + 0x80, &t));
	assert_int_equal(t.hdr, 3);
	assert_int_equal(t.len, 0x80);
	/* Long form for a short length. */
	REJECT(hdr(in_, sizeof in_, &t_), 0x04, 0x81, 0x05, 1, 2, 3, 4, 5);
	REJECT(hdr(in_, sizeof in_, &t_), 0x04, 0x81, 0x7f);
	/* Leading zero octet in the length. */
	REJECT(hdr(in_, sizeof in_, &t_), 0x04, 0x82, 0x00, 0x80);
	REJECT(hdr(in_, sizeof in_, &t_), 0x04, 0x83, 0x00, 0x01, 0x00);
	memcpy(b, (const uint8_t[]){0x04, 0x82, 0x00, 0x80}, 4);
	const char *w = hdr(b, 4 + 0x80, &t);
	assert_non_null(w);
	assert_non_null(strstr(w, "non-minimal"));
	/* The prefix reader applies the same rules. */
	assert_non_null(bs__der_header_prefix(b, 4, &t));
}

static void test_header_indefinite_refused(void **state)
{
	(void)state;
	struct bs__tlv t;
	const uint8_t in[] = {0x30, 0x80, 0x04, 0x00, 0x00, 0x00};
	const char *w = hdr(in, sizeof in, &t);
	assert_non_null(w);
	assert_non_null(strstr(w, "indefinite"));
	assert_non_null(bs__der_header_prefix(in, sizeof in, &t));
	assert_non_null(check(in, sizeof in));
}

static void test_header_huge_lengths(void **state)
{
	(void)state;
	struct bs__tlv t;
	/* Five length octets: 2^32 or more, refused even as a prefix. */
	const uint8_t l5[] = {0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00};
	assert_non_null(bs__der_header_prefix(l5, sizeof l5, &t));
	const uint8_t l8[] = {0x04, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	assert_non_null(bs__der_header_prefix(l8, sizeof l8, &t));
	const uint8_t l127[] = {0x04, 0xff, 1, 2};
	assert_non_null(bs__der_header_prefix(l127, sizeof l127, &t));
	/* Four octets are readable as a prefix but run past any real parent. */
	const uint8_t l4[] = {0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0};
	assert_null(bs__der_header_prefix(l4, sizeof l4, &t));
	assert_int_equal(t.len, 0xffffffffu);
	assert_int_equal(t.hdr, 6);
	assert_non_null(hdr(l4, sizeof l4, &t));
	const uint8_t l31[] = {0x04, 0x84, 0x7f, 0xff, 0xff, 0xff};
	assert_non_null(hdr(l31, sizeof l31, &t));
	/* Truncated length octets. */
	const uint8_t tr[] = {0x04, 0x83, 0x01, 0x00};
	assert_non_null(bs__der_header_prefix(tr, sizeof tr, &t));
	assert_non_null(bs__der_header_prefix(tr, 1, &t));
	assert_non_null(bs__der_header_prefix(tr, 0, &t));
}

static void test_header_past_parent(void **state)
{
	(void)state;
	struct bs__tlv t;
	const uint8_t in[] = {0x04, 0x05, 1, 2, 3, 4};
	assert_non_null(hdr(in, sizeof in, &t));
	assert_null(bs__der_header_prefix(in, sizeof in, &t));
	/* Inside a SEQUENCE: the child claims more than the parent holds. */
	const uint8_t seq[] = {0x30, 0x04, 0x04, 0x03, 1, 2, 0x05, 0x00};
	assert_non_null(check(seq, sizeof seq));
	const uint8_t seq2[] = {0x30, 0x03, 0x04, 0x03, 1, 2, 3};
	assert_non_null(check(seq2, sizeof seq2));
}

static void test_header_high_tags(void **state)
{
	(void)state;
	struct bs__tlv t;
	/* [31] in high form is the smallest legal high tag number. */
	const uint8_t t31[] = {0x9f, 0x1f, 0x00};
	assert_null(hdr(t31, sizeof t31, &t));
	assert_int_equal(t.tag, 0x9f1f);
	assert_int_equal(t.hdr, 3);
	assert_false(t.constructed);
	const uint8_t t128[] = {0xbf, 0x81, 0x00, 0x02, 0x05, 0x00};
	assert_null(hdr(t128, sizeof t128, &t));
	assert_int_equal(t.tag, 0xbf8100);
	assert_true(t.constructed);
	assert_int_equal(t.len, 2);
	assert_null(check(t128, sizeof t128));
	/* High form for a number below 31. */
	const uint8_t t30[] = {0x9f, 0x1e, 0x00};
	assert_non_null(hdr(t30, sizeof t30, &t));
	/* Leading 0x80 in the tag number. */
	const uint8_t lead[] = {0x9f, 0x80, 0x20, 0x00};
	assert_non_null(hdr(lead, sizeof lead, &t));
	/* Tag number of four base-128 octets: too large. */
	const uint8_t big[] = {0x9f, 0x81, 0x80, 0x80, 0x01, 0x00};
	assert_non_null(hdr(big, sizeof big, &t));
	/* Three octets is the maximum. */
	const uint8_t max3[] = {0x9f, 0xff, 0xff, 0x7f, 0x00};
	assert_null(hdr(max3, sizeof max3, &t));
	/* Truncated tag. */
	const uint8_t tr[] = {0x9f, 0x81};
	assert_non_null(bs__der_header_prefix(tr, sizeof tr, &t));
	/* Context-specific primitive and constructed low tags. */
	const uint8_t ctx[] = {0xa0, 0x03, 0x02, 0x01, 0x05};
	assert_null(check(ctx, sizeof ctx));
}

/* ---- element checks ---------------------------------------------------- */

static void test_check_integers(void **state)
{
	(void)state;
	REJECT(check(in_, sizeof in_), 0x02, 0x02, 0x00, 0x01);
	REJECT(check(in_, sizeof in_), 0x02, 0x02, 0xff, 0x80);
	REJECT(check(in_, sizeof in_), 0x02, 0x03, 0x00, 0x00, 0x80);
	REJECT(check(in_, sizeof in_), 0x02, 0x00);
	REJECT(check(in_, sizeof in_), 0x0a, 0x02, 0x00, 0x05); /* ENUMERATED */
	const uint8_t ok1[] = {0x02, 0x02, 0x00, 0x80};
	assert_null(check(ok1, sizeof ok1));
	const uint8_t ok2[] = {0x02, 0x02, 0xff, 0x7f};
	assert_null(check(ok2, sizeof ok2));
	/* INTEGERs longer than 8 octets are valid DER (only not int64). */
	const uint8_t ok3[] = {0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};
	assert_null(check(ok3, sizeof ok3));
	const char *w = check((const uint8_t[]){0x02, 0x02, 0x00, 0x01}, 4);
	assert_non_null(strstr(w, "INTEGER"));
}

static void test_check_booleans(void **state)
{
	(void)state;
	REJECT(check(in_, sizeof in_), 0x01, 0x01, 0x01);
	REJECT(check(in_, sizeof in_), 0x01, 0x01, 0x7f);
	REJECT(check(in_, sizeof in_), 0x01, 0x02, 0xff, 0xff);
	REJECT(check(in_, sizeof in_), 0x01, 0x00);
	assert_null(check((const uint8_t[]){0x01, 0x01, 0xff}, 3));
	assert_null(check((const uint8_t[]){0x01, 0x01, 0x00}, 3));
}

static void test_check_constructed_primitives(void **state)
{
	(void)state;
	/* Constructed OCTET STRING (CER/BER segments) is not DER. */
	REJECT(check(in_, sizeof in_), 0x24, 0x03, 0x04, 0x01, 0x00);
	REJECT(check(in_, sizeof in_), 0x23, 0x03, 0x03, 0x01, 0x00); /* BIT STRING */
	REJECT(check(in_, sizeof in_), 0x2c, 0x03, 0x0c, 0x01, 0x61); /* UTF8String */
	REJECT(check(in_, sizeof in_), 0x36, 0x00);                   /* IA5String */
	REJECT(check(in_, sizeof in_), 0x22, 0x03, 0x02, 0x01, 0x00); /* INTEGER */
	/* Primitive SEQUENCE or SET. */
	REJECT(check(in_, sizeof in_), 0x10, 0x00);
	REJECT(check(in_, sizeof in_), 0x11, 0x00);
	/* End-of-contents inside an element. */
	REJECT(check(in_, sizeof in_), 0x30, 0x02, 0x00, 0x00);
	/* Other primitive rules. */
	REJECT(check(in_, sizeof in_), 0x05, 0x01, 0x00);          /* NULL */
	REJECT(check(in_, sizeof in_), 0x03, 0x02, 0x01, 0x01);    /* unused bit set */
	REJECT(check(in_, sizeof in_), 0x03, 0x01, 0x01);          /* unused bits, no data */
	REJECT(check(in_, sizeof in_), 0x06, 0x02, 0x2a, 0x86);    /* truncated OID */
	REJECT(check(in_, sizeof in_), 0x06, 0x03, 0x2a, 0x80, 0x01); /* non-minimal arc */
	REJECT(check(in_, sizeof in_), 0x16, 0x01, 0x80);          /* IA5 high bit */
	REJECT(check(in_, sizeof in_), 0x13, 0x01, '*');           /* PrintableString */
	assert_null(check((const uint8_t[]){0x03, 0x02, 0x01, 0x02}, 4));
	assert_null(check((const uint8_t[]){0x06, 0x03, 0x2a, 0x86, 0x48}, 5));
	assert_null(check((const uint8_t[]){0x13, 0x02, 'A', '1'}, 4));
	/* Exactly one element. */
	assert_non_null(check((const uint8_t[]){0x05, 0x00, 0x05, 0x00}, 4));
	assert_non_null(check((const uint8_t[]){0}, 0));
	size_t cnt = 0;
	assert_null(bs__der_check_elements((const uint8_t[]){0x05, 0x00, 0x05, 0x00}, 4, &cnt));
	assert_int_equal(cnt, 2);
}

static void nest(struct buf *b, unsigned depth)
{
	/* DEPTH SEQUENCEs around a NULL. */
	struct buf in = {0};
	buf_bytes(&in, 2, 0x05, 0x00);
	for (unsigned i = 0; i < depth; i++) {
		struct buf out = {0};
		buf_tlv(&out, 0x30, in.p, in.len);
		buf_free(&in);
		in = out;
	}
	buf_put(b, in.p, in.len);
	buf_free(&in);
}

static void test_check_depth(void **state)
{
	(void)state;
	struct buf b = {0};
	nest(&b, BS_MAX_DEPTH);
	assert_null(check(b.p, b.len));
	buf_reset(&b);
	nest(&b, BS_MAX_DEPTH + 1);
	const char *w = check(b.p, b.len);
	assert_non_null(w);
	assert_non_null(strstr(w, "nesting"));
	/* Far deeper input is refused without recursion. */
	uint8_t *deep = malloc(200000);
	assert_non_null(deep);
	for (int i = 0; i < 100000; i++) {
		deep[2 * i] = 0x30;
		deep[2 * i + 1] = 0x80; /* indefinite: refused at once */
	}
	assert_non_null(check(deep, 200000));
	/* A chain of 40 definite SEQUENCEs: refused at depth 17. */
	size_t n = 0;
	for (int i = 0; i < 40; i++) {
		deep[n++] = 0x30;
		deep[n++] = (uint8_t)((40 - i - 1) * 2 + 2);
	}
	deep[n++] = 0x05;
	deep[n++] = 0x00;
	w = check(deep, n);
	assert_non_null(w);
	assert_non_null(strstr(w, "nesting"));
	free(deep);
	buf_free(&b);
}

static void test_check_utf8(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{"", true},
		{"plain", true},
		{"\xc2\x80", true},
		{"\xdf\xbf", true},
		{"\xe0\xa0\x80", true},
		{"\xe2\x82\xac", true},
		{"\xef\xbf\xbf", true},
		{"\xf0\x90\x80\x80", true},
		{"\xf4\x8f\xbf\xbf", true},
		{"\x80", false},             /* lone continuation */
		{"\xbf", false},
		{"\xc0\x80", false},         /* overlong NUL */
		{"\xc1\xbf", false},         /* overlong */
		{"\xe0\x80\x80", false},     /* overlong 3 */
		{"\xe0\x9f\xbf", false},
		{"\xf0\x80\x80\x80", false}, /* overlong 4 */
		{"\xf0\x8f\xbf\xbf", false},
		{"\xed\xa0\x80", false},     /* surrogate D800 */
		{"\xed\xbf\xbf", false},     /* surrogate DFFF */
		{"\xf4\x90\x80\x80", false}, /* above U+10FFFF */
		{"\xf5\x80\x80\x80", false},
		{"\xff", false},
		{"\xfe", false},
		{"\xe2\x82", false},         /* truncated */
		{"\xc3", false},
		{"a\xc3(", false},           /* bad continuation */
		{"\xe2\x28\xa1", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		size_t l = strlen(cases[i].s);
		uint8_t b[16];
		b[0] = 0x0c;
		b[1] = (uint8_t)l;
		memcpy(b + 2, cases[i].s, l);
		const char *w = check(b, l + 2);
		if (cases[i].ok != (w == NULL))
			fail_msg("case %zu: %s", i, w ? w : "accepted");
		assert_int_equal(bs_utf8_valid((const uint8_t *)cases[i].s, l), cases[i].ok);
	}
	/* Every code point round-trips through an encoder written here. */
	for (uint32_t cp = 0; cp <= 0x10ffff; cp += (cp < 0x20000 ? 1 : 97)) {
		uint8_t u[4];
		size_t n;
		if (cp < 0x80) {
			u[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			u[0] = (uint8_t)(0xc0 | cp >> 6);
			u[1] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			u[0] = (uint8_t)(0xe0 | cp >> 12);
			u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			u[2] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			u[0] = (uint8_t)(0xf0 | cp >> 18);
			u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
			u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			u[3] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 4;
		}
		bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
		if (bs_utf8_valid(u, n) == surrogate)
			fail_msg("U+%04x", (unsigned)cp);
	}
}

/* ---- SET OF order ------------------------------------------------------ */

static int sgn(int v)
{
	return (v > 0) - (v < 0);
}

static void test_set_order(void **state)
{
	(void)state;
	const uint8_t a[] = {0x16, 0x01, 'a'};
	const uint8_t b[] = {0x16, 0x01, 'b'};
	const uint8_t aa[] = {0x16, 0x02, 'a', 'a'};
	const uint8_t seq[] = {0x30, 0x03, 0x16, 0x01, 'a'};
	assert_int_equal(sgn(bs__der_set_cmp(a, 3, b, 3)), -1);
	assert_int_equal(sgn(bs__der_set_cmp(b, 3, a, 3)), 1);
	assert_int_equal(bs__der_set_cmp(a, 3, a, 3), 0);
	/* Encodings compare as octet strings: the length octet decides here. */
	assert_int_equal(sgn(bs__der_set_cmp(b, 3, aa, 4)), -1);
	/* Flags (tag 16) sort before valued attributes (tag 30). */
	assert_int_equal(sgn(bs__der_set_cmp(seq, 5, a, 3)), 1);
	/* X.690 11.6: the shorter is padded with zero octets at the end. */
	const uint8_t p1[] = {0x01};
	const uint8_t p2[] = {0x01, 0x00};
	const uint8_t p3[] = {0x01, 0x00, 0x01};
	assert_int_equal(bs__der_set_cmp(p1, 1, p2, 2), 0);
	assert_int_equal(bs__der_set_cmp(p2, 2, p1, 1), 0);
	assert_int_equal(sgn(bs__der_set_cmp(p1, 1, p3, 3)), -1);
	assert_int_equal(sgn(bs__der_set_cmp(p3, 3, p1, 1)), 1);
	assert_int_equal(bs__der_set_cmp(p1, 0, p2, 0), 0);
	assert_int_equal(sgn(bs__der_set_cmp(p1, 0, p3, 3)), -1);

	/* The library's sort orders attributes the same way and rejects
	 * duplicates. */
	struct bs__enc_attr v[4] = {{seq, 5}, {b, 3}, {aa, 4}, {a, 3}};
	assert_int_equal(bs__attr_sort(v, 4), BS_OK);
	assert_ptr_equal(v[0].tlv, a);
	assert_ptr_equal(v[1].tlv, b);
	assert_ptr_equal(v[2].tlv, aa);
	assert_ptr_equal(v[3].tlv, seq);
	struct bs__enc_attr d[2] = {{a, 3}, {a, 3}};
	assert_int_equal(bs__attr_sort(d, 2), BS_EINVAL);
}

static void test_header_writer(void **state)
{
	(void)state;
	size_t lens[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffff, 0x1000000, 0xffffffffu};
	for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
		uint8_t h[8];
		size_t n = bs__der_put_header(h, 0x04, lens[i]);
		assert_int_equal(n, bs__der_header_len(lens[i]));
		struct bs__tlv t;
		assert_null(bs__der_header_prefix(h, n, &t));
		assert_int_equal(t.hdr, n);
		assert_int_equal(t.len, lens[i]);
	}
}

/* Every CRC-32C implementation this CPU has (tables, the crc32
 * instruction in one and three lanes, carry-less folding) against a bitwise
 * reference: the check value, every length up to past the folding and lane
 * thresholds at each alignment, random long buffers, and chaining. */
static void test_crc32c_implementations(void **state)
{
	(void)state;
	const size_t max = (1u << 20) + 77;
	uint8_t *b = malloc(max + 8);
	assert_non_null(b);
	t_fill(b, max + 8, 42);
	uint32_t out;
	assert_true(bs__crc32c_with(1, 0, "123456789", 9, &out));
	assert_int_equal(out, 0xe3069283u);
	assert_int_equal(t_crc32c_ref(0, (const uint8_t *)"123456789", 9), 0xe3069283u);
	uint64_t rs = 7;
	int have = 0;
	for (int impl = 1; impl <= 3; impl++) {
		if (!bs__crc32c_with(impl, 0, b, 0, &out))
			continue;
		have++;
		size_t step = t_quick() ? 7 : 1;
		for (size_t len = 0; len <= 2 * 4096 + 1100; len += step) {
			size_t off = len % 8;
			uint32_t init = (uint32_t)t_rand(&rs);
			assert_true(bs__crc32c_with(impl, init, b + off, len, &out));
			if (out != t_crc32c_ref(init, b + off, len))
				fail_msg("implementation %d, length %zu at offset %zu", impl, len, off);
		}
		static const size_t sizes[] = {3 * 4096 - 1, 3 * 4096, 3 * 4096 + 1, 65536,
					       65536 + 255, 99999, (1u << 20) + 77};
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			size_t off = (size_t)(t_rand(&rs) % 8);
			uint32_t init = (uint32_t)t_rand(&rs);
			assert_true(bs__crc32c_with(impl, init, b + off, sizes[i], &out));
			if (out != t_crc32c_ref(init, b + off, sizes[i]))
				fail_msg("implementation %d, length %zu", impl, sizes[i]);
			/* Chaining: the CRC of A|B continues from the CRC of A. */
			uint32_t a, ab;
			size_t cut = (size_t)(t_rand(&rs) % sizes[i]);
			assert_true(bs__crc32c_with(impl, init, b + off, cut, &a));
			assert_true(bs__crc32c_with(impl, a, b + off + cut, sizes[i] - cut, &ab));
			assert_int_equal(ab, out);
		}
	}
	assert_true(have >= 1);
	/* The library's choice is one of them. */
	assert_int_equal(bs__crc32c(0, b, 65536), t_crc32c_ref(0, b, 65536));
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_implementations),
		cmocka_unit_test(test_int_round_trip),
		cmocka_unit_test(test_int_value_rejects),
		cmocka_unit_test(test_bool_round_trip),
		cmocka_unit_test(test_utf8_round_trip),
		cmocka_unit_test(test_octets_round_trip),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_header_minimal_lengths),
		cmocka_unit_test(test_header_indefinite_refused),
		cmocka_unit_test(test_header_huge_lengths),
		cmocka_unit_test(test_header_past_parent),
		cmocka_unit_test(test_header_high_tags),
		cmocka_unit_test(test_header_writer),
		cmocka_unit_test(test_check_integers),
		cmocka_unit_test(test_check_booleans),
		cmocka_unit_test(test_check_constructed_primitives),
		cmocka_unit_test(test_check_depth),
		cmocka_unit_test(test_check_utf8),
		cmocka_unit_test(test_set_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
