/* test_crash.c - the crash proof.  Every state-changing operation runs over
 * the fault backend, once to count its writes, then once per crash point:
 * power lost after write N, with that write applied whole or torn at many
 * offsets.  The storage left behind is opened (which recovers), and must
 * show every other entry unchanged and the entry under operation either
 * old or new, never a mix; recovery itself is crashed the same way; and
 * I/O errors (EIO, ENOSPC) injected at every write and sync must leave the
 * image old or new, and a success must be durable.  Runs on growable
 * storage and on fixed-size storage (no resize, no atomic replace), where
 * compaction goes through a copy and a recovery record (recovery.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "storage/storage.h" /* the backend table, to forward to */
#include "api/api.h" /* bs__blockio: the block layer of block and NBD backends */

/* ---- the expected contents of an image ---------------------------------- */

#define MAX_EXP 12

struct exp {
	const char *type, *name;
	const uint8_t *data;
	size_t len;
	const char *attrs; /* "name=value;..." sorted by name (see attr_sig) */
	size_t cap; /* the exact capacity */
};

struct state {
	size_t n;
	struct exp e[MAX_EXP];
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The caller's attributes of E (not the library's "bs." ones) as text. */
static void attr_sig(const bs_entry *e, char *out, size_t cap)
{
	char *parts[64];
	size_t np = 0;
	for (int m = 0; m < 2; m++)
		for (size_t i = 0; i < bs_attr_count(e) && np < 64; i++) {
			const char *nm;
			const uint8_t *v;
			size_t vl;
			unsigned fl_;
			assert_int_equal(bs_attr_at(e, i, &nm, &v, &vl, &fl_), BS_OK);
			if (((fl_ & BS_ATTR_MANDATORY) != 0) != (m != 0))
				continue;
			if (!strncmp(nm, "bs.", 3))
				continue;
			char d[128];
			bs_value_describe(v, vl, d, sizeof d);
			char *p = malloc(strlen(nm) + strlen(d) + 4);
			assert_non_null(p);
			sprintf(p, "%s%s%s%s", m ? "!" : "", nm, vl ? "=" : "", d);
			parts[np++] = p;
		}
	qsort(parts, np, sizeof *parts, cmp_str);
	out[0] = 0;
	for (size_t i = 0; i < np; i++) {
		strncat(out, parts[i], cap - strlen(out) - 1);
		strncat(out, ";", cap - strlen(out) - 1);
		free(parts[i]);
	}
}

static bool same_name(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Whether IM holds exactly S; WHY gets the first difference. */
static bool matches(bs_image *im, const struct state *s, char *why, size_t wl)
{
	if (bs_image_count(im, BS_ITER_LIBRARY) != s->n + 1) {
		snprintf(why, wl, "%zu entries, expected %zu", bs_image_count(im, BS_ITER_LIBRARY) - 1, s->n);
		return false;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct exp *x = &s->e[i];
		bs_entry *e;
		if (bs_entry_find(im, x->type, x->name, &e)) {
			snprintf(why, wl, "%s/%s missing: %s", x->type, x->name ? x->name : "-",
				 last_error());
			return false;
		}
		void *p;
		size_t l;
		if (bs_entry_read_alloc(e, &p, &l)) {
			snprintf(why, wl, "%s read failed: %s", x->type, last_error());
			return false;
		}
		bool ok = l == x->len && (!l || !memcmp(p, x->data, l));
		free(p);
		if (!ok) {
			snprintf(why, wl, "%s/%s: data differs (%zu octets, expected %zu)", x->type,
				 x->name ? x->name : "-", l, x->len);
			return false;
		}
		char sig[512];
		attr_sig(e, sig, sizeof sig);
		if (strcmp(sig, x->attrs ? x->attrs : "")) {
			snprintf(why, wl, "%s: attributes \"%s\", expected \"%s\"", x->type, sig,
				 x->attrs ? x->attrs : "");
			return false;
		}
		if (bs_entry_capacity(e) != x->cap) {
			snprintf(why, wl, "%s: capacity %zu, expected %zu", x->type,
				 bs_entry_capacity(e), x->cap);
			return false;
		}
	}
	return true;
}

static struct exp *find_exp(struct state *s, const char *type, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->e[i].type, type) && same_name(s->e[i].name, name))
			return &s->e[i];
	fail_msg("no expected entry %s", type);
	return NULL;
}

/* ---- storage wrappers ---------------------------------------------------- */

/* Records the length of every write (and replace, which the fault backend
 * counts as one write), and can present fixed-size storage: no resize, no
 * replace, writes past the end refused. */
struct wrap {
	struct bs_backend *inner;
	bool fixed;
	uint64_t fixed_size;
	struct bs__blockio io; /* io.bsz > 1: writes go through the block layer */
	size_t *lens;
	size_t n, cap;
};

static int w_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct wrap *w = ctx;
	return w->inner->ops->read_at(w->inner->ctx, buf, len, off);
}

static void w_record(struct wrap *w, size_t len)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->lens = realloc(w->lens, w->cap * sizeof *w->lens);
		assert_non_null(w->lens);
	}
	w->lens[w->n++] = len;
}

static int w_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct wrap *w = ctx;
	if (w->fixed && (off > w->fixed_size || len > w->fixed_size - off))
		return BS_ENOSPC;
	if (w->io.bsz > 1)
		return bs__blockio_write(&w->io, buf, len, off);
	int rc = w->inner->ops->write_at(w->inner->ctx, buf, len, off);
	if (rc == BS_OK || rc == BS_EIO)
		w_record(w, len);
	return rc;
}

