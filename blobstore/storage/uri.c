/* uri.c - names an image's storage: a path or a URI, and the table of URI
 * schemes that backends outside this library register.
 *
 *   /path, relative/path     a regular file, or a block device node
 *   file:///path             the same
 *   blk:///path?size=N&bs=N&direct=1
 *                            a block device, or a regular file treated as a
 *                            fixed-size device of N octets (sizes take the
 *                            suffixes k, M, G: powers of 1024)
 *   SCHEME://...             what bs_backend_register() gave SCHEME: the NBD
 *                            library registers nbd://, nbd+unix://, ...
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage.h"

/* ---- registered schemes -------------------------------------------------------- */

#define MAX_SCHEMES 32
#define MAX_SCHEME_LEN 31

static struct {
	char name[MAX_SCHEME_LEN + 1];
	bs_backend_open_fn open;
} schemes[MAX_SCHEMES];
static size_t nschemes;
static pthread_mutex_t schemes_lock = PTHREAD_MUTEX_INITIALIZER;

/* RFC 3986: a letter, then letters, digits, + - . */
static bool scheme_char(char c, bool first)
{
	bool alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
	return alpha || (!first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
}

int bs_backend_register(const char *scheme, bs_backend_open_fn open)
{
	size_t n = scheme ? strlen(scheme) : 0;
	bool ok = n && n <= MAX_SCHEME_LEN && open;
	for (size_t i = 0; ok && i < n; i++)
		ok = scheme_char(scheme[i], i == 0);
	if (!ok)
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL,
				 "a URI scheme is 1-%u letters, digits, '+', '-' or '.', starting "
				 "with a letter, with an open function", MAX_SCHEME_LEN);
	int rc = BS_OK;
	pthread_mutex_lock(&schemes_lock);
	size_t i = 0;
	while (i < nschemes && strcmp(schemes[i].name, scheme))
		i++;
	if (i == MAX_SCHEMES) {
		rc = bs__error(NULL, BS_NO_OFFSET, BS_ELIMIT, "more than %u URI schemes",
			       MAX_SCHEMES);
	} else {
		memcpy(schemes[i].name, scheme, n + 1);
		schemes[i].open = open;
		if (i == nschemes)
			nschemes++;
	}
	pthread_mutex_unlock(&schemes_lock);
	return rc;
}

/* The open function registered for the scheme NAME[0..N), or NULL. */
static bs_backend_open_fn registered(const char *name, size_t n)
{
	bs_backend_open_fn fn = NULL;
	pthread_mutex_lock(&schemes_lock);
	for (size_t i = 0; !fn && i < nschemes; i++)
		if (strlen(schemes[i].name) == n && !strncmp(schemes[i].name, name, n))
			fn = schemes[i].open;
	pthread_mutex_unlock(&schemes_lock);
	return fn;
}

/* ---- built-in names ---------------------------------------------------------------- */

/* Percent-decodes S[0..N) into a new string; NULL on a bad escape. */
static char *decode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h = i + 2 < n ? bs_hex_digit(s[i + 1]) : -1;
			int l = h >= 0 ? bs_hex_digit(s[i + 2]) : -1;
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
	struct bs_blk_opts o = BS_BLK_OPTS_INIT;
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
	if (!name || !*name || !out)
		return bs__error(BS__AT("(image)"), BS_NO_OFFSET, BS_EINVAL, "no image path or URI");
	/* The scheme before "://". */
	const char *c = strstr(name, "://");
	bool scheme = c && c > name;
	for (const char *s = name; scheme && s < c; s++)
		scheme = scheme_char(*s, s == name);
	if (scheme) {
		size_t n = (size_t)(c - name);
		bs_backend_open_fn fn = registered(name, n);
		if (fn)
			return fn(name, flags, out);
	}
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
	if (scheme && !strncmp(name, "nbd", 3))
		return bs__error(BS__AT(name), BS_NO_OFFSET, BS_EINVAL,
				 "NBD URIs need the NBD backend: link libblobstore-nbd and call "
				 "bs_nbd_register() (blobstore/nbd.h)");
	if (scheme)
		return bs__error(BS__AT(name), BS_NO_OFFSET, BS_EINVAL,
				 "unknown URI scheme (file://, blk://, or one a backend registers: "
				 "nbd://, nbd+unix://, ...)");
	struct stat st;
	if (stat(name, &st) == 0 && S_ISBLK(st.st_mode))
		return bs_backend_blk(name, name, flags, NULL, out);
	return bs_backend_file(name, flags, out);
}
