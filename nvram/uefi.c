/* uefi.c - the UEFI variable store: edk2 varstore files <-> image entries.
 *
 * File layout (edk2 MdePkg/MdeModulePkg definitions, as OVMF_VARS_4M.fd has
 * them):
 *   EFI_FIRMWARE_VOLUME_HEADER  ZeroVector[16] FileSystemGuid[16]
 *     FvLength u64 @0x20, Signature "_FVH" @0x28, Attributes u32,
 *     HeaderLength u16 @0x30, Checksum u16 @0x32 (the 16-bit words of the
 *     header sum to 0), ExtHeaderOffset u16, Reserved u8, Revision u8,
 *     block map (NumBlocks u32, Length u32)... ending with (0, 0)
 *   VARIABLE_STORE_HEADER at HeaderLength: Signature GUID[16] (authenticated
 *     format: gEfiAuthenticatedVariableGuid), Size u32, Format u8 (0x5A),
 *     State u8 (0xFE), Reserved u16, Reserved1 u32 -- 28 octets
 *   variables from the next 4-aligned offset, each
 *     StartId u16 0x55AA, State u8, Reserved u8, Attributes u32,
 *     MonotonicCount u64, TimeStamp EFI_TIME[16], PubKeyIndex u32,
 *     NameSize u32 @36, DataSize u32 @40, VendorGuid[16] @44 -- 60 octets,
 *     then the name (UTF-16LE with its NUL), the data, and padding to 4;
 *     erased flash (0xFF) ends the list
 *   after the store (store header offset + Size): the fault-tolerant-write
 *     working block and spare area, copied byte for byte.
 * All numbers little-endian.  Every length is checked before use. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/nvram.h>
#include <blobstore/sys/util.h>
#include <blobstore/uefi.h>

#define FV_HDR_MIN 0x38u
#define STORE_HDR_LEN 28u
#define VAR_HDR_LEN 60u
#define VAR_START_ID 0x55aau
#define VAR_ADDED 0x3fu
#define VAR_ADDED_IN_DELETE 0x3eu /* VAR_ADDED & VAR_IN_DELETED_TRANSITION */
#define STORE_FORMATTED 0x5au
#define STORE_HEALTHY 0xfeu

static const uint8_t auth_var_guid[16] = {0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
					  0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92};
static const uint8_t plain_var_guid[16] = {0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41,
					   0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d};

static size_t align4(size_t v) { return (v + 3) & ~(size_t)3; }

static int corrupt(size_t off, const char *what)
{
	return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0, "varstore at octet %zu: %s", off, what);
}

/* ---- parsing ------------------------------------------------------------------ */

struct layout {
	size_t fv_hdr_len, store_off, vars_off, store_end;
};

/* Checks the firmware volume and store headers of FD/LEN. */
static int parse_layout(const uint8_t *fd, size_t len, struct layout *lay)
{
	if (!fd || len < FV_HDR_MIN + 8)
		return corrupt(0, "shorter than a firmware volume header");
	if (memcmp(fd + 0x28, "_FVH", 4))
		return corrupt(0x28, "no firmware volume signature _FVH");
	uint64_t fv_len = bs_get_le64(fd + 0x20);
	if (fv_len > len || fv_len < FV_HDR_MIN)
		return corrupt(0x20, "firmware volume length does not match the file");
	size_t hl = bs_get_le16(fd + 0x30);
	if (hl < FV_HDR_MIN + 8 || hl % 2 || hl > fv_len)
		return corrupt(0x30, "bad firmware volume header length");
	uint16_t sum = 0;
	for (size_t i = 0; i < hl; i += 2)
		sum = (uint16_t)(sum + bs_get_le16(fd + i));
	if (sum)
		return corrupt(0x32, "firmware volume header checksum does not sum to zero");
	/* Block map entries (8 octets each) must end with (0,0) inside the header. */
	size_t bm = FV_HDR_MIN;
	while (bm + 8 <= hl && (bs_get_le32(fd + bm) || bs_get_le32(fd + bm + 4)))
		bm += 8;
	if (bm + 8 > hl)
		return corrupt(bm, "firmware volume block map is not terminated");
	size_t so = hl;
	if ((size_t)fv_len - so < STORE_HDR_LEN)
		return corrupt(so, "no room for the variable store header");
	if (!memcmp(fd + so, plain_var_guid, 16))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EUNSUPPORTED, 0,
			       "varstore at octet %zu: non-authenticated variable store format "
			       "(only gEfiAuthenticatedVariableGuid stores are supported)", so);
	if (memcmp(fd + so, auth_var_guid, 16))
		return corrupt(so, "variable store signature is not gEfiAuthenticatedVariableGuid");
	size_t size = bs_get_le32(fd + so + 16);
	if (size < STORE_HDR_LEN || size > (size_t)fv_len - so)
		return corrupt(so + 16, "variable store size runs past the firmware volume");
	if (fd[so + 20] != STORE_FORMATTED || fd[so + 21] != STORE_HEALTHY)
		return corrupt(so + 20, "variable store is not formatted and healthy");
	lay->fv_hdr_len = hl;
	lay->store_off = so;
	lay->store_end = so + size;
	lay->vars_off = align4(so + STORE_HDR_LEN);
	if (lay->vars_off > lay->store_end)
		return corrupt(so, "variable store too small");
	return BS_OK;
}

