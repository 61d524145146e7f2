/* util.c - the tool's shared helpers: global options, option parsing,
 * exit statuses and error messages, sizes, attribute values, JSON and text
 * output, whole-file input and output, and the progress line. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <blobstore/sys/util.h>

#include "cli.h"

struct cli_globals cli;

/* ---- global options ------------------------------------------------------ */

/* --wait[=SECONDS]: how long a writer waits for another one. */
#define WAIT_DEFAULT 60.0

static int opt_wait(const char *arg)
{
	cli.wait = WAIT_DEFAULT;
	if (arg) {
		char *end;
		errno = 0;
		double v = strtod(arg, &end);
		if (errno || end == arg || *end || !(v >= 0) || v > 1e7)
			return cli_usage(NULL, "--wait=SECONDS takes a number of seconds, not '%s'", arg);
		cli.wait = v;
	}
	return 0;
}

static int opt_nosync(const char *arg)
{
	(void)arg;
	cli.open_flags |= BS_OPEN_NOSYNC;
	return 0;
}

static int opt_quiet(const char *arg)
{
	(void)arg;
	cli.quiet = true;
	return 0;
}

static int opt_json(const char *arg)
{
	(void)arg;
	cli.json = true;
	return 0;
}

/* One line per option; the list ends with an empty entry. */
const struct cli_global_option cli_global_options[] = {
	{"--wait", NULL, false, "wait up to SECONDS (default 60) for another writer to finish "
				"instead of failing", opt_wait, true, "SECONDS"},
	{"--no-sync", NULL, false, "do not fsync: faster, not durable (scratch images, tests)",
	 opt_nosync, false},
	{"--quiet", "-q", false, "no informational output and no progress line", opt_quiet, false},
	{"--key-file", NULL, true, "key of an encrypted image: 32 raw octets or 64 hex digits",
	 cli_opt_key_file, false, "FILE"},
	{"--passphrase-file", NULL, true, "passphrase of an encrypted image, read from FILE",
	 cli_opt_passphrase_file, false, "FILE"},
	{"--passphrase-fd", NULL, true, "passphrase of an encrypted image, read from descriptor N",
	 cli_opt_passphrase_fd, false, "N"},
	{"--kdf-max-iter", NULL, true, "open passphrase images asking for at most N PBKDF2 "
				       "iterations (default 2400000)", cli_opt_kdf_max_iter, false, "N"},
	{"--kdf-max-mem", NULL, true, "... at most SIZE of scrypt memory (default 128M)",
	 cli_opt_kdf_max_mem, false, "SIZE"},
	{"--kdf-max-work", NULL, true, "... at most N scrypt work N*r*p (default 1048576)",
	 cli_opt_kdf_max_work, false, "N"},
	{"--json", NULL, false, "output and errors as JSON (docs/JSON.md), for every command",
	 opt_json, false},
	{NULL, NULL, false, NULL, NULL, false},
};

const char cli_help_attr_values[] =
	"Attribute values (--attr, --mandatory, --set): the type comes from the prefix only\n"
	"  NAME            a flag (no value)\n"
	"  NAME=VALUE      UTF8String VALUE, whatever it looks like (serial=007 is the\n"
	"                  text \"007\")\n"
	"  NAME=str:text   UTF8String (for text that starts with a prefix: str:int:5)\n"
	"  NAME=int:42     INTEGER (decimal, or hexadecimal with 0x)\n"
	"  NAME=bool:true  BOOLEAN (true, false, 1, 0)\n"
	"  NAME=hex:00ff   OCTET STRING (fixed-size, read-write data)\n"
	"  NAME=der:HEX    the DER encoding of the value element(s), as given\n"
	"  Names are printable ASCII; names starting \"bs.\" belong to the library.\n"
	"  A mandatory attribute makes every reader that does not know it refuse\n"
	"  the entry (this version knows none but its own).\n";

const char cli_help_sizes[] =
	"Sizes: a number of octets, optionally with K, M, G or T (binary: 1K = 1024).\n";

const char cli_help_exit[] =
	"Exit status:\n"
	"  0  success\n"
	"  1  usage error\n"
	"  2  image, entry, attribute or input file not found\n"
	"  3  corrupt image or entry; check found problems\n"
	"  4  image locked by another writer (see --wait)\n"
	"  5  I/O error or no space left\n"
	"  6  entry refused: it has a mandatory attribute this version does not know\n"
	"  7  wrong or missing key\n"
	"  8  any other error (limits, already exists, read-only, ...)\n"
	"  (salvage: 0 when every entry was recovered, 3 when some were lost)\n";

