/* test_rbd.c - the RBD backend (blobstore/rbd.h) against a real Ceph
 * cluster: the writer lock between two clients (each open is a client of
 * its own, as two hosts are), waiting for it and handing it over, growing
 * an image through an RBD resize, and the crash simulation on RBD: every
 * state-changing operation cut after each of its writes (applied whole,
 * torn or lost; the cut flushes what came before, so the cluster holds
 * exactly the writes before the cut), after which a new client must read
 * the image as it was before the operation or after it, never a mix, and
 * a writer's open (which finishes an interrupted compaction) must agree.
 *
 * The cluster comes from BS_TEST_RBD_CONF (tests/integration/test_rbd.sh
 * starts one and runs this program on it); without it those tests skip.
 * URI checks and the bounded connect timeout need no cluster and always
 * run (the timeout only where librbd can be loaded). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blobstore/rbd.h>

#include "common.h"
#include "storage/storage.h" /* the backend table, to wrap a backend */

static const char *conf;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void need_cluster(void)
{
	if (!conf) {
		print_message("skipping: no Ceph cluster (BS_TEST_RBD_CONF unset; "
			      "tests/integration/test_rbd.sh starts one and runs this test)\n");
		skip();
	}
}

/* "rbd://rbd/NAME-PID?conf=CONF" and EXTRA ("&size=1M", ...); static. */
static const char *uri(const char *name, const char *extra)
{
	static char buf[4][1024];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0], "rbd://rbd/%s-%ld?conf=%s%s", name, (long)getpid(),
		 conf ? conf : "/nonexistent", extra ? extra : "");
	return b;
}

static void must(int rc, const char *what)
{
	if (rc)
		fail_msg("%s: %s", what, last_error());
}

static void msg_has(const char *part)
{
	if (!strstr(last_error(), part))
		fail_msg("message \"%s\" lacks \"%s\"", last_error(), part);
}

static void put(bs_image *im, const char *type, const char *name, const char *data)
{
	bs_entry *e;
	int rc = bs_entry_find(im, type, name, &e);
	if (rc == BS_ENOENT)
		rc = bs_entry_create(im, type, name, NULL, data, strlen(data), NULL);
	else if (rc == BS_OK)
		rc = bs_entry_write(e, data, strlen(data));
	must(rc, "put");
}

static void get_is(bs_image *im, const char *type, const char *name, const char *want)
{
	bs_entry *e;
	must(bs_entry_find(im, type, name, &e), "find");
	void *d;
	size_t l;
	must(bs_entry_read_alloc(e, &d, &l), "read");
	if (l != strlen(want) || memcmp(d, want, l))
		fail_msg("%s/%s holds \"%.*s\", expected \"%s\"", type, name, (int)l, (char *)d, want);
	free(d);
}

/* ---- no cluster needed ------------------------------------------------------------ */

static void test_uri_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"rbd://",
		"rbd://pool",
		"rbd://pool/",
		"rbd:///image",
		"rbd://pool//image",
		"rbd://pool/ns/image/more",
		"rbd://pool/image?conf",
		"rbd://pool/image?conf=a&conf=b",
		"rbd://pool/image?colour=blue",
		"rbd://pool/image?size=12X",
		"rbd://pool/image?size=0",
		"rbd://pool/image?timeout=0",
		"rbd://pool/image?timeout=3601",
		"rbd://pool/image?timeout=5k",
		"rbd://pool/image?lock_wait=-1",
		"rbd://pool/im%zzage",
		"rbd://pool/im%00age",
		"rbd://pool/image?conf=%2",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct bs_backend *be = NULL;
		int rc = bs_backend_open(bad[i], BS_OPEN_RDONLY, &be);
		if (rc != BS_EINVAL)
			fail_msg("%s: %d, not BS_EINVAL (%s)", bad[i], rc, last_error());
		assert_null(be);
		/* The message names the URI and says what a good one looks like. */
		assert_true(!strncmp(last_error(), bad[i], strlen(bad[i])));
		msg_has("rbd://POOL");
	}
	/* A snapshot cannot be written. */
	bs_image *im = NULL;
	assert_int_equal(bs_image_open("rbd://pool/image?snap=s1", 0, &im), BS_ERDONLY);
	assert_null(im);
	msg_has("snapshot");
	/* Long URIs are refused, not truncated. */
	char *big = malloc(5000);
	assert_non_null(big);
	memset(big, 'a', 4999);
	big[4999] = 0;
	memcpy(big, "rbd://p/", 8);
	assert_int_equal(bs_image_open(big, BS_OPEN_RDONLY, &im), BS_EINVAL);
	free(big);
}

