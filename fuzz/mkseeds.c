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

#include <blobstore/blobstore.h>
#include <blobstore/backend.h>
#include "fault.h" /* the tests' backend that injects faults */
#include "fuzz_util.h"

/* What a memory or fault backend holds. */
static const uint8_t *seed_data(const struct bs_backend *be, size_t *len)
{
	const uint8_t *p = bs_backend_mem_data(be, len);
	return p ? p : fault_backend_data(be, len);
}

static const char *outdir;

static void die(const char *what)
{
	fprintf(stderr, "mkseeds: %s: %s\n", what, last_error());
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
	const uint8_t *p = seed_data(be, &len);
	char fn[256];
	snprintf(fn, sizeof fn, "%s.bs", name);
	put("fuzz_image", fn, p, len);
	size_t i = 0;
	for (bs_entry *e = NULL; entries && (e = bs_entry_next(img, e, BS_ITER_LIBRARY)); i++) {
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
	if (bs_image_open_backend(*be, "seed", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img))
		die("create");
	return img;
}

/* The image with one of everything; returns its octets (malloc'ed). */
static uint8_t *rich(size_t *len)
{
	struct bs_backend *be;
	bs_image *img = fresh(&be);
	uint8_t iv[BS_VALUE_MAX_INT], bv[BS_VALUE_MAX_INT], sv[32], ov[16];
	size_t il = 0, bl = 0, sl = 0, ol = 0;
	if (bs_value_encode_int(-300, 0, iv, sizeof iv, &il) ||
	    bs_value_encode_bool(1, 0, bv, sizeof bv, &bl) ||
	    bs_value_encode_str("z\xc3\xa9ro", 0, 0, sv, sizeof sv, &sl) ||
	    bs_value_encode_bytes("\x01\x02\x03", 3, 0, ov, sizeof ov, &ol))
		return NULL;
	struct bs_attr attrs[] = {
		{BS_ATTR_VERSION, "count", 0, iv, il},
		{BS_ATTR_VERSION, "enabled", 0, bv, bl},
		{BS_ATTR_VERSION, "label", 0, sv, sl},
		{BS_ATTR_VERSION, "blob", 0, ov, ol},
		{BS_ATTR_VERSION, "flag", 0, NULL, 0},
	};
	if (bs_entry_create(img, "tpm2", "permall", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 24, .attrs = attrs, .nattrs = 5}, "permanent", 9, NULL))
		die("permall");
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .checksum = BS_CHECKSUM_SHA256};
	if (bs_entry_create(img, "tpm2", "volatilestate", &o, "volatile", 8, NULL))
		die("sha256 entry");
	struct bs_entry_opts raw = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	if (bs_entry_create(img, "nvram", "raw", &raw, "raw data", 8, NULL))
		die("raw entry");
	if (bs_entry_create(img, "unnamed", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 4, .attrs = NULL, .nattrs = 0}, "u", 1, NULL))
		die("unnamed entry");
	bs_entry *gone, *grown;
	if (bs_entry_create(img, "temp", "deleted", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "secret", 6, &gone) ||
	    bs_entry_delete(gone))
		die("deleted entry");
	if (bs_entry_create(img, "grow", "rewritten", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 4, .attrs = NULL, .nattrs = 0}, "ab", 2, &grown) ||
	    bs_entry_write(grown, "longer than four", 16))
		die("rewritten entry");
	if (bs_entry_write(grown, "again", 5))
		die("slot write");
	save(img, be, "rich", 1);
	const uint8_t *p = seed_data(be, len);
	uint8_t *c = malloc(*len);
	if (!c)
		die("out of memory");
	memcpy(c, p, *len);
	bs_image_close(img);
	return c;
}

/* A crash (CRASH_AFTER, TEAR_AT) during an operation on RICH. */
enum op { OP_GROW, OP_WRITE, OP_CREATE };
static void crashed(const uint8_t *rich_img, size_t len, enum op op, uint64_t crash_after,
		    size_t tear_at, const char *name)
{
	struct fault_plan plan = {.crash_after = crash_after, .tear_at = tear_at};
	struct bs_backend *be;
	bs_image *img;
	if (fault_backend_new(rich_img, len, &plan, &be))
		die("fault backend");
	if (bs_image_open_backend(be, "seed", 0, &img))
		die("open rich");
	bs_entry *e;
	if (bs_entry_find(img, "tpm2", "permall", &e))
		die("find");
	static const char big[40] = "a value that outgrows the capacity";
	if (op == OP_GROW)
		bs_entry_write(e, big, sizeof big);
	else if (op == OP_WRITE)
		bs_entry_write(e, "torn", 4);
	else
		bs_entry_create(img, "late", "append", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "late", 4, NULL);
	save(img, be, name, 0);
	bs_image_close(img);
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
	bs_image_close(img);

	img = fresh(&be);
	char name[16];
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof name, "e%02d", i);
		if (bs_entry_create(img, "small", name, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, name, 3, NULL))
			die("small entry");
	}
	save(img, be, "many", 0);
	bs_image_close(img);

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
