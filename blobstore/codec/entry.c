/* entry.c - one directory entry's strict decoding: the layout step that
 * finds the data area from the entry's head, then the parse of type,
 * attribute sets, name and the library's own attributes (codec.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int bs__entry_layout(const uint8_t *head, size_t head_len, uint64_t avail,
		     struct bs__layout *lay, const char **why)
{
	struct bs__tlv t;
	memset(lay, 0, sizeof *lay);
	*why = NULL;
	size_t avail_sz = avail > SIZE_MAX ? SIZE_MAX : (size_t)avail;
	const char *w = bs__der_header_prefix(head, head_len < avail_sz ? head_len : avail_sz, &t);
	if (w) {
		*why = w;
		return BS_ECORRUPT;
	}
	if (t.tag != DER_SEQUENCE) {
		*why = "directory element is neither an Entry (SEQUENCE) nor free space (OCTET STRING)";
		return BS_ECORRUPT;
	}
	uint64_t size = (uint64_t)t.hdr + t.len;
	if (size > avail) {
		*why = "entry runs past the end of the image";
		return BS_ECORRUPT;
	}
	if (size > BS_MAX_ENTRY_SIZE) {
		*why = "entry larger than the limit";
		return BS_ELIMIT;
	}
	lay->size = size;
	/* Inside: a failure here refuses only this entry (data_rel stays 0). */
	size_t pos = t.hdr, end = (size_t)size;
	const uint8_t tags[4] = {DER_SEQUENCE, DER_IA5STRING, DER_SET, DER_SET};
	for (int step = 0; step < 5; step++) {
		size_t have = head_len < end ? head_len : end;
		if (pos + 6 > have && have < end) {
			lay->head_need = pos + 6 < end ? pos + 6 : end;
			return BS_ERANGE;
		}
		w = bs__der_header_prefix(head + pos, have - pos, &t);
		if (w) {
			*why = w;
			return BS_OK;
		}
		if (t.len > end - pos - t.hdr) {
			*why = step == 0 ? "NVRAM runs past its Entry"
					 : "element runs past its NVRAM";
			return BS_OK;
		}
		if (step == 4) {
			if (t.tag != DER_OCTET_STRING) {
				*why = "data is not a primitive OCTET STRING";
				return BS_OK;
			}
			lay->data_rel = pos + t.hdr;
			lay->data_len = t.len;
			lay->head_need = pos + t.hdr;
			lay->tail_len = (size_t)(size - lay->data_rel - t.len);
			return BS_OK;
		}
		if (t.tag != tags[step]) {
			static const char *names[4] = {"nvram is not a SEQUENCE",
						       "type is not an IA5String",
						       "mandatory attributes are not a SET",
						       "optional attributes are not a SET"};
			*why = names[step];
			return BS_OK;
		}
		if (step == 0) {
			end = pos + t.hdr + t.len; /* the NVRAM's end bounds the rest */
			pos += t.hdr;
			continue;
		}
		if (pos + t.hdr + t.len > head_len) {
			lay->head_need = pos + t.hdr + t.len + 6;
			if (lay->head_need > size)
				lay->head_need = (size_t)size;
			return BS_ERANGE;
		}
		pos += t.hdr + t.len;
	}
	return BS_OK;
}

/* A meta built by bs__entry_parse is one block (struct, attribute refs,
 * the sets' octets, type, name, attribute names): open keeps one per entry,
 * in the image's pool, and one block instead of seven is most of its cost. */
void bs__meta_free(struct bs__meta *m)
{
	if (m && !m->pooled)
		free(m);
}

const struct bs__attr_ref *bs__meta_attr(const struct bs__meta *m, const char *name)
{
	for (size_t i = 0; m && i < m->nmand + m->nopt; i++)
		if (!strcmp(m->attrs[i].cname, name))
			return &m->attrs[i];
	return NULL;
}

/* Bump allocation inside a meta's block. */
struct arena {
	char *p, *end;
};

static char *arena_dup(struct arena *a, const uint8_t *p, size_t n)
{
	if (!a)
		return NULL;
	if ((size_t)(a->end - a->p) < n + 1)
		return NULL; /* sized in advance: cannot happen */
	char *s = a->p;
	memcpy(s, p, n);
	s[n] = 0;
	a->p += n + 1;
	return s;
}

