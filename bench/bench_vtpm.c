/* bench_vtpm.c - TPM NV writes per second through a vTPM server: swtpm
 * (dir backend) against blobstore-vtpm with and without durability, driven
 * by the same tiny client in one run.
 *
 *   bench_vtpm PATH-OF-blobstore-vtpm
 *
 * The client speaks the swtpm socket protocol's command channel directly:
 * raw TPM2_NV_DefineSpace once, then TPM2_NV_Write of a 32-octet ordinary
 * index (owner password session) in a loop.  Every such write changes the
 * TPM's NV, so libtpms stores its whole permanent state ("permall", about
 * 1-2 KiB on a fresh TPM) before the response comes back: swtpm writes a
 * temp file and renames it, blobstore-vtpm writes one slot of the image
 * (and fdatasyncs it unless --no-sync).  The client costs one send and one
 * receive per write, so the servers' own costs dominate.
 *
 * All servers run at the same time on loopback TCP; each of ROUNDS rounds
 * drives every server with a batch of writes, in an order that changes from
 * round to round, and the table gives the median rate of each.
 * Environment: BENCH_DIR (state directories; on a real disk), BENCH_QUICK=1,
 * BENCH_CSV (append rows), SWTPM (default "swtpm"), BENCH_RBD_CONF (a Ceph
 * cluster's ceph.conf: blobstore-vtpm on an RBD image as well, beside the
 * local file). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bench_util.h"

#define NV_INDEX 0x01500020u
#define NV_SIZE 32u

struct server {
	const char *label;   /* table row */
	const char *metric;  /* CSV metric */
	bool available;
	char dir[512];
	pid_t pid;
	int port, ctrl;
	int fd;              /* command channel */
};

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "bench_vtpm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

/* A loopback port nobody listens on now (the kernel picks it). */
static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ||
	    getsockname(s, (struct sockaddr *)&a, &al))
		die("free port: %s", strerror(errno));
	close(s);
	return ntohs(a.sin_port);
}