/* The block layer's storage calls: each aligned block write is one write
 * of the fault backend, so crashes and tears land inside it. */
static int w_blk_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct wrap *w = ctx;
	return w->inner->ops->read_at(w->inner->ctx, buf, len, off);
}

static int w_blk_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct wrap *w = ctx;
	int rc = w->inner->ops->write_at(w->inner->ctx, buf, len, off);
	if (rc == BS_OK || rc == BS_EIO)
		w_record(w, len);
	return rc;
}

static int w_sync(void *ctx)
{
	struct wrap *w = ctx;
	return w->inner->ops->sync(w->inner->ctx);
}

static int w_size(void *ctx, uint64_t *out)
{
	struct wrap *w = ctx;
	return w->inner->ops->size(w->inner->ctx, out);
}

static int w_resize(void *ctx, uint64_t size)
{
	struct wrap *w = ctx;
	return w->inner->ops->resize(w->inner->ctx, size);
}

static int w_replace(void *ctx, const void *img, size_t len)
{
	struct wrap *w = ctx;
	int rc = w->inner->ops->replace(w->inner->ctx, img, len);
	w_record(w, len);
	return rc;
}

/* The image closes the wrapper; the test frees it (wrap_free) after it has
 * looked at the storage, even when the open failed. */
static void w_close(void *ctx)
{
	(void)ctx;
}

static void wrap_free(struct wrap *w)
{
	bs__blockio_free(&w->io);
	bs_backend_free(w->inner);
	free(w->lens);
	free(w);
}

static const struct bs_backend_ops grow_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = w_read, .write_at = w_write, .sync = w_sync, .size = w_size,
	.resize = w_resize, .replace = w_replace, .close = w_close,
};
static const struct bs_backend_ops fixed_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = w_read, .write_at = w_write, .sync = w_sync, .size = w_size,
	.close = w_close,
};

/* Block size of fixed-size storage (0 or 1: octet writes, like a file). */
static uint32_t fixed_block_size;

static struct wrap *wrap(struct bs_backend *inner, bool fixed)
{
	struct wrap *w = calloc(1, sizeof *w);
	assert_non_null(w);
	w->inner = inner;
	w->fixed = fixed;
	if (fixed && fixed_block_size > 1) {
		assert_int_equal(bs__blockio_init(&w->io, fixed_block_size), BS_OK);
		w->io.ctx = w;
		w->io.pread = w_blk_read;
		w->io.pwrite = w_blk_write;
	}
	assert_int_equal(inner->ops->size(inner->ctx, &w->fixed_size), BS_OK);
	return w;
}

/* A backend over W for one open: the image releases it, W stays. */
static struct bs_backend *wrap_be(struct wrap *w)
{
	struct bs_backend *be;
	assert_int_equal(bs_backend_new(w->fixed ? &fixed_ops : &grow_ops, w, 1, &be), BS_OK);
	return be;
}

/* The storage content behind a wrapper. */
static uint8_t *wrap_copy(struct wrap *w, size_t *len)
{
	return t_mem_copy(w->inner, len);
}

/* ---- figures ------------------------------------------------------------- */

static struct {
	unsigned long ops, crash_points, recovery_points, io_errors, violations;
} fig;

static bool quick;

#define VIOLATION(...)                                                                \
	do {                                                                          \
		fig.violations++;                                                     \
		print_error(__VA_ARGS__);                                             \
		print_error("\n");                                                    \
	} while (0)

/* ---- the operations ------------------------------------------------------ */

#define TARGET "target", "x"

static uint8_t P1[150], P2[160], V1[2500], V2[2600], T0[40], T1[40], T2[10], T3[200];
static uint8_t N1[5000], R1[300];

struct op {
	const char *name;
	int (*run)(bs_image *im);
	void (*apply)(struct state *s); /* the new state from the old */
	bool fixed_ok;                  /* meaningful on fixed-size storage */
};

static bs_entry *must_find(bs_image *im, const char *type, const char *name)
{
	bs_entry *e = NULL;
	int rc = bs_entry_find(im, type, name, &e);
	return rc ? NULL : e;
}

static int op_create(bs_image *im)
{
	struct bs_attr a = {BS_ATTR_VERSION, "k", 0, (const uint8_t *)"\x01\x01\xff", 3};
	return bs_entry_create(im, "new", "n", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 100, .attrs = &a, .nattrs = 1}, N1, 60, NULL);
}
static void ap_create(struct state *s)
{
	s->e[s->n++] = (struct exp){"new", "n", N1, 60, "k=BOOLEAN TRUE;", 100};
}

static int op_create_big(bs_image *im)
{
	return bs_entry_create(im, "big", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = sizeof N1, .attrs = NULL, .nattrs = 0}, N1, sizeof N1, NULL);
}
static void ap_create_big(struct state *s)
{
	s->e[s->n++] = (struct exp){"big", NULL, N1, sizeof N1, NULL, sizeof N1};
}

static int op_write_same(bs_image *im)
{
	bs_entry *e = must_find(im, TARGET);
	return e ? bs_entry_write(e, T1, sizeof T1) : BS_ENOENT;
}
static void ap_write_same(struct state *s)
{
	struct exp *x = find_exp(s, TARGET);
	x->data = T1;
	x->len = sizeof T1;
}

