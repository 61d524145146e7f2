/* slots.c - the two-slot data area that makes replacing data crash-safe.
 *
 * The data OCTET STRING of a slotted entry holds two equal slots.  A slot is
 *   generation (8 octets, big-endian) | length (4, big-endian) | check | data
 * where check is CRC-32C (4 octets) or SHA-256 (32) over generation, length
 * and the LENGTH data octets.  The current value is the valid slot with the
 * higher generation.  A replace writes the other slot (header and data in
 * one write), then syncs once: torn or lost, that slot fails its check and
 * the previous value stays current.
 *
 * In an encrypted entry (bs.aead) the slot's data is nonce | ciphertext |
 * tag (crypt.c); the check still covers it, so a torn write is told apart
 * from tampering before any decryption. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The check over the 12 header octets and the data. */
static void compute_check(enum bs_check_alg alg, const uint8_t *hdr12, const void *data,
			  size_t len, uint8_t *out)
{
	if (alg == BS_CHECK_SHA256) {
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned int n = 32;
		if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(c, hdr12, 12) || (len && !EVP_DigestUpdate(c, data, len)) ||
		    !EVP_DigestFinal_ex(c, out, &n))
			memset(out, 0, 32); /* cannot match a real digest of a valid slot */
		EVP_MD_CTX_free(c);
		return;
	}
	uint32_t crc = bs_crc32c(0, hdr12, 12);
	crc = bs_crc32c(crc, data, len);
	put_be32(out, crc);
}

void bs__slot_put_header(enum bs_check_alg alg, uint8_t *hdr, uint64_t gen, const void *data,
			 size_t len)
{
	put_be64(hdr, gen);
	put_be32(hdr + 8, (uint32_t)len);
	compute_check(alg, hdr, data, len, hdr + 12);
}

size_t bs__slot_capacity(const bs_entry *e)
{
	if (!e->slotted)
		return (size_t)e->data_len;
	return (size_t)(e->data_len / 2 - bs__slot_hdr_len(e->alg));
}

size_t bs__data_capacity(const bs_entry *e)
{
	size_t c = bs__slot_capacity(e);
	if (e->aead)
		return c > BS_AEAD_OVERHEAD ? c - BS_AEAD_OVERHEAD : 0;
	return c;
}

static uint64_t slot_off(const bs_entry *e, int i)
{
	return e->data_off + (uint64_t)i * (e->data_len / 2);
}

int bs__slots_init(enum bs_check_alg alg, uint8_t *area, size_t area_len, const void *data,
		   size_t len, uint64_t gen)
{
	size_t h = bs__slot_hdr_len(alg);
	if (area_len < 2 * h || len > area_len / 2 - h)
		return BS_EINVAL;
	memset(area, 0, area_len);
	if (len)
		memcpy(area + h, data, len);
	bs__slot_put_header(alg, area, gen, data, len);
	return BS_OK;
}

/* Validates a slot whose header is HDR and whose data is DATA. */
static bool slot_valid(const bs_entry *e, const uint8_t *hdr, const uint8_t *data, size_t cap)
{
	uint32_t len = get_be32(hdr + 8);
	if (len > cap)
		return false;
	uint8_t chk[32];
	size_t clen = bs__slot_hdr_len(e->alg) - 12;
	compute_check(e->alg, hdr, data, len, chk);
	return memcmp(chk, hdr + 12, clen) == 0;
}

struct slot_state {
	int valid[2];
	uint64_t gen[2];
	uint32_t len[2];
};

/* Reads the headers of both slots. */
static int read_headers(bs_image *img, bs_entry *e, uint8_t hdr[2][44])
{
	size_t h = bs__slot_hdr_len(e->alg);
	for (int i = 0; i < 2; i++) {
		int rc = bs__read(img, e, hdr[i], h, slot_off(e, i));
		if (rc)
			return rc;
	}
	return BS_OK;
}

/* Reads slot I's data into DST (at least its length) and validates it.
 * Returns 1 when valid, 0 when not, or a negative error. */
