/* cmd_swtpm.c - 'blobstore import-swtpm' and 'export-swtpm': an swtpm state
 * directory (dir backend: tpm2-00.permall, tpm2-00.volatilestate,
 * tpm2-00.savestate) to and from the image's tpm2.libtpms entries, with
 * swtpm's state encryption (--key file=... / pwdfile=...).  The blob codec
 * and the key derivations are the library's (include/blobstore/swtpm.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blobstore/crypt.h>
#include "cli.h"
#include <blobstore/swtpm.h>

/* The libtpms blobs of a TPM 2.0, in the order they are imported and
 * exported (permall first: the rest means nothing without it). */
static const char *const blob_names[] = {"permall", "volatilestate", "savestate"};
#define NBLOBS (sizeof blob_names / sizeof blob_names[0])

enum {
	OPT_FORCE = 1,
	OPT_KEY,
	OPT_KEY_FORMAT,
	OPT_PASS,
	OPT_KDF,
	OPT_CIPHER,
	OPT_HEADERLESS,
	OPT_JSON,
};

struct swtpm_args {
	const char *pos[2];
	int npos;
	bool force, headerless, json;
	const char *key_file, *pass_file;
	int key_format, kdf;
	size_t cipher_len; /* 0: not given */
	/* Loaded key material. */
	bool have_key;
	struct bs_swtpm_key key; /* from the key file */
	uint8_t *pw;                /* the passphrase file's content */
	size_t pw_len;
};

static void args_release(struct swtpm_args *a)
{
	bs_swtpm_key_wipe(&a->key);
	if (a->pw) {
		explicit_bzero(a->pw, a->pw_len);
		free(a->pw);
		a->pw = NULL;
	}
}

static int parse(const struct cli_command *cmd, int argc, char **argv, struct swtpm_args *a)
{
	static const struct cli_option opts[] = {
		{"force", 'f', false, OPT_FORCE},
		{"swtpm-key", 0, true, OPT_KEY},
		{"swtpm-key-format", 0, true, OPT_KEY_FORMAT},
		{"swtpm-passphrase-file", 0, true, OPT_PASS},
		{"swtpm-kdf", 0, true, OPT_KDF},
		{"swtpm-cipher", 0, true, OPT_CIPHER},
		{"headerless", 0, false, OPT_HEADERLESS},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	memset(a, 0, sizeof *a);
	a->json = cli.json;
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; (o = cli_next(&p)) != CLI_END;) {
		switch (o) {
		case CLI_STOP:
			return p.status ? p.status : -1;
		case CLI_ARG:
			if (a->npos >= 2)
				return cli_usage(cmd, "too many arguments ('%s')", p.arg);
			a->pos[a->npos++] = p.arg;
			break;
		case OPT_FORCE: a->force = true; break;
		case OPT_HEADERLESS: a->headerless = true; break;
		case OPT_JSON: a->json = true; break;
		case OPT_KEY: a->key_file = p.arg; break;
		case OPT_PASS: a->pass_file = p.arg; break;
		case OPT_KEY_FORMAT:
			if (!strcmp(p.arg, "hex"))
				a->key_format = BS_SWTPM_KEY_HEX;
			else if (!strcmp(p.arg, "binary"))
				a->key_format = BS_SWTPM_KEY_BINARY;
			else
				return cli_usage(cmd, "--swtpm-key-format is hex or binary");
			break;
		case OPT_KDF:
			if (!strcmp(p.arg, "pbkdf2"))
				a->kdf = BS_SWTPM_KDF_PBKDF2;
			else if (!strcmp(p.arg, "sha512"))
				a->kdf = BS_SWTPM_KDF_SHA512;
			else
				return cli_usage(cmd, "--swtpm-kdf is pbkdf2 or sha512");
			break;
		case OPT_CIPHER:
			if (!strcmp(p.arg, "aes-128-cbc") || !strcmp(p.arg, "aes-cbc"))
				a->cipher_len = 16;
			else if (!strcmp(p.arg, "aes-256-cbc"))
				a->cipher_len = 32;
			else
				return cli_usage(cmd, "--swtpm-cipher is aes-128-cbc or aes-256-cbc");
			break;
		}
	}
	if (a->npos < 2)
		return cli_usage(cmd, "missing arguments");
	if (a->key_file && a->pass_file)
		return cli_usage(cmd, "give --swtpm-key or --swtpm-passphrase-file, not both");
	if (!strcmp(cmd->name, "import-swtpm")) {
		/* IMAGE DIR, as every command has it; the old DIR IMAGE still
		 * works where it cannot be mistaken (an image is no directory). */
		struct stat s0, s1;
		bool d0 = !stat(a->pos[0], &s0) && S_ISDIR(s0.st_mode);
		bool d1 = !stat(a->pos[1], &s1) && S_ISDIR(s1.st_mode);
		if (d0 && d1)
			return cli_usage(cmd, "both '%s' and '%s' are directories: give IMAGE DIR",
					 a->pos[0], a->pos[1]);
		if (d0) {
			const char *t = a->pos[0];
			a->pos[0] = a->pos[1];
			a->pos[1] = t;
			cli_warn("import-swtpm DIR IMAGE is deprecated: give the image first "
				 "(import-swtpm IMAGE DIR)");
		}
	}
	return 0;
}

