/* bench_rbd.c - images on Ceph RBD against raw librbd, side by side in one
 * run, on the cluster of BENCH_RBD_CONF (make bench starts a throwaway one):
 *
 *   replace  a durable replace of a 1.2 KiB entry (bs_entry_write: one slot
 *            write and rbd_flush) against the limit: rbd_write of the same
 *            octets at the same offset of another RBD image, then rbd_flush
 *            (the replace's own write is recorded through a wrapper around
 *            the backend, so the limit writes exactly what it wrote)
 *   open     bs_image_open and close of a vTPM's image (permall and
 *            volatilestate), read-write (with the lock) and read-only,
 *            against a raw connect, rbd_open, rbd_close and shutdown
 *
 * Each of ROUNDS rounds runs a batch of each candidate in an order that
 * changes from round to round; the goal compares per-round medians
 * (median_ratio), so that the cluster's drift over the run stays out of it.
 * Environment: BENCH_RBD_CONF (required; without it the program says so
 * and exits 0), BENCH_QUICK=1, BENCH_CSV (append rows). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/features.h>
#include <rbd/librbd.h>

#include <blobstore/blobstore.h>
#include <blobstore/rbd.h>

#include "bench_util.h"
#include "storage/storage.h" /* the backend table, to record the slot write */

#define DATA_LEN 1200u
#define GOAL 1.15

static const char *conf;

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_rbd: %s: %s\n", what, rc < 0 ? strerror(-rc) : last_error());
	exit(1);
}

/* ---- a wrapper that remembers the last write ---------------------------- */

struct rec {
	struct bs_backend *inner;
	uint64_t off;
	size_t len;
};

static int r_read(void *c, void *b, size_t l, uint64_t o)
{
	struct rec *r = c;
	return r->inner->ops->read_at(r->inner->ctx, b, l, o);
}
static int r_write(void *c, const void *b, size_t l, uint64_t o)
{
	struct rec *r = c;
	r->off = o;
	r->len = l;
	return r->inner->ops->write_at(r->inner->ctx, b, l, o);
}
static int r_sync(void *c)
{
	struct rec *r = c;
	return r->inner->ops->sync(r->inner->ctx);
}
static int r_size(void *c, uint64_t *o)
{
	struct rec *r = c;
	return r->inner->ops->size(r->inner->ctx, o);
}
static int r_reserve(void *c, uint64_t t)
{
	struct rec *r = c;
	return r->inner->ops->reserve(r->inner->ctx, t);
}
static int r_lock(void *c, int how)
{
	struct rec *r = c;
	return r->inner->ops->lock(r->inner->ctx, how);
}
static void r_close(void *c)
{
	struct rec *r = c;
	bs_backend_free(r->inner);
}
static const struct bs_backend_ops rec_ops = {
	.version = BS_BACKEND_OPS_VERSION, .read_at = r_read, .write_at = r_write,
	.sync = r_sync, .size = r_size, .reserve = r_reserve, .lock = r_lock, .close = r_close,
};

/* ---- raw librbd ------------------------------------------------------------ */

struct raw {
	rados_t cl;
	rados_ioctx_t io;
	rbd_image_t img;
};

static void raw_open(struct raw *x, const char *name, bool create, bool lock)
{
	int rc;
	if ((rc = rados_create(&x->cl, NULL)) || (rc = rados_conf_read_file(x->cl, conf)) ||
	    (rc = rados_connect(x->cl)) || (rc = rados_ioctx_create(x->cl, "rbd", &x->io)))
		die("connect", rc);
	if (create) {
		rbd_image_options_t o;
		rbd_image_options_create(&o);
		rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES,
					     RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK);
		rc = rbd_create4(x->io, name, 1 << 20, o);
		rbd_image_options_destroy(o);
		if (rc)
			die("rbd_create4", rc);
	}
	if ((rc = rbd_open(x->io, name, &x->img, NULL)))
		die("rbd_open", rc);
	if (lock && (rc = rbd_lock_acquire(x->img, RBD_LOCK_MODE_EXCLUSIVE)))
		die("rbd_lock_acquire", rc);
}

