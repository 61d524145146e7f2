/* crypt.c - the encryption layer: user keys, the wrapped data key in the
 * "bs.key" entry, and the sealing and opening of encrypted slot payloads.
 *
 * Envelope: a random 256-bit data key (DEK) per image, wrapped with
 * AES-256-GCM under a key-encryption key (KEK).  The KEK comes from a key
 * file through HKDF-SHA256, or from a passphrase through scrypt or
 * PBKDF2-SHA256; the KDF, its parameters and salt sit in the bs.key entry
 * and are authenticated with the wrapped key.  Entry payloads are sealed
 * with per-algorithm subkeys derived from the DEK; the associated data binds
 * the image identity, the entry's type, name, slot generation and attribute
 * sets.  docs/CRYPTO.md has the byte-level formats and the threat model. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "internal.h"
#include "blobstore_crypt.h"

#define KEY_LEN 32u
#define SALT_LEN 32u
#define MAX_SALT_LEN 64u
#define MAX_PASSPHRASE 65536u
#define WRAPPED_LEN (KEY_LEN + BS_AEAD_TAG_LEN)
/* Costs a hostile image may ask for before the KDF refuses: 1 GiB of
 * scrypt memory, 10^8 PBKDF2 iterations. */
#define MAX_SCRYPT_MEM (1ull << 30)
#define MAX_SCRYPT_P 16u
#define MAX_PBKDF2_ITER 100000000u

#define ATTR_KDF "bs.kdf"
#define ATTR_WRAP "bs.wrap"

static const char aad_magic[] = "blobstore-aead-v1";
static const char wrap_magic[] = "blobstore-key-v1";

enum key_kind { KEY_RAW = 1, KEY_PASSPHRASE };

struct bs_key {
	enum key_kind kind;
	size_t len;
	uint8_t *p;
};

#define NALG 2 /* indexed by enum bs_aead - 1 */

struct bs_crypt {
	uint8_t dek[KEY_LEN];
	EVP_CIPHER_CTX *enc[NALG], *dec[NALG]; /* keyed once; a nonce per use */
};

static const char *const alg_names[NALG] = {"aes-256-gcm", "chacha20-poly1305"};
static const char *const alg_ossl[NALG] = {"AES-256-GCM", "ChaCha20-Poly1305"};

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

static int random_bytes(uint8_t *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? BS_OK : BS_EIO;
}

/* ---- small helpers ------------------------------------------------------- */

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static int hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
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

/* ---- user keys ----------------------------------------------------------- */

static int key_new(enum key_kind kind, const void *p, size_t len, bs_key **out)
{
	*out = NULL;
	bs_key *k = calloc(1, sizeof *k);
	uint8_t *b = malloc(len ? len : 1);
	if (!k || !b) {
		free(k);
		free(b);
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	memcpy(b, p, len);
	k->kind = kind;
	k->len = len;
	k->p = b;
	*out = k;
	return BS_OK;
}

void bs_key_free(bs_key *k)
{
	if (!k)
		return;
	OPENSSL_cleanse(k->p, k->len);
	free(k->p);
	free(k);
}

int bs_key_from_bytes(const void *key, size_t len, bs_key **out)
{
	*out = NULL;
	if (!key || len != KEY_LEN)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "a key has exactly %u octets",
			       KEY_LEN);
	return key_new(KEY_RAW, key, len, out);
}

int bs_key_from_passphrase(const void *pw, size_t len, bs_key **out)
{
	*out = NULL;
	if (!pw || len == 0 || len > MAX_PASSPHRASE)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "a passphrase has 1 to %u octets", MAX_PASSPHRASE);
	return key_new(KEY_PASSPHRASE, pw, len, out);
}

/* Reads FD to its end into a buffer of at most MAX octets (wiped and
 * freed by the caller).  LABEL names the source in messages. */
static int read_all(int fd, const char *label, size_t max, uint8_t **out, size_t *len)
{
	uint8_t *b = malloc(max + 1);
	size_t n = 0;
	if (!b)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	for (;;) {
		ssize_t r = read(fd, b + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			OPENSSL_cleanse(b, n);
			free(b);
			return bs__errno(label, err, BS_NO_OFFSET, "read");
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			OPENSSL_cleanse(b, n);
			free(b);
			return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL,
				       "%s: longer than %zu octets", label, max);
		}
	}
	*out = b;
	*len = n;
	return BS_OK;
}

static int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	if (!path)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no file given");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bs__errno(path, errno, BS_NO_OFFSET, "open");
	int rc = read_all(fd, path, max, out, len);
	close(fd);
	return rc;
}

