/* fuzz_vtpm_proto.c - libFuzzer target: blobstore-vtpm's protocol parsers
 * (examples/vtpm/proto.c), the code that reads what a socket peer sends.
 *
 * proto.c is compiled into this file (it is not part of the library the
 * fuzz build makes).  The first input octet selects the parser: even, the
 * control-message parser over the rest; odd, the TPM command framer with a
 * buffer limit taken from the second octet.  Each parse runs on an
 * exactly-sized copy, so a read past the message is an ASan report, and the
 * results must keep the invariants the server relies on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/vtpm/proto.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static void ctrl(const uint8_t *msg, size_t len)
{
	struct vtpm_ctrl_req rq;
	size_t need = 0;
	int rc = vtpm_ctrl_parse(msg, len, &rq, &need);
	MUST(rc == VTPM_OK || rc == VTPM_MORE || rc == VTPM_BAD || rc == VTPM_UNKNOWN);
	if (rc == VTPM_MORE) {
		/* The server grows its buffer to NEED: it must be bounded and
		 * make progress. */
		MUST(need > len && need <= VTPM_CTRL_MAX_MSG);
		return;
	}
	if (rc != VTPM_OK)
		return;
	MUST(need <= len);
	MUST(rq.cmd >= VTPM_CMD_GET_CAPABILITY && rq.cmd <= VTPM_CMD_LOCK_STORAGE);
	MUST(vtpm_ctrl_name(rq.cmd) != NULL);
	if (rq.data) {
		MUST(rq.data >= msg && rq.data_len <= len &&
		     (size_t)(rq.data - msg) <= len - rq.data_len);
		MUST(rq.data + rq.data_len == msg + len); /* the payload ends the message */
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < rq.data_len; i++)
			sink ^= rq.data[i];
		(void)sink;
	} else {
		MUST(rq.data_len == 0);
	}
	/* Every prefix of a complete message asks for more, never less. */
	for (size_t cut = 0; cut < need; cut += 1 + cut / 3) {
		size_t n2;
		struct vtpm_ctrl_req r2;
		MUST(vtpm_ctrl_parse(msg, cut, &r2, &n2) == VTPM_MORE && n2 > cut);
	}
}

static void frame(const uint8_t *buf, size_t len, size_t max)
{
	size_t need = 0;
	int rc = vtpm_cmd_frame(buf, len, max, &need);
	MUST(rc == VTPM_OK || rc == VTPM_MORE || rc == VTPM_BAD);
	if (rc == VTPM_MORE)
		MUST(need > len && need <= (len < VTPM_TPM_HDR ? VTPM_TPM_HDR : max));
	if (rc == VTPM_OK) {
		MUST(need >= VTPM_TPM_HDR && need <= max && need <= len);
		(void)vtpm_cc_name(vtpm_cmd_code(buf, need));
	}
	uint8_t err[10];
	vtpm_error_response(err, 0x101);
	MUST(vtpm_cmd_frame(err, sizeof err, VTPM_DEFAULT_BUFFER, &need) == VTPM_OK && need == 10);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	if (sel & 1) {
		if (size < 2)
			return 0;
		size_t max = VTPM_TPM_HDR + (size_t)data[1] * 64;
		size_t len = size - 2;
		uint8_t *c = malloc(len ? len : 1);
		if (!c)
			return 0;
		memcpy(c, data + 2, len);
		frame(c, len, max);
		free(c);
	} else {
		size_t len = size - 1;
		uint8_t *c = malloc(len ? len : 1);
		if (!c)
			return 0;
		memcpy(c, data + 1, len);
		ctrl(c, len);
		free(c);
	}
	return 0;
}
