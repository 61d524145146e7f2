/* cmd_attr.c - the attr command: show, set and remove an entry's attributes. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_NAME = 1, OPT_SET, OPT_MANDATORY, OPT_REMOVE, OPT_JSON };

/* One requested change, applied in command-line order. */
struct change {
	struct cli_attr a; /* a.name only, for a removal */
	bool remove;
};

#define DESCRIBE_CHARS 1024

static void show_text(bs_entry *e)
{
	fputs("entry '", stdout);
	cli_put_clean(stdout, bs_entry_type(e));
	fputc('\'', stdout);
	if (bs_entry_name(e)) {
		fputs("/'", stdout);
		cli_put_clean(stdout, bs_entry_name(e));
		fputc('\'', stdout);
	}
	if (bs_entry_status(e)) {
		fputs(" (REFUSED: ", stdout);
		cli_put_clean(stdout, bs_entry_status_message(e));
		fputc(')', stdout);
	}
	fputc('\n', stdout);
	char desc[DESCRIBE_CHARS];
	for (int mand = 1; mand >= 0; mand--) {
		for (size_t i = 0; i < bs_attr_count(e); i++) {
			const char *name;
			const uint8_t *v;
			size_t vl;
			unsigned fl_;
			bs_attr_at(e, i, &name, &v, &vl, &fl_);
			if (((fl_ & BS_ATTR_MANDATORY) != 0) != (mand != 0))
				continue;
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
}

static void show_json(bs_entry *e)
{
	char desc[DESCRIBE_CHARS];
	printf("{\"type\": ");
	cli_json_str(stdout, bs_entry_type(e));
	printf(", \"name\": ");
	cli_json_str(stdout, bs_entry_name(e));
	printf(", \"status\": \"%s\", \"reason\": ", bs_entry_status(e) ? "refused" : "ok");
	cli_json_str(stdout, bs_entry_status(e) ? bs_entry_status_message(e) : NULL);
	printf(", \"attributes\": [");
	bool first = true;
	for (int mand = 1; mand >= 0; mand--) {
		for (size_t i = 0; i < bs_attr_count(e); i++) {
			const char *name;
			const uint8_t *v;
			size_t vl;
			unsigned fl_;
			bs_attr_at(e, i, &name, &v, &vl, &fl_);
			if (((fl_ & BS_ATTR_MANDATORY) != 0) != (mand != 0))
				continue;
			printf("%s\n  {\"name\": ", first ? "" : ",");
			cli_json_str(stdout, name);
			printf(", \"mandatory\": %s, \"flag\": %s, \"value\": ", mand ? "true" : "false",
			       vl ? "false" : "true");
			if (vl) {
				bs_value_describe(v, vl, desc, sizeof desc);
				cli_json_str(stdout, desc);
			} else {
				printf("null");
			}
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
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	const char *pos[2], *name = NULL;
	int npos = 0, st = 0;
	bool json = false;
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
		show_json(e);
	else if (!nch)
		show_text(e);
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
		 "           [--remove NAME]... [--json]",
	.help = "Without change options, lists the entry's attributes: mandatory or\n"
		"optional, name and value (described from its DER encoding).  Refused\n"
		"entries are listed too, with the reason.  Changes are applied in the\n"
		"order given; each one rewrites the entry (crash-safe).  Names starting\n"
		"\"bs.\" belong to the library and cannot be changed.\n\n"
		"Options:\n"
		"  -n, --name NAME           the entry's name\n"
		"  --set NAME[=VALUE]        add or replace an optional attribute\n"
		"  --mandatory NAME[=VALUE]  add or replace a mandatory attribute: readers\n"
		"                            that do not know it refuse the entry\n"
		"  --remove NAME             remove an attribute\n"
		"  --json                    list as one JSON object (type, name, status,\n"
		"                            reason, attributes with name, mandatory, flag,\n"
		"                            value, der), after any changes\n",
	.more = cli_help_attr_values,
	.run = run_attr,
};
