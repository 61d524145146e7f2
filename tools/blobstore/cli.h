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
extern const struct cli_command cmd_salvage; /* cmd_salvage.c */

/* Keys (cmd_crypt.c): the global options --key-file, --passphrase-file and
 * --passphrase-fd; cli_open() loads the key into encrypted images with
 * cli_load_key(): BS_OK when none is given, BS_EKEY (the error set, saying
 * how to set encryption up) when one is given for an image that is not
 * encrypted: a key means "this image is encrypted", nothing else. */
int cli_opt_key_file(const char *arg);
int cli_opt_passphrase_file(const char *arg);
int cli_opt_passphrase_fd(const char *arg);
int cli_opt_kdf_max_iter(const char *arg);
int cli_opt_kdf_max_mem(const char *arg);
int cli_opt_kdf_max_work(const char *arg);
bool cli_key_given(void);
int cli_load_key(bs_image *img);
void cli_key_release(void);

/* Global options (any position): what they set. */
struct cli_globals {
	unsigned open_flags; /* BS_OPEN_NOSYNC */
	bool quiet;          /* -q: no informational output, no progress */
	double wait;         /* --wait[=SECONDS]: how long a writer waits (0: not) */
	bool json;           /* --json anywhere: errors go to stderr as JSON */
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
	bool optional_arg; /* "--name" or "--name=VALUE" (ARG NULL for the first) */
	const char *arg_name; /* what the value is, for help ("FILE") */
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

/* Errors go to standard error: "blobstore: message" lines, or under
 * --json one object {"error": {...}} (docs/JSON.md). */
/* Maps a library result to an exit status. */
int cli_exit_code(int rc);
/* "BS_ECORRUPT" for BS_ECORRUPT, ... */
const char *cli_code_name(int rc);
/* The message of the library's last failure (bs_error_last()). */
const char *last_error(void);
/* Reports the library's last failure (with the file, entry and offset it
 * names; a damaged image gets the salvage hint) and returns
 * cli_exit_code(RC). */
int cli_fail(int rc);
/* Reports the formatted message and returns STATUS. */
int cli_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with the library code CODE and the FILE it is about (may be
 * NULL), for JSON. */
int cli_error_code(int status, int code, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* What salvage does: the hint that errors about a damaged image give. */
extern const char cli_salvage_hint[];
/* "blobstore: warning: ..." on standard error, unless -q or --json. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens PATH for reading (no lock) or writing, with the global flags,
 * waiting for another writer as --wait says; loads the key. */
int cli_open(const char *path, bool write, bs_image **img);
/* How often a read-only command opens the image again when a read says
 * another process moved what it read (BS_ESTALE) before it gives up. */
#define CLI_STALE_TRIES 10
/* bs_image_open() with FLAGS, waiting as --wait says (no key loaded). */
int cli_open_flags(const char *path, unsigned flags, bs_image **img);

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
/* Writes BUF to PATH (NULL: standard output), truncating what is there. */
int cli_write_output(const char *path, const void *buf, size_t len);
/* Writes BUF to the file PATH without ever destroying what it holds unless
 * FORCE: an existing non-empty regular file is refused (exit 8) without
 * FORCE; the new content goes to a temporary file beside PATH, synced,
 * then renamed over it (devices and pipes are written directly).  SECRET:
 * mode 0600 (decrypted data), else 0666 less the umask. */
int cli_write_file(const char *path, bool force, bool secret, const void *buf, size_t len);
/* A new temporary file beside PATH (".NAME.blobstore-XXXXXX"): its
 * descriptor, *TMP (malloc'ed) its name; or minus an exit status after a
 * message.  The descriptor holds an open-file-description write lock on
 * it: keep it open until the file has its name or is removed (format
 * --force closes it early, but holds the image's lock throughout). */
int cli_temp_beside(const char *path, char **tmp);
/* Removes what killed runs of this tool left beside the image PATH, a
 * regular file whose writer lock the caller holds: ".NAME.blobstore-XXXXXX"
 * files that no process holds locked (regular, one link, owned by PATH's
 * owner or by us; symbolic links not followed), one line each on standard
 * error (not with -q or --json). */
void cli_tidy_beside(const char *path);
/* Moves the finished file TMP to PATH: over an existing PATH only when
 * REPLACE (else exit 8 when PATH exists, TMP removed); syncs the directory. */
int cli_publish(const char *tmp, const char *path, bool replace);
/* fsync of the directory holding PATH (not with --no-sync). */
int cli_sync_dir_of(const char *path);

/* ---- showing entries and images (show.c) --------------------------------- */

/* What list, info and --json say about an entry: its status (docs/JSON.md:
 * ok, previous, damaged, locked, refused), why when it is not ok, and the
 * length of its data when that can be known. */
struct cli_entry_view {
	const char *status;
	char reason[512];
	bool size_known;
	uint64_t size;
};
/* The result of one check of IMG (every entry's slots), which tells which
 * entries are damaged or read an older value.  NULL when out of memory. */
struct cli_states;
struct cli_states *cli_states_new(bs_image *img);
void cli_states_free(struct cli_states *s);
/* E's view; S may be NULL (then "previous" is not known). */
void cli_entry_view(struct cli_states *s, bs_image *img, bs_entry *e, struct cli_entry_view *v);
/* Status ok or previous: the data can be read. */
bool cli_view_readable(const struct cli_entry_view *v);
/* "crc32c"/"sha256", NULL for raw or refused entries; the cipher's name,
 * NULL for plaintext. */
const char *cli_entry_check(const bs_entry *e);
const char *cli_entry_encryption(const bs_entry *e);
/* The entry object {"type", ...} (with or without its braces), and one for
 * E alone (a check of the image for its state). */
void cli_json_entry(FILE *out, bs_entry *e, const struct cli_entry_view *v);
void cli_json_entry_members(FILE *out, bs_entry *e, const struct cli_entry_view *v);
void cli_json_entry_alone(FILE *out, bs_image *img, bs_entry *e);
/* The members with another OFFSET and LENGTH (where the entry was). */
void cli_json_entry_members_at(FILE *out, bs_entry *e, const struct cli_entry_view *v,
			       uint64_t offset, uint64_t length);
/* The image object's members ("image": PATH, "id", ...), or the whole
 * object and a newline. */
void cli_json_image_members(FILE *out, const char *path, bs_image *img);
void cli_json_image(FILE *out, const char *path, bs_image *img);
/* Entries of IMG (not the library's) that are encrypted. */
size_t cli_count_encrypted(bs_image *img);
/* "'TYPE'/'NAME'" without control characters. */
void cli_put_key(FILE *out, const char *type, const char *name);

/* A progress line on standard error, shown only when it is a terminal, the
 * operation runs for more than a second and -q is not given.  TOTAL 0:
 * unknown amount (elapsed time is shown).  cli_progress_set() may be
 * called from the working thread at any rate. */
void cli_progress_begin(const char *what, uint64_t total);
void cli_progress_set(uint64_t done);
void cli_progress_end(void);

#endif
