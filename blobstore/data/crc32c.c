/* crc32c.c - CRC-32C (Castagnoli), the slot check: carry-less
 * multiplication folding when the CPU has VPCLMULQDQ and AVX-512, else the
 * SSE4.2 crc32 instruction, else slicing-by-8 tables. */
#include <pthread.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "data.h"

static uint32_t table[8][256];

static void make_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc; /* little-endian load; the tables assume it */
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
							 size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}

/* The crc32 instruction has a latency of three cycles but a throughput of
 * one: three independent streams over three lanes of a chunk run about
 * three times as fast, which keeps the slot check of a 64 KiB encrypted put
 * well below the cost of AES-GCM.  The lanes' registers are joined using
 * linearity: crc(c, A|B) = crc(crc(c, A), zeros(|B|)) ^ crc(0, B), where
 * shifting a register over LANE zero octets is a table lookup. */
#define LANE 4096u
static uint32_t shift_tab[4][256];

static void make_shift_tables(void)
{
	static const uint8_t zeros[LANE];
	uint32_t basis[32];
	for (int i = 0; i < 32; i++)
		basis[i] = crc_hw(1u << i, zeros, LANE);
	for (int k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++) {
			uint32_t v = 0;
			for (int j = 0; j < 8; j++)
				if (b >> j & 1)
					v ^= basis[8 * k + j];
			shift_tab[k][b] = v;
		}
}

