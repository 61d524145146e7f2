/* test_uefi.c - the UEFI variable layer beyond the varstore file
 * (include/blobstore/uefi.h): names and attributes, resolution of a name
 * in an image, device paths, load options, signature databases (built
 * here, with certificates made by libcrypto), authentication headers,
 * virt-firmware's JSON, and the checks that come before every write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common.h"
#include <blobstore/uefi.h>

static const uint8_t owner[16] = {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33,
				  0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};

static bs_image *mem_image(void)
{
	bs_image *img;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE | BS_OPEN_NOSYNC, &img, NULL), BS_OK);
	return img;
}

static void msg_has(const char *what)
{
	const char *m = last_error();
	if (!strstr(m, what))
		fail_msg("message '%s' lacks '%s'", m, what);
}

/* ---- names ---------------------------------------------------------------------------- */

static void test_attribute_names(void **state)
{
	(void)state;
	uint32_t a;
	char buf[64];
	assert_int_equal(bs_uefi_attr_parse("NV,BS,RT,AT", &a), BS_OK);
	assert_int_equal(a, 0x27);
	assert_int_equal(bs_uefi_attr_parse("nv|bs", &a), BS_OK);
	assert_int_equal(a, 3);
	assert_int_equal(bs_uefi_attr_parse("EFI_VARIABLE_NON_VOLATILE, BOOTSERVICE_ACCESS", &a), BS_OK);
	assert_int_equal(a, 3);
	assert_int_equal(bs_uefi_attr_parse("0x27", &a), BS_OK);
	assert_int_equal(a, 0x27);
	assert_int_equal(bs_uefi_attr_parse("39", &a), BS_OK);
	assert_int_equal(a, 39);
	assert_int_equal(bs_uefi_attr_parse("NV,XX", &a), BS_EINVAL);
	msg_has("NV,XX");
	assert_int_equal(bs_uefi_attr_parse("", &a), BS_EINVAL);
	assert_int_equal(bs_uefi_attr_parse("NV,", &a), BS_EINVAL);
	assert_int_equal(bs_uefi_attr_parse("0x100000000", &a), BS_EINVAL);
	assert_string_equal(bs_uefi_attr_format(0x27, buf, sizeof buf), "NV,BS,RT,AT");
	assert_string_equal(bs_uefi_attr_format(0x107, buf, sizeof buf), "NV,BS,RT,0x100");
	assert_string_equal(bs_uefi_attr_format(0, buf, sizeof buf), "");
	assert_string_equal(bs_uefi_attr_format(0xff, buf, 8), "NV,BS"); /* whole names only */
}

static void test_guids_and_well_known_names(void **state)
{
	(void)state;
	uint8_t g[16], h[16];
	char s[37];
	assert_int_equal(bs_uefi_guid_from_text("{8BE4DF61-93CA-11D2-AA0D-00E098032B8C}", g), BS_OK);
	assert_int_equal(bs_uefi_guid_lookup("efiglobalvariable", h), BS_OK);
	assert_memory_equal(g, h, 16);
	assert_string_equal(bs_uefi_guid_name(g), "EfiGlobalVariable");
	assert_int_equal(bs_uefi_guid_from_text("EfiImageSecurityDatabase", g), BS_OK);
	bs_uefi_guid_str(g, s);
	assert_string_equal(s, "d719b2cb-3d3a-4596-a3bc-dad00e67656f");
	assert_int_equal(bs_uefi_guid_from_text("8be4df61-93ca-11d2-aa0d-00e098032b8", g), BS_EINVAL);
	assert_int_equal(bs_uefi_guid_lookup("NoSuchGuid", g), BS_ENOENT);

	struct bs_uefi_known k;
	assert_int_equal(bs_uefi_known_var("Boot00AF", NULL, &k), BS_OK);
	assert_int_equal(k.attributes, 7);
	assert_false(k.volatile_only);
	assert_int_equal(bs_uefi_known_var("Boot00af", NULL, &k), BS_ENOENT); /* upper-case hex */
	assert_int_equal(bs_uefi_known_var("Boot0", NULL, &k), BS_ENOENT);
	assert_int_equal(bs_uefi_known_var("PK", NULL, &k), BS_OK);
	assert_true(k.sigdb);
	assert_int_equal(k.attributes, 0x27);
	assert_int_equal(bs_uefi_known_var("SecureBoot", NULL, &k), BS_OK);
	assert_true(k.volatile_only);
	assert_int_equal(bs_uefi_known_var("dbx", NULL, &k), BS_OK);
	bs_uefi_guid_str(k.guid, s);
	assert_string_equal(s, "d719b2cb-3d3a-4596-a3bc-dad00e67656f");
	/* Under another GUID, db is not the image security database's. */
	assert_int_equal(bs_uefi_known_var("db", owner, &k), BS_ENOENT);
}

