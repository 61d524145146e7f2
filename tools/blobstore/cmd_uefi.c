/* cmd_uefi.c - 'blobstore uefi': a UEFI variable store kept in an image:
 * import and export of edk2 varstore files and of virt-firmware's JSON,
 * list and get with the data decoded, set and rm by name, and Secure Boot
 * enrollment from certificates with virt-fw-vars' option names.  The work
 * is done by the device layer's UEFI code (include/blobstore/uefi.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include <blobstore/sys/util.h>
#include <blobstore/uefi.h>

enum {
	OPT_TEMPLATE = 1, OPT_JSON, OPT_FORMAT, OPT_OUTPUT, OPT_FORCE, OPT_INPUT, OPT_ATTRS, OPT_DECODE,
	OPT_SET_PK, OPT_ADD_KEK, OPT_ADD_DB, OPT_ADD_DB_HASH, OPT_ADD_DBX, OPT_SET_DBX,
	OPT_SECURE_BOOT,
};

/* One enroll step: OPT, and its one or two values. */
struct step {
	int opt;
	const char *owner, *file;
};

#define MAX_STEPS 64

struct uefi_args {
	const char *pos[3];
	int npos;
	const char *tmpl, *output, *input, *attrs, *format;
	bool json, force, decode, secure_boot;
	struct step steps[MAX_STEPS];
	int nsteps;
};

static int parse(const struct cli_command *cmd, int argc, char **argv, int maxpos,
		 bool enroll, struct uefi_args *a)
{
	static const struct cli_option opts[] = {
		{"template", 't', true, OPT_TEMPLATE},
		{"json", 0, false, OPT_JSON},
		{"format", 0, true, OPT_FORMAT},
		{"output", 'o', true, OPT_OUTPUT},
		{"force", 'f', false, OPT_FORCE},
		{"input", 'i', true, OPT_INPUT},
		{"attributes", 'a', true, OPT_ATTRS},
		{"decode", 'd', false, OPT_DECODE},
		{NULL, 0, false, 0},
	};
	static const struct cli_option enroll_opts[] = {
		{"set-pk", 0, true, OPT_SET_PK},
		{"add-kek", 0, true, OPT_ADD_KEK},
		{"add-db", 0, true, OPT_ADD_DB},
		{"add-db-hash", 0, true, OPT_ADD_DB_HASH},
		{"add-dbx", 0, true, OPT_ADD_DBX},
		{"set-dbx", 0, true, OPT_SET_DBX},
		{"secure-boot", 0, false, OPT_SECURE_BOOT},
		{"sb", 0, false, OPT_SECURE_BOOT},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	memset(a, 0, sizeof *a);
	cli_parser_init(&p, cmd, enroll ? enroll_opts : opts, argc, argv);
	for (int o; (o = cli_next(&p)) != CLI_END;) {
		switch (o) {
		case CLI_STOP:
			return p.status ? p.status : -1;
		case CLI_ARG:
			if (a->npos >= maxpos)
				return cli_usage(cmd, "too many arguments ('%s')", p.arg);
			a->pos[a->npos++] = p.arg;
			break;
		case OPT_TEMPLATE: a->tmpl = p.arg; break;
		case OPT_JSON: a->json = true; break;
		case OPT_FORMAT: a->format = p.arg; break;
		case OPT_OUTPUT: a->output = p.arg; break;
		case OPT_FORCE: a->force = true; break;
		case OPT_INPUT: a->input = p.arg; break;
		case OPT_ATTRS: a->attrs = p.arg; break;
		case OPT_DECODE: a->decode = true; break;
		case OPT_SECURE_BOOT: a->secure_boot = true; break;
		default: {
			/* Enroll steps: OWNER then FILE (or HASH); --set-dbx FILE. */
			struct step s = {.opt = o};
			if (a->nsteps == MAX_STEPS)
				return cli_usage(cmd, "more than %d enroll options", MAX_STEPS);
			if (o == OPT_SET_DBX) {
				s.file = p.arg;
			} else {
				s.owner = p.arg;
				if (p.i >= p.argc)
					return cli_usage(cmd, "%s needs OWNER and %s", argv[p.i - 2],
							 o == OPT_ADD_DB_HASH ? "HASH" : "FILE");
				s.file = p.argv[p.i++];
			}
			a->steps[a->nsteps++] = s;
		}
		}
	}
	if (a->npos < maxpos)
		return cli_usage(cmd, "missing arguments");
	a->json = a->json || cli.json; /* --json before the command, too */
	if (a->format && strcmp(a->format, "json") && strcmp(a->format, "varstore"))
		return cli_usage(cmd, "--format is json or varstore, not '%s'", a->format);
	return 0;
}

/* ---- files --------------------------------------------------------------------------- */

/* Writes BUF to PATH as every command writes files (cli_write_file: an
 * existing file only with FORCE, durably); "-": standard output. */
static int write_file(const char *path, const void *buf, size_t len, bool force)
{
	if (!strcmp(path, "-"))
		return cli_write_output(NULL, buf, len);
	return cli_write_file(path, force, false, buf, len);
}

static bool looks_json(const uint8_t *p, size_t len)
{
	size_t i = 0;
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i < len && p[i] == '{';
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* ---- import and export ---------------------------------------------------------------- */

/* What an import would replace in IMG: 0 when it holds no variable, else
 * an exit status after the message. */
static int refuse_replace(bs_image *img, const char *image)
{
	size_t n = 0;
	char keys[64] = "";
	static const char *const sb[] = {"PK", "KEK", "db", "dbx"};
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, 0));) {
		uint8_t g[16];
		const char *nm;
		if (strcmp(bs_entry_type(e), BS_UEFI_VAR_TYPE))
			continue;
		n++;
		if (bs_entry_name(e) && !bs_uefi_key_parse(bs_entry_name(e), g, &nm))
			for (int i = 0; i < 4; i++)
				if (!strcmp(nm, sb[i]) && bs_uefi_known_var(nm, g, NULL) == BS_OK)
					snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s",
						 keys[0] ? ", " : "", nm);
	}
	if (!n)
		return 0;
	return cli_error(CLI_EXIT_OTHER,
			 "%s already holds %zu UEFI variables%s%s%s; importing replaces them all "
			 "(and deletes those the file lacks): give --force to do so", image, n,
			 keys[0] ? ", among them the Secure Boot keys " : "", keys, "");
}

