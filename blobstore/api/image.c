/* image.c - the public calls on whole images: open, close, statistics,
 * notes of the open, iteration, raw reads, reserve, compact. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

int bs_image_open_backend(struct bs_backend *be, const char *label, unsigned flags,
			  bs_image **out)
{
	if (!be || !out) {
		bs_backend_free(be);
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no backend or no output");
	}
	return bs__dir_open(be, label, flags, out);
}

int bs_image_open(const char *uri, unsigned flags, bs_image **out)
{
	struct bs_backend *be;
	if (!uri || !out)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image path or no output");
	int rc = bs_backend_open(uri, flags, &be);
	if (rc)
		return rc;
	return bs__dir_open(be, uri, flags, out);
}

void bs_image_close(bs_image *img)
{
	bs__dir_close(img);
}

const char *bs_image_label(const bs_image *img)
{
	return img ? img->label : "";
}

const uint8_t *bs_image_id(const bs_image *img)
{
	return img ? img->id : NULL;
}

size_t bs_image_note_count(const bs_image *img)
{
	return img ? img->nnotes : 0;
}

int bs_image_note_at(const bs_image *img, size_t i, struct bs_image_note *out)
{
	if (!img || !out || out->version != BS_IMAGE_NOTE_VERSION)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "no image, no output, or an output of an unknown version");
	if (i >= img->nnotes)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ENOENT, "no note %zu (the open made %zu)",
			       i, img->nnotes);
	const struct bs__note *t = &img->notes[i];
	*out = (struct bs_image_note){.version = BS_IMAGE_NOTE_VERSION,
				      .kind = BS_NOTE_LEFTOVER,
				      .code = t->code,
				      .sys_errno = t->sys_errno,
				      .path = t->path,
				      .octets = t->octets,
				      .message = t->message};
	return BS_OK;
}

/* The library's own entries: types starting "bs.". */
static bool is_library(const bs_entry *e)
{
	return e->m && e->m->type && !strncmp(e->m->type, BS_RESERVED_PREFIX, 3);
}

bs_entry *bs_entry_next(bs_image *img, const bs_entry *prev, unsigned flags)
{
	if (!img || (prev && (prev->img != img || prev->index >= img->count ||
			      img->list[prev->index] != prev)))
		return NULL;
	for (size_t i = prev ? prev->index + 1 : 0; i < img->count; i++)
		if ((flags & BS_ITER_LIBRARY) || !is_library(img->list[i]))
			return img->list[i];
	return NULL;
}

size_t bs_image_count(const bs_image *img, unsigned flags)
{
	if (!img)
		return 0;
	if (flags & BS_ITER_LIBRARY)
		return img->count;
	size_t n = 0;
	for (size_t i = 0; i < img->count; i++)
		n += !is_library(img->list[i]);
	return n;
}

int bs_image_stat(const bs_image *img, struct bs_image_stat *out)
{
	if (!img || !out || out->version != BS_IMAGE_STAT_VERSION)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL,
			       "no image, no output, or an output of an unknown version");
	struct bs_image_stat st = {.version = BS_IMAGE_STAT_VERSION};
	st.size = img->io.size;
	st.dir_end = img->dir_end;
	st.free_holes = img->holes;
	st.free_tail = img->io.size > img->dir_end ? img->io.size - img->dir_end : 0;
	st.entries = img->count;
	for (size_t i = 0; i < img->count; i++) {
		st.used += img->list[i]->size;
		if (img->list[i]->status)
			st.refused++;
	}
	*out = st;
	return BS_OK;
}

int bs_image_read_raw(bs_image *img, uint64_t off, void *buf, size_t len)
{
	if (!img || (len && !buf))
		return bs__err(img, NULL, BS_NO_OFFSET, BS_EINVAL, "invalid argument");
	if (off > img->io.size || len > img->io.size - off)
		return bs__err(img, NULL, off, BS_ECORRUPT, "%zu octets past the end of the image",
			       len);
	return bs__io_read(&img->io, NULL, buf, len, off);
}

int bs_image_reserve(bs_image *img, uint64_t total)
{
	if (!img)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image");
	int rc = bs__writable(img, NULL);
	if (rc)
		return rc;
	if (total > BS_MAX_IMAGE_SIZE)
		return bs__err(img, NULL, BS_NO_OFFSET, BS_ELIMIT, "larger than the image limit");
	const struct bs_backend_ops *ops = img->io.be->ops;
	if (!ops->resize)
		return bs__recovery_grow(img, total);
	if (!ops->reserve)
		return BS_OK;
	rc = ops->reserve(img->io.be->ctx, total);
	if (rc)
		return bs__error_wrap(&(struct bs__where){.label = img->label}, BS_NO_OFFSET, rc,
				      "reserve failed");
	return BS_OK;
}

int bs_image_compact(bs_image *img)
{
	if (!img)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no image");
	return bs__dir_compact(img);
}
