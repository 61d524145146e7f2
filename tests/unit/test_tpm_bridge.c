/* test_tpm_bridge.c - the libtpms bridge (nvram/tpm.c, include/blobstore/tpm.h): what
 * libtpms gets back for missing, corrupt, refused and undecryptable state,
 * and a TPM's state surviving TPMLIB_Terminate()/TPMLIB_MainInit(). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#include <blobstore/crypt.h>
#include "common.h"
#include <blobstore/tpm.h>

static const uint8_t startup_clear[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
/* TPM2_NV_DefineSpace(TPM_RH_OWNER, password session, index 0x01500001,
 * SHA-256, OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD, 32 octets). */
static const uint8_t nv_define[] = {
	0x80, 0x02, 0, 0, 0, 45, 0, 0, 0x01, 0x2a, /* header */
	0x40, 0, 0, 0x01,                          /* TPM_RH_OWNER */
	0, 0, 0, 9, 0x40, 0, 0, 0x09, 0, 0, 0, 0, 0, /* password session */
	0, 0,                                      /* auth */
	0, 14, 0x01, 0x50, 0, 0x01, 0, 0x0b, 0, 0x06, 0, 0x06, 0, 0, 0, 32,
};
static const uint8_t nv_readpublic[] = {0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x69,
					0x01, 0x50, 0, 0x01};

struct fixture {
	char *path;
	bs_image *img;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->path = t_tmppath("tpm-bridge.img");
	unlink(f->path);
	assert_int_equal(bs_image_open(f->path, BS_OPEN_CREATE, &f->img), BS_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	bs_tpm_unregister();
	bs_image_close(f->img);
	unlink(f->path);
	free(f->path);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	bs_image_close(f->img);
	assert_int_equal(bs_image_open(f->path, 0, &f->img), BS_OK);
}

/* Runs one TPM command and returns its response code. */
static uint32_t tpm_rc(const uint8_t *cmd, size_t len)
{
	unsigned char *r = NULL;
	uint32_t rl = 0, rs = 0;
	assert_int_equal(TPMLIB_Process(&r, &rl, &rs, (unsigned char *)cmd, (uint32_t)len),
			 TPM_SUCCESS);
	assert_true(rl >= 10);
	uint32_t rc = (uint32_t)r[6] << 24 | (uint32_t)r[7] << 16 | (uint32_t)r[8] << 8 | r[9];
	free(r);
	return rc;
}

static TPM_RESULT tpm_init(bs_image *img)
{
	assert_int_equal(bs_tpm_register(img), BS_OK);
	assert_int_equal(TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2), TPM_SUCCESS);
	return TPMLIB_MainInit();
}

static uint8_t *file_bytes(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return p;
}

/* MainInit must fail over the state in F's image and leave the file as it
 * was: libtpms did not manufacture a fresh TPM over it. */
static void assert_init_refused(struct fixture *f, int load_code)
{
	void *p;
	size_t n;
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &p, &n), load_code);
	size_t before_len, after_len;
	uint8_t *before = file_bytes(f->path, &before_len);
	assert_int_not_equal(tpm_init(f->img), TPM_SUCCESS);
	const char *msg;
	assert_int_equal(bs_tpm_last_error(&msg), load_code);
	assert_non_null(strstr(msg, "permall"));
	TPMLIB_Terminate();
	uint8_t *after = file_bytes(f->path, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);
}

static void test_entry_names(void **state)
{
	(void)state;
	char buf[32];
	assert_int_equal(bs_tpm_entry_name(0, "permall", buf, sizeof buf), BS_OK);
	assert_string_equal(buf, "permall");
	assert_int_equal(bs_tpm_entry_name(3, "volatilestate", buf, sizeof buf), BS_OK);
	assert_string_equal(buf, "3/volatilestate");
	assert_int_equal(bs_tpm_entry_name(0, "a/b", buf, sizeof buf), BS_EINVAL);
	assert_int_equal(bs_tpm_entry_name(0, "", buf, sizeof buf), BS_EINVAL);
	assert_int_equal(bs_tpm_entry_name(7, "permall", buf, 5), BS_ERANGE);
}

static void test_missing_state_is_manufactured(void **state)
{
	struct fixture *f = *state;
	void *p;
	size_t n;
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &p, &n), BS_ENOENT);
	/* TPM_RETRY for the missing permall: libtpms manufactures and stores. */
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	TPMLIB_Terminate();
	bs_entry *e;
	assert_int_equal(bs_entry_find(f->img, BS_TPM_TYPE, BS_TPM_PERMALL, &e), BS_OK);
	assert_true(bs_entry_is_slotted(e));
	assert_string_equal(bs_checksum_name(bs_entry_checksum(e)), "crc32c");
	assert_true(bs_entry_capacity(e) >= BS_TPM_MIN_CAPACITY);
	assert_null(bs_cipher_name(bs_entry_cipher(e)));
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &p, &n), BS_OK);
	assert_true(n > 500);
	free(p);
	assert_int_equal(bs_tpm_last_error(NULL), BS_OK);
}

