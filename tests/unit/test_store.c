/* test_store.c - the public API on every storage backend: entries,
 * attributes, errors, statistics and compaction run over memory, a file, a
 * fixed-size file through the block backend, a loop device and NBD exports
 * (tests/unit/common.c starts what each needs); locking and a bulk round
 * trip of thousands of entries up to several MiB run on files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static void assert_msg_has(const char *part)
{
	if (!strstr(last_error(), part))
		fail_msg("message \"%s\" lacks \"%s\"", last_error(), part);
}

static bs_image *fresh_mem(struct bs_backend **be)
{
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, be), BS_OK);
	return im;
}

/* Storage octets = framing + live entries + free elements (+ unused tail). */
static void assert_stat_consistent(bs_image *im)
{
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_stat(im, &st), BS_OK);
	uint64_t used = 0;
	for (size_t i = 0; i < bs_image_count(im, BS_ITER_LIBRARY); i++)
		used += bs_entry_size(t_entry_at(im, i));
	assert_true(st.used == used);
	assert_true(st.entries == bs_image_count(im, BS_ITER_LIBRARY));
	assert_true(st.dir_end == 4 + st.used + st.free_holes);
	assert_true(st.size == st.dir_end + st.free_tail);
	assert_true(st.refused <= st.entries);
}

/* The store the current group runs on (NULL: unavailable here, skip). */
static struct t_store *S;
static enum t_kind group_kind;

static int store_setup(void **state)
{
	(void)state;
	S = t_store_new(group_kind);
	return 0;
}

static int store_teardown(void **state)
{
	(void)state;
	t_store_free(S);
	S = NULL;
	return 0;
}

static bs_image *fresh_store(void)
{
	if (!S)
		skip();
	return t_store_fresh(S);
}

/* ---- entries ------------------------------------------------------------ */

static void test_create_find_read(void **state)
{
	(void)state;
	bs_image *im = fresh_store();
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 1);
	assert_string_equal(bs_entry_type(t_entry_at(im, 0)), "bs.image");
	assert_null(t_entry_at(im, 1));
	bs_entry *e, *f;
	assert_int_equal(bs_entry_create(im, "vtpm", "permall", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 100, .attrs = NULL, .nattrs = 0}, "abc", 3, &e), BS_OK);
	assert_string_equal(bs_entry_type(e), "vtpm");
	assert_string_equal(bs_entry_name(e), "permall");
	assert_true(bs_entry_is_slotted(e));
	assert_string_equal(bs_checksum_name(bs_entry_checksum(e)), "crc32c");
	assert_int_equal(bs_entry_capacity(e), 100);
	assert_int_equal(bs_entry_status(e), BS_OK);
	assert_string_equal(bs_entry_status_message(e), "ok");
	assert_int_equal(bs_entry_find(im, "vtpm", "permall", &f), BS_OK);
	assert_ptr_equal(e, f);
	t_assert_data(im, "vtpm", "permall", "abc", 3);
	/* Unnamed, empty-named and named entries of one type are distinct. */
	assert_int_equal(bs_entry_create(im, "vtpm", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "none", 4, NULL), BS_OK);
	assert_int_equal(bs_entry_create(im, "vtpm", "", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "empty", 5, NULL), BS_OK);
	assert_int_equal(bs_entry_create(im, "vtpm", "n\xc3\xa4me", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "utf", 3, NULL),
			 BS_OK);
	/* Zero-length data, zero capacity. */
	assert_int_equal(bs_entry_create(im, "zero", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 0, .attrs = NULL, .nattrs = 0}, NULL, 0, &e), BS_OK);
	void *p;
	size_t l = 99;
	assert_int_equal(bs_entry_read_alloc(e, &p, &l), BS_OK);
	assert_non_null(p);
	assert_int_equal(l, 0);
	free(p);
	for (int pass = 0; pass < 2; pass++) {
		t_assert_data(im, "vtpm", NULL, "none", 4);
		t_assert_data(im, "vtpm", "", "empty", 5);
		t_assert_data(im, "vtpm", "n\xc3\xa4me", "utf", 3);
		t_assert_data(im, "vtpm", "permall", "abc", 3);
		t_assert_data(im, "zero", NULL, "", 0);
		assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 6);
		assert_stat_consistent(im);
		assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
		t_store_reopen(S, &im, 0);
	}
	bs_image_close(im);
}

