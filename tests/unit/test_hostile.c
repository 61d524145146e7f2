/* test_hostile.c - the hostile-input table of docs/RELIABILITY.md, asserted.
 * Each case builds one hostile image and names the exact result code and
 * message the library gives (offsets included), so that the table stays
 * true.  Truncation at every octet and every single-bit flip are checked
 * against the small set of outcomes the table lists.  BS_HOSTILE_PRINT=1
 * prints what each case gets (to refresh the table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include <blobstore/sys/backend.h>
#include <blobstore/nvram.h>
#include <blobstore/uefi.h>

static bool printing;

/* What opening IMG and then finding/reading TYPE/NAME (when given) gives:
 * the first failing step's code, and the message of that step (an entry's
 * status message when the entry is refused). */
static int outcome(const uint8_t *img, size_t len, const char *type, const char *name,
		   char *msg, size_t ml)
{
	bs_image *im;
	int rc = t_open_mem(img, len, BS_OPEN_RDONLY, &im, NULL);
	if (rc) {
		snprintf(msg, ml, "%s", last_error());
		return rc;
	}
	msg[0] = 0;
	if (type) {
		bs_entry *e = NULL;
		rc = bs_entry_find(im, type, name, &e);
		if (rc) {
			/* A refused entry is still listed: its status says why. */
			for (size_t i = 0; i < bs_image_count(im, BS_ITER_LIBRARY); i++) {
				bs_entry *x = t_entry_at(im, i);
				if (bs_entry_status(x)) {
					snprintf(msg, ml, "%s", bs_entry_status_message(x));
					rc = bs_entry_status(x);
					break;
				}
			}
			if (!msg[0])
				snprintf(msg, ml, "%s", last_error());
		} else if (bs_entry_status(e)) {
			rc = bs_entry_status(e);
			snprintf(msg, ml, "%s", bs_entry_status_message(e));
		} else {
			void *d;
			size_t dl;
			rc = bs_entry_read_alloc(e, &d, &dl);
			if (rc)
				snprintf(msg, ml, "%s", last_error());
			else
				free(d);
		}
	}
	bs_image_close(im);
	return rc;
}

static void first_error(void *ctx, const bs_entry *e, uint64_t off, int code, const char *msg)
{
	(void)e;
	(void)off;
	if (code && !((char *)ctx)[0])
		snprintf(ctx, 1024, "%s", msg);
}

static void expect(const char *what, const uint8_t *img, size_t len, const char *type,
		   const char *name, int code, const char *message)
{
	char msg[1024];
	int rc = outcome(img, len, type, name, msg, sizeof msg);
	if (printing)
		print_message("| %s | %s (%d) | `%s` |\n", what, bs_error_string(rc), rc, msg);
	if (!printing && (rc != code || strcmp(msg, message)))
		fail_msg("%s: got %d \"%s\", expected %d \"%s\"", what, rc, msg, code, message);
}

/* An image: bs.image, then ELEMENT (raw octets), then the end-of-contents. */
static void image_with(struct buf *img, const void *el, size_t n)
{
	buf_reset(img);
	t_image_begin(img);
	buf_put(img, el, n);
	t_image_end(img);
}

/* ---- single cases ----------------------------------------------------------- */

static void test_not_images(void **state)
{
	(void)state;
	expect("empty storage", NULL, 0, NULL, NULL, BS_ECORRUPT,
	       "mem.img: empty: not a formatted image (run 'blobstore format')");
	expect("text file", (const uint8_t *)"hello, world\n", 13, NULL, NULL, BS_ECORRUPT,
	       "mem.img: at offset 0: not a blobstore image (starts 68 65, not 31 80: an "
	       "indefinite-length SET)");
	static const uint8_t defset[] = {0x31, 0x03, 0x04, 0x01, 0x00};
	expect("definite-length SET", defset, sizeof defset, NULL, NULL, BS_ECORRUPT,
	       "mem.img: at offset 0: not a blobstore image (starts 31 03, not 31 80: an "
	       "indefinite-length SET)");
	static const uint8_t noent[] = {0x31, 0x80, 0x00, 0x00};
	expect("no bs.image entry", noent, sizeof noent, NULL, NULL, BS_ECORRUPT,
	       "mem.img: at offset 2: not a blobstore image: the first entry is not a valid "
	       "bs.image entry");
	struct buf img = {0};
	t_image_begin(&img);
	expect("no end-of-contents", img.p, img.len, NULL, NULL, BS_ECORRUPT,
	       "mem.img: at offset 49: directory has no end-of-contents (truncated image?)");
	buf_bytes(&img, 2, 0x00, 0x01);
	expect("malformed end-of-contents 00 01", img.p, img.len, NULL, NULL, BS_ECORRUPT,
	       "mem.img: at offset 49: malformed end-of-contents (00 01)");
	buf_free(&img);
}

