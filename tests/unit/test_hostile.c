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
		cmocka_unit_test(test_records_and_varstores),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
