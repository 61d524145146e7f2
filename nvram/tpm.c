/* tpm.c - the libtpms bridge (include/blobstore/tpm.h): libtpms' named state blobs as
 * entries of one image, and the callbacks that hand them to libtpms.
 *
 * The one rule that matters most: loaddata answers TPM_RETRY ("no state,
 * manufacture a TPM") only for BS_ENOENT.  Every other failure is TPM_FAIL,
 * so a damaged or locked state stops the TPM instead of being replaced. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_memory.h>
#include <libtpms/tpm_types.h>

#include <blobstore/crypt.h>
#include <blobstore/nvram.h>
#include <blobstore/sys/util.h>
#include <blobstore/tpm.h>

static const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

/* libtpms has no context pointer in its callbacks: the bridge's state is
 * process-wide, like libtpms' own. */
static struct {
	bs_image *img;
	unsigned locality;
	int last_rc;
	char last_msg[512];
	bs_tpm_trace_fn trace;
	void *trace_ctx;
} bridge;

/* Blobs held in memory instead of the image while staging (see tpm.h):
 * what CMD_SET_STATEBLOB brought, and what libtpms stores meanwhile. */
#define STAGE_MAX 8
static struct staged {
	char name[64]; /* entry name */
	uint8_t *data;
	size_t len;    /* 0: the blob does not exist */
} stage[STAGE_MAX];
static size_t nstage;
static bool staging;

static struct staged *stage_find(const char *ename)
{
	for (size_t i = 0; i < nstage; i++)
		if (!strcmp(stage[i].name, ename))
			return &stage[i];
	return NULL;
}

static void stage_clear(struct staged *st)
{
	if (st->data) {
		explicit_bzero(st->data, st->len);
		free(st->data);
	}
	st->data = NULL;
	st->len = 0;
}

/* Stages DATA/LEN as entry ENAME (LEN 0: absent). */
static int stage_set(const char *ename, const void *data, size_t len)
{
	struct staged *st = stage_find(ename);
	if (!st) {
		if (nstage == STAGE_MAX)
			return bs_error_set(NULL, BS_TPM_TYPE, ename, BS_NO_OFFSET, BS_ELIMIT, 0,
					    "more than %u staged TPM blobs", STAGE_MAX);
		st = &stage[nstage++];
		memset(st, 0, sizeof *st);
		snprintf(st->name, sizeof st->name, "%s", ename);
	}
	uint8_t *copy = NULL;
	if (len) {
		if (len > BS_TPM_MAX_BLOB)
			return bs_error_set(NULL, BS_TPM_TYPE, ename, BS_NO_OFFSET, BS_ELIMIT, 0,
					    "TPM blob of %zu octets exceeds the limit of %u", len,
					    BS_TPM_MAX_BLOB);
		if (!(copy = malloc(len)))
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0,
					    "out of memory");
		memcpy(copy, data, len);
	}
	stage_clear(st);
	st->data = copy;
	st->len = len;
	return BS_OK;
}

int bs_tpm_entry_name(uint32_t tpm_number, const char *name, char *buf, size_t cap)
{
	if (!name || !*name || strchr(name, '/') || !buf)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "invalid TPM blob name");
	int n = tpm_number ? snprintf(buf, cap, "%u/%s", (unsigned)tpm_number, name)
			   : snprintf(buf, cap, "%s", name);
	if (n < 0 || (size_t)n >= cap)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ERANGE, 0, "TPM blob name too long");
	return BS_OK;
}

/* Opens the device behind blob NAME; BS_ENOENT when there is none. */
static int open_blob(bs_image *img, uint32_t tpm_number, const char *name, bs_device **dev,
		     char *ename, size_t cap, unsigned grow_factor)
{
	int rc = bs_tpm_entry_name(tpm_number, name, ename, cap);
	if (rc)
		return rc;
	if (!img)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "no image");
	struct bs_device_opts o = BS_DEVICE_OPTS_INIT;
	o.grow_factor = grow_factor;
	return bs_device_open(img, BS_TPM_TYPE, ename, &o, dev);
}

/* The volatile state comes and goes with every resume.  Deleting its
 * entry and appending a new one each time would leave a hole per cycle (the
 * store appends at the end, compact reclaims), so "no volatile state" is
 * an empty value in a kept entry: one slot write, no growth. */
static bool is_volatile(const char *name)
{
	return name && !strcmp(name, BS_TPM_VOLATILE);
}

