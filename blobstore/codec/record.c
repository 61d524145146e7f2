/* record.c - structured values: a DER record of named, typed fields
 * (blobstore/record.h).
 *
 *   Record ::= SEQUENCE { mandatory SET OF Attribute, optional SET OF Attribute }
 *
 * Fields follow the attribute rules: an unknown optional field is kept byte
 * for byte by a reader that writes the record back; an unknown mandatory one
 * refuses the record.  Decoding reuses the entry's strict attribute-set
 * parser (entry.c), encoding the attribute encoder and sort (encode.c). */
#include <stdlib.h>
#include <string.h>

#include <blobstore/record.h>

#include "codec.h"

struct field {
	char *name;
	uint8_t *tlv;       /* the whole Attribute encoding */
	size_t tlv_len;
	size_t voff, vlen;  /* the value elements inside TLV (vlen 0: a flag) */
	bool mandatory;
	bool known;
};

struct bs_record {
	struct field *f;
	size_t n, cap;
};

int bs_record_new(bs_record **out)
{
	if (!out)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "no output pointer");
	bs_record *r = calloc(1, sizeof *r);
	if (!r)
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	*out = r;
	return BS_OK;
}

static void field_free(struct field *f)
{
	free(f->name);
	free(f->tlv);
}

void bs_record_free(bs_record *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->n; i++)
		field_free(&rec->f[i]);
	free(rec->f);
	free(rec);
}

static struct field *find(const bs_record *rec, const char *name)
{
	for (size_t i = 0; rec && name && i < rec->n; i++)
		if (!strcmp(rec->f[i].name, name))
			return &rec->f[i];
	return NULL;
}

int bs_record_has(const bs_record *rec, const char *name)
{
	return find(rec, name) != NULL;
}

/* Appends a field built from a whole Attribute encoding (copied). */
static int push(bs_record *rec, const char *name, const uint8_t *tlv, size_t tlv_len,
		size_t voff, size_t vlen, bool mandatory, bool known)
{
	if (rec->n >= 2 * BS_MAX_ATTRS)
		return bs__error(NULL, BS_NO_OFFSET, BS_ELIMIT, "more fields than the limit");
	if (rec->n == rec->cap) {
		size_t nc = rec->cap ? rec->cap * 2 : 8;
		struct field *f = realloc(rec->f, nc * sizeof *f);
		if (!f)
			return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		rec->f = f;
		rec->cap = nc;
	}
	struct field *f = &rec->f[rec->n];
	f->name = strdup(name);
	f->tlv = malloc(tlv_len);
	if (!f->name || !f->tlv) {
		free(f->name);
		free(f->tlv);
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	memcpy(f->tlv, tlv, tlv_len);
	f->tlv_len = tlv_len;
	f->voff = voff;
	f->vlen = vlen;
	f->mandatory = mandatory;
	f->known = known;
	rec->n++;
	return BS_OK;
}

static bool in_list(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] && !strcmp(list[i], name))
			return true;
	return false;
}