/* A cluster nobody answers for: BS_EIO within the timeout, naming the URI. */
static void test_unreachable_cluster_times_out(void **state)
{
	(void)state;
	char *path = t_tmppath("dead.conf");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	/* Port 1 on loopback: refused at once, and the client keeps trying. */
	fprintf(f, "[global]\nmon_host = [v2:127.0.0.1:1]\nauth_client_required = none\n"
		   "log_file = /dev/null\n");
	fclose(f);
	char u[600];
	snprintf(u, sizeof u, "rbd://rbd/vm?conf=%s&timeout=1", path);
	bs_image *im = NULL;
	double t0 = now_s();
	int rc = bs_image_open(u, BS_OPEN_RDONLY, &im);
	double dt = now_s() - t0;
	unlink(path);
	free(path);
	if (rc == BS_EUNSUPPORTED) {
		print_message("skipping: %s\n", last_error());
		skip();
	}
	assert_int_equal(rc, BS_EIO);
	assert_null(im);
	assert_true(!strncmp(last_error(), u, strlen(u)));
	msg_has("within 1 s");
	if (dt < 0.9 || dt > 6)
		fail_msg("gave up after %.2f s with timeout=1", dt);
}

/* ---- the writer lock ----------------------------------------------------------------- */

static void test_second_writer_refused(void **state)
{
	(void)state;
	need_cluster();
	const char *u = uri("lock", "&size=1M");
	bs_image *a, *b = NULL, *r;
	must(bs_image_open(u, BS_OPEN_CREATE, &a), "first writer");
	put(a, "vtpm", "permall", "v1");
	/* Another client (another host, to Ceph): refused at once. */
	double t0 = now_s();
	assert_int_equal(bs_image_open(u, 0, &b), BS_ELOCKED);
	assert_true(now_s() - t0 < 3);
	assert_null(b);
	msg_has("locked by another writer (held by client");
	assert_true(!strncmp(last_error(), u, strlen(u)));
	/* Waiting is bounded by lock_wait. */
	char uw[1100];
	snprintf(uw, sizeof uw, "%s&lock_wait=1", u);
	t0 = now_s();
	assert_int_equal(bs_image_open(uw, BS_OPEN_WAIT, &b), BS_ELOCKED);
	double dt = now_s() - t0;
	if (dt < 0.9 || dt > 5)
		fail_msg("BS_OPEN_WAIT with lock_wait=1 gave up after %.2f s", dt);
	msg_has("after waiting 1 s");
	/* Readers take no lock and see what the writer made durable. */
	must(bs_image_open(u, BS_OPEN_RDONLY, &r), "reader beside the writer");
	get_is(r, "vtpm", "permall", "v1");
	bs_image_close(r);
	/* Closing the writer frees the lock for the next one. */
	bs_image_close(a);
	must(bs_image_open(u, 0, &b), "writer after the first closed");
	get_is(b, "vtpm", "permall", "v1");
	put(b, "vtpm", "permall", "v2");
	bs_image_close(b);
}

/* A backend whose lock was released writes nothing: a source that handed
 * its image over cannot write by accident. */
