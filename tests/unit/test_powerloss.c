/* test_powerloss.c - the power-loss proof.  test_crash.c stops the process
 * after each write; here the power fails: every write issued since the last
 * completed sync may be lost, applied, torn at any octet or sector, or leave
 * only a grown size, in any order (the fault backend's journal,
 * fault_backend_powerloss()).  Every operation that changes an image runs
 * over it, on growable storage and on fixed-size storage, and for each crash
 * point the possible storage states are enumerated when few, sampled
 * (seeded, reproducible) when many.  Each one must open; every entry must
 * read as its committed value or, for the entries the operation changes,
 * the new one (all of them or none, except for the UEFI import, which is
 * documented as entry by entry); bs_image_check must pass.  Then every write and
 * sync fails in turn with EIO and ENOSPC: the error must name the image and
 * the storage must still hold the old or the new state.
 *
 * Environment: BS_TEST_QUICK=1 (short), BS_CRASH_LONG=1 (every tear
 * offset, more samples), BS_CRASH_SEED=N (sampling seed, printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/crypt.h>
#include "common.h"
#include "storage/storage.h" /* the backend table, to forward to */
#include <blobstore/tpm.h>
#include <blobstore/uefi.h>

static bool quick, longrun;
static unsigned shown; /* violations printed in this test */
static uint64_t seed = 1;

static struct {
	unsigned long ops, points, images, ioerrs, violations;
} fig;

#define VIOLATION(...)                                                                 \
	do {                                                                           \
		fig.violations++;                                                      \
		if (++shown <= 12) {                                                   \
			print_error(__VA_ARGS__);                                      \
			print_error("\n");                                             \
		}                                                                      \
	} while (0)

#define LABEL "pl.img"

/* ---- snapshots: what an image holds, entry by entry -------------------------- */

static uint8_t KEY_A[32], KEY_B[32];

struct sent {
	char *key; /* type \x1f name */
	char *val;
};
struct snap {
	size_t n;
	struct sent *e;
};

static void snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].key);
		free(s->e[i].val);
	}
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

static void snap_add(struct snap *s, const char *key, const char *val)
{
	s->e = realloc(s->e, (s->n + 1) * sizeof *s->e);
	assert_non_null(s->e);
	s->e[s->n].key = strdup(key);
	s->e[s->n].val = strdup(val);
	assert_true(s->e[s->n].key && s->e[s->n].val);
	s->n++;
}

static int cmp_sent(const void *a, const void *b)
{
	return strcmp(((const struct sent *)a)->key, ((const struct sent *)b)->key);
}

static uint64_t fnv(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Attributes of E but bs.supersedes (which a finished rewrite may keep)
 * and bs.aead (random per creation; the data read back is what counts). */
static void attr_text(const bs_entry *e, char *out, size_t cap)
{
	out[0] = 0;
	for (int m = 1; m >= 0; m--)
		for (size_t i = 0; i < bs_attr_count(e); i++) {
			const char *nm;
			const uint8_t *v;
			size_t vl;
			unsigned fl;
			if (bs_attr_at(e, i, &nm, &v, &vl, &fl) ||
			    ((fl & BS_ATTR_MANDATORY) != 0) != (m != 0) ||
			    !strcmp(nm, "bs.supersedes") || !strcmp(nm, "bs.aead"))
				continue;
			size_t l = strlen(out);
			snprintf(out + l, cap - l, "%s%s:%zu:%016llx;", m ? "!" : "", nm, vl,
				 (unsigned long long)fnv(v, vl));
		}
}

/* The snapshot of IM (a key is tried when the image is encrypted: the
 * pseudo-entry "#key" tells which one opened it). */
static void snapshot(bs_image *im, struct snap *s)
{
	s->n = 0;
	s->e = NULL;
	if (bs_image_is_encrypted(im)) {
		const char *which = "none";
		bs_key *a, *b;
		assert_int_equal(bs_key_from_bytes(KEY_A, 32, &a), BS_OK);
		assert_int_equal(bs_key_from_bytes(KEY_B, 32, &b), BS_OK);
		if (bs_image_set_key(im, a) == BS_OK)
			which = "A";
		else if (bs_image_set_key(im, b) == BS_OK)
			which = "B";
		bs_key_free(a);
		bs_key_free(b);
		snap_add(s, "#key", which);
	}
	for (size_t i = 0; i < bs_image_count(im, BS_ITER_LIBRARY); i++) {
		bs_entry *e = t_entry_at(im, i);
		const char *type = bs_entry_type(e), *name = bs_entry_name(e);
		char key[600], val[4096];
		snprintf(key, sizeof key, "%s\x1f%s", type ? type : "?", name ? name : "\x01");
		if (type && !strcmp(type, "bs.key")) {
			/* Fresh salt and nonce each time: "#key" stands for it. */
			snap_add(s, key, "present");
			continue;
		}
		char at[3000];
		attr_text(e, at, sizeof at);
		void *d = NULL;
		size_t dl = 0;
		int rc = bs_entry_status(e) ? bs_entry_status(e) : bs_entry_read_alloc(e, &d, &dl);
		snprintf(val, sizeof val, "cap=%zu slotted=%d status=%d data=%zu:%016llx attrs=%s",
			 bs_entry_capacity(e), bs_entry_is_slotted(e), rc, dl,
			 (unsigned long long)(rc ? 0 : fnv(d, dl)), at);
		free(d);
		snap_add(s, key, val);
	}
	qsort(s->e, s->n, sizeof *s->e, cmp_sent);
}

static const char *snap_get(const struct snap *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->e[i].key, key))
			return s->e[i].val;
	return NULL;
}

static bool eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Judges GOT against OLD and NEW: every entry old or new, nothing else; with
 * ATOMIC all changed entries on the same side.  Returns 0 old, 1 new, 2 a
 * per-entry mix (allowed when !ATOMIC), -1 a violation (WHY). */
static int judge(const struct snap *got, const struct snap *old, const struct snap *nw,
		 bool atomic, char *why, size_t wl)
{
	int n_old = 0, n_new = 0;
	const struct snap *all[3] = {got, old, nw};
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < all[k]->n; i++) {
			const char *key = all[k]->e[i].key;
			const char *g = snap_get(got, key), *o = snap_get(old, key),
				   *w = snap_get(nw, key);
			if (eq(o, w)) {
				if (!eq(g, o)) {
					snprintf(why, wl, "entry %s changed: %s, expected %s", key,
						 g ? g : "(absent)", o ? o : "(absent)");
					return -1;
				}
				continue;
			}
			if (eq(g, o))
				n_old++;
			else if (eq(g, w))
				n_new++;
			else {
				snprintf(why, wl, "entry %s neither old (%s) nor new (%s): %s", key,
					 o ? o : "absent", w ? w : "absent", g ? g : "absent");
				return -1;
			}
		}
	if (n_old && n_new) {
		if (atomic) {
			snprintf(why, wl, "%d entries old and %d new: not atomic", n_old, n_new);
			return -1;
		}
		return 2;
	}
	return n_new ? 1 : 0;
}

