/* show.c - how the tool shows an entry and an image, the same way in every
 * command: the state of each entry (ok, previous, damaged, locked,
 * refused) from one check of the image, and the JSON objects of the
 * concepts "entry" and "image" of docs/JSON.md. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/crypt.h>

#include "cli.h"

/* ---- entry states ------------------------------------------------------------ */

struct state_rec {
	const bs_entry *e;
	int code;     /* the first error check reported for the entry, or BS_OK */
	bool note;    /* check noted that it reads an older value */
	char msg[400];
};

struct cli_states {
	struct state_rec *v;
	size_t n, cap;
	bool failed; /* out of memory: states unknown */
};

static struct state_rec *rec_of(struct cli_states *s, const bs_entry *e, bool add)
{
	for (size_t i = s->n; i-- > 0;)
		if (s->v[i].e == e)
			return &s->v[i];
	if (!add)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct state_rec *v = realloc(s->v, cap * sizeof *v);
		if (!v) {
			s->failed = true;
			return NULL;
		}
		s->v = v;
		s->cap = cap;
	}
	struct state_rec *r = &s->v[s->n++];
	memset(r, 0, sizeof *r);
	r->e = e;
	return r;
}

static void on_check(void *ctx, const bs_entry *e, uint64_t offset, int code, const char *msg)
{
	(void)offset;
	struct cli_states *s = ctx;
	if (!e)
		return;
	struct state_rec *r = rec_of(s, e, true);
	if (!r)
		return;
	if (code && !r->code) {
		r->code = code;
		snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : bs_error_string(code));
	} else if (!code && !r->note) {
		r->note = true;
		if (!r->code)
			snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
	}
}

struct cli_states *cli_states_new(bs_image *img)
{
	struct cli_states *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	cli_progress_begin("checking", 0);
	bs_image_check(img, 0, on_check, s);
	cli_progress_end();
	return s;
}

void cli_states_free(struct cli_states *s)
{
	if (s)
		free(s->v);
	free(s);
}

/* The part of a library message after "IMAGE: entry 'T'/'N' at offset X: ". */
static const char *bare(const char *msg)
{
	const char *p = strstr(msg, "at offset ");
	if (p && (p = strstr(p, ": ")))
		return p + 2;
	return msg;
}

void cli_entry_view(struct cli_states *s, bs_image *img, bs_entry *e, struct cli_entry_view *v)
{
	memset(v, 0, sizeof *v);
	v->status = "ok";
	struct state_rec *r = s ? rec_of(s, e, false) : NULL;
	bool locked = bs_entry_is_encrypted(e) && !bs_image_has_key(img);
	int st = bs_entry_status(e);
	if (st == BS_EUNSUPPORTED) {
		v->status = "refused";
		snprintf(v->reason, sizeof v->reason, "%s", bs_entry_status_message(e));
	} else if (st) {
		v->status = "damaged";
		snprintf(v->reason, sizeof v->reason, "%s", bs_entry_status_message(e));
	} else if (r && r->code) {
		v->status = "damaged";
		snprintf(v->reason, sizeof v->reason, "%s", bare(r->msg));
	} else if (r && r->note) {
		v->status = "previous";
		snprintf(v->reason, sizeof v->reason, "%s", bare(r->msg));
	} else if (locked) {
		v->status = "locked";
		snprintf(v->reason, sizeof v->reason,
			 "encrypted, and no key is given (--key-file, --passphrase-file or "
			 "--passphrase-fd)");
	}
	if (!strcmp(v->status, "damaged") || !strcmp(v->status, "refused") || locked)
		return;
	if (!bs_entry_is_slotted(e)) {
		/* Raw: the data is the whole data area. */
		v->size_known = true;
		v->size = bs_entry_capacity(e);
		return;
	}
	/* The data's length: a read into no buffer says it (BS_ERANGE). */
	size_t len = 0;
	int rc = bs_entry_read(e, NULL, 0, &len);
	if (rc == BS_OK || rc == BS_ERANGE) {
		v->size_known = true;
		v->size = len;
	} else if (rc == BS_ECORRUPT) {
		v->status = "damaged";
		snprintf(v->reason, sizeof v->reason, "%s", bare(last_error()));
	}
}

bool cli_view_readable(const struct cli_entry_view *v)
{
	return !strcmp(v->status, "ok") || !strcmp(v->status, "previous");
}

