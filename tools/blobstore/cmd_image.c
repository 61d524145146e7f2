/* cmd_image.c - commands about a whole image: format, info, check, dump,
 * compact, grow. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_JSON = 1, OPT_SCHEMA };

static const struct cli_option json_opts[] = {
	{"json", 0, false, OPT_JSON},
	{NULL, 0, false, 0},
};

/* Collects NMIN to NMAX positional arguments and the flags these commands
 * share.  Returns -1 when the command should go on, else the exit status
 * it should return (help shown, usage error). */
static int take_args(struct cli_parser *p, const char **args, int nmin, int nmax, int *n,
		     bool *json, bool *schema)
{
	*n = 0;
	for (;;) {
		int o = cli_next(p);
		switch (o) {
		case CLI_END:
			if (*n < nmin)
				return cli_usage(p->cmd, "missing arguments");
			return -1;
		case CLI_STOP:
			return p->status;
		case CLI_ARG:
			if (*n >= nmax)
				return cli_usage(p->cmd, "unexpected argument '%s'", p->arg);
			args[(*n)++] = p->arg;
			break;
		case OPT_JSON:
			*json = true;
			break;
		case OPT_SCHEMA:
			*schema = true;
			break;
		}
	}
}

/* ---- format -------------------------------------------------------------- */

static int run_format(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *path;
	int n, st;
	bool json = false, schema = false;
	cli_parser_init(&p, cmd, NULL, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &json, &schema)) >= 0)
		return st;
	bs_image *img;
	int rc = bs_image_open(path, cli.open_flags | BS_OPEN_CREATE | BS_OPEN_EXCL, &img);
	if (rc)
		return cli_fail(rc);
	if (!cli.quiet) {
		fputs("formatted ", stdout);
		cli_put_clean(stdout, path);
		fputs(", image id ", stdout);
		cli_hex(stdout, bs_image_id(img), 16);
		fputc('\n', stdout);
	}
	bs_image_close(img);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_format = {
	.name = "format",
	.summary = "create a new, empty image",
	.usage = "IMAGE",
	.help = "Creates IMAGE holding only the image entry (bs.image, with a random\n"
		"16-octet image id).  An empty existing file is formatted; a non-empty\n"
		"one is never overwritten (exit status 8).\n",
	.run = run_format,
};

/* ---- info ---------------------------------------------------------------- */

static int run_info(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *path;
	int n, st;
	bool json = false, schema = false;
	cli_parser_init(&p, cmd, json_opts, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &json, &schema)) >= 0)
		return st;
	bs_image *img;
	int rc = cli_open(path, false, &img);
	if (rc)
		return cli_fail(rc);
	struct bs_image_stat s = BS_IMAGE_STAT_INIT;
	bs_image_stat(img, &s);
	if (json) {
		printf("{\"image\": ");
		cli_json_str(stdout, path);
		printf(", \"id\": \"");
		cli_hex(stdout, bs_image_id(img), 16);
		printf("\", \"size\": %" PRIu64 ", \"dir_end\": %" PRIu64 ", \"used\": %" PRIu64
		       ", \"free_holes\": %" PRIu64 ", \"free_tail\": %" PRIu64
		       ", \"entries\": %" PRIu64 ", \"refused\": %" PRIu64 "}\n",
		       s.size, s.dir_end, s.used, s.free_holes, s.free_tail, s.entries, s.refused);
	} else {
		fputs("image:          ", stdout);
		cli_put_clean(stdout, path);
		fputs("\nid:             ", stdout);
		cli_hex(stdout, bs_image_id(img), 16);
		printf("\nsize:           %" PRIu64 " octets\n"
		       "directory end:  %" PRIu64 "\n"
		       "used:           %" PRIu64 " octets in live entries\n"
		       "free holes:     %" PRIu64 " octets ('compact' reclaims them)\n"
		       "free tail:      %" PRIu64 " octets\n"
		       "entries:        %" PRIu64 " (the image entry included)\n"
		       "refused:        %" PRIu64 "\n",
		       s.size, s.dir_end, s.used, s.free_holes, s.free_tail, s.entries, s.refused);
	}
	bs_image_close(img);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_info = {
	.name = "info",
	.summary = "show the image's size, space use, entry counts and id",
	.usage = "IMAGE [--json]",
	.help = "Shows the image size, where the directory ends, the octets used by live\n"
		"entries, free octets in holes (deleted entries: 'compact' reclaims them)\n"
		"and past the directory end, the number of entries and of refused\n"
		"entries, and the image id in hexadecimal.\n\n"
		"Options:\n"
		"  --json   one JSON object with the fields image, id, size, dir_end, used,\n"
		"           free_holes, free_tail, entries, refused\n",
	.run = run_info,
};

