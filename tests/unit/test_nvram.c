/* test_nvram.c - the device API (include/nvram.h): put/get, typed
 * attributes, entry-type checks, the record codec with its upgrade rules,
 * hostile records and varstore files (include/blobstore/uefi.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include <blobstore/nvram.h>
#include <blobstore/uefi.h>

static bs_image *mem_image(void)
{
	bs_image *img;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img, NULL), BS_OK);
	return img;
}

static uint8_t *encode(const bs_record *r, size_t *len)
{
	uint8_t *der;
	assert_int_equal(bs_record_encode(r, &der, len), BS_OK);
	return der;
}

/* ---- records ------------------------------------------------------------- */

static const char *const all_fields[] = {"i", "rwi", "b", "rwb", "s", "rws", "by", "f", "neg"};

static bs_record *sample(void)
{
	bs_record *r;
	assert_int_equal(bs_record_new(&r), BS_OK);
	assert_int_equal(bs_record_set_int(r, "i", BS_ATTR_MANDATORY, 300), BS_OK);
	assert_int_equal(bs_record_set_int(r, "neg", 0, -129), BS_OK);
	assert_int_equal(bs_record_set_int(r, "rwi", BS_ATTR_RW, -2), BS_OK);
	assert_int_equal(bs_record_set_bool(r, "b", 0, 1), BS_OK);
	assert_int_equal(bs_record_set_bool(r, "rwb", BS_ATTR_RW, 0), BS_OK);
	assert_int_equal(bs_record_set_str(r, "s", 0, "h\xc3\xa9llo"), BS_OK);
	assert_int_equal(bs_record_set_str(r, "rws", BS_ATTR_RW, "rw"), BS_OK);
	assert_int_equal(bs_record_set_bytes(r, "by", 0, "\0\1\2", 3), BS_OK);
	assert_int_equal(bs_record_set_flag(r, "f", BS_ATTR_MANDATORY), BS_OK);
	return r;
}

