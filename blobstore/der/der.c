/* der.c - strict DER tag/length primitives, value rules and encoders.
 *
 * Everything here works on (pointer, length) pairs and never reads past
 * them; lengths are at most 4 octets (< 2^32), so no sum below can overflow
 * a 64-bit size_t. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "der.h"

const char *bs__der_header_prefix_any(const uint8_t *p, size_t avail, struct bs__tlv *t)
{
	size_t i = 0;
	if (avail < 2)
		return "truncated header";
	uint32_t tag = p[i++];
	t->constructed = (tag & 0x20) != 0;
	if ((tag & 0x1f) == 0x1f) {
		/* High tag number form: base-128, minimal, at most 3 octets. */
		uint32_t num = 0;
		size_t n = 0;
		for (;;) {
			if (i >= avail)
				return "truncated tag";
			uint8_t b = p[i++];
			if (n == 0 && b == 0x80)
				return "non-minimal tag number";
			num = (num << 7) | (b & 0x7f);
			tag = (tag << 8) | b;
			if (++n > 3)
				return "tag number too large";
			if (!(b & 0x80))
				break;
		}
		if (num < 31)
			return "high tag form for a low tag number";
	}
	if (i >= avail)
		return "truncated length";
	uint8_t l0 = p[i++];
	uint64_t len;
	if (l0 < 0x80) {
		len = l0;
	} else if (l0 == 0x80) {
		return "indefinite length inside an entry";
	} else {
		size_t n = l0 & 0x7f;
		if (n > 4)
			return "length of 2^32 or more";
		if (avail - i < n)
			return "truncated length";
		if (p[i] == 0)
			return "non-minimal length (leading zero octet)";
		len = 0;
		for (size_t k = 0; k < n; k++)
			len = (len << 8) | p[i++];
		if (len < 0x80)
			return "non-minimal length (long form for a short length)";
	}
	t->tag = tag;
	t->hdr = i;
	t->len = (size_t)len;
	return NULL;
}

const char *bs__der_header(const uint8_t *p, size_t avail, struct bs__tlv *t)
{
	const char *why = bs__der_header_prefix(p, avail, t);
	if (why)
		return why;
	if (t->len > avail - t->hdr)
		return "length runs past the enclosing element";
	return NULL;
}

bool bs__der_int_value(const uint8_t *p, size_t len, int64_t *out)
{
	if (len == 0 || len > 8)
		return false;
	if (len > 1 && ((p[0] == 0 && !(p[1] & 0x80)) || (p[0] == 0xff && (p[1] & 0x80))))
		return false;
	uint64_t v = (p[0] & 0x80) ? UINT64_MAX : 0;
	for (size_t i = 0; i < len; i++)
		v = (v << 8) | p[i];
	*out = (int64_t)v;
	return true;
}

/* Content rules for primitive universal types (X.690 8.x and 10/11). */
const char *bs__der_check_primitive(uint32_t tag, const uint8_t *p, size_t len)
{
	switch (tag) {
	case DER_BOOLEAN:
		if (len != 1 || (p[0] != 0 && p[0] != 0xff))
			return "BOOLEAN not encoded as one octet 00 or FF (X.690 11.1)";
		return NULL;
	case DER_INTEGER:
	case 0x0a: /* ENUMERATED */
		if (len == 0)
			return "empty INTEGER";
		if (len > 1 && ((p[0] == 0 && !(p[1] & 0x80)) || (p[0] == 0xff && (p[1] & 0x80))))
			return "non-minimal INTEGER (X.690 8.3.2)";
		return NULL;
	case DER_BIT_STRING:
		if (len == 0 || p[0] > 7 || (len == 1 && p[0] != 0))
			return "malformed BIT STRING";
		if (p[0] && (p[len - 1] & ((1u << p[0]) - 1)))
			return "BIT STRING unused bits not zero (X.690 11.2.1)";
		return NULL;
	case DER_NULL:
		return len ? "NULL with content" : NULL;
	case DER_OID:
		if (len == 0)
			return "empty OBJECT IDENTIFIER";
		if (p[len - 1] & 0x80)
			return "truncated OBJECT IDENTIFIER";
		for (size_t i = 0; i < len; i++)
			if (p[i] == 0x80 && (i == 0 || !(p[i - 1] & 0x80)))
				return "non-minimal OBJECT IDENTIFIER arc";
		return NULL;
	case DER_UTF8STRING:
		return bs_utf8_valid(p, len) ? NULL : "invalid UTF-8 in UTF8String";
	case DER_IA5STRING:
		return bs__ia5_valid(p, len) ? NULL : "non-ASCII octet in IA5String";
	case DER_PRINTABLESTRING:
		for (size_t i = 0; i < len; i++) {
			uint8_t c = p[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || strchr(" '()+,-./:=?", c)) || c == 0)
				return "invalid character in PrintableString";
		}
		return NULL;
	case 0x00:
		return "end-of-contents inside an entry";
	default:
		return NULL;
	}
}

int bs__der_set_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);
	if (c)
		return c;
	const uint8_t *rest = alen > blen ? a + n : b + n;
	size_t rlen = alen > blen ? alen - n : blen - n;
	for (size_t i = 0; i < rlen; i++)
		if (rest[i])
			return alen > blen ? 1 : -1;
	return 0;
}

size_t bs__der_header_len(size_t len)
{
	if (len < 0x80) return 2;
	if (len <= 0xff) return 3;
	if (len <= 0xffff) return 4;
	if (len <= 0xffffff) return 5;
	return 6;
}

