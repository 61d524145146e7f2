/* salvage.c - finding the intact entries of damaged storage, for
 * bs_image_salvage().
 *
 * The open-time scan (scan.c) trusts the directory and stops at the first
 * thing that does not parse.  This one trusts nothing: it follows the
 * framing (31 80, elements, 00 00) while it holds, and where it breaks it
 * tries every later offset whose octet is 30 (a SEQUENCE) as the start of
 * an entry.  A candidate counts only when it passes the strict parse every
 * entry passes and, for a slotted entry, one of its slots passes its check:
 * random octets, or the inside of a damaged entry, do neither.  After an
 * end-of-contents the scan goes on (the end may be forged by damage, such
 * as a range overwritten with zeros) and marks what it finds there
 * past_end: the caller decides what to make of it.  Only reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"

/* A read window over the storage. */
struct win {
	struct bs__io *io;
	uint8_t *buf;
	size_t cap, len;
	uint64_t start;
};

#define WINDOW (1u << 16)
/* What unreadable storage is skipped by when a read fails. */
#define BAD_BLOCK 4096u

/* Makes [OFF, OFF+N) available in W (N <= WINDOW, within the storage). */
static int win_get(struct win *w, uint64_t off, size_t n, const uint8_t **p)
{
	if (off >= w->start && off - w->start <= w->len && n <= w->len - (off - w->start)) {
		*p = w->buf + (off - w->start);
		return BS_OK;
	}
	size_t want = WINDOW;
	if (want > w->io->size - off)
		want = (size_t)(w->io->size - off);
	if (want < n)
		want = n;
	w->len = 0;
	int rc = bs__io_read(w->io, NULL, w->buf, want, off);
	if (rc)
		return rc;
	w->start = off;
	w->len = want;
	*p = w->buf;
	return BS_OK;
}

/* The list being built. */
struct list {
	struct bs__found *v;
	size_t n, cap;
};

static struct bs__found *push(struct list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct bs__found *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	struct bs__found *f = &l->v[l->n++];
	memset(f, 0, sizeof *f);
	f->d.supersedes = UINT64_MAX;
	return f;
}

void bs__found_free(struct bs__found *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bs__meta_free(f[i].d.m);
		free(f[i].d.status_msg);
		free(f[i].type);
		free(f[i].name);
		free(f[i].why);
	}
	free(f);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* What trying an offset as an entry gave. */
enum tried { NOT_ENTRY, ENTRY_OK, ENTRY_LOST };

struct attempt {
	struct bs__found f;  /* ENTRY_OK: the entry; ENTRY_LOST: its type, name, why */
	const char *why;     /* NOT_ENTRY, ENTRY_LOST: why (static or in f.d) */
	char *type;          /* NOT_ENTRY: the type, when the head shows one */
	uint64_t claimed;    /* NOT_ENTRY: the size the header claims, or 0 */
	int code;            /* a read error, or BS_ECORRUPT */
	char whybuf[160];    /* WHY, when it came from the parse */
};

/* The type an entry's head names (SEQUENCE, SEQUENCE, IA5String), as far
 * as P/N shows it; NULL when it does not. */
static char *head_type(const uint8_t *p, size_t n)
{
	struct bs__tlv t;
	size_t pos = 0;
	for (int i = 0; i < 2; i++) {
		if (pos >= n || bs__der_header_prefix(p + pos, n - pos, &t) || t.tag != DER_SEQUENCE)
			return NULL;
		pos += t.hdr;
	}
	if (pos >= n || bs__der_header_prefix(p + pos, n - pos, &t) || t.tag != DER_IA5STRING ||
	    t.len > BS_MAX_TYPE_LEN || t.len > n - pos - t.hdr ||
	    !bs__ident_valid(p + pos + t.hdr, t.len, BS_MAX_TYPE_LEN, true))
		return NULL;
	char *s = malloc(t.len + 1);
	if (s) {
		memcpy(s, p + pos + t.hdr, t.len);
		s[t.len] = 0;
	}
	return s;
}

/* Tries OFF as the start of an entry; PRE/PRE_LEN (may be NULL/0) are the
 * octets from OFF on that the caller holds already.  Returns the outcome,
 * or a negative code (BS_ENOMEM only: read errors make the offset
 * NOT_ENTRY). */
