/* blobstore/uefi.h - a UEFI variable store on the device API.
 *
 * Imports an edk2 variable store file (the VARS flash of OVMF: a firmware
 * volume holding an authenticated-variable store) into an image, one entry
 * per variable, and exports the image back to such a file that the firmware
 * accepts.  Layout notes: docs/DEVICE-API.md.
 *
 * In the image:
 *   type "uefi.var", name "<GUID>:<VariableName>" (GUID in the usual
 *     8-4-4-4-12 lower-case form, the name in UTF-8); read-only attributes
 *     uefi.attributes (INTEGER), uefi.timestamp (OCTET STRING, the 16 octets
 *     of EFI_TIME as stored), uefi.monotonic-count (INTEGER),
 *     uefi.pubkey-index (INTEGER); the data is the variable's data.
 *   type "uefi.varstore" (unnamed): what the file holds besides variables
 *     (firmware volume and store headers, the fault-tolerant-write areas),
 *     so that an export needs no template; read-only attributes
 *     uefi.file-size, uefi.vars-offset, uefi.store-end (INTEGERs).
 * Other attributes on these entries are kept and shown, never dropped.
 *
 * Beyond the file: names alone and attribute names (nvram/uefi_names.c),
 * the structures inside variable data decoded (nvram/uefi_decode.c),
 * virt-firmware's JSON (nvram/uefi_json.c), and checks of every variable
 * and of the store's space before anything is written (nvram/uefi.c).
 *
 * Conventions: blobstore/blobstore.h.  Parsers check every length against
 * its parent. */
#ifndef BLOBSTORE_UEFI_H
#define BLOBSTORE_UEFI_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/blobstore.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BS_UEFI_VAR_TYPE "uefi.var"
#define BS_UEFI_STORE_TYPE "uefi.varstore"

/* UEFI variable attributes (UEFI 2.x, 8.2), with the short names that
 * bs_uefi_attr_format() prints and bs_uefi_attr_parse() takes. */
#define BS_UEFI_NON_VOLATILE 0x01u        /* NV */
#define BS_UEFI_BOOTSERVICE_ACCESS 0x02u  /* BS */
#define BS_UEFI_RUNTIME_ACCESS 0x04u      /* RT */
#define BS_UEFI_HARDWARE_ERROR 0x08u      /* HR: hardware error record */
#define BS_UEFI_AUTH_WRITE 0x10u          /* AW: count-based authenticated (deprecated) */
#define BS_UEFI_TIME_BASED_AUTH 0x20u     /* AT: time-based authenticated write */
#define BS_UEFI_APPEND_WRITE 0x40u        /* AP: SetVariable() flag, never stored */
#define BS_UEFI_ENHANCED_AUTH 0x80u       /* EA: enhanced authenticated access */

struct bs_uefi_var {
	uint32_t version;       /* BS_UEFI_VAR_VERSION (the library sets it) */
	uint8_t guid[16];       /* EFI_GUID octets as stored (first three fields LE) */
	char *name;             /* UTF-8, NUL-terminated, malloc()ed */
	uint32_t attributes;
	uint64_t monotonic_count;
	uint8_t timestamp[16];  /* EFI_TIME octets as stored */
	uint32_t pubkey_index;
	uint8_t *data;          /* malloc()ed (non-NULL) */
	size_t data_len;
};

#define BS_UEFI_VAR_VERSION 1u

struct bs_uefi_store {
	uint32_t version;            /* BS_UEFI_STORE_VERSION (the library sets it) */
	struct bs_uefi_var *vars; /* in store order */
	size_t nvars;
	size_t file_size;   /* octets of the varstore file */
	size_t vars_offset; /* first variable header */
	size_t store_end;   /* end of the variable store */
};
#define BS_UEFI_STORE_VERSION 1u

/* Parses a varstore file FD/LEN: firmware volume header (signature, length,
 * header checksum), authenticated variable store header, then the variables;
 * only those in state VAR_ADDED (or in deleted transition without a newer
 * copy) are kept.  *OUT is freed with bs_uefi_store_free().
 * Errors: BS_ECORRUPT (message with the offset), BS_EUNSUPPORTED (another
 * store format), BS_ENOMEM. */