static int do_import(const struct cli_command *cmd, const struct uefi_args *a)
{
	uint8_t *fd, *tmpl = NULL;
	size_t len, tlen = 0, n = 0;
	int st = cli_read_input(a->pos[1], &fd, &len);
	if (st)
		return st;
	bool json = looks_json(fd, len);
	if (a->tmpl && !json) {
		free(fd);
		return cli_usage(cmd, "--template goes with a JSON file (a varstore file is its own "
				      "layout)");
	}
	if (a->tmpl && (st = cli_read_input(a->tmpl, &tmpl, &tlen))) {
		free(fd);
		return st;
	}
	bs_image *img = NULL;
	int rc = cli_open_flags(a->pos[0], cli.open_flags | BS_OPEN_CREATE, &img);
	if (!rc && !(rc = cli_load_key(img))) {
		if (!a->force)
			st = refuse_replace(img, a->pos[0]);
		if (!st) {
			rc = json ? bs_uefi_import_json(img, (const char *)fd, len, tmpl, tlen, &n)
				  : bs_uefi_import(img, fd, len, &n);
			if (rc)
				st = cli_error(rc == BS_EINVAL ? CLI_EXIT_CORRUPT : cli_exit_code(rc),
					       "%s: %s", a->pos[1], last_error());
		}
	} else {
		st = cli_fail(rc);
	}
	bs_image_close(img);
	free(fd);
	free(tmpl);
	if (!st && a->json) {
		fputs("{\"image\": ", stdout);
		cli_json_str(stdout, a->pos[0]);
		fputs(", \"input\": ", stdout);
		cli_json_str(stdout, a->pos[1]);
		printf(", \"format\": \"%s\", \"variable_count\": %zu}\n", json ? "json" : "varstore",
		       n);
	} else if (!st && !cli.quiet) {
		printf("imported %zu variables from %s\n", n, a->pos[1]);
	}
	return st;
}

static int do_export(const struct uefi_args *a)
{
	uint8_t *tmpl = NULL, *out = NULL;
	size_t tlen = 0, olen = 0;
	bool json = a->format ? !strcmp(a->format, "json") : ends_with(a->pos[1], ".json");
	size_t nvars = 0;
	int st = 0;
	if (a->tmpl && (st = cli_read_input(a->tmpl, &tmpl, &tlen)))
		return st;
	bs_image *img = NULL;
	int rc = cli_open(a->pos[0], false, &img);
	if (!rc) {
		if (json) {
			struct bs_uefi_store *s;
			if (!(rc = bs_uefi_load(img, &s))) {
				char *text;
				for (size_t i = 0; i < s->nvars; i++)
					if (s->vars[i].monotonic_count || s->vars[i].pubkey_index)
						fprintf(stderr, "blobstore: warning: %s: MonotonicCount "
							"%" PRIu64 " and PubKeyIndex %" PRIu32 " are not in "
							"the JSON format\n", s->vars[i].name,
							s->vars[i].monotonic_count, s->vars[i].pubkey_index);
				nvars = s->nvars;
				rc = bs_uefi_json_format(s->vars, s->nvars, &text, &olen);
				out = rc ? NULL : (uint8_t *)text;
				bs_uefi_store_free(s);
			}
		} else {
			struct bs_uefi_store *s;
			if (!(rc = bs_uefi_load(img, &s))) {
				nvars = s->nvars;
				bs_uefi_store_free(s);
				rc = bs_uefi_export(img, tmpl, tlen, &out, &olen);
			}
		}
		if (rc)
			st = cli_fail(rc);
		bs_image_close(img);
	} else {
		st = cli_fail(rc);
	}
	if (!st)
		st = write_file(a->pos[1], out, olen, a->force);
	if (!st && a->json && strcmp(a->pos[1], "-")) {
		fputs("{\"image\": ", stdout);
		cli_json_str(stdout, a->pos[0]);
		fputs(", \"output\": ", stdout);
		cli_json_str(stdout, a->pos[1]);
		printf(", \"format\": \"%s\", \"variable_count\": %zu, \"size\": %zu}\n",
		       json ? "json" : "varstore", nvars, olen);
	}
	free(tmpl);
	free(out);
	return st;
}

/* ---- showing variables --------------------------------------------------------------- */

static void hex_short(FILE *out, const uint8_t *p, size_t n)
{
	cli_hex(out, p, n > 32 ? 32 : n);
	if (n > 32)
		fprintf(out, "... (%zu octets)", n);
}

