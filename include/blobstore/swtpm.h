/* blobstore/swtpm.h - swtpm's state blobs: decode and encode the files of
 * swtpm's directory backend, and swtpm's state keys.
 *
 * swtpm keeps one file per libtpms blob in its state directory
 * ("tpm2-00.permall", "tpm2-00.volatilestate", "tpm2-00.savestate").
 * Each file is a blob (docs/SWTPM.md has the byte layout):
 *   version 2 (swtpm since 2018): a 10-octet header {version, min_version,
 *     hdrsize, flags, totlen} followed by tag-length-value records: the
 *     plain data, or AES-CBC ciphertext, an HMAC-SHA256 over ciphertext and
 *     IV, and the IV;
 *   version 1: the same header with version 1, or no header at all (swtpm
 *     before 2018), followed by the plain data, or by AES-CBC ciphertext
 *     (zero IV) of SHA-256(data) || data.
 * The decoder checks every length against the file and names the file
 * (LABEL) and the byte offset of what is wrong in bs_error_last().  Nothing
 * decrypted is returned unless the HMAC (version 2) or the hash (version 1)
 * matched; a mismatch is BS_EKEY.
 *
 * In an image, the libtpms bridge and 'blobstore import-swtpm' keep one TPM
 * per image: one slotted entry per blob, of type BS_SWTPM_ENTRY_TYPE,
 * named after the libtpms blob ("permall", ...), holding the plain libtpms
 * blob (encrypted by the image's own layer when the image has a key).
 *
 * Conventions: blobstore/blobstore.h; decoded plaintext buffers are released
 * with bs_swtpm_free(), which wipes them. */
#ifndef BLOBSTORE_SWTPM_H
#define BLOBSTORE_SWTPM_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The image side of the mapping (shared with the libtpms bridge). */
#define BS_SWTPM_ENTRY_TYPE "tpm2.libtpms"
#define BS_SWTPM_MIN_CAPACITY 65536u /* capacity = max(2 * size, this) */

/* Largest blob (file) accepted or produced: libtpms' largest state is
 * about 277 KB, so this leaves ample room while bounding allocations. */
#define BS_SWTPM_MAX_BLOB (16u << 20)

/* Blob header (all numbers big-endian). */
#define BS_SWTPM_HDR_LEN 10u
#define BS_SWTPM_FLAG_ENCRYPTED 0x01u
#define BS_SWTPM_FLAG_256BIT_KEY 0x08u

/* An AES-CBC state key as swtpm uses it: 16 (aes-128-cbc) or 32
 * (aes-256-cbc) octets; the same key is the HMAC key. */
struct bs_swtpm_key {
	uint32_t version; /* BS_SWTPM_KEY_VERSION */
	uint8_t bytes[32];
	size_t len;
};
#define BS_SWTPM_KEY_VERSION 1u
#define BS_SWTPM_KEY_INIT {.version = BS_SWTPM_KEY_VERSION}

/* Key file formats of swtpm's --key file=...,format=... */
#define BS_SWTPM_KEY_HEX 0    /* optional "0x", 32 or 64 hex digits, optional whitespace */
#define BS_SWTPM_KEY_BINARY 1 /* exactly 16 or 32 raw octets */

/* Parses the content of a key file.  KEYLEN 0 takes the length the file
 * gives; 16 or 32 requires it.  Errors: BS_EINVAL (naming what is wrong,
 * never showing key material). */
int bs_swtpm_key_parse(const void *content, size_t len, int format, size_t keylen,
			  struct bs_swtpm_key *out);

/* Passphrase KDFs of swtpm's --key pwdfile=...,kdf=... */
#define BS_SWTPM_KDF_PBKDF2 0 /* PBKDF2-HMAC-SHA512, salt "swtpm", 1000 iterations */
#define BS_SWTPM_KDF_SHA512 1 /* the first KEYLEN octets of SHA-512(passphrase) */

/* Derives the key swtpm derives from passphrase PW/LEN (the pwdfile's
 * content, all of it: swtpm strips no newline).  KEYLEN is 16 or 32.
 * Errors: BS_EINVAL. */
int bs_swtpm_key_from_passphrase(const void *pw, size_t len, int kdf, size_t keylen,
				    struct bs_swtpm_key *out);

/* Wipes K. */
void bs_swtpm_key_wipe(struct bs_swtpm_key *k);

/* What a blob is. */
struct bs_swtpm_blob_info {
	uint32_t version;  /* BS_SWTPM_BLOB_INFO_VERSION */
	unsigned blob_version; /* 1 or 2 */
	int has_header;    /* 0: a headerless version-1 file */
	uint16_t flags;    /* header flags (0 without a header) */
	int encrypted;     /* headerless: unknown before decoding, reported as
			      the caller's choice (a key given or not) */
	size_t keylen;     /* key octets an encrypted version-2 blob needs
			      (16 or 32); 0 when the blob does not say */
	size_t data_len;   /* version 2 plain: the data length; else 0 */
};
#define BS_SWTPM_BLOB_INFO_VERSION 1u
#define BS_SWTPM_BLOB_INFO_INIT {.version = BS_SWTPM_BLOB_INFO_VERSION}

/* Flags of bs_swtpm_blob_decode(). */
#define BS_SWTPM_HEADERLESS 0x01u /* accept a file without a valid header
					as a version-1 payload (what swtpm up
					to 0.7 did); else such a file is
					BS_ECORRUPT */

