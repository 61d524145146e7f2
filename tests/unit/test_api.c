/* test_api.c - the public API's conventions (the top of blobstore.h), one
 * behaviour per test: the NULL rule, outputs untouched on failure, versioned
 * structures, names, iteration, entries that carry their image, setting an
 * attribute to the value it has, read-write reservations, acceptance that
 * survives rewrites, the errno of a failed system call, backends and URI
 * schemes of one's own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/sys/backend.h>

#include "common.h"

static bs_image *mem_image(struct bs_backend **be)
{
	bs_image *img;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &img, be), BS_OK);
	return img;
}

static bs_entry *make_entry(bs_image *img, const char *type, const char *name)
{
	bs_entry *e;
	assert_int_equal(bs_entry_create(img, type, name, NULL, "data", 4, &e), BS_OK);
	return e;
}

/* ---- the NULL rule ------------------------------------------------------------- */

static void test_null_handles_are_einval(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be);
	bs_entry *e = make_entry(img, "t", "n"), *out = (bs_entry *)1;
	uint8_t buf[8];
	size_t len = 7;
	void *p = (void *)1;
	const uint8_t *v;
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_open(NULL, 0, &img), BS_EINVAL);
	assert_int_equal(bs_image_open("x", 0, NULL), BS_EINVAL);
	assert_int_equal(bs_image_stat(NULL, &st), BS_EINVAL);
	assert_int_equal(bs_image_stat(img, NULL), BS_EINVAL);
	assert_int_equal(bs_image_check(NULL, 0, NULL, NULL), BS_EINVAL);
	assert_int_equal(bs_image_dump(NULL, stdout), BS_EINVAL);
	assert_int_equal(bs_image_dump(img, NULL), BS_EINVAL);
	assert_int_equal(bs_image_compact(NULL), BS_EINVAL);
	assert_int_equal(bs_image_reserve(NULL, 1), BS_EINVAL);
	assert_int_equal(bs_image_read_raw(NULL, 0, buf, 1), BS_EINVAL);
	assert_int_equal(bs_image_read_raw(img, 0, NULL, 1), BS_EINVAL);
	assert_int_equal(bs_entry_find(NULL, "t", "n", &out), BS_EINVAL);
	assert_int_equal(bs_entry_find(img, NULL, "n", &out), BS_EINVAL);
	assert_int_equal(bs_entry_find(img, "t", "n", NULL), BS_EINVAL);
	assert_int_equal(bs_entry_create(NULL, "t", "m", NULL, NULL, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_create(img, NULL, "m", NULL, NULL, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_create(img, "t", "m", NULL, NULL, 3, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_read(NULL, buf, sizeof buf, &len), BS_EINVAL);
	assert_int_equal(bs_entry_read(e, buf, sizeof buf, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_read(e, NULL, 4, &len), BS_EINVAL);
	assert_int_equal(bs_entry_read_alloc(NULL, &p, &len), BS_EINVAL);
	assert_int_equal(bs_entry_read_alloc(e, NULL, &len), BS_EINVAL);
	assert_int_equal(bs_entry_write(NULL, "x", 1), BS_EINVAL);
	assert_int_equal(bs_entry_write(e, NULL, 1), BS_EINVAL);
	assert_int_equal(bs_entry_update(e, NULL), BS_EINVAL);
	assert_int_equal(bs_entry_resize(NULL, 10), BS_EINVAL);
	assert_int_equal(bs_entry_delete(NULL), BS_EINVAL);
	assert_int_equal(bs_entry_accept(NULL, NULL, 0), BS_EINVAL);
	assert_int_equal(bs_entry_accept(e, NULL, 1), BS_EINVAL);
	assert_int_equal(bs_attr_get(NULL, "a", &v, &len, NULL), BS_EINVAL);
	assert_int_equal(bs_attr_get(e, NULL, &v, &len, NULL), BS_EINVAL);
	assert_int_equal(bs_attr_get(e, "a", NULL, &len, NULL), BS_EINVAL);
	assert_int_equal(bs_attr_set(NULL, "a", 0, NULL, 0), BS_EINVAL);
	assert_int_equal(bs_attr_set(e, NULL, 0, NULL, 0), BS_EINVAL);
	assert_int_equal(bs_attr_set(e, "a", 0, NULL, 3), BS_EINVAL);
	assert_int_equal(bs_attr_remove(NULL, "a"), BS_EINVAL);
	assert_int_equal(bs_attr_at(e, 0, NULL, &v, &len, NULL), BS_EINVAL);
	int64_t i = 5;
	assert_int_equal(bs_attr_get_int(NULL, "a", &i), BS_EINVAL);
	assert_int_equal(bs_value_decode_int(NULL, 0, &i, NULL), BS_ETYPE);
	assert_int_equal(bs_value_decode_int(buf, 1, NULL, NULL), BS_EINVAL);
	assert_int_equal(bs_value_encode_int(1, 0, buf, sizeof buf, NULL), BS_EINVAL);
	assert_int_equal(bs_checksum_parse("crc32c", NULL), BS_EINVAL);
	/* Nothing above changed the outputs or the image. */
	assert_ptr_equal(out, (bs_entry *)1);
	assert_ptr_equal(p, (void *)1);
	assert_int_equal(len, 7);
	assert_int_equal(i, 5);
	t_assert_data(img, "t", "n", "data", 4);
	/* Accessors of NULL: 0, NULL or "". */
	assert_null(bs_entry_image(NULL));
	assert_string_equal(bs_entry_type(NULL), "");
	assert_null(bs_entry_name(NULL));
	assert_int_equal(bs_entry_offset(NULL), 0);
	assert_int_equal(bs_entry_capacity(NULL), 0);
	assert_int_equal(bs_entry_status(NULL), BS_EINVAL);
	assert_string_equal(bs_image_label(NULL), "");
	assert_null(bs_image_id(NULL));
	assert_int_equal(bs_image_count(NULL, 0), 0);
	assert_null(bs_entry_next(NULL, NULL, 0));
	assert_int_equal(bs_attr_count(NULL), 0);
	/* Close and free ignore NULL. */
	bs_image_close(NULL);
	bs_backend_free(NULL);
	bs_key_free(NULL);
	bs_record_free(NULL);
	bs_device_close(NULL);
	bs_image_close(img);
}

/* ---- outputs -------------------------------------------------------------------- */

static void test_outputs_untouched_on_failure(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be), *other = (bs_image *)2;
	bs_entry *e = make_entry(img, "t", "n"), *out = (bs_entry *)1;
	assert_int_equal(bs_entry_find(img, "t", "missing", &out), BS_ENOENT);
	assert_ptr_equal(out, (bs_entry *)1);
	assert_int_equal(bs_entry_create(img, "t", "n", NULL, NULL, 0, &out), BS_EEXIST);
	assert_ptr_equal(out, (bs_entry *)1);
	assert_int_equal(bs_image_open("/nonexistent/dir/img", 0, &other), BS_ENOENT);
	assert_ptr_equal(other, (bs_image *)2);
	int64_t i = 42;
	char *s = (char *)"kept";
	assert_int_equal(bs_attr_get_int(e, "missing", &i), BS_ENOENT);
	assert_int_equal(bs_attr_get_str(e, "missing", &s), BS_ENOENT);
	assert_int_equal(i, 42);
	assert_string_equal(s, "kept");
	/* The documented exception: BS_ERANGE reports the size needed. */
	char small[2];
	size_t len = 0;
	assert_int_equal(bs_entry_read(e, small, sizeof small, &len), BS_ERANGE);
	assert_int_equal(len, 4);
	bs_key *k = (bs_key *)3;
	assert_int_equal(bs_key_from_bytes("short", 5, &k), BS_EINVAL);
	assert_ptr_equal(k, (bs_key *)3);
	bs_image_close(img);
}

/* ---- versions and names ---------------------------------------------------------- */

static void test_unknown_struct_versions_refused(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be);
	bs_entry *e = make_entry(img, "t", "n");
	struct bs_image_stat st = {.version = BS_IMAGE_STAT_VERSION + 1};
	assert_int_equal(bs_image_stat(img, &st), BS_EINVAL);
	struct bs_entry_update u = {.version = 0, .data = "x", .len = 1};
	assert_int_equal(bs_entry_update(e, &u), BS_EINVAL);
	struct bs_device_opts o = {.version = 7};
	bs_device *d = NULL;
	assert_int_equal(bs_device_open(img, "t", "n", &o, &d), BS_EINVAL);
	assert_null(d);
	struct bs_blk_opts bo = {.version = 0};
	struct bs_backend *b2 = NULL;
	assert_int_equal(bs_backend_blk("/dev/null", NULL, 0, &bo, &b2), BS_EINVAL);
	assert_null(b2);
	bs_key *pw;
	assert_int_equal(bs_key_from_passphrase("pw", 2, &pw), BS_OK);
	struct bs_kdf_params kp = {.version = 0};
	assert_int_equal(bs_image_init_encryption(img, pw, &kp), BS_EINVAL);
	assert_false(bs_image_is_encrypted(img));
	bs_key_free(pw);
	/* A struct initialised the documented way works. */
	struct bs_image_stat ok = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_stat(img, &ok), BS_OK);
	assert_int_equal(ok.version, BS_IMAGE_STAT_VERSION);
	assert_int_equal(ok.entries, 2);
	bs_image_close(img);
}

