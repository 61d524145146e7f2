/* entry.c - the public calls on entries: find, create, read, write,
 * resize, update, delete, accept, and the accessors. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int bs__refused(bs_image *img, const bs_entry *e)
{
	return bs__err(img, e, e->off, e->status, "entry refused: %s", bs_entry_status_message(e));
}

int bs_error_set_entry(const bs_entry *e, uint64_t offset, int code, const char *fmt, ...)
{
	struct bs__where w;
	bs__where_of(e ? e->img : NULL, e, &w);
	va_list ap;
	va_start(ap, fmt);
	bs__verror(&w, offset, code, 0, fmt ? fmt : "", ap);
	va_end(ap);
	return code;
}

int bs_entry_find(bs_image *img, const char *type, const char *name, bs_entry **out)
{
	if (!img || !type || !out)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "no image, type or output");
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
	return n <= BS_MAX_NAME_LEN && bs_utf8_valid((const uint8_t *)s, n);
}

/* LIB: the library's own entry, which may use "bs." names. */
static int create(bs_image *img, const char *type, const char *name,
		  const struct bs_entry_opts *opts, const void *data, size_t len, bs_entry **out,
		  bool lib)
{
	static const struct bs_entry_opts defaults = BS_ENTRY_OPTS_INIT;
	if (!opts)
		opts = &defaults;
	if (!img || !type || (len && !data) || (opts->nattrs && !opts->attrs))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (opts->version != BS_ENTRY_OPTS_VERSION)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "entry options of unknown version %u (BS_ENTRY_OPTS_INIT)",
			       opts->version);
	for (size_t i = 0; i < opts->nattrs; i++)
		if (opts->attrs[i].version != BS_ATTR_VERSION)
			return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
				       "attribute %zu of unknown version %u (BS_ATTR())", i,
				       opts->attrs[i].version);
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
	if (opts->checksum == BS_CHECKSUM_SHA256)
		ne.alg = BS_CHECK_SHA256;
	else if (opts->checksum != BS_CHECKSUM_DEFAULT && opts->checksum != BS_CHECKSUM_CRC32C)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "unknown checksum %d",
			       (int)opts->checksum);
	if (opts->flags & ~(BS_ENTRY_RAW | BS_ENTRY_ENCRYPT))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "unknown entry flags");
	if (opts->cipher != BS_CIPHER_DEFAULT && opts->cipher != BS_CIPHER_AES_256_GCM &&
	    opts->cipher != BS_CIPHER_CHACHA20_POLY1305)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "unknown cipher %d",
			       (int)opts->cipher);
	if (opts->flags & BS_ENTRY_ENCRYPT) {
		if (ne.raw)
			return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
				       "encrypted entries keep their data in slots (not BS_ENTRY_RAW)");
		ne.aead = opts->cipher == BS_CIPHER_CHACHA20_POLY1305 ? BS_AEAD_CHACHA20POLY1305
								       : BS_AEAD_AES256GCM;
	}
	return bs__dir_create(img, &ne, data, len, out);
}

