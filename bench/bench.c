/* bench.c - the performance claims, measured side by side in one run.
 *
 *   bench [all|open|write|rss]    prints a table, writes CSV (BENCH_CSV or
 *                                 build/bench/results.csv)
 *
 * open:  bs_image_open + listing of images with 1k/10k/100k/1M small named
 *        entries (read-only and read-write) against libtasn1 decoding the
 *        same directory entry by entry, decoding the whole Image in one call
 *        (<= 10k entries: super-linear), and a directory of one file per
 *        blob (swtpm's dir backend: readdir, open/fstat/read/close each);
 *        plus what open reads from storage, through a counting backend.
 * write: a durable replace of N octets with bs_entry_write against the
 *        limit (one pwrite + fdatasync of as many octets, in the image's
 *        file past its end), against temp file + fsync + rename + directory fsync (what
 *        swtpm does with fsync on) and against temp file + rename.
 * rss:   peak RSS (VmHWM) of a fresh process that opens the 100k (and 1M)
 *        image.
 *
 * bench_crypt.c, bench_vtpm.c and bench_backends.c append to the same CSV;
 * plot.sh draws it (make bench runs them all).
 *
 * The machines this runs on are shared and noisy, so every comparison runs
 * its candidates interleaved, one repetition of each in turn, and reports
 * medians and ratios of medians, in an order that changes from one
 * repetition to the next (permute()).  Environment: BENCH_DIR (a directory
 * on a real disk; default build/bench; the directories of files are kept
 * there between runs), BENCH_QUICK=1 (fewer repetitions and sizes, for a
 * smoke run), BENCH_1M=0/1 (skip or force the 1M image and directory). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libtasn1.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <blobstore/blobstore.h>
#include <blobstore/backend.h>
#include <blobstore/nbd.h>

#include "bench_util.h"
#include "storage/storage.h" /* the backend table: the counting wrapper forwards to it */

extern const asn1_static_node bs__asn1_tab[];

static const char *dir = "build/bench";
static bool quick;
static FILE *csv;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void record(const char *bench, const char *cas, const char *metric, double value,
		   const char *unit)
{
	fprintf(csv, "%s,%s,%s,%.6g,%s\n", bench, cas, metric, value, unit);
	fflush(csv);
}

static char *path_in_dir(const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (!p)
		die("out of memory");
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0)
			die("%s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		die("%s: %s", path, strerror(errno));
	uint8_t *b = malloc((size_t)st.st_size + 1);
	if (!b)
		die("out of memory");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0)
			die("%s: short read", path);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return b;
}

/* ---- images with many small entries ------------------------------------ */

#define SMALL_DATA 48

/* Builds an image of N named entries of SMALL_DATA octets in memory (no
 * syncs) and writes it to PATH.  Returns the build time in seconds. */
static double build_image(size_t n, const char *path)
{
	double t0 = now_us();
	struct bs_backend *be;
	bs_image *img;
	if (bs_backend_mem(NULL, 0, &be))
		die("memory backend: %s", last_error());
	if (bs_image_open_backend(be, "bench", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img))
		die("create: %s", last_error());
	uint8_t data[SMALL_DATA];
	char name[32];
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof data; k++)
			data[k] = (uint8_t)(i * 31 + k);
		snprintf(name, sizeof name, "entry-%08zu", i);
		if (bs_entry_create(img, "bench.small", name, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = sizeof data, .attrs = NULL, .nattrs = 0}, data, sizeof data, NULL))
			die("entry %zu: %s", i, last_error());
	}
	size_t len;
	const uint8_t *p = bs_backend_mem_data(be, &len);
	write_file(path, p, len);
	bs_image_close(img);
	return (now_us() - t0) / 1e6;
}

/* A backend that forwards to the file backend and counts what is read. */
struct counting {
	struct bs_backend *inner;
	uint64_t *reads, *bytes;
};

