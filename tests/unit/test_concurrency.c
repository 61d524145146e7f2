/* test_concurrency.c - several processes on one image file.  A second
 * writer gets BS_ELOCKED "locked by another writer", or waits with
 * BS_OPEN_WAIT; readers in other processes, while a writer replaces an
 * entry's data in a loop (and, in the second phase, compacts the image
 * between replaces), only ever read a complete value, old or new, never
 * going back in time on one handle.  Readers that keep their handles while
 * the writer also grows, changes attributes of, deletes and compacts, on a
 * file, fixed-size storage and NBD, read a complete value of the right
 * entry or get BS_ESTALE (reopen), never a false corruption report.
 * Values describe themselves: a counter, a length, the entry, a pattern
 * derived from the counter and a checksum.
 * Environment: BS_TEST_QUICK=1 (1 s per phase), BS_STRESS_SECONDS=N. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double phase_seconds(void)
{
	const char *s = getenv("BS_STRESS_SECONDS");
	if (s && *s)
		return atof(s);
	return t_quick() ? 1.0 : 2.0;
}

/* ---- self-describing values ------------------------------------------------ */

#define CAP 3000u

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Value number C of entry ID: [C u64][len u32][ID][0 0 0][pattern][fnv of
 * all before, u64]. */
static size_t make_id_value(uint64_t c, uint8_t id, uint8_t *b)
{
	size_t body = 16 + (size_t)(c * 977 % (CAP - 32));
	memcpy(b, &c, 8);
	uint32_t l = (uint32_t)body;
	memcpy(b + 8, &l, 4);
	memset(b + 12, 0, 4);
	b[12] = id;
	for (size_t i = 16; i < body; i++)
		b[i] = (uint8_t)(c * 31 + i);
	uint64_t h = fnv(b, body);
	memcpy(b + body, &h, 8);
	return body + 8;
}

static size_t make_value(uint64_t c, uint8_t *b)
{
	return make_id_value(c, 0, b);
}

/* The counter of a valid value of entry ID, or -1 (-2: a valid value of
 * another entry). */
static int64_t check_id_value(const uint8_t *b, size_t n, uint8_t id)
{
	if (n < 24)
		return -1;
	uint64_t c;
	uint32_t l;
	memcpy(&c, b, 8);
	memcpy(&l, b + 8, 4);
	if (l + 8u != n)
		return -1;
	for (size_t i = 16; i < l; i++)
		if (b[i] != (uint8_t)(c * 31 + i))
			return -1;
	uint64_t h;
	memcpy(&h, b + l, 8);
	if (h != fnv(b, l))
		return -1;
	return b[12] == id ? (int64_t)c : -2;
}

static int64_t check_value(const uint8_t *b, size_t n)
{
	return check_id_value(b, n, 0);
}

/* ---- two writers ------------------------------------------------------------ */

static char *make_image(const char *what)
{
	char *path = t_tmppath(what);
	unlink(path);
	bs_image *im;
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE, &im), BS_OK);
	uint8_t v[CAP];
	size_t n = make_value(0, v);
	assert_int_equal(bs_entry_create(im, "stress", "v", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = CAP, .attrs = NULL, .nattrs = 0}, v, n, NULL), BS_OK);
	assert_int_equal(bs_entry_create(im, "junk", "j", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 64, .attrs = NULL, .nattrs = 0}, "x", 1, NULL), BS_OK);
	bs_image_close(im);
	return path;
}

static void test_second_writer_locked(void **state)
{
	(void)state;
	char *path = make_image("lock.img");
	bs_image *im;
	assert_int_equal(bs_image_open(path, 0, &im), BS_OK);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		bs_image *o;
		int rc = bs_image_open(path, 0, &o);
		int ok = rc == BS_ELOCKED && strstr(last_error(), path) &&
			 strstr(last_error(), "locked by another writer");
		if (!ok)
			fprintf(stderr, "second writer: %d \"%s\"\n", rc, last_error());
		/* Readers take no lock. */
		int rr = bs_image_open(path, BS_OPEN_RDONLY, &o);
		if (rr == BS_OK)
			bs_image_close(o);
		_exit(ok && rr == BS_OK ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	bs_image_close(im);
	/* Released on close: the next writer gets in. */
	assert_int_equal(bs_image_open(path, 0, &im), BS_OK);
	bs_image_close(im);
	unlink(path);
	free(path);
}

static void test_second_writer_waits(void **state)
{
	(void)state;
	char *path = make_image("wait.img");
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		bs_image *im;
		if (bs_image_open(path, 0, &im))
			_exit(1);
		if (write(p[1], "L", 1) != 1)
			_exit(1);
		usleep(400000);
		bs_entry *e;
		uint8_t v[CAP];
		size_t n = make_value(7, v);
		int rc = bs_entry_find(im, "stress", "v", &e);
		if (!rc)
			rc = bs_entry_write(e, v, n);
		bs_image_close(im);
		_exit(rc ? 1 : 0);
	}
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	bs_image *im;
	double t0 = now();
	assert_int_equal(bs_image_open(path, 0, &im), BS_ELOCKED);
	assert_int_equal(bs_image_open(path, BS_OPEN_WAIT, &im), BS_OK);
	double waited = now() - t0;
	/* It waited for the holder, and sees what the holder wrote. */
	assert_true(waited > 0.2);
	uint8_t v[CAP];
	size_t n = make_value(7, v);
	t_assert_data(im, "stress", "v", v, n);
	bs_image_close(im);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink(path);
	free(path);
}