int bs_key_from_file(const char *path, bs_key **out)
{
	*out = NULL;
	uint8_t *b;
	size_t n;
	int rc = read_file(path, 2 * KEY_LEN + 2, &b, &n);
	if (rc)
		return rc;
	uint8_t key[KEY_LEN];
	size_t hexlen = n;
	if (hexlen == 2 * KEY_LEN + 1 && b[hexlen - 1] == '\n')
		hexlen--;
	else if (hexlen == 2 * KEY_LEN + 2 && b[hexlen - 2] == '\r' && b[hexlen - 1] == '\n')
		hexlen -= 2;
	if (n == KEY_LEN) {
		memcpy(key, b, KEY_LEN);
	} else if (hexlen == 2 * KEY_LEN) {
		for (size_t i = 0; i < KEY_LEN; i++) {
			int hi = bs__hexval(b[2 * i]), lo = bs__hexval(b[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				rc = BS_EINVAL;
				break;
			}
			key[i] = (uint8_t)(hi << 4 | lo);
		}
	} else {
		rc = BS_EINVAL;
	}
	OPENSSL_cleanse(b, n);
	free(b);
	if (!rc)
		rc = key_new(KEY_RAW, key, KEY_LEN, out);
	else
		rc = bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL,
			     "%s: a key file holds 32 raw octets or 64 hexadecimal digits", path);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

static int passphrase_from(uint8_t *b, size_t n, const char *label, bs_key **out)
{
	size_t len = n;
	if (len && b[len - 1] == '\n') {
		len--;
		if (len && b[len - 1] == '\r')
			len--;
	}
	int rc = len ? key_new(KEY_PASSPHRASE, b, len, out)
		     : bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "%s: empty passphrase", label);
	OPENSSL_cleanse(b, n);
	free(b);
	return rc;
}

int bs_key_from_passphrase_file(const char *path, bs_key **out)
{
	*out = NULL;
	uint8_t *b;
	size_t n;
	int rc = read_file(path, MAX_PASSPHRASE + 2, &b, &n);
	return rc ? rc : passphrase_from(b, n, path, out);
}

int bs_key_from_passphrase_fd(int fd, bs_key **out)
{
	*out = NULL;
	uint8_t *b;
	size_t n;
	char label[32];
	snprintf(label, sizeof label, "file descriptor %d", fd);
	int rc = read_all(fd, label, MAX_PASSPHRASE + 2, &b, &n);
	return rc ? rc : passphrase_from(b, n, label, out);
}

/* ---- the loaded data key ------------------------------------------------- */

void bs__crypt_free(struct bs_crypt *c)
{
	if (!c)
		return;
	for (int i = 0; i < NALG; i++) {
		EVP_CIPHER_CTX_free(c->enc[i]);
		EVP_CIPHER_CTX_free(c->dec[i]);
	}
	OPENSSL_cleanse(c->dek, sizeof c->dek);
	free(c);
}

/* Builds the handle's context from a data key: one subkey per algorithm,
 * HKDF-SHA256(DEK, salt = image id, info = "blobstore-entry-key-v1 " alg). */
static int crypt_load(bs_image *img, const uint8_t dek[KEY_LEN])
{
	struct bs_crypt *c = calloc(1, sizeof *c);
	if (!c)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	memcpy(c->dek, dek, KEY_LEN);
	int rc = BS_OK;
	for (int i = 0; i < NALG && !rc; i++) {
		uint8_t sub[KEY_LEN];
		char info[64];
		snprintf(info, sizeof info, "blobstore-entry-key-v1 %s", alg_names[i]);
		EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, alg_ossl[i], NULL);
		c->enc[i] = EVP_CIPHER_CTX_new();
		c->dec[i] = EVP_CIPHER_CTX_new();
		if (!ciph || !c->enc[i] || !c->dec[i] ||
		    hkdf_sha256(dek, KEY_LEN, img->id, sizeof img->id, info, sub, sizeof sub) ||
		    EVP_EncryptInit_ex2(c->enc[i], ciph, sub, NULL, NULL) != 1 ||
		    EVP_DecryptInit_ex2(c->dec[i], ciph, sub, NULL, NULL) != 1)
			rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM,
				     "cannot set up %s (libcrypto)", alg_names[i]);
		OPENSSL_cleanse(sub, sizeof sub);
		EVP_CIPHER_free(ciph);
	}
	if (rc) {
		bs__crypt_free(c);
		return rc;
	}
	bs__crypt_free(img->crypt);
	img->crypt = c;
	return BS_OK;
}

int bs__crypt_test_set_dek(bs_image *img, const uint8_t *dek)
{
	return crypt_load(img, dek);
}

void bs_image_forget_key(bs_image *img)
{
	if (!img)
		return;
	bs__crypt_free(img->crypt);
	img->crypt = NULL;
}

int bs_image_key_loaded(const bs_image *img)
{
	return img && img->crypt != NULL;
}

