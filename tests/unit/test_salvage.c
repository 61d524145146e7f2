/* test_salvage.c - bs_image_salvage() over damaged copies of one image that
 * holds every kind of entry (both checks, raw, empty, large, named and
 * unnamed, with attributes, rewritten, encrypted with both ciphers, free
 * space and pads): truncated at entry boundaries and at many other
 * offsets, and with ranges overwritten by zeros and by garbage.  Each time
 * every entry that lies wholly outside the damage comes back with the same
 * type, name, attributes, check, capacity and data (encrypted ones read
 * with the key in the new image), nothing else appears, the damaged
 * storage is not changed, every loss is reported with its offset, and the
 * new image passes check.  Also: duplicates left by an interrupted rewrite,
 * stale copies past the end of fixed-size storage, a lost image entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* ---- the image and what it holds ----------------------------------------- */

#define MAX_ENT 24
#define MAX_ATTR 8

struct attr {
	char name[64];
	unsigned flags;
	uint8_t value[64];
	size_t len;
};

struct ent {
	char type[32], name[32];
	bool named, encrypted, slotted;
	uint64_t off, size;
	uint8_t *data;
	size_t len, capacity;
	enum bs_checksum check;
	struct attr attrs[MAX_ATTR];
	size_t nattrs;
};

struct model {
	uint8_t *img;
	size_t len;
	struct ent e[MAX_ENT];
	size_t n;
	uint8_t key[32];
	uint64_t id_off; /* where the bs.id attribute's pattern starts */
};

static struct model M;

/* The caller-visible attributes of E (bs.supersedes is the directory's). */
static size_t attrs_of(const bs_entry *e, struct attr *out)
{
	size_t n = 0;
	for (size_t i = 0; i < bs_attr_count(e); i++) {
		const char *nm;
		const uint8_t *v;
		size_t vl;
		unsigned fl;
		assert_int_equal(bs_attr_at(e, i, &nm, &v, &vl, &fl), BS_OK);
		if (!strcmp(nm, "bs.supersedes"))
			continue;
		assert_true(n < MAX_ATTR && vl <= sizeof out[n].value && strlen(nm) < 64);
		snprintf(out[n].name, sizeof out[n].name, "%s", nm);
		out[n].flags = fl & BS_ATTR_MANDATORY;
		memcpy(out[n].value, v, vl);
		out[n].len = vl;
		n++;
	}
	return n;
}

static void put(bs_image *im, const char *type, const char *name, size_t len, size_t cap,
		unsigned flags, enum bs_cipher cipher, enum bs_checksum check,
		const struct bs_attr *attrs, size_t nattrs, uint64_t seed)
{
	uint8_t *d = malloc(len ? len : 1);
	assert_non_null(d);
	t_fill(d, len, seed);
	struct bs_entry_opts o = BS_ENTRY_OPTS_INIT;
	o.capacity = cap;
	o.flags = flags;
	o.cipher = cipher;
	o.checksum = check;
	o.attrs = attrs;
	o.nattrs = nattrs;
	assert_int_equal(bs_entry_create(im, type, name, &o, d, len, NULL), BS_OK);
	free(d);
}

static void rewrite(bs_image *im, const char *type, const char *name, size_t len, uint64_t seed)
{
	bs_entry *e;
	uint8_t *d = malloc(len ? len : 1);
	assert_non_null(d);
	t_fill(d, len, seed);
	assert_int_equal(bs_entry_find(im, type, name, &e), BS_OK);
	assert_int_equal(bs_entry_write(e, d, len), BS_OK);
	free(d);
}