static void test_resolve_names(void **state)
{
	(void)state;
	bs_image *img = mem_image();
	char *key;
	/* Well-known, absent: its GUID. */
	assert_int_equal(bs_uefi_resolve(img, "Timeout", &key), BS_OK);
	assert_string_equal(key, "8be4df61-93ca-11d2-aa0d-00e098032b8c:Timeout");
	free(key);
	assert_int_equal(bs_uefi_resolve(img, "Nope", &key), BS_ENOENT);
	msg_has("GUID:Nope");
	/* GUID:NAME in any GUID form, canonical out. */
	assert_int_equal(bs_uefi_resolve(img, "EfiGlobalVariable:Nope", &key), BS_OK);
	assert_string_equal(key, "8be4df61-93ca-11d2-aa0d-00e098032b8c:Nope");
	free(key);
	assert_int_equal(bs_uefi_set(img, "11111111-2222-3333-4444-555555555555:Mine", 3, "x", 1), BS_OK);
	assert_int_equal(bs_uefi_resolve(img, "Mine", &key), BS_OK); /* unique in the image */
	assert_string_equal(key, "11111111-2222-3333-4444-555555555555:Mine");
	free(key);
	assert_int_equal(bs_uefi_set(img, "22222222-2222-3333-4444-555555555555:Mine", 3, "y", 1), BS_OK);
	assert_int_equal(bs_uefi_resolve(img, "Mine", &key), BS_EINVAL);
	msg_has("ambiguous: 11111111-2222-3333-4444-555555555555:Mine, "
		"22222222-2222-3333-4444-555555555555:Mine");
	/* A well-known name held under another GUID is ambiguous too. */
	assert_int_equal(bs_uefi_set(img, "22222222-2222-3333-4444-555555555555:Lang", 3, "en", 3), BS_OK);
	assert_int_equal(bs_uefi_resolve(img, "Lang", &key), BS_EINVAL);
	msg_has("22222222-2222-3333-4444-555555555555:Lang, 8be4df61-93ca-11d2-aa0d-00e098032b8c:Lang");
	assert_int_equal(bs_uefi_resolve(img, "", &key), BS_EINVAL);
	bs_image_close(img);
}

/* ---- device paths and load options ----------------------------------------------------- */

static size_t node(uint8_t *p, uint8_t t, uint8_t s, const void *d, size_t n)
{
	p[0] = t;
	p[1] = s;
	p[2] = (uint8_t)(n + 4);
	p[3] = (uint8_t)((n + 4) >> 8);
	memcpy(p + 4, d, n);
	return n + 4;
}

