/* state.c - where blobstore-vtpm keeps the TPM's state (vtpm.h).
 *
 *   --image URI (own command line)   that image; created only with --create
 *   --tpmstate dir=DIR (swtpm's)     DIR/blobstore-vtpm.permall, and swtpm's
 *                                    lock DIR/.lock; on the first start in a
 *                                    DIR holding swtpm's state files they are
 *                                    imported (crash-safely, the files kept)
 *   backend-uri=file://PATH          an image on the file or block device
 *   backend-uri=URI                  any image URI (nbd://, ...)
 *
 * A new image and an import are built under a temporary name in DIR and
 * renamed into place once complete and synced, so that a crash leaves no
 * image or a whole one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blobstore/tpm.h>
#include "vtpm.h"

static const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return 1;
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* All of FD (at most MAX octets) into a malloc()ed buffer. */
static int read_fd(int fd, size_t max, uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *b = malloc(cap);
	if (!b)
		return -1;
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				explicit_bzero(b, n);
				free(b);
				errno = EFBIG;
				return -1;
			}
			uint8_t *nb = malloc(cap * 2);
			if (!nb) {
				explicit_bzero(b, n);
				free(b);
				return -1;
			}
			memcpy(nb, b, n);
			explicit_bzero(b, n);
			free(b);
			b = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, b + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			explicit_bzero(b, n);
			free(b);
			errno = e;
			return -1;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*out = b;
	*len = n;
	return 0;
}

