/* uefi_decode.c - what is inside UEFI variable data: signature databases
 * (EFI_SIGNATURE_LIST, with X.509 certificates read by libcrypto), device
 * paths in their UEFI text form, load options (Boot####), the
 * EFI_VARIABLE_AUTHENTICATION_2 header of authenticated writes, EFI_TIME,
 * and the choice of a decoding by variable name.
 *
 * Structures (UEFI 2.10; edk2 MdePkg headers), all little-endian:
 *   EFI_SIGNATURE_LIST  SignatureType GUID, SignatureListSize u32 @16,
 *     SignatureHeaderSize u32 @20, SignatureSize u32 @24, header, then
 *     EFI_SIGNATURE_DATA {SignatureOwner GUID, SignatureData} entries
 *   device path node  Type u8, SubType u8, Length u16 (the whole node);
 *     End 7F/FF ends the path, 7F/01 ends one instance
 *   EFI_LOAD_OPTION  Attributes u32, FilePathListLength u16, Description
 *     (UTF-16 with NUL), FilePathList, OptionalData
 *   EFI_VARIABLE_AUTHENTICATION_2  TimeStamp EFI_TIME, WIN_CERTIFICATE_UEFI_GUID
 *     {dwLength u32, wRevision u16, wCertificateType u16, CertType GUID, CertData}
 * Every length is checked against its parent before use. */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <blobstore/sys/util.h>
#include <blobstore/uefi.h>

/* Text of one device path at most: far beyond any real path. */
#define DEVPATH_TEXT_MAX (256u << 10)

static int corrupt(size_t off, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int corrupt(size_t off, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0, "at octet %zu: %s", off,
			    msg);
}

static int nomem(void)
{
	return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
}

/* ---- a growing string ------------------------------------------------------------ */

struct sb {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory or past DEVPATH_TEXT_MAX */
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t want = b->len + (size_t)n + 1;
		if (want > DEVPATH_TEXT_MAX) {
			b->failed = true;
			return;
		}
		size_t nc = b->cap ? b->cap : 64;
		while (nc < want)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
}

static void sb_hex(struct sb *b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_add(b, "%02X", p[i]);
}

static void sb_guid(struct sb *b, const uint8_t *g)
{
	char s[37];
	bs_uefi_guid_str(g, s);
	for (char *c = s; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	sb_add(b, "%s", s);
}

/* ---- signature databases ----------------------------------------------------------- */

static const struct {
	const char *name, *guid;
	size_t size; /* SignatureData octets; 0: any (X.509) */
} sigtypes[] = {
	[BS_UEFI_SIG_SHA256] = {"sha256", "c1c41626-504c-4092-aca9-41f936934328", 32},
	[BS_UEFI_SIG_RSA2048] = {"rsa2048", "3c5766e8-269c-4e34-aa14-ed776e85b3b6", 256},
	[BS_UEFI_SIG_RSA2048_SHA256] = {"rsa2048-sha256", "e2b36190-879b-4a3d-ad8d-f2e7bba32784", 256},
	[BS_UEFI_SIG_SHA1] = {"sha1", "826ca512-cf10-4ac9-b187-be01496631bd", 20},
	[BS_UEFI_SIG_RSA2048_SHA1] = {"rsa2048-sha1", "67f8444f-8743-48f1-a328-1eaab8736080", 256},
	[BS_UEFI_SIG_X509] = {"x509", "a5c059a1-94e4-4aa7-87b5-ab155c2bf072", 0},
	[BS_UEFI_SIG_SHA224] = {"sha224", "0b6e5233-a65c-44c9-9407-d9ab83bfc8bd", 28},
	[BS_UEFI_SIG_SHA384] = {"sha384", "ff3e5307-9fd0-48c9-85f1-8ad56c701e01", 48},
	[BS_UEFI_SIG_SHA512] = {"sha512", "093e0fae-a6c4-4f50-9f1b-d41e2b89c19a", 64},
	[BS_UEFI_SIG_X509_SHA256] = {"x509-sha256", "3bd2a492-96c0-4079-b420-fcf98ef103ed", 48},
	[BS_UEFI_SIG_X509_SHA384] = {"x509-sha384", "7076876e-80c2-4ee6-aad2-28b349a6865b", 64},
	[BS_UEFI_SIG_X509_SHA512] = {"x509-sha512", "446dbf63-2502-4cda-bcfa-2465d2b0fe9d", 80},
};
#define NSIGTYPES (sizeof sigtypes / sizeof sigtypes[0])

const char *bs_uefi_sigtype_name(enum bs_uefi_sigtype t)
{
	return t > 0 && (size_t)t < NSIGTYPES ? sigtypes[t].name : NULL;
}

int bs_uefi_sigtype_guid(enum bs_uefi_sigtype t, uint8_t guid[16])
{
	if (!guid || t <= 0 || (size_t)t >= NSIGTYPES)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "no such signature type");
	return bs_uefi_guid_parse(sigtypes[t].guid, guid);
}

