/* test_append.c - what lies past the directory's end-of-contents.
 *
 *  - A failed append leaves the storage exactly as it was: EIO and ENOSPC
 *    at every write and sync of an append (creating an entry, a rewrite
 *    that grows one), writes cut short by a full disk, on growable storage
 *    (with and without what an earlier uncommitted append left) and on
 *    fixed-size storage whose free space holds octets.  The octets and the
 *    size after the failed call are those before it, and the handle goes
 *    on.  When taking the octets back fails too, the message says so.
 *  - An entry past the end-of-contents where no append puts one (behind
 *    zeros: a flipped length bit in a zero-filled free element of an old
 *    image forged the end) is an error check reports with its offset;
 *    appends and compaction refuse and leave the storage unchanged, and
 *    salvage recovers the hidden entries.  An uncommitted append (a crash
 *    after its first write) still opens, checks with a note, and is
 *    overwritten by the next append. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "storage/storage.h" /* the backend table, to forward to */

/* ---- fixed-size storage over the fault backend ----------------------------- */

/* No resize, no replace, writes past SIZE refused: what a block device or
 * NBD export looks like to the library. */
struct fixed {
	struct bs_backend *inner; /* a fault backend, freed with this one */
	uint64_t size;
};

static int fx_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct fixed *f = ctx;
	return f->inner->ops->read_at(f->inner->ctx, buf, len, off);
}

static int fx_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct fixed *f = ctx;
	if (off > f->size || len > f->size - off)
		return BS_ENOSPC;
	return f->inner->ops->write_at(f->inner->ctx, buf, len, off);
}

static int fx_sync(void *ctx)
{
	struct fixed *f = ctx;
	return f->inner->ops->sync(f->inner->ctx);
}

static int fx_size(void *ctx, uint64_t *out)
{
	*out = ((struct fixed *)ctx)->size;
	return BS_OK;
}

static void fx_close(void *ctx)
{
	struct fixed *f = ctx;
	bs_backend_free(f->inner);
	free(f);
}

static const struct bs_backend_ops fixed_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = fx_read,
	.write_at = fx_write,
	.sync = fx_sync,
	.size = fx_size,
	.close = fx_close,
};

/* The storage under test: a fault backend with PLAN over ST, presented as
 * fixed-size storage when FIXED.  *FB gets the fault backend. */
static struct bs_backend *storage_new(const uint8_t *st, size_t len, bool fixed,
				      const struct fault_plan *plan, struct bs_backend **fb)
{
	assert_int_equal(fault_backend_new(st, len, plan, fb), BS_OK);
	if (!fixed)
		return *fb;
	struct fixed *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->inner = *fb;
	f->size = len;
	struct bs_backend *be;
	assert_int_equal(bs_backend_new(&fixed_ops, f, 1, &be), BS_OK);
	return be;
}

/* A copy of what the fault backend FB holds (the image that owns it is
 * still open: closing it frees the backend). */
static uint8_t *snap(struct bs_backend *fb, size_t *len)
{
	const uint8_t *d = fault_backend_data(fb, len);
	uint8_t *c = malloc(*len ? *len : 1);
	assert_non_null(c);
	memcpy(c, d, *len);
	return c;
}

/* ---- the storage before the call ------------------------------------------- */

#define FIXED_SIZE 16384u

static uint8_t *base_img;
static size_t base_len;

/* An image with two entries: cfg (unnamed) and target/x. */
static int setup(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 8};
	assert_int_equal(bs_entry_create(im, "cfg", NULL, &o, "c", 1, NULL), BS_OK);
	o.capacity = 16;
	assert_int_equal(bs_entry_create(im, "target", "x", &o, "t0", 2, NULL), BS_OK);
	base_img = t_mem_copy(be, &base_len);
	bs_image_close(im);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(base_img);
	return 0;
}

