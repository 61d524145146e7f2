/* test_entry.c - hostile images over the memory backend: malformed entries
 * are refused (or the image is, when an entry's extent cannot be known),
 * unknown content is kept byte for byte, and no input crashes the reader or
 * makes it return data that is not what was stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- helpers ----------------------------------------------------------- */

/* An image of: bs.image, raw "good"/"g" = "hello", HOSTILE, raw "after" = "world". */
static void image_with(struct buf *img, const struct buf *hostile)
{
	t_image_begin(img);
	t_raw_entry(img, "good", "g", "hello");
	buf_put(img, hostile->p, hostile->len);
	t_raw_entry(img, "after", NULL, "world");
	t_image_end(img);
}

static void assert_msg_has(const char *msg, const char *part)
{
	if (!strstr(msg, part))
		fail_msg("message \"%s\" lacks \"%s\"", msg, part);
}

/* The hostile entry is refused with CODE (its message holding WHY), while
 * its neighbours read fine; writes and reads of it fail with CODE. */
static void expect_refused(const struct buf *hostile, int code, const char *why)
{
	struct buf img = {0};
	image_with(&img, hostile);
	bs_image *im;
	int rc = t_open_mem(img.p, img.len, 0, &im, NULL);
	if (rc)
		fail_msg("open failed: %s", last_error());
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 4);
	bs_entry *e = t_entry_at(im, 2);
	assert_non_null(e);
	if (bs_entry_status(e) != code)
		fail_msg("status %d (%s), wanted %d", bs_entry_status(e), bs_entry_status_message(e),
			 code);
	if (why)
		assert_msg_has(bs_entry_status_message(e), why);
	t_assert_data(im, "good", "g", "hello", 5);
	t_assert_data(im, "after", NULL, "world", 5);
	uint8_t b[64];
	size_t l;
	assert_int_equal(bs_entry_read(e, b, sizeof b, &l), code);
	assert_msg_has(last_error(), "mem.img");
	assert_msg_has(last_error(), "at offset");
	if (why)
		assert_msg_has(last_error(), why);
	void *p;
	p = NULL; /* outputs are untouched on failure */
	assert_int_equal(bs_entry_read_alloc(e, &p, &l), code);
	assert_null(p);
	assert_int_equal(bs_entry_write(e, "x", 1), code);
	assert_int_equal(bs_attr_set(e, "a", 0, NULL, 0), code);
	int problems = 0;
	assert_int_equal(bs_image_check(im, 0, t_count_cb, &problems), code);
	assert_int_equal(problems, 1);
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_stat(im, &st), BS_OK);
	assert_int_equal(st.refused, 1);
	/* The neighbours stay writable; the refused entry can be deleted. */
	bs_entry *g;
	assert_int_equal(bs_entry_find(im, "good", "g", &g), BS_OK);
	assert_int_equal(bs_entry_write(g, "HELLO", 5), BS_OK);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
	bs_image_close(im);
	buf_free(&img);
}

/* The whole image is refused: the entry's extent cannot be known. */
static void expect_open_fails(const uint8_t *img, size_t len, const char *why)
{
	bs_image *im = NULL;
	for (unsigned fl = 0; fl < 3; fl++) {
		unsigned flags = fl == 0 ? 0 : fl == 1 ? BS_OPEN_RDONLY : BS_OPEN_CREATE;
		struct bs_backend *be;
		assert_int_equal(bs_backend_mem(img, len, &be), BS_OK);
		int rc = bs_image_open_backend(be, "mem.img", flags, &im);
		if (rc == BS_OK)
			fail_msg("hostile image opened (flags %u)", flags);
		assert_null(im);
		assert_true(rc == BS_ECORRUPT || rc == BS_ELIMIT);
		assert_msg_has(last_error(), "mem.img");
		if (len)
			assert_msg_has(last_error(), "at offset");
		if (why)
			assert_msg_has(last_error(), why);
	}
}

static void expect_image_fails(const struct buf *hostile, const char *why)
{
	struct buf img = {0};
	image_with(&img, hostile);
	expect_open_fails(img.p, img.len, why);
	buf_free(&img);
}

/* ---- attribute sets ---------------------------------------------------- */

static void test_unsorted_attributes(void **state)
{
	(void)state;
	struct buf opt = {0}, e = {0};
	t_attr_flag(&opt, "b");
	t_attr_flag(&opt, "a");
	struct t_entry te = {.type = "t", .opt = opt.p, .opt_len = opt.len, .data = (const uint8_t *)"d",
			     .data_len = 1};
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "order");
	/* A valued attribute (tag 30) before a flag (tag 16). */
	buf_reset(&opt);
	buf_reset(&e);
	uint8_t v[3];
	t_attr_val(&opt, "a", v, t_der_int(1, v, sizeof v));
	t_attr_flag(&opt, "b");
	te.opt = opt.p;
	te.opt_len = opt.len;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "order");
	buf_free(&opt);
	buf_free(&e);
}

static void test_duplicate_attributes(void **state)
{
	(void)state;
	struct buf opt = {0}, mand = {0}, e = {0};
	/* The same encoding twice. */
	t_attr_flag(&opt, "a");
	t_attr_flag(&opt, "a");
	struct t_entry te = {.type = "t", .opt = opt.p, .opt_len = opt.len};
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "duplicate");
	/* One name, two values, in DER order. */
	buf_reset(&opt);
	buf_reset(&e);
	uint8_t v[3];
	t_attr_val(&opt, "a", v, t_der_int(1, v, sizeof v));
	t_attr_val(&opt, "a", v, t_der_int(2, v, sizeof v));
	te.opt = opt.p;
	te.opt_len = opt.len;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "twice");
	/* A flag and a valued attribute of one name. */
	buf_reset(&opt);
	buf_reset(&e);
	t_attr_flag(&opt, "a");
	t_attr_val(&opt, "a", v, t_der_int(1, v, sizeof v));
	te.opt = opt.p;
	te.opt_len = opt.len;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "twice");
	/* One name in both sets (even with slots, which would be understood). */
	buf_reset(&opt);
	buf_reset(&e);
	t_attr_flag(&opt, "x");
	t_attr_flag(&mand, "x");
	t_attr_slots(&mand, "crc32c");
	uint8_t area[2 * 16 + 8] = {0};
	t_slot_put(area, 1, "abc", 3);
	struct t_entry te2 = {.type = "t", .opt = opt.p, .opt_len = opt.len, .mand = mand.p,
			      .mand_len = mand.len, .data = area, .data_len = sizeof area};
	t_build_entry(&e, &te2);
	expect_refused(&e, BS_ECORRUPT, "twice");
	buf_free(&opt);
	buf_free(&mand);
	buf_free(&e);
}

static void test_attribute_wrong_type(void **state)
{
	(void)state;
	static const uint8_t bad[][8] = {
		{0x02, 0x01, 0x05},              /* INTEGER */
		{0x0c, 0x01, 'a'},               /* UTF8String name */
		{0x31, 0x03, 0x16, 0x01, 'a'},   /* SET */
		{0x30, 0x03, 0x0c, 0x01, 'a'},   /* SEQUENCE with a UTF8String name */
		{0x30, 0x03, 0x16, 0x01, 'a'},   /* SEQUENCE without a value */
		{0x30, 0x00},                    /* empty SEQUENCE */
		{0x16, 0x00},                    /* empty name */
		{0x16, 0x02, 'a', ' '},          /* space in a name */
		{0x16, 0x01, 0x80},              /* not ASCII */
		{0x30, 0x05, 0x16, 0x01, 'a', 0x01, 0x01}, /* value runs past */
	};
	static const size_t lens[] = {3, 3, 5, 5, 5, 2, 2, 4, 3, 7};
	for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
		struct buf e = {0};
		struct t_entry te = {.type = "t", .opt = bad[i], .opt_len = lens[i]};
		t_build_entry(&e, &te);
		expect_refused(&e, BS_ECORRUPT, NULL);
		buf_free(&e);
		/* The same in the mandatory set. */
		struct t_entry tm = {.type = "t", .mand = bad[i], .mand_len = lens[i]};
		t_build_entry(&e, &tm);
		expect_refused(&e, BS_ECORRUPT, NULL);
		buf_free(&e);
	}
}

