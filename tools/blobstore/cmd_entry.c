/* cmd_entry.c - commands about entries: list, put, get, rm, resize. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <blobstore/crypt.h>

#include "cli.h"

enum { OPT_NAME = 1, OPT_JSON, OPT_ALL, OPT_CAPACITY, OPT_CHECK, OPT_ATTR, OPT_MANDATORY,
       OPT_OUTPUT, OPT_FORCE, OPT_ENCRYPT, OPT_PLAIN, OPT_CIPHER };

/* How to give a key, for messages. */
#define KEY_OPTIONS "--key-file, --passphrase-file or --passphrase-fd"

/* The error for an encryption request on an image without encryption. */
static int not_set_up(const char *path)
{
	return cli_error_code(CLI_EXIT_KEY, BS_EKEY, path,
			      "%s is not set up for encryption: 'blobstore encrypt-init %s "
			      "--key-file FILE' (or --passphrase-file, --passphrase-fd) sets it up",
			      path, path);
}

/* ---- list ---------------------------------------------------------------- */

static int run_list(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"json", 0, false, OPT_JSON},
		{"all", 'a', false, OPT_ALL},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	const char *path = NULL;
	bool json = cli.json, all = false;
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; (o = cli_next(&p)) != CLI_END;) {
		if (o == CLI_STOP)
			return p.status;
		if (o == OPT_JSON)
			json = true;
		else if (o == OPT_ALL)
			all = true;
		else if (path)
			return cli_usage(cmd, "unexpected argument '%s'", p.arg);
		else
			path = p.arg;
	}
	if (!path)
		return cli_usage(cmd, "missing IMAGE");
	bs_image *img = NULL;
	int rc = cli_open(path, false, &img);
	if (rc)
		return cli_fail(rc);
	unsigned flags = all ? BS_ITER_LIBRARY : 0;
	struct cli_states *states = cli_states_new(img);
	size_t width = 4;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, flags));) {
		size_t l = strlen(bs_entry_type(e));
		if (l > width)
			width = l < 32 ? l : 32;
	}
	if (json) {
		printf("{\"image\": ");
		cli_json_str(stdout, path);
		printf(", \"entries\": [");
	} else {
		printf("%10s %10s %10s %10s %-6s %-17s %-8s %-*s %s\n", "OFFSET", "LENGTH", "SIZE",
		       "CAPACITY", "CHECK", "ENCRYPTION", "STATUS", (int)width, "TYPE", "NAME");
	}
	bool first = true;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, flags));) {
		struct cli_entry_view v;
		cli_entry_view(states, img, e, &v);
		if (json) {
			printf("%s\n  ", first ? "" : ",");
			cli_json_entry(stdout, e, &v);
		} else {
			char size[24] = "-", cap[24] = "-";
			if (v.size_known)
				snprintf(size, sizeof size, "%" PRIu64, v.size);
			if (!bs_entry_status(e))
				snprintf(cap, sizeof cap, "%zu", bs_entry_capacity(e));
			const char *check = cli_entry_check(e), *enc = cli_entry_encryption(e);
			printf("%10" PRIu64 " %10" PRIu64 " %10s %10s %-6s %-17s %-8s ",
			       bs_entry_offset(e), bs_entry_size(e), size, cap,
			       check ? check : bs_entry_status(e) ? "-" : "raw", enc ? enc : "-",
			       v.status);
			const char *type = bs_entry_type(e), *name = bs_entry_name(e);
			cli_put_clean(stdout, type);
			if (name) {
				printf("%*s ", (int)(strlen(type) < width ? width - strlen(type) : 0), "");
				cli_put_clean(stdout, name);
			}
			fputc('\n', stdout);
		}
		first = false;
	}
	if (json) {
		printf("%s]}\n", first ? "" : "\n");
	} else {
		/* What is not ok, explained under the table. */
		for (bs_entry *e = NULL; (e = bs_entry_next(img, e, flags));) {
			struct cli_entry_view v;
			cli_entry_view(states, img, e, &v);
			if (!v.reason[0] || !strcmp(v.status, "locked"))
				continue;
			printf("%s: ", v.status);
			cli_put_key(stdout, bs_entry_type(e), bs_entry_name(e));
			printf(" at offset %" PRIu64 ": ", bs_entry_offset(e));
			cli_put_clean(stdout, v.reason);
			fputc('\n', stdout);
		}
		if (bs_image_is_encrypted(img) && !bs_image_has_key(img) && cli_count_encrypted(img))
			printf("locked: encrypted entries; give the key (" KEY_OPTIONS
			       ") to read them\n");
	}
	cli_states_free(states);
	bs_image_close(img);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_list = {
	.name = "list",
	.summary = "list the entries",
	.usage = "IMAGE [--json] [--all]",
	.help = "Lists the entries in directory order: offset, length of the encoding,\n"
		"size of the data, data capacity, slot check (crc32c, sha256, or raw for\n"
		"entries without slots), encryption (the cipher, or - for plaintext),\n"
		"status, type and name.  The status is ok; previous (the newest value is\n"
		"damaged: reads return the one before it); damaged (nothing can be read);\n"
		"locked (encrypted, and no key given); or refused (a mandatory attribute\n"
		"this version does not know).  Every status but ok is explained after the\n"
		"table.  Listing reads every entry's data to verify it.\n\n"
		"Options:\n"
		"  -a, --all  also list the library's own entries (types starting \"bs.\")\n"
		"  --json     one JSON object: image, entries (docs/JSON.md, \"entry\")\n",
	.run = run_list,
};

