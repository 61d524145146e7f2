/* bench_crypt.c - encrypted and checksummed put and get through the library
 * against the raw primitive on the same buffers, side by side in one run:
 *
 *   encrypted entry (AES-256-GCM)   put / get  vs  raw EVP AES-256-GCM
 *                                                  encrypt / decrypt
 *   SHA-256-checked entry           put / get  vs  raw EVP SHA-256
 *   CRC-32C-checked entry           put / get  vs  raw CRC-32C (the
 *                                                  library's own, SSE4.2)
 *
 * Each of ROUNDS rounds runs every candidate once (a batch of operations on
 * 64 KiB buffers) in an order that changes from round to round; the table
 * gives median throughputs and their ratios (library / raw; the goal in
 * docs/CRYPTO.md is at least 0.70 for the encrypted put and get).  The image
 * lives in memory with BS_OPEN_NOSYNC so that storage does not hide the
 * cost of the cipher or the check; a put still runs the whole write path
 * (AAD, nonce, seal, check, slot write).
 *
 * Environment: BENCH_QUICK=1 (few rounds), BENCH_CSV (append rows to this
 * CSV, as bench.c writes it). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <blobstore/blobstore.h>
#include <blobstore/backend.h>
#include <blobstore/crypt.h>
#include "api/api.h" /* bs_crc32c: the raw CRC-32C the library uses */
#include "bench_util.h"

#define SIZE (64u * 1024u)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_crypt: %s: %s\n", what, last_error());
	exit(1);
}

enum {
	ENC_PUT, ENC_GET, RAW_ENC, RAW_DEC,
	SHA_PUT, SHA_GET, RAW_SHA,
	CRC_PUT, CRC_GET, RAW_CRC,
	NCAND
};

static const char *const names[NCAND] = {
	"encrypted_put", "encrypted_get", "raw_aes256gcm_encrypt", "raw_aes256gcm_decrypt",
	"sha256_put", "sha256_get", "raw_sha256",
	"crc32c_put", "crc32c_get", "raw_crc32c",
};

struct state {
	bs_image *img;
	bs_entry *enc, *sha, *crc;
	uint8_t key[32];
	uint8_t *in, *out, *ct;
	/* raw EVP: one context keyed once, a fresh random nonce per buffer and
	 * a 16-octet tag, like the library (and like openssl speed -evp) */
	EVP_CIPHER_CTX *ec, *dc;
	EVP_MD_CTX *md;
	uint8_t nonce[12], tag[16], aad[64];
	volatile uint32_t sink;
};

static void raw_encrypt(struct state *s)
{
	int ol;
	RAND_bytes(s->nonce, sizeof s->nonce);
	if (EVP_EncryptInit_ex2(s->ec, NULL, NULL, s->nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(s->ec, NULL, &ol, s->aad, sizeof s->aad) != 1 ||
	    EVP_EncryptUpdate(s->ec, s->ct, &ol, s->in, SIZE) != 1 ||
	    EVP_EncryptFinal_ex(s->ec, s->ct + SIZE, &ol) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->ec, EVP_CTRL_AEAD_GET_TAG, 16, s->tag) != 1)
		die("raw encrypt");
}

static void raw_decrypt(struct state *s)
{
	int ol;
	if (EVP_DecryptInit_ex2(s->dc, NULL, NULL, s->nonce, NULL) != 1 ||
	    EVP_DecryptUpdate(s->dc, NULL, &ol, s->aad, sizeof s->aad) != 1 ||
	    EVP_DecryptUpdate(s->dc, s->out, &ol, s->ct, SIZE) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->dc, EVP_CTRL_AEAD_SET_TAG, 16, s->tag) != 1 ||
	    EVP_DecryptFinal_ex(s->dc, s->out + SIZE, &ol) != 1)
		die("raw decrypt");
}