/* Reads what IMG holds into the model (the key loaded when encrypted). */
static void model_of(const uint8_t *img, size_t len, struct model *m)
{
	bs_image *im;
	assert_int_equal(t_open_mem(img, len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	if (bs_image_is_encrypted(im)) {
		bs_key *k;
		assert_int_equal(bs_key_from_bytes(m->key, 32, &k), BS_OK);
		assert_int_equal(bs_image_set_key(im, k), BS_OK);
		bs_key_free(k);
	}
	m->n = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(im, e, BS_ITER_LIBRARY));) {
		assert_true(m->n < MAX_ENT);
		struct ent *x = &m->e[m->n++];
		memset(x, 0, sizeof *x);
		snprintf(x->type, sizeof x->type, "%s", bs_entry_type(e));
		x->named = bs_entry_name(e) != NULL;
		if (x->named)
			snprintf(x->name, sizeof x->name, "%s", bs_entry_name(e));
		x->encrypted = bs_entry_is_encrypted(e);
		x->slotted = bs_entry_is_slotted(e);
		x->off = bs_entry_offset(e);
		x->size = bs_entry_size(e);
		x->capacity = bs_entry_capacity(e);
		x->check = bs_entry_checksum(e);
		x->nattrs = attrs_of(e, x->attrs);
		if (bs_entry_status(e) == BS_EUNSUPPORTED) {
			static const char *const known[] = {"x.future"};
			assert_int_equal(bs_entry_accept(e, known, 1), BS_OK);
			x->capacity = bs_entry_capacity(e);
		}
		void *d;
		assert_int_equal(bs_entry_read_alloc(e, &d, &x->len), BS_OK);
		x->data = d;
	}
	bs_image_close(im);
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].data);
	free(m->img);
}

static int setup(void **state)
{
	(void)state;
	bs_image *im;
	struct bs_backend *be;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im, &be), BS_OK);
	t_fill(M.key, sizeof M.key, 77);
	uint8_t v1[16], v2[16], v3[16];
	size_t l1 = t_der_utf8("007", v1, sizeof v1), l2 = t_der_int(42, v2, sizeof v2),
	       l3 = t_der_octets("\x00\xff", 2, v3, sizeof v3);
	struct bs_attr attrs[] = {BS_ATTR("serial", 0, v1, l1), BS_ATTR("revision", 0, v2, l2),
				  BS_ATTR("key", 0, v3, l3), BS_ATTR("flagged", 0, NULL, 0),
				  BS_ATTR("x.future", BS_ATTR_MANDATORY, v2, l2)};
	put(im, "vtpm", "permall", 1229, 4096, 0, 0, BS_CHECKSUM_SHA256, attrs, 4, 1);
	put(im, "vtpm", "volatilestate", 3000, 0, 0, 0, 0, NULL, 0, 2);
	rewrite(im, "vtpm", "volatilestate", 2900, 3); /* slot write: generation 2 */
	put(im, "nvram", "vars", 5000, 8192, 0, 0, 0, attrs + 1, 1, 4);
	put(im, "gone", "deleted", 700, 0, 0, 0, 0, NULL, 0, 5);
	put(im, "eeprom", NULL, 64, 0, BS_ENTRY_RAW, 0, 0, NULL, 0, 6);
	put(im, "empty", NULL, 0, 0, 0, 0, 0, NULL, 0, 7);
	rewrite(im, "nvram", "vars", 9000, 8); /* grows: a rewritten copy, free space */
	bs_entry *g;
	assert_int_equal(bs_entry_find(im, "gone", "deleted", &g), BS_OK);
	assert_int_equal(bs_entry_delete(g), BS_OK);
	put(im, "big", "64k+", 70000, 0, 0, 0, BS_CHECKSUM_SHA256, NULL, 0, 9);
	put(im, "future", "f", 100, 0, 0, 0, 0, attrs + 4, 1, 10); /* refused here */
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(M.key, 32, &k), BS_OK);
	assert_int_equal(bs_image_init_encryption(im, k, NULL), BS_OK);
	bs_key_free(k);
	put(im, "secret", "s1", 700, 0, BS_ENTRY_ENCRYPT, BS_CIPHER_AES_256_GCM, 0, attrs, 1, 11);
	put(im, "secret", "s2", 2000, 0, BS_ENTRY_ENCRYPT, BS_CIPHER_CHACHA20_POLY1305, 0, NULL,
	    0, 12);
	put(im, "tail", "last", 300, 0, 0, 0, 0, NULL, 0, 13);
	M.img = t_mem_copy(be, &M.len);
	bs_image_close(im);
	/* The refused entry reads like any other once accepted: model it
	 * with a copy where its mandatory attribute is known. */
	model_of(M.img, M.len, &M);
	static const uint8_t pat[] = {0x16, 5, 'b', 's', '.', 'i', 'd', 0x04, 16};
	uint8_t *p = memmem(M.img, M.len, pat, sizeof pat);
	assert_non_null(p);
	M.id_off = (uint64_t)(p - M.img);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	model_free(&M);
	return 0;
}

