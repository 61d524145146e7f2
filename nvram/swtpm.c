/* swtpm.c - swtpm's state blobs and state keys (include/blobstore/swtpm.h).
 *
 * Facts this codec follows, read from swtpm's sources (src/swtpm/
 * swtpm_nvstore.c, swtpm_aes.c, tlv.c, key.c; releases 0.7 to 0.10):
 *   header  version u8, min_version u8, hdrsize u16 (10), flags u16,
 *           totlen u32 (header + body = the file's length); big-endian.
 *           swtpm writes version 2, min_version 1.  Flags in state files:
 *           0x01 encrypted, 0x08 the key has 256 bits (0x02, 0x04, 0x10
 *           mark migration blobs, never files).
 *   v2 body records: tag u16, length u32, value.  Tag 1 plain data; tag 2
 *           ciphertext, tag 3 HMAC-SHA256, tag 6 IV (written in that
 *           order; swtpm writes an IV as long as the key, uses its first 16
 *           octets as the CBC IV, and runs the HMAC, keyed with the AES
 *           key, over ciphertext || the whole IV record value; no IV record
 *           means a zero IV and an HMAC over the ciphertext only).
 *   padding PKCS#7-like but to a multiple of the KEY length: 1 to 16
 *           octets for AES-128, 1 to 32 for AES-256, each holding the count.
 *   v1 body plain data, or AES-CBC (zero IV) of SHA-256(data) || data with
 *           the padding above; no header at all before 2018.
 *   keys    key file: hex (optional "0x", 32 or 64 digits) or binary;
 *           passphrase: the file's every octet, PBKDF2-HMAC-SHA512 with salt
 *           "swtpm" and 1000 iterations, or SHA-512, cut to the key length.
 * Offsets in messages are octets from the start of the file. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <blobstore/swtpm.h>
#include <blobstore/sys/util.h>

#define TAG_DATA 1u
#define TAG_ENCRYPTED_DATA 2u
#define TAG_HMAC 3u
#define TAG_MIGRATION_DATA 4u
#define TAG_ENCRYPTED_MIGRATION_DATA 5u
#define TAG_IVEC 6u
#define TAG_IVEC_MIGRATION 7u
#define TLV_HDR_LEN 6u
#define AES_BLOCK 16u
#define SHA256_LEN 32u
#define HMAC_LEN 32u
#define KNOWN_FLAGS (BS_SWTPM_FLAG_ENCRYPTED | BS_SWTPM_FLAG_256BIT_KEY)
#define MIGRATION_FLAGS 0x16u

static int blob_err(const char *label, uint64_t off, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int blob_err(const char *label, uint64_t off, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = bs_error_vset(label ? label : "swtpm blob", NULL, NULL, off, code, 0, fmt, ap);
	va_end(ap);
	return code;
}

void bs_swtpm_free(void *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

void bs_swtpm_key_wipe(struct bs_swtpm_key *k)
{
	if (k)
		OPENSSL_cleanse(k, sizeof *k);
}

/* ---- keys ---------------------------------------------------------------- */

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int key_parse(const void *content, size_t len, int format, size_t keylen,
		     struct bs_swtpm_key *out)
{
	const uint8_t *p = content;
	if (!out || (!p && len) || (keylen && keylen != 16 && keylen != 32))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "swtpm key: invalid argument");
	memset(out, 0, sizeof *out);
	if (format == BS_SWTPM_KEY_BINARY) {
		if (len != 16 && len != 32)
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				       "swtpm key: a binary key file holds 16 or 32 octets, not %zu",
				       len);
		if (keylen && len != keylen)
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				       "swtpm key: the cipher needs a %zu-bit key, the file holds "
				       "%zu bits", keylen * 8, len * 8);
		memcpy(out->bytes, p, len);
		out->len = len;
		return BS_OK;
	}
	if (format != BS_SWTPM_KEY_HEX)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "swtpm key: unknown format %d",
			       format);
	size_t i = 0, digits = 0;
	if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		i = 2;
	for (; i < len && !is_space(p[i]); i++, digits++) {
		int v = bs_hex_digit(p[i]);
		if (v < 0 || digits >= 64) {
			bs_swtpm_key_wipe(out);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				       v < 0 ? "swtpm key: octet %zu of the key file is not a "
					       "hexadecimal digit"
				             : "swtpm key: more than 64 hexadecimal digits (at "
					       "octet %zu)",
				       i);
		}
		out->bytes[digits / 2] = (uint8_t)(out->bytes[digits / 2] << 4 | v);
	}
	for (; i < len; i++)
		if (!is_space(p[i])) {
			bs_swtpm_key_wipe(out);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				       "swtpm key: text after the key at octet %zu", i);
		}
	if (digits != 32 && digits != 64) {
		bs_swtpm_key_wipe(out);
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
			       "swtpm key: %zu hexadecimal digits; a key has 32 (AES-128) or 64 "
			       "(AES-256)", digits);
	}
	out->len = digits / 2;
	if (keylen && out->len != keylen) {
		size_t have = out->len;
		bs_swtpm_key_wipe(out);
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
			       "swtpm key: the cipher needs a %zu-bit key, the file holds %zu bits",
			       keylen * 8, have * 8);
	}
	return BS_OK;
}