static void test_released_lock_stops_writes(void **state)
{
	(void)state;
	need_cluster();
	const char *u = uri("release", "&size=1M");
	struct bs_backend *be;
	must(bs_backend_open(u, BS_OPEN_CREATE, &be), "open");
	must(be->ops->lock(be->ctx, BS_LOCK_EXCL), "lock");
	must(be->ops->write_at(be->ctx, "x", 1, 0), "write while locked");
	must(be->ops->sync(be->ctx), "sync");
	must(be->ops->lock(be->ctx, BS_LOCK_NONE), "release");
	assert_int_equal(be->ops->write_at(be->ctx, "y", 1, 0), BS_ELOCKED);
	msg_has("no longer holds the image's exclusive lock");
	/* It can take the lock again when nobody else has it. */
	must(be->ops->lock(be->ctx, BS_LOCK_EXCL), "lock again");
	must(be->ops->write_at(be->ctx, "z", 1, 0), "write after locking again");
	must(be->ops->sync(be->ctx), "sync");
	bs_backend_free(be);
}

/* The destination of a migration waits for the source's lock; the source
 * writes its last state, closes (releasing the lock), and the destination
 * takes over with exactly that state.  The source cannot come back. */
struct dest {
	const char *uri;
	int rc;
	double got_at;
	char seen[64];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool release;
};

static void *destination(void *arg)
{
	struct dest *d = arg;
	bs_image *im;
	d->rc = bs_image_open(d->uri, BS_OPEN_WAIT, &im);
	d->got_at = now_s();
	if (d->rc)
		return NULL;
	bs_entry *e;
	size_t l = 0;
	if (!bs_entry_find(im, "vtpm", "permall", &e) &&
	    !bs_entry_read(e, d->seen, sizeof d->seen - 1, &l))
		d->seen[l] = 0;
	d->rc = bs_entry_write(e, "dest-1", 6);
	pthread_mutex_lock(&d->mu);
	while (!d->release)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
	bs_image_close(im);
	return NULL;
}

static void test_lock_handover(void **state)
{
	(void)state;
	need_cluster();
	const char *u = uri("handover", "&size=1M");
	bs_image *src, *again = NULL;
	must(bs_image_open(u, BS_OPEN_CREATE, &src), "source");
	put(src, "vtpm", "permall", "source-0");
	char uw[1100];
	snprintf(uw, sizeof uw, "%s&lock_wait=30", u);
	struct dest d = {.uri = uw, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, destination, &d), 0);
	usleep(400 * 1000);
	assert_true(d.got_at == 0); /* still waiting */
	/* The source keeps the lock meanwhile: its last write works. */
	put(src, "vtpm", "permall", "source-final");
	double closed = now_s();
	bs_image_close(src);
	/* The source cannot take the image back while the destination has it. */
	for (int i = 0; i < 100 && d.got_at == 0; i++)
		usleep(20 * 1000);
	assert_true(d.got_at > 0);
	if (d.got_at - closed > 2)
		fail_msg("the destination took the lock %.2f s after the source closed",
			 d.got_at - closed);
	assert_int_equal(bs_image_open(u, 0, &again), BS_ELOCKED);
	pthread_mutex_lock(&d.mu);
	d.release = true;
	pthread_cond_signal(&d.cv);
	pthread_mutex_unlock(&d.mu);
	pthread_join(th, NULL);
	if (d.rc)
		fail_msg("destination: %d", d.rc);
	assert_string_equal(d.seen, "source-final");
	/* Rollback: once the destination closes, the source can open again and
	 * sees what the destination wrote. */
	must(bs_image_open(u, 0, &again), "source after the destination closed");
	get_is(again, "vtpm", "permall", "dest-1");
	bs_image_close(again);
}

/* ---- growing ------------------------------------------------------------------------- */

static uint64_t storage_size(const char *u)
{
	struct bs_backend *be;
	uint64_t sz;
	must(bs_backend_open(u, BS_OPEN_RDONLY, &be), "open the storage");
	must(be->ops->size(be->ctx, &sz), "size");
	bs_backend_free(be);
	return sz;
}