int bs_record_decode(const void *der, size_t len, const char *const *known, size_t n,
		     bs_record **out)
{
	const uint8_t *p = der;
	struct bs__tlv t, ms, os;
	const char *why = NULL;
	size_t bad = 0;
	if (!out || (len && !der) || (n && !known))
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	bs_record *rec;
	int rc = bs_record_new(&rec);
	if (rc)
		return rc;
	if (len == 0) {
		*out = rec;
		return BS_OK;
	}
	struct bs__attr_ref *refs = NULL;
	size_t nmand = 0, nopt = 0;
	if ((why = bs__der_header(p, len, &t)))
		goto corrupt;
	if (t.tag != DER_SEQUENCE || t.hdr + t.len != len) {
		why = t.tag != DER_SEQUENCE ? "record is not a SEQUENCE"
					    : "octets after the record";
		bad = t.tag != DER_SEQUENCE ? 0 : t.hdr + t.len;
		goto corrupt;
	}
	size_t pos = t.hdr;
	bad = pos;
	if ((why = bs__der_header(p + pos, len - pos, &ms)))
		goto corrupt;
	if (ms.tag != DER_SET) {
		why = "mandatory fields are not a SET";
		goto corrupt;
	}
	size_t mpos = pos + ms.hdr;
	pos += ms.hdr + ms.len;
	bad = pos;
	if ((why = bs__der_header(p + pos, len - pos, &os)))
		goto corrupt;
	if (os.tag != DER_SET) {
		why = "optional fields are not a SET";
		goto corrupt;
	}
	size_t opos = pos + os.hdr;
	if (pos + os.hdr + os.len != len) {
		bad = pos + os.hdr + os.len;
		why = "octets after the optional fields";
		goto corrupt;
	}
	/* Each Attribute takes at least two octets. */
	size_t cap = (ms.len + os.len) / 2 + 1;
	if (cap > 2 * BS_MAX_ATTRS + 1)
		cap = 2 * BS_MAX_ATTRS + 1;
	refs = calloc(cap, sizeof *refs);
	if (!refs) {
		rc = bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto out;
	}
	why = bs__attr_set_parse(p + mpos, ms.len, true, refs, &nmand, BS_MAX_ATTRS, &bad);
	if (why) {
		bad += mpos;
		goto corrupt;
	}
	why = bs__attr_set_parse(p + opos, os.len, false, refs + nmand, &nopt, BS_MAX_ATTRS, &bad);
	if (why) {
		bad += opos;
		goto corrupt;
	}
	size_t na = nmand + nopt;
	for (size_t i = 0; i < na; i++)
		for (size_t j = i + 1; j < na; j++)
			if (!strcmp(refs[i].cname, refs[j].cname)) {
				bad = (size_t)(refs[j].tlv - p);
				why = "a field appears twice";
				goto corrupt;
			}
	for (size_t i = 0; i < nmand; i++)
		if (!in_list(refs[i].cname, known, n)) {
			rc = bs__error(NULL, BS_NO_OFFSET, BS_EUNSUPPORTED,
				     "record refused: unknown mandatory field '%s'", refs[i].cname);
			goto out;
		}
	for (size_t i = 0; i < na; i++) {
		const struct bs__attr_ref *a = &refs[i];
		rc = push(rec, a->cname, a->tlv, a->tlv_len, (size_t)(a->value - a->tlv),
			  a->value_len, a->mandatory, in_list(a->cname, known, n));
		if (rc)
			goto out;
	}
	rc = BS_OK;
	goto out;
corrupt:
	rc = bs__error(NULL, BS_NO_OFFSET, BS_ECORRUPT, "record: at octet %zu: %s", bad, why);
out:
	for (size_t i = 0; refs && i < cap; i++)
		free(refs[i].cname);
	free(refs);
	if (rc) {
		bs_record_free(rec);
		return rc;
	}
	*out = rec;
	return BS_OK;
}

/* Adds or replaces field NAME with the value DER VAL/VLEN (VLEN 0: flag). */
static int set_field(bs_record *rec, const char *name, unsigned flags, const uint8_t *val,
		     size_t vlen)
{
	uint8_t *tlv;
	size_t tlv_len;
	int rc = bs__attr_encode(name, val, vlen, &tlv, &tlv_len);
	if (rc)
		return bs__error(NULL, BS_NO_OFFSET, rc, "field '%s': bad name or value", name);
	struct field *old = find(rec, name);
	if (old) {
		field_free(old);
		*old = rec->f[--rec->n];
	}
	rc = push(rec, name, tlv, tlv_len, tlv_len - vlen, vlen,
		  (flags & BS_ATTR_MANDATORY) != 0, true);
	free(tlv);
	return rc;
}


static int name_err(void)
{
	return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL,
			 "field name must be 1-%u printable ASCII octets without spaces",
			 BS_MAX_ATTR_NAME_LEN);
}

int bs_record_set(bs_record *rec, const char *name, unsigned flags, const uint8_t *value,
		  size_t len)
{
	if (!rec || !bs__name_valid(name) || (len && !value))
		return name_err();
	if (flags & ~(unsigned)(BS_ATTR_MANDATORY | BS_ATTR_RW))
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "field '%s': unknown flags", name);
	return set_field(rec, name, flags, value, len);
}

/* Encodes field NAME with ENCODE (into BUF, CAP octets, *LEN) and sets it. */
typedef int (*encode_fn)(const void *v, unsigned flags, uint8_t *buf, size_t cap, size_t *len);

