/* cmd_image.c - commands about a whole image: format, info, check, dump,
 * compact, grow. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blobstore/crypt.h>

#include "cli.h"

enum { OPT_JSON = 1, OPT_SCHEMA, OPT_FORCE, OPT_NAME };

static const struct cli_option json_opts[] = {
	{"json", 0, false, OPT_JSON},
	{NULL, 0, false, 0},
};

/* What the commands of this file take besides their positional arguments. */
struct image_args {
	bool json, schema, force;
	const char *name;
};

/* Collects NMIN to NMAX positional arguments and the options.  Returns -1
 * when the command should go on, else the exit status it should return
 * (help shown, usage error). */
static int take_args(struct cli_parser *p, const char **args, int nmin, int nmax, int *n,
		     struct image_args *ia)
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
			ia->json = true;
			break;
		case OPT_SCHEMA:
			ia->schema = true;
			break;
		case OPT_FORCE:
			ia->force = true;
			break;
		case OPT_NAME:
			ia->name = p->arg;
			break;
		}
	}
}

/* ---- format -------------------------------------------------------------- */

/* Formats PATH, a regular file that holds something, again: a fresh image
 * in a temporary file beside it, renamed over it while its writer lock is
 * held (so that no running writer loses its image under it). */
static int format_again(const char *path, bs_image **img)
{
	/* Through a symbolic link: the file it names is formatted again. */
	char *real = realpath(path, NULL);
	if (real && strcmp(real, path)) {
		int st = format_again(real, img);
		free(real);
		return st;
	}
	free(real);
	struct stat sb;
	if (stat(path, &sb) || !S_ISREG(sb.st_mode))
		return cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, path,
				      "%s: format --force replaces regular files only; to format "
				      "other storage again, zero its first 4096 octets (blkdiscard, "
				      "dd) and format it", path);
	int lfd = open(path, O_RDWR | O_CLOEXEC);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (lfd < 0)
		return cli_error(CLI_EXIT_IO, "%s: %s", path, strerror(errno));
	if (fcntl(lfd, F_OFD_SETLK, &fl)) {
		close(lfd);
		return cli_error_code(CLI_EXIT_LOCKED, BS_ELOCKED, path,
				      "%s: locked by another writer: not formatted", path);
	}
	/* What killed runs left beside it, now that nothing else runs on it. */
	cli_tidy_beside(path);
	char *tmp;
	int fd = cli_temp_beside(path, &tmp);
	if (fd < 0) {
		close(lfd);
		return -fd;
	}
	int st = 0;
	if (fchmod(fd, sb.st_mode & 07777))
		st = cli_error(CLI_EXIT_IO, "%s: %s", tmp, strerror(errno));
	/* Unlocked from here (the library locks it while it formats it), but
	 * LFD keeps every other writer, and so every clean-up, away. */
	close(fd);
	int rc = st ? BS_OK : bs_image_open(tmp, cli.open_flags | BS_OPEN_CREATE, img);
	if (!st && rc)
		st = cli_fail(rc);
	if (!st) {
		bs_image_close(*img);
		*img = NULL;
		st = cli_publish(tmp, path, true);
	} else {
		unlink(tmp);
	}
	free(tmp);
	close(lfd);
	if (!st && (rc = bs_image_open(path, BS_OPEN_RDONLY, img)))
		st = cli_fail(rc);
	return st;
}