static void test_names_round_trip(void **state)
{
	(void)state;
	enum bs_checksum c;
	enum bs_cipher ci;
	enum bs_kdf k;
	for (int v = 1; v <= 2; v++) {
		assert_int_equal(bs_checksum_parse(bs_checksum_name((enum bs_checksum)v), &c), BS_OK);
		assert_int_equal(c, v);
		assert_int_equal(bs_cipher_parse(bs_cipher_name((enum bs_cipher)v), &ci), BS_OK);
		assert_int_equal(ci, v);
	}
	for (int v = 1; v <= 3; v++) {
		assert_int_equal(bs_kdf_parse(bs_kdf_name((enum bs_kdf)v), &k), BS_OK);
		assert_int_equal(k, v);
	}
	assert_null(bs_checksum_name(BS_CHECKSUM_DEFAULT));
	assert_null(bs_cipher_name((enum bs_cipher)9));
	c = BS_CHECKSUM_SHA256;
	assert_int_equal(bs_checksum_parse("md5", &c), BS_EINVAL);
	assert_int_equal(c, BS_CHECKSUM_SHA256);
	assert_non_null(strstr(last_error(), "crc32c, sha256"));
	for (int code = BS_ESTALE; code <= BS_OK; code++)
		assert_string_not_equal(bs_error_string(code), "unknown error");
}

