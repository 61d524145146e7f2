/* cmd_entry.c - commands about entries: list, put, get, rm, resize. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum { OPT_NAME = 1, OPT_JSON, OPT_ALL, OPT_CAPACITY, OPT_CHECK, OPT_ATTR, OPT_MANDATORY,
       OPT_OUTPUT, OPT_FORCE, OPT_ENCRYPT, OPT_CIPHER };

/* "'TYPE'/'NAME'" for messages, without control characters. */
static void put_key(FILE *out, const char *type, const char *name)
{
	fputc('\'', out);
	cli_put_clean(out, type);
	fputc('\'', out);
	if (name) {
		fputs("/'", out);
		cli_put_clean(out, name);
		fputc('\'', out);
	}
}

/* ---- list ---------------------------------------------------------------- */

static bool hidden(const bs_entry *e, bool all)
{
	return !all && !strncmp(bs_entry_type(e), "bs.", 3);
}

static int run_list(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"json", 0, false, OPT_JSON},
		{"all", 'a', false, OPT_ALL},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	const char *path = NULL;
	bool json = false, all = false;
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
	bs_image *img;
	int rc = cli_open(path, false, &img);
	if (rc)
		return cli_fail(rc);
	size_t width = 4;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		size_t l = strlen(bs_entry_type(e));
		if (l > width)
			width = l < 32 ? l : 32;
	}
	if (json) {
		printf("{\"image\": ");
		cli_json_str(stdout, path);
		printf(", \"entries\": [");
	} else {
		printf("%10s %10s %10s %-6s %-7s %-*s %s\n", "OFFSET", "SIZE", "CAPACITY", "CHECK",
		       "STATUS", (int)width, "TYPE", "NAME");
	}
	bool first = true;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		if (hidden(e, all))
			continue;
		int status = bs_entry_status(e);
		const char *check = status ? NULL : bs_checksum_name(bs_entry_checksum(e));
		if (!status && !check)
			check = "raw";
		if (json) {
			printf("%s\n  {\"type\": ", first ? "" : ",");
			cli_json_str(stdout, bs_entry_type(e));
			printf(", \"name\": ");
			cli_json_str(stdout, bs_entry_name(e));
			printf(", \"offset\": %" PRIu64 ", \"size\": %" PRIu64 ", \"capacity\": ",
			       bs_entry_offset(e), bs_entry_size(e));
			if (status)
				printf("null");
			else
				printf("%zu", bs_entry_capacity(e));
			printf(", \"check\": ");
			cli_json_str(stdout, check);
			printf(", \"status\": \"%s\", \"reason\": ", status ? "refused" : "ok");
			cli_json_str(stdout, status ? bs_entry_status_message(e) : NULL);
			printf("}");
		} else {
			char cap[24] = "-";
			if (!status)
				snprintf(cap, sizeof cap, "%zu", bs_entry_capacity(e));
			printf("%10" PRIu64 " %10" PRIu64 " %10s %-6s %-7s ", bs_entry_offset(e),
			       bs_entry_size(e), cap, check ? check : "-", status ? "REFUSED" : "ok");
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
		for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
			if (hidden(e, all) || !bs_entry_status(e))
				continue;
			printf("refused: ");
			put_key(stdout, bs_entry_type(e), bs_entry_name(e));
			printf(" at offset %" PRIu64 ": ", bs_entry_offset(e));
			cli_put_clean(stdout, bs_entry_status_message(e));
			fputc('\n', stdout);
		}
	}
	bs_image_close(img);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_list = {
	.name = "list",
	.summary = "list the entries",
	.usage = "IMAGE [--json] [--all]",
	.help = "Lists the entries in directory order: offset, encoded size, data capacity,\n"
		"slot check (crc32c, sha256, or raw for entries without slots), status,\n"
		"type and name.  Refused entries (unknown mandatory attribute, corrupt)\n"
		"are listed with status REFUSED and explained after the table.\n\n"
		"Options:\n"
		"  -a, --all  also list the library's own entries (types starting \"bs.\")\n"
		"  --json     one JSON object: image, entries (each with type, name,\n"
		"             offset, size, capacity, check, status, reason)\n",
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

/* ---- put ----------------------------------------------------------------- */

static int put_existing(bs_entry *e, const char *check, bool have_cap,
			uint64_t capacity, struct cli_attr *attrs, size_t nattrs,
			const uint8_t *data, size_t len)
{
	int rc;
	if (bs_entry_status(e)) /* the write reports why the entry is refused */
		return cli_fail(bs_entry_write(e, data, len));
	const char *has = bs_checksum_name(bs_entry_checksum(e));
	if (check && (!has || strcmp(check, has))) {
		fputs("blobstore: entry ", stderr);
		put_key(stderr, bs_entry_type(e), bs_entry_name(e));
		fprintf(stderr, " exists with check %s; --check applies only when creating\n",
			has ? has : "none (raw)");
		return CLI_EXIT_USAGE;
	}
	if (have_cap && capacity > bs_entry_capacity(e) && (rc = bs_entry_resize(e, capacity)))
		return cli_fail(rc);
	for (size_t i = 0; i < nattrs; i++)
		if ((rc = bs_attr_set(e, attrs[i].name, attrs[i].flags, attrs[i].value, attrs[i].len)))
			return cli_fail(rc);
	if ((rc = bs_entry_write(e, data, len)))
		return cli_fail(rc);
	return CLI_EXIT_OK;
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
		{"cipher", 0, true, OPT_CIPHER},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct entry_args a = {0};
	const char *check = NULL, *cipher = NULL;
	bool encrypt = false;
	uint64_t capacity = 0;
	bool have_cap = false;
	struct cli_attr *attrs = calloc((size_t)argc + 1, sizeof *attrs);
	size_t nattrs = 0;
	uint8_t *data = NULL;
	size_t len = 0;
	bs_image *img = NULL;
	int st = 0;
	if (!attrs)
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
			if (!cli_parse_size(p.arg, &capacity) || capacity > SIZE_MAX)
				st = cli_usage(cmd, "bad capacity '%s'", p.arg);
			have_cap = true;
			break;
		case OPT_CHECK:
			if (strcmp(p.arg, "crc32c") && strcmp(p.arg, "sha256"))
				st = cli_usage(cmd, "--check is crc32c or sha256, not '%s'", p.arg);
			check = p.arg;
			break;
		case OPT_ENCRYPT:
			encrypt = true;
			break;
		case OPT_CIPHER:
			if (strcmp(p.arg, "aes-256-gcm") && strcmp(p.arg, "chacha20-poly1305"))
				st = cli_usage(cmd, "--cipher is aes-256-gcm or chacha20-poly1305");
			cipher = p.arg;
			encrypt = true;
			break;
		case OPT_ATTR:
		case OPT_MANDATORY:
			st = cli_parse_attr(cmd, p.arg, o == OPT_MANDATORY ? BS_ATTR_MANDATORY : 0,
					    &attrs[nattrs]);
			if (!st)
				nattrs++;
			break;
		}
	}
	if (!st && a.npos < 2)
		st = cli_usage(cmd, "missing %s", a.npos ? "TYPE" : "IMAGE and TYPE");
	/* Read the input before opening: the image stays locked only briefly. */
	if (st || (st = cli_read_input(a.npos > 2 ? a.pos[2] : NULL, &data, &len)))
		goto out;
	int rc = cli_open(a.pos[0], true, &img);
	if (rc) {
		st = cli_fail(rc);
		goto out;
	}
	bs_entry *e;
	rc = bs_entry_find(img, a.pos[1], a.name, &e);
	if (rc == BS_ENOENT) {
		struct bs_attr *ba = calloc(nattrs + 1, sizeof *ba);
		if (!ba) {
			st = cli_error(CLI_EXIT_OTHER, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < nattrs; i++)
			ba[i] = (struct bs_attr)BS_ATTR(attrs[i].name, attrs[i].flags, attrs[i].value,
							attrs[i].len);
		struct bs_entry_opts eo = BS_ENTRY_OPTS_INIT;
		eo.capacity = have_cap ? (size_t)capacity : len;
		eo.attrs = ba;
		eo.nattrs = nattrs;
		eo.flags = encrypt ? BS_ENTRY_ENCRYPT : 0;
		if (check)
			bs_checksum_parse(check, &eo.checksum); /* checked with the options */
		if (cipher)
			bs_cipher_parse(cipher, &eo.cipher);
		cli_progress_begin("writing entry", 0);
		rc = bs_entry_create(img, a.pos[1], a.name, &eo, data, len, NULL);
		cli_progress_end();
		free(ba);
		st = rc ? cli_fail(rc) : CLI_EXIT_OK;
	} else if (rc) {
		st = cli_fail(rc);
	} else {
		cli_progress_begin("writing entry", 0);
		st = put_existing(e, check, have_cap, capacity, attrs, nattrs, data, len);
		cli_progress_end();
	}
out:
	bs_image_close(img);
	for (size_t i = 0; i < nattrs; i++)
		cli_attr_free(&attrs[i]);
	free(attrs);
	free(data);
	return st;
}