/* ---- one salvage ------------------------------------------------------------- */

struct item {
	int recovered, code;
	uint64_t off, len;
	char type[32], name[32];
	bool has_type, has_name, has_note;
};

struct result {
	struct item it[4 * MAX_ENT + 8];
	size_t n;
	uint8_t *img;
	size_t len;
};

static void collect(void *ctx, const struct bs_salvage_item *si)
{
	struct result *r = ctx;
	assert_true(r->n < sizeof r->it / sizeof r->it[0]);
	struct item *x = &r->it[r->n++];
	memset(x, 0, sizeof *x);
	x->recovered = si->recovered;
	x->code = si->code;
	x->off = si->offset;
	x->len = si->length;
	x->has_type = si->type != NULL;
	x->has_name = si->name != NULL;
	x->has_note = si->note != NULL;
	if (si->type)
		snprintf(x->type, sizeof x->type, "%s", si->type);
	if (si->name)
		snprintf(x->name, sizeof x->name, "%s", si->name);
}

/* Salvages the LEN octets DMG (from memory); the damaged storage must not
 * change. */
static void salvage(const uint8_t *dmg, size_t len, unsigned flags, struct result *r)
{
	struct bs_backend *src, *dst;
	memset(r, 0, sizeof *r);
	assert_int_equal(bs_backend_mem(dmg, len, &src), BS_OK);
	assert_int_equal(bs_backend_mem(NULL, 0, &dst), BS_OK);
	struct bs_salvage_opts o = BS_SALVAGE_OPTS_INIT;
	o.flags = flags | BS_SALVAGE_NOSYNC;
	o.cb = collect;
	o.ctx = r;
	int rc = bs_image_salvage(src, "damaged.img", dst, "new.img", &o);
	if (rc)
		fail_msg("salvage: %s", last_error());
	size_t sl;
	const uint8_t *sd = bs_backend_mem_data(src, &sl);
	assert_int_equal(sl, len);
	assert_memory_equal(sd, dmg, len);
	r->img = t_mem_copy(dst, &r->len);
	bs_backend_free(src);
	bs_backend_free(dst);
}

static const struct ent *model_find(const char *type, const char *name)
{
	for (size_t i = 0; i < M.n; i++)
		if (!strcmp(M.e[i].type, type) && M.e[i].named == (name != NULL) &&
		    (!name || !strcmp(M.e[i].name, name)))
			return &M.e[i];
	return NULL;
}

/* Counts check's errors but the image-level one of a lost key entry. */
static void count_entry_errors(void *ctx, const bs_entry *e, uint64_t offset, int code,
			       const char *msg)
{
	(void)offset;
	(void)msg;
	if (code && code != BS_EUNSUPPORTED && (e || code != BS_ECORRUPT))
		++*(int *)ctx;
}

static bool any_encrypted(bs_image *im)
{
	for (bs_entry *e = NULL; (e = bs_entry_next(im, e, BS_ITER_LIBRARY));)
		if (bs_entry_is_encrypted(e))
			return true;
	return false;
}

static bool overlaps(uint64_t off, uint64_t len, uint64_t d0, uint64_t d1)
{
	return off < d1 && d0 < off + len;
}

/* The checks after salvaging a copy damaged in [D0, D1) (D1 = D0: only a
 * truncation at D0). */