static void test_attribute_value_not_der(void **state)
{
	(void)state;
	/* Values must be strict DER themselves. */
	static const uint8_t vals[][8] = {
		{0x02, 0x02, 0x00, 0x01},       /* non-minimal INTEGER */
		{0x01, 0x01, 0x01},             /* BOOLEAN 01 */
		{0x24, 0x03, 0x04, 0x01, 0x00}, /* constructed OCTET STRING */
		{0x30, 0x80, 0x05, 0x00, 0x00, 0x00}, /* indefinite length */
		{0x04, 0x81, 0x01, 0x00},       /* non-minimal length */
		{0x0c, 0x02, 0xc0, 0x80},       /* overlong UTF-8 */
		{0x00, 0x00},                   /* end-of-contents */
	};
	static const size_t lens[] = {4, 3, 5, 6, 4, 4, 2};
	for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
		struct buf opt = {0}, e = {0};
		t_attr_val(&opt, "v", vals[i], lens[i]);
		struct t_entry te = {.type = "t", .opt = opt.p, .opt_len = opt.len};
		t_build_entry(&e, &te);
		expect_refused(&e, BS_ECORRUPT, NULL);
		buf_free(&opt);
		buf_free(&e);
	}
}

static void test_attribute_limits(void **state)
{
	(void)state;
	struct buf opt = {0}, e = {0};
	char nm[32];
	/* 256 attributes are fine, 257 are refused. */
	for (unsigned i = 0; i < 257; i++) {
		snprintf(nm, sizeof nm, "a%03u", i % 1000u);
		t_attr_flag(&opt, nm);
	}
	struct t_entry te = {.type = "t", .opt = opt.p, .opt_len = opt.len - 6};
	t_build_entry(&e, &te);
	struct buf img = {0};
	image_with(&img, &e);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_status(t_entry_at(im, 2)), BS_OK);
	assert_int_equal(t_attr_count(t_entry_at(im, 2), 0), 256);
	bs_image_close(im);
	buf_free(&img);
	buf_reset(&e);
	te.opt_len = opt.len;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "limit");
	/* One attribute above BS_MAX_ATTR_SIZE. */
	buf_reset(&opt);
	buf_reset(&e);
	uint8_t *zero = calloc(1, BS_MAX_ATTR_SIZE);
	uint8_t *big = calloc(1, BS_MAX_ATTR_SIZE + 16);
	assert_non_null(zero);
	assert_non_null(big);
	size_t bl = t_der_octets(zero, BS_MAX_ATTR_SIZE, big, BS_MAX_ATTR_SIZE + 16);
	assert_true(bl > 0);
	free(zero);
	t_attr_val(&opt, "big", big, bl);
	te.opt = opt.p;
	te.opt_len = opt.len;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "limit");
	free(big);
	/* An attribute name of 256 octets. */
	buf_reset(&opt);
	buf_reset(&e);
	char longname[257];
	memset(longname, 'n', 256);
	longname[256] = 0;
	t_attr_flag(&opt, longname);
	te.opt = opt.p;
	te.opt_len = opt.len;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, NULL);
	buf_free(&opt);
	buf_free(&e);
}

static void nested_value(struct buf *out, unsigned depth)
{
	struct buf in = {0};
	buf_bytes(&in, 2, 0x05, 0x00);
	for (unsigned i = 0; i < depth; i++) {
		struct buf o = {0};
		buf_tlv(&o, i % 2 ? 0x30 : 0xa1, in.p, in.len);
		buf_free(&in);
		in = o;
	}
	buf_put(out, in.p, in.len);
	buf_free(&in);
}

static void test_nesting_depth(void **state)
{
	(void)state;
	struct buf v = {0}, opt = {0}, e = {0}, img = {0};
	nested_value(&v, BS_MAX_DEPTH);
	t_attr_val(&opt, "deep", v.p, v.len);
	struct t_entry te = {.type = "t", .opt = opt.p, .opt_len = opt.len};
	t_build_entry(&e, &te);
	image_with(&img, &e);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_status(t_entry_at(im, 2)), BS_OK);
	bs_image_close(im);
	buf_reset(&v);
	buf_reset(&opt);
	buf_reset(&e);
	nested_value(&v, BS_MAX_DEPTH + 1);
	t_attr_val(&opt, "deep", v.p, v.len);
	te.opt = opt.p;
	te.opt_len = opt.len;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "nesting");
	buf_free(&v);
	buf_free(&opt);
	buf_free(&e);
	buf_free(&img);
}

/* ---- the entry's own fields -------------------------------------------- */

static void test_type_rules(void **state)
{
	(void)state;
	struct buf e = {0};
	struct t_entry te = {.type = "", .type_len = 0};
	/* t_build_entry takes strlen of "" = 0: an empty type. */
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "type");
	buf_reset(&e);
	te.type = "caf\xc3\xa9";
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "type");
	buf_reset(&e);
	te.type = "a\x01";
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "type");
	buf_reset(&e);
	te.type = "a\0b";
	te.type_len = 3;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "type");
	buf_reset(&e);
	char longtype[257];
	memset(longtype, 't', 256);
	longtype[256] = 0;
	te.type = longtype;
	te.type_len = 0;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "type");
	/* The type is an IA5String, not a UTF8String. */
	buf_reset(&e);
	struct buf nv = {0}, en = {0};
	buf_str(&nv, 0x0c, "t");
	buf_bytes(&nv, 6, 0x31, 0, 0x31, 0, 0x04, 0);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, "IA5String");
	buf_free(&nv);
	buf_free(&en);
	buf_free(&e);
}

static void test_name_rules(void **state)
{
	(void)state;
	struct buf e = {0};
	struct t_entry te = {.type = "t", .name = "\xff\xfe"};
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "name");
	buf_reset(&e);
	te.name = "\xed\xa0\x80"; /* surrogate */
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "name");
	buf_reset(&e);
	te.name = "a\0b";
	te.name_len = 3;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "NUL");
	buf_reset(&e);
	char *longname = malloc(BS_MAX_NAME_LEN + 2);
	assert_non_null(longname);
	memset(longname, 'n', BS_MAX_NAME_LEN + 1);
	longname[BS_MAX_NAME_LEN + 1] = 0;
	te.name = longname;
	te.name_len = 0;
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "name");
	free(longname);
	/* An IA5String where the name belongs. */
	buf_reset(&e);
	struct buf nv = {0}, en = {0};
	buf_str(&nv, 0x16, "t");
	buf_bytes(&nv, 6, 0x31, 0, 0x31, 0, 0x04, 0);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_str(&en, 0x16, "n");
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, "UTF8String");
	/* Trailing octets after the name. */
	buf_reset(&e);
	buf_reset(&en);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_str(&en, 0x0c, "n");
	buf_bytes(&en, 2, 0x05, 0x00);
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, "trailing");
	/* An element after the data inside NVRAM. */
	buf_reset(&e);
	buf_reset(&en);
	buf_bytes(&nv, 2, 0x05, 0x00);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, NULL);
	buf_free(&nv);
	buf_free(&en);
	buf_free(&e);
}