/* ---- the IMAGE TYPE [--name NAME] ... commands --------------------------- */

/* Positional arguments and --name of an entry command. */
struct entry_args {
	const char *pos[3];
	int npos;
	const char *name;
};

static int add_pos(struct cli_parser *p, struct entry_args *a, int max)
{
	if (a->npos >= max)
		return cli_usage(p->cmd, "unexpected argument '%s'", p->arg);
	a->pos[a->npos++] = p->arg;
	return 0;
}

/* Opens the image and finds the entry. */
static int open_entry(const struct entry_args *a, bool write, bs_image **img, bs_entry **e)
{
	int rc = cli_open(a->pos[0], write, img);
	if (rc)
		return cli_fail(rc);
	rc = bs_entry_find(*img, a->pos[1], a->name, e);
	if (rc) {
		int st = cli_fail(rc);
		bs_image_close(*img);
		*img = NULL;
		return st;
	}
	return 0;
}

/* {"image": ..., "entry": {...}} for commands about one entry. */
static void print_entry_json(const char *path, bs_image *img, bs_entry *e, const char *more)
{
	printf("{\"image\": ");
	cli_json_str(stdout, path);
	if (more)
		printf(", %s", more);
	printf(", \"entry\": ");
	cli_json_entry_alone(stdout, img, e);
	printf("}\n");
}

/* ---- put ----------------------------------------------------------------- */

struct put_opts {
	const char *check, *cipher;
	bool encrypt, plain, have_cap, json;
	uint64_t capacity;
	struct cli_attr *attrs;
	size_t nattrs;
};

/* The entry E exists: its data replaced (and attributes, capacity), or
 * first encrypted with --encrypt.  *ACTION says what happened. */