/* ---- iteration and entries ------------------------------------------------------------ */

static void test_iteration_skips_library_entries(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be);
	assert_null(bs_entry_next(img, NULL, 0)); /* only bs.image so far */
	assert_int_equal(bs_image_count(img, 0), 0);
	assert_int_equal(bs_image_count(img, BS_ITER_LIBRARY), 1);
	bs_key *k;
	uint8_t raw[32] = {1};
	assert_int_equal(bs_key_from_bytes(raw, 32, &k), BS_OK);
	assert_int_equal(bs_image_init_encryption(img, k, NULL), BS_OK);
	bs_key_free(k);
	make_entry(img, "a", NULL);
	make_entry(img, "b", "x");
	const char *seen[4];
	size_t n = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, 0));)
		seen[n++] = bs_entry_type(e);
	assert_int_equal(n, 2);
	assert_string_equal(seen[0], "a");
	assert_string_equal(seen[1], "b");
	assert_int_equal(bs_image_count(img, 0), 2);
	n = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));)
		n++;
	assert_int_equal(n, 4); /* bs.image and bs.key too */
	assert_int_equal(bs_image_count(img, BS_ITER_LIBRARY), 4);
	bs_image_close(img);
}

static void test_entries_carry_their_image(void **state)
{
	(void)state;
	struct bs_backend *b1, *b2;
	bs_image *i1 = mem_image(&b1), *i2 = mem_image(&b2);
	bs_entry *a = make_entry(i1, "t", "n"), *b = make_entry(i2, "t", "n");
	assert_ptr_equal(bs_entry_image(a), i1);
	assert_ptr_equal(bs_entry_image(b), i2);
	/* Writing through A changes image 1 only: no image handle to mix up. */
	assert_int_equal(bs_entry_write(a, "only-one", 8), BS_OK);
	t_assert_data(i1, "t", "n", "only-one", 8);
	t_assert_data(i2, "t", "n", "data", 4);
	/* Iteration does not walk from another image's entry. */
	assert_null(bs_entry_next(i2, a, 0));
	bs_image_close(i1);
	bs_image_close(i2);
}

/* ---- attributes ------------------------------------------------------------------------- */