static bool same_var(const struct bs_uefi_var *a, const struct bs_uefi_var *b)
{
	return !memcmp(a->guid, b->guid, 16) && !strcmp(a->name, b->name);
}

int bs_uefi_parse(const uint8_t *fd, size_t len, struct bs_uefi_store **out)
{
	struct layout lay;
	*out = NULL;
	int rc = parse_layout(fd, len, &lay);
	if (rc)
		return rc;
	struct bs_uefi_store *st = calloc(1, sizeof *st);
	if (!st)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	st->file_size = len;
	st->vars_offset = lay.vars_off;
	st->store_end = lay.store_end;
	size_t cap = 0;
	bool *transition = NULL;
	size_t pos = lay.vars_off;
	while (lay.store_end - pos >= VAR_HDR_LEN && bs_get_le16(fd + pos) == VAR_START_ID) {
		const uint8_t *h = fd + pos;
		uint8_t state = h[2];
		size_t ns = bs_get_le32(h + 36), ds = bs_get_le32(h + 40);
		size_t room = lay.store_end - pos - VAR_HDR_LEN;
		if (ns > room || ds > room - ns) {
			rc = corrupt(pos, "variable name or data runs past the store");
			goto fail;
		}
		size_t next = align4(pos + VAR_HDR_LEN + ns + ds);
		if (state == VAR_ADDED || state == VAR_ADDED_IN_DELETE) {
			struct bs_uefi_var v = {0};
			if (bs_uefi_utf16_decode(h + VAR_HDR_LEN, ns, &v.name)) {
				rc = corrupt(pos + VAR_HDR_LEN,
					     "variable name is not NUL-terminated UTF-16 without inner NULs");
				goto fail;
			}
			memcpy(v.guid, h + 44, 16);
			v.attributes = bs_get_le32(h + 4);
			v.monotonic_count = bs_get_le64(h + 8);
			memcpy(v.timestamp, h + 16, 16);
			v.pubkey_index = bs_get_le32(h + 32);
			v.data_len = ds;
			v.data = malloc(ds ? ds : 1);
			if (!v.data || st->nvars == SIZE_MAX / sizeof *st->vars - 1) {
				free(v.name);
				free(v.data);
				rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
				goto fail;
			}
			if (ds)
				memcpy(v.data, h + VAR_HDR_LEN + ns, ds);
			if (st->nvars == cap) {
				size_t nc = cap ? cap * 2 : 32;
				struct bs_uefi_var *nv = realloc(st->vars, nc * sizeof *nv);
				bool *nt = realloc(transition, nc * sizeof *nt);
				if (nt)
					transition = nt;
				if (nv)
					st->vars = nv;
				if (!nv || !nt) {
					free(v.name);
					free(v.data);
					rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
					goto fail;
				}
				cap = nc;
			}
			transition[st->nvars] = state == VAR_ADDED_IN_DELETE;
			st->vars[st->nvars++] = v;
		}
		if (next >= lay.store_end)
			break;
		pos = next;
	}
	/* A copy in deleted transition counts only without a VAR_ADDED one (the
	 * firmware stopped between adding the new copy and deleting the old).
	 * Two live copies of one variable are an error: which one is meant? */
	/* Decide first, then compact: the comparisons need every copy intact. */
	bool *dropped = calloc(st->nvars + 1, sizeof *dropped);
	if (!dropped) {
		rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < st->nvars; i++) {
		bool drop = false;
		for (size_t j = 0; j < st->nvars && !drop; j++) {
			if (j == i || !same_var(&st->vars[i], &st->vars[j]))
				continue;
			if (transition[i] && !transition[j])
				drop = true;
			else if (transition[i] == transition[j]) {
				free(dropped);
				rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
					     "varstore: variable '%s' is stored twice", st->vars[i].name);
				goto fail;
			}
		}
		dropped[i] = drop;
	}
	size_t k = 0;
	for (size_t i = 0; i < st->nvars; i++) {
		if (dropped[i]) {
			free(st->vars[i].name);
			free(st->vars[i].data);
			continue;
		}
		st->vars[k++] = st->vars[i];
	}
	st->nvars = k;
	free(dropped);
	free(transition);
	*out = st;
	return BS_OK;
fail:
	free(transition);
	bs_uefi_store_free(st);
	return rc;
}

/* ---- building ------------------------------------------------------------------ */

static void fv_checksum(uint8_t *fd, size_t hl)
{
	bs_put_le16(fd + 0x32, 0);
	uint16_t sum = 0;
	for (size_t i = 0; i < hl; i += 2)
		sum = (uint16_t)(sum + bs_get_le16(fd + i));
	bs_put_le16(fd + 0x32, (uint16_t)(0x10000u - sum));
}