size_t bs__der_put_header(uint8_t *out, uint8_t tag, size_t len)
{
	size_t h = bs__der_header_len(len);
	out[0] = tag;
	if (h == 2) {
		out[1] = (uint8_t)len;
	} else {
		out[1] = (uint8_t)(0x80 | (h - 2));
		for (size_t i = 0; i < h - 2; i++)
			out[h - 1 - i] = (uint8_t)(len >> (8 * i));
	}
	return h;
}

size_t bs__der_encode_int(int64_t v, uint8_t *buf, size_t cap)
{
	uint8_t tmp[8];
	size_t n = 8;
	for (int i = 7; i >= 0; i--) {
		tmp[i] = (uint8_t)v;
		v >>= 8; /* arithmetic shift keeps the sign */
	}
	size_t s = 0;
	while (n - s > 1 && ((tmp[s] == 0 && !(tmp[s + 1] & 0x80)) ||
			     (tmp[s] == 0xff && (tmp[s + 1] & 0x80))))
		s++;
	if (cap < 2 + n - s)
		return 0;
	buf[0] = DER_INTEGER;
	buf[1] = (uint8_t)(n - s);
	memcpy(buf + 2, tmp + s, n - s);
	return 2 + n - s;
}

size_t bs__der_encode_bool(int v, uint8_t *buf, size_t cap)
{
	if (cap < 3)
		return 0;
	buf[0] = DER_BOOLEAN;
	buf[1] = 1;
	buf[2] = v ? 0xff : 0;
	return 3;
}

size_t bs__der_encode_prim(uint8_t tag, const void *p, size_t len, uint8_t *buf, size_t cap)
{
	if (len > UINT32_MAX || cap < bs__der_header_len(len) || cap - bs__der_header_len(len) < len)
		return 0;
	size_t h = bs__der_put_header(buf, tag, len);
	if (len)
		memcpy(buf + h, p, len);
	return h + len;
}

size_t bs__der_encode_utf8(const char *s, uint8_t *buf, size_t cap)
{
	size_t len = strlen(s);
	if (!bs_utf8_valid((const uint8_t *)s, len))
		return 0;
	return bs__der_encode_prim(DER_UTF8STRING, s, len, buf, cap);
}

size_t bs__der_encode_octets(const void *p, size_t len, uint8_t *buf, size_t cap)
{
	return bs__der_encode_prim(DER_OCTET_STRING, p, len, buf, cap);
}

static size_t cat(char *buf, size_t cap, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t cat(char *buf, size_t cap, size_t n, const char *fmt, ...)
{
	if (n >= cap)
		return n;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + n, cap - n, fmt, ap);
	va_end(ap);
	return k < 0 ? n : (n + (size_t)k >= cap ? cap - 1 : n + (size_t)k);
}

static size_t describe_string(char *buf, size_t cap, size_t n, const uint8_t *p, size_t len)
{
	n = cat(buf, cap, n, "\"");
	for (size_t i = 0; i < len && n < cap - 1; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
			n = cat(buf, cap, n, "%c", p[i]);
		else if (p[i] >= 0x80)
			n = cat(buf, cap, n, "%c", p[i]); /* UTF-8 passes through */
		else
			n = cat(buf, cap, n, "\\x%02x", p[i]);
	}
	return cat(buf, cap, n, "\"");
}

void bs_value_describe(const uint8_t *der, size_t len, char *buf, size_t cap)
{
	size_t n = 0, pos = 0;
	if (!cap)
		return;
	buf[0] = 0;
	while (pos < len) {
		struct bs__tlv t;
		if (bs__der_header(der + pos, len - pos, &t)) {
			cat(buf, cap, n, "(malformed)");
			return;
		}
		const uint8_t *c = der + pos + t.hdr;
		if (n)
			n = cat(buf, cap, n, ", ");
		int64_t v;
		switch (t.tag) {
		case DER_INTEGER:
			if (bs__der_int_value(c, t.len, &v))
				n = cat(buf, cap, n, "INTEGER %" PRId64, v);
			else {
				n = cat(buf, cap, n, "INTEGER 0x");
				for (size_t i = 0; i < t.len && n < cap - 1; i++)
					n = cat(buf, cap, n, "%02x", c[i]);
			}
			break;
		case DER_BOOLEAN:
			n = cat(buf, cap, n, "BOOLEAN %s", t.len == 1 && c[0] ? "TRUE" : "FALSE");
			break;
		case DER_UTF8STRING:
			n = cat(buf, cap, n, "UTF8String ");
			n = describe_string(buf, cap, n, c, t.len);
			break;
		case DER_IA5STRING:
			n = cat(buf, cap, n, "IA5String ");
			n = describe_string(buf, cap, n, c, t.len);
			break;
		case DER_OCTET_STRING:
			n = cat(buf, cap, n, "OCTET STRING[%zu] ", t.len);
			for (size_t i = 0; i < t.len && n < cap - 1; i++)
				n = cat(buf, cap, n, "%02x", c[i]);
			break;
		case DER_NULL:
			n = cat(buf, cap, n, "NULL");
			break;
		default:
			n = cat(buf, cap, n, "[tag 0x%" PRIx32 ", %zu octets] ", t.tag, t.len);
			for (size_t i = 0; i < t.len && i < 32 && n < cap - 1; i++)
				n = cat(buf, cap, n, "%02x", c[i]);
			break;
		}
		pos += t.hdr + t.len;
	}
}