int bs_tpm_load(bs_image *img, uint32_t tpm_number, const char *name, void **out, size_t *len)
{
	char ename[64];
	bs_device *dev = NULL;
	if (!out || !len)
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
				    "invalid argument");
	void *d = NULL;
	size_t n = 0;
	int rc = open_blob(img, tpm_number, name, &dev, ename, sizeof ename, 0);
	if (!rc)
		rc = bs_device_get_alloc(dev, &d, &n);
	bs_device_close(dev);
	if (!rc && n == 0 && is_volatile(name)) {
		free(d);
		return bs_error_set(bs_image_label(img), BS_TPM_TYPE, ename, BS_NO_OFFSET, BS_ENOENT, 0,
				    "no volatile state (the entry is empty)");
	}
	if (!rc) {
		*out = d;
		*len = n;
	}
	return rc;
}

static size_t capacity_for(size_t len)
{
	size_t c = len > SIZE_MAX / 2 ? len : 2 * len;
	return c < BS_TPM_MIN_CAPACITY ? BS_TPM_MIN_CAPACITY : c;
}

int bs_tpm_store(bs_image *img, uint32_t tpm_number, const char *name, const void *data,
		    size_t len)
{
	char ename[64];
	bs_device *dev = NULL;
	if (len && !data)
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "invalid argument");
	if (len > BS_TPM_MAX_BLOB)
		return bs_error_set(img ? bs_image_label(img) : "", BS_TPM_TYPE, name, BS_NO_OFFSET, BS_ELIMIT, 0,
				   "TPM blob of %zu octets exceeds the limit of %u", len,
				   BS_TPM_MAX_BLOB);
	/* Grow with headroom (twice the size) so that a slowly growing
	 * permall does not cost a rewrite of the entry on every store; the
	 * growth and the new state are one rewrite, so a crash leaves the old
	 * state or the new one. */
	int rc = open_blob(img, tpm_number, name, &dev, ename, sizeof ename, 2);
	if (rc == BS_ENOENT) {
		struct bs_entry_opts eo = {.version = BS_ENTRY_OPTS_VERSION, .capacity = capacity_for(len), .checksum = BS_CHECKSUM_CRC32C};
		if (bs_image_is_encrypted(img)) {
			if (!bs_image_has_key(img))
				return bs_error_set(bs_image_label(img), BS_TPM_TYPE, ename,
						    BS_NO_OFFSET, BS_EKEY, 0,
						   "the image is encrypted but its key is not loaded;"
						   " refusing to store TPM state in the clear");
			eo.flags |= BS_ENTRY_ENCRYPT;
		}
		return bs_entry_create(img, BS_TPM_TYPE, ename, &eo, data, len, NULL);
	}
	if (rc)
		return rc;
	rc = bs_device_put(dev, data, len);
	bs_device_close(dev);
	return rc;
}

int bs_tpm_delete(bs_image *img, uint32_t tpm_number, const char *name, int must_exist)
{
	char ename[64];
	int rc = bs_tpm_entry_name(tpm_number, name, ename, sizeof ename);
	if (rc)
		return rc;
	if (!img)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "no image");
	bs_entry *e;
	rc = bs_entry_find(img, BS_TPM_TYPE, ename, &e);
	if (!rc && is_volatile(name)) {
		void *p = NULL;
		size_t n = 0;
		rc = bs_tpm_load(img, tpm_number, name, &p, &n);
		free(p);
		if (rc == BS_ENOENT) /* empty already: nothing to write */
			return must_exist ? rc : BS_OK;
		/* A value that does not read (corrupt) is emptied too. */
		bs_device *dev = NULL;
		rc = bs_device_open(img, BS_TPM_TYPE, ename, &(struct bs_device_opts){.version = BS_DEVICE_OPTS_VERSION, .capacity = 0, .flags = 0}, &dev);
		if (!rc)
			rc = bs_device_put(dev, NULL, 0);
		bs_device_close(dev);
		return rc;
	}
	if (rc == BS_ENOENT && !must_exist)
		return BS_OK;
	return rc ? rc : bs_entry_delete(e);
}

/* ---- staging ------------------------------------------------------------- */

int bs_tpm_stage_begin(void)
{
	staging = true;
	return BS_OK;
}

int bs_tpm_staging(void)
{
	return staging;
}