static void test_errors(void **state)
{
	(void)state;
	bs_image *im = fresh_store();
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "t", "n", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = NULL, .nattrs = 0}, "0123456789", 10, &e), BS_OK);
	/* EEXIST, ENOENT with messages naming the entry. */
	assert_int_equal(bs_entry_create(im, "t", "n", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_EEXIST);
	assert_msg_has(t_store_label(S));
	assert_msg_has("'t'/'n'");
	bs_entry *f = (bs_entry *)1;
	assert_int_equal(bs_entry_find(im, "t", "other", &f), BS_ENOENT);
	assert_ptr_equal(f, (bs_entry *)1); /* outputs are untouched on failure */
	assert_msg_has("other");
	assert_int_equal(bs_entry_find(im, "t", NULL, &f), BS_ENOENT);
	/* ERANGE reports the size needed and copies nothing. */
	uint8_t b[16];
	memset(b, 0xee, sizeof b);
	size_t l = 0;
	assert_int_equal(bs_entry_read(e, b, 4, &l), BS_ERANGE);
	assert_int_equal(l, 10);
	assert_int_equal(b[0], 0xee);
	assert_int_equal(bs_entry_read(e, b, 10, &l), BS_OK);
	assert_int_equal(l, 10);
	assert_memory_equal(b, "0123456789", 10);
	/* Reserved and invalid names. */
	assert_int_equal(bs_entry_create(im, "bs.mine", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_create(im, "bs.image", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_create(im, "", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_create(im, "t\n", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_create(im, "caf\xc3\xa9", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL),
			 BS_EINVAL);
	assert_int_equal(bs_entry_create(im, "t", "\xff", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_EINVAL);
	char longtype[300];
	memset(longtype, 'a', sizeof longtype - 1);
	longtype[sizeof longtype - 1] = 0;
	assert_int_equal(bs_entry_create(im, longtype, NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_EINVAL);
	longtype[BS_MAX_TYPE_LEN] = 0;
	assert_int_equal(bs_entry_create(im, longtype, NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_OK);
	struct bs_attr ra = {BS_ATTR_VERSION, "bs.slots", 0, NULL, 0};
	assert_int_equal(bs_entry_create(im, "u", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = &ra, .nattrs = 1}, NULL, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_attr_set(e, "bs.x", 0, NULL, 0), BS_EINVAL);
	assert_int_equal(bs_attr_set(e, "bs.supersedes", 0, NULL, 0), BS_EINVAL);
	assert_int_equal(bs_attr_remove(e, "bs.slots"), BS_EINVAL);
	/* Attribute values must be DER; names printable without spaces. */
	const uint8_t notder[] = {0x02, 0x02, 0x00, 0x01};
	assert_int_equal(bs_attr_set(e, "a", 0, notder, sizeof notder), BS_EINVAL);
	assert_int_equal(bs_attr_set(e, "a b", 0, NULL, 0), BS_EINVAL);
	struct bs_attr two[2] = {{BS_ATTR_VERSION, "x", 0, NULL, 0}, {BS_ATTR_VERSION, "x", 0, NULL, 0}};
	assert_int_equal(bs_entry_create(im, "u", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = two, .nattrs = 2}, NULL, 0, NULL), BS_EINVAL);
	/* Options. */
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 4,
				  .checksum = (enum bs_checksum)99};
	assert_int_equal(bs_entry_create(im, "u", NULL, &o, NULL, 0, NULL), BS_EINVAL);
	o.checksum = BS_CHECKSUM_DEFAULT;
	o.flags = 0x80;
	assert_int_equal(bs_entry_create(im, "u", NULL, &o, NULL, 0, NULL), BS_EINVAL);
	o.flags = 0;
	o.cipher = (enum bs_cipher)99;
	assert_int_equal(bs_entry_create(im, "u", NULL, &o, NULL, 0, NULL), BS_EINVAL);
	/* Options of a version this library does not know. */
	struct bs_entry_opts future = {.version = BS_ENTRY_OPTS_VERSION + 1};
	assert_int_equal(bs_entry_create(im, "u", NULL, &future, NULL, 0, NULL), BS_EINVAL);
	struct bs_attr old = {0, "x", 0, NULL, 0}; /* no version */
	struct bs_entry_opts with_old = {.version = BS_ENTRY_OPTS_VERSION, .attrs = &old, .nattrs = 1};
	assert_int_equal(bs_entry_create(im, "u", NULL, &with_old, NULL, 0, NULL), BS_EINVAL);
	/* Data larger than given, no data pointer. */
	assert_int_equal(bs_entry_create(im, "u", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 5, NULL), BS_EINVAL);
	/* The image entry is the library's. */
	bs_entry *ie = t_entry_at(im, 0);
	assert_int_equal(bs_entry_write(ie, "x", 1), BS_EINVAL);
	assert_int_equal(bs_entry_delete(ie), BS_EINVAL);
	assert_int_equal(bs_attr_set(ie, "a", 0, NULL, 0), BS_EINVAL);
	/* Nothing above changed the image. */
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 3);
	t_assert_data(im, "t", "n", "0123456789", 10);
	assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
	bs_image_close(im);
	assert_string_equal(bs_error_string(BS_EUNSUPPORTED),
			    "entry refused: unknown mandatory attribute or feature");
	assert_non_null(bs_error_string(12345));
}

static void test_write_sizes(void **state)
{
	(void)state;
	bs_image *im = fresh_store();
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "t", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 64, .attrs = NULL, .nattrs = 0}, "a", 1, &e), BS_OK);
	uint8_t d[1000];
	t_fill(d, sizeof d, 9);
	uint64_t off = bs_entry_offset(e);
	/* Within the capacity: in place, one slot write each. */
	for (size_t n = 0; n <= 64; n += 8) {
		assert_int_equal(bs_entry_write(e, d + n, n), BS_OK);
		t_assert_data(im, "t", NULL, d + n, n);
		assert_true(bs_entry_offset(e) == off);
	}
	/* Past it: the entry moves, the handle follows. */
	assert_int_equal(bs_entry_write(e, d, 65), BS_OK);
	assert_true(bs_entry_offset(e) != off);
	assert_true(bs_entry_capacity(e) >= 65);
	t_assert_data(im, "t", NULL, d, 65);
	assert_int_equal(bs_entry_write(e, d, sizeof d), BS_OK);
	t_assert_data(im, "t", NULL, d, sizeof d);
	assert_int_equal(bs_entry_write(e, NULL, 0), BS_OK);
	t_assert_data(im, "t", NULL, "", 0);
	assert_int_equal(bs_entry_write(e, NULL, 3), BS_EINVAL);
	/* Resize grows, never shrinks. */
	size_t cap = bs_entry_capacity(e);
	assert_int_equal(bs_entry_resize(e, 10), BS_OK);
	assert_int_equal(bs_entry_capacity(e), cap);
	assert_int_equal(bs_entry_write(e, d, 10), BS_OK);
	assert_int_equal(bs_entry_resize(e, 5000), BS_OK);
	assert_true(bs_entry_capacity(e) >= 5000);
	t_assert_data(im, "t", NULL, d, 10);
	assert_stat_consistent(im);
	t_store_reopen(S, &im, 0);
	assert_int_equal(bs_entry_find(im, "t", NULL, &e), BS_OK);
	assert_true(bs_entry_capacity(e) >= 5000);
	t_assert_data(im, "t", NULL, d, 10);
	assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
	bs_image_close(im);
}

static void test_delete(void **state)
{
	(void)state;
	bs_image *im = fresh_store();
	bs_entry *a, *b;
	assert_int_equal(bs_entry_create(im, "a", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 32, .attrs = NULL, .nattrs = 0}, "secret-a", 8, &a), BS_OK);
	assert_int_equal(bs_entry_create(im, "b", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "bb", 2, &b), BS_OK);
	uint64_t size = bs_entry_size(a);
	struct bs_image_stat st0 = BS_IMAGE_STAT_INIT, st1 = BS_IMAGE_STAT_INIT;
	bs_image_stat(im, &st0);
	assert_int_equal(bs_entry_delete(a), BS_OK);
	bs_image_stat(im, &st1);
	assert_true(st1.free_holes == st0.free_holes + size);
	assert_true(st1.used == st0.used - size);
	assert_stat_consistent(im);
	bs_entry *f;
	assert_int_equal(bs_entry_find(im, "a", NULL, &f), BS_ENOENT);
	/* The deleted contents are wiped from storage. */
	size_t l;
	uint8_t *d = t_store_copy(S, im, &l);
	assert_null(memmem(d, l, "secret-a", 8));
	free(d);
	/* The name can be used again. */
	assert_int_equal(bs_entry_create(im, "a", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "new", 3, &a), BS_OK);
	t_store_reopen(S, &im, 0);
	t_assert_data(im, "a", NULL, "new", 3);
	t_assert_data(im, "b", NULL, "bb", 2);
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 3);
	bs_image_close(im);
}

