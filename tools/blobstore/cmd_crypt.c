/* cmd_crypt.c - the tool's keys: the global options --key-file,
 * --passphrase-file and --passphrase-fd (loaded by cli_open() into every
 * encrypted image a command opens), and the commands encrypt-init and
 * rekey. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/crypt.h>
#include <blobstore/sys/util.h>
#include "cli.h"

/* ---- the key given on the command line ----------------------------------- */

enum key_source { SRC_NONE, SRC_KEY_FILE, SRC_PASS_FILE, SRC_PASS_FD };

struct key_arg {
	enum key_source src;
	const char *path; /* or the descriptor's text */
	bs_key *key;      /* read once: a descriptor cannot be read twice */
};

static struct key_arg current;

/* --kdf-max-iter, --kdf-max-mem, --kdf-max-work: the ceilings an open
 * accepts (zero fields: the library's defaults). */
static struct bs_kdf_limits ceilings = BS_KDF_LIMITS_INIT;

static int opt_ceiling(const char *arg, const char *name, bool size, uint64_t *out)
{
	uint64_t v;
	char *end;
	if ((size ? !cli_parse_size(arg, &v) : (v = strtoull(arg, &end, 10), !*arg || *end)) || !v)
		return cli_usage(NULL, "%s takes a positive %s, not '%s'", name,
				 size ? "size" : "number", arg);
	*out = v;
	return 0;
}

int cli_opt_kdf_max_iter(const char *arg)
{
	return opt_ceiling(arg, "--kdf-max-iter", false, &ceilings.pbkdf2_iter_max);
}

int cli_opt_kdf_max_mem(const char *arg)
{
	return opt_ceiling(arg, "--kdf-max-mem", true, &ceilings.scrypt_mem_max);
}

int cli_opt_kdf_max_work(const char *arg)
{
	return opt_ceiling(arg, "--kdf-max-work", false, &ceilings.scrypt_work_max);
}

static int set_source(struct key_arg *k, enum key_source src, const char *arg)
{
	if (k->src != SRC_NONE)
		return cli_error(CLI_EXIT_USAGE,
				 "give one of --key-file, --passphrase-file, --passphrase-fd");
	k->src = src;
	k->path = arg;
	if (k == &current)
		atexit(cli_key_release); /* wipes the key read for the command */
	return 0;
}

int cli_opt_key_file(const char *arg)
{
	return set_source(&current, SRC_KEY_FILE, arg);
}

int cli_opt_passphrase_file(const char *arg)
{
	return set_source(&current, SRC_PASS_FILE, arg);
}

int cli_opt_passphrase_fd(const char *arg)
{
	return set_source(&current, SRC_PASS_FD, arg);
}

static bool parse_fd(const char *s, int *fd)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > INT_MAX)
		return false;
	*fd = (int)v;
	return true;
}

/* Reads the key K names (once).  Returns a library code, the error set. */
static int key_load(struct key_arg *k, const char *what, bs_key **out)
{
	if (!k->key) {
		int rc, fd;
		switch (k->src) {
		case SRC_KEY_FILE:
			rc = bs_key_from_file(k->path, &k->key);
			break;
		case SRC_PASS_FILE:
			rc = bs_key_from_passphrase_file(k->path, &k->key);
			break;
		case SRC_PASS_FD:
			if (!parse_fd(k->path, &fd))
				return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
						    "%s: not a file descriptor number: '%s'", what,
						    k->path);
			rc = bs_key_from_passphrase_fd(fd, &k->key);
			break;
		default:
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EKEY, 0,
					    "%s: give --key-file, --passphrase-file or --passphrase-fd",
					    what);
		}
		if (!rc && (k->src == SRC_PASS_FILE || k->src == SRC_PASS_FD))
			rc = bs_key_set_kdf_limits(k->key, &ceilings);
		if (rc)
			return rc;
	}
	*out = k->key;
	return BS_OK;
}

/* The same, reporting a failure; returns an exit status. */
static int key_get(struct key_arg *k, const char *what, bs_key **out)
{
	int rc = key_load(k, what, out);
	return rc ? cli_fail(rc) : CLI_EXIT_OK;
}

static void key_release(struct key_arg *k)
{
	bs_key_free(k->key);
	k->key = NULL;
}

bool cli_key_given(void)
{
	return current.src != SRC_NONE;
}