static void test_record_round_trip(void **state)
{
	(void)state;
	bs_record *r = sample(), *d;
	size_t len, len2;
	uint8_t *der = encode(r, &len);
	assert_int_equal(bs_record_decode(der, len, all_fields, 9, &d), BS_OK);
	int64_t i;
	int b;
	char *s;
	const uint8_t *p;
	size_t pl;
	assert_int_equal(t_rec_get_int(d, "i", 0, &i), BS_OK);
	assert_int_equal(i, 300);
	assert_int_equal(t_rec_get_int(d, "neg", 0, &i), BS_OK);
	assert_int_equal(i, -129);
	assert_int_equal(t_rec_get_int(d, "rwi", 0, &i), BS_OK);
	assert_int_equal(i, -2);
	assert_int_equal(t_rec_get_bool(d, "b", 0, &b), BS_OK);
	assert_int_equal(b, 1);
	assert_int_equal(t_rec_get_bool(d, "rwb", 1, &b), BS_OK);
	assert_int_equal(b, 0);
	assert_int_equal(t_rec_get_str(d, "s", NULL, &s), BS_OK);
	assert_string_equal(s, "h\xc3\xa9llo");
	free(s);
	assert_int_equal(t_rec_get_str(d, "rws", NULL, &s), BS_OK);
	assert_string_equal(s, "rw");
	free(s);
	assert_int_equal(t_rec_get_bytes(d, "by", NULL, 0, &p, &pl), BS_OK);
	assert_int_equal(pl, 3);
	assert_memory_equal(p, "\0\1\2", 3);
	assert_true(bs_record_has(d, "f"));
	/* DER is canonical: the decoded record encodes to the same octets. */
	uint8_t *der2 = encode(d, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(der, der2, len);
	/* The read-write encodings are fixed-size OCTET STRINGs. */
	const char *name;
	const uint8_t *v;
	size_t vl;
	unsigned fl;
	int known;
	for (size_t k = 0; k < bs_record_count(d); k++) {
		assert_int_equal(t_rec_field_at(d, k, &name, &v, &vl, &fl, &known), BS_OK);
		assert_true(known);
		if (!strcmp(name, "rwi"))
			assert_memory_equal(v, "\x04\x08\xff\xff\xff\xff\xff\xff\xff\xfe", 10);
		if (!strcmp(name, "i"))
			assert_memory_equal(v, "\x02\x02\x01\x2c", 4);
		if (!strcmp(name, "f"))
			assert_int_equal(vl, 0);
		if (!strcmp(name, "i") || !strcmp(name, "f"))
			assert_int_equal(fl, BS_ATTR_MANDATORY);
	}
	free(der);
	free(der2);
	bs_record_free(r);
	bs_record_free(d);
}

static void test_record_defaults_and_types(void **state)
{
	(void)state;
	bs_record *r = sample();
	int64_t i;
	int b;
	char *s;
	const uint8_t *p;
	size_t pl;
	assert_int_equal(t_rec_get_int(r, "missing", 42, &i), BS_OK);
	assert_int_equal(i, 42);
	assert_int_equal(t_rec_get_bool(r, "missing", 1, &b), BS_OK);
	assert_int_equal(b, 1);
	assert_int_equal(t_rec_get_str(r, "missing", "dflt", &s), BS_OK);
	assert_string_equal(s, "dflt");
	free(s);
	assert_int_equal(t_rec_get_str(r, "missing", NULL, &s), BS_OK);
	assert_null(s);
	assert_int_equal(t_rec_get_bytes(r, "missing", (const uint8_t *)"x", 1, &p, &pl), BS_OK);
	assert_int_equal(pl, 1);
	assert_int_equal(t_rec_get_int(r, "s", 0, &i), BS_ETYPE);
	assert_non_null(strstr(last_error(), "'s'"));
	assert_int_equal(t_rec_get_bool(r, "i", 0, &b), BS_ETYPE);
	assert_int_equal(t_rec_get_str(r, "i", NULL, &s), BS_ETYPE);
	assert_int_equal(t_rec_get_int(r, "f", 0, &i), BS_ETYPE);
	assert_int_equal(bs_record_set_int(r, "bad name", 0, 1), BS_EINVAL);
	assert_int_equal(bs_record_set_str(r, "x", 0, "\xff"), BS_EINVAL);
	/* Replacing a field keeps one copy. */
	size_t n = bs_record_count(r);
	assert_int_equal(bs_record_set_int(r, "i", 0, 1), BS_OK);
	assert_int_equal(bs_record_count(r), n);
	assert_int_equal(bs_record_remove(r, "i"), BS_OK);
	assert_int_equal(bs_record_remove(r, "i"), BS_ENOENT);
	bs_record_free(r);
}

static void test_record_empty(void **state)
{
	(void)state;
	bs_record *r;
	assert_int_equal(bs_record_decode(NULL, 0, NULL, 0, &r), BS_OK);
	assert_int_equal(bs_record_count(r), 0);
	size_t len;
	uint8_t *der = encode(r, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(der, "\x30\x04\x31\x00\x31\x00", 6);
	free(der);
	bs_record_free(r);
}

static void test_record_unknown_optional_kept_byte_for_byte(void **state)
{
	(void)state;
	/* A newer writer's record: a, plus optional c with an odd value. */
	bs_record *newer, *old, *w;
	assert_int_equal(bs_record_new(&newer), BS_OK);
	assert_int_equal(bs_record_set_int(newer, "a", BS_ATTR_MANDATORY, 1), BS_OK);
	assert_int_equal(bs_record_set_bytes(newer, "c", 0, "\x30\x03\x02\x01\x05", 5), BS_OK);
	assert_int_equal(bs_record_set_flag(newer, "c2", 0), BS_OK);
	size_t len;
	uint8_t *der = encode(newer, &len);
	const char *const known[] = {"a", "b"};
	assert_int_equal(bs_record_decode(der, len, known, 2, &old), BS_OK);
	int unknown = 0;
	for (size_t k = 0; k < bs_record_count(old); k++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		int kn;
		t_rec_field_at(old, k, &name, &v, &vl, NULL, &kn);
		unknown += !kn;
	}
	assert_int_equal(unknown, 2);
	/* The older device writes its own fields and keeps the unknown ones. */
	assert_int_equal(bs_record_new(&w), BS_OK);
	assert_int_equal(bs_record_set_int(w, "a", BS_ATTR_MANDATORY, 1), BS_OK);
	assert_int_equal(bs_record_keep_unknown(w, old), BS_OK);
	size_t len2;
	uint8_t *der2 = encode(w, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(der, der2, len);
	free(der);
	free(der2);
	bs_record_free(newer);
	bs_record_free(old);
	bs_record_free(w);
}

static void test_record_unknown_mandatory_refused_with_name(void **state)
{
	(void)state;
	bs_record *r, *d = (bs_record *)1;
	assert_int_equal(bs_record_new(&r), BS_OK);
	assert_int_equal(bs_record_set_int(r, "a", 0, 1), BS_OK);
	assert_int_equal(bs_record_set_int(r, "layout", BS_ATTR_MANDATORY, 3), BS_OK);
	size_t len;
	uint8_t *der = encode(r, &len);
	const char *const known[] = {"a"};
	d = NULL; /* outputs are untouched on failure */
	assert_int_equal(bs_record_decode(der, len, known, 1, &d), BS_EUNSUPPORTED);
	assert_null(d);
	assert_non_null(strstr(last_error(), "unknown mandatory field 'layout'"));
	free(der);
	bs_record_free(r);
}

static void test_record_rejects_non_canonical(void **state)
{
	(void)state;
	/* Unsorted SET, duplicate names across sets, trailing octets, BER lengths. */
	static const uint8_t unsorted[] = {0x30, 0x0a, 0x31, 0x00, 0x31, 0x06,
					   0x16, 0x01, 'b', 0x16, 0x01, 'a'};
	static const uint8_t dup[] = {0x30, 0x0a, 0x31, 0x03, 0x16, 0x01, 'a',
				      0x31, 0x03, 0x16, 0x01, 'a'};
	static const uint8_t trailing[] = {0x30, 0x04, 0x31, 0x00, 0x31, 0x00, 0x00};
	static const uint8_t longlen[] = {0x30, 0x81, 0x04, 0x31, 0x00, 0x31, 0x00};
	static const uint8_t notseq[] = {0x31, 0x04, 0x31, 0x00, 0x31, 0x00};
	static const uint8_t oneset[] = {0x30, 0x02, 0x31, 0x00};
	const struct {
		const uint8_t *p;
		size_t n;
	} bad[] = {{unsorted, sizeof unsorted}, {dup, sizeof dup}, {trailing, sizeof trailing},
		   {longlen, sizeof longlen}, {notseq, sizeof notseq}, {oneset, sizeof oneset}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		bs_record *r;
		assert_int_equal(bs_record_decode(bad[i].p, bad[i].n, NULL, 0, &r), BS_ECORRUPT);
	}
}

/* Any accepted input must re-encode to itself; nothing may crash. */
static void decode_any(const uint8_t *p, size_t n)
{
	bs_record *r = NULL;
	int rc = bs_record_decode(p, n, all_fields, 9, &r);
	if (rc == BS_OK) {
		size_t l;
		uint8_t *der = encode(r, &l);
		if (n) {
			assert_int_equal(l, n);
			assert_memory_equal(der, p, n);
		}
		free(der);
		bs_record_free(r);
	} else {
		assert_null(r);
		assert_true(rc == BS_ECORRUPT || rc == BS_EUNSUPPORTED || rc == BS_ELIMIT);
	}
}

static void test_record_hostile(void **state)
{
	(void)state;
	bs_record *r = sample();
	size_t len;
	uint8_t *der = encode(r, &len);
	bs_record_free(r);
	uint8_t *copy = malloc(len);
	for (size_t cut = 0; cut < len; cut++) {
		/* A fresh allocation of exactly CUT octets: ASan sees overreads. */
		uint8_t *t = malloc(cut ? cut : 1);
		memcpy(t, der, cut);
		decode_any(t, cut);
		free(t);
	}
	for (size_t bit = 0; bit < len * 8; bit++) {
		memcpy(copy, der, len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		decode_any(copy, len);
	}
	uint64_t seed = 7;
	int rounds = t_quick() ? 2000 : 20000;
	for (int k = 0; k < rounds; k++) {
		memcpy(copy, der, len);
		for (int j = 0; j < 3; j++)
			copy[t_rand(&seed) % len] = (uint8_t)t_rand(&seed);
		decode_any(copy, len);
	}
	free(copy);
	free(der);
}

/* ---- the device ---------------------------------------------------------- */

static void test_device_put_get(void **state)
{
	(void)state;
	bs_image *img = mem_image();
	bs_device *d;
	assert_int_equal(bs_device_open(img, "t.dev", "x", &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 16, .flags = 0}, &d), BS_ENOENT);
	assert_int_equal(bs_device_open(img, "t.dev", "x", &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 16, .flags = BS_DEVICE_CREATE}, &d), BS_OK);
	size_t len = 99;
	char buf[64];
	assert_int_equal(bs_device_get(d, buf, sizeof buf, &len), BS_OK);
	assert_int_equal(len, 0);
	assert_int_equal(bs_device_put(d, "hello", 5), BS_OK);
	assert_int_equal(bs_device_get(d, buf, 2, &len), BS_ERANGE);
	assert_int_equal(len, 5);
	assert_int_equal(bs_device_get(d, buf, sizeof buf, &len), BS_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	/* Larger than the capacity: the entry grows. */
	char big[1000];
	t_fill(big, sizeof big, 3);
	assert_int_equal(bs_device_put(d, big, sizeof big), BS_OK);
	void *p;
	assert_int_equal(bs_device_get_alloc(d, &p, &len), BS_OK);
	assert_int_equal(len, sizeof big);
	assert_memory_equal(p, big, len);
	free(p);
	bs_device_close(d);
	bs_device *d2;
	assert_int_equal(bs_device_open(img, "t.dev", "x", &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 0, .flags = BS_DEVICE_CREATE | BS_DEVICE_EXCL}, &d2),
			 BS_EEXIST);
	bs_image_close(img);
}

static void test_device_attributes(void **state)
{
	(void)state;
	bs_image *img = mem_image();
	bs_device *d;
	assert_int_equal(bs_device_open(img, "t.dev", NULL, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 16, .flags = BS_DEVICE_CREATE}, &d), BS_OK);
	assert_int_equal(bs_device_put(d, "data", 4), BS_OK);
	assert_int_equal(bs_device_attr_set_int(d, "ro.int", 0, -5), BS_OK);
	assert_int_equal(bs_device_attr_set_uint(d, "ro.u64", 0, UINT64_MAX), BS_OK);
	assert_int_equal(bs_device_attr_set_bool(d, "ro.bool", 0, 1), BS_OK);
	assert_int_equal(bs_device_attr_set_str(d, "ro.str", 0, "abc"), BS_OK);
	assert_int_equal(bs_device_attr_set_bytes(d, "ro.bytes", 0, "\1\2", 2), BS_OK);
	assert_int_equal(bs_device_attr_set_int(d, "rw.int", BS_ATTR_RW, 7), BS_OK);
	assert_int_equal(bs_device_attr_set_str(d, "rw.str", BS_ATTR_RW, "longer"), BS_OK);
	assert_int_equal(bs_device_attr_set_bool(d, "rw.bool", BS_ATTR_RW, 0), BS_OK);
	int64_t i;
	uint64_t u;
	int b;
	char *s;
	const uint8_t *p;
	size_t pl;
	unsigned fl;
	assert_int_equal(t_dev_get_int(d, "ro.int", &i, &fl), BS_OK);
	assert_int_equal(i, -5);
	assert_int_equal(fl, 0);
	assert_int_equal(t_dev_get_uint(d, "ro.u64", &u, NULL), BS_OK);
	assert_true(u == UINT64_MAX);
	assert_int_equal(t_dev_get_int(d, "ro.u64", &i, NULL), BS_ETYPE);
	assert_int_equal(t_dev_get_bool(d, "ro.bool", &b, NULL), BS_OK);
	assert_int_equal(b, 1);
	assert_int_equal(t_dev_get_str(d, "ro.str", &s, NULL), BS_OK);
	assert_string_equal(s, "abc");
	free(s);
	assert_int_equal(t_dev_get_bytes(d, "ro.bytes", &p, &pl, NULL), BS_OK);
	assert_int_equal(pl, 2);
	assert_int_equal(t_dev_get_int(d, "rw.int", &i, &fl), BS_OK);
	assert_int_equal(i, 7);
	assert_int_equal(fl, BS_ATTR_RW);
	/* Read-only means written once. */
	assert_int_equal(bs_device_attr_set_int(d, "ro.int", 0, 1), BS_ERDONLY);
	assert_int_equal(bs_device_attr_set_int(d, "ro.int", BS_ATTR_RW, 1), BS_ERDONLY);
	/* Read-write keeps its size: a shorter string is padded, a longer refused. */
	assert_int_equal(bs_device_attr_set_int(d, "rw.int", BS_ATTR_RW, 8), BS_OK);
	assert_int_equal(bs_device_attr_set_str(d, "rw.str", BS_ATTR_RW, "ab"), BS_OK);
	assert_int_equal(t_dev_get_str(d, "rw.str", &s, NULL), BS_OK);
	assert_string_equal(s, "ab");
	free(s);
	assert_int_equal(bs_device_attr_set_str(d, "rw.str", BS_ATTR_RW, "much longer"), BS_ELIMIT);
	assert_int_equal(bs_device_attr_set_bool(d, "rw.bool", BS_ATTR_RW, 1), BS_OK);
	assert_int_equal(t_dev_get_bool(d, "rw.bool", &b, NULL), BS_OK);
	assert_int_equal(b, 1);
	assert_int_equal(bs_device_attr_remove(d, "ro.int"), BS_OK);
	assert_int_equal(t_dev_get_int(d, "ro.int", &i, NULL), BS_ENOENT);
	assert_int_equal(bs_device_attr_set_int(d, "bs.x", 0, 1), BS_EINVAL);
	assert_int_equal(bs_device_attr_set_int(d, "nvram.x", 0, 1), BS_EINVAL);
	/* The data survived every rewrite. */
	char buf[8];
	size_t len;
	assert_int_equal(bs_device_get(d, buf, sizeof buf, &len), BS_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "data", 4);
	bs_device_close(d);
	bs_image_close(img);
}

static void test_device_mandatory_attribute(void **state)
{
	(void)state;
	bs_image *img = mem_image();
	bs_device *d;
	assert_int_equal(bs_device_open(img, "t.dev", "m", &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 16, .flags = BS_DEVICE_CREATE}, &d), BS_OK);
	assert_int_equal(bs_device_attr_set_int(d, "layout", BS_ATTR_MANDATORY, 2), BS_OK);
	/* The device that set it keeps working, across a growing put too. */
	char big[300] = {1};
	assert_int_equal(bs_device_put(d, big, sizeof big), BS_OK);
	bs_device_close(d);
	/* A reader that does not know it refuses, naming it. */
	assert_int_equal(bs_device_open(img, "t.dev", "m", &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 16, .flags = 0}, &d), BS_EUNSUPPORTED);
	assert_non_null(strstr(last_error(), "'layout'"));
	const char *const known[] = {"layout"};
	struct bs_device_opts o = {.version = BS_DEVICE_OPTS_VERSION, .known_attrs = known, .nknown_attrs = 1};
	assert_int_equal(bs_device_open(img, "t.dev", "m", &o, &d), BS_OK);
	size_t len;
	void *p;
	assert_int_equal(bs_device_get_alloc(d, &p, &len), BS_OK);
	assert_int_equal(len, sizeof big);
	free(p);
	assert_int_equal(bs_device_attr_set_int(d, "other", 0, 1), BS_OK);
	assert_int_equal(bs_device_put(d, "x", 1), BS_OK);
	bs_device_close(d);
	bs_image_close(img);
}

