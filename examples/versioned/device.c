/* device.c - a small device in three versions, from this one source.
 *
 * Build with -DDEVICE_VERSION=1, 2 or 3 (examples/examples.mk makes
 * build/examples/versioned-v1, -v2, -v3).  The device never writes a version
 * number; each version only adds items, and the item's kind decides what
 * older versions do with it (docs/DEVICE-API.md):
 *
 *   level        v1                 v2 adds (optional)      v3 adds (mandatory)
 *   field        a (int), b (str)   c (str, default "none") d (int)
 *   attribute    writes (rw int)    v2.serial (ro str)      v3.layout (ro int)
 *   entry type   versioned.state    versioned.log           versioned.keys
 *
 * usage: versioned-vN IMAGE write A B [C [D]] [--new=field,attr,type]
 *        versioned-vN IMAGE read | dump
 * --new (v3 only) limits which mandatory items v3 adds (default: all three).
 * Exit status 0 on success, 1 on a refused or failed operation, 2 on usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/blobstore.h>
#include <blobstore/nvram.h>

#ifndef DEVICE_VERSION
#error "build with -DDEVICE_VERSION=1, 2 or 3"
#endif

#define TYPE_STATE "versioned.state"
#define TYPE_LOG "versioned.log"
#define TYPE_KEYS "versioned.keys"
#define DEV_NAME "dev0"

/* What this version knows, at every level. */
static const char *const known_fields[] = {
	"a", "b",
#if DEVICE_VERSION >= 2
	"c",
#endif
#if DEVICE_VERSION >= 3
	"d",
#endif
};
static const char *const known_attrs[] = {
	"writes",
#if DEVICE_VERSION >= 2
	"v2.serial",
#endif
#if DEVICE_VERSION >= 3
	"v3.layout",
#endif
};
static const char *const known_types[] = {
	TYPE_STATE,
#if DEVICE_VERSION >= 2
	TYPE_LOG,
#endif
#if DEVICE_VERSION >= 3
	TYPE_KEYS,
#endif
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

/* A field an older writer may not have written: absent means DEF. */
static int field_int(const bs_record *r, const char *name, int64_t def, int64_t *out)
{
	*out = def; /* a getter leaves it alone when the field is absent */
	int rc = bs_record_get_int(r, name, out);
	return rc == BS_ENOENT ? BS_OK : rc;
}

static int field_str(const bs_record *r, const char *name, const char *def, char **out)
{
	int rc = bs_record_get_str(r, name, out);
	if (rc == BS_ENOENT && !(*out = strdup(def)))
		return BS_ENOMEM;
	return rc == BS_ENOENT ? BS_OK : rc;
}

static int fail(const char *what)
{
	fprintf(stderr, "versioned-v%d: %s: %s\n", DEVICE_VERSION, what, last_error());
	return 1;
}

static void hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

/* Opens the image and the device, refusing what this version cannot read. */
static int open_device(const char *path, unsigned bsflags, bs_image **img, bs_device **dev)
{
	int rc = bs_image_open(path, bsflags, img);
	if (rc)
		return fail("open image");
	rc = bs_device_check_types(*img, "versioned.", known_types, COUNT(known_types));
	if (!rc) {
		struct bs_device_opts o = {.version = BS_DEVICE_OPTS_VERSION, .capacity = 256, .known_attrs = known_attrs,
				       .nknown_attrs = COUNT(known_attrs)};
		if (!(bsflags & BS_OPEN_RDONLY))
			o.flags = BS_DEVICE_CREATE;
		rc = bs_device_open(*img, TYPE_STATE, DEV_NAME, &o, dev);
	}
	if (rc) {
		fail("refused");
		bs_image_close(*img);
		return 1;
	}
	return 0;
}

static int cmd_write(const char *path, int argc, char **argv)
{
	unsigned add = 7; /* v3: 1 field, 2 attribute, 4 entry type */
	int nargs = 0;
	const char *args[4] = {0};
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "--new=", 6)) {
			add = 0;
			add |= strstr(argv[i], "field") ? 1u : 0u;
			add |= strstr(argv[i], "attr") ? 2u : 0u;
			add |= strstr(argv[i], "type") ? 4u : 0u;
		} else if (nargs < 4) {
			args[nargs++] = argv[i];
		} else {
			return 2;
		}
	}
	if (nargs < 2)
		return 2;
	bs_image *img;
	bs_device *dev;
	if (open_device(path, BS_OPEN_CREATE, &img, &dev))
		return 1;
	int rc;
	bs_record *cur = NULL, *w = NULL;
	/* Reading first refuses a record with an unknown mandatory field
	 * before anything is written. */
	if ((rc = bs_device_get_record(dev, known_fields, COUNT(known_fields), &cur))) {
		fail("refused");
		goto out;
	}
	if ((rc = bs_record_new(&w)))
		goto err;
	if ((rc = bs_record_set_int(w, "a", BS_ATTR_MANDATORY, strtoll(args[0], NULL, 0))) ||
	    (rc = bs_record_set_str(w, "b", 0, args[1])))
		goto err;
#if DEVICE_VERSION >= 2
	if (nargs > 2 && (rc = bs_record_set_str(w, "c", 0, args[2])))
		goto err;
#endif
#if DEVICE_VERSION >= 3
	if ((add & 1) && (rc = bs_record_set_int(w, "d", BS_ATTR_MANDATORY,
						  nargs > 3 ? strtoll(args[3], NULL, 0) : 0)))
		goto err;
