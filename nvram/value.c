/* value.c - typed values of attributes and record fields.
 *
 * Read-only values use their natural universal type (INTEGER, BOOLEAN,
 * UTF8String, OCTET STRING); read-write values are fixed-size OCTET STRINGs
 * (integers 8 octets big-endian, booleans 1 octet 00/FF, strings UTF-8
 * padded with NUL octets) so that a new value never changes the size. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "nvram_internal.h"

bool nv_valid_name(const char *name)
{
	if (!name)
		return false;
	size_t n = strlen(name);
	if (!n || n > BS_MAX_ATTR_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)name[i] < 0x21 || (uint8_t)name[i] > 0x7e)
			return false;
	return true;
}

static int prim(uint8_t tag, const void *p, size_t len, uint8_t **out, size_t *out_len)
{
	if (len > BS_MAX_ATTR_SIZE)
		return BS_ELIMIT;
	size_t h = bs__der_header_len(len);
	uint8_t *b = malloc(h + len);
	if (!b)
		return BS_ENOMEM;
	bs__der_put_header(b, tag, len);
	if (len)
		memcpy(b + h, p, len);
	*out = b;
	*out_len = h + len;
	return BS_OK;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

int nv_value_encode(const struct nv_value *v, uint8_t **out, size_t *out_len)
{
	uint8_t tmp[16];
	*out = NULL;
	switch (v->kind) {
	case NV_INT:
	case NV_UINT:
		if (v->rw) {
			put_be64(tmp, v->kind == NV_INT ? (uint64_t)v->i : v->u);
			return prim(DER_OCTET_STRING, tmp, 8, out, out_len);
		}
		if (v->kind == NV_INT) {
			size_t n = bs_der_int(v->i, tmp, sizeof tmp);
			return prim(DER_INTEGER, tmp + 2, n - 2, out, out_len);
		}
		/* Non-negative INTEGER: minimal, a leading 00 when the top bit is set. */
		put_be64(tmp + 1, v->u);
		tmp[0] = 0;
		size_t z = 0;
		while (z < 8 && tmp[z] == 0 && !(tmp[z + 1] & 0x80))
			z++;
		return prim(DER_INTEGER, tmp + z, 9 - z, out, out_len);
	case NV_BOOL:
		tmp[0] = v->i ? 0xff : 0x00;
		return prim(v->rw ? DER_OCTET_STRING : DER_BOOLEAN, tmp, 1, out, out_len);
	case NV_STR: {
		const char *s = v->p;
		size_t n = strlen(s);
		if (!bs__utf8_valid((const uint8_t *)s, n))
			return BS_EINVAL;
		if (!v->rw)
			return prim(DER_UTF8STRING, s, n, out, out_len);
		size_t size = v->rw_size ? v->rw_size : n;
		if (n > size)
			return BS_EINVAL;
		if (size > BS_MAX_ATTR_SIZE)
			return BS_ELIMIT;
		uint8_t *pad = calloc(1, size ? size : 1);
		if (!pad)
			return BS_ENOMEM;
		memcpy(pad, s, n);
		int rc = prim(DER_OCTET_STRING, pad, size, out, out_len);
		free(pad);
		return rc;
	}
	case NV_BYTES:
		if (v->rw && v->rw_size && v->rw_size != v->len)
			return BS_EINVAL;
		return prim(DER_OCTET_STRING, v->p, v->len, out, out_len);
	}
	return BS_EINVAL;
}

/* The single element of V/VL with its contents. */
static bool single(const uint8_t *v, size_t vl, struct bs__tlv *t)
{
	return vl && !bs__der_header(v, vl, t) && t->hdr + t->len == vl;
}

bool nv_value_octets(const uint8_t *v, size_t vl, const uint8_t **c, size_t *cl)
{
	struct bs__tlv t;
	if (!single(v, vl, &t) || t.tag != DER_OCTET_STRING)
		return false;
	*c = v + t.hdr;
	*cl = t.len;
	return true;
}