static void test_setting_current_value_writes_nothing(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be);
	bs_entry *e = make_entry(img, "t", "n");
	uint8_t v[BS_VALUE_MAX_INT];
	size_t vl;
	assert_int_equal(bs_value_encode_int(7, 0, v, sizeof v, &vl), BS_OK);
	assert_int_equal(bs_attr_set(e, "model", 0, v, vl), BS_OK);
	uint64_t off = bs_entry_offset(e);
	size_t before;
	uint8_t *copy = t_mem_copy(be, &before);
	assert_int_equal(bs_attr_set(e, "model", 0, v, vl), BS_OK);
	size_t after;
	uint8_t *copy2 = t_mem_copy(be, &after);
	assert_int_equal(bs_entry_offset(e), off); /* not rewritten */
	assert_int_equal(before, after);
	assert_memory_equal(copy, copy2, before);
	free(copy);
	free(copy2);
	/* Another set is a change: a rewrite. */
	assert_int_equal(bs_attr_set(e, "model", BS_ATTR_MANDATORY, v, vl), BS_OK);
	assert_true(bs_entry_offset(e) != off);
	bs_image_close(img);
}

static void test_device_read_only_same_value_and_reserve(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be);
	struct bs_device_opts o = BS_DEVICE_OPTS_INIT;
	o.flags = BS_DEVICE_CREATE;
	bs_device *d;
	assert_int_equal(bs_device_open(img, "dev", "0", &o, &d), BS_OK);
	/* A device stamps its model at every boot: the second stamp is fine. */
	assert_int_equal(bs_device_attr_set_str(d, "model", 0, "vx-1"), BS_OK);
	assert_int_equal(bs_device_attr_set_str(d, "model", 0, "vx-1"), BS_OK);
	assert_int_equal(bs_device_attr_set_str(d, "model", 0, "vx-2"), BS_ERDONLY);
	assert_non_null(strstr(last_error(), "'model' is read-only"));
	assert_null(strstr(last_error(), "opened read-only"));
	/* A read-write string: its size is fixed, and can be reserved. */
	assert_int_equal(bs_device_attr_set_str(d, "host", BS_ATTR_RW, "ab"), BS_OK);
	assert_int_equal(bs_device_attr_set_str(d, "host", BS_ATTR_RW, "longer"), BS_ELIMIT);
	assert_non_null(strstr(last_error(), "bs_device_attr_reserve"));
	assert_int_equal(bs_device_attr_reserve(d, "host", 0, 32), BS_OK);
	char *s;
	assert_int_equal(bs_attr_get_str(bs_device_entry(d), "host", &s), BS_OK);
	assert_string_equal(s, "ab"); /* the value kept */
	free(s);
	assert_int_equal(bs_device_attr_set_str(d, "host", BS_ATTR_RW, "a-much-longer-name"), BS_OK);
	assert_int_equal(bs_attr_get_str(bs_device_entry(d), "host", &s), BS_OK);
	assert_string_equal(s, "a-much-longer-name");
	free(s);
	const uint8_t *v;
	size_t vl;
	unsigned f;
	assert_int_equal(bs_attr_get(bs_device_entry(d), "host", &v, &vl, &f), BS_OK);
	assert_int_equal(vl, 2 + 32); /* OCTET STRING of the reserved 32 */
	/* Reserving a new one; reserving less never shrinks. */
	assert_int_equal(bs_device_attr_reserve(d, "path", 0, 16), BS_OK);
	assert_int_equal(bs_device_attr_reserve(d, "path", 0, 4), BS_OK);
	assert_int_equal(bs_attr_get(bs_device_entry(d), "path", &v, &vl, &f), BS_OK);
	assert_int_equal(vl, 2 + 16);
	assert_int_equal(bs_device_attr_reserve(d, "model", 0, 16), BS_ETYPE);
	bs_device_close(d);
	bs_image_close(img);
}

static void test_accept_survives_rewrites(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be);
	struct bs_attr fut = BS_ATTR("x.future", BS_ATTR_MANDATORY, NULL, 0);
	struct bs_entry_opts o = BS_ENTRY_OPTS_INIT;
	o.attrs = &fut;
	o.nattrs = 1;
	o.capacity = 8;
	assert_int_equal(bs_entry_create(img, "t", NULL, &o, "a", 1, NULL), BS_OK);
	size_t len;
	uint8_t *c = t_mem_copy(be, &len);
	bs_image_close(img);
	assert_int_equal(t_open_mem(c, len, 0, &img, &be), BS_OK);
	free(c);
	bs_entry *e;
	assert_int_equal(bs_entry_find(img, "t", NULL, &e), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_EUNSUPPORTED);
	static const char *const known[] = {"x.future"};
	assert_int_equal(bs_entry_accept(e, known, 1), BS_OK);
	/* A growing write rewrites the entry: still accepted. */
	assert_int_equal(bs_entry_write(e, "0123456789abcdef0123", 20), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_OK);
	assert_int_equal(bs_attr_set(e, "other", 0, NULL, 0), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_OK);
	t_assert_data(img, "t", NULL, "0123456789abcdef0123", 20);
	bs_image_close(img);
}

