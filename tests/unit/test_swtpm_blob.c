/* test_swtpm_blob.c - swtpm's state blobs and keys (include/blobstore/swtpm.h):
 * both header versions, headerless files, plain and encrypted blobs built
 * here independently of the encoder, truncation at every octet, bit flips,
 * wrong keys, and swtpm's key file and passphrase derivations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common.h"
#include <blobstore/swtpm.h>

static const char label[] = "dir/tpm2-00.permall";

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void hdr(struct buf *b, unsigned version, unsigned min_version, unsigned flags)
{
	uint8_t h[10] = {(uint8_t)version, (uint8_t)min_version};
	put16(h + 2, 10);
	put16(h + 4, flags);
	buf_put(b, h, sizeof h);
}

/* Sets the header's total length to the buffer's length. */
static void fix_totlen(struct buf *b)
{
	put32(b->p + 6, (uint32_t)b->len);
}

static void tlv(struct buf *b, unsigned tag, const void *v, size_t len)
{
	uint8_t h[6];
	put16(h, tag);
	put32(h + 2, (uint32_t)len);
	buf_put(b, h, sizeof h);
	buf_put(b, v, len);
}

static struct bs_swtpm_key key_of(size_t len, uint8_t seed)
{
	struct bs_swtpm_key k = BS_SWTPM_KEY_INIT;
	for (size_t i = 0; i < len; i++)
		k.bytes[i] = (uint8_t)(seed + 7 * i);
	k.len = len;
	return k;
}

/* swtpm's padding: to a multiple of the key length, each pad octet the
 * count.  Returns the padded length. */
static size_t pad_to_key(uint8_t *p, size_t len, size_t keylen)
{
	size_t pad = keylen - len % keylen;
	memset(p + len, (int)pad, pad);
	return len + pad;
}

