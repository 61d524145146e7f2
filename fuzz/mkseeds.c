/* mkseeds.c - seed inputs for the fuzz targets, made by the library itself.
 *
 *   mkseeds OUTDIR   writes OUTDIR/fuzz_image/<name>.bs (whole images) and
 *                    OUTDIR/fuzz_entry/<name>.der (single entries)
 *
 * The images cover what the format can hold: every slot check, raw data,
 * named and unnamed entries, every attribute kind, free space, a finished
 * rewrite, and the states a crash leaves (interrupted rewrite, torn slot,
 * uncommitted append).  Each stays under 4 KiB so the fuzzer mutates it
 * quickly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blobstore.h"
#include "blobstore_backend.h"

static const char *outdir;

static void die(const char *what)
{
	fprintf(stderr, "mkseeds: %s: %s\n", what, bs_errmsg());
	exit(1);
}

static void put(const char *target, const char *name, const uint8_t *p, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "mkseeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Writes the image behind BE as an image seed, and (with ENTRIES) each of
 * its entries as an entry seed. */
static void save(bs_image *img, struct bs_backend *be, const char *name, int entries)
{
	size_t len;
	const uint8_t *p = bs_backend_mem_data(be, &len);
	char fn[256];
	snprintf(fn, sizeof fn, "%s.bs", name);
	put("fuzz_image", fn, p, len);
	for (size_t i = 0; entries && i < bs_count(img); i++) {
		bs_entry *e = bs_entry_at(img, i);
		uint64_t off = bs_entry_offset(e), size = bs_entry_size(e);
		if (off + size > len)
			continue;
		snprintf(fn, sizeof fn, "%s-%02zu.der", name, i);
		put("fuzz_entry", fn, p + off, (size_t)size);
	}
}

static bs_image *fresh(struct bs_backend **be)
{
	bs_image *img;
	if (bs_backend_mem(NULL, 0, be))
		die("memory backend");
	if (bs_open_backend(*be, "seed", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img))
		die("create");
	return img;
}

/* The image with one of everything; returns its octets (malloc'ed). */
static uint8_t *rich(size_t *len)
{
	struct bs_backend *be;
	bs_image *img = fresh(&be);
	uint8_t iv[BS_DER_MAX_INT], bv[4], sv[32], ov[16];
	size_t il = bs_der_int(-300, iv, sizeof iv);
	size_t bl = bs_der_bool(1, bv, sizeof bv);
	size_t sl = bs_der_utf8("z\xc3\xa9ro", sv, sizeof sv);
	size_t ol = bs_der_octets("\x01\x02\x03", 3, ov, sizeof ov);
	struct bs_attr attrs[] = {
		{"count", 0, iv, il},
		{"enabled", 0, bv, bl},
		{"label", 0, sv, sl},
		{"blob", 0, ov, ol},
		{"flag", 0, NULL, 0},
	};
	if (bs_entry_create(img, "tpm2", "permall", 24, attrs, 5, "permanent", 9, NULL))
		die("permall");
	struct bs_entry_opts o = {.capacity = 16, .check = "sha256"};
	if (bs_entry_create2(img, "tpm2", "volatilestate", &o, "volatile", 8, NULL))
		die("sha256 entry");
	struct bs_entry_opts raw = {.flags = BS_ENTRY_RAW};
	if (bs_entry_create2(img, "nvram", "raw", &raw, "raw data", 8, NULL))
		die("raw entry");
	if (bs_entry_create(img, "unnamed", NULL, 4, NULL, 0, "u", 1, NULL))
		die("unnamed entry");
	bs_entry *gone, *grown;
	if (bs_entry_create(img, "temp", "deleted", 8, NULL, 0, "secret", 6, &gone) ||
	    bs_entry_delete(img, gone))
		die("deleted entry");
	if (bs_entry_create(img, "grow", "rewritten", 4, NULL, 0, "ab", 2, &grown) ||
	    bs_entry_write(img, grown, "longer than four", 16))
		die("rewritten entry");
	if (bs_entry_write(img, grown, "again", 5))
		die("slot write");
	save(img, be, "rich", 1);
	const uint8_t *p = bs_backend_mem_data(be, len);
	uint8_t *c = malloc(*len);
	if (!c)
		die("out of memory");
	memcpy(c, p, *len);
	bs_close(img);
	return c;
}

/* A crash (CRASH_AFTER, TEAR_AT) during an operation on RICH. */
enum op { OP_GROW, OP_WRITE, OP_CREATE };
static void crashed(const uint8_t *rich_img, size_t len, enum op op, uint64_t crash_after,
		    size_t tear_at, const char *name)
{
	struct bs_fault_plan plan = {.crash_after = crash_after, .tear_at = tear_at};
	struct bs_backend *be;
	bs_image *img;
	if (bs_backend_fault(rich_img, len, &plan, &be))
		die("fault backend");
	if (bs_open_backend(be, "seed", 0, &img))
		die("open rich");
	bs_entry *e;
	if (bs_find(img, "tpm2", "permall", &e))
		die("find");
	static const char big[40] = "a value that outgrows the capacity";
	if (op == OP_GROW)
		bs_entry_write(img, e, big, sizeof big);
	else if (op == OP_WRITE)
		bs_entry_write(img, e, "torn", 4);
	else
		bs_entry_create(img, "late", "append", 8, NULL, 0, "late", 4, NULL);
	save(img, be, name, 0);
	bs_close(img);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	struct bs_backend *be;
	bs_image *img = fresh(&be);
	save(img, be, "empty", 1);
	bs_close(img);

	img = fresh(&be);
	char name[16];
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof name, "e%02d", i);
		if (bs_entry_create(img, "small", name, 8, NULL, 0, name, 3, NULL))
			die("small entry");
	}
	save(img, be, "many", 0);
	bs_close(img);

	size_t len;
	uint8_t *r = rich(&len);
	/* Rewrite: write 1 appends the copy, 2 commits it, 3 deletes the old
	 * one; a crash that loses write 3 leaves both copies. */
	crashed(r, len, OP_GROW, 3, 0, "crash-rewrite");
	crashed(r, len, OP_WRITE, 1, 20, "crash-torn-slot");
	crashed(r, len, OP_CREATE, 1, SIZE_MAX, "crash-append");
	free(r);

	/* fuzz_vtpm_proto: swtpm control messages as QEMU and tpm2-tss send
	 * them (first octet of the input selects the parser). */
	static const uint8_t init[] = {0, 0, 0, 0, 2, 0, 0, 0, 1};
	static const uint8_t loc[] = {0, 0, 0, 0, 5, 3, 0, 0, 0};
	static const uint8_t hash[] = {0, 0, 0, 0, 7, 0, 0, 0, 3, 'a', 'b', 'c'};
	static const uint8_t setst[] = {0, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0xaa, 0xbb};
	static const uint8_t getst[] = {0, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
	static const uint8_t startup[] = {1, 0x80, 1, 0, 0, 0, 12, 0, 0, 1, 0x44, 0, 0};
	put("fuzz_vtpm_proto", "init", init, sizeof init);
	put("fuzz_vtpm_proto", "locality", loc, sizeof loc);
	put("fuzz_vtpm_proto", "hash-data", hash, sizeof hash);
	put("fuzz_vtpm_proto", "set-stateblob", setst, sizeof setst);
	put("fuzz_vtpm_proto", "get-stateblob", getst, sizeof getst);
	put("fuzz_vtpm_proto", "tpm-startup", startup, sizeof startup);
	return 0;
}