/* ---- bs_entry_update ---------------------------------------------------------------------- */

static void test_update_plain_write_when_only_data_changes(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = mem_image(&be);
	bs_entry *e;
	struct bs_entry_opts o = BS_ENTRY_OPTS_INIT;
	o.capacity = 64;
	uint8_t v[BS_VALUE_MAX_INT];
	size_t vl;
	assert_int_equal(bs_value_encode_int(3, 0, v, sizeof v, &vl), BS_OK);
	struct bs_attr a = BS_ATTR("rev", 0, v, vl);
	o.attrs = &a;
	o.nattrs = 1;
	assert_int_equal(bs_entry_create(img, "t", NULL, &o, "one", 3, &e), BS_OK);
	uint64_t off = bs_entry_offset(e);
	struct bs_entry_update u = BS_ENTRY_UPDATE_INIT;
	u.attrs = &a;
	u.nattrs = 1;
	u.data = "two";
	u.len = 3;
	assert_int_equal(bs_entry_update(e, &u), BS_OK);
	assert_int_equal(bs_entry_offset(e), off); /* a slot write, not a rewrite */
	t_assert_data(img, "t", NULL, "two", 3);
	/* Room asked for: one rewrite that grows. */
	u.capacity = 4096;
	u.data = "three";
	u.len = 5;
	assert_int_equal(bs_entry_update(e, &u), BS_OK);
	assert_true(bs_entry_offset(e) != off);
	assert_true(bs_entry_capacity(e) >= 4096);
	t_assert_data(img, "t", NULL, "three", 5);
	bs_image_close(img);
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* One name rule, public so devices and tools check names before a call. */
static void test_attr_name_rule(void **state)
{
	(void)state;
	char longest[BS_MAX_ATTR_NAME_LEN + 2];
	memset(longest, 'a', sizeof longest);
	longest[BS_MAX_ATTR_NAME_LEN] = 0;
	assert_true(bs_attr_name_valid("vendor.x-1"));
	assert_true(bs_attr_name_valid(longest));
	longest[BS_MAX_ATTR_NAME_LEN] = 'a';
	longest[BS_MAX_ATTR_NAME_LEN + 1] = 0;
	assert_false(bs_attr_name_valid(longest));
	assert_false(bs_attr_name_valid(NULL));
	assert_false(bs_attr_name_valid(""));
	assert_false(bs_attr_name_valid("a b"));
	assert_false(bs_attr_name_valid("tab\t"));
	assert_false(bs_attr_name_valid("caf\xc3\xa9"));
}

static void test_error_carries_errno(void **state)
{
	(void)state;
	bs_image *img;
	const char *msg;
	int err = -1;
	assert_int_equal(bs_image_open("/nonexistent/dir/img", 0, &img), BS_ENOENT);
	assert_int_equal(bs_error_last(&msg, &err), BS_ENOENT);
	assert_int_equal(err, ENOENT);
	assert_non_null(strstr(msg, "/nonexistent/dir/img"));
	/* A failure that is no system call's has errno 0. */
	struct bs_backend *be;
	img = mem_image(&be);
	bs_entry *e;
	assert_int_equal(bs_entry_find(img, "no", NULL, &e), BS_ENOENT);
	assert_int_equal(bs_error_last(NULL, &err), BS_ENOENT);
	assert_int_equal(err, 0);
	bs_image_close(img);
}

/* ---- backends and schemes of one's own --------------------------------------------------------- */

struct tiny {
	uint8_t b[16384];
	size_t len;
};

static int tiny_read(void *c, void *buf, size_t len, uint64_t off)
{
	struct tiny *t = c;
	if (off > t->len || len > t->len - off)
		return bs_error_set("tiny", NULL, NULL, off, BS_ECORRUPT, 0, "past the end");
	memcpy(buf, t->b + off, len);
	return BS_OK;
}
static int tiny_write(void *c, const void *buf, size_t len, uint64_t off)
{
	struct tiny *t = c;
	if (off > sizeof t->b || len > sizeof t->b - off)
		return bs_error_set("tiny", NULL, NULL, off, BS_ENOSPC, ENOSPC, "full");
	memcpy(t->b + off, buf, len);
	if (off + len > t->len)
		t->len = off + len;
	return BS_OK;
}
static int tiny_sync(void *c)
{
	(void)c;
	return BS_OK;
}
static int tiny_size(void *c, uint64_t *out)
{
	*out = ((struct tiny *)c)->len;
	return BS_OK;
}
static int tiny_resize(void *c, uint64_t size)
{
	struct tiny *t = c;
	if (size > sizeof t->b)
		return BS_ENOSPC;
	t->len = (size_t)size;
	return BS_OK;
}
static int tiny_closed;
static void tiny_close(void *c)
{
	free(c);
	tiny_closed++;
}
static const struct bs_backend_ops tiny_ops = {
	.version = BS_BACKEND_OPS_VERSION, .read_at = tiny_read, .write_at = tiny_write,
	.sync = tiny_sync, .size = tiny_size, .resize = tiny_resize, .close = tiny_close,
};

static int open_tiny(const char *uri, unsigned flags, struct bs_backend **out)
{
	(void)uri;
	(void)flags;
	struct tiny *t = calloc(1, sizeof *t);
	assert_non_null(t);
	return bs_backend_new(&tiny_ops, t, 1, out);
}

static void test_backend_of_ones_own(void **state)
{
	(void)state;
	struct bs_backend *be;
	/* A table without a required operation is refused (CTX is closed). */
	struct bs_backend_ops bad = tiny_ops;
	bad.sync = NULL;
	tiny_closed = 0;
	assert_int_equal(bs_backend_new(&bad, calloc(1, sizeof(struct tiny)), 1, &be), BS_EINVAL);
	assert_int_equal(tiny_closed, 1);
	bad = tiny_ops;
	bad.version = 0;
	assert_int_equal(bs_backend_new(&bad, calloc(1, sizeof(struct tiny)), 1, &be), BS_EINVAL);
	/* Registered, the scheme opens through bs_image_open(). */
	assert_int_equal(bs_backend_register("bad scheme", open_tiny), BS_EINVAL);
	assert_int_equal(bs_backend_register("tiny", open_tiny), BS_OK);
	bs_image *img;
	assert_int_equal(bs_image_open("tiny://anything", BS_OPEN_CREATE, &img), BS_OK);
	bs_entry *e = make_entry(img, "t", "n");
	assert_int_equal(bs_entry_write(e, "over tiny", 9), BS_OK);
	t_assert_data(img, "t", "n", "over tiny", 9);
	tiny_closed = 0;
	bs_image_close(img);
	assert_int_equal(tiny_closed, 1);
	/* An unknown scheme says so. */
	assert_int_equal(bs_image_open("nosuch://x", 0, &img), BS_EINVAL);
	assert_non_null(strstr(last_error(), "unknown URI scheme"));
	/* A backend's errors name the storage and keep the errno. */
	assert_int_equal(bs_image_open("tiny://again", BS_OPEN_CREATE, &img), BS_OK);
	static uint8_t big[20000];
	int err;
	assert_int_equal(bs_entry_create(img, "big", NULL, NULL, big, sizeof big, NULL), BS_ENOSPC);
	assert_int_equal(bs_error_last(NULL, &err), BS_ENOSPC);
	assert_int_equal(err, ENOSPC);
	bs_image_close(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_handles_are_einval),
		cmocka_unit_test(test_outputs_untouched_on_failure),
		cmocka_unit_test(test_unknown_struct_versions_refused),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_iteration_skips_library_entries),
		cmocka_unit_test(test_entries_carry_their_image),
		cmocka_unit_test(test_setting_current_value_writes_nothing),
		cmocka_unit_test(test_device_read_only_same_value_and_reserve),
		cmocka_unit_test(test_accept_survives_rewrites),
		cmocka_unit_test(test_update_plain_write_when_only_data_changes),
		cmocka_unit_test(test_attr_name_rule),
		cmocka_unit_test(test_error_carries_errno),
		cmocka_unit_test(test_backend_of_ones_own),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