static int put_existing(bs_image *img, bs_entry *e, const struct put_opts *po,
			const uint8_t *data, size_t len, const char **action)
{
	int rc;
	*action = "replaced";
	if (bs_entry_status(e)) /* the write reports why the entry is refused */
		return cli_fail(bs_entry_write(e, data, len));
	const char *has = bs_checksum_name(bs_entry_checksum(e));
	if (po->check && (!bs_entry_is_slotted(e) || strcmp(po->check, has)))
		return cli_error_code(CLI_EXIT_USAGE, BS_EINVAL, bs_image_label(img),
				      "entry '%s'%s%s%s exists with check %s; --check applies only "
				      "when creating", bs_entry_type(e), bs_entry_name(e) ? "/'" : "",
				      bs_entry_name(e) ? bs_entry_name(e) : "",
				      bs_entry_name(e) ? "'" : "",
				      bs_entry_is_slotted(e) ? has : "none (raw)");
	if (po->have_cap && po->capacity < bs_entry_capacity(e))
		return cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, bs_image_label(img),
				      "entry has a capacity of %zu octets, more than --capacity "
				      "%" PRIu64 ": capacities never shrink (rm the entry and put it "
				      "again for a smaller one)",
				      bs_entry_capacity(e), po->capacity);
	bool enc = bs_entry_is_encrypted(e);
	if (po->plain && enc)
		return cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, bs_image_label(img),
				      "the entry is encrypted; --plain does not decrypt an entry "
				      "(rm it and put it again with --plain)");
	enum bs_cipher cipher = BS_CIPHER_DEFAULT;
	if (po->cipher)
		bs_cipher_parse(po->cipher, &cipher);
	if (po->encrypt && enc && po->cipher && cipher != bs_entry_cipher(e))
		return cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, bs_image_label(img),
				      "the entry is encrypted with %s already; its cipher does not "
				      "change", bs_cipher_name(bs_entry_cipher(e)));
	if (po->encrypt && !enc) {
		/* Crash-safe, and no plaintext of the old value stays: then the
		 * new value goes in encrypted. */
		if (!bs_image_is_encrypted(img))
			return not_set_up(bs_image_label(img));
		if (!bs_image_has_key(img))
			return cli_error_code(CLI_EXIT_KEY, BS_EKEY, bs_image_label(img),
					      "--encrypt needs the image's key (" KEY_OPTIONS ")");
		if ((rc = bs_entry_encrypt(e, cipher)))
			return cli_fail(rc);
		*action = "encrypted";
	} else if (!enc && !po->plain && bs_image_is_encrypted(img)) {
		cli_warn("entry is stored in plaintext in this encrypted image; 'put --encrypt' "
			 "encrypts it (--plain keeps it so without this warning)");
	}
	struct bs_attr *ba = calloc(po->nattrs + 1, sizeof *ba);
	if (!ba)
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	for (size_t i = 0; i < po->nattrs; i++)
		ba[i] = (struct bs_attr)BS_ATTR(po->attrs[i].name, po->attrs[i].flags,
						po->attrs[i].value, po->attrs[i].len);
	/* Data, attributes and capacity in one crash-safe step. */
	struct bs_entry_update u = BS_ENTRY_UPDATE_INIT;
	u.attrs = ba;
	u.nattrs = po->nattrs;
	u.data = data;
	u.len = len;
	u.capacity = po->have_cap ? (size_t)po->capacity : 0;
	rc = bs_entry_update(e, &u);
	free(ba);
	return rc ? cli_fail(rc) : CLI_EXIT_OK;
}

static int put_new(bs_image *img, const char *path, const char *type, const char *name,
		   const struct put_opts *po, const uint8_t *data, size_t len)
{
	bool enc_img = bs_image_is_encrypted(img);
	/* On an image set up for encryption every new entry is encrypted,
	 * unless asked for in plaintext by name. */
	bool encrypt = po->encrypt || (enc_img && !po->plain);
	/* Encryption was set up, and its key entry is lost: adding entries
	 * (in plaintext) would hide that the image is damaged. */
	if (!enc_img && cli_count_encrypted(img))
		return cli_error_code(CLI_EXIT_CORRUPT, BS_ECORRUPT, bs_image_label(img),
				      "%s holds encrypted entries, but its key entry (bs.key) is "
				      "missing or damaged ('blobstore check' says more); nothing is "
				      "written", path);
	if (encrypt && !enc_img)
		return not_set_up(path);
	if (encrypt && !bs_image_has_key(img))
		return cli_error_code(CLI_EXIT_KEY, BS_EKEY, bs_image_label(img),
				      "%s is set up for encryption, so new entries are encrypted: "
				      "give its key (" KEY_OPTIONS "), or --plain to store this entry "
				      "in plaintext", path);
	struct bs_attr *ba = calloc(po->nattrs + 1, sizeof *ba);
	if (!ba)
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	for (size_t i = 0; i < po->nattrs; i++)
		ba[i] = (struct bs_attr)BS_ATTR(po->attrs[i].name, po->attrs[i].flags,
						po->attrs[i].value, po->attrs[i].len);
	struct bs_entry_opts eo = BS_ENTRY_OPTS_INIT;
	eo.capacity = po->have_cap ? (size_t)po->capacity : len;
	eo.attrs = ba;
	eo.nattrs = po->nattrs;
	eo.flags = encrypt ? BS_ENTRY_ENCRYPT : 0;
	if (po->check)
		bs_checksum_parse(po->check, &eo.checksum); /* checked with the options */
	if (po->cipher)
		bs_cipher_parse(po->cipher, &eo.cipher);
	cli_progress_begin("writing entry", 0);
	int rc = bs_entry_create(img, type, name, &eo, data, len, NULL);
	cli_progress_end();
	free(ba);
	return rc ? cli_fail(rc) : CLI_EXIT_OK;
}