static void test_data_rules(void **state)
{
	(void)state;
	struct buf nv = {0}, en = {0}, e = {0};
	/* Constructed OCTET STRING as data. */
	buf_str(&nv, 0x16, "t");
	buf_bytes(&nv, 4, 0x31, 0, 0x31, 0);
	buf_bytes(&nv, 5, 0x24, 0x03, 0x04, 0x01, 0x61);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, "OCTET STRING");
	/* No data at all. */
	buf_reset(&nv);
	buf_reset(&en);
	buf_reset(&e);
	buf_str(&nv, 0x16, "t");
	buf_bytes(&nv, 4, 0x31, 0, 0x31, 0);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, NULL);
	/* Sets in the wrong place / missing. */
	buf_reset(&nv);
	buf_reset(&en);
	buf_reset(&e);
	buf_str(&nv, 0x16, "t");
	buf_bytes(&nv, 4, 0x31, 0, 0x04, 0);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, NULL);
	/* NVRAM not a SEQUENCE. */
	buf_reset(&e);
	buf_bytes(&e, 4, 0x30, 0x02, 0x31, 0x00);
	expect_refused(&e, BS_ECORRUPT, NULL);
	/* Empty Entry. */
	buf_reset(&e);
	buf_bytes(&e, 2, 0x30, 0x00);
	expect_refused(&e, BS_ECORRUPT, NULL);
	buf_free(&nv);
	buf_free(&en);
	buf_free(&e);
}

static void test_library_attribute_rules(void **state)
{
	(void)state;
	struct buf mand = {0}, opt = {0}, e = {0};
	uint8_t area[2 * 16 + 4] = {0};
	t_slot_put(area, 1, "ab", 2);
	/* bs.slots in the optional set. */
	t_attr_slots(&opt, "crc32c");
	struct t_entry te = {.type = "t", .opt = opt.p, .opt_len = opt.len, .data = area,
			     .data_len = sizeof area};
	t_build_entry(&e, &te);
	expect_refused(&e, BS_ECORRUPT, "bs.slots");
	/* An unknown check algorithm is a feature this reader lacks. */
	buf_reset(&e);
	t_attr_slots(&mand, "md5");
	struct t_entry tm = {.type = "t", .mand = mand.p, .mand_len = mand.len, .data = area,
			     .data_len = sizeof area};
	t_build_entry(&e, &tm);
	expect_refused(&e, BS_EUNSUPPORTED, "bs.slots");
	/* An odd or too small slot area. */
	buf_reset(&mand);
	buf_reset(&e);
	t_attr_slots(&mand, "crc32c");
	tm.mand = mand.p;
	tm.mand_len = mand.len;
	tm.data_len = sizeof area - 1;
	t_build_entry(&e, &tm);
	expect_refused(&e, BS_ECORRUPT, "slots");
	buf_reset(&e);
	tm.data_len = 20;
	t_build_entry(&e, &tm);
	expect_refused(&e, BS_ECORRUPT, "slots");
	/* bs.supersedes: negative, not an INTEGER, or mandatory. */
	static const uint8_t sv[][4] = {{0x02, 0x01, 0xff}, {0x04, 0x01, 0x00}, {0x02, 0x02, 0x00, 0x01}};
	static const size_t sl[] = {3, 3, 4};
	for (int i = 0; i < 3; i++) {
		buf_reset(&opt);
		buf_reset(&e);
		t_attr_val(&opt, "bs.supersedes", sv[i], sl[i]);
		struct t_entry ts = {.type = "t", .opt = opt.p, .opt_len = opt.len};
		t_build_entry(&e, &ts);
		expect_refused(&e, BS_ECORRUPT, NULL);
	}
	buf_reset(&mand);
	buf_reset(&e);
	uint8_t iv[3];
	t_attr_val(&mand, "bs.supersedes", iv, t_der_int(2, iv, sizeof iv));
	struct t_entry tsm = {.type = "t", .mand = mand.p, .mand_len = mand.len};
	t_build_entry(&e, &tsm);
	expect_refused(&e, BS_EUNSUPPORTED, "bs.supersedes");
	buf_free(&mand);
	buf_free(&opt);
	buf_free(&e);
}

/* ---- lengths and framing ----------------------------------------------- */

/* A raw entry "t"/"n" = "d" with a flag "f", whose header number WHICH
 * (0 entry, 1 NVRAM, 2 type, 3 mandatory set, 4 optional set, 5 data,
 * 6 name, 7 the flag) uses the long length form for a short length. */
static void hdr_nm(struct buf *b, uint8_t tag, size_t len, bool nonminimal)
{
	if (nonminimal)
		buf_bytes(b, 3, tag, 0x81, (int)len);
	else
		buf_hdr(b, tag, len);
}

static void entry_nonminimal(struct buf *out, int which)
{
	struct buf opt = {0}, nv = {0}, en = {0};
	hdr_nm(&opt, 0x16, 1, which == 7);
	buf_put(&opt, "f", 1);
	hdr_nm(&nv, 0x16, 1, which == 2);
	buf_put(&nv, "t", 1);
	hdr_nm(&nv, 0x31, 0, which == 3);
	hdr_nm(&nv, 0x31, opt.len, which == 4);
	buf_put(&nv, opt.p, opt.len);
	hdr_nm(&nv, 0x04, 1, which == 5);
	buf_put(&nv, "d", 1);
	hdr_nm(&en, 0x30, nv.len, which == 1);
	buf_put(&en, nv.p, nv.len);
	hdr_nm(&en, 0x0c, 1, which == 6);
	buf_put(&en, "n", 1);
	hdr_nm(out, 0x30, en.len, which == 0);
	buf_put(out, en.p, en.len);
	buf_free(&opt);
	buf_free(&nv);
	buf_free(&en);
}

static void test_nonminimal_lengths(void **state)
{
	(void)state;
	struct buf e = {0}, img = {0};
	/* The reference form is valid. */
	entry_nonminimal(&e, -1);
	image_with(&img, &e);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, NULL), BS_OK);
	t_assert_data(im, "t", "n", "d", 1);
	bs_image_close(im);
	/* In the Entry's own header the extent is in doubt: the image is refused. */
	buf_reset(&e);
	entry_nonminimal(&e, 0);
	expect_image_fails(&e, "non-minimal");
	for (int which = 1; which <= 7; which++) {
		buf_reset(&e);
		entry_nonminimal(&e, which);
		expect_refused(&e, BS_ECORRUPT, "non-minimal");
	}
	/* Leading zero length octet. */
	buf_reset(&e);
	buf_bytes(&e, 4, 0x30, 0x82, 0x00, 0x05);
	buf_bytes(&e, 5, 0x30, 0x03, 0x16, 0x01, 't');
	expect_image_fails(&e, "non-minimal");
	/* A free element with a non-minimal length. */
	buf_reset(&e);
	buf_bytes(&e, 8, 0x04, 0x81, 0x05, 0, 0, 0, 0, 0);
	expect_image_fails(&e, "non-minimal");
	buf_free(&e);
	buf_free(&img);
}

static void test_indefinite_inside(void **state)
{
	(void)state;
	struct buf e = {0};
	/* The Entry itself. */
	buf_bytes(&e, 2, 0x30, 0x80);
	struct buf in = {0};
	t_raw_entry(&in, "t", NULL, "d");
	buf_put(&e, in.p + 2, in.len - 2);
	buf_bytes(&e, 2, 0, 0);
	expect_image_fails(&e, "indefinite");
	/* Its NVRAM. */
	buf_reset(&e);
	buf_reset(&in);
	buf_bytes(&in, 2, 0x30, 0x80);
	buf_bytes(&in, 3, 0x16, 0x01, 't');
	buf_bytes(&in, 6, 0x31, 0, 0x31, 0, 0x04, 0);
	buf_bytes(&in, 2, 0, 0);
	buf_tlv(&e, 0x30, in.p, in.len);
	expect_refused(&e, BS_ECORRUPT, "indefinite");
	/* The data. */
	buf_reset(&e);
	struct buf nv = {0}, en = {0};
	buf_bytes(&nv, 3, 0x16, 0x01, 't');
	buf_bytes(&nv, 4, 0x31, 0, 0x31, 0);
	buf_bytes(&nv, 7, 0x24, 0x80, 0x04, 0x01, 'x', 0x00, 0x00);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	buf_tlv(&e, 0x30, en.p, en.len);
	expect_refused(&e, BS_ECORRUPT, NULL);
	buf_free(&nv);
	buf_free(&en);
	buf_free(&in);
	buf_free(&e);
}

