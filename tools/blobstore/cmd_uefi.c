/* cmd_uefi.c - 'blobstore uefi': a UEFI variable store kept in an image
 * (import/export of edk2 varstore files, list, get, set, rm), on the device
 * API's UEFI layer (include/blobstore/uefi.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include <blobstore/nvram.h>
#include <blobstore/uefi.h>

enum { OPT_TEMPLATE = 1, OPT_JSON, OPT_OUTPUT, OPT_FORCE, OPT_INPUT, OPT_ATTRS };

/* Positional arguments of one subcommand. */
struct uefi_args {
	const char *pos[3];
	int npos;
	const char *tmpl, *output, *input, *attrs;
	bool json, force;
};

static int parse(const struct cli_command *cmd, int argc, char **argv, int maxpos,
		 struct uefi_args *a)
{
	static const struct cli_option opts[] = {
		{"template", 't', true, OPT_TEMPLATE},
		{"json", 0, false, OPT_JSON},
		{"output", 'o', true, OPT_OUTPUT},
		{"force", 'f', false, OPT_FORCE},
		{"input", 'i', true, OPT_INPUT},
		{"attributes", 'a', true, OPT_ATTRS},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	memset(a, 0, sizeof *a);
	cli_parser_init(&p, cmd, opts, argc, argv);
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
		case OPT_OUTPUT: a->output = p.arg; break;
		case OPT_FORCE: a->force = true; break;
		case OPT_INPUT: a->input = p.arg; break;
		case OPT_ATTRS: a->attrs = p.arg; break;
		}
	}
	if (a->npos < maxpos)
		return cli_usage(cmd, "missing arguments");
	return 0;
}

static int do_import(const struct uefi_args *a)
{
	uint8_t *fd;
	size_t len, n = 0;
	int st = cli_read_input(a->pos[1], &fd, &len);
	if (st)
		return st;
	bs_image *img;
	int rc = bs_image_open(a->pos[0], cli.open_flags | BS_OPEN_CREATE, &img);
	if (!rc) {
		rc = bs_uefi_import(img, fd, len, &n);
		if (rc)
			st = cli_fail(rc);
		bs_image_close(img);
	} else {
		st = cli_fail(rc);
	}
	free(fd);
	if (!st && !cli.quiet)
		printf("imported %zu variables from %s\n", n, a->pos[1]);
	return st;
}

static int do_export(const struct uefi_args *a)
{
	uint8_t *tmpl = NULL, *out = NULL;
	size_t tlen = 0, olen = 0;
	int st = 0;
	if (a->tmpl && (st = cli_read_input(a->tmpl, &tmpl, &tlen)))
		return st;
	bs_image *img;
	int rc = cli_open(a->pos[0], false, &img);
	if (!rc) {
		rc = bs_uefi_export(img, tmpl, tlen, &out, &olen);
		if (rc)
			st = cli_fail(rc);
		bs_image_close(img);
	} else {
		st = cli_fail(rc);
	}
	if (!st)
		st = cli_write_output(a->pos[1], out, olen);
	free(tmpl);
	free(out);
	return st;
}

static const char *attr_names(uint32_t a, char *buf, size_t cap)
{
	static const char *const n[] = {"NV", "BS", "RT", "HR", "AW", "AT", "AP"};
	size_t k = 0;
	buf[0] = 0;
	for (int i = 0; i < 7; i++)
		if (a & (1u << i))
			k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? "," : "", n[i]);
	return buf;
}

/* Attributes of E other than the ones the UEFI layer defines: shown so that
 * nothing an image holds is hidden. */
