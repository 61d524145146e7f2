/* test_leftover.c - what a compaction killed midway leaves beside a file
 * (IMAGE.tmp-XXXXXXXX, a copy of the image) the next writable open
 * removes and reports through bs_image_note_at(); a copy some process
 * holds locked (a compaction still running), a read-only open, and every
 * file that is not exactly such a copy are left alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* A scratch directory holding a formatted image "img". */
struct scratch {
	char *dir;
	char img[512];
};

static void scratch_new(struct scratch *s, const char *what)
{
	s->dir = t_tmppath(what);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mkdir(s->dir, 0700), 0);
	snprintf(s->img, sizeof s->img, "%s/img", s->dir);
	bs_image *img;
	assert_int_equal(bs_image_open(s->img, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img), BS_OK);
	assert_int_equal(bs_image_note_count(img), 0);
	bs_image_close(img);
}

static void scratch_free(struct scratch *s)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", s->dir, s->dir);
	assert_int_equal(system(cmd), 0);
	free(s->dir);
}

/* S's directory joined with NAME (malloc'ed). */
static char *at(const struct scratch *s, const char *name)
{
	size_t n = strlen(s->dir) + strlen(name) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", s->dir, name);
	return p;
}

/* Writes a file of LEN octets at S/NAME. */
static void plant(const struct scratch *s, const char *name, size_t len)
{
	char *p = at(s, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	close(fd);
	free(p);
}

static bool exists(const struct scratch *s, const char *name)
{
	char *p = at(s, name);
	struct stat st;
	bool e = lstat(p, &st) == 0;
	free(p);
	return e;
}

static bs_image *open_image(const struct scratch *s, unsigned flags)
{
	bs_image *img;
	assert_int_equal(bs_image_open(s->img, flags | BS_OPEN_NOSYNC, &img), BS_OK);
	return img;
}

static void test_writable_open_removes_and_reports_a_killed_compactions_copy(void **state)
{
	(void)state;
	struct scratch s;
	scratch_new(&s, "lo-removed");
	plant(&s, "img.tmp-0badc0de", 12345);
	bs_image *img = open_image(&s, 0);
	assert_false(exists(&s, "img.tmp-0badc0de"));
	assert_int_equal(bs_image_note_count(img), 1);
	struct bs_image_note n = BS_IMAGE_NOTE_INIT;
	assert_int_equal(bs_image_note_at(img, 0, &n), BS_OK);
	assert_int_equal(n.version, BS_IMAGE_NOTE_VERSION);
	assert_int_equal(n.kind, BS_NOTE_LEFTOVER);
	assert_int_equal(n.code, BS_OK);
	assert_int_equal(n.sys_errno, 0);
	char *want = at(&s, "img.tmp-0badc0de");
	assert_string_equal(n.path, want);
	assert_int_equal(n.octets, 12345);
	char msg[700];
	snprintf(msg, sizeof msg, "removed %s (12345 octets) left by an interrupted compaction",
		 want);
	assert_string_equal(n.message, msg);
	free(want);
	/* The image is untouched and works. */
	assert_int_equal(bs_entry_create(img, "t", "n", NULL, "x", 1, NULL), BS_OK);
	bs_image_close(img);
	/* Nothing is left to report the next time. */
	img = open_image(&s, 0);
	assert_int_equal(bs_image_note_count(img), 0);
	t_assert_data(img, "t", "n", "x", 1);
	bs_image_close(img);
	scratch_free(&s);
}

static void test_every_copy_is_removed_and_a_relative_path_names_it_so(void **state)
{
	(void)state;
	struct scratch s;
	scratch_new(&s, "lo-relative");
	plant(&s, "img.tmp-00000000", 1);
	plant(&s, "img.tmp-ffffffff", 2);
	plant(&s, "img.tmp-9a8b7c6d", 3);
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(s.dir), 0);
	bs_image *img;
	assert_int_equal(bs_image_open("img", BS_OPEN_NOSYNC, &img), BS_OK);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(bs_image_note_count(img), 3);
	uint64_t total = 0;
	for (size_t i = 0; i < 3; i++) {
		struct bs_image_note n = BS_IMAGE_NOTE_INIT;
		assert_int_equal(bs_image_note_at(img, i, &n), BS_OK);
		assert_int_equal(strncmp(n.path, "img.tmp-", 8), 0);
		assert_int_equal(strlen(n.path), 16);
		assert_non_null(strstr(n.message, n.path));
		total += n.octets;
	}
	assert_int_equal(total, 6);
	assert_false(exists(&s, "img.tmp-00000000"));
	assert_false(exists(&s, "img.tmp-ffffffff"));
	assert_false(exists(&s, "img.tmp-9a8b7c6d"));
	bs_image_close(img);
	scratch_free(&s);
}