static void test_grow_through_resize(void **state)
{
	(void)state;
	need_cluster();
	const char *u = uri("grow", "&size=32k");
	bs_image *im, *ro;
	must(bs_image_open(u, BS_OPEN_CREATE, &im), "format 32 KiB");
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	must(bs_image_stat(im, &st), "stat");
	assert_true(st.size == 32768 - 4096); /* the recovery area is the last 4 KiB */
	/* A compaction while there is room leaves a "done" record in the area
	 * at the old end. */
	must(bs_entry_create(im, "tmp", NULL, NULL, "x", 1, NULL), "create");
	bs_entry *e;
	must(bs_entry_find(im, "tmp", NULL, &e), "find");
	must(bs_entry_delete(e), "delete");
	must(bs_image_compact(im), "compact while there is room");
	char big[4000];
	memset(big, 'g', sizeof big);
	big[sizeof big - 1] = 0;
	int n = 0, rc;
	char nm[16];
	for (;; n++) {
		snprintf(nm, sizeof nm, "e%d", n);
		if ((rc = bs_entry_create(im, "blob", nm, NULL, big, sizeof big - 1, NULL)))
			break;
	}
	assert_int_equal(rc, BS_ENOSPC);
	assert_true(n >= 2);
	must(bs_entry_find(im, "blob", "e0", &e), "find");
	must(bs_entry_delete(e), "delete");
	/* Too full to compact in place (the copy needs room past the end)... */
	assert_int_equal(bs_image_compact(im), BS_ENOSPC);
	/* ...until the RBD image is resized; the recovery area moves. */
	must(bs_image_reserve(im, 128 * 1024), "grow to 128 KiB");
	must(bs_image_stat(im, &st), "stat");
	assert_true(st.size == 128 * 1024);
	assert_true(storage_size(u) == 128 * 1024 + 4096);
	must(bs_image_compact(im), "compact after growing");
	/* A smaller size changes nothing; the image never shrinks. */
	must(bs_image_reserve(im, 40 * 1024), "reserve less");
	assert_true(storage_size(u) == 128 * 1024 + 4096);
	for (int k = 0; k < 6; k++) {
		snprintf(nm, sizeof nm, "g%d", k);
		must(bs_entry_create(im, "blob", nm, NULL, big, sizeof big - 1, NULL), "create after growing");
	}
	must(bs_entry_find(im, "blob", "g0", &e), "find");
	must(bs_entry_delete(e), "delete");
	must(bs_image_compact(im), "compact again");
	/* Readers cannot grow. */
	must(bs_image_open(u, BS_OPEN_RDONLY, &ro), "reader");
	assert_int_equal(bs_image_reserve(ro, 1 << 20), BS_ERDONLY);
	bs_image_close(ro);
	bs_image_close(im);
	must(bs_image_open(u, 0, &im), "reopen");
	must(bs_image_stat(im, &st), "stat");
	assert_true(st.size == 128 * 1024);
	assert_int_equal(bs_image_check(im, 0, NULL, NULL), BS_OK);
	assert_int_equal(bs_image_count(im, 0), (size_t)(n - 1 + 5));
	assert_int_equal(bs_entry_find(im, "blob", "g0", &e), BS_ENOENT);
	must(bs_entry_find(im, "blob", "g5", &e), "find after reopen");
	bs_image_close(im);
}

/* ---- the crash simulation ------------------------------------------------------------- */

/* How much of the write at the cut reaches the storage. */
enum tear { TEAR_ONE, TEAR_HALF, TEAR_ALL_BUT_ONE, TEAR_WHOLE, TEARS };
static const char *const tear_names[TEARS] = {"1 octet", "half", "all but 1 octet", "whole"};

/* A wrapper over the RBD backend that cuts the storage off after write
 * CRASH_AFTER (counted from arming): that write applied as TEAR says,
 * everything before it flushed, everything after it failing with BS_EIO.
 * It does not close the RBD backend, which the test reuses. */
struct cut {
	struct bs_backend *inner;
	bool armed, crashed;
	uint64_t writes, crash_after;
	enum tear tear;
};

static int c_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct cut *c = ctx;
	return c->inner->ops->read_at(c->inner->ctx, buf, len, off);
}