int bs_entry_create(bs_image *img, const char *type, const char *name,
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

bs_image *bs_entry_image(const bs_entry *e)
{
	return e ? e->img : NULL;
}
const char *bs_entry_type(const bs_entry *e)
{
	return e && e->m && e->m->type ? e->m->type : "";
}
const char *bs_entry_name(const bs_entry *e)
{
	return e && e->m ? e->m->name : NULL;
}
uint64_t bs_entry_offset(const bs_entry *e)
{
	return e ? e->off : 0;
}
uint64_t bs_entry_size(const bs_entry *e)
{
	return e ? e->size : 0;
}
size_t bs_entry_capacity(const bs_entry *e)
{
	return !e || e->status ? 0 : bs__data_capacity(e);
}
int bs_entry_status(const bs_entry *e)
{
	return e ? e->status : BS_EINVAL;
}
const char *bs_entry_status_message(const bs_entry *e)
{
	if (!e)
		return "";
	return e->status_msg ? e->status_msg : (e->status ? bs_error_string(e->status) : "ok");
}
int bs_entry_check(bs_entry *e, int *state)
{
	if (!e || !state)
		return bs__err(e ? e->img : NULL, e, BS_NO_OFFSET, BS_EINVAL,
			       "no entry or no state to fill");
	if (e->status)
		return bs__refused(e->img, e);
	if (!e->slotted) {
		*state = BS_STATE_CURRENT;
		return BS_OK;
	}
	struct bs__slot_report rep;
	int rc = bs__data_check(e->img, e, &rep);
	if (rc)
		return rc;
	*state = rep.newer_bad ? BS_STATE_PREVIOUS : BS_STATE_CURRENT;
	return BS_OK;
}
int bs_entry_is_slotted(const bs_entry *e)
{
	return e && e->slotted;
}
enum bs_checksum bs_entry_checksum(const bs_entry *e)
{
	if (!e || !e->slotted)
		return BS_CHECKSUM_DEFAULT;
	return e->alg == BS_CHECK_SHA256 ? BS_CHECKSUM_SHA256 : BS_CHECKSUM_CRC32C;
}
enum bs_cipher bs_entry_cipher(const bs_entry *e)
{
	if (!e || !e->aead)
		return BS_CIPHER_DEFAULT;
	return e->aead == BS_AEAD_CHACHA20POLY1305 ? BS_CIPHER_CHACHA20_POLY1305
						   : BS_CIPHER_AES_256_GCM;
}
int bs_entry_is_encrypted(const bs_entry *e)
{
	return e && e->aead != BS_AEAD_NONE;
}

/* ---- data ---------------------------------------------------------------------------- */

int bs_entry_read_alloc(bs_entry *e, void **out, size_t *len)
{
	if (!e || !out || !len)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (e->status)
		return bs__refused(e->img, e);
	return bs__data_read(e->img, e, out, len, NULL, 0, true);
}

int bs_entry_read(bs_entry *e, void *buf, size_t bufsize, size_t *len)
{
	if (!e || !len || (bufsize && !buf))
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (e->status)
		return bs__refused(e->img, e);
	return bs__data_read(e->img, e, NULL, len, buf, bufsize, false);
}

/* What every change of an entry's data checks first. */
static int data_writable(bs_entry *e, const void *data, size_t len)
{
	if (!e)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no entry");
	int rc = bs__writable(e->img, e);
	if (rc)
		return rc;
	if (len && !data)
		return bs__err(e->img, e, BS_NO_OFFSET, BS_EINVAL, "no data");
	if (e == e->img->image_entry)
		return bs__err(e->img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry holds no data");
	return BS_OK;
}

int bs_entry_write(bs_entry *e, const void *data, size_t len)
{
	int rc = data_writable(e, data, len);
	return rc ? rc : bs__data_write(e->img, e, data, len, len);
}

int bs_entry_update(bs_entry *e, const struct bs_entry_update *u)
{
	if (!e || !u || u->version != BS_ENTRY_UPDATE_VERSION || (u->nattrs && !u->attrs))
		return bs__err(e ? e->img : NULL, e, BS_NO_OFFSET, BS_EINVAL,
			       "no entry, or an update of an unknown version (BS_ENTRY_UPDATE_INIT)");
	int rc = data_writable(e, u->data, u->len);
	if (rc)
		return rc;
	bool same = true;
	for (size_t i = 0; i < u->nattrs; i++) {
		const struct bs_attr *a = &u->attrs[i];
		if (a->version != BS_ATTR_VERSION || !a->name ||
		    !strncmp(a->name, BS_RESERVED_PREFIX, 3))
			return bs__err(e->img, e, BS_NO_OFFSET, BS_EINVAL,
				       "attribute %zu: unknown version, no name, or a name starting "
				       "with 'bs.' (reserved)", i);
		same = same && bs__attr_unchanged(e, a->name, a->flags, a->value, a->value_len);
	}
	size_t cap = u->capacity > u->len ? u->capacity : u->len;
	/* Nothing but data changes and it fits: the cheap slot write. */
	if (same && e->slotted && cap <= bs__data_capacity(e))
		return bs__data_write(e->img, e, u->data, u->len, cap);
	struct bs__rewrite rw = {.data = u->data ? u->data : "", .len = u->len, .capacity = cap,
				 .set = u->attrs, .nset = u->nattrs};
	return bs__dir_rewrite(e->img, e, &rw);
}

int bs_entry_resize(bs_entry *e, size_t capacity)
{
	if (!e)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no entry");
	int rc = bs__writable(e->img, e);
	if (rc)
		return rc;
	if (!e->slotted)
		return bs__err(e->img, e, BS_NO_OFFSET, BS_EINVAL,
			       "entry has no slots: its capacity is its data");
	if (capacity <= bs__data_capacity(e))
		return BS_OK;
	struct bs__rewrite rw = {.capacity = capacity};
	return bs__dir_rewrite(e->img, e, &rw);
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

int bs_entry_delete(bs_entry *e)
{
	if (!e)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no entry");
	bs_image *img = e->img;
	if (img->flags & BS_OPEN_RDONLY)
		return bs__err(img, e, BS_NO_OFFSET, BS_ERDONLY, "image opened read-only");
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry cannot be deleted");
	if (img->io.broken)
		return bs__err(img, e, BS_NO_OFFSET, BS_ESTALE,
			       "an earlier write failed and left the storage state unknown: reopen the image");
	return bs__dir_delete(img, e);
}

int bs_entry_accept(bs_entry *e, const char *const *names, size_t n)
{
	if (!e || (n && !names))
		return bs__err(e ? e->img : NULL, e, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (!e->status)
		return BS_OK;
	if (e->status != BS_EUNSUPPORTED || !e->m || !e->m->unknown_mandatory)
		return bs__refused(e->img, e);
	for (size_t i = 0; i < e->m->nmand; i++) {
		const char *a = e->m->attrs[i].cname;
		bool known = !strcmp(a, BS_ATTR_SLOTS) || !strcmp(a, BS_ATTR_AEAD);
		for (size_t k = 0; !known && k < n; k++)
			known = names[k] && !strcmp(a, names[k]);
		if (!known)
			return bs__err(e->img, e, e->off, BS_EUNSUPPORTED,
				       "entry refused: unknown mandatory attribute '%s'", a);
	}
	e->status = BS_OK;
	e->accepted = true;
	free(e->status_msg);
	e->status_msg = NULL;
	return BS_OK;
}
