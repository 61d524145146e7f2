/* table.c - lookup of entries by type and name.
 *
 * Open addressing with linear probing over slots that keep each key's hash
 * beside its entry, so that probing, inserting and growing touch no entry
 * (a cache miss each in a big image) until two hashes match.  At most half
 * the slots are used. */
#include <string.h>

#include "dir.h"

/* Eight octets at a time: open hashes every key, and a byte-at-a-time loop
 * was a tenth of opening a big image. */
static uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 32);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	size_t n = strlen(s), i = 0;
	uint64_t v;
	for (; i + 8 <= n; i += 8) {
		memcpy(&v, s + i, 8);
		h = hash_mix(h, v);
	}
	if (n >= 8) {
		memcpy(&v, s + n - 8, 8); /* the rest, in the last 8 octets */
	} else {
		v = 0;
		for (; i < n; i++)
			v |= (uint64_t)(uint8_t)s[i] << (8 * i);
	}
	return hash_mix(h, v ^ n);
}

/* Never 0: an entry's khash is 0 while it has no key.  The final mix
 * spreads every input bit over the low bits the table indexes by: keys
 * that differ only in their last octets ("entry-0001", "entry-0002") land
 * in the high bits of the last multiply, and without it they cluster. */
uint64_t bs__key_hash(const char *type, const char *name)
{
	uint64_t h = hash_str(0x6a09e667f3bcc909ull, type);
	h = name ? hash_str(hash_mix(h, 1), name) : hash_mix(h, 2);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h ? h : 1;
}

bool bs__same_key(const bs_entry *e, const char *type, const char *name)
{
	if (!e->m || !e->m->type || strcmp(e->m->type, type))
		return false;
	if (!name || !e->m->name)
		return !name && !e->m->name;
	return !strcmp(e->m->name, name);
}

static bs_entry *find_h(const bs_image *img, uint64_t h, const char *type, const char *name)
{
	if (!img->hash_size)
		return NULL;
	size_t mask = img->hash_size - 1;
	for (size_t i = h & mask; img->hash[i].e; i = (i + 1) & mask)
		if (img->hash[i].h == h && bs__same_key(img->hash[i].e, type, name))
			return img->hash[i].e;
	return NULL;
}

/* E's meta is read only when a stored hash matches (open looks up every
 * entry, each a cache miss). */
bs_entry *bs__table_find_like(const bs_image *img, uint64_t h, const bs_entry *e)
{
	return find_h(img, h, e->m->type, e->m->name);
}

bs_entry *bs__table_find(const bs_image *img, const char *type, const char *name)
{
	return find_h(img, bs__key_hash(type, name), type, name);
}

static void put(struct bs__hslot *t, size_t mask, uint64_t h, bs_entry *e)
{
	size_t i = h & mask;
	while (t[i].e)
		i = (i + 1) & mask;
	t[i].h = h;
	t[i].e = e;
}

void bs__table_put(bs_image *img, uint64_t h, bs_entry *e)
{
	put(img->hash, img->hash_size - 1, h, e);
	img->hash_used++;
}

int bs__table_grow(bs_image *img, size_t want)
{
	size_t n = img->hash_size ? img->hash_size : 64;
	while (n < want * 2)
		n *= 2;
	if (n == img->hash_size)
		return BS_OK;
	struct bs__hslot *t = bs__big_calloc(n * sizeof *t);
	if (!t)
		return BS_ENOMEM;
	for (size_t i = 0; i < img->hash_size; i++)
		if (img->hash[i].e)
			put(t, n - 1, img->hash[i].h, img->hash[i].e);
	bs__big_free(img->hash, img->hash_size * sizeof *img->hash);
	img->hash = t;
	img->hash_size = n;
	return BS_OK;
}

int bs__table_insert(bs_image *img, bs_entry *e)
{
	e->khash = bs__key_hash(e->m->type, e->m->name);
	if ((img->hash_used + 1) * 2 > img->hash_size && bs__table_grow(img, img->hash_used + 1))
		return BS_ENOMEM;
	bs__table_put(img, e->khash, e);
	return BS_OK;
}

void bs__table_remove(bs_image *img, bs_entry *e)
{
	if (!img->hash_size)
		return;
	size_t mask = img->hash_size - 1, i = e->khash & mask;
	while (img->hash[i].e != e) {
		if (!img->hash[i].e)
			return;
		i = (i + 1) & mask;
	}
	/* Backward shift: move up each later slot of the run that may not
	 * sit before its home slot, so no lookup meets an early empty slot. */
	for (size_t j = i;;) {
		j = (j + 1) & mask;
		if (!img->hash[j].e)
			break;
		size_t home = img->hash[j].h & mask;
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		img->hash[i] = img->hash[j];
		i = j;
	}
	img->hash[i].e = NULL;
	img->hash_used--;
}
