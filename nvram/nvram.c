/* nvram.c - the device handle: one entry opened by type and name, whole-blob
 * put/get, typed attributes, entry-type checks, records in the data.
 *
 * Mandatory attributes the device knows are declared to the store with
 * bs_entry_accept(), again after every call that rewrites the entry (the
 * store parses a rewritten entry afresh and refuses it until told). */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "nvram_internal.h"

struct nvram_dev {
	bs_image *img;
	bs_entry *e;
	char **known; /* mandatory attribute names this device knows */
	size_t nknown;
};

static int add_known(nvram_dev *d, const char *name)
{
	for (size_t i = 0; i < d->nknown; i++)
		if (!strcmp(d->known[i], name))
			return BS_OK;
	char **k = realloc(d->known, (d->nknown + 1) * sizeof *k);
	if (!k)
		return bs__err(d->img, d->e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	d->known = k;
	if (!(k[d->nknown] = strdup(name)))
		return bs__err(d->img, d->e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	d->nknown++;
	return BS_OK;
}

/* Makes the entry usable for this device, or says why it cannot be.  The
 * device's own list is checked first: another handle on the same entry may
 * have accepted it with a longer list. */
static int accept(nvram_dev *d)
{
	for (size_t i = 0; i < bs_attr_count(d->e, 1); i++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		bool known = false;
		bs_attr_at(d->e, 1, i, &name, &v, &vl);
		known = !strncmp(name, "bs.", 3);
		for (size_t k = 0; !known && k < d->nknown; k++)
			known = !strcmp(d->known[k], name);
		if (!known)
			return bs__err(d->img, d->e, bs_entry_offset(d->e), BS_EUNSUPPORTED,
				       "entry refused: unknown mandatory attribute '%s'", name);
	}
	return bs_entry_accept(d->img, d->e, (const char *const *)d->known, d->nknown);
}

void nvram_close(nvram_dev *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->nknown; i++)
		free(dev->known[i]);
	free(dev->known);
	free(dev);
}

bs_entry *nvram_entry(nvram_dev *dev)
{
	return dev ? dev->e : NULL;
}

int nvram_open2(bs_image *img, const char *type, const char *name, const struct nvram_opts *opts,
		nvram_dev **out)
{
	if (out)
		*out = NULL;
	if (!img || !type || !opts || !out || (opts->nknown_attrs && !opts->known_attrs))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (opts->flags & ~(NVRAM_OPEN_CREATE | NVRAM_OPEN_EXCL | NVRAM_OPEN_MANDATORY |
			    NVRAM_OPEN_SHA256))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "unknown nvram_open flags");
	nvram_dev *d = calloc(1, sizeof *d);
	if (!d)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	d->img = img;
	/* Whoever opens a type by name knows it, mandatory or not. */
	int rc = add_known(d, NVRAM_ATTR_MANDATORY_TYPE);
	for (size_t i = 0; !rc && i < opts->nknown_attrs; i++)
		if (opts->known_attrs[i])
			rc = add_known(d, opts->known_attrs[i]);
	if (rc)
		goto fail;
	rc = bs_find(img, type, name, &d->e);
	if (rc == BS_ENOENT && (opts->flags & NVRAM_OPEN_CREATE)) {
		struct bs_attr mt = {.name = NVRAM_ATTR_MANDATORY_TYPE, .flags = BS_ATTR_MANDATORY};
		struct bs_entry_opts eo = {
			.capacity = opts->capacity,
			.attrs = (opts->flags & NVRAM_OPEN_MANDATORY) ? &mt : NULL,
			.nattrs = (opts->flags & NVRAM_OPEN_MANDATORY) ? 1 : 0,
			.check = (opts->flags & NVRAM_OPEN_SHA256) ? "sha256" : "crc32c",
		};
		rc = bs_entry_create2(img, type, name, &eo, NULL, 0, &d->e);
	} else if (!rc && (opts->flags & NVRAM_OPEN_CREATE) && (opts->flags & NVRAM_OPEN_EXCL)) {
		rc = bs__err_key(bs_image_label(img), type, name, BS_EEXIST,
				 "device entry already exists");
	}
	if (rc)
		goto fail;
	if ((rc = accept(d)))
		goto fail;
	*out = d;
	return BS_OK;
fail:
	nvram_close(d);
	return rc;
}

