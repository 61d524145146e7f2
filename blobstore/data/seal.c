/* seal.c - authenticated encryption of slot payloads.
 *
 * An image's data key (DEK, loaded by the key management above the
 * directory) gives one subkey per cipher; each payload is sealed with a
 * fresh nonce and associated data that binds the image identity, the
 * entry's type, name, slot generation and attribute sets, so that no
 * payload can be swapped, moved or replayed into another slot unnoticed.
 * docs/CRYPTO.md has the byte-level formats and the threat model. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "data.h"

static const char aad_magic[] = "blobstore-aead-v1";

#define NALG 2 /* indexed by enum bs_aead - 1 */
static const char *const alg_names[NALG] = {"aes-256-gcm", "chacha20-poly1305"};
static const char *const alg_ossl[NALG] = {"AES-256-GCM", "ChaCha20-Poly1305"};

struct bs__sealkey {
	uint8_t dek[BS_KEY_LEN];
	EVP_CIPHER_CTX *enc[NALG], *dec[NALG]; /* keyed once; a nonce per use */
};

/* ---- test hooks ---------------------------------------------------------- */

static _Thread_local bool fixed_nonce_set, fixed_id_set;
static _Thread_local uint8_t fixed_nonce[BS_AEAD_NONCE_LEN], fixed_id[BS_AEAD_ENTRY_ID_LEN];

void bs__crypt_test_fix(const uint8_t *nonce, const uint8_t *entry_id)
{
	fixed_nonce_set = nonce != NULL;
	if (nonce)
		memcpy(fixed_nonce, nonce, sizeof fixed_nonce);
	fixed_id_set = entry_id != NULL;
	if (entry_id)
		memcpy(fixed_id, entry_id, sizeof fixed_id);
}

/* ---- primitives ------------------------------------------------------------ */

int bs__random(uint8_t *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? BS_OK : BS_EIO;
}

int bs__hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		    const char *info, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM ps[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
		OSSL_PARAM_construct_end(),
	};
	int ok = c && EVP_KDF_derive(c, out, out_len, ps) == 1;
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
	return ok ? BS_OK : BS_ENOMEM;
}

/* Feeds LEN octets through an AEAD context in pieces EVP's int can hold. */
static bool aead_update(EVP_CIPHER_CTX *c, bool enc, uint8_t *out, const uint8_t *in, size_t len)
{
	while (len) {
		int piece = len > (1u << 30) ? (1 << 30) : (int)len, ol;
		if ((enc ? EVP_EncryptUpdate(c, out, &ol, in, piece)
			 : EVP_DecryptUpdate(c, out, &ol, in, piece)) != 1 || ol != piece)
			return false;
		out += piece;
		in += piece;
		len -= (size_t)piece;
	}
	return true;
}

bool bs__gcm_once(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
		  size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ol;
	bool ok = c && aad_len <= INT_MAX &&
		  (enc ? EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, nonce, NULL)
		       : EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), key, nonce, NULL)) == 1;
	if (ok && enc)
		ok = EVP_EncryptUpdate(c, NULL, &ol, aad, (int)aad_len) == 1 &&
		     aead_update(c, true, out, in, len) && EVP_EncryptFinal_ex(c, out + len, &ol) == 1 &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, BS_AEAD_TAG_LEN, tag) == 1;
	else if (ok)
		ok = EVP_DecryptUpdate(c, NULL, &ol, aad, (int)aad_len) == 1 &&
		     aead_update(c, false, out, in, len) &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, BS_AEAD_TAG_LEN, tag) == 1 &&
		     EVP_DecryptFinal_ex(c, out + len, &ol) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

const char *bs__aead_name(enum bs_aead aead)
{
	return aead >= 1 && aead <= NALG ? alg_names[aead - 1] : NULL;
}

/* ---- the loaded data key ---------------------------------------------------- */

void bs__sealkey_free(struct bs__sealkey *k)
{
	if (!k)
		return;
	for (int i = 0; i < NALG; i++) {
		EVP_CIPHER_CTX_free(k->enc[i]);
		EVP_CIPHER_CTX_free(k->dec[i]);
	}
	OPENSSL_cleanse(k->dek, sizeof k->dek);
	free(k);
}