const struct cli_command cmd_put = {
	.name = "put",
	.summary = "create an entry or replace its data",
	.usage = "IMAGE TYPE [--name NAME] [FILE|-] [--capacity SIZE] [--check crc32c|sha256]\n"
		 "           [--attr NAME[=VALUE]]... [--mandatory NAME[=VALUE]]...\n"
		 "           [--encrypt [--cipher CIPHER]]",
	.help = "Stores the contents of FILE (standard input when FILE is - or absent) as\n"
		"the data of the entry TYPE (with NAME when given).  A missing entry is\n"
		"created with two data slots; an existing one has its data replaced,\n"
		"growing its capacity when needed.  The input is read completely before\n"
		"the image is opened, so the writer lock is held only briefly.\n\n"
		"Options:\n"
		"  -n, --name NAME      the entry's name (UTF-8); without it, the unnamed entry\n"
		"  -c, --capacity SIZE  data capacity (default: the data's length; SIZE may end\n"
		"                       in K, M or G); an existing entry grows, never shrinks\n"
		"  --check ALG          slot check for a new entry: crc32c (default) or sha256\n"
		"  --attr NAME[=VALUE]  set an optional attribute (repeatable)\n"
		"  --mandatory NAME[=VALUE]\n"
		"                       set a mandatory attribute (repeatable): readers that\n"
		"                       do not know it refuse the entry\n"
		"  --encrypt            create the entry encrypted (the image needs\n"
		"                       encrypt-init and a key option; CAPACITY is plaintext)\n"
		"  --cipher CIPHER      aes-256-gcm (default) or chacha20-poly1305\n",
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
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct entry_args a = {0};
	const char *output = NULL;
	bool force = false;
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
	}
	if (st)
		return st;
	if (a.npos < 2)
		return cli_usage(cmd, "missing %s", a.npos ? "TYPE" : "IMAGE and TYPE");
	bs_image *img;
	bs_entry *e;
	if ((st = open_entry(&a, false, &img, &e)))
		return st;
	void *data;
	size_t len;
	cli_progress_begin("reading entry", 0);
	int rc = bs_entry_read_alloc(e, &data, &len);
	cli_progress_end();
	if (rc) {
		st = cli_fail(rc);
		bs_image_close(img);
		return st;
	}
	bs_image_close(img);
	if (!output && !force && isatty(1) && !cli_is_text(data, len))
		st = cli_error(CLI_EXIT_USAGE, "refusing to write binary data to a terminal "
					       "(use -o FILE or --force)");
	else
		st = cli_write_output(output, data, len);
	free(data);
	return st;
}