static int c_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct counting *c = ctx;
	(*c->reads)++;
	*c->bytes += len;
	return c->inner->ops->read_at(c->inner->ctx, buf, len, off);
}
static int c_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct counting *c = ctx;
	return c->inner->ops->write_at(c->inner->ctx, buf, len, off);
}
static int c_sync(void *ctx)
{
	struct counting *c = ctx;
	return c->inner->ops->sync(c->inner->ctx);
}
static int c_size(void *ctx, uint64_t *out)
{
	struct counting *c = ctx;
	return c->inner->ops->size(c->inner->ctx, out);
}
/* The file backend grows: without resize the image would take this for
 * fixed-size storage with a recovery area at its end. */
static int c_resize(void *ctx, uint64_t size)
{
	struct counting *c = ctx;
	return c->inner->ops->resize(c->inner->ctx, size);
}
static int c_lock(void *ctx, int how)
{
	struct counting *c = ctx;
	return c->inner->ops->lock ? c->inner->ops->lock(c->inner->ctx, how) : BS_OK;
}
static void c_close(void *ctx)
{
	struct counting *c = ctx;
	bs_backend_free(c->inner);
	free(c);
}
static const struct bs_backend_ops counting_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = c_read,
	.write_at = c_write,
	.sync = c_sync,
	.size = c_size,
	.resize = c_resize,
	.lock = c_lock,
	.close = c_close,
};

static void count_open(const char *path, unsigned flags, uint64_t *reads, uint64_t *bytes)
{
	struct counting *c = calloc(1, sizeof *c);
	if (!c || bs_backend_file(path, flags, &c->inner))
		die("%s: %s", path, last_error());
	*reads = *bytes = 0;
	c->reads = reads;
	c->bytes = bytes;
	struct bs_backend *be;
	bs_image *img;
	if (bs_backend_new(&counting_ops, c, 1, &be) || bs_image_open_backend(be, path, flags, &img))
		die("%s: %s", path, last_error());
	bs_image_close(img);
}

/* ---- open: ours against libtasn1 and a directory of files -------------- */

static asn1_node defs;

static double time_ours(const char *path, unsigned flags, size_t expect)
{
	bs_image *img;
	double t0 = now_us();
	if (bs_image_open(path, flags, &img))
		die("%s: %s", path, last_error());
	/* listing is part of the job: walk every entry and its name */
	size_t n = 0, namelen = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY)); n++) {
		const char *name = bs_entry_name(e);
		namelen += name ? strlen(name) : 0;
	}
	double t = now_us() - t0;
	if (n != expect + 1 || namelen == 0)
		die("%s: %zu entries, expected %zu", path, n, expect + 1);
	bs_image_close(img);
	return t;
}

/* Reads the file, walks the outer SET's elements with libtasn1's tag and
 * length primitives and decodes each Entry with asn1_der_decoding2, the way
 * a loader built on libtasn1 alone would have to. */
static double time_tasn1_entries(const char *path, size_t expect)
{
	double t0 = now_us();
	size_t len;
	uint8_t *b = read_file(path, &len);
	size_t pos = 2, n = 0;
	char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE];
	while (pos + 2 <= len && b[pos] != 0) {
		unsigned char cls;
		int taglen, lenlen;
		unsigned long tag;
		int avail = len - pos > INT32_MAX ? INT32_MAX : (int)(len - pos);
		if (asn1_get_tag_der(b + pos, avail, &cls, &taglen, &tag) != ASN1_SUCCESS)
			die("%s: bad tag at %zu", path, pos);
		long l = asn1_get_length_der(b + pos + taglen, avail - taglen, &lenlen);
		if (l < 0)
			die("%s: bad length at %zu", path, pos);
		size_t el = (size_t)taglen + (size_t)lenlen + (size_t)l;
		if (tag == 16) {
			asn1_node e = NULL;
			if (asn1_create_element(defs, "Blobstore.Entry", &e) != ASN1_SUCCESS)
				die("asn1_create_element");
			int dl = (int)el;
			if (asn1_der_decoding2(&e, b + pos, &dl, ASN1_DECODE_FLAG_STRICT_DER,
					       err) != ASN1_SUCCESS)
				die("%s: libtasn1 at %zu: %s", path, pos, err);
			asn1_delete_structure(&e);
			n++;
		}
		pos += el;
	}
	free(b);
	double t = now_us() - t0;
	if (n != expect + 1)
		die("%s: libtasn1 walk found %zu entries", path, n);
	return t;
}