static bs_entry *key_entry(const bs_image *img)
{
	for (size_t i = 0; i < img->count; i++) {
		bs_entry *e = img->list[i];
		if (e->m && e->m->type && !strcmp(e->m->type, BS_TYPE_KEY) && !e->m->name)
			return e;
	}
	return NULL;
}

int bs_image_encrypted(const bs_image *img)
{
	return img && key_entry(img) != NULL;
}

int bs__crypt_ready(bs_image *img, const bs_entry *e)
{
	if (img->crypt)
		return BS_OK;
	if (!key_entry(img))
		return bs__err(img, e, BS_NO_OFFSET, BS_EKEY,
			       "no key: the image is not set up for encryption (blobstore encrypt-init)");
	return bs__err(img, e, BS_NO_OFFSET, BS_EKEY,
		       e ? "entry is encrypted and no key is loaded (give a key file or passphrase)"
			 : "no key is loaded (give a key file or passphrase)");
}

const char *bs_entry_cipher(const bs_entry *e)
{
	return e && e->aead ? alg_names[e->aead - 1] : NULL;
}

/* ---- sealing and opening payloads ---------------------------------------- */

/* Decodes an attribute encoding's name and tells whether it is NAME. */
static bool attr_named(const uint8_t *tlv, size_t len, const char *name)
{
	struct der_tlv t;
	if (der_header(tlv, len, &t))
		return false;
	const uint8_t *c = tlv + t.hdr;
	if (t.tag == DER_SEQUENCE) {
		struct der_tlv n;
		if (der_header(c, t.len, &n) || n.tag != DER_IA5STRING)
			return false;
		c += n.hdr;
		t.len = n.len;
	} else if (t.tag != DER_IA5STRING) {
		return false;
	}
	return t.len == strlen(name) && !memcmp(c, name, t.len);
}

/* The associated data (docs/CRYPTO.md):
 *   "blobstore-aead-v1" | image id (16) | u16 type length | type |
 *   u8 name present | [u32 name length | name] | u64 generation |
 *   u16 count | (u32 length | attribute DER)* for the mandatory set, then the
 *   same for the optional set, bs.supersedes left out (a rewrite adds it and
 *   compaction drops it; it names a position, not content).
 * All integers big-endian.  Length prefixes keep every field apart. */
static int aad_build(const bs_image *img, const char *type, const char *name, uint64_t gen,
		     const struct enc_attr *mand, size_t nmand, const struct enc_attr *opt,
		     size_t nopt, uint8_t **out, size_t *out_len)
{
	size_t tl = strlen(type), nl = name ? strlen(name) : 0;
	size_t n = sizeof aad_magic - 1 + 16 + 2 + tl + 1 + (name ? 4 + nl : 0) + 8 + 4;
	for (size_t i = 0; i < nmand; i++)
		n += 4 + mand[i].len;
	for (size_t i = 0; i < nopt; i++)
		n += 4 + opt[i].len;
	uint8_t *b = malloc(n), *p = b;
	if (!b)
		return BS_ENOMEM;
	memcpy(p, aad_magic, sizeof aad_magic - 1);
	p += sizeof aad_magic - 1;
	memcpy(p, img->id, 16);
	p += 16;
	put_be(p, tl, 2);
	memcpy(p + 2, type, tl);
	p += 2 + tl;
	*p++ = name ? 1 : 0;
	if (name) {
		put_be(p, nl, 4);
		memcpy(p + 4, name, nl);
		p += 4 + nl;
	}
	put_be(p, gen, 8);
	p += 8;
	for (int set = 0; set < 2; set++) {
		const struct enc_attr *a = set ? opt : mand;
		size_t na = set ? nopt : nmand;
		uint8_t *count = p;
		size_t k = 0;
		p += 2;
		for (size_t i = 0; i < na; i++) {
			if (set && attr_named(a[i].tlv, a[i].len, BS_ATTR_SUPERSEDES))
				continue;
			put_be(p, a[i].len, 4);
			memcpy(p + 4, a[i].tlv, a[i].len);
			p += 4 + a[i].len;
			k++;
		}
		put_be(count, k, 2);
	}
	*out = b;
	*out_len = (size_t)(p - b);
	return BS_OK;
}