static void verify(const struct result *r, uint64_t d0, uint64_t d1, const char *what)
{
	bs_image *im;
	if (t_open_mem(r->img, r->len, BS_OPEN_RDONLY, &im, NULL))
		fail_msg("%s: the new image does not open: %s", what, last_error());
	int problems = 0, others = 0;
	int rc = bs_image_check(im, 0, t_count_cb, &problems);
	/* The refused entry is reported by check; nothing else may be, but
	 * that the key entry is lost when encrypted entries came back without
	 * it (an image-level problem). */
	bs_image_check(im, 0, count_entry_errors, &others);
	bool orphaned = !bs_image_is_encrypted(im) && any_encrypted(im);
	if (rc && rc != BS_EUNSUPPORTED && !(rc == BS_ECORRUPT && orphaned && !others))
		fail_msg("%s: the new image fails check (%d problems): %s", what, problems,
			 last_error());
	uint64_t end = d1 > d0 ? d1 : M.len; /* a truncation loses all after D0 */
	bool id_kept = !overlaps(M.id_off, 9 + 16, d0, end);
	const struct ent *key = model_find("bs.key", NULL);
	bool key_kept = key && !overlaps(key->off, key->size, d0, end);
	if (orphaned && key_kept && id_kept)
		fail_msg("%s: the key entry was intact but is not in the new image", what);
	if (key_kept && id_kept) {
		bs_key *k;
		assert_int_equal(bs_key_from_bytes(M.key, 32, &k), BS_OK);
		if (bs_image_set_key(im, k))
			fail_msg("%s: the key does not open the new image: %s", what, last_error());
		bs_key_free(k);
	}
	/* Nothing that was not there, unless the damage made it: type, name and
	 * attributes have no check of their own (but for encrypted entries,
	 * whose associated data covers them). */
	for (bs_entry *e = NULL; (e = bs_entry_next(im, e, BS_ITER_LIBRARY));) {
		if (model_find(bs_entry_type(e), bs_entry_name(e)))
			continue;
		const char *nm = bs_entry_name(e);
		bool in_damage = false;
		for (size_t k = 0; k < r->n; k++)
			in_damage |= r->it[k].recovered && !strcmp(r->it[k].type, bs_entry_type(e)) &&
				     r->it[k].has_name == (nm != NULL) &&
				     (!nm || !strcmp(r->it[k].name, nm)) &&
				     overlaps(r->it[k].off, r->it[k].len, d0, end);
		if (!in_damage)
			fail_msg("%s: entry '%s'/'%s' was not in the image", what, bs_entry_type(e),
				 nm ? nm : "");
	}
	for (size_t i = 0; i < M.n; i++) {
		const struct ent *x = &M.e[i];
		if (overlaps(x->off, x->size, d0, end) || !strcmp(x->type, "bs.image"))
			continue;
		if ((x->encrypted || !strcmp(x->type, "bs.key")) && !id_kept)
			continue; /* bound to the image id, which the damage hit */
		bs_entry *e;
		if (bs_entry_find(im, x->type, x->named ? x->name : NULL, &e))
			fail_msg("%s: entry '%s'/'%s' at %llu (%llu octets) lies outside the damage "
				 "but did not come back", what, x->type, x->name,
				 (unsigned long long)x->off, (unsigned long long)x->size);
		bool reported = false;
		for (size_t k = 0; k < r->n; k++)
			reported |= r->it[k].recovered && r->it[k].off == x->off;
		if (!reported)
			fail_msg("%s: '%s'/'%s' not reported recovered at offset %llu", what, x->type,
				 x->name, (unsigned long long)x->off);
		struct attr a[MAX_ATTR];
		size_t na = attrs_of(e, a);
		assert_int_equal(na, x->nattrs);
		for (size_t k = 0; k < na; k++) {
			assert_string_equal(a[k].name, x->attrs[k].name);
			assert_int_equal(a[k].flags, x->attrs[k].flags);
			assert_int_equal(a[k].len, x->attrs[k].len);
			assert_memory_equal(a[k].value, x->attrs[k].value, a[k].len);
		}
		assert_int_equal(bs_entry_is_encrypted(e), x->encrypted);
		assert_int_equal(bs_entry_is_slotted(e), x->slotted);
		assert_int_equal(bs_entry_checksum(e), x->check);
		if (!strncmp(x->type, "bs.", 3))
			continue;
		if (!strcmp(x->type, "future")) {
			static const char *const known[] = {"x.future"};
			assert_int_equal(bs_entry_accept(e, known, 1), BS_OK);
		}
		assert_int_equal(bs_entry_capacity(e), x->capacity);
		if (x->encrypted && !key_kept)
			continue;
		void *d;
		size_t dl;
		if (bs_entry_read_alloc(e, &d, &dl))
			fail_msg("%s: '%s'/'%s' does not read: %s", what, x->type, x->name,
				 last_error());
		if (dl != x->len || memcmp(d, x->data, dl))
			fail_msg("%s: '%s'/'%s' reads other data", what, x->type, x->name);
		free(d);
	}
	/* Every loss has an offset in or next to the damage, and a reason. */
	for (size_t k = 0; k < r->n; k++) {
		const struct item *it = &r->it[k];
		if (it->recovered)
			continue;
		assert_true(it->has_note);
		assert_true(it->code != BS_OK);
		if (it->code == BS_ECORRUPT && !(it->off <= end && d0 <= it->off + it->len))
			fail_msg("%s: a loss reported at %llu+%llu, away from the damage at %llu-%llu",
				 what, (unsigned long long)it->off, (unsigned long long)it->len,
				 (unsigned long long)d0, (unsigned long long)d1);
	}
	bs_image_close(im);
}

