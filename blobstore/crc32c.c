/* crc32c.c - CRC-32C (Castagnoli), the slot check: SSE4.2 when the CPU has
 * it, slicing-by-8 tables otherwise. */
#include <pthread.h>
#include <string.h>

#include "internal.h"

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
#endif

static int mode; /* 1 soft, 2 hw */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	make_tables();
#if defined(__x86_64__)
	__builtin_cpu_init();
	mode = __builtin_cpu_supports("sse4.2") ? 2 : 1;
	if (mode == 2)
		make_shift_tables();
#else
	mode = 1;
#endif
}

uint32_t bs_crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&once, init);
	crc = ~crc;
#if defined(__x86_64__)
	if (mode == 2)
		return ~crc_hw3(crc, data, len);
#endif
	return ~crc_soft(crc, data, len);
}