int bs_uefi_build(const struct bs_uefi_var *vars, size_t n, const uint8_t *tmpl,
		     size_t tlen, uint8_t **out, size_t *out_len)
{
	struct layout lay;
	*out = NULL;
	int rc = parse_layout(tmpl, tlen, &lay);
	if (rc)
		return rc;
	uint8_t *b = malloc(tlen);
	if (!b)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	memcpy(b, tmpl, tlen);
	memset(b + lay.vars_off, 0xff, lay.store_end - lay.vars_off);
	size_t pos = lay.vars_off;
	for (size_t i = 0; i < n; i++) {
		const struct bs_uefi_var *v = &vars[i];
		uint8_t *name;
		size_t nl;
		rc = bs_uefi_utf16_encode(v->name, &name, &nl);
		if (rc) {
			free(b);
			return rc;
		}
		if (v->data_len > UINT32_MAX || nl > UINT32_MAX ||
		    lay.store_end - pos < VAR_HDR_LEN ||
		    lay.store_end - pos - VAR_HDR_LEN < nl ||
		    lay.store_end - pos - VAR_HDR_LEN - nl < v->data_len) {
			free(name);
			free(b);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOSPC, 0,
				       "variables do not fit the variable store of %zu octets "
				       "(at variable %zu, '%s')", lay.store_end - lay.store_off, i,
				       v->name);
		}
		uint8_t *h = b + pos;
		memset(h, 0, VAR_HDR_LEN);
		bs_put_le16(h, VAR_START_ID);
		h[2] = VAR_ADDED;
		bs_put_le32(h + 4, v->attributes);
		bs_put_le64(h + 8, v->monotonic_count);
		memcpy(h + 16, v->timestamp, 16);
		bs_put_le32(h + 32, v->pubkey_index);
		bs_put_le32(h + 36, (uint32_t)nl);
		bs_put_le32(h + 40, (uint32_t)v->data_len);
		memcpy(h + 44, v->guid, 16);
		memcpy(h + VAR_HDR_LEN, name, nl);
		if (v->data_len)
			memcpy(h + VAR_HDR_LEN + nl, v->data, v->data_len);
		free(name);
		pos = align4(pos + VAR_HDR_LEN + nl + v->data_len);
		if (pos > lay.store_end)
			pos = lay.store_end;
	}
	b[lay.store_off + 20] = STORE_FORMATTED;
	b[lay.store_off + 21] = STORE_HEALTHY;
	fv_checksum(b, lay.fv_hdr_len);
	*out = b;
	*out_len = tlen;
	return BS_OK;
}

/* ---- the image side --------------------------------------------------------------- */

/* The read-only DER of an unsigned integer, or of 16 octets (B non-NULL),
 * in a malloc()ed *DER. */
static int der_of(uint64_t u, const uint8_t *b, uint8_t **der, size_t *dl)
{
	size_t cap = 32;
	uint8_t *d = malloc(cap);
	int rc = !d ? BS_ENOMEM
		: b ? bs_value_encode_bytes(b, 16, 0, d, cap, dl)
		    : bs_value_encode_uint(u, 0, d, cap, dl);
	if (rc) {
		free(d);
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, rc, 0, "cannot encode a value");
	}
	*der = d;
	return BS_OK;
}

static char *var_key(const struct bs_uefi_var *v)
{
	char g[37];
	bs_uefi_guid_str(v->guid, g);
	size_t n = strlen(v->name) + 38;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s:%s", g, v->name);
	return k;
}

/* Creates one uefi.var entry with all its attributes in one append. */
/* Creates the entry TYPE/KEY, or brings an existing one to DATA and ATTRS
 * crash-safely (old or new as a whole; the entry exists throughout): data
 * alone replaced in place when the attributes are the same, else one
 * rewrite of both. */
static int put_entry(bs_image *img, const char *type, const char *key, const struct bs_attr *attrs,
		     size_t nattrs, const void *data, size_t len)
{
	bs_entry *e;
	int rc = bs_entry_find(img, type, key, &e);
	if (rc == BS_ENOENT) {
		struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = len, .attrs = attrs, .nattrs = nattrs};
		return bs_entry_create(img, type, key, &o, data, len, NULL);
	}
	if (rc)
		return rc;
	for (size_t i = 0; i < nattrs; i++) {
		const uint8_t *v;
		size_t vl;
		unsigned fl;
		if (bs_attr_get(e, attrs[i].name, &v, &vl, &fl) != BS_OK || fl ||
		    vl != attrs[i].value_len || memcmp(v, attrs[i].value, vl))
			/* Attributes change: data and attributes in one rewrite, so a
			 * crash never pairs new attributes with old data. */
			return bs_entry_update(e, &(struct bs_entry_update){.version = BS_ENTRY_UPDATE_VERSION, .attrs = attrs, .nattrs = nattrs, .data = data, .len = len});
	}
	return bs_entry_write(e, data, len);
}