static void test_device_path_text(void **state)
{
	(void)state;
	uint8_t p[512];
	size_t n = 0;
	char *t;
	n += node(p + n, 2, 1, "\xd0\x41\x03\x0a\x00\x00\x00\x00", 8); /* PciRoot(0x0) */
	n += node(p + n, 1, 1, "\x02\x1f", 2);                         /* Pci(0x1F,0x2) */
	n += node(p + n, 3, 18, "\x00\x00\xff\xff\x00\x00", 6);        /* Sata */
	n += node(p + n, 0x7f, 1, "", 0);                              /* instance end */
	uint8_t hd[38] = {1, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0};
	memcpy(hd + 20, owner, 16);
	hd[36] = 2;
	hd[37] = 2;
	n += node(p + n, 4, 1, hd, sizeof hd);
	n += node(p + n, 4, 4, "\\\0E\0F\0I\0\0", 10);
	n += node(p + n, 3, 24, "http://x/a", 10);
	n += node(p + n, 9, 9, "\xab", 1);
	n += node(p + n, 0x7f, 0xff, "", 0);
	assert_int_equal(bs_uefi_devpath_text(p, n, &t), BS_OK);
	assert_string_equal(t, "PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0),"
			       "HD(1,GPT,11111111-2222-3333-4444-555555555555,0x800,0x100000)/\\EFI/"
			       "Uri(http://x/a)/Path(9,9,AB)");
	free(t);
	/* No end node; a node running past the path; a short node; after the end. */
	assert_int_equal(bs_uefi_devpath_text(p, n - 4, &t), BS_ECORRUPT);
	msg_has("no end node");
	uint8_t bad[8] = {1, 1, 40, 0, 0, 0, 0x7f, 0xff};
	assert_int_equal(bs_uefi_devpath_text(bad, 8, &t), BS_ECORRUPT);
	msg_has("at octet 2");
	bad[2] = 3;
	assert_int_equal(bs_uefi_devpath_text(bad, 8, &t), BS_ECORRUPT);
	uint8_t after[6] = {0x7f, 0xff, 4, 0, 1, 2};
	assert_int_equal(bs_uefi_devpath_text(after, 6, &t), BS_ECORRUPT);
	msg_has("after the device path's end");
}

static void test_load_option(void **state)
{
	(void)state;
	uint8_t p[128];
	size_t n = 0;
	uint8_t path[64];
	size_t pl = node(path, 4, 7, owner, 16);
	pl += node(path + pl, 0x7f, 0xff, "", 0);
	p[0] = 1, p[1] = p[2] = p[3] = 0;
	p[4] = (uint8_t)pl, p[5] = 0;
	memcpy(p + 6, "O\0K\0\0\0", 6);
	memcpy(p + 12, path, pl);
	n = 12 + pl;
	memcpy(p + n, "\x01\x02", 2);
	struct bs_uefi_load_option lo;
	assert_int_equal(bs_uefi_load_option_parse(p, n + 2, &lo), BS_OK);
	assert_int_equal(lo.attributes, 1);
	assert_string_equal(lo.description, "OK");
	assert_string_equal(lo.device_path, "Fv(11111111-2222-3333-4444-555555555555)");
	assert_int_equal(lo.optional_len, 2);
	assert_memory_equal(lo.optional, "\x01\x02", 2);
	bs_uefi_load_option_free(&lo);
	p[4] = 200; /* FilePathListLength past the end */
	assert_int_equal(bs_uefi_load_option_parse(p, n + 2, &lo), BS_ECORRUPT);
	msg_has("FilePathListLength 200");
	assert_int_equal(bs_uefi_load_option_parse(p, 9, &lo), BS_ECORRUPT); /* description cut */
}

/* ---- signature databases -------------------------------------------------------------- */

/* A self-signed certificate (DER) with a fresh key: RSA or EC. */
static uint8_t *make_cert(bool rsa, size_t *len)
{
	EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	X509 *x = X509_new();
	assert_non_null(k);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME *nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"unit", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	int n = i2d_X509(x, NULL);
	uint8_t *b = malloc((size_t)n), *w = b;
	i2d_X509(x, &w);
	X509_free(x);
	EVP_PKEY_free(k);
	*len = (size_t)n;
	return b;
}