static void test_a_copy_another_process_holds_locked_is_kept(void **state)
{
	(void)state;
	struct scratch s;
	scratch_new(&s, "lo-locked");
	plant(&s, "img.tmp-12345678", 100);
	/* An open-file-description lock of our own conflicts with the
	 * library's, as a running compaction's lock on its copy does. */
	char *p = at(&s, "img.tmp-12345678");
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	bs_image *img = open_image(&s, 0);
	assert_int_equal(bs_image_note_count(img), 0);
	assert_true(exists(&s, "img.tmp-12345678"));
	bs_image_close(img);
	/* Released, it is a leftover like any other. */
	close(fd);
	img = open_image(&s, 0);
	assert_int_equal(bs_image_note_count(img), 1);
	assert_false(exists(&s, "img.tmp-12345678"));
	bs_image_close(img);
	free(p);
	scratch_free(&s);
}

static void test_only_exact_names_of_regular_files_are_touched(void **state)
{
	(void)state;
	struct scratch s;
	scratch_new(&s, "lo-names");
	static const char *const names[] = {
		"img.tmp-1234567",   "img.tmp-123456789", "img.tmp-ABCDEF01", "img.tmp-1234567g",
		"img.tmp-12345678.x", "img.tmp-",         "img.tmp12345678",  "ximg.tmp-12345678",
		"im.tmp-12345678",   "other.tmp-12345678", ".img.tmp-12345678", "img.TMP-12345678",
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		plant(&s, names[i], 10);
	/* A symbolic link of the right name, to a file and to the image: the
	 * link is not followed, nor removed. */
	plant(&s, "victim", 10);
	char *victim = at(&s, "victim"), *link1 = at(&s, "img.tmp-11111111");
	char *link2 = at(&s, "img.tmp-11111112");
	assert_int_equal(symlink(victim, link1), 0);
	assert_int_equal(symlink(s.img, link2), 0);
	/* A directory, a FIFO, and a file with a second link. */
	char *d = at(&s, "img.tmp-22222222"), *fifo = at(&s, "img.tmp-33333333");
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	plant(&s, "img.tmp-44444444", 10);
	char *linked = at(&s, "img.tmp-44444444"), *other = at(&s, "kept-link");
	assert_int_equal(link(linked, other), 0);
	/* A file owned by someone else (only root can make one). */
	bool chowned = false;
	if (geteuid() == 0) {
		plant(&s, "img.tmp-55555555", 10);
		char *p = at(&s, "img.tmp-55555555");
		chowned = chown(p, 54321, 54321) == 0;
		free(p);
	}
	bs_image *img = open_image(&s, 0);
	assert_int_equal(bs_image_note_count(img), 0);
	bs_image_close(img);
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		assert_true(exists(&s, names[i]));
	assert_true(exists(&s, "victim"));
	assert_true(exists(&s, "img.tmp-11111111"));
	assert_true(exists(&s, "img.tmp-11111112"));
	assert_true(exists(&s, "img.tmp-22222222"));
	assert_true(exists(&s, "img.tmp-33333333"));
	assert_true(exists(&s, "img.tmp-44444444"));
	assert_true(exists(&s, "kept-link"));
	if (chowned)
		assert_true(exists(&s, "img.tmp-55555555"));
	/* And the image is still the image. */
	img = open_image(&s, BS_OPEN_RDONLY);
	assert_int_equal(bs_image_count(img, BS_ITER_LIBRARY), 1);
	bs_image_close(img);
	free(victim);
	free(link1);
	free(link2);
	free(d);
	free(fifo);
	free(linked);
	free(other);
	scratch_free(&s);
}

static void test_read_only_open_removes_nothing(void **state)
{
	(void)state;
	struct scratch s;
	scratch_new(&s, "lo-rdonly");
	plant(&s, "img.tmp-0000abcd", 7);
	bs_image *img = open_image(&s, BS_OPEN_RDONLY);
	assert_int_equal(bs_image_note_count(img), 0);
	assert_true(exists(&s, "img.tmp-0000abcd"));
	/* The accessor's rules: NULL, versions, past the end, outputs kept. */
	struct bs_image_note n = BS_IMAGE_NOTE_INIT, bad = {.version = 0};
	n.octets = 99;
	assert_int_equal(bs_image_note_at(img, 0, &n), BS_ENOENT);
	assert_int_equal(n.octets, 99);
	assert_int_equal(bs_image_note_at(NULL, 0, &n), BS_EINVAL);
	assert_int_equal(bs_image_note_at(img, 0, NULL), BS_EINVAL);
	assert_int_equal(bs_image_note_at(img, 0, &bad), BS_EINVAL);
	assert_int_equal(bs_image_note_count(NULL), 0);
	bs_image_close(img);
	/* Storage other than files has nothing beside it. */
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &img, NULL), BS_OK);
	assert_int_equal(bs_image_note_count(img), 0);
	bs_image_close(img);
	scratch_free(&s);
}