static double time_tasn1_whole(const char *path)
{
	double t0 = now_us();
	size_t len;
	uint8_t *b = read_file(path, &len);
	char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE];
	asn1_node e = NULL;
	if (asn1_create_element(defs, "Blobstore.Image", &e) != ASN1_SUCCESS)
		die("asn1_create_element");
	int dl = (int)len;
	int rc = asn1_der_decoding2(&e, b, &dl, 0, err);
	if (rc != ASN1_SUCCESS)
		die("%s: libtasn1 whole image: %s %s", path, asn1_strerror(rc), err);
	asn1_delete_structure(&e);
	free(b);
	return now_us() - t0;
}

static double time_read_only(const char *path)
{
	double t0 = now_us();
	size_t len;
	free(read_file(path, &len));
	return now_us() - t0;
}

/* One file per blob, as swtpm's dir backend keeps its state: a directory of
 * N files of SMALL_DATA octets, made once per size (a stamp file records a
 * complete one, so later runs reuse it). */
static char *build_dir(size_t n, double *secs)
{
	char name[64];
	snprintf(name, sizeof name, "files-%zu", n);
	char *path = path_in_dir(name);
	char stamp[4200];
	snprintf(stamp, sizeof stamp, "%s.complete", path);
	*secs = 0;
	if (access(stamp, F_OK) == 0)
		return path;
	double t0 = now_us();
	if (mkdir(path, 0700) && errno != EEXIST)
		die("%s: %s", path, strerror(errno));
	int dfd = open(path, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		die("%s: %s", path, strerror(errno));
	uint8_t data[SMALL_DATA];
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof data; k++)
			data[k] = (uint8_t)(i * 31 + k);
		snprintf(name, sizeof name, "entry-%08zu", i);
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, data, sizeof data) != (ssize_t)sizeof data)
			die("%s/%s: %s", path, name, strerror(errno));
		close(fd);
	}
	close(dfd);
	sync();
	write_file(stamp, "", 0);
	*secs = (now_us() - t0) / 1e6;
	return path;
}

/* List the directory and load every file the way swtpm loads a blob:
 * open, fstat for the size, read, close. */
static double time_dir(const char *path, size_t expect)
{
	double t0 = now_us();
	DIR *d = opendir(path);
	if (!d)
		die("%s: %s", path, strerror(errno));
	int dfd = dirfd(d);
	size_t n = 0;
	uint8_t buf[4096];
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int fd = openat(dfd, de->d_name, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) || st.st_size > (off_t)sizeof buf ||
		    read(fd, buf, (size_t)st.st_size) != (ssize_t)st.st_size)
			die("%s/%s: %s", path, de->d_name, strerror(errno));
		close(fd);
		n++;
	}
	closedir(d);
	double t = now_us() - t0;
	if (n != expect)
		die("%s: %zu files, expected %zu", path, n, expect);
	return t;
}

static bool want_1m(void)
{
	const char *force = getenv("BENCH_1M");
	if (force && !strcmp(force, "0"))
		return false;
	return !quick || (force && !strcmp(force, "1"));
}

enum { C_RO, C_RW, C_TE, C_TW, C_RD, C_DIR, NCAND };
static const char *const cand_metric[NCAND] = {
	"ours_ro", "ours_rw", "tasn1_per_entry", "tasn1_whole_image", "read_file_only", "dir_of_files",
};

