/* blobstore/sys/util.h - what code built on the library (backends, device
 * layers) shares with it: setting the thread's error the way the library
 * does, byte order, and text checks.  Conventions: blobstore/blobstore.h.
 */
#ifndef BLOBSTORE_SYS_UTIL_H
#define BLOBSTORE_SYS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the thread's error (what bs_error_last() reports) and returns CODE:
 * "LABEL: entry 'TYPE'/'NAME' at offset OFFSET: MESSAGE", each part left
 * out when NULL (OFFSET: when BS_NO_OFFSET).  SYS_ERRNO is the errno of a
 * system call that failed, or 0.  Control characters in LABEL, TYPE and
 * NAME are escaped. */
#define BS_NO_OFFSET UINT64_MAX
int bs_error_set(const char *label, const char *type, const char *name, uint64_t offset,
		 int code, int sys_errno, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
int bs_error_vset(const char *label, const char *type, const char *name, uint64_t offset,
		  int code, int sys_errno, const char *fmt, va_list ap);
/* The same for entry E (its image's label, its type and name). */
int bs_error_set_entry(const bs_entry *e, uint64_t offset, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A system call WHAT failed with ERR on LABEL: the code mapped from ERR
 * (ENOSPC -> BS_ENOSPC, EROFS -> BS_ERDONLY, ...), ERR kept. */
int bs_error_set_errno(const char *label, int err, uint64_t offset, const char *what);

/* Byte order. */
static inline void bs_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void bs_put_be32(uint8_t *p, uint32_t v)
{
	bs_put_be16(p, (uint16_t)(v >> 16));
	bs_put_be16(p + 2, (uint16_t)v);
}
static inline void bs_put_be64(uint8_t *p, uint64_t v)
{
	bs_put_be32(p, (uint32_t)(v >> 32));
	bs_put_be32(p + 4, (uint32_t)v);
}
static inline uint16_t bs_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t bs_get_be32(const uint8_t *p)
{
	return (uint32_t)bs_get_be16(p) << 16 | bs_get_be16(p + 2);
}
static inline uint64_t bs_get_be64(const uint8_t *p)
{
	return (uint64_t)bs_get_be32(p) << 32 | bs_get_be32(p + 4);
}
static inline void bs_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void bs_put_le32(uint8_t *p, uint32_t v)
{
	bs_put_le16(p, (uint16_t)v);
	bs_put_le16(p + 2, (uint16_t)(v >> 16));
}
static inline void bs_put_le64(uint8_t *p, uint64_t v)
{
	bs_put_le32(p, (uint32_t)v);
	bs_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t bs_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t bs_get_le32(const uint8_t *p)
{
	return (uint32_t)bs_get_le16(p) | (uint32_t)bs_get_le16(p + 2) << 16;
}
static inline uint64_t bs_get_le64(const uint8_t *p)
{
	return (uint64_t)bs_get_le32(p) | (uint64_t)bs_get_le32(p + 4) << 32;
}

/* Non-zero when P/LEN is valid UTF-8 (no surrogates, no overlong forms). */
int bs_utf8_valid(const void *p, size_t len);
/* The value of one hexadecimal digit (either case), or -1. */
int bs_hex_digit(int c);

#ifdef __cplusplus
}
#endif
#endif