/* What storage looks like before the call. */
struct layout {
	const char *name;
	bool fixed;
	size_t leftover; /* growable: octets an earlier uncommitted append left */
};

static const struct layout layouts[] = {
	{"file", false, 0},
	{"file with a short leftover", false, 24},
	{"file with a long leftover", false, 3000},
	{"fixed-size storage", true, 0},
};

/* The storage of layout L (malloc'ed, *LEN octets).  Past the directory:
 * random octets that no scan takes for entries (a leftover starts with
 * ff; fixed storage's free space is random up to its recovery area, which
 * is zero). */
static uint8_t *layout_storage(const struct layout *l, size_t *len)
{
	size_t n = l->fixed ? FIXED_SIZE : base_len + l->leftover;
	uint8_t *st = calloc(1, n);
	assert_non_null(st);
	memcpy(st, base_img, base_len);
	size_t fill = l->fixed ? FIXED_SIZE - 4096 - base_len : l->leftover;
	t_fill(st + base_len, fill, 7);
	if (fill)
		st[base_len] = 0xff;
	*len = n;
	return st;
}

/* ---- the operations that append --------------------------------------------- */

static uint8_t N1[60], G1[200];

static int op_create(bs_image *im)
{
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 100};
	return bs_entry_create(im, "new", "n", &o, N1, sizeof N1, NULL);
}

/* Data past the capacity: a rewrite to a larger copy (appended), then the
 * delete of the old copy. */
static int op_grow(bs_image *im)
{
	bs_entry *e;
	assert_int_equal(bs_entry_find(im, "target", "x", &e), BS_OK);
	return bs_entry_write(e, G1, sizeof G1);
}

struct op {
	const char *name;
	int (*run)(bs_image *im);
	const char *type, *name_;
	const uint8_t *data;
	size_t len;
};

static const struct op ops[] = {
	{"create", op_create, "new", "n", N1, sizeof N1},
	{"grow", op_grow, "target", "x", G1, sizeof G1},
};

/* The append's writes and syncs, the first of each operation: the entry
 * and its end-of-contents, a sync, the commit octet, a sync. */
#define APPEND_OPS 4

static void assert_same(const uint8_t *a, size_t al, const uint8_t *b, size_t bl,
			const char *what)
{
	if (al != bl)
		fail_msg("%s: storage is %zu octets, was %zu", what, al, bl);
	for (size_t i = 0; i < al; i++)
		if (a[i] != b[i])
			fail_msg("%s: octet %zu is %02x, was %02x", what, i, a[i], b[i]);
}

/* OP, with a failure injected by PLAN into the I/O of its append, fails
 * with CODE and leaves the storage as it was; the handle goes on (a write
 * of cfg, the operation again), and the image reopens with the result. */
static void failed_append_case(const struct layout *l, const struct op *op,
			       const struct fault_plan *plan, int code, const char *what)
{
	size_t len;
	uint8_t *st = layout_storage(l, &len);
	struct bs_backend *fb;
	struct bs_backend *be = storage_new(st, len, l->fixed, plan, &fb);
	bs_image *im;
	assert_int_equal(bs_image_open_backend(be, "mem.img", 0, &im), BS_OK);
	int rc = op->run(im);
	if (rc != code)
		fail_msg("%s: gave %d (%s), expected %d", what, rc, last_error(), code);
	assert_non_null(strstr(last_error(), "mem.img"));
	size_t al;
	const uint8_t *after = fault_backend_data(fb, &al);
	assert_same(after, al, st, len, what);
	/* Nothing is unknown: the handle writes on. */
	bs_entry *e;
	assert_int_equal(bs_entry_find(im, "cfg", NULL, &e), BS_OK);
	if ((rc = bs_entry_write(e, "after", 5)))
		fail_msg("%s: the next write gave %d: %s", what, rc, last_error());
	if ((rc = op->run(im)))
		fail_msg("%s: the operation again gave %d: %s", what, rc, last_error());
	uint8_t *copy = snap(fb, &al);
	bs_image_close(im);
	/* A reader sees both. */
	be = storage_new(copy, al, l->fixed, &(struct fault_plan){.tear_at = SIZE_MAX}, &fb);
	assert_int_equal(bs_image_open_backend(be, "mem.img", BS_OPEN_RDONLY, &im), BS_OK);
	t_assert_data(im, "cfg", NULL, "after", 5);
	t_assert_data(im, op->type, op->name_, op->data, op->len);
	assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_OK);
	bs_image_close(im);
	free(copy);
	free(st);
}