/* The associated data of an existing entry, from its stored attribute sets. */
static int aad_entry(const bs_image *img, const bs_entry *e, uint64_t gen, uint8_t **out,
		     size_t *out_len)
{
	const struct bs_meta *m = e->m;
	size_t na = m->nmand + m->nopt;
	struct enc_attr *a = malloc((na ? na : 1) * sizeof *a);
	if (!a)
		return BS_ENOMEM;
	for (size_t i = 0; i < na; i++) {
		a[i].tlv = m->attrs[i].tlv;
		a[i].len = m->attrs[i].tlv_len;
	}
	int rc = aad_build(img, m->type, m->name, gen, a, m->nmand, a + m->nmand, m->nopt, out,
			   out_len);
	free(a);
	return rc;
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

static int seal(bs_image *img, enum bs_aead aead, const uint8_t *aad, size_t aad_len,
		const void *data, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c = img->crypt->enc[aead - 1];
	uint8_t *nonce = out, *ct = out + BS_AEAD_NONCE_LEN, *tag = ct + len;
	int ol;
	if (fixed_nonce_set)
		memcpy(nonce, fixed_nonce, BS_AEAD_NONCE_LEN);
	else if (random_bytes(nonce, BS_AEAD_NONCE_LEN))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EIO, "no random numbers for a nonce");
	if (EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL) != 1 ||
	    (aad_len > INT_MAX || EVP_EncryptUpdate(c, NULL, &ol, aad, (int)aad_len) != 1) ||
	    !aead_update(c, true, ct, data, len) || EVP_EncryptFinal_ex(c, tag, &ol) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, BS_AEAD_TAG_LEN, tag) != 1)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "encryption failed (libcrypto)");
	return BS_OK;
}

int bs__crypt_seal_parts(bs_image *img, enum bs_aead aead, const char *type, const char *name,
			 const struct enc_attr *mand, size_t nmand, const struct enc_attr *opt,
			 size_t nopt, uint64_t gen, const void *data, size_t len, uint8_t *out)
{
	int rc = bs__crypt_ready(img, NULL);
	if (rc)
		return rc;
	uint8_t *aad;
	size_t aad_len;
	if (aad_build(img, type, name, gen, mand, nmand, opt, nopt, &aad, &aad_len))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	rc = seal(img, aead, aad, aad_len, data, len, out);
	free(aad);
	return rc;
}

int bs__crypt_seal(bs_image *img, const bs_entry *e, uint64_t gen, const void *data,
		   size_t len, uint8_t *out)
{
	int rc = bs__crypt_ready(img, e);
	if (rc)
		return rc;
	uint8_t *aad;
	size_t aad_len;
	if (aad_entry(img, e, gen, &aad, &aad_len))
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	rc = seal(img, e->aead, aad, aad_len, data, len, out);
	free(aad);
	return rc;
}

int bs__crypt_open(bs_image *img, const bs_entry *e, uint64_t gen, const uint8_t *in,
		   size_t in_len, uint8_t *out, uint64_t slot_off)
{
	int rc = bs__crypt_ready(img, e);
	if (rc)
		return rc;
	if (in_len < BS_AEAD_OVERHEAD)
		return bs__err(img, e, slot_off, BS_ECORRUPT, "encrypted slot too short");
	size_t len = in_len - BS_AEAD_OVERHEAD;
	const uint8_t *nonce = in, *ct = in + BS_AEAD_NONCE_LEN, *tag = ct + len;
	uint8_t *aad;
	size_t aad_len;
	if (aad_entry(img, e, gen, &aad, &aad_len))
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	EVP_CIPHER_CTX *c = img->crypt->dec[e->aead - 1];
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
		return bs__err(img, e, slot_off, BS_ECORRUPT,
			       "authentication failed (tampered, moved or replayed)");
	}
	return BS_OK;
}

int bs__crypt_attr(bs_image *img, enum bs_aead aead, uint8_t **out, size_t *out_len)
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
	else if (random_bytes(v + 6 + al, BS_AEAD_ENTRY_ID_LEN))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EIO, "no random numbers");
	if (bs__attr_encode(BS_ATTR_AEAD, v, 2 + inner, out, out_len))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	return BS_OK;
}

/* ---- the key entry ------------------------------------------------------- */

enum kdf_kind { KDF_HKDF = 1, KDF_SCRYPT, KDF_PBKDF2 };
static const char *const kdf_names[] = {NULL, "hkdf-sha256", "scrypt", "pbkdf2-sha256"};

/* What bs.kdf holds:
 *   SEQUENCE { "bs.kdf", SEQUENCE { IA5String kdf, OCTET STRING salt,
 *                                   SEQUENCE OF INTEGER cost } }
 * with the costs N, r, p for scrypt, the iteration count for PBKDF2, none
 * for HKDF. */
struct kdf_desc {
	enum kdf_kind kind;
	uint8_t salt[MAX_SALT_LEN];
	size_t salt_len;
	uint64_t n, r, p, iter;
};

