/* blobstore/rbd.h - images on Ceph RBD images, through librbd.
 *
 * A library of its own, libblobstore-rbd (pkg-config blobstore-rbd).  It
 * loads librbd.so.1 and librados.so.2 (Debian: librbd1, librados2) when it
 * first opens an RBD image, so that programs that link it but never name
 * an RBD image do not pay for loading Ceph's libraries.  Conventions:
 * blobstore/blobstore.h.
 */
#ifndef BLOBSTORE_RBD_H
#define BLOBSTORE_RBD_H

#include <blobstore/backend.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An RBD image named by URI:
 *
 *	rbd://POOL/IMAGE?conf=FILE&id=ID&keyring=FILE&snap=SNAP
 *	rbd://POOL/NAMESPACE/IMAGE?...
 *
 * Every part is %-decoded; every option may be left out:
 *   conf=FILE     the cluster's ceph.conf (default: $CEPH_CONF, then
 *                 Ceph's search path, /etc/ceph/ceph.conf first)
 *   id=ID         the client's id, without "client." (default admin)
 *   keyring=FILE  its keyring (default: what the configuration says)
 *   snap=SNAP     a snapshot of the image: read-only (a writer gets
 *                 BS_ERDONLY)
 *   size=N        with BS_OPEN_CREATE, a missing image is created with N
 *                 octets (suffixes k, M, G, T), with the layering and
 *                 exclusive-lock features; an existing image keeps its size
 *   timeout=S     seconds (1-3600, default 30) that connecting, each OSD
 *                 operation and each monitor command may take
 *                 (client_mount_timeout, rados_osd_op_timeout,
 *                 rados_mon_op_timeout): an unreachable cluster is BS_EIO
 *                 naming the URI, never a hang
 *   lock_wait=S   seconds (1-86400, default 60) that a writer opened with
 *                 BS_OPEN_WAIT waits for another client's lock
 *
 * The storage has a fixed size, that of the RBD image; the library keeps
 * its recovery area in the last 4096 octets, as on a block device.
 * bs_image_reserve() (blobstore grow) enlarges the RBD image, never
 * shrinks it.  Sync is rbd_flush().
 *
 * Writers hold RBD's exclusive lock (rbd_lock_acquire(), mode exclusive)
 * from open to close, across every host that reaches the cluster.  A
 * second writer anywhere gets BS_ELOCKED at once; with BS_OPEN_WAIT it
 * retries until the holder closes, up to lock_wait seconds.  A holder that
 * died keeps the lock until the cluster notices (osd_client_watch_timeout,
 * 30 s by default): an open meanwhile waits that long, then librbd breaks
 * the lock and blocklists the dead client.  A writer whose lock was taken
 * from it that way (it was fenced) gets BS_ELOCKED from every later write:
 * it must reopen.  An image without the exclusive-lock feature is refused
 * for writing (BS_EUNSUPPORTED), since nothing would stop a second writer.
 * Readers (BS_OPEN_RDONLY) take no lock.
 *
 * Errors: BS_EINVAL (malformed URI or option), BS_ENOENT (no such pool or
 * image), BS_EIO (the cluster is unreachable or an operation failed or timed
 * out), BS_ELOCKED, BS_ERDONLY, BS_EUNSUPPORTED (librbd cannot be loaded,
 * or the image lacks exclusive-lock), BS_ENOMEM. */
int bs_backend_rbd(const char *uri, unsigned flags, struct bs_backend **out);

/* Registers the URI scheme "rbd" with bs_backend_register(), so that
 * bs_image_open() takes rbd:// URIs.  Loads nothing yet.  Errors: those of
 * bs_backend_register(). */
int bs_rbd_register(void);

#ifdef __cplusplus
}
#endif
#endif
