/* main.c - blobstore-vtpm: a TPM 2.0 server on libtpms whose state lives in
 * a blobstore image (include/blobstore/tpm.h), speaking swtpm's socket protocol: the
 * command channel (raw TPM commands over TCP or a UNIX socket, or over the
 * socket QEMU passes with CMD_SET_DATAFD) and the control channel (proto.h).
 * Two command lines (cli.h): its own, and swtpm's `socket` one, so that
 * libvirt, swtpm_setup, Proxmox and tpm2-tools can launch it as `swtpm`.
 *
 * One thread, one poll loop: libtpms is a process-wide singleton and
 * processes one command at a time anyway.  Lifecycle (docs/VTPM.md):
 *   - the TPM starts with --flags not-need-init or CMD_INIT:
 *     TPMLIB_MainInit() loads "permall" and, when present, "volatilestate";
 *   - every NV change: libtpms stores "permall" through the bridge, durable
 *     before the command's response is sent;
 *   - blobs from CMD_SET_STATEBLOB are staged in memory (bs_tpm_stage_*)
 *     and written to the image only once libtpms started on them;
 *   - own command line: SIGTERM, SIGINT, CMD_SHUTDOWN store the volatile
 *     state, and a start consumes it (a resume once, then cold);
 *     swtpm's command line: as swtpm, the volatile state is kept only when
 *     CMD_STORE_VOLATILE stores it, and CMD_INIT resumes from it (deleting
 *     it with PTM_INIT_FLAG_DELETE_VOLATILE). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_tis.h>

#include <blobstore/blobstore.h>
#include <blobstore/crypt.h>
#include <blobstore/nbd.h>
#include <blobstore/rbd.h>
#include <blobstore/swtpm.h>
#include <blobstore/tpm.h>
#include "proto.h"
#include "vtpm.h"

static const char *last_error(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	return m;
}

#define TPM2_CC_SHUTDOWN 0x145u
#define TPM2_RC_INITIALIZE 0x100u
#define TPM2_RC_FAILURE 0x101u
#define TPM2_RC_LOCALITY 0x907u
#define READ_DEADLINE_MS 5000 /* a peer that stalls mid-message is dropped */
#define LOCK_RETRIES 300      /* x 10 ms: how long a TPM command waits for the lock */

/* Static: the configuration's strings point into buffers that live as long
 * as the process. */
static struct vtpm_config cfg;
static struct vtpm_state state;

static struct server {
	bs_image *img;
	bool img_rw;         /* opened read-write: the storage's lock is held */
	bool released;       /* lock released for an outgoing migration */
	FILE *log;
	bool running;        /* libtpms initialised */
	uint32_t last_cc;    /* last TPM command code processed */
	uint32_t bufsize;    /* largest TPM command accepted */
	int data_listen, ctrl_listen;
	int data_fd, ctrl_fd;
	bool data_passed;    /* data_fd came with CMD_SET_DATAFD */
	const char *data_path, *ctrl_path; /* UNIX sockets to remove at exit */
	bool pid_written;
	unsigned char *rbuf; /* libtpms' response buffer, reused */
	uint32_t rbuf_size;
	uint8_t *cmd;        /* command buffer, bufsize octets */
	uint8_t *ctrl;       /* control message buffer, grows to VTPM_CTRL_MAX_MSG */
	size_t ctrl_cap;
	bool terminate;
	int ready_fd;        /* -d: tells the waiting parent that the TPM is ready */
} srv = {
	.data_listen = -1, .ctrl_listen = -1, .data_fd = -1, .ctrl_fd = -1,
	.bufsize = VTPM_DEFAULT_BUFFER, .ready_fd = -1,
};

static int sigpipe_fds[2] = {-1, -1};
static volatile sig_atomic_t got_signal;

void vtpm_log(unsigned level, const char *fmt, ...)
{
	if (!srv.log || level > cfg.log_level)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(srv.log, "%lld.%03ld %s", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
		cfg.log_prefix ? cfg.log_prefix : "blobstore-vtpm: ");
	va_list ap;
	va_start(ap, fmt);
	vfprintf(srv.log, fmt, ap);
	va_end(ap);
	fputc('\n', srv.log);
	fflush(srv.log);
}

/* A start that fails leaves nothing behind: no pid file, no image it
 * created, no socket file. */
static void undo_start(void)
{
	if (srv.pid_written && cfg.pid_path)
		unlink(cfg.pid_path);
	srv.pid_written = false;
	if (srv.img) {
		bs_tpm_unregister();
		bs_image_close(srv.img);
		srv.img = NULL;
	}
	vtpm_state_discard(&state);
	if (srv.data_path)
		unlink(srv.data_path);
	if (srv.ctrl_path)
		unlink(srv.ctrl_path);
	srv.data_path = srv.ctrl_path = NULL;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "blobstore-vtpm: %s\n", msg);
	vtpm_log(VTPM_LOG_INFO, "error: %s", msg);
	undo_start();
	exit(1);
}

