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
 * tag (seal.c); the check still covers it, so a torn write is told apart
 * from tampering before any decryption. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"

#define MAX_HDR 44u /* 12 + SHA-256 */

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
	uint32_t crc = bs__crc32c(0, hdr12, 12);
	crc = bs__crc32c(crc, data, len);
	bs_put_be32(out, crc);
}

void bs__slot_put_header(enum bs_check_alg alg, uint8_t *hdr, uint64_t gen, const void *data,
			 size_t len)
{
	bs_put_be64(hdr, gen);
	bs_put_be32(hdr + 8, (uint32_t)len);
	compute_check(alg, hdr, data, len, hdr + 12);
}

size_t bs__slot_capacity(const struct bs__slots *s)
{
	return (size_t)(s->len / 2 - bs__slot_hdr_len(s->alg));
}

static uint64_t slot_off(const struct bs__slots *s, int i)
{
	return s->off + (uint64_t)i * (s->len / 2);
}

static const char *alg_label(enum bs_check_alg alg)
{
	return alg == BS_CHECK_SHA256 ? "SHA-256" : "CRC-32C";
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
static bool slot_valid(const struct bs__slots *s, const uint8_t *hdr, const uint8_t *data,
		       size_t cap)
{
	uint32_t len = bs_get_be32(hdr + 8);
	if (len > cap)
		return false;
	uint8_t chk[32];
	size_t clen = bs__slot_hdr_len(s->alg) - 12;
	compute_check(s->alg, hdr, data, len, chk);
	return memcmp(chk, hdr + 12, clen) == 0;
}

/* Reads the headers of both slots. */
static int read_headers(struct bs__io *io, const struct bs__where *w, const struct bs__slots *s,
			uint8_t hdr[2][MAX_HDR])
{
	size_t h = bs__slot_hdr_len(s->alg);
	for (int i = 0; i < 2; i++) {
		int rc = bs__io_read(io, w, hdr[i], h, slot_off(s, i));
		if (rc)
			return rc;
	}
	return BS_OK;
}

/* Reads slot I's data into DST (at least its length) and validates it.
 * Returns 1 when valid, 0 when not, or a negative error. */
static int load_slot(struct bs__io *io, const struct bs__where *w, const struct bs__slots *s,
		     int i, const uint8_t *hdr, uint8_t *dst)
{
	size_t h = bs__slot_hdr_len(s->alg);
	size_t cap = bs__slot_capacity(s);
	uint32_t len = bs_get_be32(hdr + 8);
	if (len > cap)
		return 0;
	if (len) {
		int rc = bs__io_read(io, w, dst, len, slot_off(s, i) + h);
		if (rc)
			return rc;
	}
	return slot_valid(s, hdr, dst, cap) ? 1 : 0;
}

/* Finds the current slot: the valid one with the higher generation.
 * Fills DST (capacity-sized) with its data. */
static int find_current(struct bs__io *io, const struct bs__where *w, const struct bs__slots *s,
			uint8_t *dst, int *which, uint64_t *gen, uint32_t *len)
{
	uint8_t hdr[2][MAX_HDR];
	int rc = read_headers(io, w, s, hdr);
	if (rc)
		return rc;
	uint64_t g0 = bs_get_be64(hdr[0]), g1 = bs_get_be64(hdr[1]);
	int order[2] = {g1 > g0 ? 1 : 0, g1 > g0 ? 0 : 1};
	for (int k = 0; k < 2; k++) {
		int i = order[k];
		rc = load_slot(io, w, s, i, hdr[i], dst);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (k == 0 && g0 == g1) {
				/* Both claim one generation: only fine if the other is invalid. */
				uint8_t *tmp = malloc(bs__slot_capacity(s) + 1);
				if (!tmp)
					return BS_ENOMEM;
				int rc2 = load_slot(io, w, s, 1 - i, hdr[1 - i], tmp);
				free(tmp);
				if (rc2 < 0)
					return rc2;
				if (rc2 == 1)
					return bs__error(w, slot_off(s, 0), BS_ECORRUPT,
							 "both data slots are valid with generation %llu",
							 (unsigned long long)g0);
			}
			*which = i;
			*gen = bs_get_be64(hdr[i]);
			*len = bs_get_be32(hdr[i] + 8);
			return BS_OK;
		}
	}
	return bs__error(w, slot_off(s, order[0]), BS_ECORRUPT,
			 "no valid data slot: both fail their %s check", alg_label(s->alg));
}