int bs_uefi_parse(const uint8_t *fd, size_t len, struct bs_uefi_store **out);
void bs_uefi_store_free(struct bs_uefi_store *st);

/* Builds a varstore file from VARS[0..N) over TEMPLATE/TLEN (a varstore
 * file: everything but the variable area is copied byte for byte; the
 * variable area is written afresh, the rest of it erased to 0xFF; the
 * firmware volume header checksum is recomputed).  *OUT (TLEN octets) is
 * malloc()ed.  Errors: BS_ENOSPC (variables do not fit), those of parse. */
int bs_uefi_build(const struct bs_uefi_var *vars, size_t n, const uint8_t *tmpl,
		     size_t tlen, uint8_t **out, size_t *out_len);

/* Replaces the image's UEFI variables and store layout with those of the
 * varstore file FD/LEN.  Each variable is replaced crash-safely as a whole
 * (data and attributes), variables in both stores are never absent, and
 * the ones the new store lacks are deleted last; an interrupted import
 * leaves old and new variables side by side (import again).  *COUNT (may be NULL) gets the
 * number of variables.  Errors: those of parse and of bs_entry_create(). */
int bs_uefi_import(bs_image *img, const uint8_t *fd, size_t len, size_t *count);

/* Reads the image's variables in directory order into *OUT (file_size and
 * offsets 0 when the image holds no uefi.varstore entry).
 * Errors: BS_EUNSUPPORTED / BS_ECORRUPT for a refused or malformed uefi.var
 * entry (named), BS_EIO, BS_ENOMEM. */
int bs_uefi_load(bs_image *img, struct bs_uefi_store **out);

/* Exports the image's variables as a varstore file over TEMPLATE (or, when
 * TMPL is NULL, over the layout saved by the import).  Errors: BS_ENOENT
 * (no template and no saved layout), those of load and build. */
int bs_uefi_export(bs_image *img, const uint8_t *tmpl, size_t tlen, uint8_t **out,
		      size_t *out_len);

/* Creates or replaces variable KEY ("<GUID>:<Name>") with ATTRIBUTES and
 * DATA/LEN, through bs_uefi_write() (so checked first: bs_uefi_var_check()
 * and the store's space).  A new variable gets a zero timestamp, monotonic
 * count and public-key index; an existing one keeps them (and its other
 * attributes).  Errors: BS_EINVAL (bad key, refused by the check), those of
 * bs_uefi_write(). */
int bs_uefi_set(bs_image *img, const char *key, uint32_t attributes, const void *data,
		   size_t len);

/* Deletes variable KEY.  Errors: BS_ENOENT, BS_EINVAL, BS_ERDONLY, BS_EIO. */
int bs_uefi_remove(bs_image *img, const char *key);

/* GUID text <-> octets; bs_uefi_guid_str writes 37 octets (with NUL). */
void bs_uefi_guid_str(const uint8_t guid[16], char out[37]);
int bs_uefi_guid_parse(const char *s, uint8_t guid[16]);
/* Splits KEY into GUID and *NAME (borrowed from KEY).  Errors: BS_EINVAL. */
int bs_uefi_key_parse(const char *key, uint8_t guid[16], const char **name);

/* ---- names (nvram/uefi_names.c) --------------------------------------------
 * Variables are named "GUID:NAME" in the image.  People name them by NAME
 * alone: the well-known variables of the UEFI specification and of edk2
 * (the EFI global variables Boot####, BootOrder, Timeout, PK, KEK, ...;
 * db, dbx, dbt, dbr of the image security database; SecureBootEnable,
 * CustomMode; shim's MokList...), or any name that only one GUID holds in
 * the image. */

/* The GUID of a well-known name ("EfiGlobalVariable",
 * "EfiImageSecurityDatabase", "MicrosoftVendor", "EfiCertX509", ... as
 * virt-firmware names them, case-insensitive) in GUID.
 * Errors: BS_ENOENT (not a known name), BS_EINVAL. */