static int create_var(bs_image *img, const struct bs_uefi_var *v)
{
	const uint64_t nums[4] = {v->attributes, 0, v->monotonic_count, v->pubkey_index};
	static const char *const names[4] = {"uefi.attributes", "uefi.timestamp",
					     "uefi.monotonic-count", "uefi.pubkey-index"};
	struct bs_attr attrs[4];
	uint8_t *der[4] = {0};
	int rc = BS_OK;
	char *key = var_key(v);
	if (!key)
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	for (int i = 0; i < 4 && !rc; i++) {
		size_t dl = 0;
		rc = der_of(nums[i], i == 1 ? v->timestamp : NULL, &der[i], &dl);
		attrs[i] = (struct bs_attr)BS_ATTR(names[i], 0, der[i], dl);
	}
	if (!rc)
		rc = put_entry(img, BS_UEFI_VAR_TYPE, key, attrs, 4, v->data, v->data_len);
	for (int i = 0; i < 4; i++)
		free(der[i]);
	free(key);
	return rc;
}

/* Deletes the variables that the imported store ST does not hold. */
static int delete_stale_vars(bs_image *img, const struct bs_uefi_store *st)
{
	for (bs_entry *e = NULL, *next = bs_entry_next(img, NULL, 0); (e = next);) {
		next = bs_entry_next(img, e, 0); /* before E may go */
		if (strcmp(bs_entry_type(e), BS_UEFI_VAR_TYPE))
			continue;
		const char *name = bs_entry_name(e);
		bool keep = false;
		for (size_t k = 0; name && !keep && k < st->nvars; k++) {
			char *key = var_key(&st->vars[k]);
			if (!key)
				return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
			keep = !strcmp(key, name);
			free(key);
		}
		int rc = keep ? BS_OK : bs_entry_delete(e);
		if (rc)
			return rc;
	}
	return BS_OK;
}

/* Saves the layout of the varstore file FD/LEN (checked: LAY) as the
 * uefi.varstore entry: the headers up to the first variable, then the
 * areas after the store up to their last non-erased octet. */
static int save_layout(bs_image *img, const uint8_t *fd, size_t len, const struct layout *lay)
{
	size_t tail_end = len;
	while (tail_end > lay->store_end && fd[tail_end - 1] == 0xff)
		tail_end--;
	size_t head = lay->vars_off, tail = tail_end - lay->store_end;
	uint8_t *blob = malloc(head + tail + 1);
	if (!blob)
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0,
				    "out of memory");
	memcpy(blob, fd, head);
	memcpy(blob + head, fd + lay->store_end, tail);
	const uint64_t nums[3] = {len, lay->vars_off, lay->store_end};
	static const char *const names[3] = {"uefi.file-size", "uefi.vars-offset",
					     "uefi.store-end"};
	struct bs_attr attrs[3];
	uint8_t *der[3] = {0};
	int rc = BS_OK;
	for (int i = 0; i < 3 && !rc; i++) {
		size_t dl = 0;
		rc = der_of(nums[i], NULL, &der[i], &dl);
		attrs[i] = (struct bs_attr)BS_ATTR(names[i], 0, der[i], dl);
	}
	if (!rc)
		rc = put_entry(img, BS_UEFI_STORE_TYPE, NULL, attrs, 3, blob, head + tail);
	for (int i = 0; i < 3; i++)
		free(der[i]);
	free(blob);
	return rc;
}

/* Brings the image's variables to those of ST.  Order for crashes:
 * variables present in both stores are replaced in place (never absent),
 * new ones added, and only then the ones ST lacks deleted.  Interrupted,
 * the image holds every variable of the old store or its new value, plus
 * some of the new ones. */
static int replace_vars(bs_image *img, const struct bs_uefi_store *st)
{
	int rc = BS_OK;
	for (size_t i = 0; !rc && i < st->nvars; i++)
		rc = create_var(img, &st->vars[i]);
	if (!rc)
		rc = delete_stale_vars(img, st);
	return rc;
}

int bs_uefi_import(bs_image *img, const uint8_t *fd, size_t len, size_t *count)
{
	struct bs_uefi_store *st;
	struct layout lay;
	if (!img || !fd)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	int rc = bs_uefi_parse(fd, len, &st);
	if (rc)
		return rc;
	parse_layout(fd, len, &lay); /* succeeded inside parse */
	rc = save_layout(img, fd, len, &lay);
	if (!rc)
		rc = replace_vars(img, st);
	if (!rc && count)
		*count = st->nvars;
	bs_uefi_store_free(st);
	return rc;
}

static int attr_uint(bs_entry *e, const char *name, uint64_t max, uint64_t *out)
{
	uint64_t u;
	int rc = bs_attr_get_uint(e, name, &u);
	if (rc == BS_ENOENT)
		return bs_error_set_entry(e, BS_NO_OFFSET, BS_ECORRUPT, "attribute '%s' missing", name);
	if (rc || u > max)
		return bs_error_set_entry(e, BS_NO_OFFSET, BS_ECORRUPT,
					  "attribute '%s' is not an integer in range", name);
	*out = u;
	return BS_OK;
}