static void cbc_encrypt(const struct bs_swtpm_key *k, const uint8_t *iv, const uint8_t *in,
			size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ol = 0, fl = 0;
	assert_non_null(c);
	assert_int_equal(EVP_EncryptInit_ex(c, k->len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(),
					    NULL, k->bytes, iv), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	assert_int_equal(EVP_EncryptUpdate(c, out, &ol, in, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, out + ol, &fl), 1);
	assert_int_equal((size_t)(ol + fl), len);
	EVP_CIPHER_CTX_free(c);
}

/* An encrypted version-2 blob built by hand the way swtpm writes one
 * (IV_LEN 0: no IV record, as the first version-2 files had). */
static void build_v2_encrypted(struct buf *b, const struct bs_swtpm_key *k, const uint8_t *data,
			       size_t len, size_t iv_len)
{
	uint8_t iv[64], ivblk[16] = {0};
	for (size_t i = 0; i < sizeof iv; i++)
		iv[i] = (uint8_t)(0xa0 + i);
	if (iv_len)
		memcpy(ivblk, iv, 16);
	uint8_t *plain = malloc(len + 32), *ct = malloc(len + 32);
	assert_true(plain && ct);
	memcpy(plain, data, len);
	size_t ct_len = pad_to_key(plain, len, k->len);
	cbc_encrypt(k, ivblk, plain, ct_len, ct);
	uint8_t *mac_in = malloc(ct_len + iv_len);
	memcpy(mac_in, ct, ct_len);
	memcpy(mac_in + ct_len, iv, iv_len);
	uint8_t mac[32];
	unsigned mac_len = 0;
	assert_non_null(HMAC(EVP_sha256(), k->bytes, (int)k->len, mac_in, ct_len + iv_len, mac,
			     &mac_len));
	buf_reset(b);
	hdr(b, 2, 1, BS_SWTPM_FLAG_ENCRYPTED | (k->len == 32 ? BS_SWTPM_FLAG_256BIT_KEY : 0));
	tlv(b, 2, ct, ct_len);
	tlv(b, 3, mac, mac_len);
	if (iv_len)
		tlv(b, 6, iv, iv_len);
	fix_totlen(b);
	free(plain);
	free(ct);
	free(mac_in);
}

/* An encrypted version-1 body: AES-CBC, zero IV, of SHA-256(data) || data. */
static void build_v1_encrypted(struct buf *b, bool header, const struct bs_swtpm_key *k,
			       const uint8_t *data, size_t len)
{
	uint8_t *plain = malloc(len + 32 + 32), *ct = malloc(len + 64);
	unsigned mdlen;
	assert_int_equal(EVP_Digest(data, len, plain, &mdlen, EVP_sha256(), NULL), 1);
	memcpy(plain + 32, data, len);
	size_t n = pad_to_key(plain, len + 32, k->len);
	static const uint8_t iv0[16];
	cbc_encrypt(k, iv0, plain, n, ct);
	buf_reset(b);
	if (header)
		hdr(b, 1, 1, BS_SWTPM_FLAG_ENCRYPTED);
	buf_put(b, ct, n);
	if (header)
		fix_totlen(b);
	free(plain);
	free(ct);
}

static uint8_t sample_data[300];

static void setup_sample(void)
{
	t_fill(sample_data, sizeof sample_data, 42);
}

/* Decodes and asserts success with DATA as the result. */
static void expect_data(const struct buf *b, const struct bs_swtpm_key *k, unsigned flags,
			const void *data, size_t len, struct bs_swtpm_blob_info *info)
{
	uint8_t *out;
	size_t out_len;
	int rc = bs_swtpm_blob_decode(b->p, b->len, k, flags, label, &out, &out_len, info);
	if (rc)
		fail_msg("decode: %s", last_error());
	assert_int_equal(out_len, len);
	assert_memory_equal(out, data, len);
	bs_swtpm_free(out, out_len);
}

/* Decodes and asserts error RC with nothing returned and a message that
 * names the file. */
static void expect_error(const uint8_t *p, size_t len, const struct bs_swtpm_key *k,
			 unsigned flags, int want)
{
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 99;
	int rc = bs_swtpm_blob_decode(p, len, k, flags, label, &out, &out_len, NULL);
	if (rc != want)
		fail_msg("decode of %zu octets: rc %d (want %d): %s", len, rc, want, last_error());
	assert_ptr_equal(out, (uint8_t *)1); /* outputs are untouched on failure */
	assert_int_equal(out_len, 99);
	assert_non_null(strstr(last_error(), label));
}

/* ---- formats --------------------------------------------------------------- */

static void test_plain_v2_layout_and_round_trip(void **state)
{
	(void)state;
	setup_sample();
	uint8_t *blob;
	size_t len;
	assert_int_equal(bs_swtpm_blob_encode(sample_data, sizeof sample_data, NULL, &blob, &len),
			 BS_OK);
	/* Header {2, 1, 10, flags 0, totlen}, then one data record. */
	assert_int_equal(len, 10 + 6 + sizeof sample_data);
	static const uint8_t head[] = {2, 1, 0, 10, 0, 0};
	assert_memory_equal(blob, head, sizeof head);
	assert_int_equal(get32(blob + 6), len);
	assert_int_equal(blob[10], 0);
	assert_int_equal(blob[11], 1);
	assert_int_equal(get32(blob + 12), sizeof sample_data);
	assert_memory_equal(blob + 16, sample_data, sizeof sample_data);
	struct buf b = {blob, len, len};
	struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
	expect_data(&b, NULL, 0, sample_data, sizeof sample_data, &info);
	assert_int_equal(info.blob_version, 2);
	assert_true(info.has_header);
	assert_false(info.encrypted);
	assert_int_equal(info.data_len, sizeof sample_data);
	/* Deterministic: the same data encodes to the same octets. */
	uint8_t *again;
	size_t again_len;
	assert_int_equal(bs_swtpm_blob_encode(sample_data, sizeof sample_data, NULL, &again,
						 &again_len), BS_OK);
	assert_int_equal(again_len, len);
	assert_memory_equal(again, blob, len);
	free(again);
	/* Empty data. */
	uint8_t *e;
	size_t el;
	assert_int_equal(bs_swtpm_blob_encode(NULL, 0, NULL, &e, &el), BS_OK);
	struct buf eb = {e, el, el};
	expect_data(&eb, NULL, 0, "", 0, NULL);
	free(e);
	free(blob);
}

static void test_header_version_1_and_headerless(void **state)
{
	(void)state;
	setup_sample();
	struct buf b = {0};
	hdr(&b, 1, 1, 0);
	buf_put(&b, sample_data, sizeof sample_data);
	fix_totlen(&b);
	struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
	expect_data(&b, NULL, 0, sample_data, sizeof sample_data, &info);
	assert_int_equal(info.blob_version, 1);
	assert_true(info.has_header);

	/* No header: refused unless asked for, then all of it is the data. */
	buf_reset(&b);
	buf_put(&b, sample_data, sizeof sample_data);
	expect_error(b.p, b.len, NULL, 0, BS_ECORRUPT);
	expect_data(&b, NULL, BS_SWTPM_HEADERLESS, sample_data, sizeof sample_data, &info);
	assert_int_equal(info.blob_version, 1);
	assert_false(info.has_header);

	/* Version 1, encrypted, with and without a header. */
	struct bs_swtpm_key k = key_of(16, 3), wrong = key_of(16, 4);
	build_v1_encrypted(&b, true, &k, sample_data, sizeof sample_data);
	expect_data(&b, &k, 0, sample_data, sizeof sample_data, &info);
	assert_true(info.encrypted);
	expect_error(b.p, b.len, &wrong, 0, BS_EKEY);
	expect_error(b.p, b.len, NULL, 0, BS_EKEY);
	build_v1_encrypted(&b, false, &k, sample_data, sizeof sample_data);
	expect_data(&b, &k, BS_SWTPM_HEADERLESS, sample_data, sizeof sample_data, NULL);
	expect_error(b.p, b.len, &wrong, BS_SWTPM_HEADERLESS, BS_EKEY);
	struct bs_swtpm_key k256 = key_of(32, 9);
	build_v1_encrypted(&b, false, &k256, sample_data, 17);
	expect_data(&b, &k256, BS_SWTPM_HEADERLESS, sample_data, 17, NULL);
	buf_free(&b);
}

static void test_encrypted_v2_hand_built(void **state)
{
	(void)state;
	setup_sample();
	struct buf b = {0};
	struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
	for (size_t kl = 16; kl <= 32; kl += 16) {
		struct bs_swtpm_key k = key_of(kl, 1), wrong = key_of(kl, 2);
		struct bs_swtpm_key other = key_of(48 - kl, 1);
		/* IV records as long as the key (what swtpm writes), and none. */
		size_t iv_lens[] = {kl, 0};
		for (size_t j = 0; j < 2; j++) {
			/* Lengths around the padding boundaries. */
			size_t lens[] = {0, 1, 15, 16, 31, 32, 33, sizeof sample_data};
			for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
				build_v2_encrypted(&b, &k, sample_data, lens[i], iv_lens[j]);
				expect_data(&b, &k, 0, sample_data, lens[i], &info);
				assert_true(info.encrypted);
				assert_int_equal(info.keylen, kl);
				expect_error(b.p, b.len, &wrong, 0, BS_EKEY);
				expect_error(b.p, b.len, &other, 0, BS_EKEY);
				expect_error(b.p, b.len, NULL, 0, BS_EKEY);
				assert_non_null(strstr(last_error(), "encrypted"));
			}
		}
	}
	buf_free(&b);
}