static void test_corrupt_state_fails(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_define, sizeof nv_define), 0);
	TPMLIB_Terminate();
	/* Both slots now hold a permall (manufacture, then the NV change);
	 * flip one octet inside each, found by its content in the file. */
	void *cur;
	size_t curlen;
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &cur, &curlen), BS_OK);
	bs_image_close(f->img);
	f->img = NULL;
	size_t flen;
	uint8_t *file = file_bytes(f->path, &flen);
	/* The tail of a permall differs between generations less than its
	 * head; search a window from the middle of the current one. */
	size_t win = 32, hits = 0;
	const uint8_t *needle = (const uint8_t *)cur + curlen / 2;
	int fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	for (size_t i = 0; i + win <= flen; i++) {
		if (memcmp(file + i, needle, win))
			continue;
		uint8_t b = file[i] ^ 0x55;
		assert_int_equal(pwrite(fd, &b, 1, (off_t)i), 1);
		hits++;
	}
	close(fd);
	free(file);
	free(cur);
	assert_true(hits >= 1);
	assert_int_equal(bs_image_open(f->path, 0, &f->img), BS_OK);
	/* If the flip hit only the newest slot, the older one is read: then
	 * corrupt that one too by the same search. */
	if (bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &cur, &curlen) == BS_OK) {
		bs_image_close(f->img);
		f->img = NULL;
		file = file_bytes(f->path, &flen);
		needle = (const uint8_t *)cur + curlen / 2;
		fd = open(f->path, O_WRONLY);
		for (size_t i = 0; i + win <= flen; i++)
			if (!memcmp(file + i, needle, win)) {
				uint8_t b = file[i] ^ 0x55;
				assert_int_equal(pwrite(fd, &b, 1, (off_t)i), 1);
			}
		close(fd);
		free(file);
		free(cur);
		assert_int_equal(bs_image_open(f->path, 0, &f->img), BS_OK);
	}
	assert_init_refused(f, BS_ECORRUPT);
}

static void test_refused_entry_fails(void **state)
{
	struct fixture *f = *state;
	static const uint8_t blob[64] = {1, 2, 3};
	struct bs_attr future = BS_ATTR("tpm.future-layout", BS_ATTR_MANDATORY, NULL, 0);
	struct bs_entry_opts eo = {.version = BS_ENTRY_OPTS_VERSION, .capacity = 1024, .attrs = &future, .nattrs = 1};
	assert_int_equal(bs_entry_create(f->img, BS_TPM_TYPE, BS_TPM_PERMALL, &eo, blob,
					  sizeof blob, NULL),
			 BS_OK);
	reopen(f);
	assert_init_refused(f, BS_EUNSUPPORTED);
}

static void test_empty_entry_fails(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(bs_entry_create(f->img, BS_TPM_TYPE, BS_TPM_PERMALL, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = 1024, .attrs = NULL, .nattrs = 0}, NULL, 0, NULL),
			 BS_OK);
	size_t before_len, after_len;
	uint8_t *before = file_bytes(f->path, &before_len);
	assert_int_not_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(bs_tpm_last_error(NULL), BS_ECORRUPT);
	TPMLIB_Terminate();
	uint8_t *after = file_bytes(f->path, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);
}

static bs_key *test_key(void)
{
	uint8_t k[32];
	t_fill(k, sizeof k, 42);
	bs_key *key;
	assert_int_equal(bs_key_from_bytes(k, sizeof k, &key), BS_OK);
	return key;
}

static void test_encrypted_state(void **state)
{
	struct fixture *f = *state;
	bs_key *key = test_key();
	assert_int_equal(bs_image_init_encryption(f->img, key, NULL), BS_OK);
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_define, sizeof nv_define), 0);
	TPMLIB_Terminate();
	bs_entry *e;
	assert_int_equal(bs_entry_find(f->img, BS_TPM_TYPE, BS_TPM_PERMALL, &e), BS_OK);
	assert_non_null(bs_cipher_name(bs_entry_cipher(e)));

	/* Without the key: undecryptable, and no new entry is stored in the
	 * clear. */
	reopen(f);
	assert_int_equal(bs_tpm_store(f->img, 0, "other", "x", 1), BS_EKEY);
	assert_init_refused(f, BS_EKEY);

	/* With the key the same TPM comes back. */
	assert_int_equal(bs_image_set_key(f->img, key), BS_OK);
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_readpublic, sizeof nv_readpublic), 0);
	TPMLIB_Terminate();
	bs_key_free(key);
}

