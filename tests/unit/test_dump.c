/* test_dump.c - bs_image_dump(): every element listed with its offset, unknown
 * content shown rather than dropped, slot states, copies hidden by an
 * interrupted rewrite, and no crash or leak on damaged images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Dumps IMG into a malloc'ed NUL-terminated string. */
static char *dump_string(bs_image *img)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	int rc = bs_image_dump(img, f);
	fclose(f);
	assert_int_equal(rc, BS_OK);
	return text;
}

/* The line for offset OFF contains TEXT. */
static void assert_line(const char *dump, unsigned long off, const char *text)
{
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%10lu  ", off);
	for (const char *l = dump; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *end = strchr(l, '\n');
		size_t n = end ? (size_t)(end - l) : strlen(l);
		if (!strncmp(l, prefix, strlen(prefix)) && memmem(l, n, text, strlen(text)))
			return;
	}
	fail_msg("no line at offset %lu with '%s' in:\n%s", off, text, dump);
}

static void dump_lists_every_element(void **state)
{
	(void)state;
	struct buf img = {0}, opt = {0}, v = {0};
	t_image_begin(&img);
	size_t raw_off = img.len;
	t_raw_entry(&img, "eeprom", "rom", "hello");
	size_t free_off = img.len;
	buf_bytes(&img, 5, 0x04, 0x03, 0, 0, 0);
	size_t slot_off = img.len;
	t_slotted_entry(&img, "vtpm", "permall", 8, "abc", 3);
	/* Unknown optional attributes: a flag, a nested value, a context tag. */
	size_t odd_off = img.len;
	t_attr_flag(&opt, "x.flag");
	buf_bytes(&v, 8, 0x30, 0x06, 0x02, 0x01, 0x07, 0x01, 0x01, 0xff);
	t_attr_val(&opt, "x.nested", v.p, v.len);
	buf_reset(&v);
	buf_bytes(&v, 4, 0x82, 0x02, 0xbe, 0xef);
	t_attr_val(&opt, "x.ctx", v.p, v.len);
	struct t_entry e = {.type = "odd", .opt = opt.p, .opt_len = opt.len,
			    .data = (const uint8_t *)"z", .data_len = 1};
	t_build_entry(&img, &e);
	size_t eoc = img.len;
	t_image_end(&img);

	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	char *d = dump_string(im);
	assert_line(d, 0, "31 80  directory: SET, indefinite length");
	assert_line(d, 2, "Entry 'bs.image'");
	assert_line(d, raw_off, "Entry 'eeprom'/'rom': SEQUENCE");
	assert_line(d, raw_off + 2 + 2, "type: IA5String \"eeprom\"");
	assert_line(d, free_off, "free space: OCTET STRING, 3 octets");
	assert_line(d, slot_off, "Entry 'vtpm'/'permall'");
	assert_line(d, odd_off, "Entry 'odd'");
	assert_line(d, eoc, "end-of-contents of the directory");
	assert_non_null(strstr(d, "raw data (no slots), 5 octets: 68656c6c6f"));
	assert_non_null(strstr(d, "slot 0: generation 1, length 3 of 8, crc32c ok (current)"));
	assert_non_null(strstr(d, "slot 1: unused (generation 0)"));
	assert_non_null(strstr(d, "flag attribute: IA5String \"x.flag\""));
	assert_non_null(strstr(d, "'x.nested' = [tag 0x30, 6 octets] 0201070101ff"));
	assert_non_null(strstr(d, "value: SEQUENCE, 6 octets"));
	assert_non_null(strstr(d, "02 01  INTEGER 7"));
	assert_non_null(strstr(d, "BOOLEAN TRUE"));
	assert_non_null(strstr(d, "value: [tag 0x82, 2 octets] beef"));
	assert_non_null(strstr(d, "name: UTF8String \"permall\""));
	free(d);
	bs_image_close(im);
	buf_free(&img);
	buf_free(&opt);
	buf_free(&v);
}

static void dump_shows_refused_entries_whole(void **state)
{
	(void)state;
	struct buf img = {0}, mand = {0}, v = {0};
	t_image_begin(&img);
	buf_bytes(&v, 3, 0x02, 0x01, 0x02);
	t_attr_val(&mand, "x.future", v.p, v.len);
	size_t off = img.len;
	struct t_entry e = {.type = "future", .mand = mand.p, .mand_len = mand.len,
			    .data = (const uint8_t *)"secret", .data_len = 6};
	t_build_entry(&img, &e);
	t_image_end(&img);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	char *d = dump_string(im);
	assert_line(d, off, "Entry 'future', REFUSED: unknown mandatory attribute 'x.future'");
	assert_non_null(strstr(d, "'x.future' = INTEGER 2"));
	assert_non_null(strstr(d, "(entry refused: data not interpreted)"));
	free(d);
	bs_image_close(im);
	buf_free(&img);
	buf_free(&mand);
	buf_free(&v);
}