static int c_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct cut *c = ctx;
	if (c->crashed)
		return bs_error_set("cut", NULL, NULL, off, BS_EIO, 0, "after the cut");
	if (!c->armed)
		return c->inner->ops->write_at(c->inner->ctx, buf, len, off);
	if (++c->writes != c->crash_after)
		return c->inner->ops->write_at(c->inner->ctx, buf, len, off);
	size_t n = c->tear == TEAR_ONE ? 1 : c->tear == TEAR_HALF ? len / 2
		 : c->tear == TEAR_ALL_BUT_ONE ? len - 1 : len;
	if (n)
		must(c->inner->ops->write_at(c->inner->ctx, buf, n, off), "the torn write");
	must(c->inner->ops->sync(c->inner->ctx), "the flush at the cut");
	c->crashed = true;
	return bs_error_set("cut", NULL, NULL, off, BS_EIO, 0, "cut at this write");
}

static int c_sync(void *ctx)
{
	struct cut *c = ctx;
	if (c->crashed)
		return bs_error_set("cut", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "after the cut");
	return c->inner->ops->sync(c->inner->ctx);
}

static int c_size(void *ctx, uint64_t *out)
{
	struct cut *c = ctx;
	return c->inner->ops->size(c->inner->ctx, out);
}

static int c_reserve(void *ctx, uint64_t total)
{
	struct cut *c = ctx;
	if (c->crashed)
		return bs_error_set("cut", NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "after the cut");
	return c->inner->ops->reserve(c->inner->ctx, total);
}

/* The RBD client holds the lock for the whole simulation (taken once:
 * each take and release costs round trips). */
static int c_lock(void *ctx, int how)
{
	(void)ctx;
	(void)how;
	return BS_OK;
}

static void c_close(void *ctx)
{
	(void)ctx;
}

static const struct bs_backend_ops cut_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = c_read,
	.write_at = c_write,
	.sync = c_sync,
	.size = c_size,
	.reserve = c_reserve,
	.lock = c_lock,
	.close = c_close,
};

/* Opens the image on C (which stays the caller's) read-write. */
static int open_cut(struct cut *c, const char *label, bs_image **im)
{
	struct bs_backend *be;
	must(bs_backend_new(&cut_ops, c, 1, &be), "wrap");
	return bs_image_open_backend(be, label, 0, im);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What IM holds, as text: one sorted line per entry with its data and its
 * caller attributes. */
static void signature(bs_image *im, char *out, size_t cap)
{
	char *lines[64];
	size_t n = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(im, e, 0)) && n < 64;) {
		void *d = NULL;
		size_t l = 0;
		char line[600];
		int rc = bs_entry_read_alloc(e, &d, &l);
		int k = snprintf(line, sizeof line, "%s/%s=%s%.*s", bs_entry_type(e),
				 bs_entry_name(e) ? bs_entry_name(e) : "-", rc ? "UNREADABLE:" : "",
				 (int)(l > 200 ? 200 : l), d ? (char *)d : "");
		free(d);
		for (size_t i = 0; i < bs_attr_count(e) && k > 0 && (size_t)k < sizeof line; i++) {
			const char *nm;
			const uint8_t *v;
			size_t vl;
			unsigned fl;
			must(bs_attr_at(e, i, &nm, &v, &vl, &fl), "attribute");
			if (!strncmp(nm, "bs.", 3))
				continue;
			char desc[100];
			bs_value_describe(v, vl, desc, sizeof desc);
			k += snprintf(line + k, sizeof line - (size_t)k, ";%s=%s", nm, desc);
		}
		lines[n] = strdup(line);
		assert_non_null(lines[n]);
		n++;
	}
	qsort(lines, n, sizeof *lines, cmp_str);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		strncat(out, lines[i], cap - strlen(out) - 1);
		strncat(out, "\n", cap - strlen(out) - 1);
		free(lines[i]);
	}
}

#define SIG 4096
#define STORAGE (64u * 1024)

typedef int (*op_fn)(bs_image *im);

static bs_entry *entry(bs_image *im, const char *type, const char *name)
{
	bs_entry *e = NULL;
	must(bs_entry_find(im, type, name, &e), "find");
	return e;
}