int bs_uefi_guid_lookup(const char *name, uint8_t guid[16]);
/* The well-known name of GUID, or NULL. */
const char *bs_uefi_guid_name(const uint8_t guid[16]);
/* GUID in text (8-4-4-4-12, either case, optionally in braces) or a name
 * bs_uefi_guid_lookup() knows.  Errors: BS_EINVAL with a message. */
int bs_uefi_guid_from_text(const char *s, uint8_t guid[16]);

/* What the specifications say of a well-known variable. */
struct bs_uefi_known {
	uint8_t guid[16];
	uint32_t attributes; /* the attributes it must have */
	int volatile_only;   /* set by the firmware at every boot (no NV): never stored */
	int sigdb;           /* an EFI_SIGNATURE_LIST database (PK, KEK, db, dbx, ...) */
};
/* Looks NAME up ("Boot0001" matches Boot####, with four upper-case hex
 * digits) under GUID (NULL: any GUID the table has for NAME) into *OUT
 * (may be NULL).  Errors: BS_ENOENT (not well-known), BS_EINVAL. */
int bs_uefi_known_var(const char *name, const uint8_t *guid, struct bs_uefi_known *out);

/* Resolves SPEC, "GUID:NAME" (GUID as bs_uefi_guid_from_text() takes it)
 * or a NAME alone, to the canonical key "<guid>:<NAME>" in a malloc()ed
 * *KEY.  A NAME alone is the well-known variable of that name, or the one
 * variable of IMG that has the name.  Errors: BS_EINVAL (bad SPEC; or
 * ambiguous: the message lists the candidates, "GUID:NAME" each),
 * BS_ENOENT (no variable has the name and it is not well-known), those of
 * bs_uefi_load(). */
int bs_uefi_resolve(bs_image *img, const char *spec, char **key);

/* Attributes from text: names separated by ',' or '|' (NV BS RT HR AW AT
 * AP EA, or the specification's long names NON_VOLATILE,
 * BOOTSERVICE_ACCESS, ..., either case), or a number (decimal, 0x hex).
 * Errors: BS_EINVAL naming the unknown word. */
int bs_uefi_attr_parse(const char *s, uint32_t *out);
/* "NV,BS,RT,AT" into BUF/CAP (bits without a name as 0x...; "" for 0);
 * returns BUF. */
char *bs_uefi_attr_format(uint32_t attrs, char *buf, size_t cap);

/* A NUL-terminated UTF-16LE string (P/LEN, LEN counting the NUL) to
 * malloc()ed UTF-8.  Errors: BS_ECORRUPT (odd length, no final NUL, an
 * inner NUL, an unpaired surrogate), BS_ENOMEM. */
int bs_uefi_utf16_decode(const uint8_t *p, size_t len, char **out);
/* UTF-8 S (non-empty) to UTF-16LE with its NUL in a malloc()ed *OUT.
 * Errors: BS_EINVAL (invalid UTF-8 or empty), BS_ENOMEM. */
int bs_uefi_utf16_encode(const char *s, uint8_t **out, size_t *out_len);

/* ---- structures in variable data (nvram/uefi_decode.c) ----------------------
 * Every parser checks every length against its parent and names the octet
 * offset (in the variable's data) of what it refuses. */

/* Signature types (EFI_CERT_*_GUID) of EFI_SIGNATURE_LIST. */
enum bs_uefi_sigtype {
	BS_UEFI_SIG_UNKNOWN = 0,
	BS_UEFI_SIG_SHA256,
	BS_UEFI_SIG_RSA2048,
	BS_UEFI_SIG_RSA2048_SHA256,
	BS_UEFI_SIG_SHA1,
	BS_UEFI_SIG_RSA2048_SHA1,
	BS_UEFI_SIG_X509,
	BS_UEFI_SIG_SHA224,
	BS_UEFI_SIG_SHA384,
	BS_UEFI_SIG_SHA512,
	BS_UEFI_SIG_X509_SHA256,
	BS_UEFI_SIG_X509_SHA384,
	BS_UEFI_SIG_X509_SHA512,
};
/* "x509", "sha256", ... (NULL for BS_UEFI_SIG_UNKNOWN). */
const char *bs_uefi_sigtype_name(enum bs_uefi_sigtype t);
/* The type's GUID, or BS_EINVAL. */
int bs_uefi_sigtype_guid(enum bs_uefi_sigtype t, uint8_t guid[16]);