/* Attributes of the optional set the caller owns (not the library's "bs."). */
static size_t user_attrs(const bs_entry *e)
{
	size_t n = 0;
	for (size_t k = 0; k < t_attr_count(e, 0); k++) {
		const char *nm;
		const uint8_t *v;
		size_t vl;
		assert_int_equal(t_attr_at(e, 0, k, &nm, &v, &vl), BS_OK);
		n += strncmp(nm, "bs.", 3) != 0;
	}
	return n;
}

static void test_attributes(void **state)
{
	(void)state;
	bs_image *im = fresh_store();
	uint8_t iv[BS_VALUE_MAX_INT], bv[3], sv[32], ov[32], isv[8];
	size_t il = t_der_int(-1234567, iv, sizeof iv);
	size_t bl = t_der_bool(1, bv, sizeof bv);
	size_t sl = t_der_utf8("h\xc3\xa9", sv, sizeof sv);
	size_t ol = t_der_octets("\x00\x01\x02", 3, ov, sizeof ov);
	isv[0] = 0x16;
	isv[1] = 3;
	memcpy(isv + 2, "ia5", 3);
	struct bs_attr attrs[] = {
		{BS_ATTR_VERSION, "int", 0, iv, il}, {BS_ATTR_VERSION, "bool", 0, bv, bl}, {BS_ATTR_VERSION, "str", 0, sv, sl},
		{BS_ATTR_VERSION, "oct", 0, ov, ol}, {BS_ATTR_VERSION, "flag", 0, NULL, 0}, {BS_ATTR_VERSION, "ia5", 0, isv, 5},
	};
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "t", "n", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = attrs, .nattrs = 6}, "data", 4, &e), BS_OK);
	for (int pass = 0; pass < 3; pass++) {
		int64_t i;
		int b;
		char *s;
		const uint8_t *o;
		size_t n;
		unsigned fl = 99;
		assert_int_equal(bs_attr_get_int(e, "int", &i), BS_OK);
		assert_true(i == -1234567);
		assert_int_equal(bs_attr_get_bool(e, "bool", &b), BS_OK);
		assert_int_equal(b, 1);
		assert_int_equal(bs_attr_get_str(e, "str", &s), BS_OK);
		assert_string_equal(s, "h\xc3\xa9");
		free(s);
		assert_int_equal(bs_attr_get_str(e, "ia5", &s), BS_OK);
		assert_string_equal(s, "ia5");
		free(s);
		assert_int_equal(bs_attr_get_bytes(e, "oct", &o, &n), BS_OK);
		assert_int_equal(n, 3);
		assert_memory_equal(o, "\x00\x01\x02", 3);
		assert_int_equal(bs_attr_get(e, "flag", &o, &n, &fl), BS_OK);
		assert_int_equal(fl, 0);
		assert_int_equal(n, 0);
		/* Wrong types and missing names. */
		assert_int_equal(bs_attr_get_int(e, "str", &i), BS_ETYPE);
		assert_msg_has("str");
		assert_int_equal(bs_attr_get_bool(e, "int", &b), BS_ETYPE);
		s = NULL;
		assert_int_equal(bs_attr_get_str(e, "oct", &s), BS_ETYPE);
		assert_null(s); /* untouched */
		assert_int_equal(bs_attr_get_bytes(e, "flag", &o, &n), BS_ETYPE);
		assert_int_equal(bs_attr_get_int(e, "nope", &i), BS_ENOENT);
		assert_int_equal(bs_attr_get(e, "nope", &o, &n, NULL), BS_ENOENT);
		/* Iteration covers the user's attributes in the optional set. */
		assert_int_equal(user_attrs(e), 6);
		size_t seen = 0;
		for (size_t k = 0; k < t_attr_count(e, 0); k++) {
			const char *nm;
			assert_int_equal(t_attr_at(e, 0, k, &nm, &o, &n), BS_OK);
			for (int a = 0; a < 6; a++)
				if (!strcmp(nm, attrs[a].name))
					seen++;
		}
		assert_int_equal(seen, 6);
		const char *nm;
		assert_int_equal(t_attr_at(e, 0, t_attr_count(e, 0), &nm, &o, &n), BS_ENOENT);
		assert_int_equal(bs_attr_at(e, bs_attr_count(e), &nm, &o, &n, NULL), BS_ENOENT);
		if (pass == 0) {
			t_store_reopen(S, &im, 0);
			assert_int_equal(bs_entry_find(im, "t", "n", &e), BS_OK);
		} else if (pass == 1) {
			assert_int_equal(bs_image_compact(im), BS_OK);
		}
	}
	/* Set replaces, adds; remove removes; the data stays. */
	bs_entry *keep = e;
	uint8_t v2[BS_VALUE_MAX_INT];
	assert_int_equal(bs_attr_set(e, "int", 0, v2, t_der_int(INT64_MIN, v2, sizeof v2)),
			 BS_OK);
	assert_int_equal(bs_attr_set(e, "new", 0, NULL, 0), BS_OK);
	assert_int_equal(bs_attr_remove(e, "oct"), BS_OK);
	assert_int_equal(bs_attr_remove(e, "oct"), BS_ENOENT);
	assert_int_equal(bs_entry_find(im, "t", "n", &e), BS_OK);
	assert_ptr_equal(e, keep);
	int64_t i;
	assert_int_equal(bs_attr_get_int(e, "int", &i), BS_OK);
	assert_true(i == INT64_MIN);
	const uint8_t *o;
	size_t n;
	assert_int_equal(bs_attr_get(e, "new", &o, &n, NULL), BS_OK);
	assert_int_equal(bs_attr_get(e, "oct", &o, &n, NULL), BS_ENOENT);
	assert_int_equal(user_attrs(e), 6);
	t_assert_data(im, "t", "n", "data", 4);
	/* A value that does not fit an int64. */
	const uint8_t big[] = {0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};
	assert_int_equal(bs_attr_set(e, "huge", 0, big, sizeof big), BS_OK);
	assert_int_equal(bs_attr_get_int(e, "huge", &i), BS_ETYPE);
	t_store_reopen(S, &im, 0);
	assert_int_equal(bs_entry_find(im, "t", "n", &e), BS_OK);
	assert_int_equal(bs_attr_get_int(e, "int", &i), BS_OK);
	assert_true(i == INT64_MIN);
	t_assert_data(im, "t", "n", "data", 4);
	assert_stat_consistent(im);
	assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
	bs_image_close(im);
}