/* ---- storage: the fault backend behind a wrapper ---------------------------- */

/* The wrapper leaves the fault backend alive when the image closes (its
 * journal is read afterwards: the caller frees it), and can present
 * fixed-size storage: no resize, no replace, no writes past the end. */
struct wrapb {
	struct bs_backend *be; /* made by bs_backend_new() over this wrapper */
	struct bs_backend *inner;
	uint64_t size; /* fixed size, or 0 */
};

static int wr_read(void *c, void *b, size_t l, uint64_t o)
{
	struct wrapb *w = c;
	return w->inner->ops->read_at(w->inner->ctx, b, l, o);
}
static int wr_write(void *c, const void *b, size_t l, uint64_t o)
{
	struct wrapb *w = c;
	if (w->size && (o > w->size || l > w->size - o))
		return BS_ENOSPC;
	return w->inner->ops->write_at(w->inner->ctx, b, l, o);
}
static int wr_sync(void *c)
{
	struct wrapb *w = c;
	return w->inner->ops->sync(w->inner->ctx);
}
static int wr_size(void *c, uint64_t *o)
{
	struct wrapb *w = c;
	return w->inner->ops->size(w->inner->ctx, o);
}
static int wr_resize(void *c, uint64_t n)
{
	struct wrapb *w = c;
	return w->inner->ops->resize(w->inner->ctx, n);
}
static int wr_replace(void *c, const void *img, size_t len)
{
	struct wrapb *w = c;
	return w->inner->ops->replace(w->inner->ctx, img, len);
}
static void wr_close(void *c)
{
	free(c);
}
static const struct bs_backend_ops grow_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = wr_read, .write_at = wr_write, .sync = wr_sync, .size = wr_size,
	.resize = wr_resize, .replace = wr_replace, .close = wr_close,
};
static const struct bs_backend_ops fix_ops = {
	.version = BS_BACKEND_OPS_VERSION,
	.read_at = wr_read, .write_at = wr_write, .sync = wr_sync, .size = wr_size,
	.close = wr_close,
};

#define FIXED_SIZE 65536u

/* The storage under test over IMG/LEN with PLAN: *FB gets the fault
 * backend, which the caller frees after closing the image. */
static struct bs_backend *storage(const uint8_t *img, size_t len, bool fixed,
				  const struct fault_plan *plan, struct bs_backend **fb)
{
	assert_int_equal(fault_backend_new(img, len, plan, fb), BS_OK);
	struct wrapb *w = calloc(1, sizeof *w);
	assert_non_null(w);
	w->inner = *fb;
	w->size = fixed ? len : 0;
	assert_int_equal(bs_backend_new(fixed ? &fix_ops : &grow_ops, w, fixed ? 512 : 1, &w->be), BS_OK);
	return w->be;
}

/* Pads IMG to the fixed size (a copy). */
static uint8_t *pad(const uint8_t *img, size_t len, bool fixed, size_t *out)
{
	size_t n = fixed ? FIXED_SIZE : len;
	uint8_t *b = calloc(1, n ? n : 1);
	assert_non_null(b);
	assert_true(len <= n);
	if (len)
		memcpy(b, img, len);
	*out = n;
	return b;
}

/* ---- the operations -------------------------------------------------------- */

static uint8_t T1[40], T2[10], T3[200], V2[2600], N1[5000], R1[300], S1[90];
static uint8_t *uefi_a, *uefi_b;
static size_t uefi_a_len, uefi_b_len;

static bs_entry *find(bs_image *im, const char *type, const char *name)
{
	bs_entry *e = NULL;
	return bs_entry_find(im, type, name, &e) ? NULL : e;
}

static int use_key(bs_image *im)
{
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(KEY_A, 32, &k), BS_OK);
	int rc = bs_image_set_key(im, k);
	bs_key_free(k);
	return rc;
}

static int write_to(bs_image *im, const char *t, const char *n, const void *d, size_t l)
{
	bs_entry *e = find(im, t, n);
	return e ? bs_entry_write(e, d, l) : BS_ENOENT;
}

static int op_create(bs_image *im)
{
	struct bs_attr a = {BS_ATTR_VERSION, "k", 0, (const uint8_t *)"\x01\x01\xff", 3};
	return bs_entry_create(im, "new", "n", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 100, .attrs = &a, .nattrs = 1}, N1, 60, NULL);
}
static int op_create_big(bs_image *im)
{
	return bs_entry_create(im, "big", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = sizeof N1, .attrs = NULL, .nattrs = 0}, N1, sizeof N1, NULL);
}
static int op_write_same(bs_image *im) { return write_to(im, "target", "x", T1, sizeof T1); }
static int op_write_smaller(bs_image *im) { return write_to(im, "target", "x", T2, sizeof T2); }
static int op_write_larger(bs_image *im) { return write_to(im, "target", "x", T3, sizeof T3); }
static int op_write_sha(bs_image *im) { return write_to(im, "vtpm", "volatile", V2, sizeof V2); }
static int op_write_raw(bs_image *im) { return write_to(im, "raw", "r", R1, sizeof R1); }
static int op_write_enc(bs_image *im)
{
	int rc = use_key(im);
	return rc ? rc : write_to(im, "secret", "s", S1, sizeof S1);
}
static int op_attr_set(bs_image *im)
{
	bs_entry *e = find(im, "target", "x");
	uint8_t v[4];
	return e ? bs_attr_set(e, "a", 0, v, t_der_int(8, v, sizeof v)) : BS_ENOENT;
}
static int op_attr_remove(bs_image *im)
{
	bs_entry *e = find(im, "target", "x");
	return e ? bs_attr_remove(e, "b") : BS_ENOENT;
}
static int op_delete(bs_image *im)
{
	bs_entry *e = find(im, "target", "x");
	return e ? bs_entry_delete(e) : BS_ENOENT;
}
static int op_resize(bs_image *im)
{
	bs_entry *e = find(im, "target", "x");
	return e ? bs_entry_resize(e, 1000) : BS_ENOENT;
}
static int op_compact(bs_image *im) { return bs_image_compact(im); }
static int op_rekey(bs_image *im)
{
	int rc = use_key(im);
	if (rc)
		return rc;
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(KEY_B, 32, &k), BS_OK);
	rc = bs_image_rekey(im, k, NULL);
	bs_key_free(k);
	return rc;
}
static int op_uefi_import(bs_image *im)
{
	return bs_uefi_import(im, uefi_b, uefi_b_len, NULL);
}

static uint8_t PA[1200];
static int op_tpm_store_new(bs_image *im)
{
	/* The image is encrypted: the bridge refuses TPM state in the clear. */
	int rc = use_key(im);
	return rc ? rc : bs_tpm_store(im, 0, "permall", PA, sizeof PA);
}