static int set_encoded(bs_record *rec, const char *name, unsigned flags, encode_fn encode,
		       const void *v, size_t cap)
{
	if (!rec || !bs__name_valid(name))
		return name_err();
	size_t len;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	int rc = encode(v, flags & BS_ATTR_RW, buf, cap, &len);
	if (!rc)
		rc = set_field(rec, name, flags, buf, len);
	else
		rc = bs__error(NULL, BS_NO_OFFSET, rc, "field '%s': value not encodable", name);
	free(buf);
	return rc;
}

static int enc_int(const void *v, unsigned f, uint8_t *b, size_t c, size_t *l)
{
	return bs_value_encode_int(*(const int64_t *)v, f, b, c, l);
}
static int enc_uint(const void *v, unsigned f, uint8_t *b, size_t c, size_t *l)
{
	return bs_value_encode_uint(*(const uint64_t *)v, f, b, c, l);
}
static int enc_bool(const void *v, unsigned f, uint8_t *b, size_t c, size_t *l)
{
	return bs_value_encode_bool(*(const int *)v, f, b, c, l);
}
static int enc_str(const void *v, unsigned f, uint8_t *b, size_t c, size_t *l)
{
	return bs_value_encode_str(v, f, 0, b, c, l);
}

int bs_record_set_int(bs_record *rec, const char *name, unsigned flags, int64_t v)
{
	return set_encoded(rec, name, flags, enc_int, &v, BS_VALUE_MAX_INT);
}

int bs_record_set_uint(bs_record *rec, const char *name, unsigned flags, uint64_t v)
{
	return set_encoded(rec, name, flags, enc_uint, &v, BS_VALUE_MAX_INT);
}

int bs_record_set_bool(bs_record *rec, const char *name, unsigned flags, int v)
{
	return set_encoded(rec, name, flags, enc_bool, &v, BS_VALUE_MAX_INT);
}

int bs_record_set_str(bs_record *rec, const char *name, unsigned flags, const char *s)
{
	if (!s)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "field '%s': no string",
				 name ? name : "");
	return set_encoded(rec, name, flags, enc_str, s, strlen(s) + 8);
}

int bs_record_set_bytes(bs_record *rec, const char *name, unsigned flags, const void *p,
			size_t len)
{
	if (!rec || !bs__name_valid(name))
		return name_err();
	if (len && !p)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "field '%s': no bytes", name);
	size_t n;
	uint8_t *buf = malloc(len + 8);
	if (!buf)
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	int rc = bs_value_encode_bytes(p, len, flags & BS_ATTR_RW, buf, len + 8, &n);
	rc = rc ? bs__error(NULL, BS_NO_OFFSET, rc, "field '%s': value not encodable", name)
		: set_field(rec, name, flags, buf, n);
	free(buf);
	return rc;
}

int bs_record_set_flag(bs_record *rec, const char *name, unsigned flags)
{
	return bs_record_set(rec, name, flags, NULL, 0);
}

int bs_record_remove(bs_record *rec, const char *name)
{
	if (!rec || !name)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	struct field *f = find(rec, name);
	if (!f)
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOENT, "no field '%s'", name ? name : "");
	field_free(f);
	*f = rec->f[--rec->n];
	return BS_OK;
}

int bs_record_get(const bs_record *rec, const char *name, const uint8_t **value, size_t *len,
		  unsigned *flags)
{
	if (!rec || !name || !value || !len)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	const struct field *f = find(rec, name);
	if (!f)
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOENT, "no field '%s'", name);
	*value = f->tlv + f->voff;
	*len = f->vlen;
	if (flags)
		*flags = (f->mandatory ? BS_ATTR_MANDATORY : 0) | (f->known ? BS_ATTR_KNOWN : 0);
	return BS_OK;
}

/* Field NAME's value for a typed getter; BS_ETYPE messages name the field. */
static int typed(const bs_record *rec, const char *name, const uint8_t **v, size_t *vl)
{
	return bs_record_get(rec, name, v, vl, NULL);
}

static int typed_err(const char *name, int rc)
{
	return rc == BS_ETYPE ? bs__error(NULL, BS_NO_OFFSET, rc,
					  "field '%s' does not hold the asked type", name)
			      : rc;
}

int bs_record_get_int(const bs_record *rec, const char *name, int64_t *out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(rec, name, &v, &vl);
	return rc ? rc : typed_err(name, bs_value_decode_int(v, vl, out, NULL));
}