static void test_device_records_merge_and_refuse(void **state)
{
	(void)state;
	bs_image *img = mem_image();
	bs_device *d;
	assert_int_equal(bs_device_open(img, "t.rec", NULL, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 64, .flags = BS_DEVICE_CREATE}, &d), BS_OK);
	/* A newer device stored a, c (optional). */
	bs_record *r;
	const char *const newer[] = {"a", "c"};
	assert_int_equal(bs_record_new(&r), BS_OK);
	assert_int_equal(bs_record_set_int(r, "a", 0, 1), BS_OK);
	assert_int_equal(bs_record_set_str(r, "c", 0, "keep me"), BS_OK);
	assert_int_equal(bs_device_put_record(d, r, newer, 2), BS_OK);
	bs_record_free(r);
	/* An older one knows only a, and writes a without reading first. */
	const char *const older[] = {"a"};
	assert_int_equal(bs_record_new(&r), BS_OK);
	assert_int_equal(bs_record_set_int(r, "a", 0, 2), BS_OK);
	assert_int_equal(bs_device_put_record(d, r, older, 1), BS_OK);
	bs_record_free(r);
	assert_int_equal(bs_device_get_record(d, newer, 2, &r), BS_OK);
	char *s;
	int64_t a;
	assert_int_equal(t_rec_get_str(r, "c", NULL, &s), BS_OK);
	assert_string_equal(s, "keep me");
	free(s);
	assert_int_equal(t_rec_get_int(r, "a", 0, &a), BS_OK);
	assert_int_equal(a, 2);
	bs_record_free(r);
	/* A mandatory field the older one does not know: nothing is written. */
	assert_int_equal(bs_record_new(&r), BS_OK);
	assert_int_equal(bs_record_set_int(r, "d", BS_ATTR_MANDATORY, 4), BS_OK);
	const char *const newest[] = {"a", "c", "d"};
	assert_int_equal(bs_device_put_record(d, r, newest, 3), BS_OK);
	bs_record_free(r);
	void *before, *after;
	size_t bl, al;
	assert_int_equal(bs_device_get_alloc(d, &before, &bl), BS_OK);
	assert_int_equal(bs_record_new(&r), BS_OK);
	assert_int_equal(bs_device_put_record(d, r, older, 1), BS_EUNSUPPORTED);
	assert_non_null(strstr(last_error(), "unknown mandatory field 'd'"));
	bs_record_free(r);
	r = NULL; /* outputs are untouched on failure */
	assert_int_equal(bs_device_get_record(d, older, 1, &r), BS_EUNSUPPORTED);
	assert_null(r);
	assert_int_equal(bs_device_get_alloc(d, &after, &al), BS_OK);
	assert_int_equal(bl, al);
	assert_memory_equal(before, after, bl);
	free(before);
	free(after);
	/* Data that is not a record is reported, not overwritten. */
	assert_int_equal(bs_device_put(d, "junk", 4), BS_OK);
	assert_int_equal(bs_record_new(&r), BS_OK);
	assert_int_equal(bs_device_put_record(d, r, older, 1), BS_ECORRUPT);
	bs_record_free(r);
	bs_device_close(d);
	bs_image_close(img);
}