static void text_decoded(FILE *out, const struct bs_uefi_var *v)
{
	struct bs_uefi_decoded *d;
	char ts[40];
	if (bs_uefi_decode(v, &d))
		return;
	switch (d->kind) {
	case BS_UEFI_DATA_LOAD_OPTION: {
		const struct bs_uefi_load_option *lo = &d->load_option;
		fputs("    load option \"", out);
		cli_put_clean(out, lo->description);
		fputs("\" ", out);
		cli_put_clean(out, lo->device_path);
		fprintf(out, " (%s%s)\n", lo->attributes & 1 ? "active" : "inactive",
			lo->attributes & 8 ? ", hidden" : "");
		if (lo->optional) {
			fputs("    optional data ", out);
			hex_short(out, lo->optional, lo->optional_len);
			fputs("\n", out);
		}
		break;
	}
	case BS_UEFI_DATA_ORDER:
		fputs("    order", out);
		for (size_t i = 0; i < d->norder; i++)
			fprintf(out, " %04X", d->order[i]);
		fputs(d->norder ? "\n" : " (empty)\n", out);
		break;
	case BS_UEFI_DATA_SIGDB:
		for (size_t i = 0; i < d->nsigs; i++) {
			const struct bs_uefi_sig *s = &d->sigs[i];
			char g[37];
			bs_uefi_guid_str(s->owner, g);
			fprintf(out, "    %s owner %s: ", bs_uefi_sigtype_name(s->type), g);
			if (s->subject) {
				fputs("subject ", out);
				cli_put_clean(out, s->subject);
				fputs("; issuer ", out);
				cli_put_clean(out, s->issuer);
			} else {
				cli_hex(out, s->data, s->len);
			}
			fputs("\n", out);
		}
		if (!d->nsigs)
			fputs("    no signatures\n", out);
		break;
	case BS_UEFI_DATA_DEVPATH:
		fputs("    device path ", out);
		cli_put_clean(out, d->text);
		fputs("\n", out);
		break;
	case BS_UEFI_DATA_STRING:
		fputs("    string \"", out);
		cli_put_clean(out, d->text);
		fputs("\"\n", out);
		break;
	case BS_UEFI_DATA_INTEGER:
		fprintf(out, "    integer %" PRIu64 " (0x%" PRIx64 ")\n", d->integer, d->integer);
		break;
	default:
		if (d->error) {
			fputs("    malformed ", out);
			cli_put_clean(out, d->error);
			fputs("\n", out);
		}
		break;
	}
	if (bs_uefi_time_format(v->timestamp, ts)[0])
		fprintf(out, "    time %s\n", ts);
	bs_uefi_decoded_free(d);
}

static void json_hex(FILE *out, const uint8_t *p, size_t n)
{
	fputc('"', out);
	cli_hex(out, p, n);
	fputc('"', out);
}

static void json_decoded(FILE *out, const struct bs_uefi_var *v)
{
	struct bs_uefi_decoded *d;
	if (bs_uefi_decode(v, &d)) {
		fputs("null", out);
		return;
	}
	switch (d->kind) {
	case BS_UEFI_DATA_LOAD_OPTION: {
		const struct bs_uefi_load_option *lo = &d->load_option;
		fprintf(out, "{\"kind\": \"load_option\", \"load_attributes\": %" PRIu32
			", \"active\": %s, \"description\": ", lo->attributes,
			lo->attributes & 1 ? "true" : "false");
		cli_json_str(out, lo->description);
		fputs(", \"device_path\": ", out);
		cli_json_str(out, lo->device_path);
		fputs(", \"optional_data\": ", out);
		if (lo->optional)
			json_hex(out, lo->optional, lo->optional_len);
		else
			fputs("null", out);
		fputs("}", out);
		break;
	}
	case BS_UEFI_DATA_ORDER:
		fputs("{\"kind\": \"order\", \"options\": [", out);
		for (size_t i = 0; i < d->norder; i++)
			fprintf(out, "%s\"%04X\"", i ? ", " : "", d->order[i]);
		fputs("]}", out);
		break;
	case BS_UEFI_DATA_SIGDB:
		fputs("{\"kind\": \"signature_database\", \"signatures\": [", out);
		for (size_t i = 0; i < d->nsigs; i++) {
			const struct bs_uefi_sig *s = &d->sigs[i];
			char g[37], ts[40];
			bs_uefi_guid_str(s->owner, g);
			fprintf(out, "%s{\"type\": \"%s\", \"owner\": \"%s\", \"subject\": ", i ? ", " : "",
				bs_uefi_sigtype_name(s->type), g);
			cli_json_str(out, s->subject);
			fputs(", \"issuer\": ", out);
			cli_json_str(out, s->issuer);
			fputs(", \"not_before\": ", out);
			cli_json_str(out, s->subject ? bs_uefi_time_format(s->not_before, ts) : NULL);
			fputs(", \"hash\": ", out);
			if (s->subject)
				fputs("null", out);
			else
				json_hex(out, s->data, s->len);
			fputs("}", out);
		}
		fputs("]}", out);
		break;
	case BS_UEFI_DATA_DEVPATH:
	case BS_UEFI_DATA_STRING:
		fprintf(out, "{\"kind\": \"%s\", \"text\": ",
			d->kind == BS_UEFI_DATA_DEVPATH ? "device_path" : "string");
		cli_json_str(out, d->text);
		fputs("}", out);
		break;
	case BS_UEFI_DATA_INTEGER:
		fprintf(out, "{\"kind\": \"integer\", \"value\": %" PRIu64 ", \"size\": %zu}",
			d->integer, d->int_size);
		break;
	default:
		if (d->error) {
			fputs("{\"kind\": \"malformed\", \"error\": ", out);
			cli_json_str(out, d->error);
			fputs("}", out);
		} else {
			fputs("null", out);
		}
		break;
	}
	bs_uefi_decoded_free(d);
}

/* Attributes of E other than the UEFI layer's (and the library's): shown so
 * that nothing an image holds is hidden. */
static void other_attrs(FILE *out, bs_entry *e, bool json)
{
	bool first = true;
	for (size_t i = 0; e && i < bs_attr_count(e); i++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		unsigned fl;
		bs_attr_at(e, i, &name, &v, &vl, &fl);
		if (!strncmp(name, "bs.", 3) || !strncmp(name, "uefi.", 5))
			continue;
		char desc[256];
		bs_value_describe(v, vl, desc, sizeof desc);
		bool m = fl & BS_ATTR_MANDATORY;
		if (json) {
			fputs(first ? "" : ", ", out);
			fputs("{\"name\": ", out);
			cli_json_str(out, name);
			fprintf(out, ", \"mandatory\": %s, \"value\": ", m ? "true" : "false");
			cli_json_str(out, desc);
			fputs(", \"der\": ", out);
			json_hex(out, v, vl);
			fputs("}", out);
		} else {
			fputs("    attribute ", out);
			cli_put_clean(out, name);
			fprintf(out, "%s = ", m ? " (mandatory)" : "");
			cli_put_clean(out, desc);
			fputs("\n", out);
		}
		first = false;
	}
}

