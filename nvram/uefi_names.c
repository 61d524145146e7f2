/* uefi_names.c - how UEFI variables are named: GUIDs in text and by name,
 * the well-known variables of the UEFI specification and edk2 with the
 * attributes they must have, attribute names, and the UTF-16 of variable
 * names.  The lowest file of the UEFI code: it calls no other. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <blobstore/sys/util.h>
#include <blobstore/uefi.h>

static int inval(const char *fmt, const char *arg)
{
	return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, fmt, arg);
}

/* ---- GUIDs --------------------------------------------------------------------- */

/* Text order of the GUID octets: the first three fields are little-endian. */
static const int guid_order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

void bs_uefi_guid_str(const uint8_t guid[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[guid[guid_order[i]] >> 4];
		out[n++] = hex[guid[guid_order[i]] & 15];
	}
	out[n] = 0;
}

int bs_uefi_guid_parse(const char *s, uint8_t guid[16])
{
	size_t pos = 0;
	if (!s)
		return BS_EINVAL;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) {
			if (s[pos++] != '-')
				return BS_EINVAL;
		}
		int h = bs_hex_digit(s[pos]), l = h < 0 ? -1 : bs_hex_digit(s[pos + 1]);
		if (h < 0 || l < 0)
			return BS_EINVAL;
		guid[guid_order[i]] = (uint8_t)(h << 4 | l);
		pos += 2;
	}
	return s[pos] ? BS_EINVAL : BS_OK;
}

int bs_uefi_key_parse(const char *key, uint8_t guid[16], const char **name)
{
	if (!key || strlen(key) < 38 || key[36] != ':' || !key[37])
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "variable key must be GUID:NAME (8-4-4-4-12 hex GUID)");
	char g[37];
	memcpy(g, key, 36);
	g[36] = 0;
	if (bs_uefi_guid_parse(g, guid))
		return inval("bad GUID in '%s'", key);
	*name = key + 37;
	return BS_OK;
}

/* GUIDs by the names virt-firmware and edk2 give them. */
static const struct {
	const char *name, *guid;
} guid_names[] = {
	{"EfiGlobalVariable", "8be4df61-93ca-11d2-aa0d-00e098032b8c"},
	{"EfiImageSecurityDatabase", "d719b2cb-3d3a-4596-a3bc-dad00e67656f"},
	{"EfiSecureBootEnableDisable", "f0a30bc7-af08-4556-99c4-001009c93a44"},
	{"EfiCustomModeEnable", "c076ec0c-7028-4399-a072-71ee5c448b9f"},
	{"Shim", "605dab50-e046-4300-abb6-3dd810dd8b23"},
	{"MtcVendor", "eb704011-1402-11d3-8e77-00a0c969723b"},
	{"EfiCertDb", "d9bee56e-75dc-49d9-b4d7-b534210f637a"},
	{"EfiVendorKeysNv", "9073e4e0-60ec-4b6e-9903-4c223c260f3c"},
	{"EfiMemoryTypeInformation", "4c19049f-4137-4dd3-9c10-8b97a83ffdfa"},
	{"MicrosoftVendor", "77fa9abd-0359-4d32-bd60-28f4e78f784b"},
	{"OvmfEnrollDefaultKeys", "a0baa8a3-041d-48a8-bc87-c36d121b5e3d"},
	{"EfiCertX509", "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"},
	{"EfiCertSha256", "c1c41626-504c-4092-aca9-41f936934328"},
	{"EfiCertPkcs7", "4aafd29d-68df-49ee-8aa9-347d375665a7"},
};
#define NGUID_NAMES (sizeof guid_names / sizeof guid_names[0])

int bs_uefi_guid_lookup(const char *name, uint8_t guid[16])
{
	if (!name || !guid)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	for (size_t i = 0; i < NGUID_NAMES; i++)
		if (!strcasecmp(guid_names[i].name, name))
			return bs_uefi_guid_parse(guid_names[i].guid, guid);
	return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOENT, 0, "no GUID is named '%s'",
			    name);
}

const char *bs_uefi_guid_name(const uint8_t guid[16])
{
	char s[37];
	if (!guid)
		return NULL;
	bs_uefi_guid_str(guid, s);
	for (size_t i = 0; i < NGUID_NAMES; i++)
		if (!strcmp(guid_names[i].guid, s))
			return guid_names[i].name;
	return NULL;
}