static void raw_sha256(struct state *s)
{
	uint8_t md[32];
	if (EVP_DigestInit_ex2(s->md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(s->md, s->in, SIZE) != 1 || EVP_DigestFinal_ex(s->md, md, NULL) != 1)
		die("raw sha256");
	s->sink += md[0];
}

static void put(struct state *s, bs_entry *e)
{
	if (bs_entry_write(e, s->in, SIZE))
		die("put");
}

static void get(struct state *s, bs_entry *e)
{
	size_t n;
	if (bs_entry_read(e, s->out, SIZE, &n) || n != SIZE)
		die("get");
}

/* One batch of ITERS operations of candidate C; returns MB/s. */
static double run(struct state *s, int c, int iters)
{
	double t0 = now();
	for (int i = 0; i < iters; i++) {
		s->in[i % SIZE]++; /* every put carries new data */
		switch (c) {
		case ENC_PUT: put(s, s->enc); break;
		case ENC_GET: get(s, s->enc); break;
		case RAW_ENC: raw_encrypt(s); break;
		case RAW_DEC: raw_decrypt(s); break;
		case SHA_PUT: put(s, s->sha); break;
		case SHA_GET: get(s, s->sha); break;
		case RAW_SHA: raw_sha256(s); break;
		case CRC_PUT: put(s, s->crc); break;
		case CRC_GET: get(s, s->crc); break;
		case RAW_CRC: s->sink += bs__crc32c(0, s->in, SIZE); break;
		}
	}
	return (double)SIZE * iters / (now() - t0) / 1e6;
}

int main(void)
{
	bool quick = getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0");
	size_t rounds = quick ? 3 : 21;
	int iters = quick ? 50 : 400;
	struct state s = {0};
	s.in = malloc(SIZE + 64);
	s.out = malloc(SIZE + 64);
	s.ct = malloc(SIZE + 64);
	if (!s.in || !s.out || !s.ct)
		return 1;
	RAND_bytes(s.in, SIZE);
	RAND_bytes(s.key, sizeof s.key);
	memset(s.aad, 0x5a, sizeof s.aad);

	struct bs_backend *be;
	bs_key *k;
	if (bs_backend_mem(NULL, 0, &be) ||
	    bs_image_open_backend(be, "bench.img", BS_OPEN_CREATE | BS_OPEN_NOSYNC, &s.img))
		die("open");
	if (bs_key_from_bytes(s.key, sizeof s.key, &k) || bs_image_init_encryption(s.img, k, NULL))
		die("encryption");
	bs_key_free(k);
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = SIZE, .flags = BS_ENTRY_ENCRYPT};
	if (bs_entry_create(s.img, "vtpm", "permall", &o, s.in, SIZE, &s.enc))
		die("create encrypted");
	o = (struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = SIZE, .checksum = BS_CHECKSUM_SHA256};
	if (bs_entry_create(s.img, "bench", "sha256", &o, s.in, SIZE, &s.sha))
		die("create sha256");
	o = (struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = SIZE, .checksum = BS_CHECKSUM_CRC32C};
	if (bs_entry_create(s.img, "bench", "crc32c", &o, s.in, SIZE, &s.crc))
		die("create crc32c");

	s.ec = EVP_CIPHER_CTX_new();
	s.dc = EVP_CIPHER_CTX_new();
	s.md = EVP_MD_CTX_new();
	if (!s.ec || !s.dc || !s.md ||
	    EVP_EncryptInit_ex2(s.ec, EVP_aes_256_gcm(), s.key, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(s.dc, EVP_aes_256_gcm(), s.key, NULL, NULL) != 1)
		die("EVP setup");
	raw_encrypt(&s); /* the one ciphertext raw_decrypt opens again and again */

	double *mbs[NCAND];
	for (int c = 0; c < NCAND; c++)
		if (!(mbs[c] = calloc(rounds, sizeof **mbs)))
			return 1;
	for (int c = 0; c < NCAND; c++)
		run(&s, c, iters / 4 + 1); /* warm-up */
	for (size_t r = 0; r < rounds; r++) {
		size_t order[NCAND];
		permute(r, NCAND, order);
		for (size_t i = 0; i < NCAND; i++)
			mbs[order[i]][r] = run(&s, (int)order[i], iters);
	}
	double m[NCAND];
	for (int c = 0; c < NCAND; c++)
		m[c] = median(mbs[c], rounds);

	put(&s, s.enc);
	memset(s.out, 0, SIZE);
	get(&s, s.enc);
	if (memcmp(s.out, s.in, SIZE)) {
		fprintf(stderr, "bench_crypt: data read back differs\n");
		return 1;
	}
	static const struct {
		int lib, raw;
		const char *what, *goal;
	} pairs[] = {
		{ENC_PUT, RAW_ENC, "encrypted put  / raw AES-256-GCM encrypt", ">= 0.70"},
		{ENC_GET, RAW_DEC, "encrypted get  / raw AES-256-GCM decrypt", ">= 0.70"},
		{SHA_PUT, RAW_SHA, "SHA-256 put    / raw EVP SHA-256", ""},
		{SHA_GET, RAW_SHA, "SHA-256 get    / raw EVP SHA-256", ""},
		{CRC_PUT, RAW_CRC, "CRC-32C put    / raw CRC-32C", ""},
		{CRC_GET, RAW_CRC, "CRC-32C get    / raw CRC-32C", ""},
	};
	printf("\n== put and get of 64 KiB entries (memory image, no sync) against the raw\n"
	       "   primitive on the same buffers; medians of %zu interleaved rounds of %d\n",
	       rounds, iters);
	printf("%-42s | %9s %9s | %6s %s\n", "", "library", "raw", "ratio", "goal");
	FILE *csv = NULL;
	const char *csvp = getenv("BENCH_CSV");
	if (csvp && !(csv = fopen(csvp, "a"))) {
		perror(csvp);
		return 1;
	}
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		double ratio = m[pairs[i].lib] / m[pairs[i].raw];
		const char *verdict = !*pairs[i].goal ? "" : ratio >= 0.70 ? "met" : "NOT met";
		printf("%-42s | %5.0f MB/s %5.0f MB/s | %6.2f %s %s\n", pairs[i].what,
		       m[pairs[i].lib], m[pairs[i].raw], ratio, pairs[i].goal, verdict);
		if (csv)
			fprintf(csv, "crypt,64 KiB,ratio_%s_vs_%s,%.6g,x\n", names[pairs[i].lib],
				names[pairs[i].raw], ratio);
	}
	if (csv) {
		for (int c = 0; c < NCAND; c++)
			fprintf(csv, "crypt,64 KiB,%s,%.6g,MB/s\n", names[c], m[c]);
		fclose(csv);
	}
	for (int c = 0; c < NCAND; c++)
		free(mbs[c]);
	EVP_CIPHER_CTX_free(s.ec);
	EVP_CIPHER_CTX_free(s.dc);
	EVP_MD_CTX_free(s.md);
	bs_image_close(s.img);
	free(s.in);
	free(s.out);
	free(s.ct);
	return 0;
}
