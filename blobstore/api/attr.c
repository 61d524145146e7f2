/* attr.c - the public calls on attributes: iteration, lookup, typed views
 * (the value decoders of codec/value.c) and changes (each a crash-safe
 * rewrite of the entry, or nothing when the value is already there). */
#include <stdlib.h>
#include <string.h>

#include "api.h"

int bs_attr_name_valid(const char *name)
{
	return bs__name_valid(name);
}

size_t bs_attr_count(const bs_entry *e)
{
	return e && e->m ? e->m->nmand + e->m->nopt : 0;
}

static void put_ref(const struct bs__attr_ref *a, const char **name, const uint8_t **value,
		    size_t *value_len, unsigned *flags)
{
	if (name)
		*name = a->cname;
	*value = a->value;
	*value_len = a->value_len;
	if (flags)
		*flags = a->mandatory ? BS_ATTR_MANDATORY : 0;
}

int bs_attr_at(const bs_entry *e, size_t i, const char **name, const uint8_t **value,
	       size_t *value_len, unsigned *flags)
{
	if (!e || !name || !value || !value_len)
		return bs__err(NULL, e, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (i >= bs_attr_count(e))
		return bs__err(NULL, e, BS_NO_OFFSET, BS_ENOENT, "no attribute %zu", i);
	put_ref(&e->m->attrs[i], name, value, value_len, flags);
	return BS_OK;
}

int bs_attr_get(const bs_entry *e, const char *name, const uint8_t **value, size_t *value_len,
		unsigned *flags)
{
	if (!e || !name || !value || !value_len)
		return bs__err(NULL, e, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	const struct bs__attr_ref *a = bs__meta_attr(e->m, name);
	if (!a)
		return bs__err(e->img, e, BS_NO_OFFSET, BS_ENOENT, "no attribute '%s'", name);
	put_ref(a, NULL, value, value_len, flags);
	return BS_OK;
}

/* The value of attribute NAME for a typed getter. */
static int typed(const bs_entry *e, const char *name, const uint8_t **v, size_t *vl)
{
	return bs_attr_get(e, name, v, vl, NULL);
}

/* BS_ETYPE messages name the entry and the attribute. */
static int typed_err(const bs_entry *e, const char *name, int rc)
{
	return rc == BS_ETYPE ? bs__err(e->img, e, BS_NO_OFFSET, rc,
					"attribute '%s' does not hold the asked type", name)
			      : rc;
}

int bs_attr_get_int(const bs_entry *e, const char *name, int64_t *out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(e, name, &v, &vl);
	return rc ? rc : typed_err(e, name, bs_value_decode_int(v, vl, out, NULL));
}

int bs_attr_get_uint(const bs_entry *e, const char *name, uint64_t *out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(e, name, &v, &vl);
	return rc ? rc : typed_err(e, name, bs_value_decode_uint(v, vl, out, NULL));
}

int bs_attr_get_bool(const bs_entry *e, const char *name, int *out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(e, name, &v, &vl);
	return rc ? rc : typed_err(e, name, bs_value_decode_bool(v, vl, out, NULL));
}

int bs_attr_get_str(const bs_entry *e, const char *name, char **out)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(e, name, &v, &vl);
	return rc ? rc : typed_err(e, name, bs_value_decode_str(v, vl, out, NULL));
}

int bs_attr_get_bytes(const bs_entry *e, const char *name, const uint8_t **out, size_t *len)
{
	const uint8_t *v;
	size_t vl;
	int rc = typed(e, name, &v, &vl);
	return rc ? rc : typed_err(e, name, bs_value_decode_bytes(v, vl, out, len, NULL));
}

bool bs__attr_unchanged(const bs_entry *e, const char *name, unsigned flags,
			const uint8_t *value, size_t len)
{
	const struct bs__attr_ref *a = bs__meta_attr(e->m, name);
	return a && a->mandatory == ((flags & BS_ATTR_MANDATORY) != 0) && a->value_len == len &&
	       (!len || !memcmp(a->value, value, len));
}

static int check_change(bs_entry *e, const char *name)
{
	if (!e)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no entry");
	int rc = bs__writable(e->img, e);
	if (rc)
		return rc;
	if (!name || !strncmp(name, BS_RESERVED_PREFIX, 3))
		return bs__err(e->img, e, BS_NO_OFFSET, BS_EINVAL,
			       "attribute names starting with 'bs.' are reserved");
	if (e == e->img->image_entry)
		return bs__err(e->img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry is the library's");
	return BS_OK;
}

int bs_attr_set(bs_entry *e, const char *name, unsigned flags, const uint8_t *value,
		size_t len)
{
	int rc = check_change(e, name);
	if (rc)
		return rc;
	if ((len && !value) || (flags & ~(unsigned)(BS_ATTR_MANDATORY | BS_ATTR_RW)))
		return bs__err(e->img, e, BS_NO_OFFSET, BS_EINVAL,
			       "attribute '%s': no value, or unknown flags", name);
	if (bs__attr_unchanged(e, name, flags, value, len))
		return BS_OK;
	struct bs__rewrite rw = {.attr = name, .value = value, .value_len = len,
				 .attr_flags = flags & BS_ATTR_MANDATORY};
	return bs__dir_rewrite(e->img, e, &rw);
}

int bs_attr_remove(bs_entry *e, const char *name)
{
	int rc = check_change(e, name);
	if (rc)
		return rc;
	if (!bs__meta_attr(e->m, name))
		return bs__err(e->img, e, BS_NO_OFFSET, BS_ENOENT, "no attribute '%s'", name);
	struct bs__rewrite rw = {.attr = name, .remove = true};
	return bs__dir_rewrite(e->img, e, &rw);
}