static void test_entry_types(void **state)
{
	(void)state;
	bs_image *img = mem_image();
	bs_device *d;
	const char *const v1[] = {"fam.main"};
	assert_int_equal(bs_device_open(img, "fam.main", NULL, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 8, .flags = BS_DEVICE_CREATE}, &d), BS_OK);
	bs_device_close(d);
	assert_int_equal(bs_device_open(img, "fam.extra", NULL, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 8, .flags = BS_DEVICE_CREATE}, &d), BS_OK);
	bs_device_close(d);
	assert_int_equal(bs_device_open(img, "other.x", NULL, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 8, .flags = BS_DEVICE_CREATE | BS_DEVICE_MANDATORY}, &d), BS_OK);
	bs_device_close(d);
	assert_int_equal(bs_device_check_types(img, "fam.", v1, 1), BS_OK);
	assert_int_equal(bs_device_open(img, "fam.keys", NULL, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 8, .flags = BS_DEVICE_CREATE | BS_DEVICE_MANDATORY}, &d), BS_OK);
	assert_int_equal(bs_device_put(d, "k", 1), BS_OK);
	bs_device_close(d);
	assert_int_equal(bs_device_check_types(img, "fam.", v1, 1), BS_EUNSUPPORTED);
	assert_non_null(strstr(last_error(), "unknown mandatory entry type 'fam.keys'"));
	const char *const v2[] = {"fam.main", "fam.keys"};
	assert_int_equal(bs_device_check_types(img, "fam.", v2, 2), BS_OK);
	/* Who opens a mandatory type by name knows it. */
	assert_int_equal(bs_device_open(img, "fam.keys", NULL, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 0, .flags = 0}, &d), BS_OK);
	bs_device_close(d);
	bs_image_close(img);
}