/* ---- option parsing ------------------------------------------------------ */

void cli_parser_init(struct cli_parser *p, const struct cli_command *cmd,
		     const struct cli_option *opts, int argc, char **argv)
{
	memset(p, 0, sizeof *p);
	p->cmd = cmd;
	p->opts = opts;
	p->argc = argc;
	p->argv = argv;
}

static int stop(struct cli_parser *p, int status)
{
	p->status = status;
	return CLI_STOP;
}

/* The value of an option: "--opt=value", "--opt value", "-ovalue", "-o value". */
static bool take_value(struct cli_parser *p, const char *inline_val)
{
	if (inline_val) {
		p->arg = inline_val;
		return true;
	}
	if (p->i >= p->argc)
		return false;
	p->arg = p->argv[p->i++];
	return true;
}

int cli_next(struct cli_parser *p)
{
	while (p->i < p->argc) {
		char *a = p->argv[p->i++];
		if (p->only_args || a[0] != '-' || !strcmp(a, "-")) {
			p->arg = a;
			return CLI_ARG;
		}
		if (!strcmp(a, "--")) {
			p->only_args = true;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			cli_print_help(p->cmd, stdout);
			return stop(p, CLI_EXIT_OK);
		}
		bool is_long = a[1] == '-';
		const char *name = is_long ? a + 2 : a + 1;
		const char *eq = is_long ? strchr(name, '=') : NULL;
		size_t nl = eq ? (size_t)(eq - name) : strlen(name);
		const char *inline_val = eq ? eq + 1 : NULL;
		/* The command's own options first: they win over a global one. */
		for (const struct cli_option *o = p->opts; o && o->name; o++) {
			if (is_long) {
				if (strlen(o->name) != nl || strncmp(o->name, name, nl))
					continue;
			} else {
				if (!o->short_name || name[0] != o->short_name)
					continue;
				if (name[1]) {
					if (!o->has_arg)
						continue; /* no clustering of short options */
					inline_val = name + 1;
				}
			}
			if (!o->has_arg && inline_val)
				return stop(p, cli_usage(p->cmd, "--%s takes no value", o->name));
			if (o->has_arg && !take_value(p, inline_val))
				return stop(p, cli_usage(p->cmd, "--%s needs a value", o->name));
			return o->id;
		}
		for (const struct cli_global_option *g = cli_global_options; g->name; g++) {
			bool match = is_long ? strlen(g->name + 2) == nl && !strncmp(g->name + 2, name, nl)
					     : g->short_name && !strcmp(g->short_name, a);
			if (!match)
				continue;
			if (!g->has_arg && !g->optional_arg && inline_val)
				return stop(p, cli_usage(p->cmd, "%s takes no value", g->name));
			if (g->has_arg && !take_value(p, inline_val))
				return stop(p, cli_usage(p->cmd, "%s needs a value", g->name));
			int st = g->apply(g->has_arg ? p->arg : inline_val);
			if (st)
				return stop(p, st);
			goto next;
		}
		return stop(p, cli_usage(p->cmd, "unknown option '%s'", a));
	next:;
	}
	return CLI_END;
}

void cli_print_help(const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "usage: blobstore %s %s\n\n%s.\n\n%s", cmd->name, cmd->usage, cmd->summary,
		cmd->help);
	if (cmd->more)
		fprintf(out, "\n%s", cmd->more);
	fprintf(out, "\nGlobal options: ");
	for (const struct cli_global_option *g = cli_global_options; g->name; g++)
		fprintf(out, "%s%s%s%s", g == cli_global_options ? "" : ", ",
			g->short_name ? g->short_name : "", g->short_name ? "/" : "", g->name);
	fprintf(out, " (see 'blobstore --help').\n"
		     "Exit status: see 'blobstore --help' or blobstore(1).\n");
}

/* ---- errors -------------------------------------------------------------- */

