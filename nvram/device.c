/* device.c - the device handle: one entry opened by type and name, whole-blob
 * put/get, typed attributes with the write-once and fixed-size rules,
 * entry-type checks, records in the data (blobstore/nvram.h).
 *
 * Built on the public API only.  Mandatory attributes the device knows are
 * declared to the store with bs_entry_accept(). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/nvram.h>
#include <blobstore/sys/util.h>

struct bs_device {
	bs_image *img;
	bs_entry *e;
	unsigned grow_factor;
	char **known; /* mandatory attribute names this device knows */
	size_t nknown;
};

static int dev_err(const bs_device *d, int code, const char *what)
{
	return d ? bs_error_set_entry(d->e, BS_NO_OFFSET, code, "%s", what)
		 : bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, code, 0, "%s", what);
}

static int add_known(bs_device *d, const char *name)
{
	for (size_t i = 0; i < d->nknown; i++)
		if (!strcmp(d->known[i], name))
			return BS_OK;
	char **k = realloc(d->known, (d->nknown + 1) * sizeof *k);
	if (!k)
		return dev_err(d, BS_ENOMEM, "out of memory");
	d->known = k;
	if (!(k[d->nknown] = strdup(name)))
		return dev_err(d, BS_ENOMEM, "out of memory");
	d->nknown++;
	return BS_OK;
}

/* Makes the entry usable for this device, or says why it cannot be.  The
 * device's own list is checked first: another handle on the same entry may
 * have accepted it with a longer list. */
static int accept(bs_device *d)
{
	for (size_t i = 0; i < bs_attr_count(d->e); i++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		unsigned f;
		bs_attr_at(d->e, i, &name, &v, &vl, &f);
		if (!(f & BS_ATTR_MANDATORY))
			continue;
		bool known = !strncmp(name, "bs.", 3);
		for (size_t k = 0; !known && k < d->nknown; k++)
			known = !strcmp(d->known[k], name);
		if (!known)
			return bs_error_set_entry(d->e, bs_entry_offset(d->e), BS_EUNSUPPORTED,
						  "entry refused: unknown mandatory attribute '%s'",
						  name);
	}
	return bs_entry_accept(d->e, (const char *const *)d->known, d->nknown);
}

void bs_device_close(bs_device *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->nknown; i++)
		free(dev->known[i]);
	free(dev->known);
	free(dev);
}

bs_entry *bs_device_entry(const bs_device *dev)
{
	return dev ? dev->e : NULL;
}

int bs_device_open(bs_image *img, const char *type, const char *name,
		   const struct bs_device_opts *opts, bs_device **out)
{
	static const struct bs_device_opts defaults = BS_DEVICE_OPTS_INIT;
	if (!opts)
		opts = &defaults;
	if (!img || !type || !out || (opts->nknown_attrs && !opts->known_attrs))
		return bs_error_set(bs_image_label(img), type, name, BS_NO_OFFSET, BS_EINVAL, 0,
				    "invalid argument");
	if (opts->version != BS_DEVICE_OPTS_VERSION)
		return bs_error_set(bs_image_label(img), type, name, BS_NO_OFFSET, BS_EINVAL, 0,
				    "device options of an unknown version (BS_DEVICE_OPTS_INIT)");
	if (opts->flags & ~(BS_DEVICE_CREATE | BS_DEVICE_EXCL | BS_DEVICE_MANDATORY))
		return bs_error_set(bs_image_label(img), type, name, BS_NO_OFFSET, BS_EINVAL, 0,
				    "unknown device flags");
	bs_device *d = calloc(1, sizeof *d);
	if (!d)
		return bs_error_set(bs_image_label(img), type, name, BS_NO_OFFSET, BS_ENOMEM, 0,
				    "out of memory");
	d->img = img;
	d->grow_factor = opts->grow_factor;
	/* Whoever opens a type by name knows it, mandatory or not. */
	int rc = add_known(d, BS_DEVICE_MANDATORY_TYPE);
	for (size_t i = 0; !rc && i < opts->nknown_attrs; i++)
		if (opts->known_attrs[i])
			rc = add_known(d, opts->known_attrs[i]);
	if (rc)
		goto fail;
	rc = bs_entry_find(img, type, name, &d->e);
	if (rc == BS_ENOENT && (opts->flags & BS_DEVICE_CREATE)) {
		struct bs_attr mt = BS_ATTR(BS_DEVICE_MANDATORY_TYPE, BS_ATTR_MANDATORY, NULL, 0);
		struct bs_entry_opts eo = BS_ENTRY_OPTS_INIT;
		eo.capacity = opts->capacity;
		eo.attrs = (opts->flags & BS_DEVICE_MANDATORY) ? &mt : NULL;
		eo.nattrs = (opts->flags & BS_DEVICE_MANDATORY) ? 1 : 0;
		eo.checksum = opts->checksum;
		rc = bs_entry_create(img, type, name, &eo, NULL, 0, &d->e);
	} else if (!rc && (opts->flags & BS_DEVICE_CREATE) && (opts->flags & BS_DEVICE_EXCL)) {
		rc = bs_error_set(bs_image_label(img), type, name, BS_NO_OFFSET, BS_EEXIST, 0,
				  "device entry already exists");
	}
	if (rc)
		goto fail;
	if ((rc = accept(d)))
		goto fail;
	*out = d;
	return BS_OK;
fail:
	bs_device_close(d);
	return rc;
}