int bs_uefi_guid_from_text(const char *s, uint8_t guid[16])
{
	if (!s || !guid)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	size_t n = strlen(s);
	if (n == 38 && s[0] == '{' && s[37] == '}') {
		char g[37];
		memcpy(g, s + 1, 36);
		g[36] = 0;
		if (!bs_uefi_guid_parse(g, guid))
			return BS_OK;
	} else if (n == 36 && !bs_uefi_guid_parse(s, guid)) {
		return BS_OK;
	}
	for (size_t i = 0; i < NGUID_NAMES; i++)
		if (!strcasecmp(guid_names[i].name, s))
			return bs_uefi_guid_parse(guid_names[i].guid, guid);
	return inval("'%s' is neither a GUID (8-4-4-4-12 hex digits) nor a known GUID name", s);
}

/* ---- well-known variables ------------------------------------------------------ */

#define NV BS_UEFI_NON_VOLATILE
#define BSA BS_UEFI_BOOTSERVICE_ACCESS
#define RT BS_UEFI_RUNTIME_ACCESS
#define AT BS_UEFI_TIME_BASED_AUTH
#define GLOBAL "8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define IMAGE_SECURITY "d719b2cb-3d3a-4596-a3bc-dad00e67656f"

/* The UEFI specification's global variables (2.10, table 3.1), the image
 * security database (32.6) and edk2's Secure Boot switches.  NAME ending in
 * "####" stands for four upper-case hexadecimal digits. */
static const struct {
	const char *name, *guid;
	uint32_t attrs;
	bool vol, sigdb;
} known[] = {
	{"AuditMode", GLOBAL, BSA | RT, true, false},
	{"Boot####", GLOBAL, NV | BSA | RT, false, false},
	{"BootCurrent", GLOBAL, BSA | RT, true, false},
	{"BootNext", GLOBAL, NV | BSA | RT, false, false},
	{"BootOrder", GLOBAL, NV | BSA | RT, false, false},
	{"BootOptionSupport", GLOBAL, BSA | RT, true, false},
	{"ConIn", GLOBAL, NV | BSA | RT, false, false},
	{"ConInDev", GLOBAL, BSA | RT, true, false},
	{"ConOut", GLOBAL, NV | BSA | RT, false, false},
	{"ConOutDev", GLOBAL, BSA | RT, true, false},
	{"dbDefault", GLOBAL, BSA | RT, true, true},
	{"dbrDefault", GLOBAL, BSA | RT, true, true},
	{"dbtDefault", GLOBAL, BSA | RT, true, true},
	{"dbxDefault", GLOBAL, BSA | RT, true, true},
	{"DeployedMode", GLOBAL, BSA | RT, true, false},
	{"Driver####", GLOBAL, NV | BSA | RT, false, false},
	{"DriverOrder", GLOBAL, NV | BSA | RT, false, false},
	{"ErrOut", GLOBAL, NV | BSA | RT, false, false},
	{"ErrOutDev", GLOBAL, BSA | RT, true, false},
	{"HwErrRecSupport", GLOBAL, NV | BSA | RT, false, false},
	{"KEK", GLOBAL, NV | BSA | RT | AT, false, true},
	{"KEKDefault", GLOBAL, BSA | RT, true, true},
	{"Key####", GLOBAL, NV | BSA | RT, false, false},
	{"Lang", GLOBAL, NV | BSA | RT, false, false},
	{"LangCodes", GLOBAL, BSA | RT, true, false},
	{"OsIndications", GLOBAL, NV | BSA | RT, false, false},
	{"OsIndicationsSupported", GLOBAL, BSA | RT, true, false},
	{"OsRecoveryOrder", GLOBAL, BSA | RT | AT, true, false},
	{"PK", GLOBAL, NV | BSA | RT | AT, false, true},
	{"PKDefault", GLOBAL, BSA | RT, true, true},
	{"PlatformLang", GLOBAL, NV | BSA | RT, false, false},
	{"PlatformLangCodes", GLOBAL, BSA | RT, true, false},
	{"PlatformRecovery####", GLOBAL, BSA | RT, true, false},
	{"SecureBoot", GLOBAL, BSA | RT, true, false},
	{"SetupMode", GLOBAL, BSA | RT, true, false},
	{"SignatureSupport", GLOBAL, BSA | RT, true, false},
	{"SysPrep####", GLOBAL, NV | BSA | RT, false, false},
	{"SysPrepOrder", GLOBAL, NV | BSA | RT, false, false},
	{"Timeout", GLOBAL, NV | BSA | RT, false, false},
	{"VendorKeys", GLOBAL, BSA | RT, true, false},
	{"db", IMAGE_SECURITY, NV | BSA | RT | AT, false, true},
	{"dbx", IMAGE_SECURITY, NV | BSA | RT | AT, false, true},
	{"dbt", IMAGE_SECURITY, NV | BSA | RT | AT, false, true},
	{"dbr", IMAGE_SECURITY, NV | BSA | RT | AT, false, true},
	{"SecureBootEnable", "f0a30bc7-af08-4556-99c4-001009c93a44", NV | BSA, false, false},
	{"CustomMode", "c076ec0c-7028-4399-a072-71ee5c448b9f", NV | BSA, false, false},
};
#define NKNOWN (sizeof known / sizeof known[0])