static void test_lengths_past_the_end(void **state)
{
	(void)state;
	static const uint8_t heads[][7] = {
		{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff},       /* 2^31 - 1 */
		{0x30, 0x84, 0x80, 0x00, 0x00, 0x00},       /* 2^31 */
		{0x30, 0x84, 0xff, 0xff, 0xff, 0xff},       /* 2^32 - 1 */
		{0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}, /* 2^32 */
		{0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff}, /* 8 octets */
		{0x30, 0x81, 0xff},                         /* just past */
		{0x04, 0x84, 0xff, 0xff, 0xff, 0xf0},       /* free element */
		{0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00},
		{0x24, 0x00},                               /* constructed free */
		{0x31, 0x00},                               /* SET in the directory */
		{0x05, 0x00},
	};
	static const size_t hl[] = {6, 6, 6, 7, 7, 3, 6, 7, 2, 2, 2};
	for (size_t i = 0; i < sizeof hl / sizeof *hl; i++) {
		/* As the last element (no end-of-contents fits after it). */
		struct buf img = {0};
		t_image_begin(&img);
		t_raw_entry(&img, "good", "g", "hello");
		buf_put(&img, heads[i], hl[i]);
		for (int k = 0; k < 40; k++)
			buf_bytes(&img, 1, 0x16);
		t_image_end(&img);
		expect_open_fails(img.p, img.len, NULL);
		buf_free(&img);
	}
	/* An entry whose length runs exactly one octet past the end-of-contents. */
	struct buf img = {0}, e = {0};
	t_image_begin(&img);
	t_raw_entry(&e, "t", NULL, "data");
	e.p[1]++;
	buf_put(&img, e.p, e.len);
	t_image_end(&img);
	expect_open_fails(img.p, img.len, NULL);
	buf_free(&img);
	buf_free(&e);
}

static void count_warnings(void *ctx, const bs_entry *e, uint64_t offset, int code,
			   const char *msg)
{
	(void)e;
	(void)offset;
	(void)msg;
	if (code == BS_OK)
		(*(int *)ctx)++;
}

static void test_end_of_contents(void **state)
{
	(void)state;
	struct buf img = {0};
	t_image_begin(&img);
	t_raw_entry(&img, "good", "g", "hello");
	/* Missing entirely. */
	expect_open_fails(img.p, img.len, "end-of-contents");
	/* Half of it. */
	buf_bytes(&img, 1, 0);
	expect_open_fails(img.p, img.len, NULL);
	/* Malformed. */
	buf_bytes(&img, 1, 1);
	expect_open_fails(img.p, img.len, "end-of-contents");
	/* Octets after a good end-of-contents are not part of the image. */
	img.p[img.len - 1] = 0;
	buf_bytes(&img, 4, 0x30, 0xff, 0xff, 0xff);
	bs_image *im;
	struct bs_backend *be;
	assert_int_equal(t_open_mem(img.p, img.len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 2);
	bs_image_close(im);
	/* A writer leaves them alone (damage that forged an end-of-contents
	 * looks the same as an interrupted append), check reports them, and
	 * the next append overwrites them. */
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, &be), BS_OK);
	size_t l;
	const uint8_t *d = t_mem_data(be, &l);
	assert_int_equal(l, img.len);
	assert_memory_equal(d, img.p, img.len);
	int warned = 0;
	assert_int_equal(bs_image_check(im, 0, count_warnings, &warned), BS_OK);
	assert_int_equal(warned, 1);
	assert_int_equal(bs_entry_create(im, "new", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "x", 1, NULL), BS_OK);
	bs_image_close(im);
	buf_free(&img);
}

static void test_not_an_image(void **state)
{
	(void)state;
	/* Garbage. */
	uint8_t g[4096];
	t_fill(g, sizeof g, 3);
	expect_open_fails(g, sizeof g, NULL);
	/* A definite-length SET. */
	struct buf img = {0};
	t_image_begin(&img);
	t_image_end(&img);
	img.p[1] = (uint8_t)(img.len - 2);
	expect_open_fails(img.p, img.len, NULL);
	/* Too short. */
	expect_open_fails((const uint8_t *)"\x31\x80", 2, NULL);
	expect_open_fails((const uint8_t *)"\x31\x80\x00\x00", 4, "bs.image");
	/* First entry not bs.image. */
	buf_reset(&img);
	buf_bytes(&img, 2, 0x31, 0x80);
	t_raw_entry(&img, "good", "g", "hello");
	t_image_end(&img);
	expect_open_fails(img.p, img.len, "bs.image");
	/* The bs.image entry itself refused. */
	buf_reset(&img);
	buf_bytes(&img, 2, 0x31, 0x80);
	struct buf opt = {0};
	t_attr_flag(&opt, "b");
	t_attr_flag(&opt, "a");
	struct t_entry te = {.type = "bs.image", .opt = opt.p, .opt_len = opt.len};
	t_build_entry(&img, &te);
	t_image_end(&img);
	expect_open_fails(img.p, img.len, "bs.image");
	/* A bs.image that is not first. */
	buf_reset(&img);
	buf_bytes(&img, 2, 0x31, 0x80);
	buf_bytes(&img, 2, 0x04, 0x00);
	struct t_entry ti = {.type = "bs.image"};
	t_build_entry(&img, &ti);
	t_image_end(&img);
	bs_image *im;
	int rc = t_open_mem(img.p, img.len, 0, &im, NULL);
	/* Free space before it is harmless; either way no crash and no format. */
	if (rc == BS_OK)
		bs_image_close(im);
	buf_free(&opt);
	buf_free(&img);
}

static void test_empty_storage(void **state)
{
	(void)state;
	bs_image *im = NULL;
	/* Memory: refused without CREATE, formatted with it. */
	im = NULL; /* outputs are untouched on failure */
	assert_int_equal(t_open_mem(NULL, 0, 0, &im, NULL), BS_ECORRUPT);
	assert_null(im);
	assert_msg_has(last_error(), "mem.img");
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_RDONLY, &im, NULL), BS_ECORRUPT);
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_RDONLY | BS_OPEN_CREATE, &im, NULL),
			 BS_ECORRUPT);
	struct bs_backend *be;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 1);
	size_t l;
	t_mem_data(be, &l);
	assert_true(l > 4);
	bs_image_close(im);
	/* A file: the same, and the refused file stays empty. */
	char *path = t_tmppath("empty.img");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(bs_image_open(path, 0, &im), BS_ECORRUPT);
	assert_msg_has(last_error(), path);
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &im), BS_ECORRUPT);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE, &im), BS_OK);
	bs_image_close(im);
	assert_int_equal(bs_image_open(path, 0, &im), BS_OK);
	bs_image_close(im);
	/* Garbage in a file is never formatted, even with CREATE. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not an image at all", f);
	fclose(f);
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE, &im), BS_ECORRUPT);
	assert_msg_has(last_error(), path);
	f = fopen(path, "r");
	char line[64] = "";
	assert_non_null(fgets(line, sizeof line, f));
	fclose(f);
	assert_string_equal(line, "this is not an image at all");
	remove(path);
	free(path);
}

/* ---- unknown content ---------------------------------------------------- */

