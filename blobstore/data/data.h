/* data.h - the data layer: what is inside a data area.
 *
 *   crc32c   CRC-32C, the slots' quick check                    crc32c.c
 *   seal     authenticated encryption of slot payloads with a
 *            loaded data key, and the associated data that binds
 *            a payload to its image, entry and generation        seal.c
 *   slots    the two self-validating slots over an image's I/O
 *            view: the newest valid one is current; a replace
 *            writes the other and syncs once                     slots.c
 *
 * A data area is an offset and a length on an I/O view (storage.h); the
 * entry it belongs to is only named, for messages.  Key management (the
 * bs.key entry) sits above the directory; only a loaded key comes here. */
#ifndef BS_DATA_H
#define BS_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "codec/codec.h"
#include "storage/storage.h"

/* ---- CRC-32C (crc32c.c) -------------------------------------------------------- */

uint32_t bs__crc32c(uint32_t crc, const void *data, size_t len);
/* The same through one implementation (1 tables, 2 the crc32 instruction,
 * 3 carry-less multiplication folding), for the tests: false when this
 * CPU does not have it. */
bool bs__crc32c_with(int impl, uint32_t crc, const void *data, size_t len, uint32_t *out);

/* ---- sealing (seal.c) ------------------------------------------------------------- */

#define BS_KEY_LEN 32u

/* A loaded data key: one subkey per cipher, HKDF-SHA256(DEK, salt = image
 * id, info = "blobstore-entry-key-v1 " cipher), and cipher contexts keyed
 * once.  The DEK itself is kept for a rekey.  Wiped when freed. */
struct bs__sealkey;
int bs__sealkey_new(const uint8_t dek[BS_KEY_LEN], const uint8_t id[16],
		    struct bs__sealkey **out);
void bs__sealkey_free(struct bs__sealkey *k);
const uint8_t *bs__sealkey_dek(const struct bs__sealkey *k);

/* What a payload is bound to (docs/CRYPTO.md): the image id, the entry's
 * type and name and its attribute sets (bs.supersedes left out), with the
 * slot generation added per payload. */
struct bs__aad {
	const uint8_t *id;
	const char *type, *name;
	const struct bs__enc_attr *mand, *opt;
	size_t nmand, nopt;
};

/* Everything a slotted area of an encrypted entry needs. */
struct bs__sealctx {
	const struct bs__sealkey *key;
	enum bs_aead aead;
	struct bs__aad aad;
};

/* Seals DATA/LEN of generation GEN into OUT (LEN + BS_AEAD_OVERHEAD
 * octets): nonce | ciphertext | tag. */
int bs__seal(const struct bs__sealctx *sc, uint64_t gen, const void *data, size_t len,
	     uint8_t *out, const struct bs__where *w);
/* Opens IN/IN_LEN of generation GEN into OUT (IN_LEN - BS_AEAD_OVERHEAD
 * octets).  On failure OUT is wiped and BS_ECORRUPT names W and AT. */
int bs__unseal(const struct bs__sealctx *sc, uint64_t gen, const uint8_t *in, size_t in_len,
	       uint8_t *out, const struct bs__where *w, uint64_t at);
/* The mandatory bs.aead attribute of a new entry: SEQUENCE { IA5String
 * cipher, OCTET STRING entry identity (16, fresh) }; *OUT is malloc()ed. */
int bs__seal_attr(enum bs_aead aead, uint8_t **out, size_t *out_len);
const char *bs__aead_name(enum bs_aead aead);

/* Primitives the key management above shares. */
int bs__random(uint8_t *p, size_t n);
int bs__hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		    const char *info, uint8_t *out, size_t out_len);
/* One AES-256-GCM operation with a fresh context; TAG is BS_AEAD_TAG_LEN. */
bool bs__gcm_once(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
		  size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag);

/* Test hooks (tests/unit/test_crypt.c): fixed nonces and entry identities
 * instead of random ones (NULL: random again). */
void bs__crypt_test_fix(const uint8_t *nonce, const uint8_t *entry_id);

/* ---- slots (slots.c) ----------------------------------------------------------- */

/* A slotted data area: two slots of (LEN / 2) octets at OFF, each
 *   generation (8, big-endian) | length (4) | check | data
 * and what the owner knows of them. */
struct bs__slots {
	uint64_t off, len;
	enum bs_check_alg alg;
	int active;   /* the current slot (writers' cache), or -1: unknown */
	uint64_t gen; /* the highest generation seen in either slot */
};

/* Octets a slot's data can hold. */
size_t bs__slot_capacity(const struct bs__slots *s);
/* Fills a fresh area AREA/AREA_LEN with DATA/LEN as generation GEN in slot
 * 0 and an unused slot 1.  BS_EINVAL when it does not fit. */
int bs__slots_init(enum bs_check_alg alg, uint8_t *area, size_t area_len, const void *data,
		   size_t len, uint64_t gen);
void bs__slot_put_header(enum bs_check_alg alg, uint8_t *hdr, uint64_t gen, const void *data,
			 size_t len);

/* Reads the current value: into a malloc()ed *OUT (ALLOC), or into
 * BUF/BUFSIZE (BS_ERANGE with *LEN the length needed when too small).
 * SC (NULL: not encrypted) opens an encrypted payload.  A READER (no
 * lock held) retries a few times when a writer may be mid-write; a writer
 * keeps S->active and S->gen. */
int bs__slot_read(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		  const struct bs__sealctx *sc, bool reader, void **out, size_t *len,
		  uint8_t *buf, size_t bufsize, bool alloc);
/* Replaces the value with DATA/LEN (at most the capacity less the AEAD
 * overhead when SC): writes the other slot, then syncs.  When the write or
 * the sync fails, the slot is withdrawn (its length set to ffffffff, then
 * synced) so that no later reader takes it for current and the last
 * durable value stays current; when that fails too, IO->broken is set. */
int bs__slot_write(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		   const struct bs__sealctx *sc, const void *data, size_t len);
/* The generation a copy-on-write copy of the area starts at: above every
 * generation either slot claims, so old slot copies never pass for new. */
int bs__slot_next_gen(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		      uint64_t *gen);

/* What a check of both slots found. */
struct bs__slot_report {
	uint64_t gen;       /* generation of the current value */
	bool newer_bad;     /* the other slot claims a newer generation and fails */
	int bad_slot;       /* that slot */
	uint64_t bad_gen;   /* and its generation */
	uint64_t bad_off;   /* and where it starts */
};
/* Verifies the current value (and authenticates it with SC when given).
 * Errors as bs__slot_read(); *REP is filled on success. */
int bs__slot_check(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		   const struct bs__sealctx *sc, struct bs__slot_report *rep);

/* What each slot holds, for bs_image_dump(): header fields and whether the slot
 * passes its check; *CURRENT gets the slot a read returns, or -1. */
struct bs__slot_view {
	uint64_t off; /* first octet of the slot header */
	uint64_t gen;
	uint32_t len;
	bool valid;
};
int bs__slot_inspect(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		     struct bs__slot_view v[2], int *current);

#endif