static int load_slot(bs_image *img, bs_entry *e, int i, const uint8_t *hdr, uint8_t *dst)
{
	size_t h = bs__slot_hdr_len(e->alg);
	size_t cap = bs__slot_capacity(e);
	uint32_t len = get_be32(hdr + 8);
	if (len > cap)
		return 0;
	if (len) {
		int rc = bs__read(img, e, dst, len, slot_off(e, i) + h);
		if (rc)
			return rc;
	}
	return slot_valid(e, hdr, dst, cap) ? 1 : 0;
}

/* Finds the current slot: the valid one with the higher generation.
 * Fills DST (capacity-sized) with its data when DST is not NULL. */
static int find_current(bs_image *img, bs_entry *e, uint8_t *dst, int *which, uint64_t *gen,
			uint32_t *len)
{
	uint8_t hdr[2][44];
	int rc = read_headers(img, e, hdr);
	if (rc)
		return rc;
	uint64_t g0 = get_be64(hdr[0]), g1 = get_be64(hdr[1]);
	int order[2] = {g1 > g0 ? 1 : 0, g1 > g0 ? 0 : 1};
	for (int k = 0; k < 2; k++) {
		int i = order[k];
		rc = load_slot(img, e, i, hdr[i], dst);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (k == 0 && g0 == g1) {
				/* Both claim one generation: only fine if the other is invalid. */
				uint8_t *tmp = malloc(bs__slot_capacity(e) + 1);
				if (!tmp)
					return BS_ENOMEM;
				int rc2 = load_slot(img, e, 1 - i, hdr[1 - i], tmp);
				free(tmp);
				if (rc2 < 0)
					return rc2;
				if (rc2 == 1)
					return bs__err(img, e, slot_off(e, 0), BS_ECORRUPT,
						       "both data slots are valid with generation %llu",
						       (unsigned long long)g0);
			}
			*which = i;
			*gen = get_be64(hdr[i]);
			*len = get_be32(hdr[i] + 8);
			return BS_OK;
		}
	}
	return bs__err(img, e, slot_off(e, order[0]), BS_ECORRUPT,
		       "no valid data slot: both fail their %s check",
		       e->alg == BS_CHECK_SHA256 ? "SHA-256" : "CRC-32C");
}

/* Decrypts the current slot's payload CT/L of generation GEN for a read. */
static int open_payload(bs_image *img, bs_entry *e, int which, uint64_t gen, const uint8_t *ct,
			uint32_t l, void **out, size_t *len, uint8_t *buf, size_t bufsize,
			bool alloc)
{
	uint64_t where = slot_off(e, which);
	if (l < BS_AEAD_OVERHEAD)
		return bs__err(img, e, where, BS_ECORRUPT,
			       "encrypted slot of %u octets is shorter than nonce and tag", l);
	size_t pl = l - BS_AEAD_OVERHEAD;
	*len = pl;
	uint8_t *dst = buf;
	if (alloc) {
		dst = malloc(pl ? pl : 1);
		if (!dst)
			return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	} else if (bufsize < pl) {
		return bs__err(img, e, BS_NO_OFFSET, BS_ERANGE,
			       "buffer of %zu octets too small for %zu octets of data", bufsize, pl);
	}
	int rc = bs__crypt_open(img, e, gen, ct, l, dst, where);
	if (rc) {
		*len = 0;
		if (alloc)
			free(dst);
		return rc;
	}
	if (alloc)
		*out = dst;
	return BS_OK;
}