static enum bs_uefi_sigtype sigtype_of(const uint8_t *g)
{
	char s[37];
	bs_uefi_guid_str(g, s);
	for (size_t t = 1; t < NSIGTYPES; t++)
		if (!strcmp(sigtypes[t].guid, s))
			return (enum bs_uefi_sigtype)t;
	return BS_UEFI_SIG_UNKNOWN;
}

void bs_uefi_sigs_free(struct bs_uefi_sig *sigs, size_t n)
{
	if (!sigs)
		return;
	for (size_t i = 0; i < n; i++) {
		free(sigs[i].subject);
		free(sigs[i].issuer);
	}
	free(sigs);
}

static char *name_text(const X509_NAME *nm)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;
	if (!bio)
		return NULL;
	if (X509_NAME_print_ex(bio, nm, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		if (n >= 0 && (s = malloc((size_t)n + 1))) {
			memcpy(s, p, (size_t)n);
			s[n] = 0;
		}
	}
	BIO_free(bio);
	return s;
}

/* A struct tm (UTC) as EFI_TIME octets. */
static void tm_to_efi(const struct tm *tm, uint8_t t[16])
{
	memset(t, 0, 16);
	bs_put_le16(t, (uint16_t)(tm->tm_year + 1900));
	t[2] = (uint8_t)(tm->tm_mon + 1);
	t[3] = (uint8_t)tm->tm_mday;
	t[4] = (uint8_t)tm->tm_hour;
	t[5] = (uint8_t)tm->tm_min;
	t[6] = (uint8_t)tm->tm_sec;
}

/* Reads the X.509 certificate of signature S (one DER certificate, nothing
 * after it, an RSA key as edk2 requires). */
static int read_x509(struct bs_uefi_sig *s)
{
	const unsigned char *p = s->data;
	if (s->len > LONG_MAX)
		return corrupt(s->offset, "certificate too large");
	X509 *x = d2i_X509(NULL, &p, (long)s->len);
	if (!x)
		return corrupt(s->offset, "not a DER X.509 certificate");
	int rc = BS_OK;
	if ((size_t)(p - s->data) != s->len) {
		rc = corrupt(s->offset + (size_t)(p - s->data),
			     "%zu octets after the X.509 certificate", s->len - (size_t)(p - s->data));
		goto out;
	}
	EVP_PKEY *k = X509_get0_pubkey(x);
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		rc = corrupt(s->offset, "the certificate's key is not RSA (edk2 accepts only RSA keys)");
		goto out;
	}
	struct tm tm;
	const ASN1_TIME *nb = X509_get0_notBefore(x);
	if (nb && ASN1_TIME_to_tm(nb, &tm) == 1)
		tm_to_efi(&tm, s->not_before);
	s->subject = name_text(X509_get_subject_name(x));
	s->issuer = name_text(X509_get_issuer_name(x));
	if (!s->subject || !s->issuer)
		rc = nomem();
out:
	X509_free(x);
	return rc;
}

int bs_uefi_sigdb_parse(const uint8_t *p, size_t len, unsigned flags,
			struct bs_uefi_sig **sigs, size_t *n)
{
	if ((!p && len) || !sigs || !n)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	struct bs_uefi_sig *v = NULL;
	size_t nv = 0, cap = 0, pos = 0, list = 0;
	int rc = BS_OK;
	while (pos < len) {
		size_t left = len - pos;
		if (left < 28) {
			rc = corrupt(pos, "%zu octets left, shorter than an EFI_SIGNATURE_LIST header", left);
			goto fail;
		}
		const uint8_t *h = p + pos;
		size_t ls = bs_get_le32(h + 16), hs = bs_get_le32(h + 20), ss = bs_get_le32(h + 24);
		enum bs_uefi_sigtype t = sigtype_of(h);
		char g[37];
		bs_uefi_guid_str(h, g);
		if (t == BS_UEFI_SIG_UNKNOWN) {
			rc = corrupt(pos, "signature list %zu has the unknown SignatureType %s", list, g);
			goto fail;
		}
		if (ls < 28 || ls > left) {
			rc = corrupt(pos + 16, "signature list %zu: SignatureListSize %zu does not fit "
				     "(%zu octets left)", list, ls, left);
			goto fail;
		}
		if (hs) {
			rc = corrupt(pos + 20, "signature list %zu: SignatureHeaderSize %zu, not 0", list, hs);
			goto fail;
		}
		if (ss <= 16 || (sigtypes[t].size && ss != 16 + sigtypes[t].size)) {
			rc = corrupt(pos + 24, "signature list %zu (%s): SignatureSize %zu, not %zu", list,
				     sigtypes[t].name, ss, 16 + (sigtypes[t].size ? sigtypes[t].size : 1));
			goto fail;
		}
		if ((ls - 28) % ss) {
			rc = corrupt(pos + 16, "signature list %zu: %zu octets of signatures are not a "
				     "multiple of SignatureSize %zu", list, ls - 28, ss);
			goto fail;
		}
		for (size_t at = 28; at < ls; at += ss) {
			if ((flags & BS_UEFI_SIGDB_PK) && nv >= 1) {
				rc = corrupt(pos + at, "PK holds more than one signature");
				goto fail;
			}
			if (nv == cap) {
				size_t nc = cap ? cap * 2 : 8;
				struct bs_uefi_sig *nvp = nc > SIZE_MAX / sizeof *v ? NULL
							: realloc(v, nc * sizeof *v);
				if (!nvp) {
					rc = nomem();
					goto fail;
				}
				v = nvp;
				cap = nc;
			}
			struct bs_uefi_sig *s = &v[nv++];
			memset(s, 0, sizeof *s);
			s->type = t;
			memcpy(s->type_guid, h, 16);
			memcpy(s->owner, h + at, 16);
			s->list = list;
			s->offset = pos + at + 16;
			s->data = h + at + 16;
			s->len = ss - 16;
			if (t == BS_UEFI_SIG_X509 && (rc = read_x509(s)))
				goto fail;
		}
		pos += ls;
		list++;
	}
	*sigs = v;
	*n = nv;
	return BS_OK;
fail:
	bs_uefi_sigs_free(v, nv);
	return rc;
}

