/* names.c - the names of checksums, ciphers and KDFs, for the command
 * line and for messages: one table each, both directions. */
#include <string.h>

#include "api.h"

struct name {
	int value;
	const char *name;
};

static const struct name checksums[] = {
	{BS_CHECKSUM_CRC32C, "crc32c"},
	{BS_CHECKSUM_SHA256, "sha256"},
};
static const struct name ciphers[] = {
	{BS_CIPHER_AES_256_GCM, "aes-256-gcm"},
	{BS_CIPHER_CHACHA20_POLY1305, "chacha20-poly1305"},
};
static const struct name kdfs[] = {
	{BS_KDF_SCRYPT, "scrypt"},
	{BS_KDF_PBKDF2_SHA256, "pbkdf2-sha256"},
	{BS_KDF_HKDF_SHA256, "hkdf-sha256"},
};

#define N(t) (sizeof t / sizeof *t)

static const char *name_of(const struct name *t, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].value == v)
			return t[i].name;
	return NULL;
}

static int parse(const struct name *t, size_t n, const char *what, const char *s, int *out)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(t[i].name, s)) {
			*out = t[i].value;
			return BS_OK;
		}
	char known[128] = "";
	for (size_t i = 0; i < n; i++) {
		strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
		strncat(known, t[i].name, sizeof known - strlen(known) - 1);
	}
	return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "unknown %s '%s' (%s)", what,
		       s ? s : "", known);
}

const char *bs_checksum_name(enum bs_checksum c)
{
	return name_of(checksums, N(checksums), c);
}

int bs_checksum_parse(const char *name, enum bs_checksum *out)
{
	int v;
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
	int rc = parse(checksums, N(checksums), "check", name, &v);
	if (!rc)
		*out = (enum bs_checksum)v;
	return rc;
}

const char *bs_cipher_name(enum bs_cipher c)
{
	return name_of(ciphers, N(ciphers), c);
}

int bs_cipher_parse(const char *name, enum bs_cipher *out)
{
	int v;
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
	int rc = parse(ciphers, N(ciphers), "cipher", name, &v);
	if (!rc)
		*out = (enum bs_cipher)v;
	return rc;
}

const char *bs_kdf_name(enum bs_kdf k)
{
	return name_of(kdfs, N(kdfs), k);
}

int bs_kdf_parse(const char *name, enum bs_kdf *out)
{
	int v;
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no output");
	int rc = parse(kdfs, N(kdfs), "KDF", name, &v);
	if (!rc)
		*out = (enum bs_kdf)v;
	return rc;
}