static int op_create(bs_image *im)
{
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 16};
	return bs_entry_create(im, "dev.e", "four", &o, "echo", 4, NULL);
}
static int op_replace(bs_image *im) { return bs_entry_write(entry(im, "dev.a", "one"), "ALPHA-2", 7); }
static int op_rewrite(bs_image *im)
{
	char d[100];
	memset(d, 'A', sizeof d);
	return bs_entry_write(entry(im, "dev.a", "one"), d, sizeof d); /* past its capacity */
}
static int op_delete(bs_image *im) { return bs_entry_delete(entry(im, "dev.b", "two")); }
static int op_raw(bs_image *im) { return bs_entry_write(entry(im, "dev.b", "two"), "BRAVO-2", 7); }
static int op_attr(bs_image *im)
{
	uint8_t v[BS_VALUE_MAX_INT];
	size_t vl;
	must(bs_value_encode_int(2, 0, v, sizeof v, &vl), "encode");
	return bs_attr_set(entry(im, "dev.c", "three"), "x", 0, v, vl);
}
static int op_compact(bs_image *im) { return bs_image_compact(im); }

static const struct {
	const char *name;
	op_fn fn;
} crash_ops[] = {
	{"create", op_create},   {"replace", op_replace}, {"rewrite", op_rewrite},
	{"delete", op_delete},   {"raw write", op_raw},   {"attribute", op_attr},
	{"compact", op_compact},
};

struct sim {
	const char *uri;
	struct bs_backend *rbd; /* one client for the writers: resets, operations */
	uint8_t *base;          /* the whole storage before each operation */
	char old_sig[SIG];
	unsigned long points, violations;
};

#define VIOLATION(s, ...)                                                                    \
	do {                                                                                 \
		(s)->violations++;                                                           \
		print_error("VIOLATION: " __VA_ARGS__);                                      \
		print_error("\n");                                                           \
	} while (0)

static void reset(struct sim *s)
{
	must(s->rbd->ops->write_at(s->rbd->ctx, s->base, STORAGE, 0), "reset");
	must(s->rbd->ops->sync(s->rbd->ctx), "reset");
}

/* Runs OP on the base image, cut at write CRASH_AFTER (0: never) with
 * TEAR; returns the operation's result and its write count in *WRITES. */
static int run_cut(struct sim *s, op_fn op, uint64_t crash_after, enum tear tear,
		   uint64_t *writes)
{
	reset(s);
	struct cut c = {.inner = s->rbd, .crash_after = crash_after, .tear = tear};
	bs_image *im;
	must(open_cut(&c, s->uri, &im), "open for the operation");
	c.armed = true;
	int rc = op(im);
	bs_image_close(im);
	if (writes)
		*writes = c.writes;
	return rc;
}

/* After a cut: a new client reads old or new; a writer's open (recovery)
 * agrees with it; both pass the check. */
static void verify(struct sim *s, const char *what, int rc, const char *new_sig)
{
	static char sig[SIG], sig2[SIG];
	bs_image *im;
	s->points++;
	if (bs_image_open(s->uri, BS_OPEN_RDONLY, &im)) {
		VIOLATION(s, "%s: a reader cannot open: %s", what, last_error());
		return;
	}
	signature(im, sig, sizeof sig);
	if (bs_image_check(im, 0, NULL, NULL) != BS_OK)
		VIOLATION(s, "%s: the reader's check fails", what);
	bs_image_close(im);
	bool is_old = !strcmp(sig, s->old_sig), is_new = !strcmp(sig, new_sig);
	if (!is_old && !is_new)
		VIOLATION(s, "%s: neither old nor new:\n%s", what, sig);
	if (rc == BS_OK && !is_new)
		VIOLATION(s, "%s: the operation succeeded but its change is lost", what);
	struct cut c = {.inner = s->rbd};
	if (open_cut(&c, s->uri, &im)) {
		VIOLATION(s, "%s: a writer cannot open: %s", what, last_error());
		return;
	}
	signature(im, sig2, sizeof sig2);
	if (strcmp(sig, sig2))
		VIOLATION(s, "%s: the writer sees\n%s\nthe reader saw\n%s", what, sig2, sig);
	if (bs_image_check(im, 0, NULL, NULL) != BS_OK)
		VIOLATION(s, "%s: the check fails after recovery", what);
	bs_image_close(im);
}

