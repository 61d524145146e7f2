/* fuzz_util.h - what the fuzz targets share. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <blobstore/blobstore.h>

/* The message of the library's last failure. */
static inline const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

#endif