static void test_lengths(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		uint8_t h[10];
		size_t n;
		const char *msg;
	} c[] = {
		{"entry length 2^31 - 1", {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, 6,
		 "mem.img: at offset 49: entry runs past the end of the image"},
		{"entry length 2^31", {0x30, 0x84, 0x80, 0x00, 0x00, 0x00}, 6,
		 "mem.img: at offset 49: entry runs past the end of the image"},
		{"entry length 2^32 - 1", {0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, 6,
		 "mem.img: at offset 49: entry runs past the end of the image"},
		{"entry length 2^32", {0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}, 7,
		 "mem.img: at offset 49: length of 2^32 or more"},
		{"entry length 2^63", {0x30, 0x88, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10,
		 "mem.img: at offset 49: length of 2^32 or more"},
		{"entry length 2^64 - 1", {0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		 10, "mem.img: at offset 49: length of 2^32 or more"},
		{"free element length 2^32", {0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}, 7,
		 "mem.img: at offset 49: free element: length of 2^32 or more"},
		{"free element length 2^63", {0x04, 0x88, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10,
		 "mem.img: at offset 49: free element: length of 2^32 or more"},
		{"non-minimal length", {0x30, 0x81, 0x05}, 3,
		 "mem.img: at offset 49: non-minimal length (long form for a short length)"},
		{"indefinite-length entry", {0x30, 0x80}, 2,
		 "mem.img: at offset 49: indefinite length inside an entry"},
	};
	struct buf img = {0};
	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		uint8_t el[64];
		memset(el, 0x16, sizeof el);
		memcpy(el, c[i].h, c[i].n);
		image_with(&img, el, sizeof el);
		expect(c[i].what, img.p, img.len, NULL, NULL, BS_ECORRUPT, c[i].msg);
	}
	buf_free(&img);
}

/* A value nested DEPTH SEQUENCEs deep around an INTEGER. */
static void nested(struct buf *out, unsigned depth)
{
	struct buf in = {0};
	buf_bytes(&in, 3, 0x02, 0x01, 0x05);
	for (unsigned i = 0; i < depth; i++) {
		struct buf o = {0};
		buf_tlv(&o, 0x30, in.p, in.len);
		buf_free(&in);
		in = o;
	}
	buf_put(out, in.p, in.len);
	buf_free(&in);
}

static void test_entries(void **state)
{
	(void)state;
	struct buf img = {0}, e = {0}, e2 = {0}, v = {0}, set = {0};
	/* Deep nesting inside an attribute value. */
	nested(&v, BS_MAX_DEPTH + 1);
	t_attr_val(&set, "deep", v.p, v.len);
	struct t_entry te = {.type = "t", .name = "n", .opt = set.p, .opt_len = set.len};
	t_build_entry(&e, &te);
	image_with(&img, e.p, e.len);
	expect("attribute nested 17 deep", img.p, img.len, "t", "n", BS_ECORRUPT,
	       "optional attributes: nesting deeper than the limit");
	/* 10000 levels: refused the same way, without recursion. */
	buf_reset(&v);
	buf_reset(&set);
	buf_reset(&e);
	nested(&v, 10000);
	t_attr_val(&set, "deep", v.p, v.len);
	te.opt = set.p;
	te.opt_len = set.len;
	t_build_entry(&e, &te);
	image_with(&img, e.p, e.len);
	expect("attribute nested 10000 deep", img.p, img.len, "t", "n", BS_ECORRUPT,
	       "optional attributes: nesting deeper than the limit");

	/* An attribute SET whose length claims more than the NVRAM holds. */
	buf_reset(&e);
	t_raw_entry(&e, "t", "n", "data");
	/* 30 L1 30 L2 16 01 74 31 00 31 00 04 04 ...: the first SET at 7. */
	assert_int_equal(e.p[7], 0x31);
	e.p[8] = 0x7f;
	image_with(&img, e.p, e.len);
	expect("attribute set longer than its entry", img.p, img.len, "t", "n", BS_ECORRUPT,
	       "element runs past its NVRAM");
	/* An attribute whose value claims more than the attribute holds. */
	buf_reset(&set);
	buf_reset(&e);
	t_attr_val(&set, "a", "\x02\x01\x05", 3);
	set.p[set.len - 2] = 0x09; /* INTEGER length 9 inside a 6-octet SEQUENCE */
	te.opt = set.p;
	te.opt_len = set.len;
	t_build_entry(&e, &te);
	image_with(&img, e.p, e.len);
	expect("attribute value longer than its attribute", img.p, img.len, "t", "n", BS_ECORRUPT,
	       "optional attributes: length runs past the enclosing element");
	/* A data OCTET STRING that claims less than the entry holds. */
	buf_reset(&e);
	t_raw_entry(&e, "t", "n", "data");
	e.p[e.len - 8] = 0x03; /* 04 04 "data" 0c 01 "n" */
	image_with(&img, e.p, e.len);
	expect("data shorter than its entry says", img.p, img.len, "t", "n", BS_ECORRUPT,
	       "NVRAM does not end with its data");

	/* Duplicate entries: both refused, each naming the other. */
	buf_reset(&e);
	t_raw_entry(&e, "t", "n", "one");
	t_raw_entry(&e2, "t", "n", "two");
	buf_put(&e, e2.p, e2.len);
	image_with(&img, e.p, e.len);
	expect("duplicate entries", img.p, img.len, "t", "n", BS_ECORRUPT,
	       "duplicate entry (also at offset 68)");

	/* An unknown mandatory attribute. */
	buf_reset(&set);
	buf_reset(&e);
	t_attr_flag(&set, "future.feature");
	struct t_entry tm = {.type = "t", .name = "n", .mand = set.p, .mand_len = set.len};
	t_build_entry(&e, &tm);
	image_with(&img, e.p, e.len);
	expect("unknown mandatory attribute", img.p, img.len, "t", "n", BS_EUNSUPPORTED,
	       "unknown mandatory attribute 'future.feature'");

	/* Both slots failing their check. */
	buf_reset(&e);
	t_slotted_entry(&e, "t", "n", 16, "hello", 5);
	e.p[e.len - 3 - 64 + 16] ^= 1; /* "hello" in slot 0 (slot 1 is empty) */
	image_with(&img, e.p, e.len);
	expect("no valid slot", img.p, img.len, "t", "n", BS_ECORRUPT,
	       "mem.img: entry 't'/'n' at offset 82: no valid data slot: both fail their CRC-32C "
	       "check");
	buf_free(&img);
	buf_free(&e);
	buf_free(&e2);
	buf_free(&v);
	buf_free(&set);
}

/* What bs_image_check() gives on IMG (opened writable): its code and the
 * first error it reports. */
static void expect_check_result(const char *what, const uint8_t *img, size_t len, int code,
			 const char *message)
{
	bs_image *im;
	char msg[1024] = "";
	int rc = t_open_mem(img, len, 0, &im, NULL);
	if (rc) {
		snprintf(msg, sizeof msg, "open: %s", last_error());
	} else {
		rc = bs_image_check(im, 0, first_error, msg);
		bs_image_close(im);
	}
	if (printing)
		print_message("| %s | %s (%d) | `%s` |\n", what, bs_error_string(rc), rc, msg);
	if (!printing && (rc != code || strcmp(msg, message)))
		fail_msg("%s: got %d \"%s\", expected %d \"%s\"", what, rc, msg, code, message);
}

/* An old image's free element of zeros whose length lost a bit: 04 82 01 00
 * became 04 02 01 00, the zeros read as the end-of-contents, and the entry
 * after them is hidden. */
static void test_forged_end(void **state)
{
	(void)state;
	struct buf img = {0}, e = {0};
	t_image_begin(&img);
	buf_bytes(&img, 4, 0x04, 0x02, 0x01, 0x00);
	uint8_t zeros[256] = {0};
	buf_put(&img, zeros, sizeof zeros);
	t_raw_entry(&e, "t", "n", "data");
	buf_put(&img, e.p, e.len);
	t_image_end(&img);
	expect_check_result("an entry behind a forged end-of-contents (zero-filled free space, one "
		     "length bit flipped)", img.p, img.len, BS_ECORRUPT,
		     "mem.img: at offset 309: an entry follows the end-of-contents at offset 53: "
		     "damage may have ended the directory early and hidden the entries after it; "
		     "run 'blobstore salvage' (appends and compaction are refused, so as not to "
		     "destroy them)");
	buf_free(&img);
	buf_free(&e);
}

/* ---- millions of tiny entries ------------------------------------------------ */

static void test_too_many_entries(void **state)
{
	(void)state;
	/* One more than BS_MAX_ENTRIES tiny entries (13 octets each); the
	 * image entry counts too. */
	static const uint8_t tiny[] = {0x30, 0x0b, 0x30, 0x09, 0x16, 0x01, 0x74, 0x31,
				       0x00, 0x31, 0x00, 0x04, 0x00};
	struct buf img = {0};
	t_image_begin(&img);
	size_t head = img.len, n = BS_MAX_ENTRIES;
	size_t total = head + n * sizeof tiny + 2;
	uint8_t *b = malloc(total);
	assert_non_null(b);
	memcpy(b, img.p, head);
	for (size_t i = 0; i < n; i++)
		memcpy(b + head + i * sizeof tiny, tiny, sizeof tiny);
	b[total - 2] = b[total - 1] = 0;
	char msg[1024];
	char what[64];
	snprintf(what, sizeof what, "%u tiny entries", BS_MAX_ENTRIES + 1);
	int rc = outcome(b, total, NULL, NULL, msg, sizeof msg);
	if (printing)
		print_message("| %s | %s (%d) | `%s` |\n", what, bs_error_string(rc), rc, msg);
	char want[256];
	snprintf(want, sizeof want, "mem.img: at offset %zu: more than %u entries",
		 head + (n - 1) * sizeof tiny, BS_MAX_ENTRIES);
	assert_int_equal(rc, BS_ELIMIT);
	assert_string_equal(msg, want);
	free(b);
	buf_free(&img);
}

/* ---- truncation and bit flips ---------------------------------------------- */

/* The documented outcomes of damaged images (offsets dropped). */
static const char *const damage_msgs[] = {
	"directory has no end-of-contents (truncated image?)",
	"entry runs past the end of the image",
	"not a blobstore image (starts",
	"octets are too short to be one",
	"empty: not a formatted image",
	"not a blobstore image: the first entry is not a valid bs.image entry",
	"malformed end-of-contents",
	"free element:",
	"malformed pad element",
	"entry header cannot be read",
	"expected",
	"unexpected",
	"more than",
	"truncated length",
};

static bool documented(const char *msg)
{
	for (size_t i = 0; i < sizeof damage_msgs / sizeof *damage_msgs; i++)
		if (strstr(msg, damage_msgs[i]))
			return true;
	return false;
}

static size_t sample_image(uint8_t **out)
{
	struct bs_backend *be;
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	uint8_t v[4];
	struct bs_attr a = {BS_ATTR_VERSION, "mode", 0, v, t_der_int(3, v, sizeof v)};
	assert_int_equal(bs_entry_create(im, "vtpm", "permall", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 64, .attrs = &a, .nattrs = 1}, "state-one", 9, NULL), 0);
	struct bs_entry_opts ro = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	assert_int_equal(bs_entry_create(im, "raw", NULL, &ro, "raw-data", 8, NULL), 0);
	size_t len;
	*out = t_mem_copy(be, &len);
	bs_image_close(im);
	return len;
}

static void test_truncated_at_every_octet(void **state)
{
	(void)state;
	uint8_t *img;
	size_t len = sample_image(&img);
	for (size_t l = 0; l < len; l++) {
		char msg[1024];
		int rc = outcome(img, l, NULL, NULL, msg, sizeof msg);
		if (rc != BS_ECORRUPT || !documented(msg) || !strstr(msg, "mem.img"))
			fail_msg("truncated to %zu octets: %d \"%s\"", l, rc, msg);
		if (printing)
			print_message("truncated to %zu octets: %s\n", l, msg);
	}
	free(img);
}

static void test_every_bit_flipped(void **state)
{
	(void)state;
	uint8_t *img;
	size_t len = sample_image(&img);
	uint8_t *c = malloc(len);
	assert_non_null(c);
	size_t refused = 0, opened = 0, entry_refused = 0, read_failed = 0, same = 0, renamed = 0;
	for (size_t bit = 0; bit < len * 8; bit++) {
		memcpy(c, img, len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		bs_image *im;
		int rc = t_open_mem(c, len, BS_OPEN_RDONLY, &im, NULL);
		if (rc) {
			if (rc != BS_ECORRUPT && rc != BS_ELIMIT)
				fail_msg("bit %zu: open gave %d \"%s\"", bit, rc, last_error());
			refused++;
			continue;
		}
		opened++;
		bs_entry *e;
		if (bs_entry_find(im, "vtpm", "permall", &e)) {
			renamed++; /* the flip hit the type or name, or refused it */
		} else if (bs_entry_status(e)) {
			entry_refused++;
		} else {
			char buf[64];
			size_t n;
			rc = bs_entry_read(e, buf, sizeof buf, &n);
			if (rc) {
				assert_int_equal(rc, BS_ECORRUPT);
				read_failed++;
			} else {
				/* A slotted entry never returns damaged data. */
				assert_int_equal(n, 9);
				assert_memory_equal(buf, "state-one", 9);
				same++;
			}
		}
		bs_image_close(im);
	}
	if (printing)
		print_message("bit flips over %zu bits: %zu refused at open, %zu opened: %zu entry "
			      "refused, %zu read refused (checksum), %zu entry not found under its "
			      "name, %zu read the original data\n",
			      len * 8, refused, opened, entry_refused, read_failed, renamed, same);
	assert_true(refused > 0 && read_failed > 0);
	free(c);
	free(img);
}

/* ---- single-bit flips over every layout ------------------------------------ */

/* Fixed-size storage in memory, as blk:// and NBD present it: no resize, no
 * replace (compaction goes in place through the recovery area at the end),
 * writes past the end refused.  KEEP: close leaves the octets to the test. */
struct fixed_mem {
	uint8_t *p;
	size_t size;
	bool keep;
};

static int fm_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct fixed_mem *f = ctx;
	if (off > f->size || len > f->size - off)
		return bs_error_set("fixed.img", NULL, NULL, off, BS_ECORRUPT, 0,
				    "read past the end of the storage");
	memcpy(buf, f->p + off, len);
	return BS_OK;
}

static int fm_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct fixed_mem *f = ctx;
	if (off > f->size || len > f->size - off)
		return bs_error_set("fixed.img", NULL, NULL, off, BS_ENOSPC, 0,
				    "write past the end of the storage");
	memcpy(f->p + off, buf, len);
	return BS_OK;
}

static int fm_sync(void *ctx)
{
	(void)ctx;
	return BS_OK;
}

static int fm_size(void *ctx, uint64_t *out)
{
	*out = ((struct fixed_mem *)ctx)->size;
	return BS_OK;
}

static void fm_close(void *ctx)
{
	struct fixed_mem *f = ctx;
	if (!f->keep) {
		free(f->p);
		free(f);
	}
}

static const struct bs_backend_ops fixed_mem_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = fm_read, .write_at = fm_write, .sync = fm_sync, .size = fm_size,
	.close = fm_close,
};