static int key_from_passphrase(const void *pw, size_t len, int kdf, size_t keylen,
			       struct bs_swtpm_key *out)
{
	static const uint8_t salt[] = {'s', 'w', 't', 'p', 'm'};
	if (!out || (!pw && len) || (keylen != 16 && keylen != 32) || len > INT32_MAX)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
			       "swtpm passphrase: invalid argument");
	memset(out, 0, sizeof *out);
	const char *empty = "";
	if (!pw)
		pw = empty;
	if (kdf == BS_SWTPM_KDF_PBKDF2) {
		if (PKCS5_PBKDF2_HMAC(pw, (int)len, salt, sizeof salt, 1000, EVP_sha512(),
				      (int)keylen, out->bytes) != 1)
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				       "swtpm passphrase: PBKDF2 failed");
	} else if (kdf == BS_SWTPM_KDF_SHA512) {
		uint8_t md[64];
		unsigned mdlen = 0;
		if (EVP_Digest(pw, len, md, &mdlen, EVP_sha512(), NULL) != 1 || mdlen != 64) {
			OPENSSL_cleanse(md, sizeof md);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				       "swtpm passphrase: SHA-512 failed");
		}
		memcpy(out->bytes, md, keylen);
		OPENSSL_cleanse(md, sizeof md);
	} else {
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
			       "swtpm passphrase: unknown KDF %d", kdf);
	}
	out->len = keylen;
	return BS_OK;
}

/* The key in a local copy, *OUT written only on success, the copy wiped. */
int bs_swtpm_key_parse(const void *content, size_t len, int format, size_t keylen,
		       struct bs_swtpm_key *out)
{
	struct bs_swtpm_key k;
	int rc = key_parse(content, len, format, keylen, out ? &k : NULL);
	if (!rc) {
		k.version = BS_SWTPM_KEY_VERSION;
		*out = k;
	}
	bs_swtpm_key_wipe(&k);
	return rc;
}

int bs_swtpm_key_from_passphrase(const void *pw, size_t len, int kdf, size_t keylen,
				 struct bs_swtpm_key *out)
{
	struct bs_swtpm_key k;
	int rc = key_from_passphrase(pw, len, kdf, keylen, out ? &k : NULL);
	if (!rc) {
		k.version = BS_SWTPM_KEY_VERSION;
		*out = k;
	}
	bs_swtpm_key_wipe(&k);
	return rc;
}

/* ---- crypto helpers ------------------------------------------------------ */

static const EVP_CIPHER *cbc(size_t keylen)
{
	return keylen == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
}

/* AES-CBC without OpenSSL's padding (swtpm pads itself) over LEN octets, a
 * multiple of 16.  Returns false on an OpenSSL failure. */