static uint32_t shift_lane(uint32_t x)
{
	return shift_tab[0][x & 0xff] ^ shift_tab[1][(x >> 8) & 0xff] ^
	       shift_tab[2][(x >> 16) & 0xff] ^ shift_tab[3][x >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw3(uint32_t crc, const uint8_t *p,
							  size_t len)
{
	while (len >= 3 * LANE) {
		uint64_t c0 = crc, c1 = 0, c2 = 0;
		for (size_t i = 0; i < LANE; i += 8) {
			uint64_t w0, w1, w2;
			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + LANE + i, 8);
			memcpy(&w2, p + 2 * LANE + i, 8);
			c0 = __builtin_ia32_crc32di(c0, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		crc = shift_lane(shift_lane((uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * LANE;
		len -= 3 * LANE;
	}
	return crc_hw(crc, p, len);
}

/* Carry-less multiplication folding (VPCLMULQDQ on 512-bit registers):
 * four times the crc32 instruction's 8 octets per cycle, which the slot
 * check of a 1 MiB durable write or a 64 KiB encrypted put notices.
 *
 * In a register loaded from the stream, bit j of a 128-bit lane is the
 * coefficient of x^(127-j) (the first octet's low bit is the highest
 * power).  Moving a lane X = [a | b] (a: bits 0-63) forward by D bits
 * means X * x^D mod P; carry-less products of such reflected operands come
 * out multiplied by x once more, so the constants are
 *   for a: x^(D+63) mod P,   for b: x^(D-1) mod P,
 * each a polynomial of degree < 32 placed in the top half of its 64-bit
 * word (bit j = coefficient of x^(63-j)).  They are computed at start-up
 * rather than copied from anywhere.  The folded remainder R (128 bits,
 * congruent to the message) becomes the CRC state by running the crc32
 * instruction over R's 16 octets from state 0. */
static uint64_t fold_k[2][2];    /* D = 2048 (the loop), 512 (accumulators) */
static uint64_t fold128_k[3][2]; /* D = 384, 256, 128 (the last lanes) */

static uint64_t xpow_mod(unsigned n)
{
	uint64_t r = 1; /* normal (not reflected) order: bit d is x^d */
	for (unsigned i = 0; i < n; i++) {
		r <<= 1;
		if (r >> 32)
			r ^= 0x11edc6f41ull;
	}
	return r;
}

static uint64_t reflect_top(uint64_t q)
{
	uint64_t w = 0;
	for (unsigned d = 0; d < 32; d++)
		if (q >> d & 1)
			w |= 1ull << (63 - d);
	return w;
}

static void fold_consts(unsigned d, uint64_t k[2])
{
	k[0] = reflect_top(xpow_mod(d + 63));
	k[1] = reflect_top(xpow_mod(d - 1));
}

static void make_fold_tables(void)
{
	fold_consts(2048, fold_k[0]);
	fold_consts(512, fold_k[1]);
	fold_consts(384, fold128_k[0]);
	fold_consts(256, fold128_k[1]);
	fold_consts(128, fold128_k[2]);
}

__attribute__((target("pclmul,sse4.2"))) static __m128i fold128(__m128i x, const uint64_t k[2])
{
	__m128i kk = _mm_set_epi64x((long long)k[1], (long long)k[0]);
	return _mm_xor_si128(_mm_clmulepi64_si128(x, kk, 0x00), _mm_clmulepi64_si128(x, kk, 0x11));
}

#define VBLOCK 256u /* octets per loop: four 512-bit accumulators */

__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2"))) static __m512i
fold512(__m512i x, __m512i k)
{
	return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00),
				_mm512_clmulepi64_epi128(x, k, 0x11));
}

/* LEN >= VBLOCK. */
__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2"))) static uint32_t
crc_fold(uint32_t crc, const uint8_t *p, size_t len)
{
	__m512i a0 = _mm512_loadu_si512((const void *)p);
	__m512i a1 = _mm512_loadu_si512((const void *)(p + 64));
	__m512i a2 = _mm512_loadu_si512((const void *)(p + 128));
	__m512i a3 = _mm512_loadu_si512((const void *)(p + 192));
	/* The running state enters as the first 32 message bits. */
	a0 = _mm512_xor_si512(a0, _mm512_castsi128_si512(_mm_cvtsi32_si128((int)crc)));
	__m512i k = _mm512_broadcast_i32x4(
		_mm_set_epi64x((long long)fold_k[0][1], (long long)fold_k[0][0]));
	p += VBLOCK;
	len -= VBLOCK;
	while (len >= VBLOCK) {
		a0 = _mm512_xor_si512(fold512(a0, k), _mm512_loadu_si512((const void *)p));
		a1 = _mm512_xor_si512(fold512(a1, k), _mm512_loadu_si512((const void *)(p + 64)));
		a2 = _mm512_xor_si512(fold512(a2, k), _mm512_loadu_si512((const void *)(p + 128)));
		a3 = _mm512_xor_si512(fold512(a3, k), _mm512_loadu_si512((const void *)(p + 192)));
		p += VBLOCK;
		len -= VBLOCK;
	}
	/* Each accumulator's lanes sit 64 octets before the next one's. */
	k = _mm512_broadcast_i32x4(
		_mm_set_epi64x((long long)fold_k[1][1], (long long)fold_k[1][0]));
	a1 = _mm512_xor_si512(fold512(a0, k), a1);
	a2 = _mm512_xor_si512(fold512(a1, k), a2);
	a3 = _mm512_xor_si512(fold512(a2, k), a3);
	/* Four lanes over the last 64 octets, 48, 32 and 16 octets apart. */
	__m128i r = _mm512_extracti32x4_epi32(a3, 3);
	r = _mm_xor_si128(r, fold128(_mm512_extracti32x4_epi32(a3, 0), fold128_k[0]));
	r = _mm_xor_si128(r, fold128(_mm512_extracti32x4_epi32(a3, 1), fold128_k[1]));
	r = _mm_xor_si128(r, fold128(_mm512_extracti32x4_epi32(a3, 2), fold128_k[2]));
	uint8_t rb[16];
	_mm_storeu_si128((__m128i *)rb, r);
	return crc_hw(crc_hw(0, rb, 16), p, len);
}
#endif

static int mode; /* 1 soft, 2 hw, 3 hw + folding */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	make_tables();
#if defined(__x86_64__)
	__builtin_cpu_init();
	mode = __builtin_cpu_supports("sse4.2") ? 2 : 1;
	if (mode == 2)
		make_shift_tables();
	if (mode == 2 && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("vpclmulqdq")) {
		make_fold_tables();
		mode = 3;
	}
#else
	mode = 1;
#endif
}

/* Folding pays off from a few blocks on; below, the crc32 instruction. */
#define FOLD_MIN (4 * VBLOCK)

static uint32_t compute(int impl, uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (impl == 3 && len >= FOLD_MIN)
		return ~crc_fold(crc, p, len);
	if (impl >= 2)
		return ~crc_hw3(crc, p, len);
#else
	(void)impl;
#endif
	return ~crc_soft(crc, p, len);
}

uint32_t bs__crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&once, init);
	return compute(mode, crc, data, len);
}

bool bs__crc32c_with(int impl, uint32_t crc, const void *data, size_t len, uint32_t *out)
{
	pthread_once(&once, init);
	if (impl < 1 || impl > mode)
		return false;
	*out = compute(impl, crc, data, len);
	return true;
}