int bs__slot_read(bs_image *img, bs_entry *e, void **out, size_t *len, uint8_t *buf,
		  size_t bufsize, bool alloc)
{
	if (e->aead) {
		int krc = bs__crypt_ready(img, e);
		if (krc)
			return krc;
	}
	size_t cap = bs__slot_capacity(e);
	uint8_t *tmp = malloc(cap ? cap : 1);
	if (!tmp)
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	/* A reader without the lock may meet a writer mid-write: the slot then
	 * fails its check, and a second look finds a complete value. */
	int tries = (img->flags & BS_OPEN_RDONLY) ? 8 : 1;
	int rc = BS_ECORRUPT, which = 0;
	uint64_t gen = 0;
	uint32_t l = 0;
	uint8_t seen[2][2][44];
	memset(seen, 0, sizeof seen);
	for (int t = 0; t < tries; t++) {
		rc = find_current(img, e, tmp, &which, &gen, &l);
		if (rc != BS_ECORRUPT)
			break;
		if (t + 1 >= tries)
			break;
		/* Damage stays put, a writer moves on: stop once two failed looks
		 * found the same slot headers, so reading a corrupt entry costs
		 * one short pause, not the whole retry budget. */
		if (read_headers(img, e, seen[t % 2]) ||
		    (t > 0 && !memcmp(seen[0], seen[1], sizeof seen[0])))
			break;
		struct timespec ts = {0, 1000000L << (t < 5 ? t : 5)};
		nanosleep(&ts, NULL);
	}
	if (rc) {
		free(tmp);
		return rc;
	}
	if (!(img->flags & BS_OPEN_RDONLY)) {
		e->active = which;
		e->gen = gen;
	}
	if (e->aead) {
		/* No fallback to the other slot when this one fails to
		 * authenticate: its check passed, so this is tampering. */
		rc = open_payload(img, e, which, gen, tmp, l, out, len, buf, bufsize, alloc);
		free(tmp);
		return rc;
	}
	*len = l;
	if (alloc) {
		*out = tmp;
		return BS_OK;
	}
	if (bufsize < l) {
		free(tmp);
		return bs__err(img, e, BS_NO_OFFSET, BS_ERANGE,
			       "buffer of %zu octets too small for %u octets of data", bufsize, l);
	}
	if (l)
		memcpy(buf, tmp, l);
	free(tmp);
	return BS_OK;
}

int bs__slot_write(bs_image *img, bs_entry *e, const void *data, size_t len)
{
	size_t h = bs__slot_hdr_len(e->alg);
	size_t cap = bs__slot_capacity(e);
	if (e->aead) {
		int krc = bs__crypt_ready(img, e);
		if (krc)
			return krc;
	}
	if (len > bs__data_capacity(e))
		return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT,
			       "%zu octets do not fit the capacity of %zu", len,
			       bs__data_capacity(e));
	if (e->active < 0) {
		uint8_t *tmp = malloc(cap ? cap : 1);
		if (!tmp)
			return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		uint32_t l;
		int rc = find_current(img, e, tmp, &e->active, &e->gen, &l);
		free(tmp);
		if (rc == BS_ECORRUPT) {
			/* No usable value: the caller replaces it on purpose.  Write
			 * above every generation either slot claims. */
			uint8_t hdr[2][44];
			rc = read_headers(img, e, hdr);
			if (rc)
				return rc;
			uint64_t g0 = get_be64(hdr[0]), g1 = get_be64(hdr[1]);
			e->active = 1;
			e->gen = g0 > g1 ? g0 : g1;
		} else if (rc) {
			return rc;
		}
	}
	if (e->gen == UINT64_MAX)
		return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT, "slot generation exhausted");
	int target = 1 - e->active;
	size_t plen = e->aead ? len + BS_AEAD_OVERHEAD : len;
	if (!e->aead) {
		/* Plain data goes out as it is: header and caller's buffer in one
		 * vectored write, no copy of a possibly large value. */
		uint8_t hdr[44];
		bs__slot_put_header(e->alg, hdr, e->gen + 1, data, len);
		int rc = bs__write2(img, e, hdr, h, data, len, slot_off(e, target));
		if (!rc)
			rc = bs__sync(img);
		if (rc) {
			e->active = -1;
			img->broken = true;
			return rc;
		}
		e->active = target;
		e->gen++;
		return BS_OK;
	}
	uint8_t *buf = malloc(h + plen);
	if (!buf)
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	if (e->aead) {
		int crc = bs__crypt_seal(img, e, e->gen + 1, data, len, buf + h);
		if (crc) {
			free(buf);
			return crc;
		}
	} else if (len) {
		memcpy(buf + h, data, len);
	}
	bs__slot_put_header(e->alg, buf, e->gen + 1, buf + h, plen);
	int rc = bs__write(img, e, buf, h + plen, slot_off(e, target));
	free(buf);
	if (!rc)
		rc = bs__sync(img);
	if (rc) {
		e->active = -1; /* the target slot's state is unknown now */
		/* Reading it back from a cache proves nothing about storage: a
		 * next write could overwrite the last durable slot. */
		img->broken = true;
		return rc;
	}
	e->active = target;
	e->gen++;
	return BS_OK;
}

