/* common.c - helpers shared by the unit tests (see common.h).  Builders
 * here encode by hand, independently of the library's encoder, so that the
 * tests can also produce what the library never would. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <blobstore/nbd.h>
#include <blobstore/rbd.h>

#include "common.h"
#include "der/der.h"         /* the DER encoders, for building test input */
#include "storage/storage.h" /* the backend table, for raw access */

bool t_quick(void)
{
	const char *q = getenv("BS_TEST_QUICK");
	return q && *q && strcmp(q, "0");
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
}

static void buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return;
	size_t c = b->cap ? b->cap : 256;
	while (c - b->len < n)
		c *= 2;
	uint8_t *p = realloc(b->p, c);
	assert_non_null(p);
	b->p = p;
	b->cap = c;
}

void buf_put(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n + 1);
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

void buf_bytes(struct buf *b, size_t n, ...)
{
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)va_arg(ap, int);
		buf_put(b, &c, 1);
	}
	va_end(ap);
}

void buf_hdr(struct buf *b, uint8_t tag, size_t len)
{
	uint8_t h[6];
	size_t n = 0;
	h[n++] = tag;
	if (len < 0x80) {
		h[n++] = (uint8_t)len;
	} else {
		size_t k = 0;
		for (size_t v = len; v; v >>= 8)
			k++;
		h[n++] = (uint8_t)(0x80 | k);
		for (size_t i = k; i > 0; i--)
			h[n++] = (uint8_t)(len >> (8 * (i - 1)));
	}
	buf_put(b, h, n);
}

void buf_tlv(struct buf *b, uint8_t tag, const void *c, size_t n)
{
	buf_hdr(b, tag, n);
	buf_put(b, c, n);
}

void buf_str(struct buf *b, uint8_t tag, const char *s)
{
	buf_tlv(b, tag, s, strlen(s));
}

void t_attr_flag(struct buf *set, const char *name)
{
	buf_str(set, 0x16, name);
}

void t_attr_val(struct buf *set, const char *name, const void *der, size_t len)
{
	struct buf in = {0};
	buf_str(&in, 0x16, name);
	buf_put(&in, der, len);
	buf_tlv(set, 0x30, in.p, in.len);
	buf_free(&in);
}

void t_attr_slots(struct buf *set, const char *alg)
{
	struct buf v = {0};
	buf_str(&v, 0x16, alg);
	t_attr_val(set, "bs.slots", v.p, v.len);
	buf_free(&v);
}

void t_build_entry(struct buf *out, const struct t_entry *e)
{
	struct buf nv = {0}, en = {0};
	buf_tlv(&nv, 0x16, e->type, e->type_len ? e->type_len : strlen(e->type));
	buf_tlv(&nv, 0x31, e->mand, e->mand_len);
	buf_tlv(&nv, 0x31, e->opt, e->opt_len);
	buf_tlv(&nv, 0x04, e->data, e->data_len);
	buf_tlv(&en, 0x30, nv.p, nv.len);
	if (e->name)
		buf_tlv(&en, 0x0c, e->name, e->name_len ? e->name_len : strlen(e->name));
	buf_tlv(out, 0x30, en.p, en.len);
	buf_free(&nv);
	buf_free(&en);
}

void t_raw_entry(struct buf *out, const char *type, const char *name, const char *data)
{
	struct t_entry e = {.type = type, .name = name, .data = (const uint8_t *)data,
			    .data_len = strlen(data)};
	t_build_entry(out, &e);
}

uint32_t t_crc32c_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

