/* walk.c - the one DER walker: the strict element check here and the
 * listing of bs_image_dump() both visit elements through it.
 *
 * Iterative: a stack of the constructed elements the walk is inside, its
 * depth bounded by the caller; every element's length is checked against
 * the end of the element that holds it before anything else is read. */
#include <string.h>

#include "der.h"

void bs__der_walk_init(struct bs__der_walk *w, const uint8_t *p, size_t len, size_t max_depth,
		       int top)
{
	w->p = p;
	w->pos = 0;
	w->depth = 0;
	w->max_depth = max_depth < BS__DER_WALK_MAX ? max_depth : BS__DER_WALK_MAX;
	w->st[0].end = len;
	w->st[0].child = 0;
	w->st[0].user = top;
}

int bs__der_walk_next(struct bs__der_walk *w, struct bs__der_item *it, const char **why)
{
	*why = NULL;
	while (w->depth > 0 && w->pos == w->st[w->depth].end)
		w->depth--;
	if (w->pos >= w->st[w->depth].end)
		return 0;
	size_t lim = w->st[w->depth].end - w->pos, avail = lim;
	const uint8_t *p = w->view ? w->view(w->ctx, w->pos, &avail) : w->p + w->pos;
	it->pos = w->pos;
	it->depth = w->depth;
	it->p = p;
	if (!p)
		return -2;
	if (avail > lim)
		avail = lim;
	it->avail = avail;
	*why = bs__der_header_prefix(p, avail, &it->t);
	if (!*why && it->t.len > lim - it->t.hdr)
		*why = "length runs past the enclosing element";
	if (*why)
		return -1;
	it->index = w->st[w->depth].child++;
	it->parent = w->st[w->depth].user;
	return 1;
}

bool bs__der_walk_enter(struct bs__der_walk *w, const struct bs__der_item *it, int user)
{
	if (w->depth >= w->max_depth)
		return false;
	w->depth++;
	w->st[w->depth].end = it->pos + it->t.hdr + it->t.len;
	w->st[w->depth].child = 0;
	w->st[w->depth].user = user;
	w->pos = it->pos + it->t.hdr;
	return true;
}

void bs__der_walk_skip(struct bs__der_walk *w, const struct bs__der_item *it)
{
	w->pos = it->pos + it->t.hdr + it->t.len;
}

/* Universal types DER requires in primitive form (X.690 10.2). */
static bool must_be_primitive(uint32_t tag)
{
	if (tag > 0x1e)
		return false;
	switch (tag & 0x1f) {
	case 1: case 2: case 3: case 4: case 5: case 6: case 9: case 10: case 12:
	case 18: case 19: case 20: case 21: case 22: case 23: case 24: case 25:
	case 26: case 27: case 28: case 29: case 30:
		return true;
	default:
		return false;
	}
}


const char *bs__der_check_elements(const uint8_t *p, size_t len, size_t *count)
{
	struct bs__der_walk w = {0};
	struct bs__der_item it;
	const char *why;
	size_t top = 0;
	bs__der_walk_init(&w, p, len, BS_MAX_DEPTH, 0);
	for (;;) {
		int r = bs__der_walk_next(&w, &it, &why);
		if (r <= 0)
			return r ? why : NULL;
		if (it.depth == 0 && count)
			*count = ++top;
		uint32_t tag = it.t.tag;
		uint32_t utag = (tag & 0xc0) == 0 && tag <= 0xff ? (tag & 0x1f) : 0xffffffffu;
		if (it.t.constructed) {
			if (utag != 0xffffffffu && must_be_primitive(utag))
				return "constructed encoding of a primitive type (X.690 10.2)";
			if (!bs__der_walk_enter(&w, &it, 0))
				return "nesting deeper than the limit";
			continue;
		}
		if (utag == 0x10 || utag == 0x11)
			return "primitive SEQUENCE or SET";
		if (utag != 0xffffffffu &&
		    (why = bs__der_check_primitive(utag, it.p + it.t.hdr, it.t.len)))
			return why;
		bs__der_walk_skip(&w, &it);
	}
}

const char *bs__der_check_element(const uint8_t *p, size_t len)
{
	size_t n = 0;
	const char *why = bs__der_check_elements(p, len, &n);
	if (!why && n != 1)
		return n ? "more than one element" : "empty element";
	return why;
}
