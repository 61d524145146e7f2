/* fuzz_swtpm_blob.c - libFuzzer target: swtpm's state blob codec and key
 * file parser (nvram/swtpm.c).
 *
 * The input is decoded as a state file over an exactly-sized copy (a read
 * past it is an ASan report): without a key, with a fixed AES-128 and a
 * fixed AES-256 key, each with and without headerless files allowed.
 * Invariants: a failure returns nothing and leaves a message; a success
 * returns no more octets than the file holds; a plain version-2 blob the
 * decoder accepts is re-encoded to the very same octets; whatever decodes
 * encodes again (plain and encrypted) and decodes back to the same data.
 * The input is also parsed as a key file in both formats, and decoded as a
 * state blob on the control channel (wire()). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/swtpm.h>
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static void round_trip(const uint8_t *plain, size_t len, const struct bs_swtpm_key *k)
{
	uint8_t *blob, *back;
	size_t blob_len, back_len;
	MUST(bs_swtpm_blob_encode(plain, len, k, &blob, &blob_len) == BS_OK);
	struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
	MUST(bs_swtpm_blob_decode(blob, blob_len, k, 0, "again", &back, &back_len, &info) ==
	     BS_OK);
	MUST(info.blob_version == 2 && info.has_header && info.encrypted == (k != NULL));
	MUST(back_len == len && !memcmp(back, plain, len));
	bs_swtpm_free(back, back_len);
	free(blob);
}

static void decode(const uint8_t *p, size_t size, const struct bs_swtpm_key *k,
		   unsigned flags)
{
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 7;
	struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
	int rc = bs_swtpm_blob_decode(p, size, k, flags, "fuzz", &out, &out_len, &info);
	if (rc) {
		MUST(out == (uint8_t *)1 && out_len == 7); /* untouched on failure */
		MUST(last_error()[0] != 0);
		MUST(rc == BS_ECORRUPT || rc == BS_EUNSUPPORTED || rc == BS_EKEY ||
		     rc == BS_ELIMIT || rc == BS_ENOMEM);
		return;
	}
	MUST(out != NULL && out_len <= size);
	MUST(info.blob_version == 1 || info.blob_version == 2);
	if (!k && info.blob_version == 2 && !info.encrypted) {
		/* Only the one encoding of these data is accepted, but for
		 * the minimum version (octet 1), which may be 1 or 2. */
		uint8_t *enc;
		size_t enc_len;
		MUST(bs_swtpm_blob_encode(out, out_len, NULL, &enc, &enc_len) == BS_OK);
		MUST(enc_len == size && enc[0] == p[0] && !memcmp(enc + 2, p + 2, size - 2));
		free(enc);
	}
	round_trip(out, out_len, NULL);
	if (k)
		round_trip(out, out_len, k);
	bs_swtpm_free(out, out_len);
}

/* As a state blob arriving with CMD_SET_STATEBLOB (bs_swtpm_wire_decode()):
 * without keys and with fixed migration and state keys; a failure returns
 * nothing, a success no more octets than the blob, and whatever decodes is
 * framed again (plain, under each migration key) and decodes back. */
static struct bs_swtpm_key wire_key(size_t len, uint8_t seed)
{
	struct bs_swtpm_key k = BS_SWTPM_KEY_INIT;
	for (size_t i = 0; i < len; i++)
		k.bytes[i] = (uint8_t)(seed ^ (i * 13));
	k.len = len;
	return k;
}

static void wire_again(const uint8_t *plain, size_t len, const struct bs_swtpm_key *mk)
{
	uint8_t *w, *back;
	size_t wl, bl;
	int kind;
	MUST(bs_swtpm_wire_encode(plain, len, mk, &w, &wl) == BS_OK);
	MUST(bs_swtpm_wire_decode(w, wl, mk, NULL, "again", &back, &bl, &kind) == BS_OK);
	MUST(kind == (mk ? BS_SWTPM_WIRE_ENCRYPTED : BS_SWTPM_WIRE_PLAIN));
	MUST(bl == len && !memcmp(back, plain, len));
	bs_swtpm_free(back, bl);
	bs_swtpm_free(w, wl);
}

static void wire(const uint8_t *p, size_t size)
{
	struct bs_swtpm_key m16 = wire_key(16, 1), m32 = wire_key(32, 2), s16 = wire_key(16, 3),
			    s32 = wire_key(32, 4);
	const struct bs_swtpm_key *mk[] = {NULL, &m16, &m32};
	const struct bs_swtpm_key *sk[] = {NULL, &s16, &s32};
	for (int i = 0; i < 3; i++) {
		uint8_t *out = NULL;
		size_t n = 0;
		int kind = -1;
		if (bs_swtpm_wire_decode(p, size, mk[i], sk[i], "fuzz", &out, &n, &kind)) {
			MUST(out == NULL);
			continue;
		}
		MUST(out != NULL && n <= size);
		MUST(kind >= BS_SWTPM_WIRE_BARE && kind <= BS_SWTPM_WIRE_FILE);
		if (i == 0) {
			wire_again(out, n, NULL);
			wire_again(out, n, &m16);
			wire_again(out, n, &m32);
		}
		bs_swtpm_free(out, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);
	MUST(p != NULL);
	if (size)
		memcpy(p, data, size);
	struct bs_swtpm_key k16 = {.version = BS_SWTPM_KEY_VERSION, .len = 16}, k32 = {.version = BS_SWTPM_KEY_VERSION, .len = 32};
	for (int i = 0; i < 32; i++) {
		k16.bytes[i] = (uint8_t)(i + 1);
		k32.bytes[i] = (uint8_t)(0x80 + i);
	}
	for (unsigned flags = 0; flags <= BS_SWTPM_HEADERLESS; flags += BS_SWTPM_HEADERLESS) {
		decode(p, size, NULL, flags);
		decode(p, size, &k16, flags);
		decode(p, size, &k32, flags);
	}
	struct bs_swtpm_blob_info info = BS_SWTPM_BLOB_INFO_INIT;
	(void)bs_swtpm_blob_inspect(p, size, 0, "fuzz", &info);
	struct bs_swtpm_key k = BS_SWTPM_KEY_INIT;
	for (int fmt = BS_SWTPM_KEY_HEX; fmt <= BS_SWTPM_KEY_BINARY; fmt++)
		if (bs_swtpm_key_parse(p, size, fmt, 0, &k) == BS_OK)
			MUST(k.len == 16 || k.len == 32);
	wire(p, size);
	free(p);
	return 0;
}