/* The name of a library result code, as in blobstore.h. */
static const char *code_name(int rc)
{
	switch (rc) {
	case BS_OK: return "BS_OK";
	case BS_EINVAL: return "BS_EINVAL";
	case BS_ENOMEM: return "BS_ENOMEM";
	case BS_EIO: return "BS_EIO";
	case BS_ECORRUPT: return "BS_ECORRUPT";
	case BS_ENOENT: return "BS_ENOENT";
	case BS_EEXIST: return "BS_EEXIST";
	case BS_ELOCKED: return "BS_ELOCKED";
	case BS_ENOSPC: return "BS_ENOSPC";
	case BS_EUNSUPPORTED: return "BS_EUNSUPPORTED";
	case BS_ELIMIT: return "BS_ELIMIT";
	case BS_ERDONLY: return "BS_ERDONLY";
	case BS_ERANGE: return "BS_ERANGE";
	case BS_ETYPE: return "BS_ETYPE";
	case BS_EKEY: return "BS_EKEY";
	case BS_ESTALE: return "BS_ESTALE";
	default: return "BS_EUNKNOWN";
	}
}

const char *cli_code_name(int rc)
{
	return code_name(rc);
}

/* The library code that stands for an exit status of the tool's own. */
static int code_of_status(int status)
{
	switch (status) {
	case CLI_EXIT_NOTFOUND: return BS_ENOENT;
	case CLI_EXIT_CORRUPT: return BS_ECORRUPT;
	case CLI_EXIT_LOCKED: return BS_ELOCKED;
	case CLI_EXIT_IO: return BS_EIO;
	case CLI_EXIT_REFUSED: return BS_EUNSUPPORTED;
	case CLI_EXIT_KEY: return BS_EKEY;
	default: return BS_EINVAL;
	}
}

/* The image the command opened last, for the salvage hint. */
static char opened[4096];

const char cli_salvage_hint[] =
	"'blobstore salvage IMAGE NEW' copies every intact entry into a new image "
	"without changing this one";

/* The one JSON error object on standard error (docs/JSON.md). */
static void json_error(int status, const char *code, const char *msg, const char *file,
		       const char *entry_type, const char *entry_name, uint64_t offset, int err,
		       const char *hint)
{
	fprintf(stderr, "{\"error\": {\"exit\": %d, \"code\": ", status);
	cli_json_str(stderr, code);
	fputs(", \"message\": ", stderr);
	cli_json_str(stderr, msg);
	fputs(", \"file\": ", stderr);
	cli_json_str(stderr, file);
	fputs(", \"entry\": ", stderr);
	if (entry_type) {
		fputs("{\"type\": ", stderr);
		cli_json_str(stderr, entry_type);
		fputs(", \"name\": ", stderr);
		cli_json_str(stderr, entry_name);
		fputc('}', stderr);
	} else {
		fputs("null", stderr);
	}
	fputs(", \"offset\": ", stderr);
	if (offset == UINT64_MAX)
		fputs("null", stderr);
	else
		fprintf(stderr, "%" PRIu64, offset);
	fputs(", \"errno\": ", stderr);
	if (err)
		fprintf(stderr, "%d", err);
	else
		fputs("null", stderr);
	fputs(", \"hint\": ", stderr);
	cli_json_str(stderr, hint);
	fputs("}}\n", stderr);
}

/* Reports a message of the tool's own: text, or JSON under --json. */
static int report(int status, int code, const char *file, const char *hint, const char *fmt,
		  va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (cli.json) {
		json_error(status, code_name(code), msg, file, NULL, NULL, UINT64_MAX,
			   status == CLI_EXIT_IO ? errno : 0, hint);
	} else {
		fputs("blobstore: ", stderr);
		cli_put_clean(stderr, msg);
		fputc('\n', stderr);
		if (hint)
			fprintf(stderr, "blobstore: %s\n", hint);
	}
	return status;
}

int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (cli.json) {
		char hint[256];
		if (cmd)
			snprintf(hint, sizeof hint, "usage: blobstore %s %s", cmd->name, cmd->usage);
		json_error(CLI_EXIT_USAGE, "usage", msg, NULL, NULL, NULL, UINT64_MAX, 0,
			   cmd ? hint : "see 'blobstore --help'");
		return CLI_EXIT_USAGE;
	}
	fprintf(stderr, "blobstore%s%s: ", cmd ? " " : "", cmd ? cmd->name : "");
	cli_put_clean(stderr, msg);
	if (cmd)
		fprintf(stderr, "\nusage: blobstore %s %s\n(see 'blobstore help %s')\n", cmd->name,
			cmd->usage, cmd->name);
	else
		fprintf(stderr, "\n(see 'blobstore --help')\n");
	return CLI_EXIT_USAGE;
}