/* On the vTPM image (vtpm_img): the bridge's replace of stored state, in
 * place and grown past the entry's capacity, and the emptying of the
 * volatile state that a restart consumes. */
static uint8_t PB[1200], PG[70000];
static int op_tpm_replace(bs_image *im)
{
	int rc = use_key(im);
	return rc ? rc : bs_tpm_store(im, 0, "permall", PB, sizeof PB);
}
static int op_tpm_replace_grown(bs_image *im)
{
	int rc = use_key(im);
	return rc ? rc : bs_tpm_store(im, 0, "permall", PG, sizeof PG);
}
static int op_tpm_volatile_consumed(bs_image *im)
{
	int rc = use_key(im);
	return rc ? rc : bs_tpm_delete(im, 0, "volatilestate", 1);
}

struct op {
	const char *name;
	int (*run)(bs_image *im);
	bool atomic;
};

static const struct op ops[] = {
	{"create", op_create, true},
	{"create 5000 octets", op_create_big, true},
	{"replace same size", op_write_same, true},
	{"replace smaller", op_write_smaller, true},
	{"replace larger than capacity", op_write_larger, true},
	{"replace sha256 2600 octets", op_write_sha, true},
	{"replace raw entry", op_write_raw, true},
	{"replace encrypted", op_write_enc, true},
	{"set attribute", op_attr_set, true},
	{"remove attribute", op_attr_remove, true},
	{"delete", op_delete, true},
	{"grow (resize)", op_resize, true},
	{"compact", op_compact, true},
	{"rekey", op_rekey, true},
	{"UEFI import", op_uefi_import, false},
	{"vTPM state store", op_tpm_store_new, true},
};

static const struct op vtpm_ops[] = {
	{"vTPM state replace", op_tpm_replace, true},
	{"vTPM state replace, grown past its capacity", op_tpm_replace_grown, true},
	{"vTPM volatile state consumed", op_tpm_volatile_consumed, true},
};

/* ---- a small synthetic varstore -------------------------------------------- */

static const uint8_t auth_guid[16] = {0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
				      0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92};

/* An empty edk2 varstore of SIZE octets (a firmware volume of 4 KiB blocks
 * holding an authenticated variable store), built from the header layout. */
static uint8_t *varstore_template(size_t size)
{
	uint8_t *b = malloc(size);
	assert_non_null(b);
	memset(b, 0xff, size);
	memset(b, 0, 0x48);
	for (int i = 0; i < 8; i++)
		b[0x20 + i] = (uint8_t)((uint64_t)size >> (8 * i));
	memcpy(b + 0x28, "_FVH", 4);
	b[0x2c] = 0xff; /* attributes: the usual 0x4feff */
	b[0x2d] = 0xfe;
	b[0x2e] = 0x04;
	b[0x30] = 0x48; /* header length */
	b[0x37] = 2;    /* revision */
	uint32_t nb = (uint32_t)(size / 4096);
	for (int i = 0; i < 4; i++) {
		b[0x38 + i] = (uint8_t)(nb >> (8 * i));
		b[0x3c + i] = (uint8_t)(4096u >> (8 * i));
	}
	uint16_t sum = 0;
	for (size_t i = 0; i < 0x48; i += 2)
		sum = (uint16_t)(sum + (b[i] | b[i + 1] << 8));
	sum = (uint16_t)(0x10000u - sum);
	b[0x32] = (uint8_t)sum;
	b[0x33] = (uint8_t)(sum >> 8);
	uint8_t *st = b + 0x48;
	memcpy(st, auth_guid, 16);
	uint32_t ss = (uint32_t)(size - 0x48);
	for (int i = 0; i < 4; i++)
		st[16 + i] = (uint8_t)(ss >> (8 * i));
	st[20] = 0x5a;
	st[21] = 0xfe;
	memset(st + 22, 0, 6);
	return b;
}

static void make_varstore(int which, uint8_t **out, size_t *len)
{
	static const char *names_a[] = {"BootOrder", "Boot0000", "Lang", "Timeout"};
	static const char *names_b[] = {"BootOrder", "Boot0001", "Lang", "SecureBoot", "Tmp"};
	const char *const *names = which ? names_b : names_a;
	size_t n = which ? 5 : 4;
	struct bs_uefi_var v[5];
	uint8_t data[5][64];
	for (size_t i = 0; i < n; i++) {
		memset(&v[i], 0, sizeof v[i]);
		for (int g = 0; g < 16; g++)
			v[i].guid[g] = (uint8_t)(0x61 + g);
		v[i].name = (char *)names[i];
		v[i].attributes = (which && i == 2) ? 3 : 7; /* Lang changes attributes */
		t_fill(data[i], sizeof data[i], 100 + 10 * (uint64_t)which + i);
		v[i].data = data[i];
		v[i].data_len = 8 + 8 * i;
	}
	uint8_t *tmpl = varstore_template(16384);
	assert_int_equal(bs_uefi_build(v, n, tmpl, 16384, out, len), BS_OK);
	free(tmpl);
}

/* ---- the base image -------------------------------------------------------- */

static uint8_t *base_img, *vtpm_img;
static size_t base_len, vtpm_len;

