/* cmd_attr.c - the attr command: show, set and remove an entry's attributes. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_NAME = 1, OPT_SET, OPT_MANDATORY, OPT_REMOVE, OPT_JSON, OPT_ALL };

/* One requested change, applied in command-line order. */
struct change {
	struct cli_attr a; /* a.name only, for a removal */
	bool remove;
};

#define DESCRIBE_CHARS 1024

/* The library's own attributes ("bs.*") are shown only with --all. */
static bool shown(const char *name, bool all)
{
	return all || strncmp(name, "bs.", 3);
}

static void show_text(bs_entry *e, bool all)
{
	fputs("entry ", stdout);
	cli_put_key(stdout, bs_entry_type(e), bs_entry_name(e));
	if (bs_entry_status(e)) {
		fputs(" (REFUSED: ", stdout);
		cli_put_clean(stdout, bs_entry_status_message(e));
		fputc(')', stdout);
	}
	fputc('\n', stdout);
	char desc[DESCRIBE_CHARS];
	size_t hidden = 0;
	for (int mand = 1; mand >= 0; mand--) {
		for (size_t i = 0; i < bs_attr_count(e); i++) {
			const char *name;
			const uint8_t *v;
			size_t vl;
			unsigned fl_;
			bs_attr_at(e, i, &name, &v, &vl, &fl_);
			if (((fl_ & BS_ATTR_MANDATORY) != 0) != (mand != 0))
				continue;
			if (!shown(name, all)) {
				hidden++;
				continue;
			}
			printf("  %-9s ", mand ? "mandatory" : "optional");
			cli_put_clean(stdout, name);
			if (vl) {
				bs_value_describe(v, vl, desc, sizeof desc);
				fputs(" = ", stdout);
				cli_put_clean(stdout, desc);
			} else {
				fputs(" (flag)", stdout);
			}
			fputc('\n', stdout);
		}
	}
	if (hidden && !cli.quiet)
		printf("  (%zu of the library's own: --all shows them)\n", hidden);
}

/* The ASN.1 type of the value element V (its universal tag). */
static const char *type_name(const uint8_t *v, size_t vl)
{
	if (!vl)
		return NULL;
	switch (v[0]) {
	case 0x01: return "BOOLEAN";
	case 0x02: return "INTEGER";
	case 0x03: return "BIT STRING";
	case 0x04: return "OCTET STRING";
	case 0x05: return "NULL";
	case 0x06: return "OBJECT IDENTIFIER";
	case 0x0a: return "ENUMERATED";
	case 0x0c: return "UTF8String";
	case 0x13: return "PrintableString";
	case 0x16: return "IA5String";
	case 0x17: return "UTCTime";
	case 0x18: return "GeneralizedTime";
	case 0x30: return "SEQUENCE";
	case 0x31: return "SET";
	default: return "other";
	}
}

/* The value's natural JSON value: integer, boolean, string, hexadecimal
 * octets; null for a flag or NULL; the description for other types. */
static void json_value(const uint8_t *v, size_t vl)
{
	int64_t i;
	int b;
	char *str;
	const uint8_t *oct;
	size_t on;
	if (!vl || v[0] == 0x05) {
		printf("null");
	} else if (v[0] == 0x02 && !bs_value_decode_int(v, vl, &i, NULL)) {
		printf("%" PRId64, i);
	} else if (v[0] == 0x01 && !bs_value_decode_bool(v, vl, &b, NULL)) {
		printf("%s", b ? "true" : "false");
	} else if ((v[0] == 0x0c || v[0] == 0x16) && !bs_value_decode_str(v, vl, &str, NULL)) {
		cli_json_str(stdout, str);
		free(str);
	} else if (v[0] == 0x04 && !bs_value_decode_bytes(v, vl, &oct, &on, NULL)) {
		putchar('"');
		cli_hex(stdout, oct, on);
		putchar('"');
	} else {
		char desc[DESCRIBE_CHARS];
		bs_value_describe(v, vl, desc, sizeof desc);
		cli_json_str(stdout, desc);
	}
}