static void trace_cb(void *ctx, const char *op, const char *name, size_t len, int rc)
{
	(void)ctx;
	if (rc && rc != BS_ENOENT) {
		const char *msg;
		bs_tpm_last_error(&msg);
		vtpm_log(VTPM_LOG_INFO, "state: %s %s failed: %s", op, name, *msg ? msg : last_error());
	} else {
		vtpm_log(VTPM_LOG_CMD, "state: %s %s %zu octets: %s", op, name, len,
			 rc ? "absent" : "ok");
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
 * timeout.  With PASSED_FD (the control socket), a descriptor passed
 * alongside is stored there (-1 when none). */
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

/* ---- the state's storage ---------------------------------------------------- */

/* An entry of the TPM's state whose newest value is damaged reads its
 * previous value: for a TPM a rollback of counters and policies.  Says so
 * on standard error and in the log, once per start (the next store of the
 * entry replaces the damaged slot). */
static void warn_previous(void)
{
	static bool done;
	if (done || !srv.img)
		return;
	done = true;
	for (bs_entry *e = bs_entry_next(srv.img, NULL, BS_ITER_LIBRARY); e;
	     e = bs_entry_next(srv.img, e, BS_ITER_LIBRARY)) {
		int st;
		if (strcmp(bs_entry_type(e), BS_TPM_TYPE) || bs_entry_check(e, &st) ||
		    st != BS_STATE_PREVIOUS)
			continue;
		const char *nm = bs_entry_name(e);
		char msg[1024];
		snprintf(msg, sizeof msg,
			 "warning: %s: entry %s/%s at offset %llu reads its previous value: its "
			 "newest value is damaged, so the TPM starts from older state (counters and "
			 "policies roll back); 'blobstore check %s' tells more",
			 state.image, BS_TPM_TYPE, nm ? nm : "-",
			 (unsigned long long)bs_entry_offset(e), state.image);
		fprintf(stderr, "blobstore-vtpm: %s\n", msg);
		vtpm_log(VTPM_LOG_INFO, "%s", msg);
	}
}

/* Makes sure the image is open, read-write (the storage's lock held) unless
 * RDONLY_OK; waits up to RETRIES x 10 ms for a lock another process holds
 * (an outgoing migration's source releasing it).  Staged blobs are
 * committed as soon as the image is writable. */
static int ensure_state(bool rdonly_ok, unsigned retries)
{
	char err[1024];
	if (srv.img && (srv.img_rw || rdonly_ok))
		goto commit;
	if (srv.img) { /* read-only until now: reopen locked */
		bs_tpm_unregister();
		bs_image_close(srv.img);
		srv.img = NULL;
	}
	bool rdonly = rdonly_ok && cfg.mig_incoming;
	for (unsigned i = 0;; i++) {
		int rc = vtpm_state_open(&state, rdonly, &srv.img, err, sizeof err);
		if (!rc)
			break;
		if (rc != 2 || i >= retries) {
			fprintf(stderr, "blobstore-vtpm: %s\n", err);
			vtpm_log(VTPM_LOG_INFO, "error: %s", err);
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	srv.img_rw = !rdonly;
	if (bs_tpm_register(srv.img)) {
		vtpm_log(VTPM_LOG_INFO, "error: %s", last_error());
		return -1;
	}
	warn_previous();
	if (srv.released) {
		vtpm_log(VTPM_LOG_INFO, "migration: storage lock taken again");
		srv.released = false;
	} else if (rdonly) {
		vtpm_log(VTPM_LOG_INFO, "migration: incoming; %s opened without its lock until the "
					"TPM is used", state.image);
	}
commit:
	if (srv.img_rw && bs_tpm_staging() && srv.running) {
		if (bs_tpm_stage_commit(srv.img)) {
			vtpm_log(VTPM_LOG_INFO, "error: storing the TPM state: %s", last_error());
			return -1;
		}
		vtpm_log(VTPM_LOG_INFO, "state: the TPM state libtpms started on is stored in %s",
			 state.image);
	}
	return 0;
}

/* --migration release-lock-outgoing: the image is closed, its lock and
 * DIR's released, so that the destination on shared storage can take them;
 * taken again before the TPM is used (or by CMD_LOCK_STORAGE). */
static void release_state(void)
{
	if (!srv.img)
		return;
	bs_tpm_unregister();
	bs_image_close(srv.img);
	srv.img = NULL;
	srv.img_rw = false;
	vtpm_state_unlock(&state);
	srv.released = true;
	vtpm_log(VTPM_LOG_INFO, "migration: outgoing; storage lock released");
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
 * the next TPM2_Startup is an orderly one (swtpm 0.8's automatic shutdown;
 * --flags disable-auto-shutdown turns it off). */
static void send_shutdown(void)
{
	/* Not without the storage's lock: after an outgoing migration the
	 * state belongs to the destination. */
	if (!srv.running || srv.last_cc == TPM2_CC_SHUTDOWN || cfg.disable_auto_shutdown ||
	    !srv.img_rw)
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
		vtpm_log(VTPM_LOG_CMD, "tpm: TPM2_Shutdown(%s) before stopping -> rc 0x%x",
			 i ? "CLEAR" : "STATE", rc);
		if (!rc || rc == TPM2_RC_INITIALIZE)
			break;
	}
}

static void startup(enum vtpm_startup type)
{
	uint8_t cmd[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
	cmd[11] = type == VTPM_STARTUP_STATE ? 1 : 0;
	const uint8_t *r;
	uint32_t rl;
	if (!process(cmd, sizeof cmd, &r, &rl) && rl >= 10)
		vtpm_log(VTPM_LOG_INFO, "tpm: TPM2_Startup(%s) -> rc 0x%x",
			 type == VTPM_STARTUP_STATE ? "STATE" : "CLEAR", bs_get_be32(r + 6));
}

/* Starts libtpms over the image (and what is staged).  FLAGS: CMD_INIT's. */
static uint32_t tpm_start(uint32_t flags)
{
	if (ensure_state(true, LOCK_RETRIES))
		return TPM_FAIL;
	/* A destination that may not lock yet keeps what libtpms writes in
	 * memory until it may. */
	if (!srv.img_rw)
		bs_tpm_stage_begin();
	bool resume = false;
	if (!cfg.swtpm) {
		void *v = NULL;
		size_t vlen = 0;
		resume = bs_tpm_load(srv.img, 0, BS_TPM_VOLATILE, &v, &vlen) == BS_OK;
		free(v);
	}
	bool staged = bs_tpm_staging();
	TPM_RESULT res = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
	if (!res)
		res = TPMLIB_MainInit();
	if (res) {
		const char *msg;
		int rc = bs_tpm_last_error(&msg);
		char why[600];
		snprintf(why, sizeof why, "TPM not started: libtpms refused %s (0x%x)%s%s",
			 staged ? "the state set with CMD_SET_STATEBLOB" : "its state", (unsigned)res,
			 rc ? ": " : "", rc ? msg : "");
		vtpm_log(VTPM_LOG_INFO, "tpm: %s%s", why,
			 staged ? "; the stored state is unchanged" : "");
		fprintf(stderr, "blobstore-vtpm: %s\n", why);
		TPMLIB_Terminate();
		bs_tpm_stage_abort();
		return res;
	}
	srv.running = true;
	srv.last_cc = 0;
	/* swtpm: the volatile state stays unless CMD_INIT asks to delete it.
	 * Own command line: a resume happens once; after a crash the TPM
	 * restarts cold. */
	if (!cfg.swtpm || (flags & VTPM_INIT_DELETE_VOLATILE)) {
		int rc = bs_tpm_staging() ? bs_tpm_stage_put(BS_TPM_VOLATILE, NULL, 0)
					  : bs_tpm_delete(srv.img, 0, BS_TPM_VOLATILE, 0);
		if (rc)
			vtpm_log(VTPM_LOG_INFO, "tpm: could not delete the volatile state: %s",
				 last_error());
	}
	if (srv.img_rw && bs_tpm_staging() && ensure_state(false, 0)) {
		TPMLIB_Terminate();
		srv.running = false;
		bs_tpm_stage_abort();
		return TPM_FAIL;
	}
	vtpm_log(VTPM_LOG_INFO, "tpm: started%s%s (init flags 0x%x)",
		 resume ? ", resumed from the volatile state" : "",
		 staged ? " on the state set with CMD_SET_STATEBLOB" : "", flags);
	return TPM_SUCCESS;
}

static void tpm_stop(bool save_volatile)
{
	if (!srv.running)
		return;
	if (save_volatile) {
		int rc = ensure_state(false, LOCK_RETRIES) ? -1 : bs_tpm_store_volatile();
		vtpm_log(VTPM_LOG_INFO, "tpm: volatile state %s", rc ? last_error() : "stored");
	} else {
		send_shutdown();
	}
	TPMLIB_Terminate();
	srv.running = false;
	vtpm_log(VTPM_LOG_INFO, "tpm: stopped");
}

/* ---- command channel -------------------------------------------------------- */

static void close_data(void)
{
	if (srv.data_fd >= 0) {
		close(srv.data_fd);
		/* -t/--terminate: the end of the command connection ends the
		 * server (swtpm's meaning). */
		if (cfg.terminate) {
			vtpm_log(VTPM_LOG_INFO, "data: connection closed; terminating (--terminate)");
			srv.terminate = true;
		}
	}
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
				vtpm_log(VTPM_LOG_INFO, "data: connection dropped mid-command (%zu "
							"octets read)", len);
			close_data();
			return;
		}
	}
	if (st != VTPM_OK) {
		vtpm_log(VTPM_LOG_INFO, "data: command size %u outside 10..%u; dropping the "
					"connection", bs_get_be32(srv.cmd + 2), srv.bufsize);
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
		vtpm_log(VTPM_LOG_CMD, "tpm: cc 0x%x %s while not running -> TPM_RC_FAILURE", cc,
			 name ? name : "(unknown)");
	} else if (!srv.img_rw && ensure_state(false, LOCK_RETRIES)) {
		/* The storage's lock is held elsewhere (a migration that did not
		 * hand it over): nothing may be processed without it. */
		vtpm_error_response(fail, TPM2_RC_FAILURE);
		vtpm_log(VTPM_LOG_INFO, "tpm: cc 0x%x %s refused: the state's storage cannot be "
					"locked", cc, name ? name : "(unknown)");
	} else if (cc == VTPM_CC_SET_LOCALITY && cfg.allow_set_locality) {
		/* swtpm's in-band locality change (--locality allow-set-locality). */
		unsigned loc = len > VTPM_TPM_HDR ? srv.cmd[VTPM_TPM_HDR] : 255;
		bool ok = loc <= 4 && !(loc == 4 && cfg.reject_locality4);
		if (ok)
			bs_tpm_set_locality(loc);
		vtpm_error_response(fail, ok ? 0 : TPM2_RC_LOCALITY);
		vtpm_log(VTPM_LOG_CMD, "tpm: cc 0x%x %s locality %u -> rc 0x%x", cc, name, loc,
			 ok ? 0 : TPM2_RC_LOCALITY);
	} else {
		uint32_t res = process(srv.cmd, len, &resp, &rlen);
		if (res || rlen < VTPM_TPM_HDR) {
			vtpm_error_response(fail, TPM2_RC_FAILURE);
			resp = fail;
			rlen = sizeof fail;
		}
		vtpm_log(VTPM_LOG_CMD, "tpm: cc 0x%x %s locality %u, %zu octets -> rc 0x%x, %u octets",
			 cc, name ? name : "(unknown)", bs_tpm_locality(), len, bs_get_be32(resp + 6),
			 rlen);
	}
	if (write_all(srv.data_fd, resp, rlen)) {
		vtpm_log(VTPM_LOG_INFO, "data: could not send the response: %s", strerror(errno));
		close_data();
	} else if (cfg.server.disconnect) {
		close_data();
	}
}

/* ---- control channel ---------------------------------------------------------- */

static const char *blob_type_name(uint32_t type)
{
	switch (type) {
	case VTPM_BLOB_PERMANENT: return BS_TPM_PERMALL;
	case VTPM_BLOB_VOLATILE: return BS_TPM_VOLATILE;
	case VTPM_BLOB_SAVESTATE: return BS_TPM_SAVESTATE;
	default: return NULL;
	}
}

/* GET_STATEBLOB: swtpm's framing (encrypted with the migration key when
 * one is given), header and blob in one answer (the totlength == length
 * form QEMU expects).  A missing blob is TPM_RETRY with no data, as swtpm
 * answers (QEMU accepts non-fatal results). */
static int answer_state(const struct vtpm_ctrl_req *rq)
{
	uint8_t hdr[16];
	void *blob = NULL;
	size_t len = 0;
	uint8_t *wire = NULL;
	size_t wlen = 0;
	const char *name = blob_type_name(rq->type);
	uint32_t res = !srv.running ? TPM_BAD_ORDINAL : name ? TPM_SUCCESS : TPM_BAD_PARAMETER;
	if (!res && rq->type == VTPM_BLOB_SAVESTATE) {
		res = TPM_RETRY; /* TPM 2.0 has no save state */
	} else if (!res) {
		unsigned char *b = NULL;
		uint32_t bl = 0;
		res = rq->type == VTPM_BLOB_VOLATILE ? TPMLIB_VolatileAll_Store(&b, &bl)
						      : TPMLIB_GetState(TPMLIB_STATE_PERMANENT, &b, &bl);
		blob = b;
		len = bl;
		if (res)
			vtpm_log(VTPM_LOG_INFO, "ctrl: libtpms could not give its %s state (0x%x)", name,
				 (unsigned)res);
	}
	if (!res && bs_swtpm_wire_encode(blob, len, state.has_migkey ? &state.migkey : NULL, &wire,
					 &wlen)) {
		vtpm_log(VTPM_LOG_INFO, "ctrl: framing the %s blob: %s", name, last_error());
		res = TPM_FAIL;
	}
	size_t ret = res || rq->offset >= wlen ? 0 : wlen - rq->offset;
	bs_put_be32(hdr, res);
	bs_put_be32(hdr + 4, 0); /* decrypted: the image's encryption is not swtpm's */
	bs_put_be32(hdr + 8, (uint32_t)ret);
	bs_put_be32(hdr + 12, (uint32_t)ret);
	int w = write_all(srv.ctrl_fd, hdr, sizeof hdr);
	if (!w && ret)
		w = write_all(srv.ctrl_fd, wire + rq->offset, ret);
	vtpm_log(VTPM_LOG_CMD, "ctrl: CMD_GET_STATEBLOB %s offset %u -> 0x%x, %zu octets%s",
		 name ? name : "(unknown type)", rq->offset, res, ret,
		 ret && state.has_migkey ? " (encrypted with the migration key)" : "");
	if (blob)
		bs_swtpm_free(blob, len);
	if (wire)
		bs_swtpm_free(wire, wlen);
	/* The last blob QEMU fetches: the source lets go of the storage. */
	if (!w && rq->type == VTPM_BLOB_SAVESTATE && cfg.mig_release_lock)
		release_state();
	return w;
}

/* SET_STATEBLOB: decoded and staged; libtpms gets it at the next start, and
 * only then is it stored. */
static uint32_t set_state(const struct vtpm_ctrl_req *rq)
{
	const char *name = blob_type_name(rq->type);
	if (srv.running)
		return TPM_BAD_ORDINAL;
	if (!name)
		return TPM_BAD_PARAMETER;
	if (!cfg.mig_incoming && ensure_state(false, LOCK_RETRIES))
		return TPM_IOERROR;
	if (!rq->data_len) {
		/* swtpm: an empty blob clears what was set before. */
		bs_tpm_stage_forget(name);
		return TPM_SUCCESS;
	}
	const uint8_t *d = rq->data;
	size_t n = rq->data_len;
	/* What the header asks for, before decoding (swtpm's result codes). */
	if (n >= BS_SWTPM_HDR_LEN && d[0] == 2 && bs_get_be32(d + 6) == n) {
		uint16_t hf = bs_get_be16(d + 4);
		if (hf & BS_SWTPM_FLAG_MIGRATION_ENCRYPTED) {
			size_t want = hf & BS_SWTPM_FLAG_MIGRATION_256BIT_KEY ? 32 : 16;
			if (!state.has_migkey) {
				vtpm_log(VTPM_LOG_INFO, "ctrl: the %s blob is encrypted with a migration "
							"key, and none was given", name);
				return TPM_KEYNOTFOUND;
			}
			if (state.migkey.len != want) {
				vtpm_log(VTPM_LOG_INFO, "ctrl: the %s blob needs a %zu-bit migration key",
					 name, want * 8);
				return TPM_BAD_KEY_PROPERTY;
			}
		}
		if ((hf & BS_SWTPM_FLAG_ENCRYPTED || rq->flags & VTPM_STATE_ENCRYPTED) &&
		    !state.has_swtpm_key) {
			vtpm_log(VTPM_LOG_INFO, "ctrl: the %s blob is encrypted with swtpm's state key, "
						"and no --key was given", name);
			return TPM_KEYNOTFOUND;
		}
	}
	char label[64];
	snprintf(label, sizeof label, "CMD_SET_STATEBLOB %s", name);
	uint8_t *plain = NULL;
	size_t plen = 0;
	int kind = 0;
	int rc = bs_swtpm_wire_decode(d, n, state.has_migkey ? &state.migkey : NULL,
				      state.has_swtpm_key ? &state.swtpm_key : NULL, label, &plain,
				      &plen, &kind);
	if (rc) {
		vtpm_log(VTPM_LOG_INFO, "ctrl: refused: %s", last_error());
		return rc == BS_EKEY ? TPM_DECRYPT_ERROR : rc == BS_ECORRUPT ? TPM_BAD_PARAMETER
									 : TPM_FAIL;
	}
	static const char *const kinds[] = {"a bare libtpms blob", "swtpm's version-1 framing",
					    "swtpm's framing", "swtpm's framing, migration-key encrypted",
					    "a swtpm state file"};
	bs_tpm_stage_begin();
	rc = plen ? bs_tpm_stage_put(name, plain, plen) : bs_tpm_stage_forget(name);
	bs_swtpm_free(plain, plen);
	if (rc) {
		vtpm_log(VTPM_LOG_INFO, "ctrl: staging %s: %s", name, last_error());
		return TPM_FAIL;
	}
	vtpm_log(VTPM_LOG_INFO, "ctrl: CMD_SET_STATEBLOB %s: %zu octets (%s), held until libtpms "
				"starts on it", name, plen, kinds[kind < 5 && kind >= 0 ? kind : 0]);
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
		if (srv.running) {
			if (cfg.swtpm)
				send_shutdown();
			tpm_stop(false);
		}
		/* Own command line: CMD_INIT is a power-on, and a volatile state
		 * saved when the server last exited would resume the previous
		 * boot; only one staged by SET_STATEBLOB is resumed.  swtpm's:
		 * libtpms resumes from a stored volatile state. */
		if (!cfg.swtpm && !bs_tpm_staging()) {
			if (ensure_state(false, LOCK_RETRIES) ||
			    bs_tpm_delete(srv.img, 0, BS_TPM_VOLATILE, 0)) {
				vtpm_log(VTPM_LOG_INFO, "ctrl: deleting the volatile state: %s",
					 last_error());
				res = TPM_FAIL;
				break;
			}
		}
		res = tpm_start(rq->flags);
		break;
	case VTPM_CMD_STOP:
		tpm_stop(false);
		break;
	case VTPM_CMD_SHUTDOWN:
		tpm_stop(!cfg.swtpm);
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
		if (rq->locality > 4 || (rq->locality == 4 && cfg.reject_locality4))
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
		} else if (ensure_state(false, LOCK_RETRIES) || bs_tpm_store_volatile()) {
			vtpm_log(VTPM_LOG_INFO, "ctrl: storing the volatile state: %s", last_error());
			res = TPM_FAIL;
		}
		break;
	case VTPM_CMD_GET_STATEBLOB:
		return answer_state(rq);
	case VTPM_CMD_SET_STATEBLOB:
		res = set_state(rq);
		break;
	case VTPM_CMD_GET_CONFIG:
		bs_put_be32(out + 4, (state.key ? VTPM_CONFIG_FILE_KEY : 0) |
					     (state.has_migkey ? VTPM_CONFIG_MIGRATION_KEY : 0));
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
	case VTPM_CMD_LOCK_STORAGE:
		/* swtpm 0.8: QEMU takes the lock back when a migration fails. */
		res = ensure_state(false, rq->retries) ? TPM_FAIL : TPM_SUCCESS;
		break;
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
		if (name)
			vtpm_log(VTPM_LOG_CMD, "ctrl: %s -> 0x%x", name, res);
		else
			vtpm_log(VTPM_LOG_CMD, "ctrl: unknown command 0x%x -> 0x%x", rq->cmd, res);
	}
	return write_all(srv.ctrl_fd, out, olen);
}

static void close_ctrl(void)
{
	if (srv.ctrl_fd >= 0) {
		close(srv.ctrl_fd);
		if (cfg.ctrl.terminate) {
			vtpm_log(VTPM_LOG_INFO, "ctrl: connection closed; terminating (--ctrl "
						"...,terminate)");
			srv.terminate = true;
		}
	}
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
			vtpm_log(VTPM_LOG_INFO, "ctrl: connection dropped mid-message (%zu octets read)",
				 len);
		close_ctrl();
	} else if (handle_ctrl_msg(&rq, st, &passed_fd)) {
		close_ctrl();
	}
	if (passed_fd >= 0)
		close(passed_fd);
}