int bs_tpm_stage_put(const char *name, const void *data, size_t len)
{
	char ename[64];
	if (!staging)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "not staging");
	if (len && !data)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "invalid argument");
	int rc = bs_tpm_entry_name(0, name, ename, sizeof ename);
	return rc ? rc : stage_set(ename, data, len);
}

int bs_tpm_stage_forget(const char *name)
{
	char ename[64];
	int rc = bs_tpm_entry_name(0, name, ename, sizeof ename);
	if (rc)
		return rc;
	struct staged *st = stage_find(ename);
	if (st) {
		stage_clear(st);
		*st = stage[--nstage];
		memset(&stage[nstage], 0, sizeof stage[nstage]);
	}
	return BS_OK;
}

void bs_tpm_stage_abort(void)
{
	for (size_t i = 0; i < nstage; i++)
		stage_clear(&stage[i]);
	memset(stage, 0, sizeof stage);
	nstage = 0;
	staging = false;
}

/* Entry ENAME written to IMG as staged; the staged copy is dropped once it
 * is durable. */
static int commit_one(bs_image *img, size_t i)
{
	const char *ename = stage[i].name;
	const char *slash = strchr(ename, '/');
	const char *name = slash ? slash + 1 : ename;
	uint32_t num = slash ? (uint32_t)strtoul(ename, NULL, 10) : 0;
	int rc = stage[i].len ? bs_tpm_store(img, num, name, stage[i].data, stage[i].len)
			      : bs_tpm_delete(img, num, name, 0);
	return rc;
}

int bs_tpm_stage_commit(bs_image *img)
{
	if (!img)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "no image");
	/* Deletions first, then permall, then the rest: interrupted, the
	 * image holds the old permall without a volatile state (a cold start
	 * of the old TPM) or the new permall, never a new permall beside a
	 * volatile state of the old one. */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < nstage; i++) {
			bool is_del = stage[i].len == 0;
			const char *slash = strchr(stage[i].name, '/');
			bool is_perm = !strcmp(slash ? slash + 1 : stage[i].name, BS_TPM_PERMALL);
			if ((pass == 0 && !is_del) || (pass == 1 && (is_del || !is_perm)) ||
			    (pass == 2 && (is_del || is_perm)))
				continue;
			int rc = commit_one(img, i);
			if (bridge.trace)
				bridge.trace(bridge.trace_ctx, is_del ? "commit delete" : "commit store",
					     stage[i].name, stage[i].len, rc);
			if (rc)
				return rc;
		}
	}
	bs_tpm_stage_abort();
	return BS_OK;
}


/* ---- libtpms callbacks --------------------------------------------------- */

static void note(const char *op, const char *name, size_t len, int rc)
{
	if (rc && rc != BS_ENOENT) {
		bridge.last_rc = rc;
		snprintf(bridge.last_msg, sizeof bridge.last_msg, "%s", last_error());
	}
	if (bridge.trace)
		bridge.trace(bridge.trace_ctx, op, name, len, rc);
}

static TPM_RESULT cb_nvram_init(void)
{
	return bridge.img || staging ? TPM_SUCCESS : TPM_FAIL;
}

static TPM_RESULT cb_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number,
			      const char *name)
{
	void *p = NULL;
	size_t len = 0;
	*data = NULL;
	*length = 0;
	char ename[64];
	struct staged *st = NULL;
	if (staging && !bs_tpm_entry_name(tpm_number, name, ename, sizeof ename))
		st = stage_find(ename);
	int rc;
	if (st && !st->len) {
		rc = bs_error_set(NULL, BS_TPM_TYPE, ename, BS_NO_OFFSET, BS_ENOENT, 0,
				  "no such blob (staged)");
	} else if (st) {
		rc = (p = malloc(st->len)) ? BS_OK
					   : bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0,
							  "out of memory");
		if (p) {
			memcpy(p, st->data, st->len);
			len = st->len;
		}
	} else {
		rc = bs_tpm_load(bridge.img, tpm_number, name, &p, &len);
	}
	if (!rc && len > UINT32_MAX)
		rc = bs_error_set(bs_image_label(bridge.img), NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, 0, "TPM blob too large");
	if (!rc && len == 0)
		/* The bridge never stores an empty blob; an empty entry is
		 * not "no state", so it must not let libtpms manufacture. */
		rc = bs_error_set(bs_image_label(bridge.img), BS_TPM_TYPE, name, BS_NO_OFFSET, BS_ECORRUPT, 0,
				 "TPM blob is empty");
	note("load", name, len, rc);
	if (rc) {
		free(p);
		return rc == BS_ENOENT ? TPM_RETRY : TPM_FAIL;
	}
	/* libtpms releases the buffer with TPM_Free(). */
	if (TPM_Malloc(data, (uint32_t)len) != TPM_SUCCESS) {
		free(p);
		return TPM_FAIL;
	}
	memcpy(*data, p, len);
	*length = (uint32_t)len;
	free(p);
	return TPM_SUCCESS;
}