/* ---- check --------------------------------------------------------------- */

struct problem {
	uint64_t offset; /* UINT64_MAX: none */
	int code;
	char *type, *name, *msg;
};

struct check_ctx {
	const char *label;
	bool json;
	struct problem *list;
	size_t n, cap;
	int alloc_failed;
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Prints one problem as a line that names image, entry and offset. */
static void print_problem(const struct check_ctx *c, const struct problem *pr)
{
	const char *lab = c->label;
	size_t ll = strlen(lab);
	fputs(pr->code ? "" : "note: ", stdout);
	/* Messages from last_error() already start with the image. */
	if (!strncmp(pr->msg, lab, ll) && pr->msg[ll] == ':') {
		cli_put_clean(stdout, pr->msg);
		fputc('\n', stdout);
		return;
	}
	cli_put_clean(stdout, lab);
	fputs(": ", stdout);
	if (pr->type) {
		fputs("entry '", stdout);
		cli_put_clean(stdout, pr->type);
		fputc('\'', stdout);
		if (pr->name) {
			fputs("/'", stdout);
			cli_put_clean(stdout, pr->name);
			fputc('\'', stdout);
		}
		fputc(' ', stdout);
	}
	if (pr->offset != UINT64_MAX)
		printf("at offset %" PRIu64 ": ", pr->offset);
	cli_put_clean(stdout, pr->msg);
	fputc('\n', stdout);
}

static void on_problem(void *ctx, const bs_entry *e, uint64_t offset, int code, const char *msg)
{
	struct check_ctx *c = ctx;
	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 16;
		struct problem *l = realloc(c->list, nc * sizeof *l);
		if (!l) {
			c->alloc_failed = 1;
			return;
		}
		c->list = l;
		c->cap = nc;
	}
	struct problem *pr = &c->list[c->n];
	pr->offset = offset;
	pr->code = code;
	pr->type = e ? dup_or_null(bs_entry_type(e)) : NULL;
	pr->name = e ? dup_or_null(bs_entry_name(e)) : NULL;
	pr->msg = strdup(msg ? msg : bs_error_string(code));
	if (!pr->msg || (e && !pr->type)) {
		free(pr->type);
		free(pr->name);
		free(pr->msg);
		c->alloc_failed = 1;
		return;
	}
	c->n++;
	if (!c->json)
		print_problem(c, pr);
}

static const char *code_name(int code)
{
	switch (code) {
	case BS_OK: return "note";
	case BS_ECORRUPT: return "corrupt";
	case BS_EUNSUPPORTED: return "unsupported";
	case BS_EIO: return "io";
	case BS_ENOMEM: return "nomem";
	default: return "error";
	}
}