static void other_attrs(FILE *out, bs_entry *e, bool json)
{
	bool first = true;
	for (int m = 1; m >= 0; m--)
		for (size_t i = 0; i < bs_attr_count(e); i++) {
			const char *name;
			const uint8_t *v;
			size_t vl;
			unsigned fl_;
			bs_attr_at(e, i, &name, &v, &vl, &fl_);
			if (((fl_ & BS_ATTR_MANDATORY) != 0) != (m != 0))
				continue;
			if (!strncmp(name, "bs.", 3) || !strncmp(name, "uefi.", 5))
				continue;
			char desc[256];
			bs_value_describe(v, vl, desc, sizeof desc);
			if (json) {
				fputs(first ? "" : ", ", out);
				fputs("{\"name\": ", out);
				cli_json_str(out, name);
				fprintf(out, ", \"mandatory\": %s, \"value\": ", m ? "true" : "false");
				cli_json_str(out, desc);
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

static int do_list(const struct uefi_args *a)
{
	bs_image *img;
	int rc = cli_open(a->pos[0], false, &img);
	if (rc)
		return cli_fail(rc);
	struct bs_uefi_store *st;
	if ((rc = bs_uefi_load(img, &st))) {
		int s = cli_fail(rc);
		bs_image_close(img);
		return s;
	}
	if (a->json)
		printf("[");
	size_t k = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, BS_ITER_LIBRARY));) {
		if (strcmp(bs_entry_type(e), BS_UEFI_VAR_TYPE))
			continue;
		const struct bs_uefi_var *v = &st->vars[k++];
		char g[37], an[64], ts[33];
		bs_uefi_guid_str(v->guid, g);
		attr_names(v->attributes, an, sizeof an);
		for (int j = 0; j < 16; j++)
			snprintf(ts + 2 * j, 3, "%02x", v->timestamp[j]);
		if (a->json) {
			printf("%s\n  {\"guid\": \"%s\", \"name\": ", k > 1 ? "," : "", g);
			cli_json_str(stdout, v->name);
			printf(", \"attributes\": %" PRIu32 ", \"size\": %zu, \"monotonic_count\": %"
			       PRIu64 ", \"pubkey_index\": %" PRIu32 ", \"timestamp\": \"%s\", "
			       "\"other_attributes\": [", v->attributes, v->data_len,
			       v->monotonic_count, v->pubkey_index, ts);
			other_attrs(stdout, e, true);
			printf("]}");
		} else {
			printf("%s:", g);
			cli_put_clean(stdout, v->name);
			printf("  attributes=0x%" PRIx32 " (%s) size=%zu\n", v->attributes, an,
			       v->data_len);
			other_attrs(stdout, e, false);
		}
	}
	if (a->json)
		printf("%s]\n", k ? "\n" : "");
	bs_uefi_store_free(st);
	bs_image_close(img);
	return 0;
}

/* Finds variable KEY in a loaded store. */
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
	bs_image *img;
	uint8_t guid[16];
	const char *name;
	if (bs_uefi_key_parse(a->pos[1], guid, &name))
		return cli_fail(BS_EINVAL);
	int rc = cli_open(a->pos[0], false, &img);
	if (rc)
		return cli_fail(rc);
	struct bs_uefi_store *st;
	rc = bs_uefi_load(img, &st);
	bs_image_close(img);
	if (rc)
		return cli_fail(rc);
	const struct bs_uefi_var *v = find_var(st, a->pos[1]);
	int s;
	if (!v)
		s = cli_error(CLI_EXIT_NOTFOUND, "no UEFI variable %s", a->pos[1]);
	else if (!a->output && !a->force && isatty(1) && !cli_is_text(v->data, v->data_len))
		s = cli_error(CLI_EXIT_USAGE, "refusing to write binary data to a terminal "
					      "(use -o FILE or --force)");
	else
		s = cli_write_output(a->output, v->data, v->data_len);
	bs_uefi_store_free(st);
	return s;
}