const struct cli_command cmd_get = {
	.name = "get",
	.summary = "write an entry's data to standard output or a file",
	.usage = "IMAGE TYPE [--name NAME] [-o FILE] [--force]",
	.help = "Writes the current data of the entry to standard output.  Data that\n"
		"fails its check is never written.  Binary data is not written to a\n"
		"terminal unless --force is given.\n\n"
		"Options:\n"
		"  -n, --name NAME    the entry's name\n"
		"  -o, --output FILE  write to FILE (created or truncated) instead\n"
		"  -f, --force        write binary data to a terminal anyway\n",
	.run = run_get,
};

/* ---- rm ------------------------------------------------------------------ */

/* Parses the arguments of a command whose only option is --name, with at
 * most MAXPOS positional arguments.  Returns -1 to go on, else the exit
 * status (usage error, or --help done). */
static int parse_name_only(const struct cli_command *cmd, int argc, char **argv, int maxpos,
			   struct entry_args *a)
{
	static const struct cli_option opts[] = {
		{"name", 'n', true, OPT_NAME},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	int st = 0;
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; !st && (o = cli_next(&p)) != CLI_END;) {
		if (o == CLI_STOP)
			return p.status;
		if (o == CLI_ARG)
			st = add_pos(&p, a, maxpos);
		else if (o == OPT_NAME)
			a->name = p.arg;
	}
	return st ? st : -1;
}