/* 8192 octets: the least fixed-size storage takes (an image area of 4096
 * and the 4096-octet recovery area). */
#define FIXED_STORAGE 8192u

/* Opens a copy of IMG/LEN on fixed-size (FIXED) or growable memory. */
static int open_layout(const uint8_t *img, size_t len, bool fixed, unsigned flags, bs_image **im,
		       struct fixed_mem **keep)
{
	if (!fixed)
		return t_open_mem(img, len, flags, im, NULL);
	struct fixed_mem *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->p = malloc(len);
	assert_non_null(f->p);
	memcpy(f->p, img, len);
	f->size = len;
	f->keep = keep != NULL;
	if (keep)
		*keep = f;
	struct bs_backend *be;
	assert_int_equal(bs_backend_new(&fixed_mem_ops, f, 512, &be), BS_OK);
	return bs_image_open_backend(be, "fixed.img", flags, im);
}

static const uint8_t sweep_key[32] = "0123456789abcdef0123456789abcdef";

/* What each entry of a sweep image holds: its newest and previous values. */
struct committed {
	const char *type, *name;
	const char *cur, *prev; /* PREV: NULL when no slot holds an older value */
	bool raw;               /* no checksum: a flipped data bit is not detected */
};

static const struct committed sweep_entries[] = {
	{"vtpm", "permall", "second permall state, longer", "first permall", false},
	{"raw", "blob", "raw-octets", NULL, true},
	{"nvram", "Boot0000", "boot entry zero", NULL, false},
	{"vtpm", "secret", "encrypted value two", "encrypted value one", false},
	{"nvram", "late", "appended after the compaction", NULL, false},
};
#define NSWEEP (sizeof sweep_entries / sizeof *sweep_entries)

