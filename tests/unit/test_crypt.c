/* test_crypt.c - the encryption layer: framing known answers, keys and
 * KDFs, tamper/swap/replay detection, no plaintext on storage, rekey under
 * crashes.  Expected bytes below were computed independently (Python
 * "cryptography": HKDF-SHA256 and AES-GCM / ChaCha20-Poly1305 over the
 * associated data of docs/CRYPTO.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "api/api.h"
#include <blobstore/crypt.h>

/* Framing known answers: image id 01..10, data key 00..1f, entry identity
 * b0..bf, entry "vtpm"/"permall" with crc32c slots, nonces a0..ab, c0..cb. */
static const uint8_t kat_gcm_gen1[44] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xc1, 0x7f,
	0xb2, 0x6f, 0x4e, 0xd0, 0x39, 0xe3, 0x39, 0x4e, 0x14, 0x81, 0xc0, 0x11, 0x33, 0xff,
	0x67, 0xc1, 0xc7, 0x17, 0x7e, 0xdc, 0x7b, 0x96, 0x48, 0x18, 0x8f, 0xe6, 0xab, 0xe4,
	0x4c, 0x27
};

static const uint8_t kat_gcm_gen2[41] = {
	0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0x67, 0x84,
	0x70, 0x98, 0x0f, 0x12, 0xbe, 0x3f, 0x3f, 0x13, 0x6d, 0x98, 0x66, 0x4a, 0x46, 0xca,
	0x4e, 0xcf, 0x22, 0xce, 0x58, 0x5c, 0x5d, 0xd1, 0x4a, 0xeb, 0xbc, 0x93, 0x38
};

static const uint8_t kat_chacha_gen1[44] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xe8, 0xcc,
	0x09, 0x2a, 0x08, 0xd6, 0x65, 0x2c, 0xf6, 0xa0, 0xb6, 0xd7, 0x93, 0x2c, 0xab, 0x7a,
	0x47, 0xcc, 0x78, 0xdb, 0xf6, 0x11, 0x70, 0xe9, 0xc5, 0xed, 0xa9, 0x89, 0xa0, 0x6a,
	0xc0, 0x18
};

static const uint8_t dek_kat[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
				    11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
				    22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t nonce1[12] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
				   0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab};
static const uint8_t nonce2[12] = {0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5,
				   0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb};
static const uint8_t entry_id[16] = {0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
				     0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};
static const uint8_t user_key1[32] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
				      0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
				      0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
				      0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11};
static const uint8_t user_key2[32] = {0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
				      0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
				      0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
				      0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22};

/* Small scrypt cost: the tests exercise the KDF, not its strength. */
static const struct bs_kdf_params fast_scrypt = {.version = BS_KDF_PARAMS_VERSION, .kdf = BS_KDF_SCRYPT, .scrypt_n = 1024};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* A fresh memory image with the fixed identity 01..10. */
static bs_image *kat_image(struct bs_backend **be)
{
	struct buf b = {0};
	t_image_begin(&b);
	t_image_end(&b);
	bs_image *img;
	assert_int_equal(t_open_mem(b.p, b.len, 0, &img, be), BS_OK);
	buf_free(&b);
	return img;
}

static bs_key *raw_key(const uint8_t *k)
{
	bs_key *key;
	assert_int_equal(bs_key_from_bytes(k, 32, &key), BS_OK);
	return key;
}

/* An image set up for encryption under USER_KEY1 (key-file style: fast). */
static bs_image *enc_image(struct bs_backend **be)
{
	bs_image *img = kat_image(be);
	bs_key *k = raw_key(user_key1);
	assert_int_equal(bs_image_init_encryption(img, k, NULL), BS_OK);
	bs_key_free(k);
	assert_true(bs_image_has_key(img));
	return img;
}

static bs_entry *put_enc(bs_image *img, const char *type, const char *name, size_t cap,
			 const void *data, size_t len)
{
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = cap, .flags = BS_ENTRY_ENCRYPT};
	bs_entry *e;
	int rc = bs_entry_create(img, type, name, &o, data, len, &e);
	if (rc)
		fail_msg("create %s: %s", type, last_error());
	return e;
}

/* Opens a copy of IMAGE/LEN and loads USER_KEY1; NULL when either fails. */
static bs_image *reopen(const uint8_t *image, size_t len, const uint8_t *key)
{
	bs_image *img;
	if (t_open_mem(image, len, 0, &img, NULL))
		return NULL;
	bs_key *k = raw_key(key);
	int rc = bs_image_set_key(img, k);
	bs_key_free(k);
	if (rc) {
		bs_image_close(img);
		return NULL;
	}
	return img;
}

/* ---- known answers --------------------------------------------------------- */