static void test_unknown_mandatory_attribute(void **state)
{
	(void)state;
	struct buf mand = {0}, e = {0}, img = {0};
	uint8_t v[8];
	t_attr_val(&mand, "zz.future", v, t_der_int(7, v, sizeof v));
	struct t_entry te = {.type = "dev", .name = "m", .mand = mand.p, .mand_len = mand.len,
			     .data = (const uint8_t *)"secret", .data_len = 6};
	t_build_entry(&e, &te);
	image_with(&img, &e);
	bs_image *im;
	struct bs_backend *be;
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, &be), BS_OK);
	bs_entry *x;
	assert_int_equal(bs_entry_find(im, "dev", "m", &x), BS_OK);
	assert_int_equal(bs_entry_status(x), BS_EUNSUPPORTED);
	assert_msg_has(bs_entry_status_message(x), "zz.future");
	uint8_t b[16];
	size_t l = 99;
	assert_int_equal(bs_entry_read(x, b, sizeof b, &l), BS_EUNSUPPORTED);
	assert_msg_has(last_error(), "zz.future");
	assert_msg_has(last_error(), "mem.img");
	assert_msg_has(last_error(), "dev");
	assert_int_equal(bs_entry_write(x, "x", 1), BS_EUNSUPPORTED);
	assert_msg_has(last_error(), "zz.future");
	assert_int_equal(bs_attr_set(x, "y", 0, NULL, 0), BS_EUNSUPPORTED);
	assert_int_equal(bs_attr_remove(x, "zz.future"), BS_EUNSUPPORTED);
	assert_int_equal(bs_entry_resize(x, 100), BS_EUNSUPPORTED);
	/* Its attributes are still visible for tools. */
	unsigned flags = 0;
	const uint8_t *val;
	size_t vl;
	assert_int_equal(bs_attr_get(x, "zz.future", &val, &vl, &flags), BS_OK);
	assert_int_equal(flags, BS_ATTR_MANDATORY);
	assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_EUNSUPPORTED);
	/* The image is untouched by a writer's open, reads and refused writes. */
	size_t now_len;
	const uint8_t *now = t_mem_data(be, &now_len);
	assert_int_equal(now_len, img.len);
	assert_memory_equal(now, img.p, img.len);
	bs_image_close(im);
	/* Creating other entries and compacting keep it byte for byte. */
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, &be), BS_OK);
	assert_int_equal(bs_entry_find(im, "dev", "m", &x), BS_OK);
	uint64_t off = bs_entry_offset(x), size = bs_entry_size(x);
	assert_int_equal(size, e.len);
	assert_int_equal(bs_entry_create(im, "new", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = NULL, .nattrs = 0}, "n", 1, NULL), BS_OK);
	bs_entry *g;
	assert_int_equal(bs_entry_find(im, "good", "g", &g), BS_OK);
	assert_int_equal(bs_entry_delete(g), BS_OK);
	assert_int_equal(bs_image_compact(im), BS_OK);
	assert_int_equal(bs_entry_find(im, "dev", "m", &x), BS_OK);
	assert_true(bs_entry_offset(x) < off);
	uint8_t *raw = malloc(e.len);
	assert_int_equal(bs_image_read_raw(im, bs_entry_offset(x), raw, e.len), BS_OK);
	assert_memory_equal(raw, e.p, e.len);
	bs_image_close(im);
	free(raw);
	buf_free(&mand);
	buf_free(&e);
	buf_free(&img);
}

/* An optional attribute of shapes this library never writes. */
static void exotic_optional(struct buf *opt, struct buf *flag_tlv, struct buf *val_tlv)
{
	struct buf v = {0}, inner = {0};
	uint8_t i5[3];
	buf_put(&inner, i5, t_der_int(5, i5, sizeof i5));
	buf_str(&inner, 0x0c, "x\xc3\xa9");
	buf_bytes(&inner, 4, 0x03, 0x02, 0x04, 0xf0); /* BIT STRING */
	buf_bytes(&inner, 5, 0x9f, 0x81, 0x00, 0x01, 0x2a); /* [128] primitive */
	buf_bytes(&inner, 2, 0x05, 0x00);
	/* One value element (the module's ANY): [5] constructed. */
	buf_tlv(&v, 0xa5, inner.p, inner.len);
	t_attr_flag(flag_tlv, "zz.flag");
	t_attr_val(val_tlv, "zz.opt", v.p, v.len);
	buf_put(opt, flag_tlv->p, flag_tlv->len);
	buf_put(opt, val_tlv->p, val_tlv->len);
	buf_free(&v);
	buf_free(&inner);
}

static bool contains(const uint8_t *hay, size_t hl, const uint8_t *needle, size_t nl)
{
	return nl <= hl && memmem(hay, hl, needle, nl) != NULL;
}

static void test_unknown_content_kept(void **state)
{
	(void)state;
	struct buf opt = {0}, u = {0}, img = {0}, ft = {0}, vt = {0};
	exotic_optional(&opt, &ft, &vt);
	struct t_entry te = {.type = "x-future-type/v9", .name = "u", .opt = opt.p,
			     .opt_len = opt.len, .data = (const uint8_t *)"unknown data",
			     .data_len = 12};
	t_build_entry(&u, &te);
	t_image_begin(&img);
	buf_put(&img, u.p, u.len);
	t_slotted_entry(&img, "vtpm", "permall", 8, "12345678", 8);
	t_image_end(&img);
	bs_image *im;
	struct bs_backend *be;
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, &be), BS_OK);
	bs_entry *x, *v;
	assert_int_equal(bs_entry_find(im, "x-future-type/v9", "u", &x), BS_OK);
	assert_int_equal(bs_entry_status(x), BS_OK);
	assert_int_equal(bs_entry_find(im, "vtpm", "permall", &v), BS_OK);
	/* Rewrite another entry (grow past its capacity) and set attributes
	 * on it: the unknown entry stays where it was, byte for byte. */
	uint8_t big[300];
	t_fill(big, sizeof big, 1);
	assert_int_equal(bs_entry_write(v, big, sizeof big), BS_OK);
	assert_int_equal(bs_attr_set(v, "k", 0, NULL, 0), BS_OK);
	uint8_t *raw = malloc(u.len);
	assert_non_null(raw);
	assert_int_equal(bs_image_read_raw(im, bs_entry_offset(x), raw, u.len), BS_OK);
	assert_memory_equal(raw, u.p, u.len);
	assert_int_equal(bs_entry_size(x), u.len);
	/* Now set an attribute on the unknown entry itself. */
	uint8_t iv[4];
	size_t il = t_der_int(300, iv, sizeof iv);
	assert_int_equal(bs_attr_set(x, "mine", 0, iv, il), BS_OK);
	for (int pass = 0; pass < 3; pass++) {
		assert_int_equal(bs_entry_find(im, "x-future-type/v9", "u", &x), BS_OK);
		uint8_t *now = malloc(bs_entry_size(x));
		assert_non_null(now);
		assert_int_equal(bs_image_read_raw(im, bs_entry_offset(x), now, bs_entry_size(x)),
				 BS_OK);
		/* Both unknown attributes, exactly as they were encoded. */
		assert_true(contains(now, bs_entry_size(x), ft.p, ft.len));
		assert_true(contains(now, bs_entry_size(x), vt.p, vt.len));
		free(now);
		const uint8_t *val;
		size_t vl;
		assert_int_equal(bs_attr_get(x, "zz.opt", &val, &vl, NULL), BS_OK);
		assert_true(vt.len > vl);
		assert_memory_equal(val, vt.p + vt.len - vl, vl);
		assert_int_equal(bs_attr_get(x, "zz.flag", &val, &vl, NULL), BS_OK);
		assert_int_equal(vl, 0);
		int64_t n;
		assert_int_equal(bs_attr_get_int(x, "mine", &n), BS_OK);
		assert_true(n == 300);
		t_assert_data(im, "x-future-type/v9", "u", "unknown data", 12);
		t_assert_data(im, "vtpm", "permall", big, sizeof big);
		assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
		if (pass == 0) {
			assert_int_equal(bs_image_compact(im), BS_OK);
		} else if (pass == 1) {
			size_t l;
			const uint8_t *d = t_mem_data(be, &l);
			uint8_t *copy = malloc(l);
			memcpy(copy, d, l);
			bs_image_close(im);
			assert_int_equal(t_open_mem(copy, l, 0, &im, &be), BS_OK);
			free(copy);
		}
	}
	bs_image_close(im);
	free(raw);
	buf_free(&opt);
	buf_free(&ft);
	buf_free(&vt);
	buf_free(&u);
	buf_free(&img);
}