static size_t count_elements(const uint8_t *p, size_t len, size_t *frees, size_t *pads,
			     uint8_t *framing);

/* The sweep image of a layout: entries written twice (two valid slots), a
 * raw entry, the key entry and an encrypted entry, a compaction (on
 * fixed-size storage through the recovery area, which then holds a "done"
 * record), then appends (each leaves a pad) and deletions (free elements,
 * filled with ff) before and after the last entry. */
static size_t sweep_image(bool fixed, uint8_t **out)
{
	struct fixed_mem *f = NULL;
	struct bs_backend *be = NULL;
	bs_image *im;
	uint8_t *zero = calloc(1, FIXED_STORAGE);
	assert_non_null(zero);
	if (fixed)
		assert_int_equal(open_layout(zero, FIXED_STORAGE, true, BS_OPEN_CREATE, &im, &f), BS_OK);
	else
		assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	free(zero);
	const struct committed *c = sweep_entries;
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 40};
	struct bs_entry_opts raw = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	struct bs_entry_opts enc = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 40,
				    .flags = BS_ENTRY_ENCRYPT};
	bs_entry *e, *g;
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(sweep_key, sizeof sweep_key, &k), BS_OK);
	assert_int_equal(bs_entry_create(im, c[0].type, c[0].name, &o, c[0].prev, strlen(c[0].prev), &e), 0);
	assert_int_equal(bs_entry_write(e, c[0].cur, strlen(c[0].cur)), BS_OK);
	assert_int_equal(bs_entry_create(im, "tmp", "early", &o, "deleted before compaction", 25, &g), 0);
	assert_int_equal(bs_entry_delete(g), BS_OK);
	assert_int_equal(bs_entry_create(im, c[1].type, c[1].name, &raw, c[1].cur, strlen(c[1].cur), NULL), 0);
	assert_int_equal(bs_image_init_encryption(im, k, NULL), BS_OK);
	assert_int_equal(bs_entry_create(im, c[3].type, c[3].name, &enc, c[3].prev, strlen(c[3].prev), &e), 0);
	assert_int_equal(bs_entry_write(e, c[3].cur, strlen(c[3].cur)), BS_OK);
	assert_int_equal(bs_image_compact(im), BS_OK);
	assert_int_equal(bs_entry_create(im, "tmp", "gone", &o, "deleted: free space", 19, &g), 0);
	assert_int_equal(bs_entry_create(im, c[2].type, c[2].name, &o, c[2].cur, strlen(c[2].cur), NULL), 0);
	assert_int_equal(bs_entry_delete(g), BS_OK);
	assert_int_equal(bs_entry_create(im, c[4].type, c[4].name, &o, c[4].cur, strlen(c[4].cur), NULL), 0);
	assert_int_equal(bs_entry_create(im, "tmp", "last", &o, "deleted last", 12, &g), 0);
	assert_int_equal(bs_entry_delete(g), BS_OK);
	size_t len;
	if (fixed) {
		len = f->size;
		*out = f->p;
		bs_image_close(im);
		free(f);
	} else {
		*out = t_mem_copy(be, &len);
		bs_image_close(im);
	}
	bs_key_free(k);
	size_t frees, pads;
	count_elements(*out, len, &frees, &pads, NULL);
	assert_true(frees >= 2 && pads >= 3);
	return len;
}