static void kat_case(const char *cipher, const uint8_t *want1, const uint8_t *want2)
{
	struct bs_backend *be;
	bs_image *img = kat_image(&be);
	assert_int_equal(bs__crypt_test_set_dek(img, dek_kat), BS_OK);
	bs__crypt_test_fix(nonce1, entry_id);
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .flags = BS_ENTRY_ENCRYPT};
	if (cipher)
		assert_int_equal(bs_cipher_parse(cipher, &o.cipher), BS_OK);
	bs_entry *e;
	int rc = bs_entry_create(img, "vtpm", "permall", &o, "hello, encrypted", 16, &e);
	bs__crypt_test_fix(NULL, NULL);
	assert_int_equal(rc, BS_OK);
	assert_string_equal(bs_cipher_name(bs_entry_cipher(e)), cipher ? cipher : "aes-256-gcm");
	assert_int_equal(bs_entry_capacity(e), 16);
	/* Slot 0: gen 1, length 16 + 28, CRC-32C, then nonce | ciphertext | tag. */
	uint8_t slot[16 + 44];
	uint64_t d = bs_entry_offset(e) + bs_entry_size(e) - 0; /* placeholder */
	(void)d;
	size_t h = 16, slot_len = h + 44;
	/* The data area is the last element before the name: find it by size. */
	uint64_t area = 0;
	{
		size_t sz = (size_t)bs_entry_size(e);
		uint8_t *raw = malloc(sz);
		assert_int_equal(bs_image_read_raw(img, bs_entry_offset(e), raw, sz), BS_OK);
		/* data area = 2 * slot_len octets; it starts after "04 78". */
		for (size_t i = 0; i + 2 < sz; i++)
			if (raw[i] == 0x04 && raw[i + 1] == 2 * slot_len) {
				area = bs_entry_offset(e) + i + 2;
				break;
			}
		free(raw);
	}
	assert_true(area != 0);
	assert_int_equal(bs_image_read_raw(img, area, slot, sizeof slot), BS_OK);
	assert_int_equal(be64(slot), 1);
	assert_int_equal(be32(slot + 8), 44);
	assert_memory_equal(slot + h, want1, 44);
	if (want2) {
		bs__crypt_test_fix(nonce2, NULL);
		rc = bs_entry_write(e, "second value!", 13);
		bs__crypt_test_fix(NULL, NULL);
		assert_int_equal(rc, BS_OK);
		uint8_t s2[16 + 41];
		assert_int_equal(bs_image_read_raw(img, area + slot_len, s2, sizeof s2), BS_OK);
		assert_int_equal(be64(s2), 2);
		assert_int_equal(be32(s2 + 8), 41);
		assert_memory_equal(s2 + h, want2, 41);
	}
	/* And the reader takes it back. */
	char out[32];
	size_t n;
	assert_int_equal(bs_entry_read(e, out, sizeof out, &n), BS_OK);
	if (want2) {
		assert_int_equal(n, 13);
		assert_memory_equal(out, "second value!", 13);
	} else {
		assert_int_equal(n, 16);
		assert_memory_equal(out, "hello, encrypted", 16);
	}
	bs_image_close(img);
}

static void test_kat_aes_gcm_framing(void **state)
{
	(void)state;
	kat_case(NULL, kat_gcm_gen1, kat_gcm_gen2);
}

static void test_kat_chacha20_poly1305_framing(void **state)
{
	(void)state;
	kat_case("chacha20-poly1305", kat_chacha_gen1, NULL);
}

/* ---- keys ------------------------------------------------------------------ */

static void test_roundtrip_capacity_is_plaintext(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	uint8_t data[101];
	t_fill(data, sizeof data, 7);
	bs_entry *e = put_enc(img, "dev", "a", 100, data, 10);
	assert_int_equal(bs_entry_capacity(e), 100);
	uint64_t off = bs_entry_offset(e);
	assert_int_equal(bs_entry_write(e, data, 100), BS_OK);
	assert_int_equal(bs_entry_offset(e), off); /* fits: one slot write */
	t_assert_data(img, "dev", "a", data, 100);
	assert_int_equal(bs_entry_write(e, data, 101), BS_OK); /* grows: rewrite */
	assert_true(bs_entry_offset(e) != off);
	assert_true(bs_entry_capacity(e) >= 101);
	t_assert_data(img, "dev", "a", data, 101);
	/* Attribute change re-encrypts under the new associated data. */
	uint8_t v[8];
	size_t vl = t_der_int(42, v, sizeof v);
	assert_int_equal(bs_attr_set(e, "x", 0, v, vl), BS_OK);
	t_assert_data(img, "dev", "a", data, 101);
	assert_int_equal(bs_image_compact(img), BS_OK);
	t_assert_data(img, "dev", "a", data, 101);
	size_t len;
	uint8_t *copy = t_mem_copy(be, &len);
	bs_image_close(img);
	img = reopen(copy, len, user_key1);
	assert_non_null(img);
	/* A fresh handle writes before it has read the slots. */
	assert_int_equal(bs_entry_find(img, "dev", "a", &e), BS_OK);
	assert_int_equal(bs_entry_write(e, data + 1, 100), BS_OK);
	t_assert_data(img, "dev", "a", data + 1, 100);
	assert_int_equal(bs_entry_write(e, data, 101), BS_OK);
	t_assert_data(img, "dev", "a", data, 101);
	assert_int_equal(bs_image_check(img, 1, NULL, NULL), BS_OK);
	bs_image_close(img);
	free(copy);
}