/* ---- device paths -------------------------------------------------------------------- */

/* Vendor GUIDs of messaging nodes that have a text form of their own. */
#define PC_ANSI "e0c14753-f9be-11d2-9a0c-0090273fc14d"
#define VT100 "dfa66065-b419-11d3-9a2d-0090273fc14d"
#define VT100_PLUS "7baec70b-57e0-4c76-8e87-2f9e28088343"
#define VT_UTF8 "ad15a0d6-8bec-4acf-a073-d01de77e2d88"
#define UART_FLOW "37499a9d-542f-4c89-a026-35da142094e4"

static bool guid_is(const uint8_t *g, const char *text)
{
	char s[37];
	bs_uefi_guid_str(g, s);
	return !strcmp(s, text);
}

static void ipv4(struct sb *b, const uint8_t *a)
{
	sb_add(b, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
}

static void ipv6(struct sb *b, const uint8_t *a)
{
	for (int i = 0; i < 16; i += 2)
		sb_add(b, "%s%x", i ? ":" : "", bs_get_be16(a + i));
}

static void proto(struct sb *b, unsigned p)
{
	if (p == 6)
		sb_add(b, "TCP");
	else if (p == 17)
		sb_add(b, "UDP");
	else
		sb_add(b, "0x%X", p);
}

/* ASCII text of P/N (up to its first NUL) with other octets as '?'. */
static void ascii(struct sb *b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && p[i]; i++)
		sb_add(b, "%c", p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
}

static void generic(struct sb *b, const char *kind, unsigned type, unsigned sub,
		    const uint8_t *d, size_t n)
{
	if (kind)
		sb_add(b, "%s(%u,", kind, sub);
	else
		sb_add(b, "Path(%u,%u,", type, sub);
	sb_hex(b, d, n);
	sb_add(b, ")");
}

static const char *const usb_class_names[256] = {
	[1] = "UsbAudio", [2] = "UsbCDCControl", [3] = "UsbHID", [6] = "UsbImage",
	[7] = "UsbPrinter", [8] = "UsbMassStorage", [9] = "UsbHub", [10] = "UsbCDCData",
	[11] = "UsbSmartCard", [14] = "UsbVideo", [0xdc] = "UsbDiagnostic",
	[0xe0] = "UsbWireless",
};

/* One node N/LEN (header included) of type T, subtype S, as text. */
static void node_text(struct sb *b, const uint8_t *n, size_t len)
{
	unsigned t = n[0], s = n[1];
	const uint8_t *d = n + 4;
	size_t dl = len - 4;
	if (t == 1 && s == 1 && dl == 2) {
		sb_add(b, "Pci(0x%X,0x%X)", d[1], d[0]);
	} else if (t == 1 && s == 2 && dl == 1) {
		sb_add(b, "PcCard(0x%X)", d[0]);
	} else if (t == 1 && s == 3 && dl == 20) {
		sb_add(b, "MemoryMapped(0x%X,0x%llX,0x%llX)", bs_get_le32(d),
		       (unsigned long long)bs_get_le64(d + 4), (unsigned long long)bs_get_le64(d + 12));
	} else if ((t == 1 || t == 3 || t == 4) && ((t == 1 && s == 4) || (t == 3 && s == 10) ||
						     (t == 4 && s == 3)) && dl >= 16) {
		const char *kind = t == 1 ? "VenHw" : t == 3 ? "VenMsg" : "VenMedia";
		if (t == 3 && dl == 16 && guid_is(d, PC_ANSI)) {
			sb_add(b, "VenPcAnsi()");
		} else if (t == 3 && dl == 16 && guid_is(d, VT100)) {
			sb_add(b, "VenVt100()");
		} else if (t == 3 && dl == 16 && guid_is(d, VT100_PLUS)) {
			sb_add(b, "VenVt100Plus()");
		} else if (t == 3 && dl == 16 && guid_is(d, VT_UTF8)) {
			sb_add(b, "VenUtf8()");
		} else if (t == 3 && dl == 20 && guid_is(d, UART_FLOW)) {
			uint32_t f = bs_get_le32(d + 16) & 3;
			sb_add(b, "UartFlowCtrl(%s)", f == 0 ? "None" : f == 1 ? "Hardware"
						  : f == 2 ? "XonXoff" : "0x3");
		} else {
			sb_add(b, "%s(", kind);
			sb_guid(b, d);
			if (dl > 16) {
				sb_add(b, ",");
				sb_hex(b, d + 16, dl - 16);
			}
			sb_add(b, ")");
		}
	} else if (t == 1 && s == 5 && dl == 4) {
		sb_add(b, "Ctrl(0x%X)", bs_get_le32(d));
	} else if (t == 2 && s == 1 && dl == 8) {
		uint32_t hid = bs_get_le32(d), uid = bs_get_le32(d + 4);
		if ((hid & 0xffff) == 0x41d0) {
			switch (hid >> 16) {
			case 0x0a03: sb_add(b, "PciRoot(0x%X)", uid); break;
			case 0x0a08: sb_add(b, "PcieRoot(0x%X)", uid); break;
			case 0x0604: sb_add(b, "Floppy(0x%X)", uid); break;
			case 0x0301: sb_add(b, "Keyboard(0x%X)", uid); break;
			case 0x0501: sb_add(b, "Serial(0x%X)", uid); break;
			case 0x0401: sb_add(b, "ParallelPort(0x%X)", uid); break;
			default: sb_add(b, "Acpi(PNP%04X,0x%X)", hid >> 16, uid); break;
			}
		} else {
			sb_add(b, "Acpi(0x%08X,0x%X)", hid, uid);
		}
	} else if (t == 2 && s == 3 && dl >= 4 && dl % 4 == 0) {
		sb_add(b, "AcpiAdr(");
		for (size_t i = 0; i < dl; i += 4)
			sb_add(b, "%s0x%X", i ? "," : "", bs_get_le32(d + i));
		sb_add(b, ")");
	} else if (t == 3 && s == 1 && dl == 4) {
		sb_add(b, "Ata(%s,%s,0x%X)", d[0] ? "Secondary" : "Primary", d[1] ? "Slave" : "Master",
		       bs_get_le16(d + 2));
	} else if (t == 3 && s == 2 && dl == 4) {
		sb_add(b, "Scsi(0x%X,0x%X)", bs_get_le16(d), bs_get_le16(d + 2));
	} else if (t == 3 && s == 5 && dl == 2) {
		sb_add(b, "USB(0x%X,0x%X)", d[0], d[1]);
	} else if (t == 3 && s == 11 && dl == 33) {
		sb_add(b, "MAC(");
		sb_hex(b, d, d[32] == 0 || d[32] == 1 ? 6 : 32);
		sb_add(b, ",0x%X)", d[32]);
	} else if (t == 3 && s == 12 && (dl == 23 || dl == 15)) {
		sb_add(b, "IPv4(");
		ipv4(b, d + 4);
		sb_add(b, ",");
		proto(b, bs_get_le16(d + 12));
		sb_add(b, ",%s,", d[14] ? "Static" : "DHCP");
		ipv4(b, d);
		if (dl == 23) {
			sb_add(b, ",");
			ipv4(b, d + 15);
			sb_add(b, ",");
			ipv4(b, d + 19);
		}
		sb_add(b, ")");
	} else if (t == 3 && s == 13 && dl == 56) {
		static const char *const origin[] = {"Static", "StatelessAutoConfigure",
						     "StatefulAutoConfigure"};
		sb_add(b, "IPv6(");
		ipv6(b, d + 16);
		sb_add(b, ",");
		proto(b, bs_get_le16(d + 36));
		sb_add(b, ",%s,", d[38] < 3 ? origin[d[38]] : "?");
		ipv6(b, d);
		sb_add(b, ",0x%X,", d[39]);
		ipv6(b, d + 40);
		sb_add(b, ")");
	} else if (t == 3 && s == 14 && dl == 15) {
		uint64_t baud = bs_get_le64(d + 4);
		static const char par[] = "DNEOMS";
		static const char *const stop[] = {"D", "1", "1.5", "2"};
		if (baud)
			sb_add(b, "Uart(%llu,", (unsigned long long)baud);
		else
			sb_add(b, "Uart(DEFAULT,");
		if (d[12])
			sb_add(b, "%u,", d[12]);
		else
			sb_add(b, "DEFAULT,");
		sb_add(b, "%c,%s)", d[13] < 6 ? par[d[13]] : 'x', d[14] < 4 ? stop[d[14]] : "x");
	} else if (t == 3 && s == 15 && dl == 7) {
		const char *name = usb_class_names[d[4]];
		if (d[4] == 0xfe && d[5] == 1)
			name = "UsbDeviceFirmwareUpdate";
		else if (d[4] == 0xfe && d[5] == 2)
			name = "UsbIrdaBridge";
		else if (d[4] == 0xfe && d[5] == 3)
			name = "UsbTestAndMeasurement";
		if (name && d[4] == 0xfe)
			sb_add(b, "%s(0x%X,0x%X,0x%X)", name, bs_get_le16(d), bs_get_le16(d + 2), d[6]);
		else if (name)
			sb_add(b, "%s(0x%X,0x%X,0x%X,0x%X)", name, bs_get_le16(d), bs_get_le16(d + 2),
			       d[5], d[6]);
		else
			sb_add(b, "UsbClass(0x%X,0x%X,0x%X,0x%X,0x%X)", bs_get_le16(d),
			       bs_get_le16(d + 2), d[4], d[5], d[6]);
	} else if (t == 3 && s == 17 && dl == 1) {
		sb_add(b, "Unit(0x%X)", d[0]);
	} else if (t == 3 && s == 18 && dl == 6) {
		sb_add(b, "Sata(0x%X,0x%X,0x%X)", bs_get_le16(d), bs_get_le16(d + 2),
		       bs_get_le16(d + 4));
	} else if (t == 3 && s == 20 && dl == 2) {
		sb_add(b, "Vlan(%u)", bs_get_le16(d));
	} else if (t == 3 && s == 23 && dl == 12) {
		sb_add(b, "NVMe(0x%X,", bs_get_le32(d));
		for (int i = 7; i >= 0; i--)
			sb_add(b, "%02X%s", d[4 + i], i ? "-" : ")");
	} else if (t == 3 && s == 24) {
		sb_add(b, "Uri(");
		ascii(b, d, dl);
		sb_add(b, ")");
	} else if (t == 4 && s == 1 && dl == 38) {
		sb_add(b, "HD(%u,", bs_get_le32(d));
		if (d[37] == 1)
			sb_add(b, "MBR,0x%08X,", bs_get_le32(d + 20));
		else if (d[37] == 2) {
			sb_add(b, "GPT,");
			sb_guid(b, d + 20);
			sb_add(b, ",");
		} else {
			sb_add(b, "%u,0,", d[37]);
		}
		sb_add(b, "0x%llX,0x%llX)", (unsigned long long)bs_get_le64(d + 4),
		       (unsigned long long)bs_get_le64(d + 12));
	} else if (t == 4 && s == 2 && dl == 20) {
		sb_add(b, "CDROM(0x%X,0x%llX,0x%llX)", bs_get_le32(d),
		       (unsigned long long)bs_get_le64(d + 4), (unsigned long long)bs_get_le64(d + 12));
	} else if (t == 4 && s == 4 && dl >= 2 && dl % 2 == 0) {
		char *u8;
		if (bs_uefi_utf16_decode(d, dl, &u8) == BS_OK) {
			sb_add(b, "%s", u8);
			free(u8);
		} else {
			generic(b, "MediaPath", t, s, d, dl);
		}
	} else if (t == 4 && (s == 5 || s == 6 || s == 7) && dl == 16) {
		sb_add(b, "%s(", s == 5 ? "Media" : s == 6 ? "FvFile" : "Fv");
		sb_guid(b, d);
		sb_add(b, ")");
	} else if (t == 4 && s == 8 && dl == 20) {
		sb_add(b, "Offset(0x%llX,0x%llX)", (unsigned long long)bs_get_le64(d + 4),
		       (unsigned long long)bs_get_le64(d + 12));
	} else if (t == 5 && s == 1 && dl >= 4) {
		static const char *const dev[] = {NULL, "Floppy", "HD", "CDROM", "PCMCIA", "USB",
						  "Network"};
		unsigned dt = bs_get_le16(d);
		if (dt >= 1 && dt <= 6)
			sb_add(b, "BBS(%s,", dev[dt]);
		else
			sb_add(b, "BBS(0x%X,", dt);
		ascii(b, d + 4, dl - 4);
		sb_add(b, ",0x%X)", bs_get_le16(d + 2));
	} else {
		static const char *const kinds[] = {NULL, "HardwarePath", "AcpiPath", "Msg",
						    "MediaPath", "BbsPath"};
		generic(b, t >= 1 && t <= 5 ? kinds[t] : NULL, t, s, d, dl);
	}
}

/* Text of the device path list P/LEN into B: nodes until an End node,
 * paths after the first one joined by SEP (NULL: data after the first
 * path's end is an error). */
static int devpath_into(struct sb *b, const uint8_t *p, size_t len, const char *sep)
{
	size_t pos = 0;
	bool start = true;
	while (pos < len) {
		if (len - pos < 4)
			return corrupt(pos, "device path node header cut short (%zu octets left)",
				       len - pos);
		size_t nl = bs_get_le16(p + pos + 2);
		if (nl < 4 || nl > len - pos)
			return corrupt(pos + 2, "device path node length %zu does not fit (%zu octets "
				       "left)", nl, len - pos);
		uint8_t t = p[pos], s = p[pos + 1];
		if (t == 0x7f && (s == 0xff || s == 0x01)) {
			pos += nl;
			if (s == 0x01) {
				sb_add(b, ",");
				start = true;
				continue;
			}
			if (pos == len)
				return b->failed ? nomem() : BS_OK;
			if (!sep)
				return corrupt(pos, "%zu octets after the device path's end node", len - pos);
			sb_add(b, "%s", sep);
			start = true;
			continue;
		}
		if (!start)
			sb_add(b, "/");
		node_text(b, p + pos, nl);
		start = false;
		pos += nl;
	}
	return corrupt(len, "device path has no end node");
}

int bs_uefi_devpath_text(const uint8_t *p, size_t len, char **out)
{
	if ((!p && len) || !out)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	struct sb b = {0};
	int rc = devpath_into(&b, p, len, NULL);
	if (!rc && b.failed)
		rc = nomem();
	if (!rc && !b.p) {
		b.p = strdup("");
		if (!b.p)
			rc = nomem();
	}
	if (rc) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	return BS_OK;
}

/* ---- load options ---------------------------------------------------------------------- */

void bs_uefi_load_option_free(struct bs_uefi_load_option *lo)
{
	if (!lo)
		return;
	free(lo->description);
	free(lo->device_path);
	memset(lo, 0, sizeof *lo);
}

int bs_uefi_load_option_parse(const uint8_t *p, size_t len, struct bs_uefi_load_option *out)
{
	if ((!p && len) || !out)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	if (len < 8)
		return corrupt(0, "load option of %zu octets is shorter than its fixed part", len);
	size_t fpl = bs_get_le16(p + 4), d = 6, e = d;
	while (e + 1 < len && bs_get_le16(p + e))
		e += 2;
	if (e + 1 >= len)
		return corrupt(d, "load option description has no NUL");
	e += 2;
	if (fpl > len - e)
		return corrupt(4, "FilePathListLength %zu runs past the load option (%zu octets left)",
			       fpl, len - e);
	struct bs_uefi_load_option lo = {.attributes = bs_get_le32(p)};
	int rc = bs_uefi_utf16_decode(p + d, e - d, &lo.description);
	if (rc)
		return corrupt(d, "load option description is not UTF-16 text");
	struct sb b = {0};
	rc = devpath_into(&b, p + e, fpl, " ; ");
	if (!rc && b.failed)
		rc = nomem();
	if (!rc && !b.p && !(b.p = strdup("")))
		rc = nomem();
	if (rc) {
		const char *m;
		bs_error_last(&m, NULL);
		char msg[300];
		snprintf(msg, sizeof msg, "%s", m);
		free(b.p);
		free(lo.description);
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, rc, 0,
				    "load option device path (from octet %zu): %s", e, msg);
	}
	lo.device_path = b.p;
	if (len > e + fpl) {
		lo.optional = p + e + fpl;
		lo.optional_len = len - e - fpl;
	}
	*out = lo;
	return BS_OK;
}