int cli_exit_code(int rc)
{
	switch (rc) {
	case BS_OK: return CLI_EXIT_OK;
	case BS_ENOENT: return CLI_EXIT_NOTFOUND;
	case BS_ECORRUPT: return CLI_EXIT_CORRUPT;
	case BS_ELOCKED: return CLI_EXIT_LOCKED;
	case BS_EIO:
	case BS_ENOSPC: return CLI_EXIT_IO;
	case BS_EUNSUPPORTED: return CLI_EXIT_REFUSED;
	case BS_EKEY: return CLI_EXIT_KEY;
	default: return CLI_EXIT_OTHER;
	}
}

const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

int cli_fail(int rc)
{
	const char *msg, *label, *type, *name;
	uint64_t off;
	int err;
	int code = bs_error_last(&msg, &err);
	bs_error_where(&label, &type, &name, &off);
	if (code != rc)
		code = rc; /* the caller's code wins; the message is still the last one */
	/* Damage in an image the command opened stops it: salvage is the way
	 * out (not for damage in other files, such as swtpm's). */
	const char *hint = rc == BS_ECORRUPT && label && opened[0] && !strcmp(label, opened)
				   ? cli_salvage_hint : NULL;
	int status = cli_exit_code(rc);
	if (cli.json) {
		json_error(status, code_name(code), msg, label, type, name, off, err, hint);
	} else {
		fprintf(stderr, "blobstore: %s\n", msg);
		if (hint)
			fprintf(stderr, "blobstore: %s\n", hint);
	}
	return status;
}

int cli_error(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(status, code_of_status(status), NULL, NULL, fmt, ap);
	va_end(ap);
	return status;
}

int cli_error_code(int status, int code, const char *file, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(status, code, file, NULL, fmt, ap);
	va_end(ap);
	return status;
}

void cli_warn(const char *fmt, ...)
{
	/* Under --json standard error carries nothing but an error object. */
	if (cli.quiet || cli.json)
		return;
	va_list ap;
	char msg[1024];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fputs("blobstore: warning: ", stderr);
	cli_put_clean(stderr, msg);
	fputc('\n', stderr);
}

/* ---- opening images ------------------------------------------------------ */

/* What the open did besides opening (it removed what a killed compaction
 * left): one line each on standard error, a warning for what it could not
 * do.  Not under -q, nor under --json, whose standard error carries only
 * an error object. */
static void report_notes(const char *path, bs_image *img)
{
	for (size_t i = 0; i < bs_image_note_count(img); i++) {
		struct bs_image_note note = BS_IMAGE_NOTE_INIT;
		if (bs_image_note_at(img, i, &note))
			continue;
		if (note.code) {
			cli_warn("%s: %s", path, note.message);
		} else if (!cli.quiet && !cli.json) {
			fputs("blobstore: ", stderr);
			cli_put_clean(stderr, path);
			fputs(": ", stderr);
			cli_put_clean(stderr, note.message);
			fputc('\n', stderr);
		}
	}
}

int cli_open_flags(const char *path, unsigned flags, bs_image **img)
{
	snprintf(opened, sizeof opened, "%s", path);
	/* --wait: poll, so that the wait ends when it should. */
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int rc = bs_image_open(path, flags & ~BS_OPEN_WAIT, img);
		if (!rc)
			report_notes(path, *img);
		if (!rc && !(flags & BS_OPEN_RDONLY))
			cli_tidy_beside(path);
		if (rc != BS_ELOCKED || !(cli.wait > 0) || (flags & BS_OPEN_RDONLY))
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double waited = (double)(now.tv_sec - start.tv_sec) +
				(double)(now.tv_nsec - start.tv_nsec) / 1e9;
		if (waited >= cli.wait)
			return bs_error_set(path, NULL, NULL, BS_NO_OFFSET, BS_ELOCKED, 0,
					    "locked by another writer: still locked after waiting "
					    "%.0f s (--wait=SECONDS waits longer)", waited);
		struct timespec nap = {0, 20 * 1000 * 1000};
		nanosleep(&nap, NULL);
	}
}

int cli_open(const char *path, bool write, bs_image **img)
{
	unsigned flags = write ? cli.open_flags : BS_OPEN_RDONLY;
	int rc = cli_open_flags(path, flags, img);
	if (!rc && (rc = cli_load_key(*img))) {
		bs_image_close(*img);
		*img = NULL;
	}
	return rc;
}

/* ---- sizes and attribute values ------------------------------------------ */

bool cli_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	unsigned shift = 0;
	switch (*p) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	case 0: break;
	default: return false;
	}
	if (shift) {
		p++;
		if (!strcmp(p, "iB") || !strcmp(p, "B"))
			p += strlen(p);
	}
	if (*p || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = v << shift;
	return true;
}

