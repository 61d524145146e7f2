/* text.c - the text checks every layer shares: UTF-8 (names, UTF8String),
 * IA5 (IA5String), the format's identifiers, hexadecimal digits. */
#include <string.h>

#include "base.h"

bool bs__ia5_valid(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] > 0x7f)
			return false;
	return true;
}

int bs_utf8_valid(const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i = 0;
	while (i < len) {
		/* ASCII eight octets at a time: names usually are. */
		if (len - i >= 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (!(w & 0x8080808080808080ull)) {
				i += 8;
				continue;
			}
		}
		uint8_t c = p[i];
		uint32_t cp;
		size_t n;
		if (c < 0x80) { i++; continue; }
		if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
		else return false;
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool bs__ident_valid(const uint8_t *p, size_t len, size_t max, bool space_ok)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < (space_ok ? 0x20 : 0x21) || p[i] > 0x7e)
			return false;
	return true;
}

bool bs__name_valid(const char *name)
{
	return name && bs__ident_valid((const uint8_t *)name, strlen(name), BS_MAX_ATTR_NAME_LEN,
				       false);
}

int bs_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