/* Open shares one parse between consecutive entries whose type and
 * attribute sets are the same octets (blobstore/entry.c): each entry must
 * still get its own name, data and refusals, a rewrite of one must not
 * touch the others, and an entry refused for its sets must not lend them. */
static void shared_sets(struct buf *mand, struct buf *opt, const char *color, bool future)
{
	uint8_t v[32];
	buf_reset(mand);
	buf_reset(opt);
	/* DER order: IA5String flags (16) before SEQUENCEs (30). */
	if (future)
		t_attr_flag(mand, "zz.future");
	t_attr_slots(mand, "crc32c");
	t_attr_flag(opt, "ro");
	t_attr_val(opt, "color", v, t_der_utf8(color, v, sizeof v));
}

static void shared_entry(struct buf *img, const char *type, const char *name, size_t name_len,
			 const char *color, bool future, size_t area)
{
	struct buf mand = {0}, opt = {0};
	shared_sets(&mand, &opt, color, future);
	uint8_t d[2 * (16 + 8)] = {0};
	assert_true(area <= sizeof d);
	t_slot_put(d, 1, name, name_len < 8 ? name_len : 8);
	struct t_entry te = {.type = type, .name = name, .name_len = name_len,
			     .mand = mand.p, .mand_len = mand.len, .opt = opt.p,
			     .opt_len = opt.len, .data = d, .data_len = area};
	t_build_entry(img, &te);
	buf_free(&mand);
	buf_free(&opt);
}

static void assert_color(bs_image *im, const char *name, const char *color)
{
	bs_entry *e;
	char *s = NULL;
	unsigned flags = 99;
	const uint8_t *v;
	size_t vl = 99;
	assert_int_equal(bs_entry_find(im, "dev.var", name, &e), BS_OK);
	assert_int_equal(bs_attr_get_str(e, "color", &s), BS_OK);
	assert_string_equal(s, color);
	free(s);
	assert_int_equal(bs_attr_get(e, "ro", &v, &vl, &flags), BS_OK);
	assert_int_equal(flags, 0);
	assert_int_equal(vl, 0);
	assert_int_equal(bs_attr_get(e, "bs.slots", &v, &vl, &flags), BS_OK);
	assert_int_equal(flags, BS_ATTR_MANDATORY);
	assert_true(bs_entry_is_slotted(e));
	assert_string_equal(bs_entry_name(e), name);
	t_assert_data(im, "dev.var", name, name, strlen(name));
}

static void test_shared_attribute_sets(void **state)
{
	(void)state;
	const size_t area = 2 * (16 + 8);
	struct buf img = {0};
	t_image_begin(&img);
	shared_entry(&img, "dev.var", "v0", 2, "red", false, area);
	shared_entry(&img, "dev.var", "v1", 2, "red", false, area);
	shared_entry(&img, "dev.var", "v2\xff", 3, "red", false, area); /* not UTF-8 */
	shared_entry(&img, "dev.var", "v3", 2, "red", false, area - 1);  /* odd data area */
	shared_entry(&img, "dev.var", "v4", 2, "red", false, area);
	shared_entry(&img, "dev.var", "v5", 2, "blue", false, area);
	shared_entry(&img, "dev.var", "v6", 2, "red", false, area);
	shared_entry(&img, "dev.other", "v7", 2, "red", false, area);
	shared_entry(&img, "dev.var", "v8", 2, "red", true, area); /* unknown mandatory */
	shared_entry(&img, "dev.var", "v9", 2, "red", true, area);
	shared_entry(&img, "dev.var", "v10", 3, "red", false, area);
	t_image_end(&img);
	for (int pass = 0; pass < 2; pass++) {
		bs_image *im;
		struct bs_backend *be;
		assert_int_equal(t_open_mem(img.p, img.len, 0, &im, &be), BS_OK);
		assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 12);
		static const char *const good[] = {"v0", "v1", "v4", "v6", "v10"};
		for (size_t i = 0; i < sizeof good / sizeof *good; i++)
			assert_color(im, good[i], pass && !strcmp(good[i], "v1") ? "green" : "red");
		assert_color(im, "v5", "blue");
		bs_entry *e;
		size_t bad_name = 0;
		for (size_t i = 0; i < bs_image_count(im, BS_ITER_LIBRARY); i++) {
			bs_entry *x = t_entry_at(im, i);
			if (strstr(bs_entry_status_message(x), "not UTF-8")) {
				assert_int_equal(bs_entry_status(x), BS_ECORRUPT);
				bad_name++;
			}
		}
		assert_int_equal(bad_name, 1);
		assert_int_equal(bs_entry_find(im, "dev.var", "v3", &e), BS_OK);
		assert_int_equal(bs_entry_status(e), BS_ECORRUPT);
		assert_msg_has(bs_entry_status_message(e), "odd for two slots");
		assert_int_equal(bs_entry_find(im, "dev.other", "v7", &e), BS_OK);
		assert_string_equal(bs_entry_type(e), "dev.other");
		assert_int_equal(bs_entry_status(e), BS_OK);
		for (int k = 8; k <= 9; k++) {
			char n[16];
			snprintf(n, sizeof n, "v%d", k);
			assert_int_equal(bs_entry_find(im, "dev.var", n, &e), BS_OK);
			assert_int_equal(bs_entry_status(e), BS_EUNSUPPORTED);
			assert_msg_has(bs_entry_status_message(e), "zz.future");
		}
		assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_ECORRUPT);
		if (pass == 0) {
			/* A rewrite of one sharer leaves the others as they were. */
			uint8_t v[16];
			assert_int_equal(bs_entry_find(im, "dev.var", "v1", &e), BS_OK);
			assert_int_equal(bs_attr_set(e, "color", 0, v, t_der_utf8("green", v, sizeof v)),
					 BS_OK);
			assert_color(im, "v0", "red");
			assert_color(im, "v1", "green");
			assert_color(im, "v4", "red");
			buf_free(&img);
			size_t len;
			uint8_t *copy = t_mem_copy(be, &len);
			buf_put(&img, copy, len);
			free(copy);
		}
		bs_image_close(im);
	}
	buf_free(&img);
}

static void test_duplicate_entries_refused(void **state)
{
	(void)state;
	struct buf img = {0};
	t_image_begin(&img);
	t_raw_entry(&img, "t", "n", "one");
	t_raw_entry(&img, "t", "n", "two");
	t_raw_entry(&img, "t", NULL, "three");
	t_image_end(&img);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_status(t_entry_at(im, 1)), BS_ECORRUPT);
	assert_int_equal(bs_entry_status(t_entry_at(im, 2)), BS_ECORRUPT);
	assert_msg_has(bs_entry_status_message(t_entry_at(im, 1)), "duplicate");
	t_assert_data(im, "t", NULL, "three", 5);
	bs_image_close(im);
	buf_free(&img);
}

static void test_hostile_supersedes(void **state)
{
	(void)state;
	/* bs.supersedes naming an entry of another key, a later offset or
	 * itself hides nothing. */
	struct buf img = {0};
	t_image_begin(&img);
	uint64_t a_off = img.len;
	t_raw_entry(&img, "a", NULL, "A");
	uint64_t b_off = img.len;
	uint64_t targets[] = {a_off, b_off, 100000, 0};
	for (int i = 0; i < 4; i++) {
		struct buf opt = {0};
		uint8_t iv[10];
		t_attr_val(&opt, "bs.supersedes", iv, t_der_int((int64_t)targets[i], iv, sizeof iv));
		char ty[4] = {'b', (char)('0' + i), 0, 0};
		struct t_entry te = {.type = ty, .opt = opt.p, .opt_len = opt.len,
				     .data = (const uint8_t *)"B", .data_len = 1};
		t_build_entry(&img, &te);
		buf_free(&opt);
	}
	t_image_end(&img);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 6);
	t_assert_data(im, "a", NULL, "A", 1);
	t_assert_data(im, "b0", NULL, "B", 1);
	t_assert_data(im, "b1", NULL, "B", 1);
	assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
	bs_image_close(im);
	buf_free(&img);
}