static int run_put(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"name", 'n', true, OPT_NAME},
		{"capacity", 'c', true, OPT_CAPACITY},
		{"check", 0, true, OPT_CHECK},
		{"attr", 0, true, OPT_ATTR},
		{"mandatory", 0, true, OPT_MANDATORY},
		{"encrypt", 0, false, OPT_ENCRYPT},
		{"plain", 0, false, OPT_PLAIN},
		{"cipher", 0, true, OPT_CIPHER},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct entry_args a = {0};
	struct put_opts po = {.json = cli.json};
	po.attrs = calloc((size_t)argc + 1, sizeof *po.attrs);
	uint8_t *data = NULL;
	size_t len = 0;
	bs_image *img = NULL;
	int st = 0;
	if (!po.attrs)
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; !st && (o = cli_next(&p)) != CLI_END;) {
		switch (o) {
		case CLI_STOP:
			st = p.status;
			goto out;
		case CLI_ARG:
			st = add_pos(&p, &a, 3);
			break;
		case OPT_NAME:
			a.name = p.arg;
			break;
		case OPT_CAPACITY:
			if (!cli_parse_size(p.arg, &po.capacity) || po.capacity > SIZE_MAX)
				st = cli_usage(cmd, "bad capacity '%s'", p.arg);
			po.have_cap = true;
			break;
		case OPT_CHECK:
			if (strcmp(p.arg, "crc32c") && strcmp(p.arg, "sha256"))
				st = cli_usage(cmd, "--check is crc32c or sha256, not '%s'", p.arg);
			po.check = p.arg;
			break;
		case OPT_ENCRYPT:
			po.encrypt = true;
			break;
		case OPT_PLAIN:
			po.plain = true;
			break;
		case OPT_JSON:
			po.json = true;
			break;
		case OPT_CIPHER:
			if (strcmp(p.arg, "aes-256-gcm") && strcmp(p.arg, "chacha20-poly1305"))
				st = cli_usage(cmd, "--cipher is aes-256-gcm or chacha20-poly1305");
			po.cipher = p.arg;
			po.encrypt = true;
			break;
		case OPT_ATTR:
		case OPT_MANDATORY:
			st = cli_parse_attr(cmd, p.arg, o == OPT_MANDATORY ? BS_ATTR_MANDATORY : 0,
					    &po.attrs[po.nattrs]);
			if (!st)
				po.nattrs++;
			break;
		}
	}
	if (!st && a.npos < 2)
		st = cli_usage(cmd, "missing %s", a.npos ? "TYPE" : "IMAGE and TYPE");
	if (!st && po.plain && po.encrypt)
		st = cli_usage(cmd, "--plain and --encrypt (or --cipher) exclude each other");
	if (st)
		goto out;
	const char *input = a.npos > 2 ? a.pos[2] : NULL;
	if (isatty(0) && (!input || !strcmp(input, "-"))) {
		/* Data typed on a terminal only when asked for by name. */
		if (!input) {
			st = cli_usage(cmd, "no FILE, and standard input is a terminal: give FILE, "
					    "or - to type the data (ended by Ctrl-D)");
			goto out;
		}
		if (!cli.quiet)
			fputs("blobstore: reading the data from the terminal; end it with Ctrl-D\n",
			      stderr);
	}
	/* Read the input before opening: the image stays locked only briefly. */
	if ((st = cli_read_input(input, &data, &len)))
		goto out;
	int rc = cli_open(a.pos[0], true, &img);
	if (rc) {
		st = cli_fail(rc);
		goto out;
	}
	bs_entry *e;
	const char *action = "created";
	rc = bs_entry_find(img, a.pos[1], a.name, &e);
	if (rc == BS_ENOENT) {
		st = put_new(img, a.pos[0], a.pos[1], a.name, &po, data, len);
	} else if (rc) {
		st = cli_fail(rc);
	} else {
		cli_progress_begin("writing entry", 0);
		st = put_existing(img, e, &po, data, len, &action);
		cli_progress_end();
	}
	if (!st && po.json && !bs_entry_find(img, a.pos[1], a.name, &e)) {
		char more[64];
		snprintf(more, sizeof more, "\"action\": \"%s\"", action);
		print_entry_json(a.pos[0], img, e, more);
	}