static void set_rw(bool *rw, bool v)
{
	if (rw)
		*rw = v;
}

/* A read-write integer: a fixed 8-octet OCTET STRING, big-endian. */
static uint64_t get_be64(const uint8_t *c)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u = (u << 8) | c[i];
	return u;
}

int nv_value_int(const uint8_t *v, size_t vl, int64_t *out, bool *rw)
{
	struct bs__tlv t;
	if (!single(v, vl, &t))
		return BS_ETYPE;
	const uint8_t *c = v + t.hdr;
	if (t.tag == DER_INTEGER) {
		if (!bs__der_int_value(c, t.len, out))
			return BS_ETYPE;
		set_rw(rw, false);
		return BS_OK;
	}
	if (t.tag == DER_OCTET_STRING && t.len == 8) {
		*out = (int64_t)get_be64(c);
		set_rw(rw, true);
		return BS_OK;
	}
	return BS_ETYPE;
}

int nv_value_uint(const uint8_t *v, size_t vl, uint64_t *out, bool *rw)
{
	struct bs__tlv t;
	if (!single(v, vl, &t))
		return BS_ETYPE;
	const uint8_t *c = v + t.hdr;
	if (t.tag == DER_INTEGER) {
		/* Minimal (der.c checked it), non-negative, at most 64 value bits. */
		if (!t.len || (c[0] & 0x80) || t.len > 9 || (t.len == 9 && c[0] != 0))
			return BS_ETYPE;
		uint64_t u = 0;
		for (size_t i = 0; i < t.len; i++)
			u = (u << 8) | c[i];
		*out = u;
		set_rw(rw, false);
		return BS_OK;
	}
	if (t.tag == DER_OCTET_STRING && t.len == 8) {
		*out = get_be64(c);
		set_rw(rw, true);
		return BS_OK;
	}
	return BS_ETYPE;
}

int nv_value_bool(const uint8_t *v, size_t vl, int *out, bool *rw)
{
	struct bs__tlv t;
	if (!single(v, vl, &t) || t.len != 1)
		return BS_ETYPE;
	uint8_t b = v[t.hdr];
	if (b != 0 && b != 0xff)
		return BS_ETYPE;
	if (t.tag != DER_BOOLEAN && t.tag != DER_OCTET_STRING)
		return BS_ETYPE;
	*out = b != 0;
	set_rw(rw, t.tag == DER_OCTET_STRING);
	return BS_OK;
}

int nv_value_str(const uint8_t *v, size_t vl, char **out, bool *rw)
{
	struct bs__tlv t;
	*out = NULL;
	if (!single(v, vl, &t))
		return BS_ETYPE;
	const uint8_t *c = v + t.hdr;
	size_t n = t.len;
	if (t.tag == DER_OCTET_STRING) {
		/* Read-write: the string, then NUL padding only. */
		const uint8_t *z = memchr(c, 0, n);
		if (z) {
			for (size_t i = (size_t)(z - c); i < n; i++)
				if (c[i])
					return BS_ETYPE;
			n = (size_t)(z - c);
		}
		if (!bs__utf8_valid(c, n))
			return BS_ETYPE;
		set_rw(rw, true);
	} else if (t.tag == DER_UTF8STRING || t.tag == DER_IA5STRING) {
		if (memchr(c, 0, n))
			return BS_ETYPE;
		set_rw(rw, false);
	} else {
		return BS_ETYPE;
	}
	*out = malloc(n + 1);
	if (!*out)
		return BS_ENOMEM;
	memcpy(*out, c, n);
	(*out)[n] = 0;
	return BS_OK;
}

int nv_value_bytes(const uint8_t *v, size_t vl, const uint8_t **out, size_t *len, bool *rw)
{
	if (!nv_value_octets(v, vl, out, len))
		return BS_ETYPE;
	set_rw(rw, false);
	return BS_OK;
}
