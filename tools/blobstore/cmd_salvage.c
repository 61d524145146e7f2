/* cmd_salvage.c - 'blobstore salvage DAMAGED NEW': the intact entries of a
 * damaged image copied into a new one (bs_image_salvage()), with a report
 * of every entry recovered and every loss.  DAMAGED is only read. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blobstore/backend.h>
#include <blobstore/crypt.h>

#include "cli.h"

enum { OPT_FORCE = 1, OPT_JSON, OPT_PAST_END };

/* One item of the library's report, kept until the new image is open. */
struct item {
	int recovered, code;
	char *type, *name, *note;
	uint64_t offset, length, new_offset;
};

struct report {
	struct item *v;
	size_t n, cap;
	bool failed;
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void collect(void *ctx, const struct bs_salvage_item *si)
{
	struct report *r = ctx;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 32;
		struct item *v = realloc(r->v, cap * sizeof *v);
		if (!v) {
			r->failed = true;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	struct item *it = &r->v[r->n++];
	it->recovered = si->recovered;
	it->code = si->code;
	it->offset = si->offset;
	it->length = si->length;
	it->new_offset = si->new_offset;
	it->type = dup_or_null(si->type);
	it->name = dup_or_null(si->name);
	it->note = dup_or_null(si->note);
	if ((si->type && !it->type) || (si->name && !it->name) || (si->note && !it->note))
		r->failed = true;
}

static void report_free(struct report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].type);
		free(r->v[i].name);
		free(r->v[i].note);
	}
	free(r->v);
}

/* What a loss is, in the entry concept's status (docs/JSON.md). */
static const char *lost_status(int code)
{
	switch (code) {
	case BS_EEXIST: return "duplicate";
	case BS_ESTALE: return "stale";
	case BS_EKEY: return "undecryptable";
	default: return "damaged";
	}
}

/* Losses that are data: damage, and encryption bound to a lost id (a
 * duplicate or a stale copy past the end is not). */
static bool data_lost(int code)
{
	return code != BS_EEXIST && code != BS_ESTALE;
}

static void json_u64(uint64_t v)
{
	if (v == UINT64_MAX)
		printf("null");
	else
		printf("%" PRIu64, v);
}

static void print_json(const char *damaged, const char *out, const struct report *r,
		       bs_image *img, struct cli_states *states, size_t nrec, size_t nlost)
{
	printf("{\"image\": ");
	cli_json_str(stdout, damaged);
	printf(", \"output\": ");
	cli_json_str(stdout, out);
	printf(", \"recovered_count\": %zu, \"lost_count\": %zu, \"recovered\": [", nrec, nlost);
	bool first = true;
	for (size_t i = 0; i < r->n; i++) {
		const struct item *it = &r->v[i];
		if (!it->recovered)
			continue;
		bs_entry *e = NULL;
		if (img && it->type)
			bs_entry_find(img, it->type, it->name, &e);
		printf("%s\n  {", first ? "" : ",");
		first = false;
		if (e) {
			struct cli_entry_view v;
			cli_entry_view(states, img, e, &v);
			/* Offset and length: where it was, in the damaged image. */
			cli_json_entry_members_at(stdout, e, &v, it->offset, it->length);
		} else {
			printf("\"type\": ");
			cli_json_str(stdout, it->type);
			printf(", \"name\": ");
			cli_json_str(stdout, it->name);
			printf(", \"offset\": %" PRIu64 ", \"length\": %" PRIu64
			       ", \"size\": null, \"capacity\": null, \"check\": null, "
			       "\"encryption\": null, \"status\": \"ok\", \"reason\": null",
			       it->offset, it->length);
		}
		printf(", \"new_offset\": ");
		json_u64(it->new_offset);
		printf(", \"note\": ");
		cli_json_str(stdout, it->note);
		printf("}");
	}
	printf("%s], \"lost\": [", first ? "" : "\n");
	first = true;
	for (size_t i = 0; i < r->n; i++) {
		const struct item *it = &r->v[i];
		if (it->recovered)
			continue;
		printf("%s\n  {\"type\": ", first ? "" : ",");
		first = false;
		cli_json_str(stdout, it->type);
		printf(", \"name\": ");
		cli_json_str(stdout, it->name);
		printf(", \"offset\": %" PRIu64 ", \"length\": %" PRIu64
		       ", \"size\": null, \"capacity\": null, \"check\": null, \"encryption\": null"
		       ", \"status\": \"%s\", \"reason\": ",
		       it->offset, it->length, lost_status(it->code));
		cli_json_str(stdout, it->note);
		printf(", \"code\": ");
		cli_json_str(stdout, cli_code_name(it->code));
		printf(", \"new_offset\": null, \"note\": ");
		cli_json_str(stdout, it->note);
		printf("}");
	}
	printf("%s]}\n", first ? "" : "\n");
}