out:
	bs_image_close(img);
	for (size_t i = 0; i < po.nattrs; i++)
		cli_attr_free(&po.attrs[i]);
	free(po.attrs);
	if (data)
		memset(data, 0, len); /* may be a secret on its way to encryption */
	free(data);
	return st;
}

const struct cli_command cmd_put = {
	.name = "put",
	.summary = "create an entry or replace its data",
	.usage = "IMAGE TYPE [--name NAME] [FILE|-] [--capacity SIZE] [--check crc32c|sha256]\n"
		 "           [--attr NAME[=VALUE]]... [--mandatory NAME[=VALUE]]...\n"
		 "           [--encrypt [--cipher CIPHER] | --plain] [--json]",
	.help = "Stores the contents of FILE (standard input for -, or when FILE is left\n"
		"out and standard input is not a terminal) as the data of the entry TYPE\n"
		"(with NAME when given).  A missing entry is created with two data slots;\n"
		"an existing one has its data replaced crash-safely (with its attributes\n"
		"and capacity, in one step), growing its capacity when needed.  The input\n"
		"is read completely before the image is opened, so the writer lock is held\n"
		"only briefly.\n\n"
		"On an image set up for encryption (encrypt-init) every new entry is\n"
		"encrypted, so the key option is needed; --plain asks for plaintext.\n\n"
		"Options:\n"
		"  -n, --name NAME      the entry's name (UTF-8); without it, the unnamed entry\n"
		"  -c, --capacity SIZE  data capacity (default: the data's length; SIZE may end\n"
		"                       in K, M or G); an existing entry grows to it, and a\n"
		"                       capacity below its own is refused (entries never shrink)\n"
		"  --check ALG          slot check for a new entry: crc32c (default) or sha256\n"
		"  --attr NAME[=VALUE]  set an optional attribute (repeatable)\n"
		"  --mandatory NAME[=VALUE]\n"
		"                       set a mandatory attribute (repeatable): readers that\n"
		"                       do not know it refuse the entry\n"
		"  --encrypt            encrypt the entry: a new one (the default on an image\n"
		"                       set up for encryption), or an existing plaintext one,\n"
		"                       converted crash-safely before the new data is written,\n"
		"                       no plaintext of it left in either slot\n"
		"  --cipher CIPHER      aes-256-gcm (default) or chacha20-poly1305 (implies\n"
		"                       --encrypt)\n"
		"  --plain              create the entry in plaintext on an encrypted image\n"
		"  --json               the entry written, as one JSON object (docs/JSON.md)\n",
	.more = cli_help_attr_values,
	.run = run_put,
};

/* ---- get ----------------------------------------------------------------- */