static int run_check(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"json", 0, false, OPT_JSON},
		{"schema", 0, false, OPT_SCHEMA},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	const char *path;
	int n, st;
	bool json = false, schema = false;
	cli_parser_init(&p, cmd, opts, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &json, &schema)) >= 0)
		return st;
	bs_image *img;
	int rc = cli_open(path, false, &img);
	if (rc) {
		/* The directory itself is broken: that is check's answer too. */
		if (json && rc == BS_ECORRUPT) {
			printf("{\"image\": ");
			cli_json_str(stdout, path);
			printf(", \"ok\": false, \"entries\": 0, \"problems\": [{\"code\": \"corrupt\", "
			       "\"offset\": null, \"type\": null, \"name\": null, \"message\": ");
			cli_json_str(stdout, last_error());
			printf("}]}\n");
		}
		return cli_fail(rc);
	}
	struct check_ctx c = {.label = path, .json = json};
	cli_progress_begin("checking", 0);
	rc = bs_image_check(img, schema, on_problem, &c);
	cli_progress_end();
	size_t entries = bs_image_count(img, BS_ITER_LIBRARY);
	bs_image_close(img);
	int worst = BS_OK;
	size_t problems = 0, unsupported = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (!c.list[i].code)
			continue;
		problems++;
		if (c.list[i].code == BS_EUNSUPPORTED)
			unsupported++;
		else if (!worst)
			worst = c.list[i].code;
	}
	if (rc && !problems)
		worst = rc; /* a failure the callback could not report */
	if (c.alloc_failed && !worst)
		worst = BS_ENOMEM;
	if (json) {
		printf("{\"image\": ");
		cli_json_str(stdout, path);
		printf(", \"ok\": %s, \"entries\": %zu, \"schema\": %s, \"problems\": [",
		       problems || worst ? "false" : "true", entries, schema ? "true" : "false");
		for (size_t i = 0; i < c.n; i++) {
			const struct problem *pr = &c.list[i];
			printf("%s{\"code\": \"%s\", \"offset\": ", i ? ", " : "", code_name(pr->code));
			if (pr->offset == UINT64_MAX)
				printf("null");
			else
				printf("%" PRIu64, pr->offset);
			printf(", \"type\": ");
			cli_json_str(stdout, pr->type);
			printf(", \"name\": ");
			cli_json_str(stdout, pr->name);
			printf(", \"message\": ");
			cli_json_str(stdout, pr->msg);
			printf("}");
		}
		printf("]}\n");
	} else {
		cli_put_clean(stdout, path);
		printf(": %zu entries checked%s: ", entries, schema ? " (with the ASN.1 schema)" : "");
		if (!problems && !worst)
			printf("no problems\n");
		else
			printf("%zu problem%s%s\n", problems, problems == 1 ? "" : "s",
			       unsupported ? ", entries refused for unknown mandatory attributes "
					     "were not verified" : "");
	}
	for (size_t i = 0; i < c.n; i++) {
		free(c.list[i].type);
		free(c.list[i].name);
		free(c.list[i].msg);
	}
	free(c.list);
	if (worst)
		return cli_exit_code(worst);
	return unsupported ? CLI_EXIT_REFUSED : CLI_EXIT_OK;
}

const struct cli_command cmd_check = {
	.name = "check",
	.summary = "verify every entry; report all problems",
	.usage = "IMAGE [--schema] [--json]",
	.help = "Verifies the directory, every entry's strict DER encoding and every data\n"
		"slot's check, and prints each problem on its own line (image, entry,\n"
		"offset, what is wrong), then a summary line.  Exit status 0 when there is\n"
		"no problem, 3 when something is corrupt, 6 when the only problems are\n"
		"entries refused for a mandatory attribute this version does not know\n"
		"(they are not corrupt, but cannot be verified here).\n\n"
		"Options:\n"
		"  --schema  also decode each entry with libtasn1 against the ASN.1 module\n"
		"  --json    one JSON object: image, ok, entries, schema, problems (each with\n"
		"            code, offset, type, name, message)\n",
	.run = run_check,
};

/* ---- dump ---------------------------------------------------------------- */