/* Hex digits (an even number, nothing else) to octets in OUT. */
static bool unhex(const char *s, uint8_t *out, size_t *len)
{
	size_t n = strlen(s);
	if (n % 2)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = bs_hex_digit(s[2 * i]), lo = bs_hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return true;
}

static bool parse_int(const char *s, int64_t *out)
{
	const char *d = s[0] == '-' ? s + 1 : s;
	int base = 10;
	if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
		base = 16;
		if (!d[2])
			return false;
	} else if (!*d) {
		return false;
	}
	for (const char *p = d + (base == 16 ? 2 : 0); *p; p++)
		if (base == 10 ? (*p < '0' || *p > '9') : bs_hex_digit(*p) < 0)
			return false;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, base);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

int cli_parse_attr(const struct cli_command *cmd, const char *spec, unsigned flags,
		   struct cli_attr *out)
{
	memset(out, 0, sizeof *out);
	out->flags = flags;
	out->name = strdup(spec);
	if (!out->name)
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	char *eq = strchr(out->name, '=');
	if (eq)
		*eq = 0;
	if (!out->name[0]) {
		cli_attr_free(out);
		return cli_usage(cmd, "attribute '%s' has no name", spec);
	}
	if (!eq)
		return 0;
	const char *v = eq + 1;
	size_t cap = strlen(v) + 16;
	out->value = malloc(cap);
	if (!out->value) {
		cli_attr_free(out);
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	}
	int64_t iv;
	bool ok = true;
	/* Every encoder below fits CAP: the value's text is longer than its DER. */
	if (!strncmp(v, "int:", 4)) {
		ok = parse_int(v + 4, &iv) && !bs_value_encode_int(iv, 0, out->value, cap, &out->len);
	} else if (!strncmp(v, "bool:", 5)) {
		const char *b = v + 5;
		bool t = !strcmp(b, "true") || !strcmp(b, "1");
		ok = (t || !strcmp(b, "false") || !strcmp(b, "0")) &&
		     !bs_value_encode_bool(t, 0, out->value, cap, &out->len);
	} else if (!strncmp(v, "str:", 4)) {
		ok = !bs_value_encode_str(v + 4, 0, 0, out->value, cap, &out->len);
	} else if (!strncmp(v, "hex:", 4)) {
		uint8_t *raw = malloc(strlen(v) / 2 + 1);
		size_t rl;
		ok = raw && unhex(v + 4, raw, &rl) &&
		     !bs_value_encode_bytes(raw, rl, 0, out->value, cap, &out->len);
		free(raw);
	} else if (!strncmp(v, "der:", 4)) {
		ok = unhex(v + 4, out->value, &out->len) && out->len > 0;
	} else {
		/* No prefix: text, never a guess from what the text looks like. */
		ok = !bs_value_encode_str(v, 0, 0, out->value, cap, &out->len);
	}
	if (!ok) {
		int st = cli_usage(cmd, "bad attribute value in '%s' (see ATTRIBUTE VALUES)", spec);
		cli_attr_free(out);
		return st;
	}
	return 0;
}

void cli_attr_free(struct cli_attr *a)
{
	free(a->name);
	free(a->value);
	a->name = NULL;
	a->value = NULL;
}

/* ---- text and JSON output ------------------------------------------------ */

/* Length of the valid UTF-8 sequence at S (1-4, within AVAIL octets), or 0
 * when invalid. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1fu; }
	else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0fu; }
	else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07u; }
	else return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void cli_put_clean(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	while (*p) {
		size_t n = utf8_len(p, left);
		/* Valid UTF-8 passes, but not the C1 controls (U+0080-U+009F). */
		if (n > 1 && !(p[0] == 0xc2 && p[1] < 0xa0)) {
			fwrite(p, 1, n, out);
		} else {
			n = 1;
			if (*p < 0x20 || *p >= 0x7f || *p == '\\')
				fprintf(out, "\\x%02x", *p);
			else
				fputc(*p, out);
		}
		p += n;
		left -= n;
	}
}