/* ---- UEFI varstore files ---------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*len);
	assert_int_equal(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

static void test_uefi_round_trip_and_hostile(void **state)
{
	(void)state;
	size_t len;
	uint8_t *fd = read_file("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", &len);
	if (!fd) {
		printf("skipped: /usr/share/OVMF/OVMF_VARS_4M.ms.fd missing (ovmf)\n");
		return;
	}
	struct bs_uefi_store *st, *st2;
	assert_int_equal(bs_uefi_parse(fd, len, &st), BS_OK);
	assert_true(st->nvars > 10);
	uint8_t *out;
	size_t ol;
	assert_int_equal(bs_uefi_build(st->vars, st->nvars, fd, len, &out, &ol), BS_OK);
	assert_int_equal(ol, len);
	assert_int_equal(bs_uefi_parse(out, ol, &st2), BS_OK);
	assert_int_equal(st->nvars, st2->nvars);
	for (size_t i = 0; i < st->nvars; i++) {
		assert_string_equal(st->vars[i].name, st2->vars[i].name);
		assert_memory_equal(st->vars[i].guid, st2->vars[i].guid, 16);
		assert_int_equal(st->vars[i].attributes, st2->vars[i].attributes);
		assert_int_equal(st->vars[i].data_len, st2->vars[i].data_len);
		assert_memory_equal(st->vars[i].data, st2->vars[i].data, st->vars[i].data_len);
	}
	/* Through an image too. */
	bs_image *img = mem_image();
	size_t n;
	assert_int_equal(bs_uefi_import(img, fd, len, &n), BS_OK);
	assert_int_equal(n, st->nvars);
	uint8_t *out2;
	size_t ol2;
	assert_int_equal(bs_uefi_export(img, NULL, 0, &out2, &ol2), BS_OK);
	assert_int_equal(ol2, ol);
	assert_memory_equal(out, out2, ol);
	bs_image_close(img);
	free(out2);
	bs_uefi_store_free(st2);
	/* Hostile: truncations and bit flips over the headers and variables. */
	size_t span = 0x5a00 < len ? 0x5a00 : len;
	size_t step = t_quick() ? 97 : 13;
	for (size_t cut = 0; cut < span; cut += step) {
		uint8_t *t = malloc(cut ? cut : 1);
		memcpy(t, fd, cut);
		if (bs_uefi_parse(t, cut, &st2) == BS_OK)
			bs_uefi_store_free(st2);
		free(t);
	}
	uint64_t seed = 11;
	int rounds = t_quick() ? 300 : 3000;
	for (int k = 0; k < rounds; k++) {
		memcpy(out, fd, len);
		size_t at = (size_t)(t_rand(&seed) % span);
		out[at] ^= (uint8_t)(1u << (t_rand(&seed) % 8));
		if (bs_uefi_parse(out, len, &st2) == BS_OK)
			bs_uefi_store_free(st2);
	}
	bs_uefi_store_free(st);
	free(out);
	free(fd);
}

