/* encode.c - DER encoding of entries and attributes, and the attribute
 * list every writer (create, rewrite, compaction, the AEAD's associated
 * data) builds its sets with. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int bs__attr_encode(const char *name, const uint8_t *value, size_t value_len, uint8_t **out,
		    size_t *out_len)
{
	size_t nl = strlen(name);
	if (!bs__ident_valid((const uint8_t *)name, nl, BS_MAX_ATTR_NAME_LEN, false))
		return BS_EINVAL;
	if (value_len) {
		size_t cnt = 0;
		if (bs__der_check_elements(value, value_len, &cnt) || cnt != 1)
			return BS_EINVAL;
	}
	size_t inner = bs__der_header_len(nl) + nl + value_len;
	size_t total = value_len ? bs__der_header_len(inner) + inner : bs__der_header_len(nl) + nl;
	if (total > BS_MAX_ATTR_SIZE)
		return BS_ELIMIT;
	uint8_t *b = malloc(total);
	if (!b)
		return BS_ENOMEM;
	size_t p = 0;
	if (value_len)
		p += bs__der_put_header(b, DER_SEQUENCE, inner);
	p += bs__der_put_header(b + p, DER_IA5STRING, nl);
	memcpy(b + p, name, nl);
	p += nl;
	if (value_len)
		memcpy(b + p, value, value_len);
	*out = b;
	*out_len = total;
	return BS_OK;
}

bool bs__attr_named(const uint8_t *tlv, size_t len, const char *name)
{
	struct bs__tlv t;
	if (bs__der_header(tlv, len, &t))
		return false;
	const uint8_t *c = tlv + t.hdr;
	if (t.tag == DER_SEQUENCE) {
		struct bs__tlv n;
		if (bs__der_header(c, t.len, &n) || n.tag != DER_IA5STRING)
			return false;
		c += n.hdr;
		t.len = n.len;
	} else if (t.tag != DER_IA5STRING) {
		return false;
	}
	return t.len == strlen(name) && !memcmp(c, name, t.len);
}

/* ---- the attribute list ----------------------------------------------------- */

int bs__attrs_init(struct bs__attrs *l, size_t cap)
{
	memset(l, 0, sizeof *l);
	l->cap = cap;
	l->mand = calloc(cap + 1, sizeof *l->mand);
	l->opt = calloc(cap + 1, sizeof *l->opt);
	l->owned = calloc(2 * cap + 1, sizeof *l->owned);
	if (!l->mand || !l->opt || !l->owned) {
		bs__attrs_free(l);
		return BS_ENOMEM;
	}
	return BS_OK;
}

void bs__attrs_free(struct bs__attrs *l)
{
	for (size_t i = 0; i < l->nowned; i++)
		free(l->owned[i]);
	free(l->owned);
	free(l->mand);
	free(l->opt);
	memset(l, 0, sizeof *l);
}

int bs__attrs_add_tlv(struct bs__attrs *l, const uint8_t *tlv, size_t len, bool mandatory)
{
	size_t *n = mandatory ? &l->nmand : &l->nopt;
	if (*n >= l->cap)
		return BS_ELIMIT;
	struct bs__enc_attr *a = mandatory ? &l->mand[*n] : &l->opt[*n];
	a->tlv = tlv;
	a->len = len;
	(*n)++;
	return BS_OK;
}

int bs__attrs_add(struct bs__attrs *l, const char *name, const uint8_t *value, size_t value_len,
		  bool mandatory)
{
	if ((mandatory ? l->nmand : l->nopt) >= l->cap)
		return BS_ELIMIT;
	uint8_t *tlv;
	size_t len;
	int rc = bs__attr_encode(name, value, value_len, &tlv, &len);
	if (rc)
		return rc;
	l->owned[l->nowned++] = tlv;
	return bs__attrs_add_tlv(l, tlv, len, mandatory);
}

int bs__attrs_keep(struct bs__attrs *l, const struct bs__meta *m,
		   bool (*skip)(const struct bs__attr_ref *a, void *ctx), void *ctx)
{
	for (size_t i = 0; i < m->nmand + m->nopt; i++) {
		const struct bs__attr_ref *a = &m->attrs[i];
		if (skip && skip(a, ctx))
			continue;
		int rc = bs__attrs_add_tlv(l, a->tlv, a->tlv_len, a->mandatory);
		if (rc)
			return rc;
	}
	return BS_OK;
}

static int enc_cmp(const void *a, const void *b)
{
	const struct bs__enc_attr *x = a, *y = b;
	return bs__der_set_cmp(x->tlv, x->len, y->tlv, y->len);
}

int bs__attr_sort(struct bs__enc_attr *a, size_t n)
{
	qsort(a, n, sizeof *a, enc_cmp);
	for (size_t i = 1; i < n; i++)
		if (enc_cmp(&a[i - 1], &a[i]) == 0)
			return BS_EINVAL;
	return BS_OK;
}

int bs__attrs_sort(struct bs__attrs *l)
{
	int rc = bs__attr_sort(l->mand, l->nmand);
	return rc ? rc : bs__attr_sort(l->opt, l->nopt);
}

int bs__entry_encode(const char *type, const char *name, const struct bs__enc_attr *mand,
		     size_t nmand, const struct bs__enc_attr *opt, size_t nopt, uint64_t data_len,
		     uint8_t **out, size_t *out_len, uint64_t *data_rel)
{
	size_t tl = strlen(type);
	size_t ml = 0, ol = 0;
	for (size_t i = 0; i < nmand; i++)
		ml += mand[i].len;
	for (size_t i = 0; i < nopt; i++)
		ol += opt[i].len;
	if (data_len > BS_MAX_ENTRY_SIZE || ml > BS_MAX_ENTRY_SIZE || ol > BS_MAX_ENTRY_SIZE)
		return BS_ELIMIT;
	size_t dl = (size_t)data_len;
	size_t nvram_c = bs__der_header_len(tl) + tl + bs__der_header_len(ml) + ml + bs__der_header_len(ol) +
			 ol + bs__der_header_len(dl) + dl;
	size_t nml = name ? strlen(name) : 0;
	size_t entry_c = bs__der_header_len(nvram_c) + nvram_c + (name ? bs__der_header_len(nml) + nml : 0);
	size_t total = bs__der_header_len(entry_c) + entry_c;
	if (total > BS_MAX_ENTRY_SIZE)
		return BS_ELIMIT;
	uint8_t *b = calloc(1, total);
	if (!b)
		return BS_ENOMEM;
	size_t p = bs__der_put_header(b, DER_SEQUENCE, entry_c);
	p += bs__der_put_header(b + p, DER_SEQUENCE, nvram_c);
	p += bs__der_put_header(b + p, DER_IA5STRING, tl);
	memcpy(b + p, type, tl);
	p += tl;
	p += bs__der_put_header(b + p, DER_SET, ml);
	for (size_t i = 0; i < nmand; i++) {
		memcpy(b + p, mand[i].tlv, mand[i].len);
		p += mand[i].len;
	}
	p += bs__der_put_header(b + p, DER_SET, ol);
	for (size_t i = 0; i < nopt; i++) {
		memcpy(b + p, opt[i].tlv, opt[i].len);
		p += opt[i].len;
	}
	p += bs__der_put_header(b + p, DER_OCTET_STRING, dl);
	*data_rel = p;
	p += dl;
	if (name) {
		p += bs__der_put_header(b + p, DER_UTF8STRING, nml);
		memcpy(b + p, name, nml);
		p += nml;
	}
	*out = b;
	*out_len = total;
	return BS_OK;
}