static void test_wrong_key_rejected_at_load(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = kat_image(&be);
	assert_int_equal(bs_image_set_passphrase(img, "x", 1), BS_EKEY); /* not set up */
	bs_key *pw;
	assert_int_equal(bs_key_from_passphrase("correct horse", 13, &pw), BS_OK);
	assert_int_equal(bs_image_init_encryption(img, pw, &fast_scrypt), BS_OK);
	assert_int_equal(bs_image_init_encryption(img, pw, &fast_scrypt), BS_EEXIST);
	bs_key_free(pw);
	put_enc(img, "dev", NULL, 8, "secret!!", 8);
	assert_string_equal(t_kdf_name(img), "scrypt");
	size_t len;
	uint8_t *copy = t_mem_copy(be, &len);
	bs_image_close(img);

	assert_int_equal(t_open_mem(copy, len, BS_OPEN_RDONLY, &img, NULL), BS_OK);
	assert_true(bs_image_is_encrypted(img));
	assert_int_equal(bs_image_set_passphrase(img, "correct horsf", 13), BS_EKEY);
	assert_non_null(strstr(last_error(), "wrong key or passphrase"));
	assert_null(strstr(last_error(), "correct"));
	assert_false(bs_image_has_key(img));
	bs_key *k = raw_key(user_key1);
	assert_int_equal(bs_image_set_key(img, k), BS_EKEY); /* a key file for a passphrase image */
	assert_non_null(strstr(last_error(), "passphrase"));
	bs_key_free(k);
	bs_entry *e;
	assert_int_equal(bs_entry_find(img, "dev", NULL, &e), BS_OK);
	char out[8];
	size_t n = 99;
	assert_int_equal(bs_entry_read(e, out, sizeof out, &n), BS_EKEY);
	assert_int_equal(n, 99); /* untouched */
	assert_int_equal(bs_image_set_passphrase(img, "correct horse", 13), BS_OK);
	assert_int_equal(bs_entry_read(e, out, sizeof out, &n), BS_OK);
	assert_memory_equal(out, "secret!!", 8);
	bs_image_clear_key(img);
	assert_int_equal(bs_entry_read(e, out, sizeof out, &n), BS_EKEY);
	bs_image_close(img);
	free(copy);
}

static void test_missing_key(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	put_enc(img, "dev", NULL, 8, "secret!!", 8);
	assert_int_equal(bs_entry_create(img, "plain", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "open", 4, NULL), BS_OK);
	size_t len;
	uint8_t *copy = t_mem_copy(be, &len);
	bs_image_close(img);
	assert_int_equal(t_open_mem(copy, len, 0, &img, NULL), BS_OK);
	bs_entry *e;
	assert_int_equal(bs_entry_find(img, "dev", NULL, &e), BS_OK);
	void *p = NULL;
	size_t n;
	p = NULL; /* outputs are untouched on failure */
	assert_int_equal(bs_entry_read_alloc(e, &p, &n), BS_EKEY);
	assert_null(p);
	assert_int_equal(bs_entry_write(e, "x", 1), BS_EKEY);
	assert_int_equal(bs_entry_resize(e, 100), BS_EKEY);
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .flags = BS_ENTRY_ENCRYPT};
	assert_int_equal(bs_entry_create(img, "dev2", NULL, &o, "x", 1, NULL), BS_EKEY);
	t_assert_data(img, "plain", NULL, "open", 4);
	/* Without the key, check verifies the slot checks only. */
	assert_int_equal(bs_image_check(img, 1, NULL, NULL), BS_OK);
	/* The library's entry is not the caller's to change. */
	bs_entry *k;
	assert_int_equal(bs_entry_find(img, "bs.key", NULL, &k), BS_OK);
	assert_int_equal(bs_entry_write(k, "x", 1), BS_EINVAL);
	assert_int_equal(bs_entry_create(img, "bs.key", "x", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 8, .attrs = NULL, .nattrs = 0}, "x", 1, NULL), BS_EINVAL);
	bs_image_close(img);
	free(copy);
	/* An image never set up: encrypted creation says so. */
	img = kat_image(NULL);
	assert_int_equal(bs_entry_create(img, "dev", NULL, &o, "x", 1, NULL), BS_EKEY);
	assert_non_null(strstr(last_error(), "not set up"));
	bs_image_close(img);
}