void cli_key_release(void)
{
	key_release(&current);
}

int cli_load_key(bs_image *img)
{
	if (!current.src)
		return BS_OK;
	/* A key means "this image is encrypted": given for one that is not,
	 * it would protect nothing, and saying nothing would let the user
	 * believe otherwise. */
	if (!bs_image_is_encrypted(img) && !cli_count_encrypted(img))
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_EKEY, 0,
				    "a key is given, but the image is not set up for encryption: "
				    "'blobstore encrypt-init IMAGE --key-file FILE' (or "
				    "--passphrase-file FILE, --passphrase-fd N) sets it up; "
				    "leave the key out to use the image as it is");
	/* Encrypted entries without a key entry: the library explains. */
	bs_key *k;
	int rc = key_load(&current, "key", &k);
	return rc ? rc : bs_image_set_key(img, k);
}

/* ---- KDF options shared by encrypt-init and rekey ------------------------ */

enum { OPT_KDF = 1, OPT_SCRYPT_N, OPT_SCRYPT_R, OPT_SCRYPT_P, OPT_PBKDF2_ITER,
       OPT_NEW_KEY_FILE, OPT_NEW_PASS_FILE, OPT_NEW_PASS_FD, OPT_JSON };

/* The name of IMG's KDF, for messages. */
static const char *kdf_label(const bs_image *img)
{
	enum bs_kdf k;
	return bs_image_kdf(img, &k) ? "?" : bs_kdf_name(k);
}

static int kdf_option(const struct cli_command *cmd, int o, const char *arg,
		      struct bs_kdf_params *kp)
{
	uint64_t v;
	if (o == OPT_KDF) {
		if (strcmp(arg, "scrypt") && strcmp(arg, "pbkdf2-sha256"))
			return cli_usage(cmd, "--kdf is scrypt or pbkdf2-sha256, not '%s'", arg);
		bs_kdf_parse(arg, &kp->kdf);
		return 0;
	}
	if (!cli_parse_size(arg, &v) || v == 0 || (o != OPT_SCRYPT_N && v > UINT32_MAX))
		return cli_usage(cmd, "bad number '%s'", arg);
	if (o == OPT_SCRYPT_N)
		kp->scrypt_n = v;
	else if (o == OPT_SCRYPT_R)
		kp->scrypt_r = (uint32_t)v;
	else if (o == OPT_SCRYPT_P)
		kp->scrypt_p = (uint32_t)v;
	else
		kp->pbkdf2_iter = (uint32_t)v;
	return 0;
}

#define KDF_OPTIONS                                                                     \
	{"kdf", 0, true, OPT_KDF}, {"scrypt-n", 0, true, OPT_SCRYPT_N},                  \
		{"scrypt-r", 0, true, OPT_SCRYPT_R}, {"scrypt-p", 0, true, OPT_SCRYPT_P}, \
		{"pbkdf2-iter", 0, true, OPT_PBKDF2_ITER}

#define KDF_HELP                                                                          \
	"  --kdf KDF            for a passphrase: scrypt (default) or pbkdf2-sha256\n"        \
	"  --scrypt-n N         scrypt cost (a power of two; default 32768)\n"                \
	"  --scrypt-r R         scrypt block size (default 8)\n"                              \
	"  --scrypt-p P         scrypt parallelism (default 1)\n"                             \
	"  --pbkdf2-iter N      PBKDF2-SHA256 iterations (default 600000)\n"                  \
	"A key file holds 32 raw octets or 64 hexadecimal digits; a passphrase file or\n"   \
	"descriptor is read to its end, one trailing newline dropped.\n"

/* The costs asked for explicitly in this command (--pbkdf2-iter,
 * --scrypt-n/-r/-p) are the user's own, not an image's claim: the key K
 * that writes them gets its ceilings raised to at least them, so
 * 'encrypt-init --pbkdf2-iter 3000000' needs no --kdf-max-iter.  Only K
 * is raised, for this command: a later command reading that bs.key needs
 * the --kdf-max-* option.  Above the hard limits the library refuses
 * (BS_ELIMIT), naming them. */
