/* record.c - structured device state: a DER record of named, typed fields.
 *
 *   Record ::= SEQUENCE { mandatory SET OF Attribute, optional SET OF Attribute }
 *
 * Fields follow the attribute rules: an unknown optional field is kept byte
 * for byte by a reader that writes the record back; an unknown mandatory one
 * refuses the record.  Decoding reuses the store's strict attribute-set
 * parser and DER primitives (blobstore/codec/entry.c, der/der.c). */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "nvram_internal.h"

struct field {
	char *name;
	uint8_t *tlv;       /* the whole Attribute encoding */
	size_t tlv_len;
	size_t voff, vlen;  /* the value elements inside TLV (vlen 0: a flag) */
	bool mandatory;
	bool known;
};

struct nvram_rec {
	struct field *f;
	size_t n, cap;
};

int nvram_rec_new(nvram_rec **out)
{
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output pointer");
	*out = calloc(1, sizeof **out);
	return *out ? BS_OK : bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
}

static void field_free(struct field *f)
{
	free(f->name);
	free(f->tlv);
}

void nvram_rec_free(nvram_rec *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->n; i++)
		field_free(&rec->f[i]);
	free(rec->f);
	free(rec);
}

static struct field *find(const nvram_rec *rec, const char *name)
{
	for (size_t i = 0; rec && name && i < rec->n; i++)
		if (!strcmp(rec->f[i].name, name))
			return &rec->f[i];
	return NULL;
}

int nvram_rec_has(const nvram_rec *rec, const char *name)
{
	return find(rec, name) != NULL;
}

/* Appends a field built from a whole Attribute encoding (copied). */
static int push(nvram_rec *rec, const char *name, const uint8_t *tlv, size_t tlv_len,
		size_t voff, size_t vlen, bool mandatory, bool known)
{
	if (rec->n >= 2 * BS_MAX_ATTRS)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, "more fields than the limit");
	if (rec->n == rec->cap) {
		size_t nc = rec->cap ? rec->cap * 2 : 8;
		struct field *f = realloc(rec->f, nc * sizeof *f);
		if (!f)
			return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		rec->f = f;
		rec->cap = nc;
	}
	struct field *f = &rec->f[rec->n];
	f->name = strdup(name);
	f->tlv = malloc(tlv_len);
	if (!f->name || !f->tlv) {
		free(f->name);
		free(f->tlv);
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
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

int nvram_rec_decode(const void *der, size_t len, const char *const *known, size_t n,
		     nvram_rec **out)
{
	const uint8_t *p = der;
	struct bs__tlv t, ms, os;
	const char *why = NULL;
	size_t bad = 0;
	if (!out || (len && !der) || (n && !known))
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	*out = NULL;
	nvram_rec *rec;
	int rc = nvram_rec_new(&rec);
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
		rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
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
			rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_EUNSUPPORTED,
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
	rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, "record: at octet %zu: %s", bad, why);
out:
	for (size_t i = 0; refs && i < cap; i++)
		free(refs[i].cname);
	free(refs);
	if (rc) {
		nvram_rec_free(rec);
		return rc;
	}
	*out = rec;
	return BS_OK;
}

/* Adds or replaces field NAME with the value DER VAL/VLEN (VLEN 0: flag). */
static int set_field(nvram_rec *rec, const char *name, unsigned flags, const uint8_t *val,
		     size_t vlen)
{
	uint8_t *tlv;
	size_t tlv_len;
	int rc = bs__attr_encode(name, val, vlen, &tlv, &tlv_len);
	if (rc)
		return bs__err(NULL, NULL, BS_NO_OFFSET, rc, "field '%s': bad name or value", name);
	struct field *old = find(rec, name);
	if (old) {
		field_free(old);
		*old = rec->f[--rec->n];
	}
	rc = push(rec, name, tlv, tlv_len, tlv_len - vlen, vlen,
		  (flags & NVRAM_ATTR_MANDATORY) != 0, true);
	free(tlv);
	return rc;
}