static void print_text(const char *damaged, const char *out, const struct report *r,
		       size_t nrec, size_t nlost)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct item *it = &r->v[i];
		printf("%-9s at %10" PRIu64 ", %8" PRIu64 " octets: ",
		       it->recovered ? "recovered" : lost_status(it->code), it->offset, it->length);
		if (it->type)
			cli_put_key(stdout, it->type, it->name);
		else
			fputs("(no entry could be read)", stdout);
		if (it->recovered && it->new_offset != UINT64_MAX)
			printf(" -> offset %" PRIu64, it->new_offset);
		if (it->note) {
			fputs(": ", stdout);
			cli_put_clean(stdout, it->note);
		}
		fputc('\n', stdout);
	}
	cli_put_clean(stdout, damaged);
	printf(": %zu entr%s recovered into ", nrec, nrec == 1 ? "y" : "ies");
	cli_put_clean(stdout, out);
	printf(", %zu lost\n", nlost);
}

/* Counts check's errors but the image-level one of a lost key entry. */
static void count_entry_errors(void *ctx, const bs_entry *e, uint64_t offset, int code,
			       const char *msg)
{
	(void)offset;
	(void)msg;
	if (code && code != BS_EUNSUPPORTED && (e || code != BS_ECORRUPT))
		++*(int *)ctx;
}