int nvram_open(bs_image *img, const char *type, const char *name, size_t capacity,
	       unsigned flags, nvram_dev **out)
{
	struct nvram_opts o = {.capacity = capacity, .flags = flags};
	return nvram_open2(img, type, name, &o, out);
}

int nv_put_cap(nvram_dev *dev, const void *data, size_t len, size_t capacity)
{
	if (!dev)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no device");
	int rc = accept(dev);
	if (!rc)
		rc = bs__entry_write_cap(dev->img, dev->e, data, len, capacity);
	int rc2 = accept(dev); /* a growing write rewrote the entry */
	return rc ? rc : rc2;
}

int nvram_put(nvram_dev *dev, const void *data, size_t len)
{
	return nv_put_cap(dev, data, len, len);
}

int nvram_get(nvram_dev *dev, void *buf, size_t bufsize, size_t *len)
{
	if (!dev || !len || (bufsize && !buf))
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	*len = 0;
	int rc = accept(dev);
	return rc ? rc : bs_entry_read(dev->img, dev->e, buf, bufsize, len);
}

int nvram_get_alloc(nvram_dev *dev, void **out, size_t *len)
{
	if (!dev || !out || !len)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	*out = NULL;
	*len = 0;
	int rc = accept(dev);
	return rc ? rc : bs_entry_read_alloc(dev->img, dev->e, out, len);
}

/* ---- attributes ---------------------------------------------------------- */

static bool reserved(const char *name)
{
	return !strncmp(name, "bs.", 3) || !strncmp(name, "nvram.", 6);
}

static int attr_set(nvram_dev *d, const char *name, unsigned flags, struct nv_value *v)
{
	if (!d)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no device");
	if (!nv_valid_name(name) || reserved(name))
		return bs__err(d->img, d->e, BS_NO_OFFSET, BS_EINVAL,
			       "attribute name must be printable ASCII without spaces, "
			       "not starting with 'bs.' or 'nvram.'");
	if (flags & ~(NVRAM_ATTR_MANDATORY | NVRAM_ATTR_RW))
		return bs__err(d->img, d->e, BS_NO_OFFSET, BS_EINVAL, "unknown attribute flags");
	int rc = accept(d);
	if (rc)
		return rc;
	v->rw = (flags & NVRAM_ATTR_RW) != 0;
	const uint8_t *old;
	size_t old_len;
	if (bs_attr_get(d->e, name, NULL, &old, &old_len) == BS_OK) {
		/* Read-only means written once; read-write keeps its size. */
		const uint8_t *c;
		size_t cl;
		if (!v->rw || !nv_value_octets(old, old_len, &c, &cl))
			return bs__err(d->img, d->e, BS_NO_OFFSET, BS_ERDONLY,
				       "attribute '%s' is read-only: remove it first", name);
		size_t want = v->kind == NV_BOOL ? 1 : (v->kind == NV_INT || v->kind == NV_UINT) ? 8 : 0;
		if ((want && cl != want) || (v->kind == NV_BYTES && cl != v->len))
			return bs__err(d->img, d->e, BS_NO_OFFSET, BS_EINVAL,
				       "read-write attribute '%s' has %zu octets; the new value must "
				       "have the same size", name, cl);
		v->rw_size = cl;
	}
	uint8_t *der;
	size_t dl;
	rc = nv_value_encode(v, &der, &dl);
	if (rc)
		return bs__err(d->img, d->e, BS_NO_OFFSET, rc,
			       "attribute '%s': value not encodable (invalid UTF-8 or longer than "
			       "the fixed size)", name);
	if ((flags & NVRAM_ATTR_MANDATORY) && (rc = add_known(d, name))) {
		free(der);
		return rc;
	}
	rc = bs_attr_set(d->img, d->e, name, (flags & NVRAM_ATTR_MANDATORY) ? BS_ATTR_MANDATORY : 0,
			 der, dl);
	free(der);
	int rc2 = accept(d);
	return rc ? rc : rc2;
}