static int set_value(nvram_rec *rec, const char *name, unsigned flags, const struct nv_value *v)
{
	if (!rec || !nv_valid_name(name))
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "field name must be 1-%u printable ASCII octets without spaces",
			       BS_MAX_ATTR_NAME_LEN);
	uint8_t *der;
	size_t dl;
	int rc = nv_value_encode(v, &der, &dl);
	if (rc)
		return bs__err(NULL, NULL, BS_NO_OFFSET, rc, "field '%s': value not encodable",
			       name);
	rc = set_field(rec, name, flags, der, dl);
	free(der);
	return rc;
}

int nvram_rec_set_int(nvram_rec *rec, const char *name, unsigned flags, int64_t v)
{
	struct nv_value val = {.kind = NV_INT, .rw = flags & NVRAM_ATTR_RW, .i = v};
	return set_value(rec, name, flags, &val);
}

int nvram_rec_set_bool(nvram_rec *rec, const char *name, unsigned flags, int v)
{
	struct nv_value val = {.kind = NV_BOOL, .rw = flags & NVRAM_ATTR_RW, .i = v != 0};
	return set_value(rec, name, flags, &val);
}

int nvram_rec_set_str(nvram_rec *rec, const char *name, unsigned flags, const char *s)
{
	if (!s)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "field '%s': no string", name);
	struct nv_value val = {.kind = NV_STR, .rw = flags & NVRAM_ATTR_RW, .p = s};
	return set_value(rec, name, flags, &val);
}

int nvram_rec_set_bytes(nvram_rec *rec, const char *name, unsigned flags, const void *p,
			size_t len)
{
	if (len && !p)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "field '%s': no bytes", name);
	struct nv_value val = {.kind = NV_BYTES, .rw = flags & NVRAM_ATTR_RW, .p = p, .len = len};
	return set_value(rec, name, flags, &val);
}

int nvram_rec_set_flag(nvram_rec *rec, const char *name, unsigned flags)
{
	if (!rec || !nv_valid_name(name))
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid field name");
	return set_field(rec, name, flags, NULL, 0);
}

int nvram_rec_remove(nvram_rec *rec, const char *name)
{
	struct field *f = find(rec, name);
	if (!f)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOENT, "no field '%s'", name ? name : "");
	field_free(f);
	*f = rec->f[--rec->n];
	return BS_OK;
}

/* The value of a present field, or NULL when absent. */
static const struct field *value_of(const nvram_rec *rec, const char *name, const uint8_t **v,
				    size_t *vl)
{
	const struct field *f = find(rec, name);
	if (f) {
		*v = f->tlv + f->voff;
		*vl = f->vlen;
	}
	return f;
}

static int type_err(const char *name, const char *what)
{
	return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ETYPE, "field '%s' does not hold %s", name,
		       what);
}

int nvram_rec_get_int(const nvram_rec *rec, const char *name, int64_t def, int64_t *out)
{
	const uint8_t *v;
	size_t vl;
	if (!value_of(rec, name, &v, &vl)) {
		*out = def;
		return BS_OK;
	}
	int64_t x;
	if (nv_value_int(v, vl, &x, NULL))
		return type_err(name, "an integer");
	*out = x;
	return BS_OK;
}

int nvram_rec_get_bool(const nvram_rec *rec, const char *name, int def, int *out)
{
	const uint8_t *v;
	size_t vl;
	if (!value_of(rec, name, &v, &vl)) {
		*out = def;
		return BS_OK;
	}
	int x;
	if (nv_value_bool(v, vl, &x, NULL))
		return type_err(name, "a boolean");
	*out = x;
	return BS_OK;
}