static int run_salvage(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{"force", 'f', false, OPT_FORCE},
		{"past-end", 0, false, OPT_PAST_END},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0},
	};
	struct cli_parser p;
	const char *pos[2];
	int npos = 0;
	bool force = false, json = cli.json, past_end = false;
	cli_parser_init(&p, cmd, opts, argc, argv);
	for (int o; (o = cli_next(&p)) != CLI_END;) {
		if (o == CLI_STOP)
			return p.status;
		if (o == OPT_FORCE)
			force = true;
		else if (o == OPT_JSON)
			json = true;
		else if (o == OPT_PAST_END)
			past_end = true;
		else if (npos == 2)
			return cli_usage(cmd, "unexpected argument '%s'", p.arg);
		else
			pos[npos++] = p.arg;
	}
	if (npos < 2)
		return cli_usage(cmd, "give DAMAGED and NEW");
	if (cli_key_given())
		return cli_usage(cmd, "salvage copies encrypted entries as they are and needs no "
				      "key: check the new image with the key afterwards");
	const char *damaged = pos[0], *out = pos[1];
	if (strstr(out, "://"))
		return cli_usage(cmd, "NEW is a file path");
	struct stat sd, so;
	bool out_exists = !stat(out, &so);
	if (out_exists && !stat(damaged, &sd) && sd.st_dev == so.st_dev && sd.st_ino == so.st_ino)
		return cli_error_code(CLI_EXIT_USAGE, BS_EINVAL, out,
				      "%s and %s are the same file: salvage never writes the damaged "
				      "image", damaged, out);
	if (out_exists && !force)
		return cli_error_code(CLI_EXIT_OTHER, BS_EEXIST, out,
				      "%s exists: --force replaces it", out);
	if (out_exists && !S_ISREG(so.st_mode))
		return cli_error_code(CLI_EXIT_OTHER, BS_EINVAL, out,
				      "%s exists and is not a regular file", out);
	/* Only read: no write, no lock, no resize of the damaged storage. */
	struct bs_backend *src, *dst;
	int rc = bs_backend_open(damaged, BS_OPEN_RDONLY, &src);
	if (rc)
		return cli_fail(rc);
	char *tmp;
	int fd = cli_temp_beside(out, &tmp);
	if (fd < 0) {
		bs_backend_free(src);
		return -fd;
	}
	/* The damaged image's mode when it is a file: it holds the same state. */
	if (!stat(damaged, &sd) && S_ISREG(sd.st_mode))
		fchmod(fd, sd.st_mode & 0777);
	/* FD stays open, and the file locked, until it has NEW's name. */
	int st = 0;
	struct report r = {0};
	if ((rc = bs_backend_file(tmp, cli.open_flags, &dst))) {
		st = cli_fail(rc);
	} else {
		struct bs_salvage_opts so_ = BS_SALVAGE_OPTS_INIT;
		so_.flags = (past_end ? BS_SALVAGE_PAST_END : 0) |
			    ((cli.open_flags & BS_OPEN_NOSYNC) ? BS_SALVAGE_NOSYNC : 0);
		so_.cb = collect;
		so_.ctx = &r;
		cli_progress_begin("salvaging", 0);
		rc = bs_image_salvage(src, damaged, dst, out, &so_);
		cli_progress_end();
		bs_backend_free(dst);
		if (rc)
			st = cli_fail(rc);
		else if (r.failed)
			st = cli_error(CLI_EXIT_OTHER, "out of memory");
	}
	bs_backend_free(src);
	/* The new image must open and pass check before it takes NEW's name. */
	bs_image *img = NULL;
	struct cli_states *states = NULL;
	if (!st && (rc = bs_image_open(tmp, BS_OPEN_RDONLY, &img)))
		st = cli_fail(rc);
	if (!st) {
		/* Encrypted entries may come back without their key entry: check
		 * reports that (an image-level problem), and so does salvage. */
		size_t orphans = bs_image_is_encrypted(img) ? 0 : cli_count_encrypted(img);
		int others = 0;
		int cr = bs_image_check(img, 0, orphans ? count_entry_errors : NULL, &others);
		if (cr && cr != BS_EUNSUPPORTED && !(cr == BS_ECORRUPT && orphans && !others))
			st = cli_error_code(CLI_EXIT_OTHER, cr, out,
					    "internal: the salvaged image fails check: %s", last_error());
		else if (orphans)
			cli_warn("%s: %zu encrypted entr%s came back, but the key entry (bs.key) is "
				 "lost: no key opens %s ('blobstore check %s' reports it)",
				 out, orphans, orphans == 1 ? "y" : "ies",
				 orphans == 1 ? "it" : "them", out);
	}
	if (!st)
		st = cli_publish(tmp, out, out_exists);
	else
		unlink(tmp);
	close(fd);
	free(tmp);
	if (st) {
		bs_image_close(img);
		report_free(&r);
		return st;
	}
	states = cli_states_new(img);
	size_t nrec = 0, nlost = 0;
	bool lost = false;
	for (size_t i = 0; i < r.n; i++) {
		nrec += r.v[i].recovered != 0;
		nlost += !r.v[i].recovered;
		lost |= !r.v[i].recovered && data_lost(r.v[i].code);
	}
	if (json)
		print_json(damaged, out, &r, img, states, nrec, nlost);
	else if (!cli.quiet)
		print_text(damaged, out, &r, nrec, nlost);
	size_t enc = cli_count_encrypted(img);
	if (enc && !bs_image_is_encrypted(img))
		cli_warn("%zu encrypted entr%s recovered, but the image's key entry (bs.key) is lost: "
			 "they cannot be decrypted", enc, enc == 1 ? "y was" : "ies were");
	cli_states_free(states);
	bs_image_close(img);
	report_free(&r);
	return lost ? CLI_EXIT_CORRUPT : CLI_EXIT_OK;
}

const struct cli_command cmd_salvage = {
	.name = "salvage",
	.summary = "copy every intact entry of a damaged image into a new image",
	.usage = "DAMAGED NEW [--force] [--past-end] [--json]",
	.help = "Reads DAMAGED without ever writing it (not even a lock), finds every\n"
		"entry whose encoding passes the strict parse and whose data passes a slot\n"
		"check, wherever its directory is broken (truncated, overwritten ranges,\n"
		"damaged framing), and writes them into the new image file NEW: byte for\n"
		"byte, encrypted entries as they are with the image id and bs.key, so that\n"
		"NEW opens with the same key.  Prints each entry recovered and each range\n"
		"lost, with their offsets in DAMAGED.  NEW is written beside its final\n"
		"name, synced, checked, then renamed.  Exit status 0 when nothing was lost,\n"
		"3 when something was (the report says what).\n\n"
		"Options:\n"
		"  -f, --force  replace NEW when it exists (never DAMAGED itself)\n"
		"  --past-end   also copy entries found past the end of the directory on\n"
		"               fixed-size storage (block devices, NBD), where stale copies\n"
		"               of older or deleted entries may lie; from files they are\n"
		"               always copied\n"
		"  --json       one JSON object: image, output, recovered_count, lost_count,\n"
		"               recovered and lost (entries, docs/JSON.md)\n",
	.run = run_salvage,
};
