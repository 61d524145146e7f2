/* dump.c - bs_image_dump(): an annotated listing of a whole image, for people.
 *
 * Walks the directory and the inside of every entry with the DER walker
 * (der/walk.c) and the codec's layout step, so the listing shows what the
 * store's own parser sees.  Unknown elements and attributes are listed like known
 * ones, never skipped.  Data areas are summarised (slot headers and whether
 * each passes its check), never printed whole. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define PREVIEW_OCTETS 16u        /* raw data octets shown in hex */
#define WHOLE_LIMIT (1u << 20)    /* entries without a layout: octets read */
#define DESCRIBE_CHARS 160u       /* width of one value description */

struct dumper {
	bs_image *img;
	FILE *out;
};

/* One listing line: offset, indentation, the element's header octets (may
 * be none), then the description. */
static void line(struct dumper *d, uint64_t off, unsigned depth, const uint8_t *hdr, size_t hlen,
		 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void line(struct dumper *d, uint64_t off, unsigned depth, const uint8_t *hdr, size_t hlen,
		 const char *fmt, ...)
{
	char hex[3 * 8 + 1] = "";
	size_t n = 0;
	for (size_t i = 0; i < hlen && i < 8; i++)
		n += (size_t)snprintf(hex + n, sizeof hex - n, "%s%02x", i ? " " : "", hdr[i]);
	fprintf(d->out, "%10" PRIu64 "  %*s%-*s  ", off, (int)(2 * depth), "",
		(int)(hlen ? 3 * hlen - 1 : 0), hex);
	/* Names in damaged entries are raw octets: keep control characters
	 * away from the terminal. */
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	uint8_t *c = (uint8_t *)text;
	size_t left = strlen(text);
	while (left) {
		size_t k = *c < 0xc0 ? 1 : *c < 0xe0 ? 2 : *c < 0xf0 ? 3 : 4;
		if (k > left || (k == 1 && (*c < 0x20 || *c >= 0x7f)) ||
		    (k > 1 && (!bs_utf8_valid(c, k) || (c[0] == 0xc2 && c[1] < 0xa0)))) {
			k = 1; /* controls (C0, DEL, C1) and broken UTF-8 */
			*c = '?';
		}
		c += k;
		left -= k;
	}
	fputs(text, d->out);
	fputc('\n', d->out);
}

/* "SEQUENCE", "[APPLICATION 3]", ... from identifier octets as bs__tlv
 * holds them. */
static void tag_name(uint32_t tag, char *buf, size_t cap)
{
	static const char *const universal[31] = {
		[1] = "BOOLEAN", [2] = "INTEGER", [3] = "BIT STRING", [4] = "OCTET STRING",
		[5] = "NULL", [6] = "OBJECT IDENTIFIER", [10] = "ENUMERATED",
		[12] = "UTF8String", [16] = "SEQUENCE", [17] = "SET",
		[19] = "PrintableString", [22] = "IA5String", [23] = "UTCTime",
		[24] = "GeneralizedTime",
	};
	unsigned n = 1;
	while (n < 4 && (tag >> (8 * n)))
		n++;
	uint8_t first = (uint8_t)(tag >> (8 * (n - 1)));
	uint32_t num = first & 0x1fu;
	if (num == 0x1f) {
		num = 0;
		for (unsigned i = n - 1; i-- > 0;)
			num = (num << 7) | ((tag >> (8 * i)) & 0x7fu);
	}
	static const char *const cls[4] = {"UNIVERSAL ", "APPLICATION ", "", "PRIVATE "};
	if ((first >> 6) == 0 && num < 31 && universal[num])
		snprintf(buf, cap, "%s", universal[num]);
	else
		snprintf(buf, cap, "[%s%" PRIu32 "]", cls[first >> 6], num);
}

/* The octets of one entry that are in memory: [0, head_len) and
 * [tail_start, size), relative to the entry's first octet. */
struct view {
	const uint8_t *head;
	size_t head_len;
	const uint8_t *tail;
	size_t tail_start;
	size_t size;
};

static const uint8_t *view_at(const struct view *v, size_t pos, size_t *avail)
{
	if (pos < v->head_len) {
		*avail = v->head_len - pos;
		return v->head + pos;
	}
	if (pos >= v->tail_start && pos < v->size) {
		*avail = v->size - pos;
		return v->tail + (pos - v->tail_start);
	}
	*avail = 0;
	return NULL;
}

/* What an element is, from its parent and its position among siblings. */
enum role {
	R_TOP, R_ENTRY, R_NVRAM, R_NAME, R_TYPE, R_MSET, R_OSET, R_DATA, R_ATTR,
	R_ATTR_NAME, R_VALUE, R_INNER, R_EXTRA
};

static enum role child_role(enum role parent, unsigned idx)
{
	static const enum role nvram[4] = {R_TYPE, R_MSET, R_OSET, R_DATA};
	switch (parent) {
	case R_TOP:
		return idx == 0 ? R_ENTRY : R_EXTRA;
	case R_ENTRY:
		return idx == 0 ? R_NVRAM : idx == 1 ? R_NAME : R_EXTRA;
	case R_NVRAM:
		return idx < 4 ? nvram[idx] : R_EXTRA;
	case R_MSET:
	case R_OSET:
		return R_ATTR;
	case R_ATTR:
		return idx == 0 ? R_ATTR_NAME : R_VALUE;
	default:
		return R_INNER;
	}
}

static const char *role_label(enum role r)
{
	switch (r) {
	case R_ENTRY: return "Entry";
	case R_NVRAM: return "nvram";
	case R_NAME: return "name";
	case R_TYPE: return "type";
	case R_MSET: return "mandatory attributes";
	case R_OSET: return "optional attributes";
	case R_DATA: return "data";
	case R_ATTR: return "attribute";
	case R_ATTR_NAME: return "attribute name";
	case R_VALUE: return "value";
	case R_EXTRA: return "unexpected element";
	default: return NULL;
	}
}

static void hex_preview(const uint8_t *p, size_t n, char *buf, size_t cap)
{
	size_t k = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n && k + 3 < cap; i++)
		k += (size_t)snprintf(buf + k, cap - k, "%02x", p[i]);
}