static void raw_close(struct raw *x, const char *remove)
{
	rbd_close(x->img);
	if (remove)
		rbd_remove(x->io, remove);
	rados_ioctx_destroy(x->io);
	rados_shutdown(x->cl);
}

/* ---- the benchmark ------------------------------------------------------------------ */

static void csv_row(FILE *csv, const char *what, const char *metric, double v, const char *unit)
{
	if (csv)
		fprintf(csv, "rbd,%s,%s,%.6g,%s\n", what, metric, v, unit);
}

int main(void)
{
	const char *c = getenv("BENCH_RBD_CONF");
	if (!c || !*c) {
		printf("bench_rbd: BENCH_RBD_CONF not set (make bench starts a cluster): skipped\n");
		return 0;
	}
	conf = c;
	bs_rbd_register();
	bool quick = getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0");
	size_t rounds = quick ? 3 : 15, batch = quick ? 10 : 40;
	FILE *csv = NULL;
	const char *cp = getenv("BENCH_CSV");
	if (cp && !(csv = fopen(cp, "a")))
		die(cp, -errno);
	long pid = (long)getpid();
	char name[64], raw_name[64], uri[1200];
	snprintf(name, sizeof name, "bench-rbd-%ld", pid);
	snprintf(raw_name, sizeof raw_name, "bench-raw-%ld", pid);
	snprintf(uri, sizeof uri, "rbd://rbd/%s?conf=%s&size=1M", name, conf);

	/* The image, with a vTPM's two entries, opened through the recorder. */
	struct rec *rec = calloc(1, sizeof *rec);
	struct bs_backend *be;
	bs_image *im;
	int rc;
	if (!rec)
		return 1;
	if ((rc = bs_backend_open(uri, BS_OPEN_CREATE, &rec->inner)))
		die("open the RBD image", rc);
	if ((rc = bs_backend_new(&rec_ops, rec, 1, &be)) ||
	    (rc = bs_image_open_backend(be, uri, BS_OPEN_CREATE, &im)))
		die("format", rc);
	uint8_t data[DATA_LEN], vol[10000];
	memset(data, 0x5a, sizeof data);
	memset(vol, 0x33, sizeof vol);
	bs_entry *e;
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 8192};
	if ((rc = bs_entry_create(im, "tpm2.libtpms", "permall", &o, data, sizeof data, &e)) ||
	    (rc = bs_entry_create(im, "tpm2.libtpms", "volatilestate", &o, vol, sizeof vol, NULL)))
		die("create", rc);
	if ((rc = bs_entry_write(e, data, sizeof data)))
		die("replace", rc);
	uint64_t woff = rec->off;
	size_t wlen = rec->len;

	struct raw raw;
	raw_open(&raw, raw_name, true, true);
	uint8_t *rbuf = malloc(wlen);
	if (!rbuf)
		return 1;
	memset(rbuf, 0x5a, wlen);

	double *ours = calloc(rounds, sizeof *ours), *lim = calloc(rounds, sizeof *lim);
	double *v = calloc(batch, sizeof *v);
	if (!ours || !lim || !v)
		return 1;
	/* Warm-up: both paths once in writeback mode (after a first flush). */
	for (size_t i = 0; i < 5; i++) {
		if ((rc = bs_entry_write(e, data, sizeof data)))
			die("replace", rc);
		if ((rc = (int)rbd_write(raw.img, woff, wlen, (char *)rbuf)) < 0 ||
		    (rc = rbd_flush(raw.img)))
			die("raw write", rc);
	}
	unsigned seq = 0;
	for (size_t r = 0; r < rounds; r++) {
		size_t order[2];
		permute(r, 2, order);
		for (int k = 0; k < 2; k++) {
			for (size_t i = 0; i < batch; i++) {
				data[0] = rbuf[0] = (uint8_t)++seq;
				double t0 = now_us();
				if (order[k] == 0) {
					if ((rc = bs_entry_write(e, data, sizeof data)))
						die("replace", rc);
				} else {
					ssize_t n = rbd_write(raw.img, woff, wlen, (char *)rbuf);
					if (n != (ssize_t)wlen)
						die("raw write", n < 0 ? (int)n : -EIO);
					if ((rc = rbd_flush(raw.img)))
						die("raw flush", rc);
				}
				v[i] = now_us() - t0;
			}
			(order[k] == 0 ? ours : lim)[r] = median(v, batch);
		}
	}
	double ratio = median_ratio(ours, lim, rounds);
	double m_ours = median(ours, rounds), m_lim = median(lim, rounds);
	bs_image_close(im);
	raw_close(&raw, raw_name);

	printf("\n== RBD: durable replace of a %u-octet entry (one write of %zu octets at offset "
	       "%llu + rbd_flush)\n   medians of %zu interleaved rounds of %zu; cluster %s\n",
	       DATA_LEN, wlen, (unsigned long long)woff, rounds, batch, conf);
	printf("%-52s | %10s\n", "candidate", "median us");
	printf("%-52s | %10.0f\n", "blobstore bs_entry_write on rbd://", m_ours);
	printf("%-52s | %10.0f\n", "limit: raw rbd_write of the same octets + rbd_flush", m_lim);
	printf("goal: replace within %.2fx of the raw write + flush: %s (%.3fx per round)\n", GOAL,
	       ratio <= GOAL ? "met" : "NOT met", ratio);
	csv_row(csv, "replace 1200 octets", "blobstore_us", m_ours, "us");
	csv_row(csv, "replace 1200 octets", "raw_librbd_us", m_lim, "us");
	csv_row(csv, "replace 1200 octets", "paired_ratio_blobstore_vs_raw", ratio, "x");

	/* Open: the vTPM server's start, and the command's every run. */
	enum { RAW, RW, RO, NC };
	const char *names[NC] = {"raw: connect + rbd_open + rbd_close + shutdown",
				 "bs_image_open read-write (lock) + close",
				 "bs_image_open read-only + close"};
	const char *metrics[NC] = {"raw_librbd_us", "blobstore_rw_us", "blobstore_ro_us"};
	double *per[NC];
	for (int k = 0; k < NC; k++)
		if (!(per[k] = calloc(rounds, sizeof **per)))
			return 1;
	size_t ob = quick ? 5 : 10;
	for (size_t r = 0; r < rounds; r++) {
		size_t order[NC];
		permute(r, NC, order);
		for (int k = 0; k < NC; k++) {
			for (size_t i = 0; i < ob; i++) {
				double t0 = now_us();
				if (order[k] == RAW) {
					raw_open(&raw, name, false, false);
					raw_close(&raw, NULL);
				} else {
					if ((rc = bs_image_open(uri, order[k] == RO ? BS_OPEN_RDONLY : 0, &im)))
						die("open", rc);
					bs_image_close(im);
				}
				v[i] = now_us() - t0;
			}
			per[order[k]][r] = median(v, ob);
		}
	}
	double r_rw = median_ratio(per[RW], per[RAW], rounds);
	double r_ro = median_ratio(per[RO], per[RAW], rounds);
	printf("\n== RBD: open and close of a vTPM's image (2 entries); medians of %zu rounds of %zu\n",
	       rounds, ob);
	printf("%-52s | %10s | %s\n", "candidate", "median us", "vs raw (per round)");
	for (int k = 0; k < NC; k++) {
		double m = median(per[k], rounds);
		char vs[32] = "";
		if (k != RAW)
			snprintf(vs, sizeof vs, "%.2f", k == RW ? r_rw : r_ro);
		printf("%-52s | %10.0f | %s\n", names[k], m, vs);
		csv_row(csv, "open vtpm image", metrics[k], m, "us");
		free(per[k]);
	}
	csv_row(csv, "open vtpm image", "paired_ratio_rw_vs_raw", r_rw, "x");
	csv_row(csv, "open vtpm image", "paired_ratio_ro_vs_raw", r_ro, "x");
	/* The image goes with the cluster; the raw one is removed above. */
	free(ours);
	free(lim);
	free(v);
	free(rbuf);
	if (csv)
		fclose(csv);
	return 0;
}