int bs_device_put(bs_device *dev, const void *data, size_t len)
{
	if (!dev)
		return dev_err(NULL, BS_EINVAL, "no device");
	int rc = accept(dev);
	if (rc)
		return rc;
	struct bs_entry_update u = BS_ENTRY_UPDATE_INIT;
	u.data = data;
	u.len = len;
	/* Room to grow into, when the entry has to grow anyway. */
	if (dev->grow_factor > 1 && len > bs_entry_capacity(dev->e) &&
	    len <= SIZE_MAX / dev->grow_factor)
		u.capacity = len * dev->grow_factor;
	return bs_entry_update(dev->e, &u);
}

int bs_device_get(bs_device *dev, void *buf, size_t bufsize, size_t *len)
{
	if (!dev || !len || (bufsize && !buf))
		return dev_err(dev, BS_EINVAL, "invalid argument");
	int rc = accept(dev);
	return rc ? rc : bs_entry_read(dev->e, buf, bufsize, len);
}

int bs_device_get_alloc(bs_device *dev, void **out, size_t *len)
{
	if (!dev || !out || !len)
		return dev_err(dev, BS_EINVAL, "invalid argument");
	int rc = accept(dev);
	return rc ? rc : bs_entry_read_alloc(dev->e, out, len);
}

/* ---- attributes ---------------------------------------------------------- */

static bool reserved(const char *name)
{
	return !strncmp(name, "bs.", 3) || !strncmp(name, "nvram.", 6);
}

static bool valid_name(const char *name)
{
	return bs_attr_name_valid(name) && !reserved(name);
}

/* What a typed setter sets. */
enum kind { K_INT, K_UINT, K_BOOL, K_STR, K_BYTES };
struct value {
	enum kind kind;
	int64_t i;
	uint64_t u;
	const void *p;
	size_t len;
};

/* The DER of V (read-write when RW, padded to SIZE for strings) in a
 * malloc()ed *OUT. */
static int encode(const struct value *v, unsigned rw, size_t size, uint8_t **out, size_t *len)
{
	size_t cap = (v->kind == K_STR ? (size > strlen(v->p) ? size : strlen(v->p))
				      : v->kind == K_BYTES ? v->len : 0) + BS_VALUE_MAX_INT;
	uint8_t *b = malloc(cap);
	if (!b)
		return BS_ENOMEM;
	int rc;
	switch (v->kind) {
	case K_INT: rc = bs_value_encode_int(v->i, rw, b, cap, len); break;
	case K_UINT: rc = bs_value_encode_uint(v->u, rw, b, cap, len); break;
	case K_BOOL: rc = bs_value_encode_bool((int)v->i, rw, b, cap, len); break;
	case K_STR: rc = bs_value_encode_str(v->p, rw, size, b, cap, len); break;
	default: rc = bs_value_encode_bytes(v->p, v->len, rw, b, cap, len); break;
	}
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	return BS_OK;
}