static int load_var(bs_entry *e, struct bs_uefi_var *v)
{
	int rc = bs_entry_status(e);
	if (rc)
		return bs_error_set_entry(e, bs_entry_offset(e), rc, "entry refused: %s",
			       bs_entry_status_message(e));
	const char *name;
	const char *key = bs_entry_name(e);
	if (!key || bs_uefi_key_parse(key, v->guid, &name))
		return bs_error_set_entry(e, BS_NO_OFFSET, BS_ECORRUPT, "name is not GUID:NAME");
	uint64_t x;
	if ((rc = attr_uint(e, "uefi.attributes", UINT32_MAX, &x)))
		return rc;
	v->attributes = (uint32_t)x;
	if ((rc = attr_uint(e, "uefi.monotonic-count", UINT64_MAX, &v->monotonic_count)))
		return rc;
	if ((rc = attr_uint(e, "uefi.pubkey-index", UINT32_MAX, &x)))
		return rc;
	v->pubkey_index = (uint32_t)x;
	const uint8_t *ts;
	size_t tl;
	if (bs_attr_get_bytes(e, "uefi.timestamp", &ts, &tl) || tl != 16)
		return bs_error_set_entry(e, BS_NO_OFFSET, BS_ECORRUPT,
			       "attribute 'uefi.timestamp' is not 16 octets");
	memcpy(v->timestamp, ts, 16);
	if (!(v->name = strdup(name)))
		return bs_error_set_entry(e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	void *d;
	if ((rc = bs_entry_read_alloc(e, &d, &v->data_len)))
		return rc;
	v->data = d;
	return BS_OK;
}

int bs_uefi_load(bs_image *img, struct bs_uefi_store **out)
{
	*out = NULL;
	struct bs_uefi_store *st = calloc(1, sizeof *st);
	if (!st)
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	size_t n = 0;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, 0));)
		n += !strcmp(bs_entry_type(e), BS_UEFI_VAR_TYPE);
	st->vars = calloc(n + 1, sizeof *st->vars);
	if (!st->vars) {
		free(st);
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	}
	int rc = BS_OK;
	for (bs_entry *e = NULL; !rc && (e = bs_entry_next(img, e, 0));) {
		if (strcmp(bs_entry_type(e), BS_UEFI_VAR_TYPE))
			continue;
		rc = load_var(e, &st->vars[st->nvars]);
		st->nvars++; /* freed either way */
	}
	bs_entry *se;
	if (!rc && bs_entry_find(img, BS_UEFI_STORE_TYPE, NULL, &se) == BS_OK) {
		uint64_t fs, vo, end;
		if (!(rc = attr_uint(se, "uefi.file-size", SIZE_MAX, &fs)) &&
		    !(rc = attr_uint(se, "uefi.vars-offset", SIZE_MAX, &vo)) &&
		    !(rc = attr_uint(se, "uefi.store-end", SIZE_MAX, &end))) {
			st->file_size = (size_t)fs;
			st->vars_offset = (size_t)vo;
			st->store_end = (size_t)end;
		}
	}
	if (rc) {
		bs_uefi_store_free(st);
		return rc;
	}
	*out = st;
	return BS_OK;
}

/* Rebuilds the file layout saved at import (headers and post-store areas). */
static int saved_template(bs_image *img, const struct bs_uefi_store *st, uint8_t **out)
{
	bs_entry *se;
	*out = NULL;
	if (bs_entry_find(img, BS_UEFI_STORE_TYPE, NULL, &se))
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOENT, 0,
			       "no saved varstore layout (import a file first, or give a template)");
	void *blob;
	size_t bl;
	int rc = bs_entry_read_alloc(se, &blob, &bl);
	if (rc)
		return rc;
	size_t fs = st->file_size, vo = st->vars_offset, end = st->store_end;
	if (!fs || fs > BS_MAX_ENTRY_SIZE || vo > end || end > fs || bl < vo ||
	    bl - vo > fs - end) {
		free(blob);
		return bs_error_set_entry(se, BS_NO_OFFSET, BS_ECORRUPT, "saved varstore layout is inconsistent");
	}
	uint8_t *t = malloc(fs);
	if (!t) {
		free(blob);
		return bs_error_set_entry(se, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	memset(t, 0xff, fs);
	memcpy(t, blob, vo);
	memcpy(t + end, (uint8_t *)blob + vo, bl - vo);
	free(blob);
	*out = t;
	return BS_OK;
}

int bs_uefi_export(bs_image *img, const uint8_t *tmpl, size_t tlen, uint8_t **out,
		      size_t *out_len)
{
	struct bs_uefi_store *st;
	*out = NULL;
	int rc = bs_uefi_load(img, &st);
	if (rc)
		return rc;
	uint8_t *saved = NULL;
	if (!tmpl) {
		if ((rc = saved_template(img, st, &saved)))
			goto out;
		tmpl = saved;
		tlen = st->file_size;
	}
	rc = bs_uefi_build(st->vars, st->nvars, tmpl, tlen, out, out_len);
out:
	free(saved);
	bs_uefi_store_free(st);
	return rc;
}

/* ---- names and checks -------------------------------------------------------------- */

static int nomem(bs_image *img)
{
	return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0,
			    "out of memory");
}

/* "GUID:NAME" of a GUID and a name, malloc()ed. */
static char *key_of(const uint8_t guid[16], const char *name)
{
	struct bs_uefi_var v = {.name = (char *)name};
	memcpy(v.guid, guid, 16);
	return var_key(&v);
}