/* ---- authenticated writes -------------------------------------------------------------- */

int bs_uefi_auth_parse(const uint8_t *p, size_t len, uint8_t timestamp[16], size_t *data_off)
{
	if ((!p && len) || !timestamp || !data_off)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	/* An EFI_SIGNATURE_LIST has SignatureHeaderSize 0 where this header has
	 * wRevision 0x0200: the two cannot be mistaken for each other. */
	if (len < 40 || bs_get_le16(p + 20) != 0x0200 || bs_get_le16(p + 22) != 0x0ef1)
		return BS_ENOENT;
	if (p[7] || bs_get_le32(p + 8) || bs_get_le16(p + 12) || p[14] || p[15])
		return corrupt(7, "authentication header TimeStamp: Pad1, Nanosecond, TimeZone, "
			       "Daylight and Pad2 must be 0");
	if (!p[2] || p[2] > 12 || !p[3] || p[3] > 31 || p[4] > 23 || p[5] > 59 || p[6] > 59)
		return corrupt(0, "authentication header TimeStamp is not a valid date and time");
	size_t dw = bs_get_le32(p + 16);
	if (dw < 24 || dw > len - 16)
		return corrupt(16, "authentication header dwLength %zu does not fit the %zu octets", dw,
			       len);
	static const char pkcs7[] = "4aafd29d-68df-49ee-8aa9-347d375665a7";
	if (!guid_is(p + 24, pkcs7))
		return corrupt(24, "authentication header CertType is not EFI_CERT_TYPE_PKCS7_GUID");
	if (dw == 24)
		return corrupt(16, "authentication header carries no signature");
	memcpy(timestamp, p, 16);
	*data_off = 16 + dw;
	return BS_OK;
}