/* The data area: its size, then what it holds. */
static int dump_data(struct dumper *d, bs_entry *e, uint64_t contents, uint64_t len,
		     unsigned depth)
{
	if (!e) {
		line(d, contents, depth, NULL, 0,
		     "(copy replaced by a later rewrite: data not interpreted)");
		return BS_OK;
	}
	if (e->status) {
		line(d, contents, depth, NULL, 0, "(entry refused: data not interpreted)");
		return BS_OK;
	}
	if (e->slotted) {
		struct bs__slot_view v[2];
		int current = -1;
		const char *alg = e->alg == BS_CHECK_SHA256 ? "sha256" : "crc32c";
		int rc = bs__data_inspect(d->img, e, v, &current);
		if (rc)
			return rc;
		size_t cap = (size_t)(e->data_len / 2 - bs__slot_hdr_len(e->alg));
		for (int i = 0; i < 2; i++) {
			/* Generation 0 is never written: such a slot is unused. */
			if (!v[i].valid && v[i].gen == 0)
				line(d, v[i].off, depth, NULL, 0, "slot %d: unused (generation 0)", i);
			else
				line(d, v[i].off, depth, NULL, 0,
				     "slot %d: generation %" PRIu64 ", length %" PRIu32
				     " of %zu, %s %s%s", i, v[i].gen, v[i].len, cap, alg,
				     v[i].valid ? "ok" : "FAILS", current == i ? " (current)" : "");
		}
		if (current < 0)
			line(d, contents, depth, NULL, 0, "no slot holds a valid value");
		return BS_OK;
	}
	uint8_t buf[PREVIEW_OCTETS];
	size_t n = len < sizeof buf ? (size_t)len : sizeof buf;
	char hex[2 * PREVIEW_OCTETS + 1];
	struct bs__where w;
	bs__where_of(d->img, e, &w);
	int rc = n ? bs__io_read(&d->img->io, &w, buf, n, contents) : BS_OK;
	if (rc)
		return rc;
	hex_preview(buf, n, hex, sizeof hex);
	line(d, contents, depth, NULL, 0, "raw data (no slots), %" PRIu64 " octets%s%s%s", len,
	     n ? ": " : "", hex, len > n ? "..." : "");
	return BS_OK;
}

/* The summary of an Attribute SEQUENCE: its name and its value described. */
static void attr_summary(const uint8_t *c, size_t len, char *buf, size_t cap)
{
	struct bs__tlv t;
	char desc[DESCRIBE_CHARS];
	buf[0] = 0;
	if (bs__der_header(c, len, &t) || t.tag != DER_IA5STRING)
		return;
	bs_value_describe(c + t.hdr + t.len, len - t.hdr - t.len, desc, sizeof desc);
	snprintf(buf, cap, " '%.*s' = %s", (int)(t.len < 255 ? t.len : 255),
		 (const char *)c + t.hdr, desc);
}

static const uint8_t *view_fn(void *ctx, size_t pos, size_t *avail)
{
	return view_at(ctx, pos, avail);
}

/* Walks the elements of one entry whose octets V holds with the DER walker,
 * each element's role known from its parent's and its position. */