static int run_format(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"force", 'f', false, OPT_FORCE},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct image_args ia = {.json = cli.json};
	const char *path;
	int n, st;
	cli_parser_init(&p, cmd, opts, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &ia)) >= 0)
		return st;
	bs_image *img = NULL;
	st = 0;
	int rc = cli_open_flags(path, cli.open_flags | BS_OPEN_CREATE | BS_OPEN_EXCL, &img);
	if (rc == BS_EEXIST && !ia.force) {
		/* Say what would be lost. */
		bs_image *old;
		if (!bs_image_open(path, BS_OPEN_RDONLY, &old)) {
			size_t k = bs_image_count(old, 0);
			bs_image_close(old);
			if (!k)
				return cli_error_code(CLI_EXIT_OTHER, BS_EEXIST, path,
						      "%s: image already exists (with no entries): "
						      "--force formats it again", path);
			return cli_error_code(CLI_EXIT_OTHER, BS_EEXIST, path,
					      "%s: image already exists, with %zu entr%s: --force "
					      "formats it again, deleting %s", path, k,
					      k == 1 ? "y" : "ies", k == 1 ? "it" : "them");
		}
		return cli_error_code(CLI_EXIT_OTHER, BS_EEXIST, path,
				      "%s already exists and is not empty (not a blobstore image "
				      "that opens): --force formats it anyway, replacing what it "
				      "holds", path);
	}
	if (rc == BS_EEXIST)
		st = format_again(path, &img);
	else if (rc)
		st = cli_fail(rc);
	if (st)
		return st;
	if (ia.json) {
		cli_json_image(stdout, path, img);
	} else if (!cli.quiet) {
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
	.usage = "IMAGE [--force] [--json]",
	.help = "Creates IMAGE holding only the image entry (bs.image, with a random\n"
		"16-octet image id).  A missing or empty file, or all-zero fixed-size\n"
		"storage, is formatted; anything else is not touched (exit status 8)\n"
		"unless --force is given.\n\n"
		"Options:\n"
		"  -f, --force  format a regular file that holds an image or other data\n"
		"               again: a new image is written beside it and renamed over it\n"
		"               (refused while another writer holds it); what it held is lost\n"
		"  --json       the new image as one JSON object (docs/JSON.md, \"image\")\n",
	.run = run_format,
};

/* ---- info ---------------------------------------------------------------- */

static void info_entry_text(bs_image *img, bs_entry *e)
{
	struct cli_states *s = cli_states_new(img);
	struct cli_entry_view v;
	cli_entry_view(s, img, e, &v);
	cli_states_free(s);
	fputs("entry:       ", stdout);
	cli_put_key(stdout, bs_entry_type(e), bs_entry_name(e));
	printf("\noffset:      %" PRIu64 "\nlength:      %" PRIu64 " octets (the encoding)\n",
	       bs_entry_offset(e), bs_entry_size(e));
	if (v.size_known)
		printf("size:        %" PRIu64 " octets of data\n", v.size);
	else
		printf("size:        unknown\n");
	if (bs_entry_status(e))
		printf("capacity:    unknown\n");
	else
		printf("capacity:    %zu octets\n", bs_entry_capacity(e));
	const char *check = cli_entry_check(e), *enc = cli_entry_encryption(e);
	printf("check:       %s\n", check ? check : bs_entry_status(e) ? "unknown"
									 : "none (raw: no slots)");
	printf("encryption:  %s\n", enc ? enc : "none (plaintext)");
	printf("status:      %s", v.status);
	if (v.reason[0]) {
		fputs(": ", stdout);
		cli_put_clean(stdout, v.reason);
	}
	size_t lib = 0;
	for (size_t i = 0; i < bs_attr_count(e); i++) {
		const char *an;
		const uint8_t *av;
		size_t al;
		if (!bs_attr_at(e, i, &an, &av, &al, NULL) && !strncmp(an, "bs.", 3))
			lib++;
	}
	printf("\nattributes:  %zu, and %zu of the library's ('blobstore attr' lists them)\n",
	       bs_attr_count(e) - lib, lib);
}

static void info_image_text(const char *path, bs_image *img)
{
	struct bs_image_stat s = BS_IMAGE_STAT_INIT;
	bs_image_stat(img, &s);
	size_t user = bs_image_count(img, 0), all = bs_image_count(img, BS_ITER_LIBRARY);
	fputs("image:          ", stdout);
	cli_put_clean(stdout, path);
	fputs("\nid:             ", stdout);
	cli_hex(stdout, bs_image_id(img), 16);
	printf("\nsize:           %" PRIu64 " octets\n"
	       "directory end:  %" PRIu64 "\n"
	       "used:           %" PRIu64 " octets in live entries\n"
	       "free holes:     %" PRIu64 " octets ('compact' reclaims them)\n"
	       "free tail:      %" PRIu64 " octets\n"
	       "entries:        %zu (%zu of them the library's own)\n"
	       "refused:        %" PRIu64 "\n",
	       s.size, s.dir_end, s.used, s.free_holes, s.free_tail, all, all - user, s.refused);
	enum bs_kdf kdf;
	if (bs_image_is_encrypted(img))
		printf("encryption:     set up (%s); %zu of %zu entries encrypted\n",
		       bs_image_kdf(img, &kdf) ? "unknown key protection" : bs_kdf_name(kdf),
		       cli_count_encrypted(img), user);
	else
		printf("encryption:     not set up (blobstore encrypt-init)\n");
}

