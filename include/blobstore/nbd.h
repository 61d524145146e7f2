/* blobstore/nbd.h - images on NBD exports, through libnbd.
 *
 * A library of its own, libblobstore-nbd (pkg-config blobstore-nbd), so
 * that programs without NBD do not need libnbd.  Conventions:
 * blobstore/blobstore.h.
 */
#ifndef BLOBSTORE_NBD_H
#define BLOBSTORE_NBD_H

#include <blobstore/backend.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An NBD export: URI as nbd_connect_uri() takes it ("nbd://host:port/export",
 * "nbd+unix:///export?socket=PATH").  Fixed size; sync is an NBD flush (FUA
 * writes where offered).  A writer refuses a read-only export (BS_ERDONLY)
 * and one that cannot flush (BS_EUNSUPPORTED) unless FLAGS has
 * BS_OPEN_NOSYNC.  No locking: one writer per export is the operator's
 * job.  Connection failures are BS_EIO naming the URI. */
int bs_backend_nbd(const char *uri, unsigned flags, struct bs_backend **out);

/* Registers the NBD URI schemes (nbd, nbds, nbd+unix, nbds+unix,
 * nbd+vsock, nbds+vsock) with bs_backend_register(), so that
 * bs_image_open() takes them.  Errors: those of bs_backend_register(). */
int bs_nbd_register(void);

#ifdef __cplusplus
}
#endif
#endif