static int kdf_encode(const struct kdf_desc *d, uint8_t *outer, size_t cap, size_t *len)
{
	const char *name = kdf_names[d->kind];
	uint8_t *out = outer + 2; /* the contents stay under 128 octets */
	cap -= 2;
	size_t p = 0, nl = strlen(name);
	p += der_put_header(out + p, DER_IA5STRING, nl);
	memcpy(out + p, name, nl);
	p += nl;
	p += bs_der_octets(d->salt, d->salt_len, out + p, cap - p);
	uint64_t ints[3];
	int ni = 0;
	if (d->kind == KDF_SCRYPT) {
		ints[0] = d->n;
		ints[1] = d->r;
		ints[2] = d->p;
		ni = 3;
	} else if (d->kind == KDF_PBKDF2) {
		ints[0] = d->iter;
		ni = 1;
	}
	/* The costs: SEQUENCE OF INTEGER (under 128 octets). */
	size_t cs = p;
	p += 2;
	for (int i = 0; i < ni; i++)
		p += bs_der_int((int64_t)ints[i], out + p, cap - p);
	out[cs] = DER_SEQUENCE;
	out[cs + 1] = (uint8_t)(p - cs - 2);
	outer[0] = DER_SEQUENCE;
	outer[1] = (uint8_t)p;
	*len = p + 2;
	return BS_OK;
}

static int kdf_decode(bs_image *img, const bs_entry *e, const uint8_t *v, size_t vl,
		      struct kdf_desc *d)
{
	memset(d, 0, sizeof *d);
	struct der_tlv t;
	const char *bad = "bs.kdf: malformed value";
	if (der_header(v, vl, &t) || t.tag != DER_SEQUENCE || t.hdr + t.len != vl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
	v += t.hdr;
	vl = t.len;
	if (der_header(v, vl, &t) || t.tag != DER_IA5STRING)
		return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
	const uint8_t *nm = v + t.hdr;
	size_t nml = t.len;
	for (int k = KDF_HKDF; k <= KDF_PBKDF2; k++)
		if (nml == strlen(kdf_names[k]) && !memcmp(nm, kdf_names[k], nml))
			d->kind = (enum kdf_kind)k;
	if (!d->kind)
		return bs__err(img, e, e->off, BS_EUNSUPPORTED, "bs.kdf: unknown key derivation");
	size_t pos = t.hdr + t.len;
	if (der_header(v + pos, vl - pos, &t) || t.tag != DER_OCTET_STRING || t.len < 16 ||
	    t.len > MAX_SALT_LEN)
		return bs__err(img, e, e->off, BS_ECORRUPT, "bs.kdf: salt missing or of a bad size");
	memcpy(d->salt, v + pos + t.hdr, t.len);
	d->salt_len = t.len;
	pos += t.hdr + t.len;
	int want = d->kind == KDF_SCRYPT ? 3 : d->kind == KDF_PBKDF2 ? 1 : 0;
	uint64_t ints[3] = {0, 0, 0};
	if (der_header(v + pos, vl - pos, &t) || t.tag != DER_SEQUENCE || pos + t.hdr + t.len != vl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
	pos += t.hdr;
	for (int i = 0; i < want; i++) {
		int64_t x;
		if (der_header(v + pos, vl - pos, &t) || t.tag != DER_INTEGER ||
		    !der_int_value(v + pos + t.hdr, t.len, &x) || x < 1)
			return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
		ints[i] = (uint64_t)x;
		pos += t.hdr + t.len;
	}
	if (pos != vl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
	d->n = ints[0];
	d->r = ints[1];
	d->p = ints[2];
	if (d->kind == KDF_PBKDF2) {
		d->iter = ints[0];
		d->n = 0;
	}
	return BS_OK;
}

/* Refuses costs above the limits, so a hostile image cannot make key
 * loading take all memory or hours. */
static int kdf_limits(bs_image *img, const bs_entry *e, const struct kdf_desc *d)
{
	if (d->kind == KDF_SCRYPT) {
		if (d->n < 2 || (d->n & (d->n - 1)) || d->r < 1 || d->p < 1 ||
		    d->p > MAX_SCRYPT_P || d->r > MAX_SCRYPT_MEM / 128 ||
		    d->n > MAX_SCRYPT_MEM / 128 / d->r)
			return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT,
				       "scrypt parameters N=%llu r=%llu p=%llu outside the limits "
				       "(N a power of two, 128*N*r <= 1 GiB, p <= %u)",
				       (unsigned long long)d->n, (unsigned long long)d->r,
				       (unsigned long long)d->p, MAX_SCRYPT_P);
	} else if (d->kind == KDF_PBKDF2) {
		if (d->iter < 1 || d->iter > MAX_PBKDF2_ITER)
			return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT,
				       "PBKDF2 iteration count %llu outside 1..%u",
				       (unsigned long long)d->iter, MAX_PBKDF2_ITER);
	}
	return BS_OK;
}

static int derive_kek(bs_image *img, const struct kdf_desc *d, const bs_key *k,
		      uint8_t kek[KEY_LEN])
{
	if (d->kind == KDF_HKDF) {
		if (k->kind != KEY_RAW)
			return bs__err(img, NULL, BS_NO_OFFSET, BS_EKEY,
				       "the image's key is a key file; a passphrase was given");
		if (hkdf_sha256(k->p, k->len, d->salt, d->salt_len, "blobstore-kek-v1", kek,
				KEY_LEN))
			return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "HKDF failed (libcrypto)");
		return BS_OK;
	}
	if (k->kind != KEY_PASSPHRASE)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EKEY,
			       "the image's key is a passphrase (%s); a key file was given",
			       kdf_names[d->kind]);
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, d->kind == KDF_SCRYPT ? "SCRYPT" : "PBKDF2", NULL);
	EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM ps[8];
	int n = 0;
	uint64_t sn = d->n, maxmem = 128 * d->n * d->r * (d->p + 1) + (1u << 20);
	uint32_t sr = (uint32_t)d->r, sp = (uint32_t)d->p, iter32 = (uint32_t)d->iter;
	int pkcs5 = 1; /* our own limits apply, not SP 800-132's lower bounds */
	ps[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, k->p, k->len);
	ps[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)d->salt,
						    d->salt_len);
	if (d->kind == KDF_SCRYPT) {
		ps[n++] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &sn);
		ps[n++] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &sr);
		ps[n++] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &sp);
		ps[n++] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	} else {
		ps[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
		ps[n++] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_ITER, &iter32);
		ps[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5);
	}
	ps[n] = OSSL_PARAM_construct_end();
	int ok = c && EVP_KDF_derive(c, kek, KEY_LEN, ps) == 1;
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
	if (!ok)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM,
			       "%s failed (libcrypto; out of memory?)", kdf_names[d->kind]);
	return BS_OK;
}

