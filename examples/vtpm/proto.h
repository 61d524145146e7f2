/* proto.h - swtpm's socket protocol as blobstore-vtpm speaks it: framing
 * and validation of control-channel messages and of TPM commands on the
 * command channel.  No I/O and no libtpms here, so that a fuzz target
 * (fuzz/fuzz_vtpm_proto.c) can drive every parser with arbitrary octets.
 *
 * Control channel (swtpm's include/swtpm/tpm_ioctl.h, "non-CUSE" form): a
 * message is a 32-bit big-endian command code followed by the request part
 * of the command's structure, all big-endian; the answer is the response
 * part, starting with a 32-bit result.  The stream has no message framing:
 * a message is complete when its fixed request part (and, for HASH_DATA
 * and SET_STATEBLOB, the announced payload) has arrived.  Octets after a
 * fixed-size request in the same read are ignored (QEMU sends whole
 * structures, tpm2-tss only the request fields); a payload longer than
 * announced is refused. */
#ifndef VTPM_PROTO_H
#define VTPM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <blobstore/sys/util.h>

enum vtpm_cmd {
	VTPM_CMD_GET_CAPABILITY = 1,
	VTPM_CMD_INIT,
	VTPM_CMD_SHUTDOWN,
	VTPM_CMD_GET_TPMESTABLISHED,
	VTPM_CMD_SET_LOCALITY,
	VTPM_CMD_HASH_START,
	VTPM_CMD_HASH_DATA,
	VTPM_CMD_HASH_END,
	VTPM_CMD_CANCEL_TPM_CMD,
	VTPM_CMD_STORE_VOLATILE,
	VTPM_CMD_RESET_TPMESTABLISHED,
	VTPM_CMD_GET_STATEBLOB,
	VTPM_CMD_SET_STATEBLOB,
	VTPM_CMD_STOP,
	VTPM_CMD_GET_CONFIG,
	VTPM_CMD_SET_DATAFD,
	VTPM_CMD_SET_BUFFERSIZE,
	VTPM_CMD_GET_INFO,
	VTPM_CMD_LOCK_STORAGE, /* swtpm 0.8: take the storage lock (migration) */
};

/* PTM_CAP_* bits of GET_CAPABILITY for the commands above: bits 0 to 14
 * and PTM_CAP_LOCK_STORAGE (bit 16); bit 15, PTM_CAP_SEND_COMMAND_HEADER
 * (the TCG prefix before TPM commands), is not supported. */
#define VTPM_CAPS 0x17fffu

/* CMD_INIT flag: delete the volatile state after loading it. */
#define VTPM_INIT_DELETE_VOLATILE 1u
/* Blob types of GET_STATEBLOB / SET_STATEBLOB. */
#define VTPM_BLOB_PERMANENT 1u
#define VTPM_BLOB_VOLATILE 2u
#define VTPM_BLOB_SAVESTATE 3u
/* state_flags */
#define VTPM_STATE_DECRYPTED 1u
#define VTPM_STATE_ENCRYPTED 2u
/* GET_CONFIG flags */
#define VTPM_CONFIG_FILE_KEY 1u
#define VTPM_CONFIG_MIGRATION_KEY 2u
/* The most GET_INFO returns per message (swtpm's PTM_GETINFO_SIZE). */
#define VTPM_GETINFO_CHUNK 3072u

/* Limits of what a peer may announce. */
#define VTPM_MAX_STATE_BLOB (512u * 1024)  /* SET_STATEBLOB payload */
#define VTPM_MAX_HASH_DATA (64u * 1024)    /* HASH_DATA payload */
#define VTPM_CTRL_MAX_MSG (16u + VTPM_MAX_STATE_BLOB)
/* TPM commands: a 10-octet header (tag, size, code) and at most the
 * buffer size (4096 by default; CMD_SET_BUFFERSIZE). */
#define VTPM_TPM_HDR 10u
#define VTPM_DEFAULT_BUFFER 4096u
/* swtpm's vendor command that sets the locality in-band (--locality
 * allow-set-locality): the new locality is the octet after the header. */
#define VTPM_CC_SET_LOCALITY 0x20001000u

/* Parser results. */
#define VTPM_OK 0
#define VTPM_MORE 1     /* *NEED octets are needed at least */
#define VTPM_BAD (-1)   /* malformed: answer TPM_BAD_PARAMETER (control) or drop (command) */
#define VTPM_UNKNOWN (-2) /* unknown control command: answer TPM_BAD_ORDINAL */

/* A parsed control request; pointers borrow from the message. */
struct vtpm_ctrl_req {
	uint32_t cmd;
	uint32_t flags;      /* INIT init_flags; GET/SET_STATEBLOB state_flags */
	uint32_t type;       /* GET/SET_STATEBLOB blob type */
	uint32_t offset;     /* GET_STATEBLOB, GET_INFO */
	uint32_t buffersize; /* SET_BUFFERSIZE */
	uint32_t retries;    /* LOCK_STORAGE */
	uint64_t info_flags; /* GET_INFO */
	uint8_t locality;    /* SET_LOCALITY, RESET_TPMESTABLISHED */
	const uint8_t *data; /* HASH_DATA, SET_STATEBLOB payload */
	size_t data_len;
};

/* Parses the control message MSG/LEN.  VTPM_OK fills *REQ (and *NEED with
 * the octets the message used); VTPM_MORE sets *NEED to the length the
 * message must at least have (never above VTPM_CTRL_MAX_MSG); VTPM_BAD and
 * VTPM_UNKNOWN leave *REQ's cmd set when LEN >= 4. */
int vtpm_ctrl_parse(const uint8_t *msg, size_t len, struct vtpm_ctrl_req *req, size_t *need);

/* Frames a TPM command: VTPM_MORE with *NEED = 10 until the header is
 * there; then VTPM_BAD when its size field is below 10 or above MAX, else
 * *NEED = the command's size and VTPM_OK once LEN >= *NEED (VTPM_MORE
 * before). */
int vtpm_cmd_frame(const uint8_t *buf, size_t len, size_t max, size_t *need);

/* The TPM 2.0 command code of a complete command (0 when LEN < 10). */
uint32_t vtpm_cmd_code(const uint8_t *buf, size_t len);

/* A TPM 2.0 error response (tag TPM_ST_NO_SESSIONS, size 10, RC) into OUT. */
void vtpm_error_response(uint8_t out[10], uint32_t rc);

/* Names for logs: the control command ("CMD_INIT") and the TPM 2.0
 * command (every code of the TPM 2.0 library specification, "TPM2_PCR_Extend",
 * and swtpm's in-band locality command); NULL when unknown. */
const char *vtpm_ctrl_name(uint32_t cmd);
const char *vtpm_cc_name(uint32_t cc);

#endif
