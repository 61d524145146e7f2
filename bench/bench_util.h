/* bench_util.h - what every benchmark program measures with: a monotonic
 * clock, medians, and the changing order of candidates within a round. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int bench_dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Sorts V. */
static inline double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, bench_dcmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of A[r] / B[r] over the N rounds: each ratio pairs two
 * candidates measured a few operations apart, so drift over the run (a
 * disk's flush time moves over seconds) stays out of it.  Leaves A and B
 * as they are (call it before median() sorts them); 0 when out of memory. */
static inline double median_ratio(const double *a, const double *b, size_t n)
{
	double *q = calloc(n ? n : 1, sizeof *q);
	if (!q)
		return 0;
	for (size_t r = 0; r < n; r++)
		q[r] = a[r] / b[r];
	double m = median(q, n);
	free(q);
	return m;
}

/* Candidate I's place in repetition R: a permutation that changes from one
 * repetition to the next (a Fisher-Yates shuffle seeded by R).  With a fixed
 * order one candidate would always run right after the same other one and
 * inherit what it leaves behind (evicted caches, a fragmented heap, pending
 * filesystem work); a changing order spreads that over all of them. */
static inline void permute(size_t r, size_t n, size_t *order)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (r + 1);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t j = (size_t)(x % i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

#ifdef BLOBSTORE_BLOBSTORE_H
/* The message of the library's last failure. */
static inline const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}
#endif

#endif