static void test_raw_and_sha256_entries(void **state)
{
	(void)state;
	bs_image *im = fresh_store();
	bs_entry *r, *s;
	struct bs_entry_opts ro = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	assert_int_equal(bs_entry_create(im, "raw", NULL, &ro, "raw data", 8, &r), BS_OK);
	assert_false(bs_entry_is_slotted(r));
	assert_null(bs_checksum_name(bs_entry_checksum(r)));
	assert_int_equal(bs_entry_capacity(r), 8);
	struct bs_entry_opts so = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 100, .checksum = BS_CHECKSUM_SHA256};
	assert_int_equal(bs_entry_create(im, "sha", NULL, &so, "sha data", 8, &s), BS_OK);
	assert_string_equal(bs_checksum_name(bs_entry_checksum(s)), "sha256");
	assert_int_equal(bs_entry_capacity(s), 100);
	/* Raw: every write is a rewrite, of any size. */
	uint8_t d[3000];
	t_fill(d, sizeof d, 5);
	size_t sizes[] = {3, 3000, 0, 17};
	for (size_t k = 0; k < 4; k++) {
		assert_int_equal(bs_entry_write(r, d, sizes[k]), BS_OK);
		assert_int_equal(bs_entry_capacity(r), sizes[k]);
		assert_false(bs_entry_is_slotted(r));
		t_assert_data(im, "raw", NULL, d, sizes[k]);
		uint8_t small[2];
		size_t l;
		if (sizes[k] > 2) {
			assert_int_equal(bs_entry_read(r, small, 2, &l), BS_ERANGE);
			assert_int_equal(l, sizes[k]);
		}
	}
	assert_int_equal(bs_entry_resize(r, 100), BS_EINVAL);
	assert_int_equal(bs_entry_write(s, d, 100), BS_OK);
	assert_int_equal(bs_entry_write(s, d, 101), BS_OK); /* grows, keeps sha256 */
	assert_string_equal(bs_checksum_name(bs_entry_checksum(s)), "sha256");
	t_store_reopen(S, &im, 0);
	t_assert_data(im, "raw", NULL, d, 17);
	t_assert_data(im, "sha", NULL, d, 101);
	assert_int_equal(bs_entry_find(im, "sha", NULL, &s), BS_OK);
	assert_string_equal(bs_checksum_name(bs_entry_checksum(s)), "sha256");
	assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
	/* A damaged octet in the current sha256 slot: the previous value (the
	 * other slot) or an error, never damaged data. */
	uint64_t doff = bs_entry_offset(s) + bs_entry_size(s) - 60;
	t_store_damage(S, &im, doff, 0x40);
	assert_int_equal(bs_entry_find(im, "sha", NULL, &s), BS_OK);
	void *p;
	size_t pl;
	int rc = bs_entry_read_alloc(s, &p, &pl);
	if (rc == BS_OK) {
		assert_true(pl == 101 && !memcmp(p, d, 101));
		free(p);
	} else {
		assert_int_equal(rc, BS_ECORRUPT);
	}
	bs_image_close(im);
}

