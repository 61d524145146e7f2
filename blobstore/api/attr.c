/* attr.c - the public calls on attributes: iteration, lookup, typed views
 * and changes (each a crash-safe rewrite of the entry). */
#include <stdlib.h>
#include <string.h>

#include "api.h"

size_t bs_attr_count(const bs_entry *e, int mandatory)
{
	if (!e->m)
		return 0;
	return mandatory ? e->m->nmand : e->m->nopt;
}

int bs_attr_at(const bs_entry *e, int mandatory, size_t i, const char **name,
	       const uint8_t **value, size_t *value_len)
{
	if (i >= bs_attr_count(e, mandatory))
		return BS_ENOENT;
	const struct bs__attr_ref *a = &e->m->attrs[(mandatory ? 0 : e->m->nmand) + i];
	*name = a->cname;
	*value = a->value;
	*value_len = a->value_len;
	return BS_OK;
}

int bs_attr_get(const bs_entry *e, const char *name, unsigned *flags, const uint8_t **value,
		size_t *value_len)
{
	const struct bs__attr_ref *a = bs__meta_attr(e->m, name);
	if (!a)
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ENOENT, "no attribute '%s'", name);
	if (flags)
		*flags = a->mandatory ? BS_ATTR_MANDATORY : 0;
	*value = a->value;
	*value_len = a->value_len;
	return BS_OK;
}

/* The single value element of attribute NAME, which must have TAG. */
static int attr_single(const bs_entry *e, const char *name, uint8_t tag, uint8_t tag2,
		       const uint8_t **c, size_t *len)
{
	const uint8_t *v;
	size_t vl;
	int rc = bs_attr_get(e, name, NULL, &v, &vl);
	if (rc)
		return rc;
	struct bs__tlv t;
	if (!vl || bs__der_header(v, vl, &t) || t.hdr + t.len != vl ||
	    (t.tag != tag && t.tag != tag2))
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ETYPE,
			       "attribute '%s' does not hold the asked type", name);
	*c = v + t.hdr;
	*len = t.len;
	return BS_OK;
}

int bs_attr_get_int(const bs_entry *e, const char *name, int64_t *out)
{
	const uint8_t *c;
	size_t l;
	int rc = attr_single(e, name, DER_INTEGER, DER_INTEGER, &c, &l);
	if (rc)
		return rc;
	if (!bs__der_int_value(c, l, out))
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ETYPE,
			       "attribute '%s' does not fit a 64-bit integer", name);
	return BS_OK;
}

int bs_attr_get_bool(const bs_entry *e, const char *name, int *out)
{
	const uint8_t *c;
	size_t l;
	int rc = attr_single(e, name, DER_BOOLEAN, DER_BOOLEAN, &c, &l);
	if (rc)
		return rc;
	*out = l == 1 && c[0] != 0;
	return BS_OK;
}

int bs_attr_get_str(const bs_entry *e, const char *name, char **out)
{
	const uint8_t *c;
	size_t l;
	*out = NULL;
	int rc = attr_single(e, name, DER_UTF8STRING, DER_IA5STRING, &c, &l);
	if (rc)
		return rc;
	if (memchr(c, 0, l))
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ETYPE, "attribute '%s' holds NUL", name);
	*out = malloc(l + 1);
	if (!*out)
		return BS_ENOMEM;
	memcpy(*out, c, l);
	(*out)[l] = 0;
	return BS_OK;
}

int bs_attr_get_bytes(const bs_entry *e, const char *name, const uint8_t **out, size_t *len)
{
	return attr_single(e, name, DER_OCTET_STRING, DER_OCTET_STRING, out, len);
}

static int check_name(bs_image *img, bs_entry *e, const char *name)
{
	if (!name || !strncmp(name, BS_RESERVED_PREFIX, 3))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
			       "attribute names starting with 'bs.' are reserved");
	return BS_OK;
}

int bs_attr_set(bs_image *img, bs_entry *e, const char *name, unsigned flags,
		const uint8_t *value, size_t len)
{
	int rc = bs__writable(img, e);
	if (!rc)
		rc = check_name(img, e, name);
	if (rc)
		return rc;
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry is the library's");
	struct bs__rewrite rw = {.attr = name, .value = value, .value_len = len,
				 .attr_flags = flags};
	return bs__dir_rewrite(img, e, &rw);
}

int bs_attr_remove(bs_image *img, bs_entry *e, const char *name)
{
	int rc = bs__writable(img, e);
	if (!rc)
		rc = check_name(img, e, name);
	if (rc)
		return rc;
	const uint8_t *v;
	size_t vl;
	if ((rc = bs_attr_get(e, name, NULL, &v, &vl)))
		return rc;
	struct bs__rewrite rw = {.attr = name, .remove = true};
	return bs__dir_rewrite(img, e, &rw);
}