int nvram_attr_set_int(nvram_dev *dev, const char *name, unsigned flags, int64_t v)
{
	struct nv_value val = {.kind = NV_INT, .i = v};
	return attr_set(dev, name, flags, &val);
}

int nvram_attr_set_uint(nvram_dev *dev, const char *name, unsigned flags, uint64_t v)
{
	struct nv_value val = {.kind = NV_UINT, .u = v};
	return attr_set(dev, name, flags, &val);
}

int nvram_attr_set_bool(nvram_dev *dev, const char *name, unsigned flags, int v)
{
	struct nv_value val = {.kind = NV_BOOL, .i = v != 0};
	return attr_set(dev, name, flags, &val);
}

int nvram_attr_set_str(nvram_dev *dev, const char *name, unsigned flags, const char *s)
{
	if (!s)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no string");
	struct nv_value val = {.kind = NV_STR, .p = s};
	return attr_set(dev, name, flags, &val);
}

int nvram_attr_set_bytes(nvram_dev *dev, const char *name, unsigned flags, const void *p,
			 size_t len)
{
	if (len && !p)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no bytes");
	struct nv_value val = {.kind = NV_BYTES, .p = p ? p : "", .len = len};
	return attr_set(dev, name, flags, &val);
}

int nvram_attr_remove(nvram_dev *dev, const char *name)
{
	if (!dev || !name || reserved(name))
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid attribute name");
	int rc = accept(dev);
	if (!rc)
		rc = bs_attr_remove(dev->img, dev->e, name);
	int rc2 = accept(dev);
	return rc ? rc : rc2;
}

/* The value of attribute NAME and its flags. */
static int attr_value(nvram_dev *d, const char *name, const uint8_t **v, size_t *vl,
		      unsigned *flags)
{
	if (!d || !name)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	unsigned f = 0;
	int rc = bs_attr_get(d->e, name, &f, v, vl);
	if (rc)
		return rc;
	if (flags) {
		const uint8_t *c;
		size_t cl;
		*flags = ((f & BS_ATTR_MANDATORY) ? NVRAM_ATTR_MANDATORY : 0) |
			 (nv_value_octets(*v, *vl, &c, &cl) ? NVRAM_ATTR_RW : 0);
	}
	return BS_OK;
}

static int attr_type_err(nvram_dev *d, const char *name, const char *what)
{
	return bs__err(d->img, d->e, BS_NO_OFFSET, BS_ETYPE, "attribute '%s' does not hold %s",
		       name, what);
}

int nvram_attr_get_int(nvram_dev *dev, const char *name, int64_t *out, unsigned *flags)
{
	const uint8_t *v;
	size_t vl;
	int rc = attr_value(dev, name, &v, &vl, flags);
	if (!rc && nv_value_int(v, vl, out, NULL))
		rc = attr_type_err(dev, name, "a 64-bit integer");
	return rc;
}

int nvram_attr_get_uint(nvram_dev *dev, const char *name, uint64_t *out, unsigned *flags)
{
	const uint8_t *v;
	size_t vl;
	int rc = attr_value(dev, name, &v, &vl, flags);
	if (!rc && nv_value_uint(v, vl, out, NULL))
		rc = attr_type_err(dev, name, "an unsigned 64-bit integer");
	return rc;
}