static void test_slot_hostility(void **state)
{
	(void)state;
	/* Slots that both fail, claim a length past the capacity, or both
	 * claim one generation: reads fail, never return data. */
	for (int k = 0; k < 4; k++) {
		struct buf mand = {0}, img = {0};
		t_attr_slots(&mand, "crc32c");
		uint8_t area[2 * (16 + 8)] = {0};
		t_slot_put(area, 3, "aaaa", 4);
		t_slot_put(area + 24, 3, "bbbb", 4);
		if (k == 1) {
			area[11] = 9; /* length 9 > capacity 8 */
			area[24 + 11] = 9;
		} else if (k == 2) {
			area[16] ^= 1;
			area[24 + 16] ^= 1;
		} else if (k == 3) {
			memset(area, 0, sizeof area);
		}
		struct t_entry te = {.type = "s", .mand = mand.p, .mand_len = mand.len, .data = area,
				     .data_len = sizeof area};
		t_image_begin(&img);
		t_build_entry(&img, &te);
		t_image_end(&img);
		bs_image *im;
		assert_int_equal(t_open_mem(img.p, img.len, 0, &im, NULL), BS_OK);
		bs_entry *e;
		assert_int_equal(bs_entry_find(im, "s", NULL, &e), BS_OK);
		uint8_t b[8];
		size_t l;
		assert_int_equal(bs_entry_read(e, b, sizeof b, &l), BS_ECORRUPT);
		assert_msg_has(last_error(), "mem.img");
		assert_msg_has(last_error(), "at offset");
		assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_ECORRUPT);
		/* A writer may replace the lost value on purpose. */
		assert_int_equal(bs_entry_write(e, "cc", 2), BS_OK);
		t_assert_data(im, "s", NULL, "cc", 2);
		bs_image_close(im);
		buf_free(&mand);
		buf_free(&img);
	}
}

/* Finds the only copy of NEEDLE/N in HAY/LEN. */
static size_t find_once(const uint8_t *hay, size_t len, const void *needle, size_t n)
{
	size_t at = SIZE_MAX;
	for (size_t i = 0; i + n <= len; i++) {
		if (!memcmp(hay + i, needle, n)) {
			assert_true(at == SIZE_MAX);
			at = i;
		}
	}
	assert_true(at != SIZE_MAX);
	return at;
}

static void test_entry_check_states(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	bs_entry *s, *r;
	struct bs_entry_opts so = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 16};
	struct bs_entry_opts ro = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	assert_int_equal(bs_entry_create(im, "s", NULL, &so, "old-value", 9, &s), BS_OK);
	assert_int_equal(bs_entry_create(im, "r", NULL, &ro, "raw", 3, &r), BS_OK);
	int st = 42;
	assert_int_equal(bs_entry_check(NULL, &st), BS_EINVAL);
	assert_int_equal(bs_entry_check(s, NULL), BS_EINVAL);
	assert_int_equal(st, 42);
	assert_int_equal(bs_entry_check(s, &st), BS_OK);
	assert_int_equal(st, BS_STATE_CURRENT);
	assert_int_equal(bs_entry_check(r, &st), BS_OK);
	assert_int_equal(st, BS_STATE_CURRENT);
	assert_int_equal(bs_entry_write(s, "new-value", 9), BS_OK);
	assert_int_equal(bs_entry_check(s, &st), BS_OK);
	assert_int_equal(st, BS_STATE_CURRENT);
	size_t len;
	uint8_t *img = t_mem_copy(be, &len);
	bs_image_close(im);

	/* Damage to the newest value: reads return the previous one, and
	 * bs_entry_check() says so; the next write clears it. */
	size_t at = find_once(img, len, "new-value", 9);
	img[at + 3] ^= 0x10;
	assert_int_equal(t_open_mem(img, len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_find(im, "s", NULL, &s), BS_OK);
	t_assert_data(im, "s", NULL, "old-value", 9);
	assert_int_equal(bs_entry_check(s, &st), BS_OK);
	assert_int_equal(st, BS_STATE_PREVIOUS);
	assert_int_equal(bs_entry_write(s, "fixed", 5), BS_OK);
	assert_int_equal(bs_entry_check(s, &st), BS_OK);
	assert_int_equal(st, BS_STATE_CURRENT);
	bs_image_close(im);

	/* Both values damaged: an error, and *STATE is untouched. */
	img[find_once(img, len, "old-value", 9)] ^= 0x01;
	assert_int_equal(t_open_mem(img, len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_find(im, "s", NULL, &s), BS_OK);
	st = 42;
	assert_int_equal(bs_entry_check(s, &st), BS_ECORRUPT);
	assert_int_equal(st, 42);
	assert_msg_has(last_error(), "mem.img");
	bs_image_close(im);
	free(img);

	/* A refused entry gives its refusal. */
	struct buf mand = {0}, e = {0}, im2 = {0};
	uint8_t v[8];
	t_attr_val(&mand, "zz.future", v, t_der_int(7, v, sizeof v));
	struct t_entry te = {.type = "dev", .mand = mand.p, .mand_len = mand.len,
			     .data = (const uint8_t *)"x", .data_len = 1};
	t_build_entry(&e, &te);
	image_with(&im2, &e);
	assert_int_equal(t_open_mem(im2.p, im2.len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_find(im, "dev", NULL, &s), BS_OK);
	assert_int_equal(bs_entry_check(s, &st), BS_EUNSUPPORTED);
	assert_int_equal(st, 42);
	assert_msg_has(last_error(), "zz.future");
	bs_image_close(im);
	buf_free(&mand);
	buf_free(&e);
	buf_free(&im2);
}

/* ---- exhaustive damage -------------------------------------------------- */

struct known {
	const char *type, *name;
	const uint8_t *cur, *prev; /* PREV: the previous value, when a slot holds it */
	size_t cur_len, prev_len;
};

/* A small image: slotted entries (one with two valid slots), a deleted
 * entry and an unnamed one.  KNOWN gets what each entry holds.  LEGACY:
 * the deleted entry's free space is zeros, as in images written before
 * deletes filled it with ff. */
static size_t damage_image(uint8_t **out, size_t *len, struct known *k, bool legacy)
{
	static const uint8_t a1[] = "first value of a", a2[] = "second value of a!";
	static const uint8_t b1[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	static const uint8_t c1[] = "c";
	struct bs_backend *be;
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	bs_entry *a, *d;
	assert_int_equal(bs_entry_create(im, "vtpm", "a", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 24, .attrs = NULL, .nattrs = 0}, a1, sizeof a1 - 1, &a), 0);
	assert_int_equal(bs_entry_create(im, "tmp", "d", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "gone", 4, &d), 0);
	assert_int_equal(bs_entry_create(im, "nvram", "b", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 48, .attrs = NULL, .nattrs = 0}, b1, sizeof b1 - 1, NULL),
			 0);
	assert_int_equal(bs_entry_write(a, a2, sizeof a2 - 1), BS_OK);
	uint64_t d_off = bs_entry_offset(d);
	assert_int_equal(bs_entry_delete(d), BS_OK);
	uint8_t iv[3];
	struct bs_attr at = {BS_ATTR_VERSION, "n", 0, iv, t_der_int(5, iv, sizeof iv)};
	assert_int_equal(bs_entry_create(im, "cfg", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 4, .attrs = &at, .nattrs = 1}, c1, 1, NULL), 0);
	*out = t_mem_copy(be, len);
	bs_image_close(im);
	if (legacy) {
		/* 04 L (short form), then L octets of ff. */
		uint8_t *f = *out + d_off;
		assert_int_equal(f[0], 0x04);
		assert_true(f[1] < 0x80);
		for (size_t i = 0; i < f[1]; i++)
			assert_int_equal(f[2 + i], 0xff);
		memset(f + 2, 0, f[1]);
	}
	k[0] = (struct known){"vtpm", "a", a2, a1, sizeof a2 - 1, sizeof a1 - 1};
	k[1] = (struct known){"nvram", "b", b1, NULL, sizeof b1 - 1, 0};
	k[2] = (struct known){"cfg", NULL, c1, NULL, 1, 0};
	return 3;
}