/* How many writes and syncs OP makes on layout L. */
static uint64_t count_io(const struct layout *l, const struct op *op, uint64_t *before)
{
	size_t len;
	uint8_t *st = layout_storage(l, &len);
	struct bs_backend *fb;
	struct bs_backend *be =
		storage_new(st, len, l->fixed, &(struct fault_plan){.tear_at = SIZE_MAX}, &fb);
	bs_image *im;
	assert_int_equal(bs_image_open_backend(be, "mem.img", 0, &im), BS_OK);
	struct fault_stats s0, s1;
	fault_backend_stats(fb, &s0);
	assert_int_equal(op->run(im), BS_OK);
	fault_backend_stats(fb, &s1);
	bs_image_close(im);
	free(st);
	*before = s0.writes + s0.syncs;
	return s1.writes + s1.syncs - *before;
}

static void failed_appends(bool fixed)
{
	static const int codes[] = {BS_EIO, BS_ENOSPC};
	/* Writes cut short: nothing, the commit octet alone, part of the entry. */
	static const size_t cut[] = {0, 1, 37};
	t_fill(N1, sizeof N1, 1);
	t_fill(G1, sizeof G1, 2);
	size_t cases = 0;
	for (size_t li = 0; li < sizeof layouts / sizeof *layouts; li++) {
		const struct layout *l = &layouts[li];
		if (l->fixed != fixed)
			continue;
		for (size_t oi = 0; oi < sizeof ops / sizeof *ops; oi++) {
			const struct op *op = &ops[oi];
			uint64_t before, n = count_io(l, op, &before);
			/* A create is its append; a grow also deletes the old copy. */
			assert_int_equal(n, op->run == op_create ? APPEND_OPS : 2 * APPEND_OPS);
			for (uint64_t k = 1; k <= APPEND_OPS; k++)
				for (size_t ci = 0; ci < 2; ci++)
					for (size_t wi = 0; wi < 3; wi++) {
						if (wi && k % 2 == 0)
							continue; /* a sync writes nothing */
						struct fault_plan p = {.tear_at = SIZE_MAX,
									  .fail_at = before + k,
									  .fail_code = codes[ci],
									  .fail_written = cut[wi]};
						char what[200];
						snprintf(what, sizeof what,
							 "%s on %s: %s at I/O %llu of the append, "
							 "%zu octets written",
							 op->name, l->name, ci ? "ENOSPC" : "EIO",
							 (unsigned long long)k, cut[wi]);
						failed_append_case(l, op, &p, codes[ci], what);
						cases++;
					}
		}
	}
	print_message("%s: %zu failed appends, each leaving the storage as it was\n",
		      fixed ? "fixed-size storage" : "growable storage", cases);
}

static void test_failed_append_growable(void **state)
{
	(void)state;
	failed_appends(false);
}

static void test_failed_append_fixed(void **state)
{
	(void)state;
	failed_appends(true);
}

/* The first write of the append cut short by a full disk, then taking back
 * fails too: the call reports the first failure and the second. */
