/* encrypt.c - bs_entry_encrypt(): a plaintext entry becomes an encrypted
 * one in one copy-on-write rewrite, and its old plaintext copy is gone. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* The value element of the attribute encoding A/AL (SEQUENCE { IA5String
 * name, value }). */
static int attr_value(const uint8_t *a, size_t al, const uint8_t **v, size_t *vl)
{
	struct bs__tlv seq, name;
	if (bs__der_header(a, al, &seq) || bs__der_header(a + seq.hdr, seq.len, &name) ||
	    name.hdr + name.len >= seq.len)
		return BS_EINVAL;
	*v = a + seq.hdr + name.hdr + name.len;
	*vl = seq.len - name.hdr - name.len;
	return BS_OK;
}

/* Whether the OLD_SIZE octets at OLD_OFF read as a wiped free element:
 * its header, then zeros only. */
static int wiped(bs_image *img, const bs_entry *e, uint64_t old_off, uint64_t old_size)
{
	struct bs__where w;
	bs__where_of(img, e, &w);
	uint8_t hdr[8];
	struct bs__tlv t;
	size_t hl = old_size < sizeof hdr ? (size_t)old_size : sizeof hdr;
	int rc = bs__io_read(&img->io, &w, hdr, hl, old_off);
	if (rc)
		return rc;
	if (bs__der_header_prefix(hdr, hl, &t) || hdr[0] != DER_OCTET_STRING)
		return BS_ECORRUPT;
	uint8_t fill[4096], buf[4096];
	memset(fill, 0xff, sizeof fill); /* what a delete fills free space with */
	for (uint64_t pos = old_off + t.hdr, end = old_off + old_size; pos < end;) {
		size_t k = end - pos > sizeof buf ? sizeof buf : (size_t)(end - pos);
		if ((rc = bs__io_read(&img->io, &w, buf, k, pos)))
			return rc;
		if (memcmp(buf, fill, k))
			return BS_ECORRUPT;
		pos += k;
	}
	return BS_OK;
}

int bs_entry_encrypt(bs_entry *e, enum bs_cipher cipher)
{
	if (!e)
		return bs__err(NULL, NULL, BS_NO_OFFSET, BS_EINVAL, "no entry");
	bs_image *img = e->img;
	int rc = bs__writable(img, e);
	if (rc)
		return rc;
	if (e == img->image_entry)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "the image entry holds no data");
	if (cipher != BS_CIPHER_DEFAULT && cipher != BS_CIPHER_AES_256_GCM &&
	    cipher != BS_CIPHER_CHACHA20_POLY1305)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "unknown cipher %d", (int)cipher);
	enum bs_aead want = cipher == BS_CIPHER_CHACHA20_POLY1305 ? BS_AEAD_CHACHA20POLY1305
								   : BS_AEAD_AES256GCM;
	if (e->aead) {
		if (cipher == BS_CIPHER_DEFAULT || e->aead == want)
			return BS_OK;
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
			       "entry is encrypted with %s already; its cipher does not change",
			       bs__aead_name(e->aead));
	}
	if (!e->slotted)
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL,
			       "entry has no slots (raw): encrypted entries keep their data in slots");
	if ((rc = bs__key_ready(img, e)))
		return rc;
	uint8_t *a = NULL;
	size_t al = 0;
	const uint8_t *v;
	size_t vl;
	if ((rc = bs__seal_attr(want, &a, &al)))
		return rc;
	if (attr_value(a, al, &v, &vl)) {
		free(a);
		return bs__err(img, e, BS_NO_OFFSET, BS_EINVAL, "internal: bad bs.aead encoding");
	}
	/* The copy holds the sealed value in its first slot and zeros in the
	 * other; once it is committed the plaintext copy's data area is
	 * overwritten with ff octets and synced, then the copy is deleted. */
	struct bs_attr set = BS_ATTR(BS_ATTR_AEAD, BS_ATTR_MANDATORY, v, vl);
	struct bs__rewrite rw = {.set = &set, .nset = 1, .aead = want, .wipe_old = true};
	uint64_t old_off = e->off, old_size = e->size;
	rc = bs__dir_rewrite(img, e, &rw);
	free(a);
	if (rc)
		return rc;
	/* The delete's wipe is best effort; here it is the point. */
	if (wiped(img, e, old_off, old_size))
		return bs__err(img, e, old_off, BS_EIO,
			       "entry encrypted, but its old plaintext copy could not be overwritten "
			       "(compact removes it)");
	return BS_OK;
}