static void test_key_sources(void **state)
{
	(void)state;
	char *path = t_tmppath("key");
	bs_key *k;
	/* Hex key file with newline = the raw key. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 32; i++)
		fprintf(f, "%02X", user_key1[i]);
	fputc('\n', f);
	fclose(f);
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	assert_int_equal(bs_image_set_key_file(img, path), BS_OK);
	f = fopen(path, "w");
	fwrite(user_key1, 1, 32, f);
	fclose(f);
	assert_int_equal(bs_image_set_key_file(img, path), BS_OK);
	f = fopen(path, "w");
	fwrite(user_key2, 1, 32, f);
	fclose(f);
	assert_int_equal(bs_image_set_key_file(img, path), BS_EKEY);
	f = fopen(path, "w");
	fputs("not a key\n", f);
	fclose(f);
	k = NULL; /* outputs are untouched on failure */
	assert_int_equal(bs_key_from_file(path, &k), BS_EINVAL);
	assert_null(k);
	/* Passphrase from a file descriptor (a pipe) and from a file. */
	bs_image_close(img);
	img = kat_image(NULL);
	assert_int_equal(bs_key_from_passphrase("pipe pass", 9, &k), BS_OK);
	assert_int_equal(bs_image_init_encryption(img, k, &fast_scrypt), BS_OK);
	bs_key_free(k);
	bs_image_clear_key(img);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "pipe pass\n", 10), 10);
	close(fds[1]);
	assert_int_equal(bs_key_from_passphrase_fd(fds[0], &k), BS_OK);
	close(fds[0]);
	assert_int_equal(bs_image_set_key(img, k), BS_OK);
	bs_key_free(k);
	f = fopen(path, "w");
	fputs("pipe pass\r\n", f);
	fclose(f);
	assert_int_equal(bs_key_from_passphrase_file(path, &k), BS_OK);
	assert_int_equal(bs_image_set_key(img, k), BS_OK);
	bs_key_free(k);
	f = fopen(path, "w");
	fclose(f);
	assert_int_equal(bs_key_from_passphrase_file(path, &k), BS_EINVAL); /* empty */
	assert_int_equal(bs_key_from_passphrase_file("/nonexistent/x", &k), BS_ENOENT);
	/* PBKDF2 and the cost limits. */
	struct bs_kdf_params p = {.version = BS_KDF_PARAMS_VERSION, .kdf = BS_KDF_PBKDF2_SHA256, .pbkdf2_iter = 1000};
	assert_int_equal(bs_key_from_passphrase("other", 5, &k), BS_OK);
	assert_int_equal(bs_image_rekey(img, k, &p), BS_OK);
	assert_string_equal(t_kdf_name(img), "pbkdf2-sha256");
	struct bs_kdf_params bad = {.version = BS_KDF_PARAMS_VERSION, .kdf = BS_KDF_SCRYPT, .scrypt_n = 1000};
	assert_int_equal(bs_image_rekey(img, k, &bad), BS_ELIMIT);
	struct bs_kdf_params huge = {.version = BS_KDF_PARAMS_VERSION, .kdf = BS_KDF_SCRYPT, .scrypt_n = 1u << 24};
	assert_int_equal(bs_image_rekey(img, k, &huge), BS_ELIMIT);
	/* HKDF is for key files: no passphrase is stretched with it. */
	struct bs_kdf_params unknown = {.version = BS_KDF_PARAMS_VERSION, .kdf = BS_KDF_HKDF_SHA256};
	assert_int_equal(bs_image_rekey(img, k, &unknown), BS_EINVAL);
	bs_image_clear_key(img);
	assert_int_equal(bs_image_set_passphrase(img, "pipe pass", 9), BS_EKEY);
	assert_int_equal(bs_image_set_key(img, k), BS_OK);
	bs_key_free(k);
	bs_image_close(img);
	unlink(path);
	free(path);
}

/* ---- tampering ------------------------------------------------------------- */

static const char plain_marker[] = "PLAINTEXT-MARKER-0123456789abcdef";

/* Reads every non-library entry; counts failures; fails the test when a
 * read returns anything but the original plaintext. */
static int read_all_entries(bs_image *img, bool *saw_marker)
{
	int failures = 0;
	for (size_t i = 0; i < bs_image_count(img, BS_ITER_LIBRARY); i++) {
		bs_entry *e = t_entry_at(img, i);
		if (!strncmp(bs_entry_type(e), "bs.", 3))
			continue;
		uint8_t buf[64];
		memset(buf, 0xee, sizeof buf);
		size_t n = 12345;
		int rc = bs_entry_read(e, buf, sizeof buf, &n);
		if (rc) {
			failures++;
			/* Nothing of the plaintext reached the buffer. */
			assert_null(memmem(buf, sizeof buf, "MARKER", 6));
			continue;
		}
		assert_int_equal(n, sizeof plain_marker - 1);
		assert_memory_equal(buf, plain_marker, n);
		*saw_marker = true;
	}
	return failures;
}