/* The content of a key option's file or descriptor. */
static int read_key_source(const struct vtpm_keyopt *k, const char *opt, uint8_t **buf,
			   size_t *len, char *err, size_t errlen)
{
	int fd = k->fd;
	if (k->path) {
		fd = open(k->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(err, errlen, "%s: %s: %s", opt, k->path, strerror(errno));
	}
	int rc = read_fd(fd, 65536, buf, len);
	int e = errno;
	/* swtpm closes a descriptor it read a key from. */
	close(fd);
	if (rc)
		return fail(err, errlen, "%s: %s: %s", opt, k->path ? k->path : "file descriptor",
			    strerror(e));
	if (k->remove && k->path && unlink(k->path))
		return fail(err, errlen, "%s: removing %s: %s", opt, k->path, strerror(errno));
	return 0;
}

/* swtpm's --key / --migration-key: the AES key swtpm would use, and, for
 * --key, the image key that stands for it (a 256-bit key as it is, a
 * 128-bit key or a passphrase through the image's passphrase KDF). */
static int swtpm_key(const struct vtpm_keyopt *k, const char *opt, struct bs_swtpm_key *out,
		     bs_key **image_key, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	if (read_key_source(k, opt, &buf, &len, err, errlen))
		return 1;
	size_t keylen = k->keylen ? k->keylen : 16; /* swtpm's default mode: aes-128-cbc */
	bool pw = k->src == VTPM_KEY_PWDFILE || k->src == VTPM_KEY_PWDFD;
	int rc = pw ? bs_swtpm_key_from_passphrase(buf, len, k->kdf, keylen, out)
		    : bs_swtpm_key_parse(buf, len, k->format, keylen, out);
	if (!rc && image_key) {
		if (pw)
			rc = bs_key_from_passphrase(buf, len, image_key);
		else if (out->len == 32)
			rc = bs_key_from_bytes(out->bytes, 32, image_key);
		else
			rc = bs_key_from_passphrase(out->bytes, out->len, image_key);
	}
	explicit_bzero(buf, len);
	free(buf);
	if (rc) {
		bs_swtpm_key_wipe(out);
		return fail(err, errlen, "%s: %s", opt, last_error());
	}
	return 0;
}

int vtpm_state_prepare(struct vtpm_state *st, const struct vtpm_config *cfg, char *err,
		       size_t errlen)
{
	memset(st, 0, sizeof *st);
	st->cfg = cfg;
	st->dir_lock = -1;
	if (cfg->state_dir) {
		st->dir = cfg->state_dir;
		st->image = join(cfg->state_dir, VTPM_DIR_IMAGE);
		st->local = true;
	} else if (cfg->image) {
		st->image = strdup(cfg->image);
		st->local = !strstr(cfg->image, "://") && strncmp(cfg->image, "nbd:", 4);
	}
	if (!st->image && (cfg->state_dir || cfg->image))
		return fail(err, errlen, "out of memory");
	const struct vtpm_keyopt *k = &cfg->key;
	if (k->src != VTPM_KEY_NONE && k->swtpm) {
		if (swtpm_key(k, "--key", &st->swtpm_key, &st->key, err, errlen))
			return 1;
		st->has_swtpm_key = true;
	} else if (k->src != VTPM_KEY_NONE) {
		int rc = k->src == VTPM_KEY_FILE ? bs_key_from_file(k->path, &st->key)
			 : k->src == VTPM_KEY_PWDFILE ? bs_key_from_passphrase_file(k->path, &st->key)
						      : bs_key_from_passphrase_fd(k->fd, &st->key);
		if (rc)
			return fail(err, errlen, "%s", last_error());
	}
	/* --kdf-max-*: what the image's bs.key may ask the passphrase KDF to
	 * cost (an image asking for more is refused before deriving). */
	struct bs_kdf_limits lim = {.version = BS_KDF_LIMITS_VERSION,
				    .pbkdf2_iter_max = cfg->kdf_max_iter,
				    .scrypt_mem_max = cfg->kdf_max_mem,
				    .scrypt_work_max = cfg->kdf_max_work};
	if (st->key && bs_key_set_kdf_limits(st->key, &lim))
		return fail(err, errlen, "%s", last_error());
	if (cfg->migkey.src != VTPM_KEY_NONE) {
		if (swtpm_key(&cfg->migkey, "--migration-key", &st->migkey, NULL, err, errlen))
			return 1;
		st->has_migkey = true;
	}
	return 0;
}

void vtpm_state_free(struct vtpm_state *st)
{
	vtpm_state_unlock(st);
	bs_key_free(st->key);
	bs_swtpm_key_wipe(&st->swtpm_key);
	bs_swtpm_key_wipe(&st->migkey);
	free(st->image);
	st->image = NULL;
	st->key = NULL;
}

void vtpm_state_unlock(struct vtpm_state *st)
{
	if (st->dir_lock >= 0)
		close(st->dir_lock);
	st->dir_lock = -1;
}

void vtpm_state_discard(struct vtpm_state *st)
{
	if (st->created && st->local && st->image) {
		unlink(st->image);
		vtpm_log(VTPM_LOG_INFO, "state: removed %s, created by this failed start", st->image);
	}
	st->created = false;
}

/* swtpm's lock on DIR. */
static int lock_dir(struct vtpm_state *st, char *err, size_t errlen)
{
	if (st->dir_lock >= 0)
		return 0;
	char *path = join(st->dir, VTPM_DIR_LOCK);
	if (!path)
		return fail(err, errlen, "out of memory");
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd < 0) {
		fail(err, errlen, "could not open lockfile %s: %s", path, strerror(errno));
		free(path);
		return 1;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		int busy = errno == EAGAIN || errno == EACCES;
		fail(err, errlen, "could not lock access to lockfile %s: %s (is another swtpm or "
				  "blobstore-vtpm serving %s?)", path, strerror(errno), st->dir);
		close(fd);
		free(path);
		return busy ? 2 : 1;
	}
	free(path);
	st->dir_lock = fd;
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* The libtpms blobs swtpm keeps in a state directory. */
static const char *const blob_names[] = {BS_TPM_PERMALL, BS_TPM_VOLATILE, BS_TPM_SAVESTATE};
#define NBLOBS 3

struct blobs {
	uint8_t *data[NBLOBS];
	size_t len[NBLOBS];
	bool present[NBLOBS];
	char what[NBLOBS][96];
};

static void blobs_free(struct blobs *b)
{
	for (int i = 0; i < NBLOBS; i++)
		bs_swtpm_free(b->data[i], b->len[i]);
	memset(b, 0, sizeof *b);
}

/* Reads and decodes swtpm's files in DIR. */
static int read_swtpm_dir(struct vtpm_state *st, struct blobs *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof *b);
	for (int i = 0; i < NBLOBS; i++) {
		char fname[64];
		snprintf(fname, sizeof fname, "tpm2-00.%s", blob_names[i]);
		char *path = join(st->dir, fname);
		if (!path)
			return fail(err, errlen, "out of memory");
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			free(path);
			continue;
		}
		struct stat sb;
		uint8_t *buf = NULL;
		size_t len = 0;
		if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode) ||
		    read_fd(fd, BS_SWTPM_MAX_BLOB, &buf, &len)) {
			fail(err, errlen, "%s: %s", path,
			     fd >= 0 && !S_ISREG(sb.st_mode) ? "not a regular file" : strerror(errno));
			if (fd >= 0)
				close(fd);
			free(path);
			return 1;
		}
		close(fd);
		struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
		int rc = bs_swtpm_blob_inspect(buf, len, 0, path, &info);
		if (!rc && info.encrypted && !st->has_swtpm_key) {
			fail(err, errlen, "%s is encrypted: give its key with --key (as swtpm was "
					  "given it)", path);
			rc = -100;
		} else if (!rc)
			rc = bs_swtpm_blob_decode(buf, len, info.encrypted ? &st->swtpm_key : NULL, 0,
						  path, &b->data[i], &b->len[i], &info);
		free(buf);
		free(path);
		if (rc == -100)
			return 1;
		if (rc)
			return fail(err, errlen, "%s", last_error());
		b->present[i] = true;
		snprintf(b->what[i], sizeof b->what[i], "tpm2-00.%s (%zu octets%s)", blob_names[i],
			 b->len[i], info.encrypted ? ", encrypted" : "");
	}
	return 0;
}