static int run_info(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"name", 'n', true, OPT_NAME},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct image_args ia = {.json = cli.json};
	const char *args[2];
	int n, st;
	cli_parser_init(&p, cmd, opts, argc, argv);
	if ((st = take_args(&p, args, 1, 2, &n, &ia)) >= 0)
		return st;
	if (ia.name && n < 2)
		return cli_usage(cmd, "--name belongs to an entry: give its TYPE too");
	bs_image *img = NULL;
	int rc = cli_open(args[0], false, &img);
	if (rc)
		return cli_fail(rc);
	if (n == 2) {
		bs_entry *e;
		if ((rc = bs_entry_find(img, args[1], ia.name, &e))) {
			st = cli_fail(rc);
		} else if (ia.json) {
			printf("{\"image\": ");
			cli_json_str(stdout, args[0]);
			printf(", \"entry\": ");
			cli_json_entry_alone(stdout, img, e);
			printf("}\n");
		} else {
			info_entry_text(img, e);
		}
	} else if (ia.json) {
		cli_json_image(stdout, args[0], img);
	} else {
		info_image_text(args[0], img);
	}
	bs_image_close(img);
	return st > 0 ? st : CLI_EXIT_OK;
}

const struct cli_command cmd_info = {
	.name = "info",
	.summary = "show the image's size, space use, entry counts, encryption and id, or one entry",
	.usage = "IMAGE [TYPE [--name NAME]] [--json]",
	.help = "Shows the image: its length, where the directory ends, the octets used\n"
		"by live entries, the free octets in holes (deleted entries: 'compact'\n"
		"reclaims them) and past the directory end, the number of entries (and of\n"
		"the library's own, and of refused ones), whether it is set up for\n"
		"encryption and how many entries are encrypted, and the image id.  With\n"
		"TYPE, shows that entry instead: offset, length, data size, capacity,\n"
		"check, encryption and status (see 'blobstore help list').\n\n"
		"Options:\n"
		"  -n, --name NAME  the entry's name (with TYPE)\n"
		"  --json           one JSON object (docs/JSON.md: \"image\", or with TYPE\n"
		"                   image and entry)\n",
	.run = run_info,
};

/* ---- check --------------------------------------------------------------- */

struct problem {
	uint64_t offset; /* UINT64_MAX: none */
	int code;
	char *type, *name, *msg;
	bool has_entry;
	const bs_entry *e; /* while the image is open; NULL: none */
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
	if (pr->has_entry) {
		fputs("entry ", stdout);
		cli_put_key(stdout, pr->type, pr->name);
		fputc(' ', stdout);
	}
	if (pr->offset != UINT64_MAX)
		printf("at offset %" PRIu64 ": ", pr->offset);
	cli_put_clean(stdout, pr->msg);
	fputc('\n', stdout);
}

static bool add_problem(struct check_ctx *c, const char *type, const char *name, bool has_entry,
			uint64_t offset, int code, const char *msg)
{
	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 16;
		struct problem *l = realloc(c->list, nc * sizeof *l);
		if (!l) {
			c->alloc_failed = 1;
			return false;
		}
		c->list = l;
		c->cap = nc;
	}
	struct problem *pr = &c->list[c->n];
	pr->offset = offset;
	pr->code = code;
	pr->has_entry = has_entry;
	pr->type = dup_or_null(type);
	pr->name = dup_or_null(name);
	pr->msg = strdup(msg ? msg : bs_error_string(code));
	pr->e = NULL;
	if (!pr->msg || (type && !pr->type) || (name && !pr->name)) {
		free(pr->type);
		free(pr->name);
		free(pr->msg);
		c->alloc_failed = 1;
		return false;
	}
	c->n++;
	return true;
}