static void test_encoder_writes_what_swtpm_reads(void **state)
{
	(void)state;
	setup_sample();
	for (size_t kl = 16; kl <= 32; kl += 16) {
		struct bs_swtpm_key k = key_of(kl, 5);
		uint8_t *blob;
		size_t len;
		assert_int_equal(bs_swtpm_blob_encode(sample_data, 100, &k, &blob, &len), BS_OK);
		/* Header, then ciphertext, HMAC and an IV as long as the key,
		 * in swtpm's order. */
		size_t ct_len = 100 + (kl - 100 % kl);
		assert_int_equal(len, 10 + 6 + ct_len + 6 + 32 + 6 + kl);
		assert_int_equal(blob[0], 2);
		assert_int_equal(blob[1], 1);
		assert_int_equal(blob[5], kl == 32 ? 0x09 : 0x01);
		assert_int_equal(get32(blob + 6), len);
		assert_int_equal(blob[11], 2);
		assert_int_equal(get32(blob + 12), ct_len);
		const uint8_t *ct = blob + 16, *mac_rec = ct + ct_len, *iv_rec = mac_rec + 38;
		assert_int_equal(mac_rec[1], 3);
		assert_int_equal(get32(mac_rec + 2), 32);
		assert_int_equal(iv_rec[1], 6);
		assert_int_equal(get32(iv_rec + 2), kl);
		/* The HMAC covers ciphertext and the whole IV record value. */
		uint8_t *mac_in = malloc(ct_len + kl), mac[32];
		unsigned ml;
		memcpy(mac_in, ct, ct_len);
		memcpy(mac_in + ct_len, iv_rec + 6, kl);
		assert_non_null(HMAC(EVP_sha256(), k.bytes, (int)kl, mac_in, ct_len + kl, mac, &ml));
		assert_memory_equal(mac, mac_rec + 6, 32);
		free(mac_in);
		struct buf b = {blob, len, len};
		expect_data(&b, &k, 0, sample_data, 100, NULL);
		/* A fresh IV each time. */
		uint8_t *blob2;
		size_t len2;
		assert_int_equal(bs_swtpm_blob_encode(sample_data, 100, &k, &blob2, &len2), BS_OK);
		assert_int_equal(len2, len);
		assert_memory_not_equal(blob2 + 16, blob + 16, ct_len);
		free(blob2);
		free(blob);
	}
}