static int op_write_smaller(bs_image *im)
{
	bs_entry *e = must_find(im, TARGET);
	return e ? bs_entry_write(e, T2, sizeof T2) : BS_ENOENT;
}
static void ap_write_smaller(struct state *s)
{
	struct exp *x = find_exp(s, TARGET);
	x->data = T2;
	x->len = sizeof T2;
}

static int op_write_larger(bs_image *im)
{
	bs_entry *e = must_find(im, TARGET);
	return e ? bs_entry_write(e, T3, sizeof T3) : BS_ENOENT;
}
static void ap_write_larger(struct state *s)
{
	struct exp *x = find_exp(s, TARGET);
	x->data = T3;
	x->len = sizeof T3;
	x->cap = sizeof T3;
}

static int op_write_volatile(bs_image *im)
{
	bs_entry *e = must_find(im, "vtpm", "volatile");
	return e ? bs_entry_write(e, V2, sizeof V2) : BS_ENOENT;
}
static void ap_write_volatile(struct state *s)
{
	struct exp *x = find_exp(s, "vtpm", "volatile");
	x->data = V2;
	x->len = sizeof V2;
}

static int op_write_raw(bs_image *im)
{
	bs_entry *e = must_find(im, "raw", "r");
	return e ? bs_entry_write(e, R1, sizeof R1) : BS_ENOENT;
}
static void ap_write_raw(struct state *s)
{
	struct exp *x = find_exp(s, "raw", "r");
	x->data = R1;
	x->len = sizeof R1;
	x->cap = sizeof R1;
}

static int op_attr_set(bs_image *im)
{
	bs_entry *e = must_find(im, TARGET);
	uint8_t v[4];
	return e ? bs_attr_set(e, "a", 0, v, t_der_int(8, v, sizeof v)) : BS_ENOENT;
}
static void ap_attr_set(struct state *s)
{
	find_exp(s, TARGET)->attrs = "a=INTEGER 8;b;";
}

static int op_attr_remove(bs_image *im)
{
	bs_entry *e = must_find(im, TARGET);
	return e ? bs_attr_remove(e, "b") : BS_ENOENT;
}
static void ap_attr_remove(struct state *s)
{
	find_exp(s, TARGET)->attrs = "a=INTEGER 7;";
}

static int op_delete(bs_image *im)
{
	bs_entry *e = must_find(im, TARGET);
	return e ? bs_entry_delete(e) : BS_ENOENT;
}
static void ap_delete(struct state *s)
{
	struct exp *x = find_exp(s, TARGET);
	*x = s->e[--s->n];
}

static int op_resize(bs_image *im)
{
	bs_entry *e = must_find(im, TARGET);
	return e ? bs_entry_resize(e, 1000) : BS_ENOENT;
}
static void ap_resize(struct state *s)
{
	find_exp(s, TARGET)->cap = 1000;
}

static int op_compact(bs_image *im)
{
	return bs_image_compact(im);
}
static void ap_none(struct state *s)
{
	(void)s;
}

static const struct op ops[] = {
	{"create", op_create, ap_create, true},
	{"create 5000 octets", op_create_big, ap_create_big, true},
	{"write same size", op_write_same, ap_write_same, true},
	{"write smaller", op_write_smaller, ap_write_smaller, true},
	{"write past capacity", op_write_larger, ap_write_larger, true},
	{"write sha256 2600 octets", op_write_volatile, ap_write_volatile, true},
	{"write raw entry", op_write_raw, ap_write_raw, true},
	{"attr set", op_attr_set, ap_attr_set, true},
	{"attr remove", op_attr_remove, ap_attr_remove, true},
	{"delete", op_delete, ap_delete, true},
	{"resize", op_resize, ap_resize, true},
	{"compact", op_compact, ap_none, true},
};

/* ---- the base image -------------------------------------------------------- */

static uint8_t *base_img;
static size_t base_len;
static struct state base_state;
#define FIXED_SIZE 65536u