int bs__sealkey_new(const uint8_t dek[BS_KEY_LEN], const uint8_t id[16], struct bs__sealkey **out)
{
	struct bs__sealkey *k = calloc(1, sizeof *k);
	if (!k)
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	memcpy(k->dek, dek, BS_KEY_LEN);
	int rc = BS_OK;
	for (int i = 0; i < NALG && !rc; i++) {
		uint8_t sub[BS_KEY_LEN];
		char info[64];
		snprintf(info, sizeof info, "blobstore-entry-key-v1 %s", alg_names[i]);
		EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, alg_ossl[i], NULL);
		k->enc[i] = EVP_CIPHER_CTX_new();
		k->dec[i] = EVP_CIPHER_CTX_new();
		if (!ciph || !k->enc[i] || !k->dec[i] ||
		    bs__hkdf_sha256(dek, BS_KEY_LEN, id, 16, info, sub, sizeof sub) ||
		    EVP_EncryptInit_ex2(k->enc[i], ciph, sub, NULL, NULL) != 1 ||
		    EVP_DecryptInit_ex2(k->dec[i], ciph, sub, NULL, NULL) != 1)
			rc = bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "cannot set up %s (libcrypto)",
				       alg_names[i]);
		OPENSSL_cleanse(sub, sizeof sub);
		EVP_CIPHER_free(ciph);
	}
	if (rc) {
		bs__sealkey_free(k);
		return rc;
	}
	*out = k;
	return BS_OK;
}

const uint8_t *bs__sealkey_dek(const struct bs__sealkey *k)
{
	return k->dek;
}

/* ---- associated data ---------------------------------------------------------- */

/* The associated data (docs/CRYPTO.md):
 *   "blobstore-aead-v1" | image id (16) | u16 type length | type |
 *   u8 name present | [u32 name length | name] | u64 generation |
 *   u16 count | (u32 length | attribute DER)* for the mandatory set, then the
 *   same for the optional set, bs.supersedes left out (a rewrite adds it and
 *   compaction drops it; it names a position, not content).
 * All integers big-endian.  Length prefixes keep every field apart. */
static int aad_build(const struct bs__aad *a, uint64_t gen, uint8_t **out, size_t *out_len)
{
	size_t tl = strlen(a->type), nl = a->name ? strlen(a->name) : 0;
	size_t n = sizeof aad_magic - 1 + 16 + 2 + tl + 1 + (a->name ? 4 + nl : 0) + 8 + 4;
	for (size_t i = 0; i < a->nmand; i++)
		n += 4 + a->mand[i].len;
	for (size_t i = 0; i < a->nopt; i++)
		n += 4 + a->opt[i].len;
	uint8_t *b = malloc(n), *p = b;
	if (!b)
		return BS_ENOMEM;
	memcpy(p, aad_magic, sizeof aad_magic - 1);
	p += sizeof aad_magic - 1;
	memcpy(p, a->id, 16);
	p += 16;
	bs_put_be16(p, (uint16_t)tl);
	memcpy(p + 2, a->type, tl);
	p += 2 + tl;
	*p++ = a->name ? 1 : 0;
	if (a->name) {
		bs_put_be32(p, (uint32_t)nl);
		memcpy(p + 4, a->name, nl);
		p += 4 + nl;
	}
	bs_put_be64(p, gen);
	p += 8;
	for (int set = 0; set < 2; set++) {
		const struct bs__enc_attr *at = set ? a->opt : a->mand;
		size_t na = set ? a->nopt : a->nmand;
		uint8_t *count = p;
		size_t k = 0;
		p += 2;
		for (size_t i = 0; i < na; i++) {
			if (set && bs__attr_named(at[i].tlv, at[i].len, BS_ATTR_SUPERSEDES))
				continue;
			bs_put_be32(p, (uint32_t)at[i].len);
			memcpy(p + 4, at[i].tlv, at[i].len);
			p += 4 + at[i].len;
			k++;
		}
		bs_put_be16(count, (uint16_t)k);
	}
	*out = b;
	*out_len = (size_t)(p - b);
	return BS_OK;
}

/* ---- sealing and opening ------------------------------------------------------ */