static void test_failed_take_back_reported(void **state)
{
	(void)state;
	for (size_t li = 0; li < sizeof layouts / sizeof *layouts; li++) {
		const struct layout *l = &layouts[li];
		uint64_t before;
		count_io(l, &ops[0], &before);
		size_t len;
		uint8_t *st = layout_storage(l, &len);
		/* The entry's write (cut short), then the write or sync that
		 * takes it back. */
		struct fault_plan p = {.tear_at = SIZE_MAX, .fail_at = before + 1,
					  .fail_code = BS_ENOSPC, .fail_written = 37,
					  .fail_count = 2};
		struct bs_backend *fb;
		struct bs_backend *be = storage_new(st, len, l->fixed, &p, &fb);
		bs_image *im;
		assert_int_equal(bs_image_open_backend(be, "mem.img", 0, &im), BS_OK);
		assert_int_equal(op_create(im), BS_ENOSPC);
		const char *m = last_error();
		if (!strstr(m, "injected failure of write") ||
		    !strstr(m, "taking back the octets it wrote past the end-of-contents") ||
		    !strstr(m, "failed too"))
			fail_msg("%s: %s", l->name, m);
		/* The directory is intact: the handle goes on, and the next
		 * append writes over what is left. */
		assert_int_equal(op_create(im), BS_OK);
		size_t al;
		uint8_t *copy = snap(fb, &al);
		bs_image_close(im);
		be = storage_new(copy, al, l->fixed, &(struct fault_plan){.tear_at = SIZE_MAX}, &fb);
		assert_int_equal(bs_image_open_backend(be, "mem.img", BS_OPEN_RDONLY, &im), BS_OK);
		t_assert_data(im, "new", "n", N1, sizeof N1);
		t_assert_data(im, "target", "x", "t0", 2);
		bs_image_close(im);
		free(copy);
		free(st);
	}
}

/* ---- entries hidden behind a forged end-of-contents --------------------------- */

/* An image written before deletes filled free space with ff: entries a, d,
 * b, c, then d deleted and its free space zeros (*D_OFF: d's offset, *B_OFF:
 * b's). */
static uint8_t *legacy_image(size_t *len, uint64_t *d_off, uint64_t *b_off)
{
	struct bs_backend *be;
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 16};
	bs_entry *d, *b;
	assert_int_equal(bs_entry_create(im, "vtpm", "a", &o, "aaa", 3, NULL), BS_OK);
	o.capacity = 300; /* a long-form length: 04 82 02 xx */
	assert_int_equal(bs_entry_create(im, "tmp", "d", &o, "gone", 4, &d), BS_OK);
	o.capacity = 16;
	assert_int_equal(bs_entry_create(im, "nvram", "b", &o, "bbb", 3, &b), BS_OK);
	assert_int_equal(bs_entry_create(im, "cfg", NULL, &o, "ccc", 3, NULL), BS_OK);
	*d_off = bs_entry_offset(d);
	*b_off = bs_entry_offset(b);
	assert_int_equal(bs_entry_delete(d), BS_OK);
	uint8_t *img = t_mem_copy(be, len);
	bs_image_close(im);
	/* 04 82 LL LL, then ff octets: make them zeros, as old images have. */
	assert_int_equal(img[*d_off], 0x04);
	assert_int_equal(img[*d_off + 1], 0x82);
	size_t flen = (size_t)img[*d_off + 2] << 8 | img[*d_off + 3];
	for (size_t i = 0; i < flen; i++)
		assert_int_equal(img[*d_off + 4 + i], 0xff);
	memset(img + *d_off + 4, 0, flen);
	return img;
}

/* The first error check reports (CTX: 1024 octets). */
static void on_problem(void *ctx, const bs_entry *e, uint64_t off, int code, const char *msg)
{
	(void)e;
	(void)off;
	if (code && !((char *)ctx)[0])
		snprintf(ctx, 1024, "%s", msg);
}

/* The first note (a report that is no error). */
static void on_note(void *ctx, const bs_entry *e, uint64_t off, int code, const char *msg)
{
	(void)e;
	(void)off;
	if (!code && !((char *)ctx)[0])
		snprintf(ctx, 1024, "%s", msg);
}

