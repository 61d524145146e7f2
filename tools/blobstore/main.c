/* main.c - the blobstore tool's entry point: the command table, global
 * options before the command, --help, --version and 'help CMD'. */
#include <string.h>

#include <blobstore/nbd.h>
#include <blobstore/rbd.h>

#include "cli.h"

#define TOOL_VERSION "0.2.0"

/* Every command, in the order 'blobstore --help' lists them.  A new command
 * is one line here plus its definition in a cmd_*.c file. */
static const struct cli_command *const commands[] = {
	&cmd_format,
	&cmd_info,
	&cmd_list,
	&cmd_put,
	&cmd_get,
	&cmd_rm,
	&cmd_attr,
	&cmd_check,
	&cmd_dump,
	&cmd_compact,
	&cmd_grow,
	&cmd_resize,
	&cmd_uefi,
	&cmd_import_swtpm,
	&cmd_export_swtpm,
	&cmd_encrypt_init,
	&cmd_rekey,
	&cmd_salvage,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

static void print_usage(FILE *out)
{
	fprintf(out, "usage: blobstore [GLOBAL OPTIONS] COMMAND [ARGS]\n"
		     "       blobstore help COMMAND | COMMAND --help | --help | --version\n\n"
		     "Stores device state (vTPM, NVRAM, ...) as typed, named entries in one\n"
		     "ASN.1 image file; every change is crash-safe.\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-13s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out, "\nGlobal options (before or after the command):\n");
	for (const struct cli_global_option *g = cli_global_options; g->name; g++) {
		char names[64];
		char val[32] = "";
		if (g->has_arg || g->optional_arg)
			snprintf(val, sizeof val, g->optional_arg ? "[=%s]" : " %s",
				 g->arg_name ? g->arg_name : "VALUE");
		snprintf(names, sizeof names, "%s%s%s%s", g->short_name ? g->short_name : "",
			 g->short_name ? ", " : "", g->name, val);
		fprintf(out, "  %-23s %s\n", names, g->help);
	}
	fprintf(out, "\n%s\n%s\n%s\nSee blobstore(1) for details.\n", cli_help_sizes,
		cli_help_attr_values, cli_help_exit);
}

static int help_command(int argc, char **argv)
{
	if (argc < 1) {
		print_usage(stdout);
		return CLI_EXIT_OK;
	}
	const struct cli_command *cmd = find_command(argv[0]);
	if (!cmd)
		return cli_usage(NULL, "no command '%s'", argv[0]);
	cli_print_help(cmd, stdout);
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	int i = 1;
	/* Errors are JSON as soon as --json is anywhere on the line, even when
	 * they happen before the command's own parser sees it. */
	for (int k = 1; k < argc && strcmp(argv[k], "--"); k++)
		if (!strcmp(argv[k], "--json"))
			cli.json = true;
	/* Images on NBD exports: nbd://, nbd+unix://, ... */
	if (bs_nbd_register())
		return cli_fail(BS_EINVAL);
	if (bs_rbd_register()) /* rbd://POOL/IMAGE?conf=FILE */
		return cli_fail(BS_EINVAL);
	/* Global options before the command. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			print_usage(stdout);
			return CLI_EXIT_OK;
		}
		if (!strcmp(a, "--version")) {
			printf("blobstore %s (library %d.%d)\n", TOOL_VERSION, BS_VERSION_MAJOR,
			       BS_VERSION_MINOR);
			return CLI_EXIT_OK;
		}
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		const struct cli_global_option *g = cli_global_options;
		for (; g->name; g++)
			if ((strlen(g->name) == nl && !strncmp(g->name, a, nl)) ||
			    (g->short_name && !strcmp(g->short_name, a)))
				break;
		if (!g->name)
			return cli_usage(NULL, "unknown option '%s'", a);
		const char *val = NULL;
		if (g->has_arg) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return cli_usage(NULL, "%s needs a value", g->name);
		} else if (g->optional_arg) {
			val = eq ? eq + 1 : NULL;
		} else if (eq) {
			return cli_usage(NULL, "%s takes no value", g->name);
		}
		int st = g->apply(val);
		if (st)
			return st;
	}
	if (i >= argc) {
		print_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help"))
		return help_command(argc - i - 1, argv + i + 1);
	const struct cli_command *cmd = find_command(argv[i]);
	if (!cmd)
		return cli_usage(NULL, "no command '%s'", argv[i]);
	int status = cmd->run(cmd, argc - i - 1, argv + i + 1);
	if (fflush(stdout) || ferror(stdout))
		return status ? status : cli_error(CLI_EXIT_IO, "writing standard output failed");
	return status;
}