static bool cbc_run(bool enc, const struct bs_swtpm_key *k, const uint8_t iv[AES_BLOCK],
		    const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	bool ok = c && len <= INT32_MAX &&
		  EVP_CipherInit_ex(c, cbc(k->len), NULL, k->bytes, iv, enc ? 1 : 0) == 1 &&
		  EVP_CIPHER_CTX_set_padding(c, 0) == 1;
	int ol = 0, fl = 0;
	ok = ok && EVP_CipherUpdate(c, out, &ol, in, (int)len) == 1 &&
	     EVP_CipherFinal_ex(c, out + ol, &fl) == 1 && (size_t)ol + (size_t)fl == len;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

/* HMAC-SHA256 keyed with the AES key over A || B (B may be NULL). */
static bool hmac_sha256(const struct bs_swtpm_key *k, const uint8_t *a, size_t alen,
			const uint8_t *b, size_t blen, uint8_t md[HMAC_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM ps[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t ol = 0;
	bool ok = c && EVP_MAC_init(c, k->bytes, k->len, ps) == 1 &&
		  EVP_MAC_update(c, a, alen) == 1 && (!b || EVP_MAC_update(c, b, blen) == 1) &&
		  EVP_MAC_final(c, md, &ol, HMAC_LEN) == 1 && ol == HMAC_LEN;
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(mac);
	return ok;
}

/* Length of swtpm's padding at the end of PLAIN/LEN, or 0 when invalid. */
static size_t pad_len(const uint8_t *plain, size_t len, size_t keylen)
{
	if (!len)
		return 0;
	size_t pad = plain[len - 1];
	if (pad == 0 || pad > keylen || pad > len)
		return 0;
	uint8_t diff = 0;
	for (size_t i = len - pad; i < len; i++)
		diff |= (uint8_t)(plain[i] ^ pad);
	return diff ? 0 : pad;
}

/* ---- decoding ------------------------------------------------------------ */

/* One blob being decoded. */
struct blob {
	const uint8_t *p;
	size_t len;
	const char *label;
	struct bs_swtpm_blob_info info;
	size_t body; /* offset of the body */
	/* version 2 records: offset of the value and its length; off 0 = absent */
	size_t data_off, data_len, ct_off, ct_len, mac_off, mac_len, iv_off, iv_len;
};

/* Checks the 10-octet header.  BS_OK, or an error already reported. */
static int check_header(struct blob *b)
{
	const uint8_t *p = b->p;
	if (b->len < BS_SWTPM_HDR_LEN)
		return blob_err(b->label, 0, BS_ECORRUPT,
				"%zu octets: too short for the 10-octet blob header", b->len);
	uint32_t totlen = bs_get_be32(p + 6);
	if (totlen != b->len)
		return blob_err(b->label, 6, BS_ECORRUPT,
				"the header's total length is %lu, the file has %zu octets",
				(unsigned long)totlen, b->len);
	if (bs_get_be16(p + 2) != BS_SWTPM_HDR_LEN)
		return blob_err(b->label, 2, BS_ECORRUPT, "header size %u, expected 10",
				bs_get_be16(p + 2));
	unsigned version = p[0], min_version = p[1];
	if (min_version > 2)
		return blob_err(b->label, 1, BS_EUNSUPPORTED,
				"the blob needs header version %u or later; versions 1 and 2 "
				"are supported", min_version);
	if (version == 0 || min_version == 0 || min_version > version)
		return blob_err(b->label, 0, BS_ECORRUPT,
				"impossible header versions (version %u, minimum version %u)",
				version, min_version);
	if (version > 2)
		return blob_err(b->label, 0, BS_EUNSUPPORTED,
				"header version %u; versions 1 and 2 are supported", version);
	uint16_t flags = bs_get_be16(p + 4);
	if (flags & MIGRATION_FLAGS)
		return blob_err(b->label, 4, BS_EUNSUPPORTED,
				"flags 0x%04x mark a migration blob, not a state file", flags);
	if (flags & ~KNOWN_FLAGS)
		return blob_err(b->label, 4, BS_EUNSUPPORTED, "unknown header flags 0x%04x",
				flags & ~KNOWN_FLAGS);
	if ((flags & BS_SWTPM_FLAG_256BIT_KEY) && !(flags & BS_SWTPM_FLAG_ENCRYPTED))
		return blob_err(b->label, 4, BS_ECORRUPT,
				"flags 0x%04x: a key size without the encrypted flag", flags);
	b->info.blob_version = version;
	b->info.has_header = 1;
	b->info.flags = flags;
	b->info.encrypted = !!(flags & BS_SWTPM_FLAG_ENCRYPTED);
	b->body = BS_SWTPM_HDR_LEN;
	return BS_OK;
}

static const char *tag_name(unsigned tag)
{
	switch (tag) {
	case TAG_DATA: return "data";
	case TAG_ENCRYPTED_DATA: return "encrypted data";
	case TAG_HMAC: return "HMAC";
	case TAG_IVEC: return "IV";
	default: return "?";
	}
}

/* Walks the version-2 records: every one complete, known, not repeated, and
 * the ones the flags call for present. */
static int check_records(struct blob *b)
{
	size_t off = b->body;
	if (off == b->len)
		return blob_err(b->label, off, BS_ECORRUPT, "no records after the header");
	while (off < b->len) {
		size_t left = b->len - off;
		if (left < TLV_HDR_LEN)
			return blob_err(b->label, off, BS_ECORRUPT,
					"truncated record header (%zu of 6 octets)", left);
		unsigned tag = bs_get_be16(b->p + off);
		uint32_t vlen = bs_get_be32(b->p + off + 2);
		if (vlen > left - TLV_HDR_LEN)
			return blob_err(b->label, off + 2, BS_ECORRUPT,
					"record length %lu runs past the end of the file (%zu "
					"octets left)", (unsigned long)vlen, left - TLV_HDR_LEN);
		size_t *voff, *vl;
		switch (tag) {
		case TAG_DATA: voff = &b->data_off; vl = &b->data_len; break;
		case TAG_ENCRYPTED_DATA: voff = &b->ct_off; vl = &b->ct_len; break;
		case TAG_HMAC: voff = &b->mac_off; vl = &b->mac_len; break;
		case TAG_IVEC: voff = &b->iv_off; vl = &b->iv_len; break;
		case TAG_MIGRATION_DATA:
		case TAG_ENCRYPTED_MIGRATION_DATA:
		case TAG_IVEC_MIGRATION:
			return blob_err(b->label, off, BS_EUNSUPPORTED,
					"migration record (tag %u) in a state file", tag);
		default:
			return blob_err(b->label, off, BS_EUNSUPPORTED, "unknown record tag %u",
					tag);
		}
		if (*voff)
			return blob_err(b->label, off, BS_ECORRUPT, "second %s record (tag %u)",
					tag_name(tag), tag);
		*voff = off + TLV_HDR_LEN;
		*vl = vlen;
		off += TLV_HDR_LEN + (size_t)vlen;
	}
	if (!b->info.encrypted) {
		size_t bad = b->ct_off ? b->ct_off : b->mac_off ? b->mac_off : b->iv_off;
		if (bad)
			return blob_err(b->label, bad - TLV_HDR_LEN, BS_ECORRUPT,
					"encryption record in a blob whose header says it is not "
					"encrypted");
		if (!b->data_off)
			return blob_err(b->label, b->body, BS_ECORRUPT, "no data record (tag 1)");
		b->info.data_len = b->data_len;
		return BS_OK;
	}
	if (b->data_off)
		return blob_err(b->label, b->data_off - TLV_HDR_LEN, BS_ECORRUPT,
				"plain data record in a blob whose header says it is encrypted");
	if (!b->ct_off || !b->mac_off)
		return blob_err(b->label, b->body, BS_ECORRUPT,
				"encrypted blob without its %s record",
				!b->ct_off ? "encrypted data (tag 2)" : "HMAC (tag 3)");
	if (b->mac_len != HMAC_LEN)
		return blob_err(b->label, b->mac_off - 4, BS_ECORRUPT,
				"HMAC record of %zu octets, expected 32", b->mac_len);
	if (b->iv_off && (b->iv_len < AES_BLOCK || b->iv_len > 64))
		return blob_err(b->label, b->iv_off - 4, BS_ECORRUPT,
				"IV record of %zu octets, expected 16 to 64", b->iv_len);
	if (!b->ct_len || b->ct_len % AES_BLOCK)
		return blob_err(b->label, b->ct_off - 4, BS_ECORRUPT,
				"ciphertext of %zu octets, not a whole number of AES blocks",
				b->ct_len);
	return BS_OK;
}

static int inspect(const void *blob, size_t len, unsigned flags, bool have_key, const char *label,
		   struct blob *b)
{
	memset(b, 0, sizeof *b);
	b->p = blob;
	b->len = len;
	b->label = label;
	if (!blob && len)
		return blob_err(label, BS_NO_OFFSET, BS_EINVAL, "no blob");
	if (len > BS_SWTPM_MAX_BLOB)
		return blob_err(label, BS_NO_OFFSET, BS_ELIMIT,
				"%zu octets, more than the limit of %u", len, BS_SWTPM_MAX_BLOB);
	int rc = check_header(b);
	if (rc && (flags & BS_SWTPM_HEADERLESS)) {
		/* What swtpm up to 0.7 did with a file whose header does not
		 * check: all of it is a version-1 payload, encrypted exactly
		 * when a key is configured. */
		memset(&b->info, 0, sizeof b->info);
		b->info.blob_version = 1;
		b->info.encrypted = have_key;
		b->body = 0;
		return BS_OK;
	}
	if (rc)
		return rc;
	if (b->info.encrypted)
		b->info.keylen = (b->info.flags & BS_SWTPM_FLAG_256BIT_KEY) ? 32 : 16;
	if (b->info.blob_version == 2)
		return check_records(b);
	if (b->info.encrypted && (b->len - b->body == 0 || (b->len - b->body) % AES_BLOCK))
		return blob_err(label, b->body, BS_ECORRUPT,
				"encrypted version-1 body of %zu octets, not a whole number of "
				"AES blocks", b->len - b->body);
	/* A version-1 header never said the key size: the 128-bit default
	 * is only a guess, so do not claim it. */
	if (!(b->info.flags & BS_SWTPM_FLAG_256BIT_KEY))
		b->info.keylen = 0;
	return BS_OK;
}

int bs_swtpm_blob_inspect(const void *blob, size_t len, unsigned flags, const char *label,
			     struct bs_swtpm_blob_info *info)
{
	struct blob b;
	int rc = inspect(blob, len, flags, false, label, &b);
	if (!rc && info)
		*info = b.info, info->version = BS_SWTPM_BLOB_INFO_VERSION;
	return rc;
}

static int dup_out(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *c = malloc(len ? len : 1);
	if (!c)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	if (len)
		memcpy(c, p, len);
	*out = c;
	*out_len = len;
	return BS_OK;
}

static int decrypt_v2(const struct blob *b, const struct bs_swtpm_key *k, uint8_t **out,
		      size_t *out_len)
{
	const uint8_t *ct = b->p + b->ct_off;
	const uint8_t *iv = b->iv_off ? b->p + b->iv_off : NULL;
	uint8_t md[HMAC_LEN], iv0[AES_BLOCK] = {0};
	if (!hmac_sha256(k, ct, b->ct_len, iv, b->iv_len, md))
		return blob_err(b->label, BS_NO_OFFSET, BS_ENOMEM, "HMAC-SHA256 failed");
	if (CRYPTO_memcmp(md, b->p + b->mac_off, HMAC_LEN))
		return blob_err(b->label, b->mac_off, BS_EKEY,
				"HMAC mismatch: wrong key, or the blob was altered");
	if (iv)
		memcpy(iv0, iv, AES_BLOCK);
	uint8_t *plain = malloc(b->ct_len);
	if (!plain)
		return blob_err(b->label, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	if (!cbc_run(false, k, iv0, ct, b->ct_len, plain)) {
		bs_swtpm_free(plain, b->ct_len);
		return blob_err(b->label, BS_NO_OFFSET, BS_ENOMEM, "AES-CBC failed");
	}
	size_t pad = pad_len(plain, b->ct_len, k->len);
	if (!pad) {
		bs_swtpm_free(plain, b->ct_len);
		/* The HMAC matched, so the key is right: the writer was broken. */
		return blob_err(b->label, b->ct_off + b->ct_len - 1, BS_ECORRUPT,
				"invalid padding after decryption");
	}
	OPENSSL_cleanse(plain + b->ct_len - pad, pad);
	*out = plain;
	*out_len = b->ct_len - pad;
	return BS_OK;
}

static int decrypt_v1(const struct blob *b, const struct bs_swtpm_key *k, uint8_t **out,
		      size_t *out_len)
{
	const uint8_t *ct = b->p + b->body;
	size_t len = b->len - b->body;
	if (!len || len % AES_BLOCK)
		return blob_err(b->label, b->body, BS_ECORRUPT,
				"encrypted version-1 body of %zu octets, not a whole number of AES "
				"blocks", len);
	static const uint8_t iv0[AES_BLOCK];
	uint8_t *plain = malloc(len);
	if (!plain)
		return blob_err(b->label, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	if (!cbc_run(false, k, iv0, ct, len, plain)) {
		bs_swtpm_free(plain, len);
		return blob_err(b->label, BS_NO_OFFSET, BS_ENOMEM, "AES-CBC failed");
	}
	/* Version 1 has no MAC: a wrong key shows as bad padding or a hash
	 * mismatch, and either way nothing decrypted leaves this function. */
	size_t pad = pad_len(plain, len, k->len);
	uint8_t md[SHA256_LEN];
	unsigned mdlen = 0;
	bool ok = pad && len - pad >= SHA256_LEN &&
		  EVP_Digest(plain + SHA256_LEN, len - pad - SHA256_LEN, md, &mdlen, EVP_sha256(),
			     NULL) == 1 && mdlen == SHA256_LEN &&
		  !CRYPTO_memcmp(md, plain, SHA256_LEN);
	if (!ok) {
		bs_swtpm_free(plain, len);
		return blob_err(b->label, b->body, BS_EKEY,
				"decryption failed (%s): wrong key, or the blob was altered",
				pad ? "SHA-256 mismatch" : "invalid padding");
	}
	size_t n = len - pad - SHA256_LEN;
	memmove(plain, plain + SHA256_LEN, n);
	OPENSSL_cleanse(plain + n, len - n);
	*out = plain;
	*out_len = n;
	return BS_OK;
}

int bs_swtpm_blob_decode(const void *blob, size_t len, const struct bs_swtpm_key *key,
			    unsigned flags, const char *label, uint8_t **out, size_t *out_len,
			    struct bs_swtpm_blob_info *info)
{
	if (!out || !out_len)
		return blob_err(label, BS_NO_OFFSET, BS_EINVAL, "no output");
	if (key && key->version != BS_SWTPM_KEY_VERSION)
		return blob_err(label, BS_NO_OFFSET, BS_EINVAL,
				"a key of an unknown version (BS_SWTPM_KEY_INIT)");
	if (key && key->len != 16 && key->len != 32)
		return blob_err(label, BS_NO_OFFSET, BS_EINVAL, "a key has 16 or 32 octets, not %zu",
				key->len);
	struct blob b;
	int rc = inspect(blob, len, flags, key != NULL, label, &b);
	if (rc)
		return rc;
	if (info)
		*info = b.info, info->version = BS_SWTPM_BLOB_INFO_VERSION;
	if (!b.info.encrypted) {
		if (b.info.blob_version == 2)
			return dup_out(b.p + b.data_off, b.data_len, out, out_len);
		return dup_out(b.p + b.body, b.len - b.body, out, out_len);
	}
	if (!key)
		return blob_err(label, b.info.has_header ? 4 : BS_NO_OFFSET, BS_EKEY,
				"the blob is encrypted%s: give its swtpm key",
				b.info.keylen == 32 ? " (aes-256-cbc)"
				: b.info.keylen == 16 ? " (aes-128-cbc)" : "");
	if (b.info.keylen && key->len != b.info.keylen)
		return blob_err(label, 4, BS_EKEY,
				"the blob was encrypted with a %zu-bit key (aes-%zu-cbc), the key "
				"given has %zu bits", b.info.keylen * 8, b.info.keylen * 8,
				key->len * 8);
	if (b.info.blob_version == 2)
		return decrypt_v2(&b, key, out, out_len);
	return decrypt_v1(&b, key, out, out_len);
}

/* ---- encoding ------------------------------------------------------------ */

static uint8_t *put_tlv(uint8_t *p, unsigned tag, const void *v, size_t len)
{
	bs_put_be16(p, (uint16_t)tag);
	bs_put_be32(p + 2, (uint32_t)len);
	if (len)
		memcpy(p + TLV_HDR_LEN, v, len);
	return p + TLV_HDR_LEN + len;
}

int bs_swtpm_blob_encode(const void *data, size_t len, const struct bs_swtpm_key *key,
			    uint8_t **out, size_t *out_len)
{
	if (!out || !out_len || (!data && len) ||
	    (key && (key->version != BS_SWTPM_KEY_VERSION || (key->len != 16 && key->len != 32))))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "swtpm blob: invalid argument");
	/* Room for the header, three records, an IV of 32 and 32 octets of
	 * padding, all under the limit. */
	if (len > BS_SWTPM_MAX_BLOB - 256)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, 0,
			       "swtpm blob: %zu octets of data, more than the limit", len);
	uint16_t flags = 0;
	size_t total;
	if (!key) {
		total = BS_SWTPM_HDR_LEN + TLV_HDR_LEN + len;
	} else {
		flags = BS_SWTPM_FLAG_ENCRYPTED |
			(key->len == 32 ? BS_SWTPM_FLAG_256BIT_KEY : 0);
		size_t ct_len = len + (key->len - len % key->len);
		total = BS_SWTPM_HDR_LEN + 3 * TLV_HDR_LEN + ct_len + HMAC_LEN + key->len;
	}
	uint8_t *b = malloc(total);
	if (!b)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	b[0] = 2; /* version */
	b[1] = 1; /* minimum version: swtpm writes 1, and so do we */
	bs_put_be16(b + 2, BS_SWTPM_HDR_LEN);
	bs_put_be16(b + 4, flags);
	bs_put_be32(b + 6, (uint32_t)total);
	if (!key) {
		put_tlv(b + BS_SWTPM_HDR_LEN, TAG_DATA, data, len);
		*out = b;
		*out_len = total;
		return BS_OK;
	}
	/* swtpm's order: ciphertext, HMAC, IV (IV as long as the key). */
	size_t pad = key->len - len % key->len, ct_len = len + pad;
	uint8_t *ct_rec = b + BS_SWTPM_HDR_LEN;
	uint8_t *ct = ct_rec + TLV_HDR_LEN;
	uint8_t *mac_rec = ct + ct_len;
	uint8_t *iv_rec = mac_rec + TLV_HDR_LEN + HMAC_LEN;
	uint8_t *iv = iv_rec + TLV_HDR_LEN;
	uint8_t *plain = malloc(ct_len);
	int rc = BS_OK;
	if (!plain) {
		rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
		goto out;
	}
	if (len)
		memcpy(plain, data, len);
	memset(plain + len, (int)pad, pad);
	if (RAND_bytes(iv, (int)key->len) != 1) {
		rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "swtpm blob: no random octets for the IV");
		goto out;
	}
	bs_put_be16(ct_rec, TAG_ENCRYPTED_DATA);
	bs_put_be32(ct_rec + 2, (uint32_t)ct_len);
	bs_put_be16(iv_rec, TAG_IVEC);
	bs_put_be32(iv_rec + 2, (uint32_t)key->len);
	bs_put_be16(mac_rec, TAG_HMAC);
	bs_put_be32(mac_rec + 2, HMAC_LEN);
	if (!cbc_run(true, key, iv, plain, ct_len, ct) ||
	    !hmac_sha256(key, ct, ct_len, iv, key->len, mac_rec + TLV_HDR_LEN)) {
		rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "swtpm blob: encryption failed");
		goto out;
	}
out:
	bs_swtpm_free(plain, ct_len);
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	*out_len = total;
	return BS_OK;
}

/* ---- blobs on the control channel ---------------------------------------- */

/* The octets of a version-2 header with FLAGS over a body of BODY octets. */
static void put_header(uint8_t *b, uint16_t flags, size_t total)
{
	b[0] = 2;
	b[1] = 1;
	bs_put_be16(b + 2, BS_SWTPM_HDR_LEN);
	bs_put_be16(b + 4, flags);
	bs_put_be32(b + 6, (uint32_t)total);
}

int bs_swtpm_wire_encode(const void *data, size_t len, const struct bs_swtpm_key *migkey,
			 uint8_t **out, size_t *out_len)
{
	if (!out || !out_len || (!data && len) ||
	    (migkey && (migkey->version != BS_SWTPM_KEY_VERSION ||
			(migkey->len != 16 && migkey->len != 32))))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "swtpm wire blob: invalid argument");
	if (len > BS_SWTPM_MAX_BLOB - 256)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, 0,
				    "swtpm wire blob: %zu octets of data, more than the limit", len);
	/* The inner layer: the data record (the state key's layer is never
	 * sent: the image encrypts, and what leaves is decrypted). */
	size_t inner_len = TLV_HDR_LEN + len;
	if (!migkey) {
		size_t total = BS_SWTPM_HDR_LEN + TLV_HDR_LEN + inner_len;
		uint8_t *b = malloc(total);
		if (!b)
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0,
					    "out of memory");
		put_header(b, BS_SWTPM_FLAG_MIGRATION_DATA, total);
		bs_put_be16(b + BS_SWTPM_HDR_LEN, TAG_MIGRATION_DATA);
		bs_put_be32(b + BS_SWTPM_HDR_LEN + 2, (uint32_t)inner_len);
		put_tlv(b + BS_SWTPM_HDR_LEN + TLV_HDR_LEN, TAG_DATA, data, len);
		*out = b;
		*out_len = total;
		return BS_OK;
	}
	size_t kl = migkey->len, pad = kl - inner_len % kl, ct_len = inner_len + pad;
	size_t total = BS_SWTPM_HDR_LEN + 3 * TLV_HDR_LEN + ct_len + HMAC_LEN + kl;
	uint8_t *b = malloc(total), *plain = malloc(ct_len);
	int rc = BS_OK;
	if (!b || !plain) {
		rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
		goto out;
	}
	put_tlv(plain, TAG_DATA, data, len);
	memset(plain + inner_len, (int)pad, pad);
	put_header(b, BS_SWTPM_FLAG_MIGRATION_DATA | BS_SWTPM_FLAG_MIGRATION_ENCRYPTED |
			      (kl == 32 ? BS_SWTPM_FLAG_MIGRATION_256BIT_KEY : 0),
		   total);
	/* swtpm's order: ciphertext, HMAC, IV (as long as the key). */
	uint8_t *ct_rec = b + BS_SWTPM_HDR_LEN, *ct = ct_rec + TLV_HDR_LEN;
	uint8_t *mac_rec = ct + ct_len, *iv_rec = mac_rec + TLV_HDR_LEN + HMAC_LEN;
	uint8_t *iv = iv_rec + TLV_HDR_LEN;
	bs_put_be16(ct_rec, TAG_ENCRYPTED_MIGRATION_DATA);
	bs_put_be32(ct_rec + 2, (uint32_t)ct_len);
	bs_put_be16(mac_rec, TAG_HMAC);
	bs_put_be32(mac_rec + 2, HMAC_LEN);
	bs_put_be16(iv_rec, TAG_IVEC_MIGRATION);
	bs_put_be32(iv_rec + 2, (uint32_t)kl);
	if (RAND_bytes(iv, (int)kl) != 1) {
		rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EIO, 0,
				  "swtpm wire blob: no random octets for the IV");
		goto out;
	}
	if (!cbc_run(true, migkey, iv, plain, ct_len, ct) ||
	    !hmac_sha256(migkey, ct, ct_len, iv, kl, mac_rec + TLV_HDR_LEN))
		rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0,
				  "swtpm wire blob: encryption failed");