/* ---- readers during replaces ----------------------------------------------- */

struct tally {
	uint64_t reads, reopens, stale, errors, rollbacks;
};

/* A reader process: reads until STOP_AT, reopening now and then and when
 * a read says the handle is stale (BS_ESTALE: a compaction replaced the
 * file); a new open must see the current file. */
static void reader(const char *path, double stop_at, int fd, int id)
{
	struct tally t = {0};
	uint8_t buf[CAP + 64];
	bs_image *im = NULL;
	int64_t last = -1, last_open = -1;
	unsigned n = 0;
	while (now() < stop_at) {
		if (!im || n++ % (50 + 10 * (unsigned)id) == 0) {
			bs_image_close(im);
			im = NULL;
			/* An append landing during the scan is handled by the
			 * library (it scans again when the storage grew): any
			 * failure to open is an error. */
			int rc = bs_image_open(path, BS_OPEN_RDONLY, &im);
			if (rc) {
				fprintf(stderr, "reader %d: open: %s\n", id, last_error());
				t.errors++;
				continue;
			}
			t.reopens++;
			last_open = last;
			last = -1;
		}
		bs_entry *e;
		size_t len;
		int rc = bs_entry_find(im, "stress", "v", &e);
		if (!rc)
			rc = bs_entry_read(e, buf, sizeof buf, &len);
		t.reads++;
		if (rc == BS_ESTALE) {
			/* A compaction replaced the file: the library says so
			 * rather than keep reading the old one. */
			t.stale++;
			bs_image_close(im);
			im = NULL;
			continue;
		}
		if (rc) {
			if (t.errors++ < 5)
				fprintf(stderr, "reader %d: read: %s\n", id, last_error());
			continue;
		}
		int64_t c = check_value(buf, len);
		if (c < 0) {
			if (t.errors++ < 5)
				fprintf(stderr, "reader %d: a torn or mixed value (%zu octets)\n", id, len);
			continue;
		}
		/* Never older than what this handle, or the previous one, saw. */
		if (c < last || c < last_open) {
			if (t.rollbacks++ < 5)
				fprintf(stderr, "reader %d: value %lld after %lld\n", id, (long long)c,
					(long long)(last > last_open ? last : last_open));
		}
		if (c > last)
			last = c;
	}
	bs_image_close(im);
	if (write(fd, &t, sizeof t) != (ssize_t)sizeof t)
		_exit(2);
	_exit(0);
}