#endif
	/* Unknown optional fields of the stored record are merged back. */
	if ((rc = bs_device_put_record(dev, w, known_fields, COUNT(known_fields))))
		goto err;
	int64_t writes = 0;
	bs_attr_get_int(bs_device_entry(dev), "writes", &writes);
	if ((rc = bs_device_attr_set_int(dev, "writes", BS_ATTR_RW, writes + 1)))
		goto err;
#if DEVICE_VERSION >= 2
	char *serial = NULL;
	if (bs_attr_get_str(bs_device_entry(dev), "v2.serial", &serial) == BS_ENOENT &&
	    (rc = bs_device_attr_set_str(dev, "v2.serial", 0, "SN-0002")))
		goto err;
	free(serial);
	{
		bs_device *log;
		if ((rc = bs_device_open(img, TYPE_LOG, DEV_NAME, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 64, .flags = BS_DEVICE_CREATE}, &log)))
			goto err;
		rc = bs_device_put(log, "written by v2", 13);
		bs_device_close(log);
		if (rc)
			goto err;
	}
#endif
#if DEVICE_VERSION >= 3
	int64_t layout;
	if ((add & 2) && bs_attr_get_int(bs_device_entry(dev), "v3.layout", &layout) == BS_ENOENT &&
	    (rc = bs_device_attr_set_int(dev, "v3.layout", BS_ATTR_MANDATORY, 3)))
		goto err;
	if (add & 4) {
		bs_device *keys;
		if ((rc = bs_device_open(img, TYPE_KEYS, DEV_NAME, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 64, .flags = BS_DEVICE_CREATE | BS_DEVICE_MANDATORY}, &keys)))
			goto err;
		rc = bs_device_put(keys, "key material", 12);
		bs_device_close(keys);
		if (rc)
			goto err;
	}
#else
	(void)add;
#endif
	rc = 0;
	goto out;
err:
	fail("write");
out:
	bs_record_free(cur);
	bs_record_free(w);
	bs_device_close(dev);
	bs_image_close(img);
	return rc ? 1 : 0;
}

static int cmd_read(const char *path, int dump)
{
	bs_image *img;
	bs_device *dev;
	if (open_device(path, BS_OPEN_RDONLY, &img, &dev))
		return 1;
	bs_record *r = NULL;
	int rc = bs_device_get_record(dev, known_fields, COUNT(known_fields), &r);
	if (rc) {
		fail("refused");
		goto out;
	}
	int64_t a;
	char *b = NULL;
	if ((rc = field_int(r, "a", 0, &a)) || (rc = field_str(r, "b", "", &b))) {
		fail("read");
		goto out;
	}
	printf("a=%" PRId64 "\nb=%s\n", a, b);
	free(b);
#if DEVICE_VERSION >= 2
	char *c = NULL;
	if ((rc = field_str(r, "c", "none", &c))) {
		fail("read");
		goto out;
	}
	printf("c=%s\n", c);
	free(c);
#endif
#if DEVICE_VERSION >= 3
	int64_t d;
	if ((rc = field_int(r, "d", 0, &d))) {
		fail("read");
		goto out;
	}
	printf("d=%" PRId64 "\n", d);
#endif
	int64_t writes = 0;
	bs_attr_get_int(bs_device_entry(dev), "writes", &writes);
	printf("writes=%" PRId64 "\n", writes);
	if (!dump)
		goto out;
	/* Every field, attribute and family entry, known or not, with its
	 * encoding: what the tests compare byte for byte. */
	for (size_t i = 0; i < bs_record_count(r); i++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		unsigned fl;
		bs_record_at(r, i, &name, &v, &vl, &fl);
		printf("field %s %s %s ", name, fl & BS_ATTR_MANDATORY ? "mandatory" : "optional",
		       fl & BS_ATTR_KNOWN ? "known" : "unknown");
		hex(v, vl);
		printf("\n");
	}
	bs_entry *e = bs_device_entry(dev);
	for (int m = 1; m >= 0; m--)
		for (size_t i = 0; i < bs_attr_count(e); i++) {
			const char *name;
			const uint8_t *v;
			size_t vl;
			unsigned fl_;
			bs_attr_at(e, i, &name, &v, &vl, &fl_);
			if (((fl_ & BS_ATTR_MANDATORY) != 0) != (m != 0))
				continue;
			if (!strncmp(name, "bs.", 3))
				continue;
			printf("attr %s %s ", name, m ? "mandatory" : "optional");
			hex(v, vl);
			printf("\n");
		}
	for (bs_entry *x = NULL; (x = bs_entry_next(img, x, BS_ITER_LIBRARY));) {
		if (!strncmp(bs_entry_type(x), "versioned.", 10))
			printf("entry %s\n", bs_entry_type(x));
	}
out:
	bs_record_free(r);
	bs_device_close(dev);
	bs_image_close(img);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[2], "write")) {
		int rc = cmd_write(argv[1], argc - 3, argv + 3);
		if (rc != 2)
			return rc;
	} else if (argc == 3 && (!strcmp(argv[2], "read") || !strcmp(argv[2], "dump"))) {
		return cmd_read(argv[1], !strcmp(argv[2], "dump"));
	}
	fprintf(stderr,
		"usage: versioned-v%d IMAGE write A B [C [D]]%s\n"
		"       versioned-v%d IMAGE read|dump\n",
		DEVICE_VERSION, DEVICE_VERSION >= 3 ? " [--new=field,attr,type]" : "",
		DEVICE_VERSION);
	return 2;
}
