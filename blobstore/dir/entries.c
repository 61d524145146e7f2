/* entries.c - entry objects: the image's list of them in directory order,
 * where they come from (the image's pool), and messages that name them. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"

void bs__where_of(const bs_image *img, const bs_entry *e, struct bs__where *w)
{
	w->label = img ? img->label : NULL;
	w->type = e && e->m ? e->m->type : NULL;
	w->name = e && e->m ? e->m->name : NULL;
}

int bs__err(const bs_image *img, const bs_entry *e, uint64_t offset, int code,
	    const char *fmt, ...)
{
	struct bs__where w;
	bs__where_of(img, e, &w);
	va_list ap;
	va_start(ap, fmt);
	bs__verror(&w, offset, code, 0, fmt, ap);
	va_end(ap);
	return code;
}

int bs__err_key(const char *label, const char *type, const char *name, int code,
		const char *fmt, ...)
{
	struct bs__where w = {label, type, name};
	va_list ap;
	va_start(ap, fmt);
	bs__verror(&w, BS_NO_OFFSET, code, 0, fmt, ap);
	va_end(ap);
	return code;
}

/* Entries come from the image's pool; a freed entry goes on the image's
 * free list for the next one. */
bs_entry *bs__entry_new(bs_image *img)
{
	bs_entry *e = img->free_entries;
	if (e) {
		img->free_entries = e->hnext;
		memset(e, 0, sizeof *e);
	} else if (!(e = bs__pool_alloc(&img->pool, sizeof *e))) { /* zeroed */
		return NULL;
	}
	e->img = img;
	e->supersedes = UINT64_MAX;
	e->active = -1;
	return e;
}

void bs__entry_free(bs_image *img, bs_entry *e)
{
	if (!e)
		return;
	bs__meta_free(e->m);
	free(e->status_msg);
	e->m = NULL;
	e->status_msg = NULL;
	e->img = NULL;
	e->hnext = img->free_entries;
	img->free_entries = e;
}

void bs__entry_take(bs_entry *e, struct bs__decoded *d)
{
	e->m = d->m;
	e->status = d->status;
	e->status_msg = d->status_msg;
	e->slotted = d->slotted;
	e->alg = d->alg;
	e->aead = d->aead;
	e->supersedes = d->supersedes;
	d->m = NULL;
	d->status_msg = NULL;
}

int bs__list_push(bs_image *img, bs_entry *e)
{
	if (img->count == img->cap) {
		size_t n = img->cap ? img->cap * 2 : 64;
		bs_entry **l = realloc(img->list, n * sizeof *l);
		if (!l)
			return BS_ENOMEM;
		img->list = l;
		img->cap = n;
	}
	e->index = img->count;
	img->list[img->count++] = e;
	return BS_OK;
}

void bs__list_remove(bs_image *img, bs_entry *e)
{
	size_t i = e->index;
	memmove(img->list + i, img->list + i + 1, (img->count - i - 1) * sizeof *img->list);
	img->count--;
	for (; i < img->count; i++)
		img->list[i]->index = i;
}

void bs__pool_free(bs_image *img)
{
	bs__pool_destroy(&img->pool);
	img->free_entries = NULL;
}
