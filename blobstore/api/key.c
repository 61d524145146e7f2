/* key.c - user keys and the image's wrapped data key.
 *
 * Envelope: a random 256-bit data key (DEK) per image, wrapped with
 * AES-256-GCM under a key-encryption key (KEK) in the library's "bs.key"
 * entry.  The KEK comes from a key file through HKDF-SHA256, or from a
 * passphrase through scrypt or PBKDF2-SHA256; the KDF, its parameters and
 * salt sit in the bs.key entry and are authenticated with the wrapped key.
 * A loaded DEK becomes the handle's sealing key (data/seal.c).
 * docs/CRYPTO.md has the byte-level formats and the threat model. */
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

#include "api.h"

#define KEY_LEN BS_KEY_LEN
#define SALT_LEN 32u
#define MAX_SALT_LEN 64u
#define MAX_PASSPHRASE 65536u
#define WRAPPED_LEN (KEY_LEN + BS_AEAD_TAG_LEN)
/* Hard limits on the costs an image may ask for (crypt.h): 1 GiB of
 * scrypt memory, p <= 16, 10^8 PBKDF2 iterations.  Below them, each key
 * carries the ceilings its caller accepts (struct bs_kdf_limits). */
#define MAX_SCRYPT_MEM BS_KDF_MEM_LIMIT
#define MAX_SCRYPT_P BS_KDF_SCRYPT_P_LIMIT
#define MAX_PBKDF2_ITER BS_KDF_ITER_LIMIT

#define ATTR_KDF "bs.kdf"
#define ATTR_WRAP "bs.wrap"

static const char wrap_magic[] = "blobstore-key-v1";

enum key_kind { KEY_RAW = 1, KEY_PASSPHRASE };

struct bs_key {
	enum key_kind kind;
	size_t len;
	uint8_t *p;
	uint64_t max_iter, max_mem, max_work; /* the KDF ceilings (never 0) */
};

/* ---- user keys ----------------------------------------------------------- */

static int key_new(enum key_kind kind, const void *p, size_t len, bs_key **out)
{
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
	k->max_iter = BS_KDF_MAX_ITER_DEFAULT;
	k->max_mem = BS_KDF_MAX_MEM_DEFAULT;
	k->max_work = BS_KDF_MAX_WORK_DEFAULT;
	*out = k;
	return BS_OK;
}

int bs_key_set_kdf_limits(bs_key *k, const struct bs_kdf_limits *lim)
{
	if (!k)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no key");
	if (lim && lim->version != BS_KDF_LIMITS_VERSION)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "KDF limits of an unknown version (BS_KDF_LIMITS_INIT)");
	uint64_t it = lim && lim->pbkdf2_iter_max ? lim->pbkdf2_iter_max : BS_KDF_MAX_ITER_DEFAULT;
	uint64_t mem = lim && lim->scrypt_mem_max ? lim->scrypt_mem_max : BS_KDF_MAX_MEM_DEFAULT;
	uint64_t work = lim && lim->scrypt_work_max ? lim->scrypt_work_max : BS_KDF_MAX_WORK_DEFAULT;
	if (it > BS_KDF_ITER_LIMIT)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ELIMIT,
			       "PBKDF2 iteration ceiling %llu above the hard limit %u",
			       (unsigned long long)it, BS_KDF_ITER_LIMIT);
	if (mem > BS_KDF_MEM_LIMIT)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ELIMIT,
			       "scrypt memory ceiling %llu above the hard limit %llu (1 GiB)",
			       (unsigned long long)mem, (unsigned long long)BS_KDF_MEM_LIMIT);
	if (work > BS_KDF_WORK_LIMIT)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ELIMIT,
			       "scrypt work ceiling %llu above the hard limit %llu (2^27)",
			       (unsigned long long)work, (unsigned long long)BS_KDF_WORK_LIMIT);
	k->max_iter = it;
	k->max_mem = mem;
	k->max_work = work;
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
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
	if (!key || len != KEY_LEN)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "a key has exactly %u octets",
			       KEY_LEN);
	return key_new(KEY_RAW, key, len, out);
}