/* ---- time ------------------------------------------------------------------------------- */

char *bs_uefi_time_format(const uint8_t t[16], char buf[40])
{
	static const uint8_t zero[16];
	if (!buf)
		return buf;
	buf[0] = 0;
	if (!t || !memcmp(t, zero, 16))
		return buf;
	int n = snprintf(buf, 40, "%04u-%02u-%02uT%02u:%02u:%02u", bs_get_le16(t), t[2], t[3], t[4],
			 t[5], t[6]);
	uint32_t ns = bs_get_le32(t + 8);
	if (ns && n > 0 && n < 40)
		n += snprintf(buf + n, 40 - (size_t)n, ".%09u", ns % 1000000000u);
	int16_t tz = (int16_t)bs_get_le16(t + 12);
	if (n > 0 && n < 40) {
		if (tz == 0 || tz == 0x7ff || tz < -1440 || tz > 1440)
			snprintf(buf + n, 40 - (size_t)n, "Z");
		else /* EFI_TIME: local time = UTC - TimeZone minutes */
			snprintf(buf + n, 40 - (size_t)n, "%c%02d:%02d", tz > 0 ? '-' : '+',
				 (tz > 0 ? tz : -tz) / 60, (tz > 0 ? tz : -tz) % 60);
	}
	return buf;
}