static void test_signature_databases(void **state)
{
	(void)state;
	uint8_t *db = NULL, h1[32], h2[32];
	size_t len = 0, cl, ns;
	int added;
	memset(h1, 1, 32);
	memset(h2, 2, 32);
	uint8_t *cert = make_cert(true, &cl);
	assert_int_equal(bs_uefi_sigdb_add(&db, &len, BS_UEFI_SIG_SHA256, owner, h1, 32, &added), BS_OK);
	assert_int_equal(added, 1);
	assert_int_equal(len, 28 + 48);
	assert_int_equal(bs_uefi_sigdb_add(&db, &len, BS_UEFI_SIG_X509, owner, cert, cl, &added), BS_OK);
	assert_int_equal(bs_uefi_sigdb_add(&db, &len, BS_UEFI_SIG_SHA256, owner, h2, 32, &added), BS_OK);
	assert_int_equal(len, 28 + 48 + 48 + 28 + 16 + cl); /* the hash joined the first list */
	assert_int_equal(bs_uefi_sigdb_add(&db, &len, BS_UEFI_SIG_SHA256, owner, h2, 32, &added), BS_OK);
	assert_int_equal(added, 0);
	assert_int_equal(bs_uefi_sigdb_add(&db, &len, BS_UEFI_SIG_SHA256, owner, h2, 31, &added),
			 BS_EINVAL);
	struct bs_uefi_sig *s;
	assert_int_equal(bs_uefi_sigdb_parse(db, len, 0, &s, &ns), BS_OK);
	assert_int_equal(ns, 3);
	assert_int_equal(s[0].type, BS_UEFI_SIG_SHA256);
	assert_memory_equal(s[1].data, h2, 32);
	assert_int_equal(s[2].type, BS_UEFI_SIG_X509);
	assert_string_equal(s[2].subject, "CN=unit");
	assert_string_equal(s[2].issuer, "CN=unit");
	assert_int_not_equal(s[2].not_before[0] | s[2].not_before[1], 0);
	assert_int_equal(s[2].list, 1);
	bs_uefi_sigs_free(s, ns);
	/* PK: one signature at most. */
	assert_int_equal(bs_uefi_sigdb_parse(db, len, BS_UEFI_SIGDB_PK, &s, &ns), BS_ECORRUPT);
	msg_has("more than one");
	/* Hostile: a size that is not the type's, a header, leftover octets,
	 * an unknown type, a list running past the data. */
	uint8_t *bad = malloc(len + 1);
	memcpy(bad, db, len);
	bad[24] = 47;
	assert_int_equal(bs_uefi_sigdb_parse(bad, len, 0, &s, &ns), BS_ECORRUPT);
	msg_has("at octet 24");
	memcpy(bad, db, len);
	bad[20] = 1;
	assert_int_equal(bs_uefi_sigdb_parse(bad, len, 0, &s, &ns), BS_ECORRUPT);
	msg_has("SignatureHeaderSize 1");
	assert_int_equal(bs_uefi_sigdb_parse(db, len - 1, 0, &s, &ns), BS_ECORRUPT);
	memcpy(bad, db, len);
	bad[0] ^= 1;
	assert_int_equal(bs_uefi_sigdb_parse(bad, len, 0, &s, &ns), BS_ECORRUPT);
	msg_has("unknown SignatureType");
	memcpy(bad, db, len);
	bad[17] = 0x10;
	assert_int_equal(bs_uefi_sigdb_parse(bad, len, 0, &s, &ns), BS_ECORRUPT);
	/* A certificate with an EC key: edk2 accepts only RSA. */
	size_t el;
	uint8_t *ec = make_cert(false, &el), *edb = NULL, *der;
	size_t elen = 0, dl;
	assert_int_equal(bs_uefi_sigdb_add(&edb, &elen, BS_UEFI_SIG_X509, owner, ec, el, &added),
			 BS_OK); /* built as given ... */
	assert_int_equal(bs_uefi_sigdb_parse(edb, elen, 0, &s, &ns), BS_ECORRUPT); /* ... refused */
	msg_has("not RSA");
	assert_int_equal(bs_uefi_cert_load(ec, el, &der, &dl), BS_ECORRUPT);
	assert_int_equal(bs_uefi_cert_load(cert, cl, &der, &dl), BS_OK);
	assert_int_equal(dl, cl);
	assert_memory_equal(der, cert, cl);
	free(der);
	assert_int_equal(bs_uefi_cert_load(cert, cl - 1, &der, &dl), BS_ECORRUPT);
	free(ec);
	free(edb);
	free(bad);
	free(cert);
	free(db);
}