static int attr_set(bs_device *d, const char *name, unsigned flags, const struct value *v)
{
	if (!d)
		return dev_err(NULL, BS_EINVAL, "no device");
	if (!valid_name(name))
		return dev_err(d, BS_EINVAL,
			       "attribute name must be printable ASCII without spaces, not starting "
			       "with 'bs.' or 'nvram.'");
	if (flags & ~(unsigned)(BS_ATTR_MANDATORY | BS_ATTR_RW))
		return dev_err(d, BS_EINVAL, "unknown attribute flags");
	int rc = accept(d);
	if (rc)
		return rc;
	unsigned rw = flags & BS_ATTR_RW;
	size_t size = 0;
	uint8_t *der;
	size_t dl;
	const uint8_t *old;
	size_t old_len;
	if (bs_attr_get(d->e, name, &old, &old_len, NULL) == BS_OK) {
		/* Read-only means written once (the same value again is fine);
		 * read-write keeps its size. */
		const uint8_t *c;
		size_t cl;
		bool old_rw = bs_value_decode_bytes(old, old_len, &c, &cl, NULL) == BS_OK;
		if (!rw) {
			rc = encode(v, 0, 0, &der, &dl);
			bool same = !rc && dl == old_len && !memcmp(der, old, dl);
			if (!rc)
				free(der);
			if (!same)
				return bs_error_set_entry(d->e, BS_NO_OFFSET, BS_ERDONLY,
							  "attribute '%s' is read-only (written once): "
							  "remove it first", name);
		} else if (!old_rw) {
			return bs_error_set_entry(d->e, BS_NO_OFFSET, BS_ERDONLY,
						  "attribute '%s' is read-only (written once): remove "
						  "it first", name);
		} else {
			size_t want = v->kind == K_BOOL ? 1 : (v->kind == K_INT || v->kind == K_UINT) ? 8
							      : v->kind == K_BYTES ? v->len : cl;
			if (cl != want || (v->kind == K_STR && strlen(v->p) > cl))
				return bs_error_set_entry(
					d->e, BS_NO_OFFSET, BS_ELIMIT,
					"read-write attribute '%s' has %zu octets; the new value must "
					"fit them%s", name, cl,
					v->kind == K_STR ? " (bs_device_attr_reserve() makes room)" : "");
			size = cl;
		}
	}
	rc = encode(v, rw, size, &der, &dl);
	if (rc)
		return bs_error_set_entry(d->e, BS_NO_OFFSET, rc,
					  "attribute '%s': value not encodable (invalid UTF-8, or "
					  "too large)", name);
	if ((flags & BS_ATTR_MANDATORY) && (rc = add_known(d, name))) {
		free(der);
		return rc;
	}
	rc = bs_attr_set(d->e, name, flags & BS_ATTR_MANDATORY, der, dl);
	free(der);
	int rc2 = accept(d);
	return rc ? rc : rc2;
}

int bs_device_attr_set_int(bs_device *dev, const char *name, unsigned flags, int64_t v)
{
	struct value val = {.kind = K_INT, .i = v};
	return attr_set(dev, name, flags, &val);
}

int bs_device_attr_set_uint(bs_device *dev, const char *name, unsigned flags, uint64_t v)
{
	struct value val = {.kind = K_UINT, .u = v};
	return attr_set(dev, name, flags, &val);
}

int bs_device_attr_set_bool(bs_device *dev, const char *name, unsigned flags, int v)
{
	struct value val = {.kind = K_BOOL, .i = v != 0};
	return attr_set(dev, name, flags, &val);
}

int bs_device_attr_set_str(bs_device *dev, const char *name, unsigned flags, const char *s)
{
	if (!s)
		return dev_err(dev, BS_EINVAL, "no string");
	struct value val = {.kind = K_STR, .p = s};
	return attr_set(dev, name, flags, &val);
}

int bs_device_attr_set_bytes(bs_device *dev, const char *name, unsigned flags, const void *p,
			     size_t len)
{
	if (len && !p)
		return dev_err(dev, BS_EINVAL, "no bytes");
	struct value val = {.kind = K_BYTES, .p = p ? p : "", .len = len};
	return attr_set(dev, name, flags, &val);
}