static int setup(void **state)
{
	(void)state;
	quick = t_quick();
	t_fill(P1, sizeof P1, 1);
	t_fill(P2, sizeof P2, 2);
	t_fill(V1, sizeof V1, 3);
	t_fill(V2, sizeof V2, 4);
	t_fill(T0, sizeof T0, 5);
	t_fill(T1, sizeof T1, 6);
	t_fill(T2, sizeof T2, 7);
	t_fill(T3, sizeof T3, 8);
	t_fill(N1, sizeof N1, 9);
	t_fill(R1, sizeof R1, 10);
	struct bs_backend *be;
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "vtpm", "permall", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 200, .attrs = NULL, .nattrs = 0}, P1, sizeof P1, &e), 0);
	assert_int_equal(bs_entry_write(e, P2, sizeof P2), BS_OK); /* both slots valid */
	struct bs_entry_opts so = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 3000, .checksum = BS_CHECKSUM_SHA256};
	assert_int_equal(bs_entry_create(im, "vtpm", "volatile", &so, V1, sizeof V1, NULL), 0);
	struct bs_entry_opts ro = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	assert_int_equal(bs_entry_create(im, "raw", "r", &ro, "raw-data", 8, NULL), 0);
	uint8_t v[4];
	struct bs_attr ca = {BS_ATTR_VERSION, "mode", 0, v, t_der_int(1, v, sizeof v)};
	assert_int_equal(bs_entry_create(im, "cfg", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = &ca, .nattrs = 1}, "c", 1, NULL), 0);
	assert_int_equal(bs_entry_create(im, "tmp", "t", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 32, .attrs = NULL, .nattrs = 0}, "gone", 4, &e), 0);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	uint8_t v7[4];
	struct bs_attr ta[2] = {{BS_ATTR_VERSION, "a", 0, v7, t_der_int(7, v7, sizeof v7)}, {BS_ATTR_VERSION, "b", 0, NULL, 0}};
	assert_int_equal(bs_entry_create(im, TARGET, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 64, .attrs = ta, .nattrs = 2}, T0, sizeof T0, &e), 0);
	assert_int_equal(bs_entry_write(e, T0, sizeof T0), BS_OK);
	base_img = t_mem_copy(be, &base_len);
	bs_image_close(im);
	struct state *s = &base_state;
	s->n = 0;
	s->e[s->n++] = (struct exp){"vtpm", "permall", P2, sizeof P2, NULL, 200};
	s->e[s->n++] = (struct exp){"vtpm", "volatile", V1, sizeof V1, NULL, 3000};
	s->e[s->n++] = (struct exp){"raw", "r", (const uint8_t *)"raw-data", 8, NULL, 8};
	s->e[s->n++] = (struct exp){"cfg", NULL, (const uint8_t *)"c", 1, "mode=INTEGER 1;", 16};
	s->e[s->n++] = (struct exp){TARGET, T0, sizeof T0, "a=INTEGER 7;b;", 64};
	/* Sanity: the model describes the base image. */
	char why[256];
	assert_int_equal(t_open_mem(base_img, base_len, 0, &im, NULL), BS_OK);
	if (!matches(im, s, why, sizeof why))
		fail_msg("base: %s", why);
	bs_image_close(im);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(base_img);
	print_message("crash simulation: %lu operations, %lu crash points, %lu recovery crash "
		      "points, %lu injected I/O errors, %lu violations\n",
		      fig.ops, fig.crash_points, fig.recovery_points, fig.io_errors,
		      fig.violations);
	return 0;
}

/* ---- driving ------------------------------------------------------------- */

/* STORAGE (a copy) padded to the fixed size when FIXED. */
static uint8_t *storage(const uint8_t *img, size_t len, bool fixed, size_t *out_len)
{
	size_t n = fixed ? FIXED_SIZE : len;
	uint8_t *b = calloc(1, n ? n : 1);
	assert_non_null(b);
	assert_true(len <= n);
	if (len)
		memcpy(b, img, len);
	*out_len = n;
	return b;
}

/* Opens IMG over a fault backend with PLAN behind a wrapper. */
static int open_fault(const uint8_t *img, size_t len, bool fixed, const struct fault_plan *plan,
		      unsigned flags, bs_image **im, struct wrap **w, struct bs_backend **fb)
{
	assert_int_equal(fault_backend_new(img, len, plan, fb), BS_OK);
	*w = wrap(*fb, fixed);
	return bs_image_open_backend(wrap_be(*w), "crash.img", flags, im);
}

/* Tear offsets for a write of LEN octets. */
static size_t tears(size_t len, size_t *out, size_t max)
{
	size_t n = 0;
	max--; /* room for SIZE_MAX */
	size_t every = quick ? 24 : 600;
	if (len <= every) {
		for (size_t i = 0; i < len && n < max; i++)
			out[n++] = i;
	} else {
		out[n++] = 0;
		out[n++] = 1;
		for (size_t k = 512; k < len && n + 8 < max; k += 512)
			out[n++] = k;
		size_t extra[] = {len / 3, len / 2, 2 * len / 3, len - 1, 11, len - 17};
		for (size_t i = 0; i < 6 && n < max; i++)
			if (extra[i] < len)
				out[n++] = extra[i];
		uint64_t s = len;
		for (int i = 0; i < (quick ? 1 : 3) && n < max; i++)
			out[n++] = (size_t)(t_rand(&s) % len);
	}
	out[n++] = SIZE_MAX;
	return n;
}

/* Which of OLD/NEW the image IMG holds: 0 old, 1 new, -1 neither (WHY). */
static int classify_open(bs_image *im, const struct state *old, const struct state *nw,
			 char *why, size_t wl)
{
	char w1[256], w2[256];
	if (matches(im, old, w1, sizeof w1))
		return 0;
	if (matches(im, nw, w2, sizeof w2))
		return 1;
	snprintf(why, wl, "neither old (%.200s) nor new (%.200s)", w1, w2);
	return -1;
}

static void check_cb(void *ctx, const bs_entry *e, uint64_t off, int code, const char *msg)
{
	(void)e;
	(void)off;
	if (code) {
		snprintf(ctx, 256, "%s", msg);
	}
}

/* Opens storage IMG/LEN read-write (recovery), classifies it, checks it.
 * Returns the outcome (0 old, 1 new, -1 bad); *AFTER gets the storage
 * after recovery when not NULL. */
