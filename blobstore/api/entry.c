/* entry.c - the public calls on entries: find, create, read, write,
 * resize, update, delete, accept, and the accessors. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

int bs__refused(bs_image *img, const bs_entry *e)
{
	return bs__err(img, e, e->off, e->status, "entry refused: %s", bs_entry_status_msg(e));
}

int bs_find(bs_image *img, const char *type, const char *name, bs_entry **out)
{
	*out = NULL;
	if (!img || !type)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "no type given");
	bs_entry *e = bs__table_find(img, type, name);
	if (!e)
		return bs__err_key(img->label, type, name, BS_ENOENT, "no such entry");
	*out = e;
	return BS_OK;
}

static bool valid_type(const char *t)
{
	return bs__ident_valid((const uint8_t *)t, strlen(t), BS_MAX_TYPE_LEN, true);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	return n <= BS_MAX_NAME_LEN && bs__utf8_valid((const uint8_t *)s, n);
}

/* LIB: the library's own entry, which may use "bs." names. */
static int create(bs_image *img, const char *type, const char *name,
		  const struct bs_entry_opts *opts, const void *data, size_t len, bs_entry **out,
		  bool lib)
{
	if (out)
		*out = NULL;
	if (!opts)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "no options");
	if (!img || !type || (len && !data) || (opts->nattrs && !opts->attrs))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	struct bs__newentry ne = {.type = type, .name = name, .attrs = opts->attrs,
				  .nattrs = opts->nattrs, .capacity = opts->capacity,
				  .alg = BS_CHECK_CRC32C, .raw = opts->flags & BS_ENTRY_RAW,
				  .lib = lib};
	int rc = bs__writable(img, NULL);
	if (rc)
		return rc;
	if (!valid_type(type) || (name && !valid_name(name)))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "type must be 1-%u printable ASCII octets, name valid UTF-8 of at most %u octets",
			       BS_MAX_TYPE_LEN, BS_MAX_NAME_LEN);
	if (!lib && !strncmp(type, BS_RESERVED_PREFIX, 3))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "types starting with 'bs.' are reserved for the library");
	if (opts->nattrs > BS_MAX_ATTRS - 2)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "too many attributes");
	if (bs__table_find(img, type, name))
		return bs__err_key(img->label, type, name, BS_EEXIST, "entry already exists");
	if (opts->check && !strcmp(opts->check, "sha256"))
		ne.alg = BS_CHECK_SHA256;
	else if (opts->check && strcmp(opts->check, "crc32c"))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "unknown check '%s' (crc32c or sha256)", opts->check);
	if (opts->flags & ~(BS_ENTRY_RAW | BS_ENTRY_ENCRYPT))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "unknown entry flags");
	if (opts->flags & BS_ENTRY_ENCRYPT) {
		if (ne.raw)
			return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
				       "encrypted entries keep their data in slots (not BS_ENTRY_RAW)");
		ne.aead = BS_AEAD_AES256GCM;
		if (opts->cipher && !strcmp(opts->cipher, "chacha20-poly1305"))
			ne.aead = BS_AEAD_CHACHA20POLY1305;
		else if (opts->cipher && strcmp(opts->cipher, "aes-256-gcm"))
			return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
				       "unknown cipher '%s' (aes-256-gcm or chacha20-poly1305)",
				       opts->cipher);
	}
	return bs__dir_create(img, &ne, data, len, out);
}

int bs_entry_create(bs_image *img, const char *type, const char *name, size_t capacity,
		    const struct bs_attr *attrs, size_t nattrs, const void *data, size_t len,
		    bs_entry **out)
{
	struct bs_entry_opts o = {.capacity = capacity, .attrs = attrs, .nattrs = nattrs};
	return bs_entry_create2(img, type, name, &o, data, len, out);
}

int bs_entry_create2(bs_image *img, const char *type, const char *name,
		     const struct bs_entry_opts *opts, const void *data, size_t len,
		     bs_entry **out)
{
	return create(img, type, name, opts, data, len, out, false);
}

int bs__entry_create_lib(bs_image *img, const char *type, const char *name,
			 const struct bs_entry_opts *opts, const void *data, size_t len,
			 bs_entry **out)
{
	return create(img, type, name, opts, data, len, out, true);
}

/* ---- accessors -------------------------------------------------------------------- */