/* Walks the directory of an undamaged image: entries, free elements (whose
 * contents must be ff) and pads.  Returns the number of entries; FRAMING
 * (LEN octets, may be NULL) gets 1 at the header octets of every element,
 * the image's own and the end-of-contents. */
static size_t count_elements(const uint8_t *p, size_t len, size_t *frees, size_t *pads,
			     uint8_t *framing)
{
	if (framing) {
		memset(framing, 0, len);
		framing[0] = framing[1] = 1;
	}
	size_t off = 2, n = 0;
	*frees = *pads = 0;
	while (off + 2 <= len && !(p[off] == 0 && p[off + 1] == 0)) {
		size_t l = p[off + 1], h = 2;
		if (l & 0x80) {
			size_t nl = l & 0x7f;
			l = 0;
			for (size_t i = 0; i < nl; i++)
				l = l << 8 | p[off + 2 + i];
			h += nl;
		}
		assert_true(off + h + l <= len);
		if (framing)
			memset(framing + off, 1, h);
		if (p[off] == 0x30) {
			n++;
		} else if (p[off] == 0x04) {
			(*frees)++;
			for (size_t i = 0; i < l; i++)
				assert_int_equal(p[off + h + i], 0xff);
		} else {
			assert_int_equal(p[off], 0x05);
			(*pads)++;
		}
		off += h + l;
	}
	if (framing && off + 2 <= len)
		framing[off] = framing[off + 1] = 1;
	return n;
}