void t_slot_put(uint8_t *slot, uint64_t gen, const void *data, size_t len)
{
	for (int i = 0; i < 8; i++)
		slot[i] = (uint8_t)(gen >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		slot[8 + i] = (uint8_t)((uint64_t)len >> (24 - 8 * i));
	uint32_t c = t_crc32c_ref(0, slot, 12);
	c = t_crc32c_ref(c, data, len);
	for (int i = 0; i < 4; i++)
		slot[12 + i] = (uint8_t)(c >> (24 - 8 * i));
	if (len)
		memcpy(slot + 16, data, len);
}

void t_slotted_entry(struct buf *out, const char *type, const char *name, size_t capacity,
		     const void *data, size_t len)
{
	struct buf mand = {0};
	t_attr_slots(&mand, "crc32c");
	size_t area = 2 * (16 + capacity);
	uint8_t *d = calloc(1, area);
	assert_non_null(d);
	assert_true(len <= capacity);
	t_slot_put(d, 1, data, len);
	struct t_entry e = {.type = type, .name = name, .mand = mand.p, .mand_len = mand.len,
			    .data = d, .data_len = area};
	t_build_entry(out, &e);
	free(d);
	buf_free(&mand);
}

void t_image_begin(struct buf *img)
{
	static const uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	struct buf opt = {0}, v = {0};
	buf_tlv(&v, 0x04, id, sizeof id);
	t_attr_val(&opt, "bs.id", v.p, v.len);
	struct t_entry e = {.type = "bs.image", .opt = opt.p, .opt_len = opt.len};
	buf_bytes(img, 2, 0x31, 0x80);
	t_build_entry(img, &e);
	buf_free(&opt);
	buf_free(&v);
}

void t_image_end(struct buf *img)
{
	buf_bytes(img, 2, 0, 0);
}

int t_open_mem(const void *img, size_t len, unsigned flags, bs_image **out,
	       struct bs_backend **bep)
{
	struct bs_backend *be;
	int rc = bs_backend_mem(img, len, &be);
	if (rc)
		return rc;
	if (bep)
		*bep = be;
	return bs_image_open_backend(be, "mem.img", flags, out);
}

uint8_t *t_mem_copy(const struct bs_backend *be, size_t *len)
{
	const uint8_t *d = t_mem_data(be, len);
	uint8_t *c = malloc(*len ? *len : 1);
	assert_non_null(c);
	if (*len)
		memcpy(c, d, *len);
	return c;
}

void t_assert_data(bs_image *img, const char *type, const char *name, const void *data,
		   size_t len)
{
	bs_entry *e;
	int rc = bs_entry_find(img, type, name, &e);
	if (rc)
		fail_msg("%s/%s: %s", type, name ? name : "-", last_error());
	void *got;
	size_t gl;
	rc = bs_entry_read_alloc(e, &got, &gl);
	if (rc)
		fail_msg("%s/%s: %s", type, name ? name : "-", last_error());
	assert_int_equal(gl, len);
	if (len)
		assert_memory_equal(got, data, len);
	free(got);
}

char *t_tmppath(const char *what)
{
	const char *d = getenv("TMPDIR");
	if (!d || !*d)
		d = "/tmp";
	size_t n = strlen(d) + strlen(what) + 64;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/bs-unit-%ld-%s", d, (long)getpid(), what);
	return p;
}

uint64_t t_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

void t_fill(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = p;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = t_rand(&s);
		for (size_t k = 0; k < 8 && i + k < n; k++)
			b[i + k] = (uint8_t)(r >> (8 * k));
	}
}

void t_count_cb(void *ctx, const bs_entry *e, uint64_t offset, int code, const char *msg)
{
	(void)e;
	(void)offset;
	(void)msg;
	if (code)
		++*(int *)ctx;
}

/* ---- stores over every backend ----------------------------------------- */

struct t_store {
	enum t_kind kind;
	char *label;       /* what bs_image_open() gets */
	char *file;        /* backing file, or NULL */
	char *sock;        /* nbdkit's socket, or NULL */
	char loopdev[64];  /* attached loop device, or "" */
	pid_t nbdkit;
	struct bs_backend *mem; /* T_MEM: the open image's backend */
};