static int try_entry(struct bs__io *io, uint64_t off, struct attempt *a, const uint8_t *pre,
		     size_t pre_len)
{
	memset(a, 0, sizeof *a);
	a->f.d.supersedes = UINT64_MAX;
	a->code = BS_ECORRUPT;
	uint64_t avail = io->size - off;
	size_t head_len = avail < 512 ? (size_t)avail : 512;
	uint8_t *head = NULL;
	struct bs__layout lay;
	const char *why;
	int rc;
	/* Most offsets a scan tries are no entry: their first octets say so,
	 * from the caller's window, without a read. */
	if (pre_len >= head_len &&
	    bs__entry_layout(pre, head_len, avail, &lay, &why) == BS_ECORRUPT) {
		a->why = why;
		a->type = head_type(pre, head_len);
		/* How long the entry claims to be, for a truncated one. */
		struct bs__layout whole;
		if (bs__entry_layout(pre, head_len, UINT64_MAX, &whole, &why) != BS_ECORRUPT)
			a->claimed = whole.size;
		return NOT_ENTRY;
	}
	for (;;) {
		uint8_t *nh = realloc(head, head_len ? head_len : 1);
		if (!nh) {
			free(head);
			return BS_ENOMEM;
		}
		head = nh;
		if (pre_len >= head_len) {
			memcpy(head, pre, head_len);
		} else if ((rc = bs__io_read(io, NULL, head, head_len, off))) {
			free(head);
			a->code = rc;
			a->why = "the storage could not be read here";
			return NOT_ENTRY;
		}
		rc = bs__entry_layout(head, head_len, avail, &lay, &why);
		if (rc != BS_ERANGE)
			break;
		if (lay.head_need <= head_len || lay.head_need > avail) {
			rc = BS_ECORRUPT;
			why = "entry header cannot be read";
			break;
		}
		head_len = lay.head_need;
	}
	if (rc || why) {
		a->why = why ? why : "not an entry";
		a->type = head_type(head, head_len);
		struct bs__layout whole;
		const char *w2;
		/* How long the entry claims to be, for a truncated one. */
		if (rc == BS_ECORRUPT && bs__entry_layout(head, head_len, UINT64_MAX, &whole, &w2) !=
						 BS_ECORRUPT)
			a->claimed = whole.size;
		free(head);
		return NOT_ENTRY;
	}
	/* The octets after the data: the name (scan.c reads them the same way). */
	uint8_t tail[6 + BS_MAX_NAME_LEN];
	if (lay.tail_len > sizeof tail)
		lay.tail_len = sizeof tail;
	if (lay.tail_len &&
	    (rc = bs__io_read(io, NULL, tail, lay.tail_len, off + lay.data_rel + lay.data_len))) {
		a->type = head_type(head, head_len);
		free(head);
		a->code = rc;
		a->why = "the storage could not be read here";
		return NOT_ENTRY;
	}
	uint64_t bad_rel;
	struct bs__decoded *d = &a->f.d;
	rc = bs__entry_parse(head, tail, &lay, d, &why, &bad_rel, NULL);
	free(head);
	if (rc)
		return rc;
	a->f.off = off;
	a->f.len = lay.size;
	a->f.data_off = off + lay.data_rel;
	a->f.data_len = lay.data_len;
	/* Sound but refused for mandatory attributes this version does not
	 * know: a newer writer's entry, kept byte for byte. */
	bool sound = d->status == BS_OK || (d->status == BS_EUNSUPPORTED && d->m &&
					     d->m->unknown_mandatory);
	if (!sound) {
		snprintf(a->whybuf, sizeof a->whybuf, "%s", why ? why : "entry does not parse");
		a->why = a->whybuf;
		a->type = dup_or_null(d->m ? d->m->type : NULL);
		bs__meta_free(d->m);
		free(d->status_msg);
		d->m = NULL;
		d->status_msg = NULL;
		a->f.off = a->f.len = 0;
		return NOT_ENTRY;
	}
	if (!d->slotted)
		return ENTRY_OK;
	struct bs__slots s = {a->f.data_off, a->f.data_len, d->alg, -1, 0};
	struct bs__slot_view v[2];
	int current = -1;
	struct bs__where w = {io->label, d->m->type, d->m->name};
	rc = bs__slot_inspect(io, &w, &s, v, &current);
	if (rc == BS_ENOMEM)
		return rc;
	if (rc || current < 0) {
		a->code = rc ? rc : BS_ECORRUPT;
		a->why = rc ? "its data could not be read"
			    : d->alg == BS_CHECK_SHA256
				  ? "no valid data slot: both fail their SHA-256 check"
				  : "no valid data slot: both fail their CRC-32C check";
		return ENTRY_LOST;
	}
	a->f.gen = v[current].gen;
	/* The slot layer's rule, as reads and check apply it (a damaged
	 * generation field included). */
	struct bs__slot_report rep;
	rc = bs__slot_check(io, &w, &s, NULL, &rep);
	if (rc == BS_ENOMEM)
		return rc;
	a->f.newer_bad = !rc && rep.newer_bad;
	return ENTRY_OK;
}