/* Builds an image holding the blobs B (none: an empty TPM state) at a
 * temporary name in DIR and renames it into place. */
static int build_image(struct vtpm_state *st, const struct blobs *b, char *err, size_t errlen)
{
	char *tmp = join(st->dir, "." VTPM_DIR_IMAGE ".tmp");
	if (!tmp)
		return fail(err, errlen, "out of memory");
	unlink(tmp); /* left by a crash in the middle of an earlier attempt */
	unsigned nosync = st->cfg->nosync ? BS_OPEN_NOSYNC : 0;
	bs_image *img = NULL;
	int rc = bs_image_open(tmp, BS_OPEN_CREATE | BS_OPEN_EXCL | nosync, &img);
	if (!rc && st->key)
		rc = bs_image_init_encryption(img, st->key, NULL);
	for (int i = 0; !rc && b && i < NBLOBS; i++)
		if (b->present[i] && b->len[i])
			rc = bs_tpm_store(img, 0, blob_names[i], b->data[i], b->len[i]);
	if (rc)
		fail(err, errlen, "%s", last_error());
	bs_image_close(img);
	mode_t mode = st->cfg->has_state_mode ? st->cfg->state_mode : 0640;
	if (!rc && chmod(tmp, mode))
		rc = fail(err, errlen, "%s: chmod: %s", tmp, strerror(errno));
	if (!rc && rename(tmp, st->image))
		rc = fail(err, errlen, "%s: %s", st->image, strerror(errno));
	if (!rc && !nosync && sync_dir(st->dir))
		rc = fail(err, errlen, "%s: fsync: %s", st->dir, strerror(errno));
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* The image's tpm2.libtpms blobs into B. */
static int read_image_blobs(bs_image *img, struct blobs *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof *b);
	for (int i = 0; i < NBLOBS; i++) {
		void *p = NULL;
		size_t len = 0;
		int rc = bs_tpm_load(img, 0, blob_names[i], &p, &len);
		if (rc == BS_ENOENT)
			continue;
		if (rc) {
			blobs_free(b);
			return fail(err, errlen, "%s", last_error());
		}
		b->data[i] = p;
		b->len[i] = len;
		b->present[i] = true;
	}
	return 0;
}

