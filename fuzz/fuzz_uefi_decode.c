/* fuzz_uefi_decode.c - libFuzzer target: the parsers of UEFI variable data
 * (include/blobstore/uefi.h).  The first input octet chooses what the rest
 * is: a signature database (bs_uefi_sigdb_parse, plain and as PK), a device
 * path (bs_uefi_devpath_text), a load option, an authentication header, or
 * a variable decoded by one of the names list and get decode (bs_uefi_decode)
 * after the store check (bs_uefi_var_check).  Invariants: every accepted
 * signature lies inside the input, a database that parses takes one more
 * signature with bs_uefi_sigdb_add and parses again, texts are NUL-terminated
 * strings, and an authentication header's data offset is inside the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/uefi.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static void sigdb(const uint8_t *p, size_t n, unsigned flags)
{
	struct bs_uefi_sig *s;
	size_t ns;
	if (bs_uefi_sigdb_parse(p, n, flags, &s, &ns))
		return;
	for (size_t i = 0; i < ns; i++) {
		MUST(s[i].data >= p && s[i].offset + s[i].len <= n);
		MUST(s[i].data == p + s[i].offset);
		MUST(bs_uefi_sigtype_name(s[i].type) != NULL);
		MUST((s[i].type == BS_UEFI_SIG_X509) == (s[i].subject != NULL));
	}
	MUST(!(flags & BS_UEFI_SIGDB_PK) || ns <= 1);
	bs_uefi_sigs_free(s, ns);
	uint8_t *db = malloc(n ? n : 1), owner[16] = {1}, hash[32] = {2};
	size_t len = n;
	int added;
	MUST(db);
	memcpy(db, p, n);
	if (bs_uefi_sigdb_add(&db, &len, BS_UEFI_SIG_SHA256, owner, hash, 32, &added) == 0) {
		MUST(len == n + (added ? 16 + 32 : 0) || len == n + 28 + 16 + 32);
		MUST(bs_uefi_sigdb_parse(db, len, 0, &s, &ns) == 0);
		bs_uefi_sigs_free(s, ns);
	}
	free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"PK", "db", "dbx", "Boot0001", "BootOrder", "ConOut",
					    "Lang", "Timeout", "MokList", "Other"};
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	char *text;
	uint8_t ts[16];
	size_t off;
	struct bs_uefi_load_option lo;
	switch (data[0] % 6) {
	case 0:
		sigdb(p, n, 0);
		break;
	case 1:
		sigdb(p, n, BS_UEFI_SIGDB_PK);
		break;
	case 2:
		if (bs_uefi_devpath_text(p, n, &text) == 0) {
			MUST(strlen(text) < (256u << 10));
			free(text);
		}
		break;
	case 3:
		if (bs_uefi_load_option_parse(p, n, &lo) == 0) {
			MUST(lo.description && lo.device_path);
			MUST(!lo.optional || (lo.optional > p && lo.optional + lo.optional_len == p + n));
			bs_uefi_load_option_free(&lo);
		}
		break;
	case 4:
		if (bs_uefi_auth_parse(p, n, ts, &off) == 0)
			MUST(off > 40 && off <= n);
		break;
	default: {
		if (n < 1)
			return 0;
		struct bs_uefi_var v = {.version = BS_UEFI_VAR_VERSION};
		struct bs_uefi_known k;
		v.name = (char *)names[p[0] % (sizeof names / sizeof names[0])];
		if (bs_uefi_known_var(v.name, NULL, &k) == 0) {
			memcpy(v.guid, k.guid, 16);
			v.attributes = k.attributes;
		} else {
			v.attributes = 7;
		}
		v.data = (uint8_t *)p + 1;
		v.data_len = n - 1;
		bs_uefi_var_check(&v);
		struct bs_uefi_decoded *d;
		MUST(bs_uefi_decode(&v, &d) == 0);
		MUST(d->kind != BS_UEFI_DATA_BLOB || !d->text);
		if (d->kind == BS_UEFI_DATA_STRING || d->kind == BS_UEFI_DATA_DEVPATH)
			MUST(d->text != NULL);
		bs_uefi_decoded_free(d);
	}
	}
	return 0;
}