int bs_uefi_resolve(bs_image *img, const char *spec, char **key)
{
	if (!img || !spec || !key)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	const char *colon = strchr(spec, ':');
	uint8_t guid[16];
	if (colon && colon[1] && (size_t)(colon - spec) < 64) {
		char g[64];
		memcpy(g, spec, (size_t)(colon - spec));
		g[colon - spec] = 0;
		if (bs_uefi_guid_from_text(g, guid) == BS_OK) {
			char *k = key_of(guid, colon + 1);
			if (!k)
				return nomem(img);
			*key = k;
			return BS_OK;
		}
	}
	if (!spec[0] || !bs_utf8_valid(spec, strlen(spec)))
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "'%s' is not a variable name (NAME or GUID:NAME)", spec);
	/* The GUIDs under which the image holds SPEC. */
	size_t n = 0, cap = 0;
	uint8_t (*found)[16] = NULL;
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, 0));) {
		const char *nm, *ename = bs_entry_name(e);
		uint8_t g[16];
		if (strcmp(bs_entry_type(e), BS_UEFI_VAR_TYPE) || !ename ||
		    bs_uefi_key_parse(ename, g, &nm) || strcmp(nm, spec))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4;
			void *nf = realloc(found, nc * 16);
			if (!nf) {
				free(found);
				return nomem(img);
			}
			found = nf;
			cap = nc;
		}
		memcpy(found[n++], g, 16);
	}
	struct bs_uefi_known k;
	bool known = bs_uefi_known_var(spec, NULL, &k) == BS_OK;
	bool others = false;
	for (size_t i = 0; i < n; i++)
		others |= !known || memcmp(found[i], k.guid, 16);
	int rc = BS_OK;
	if (known && !others) {
		memcpy(guid, k.guid, 16);
	} else if (!known && n == 1) {
		memcpy(guid, found[0], 16);
	} else if (!known && n == 0) {
		rc = bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOENT, 0,
				  "no UEFI variable '%s' (it is not a well-known name either: give "
				  "GUID:%s)", spec, spec);
	} else {
		/* Ambiguous: every candidate, the well-known one first. */
		char list[1024];
		size_t l = 0;
		list[0] = 0;
		for (size_t i = 0; i <= n && l < sizeof list - 64; i++) {
			const uint8_t *g = i < n ? found[i] : known ? k.guid : NULL;
			bool dup = false;
			for (size_t j = 0; g && i == n && j < n; j++)
				dup |= !memcmp(found[j], g, 16);
			if (!g || dup)
				continue;
			char gs[37];
			bs_uefi_guid_str(g, gs);
			l += (size_t)snprintf(list + l, sizeof list - l, "%s%s:%s", l ? ", " : "", gs,
					      spec);
		}
		rc = bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				  "UEFI variable name '%s' is ambiguous: %s (give GUID:NAME)", spec,
				  list);
	}
	free(found);
	if (rc)
		return rc;
	char *kk = key_of(guid, spec);
	if (!kk)
		return nomem(img);
	*key = kk;
	return BS_OK;
}

/* "NAME (GUID:NAME)" of V for messages, in BUF. */
static const char *who(const struct bs_uefi_var *v, char *buf, size_t cap)
{
	char g[37];
	bs_uefi_guid_str(v->guid, g);
	snprintf(buf, cap, "%s:%s", g, v->name ? v->name : "?");
	return buf;
}

#define STORED_ATTRS (BS_UEFI_NON_VOLATILE | BS_UEFI_BOOTSERVICE_ACCESS | \
		      BS_UEFI_RUNTIME_ACCESS | BS_UEFI_TIME_BASED_AUTH)

int bs_uefi_var_check(const struct bs_uefi_var *v)
{
	if (!v || !v->name || (!v->data && v->data_len))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	char w[300], an[64], kn[64];
	who(v, w, sizeof w);
	uint8_t *u16;
	size_t ul;
	if (bs_uefi_utf16_encode(v->name, &u16, &ul))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "UEFI variable %s: the name is empty or not UTF-8", w);
	free(u16);
	struct bs_uefi_known k;
	bool known = bs_uefi_known_var(v->name, v->guid, &k) == BS_OK;
	bs_uefi_attr_format(v->attributes, an, sizeof an);
	if (known && k.volatile_only)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "UEFI variable %s is volatile (%s): the firmware sets it at every "
				    "boot, a variable store cannot hold it", w,
				    bs_uefi_attr_format(k.attributes, kn, sizeof kn));
	if (!(v->attributes & BS_UEFI_NON_VOLATILE) || !(v->attributes & BS_UEFI_BOOTSERVICE_ACCESS))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "UEFI variable %s: attributes %s lack %s; a non-volatile store "
				    "holds only variables with NV and BS", w, an[0] ? an : "(none)",
				    v->attributes & BS_UEFI_NON_VOLATILE ? "BS" : "NV");
	if (v->attributes & ~STORED_ATTRS)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "UEFI variable %s: attributes %s; a store keeps only NV, BS, RT "
				    "and AT (AW is deprecated, AP is a SetVariable() flag)", w, an);
	if (known && v->attributes != k.attributes)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "UEFI variable %s must have the attributes %s (0x%x), not %s",
				    w, bs_uefi_attr_format(k.attributes, kn, sizeof kn),
				    (unsigned)k.attributes, an);
	if (known && k.sigdb) {
		struct bs_uefi_sig *sigs;
		size_t ns;
		if (!v->data_len)
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
					    "UEFI variable %s: an empty signature database (to remove "
					    "the variable, delete it)", w);
		if (bs_uefi_sigdb_parse(v->data, v->data_len,
					strcmp(v->name, "PK") ? 0 : BS_UEFI_SIGDB_PK, &sigs, &ns)) {
			const char *m;
			bs_error_last(&m, NULL);
			char msg[400];
			snprintf(msg, sizeof msg, "%s", m);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
					    "UEFI variable %s: not a valid EFI_SIGNATURE_LIST database: "
					    "data %s", w, msg);
		}
		bs_uefi_sigs_free(sigs, ns);
	}
	return BS_OK;
}