/* The scan's state: the list, and the lost region being collected. */
struct scan {
	struct bs__io *io;
	struct list l;
	bool past_end;
	bool lost_open;
	uint64_t lost_start;
	char *lost_type;       /* what the region starts with, if known */
	char lost_why[160];    /* why the element at its start failed, or "" */
	uint64_t lost_claimed;
	int lost_code;
	bool lost_nonzero;     /* the region holds an octet that is not zero */
};

static void attempt_free(struct attempt *a)
{
	bs__meta_free(a->f.d.m);
	free(a->f.d.status_msg);
	free(a->type);
	a->f.d.m = NULL;
	a->f.d.status_msg = NULL;
	a->type = NULL;
}

/* Starts a lost region at OFF (if none is open), remembering why. */
static void lost_begin(struct scan *s, uint64_t off, struct attempt *a)
{
	if (s->lost_open) {
		if (a && a->code != BS_ECORRUPT)
			s->lost_code = a->code;
		return;
	}
	s->lost_open = true;
	s->lost_start = off;
	s->lost_type = a ? a->type : NULL;
	snprintf(s->lost_why, sizeof s->lost_why, "%s", a && a->why ? a->why : "");
	s->lost_claimed = a ? a->claimed : 0;
	s->lost_code = a ? a->code : BS_ECORRUPT;
	s->lost_nonzero = false;
	if (a)
		a->type = NULL; /* the region owns it now */
}

/* Closes the open lost region at END. */
static int lost_end(struct scan *s, uint64_t end)
{
	if (!s->lost_open)
		return BS_OK;
	s->lost_open = false;
	struct bs__found *f = push(&s->l);
	if (!f) {
		free(s->lost_type);
		return BS_ENOMEM;
	}
	f->off = s->lost_start;
	f->len = end - s->lost_start;
	f->past_end = s->past_end;
	f->type = s->lost_type;
	f->code = s->lost_code;
	f->zeros = !s->lost_nonzero;
	s->lost_type = NULL;
	char msg[300];
	uint64_t avail = s->io->size - f->off;
	if (s->lost_claimed > avail)
		snprintf(msg, sizeof msg,
			 "an entry%s of %llu octets runs past the end of the storage (%llu octets "
			 "remain: truncated)", f->type ? "" : " header",
			 (unsigned long long)s->lost_claimed, (unsigned long long)avail);
	else if (s->lost_why[0])
		snprintf(msg, sizeof msg, "%llu octets where no intact entry could be read (at "
			 "their start: %s)", (unsigned long long)f->len, s->lost_why);
	else
		snprintf(msg, sizeof msg, "%llu octets where no intact entry could be read",
			 (unsigned long long)f->len);
	f->why = strdup(msg);
	return f->why ? BS_OK : BS_ENOMEM;
}

/* Records the outcome of an attempt at OFF that found an entry (OK or
 * lost with a known extent). */
static int take(struct scan *s, struct attempt *a, int outcome)
{
	int rc = lost_end(s, a->f.off);
	if (rc)
		return rc;
	struct bs__found *f = push(&s->l);
	if (!f)
		return BS_ENOMEM;
	*f = a->f;
	f->past_end = s->past_end;
	a->f.d.m = NULL;
	a->f.d.status_msg = NULL;
	if (outcome == ENTRY_OK) {
		f->entry = true;
		return BS_OK;
	}
	/* Its extent and name are known, its data is not usable. */
	f->type = dup_or_null(f->d.m->type);
	f->name = dup_or_null(f->d.m->name);
	f->code = a->code;
	f->why = strdup(a->why);
	bs__meta_free(f->d.m);
	free(f->d.status_msg);
	f->d.m = NULL;
	f->d.status_msg = NULL;
	return f->why && f->type ? BS_OK : BS_ENOMEM;
}

/* Whether P/N holds an octet that is not zero. */
static bool any_nonzero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return true;
	return false;
}

