/* tpm.c - the libtpms bridge (nvram_tpm.h): libtpms' named state blobs as
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

#include "blobstore_crypt.h"
#include "api/api.h"
#include "nvram_internal.h"
#include "nvram.h"
#include "nvram_tpm.h"

/* libtpms has no context pointer in its callbacks: the bridge's state is
 * process-wide, like libtpms' own. */
static struct {
	bs_image *img;
	unsigned locality;
	int last_rc;
	char last_msg[512];
	nvram_tpm_trace_fn trace;
	void *trace_ctx;
} bridge;

int nvram_tpm_entry_name(uint32_t tpm_number, const char *name, char *buf, size_t cap)
{
	if (!name || !*name || strchr(name, '/') || !buf)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid TPM blob name");
	int n = tpm_number ? snprintf(buf, cap, "%u/%s", (unsigned)tpm_number, name)
			   : snprintf(buf, cap, "%s", name);
	if (n < 0 || (size_t)n >= cap)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_ERANGE, "TPM blob name too long");
	return BS_OK;
}

/* Opens the device behind blob NAME; BS_ENOENT when there is none. */
static int open_blob(bs_image *img, uint32_t tpm_number, const char *name, nvram_dev **dev,
		     char *ename, size_t cap)
{
	int rc = nvram_tpm_entry_name(tpm_number, name, ename, cap);
	if (rc)
		return rc;
	if (!img)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image");
	return nvram_open(img, NVRAM_TPM_TYPE, ename, 0, 0, dev);
}

/* The volatile state comes and goes with every resume.  Deleting its
 * entry and appending a new one each time would leave a hole per cycle (the
 * store appends at the end, compact reclaims), so "no volatile state" is
 * an empty value in a kept entry: one slot write, no growth. */
static bool is_volatile(const char *name)
{
	return name && !strcmp(name, NVRAM_TPM_VOLATILE);
}

int nvram_tpm_load(bs_image *img, uint32_t tpm_number, const char *name, void **out, size_t *len)
{
	char ename[64];
	nvram_dev *dev = NULL;
	if (!out || !len)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	*out = NULL;
	*len = 0;
	int rc = open_blob(img, tpm_number, name, &dev, ename, sizeof ename);
	if (!rc)
		rc = nvram_get_alloc(dev, out, len);
	nvram_close(dev);
	if (!rc && *len == 0 && is_volatile(name)) {
		free(*out);
		*out = NULL;
		rc = bs__err_key(bs_image_label(img), NVRAM_TPM_TYPE, ename, BS_ENOENT,
				 "no volatile state (the entry is empty)");
	}
	return rc;
}

static size_t capacity_for(size_t len)
{
	size_t c = len > SIZE_MAX / 2 ? len : 2 * len;
	return c < NVRAM_TPM_MIN_CAPACITY ? NVRAM_TPM_MIN_CAPACITY : c;
}

int nvram_tpm_store(bs_image *img, uint32_t tpm_number, const char *name, const void *data,
		    size_t len)
{
	char ename[64];
	nvram_dev *dev = NULL;
	if (len && !data)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (len > NVRAM_TPM_MAX_BLOB)
		return bs__err_key(img ? bs_image_label(img) : "", NVRAM_TPM_TYPE, name, BS_ELIMIT,
				   "TPM blob of %zu octets exceeds the limit of %u", len,
				   NVRAM_TPM_MAX_BLOB);
	int rc = open_blob(img, tpm_number, name, &dev, ename, sizeof ename);
	if (rc == BS_ENOENT) {
		struct bs_entry_opts eo = {.capacity = capacity_for(len), .check = "crc32c"};
		if (bs_image_encrypted(img)) {
			if (!bs_image_key_loaded(img))
				return bs__err_key(bs_image_label(img), NVRAM_TPM_TYPE, ename,
						   BS_EKEY,
						   "the image is encrypted but its key is not loaded;"
						   " refusing to store TPM state in the clear");
			eo.flags |= BS_ENTRY_ENCRYPT;
		}
		return bs_entry_create2(img, NVRAM_TPM_TYPE, ename, &eo, data, len, NULL);
	}
	if (rc)
		return rc;
	/* Grow with headroom so that a slowly growing permall does not cost a
	 * rewrite of the entry on every store; the growth and the new state
	 * are one rewrite, so a crash leaves the old state or the new one. */
	rc = nv_put_cap(dev, data, len, capacity_for(len));
	nvram_close(dev);
	return rc;
}