static TPM_RESULT cb_storedata(const unsigned char *data, uint32_t length, uint32_t tpm_number,
			       const char *name)
{
	char ename[64];
	int rc;
	if (staging) {
		rc = bs_tpm_entry_name(tpm_number, name, ename, sizeof ename);
		if (!rc)
			rc = stage_set(ename, data, length);
		note("stage", name, length, rc);
		return rc ? TPM_FAIL : TPM_SUCCESS;
	}
	rc = bs_tpm_store(bridge.img, tpm_number, name, data, length);
	note("store", name, length, rc);
	return rc ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	char ename[64];
	int rc;
	if (staging) {
		rc = bs_tpm_entry_name(tpm_number, name, ename, sizeof ename);
		if (!rc)
			rc = stage_set(ename, NULL, 0);
		note("stage delete", name, 0, rc);
		return rc ? TPM_FAIL : TPM_SUCCESS;
	}
	rc = bs_tpm_delete(bridge.img, tpm_number, name, must_exist);
	note("delete", name, 0, rc);
	return rc ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_getlocality(TPM_MODIFIER_INDICATOR *locality, uint32_t tpm_number)
{
	(void)tpm_number;
	*locality = bridge.locality;
	return TPM_SUCCESS;
}

static TPM_RESULT cb_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number)
{
	(void)tpm_number;
	*pp = FALSE;
	return TPM_SUCCESS;
}

int bs_tpm_register(bs_image *img)
{
	static struct libtpms_callbacks cbs = {
		.sizeOfStruct = sizeof(struct libtpms_callbacks),
		.tpm_nvram_init = cb_nvram_init,
		.tpm_nvram_loaddata = cb_loaddata,
		.tpm_nvram_storedata = cb_storedata,
		.tpm_nvram_deletename = cb_deletename,
		.tpm_io_init = cb_io_init,
		.tpm_io_getlocality = cb_getlocality,
		.tpm_io_getphysicalpresence = cb_getphysicalpresence,
	};
	if (!img)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "no image");
	if (TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS)
		return bs_error_set(bs_image_label(img), NULL, NULL, BS_NO_OFFSET, BS_EIO, 0, "libtpms refused the callbacks");
	bridge.img = img;
	bridge.locality = 0;
	bridge.last_rc = BS_OK;
	bridge.last_msg[0] = '\0';
	return BS_OK;
}

void bs_tpm_unregister(void)
{
	bridge.img = NULL;
}

bs_image *bs_tpm_image(void)
{
	return bridge.img;
}

int bs_tpm_set_locality(unsigned locality)
{
	if (locality > 4)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "locality %u above 4", locality);
	bridge.locality = locality;
	return BS_OK;
}

unsigned bs_tpm_locality(void)
{
	return bridge.locality;
}

int bs_tpm_last_error(const char **msg)
{
	if (msg)
		*msg = bridge.last_msg;
	return bridge.last_rc;
}

int bs_tpm_store_volatile(void)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	if (!bridge.img && !staging)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "no image registered");
	TPM_RESULT res = TPMLIB_VolatileAll_Store(&buf, &len);
	if (res != TPM_SUCCESS) {
		free(buf);
		return bs_error_set(bs_image_label(bridge.img), NULL, NULL, BS_NO_OFFSET, BS_EIO, 0,
			       "libtpms could not save its volatile state (0x%x)", (unsigned)res);
	}
	int rc = staging ? stage_set(BS_TPM_VOLATILE, buf, len)
			 : bs_tpm_store(bridge.img, 0, BS_TPM_VOLATILE, buf, len);
	note(staging ? "stage" : "store", BS_TPM_VOLATILE, len, rc);
	free(buf);
	return rc;
}

void bs_tpm_set_trace(bs_tpm_trace_fn fn, void *ctx)
{
	bridge.trace = fn;
	bridge.trace_ctx = ctx;
}
