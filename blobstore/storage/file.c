/* file.c - images in regular files (block devices: blk.c).
 *
 * Writers hold an exclusive open-file-description lock (F_OFD_SETLK) on the
 * image for as long as it is open.  Compaction and format replace the file
 * atomically: a locked temporary file in the same directory, fsync, rename,
 * directory fsync.  What a killed replace left there the next writer's
 * open removes (leftover.c). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

struct file_be {
	int fd;
	char *path;
	unsigned flags;
};

static int f_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct file_be *f = ctx;
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bs__error_errno(f->path, errno, off, "read");
		if (n == 0)
			return bs__error(BS__AT(f->path), BS_NO_OFFSET, BS_ECORRUPT,
					   "read past the end of the storage at offset %llu",
					   (unsigned long long)off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return BS_OK;
}

static int f_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct file_be *f = ctx;
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bs__error_errno(f->path, errno, off, "write");
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return BS_OK;
}

static int f_writev(void *ctx, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct file_be *f = ctx;
	struct iovec v[8];
	if (iovcnt < 1 || iovcnt > 8)
		return bs__error(BS__AT(f->path), BS_NO_OFFSET, BS_EINVAL, "bad vector");
	memcpy(v, iov, (size_t)iovcnt * sizeof *v);
	struct iovec *p = v;
	int n = iovcnt;
	while (n) {
		ssize_t k = pwritev(f->fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return bs__error_errno(f->path, errno, off, "write");
		off += (uint64_t)k;
		/* Short write: skip what went, go on with the rest. */
		while (n && (size_t)k >= p->iov_len) {
			k -= (ssize_t)p->iov_len;
			p++;
			n--;
		}
		if (n) {
			p->iov_base = (uint8_t *)p->iov_base + k;
			p->iov_len -= (size_t)k;
		}
	}
	return BS_OK;
}

static int f_sync(void *ctx)
{
	struct file_be *f = ctx;
	if (f->flags & BS_OPEN_NOSYNC)
		return BS_OK;
	if (fdatasync(f->fd))
		return bs__error_errno(f->path, errno, BS_NO_OFFSET, "fdatasync");
	return BS_OK;
}

static int f_size(void *ctx, uint64_t *out)
{
	struct file_be *f = ctx;
	struct stat st;
	if (fstat(f->fd, &st))
		return bs__error_errno(f->path, errno, BS_NO_OFFSET, "fstat");
	*out = (uint64_t)st.st_size;
	return BS_OK;
}

static int f_resize(void *ctx, uint64_t size)
{
	struct file_be *f = ctx;
	if (ftruncate(f->fd, (off_t)size))
		return bs__error_errno(f->path, errno, size, "ftruncate");
	return BS_OK;
}

static int f_reserve(void *ctx, uint64_t total)
{
	struct file_be *f = ctx;
	if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)total))
		return bs__error_errno(f->path, errno, BS_NO_OFFSET, "fallocate");
	return BS_OK;
}

static int ofd_lock(int fd, bool wait, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET};
	int rc;
	do
		rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
	while (rc && errno == EINTR);
	return rc;
}