int bs_key_from_passphrase(const void *pw, size_t len, bs_key **out)
{
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
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
			return bs__error_errno(label, err, BS_NO_OFFSET, "read");
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
		return bs__error_errno(path, errno, BS_NO_OFFSET, "open");
	int rc = read_all(fd, path, max, out, len);
	close(fd);
	return rc;
}

int bs_key_from_file(const char *path, bs_key **out)
{
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
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
			int hi = bs_hex_digit(b[2 * i]), lo = bs_hex_digit(b[2 * i + 1]);
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
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
	uint8_t *b;
	size_t n;
	int rc = read_file(path, MAX_PASSPHRASE + 2, &b, &n);
	return rc ? rc : passphrase_from(b, n, path, out);
}

int bs_key_from_passphrase_fd(int fd, bs_key **out)
{
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
	uint8_t *b;
	size_t n;
	char label[32];
	snprintf(label, sizeof label, "file descriptor %d", fd);
	int rc = read_all(fd, label, MAX_PASSPHRASE + 2, &b, &n);
	return rc ? rc : passphrase_from(b, n, label, out);
}

/* ---- the loaded data key ------------------------------------------------- */

/* Makes DEK the handle's sealing key. */
static int crypt_load(bs_image *img, const uint8_t dek[KEY_LEN])
{
	struct bs__sealkey *k;
	int rc = bs__sealkey_new(dek, img->id, &k);
	if (rc)
		return bs__err(img, NULL, BS_NO_OFFSET, rc, "cannot load the data key (libcrypto)");
	bs__sealkey_free(img->key);
	img->key = k;
	return BS_OK;
}

int bs__crypt_test_set_dek(bs_image *img, const uint8_t *dek)
{
	return crypt_load(img, dek);
}

void bs_image_clear_key(bs_image *img)
{
	if (!img)
		return;
	bs__sealkey_free(img->key);
	img->key = NULL;
}

int bs_image_has_key(const bs_image *img)
{
	return img && img->key != NULL;
}

