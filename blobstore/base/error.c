/* error.c - the thread's last error: a code, the errno of the system call
 * that failed (0 when none did), one message naming image, entry and
 * offset, and those three parts on their own (bs_error_where()). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base.h"

/* Room for the parts: a path, a type and a name of the longest lengths the
 * format allows (longer labels are cut, and then no longer name the file). */
#define WHERE_LABEL 4096u
#define WHERE_TYPE (BS_MAX_TYPE_LEN + 1u)
#define WHERE_NAME (BS_MAX_NAME_LEN + 1u)

static _Thread_local struct {
	int code;
	int sys_errno;
	char msg[1024];
	/* The parts, as given (not escaped); has_* false when absent. */
	bool has_label, has_type, has_name;
	char label[WHERE_LABEL], type[WHERE_TYPE], name[WHERE_NAME];
	uint64_t offset;
} last = {BS_OK, 0, "no error", false, false, false, "", "", "", UINT64_MAX};

int bs_error_last(const char **message, int *sys_errno)
{
	if (message)
		*message = last.msg;
	if (sys_errno)
		*sys_errno = last.sys_errno;
	return last.code;
}

int bs_error_where(const char **label, const char **type, const char **name, uint64_t *offset)
{
	if (label)
		*label = last.has_label ? last.label : NULL;
	if (type)
		*type = last.has_type ? last.type : NULL;
	if (name)
		*name = last.has_name ? last.name : NULL;
	if (offset)
		*offset = last.offset;
	return last.code;
}

/* Keeps S (NULL: absent) as one part of the last error. */
static void keep_part(bool *has, char *dst, size_t cap, const char *s)
{
	*has = s != NULL;
	if (s)
		snprintf(dst, cap, "%s", s);
	else
		dst[0] = 0;
}

const char *bs_error_string(int code)
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
	case BS_ERDONLY: return "read-only (image opened read-only, or a read-only value)";
	case BS_ERANGE: return "buffer too small";
	case BS_ETYPE: return "attribute has another type";
	case BS_EKEY: return "wrong or missing key";
	case BS_ESTALE: return "the handle's view of the image may be stale: reopen it";
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

int bs__verror(const struct bs__where *w, uint64_t offset, int code, int sys_errno,
	       const char *fmt, va_list ap)
{
	char msg[512];
	char clean[300];
	char *buf = last.msg;
	size_t cap = sizeof last.msg, n = 0;
	const char *label = w ? w->label : NULL, *type = w ? w->type : NULL;
	const char *name = w ? w->name : NULL;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (label) {
		put_clean(clean, sizeof clean, label);
		n += (size_t)snprintf(buf + n, cap - n, "%s: ", clean);
	}
	if (type && n < cap) {
		put_clean(clean, sizeof clean, type);
		n += (size_t)snprintf(buf + n, cap - n, "entry '%s'", clean);
		if (name && n < cap) {
			put_clean(clean, sizeof clean, name);
			n += (size_t)snprintf(buf + n, cap - n, "/'%s'", clean);
		}
		if (n < cap)
			n += (size_t)snprintf(buf + n, cap - n, "%s",
					      offset != BS_NO_OFFSET ? " " : ": ");
	}
	if (offset != BS_NO_OFFSET && n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "at offset %llu: ",
				      (unsigned long long)offset);
	if (n < cap)
		snprintf(buf + n, cap - n, "%s", msg);
	last.code = code;
	last.sys_errno = sys_errno;
	/* LABEL may be last.label itself (bs__error_wrap keeps it): copy last. */
	keep_part(&last.has_type, last.type, sizeof last.type, type);
	keep_part(&last.has_name, last.name, sizeof last.name, type ? name : NULL);
	if (label != last.label)
		keep_part(&last.has_label, last.label, sizeof last.label, label);
	last.offset = offset;
	return code;
}

int bs__error(const struct bs__where *w, uint64_t offset, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bs__verror(w, offset, code, 0, fmt, ap);
	va_end(ap);
	return code;
}

static int set(const struct bs__where *w, uint64_t offset, int code, int err,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int set(const struct bs__where *w, uint64_t offset, int code, int err, const char *fmt,
	       ...)
{
	va_list ap;
	va_start(ap, fmt);
	bs__verror(w, offset, code, err, fmt, ap);
	va_end(ap);
	return code;
}

int bs__error_errno(const char *label, int err, uint64_t offset, const char *what)
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
	struct bs__where w = {.label = label};
	return set(&w, offset, code, err, "%s: %s", what, strerror(err));
}

int bs__error_wrap(const struct bs__where *w, uint64_t offset, int code, const char *what)
{
	char prev[sizeof last.msg];
	const char *m = last.msg;
	size_t n = w && w->label ? strlen(w->label) : 0;
	if (n && !strncmp(m, w->label, n) && m[n] == ':' && m[n + 1] == ' ')
		m += n + 2;
	snprintf(prev, sizeof prev, "%s", m);
	/* The parts the wrapped error named stay where the wrap names none
	 * (the message already carries them, in PREV). */
	bool had_type = last.has_type, had_name = last.has_name, had_label = last.has_label;
	uint64_t old_off = last.offset;
	char type[WHERE_TYPE], name[WHERE_NAME], label[WHERE_LABEL];
	memcpy(type, last.type, sizeof type);
	memcpy(name, last.name, sizeof name);
	memcpy(label, last.label, sizeof label);
	set(w, offset, code, last.sys_errno, "%s: %s", what, prev);
	if (!last.has_type && had_type) {
		keep_part(&last.has_type, last.type, sizeof last.type, type);
		keep_part(&last.has_name, last.name, sizeof last.name, had_name ? name : NULL);
	}
	if (!last.has_label && had_label)
		keep_part(&last.has_label, last.label, sizeof last.label, label);
	if (last.offset == BS_NO_OFFSET)
		last.offset = old_off;
	return code;
}

/* ---- for code built on the library (blobstore/sys/util.h) ------------------- */

int bs_error_vset(const char *label, const char *type, const char *name, uint64_t offset,
		  int code, int sys_errno, const char *fmt, va_list ap)
{
	struct bs__where w = {label, type, name};
	return bs__verror(&w, offset, code, sys_errno, fmt ? fmt : "", ap);
}

int bs_error_set(const char *label, const char *type, const char *name, uint64_t offset,
		 int code, int sys_errno, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bs_error_vset(label, type, name, offset, code, sys_errno, fmt, ap);
	va_end(ap);
	return code;
}

int bs_error_set_errno(const char *label, int err, uint64_t offset, const char *what)
{
	return bs__error_errno(label, err, offset, what ? what : "system call");
}