int bs_device_attr_reserve(bs_device *dev, const char *name, unsigned flags, size_t size)
{
	if (!dev || !valid_name(name) || (flags & ~(unsigned)BS_ATTR_MANDATORY))
		return dev_err(dev, BS_EINVAL, "invalid attribute name or flags");
	if (size > BS_MAX_ATTR_SIZE - BS_MAX_ATTR_NAME_LEN - 16)
		return dev_err(dev, BS_ELIMIT, "larger than an attribute may be");
	int rc = accept(dev);
	if (rc)
		return rc;
	char *cur = NULL;
	const uint8_t *old;
	size_t old_len;
	unsigned oflags = 0, vflags = 0;
	if (bs_attr_get(dev->e, name, &old, &old_len, &oflags) == BS_OK) {
		const uint8_t *c;
		size_t cl;
		if (bs_value_decode_str(old, old_len, &cur, &vflags) || !(vflags & BS_ATTR_RW) ||
		    bs_value_decode_bytes(old, old_len, &c, &cl, NULL)) {
			free(cur);
			return bs_error_set_entry(dev->e, BS_NO_OFFSET, BS_ETYPE,
						  "attribute '%s' is not a read-write string", name);
		}
		if (cl >= size) {
			free(cur);
			return BS_OK; /* never shrinks */
		}
		flags = oflags & BS_ATTR_MANDATORY;
	}
	struct value val = {.kind = K_STR, .p = cur ? cur : ""};
	uint8_t *der;
	size_t dl;
	rc = encode(&val, BS_ATTR_RW, size, &der, &dl);
	free(cur);
	if (rc)
		return bs_error_set_entry(dev->e, BS_NO_OFFSET, rc, "attribute '%s': cannot reserve",
					  name);
	if ((flags & BS_ATTR_MANDATORY) && (rc = add_known(dev, name))) {
		free(der);
		return rc;
	}
	rc = bs_attr_set(dev->e, name, flags, der, dl);
	free(der);
	int rc2 = accept(dev);
	return rc ? rc : rc2;
}

int bs_device_attr_remove(bs_device *dev, const char *name)
{
	if (!dev || !name || reserved(name))
		return dev_err(dev, BS_EINVAL, "invalid attribute name");
	int rc = accept(dev);
	if (!rc)
		rc = bs_attr_remove(dev->e, name);
	int rc2 = accept(dev);
	return rc ? rc : rc2;
}

/* ---- entry types ----------------------------------------------------------- */

int bs_device_check_types(bs_image *img, const char *prefix, const char *const *known, size_t n)
{
	if (!img || !prefix || (n && !known))
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "invalid argument");
	size_t pl = strlen(prefix);
	for (bs_entry *e = NULL; (e = bs_entry_next(img, e, 0));) {
		const char *t = bs_entry_type(e);
		if (strncmp(t, prefix, pl))
			continue;
		bool is_known = false;
		for (size_t k = 0; !is_known && k < n; k++)
			is_known = known[k] && !strcmp(known[k], t);
		if (is_known)
			continue;
		unsigned f = 0;
		const uint8_t *v;
		size_t vl;
		if (bs_attr_get(e, BS_DEVICE_MANDATORY_TYPE, &v, &vl, &f) == BS_OK &&
		    (f & BS_ATTR_MANDATORY))
			return bs_error_set_entry(e, bs_entry_offset(e), BS_EUNSUPPORTED,
						  "unknown mandatory entry type '%s'", t);
	}
	return BS_OK;
}

/* ---- records in the data ----------------------------------------------------- */

/* Rewords a record error so that it names the entry. */
static int rec_err(bs_device *d, int rc)
{
	const char *m;
	bs_error_last(&m, NULL);
	char msg[600];
	snprintf(msg, sizeof msg, "%s", m);
	return bs_error_set_entry(d->e, BS_NO_OFFSET, rc, "%s", msg);
}

int bs_device_get_record(bs_device *dev, const char *const *known, size_t n, bs_record **out)
{
	if (!dev || !out)
		return dev_err(dev, BS_EINVAL, "invalid argument");
	void *buf;
	size_t len;
	int rc = bs_device_get_alloc(dev, &buf, &len);
	if (rc)
		return rc;
	rc = bs_record_decode(buf, len, known, n, out);
	free(buf);
	return rc ? rec_err(dev, rc) : BS_OK;
}

int bs_device_put_record(bs_device *dev, bs_record *rec, const char *const *known, size_t n)
{
	if (!dev || !rec)
		return dev_err(dev, BS_EINVAL, "invalid argument");
	void *buf;
	size_t len;
	bs_record *cur = NULL;
	uint8_t *enc = NULL;
	size_t enc_len;
	int rc = bs_device_get_alloc(dev, &buf, &len);
	if (rc)
		return rc;
	rc = bs_record_decode(buf, len, known, n, &cur);
	free(buf);
	if (rc)
		return rec_err(dev, rc);
	rc = bs_record_keep_unknown(rec, cur);
	bs_record_free(cur);
	if (!rc)
		rc = bs_record_encode(rec, &enc, &enc_len);
	if (rc)
		return rec_err(dev, rc);
	rc = bs_device_put(dev, enc, enc_len);
	free(enc);
	return rc;
}