int bs_image_is_encrypted(const bs_image *img)
{
	return img && bs__key_entry(img) != NULL;
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
	p += bs__der_put_header(out + p, DER_IA5STRING, nl);
	memcpy(out + p, name, nl);
	p += nl;
	p += bs__der_encode_octets(d->salt, d->salt_len, out + p, cap - p);
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
		p += bs__der_encode_int((int64_t)ints[i], out + p, cap - p);
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
	struct bs__tlv t;
	const char *bad = "bs.kdf: malformed value";
	if (bs__der_header(v, vl, &t) || t.tag != DER_SEQUENCE || t.hdr + t.len != vl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
	v += t.hdr;
	vl = t.len;
	if (bs__der_header(v, vl, &t) || t.tag != DER_IA5STRING)
		return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
	const uint8_t *nm = v + t.hdr;
	size_t nml = t.len;
	for (int k = KDF_HKDF; k <= KDF_PBKDF2; k++)
		if (nml == strlen(kdf_names[k]) && !memcmp(nm, kdf_names[k], nml))
			d->kind = (enum kdf_kind)k;
	if (!d->kind)
		return bs__err(img, e, e->off, BS_EUNSUPPORTED, "bs.kdf: unknown key derivation");
	size_t pos = t.hdr + t.len;
	if (bs__der_header(v + pos, vl - pos, &t) || t.tag != DER_OCTET_STRING || t.len < 16 ||
	    t.len > MAX_SALT_LEN)
		return bs__err(img, e, e->off, BS_ECORRUPT, "bs.kdf: salt missing or of a bad size");
	memcpy(d->salt, v + pos + t.hdr, t.len);
	d->salt_len = t.len;
	pos += t.hdr + t.len;
	int want = d->kind == KDF_SCRYPT ? 3 : d->kind == KDF_PBKDF2 ? 1 : 0;
	uint64_t ints[3] = {0, 0, 0};
	if (bs__der_header(v + pos, vl - pos, &t) || t.tag != DER_SEQUENCE || pos + t.hdr + t.len != vl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "%s", bad);
	pos += t.hdr;
	for (int i = 0; i < want; i++) {
		int64_t x;
		if (bs__der_header(v + pos, vl - pos, &t) || t.tag != DER_INTEGER ||
		    !bs__der_int_value(v + pos + t.hdr, t.len, &x) || x < 1)
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

/* Refuses costs above K's ceilings, before anything is derived: the costs
 * are authenticated only by the wrap the derived key opens, so a hostile
 * image could otherwise make every open burn what it asks.  WRITING: the
 * costs are the caller's own (init, rekey). */
static int kdf_ceilings(bs_image *img, const bs_entry *e, const struct kdf_desc *d,
			const bs_key *k, bool writing)
{
	if (k->kind != KEY_PASSPHRASE)
		return BS_OK; /* nothing is stretched */
	const char *how = writing ? "writing them needs the ceiling raised to at least"
				  : "if the image is trusted, raise the ceiling to at least";
	if (d->kind == KDF_PBKDF2 && d->iter > k->max_iter)
		return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT,
			       "KDF cost refused before deriving: PBKDF2-SHA256 with %llu "
			       "iterations, above the ceiling of %llu; %s %llu (--kdf-max-iter; "
			       "bs_kdf_limits.pbkdf2_iter_max)",
			       (unsigned long long)d->iter, (unsigned long long)k->max_iter, how,
			       (unsigned long long)d->iter);
	if (d->kind == KDF_SCRYPT) {
		uint64_t mem = 128 * d->n * d->r, work = d->n * d->r * d->p;
		if (mem > k->max_mem)
			return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT,
				       "KDF cost refused before deriving: scrypt N=%llu r=%llu p=%llu "
				       "needs %llu MiB of memory, above the ceiling of %llu MiB; %s "
				       "%lluM (--kdf-max-mem; bs_kdf_limits.scrypt_mem_max)",
				       (unsigned long long)d->n, (unsigned long long)d->r,
				       (unsigned long long)d->p, (unsigned long long)(mem >> 20),
				       (unsigned long long)(k->max_mem >> 20), how,
				       (unsigned long long)(mem >> 20));
		if (work > k->max_work)
			return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT,
				       "KDF cost refused before deriving: scrypt N=%llu r=%llu p=%llu "
				       "is work N*r*p = %llu, above the ceiling of %llu; %s %llu "
				       "(--kdf-max-work; bs_kdf_limits.scrypt_work_max)",
				       (unsigned long long)d->n, (unsigned long long)d->r,
				       (unsigned long long)d->p, (unsigned long long)work,
				       (unsigned long long)k->max_work, how, (unsigned long long)work);
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
		if (bs__hkdf_sha256(k->p, k->len, d->salt, d->salt_len, "blobstore-kek-v1", kek,
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
	} else if (params && params->version != BS_KDF_PARAMS_VERSION) {
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "KDF parameters of an unknown version (BS_KDF_PARAMS_INIT)");
	} else if (!params || params->kdf == BS_KDF_DEFAULT || params->kdf == BS_KDF_SCRYPT) {
		d.kind = KDF_SCRYPT;
		d.n = params && params->scrypt_n ? params->scrypt_n : BS_SCRYPT_N_DEFAULT;
		d.r = params && params->scrypt_r ? params->scrypt_r : BS_SCRYPT_R_DEFAULT;
		d.p = params && params->scrypt_p ? params->scrypt_p : BS_SCRYPT_P_DEFAULT;
	} else if (params->kdf == BS_KDF_PBKDF2_SHA256) {
		d.kind = KDF_PBKDF2;
		d.iter = params->pbkdf2_iter ? params->pbkdf2_iter : BS_PBKDF2_ITER_DEFAULT;
	} else {
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "KDF %d is not one for passphrases (scrypt or pbkdf2-sha256)",
			       (int)params->kdf);
	}
	int rc = kdf_limits(img, NULL, &d);
	if (!rc)
		rc = kdf_ceilings(img, NULL, &d, k, true);
	if (rc)
		return rc;
	d.salt_len = SALT_LEN;
	uint8_t nonce[BS_AEAD_NONCE_LEN];
	if (bs__random(d.salt, d.salt_len) || bs__random(nonce, sizeof nonce))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EIO, "no random numbers");
	kdf_encode(&d, rec->kdf_val, sizeof rec->kdf_val, &rec->kdf_len);
	/* bs.wrap: SEQUENCE { IA5String "aes-256-gcm", OCTET STRING nonce } */
	size_t p = bs__der_put_header(rec->wrap_val, DER_SEQUENCE, 2 + 11 + 2 + sizeof nonce);
	p += bs__der_put_header(rec->wrap_val + p, DER_IA5STRING, 11);
	memcpy(rec->wrap_val + p, "aes-256-gcm", 11);
	p += 11;
	p += bs__der_encode_octets(nonce, sizeof nonce, rec->wrap_val + p, sizeof rec->wrap_val - p);
	rec->wrap_len = p;
	uint8_t *kt = NULL, *wt = NULL, *aad = NULL;
	size_t ktl, wtl, aad_len;
	uint8_t kek[KEY_LEN];
	rc = derive_kek(img, &d, k, kek);
	if (!rc && (bs__attr_encode(ATTR_KDF, rec->kdf_val, rec->kdf_len, &kt, &ktl) ||
		    bs__attr_encode(ATTR_WRAP, rec->wrap_val, rec->wrap_len, &wt, &wtl) ||
		    wrap_aad(img, kt, ktl, wt, wtl, &aad, &aad_len)))
		rc = bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	if (!rc && !bs__gcm_once(true, kek, nonce, aad, aad_len, dek, KEY_LEN, rec->wrapped,
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
		BS_ATTR(ATTR_KDF, 0, rec->kdf_val, rec->kdf_len),
		BS_ATTR(ATTR_WRAP, 0, rec->wrap_val, rec->wrap_len),
	};
	if (e)
		return bs__entry_rewrite_lib(img, e, a, 2, rec->wrapped, WRAPPED_LEN);
	struct bs_entry_opts o = BS_ENTRY_OPTS_INIT;
	o.attrs = a;
	o.nattrs = 2;
	o.flags = BS_ENTRY_RAW;
	return bs__entry_create_lib(img, BS_TYPE_KEY, NULL, &o, rec->wrapped, WRAPPED_LEN, NULL);
}

