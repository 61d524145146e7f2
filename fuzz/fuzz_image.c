/* fuzz_image.c - libFuzzer target: arbitrary octets opened as an image.
 *
 * Read-only: open over the memory backend, stat, walk every entry and its
 * attributes, read every entry the check passes, check with the schema.
 * Read-write: open again, then replace, grow, re-attribute and delete the
 * first user entry and compact.  Nothing may crash, leak or trip a
 * sanitizer; and whenever the library says a change succeeded, the image it
 * leaves must open again and show that change. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/blobstore.h>
#include <blobstore/backend.h>
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                           \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "invariant failed: %s (line %d): %s\n", #cond, __LINE__, \
				last_error());                                                \
			abort();                                                             \
		}                                                                            \
	} while (0)

struct flagged {
	const bs_entry *e[64];
	size_t n;
	int other; /* problems not tied to a listed entry */
};

static void on_problem(void *ctx, const bs_entry *e, uint64_t off, int code, const char *msg)
{
	struct flagged *f = ctx;
	(void)off;
	MUST(msg != NULL);
	if (!code)
		return;
	if (e && f->n < 64)
		f->e[f->n++] = e;
	else
		f->other = 1;
}

static int is_flagged(const struct flagged *f, const bs_entry *e)
{
	if (f->other)
		return 1;
	for (size_t i = 0; i < f->n; i++)
		if (f->e[i] == e)
			return 1;
	return 0;
}

/* Every accessor on every entry: all must answer without crashing. */
static void walk(bs_image *img)
{
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	MUST(bs_image_stat(img, &st) == BS_OK);
	MUST(st.entries == bs_image_count(img, BS_ITER_LIBRARY));
	MUST(st.dir_end <= st.size);
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		MUST(e != NULL);
		MUST(bs_entry_type(e) != NULL);
		(void)bs_entry_name(e);
		MUST(bs_entry_offset(e) + bs_entry_size(e) <= st.size);
		(void)bs_entry_capacity(e);
		MUST(bs_entry_status_message(e) != NULL);
		(void)bs_entry_is_slotted(e);
		(void)bs_checksum_name(bs_entry_checksum(e));
		for (int mand = 0; mand < 2; mand++)
			for (size_t k = 0; k < bs_attr_count(e); k++) {
				const char *name;
				const uint8_t *v;
				size_t vl;
				unsigned fl_;
				MUST(bs_attr_at(e, k, &name, &v, &vl, &fl_) == BS_OK);
				if (((fl_ & BS_ATTR_MANDATORY) != 0) != (mand != 0))
					continue;
				char desc[128];
				bs_value_describe(v, vl, desc, sizeof desc);
				MUST(memchr(desc, 0, sizeof desc) != NULL);
				int64_t iv;
				int bv;
				char *sv = NULL;
				const uint8_t *bytes;
				size_t bl;
				unsigned fl;
				MUST(bs_attr_get(e, name, &v, &vl, &fl) == BS_OK);
				(void)bs_attr_get_int(e, name, &iv);
				(void)bs_attr_get_bool(e, name, &bv);
				if (bs_attr_get_str(e, name, &sv) == BS_OK)
					MUST(sv != NULL);
				free(sv);
				(void)bs_attr_get_bytes(e, name, &bytes, &bl);
			}
		if (!bs_entry_status(e) && bs_entry_type(e)[0]) {
			bs_entry *f;
			MUST(bs_entry_find(img, bs_entry_type(e), bs_entry_name(e), &f) == BS_OK);
			MUST(f == e);
		}
	}
}

static void read_all(bs_image *img, const struct flagged *fl)
{
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		/* A read-only reader retries a slot that fails its check (a
		 * writer may be mid-write) and sleeps between tries: read only
		 * what the check passed, so the fuzzer is not put to sleep. */
		if (is_flagged(fl, e))
			continue;
		void *buf = NULL;
		size_t len = 0;
		int rc = bs_entry_read_alloc(e, &buf, &len);
		if (rc == BS_OK) {
			MUST(buf != NULL);
			uint8_t small[8];
			size_t l2;
			int rc2 = bs_entry_read(e, small, sizeof small, &l2);
			MUST(rc2 == (len <= sizeof small ? BS_OK : BS_ERANGE));
			MUST(l2 == len);
		}
		free(buf);
	}
}