static void test_authentication_header(void **state)
{
	(void)state;
	uint8_t p[64] = {0xea, 0x07, 1, 2, 3, 4, 5}, ts[16];
	size_t off;
	p[16] = 30; /* dwLength: 24 + 6 of "signature" */
	p[20] = 0x00, p[21] = 0x02, p[22] = 0xf1, p[23] = 0x0e;
	uint8_t pkcs7[16] = {0x9d, 0xd2, 0xaf, 0x4a, 0xdf, 0x68, 0xee, 0x49,
			     0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7};
	memcpy(p + 24, pkcs7, 16);
	assert_int_equal(bs_uefi_auth_parse(p, sizeof p, ts, &off), BS_OK);
	assert_int_equal(off, 46);
	assert_memory_equal(ts, p, 16);
	char buf[40];
	assert_string_equal(bs_uefi_time_format(ts, buf), "2026-01-02T03:04:05Z");
	p[8] = 1; /* Nanosecond must be 0 */
	assert_int_equal(bs_uefi_auth_parse(p, sizeof p, ts, &off), BS_ECORRUPT);
	p[8] = 0;
	p[16] = 200;
	assert_int_equal(bs_uefi_auth_parse(p, sizeof p, ts, &off), BS_ECORRUPT);
	msg_has("dwLength 200");
	p[16] = 30;
	p[30] ^= 1;
	assert_int_equal(bs_uefi_auth_parse(p, sizeof p, ts, &off), BS_ECORRUPT);
	msg_has("at octet 24");
	/* A signature list is not mistaken for one. */
	uint8_t *db = NULL, h[32] = {0};
	size_t len = 0;
	assert_int_equal(bs_uefi_sigdb_add(&db, &len, BS_UEFI_SIG_SHA256, owner, h, 32, NULL), BS_OK);
	assert_int_equal(bs_uefi_auth_parse(db, len, ts, &off), BS_ENOENT);
	free(db);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void test_json(void **state)
{
	(void)state;
	static const char in[] =
		"{\"version\": 2, \"variables\": [\n"
		" {\"name\": \"T\\u00e9st \\ud83d\\ude00\\n\", \"guid\": \"EfiGlobalVariable\", \"data\": \"00FF\"},\n"
		" {\"name\": \"Timeout\", \"guid\": \"8BE4DF61-93CA-11D2-AA0D-00E098032B8C\", \"data\": \"\","
		" \"time\": \"e907030a023527000000000000000000\", \"attr\": 7}]}";
	struct bs_uefi_store *st;
	assert_int_equal(bs_uefi_json_parse(in, strlen(in), &st), BS_OK);
	assert_int_equal(st->nvars, 2);
	assert_string_equal(st->vars[0].name, "T\xc3\xa9st \xf0\x9f\x98\x80\n");
	assert_int_equal(st->vars[0].attributes, 3); /* not well-known: NV,BS */
	assert_int_equal(st->vars[0].data_len, 2);
	assert_int_equal(st->vars[1].timestamp[0], 0xe9);
	char *out;
	size_t ol;
	assert_int_equal(bs_uefi_json_format(st->vars, st->nvars, &out, &ol), BS_OK);
	assert_string_equal(out,
			    "{\n    \"version\": 2,\n    \"variables\": [\n        {\n"
			    "            \"name\": \"T\\u00e9st \\ud83d\\ude00\\n\",\n"
			    "            \"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\",\n"
			    "            \"attr\": 3,\n            \"data\": \"00ff\"\n        },\n"
			    "        {\n            \"name\": \"Timeout\",\n"
			    "            \"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\",\n"
			    "            \"attr\": 7,\n            \"data\": \"\",\n"
			    "            \"time\": \"e907030a023527000000000000000000\"\n        }\n"
			    "    ]\n}");
	free(out);
	assert_int_equal(bs_uefi_json_format(NULL, 0, &out, &ol), BS_OK);
	assert_string_equal(out, "{\n    \"version\": 2,\n    \"variables\": []\n}");
	free(out);
	bs_uefi_store_free(st);
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"variables\": [\n  {\"name\": \"X\"}]}", "line 2 column 3"},
		{"{\"variables\": []} x", "data after"},
		{"{\"variables\": [], \"variables\": []}", "given twice"},
		{"{\"version\": 2}", "no \"variables\""},
		{"[]", "'{' expected"},
		{"{\"variables\": [{\"name\": \"a\\u0000\", \"guid\": \"EfiGlobalVariable\", \"data\": \"\"}]}", "\\u0000"},
		{"{\"variables\": [{\"name\": \"\\ud800\", \"guid\": \"EfiGlobalVariable\", \"data\": \"\"}]}", "unpaired"},
		{"{\"variables\": [{\"name\": \"a\", \"guid\": \"EfiGlobalVariable\", \"data\": \"\", \"attr\": 1.5}]}", "integer"},
		{"{\"variables\": [{\"name\": \"a\", \"guid\": \"EfiGlobalVariable\", \"data\": \"\", \"attr\": 4294967296}]}", "larger"},
		{"{\"variables\": [{\"name\": \"a\", \"guid\": \"EfiGlobalVariable\", \"data\": \"\", \"time\": \"00\"}]}", "not 16"},
		{"{\"variables\": [{\"name\": \"a\", \"guid\": \"nope\", \"data\": \"\"}]}", "not a GUID"},
		{"{\"variables\": [{\"name\": \"a\xff\", \"guid\": \"EfiGlobalVariable\", \"data\": \"\"}]}", "UTF-8"},
		{"{\"variables\": [{\"name\": \"a\", \"guid\": \"EfiGlobalVariable\", \"data\": \"\", \"name\": \"b\"}]}", "twice"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(bs_uefi_json_parse(bad[i].json, strlen(bad[i].json), &st), BS_ECORRUPT);
		msg_has(bad[i].msg);
	}
	assert_int_equal(bs_uefi_json_parse("{\"version\": 1, \"variables\": []}", 31, &st),
			 BS_EUNSUPPORTED);
	/* Cut short at every octet: refused, never a crash. */
	for (size_t n = 0; n < strlen(in); n++) {
		char *cut = malloc(n + 1);
		memcpy(cut, in, n);
		assert_int_not_equal(bs_uefi_json_parse(cut, n, &st), BS_OK);
		free(cut);
	}
}

