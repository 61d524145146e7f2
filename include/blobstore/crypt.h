/* blobstore/crypt.h - keys and encrypted entries.
 *
 * An encrypted image holds one random 256-bit data key, stored wrapped
 * (AES-256-GCM) in the library's entry of type "bs.key" under a key
 * derived from a key file or a passphrase.  Entries created with
 * BS_ENTRY_ENCRYPT (blobstore.h) keep AES-256-GCM or ChaCha20-Poly1305
 * ciphertext in their slots; bs_entry_read() and bs_entry_write() decrypt
 * and encrypt transparently once the key is loaded.  See docs/CRYPTO.md for
 * the formats and for what is and is not detected.
 *
 * Key material handed to these functions is copied, the copies are wiped
 * (OPENSSL_cleanse) when released, and no message ever contains it.
 * Conventions: blobstore/blobstore.h.
 */
#ifndef BLOBSTORE_CRYPT_H
#define BLOBSTORE_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A user key: a 32-octet key (from a key file) or a passphrase.  Opaque;
 * release with bs_key_free(), which wipes it. */
typedef struct bs_key bs_key;

/* Exactly 32 octets of key.  Errors: BS_EINVAL, BS_ENOMEM. */
int bs_key_from_bytes(const void *key, size_t len, bs_key **out);
/* A key file: 32 raw octets, or 64 hexadecimal digits optionally followed by
 * one newline.  Errors: BS_EINVAL (NULL, other content), BS_ENOENT, BS_EIO,
 * BS_ENOMEM. */
int bs_key_from_file(const char *path, bs_key **out);
/* A passphrase of LEN octets (1 to 65536; any octets).  Errors: BS_EINVAL,
 * BS_ENOMEM. */
int bs_key_from_passphrase(const void *pw, size_t len, bs_key **out);
/* A passphrase read from a file, or from file descriptor FD until end of
 * file (FD is not closed).  One trailing "\n" or "\r\n" is dropped.
 * Errors: BS_ENOENT, BS_EIO, BS_EINVAL (empty or longer than 65536),
 * BS_ENOMEM. */
int bs_key_from_passphrase_file(const char *path, bs_key **out);
int bs_key_from_passphrase_fd(int fd, bs_key **out);
/* Wipes and frees K. */
void bs_key_free(bs_key *k);

/* How a key becomes a key-encryption key. */
enum bs_kdf {
	BS_KDF_DEFAULT = 0,       /* scrypt for a passphrase */
	BS_KDF_SCRYPT = 1,
	BS_KDF_PBKDF2_SHA256 = 2,
	BS_KDF_HKDF_SHA256 = 3,   /* key files (full entropy): not stretched */
};
/* "scrypt", "pbkdf2-sha256", "hkdf-sha256"; NULL for another value. */
const char *bs_kdf_name(enum bs_kdf k);
/* Errors: BS_EINVAL (unknown name). */
int bs_kdf_parse(const char *name, enum bs_kdf *out);

/* Passphrase stretching.  Zero cost fields take the defaults.  A key from
 * a key file ignores these: HKDF-SHA256 with a fresh salt derives from it. */
struct bs_kdf_params {
	uint32_t version;     /* BS_KDF_PARAMS_VERSION */
	enum bs_kdf kdf;      /* BS_KDF_DEFAULT, BS_KDF_SCRYPT or BS_KDF_PBKDF2_SHA256 */
	uint64_t scrypt_n;    /* cost, a power of two >= 2; default 32768 (2^15) */
	uint32_t scrypt_r;    /* block size; default 8 */
	uint32_t scrypt_p;    /* parallelism; default 1 */
	uint32_t pbkdf2_iter; /* iterations; default 600000 */
};
#define BS_KDF_PARAMS_VERSION 1u
#define BS_KDF_PARAMS_INIT {.version = BS_KDF_PARAMS_VERSION}
#define BS_SCRYPT_N_DEFAULT 32768u
#define BS_SCRYPT_R_DEFAULT 8u
#define BS_SCRYPT_P_DEFAULT 1u
#define BS_PBKDF2_ITER_DEFAULT 600000u

/* What loading a key may cost: ceilings on the KDF costs an image's bs.key
 * asks for.  The costs cannot be authenticated before the derivation runs
 * (they are bound to the wrapped key, which the derived key opens), so an
 * image whose bs.key asks for more than the key's ceilings is refused
 * BEFORE anything is derived, with BS_ELIMIT (never "wrong key").  Zero
 * fields take the defaults, four times the costs the library writes by
 * default (docs/CRYPTO.md).  The hard limits below stay absolute maxima. */
struct bs_kdf_limits {
	uint32_t version;         /* BS_KDF_LIMITS_VERSION */
	uint64_t pbkdf2_iter_max; /* PBKDF2 iterations; default 2400000 */
	uint64_t scrypt_mem_max;  /* octets of scrypt memory, 128*N*r; default 128 MiB */
	uint64_t scrypt_work_max; /* scrypt work N*r*p; default 2^20 */
};
#define BS_KDF_LIMITS_VERSION 1u
#define BS_KDF_LIMITS_INIT {.version = BS_KDF_LIMITS_VERSION}
#define BS_KDF_MAX_ITER_DEFAULT 2400000u           /* 4 x BS_PBKDF2_ITER_DEFAULT */
#define BS_KDF_MAX_MEM_DEFAULT (128ull << 20)      /* 4 x the default 32 MiB */
#define BS_KDF_MAX_WORK_DEFAULT (1ull << 20)       /* 4 x 2^15 * 8 * 1 */
/* Hard limits: no ceiling goes above them, and no image may ask for more. */
#define BS_KDF_ITER_LIMIT 100000000u               /* 10^8 PBKDF2 iterations */
#define BS_KDF_MEM_LIMIT (1ull << 30)              /* 1 GiB of scrypt memory */
#define BS_KDF_SCRYPT_P_LIMIT 16u                  /* scrypt p */
#define BS_KDF_WORK_LIMIT (1ull << 27)             /* N*r*p: 1 GiB / 128 * 16 */