static void test_handles_stay_valid(void **state)
{
	(void)state;
	bs_image *im = fresh_store();
	bs_entry *e[5];
	char nm[32];
	for (int i = 0; i < 5; i++) {
		snprintf(nm, sizeof nm, "e%d", i);
		assert_int_equal(bs_entry_create(im, "h", nm, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, nm, 2, &e[i]), BS_OK);
	}
	assert_int_equal(bs_entry_delete(e[1]), BS_OK);
	assert_int_equal(bs_entry_write(e[2], "0123456789abcdef", 16), BS_OK);
	assert_int_equal(bs_entry_resize(e[3], 1000), BS_OK);
	assert_int_equal(bs_attr_set(e[4], "x", 0, NULL, 0), BS_OK);
	assert_int_equal(bs_entry_write(e[0], "zz", 2), BS_OK);
	assert_int_equal(bs_image_compact(im), BS_OK);
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	bs_image_stat(im, &st);
	assert_true(st.free_holes == 0);
	assert_stat_consistent(im);
	for (int i = 0; i < 5; i++) {
		if (i == 1)
			continue;
		snprintf(nm, sizeof nm, "e%d", i);
		bs_entry *f;
		assert_int_equal(bs_entry_find(im, "h", nm, &f), BS_OK);
		assert_ptr_equal(f, e[i]);
		uint64_t off = bs_entry_offset(e[i]);
		uint8_t hdr;
		assert_int_equal(bs_image_read_raw(im, off, &hdr, 1), BS_OK);
		assert_int_equal(hdr, 0x30);
	}
	/* Writes through the old handles after compaction land correctly. */
	for (int i = 0; i < 5; i++) {
		if (i == 1)
			continue;
		snprintf(nm, sizeof nm, "E%d", i);
		assert_int_equal(bs_entry_write(e[i], nm, 2), BS_OK);
	}
	t_store_reopen(S, &im, 0);
	for (int i = 0; i < 5; i++) {
		if (i == 1)
			continue;
		char want[32];
		snprintf(nm, sizeof nm, "e%d", i);
		snprintf(want, sizeof want, "E%d", i);
		t_assert_data(im, "h", nm, want, 2);
	}
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), 5);
	bs_image_close(im);
}