static void test_uefi_keys(void **state)
{
	(void)state;
	uint8_t g[16];
	const char *name;
	char s[37];
	assert_int_equal(bs_uefi_key_parse("8BE4DF61-93CA-11D2-AA0D-00E098032B8C:Boot0000", g,
					      &name), BS_OK);
	assert_string_equal(name, "Boot0000");
	assert_int_equal(g[0], 0x61);
	bs_uefi_guid_str(g, s);
	assert_string_equal(s, "8be4df61-93ca-11d2-aa0d-00e098032b8c");
	assert_int_equal(bs_uefi_key_parse("8be4df61-93ca-11d2-aa0d-00e098032b8c:", g, &name),
			 BS_EINVAL);
	assert_int_equal(bs_uefi_key_parse("8be4df61x93ca-11d2-aa0d-00e098032b8c:x", g, &name),
			 BS_EINVAL);
	assert_int_equal(bs_uefi_key_parse("short:x", g, &name), BS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_defaults_and_types),
		cmocka_unit_test(test_record_empty),
		cmocka_unit_test(test_record_unknown_optional_kept_byte_for_byte),
		cmocka_unit_test(test_record_unknown_mandatory_refused_with_name),
		cmocka_unit_test(test_record_rejects_non_canonical),
		cmocka_unit_test(test_record_hostile),
		cmocka_unit_test(test_device_put_get),
		cmocka_unit_test(test_device_attributes),
		cmocka_unit_test(test_device_mandatory_attribute),
		cmocka_unit_test(test_device_records_merge_and_refuse),
		cmocka_unit_test(test_entry_types),
		cmocka_unit_test(test_uefi_round_trip_and_hostile),
		cmocka_unit_test(test_uefi_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
