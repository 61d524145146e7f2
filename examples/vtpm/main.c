/* main.c - blobstore-vtpm: a TPM 2.0 server on libtpms whose state lives in
 * a blobstore image (include/blobstore/tpm.h), speaking swtpm's socket protocol: the
 * command channel (raw TPM commands over TCP or a UNIX socket, or over the
 * socket QEMU passes with CMD_SET_DATAFD) and the control channel (proto.h).
 *
 * One thread, one poll loop: libtpms is a process-wide singleton and
 * processes one command at a time anyway.  Lifecycle (docs/VTPM.md):
 *   - start at launch (--flags not-need-init): TPMLIB_MainInit(), which
 *     loads "permall" and, when present, "volatilestate": the server's
 *     restart is a resume, invisible to clients.  The volatile entry is
 *     then deleted, so a later crash restarts cold, never from stale state;
 *   - CMD_INIT (a VM's power-on or reset): the same, but a volatile state
 *     left by an earlier exit is discarded first (a cold boot resets the
 *     PCRs); only one set with CMD_SET_STATEBLOB (migration) is resumed;
 *   - every NV change: libtpms stores "permall" through the bridge, durable
 *     before the command's response is sent;
 *   - CMD_SHUTDOWN, SIGTERM, SIGINT: the volatile state is stored, libtpms
 *     terminated, the server exits;
 *   - CMD_STOP and CMD_INIT over a running TPM (a VM reset): TPM2_Shutdown
 *     unless the last command was one, then TPMLIB_Terminate(). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_tis.h>

#include <blobstore/blobstore.h>
#include <blobstore/crypt.h>
#include <blobstore/nbd.h>
#include <blobstore/rbd.h>
#include <blobstore/tpm.h>
#include "proto.h"

static const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

#define TPM2_CC_SHUTDOWN 0x145u
#define TPM2_RC_INITIALIZE 0x100u
#define TPM2_RC_FAILURE 0x101u
#define READ_DEADLINE_MS 5000 /* a peer that stalls mid-message is dropped */

static struct server {
	bs_image *img;
	FILE *log;
	bool running;        /* libtpms initialised */
	uint32_t last_cc;    /* last TPM command code processed */
	uint32_t bufsize;    /* largest TPM command accepted */
	int data_listen, ctrl_listen;
	int data_fd, ctrl_fd;
	bool data_passed;    /* data_fd came with CMD_SET_DATAFD */
	const char *data_path, *ctrl_path, *pid_path;
	unsigned char *rbuf; /* libtpms' response buffer, reused */
	uint32_t rbuf_size;
	uint8_t *cmd;        /* command buffer, bufsize octets */
	uint8_t *ctrl;       /* control message buffer, grows to VTPM_CTRL_MAX_MSG */
	size_t ctrl_cap;
	bool terminate;
	bool volatile_set;   /* SET_STATEBLOB brought a volatile state (migration) */
} srv = {
	.data_listen = -1, .ctrl_listen = -1, .data_fd = -1, .ctrl_fd = -1,
	.bufsize = VTPM_DEFAULT_BUFFER,
};

static int sigpipe_fds[2] = {-1, -1};
static volatile sig_atomic_t got_signal;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	if (!srv.log)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(srv.log, "%lld.%03ld blobstore-vtpm: ", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(srv.log, fmt, ap);
	va_end(ap);
	fputc('\n', srv.log);
	fflush(srv.log);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "blobstore-vtpm: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void trace_cb(void *ctx, const char *op, const char *name, size_t len, int rc)
{
	(void)ctx;
	if (rc && rc != BS_ENOENT) {
		const char *msg;
		bs_tpm_last_error(&msg);
		logmsg("state: %s %s failed: %s", op, name, msg);
	} else {
		logmsg("state: %s %s %zu octets: %s", op, name, len, rc ? "absent" : "ok");
	}
}

/* ---- I/O helpers ---------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until FD is readable before DEADLINE: 1 readable, 0 timed out, -1 error. */
static int wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -1 : n;
	}
}

/* Reads more octets into BUF[*LEN..CAP): >0 read, 0 end of file, -1 error or
 * timeout.  With FDS (the control socket), descriptors passed alongside
 * are stored there (-1 when none). */