/* The outcomes of one flipped bit, worst last. */
enum flip_outcome {
	FLIP_REFUSED,     /* the open fails: BS_ECORRUPT */
	FLIP_INTACT,      /* every entry reads its committed value; check passes */
	FLIP_PREVIOUS,    /* an entry reads its previous value, and says so */
	FLIP_REPORTED,    /* an entry is missing, refused or unreadable, and check
			     (image or entry) or the key reports the damage */
	FLIP_RENAMED,     /* a type or name changed, the data intact under the new
			     one: not detected (no checksum covers them) */
	FLIP_RAW_CHANGED, /* the raw entry's data changed: not detected (no slots) */
	FLIP_SILENT,      /* opens, check passes, an entry missing or wrong */
	FLIP_OUTCOMES
};

static const char *const flip_names[FLIP_OUTCOMES] = {
	"refused at open", "every entry intact", "previous value reported",
	"damage reported", "renamed (type/name)", "raw data changed", "SILENT LOSS",
};

/* One damaged image: what a reader holding the key gets.  Entries that are
 * checksummed never return data that was not committed (fails the test). */
static enum flip_outcome flip_probe(const uint8_t *img, size_t len, bool fixed, const bs_key *k,
				    size_t bit)
{
	bs_image *im;
	int rc = open_layout(img, len, fixed, BS_OPEN_RDONLY, &im, NULL);
	if (rc) {
		if (rc != BS_ECORRUPT)
			fail_msg("%s bit %zu (octet %zu): open gave %d \"%s\"", fixed ? "fixed" : "growable",
				 bit, bit / 8, rc, last_error());
		return FLIP_REFUSED;
	}
	bool reported = false, missing = false, previous = false, raw_changed = false;
	if (bs_image_set_key(im, k))
		reported = true; /* the key entry is refused: nothing encrypted reads */
	if (bs_image_check(im, 0, NULL, NULL) != BS_OK)
		reported = true;
	for (size_t i = 0; i < NSWEEP; i++) {
		const struct committed *c = &sweep_entries[i];
		bs_entry *e;
		void *p;
		size_t l;
		int st = -1;
		if (bs_entry_find(im, c->type, c->name, &e)) {
			missing = true;
			continue;
		}
		if (bs_entry_status(e) || bs_entry_read_alloc(e, &p, &l)) {
			missing = true;
			reported = true; /* refused or unreadable: an error, not a silent loss */
			continue;
		}
		bool cur = l == strlen(c->cur) && !memcmp(p, c->cur, l);
		bool prev = c->prev && l == strlen(c->prev) && !memcmp(p, c->prev, l);
		free(p);
		if (c->raw) {
			raw_changed |= !cur;
			continue;
		}
		if (bs_entry_check(e, &st) != BS_OK) {
			reported = true;
			st = -1;
		}
		if (!cur && !(prev && st == BS_STATE_PREVIOUS))
			fail_msg("%s bit %zu (octet %zu): %s/%s read %zu octets that are not its "
				 "committed value%s", fixed ? "fixed" : "growable", bit, bit / 8, c->type,
				 c->name, l, prev ? " (the previous one, unreported)" : "");
		if (cur && st == BS_STATE_PREVIOUS)
			fail_msg("%s bit %zu: %s/%s reads its newest value reported as previous",
				 fixed ? "fixed" : "growable", bit, c->type, c->name);
		previous |= prev;
	}
	/* A missing entry whose data turns up under another type or name. */
	bool renamed = false;
	if (missing && !reported) {
		size_t found = 0;
		for (bs_entry *e = NULL; (e = bs_entry_next(im, e, 0));) {
			void *p;
			size_t l;
			if (bs_entry_read_alloc(e, &p, &l))
				continue;
			for (size_t i = 0; i < NSWEEP; i++) {
				const char *v = sweep_entries[i].cur;
				found += l == strlen(v) && !memcmp(p, v, l);
			}
			free(p);
		}
		renamed = found == NSWEEP;
	}
	bs_image_close(im);
	if (missing && !reported)
		return renamed ? FLIP_RENAMED : FLIP_SILENT;
	if (raw_changed && !reported)
		return FLIP_RAW_CHANGED;
	if (missing || reported)
		return FLIP_REPORTED;
	return previous ? FLIP_PREVIOUS : FLIP_INTACT;
}

