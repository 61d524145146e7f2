/* backend_blk.c - images on block devices, and on regular files treated as
 * fixed-size devices ("blk:///path?size=N").
 *
 * The storage never grows: its size comes from the device (BLKGETSIZE64) or
 * the size given for a file, and a write past it is BS_ENOSPC.  Writes are
 * whole logical blocks (BLKSSZGET; 512 for files unless bs=N): partial
 * blocks are read, merged and written back as one block write, which a
 * device performs atomically (see blockio.c).  O_DIRECT is optional and
 * uses aligned bounce buffers for reads and writes alike.
 *
 * Writers take an exclusive OFD lock on the node, and open a real device
 * with O_EXCL.  Both protect only against processes on this host: shared
 * storage needs cluster locking on top (docs/SCALING.md). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"

struct blk_be {
	int fd;
	char *label;
	unsigned flags;
	uint64_t size;
	bool is_dev;
	bool direct;
	struct bs__blockio io;
};

/* Whole-block transfers; past a regular file's end a "device" reads zeros. */
static int raw_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct blk_be *b = ctx;
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(b->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bs__error_errno(b->label, errno, off, "read");
		if (n == 0) {
			if (b->is_dev)
				return bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_EIO,
						   "device ended early at offset %llu",
						   (unsigned long long)off);
			memset(p, 0, len);
			return BS_OK;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return BS_OK;
}

static int raw_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct blk_be *b = ctx;
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(b->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bs__error_errno(b->label, errno, off, "write");
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return BS_OK;
}

static int b_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct blk_be *b = ctx;
	if (off > b->size || len > b->size - off)
		return bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_ECORRUPT,
				   "read past the end of the %llu-octet device at offset %llu",
				   (unsigned long long)b->size, (unsigned long long)off);
	if (!b->direct)
		return raw_read(b, buf, len, off);
	return bs__blockio_read(&b->io, buf, len, off);
}

static int b_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct blk_be *b = ctx;
	if (off > b->size || len > b->size - off)
		return bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_ENOSPC,
				   "write at offset %llu past the end of the %llu-octet device "
				   "(a device does not grow)",
				   (unsigned long long)off, (unsigned long long)b->size);
	return bs__blockio_write(&b->io, buf, len, off);
}

static int b_sync(void *ctx)
{
	struct blk_be *b = ctx;
	if (b->flags & BS_OPEN_NOSYNC)
		return BS_OK;
	if (fdatasync(b->fd))
		return bs__error_errno(b->label, errno, BS_NO_OFFSET, "fdatasync");
	return BS_OK;
}

static int b_size(void *ctx, uint64_t *out)
{
	*out = ((struct blk_be *)ctx)->size;
	return BS_OK;
}

static int b_lock(void *ctx, int how)
{
	struct blk_be *b = ctx;
	struct flock fl = {.l_type = how == BS_LOCK_NONE ? F_UNLCK : F_WRLCK,
			   .l_whence = SEEK_SET};
	int rc;
	do
		rc = fcntl(b->fd, (how & BS_LOCK_WAIT) ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
	while (rc && errno == EINTR);
	if (rc && how != BS_LOCK_NONE) {
		if (errno == EAGAIN || errno == EACCES)
			return bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_ELOCKED,
					   "locked by another writer on this host");
		return bs__error_errno(b->label, errno, BS_NO_OFFSET, "lock");
	}
	return BS_OK;
}

static void b_close(void *ctx)
{
	struct blk_be *b = ctx;
	if (b->fd >= 0)
		close(b->fd);
	bs__blockio_free(&b->io);
	free(b->label);
	free(b);
}

static const struct bs_backend_ops blk_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = b_read,
	.write_at = b_write,
	.sync = b_sync,
	.size = b_size,
	.lock = b_lock,
	.close = b_close,
};

/* Opens PATH; a writer opens a device with O_EXCL, which fails with EBUSY
 * while it is mounted or claimed by another exclusive opener. */