static bool has_tpm_entries(bs_image *img)
{
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));)
		if (!strcmp(bs_entry_type(e), BS_TPM_TYPE))
			return true;
	return false;
}

/* Is the local file or device at PATH empty or all zero (no image yet:
 * Proxmox and swtpm_setup create such volumes)?  Every octet is read, up to
 * 64 MiB: a zeroed start with data behind it is a damaged image, not a
 * blank one. */
static bool is_blank(const char *path)
{
	uint8_t b[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool blank = true;
	for (off_t off = 0; blank && off < (64 << 20);) {
		ssize_t n = pread(fd, b, sizeof b, off);
		if (n < 0)
			blank = false;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (b[i]) {
				blank = false;
				break;
			}
		off += n;
	}
	close(fd);
	return blank;
}

/* Is the local file at PATH swtpm's linear store (file:// backend)? */
static bool is_swtpm_linear(const char *path)
{
	static const uint8_t magic[8] = {'n', 'i', 'l', 'm', 'p', 't', 'w', 's'}; /* "swtpmlin", LE */
	uint8_t b[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool is = pread(fd, b, sizeof b, 0) == (ssize_t)sizeof b && !memcmp(b, magic, sizeof b);
	close(fd);
	return is;
}

/* The image's key: load it, or set encryption up (see vtpm.h and
 * blobstore-vtpm(8) for what a key on an image without encryption does). */
static int apply_key(struct vtpm_state *st, bs_image **imgp, bool rdonly, char *err, size_t errlen)
{
	bs_image *img = *imgp;
	const char *label = st->image;
	if (bs_image_is_encrypted(img)) {
		if (!st->key)
			return fail(err, errlen, "%s: the TPM state is encrypted; give its key (%s)",
				    label, st->cfg->swtpm ? "--key" : "--key-file, --passphrase-file "
								       "or --passphrase-fd");
		if (bs_image_set_key(img, st->key))
			return fail(err, errlen, "%s", last_error());
		return 0;
	}
	if (!st->key)
		return 0;
	/* Encrypted entries, and the key entry lost or damaged: the library
	 * explains (BS_ECORRUPT); never a new key over them. */
	if (bs_image_set_key(img, st->key) == BS_ECORRUPT)
		return fail(err, errlen, "%s", last_error());
	if (rdonly)
		return fail(err, errlen, "%s: a key is given but the state is not encrypted", label);
	bool fresh = st->created && !has_tpm_entries(img);
	if (fresh || (st->cfg->swtpm && !has_tpm_entries(img))) {
		if (bs_image_init_encryption(img, st->key, NULL))
			return fail(err, errlen, "%s", last_error());
		vtpm_log(VTPM_LOG_INFO, "state: %s: encryption set up", label);
		return 0;
	}
	if (!st->cfg->swtpm)
		return fail(err, errlen, "%s: the image has no encryption set up, and a key was "
					 "given; set it up first with 'blobstore encrypt-init %s' "
					 "(existing entries stay in the clear until rewritten), or "
					 "give no key", label, label);
	if (!st->dir)
		return fail(err, errlen, "%s holds TPM state in the clear and --key was given: swtpm "
					 "would encrypt it from now on, which blobstore-vtpm does "
					 "crash-safely only for --tpmstate dir=; set encryption up with "
					 "'blobstore encrypt-init' and re-import the TPM, or give no "
					 "--key", label);
	/* swtpm encrypts its state from the first start with --key on: the
	 * image is rebuilt encrypted beside the old one and renamed over it. */
	struct blobs b;
	if (read_image_blobs(img, &b, err, errlen))
		return 1;
	bs_image_close(img);
	*imgp = NULL;
	int rc = build_image(st, &b, err, errlen);
	blobs_free(&b);
	if (rc)
		return 1;
	vtpm_log(VTPM_LOG_INFO, "state: %s: the TPM state, in the clear until now, is encrypted "
				"(--key given)", label);
	if (bs_image_open(st->image, st->cfg->nosync ? BS_OPEN_NOSYNC : 0, imgp))
		return fail(err, errlen, "%s", last_error());
	if (bs_image_set_key(*imgp, st->key))
		return fail(err, errlen, "%s", last_error());
	return 0;
}

/* What the library's open did besides opening: it removed the copy a
 * compaction killed midway left beside the image (one line each). */
static void log_notes(bs_image *img)
{
	for (size_t i = 0; i < bs_image_note_count(img); i++) {
		struct bs_image_note n = BS_IMAGE_NOTE_INIT;
		if (!bs_image_note_at(img, i, &n))
			vtpm_log(VTPM_LOG_INFO, "state: %s: %s", bs_image_label(img), n.message);
	}
}

int vtpm_state_open(struct vtpm_state *st, bool rdonly, bs_image **out, char *err, size_t errlen)
{
	const struct vtpm_config *cfg = st->cfg;
	unsigned flags = (cfg->nosync ? BS_OPEN_NOSYNC : 0) | (rdonly ? BS_OPEN_RDONLY : 0);
	struct stat sb;
	bs_image *img = NULL;
	if (!st->image)
		return fail(err, errlen, "no TPM state given (--tpmstate, or TPM_PATH in the "
					 "environment)");
	if (st->dir) {
		if (stat(st->dir, &sb) || !S_ISDIR(sb.st_mode))
			return fail(err, errlen, "%s: %s", st->dir,
				    errno && !S_ISDIR(sb.st_mode) ? strerror(errno) : "not a directory");
		int lrc;
		if (!rdonly && (lrc = lock_dir(st, err, errlen)))
			return lrc;
		if (stat(st->image, &sb)) {
			if (errno != ENOENT)
				return fail(err, errlen, "%s: %s", st->image, strerror(errno));
			/* No image yet: import swtpm's files, or start a new TPM. */
			if ((lrc = lock_dir(st, err, errlen)))
				return lrc;
			struct blobs b;
			if (read_swtpm_dir(st, &b, err, errlen))
				return 1;
			int rc = build_image(st, b.present[0] ? &b : NULL, err, errlen);
			if (!rc && b.present[0])
				vtpm_log(VTPM_LOG_INFO,
					 "state: imported swtpm's state from %s: %s%s%s%s%s into %s%s; "
					 "swtpm's files are kept", st->dir, b.what[0],
					 b.present[1] ? ", " : "", b.what[1], b.present[2] ? ", " : "",
					 b.what[2], st->image, st->key ? ", encrypted" : "");
			else if (!rc)
				vtpm_log(VTPM_LOG_INFO, "state: created %s%s", st->image,
					 st->key ? " (encrypted)" : "");
			st->created = !rc && !b.present[0];
			blobs_free(&b);
			if (rc)
				return 1;
			if (rdonly)
				vtpm_state_unlock(st);
		}
		if (bs_image_open(st->image, flags, &img)) {
			int busy = bs_error_last(NULL, NULL) == BS_ELOCKED;
			fail(err, errlen, "%s", last_error());
			if (!rdonly)
				vtpm_state_unlock(st);
			return busy ? 2 : 1;
		}
		/* swtpm gives its files mode= at every write: the image gets it
		 * at every start (libvirt passes mode=0600 after swtpm_setup
		 * created the state with the default). */
		if (!rdonly && cfg->has_state_mode && !stat(st->image, &sb) &&
		    (sb.st_mode & 07777) != cfg->state_mode && chmod(st->image, cfg->state_mode))
			vtpm_log(VTPM_LOG_INFO, "state: %s: chmod %o: %s", st->image,
				 (unsigned)cfg->state_mode, strerror(errno));
	} else {
		bool exists = !st->local || !stat(st->image, &sb);
		if (st->local && exists && S_ISDIR(sb.st_mode))
			return fail(err, errlen, "%s is a directory: give --tpmstate dir=%s",
				    st->image, st->image);
		if (st->local && exists && is_swtpm_linear(st->image))
			return fail(err, errlen, "%s holds swtpm's linear state store (file:// "
						 "backend), which blobstore-vtpm does not import: "
						 "move the TPM with 'swtpm_ioctl --save' and --load, or "
						 "through a state directory and 'blobstore import-swtpm'",
				    st->image);
		if (!exists && !cfg->create)
			return fail(err, errlen, "%s: no such image; give --create to create it",
				    st->image);
		/* A blank regular file (a volume made for swtpm): formatted as a
		 * new image, which the library does for empty files. */
		if (st->local && exists && S_ISREG(sb.st_mode) && sb.st_size && cfg->create &&
		    !rdonly && is_blank(st->image)) {
			if (truncate(st->image, 0))
				return fail(err, errlen, "%s: %s", st->image, strerror(errno));
			vtpm_log(VTPM_LOG_INFO, "state: %s was blank (all zero): a new image", st->image);
		}
		if (cfg->create && !rdonly)
			flags |= BS_OPEN_CREATE;
		if (bs_image_open(st->image, flags, &img)) {
			int busy = bs_error_last(NULL, NULL) == BS_ELOCKED;
			fail(err, errlen, "%s", last_error());
			return busy ? 2 : 1;
		}
		if (!exists && st->local) {
			st->created = true;
			vtpm_log(VTPM_LOG_INFO, "state: created %s", st->image);
		}
	}
	log_notes(img);
	if (apply_key(st, &img, rdonly, err, errlen)) {
		bs_image_close(img);
		vtpm_state_discard(st);
		return 1;
	}
	*out = img;
	return 0;
}

int vtpm_print_states(struct vtpm_state *st)
{
	struct {
		const char *name;
		size_t size;
	} found[NBLOBS];
	int n = 0;
	const struct vtpm_config *cfg = st->cfg;
	struct stat sb;
	if (!st->image) {
		fprintf(stderr, "blobstore-vtpm: --print-states needs --tpmstate\n");
		return 1;
	}
	if (cfg->tpm2 && (!st->local || (!stat(st->image, &sb) && !is_blank(st->image)))) {
		bs_image *img;
		if (bs_image_open(st->image, BS_OPEN_RDONLY, &img)) {
			fprintf(stderr, "blobstore-vtpm: %s\n", last_error());
			return 1;
		}
		if (st->key && bs_image_is_encrypted(img) && bs_image_set_key(img, st->key)) {
			fprintf(stderr, "blobstore-vtpm: %s\n", last_error());
			bs_image_close(img);
			return 1;
		}
		for (int i = 0; i < NBLOBS; i++) {
			bs_entry *e;
			if (bs_entry_find(img, BS_TPM_TYPE, blob_names[i], &e))
				continue;
			void *p = NULL;
			size_t len = 0;
			int rc = bs_tpm_load(img, 0, blob_names[i], &p, &len);
			free(p);
			if (rc == BS_ENOENT)
				continue; /* an empty volatile state */
			found[n].name = blob_names[i];
			found[n].size = rc ? (size_t)bs_entry_size(e) : len;
			n++;
		}
		bs_image_close(img);
	} else if (cfg->tpm2 && st->dir) {
		/* swtpm's files, which the first start imports. */
		for (int i = 0; i < NBLOBS; i++) {
			char fname[64];
			snprintf(fname, sizeof fname, "tpm2-00.%s", blob_names[i]);
			char *path = join(st->dir, fname);
			if (path && !stat(path, &sb) && S_ISREG(sb.st_mode)) {
				found[n].name = blob_names[i];
				found[n].size = (size_t)sb.st_size;
				n++;
			}
			free(path);
		}
	}
	printf("{ \"type\": \"swtpm\", \"states\": [");
	for (int i = 0; i < n; i++)
		printf("%s {\"name\": \"%s\", \"size\": %zu}", i ? "," : "", found[i].name,
		       found[i].size);
	printf("%s] }", n ? " " : "");
	fflush(stdout);
	return 0;
}