/* A writer on the damaged image IMG: opens it (a writer's open may recover
 * or repair), loads the key and appends an entry.  Returns the storage
 * afterwards in *OUT (malloc'ed), or NULL when the open refused. */
static size_t flip_appended; /* appends that succeeded */

static uint8_t *flip_write(const uint8_t *img, size_t len, bool fixed, const bs_key *k,
			   size_t *out_len)
{
	bs_image *im;
	struct bs_backend *be = NULL;
	struct fixed_mem *f = NULL;
	int rc = fixed ? open_layout(img, len, true, 0, &im, &f) : t_open_mem(img, len, 0, &im, &be);
	if (rc) {
		if (f) {
			free(f->p);
			free(f);
		}
		return NULL;
	}
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 16};
	if (bs_image_set_key(im, k) == BS_OK &&
	    bs_entry_create(im, "new", "after-damage", &o, "written after", 13, NULL) == BS_OK)
		flip_appended++;
	uint8_t *after;
	if (fixed) {
		bs_image_close(im);
		after = f->p;
		*out_len = f->size;
		free(f);
	} else {
		after = t_mem_copy(be, out_len);
		bs_image_close(im);
	}
	return after;
}

/* Every single-bit flip (sampled under BS_TEST_QUICK) over the whole
 * storage of each layout's sweep image: free elements, pads, the key entry,
 * an encrypted entry, a raw one and, on fixed-size storage, the unused
 * octets and the recovery area.  Nothing crashes; a reader gets a refusal,
 * a report, or every committed value: no silent loss. */