/* ---- hostile blobs --------------------------------------------------------- */

static void test_truncation_at_every_octet(void **state)
{
	(void)state;
	setup_sample();
	struct bs_swtpm_key k = key_of(32, 8);
	struct buf blobs[3] = {{0}};
	uint8_t *p;
	size_t len;
	assert_int_equal(bs_swtpm_blob_encode(sample_data, 64, NULL, &p, &len), BS_OK);
	buf_put(&blobs[0], p, len);
	free(p);
	assert_int_equal(bs_swtpm_blob_encode(sample_data, 64, &k, &p, &len), BS_OK);
	buf_put(&blobs[1], p, len);
	free(p);
	hdr(&blobs[2], 1, 1, 0);
	buf_put(&blobs[2], sample_data, 64);
	fix_totlen(&blobs[2]);
	for (int i = 0; i < 3; i++) {
		struct buf *b = &blobs[i];
		const struct bs_swtpm_key *kk = i == 1 ? &k : NULL;
		for (size_t n = 0; n < b->len; n++) {
			/* Exactly-sized copies: a read past N is an ASan report. */
			uint8_t *c = malloc(n ? n : 1);
			memcpy(c, b->p, n);
			expect_error(c, n, kk, 0, BS_ECORRUPT);
			/* With a total length that agrees, the records are
			 * what must catch it (version 1 has none: any length
			 * is data). */
			if (n >= 10 && i != 2) {
				put32(c + 6, (uint32_t)n);
				uint8_t *out = NULL;
				size_t ol = 0;
				int rc = bs_swtpm_blob_decode(c, n, kk, 0, label, &out, &ol, NULL);
				/* Cut just before the IV record: a blob without an
				 * IV (as swtpm once wrote) whose HMAC then fails. */
				if (rc != BS_ECORRUPT && !(i == 1 && rc == BS_EKEY))
					fail_msg("blob %d cut at %zu: rc %d: %s", i, n, rc, last_error());
				assert_null(out);
				assert_non_null(strstr(last_error(), "at offset"));
				assert_non_null(strstr(last_error(), label));
			}
			free(c);
		}
	}
	for (int i = 0; i < 3; i++)
		buf_free(&blobs[i]);
}

