/* cli.h - what the blobstore tool's command files share: the command table
 * entry, option parsing, exit statuses, error reporting, attribute value
 * syntax, sizes, JSON and text output, input/output files and progress. */
#ifndef BLOBSTORE_CLI_H
#define BLOBSTORE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <blobstore/blobstore.h>

/* Exit statuses, documented in blobstore(1) and 'blobstore --help'. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_USAGE = 1,
	CLI_EXIT_NOTFOUND = 2,  /* BS_ENOENT */
	CLI_EXIT_CORRUPT = 3,   /* BS_ECORRUPT, check found problems */
	CLI_EXIT_LOCKED = 4,    /* BS_ELOCKED */
	CLI_EXIT_IO = 5,        /* BS_EIO, BS_ENOSPC, output files */
	CLI_EXIT_REFUSED = 6,   /* BS_EUNSUPPORTED */
	CLI_EXIT_KEY = 7,       /* BS_EKEY */
	CLI_EXIT_OTHER = 8,     /* every other library error */
};

/* One command.  RUN gets the arguments after the command name and returns
 * an exit status. */
struct cli_command {
	const char *name;
	const char *summary; /* one line for 'blobstore --help' */
	const char *usage;   /* synopsis, "IMAGE TYPE [...]" (after the name) */
	const char *help;    /* description and options, for 'blobstore help CMD' */
	const char *more;    /* shared text printed after HELP (may be NULL) */
	int (*run)(const struct cli_command *cmd, int argc, char **argv);
};

/* The commands, one definition each in a cmd_*.c file; main.c lists them. */
extern const struct cli_command cmd_format, cmd_info, cmd_list, cmd_put, cmd_get, cmd_rm,
	cmd_attr, cmd_check, cmd_dump, cmd_compact, cmd_grow, cmd_resize;
extern const struct cli_command cmd_uefi; /* cmd_uefi.c */
extern const struct cli_command cmd_encrypt_init, cmd_rekey; /* cmd_crypt.c */
extern const struct cli_command cmd_import_swtpm, cmd_export_swtpm; /* cmd_swtpm.c */

/* Keys (cmd_crypt.c): the global options --key-file, --passphrase-file and
 * --passphrase-fd; cli_open() loads the key into encrypted images with
 * cli_load_key() (BS_OK when none is given or the image is not encrypted). */
int cli_opt_key_file(const char *arg);
int cli_opt_passphrase_file(const char *arg);
int cli_opt_passphrase_fd(const char *arg);
bool cli_key_given(void);
int cli_load_key(bs_image *img);
void cli_key_release(void);

/* Global options (any position): what they set. */
struct cli_globals {
	unsigned open_flags; /* BS_OPEN_WAIT, BS_OPEN_NOSYNC */
	bool quiet;          /* -q: no informational output, no progress */
};
extern struct cli_globals cli;

/* A global option: NAME ("--wait"), optional SHORT ("-q"), whether it takes
 * a value, and what it does.  The table is in util.c; help lists it. */
struct cli_global_option {
	const char *name;
	const char *short_name;
	bool has_arg;
	const char *help;
	int (*apply)(const char *arg); /* 0, or an exit status after a message */
};
extern const struct cli_global_option cli_global_options[];

/* Command options.  ID is what cli_next() returns for it (> 0). */
struct cli_option {
	const char *name; /* long name without "--" */
	char short_name;  /* or 0 */
	bool has_arg;
	int id;
};

#define CLI_ARG 0   /* a positional argument in p->arg */
#define CLI_END (-1)
#define CLI_STOP (-2) /* help shown or usage error: return p->status */

struct cli_parser {
	const struct cli_command *cmd;
	const struct cli_option *opts; /* ends with a zero entry */
	int argc, i;
	char **argv;
	bool only_args; /* after "--" */
	const char *arg;
	int status;
};

void cli_parser_init(struct cli_parser *p, const struct cli_command *cmd,
		     const struct cli_option *opts, int argc, char **argv);
/* Next option id, CLI_ARG, CLI_END or CLI_STOP.  Global options are applied
 * on the way; --help prints the command's help. */
int cli_next(struct cli_parser *p);

/* Prints "blobstore CMD: message" and the synopsis; returns CLI_EXIT_USAGE. */
int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints a command's full help to OUT. */
void cli_print_help(const struct cli_command *cmd, FILE *out);

/* Help text shared by several commands and by 'blobstore --help'. */
extern const char cli_help_attr_values[]; /* ATTRIBUTE VALUES */
extern const char cli_help_sizes[];       /* SIZES */
extern const char cli_help_exit[];        /* EXIT STATUS */

/* Maps a library result to an exit status. */
int cli_exit_code(int rc);
/* The message of the library's last failure (bs_error_last()). */
const char *last_error(void);
/* Prints "blobstore: <last_error()>" and returns cli_exit_code(RC). */
int cli_fail(int rc);
/* Prints "blobstore: <formatted>" and returns STATUS. */
int cli_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens PATH for reading (no lock) or writing, with the global flags. */
int cli_open(const char *path, bool write, bs_image **img);

/* "4096", "64K", "1M", "2G", "1T" (binary units; "KiB" also accepted). */
bool cli_parse_size(const char *s, uint64_t *out);

/* An attribute from "NAME" or "NAME=VALUE" (blobstore(1), ATTRIBUTE
 * VALUES).  NAME points into SPEC's copy; free with cli_attr_free(). */
struct cli_attr {
	char *name;
	uint8_t *value; /* DER of the value element(s), NULL for a flag */
	size_t len;
	unsigned flags; /* BS_ATTR_MANDATORY */
};
int cli_parse_attr(const struct cli_command *cmd, const char *spec, unsigned flags,
		   struct cli_attr *out);
void cli_attr_free(struct cli_attr *a);

/* Text output: S with control characters as \xNN. */
void cli_put_clean(FILE *out, const char *s);
/* JSON output: S as a string literal (NULL: null), invalid UTF-8 replaced. */
void cli_json_str(FILE *out, const char *s);
void cli_hex(FILE *out, const uint8_t *p, size_t n);
/* Non-zero when P/LEN is UTF-8 text without control characters other than
 * tab, newline and carriage return: safe to show on a terminal. */
bool cli_is_text(const uint8_t *p, size_t len);

/* Reads all of PATH (NULL or "-": standard input). */
int cli_read_input(const char *path, uint8_t **buf, size_t *len);
/* Writes BUF to PATH (NULL: standard output). */
int cli_write_output(const char *path, const void *buf, size_t len);

/* A progress line on standard error, shown only when it is a terminal, the
 * operation runs for more than a second and -q is not given.  TOTAL 0:
 * unknown amount (elapsed time is shown).  cli_progress_set() may be
 * called from the working thread at any rate. */
void cli_progress_begin(const char *what, uint64_t total);
void cli_progress_set(uint64_t done);
void cli_progress_end(void);

#endif