static void test_bit_flips_every_layout(void **state)
{
	(void)state;
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(sweep_key, sizeof sweep_key, &k), BS_OK);
	size_t step = t_quick() ? 7 : 1, silent = 0;
	for (int fixed = 0; fixed < 2; fixed++) {
		uint8_t *img;
		size_t len = sweep_image(fixed, &img), frees, pads;
		uint8_t *framing = malloc(len);
		assert_non_null(framing);
		size_t dir_entries = count_elements(img, len, &frees, &pads, framing);
		/* Under BS_TEST_QUICK every bit of the directory's framing (the
		 * tag and length octets of its elements and the end-of-contents,
		 * where one flip can hide entries: 3 flips of free elements'
		 * lengths did before they were ff-filled) and of both recovery
		 * records is still flipped, and every STEP-th bit elsewhere. */
		size_t rec = fixed ? len - 4096 : len;
		assert_int_equal(flip_probe(img, len, fixed, k, 0), FLIP_INTACT);
		uint8_t *c = malloc(len);
		assert_non_null(c);
		size_t n[FLIP_OUTCOMES] = {0}, nw[FLIP_OUTCOMES] = {0}, flips = 0;
		flip_appended = 0;
		for (size_t bit = 0; bit < len * 8; bit++) {
			size_t at = bit / 8;
			bool must = framing[at] || (at >= rec && at < rec + 64) ||
				    (at >= rec + 2048 && at < rec + 2048 + 64);
			if (!must && bit % step)
				continue;
			memcpy(c, img, len);
			c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			enum flip_outcome o = flip_probe(c, len, fixed, k, bit);
			n[o]++;
			flips++;
			if (o == FLIP_SILENT) {
				silent++;
				print_error("%s: silent loss at octet %zu, bit %zu\n",
					    fixed ? "fixed" : "growable", bit / 8, bit % 8);
			}
			if (o == FLIP_REFUSED)
				continue;
			/* Then a writer appends: it must not land on what the
			 * damage hid (D1), and a reader afterwards still gets a
			 * refusal, a report or the committed values. */
			size_t al;
			uint8_t *after = flip_write(c, len, fixed, k, &al);
			if (!after)
				continue;
			enum flip_outcome w = flip_probe(after, al, fixed, k, bit);
			free(after);
			nw[w]++;
			if (w == FLIP_SILENT) {
				silent++;
				print_error("%s: silent loss after a write, at octet %zu, bit %zu\n",
					    fixed ? "fixed" : "growable", bit / 8, bit % 8);
			}
		}
		print_message("bit flips, %s storage (%zu octets: %zu entries, %zu free elements, "
			      "%zu pads): %zu flips:", fixed ? "fixed-size" : "growable", len,
			      dir_entries, frees, pads, flips);
		for (int i = 0; i < FLIP_OUTCOMES; i++)
			print_message(" %zu %s%s", n[i], flip_names[i], i + 1 < FLIP_OUTCOMES ? "," : "\n");
		print_message("  then a writer opened (%zu appended an entry), a reader got:",
			      flip_appended);
		for (int i = 0; i < FLIP_OUTCOMES; i++)
			print_message(" %zu %s%s", nw[i], flip_names[i], i + 1 < FLIP_OUTCOMES ? "," : "\n");
		assert_true(n[FLIP_REFUSED] > 0 && n[FLIP_PREVIOUS] > 0 && n[FLIP_REPORTED] > 0);
		free(framing);
		free(c);
		free(img);
	}
	bs_key_free(k);
	assert_int_equal(silent, 0);
}

/* ---- the device layer's decoders ----------------------------------------------- */

static void test_records_and_varstores(void **state)
{
	(void)state;
	bs_record *r;
	static const uint8_t notrec[] = {0x04, 0x01, 0x00};
	int rc = bs_record_decode(notrec, sizeof notrec, NULL, 0, &r);
	if (printing)
		print_message("| record: not a SEQUENCE | %d | `%s` |\n", rc, last_error());
	assert_int_equal(rc, BS_ECORRUPT);
	static const uint8_t lying[] = {0x30, 0x05, 0x30, 0x7f, 0x16, 0x01, 0x61};
	rc = bs_record_decode(lying, sizeof lying, NULL, 0, &r);
	if (printing)
		print_message("| record: field longer than the record | %d | `%s` |\n", rc,
			      last_error());
	assert_int_equal(rc, BS_ECORRUPT);
	struct bs_uefi_store *st;
	rc = bs_uefi_parse((const uint8_t *)"hello", 5, &st);
	if (printing)
		print_message("| varstore: 5 octets | %d | `%s` |\n", rc, last_error());
	assert_int_equal(rc, BS_ECORRUPT);
	assert_string_equal(last_error(), "varstore at octet 0: shorter than a firmware volume header");
}

int main(void)
{
	const char *p = getenv("BS_HOSTILE_PRINT");
	printing = p && *p && strcmp(p, "0");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_images),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_forged_end),
		cmocka_unit_test(test_too_many_entries),
		cmocka_unit_test(test_truncated_at_every_octet),
		cmocka_unit_test(test_every_bit_flipped),
		cmocka_unit_test(test_bit_flips_every_layout),
		cmocka_unit_test(test_records_and_varstores),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