static int setup(void **state)
{
	(void)state;
	quick = t_quick();
	const char *l = getenv("BS_CRASH_LONG");
	longrun = l && *l && strcmp(l, "0") && !quick;
	const char *s = getenv("BS_CRASH_SEED");
	if (s && *s)
		seed = strtoull(s, NULL, 0);
	t_fill(KEY_A, 32, 201);
	t_fill(KEY_B, 32, 202);
	t_fill(T1, sizeof T1, 6);
	t_fill(T2, sizeof T2, 7);
	t_fill(T3, sizeof T3, 8);
	t_fill(V2, sizeof V2, 4);
	t_fill(N1, sizeof N1, 9);
	t_fill(R1, sizeof R1, 10);
	t_fill(S1, sizeof S1, 11);
	make_varstore(0, &uefi_a, &uefi_a_len);
	make_varstore(1, &uefi_b, &uefi_b_len);

	struct bs_backend *be;
	bs_image *im;
	uint8_t P1[150], P2[160], V1[2500], T0[40];
	t_fill(P1, sizeof P1, 1);
	t_fill(P2, sizeof P2, 2);
	t_fill(V1, sizeof V1, 3);
	t_fill(T0, sizeof T0, 5);
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	bs_key *k;
	assert_int_equal(bs_key_from_bytes(KEY_A, 32, &k), BS_OK);
	assert_int_equal(bs_image_init_encryption(im, k, NULL), BS_OK);
	bs_key_free(k);
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "vtpm", "permall", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 200, .attrs = NULL, .nattrs = 0}, P1, sizeof P1, &e), 0);
	assert_int_equal(bs_entry_write(e, P2, sizeof P2), BS_OK); /* both slots valid */
	struct bs_entry_opts so = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 3000, .checksum = BS_CHECKSUM_SHA256};
	assert_int_equal(bs_entry_create(im, "vtpm", "volatile", &so, V1, sizeof V1, NULL), 0);
	struct bs_entry_opts ro = {.version = BS_ENTRY_OPTS_VERSION, .flags = BS_ENTRY_RAW};
	assert_int_equal(bs_entry_create(im, "raw", "r", &ro, "raw-data", 8, NULL), 0);
	struct bs_entry_opts eo = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 128, .flags = BS_ENTRY_ENCRYPT};
	assert_int_equal(bs_entry_create(im, "secret", "s", &eo, "sealed", 6, NULL), 0);
	uint8_t v[4];
	struct bs_attr ca = {BS_ATTR_VERSION, "mode", 0, v, t_der_int(1, v, sizeof v)};
	assert_int_equal(bs_entry_create(im, "cfg", NULL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 16, .attrs = &ca, .nattrs = 1}, "c", 1, NULL), 0);
	assert_int_equal(bs_entry_create(im, "tmp", "t", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 32, .attrs = NULL, .nattrs = 0}, "gone", 4, &e), 0);
	assert_int_equal(bs_entry_delete(e), BS_OK);
	uint8_t v7[4];
	struct bs_attr ta[2] = {{BS_ATTR_VERSION, "a", 0, v7, t_der_int(7, v7, sizeof v7)}, {BS_ATTR_VERSION, "b", 0, NULL, 0}};
	assert_int_equal(bs_entry_create(im, "target", "x", &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 64, .attrs = ta, .nattrs = 2}, T0, sizeof T0, &e), 0);
	assert_int_equal(bs_entry_write(e, T0, sizeof T0), BS_OK);
	assert_int_equal(bs_uefi_import(im, uefi_a, uefi_a_len, NULL), BS_OK);
	t_fill(PA, sizeof PA, 12);
	base_img = t_mem_copy(be, &base_len);
	bs_image_close(im);
	assert_true(base_len < FIXED_SIZE / 2);

	/* A vTPM's image: its stored state (the bridge reserves 64 KiB, more
	 * than the fixed storage here) and a volatile state to consume. */
	uint8_t VS[700];
	t_fill(PB, sizeof PB, 13);
	t_fill(PG, sizeof PG, 14);
	t_fill(VS, sizeof VS, 15);
	t_fill(P1, sizeof P1, 16);
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &be), BS_OK);
	assert_int_equal(bs_key_from_bytes(KEY_A, 32, &k), BS_OK);
	assert_int_equal(bs_image_init_encryption(im, k, NULL), BS_OK);
	bs_key_free(k);
	assert_int_equal(bs_tpm_store(im, 0, "permall", PA, sizeof PA), BS_OK);
	assert_int_equal(bs_tpm_store(im, 0, "permall", P1, sizeof P1), BS_OK);
	assert_int_equal(bs_tpm_store(im, 0, "volatilestate", VS, sizeof VS), BS_OK);
	vtpm_img = t_mem_copy(be, &vtpm_len);
	bs_image_close(im);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(base_img);
	free(vtpm_img);
	free(uefi_a);
	free(uefi_b);
	print_message("power-loss simulation (seed %llu%s): %lu operations, %lu crash points, "
		      "%lu crash images, %lu injected I/O errors, %lu violations\n",
		      (unsigned long long)seed, longrun ? ", long" : quick ? ", quick" : "",
		      fig.ops, fig.points, fig.images, fig.ioerrs, fig.violations);
	return 0;
}

/* ---- verifying one storage state ---------------------------------------- */

static void check_cb(void *ctx, const bs_entry *e, uint64_t off, int code, const char *msg)
{
	(void)e;
	(void)off;
	if (code && !*(char *)ctx)
		snprintf(ctx, 256, "%s", msg);
}

/* Opens storage IMG (recovering), judges it against OLD/NEW and checks it;
 * then opens the recovered storage read-only: it must look the same.
 * Returns the judgement (-1 on a violation). */
static int verify(const char *what, const uint8_t *img, size_t len, bool fixed,
		  const struct snap *old, const struct snap *nw, bool atomic)
{
	fig.images++;
	struct fault_plan none = {.tear_at = SIZE_MAX};
	struct bs_backend *fb;
	struct bs_backend *be = storage(img, len, fixed, &none, &fb);
	bs_image *im;
	if (bs_image_open_backend(be, LABEL, 0, &im)) {
		VIOLATION("%s: open after the crash failed: %s", what, last_error());
		bs_backend_free(fb);
		return -1;
	}
	struct snap got;
	snapshot(im, &got);
	char why[1024];
	int out = judge(&got, old, nw, atomic, why, sizeof why);
	if (out < 0)
		VIOLATION("%s: %s", what, why);
	char cw[256] = "";
	if (bs_image_check(im, 1, check_cb, cw) != BS_OK) {
		VIOLATION("%s: check failed: %s", what, cw);
		out = -1;
	}
	bs_image_close(im);
	size_t al;
	uint8_t *after = t_mem_copy(fb, &al);
	bs_backend_free(fb);
	be = storage(after, al, fixed, &none, &fb);
	free(after);
	int rc = bs_image_open_backend(be, LABEL, BS_OPEN_RDONLY, &im);
	if (rc) {
		VIOLATION("%s: second open failed: %s", what, last_error());
		bs_backend_free(fb);
		snap_free(&got);
		return -1;
	}
	struct snap again;
	snapshot(im, &again);
	bs_image_close(im);
	bs_backend_free(fb);
	if (judge(&again, &got, &got, true, why, sizeof why) != 0) {
		VIOLATION("%s: second open differs: %s", what, why);
		out = -1;
	}
	snap_free(&again);
	snap_free(&got);
	return out;
}

/* ---- enumerating what power loss can leave -------------------------------- */

#define MAXP 16
#define MAXF 8192

struct fates {
	size_t n;
	struct fault_fate f[MAXF];
};

static void fate_add(struct fates *fs, int fate, uint64_t arg)
{
	if (fs->n < MAXF)
		fs->f[fs->n++] = (struct fault_fate){fate, arg};
}

/* The fates considered for one pending change. */
static void fates_for(const struct fault_write *w, struct fates *fs, uint64_t *rng)
{
	fs->n = 0;
	fate_add(fs, FATE_LOST, 0);
	fate_add(fs, FATE_WHOLE, 0);
	if (w->kind != FAULT_WRITE || w->len < 2)
		return;
	size_t len = w->len;
	fate_add(fs, FATE_ZEROS, 0);
	/* Arbitrary octets: all of them in the long run when affordable. */
	size_t every = longrun ? 8192 : quick ? 8 : 64;
	if (len <= every) {
		for (size_t t = 1; t < len; t++)
			fate_add(fs, FATE_PREFIX, t);
	} else {
		size_t pick[] = {1, 2, 15, 16, 17, len / 2, len - 2, len - 1};
		for (size_t i = 0; i < sizeof pick / sizeof *pick; i++)
			fate_add(fs, FATE_PREFIX, pick[i]);
		for (int i = 0; i < (quick ? 2 : 16); i++)
			fate_add(fs, FATE_PREFIX, 1 + t_rand(rng) % (len - 1));
	}
	/* Sector boundaries, and sectors arriving out of order. */
	size_t first = (size_t)(512 - w->off % 512);
	size_t nsec = 0;
	for (size_t t = first; t < len; t += 512) {
		nsec++;
		if (len > every && (!quick || nsec <= 2))
			fate_add(fs, FATE_PREFIX, t);
	}
	nsec++; /* sectors touched */
	if (nsec >= 2) {
		if (nsec <= (quick ? 3u : 8u)) {
			for (uint64_t m = 1; m + 1 < (1ull << nsec); m++)
				fate_add(fs, FATE_SECTORS, m);
		} else {
			for (int i = 0; i < (quick ? 4 : 32); i++)
				fate_add(fs, FATE_SECTORS, t_rand(rng));
		}
	}
}

