/* blobstore/tpm.h - the libtpms bridge: a TPM's state kept in a blobstore image.
 *
 * libtpms keeps no files of its own; it asks the application, through the
 * callbacks of TPMLIB_RegisterCallbacks(), to load, store and delete named
 * blobs.  bs_tpm_register() installs callbacks that keep those blobs in
 * entries of one image, through the device API (blobstore/nvram.h) and the store's
 * integrity and encryption layers.
 *
 * Naming contract (shared with `blobstore import-swtpm`/`export-swtpm` and
 * docs/VTPM.md): one TPM per image.  Each blob is one entry of type
 * "tpm2.libtpms" (BS_TPM_TYPE) named after the blob libtpms passes to the
 * callbacks: "permall" (the permanent state: NV, seeds, persistent objects;
 * libtpms stores it on every NV change), "volatilestate" (stored by the
 * application with TPMLIB_VolatileAll_Store(), see
 * bs_tpm_store_volatile()), "savestate" (TPM 1.2 only).  For a
 * tpm_number other than 0 the name is "<number>/<name>".  Entries are
 * slotted (two crash-safe slots, CRC-32C check), or encrypted
 * (BS_ENTRY_ENCRYPT) when the image is set up for encryption and its key is
 * loaded; an image set up for encryption whose key is not loaded gets no new
 * TPM entries at all (BS_EKEY).  A new entry's capacity is max(2 x size,
 * 64 KiB); a larger blob grows it (crash-safe rewrite) to twice its size.
 *
 * "No volatile state" is kept as an empty "volatilestate" value rather than
 * by deleting the entry (a resume consumes it every time; delete and
 * re-create would leave a hole per cycle): bs_tpm_delete() empties it,
 * and bs_tpm_load() reports an empty volatile state as BS_ENOENT.
 *
 * What loaddata returns to libtpms (the rule that keeps a real TPM from
 * being replaced by a fresh one): TPM_RETRY only when the entry does not
 * exist (BS_ENOENT), which makes libtpms manufacture a new TPM; a corrupt,
 * refused (unknown mandatory attribute), undecryptable (no or wrong key) or
 * unreadable entry returns TPM_FAIL, so TPMLIB_MainInit() fails and nothing
 * is overwritten.  storedata returns only after the data is durable
 * (unless the image was opened with BS_OPEN_NOSYNC).
 *
 * libtpms is a process-wide singleton, and so is the bridge: one image at a
 * time, not thread-safe; call everything from the thread that runs libtpms.
 * The public interface uses no libtpms types.  It is a library of its own,
 * libblobstore-tpm (pkg-config blobstore-tpm), so that programs without a
 * TPM do not need libtpms.
 */
#ifndef BLOBSTORE_TPM_H
#define BLOBSTORE_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Entry type of every libtpms blob. */
#define BS_TPM_TYPE "tpm2.libtpms"
/* Blob names libtpms uses (TPM_PERMANENT_ALL_NAME, ...). */
#define BS_TPM_PERMALL "permall"
#define BS_TPM_VOLATILE "volatilestate"
#define BS_TPM_SAVESTATE "savestate"
/* Smallest capacity of a new entry. */
#define BS_TPM_MIN_CAPACITY 65536u
/* Largest blob accepted (libtpms produces at most about 277 KiB). */
#define BS_TPM_MAX_BLOB (4u << 20)

/* The entry name for blob NAME of TPM TPM_NUMBER into BUF ("permall",
 * "3/permall").  Errors: BS_EINVAL (NAME empty or with '/'), BS_ERANGE (CAP
 * too small). */
int bs_tpm_entry_name(uint32_t tpm_number, const char *name, char *buf, size_t cap);

/* Reads blob NAME of TPM TPM_NUMBER into a malloc()ed *OUT (non-NULL even
 * for length 0; the caller frees it).
 * Errors: BS_ENOENT (no such entry, or an empty "volatilestate": the only
 * "does not exist"; an empty "permall" is BS_ECORRUPT in the callbacks),
 * BS_ECORRUPT, BS_EUNSUPPORTED (refused entry), BS_EKEY (encrypted and no
 * or the wrong key), BS_EIO, BS_ENOMEM, BS_EINVAL. */
int bs_tpm_load(bs_image *img, uint32_t tpm_number, const char *name, void **out,
		   size_t *len);