static int f_lock(void *ctx, int how)
{
	struct file_be *f = ctx;
	if (how == BS_LOCK_NONE) {
		ofd_lock(f->fd, false, F_UNLCK);
		return BS_OK;
	}
	for (int tries = 0; tries < 100; tries++) {
		if (ofd_lock(f->fd, how & BS_LOCK_WAIT, F_WRLCK)) {
			if (errno == EAGAIN || errno == EACCES)
				return bs__error(BS__AT(f->path), BS_NO_OFFSET, BS_ELOCKED,
						   "locked by another writer");
			return bs__error_errno(f->path, errno, BS_NO_OFFSET, "lock");
		}
		/* The lock we waited for may be on a file that a compaction
		 * replaced meanwhile: then lock the new one. */
		struct stat a, b;
		if (fstat(f->fd, &a))
			return bs__error_errno(f->path, errno, BS_NO_OFFSET, "fstat");
		if (stat(f->path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return BS_OK;
		int nfd = open(f->path, O_RDWR | O_CLOEXEC);
		if (nfd < 0)
			return bs__error_errno(f->path, errno, BS_NO_OFFSET, "reopen after replace");
		close(f->fd);
		f->fd = nfd;
	}
	return bs__error(BS__AT(f->path), BS_NO_OFFSET, BS_ELOCKED, "image keeps being replaced");
}

static int fsync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return ENOMEM;
	int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (dfd < 0)
		return errno;
	int rc = fsync(dfd) ? errno : 0;
	close(dfd);
	return rc;
}

static int f_replace(void *ctx, const void *img, size_t len)
{
	struct file_be *f = ctx;
	size_t pl = strlen(f->path);
	char *tmp = malloc(pl + 32);
	if (!tmp)
		return bs__error(BS__AT(f->path), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	uint32_t r = 0;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (uint32_t)getpid();
	snprintf(tmp, pl + 32, "%s" BS__TMP_INFIX "%08x", f->path, r);
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int rc = bs__error_errno(tmp, errno, BS_NO_OFFSET, "create temporary file");
		free(tmp);
		return rc;
	}
	struct stat st;
	int rc = BS_OK;
	const char *what = NULL;
	/* Locked at once: before anyone can open it by the image's name, and
	 * for as long as it is in use, so that the next writer's open tells it
	 * from the leftover of a replace that was killed (leftover.c). */
	if (ofd_lock(fd, false, F_WRLCK))
		what = "lock temporary file";
	if (!what && fstat(f->fd, &st) == 0) {
		if (fchmod(fd, st.st_mode & 07777))
			what = "fchmod";
		if (!what && fchown(fd, st.st_uid, st.st_gid) && errno != EPERM)
			what = "fchown";
	}
	const uint8_t *p = img;
	size_t left = len;
	uint64_t off = 0;
	while (!what && left) {
		ssize_t n = pwrite(fd, p, left, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			what = "write temporary file";
		else {
			p += n;
			left -= (size_t)n;
			off += (uint64_t)n;
		}
	}
	if (!what && !(f->flags & BS_OPEN_NOSYNC) && fsync(fd))
		what = "fsync temporary file";
	if (!what && rename(tmp, f->path))
		what = "rename";
	if (what) {
		rc = bs__error_errno(f->path, errno, BS_NO_OFFSET, what);
		close(fd);
		unlink(tmp);
		free(tmp);
		return rc;
	}
	free(tmp);
	if (!(f->flags & BS_OPEN_NOSYNC)) {
		int e = fsync_dir(f->path);
		if (e) {
			close(f->fd);
			f->fd = fd;
			return bs__error_errno(f->path, e, BS_NO_OFFSET, "fsync directory");
		}
	}
	close(f->fd); /* releases the lock on the old file */
	f->fd = fd;
	return BS_OK;
}

static void f_close(void *ctx)
{
	struct file_be *f = ctx;
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f);
}

static const struct bs_backend_ops file_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = f_read,
	.write_at = f_write,
	.sync = f_sync,
	.size = f_size,
	.resize = f_resize,
	.reserve = f_reserve,
	.lock = f_lock,
	.replace = f_replace,
	.close = f_close,
	.writev_at = f_writev,
};

bool bs__file_replaced(const struct bs_backend *be)
{
	struct file_be *f = bs_backend_ctx(be, &file_ops);
	struct stat st;
	/* A compaction renamed a new file over the image: the one this handle
	 * has open has no name any more. */
	return f && fstat(f->fd, &st) == 0 && st.st_nlink == 0;
}

int bs__backend_tidy(struct bs_backend *be, struct bs__leftover **out, size_t *n)
{
	struct file_be *f = be ? bs_backend_ctx(be, &file_ops) : NULL;
	if (!f || (f->flags & BS_OPEN_RDONLY)) {
		*out = NULL;
		*n = 0;
		return BS_OK;
	}
	return bs__leftovers_remove(f->path, f->fd, !(f->flags & BS_OPEN_NOSYNC), out, n);
}

int bs_backend_file(const char *path, unsigned flags, struct bs_backend **out)
{
	if (!path || !out)
		return bs__error(BS__AT("(file)"), BS_NO_OFFSET, BS_EINVAL, "no path");
	struct stat pst;
	if (path && stat(path, &pst) == 0 && S_ISBLK(pst.st_mode))
		return bs_backend_blk(path, path, flags, NULL, out);
	struct file_be *f = calloc(1, sizeof *f);
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return bs__error(BS__AT(path), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	int oflags = O_CLOEXEC;
	if (flags & BS_OPEN_RDONLY)
		oflags |= O_RDONLY;
	else
		oflags |= O_RDWR | ((flags & BS_OPEN_CREATE) ? O_CREAT : 0);
	f->fd = open(path, oflags, 0600);
	if (f->fd < 0) {
		int rc = bs__error_errno(path, errno, BS_NO_OFFSET, "open");
		f_close(f);
		return rc;
	}
	f->flags = flags;
	struct stat st;
	if (fstat(f->fd, &st)) {
		int rc = bs__error_errno(path, errno, BS_NO_OFFSET, "fstat");
		f_close(f);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		f_close(f);
		return bs__error(BS__AT(path), BS_NO_OFFSET, BS_EINVAL,
				   "neither a regular file nor a block device");
	}
	return bs_backend_new(&file_ops, f, 1, out);
}