out:
	if (plain)
		bs_swtpm_free(plain, ct_len);
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	*out_len = total;
	return BS_OK;
}

/* A record of the migration layer: offset of its value and its length. */
struct wire_rec {
	size_t off, len;
};

/* Does BLOB/LEN start with a swtpm blob header (any version) that covers
 * exactly LEN octets?  A libtpms blob starts with a zero octet (its
 * version field is 16 bits wide), so it never does. */
static bool has_swtpm_header(const uint8_t *p, size_t len)
{
	return len >= BS_SWTPM_HDR_LEN && p[0] >= 1 && p[1] >= 1 && p[1] <= p[0] &&
	       bs_get_be16(p + 2) == BS_SWTPM_HDR_LEN && bs_get_be32(p + 6) == len;
}

/* Decodes the inner layer INNER/ILEN (records 1, or 2, 3 and 6 under the
 * state key) by framing it as the state file it is. */
static int decode_inner(const uint8_t *inner, size_t ilen, uint16_t hflags,
			const struct bs_swtpm_key *statekey, const char *label, size_t base,
			uint8_t **out, size_t *out_len)
{
	char lab[512];
	snprintf(lab, sizeof lab, "%s (the data inside, octet %zu on)", label ? label : "swtpm blob",
		 base);
	uint8_t *f = malloc(BS_SWTPM_HDR_LEN + ilen);
	if (!f)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	put_header(f, hflags & (BS_SWTPM_FLAG_ENCRYPTED | BS_SWTPM_FLAG_256BIT_KEY),
		   BS_SWTPM_HDR_LEN + ilen);
	memcpy(f + BS_SWTPM_HDR_LEN, inner, ilen);
	bool enc = hflags & BS_SWTPM_FLAG_ENCRYPTED;
	int rc = bs_swtpm_blob_decode(f, BS_SWTPM_HDR_LEN + ilen, enc ? statekey : NULL, 0, lab,
				      out, out_len, NULL);
	bs_swtpm_free(f, BS_SWTPM_HDR_LEN + ilen);
	return rc;
}