/* One variable object of docs/JSON.md. */
static void json_var(FILE *out, const struct bs_uefi_var *v, bs_entry *e, const char *indent)
{
	char g[37], an[64], ts[40];
	bs_uefi_guid_str(v->guid, g);
	bs_uefi_attr_format(v->attributes, an, sizeof an);
	fprintf(out, "%s{\"name\": ", indent);
	cli_json_str(out, v->name);
	fprintf(out, ", \"guid\": \"%s\", \"attr\": %" PRIu32 ", \"attr_names\": [", g, v->attributes);
	for (char *s = an, *c; *s; s = c + (*c != 0)) {
		c = s + strcspn(s, ",");
		fprintf(out, "%s\"%.*s\"", s == an ? "" : ", ", (int)(c - s), s);
	}
	fprintf(out, "], \"size\": %zu, \"data\": ", v->data_len);
	json_hex(out, v->data, v->data_len);
	fputs(", \"decoded\": ", out);
	json_decoded(out, v);
	fputs(", \"time\": ", out);
	cli_json_str(out, bs_uefi_time_format(v->timestamp, ts)[0] ? ts : NULL);
	fprintf(out, ", \"monotonic_count\": %" PRIu64 ", \"pubkey_index\": %" PRIu32
		", \"attributes\": [", v->monotonic_count, v->pubkey_index);
	other_attrs(out, e, true);
	fputs("]}", out);
}

static void text_var(FILE *out, const struct bs_uefi_var *v, bs_entry *e)
{
	char g[37], an[64];
	bs_uefi_guid_str(v->guid, g);
	fprintf(out, "%s:", g);
	cli_put_clean(out, v->name);
	fprintf(out, "  attributes=0x%" PRIx32 " (%s) size=%zu\n", v->attributes,
		bs_uefi_attr_format(v->attributes, an, sizeof an), v->data_len);
	text_decoded(out, v);
	other_attrs(out, e, false);
}

static bs_entry *entry_of(bs_image *img, const struct bs_uefi_var *v)
{
	char g[37], *k;
	bs_entry *e = NULL;
	bs_uefi_guid_str(v->guid, g);
	if (asprintf(&k, "%s:%s", g, v->name) < 0)
		return NULL;
	if (bs_entry_find(img, BS_UEFI_VAR_TYPE, k, &e))
		e = NULL;
	free(k);
	return e;
}

static int do_list(const struct uefi_args *a)
{
	bs_image *img = NULL;
	int rc = cli_open(a->pos[0], false, &img);
	if (rc)
		return cli_fail(rc);
	struct bs_uefi_store *st;
	if ((rc = bs_uefi_load(img, &st))) {
		int s = cli_fail(rc);
		bs_image_close(img);
		return s;
	}
	if (a->json) {
		fputs("{\"image\": ", stdout);
		cli_json_str(stdout, a->pos[0]);
		printf(", \"variable_count\": %zu, \"variables\": [", st->nvars);
	}
	for (size_t i = 0; i < st->nvars; i++) {
		bs_entry *e = entry_of(img, &st->vars[i]);
		if (a->json) {
			json_var(stdout, &st->vars[i], e, i ? ",\n  " : "\n  ");
		} else {
			text_var(stdout, &st->vars[i], e);
		}
	}
	if (a->json)
		printf("%s]}\n", st->nvars ? "\n" : "");
	bs_uefi_store_free(st);
	bs_image_close(img);
	return 0;
}

/* Resolves A's variable name in IMG (an exit status after a message). */
static int resolve(bs_image *img, const char *spec, char **key)
{
	int rc = bs_uefi_resolve(img, spec, key);
	return rc ? cli_fail(rc) : 0;
}

static const struct bs_uefi_var *find_var(const struct bs_uefi_store *st, const char *key)
{
	uint8_t guid[16];
	const char *name;
	if (bs_uefi_key_parse(key, guid, &name))
		return NULL;
	for (size_t i = 0; i < st->nvars; i++)
		if (!memcmp(st->vars[i].guid, guid, 16) && !strcmp(st->vars[i].name, name))
			return &st->vars[i];
	return NULL;
}

static int do_get(const struct uefi_args *a)
{
	bs_image *img = NULL;
	char *key = NULL;
	int rc = cli_open(a->pos[0], false, &img);
	if (rc)
		return cli_fail(rc);
	int s = resolve(img, a->pos[1], &key);
	struct bs_uefi_store *st = NULL;
	if (!s && (rc = bs_uefi_load(img, &st)))
		s = cli_fail(rc);
	const struct bs_uefi_var *v = s ? NULL : find_var(st, key);
	if (!s && !v)
		s = cli_error(CLI_EXIT_NOTFOUND, "no UEFI variable %s", key);
	if (!s) {
		bool raw_ok = a->output || a->force || !isatty(1) || cli_is_text(v->data, v->data_len);
		if (a->output && strcmp(a->output, "-"))
			s = write_file(a->output, v->data, v->data_len, a->force);
		if (s) {
			/* reported */
		} else if (a->json) {
			fputs("{\"image\": ", stdout);
			cli_json_str(stdout, a->pos[0]);
			fputs(", \"output\": ", stdout);
			cli_json_str(stdout, a->output);
			fputs(", \"variable\": ", stdout);
			json_var(stdout, v, entry_of(img, v), "");
			fputs("}\n", stdout);
		} else if (a->output && strcmp(a->output, "-")) {
			/* written */
		} else if (a->decode || !raw_ok) {
			text_var(stdout, v, entry_of(img, v));
			if (!a->decode)
				fputs("(binary data not written to a terminal: -o FILE or --force)\n",
				      stdout);
		} else {
			s = cli_write_output(NULL, v->data, v->data_len);
		}
	}
	bs_uefi_store_free(st);
	bs_image_close(img);
	free(key);
	return s;
}