/* One signature (EFI_SIGNATURE_DATA) of a signature database. */
struct bs_uefi_sig {
	enum bs_uefi_sigtype type;
	uint8_t type_guid[16];
	uint8_t owner[16];   /* SignatureOwner */
	size_t list;         /* index of its EFI_SIGNATURE_LIST */
	size_t offset;       /* of SignatureData in the database */
	const uint8_t *data; /* SignatureData, borrowed from the database */
	size_t len;
	char *subject;       /* X.509: RFC 2253 text of the subject (malloc()ed), else NULL */
	char *issuer;        /* X.509: the issuer, likewise */
	uint8_t not_before[16]; /* X.509: notBefore as EFI_TIME (UTC), else zero */
};
/* Parses the signature database P/LEN (EFI_SIGNATURE_LISTs back to back)
 * the way edk2 checks one before it stores PK, KEK, db or dbx: every list
 * of a known type, SignatureHeaderSize 0, the type's SignatureSize, a
 * whole number of signatures, the lists filling LEN exactly; X.509 data
 * one DER certificate (libcrypto) with an RSA key.  With BS_UEFI_SIGDB_PK
 * in FLAGS, at most one signature.  *SIGS (N of them; NULL when N is 0)
 * is freed with bs_uefi_sigs_free() and borrows from P.
 * Errors: BS_ECORRUPT (message with the offset and the list), BS_ENOMEM. */
#define BS_UEFI_SIGDB_PK 0x01u
int bs_uefi_sigdb_parse(const uint8_t *p, size_t len, unsigned flags,
			struct bs_uefi_sig **sigs, size_t *n);
void bs_uefi_sigs_free(struct bs_uefi_sig *sigs, size_t n);

/* An X.509 certificate in PEM or DER (P/LEN) as DER in a malloc()ed
 * *DER, checked as bs_uefi_sigdb_parse() checks one (an RSA key).
 * Errors: BS_ECORRUPT, BS_ELIMIT, BS_ENOMEM. */
int bs_uefi_cert_load(const uint8_t *p, size_t len, uint8_t **der, size_t *der_len);
/* Adds one signature of TYPE, OWNER and DATA/N to the signature database
 * DB[0]/LEN[0] (malloc()ed; NULL/0 for an empty one), replaced by a larger
 * malloc()ed one: a certificate as a list of its own at the end, a hash at
 * the end of the first list of its type (a new list when there is none),
 * as virt-fw-vars and efitools do.  A signature of that type and data
 * already present is not added again: *ADDED (may be NULL) gets 0, else 1.
 * Errors: BS_EINVAL (a size the type does not have), those of
 * bs_uefi_sigdb_parse() on *DB, BS_ENOMEM. */
int bs_uefi_sigdb_add(uint8_t **db, size_t *len, enum bs_uefi_sigtype type,
		      const uint8_t owner[16], const uint8_t *data, size_t n, int *added);

/* The UEFI text form of the device path P/LEN (nodes joined by '/', the
 * instances of a multi-instance path by ','), as edk2 prints it:
 * "PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)".  Nodes without a
 * text form of their own print as "Path(TYPE,SUBTYPE,HEX)" and the like.
 * *OUT is malloc()ed.  Errors: BS_ECORRUPT (a node shorter than 4 or
 * running past the path, no end node, data after it), BS_ENOMEM. */
int bs_uefi_devpath_text(const uint8_t *p, size_t len, char **out);

/* An EFI_LOAD_OPTION (Boot####, Driver####, SysPrep####). */
struct bs_uefi_load_option {
	uint32_t attributes;       /* LOAD_OPTION_ACTIVE 0x1, ..._HIDDEN 0x8, ... */
	char *description;         /* UTF-8, malloc()ed */
	char *device_path;         /* text of FilePathList (paths after the first: " ; ") */
	const uint8_t *optional;   /* OptionalData, borrowed; NULL when none */
	size_t optional_len;
};
/* Errors: BS_ECORRUPT (with the offset), BS_ENOMEM.  Free with
 * bs_uefi_load_option_free(). */