/* Reads the header and the record structure of BLOB/LEN without a key.
 * LABEL (may be NULL) names the blob in messages.  Errors: those of
 * bs_swtpm_blob_decode() except BS_EKEY. */
int bs_swtpm_blob_inspect(const void *blob, size_t len, unsigned flags, const char *label,
			     struct bs_swtpm_blob_info *info);

/* Decodes BLOB/LEN into the libtpms data, in a malloc()ed *OUT (non-NULL
 * even when empty) of *OUT_LEN octets.  KEY (may be NULL) decrypts an
 * encrypted blob; a headerless file is decrypted exactly when KEY is given.
 * INFO (may be NULL) receives what the blob is.
 * Errors: BS_ECORRUPT (malformed: message names LABEL and the offset),
 * BS_EUNSUPPORTED (a newer header version, unknown flags or records),
 * BS_EKEY (encrypted and no key, a key of the wrong size, or the HMAC or
 * hash does not match: wrong key or tampered data), BS_ELIMIT (larger than
 * BS_SWTPM_MAX_BLOB), BS_ENOMEM. */
int bs_swtpm_blob_decode(const void *blob, size_t len, const struct bs_swtpm_key *key,
			    unsigned flags, const char *label, uint8_t **out, size_t *out_len,
			    struct bs_swtpm_blob_info *info);

/* Encodes DATA/LEN (DATA may be NULL when LEN is 0) as a version-2 blob
 * that swtpm loads: plain, or encrypted under KEY (non-NULL) exactly as
 * swtpm's --key writes it (fresh random IV).  A plain blob is a pure
 * function of the data.  *OUT is malloc()ed.
 * Errors: BS_EINVAL (key size), BS_ELIMIT, BS_ENOMEM, BS_EIO (no random
 * octets). */
int bs_swtpm_blob_encode(const void *data, size_t len, const struct bs_swtpm_key *key,
			    uint8_t **out, size_t *out_len);

/* ---- state blobs on swtpm's control channel ----------------------------------
 * What CMD_GET_STATEBLOB answers and CMD_SET_STATEBLOB takes (what QEMU
 * carries in a migration stream): a version-2 header with flag 0x04
 * (migration data), then either one record of tag 4 holding the inner
 * layer, or, under a migration key (--migration-key), flags 0x02 (and 0x10
 * for a 256-bit key) and records 5 (AES-CBC ciphertext of the inner layer,
 * padded to a multiple of the key length), 3 (HMAC-SHA256 over ciphertext
 * and IV) and 7 (an IV as long as the key).  The inner layer is a state
 * file's body: record 1 (the libtpms blob), or records 2, 3 and 6 under
 * swtpm's state key (header flags 0x01, 0x08). */
#define BS_SWTPM_FLAG_MIGRATION_ENCRYPTED 0x02u
#define BS_SWTPM_FLAG_MIGRATION_DATA 0x04u
#define BS_SWTPM_FLAG_MIGRATION_256BIT_KEY 0x10u

/* Frames the libtpms blob DATA/LEN (DATA may be NULL when LEN is 0) as swtpm
 * sends it: plain, or encrypted under MIGKEY (may be NULL; fresh random IV).
 * *OUT is malloc()ed.  Errors: BS_EINVAL, BS_ELIMIT, BS_ENOMEM, BS_EIO. */
int bs_swtpm_wire_encode(const void *data, size_t len, const struct bs_swtpm_key *migkey,
			 uint8_t **out, size_t *out_len);

/* What bs_swtpm_wire_decode() found. */
#define BS_SWTPM_WIRE_BARE 0      /* no swtpm header: the bare libtpms blob */
#define BS_SWTPM_WIRE_V1 1        /* a version-1 header, then the data */
#define BS_SWTPM_WIRE_PLAIN 2     /* version 2, a migration data record */
#define BS_SWTPM_WIRE_ENCRYPTED 3 /* version 2, under the migration key */
#define BS_SWTPM_WIRE_FILE 4      /* version 2 without migration flags: a state file */

/* Takes the libtpms blob out of BLOB/LEN in any of the forms above into a
 * malloc()ed *OUT (non-NULL even when empty; release with bs_swtpm_free()).
 * A blob without a valid swtpm header is taken as a bare libtpms blob.
 * MIGKEY and STATEKEY (may be NULL) decrypt the migration and the state-key
 * layers; nothing decrypted is returned unless its HMAC matched.  LABEL (may
 * be NULL) names the blob in messages.  *KIND (may be NULL) gets a
 * BS_SWTPM_WIRE_* value.
 * Errors: BS_ECORRUPT (malformed: the message gives the offset),
 * BS_EUNSUPPORTED (a newer version, unknown flags or records), BS_EKEY
 * (encrypted and no key, a key of the wrong size, or an HMAC mismatch),
 * BS_ELIMIT, BS_ENOMEM, BS_EINVAL. */
int bs_swtpm_wire_decode(const void *blob, size_t len, const struct bs_swtpm_key *migkey,
			 const struct bs_swtpm_key *statekey, const char *label, uint8_t **out,
			 size_t *out_len, int *kind);

/* Wipes and frees a decoded buffer.  NULL is a no-op. */
void bs_swtpm_free(void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