static int walk_entry(struct dumper *d, uint64_t base, const struct view *v, bs_entry *e,
		      const char *label, size_t data_rel)
{
	struct bs__der_walk w = {0};
	struct bs__der_item it;
	const char *why;
	bs__der_walk_init(&w, NULL, v->size, BS_MAX_DEPTH + 7, R_TOP);
	w.view = view_fn;
	w.ctx = (void *)v;
	for (;;) {
		int got = bs__der_walk_next(&w, &it, &why);
		if (got == 0)
			return BS_OK;
		unsigned ind = (unsigned)it.depth + 1;
		if (got == -2) {
			line(d, base + it.pos, ind, NULL, 0, "(%zu further octets not read)",
			     v->size - it.pos);
			return BS_OK;
		}
		if (got < 0) {
			line(d, base + it.pos, ind, it.p, it.avail < 2 ? it.avail : 2, "malformed: %s",
			     why);
			return BS_OK;
		}
		const uint8_t *p = it.p;
		size_t avail = it.avail;
		struct bs__tlv t = it.t;
		enum role r = child_role((enum role)it.parent, it.index);
		char tn[40], extra[DESCRIBE_CHARS + 300] = "";
		tag_name(t.tag, tn, sizeof tn);
		const char *rl = role_label(r);
		if (t.constructed) {
			char who[700] = "";
			if (r == R_ENTRY && label)
				snprintf(who, sizeof who, " %s", label);
			else if (r == R_ATTR && t.len <= avail - t.hdr)
				attr_summary(p + t.hdr, t.len, extra, sizeof extra);
			line(d, base + it.pos, ind, p, t.hdr, "%s%s%s%s, %zu octets%s", rl ? rl : "",
			     who, rl ? ": " : "", tn, t.len, extra);
			if (!bs__der_walk_enter(&w, &it, (int)r)) {
				line(d, base + it.pos + t.hdr, ind + 1, NULL, 0,
				     "(nested too deep: contents not shown)");
				bs__der_walk_skip(&w, &it);
			}
			continue;
		}
		if (r == R_DATA && data_rel && it.pos + t.hdr == data_rel) {
			line(d, base + it.pos, ind, p, t.hdr, "data: %s, %zu octets", tn, t.len);
			int rc = dump_data(d, e, base + data_rel, t.len, ind + 1);
			if (rc)
				return rc;
		} else if (t.len <= avail - t.hdr) {
			char desc[DESCRIBE_CHARS];
			bs_value_describe(p, t.hdr + t.len, desc, sizeof desc);
			if (r == R_ATTR)
				rl = "flag attribute";
			line(d, base + it.pos, ind, p, t.hdr, "%s%s%s", rl ? rl : "", rl ? ": " : "",
			     desc);
		} else {
			line(d, base + it.pos, ind, p, t.hdr, "%s%s%s, %zu octets (not read)",
			     rl ? rl : "", rl ? ": " : "", tn, t.len);
		}
		bs__der_walk_skip(&w, &it);
	}
}

/* Types and names come from the image: bounded, control characters
 * replaced, so a hostile image cannot garble the terminal. */
static void clean_copy(char *dst, size_t cap, const char *src)
{
	size_t k = 0;
	for (; *src && k + 4 < cap; src++)
		dst[k++] = (uint8_t)*src < 0x20 || *src == 0x7f ? '?' : *src;
	strcpy(dst + k, *src ? "..." : "");
}

static void entry_label(const bs_entry *e, char *buf, size_t cap)
{
	if (!e) {
		snprintf(buf, cap, "(replaced by a later rewrite; the next writer deletes it)");
		return;
	}
	const char *name = e->m ? e->m->name : NULL;
	char t[80], n[80];
	clean_copy(t, sizeof t, e->m && e->m->type ? e->m->type : "");
	clean_copy(n, sizeof n, name ? name : "");
	snprintf(buf, cap, "'%s'%s%s%s%s%s", t, name ? "/'" : "", name ? n : "", name ? "'" : "",
		 e->status ? ", REFUSED: " : "", e->status ? bs_entry_status_message(e) : "");
}