static void test_bit_flips(void **state)
{
	(void)state;
	setup_sample();
	struct bs_swtpm_key k = key_of(16, 11);
	uint8_t *enc, *plain;
	size_t enc_len, plain_len;
	size_t n = t_quick() ? 40 : 120;
	assert_int_equal(bs_swtpm_blob_encode(sample_data, n, &k, &enc, &enc_len), BS_OK);
	assert_int_equal(bs_swtpm_blob_encode(sample_data, n, NULL, &plain, &plain_len), BS_OK);
	/* Every flip of an encrypted blob is caught: by the header and
	 * record checks, the key size, or the HMAC. */
	for (size_t bit = 0; bit < enc_len * 8; bit++) {
		uint8_t *c = malloc(enc_len);
		memcpy(c, enc, enc_len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		uint8_t *out = NULL;
		size_t ol = 0;
		int rc = bs_swtpm_blob_decode(c, enc_len, &k, 0, label, &out, &ol, NULL);
		if (rc == BS_OK)
			fail_msg("flip of bit %zu accepted", bit);
		assert_null(out);
		assert_true(rc == BS_ECORRUPT || rc == BS_EKEY || rc == BS_EUNSUPPORTED);
		assert_non_null(strstr(last_error(), label));
		free(c);
	}
	/* A plain blob has no check of its own: flips in the data decode
	 * (to other data), flips elsewhere are refused; nothing crashes. */
	for (size_t bit = 0; bit < plain_len * 8; bit++) {
		uint8_t *c = malloc(plain_len);
		memcpy(c, plain, plain_len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		uint8_t *out = NULL;
		size_t ol = 0;
		int rc = bs_swtpm_blob_decode(c, plain_len, NULL, 0, label, &out, &ol, NULL);
		if (bit / 8 >= 16)
			assert_int_equal(rc, BS_OK);
		else if (rc == BS_OK)
			fail_msg("flip of header or record bit %zu accepted", bit);
		if (!rc) {
			assert_int_equal(ol, n);
			bs_swtpm_free(out, ol);
		} else {
			assert_null(out);
		}
		free(c);
	}
	free(enc);
	free(plain);
}

static void test_header_and_record_errors(void **state)
{
	(void)state;
	setup_sample();
	struct buf b = {0};
	struct {
		unsigned version, min_version, flags;
		int want;
	} hdrs[] = {
		{3, 3, 0, BS_EUNSUPPORTED}, /* needs a newer reader */
		{3, 1, 0, BS_EUNSUPPORTED}, /* newer, and its records are unknown */
		{0, 0, 0, BS_ECORRUPT},
		{1, 2, 0, BS_ECORRUPT},     /* minimum above the version */
		{2, 1, 0x02, BS_EUNSUPPORTED}, /* migration flags */
		{2, 1, 0x100, BS_EUNSUPPORTED},
		{2, 1, 0x08, BS_ECORRUPT},  /* key size without "encrypted" */
	};
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		buf_reset(&b);
		hdr(&b, hdrs[i].version, hdrs[i].min_version, hdrs[i].flags);
		tlv(&b, 1, sample_data, 8);
		fix_totlen(&b);
		expect_error(b.p, b.len, NULL, 0, hdrs[i].want);
		assert_non_null(strstr(last_error(), "at offset"));
	}
	/* Header size other than 10. */
	buf_reset(&b);
	hdr(&b, 2, 1, 0);
	put16(b.p + 2, 12);
	tlv(&b, 1, sample_data, 8);
	fix_totlen(&b);
	expect_error(b.p, b.len, NULL, 0, BS_ECORRUPT);
	assert_non_null(strstr(last_error(), "at offset 2"));
	/* Records: unknown, migration, repeated, missing, misplaced. */
	struct {
		unsigned flags;
		unsigned tags[3];
		int want;
	} recs[] = {
		{0, {9}, BS_EUNSUPPORTED},
		{0, {4}, BS_EUNSUPPORTED},
		{0, {1, 1}, BS_ECORRUPT},
		{0, {0}, BS_EUNSUPPORTED},
		{0, {1, 3}, BS_ECORRUPT},
		{1, {1}, BS_ECORRUPT},
		{1, {2}, BS_ECORRUPT},
		{1, {3}, BS_ECORRUPT},
	};
	for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
		buf_reset(&b);
		hdr(&b, 2, 1, recs[i].flags);
		for (int j = 0; j < 3 && recs[i].tags[j]; j++)
			tlv(&b, recs[i].tags[j], sample_data, 32);
		if (!recs[i].tags[0])
			tlv(&b, 0, sample_data, 32);
		fix_totlen(&b);
		expect_error(b.p, b.len, NULL, 0, recs[i].want);
	}
	/* No records at all. */
	buf_reset(&b);
	hdr(&b, 2, 1, 0);
	fix_totlen(&b);
	expect_error(b.p, b.len, NULL, 0, BS_ECORRUPT);
	/* HMAC of the wrong size, IV too short, ciphertext not in blocks. */
	struct bs_swtpm_key k = key_of(16, 1);
	size_t bad[][3] = {{32, 31, 16}, {32, 32, 8}, {30, 32, 16}};
	for (size_t i = 0; i < 3; i++) {
		buf_reset(&b);
		hdr(&b, 2, 1, 1);
		tlv(&b, 2, sample_data, bad[i][0]);
		tlv(&b, 3, sample_data, bad[i][1]);
		tlv(&b, 6, sample_data, bad[i][2]);
		fix_totlen(&b);
		expect_error(b.p, b.len, &k, 0, BS_ECORRUPT);
	}
	/* A record length near 2^32 does not wrap. */
	buf_reset(&b);
	hdr(&b, 2, 1, 0);
	tlv(&b, 1, sample_data, 4);
	put32(b.p + 12, 0xfffffffeu);
	fix_totlen(&b);
	expect_error(b.p, b.len, NULL, 0, BS_ECORRUPT);
	assert_non_null(strstr(last_error(), "at offset 12"));
	/* Larger than the limit. */
	uint8_t *big = calloc(1, BS_SWTPM_MAX_BLOB + 1u);
	assert_non_null(big);
	expect_error(big, BS_SWTPM_MAX_BLOB + 1u, NULL, 0, BS_ELIMIT);
	free(big);
	buf_free(&b);
}