static void bench_open(void)
{
	char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE];
	if (asn1_array2tree(bs__asn1_tab, &defs, err) != ASN1_SUCCESS)
		die("asn1_array2tree: %s", err);
	static const size_t sizes[] = {1000, 10000, 100000, 1000000};
	printf("\n== open and list: %d-octet named entries, warm page cache; medians of runs\n"
	       "   interleaved in a changing order.  ours = bs_image_open + walk every entry's name;\n"
	       "   tasn1/ent = libtasn1 per entry; tasn1 all = one call (super-linear: <= 10k);\n"
	       "   files = a directory of one file per blob (swtpm dir backend): readdir +\n"
	       "   open/fstat/read/close each\n", SMALL_DATA);
	printf("%8s %8s | %9s %9s %9s %9s %9s %9s | %6s %6s | %s\n", "entries", "image", "ours ro",
	       "ours rw", "tasn1/ent", "tasn1 all", "files", "read img", "ro/ent", "ro/fil",
	       "ns/entry: ours ro, tasn1/ent, files");
	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
		size_t n = sizes[si];
		if (quick && n > 10000)
			break;
		if (n >= 1000000 && !want_1m())
			break;
		char fname[64];
		snprintf(fname, sizeof fname, "open-%zu.bs", n);
		char *path = path_in_dir(fname);
		double build = build_image(n, path), dbuild;
		char *dpath = build_dir(n, &dbuild);
		struct stat st;
		stat(path, &st);
		bool whole = n <= (quick ? 1000 : 10000);
		size_t reps = n <= 1000 ? 31 : n <= 10000 ? 15 : n <= 100000 ? 7 : 3;
		if (quick)
			reps = 3;
		size_t whole_reps = n <= 1000 ? reps : 3;
		double *t[NCAND];
		for (size_t c = 0; c < NCAND; c++)
			if (!(t[c] = calloc(reps, sizeof **t)))
				die("out of memory");
		/* one untimed round to warm the page cache and the allocator */
		time_ours(path, BS_OPEN_RDONLY, n);
		time_tasn1_entries(path, n);
		/* A directory of a million files takes about a minute per pass here
		 * (its inodes and pages do not stay cached): one pass only. */
		size_t dir_reps = n >= 1000000 ? 1 : reps;
		if (dir_reps > 1)
			time_dir(dpath, n);
		size_t nw = 0, nd = 0;
		for (size_t r = 0; r < reps; r++) {
			size_t order[NCAND];
			permute(r, NCAND, order);
			for (size_t k = 0; k < NCAND; k++) {
				switch (order[k]) {
				case C_RO: t[C_RO][r] = time_ours(path, BS_OPEN_RDONLY, n); break;
				case C_RW: t[C_RW][r] = time_ours(path, 0, n); break;
				case C_TE: t[C_TE][r] = time_tasn1_entries(path, n); break;
				case C_TW:
					if (whole && r < whole_reps)
						t[C_TW][nw++] = time_tasn1_whole(path);
					break;
				case C_RD: t[C_RD][r] = time_read_only(path); break;
				case C_DIR:
					if (r < dir_reps)
						t[C_DIR][nd++] = time_dir(dpath, n);
					break;
				}
			}
		}
		double m[NCAND];
		for (size_t c = 0; c < NCAND; c++)
			m[c] = c == C_TW ? (nw ? median(t[c], nw) : 0) :
			       c == C_DIR ? median(t[c], nd) : median(t[c], reps);
		char twbuf[32];
		if (whole)
			snprintf(twbuf, sizeof twbuf, "%.1f ms", m[C_TW] / 1e3);
		else
			snprintf(twbuf, sizeof twbuf, "skipped");
		printf("%8zu %6.1fMB | %6.1f ms %6.1f ms %6.1f ms %9s %6.1f ms %6.1f ms | %6.3f %6.3f | "
		       "%.0f, %.0f, %.0f\n",
		       n, (double)st.st_size / 1e6, m[C_RO] / 1e3, m[C_RW] / 1e3, m[C_TE] / 1e3,
		       twbuf, m[C_DIR] / 1e3, m[C_RD] / 1e3, m[C_RO] / m[C_TE], m[C_RO] / m[C_DIR],
		       m[C_RO] * 1e3 / (double)n, m[C_TE] * 1e3 / (double)n,
		       m[C_DIR] * 1e3 / (double)n);
		char cas[32];
		snprintf(cas, sizeof cas, "%zu entries", n);
		record("open", cas, "entries", (double)n, "entries");
		record("open", cas, "image_size", (double)st.st_size, "octets");
		record("open", cas, "build_time", build, "s");
		if (dbuild > 0)
			record("open", cas, "dir_build_time", dbuild, "s");
		for (size_t c = 0; c < NCAND; c++) {
			if (c == C_TW && !whole)
				continue;
			char metric[64];
			record("open", cas, cand_metric[c], m[c], "us");
			snprintf(metric, sizeof metric, "%s_ns_per_entry", cand_metric[c]);
			record("open", cas, metric, m[c] * 1e3 / (double)n, "ns");
		}
		record("open", cas, "ratio_ours_ro_vs_tasn1_per_entry", m[C_RO] / m[C_TE], "x");
		record("open", cas, "ratio_ours_rw_vs_tasn1_per_entry", m[C_RW] / m[C_TE], "x");
		record("open", cas, "ratio_ours_ro_vs_dir_of_files", m[C_RO] / m[C_DIR], "x");
		if (whole)
			record("open", cas, "ratio_ours_ro_vs_tasn1_whole_image", m[C_RO] / m[C_TW],
			       "x");
		uint64_t reads, bytes, wreads, wbytes;
		count_open(path, BS_OPEN_RDONLY, &reads, &bytes);
		count_open(path, 0, &wreads, &wbytes);
		printf("%8s storage reads: ro %llu calls %llu octets (%.3f x image), "
		       "rw %llu calls %llu octets (%.3f x image)\n", "",
		       (unsigned long long)reads, (unsigned long long)bytes,
		       (double)bytes / (double)st.st_size, (unsigned long long)wreads,
		       (unsigned long long)wbytes, (double)wbytes / (double)st.st_size);
		record("open", cas, "ro_read_calls", (double)reads, "calls");
		record("open", cas, "ro_read_bytes", (double)bytes, "octets");
		record("open", cas, "ro_read_bytes_per_image_byte", (double)bytes / (double)st.st_size,
		       "x");
		record("open", cas, "rw_read_calls", (double)wreads, "calls");
		record("open", cas, "rw_read_bytes", (double)wbytes, "octets");
		for (size_t c = 0; c < NCAND; c++)
			free(t[c]);
		/* the big images are kept for the RSS part, which removes them */
		if (n < 100000)
			unlink(path);
		free(path);
		free(dpath);
	}
	/* Large entries: open should skip their data by length. */
	char *path = path_in_dir("open-large.bs");
	struct bs_backend *be;
	bs_image *img;
	if (bs_backend_mem(NULL, 0, &be) ||
	    bs_image_open_backend(be, "bench", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img))
		die("create: %s", last_error());
	size_t big = 1024 * 1024;
	uint8_t *data = calloc(1, big);
	if (!data)
		die("out of memory");
	for (int i = 0; i < 16; i++) {
		char name[16];
		snprintf(name, sizeof name, "big-%02d", i);
		if (bs_entry_create(img, "bench.large", name, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = big, .attrs = NULL, .nattrs = 0}, data, big, NULL))
			die("large entry: %s", last_error());
	}
	size_t ilen;
	const uint8_t *ip = bs_backend_mem_data(be, &ilen);
	write_file(path, ip, ilen);
	bs_image_close(img);
	free(data);
	uint64_t reads, bytes;
	count_open(path, BS_OPEN_RDONLY, &reads, &bytes);
	double lt[9];
	for (int r = 0; r < 9; r++)
		lt[r] = time_ours(path, BS_OPEN_RDONLY, 16);
	double mlt = median(lt, 9);
	printf("%8d %7.1fMB | %7.2f ms  (1 MiB entries) storage reads: %llu calls %llu octets "
	       "(%.3f x image)\n", 16, (double)ilen / 1e6, mlt / 1e3, (unsigned long long)reads,
	       (unsigned long long)bytes, (double)bytes / (double)ilen);
	record("open", "16 large entries", "image_size", (double)ilen, "octets");
	record("open", "16 large entries", "ours_ro", mlt, "us");
	record("open", "16 large entries", "ro_read_calls", (double)reads, "calls");
	record("open", "16 large entries", "ro_read_bytes", (double)bytes, "octets");
	record("open", "16 large entries", "ro_read_bytes_per_image_byte",
	       (double)bytes / (double)ilen, "x");
	unlink(path);
	free(path);
	asn1_delete_structure(&defs);
}

