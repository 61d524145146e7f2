/* test_update.c - bs_entry_update(): data and attributes replaced together,
 * as one crash-safe rewrite. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static bs_image *fresh(void)
{
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, NULL), BS_OK);
	return im;
}

static void test_update_sets_data_and_attributes(void **state)
{
	(void)state;
	bs_image *im = fresh();
	bs_entry *e;
	uint8_t v1[BS_VALUE_MAX_INT], v2[BS_VALUE_MAX_INT];
	size_t l1 = t_der_int(1, v1, sizeof v1), l2 = t_der_int(2, v2, sizeof v2);
	struct bs_attr keep = {BS_ATTR_VERSION, "keep", 0, NULL, 0};
	struct bs_attr a1 = {BS_ATTR_VERSION, "rev", 0, v1, l1};
	struct bs_attr first[2] = {keep, a1};
	assert_int_equal(bs_entry_create(im, "dev", "x", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = first, .nattrs = 2}, "old", 3, &e), BS_OK);
	struct bs_attr a2[2] = {{BS_ATTR_VERSION, "rev", 0, v2, l2}, {BS_ATTR_VERSION, "added", 0, NULL, 0}};
	assert_int_equal(bs_entry_update(e, &(struct bs_entry_update){.version = BS_ENTRY_UPDATE_VERSION, .attrs = a2, .nattrs = 2, .data = "new data", .len = 8}), BS_OK);
	char buf[16];
	size_t len;
	assert_int_equal(bs_entry_read(e, buf, sizeof buf, &len), BS_OK);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "new data", 8);
	int64_t rev;
	assert_int_equal(bs_attr_get_int(e, "rev", &rev), BS_OK);
	assert_int_equal(rev, 2);
	const uint8_t *v;
	size_t vl;
	assert_int_equal(bs_attr_get(e, "keep", &v, &vl, NULL), BS_OK); /* untouched */
	assert_int_equal(bs_attr_get(e, "added", &v, &vl, NULL), BS_OK);
	/* Growing past the capacity works the same way. */
	char big[100];
	memset(big, 'b', sizeof big);
	assert_int_equal(bs_entry_update(e, &(struct bs_entry_update){.version = BS_ENTRY_UPDATE_VERSION, .attrs = NULL, .nattrs = 0, .data = big, .len = sizeof big}), BS_OK);
	assert_true(bs_entry_capacity(e) >= sizeof big);
	bs_image_close(im);
}

static void test_update_refuses_reserved_names(void **state)
{
	(void)state;
	bs_image *im = fresh();
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "dev", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "a", 1, &e), BS_OK);
	struct bs_attr bad = {BS_ATTR_VERSION, "bs.slots", 0, NULL, 0};
	assert_int_equal(bs_entry_update(e, &(struct bs_entry_update){.version = BS_ENTRY_UPDATE_VERSION, .attrs = &bad, .nattrs = 1, .data = "b", .len = 1}), BS_EINVAL);
	char buf[4];
	size_t len;
	assert_int_equal(bs_entry_read(e, buf, sizeof buf, &len), BS_OK);
	assert_int_equal(len, 1);
	assert_int_equal(buf[0], 'a');
	bs_image_close(im);
}

/* Crash after every write of an update: the entry reads entirely old or
 * entirely new (data and attribute together). */
static void test_update_crash_is_atomic(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *im;
	assert_int_equal(bs_backend_mem(NULL, 0, &be), BS_OK);
	assert_int_equal(bs_image_open_backend(be, "base", BS_OPEN_CREATE, &im), BS_OK);
	uint8_t v1[BS_VALUE_MAX_INT], v2[BS_VALUE_MAX_INT];
	size_t l1 = t_der_int(1, v1, sizeof v1), l2 = t_der_int(2, v2, sizeof v2);
	struct bs_attr a1 = {BS_ATTR_VERSION, "rev", 0, v1, l1}, a2 = {BS_ATTR_VERSION, "rev", 0, v2, l2};
	assert_int_equal(bs_entry_create(im, "dev", "x", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = &a1, .nattrs = 1}, "one", 3, NULL), BS_OK);
	size_t blen;
	const uint8_t *b = t_mem_data(be, &blen);
	uint8_t *base = malloc(blen);
	assert_non_null(base);
	memcpy(base, b, blen);
	bs_image_close(im);
	unsigned points = 0;
	for (uint64_t n = 1;; n++) {
		struct fault_plan plan = {.crash_after = n, .tear_at = SIZE_MAX};
		struct bs_backend *fb;
		assert_int_equal(fault_backend_new(base, blen, &plan, &fb), BS_OK);
		assert_int_equal(bs_image_open_backend(fb, "crash", 0, &im), BS_OK);
		bs_entry *e;
		assert_int_equal(bs_entry_find(im, "dev", "x", &e), BS_OK);
		int rc = bs_entry_update(e, &(struct bs_entry_update){.version = BS_ENTRY_UPDATE_VERSION, .attrs = &a2, .nattrs = 1, .data = "two", .len = 3});
		struct fault_stats st;
		fault_backend_stats(fb, &st);
		size_t cl;
		const uint8_t *c = t_mem_data(fb, &cl);
		uint8_t *copy = malloc(cl);
		assert_non_null(copy);
		memcpy(copy, c, cl);
		bs_image_close(im);
		bs_image *re;
		assert_int_equal(t_open_mem(copy, cl, 0, &re, NULL), BS_OK);
		assert_int_equal(bs_entry_find(re, "dev", "x", &e), BS_OK);
		char buf[8];
		size_t len;
		int64_t rev;
		assert_int_equal(bs_entry_read(e, buf, sizeof buf, &len), BS_OK);
		assert_int_equal(bs_attr_get_int(e, "rev", &rev), BS_OK);
		assert_int_equal(len, 3);
		if (rev == 1)
			assert_memory_equal(buf, "one", 3);
		else
			assert_memory_equal(buf, "two", 3);
		assert_int_equal(bs_image_check(re, 1, NULL, NULL), BS_OK);
		bs_image_close(re);
		free(copy);
		points++;
		if (!st.crashed) {
			assert_int_equal(rc, BS_OK);
			break;
		}
	}
	assert_true(points > 3);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update_sets_data_and_attributes),
		cmocka_unit_test(test_update_refuses_reserved_names),
		cmocka_unit_test(test_update_crash_is_atomic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