/* ---- the tests ---------------------------------------------------------------- */

static void test_intact_image_comes_back_whole(void **state)
{
	(void)state;
	struct result r;
	salvage(M.img, M.len, 0, &r);
	verify(&r, M.len, M.len, "intact");
	for (size_t k = 0; k < r.n; k++)
		if (!r.it[k].recovered)
			fail_msg("intact image: a loss at %llu", (unsigned long long)r.it[k].off);
	/* One item per entry, the image entry too. */
	assert_int_equal(r.n, M.n);
	/* Compact, in effect: no free space, no pads, no bs.supersedes. */
	bs_image *im;
	assert_int_equal(t_open_mem(r.img, r.len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_stat(im, &st), BS_OK);
	assert_int_equal(st.free_holes, 0);
	assert_memory_equal(bs_image_id(im), M.img + M.id_off + 9, 16);
	bs_image_close(im);
	free(r.img);
}

static void test_every_truncation_keeps_what_precedes_it(void **state)
{
	(void)state;
	/* Every entry boundary and its neighbours, then pseudo-random points. */
	uint64_t cuts[600];
	size_t nc = 0;
	for (size_t i = 0; i < M.n; i++)
		for (int d = -2; d <= 2; d++) {
			int64_t c = (int64_t)M.e[i].off + d;
			int64_t c2 = (int64_t)(M.e[i].off + M.e[i].size) + d;
			if (c > 0 && (uint64_t)c < M.len)
				cuts[nc++] = (uint64_t)c;
			if (c2 > 0 && (uint64_t)c2 < M.len)
				cuts[nc++] = (uint64_t)c2;
		}
	cuts[nc++] = 1;
	cuts[nc++] = 2;
	cuts[nc++] = M.len - 1;
	uint64_t seed = 1234;
	size_t more = t_quick() ? 60 : 300;
	for (size_t i = 0; i < more; i++)
		cuts[nc++] = 1 + t_rand(&seed) % (M.len - 1);
	for (size_t i = 0; i < nc; i++) {
		struct result r;
		char what[64];
		snprintf(what, sizeof what, "truncated at %llu", (unsigned long long)cuts[i]);
		salvage(M.img, (size_t)cuts[i], 0, &r);
		verify(&r, cuts[i], cuts[i], what);
		free(r.img);
	}
}

static void overwrite_and_check(uint64_t start, uint64_t len, bool garbage, uint64_t seed)
{
	if (start >= M.len)
		return;
	if (len > M.len - start)
		len = M.len - start;
	uint8_t *d = malloc(M.len);
	assert_non_null(d);
	memcpy(d, M.img, M.len);
	if (garbage)
		t_fill(d + start, (size_t)len, seed);
	else
		memset(d + start, 0, (size_t)len);
	struct result r;
	char what[96];
	snprintf(what, sizeof what, "%s over %llu+%llu", garbage ? "garbage" : "zeros",
		 (unsigned long long)start, (unsigned long long)len);
	salvage(d, M.len, 0, &r);
	verify(&r, start, start + len, what);
	free(r.img);
	free(d);
}

static void test_overwritten_ranges_lose_only_what_they_hit(void **state)
{
	(void)state;
	/* Whole entries, their first and last octets, the pads and free space
	 * between them, the framing. */
	for (size_t i = 0; i < M.n; i++) {
		const struct ent *x = &M.e[i];
		for (int g = 0; g < 2; g++) {
			overwrite_and_check(x->off, x->size, g, i);
			overwrite_and_check(x->off, 1, g, i);
			overwrite_and_check(x->off + x->size - 1, 1, g, i);
			overwrite_and_check(x->off + x->size, 2, g, i);
			overwrite_and_check(x->off + x->size / 2, 16, g, i);
		}
	}
	overwrite_and_check(0, 2, false, 0);
	overwrite_and_check(0, 2, true, 1);
	overwrite_and_check(M.len - 2, 2, true, 2);
	static const uint64_t lens[] = {1, 2, 7, 64, 513, 4096, 20000};
	uint64_t seed = 99;
	size_t n = t_quick() ? 40 : 200;
	for (size_t i = 0; i < n; i++) {
		uint64_t start = t_rand(&seed) % M.len;
		overwrite_and_check(start, lens[t_rand(&seed) % 7], i % 2, i);
	}
}

static void test_broken_framing_is_stepped_over(void **state)
{
	(void)state;
	/* A free element's length made short: the zeros behind it read as an
	 * end-of-contents (the one-bit flip of issue 15's D1). */
	uint8_t *d = malloc(M.len);
	assert_non_null(d);
	memcpy(d, M.img, M.len);
	size_t free_at = 0;
	for (size_t i = 0; i + 1 < M.n; i++) {
		uint64_t end = M.e[i].off + M.e[i].size;
		if (end < M.e[i + 1].off && d[end] == 0x04) {
			free_at = end;
			break;
		}
		if (end + 2 < M.e[i + 1].off && d[end] == 0x05 && d[end + 2] == 0x04) {
			free_at = end + 2;
			break;
		}
	}
	assert_true(free_at > 0);
	assert_true(d[free_at + 1] == 0x82); /* a long length: make it one octet */
	uint64_t flen = 4 + ((uint64_t)d[free_at + 2] << 8 | d[free_at + 3]);
	d[free_at + 1] = 0x02;
	struct result r;
	salvage(d, M.len, 0, &r);
	/* Only the free element is damaged: every entry comes back. */
	verify(&r, free_at, free_at + flen, "free element length");
	free(r.img);
	free(d);
}

/* Counts check's note about a superseded copy still in the directory. */
static void superseded_cb(void *ctx, const bs_entry *e, uint64_t offset, int code,
			  const char *msg)
{
	(void)e;
	(void)offset;
	if (!code && strstr(msg, "interrupted rewrite left an old copy"))
		++*(int *)ctx;
}

/* An interrupted rewrite: the old copy and the new one (naming it in
 * bs.supersedes) both live.  The new one wins, as at open. */
static void test_interrupted_rewrite_keeps_the_new_copy(void **state)
{
	(void)state;
	struct bs_backend *be;
	struct fault_plan plan = {0};
	bs_image *im;
	/* Count the writes of a growing write, then stop after its commit. */
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im, &be), BS_OK);
	put(im, "dev", "x", 100, 0, 0, 0, 0, NULL, 0, 1);
	put(im, "dev", "y", 100, 0, 0, 0, 0, NULL, 0, 2);
	size_t len;
	uint8_t *base = t_mem_copy(be, &len);
	bs_image_close(im);
	/* Power lost after each write of a growing write in turn, until the
	 * state with both copies turns up: after the commit of the new copy,
	 * before the delete of the old one. */
	uint8_t big[500];
	t_fill(big, sizeof big, 3);
	uint8_t *crashed = NULL;
	size_t cl = 0;
	bs_image *chk;
	for (plan.crash_after = 1; !crashed && plan.crash_after < 12; plan.crash_after++) {
		assert_int_equal(fault_backend_new(base, len, &plan, &be), BS_OK);
		assert_int_equal(bs_image_open_backend(be, "fault.img", 0, &im), BS_OK);
		bs_entry *e;
		assert_int_equal(bs_entry_find(im, "dev", "x", &e), BS_OK);
		bs_entry_write(e, big, sizeof big);
		const uint8_t *cd = fault_backend_data(be, &cl);
		uint8_t *c = malloc(cl);
		assert_non_null(c);
		memcpy(c, cd, cl);
		bs_image_close(im);
		int notes = 0;
		assert_int_equal(t_open_mem(c, cl, BS_OPEN_RDONLY, &chk, NULL), BS_OK);
		bs_image_check(chk, 0, superseded_cb, &notes);
		void *v;
		size_t vl;
		assert_int_equal(bs_entry_find(chk, "dev", "x", &e), BS_OK);
		assert_int_equal(bs_entry_read_alloc(e, &v, &vl), BS_OK);
		bool both = vl == sizeof big && notes > 0;
		free(v);
		bs_image_close(chk);
		if (both)
			crashed = c;
		else
			free(c);
	}
	assert_non_null(crashed);
	struct result r;
	salvage(crashed, cl, 0, &r);
	assert_int_equal(t_open_mem(r.img, r.len, BS_OPEN_RDONLY, &chk, NULL), BS_OK);
	t_assert_data(chk, "dev", "x", big, sizeof big);
	uint8_t y[100];
	t_fill(y, sizeof y, 2);
	t_assert_data(chk, "dev", "y", y, sizeof y);
	bs_image_close(chk);
	bool old_reported = false;
	for (size_t k = 0; k < r.n; k++)
		old_reported |= !r.it[k].recovered && r.it[k].code == BS_EEXIST &&
				!strcmp(r.it[k].type, "dev") && !strcmp(r.it[k].name, "x");
	assert_true(old_reported);
	free(r.img);
	free(crashed);
	free(base);
}