/* ---- space --------------------------------------------------------------------------- */

/* OVMF's 4 MB build (store file 0x84000 octets) allows 0x8400 octets per
 * variable; its 1 and 2 MB builds and ArmVirtQemu 0x2000, 0x2800 with AT. */
#define OVMF_4M_FILE 0x84000u

static void limits_for(size_t file_size, struct bs_uefi_space *sp)
{
	if (file_size == OVMF_4M_FILE) {
		sp->max_var = sp->max_auth_var = 0x8400;
	} else {
		sp->max_var = 0x2000;
		sp->max_auth_var = 0x2800;
	}
}

/* Octets variable V takes in a store (HEADER_ALIGN(60 + NameSize + DataSize)). */
static int var_room(const struct bs_uefi_var *v, size_t *room, size_t *raw)
{
	uint8_t *u16;
	size_t ul;
	int rc = bs_uefi_utf16_encode(v->name, &u16, &ul);
	if (rc)
		return rc;
	free(u16);
	if (v->data_len > SIZE_MAX - VAR_HDR_LEN - ul - 3)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, 0, "variable too large");
	*raw = VAR_HDR_LEN + ul + v->data_len;
	*room = align4(*raw);
	return BS_OK;
}

int bs_uefi_space(bs_image *img, const uint8_t *tmpl, size_t tlen,
		  const struct bs_uefi_var *vars, size_t n, struct bs_uefi_space *out)
{
	if (!img || (!vars && n) || !out)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	struct bs_uefi_space sp = {0};
	size_t file_size, vo, end;
	if (tmpl) {
		struct layout lay;
		int rc = parse_layout(tmpl, tlen, &lay);
		if (rc)
			return rc;
		file_size = tlen;
		vo = lay.vars_off;
		end = lay.store_end;
	} else {
		bs_entry *se;
		uint64_t fs, a, b;
		int rc;
		if (bs_entry_find(img, BS_UEFI_STORE_TYPE, NULL, &se))
			return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOENT, 0,
					    "no saved varstore layout (import a varstore file first)");
		if ((rc = attr_uint(se, "uefi.file-size", SIZE_MAX, &fs)) ||
		    (rc = attr_uint(se, "uefi.vars-offset", SIZE_MAX, &a)) ||
		    (rc = attr_uint(se, "uefi.store-end", SIZE_MAX, &b)))
			return rc;
		if (a > b || b > fs)
			return bs_error_set_entry(se, BS_NO_OFFSET, BS_ECORRUPT,
						  "saved varstore layout is inconsistent");
		file_size = (size_t)fs;
		vo = (size_t)a;
		end = (size_t)b;
	}
	sp.capacity = end - vo;
	limits_for(file_size, &sp);
	for (size_t i = 0; i < n; i++) {
		size_t room, raw;
		int rc = var_room(&vars[i], &room, &raw);
		if (rc)
			return rc;
		sp.used = room > SIZE_MAX - sp.used ? SIZE_MAX : sp.used + room;
	}
	*out = sp;
	return BS_OK;
}

/* ---- writing variables ---------------------------------------------------------------- */

static bool same_key(const struct bs_uefi_var *a, const struct bs_uefi_var *b)
{
	return !memcmp(a->guid, b->guid, 16) && !strcmp(a->name, b->name);
}

/* Checks VARS (and that each fits one variable's limit), then that the
 * store IMG would hold afterwards (its variables with VARS replacing or
 * added; every other variable removed when REPLACE_ALL) fits the layout of
 * TMPL, or the saved one (no check without either). */