int nvram_rec_get_str(const nvram_rec *rec, const char *name, const char *def, char **out)
{
	const uint8_t *v;
	size_t vl;
	*out = NULL;
	if (!value_of(rec, name, &v, &vl)) {
		if (!def)
			return BS_OK;
		*out = strdup(def);
		return *out ? BS_OK : bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	int rc = nv_value_str(v, vl, out, NULL);
	if (rc == BS_ETYPE)
		return type_err(name, "a string");
	return rc ? bs__err(NULL, NULL, BS_NO_OFFSET, rc, "out of memory") : BS_OK;
}

int nvram_rec_get_bytes(const nvram_rec *rec, const char *name, const uint8_t *def,
			size_t deflen, const uint8_t **out, size_t *len)
{
	const uint8_t *v;
	size_t vl;
	if (!value_of(rec, name, &v, &vl)) {
		*out = def;
		*len = deflen;
		return BS_OK;
	}
	const uint8_t *c;
	size_t cl;
	if (nv_value_bytes(v, vl, &c, &cl, NULL))
		return type_err(name, "an octet string");
	*out = c;
	*len = cl;
	return BS_OK;
}

int nvram_rec_keep_unknown(nvram_rec *dst, const nvram_rec *src)
{
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
int nv_rec_encode_merged(const nvram_rec *rec, const nvram_rec *extra, uint8_t **out,
			 size_t *len)
{
	size_t total = rec->n + (extra ? extra->n : 0);
	struct bs__enc_attr *mand = calloc(total + 1, sizeof *mand);
	struct bs__enc_attr *opt = calloc(total + 1, sizeof *opt);
	size_t nm = 0, no = 0, ml = 0, ol = 0;
	int rc = BS_OK;
	*out = NULL;
	if (!mand || !opt) {
		rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < total; i++) {
		const struct field *f = i < rec->n ? &rec->f[i] : &extra->f[i - rec->n];
		if (i >= rec->n && (f->known || f->mandatory || find(rec, f->name)))
			continue;
		struct bs__enc_attr *d = f->mandatory ? &mand[nm++] : &opt[no++];
		d->tlv = f->tlv;
		d->len = f->tlv_len;
		*(f->mandatory ? &ml : &ol) += f->tlv_len;
	}
	if (nm > BS_MAX_ATTRS || no > BS_MAX_ATTRS || ml > BS_MAX_ENTRY_SIZE ||
	    ol > BS_MAX_ENTRY_SIZE) {
		rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, "record larger than the limits");
		goto done;
	}
	if (bs__attr_sort(mand, nm) || bs__attr_sort(opt, no)) {
		rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "duplicate field");
		goto done;
	}
	size_t inner = bs__der_header_len(ml) + ml + bs__der_header_len(ol) + ol;
	size_t n = bs__der_header_len(inner) + inner;
	uint8_t *b = malloc(n);
	if (!b) {
		rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		goto done;
	}
	size_t p = bs__der_put_header(b, DER_SEQUENCE, inner);
	p += bs__der_put_header(b + p, DER_SET, ml);
	for (size_t i = 0; i < nm; i++, p += mand[i - 1].len)
		memcpy(b + p, mand[i].tlv, mand[i].len);
	p += bs__der_put_header(b + p, DER_SET, ol);
	for (size_t i = 0; i < no; i++, p += opt[i - 1].len)
		memcpy(b + p, opt[i].tlv, opt[i].len);
	*out = b;
	*len = p;
done:
	free(mand);
	free(opt);
	return rc;
}

int nvram_rec_encode(const nvram_rec *rec, uint8_t **out, size_t *len)
{
	if (!rec || !out || !len)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	return nv_rec_encode_merged(rec, NULL, out, len);
}

size_t nvram_rec_count(const nvram_rec *rec)
{
	return rec ? rec->n : 0;
}

int nvram_rec_field_at(const nvram_rec *rec, size_t i, const char **name, const uint8_t **value,
		       size_t *value_len, unsigned *flags, int *known)
{
	if (!rec || i >= rec->n)
		return BS_ENOENT;
	const struct field *f = &rec->f[i];
	*name = f->name;
	*value = f->tlv + f->voff;
	*value_len = f->vlen;
	if (flags)
		*flags = f->mandatory ? NVRAM_ATTR_MANDATORY : 0;
	if (known)
		*known = f->known;
	return BS_OK;
}