int bs_image_init_encryption(bs_image *img, const bs_key *k, const struct bs_kdf_params *params)
{
	if (!img || !k)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	bs_entry *old = bs__key_entry(img);
	if (old)
		return bs__err(img, old, old->off, BS_EEXIST, "the image is already set up for encryption");
	size_t orphans = bs__key_orphans(img);
	if (orphans)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ECORRUPT, "%zu encrypted entr%s: %s", orphans,
			       orphans == 1 ? "y" : "ies", bs__key_lost_msg);
	uint8_t dek[KEY_LEN];
	struct key_record rec;
	int rc = bs__random(dek, sizeof dek)
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
	bs_entry *e = bs__key_entry(img);
	if (!e)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EKEY,
			       "no key: the image is not set up for encryption");
	if (!img->key)
		return bs__err(img, e, BS_NO_OFFSET, BS_EKEY,
			       "rekey needs the current key loaded first");
	struct key_record rec;
	int rc = make_record(img, new_key, params, bs__sealkey_dek(img->key), &rec);
	if (!rc)
		rc = record_store(img, e, &rec);
	return rc;
}

/* Attribute NAME of E as a borrowed value and the whole encoding. */
static int key_attr(bs_image *img, const bs_entry *e, const char *name, const uint8_t **v,
		    size_t *vl, const uint8_t **tlv, size_t *tl)
{
	const struct bs__attr_ref *a = bs__meta_attr(e->m, name);
	if (!a)
		return bs__err(img, e, e->off, BS_ECORRUPT, "key entry without attribute '%s'",
			       name);
	*v = a->value;
	*vl = a->value_len;
	*tlv = a->tlv;
	*tl = a->tlv_len;
	return BS_OK;
}