static int run_dump(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *path;
	int n, st;
	bool json = false, schema = false;
	cli_parser_init(&p, cmd, NULL, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &json, &schema)) >= 0)
		return st;
	bs_image *img;
	int rc = cli_open(path, false, &img);
	if (rc)
		return cli_fail(rc);
	rc = bs_image_dump(img, stdout);
	bs_image_close(img);
	return rc ? cli_fail(rc) : CLI_EXIT_OK;
}

const struct cli_command cmd_dump = {
	.name = "dump",
	.summary = "annotated listing of every element with its offset",
	.usage = "IMAGE",
	.help = "Lists the whole image for people: the directory framing, each element\n"
		"with its offset and header octets, free space, each entry's elements down\n"
		"to attribute values (unknown ones included), and a summary of each data\n"
		"area; for slotted entries the generation, length and check result of both\n"
		"slots and which one is current.  The format is for reading, not parsing.\n",
	.run = run_dump,
};

/* ---- compact ------------------------------------------------------------- */

static int run_compact(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *path;
	int n, st;
	bool json = false, schema = false;
	cli_parser_init(&p, cmd, NULL, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &json, &schema)) >= 0)
		return st;
	bs_image *img;
	int rc = cli_open(path, true, &img);
	if (rc)
		return cli_fail(rc);
	struct bs_image_stat before = BS_IMAGE_STAT_INIT, after = BS_IMAGE_STAT_INIT;
	bs_image_stat(img, &before);
	cli_progress_begin("compacting", 0);
	rc = bs_image_compact(img);
	cli_progress_end();
	if (rc) {
		st = cli_fail(rc);
		bs_image_close(img);
		return st;
	}
	bs_image_stat(img, &after);
	bs_image_close(img);
	if (!cli.quiet) {
		cli_put_clean(stdout, path);
		/* The directory's end, not the storage size: fixed-size storage
		 * (block devices, NBD) keeps its size, the directory shrinks. */
		printf(": reclaimed %" PRIu64 " octets (directory %" PRIu64 " -> %" PRIu64 ")\n",
		       before.dir_end > after.dir_end ? before.dir_end - after.dir_end : 0,
		       before.dir_end, after.dir_end);
	}
	return CLI_EXIT_OK;
}

const struct cli_command cmd_compact = {
	.name = "compact",
	.summary = "rewrite the image without free space",
	.usage = "IMAGE",
	.help = "Rewrites the image without the free space deleted and rewritten entries\n"
		"left behind, and prints the octets reclaimed.  Crash-safe: the new image\n"
		"is written to a temporary file, synced and renamed over the old one.\n",
	.run = run_compact,
};

/* ---- grow ---------------------------------------------------------------- */

static int run_grow(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *args[2];
	int n, st;
	bool json = false, schema = false;
	cli_parser_init(&p, cmd, NULL, argc, argv);
	if ((st = take_args(&p, args, 2, 2, &n, &json, &schema)) >= 0)
		return st;
	uint64_t size;
	if (!cli_parse_size(args[1], &size))
		return cli_usage(cmd, "bad size '%s'", args[1]);
	bs_image *img;
	int rc = cli_open(args[0], true, &img);
	if (rc)
		return cli_fail(rc);
	rc = bs_image_reserve(img, size);
	bs_image_close(img);
	if (rc)
		return cli_fail(rc);
	if (!cli.quiet) {
		cli_put_clean(stdout, args[0]);
		printf(": storage reserved for %" PRIu64 " octets\n", size);
	}
	return CLI_EXIT_OK;
}

const struct cli_command cmd_grow = {
	.name = "grow",
	.summary = "reserve storage so the image can grow to SIZE",
	.usage = "IMAGE SIZE",
	.help = "Reserves storage (fallocate for files) so that the image can grow to SIZE\n"
		"octets without running out of space later; the image's content and its\n"
		"apparent size do not change.  On a fixed-size device, fails with exit\n"
		"status 5 when SIZE exceeds it; an RBD image is resized (never shrunk).\n",
	.more = cli_help_sizes,
	.run = run_grow,
};