void cli_json_str(FILE *out, const char *s)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	while (*p) {
		size_t n = utf8_len(p, left);
		left -= n ? n : 1;
		if (n == 0) {
			fputs("\\ufffd", out);
			p++;
		} else if (n > 1) {
			fwrite(p, 1, n, out);
			p += n;
		} else {
			unsigned char c = *p++;
			if (c == '"' || c == '\\')
				fprintf(out, "\\%c", c);
			else if (c == '\n')
				fputs("\\n", out);
			else if (c == '\t')
				fputs("\\t", out);
			else if (c < 0x20 || c == 0x7f)
				fprintf(out, "\\u%04x", c);
			else
				fputc(c, out);
		}
	}
	fputc('"', out);
}

bool cli_is_text(const uint8_t *p, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_len(p + i, len - i);
		if (!n)
			return false;
		/* Control characters other than layout could drive the terminal. */
		if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f) && !strchr("\t\n\r", p[i] ? p[i] : 'x'))
			return false;
		i += n;
	}
	return true;
}

void cli_hex(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%02x", p[i]);
}

/* ---- input and output files ---------------------------------------------- */

int cli_read_input(const char *path, uint8_t **buf, size_t *len)
{
	bool in = !path || !strcmp(path, "-");
	const char *label = in ? "standard input" : path;
	int fd = in ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return cli_error(errno == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_IO, "%s: %s", label,
				 strerror(errno));
	struct stat st;
	uint64_t total = 0;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		total = (uint64_t)st.st_size;
	size_t cap = total && total < SIZE_MAX - 1 ? (size_t)total + 1 : 65536, n = 0;
	uint8_t *b = malloc(cap);
	int status = 0;
	cli_progress_begin("reading input", total);
	while (b) {
		if (n == cap) {
			uint8_t *nb = cap > SIZE_MAX / 2 ? NULL : realloc(b, cap * 2);
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, b + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			status = cli_error(CLI_EXIT_IO, "%s: %s", label, strerror(errno));
			break;
		}
		if (k == 0) {
			*buf = b;
			*len = n;
			b = NULL;
			break;
		}
		n += (size_t)k;
		cli_progress_set(n);
	}
	cli_progress_end();
	if (!in)
		close(fd);
	if (b || (!*buf && !status)) {
		free(b);
		return status ? status : cli_error(CLI_EXIT_OTHER, "%s: out of memory", label);
	}
	return status;
}

int cli_write_output(const char *path, const void *buf, size_t len)
{
	const char *label = path ? path : "standard output";
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : 1;
	if (fd < 0)
		return cli_error(errno == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_IO, "%s: %s", label,
				 strerror(errno));
	const uint8_t *p = buf;
	size_t done = 0;
	int status = 0;
	cli_progress_begin("writing output", len);
	while (done < len) {
		ssize_t k = write(fd, p + done, len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			status = cli_error(CLI_EXIT_IO, "%s: %s", label, strerror(errno));
			break;
		}
		done += (size_t)k;
		cli_progress_set(done);
	}
	cli_progress_end();
	if (path && close(fd) && !status)
		status = cli_error(CLI_EXIT_IO, "%s: %s", label, strerror(errno));
	return status;
}

/* Writes all of BUF to FD; errno on failure. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t k = write(fd, p + done, len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		done += (size_t)k;
		cli_progress_set(done);
	}
	return 0;
}

int cli_sync_dir_of(const char *path)
{
	if (cli.open_flags & BS_OPEN_NOSYNC)
		return 0;
	char *copy = strdup(path);
	if (!copy)
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	char *slash = strrchr(copy, '/');
	const char *dir = slash ? (slash == copy ? "/" : (*slash = 0, copy)) : ".";
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), st = 0;
	if (fd < 0 || fsync(fd))
		st = cli_error(CLI_EXIT_IO, "%s: fsync: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(copy);
	return st;
}

int cli_temp_beside(const char *path, char **tmp)
{
	size_t n = strlen(path) + 32;
	char *t = malloc(n);
	if (!t)
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	/* In the same directory, so that rename() replaces PATH atomically. */
	const char *slash = strrchr(path, '/');
	int dl = slash ? (int)(slash - path + 1) : 0;
	snprintf(t, n, "%.*s.%s.blobstore-XXXXXX", dl, path, slash ? slash + 1 : path);
	int fd = mkstemp(t);
	if (fd < 0) {
		int err = errno;
		int st = cli_error(err == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_IO, "%s: %s", path,
				   strerror(err));
		free(t);
		return -st;
	}
	/* Locked for as long as FD is open, so that cli_tidy_beside() tells it
	 * from what a killed run left. */
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_OFD_SETLK, &fl)) {
		int st = cli_error(CLI_EXIT_IO, "%s: lock: %s", t, strerror(errno));
		close(fd);
		unlink(t);
		free(t);
		return -st;
	}
	*tmp = t;
	return fd;
}