static void read_only(const uint8_t *data, size_t size)
{
	struct bs_backend *be;
	bs_image *img;
	if (bs_backend_mem(data, size, &be))
		return;
	if (bs_image_open_backend(be, "fuzz", BS_OPEN_RDONLY, &img))
		return;
	walk(img);
	struct flagged fl = {0};
	int rc = bs_image_check(img, 0, on_problem, &fl);
	MUST(rc == BS_OK || fl.n || fl.other);
	read_all(img, &fl);
	struct flagged fl2 = {0};
	(void)bs_image_check(img, 1, on_problem, &fl2);
	uint8_t raw[4];
	(void)bs_image_read_raw(img, 0, raw, sizeof raw);
	MUST(bs_image_read_raw(img, UINT64_MAX, raw, 1) != BS_OK);
	MUST(bs_entry_write(bs_entry_next(img, NULL, BS_ITER_LIBRARY), "x", 1) == BS_ERDONLY);
	bs_image_close(img);
}

/* The image the read-write backend now holds. */
static uint8_t *snapshot(struct bs_backend *be, size_t *len)
{
	const uint8_t *p = bs_backend_mem_data(be, len);
	uint8_t *c = malloc(*len ? *len : 1);
	if (c && *len)
		memcpy(c, p, *len);
	return c;
}

/* Reopens SNAP and checks that entry TYPE/NAME reads as WANT (WANT NULL:
 * that it is gone). */
static void verify(const uint8_t *snap, size_t len, const char *type, const char *name,
		   const uint8_t *want, size_t want_len)
{
	struct bs_backend *be;
	bs_image *img;
	MUST(bs_backend_mem(snap, len, &be) == BS_OK);
	MUST(bs_image_open_backend(be, "fuzz-reopen", BS_OPEN_RDONLY, &img) == BS_OK);
	bs_entry *e;
	int rc = bs_entry_find(img, type, name, &e);
	if (!want) {
		MUST(rc == BS_ENOENT);
	} else {
		MUST(rc == BS_OK);
		void *buf;
		size_t l;
		MUST(bs_entry_read_alloc(e, &buf, &l) == BS_OK);
		MUST(l == want_len && !memcmp(buf, want, l));
		free(buf);
	}
	bs_image_close(img);
}

static void read_write(const uint8_t *data, size_t size)
{
	struct bs_backend *be;
	bs_image *img;
	if (bs_backend_mem(data, size, &be))
		return;
	if (bs_image_open_backend(be, "fuzz", BS_OPEN_NOSYNC, &img))
		return;
	walk(img);
	bs_entry *e = NULL;
	for (bs_entry *x = NULL; !e && (x = bs_entry_next(img, x, 0));)
		if (!bs_entry_status(x))
			e = x;
	if (!e) {
		if (bs_entry_create(img, "fuzz.new", "n", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "abc", 3, &e) == BS_OK) {
			size_t len;
			uint8_t *snap = snapshot(be, &len);
			if (snap)
				verify(snap, len, "fuzz.new", "n", (const uint8_t *)"abc", 3);
			free(snap);
		}
		bs_image_close(img);
		return;
	}
	char *type = strdup(bs_entry_type(e));
	char *name = bs_entry_name(e) ? strdup(bs_entry_name(e)) : NULL;
	MUST(type && (name || !bs_entry_name(e)));
	uint8_t val[300];
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (uint8_t)(i ^ size);
	size_t n = bs_entry_capacity(e) < 40 ? bs_entry_capacity(e) : 40;
	size_t len;
	uint8_t *snap;
	if (bs_entry_write(e, val, n) == BS_OK) {
		snap = snapshot(be, &len);
		if (snap)
			verify(snap, len, type, name, val, n);
		free(snap);
		/* Larger than the capacity: a rewrite. */
		if (bs_entry_write(e, val, sizeof val) == BS_OK) {
			snap = snapshot(be, &len);
			if (snap)
				verify(snap, len, type, name, val, sizeof val);
			free(snap);
		}
	}
	uint8_t iv[BS_VALUE_MAX_INT];
	size_t il = 0;
	MUST(bs_value_encode_int(-12345, 0, iv, sizeof iv, &il) == BS_OK);
	if (bs_attr_set(e, "fuzz.attr", 0, iv, il) == BS_OK) {
		int64_t got;
		MUST(bs_attr_get_int(e, "fuzz.attr", &got) == BS_OK && got == -12345);
		MUST(bs_attr_remove(e, "fuzz.attr") == BS_OK);
	}
	if (bs_entry_delete(e) == BS_OK) {
		snap = snapshot(be, &len);
		if (snap)
			verify(snap, len, type, name, NULL, 0);
		free(snap);
	}
	if (bs_image_compact(img) == BS_OK) {
		struct bs_image_stat st = BS_IMAGE_STAT_INIT;
		MUST(bs_image_stat(img, &st) == BS_OK && st.free_holes == 0);
		walk(img);
		snap = snapshot(be, &len);
		if (snap)
			verify(snap, len, type, name, NULL, 0);
		free(snap);
	}
	free(type);
	free(name);
	bs_image_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_only(data, size);
	read_write(data, size);
	return 0;
}
