/* value.c - typed values of attributes and record fields (the values of
 * blobstore.h): the one family of encoders and decoders that entries,
 * records and devices share.
 *
 * Read-only values use their natural universal type (INTEGER, BOOLEAN,
 * UTF8String, OCTET STRING); read-write values are fixed-size OCTET
 * STRINGs (integers 8 octets big-endian, booleans 1 octet 00/FF, strings
 * UTF-8 padded with NUL octets) so that a new value never changes the
 * size. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static int value_err(int code, const char *what)
{
	return bs__error(NULL, BS_NO_OFFSET, code, "value: %s", what);
}

/* TAG with contents P/N into BUF/CAP, *LEN its length. */
static int put(uint8_t tag, const void *p, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
	if (n > BS_MAX_ATTR_SIZE)
		return value_err(BS_ELIMIT, "larger than an attribute may be");
	size_t need = bs__der_header_len(n) + n;
	if (!len || (cap && !buf))
		return value_err(BS_EINVAL, "no output");
	if (cap < need) {
		*len = need;
		return value_err(BS_ERANGE, "buffer too small");
	}
	*len = bs__der_encode_prim(tag, p, n, buf, cap);
	return BS_OK;
}

static int check_flags(unsigned flags)
{
	return flags & ~(unsigned)(BS_ATTR_RW | BS_ATTR_MANDATORY)
		       ? value_err(BS_EINVAL, "unknown flags")
		       : BS_OK;
}

int bs_value_encode_int(int64_t v, unsigned flags, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t tmp[BS__DER_MAX_INT];
	int rc = check_flags(flags);
	if (rc)
		return rc;
	if (flags & BS_ATTR_RW) {
		bs_put_be64(tmp, (uint64_t)v);
		return put(DER_OCTET_STRING, tmp, 8, buf, cap, len);
	}
	size_t n = bs__der_encode_int(v, tmp, sizeof tmp);
	return put(DER_INTEGER, tmp + 2, n - 2, buf, cap, len);
}

int bs_value_encode_uint(uint64_t v, unsigned flags, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t tmp[9];
	int rc = check_flags(flags);
	if (rc)
		return rc;
	if (flags & BS_ATTR_RW) {
		bs_put_be64(tmp, v);
		return put(DER_OCTET_STRING, tmp, 8, buf, cap, len);
	}
	/* Non-negative INTEGER: minimal, a leading 00 when the top bit is set. */
	tmp[0] = 0;
	bs_put_be64(tmp + 1, v);
	size_t z = 0;
	while (z < 8 && tmp[z] == 0 && !(tmp[z + 1] & 0x80))
		z++;
	return put(DER_INTEGER, tmp + z, 9 - z, buf, cap, len);
}

int bs_value_encode_bool(int v, unsigned flags, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t b = v ? 0xff : 0x00;
	int rc = check_flags(flags);
	return rc ? rc : put(flags & BS_ATTR_RW ? DER_OCTET_STRING : DER_BOOLEAN, &b, 1, buf, cap, len);
}

int bs_value_encode_str(const char *s, unsigned flags, size_t size, uint8_t *buf, size_t cap,
			size_t *len)
{
	int rc = check_flags(flags);
	if (rc)
		return rc;
	if (!s)
		return value_err(BS_EINVAL, "no string");
	size_t n = strlen(s);
	if (!bs_utf8_valid(s, n))
		return value_err(BS_EINVAL, "string is not valid UTF-8");
	if (!(flags & BS_ATTR_RW))
		return put(DER_UTF8STRING, s, n, buf, cap, len);
	if (!size)
		size = n;
	if (n > size)
		return value_err(BS_ELIMIT, "string longer than the read-write value's size");
	if (size > BS_MAX_ATTR_SIZE)
		return value_err(BS_ELIMIT, "larger than an attribute may be");
	uint8_t *pad = calloc(1, size ? size : 1);
	if (!pad)
		return value_err(BS_ENOMEM, "out of memory");
	memcpy(pad, s, n);
	rc = put(DER_OCTET_STRING, pad, size, buf, cap, len);
	free(pad);
	return rc;
}

int bs_value_encode_bytes(const void *p, size_t n, unsigned flags, uint8_t *buf, size_t cap,
			  size_t *len)
{
	int rc = check_flags(flags);
	if (rc)
		return rc;
	if (n && !p)
		return value_err(BS_EINVAL, "no bytes");
	return put(DER_OCTET_STRING, p, n, buf, cap, len);
}

/* ---- decoding ---------------------------------------------------------------- */

/* The single element of V/VL with its contents. */
static bool single(const uint8_t *v, size_t vl, struct bs__tlv *t)
{
	return v && vl && !bs__der_header(v, vl, t) && t->hdr + t->len == vl;
}

