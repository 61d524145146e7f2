/* rbd.c - images on Ceph RBD images, through librbd.
 *
 * Built into a library of its own (libblobstore-rbd, blobstore/rbd.h) on
 * the public backend table and error calls only.  librbd.so.1 and
 * librados.so.2 are loaded with dlopen() at the first open of an RBD image:
 * linked directly, their start-up (32 shared objects and Ceph's static
 * constructors) made every run of a program that links this library about
 * 6.6 ms slower (7.5 ms instead of 0.9 ms for an empty program, measured on
 * Debian 12), whether it named an RBD image or not.  The prototypes still
 * come from librbd's headers, so every call is type-checked.
 *
 * Block semantics, as in the block-device backend (storage/blk.c): the
 * storage has the RBD image's size and never grows on a write (BS_ENOSPC),
 * so the library keeps its recovery area in the last 4096 octets;
 * bs_image_reserve() grows the image with rbd_resize2() (never shrinking),
 * through the reserve operation.  Writes need no alignment (RADOS objects
 * are byte-addressed).  Sync is rbd_flush(): with librbd's cache in
 * writeback mode a write reaches the OSDs only then, as with a disk's
 * volatile cache, which is what the library's commits assume.
 *
 * The writer lock is RBD's exclusive lock in its explicit mode
 * (rbd_lock_acquire): the owner refuses to hand it over, so a second
 * writer on any host gets -EROFS (BS_ELOCKED), and this handle never takes
 * the lock behind the library's back.  Losing the lock (another client
 * broke it after this one stopped answering, which blocklists this client:
 * -ESHUTDOWN) makes every later write BS_ELOCKED: the image's view in this
 * process may be stale, and only a reopen is safe.
 *
 * Every network wait is bounded by the timeout option: connecting
 * (client_mount_timeout), each OSD operation (rados_osd_op_timeout), each
 * monitor command (rados_mon_op_timeout).  The one wait librbd does not
 * bound is a lock request to a holder that died: it lasts until the
 * cluster expires the holder's watch (osd_client_watch_timeout). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>
#include <rbd/features.h>
#include <rbd/librbd.h>

#include <blobstore/rbd.h>
#include <blobstore/sys/backend.h>

/* Largest single read or write handed to librbd (its C calls return an
 * int-sized count). */
#define RBD_IO_MAX (16u << 20)
/* Option ranges, in seconds. */
#define RBD_TIMEOUT_DEFAULT 30u
#define RBD_TIMEOUT_MAX 3600u
#define RBD_LOCK_WAIT_DEFAULT 60u
#define RBD_LOCK_WAIT_MAX 86400u
/* A URI longer than this is refused (paths and names inside it are
 * bounded by it). */
#define RBD_URI_MAX 4096u
/* Features of the images this backend creates. */
#define RBD_NEW_FEATURES (RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK)

/* ---- librbd and librados, loaded on first use ------------------------------------ */

#define RBD_CALLS(X)                                                                         \
	X(rados_create) X(rados_conf_read_file) X(rados_conf_parse_env) X(rados_conf_set)     \
	X(rados_connect) X(rados_shutdown) X(rados_ioctx_create) X(rados_ioctx_destroy)       \
	X(rados_ioctx_set_namespace) X(rbd_open) X(rbd_open_read_only) X(rbd_close)           \
	X(rbd_create4) X(rbd_image_options_create) X(rbd_image_options_destroy)               \
	X(rbd_image_options_set_uint64) X(rbd_get_size) X(rbd_get_features) X(rbd_read)       \
	X(rbd_write) X(rbd_flush) X(rbd_resize2) X(rbd_lock_acquire) X(rbd_lock_release)      \
	X(rbd_lock_get_owners) X(rbd_lock_get_owners_cleanup)

static struct {
#define RBD_DECLARE(f) __typeof__(f) *f;
	RBD_CALLS(RBD_DECLARE)
#undef RBD_DECLARE
} lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static bool lib_ok;
static char lib_error[256];