static void show_json(const char *path, bs_image *img, bs_entry *e, bool all)
{
	printf("{\"image\": ");
	cli_json_str(stdout, path);
	printf(", \"entry\": ");
	cli_json_entry_alone(stdout, img, e);
	printf(", \"attributes\": [");
	bool first = true;
	for (int mand = 1; mand >= 0; mand--) {
		for (size_t i = 0; i < bs_attr_count(e); i++) {
			const char *name;
			const uint8_t *v;
			size_t vl;
			unsigned fl_;
			bs_attr_at(e, i, &name, &v, &vl, &fl_);
			if (((fl_ & BS_ATTR_MANDATORY) != 0) != (mand != 0) || !shown(name, all))
				continue;
			printf("%s\n  {\"name\": ", first ? "" : ",");
			cli_json_str(stdout, name);
			/* The read-write form is a fixed-size OCTET STRING. */
			printf(", \"mandatory\": %s, \"read_write\": %s, \"type\": ",
			       mand ? "true" : "false", vl && v[0] == 0x04 ? "true" : "false");
			cli_json_str(stdout, type_name(v, vl));
			printf(", \"value\": ");
			json_value(v, vl);
			printf(", \"der\": \"");
			cli_hex(stdout, v, vl);
			printf("\"}");
			first = false;
		}
	}
	printf("%s]}\n", first ? "" : "\n");
}

static int run_attr(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"name", 'n', true, OPT_NAME},
		{"set", 0, true, OPT_SET},
		{"mandatory", 0, true, OPT_MANDATORY},
		{"remove", 0, true, OPT_REMOVE},
		{"json", 0, false, OPT_JSON},
		{"all", 'a', false, OPT_ALL},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	const char *pos[2], *name = NULL;
	int npos = 0, st = 0;
	bool json = cli.json, all = false;
	struct change *ch = calloc((size_t)argc + 1, sizeof *ch);
	size_t nch = 0;
	bs_image *img = NULL;
	if (!ch)
		return cli_error(CLI_EXIT_OTHER, "out of memory");
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; !st && (o = cli_next(&p)) != CLI_END;) {
		switch (o) {
		case CLI_STOP:
			st = p.status;
			goto out;
		case CLI_ARG:
			if (npos == 2)
				st = cli_usage(cmd, "unexpected argument '%s'", p.arg);
			else
				pos[npos++] = p.arg;
			break;
		case OPT_NAME:
			name = p.arg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_SET:
		case OPT_MANDATORY:
			st = cli_parse_attr(cmd, p.arg, o == OPT_MANDATORY ? BS_ATTR_MANDATORY : 0,
					    &ch[nch].a);
			if (!st)
				nch++;
			break;
		case OPT_REMOVE:
			ch[nch].remove = true;
			ch[nch].a.name = strdup(p.arg);
			if (!ch[nch++].a.name)
				st = cli_error(CLI_EXIT_OTHER, "out of memory");
			break;
		}
	}
	if (!st && npos < 2)
		st = cli_usage(cmd, "missing %s", npos ? "TYPE" : "IMAGE and TYPE");
	if (st)
		goto out;
	int rc = cli_open(pos[0], nch > 0, &img);
	bs_entry *e = NULL;
	if (!rc)
		rc = bs_entry_find(img, pos[1], name, &e);
	for (size_t i = 0; !rc && i < nch; i++) {
		if (ch[i].remove)
			rc = bs_attr_remove(e, ch[i].a.name);
		else
			rc = bs_attr_set(e, ch[i].a.name, ch[i].a.flags, ch[i].a.value, ch[i].a.len);
	}
	if (rc) {
		st = cli_fail(rc);
		goto out;
	}
	if (json)
		show_json(pos[0], img, e, all);
	else if (!nch)
		show_text(e, all);
out:
	bs_image_close(img);
	for (size_t i = 0; i < nch; i++)
		cli_attr_free(&ch[i].a);
	free(ch);
	return st;
}

const struct cli_command cmd_attr = {
	.name = "attr",
	.summary = "show, set or remove an entry's attributes",
	.usage = "IMAGE TYPE [--name NAME] [--set NAME[=VALUE]]... [--mandatory NAME[=VALUE]]...\n"
		 "           [--remove NAME]... [--all] [--json]",
	.help = "Without change options, lists the entry's attributes: mandatory or\n"
		"optional, name and value (described from its DER encoding); the library's\n"
		"own (names starting \"bs.\") only with --all.  Refused entries are listed\n"
		"too, with the reason.  Changes are applied in the order given; each one\n"
		"rewrites the entry (crash-safe).  Setting an attribute that exists\n"
		"replaces its value, as put replaces data.  The library's own attributes\n"
		"cannot be changed.\n\n"
		"Options:\n"
		"  -n, --name NAME           the entry's name\n"
		"  --set NAME[=VALUE]        add or replace an optional attribute\n"
		"  --mandatory NAME[=VALUE]  add or replace a mandatory attribute: readers\n"
		"                            that do not know it refuse the entry\n"
		"  --remove NAME             remove an attribute\n"
		"  -a, --all                 also list the library's own attributes\n"
		"  --json                    list as one JSON object (image, entry,\n"
		"                            attributes: docs/JSON.md), after any changes\n",
	.more = cli_help_attr_values,
	.run = run_attr,
};