static bool value_is(const struct known *k, const void *p, size_t l, bool allow_prev)
{
	if (l == k->cur_len && !memcmp(p, k->cur, l))
		return true;
	return allow_prev && k->prev && l == k->prev_len && !memcmp(p, k->prev, l);
}

/* Reads of the previous value that bs_entry_check() did not report (a
 * silent rollback), and reads of the newest value it reported as previous. */
static size_t silent_previous, false_previous;
/* Images that opened and passed check with fewer entries than stored. */
static size_t silent_losses;

/* Opens the damaged image; whatever opens must either refuse or read one
 * of the stored values.  Returns 1 when the image opened. */
static int probe(const uint8_t *img, size_t len, const struct known *k, size_t nk,
		 bool allow_rename)
{
	bs_image *im;
	int rc = t_open_mem(img, len, 0, &im, NULL);
	if (rc) {
		assert_true(rc < 0);
		assert_non_null(strstr(last_error(), "mem.img"));
		return 0;
	}
	for (size_t i = 0; i < bs_image_count(im, BS_ITER_LIBRARY); i++) {
		bs_entry *e = t_entry_at(im, i);
		void *p;
		size_t l;
		t_attr_count(e, 0);
		bs_entry_name(e);
		if (i == 0 || bs_entry_read_alloc(e, &p, &l))
			continue;
		const struct known *match = NULL;
		for (size_t j = 0; j < nk; j++) {
			const char *n = bs_entry_name(e);
			if (!strcmp(bs_entry_type(e), k[j].type) &&
			    ((!n && !k[j].name) || (n && k[j].name && !strcmp(n, k[j].name))))
				match = &k[j];
		}
		bool ok = false;
		if (match) {
			ok = value_is(match, p, l, true);
			int st = -1;
			if (ok && bs_entry_check(e, &st) == BS_OK) {
				bool prev = !value_is(match, p, l, false);
				silent_previous += prev && st != BS_STATE_PREVIOUS;
				false_previous += !prev && st == BS_STATE_PREVIOUS;
			}
		} else if (allow_rename) {
			/* A flipped bit in a type or a name is not covered by
			 * any check: the data must still be a stored value. */
			for (size_t j = 0; j < nk && !ok; j++)
				ok = value_is(&k[j], p, l, true);
		}
		if (!ok)
			fail_msg("entry %s/%s read %zu octets that were never stored",
				 bs_entry_type(e), bs_entry_name(e) ? bs_entry_name(e) : "-", l);
		free(p);
	}
	if (bs_image_check(im, 1, NULL, NULL) == BS_OK && bs_image_count(im, 0) < nk)
		silent_losses++;
	bs_image_close(im);
	return 1;
}

static void test_truncation_at_every_octet(void **state)
{
	(void)state;
	uint8_t *img;
	size_t len;
	struct known k[3];
	size_t nk = damage_image(&img, &len, k, false);
	assert_int_equal(probe(img, len, k, nk, false), 1);
	size_t opened = 0;
	for (size_t l = 0; l < len; l++) {
		opened += (size_t)probe(img, l, k, nk, false);
		/* CREATE formats only truly empty storage. */
		bs_image *im;
		struct bs_backend *be;
		int rc = t_open_mem(img, l, BS_OPEN_CREATE, &im, &be);
		if (l == 0) {
			assert_int_equal(rc, BS_OK);
			bs_image_close(im);
		} else {
			assert_int_not_equal(rc, BS_OK);
		}
	}
	/* Every prefix lacks the end-of-contents: none is a valid image. */
	assert_int_equal(opened, 0);
	free(img);
}

static void bit_flips(bool legacy)
{
	uint8_t *img;
	size_t len;
	struct known k[3];
	size_t nk = damage_image(&img, &len, k, legacy);
	uint8_t *c = malloc(len);
	assert_non_null(c);
	size_t opened = 0, bits = 0, step = t_quick() ? 3 : 1;
	silent_previous = false_previous = silent_losses = 0;
	for (size_t bit = 0; bit < len * 8; bit += step) {
		memcpy(c, img, len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		opened += (size_t)probe(c, len, k, nk, true);
		bits++;
	}
	print_message("bit flips%s: %zu images, %zu opened, %zu silent and %zu false "
		      "previous-value reports, %zu silent entry losses\n",
		      legacy ? " (zero-filled free space)" : "", bits, opened, silent_previous,
		      false_previous, silent_losses);
	assert_true(opened > 0);
	/* Every flip that makes a read return the previous value is reported
	 * (bs_entry_check), and no read of the newest value is. */
	assert_int_equal(silent_previous, 0);
	assert_int_equal(false_previous, 0);
	/* Free space is filled with ff: no flipped bit in a free element forges
	 * an end-of-contents that hides the entries after it.  In old images
	 * (zeros) one can, and check reports the entries found behind it. */
	assert_int_equal(silent_losses, 0);
	free(c);
	free(img);
}

static void test_bit_flips(void **state)
{
	(void)state;
	bit_flips(false);
}

static void test_bit_flips_legacy_free_space(void **state)
{
	(void)state;
	bit_flips(true);
}

static void test_random_damage(void **state)
{
	(void)state;
	/* Runs of random octets over random places: the reader must hold. */
	uint8_t *img;
	size_t len;
	struct known k[3];
	size_t nk = damage_image(&img, &len, k, false);
	uint8_t *c = malloc(len);
	assert_non_null(c);
	uint64_t s = 42;
	int rounds = t_quick() ? 1000 : 5000;
	for (int r = 0; r < rounds; r++) {
		memcpy(c, img, len);
		size_t at = (size_t)(t_rand(&s) % len), n = 1 + (size_t)(t_rand(&s) % 8);
		for (size_t i = 0; i < n && at + i < len; i++)
			c[at + i] = (uint8_t)t_rand(&s);
		probe(c, len, k, nk, true);
	}
	free(c);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unsorted_attributes),
		cmocka_unit_test(test_duplicate_attributes),
		cmocka_unit_test(test_attribute_wrong_type),
		cmocka_unit_test(test_attribute_value_not_der),
		cmocka_unit_test(test_attribute_limits),
		cmocka_unit_test(test_nesting_depth),
		cmocka_unit_test(test_type_rules),
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_data_rules),
		cmocka_unit_test(test_library_attribute_rules),
		cmocka_unit_test(test_nonminimal_lengths),
		cmocka_unit_test(test_indefinite_inside),
		cmocka_unit_test(test_lengths_past_the_end),
		cmocka_unit_test(test_end_of_contents),
		cmocka_unit_test(test_not_an_image),
		cmocka_unit_test(test_empty_storage),
		cmocka_unit_test(test_unknown_mandatory_attribute),
		cmocka_unit_test(test_unknown_content_kept),
		cmocka_unit_test(test_shared_attribute_sets),
		cmocka_unit_test(test_duplicate_entries_refused),
		cmocka_unit_test(test_hostile_supersedes),
		cmocka_unit_test(test_slot_hostility),
		cmocka_unit_test(test_entry_check_states),
		cmocka_unit_test(test_truncation_at_every_octet),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_bit_flips_legacy_free_space),
		cmocka_unit_test(test_random_damage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