static bool name_matches(const char *pattern, const char *name)
{
	size_t pl = strlen(pattern);
	if (pl < 4 || strcmp(pattern + pl - 4, "####"))
		return !strcmp(pattern, name);
	if (strlen(name) != pl || strncmp(pattern, name, pl - 4))
		return false;
	for (size_t i = pl - 4; i < pl; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
			return false;
	return true;
}

int bs_uefi_known_var(const char *name, const uint8_t *guid, struct bs_uefi_known *out)
{
	if (!name)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	for (size_t i = 0; i < NKNOWN; i++) {
		uint8_t g[16];
		if (!name_matches(known[i].name, name))
			continue;
		bs_uefi_guid_parse(known[i].guid, g);
		if (guid && memcmp(g, guid, 16))
			continue;
		if (out) {
			memcpy(out->guid, g, 16);
			out->attributes = known[i].attrs;
			out->volatile_only = known[i].vol;
			out->sigdb = known[i].sigdb;
		}
		return BS_OK;
	}
	return BS_ENOENT; /* not an error to report: most names are not well-known */
}

/* ---- attributes -------------------------------------------------------------------- */

static const struct {
	const char *shortname, *longname;
} attr_names[8] = {
	{"NV", "NON_VOLATILE"},
	{"BS", "BOOTSERVICE_ACCESS"},
	{"RT", "RUNTIME_ACCESS"},
	{"HR", "HARDWARE_ERROR_RECORD"},
	{"AW", "AUTHENTICATED_WRITE_ACCESS"},
	{"AT", "TIME_BASED_AUTHENTICATED_WRITE_ACCESS"},
	{"AP", "APPEND_WRITE"},
	{"EA", "ENHANCED_AUTHENTICATED_ACCESS"},
};

/* One word of an attribute list: a name or a number. */
static int attr_word(const char *w, size_t n, uint32_t *bits)
{
	char buf[64];
	if (!n || n >= sizeof buf)
		return BS_EINVAL;
	memcpy(buf, w, n);
	buf[n] = 0;
	const char *name = buf;
	if (!strncasecmp(name, "EFI_VARIABLE_", 13))
		name += 13;
	for (unsigned i = 0; i < 8; i++)
		if (!strcasecmp(name, attr_names[i].shortname) ||
		    !strcasecmp(name, attr_names[i].longname)) {
			*bits = 1u << i;
			return BS_OK;
		}
	if (buf[0] < '0' || buf[0] > '9')
		return BS_EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return BS_EINVAL;
	*bits = (uint32_t)v;
	return BS_OK;
}

int bs_uefi_attr_parse(const char *s, uint32_t *out)
{
	if (!s || !out)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	uint32_t a = 0;
	const char *p = s;
	for (;;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, ",|+ ");
		size_t m = n;
		while (p[m] == ' ')
			m++;
		uint32_t bits;
		if (attr_word(p, n, &bits))
			return inval("bad UEFI attributes '%s': give names such as NV,BS,RT,AT "
				     "(NV BS RT HR AW AT AP EA) or a number", s);
		a |= bits;
		p += m;
		if (!*p)
			break;
		if (!strchr(",|+", *p))
			return inval("bad UEFI attributes '%s': separate names with ','", s);
		p++;
	}
	*out = a;
	return BS_OK;
}