/* Decrypts the current slot's payload CT/L of generation GEN for a read. */
static int open_payload(const struct bs__slots *s, const struct bs__where *w,
			const struct bs__sealctx *sc, int which, uint64_t gen, const uint8_t *ct,
			uint32_t l, void **out, size_t *len, uint8_t *buf, size_t bufsize,
			bool alloc)
{
	uint64_t where = slot_off(s, which);
	if (l < BS_AEAD_OVERHEAD)
		return bs__error(w, where, BS_ECORRUPT,
				 "encrypted slot of %u octets is shorter than nonce and tag", l);
	size_t pl = l - BS_AEAD_OVERHEAD;
	uint8_t *dst = buf;
	if (alloc) {
		dst = malloc(pl ? pl : 1);
		if (!dst)
			return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	} else if (bufsize < pl) {
		*len = pl;
		return bs__error(w, BS_NO_OFFSET, BS_ERANGE,
				 "buffer of %zu octets too small for %zu octets of data", bufsize, pl);
	}
	int rc = bs__unseal(sc, gen, ct, l, dst, w, where);
	if (rc) {
		if (alloc)
			free(dst);
		return rc;
	}
	*len = pl;
	if (alloc)
		*out = dst;
	return BS_OK;
}

int bs__slot_read(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		  const struct bs__sealctx *sc, bool reader, void **out, size_t *len,
		  uint8_t *buf, size_t bufsize, bool alloc)
{
	size_t cap = bs__slot_capacity(s);
	uint8_t *tmp = malloc(cap ? cap : 1);
	if (!tmp)
		return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	/* A reader without the lock may meet a writer mid-write: the slot then
	 * fails its check, and a second look finds a complete value. */
	int tries = reader ? 8 : 1;
	int rc = BS_ECORRUPT, which = 0;
	uint64_t gen = 0;
	uint32_t l = 0;
	uint8_t seen[2][2][MAX_HDR];
	memset(seen, 0, sizeof seen);
	for (int t = 0; t < tries; t++) {
		rc = find_current(io, w, s, tmp, &which, &gen, &l);
		if (rc != BS_ECORRUPT)
			break;
		if (t + 1 >= tries)
			break;
		/* Damage stays put, a writer moves on: stop once two failed looks
		 * found the same slot headers, so reading a corrupt entry costs
		 * one short pause, not the whole retry budget. */
		if (read_headers(io, w, s, seen[t % 2]) ||
		    (t > 0 && !memcmp(seen[0], seen[1], sizeof seen[0])))
			break;
		struct timespec ts = {0, 1000000L << (t < 5 ? t : 5)};
		nanosleep(&ts, NULL);
	}
	if (rc) {
		free(tmp);
		return rc;
	}
	if (!reader) {
		s->active = which;
		s->gen = gen;
	}
	if (sc) {
		/* No fallback to the other slot when this one fails to
		 * authenticate: its check passed, so this is tampering. */
		rc = open_payload(s, w, sc, which, gen, tmp, l, out, len, buf, bufsize, alloc);
		free(tmp);
		return rc;
	}
	if (alloc) {
		*out = tmp;
		*len = l;
		return BS_OK;
	}
	if (bufsize < l) {
		free(tmp);
		*len = l;
		return bs__error(w, BS_NO_OFFSET, BS_ERANGE,
				 "buffer of %zu octets too small for %u octets of data", bufsize, l);
	}
	if (l)
		memcpy(buf, tmp, l);
	free(tmp);
	*len = l;
	return BS_OK;
}