/* ---- files, locks ------------------------------------------------------- */

static void test_read_only_and_locks(void **state)
{
	(void)state;
	char *path = t_tmppath("lock.img");
	unlink(path);
	bs_image *w, *w2 = (bs_image *)1, *r, *r2;
	assert_int_equal(bs_image_open(path, 0, &w), BS_ENOENT);
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &r), BS_ENOENT);
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE | BS_OPEN_EXCL, &w), BS_OK);
	assert_string_equal(bs_image_label(w), path);
	bs_entry *e;
	assert_int_equal(bs_entry_create(w, "t", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = NULL, .nattrs = 0}, "v1", 2, &e), BS_OK);
	/* A second writer, even in this process, is refused. */
	w2 = NULL;
	assert_int_equal(bs_image_open(path, 0, &w2), BS_ELOCKED);
	assert_null(w2); /* untouched */
	assert_msg_has(path);
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE, &w2), BS_ELOCKED);
	/* Readers take no lock. */
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &r), BS_OK);
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &r2), BS_OK);
	t_assert_data(r, "t", NULL, "v1", 2);
	bs_entry *re;
	assert_int_equal(bs_entry_find(r, "t", NULL, &re), BS_OK);
	assert_int_equal(bs_entry_write(re, "x", 1), BS_ERDONLY);
	assert_msg_has(path);
	assert_int_equal(bs_entry_delete(re), BS_ERDONLY);
	assert_int_equal(bs_attr_set(re, "a", 0, NULL, 0), BS_ERDONLY);
	assert_int_equal(bs_attr_remove(re, "a"), BS_ERDONLY);
	assert_int_equal(bs_entry_resize(re, 100), BS_ERDONLY);
	assert_int_equal(bs_entry_create(r, "u", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL), BS_ERDONLY);
	assert_int_equal(bs_image_compact(r), BS_ERDONLY);
	assert_int_equal(bs_image_reserve(r, 1 << 20), BS_ERDONLY);
	/* The writer's slot writes are visible to an open reader. */
	assert_int_equal(bs_entry_write(e, "v2", 2), BS_OK);
	t_assert_data(r, "t", NULL, "v2", 2);
	bs_image_close(r2);
	/* Compaction keeps the lock (on the new file) and the mode. */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(bs_image_compact(w), BS_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(bs_image_open(path, 0, &w2), BS_ELOCKED);
	assert_int_equal(bs_entry_write(e, "v3", 2), BS_OK);
	/* The old reader's file was replaced: it is told to reopen rather
	 * than keep reading a frozen old image, and *out stays untouched. */
	void *p = NULL;
	size_t l = 0;
	assert_int_equal(bs_entry_find(r, "t", NULL, &re), BS_OK);
	assert_int_equal(bs_entry_read_alloc(re, &p, &l), BS_ESTALE);
	assert_null(p);
	assert_msg_has("the image file was replaced");
	assert_msg_has("reopen");
	bs_image_close(r);
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &r), BS_OK);
	t_assert_data(r, "t", NULL, "v3", 2);
	bs_image_close(r);
	uint8_t id[16];
	memcpy(id, bs_image_id(w), 16);
	bs_image_close(w);
	/* Released on close. */
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE | BS_OPEN_EXCL, &w2), BS_EEXIST);
	assert_int_equal(bs_image_open(path, 0, &w2), BS_OK);
	assert_memory_equal(bs_image_id(w2), id, 16);
	t_assert_data(w2, "t", NULL, "v3", 2);
	assert_int_equal(bs_image_reserve(w2, 1 << 20), BS_OK);
	assert_int_equal(bs_image_check(w2, 1, NULL, NULL), BS_OK);
	bs_image_close(w2);
	unlink(path);
	free(path);
}