static void stress(bool compact)
{
	char *path = make_image(compact ? "stress-compact.img" : "stress.img");
	double secs = phase_seconds();
	double stop_at = now() + secs;
	enum { NREADERS = 4 };
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pids[NREADERS];
	for (int i = 0; i < NREADERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(p[0]);
			reader(path, stop_at, p[1], i);
		}
	}
	close(p[1]);
	bs_image *im;
	assert_int_equal(bs_image_open(path, 0, &im), BS_OK);
	bs_entry *e, *j;
	assert_int_equal(bs_entry_find(im, "stress", "v", &e), BS_OK);
	assert_int_equal(bs_entry_find(im, "junk", "j", &j), BS_OK);
	uint8_t v[CAP];
	uint64_t c = 0, compactions = 0;
	while (now() < stop_at) {
		c++;
		size_t n = make_value(c, v);
		if (bs_entry_write(e, v, n))
			fail_msg("writer: %s", last_error());
		if (compact && c % 25 == 0) {
			/* Leave a hole, then compact it away: the file is replaced. */
			assert_int_equal(bs_entry_delete(j), BS_OK);
			assert_int_equal(bs_entry_create(im, "junk", "j", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 64, .attrs = NULL, .nattrs = 0}, "x", 1, &j), 0);
			assert_int_equal(bs_image_compact(im), BS_OK);
			compactions++;
		}
	}
	bs_image_close(im);
	struct tally sum = {0};
	for (int i = 0; i < NREADERS; i++) {
		struct tally t;
		assert_int_equal(read(p[0], &t, sizeof t), (ssize_t)sizeof t);
		sum.reads += t.reads;
		sum.reopens += t.reopens;
		sum.stale += t.stale;
		sum.errors += t.errors;
		sum.rollbacks += t.rollbacks;
	}
	close(p[0]);
	for (int i = 0; i < NREADERS; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	print_message("concurrency%s: %.1f s, 1 writer (%llu replaces, %llu compactions), %d "
		      "reader processes (%llu reads, %llu opens, %llu stale): %llu bad reads, "
		      "%llu rollbacks\n",
		      compact ? " with compaction" : "", secs, (unsigned long long)c,
		      (unsigned long long)compactions, NREADERS, (unsigned long long)sum.reads,
		      (unsigned long long)sum.reopens, (unsigned long long)sum.stale,
		      (unsigned long long)sum.errors,
		      (unsigned long long)sum.rollbacks);
	assert_true(c > 10 && sum.reads > 10);
	assert_int_equal(sum.errors, 0);
	assert_int_equal(sum.rollbacks, 0);
	unlink(path);
	free(path);
}

static void test_readers_during_replaces(void **state)
{
	(void)state;
	stress(false);
}

static void test_readers_during_compaction(void **state)
{
	(void)state;
	stress(true);
}

/* ---- readers during rewrites, deletes and compactions, on every storage -------- */

/* What a reader of the mixed test counts. */
struct mtally {
	uint64_t reads, opens, stale, absent, errors, foreign, rollbacks;
};

/* A reader that keeps its handle until the library says it is stale
 * (BS_ESTALE: reopen) or the entry is gone.  Every value it gets must be a
 * complete value of entry "v" (never "w"'s: another entry's data), never
 * older than one it read before; no read may fail otherwise. */
static void mreader(const char *label, double stop_at, int fd, int id)
{
	struct mtally t = {0};
	uint8_t buf[CAP + 64];
	bs_image *im = NULL;
	int64_t last = -1;
	while (now() < stop_at) {
		if (!im) {
			int rc = bs_image_open(label, BS_OPEN_RDONLY, &im);
			if (rc) {
				if (t.errors++ < 5)
					fprintf(stderr, "reader %d: open: %s\n", id, last_error());
				im = NULL;
				continue;
			}
			t.opens++;
		}
		bs_entry *e;
		size_t len = 0;
		int rc = bs_entry_find(im, "stress", "v", &e);
		if (rc == BS_ENOENT) {
			/* Deleted and not yet created again when this handle
			 * read the directory. */
			t.absent++;
			bs_image_close(im);
			im = NULL;
			continue;
		}
		if (!rc)
			rc = bs_entry_read(e, buf, sizeof buf, &len);
		t.reads++;
		if (rc == BS_ESTALE) {
			t.stale++;
			bs_image_close(im);
			im = NULL;
			continue;
		}
		if (rc) {
			if (t.errors++ < 5)
				fprintf(stderr, "reader %d: read: %d %s\n", id, rc, last_error());
			bs_image_close(im);
			im = NULL;
			continue;
		}
		int64_t c = check_id_value(buf, len, 'v');
		if (c == -2) {
			if (t.foreign++ < 5)
				fprintf(stderr, "reader %d: read entry w's value for entry v\n", id);
			continue;
		}
		if (c < 0) {
			if (t.errors++ < 5)
				fprintf(stderr, "reader %d: a torn or mixed value (%zu octets)\n", id, len);
			continue;
		}
		if (c < last && t.rollbacks++ < 5)
			fprintf(stderr, "reader %d: value %lld after %lld\n", id, (long long)c,
				(long long)last);
		if (c > last)
			last = c;
	}
	bs_image_close(im);
	if (write(fd, &t, sizeof t) != (ssize_t)sizeof t)
		_exit(2);
	_exit(0);
}

/* One writer puts new values into "v" and "w" (side by side, so that a
 * compaction moves one where the other was), and in turn grows "v", changes
 * one of its attributes, deletes and creates it again, and compacts the
 * image; 3 readers keep their handles meanwhile. */
