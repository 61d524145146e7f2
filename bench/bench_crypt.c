/* bench_crypt.c - encrypted put and get of 64 KiB through the library
 * against raw EVP AES-256-GCM on the same buffers in the same run.
 *
 *   bench_crypt [ITERATIONS]
 *
 * Prints throughputs and the two ratios (library / raw EVP); the goal in
 * docs/CRYPTO.md is at least 0.70 for both.  The image lives in memory with
 * BS_OPEN_NOSYNC so that the storage does not hide the cipher's cost; a put
 * still runs the whole write path (AAD, nonce, seal, CRC-32C, slot write). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "blobstore.h"
#include "blobstore_backend.h"
#include "blobstore_crypt.h"

#define SIZE (64u * 1024u)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_crypt: %s: %s\n", what, bs_errmsg());
	exit(1);
}

/* Raw EVP: one context keyed once, a fresh random nonce and 16-octet tag
 * per buffer, like the library does (and like openssl speed -evp). */
static double raw_gcm(bool enc, const uint8_t *key, const uint8_t *data, int iters)
{
	/* Own buffers: plaintext IN, ciphertext CT (+ room for the final). */
	uint8_t *in = malloc(SIZE + 64), *out = malloc(SIZE + 64), *ct = malloc(SIZE + 64);
	if (!in || !out || !ct)
		exit(1);
	memcpy(in, data, SIZE);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t nonce[12], tag[16], aad[64];
	int ol;
	memset(aad, 0x5a, sizeof aad);
	RAND_bytes(nonce, sizeof nonce);
	EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, nonce, NULL);
	EVP_EncryptUpdate(c, NULL, &ol, aad, sizeof aad);
	EVP_EncryptUpdate(c, ct, &ol, in, SIZE);
	EVP_EncryptFinal_ex(c, ct + SIZE, &ol);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag);
	EVP_CIPHER_CTX *d = EVP_CIPHER_CTX_new();
	EVP_DecryptInit_ex2(d, EVP_aes_256_gcm(), key, NULL, NULL);
	double t0 = now();
	for (int i = 0; i < iters; i++) {
		if (enc) {
			RAND_bytes(nonce, sizeof nonce);
			EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL);
			EVP_EncryptUpdate(c, NULL, &ol, aad, sizeof aad);
			EVP_EncryptUpdate(c, out, &ol, in, SIZE);
			EVP_EncryptFinal_ex(c, out + SIZE, &ol);
			EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag);
		} else {
			/* Decrypt the one valid ciphertext again and again. */
			EVP_DecryptInit_ex2(d, NULL, NULL, nonce, NULL);
			EVP_DecryptUpdate(d, NULL, &ol, aad, sizeof aad);
			EVP_DecryptUpdate(d, out, &ol, ct, SIZE);
			EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, 16, tag);
			if (EVP_DecryptFinal_ex(d, out + SIZE, &ol) != 1) {
				fprintf(stderr, "bench_crypt: raw decrypt failed\n");
				exit(1);
			}
		}
	}
	double t = now() - t0;
	EVP_CIPHER_CTX_free(c);
	EVP_CIPHER_CTX_free(d);
	free(in);
	free(out);
	free(ct);
	return (double)SIZE * iters / t / 1e6;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20000;
	if (iters < 1)
		iters = 1;
	uint8_t *data = malloc(SIZE + 64), *out = malloc(SIZE + 64), key[32];
	if (!data || !out)
		return 1;
	RAND_bytes(data, SIZE);
	RAND_bytes(key, sizeof key);

	struct bs_backend *be;
	bs_image *img;
	bs_key *k;
	if (bs_backend_mem(NULL, 0, &be) ||
	    bs_open_backend(be, "bench.img", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img))
		die("open");
	if (bs_key_from_bytes(key, sizeof key, &k) || bs_image_init_encryption(img, k, NULL))
		die("encryption");
	bs_key_free(k);
	struct bs_entry_opts o = {.capacity = SIZE, .flags = BS_ENTRY_ENCRYPT};
	bs_entry *e;
	if (bs_entry_create2(img, "vtpm", "permall", &o, data, SIZE, &e))
		die("create");

	/* Warm up both paths, then measure them interleaved in one run. */
	double best_raw_e = 0, best_raw_d = 0, best_put = 0, best_get = 0;
	for (int round = 0; round < 3; round++) {
		double re = raw_gcm(true, key, data, iters / 3 + 1);
		double rd = raw_gcm(false, key, data, iters / 3 + 1);
		double t0 = now();
		for (int i = 0; i < iters / 3 + 1; i++)
			if (bs_entry_write(img, e, data, SIZE))
				die("put");
		double put = (double)SIZE * (iters / 3 + 1) / (now() - t0) / 1e6;
		size_t n;
		t0 = now();
		for (int i = 0; i < iters / 3 + 1; i++)
			if (bs_entry_read(img, e, out, SIZE, &n) || n != SIZE)
				die("get");
		double get = (double)SIZE * (iters / 3 + 1) / (now() - t0) / 1e6;
		if (re > best_raw_e)
			best_raw_e = re;
		if (rd > best_raw_d)
			best_raw_d = rd;
		if (put > best_put)
			best_put = put;
		if (get > best_get)
			best_get = get;
	}
	if (memcmp(out, data, SIZE)) {
		fprintf(stderr, "bench_crypt: data read back differs\n");
		return 1;
	}
	printf("crypt: 64 KiB, best of 3 rounds of %d operations\n", iters / 3 + 1);
	printf("  raw EVP AES-256-GCM encrypt   %9.0f MB/s\n", best_raw_e);
	printf("  raw EVP AES-256-GCM decrypt   %9.0f MB/s\n", best_raw_d);
	printf("  encrypted put (bs_entry_write) %8.0f MB/s  ratio %.2f\n", best_put,
	       best_put / best_raw_e);
	printf("  encrypted get (bs_entry_read)  %8.0f MB/s  ratio %.2f\n", best_get,
	       best_get / best_raw_d);
	int ok = best_put / best_raw_e >= 0.70 && best_get / best_raw_d >= 0.70;
	printf("  goal >= 0.70: %s\n", ok ? "met" : "NOT met");
	bs_close(img);
	free(data);
	free(out);
	return 0;
}