const char *cli_entry_check(const bs_entry *e)
{
	if (bs_entry_status(e))
		return NULL;
	return bs_entry_is_slotted(e) ? bs_checksum_name(bs_entry_checksum(e)) : NULL;
}

const char *cli_entry_encryption(const bs_entry *e)
{
	return bs_entry_is_encrypted(e) ? bs_cipher_name(bs_entry_cipher(e)) : NULL;
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_u64_or_null(FILE *out, bool known, uint64_t v)
{
	if (known)
		fprintf(out, "%" PRIu64, v);
	else
		fputs("null", out);
}

void cli_json_entry_members(FILE *out, bs_entry *e, const struct cli_entry_view *v)
{
	cli_json_entry_members_at(out, e, v, bs_entry_offset(e), bs_entry_size(e));
}

void cli_json_entry_members_at(FILE *out, bs_entry *e, const struct cli_entry_view *v,
			       uint64_t offset, uint64_t length)
{
	fputs("\"type\": ", out);
	cli_json_str(out, bs_entry_type(e));
	fputs(", \"name\": ", out);
	cli_json_str(out, bs_entry_name(e));
	fprintf(out, ", \"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"size\": ",
		offset, length);
	json_u64_or_null(out, v->size_known, v->size);
	fputs(", \"capacity\": ", out);
	json_u64_or_null(out, !bs_entry_status(e), bs_entry_capacity(e));
	fputs(", \"check\": ", out);
	cli_json_str(out, cli_entry_check(e));
	fputs(", \"encryption\": ", out);
	cli_json_str(out, cli_entry_encryption(e));
	fputs(", \"status\": ", out);
	cli_json_str(out, v->status);
	fputs(", \"reason\": ", out);
	cli_json_str(out, v->reason[0] ? v->reason : NULL);
}

void cli_json_entry(FILE *out, bs_entry *e, const struct cli_entry_view *v)
{
	fputc('{', out);
	cli_json_entry_members(out, e, v);
	fputc('}', out);
}

void cli_json_entry_alone(FILE *out, bs_image *img, bs_entry *e)
{
	struct cli_states *s = cli_states_new(img);
	struct cli_entry_view v;
	cli_entry_view(s, img, e, &v);
	cli_json_entry(out, e, &v);
	cli_states_free(s);
}

size_t cli_count_encrypted(bs_image *img)
{
	size_t n = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, 0));)
		n += bs_entry_is_encrypted(e) != 0;
	return n;
}

void cli_json_image_members(FILE *out, const char *path, bs_image *img)
{
	struct bs_image_stat s = BS_IMAGE_STAT_INIT;
	bs_image_stat(img, &s);
	size_t user = bs_image_count(img, 0), all = bs_image_count(img, BS_ITER_LIBRARY);
	enum bs_kdf kdf;
	const char *kdf_name = bs_image_kdf(img, &kdf) ? NULL : bs_kdf_name(kdf);
	fputs("\"image\": ", out);
	cli_json_str(out, path);
	fputs(", \"id\": \"", out);
	cli_hex(out, bs_image_id(img), 16);
	fprintf(out, "\", \"length\": %" PRIu64 ", \"dir_end\": %" PRIu64 ", \"used\": %" PRIu64
		", \"free\": %" PRIu64 ", \"free_holes\": %" PRIu64 ", \"free_tail\": %" PRIu64
		", \"entry_count\": %zu, \"library_entry_count\": %zu, \"refused_count\": %" PRIu64
		", \"encrypted\": %s, \"kdf\": ",
		s.size, s.dir_end, s.used, s.free_holes + s.free_tail, s.free_holes, s.free_tail,
		user, all - user, s.refused, bs_image_is_encrypted(img) ? "true" : "false");
	cli_json_str(out, kdf_name);
	fprintf(out, ", \"encrypted_entry_count\": %zu", cli_count_encrypted(img));
}

void cli_json_image(FILE *out, const char *path, bs_image *img)
{
	fputc('{', out);
	cli_json_image_members(out, path, img);
	fputs("}\n", out);
}

/* ---- text -------------------------------------------------------------------------- */

void cli_put_key(FILE *out, const char *type, const char *name)
{
	fputc('\'', out);
	cli_put_clean(out, type);
	fputc('\'', out);
	if (name) {
		fputs("/'", out);
		cli_put_clean(out, name);
		fputc('\'', out);
	}
}