static int recover_and_classify(const char *what, const uint8_t *img, size_t len, bool fixed,
				const struct state *old, const struct state *nw, uint8_t **after,
				size_t *after_len)
{
	struct bs_backend *mb;
	assert_int_equal(bs_backend_mem(img, len, &mb), BS_OK);
	struct wrap *w = wrap(mb, fixed);
	bs_image *im;
	int rc = bs_image_open_backend(wrap_be(w), "crash.img", 0, &im);
	if (rc) {
		VIOLATION("%s: open after crash failed: %s", what, last_error());
		wrap_free(w);
		return -1;
	}
	char why[512];
	int out = classify_open(im, old, nw, why, sizeof why);
	if (out < 0)
		VIOLATION("%s: %s", what, why);
	char cw[256] = "";
	if (bs_image_check(im, 1, check_cb, cw) != BS_OK) {
		VIOLATION("%s: check failed: %s", what, cw);
		out = -1;
	}
	if (after)
		*after = wrap_copy(w, after_len);
	bs_image_close(im);
	wrap_free(w);
	return out;
}

/* Full verification of one crash image: recover, classify, recover again
 * from the recovered storage (same outcome), and crash the recovery itself
 * at each of its writes.  Returns the outcome. */
static int verify_crash_image(const char *what, const uint8_t *img, size_t len, bool fixed,
			      const struct state *old, const struct state *nw, bool nested)
{
	uint8_t *after;
	size_t after_len;
	int out = recover_and_classify(what, img, len, fixed, old, nw, &after, &after_len);
	if (out < 0)
		return out;
	char w2[512];
	snprintf(w2, sizeof w2, "%s, second open", what);
	int again = recover_and_classify(w2, after, after_len, fixed, old, nw, NULL, NULL);
	if (again != out && again >= 0)
		VIOLATION("%s: outcome changed from %s to %s on the second open", what,
			  out ? "new" : "old", again ? "new" : "old");
	free(after);
	if (!nested)
		return out;
	/* Count the writes recovery makes, then crash it at each. */
	struct fault_plan none = {.tear_at = SIZE_MAX};
	bs_image *im;
	struct wrap *w;
	struct bs_backend *fb;
	if (open_fault(img, len, fixed, &none, 0, &im, &w, &fb)) {
		VIOLATION("%s: recovery open failed: %s", what, last_error());
		wrap_free(w);
		return -1;
	}
	struct fault_stats st;
	fault_backend_stats(fb, &st);
	size_t nrec = w->n;
	size_t *lens = malloc((nrec + 1) * sizeof *lens);
	assert_non_null(lens);
	if (nrec)
		memcpy(lens, w->lens, nrec * sizeof *lens);
	bs_image_close(im);
	wrap_free(w);
	for (size_t r = 1; r <= nrec; r++) {
		size_t tv[64];
		size_t nt = tears(lens[r - 1], tv, quick ? 8 : 64);
		for (size_t t = 0; t < nt; t++) {
			struct fault_plan p = {.crash_after = r, .tear_at = tv[t]};
			int rc = open_fault(img, len, fixed, &p, 0, &im, &w, &fb);
			if (rc == BS_OK)
				bs_image_close(im);
			size_t cl;
			uint8_t *c = wrap_copy(w, &cl);
			wrap_free(w);
			fig.recovery_points++;
			char w3[1024];
			snprintf(w3, sizeof w3, "%s, recovery crashed at write %zu tear %zu", what, r,
				 tv[t]);
			int o = verify_crash_image(w3, c, cl, fixed, old, nw, false);
			if (o >= 0 && o != out)
				VIOLATION("%s: recovery crash changed the outcome", w3);
			free(c);
		}
	}
	free(lens);
	return out;
}