/* ---- decoding by name ------------------------------------------------------------------- */

void bs_uefi_decoded_free(struct bs_uefi_decoded *d)
{
	if (!d)
		return;
	bs_uefi_load_option_free(&d->load_option);
	free(d->order);
	bs_uefi_sigs_free(d->sigs, d->nsigs);
	free(d->text);
	free(d->error);
	free(d);
}

static bool global(const struct bs_uefi_var *v)
{
	return guid_is(v->guid, "8be4df61-93ca-11d2-aa0d-00e098032b8c");
}

static bool numbered(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (strncmp(name, prefix, pl) || strlen(name) != pl + 4)
		return false;
	for (size_t i = pl; i < pl + 4; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
			return false;
	return true;
}

static bool in_list(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(name, *list))
			return true;
	return false;
}

/* Keeps the reason a known structure did not decode. */
static int failed_decode(struct bs_uefi_decoded *d, const char *what)
{
	const char *m;
	bs_error_last(&m, NULL);
	size_t n = strlen(what) + strlen(m) + 3;
	d->kind = BS_UEFI_DATA_BLOB;
	d->error = malloc(n);
	if (!d->error)
		return nomem();
	snprintf(d->error, n, "%s: %s", what, m);
	return BS_OK;
}

static bool printable_ascii(const uint8_t *p, size_t n)
{
	if (n < 2 || p[n - 1])
		return false;
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] < 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