static void test_forged_end_hides_entries(void **state)
{
	(void)state;
	size_t len;
	uint64_t d, b;
	uint8_t *img = legacy_image(&len, &d, &b);
	/* The old image is sound: everything opens and checks. */
	bs_image *im;
	assert_int_equal(t_open_mem(img, len, 0, &im, NULL), BS_OK);
	assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_OK);
	bs_image_close(im);
	/* One flipped bit: 04 82 02 xx -> 04 02 02 xx, a free element of two
	 * octets, and the zeros behind it read as the end-of-contents. */
	img[d + 1] ^= 0x80;
	struct bs_backend *be;
	assert_int_equal(t_open_mem(img, len, 0, &im, &be), BS_OK);
	assert_int_equal(bs_image_count(im, 0), 1); /* a alone: b and c are hidden */
	char msg[1024] = "", want[512];
	assert_int_equal(bs_image_check(im, 0, on_problem, msg), BS_ECORRUPT);
	snprintf(want, sizeof want,
		 "mem.img: at offset %llu: an entry follows the end-of-contents at offset %llu: "
		 "damage may have ended the directory early and hidden the entries after it; run "
		 "'blobstore salvage' (appends and compaction are refused, so as not to destroy "
		 "them)",
		 (unsigned long long)b, (unsigned long long)d + 4);
	assert_string_equal(msg, want);
	/* Nothing writes over them or cuts them off. */
	assert_int_equal(op_create(im), BS_ECORRUPT);
	assert_string_equal(last_error(), want);
	assert_int_equal(bs_image_compact(im), BS_ECORRUPT);
	assert_string_equal(last_error(), want);
	bs_entry *a;
	assert_int_equal(bs_entry_find(im, "vtpm", "a", &a), BS_OK);
	assert_int_equal(bs_entry_write(a, G1, sizeof G1), BS_ECORRUPT); /* a rewrite */
	size_t al;
	const uint8_t *after = t_mem_data(be, &al);
	assert_same(after, al, img, len, "refused writes");
	/* A write in place lands inside the directory: allowed. */
	assert_int_equal(bs_entry_write(a, "AA", 2), BS_OK);
	bs_image_close(im);
	/* Read-only: the same report. */
	assert_int_equal(t_open_mem(img, len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	msg[0] = 0;
	assert_int_equal(bs_image_check(im, 0, on_problem, msg), BS_ECORRUPT);
	assert_string_equal(msg, want);
	bs_image_close(im);
	/* Salvage brings them back. */
	struct bs_backend *src, *dst;
	assert_int_equal(bs_backend_mem(img, len, &src), BS_OK);
	assert_int_equal(bs_backend_mem(NULL, 0, &dst), BS_OK);
	struct bs_salvage_opts so = BS_SALVAGE_OPTS_INIT;
	so.flags = BS_SALVAGE_NOSYNC;
	assert_int_equal(bs_image_salvage(src, "mem.img", dst, "new.img", &so), BS_OK);
	size_t nl;
	uint8_t *ni = t_mem_copy(dst, &nl);
	bs_backend_free(src);
	bs_backend_free(dst);
	assert_int_equal(t_open_mem(ni, nl, 0, &im, NULL), BS_OK);
	t_assert_data(im, "vtpm", "a", "aaa", 3);
	t_assert_data(im, "nvram", "b", "bbb", 3);
	t_assert_data(im, "cfg", NULL, "ccc", 3);
	assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_OK);
	assert_int_equal(op_create(im), BS_OK);
	bs_image_close(im);
	free(ni);
	free(img);
}

/* Each single bit flip of the legacy image that leaves the entries after
 * the free element out of the directory is reported by check. */