static void run_op(const struct op *op, bool fixed)
{
	struct state old = base_state, nw = base_state;
	op->apply(&nw);
	size_t slen;
	uint8_t *st = storage(base_img, base_len, fixed, &slen);
	char what[256];
	fig.ops++;

	/* Dry run: count and measure the operation's writes. */
	struct fault_plan none = {.tear_at = SIZE_MAX};
	bs_image *im;
	struct wrap *w;
	struct bs_backend *fb;
	assert_int_equal(open_fault(st, slen, fixed, &none, 0, &im, &w, &fb), BS_OK);
	struct fault_stats s0, s1;
	fault_backend_stats(fb, &s0);
	size_t w0 = w->n;
	int rc = op->run(im);
	if (rc)
		fail_msg("%s: %s", op->name, last_error());
	fault_backend_stats(fb, &s1);
	size_t nw_writes = w->n - w0;
	size_t *lens = malloc((nw_writes + 1) * sizeof *lens);
	assert_non_null(lens);
	if (nw_writes)
		memcpy(lens, w->lens + w0, nw_writes * sizeof *lens);
	uint64_t io_ops = (s1.writes + s1.syncs) - (s0.writes + s0.syncs);
	uint64_t io_before = s0.writes + s0.syncs;
	assert_int_equal(s0.writes, w0);
	{
		bs_image_close(im);
		size_t cl;
		uint8_t *c = wrap_copy(w, &cl);
		wrap_free(w);
		snprintf(what, sizeof what, "%s%s: no crash", op->name, fixed ? " (fixed)" : "");
		int o = verify_crash_image(what, c, cl, fixed, &old, &nw, false);
		if (o != 1 && !(o == 0 && op->apply == ap_none))
			VIOLATION("%s: completed operation does not show the new state", what);
		free(c);
	}
	assert_true(nw_writes > 0);

	/* Crash after each write, whole or torn. */
	for (size_t n = 1; n <= nw_writes; n++) {
		size_t tv[256];
		size_t nt = tears(lens[n - 1], tv, 256);
		for (size_t t = 0; t < nt; t++) {
			struct fault_plan p = {.crash_after = w0 + n, .tear_at = tv[t]};
			assert_int_equal(open_fault(st, slen, fixed, &p, 0, &im, &w, &fb), BS_OK);
			rc = op->run(im);
			bs_image_close(im);
			size_t cl;
			uint8_t *c = wrap_copy(w, &cl);
			wrap_free(w);
			fig.crash_points++;
			snprintf(what, sizeof what, "%s%s: crash after write %zu/%zu (%zu octets) tear %zd",
				 op->name, fixed ? " (fixed)" : "", n, nw_writes, lens[n - 1],
				 tv[t] == SIZE_MAX ? (ssize_t)-1 : (ssize_t)tv[t]);
			bool nested = !quick || t == nt - 1;
			int o = verify_crash_image(what, c, cl, fixed, &old, &nw, nested);
			if (rc == BS_OK && o == 0 && op->apply != ap_none)
				VIOLATION("%s: the call succeeded but the change is lost", what);
			free(c);
		}
	}

	/* I/O errors at each write and sync, then the handle is used again:
	 * whatever it reports as done must be on storage. */
	static const int codes[2] = {BS_EIO, BS_ENOSPC};
	for (uint64_t k = 1; k <= io_ops; k++)
		for (int ci = 0; ci < 2; ci++) {
			struct fault_plan p = {.tear_at = SIZE_MAX, .fail_at = io_before + k,
						  .fail_code = codes[ci]};
			assert_int_equal(open_fault(st, slen, fixed, &p, 0, &im, &w, &fb), BS_OK);
			rc = op->run(im);
			fig.io_errors++;
			snprintf(what, sizeof what, "%s%s: %s at I/O %llu/%llu", op->name,
				 fixed ? " (fixed)" : "", ci ? "ENOSPC" : "EIO",
				 (unsigned long long)k, (unsigned long long)io_ops);
			/* A follow-up write through the same handle. */
			bs_entry *e = must_find(im, "cfg", NULL);
			int rc2 = e ? bs_entry_write(e, "after", 5) : BS_ENOENT;
			bs_entry *te = must_find(im, TARGET);
			int rc3 = te ? bs_entry_write(te, "F", 1) : BS_ENOENT;
			bs_image_close(im);
			size_t cl;
			uint8_t *c = wrap_copy(w, &cl);
			wrap_free(w);
			struct state o2 = old, n2 = nw;
			if (rc2 == BS_OK) {
				find_exp(&o2, "cfg", NULL)->data = (const uint8_t *)"after";
				find_exp(&o2, "cfg", NULL)->len = 5;
				find_exp(&n2, "cfg", NULL)->data = (const uint8_t *)"after";
				find_exp(&n2, "cfg", NULL)->len = 5;
			}
			if (rc3 == BS_OK) {
				/* Reported written: the entry must exist with it. */
				find_exp(&o2, TARGET)->data = (const uint8_t *)"F";
				find_exp(&o2, TARGET)->len = 1;
				if (op->apply == ap_delete) {
					n2 = o2;
				} else {
					find_exp(&n2, TARGET)->data = (const uint8_t *)"F";
					find_exp(&n2, TARGET)->len = 1;
				}
			}
			int o = verify_crash_image(what, c, cl, fixed, &o2, &n2, false);
			if (rc == BS_OK && o == 0 && op->apply != ap_none)
				VIOLATION("%s: the call succeeded but the change is lost", what);
			free(c);
		}
	free(lens);
	free(st);
}

static void test_ops_growable(void **state)
{
	(void)state;
	unsigned long v0 = fig.violations;
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		run_op(&ops[i], false);
	assert_int_equal(fig.violations, v0);
}

static void test_ops_fixed_size(void **state)
{
	(void)state;
	unsigned long v0 = fig.violations;
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (ops[i].fixed_ok)
			run_op(&ops[i], true);
	assert_int_equal(fig.violations, v0);
}

/* The same on a block device or NBD export: every write goes through the
 * block layer as whole aligned blocks (a read-merge-write of partial ones),
 * each of which can be cut short, torn or lost. */
static void test_ops_fixed_blocks(void **state)
{
	(void)state;
	unsigned long v0 = fig.violations;
	static const uint32_t sizes[] = {4096, 512};
	const char *l = getenv("BS_CRASH_LONG"); /* make crashtest: both sizes */
	bool both = l && *l && strcmp(l, "0");
	for (size_t k = 0; k < (both ? 2u : 1u); k++) {
		fixed_block_size = sizes[k];
		for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
			if (ops[i].fixed_ok)
				run_op(&ops[i], true);
	}
	fixed_block_size = 0;
	assert_int_equal(fig.violations, v0);
}

/* Opens STORAGE (fixed-size) with FLAGS over a plain memory backend. */
static int open_fixed_copy(const uint8_t *st, size_t len, unsigned flags, bs_image **im,
			   struct wrap **w)
{
	struct bs_backend *mb;
	assert_int_equal(bs_backend_mem(st, len, &mb), BS_OK);
	*w = wrap(mb, true);
	return bs_image_open_backend(wrap_be(*w), "crash.img", flags, im);
}

/* Fixed storage without room for the copy past the directory end: the
 * compaction is refused with a message that says why, and changes nothing. */