static void dump_shows_copy_hidden_by_interrupted_rewrite(void **state)
{
	(void)state;
	struct buf img = {0}, opt = {0}, v = {0};
	t_image_begin(&img);
	size_t old_off = img.len;
	t_raw_entry(&img, "dev", NULL, "old");
	uint8_t iv[BS_VALUE_MAX_INT];
	size_t il = t_der_int((int64_t)old_off, iv, sizeof iv);
	t_attr_val(&opt, "bs.supersedes", iv, il);
	size_t new_off = img.len;
	struct t_entry e = {.type = "dev", .opt = opt.p, .opt_len = opt.len,
			    .data = (const uint8_t *)"new", .data_len = 3};
	t_build_entry(&img, &e);
	t_image_end(&img);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 2);
	char *d = dump_string(im);
	assert_line(d, old_off, "Entry (replaced by a later rewrite");
	assert_line(d, new_off, "Entry 'dev'");
	assert_non_null(strstr(d, "(copy replaced by a later rewrite: data not interpreted)"));
	free(d);
	bs_image_close(im);
	buf_free(&img);
	buf_free(&opt);
	buf_free(&v);
}

static void dump_shows_failing_slot(void **state)
{
	(void)state;
	struct buf img = {0};
	t_image_begin(&img);
	t_slotted_entry(&img, "vtpm", NULL, 16, "0123456789", 10);
	t_image_end(&img);
	/* The data "0123456789" sits in slot 0: flip one of its bits. */
	uint8_t *p = memmem(img.p, img.len, "0123456789", 10);
	assert_non_null(p);
	p[4] ^= 0x20;
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	char *d = dump_string(im);
	assert_non_null(strstr(d, "slot 0: generation 1, length 10 of 16, crc32c FAILS"));
	assert_non_null(strstr(d, "no slot holds a valid value"));
	free(d);
	bs_image_close(im);
	buf_free(&img);
}

/* Random damage: whatever opens can be dumped, without crash or leak. */
static void dump_survives_damaged_images(void **state)
{
	(void)state;
	struct buf img = {0}, opt = {0}, v = {0};
	t_image_begin(&img);
	t_raw_entry(&img, "eeprom", "rom", "hello");
	buf_bytes(&img, 4, 0x04, 0x02, 0, 0);
	t_slotted_entry(&img, "vtpm", "permall", 24, "state", 5);
	buf_bytes(&v, 8, 0x30, 0x06, 0x02, 0x01, 0x07, 0x01, 0x01, 0xff);
	t_attr_val(&opt, "x.nested", v.p, v.len);
	struct t_entry e = {.type = "odd", .opt = opt.p, .opt_len = opt.len,
			    .data = (const uint8_t *)"z", .data_len = 1, .name = "n"};
	t_build_entry(&img, &e);
	t_image_end(&img);
	uint64_t rs = 42;
	int rounds = t_quick() ? 300 : 3000, opened = 0;
	uint8_t *copy = malloc(img.len);
	assert_non_null(copy);
	for (int r = 0; r < rounds; r++) {
		memcpy(copy, img.p, img.len);
		int flips = 1 + (int)(t_rand(&rs) % 3);
		for (int k = 0; k < flips; k++)
			copy[2 + t_rand(&rs) % (img.len - 2)] ^= (uint8_t)(1u << (t_rand(&rs) % 8));
		bs_image *im;
		if (t_open_mem(copy, img.len, BS_OPEN_RDONLY, &im, NULL) != BS_OK)
			continue;
		opened++;
		FILE *f = fopen("/dev/null", "w");
		assert_non_null(f);
		int rc = bs_image_dump(im, f);
		fclose(f);
		assert_true(rc == BS_OK || rc == BS_ECORRUPT);
		bs_image_close(im);
	}
	assert_true(opened > 0);
	free(copy);
	buf_free(&img);
	buf_free(&opt);
	buf_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dump_lists_every_element),
		cmocka_unit_test(dump_shows_refused_entries_whole),
		cmocka_unit_test(dump_shows_copy_hidden_by_interrupted_rewrite),
		cmocka_unit_test(dump_shows_failing_slot),
		cmocka_unit_test(dump_survives_damaged_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