int bs__salvage_scan(struct bs__io *io, struct bs__found **out, size_t *n)
{
	struct scan s = {.io = io};
	struct win w = {.io = io, .buf = malloc(WINDOW)};
	uint64_t size = io->size, pos = 0;
	bool framing = false;
	int rc = BS_OK;
	if (!w.buf)
		return bs__error(BS__AT(io->label), BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	const uint8_t *p;
	if (size >= 2 && !win_get(&w, 0, 2, &p) && p[0] == DER_SET && p[1] == 0x80) {
		framing = true;
		pos = 2;
	} else if (size) {
		struct attempt hdr = {.code = BS_ECORRUPT,
				      .why = "the directory does not start with 31 80"};
		lost_begin(&s, 0, &hdr);
	}
	while (!rc && pos < size) {
		struct attempt a;
		if (framing) {
			size_t peek = size - pos < 16 ? (size_t)(size - pos) : 16;
			if (win_get(&w, pos, peek, &p)) {
				/* Unreadable: from here on, look for entries. */
				framing = false;
				continue;
			}
			if (peek >= 2 && p[0] == 0 && p[1] == 0) {
				/* An end-of-contents, or zeros that look like one: what
				 * follows is past the end unless entries turn up there. */
				s.past_end = true;
				struct attempt eoc = {
					.code = BS_ECORRUPT,
					.why = "an end-of-contents with more after it: damage that "
					       "ended the directory early, or an update that did not "
					       "complete"};
				lost_begin(&s, pos, &eoc);
				pos += 2;
				framing = false;
				continue;
			}
			if (peek >= 2 && p[0] == DER_NULL && p[1] == 0) {
				pos += 2;
				continue;
			}
			if (p[0] == DER_OCTET_STRING) {
				struct bs__tlv t;
				if (!bs__der_header_prefix(p, peek, &t) && t.len <= size - pos - t.hdr) {
					pos += t.hdr + t.len;
					continue;
				}
			}
			if (p[0] == DER_SEQUENCE) {
				int got = try_entry(io, pos, &a, NULL, 0);
				if (got < 0) {
					rc = got;
					break;
				}
				if (got != NOT_ENTRY) {
					pos = a.f.off + a.f.len;
					rc = take(&s, &a, got);
					attempt_free(&a);
					continue;
				}
				lost_begin(&s, pos, &a);
				attempt_free(&a);
			} else {
				struct attempt other = {.code = BS_ECORRUPT,
							.why = "not a directory element"};
				lost_begin(&s, pos, &other);
			}
			s.lost_nonzero = true;
			framing = false;
			pos++;
			continue;
		}
		/* Out of step: the next octet 30 that starts an entry.  The rest
		 * of the window when it holds enough, else a new one from POS. */
		size_t want = size - pos < WINDOW ? (size_t)(size - pos) : WINDOW;
		if (pos >= w.start && pos - w.start < w.len &&
		    (w.len - (pos - w.start) >= 512 || w.start + w.len == size))
			want = w.len - (size_t)(pos - w.start);
		if ((rc = win_get(&w, pos, want, &p))) {
			/* Unreadable octets are lost; go on after the block. */
			struct attempt bad = {.code = rc, .why = "the storage could not be read here"};
			lost_begin(&s, pos, &bad);
			s.lost_code = rc;
			s.lost_nonzero = true;
			pos = (pos / BAD_BLOCK + 1) * BAD_BLOCK;
			if (pos > size)
				pos = size;
			rc = BS_OK;
			continue;
		}
		const uint8_t *q = memchr(p, DER_SEQUENCE, want);
		size_t skip = q ? (size_t)(q - p) : want;
		if (!s.lost_open)
			lost_begin(&s, pos, NULL);
		if (!s.lost_nonzero && any_nonzero(p, skip))
			s.lost_nonzero = true;
		if (!q) {
			pos += want;
			continue;
		}
		uint64_t at = pos + skip;
		int got = try_entry(io, at, &a, q, want - skip);
		if (got < 0) {
			rc = got;
			break;
		}
		if (got == NOT_ENTRY) {
			s.lost_nonzero = true;
			if (a.code != BS_ECORRUPT)
				s.lost_code = a.code;
			attempt_free(&a);
			pos = at + 1;
			continue;
		}
		pos = a.f.off + a.f.len;
		rc = take(&s, &a, got);
		attempt_free(&a);
		framing = true;
	}
	if (!rc)
		rc = lost_end(&s, size);
	free(s.lost_type);
	free(w.buf);
	if (rc) {
		bs__found_free(s.l.v, s.l.n);
		return bs__error(BS__AT(io->label), BS_NO_OFFSET, rc, "out of memory");
	}
	*out = s.l.v;
	*n = s.l.n;
	return BS_OK;
}