static int do_set(const struct cli_command *cmd, const struct uefi_args *a)
{
	uint32_t attrs = BS_UEFI_NON_VOLATILE | BS_UEFI_BOOTSERVICE_ACCESS |
			 BS_UEFI_RUNTIME_ACCESS;
	bool given = false;
	if (a->attrs) {
		char *end;
		unsigned long long x = strtoull(a->attrs, &end, 0);
		if (*end || end == a->attrs || x > UINT32_MAX)
			return cli_usage(cmd, "--attributes takes a number (0x7: NV,BS,RT)");
		attrs = (uint32_t)x;
		given = true;
	}
	uint8_t *data;
	size_t len;
	int s = cli_read_input(a->input, &data, &len);
	if (s)
		return s;
	bs_image *img;
	int rc = cli_open(a->pos[0], true, &img);
	if (!rc && !given) {
		/* An existing variable keeps its attributes. */
		struct bs_uefi_store *st;
		if (!(rc = bs_uefi_load(img, &st))) {
			const struct bs_uefi_var *v = find_var(st, a->pos[1]);
			if (v)
				attrs = v->attributes;
			bs_uefi_store_free(st);
		}
	}
	if (!rc)
		rc = bs_uefi_set(img, a->pos[1], attrs, data, len);
	s = rc ? cli_fail(rc) : 0;
	bs_image_close(img);
	free(data);
	return s;
}

static int do_rm(const struct uefi_args *a)
{
	bs_image *img;
	int rc = cli_open(a->pos[0], true, &img);
	if (!rc)
		rc = bs_uefi_remove(img, a->pos[1]);
	int s = rc ? cli_fail(rc) : 0;
	bs_image_close(img);
	return s;
}

static int run_uefi(const struct cli_command *cmd, int argc, char **argv)
{
	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		cli_print_help(cmd, argc < 1 ? stderr : stdout);
		return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	static const struct {
		const char *name;
		int npos;
	} subs[] = {{"import", 2}, {"export", 2}, {"list", 1}, {"get", 2}, {"set", 2}, {"rm", 2}};
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (strcmp(argv[0], subs[i].name))
			continue;
		struct uefi_args a;
		int st = parse(cmd, argc - 1, argv + 1, subs[i].npos, &a);
		if (st)
			return st < 0 ? CLI_EXIT_OK : st;
		switch (i) {
		case 0: return do_import(&a);
		case 1: return do_export(&a);
		case 2: return do_list(&a);
		case 3: return do_get(&a);
		case 4: return do_set(cmd, &a);
		default: return do_rm(&a);
		}
	}
	return cli_usage(cmd, "unknown subcommand '%s'", argv[0]);
}

const struct cli_command cmd_uefi = {
	.name = "uefi",
	.summary = "UEFI variables: import/export edk2 varstore files, list, get, set, rm",
	.usage = "SUBCOMMAND IMAGE ...\n"
		 "  uefi import IMAGE VARS.fd\n"
		 "  uefi export IMAGE OUT.fd [--template VARS.fd]\n"
		 "  uefi list IMAGE [--json]\n"
		 "  uefi get IMAGE GUID:NAME [-o FILE] [--force]\n"
		 "  uefi set IMAGE GUID:NAME [-i FILE] [--attributes N]\n"
		 "  uefi rm IMAGE GUID:NAME",
	.help = "Keeps a UEFI variable store in the image, one entry of type uefi.var\n"
		"per variable, named GUID:NAME, with its attributes, timestamp, monotonic\n"
		"count and public-key index as read-only attributes.\n\n"
		"import   replaces the image's variables with those of an edk2 varstore\n"
		"         file (OVMF_VARS*.fd; the image is created when missing) and\n"
		"         saves the file's layout (headers, fault-tolerant-write areas).\n"
		"export   writes a varstore file the firmware accepts: the saved layout,\n"
		"         or --template FILE's, with the image's variables.\n"
		"list     one line per variable (--json: a JSON array); attributes other\n"
		"         than the UEFI ones are shown too.\n"
		"get      writes a variable's data (-o FILE, or standard output).\n"
		"set      creates or replaces a variable's data from -i FILE or standard\n"
		"         input; --attributes N (default: kept, or 0x7 NV,BS,RT when new).\n"
		"rm       deletes a variable.\n",
	.run = run_uefi,
};