/* ---- keys ------------------------------------------------------------------ */

static void test_key_files(void **state)
{
	(void)state;
	struct bs_swtpm_key k = BS_SWTPM_KEY_INIT;
	const char *h128 = "000102030405060708090a0b0c0d0e0f";
	assert_int_equal(bs_swtpm_key_parse(h128, strlen(h128), BS_SWTPM_KEY_HEX, 0, &k),
			 BS_OK);
	assert_int_equal(k.len, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(k.bytes[i], i);
	const char *h256 = "0x000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f\n";
	assert_int_equal(bs_swtpm_key_parse(h256, strlen(h256), BS_SWTPM_KEY_HEX, 32, &k),
			 BS_OK);
	assert_int_equal(k.len, 32);
	assert_int_equal(k.bytes[31], 0x1f);
	/* Wrong lengths, non-hex, trailing text, cipher mismatch. */
	const char *bad[] = {"0001020304050607080900a0b0c0d0e", "000102030405060708090a0b0c0d0e0g",
			     "000102030405060708090a0b0c0d0e0f zz", "", "0x",
			     "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(bs_swtpm_key_parse(bad[i], strlen(bad[i]), BS_SWTPM_KEY_HEX, 0,
						       &k), BS_EINVAL);
	assert_int_equal(bs_swtpm_key_parse(h128, strlen(h128), BS_SWTPM_KEY_HEX, 32, &k),
			 BS_EINVAL);
	assert_null(strstr(last_error(), "0001"));
	uint8_t raw[32];
	t_fill(raw, sizeof raw, 3);
	assert_int_equal(bs_swtpm_key_parse(raw, 32, BS_SWTPM_KEY_BINARY, 0, &k), BS_OK);
	assert_memory_equal(k.bytes, raw, 32);
	assert_int_equal(bs_swtpm_key_parse(raw, 20, BS_SWTPM_KEY_BINARY, 0, &k), BS_EINVAL);
	bs_swtpm_key_wipe(&k);
	assert_int_equal(k.len, 0);
}

static void test_passphrase_kdfs(void **state)
{
	(void)state;
	/* Reference values from Python's hashlib: pbkdf2_hmac("sha512",
	 * b"secret\n", b"swtpm", 1000, n) and sha512(b"secret\n"). */
	static const uint8_t pbkdf2_32[32] = {
		0x92, 0xbb, 0x9e, 0xf4, 0xea, 0x65, 0x46, 0x97, 0xa6, 0x5e, 0x16, 0x89, 0xd0, 0xa0, 0x18, 0x5b,
		0x4e, 0x7f, 0x7e, 0x2b, 0x31, 0x73, 0x63, 0x32, 0x77, 0xe1, 0x40, 0x8c, 0x93, 0xd8, 0x38, 0x26};
	static const uint8_t sha512_32[32] = {
		0xea, 0xa1, 0x6b, 0x9c, 0xed, 0x0b, 0x5c, 0x6e, 0xce, 0x7a, 0xae, 0x07, 0xcb, 0x47, 0xc6, 0x71,
		0xe8, 0xc8, 0xf0, 0x3b, 0xfe, 0x80, 0x7f, 0x94, 0x18, 0x09, 0x47, 0x7a, 0x84, 0x73, 0x37, 0xaf};
	struct bs_swtpm_key k = BS_SWTPM_KEY_INIT;
	assert_int_equal(bs_swtpm_key_from_passphrase("secret\n", 7, BS_SWTPM_KDF_PBKDF2, 32, &k),
			 BS_OK);
	assert_int_equal(k.len, 32);
	assert_memory_equal(k.bytes, pbkdf2_32, 32);
	assert_int_equal(bs_swtpm_key_from_passphrase("secret\n", 7, BS_SWTPM_KDF_PBKDF2, 16, &k),
			 BS_OK);
	assert_int_equal(k.len, 16);
	assert_memory_equal(k.bytes, pbkdf2_32, 16);
	assert_int_equal(bs_swtpm_key_from_passphrase("secret\n", 7, BS_SWTPM_KDF_SHA512, 32, &k),
			 BS_OK);
	assert_memory_equal(k.bytes, sha512_32, 32);
	/* The newline is part of the passphrase, as in swtpm. */
	assert_int_equal(bs_swtpm_key_from_passphrase("secret", 6, BS_SWTPM_KDF_PBKDF2, 32, &k),
			 BS_OK);
	assert_memory_not_equal(k.bytes, pbkdf2_32, 32);
	assert_int_equal(bs_swtpm_key_from_passphrase("x", 1, BS_SWTPM_KDF_PBKDF2, 24, &k),
			 BS_EINVAL);
	bs_swtpm_key_wipe(&k);
}