static void test_image_identity(void **state)
{
	(void)state;
	bs_image *a = fresh_mem(NULL), *b = fresh_mem(NULL);
	const uint8_t *ia = bs_image_id(a), *ib = bs_image_id(b);
	static const uint8_t zero[16];
	assert_memory_not_equal(ia, zero, 16);
	assert_memory_not_equal(ia, ib, 16);
	bs_image_close(a);
	bs_image_close(b);
}

/* ---- bulk --------------------------------------------------------------- */

static size_t bulk_size(size_t i)
{
	if (i == 7)
		return 1u << 20;
	if (i == 1500 || i == 700)
		return 5u << 20;
	if (i % 11 == 0)
		return 0;
	return (i * 7919) % (i % 5 == 0 ? 70000 : 2000);
}

static void bulk_verify(bs_image *im, size_t n, const bool *gone, uint8_t *buf,
			uint8_t *want)
{
	size_t live = 1;
	for (size_t i = 0; i < n; i++) {
		char nm[32];
		snprintf(nm, sizeof nm, "%zu", i);
		bs_entry *e;
		int rc = bs_entry_find(im, i % 3 ? "vtpm" : "nvram", nm, &e);
		if (gone[i]) {
			assert_int_equal(rc, BS_ENOENT);
			continue;
		}
		live++;
		if (rc)
			fail_msg("entry %zu: %s", i, last_error());
		size_t want_len = bulk_size(i);
		t_fill(want, want_len, i);
		size_t l;
		rc = bs_entry_read(e, buf, 5u << 20, &l);
		if (rc)
			fail_msg("entry %zu: %s", i, last_error());
		assert_int_equal(l, want_len);
		if (l && memcmp(buf, want, l))
			fail_msg("entry %zu: data differs", i);
	}
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), live);
}

static void test_bulk_file_round_trip(void **state)
{
	(void)state;
	size_t n = t_quick() ? 1000 : 3000;
	char *path = t_tmppath("bulk.img");
	unlink(path);
	uint8_t *buf = malloc(5u << 20), *want = malloc(5u << 20);
	bool *gone = calloc(n, sizeof *gone);
	assert_non_null(buf);
	assert_non_null(want);
	assert_non_null(gone);
	bs_image *im;
	/* NOSYNC: durability is not the point here, and fsyncs are slow. */
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im), BS_OK);
	for (size_t i = 0; i < n; i++) {
		char nm[32];
		snprintf(nm, sizeof nm, "%zu", i);
		size_t len = bulk_size(i);
		t_fill(want, len, i);
		struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = len + (i % 4) * 10};
		if (i % 7 == 1)
			o.checksum = BS_CHECKSUM_SHA256;
		if (i % 13 == 2)
			o.flags = BS_ENTRY_RAW;
		int rc = bs_entry_create(im, i % 3 ? "vtpm" : "nvram", nm, &o, want, len, NULL);
		if (rc)
			fail_msg("create %zu: %s", i, last_error());
	}
	/* Churn: delete some, overwrite some in place and by growing. */
	for (size_t i = 3; i < n; i += 17) {
		char nm[32];
		snprintf(nm, sizeof nm, "%zu", i);
		bs_entry *e;
		assert_int_equal(bs_entry_find(im, i % 3 ? "vtpm" : "nvram", nm, &e), BS_OK);
		assert_int_equal(bs_entry_delete(e), BS_OK);
		gone[i] = true;
	}
	assert_stat_consistent(im);
	bulk_verify(im, n, gone, buf, want);
	bs_image_close(im);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(bs_image_open(path, round == 2 ? BS_OPEN_RDONLY : BS_OPEN_NOSYNC, &im),
				 BS_OK);
		bulk_verify(im, n, gone, buf, want);
		assert_stat_consistent(im);
		if (round == 0) {
			assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
			struct bs_image_stat before = BS_IMAGE_STAT_INIT, after = BS_IMAGE_STAT_INIT;
			bs_image_stat(im, &before);
			assert_true(before.free_holes > 0);
			assert_int_equal(bs_image_compact(im), BS_OK);
			bs_image_stat(im, &after);
			assert_true(after.free_holes == 0);
			assert_true(after.size < before.size);
			assert_true(after.used == before.used);
			bulk_verify(im, n, gone, buf, want);
		}
		bs_image_close(im);
	}
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &im), BS_OK);
	assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_OK);
	bs_image_close(im);
	unlink(path);
	free(path);
	free(buf);
	free(want);
	free(gone);
}

