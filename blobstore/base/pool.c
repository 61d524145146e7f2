/* pool.c - memory that lives as long as an image.
 *
 * Opening an image of N entries builds N entries and N metas.  One malloc
 * each was most of the cost of opening big images, and so were the page
 * faults of touching tens of megabytes of fresh memory one 4 KiB page at a
 * time.  The pool hands out zeroed, 16-aligned blocks by bumping a pointer
 * through chunks; nothing is returned before bs__pool_destroy.  Small pools
 * live in a few malloc'ed chunks; past BS_POOL_MAP_AFTER octets the chunks
 * are 2 MiB mappings aligned for transparent huge pages and populated in
 * one call, so a big open takes a few faults per 2 MiB instead of 512. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels refuse it */
#endif

/* Under AddressSanitizer every block is its own allocation, so that an
 * overrun of one block is reported instead of landing in the next. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_EXACT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_EXACT 1
#endif
#endif
#ifndef POOL_EXACT
#define POOL_EXACT 0
#endif

#define POOL_ALIGN 16u
#define POOL_FIRST_CHUNK (16u << 10)
#define POOL_HUGE (2u << 20)
/* Malloc'ed chunks until the pool holds this much, then mapped ones. */
#define BS_POOL_MAP_AFTER (1u << 20)

struct bs_pool {
	struct bs_pool *next; /* older chunk */
	size_t size;          /* whole chunk, this header included */
	size_t used;          /* octets handed out, header included */
	size_t total;         /* octets in this and all older chunks */
	bool mapped;
	/* 16-aligned blocks follow */
};

#define HDR (((sizeof(struct bs_pool) + POOL_ALIGN - 1) / POOL_ALIGN) * POOL_ALIGN)

static void *map_huge(size_t size)
{
	/* SIZE (a multiple of 2 MiB) plus 2 MiB, then trimmed to start on a
	 * 2 MiB boundary: the kernel backs such ranges with huge pages. */
	size_t span = size + POOL_HUGE;
	uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)p + POOL_HUGE - 1) & ~(uintptr_t)(POOL_HUGE - 1);
	uint8_t *al = (uint8_t *)a;
	if (al > p)
		munmap(p, (size_t)(al - p));
	if (al + size < p + span)
		munmap(al + size, (size_t)(p + span - (al + size)));
	/* Both are hints: without huge pages the populate still saves a
	 * fault per page, and without either the memory simply faults in. */
	madvise(al, size, MADV_HUGEPAGE);
	madvise(al, size, MADV_POPULATE_WRITE);
	return al;
}

void *bs__pool_alloc(struct bs_pool **pool, size_t n)
{
	if (n > BS_POOL_MAX_BLOCK)
		return NULL;
	n = (n + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
	struct bs_pool *c = *pool;
	if (!c || c->size - c->used < n) {
		size_t total = c ? c->total : 0;
		bool mapped = !POOL_EXACT && total >= BS_POOL_MAP_AFTER;
		size_t size = POOL_EXACT ? HDR + n
			      : mapped ? POOL_HUGE : total ? total : POOL_FIRST_CHUNK;
		struct bs_pool *nc = mapped ? map_huge(size) : calloc(1, size);
		if (!nc)
			return NULL;
		nc->next = c;
		nc->size = size;
		nc->used = HDR;
		nc->total = total + size;
		nc->mapped = mapped;
		*pool = c = nc;
	}
	void *p = (uint8_t *)c + c->used;
	c->used += n;
	return p;
}

void bs__pool_destroy(struct bs_pool **pool)
{
	struct bs_pool *c = *pool;
	while (c) {
		struct bs_pool *next = c->next;
		if (c->mapped)
			munmap(c, c->size);
		else
			free(c);
		c = next;
	}
	*pool = NULL;
}

void *bs__big_calloc(size_t n)
{
	if (n < POOL_HUGE)
		return calloc(1, n);
	size_t size = (n + POOL_HUGE - 1) & ~(size_t)(POOL_HUGE - 1);
	return map_huge(size);
}

void bs__big_free(void *p, size_t n)
{
	if (!p)
		return;
	if (n < POOL_HUGE)
		free(p);
	else
		munmap(p, (n + POOL_HUGE - 1) & ~(size_t)(POOL_HUGE - 1));
}