/* ---- sockets ------------------------------------------------------------------ */

static int listen_tcp(const struct vtpm_chan *ch, const char *what)
{
	const char *addr = ch->bindaddr ? ch->bindaddr : "127.0.0.1";
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	char port[16];
	snprintf(port, sizeof port, "%u", ch->port);
	int gai = getaddrinfo(addr, port, &hints, &ai);
	if (gai)
		die("%s: bind address '%s': %s", what, addr, gai_strerror(gai));
	if (ai->ai_family == AF_INET6 && ch->ifname) {
		unsigned idx = if_nametoindex(ch->ifname);
		if (!idx) {
			freeaddrinfo(ai);
			die("%s: interface '%s': %s", what, ch->ifname, strerror(errno));
		}
		((struct sockaddr_in6 *)ai->ai_addr)->sin6_scope_id = idx;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		die("socket: %s", strerror(errno));
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 8)) {
		int e = errno;
		freeaddrinfo(ai);
		close(fd);
		die("%s: %s port %u: %s", what, addr, ch->port, strerror(e));
	}
	freeaddrinfo(ai);
	return fd;
}

static int listen_unix(const struct vtpm_chan *ch, const char *what)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(ch->path) >= sizeof a.sun_path)
		die("%s: %s: socket path too long", what, ch->path);
	strcpy(a.sun_path, ch->path);
	struct stat st;
	/* Only a stale socket is removed, never another kind of file. */
	if (!lstat(ch->path, &st) && S_ISSOCK(st.st_mode))
		unlink(ch->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8)) {
		int e = errno;
		close(fd);
		die("%s: %s: %s", what, ch->path, strerror(e));
	}
	if (chmod(ch->path, ch->mode) ||
	    ((ch->has_uid || ch->has_gid) &&
	     chown(ch->path, ch->has_uid ? ch->uid : (uid_t)-1, ch->has_gid ? ch->gid : (gid_t)-1))) {
		int e = errno;
		close(fd);
		unlink(ch->path);
		die("%s: %s: %s", what, ch->path, strerror(e));
	}
	return fd;
}

