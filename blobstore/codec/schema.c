/* schema.c - entries decoded with libtasn1 against the shipped module.
 *
 * The module (blobstore.asn) is compiled into this library at build time;
 * libtasn1 checks structure against it, while strict DER is checked by our
 * own parser (libtasn1 accepts some non-canonical encodings). */
#include <libtasn1.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

extern const asn1_static_node bs__asn1_tab[];
extern const char bs__asn1_text[];

static asn1_node defs;
static int defs_rc = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE];
	defs_rc = asn1_array2tree(bs__asn1_tab, &defs, err);
}

const char *bs_asn1_module_text(void)
{
	return bs__asn1_text;
}

int bs__schema_check_entry(const uint8_t *der, size_t len, char *why, size_t whylen)
{
	pthread_once(&once, load);
	if (defs_rc != ASN1_SUCCESS) {
		snprintf(why, whylen, "ASN.1 module failed to load: %s", asn1_strerror(defs_rc));
		return BS_EIO;
	}
	if (len > INT32_MAX) {
		snprintf(why, whylen, "entry too large for libtasn1");
		return BS_ELIMIT;
	}
	asn1_node el = NULL;
	int rc = asn1_create_element(defs, "Blobstore.Entry", &el);
	if (rc != ASN1_SUCCESS) {
		snprintf(why, whylen, "libtasn1: %s", asn1_strerror(rc));
		return BS_ENOMEM;
	}
	char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE] = "";
	int l = (int)len;
	rc = asn1_der_decoding2(&el, der, &l, ASN1_DECODE_FLAG_STRICT_DER, err);
	asn1_delete_structure(&el);
	if (rc != ASN1_SUCCESS) {
		snprintf(why, whylen, "schema (libtasn1): %s%s%s", asn1_strerror(rc),
			 err[0] ? ": " : "", err);
		return BS_ECORRUPT;
	}
	if ((size_t)l != len) {
		snprintf(why, whylen, "schema (libtasn1): %zu trailing octets", len - (size_t)l);
		return BS_ECORRUPT;
	}
	return BS_OK;
}