/* Sets the ceilings K accepts when it opens an image (bs_image_set_key())
 * and, so that K can open what it writes, the costs it may write with
 * (bs_image_init_encryption(), bs_image_rekey(): BS_ELIMIT above them).
 * LIM (may be NULL: the defaults) is copied; zero fields take the
 * defaults.  A key from bs_key_from_*() starts with the defaults; a key
 * file's key derives with HKDF and has no cost.
 * Errors: BS_EINVAL (NULL K, unknown version), BS_ELIMIT (a ceiling above
 * its hard limit). */
int bs_key_set_kdf_limits(bs_key *k, const struct bs_kdf_limits *lim);

/* Non-zero when IMG holds a bs.key entry (it was set up for encryption). */
int bs_image_is_encrypted(const bs_image *img);
/* Non-zero when a data key is loaded in this handle. */
int bs_image_has_key(const bs_image *img);

/* Loads the image's data key by unwrapping it with K.  Nothing is
 * decrypted before this succeeds.  The key stays in the handle until
 * bs_image_clear_key() or bs_image_close().
 * Errors: BS_EINVAL, BS_EKEY (wrong key or passphrase; no bs.key entry; a
 * key file given for a passphrase image or the reverse), BS_ECORRUPT
 * (malformed bs.key; encrypted entries and no bs.key entry: it was lost or
 * damaged, and no key can open them), BS_EUNSUPPORTED (unknown KDF or wrap), BS_ELIMIT (KDF
 * cost above K's ceilings, bs_key_set_kdf_limits(), or above the hard
 * limits: refused before anything is derived), BS_EIO, BS_ENOMEM. */
int bs_image_set_key(bs_image *img, const bs_key *k);
/* Shorthands: bs_key_from_file() or bs_key_from_passphrase(), then
 * bs_image_set_key() (with the default ceilings).  Errors: those of both. */
int bs_image_set_key_file(bs_image *img, const char *path);
int bs_image_set_passphrase(bs_image *img, const void *pw, size_t len);
/* Wipes the loaded data key from the handle. */
void bs_image_clear_key(bs_image *img);

/* Sets IMG up for encryption: a fresh random data key, wrapped under K
 * (with PARAMS, may be NULL for the defaults, when K is a passphrase),
 * stored in a new bs.key entry; the data key is then loaded.  Durable on
 * return.  Errors: BS_EINVAL, BS_EEXIST (already set up), BS_ECORRUPT (the
 * image holds encrypted entries but no bs.key entry: a new key could not
 * open them), BS_ERDONLY, BS_ESTALE, BS_ELIMIT (KDF cost above K's ceilings,
 * bs_key_set_kdf_limits(), or the hard limits), BS_ENOSPC, BS_EIO,
 * BS_ENOMEM. */
int bs_image_init_encryption(bs_image *img, const bs_key *k,
			     const struct bs_kdf_params *params);

/* Wraps the loaded data key under NEW_KEY (PARAMS as above) and replaces
 * the bs.key entry by one copy-on-write rewrite: interrupted at any point,
 * the image opens with the old key or with the new one.  Entries are not
 * re-encrypted.  Errors: BS_EKEY (no key loaded), those of
 * bs_image_init_encryption(). */
int bs_image_rekey(bs_image *img, const bs_key *new_key, const struct bs_kdf_params *params);

/* Encrypts the data of the plaintext entry E with the loaded key and
 * CIPHER (BS_CIPHER_DEFAULT: AES-256-GCM), keeping its type, name,
 * attributes, capacity and check.  One copy-on-write rewrite: the new copy
 * is appended holding the sealed value in one slot and zeros in the other;
 * once it is committed, the data area of the plaintext copy (both its
 * slots) is overwritten with zeros and synced, then that copy is deleted.
 * Interrupted, the entry reads as before (plaintext, not converted) or
 * encrypted.  On return no plaintext of its data is left in storage; when
 * power was lost after the commit, the next writer's open deletes the
 * superseded plaintext copy (docs/CRYPTO.md).  E stays valid.
 * An entry encrypted already is BS_OK with nothing written when CIPHER is
 * its cipher or BS_CIPHER_DEFAULT, BS_EINVAL otherwise.
 * Errors: BS_EINVAL (raw entry, the library's own entry, unknown cipher),
 * BS_EKEY (no key loaded, or the image is not set up for encryption),
 * BS_EIO (also: encrypted, but the old copy could not be overwritten;
 * bs_image_compact() removes it), and those of bs_entry_write(). */
int bs_entry_encrypt(bs_entry *e, enum bs_cipher cipher);

/* How the key of IMG is protected.  Errors: BS_EINVAL, BS_ENOENT (not set
 * up for encryption), BS_ECORRUPT (unreadable bs.key). */
int bs_image_kdf(const bs_image *img, enum bs_kdf *out);

#ifdef __cplusplus
}
#endif
#endif