static void test_fixed_compact_needs_room(void **state)
{
	(void)state;
	size_t slen = base_len + 4096 + 512;
	uint8_t *st = calloc(1, slen);
	assert_non_null(st);
	memcpy(st, base_img, base_len);
	bs_image *im;
	struct wrap *w;
	assert_int_equal(open_fixed_copy(st, slen, 0, &im, &w), BS_OK);
	assert_int_equal(bs_image_compact(im), BS_ENOSPC);
	assert_non_null(strstr(last_error(), "free"));
	/* Refused before anything was written: the handle still works. */
	bs_entry *e = must_find(im, "cfg", NULL);
	assert_int_equal(bs_entry_write(e, "z", 1), BS_OK);
	bs_image_close(im);
	size_t cl;
	uint8_t *c = wrap_copy(w, &cl);
	wrap_free(w);
	assert_int_equal(cl, slen);
	struct state s = base_state;
	find_exp(&s, "cfg", NULL)->data = (const uint8_t *)"z";
	char why[256];
	assert_int_equal(open_fixed_copy(c, cl, BS_OPEN_RDONLY, &im, &w), BS_OK);
	if (!matches(im, &s, why, sizeof why))
		fail_msg("%s", why);
	bs_image_close(im);
	wrap_free(w);
	free(c);
	free(st);
}

/* A compaction interrupted while copying over the directory: a read-only
 * opener reads the finished copy and writes nothing; a writer finishes the
 * copy; afterwards the record is done and the image is compact. */
static void test_fixed_compact_interrupted_readers(void **state)
{
	(void)state;
	size_t slen;
	uint8_t *st = storage(base_img, base_len, true, &slen);
	struct fault_plan none = {.tear_at = SIZE_MAX};
	bs_image *im;
	struct wrap *w;
	struct bs_backend *fb;
	assert_int_equal(open_fault(st, slen, true, &none, 0, &im, &w, &fb), BS_OK);
	size_t w0 = w->n;
	assert_int_equal(bs_image_compact(im), BS_OK);
	/* The copy past the end, two records, the copy to 0, two records. */
	assert_int_equal(w->n - w0, 6);
	size_t copy_len = w->lens[w0 + 3];
	bs_image_close(im);
	wrap_free(w);
	struct fault_plan p = {.crash_after = w0 + 4, .tear_at = copy_len / 2};
	assert_int_equal(open_fault(st, slen, true, &p, 0, &im, &w, &fb), BS_OK);
	assert_int_equal(bs_image_compact(im), BS_EIO);
	assert_non_null(strstr(last_error(), "compact failed"));
	bs_image_close(im);
	size_t cl;
	uint8_t *c = wrap_copy(w, &cl);
	wrap_free(w);
	/* Offset 0 holds the start of the new directory over the old one. */
	assert_memory_not_equal(c, st, base_len);
	char why[256];
	for (int round = 0; round < 2; round++) {
		assert_int_equal(open_fixed_copy(c, cl, BS_OPEN_RDONLY, &im, &w), BS_OK);
		if (!matches(im, &base_state, why, sizeof why))
			fail_msg("read-only during recovery: %s", why);
		assert_int_equal(bs_image_check(im, 1, NULL, NULL), BS_OK);
		bs_image_close(im);
		size_t al;
		uint8_t *a = wrap_copy(w, &al);
		wrap_free(w);
		assert_int_equal(al, cl);
		assert_memory_equal(a, c, cl); /* the reader wrote nothing */
		free(a);
	}
	assert_int_equal(open_fixed_copy(c, cl, 0, &im, &w), BS_OK);
	struct bs_image_stat bst = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_stat(im, &bst), BS_OK);
	assert_true(bst.free_holes == 0);
	assert_true(bst.size == slen - 4096);
	if (!matches(im, &base_state, why, sizeof why))
		fail_msg("after recovery: %s", why);
	bs_image_close(im);
	wrap_free(w);
	free(c);
	free(st);
}

/* Formatting: interrupted, the storage is either empty (and then refused
 * without CREATE) or a complete image; never something CREATE re-formats
 * over unless it is truly empty. */