/* Fixed-size storage keeps stale copies past the end of the directory
 * (compaction in place): an entry deleted after a compaction must not come
 * back, unless asked for. */
static void test_stale_copies_past_the_end_of_fixed_storage(void **state)
{
	(void)state;
	char *path = t_tmppath("salvage-fixed");
	char uri[512];
	snprintf(uri, sizeof uri, "blk://%s?size=262144", path);
	bs_image *im;
	assert_int_equal(bs_image_open(uri, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &im), BS_OK);
	put(im, "dev", "kept", 300, 0, 0, 0, 0, NULL, 0, 1);
	put(im, "dev", "deleted", 300, 0, 0, 0, 0, NULL, 0, 2);
	put(im, "dev", "scratch", 300, 0, 0, 0, 0, NULL, 0, 3);
	bs_entry *e;
	assert_int_equal(bs_entry_find(im, "dev", "scratch", &e), BS_OK);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	assert_int_equal(bs_image_compact(im), BS_OK);
	assert_int_equal(bs_entry_find(im, "dev", "deleted", &e), BS_OK);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	bs_image_close(im);
	for (int past = 0; past < 2; past++) {
		struct bs_backend *src, *dst;
		assert_int_equal(bs_backend_open(uri, BS_OPEN_RDONLY, &src), BS_OK);
		assert_int_equal(bs_backend_mem(NULL, 0, &dst), BS_OK);
		struct result r;
		memset(&r, 0, sizeof r);
		struct bs_salvage_opts o = BS_SALVAGE_OPTS_INIT;
		o.flags = BS_SALVAGE_NOSYNC | (past ? BS_SALVAGE_PAST_END : 0);
		o.cb = collect;
		o.ctx = &r;
		assert_int_equal(bs_image_salvage(src, uri, dst, NULL, &o), BS_OK);
		size_t nl;
		uint8_t *ni = t_mem_copy(dst, &nl);
		bs_backend_free(src);
		bs_backend_free(dst);
		bs_image *n;
		assert_int_equal(t_open_mem(ni, nl, BS_OPEN_RDONLY, &n, NULL), BS_OK);
		uint8_t d[300];
		t_fill(d, sizeof d, 1);
		t_assert_data(n, "dev", "kept", d, sizeof d);
		int rc = bs_entry_find(n, "dev", "deleted", &e);
		assert_int_equal(rc, past ? BS_OK : BS_ENOENT);
		bool stale = false;
		for (size_t k = 0; k < r.n; k++)
			stale |= r.it[k].code == BS_ESTALE && !strcmp(r.it[k].name, "deleted");
		assert_int_equal(stale, !past);
		bs_image_close(n);
		free(ni);
	}
	unlink(path);
	free(path);
}

