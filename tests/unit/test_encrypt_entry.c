/* test_encrypt_entry.c - bs_entry_encrypt(): a plaintext entry becomes an
 * encrypted one with its data, attributes, check and capacity; neither of
 * its two slot values is left in storage afterwards; power lost after any
 * write (whole or torn) leaves it plaintext and unchanged or encrypted and
 * readable, and once it reads encrypted no plaintext of it remains; the
 * refusals (no key, raw, read-only, the library's own entries). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const char old_value[] = "MARKER-OLD-7c1e plaintext of the older slot";
static const char new_value[] = "MARKER-NEW-93ab plaintext of the current slot";
static uint8_t key_bytes[32];

static bool contains(const uint8_t *p, size_t n, const char *s)
{
	return memmem(p, n, s, strlen(s)) != NULL;
}

static void load_key(bs_image *im)
{
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(key_bytes, 32, &k), BS_OK);
	assert_int_equal(bs_image_set_key(im, k), BS_OK);
	bs_key_free(k);
}

/* An encrypted image holding the plaintext entry vtpm/permall (two values
 * written: both slots hold plaintext), a raw entry and another entry. */
static uint8_t *base_image(size_t *len)
{
	bs_image *im;
	struct bs_backend *be;
	t_fill(key_bytes, sizeof key_bytes, 5);
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im, &be), BS_OK);
	uint8_t v[16];
	size_t vl = t_der_utf8("007", v, sizeof v);
	struct bs_attr a[] = {BS_ATTR("serial", 0, v, vl)};
	struct bs_entry_opts o = BS_ENTRY_OPTS_INIT;
	o.capacity = 4096;
	o.checksum = BS_CHECKSUM_SHA256;
	o.attrs = a;
	o.nattrs = 1;
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "vtpm", "permall", &o, old_value, sizeof old_value,
					 &e), BS_OK);
	assert_int_equal(bs_entry_write(e, new_value, sizeof new_value), BS_OK);
	struct bs_entry_opts raw = BS_ENTRY_OPTS_INIT;
	raw.flags = BS_ENTRY_RAW;
	assert_int_equal(bs_entry_create(im, "eeprom", NULL, &raw, "raw", 3, NULL), BS_OK);
	assert_int_equal(bs_entry_create(im, "other", NULL, NULL, "other", 5, NULL), BS_OK);
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(key_bytes, 32, &k), BS_OK);
	assert_int_equal(bs_image_init_encryption(im, k, NULL), BS_OK);
	bs_key_free(k);
	uint8_t *c = t_mem_copy(be, len);
	bs_image_close(im);
	assert_true(contains(c, *len, "MARKER-OLD"));
	assert_true(contains(c, *len, "MARKER-NEW"));
	return c;
}