/* ---- durable replace --------------------------------------------------- */

static void full_write(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0)
			die("pwrite: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
		off += n;
	}
}

static void fsync_path_dir(void)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || fsync(dfd))
		die("%s: fsync: %s", dir, strerror(errno));
	close(dfd);
}

/* temp file, write, [fsync], rename, [directory fsync] */
static double time_rename(const char *tmp, const char *dst, const void *buf, size_t len, bool sync)
{
	double t0 = now_us();
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("%s: %s", tmp, strerror(errno));
	full_write(fd, buf, len, 0);
	if (sync && fsync(fd))
		die("fsync: %s", strerror(errno));
	close(fd);
	if (rename(tmp, dst))
		die("rename: %s", strerror(errno));
	if (sync)
		fsync_path_dir();
	return now_us() - t0;
}

static void bench_write(void)
{
	static const size_t sizes[] = {1024, 8192, 75 * 1024, 1024 * 1024};
	struct statfs sf;
	const char *fs = "?";
	if (statfs(dir, &sf) == 0)
		fs = sf.f_type == 0x01021994 ? "tmpfs (not a disk: sync is free!)" :
		     sf.f_type == 0xEF53 ? "ext2/3/4" : sf.f_type == 0x58465342 ? "xfs" :
		     sf.f_type == 0x9123683E ? "btrfs" : sf.f_type == 0x794c7630 ? "overlayfs" :
		     "other";
	printf("\n== durable replace in %s (%s); medians of interleaved runs;\n   ours/limit = median of the per-round ratios (each pair a few operations apart)\n", dir, fs);
	printf("%9s | %10s %10s %12s %12s | %12s %s\n", "size", "ours", "limit", "tmp+fsync+mv",
	       "tmp+mv", "ours/limit", "(goal <= 1.15)");
	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
		size_t size = sizes[si];
		if (quick && size > 8192)
			break;
		size_t reps = size >= 1024 * 1024 ? 61 : 99;
		if (quick)
			reps = 5;
		uint8_t *buf = malloc(2 * (size + 64));
		if (!buf)
			die("out of memory");
		for (size_t k = 0; k < 2 * (size + 64); k++)
			buf[k] = (uint8_t)(k * 7);
		char name[64];
		snprintf(name, sizeof name, "write-%zu.bs", size);
		char *ipath = path_in_dir(name);
		snprintf(name, sizeof name, "state-%zu", size);
		char *spath = path_in_dir(name);
		snprintf(name, sizeof name, "state-%zu.tmp", size);
		char *tpath = path_in_dir(name);
		unlink(ipath);
		bs_image *img;
		bs_entry *e;
		if (bs_image_open(ipath, BS_OPEN_CREATE, &img))
			die("%s: %s", ipath, last_error());
		if (bs_entry_create(img, "bench.state", "permall", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = size, .attrs = NULL, .nattrs = 0}, buf, size, &e))
			die("%s: %s", ipath, last_error());
		/* The limit writes what a slot write writes (header and data) into
		 * the same file, past the image's end (octets there are never read
		 * as the image), alternating halves as the slots do: same inode,
		 * same filesystem history.  A separate file measured 1.3x slower
		 * or faster than the image file depending on which operation ran
		 * before it (the renames' journal commits), while ours and a raw
		 * pwrite on the image's own descriptor always measured equal. */
		const size_t slot_hdr = 16;
		size_t lim_len = size + slot_hdr;
		int lfd = open(ipath, O_RDWR);
		struct stat ist;
		if (lfd < 0 || fstat(lfd, &ist))
			die("%s: %s", ipath, strerror(errno));
		off_t lim_off = (ist.st_size + 8191) / 4096 * 4096;
		full_write(lfd, buf, 2 * lim_len, lim_off);
		if (fsync(lfd))
			die("fsync: %s", strerror(errno));
		time_rename(tpath, spath, buf, size, true);
		double *ours = calloc(reps, sizeof *ours), *lim = calloc(reps, sizeof *lim);
		double *rs = calloc(reps, sizeof *rs), *rn = calloc(reps, sizeof *rn);
		if (!ours || !lim || !rs || !rn)
			die("out of memory");
		for (size_t r = 0; r < reps + 1; r++) {
			buf[0] = (uint8_t)r; /* every write changes the data */
			double t[4];
			/* Vary the order over all 24 permutations: with a cyclic
			 * order one method always follows the renames, and pays for
			 * the filesystem work they leave behind. */
			static const uint8_t perms[24][4] = {
				{0, 1, 2, 3}, {0, 1, 3, 2}, {0, 2, 1, 3}, {0, 2, 3, 1}, {0, 3, 1, 2},
				{0, 3, 2, 1}, {1, 0, 2, 3}, {1, 0, 3, 2}, {1, 2, 0, 3}, {1, 2, 3, 0},
				{1, 3, 0, 2}, {1, 3, 2, 0}, {2, 0, 1, 3}, {2, 0, 3, 1}, {2, 1, 0, 3},
				{2, 1, 3, 0}, {2, 3, 0, 1}, {2, 3, 1, 0}, {3, 0, 1, 2}, {3, 0, 2, 1},
				{3, 1, 0, 2}, {3, 1, 2, 0}, {3, 2, 0, 1}, {3, 2, 1, 0}};
			for (size_t k = 0; k < 4; k++) {
				size_t m = perms[(r * 7) % 24][k];
				double t0 = now_us();
				if (m == 0) {
					if (bs_entry_write(e, buf, size))
						die("write: %s", last_error());
					t[m] = now_us() - t0;
				} else if (m == 1) {
					/* alternate halves, as the two slots do */
					full_write(lfd, buf, lim_len,
						   lim_off + (off_t)((r % 2) * lim_len));
					if (fdatasync(lfd))
						die("fdatasync: %s", strerror(errno));
					t[m] = now_us() - t0;
				} else {
					t[m] = time_rename(tpath, spath, buf, size, m == 2);
					/* The unsynced rename leaves journal work that the
					 * next sync of any file on this filesystem pays
					 * for; with a cyclic order that is always the same
					 * method.  Settle it outside the timings. */
					if (m == 3)
						syncfs(lfd);
				}
			}
			if (r == 0)
				continue; /* warm-up */
			ours[r - 1] = t[0];
			lim[r - 1] = t[1];
			rs[r - 1] = t[2];
			rn[r - 1] = t[3];
		}
		/* Each write against the limit's write of the same round. */
		double ratio = median_ratio(ours, lim, reps);
		if (ratio == 0)
			die("out of memory");
		double mo = median(ours, reps), ml = median(lim, reps);
		double mrs = median(rs, reps), mrn = median(rn, reps);
		printf("%7zuKi | %7.3f ms %7.3f ms %9.3f ms %9.3f ms | %12.3f %s\n", size / 1024,
		       mo / 1e3, ml / 1e3, mrs / 1e3, mrn / 1e3, ratio,
		       ratio <= 1.15 ? "met" : "MISSED");
		char cas[32];
		snprintf(cas, sizeof cas, "%zu octets", size);
		record("write", cas, "ours_bs_entry_write", mo, "us");
		record("write", cas, "limit_pwrite_fdatasync", ml, "us");
		record("write", cas, "tmp_fsync_rename_dirfsync", mrs, "us");
		record("write", cas, "tmp_rename_nosync", mrn, "us");
		record("write", cas, "ratio_ours_vs_limit", ratio, "x");
		record("write", cas, "ratio_tmp_fsync_rename_vs_ours", mrs / mo, "x");
		bs_image_close(img);
		close(lfd);
		unlink(ipath);
		unlink(spath);
		free(ours);
		free(lim);
		free(rs);
		free(rn);
		free(ipath);
		free(spath);
		free(tpath);
		free(buf);
	}
}