static bool overlap(const struct fault_write *a, const struct fault_write *b)
{
	if (a->kind != FAULT_WRITE || b->kind != FAULT_WRITE)
		return true;
	return a->off < b->off + b->len && b->off < a->off + a->len;
}

/* Next permutation of P[0..N) in lexicographic order; false after the last. */
static bool next_perm(size_t *p, size_t n)
{
	if (n < 2)
		return false;
	size_t i = n - 1;
	while (i > 0 && p[i - 1] >= p[i])
		i--;
	if (i == 0)
		return false;
	size_t j = n - 1;
	while (p[j] <= p[i - 1])
		j--;
	size_t t = p[i - 1];
	p[i - 1] = p[j];
	p[j] = t;
	for (size_t a = i, b = n - 1; a < b; a++, b--) {
		t = p[a];
		p[a] = p[b];
		p[b] = t;
	}
	return true;
}

struct point {
	const char *what;
	bool fixed, must_be_new, atomic, changes;
	const struct snap *old, *nw;
	struct bs_backend *fb;
};

static void one_image(const struct point *pt, const size_t *order,
		      const struct fault_fate *f, size_t n)
{
	uint8_t *img;
	size_t len;
	assert_int_equal(fault_backend_powerloss(pt->fb, order, f, &img, &len), BS_OK);
	if (pt->fixed && len != FIXED_SIZE) {
		VIOLATION("%s: fixed storage changed size", pt->what);
		free(img);
		return;
	}
	char what[1024];
	int o = snprintf(what, sizeof what, "%s, fates", pt->what);
	for (size_t i = 0; i < n && o < 900; i++)
		o += snprintf(what + o, sizeof what - (size_t)o, " %zu:%d/%llu", order ? order[i] : i,
			      f[i].fate, (unsigned long long)f[i].arg);
	int r = verify(what, img, len, pt->fixed, pt->old, pt->nw, pt->atomic);
	if (r >= 0 && pt->must_be_new && r != 1 && pt->changes)
		VIOLATION("%s: the call had returned, but the change is lost", what);
	free(img);
}

/* Every storage state the pending changes of PT->fb can leave: the whole
 * product of fates (and of orders, where changes overlap) when it is small,
 * else each single fate with the others whole and with the others lost,
 * plus random combinations in random orders. */