static void build_base(struct sim *s)
{
	bs_image *im;
	must(bs_image_open(s->uri, BS_OPEN_CREATE, &im), "format the base image");
	struct bs_entry_opts slotted = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 64};
	struct bs_entry_opts raw = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	uint8_t v[BS_VALUE_MAX_INT];
	size_t vl;
	must(bs_value_encode_int(1, 0, v, sizeof v, &vl), "encode");
	struct bs_attr x = BS_ATTR("x", 0, v, vl);
	struct bs_entry_opts with_attr = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 32,
					  .attrs = &x, .nattrs = 1};
	must(bs_entry_create(im, "dev.a", "one", &slotted, "alpha", 5, NULL), "base");
	must(bs_entry_create(im, "dev.b", "two", &raw, "bravo", 5, NULL), "base");
	must(bs_entry_create(im, "dev.c", "three", &with_attr, "charlie", 7, NULL), "base");
	must(bs_entry_create(im, "dev.d", "junk", NULL, "delete me", 9, NULL), "base");
	must(bs_entry_delete(entry(im, "dev.d", "junk")), "base"); /* a hole to compact */
	signature(im, s->old_sig, sizeof s->old_sig);
	bs_image_close(im);
	s->base = malloc(STORAGE);
	assert_non_null(s->base);
	must(s->rbd->ops->read_at(s->rbd->ctx, s->base, STORAGE, 0), "read the base storage");
}

static void test_crash_simulation(void **state)
{
	(void)state;
	need_cluster();
	struct sim s = {.uri = uri("crash", "&size=64k")};
	must(bs_backend_open(s.uri, BS_OPEN_CREATE, &s.rbd), "the writers' client");
	build_base(&s);
	must(s.rbd->ops->lock(s.rbd->ctx, BS_LOCK_EXCL), "lock");
	/* A write lost leaves what the previous write applied whole left: no
	 * case of its own. */
	static const enum tear quick_tears[] = {TEAR_HALF};
	static const enum tear all_tears[] = {TEAR_ONE, TEAR_ALL_BUT_ONE, TEAR_WHOLE};
	const enum tear *tears = t_quick() ? quick_tears : all_tears;
	size_t ntears = t_quick() ? 1 : 3;
	for (size_t i = 0; i < sizeof crash_ops / sizeof *crash_ops; i++) {
		static char new_sig[SIG];
		uint64_t w = 0;
		must(run_cut(&s, crash_ops[i].fn, 0, TEAR_WHOLE, &w), crash_ops[i].name);
		bs_image *im;
		must(bs_image_open(s.uri, BS_OPEN_RDONLY, &im), "read the result");
		signature(im, new_sig, sizeof new_sig);
		bs_image_close(im);
		if (crash_ops[i].fn != op_compact && !strcmp(new_sig, s.old_sig))
			fail_msg("%s changes nothing", crash_ops[i].name);
		assert_true(w > 0);
		for (uint64_t n = 1; n <= w; n++)
			for (size_t t = 0; t < ntears; t++) {
				char what[128];
				snprintf(what, sizeof what, "%s: cut at write %llu of %llu, %s",
					 crash_ops[i].name, (unsigned long long)n, (unsigned long long)w,
					 tear_names[tears[t]]);
				int rc = run_cut(&s, crash_ops[i].fn, n, tears[t], NULL);
				verify(&s, what, rc, new_sig);
			}
	}
	print_message("rbd crash simulation: %zu operations, %lu cut points, %lu violations\n",
		      sizeof crash_ops / sizeof *crash_ops, s.points, s.violations);
	free(s.base);
	bs_backend_free(s.rbd);
	assert_int_equal(s.violations, 0);
}

int main(void)
{
	const char *c = getenv("BS_TEST_RBD_CONF");
	conf = c && *c ? c : NULL;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_refused),
		cmocka_unit_test(test_unreachable_cluster_times_out),
		cmocka_unit_test(test_second_writer_refused),
		cmocka_unit_test(test_released_lock_stops_writes),
		cmocka_unit_test(test_lock_handover),
		cmocka_unit_test(test_grow_through_resize),
		cmocka_unit_test(test_crash_simulation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