static void on_problem(void *ctx, const bs_entry *e, uint64_t offset, int code, const char *msg)
{
	struct check_ctx *c = ctx;
	if (add_problem(c, e ? bs_entry_type(e) : NULL, e ? bs_entry_name(e) : NULL, e != NULL,
			offset, code, msg))
		c->list[c->n - 1].e = e;
}

static const char prefix_previous[] = "reads its previous value: ";

/* An entry whose read returns its previous value (the newest slot is
 * damaged, or its last write was cut short) is a problem, not a note: for
 * a TPM it is a silent rollback of counters and policies.  Turns each such
 * entry's note into an error that says so; returns how many. */
static size_t mark_previous(struct check_ctx *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct problem *pr = &c->list[i];
		int state;
		if (pr->code || !pr->e || bs_entry_check((bs_entry *)pr->e, &state) ||
		    state != BS_STATE_PREVIOUS)
			continue;
		size_t len = sizeof prefix_previous + strlen(pr->msg);
		char *m = malloc(len);
		if (!m) {
			c->alloc_failed = 1;
			continue;
		}
		snprintf(m, len, "%s%s", prefix_previous, pr->msg);
		free(pr->msg);
		pr->msg = m;
		pr->code = BS_ECORRUPT;
		n++;
	}
	return n;
}

static const char previous_hint[] =
	"an entry that reads its previous value lost its newest write: a put of the entry "
	"replaces the damaged slot; where a rollback matters (a TPM's counters), restore the "
	"newest value from a backup first";

static void print_check_json(const struct check_ctx *c, const char *path, bool ok, bool schema,
			     size_t user, size_t lib, size_t unauth, size_t problems,
			     const char *hint)
{
	printf("{\"image\": ");
	cli_json_str(stdout, path);
	printf(", \"ok\": %s, \"schema\": %s, \"entry_count\": %zu, \"library_entry_count\": %zu"
	       ", \"unauthenticated_count\": %zu, \"problem_count\": %zu, \"hint\": ",
	       ok ? "true" : "false", schema ? "true" : "false", user, lib, unauth, problems);
	cli_json_str(stdout, hint);
	printf(", \"problems\": [");
	for (size_t i = 0; i < c->n; i++) {
		const struct problem *pr = &c->list[i];
		printf("%s\n  {\"severity\": \"%s\", \"code\": ", i ? "," : "",
		       pr->code ? "error" : "warning");
		cli_json_str(stdout, pr->code ? cli_code_name(pr->code) : NULL);
		printf(", \"entry\": ");
		if (pr->has_entry) {
			printf("{\"type\": ");
			cli_json_str(stdout, pr->type);
			printf(", \"name\": ");
			cli_json_str(stdout, pr->name);
			printf("}");
		} else {
			printf("null");
		}
		printf(", \"offset\": ");
		if (pr->offset == UINT64_MAX)
			printf("null");
		else
			printf("%" PRIu64, pr->offset);
		printf(", \"message\": ");
		cli_json_str(stdout, pr->msg);
		printf("}");
	}
	printf("%s]}\n", c->n ? "\n" : "");
}

static void free_problems(struct check_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->list[i].type);
		free(c->list[i].name);
		free(c->list[i].msg);
	}
	free(c->list);
}

static int run_check(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"json", 0, false, OPT_JSON},
		{"schema", 0, false, OPT_SCHEMA},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	struct image_args ia = {.json = cli.json};
	const char *path;
	int n, st;
	cli_parser_init(&p, cmd, opts, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &ia)) >= 0)
		return st;
	struct check_ctx c = {.label = path, .json = ia.json};
	bs_image *img = NULL;
	int tries = 0;