static void enumerate(const struct point *pt, uint64_t *rng)
{
	struct fault_write w[MAXP];
	size_t n = fault_backend_pending(pt->fb, w, MAXP);
	fig.points++;
	if (n == 0) {
		one_image(pt, NULL, NULL, 0);
		return;
	}
	assert_true(n <= MAXP);
	static struct fates fs[MAXP];
	double product = 1;
	bool overlaps = false;
	for (size_t i = 0; i < n; i++) {
		fates_for(&w[i], &fs[i], rng);
		product *= (double)fs[i].n;
		for (size_t j = 0; j < i; j++)
			overlaps |= overlap(&w[i], &w[j]);
	}
	size_t order[MAXP];
	struct fault_fate f[MAXP];
	double orders = 1;
	if (overlaps)
		for (size_t i = 2; i <= n; i++)
			orders *= (double)i;
	double limit = longrun ? 20000 : quick ? 300 : 2000;
	if (product * orders <= limit) {
		size_t idx[MAXP] = {0};
		for (;;) {
			for (size_t i = 0; i < n; i++)
				f[i] = fs[i].f[idx[i]];
			for (size_t i = 0; i < n; i++)
				order[i] = i;
			do
				one_image(pt, order, f, n);
			while (overlaps && next_perm(order, n));
			size_t k = 0;
			while (k < n && ++idx[k] == fs[k].n)
				idx[k++] = 0;
			if (k == n)
				break;
		}
		return;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (int others = 0; others < 2; others++)
		for (size_t i = 0; i < n; i++)
			for (size_t c = 0; c < fs[i].n; c++) {
				for (size_t j = 0; j < n; j++)
					f[j] = (struct fault_fate){others ? FATE_LOST : FATE_WHOLE, 0};
				f[i] = fs[i].f[c];
				one_image(pt, order, f, n);
			}
	size_t samples = longrun ? 4000 : quick ? 40 : 400;
	for (size_t s = 0; s < samples; s++) {
		for (size_t i = 0; i < n; i++) {
			order[i] = i;
			f[i] = fs[i].f[t_rand(rng) % fs[i].n];
		}
		for (size_t i = n; i > 1; i--) {
			size_t j = (size_t)(t_rand(rng) % i), t = order[i - 1];
			order[i - 1] = order[j];
			order[j] = t;
		}
		one_image(pt, order, f, n);
	}
}

/* ---- driving ------------------------------------------------------------- */

/* Runs OP over storage ST/SLEN with PLAN; *FB gets the fault backend
 * (the caller frees it); MSG (may be NULL, 1024 octets) the message of a
 * failure. */
static int run_on(const struct op *op, const uint8_t *st, size_t slen, bool fixed,
		  const struct fault_plan *plan, struct bs_backend **fb, char *msg)
{
	struct bs_backend *be = storage(st, slen, fixed, plan, fb);
	bs_image *im = NULL;
	int rc = bs_image_open_backend(be, LABEL, 0, &im);
	if (!rc)
		rc = op->run(im);
	if (msg)
		snprintf(msg, 1024, "%s", rc ? last_error() : "");
	bs_image_close(im);
	return rc;
}

static void snap_of(const uint8_t *img, size_t len, bool fixed, struct snap *s)
{
	struct fault_plan none = {.tear_at = SIZE_MAX};
	struct bs_backend *fb;
	struct bs_backend *be = storage(img, len, fixed, &none, &fb);
	bs_image *im;
	assert_int_equal(bs_image_open_backend(be, LABEL, BS_OPEN_RDONLY, &im), BS_OK);
	snapshot(im, s);
	bs_image_close(im);
	bs_backend_free(fb);
}

static bool snaps_differ(const struct snap *a, const struct snap *b)
{
	char why[1024];
	return judge(a, b, b, true, why, sizeof why) != 0;
}

static void run_op(const struct op *op, const uint8_t *base, size_t blen, bool fixed,
		   uint64_t *rng)
{
	size_t slen;
	uint8_t *st = pad(base, blen, fixed, &slen);
	struct snap old, nw;
	snap_of(st, slen, fixed, &old);
	struct fault_plan dry = {.tear_at = SIZE_MAX, .journal = 1};
	struct bs_backend *fb;
	int rc = run_on(op, st, slen, fixed, &dry, &fb, NULL);
	if ((rc == BS_EUNSUPPORTED || rc == BS_ENOSPC) && fixed) {
		/* Needs an atomic replace the storage lacks, or more room (the
		 * vTPM entry reserves capacity for libtpms' largest state). */
		print_message("power loss: %s (fixed): %s, skipped\n", op->name, last_error());
		bs_backend_free(fb);
		snap_free(&old);
		free(st);
		return;
	}
	if (rc)
		fail_msg("%s: %s", op->name, last_error());
	fig.ops++;
	struct fault_stats s;
	fault_backend_stats(fb, &s);
	size_t nl;
	uint8_t *n = t_mem_copy(fb, &nl);
	snap_of(n, nl, fixed, &nw);
	free(n);
	char what[256];
	snprintf(what, sizeof what, "%s%s: power lost after the call returned", op->name,
		 fixed ? " (fixed)" : "");
	struct point pt = {.what = what, .fixed = fixed, .must_be_new = true, .atomic = op->atomic,
			   .changes = snaps_differ(&old, &nw), .old = &old, .nw = &nw, .fb = fb};
	enumerate(&pt, rng);
	bs_backend_free(fb);
	for (uint64_t k = 1; k <= s.writes; k++) {
		struct fault_plan p = {.crash_after = k, .tear_at = SIZE_MAX, .journal = 1};
		run_on(op, st, slen, fixed, &p, &fb, NULL);
		snprintf(what, sizeof what, "%s%s: power lost at write %llu/%llu", op->name,
			 fixed ? " (fixed)" : "", (unsigned long long)k,
			 (unsigned long long)s.writes);
		pt.must_be_new = false;
		pt.fb = fb;
		enumerate(&pt, rng);
		bs_backend_free(fb);
	}
	snap_free(&old);
	snap_free(&nw);
	free(st);
}

/* Every operation of OPS on BASE; no violation may be found. */
static void run_ops(const struct op *o, size_t n, const uint8_t *base, size_t blen, bool fixed,
		    uint64_t rng)
{
	unsigned long v0 = fig.violations;
	shown = 0;
	for (size_t i = 0; i < n; i++)
		run_op(&o[i], base, blen, fixed, &rng);
	assert_int_equal(fig.violations, v0);
}

static void test_powerloss_growable(void **state)
{
	(void)state;
	run_ops(ops, sizeof ops / sizeof *ops, base_img, base_len, false, seed);
}

static void test_powerloss_fixed(void **state)
{
	(void)state;
	run_ops(ops, sizeof ops / sizeof *ops, base_img, base_len, true, seed ^ 0x5555);
}

/* Growable storage only: the bridge's 64 KiB reservation does not fit the
 * fixed storage of these tests. */
static void test_powerloss_vtpm(void **state)
{
	(void)state;
	run_ops(vtpm_ops, sizeof vtpm_ops / sizeof *vtpm_ops, vtpm_img, vtpm_len, false,
		seed ^ 0x7777);
}

/* ---- formatting ------------------------------------------------------------ */

/* After an interrupted format the storage is a complete empty image, or
 * not an image at all (refused without CREATE, formatted with it). */
static void verify_format(const char *what, const uint8_t *img, size_t len, bool fixed,
			  bool must_be_image)
{
	fig.images++;
	struct fault_plan none = {.tear_at = SIZE_MAX};
	struct bs_backend *fb;
	bs_image *im;
	int rc = bs_image_open_backend(storage(img, len, fixed, &none, &fb), LABEL, 0, &im);
	if (rc == BS_OK) {
		char cw[256] = "";
		if (bs_image_count(im, BS_ITER_LIBRARY) != 1 || strcmp(bs_entry_type(t_entry_at(im, 0)), "bs.image") ||
		    bs_image_check(im, 1, check_cb, cw) != BS_OK)
			VIOLATION("%s: opens, but not as a valid empty image (%s)", what, cw);
		bs_image_close(im);
	} else {
		if (rc != BS_ECORRUPT || !strstr(last_error(), LABEL))
			VIOLATION("%s: refused with %d \"%s\"", what, rc, last_error());
		if (must_be_image)
			VIOLATION("%s: format returned, but the storage is no image", what);
	}
	bs_backend_free(fb);
	if (rc == BS_OK)
		return;
	/* Not an image: CREATE formats blank storage, and refuses anything
	 * else (it never formats over what might be someone's data; a fixed
	 * device interrupted mid-format must be formatted explicitly). */
	bool blank = true;
	for (size_t i = 0; i < len && blank; i++)
		blank = !img[i];
	rc = bs_image_open_backend(storage(img, len, fixed, &none, &fb), LABEL, BS_OPEN_CREATE, &im);
	if (rc == BS_OK)
		bs_image_close(im);
	if (blank && rc)
		VIOLATION("%s: CREATE cannot format blank storage: %s", what, last_error());
	if (!blank && rc != BS_ECORRUPT)
		VIOLATION("%s: CREATE over non-blank remains gave %d", what, rc);
	bs_backend_free(fb);
}

static void format_case(bool fixed, uint64_t *rng)
{
	size_t slen = fixed ? FIXED_SIZE : 0;
	uint8_t *st = calloc(1, FIXED_SIZE);
	assert_non_null(st);
	fig.ops++;
	struct fault_stats s;
	for (uint64_t k = 0;; k++) {
		struct fault_plan p = {.crash_after = k, .tear_at = SIZE_MAX, .journal = 1};
		struct bs_backend *fb;
		bs_image *im;
		int rc = bs_image_open_backend(storage(st, slen, fixed, &p, &fb), LABEL, BS_OPEN_CREATE, &im);
		if (rc == BS_OK)
			bs_image_close(im);
		if (k == 0) {
			assert_int_equal(rc, BS_OK);
			fault_backend_stats(fb, &s);
		}
		struct fault_write w[MAXP];
		size_t n = fault_backend_pending(fb, w, MAXP);
		assert_true(n <= MAXP);
		fig.points++;
		static struct fates fs[MAXP];
		for (size_t i = 0; i < n; i++)
			fates_for(&w[i], &fs[i], rng);
		/* One change at a time over the others whole or lost, in order
		 * (format writes do not overlap but for the fixed header). */
		size_t order[MAXP];
		struct fault_fate f[MAXP];
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		for (int others = 0; others < 2; others++)
			for (size_t i = 0; i < (n ? n : 1); i++)
				for (size_t c = 0; c < (n ? fs[i].n : 1); c++) {
					for (size_t j = 0; j < n; j++)
						f[j] = (struct fault_fate){
							others ? FATE_LOST : FATE_WHOLE, 0};
					if (n)
						f[i] = fs[i].f[c];
					uint8_t *img;
					size_t len;
					assert_int_equal(fault_backend_powerloss(fb, order, f, &img, &len),
							 BS_OK);
					char what[256];
					snprintf(what, sizeof what,
						 "format%s: power lost %s%llu, change %zu fate %d/%llu",
						 fixed ? " (fixed)" : "", k ? "at write " : "after return ",
						 (unsigned long long)k, i, n ? f[i].fate : -1,
						 (unsigned long long)(n ? f[i].arg : 0));
					verify_format(what, img, len, fixed, k == 0);
					free(img);
				}
		bs_backend_free(fb);
		if (k == s.writes)
			break;
	}
	free(st);
}

static void test_format(void **state)
{
	(void)state;
	unsigned long v0 = fig.violations;
	shown = 0;
	uint64_t rng = seed ^ 0xf00;
	format_case(false, &rng);
	format_case(true, &rng);
	assert_int_equal(fig.violations, v0);
}

/* ---- I/O errors and a full device ------------------------------------------ */

static void io_errors(const struct op *op, bool fixed)
{
	size_t slen;
	uint8_t *st = pad(base_img, base_len, fixed, &slen);
	struct snap old, nw;
	snap_of(st, slen, fixed, &old);
	struct fault_plan dry = {.tear_at = SIZE_MAX};
	struct bs_backend *fb;
	int rc = run_on(op, st, slen, fixed, &dry, &fb, NULL);
	if (rc) {
		bs_backend_free(fb);
		snap_free(&old);
		free(st);
		assert_true(fixed && (rc == BS_EUNSUPPORTED || rc == BS_ENOSPC));
		return;
	}
	struct fault_stats s;
	fault_backend_stats(fb, &s);
	size_t nl;
	uint8_t *n = t_mem_copy(fb, &nl);
	bs_backend_free(fb);
	snap_of(n, nl, fixed, &nw);
	free(n);
	bool changes = snaps_differ(&old, &nw);
	static const int codes[2] = {BS_EIO, BS_ENOSPC};
	for (uint64_t k = 1; k <= s.writes + s.syncs; k++)
		for (int c = 0; c < 2; c++) {
			struct fault_plan p = {.tear_at = SIZE_MAX, .fail_at = k, .fail_code = codes[c]};
			char msg[1024];
			rc = run_on(op, st, slen, fixed, &p, &fb, msg);
			fig.ioerrs++;
			char what[256];
			snprintf(what, sizeof what, "%s%s: %s at I/O %llu/%llu", op->name,
				 fixed ? " (fixed)" : "", c ? "ENOSPC" : "EIO", (unsigned long long)k,
				 (unsigned long long)(s.writes + s.syncs));
			if (rc != BS_OK && rc != codes[c])
				VIOLATION("%s: returned %d (%s), not the storage's error", what, rc, msg);
			if (rc != BS_OK && !strstr(msg, LABEL))
				VIOLATION("%s: message does not name the image: \"%s\"", what, msg);
			size_t cl;
			uint8_t *cur = t_mem_copy(fb, &cl);
			bs_backend_free(fb);
			int r = verify(what, cur, cl, fixed, &old, &nw, op->atomic);
			if (r == 0 && rc == BS_OK && changes)
				VIOLATION("%s: the call succeeded but the change is lost", what);
			free(cur);
		}
	snap_free(&old);
	snap_free(&nw);
	free(st);
}

static void test_io_errors(void **state)
{
	(void)state;
	unsigned long v0 = fig.violations;
	shown = 0;
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		io_errors(&ops[i], false);
		io_errors(&ops[i], true);
	}
	assert_int_equal(fig.violations, v0);
}