/* The wrap's associated data: "blobstore-key-v1" | image id | "bs.key" |
 * the DER of the bs.kdf and bs.wrap attributes. */
static int wrap_aad(const bs_image *img, const uint8_t *kdf_tlv, size_t kdf_len,
		    const uint8_t *wrap_tlv, size_t wrap_len, uint8_t **out, size_t *out_len)
{
	size_t n = sizeof wrap_magic - 1 + 16 + strlen(BS_TYPE_KEY) + kdf_len + wrap_len;
	uint8_t *b = malloc(n), *p = b;
	if (!b)
		return BS_ENOMEM;
	memcpy(p, wrap_magic, sizeof wrap_magic - 1);
	p += sizeof wrap_magic - 1;
	memcpy(p, img->id, 16);
	p += 16;
	memcpy(p, BS_TYPE_KEY, strlen(BS_TYPE_KEY));
	p += strlen(BS_TYPE_KEY);
	memcpy(p, kdf_tlv, kdf_len);
	p += kdf_len;
	memcpy(p, wrap_tlv, wrap_len);
	*out = b;
	*out_len = n;
	return BS_OK;
}

/* One AES-256-GCM operation with a fresh context (the wrap is rare). */
static bool gcm_once(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
		     size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ol;
	bool ok = c && (enc ? EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, nonce, NULL)
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

/* A new bs.key content for the data key DEK under K: the two attributes and
 * the wrapped key (ciphertext | tag). */
struct key_record {
	uint8_t kdf_val[128], wrap_val[48];
	size_t kdf_len, wrap_len;
	uint8_t wrapped[WRAPPED_LEN];
};

static int make_record(bs_image *img, const bs_key *k, const struct bs_kdf_params *params,
		       const uint8_t dek[KEY_LEN], struct key_record *rec)
{
	struct kdf_desc d;
	memset(&d, 0, sizeof d);
	if (!k)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "no key given");
	if (k->kind == KEY_RAW) {
		d.kind = KDF_HKDF;
	} else if (!params || !params->kdf || !strcmp(params->kdf, "scrypt")) {
		d.kind = KDF_SCRYPT;
		d.n = params && params->scrypt_n ? params->scrypt_n : BS_SCRYPT_N_DEFAULT;
		d.r = params && params->scrypt_r ? params->scrypt_r : BS_SCRYPT_R_DEFAULT;
		d.p = params && params->scrypt_p ? params->scrypt_p : BS_SCRYPT_P_DEFAULT;
	} else if (!strcmp(params->kdf, "pbkdf2-sha256")) {
		d.kind = KDF_PBKDF2;
		d.iter = params->pbkdf2_iter ? params->pbkdf2_iter : BS_PBKDF2_ITER_DEFAULT;
	} else {
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "unknown KDF '%s' (scrypt or pbkdf2-sha256)", params->kdf);
	}
	int rc = kdf_limits(img, NULL, &d);
	if (rc)
		return rc;
	d.salt_len = SALT_LEN;
	uint8_t nonce[BS_AEAD_NONCE_LEN];
	if (random_bytes(d.salt, d.salt_len) || random_bytes(nonce, sizeof nonce))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EIO, "no random numbers");
	kdf_encode(&d, rec->kdf_val, sizeof rec->kdf_val, &rec->kdf_len);
	/* bs.wrap: SEQUENCE { IA5String "aes-256-gcm", OCTET STRING nonce } */
	size_t p = der_put_header(rec->wrap_val, DER_SEQUENCE, 2 + 11 + 2 + sizeof nonce);
	p += der_put_header(rec->wrap_val + p, DER_IA5STRING, 11);
	memcpy(rec->wrap_val + p, "aes-256-gcm", 11);
	p += 11;
	p += bs_der_octets(nonce, sizeof nonce, rec->wrap_val + p, sizeof rec->wrap_val - p);
	rec->wrap_len = p;
	uint8_t *kt = NULL, *wt = NULL, *aad = NULL;
	size_t ktl, wtl, aad_len;
	uint8_t kek[KEY_LEN];
	rc = derive_kek(img, &d, k, kek);
	if (!rc && (bs__attr_encode(ATTR_KDF, rec->kdf_val, rec->kdf_len, &kt, &ktl) ||
		    bs__attr_encode(ATTR_WRAP, rec->wrap_val, rec->wrap_len, &wt, &wtl) ||
		    wrap_aad(img, kt, ktl, wt, wtl, &aad, &aad_len)))
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	if (!rc && !gcm_once(true, kek, nonce, aad, aad_len, dek, KEY_LEN, rec->wrapped,
			     rec->wrapped + KEY_LEN))
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "key wrap failed (libcrypto)");
	OPENSSL_cleanse(kek, sizeof kek);
	free(kt);
	free(wt);
	free(aad);
	return rc;
}