/* ---- peak RSS ---------------------------------------------------------- */

/* Peak RSS of this process so far (VmHWM), in KiB.  Not ru_maxrss: that
 * also counts the pages a forked child shared with its parent before exec. */
static long vm_hwm(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* Runs this program again as "rss-child PATH": a fresh process that opens
 * the image.  *BASE gets its peak RSS before the open, the result after. */
static long child_rss(const char *self, const char *path, long *base)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "'%s' rss-child '%s'", self, path);
	FILE *p = popen(cmd, "r");
	long before = -1, after = -1;
	if (!p || fscanf(p, "%ld %ld", &before, &after) != 2 || pclose(p) != 0 || after < 0)
		die("rss child for %s failed", path);
	*base = before;
	return after;
}

static int rss_child(const char *path)
{
	long before = vm_hwm();
	bs_image *img;
	if (bs_image_open(path, BS_OPEN_RDONLY, &img)) {
		fprintf(stderr, "%s: %s\n", path, last_error());
		return 1;
	}
	long after = vm_hwm();
	bs_image_close(img);
	printf("%ld %ld\n", before, after);
	return 0;
}

static void bench_rss(const char *self)
{
	printf("\n== peak RSS (VmHWM) of a fresh process that opens the image read-only\n");
	long base;
	printf("%9s | %9s %11s %10s %12s %10s\n", "entries", "image", "peak RSS", "over base",
	       "per entry", "build");
	size_t sizes[2] = {100000, 1000000};
	for (int i = 0; i < 2; i++) {
		size_t n = sizes[i];
		if (quick) {
			if (i > 0)
				break;
			n /= 10;
		}
		if (n >= 1000000 && !want_1m())
			break;
		/* the open part leaves its 100k and 1M images for this one */
		char fname[64];
		snprintf(fname, sizeof fname, "open-%zu.bs", n);
		char *path = path_in_dir(fname);
		double build = 0;
		if (access(path, F_OK))
			build = build_image(n, path);
		struct stat st;
		stat(path, &st);
		long rss = child_rss(self, path, &base);
		long base2, rss2 = child_rss(self, path, &base2);
		if (rss2 - base2 < rss - base) {
			rss = rss2;
			base = base2;
		}
		printf("%9zu | %7.1fMB %8ld KiB %6ld KiB %8.0f B %8.1f s\n", n,
		       (double)st.st_size / 1e6, rss, rss - base,
		       (double)(rss - base) * 1024 / (double)n, build);
		char cas[32];
		snprintf(cas, sizeof cas, "%zu entries", n);
		record("rss", cas, "image_size", (double)st.st_size, "octets");
		record("rss", cas, "peak_rss", (double)rss, "KiB");
		record("rss", cas, "peak_rss_before_open", (double)base, "KiB");
		record("rss", cas, "peak_rss_over_baseline", (double)(rss - base), "KiB");
		record("rss", cas, "bytes_per_entry", (double)(rss - base) * 1024 / (double)n, "B");
		record("rss", cas, "build_time", build, "s");
		unlink(path);
		free(path);
	}
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	setvbuf(stdout, NULL, _IOLBF, 0); /* rows appear as they are measured */
	if (!strcmp(what, "rss-child"))
		return argc > 2 ? rss_child(argv[2]) : 2;
	if (getenv("BENCH_DIR"))
		dir = getenv("BENCH_DIR");
	quick = getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0");
	mkdir(dir, 0700);
	const char *csvp = getenv("BENCH_CSV");
	char *def = path_in_dir("results.csv");
	csv = fopen(csvp ? csvp : def, "w");
	if (!csv)
		die("%s: %s", csvp ? csvp : def, strerror(errno));
	fprintf(csv, "bench,case,metric,value,unit\n");
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[sl] = 0;
	bool all = !strcmp(what, "all");
	if (!all && strcmp(what, "open") && strcmp(what, "write") && strcmp(what, "rss"))
		die("usage: bench [all|open|write|rss]");
	if (all || !strcmp(what, "open"))
		bench_open();
	if (all || !strcmp(what, "write"))
		bench_write();
	if (all || !strcmp(what, "rss"))
		bench_rss(self);
	printf("\nCSV: %s\n", csvp ? csvp : def);
	fclose(csv);
	free(def);
	return 0;
}