/* Reads the swtpm key the options name (none: BS_OK with have_key false). */
static int load_swtpm_key(struct swtpm_args *a)
{
	uint8_t *buf;
	size_t len;
	int st;
	if (a->key_file) {
		if ((st = cli_read_input(a->key_file, &buf, &len)))
			return st;
		int rc = bs_swtpm_key_parse(buf, len, a->key_format, a->cipher_len, &a->key);
		explicit_bzero(buf, len);
		free(buf);
		if (rc)
			return cli_error(cli_exit_code(rc), "%s: %s", a->key_file, last_error());
		a->have_key = true;
	} else if (a->pass_file) {
		if ((st = cli_read_input(a->pass_file, &a->pw, &a->pw_len)))
			return st;
		a->have_key = true;
	}
	return 0;
}

/* The key for a blob whose header asks for KEYLEN octets (0: unknown). */
static int key_for(struct swtpm_args *a, size_t keylen, struct bs_swtpm_key *out)
{
	if (a->key_file) {
		*out = a->key;
		return BS_OK;
	}
	size_t n = a->cipher_len ? a->cipher_len : keylen ? keylen : 16;
	return bs_swtpm_key_from_passphrase(a->pw, a->pw_len, a->kdf, n, out);
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Holds swtpm's own lock on DIR (fcntl write lock on DIR/.lock, as swtpm
 * takes it) so that no swtpm runs on the directory meanwhile.  Returns the
 * descriptor, or -1: after a message with *ST set, or (MUST false) when
 * DIR cannot hold a lock file because it is read-only to us. */
static int lock_dir(const char *dir, bool must, int *st)
{
	char *path = path_join(dir, ".lock");
	if (!path) {
		*st = cli_error(CLI_EXIT_OTHER, "out of memory");
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd < 0 && !must && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		/* A read-only copy of a state directory: no swtpm writes it. */
		free(path);
		return -1;
	}
	if (fd < 0) {
		*st = cli_error(errno == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_IO, "%s: %s", path,
				strerror(errno));
		free(path);
		return -1;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		*st = cli_error(CLI_EXIT_LOCKED, "%s: locked: is an swtpm running on %s? (%s)",
				path, dir, strerror(errno));
		close(fd);
		free(path);
		return -1;
	}
	free(path);
	return fd;
}

/* ---- import -------------------------------------------------------------- */

struct imported {
	uint8_t *data;
	size_t len;
	struct bs_swtpm_blob_info info;
	bool present;
};

static void imported_free(struct imported *im)
{
	for (size_t i = 0; i < NBLOBS; i++)
		if (im[i].data) {
			explicit_bzero(im[i].data, im[i].len);
			free(im[i].data);
		}
}