int bs_uefi_load_option_parse(const uint8_t *p, size_t len, struct bs_uefi_load_option *out);
void bs_uefi_load_option_free(struct bs_uefi_load_option *lo);

/* The EFI_VARIABLE_AUTHENTICATION_2 header that SetVariable() wants before
 * the data of a time-based authenticated variable (what efitools'
 * sign-efi-sig-list writes).  When P/LEN starts with one, checks it (an
 * EFI_TIME with zero Pad1, Nanosecond, TimeZone, Daylight and Pad2;
 * WIN_CERTIFICATE dwLength within P, wRevision 0x0200, wCertificateType
 * WIN_CERT_TYPE_EFI_GUID, CertType EFI_CERT_TYPE_PKCS7_GUID) and gives its
 * TimeStamp and the offset of the data after it.  The signature itself is
 * not verified.  Errors: BS_ENOENT (P does not start with such a header),
 * BS_ECORRUPT (it does, malformed: the offset). */
int bs_uefi_auth_parse(const uint8_t *p, size_t len, uint8_t timestamp[16], size_t *data_off);

/* EFI_TIME octets as RFC 3339 text in BUF: "2025-03-10T02:53:39Z"
 * (nanoseconds as a fraction; a TimeZone other than 0 or 0x7FF as an
 * offset).  "" for an all-zero time; returns BUF. */
char *bs_uefi_time_format(const uint8_t t[16], char buf[40]);

/* What a variable's data means, for list and get. */
enum bs_uefi_kind {
	BS_UEFI_DATA_BLOB = 0,     /* nothing known (or malformed: see error) */
	BS_UEFI_DATA_LOAD_OPTION,  /* load_option */
	BS_UEFI_DATA_ORDER,        /* order[0..norder): BootOrder, BootNext, ... */
	BS_UEFI_DATA_SIGDB,        /* sigs[0..nsigs) */
	BS_UEFI_DATA_DEVPATH,      /* text: ConIn, ConOut, ErrOut, ... */
	BS_UEFI_DATA_STRING,       /* text: Lang, PlatformLang, ... or ASCII text */
	BS_UEFI_DATA_INTEGER,      /* integer, int_size octets little-endian */
};
struct bs_uefi_decoded {
	uint32_t version;          /* BS_UEFI_DECODED_VERSION (the library sets it) */
	enum bs_uefi_kind kind;
	struct bs_uefi_load_option load_option;
	uint16_t *order;
	size_t norder;
	struct bs_uefi_sig *sigs;
	size_t nsigs;
	char *text;
	uint64_t integer;
	size_t int_size;
	char *error;               /* why a known structure did not decode (kind BLOB), else NULL */
};
#define BS_UEFI_DECODED_VERSION 1u
/* Decodes V's data by its name and GUID (Boot#### load options, boot
 * orders, signature databases by name whatever the GUID, device paths,
 * language strings; other data of 1, 2, 4 or 8 octets as an integer and
 * NUL-terminated printable ASCII as a string).  Data that should decode
 * and does not gives kind BLOB with ERROR set: never an error return.
 * *OUT (may borrow from V's data) is freed with bs_uefi_decoded_free().
 * Errors: BS_ENOMEM, BS_EINVAL. */
int bs_uefi_decode(const struct bs_uefi_var *v, struct bs_uefi_decoded **out);
void bs_uefi_decoded_free(struct bs_uefi_decoded *d);

/* ---- checks and writes (nvram/uefi.c) --------------------------------------- */

/* Space of an edk2 store the way its variable driver counts it (before
 * ExitBootServices): CAPACITY = the store's Size - 28; each variable takes
 * 60 + NameSize + DataSize rounded up to 4; one variable may take at most
 * MAX_VAR octets unauthenticated, MAX_AUTH_VAR with AT or AW (OVMF's PCDs:
 * 0x8400 for its 4 MB build, whose store file is 540672 octets; 0x2000 and
 * 0x2800 for the others). */