static int run_get(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"name", 'n', true, OPT_NAME},
		{"output", 'o', true, OPT_OUTPUT},
		{"force", 'f', false, OPT_FORCE},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct entry_args a = {0};
	const char *output = NULL;
	bool force = false, json = cli.json;
	int st = 0;
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; !st && (o = cli_next(&p)) != CLI_END;) {
		if (o == CLI_STOP)
			return p.status;
		if (o == CLI_ARG)
			st = add_pos(&p, &a, 2);
		else if (o == OPT_NAME)
			a.name = p.arg;
		else if (o == OPT_OUTPUT)
			output = p.arg;
		else if (o == OPT_FORCE)
			force = true;
		else if (o == OPT_JSON)
			json = true;
	}
	if (st)
		return st;
	if (a.npos < 2)
		return cli_usage(cmd, "missing %s", a.npos ? "TYPE" : "IMAGE and TYPE");
	bs_image *img = NULL;
	bs_entry *e;
	void *data;
	size_t len;
	int rc;
	for (int tries = 0;; tries++) {
		if ((st = open_entry(&a, false, &img, &e)))
			return st;
		cli_progress_begin("reading entry", 0);
		rc = bs_entry_read_alloc(e, &data, &len);
		cli_progress_end();
		/* Another process rewrote or moved the entry after the open
		 * read the directory (BS_ESTALE): read it through a new one. */
		if (rc != BS_ESTALE || tries == CLI_STALE_TRIES)
			break;
		bs_image_close(img);
		img = NULL;
	}
	if (rc) {
		st = cli_fail(rc);
		bs_image_close(img);
		return st;
	}
	/* The newest value is damaged: the data is the previous one.  Say so
	 * (for a TPM's state it is a rollback); the JSON entry's status says
	 * it under --json. */
	int state;
	if (bs_entry_check(e, &state) == BS_OK && state == BS_STATE_PREVIOUS) {
		const char *nm = bs_entry_name(e);
		cli_warn("%s: entry '%s'%s%s%s at offset %llu: its newest value is damaged; this is "
			 "its previous value ('blobstore check' tells more; a put replaces the "
			 "damaged slot)",
			 a.pos[0], bs_entry_type(e), nm ? "/'" : "", nm ? nm : "", nm ? "'" : "",
			 (unsigned long long)bs_entry_offset(e));
	}
	bool secret = bs_entry_is_encrypted(e);
	if (output)
		st = cli_write_file(output, force, secret, data, len);
	else if (!json && !force && isatty(1) && !cli_is_text(data, len))
		st = cli_error(CLI_EXIT_USAGE, "refusing to write binary data to a terminal "
					       "(use -o FILE or --force)");
	else if (!json)
		st = cli_write_output(NULL, data, len);
	if (!st && json) {
		printf("{\"image\": ");
		cli_json_str(stdout, a.pos[0]);
		printf(", \"output\": ");
		cli_json_str(stdout, output);
		printf(", \"data\": ");
		if (output) {
			printf("null");
		} else {
			putchar('"');
			cli_hex(stdout, data, len);
			putchar('"');
		}
		printf(", \"entry\": ");
		cli_json_entry_alone(stdout, img, e);
		printf("}\n");
	}
	bs_image_close(img);
	if (secret)
		memset(data, 0, len);
	free(data);
	return st;
}

const struct cli_command cmd_get = {
	.name = "get",
	.summary = "write an entry's data to standard output or a file",
	.usage = "IMAGE TYPE [--name NAME] [-o FILE] [--force] [--json]",
	.help = "Writes the current data of the entry to standard output.  Data that\n"
		"fails its check is never written.  Binary data is not written to a\n"
		"terminal unless --force is given.  A file is written through a temporary\n"
		"file beside it, synced and renamed into place; an existing one is\n"
		"replaced only with --force.  Decrypted data gets mode 0600.\n\n"
		"Options:\n"
		"  -n, --name NAME    the entry's name\n"
		"  -o, --output FILE  write to FILE instead\n"
		"  -f, --force        replace FILE when it exists and is not empty; write\n"
		"                     binary data to a terminal\n"
		"  --json             one JSON object: image, output, data (hexadecimal, when\n"
		"                     there is no -o), entry\n",
	.run = run_get,
};

/* ---- rm ------------------------------------------------------------------ */

static int run_rm(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"name", 'n', true, OPT_NAME},
		{"force", 'f', false, OPT_FORCE},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct entry_args a = {0};
	bool force = false, json = cli.json;
	int st = 0;
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; !st && (o = cli_next(&p)) != CLI_END;) {
		if (o == CLI_STOP)
			return p.status;
		if (o == CLI_ARG)
			st = add_pos(&p, &a, 2);
		else if (o == OPT_NAME)
			a.name = p.arg;
		else if (o == OPT_FORCE)
			force = true;
		else if (o == OPT_JSON)
			json = true;
	}
	if (st)
		return st;
	if (a.npos < 2)
		return cli_usage(cmd, "missing %s", a.npos ? "TYPE" : "IMAGE and TYPE");
	bs_image *img = NULL;
	bs_entry *e;
	if ((st = open_entry(&a, true, &img, &e)))
		return st;
	const char *type = bs_entry_type(e);
	size_t enc = cli_count_encrypted(img);
	if (!strcmp(type, "bs.key") && enc)
		st = cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, bs_image_label(img),
				    "bs.key holds the key of %zu encrypted entr%s: without it they "
				    "can never be read again; rm them first", enc,
				    enc == 1 ? "y" : "ies");
	else if (!strncmp(type, "bs.", 3) && !force)
		st = cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, bs_image_label(img),
				    "'%s' is the library's own entry; --force removes it%s", type,
				    !strcmp(type, "bs.key") ? " (the image is then no longer set up "
							      "for encryption)" : "");
	else if (bs_entry_status(e) == BS_EUNSUPPORTED && !force)
		st = cli_error_code(CLI_EXIT_REFUSED, BS_EUNSUPPORTED, bs_image_label(img),
				    "the entry is refused here (%s): it holds what a newer version "
				    "wrote, which this one cannot read; --force deletes it anyway",
				    bs_entry_status_message(e));
	if (st) {
		bs_image_close(img);
		return st;
	}
	/* What is removed, shown as it was. */
	char *shown = NULL;
	size_t shown_len = 0;
	if (json) {
		FILE *m = open_memstream(&shown, &shown_len);
		if (m) {
			cli_json_entry_alone(m, img, e);
			fclose(m);
		}
	}
	int rc = bs_entry_delete(e);
	st = rc ? cli_fail(rc) : CLI_EXIT_OK;
	if (!st && json) {
		printf("{\"image\": ");
		cli_json_str(stdout, a.pos[0]);
		printf(", \"entry\": %s}\n", shown ? shown : "null");
	}
	free(shown);
	bs_image_close(img);
	return st;
}