int bs__slot_write(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		   const struct bs__sealctx *sc, const void *data, size_t len)
{
	size_t h = bs__slot_hdr_len(s->alg);
	size_t cap = bs__slot_capacity(s);
	size_t room = sc ? (cap > BS_AEAD_OVERHEAD ? cap - BS_AEAD_OVERHEAD : 0) : cap;
	if (len > room)
		return bs__error(w, BS_NO_OFFSET, BS_ELIMIT,
				 "%zu octets do not fit the capacity of %zu", len, room);
	if (s->active < 0) {
		uint8_t *tmp = malloc(cap ? cap : 1);
		if (!tmp)
			return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		uint32_t l;
		int rc = find_current(io, w, s, tmp, &s->active, &s->gen, &l);
		free(tmp);
		if (rc == BS_ECORRUPT) {
			/* No usable value: the caller replaces it on purpose.  Write
			 * above every generation either slot claims. */
			uint8_t hdr[2][MAX_HDR];
			rc = read_headers(io, w, s, hdr);
			if (rc)
				return rc;
			uint64_t g0 = bs_get_be64(hdr[0]), g1 = bs_get_be64(hdr[1]);
			s->active = 1;
			s->gen = g0 > g1 ? g0 : g1;
		} else if (rc) {
			return rc;
		}
	}
	if (s->gen == UINT64_MAX)
		return bs__error(w, BS_NO_OFFSET, BS_ELIMIT, "slot generation exhausted");
	int target = 1 - s->active;
	int rc;
	if (!sc) {
		/* Plain data goes out as it is: header and caller's buffer in one
		 * vectored write, no copy of a possibly large value. */
		uint8_t hdr[MAX_HDR];
		bs__slot_put_header(s->alg, hdr, s->gen + 1, data, len);
		rc = bs__io_write2(io, w, hdr, h, data, len, slot_off(s, target));
	} else {
		size_t plen = len + BS_AEAD_OVERHEAD;
		uint8_t *buf = malloc(h + plen);
		if (!buf)
			return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
		rc = bs__seal(sc, s->gen + 1, data, len, buf + h, w);
		if (rc) {
			free(buf);
			return rc;
		}
		bs__slot_put_header(s->alg, buf, s->gen + 1, buf + h, plen);
		rc = bs__io_write(io, w, buf, h + plen, slot_off(s, target));
		free(buf);
	}
	if (!rc)
		rc = bs__io_sync(io);
	if (rc) {
		/* The target slot's state is unknown now: a failed sync may have
		 * dropped the write (Linux marks such pages clean) while caches
		 * still return it, valid, to the next reader, whose next write
		 * would then go over the last durable value.  Withdraw the slot
		 * (its length becomes ffffffff, which no slot passes) and sync;
		 * the other slot, durable, stays current.  If even that fails,
		 * storage is unknown: stop writing through this handle. */
		static const uint8_t withdrawn[4] = {0xff, 0xff, 0xff, 0xff};
		if (bs__io_write(io, w, withdrawn, sizeof withdrawn, slot_off(s, target) + 8) ||
		    bs__io_sync(io)) {
			s->active = -1;
			io->broken = true;
			return rc;
		}
		/* The next write goes above the withdrawn generation. */
		s->gen++;
		return rc;
	}
	s->active = target;
	s->gen++;
	return BS_OK;
}