static int record_store(bs_image *img, bs_entry *e, const struct key_record *rec)
{
	struct bs_attr a[2] = {
		{.name = ATTR_KDF, .value = rec->kdf_val, .value_len = rec->kdf_len},
		{.name = ATTR_WRAP, .value = rec->wrap_val, .value_len = rec->wrap_len},
	};
	if (e)
		return bs__entry_rewrite_lib(img, e, a, 2, rec->wrapped, WRAPPED_LEN);
	struct bs_entry_opts o = {.attrs = a, .nattrs = 2, .flags = BS_ENTRY_RAW};
	return bs__entry_create_lib(img, BS_TYPE_KEY, NULL, &o, rec->wrapped, WRAPPED_LEN, NULL);
}

int bs_image_init_encryption(bs_image *img, const bs_key *k, const struct bs_kdf_params *params)
{
	if (!img || !k)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	bs_entry *old = key_entry(img);
	if (old)
		return bs__err(img, old, old->off, BS_EEXIST, "the image is already set up for encryption");
	uint8_t dek[KEY_LEN];
	struct key_record rec;
	int rc = random_bytes(dek, sizeof dek)
			 ? bs__err(img, NULL, BS_NO_OFFSET, BS_EIO, "no random numbers")
			 : make_record(img, k, params, dek, &rec);
	if (!rc)
		rc = record_store(img, NULL, &rec);
	if (!rc)
		rc = crypt_load(img, dek);
	OPENSSL_cleanse(dek, sizeof dek);
	return rc;
}

int bs_image_rekey(bs_image *img, const bs_key *new_key, const struct bs_kdf_params *params)
{
	if (!img || !new_key)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	bs_entry *e = key_entry(img);
	if (!e)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EKEY,
			       "no key: the image is not set up for encryption");
	if (!img->crypt)
		return bs__err(img, e, BS_NO_OFFSET, BS_EKEY,
			       "rekey needs the current key loaded first");
	struct key_record rec;
	int rc = make_record(img, new_key, params, img->crypt->dek, &rec);
	if (!rc)
		rc = record_store(img, e, &rec);
	return rc;
}

/* Attribute NAME of E as a borrowed value and the whole encoding. */
static int key_attr(bs_image *img, const bs_entry *e, const char *name, const uint8_t **v,
		    size_t *vl, const uint8_t **tlv, size_t *tl)
{
	for (size_t i = 0; i < e->m->nmand + e->m->nopt; i++) {
		const struct bs_attr_ref *a = &e->m->attrs[i];
		if (!strcmp(a->cname, name)) {
			*v = a->value;
			*vl = a->value_len;
			*tlv = a->tlv;
			*tl = a->tlv_len;
			return BS_OK;
		}
	}
	return bs__err(img, e, e->off, BS_ECORRUPT, "key entry without attribute '%s'", name);
}