/* ---- a failed sync ----------------------------------------------------------- */

/* Where the only copy of PAT (32 octets of C) is in IMG, or SIZE_MAX. */
static size_t find32(const uint8_t *img, size_t len, int c)
{
	uint8_t pat[32];
	memset(pat, c, sizeof pat);
	size_t at = SIZE_MAX;
	for (size_t i = 0; i + sizeof pat <= len; i++)
		if (!memcmp(img + i, pat, sizeof pat)) {
			assert_true(at == SIZE_MAX);
			at = i;
		}
	return at;
}

/* Opens IMG/LEN from memory and reads dev/x into OUT (32 octets). */
static void read_x(const uint8_t *img, size_t len, uint8_t out[32], int *st)
{
	bs_image *im;
	assert_int_equal(t_open_mem(img, len, 0, &im, NULL), BS_OK);
	bs_entry *e = find(im, "dev", "x");
	size_t l;
	assert_int_equal(bs_entry_read(e, out, 32, &l), BS_OK);
	assert_int_equal(l, 32);
	assert_int_equal(bs_entry_check(e, st), BS_OK);
	bs_image_close(im);
}

/* A write whose write or sync fails, where a failed sync loses the write
 * (Linux may mark such pages clean) while reads still return it: no later
 * reader may take the lost value for current, a power loss after it keeps
 * the last durable value, and the next write (by the same handle or by the
 * next process, which sees what reads return) never goes over the slot
 * holding the last durable value. */