again:;
	int rc = cli_open(path, false, &img);
	if (rc == BS_ECORRUPT && ia.json) {
		/* The directory itself is broken: that is check's answer too. */
		const char *m, *label, *type, *name;
		uint64_t off;
		bs_error_last(&m, NULL);
		bs_error_where(&label, &type, &name, &off);
		add_problem(&c, type, name, type != NULL, off, BS_ECORRUPT, m);
		print_check_json(&c, path, false, ia.schema, 0, 0, 0, 1, cli_salvage_hint);
		free_problems(&c);
		return CLI_EXIT_CORRUPT;
	}
	if (rc)
		return cli_fail(rc);
	cli_progress_begin("checking", 0);
	rc = bs_image_check(img, ia.schema ? BS_CHECK_SCHEMA : 0, on_problem, &c);
	cli_progress_end();
	if (rc == BS_ESTALE && tries++ < CLI_STALE_TRIES) {
		/* Another process moved entries while this one read them: not
		 * damage; check the image as it is now. */
		for (size_t i = 0; i < c.n; i++)
			c.list[i].e = NULL;
		free_problems(&c);
		c = (struct check_ctx){.label = path, .json = ia.json};
		bs_image_close(img);
		img = NULL;
		goto again;
	}
	size_t previous = mark_previous(&c);
	for (size_t i = 0; i < c.n; i++)
		c.list[i].e = NULL; /* the image closes below */
	size_t user = bs_image_count(img, 0), all = bs_image_count(img, BS_ITER_LIBRARY);
	/* Without the key only the slot checks of encrypted entries can be
	 * verified: tampering under a valid check goes unseen.  Say so. */
	size_t unauth = bs_image_has_key(img) ? 0 : cli_count_encrypted(img);
	bs_image_close(img);
	int worst = BS_OK;
	size_t problems = 0, unsupported = 0, corrupt = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (!c.list[i].code)
			continue;
		problems++;
		if (c.list[i].code == BS_EUNSUPPORTED) {
			unsupported++;
		} else {
			corrupt += c.list[i].code == BS_ECORRUPT;
			if (!worst)
				worst = c.list[i].code;
		}
	}
	if (rc && !problems)
		worst = rc; /* a failure the callback could not report */
	if (c.alloc_failed && !worst)
		worst = BS_ENOMEM;
	/* Entries reading their previous value are repaired by a put, not by
	 * salvage, unless something else is damaged too. */
	const char *hint = corrupt > previous ? cli_salvage_hint : previous ? previous_hint : NULL;
	if (ia.json) {
		print_check_json(&c, path, !problems && !worst, ia.schema, user, all - user, unauth,
				 problems, hint);
	} else {
		for (size_t i = 0; i < c.n; i++)
			print_problem(&c, &c.list[i]);
		if (unauth)
			printf("note: %zu encrypted entr%s checked without the key: only %s slot "
			       "checks were verified; the key is needed to authenticate %s\n",
			       unauth, unauth == 1 ? "y was" : "ies were", unauth == 1 ? "its" : "their",
			       unauth == 1 ? "it" : "them");
		cli_put_clean(stdout, path);
		printf(": %zu entries checked%s: ", all, ia.schema ? " (with the ASN.1 schema)" : "");
		if (!problems && !worst)
			printf("no problems\n");
		else
			printf("%zu problem%s%s\n", problems, problems == 1 ? "" : "s",
			       unsupported ? ", entries refused for unknown mandatory attributes "
					     "were not verified" : "");
		if (hint)
			printf("(%s)\n", hint);
	}
	free_problems(&c);
	if (worst)
		return cli_exit_code(worst);
	return unsupported ? CLI_EXIT_REFUSED : CLI_EXIT_OK;
}

const struct cli_command cmd_check = {
	.name = "check",
	.summary = "verify every entry; report all problems",
	.usage = "IMAGE [--schema] [--json]",
	.help = "Verifies the directory, every entry's strict DER encoding and every data\n"
		"slot's check (and, with the key, authenticates encrypted entries), and\n"
		"prints each problem on its own line (image, entry, offset, what is\n"
		"wrong), how many encrypted entries could not be authenticated for want of\n"
		"the key, then a summary line.  An entry whose newest value is damaged, so\n"
		"that it reads its previous value, is a problem (for a TPM, a rollback):\n"
		"check names it and says so.  Exit status 0 when there is no problem, 3\n"
		"when something is corrupt or an entry reads its previous value (then a\n"
		"put of the entry replaces the damaged slot; 'blobstore salvage' recovers\n"
		"what is intact of a damaged image), 6 when the only problems are entries refused for a mandatory\n"
		"attribute this version does not know (not corrupt, but not verifiable).\n\n"
		"Options:\n"
		"  --schema  also decode each entry with libtasn1 against the ASN.1 module\n"
		"  --json    one JSON object: image, ok, schema, entry_count,\n"
		"            library_entry_count, unauthenticated_count, problem_count,\n"
		"            hint, problems (docs/JSON.md, \"problem\")\n",
	.run = run_check,
};