static void test_lost_image_entry_takes_encryption_with_it(void **state)
{
	(void)state;
	/* The image id itself destroyed: encrypted entries and bs.key cannot be
	 * used with any other id, so they are reported lost, not copied. */
	uint8_t *d = malloc(M.len);
	assert_non_null(d);
	memcpy(d, M.img, M.len);
	const struct ent *img = model_find("bs.image", NULL);
	memset(d + img->off, 0xee, (size_t)img->size);
	struct result r;
	salvage(d, M.len, 0, &r);
	verify(&r, img->off, img->off + img->size, "image entry overwritten");
	size_t lost_key = 0;
	for (size_t k = 0; k < r.n; k++)
		lost_key += !r.it[k].recovered && r.it[k].code == BS_EKEY;
	assert_int_equal(lost_key, 3); /* bs.key, secret/s1, secret/s2 */
	free(r.img);
	/* Only its head damaged, the id intact: rebuilt with that id, and the
	 * encrypted entries open with the key. */
	memcpy(d, M.img, M.len);
	d[img->off] = 0x99;
	salvage(d, M.len, 0, &r);
	verify(&r, img->off, img->off + 1, "image entry head");
	bs_image *n;
	assert_int_equal(t_open_mem(r.img, r.len, BS_OPEN_RDONLY, &n, NULL), BS_OK);
	assert_memory_equal(bs_image_id(n), M.img + M.id_off + 9, 16);
	bs_image_close(n);
	free(r.img);
	free(d);
}