static int raise_ceilings(const struct key_arg *ka, bs_key *k, const struct bs_kdf_params *kp)
{
	if (ka->src != SRC_PASS_FILE && ka->src != SRC_PASS_FD)
		return 0;
	struct bs_kdf_limits lim = ceilings;
	if (!lim.pbkdf2_iter_max)
		lim.pbkdf2_iter_max = BS_KDF_MAX_ITER_DEFAULT;
	if (!lim.scrypt_mem_max)
		lim.scrypt_mem_max = BS_KDF_MAX_MEM_DEFAULT;
	if (!lim.scrypt_work_max)
		lim.scrypt_work_max = BS_KDF_MAX_WORK_DEFAULT;
	if (kp->kdf == BS_KDF_PBKDF2_SHA256 && kp->pbkdf2_iter > lim.pbkdf2_iter_max)
		lim.pbkdf2_iter_max = kp->pbkdf2_iter;
	if (kp->kdf != BS_KDF_PBKDF2_SHA256 && (kp->scrypt_n || kp->scrypt_r || kp->scrypt_p)) {
		uint64_t n = kp->scrypt_n ? kp->scrypt_n : BS_SCRYPT_N_DEFAULT;
		uint64_t r = kp->scrypt_r ? kp->scrypt_r : BS_SCRYPT_R_DEFAULT;
		uint64_t p = kp->scrypt_p ? kp->scrypt_p : BS_SCRYPT_P_DEFAULT;
		/* Past the hard limits the products may overflow: leave the
		 * ceilings at those limits and let the library name them. */
		uint64_t mem = n > BS_KDF_MEM_LIMIT / 128 / r ? BS_KDF_MEM_LIMIT : 128 * n * r;
		uint64_t work = n * r > BS_KDF_WORK_LIMIT / p ? BS_KDF_WORK_LIMIT : n * r * p;
		if (mem > lim.scrypt_mem_max)
			lim.scrypt_mem_max = mem > BS_KDF_MEM_LIMIT ? BS_KDF_MEM_LIMIT : mem;
		if (work > lim.scrypt_work_max)
			lim.scrypt_work_max = work > BS_KDF_WORK_LIMIT ? BS_KDF_WORK_LIMIT : work;
	}
	if (lim.pbkdf2_iter_max > BS_KDF_ITER_LIMIT)
		lim.pbkdf2_iter_max = BS_KDF_ITER_LIMIT;
	int rc = bs_key_set_kdf_limits(k, &lim);
	return rc ? cli_fail(rc) : 0;
}

/* ---- encrypt-init ---------------------------------------------------------- */