const char *bs_entry_type(const bs_entry *e)
{
	return e->m && e->m->type ? e->m->type : "";
}
const char *bs_entry_name(const bs_entry *e)
{
	return e->m ? e->m->name : NULL;
}
uint64_t bs_entry_offset(const bs_entry *e)
{
	return e->off;
}
uint64_t bs_entry_size(const bs_entry *e)
{
	return e->size;
}
size_t bs_entry_capacity(const bs_entry *e)
{
	return e->status ? 0 : bs__data_capacity(e);
}
int bs_entry_status(const bs_entry *e)
{
	return e->status;
}
const char *bs_entry_status_msg(const bs_entry *e)
{
	return e->status_msg ? e->status_msg : (e->status ? bs_strerror(e->status) : "ok");
}
int bs_entry_is_slotted(const bs_entry *e)
{
	return e->slotted;
}
const char *bs_entry_check(const bs_entry *e)
{
	if (!e->slotted)
		return NULL;
	return e->alg == BS_CHECK_SHA256 ? "sha256" : "crc32c";
}
const char *bs_entry_cipher(const bs_entry *e)
{
	return e && e->aead ? bs__aead_name(e->aead) : NULL;
}

/* ---- data ---------------------------------------------------------------------------- */

int bs_entry_read_alloc(bs_image *img, bs_entry *e, void **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (e->status)
		return bs__refused(img, e);
	return bs__data_read(img, e, out, len, NULL, 0, true);
}

int bs_entry_read(bs_image *img, bs_entry *e, void *buf, size_t bufsize, size_t *len)
{
	*len = 0;
	if (e->status)
		return bs__refused(img, e);
	return bs__data_read(img, e, NULL, len, buf, bufsize, false);
}

int bs__entry_write_cap(bs_image *img, bs_entry *e, const void *data, size_t len,
			size_t capacity)
{
	int rc = bs__writable(img, e);
	if (rc)
		return rc;
	if (len && !data)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "no data");
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry holds no data");
	return bs__data_write(img, e, data, len, capacity);
}

int bs_entry_write(bs_image *img, bs_entry *e, const void *data, size_t len)
{
	return bs__entry_write_cap(img, e, data, len, len);
}

int bs_entry_resize(bs_image *img, bs_entry *e, size_t capacity)
{
	int rc = bs__writable(img, e);
	if (rc)
		return rc;
	if (!e->slotted)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
			       "entry has no slots: its capacity is its data");
	if (capacity <= bs__data_capacity(e))
		return BS_OK;
	struct bs__rewrite rw = {.capacity = capacity};
	return bs__dir_rewrite(img, e, &rw);
}

int bs__entry_rewrite_lib(bs_image *img, bs_entry *e, const struct bs_attr *attrs,
			  size_t nattrs, const void *data, size_t len)
{
	int rc = bs__writable(img, NULL);
	if (rc)
		return rc;
	if (e->status)
		return bs__refused(img, e);
	struct bs__rewrite rw = {.data = data ? data : "", .len = len, .capacity = len,
				 .set = attrs, .nset = nattrs};
	return bs__dir_rewrite(img, e, &rw);
}

int bs_entry_update(bs_image *img, bs_entry *e, const struct bs_attr *attrs, size_t nattrs,
		    const void *data, size_t len)
{
	int rc = bs__writable(img, e);
	if (rc)
		return rc;
	if ((len && !data) || (nattrs && !attrs))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	for (size_t i = 0; i < nattrs; i++)
		if (!attrs[i].name || !strncmp(attrs[i].name, BS_RESERVED_PREFIX, 3))
			return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
				       "attribute names starting with 'bs.' are reserved");
	return bs__entry_rewrite_lib(img, e, attrs, nattrs, data, len);
}

int bs_entry_delete(bs_image *img, bs_entry *e)
{
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, e, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry cannot be deleted");
	if (img->io.broken)
		return bs__err(img, e, BS_NO_OFFSET, BS_EIO,
			       "an earlier write failed and left the storage state unknown: reopen the image");
	return bs__dir_delete(img, e);
}

int bs_entry_accept(bs_image *img, bs_entry *e, const char *const *names, size_t n)
{
	if (!e || (n && !names))
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (!e->status)
		return BS_OK;
	if (e->status != BS_EUNSUPPORTED || !e->m || !e->m->unknown_mandatory)
		return bs__refused(img, e);
	for (size_t i = 0; i < e->m->nmand; i++) {
		const char *a = e->m->attrs[i].cname;
		bool known = !strcmp(a, BS_ATTR_SLOTS) || !strcmp(a, BS_ATTR_AEAD);
		for (size_t k = 0; !known && k < n; k++)
			known = names[k] && !strcmp(a, names[k]);
		if (!known)
			return bs__err(img, e, e->off, BS_EUNSUPPORTED,
				       "entry refused: unknown mandatory attribute '%s'", a);
	}
	e->status = BS_OK;
	free(e->status_msg);
	e->status_msg = NULL;
	return BS_OK;
}