static void test_tamper_every_byte_detected(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	/* Capacity = length: no unused octets in the live slot. */
	bs_entry *e = put_enc(img, "vtpm", "permall", sizeof plain_marker - 1, plain_marker,
			      sizeof plain_marker - 1);
	uint64_t off = bs_entry_offset(e), size = bs_entry_size(e);
	size_t len;
	uint8_t *orig = t_mem_copy(be, &len);
	bs_image_close(img);
	/* Where slot 1 (never written, invalid) lies: the last 2*slot/2 octets
	 * of the data area, which ends where the name begins. */
	size_t slot = 16 + sizeof plain_marker - 1 + 28;
	uint64_t name_len = 2 + strlen("permall");
	uint64_t slot1_end = off + size - name_len, slot1 = slot1_end - slot;
	uint8_t *img_bytes = malloc(len);
	size_t detected = 0, inactive = 0;
	for (uint64_t pos = off; pos < off + size; pos++) {
		memcpy(img_bytes, orig, len);
		img_bytes[pos] ^= 0x01;
		bool in_slot1 = pos >= slot1 && pos < slot1_end;
		bs_image *t;
		/* A writer: read-only handles retry failed slots (a concurrent
		 * writer may be mid-write), which only costs time here. */
		int rc = t_open_mem(img_bytes, len, 0, &t, NULL);
		if (rc) {
			assert_false(in_slot1);
			detected++;
			continue;
		}
		bs_key *k = raw_key(user_key1);
		assert_int_equal(bs_image_set_key(t, k), BS_OK);
		bs_key_free(k);
		bool saw = false;
		int failures = read_all_entries(t, &saw);
		int problems = 0;
		bs_image_check(t, 0, t_count_cb, &problems);
		if (in_slot1) {
			/* The inactive slot: the current value is untouched. */
			assert_int_equal(failures, 0);
			assert_true(saw);
			inactive++;
		} else {
			if (failures == 0 && saw)
				fail_msg("flip at entry offset %llu not detected",
					 (unsigned long long)(pos - off));
			assert_true(problems > 0 || failures > 0);
			assert_false(saw);
			detected++;
		}
		bs_image_close(t);
	}
	assert_int_equal(inactive, slot);
	assert_int_equal(detected + inactive, size);
	free(img_bytes);
	free(orig);
}

/* The data area (offset and length) of entry E. */
static void data_area(bs_image *img, bs_entry *e, uint64_t *off, size_t *len)
{
	size_t sz = (size_t)bs_entry_size(e);
	uint8_t *raw = malloc(sz);
	assert_int_equal(bs_image_read_raw(img, bs_entry_offset(e), raw, sz), BS_OK);
	size_t want = 2 * (16 + bs_entry_capacity(e) + 28);
	*off = 0;
	for (size_t i = 0; i + 3 < sz; i++) {
		size_t hl = want < 128 ? 2 : want < 256 ? 3 : 4;
		size_t l = hl == 2 ? raw[i + 1] : hl == 3 ? raw[i + 2] : (size_t)raw[i + 2] << 8 | raw[i + 3];
		if (raw[i] == 0x04 && l == want && (hl == 2 || raw[i + 1] == 0x80 + hl - 2) &&
		    i + hl + want <= sz) {
			*off = bs_entry_offset(e) + i + hl;
			break;
		}
	}
	free(raw);
	assert_true(*off != 0);
	*len = want;
}

static void test_swapped_entries_rejected(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	bs_entry *a = put_enc(img, "vtpm", "permall", 40, "state of A", 10);
	bs_entry *b = put_enc(img, "vtpm", "volatilestate", 40, "state of B", 10);
	uint64_t ao, bo;
	size_t al, bl;
	data_area(img, a, &ao, &al);
	data_area(img, b, &bo, &bl);
	assert_int_equal(al, bl);
	size_t len;
	uint8_t *m = t_mem_copy(be, &len);
	bs_image_close(img);
	uint8_t *tmp = malloc(al);
	memcpy(tmp, m + ao, al);
	memcpy(m + ao, m + bo, al);
	memcpy(m + bo, tmp, al);
	free(tmp);
	img = reopen(m, len, user_key1);
	assert_non_null(img);
	assert_int_equal(bs_entry_find(img, "vtpm", "permall", &a), BS_OK);
	assert_int_equal(bs_entry_find(img, "vtpm", "volatilestate", &b), BS_OK);
	char buf[64];
	size_t n;
	assert_int_equal(bs_entry_read(a, buf, sizeof buf, &n), BS_ECORRUPT);
	assert_non_null(strstr(last_error(), "authentication failed"));
	assert_non_null(strstr(last_error(), "permall"));
	assert_non_null(strstr(last_error(), "offset"));
	assert_int_equal(bs_entry_read(b, buf, sizeof buf, &n), BS_ECORRUPT);
	/* check reports both, not only the first. */
	int problems = 0;
	assert_int_equal(bs_image_check(img, 0, t_count_cb, &problems), BS_ECORRUPT);
	assert_int_equal(problems, 2);
	bs_image_close(img);
	free(m);
}

