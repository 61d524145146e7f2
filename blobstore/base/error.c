/* error.c - the thread's last error: one message naming image, entry, offset. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char errbuf[1024] = "no error";

const char *bs_errmsg(void)
{
	return errbuf;
}

const char *bs_strerror(int code)
{
	switch (code) {
	case BS_OK: return "success";
	case BS_EINVAL: return "invalid argument";
	case BS_ENOMEM: return "out of memory";
	case BS_EIO: return "I/O error";
	case BS_ECORRUPT: return "corrupt image or entry";
	case BS_ENOENT: return "not found";
	case BS_EEXIST: return "already exists";
	case BS_ELOCKED: return "locked by another writer";
	case BS_ENOSPC: return "no space left";
	case BS_EUNSUPPORTED: return "entry refused: unknown mandatory attribute or feature";
	case BS_ELIMIT: return "limit exceeded";
	case BS_ERDONLY: return "image opened read-only";
	case BS_ERANGE: return "buffer too small";
	case BS_ETYPE: return "attribute has another type";
	case BS_EKEY: return "wrong or missing key";
	default: return "unknown error";
	}
}

/* Appends printable text: control characters and quotes in types and names
 * from a hostile image must not garble a terminal or a log line. */
static size_t put_clean(char *dst, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
			n += (size_t)snprintf(dst + n, cap - n, "\\x%02x", c);
		else
			dst[n++] = (char)c;
	}
	dst[n] = 0;
	return n;
}

int bs__verr(const char *label, const char *type, const char *name, uint64_t offset,
	     int code, const char *fmt, va_list ap)
{
	char msg[512];
	char clean[300];
	size_t n = 0;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (label) {
		put_clean(clean, sizeof clean, label);
		n += (size_t)snprintf(errbuf + n, sizeof errbuf - n, "%s: ", clean);
	}
	if (type && n < sizeof errbuf) {
		put_clean(clean, sizeof clean, type);
		n += (size_t)snprintf(errbuf + n, sizeof errbuf - n, "entry '%s'", clean);
		if (name && n < sizeof errbuf) {
			put_clean(clean, sizeof clean, name);
			n += (size_t)snprintf(errbuf + n, sizeof errbuf - n, "/'%s'", clean);
		}
		if (n < sizeof errbuf)
			n += (size_t)snprintf(errbuf + n, sizeof errbuf - n, "%s",
					      offset != BS_NO_OFFSET ? " " : ": ");
	}
	if (offset != BS_NO_OFFSET && n < sizeof errbuf)
		n += (size_t)snprintf(errbuf + n, sizeof errbuf - n, "at offset %llu: ",
				      (unsigned long long)offset);
	if (n < sizeof errbuf)
		snprintf(errbuf + n, sizeof errbuf - n, "%s", msg);
	return code;
}

int bs__err(const bs_image *img, const bs_entry *e, uint64_t offset, int code,
	    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bs__verr(img ? img->label : NULL, e && e->m ? e->m->type : NULL,
		 e && e->m ? e->m->name : NULL, offset, code, fmt, ap);
	va_end(ap);
	return code;
}

int bs__err_key(const char *label, const char *type, const char *name, int code,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bs__verr(label, type, name, BS_NO_OFFSET, code, fmt, ap);
	va_end(ap);
	return code;
}

static int errfmt(const char *label, uint64_t offset, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bs__verr(label, NULL, NULL, offset, code, fmt, ap);
	va_end(ap);
	return code;
}

int bs__errno(const char *label, int err, uint64_t offset, const char *what)
{
	int code;
	switch (err) {
	case ENOENT: code = BS_ENOENT; break;
	case EEXIST: code = BS_EEXIST; break;
	case ENOSPC: case EDQUOT: case EFBIG: code = BS_ENOSPC; break;
	case ENOMEM: code = BS_ENOMEM; break;
	case EAGAIN: case EACCES: code = (strstr(what, "lock") ? BS_ELOCKED : BS_EIO); break;
	case EROFS: case EPERM: code = BS_ERDONLY; break;
	default: code = BS_EIO; break;
	}
	if (err == EACCES && !strstr(what, "lock"))
		code = BS_EIO;
	return errfmt(label, offset, code, "%s: %s", what, strerror(err));
}