int bs_image_set_key(bs_image *img, const bs_key *k)
{
	if (!img || !k)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	bs_entry *e = key_entry(img);
	if (!e)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EKEY,
			       "no key entry: the image is not set up for encryption");
	if (e->status)
		return bs__err(img, e, e->off, e->status, "key entry refused: %s",
			       bs_entry_status_msg(e));
	const uint8_t *kv, *ktlv, *wv, *wtlv;
	size_t kvl, ktl, wvl, wtl;
	struct kdf_desc d;
	int rc = key_attr(img, e, ATTR_KDF, &kv, &kvl, &ktlv, &ktl);
	if (!rc)
		rc = key_attr(img, e, ATTR_WRAP, &wv, &wvl, &wtlv, &wtl);
	if (!rc)
		rc = kdf_decode(img, e, kv, kvl, &d);
	if (!rc)
		rc = kdf_limits(img, e, &d);
	if (rc)
		return rc;
	/* bs.wrap: SEQUENCE { IA5String "aes-256-gcm", OCTET STRING nonce (12) }. */
	struct der_tlv t, t2;
	if (der_header(wv, wvl, &t) || t.tag != DER_SEQUENCE || t.hdr + t.len != wvl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "bs.wrap: malformed value");
	wv += t.hdr;
	wvl = t.len;
	if (der_header(wv, wvl, &t) || t.tag != DER_IA5STRING || t.len != 11 ||
	    memcmp(wv + t.hdr, "aes-256-gcm", 11))
		return bs__err(img, e, e->off, BS_EUNSUPPORTED, "bs.wrap: unknown key wrap");
	if (der_header(wv + t.hdr + t.len, wvl - t.hdr - t.len, &t2) || t2.tag != DER_OCTET_STRING ||
	    t2.len != BS_AEAD_NONCE_LEN || t.hdr + t.len + t2.hdr + t2.len != wvl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "bs.wrap: malformed value");
	const uint8_t *nonce = wv + t.hdr + t.len + t2.hdr;
	uint8_t wrapped[WRAPPED_LEN];
	size_t wl;
	rc = bs_entry_read(img, e, wrapped, sizeof wrapped, &wl);
	if (rc == BS_ERANGE || (!rc && wl != WRAPPED_LEN))
		return bs__err(img, e, e->data_off, BS_ECORRUPT, "wrapped key is not %u octets",
			       WRAPPED_LEN);
	if (rc)
		return rc;
	uint8_t kek[KEY_LEN], dek[KEY_LEN + 16], *aad = NULL;
	size_t aad_len;
	rc = derive_kek(img, &d, k, kek);
	if (!rc && wrap_aad(img, ktlv, ktl, wtlv, wtl, &aad, &aad_len))
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	if (!rc && !gcm_once(false, kek, nonce, aad, aad_len, wrapped, KEY_LEN, dek,
			     wrapped + KEY_LEN))
		rc = bs__err(img, e, BS_NO_OFFSET, BS_EKEY, "wrong key or passphrase");
	if (!rc)
		rc = crypt_load(img, dek);
	OPENSSL_cleanse(kek, sizeof kek);
	OPENSSL_cleanse(dek, sizeof dek);
	free(aad);
	return rc;
}

int bs_image_set_key_file(bs_image *img, const char *path)
{
	bs_key *k;
	int rc = bs_key_from_file(path, &k);
	if (rc)
		return rc;
	rc = bs_image_set_key(img, k);
	bs_key_free(k);
	return rc;
}

int bs_image_set_passphrase(bs_image *img, const void *pw, size_t len)
{
	bs_key *k;
	int rc = bs_key_from_passphrase(pw, len, &k);
	if (rc)
		return rc;
	rc = bs_image_set_key(img, k);
	bs_key_free(k);
	return rc;
}

const char *bs_image_kdf(bs_image *img)
{
	bs_entry *e = img ? key_entry(img) : NULL;
	if (!e || e->status)
		return NULL;
	struct der_tlv t;
	for (size_t i = 0; i < e->m->nmand + e->m->nopt; i++)
		if (!strcmp(e->m->attrs[i].cname, ATTR_KDF)) {
			const uint8_t *v = e->m->attrs[i].value;
			size_t vl = e->m->attrs[i].value_len;
			if (der_header(v, vl, &t) || t.tag != DER_SEQUENCE)
				return NULL;
			v += t.hdr;
			vl = t.len;
			if (der_header(v, vl, &t) || t.tag != DER_IA5STRING)
				return NULL;
			for (int k = KDF_HKDF; k <= KDF_PBKDF2; k++)
				if (t.len == strlen(kdf_names[k]) &&
				    !memcmp(v + t.hdr, kdf_names[k], t.len))
					return kdf_names[k];
			return NULL;
		}
	return NULL;
}