static void test_state_round_trip(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	/* TPM_RC_HANDLE (index 1): no such index yet. */
	assert_int_equal(tpm_rc(nv_readpublic, sizeof nv_readpublic), 0x18b);
	assert_int_equal(tpm_rc(nv_define, sizeof nv_define), 0);
	TPMLIB_Terminate();
	void *p1;
	size_t n1;
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &p1, &n1), BS_OK);

	/* A new process would see the same: reopen the image. */
	reopen(f);
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_readpublic, sizeof nv_readpublic), 0);
	/* The volatile state: stored, then resumed by the next init (the TPM
	 * is started already, so TPM2_Startup answers TPM_RC_INITIALIZE). */
	assert_int_equal(bs_tpm_store_volatile(), BS_OK);
	TPMLIB_Terminate();
	void *p2;
	size_t n2;
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &p2, &n2), BS_OK);
	/* Not manufactured again: the seeds are those of the first run. */
	assert_true(n2 >= 500 && n1 >= 500);
	assert_memory_equal(p1, p2, 64);
	free(p1);
	free(p2);
	void *v;
	size_t vn;
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_VOLATILE, &v, &vn), BS_OK);
	assert_true(vn > 1000);
	free(v);
	reopen(f);
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0x100);
	assert_int_equal(tpm_rc(nv_readpublic, sizeof nv_readpublic), 0);
	TPMLIB_Terminate();

	/* Deleting the volatile state makes the next start a cold one.  The
	 * entry stays, empty, so that resume cycles do not grow the image. */
	struct bs_image_stat st1 = BS_IMAGE_STAT_INIT, st2 = BS_IMAGE_STAT_INIT;
	assert_int_equal(bs_image_stat(f->img, &st1), BS_OK);
	assert_int_equal(bs_tpm_delete(f->img, 0, BS_TPM_VOLATILE, 1), BS_OK);
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_VOLATILE, &v, &vn), BS_ENOENT);
	assert_int_equal(bs_image_stat(f->img, &st2), BS_OK);
	assert_int_equal(st1.size, st2.size);
	bs_entry *ve;
	assert_int_equal(bs_entry_find(f->img, BS_TPM_TYPE, BS_TPM_VOLATILE, &ve), BS_OK);
	assert_int_equal(bs_tpm_delete(f->img, 0, BS_TPM_VOLATILE, 1), BS_ENOENT);
	assert_int_equal(bs_tpm_delete(f->img, 0, BS_TPM_VOLATILE, 0), BS_OK);
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	TPMLIB_Terminate();
}

static void test_store_grows_with_headroom(void **state)
{
	struct fixture *f = *state;
	size_t big = 100000;
	uint8_t *p = malloc(big);
	assert_non_null(p);
	t_fill(p, big, 7);
	assert_int_equal(bs_tpm_store(f->img, 2, BS_TPM_PERMALL, p, 1000), BS_OK);
	bs_entry *e;
	assert_int_equal(bs_entry_find(f->img, BS_TPM_TYPE, "2/permall", &e), BS_OK);
	assert_int_equal(bs_entry_capacity(e), BS_TPM_MIN_CAPACITY);
	assert_int_equal(bs_tpm_store(f->img, 2, BS_TPM_PERMALL, p, big), BS_OK);
	assert_int_equal(bs_entry_find(f->img, BS_TPM_TYPE, "2/permall", &e), BS_OK);
	assert_true(bs_entry_capacity(e) >= 2 * big);
	reopen(f);
	t_assert_data(f->img, BS_TPM_TYPE, "2/permall", p, big);
	assert_int_equal(bs_tpm_store(f->img, 0, BS_TPM_PERMALL, p,
					 (size_t)BS_TPM_MAX_BLOB + 1),
			 BS_ELIMIT);
	free(p);
	assert_int_equal(bs_image_check(f->img, 1, NULL, NULL), BS_OK);
}

/* Staged blobs (CMD_SET_STATEBLOB): libtpms starts on them without the
 * image changing; only a commit stores them, and an abort (a refused blob)
 * leaves the image byte for byte as it was, its old state startable. */