static int run_rm(const struct cli_command *cmd, int argc, char **argv)
{
	struct entry_args a = {0};
	int st = parse_name_only(cmd, argc, argv, 2, &a);
	if (st >= 0)
		return st;
	if (a.npos < 2)
		return cli_usage(cmd, "missing %s", a.npos ? "TYPE" : "IMAGE and TYPE");
	bs_image *img;
	bs_entry *e;
	if ((st = open_entry(&a, true, &img, &e)))
		return st;
	int rc = bs_entry_delete(e);
	st = rc ? cli_fail(rc) : CLI_EXIT_OK;
	bs_image_close(img);
	return st;
}

const struct cli_command cmd_rm = {
	.name = "rm",
	.summary = "delete an entry",
	.usage = "IMAGE TYPE [--name NAME]",
	.help = "Deletes the entry: its octets become free space and are overwritten with\n"
		"zeros.  Refused entries can be deleted too.\n\n"
		"Options:\n"
		"  -n, --name NAME  the entry's name\n",
	.run = run_rm,
};

/* ---- resize -------------------------------------------------------------- */

static int run_resize(const struct cli_command *cmd, int argc, char **argv)
{
	struct entry_args a = {0};
	int st = parse_name_only(cmd, argc, argv, 3, &a);
	if (st >= 0)
		return st;
	if (a.npos < 3)
		return cli_usage(cmd, "missing arguments");
	uint64_t cap;
	if (!cli_parse_size(a.pos[2], &cap) || cap > SIZE_MAX)
		return cli_usage(cmd, "bad capacity '%s'", a.pos[2]);
	bs_image *img;
	bs_entry *e;
	if ((st = open_entry(&a, true, &img, &e)))
		return st;
	int rc = bs_entry_resize(e, (size_t)cap);
	if (rc) {
		st = cli_fail(rc);
	} else if (!cli.quiet) {
		fputs("entry ", stdout);
		put_key(stdout, bs_entry_type(e), bs_entry_name(e));
		printf(": capacity %zu\n", bs_entry_capacity(e));
	}
	bs_image_close(img);
	return st;
}

const struct cli_command cmd_resize = {
	.name = "resize",
	.summary = "grow an entry's data capacity",
	.usage = "IMAGE TYPE [--name NAME] CAPACITY",
	.help = "Rewrites the entry (crash-safe) so that its data can grow to CAPACITY\n"
		"octets without another rewrite.  Capacities never shrink below the\n"
		"current one; raw entries (without slots) have no spare capacity.\n\n"
		"Options:\n"
		"  -n, --name NAME  the entry's name\n",
	.more = cli_help_sizes,
	.run = run_resize,
};