static void lib_load(void)
{
	/* Never closed: librados keeps threads and exit handlers. */
	void *rbd = dlopen("librbd.so.1", RTLD_NOW | RTLD_LOCAL);
	void *rados = rbd ? dlopen("librados.so.2", RTLD_NOW | RTLD_LOCAL) : NULL;
	if (!rbd || !rados) {
		const char *e = dlerror();
		snprintf(lib_error, sizeof lib_error, "%s", e ? e : "dlopen failed");
		return;
	}
#define RBD_RESOLVE(f)                                                                       \
	lib.f = (__typeof__(lib.f))dlsym(strncmp(#f, "rados_", 6) ? rbd : rados, #f);        \
	if (!lib.f) {                                                                        \
		snprintf(lib_error, sizeof lib_error, "%s is missing from librbd/librados", #f); \
		return;                                                                      \
	}
	RBD_CALLS(RBD_RESOLVE)
#undef RBD_RESOLVE
	lib_ok = true;
}

/* ---- the backend ------------------------------------------------------------------- */

struct rbd_uri {
	char *pool, *ns, *image;
	char *conf, *id, *keyring, *snap;
	uint64_t size;
	unsigned timeout, lock_wait;
};

struct rbd_be {
	char *label; /* the URI: every message names it */
	struct rbd_uri u;
	unsigned flags;
	rados_t cluster;
	rados_ioctx_t io;
	rbd_image_t img;
	bool have_cluster, have_io, have_img;
	uint64_t size;
	bool unflushed; /* a write since the last flush */
	bool locked;    /* this handle acquired the exclusive lock */
	bool fenced;    /* blocklisted: nothing on this client works any more */
};

static int fail(struct rbd_be *r, int code, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct rbd_be *r, int code, int err, const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return bs_error_set(r->label, NULL, NULL, BS_NO_OFFSET, code, err, "%s", msg);
}

/* A librbd or librados call WHAT (its text naming the offset, if any)
 * failed with RC (a negative errno). */
static int fail_rc(struct rbd_be *r, int rc, const char *what)
{
	int e = rc < 0 ? -rc : EIO;
	switch (e) {
	case ETIMEDOUT:
		return fail(r, BS_EIO, e,
			    "%s timed out after %u s (timeout=): the Ceph cluster or an OSD does "
			    "not answer%s",
			    what, r->u.timeout,
			    strstr(what, "write") || strstr(what, "flush")
				    ? "; whether the write took effect is known only after a reopen"
				    : "");
	case ESHUTDOWN: /* EBLOCKLISTED */
		r->fenced = true;
		return fail(r, BS_ELOCKED, e,
			    "%s failed: this client was fenced (blocklisted) after another client "
			    "broke its lock on the image; reopen the image",
			    what);
	case EROFS:
		return fail(r, BS_ELOCKED, e,
			    "%s failed: this client no longer holds the image's exclusive lock "
			    "(another client took it); reopen the image",
			    what);
	case ENOSPC:
	case EDQUOT:
		return fail(r, BS_ENOSPC, e, "%s failed: the pool is full or over its quota (%s)",
			    what, strerror(e));
	case ENOMEM:
		return fail(r, BS_ENOMEM, e, "%s failed: out of memory", what);
	default:
		return fail(r, BS_EIO, e, "%s failed: %s", what, strerror(e));
	}
}

static int r_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct rbd_be *r = ctx;
	if (off > r->size || len > r->size - off)
		return fail(r, BS_ECORRUPT, 0,
			    "read of %zu octets at offset %llu past the end of the %llu-octet RBD "
			    "image",
			    len, (unsigned long long)off, (unsigned long long)r->size);
	char *p = buf;
	while (len) {
		size_t k = len > RBD_IO_MAX ? RBD_IO_MAX : len;
		ssize_t n = lib.rbd_read(r->img, off, k, p);
		if (n <= 0) {
			char what[64];
			snprintf(what, sizeof what, "rbd_read at offset %llu", (unsigned long long)off);
			return fail_rc(r, n == 0 ? -EIO : (int)n, what);
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return BS_OK;
}

static int r_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	struct rbd_be *r = ctx;
	if (off > r->size || len > r->size - off)
		return fail(r, BS_ENOSPC, 0,
			    "write of %zu octets at offset %llu past the end of the %llu-octet RBD "
			    "image (it grows only by 'blobstore grow')",
			    len, (unsigned long long)off, (unsigned long long)r->size);
	const char *p = buf;
	while (len) {
		size_t k = len > RBD_IO_MAX ? RBD_IO_MAX : len;
		/* Even a failed write may have reached the cluster in part. */
		r->unflushed = true;
		ssize_t n = lib.rbd_write(r->img, off, k, p);
		if (n <= 0) {
			char what[64];
			snprintf(what, sizeof what, "rbd_write at offset %llu", (unsigned long long)off);
			return fail_rc(r, n == 0 ? -EIO : (int)n, what);
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return BS_OK;
}

static int r_sync(void *ctx)
{
	struct rbd_be *r = ctx;
	if ((r->flags & BS_OPEN_NOSYNC) || !r->unflushed)
		return BS_OK;
	int rc = lib.rbd_flush(r->img);
	if (rc < 0)
		return fail_rc(r, rc, "rbd_flush");
	r->unflushed = false;
	return BS_OK;
}

static int r_size(void *ctx, uint64_t *out)
{
	*out = ((struct rbd_be *)ctx)->size;
	return BS_OK;
}

/* Fixed-size storage that can be enlarged: the library asks for TOTAL
 * octets in all (its recovery area included).  Never shrinks. */
static int r_reserve(void *ctx, uint64_t total)
{
	struct rbd_be *r = ctx;
	if (total <= r->size)
		return BS_OK;
	if (total > UINT64_MAX - 4095)
		return fail(r, BS_ELIMIT, 0, "size %llu is too large", (unsigned long long)total);
	uint64_t want = (total + 4095) / 4096 * 4096;
	int rc = lib.rbd_resize2(r->img, want, false, NULL, NULL);
	if (rc < 0)
		return fail_rc(r, rc, "rbd_resize2 (growing the RBD image)");
	uint64_t now;
	rc = lib.rbd_get_size(r->img, &now);
	if (rc < 0)
		return fail_rc(r, rc, "rbd_get_size");
	if (now < total)
		return fail(r, BS_EIO, 0, "the RBD image is %llu octets after growing it to %llu",
			    (unsigned long long)now, (unsigned long long)want);
	r->size = now;
	return BS_OK;
}

/* "127.0.0.1:0/1234" or "" into BUF: who holds the lock, for messages. */
static void lock_owner(struct rbd_be *r, char *buf, size_t cap)
{
	char *owners[4] = {0};
	size_t n = 4;
	rbd_lock_mode_t mode;
	buf[0] = 0;
	if (lib.rbd_lock_get_owners(r->img, &mode, owners, &n) < 0)
		return;
	if (n > 0 && owners[0])
		snprintf(buf, cap, " (held by client %s)", owners[0]);
	lib.rbd_lock_get_owners_cleanup(owners, n);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int r_lock(void *ctx, int how)
{
	struct rbd_be *r = ctx;
	if (how == BS_LOCK_NONE) {
		/* The library's changes were flushed by the calls that made them;
		 * the release makes the lock free for the next writer at once. */
		if (r->locked && !r->fenced)
			lib.rbd_lock_release(r->img);
		r->locked = false;
		return BS_OK;
	}
	uint64_t features = 0;
	int rc = lib.rbd_get_features(r->img, &features);
	if (rc < 0)
		return fail_rc(r, rc, "rbd_get_features");
	if (!(features & RBD_FEATURE_EXCLUSIVE_LOCK))
		return fail(r, BS_EUNSUPPORTED, 0,
			    "the RBD image has no exclusive-lock feature, so nothing would keep a "
			    "second writer out; refused for writing (enable it: rbd feature enable "
			    "%s/%s exclusive-lock)",
			    r->u.pool, r->u.image);
	double deadline = now_s() + r->u.lock_wait;
	unsigned pause = 50;
	for (;;) {
		rc = lib.rbd_lock_acquire(r->img, RBD_LOCK_MODE_EXCLUSIVE);
		if (rc == 0) {
			r->locked = true;
			return BS_OK;
		}
		if (rc != -EROFS && rc != -EBUSY)
			return fail_rc(r, rc, "rbd_lock_acquire");
		if (!(how & BS_LOCK_WAIT) || now_s() >= deadline) {
			char who[160];
			lock_owner(r, who, sizeof who);
			if (how & BS_LOCK_WAIT)
				return fail(r, BS_ELOCKED, EROFS,
					    "still locked by another writer%s after waiting %u s "
					    "(lock_wait=)",
					    who, r->u.lock_wait);
			return fail(r, BS_ELOCKED, EROFS, "locked by another writer%s", who);
		}
		sleep_ms(pause);
		if (pause < 500)
			pause *= 2;
	}
}

static void r_close(void *ctx)
{
	struct rbd_be *r = ctx;
	if (r->have_img)
		lib.rbd_close(r->img); /* releases the lock if this handle still has it */
	if (r->have_io)
		lib.rados_ioctx_destroy(r->io);
	if (r->have_cluster)
		lib.rados_shutdown(r->cluster);
	free(r->u.pool);
	free(r->u.ns);
	free(r->u.image);
	free(r->u.conf);
	free(r->u.id);
	free(r->u.keyring);
	free(r->u.snap);
	free(r->label);
	free(r);
}

static const struct bs_backend_ops rbd_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = r_read,
	.write_at = r_write,
	.sync = r_sync,
	.size = r_size,
	.reserve = r_reserve,
	.lock = r_lock,
	.close = r_close,
};

/* ---- the URI ----------------------------------------------------------------------- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* %-decodes S[0..N) into *OUT (NULL when N is 0); false on a bad escape
 * or an escaped NUL. */
static bool decode(const char *s, size_t n, char **out)
{
	*out = NULL;
	if (!n)
		return true;
	char *o = malloc(n + 1), *q = o;
	if (!o)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*q++ = s[i];
			continue;
		}
		int h = i + 2 < n ? hex_digit(s[i + 1]) : -1, l = h >= 0 ? hex_digit(s[i + 2]) : -1;
		if (h < 0 || l < 0 || (h | l) == 0) {
			free(o);
			return false;
		}
		*q++ = (char)(h * 16 + l);
		i += 2;
	}
	*q = 0;
	*out = o;
	return true;
}

static bool parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (!i)
		return false;
	unsigned shift = 0;
	if (s[i]) {
		const char *sfx = "kMGT", *p = strchr(sfx, s[i]);
		if (!p || s[i + 1])
			return false;
		shift = 10u * (unsigned)(p - sfx + 1);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

static bool parse_secs(const char *s, unsigned max, unsigned *out)
{
	uint64_t v;
	if (!parse_size(s, &v) || strpbrk(s, "kMGT") || v < 1 || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static int bad(struct rbd_be *r, const char *why)
{
	return fail(r, BS_EINVAL, 0, "%s (rbd://POOL[/NAMESPACE]/IMAGE?conf=FILE&id=ID&"
				     "keyring=FILE&snap=SNAP&size=N&timeout=S&lock_wait=S)",
		    why);
}

static int parse_uri(struct rbd_be *r, const char *uri)
{
	struct rbd_uri *u = &r->u;
	u->timeout = RBD_TIMEOUT_DEFAULT;
	u->lock_wait = RBD_LOCK_WAIT_DEFAULT;
	if (strlen(uri) > RBD_URI_MAX)
		return bad(r, "URI longer than 4096 octets");
	if (strncmp(uri, "rbd://", 6))
		return bad(r, "not an rbd:// URI");
	const char *p = uri + 6, *q = strchr(p, '?');
	size_t plen = q ? (size_t)(q - p) : strlen(p);
	/* POOL/IMAGE or POOL/NAMESPACE/IMAGE: one or two slashes, no empty part. */
	const char *s1 = memchr(p, '/', plen);
	const char *s2 = s1 ? memchr(s1 + 1, '/', plen - (size_t)(s1 + 1 - p)) : NULL;
	if (s2 && memchr(s2 + 1, '/', plen - (size_t)(s2 + 1 - p)))
		return bad(r, "too many '/' in the image's name");
	const char *img = s2 ? s2 + 1 : s1 ? s1 + 1 : NULL;
	if (!s1 || s1 == p || (s2 && s2 == s1 + 1) || !img || img == p + plen)
		return bad(r, "no pool or no image name");
	if (!decode(p, (size_t)(s1 - p), &u->pool) ||
	    (s2 && !decode(s1 + 1, (size_t)(s2 - s1 - 1), &u->ns)) ||
	    !decode(img, (size_t)(p + plen - img), &u->image))
		return bad(r, "bad %-escape in the image's name");
	while (q && *q) {
		q++;
		const char *amp = strchr(q, '&');
		size_t kl = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', kl);
		char *val = NULL;
		size_t nl = eq ? (size_t)(eq - q) : kl;
		if (!eq || !decode(eq + 1, kl - nl - 1, &val) || !val) {
			free(val);
			char why[160];
			snprintf(why, sizeof why, "option '%.*s' has no value or a bad %%-escape",
				 (int)(kl > 60 ? 60 : kl), q);
			return bad(r, why);
		}
		char **str = NULL;
		bool ok = true;
		if (nl == 4 && !strncmp(q, "conf", 4))
			str = &u->conf;
		else if (nl == 2 && !strncmp(q, "id", 2))
			str = &u->id;
		else if (nl == 7 && !strncmp(q, "keyring", 7))
			str = &u->keyring;
		else if (nl == 4 && !strncmp(q, "snap", 4))
			str = &u->snap;
		else if (nl == 4 && !strncmp(q, "size", 4))
			ok = parse_size(val, &u->size) && u->size > 0;
		else if (nl == 7 && !strncmp(q, "timeout", 7))
			ok = parse_secs(val, RBD_TIMEOUT_MAX, &u->timeout);
		else if (nl == 9 && !strncmp(q, "lock_wait", 9))
			ok = parse_secs(val, RBD_LOCK_WAIT_MAX, &u->lock_wait);
		else
			ok = false;
		if (str && *str)
			ok = false; /* given twice */
		if (str && ok) {
			*str = val;
			val = NULL;
		}
		free(val);
		if (!ok) {
			char why[160];
			snprintf(why, sizeof why, "unknown, repeated or malformed option '%.*s'",
				 (int)(kl > 60 ? 60 : kl), q);
			return bad(r, why);
		}
		q = amp;
	}
	return BS_OK;
}

/* ---- opening ----------------------------------------------------------------------- */

static int set_conf(struct rbd_be *r, const char *key, const char *val)
{
	int rc = lib.rados_conf_set(r->cluster, key, val);
	if (rc < 0)
		return fail(r, BS_EINVAL, -rc, "cannot set the Ceph option %s=%s: %s", key, val,
			    strerror(-rc));
	return BS_OK;
}

static int connect_cluster(struct rbd_be *r)
{
	int rc = lib.rados_create(&r->cluster, r->u.id);
	if (rc < 0)
		return fail(r, rc == -ENOMEM ? BS_ENOMEM : BS_EINVAL, -rc,
			    "cannot create a Ceph client (id '%s'): %s", r->u.id ? r->u.id : "admin",
			    strerror(-rc));
	r->have_cluster = true;
	rc = lib.rados_conf_read_file(r->cluster, r->u.conf);
	if (rc < 0) {
		if (r->u.conf)
			return fail(r, rc == -ENOENT ? BS_ENOENT : BS_EINVAL, -rc,
				    "cannot read the Ceph configuration %s: %s", r->u.conf,
				    strerror(-rc));
		return fail(r, BS_ENOENT, -rc,
			    "no Ceph configuration found ($CEPH_CONF, /etc/ceph/ceph.conf, ...): "
			    "give conf=FILE");
	}
	rc = lib.rados_conf_parse_env(r->cluster, NULL);
	if (rc < 0)
		return fail(r, BS_EINVAL, -rc, "CEPH_ARGS: %s", strerror(-rc));
	char secs[16];
	snprintf(secs, sizeof secs, "%u", r->u.timeout);
	/* Our messages say what failed; Ceph's own log goes to its log_file. */
	if ((rc = set_conf(r, "client_mount_timeout", secs)) ||
	    (rc = set_conf(r, "rados_osd_op_timeout", secs)) ||
	    (rc = set_conf(r, "rados_mon_op_timeout", secs)) ||
	    (rc = set_conf(r, "log_to_stderr", "false")) ||
	    (rc = set_conf(r, "err_to_stderr", "false")) ||
	    (r->u.keyring && (rc = set_conf(r, "keyring", r->u.keyring))))
		return rc;
	rc = lib.rados_connect(r->cluster);
	if (rc == -ETIMEDOUT)
		return fail(r, BS_EIO, ETIMEDOUT,
			    "cannot reach the Ceph cluster: no monitor answered within %u s "
			    "(timeout=; monitors as in %s)",
			    r->u.timeout, r->u.conf ? r->u.conf : "the Ceph configuration");
	if (rc < 0)
		return fail(r, rc == -ENOMEM ? BS_ENOMEM : BS_EIO, -rc,
			    "cannot connect to the Ceph cluster as client.%s: %s%s",
			    r->u.id ? r->u.id : "admin", strerror(-rc),
			    rc == -EACCES || rc == -EPERM || rc == -ENOENT
				    ? " (check id= and keyring=)" : "");
	rc = lib.rados_ioctx_create(r->cluster, r->u.pool, &r->io);
	if (rc < 0)
		return fail(r, rc == -ENOENT ? BS_ENOENT : BS_EIO, -rc, "pool '%s': %s", r->u.pool,
			    rc == -ENOENT ? "no such pool" : strerror(-rc));
	r->have_io = true;
	if (r->u.ns)
		lib.rados_ioctx_set_namespace(r->io, r->u.ns);
	return BS_OK;
}

static int create_image(struct rbd_be *r)
{
	rbd_image_options_t o;
	lib.rbd_image_options_create(&o);
	int rc = lib.rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, RBD_NEW_FEATURES);
	if (rc >= 0)
		rc = lib.rbd_create4(r->io, r->u.image, r->u.size, o);
	lib.rbd_image_options_destroy(o);
	if (rc == -EEXIST) /* another creator was first: use it */
		return BS_OK;
	if (rc < 0)
		return fail_rc(r, rc, "rbd_create4 (creating the RBD image)");
	return BS_OK;
}

static int open_image(struct rbd_be *r)
{
	bool rdonly = (r->flags & BS_OPEN_RDONLY) != 0;
	for (int tries = 0;; tries++) {
		int rc = rdonly ? lib.rbd_open_read_only(r->io, r->u.image, &r->img, r->u.snap)
				: lib.rbd_open(r->io, r->u.image, &r->img, NULL);
		if (rc == 0) {
			r->have_img = true;
			return BS_OK;
		}
		if (rc == -ENOENT && !tries && !rdonly && (r->flags & BS_OPEN_CREATE) && r->u.size) {
			if ((rc = create_image(r)))
				return rc;
			continue;
		}
		if (rc == -ENOENT && r->u.snap)
			return fail(r, BS_ENOENT, ENOENT, "no RBD image '%s' with a snapshot '%s'",
				    r->u.image, r->u.snap);
		if (rc == -ENOENT)
			return fail(r, BS_ENOENT, ENOENT,
				    "no RBD image '%s' in pool '%s' (create it with 'rbd create --size "
				    "1M %s/%s', or format it with size=N in the URI)",
				    r->u.image, r->u.pool, r->u.pool, r->u.image);
		return fail_rc(r, rc, "rbd_open");
	}
}

int bs_backend_rbd(const char *uri, unsigned flags, struct bs_backend **out)
{
	if (!uri || !out)
		return bs_error_set("(rbd)", NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "no URI or no output");
	struct rbd_be *r = calloc(1, sizeof *r);
	if (!r || !(r->label = strdup(uri))) {
		free(r);
		return bs_error_set(uri, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
	}
	r->flags = flags;
	int rc = parse_uri(r, uri);
	if (!rc && r->u.snap && !(flags & BS_OPEN_RDONLY))
		rc = fail(r, BS_ERDONLY, 0,
			  "a snapshot (snap=%s) is read-only: open it read-only", r->u.snap);
	if (!rc) {
		pthread_once(&lib_once, lib_load);
		if (!lib_ok)
			rc = fail(r, BS_EUNSUPPORTED, 0,
				  "cannot load librbd (Debian: apt-get install librbd1): %s", lib_error);
	}
	if (!rc)
		rc = connect_cluster(r);
	if (!rc)
		rc = open_image(r);
	if (!rc) {
		int e = lib.rbd_get_size(r->img, &r->size);
		if (e < 0)
			rc = fail_rc(r, e, "rbd_get_size");
	}
	if (rc) {
		r_close(r);
		return rc;
	}
	return bs_backend_new(&rbd_ops, r, 1, out);
}

int bs_rbd_register(void)
{
	return bs_backend_register("rbd", bs_backend_rbd);
}