/* Reads and decodes DIR's blobs into IM.  Returns an exit status. */
static int read_state_dir(struct swtpm_args *a, const char *dir, struct imported *im)
{
	struct stat sb;
	if (stat(dir, &sb))
		return cli_error(errno == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_IO, "%s: %s", dir,
				 strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return cli_error(CLI_EXIT_NOTFOUND, "%s: not a directory", dir);
	char *v12 = path_join(dir, "tpm-00.permall");
	bool tpm12 = v12 && !access(v12, F_OK);
	free(v12);
	for (size_t i = 0; i < NBLOBS; i++) {
		char fname[64];
		snprintf(fname, sizeof fname, "tpm2-00.%s", blob_names[i]);
		char *path = path_join(dir, fname);
		if (!path)
			return cli_error(CLI_EXIT_OTHER, "out of memory");
		if (lstat(path, &sb)) {
			int err = errno;
			free(path);
			if (err == ENOENT)
				continue;
			return cli_error(CLI_EXIT_IO, "%s/%s: %s", dir, fname, strerror(err));
		}
		if (!S_ISREG(sb.st_mode)) {
			int st = cli_error(CLI_EXIT_CORRUPT, "%s: not a regular file", path);
			free(path);
			return st;
		}
		uint8_t *buf;
		size_t len;
		int st = cli_read_input(path, &buf, &len);
		if (st) {
			free(path);
			return st;
		}
		unsigned flags = a->headerless ? BS_SWTPM_HEADERLESS : 0;
		struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
		/* What a file from before 2018 looks like: no header whose
		 * total length matches the file. */
		bool no_header = len < BS_SWTPM_HDR_LEN ||
				 ((uint32_t)buf[6] << 24 | (uint32_t)buf[7] << 16 |
				  (uint32_t)buf[8] << 8 | buf[9]) != len;
		int rc = bs_swtpm_blob_inspect(buf, len, flags, path, &info);
		struct bs_swtpm_key k = BS_SWTPM_KEY_INIT;
		bool use_key = false;
		if (!rc && a->have_key && (info.encrypted || !info.has_header)) {
			rc = key_for(a, info.keylen, &k);
			use_key = !rc;
		}
		if (!rc)
			rc = bs_swtpm_blob_decode(buf, len, use_key ? &k : NULL, flags, path,
						     &im[i].data, &im[i].len, &im[i].info);
		if (use_key)
			bs_swtpm_key_wipe(&k);
		free(buf);
		free(path);
		if (rc == BS_ECORRUPT && !a->headerless && len && no_header)
			cli_warn("a file written by swtpm before 2018 has no header: try "
				 "--headerless");
		if (rc)
			return cli_fail(rc);
		im[i].present = true;
	}
	if (!im[0].present) {
		if (tpm12)
			return cli_error(CLI_EXIT_REFUSED,
					 "%s holds TPM 1.2 state (tpm-00.permall): only TPM 2.0 "
					 "state is supported", dir);
		return cli_error(CLI_EXIT_NOTFOUND, "%s: no tpm2-00.permall: not an swtpm TPM 2.0 "
						    "state directory", dir);
	}
	return 0;
}

/* Names of the image's tpm2.libtpms entries (malloc()ed, NULL-terminated). */
static char **tpm_entry_names(bs_image *img)
{
	size_t n = 0, k = 0;
	for (bs_entry *it_ = NULL; (it_ = bs_entry_next(img, it_, BS_ITER_LIBRARY));)
		n += !strcmp(bs_entry_type(it_), BS_SWTPM_ENTRY_TYPE);
	char **names = calloc(n + 1, sizeof *names);
	for (bs_entry *e = NULL; names && (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		if (strcmp(bs_entry_type(e), BS_SWTPM_ENTRY_TYPE))
			continue;
		const char *nm = bs_entry_name(e);
		if (!(names[k++] = strdup(nm ? nm : ""))) {
			for (size_t j = 0; j + 1 < k; j++)
				free(names[j]);
			free(names);
			return NULL;
		}
	}
	return names;
}

static void names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

/* Creates or replaces entry tpm2.libtpms/NAME with DATA/LEN.  Each step is
 * one crash-safe library operation. */
static int put_entry(bs_image *img, const char *name, const uint8_t *data, size_t len,
		     bool encrypt)
{
	bs_entry *e;
	int rc = bs_entry_find(img, BS_SWTPM_ENTRY_TYPE, name, &e);
	if (!rc) {
		bool enc = bs_entry_is_encrypted(e);
		bool usable = bs_entry_is_slotted(e) && bs_entry_status(e) == BS_OK;
		/* Plaintext in an image that now has a key: encrypted in place,
		 * crash-safely, before the new state goes in. */
		if (encrypt && !enc && usable) {
			if ((rc = bs_entry_encrypt(e, BS_CIPHER_DEFAULT)))
				return rc;
			enc = true;
		}
		if (enc == encrypt && usable)
			return bs_entry_write(e, data, len);
		/* Another layout (a raw or refused entry): replaced by a fresh
		 * entry. */
		if ((rc = bs_entry_delete(e)))
			return rc;
	} else if (rc != BS_ENOENT) {
		return rc;
	}
	struct bs_entry_opts o = BS_ENTRY_OPTS_INIT;
	o.capacity = len > BS_SWTPM_MIN_CAPACITY / 2 ? 2 * len : BS_SWTPM_MIN_CAPACITY;
	o.flags = encrypt ? BS_ENTRY_ENCRYPT : 0;
	return bs_entry_create(img, BS_SWTPM_ENTRY_TYPE, name, &o, data, len, NULL);
}

static const char *describe(const struct bs_swtpm_blob_info *in, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s", in->has_header ? "" : "headerless ",
		 in->blob_version == 2 ? "version 2" : "version 1",
		 !in->encrypted ? ", plain"
		 : in->keylen == 32 || (in->flags & BS_SWTPM_FLAG_256BIT_KEY)
			 ? ", encrypted (aes-256-cbc)"
			 : ", encrypted");
	return buf;
}

/* The entry TYPE/NAME as a JSON object into M (a memory stream). */
static void json_entry_to(FILE *m, bs_image *img, const char *name, bool *first)
{
	bs_entry *e;
	if (bs_entry_find(img, BS_SWTPM_ENTRY_TYPE, name, &e))
		return;
	fputs(*first ? "" : ", ", m);
	cli_json_entry_alone(m, img, e);
	*first = false;
}

/* Removes PATH, an image this command created, after a failure: an import
 * that failed leaves nothing behind. */
static void remove_created(const char *path, bool created)
{
	struct stat sb;
	if (created && !strstr(path, "://") && !lstat(path, &sb) && S_ISREG(sb.st_mode) &&
	    !unlink(path))
		cli_sync_dir_of(path);
}

static int do_import(struct swtpm_args *a)
{
	const char *path = a->pos[0], *dir = a->pos[1];
	struct imported im[NBLOBS];
	memset(im, 0, sizeof im);
	int st = load_swtpm_key(a);
	int lock = -1;
	if (!st)
		lock = lock_dir(dir, false, &st);
	if (!st)
		st = read_state_dir(a, dir, im);
	if (lock >= 0)
		close(lock);
	if (st) {
		imported_free(im);
		return st;
	}
	struct stat sb;
	bool created = !strstr(path, "://") && lstat(path, &sb) && errno == ENOENT;
	bs_image *img = NULL;
	int rc = cli_open_flags(path, cli.open_flags | BS_OPEN_CREATE, &img);
	if (rc) {
		imported_free(im);
		return cli_fail(rc);
	}
	char **old = NULL;
	char *js = NULL, *jr = NULL;
	size_t jsl = 0, jrl = 0;
	FILE *mj = a->json ? open_memstream(&js, &jsl) : NULL;
	FILE *mr = a->json ? open_memstream(&jr, &jrl) : NULL;
	bool first = true, rfirst = true;
	if (a->json && (!mj || !mr)) {
		st = cli_error(CLI_EXIT_OTHER, "out of memory");
		goto out;
	}
	if ((rc = cli_load_key(img))) {
		st = cli_fail(rc);
		goto out;
	}
	bool encrypt = bs_image_is_encrypted(img);
	if (encrypt && !bs_image_has_key(img)) {
		st = cli_error(CLI_EXIT_KEY, "%s is encrypted: give its key (--key-file, "
					     "--passphrase-file or --passphrase-fd) so that the "
					     "TPM state is stored encrypted", path);
		goto out;
	}
	if (!(old = tpm_entry_names(img))) {
		st = cli_error(CLI_EXIT_OTHER, "out of memory");
		goto out;
	}
	if (old[0] && !a->force) {
		st = cli_error(CLI_EXIT_OTHER, "%s already holds a TPM (%s entries); --force "
					       "replaces it", path, BS_SWTPM_ENTRY_TYPE);
		goto out;
	}
	for (size_t i = 0; i < NBLOBS; i++) {
		if (!im[i].present)
			continue;
		if ((rc = put_entry(img, blob_names[i], im[i].data, im[i].len, encrypt))) {
			st = cli_fail(rc);
			goto out;
		}
		created = false; /* from here on the image holds state: kept */
		if (mj) {
			json_entry_to(mj, img, blob_names[i], &first);
		} else if (!cli.quiet) {
			char d[96];
			printf("%s/tpm2-00.%s (%s) -> %s/%s, %zu octets%s\n", dir, blob_names[i],
			       describe(&im[i].info, d, sizeof d), BS_SWTPM_ENTRY_TYPE,
			       blob_names[i], im[i].len, encrypt ? ", encrypted" : "");
		}
	}
	/* Blobs the directory does not have must not survive from the TPM
	 * replaced: a stale volatilestate would be loaded with the new
	 * permall. */
	for (size_t k = 0; old[k]; k++) {
		bool keep = false;
		for (size_t i = 0; i < NBLOBS; i++)
			keep |= im[i].present && !strcmp(old[k], blob_names[i]);
		bs_entry *e;
		if (keep || bs_entry_find(img, BS_SWTPM_ENTRY_TYPE, old[k], &e))
			continue;
		if (mr)
			json_entry_to(mr, img, old[k], &rfirst);
		if ((rc = bs_entry_delete(e))) {
			st = cli_fail(rc);
			goto out;
		}
		if (!mr && !cli.quiet)
			printf("removed %s/%s (not in %s)\n", BS_SWTPM_ENTRY_TYPE, old[k], dir);
	}
out:
	if (mj)
		fclose(mj);
	if (mr)
		fclose(mr);
	if (!st && a->json) {
		printf("{\"image\": ");
		cli_json_str(stdout, path);
		printf(", \"directory\": ");
		cli_json_str(stdout, dir);
		printf(", \"entries\": [%s], \"removed\": [%s]}\n", js ? js : "", jr ? jr : "");
	}
	free(js);
	free(jr);
	names_free(old);
	bs_image_close(img);
	if (st)
		remove_created(path, created);
	imported_free(im);
	return st;
}

/* ---- export -------------------------------------------------------------- */

/* Writes BUF/LEN to DIR/NAME through a temporary file, fsync and rename. */
static int write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char *tmp = NULL, *dst = path_join(dir, name);
	size_t n = strlen(dir) + strlen(name) + 32;
	if (!dst || !(tmp = malloc(n))) {
		free(dst);
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	}
	snprintf(tmp, n, "%s/.%s.blobstore-XXXXXX", dir, name);
	int st = 0, fd = mkstemp(tmp);
	if (fd < 0) {
		st = cli_error(CLI_EXIT_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* swtpm's default file mode. */
	if (fchmod(fd, 0640))
		st = cli_error(CLI_EXIT_IO, "%s: %s", tmp, strerror(errno));
	for (size_t done = 0; !st && done < len;) {
		ssize_t k = write(fd, buf + done, len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			st = cli_error(CLI_EXIT_IO, "%s: %s", tmp, strerror(errno));
		else
			done += (size_t)k;
	}
	if (!st && !(cli.open_flags & BS_OPEN_NOSYNC) && fsync(fd))
		st = cli_error(CLI_EXIT_IO, "%s: fsync: %s", tmp, strerror(errno));
	if (close(fd) && !st)
		st = cli_error(CLI_EXIT_IO, "%s: %s", tmp, strerror(errno));
	if (!st && rename(tmp, dst))
		st = cli_error(CLI_EXIT_IO, "%s: rename: %s", dst, strerror(errno));
	if (st)
		unlink(tmp);
out:
	free(tmp);
	free(dst);
	return st;
}

static int sync_dir(const char *dir)
{
	if (cli.open_flags & BS_OPEN_NOSYNC)
		return 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd)) {
		int st = cli_error(CLI_EXIT_IO, "%s: fsync: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return st;
	}
	close(fd);
	return 0;
}

static int do_export(struct swtpm_args *a)
{
	const char *path = a->pos[0], *dir = a->pos[1];
	uint8_t *blob[NBLOBS] = {NULL};
	size_t blob_len[NBLOBS] = {0};
	int st = load_swtpm_key(a);
	if (st)
		return st;
	struct bs_swtpm_key k = BS_SWTPM_KEY_INIT;
	bool encrypt = a->have_key;
	if (encrypt && (st = key_for(a, 0, &k)))
		return cli_fail(st);
	bs_image *img = NULL;
	int rc = cli_open(path, false, &img);
	if (rc) {
		st = cli_fail(rc);
		goto out_key;
	}
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		if (strcmp(bs_entry_type(e), BS_SWTPM_ENTRY_TYPE))
			continue;
		const char *nm = bs_entry_name(e);
		bool known = false;
		for (size_t j = 0; j < NBLOBS; j++)
			known |= nm && !strcmp(nm, blob_names[j]);
		if (!known)
			cli_warn("skipping entry " BS_SWTPM_ENTRY_TYPE "/%s: swtpm has no file for it",
				 nm ? nm : "(unnamed)");
	}
	for (size_t i = 0; i < NBLOBS && !st; i++) {
		bs_entry *e;
		if ((rc = bs_entry_find(img, BS_SWTPM_ENTRY_TYPE, blob_names[i], &e))) {
			if (rc != BS_ENOENT)
				st = cli_fail(rc);
			else if (i == 0)
				st = cli_error(CLI_EXIT_NOTFOUND, "%s holds no TPM (no entry %s/%s)",
					       path, BS_SWTPM_ENTRY_TYPE, blob_names[0]);
			continue;
		}
		void *data;
		size_t len;
		if ((rc = bs_entry_read_alloc(e, &data, &len))) {
			st = cli_fail(rc);
			break;
		}
		rc = bs_swtpm_blob_encode(data, len, encrypt ? &k : NULL, &blob[i], &blob_len[i]);
		explicit_bzero(data, len);
		free(data);
		if (rc)
			st = cli_fail(rc);
	}
	bs_image_close(img);
	if (st)
		goto out;
	if (mkdir(dir, 0750) && errno != EEXIST) {
		st = cli_error(CLI_EXIT_IO, "%s: %s", dir, strerror(errno));
		goto out;
	}
	int lock = lock_dir(dir, true, &st);
	if (lock < 0)
		goto out;
	bool exists[NBLOBS], any = false;
	for (size_t i = 0; i < NBLOBS; i++) {
		char fname[64];
		snprintf(fname, sizeof fname, "%s/tpm2-00.%s", dir, blob_names[i]);
		struct stat sb;
		exists[i] = !lstat(fname, &sb);
		any |= exists[i];
	}
	if (any && !a->force) {
		st = cli_error(CLI_EXIT_OTHER, "%s already holds swtpm TPM 2.0 state; --force "
					       "replaces it", dir);
		close(lock);
		goto out;
	}
	const char *cipher = !encrypt ? NULL : k.len == 32 ? "aes-256-cbc" : "aes-128-cbc";
	bool written[NBLOBS] = {false}, removed[NBLOBS] = {false};
	for (size_t i = 0; i < NBLOBS && !st; i++) {
		char fname[64];
		snprintf(fname, sizeof fname, "tpm2-00.%s", blob_names[i]);
		if (blob[i]) {
			st = write_file(dir, fname, blob[i], blob_len[i]);
			written[i] = !st;
			if (!st && !a->json && !cli.quiet)
				printf("%s/%s -> %s/%s (%zu octets, %s)\n", BS_SWTPM_ENTRY_TYPE,
				       blob_names[i], dir, fname, blob_len[i], cipher ? cipher : "plain");
		} else if (exists[i]) {
			/* A stale volatilestate would be loaded with the new permall. */
			char *p = path_join(dir, fname);
			if (!p || unlink(p))
				st = cli_error(CLI_EXIT_IO, "%s/%s: %s", dir, fname,
					       p ? strerror(errno) : "out of memory");
			removed[i] = !st;
			free(p);
		}
	}
	if (!st)
		st = sync_dir(dir);
	close(lock);
	if (!st && a->json) {
		printf("{\"image\": ");
		cli_json_str(stdout, path);
		printf(", \"directory\": ");
		cli_json_str(stdout, dir);
		printf(", \"files\": [");
		bool first = true;
		for (size_t i = 0; i < NBLOBS; i++) {
			if (!written[i])
				continue;
			char f[64];
			snprintf(f, sizeof f, "tpm2-00.%s", blob_names[i]);
			char *fp = path_join(dir, f);
			printf("%s{\"file\": ", first ? "" : ", ");
			cli_json_str(stdout, fp ? fp : f);
			printf(", \"entry\": ");
			cli_json_str(stdout, blob_names[i]);
			printf(", \"size\": %zu, \"encryption\": ", blob_len[i]);
			cli_json_str(stdout, cipher);
			printf("}");
			free(fp);
			first = false;
		}
		printf("], \"removed\": [");
		first = true;
		for (size_t i = 0; i < NBLOBS; i++) {
			if (!removed[i])
				continue;
			char f[64];
			snprintf(f, sizeof f, "tpm2-00.%s", blob_names[i]);
			char *fp = path_join(dir, f);
			printf("%s", first ? "" : ", ");
			cli_json_str(stdout, fp ? fp : f);
			free(fp);
			first = false;
		}
		printf("]}\n");
	}
out:
	for (size_t i = 0; i < NBLOBS; i++)
		free(blob[i]);
out_key:
	if (encrypt)
		bs_swtpm_key_wipe(&k);
	return st;
}

static int run(const struct cli_command *cmd, int argc, char **argv)
{
	struct swtpm_args a;
	int st = parse(cmd, argc, argv, &a);
	if (st)
		return st < 0 ? CLI_EXIT_OK : st;
	st = !strcmp(cmd->name, "import-swtpm") ? do_import(&a) : do_export(&a);
	args_release(&a);
	return st;
}

#define KEY_HELP                                                                       \
	"swtpm's state encryption (the --key option of swtpm, --keyfile/--pwdfile of\n"   \
	"swtpm_setup); the image's own key is the global --key-file, ...:\n"             \
	"  --swtpm-key FILE            swtpm's key file (--key file=FILE)\n"              \
	"  --swtpm-key-format FMT      hex (default: 32 or 64 hex digits) or binary\n"    \
	"  --swtpm-passphrase-file F   swtpm's passphrase file (--key pwdfile=F): every\n" \
	"                              octet of it, a final newline included, as swtpm\n" \
	"  --swtpm-kdf KDF             pbkdf2 (default) or sha512, as swtpm's kdf=\n"     \
	"  --swtpm-cipher C            aes-128-cbc or aes-256-cbc (swtpm's mode=); by\n"  \
	"                              default the key file's length, or for a\n"         \
	"                              passphrase what the blob says (import) or\n"       \
	"                              aes-128-cbc, swtpm's default (export)\n"

const struct cli_command cmd_import_swtpm = {
	.name = "import-swtpm",
	.summary = "import an swtpm TPM 2.0 state directory into the image",
	.usage = "IMAGE DIR [--force] [--headerless] [--swtpm-key FILE | "
		 "--swtpm-passphrase-file FILE] [...] [--json]",
	.help = "Reads swtpm's state files in DIR (tpm2-00.permall, and\n"
		"tpm2-00.volatilestate and tpm2-00.savestate when present; blob header\n"
		"versions 1 and 2, plain or encrypted) and stores each libtpms blob as the\n"
		"entry " BS_SWTPM_ENTRY_TYPE "/NAME (permall, volatilestate, savestate) of\n"
		"IMAGE, created when missing (and removed again when the import fails).\n"
		"In an encrypted image (give its key with --key-file, --passphrase-file or\n"
		"--passphrase-fd) the entries are encrypted.  Every blob is decoded and\n"
		"checked before the image changes; each entry is then created or replaced\n"
		"crash-safely, one at a time.  swtpm's lock (DIR/.lock) is held while\n"
		"reading: a running swtpm is refused.  The order DIR IMAGE of earlier\n"
		"versions still works, with a warning, where DIR is a directory and IMAGE\n"
		"is not.\n\n"
		"Options:\n"
		"  -f, --force     replace the TPM the image already holds (its\n"
		"                  " BS_SWTPM_ENTRY_TYPE " entries; those DIR lacks are deleted)\n"
		"  --headerless    accept files without a blob header (swtpm before 2018)\n"
		"  --json          the entries written and removed, as one JSON object\n"
		KEY_HELP,
	.run = run,
};

const struct cli_command cmd_export_swtpm = {
	.name = "export-swtpm",
	.summary = "write the image's TPM as an swtpm TPM 2.0 state directory",
	.usage = "IMAGE DIR [--force] [--swtpm-key FILE | --swtpm-passphrase-file FILE] [...]\n"
		 "           [--json]",
	.help = "Writes the image's " BS_SWTPM_ENTRY_TYPE " entries to DIR (created when\n"
		"missing) as swtpm's state files tpm2-00.NAME (header version 2), plain,\n"
		"or encrypted the way 'swtpm --key' does when an swtpm key is given; then\n"
		"'swtpm socket --tpmstate dir=DIR' serves the TPM.  Each file is written\n"
		"to a temporary file, synced and renamed; swtpm's lock (DIR/.lock) is held.\n\n"
		"Options:\n"
		"  -f, --force     replace swtpm state already in DIR (files for blobs the\n"
		"                  image lacks are deleted)\n"
		"  --json          the files written and removed, as one JSON object\n"
		KEY_HELP,
	.run = run,
};