static ssize_t read_some(int fd, uint8_t *buf, size_t cap, size_t *len, int64_t deadline,
			 int *passed_fd)
{
	if (*len >= cap)
		return -1;
	if (wait_readable(fd, deadline) != 1)
		return -1;
	struct iovec iov = {.iov_base = buf + *len, .iov_len = cap - *len};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (passed_fd) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof cm.buf;
	}
	ssize_t n;
	do
		n = passed_fd ? recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) : read(fd, iov.iov_base, iov.iov_len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ENOTSOCK && passed_fd)
		do
			n = read(fd, iov.iov_base, iov.iov_len);
		while (n < 0 && errno == EINTR);
	if (n > 0 && passed_fd && mh.msg_controllen) {
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int f;
				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
				if (*passed_fd < 0)
					*passed_fd = f;
				else
					close(f);
			}
		}
	}
	if (n > 0)
		*len += (size_t)n;
	return n;
}

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- the TPM ---------------------------------------------------------------- */

static uint32_t process(const uint8_t *cmd, size_t len, const uint8_t **resp, uint32_t *rlen)
{
	*rlen = 0;
	TPM_RESULT res = TPMLIB_Process(&srv.rbuf, rlen, &srv.rbuf_size, (unsigned char *)cmd,
					(uint32_t)len);
	*resp = srv.rbuf;
	if (!res)
		srv.last_cc = vtpm_cmd_code(cmd, len);
	return res;
}

/* Sends TPM2_Shutdown(STATE), falling back to CLEAR, unless the last
 * command already was a shutdown: what a VM reset would have done, so that
 * the next TPM2_Startup is an orderly one. */
static void send_shutdown(void)
{
	if (!srv.running || srv.last_cc == TPM2_CC_SHUTDOWN)
		return;
	static const uint8_t su[2][12] = {
		{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 1}, /* TPM_SU_STATE */
		{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 0}, /* TPM_SU_CLEAR */
	};
	for (int i = 0; i < 2; i++) {
		const uint8_t *r;
		uint32_t rl;
		if (process(su[i], sizeof su[i], &r, &rl) || rl < 10)
			continue;
		uint32_t rc = bs_get_be32(r + 6);
		logmsg("tpm: TPM2_Shutdown(%s) before stopping -> rc 0x%x", i ? "CLEAR" : "STATE",
		       rc);
		if (!rc || rc == TPM2_RC_INITIALIZE)
			break;
	}
}

static uint32_t tpm_start(uint32_t flags)
{
	void *v = NULL;
	size_t vlen = 0;
	bool resume = bs_tpm_load(srv.img, 0, BS_TPM_VOLATILE, &v, &vlen) == BS_OK;
	free(v);
	TPM_RESULT res = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
	if (!res)
		res = TPMLIB_MainInit();
	if (res) {
		const char *msg;
		int rc = bs_tpm_last_error(&msg);
		logmsg("tpm: TPMLIB_MainInit failed (0x%x)%s%s", (unsigned)res, rc ? ": " : "",
		       rc ? msg : "");
		if (rc)
			fprintf(stderr, "blobstore-vtpm: TPM not started: %s\n", msg);
		return res;
	}
	srv.running = true;
	srv.last_cc = 0;
	/* Consumed: a resume happens once; after a crash the TPM restarts cold
	 * (what CMD_INIT's DELETE_VOLATILE flag asks for, always). */
	if (resume) {
		int rc = bs_tpm_delete(srv.img, 0, BS_TPM_VOLATILE, 0);
		if (rc)
			logmsg("tpm: could not delete the volatile state: %s", last_error());
	}
	logmsg("tpm: started%s (init flags 0x%x)", resume ? ", resumed from the volatile state" : "",
	       flags);
	return TPM_SUCCESS;
}

static void tpm_stop(bool save_volatile)
{
	if (!srv.running)
		return;
	if (save_volatile) {
		int rc = bs_tpm_store_volatile();
		logmsg("tpm: volatile state %s", rc ? last_error() : "stored");
	} else {
		send_shutdown();
	}
	TPMLIB_Terminate();
	srv.running = false;
	logmsg("tpm: stopped");
}