static void test_staging_commits_only_what_started(void **state)
{
	struct fixture *f = *state;
	/* TPM A: a defined NV index. */
	assert_int_equal(tpm_init(f->img), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_define, sizeof nv_define), 0);
	TPMLIB_Terminate();
	void *a;
	size_t alen;
	assert_int_equal(bs_tpm_load(f->img, 0, BS_TPM_PERMALL, &a, &alen), BS_OK);
	/* TPM B, in another image: no index. */
	char *p2 = t_tmppath("tpm-bridge-b.img");
	unlink(p2);
	bs_image *b;
	assert_int_equal(bs_image_open(p2, BS_OPEN_CREATE, &b), BS_OK);
	assert_int_equal(tpm_init(b), TPM_SUCCESS);
	TPMLIB_Terminate();
	size_t before_len, after_len;
	uint8_t *before = file_bytes(p2, &before_len);

	/* A corrupt staged permall: MainInit fails, abort, B unchanged. */
	uint8_t *bad = malloc(alen);
	assert_non_null(bad);
	memcpy(bad, a, alen);
	bad[alen / 2] ^= 0x5a;
	bad[alen - 1] ^= 0xff;
	assert_int_equal(bs_tpm_stage_put(BS_TPM_PERMALL, bad, alen), BS_EINVAL); /* not staging */
	assert_int_equal(bs_tpm_stage_begin(), BS_OK);
	assert_true(bs_tpm_staging());
	assert_int_equal(bs_tpm_stage_put(BS_TPM_PERMALL, bad, alen), BS_OK);
	assert_int_not_equal(tpm_init(b), TPM_SUCCESS);
	TPMLIB_Terminate();
	bs_tpm_stage_abort();
	assert_false(bs_tpm_staging());
	uint8_t *after = file_bytes(p2, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(after);
	/* B's own state still starts: no index. */
	assert_int_equal(tpm_init(b), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_readpublic, sizeof nv_readpublic), 0x18b);
	TPMLIB_Terminate();

	/* A's permall staged: B starts as A, the image still unchanged while
	 * staging (libtpms' own stores are staged too), A after the commit. */
	before = (free(before), file_bytes(p2, &before_len));
	assert_int_equal(bs_tpm_stage_begin(), BS_OK);
	assert_int_equal(bs_tpm_stage_put(BS_TPM_PERMALL, a, alen), BS_OK);
	assert_int_equal(bs_tpm_stage_put(BS_TPM_VOLATILE, NULL, 0), BS_OK);
	assert_int_equal(tpm_init(b), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_readpublic, sizeof nv_readpublic), 0);
	assert_int_equal(bs_tpm_store_volatile(), BS_OK);
	after = file_bytes(p2, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(after);
	assert_int_equal(bs_tpm_stage_commit(b), BS_OK);
	assert_false(bs_tpm_staging());
	TPMLIB_Terminate();
	void *v;
	size_t vn;
	assert_int_equal(bs_tpm_load(b, 0, BS_TPM_VOLATILE, &v, &vn), BS_OK);
	free(v);
	bs_image_close(b);
	assert_int_equal(bs_image_open(p2, 0, &b), BS_OK);
	assert_int_equal(bs_tpm_delete(b, 0, BS_TPM_VOLATILE, 0), BS_OK);
	assert_int_equal(tpm_init(b), TPM_SUCCESS);
	assert_int_equal(tpm_rc(startup_clear, sizeof startup_clear), 0);
	assert_int_equal(tpm_rc(nv_readpublic, sizeof nv_readpublic), 0);
	TPMLIB_Terminate();
	/* forget: the image's blob shows through again. */
	assert_int_equal(bs_tpm_stage_begin(), BS_OK);
	assert_int_equal(bs_tpm_stage_put(BS_TPM_PERMALL, bad, alen), BS_OK);
	assert_int_equal(bs_tpm_stage_forget(BS_TPM_PERMALL), BS_OK);
	assert_int_equal(tpm_init(b), TPM_SUCCESS);
	TPMLIB_Terminate();
	bs_tpm_stage_abort();
	bs_tpm_unregister();
	bs_image_close(b);
	unlink(p2);
	free(p2);
	free(before);
	free(bad);
	free(a);
}

static void test_callbacks_without_image_fail(void **state)
{
	(void)state;
	bs_tpm_unregister();
	assert_null(bs_tpm_image());
	assert_int_equal(bs_tpm_register(NULL), BS_EINVAL);
	assert_int_equal(bs_tpm_set_locality(5), BS_EINVAL);
	assert_int_equal(bs_tpm_set_locality(3), BS_OK);
	assert_int_equal(bs_tpm_locality(), 3);
	assert_int_equal(bs_tpm_store_volatile(), BS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_names),
		cmocka_unit_test_setup_teardown(test_missing_state_is_manufactured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_state_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_entry_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_entry_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encrypted_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_grows_with_headroom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_staging_commits_only_what_started, setup, teardown),
		cmocka_unit_test(test_callbacks_without_image_fail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