int bs_uefi_decode(const struct bs_uefi_var *v, struct bs_uefi_decoded **out)
{
	static const char *const sigdbs[] = {"PK", "KEK", "db", "dbx", "dbt", "dbr", "PKDefault",
					     "KEKDefault", "dbDefault", "dbxDefault", "dbtDefault",
					     "dbrDefault", "MokList", "MokListX", "MokListRT",
					     "MokListXRT", "MokListTrusted", "TlsCaCertificate", NULL};
	static const char *const orders[] = {"BootOrder", "BootNext", "BootCurrent", "DriverOrder",
					     "SysPrepOrder", "OsRecoveryOrder", NULL};
	static const char *const devpaths[] = {"ConIn", "ConOut", "ErrOut", "ConInDev", "ConOutDev",
					       "ErrOutDev", NULL};
	static const char *const strings[] = {"Lang", "PlatformLang", "LangCodes",
					      "PlatformLangCodes", NULL};
	if (!v || !v->name || (!v->data && v->data_len) || !out)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	struct bs_uefi_decoded *d = calloc(1, sizeof *d);
	if (!d)
		return nomem();
	d->version = BS_UEFI_DECODED_VERSION;
	const uint8_t *p = v->data;
	size_t n = v->data_len;
	int rc = BS_OK;
	bool g = global(v);
	if (in_list(v->name, sigdbs)) {
		d->kind = BS_UEFI_DATA_SIGDB;
		if (bs_uefi_sigdb_parse(p, n, 0, &d->sigs, &d->nsigs))
			rc = failed_decode(d, "signature database");
	} else if (g && (numbered(v->name, "Boot") || numbered(v->name, "Driver") ||
			 numbered(v->name, "SysPrep") || numbered(v->name, "PlatformRecovery"))) {
		d->kind = BS_UEFI_DATA_LOAD_OPTION;
		if (bs_uefi_load_option_parse(p, n, &d->load_option))
			rc = failed_decode(d, "load option");
	} else if (g && in_list(v->name, orders)) {
		if (n % 2) {
			bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
				     "%zu octets, not a list of 16-bit option numbers", n);
			rc = failed_decode(d, "option list");
		} else {
			d->kind = BS_UEFI_DATA_ORDER;
			d->norder = n / 2;
			d->order = malloc(d->norder ? n : 1);
			if (!d->order)
				rc = nomem();
			for (size_t i = 0; !rc && i < d->norder; i++)
				d->order[i] = bs_get_le16(p + 2 * i);
		}
	} else if (g && in_list(v->name, devpaths)) {
		d->kind = BS_UEFI_DATA_DEVPATH;
		if (bs_uefi_devpath_text(p, n, &d->text))
			rc = failed_decode(d, "device path");
	} else if ((g && in_list(v->name, strings)) || printable_ascii(p, n)) {
		/* Language codes are ASCII, NUL-terminated (UEFI 2.10, 3.3). */
		size_t l = strnlen((const char *)p, n);
		d->kind = BS_UEFI_DATA_STRING;
		d->text = malloc(l + 1);
		if (!d->text)
			rc = nomem();
		else {
			for (size_t i = 0; i < l; i++)
				d->text[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
			d->text[l] = 0;
		}
	} else if (n == 1 || n == 2 || n == 4 || n == 8) {
		d->kind = BS_UEFI_DATA_INTEGER;
		d->int_size = n;
		for (size_t i = n; i-- > 0;)
			d->integer = d->integer << 8 | p[i];
	}
	if (rc) {
		bs_uefi_decoded_free(d);
		return rc;
	}
	*out = d;
	return BS_OK;
}