static void startup_clear(void)
{
	static const uint8_t cmd[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
	const uint8_t *r;
	uint32_t rl;
	if (!process(cmd, sizeof cmd, &r, &rl) && rl >= 10)
		logmsg("tpm: TPM2_Startup(CLEAR) -> rc 0x%x", bs_get_be32(r + 6));
}

/* ---- command channel -------------------------------------------------------- */

static void close_data(void)
{
	if (srv.data_fd >= 0)
		close(srv.data_fd);
	srv.data_fd = -1;
	srv.data_passed = false;
}

/* Reads and answers one TPM command from the data connection. */
static void handle_data(void)
{
	size_t len = 0, need = VTPM_TPM_HDR;
	int64_t deadline = now_ms() + READ_DEADLINE_MS;
	int st;
	while ((st = vtpm_cmd_frame(srv.cmd, len, srv.bufsize, &need)) == VTPM_MORE) {
		/* Read exactly what is missing: a pipelining peer's next
		 * command stays in the socket. */
		ssize_t n = read_some(srv.data_fd, srv.cmd, need, &len, deadline, NULL);
		if (n <= 0) {
			if (n < 0 || len)
				logmsg("data: connection dropped mid-command (%zu octets read)", len);
			close_data();
			return;
		}
	}
	if (st != VTPM_OK) {
		logmsg("data: command size %u outside 10..%u; dropping the connection",
		       bs_get_be32(srv.cmd + 2), srv.bufsize);
		close_data();
		return;
	}
	uint32_t cc = vtpm_cmd_code(srv.cmd, len);
	const char *name = vtpm_cc_name(cc);
	uint8_t fail[10];
	const uint8_t *resp = fail;
	uint32_t rlen = sizeof fail;
	if (!srv.running) {
		vtpm_error_response(fail, TPM2_RC_FAILURE);
		logmsg("tpm: cc 0x%x %s while not running -> TPM_RC_FAILURE", cc, name ? name : "");
	} else {
		uint32_t res = process(srv.cmd, len, &resp, &rlen);
		if (res || rlen < VTPM_TPM_HDR) {
			vtpm_error_response(fail, TPM2_RC_FAILURE);
			resp = fail;
			rlen = sizeof fail;
		}
		logmsg("tpm: cc 0x%x %s locality %u, %zu octets -> rc 0x%x, %u octets", cc,
		       name ? name : "", bs_tpm_locality(), len, bs_get_be32(resp + 6), rlen);
	}
	if (write_all(srv.data_fd, resp, rlen)) {
		logmsg("data: could not send the response: %s", strerror(errno));
		close_data();
	}
}

/* ---- control channel ---------------------------------------------------------- */

static uint32_t blob_name(uint32_t type, const char **name)
{
	switch (type) {
	case VTPM_BLOB_PERMANENT: *name = BS_TPM_PERMALL; return 0;
	case VTPM_BLOB_VOLATILE: *name = BS_TPM_VOLATILE; return 0;
	case VTPM_BLOB_SAVESTATE: *name = BS_TPM_SAVESTATE; return 0;
	default: return TPM_BAD_PARAMETER;
	}
}

/* GET_STATEBLOB: header and blob in one answer (the totlength == length
 * form QEMU expects).  A missing blob is TPM_RETRY with no data, as swtpm
 * answers (QEMU accepts non-fatal results). */
static int answer_state(const struct vtpm_ctrl_req *rq)
{
	uint8_t hdr[16];
	void *blob = NULL;
	size_t len = 0;
	const char *name = NULL;
	uint32_t res = srv.running ? blob_name(rq->type, &name) : TPM_BAD_ORDINAL;
	if (!res && rq->type == VTPM_BLOB_VOLATILE) {
		unsigned char *b = NULL;
		uint32_t bl = 0;
		res = TPMLIB_VolatileAll_Store(&b, &bl);
		blob = b;
		len = bl;
	} else if (!res) {
		int rc = bs_tpm_load(srv.img, 0, name, &blob, &len);
		if (rc == BS_ENOENT)
			res = TPM_RETRY;
		else if (rc) {
			logmsg("ctrl: reading %s: %s", name, last_error());
			res = TPM_FAIL;
		}
	}
	size_t ret = res || rq->offset >= len ? 0 : len - rq->offset;
	bs_put_be32(hdr, res);
	bs_put_be32(hdr + 4, 0); /* never encrypted: the image encrypts */
	bs_put_be32(hdr + 8, (uint32_t)ret);
	bs_put_be32(hdr + 12, (uint32_t)ret);
	int w = write_all(srv.ctrl_fd, hdr, sizeof hdr);
	if (!w && ret)
		w = write_all(srv.ctrl_fd, (uint8_t *)blob + rq->offset, ret);
	logmsg("ctrl: CMD_GET_STATEBLOB type %u offset %u -> 0x%x, %zu octets", rq->type,
	       rq->offset, res, ret);
	free(blob);
	return w;
}

static uint32_t set_state(const struct vtpm_ctrl_req *rq)
{
	const char *name = NULL;
	if (srv.running)
		return TPM_BAD_ORDINAL;
	uint32_t res = blob_name(rq->type, &name);
	if (res)
		return res;
	if (rq->flags & VTPM_STATE_ENCRYPTED) {
		logmsg("ctrl: refusing a blob encrypted by swtpm (no migration key here)");
		return TPM_FAIL;
	}
	/* An empty blob means "none": the bridge never keeps empty entries. */
	int rc = rq->data_len ? bs_tpm_store(srv.img, 0, name, rq->data, rq->data_len)
			      : bs_tpm_delete(srv.img, 0, name, 0);
	if (rc) {
		logmsg("ctrl: storing %s: %s", name, last_error());
		return TPM_FAIL;
	}
	if (rq->type == VTPM_BLOB_VOLATILE)
		srv.volatile_set = rq->data_len != 0;
	return TPM_SUCCESS;
}

/* Handles one complete control message; returns -1 when the connection
 * must be closed. */
static int handle_ctrl_msg(const struct vtpm_ctrl_req *rq, int parse_rc, int *passed_fd)
{
	uint8_t out[4 + 12 + VTPM_GETINFO_CHUNK];
	size_t olen = 4;
	uint32_t res = TPM_SUCCESS;
	if (parse_rc == VTPM_UNKNOWN) {
		res = TPM_BAD_ORDINAL;
		goto send;
	}
	if (parse_rc != VTPM_OK) {
		res = TPM_BAD_PARAMETER;
		goto send;
	}
	switch (rq->cmd) {
	case VTPM_CMD_GET_CAPABILITY:
		bs_put_be32(out + 4, VTPM_CAPS);
		olen = 8;
		break;
	case VTPM_CMD_INIT:
		if (srv.running)
			tpm_stop(false);
		/* CMD_INIT is a power-on: a volatile state saved when the
		 * server last exited would resume the previous boot (PCRs
		 * and all; TPM2_Startup then fails with TPM_RC_INITIALIZE).
		 * Only one that came with SET_STATEBLOB (an incoming
		 * migration) is resumed. */
		if (!srv.volatile_set && bs_tpm_delete(srv.img, 0, BS_TPM_VOLATILE, 0)) {
			logmsg("ctrl: deleting the volatile state: %s", last_error());
			res = TPM_FAIL;
			break;
		}
		srv.volatile_set = false;
		res = tpm_start(rq->flags);
		break;
	case VTPM_CMD_STOP:
		tpm_stop(false);
		break;
	case VTPM_CMD_SHUTDOWN:
		tpm_stop(true);
		srv.terminate = true;
		break;
	case VTPM_CMD_GET_TPMESTABLISHED: {
		TPM_BOOL bit = 0;
		res = srv.running ? TPM_IO_TpmEstablished_Get(&bit) : TPM_BAD_ORDINAL;
		memset(out + 4, 0, 4);
		out[4] = bit ? 1 : 0;
		olen = res == TPM_BAD_ORDINAL ? 4 : 8;
		break;
	}
	case VTPM_CMD_RESET_TPMESTABLISHED:
		if (!srv.running) {
			res = TPM_BAD_ORDINAL;
		} else if (rq->locality > 4) {
			res = TPM_BAD_LOCALITY;
		} else {
			/* libtpms checks the locality through the callback. */
			unsigned old = bs_tpm_locality();
			bs_tpm_set_locality(rq->locality);
			res = TPM_IO_TpmEstablished_Reset();
			bs_tpm_set_locality(old);
		}
		break;
	case VTPM_CMD_SET_LOCALITY:
		if (rq->locality > 4)
			res = TPM_BAD_LOCALITY;
		else
			bs_tpm_set_locality(rq->locality);
		break;
	case VTPM_CMD_HASH_START:
		res = srv.running ? TPM_IO_Hash_Start() : TPM_BAD_ORDINAL;
		break;
	case VTPM_CMD_HASH_DATA:
		res = srv.running ? TPM_IO_Hash_Data(rq->data, (uint32_t)rq->data_len)
				  : TPM_BAD_ORDINAL;
		break;
	case VTPM_CMD_HASH_END:
		res = srv.running ? TPM_IO_Hash_End() : TPM_BAD_ORDINAL;
		break;
	case VTPM_CMD_CANCEL_TPM_CMD:
		/* Commands run to completion in this thread before the
		 * control channel is read again: nothing is ever in flight. */
		res = srv.running ? TPMLIB_CancelCommand() : TPM_BAD_ORDINAL;
		break;
	case VTPM_CMD_STORE_VOLATILE:
		if (!srv.running) {
			res = TPM_BAD_ORDINAL;
		} else if (bs_tpm_store_volatile()) {
			logmsg("ctrl: storing the volatile state: %s", last_error());
			res = TPM_FAIL;
		}
		break;
	case VTPM_CMD_GET_STATEBLOB:
		return answer_state(rq);
	case VTPM_CMD_SET_STATEBLOB:
		res = set_state(rq);
		break;
	case VTPM_CMD_GET_CONFIG:
		bs_put_be32(out + 4, bs_image_has_key(srv.img) ? VTPM_CONFIG_FILE_KEY : 0);
		olen = 8;
		break;
	case VTPM_CMD_SET_DATAFD:
		if (*passed_fd < 0) {
			res = TPM_BAD_PARAMETER;
		} else if (srv.data_fd >= 0) {
			res = TPM_IOERROR;
		} else {
			srv.data_fd = *passed_fd;
			srv.data_passed = true;
			*passed_fd = -1;
		}
		break;
	case VTPM_CMD_SET_BUFFERSIZE: {
		uint32_t min = 0, max = 0;
		if (rq->buffersize && srv.running) {
			res = TPM_BAD_ORDINAL;
			break;
		}
		uint32_t cur = TPMLIB_SetBufferSize(rq->buffersize, &min, &max);
		if (cur >= VTPM_TPM_HDR && cur != srv.bufsize) {
			uint8_t *nb = realloc(srv.cmd, cur);
			if (!nb) {
				res = TPM_SIZE;
				break;
			}
			srv.cmd = nb;
			srv.bufsize = cur;
		}
		bs_put_be32(out + 4, cur);
		bs_put_be32(out + 8, min);
		bs_put_be32(out + 12, max);
		olen = 16;
		break;
	}
	case VTPM_CMD_GET_INFO: {
		char *info = TPMLIB_GetInfo((enum TPMLIB_InfoFlags)rq->info_flags);
		if (!info) {
			res = TPM_SIZE;
			break;
		}
		size_t total = strlen(info) + 1;
		if (rq->offset >= total - 1) {
			free(info);
			res = TPM_BAD_PARAMETER;
			break;
		}
		size_t n = total - rq->offset;
		if (n > VTPM_GETINFO_CHUNK)
			n = VTPM_GETINFO_CHUNK;
		bs_put_be32(out + 4, (uint32_t)total);
		bs_put_be32(out + 8, (uint32_t)n);
		memcpy(out + 12, info + rq->offset, n);
		olen = 12 + n;
		free(info);
		break;
	}
	default:
		res = TPM_BAD_ORDINAL;
		break;
	}
send:
	bs_put_be32(out, res);
	if (res)
		olen = 4;
	{
		const char *name = vtpm_ctrl_name(rq->cmd);
		logmsg("ctrl: %s%s -> 0x%x", name ? name : "command ", name ? "" : "unknown", res);
	}
	return write_all(srv.ctrl_fd, out, olen);
}

static void close_ctrl(void)
{
	if (srv.ctrl_fd >= 0)
		close(srv.ctrl_fd);
	srv.ctrl_fd = -1;
}

static void handle_ctrl(void)
{
	size_t len = 0, need = 4;
	int passed_fd = -1;
	int64_t deadline = now_ms() + READ_DEADLINE_MS;
	struct vtpm_ctrl_req rq;
	int st;
	ssize_t n = 0;
	for (;;) {
		st = vtpm_ctrl_parse(srv.ctrl, len, &rq, &need);
		if (st != VTPM_MORE)
			break;
		if (need > srv.ctrl_cap) {
			uint8_t *nb = realloc(srv.ctrl, need);
			if (!nb) {
				st = VTPM_BAD;
				break;
			}
			srv.ctrl = nb;
			srv.ctrl_cap = need;
		}
		/* The first read takes whatever one message brought (swtpm's
		 * framing); later reads only what the message still lacks, so a
		 * next message stays in the socket. */
		size_t cap = len ? need : srv.ctrl_cap;
		n = read_some(srv.ctrl_fd, srv.ctrl, cap, &len, deadline, &passed_fd);
		if (n <= 0)
			break;
	}
	if (st == VTPM_MORE) {
		if (n < 0 || len)
			logmsg("ctrl: connection dropped mid-message (%zu octets read)", len);
		close_ctrl();
	} else if (handle_ctrl_msg(&rq, st, &passed_fd)) {
		close_ctrl();
	}
	if (passed_fd >= 0)
		close(passed_fd);
}

/* ---- sockets and the loop ----------------------------------------------------- */

static int listen_tcp(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8))
		die("127.0.0.1:%u: %s", port, strerror(errno));
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		die("%s: socket path too long", path);
	strcpy(a.sun_path, path);
	struct stat st;
	/* Only a stale socket is removed, never another kind of file. */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8))
		die("%s: %s", path, strerror(errno));
	return fd;
}