/* NAME is "." BASE ".blobstore-" and the 6 characters mkstemp() chose,
 * possibly followed by ".tmp-" and 8 lowercase hexadecimal digits: the
 * copy the library's format of that file (format --force) makes. */
static bool is_cli_temp(const char *name, const char *base)
{
	size_t bl = strlen(base);
	static const char mid[] = ".blobstore-";
	if (name[0] != '.' || strncmp(name + 1, base, bl) || strncmp(name + 1 + bl, mid, sizeof mid - 1))
		return false;
	const char *x = name + 1 + bl + sizeof mid - 1;
	for (int i = 0; i < 6; i++)
		if (!((x[i] >= '0' && x[i] <= '9') || (x[i] >= 'a' && x[i] <= 'z') ||
		      (x[i] >= 'A' && x[i] <= 'Z')))
			return false;
	if (!x[6])
		return true;
	if (strncmp(x + 6, ".tmp-", 5))
		return false;
	for (int i = 11; i < 19; i++)
		if (!((x[i] >= '0' && x[i] <= '9') || (x[i] >= 'a' && x[i] <= 'f')))
			return false;
	return x[19] == 0;
}

void cli_tidy_beside(const char *path)
{
	if (strstr(path, "://"))
		return;
	char *real = realpath(path, NULL);
	struct stat ist;
	if (!real || stat(real, &ist) || !S_ISREG(ist.st_mode)) {
		free(real);
		return;
	}
	char *slash = strrchr(real, '/'); /* realpath() names are absolute */
	const char *base = slash + 1;
	*slash = 0;
	const char *dir = *real ? real : "/";
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ddup = dfd < 0 ? -1 : fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = ddup < 0 ? NULL : fdopendir(ddup);
	if (!d) {
		if (ddup >= 0)
			close(ddup);
		if (dfd >= 0)
			close(dfd);
		free(real);
		return;
	}
	bool removed = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st, fst, again;
		if (!is_cli_temp(de->d_name, base) ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
		    st.st_nlink != 1 || (st.st_uid != ist.st_uid && st.st_uid != geteuid()))
			continue;
		int fd = openat(dfd, de->d_name,
				O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* A read lock is granted only when no run holds its write lock. */
		struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
		bool free_ = !fstat(fd, &fst) && fst.st_dev == st.st_dev && fst.st_ino == st.st_ino &&
			     !fcntl(fd, F_OFD_SETLK, &fl);
		close(fd);
		if (!free_ || fstatat(dfd, de->d_name, &again, AT_SYMLINK_NOFOLLOW) ||
		    again.st_dev != st.st_dev || again.st_ino != st.st_ino)
			continue;
		if (unlinkat(dfd, de->d_name, 0)) {
			cli_warn("%s: cannot remove %s/%s (%lld octets) left by an interrupted "
				 "blobstore command: %s", path, dir, de->d_name, (long long)st.st_size,
				 strerror(errno));
			continue;
		}
		removed = true;
		if (!cli.quiet && !cli.json) {
			char msg[8192];
			snprintf(msg, sizeof msg, "%s: removed %s/%s (%lld octets) left by an "
				 "interrupted blobstore command", path, dir, de->d_name,
				 (long long)st.st_size);
			fputs("blobstore: ", stderr);
			cli_put_clean(stderr, msg);
			fputc('\n', stderr);
		}
	}
	closedir(d);
	if (removed && !(cli.open_flags & BS_OPEN_NOSYNC))
		fsync(dfd);
	close(dfd);
	free(real);
}

int cli_publish(const char *tmp, const char *path, bool replace)
{
	int err = 0;
	if (replace) {
		if (rename(tmp, path))
			err = errno;
	} else if (link(tmp, path)) {
		/* link() fails when PATH appeared meanwhile; file systems without
		 * hard links get a rename after a last look. */
		err = errno;
		if (err != EEXIST && err != ENOENT && err != EACCES && access(path, F_OK) &&
		    !rename(tmp, path))
			err = 0;
	} else {
		unlink(tmp);
	}
	if (err) {
		unlink(tmp);
		if (err == EEXIST)
			return cli_error_code(CLI_EXIT_OTHER, BS_EEXIST, path,
					      "%s exists: --force replaces it", path);
		return cli_error(CLI_EXIT_IO, "%s: %s", path, strerror(err));
	}
	return cli_sync_dir_of(path);
}