/* Blobs on the control channel, built by hand as swtpm sends them: a plain
 * one (flags 0x04, record 4 around record 1), one under a migration key
 * (flags 0x06 / 0x16, records 5, 3, 7 around record 1), and the forms
 * CMD_SET_STATEBLOB also takes (bare, version 1, a state file). */
static void test_wire_blobs(void **state)
{
	(void)state;
	setup_sample();
	struct buf w = {0}, inner = {0};
	uint8_t *out = NULL;
	size_t n = 0;
	int kind = -1;
	/* plain, hand-built */
	tlv(&inner, 1, sample_data, sizeof sample_data);
	hdr(&w, 2, 1, BS_SWTPM_FLAG_MIGRATION_DATA);
	tlv(&w, 4, inner.p, inner.len);
	fix_totlen(&w);
	assert_int_equal(bs_swtpm_wire_decode(w.p, w.len, NULL, NULL, label, &out, &n, &kind), BS_OK);
	assert_int_equal(kind, BS_SWTPM_WIRE_PLAIN);
	assert_int_equal(n, sizeof sample_data);
	assert_memory_equal(out, sample_data, n);
	bs_swtpm_free(out, n);
	/* the encoder writes exactly that */
	assert_int_equal(bs_swtpm_wire_encode(sample_data, sizeof sample_data, NULL, &out, &n), BS_OK);
	assert_int_equal(n, w.len);
	assert_memory_equal(out, w.p, n);
	bs_swtpm_free(out, n);
	/* every truncation is an error, never a read past the end */
	for (size_t cut = 1; cut < w.len; cut++) {
		uint8_t *c = malloc(cut);
		memcpy(c, w.p, cut);
		out = NULL;
		int rc = bs_swtpm_wire_decode(c, cut, NULL, NULL, label, &out, &n, &kind);
		/* a cut blob no longer has a header covering it: taken as bare */
		assert_true(rc == BS_OK && kind == BS_SWTPM_WIRE_BARE && n == cut);
		bs_swtpm_free(out, n);
		free(c);
	}
	/* a record running past the end, with a header that covers the blob */
	uint8_t *c = malloc(w.len);
	memcpy(c, w.p, w.len);
	put32(c + 12, (uint32_t)w.len);
	assert_int_equal(bs_swtpm_wire_decode(c, w.len, NULL, NULL, label, &out, &n, &kind), BS_ECORRUPT);
	free(c);

	for (size_t kl = 16; kl <= 32; kl += 16) {
		struct bs_swtpm_key k = key_of(kl, 3), other = key_of(kl, 4), wrong = key_of(48 - kl, 3);
		/* hand-built, IV as long as the key, HMAC over ciphertext || IV */
		uint8_t iv[32], plain[400], ct[400], mac[32];
		unsigned ml = 0;
		for (size_t i = 0; i < sizeof iv; i++)
			iv[i] = (uint8_t)(0x30 + i);
		memcpy(plain, inner.p, inner.len);
		size_t ctl = pad_to_key(plain, inner.len, kl);
		cbc_encrypt(&k, iv, plain, ctl, ct);
		uint8_t macin[432];
		memcpy(macin, ct, ctl);
		memcpy(macin + ctl, iv, kl);
		assert_non_null(HMAC(EVP_sha256(), k.bytes, (int)kl, macin, ctl + kl, mac, &ml));
		buf_reset(&w);
		hdr(&w, 2, 1, 0x06 | (kl == 32 ? 0x10 : 0));
		tlv(&w, 5, ct, ctl);
		tlv(&w, 3, mac, ml);
		tlv(&w, 7, iv, kl);
		fix_totlen(&w);
		assert_int_equal(bs_swtpm_wire_decode(w.p, w.len, &k, NULL, label, &out, &n, &kind), BS_OK);
		assert_int_equal(kind, BS_SWTPM_WIRE_ENCRYPTED);
		assert_int_equal(n, sizeof sample_data);
		assert_memory_equal(out, sample_data, n);
		bs_swtpm_free(out, n);
		out = NULL;
		assert_int_equal(bs_swtpm_wire_decode(w.p, w.len, NULL, NULL, label, &out, &n, &kind), BS_EKEY);
		assert_int_equal(bs_swtpm_wire_decode(w.p, w.len, &other, NULL, label, &out, &n, &kind), BS_EKEY);
		assert_int_equal(bs_swtpm_wire_decode(w.p, w.len, &wrong, NULL, label, &out, &n, &kind), BS_EKEY);
		assert_null(out);
		/* every flipped bit of the ciphertext, the HMAC or the IV is caught */
		for (size_t i = 10; i < w.len; i += 7) {
			w.p[i] ^= 0x10;
			int rc = bs_swtpm_wire_decode(w.p, w.len, &k, NULL, label, &out, &n, &kind);
			assert_int_not_equal(rc, BS_OK);
			w.p[i] ^= 0x10;
		}
		/* the encoder's output (fresh IV) decodes, and is swtpm's layout */
		assert_int_equal(bs_swtpm_wire_encode(sample_data, sizeof sample_data, &k, &out, &n), BS_OK);
		assert_int_equal(out[5], 0x06 | (kl == 32 ? 0x10 : 0));
		assert_int_equal(get32(out + 6), n);
		uint8_t *back = NULL;
		size_t bn = 0;
		assert_int_equal(bs_swtpm_wire_decode(out, n, &k, NULL, label, &back, &bn, &kind), BS_OK);
		assert_int_equal(bn, sizeof sample_data);
		assert_memory_equal(back, sample_data, bn);
		bs_swtpm_free(back, bn);
		bs_swtpm_free(out, n);
	}
	/* bare libtpms blob, version-1 framing, a state file */
	static const uint8_t bare[] = {0, 3, 0xab, 0x36, 0x47, 0x23, 1, 2, 3, 4, 5, 6};
	assert_int_equal(bs_swtpm_wire_decode(bare, sizeof bare, NULL, NULL, label, &out, &n, &kind), BS_OK);
	assert_int_equal(kind, BS_SWTPM_WIRE_BARE);
	assert_memory_equal(out, bare, sizeof bare);
	bs_swtpm_free(out, n);
	buf_reset(&w);
	hdr(&w, 1, 1, 0);
	buf_put(&w, bare, sizeof bare);
	fix_totlen(&w);
	assert_int_equal(bs_swtpm_wire_decode(w.p, w.len, NULL, NULL, label, &out, &n, &kind), BS_OK);
	assert_int_equal(kind, BS_SWTPM_WIRE_V1);
	assert_int_equal(n, sizeof bare);
	bs_swtpm_free(out, n);
	assert_int_equal(bs_swtpm_blob_encode(bare, sizeof bare, NULL, &out, &n), BS_OK);
	uint8_t *f = out;
	size_t fn = n;
	assert_int_equal(bs_swtpm_wire_decode(f, fn, NULL, NULL, label, &out, &n, &kind), BS_OK);
	assert_int_equal(kind, BS_SWTPM_WIRE_FILE);
	assert_memory_equal(out, bare, sizeof bare);
	bs_swtpm_free(out, n);
	free(f);
	/* newer versions and unknown flags are refused */
	buf_reset(&w);
	hdr(&w, 3, 3, BS_SWTPM_FLAG_MIGRATION_DATA);
	tlv(&w, 4, inner.p, inner.len);
	fix_totlen(&w);
	assert_int_equal(bs_swtpm_wire_decode(w.p, w.len, NULL, NULL, label, &out, &n, &kind), BS_EUNSUPPORTED);
	buf_free(&w);
	buf_free(&inner);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_v2_layout_and_round_trip),
		cmocka_unit_test(test_header_version_1_and_headerless),
		cmocka_unit_test(test_encrypted_v2_hand_built),
		cmocka_unit_test(test_encoder_writes_what_swtpm_reads),
		cmocka_unit_test(test_truncation_at_every_octet),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_header_and_record_errors),
		cmocka_unit_test(test_key_files),
		cmocka_unit_test(test_passphrase_kdfs),
		cmocka_unit_test(test_wire_blobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