const struct cli_command cmd_rm = {
	.name = "rm",
	.summary = "delete an entry",
	.usage = "IMAGE TYPE [--name NAME] [--force] [--json]",
	.help = "Deletes the entry the command names: its octets become free space and\n"
		"are overwritten with zeros.  Crash-safe.\n\n"
		"Options:\n"
		"  -n, --name NAME  the entry's name\n"
		"  -f, --force      also delete an entry this version refuses (a newer\n"
		"                   version's data it cannot read), or one of the library's\n"
		"                   own (bs.key while no entry is encrypted)\n"
		"  --json           the entry deleted, as it was, as one JSON object\n",
	.run = run_rm,
};

/* ---- resize -------------------------------------------------------------- */

static int run_resize(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"name", 'n', true, OPT_NAME},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct entry_args a = {0};
	bool json = cli.json;
	int st = 0;
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; !st && (o = cli_next(&p)) != CLI_END;) {
		if (o == CLI_STOP)
			return p.status;
		if (o == CLI_ARG)
			st = add_pos(&p, &a, 3);
		else if (o == OPT_NAME)
			a.name = p.arg;
		else if (o == OPT_JSON)
			json = true;
	}
	if (st)
		return st;
	if (a.npos < 3)
		return cli_usage(cmd, "missing arguments");
	uint64_t cap;
	if (!cli_parse_size(a.pos[2], &cap) || cap > SIZE_MAX)
		return cli_usage(cmd, "bad capacity '%s'", a.pos[2]);
	bs_image *img = NULL;
	bs_entry *e;
	if ((st = open_entry(&a, true, &img, &e)))
		return st;
	size_t now = bs_entry_capacity(e);
	int rc = BS_OK;
	if (!bs_entry_status(e) && bs_entry_is_slotted(e) && cap < now)
		st = cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, bs_image_label(img),
				    "entry has a capacity of %zu octets, more than %" PRIu64
				    ": capacities never shrink (rm the entry and put it again for a "
				    "smaller one)", now, cap);
	else if ((rc = bs_entry_resize(e, (size_t)cap)))
		st = cli_fail(rc);
	if (!st && json) {
		print_entry_json(a.pos[0], img, e, NULL);
	} else if (!st && !cli.quiet) {
		fputs("entry ", stdout);
		cli_put_key(stdout, bs_entry_type(e), bs_entry_name(e));
		if (cap == now)
			printf(": capacity %zu already\n", now);
		else
			printf(": capacity %zu\n", bs_entry_capacity(e));
	}
	bs_image_close(img);
	return st;
}

const struct cli_command cmd_resize = {
	.name = "resize",
	.summary = "grow an entry's data capacity",
	.usage = "IMAGE TYPE [--name NAME] CAPACITY [--json]",
	.help = "Rewrites the entry (crash-safe) so that its data can grow to CAPACITY\n"
		"octets without another rewrite.  A capacity below the current one is\n"
		"refused (exit status 8: capacities never shrink); raw entries (without\n"
		"slots) have no spare capacity.\n\n"
		"Options:\n"
		"  -n, --name NAME  the entry's name\n"
		"  --json           the entry, as one JSON object\n",
	.more = cli_help_sizes,
	.run = run_resize,
};