struct bs_uefi_space {
	size_t capacity, used, max_var, max_auth_var;
};
/* The space VARS[0..N) take in the layout IMG saved at import (or in the
 * varstore file TMPL/TLEN when TMPL is not NULL).  Errors: BS_ENOENT (no
 * layout saved and no template), BS_ECORRUPT, BS_EINVAL. */
int bs_uefi_space(bs_image *img, const uint8_t *tmpl, size_t tlen,
		  const struct bs_uefi_var *vars, size_t n, struct bs_uefi_space *out);

/* Checks that V may be kept in a non-volatile store: a valid name; NV and
 * BS among the attributes, nothing but NV BS RT HR AT (AW, AP, EA and
 * unknown bits refused); a well-known variable with exactly its
 * attributes and never a volatile one (SecureBoot, SetupMode, ...); the
 * signature database of PK, KEK, db, dbx, dbt, dbr as bs_uefi_sigdb_parse()
 * checks it (non-empty).  Errors: BS_EINVAL with a message naming the
 * variable (and the octet offset in its data). */
int bs_uefi_var_check(const struct bs_uefi_var *v);

/* Creates or replaces VARS[0..N) (each whole: data, attributes, timestamp,
 * monotonic count, public-key index; other attributes of an existing
 * entry kept).  First every variable is checked (bs_uefi_var_check()) and
 * the store that would result is measured against the saved layout's
 * space (bs_uefi_space(); skipped when IMG has no layout): then nothing is
 * written unless all pass.  Written in order but PK last, so that an
 * interrupted write never has a new PK with old KEK or db; each variable
 * is replaced crash-safely.  Errors: BS_EINVAL (check; two VARS with one
 * key), BS_ENOSPC (the store's space or MAX_VAR, with the figures), those
 * of the device API. */
int bs_uefi_write(bs_image *img, const struct bs_uefi_var *vars, size_t n);

/* ---- virt-firmware's JSON (nvram/uefi_json.c) ------------------------------------
 * {"version": 2, "variables": [{"name": "...", "guid": "...", "attr": 7,
 *   "data": "hex", "time": "32 hex digits"}, ...]}: what virt-fw-vars
 * --output-json writes and --set-json reads.  MonotonicCount and
 * PubKeyIndex are not in the format. */

/* Parses TEXT/LEN (strict RFC 8259 JSON, UTF-8, at most BS_UEFI_JSON_MAX
 * octets) into *OUT (file_size and offsets 0).  "version",
 * when given, must be 2; a variable needs name, guid (text or a
 * bs_uefi_guid_lookup() name) and data (hex); attr defaults to the
 * well-known variable's attributes (else NV,BS); time is optional;
 * unknown keys, two variables with one GUID and name, and anything
 * malformed are refused.  Errors: BS_ECORRUPT (line, column and octet
 * offset; the variable's index and name), BS_EUNSUPPORTED (another
 * version), BS_ELIMIT, BS_ENOMEM. */
#define BS_UEFI_JSON_MAX (64u << 20)
int bs_uefi_json_parse(const char *text, size_t len, struct bs_uefi_store **out);
/* Formats VARS[0..N) as virt-fw-vars does (indented by 4, ASCII with
 * \u escapes, "time" for a non-zero timestamp), in a malloc()ed *OUT of
 * *LEN octets.  Errors: BS_ENOMEM, BS_EINVAL (a name that is not UTF-8). */
int bs_uefi_json_format(const struct bs_uefi_var *vars, size_t n, char **out, size_t *len);

/* Replaces the image's UEFI variables with those of the JSON TEXT/LEN, as
 * bs_uefi_import() does for a varstore file (in both: replaced; new:
 * created; absent from the JSON: deleted last).  The variables are checked
 * first (bs_uefi_var_check()) and measured against the space of TMPL/TLEN
 * (a varstore file whose layout is saved instead of the image's; may be
 * NULL) or of the saved layout.  *COUNT (may be NULL) gets the number.
 * Errors: those of bs_uefi_json_parse() and bs_uefi_write(). */
int bs_uefi_import_json(bs_image *img, const char *text, size_t len, const uint8_t *tmpl,
			size_t tlen, size_t *count);

#ifdef __cplusplus
}
#endif
#endif