static char *dupn(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

/* Parses one SET OF Attribute's contents.  Names are copied into ARENA, or
 * malloc()ed when it is NULL (the caller frees them). */
static const char *parse_set(const uint8_t *p, size_t len, bool mandatory,
			     struct bs__attr_ref *out, size_t *n, size_t max, size_t *bad,
			     struct arena *arena)
{
	size_t pos = 0;
	const uint8_t *prev = NULL;
	size_t prev_len = 0;
	while (pos < len) {
		struct bs__tlv t;
		*bad = pos;
		const char *w = bs__der_header(p + pos, len - pos, &t);
		if (w)
			return w;
		size_t tl = t.hdr + t.len;
		if (*n >= max)
			return "more attributes than the limit";
		if (tl > BS_MAX_ATTR_SIZE)
			return "attribute larger than the limit";
		struct bs__attr_ref *a = &out[*n];
		memset(a, 0, sizeof *a);
		a->tlv = p + pos;
		a->tlv_len = tl;
		a->mandatory = mandatory;
		const uint8_t *c = p + pos + t.hdr;
		if (t.tag == DER_IA5STRING) {
			a->name = c;
			a->name_len = t.len;
			a->value = c + t.len;
			a->value_len = 0;
		} else if (t.tag == DER_SEQUENCE) {
			struct bs__tlv nt;
			w = bs__der_header(c, t.len, &nt);
			if (w)
				return w;
			if (nt.tag != DER_IA5STRING)
				return "attribute SEQUENCE does not start with an IA5String name";
			a->name = c + nt.hdr;
			a->name_len = nt.len;
			a->value = c + nt.hdr + nt.len;
			a->value_len = t.len - nt.hdr - nt.len;
			if (a->value_len == 0)
				return "attribute SEQUENCE without a value";
			size_t cnt = 0;
			w = bs__der_check_elements(a->value, a->value_len, &cnt);
			if (w)
				return w;
			/* One value element, as the module says: compound values
			 * nest in a SEQUENCE, and libtasn1 can check every image. */
			if (cnt != 1)
				return "attribute value is not exactly one element";
		} else {
			return "attribute is neither an IA5String flag nor a SEQUENCE";
		}
		if (!bs__ident_valid(a->name, a->name_len, BS_MAX_ATTR_NAME_LEN, false))
			return "attribute name empty, too long or not printable ASCII";
		if (prev) {
			int c2 = bs__der_set_cmp(prev, prev_len, a->tlv, a->tlv_len);
			if (c2 == 0)
				return "duplicate attribute";
			if (c2 > 0)
				return "SET OF Attribute not in DER order (X.690 11.6)";
		}
		prev = a->tlv;
		prev_len = a->tlv_len;
		a->cname = arena ? arena_dup(arena, a->name, a->name_len)
				 : dupn(a->name, a->name_len);
		if (!a->cname)
			return "out of memory";
		(*n)++;
		pos += tl;
	}
	return NULL;
}

const char *bs__attr_set_parse(const uint8_t *p, size_t len, bool mandatory,
			       struct bs__attr_ref *out, size_t *n, size_t max, size_t *bad)
{
	return parse_set(p, len, mandatory, out, n, max, bad, NULL);
}

/* An upper bound on the refs parse_set writes for one set: the elements
 * whose headers parse, at most BS_MAX_ATTRS. */
static size_t count_attrs(const uint8_t *p, size_t len)
{
	size_t n = 0, pos = 0;
	struct bs__tlv t;
	while (pos < len && n < BS_MAX_ATTRS && !bs__der_header(p + pos, len - pos, &t)) {
		n++;
		pos += t.hdr + t.len;
	}
	return n;
}

size_t bs__slot_hdr_len(enum bs_check_alg alg)
{
	return alg == BS_CHECK_SHA256 ? 12 + 32 : 12 + 4;
}

static int refuse(struct bs__decoded *e, int code, const char *why, const char *what, uint64_t rel,
		  uint64_t *bad_rel, const char **whyp)
{
	e->status = code;
	*bad_rel = rel;
	if (what) {
		size_t n = strlen(why) + strlen(what) + 8;
		e->status_msg = malloc(n);
		if (e->status_msg)
			snprintf(e->status_msg, n, why, what);
	} else {
		e->status_msg = dupn((const uint8_t *)why, strlen(why));
	}
	*whyp = e->status_msg ? e->status_msg : why;
	return BS_OK;
}

/* The optional name after the data, then the entry's end.  Returns NULL,
 * or why the entry is refused (a format for WHAT) at entry offset *AT. */
static const char *parse_name(const uint8_t *tail, const struct bs__layout *lay,
			      struct arena *arena, struct bs__meta *m, const char **what,
			      uint64_t *at)
{
	struct bs__tlv t;
	*what = NULL;
	*at = lay->data_rel + lay->data_len;
	if (!lay->tail_len)
		return NULL;
	const char *w = bs__der_header(tail, lay->tail_len, &t);
	if (w) {
		*what = w;
		return "name: %s";
	}
	if (t.tag != DER_UTF8STRING)
		return "element after data is not a UTF8String name";
	if (t.hdr + t.len != lay->tail_len) {
		*at += t.hdr + t.len;
		return "trailing octets after the name";
	}
	const uint8_t *nm = tail + t.hdr;
	if (t.len > BS_MAX_NAME_LEN || !bs_utf8_valid(nm, t.len) || memchr(nm, 0, t.len))
		return "name is too long, not UTF-8 or holds NUL";
	m->name = arena_dup(arena, nm, t.len);
	return NULL;
}

/* A slotted entry's data area must hold two slots. */
static const char *check_slots(const struct bs__decoded *e, const struct bs__layout *lay)
{
	if (!e->slotted)
		return NULL;
	size_t h = bs__slot_hdr_len(e->alg);
	if (lay->data_len < 2 * h || lay->data_len % 2)
		return "data area too small or odd for two slots";
	if ((lay->data_len / 2 - h) > UINT32_MAX)
		return "slot larger than 2^32";
	return NULL;
}

/* Memory for a meta of BLOCK octets: MEMO's pool when there is one. */
static struct bs__meta *meta_alloc(struct bs__parse_memo *memo, size_t block)
{
	struct bs__meta *m = memo ? bs__pool_alloc(memo->pool, block) : NULL;
	if (m)
		m->pooled = true;
	else
		m = calloc(1, block);
	return m;
}

int bs__entry_parse(const uint8_t *head, const uint8_t *tail, const struct bs__layout *lay,
		    struct bs__decoded *e, const char **why, uint64_t *bad_rel,
		    struct bs__parse_memo *memo)
{
	struct bs__tlv t;
	memset(e, 0, sizeof *e);
	e->supersedes = UINT64_MAX;
	e->status = BS_OK;
	*why = NULL;
	/* Walk the head again; layout proved the headers are there. */
	size_t pos;
	bs__der_header_prefix(head, lay->head_need, &t); /* Entry */
	pos = t.hdr;
	bs__der_header_prefix(head + pos, lay->head_need - pos, &t); /* NVRAM */
	size_t nvram_pos = pos, nvram_end = pos + t.hdr + t.len;
	pos += t.hdr;
	struct bs__tlv tt;
	bs__der_header(head + pos, lay->head_need - pos, &tt); /* type */
	size_t type_pos = pos;
	const uint8_t *type = head + pos + tt.hdr;
	size_t type_len = tt.len;
	pos += tt.hdr + tt.len;
	size_t sets_start = pos;
	struct bs__tlv ms, os;
	bs__der_header(head + pos, lay->head_need - pos, &ms);
	size_t mpos = pos;
	pos += ms.hdr + ms.len;
	bs__der_header(head + pos, lay->head_need - pos, &os);
	size_t opos = pos;
	pos += os.hdr + os.len;
	size_t sets_len = pos - sets_start;
	size_t name_max = lay->tail_len;
	/* The same type and attribute sets, octet for octet, as the last entry
	 * parsed without complaint (entries of one kind usually are): share
	 * its parse, and keep only the name. */
	const struct bs__meta *prev = memo ? memo->meta : NULL;
	bool same = prev && memo->type_len == type_len && prev->sets_len == sets_len &&
		    !memcmp(prev->type, type, type_len) &&
		    !memcmp(prev->sets, head + sets_start, sets_len);
	struct bs__meta *m;
	struct arena arena;
	if (same) {
		size_t block = sizeof *m + name_max + 1;
		m = bs__pool_alloc(memo->pool, block);
		if (m) {
			*m = *prev; /* pooled, like PREV: never freed alone */
			m->name = NULL;
			arena = (struct arena){(char *)(m + 1), (char *)m + block};
		} else {
			same = false; /* a separate block below */
		}
	}
	if (!same) {
		/* Exactly as many refs as parse_set can fill. */
		size_t cap = count_attrs(head + mpos + ms.hdr, ms.len) +
			     count_attrs(head + opos + os.hdr, os.len);
		/* One block: struct, refs, sets, type, name, and the attribute
		 * names (each shorter than its encoding, so sets_len + cap
		 * bounds them). */
		size_t block = sizeof(struct bs__meta) + cap * sizeof(struct bs__attr_ref) +
			       sets_len + (type_len + 1) + (name_max + 1) + (sets_len + cap);
		if (!(m = meta_alloc(memo, block)))
			return BS_ENOMEM;
		m->attrs = (struct bs__attr_ref *)(m + 1);
		m->sets = (uint8_t *)(m->attrs + cap);
		m->sets_len = sets_len;
		memcpy(m->sets, head + sets_start, sets_len);
		arena = (struct arena){(char *)m->sets + sets_len, (char *)m + block};
		m->type = arena_dup(&arena, type, type_len);
	}
	e->m = m;
	if (nvram_end != lay->data_rel + lay->data_len)
		return refuse(e, BS_ECORRUPT, "NVRAM does not end with its data", NULL, nvram_pos,
			      bad_rel, why);
	if (same) {
		e->slotted = memo->slotted;
		e->alg = memo->alg;
		e->aead = memo->aead;
		e->supersedes = memo->supersedes;
		const char *what, *w;
		uint64_t at;
		if ((w = parse_name(tail, lay, &arena, m, &what, &at)))
			return refuse(e, BS_ECORRUPT, w, what, at, bad_rel, why);
		if ((w = check_slots(e, lay)))
			return refuse(e, BS_ECORRUPT, w, NULL, lay->data_rel, bad_rel, why);
		return BS_OK;
	}
	if (!bs__ident_valid(type, type_len, BS_MAX_TYPE_LEN, true))
		return refuse(e, BS_ECORRUPT, "type is empty, too long or not printable ASCII",
			      NULL, type_pos, bad_rel, why);
	size_t bad = 0;
	/* Attribute refs point into m->sets. */
	const char *w = parse_set(m->sets + (mpos - sets_start) + ms.hdr, ms.len, true, m->attrs,
				  &m->nmand, BS_MAX_ATTRS, &bad, &arena);
	if (w)
		return refuse(e, BS_ECORRUPT, "mandatory attributes: %s", w, mpos + ms.hdr + bad,
			      bad_rel, why);
	w = parse_set(m->sets + (opos - sets_start) + os.hdr, os.len, false, m->attrs + m->nmand,
		      &m->nopt, BS_MAX_ATTRS, &bad, &arena);
	if (w)
		return refuse(e, BS_ECORRUPT, "optional attributes: %s", w, opos + os.hdr + bad,
			      bad_rel, why);
	/* Names are unique across both sets. */
	size_t na = m->nmand + m->nopt;
	for (size_t i = 0; i < na; i++)
		for (size_t j = i + 1; j < na; j++)
			if (!strcmp(m->attrs[i].cname, m->attrs[j].cname))
				return refuse(e, BS_ECORRUPT, "attribute '%s' appears twice",
					      m->attrs[i].cname, sets_start, bad_rel, why);
	const char *what;
	uint64_t at;
	if ((w = parse_name(tail, lay, &arena, m, &what, &at)))
		return refuse(e, BS_ECORRUPT, w, what, at, bad_rel, why);
	/* The library's own attributes.  An unknown mandatory one refuses the
	 * entry, but only after the loop: bs.slots and bs.supersedes must be
	 * understood even then (a crash during a rewrite of such an entry). */
	const char *unknown = NULL;
	for (size_t i = 0; i < na; i++) {
		struct bs__attr_ref *a = &m->attrs[i];
		struct bs__tlv v;
		if (!strcmp(a->cname, BS_ATTR_SLOTS)) {
			if (!a->mandatory)
				return refuse(e, BS_ECORRUPT, "bs.slots must be mandatory", NULL,
					      sets_start, bad_rel, why);
			if (bs__der_header(a->value, a->value_len, &v) || v.tag != DER_IA5STRING ||
			    v.hdr + v.len != a->value_len)
				return refuse(e, BS_ECORRUPT, "bs.slots value is not one IA5String",
					      NULL, sets_start, bad_rel, why);
			const char *alg = (const char *)a->value + v.hdr;
			if (v.len == 6 && !memcmp(alg, "crc32c", 6))
				e->alg = BS_CHECK_CRC32C;
			else if (v.len == 6 && !memcmp(alg, "sha256", 6))
				e->alg = BS_CHECK_SHA256;
			else
				return refuse(e, BS_EUNSUPPORTED,
					      "unknown slot check algorithm in mandatory attribute '%s'",
					      a->cname, sets_start, bad_rel, why);
			e->slotted = true;
		} else if (!strcmp(a->cname, BS_ATTR_SUPERSEDES) && !a->mandatory) {
			int64_t off;
			if (bs__der_header(a->value, a->value_len, &v) || v.tag != DER_INTEGER ||
			    v.hdr + v.len != a->value_len ||
			    !bs__der_int_value(a->value + v.hdr, v.len, &off) || off < 0)
				return refuse(e, BS_ECORRUPT, "bs.supersedes is not one INTEGER >= 0",
					      NULL, sets_start, bad_rel, why);
			e->supersedes = (uint64_t)off;
		} else if (!strcmp(a->cname, BS_ATTR_AEAD)) {
			/* Value SEQUENCE { IA5String algorithm, OCTET STRING entry
			 * identity (16) }: the slots hold ciphertext (crypt.c). */
			if (!a->mandatory)
				return refuse(e, BS_ECORRUPT, "bs.aead must be mandatory", NULL,
					      sets_start, bad_rel, why);
			struct bs__tlv sq, v2;
			const uint8_t *c = a->value;
			if (bs__der_header(c, a->value_len, &sq) || sq.tag != DER_SEQUENCE ||
			    sq.hdr + sq.len != a->value_len ||
			    bs__der_header(c + sq.hdr, sq.len, &v) || v.tag != DER_IA5STRING ||
			    v.hdr + v.len >= sq.len ||
			    bs__der_header(c + sq.hdr + v.hdr + v.len, sq.len - v.hdr - v.len, &v2) ||
			    v2.tag != DER_OCTET_STRING || v2.len != BS_AEAD_ENTRY_ID_LEN ||
			    v.hdr + v.len + v2.hdr + v2.len != sq.len)
				return refuse(e, BS_ECORRUPT,
					      "bs.aead value is not SEQUENCE { IA5String, OCTET STRING (16) }",
					      NULL, sets_start, bad_rel, why);
			const char *alg = (const char *)c + sq.hdr + v.hdr;
			if (v.len == 11 && !memcmp(alg, "aes-256-gcm", 11))
				e->aead = BS_AEAD_AES256GCM;
			else if (v.len == 17 && !memcmp(alg, "chacha20-poly1305", 17))
				e->aead = BS_AEAD_CHACHA20POLY1305;
			else
				return refuse(e, BS_EUNSUPPORTED,
					      "unknown cipher in mandatory attribute '%s'", a->cname,
					      sets_start, bad_rel, why);
		} else if (a->mandatory && !unknown) {
			/* This reader knows no other mandatory attribute. */
			unknown = a->cname;
		}
	}
	if (e->aead && !e->slotted)
		return refuse(e, BS_ECORRUPT, "bs.aead on an entry without slots", NULL,
			      sets_start, bad_rel, why);
	if ((w = check_slots(e, lay)))
		return refuse(e, BS_ECORRUPT, w, NULL, lay->data_rel, bad_rel, why);
	if (unknown) {
		m->unknown_mandatory = true;
		return refuse(e, BS_EUNSUPPORTED, "unknown mandatory attribute '%s'", unknown,
			      sets_start, bad_rel, why);
	}
	if (memo && m->pooled) {
		memo->meta = m;
		memo->type_len = type_len;
		memo->slotted = e->slotted;
		memo->alg = e->alg;
		memo->aead = e->aead;
		memo->supersedes = e->supersedes;
	}
	return BS_OK;
}