static const char *const kind_names[T_KINDS] = {
	[T_MEM] = "memory",
	[T_FILE] = "file",
	[T_FIXED] = "fixed-size file (blk://, 4 KiB blocks)",
	[T_LOOP] = "loop device (O_DIRECT)",
	[T_NBD_MEM] = "NBD (nbdkit memory)",
	[T_NBD_FILE] = "NBD (nbdkit file)",
	[T_NBD_BLOCK] = "NBD (nbdkit memory, 512-octet blocks)",
	[T_RBD] = "RBD (Ceph cluster of $BS_TEST_RBD_CONF)",
};
/* What BS_TEST_STORES calls them. */
static const char *const kind_keys[T_KINDS] = {
	[T_MEM] = "mem", [T_FILE] = "file", [T_FIXED] = "fixed", [T_LOOP] = "loop",
	[T_NBD_MEM] = "nbd-mem", [T_NBD_FILE] = "nbd-file", [T_NBD_BLOCK] = "nbd-block",
	[T_RBD] = "rbd",
};

/* Whether $BS_TEST_STORES (unset: every kind) names K. */
static bool kind_selected(enum t_kind k)
{
	const char *l = getenv("BS_TEST_STORES");
	if (!l || !*l)
		return true;
	size_t n = strlen(kind_keys[k]);
	for (const char *p = l; (p = strstr(p, kind_keys[k])); p += n)
		if ((p == l || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

const char *t_kind_name(enum t_kind k)
{
	return k < T_KINDS ? kind_names[k] : "?";
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	assert_non_null(p);
	return p;
}

static char *xprintf(const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, fmt, a, b);
	return p;
}

static bool make_file(const char *path, off_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && ftruncate(fd, size) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Starts nbdkit on a UNIX socket with ARGV (after the common options). */
static bool start_nbdkit(struct t_store *s, const char *const *args)
{
	s->sock = t_tmppath(s->kind == T_NBD_FILE ? "nbdf.sock" : "nbdm.sock");
	unlink(s->sock);
	const char *argv[16] = {"nbdkit", "--unix", s->sock, "--foreground", "--exit-with-parent"};
	size_t n = 5;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp("nbdkit", (char *const *)argv);
		_exit(127);
	}
	s->nbdkit = pid;
	for (int i = 0; i < 500; i++) {
		struct stat st;
		if (stat(s->sock, &st) == 0)
			return true;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			s->nbdkit = 0;
			return false;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

struct t_store *t_store_new(enum t_kind k)
{
	struct t_store *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->kind = k;
	const char *why = NULL;
	static unsigned rbd_seq;
	if (!kind_selected(k))
		k = T_KINDS, why = "not in $BS_TEST_STORES";
	switch (k) {
	case T_MEM:
		s->label = xstrdup("mem.img");
		break;
	case T_FILE:
		s->file = t_tmppath("store.img");
		s->label = xstrdup(s->file);
		break;
	case T_FIXED:
		s->file = t_tmppath("fixed.img");
		s->label = xprintf("blk://%s?size=4M&bs=4096", s->file, NULL);
		break;
	case T_LOOP: {
		if (geteuid() != 0) {
			why = "not root";
			break;
		}
		s->file = t_tmppath("loop.img");
		if (!make_file(s->file, 8 << 20)) {
			why = "cannot create the backing file";
			break;
		}
		char *cmd = xprintf("losetup -f --show '%s' 2>/dev/null", s->file, NULL);
		FILE *p = popen(cmd, "r");
		free(cmd);
		if (!p || !fgets(s->loopdev, sizeof s->loopdev, p))
			s->loopdev[0] = 0;
		if (p && pclose(p) != 0)
			s->loopdev[0] = 0;
		s->loopdev[strcspn(s->loopdev, "\n")] = 0;
		if (strncmp(s->loopdev, "/dev/loop", 9)) {
			s->loopdev[0] = 0;
			why = "losetup -f --show failed";
			break;
		}
		s->label = xprintf("blk://%s?direct=1", s->loopdev, NULL);
		break;
	}
	case T_NBD_MEM:
	case T_NBD_BLOCK: {
		const char *mem[] = {"memory", "size=64M", NULL};
		const char *blk[] = {"--filter=blocksize-policy", "memory", "size=64M",
				     "blocksize-minimum=512", "blocksize-preferred=4096",
				     "blocksize-maximum=1M", "blocksize-error-policy=error", NULL};
		if (!start_nbdkit(s, k == T_NBD_MEM ? mem : blk)) {
			why = "nbdkit did not start";
			break;
		}
		s->label = xprintf("nbd+unix:///?socket=%s", s->sock, NULL);
		break;
	}
	case T_NBD_FILE: {
		s->file = t_tmppath("nbd-file.img");
		char *arg = xprintf("file=%s", s->file, NULL);
		const char *args[] = {"file", arg, NULL};
		bool ok = make_file(s->file, 16 << 20) && start_nbdkit(s, args);
		free(arg);
		if (!ok) {
			why = "nbdkit did not start";
			break;
		}
		s->label = xprintf("nbd+unix:///?socket=%s", s->sock, NULL);
		break;
	}
	case T_RBD: {
		/* A new image per store, created by the first open (size=). */
		const char *conf = getenv("BS_TEST_RBD_CONF");
		if (!conf || !*conf) {
			why = "no Ceph cluster (BS_TEST_RBD_CONF unset; tests/integration/test_rbd.sh "
			      "starts one and runs this suite on it)";
			break;
		}
		char name[64];
		snprintf(name, sizeof name, "store-%ld-%u", (long)getpid(), rbd_seq++);
		size_t n = strlen(name) + strlen(conf) + 64;
		s->label = malloc(n);
		assert_non_null(s->label);
		snprintf(s->label, n, "rbd://rbd/%s?conf=%s&size=4M&timeout=20", name, conf);
		break;
	}
	default:
		if (!why)
			why = "unknown kind";
	}
	if (why) {
		print_message("skipping %s: %s\n", t_kind_name(s->kind), why);
		t_store_free(s);
		return NULL;
	}
	return s;
}

void t_store_free(struct t_store *s)
{
	if (!s)
		return;
	if (s->nbdkit > 0) {
		/* nbdkit waits for open connections on SIGTERM, and a failed
		 * test may leave one open: give it 5 s, then kill it, so a
		 * failure is reported instead of hanging the run. */
		kill(s->nbdkit, SIGTERM);
		int tries = 0;
		while (waitpid(s->nbdkit, NULL, WNOHANG) == 0) {
			if (++tries == 500) {
				kill(s->nbdkit, SIGKILL);
				waitpid(s->nbdkit, NULL, 0);
				break;
			}
			usleep(10000);
		}
	}
	if (s->loopdev[0]) {
		char *cmd = xprintf("losetup -d '%s'", s->loopdev, NULL);
		if (system(cmd) != 0)
			print_error("cannot detach %s\n", s->loopdev);
		free(cmd);
	}
	if (s->sock)
		unlink(s->sock);
	if (s->file)
		unlink(s->file);
	free(s->sock);
	free(s->file);
	free(s->label);
	free(s);
}

const char *t_store_label(const struct t_store *s)
{
	return s->label;
}

static void must(int rc, const char *what)
{
	if (rc)
		fail_msg("%s: %s", what, last_error());
}

bs_image *t_store_fresh(struct t_store *s)
{
	bs_image *im;
	if (s->kind == T_MEM) {
		must(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &s->mem), "fresh memory image");
		return im;
	}
	if (s->kind == T_FILE) {
		unlink(s->file);
	} else {
		/* Blank: the first octets zero (the recovery area is cleared by
		 * the format itself). */
		static const uint8_t zeros[4096];
		struct bs_backend *be;
		must(bs_backend_open(s->label, BS_OPEN_CREATE, &be), "blank the storage");
		must(be->ops->write_at(be->ctx, zeros, sizeof zeros, 0), "blank the storage");
		must(be->ops->sync(be->ctx), "blank the storage");
		bs_backend_free(be);
	}
	must(bs_image_open(s->label, BS_OPEN_CREATE, &im), "format");
	return im;
}

void t_store_reopen(struct t_store *s, bs_image **im, unsigned flags)
{
	if (s->kind == T_MEM) {
		size_t l;
		uint8_t *c = t_mem_copy(s->mem, &l);
		bs_image_close(*im);
		must(t_open_mem(c, l, flags, im, &s->mem), "reopen");
		free(c);
		return;
	}
	bs_image_close(*im);
	*im = NULL;
	must(bs_image_open(s->label, flags, im), "reopen");
}

uint8_t *t_store_copy(struct t_store *s, bs_image *im, size_t *len)
{
	if (s->kind == T_MEM)
		return t_mem_copy(s->mem, len);
	struct bs_image_stat st = BS_IMAGE_STAT_INIT;
	must(bs_image_stat(im, &st), "stat");
	size_t n = (size_t)st.dir_end;
	uint8_t *c = malloc(n ? n : 1);
	assert_non_null(c);
	struct bs_backend *be;
	/* Read-only: takes no lock, so it works beside the open writer. */
	must(bs_backend_open(s->label, BS_OPEN_RDONLY, &be), "open for a raw copy");
	must(be->ops->read_at(be->ctx, c, n, 0), "raw copy");
	bs_backend_free(be);
	*len = n;
	return c;
}

void t_store_damage(struct t_store *s, bs_image **im, uint64_t off, uint8_t xor)
{
	if (s->kind == T_MEM) {
		size_t l;
		uint8_t *c = t_mem_copy(s->mem, &l);
		bs_image_close(*im);
		assert_true(off < l);
		c[off] ^= xor;
		must(t_open_mem(c, l, 0, im, &s->mem), "reopen after damage");
		free(c);
		return;
	}
	bs_image_close(*im);
	*im = NULL;
	struct bs_backend *be;
	uint8_t b;
	must(bs_backend_open(s->label, 0, &be), "open to damage");
	must(be->ops->read_at(be->ctx, &b, 1, off), "read to damage");
	b ^= xor;
	must(be->ops->write_at(be->ctx, &b, 1, off), "damage");
	must(be->ops->sync(be->ctx), "damage");
	bs_backend_free(be);
	must(bs_image_open(s->label, 0, im), "reopen after damage");
}

/* ---- shorthands over the public API ------------------------------------------ */

const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

bs_entry *t_entry_at(bs_image *img, size_t i)
{
	bs_entry *e = bs_entry_next(img, NULL, BS_ITER_LIBRARY);
	while (e && i--)
		e = bs_entry_next(img, e, BS_ITER_LIBRARY);
	return e;
}

/* Index of attribute I of one set in the flat list (mandatory first). */
static size_t set_base(const bs_entry *e, int mandatory, size_t *n)
{
	size_t nm = 0, total = bs_attr_count(e);
	for (size_t i = 0; i < total; i++) {
		const char *name;
		const uint8_t *v;
		size_t vl;
		unsigned f;
		if (bs_attr_at(e, i, &name, &v, &vl, &f) == BS_OK && (f & BS_ATTR_MANDATORY))
			nm++;
	}
	*n = mandatory ? nm : total - nm;
	return mandatory ? 0 : nm;
}

size_t t_attr_count(const bs_entry *e, int mandatory)
{
	size_t n;
	set_base(e, mandatory, &n);
	return n;
}

int t_attr_at(const bs_entry *e, int mandatory, size_t i, const char **name,
	      const uint8_t **value, size_t *value_len)
{
	size_t n, base = set_base(e, mandatory, &n);
	if (i >= n)
		return BS_ENOENT;
	return bs_attr_at(e, base + i, name, value, value_len, NULL);
}

size_t t_der_int(int64_t v, uint8_t *buf, size_t cap)
{
	return bs__der_encode_int(v, buf, cap);
}

size_t t_der_bool(int v, uint8_t *buf, size_t cap)
{
	return bs__der_encode_bool(v, buf, cap);
}

size_t t_der_utf8(const char *s, uint8_t *buf, size_t cap)
{
	return bs__der_encode_utf8(s, buf, cap);
}

size_t t_der_octets(const void *p, size_t len, uint8_t *buf, size_t cap)
{
	return bs__der_encode_octets(p, len, buf, cap);
}

/* The stored flags of device attribute NAME. */
static int dev_flags(bs_device *d, const char *name, unsigned *flags)
{
	const uint8_t *v, *c;
	size_t vl, cl;
	unsigned f;
	int rc = bs_attr_get(bs_device_entry(d), name, &v, &vl, &f);
	if (!rc && flags)
		*flags = (f & BS_ATTR_MANDATORY) |
			 (bs_value_decode_bytes(v, vl, &c, &cl, NULL) == BS_OK ? BS_ATTR_RW : 0);
	return rc;
}

int t_dev_get_int(bs_device *d, const char *name, int64_t *out, unsigned *flags)
{
	int rc = bs_attr_get_int(bs_device_entry(d), name, out);
	return rc ? rc : dev_flags(d, name, flags);
}

int t_dev_get_uint(bs_device *d, const char *name, uint64_t *out, unsigned *flags)
{
	int rc = bs_attr_get_uint(bs_device_entry(d), name, out);
	return rc ? rc : dev_flags(d, name, flags);
}

int t_dev_get_bool(bs_device *d, const char *name, int *out, unsigned *flags)
{
	int rc = bs_attr_get_bool(bs_device_entry(d), name, out);
	return rc ? rc : dev_flags(d, name, flags);
}

int t_dev_get_str(bs_device *d, const char *name, char **out, unsigned *flags)
{
	int rc = bs_attr_get_str(bs_device_entry(d), name, out);
	return rc ? rc : dev_flags(d, name, flags);
}

int t_dev_get_bytes(bs_device *d, const char *name, const uint8_t **out, size_t *len,
		    unsigned *flags)
{
	int rc = bs_attr_get_bytes(bs_device_entry(d), name, out, len);
	return rc ? rc : dev_flags(d, name, flags);
}

int t_rec_get_int(const bs_record *r, const char *name, int64_t def, int64_t *out)
{
	*out = def;
	int rc = bs_record_get_int(r, name, out);
	return rc == BS_ENOENT ? BS_OK : rc;
}

int t_rec_get_bool(const bs_record *r, const char *name, int def, int *out)
{
	*out = def;
	int rc = bs_record_get_bool(r, name, out);
	return rc == BS_ENOENT ? BS_OK : rc;
}

int t_rec_get_str(const bs_record *r, const char *name, const char *def, char **out)
{
	*out = NULL;
	int rc = bs_record_get_str(r, name, out);
	if (rc == BS_ENOENT) {
		*out = def ? strdup(def) : NULL;
		return BS_OK;
	}
	return rc;
}

int t_rec_get_bytes(const bs_record *r, const char *name, const uint8_t *def, size_t deflen,
		    const uint8_t **out, size_t *len)
{
	*out = def;
	*len = deflen;
	int rc = bs_record_get_bytes(r, name, out, len);
	return rc == BS_ENOENT ? BS_OK : rc;
}

int t_rec_field_at(const bs_record *r, size_t i, const char **name, const uint8_t **value,
		   size_t *len, unsigned *flags, int *known)
{
	unsigned f = 0;
	int rc = bs_record_at(r, i, name, value, len, &f);
	if (!rc && flags)
		*flags = f & BS_ATTR_MANDATORY;
	if (!rc && known)
		*known = (f & BS_ATTR_KNOWN) != 0;
	return rc;
}

const char *t_kdf_name(const bs_image *img)
{
	enum bs_kdf k;
	return bs_image_kdf(img, &k) ? NULL : bs_kdf_name(k);
}

/* Every test program takes NBD URIs, as the command does. */
__attribute__((constructor)) static void register_nbd(void)
{
	if (bs_nbd_register())
		abort();
	if (bs_rbd_register())
		abort();
}

const uint8_t *t_mem_data(const struct bs_backend *be, size_t *len)
{
	const uint8_t *d = bs_backend_mem_data(be, len);
	return d ? d : fault_backend_data(be, len);
}