int nvram_attr_get_bool(nvram_dev *dev, const char *name, int *out, unsigned *flags)
{
	const uint8_t *v;
	size_t vl;
	int rc = attr_value(dev, name, &v, &vl, flags);
	if (!rc && nv_value_bool(v, vl, out, NULL))
		rc = attr_type_err(dev, name, "a boolean");
	return rc;
}

int nvram_attr_get_str(nvram_dev *dev, const char *name, char **out, unsigned *flags)
{
	const uint8_t *v;
	size_t vl;
	*out = NULL;
	int rc = attr_value(dev, name, &v, &vl, flags);
	if (rc)
		return rc;
	rc = nv_value_str(v, vl, out, NULL);
	if (rc == BS_ETYPE)
		return attr_type_err(dev, name, "a string");
	return rc ? bs__err(dev->img, dev->e, BS_NO_OFFSET, rc, "out of memory") : BS_OK;
}

int nvram_attr_get_bytes(nvram_dev *dev, const char *name, const uint8_t **out, size_t *len,
			 unsigned *flags)
{
	const uint8_t *v;
	size_t vl;
	int rc = attr_value(dev, name, &v, &vl, flags);
	if (!rc && nv_value_bytes(v, vl, out, len, NULL))
		rc = attr_type_err(dev, name, "an octet string");
	return rc;
}

/* ---- entry types ----------------------------------------------------------- */

int nvram_types_check(bs_image *img, const char *prefix, const char *const *known, size_t n)
{
	if (!img || !prefix || (n && !known))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	size_t pl = strlen(prefix);
	for (size_t i = 0; i < bs_count(img); i++) {
		bs_entry *e = bs_entry_at(img, i);
		const char *t = bs_entry_type(e);
		if (!t || strncmp(t, prefix, pl))
			continue;
		bool is_known = false;
		for (size_t k = 0; !is_known && k < n; k++)
			is_known = known[k] && !strcmp(known[k], t);
		if (is_known)
			continue;
		unsigned f = 0;
		const uint8_t *v;
		size_t vl;
		if (bs_attr_get(e, NVRAM_ATTR_MANDATORY_TYPE, &f, &v, &vl) == BS_OK &&
		    (f & BS_ATTR_MANDATORY))
			return bs__err(img, e, bs_entry_offset(e), BS_EUNSUPPORTED,
				       "unknown mandatory entry type '%s'", t);
	}
	return BS_OK;
}

/* ---- records in the data ----------------------------------------------------- */

/* Rewords a record error so that it names the entry. */
static int rec_err(nvram_dev *d, int rc)
{
	char msg[600];
	snprintf(msg, sizeof msg, "%s", bs_errmsg());
	return bs__err(d->img, d->e, BS_NO_OFFSET, rc, "%s", msg);
}

int nvram_get_rec(nvram_dev *dev, const char *const *known, size_t n, nvram_rec **out)
{
	if (!out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	*out = NULL;
	void *buf;
	size_t len;
	int rc = nvram_get_alloc(dev, &buf, &len);
	if (rc)
		return rc;
	rc = nvram_rec_decode(buf, len, known, n, out);
	free(buf);
	return rc ? rec_err(dev, rc) : BS_OK;
}

int nvram_put_rec(nvram_dev *dev, const nvram_rec *rec, const char *const *known, size_t n)
{
	if (!dev || !rec)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	void *buf;
	size_t len;
	nvram_rec *cur = NULL;
	uint8_t *enc = NULL;
	size_t enc_len;
	int rc = nvram_get_alloc(dev, &buf, &len);
	if (rc)
		return rc;
	rc = nvram_rec_decode(buf, len, known, n, &cur);
	free(buf);
	if (rc)
		return rec_err(dev, rc);
	rc = nv_rec_encode_merged(rec, cur, &enc, &enc_len);
	nvram_rec_free(cur);
	if (rc)
		return rec_err(dev, rc);
	rc = nvram_put(dev, enc, enc_len);
	free(enc);
	return rc;
}