/* ---- dump ---------------------------------------------------------------- */

/* A definite DER length at P/N: *HDR octets of header, *LEN of content. */
static bool der_header(const uint8_t *p, size_t n, size_t *hdr, uint64_t *len)
{
	if (n < 2)
		return false;
	if (p[1] < 0x80) {
		*hdr = 2;
		*len = p[1];
		return true;
	}
	size_t k = p[1] & 0x7f;
	if (k == 0 || k > 8 || n < 2 + k)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < k; i++)
		v = v << 8 | p[2 + i];
	*hdr = 2 + k;
	*len = v;
	return true;
}

static void print_element(bool *first, const char *kind, uint64_t off, uint64_t len)
{
	printf("%s\n  {\"kind\": \"%s\", \"offset\": %" PRIu64 ", \"length\": %" PRIu64
	       ", \"entry\": null}", *first ? "" : ",", kind, off, len);
	*first = false;
}

/* The framing elements in [POS, END): free space, pads, what is neither. */
static void dump_gap(bs_image *img, uint64_t pos, uint64_t end, bool *first)
{
	while (pos < end) {
		uint8_t h[10];
		size_t n = end - pos < sizeof h ? (size_t)(end - pos) : sizeof h, hl;
		uint64_t cl;
		if (bs_image_read_raw(img, pos, h, n))
			break;
		if (h[0] == 0x05 && n >= 2 && h[1] == 0) {
			print_element(first, "pad", pos, 2);
			pos += 2;
		} else if (h[0] == 0x04 && der_header(h, n, &hl, &cl) && cl <= end - pos - hl) {
			print_element(first, "free", pos, hl + cl);
			pos += hl + cl;
		} else {
			print_element(first, "unknown", pos, end - pos);
			break;
		}
	}
}

static void dump_json(const char *path, bs_image *img)
{
	struct bs_image_stat s = BS_IMAGE_STAT_INIT;
	bs_image_stat(img, &s);
	struct cli_states *states = cli_states_new(img);
	bool first = true;
	printf("{\"image\": ");
	cli_json_str(stdout, path);
	printf(", \"elements\": [");
	print_element(&first, "directory", 0, 2);
	uint64_t pos = 2;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		dump_gap(img, pos, bs_entry_offset(e), &first);
		struct cli_entry_view v;
		cli_entry_view(states, img, e, &v);
		printf(",\n  {\"kind\": \"entry\", \"offset\": %" PRIu64 ", \"length\": %" PRIu64
		       ", \"entry\": ", bs_entry_offset(e), bs_entry_size(e));
		cli_json_entry(stdout, e, &v);
		printf("}");
		pos = bs_entry_offset(e) + bs_entry_size(e);
	}
	if (s.dir_end >= 2) {
		dump_gap(img, pos, s.dir_end - 2, &first);
		print_element(&first, "end", s.dir_end - 2, 2);
	}
	if (s.size > s.dir_end)
		print_element(&first, "unused", s.dir_end, s.size - s.dir_end);
	printf("\n]}\n");
	cli_states_free(states);
}

static int run_dump(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	struct image_args ia = {.json = cli.json};
	const char *path;
	int n, st;
	cli_parser_init(&p, cmd, json_opts, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &ia)) >= 0)
		return st;
	bs_image *img = NULL;
	int rc = cli_open(path, false, &img);
	if (rc)
		return cli_fail(rc);
	if (ia.json)
		dump_json(path, img);
	else
		rc = bs_image_dump(img, stdout);
	bs_image_close(img);
	return rc ? cli_fail(rc) : CLI_EXIT_OK;
}