static void test_forged_end_every_flip(void **state)
{
	(void)state;
	size_t len;
	uint64_t d, b;
	uint8_t *img = legacy_image(&len, &d, &b);
	uint8_t *c = malloc(len);
	assert_non_null(c);
	size_t hidden = 0, reported = 0;
	/* The free element's header: every flip of its four octets. */
	for (size_t bit = d * 8; bit < (d + 4) * 8; bit++) {
		memcpy(c, img, len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		bs_image *im;
		if (t_open_mem(c, len, 0, &im, NULL))
			continue; /* refused loudly */
		struct bs_image_stat st = BS_IMAGE_STAT_INIT;
		assert_int_equal(bs_image_stat(im, &st), BS_OK);
		if (st.dir_end <= b) {
			/* The directory ends before b: b and c are hidden. */
			hidden++;
			if (bs_image_check(im, 0, NULL, NULL) == BS_ECORRUPT)
				reported++;
			else
				fail_msg("bit %zu: the directory ends at %llu, check passes",
					 bit - d * 8, (unsigned long long)st.dir_end);
			assert_int_equal(op_create(im), BS_ECORRUPT);
		}
		bs_image_close(im);
	}
	print_message("flips of a zero-filled free element's header: %zu hide entries, %zu of "
		      "them reported by check\n", hidden, reported);
	assert_true(hidden > 0);
	free(c);
	free(img);
}

/* A crash after the append's first write: the entry and an end-of-contents
 * past the end, uncommitted.  It opens, check notes it (no error), and the
 * next append writes over it. */
static void test_uncommitted_append(void **state)
{
	(void)state;
	struct fault_plan none = {.tear_at = SIZE_MAX};
	struct bs_backend *fb;
	struct bs_backend *be = storage_new(base_img, base_len, false, &none, &fb);
	bs_image *im;
	assert_int_equal(bs_image_open_backend(be, "mem.img", 0, &im), BS_OK);
	struct fault_stats s;
	fault_backend_stats(fb, &s);
	bs_image_close(im);
	/* Power lost after the entry's write went through whole. */
	struct fault_plan p = {.crash_after = s.writes + 1, .tear_at = SIZE_MAX};
	be = storage_new(base_img, base_len, false, &p, &fb);
	assert_int_equal(bs_image_open_backend(be, "mem.img", 0, &im), BS_OK);
	assert_int_equal(op_create(im), BS_EIO);
	size_t cl;
	uint8_t *c = snap(fb, &cl);
	bs_image_close(im);
	assert_true(cl > base_len);
	assert_memory_equal(c, base_img, base_len);
	assert_int_equal(c[base_len], 0x30); /* the new entry, right after the end */
	assert_true(!c[cl - 2] && !c[cl - 1]);
	struct bs_backend *mb;
	assert_int_equal(t_open_mem(c, cl, 0, &im, &mb), BS_OK);
	assert_int_equal(bs_image_count(im, 0), 2);
	char note[1024] = "", err[1024] = "";
	assert_int_equal(bs_image_check(im, 0, on_problem, err), BS_OK);
	assert_string_equal(err, "");
	assert_int_equal(bs_image_check(im, 0, on_note, note), BS_OK);
	assert_non_null(strstr(note, "octets after the end-of-contents (an interrupted append"));
	/* The next append goes where the uncommitted one lies. */
	bs_entry *e;
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 4};
	assert_int_equal(bs_entry_create(im, "other", NULL, &o, "o", 1, &e), BS_OK);
	assert_int_equal(bs_entry_offset(e), base_len);
	assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_OK);
	assert_int_equal(op_create(im), BS_OK);
	assert_int_equal(bs_image_compact(im), BS_OK);
	t_assert_data(im, "new", "n", N1, sizeof N1);
	t_assert_data(im, "other", NULL, "o", 1);
	bs_image_close(im);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_append_growable),
		cmocka_unit_test(test_failed_append_fixed),
		cmocka_unit_test(test_failed_take_back_reported),
		cmocka_unit_test(test_forged_end_hides_entries),
		cmocka_unit_test(test_forged_end_every_flip),
		cmocka_unit_test(test_uncommitted_append),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
