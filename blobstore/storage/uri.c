/* backend_uri.c - names an image's storage: a path or a URI.
 *
 *   /path, relative/path     a regular file, or a block device node
 *   file:///path             the same
 *   blk:///path?size=N&bs=N&direct=1
 *                            a block device, or a regular file treated as a
 *                            fixed-size device of N octets (sizes take the
 *                            suffixes k, M, G: powers of 1024)
 *   nbd://host[:port]/export, nbd+unix:///export?socket=PATH (and the other
 *                            schemes libnbd knows: nbds, nbd+vsock, ...)
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage.h"

/* Percent-decodes S[0..N) into a new string; NULL on a bad escape. */
static char *decode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h = i + 2 < n ? bs__hexval(s[i + 1]) : -1;
			int l = h >= 0 ? bs__hexval(s[i + 2]) : -1;
			if (h < 0 || l < 0 || (h == 0 && l == 0)) {
				free(o);
				return NULL;
			}
			*q++ = (char)(h * 16 + l);
			i += 2;
		} else {
			*q++ = s[i];
		}
	}
	*q = 0;
	return o;
}

static bool parse_size(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	if (!n)
		return false;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (!i)
		return false;
	unsigned shift = 0;
	if (i < n) {
		const char *sfx = "kMGT";
		const char *p = i + 1 == n ? strchr(sfx, s[i]) : NULL;
		if (!p || !s[i])
			return false;
		shift = 10u * (unsigned)(p - sfx + 1);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

/* "blk://" URI: path (after the authority, which must be empty) and query. */
static int open_blk(const char *uri, unsigned flags, struct bs_backend **out)
{
	const char *p = uri + strlen("blk://");
	if (*p != '/')
		return bs__error(BS__AT(uri), BS_NO_OFFSET, BS_EINVAL,
				   "blk URIs name a local path: blk:///dev/sdX or blk:///path/file?size=N");
	const char *q = strchr(p, '?');
	size_t plen = q ? (size_t)(q - p) : strlen(p);
	char *path = decode(p, plen);
	if (!path)
		return bs__error(BS__AT(uri), BS_NO_OFFSET, BS_EINVAL, "bad %%-escape in the path");
	struct bs_blk_opts o = {0};
	while (q && *q) {
		q++;
		const char *amp = strchr(q, '&');
		size_t kl = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', kl);
		size_t nl = eq ? (size_t)(eq - q) : kl;
		const char *v = eq ? eq + 1 : q + kl;
		size_t vl = eq ? kl - nl - 1 : 0;
		uint64_t num = 0;
		bool ok = parse_size(v, vl, &num);
		if (nl == 4 && !strncmp(q, "size", 4) && ok)
			o.size = num;
		else if (nl == 2 && !strncmp(q, "bs", 2) && ok && num <= 65536)
			o.block_size = (uint32_t)num;
		else if (nl == 6 && !strncmp(q, "direct", 6) && ok && num <= 1)
			o.direct = num == 1;
		else {
			free(path);
			return bs__error(BS__AT(uri), BS_NO_OFFSET, BS_EINVAL,
					   "unknown or malformed option '%.*s' (size=N, bs=N, direct=0|1)",
					   (int)kl, q);
		}
		q = amp;
	}
	int rc = bs_backend_blk(path, uri, flags, &o, out);
	free(path);
	return rc;
}

int bs_backend_open(const char *name, unsigned flags, struct bs_backend **out)
{
	*out = NULL;
	if (!name || !*name)
		return bs__error(BS__AT("(image)"), BS_NO_OFFSET, BS_EINVAL, "no image path or URI");
	/* The scheme (RFC 3986: a letter, then letters, digits, + - .)
	 * before "://". */
	const char *c = strstr(name, "://");
	bool scheme = c && c > name && ((*name | 0x20) >= 'a' && (*name | 0x20) <= 'z');
	for (const char *s = name; scheme && s < c; s++)
		scheme = ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') || (*s >= '0' && *s <= '9') ||
			 *s == '+' || *s == '-' || *s == '.';
	if (scheme && !strncmp(name, "nbd", 3))
		return bs_backend_nbd(name, flags, out);
	if (!strncmp(name, "blk://", 6))
		return open_blk(name, flags, out);
	if (!strncmp(name, "file://", 7)) {
		const char *p = name + 7;
		if (*p != '/' || strchr(p, '?'))
			return bs__error(BS__AT(name), BS_NO_OFFSET, BS_EINVAL,
					   "file URIs name a local absolute path: file:///path");
		char *path = decode(p, strlen(p));
		if (!path)
			return bs__error(BS__AT(name), BS_NO_OFFSET, BS_EINVAL, "bad %%-escape in the path");
		int rc = bs_backend_open(path, flags, out);
		free(path);
		return rc;
	}
	/* Another "scheme://" is a mistake, not a relative path. */
	if (scheme)
		return bs__error(BS__AT(name), BS_NO_OFFSET, BS_EINVAL,
				   "unknown URI scheme (file://, blk://, nbd://, nbd+unix://)");
	struct stat st;
	if (stat(name, &st) == 0 && S_ISBLK(st.st_mode))
		return bs_backend_blk(name, name, flags, NULL, out);
	return bs_backend_file(name, flags, out);
}