static void start(struct server *sv, char *const argv[])
{
	char log[600];
	snprintf(log, sizeof log, "%s.log", sv->dir);
	sv->pid = fork();
	if (sv->pid < 0)
		die("fork: %s", strerror(errno));
	if (sv->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sv->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (int tries = 0; tries < 1000; tries++) {
		int st;
		if (waitpid(sv->pid, &st, WNOHANG) == sv->pid)
			die("%s exited at start; see its .log in BENCH_DIR", sv->label);
		sv->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (sv->fd >= 0 && connect(sv->fd, (struct sockaddr *)&a, sizeof a) == 0) {
			int one = 1;
			setsockopt(sv->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			return;
		}
		close(sv->fd);
		usleep(10000);
	}
	die("%s does not listen", sv->label);
}

static void stop(struct server *sv)
{
	if (sv->pid <= 0)
		return;
	close(sv->fd);
	kill(sv->pid, SIGTERM);
	/* a server that does not exit within 5 s is killed */
	for (int i = 0; i < 500 && waitpid(sv->pid, NULL, WNOHANG) == 0; i++)
		usleep(10000);
	if (waitpid(sv->pid, NULL, WNOHANG) == 0) {
		kill(sv->pid, SIGKILL);
		waitpid(sv->pid, NULL, 0);
	}
	sv->pid = 0;
}

static void put16(uint8_t **p, uint16_t v)
{
	(*p)[0] = (uint8_t)(v >> 8);
	(*p)[1] = (uint8_t)v;
	*p += 2;
}

static void put32(uint8_t **p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p, (uint16_t)v);
}

/* Header, handles and an empty password session for the owner; returns
 * where the parameters go. */
static uint8_t *begin(uint8_t *b, uint32_t cc, uint32_t handle2)
{
	uint8_t *p = b;
	put16(&p, 0x8002);        /* TPM_ST_SESSIONS */
	put32(&p, 0);             /* size, set by finish() */
	put32(&p, cc);
	put32(&p, 0x40000001);    /* TPM_RH_OWNER */
	if (handle2)
		put32(&p, handle2);
	put32(&p, 9);             /* authorization area: */
	put32(&p, 0x40000009);    /* TPM_RS_PW */
	put16(&p, 0);             /* nonce */
	*p++ = 0;                 /* session attributes */
	put16(&p, 0);             /* empty owner password */
	return p;
}

static size_t finish(uint8_t *b, uint8_t *end)
{
	uint8_t *p = b + 2;
	put32(&p, (uint32_t)(end - b));
	return (size_t)(end - b);
}

/* Sends a command and reads the whole response; returns its code. */
static uint32_t transact(struct server *sv, const uint8_t *cmd, size_t len)
{
	if (send(sv->fd, cmd, len, 0) != (ssize_t)len)
		die("%s: send failed", sv->label);
	uint8_t r[4096];
	size_t got = 0, want = 10;
	while (got < want) {
		ssize_t n = recv(sv->fd, r + got, want - got, 0);
		if (n <= 0)
			die("%s: connection lost", sv->label);
		got += (size_t)n;
		if (got >= 10 && want == 10) {
			want = (size_t)r[2] << 24 | (size_t)r[3] << 16 | (size_t)r[4] << 8 | r[5];
			if (want < 10 || want > sizeof r)
				die("%s: bad response size", sv->label);
		}
	}
	return (uint32_t)r[6] << 24 | (uint32_t)r[7] << 16 | (uint32_t)r[8] << 8 | r[9];
}

static void define_index(struct server *sv)
{
	uint8_t b[128], *p = begin(b, 0x0000012A, 0); /* TPM2_NV_DefineSpace */
	put16(&p, 0);             /* index auth */
	put16(&p, 14);            /* TPM2B_NV_PUBLIC */
	put32(&p, NV_INDEX);
	put16(&p, 0x000B);        /* TPM_ALG_SHA256 */
	put32(&p, 0x00060006);    /* OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD, ordinary */
	put16(&p, 0);             /* no policy */
	put16(&p, NV_SIZE);
	uint32_t rc = transact(sv, b, finish(b, p));
	if (rc) {
		char m[64];
		snprintf(m, sizeof m, "0x%x", rc);
		fprintf(stderr, "bench_vtpm: %s: ", sv->label);
		die("TPM2_NV_DefineSpace answered %s", m);
	}
}

static size_t nv_write_cmd(uint8_t *b, uint8_t fill)
{
	uint8_t *p = begin(b, 0x00000137, NV_INDEX); /* TPM2_NV_Write */
	put16(&p, NV_SIZE);
	memset(p, fill, NV_SIZE);
	p += NV_SIZE;
	put16(&p, 0);             /* offset */
	return finish(b, p);
}

/* BATCH NV writes; returns writes per second. */
static double drive(struct server *sv, int batch, unsigned *seq)
{
	uint8_t b[128];
	double t0 = now_us();
	for (int i = 0; i < batch; i++) {
		size_t len = nv_write_cmd(b, (uint8_t)(++*seq));
		uint32_t rc = transact(sv, b, len);
		if (rc) {
			char m[64];
			snprintf(m, sizeof m, "0x%x", rc);
			fprintf(stderr, "bench_vtpm: %s: ", sv->label);
			die("TPM2_NV_Write answered %s", m);
		}
	}
	return batch / ((now_us() - t0) / 1e6);
}

/* The device's limit for any durable server: BATCH overwrites of a
 * permall-sized buffer in place, each made durable by fdatasync, with no
 * TPM and no protocol.  Returns writes per second. */
#define FLUSH_LEN 4096u
static double flush_limit(int fd, int batch, unsigned *seq)
{
	uint8_t buf[FLUSH_LEN];
	double t0 = now_us();
	for (int i = 0; i < batch; i++) {
		memset(buf, (int)(++*seq & 0xff), sizeof buf);
		if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf || fdatasync(fd))
			die("flush limit: %s", strerror(errno));
	}
	return batch / ((now_us() - t0) / 1e6);
}