static void test_arguments(void **state)
{
	(void)state;
	struct bs_backend *a, *b;
	assert_int_equal(bs_backend_mem(M.img, M.len, &a), BS_OK);
	assert_int_equal(bs_backend_mem("x", 1, &b), BS_OK);
	assert_int_equal(bs_image_salvage(NULL, NULL, b, NULL, NULL), BS_EINVAL);
	assert_int_equal(bs_image_salvage(a, NULL, a, NULL, NULL), BS_EINVAL);
	assert_int_equal(bs_image_salvage(a, NULL, b, NULL, NULL), BS_EEXIST); /* B not empty */
	struct bs_salvage_opts o = BS_SALVAGE_OPTS_INIT;
	o.version = 99;
	bs_backend_free(b);
	assert_int_equal(bs_backend_mem(NULL, 0, &b), BS_OK);
	assert_int_equal(bs_image_salvage(a, NULL, b, NULL, &o), BS_EINVAL);
	bs_backend_free(a);
	bs_backend_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intact_image_comes_back_whole),
		cmocka_unit_test(test_every_truncation_keeps_what_precedes_it),
		cmocka_unit_test(test_overwritten_ranges_lose_only_what_they_hit),
		cmocka_unit_test(test_broken_framing_is_stepped_over),
		cmocka_unit_test(test_interrupted_rewrite_keeps_the_new_copy),
		cmocka_unit_test(test_stale_copies_past_the_end_of_fixed_storage),
		cmocka_unit_test(test_lost_image_entry_takes_encryption_with_it),
		cmocka_unit_test(test_arguments),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