const struct cli_command cmd_dump = {
	.name = "dump",
	.summary = "annotated listing of every element with its offset",
	.usage = "IMAGE [--json]",
	.help = "Lists the whole image for people: the directory framing, each element\n"
		"with its offset and header octets, free space, each entry's elements down\n"
		"to attribute values (unknown ones included), and a summary of each data\n"
		"area; for slotted entries the generation, length and check result of both\n"
		"slots and which one is current.  That format is for reading, not parsing.\n\n"
		"Options:\n"
		"  --json  the directory's elements in order, each with kind (directory,\n"
		"          entry, free, pad, end, unused, unknown), offset, length and the\n"
		"          entry (docs/JSON.md)\n",
	.run = run_dump,
};

/* ---- compact ------------------------------------------------------------- */

static int run_compact(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	struct image_args ia = {.json = cli.json};
	const char *path;
	int n, st;
	cli_parser_init(&p, cmd, json_opts, argc, argv);
	if ((st = take_args(&p, &path, 1, 1, &n, &ia)) >= 0)
		return st;
	bs_image *img = NULL;
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
	/* The directory's end, not the storage size: fixed-size storage
	 * (block devices, NBD) keeps its size, the directory shrinks. */
	uint64_t reclaimed = before.dir_end > after.dir_end ? before.dir_end - after.dir_end : 0;
	if (ia.json) {
		printf("{");
		cli_json_image_members(stdout, path, img);
		printf(", \"reclaimed\": %" PRIu64 "}\n", reclaimed);
	} else if (!cli.quiet) {
		cli_put_clean(stdout, path);
		printf(": reclaimed %" PRIu64 " octets (directory %" PRIu64 " -> %" PRIu64 ")\n",
		       reclaimed, before.dir_end, after.dir_end);
	}
	bs_image_close(img);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_compact = {
	.name = "compact",
	.summary = "rewrite the image without free space",
	.usage = "IMAGE [--json]",
	.help = "Rewrites the image without the free space deleted and rewritten entries\n"
		"left behind, and prints the octets reclaimed.  Every live entry is kept\n"
		"byte for byte (refused ones too), so nothing but free space goes and no\n"
		"--force is needed.  Crash-safe: the new image is written to a temporary\n"
		"file, synced and renamed over the old one (fixed-size storage: through a\n"
		"copy and a recovery record).\n\n"
		"Options:\n"
		"  --json  the image afterwards as one JSON object, with \"reclaimed\"\n",
	.run = run_compact,
};

/* ---- grow ---------------------------------------------------------------- */

static int run_grow(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	struct image_args ia = {.json = cli.json};
	const char *args[2];
	int n, st;
	cli_parser_init(&p, cmd, json_opts, argc, argv);
	if ((st = take_args(&p, args, 2, 2, &n, &ia)) >= 0)
		return st;
	uint64_t size;
	if (!cli_parse_size(args[1], &size))
		return cli_usage(cmd, "bad size '%s'", args[1]);
	bs_image *img = NULL;
	int rc = cli_open(args[0], true, &img);
	if (rc)
		return cli_fail(rc);
	rc = bs_image_reserve(img, size);
	if (rc) {
		st = cli_fail(rc);
		bs_image_close(img);
		return st;
	}
	if (ia.json) {
		printf("{");
		cli_json_image_members(stdout, args[0], img);
		printf(", \"reserved\": %" PRIu64 "}\n", size);
	} else if (!cli.quiet) {
		cli_put_clean(stdout, args[0]);
		printf(": storage reserved for %" PRIu64 " octets\n", size);
	}
	bs_image_close(img);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_grow = {
	.name = "grow",
	.summary = "reserve storage so the image can grow to SIZE",
	.usage = "IMAGE SIZE [--json]",
	.help = "Reserves storage (fallocate for files) so that the image can grow to SIZE\n"
		"octets without running out of space later; the image's content and its\n"
		"apparent size do not change.  On a fixed-size device, fails with exit\n"
		"status 5 when SIZE exceeds it; an RBD image is resized (never shrunk).\n\n"
		"Options:\n"
		"  --json  the image as one JSON object, with \"reserved\"\n",
	.more = cli_help_sizes,
	.run = run_grow,
};