/* {"image", "variable"} of KEY as IMG holds it now (VAR: that variable,
 * or NULL to look it up), for set and rm under --json; written to a buffer
 * so that it can be printed after the change. */
static char *json_result(bs_image *img, const char *path, const char *key,
			 const struct bs_uefi_var *var)
{
	struct bs_uefi_store *st = NULL;
	if (!var) {
		if (bs_uefi_load(img, &st))
			return NULL;
		var = find_var(st, key);
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = var ? open_memstream(&buf, &len) : NULL;
	if (f) {
		fputs("{\"image\": ", f);
		cli_json_str(f, path);
		fputs(", \"variable\": ", f);
		json_var(f, var, entry_of(img, var), "");
		fputs("}\n", f);
		if (fclose(f)) {
			free(buf);
			buf = NULL;
		}
	}
	bs_uefi_store_free(st);
	return buf;
}

/* ---- changing variables --------------------------------------------------------------- */

/* EFI_TIME octets of now (UTC). */
static void time_now(uint8_t t[16])
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	memset(t, 0, 16);
	t[0] = (uint8_t)((tm.tm_year + 1900) & 0xff);
	t[1] = (uint8_t)((tm.tm_year + 1900) >> 8);
	t[2] = (uint8_t)(tm.tm_mon + 1);
	t[3] = (uint8_t)tm.tm_mday;
	t[4] = (uint8_t)tm.tm_hour;
	t[5] = (uint8_t)tm.tm_min;
	t[6] = (uint8_t)tm.tm_sec;
}