int cli_write_file(const char *path, bool force, bool secret, const void *buf, size_t len)
{
	struct stat st;
	/* A symbolic link stands for the file it names: that file is what
	 * would be replaced, and it is replaced where it is. */
	char *real = NULL;
	if (!lstat(path, &st) && S_ISLNK(st.st_mode) && (real = realpath(path, NULL))) {
		int status = cli_write_file(real, force, secret, buf, len);
		free(real);
		return status;
	}
	bool exists = !lstat(path, &st);
	if (exists && !S_ISREG(st.st_mode))
		return cli_write_output(path, buf, len); /* a device, a pipe: nothing to replace */
	if (exists && st.st_size > 0 && !force)
		return cli_error_code(CLI_EXIT_OTHER, BS_EEXIST, path,
				      "%s exists (%lld octets): --force replaces it", path,
				      (long long)st.st_size);
	char *tmp;
	int fd = cli_temp_beside(path, &tmp);
	if (fd < 0)
		return -fd;
	/* Decrypted data stays private to the owner; other data gets the
	 * usual mode. */
	mode_t mask = umask(0);
	umask(mask);
	int status = 0;
	cli_progress_begin("writing output", len);
	if (fchmod(fd, secret ? 0600 : 0666 & ~mask) || write_all(fd, buf, len) ||
	    (!(cli.open_flags & BS_OPEN_NOSYNC) && fsync(fd)))
		status = cli_error(CLI_EXIT_IO, "%s: %s", tmp, strerror(errno));
	cli_progress_end();
	/* Closed (and so unlocked) only once it has its name or is gone. */
	if (status)
		unlink(tmp);
	else
		status = cli_publish(tmp, path, exists);
	if (close(fd) && !status)
		status = cli_error(CLI_EXIT_IO, "%s: %s", path, strerror(errno));
	free(tmp);
	return status;
}

/* ---- progress ------------------------------------------------------------ */

/* A thread draws the line, so that long library calls (check, compact)
 * show that they are alive without knowing about the tool. */
static struct {
	bool active, stop, shown;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const char *what;
	uint64_t total;
	atomic_uint_least64_t done;
	struct timespec start;
} prog = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void add_ms(struct timespec *t, long ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static void *progress_main(void *arg)
{
	(void)arg;
	struct timespec next = prog.start;
	add_ms(&next, 1000);
	pthread_mutex_lock(&prog.mu);
	while (!prog.stop) {
		if (pthread_cond_timedwait(&prog.cv, &prog.mu, &next) != ETIMEDOUT)
			continue;
		uint64_t done = atomic_load(&prog.done);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		/* Whole seconds elapsed (not a difference of wall-clock seconds,
		 * which says 2 s after 1.1 s when a second boundary passed). */
		long secs = (long)(now.tv_sec - prog.start.tv_sec) -
			    (now.tv_nsec < prog.start.tv_nsec ? 1 : 0);
		if (prog.total)
			fprintf(stderr, "\rblobstore: %s %3u%%", prog.what,
				(unsigned)(done * 100 / prog.total));
		else if (done)
			fprintf(stderr, "\rblobstore: %s... %" PRIu64 " octets, %lds", prog.what,
				done, secs);
		else
			fprintf(stderr, "\rblobstore: %s... %lds", prog.what, secs);
		fflush(stderr);
		prog.shown = true;
		next = now;
		add_ms(&next, 200);
	}
	pthread_mutex_unlock(&prog.mu);
	return NULL;
}

void cli_progress_begin(const char *what, uint64_t total)
{
	if (prog.active || cli.quiet || !isatty(2))
		return;
	prog.what = what;
	prog.total = total;
	prog.stop = false;
	prog.shown = false;
	atomic_store(&prog.done, 0);
	clock_gettime(CLOCK_REALTIME, &prog.start);
	prog.active = pthread_create(&prog.thread, NULL, progress_main, NULL) == 0;
}

void cli_progress_set(uint64_t done)
{
	if (prog.active)
		atomic_store(&prog.done, prog.total && done > prog.total ? prog.total : done);
}

void cli_progress_end(void)
{
	if (!prog.active)
		return;
	pthread_mutex_lock(&prog.mu);
	prog.stop = true;
	pthread_cond_signal(&prog.cv);
	pthread_mutex_unlock(&prog.mu);
	pthread_join(prog.thread, NULL);
	prog.active = false;
	if (prog.shown)
		fputs("\r\033[K", stderr);
}