/* One Entry element of SIZE octets at OFF. */
static int dump_entry(struct dumper *d, uint64_t off, uint64_t size, bs_entry *e)
{
	/* Find the data area the way open does, reading only the head. */
	struct bs__layout lay;
	const char *why = NULL;
	size_t head_len = size < 512 ? (size_t)size : 512;
	uint8_t *head = NULL, *tail = NULL;
	struct bs__where w;
	bs__where_of(d->img, e, &w);
	int rc;
	for (;;) {
		uint8_t *h = realloc(head, head_len);
		if (!h) {
			rc = bs__err(d->img, e, off, BS_ENOMEM, "out of memory");
			goto out;
		}
		head = h;
		if ((rc = bs__io_read(&d->img->io, &w, head, head_len, off)))
			goto out;
		rc = bs__entry_layout(head, head_len, size, &lay, &why);
		if (rc != BS_ERANGE || lay.head_need <= head_len)
			break;
		head_len = lay.head_need;
	}
	struct view v = {.size = (size_t)size};
	size_t data_rel = 0;
	if (rc == BS_OK && !why && lay.data_rel && lay.size == size) {
		data_rel = (size_t)lay.data_rel;
		v.head = head;
		v.head_len = data_rel;
		v.tail_start = (size_t)(lay.data_rel + lay.data_len);
		if (lay.tail_len) {
			tail = malloc(lay.tail_len);
			if (!tail) {
				rc = bs__err(d->img, e, off, BS_ENOMEM, "out of memory");
				goto out;
			}
			if ((rc = bs__io_read(&d->img->io, &w, tail, lay.tail_len, off + v.tail_start)))
				goto out;
		}
		v.tail = tail;
	} else {
		/* No layout: show what the first octets hold. */
		size_t n = size < WHOLE_LIMIT ? (size_t)size : WHOLE_LIMIT;
		uint8_t *h = realloc(head, n ? n : 1);
		if (!h) {
			rc = bs__err(d->img, e, off, BS_ENOMEM, "out of memory");
			goto out;
		}
		head = h;
		if ((rc = bs__io_read(&d->img->io, &w, head, n, off)))
			goto out;
		v.head = head;
		v.head_len = n;
		v.tail_start = (size_t)size;
	}
	char label[600];
	entry_label(e, label, sizeof label);
	rc = walk_entry(d, off, &v, e, label, data_rel);
out:
	free(head);
	free(tail);
	return rc;
}

static int cmp_off(const void *a, const void *b)
{
	const bs_entry *x = *(bs_entry *const *)a, *y = *(bs_entry *const *)b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static bs_entry *entry_at_offset(bs_entry **sorted, size_t n, uint64_t off)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sorted[mid]->off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && sorted[lo]->off == off ? sorted[lo] : NULL;
}

int bs_image_dump(bs_image *img, FILE *out)
{
	if (!img || !out)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	struct dumper d = {img, out};
	bs_entry **sorted = malloc((img->count ? img->count : 1) * sizeof *sorted);
	if (!sorted)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	memcpy(sorted, img->list, img->count * sizeof *sorted);
	qsort(sorted, img->count, sizeof *sorted, cmp_off);
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	bs_image_stat(img, &st);
	fprintf(out, "image %s: %" PRIu64 " octets, directory end %" PRIu64 ", %" PRIu64
		     " entries (%" PRIu64 " refused), %" PRIu64 " octets free in holes\n",
		img->label, st.size, st.dir_end, st.entries, st.refused, st.free_holes);
	uint8_t p[16];
	int rc = bs__io_read(&img->io, NULL, p, 2, 0);
	if (!rc)
		line(&d, 0, 0, p, 2, "directory: SET, indefinite length (framed as CER, X.690 9.1)");
	uint64_t pos = 2;
	while (!rc && pos + 2 <= img->dir_end) {
		size_t peek = img->dir_end - pos < sizeof p ? (size_t)(img->dir_end - pos) : sizeof p;
		if ((rc = bs__io_read(&img->io, NULL, p, peek, pos)))
			break;
		if (p[0] == 0 && p[1] == 0) {
			line(&d, pos, 1, p, 2, "end-of-contents of the directory");
			pos += 2;
			break;
		}
		struct bs__tlv t;
		const char *why = bs__der_header_prefix(p, peek, &t);
		if (!why && t.len > img->dir_end - pos - t.hdr)
			why = "runs past the directory end";
		if (why) {
			/* Open accepted the directory, so the image changed since. */
			line(&d, pos, 1, p, 2, "malformed directory element: %s", why);
			rc = bs__err(img, NULL, pos, BS_ECORRUPT, "directory element: %s", why);
			break;
		}
		if (t.tag == DER_OCTET_STRING) {
			line(&d, pos, 1, p, t.hdr, "free space: OCTET STRING, %zu octets", t.len);
		} else {
			rc = dump_entry(&d, pos, t.hdr + t.len, entry_at_offset(sorted, img->count, pos));
		}
		pos += t.hdr + t.len;
	}
	if (!rc && img->io.size > pos)
		line(&d, pos, 0, NULL, 0, "%" PRIu64 " octets past the directory (not part of it)",
		     img->io.size - pos);
	free(sorted);
	if (!rc && (fflush(out) || ferror(out)))
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_EIO, "writing the dump failed");
	return rc;
}