int bs_image_set_key(bs_image *img, const bs_key *k)
{
	if (!img || !k)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	bs_entry *e = bs__key_entry(img);
	if (!e && bs__key_orphans(img))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ECORRUPT, "%s", bs__key_lost_msg);
	if (!e)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EKEY,
			       "no key entry: the image is not set up for encryption");
	if (e->status)
		return bs__err(img, e, e->off, e->status, "key entry refused: %s",
			       bs_entry_status_message(e));
	const uint8_t *kv = NULL, *ktlv = NULL, *wv = NULL, *wtlv = NULL;
	size_t kvl = 0, ktl = 0, wvl = 0, wtl = 0;
	struct kdf_desc d;
	int rc = key_attr(img, e, ATTR_KDF, &kv, &kvl, &ktlv, &ktl);
	if (!rc)
		rc = key_attr(img, e, ATTR_WRAP, &wv, &wvl, &wtlv, &wtl);
	if (!rc)
		rc = kdf_decode(img, e, kv, kvl, &d);
	if (!rc)
		rc = kdf_limits(img, e, &d);
	/* A key file's key for a passphrase image: derive_kek() says so. */
	if (!rc && !(d.kind != KDF_HKDF && k->kind == KEY_RAW))
		rc = kdf_ceilings(img, e, &d, k, false);
	if (rc)
		return rc;
	/* bs.wrap: SEQUENCE { IA5String "aes-256-gcm", OCTET STRING nonce (12) }. */
	struct bs__tlv t, t2;
	if (bs__der_header(wv, wvl, &t) || t.tag != DER_SEQUENCE || t.hdr + t.len != wvl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "bs.wrap: malformed value");
	wv += t.hdr;
	wvl = t.len;
	if (bs__der_header(wv, wvl, &t) || t.tag != DER_IA5STRING || t.len != 11 ||
	    memcmp(wv + t.hdr, "aes-256-gcm", 11))
		return bs__err(img, e, e->off, BS_EUNSUPPORTED, "bs.wrap: unknown key wrap");
	if (bs__der_header(wv + t.hdr + t.len, wvl - t.hdr - t.len, &t2) || t2.tag != DER_OCTET_STRING ||
	    t2.len != BS_AEAD_NONCE_LEN || t.hdr + t.len + t2.hdr + t2.len != wvl)
		return bs__err(img, e, e->off, BS_ECORRUPT, "bs.wrap: malformed value");
	const uint8_t *nonce = wv + t.hdr + t.len + t2.hdr;
	uint8_t wrapped[WRAPPED_LEN];
	size_t wl;
	rc = bs_entry_read(e, wrapped, sizeof wrapped, &wl);
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
	if (!rc && !bs__gcm_once(false, kek, nonce, aad, aad_len, wrapped, KEY_LEN, dek,
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

int bs_image_kdf(const bs_image *img, enum bs_kdf *out)
{
	if (!img || !out)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	bs_entry *e = bs__key_entry(img);
	if (!e)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOENT, "not set up for encryption");
	const struct bs__attr_ref *a = !e->status ? bs__meta_attr(e->m, ATTR_KDF) : NULL;
	struct bs__tlv t;
	if (a && !bs__der_header(a->value, a->value_len, &t) && t.tag == DER_SEQUENCE) {
		const uint8_t *v = a->value + t.hdr;
		size_t vl = t.len;
		static const enum bs_kdf kinds[] = {BS_KDF_DEFAULT, BS_KDF_HKDF_SHA256, BS_KDF_SCRYPT,
						    BS_KDF_PBKDF2_SHA256};
		if (!bs__der_header(v, vl, &t) && t.tag == DER_IA5STRING)
			for (int k = KDF_HKDF; k <= KDF_PBKDF2; k++)
				if (t.len == strlen(kdf_names[k]) &&
				    !memcmp(v + t.hdr, kdf_names[k], t.len)) {
					*out = kinds[k];
					return BS_OK;
				}
	}
	return bs__err(img, e, e->off, BS_ECORRUPT, "the key entry names no known KDF");
}