static int open_node(struct blk_be *b, const char *path, unsigned flags, bool create)
{
	int base = O_CLOEXEC | (b->direct ? O_DIRECT : 0);
	if (flags & BS_OPEN_RDONLY)
		base |= O_RDONLY;
	else
		base |= O_RDWR;
	struct stat st;
	bool dev = stat(path, &st) == 0 && S_ISBLK(st.st_mode);
	int of = base | (dev && !(flags & BS_OPEN_RDONLY) ? O_EXCL : 0) |
		 (!dev && create ? O_CREAT : 0);
	for (;;) {
		b->fd = open(path, of, 0600);
		if (b->fd >= 0)
			return BS_OK;
		if (errno == EINTR)
			continue;
		if (errno == EBUSY && (flags & BS_OPEN_WAIT)) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		if (errno == EBUSY)
			return bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_ELOCKED,
					   "device in use (mounted, or opened exclusively by "
					   "another process on this host)");
		if (errno == EINVAL && b->direct)
			return bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_EUNSUPPORTED,
					   "O_DIRECT is not supported here");
		return bs__error_errno(b->label, errno, BS_NO_OFFSET, "open");
	}
}

int bs_backend_blk(const char *path, const char *label, unsigned flags,
		   const struct bs_blk_opts *opts, struct bs_backend **out)
{
	static const struct bs_blk_opts none = BS_BLK_OPTS_INIT;
	if (!opts)
		opts = &none;
	if (!path || !out || opts->version != BS_BLK_OPTS_VERSION)
		return bs__error(BS__AT("(block device)"), BS_NO_OFFSET, BS_EINVAL,
				 "no path, no output or options of an unknown version");
	struct blk_be *b = calloc(1, sizeof *b);
	if (!b || !(b->label = strdup(label ? label : path))) {
		free(b);
		return bs__error(BS__AT(path), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	b->fd = -1;
	b->flags = flags;
	b->direct = opts->direct;
	int rc = open_node(b, path, flags, (flags & BS_OPEN_CREATE) && opts->size);
	if (rc)
		goto fail;
	struct stat st;
	if (fstat(b->fd, &st)) {
		rc = bs__error_errno(b->label, errno, BS_NO_OFFSET, "fstat");
		goto fail;
	}
	uint32_t bsz = opts->block_size;
	if (S_ISBLK(st.st_mode)) {
		int ssz = 0;
		b->is_dev = true;
		if (ioctl(b->fd, BLKGETSIZE64, &b->size)) {
			rc = bs__error_errno(b->label, errno, BS_NO_OFFSET, "BLKGETSIZE64");
			goto fail;
		}
		if (ioctl(b->fd, BLKSSZGET, &ssz) || ssz <= 0) {
			rc = bs__error_errno(b->label, errno ? errno : EINVAL, BS_NO_OFFSET, "BLKSSZGET");
			goto fail;
		}
		/* A larger block size than the device's is allowed, never smaller. */
		if (bsz < (uint32_t)ssz)
			bsz = (uint32_t)ssz;
		if (opts->size && opts->size < b->size)
			b->size = opts->size;
	} else if (S_ISREG(st.st_mode)) {
		b->size = opts->size ? opts->size : (uint64_t)st.st_size;
		if (!bsz)
			bsz = 512;
		if (!b->size) {
			rc = bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_EINVAL,
					 "an empty file has no device size (give size=N)");
			goto fail;
		}
		/* A writer makes the file as large as the device it plays. */
		if (!(flags & BS_OPEN_RDONLY) && (uint64_t)st.st_size < b->size &&
		    ftruncate(b->fd, (off_t)b->size)) {
			rc = bs__error_errno(b->label, errno, BS_NO_OFFSET, "ftruncate to the device size");
			goto fail;
		}
	} else {
		rc = bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_EINVAL,
				 "neither a block device nor a regular file");
		goto fail;
	}
	if (bsz < 1 || bsz > 65536 || (bsz & (bsz - 1))) {
		rc = bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_EINVAL,
				 "block size %u is not a power of two up to 65536", bsz);
		goto fail;
	}
	if (b->size % bsz) {
		/* The last partial block cannot be written whole: leave it out. */
		b->size -= b->size % bsz;
	}
	if (bs__blockio_init(&b->io, bsz)) {
		rc = bs__error(BS__AT(b->label), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto fail;
	}
	b->io.ctx = b;
	b->io.pread = raw_read;
	b->io.pwrite = raw_write;
	return bs_backend_new(&blk_ops, b, bsz, out);
fail:
	b_close(b);
	return rc;
}