static bool executable(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: bench_vtpm PATH-OF-blobstore-vtpm\n");
		return 2;
	}
	const char *vtpm = argv[1];
	const char *swtpm = getenv("SWTPM") ? getenv("SWTPM") : "swtpm";
	const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "build/bench";
	bool quick = getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0");
	size_t rounds = quick ? 3 : 15;
	int batch = quick ? 20 : 200;
	signal(SIGPIPE, SIG_IGN);
	mkdir(dir, 0700);

	/* FLUSH is no server: the device's limit (flush_limit), in the same
	 * rounds so that it sees the same disk weather. */
	enum { SW, OURS, OURS_NOSYNC, FLUSH, OURS_RBD, NSV };
	struct server sv[NSV] = {
		{"swtpm 0.7.1 dir backend (its default, no option for fsync)", "swtpm_dir"},
		{"blobstore-vtpm (durable: fdatasync per write)", "blobstore_vtpm"},
		{"blobstore-vtpm --no-sync", "blobstore_vtpm_nosync"},
		{"limit: 4 KiB pwrite + fdatasync, no TPM (durable servers' ceiling)",
		 "flush_limit_4k"},
		{"blobstore-vtpm on an RBD image (durable: rbd_flush per write)",
		 "blobstore_vtpm_rbd"},
	};
	const char *rbd_conf = getenv("BENCH_RBD_CONF");
	sv[SW].available = executable(swtpm);
	sv[OURS].available = sv[OURS_NOSYNC].available = executable(vtpm);
	sv[FLUSH].available = true;
	sv[OURS_RBD].available = executable(vtpm) && rbd_conf && *rbd_conf;
	char version[128] = "swtpm not found";
	if (sv[SW].available) {
		char cmd[512];
		snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", swtpm);
		FILE *p = popen(cmd, "r");
		if (p && fgets(version, sizeof version, p))
			version[strcspn(version, "\n")] = 0;
		if (p)
			pclose(p);
	}
	char flush_path[1024];
	snprintf(flush_path, sizeof flush_path, "%s/vtpm-flush-limit", dir);
	int flush_fd = open(flush_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint8_t zero[FLUSH_LEN] = {0};
	if (flush_fd < 0 || pwrite(flush_fd, zero, sizeof zero, 0) != (ssize_t)sizeof zero ||
	    fsync(flush_fd))
		die("%s: cannot create", flush_path);
	for (int i = 0; i < NSV; i++) {
		if (!sv[i].available || i == FLUSH)
			continue;
		snprintf(sv[i].dir, sizeof sv[i].dir, "%s/vtpm-%s", dir, sv[i].metric);
		char rm[1200];
		snprintf(rm, sizeof rm, "rm -rf '%s' '%s.img'", sv[i].dir, sv[i].dir);
		if (system(rm) != 0)
			die("cannot clean %s", sv[i].dir);
		sv[i].port = free_port();
		do
			sv[i].ctrl = free_port();
		while (sv[i].ctrl == sv[i].port);
		char port[16], ctrl[16], state[sizeof sv[i].dir + 8], image[sizeof sv[i].dir + 8];
		snprintf(port, sizeof port, "%d", sv[i].port);
		snprintf(ctrl, sizeof ctrl, "%d", sv[i].ctrl);
		if (i == SW) {
			mkdir(sv[i].dir, 0700);
			char srv[64], ctl[64];
			snprintf(state, sizeof state, "dir=%.511s", sv[i].dir);
			snprintf(srv, sizeof srv, "type=tcp,port=%s", port);
			snprintf(ctl, sizeof ctl, "type=tcp,port=%s", ctrl);
			char *args[] = {(char *)swtpm, "socket", "--tpm2", "--tpmstate", state,
					"--server", srv, "--ctrl", ctl, "--flags",
					"not-need-init,startup-clear", NULL};
			start(&sv[i], args);
		} else {
			char rbd[1200];
			snprintf(image, sizeof image, "%s.img", sv[i].dir);
			snprintf(rbd, sizeof rbd, "rbd://rbd/bench-vtpm-%ld?conf=%s&size=1M",
				 (long)getpid(), rbd_conf ? rbd_conf : "");
			char *args[] = {(char *)vtpm, "--image", i == OURS_RBD ? rbd : image, "--create", "--port", port,
					"--ctrl-port", ctrl, "--flags", "not-need-init,startup-clear",
					i == OURS_NOSYNC ? "--no-sync" : NULL, NULL};
			start(&sv[i], args);
		}
		define_index(&sv[i]);
	}
	double *rate[NSV];
	unsigned seq = 0;
	for (int i = 0; i < NSV; i++) {
		if (!(rate[i] = calloc(rounds, sizeof **rate)))
			return 1;
		if (i == FLUSH)
			flush_limit(flush_fd, batch / 4 + 1, &seq); /* warm-up */
		else if (sv[i].available)
			drive(&sv[i], batch / 4 + 1, &seq);
	}
	for (size_t r = 0; r < rounds; r++) {
		size_t order[NSV];
		permute(r, NSV, order);
		for (int k = 0; k < NSV; k++) {
			size_t i = order[k];
			if (i == FLUSH)
				rate[i][r] = flush_limit(flush_fd, batch, &seq);
			else if (sv[i].available)
				rate[i][r] = drive(&sv[i], batch, &seq);
		}
	}
	for (int i = 0; i < NSV; i++)
		if (i != FLUSH)
			stop(&sv[i]);
	close(flush_fd);
	unlink(flush_path);

	printf("\n== TPM2_NV_Write of a 32-octet index through the server, one client on\n"
	       "   loopback TCP (raw commands); medians of %zu interleaved rounds of %d writes\n"
	       "   state in %s; %s\n", rounds, batch, dir, version);
	printf("%-68s | %9s | %s\n", "server", "writes/s", "vs swtpm");
	FILE *csv = NULL;
	const char *csvp = getenv("BENCH_CSV");
	if (csvp && !(csv = fopen(csvp, "a")))
		die("%s: cannot append", csvp);
	/* Ratios pair the rates of one round, before median() sorts them. */
	double r_sw = sv[OURS].available && sv[SW].available
			      ? median_ratio(rate[OURS], rate[SW], rounds) : 0;
	double r_flush = sv[OURS].available ? median_ratio(rate[OURS], rate[FLUSH], rounds) : 0;
	double r_rbd = sv[OURS_RBD].available && sv[OURS].available
			       ? median_ratio(rate[OURS_RBD], rate[OURS], rounds) : 0;
	double r_sw_flush = sv[SW].available ? median_ratio(rate[SW], rate[FLUSH], rounds) : 0;
	double m[NSV];
	for (int i = 0; i < NSV; i++) {
		m[i] = sv[i].available ? median(rate[i], rounds) : 0;
		if (!sv[i].available) {
			printf("%-68s | %9s |\n", sv[i].label, "not run");
			continue;
		}
		char vs[32] = "";
		if (sv[SW].available && m[SW] > 0)
			snprintf(vs, sizeof vs, "%.2f", m[i] / m[SW]);
		printf("%-68s | %9.0f | %s\n", sv[i].label, m[i], vs);
		if (csv) {
			fprintf(csv, "vtpm,nv_write 32 octets,%s,%.6g,writes/s\n", sv[i].metric, m[i]);
			if (*vs)
				fprintf(csv, "vtpm,nv_write 32 octets,ratio_%s_vs_swtpm_dir,%s,x\n",
					sv[i].metric, vs);
		}
		free(rate[i]);
	}
	if (!sv[SW].available)
		free(rate[SW]);
	if (!sv[OURS].available) {
		free(rate[OURS]);
		free(rate[OURS_NOSYNC]);
	}
	if (!sv[OURS_RBD].available)
		free(rate[OURS_RBD]);
	/* Per-round ratios (medians): the rows above are medians of rates. */
	if (sv[SW].available && sv[OURS].available) {
		printf("goal: durable blobstore-vtpm at least as fast as swtpm: %s (%.2f per round)\n",
		       r_sw >= 1 ? "met" : "NOT met", r_sw);
		if (csv)
			fprintf(csv, "vtpm,nv_write 32 octets,paired_ratio_blobstore_vtpm_vs_swtpm_dir,"
				     "%.3f,x\n", r_sw);
	}
	if (sv[OURS_RBD].available && sv[OURS].available) {
		printf("blobstore-vtpm on RBD / on a local file: %.2f per round\n", r_rbd);
		if (csv)
			fprintf(csv, "vtpm,nv_write 32 octets,paired_ratio_blobstore_vtpm_rbd_vs_file,"
				     "%.3f,x\n", r_rbd);
	}
	if (sv[OURS].available) {
		printf("durable blobstore-vtpm / flush limit: %.2f per round", r_flush);
		if (sv[SW].available)
			printf("; swtpm (never syncs) / flush limit: %.2f", r_sw_flush);
		printf("\n");
		if (csv)
			fprintf(csv, "vtpm,nv_write 32 octets,paired_ratio_blobstore_vtpm_vs_flush_limit,"
				     "%.3f,x\n", r_flush);
	}
	if (csv && sv[SW].available)
		fprintf(csv, "vtpm,nv_write 32 octets,paired_ratio_swtpm_dir_vs_flush_limit,%.3f,x\n",
			r_sw_flush);
	if (csv)
		fclose(csv);
	return 0;
}