/* Order of two EFI_TIMEs: year, month, day, hour, minute, second, ns. */
static int time_cmp(const uint8_t *a, const uint8_t *b)
{
	uint32_t ya = (uint32_t)a[0] | (uint32_t)a[1] << 8, yb = (uint32_t)b[0] | (uint32_t)b[1] << 8;
	if (ya != yb)
		return ya < yb ? -1 : 1;
	for (int i = 2; i < 7; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	uint32_t na = (uint32_t)a[8] | (uint32_t)a[9] << 8 | (uint32_t)a[10] << 16 | (uint32_t)a[11] << 24;
	uint32_t nb = (uint32_t)b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
	return na < nb ? -1 : na > nb;
}

/* The timestamp of an authenticated variable only moves forward. */
static void time_forward(struct bs_uefi_var *v, const uint8_t *t)
{
	if ((v->attributes & BS_UEFI_TIME_BASED_AUTH) && time_cmp(v->timestamp, t) < 0)
		memcpy(v->timestamp, t, 16);
}

static int do_set(const struct cli_command *cmd, const struct uefi_args *a)
{
	uint32_t attrs = 0;
	if (a->attrs && bs_uefi_attr_parse(a->attrs, &attrs))
		return cli_usage(cmd, "%s", last_error());
	uint8_t *data;
	size_t len;
	int s = cli_read_input(a->input, &data, &len);
	if (s)
		return s;
	bs_image *img = NULL;
	char *key = NULL;
	struct bs_uefi_store *st = NULL;
	int rc = cli_open(a->pos[0], true, &img);
	if (rc) {
		free(data);
		return cli_fail(rc);
	}
	if ((s = resolve(img, a->pos[1], &key)))
		goto out;
	if ((rc = bs_uefi_load(img, &st))) {
		s = cli_fail(rc);
		goto out;
	}
	struct bs_uefi_var v = {.version = BS_UEFI_VAR_VERSION};
	const char *name;
	bs_uefi_key_parse(key, v.guid, &name);
	v.name = (char *)name;
	const struct bs_uefi_var *old = find_var(st, key);
	struct bs_uefi_known k;
	if (old) {
		/* An existing variable keeps its attributes unless told. */
		v.attributes = old->attributes;
		memcpy(v.timestamp, old->timestamp, 16);
		v.monotonic_count = old->monotonic_count;
		v.pubkey_index = old->pubkey_index;
	} else if (bs_uefi_known_var(name, v.guid, &k) == BS_OK) {
		v.attributes = k.attributes;
	} else {
		v.attributes = BS_UEFI_NON_VOLATILE | BS_UEFI_BOOTSERVICE_ACCESS |
			       BS_UEFI_RUNTIME_ACCESS;
	}
	if (a->attrs)
		v.attributes = attrs;
	/* Data signed for SetVariable() (sign-efi-sig-list) carries an
	 * EFI_VARIABLE_AUTHENTICATION_2 header: its TimeStamp becomes the
	 * variable's, the rest is the data. */
	uint8_t ts[16];
	size_t off = 0;
	rc = bs_uefi_auth_parse(data, len, ts, &off);
	if (rc == BS_ECORRUPT) {
		s = cli_error(CLI_EXIT_CORRUPT, "%s: %s", a->input ? a->input : "standard input",
			      last_error());
		goto out;
	}
	if (rc == BS_OK && !(v.attributes & BS_UEFI_TIME_BASED_AUTH)) {
		s = cli_error(CLI_EXIT_USAGE, "%s starts with an authentication header "
			      "(EFI_VARIABLE_AUTHENTICATION_2) but %s's attributes lack AT",
			      a->input ? a->input : "standard input", key);
		goto out;
	}
	if (rc == BS_OK) {
		memcpy(v.timestamp, ts, 16);
	} else {
		uint8_t now[16];
		time_now(now);
		time_forward(&v, now);
		off = 0;
	}
	v.data = data + off;
	v.data_len = len - off;
	rc = bs_uefi_write(img, &v, 1);
	if (rc) {
		s = rc == BS_EINVAL || rc == BS_ECORRUPT
			    ? cli_error_code(CLI_EXIT_CORRUPT, rc, a->input, "%s: %s",
					     a->input ? a->input : "standard input", last_error())
			    : cli_fail(rc);
	} else if (a->json) {
		char *j = json_result(img, a->pos[0], key, NULL);
		if (!j)
			s = cli_error(CLI_EXIT_OTHER, "%s: cannot read %s back", a->pos[0], key);
		else
			fputs(j, stdout);
		free(j);
	}
out:
	bs_uefi_store_free(st);
	bs_image_close(img);
	free(key);
	free(data);
	return s;
}

static int do_rm(const struct uefi_args *a)
{
	bs_image *img = NULL;
	char *key = NULL;
	int rc = cli_open(a->pos[0], true, &img);
	if (rc)
		return cli_fail(rc);
	int s = resolve(img, a->pos[1], &key);
	char *j = !s && a->json ? json_result(img, a->pos[0], key, NULL) : NULL;
	if (!s && (rc = bs_uefi_remove(img, key)))
		s = cli_fail(rc);
	if (!s && j)
		fputs(j, stdout); /* the variable as it was */
	free(j);
	bs_image_close(img);
	free(key);
	return s;
}

/* ---- Secure Boot enrollment ----------------------------------------------------------- */

#define OVMF_ENROLL_OWNER "a0baa8a3-041d-48a8-bc87-c36d121b5e3d"

/* A variable being built: the store's copy or a new one. */
struct work {
	const char *name;
	struct bs_uefi_var v;
	bool touched;
	char what[512]; /* what changed, for the summary */
};

static int work_init(struct work *w, const struct bs_uefi_store *st, const char *name)
{
	struct bs_uefi_known k;
	memset(w, 0, sizeof *w);
	w->name = name;
	bs_uefi_known_var(name, NULL, &k);
	w->v.version = BS_UEFI_VAR_VERSION;
	w->v.name = (char *)name;
	memcpy(w->v.guid, k.guid, 16);
	w->v.attributes = k.attributes;
	for (size_t i = 0; i < st->nvars; i++)
		if (!memcmp(st->vars[i].guid, k.guid, 16) && !strcmp(st->vars[i].name, name)) {
			const struct bs_uefi_var *o = &st->vars[i];
			w->v.attributes = o->attributes;
			memcpy(w->v.timestamp, o->timestamp, 16);
			w->v.monotonic_count = o->monotonic_count;
			w->v.pubkey_index = o->pubkey_index;
			w->v.data = malloc(o->data_len ? o->data_len : 1);
			if (!w->v.data) {
				cli_error(CLI_EXIT_OTHER, "out of memory");
				return -1;
			}
			memcpy(w->v.data, o->data, o->data_len);
			w->v.data_len = o->data_len;
			return 1; /* exists */
		}
	return 0;
}

static void note(struct work *w, const char *fmt, const char *arg)
{
	size_t n = strlen(w->what);
	if (n < sizeof w->what - 2)
		snprintf(w->what + n, sizeof w->what - n, fmt, n ? "; " : "", arg);
}

/* The newest notBefore of the certificates in W's database. */
static void cert_time(struct work *w)
{
	struct bs_uefi_sig *sigs;
	size_t n;
	if (bs_uefi_sigdb_parse(w->v.data, w->v.data_len, 0, &sigs, &n))
		return;
	for (size_t i = 0; i < n; i++)
		if (sigs[i].type == BS_UEFI_SIG_X509)
			time_forward(&w->v, sigs[i].not_before);
	bs_uefi_sigs_free(sigs, n);
}

/* Adds a certificate file or a SHA-256 hash (64 hex digits) to W. */
static int add_sig(struct work *w, const char *owner_text, const char *arg, bool hash_only)
{
	uint8_t owner[16], h[32], *der = NULL;
	size_t dl = 0;
	int added = 0, st = 0;
	if (bs_uefi_guid_from_text(owner_text, owner))
		return cli_error(CLI_EXIT_USAGE, "owner: %s", last_error());
	bool is_hash = strlen(arg) == 64;
	for (size_t i = 0; is_hash && i < 32; i++) {
		int hi = bs_hex_digit(arg[2 * i]), lo = bs_hex_digit(arg[2 * i + 1]);
		is_hash = hi >= 0 && lo >= 0;
		h[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hash_only && !is_hash)
		return cli_error(CLI_EXIT_USAGE, "'%s' is not a SHA-256 hash (64 hexadecimal digits)",
				 arg);
	if (!is_hash) {
		uint8_t *file;
		size_t fl;
		if ((st = cli_read_input(arg, &file, &fl)))
			return st;
		int rc = bs_uefi_cert_load(file, fl, &der, &dl);
		free(file);
		if (rc)
			return cli_error(CLI_EXIT_CORRUPT, "%s: %s", arg, last_error());
	}
	uint8_t *db = w->v.data;
	size_t len = w->v.data_len;
	int rc = bs_uefi_sigdb_add(&db, &len, is_hash ? BS_UEFI_SIG_SHA256 : BS_UEFI_SIG_X509, owner,
				   is_hash ? h : der, is_hash ? 32 : dl, &added);
	free(der);
	if (rc)
		return cli_error(CLI_EXIT_CORRUPT, "%s in the image: %s", w->name, last_error());
	w->v.data = db;
	w->v.data_len = len;
	if (added) {
		w->touched = true;
		note(w, is_hash ? "%sadded hash %s" : "%sadded certificate %s", arg);
		if (is_hash) {
			uint8_t now[16];
			time_now(now);
			time_forward(&w->v, now);
		} else {
			cert_time(w);
		}
	} else {
		note(w, "%s%s already present", arg);
	}
	return 0;
}

static const uint8_t initial_time[16] = {0xda, 0x07, 1, 1}; /* 2010-01-01, as virt-fw-vars */

static int do_enroll(const struct uefi_args *a)
{
	enum { PK, KEK, DB, DBX, SBE, CM, NWORK };
	static const char *const names[NWORK] = {"PK", "KEK", "db", "dbx", "SecureBootEnable",
						 "CustomMode"};
	struct work w[NWORK];
	int exists[NWORK];
	bs_image *img = NULL;
	struct bs_uefi_store *st = NULL;
	int s = 0;
	if (!a->nsteps && !a->secure_boot)
		return cli_error(CLI_EXIT_USAGE, "nothing to enroll (see 'blobstore help uefi')");
	memset(w, 0, sizeof w);
	int rc = cli_open(a->pos[0], true, &img);
	if (rc)
		return cli_fail(rc);
	if ((rc = bs_uefi_load(img, &st))) {
		s = cli_fail(rc);
		goto out;
	}
	for (int i = 0; i < NWORK && !s; i++)
		if ((exists[i] = work_init(&w[i], st, names[i])) < 0)
			s = CLI_EXIT_OTHER;
	/* virt-fw-vars' order, whatever the command line's: PK, KEK, db,
	 * db hashes, dbx, then --secure-boot. */
	static const int order[] = {OPT_SET_PK, OPT_ADD_KEK, OPT_ADD_DB, OPT_ADD_DB_HASH,
				    OPT_SET_DBX, OPT_ADD_DBX};
	for (size_t o = 0; o < sizeof order / sizeof order[0] && !s; o++)
		for (int i = 0; i < a->nsteps && !s; i++) {
			const struct step *p = &a->steps[i];
			if (p->opt != order[o])
				continue;
			switch (p->opt) {
			case OPT_SET_PK:
				/* Replaces the old PK: the list is cleared first. */
				free(w[PK].v.data);
				w[PK].v.data = NULL;
				w[PK].v.data_len = 0;
				time_forward(&w[PK].v, initial_time);
				w[PK].what[0] = 0;
				s = add_sig(&w[PK], p->owner, p->file, false);
				w[PK].touched = true;
				break;
			case OPT_ADD_KEK: s = add_sig(&w[KEK], p->owner, p->file, false); break;
			case OPT_ADD_DB: s = add_sig(&w[DB], p->owner, p->file, false); break;
			case OPT_ADD_DB_HASH: s = add_sig(&w[DB], p->owner, p->file, true); break;
			case OPT_ADD_DBX: s = add_sig(&w[DBX], p->owner, p->file, false); break;
			case OPT_SET_DBX: {
				/* A dbx update (an authenticated write: its TimeStamp is kept,
				 * its signature is not checked) or a bare database. */
				uint8_t *file, ts[16];
				size_t fl, off = 0;
				if ((s = cli_read_input(p->file, &file, &fl)))
					break;
				rc = bs_uefi_auth_parse(file, fl, ts, &off);
				if (rc == BS_ECORRUPT) {
					s = cli_error(CLI_EXIT_CORRUPT, "%s: %s", p->file, last_error());
					free(file);
					break;
				}
				free(w[DBX].v.data);
				w[DBX].v.data = malloc(fl - (rc ? 0 : off) + 1);
				if (!w[DBX].v.data) {
					free(file);
					s = cli_error(CLI_EXIT_OTHER, "out of memory");
					break;
				}
				w[DBX].v.data_len = fl - (rc ? 0 : off);
				memcpy(w[DBX].v.data, file + (rc ? 0 : off), w[DBX].v.data_len);
				free(file);
				if (rc == BS_OK) {
					memcpy(w[DBX].v.timestamp, ts, 16);
				} else {
					uint8_t now[16];
					time_now(now);
					time_forward(&w[DBX].v, now);
				}
				w[DBX].touched = true;
				note(&w[DBX], "%sset from %s", p->file);
				break;
			}
			}
		}
	if (!s && a->secure_boot) {
		if (!exists[DBX] && !w[DBX].touched) {
			/* No dbx yet: one dummy hash (SHA-256 of nothing), as
			 * virt-fw-vars and OVMF's EnrollDefaultKeys write. */
			s = add_sig(&w[DBX], OVMF_ENROLL_OWNER,
				    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				    true);
			memset(w[DBX].v.timestamp, 0, 16);
			time_forward(&w[DBX].v, initial_time);
		}
		for (int i = SBE; i <= CM && !s; i++) {
			free(w[i].v.data);
			w[i].v.data = malloc(1);
			if (!w[i].v.data) {
				s = cli_error(CLI_EXIT_OTHER, "out of memory");
				break;
			}
			w[i].v.data[0] = i == SBE;
			w[i].v.data_len = 1;
			w[i].touched = true;
			note(&w[i], "%sset to %s", i == SBE ? "1" : "0");
		}
	}
	struct bs_uefi_var vars[NWORK];
	size_t n = 0;
	for (int i = 0; i < NWORK && !s; i++)
		if (w[i].touched)
			vars[n++] = w[i].v;
	if (!s && (rc = bs_uefi_write(img, vars, n)))
		s = cli_fail(rc);
	if (!s && a->json) {
		fputs("{\"image\": ", stdout);
		cli_json_str(stdout, a->pos[0]);
		fputs(", \"changes\": [", stdout);
		for (int i = 0, k = 0; i < NWORK; i++) {
			if (!w[i].what[0])
				continue;
			fputs(k++ ? ",\n  {\"variable\": " : "\n  {\"variable\": ", stdout);
			cli_json_str(stdout, w[i].name);
			fputs(", \"change\": ", stdout);
			cli_json_str(stdout, w[i].what);
			fputs("}", stdout);
		}
		fputs("]}\n", stdout);
	}
	for (int i = 0; i < NWORK && !s && !cli.quiet && !a->json; i++)
		if (w[i].what[0])
			printf("%s: %s\n", w[i].name, w[i].what);
out:
	for (int i = 0; i < NWORK; i++)
		free(w[i].v.data);
	bs_uefi_store_free(st);
	bs_image_close(img);
	return s;
}

/* ---- the command ---------------------------------------------------------------------- */

static int run_uefi(const struct cli_command *cmd, int argc, char **argv)
{
	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		cli_print_help(cmd, argc < 1 ? stderr : stdout);
		return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	static const struct {
		const char *name;
		int npos;
	} subs[] = {{"import", 2}, {"export", 2}, {"list", 1}, {"get", 2},
		    {"set", 2},    {"rm", 2},     {"enroll", 1}};
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (strcmp(argv[0], subs[i].name))
			continue;
		struct uefi_args *a = malloc(sizeof *a);
		if (!a)
			return cli_error(CLI_EXIT_OTHER, "out of memory");
		int st = parse(cmd, argc - 1, argv + 1, subs[i].npos, i == 6, a);
		if (!st) {
			switch (i) {
			case 0: st = do_import(cmd, a); break;
			case 1: st = do_export(a); break;
			case 2: st = do_list(a); break;
			case 3: st = do_get(a); break;
			case 4: st = do_set(cmd, a); break;
			case 5: st = do_rm(a); break;
			default: st = do_enroll(a); break;
			}
		}
		free(a);
		return st < 0 ? CLI_EXIT_OK : st;
	}
	return cli_usage(cmd, "unknown subcommand '%s'", argv[0]);
}

const struct cli_command cmd_uefi = {
	.name = "uefi",
	.summary = "UEFI variables: import/export varstore files and JSON, list, get, set, rm, "
		   "enroll Secure Boot keys",
	.usage = "SUBCOMMAND IMAGE ...\n"
		 "  uefi import IMAGE VARS.fd|VARS.json [--template VARS.fd] [--force] [--json]\n"
		 "  uefi export IMAGE OUT.fd|OUT.json [--format json|varstore] [--template VARS.fd]\n"
		 "       [--json] [--force]\n"
		 "  uefi list IMAGE [--json]\n"
		 "  uefi get IMAGE VARIABLE [-o FILE] [--decode] [--json] [--force]\n"
		 "  uefi set IMAGE VARIABLE [-i FILE] [--attributes ATTRS] [--json]\n"
		 "  uefi rm IMAGE VARIABLE [--json]\n"
		 "  uefi enroll IMAGE [--set-pk OWNER CERT] [--add-kek OWNER CERT]...\n"
		 "       [--add-db OWNER CERT]... [--add-db-hash OWNER HASH]...\n"
		 "       [--add-dbx OWNER HASH|CERT]... [--set-dbx FILE] [--secure-boot|--sb]",
	.help = "Keeps a UEFI variable store in the image, one entry of type uefi.var\n"
		"per variable, named GUID:NAME, with its attributes, timestamp, monotonic\n"
		"count and public-key index as read-only attributes.\n\n"
		"VARIABLE is GUID:NAME or NAME alone: a well-known variable (Boot####,\n"
		"BootOrder, Timeout, PK, KEK, db, dbx, SecureBootEnable, ...) or a name\n"
		"only one GUID holds in the image (ambiguous names list the candidates).\n"
		"The GUID may be a name too (EfiGlobalVariable, EfiImageSecurityDatabase).\n"
		"ATTRS: names joined by ',' (NV,BS,RT,AT; also HR AW AP EA) or a number.\n\n"
		"import   replaces the image's variables with those of an edk2 varstore\n"
		"         file (OVMF_VARS*.fd: its layout is saved too) or of virt-firmware's\n"
		"         JSON (--template VARS.fd saves that file's layout).  The image is\n"
		"         created when missing; one that holds variables is replaced only\n"
		"         with --force.\n"
		"export   writes a varstore file the firmware accepts (the saved layout, or\n"
		"         --template's), or JSON for virt-fw-vars --set-json when OUT ends in\n"
		"         .json or --format json is given; an existing OUT only with --force.\n"
		"list     one line per variable, then what its data means: load options\n"
		"         with their device paths, boot orders, certificates (subject,\n"
		"         issuer) and hashes of PK, KEK, db, dbx, strings, integers\n"
		"         (--json: the same, one object with a \"variables\" array).\n"
		"get      writes a variable's data (-o FILE, or standard output); --decode\n"
		"         or a terminal shows it decoded, --json as a variable object.\n"
		"set      creates or replaces a variable from -i FILE or standard input.\n"
		"         Attributes: --attributes, else kept, else the well-known ones,\n"
		"         else NV,BS,RT.  Checked first: NV and BS needed, signature lists\n"
		"         of PK, KEK, db, dbx, the variable store's space; an AT variable's\n"
		"         data may start with an EFI_VARIABLE_AUTHENTICATION_2 header\n"
		"         (sign-efi-sig-list), whose time is kept (the signature is not\n"
		"         checked) and which is not stored.\n"
		"rm       deletes a variable.\n"
		"enroll   Secure Boot keys from certificates (PEM or DER), with\n"
		"         virt-fw-vars' options: --set-pk replaces PK, --add-kek, --add-db\n"
		"         add a certificate (--add-db-hash a SHA-256 hash, --add-dbx either),\n"
		"         --set-dbx takes a dbx update file, --secure-boot adds a dummy dbx\n"
		"         when there is none and sets SecureBootEnable=1, CustomMode=0.\n"
		"         OWNER is the signature owner GUID.  PK is written last.\n",
	.run = run_uefi,
};
