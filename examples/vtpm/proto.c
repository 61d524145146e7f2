/* proto.c - parsers of swtpm's socket protocol (see proto.h).  Every
 * length a peer announces is checked against the limits in proto.h before
 * it is used, and every read stays inside (MSG, LEN). */
#include <string.h>

#include "proto.h"

/* Octets of each command's fixed request part, after the command code. */
static size_t fixed_part(uint32_t cmd)
{
	switch (cmd) {
	case VTPM_CMD_INIT:
	case VTPM_CMD_SET_BUFFERSIZE:
	case VTPM_CMD_HASH_DATA:
		return 4;
	case VTPM_CMD_SET_LOCALITY:
	case VTPM_CMD_RESET_TPMESTABLISHED:
		return 1;
	case VTPM_CMD_GET_STATEBLOB:
	case VTPM_CMD_SET_STATEBLOB:
		return 12;
	case VTPM_CMD_GET_INFO:
		return 16;
	default:
		return 0;
	}
}

int vtpm_ctrl_parse(const uint8_t *msg, size_t len, struct vtpm_ctrl_req *req, size_t *need)
{
	memset(req, 0, sizeof *req);
	*need = 4;
	if (len < 4)
		return VTPM_MORE;
	req->cmd = bs_get_be32(msg);
	if (req->cmd < VTPM_CMD_GET_CAPABILITY || req->cmd > VTPM_CMD_GET_INFO) {
		*need = len;
		return VTPM_UNKNOWN;
	}
	const uint8_t *p = msg + 4;
	size_t fixed = fixed_part(req->cmd);
	*need = 4 + fixed;
	if (len < *need)
		return VTPM_MORE;
	size_t avail = len - 4 - fixed; /* octets after the fixed part */
	uint32_t announced;
	switch (req->cmd) {
	case VTPM_CMD_INIT:
		req->flags = bs_get_be32(p);
		break;
	case VTPM_CMD_SET_BUFFERSIZE:
		req->buffersize = bs_get_be32(p);
		break;
	case VTPM_CMD_SET_LOCALITY:
	case VTPM_CMD_RESET_TPMESTABLISHED:
		req->locality = p[0];
		break;
	case VTPM_CMD_GET_STATEBLOB:
		req->flags = bs_get_be32(p);
		req->type = bs_get_be32(p + 4);
		req->offset = bs_get_be32(p + 8);
		break;
	case VTPM_CMD_GET_INFO:
		req->info_flags = (uint64_t)bs_get_be32(p) << 32 | bs_get_be32(p + 4);
		req->offset = bs_get_be32(p + 8);
		break;
	case VTPM_CMD_HASH_DATA:
	case VTPM_CMD_SET_STATEBLOB:
		if (req->cmd == VTPM_CMD_HASH_DATA) {
			announced = bs_get_be32(p);
			if (announced > VTPM_MAX_HASH_DATA)
				return VTPM_BAD;
		} else {
			req->flags = bs_get_be32(p);
			req->type = bs_get_be32(p + 4);
			announced = bs_get_be32(p + 8);
			if (announced > VTPM_MAX_STATE_BLOB)
				return VTPM_BAD;
		}
		/* announced <= VTPM_MAX_STATE_BLOB: no overflow below. */
		*need = 4 + fixed + announced;
		if (avail < announced)
			return VTPM_MORE;
		if (avail > announced)
			return VTPM_BAD;
		req->data = p + fixed;
		req->data_len = announced;
		break;
	default:
		break;
	}
	if (req->cmd != VTPM_CMD_HASH_DATA && req->cmd != VTPM_CMD_SET_STATEBLOB)
		*need = 4 + fixed;
	return VTPM_OK;
}

int vtpm_cmd_frame(const uint8_t *buf, size_t len, size_t max, size_t *need)
{
	*need = VTPM_TPM_HDR;
	if (len < VTPM_TPM_HDR)
		return VTPM_MORE;
	uint32_t size = bs_get_be32(buf + 2);
	if (size < VTPM_TPM_HDR || size > max)
		return VTPM_BAD;
	*need = size;
	return len >= size ? VTPM_OK : VTPM_MORE;
}

uint32_t vtpm_cmd_code(const uint8_t *buf, size_t len)
{
	return len < VTPM_TPM_HDR ? 0 : bs_get_be32(buf + 6);
}

void vtpm_error_response(uint8_t out[10], uint32_t rc)
{
	out[0] = 0x80; /* TPM_ST_NO_SESSIONS */
	out[1] = 0x01;
	bs_put_be32(out + 2, 10);
	bs_put_be32(out + 6, rc);
}

const char *vtpm_ctrl_name(uint32_t cmd)
{
	static const char *const names[] = {
		NULL, "CMD_GET_CAPABILITY", "CMD_INIT", "CMD_SHUTDOWN",
		"CMD_GET_TPMESTABLISHED", "CMD_SET_LOCALITY", "CMD_HASH_START",
		"CMD_HASH_DATA", "CMD_HASH_END", "CMD_CANCEL_TPM_CMD",
		"CMD_STORE_VOLATILE", "CMD_RESET_TPMESTABLISHED", "CMD_GET_STATEBLOB",
		"CMD_SET_STATEBLOB", "CMD_STOP", "CMD_GET_CONFIG", "CMD_SET_DATAFD",
		"CMD_SET_BUFFERSIZE", "CMD_GET_INFO",
	};
	return cmd < sizeof names / sizeof names[0] ? names[cmd] : NULL;
}

const char *vtpm_cc_name(uint32_t cc)
{
	switch (cc) {
	case 0x120: return "TPM2_EvictControl";
	case 0x122: return "TPM2_NV_UndefineSpace";
	case 0x12a: return "TPM2_NV_DefineSpace";
	case 0x131: return "TPM2_CreatePrimary";
	case 0x137: return "TPM2_NV_Write";
	case 0x13c: return "TPM2_PCR_Event";
	case 0x143: return "TPM2_SelfTest";
	case 0x144: return "TPM2_Startup";
	case 0x145: return "TPM2_Shutdown";
	case 0x14e: return "TPM2_NV_Read";
	case 0x153: return "TPM2_Create";
	case 0x157: return "TPM2_Load";
	case 0x161: return "TPM2_FlushContext";
	case 0x169: return "TPM2_NV_ReadPublic";
	case 0x176: return "TPM2_StartAuthSession";
	case 0x17a: return "TPM2_GetCapability";
	case 0x17b: return "TPM2_GetRandom";
	case 0x17e: return "TPM2_PCR_Read";
	case 0x181: return "TPM2_ReadClock";
	case 0x182: return "TPM2_PCR_Extend";
	case 0x186: return "TPM2_HashSequenceStart";
	default: return NULL;
	}
}