int bs__slot_check(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		   const struct bs__sealctx *sc, struct bs__slot_report *rep)
{
	int which;
	uint64_t gen;
	uint32_t len;
	size_t cap = bs__slot_capacity(s);
	uint8_t *tmp = malloc(cap ? cap : 1);
	if (!tmp)
		return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	memset(rep, 0, sizeof *rep);
	int rc = find_current(io, w, s, tmp, &which, &gen, &len);
	/* With a key an encrypted entry is also authenticated; without it only
	 * the slot check can be verified. */
	if (!rc && sc) {
		size_t pl;
		uint8_t *plain = NULL;
		rc = open_payload(s, w, sc, which, gen, tmp, len, (void **)&plain, &pl, NULL, 0,
				  true);
		if (plain) {
			OPENSSL_cleanse(plain, pl);
			free(plain);
		}
	}
	if (rc) {
		free(tmp);
		return rc;
	}
	rep->gen = gen;
	/* The other slot claims a newer generation but fails its check: a torn
	 * last write, or damage to the newest value.  The two look alike, so
	 * the reader returns the previous value; the caller says so.  The
	 * check covers the generation, which tells a damaged generation field
	 * apart: the other slot is the newest when it passes as generation
	 * GEN + 1 whatever it claims, and the older one when it passes as
	 * GEN - 1.  A slot whose length and check are all zero was never
	 * written whole (a fresh entry's second slot, or a write cut short in
	 * its header), and a withdrawn one was never committed: neither holds
	 * a newer value. */
	uint8_t hdr[2][MAX_HDR];
	int other = 1 - which;
	if (read_headers(io, w, s, hdr) == BS_OK &&
	    load_slot(io, w, s, other, hdr[other], tmp) == 0) {
		uint64_t claimed = bs_get_be64(hdr[other]);
		size_t h = bs__slot_hdr_len(s->alg);
		bool blank = true;
		for (size_t i = 8; i < h; i++)
			blank = blank && hdr[other][i] == 0;
		/* A slot withdrawn after a failed write or sync (length
		 * ffffffff) never held a committed value either. */
		blank = blank || bs_get_be32(hdr[other] + 8) == UINT32_MAX;
		uint8_t fixed[MAX_HDR];
		memcpy(fixed, hdr[other], sizeof fixed);
		bool newer = false;
		if (gen < UINT64_MAX) {
			bs_put_be64(fixed, gen + 1);
			newer = load_slot(io, w, s, other, fixed, tmp) == 1;
		}
		if (!newer && claimed > gen && !blank) {
			newer = true;
			if (gen > 0) {
				bs_put_be64(fixed, gen - 1);
				newer = load_slot(io, w, s, other, fixed, tmp) != 1;
			}
		}
		if (newer) {
			rep->newer_bad = true;
			rep->bad_slot = other;
			rep->bad_gen = claimed;
			rep->bad_off = slot_off(s, other);
		}
	}
	free(tmp);
	return BS_OK;
}

int bs__slot_next_gen(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		      uint64_t *gen)
{
	uint8_t hdr[2][MAX_HDR];
	int rc = read_headers(io, w, s, hdr);
	if (rc)
		return rc;
	/* Every generation either slot claims, valid or not: a copy must
	 * start above anything an old slot could ever be replayed as. */
	uint64_t g0 = bs_get_be64(hdr[0]), g1 = bs_get_be64(hdr[1]);
	uint64_t g = g0 > g1 ? g0 : g1;
	if (s->active >= 0 && s->gen > g)
		g = s->gen;
	if (g == UINT64_MAX)
		return bs__error(w, BS_NO_OFFSET, BS_ELIMIT, "slot generation exhausted");
	*gen = g + 1;
	return BS_OK;
}

int bs__slot_inspect(struct bs__io *io, const struct bs__where *w, struct bs__slots *s,
		     struct bs__slot_view v[2], int *current)
{
	uint8_t hdr[2][MAX_HDR];
	int rc = read_headers(io, w, s, hdr);
	if (rc)
		return rc;
	size_t cap = bs__slot_capacity(s);
	uint8_t *tmp = malloc(cap ? cap : 1);
	if (!tmp)
		return bs__error(w, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	for (int i = 0; i < 2 && !rc; i++) {
		v[i].off = slot_off(s, i);
		v[i].gen = bs_get_be64(hdr[i]);
		v[i].len = bs_get_be32(hdr[i] + 8);
		int valid = load_slot(io, w, s, i, hdr[i], tmp);
		if (valid < 0)
			rc = valid;
		v[i].valid = valid == 1;
	}
	/* The same choice a read makes, so the dump cannot disagree with it. */
	uint64_t gen;
	uint32_t len;
	if (!rc && find_current(io, w, s, tmp, current, &gen, &len))
		*current = -1;
	free(tmp);
	return rc;
}