int bs__seal(const struct bs__sealctx *sc, uint64_t gen, const void *data, size_t len,
	     uint8_t *out, const struct bs__where *w)
{
	uint8_t *aad;
	size_t aad_len;
	if (aad_build(&sc->aad, gen, &aad, &aad_len))
		return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	EVP_CIPHER_CTX *c = sc->key->enc[sc->aead - 1];
	uint8_t *nonce = out, *ct = out + BS_AEAD_NONCE_LEN, *tag = ct + len;
	int ol, rc = BS_OK;
	if (fixed_nonce_set)
		memcpy(nonce, fixed_nonce, BS_AEAD_NONCE_LEN);
	else if (bs__random(nonce, BS_AEAD_NONCE_LEN))
		rc = bs__error(w, BS_NO_OFFSET, BS_EIO, "no random numbers for a nonce");
	if (!rc && (EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL) != 1 ||
		    (aad_len > INT_MAX || EVP_EncryptUpdate(c, NULL, &ol, aad, (int)aad_len) != 1) ||
		    !aead_update(c, true, ct, data, len) || EVP_EncryptFinal_ex(c, tag, &ol) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, BS_AEAD_TAG_LEN, tag) != 1))
		rc = bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "encryption failed (libcrypto)");
	free(aad);
	return rc;
}

int bs__unseal(const struct bs__sealctx *sc, uint64_t gen, const uint8_t *in, size_t in_len,
	       uint8_t *out, const struct bs__where *w, uint64_t at)
{
	if (in_len < BS_AEAD_OVERHEAD)
		return bs__error(w, at, BS_ECORRUPT, "encrypted slot too short");
	size_t len = in_len - BS_AEAD_OVERHEAD;
	const uint8_t *nonce = in, *ct = in + BS_AEAD_NONCE_LEN, *tag = ct + len;
	uint8_t *aad;
	size_t aad_len;
	if (aad_build(&sc->aad, gen, &aad, &aad_len))
		return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	EVP_CIPHER_CTX *c = sc->key->dec[sc->aead - 1];
	int ol;
	bool ok = EVP_DecryptInit_ex2(c, NULL, NULL, nonce, NULL) == 1 && aad_len <= INT_MAX &&
		  EVP_DecryptUpdate(c, NULL, &ol, aad, (int)aad_len) == 1 &&
		  aead_update(c, false, out, ct, len) &&
		  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, BS_AEAD_TAG_LEN, (void *)tag) == 1 &&
		  EVP_DecryptFinal_ex(c, out + len, &ol) == 1;
	free(aad);
	if (!ok) {
		/* Never let unauthenticated plaintext reach a caller. */
		OPENSSL_cleanse(out, len);
		return bs__error(w, at, BS_ECORRUPT,
				 "authentication failed (tampered, moved or replayed)");
	}
	return BS_OK;
}

int bs__seal_attr(enum bs_aead aead, uint8_t **out, size_t *out_len)
{
	const char *alg = alg_names[aead - 1];
	size_t al = strlen(alg);
	/* SEQUENCE { IA5String algorithm, OCTET STRING entry identity } */
	uint8_t v[2 + 2 + 17 + 2 + BS_AEAD_ENTRY_ID_LEN];
	size_t inner = 2 + al + 2 + BS_AEAD_ENTRY_ID_LEN;
	v[0] = DER_SEQUENCE;
	v[1] = (uint8_t)inner;
	v[2] = DER_IA5STRING;
	v[3] = (uint8_t)al;
	memcpy(v + 4, alg, al);
	v[4 + al] = DER_OCTET_STRING;
	v[5 + al] = BS_AEAD_ENTRY_ID_LEN;
	/* A fresh identity per entry: an entry deleted and created again under
	 * the same type and name cannot take the old one's ciphertext. */
	if (fixed_id_set)
		memcpy(v + 6 + al, fixed_id, BS_AEAD_ENTRY_ID_LEN);
	else if (bs__random(v + 6 + al, BS_AEAD_ENTRY_ID_LEN))
		return bs__error(NULL, BS_NO_OFFSET, BS_EIO, "no random numbers");
	if (bs__attr_encode(BS_ATTR_AEAD, v, 2 + inner, out, out_len))
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	return BS_OK;
}