static void on_signal(int sig)
{
	got_signal = sig;
	int e = errno;
	if (write(sigpipe_fds[1], "", 1) < 0) {
		/* the loop also checks got_signal */
	}
	errno = e;
}

static void write_pid_file(const char *path)
{
	size_t n = strlen(path) + 8;
	char *tmp = malloc(n);
	if (!tmp)
		die("out of memory");
	snprintf(tmp, n, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) || rename(tmp, path))
		die("%s: %s", path, strerror(errno));
	free(tmp);
}

static void loop(void)
{
	while (!srv.terminate && !got_signal) {
		struct pollfd p[5] = {
			{.fd = sigpipe_fds[0], .events = POLLIN},
			{.fd = srv.data_fd, .events = POLLIN},
			{.fd = srv.ctrl_fd, .events = POLLIN},
			/* one client per channel at a time, as swtpm */
			{.fd = srv.data_fd < 0 ? srv.data_listen : -1, .events = POLLIN},
			{.fd = srv.ctrl_fd < 0 ? srv.ctrl_listen : -1, .events = POLLIN},
		};
		int n = poll(p, 5, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("poll: %s", strerror(errno));
		if (p[0].revents)
			break;
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			handle_ctrl();
		if (srv.terminate)
			break;
		/* The descriptor may have changed under a control command. */
		if (p[1].fd >= 0 && p[1].fd == srv.data_fd && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			handle_data();
		if (p[3].fd >= 0 && (p[3].revents & POLLIN) && srv.data_fd < 0)
			srv.data_fd = accept4(srv.data_listen, NULL, NULL, SOCK_CLOEXEC);
		if (p[4].fd >= 0 && (p[4].revents & POLLIN) && srv.ctrl_fd < 0)
			srv.ctrl_fd = accept4(srv.ctrl_listen, NULL, NULL, SOCK_CLOEXEC);
	}
	if (got_signal)
		logmsg("signal %d: stopping", (int)got_signal);
}

/* ---- options ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: blobstore-vtpm --image PATH [options]\n"
	      "A TPM 2.0 (libtpms) whose state lives in a blobstore image, speaking swtpm's\n"
	      "socket protocol (docs/VTPM.md).\n"
	      "  --image PATH            the image (created when missing)\n"
	      "  --key-file PATH         key of an encrypted image (32 octets or 64 hex digits)\n"
	      "  --passphrase-file PATH  passphrase of an encrypted image\n"
	      "  --passphrase-fd N       ... read from file descriptor N\n"
	      "  --port N                command channel on 127.0.0.1:N\n"
	      "  --ctrl-port N           control channel on 127.0.0.1:N (default: port + 1)\n"
	      "  --server-unix PATH      command channel on a UNIX socket\n"
	      "  --ctrl-unix PATH        control channel on a UNIX socket (QEMU's chardev)\n"
	      "  --flags LIST            not-need-init: start the TPM at launch, without CMD_INIT;\n"
	      "                          startup-clear: also send TPM2_Startup(SU_CLEAR)\n"
	      "  --pid-file PATH         write the process id once the sockets listen\n"
	      "  --log PATH              log commands and state writes ('-': stderr)\n"
	      "  --no-sync               do not fsync (fast, NOT durable: measurements only)\n"
	      "With a key for an image that has no encryption set up and no TPM state yet,\n"
	      "encryption is set up first.  SIGTERM, SIGINT and CMD_SHUTDOWN store the\n"
	      "volatile state and exit.\n",
	      f);
}

static unsigned parse_port(const char *s)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 65535)
		die("invalid port '%s'", s);
	return (unsigned)v;
}

static bool has_tpm_entries(bs_image *img)
{
	for (bs_entry *it_ = NULL; (it_ = bs_entry_next(img, it_, BS_ITER_LIBRARY));)
		if (!strcmp(bs_entry_type(it_), BS_TPM_TYPE))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	/* Images on NBD exports. */
	bs_nbd_register();
	bs_rbd_register(); /* and on Ceph RBD images */
	enum { O_IMAGE = 256, O_KEYFILE, O_PWFILE, O_PWFD, O_PORT, O_CTRLPORT, O_SUNIX,
	       O_CUNIX, O_FLAGS, O_PID, O_LOG, O_NOSYNC };
	static const struct option opts[] = {
		{"image", required_argument, NULL, O_IMAGE},
		{"key-file", required_argument, NULL, O_KEYFILE},
		{"passphrase-file", required_argument, NULL, O_PWFILE},
		{"passphrase-fd", required_argument, NULL, O_PWFD},
		{"port", required_argument, NULL, O_PORT},
		{"ctrl-port", required_argument, NULL, O_CTRLPORT},
		{"server-unix", required_argument, NULL, O_SUNIX},
		{"ctrl-unix", required_argument, NULL, O_CUNIX},
		{"flags", required_argument, NULL, O_FLAGS},
		{"pid-file", required_argument, NULL, O_PID},
		{"log", required_argument, NULL, O_LOG},
		{"no-sync", no_argument, NULL, O_NOSYNC},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *image = NULL, *keyfile = NULL, *pwfile = NULL, *logpath = NULL;
	int pwfd = -1;
	unsigned port = 0, ctrl_port = 0;
	bool not_need_init = false, want_startup = false, nosync = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_IMAGE: image = optarg; break;
		case O_KEYFILE: keyfile = optarg; break;
		case O_PWFILE: pwfile = optarg; break;
		case O_PWFD: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 65535)
				die("invalid file descriptor '%s'", optarg);
			pwfd = (int)v;
			break;
		}
		case O_PORT: port = parse_port(optarg); break;
		case O_CTRLPORT: ctrl_port = parse_port(optarg); break;
		case O_SUNIX: srv.data_path = optarg; break;
		case O_CUNIX: srv.ctrl_path = optarg; break;
		case O_FLAGS: {
			char *list = strdup(optarg), *save = NULL;
			if (!list)
				die("out of memory");
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (!strcmp(t, "not-need-init"))
					not_need_init = true;
				else if (!strcmp(t, "startup-clear"))
					want_startup = true;
				else
					die("unknown flag '%s' (not-need-init, startup-clear)", t);
			}
			free(list);
			break;
		}
		case O_PID: srv.pid_path = optarg; break;
		case O_LOG: logpath = optarg; break;
		case O_NOSYNC: nosync = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !image) {
		usage(stderr);
		return 2;
	}
	if ((keyfile != NULL) + (pwfile != NULL) + (pwfd >= 0) > 1)
		die("give at most one of --key-file, --passphrase-file, --passphrase-fd");
	if (port && srv.data_path)
		die("give --port or --server-unix, not both");
	if (ctrl_port && srv.ctrl_path)
		die("give --ctrl-port or --ctrl-unix, not both");
	if (port && !ctrl_port && !srv.ctrl_path) {
		if (port == 65535)
			die("--port 65535 leaves no room for the control port; give --ctrl-port");
		ctrl_port = port + 1; /* the swtpm TCTI's convention */
	}
	if (!port && !srv.data_path && !ctrl_port && !srv.ctrl_path)
		die("no socket: give --port, --server-unix or --ctrl-unix");
	if (want_startup)
		not_need_init = true;

	if (logpath)
		srv.log = strcmp(logpath, "-") ? fopen(logpath, "a") : stderr;
	if (logpath && !srv.log)
		die("%s: %s", logpath, strerror(errno));

	unsigned oflags = BS_OPEN_CREATE | (nosync ? BS_OPEN_NOSYNC : 0);
	if (bs_image_open(image, oflags, &srv.img))
		die("%s", last_error());
	bs_key *key = NULL;
	int rc = BS_OK;
	if (keyfile)
		rc = bs_key_from_file(keyfile, &key);
	else if (pwfile)
		rc = bs_key_from_passphrase_file(pwfile, &key);
	else if (pwfd >= 0)
		rc = bs_key_from_passphrase_fd(pwfd, &key);
	if (rc)
		die("%s", last_error());
	if (key) {
		if (bs_image_is_encrypted(srv.img))
			rc = bs_image_set_key(srv.img, key);
		else if (!has_tpm_entries(srv.img))
			rc = bs_image_init_encryption(srv.img, key, NULL);
		else
			die("%s: the image holds TPM state in the clear; not setting up encryption"
			    " under it", image);
		bs_key_free(key);
		if (rc)
			die("%s", last_error());
	} else if (bs_image_is_encrypted(srv.img)) {
		die("%s: the image is encrypted; give --key-file or --passphrase-file/-fd", image);
	}
	if (bs_tpm_register(srv.img))
		die("%s", last_error());
	bs_tpm_set_trace(trace_cb, NULL);
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS)
		die("libtpms has no TPM 2.0");
	srv.cmd = malloc(srv.bufsize);
	srv.ctrl_cap = 4096;
	srv.ctrl = malloc(srv.ctrl_cap);
	if (!srv.cmd || !srv.ctrl)
		die("out of memory");

	if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK))
		die("pipe: %s", strerror(errno));
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (not_need_init) {
		if (tpm_start(0))
			die("the TPM did not start; its state in %s is left as it is", image);
		if (want_startup)
			startup_clear();
	}
	if (port)
		srv.data_listen = listen_tcp(port);
	if (srv.data_path)
		srv.data_listen = listen_unix(srv.data_path);
	if (ctrl_port)
		srv.ctrl_listen = listen_tcp(ctrl_port);
	if (srv.ctrl_path)
		srv.ctrl_listen = listen_unix(srv.ctrl_path);
	{
		char dch[32], cch[32];
		snprintf(dch, sizeof dch, "127.0.0.1:%u", port);
		snprintf(cch, sizeof cch, "127.0.0.1:%u", ctrl_port);
		logmsg("listening: image %s%s; command channel %s; control channel %s", image,
		       nosync ? " (no sync)" : "",
		       port ? dch : srv.data_path ? srv.data_path : "none (CMD_SET_DATAFD)",
		       ctrl_port ? cch : srv.ctrl_path ? srv.ctrl_path : "none");
	}
	if (srv.pid_path)
		write_pid_file(srv.pid_path);

	loop();

	tpm_stop(true);
	bs_tpm_unregister();
	close_data();
	close_ctrl();
	if (srv.data_listen >= 0)
		close(srv.data_listen);
	if (srv.ctrl_listen >= 0)
		close(srv.ctrl_listen);
	if (srv.data_path)
		unlink(srv.data_path);
	if (srv.ctrl_path)
		unlink(srv.ctrl_path);
	if (srv.pid_path)
		unlink(srv.pid_path);
	bs_image_close(srv.img);
	free(srv.rbuf);
	free(srv.cmd);
	free(srv.ctrl);
	if (srv.log && srv.log != stderr)
		fclose(srv.log);
	return 0;
}