static int run_encrypt_init(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {KDF_OPTIONS, {"json", 0, false, OPT_JSON},
						 {NULL, 0, false, 0}};
	struct cli_parser p;
	struct bs_kdf_params kp = BS_KDF_PARAMS_INIT;
	const char *path = NULL;
	bool json = cli.json;
	int o, st = 0;
	cli_parser_init(&p, cmd, opts, argc, argv);
	while (!st && (o = cli_next(&p)) != CLI_END) {
		if (o == CLI_STOP)
			return p.status;
		if (o == CLI_ARG) {
			if (path)
				return cli_usage(cmd, "one image only");
			path = p.arg;
		} else if (o == OPT_JSON) {
			json = true;
		} else {
			st = kdf_option(cmd, o, p.arg, &kp);
		}
	}
	if (st)
		return st;
	if (!path)
		return cli_usage(cmd, "no image given");
	bs_key *k;
	if ((st = key_get(&current, "encrypt-init", &k)) || (st = raise_ceilings(&current, k, &kp)))
		return st;
	bs_image *img = NULL;
	int rc = cli_open_flags(path, cli.open_flags, &img);
	if (rc)
		return cli_fail(rc);
	if ((rc = bs_image_init_encryption(img, k, &kp))) {
		st = cli_fail(rc);
		bs_image_close(img);
		return st;
	}
	size_t plain = bs_image_count(img, 0) - cli_count_encrypted(img);
	if (json) {
		cli_json_image(stdout, path, img);
	} else if (!cli.quiet) {
		cli_put_clean(stdout, path);
		printf(": encryption set up (%s); new entries are encrypted\n", kdf_label(img));
	}
	if (plain)
		cli_warn("%zu existing entr%s stay%s in plaintext: 'put --encrypt' encrypts an "
			 "entry as it replaces its data", plain, plain == 1 ? "y" : "ies",
			 plain == 1 ? "s" : "");
	bs_image_close(img);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_encrypt_init = {
	.name = "encrypt-init",
	.summary = "set an image up for encryption",
	.usage = "IMAGE --key-file FILE|--passphrase-file FILE|--passphrase-fd N [--kdf KDF ...]\n"
		 "           [--json]",
	.help = "Creates the image's random data key and stores it wrapped under the key\n"
		"given (entry bs.key).  From then on every new entry is encrypted\n"
		"(AES-256-GCM unless put --cipher says otherwise; put --plain makes one in\n"
		"plaintext), and reading or writing encrypted entries needs the same key\n"
		"option.  Entries already there stay in plaintext until 'put --encrypt'\n"
		"encrypts them.  See CRYPTO.md.\n\n"
		"Options:\n" KDF_HELP
		"  --json               the image as one JSON object (docs/JSON.md)\n",
	.run = run_encrypt_init,
};

/* ---- rekey ----------------------------------------------------------------- */

static int run_rekey(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		KDF_OPTIONS,
		{"new-key-file", 0, true, OPT_NEW_KEY_FILE},
		{"new-passphrase-file", 0, true, OPT_NEW_PASS_FILE},
		{"new-passphrase-fd", 0, true, OPT_NEW_PASS_FD},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct bs_kdf_params kp = BS_KDF_PARAMS_INIT;
	struct key_arg nk = {0};
	const char *path = NULL;
	bool json = cli.json;
	int o, st = 0;
	cli_parser_init(&p, cmd, opts, argc, argv);
	while (!st && (o = cli_next(&p)) != CLI_END) {
		if (o == CLI_STOP)
			return p.status;
		if (o == CLI_ARG) {
			if (path)
				return cli_usage(cmd, "one image only");
			path = p.arg;
		} else if (o == OPT_NEW_KEY_FILE) {
			st = set_source(&nk, SRC_KEY_FILE, p.arg);
		} else if (o == OPT_NEW_PASS_FILE) {
			st = set_source(&nk, SRC_PASS_FILE, p.arg);
		} else if (o == OPT_NEW_PASS_FD) {
			st = set_source(&nk, SRC_PASS_FD, p.arg);
		} else if (o == OPT_JSON) {
			json = true;
		} else {
			st = kdf_option(cmd, o, p.arg, &kp);
		}
	}
	if (st)
		return st;
	if (!path)
		return cli_usage(cmd, "no image given");
	if (!nk.src)
		return cli_usage(cmd, "give --new-key-file, --new-passphrase-file or "
				      "--new-passphrase-fd");
	if (!current.src)
		return cli_error(CLI_EXIT_KEY, "rekey: give the current key (--key-file, "
					       "--passphrase-file or --passphrase-fd)");
	bs_key *k;
	if ((st = key_get(&nk, "new key", &k)) || (st = raise_ceilings(&nk, k, &kp))) {
		key_release(&nk);
		return st;
	}
	bs_image *img = NULL;
	int rc = cli_open(path, true, &img); /* loads the current key */
	if (!rc)
		rc = bs_image_rekey(img, k, &kp);
	st = rc ? cli_fail(rc) : CLI_EXIT_OK;
	if (!rc && json)
		cli_json_image(stdout, path, img);
	else if (!rc && !cli.quiet)
		printf("%s: key changed (%s)\n", path, kdf_label(img));
	bs_image_close(img);
	key_release(&nk);
	return st;
}

const struct cli_command cmd_rekey = {
	.name = "rekey",
	.summary = "change the key or passphrase of an encrypted image",
	.usage = "IMAGE --key-file|--passphrase-file|--passphrase-fd CURRENT\n"
		 "       --new-key-file FILE|--new-passphrase-file FILE|--new-passphrase-fd N\n"
		 "       [--kdf KDF ...] [--json]",
	.help = "Wraps the image's data key under the new key and replaces the bs.key\n"
		"entry in one crash-safe rewrite: interrupted, the image opens with the old\n"
		"key or with the new one.  Entries are not re-encrypted.\n\n"
		"Options:\n"
		"  --new-key-file FILE  the new key: a key file,\n"
		"  --new-passphrase-file FILE\n"
		"                       a passphrase read from FILE,\n"
		"  --new-passphrase-fd N\n"
		"                       or one read from descriptor N\n" KDF_HELP
		"  --json               the image as one JSON object (docs/JSON.md)\n",
	.run = run_rekey,
};