/* Opens one channel: *LISTEN or *CONN gets the descriptor. */
static void open_chan(const struct vtpm_chan *ch, const char *what, int *listen_fd, int *conn,
		      const char **path)
{
	struct stat st;
	switch (ch->kind) {
	case VTPM_CHAN_NONE:
		break;
	case VTPM_CHAN_TCP:
		*listen_fd = listen_tcp(ch, what);
		break;
	case VTPM_CHAN_UNIX:
		*listen_fd = listen_unix(ch, what);
		*path = ch->path;
		break;
	case VTPM_CHAN_FD_LISTEN:
	case VTPM_CHAN_FD_CONN:
		if (fstat(ch->fd, &st) || !S_ISSOCK(st.st_mode))
			die("%s: file descriptor %d is not a socket", what, ch->fd);
		fcntl(ch->fd, F_SETFD, FD_CLOEXEC);
		*(ch->kind == VTPM_CHAN_FD_LISTEN ? listen_fd : conn) = ch->fd;
		break;
	}
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

/* The pid file: swtpm's (the bare number, mode 0644, not through a
 * symbolic link), or, on the own command line, written atomically. */
static void write_pid_file(void)
{
	char num[32];
	int n = snprintf(num, sizeof num, cfg.pid_atomic ? "%ld\n" : "%ld", (long)getpid());
	if (cfg.pid_fd >= 0) {
		struct stat st;
		if (fstat(cfg.pid_fd, &st) || !S_ISREG(st.st_mode))
			die("--pid fd=%d: not a regular file", cfg.pid_fd);
		if (write(cfg.pid_fd, num, (size_t)n) != n)
			die("--pid fd=%d: %s", cfg.pid_fd, strerror(errno));
		close(cfg.pid_fd);
		return;
	}
	if (!cfg.pid_path)
		return;
	if (cfg.pid_atomic) {
		size_t len = strlen(cfg.pid_path) + 8;
		char *tmp = malloc(len);
		if (!tmp)
			die("out of memory");
		snprintf(tmp, len, "%s.tmp", cfg.pid_path);
		FILE *f = fopen(tmp, "w");
		if (!f || fputs(num, f) < 0 || fclose(f) || rename(tmp, cfg.pid_path)) {
			int e = errno;
			unlink(tmp);
			free(tmp);
			die("%s: %s", cfg.pid_path, strerror(e));
		}
		free(tmp);
	} else {
		int fd = open(cfg.pid_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			die("could not open pidfile %s: %s", cfg.pid_path, strerror(errno));
		if (write(fd, num, (size_t)n) != n || close(fd)) {
			int e = errno;
			unlink(cfg.pid_path);
			die("could not write pidfile %s: %s", cfg.pid_path, strerror(e));
		}
	}
	srv.pid_written = true;
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
		vtpm_log(VTPM_LOG_INFO, "signal %d: stopping", (int)got_signal);
}

/* ---- the swtpm-only outputs ----------------------------------------------------- */

static void print_version(void)
{
	printf("blobstore-vtpm %d.%d.0: a TPM 2.0 emulator (libtpms) with swtpm's command line "
	       "and protocol, its state in a blobstore image\n", BS_VERSION_MAJOR, BS_VERSION_MINOR);
}

/* swtpm's --print-capabilities: what works here, nothing more. */
static void print_capabilities(void)
{
	static const char *const features[] = {
		"tpm-2.0", "flags-opt-startup", "flags-opt-disable-auto-shutdown",
		"ctrl-opt-terminate", "cmdarg-key-fd", "cmdarg-pwd-fd", "cmdarg-print-states",
		"cmdarg-migration", "nvram-backend-dir", "nvram-backend-file",
	};
	printf("{ \"type\": \"swtpm\", \"features\": [ ");
	for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
		printf("%s\"%s\"", i ? ", " : "", features[i]);
	if (cfg.tpm2 && TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) == TPM_SUCCESS) {
		/* The RSA key sizes libtpms offers: "RSAKeySizes":[1024,2048,3072] */
		char *info = TPMLIB_GetInfo(TPMLIB_INFO_TPMFEATURES);
		const char *p = info ? strstr(info, "\"RSAKeySizes\"") : NULL;
		if (p && (p = strchr(p, '['))) {
			for (p++; *p && *p != ']';) {
				char *end;
				unsigned long v = strtoul(p, &end, 10);
				if (end == p)
					break;
				printf(", \"rsa-keysize-%lu\"", v);
				p = end;
				while (*p == ',' || *p == ' ')
					p++;
			}
		}
		free(info);
	}
	printf(" ], \"version\": \"%d.%d.0\" }\n", BS_VERSION_MAJOR, BS_VERSION_MINOR);
}

/* -r/--runas: before anything is opened, as swtpm. */
static void run_as(const char *who)
{
	struct passwd *pw = getpwnam(who);
	char *end;
	unsigned long n = strtoul(who, &end, 10);
	uid_t uid;
	gid_t gid;
	if (pw) {
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	} else if (*who && !*end) {
		uid = (uid_t)n;
		gid = (gid_t)n; /* swtpm: a number is the user and the group */
	} else {
		fprintf(stderr, "blobstore-vtpm: Error: User '%s' does not exist.\n", who);
		exit(1);
	}
	if ((pw && initgroups(pw->pw_name, gid)) || (!pw && setgroups(0, NULL)) || setgid(gid) ||
	    setuid(uid)) {
		fprintf(stderr, "blobstore-vtpm: Error: could not become '%s': %s\n", who,
			strerror(errno));
		exit(1);
	}
}

static void open_log(void)
{
	if (cfg.log_fd == 2) {
		srv.log = stderr;
	} else if (cfg.log_fd >= 0) {
		srv.log = fdopen(cfg.log_fd, "a");
		if (!srv.log)
			die("--log fd=%d: %s", cfg.log_fd, strerror(errno));
	} else if (cfg.log_path && cfg.swtpm) {
		int fd = open(cfg.log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC |
						    (cfg.log_truncate ? O_TRUNC : 0), 0600);
		if (fd < 0 || !(srv.log = fdopen(fd, "a")))
			die("could not open logfile %s: %s", cfg.log_path, strerror(errno));
	} else if (cfg.log_path) {
		srv.log = fopen(cfg.log_path, "a");
		if (!srv.log)
			die("%s: %s", cfg.log_path, strerror(errno));
	}
	if (srv.log && cfg.log_level >= 5) {
		/* swtpm: level 5 and up also turns on libtpms' own debugging. */
		TPMLIB_SetDebugFD(fileno(srv.log));
		TPMLIB_SetDebugLevel(cfg.log_level - 4);
		if (cfg.log_prefix)
			TPMLIB_SetDebugPrefix(cfg.log_prefix);
	}
}

/* -d/--daemon: the parent waits until the TPM is ready and exits 0, or
 * with the child's status when the start fails. */
static void daemonize(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		char c;
		ssize_t n;
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		int status = 0;
		waitpid(pid, &status, 0);
		_exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
	}
	close(p[0]);
	setsid();
	srv.ready_fd = p[1];
}

