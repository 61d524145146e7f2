/* test_mandatory.c - entries given a mandatory attribute this library does
 * not know: stored as asked, refused at once and after reopening, kept byte
 * for byte, deletable, and never duplicated by the rewrite that adds one. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static bs_image *new_image(struct bs_backend **be)
{
	bs_image *img;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &img, be), BS_OK);
	return img;
}

static bs_image *reopen(struct bs_backend *be, bs_image *img, struct bs_backend **nbe)
{
	size_t len;
	uint8_t *copy = t_mem_copy(be, &len);
	bs_image_close(img);
	bs_image *n;
	assert_int_equal(t_open_mem(copy, len, 0, &n, nbe), BS_OK);
	free(copy);
	return n;
}

static void create_with_unknown_mandatory_attribute_is_refused(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = new_image(&be);
	uint8_t v[BS_VALUE_MAX_INT];
	size_t vl = t_der_int(2, v, sizeof v);
	struct bs_attr a = {BS_ATTR_VERSION, "x.future", BS_ATTR_MANDATORY, v, vl};
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = &a, .nattrs = 1};
	bs_entry *e;
	assert_int_equal(bs_entry_create(img, "dev", "n", &o, "data", 4, &e), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_EUNSUPPORTED);
	void *out;
	size_t len;
	assert_int_equal(bs_entry_read_alloc(e, &out, &len), BS_EUNSUPPORTED);
	assert_non_null(strstr(last_error(), "unknown mandatory attribute 'x.future'"));
	img = reopen(be, img, &be);
	assert_int_equal(bs_image_count(img, BS_ITER_LIBRARY), 2);
	assert_int_equal(bs_entry_find(img, "dev", "n", &e), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_EUNSUPPORTED);
	const uint8_t *val;
	size_t val_len;
	unsigned flags;
	assert_int_equal(bs_attr_get(e, "x.future", &val, &val_len, &flags), BS_OK);
	assert_int_equal(flags, BS_ATTR_MANDATORY);
	assert_memory_equal(val, v, vl);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	assert_int_equal(bs_image_check(img, 0, NULL, NULL), BS_OK);
	bs_image_close(img);
}

static void setting_unknown_mandatory_attribute_refuses_without_duplicate(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = new_image(&be);
	bs_entry *e;
	assert_int_equal(bs_entry_create(img, "dev", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "abc", 3, &e), BS_OK);
	assert_int_equal(bs_attr_set(e, "y.future", BS_ATTR_MANDATORY, NULL, 0), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_EUNSUPPORTED);
	assert_int_equal(bs_entry_write(e, "x", 1), BS_EUNSUPPORTED);
	img = reopen(be, img, &be);
	assert_int_equal(bs_image_count(img, BS_ITER_LIBRARY), 2);
	assert_int_equal(bs_entry_find(img, "dev", NULL, &e), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_EUNSUPPORTED);
	assert_non_null(strstr(bs_entry_status_message(e), "'y.future'"));
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_stat(img, &st), BS_OK);
	assert_int_equal(st.refused, 1);
	bs_image_close(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_with_unknown_mandatory_attribute_is_refused),
		cmocka_unit_test(setting_unknown_mandatory_attribute_refuses_without_duplicate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