/* ---- checks before writes ----------------------------------------------------------------- */

static void test_checks_before_writes(void **state)
{
	(void)state;
	bs_image *img = mem_image();
	struct bs_uefi_var v = {.version = BS_UEFI_VAR_VERSION, .name = "db", .attributes = 0x27,
				.data = (uint8_t *)"garbage", .data_len = 7};
	bs_uefi_guid_lookup("EfiImageSecurityDatabase", v.guid);
	assert_int_equal(bs_uefi_var_check(&v), BS_EINVAL);
	msg_has("not a valid EFI_SIGNATURE_LIST");
	assert_int_equal(bs_uefi_set(img, "d719b2cb-3d3a-4596-a3bc-dad00e67656f:db", 0x27, "garbage", 7),
			 BS_EINVAL);
	v.data_len = 0;
	assert_int_equal(bs_uefi_var_check(&v), BS_EINVAL);
	msg_has("empty signature database");
	v.name = "Mine";
	memcpy(v.guid, owner, 16);
	v.attributes = 6;
	assert_int_equal(bs_uefi_var_check(&v), BS_EINVAL);
	msg_has("lack NV");
	v.attributes = 0x13;
	assert_int_equal(bs_uefi_var_check(&v), BS_EINVAL);
	msg_has("AW is deprecated");
	v.attributes = 0x23;
	assert_int_equal(bs_uefi_var_check(&v), BS_OK);
	v.name = "Timeout";
	bs_uefi_guid_lookup("EfiGlobalVariable", v.guid);
	v.attributes = 3;
	assert_int_equal(bs_uefi_var_check(&v), BS_EINVAL);
	msg_has("must have the attributes NV,BS,RT (0x7)");
	v.name = "SetupMode";
	v.attributes = 7;
	assert_int_equal(bs_uefi_var_check(&v), BS_EINVAL);
	msg_has("is volatile");
	/* Nothing was written by any of the refusals. */
	assert_int_equal(bs_image_count(img, 0), 0);
	/* Without a layout: the largest OVMF build's per-variable limit. */
	uint8_t *big = calloc(1, 0x8400);
	assert_int_equal(bs_uefi_set(img, "11111111-2222-3333-4444-555555555555:Big", 3, big, 0x8400 - 60 - 8),
			 BS_OK); /* "Big" is 8 octets in UTF-16 */
	assert_int_equal(bs_uefi_set(img, "11111111-2222-3333-4444-555555555555:Big", 3, big, 0x8400 - 60 - 7),
			 BS_ENOSPC);
	msg_has("at most 33792");
	free(big);
	bs_image_close(img);
}