int nvram_tpm_delete(bs_image *img, uint32_t tpm_number, const char *name, int must_exist)
{
	char ename[64];
	int rc = nvram_tpm_entry_name(tpm_number, name, ename, sizeof ename);
	if (rc)
		return rc;
	if (!img)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image");
	bs_entry *e;
	rc = bs_find(img, NVRAM_TPM_TYPE, ename, &e);
	if (!rc && is_volatile(name)) {
		void *p = NULL;
		size_t n = 0;
		rc = nvram_tpm_load(img, tpm_number, name, &p, &n);
		free(p);
		if (rc == BS_ENOENT) /* empty already: nothing to write */
			return must_exist ? rc : BS_OK;
		/* A value that does not read (corrupt) is emptied too. */
		nvram_dev *dev = NULL;
		rc = nvram_open(img, NVRAM_TPM_TYPE, ename, 0, 0, &dev);
		if (!rc)
			rc = nvram_put(dev, NULL, 0);
		nvram_close(dev);
		return rc;
	}
	if (rc == BS_ENOENT && !must_exist)
		return BS_OK;
	return rc ? rc : bs_entry_delete(img, e);
}

/* ---- libtpms callbacks --------------------------------------------------- */

static void note(const char *op, const char *name, size_t len, int rc)
{
	if (rc && rc != BS_ENOENT) {
		bridge.last_rc = rc;
		snprintf(bridge.last_msg, sizeof bridge.last_msg, "%s", bs_errmsg());
	}
	if (bridge.trace)
		bridge.trace(bridge.trace_ctx, op, name, len, rc);
}

static TPM_RESULT cb_nvram_init(void)
{
	return bridge.img ? TPM_SUCCESS : TPM_FAIL;
}

static TPM_RESULT cb_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number,
			      const char *name)
{
	void *p = NULL;
	size_t len = 0;
	*data = NULL;
	*length = 0;
	int rc = nvram_tpm_load(bridge.img, tpm_number, name, &p, &len);
	if (!rc && len > UINT32_MAX)
		rc = bs__err(bridge.img, NULL, BS_NO_OFFSET, BS_ELIMIT, "TPM blob too large");
	if (!rc && len == 0)
		/* The bridge never stores an empty blob; an empty entry is
		 * not "no state", so it must not let libtpms manufacture. */
		rc = bs__err_key(bs_image_label(bridge.img), NVRAM_TPM_TYPE, name, BS_ECORRUPT,
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
	int rc = nvram_tpm_store(bridge.img, tpm_number, name, data, length);
	note("store", name, length, rc);
	return rc ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	int rc = nvram_tpm_delete(bridge.img, tpm_number, name, must_exist);
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

int nvram_tpm_register(bs_image *img)
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
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image");
	if (TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EIO, "libtpms refused the callbacks");
	bridge.img = img;
	bridge.locality = 0;
	bridge.last_rc = BS_OK;
	bridge.last_msg[0] = '\0';
	return BS_OK;
}

void nvram_tpm_unregister(void)
{
	bridge.img = NULL;
}

bs_image *nvram_tpm_image(void)
{
	return bridge.img;
}

int nvram_tpm_set_locality(unsigned locality)
{
	if (locality > 4)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "locality %u above 4", locality);
	bridge.locality = locality;
	return BS_OK;
}

unsigned nvram_tpm_locality(void)
{
	return bridge.locality;
}

int nvram_tpm_last_error(const char **msg)
{
	if (msg)
		*msg = bridge.last_msg;
	return bridge.last_rc;
}

int nvram_tpm_store_volatile(void)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	if (!bridge.img)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image registered");
	TPM_RESULT res = TPMLIB_VolatileAll_Store(&buf, &len);
	if (res != TPM_SUCCESS) {
		free(buf);
		return bs__err(bridge.img, NULL, BS_NO_OFFSET, BS_EIO,
			       "libtpms could not save its volatile state (0x%x)", (unsigned)res);
	}
	int rc = nvram_tpm_store(bridge.img, 0, NVRAM_TPM_VOLATILE, buf, len);
	note("store", NVRAM_TPM_VOLATILE, len, rc);
	free(buf);
	return rc;
}

void nvram_tpm_set_trace(nvram_tpm_trace_fn fn, void *ctx)
{
	bridge.trace = fn;
	bridge.trace_ctx = ctx;
}