/* CRC-32C over header and payload, as slots.c computes it. */
static void fix_crc(uint8_t *slot)
{
	uint32_t len = be32(slot + 8);
	uint32_t c = bs__crc32c(0, slot, 12);
	c = bs__crc32c(c, slot + 16, len);
	slot[12] = (uint8_t)(c >> 24);
	slot[13] = (uint8_t)(c >> 16);
	slot[14] = (uint8_t)(c >> 8);
	slot[15] = (uint8_t)c;
}

static void test_replayed_older_copy_rejected(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	bs_entry *e = put_enc(img, "vtpm", "permall", 16, "value 1", 7); /* gen 1, slot 0 */
	assert_int_equal(bs_entry_write(e, "value 2", 7), BS_OK);  /* gen 2, slot 1 */
	uint64_t ao;
	size_t al;
	data_area(img, e, &ao, &al);
	size_t slot = al / 2;
	uint8_t *saved = malloc(slot);
	assert_int_equal(bs_image_read_raw(img, ao + slot, saved, slot), BS_OK);
	assert_int_equal(be64(saved), 2);
	assert_int_equal(bs_entry_write(e, "value 3", 7), BS_OK); /* gen 3, slot 0 */
	assert_int_equal(bs_entry_write(e, "value 4", 7), BS_OK); /* gen 4, slot 1 */
	size_t len;
	uint8_t *m = t_mem_copy(be, &len);
	bs_image_close(img);
	char buf[16];
	size_t n;

	/* Put the old copy back in place: the newer slot still wins, and the
	 * replayed value is never returned. */
	memcpy(m + ao + slot, saved, slot);
	img = reopen(m, len, user_key1);
	assert_int_equal(bs_entry_find(img, "vtpm", "permall", &e), BS_OK);
	assert_int_equal(bs_entry_read(e, buf, sizeof buf, &n), BS_OK);
	assert_memory_equal(buf, "value 3", 7);
	bs_image_close(img);

	/* Relabel it as the newest generation (checksum recomputed, as an
	 * attacker can): authentication fails, and no older slot is used. */
	saved[7] = 5;
	fix_crc(saved);
	memcpy(m + ao + slot, saved, slot);
	img = reopen(m, len, user_key1);
	assert_int_equal(bs_entry_find(img, "vtpm", "permall", &e), BS_OK);
	memset(buf, 0, sizeof buf);
	assert_int_equal(bs_entry_read(e, buf, sizeof buf, &n), BS_ECORRUPT);
	assert_non_null(strstr(last_error(), "authentication failed"));
	assert_null(memmem(buf, sizeof buf, "value", 5));
	bs_image_close(img);
	free(saved);
	free(m);
}

static void test_recreated_entry_rejects_old_ciphertext(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	bs_entry *e = put_enc(img, "vtpm", "permall", 16, "old secret", 10);
	uint64_t ao;
	size_t al;
	data_area(img, e, &ao, &al);
	uint8_t *saved = malloc(al);
	assert_int_equal(bs_image_read_raw(img, ao, saved, al), BS_OK);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	e = put_enc(img, "vtpm", "permall", 16, "new secret", 10);
	uint64_t bo;
	size_t bl;
	data_area(img, e, &bo, &bl);
	assert_int_equal(al, bl);
	size_t len;
	uint8_t *m = t_mem_copy(be, &len);
	bs_image_close(img);
	memcpy(m + bo, saved, al);
	img = reopen(m, len, user_key1);
	assert_int_equal(bs_entry_find(img, "vtpm", "permall", &e), BS_OK);
	char buf[16];
	size_t n;
	assert_int_equal(bs_entry_read(e, buf, sizeof buf, &n), BS_ECORRUPT);
	bs_image_close(img);
	free(saved);
	free(m);
}

static void test_rewrite_continues_generations(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	bs_entry *e = put_enc(img, "vtpm", "permall", 8, "v1", 2);
	for (int i = 0; i < 4; i++)
		assert_int_equal(bs_entry_write(e, "v2", 2), BS_OK); /* up to gen 5 */
	assert_int_equal(bs_entry_resize(e, 64), BS_OK);
	uint64_t ao;
	size_t al;
	data_area(img, e, &ao, &al);
	uint8_t hdr[12];
	assert_int_equal(bs_image_read_raw(img, ao, hdr, sizeof hdr), BS_OK);
	assert_int_equal(be64(hdr), 6);
	t_assert_data(img, "vtpm", "permall", "v2", 2);
	bs_image_close(img);
}

/* ---- no plaintext on storage ----------------------------------------------- */