static void test_space_of_a_small_store(void **state)
{
	(void)state;
	FILE *f = fopen("/usr/share/OVMF/OVMF_VARS.fd", "rb");
	if (!f) {
		printf("skipped: /usr/share/OVMF/OVMF_VARS.fd missing (ovmf)\n");
		return;
	}
	static uint8_t fd[131072];
	size_t len = fread(fd, 1, sizeof fd, f);
	fclose(f);
	bs_image *img = mem_image();
	assert_int_equal(bs_uefi_import(img, fd, len, NULL), BS_OK);
	struct bs_uefi_space sp;
	assert_int_equal(bs_uefi_space(img, NULL, 0, NULL, 0, &sp), BS_OK);
	assert_int_equal(sp.capacity, 0xdfb8 - 28);
	assert_int_equal(sp.max_var, 0x2000);
	assert_int_equal(sp.max_auth_var, 0x2800);
	/* 0x2000 octets without AT is over the limit, with AT within. */
	uint8_t *d = calloc(1, 0x2000);
	assert_int_equal(bs_uefi_set(img, "11111111-2222-3333-4444-555555555555:V", 3, d, 0x2000),
			 BS_ENOSPC);
	assert_int_equal(bs_uefi_set(img, "11111111-2222-3333-4444-555555555555:V", 0x23, d, 0x2000),
			 BS_OK);
	/* Five such fill 0xA000 of the 0xDF9C; the seventh does not fit. */
	char key[64];
	int rc = BS_OK, i;
	for (i = 0; i < 10 && rc == BS_OK; i++) {
		snprintf(key, sizeof key, "11111111-2222-3333-4444-555555555555:W%d", i);
		rc = bs_uefi_set(img, key, 0x23, d, 0x2000);
	}
	assert_int_equal(rc, BS_ENOSPC);
	msg_has("of the variable store's 57244");
	assert_int_equal(i, 6);
	/* And what was written exports. */
	uint8_t *out;
	size_t ol;
	assert_int_equal(bs_uefi_export(img, NULL, 0, &out, &ol), BS_OK);
	free(out);
	free(d);
	bs_image_close(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attribute_names),
		cmocka_unit_test(test_guids_and_well_known_names),
		cmocka_unit_test(test_resolve_names),
		cmocka_unit_test(test_device_path_text),
		cmocka_unit_test(test_load_option),
		cmocka_unit_test(test_signature_databases),
		cmocka_unit_test(test_authentication_header),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_checks_before_writes),
		cmocka_unit_test(test_space_of_a_small_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