static void mixed_stress(enum t_kind kind)
{
	struct t_store *st = t_store_new(kind);
	if (!st)
		skip();
	bs_image *im = t_store_fresh(st);
	const char *label = t_store_label(st);
	uint8_t v[CAP];
	bs_entry *e, *w;
	size_t n = make_id_value(0, 'v', v);
	assert_int_equal(bs_entry_create(im, "stress", "v", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = CAP}, v, n, &e), BS_OK);
	n = make_id_value(0, 'w', v);
	assert_int_equal(bs_entry_create(im, "stress", "w", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = CAP}, v, n, &w), BS_OK);
	double secs = phase_seconds();
	double stop_at = now() + secs;
	enum { NREADERS = 3 };
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pids[NREADERS];
	for (int i = 0; i < NREADERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(p[0]);
			mreader(label, stop_at, p[1], i);
		}
	}
	close(p[1]);
	uint64_t c = 0, grows = 0, attrs = 0, deletes = 0, compactions = 0;
	size_t cap = CAP;
	while (now() < stop_at) {
		c++;
		n = make_id_value(c, 'v', v);
		if (bs_entry_write(e, v, n))
			fail_msg("writer: %s", last_error());
		n = make_id_value(c, 'w', v);
		if (bs_entry_write(w, v, n))
			fail_msg("writer: %s", last_error());
		int rc = BS_OK;
		switch (c % 8) {
		case 1:
			cap += 16;
			rc = bs_entry_resize(e, cap);
			grows++;
			break;
		case 3: {
			uint8_t der[16];
			size_t dl = t_der_int((int64_t)c, der, sizeof der);
			rc = bs_attr_set(e, "seq", 0, der, dl);
			attrs++;
			break;
		}
		case 5:
			n = make_id_value(c, 'v', v);
			rc = bs_entry_delete(e);
			if (!rc)
				rc = bs_entry_create(im, "stress", "v", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = cap}, v, n, &e);
			deletes++;
			break;
		case 7:
			rc = bs_image_compact(im);
			compactions++;
			break;
		}
		if (rc)
			fail_msg("writer: %s", last_error());
	}
	bs_image_close(im);
	struct mtally sum = {0};
	for (int i = 0; i < NREADERS; i++) {
		struct mtally t;
		assert_int_equal(read(p[0], &t, sizeof t), (ssize_t)sizeof t);
		sum.reads += t.reads;
		sum.opens += t.opens;
		sum.stale += t.stale;
		sum.absent += t.absent;
		sum.errors += t.errors;
		sum.foreign += t.foreign;
		sum.rollbacks += t.rollbacks;
	}
	close(p[0]);
	for (int i = 0; i < NREADERS; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	print_message("readers during rewrites, %s: %.1f s, %llu puts, %llu grows, %llu attribute "
		      "changes, %llu deletes, %llu compactions; %d readers: %llu reads, %llu opens, "
		      "%llu stale (reopened), %llu absent: %llu errors, %llu other entry's data, "
		      "%llu rollbacks\n",
		      t_kind_name(kind), secs, (unsigned long long)c, (unsigned long long)grows,
		      (unsigned long long)attrs, (unsigned long long)deletes,
		      (unsigned long long)compactions, NREADERS, (unsigned long long)sum.reads,
		      (unsigned long long)sum.opens, (unsigned long long)sum.stale,
		      (unsigned long long)sum.absent, (unsigned long long)sum.errors,
		      (unsigned long long)sum.foreign, (unsigned long long)sum.rollbacks);
	assert_true(c > 8 && sum.reads > 10);
	assert_int_equal(sum.errors, 0);
	assert_int_equal(sum.foreign, 0);
	assert_int_equal(sum.rollbacks, 0);
	t_store_free(st);
}

static void test_rewrites_file(void **state)
{
	(void)state;
	mixed_stress(T_FILE);
}

static void test_rewrites_fixed(void **state)
{
	(void)state;
	mixed_stress(T_FIXED);
}

static void test_rewrites_nbd(void **state)
{
	(void)state;
	mixed_stress(T_NBD_MEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_second_writer_locked),
		cmocka_unit_test(test_second_writer_waits),
		cmocka_unit_test(test_readers_during_replaces),
		cmocka_unit_test(test_readers_during_compaction),
		cmocka_unit_test(test_rewrites_file),
		cmocka_unit_test(test_rewrites_fixed),
		cmocka_unit_test(test_rewrites_nbd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
