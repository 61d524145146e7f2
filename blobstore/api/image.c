/* image.c - the public calls on whole images. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

int bs_open_backend(struct bs_backend *be, const char *label, unsigned flags, bs_image **out)
{
	*out = NULL;
	return bs__dir_open(be, label, flags, out);
}

int bs_open(const char *path, unsigned flags, bs_image **out)
{
	struct bs_backend *be;
	*out = NULL;
	if (!path)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image path");
	int rc = bs_backend_open(path, flags, &be);
	if (rc)
		return rc;
	return bs__dir_open(be, path, flags, out);
}

void bs_close(bs_image *img)
{
	bs__dir_close(img);
}

const char *bs_image_label(const bs_image *img)
{
	return img ? img->label : "";
}

const uint8_t *bs_image_id(const bs_image *img)
{
	return img->id;
}

size_t bs_count(const bs_image *img)
{
	return img ? img->count : 0;
}

bs_entry *bs_entry_at(bs_image *img, size_t i)
{
	return img && i < img->count ? img->list[i] : NULL;
}

int bs_stat(bs_image *img, struct bs_stat *out)
{
	memset(out, 0, sizeof *out);
	out->size = img->io.size;
	out->dir_end = img->dir_end;
	out->free_holes = img->holes;
	out->free_tail = img->io.size > img->dir_end ? img->io.size - img->dir_end : 0;
	out->entries = img->count;
	for (size_t i = 0; i < img->count; i++) {
		out->used += img->list[i]->size;
		if (img->list[i]->status)
			out->refused++;
	}
	return BS_OK;
}

int bs_image_read_raw(bs_image *img, uint64_t off, void *buf, size_t len)
{
	if (off > img->io.size || len > img->io.size - off)
		return bs__err(img, NULL, off, BS_ECORRUPT, "%zu octets past the end of the image",
			       len);
	return bs__io_read(&img->io, NULL, buf, len, off);
}

int bs_image_reserve(bs_image *img, uint64_t total)
{
	int rc = bs__writable(img, NULL);
	if (rc)
		return rc;
	if (total > BS_MAX_IMAGE_SIZE)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "larger than the image limit");
	const struct bs_backend_ops *ops = img->io.be->ops;
	if (!ops->resize) {
		if (total > img->io.size)
			return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOSPC,
				       "fixed-size storage of %llu octets cannot hold %llu",
				       (unsigned long long)img->io.size, (unsigned long long)total);
		return BS_OK;
	}
	if (!ops->reserve)
		return BS_OK;
	rc = ops->reserve(img->io.be->ctx, total);
	if (rc)
		return bs__error_wrap(&(struct bs__where){.label = img->label}, BS_NO_OFFSET, rc,
				      "reserve failed");
	return BS_OK;
}

int bs_compact(bs_image *img)
{
	return bs__dir_compact(img);
}
