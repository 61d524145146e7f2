/* proto.c - parsers of swtpm's socket protocol (see proto.h).  Every
 * length a peer announces is checked against the limits in proto.h before
 * it is used, and every read stays inside (MSG, LEN). */
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* Octets of each command's fixed request part, after the command code. */
static size_t fixed_part(uint32_t cmd)
{
	switch (cmd) {
	case VTPM_CMD_INIT:
	case VTPM_CMD_SET_BUFFERSIZE:
	case VTPM_CMD_HASH_DATA:
	case VTPM_CMD_LOCK_STORAGE:
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
	if (req->cmd < VTPM_CMD_GET_CAPABILITY || req->cmd > VTPM_CMD_LOCK_STORAGE) {
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
	case VTPM_CMD_LOCK_STORAGE:
		req->retries = bs_get_be32(p);
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
		"CMD_SET_BUFFERSIZE", "CMD_GET_INFO", "CMD_LOCK_STORAGE",
	};
	return cmd < sizeof names / sizeof names[0] ? names[cmd] : NULL;
}

/* TPM 2.0 command codes 0x11f to 0x19f (TPM_CC_*, the library
 * specification's part 2), by code; NULL for the codes it leaves unused. */
static const char *const cc_names[] = {
	"NV_UndefineSpaceSpecial", "EvictControl", "HierarchyControl", "NV_UndefineSpace",
	NULL, "ChangeEPS", "ChangePPS", "Clear", "ClearControl", "ClockSet",
	"HierarchyChangeAuth", "NV_DefineSpace", "PCR_Allocate", "PCR_SetAuthPolicy",
	"PP_Commands", "SetPrimaryPolicy", "FieldUpgradeStart", "ClockRateAdjust",
	"CreatePrimary", "NV_GlobalWriteLock", "GetCommandAuditDigest", "NV_Increment",
	"NV_SetBits", "NV_Extend", "NV_Write", "NV_WriteLock", "DictionaryAttackLockReset",
	"DictionaryAttackParameters", "NV_ChangeAuth", "PCR_Event", "PCR_Reset",
	"SequenceComplete", "SetAlgorithmSet", "SetCommandCodeAuditStatus",
	"FieldUpgradeData", "IncrementalSelfTest", "SelfTest", "Startup", "Shutdown",
	"StirRandom", "ActivateCredential", "Certify", "PolicyNV", "CertifyCreation",
	"Duplicate", "GetTime", "GetSessionAuditDigest", "NV_Read", "NV_ReadLock",
	"ObjectChangeAuth", "PolicySecret", "Rewrap", "Create", "ECDH_ZGen", "HMAC",
	"Import", "Load", "Quote", "RSA_Decrypt", NULL, "HMAC_Start", "SequenceUpdate",
	"Sign", "Unseal", NULL, "PolicySigned", "ContextLoad", "ContextSave",
	"ECDH_KeyGen", "EncryptDecrypt", "FlushContext", NULL, "LoadExternal",
	"MakeCredential", "NV_ReadPublic", "PolicyAuthorize", "PolicyAuthValue",
	"PolicyCommandCode", "PolicyCounterTimer", "PolicyCpHash", "PolicyLocality",
	"PolicyNameHash", "PolicyOR", "PolicyTicket", "ReadPublic", "RSA_Encrypt", NULL,
	"StartAuthSession", "VerifySignature", "ECC_Parameters", "FirmwareRead",
	"GetCapability", "GetRandom", "GetTestResult", "Hash", "PCR_Read", "PolicyPCR",
	"PolicyRestart", "ReadClock", "PCR_Extend", "PCR_SetAuthValue", "NV_Certify",
	"EventSequenceComplete", "HashSequenceStart", "PolicyPhysicalPresence",
	"PolicyDuplicationSelect", "PolicyGetDigest", "TestParms", "Commit",
	"PolicyPassword", "ZGen_2Phase", "EC_Ephemeral", "PolicyNvWritten",
	"PolicyTemplate", "CreateLoaded", "PolicyAuthorizeNV", "EncryptDecrypt2",
	"AC_GetCapability", "AC_Send", "Policy_AC_SendSelect", "CertifyX509",
	"ACT_SetTimeout", "ECC_Encrypt", "ECC_Decrypt", "PolicyCapability",
	"PolicyParameters", "NV_DefineSpace2", "NV_ReadPublic2", "SetCapability",
};
#define CC_FIRST 0x11fu

const char *vtpm_cc_name(uint32_t cc)
{
	/* Built once: "TPM2_" and the name, for every code. */
	static char full[sizeof cc_names / sizeof cc_names[0]][40];
	if (cc == VTPM_CC_SET_LOCALITY)
		return "swtpm_SetLocality";
	if (cc < CC_FIRST || cc - CC_FIRST >= sizeof cc_names / sizeof cc_names[0])
		return NULL;
	size_t i = cc - CC_FIRST;
	if (!cc_names[i])
		return NULL;
	if (!full[i][0])
		snprintf(full[i], sizeof full[i], "TPM2_%s", cc_names[i]);
	return full[i];
}