/* Stores DATA/LEN as blob NAME, creating the entry as described above.
 * Durable on return (unless BS_OPEN_NOSYNC).  Crash-safe: interrupted, the
 * blob reads as the old or the new data.
 * Errors: BS_EKEY (image encrypted, key not loaded), BS_ELIMIT (LEN above
 * BS_TPM_MAX_BLOB), those of bs_device_put() and bs_entry_create(). */
int bs_tpm_store(bs_image *img, uint32_t tpm_number, const char *name, const void *data,
		    size_t len);

/* Deletes blob NAME (empties it for "volatilestate", see above).  Errors:
 * BS_ENOENT (only when MUST_EXIST is non-zero), those of bs_entry_delete()
 * and bs_device_put(). */
int bs_tpm_delete(bs_image *img, uint32_t tpm_number, const char *name, int must_exist);

/* Registers the bridge's callbacks with libtpms (TPMLIB_RegisterCallbacks)
 * over IMG, which must stay open until bs_tpm_unregister().  Call it
 * before TPMLIB_MainInit().  Errors: BS_EINVAL, BS_EIO (libtpms refused the
 * callbacks). */
int bs_tpm_register(bs_image *img);

/* Detaches the image: later callbacks fail with TPM_FAIL.  Call it after
 * TPMLIB_Terminate().  Safe when nothing is registered. */
void bs_tpm_unregister(void);

/* The image the callbacks use, or NULL. */
bs_image *bs_tpm_image(void);

/* The locality the callbacks report to libtpms (tpm_io_getlocality); 0
 * after registration.  Errors: BS_EINVAL when LOCALITY > 4. */
int bs_tpm_set_locality(unsigned locality);
unsigned bs_tpm_locality(void);

/* The BS_* code and message of the last callback that failed (BS_OK and ""
 * when none has): libtpms reports only TPM_FAIL, this says why. */
int bs_tpm_last_error(const char **msg);

/* Takes the running TPM's volatile state (TPMLIB_VolatileAll_Store) and
 * stores it as blob "volatilestate" of TPM 0.  Call it while the TPM runs.
 * Errors: BS_EIO (libtpms failed), BS_EINVAL (nothing registered), those
 * of bs_tpm_store(). */
int bs_tpm_store_volatile(void);

/* Staging: blobs held in memory, not in the image, until libtpms has
 * accepted them.  While staging, loaddata serves a staged blob before the
 * image's (a staged "absent" blob is BS_ENOENT, so TPM_RETRY), and storedata,
 * deletename and bs_tpm_store_volatile() change only the staged copies.  A
 * server stages the blobs CMD_SET_STATEBLOB brings (an incoming migration),
 * runs TPMLIB_MainInit() over them, and commits them only when that
 * succeeded: a blob libtpms refuses never replaces the stored state.
 * Staged blobs belong to TPM 0; at most 8 names.
 *
 * bs_tpm_stage_begin() starts staging (nothing staged yet; calling it again
 * keeps what is staged).  bs_tpm_stage_put() stages blob NAME (LEN 0: it does
 * not exist); errors: BS_EINVAL (not staging, bad name), BS_ELIMIT,
 * BS_ENOMEM.  bs_tpm_stage_forget() drops NAME's staged copy so that the
 * image's shows through again.  bs_tpm_stage_commit() writes every staged
 * blob to IMG, each crash-safely (deletions first, then permall, then the
 * rest, so that a crash leaves the old permall without a volatile state or
 * the new permall, never a new permall beside an old volatile state), then
 * ends staging; on an error (those of bs_tpm_store() and bs_tpm_delete())
 * staging goes on with every blob, and a later commit writes them again.  bs_tpm_stage_abort()
 * wipes and drops the staged blobs and ends staging.  bs_tpm_staging() is
 * non-zero while staging.  The trace function sees "stage", "stage delete",
 * "commit store" and "commit delete". */
int bs_tpm_stage_begin(void);
int bs_tpm_stage_put(const char *name, const void *data, size_t len);
int bs_tpm_stage_forget(const char *name);
int bs_tpm_stage_commit(bs_image *img);
void bs_tpm_stage_abort(void);
int bs_tpm_staging(void);

/* Optional observer of the callbacks (for logs): called after each load,
 * store and delete with the operation ("load", "store", "delete"), the
 * entry name, the length and the BS_* result.  NULL removes it. */
typedef void (*bs_tpm_trace_fn)(void *ctx, const char *op, const char *name, size_t len,
				   int result);
void bs_tpm_set_trace(bs_tpm_trace_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
