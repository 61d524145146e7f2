/* leftover.c - the temporary copies that interrupted replaces of a file
 * left beside it.
 *
 * f_replace() (file.c) writes the new content to PATH.tmp-XXXXXXXX in the
 * image's directory, locks it (F_OFD_SETLK) right after creating it, and
 * renames it over PATH; it runs only while its process holds the image's
 * writer lock.  A process killed in between leaves the temporary file: a
 * copy as large as the image, that nothing else ever removes.  A writer
 * holds the image's lock, so no replace of this image is under way, and a
 * file of that name that nobody has locked is such a leftover.
 *
 * Only what f_replace() could have made is touched: a name that is the
 * image's own followed by ".tmp-" and exactly 8 lowercase hexadecimal
 * digits, in the same directory, a regular file (symbolic links are never
 * followed), with one link, owned by the image's owner (f_replace() gives
 * the copy the image's owner) or by this process's user (when it could
 * not), and not locked by any process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

/* NAME is BASE BS__TMP_INFIX and 8 lowercase hexadecimal digits. */
static bool is_temp_name(const char *name, const char *base, size_t bl)
{
	size_t il = sizeof BS__TMP_INFIX - 1;
	if (strncmp(name, base, bl) || strncmp(name + bl, BS__TMP_INFIX, il))
		return false;
	const char *h = name + bl + il;
	for (int i = 0; i < 8; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return h[8] == 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Whether some process holds a lock on the regular file NAME (in DFD) that
 * ST describes: a replace that is still running.  Read-only, no-follow,
 * non-blocking open, so that the test itself cannot hang or write. */
static bool in_use(int dfd, const char *name, const struct stat *st)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return true; /* gone or unreadable: leave it */
	struct stat fst;
	bool busy = true;
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	if (!fstat(fd, &fst) && S_ISREG(fst.st_mode) && same_file(&fst, st)) {
		int rc;
		do
			rc = fcntl(fd, F_OFD_SETLK, &fl);
		while (rc && errno == EINTR);
		busy = rc != 0; /* EAGAIN/EACCES: a replace holds it */
	}
	close(fd); /* releases our lock */
	return busy;
}

static int add(struct bs__leftover **list, size_t *n, const char *path, const char *suffix,
	       uint64_t octets, int err)
{
	struct bs__leftover *l = realloc(*list, (*n + 1) * sizeof *l);
	if (!l)
		return BS_ENOMEM;
	*list = l;
	size_t pl = strlen(path), sl = strlen(suffix);
	char *p = malloc(pl + sl + 1);
	if (!p)
		return BS_ENOMEM;
	memcpy(p, path, pl);
	memcpy(p + pl, suffix, sl + 1);
	l[*n] = (struct bs__leftover){.path = p, .octets = octets, .err = err};
	(*n)++;
	return BS_OK;
}

int bs__leftovers_remove(const char *path, int image_fd, bool sync, struct bs__leftover **out,
			 size_t *n)
{
	struct bs__leftover *list = NULL;
	size_t count = 0;
	struct stat ist;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t bl = strlen(base);
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return bs__error(BS__AT(path), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	int dfd = bl && !fstat(image_fd, &ist) ?
			  open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	free(dir);
	int ddup = dfd < 0 ? -1 : fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = ddup < 0 ? NULL : fdopendir(ddup);
	if (!d) {
		/* A directory this process cannot read holds nothing it could
		 * remove: the open goes on without looking. */
		if (ddup >= 0)
			close(ddup);
		if (dfd >= 0)
			close(dfd);
		*out = NULL;
		*n = 0;
		return BS_OK;
	}
	int rc = BS_OK;
	bool removed = false;
	uid_t me = geteuid();
	struct dirent *de;
	while (!rc && (errno = 0, de = readdir(d))) {
		const char *name = de->d_name;
		struct stat st;
		if (!is_temp_name(name, base, bl) ||
		    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
		    st.st_nlink != 1 || (st.st_uid != ist.st_uid && st.st_uid != me) ||
		    same_file(&st, &ist) || in_use(dfd, name, &st))
			continue;
		/* The name may have changed hands since it was looked at. */
		struct stat again;
		if (fstatat(dfd, name, &again, AT_SYMLINK_NOFOLLOW) || !same_file(&again, &st))
			continue;
		int err = unlinkat(dfd, name, 0) ? errno : 0;
		removed |= err == 0;
		rc = add(&list, &count, path, name + bl, (uint64_t)st.st_size, err);
	}
	closedir(d);
	if (!rc && removed && sync)
		fsync(dfd); /* the removal is not what makes anything durable */
	close(dfd);
	if (rc) {
		bs__leftovers_free(list, count);
		return bs__error(BS__AT(path), BS_NO_OFFSET, rc, "out of memory");
	}
	*out = list;
	*n = count;
	return BS_OK;
}

void bs__leftovers_free(struct bs__leftover *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].path);
	free(l);
}