static void test_durable_file_writes(void **state)
{
	(void)state;
	/* The default (synced) path on a real file, briefly. */
	char *path = t_tmppath("sync.img");
	unlink(path);
	bs_image *im;
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE, &im), BS_OK);
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "vtpm", "permall", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1300, .attrs = NULL, .nattrs = 0}, "x", 1, &e), BS_OK);
	uint8_t d[1300];
	for (int i = 0; i < 20; i++) {
		t_fill(d, sizeof d, (uint64_t)i);
		assert_int_equal(bs_entry_write(e, d, sizeof d - (size_t)i), BS_OK);
	}
	assert_int_equal(bs_entry_write(e, d, sizeof d + 0), BS_OK);
	bs_image_close(im);
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &im), BS_OK);
	t_assert_data(im, "vtpm", "permall", d, sizeof d);
	bs_image_close(im);
	unlink(path);
	free(path);
}

/* The lookup table under churn, against a model: thousands of keys in two
 * types, rounds of deleting and re-creating random halves (the table's
 * deletions shift later slots back), every key looked up after each round,
 * after a reopen (the table built by open) and after a compaction. */
static void lookup_verify(bs_image *im, const bool *live, size_t n, const char *when)
{
	size_t nlive = 0;
	for (size_t i = 0; i < n; i++) {
		char nm[32];
		snprintf(nm, sizeof nm, "k%zu", i);
		const char *type = i % 2 ? "dev.a" : "dev.b";
		bs_entry *e = NULL;
		int rc = bs_entry_find(im, type, nm, &e);
		if (live[i] != (rc == BS_OK))
			fail_msg("%s: %s/%s %s", when, type, nm, live[i] ? "lost" : "still found");
		if (live[i]) {
			nlive++;
			assert_string_equal(bs_entry_name(e), nm);
			assert_string_equal(bs_entry_type(e), type);
		}
		/* The same name in the other type never exists. */
		assert_int_equal(bs_entry_find(im, i % 2 ? "dev.b" : "dev.a", nm, &e), BS_ENOENT);
	}
	assert_int_equal(bs_image_count(im, BS_ITER_LIBRARY), nlive + 1);
}

static void test_lookup_churn(void **state)
{
	(void)state;
	size_t n = t_quick() ? 1500 : 6000;
	bool *live = calloc(n, sizeof *live);
	assert_non_null(live);
	bs_image *im;
	struct bs_backend *be;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im, &be), BS_OK);
	struct bs_entry_opts raw = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	uint64_t rs = 99;
	for (int round = 0; round < 6; round++) {
		for (size_t i = 0; i < n; i++) {
			if (t_rand(&rs) % 100 >= (live[i] ? 40u : 60u))
				continue;
			char nm[32];
			snprintf(nm, sizeof nm, "k%zu", i);
			const char *type = i % 2 ? "dev.a" : "dev.b";
			if (live[i]) {
				bs_entry *e;
				assert_int_equal(bs_entry_find(im, type, nm, &e), BS_OK);
				assert_int_equal(bs_entry_delete(e), BS_OK);
			} else {
				int rc = bs_entry_create(im, type, nm, &raw, "v", 1, NULL);
				if (rc)
					fail_msg("create %s: %s", nm, last_error());
			}
			live[i] = !live[i];
		}
		char when[32];
		snprintf(when, sizeof when, "round %d", round);
		lookup_verify(im, live, n, when);
	}
	size_t len;
	uint8_t *copy = t_mem_copy(be, &len);
	bs_image_close(im);
	assert_int_equal(t_open_mem(copy, len, BS_OPEN_NOSYNC, &im, &be), BS_OK);
	free(copy);
	lookup_verify(im, live, n, "after reopen");
	assert_int_equal(bs_image_compact(im), BS_OK);
	lookup_verify(im, live, n, "after compact");
	bs_image_close(im);
	free(live);
}

int main(void)
{
	/* Every operation (create, read, write in place and by growing,
	 * resize, delete, attributes, compact, check, reopen) on every store. */
	const struct CMUnitTest per_backend[] = {
		cmocka_unit_test(test_create_find_read),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_write_sizes),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_attributes),
		cmocka_unit_test(test_raw_and_sha256_entries),
		cmocka_unit_test(test_handles_stay_valid),
	};
	int failed = 0;
	for (int k = 0; k < T_KINDS; k++) {
		group_kind = (enum t_kind)k;
		print_message("store suite on %s\n", t_kind_name(group_kind));
		failed += _cmocka_run_group_tests(t_kind_name(group_kind), per_backend,
						  sizeof per_backend / sizeof *per_backend,
						  store_setup, store_teardown);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_only_and_locks),
		cmocka_unit_test(test_image_identity),
		cmocka_unit_test(test_bulk_file_round_trip),
		cmocka_unit_test(test_lookup_churn),
		cmocka_unit_test(test_durable_file_writes),
	};
	return failed + cmocka_run_group_tests_name("files", tests, NULL, NULL);
}