static void test_no_plaintext_in_image(void **state)
{
	(void)state;
	char *path = t_tmppath("noplain.img");
	unlink(path);
	bs_image *img;
	assert_int_equal(bs_image_open(path, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img), BS_OK);
	bs_key *k;
	assert_int_equal(bs_key_from_passphrase("pw", 2, &k), BS_OK);
	assert_int_equal(bs_image_init_encryption(img, k, &fast_scrypt), BS_OK);
	uint8_t big[4096];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)plain_marker[i % (sizeof plain_marker - 1)];
	bs_entry *a = put_enc(img, "vtpm", "permall", 100, big, 100);
	put_enc(img, "vtpm", "volatilestate", sizeof big, big, sizeof big);
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 64, .flags = BS_ENTRY_ENCRYPT,
				  .cipher = BS_CIPHER_CHACHA20_POLY1305, .checksum = BS_CHECKSUM_SHA256};
	assert_int_equal(bs_entry_create(img, "nvram", "vars", &o, big, 64, NULL), BS_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(bs_entry_write(a, big + i, 90), BS_OK);
	assert_int_equal(bs_entry_write(a, big, 2000), BS_OK); /* grows: rewrite */
	uint8_t v[8];
	assert_int_equal(bs_attr_set(a, "note", 0, v, t_der_int(1, v, sizeof v)), BS_OK);
	assert_int_equal(bs_image_rekey(img, k, &fast_scrypt), BS_OK);
	bs_key_free(k);
	bs_image_close(img);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	rewind(f);
	uint8_t *bytes = malloc((size_t)sz);
	assert_int_equal(fread(bytes, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	/* Any 8-octet window of the pattern would betray it. */
	for (size_t i = 0; i + 8 <= sizeof plain_marker - 1; i++)
		assert_null(memmem(bytes, (size_t)sz, plain_marker + i, 8));
	free(bytes);
	assert_int_equal(bs_image_open(path, BS_OPEN_RDONLY, &img), BS_OK);
	assert_int_equal(bs_image_set_passphrase(img, "pw", 2), BS_OK);
	t_assert_data(img, "vtpm", "permall", big, 2000);
	t_assert_data(img, "nvram", "vars", big, 64);
	bs_image_close(img);
	unlink(path);
	free(path);
}

/* ---- format rules ---------------------------------------------------------- */

static void test_unknown_cipher_refused(void **state)
{
	(void)state;
	struct buf img = {0}, in = {0}, v = {0};
	static const uint8_t id[16];
	buf_str(&in, 0x16, "aes-512-future");
	buf_tlv(&in, 0x04, id, sizeof id);
	buf_tlv(&v, 0x30, in.p, in.len);
	/* Mandatory set in DER order: bs.slots (shorter) first. */
	struct buf sorted = {0};
	t_attr_slots(&sorted, "crc32c");
	t_attr_val(&sorted, "bs.aead", v.p, v.len);
	uint8_t area[2 * (16 + 40)] = {0};
	struct t_entry te = {.type = "vtpm", .mand = sorted.p, .mand_len = sorted.len,
			     .data = area, .data_len = sizeof area};
	t_image_begin(&img);
	t_build_entry(&img, &te);
	t_image_end(&img);
	bs_image *im;
	assert_int_equal(t_open_mem(img.p, img.len, BS_OPEN_RDONLY, &im, NULL), BS_OK);
	bs_entry *e;
	assert_int_equal(bs_entry_find(im, "vtpm", NULL, &e), BS_OK);
	assert_int_equal(bs_entry_status(e), BS_EUNSUPPORTED);
	char b[8];
	size_t n;
	assert_int_equal(bs_entry_read(e, b, sizeof b, &n), BS_EUNSUPPORTED);
	bs_image_close(im);
	buf_free(&img);
	buf_free(&in);
	buf_free(&v);
	buf_free(&sorted);
}

/* ---- rekey under crashes --------------------------------------------------- */

static void test_rekey_crash_safe(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = enc_image(&be);
	put_enc(img, "vtpm", "permall", 32, "device state", 12);
	size_t base_len;
	uint8_t *base = t_mem_copy(be, &base_len);
	bs_image_close(img);
	int old_ok = 0, new_ok = 0;
	const size_t tears[] = {SIZE_MAX, 0, 1, 7};
	for (size_t ti = 0; ti < sizeof tears / sizeof *tears; ti++) {
		for (uint64_t crash = 1;; crash++) {
			struct fault_plan plan = {.crash_after = crash, .tear_at = tears[ti]};
			struct bs_backend *fb;
			assert_int_equal(fault_backend_new(base, base_len, &plan, &fb), BS_OK);
			assert_int_equal(bs_image_open_backend(fb, "fault.img", 0, &img), BS_OK);
			bs_key *k1 = raw_key(user_key1), *k2 = raw_key(user_key2);
			assert_int_equal(bs_image_set_key(img, k1), BS_OK);
			int rc = bs_image_rekey(img, k2, NULL);
			bs_key_free(k1);
			bs_key_free(k2);
			struct fault_stats st;
			fault_backend_stats(fb, &st);
			size_t len;
			uint8_t *after = t_mem_copy(fb, &len);
			bs_image_close(img);
			/* Read-only first (sees an unfinished rewrite), then a writer. */
			for (int pass = 0; pass < 2; pass++) {
				bs_image *t;
				assert_int_equal(t_open_mem(after, len, pass ? 0 : BS_OPEN_RDONLY,
							    &t, NULL),
						 BS_OK);
				bs_key *a = raw_key(user_key1), *b = raw_key(user_key2);
				int ro = bs_image_set_key(t, a), rn = bs_image_set_key(t, b);
				bs_key_free(a);
				bs_key_free(b);
				assert_true((ro == BS_OK) != (rn == BS_OK));
				assert_true(ro == BS_OK || ro == BS_EKEY);
				assert_true(rn == BS_OK || rn == BS_EKEY);
				if (!st.crashed)
					assert_int_equal(rn, BS_OK);
				old_ok += ro == BS_OK;
				new_ok += rn == BS_OK;
				t_assert_data(t, "vtpm", "permall", "device state", 12);
				bs_image_close(t);
			}
			free(after);
			if (!st.crashed) {
				assert_int_equal(rc, BS_OK);
				break;
			}
			assert_true(crash < 100);
		}
	}
	assert_true(old_ok > 0 && new_ok > 0);
	free(base);
}

/* A bs.key whose PBKDF2 cost was raised (3-octet DER INTEGER 32768 patched
 * to 8388607, 3.5 x the default ceiling) is refused with BS_ELIMIT before
 * anything is derived; a raised ceiling lets the correct passphrase in. */
static void test_kdf_ceiling_refuses_before_deriving(void **state)
{
	(void)state;
	struct bs_backend *be;
	bs_image *img = kat_image(&be);
	bs_key *pw;
	struct bs_kdf_params p = {.version = BS_KDF_PARAMS_VERSION, .kdf = BS_KDF_PBKDF2_SHA256,
				  .pbkdf2_iter = 32768};
	assert_int_equal(bs_key_from_passphrase("pw", 2, &pw), BS_OK);
	assert_int_equal(bs_image_init_encryption(img, pw, &p), BS_OK);
	size_t len;
	uint8_t *copy = t_mem_copy(be, &len);
	bs_image_close(img);
	static const uint8_t cost[] = {0x30, 0x05, 0x02, 0x03, 0x00, 0x80, 0x00};
	int hits = 0;
	for (size_t i = 0; i + sizeof cost <= len; i++)
		if (!memcmp(copy + i, cost, sizeof cost)) {
			copy[i + 4] = 0x7f;
			copy[i + 5] = 0xff;
			copy[i + 6] = 0xff;
			hits++;
		}
	assert_int_equal(hits, 1);
	assert_int_equal(t_open_mem(copy, len, BS_OPEN_RDONLY, &img, NULL), BS_OK);
	clock_t t0 = clock();
	assert_int_equal(bs_image_set_key(img, pw), BS_ELIMIT);
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 0.1); /* nothing derived */
	const char *m = last_error();
	assert_non_null(strstr(m, "8388607"));
	assert_non_null(strstr(m, "2400000"));
	assert_non_null(strstr(m, "--kdf-max-iter"));
	assert_null(strstr(m, "wrong key"));
	assert_false(bs_image_has_key(img));
	struct bs_kdf_limits lim = BS_KDF_LIMITS_INIT;
	lim.pbkdf2_iter_max = BS_KDF_ITER_LIMIT + 1ull;
	assert_int_equal(bs_key_set_kdf_limits(pw, &lim), BS_ELIMIT);
	lim.pbkdf2_iter_max = 8388607;
	assert_int_equal(bs_key_set_kdf_limits(pw, &lim), BS_OK);
	/* Now it derives (with the cost the attacker set, so the wrap fails). */
	assert_int_equal(bs_image_set_key(img, pw), BS_EKEY);
	bs_image_close(img);
	/* A writer needs the ceiling raised to write a cost above it. */
	img = kat_image(&be);
	assert_int_equal(bs_key_set_kdf_limits(pw, NULL), BS_OK);
	p.pbkdf2_iter = BS_KDF_MAX_ITER_DEFAULT + 1;
	assert_int_equal(bs_image_init_encryption(img, pw, &p), BS_ELIMIT);
	bs_image_close(img);
	bs_key_free(pw);
	free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kat_aes_gcm_framing),
		cmocka_unit_test(test_kat_chacha20_poly1305_framing),
		cmocka_unit_test(test_roundtrip_capacity_is_plaintext),
		cmocka_unit_test(test_wrong_key_rejected_at_load),
		cmocka_unit_test(test_missing_key),
		cmocka_unit_test(test_key_sources),
		cmocka_unit_test(test_tamper_every_byte_detected),
		cmocka_unit_test(test_swapped_entries_rejected),
		cmocka_unit_test(test_replayed_older_copy_rejected),
		cmocka_unit_test(test_recreated_entry_rejects_old_ciphertext),
		cmocka_unit_test(test_rewrite_continues_generations),
		cmocka_unit_test(test_no_plaintext_in_image),
		cmocka_unit_test(test_unknown_cipher_refused),
		cmocka_unit_test(test_rekey_crash_safe),
		cmocka_unit_test(test_kdf_ceiling_refuses_before_deriving),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