int bs__slot_check(bs_image *img, bs_entry *e, bs_check_cb cb, void *ctx)
{
	int which;
	uint64_t gen;
	uint32_t len;
	size_t cap = bs__slot_capacity(e);
	uint8_t *tmp = malloc(cap ? cap : 1);
	if (!tmp)
		return BS_ENOMEM;
	int rc = find_current(img, e, tmp, &which, &gen, &len);
	/* With the key loaded an encrypted entry is also authenticated; without
	 * it only the slot check can be verified. */
	if (!rc && e->aead && img->crypt) {
		size_t pl;
		uint8_t *plain = NULL;
		rc = open_payload(img, e, which, gen, tmp, len, (void **)&plain, &pl, NULL, 0,
				  true);
		if (plain) {
			OPENSSL_cleanse(plain, pl);
			free(plain);
		}
	}
	free(tmp);
	if (rc && cb)
		cb(ctx, e, e->data_off, rc, bs_errmsg());
	if (!rc && cb) {
		/* The other slot claims a newer generation but fails its check:
		 * a torn last write, or damage to the newest value.  The two look
		 * alike, so the reader returns the previous value; say so. */
		uint8_t hdr[2][44];
		if (read_headers(img, e, hdr) == BS_OK && get_be64(hdr[1 - which]) > gen) {
			char msg[200];
			snprintf(msg, sizeof msg,
				 "slot %d claims generation %llu but fails its check; the entry "
				 "reads as generation %llu (an interrupted write, or damage)",
				 1 - which, (unsigned long long)get_be64(hdr[1 - which]),
				 (unsigned long long)gen);
			cb(ctx, e, slot_off(e, 1 - which), BS_OK, msg);
		}
	}
	return rc;
}

int bs__slot_next_gen(bs_image *img, bs_entry *e, uint64_t *gen)
{
	uint8_t hdr[2][44];
	int rc = read_headers(img, e, hdr);
	if (rc)
		return rc;
	/* Every generation either slot claims, valid or not: a copy must
	 * start above anything an old slot could ever be replayed as. */
	uint64_t g0 = get_be64(hdr[0]), g1 = get_be64(hdr[1]);
	uint64_t g = g0 > g1 ? g0 : g1;
	if (e->active >= 0 && e->gen > g)
		g = e->gen;
	if (g == UINT64_MAX)
		return bs__err(img, e, BS_NO_OFFSET, BS_ELIMIT, "slot generation exhausted");
	*gen = g + 1;
	return BS_OK;
}

int bs__slot_inspect(bs_image *img, bs_entry *e, struct bs_slot_view v[2], int *current)
{
	uint8_t hdr[2][44];
	int rc = read_headers(img, e, hdr);
	if (rc)
		return rc;
	size_t cap = bs__slot_capacity(e);
	uint8_t *tmp = malloc(cap ? cap : 1);
	if (!tmp)
		return bs__err(img, e, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	for (int i = 0; i < 2 && !rc; i++) {
		v[i].off = slot_off(e, i);
		v[i].gen = get_be64(hdr[i]);
		v[i].len = get_be32(hdr[i] + 8);
		int valid = load_slot(img, e, i, hdr[i], tmp);
		if (valid < 0)
			rc = valid;
		v[i].valid = valid == 1;
	}
	/* The same choice a read makes, so the dump cannot disagree with it. */
	uint64_t gen;
	uint32_t len;
	if (!rc && find_current(img, e, tmp, current, &gen, &len))
		*current = -1;
	free(tmp);
	return rc;
}