static void format_case(bool fixed)
{
	size_t slen;
	uint8_t *st = storage(NULL, 0, fixed, &slen);
	struct fault_plan none = {.tear_at = SIZE_MAX};
	bs_image *im;
	struct wrap *w;
	struct bs_backend *fb;
	fig.ops++;
	assert_int_equal(open_fault(st, slen, fixed, &none, BS_OPEN_CREATE, &im, &w, &fb), BS_OK);
	size_t nwr = w->n;
	size_t *lens = malloc((nwr + 1) * sizeof *lens);
	assert_non_null(lens);
	memcpy(lens, w->lens, nwr * sizeof *lens);
	bs_image_close(im);
	wrap_free(w);
	assert_true(nwr > 0);
	struct state empty = {0};
	for (size_t n = 1; n <= nwr; n++) {
		size_t tv[256];
		size_t nt = tears(lens[n - 1], tv, 256);
		for (size_t t = 0; t < nt; t++) {
			struct fault_plan p = {.crash_after = n, .tear_at = tv[t]};
			int rc = open_fault(st, slen, fixed, &p, BS_OPEN_CREATE, &im, &w, &fb);
			if (rc == BS_OK)
				bs_image_close(im);
			size_t cl;
			uint8_t *c = wrap_copy(w, &cl);
			wrap_free(w);
			fig.crash_points++;
			char what[256];
			snprintf(what, sizeof what, "format%s: crash after write %zu tear %zd",
				 fixed ? " (fixed)" : "", n,
				 tv[t] == SIZE_MAX ? (ssize_t)-1 : (ssize_t)tv[t]);
			bool blank = true;
			for (size_t i = 0; i < cl && blank; i++)
				blank = c[i] == 0;
			/* Without CREATE: a complete image opens, anything else is refused. */
			struct bs_backend *mb;
			assert_int_equal(bs_backend_mem(c, cl, &mb), BS_OK);
			struct wrap *w2 = wrap(mb, fixed);
			rc = bs_image_open_backend(wrap_be(w2), "crash.img", 0, &im);
			if (rc == BS_OK) {
				char why[256];
				if (!matches(im, &empty, why, sizeof why) ||
				    bs_image_check(im, 1, NULL, NULL) != BS_OK)
					VIOLATION("%s: opened but not a valid empty image", what);
				bs_image_close(im);
			} else if (rc != BS_ECORRUPT) {
				VIOLATION("%s: refused with %d, not BS_ECORRUPT", what, rc);
			}
			wrap_free(w2);
			bool was_image = rc == BS_OK;
			/* With CREATE: formats only blank storage; never rewrites the rest. */
			assert_int_equal(bs_backend_mem(c, cl, &mb), BS_OK);
			w2 = wrap(mb, fixed);
			rc = bs_image_open_backend(wrap_be(w2), "crash.img", BS_OPEN_CREATE, &im);
			if (rc == BS_OK) {
				size_t al;
				uint8_t *a = wrap_copy(w2, &al);
				if (!blank && !was_image)
					VIOLATION("%s: CREATE re-formatted non-empty storage", what);
				if (was_image && (al != cl || memcmp(a, c, cl)))
					VIOLATION("%s: CREATE changed an existing image", what);
				free(a);
				bs_image_close(im);
			} else if (blank || was_image) {
				VIOLATION("%s: CREATE failed on %s storage: %s", what,
					  blank ? "blank" : "formatted", last_error());
			}
			wrap_free(w2);
			free(c);
		}
	}
	free(lens);
	free(st);
}

/* A create whose write or sync fails at any step, the commit octet's
 * included, is taken back (the commit octet rewritten to 00, synced): the
 * storage is as before and the handle goes on.  Only when taking back the
 * commit fails too is the effect on storage unknown: the handle then
 * refuses changes (a stale view would write into a superseded copy) but
 * still reads; a reopen sees the truth and can write again. */
static void test_failed_commit_stops_writes(void **state)
{
	(void)state;
	/* Writes and syncs of a create: write, sync, commit octet, sync; with
	 * TWICE the operation after the failing one (taking it back) fails too. */
	for (int twice = 0; twice < 2; twice++)
	for (uint64_t k = twice ? 3 : 1; k <= 4; k++) {
		struct fault_plan none = {.tear_at = SIZE_MAX};
		bs_image *im;
		struct wrap *w;
		struct bs_backend *fb;
		assert_int_equal(open_fault(base_img, base_len, false, &none, 0, &im, &w, &fb), 0);
		struct fault_stats s0;
		fault_backend_stats(fb, &s0);
		bs_image_close(im);
		wrap_free(w);
		struct fault_plan p = {.tear_at = SIZE_MAX, .fail_at = s0.writes + s0.syncs + k,
					  .fail_code = BS_EIO, .fail_count = twice ? 2 : 1};
		assert_int_equal(open_fault(base_img, base_len, false, &p, 0, &im, &w, &fb), 0);
		assert_int_equal(op_create(im), BS_EIO);
		bs_entry *e = must_find(im, "cfg", NULL);
		assert_non_null(e);
		if (!twice) {
			/* Taken back: the storage holds the image as it was. */
			size_t bl;
			uint8_t *b = wrap_copy(w, &bl);
			assert_int_equal(bl, base_len);
			assert_memory_equal(b, base_img, base_len);
			free(b);
		}
		int rc = bs_entry_write(e, "x", 1);
		if (!twice) {
			assert_int_equal(rc, BS_OK);
		} else {
			/* The handle's view may be stale: its own code. */
			assert_int_equal(rc, BS_ESTALE);
			assert_non_null(strstr(last_error(), "reopen"));
			assert_int_equal(bs_entry_delete(e), BS_ESTALE);
			assert_int_equal(op_create(im), BS_ESTALE);
			assert_int_equal(bs_image_compact(im), BS_ESTALE);
			t_assert_data(im, "cfg", NULL, "c", 1);
		}
		bs_image_close(im);
		size_t cl;
		uint8_t *c = wrap_copy(w, &cl);
		wrap_free(w);
		struct bs_backend *mb;
		assert_int_equal(bs_backend_mem(c, cl, &mb), BS_OK);
		assert_int_equal(bs_image_open_backend(mb, "crash.img", 0, &im), BS_OK);
		e = must_find(im, "cfg", NULL);
		assert_int_equal(bs_entry_write(e, "y", 1), BS_OK);
		t_assert_data(im, "cfg", NULL, "y", 1);
		bs_image_close(im);
		free(c);
	}
}

static void test_format(void **state)
{
	(void)state;
	unsigned long v0 = fig.violations;
	format_case(false);
	format_case(true);
	assert_int_equal(fig.violations, v0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_failed_commit_stops_writes),
		cmocka_unit_test(test_ops_growable),
		cmocka_unit_test(test_ops_fixed_size),
		cmocka_unit_test(test_ops_fixed_blocks),
		cmocka_unit_test(test_fixed_compact_needs_room),
		cmocka_unit_test(test_fixed_compact_interrupted_readers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
