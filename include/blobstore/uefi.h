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
 * Conventions: blobstore/blobstore.h.  Parsers check every length against
 * the file. */
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

/* UEFI variable attributes (UEFI 2.x, 8.2). */
#define BS_UEFI_NON_VOLATILE 0x01u
#define BS_UEFI_BOOTSERVICE_ACCESS 0x02u
#define BS_UEFI_RUNTIME_ACCESS 0x04u
#define BS_UEFI_TIME_BASED_AUTH 0x20u

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
 * DATA/LEN.  A new variable gets a zero timestamp, monotonic count and
 * public-key index; an existing one keeps them (and its other attributes),
 * and its uefi.attributes changes only when ATTRIBUTES differs.
 * Errors: BS_EINVAL (bad key), those of the device API. */
int bs_uefi_set(bs_image *img, const char *key, uint32_t attributes, const void *data,
		   size_t len);

/* Deletes variable KEY.  Errors: BS_ENOENT, BS_EINVAL, BS_ERDONLY, BS_EIO. */
int bs_uefi_remove(bs_image *img, const char *key);

/* GUID text <-> octets; bs_uefi_guid_str writes 37 octets (with NUL). */
void bs_uefi_guid_str(const uint8_t guid[16], char out[37]);
int bs_uefi_guid_parse(const char *s, uint8_t guid[16]);
/* Splits KEY into GUID and *NAME (borrowed from KEY).  Errors: BS_EINVAL. */
int bs_uefi_key_parse(const char *key, uint8_t guid[16], const char **name);

#ifdef __cplusplus
}
#endif
#endif