static void signal_ready(void)
{
	if (srv.ready_fd < 0)
		return;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (srv.log != stderr)
			dup2(null, 2);
		close(null);
	}
	if (write(srv.ready_fd, "R", 1) != 1) {
		/* the parent is gone: nothing to tell */
	}
	close(srv.ready_fd);
	srv.ready_fd = -1;
}

int main(int argc, char **argv)
{
	/* Images on NBD exports. */
	bs_nbd_register();
	bs_rbd_register(); /* and on Ceph RBD images */
	char err[1024];
	if (argc >= 2 && (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--version"))) {
		print_version();
		return 0;
	}
	if (argc >= 2 && (!strcmp(argv[1], "chardev") || !strcmp(argv[1], "cuse"))) {
		fprintf(stderr, "Unsupported TPM interface type '%s'.\n", argv[1]);
		return 1;
	}
	bool swtpm = argc >= 2 && !strcmp(argv[1], "socket");
	if (swtpm ? vtpm_parse_swtpm(argc - 1, argv + 1, &cfg, err, sizeof err)
		  : vtpm_parse_own(argc, argv, &cfg, err, sizeof err)) {
		fprintf(stderr, "blobstore-vtpm: %s\n", err);
		if (!swtpm)
			fprintf(stderr, "Try 'blobstore-vtpm --help'.\n");
		return swtpm ? 1 : 2;
	}
	if (cfg.help) {
		if (swtpm)
			vtpm_usage_swtpm(stdout, "blobstore-vtpm");
		else
			vtpm_usage_own(stdout);
		return 0;
	}
	if (cfg.version) {
		print_version();
		return 0;
	}
	if (cfg.print_caps) {
		print_capabilities();
		return 0;
	}
	if (cfg.runas)
		run_as(cfg.runas);
	open_log();
	if (vtpm_state_prepare(&state, &cfg, err, sizeof err))
		die("%s", err);
	if (cfg.print_states) {
		int rc = vtpm_print_states(&state);
		vtpm_state_free(&state);
		return rc;
	}
	if (!cfg.tpm2)
		die("TPM 1.2 is not supported: give --tpm2");
	if (cfg.server.kind == VTPM_CHAN_NONE && cfg.ctrl.kind == VTPM_CHAN_NONE)
		die("no channel: give --server and/or --ctrl");
	if (!state.image)
		die("no TPM state given (--tpmstate, or TPM_PATH in the environment)");
	if (cfg.daemon)
		daemonize();

	/* The sockets first: a port in use fails before anything is created. */
	if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK))
		die("pipe: %s", strerror(errno));
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	open_chan(&cfg.ctrl, "control channel", &srv.ctrl_listen, &srv.ctrl_fd, &srv.ctrl_path);
	open_chan(&cfg.server, "command channel", &srv.data_listen, &srv.data_fd, &srv.data_path);

	bs_tpm_set_trace(trace_cb, NULL);
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS)
		die("libtpms has no TPM 2.0");
	srv.cmd = malloc(srv.bufsize);
	srv.ctrl_cap = 4096;
	srv.ctrl = malloc(srv.ctrl_cap);
	if (!srv.cmd || !srv.ctrl)
		die("out of memory");
	/* swtpm writes its pid file once the sockets listen, before the TPM
	 * starts; the own command line once the TPM is ready. */
	if (cfg.swtpm)
		write_pid_file();
	/* The own command line checks its image at once (a typo is an error,
	 * not a new TPM); swtpm's opens its state when the TPM starts. */
	if (!cfg.swtpm && ensure_state(false, 0))
		die("the TPM's state is not usable; nothing was changed");
	if (cfg.not_need_init && !cfg.mig_incoming) {
		if (tpm_start(0))
			die("the TPM did not start; its state in %s is left as it is", state.image);
		if (cfg.startup != VTPM_STARTUP_NONE)
			startup(cfg.startup);
	}
	if (!cfg.swtpm)
		write_pid_file();
	vtpm_log(VTPM_LOG_INFO, "listening: state %s%s; command channel %s; control channel %s",
		 state.image, cfg.nosync ? " (no sync)" : "",
		 srv.data_listen >= 0 || srv.data_fd >= 0 ? "open" : "none (CMD_SET_DATAFD)",
		 srv.ctrl_listen >= 0 || srv.ctrl_fd >= 0 ? "open" : "none");
	state.created = false; /* started: from now on the image is the TPM's */
	signal_ready();

	loop();

	tpm_stop(!cfg.swtpm);
	bs_tpm_stage_abort();
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
	if (srv.pid_written)
		unlink(cfg.pid_path);
	bs_image_close(srv.img);
	vtpm_state_free(&state);
	free(srv.rbuf);
	free(srv.cmd);
	free(srv.ctrl);
	if (srv.log && srv.log != stderr)
		fclose(srv.log);
	return 0;
}