int bs_record_get_uint(const bs_record *rec, const char *name, uint64_t *out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(rec, name, &v, &vl);
	return rc ? rc : typed_err(name, bs_value_decode_uint(v, vl, out, NULL));
}

int bs_record_get_bool(const bs_record *rec, const char *name, int *out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(rec, name, &v, &vl);
	return rc ? rc : typed_err(name, bs_value_decode_bool(v, vl, out, NULL));
}

int bs_record_get_str(const bs_record *rec, const char *name, char **out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(rec, name, &v, &vl);
	return rc ? rc : typed_err(name, bs_value_decode_str(v, vl, out, NULL));
}

int bs_record_get_bytes(const bs_record *rec, const char *name, const uint8_t **out,
			size_t *len)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(rec, name, &v, &vl);
	return rc ? rc : typed_err(name, bs_value_decode_bytes(v, vl, out, len, NULL));
}

int bs_record_keep_unknown(bs_record *dst, const bs_record *src)
{
	if (!dst || !src)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	for (size_t i = 0; src && i < src->n; i++) {
		const struct field *f = &src->f[i];
		if (f->known || f->mandatory || find(dst, f->name))
			continue;
		int rc = push(dst, f->name, f->tlv, f->tlv_len, f->voff, f->vlen, false, false);
		if (rc)
			return rc;
	}
	return BS_OK;
}

/* Encodes REC plus the unknown optional fields of EXTRA (may be NULL) that
 * REC does not set. */
static int encode_merged(const bs_record *rec, const bs_record *extra, uint8_t **out,
			 size_t *len)
{
	size_t total = rec->n + (extra ? extra->n : 0), ml = 0, ol = 0;
	struct bs__attrs l;
	if (bs__attrs_init(&l, total))
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	int rc = BS_OK;
	for (size_t i = 0; i < total; i++) {
		const struct field *f = i < rec->n ? &rec->f[i] : &extra->f[i - rec->n];
		if (i >= rec->n && (f->known || f->mandatory || find(rec, f->name)))
			continue;
		bs__attrs_add_tlv(&l, f->tlv, f->tlv_len, f->mandatory); /* room for all */
		*(f->mandatory ? &ml : &ol) += f->tlv_len;
	}
	if (l.nmand > BS_MAX_ATTRS || l.nopt > BS_MAX_ATTRS || ml > BS_MAX_ENTRY_SIZE ||
	    ol > BS_MAX_ENTRY_SIZE) {
		rc = bs__error(NULL, BS_NO_OFFSET, BS_ELIMIT, "record larger than the limits");
		goto done;
	}
	if (bs__attrs_sort(&l)) {
		rc = bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "duplicate field");
		goto done;
	}
	size_t inner = bs__der_header_len(ml) + ml + bs__der_header_len(ol) + ol;
	size_t n = bs__der_header_len(inner) + inner;
	uint8_t *b = malloc(n);
	if (!b) {
		rc = bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto done;
	}
	size_t p = bs__der_put_header(b, DER_SEQUENCE, inner);
	p += bs__der_put_header(b + p, DER_SET, ml);
	for (size_t i = 0; i < l.nmand; p += l.mand[i++].len)
		memcpy(b + p, l.mand[i].tlv, l.mand[i].len);
	p += bs__der_put_header(b + p, DER_SET, ol);
	for (size_t i = 0; i < l.nopt; p += l.opt[i++].len)
		memcpy(b + p, l.opt[i].tlv, l.opt[i].len);
	*out = b;
	*len = p;
done:
	bs__attrs_free(&l);
	return rc;
}

int bs_record_encode(const bs_record *rec, uint8_t **out, size_t *len)
{
	if (!rec || !out || !len)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	return encode_merged(rec, NULL, out, len);
}

size_t bs_record_count(const bs_record *rec)
{
	return rec ? rec->n : 0;
}

int bs_record_at(const bs_record *rec, size_t i, const char **name, const uint8_t **value,
		 size_t *len, unsigned *flags)
{
	if (!rec || !name || !value || !len)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (i >= rec->n)
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOENT, "no field %zu", i);
	const struct field *f = &rec->f[i];
	*name = f->name;
	*value = f->tlv + f->voff;
	*len = f->vlen;
	if (flags)
		*flags = (f->mandatory ? BS_ATTR_MANDATORY : 0) | (f->known ? BS_ATTR_KNOWN : 0);
	return BS_OK;
}