static void test_a_copy_that_cannot_be_removed_is_reported(void **state)
{
	(void)state;
	struct scratch s;
	scratch_new(&s, "lo-immutable");
	plant(&s, "img.tmp-deadbeef", 5);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "chattr +i '%s/img.tmp-deadbeef' 2>/dev/null", s.dir);
	if (system(cmd) != 0) {
		scratch_free(&s);
		skip(); /* no chattr, not privileged, or a file system without it */
	}
	bs_image *img = open_image(&s, 0);
	assert_int_equal(bs_image_note_count(img), 1);
	struct bs_image_note n = BS_IMAGE_NOTE_INIT;
	assert_int_equal(bs_image_note_at(img, 0, &n), BS_OK);
	assert_int_equal(n.code, BS_EIO);
	assert_int_equal(n.sys_errno, EPERM);
	assert_int_equal(n.octets, 5);
	assert_non_null(strstr(n.message, "cannot remove "));
	assert_non_null(strstr(n.message, "img.tmp-deadbeef (5 octets) left by an interrupted "
					  "compaction: Operation not permitted"));
	assert_true(exists(&s, "img.tmp-deadbeef"));
	/* The image opened all the same. */
	assert_int_equal(bs_entry_create(img, "t", NULL, NULL, NULL, 0, NULL), BS_OK);
	bs_image_close(img);
	scratch_free(&s);
}

static void test_a_finished_compaction_leaves_nothing(void **state)
{
	(void)state;
	struct scratch s;
	scratch_new(&s, "lo-compact");
	bs_image *img = open_image(&s, 0);
	bs_entry *e;
	assert_int_equal(bs_entry_create(img, "t", "a", NULL, "aaaa", 4, &e), BS_OK);
	assert_int_equal(bs_entry_create(img, "t", "b", NULL, "bbbb", 4, NULL), BS_OK);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	assert_int_equal(bs_image_compact(img), BS_OK);
	bs_image_close(img);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "test \"$(ls -A '%s')\" = img", s.dir);
	assert_int_equal(system(cmd), 0);
	img = open_image(&s, 0);
	assert_int_equal(bs_image_note_count(img), 0);
	t_assert_data(img, "t", "b", "bbbb", 4);
	bs_image_close(img);
	scratch_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writable_open_removes_and_reports_a_killed_compactions_copy),
		cmocka_unit_test(test_every_copy_is_removed_and_a_relative_path_names_it_so),
		cmocka_unit_test(test_a_copy_another_process_holds_locked_is_kept),
		cmocka_unit_test(test_only_exact_names_of_regular_files_are_touched),
		cmocka_unit_test(test_read_only_open_removes_nothing),
		cmocka_unit_test(test_a_copy_that_cannot_be_removed_is_reported),
		cmocka_unit_test(test_a_finished_compaction_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