int bs_swtpm_wire_decode(const void *blob, size_t len, const struct bs_swtpm_key *migkey,
			 const struct bs_swtpm_key *statekey, const char *label, uint8_t **out,
			 size_t *out_len, int *kind)
{
	const uint8_t *p = blob;
	if (!out || !out_len || (!p && len))
		return blob_err(label, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (len > BS_SWTPM_MAX_BLOB)
		return blob_err(label, BS_NO_OFFSET, BS_ELIMIT,
				"%zu octets, more than the limit of %u", len, BS_SWTPM_MAX_BLOB);
	for (int i = 0; i < 2; i++) {
		const struct bs_swtpm_key *k = i ? statekey : migkey;
		if (k && (k->version != BS_SWTPM_KEY_VERSION || (k->len != 16 && k->len != 32)))
			return blob_err(label, BS_NO_OFFSET, BS_EINVAL, "invalid key");
	}
	if (!has_swtpm_header(p, len)) {
		/* A bare libtpms blob (what blobstore-vtpm sent before it
		 * framed its blobs, or a tool's own). */
		if (kind)
			*kind = BS_SWTPM_WIRE_BARE;
		return dup_out(p, len, out, out_len);
	}
	uint16_t flags = bs_get_be16(p + 4);
	if (p[1] > 2)
		return blob_err(label, 1, BS_EUNSUPPORTED,
				"the blob needs header version %u or later; versions 1 and 2 are "
				"supported", p[1]);
	if (p[0] == 1) {
		/* Version 1: the data follows the header, no records. */
		if (flags)
			return blob_err(label, 4, BS_EUNSUPPORTED,
					"version-1 blob with flags 0x%04x (encrypted version-1 "
					"blobs are not accepted here)", flags);
		if (kind)
			*kind = BS_SWTPM_WIRE_V1;
		return dup_out(p + BS_SWTPM_HDR_LEN, len - BS_SWTPM_HDR_LEN, out, out_len);
	}
	if (flags & ~0x1fu)
		return blob_err(label, 4, BS_EUNSUPPORTED, "unknown header flags 0x%04x",
				flags & ~0x1fu);
	if (!(flags & (BS_SWTPM_FLAG_MIGRATION_DATA | BS_SWTPM_FLAG_MIGRATION_ENCRYPTED))) {
		/* The state-file format (swtpm itself refuses it here): decode it
		 * as such. */
		if (kind)
			*kind = BS_SWTPM_WIRE_FILE;
		return bs_swtpm_blob_decode(p, len,
					    (flags & BS_SWTPM_FLAG_ENCRYPTED) ? statekey : NULL, 0,
					    label, out, out_len, NULL);
	}
	/* The migration layer's records. */
	struct wire_rec r[8];
	memset(r, 0, sizeof r);
	size_t off = BS_SWTPM_HDR_LEN;
	while (off < len) {
		size_t left = len - off;
		if (left < TLV_HDR_LEN)
			return blob_err(label, off, BS_ECORRUPT,
					"truncated record header (%zu of 6 octets)", left);
		unsigned tag = bs_get_be16(p + off);
		uint32_t vlen = bs_get_be32(p + off + 2);
		if (vlen > left - TLV_HDR_LEN)
			return blob_err(label, off + 2, BS_ECORRUPT,
					"record length %lu runs past the end of the blob (%zu octets "
					"left)", (unsigned long)vlen, left - TLV_HDR_LEN);
		if (tag != TAG_MIGRATION_DATA && tag != TAG_ENCRYPTED_MIGRATION_DATA &&
		    tag != TAG_HMAC && tag != TAG_IVEC_MIGRATION)
			return blob_err(label, off, BS_EUNSUPPORTED,
					"record tag %u in the migration layer", tag);
		if (r[tag].off)
			return blob_err(label, off, BS_ECORRUPT, "second record with tag %u", tag);
		r[tag].off = off + TLV_HDR_LEN;
		r[tag].len = vlen;
		off += TLV_HDR_LEN + (size_t)vlen;
	}
	if (!(flags & BS_SWTPM_FLAG_MIGRATION_ENCRYPTED)) {
		if (!r[TAG_MIGRATION_DATA].off || r[TAG_ENCRYPTED_MIGRATION_DATA].off ||
		    r[TAG_HMAC].off || r[TAG_IVEC_MIGRATION].off)
			return blob_err(label, BS_SWTPM_HDR_LEN, BS_ECORRUPT,
					"a plain migration blob holds exactly one migration data "
					"record (tag 4)");
		if (kind)
			*kind = BS_SWTPM_WIRE_PLAIN;
		return decode_inner(p + r[TAG_MIGRATION_DATA].off, r[TAG_MIGRATION_DATA].len, flags,
				    statekey, label, r[TAG_MIGRATION_DATA].off, out, out_len);
	}
	size_t want = (flags & BS_SWTPM_FLAG_MIGRATION_256BIT_KEY) ? 32 : 16;
	if (!migkey)
		return blob_err(label, 4, BS_EKEY,
				"the blob is encrypted with a migration key (aes-%zu-cbc): give "
				"--migration-key", want * 8);
	if (migkey->len != want)
		return blob_err(label, 4, BS_EKEY,
				"the blob was encrypted with a %zu-bit migration key, the key given "
				"has %zu bits", want * 8, migkey->len * 8);
	const struct wire_rec *ct = &r[TAG_ENCRYPTED_MIGRATION_DATA], *mac = &r[TAG_HMAC],
			      *iv = &r[TAG_IVEC_MIGRATION];
	if (r[TAG_MIGRATION_DATA].off || !ct->off || !mac->off)
		return blob_err(label, BS_SWTPM_HDR_LEN, BS_ECORRUPT,
				"an encrypted migration blob holds ciphertext (tag 5) and an HMAC "
				"(tag 3), and no plain record");
	if (mac->len != HMAC_LEN)
		return blob_err(label, mac->off - 4, BS_ECORRUPT,
				"HMAC record of %zu octets, expected 32", mac->len);
	if (iv->off && (iv->len < AES_BLOCK || iv->len > 64))
		return blob_err(label, iv->off - 4, BS_ECORRUPT,
				"IV record of %zu octets, expected 16 to 64", iv->len);
	if (!ct->len || ct->len % AES_BLOCK)
		return blob_err(label, ct->off - 4, BS_ECORRUPT,
				"ciphertext of %zu octets, not a whole number of AES blocks",
				ct->len);
	uint8_t md[HMAC_LEN], iv0[AES_BLOCK] = {0};
	if (!hmac_sha256(migkey, p + ct->off, ct->len, iv->off ? p + iv->off : NULL, iv->len, md))
		return blob_err(label, BS_NO_OFFSET, BS_ENOMEM, "HMAC-SHA256 failed");
	if (CRYPTO_memcmp(md, p + mac->off, HMAC_LEN))
		return blob_err(label, mac->off, BS_EKEY,
				"HMAC mismatch: wrong migration key, or the blob was altered");
	if (iv->off)
		memcpy(iv0, p + iv->off, AES_BLOCK);
	uint8_t *plain = malloc(ct->len);
	if (!plain)
		return blob_err(label, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	if (!cbc_run(false, migkey, iv0, p + ct->off, ct->len, plain)) {
		bs_swtpm_free(plain, ct->len);
		return blob_err(label, BS_NO_OFFSET, BS_ENOMEM, "AES-CBC failed");
	}
	size_t pad = pad_len(plain, ct->len, migkey->len);
	int rc;
	if (!pad)
		rc = blob_err(label, ct->off + ct->len - 1, BS_ECORRUPT,
			      "invalid padding after decryption");
	else
		rc = decode_inner(plain, ct->len - pad, flags, statekey, label, ct->off, out,
				  out_len);
	bs_swtpm_free(plain, ct->len);
	if (!rc && kind)
		*kind = BS_SWTPM_WIRE_ENCRYPTED;
	return rc;
}