char *bs_uefi_attr_format(uint32_t attrs, char *buf, size_t cap)
{
	size_t k = 0;
	if (!buf || !cap)
		return buf;
	buf[0] = 0;
	/* Whole names only: a name that does not fit ends the text. */
	char part[16];
	for (unsigned i = 0; i <= 8; i++) {
		if (i < 8 && !(attrs & (1u << i)))
			continue;
		if (i == 8 && !(attrs & ~0xffu))
			break;
		if (i < 8)
			snprintf(part, sizeof part, "%s%s", k ? "," : "", attr_names[i].shortname);
		else
			snprintf(part, sizeof part, "%s0x%x", k ? "," : "", (unsigned)(attrs & ~0xffu));
		size_t pl = strlen(part);
		if (pl >= cap - k)
			break;
		memcpy(buf + k, part, pl + 1);
		k += pl;
	}
	return buf;
}

/* ---- stores ------------------------------------------------------------------------ */

/* Here, below every file that makes a store (the varstore parser, the JSON
 * parser), so that none of them calls another. */
void bs_uefi_store_free(struct bs_uefi_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->nvars; i++) {
		free(st->vars[i].name);
		free(st->vars[i].data);
	}
	free(st->vars);
	free(st);
}

/* ---- UTF-16LE <-> UTF-8 ------------------------------------------------------------ */

int bs_uefi_utf16_decode(const uint8_t *p, size_t len, char **out)
{
	if (!p || !out)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	if (len < 2 || len % 2 || bs_get_le16(p + len - 2) != 0)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
				    "UTF-16 string of %zu octets without its final NUL", len);
	size_t units = len / 2 - 1;
	if (units > (SIZE_MAX - 1) / 3)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	char *s = malloc(units * 3 + 1);
	if (!s)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < units; i++) {
		uint32_t c = bs_get_le16(p + 2 * i);
		const char *why = NULL;
		if (c == 0)
			why = "an inner NUL";
		else if (c >= 0xd800 && c <= 0xdbff) {
			uint32_t lo = i + 1 < units ? bs_get_le16(p + 2 * (i + 1)) : 0;
			if (lo < 0xdc00 || lo > 0xdfff)
				why = "an unpaired surrogate";
			else {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i++;
			}
		} else if (c >= 0xdc00 && c <= 0xdfff) {
			why = "an unpaired surrogate";
		}
		if (why) {
			free(s);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
					    "UTF-16 string has %s at octet %zu", why, 2 * i);
		}
		if (c < 0x80) {
			s[n++] = (char)c;
		} else if (c < 0x800) {
			s[n++] = (char)(0xc0 | c >> 6);
			s[n++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			s[n++] = (char)(0xe0 | c >> 12);
			s[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
			s[n++] = (char)(0x80 | (c & 0x3f));
		} else {
			/* 4 UTF-8 octets for 2 UTF-16 units: within units * 3. */
			s[n++] = (char)(0xf0 | c >> 18);
			s[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
			s[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
			s[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	s[n] = 0;
	*out = s;
	return BS_OK;
}

int bs_uefi_utf16_encode(const char *s, uint8_t **out, size_t *out_len)
{
	if (!s || !out || !out_len)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	size_t n = strlen(s);
	if (!n || !bs_utf8_valid((const uint8_t *)s, n))
		return inval("variable name '%s' is empty or not valid UTF-8", s);
	if (n > (SIZE_MAX - 2) / 2)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	uint8_t *b = malloc(2 * n + 2);
	if (!b)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		uint8_t c = (uint8_t)s[i];
		size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		uint32_t cp = l == 1 ? c : l == 2 ? c & 0x1fu : l == 3 ? c & 0x0fu : c & 0x07u;
		for (size_t j = 1; j < l; j++)
			cp = cp << 6 | ((uint8_t)s[i + j] & 0x3fu);
		i += l;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			bs_put_le16(b + k, (uint16_t)(0xd800 + (cp >> 10)));
			bs_put_le16(b + k + 2, (uint16_t)(0xdc00 + (cp & 0x3ff)));
			k += 4;
		} else {
			bs_put_le16(b + k, (uint16_t)cp);
			k += 2;
		}
	}
	bs_put_le16(b + k, 0);
	*out = b;
	*out_len = k + 2;
	return BS_OK;
}