static void set_flags(unsigned *flags, bool rw)
{
	if (flags)
		*flags = rw ? BS_ATTR_RW : 0;
}

static int type_err(const char *what)
{
	return value_err(BS_ETYPE, what);
}

int bs_value_decode_int(const uint8_t *v, size_t vl, int64_t *out, unsigned *flags)
{
	struct bs__tlv t;
	if (!out)
		return value_err(BS_EINVAL, "no output");
	if (!single(v, vl, &t))
		return type_err("not one DER element");
	const uint8_t *c = v + t.hdr;
	int64_t x;
	if (t.tag == DER_INTEGER) {
		if (!bs__der_int_value(c, t.len, &x))
			return type_err("INTEGER does not fit 64 bits");
		set_flags(flags, false);
	} else if (t.tag == DER_OCTET_STRING && t.len == 8) {
		x = (int64_t)bs_get_be64(c);
		set_flags(flags, true);
	} else {
		return type_err("not an integer");
	}
	*out = x;
	return BS_OK;
}

int bs_value_decode_uint(const uint8_t *v, size_t vl, uint64_t *out, unsigned *flags)
{
	struct bs__tlv t;
	if (!out)
		return value_err(BS_EINVAL, "no output");
	if (!single(v, vl, &t))
		return type_err("not one DER element");
	const uint8_t *c = v + t.hdr;
	uint64_t u = 0;
	if (t.tag == DER_INTEGER) {
		/* Minimal (the parser checked it), non-negative, at most 64 bits. */
		if (!t.len || (c[0] & 0x80) || t.len > 9 || (t.len == 9 && c[0] != 0))
			return type_err("INTEGER is negative or does not fit 64 bits");
		for (size_t i = 0; i < t.len; i++)
			u = (u << 8) | c[i];
		set_flags(flags, false);
	} else if (t.tag == DER_OCTET_STRING && t.len == 8) {
		u = bs_get_be64(c);
		set_flags(flags, true);
	} else {
		return type_err("not an unsigned integer");
	}
	*out = u;
	return BS_OK;
}

int bs_value_decode_bool(const uint8_t *v, size_t vl, int *out, unsigned *flags)
{
	struct bs__tlv t;
	if (!out)
		return value_err(BS_EINVAL, "no output");
	if (!single(v, vl, &t) || t.len != 1 || (t.tag != DER_BOOLEAN && t.tag != DER_OCTET_STRING))
		return type_err("not a boolean");
	uint8_t b = v[t.hdr];
	if (b != 0 && b != 0xff)
		return type_err("not a boolean");
	set_flags(flags, t.tag == DER_OCTET_STRING);
	*out = b != 0;
	return BS_OK;
}

int bs_value_decode_str(const uint8_t *v, size_t vl, char **out, unsigned *flags)
{
	struct bs__tlv t;
	if (!out)
		return value_err(BS_EINVAL, "no output");
	if (!single(v, vl, &t))
		return type_err("not one DER element");
	const uint8_t *c = v + t.hdr;
	size_t n = t.len;
	bool rw = false;
	if (t.tag == DER_OCTET_STRING) {
		/* Read-write: the string, then NUL padding only. */
		const uint8_t *z = memchr(c, 0, n);
		if (z) {
			for (size_t i = (size_t)(z - c); i < n; i++)
				if (c[i])
					return type_err("not a string");
			n = (size_t)(z - c);
		}
		if (!bs_utf8_valid(c, n))
			return type_err("not a string");
		rw = true;
	} else if (t.tag == DER_UTF8STRING || t.tag == DER_IA5STRING) {
		if (memchr(c, 0, n))
			return type_err("string holds NUL");
	} else {
		return type_err("not a string");
	}
	char *s = malloc(n + 1);
	if (!s)
		return value_err(BS_ENOMEM, "out of memory");
	memcpy(s, c, n);
	s[n] = 0;
	set_flags(flags, rw);
	*out = s;
	return BS_OK;
}

int bs_value_decode_bytes(const uint8_t *v, size_t vl, const uint8_t **out, size_t *n,
			  unsigned *flags)
{
	struct bs__tlv t;
	if (!out || !n)
		return value_err(BS_EINVAL, "no output");
	if (!single(v, vl, &t) || t.tag != DER_OCTET_STRING)
		return type_err("not an octet string");
	*out = v + t.hdr;
	*n = t.len;
	set_flags(flags, false);
	return BS_OK;
}

/* The size of a read-write value: the contents of an OCTET STRING, else 0. */
size_t bs__value_rw_size(const uint8_t *v, size_t vl)
{
	struct bs__tlv t;
	return single(v, vl, &t) && t.tag == DER_OCTET_STRING ? t.len : 0;
}