/* ---- building signature databases -------------------------------------------------- */

#include <openssl/pem.h>

int bs_uefi_cert_load(const uint8_t *p, size_t len, uint8_t **der, size_t *der_len)
{
	if ((!p && len) || !der || !der_len)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	if (len > LONG_MAX || len > INT_MAX)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, 0, "certificate too large");
	X509 *x = NULL;
	const unsigned char *q = p;
	bool pem = len >= 11 && memmem(p, len, "-----BEGIN", 10);
	if (pem) {
		BIO *bio = BIO_new_mem_buf(p, (int)len);
		if (bio)
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		x = d2i_X509(NULL, &q, (long)len);
		if (x && (size_t)(q - p) != len) {
			X509_free(x);
			return corrupt((size_t)(q - p), "data after the DER certificate");
		}
	}
	if (!x)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
				    "not an X.509 certificate in %s", pem ? "PEM" : "DER");
	int n = i2d_X509(x, NULL);
	uint8_t *b = n > 0 ? malloc((size_t)n) : NULL, *w = b;
	if (!b || i2d_X509(x, &w) != n) {
		free(b);
		X509_free(x);
		return nomem();
	}
	X509_free(x);
	/* The checks edk2 makes (an RSA key, one certificate). */
	struct bs_uefi_sig s = {.type = BS_UEFI_SIG_X509, .data = b, .len = (size_t)n};
	int rc = read_x509(&s);
	free(s.subject);
	free(s.issuer);
	if (rc) {
		free(b);
		return rc;
	}
	*der = b;
	*der_len = (size_t)n;
	return BS_OK;
}

int bs_uefi_sigdb_add(uint8_t **db, size_t *len, enum bs_uefi_sigtype type,
		      const uint8_t owner[16], const uint8_t *data, size_t n, int *added)
{
	if (!db || !len || (!*db && *len) || !owner || (!data && n))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	if (type <= 0 || (size_t)type >= NSIGTYPES || !n ||
	    (sigtypes[type].size && n != sigtypes[type].size) || n > UINT32_MAX - 28 - 16)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "a %s signature of %zu octets (want %zu)",
				    bs_uefi_sigtype_name(type) ? bs_uefi_sigtype_name(type) : "unknown",
				    n, type > 0 && (size_t)type < NSIGTYPES ? sigtypes[type].size : 0);
	struct bs_uefi_sig *sigs;
	size_t ns;
	int rc = bs_uefi_sigdb_parse(*db, *len, 0, &sigs, &ns);
	if (rc)
		return rc;
	/* Where the new signature goes: the end of the first list of its type
	 * (hashes), or a list of its own at the end (certificates). */
	size_t at = *len, grow = 16 + n, list_off = SIZE_MAX;
	bool dup = false;
	for (size_t i = 0; i < ns; i++) {
		if (sigs[i].type == type && sigs[i].len == n && !memcmp(sigs[i].data, data, n))
			dup = true;
		if (type != BS_UEFI_SIG_X509 && sigs[i].type == type && list_off == SIZE_MAX) {
			/* The list holding sigs[i] starts SignatureListSize before
			 * its end; find its header by walking the lists. */
			size_t pos = 0;
			for (size_t l = 0; l < sigs[i].list; l++)
				pos += bs_get_le32(*db + pos + 16);
			list_off = pos;
			at = pos + bs_get_le32(*db + pos + 16);
		}
	}
	bs_uefi_sigs_free(sigs, ns);
	if (dup) {
		if (added)
			*added = 0;
		return BS_OK;
	}
	if (list_off == SIZE_MAX)
		grow += 28;
	if (*len > SIZE_MAX - grow)
		return nomem();
	uint8_t *b = malloc(*len + grow);
	if (!b)
		return nomem();
	if (*len)
		memcpy(b, *db, at);
	uint8_t *w = b + at;
	if (list_off == SIZE_MAX) {
		bs_uefi_sigtype_guid(type, w);
		bs_put_le32(w + 16, (uint32_t)(28 + 16 + n));
		bs_put_le32(w + 20, 0);
		bs_put_le32(w + 24, (uint32_t)(16 + n));
		w += 28;
	} else {
		uint32_t ls = bs_get_le32(b + list_off + 16);
		if (ls > UINT32_MAX - 16 - n) {
			free(b);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, 0,
					    "signature list too large");
		}
		bs_put_le32(b + list_off + 16, (uint32_t)(ls + 16 + n));
	}
	memcpy(w, owner, 16);
	memcpy(w + 16, data, n);
	if (*len > at)
		memcpy(w + 16 + n, *db + at, *len - at);
	free(*db);
	*db = b;
	*len += grow;
	if (added)
		*added = 1;
	return BS_OK;
}