static void failed_sync(bool fixed)
{
	uint8_t va[32], vb[32], vc[32], vd[32], got[32];
	memset(va, 'A', 32);
	memset(vb, 'B', 32);
	memset(vc, 'C', 32);
	memset(vd, 'D', 32);
	struct bs_backend *mb;
	bs_image *im;
	assert_int_equal(t_open_mem(NULL, 0, BS_OPEN_CREATE, &im, &mb), BS_OK);
	struct bs_entry_opts o = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 32};
	bs_entry *e;
	assert_int_equal(bs_entry_create(im, "dev", "x", &o, va, 32, &e), BS_OK);
	assert_int_equal(bs_entry_write(e, vb, 32), BS_OK); /* slots: A (gen 1), B (gen 2) */
	size_t l0;
	uint8_t *base0 = t_mem_copy(mb, &l0);
	bs_image_close(im);
	size_t blen;
	uint8_t *base = pad(base0, l0, fixed, &blen);
	free(base0);
	unsigned failures = 0;
	for (uint64_t at = 1; at < 40; at++) {
		struct fault_plan p = {.tear_at = SIZE_MAX, .journal = 1, .lossy_sync = 1,
				       .fail_at = at, .fail_code = BS_EIO};
		struct bs_backend *fb;
		struct bs_backend *be = storage(base, blen, fixed, &p, &fb);
		if (bs_image_open_backend(be, "fault.img", 0, &im)) {
			bs_backend_free(fb);
			continue; /* the open itself failed (its own writes); it freed BE */
		}
		e = find(im, "dev", "x");
		int rc = bs_entry_write(e, vc, 32);
		if (rc == BS_OK) {
			bs_image_close(im);
			bs_backend_free(fb);
			break; /* past the write's writes and syncs */
		}
		failures++;
		assert_int_equal(rc, BS_EIO);
		assert_non_null(strstr(last_error(), "fault.img"));
		/* What the next process reads: the durable value B, and no
		 * report of a rollback (the failed write was never committed). */
		size_t sl;
		const uint8_t *seen = fault_backend_data(fb, &sl);
		uint8_t *now = malloc(sl);
		assert_non_null(now);
		memcpy(now, seen, sl);
		int st = -1;
		read_x(now, sl, got, &st);
		if (memcmp(got, vb, 32))
			fail_msg("%s storage, failure at op %llu: the next reader reads '%c', not the "
				 "durable value",
				 fixed ? "fixed" : "growable", (unsigned long long)at, got[0]);
		assert_int_equal(st, BS_STATE_CURRENT);
		/* Power lost now: whatever the pending writes become, B. */
		size_t npend = fault_backend_pending(fb, NULL, 0);
		struct fault_fate *all = calloc(npend ? npend : 1, sizeof *all);
		assert_non_null(all);
		for (int fate = FATE_LOST; fate <= FATE_WHOLE; fate++) {
			for (size_t k = 0; k < npend; k++)
				all[k] = (struct fault_fate){fate, 0};
			uint8_t *d;
			size_t dl;
			assert_int_equal(fault_backend_powerloss(fb, NULL, all, &d, &dl), BS_OK);
			read_x(d, dl, got, &st);
			assert_memory_equal(got, vb, 32);
			free(d);
		}
		free(all);
		/* The durable slot of B; the next write must not go over it. */
		uint8_t *dur;
		size_t durl;
		assert_int_equal(fault_backend_powerloss(fb, NULL, NULL, &dur, &durl), BS_OK);
		size_t b_at = find32(dur, durl, 'B');
		assert_true(b_at != SIZE_MAX);
		/* The same handle writes on, if it can... */
		if (bs_entry_write(e, vd, 32) == BS_OK) {
			size_t nl;
			const uint8_t *n = fault_backend_data(fb, &nl);
			assert_true(b_at + 32 <= nl);
			assert_memory_equal(n + b_at, vb, 32);
			read_x(n, nl, got, &st);
			assert_memory_equal(got, vd, 32);
		}
		bs_image_close(im);
		bs_backend_free(fb);
		/* ...and so does the next process, on what reads return. */
		bs_image *im2;
		struct bs_backend *mb2;
		assert_int_equal(t_open_mem(now, sl, 0, &im2, &mb2), BS_OK);
		assert_int_equal(bs_entry_write(find(im2, "dev", "x"), vd, 32), BS_OK);
		size_t nl;
		const uint8_t *n = t_mem_data(mb2, &nl);
		assert_true(b_at + 32 <= nl);
		if (memcmp(n + b_at, vb, 32))
			fail_msg("%s storage, failure at op %llu: the next write went over the "
				 "last durable value",
				 fixed ? "fixed" : "growable", (unsigned long long)at);
		bs_image_close(im2);
		free(now);
		free(dur);
	}
	assert_true(failures >= 2); /* the slot's write and its sync */
	free(base);
}

static void test_failed_sync(void **state)
{
	(void)state;
	failed_sync(false);
	failed_sync(true);
}

/* ---- the model itself ------------------------------------------------------ */

/* The replay does what the header promises, on a hand-made history. */
static void test_journal_model(void **state)
{
	(void)state;
	uint8_t init[1024];
	memset(init, 'a', sizeof init);
	struct fault_plan p = {.tear_at = SIZE_MAX, .journal = 1};
	struct bs_backend *fb;
	assert_int_equal(fault_backend_new(init, sizeof init, &p, &fb), BS_OK);
	uint8_t b[1200];
	memset(b, 'b', sizeof b);
	assert_int_equal(fb->ops->write_at(fb->ctx, b, 10, 0), BS_OK);
	assert_int_equal(fb->ops->sync(fb->ctx), BS_OK); /* durable: 10 'b' */
	memset(b, 'c', sizeof b);
	assert_int_equal(fb->ops->write_at(fb->ctx, b, 1000, 100), BS_OK); /* 100..1100 */
	memset(b, 'd', sizeof b);
	assert_int_equal(fb->ops->write_at(fb->ctx, b, 4, 500), BS_OK);
	struct fault_write w[4];
	assert_int_equal(fault_backend_pending(fb, w, 4), 2);
	assert_int_equal(w[0].off, 100);
	assert_int_equal(w[0].len, 1000);
	uint8_t *o;
	size_t ol;
	/* Everything lost: the synced content. */
	assert_int_equal(fault_backend_powerloss(fb, NULL, NULL, &o, &ol), BS_OK);
	assert_int_equal(ol, 1024);
	assert_int_equal(o[9], 'b');
	assert_int_equal(o[10], 'a');
	assert_int_equal(o[1023], 'a');
	free(o);
	/* Reversed order: the older write lands last and wins. */
	struct fault_fate f[2] = {{FATE_WHOLE, 0}, {FATE_WHOLE, 0}};
	size_t rev[2] = {1, 0};
	assert_int_equal(fault_backend_powerloss(fb, rev, f, &o, &ol), BS_OK);
	assert_int_equal(ol, 1100);
	assert_int_equal(o[500], 'c');
	free(o);
	assert_int_equal(fault_backend_powerloss(fb, NULL, f, &o, &ol), BS_OK);
	assert_int_equal(o[500], 'd');
	free(o);
	/* Torn after 5 octets; sectors 2 (512..1024) only; size only. */
	f[0] = (struct fault_fate){FATE_PREFIX, 5};
	f[1] = (struct fault_fate){FATE_LOST, 0};
	assert_int_equal(fault_backend_powerloss(fb, NULL, f, &o, &ol), BS_OK);
	assert_int_equal(ol, 1024);
	assert_int_equal(o[104], 'c');
	assert_int_equal(o[105], 'a');
	free(o);
	f[0] = (struct fault_fate){FATE_SECTORS, 2};
	assert_int_equal(fault_backend_powerloss(fb, NULL, f, &o, &ol), BS_OK);
	assert_int_equal(ol, 1024);
	assert_int_equal(o[511], 'a');
	assert_int_equal(o[512], 'c');
	assert_int_equal(o[1023], 'c');
	free(o);
	f[0] = (struct fault_fate){FATE_ZEROS, 0};
	assert_int_equal(fault_backend_powerloss(fb, NULL, f, &o, &ol), BS_OK);
	assert_int_equal(ol, 1100);
	assert_int_equal(o[1000], 'a');
	assert_int_equal(o[1050], 0);
	free(o);
	bs_backend_free(fb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_model),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_powerloss_growable),
		cmocka_unit_test(test_powerloss_fixed),
		cmocka_unit_test(test_powerloss_vtpm),
		cmocka_unit_test(test_io_errors),
		cmocka_unit_test(test_failed_sync),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