static void test_converts_and_leaves_no_plaintext(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = base_image(&len);
	bs_image *im;
	struct bs_backend *be;
	assert_int_equal(t_open_mem(img, len, 0, &im, &be), BS_OK);
	load_key(im);
	bs_entry *e;
	assert_int_equal(bs_entry_find(im, "vtpm", "permall", &e), BS_OK);
	size_t cap = bs_entry_capacity(e);
	assert_false(bs_entry_is_encrypted(e));
	assert_int_equal(bs_entry_encrypt(e, BS_CIPHER_CHACHA20_POLY1305), BS_OK);
	/* The handle follows the new copy. */
	assert_true(bs_entry_is_encrypted(e));
	assert_int_equal(bs_entry_cipher(e), BS_CIPHER_CHACHA20_POLY1305);
	assert_int_equal(bs_entry_capacity(e), cap);
	assert_int_equal(bs_entry_checksum(e), BS_CHECKSUM_SHA256);
	t_assert_data(im, "vtpm", "permall", new_value, sizeof new_value);
	char *s;
	assert_int_equal(bs_attr_get_str(e, "serial", &s), BS_OK);
	assert_string_equal(s, "007");
	free(s);
	size_t n;
	uint8_t *after = t_mem_copy(be, &n);
	assert_false(contains(after, n, "MARKER-OLD"));
	assert_false(contains(after, n, "MARKER-NEW"));
	/* Again: nothing to do, nothing written; another cipher is refused. */
	assert_int_equal(bs_entry_encrypt(e, BS_CIPHER_DEFAULT), BS_OK);
	assert_int_equal(bs_entry_encrypt(e, BS_CIPHER_CHACHA20_POLY1305), BS_OK);
	size_t n2;
	uint8_t *again = t_mem_copy(be, &n2);
	assert_int_equal(n2, n);
	assert_memory_equal(again, after, n);
	assert_int_equal(bs_entry_encrypt(e, BS_CIPHER_AES_256_GCM), BS_EINVAL);
	bs_image_close(im);
	/* Reopened: the key reads it, no key does not. */
	assert_int_equal(t_open_mem(after, n, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_find(im, "vtpm", "permall", &e), BS_OK);
	char buf[128];
	size_t got;
	assert_int_equal(bs_entry_read(e, buf, sizeof buf, &got), BS_EKEY);
	load_key(im);
	t_assert_data(im, "vtpm", "permall", new_value, sizeof new_value);
	t_assert_data(im, "other", NULL, "other", 5);
	int problems = 0;
	assert_int_equal(bs_image_check(im, 0, t_count_cb, &problems), BS_OK);
	assert_int_equal(problems, 0);
	bs_image_close(im);
	free(again);
	free(after);
	free(img);
}

static void test_refusals(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = base_image(&len);
	bs_image *im;
	bs_entry *e, *raw, *key;
	assert_int_equal(bs_entry_encrypt(NULL, 0), BS_EINVAL);
	/* No key loaded. */
	assert_int_equal(t_open_mem(img, len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_find(im, "vtpm", "permall", &e), BS_OK);
	assert_int_equal(bs_entry_encrypt(e, 0), BS_EKEY);
	load_key(im);
	assert_int_equal(bs_entry_find(im, "eeprom", NULL, &raw), BS_OK);
	assert_int_equal(bs_entry_encrypt(raw, 0), BS_EINVAL);
	assert_int_equal(bs_entry_find(im, "bs.key", NULL, &key), BS_OK);
	assert_int_equal(bs_entry_encrypt(key, 0), BS_EINVAL);
	assert_int_equal(bs_entry_encrypt(e, 77), BS_EINVAL);
	assert_false(bs_entry_is_encrypted(e));
	bs_image_close(im);
	/* Read-only. */
	assert_int_equal(t_open_mem(img, len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	load_key(im);
	assert_int_equal(bs_entry_find(im, "vtpm", "permall", &e), BS_OK);
	assert_int_equal(bs_entry_encrypt(e, 0), BS_ERDONLY);
	bs_image_close(im);
	/* An image not set up for encryption. */
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im, NULL), BS_OK);
	assert_int_equal(bs_entry_create(im, "t", NULL, NULL, "x", 1, &e), BS_OK);
	assert_int_equal(bs_entry_encrypt(e, 0), BS_EKEY);
	assert_non_null(strstr(last_error(), "encrypt-init"));
	bs_image_close(im);
	free(img);
}

/* Opens the storage a crash left with a writer (which finishes or drops an
 * interrupted rewrite) and checks the entry; returns whether it is
 * encrypted. */
static bool check_after_crash(const uint8_t *crashed, size_t len, const char *what)
{
	bs_image *im;
	struct bs_backend *be;
	if (t_open_mem(crashed, len, BS_OPEN_NOSYNC, &im, &be))
		fail_msg("%s: does not open: %s", what, last_error());
	load_key(im);
	bs_entry *e;
	assert_int_equal(bs_entry_find(im, "vtpm", "permall", &e), BS_OK);
	bool enc = bs_entry_is_encrypted(e);
	t_assert_data(im, "vtpm", "permall", new_value, sizeof new_value);
	t_assert_data(im, "other", NULL, "other", 5);
	size_t n;
	uint8_t *c = t_mem_copy(be, &n);
	if (enc && (contains(c, n, "MARKER-OLD") || contains(c, n, "MARKER-NEW")))
		fail_msg("%s: the entry reads encrypted but its plaintext is still in storage", what);
	free(c);
	bs_image_close(im);
	return enc;
}

static void test_power_loss_at_every_write(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = base_image(&len);
	static const size_t tears[] = {SIZE_MAX, 0, 1, 7, 100};
	size_t converted = 0, plain = 0;
	for (uint64_t k = 1;; k++) {
		bool done = false;
		for (size_t t = 0; t < sizeof tears / sizeof tears[0]; t++) {
			struct fault_plan plan = {.crash_after = k, .tear_at = tears[t]};
			struct bs_backend *be;
			bs_image *im;
			assert_int_equal(fault_backend_new(img, len, &plan, &be), BS_OK);
			assert_int_equal(bs_image_open_backend(be, "fault.img", 0, &im), BS_OK);
			load_key(im);
			bs_entry *e;
			assert_int_equal(bs_entry_find(im, "vtpm", "permall", &e), BS_OK);
			int rc = bs_entry_encrypt(e, 0);
			struct fault_stats st;
			fault_backend_stats(be, &st);
			size_t cl;
			const uint8_t *cd = fault_backend_data(be, &cl);
			uint8_t *c = malloc(cl);
			assert_non_null(c);
			memcpy(c, cd, cl);
			bs_image_close(im);
			char what[64];
			snprintf(what, sizeof what, "power lost after write %llu (tear %zu)",
				 (unsigned long long)k, tears[t]);
			bool enc = check_after_crash(c, cl, what);
			free(c);
			if (!st.crashed) {
				/* K is past the last write: the conversion completed. */
				assert_int_equal(rc, BS_OK);
				assert_true(enc);
				done = true;
				break;
			}
			if (enc)
				converted++;
			else
				plain++;
		}
		if (done)
			break;
		assert_true(k < 64);
	}
	/* Both outcomes happened: the crash points cover the commit. */
	assert_true(converted > 0);
	assert_true(plain > 0);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converts_and_leaves_no_plaintext),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_power_loss_at_every_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