static int check_fit(bs_image *img, const struct bs_uefi_var *vars, size_t n, bool replace_all,
		     const uint8_t *tmpl, size_t tlen)
{
	char w[300];
	for (size_t i = 0; i < n; i++) {
		int rc = bs_uefi_var_check(&vars[i]);
		if (rc)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (same_key(&vars[i], &vars[j]))
				return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
						    "UEFI variable %s given twice",
						    who(&vars[i], w, sizeof w));
	}
	struct bs_uefi_store *st;
	int rc = bs_uefi_load(img, &st);
	if (rc)
		return rc;
	/* The store afterwards: kept variables, then VARS. */
	struct bs_uefi_var *all = calloc(st->nvars + n + 1, sizeof *all);
	if (!all) {
		bs_uefi_store_free(st);
		return nomem(img);
	}
	size_t k = 0;
	for (size_t i = 0; !replace_all && i < st->nvars; i++) {
		bool replaced = false;
		for (size_t j = 0; j < n && !replaced; j++)
			replaced = same_key(&st->vars[i], &vars[j]);
		if (!replaced)
			all[k++] = st->vars[i];
	}
	for (size_t j = 0; j < n; j++)
		all[k++] = vars[j];
	struct bs_uefi_space sp;
	bool have_layout = tmpl || st->file_size;
	rc = have_layout ? bs_uefi_space(img, tmpl, tlen, all, k, &sp) : BS_OK;
	if (!have_layout) /* no layout yet: the largest OVMF build's limit */
		limits_for(OVMF_4M_FILE, &sp);
	for (size_t j = 0; !rc && j < n; j++) {
		size_t room, raw;
		if ((rc = var_room(&vars[j], &room, &raw)))
			break;
		bool auth = vars[j].attributes & (BS_UEFI_TIME_BASED_AUTH | BS_UEFI_AUTH_WRITE);
		size_t max = auth ? sp.max_auth_var : sp.max_var;
		if (raw > max)
			rc = bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOSPC, 0,
					  "UEFI variable %s takes %zu octets (60 of header, name and "
					  "%zu of data): the firmware allows at most %zu per %s"
					  "variable", who(&vars[j], w, sizeof w), raw,
					  vars[j].data_len, max, auth ? "authenticated " : "");
	}
	if (!rc && have_layout && sp.used > sp.capacity)
		rc = bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOSPC, 0,
				  "the variables would take %zu octets of the variable store's %zu "
				  "(%zu too many)", sp.used, sp.capacity, sp.used - sp.capacity);
	free(all);
	bs_uefi_store_free(st);
	return rc;
}

int bs_uefi_write(bs_image *img, const struct bs_uefi_var *vars, size_t n)
{
	if (!img || (!vars && n))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	int rc = check_fit(img, vars, n, false, NULL, 0);
	/* PK last: it switches the firmware from setup to user mode. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; !rc && i < n; i++) {
			struct bs_uefi_known k;
			bool pk = !strcmp(vars[i].name, "PK") &&
				  bs_uefi_known_var("PK", vars[i].guid, &k) == BS_OK;
			if (pk == (pass == 1))
				rc = create_var(img, &vars[i]);
		}
	return rc;
}

int bs_uefi_set(bs_image *img, const char *key, uint32_t attributes, const void *data,
		size_t len)
{
	uint8_t guid[16];
	const char *name;
	if (!img || (!data && len))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	int rc = bs_uefi_key_parse(key, guid, &name);
	if (rc)
		return rc;
	struct bs_uefi_var v = {.version = BS_UEFI_VAR_VERSION, .attributes = attributes,
				.name = (char *)name, .data = (uint8_t *)(data ? data : ""),
				.data_len = len};
	memcpy(v.guid, guid, 16);
	/* An existing variable keeps its timestamp, count and key index. */
	char *k = var_key(&v);
	if (!k)
		return nomem(img);
	bs_entry *e;
	if (bs_entry_find(img, BS_UEFI_VAR_TYPE, k, &e) == BS_OK) {
		struct bs_uefi_var old = {0};
		rc = load_var(e, &old);
		if (!rc) {
			memcpy(v.timestamp, old.timestamp, 16);
			v.monotonic_count = old.monotonic_count;
			v.pubkey_index = old.pubkey_index;
		}
		free(old.name);
		free(old.data);
	}
	free(k);
	return rc ? rc : bs_uefi_write(img, &v, 1);
}

int bs_uefi_remove(bs_image *img, const char *key)
{
	uint8_t guid[16];
	const char *name;
	if (!img)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	int rc = bs_uefi_key_parse(key, guid, &name);
	if (rc)
		return rc;
	char *k = key_of(guid, name);
	if (!k)
		return nomem(img);
	bs_entry *e;
	rc = bs_entry_find(img, BS_UEFI_VAR_TYPE, k, &e);
	if (rc == BS_ENOENT)
		rc = bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_ENOENT, 0,
				  "no UEFI variable %s", k);
	free(k);
	return rc ? rc : bs_entry_delete(e);
}

int bs_uefi_import_json(bs_image *img, const char *text, size_t len, const uint8_t *tmpl,
			size_t tlen, size_t *count)
{
	if (!img || (!text && len))
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	struct bs_uefi_store *st;
	struct layout lay;
	int rc = bs_uefi_json_parse(text, len, &st);
	if (rc)
		return rc;
	if (tmpl)
		rc = parse_layout(tmpl, tlen, &lay);
	if (!rc)
		rc = check_fit(img, st->vars, st->nvars, true, tmpl, tlen);
	if (!rc && tmpl)
		rc = save_layout(img, tmpl, tlen, &lay);
	if (!rc)
		rc = replace_vars(img, st);
	if (!rc && count)
		*count = st->nvars;
	bs_uefi_store_free(st);
	return rc;
}
