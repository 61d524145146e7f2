/* bench_backends.c - the cost of each operation on each storage backend,
 * side by side in one run: a regular file, a fixed-size file through the
 * block backend (or a loop device when root can attach one), and NBD
 * exports of nbdkit (memory and file plugins on UNIX sockets, started and
 * stopped here), and an RBD image when BENCH_RBD_CONF names a Ceph cluster's
 * ceph.conf.  Every change is durable (fdatasync / NBD flush or FUA /
 * rbd_flush).
 *
 *   create   a new 1.2 KiB slotted entry (append: 2 writes, 2 syncs)
 *   replace  its data, 1.2 KiB (one slot write, one sync)
 *   read     its data
 *   open     open and close an image of 200 entries, read-write
 * (N operations of each and N entries: 200, or argv[1], or 20 with
 * BENCH_QUICK=1).
 *
 * Environment: BENCH_DIR (default build/bench) holds the files; it should
 * be on a real disk for the sync costs to mean anything.  Prints the median
 * of each operation in microseconds and its ratio to the file backend. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <blobstore/blobstore.h>
#include <blobstore/backend.h>
#include <blobstore/nbd.h>
#include <blobstore/rbd.h>

#include "bench_util.h"
#include "storage/storage.h" /* the backend table, to blank storage */

#define OPS 4
static const char *const op_names[OPS] = {"create", "replace", "read", "open"};

struct target {
	const char *name;
	char uri[640];
	char file[512];
	char sock[512];
	pid_t nbdkit;
	char loopdev[64];
	double med[OPS]; /* microseconds; < 0: not measured */
};

static void die(const char *what)
{
	fprintf(stderr, "bench_backends: %s: %s\n", what, last_error());
	exit(1);
}

static int start_nbdkit(struct target *t, const char *const *args)
{
	unlink(t->sock);
	const char *argv[16] = {"nbdkit", "--unix", t->sock, "--foreground", "--exit-with-parent"};
	size_t n = 5;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp("nbdkit", (char *const *)argv);
		_exit(127);
	}
	t->nbdkit = pid;
	for (int i = 0; i < 500; i++) {
		struct stat st;
		if (stat(t->sock, &st) == 0)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			t->nbdkit = 0;
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Zeroes the first block so that the next CREATE formats. */
static void blank(const char *uri)
{
	static const uint8_t zeros[4096];
	struct bs_backend *be;
	if (bs_backend_open(uri, BS_OPEN_CREATE, &be))
		die(uri);
	if (be->ops->write_at(be->ctx, zeros, sizeof zeros, 0) || be->ops->sync(be->ctx))
		die(uri);
	bs_backend_free(be);
}

static void measure(struct target *t, size_t n)
{
	double *v = malloc(n * sizeof *v);
	uint8_t data[1200];
	memset(data, 0xa5, sizeof data);
	char nm[32];
	if (!v)
		exit(1);
	if (t->file[0] && !strncmp(t->uri, t->file, strlen(t->file)))
		unlink(t->file);
	else
		blank(t->uri);
	bs_image *im;
	if (bs_image_open(t->uri, BS_OPEN_CREATE, &im))
		die(t->uri);
	for (size_t i = 0; i < n; i++) {
		snprintf(nm, sizeof nm, "e%zu", i);
		double t0 = now_us();
		if (bs_entry_create(im, "vtpm", nm, &(struct bs_entry_opts){.version = BS_ENTRY_OPTS_VERSION, .capacity = sizeof data, .attrs = NULL, .nattrs = 0}, data, sizeof data, NULL))
			die("create");
		v[i] = now_us() - t0;
	}
	t->med[0] = median(v, n);
	bs_entry *e;
	if (bs_entry_find(im, "vtpm", "e0", &e))
		die("find");
	for (size_t i = 0; i < n; i++) {
		data[0] = (uint8_t)i;
		double t0 = now_us();
		if (bs_entry_write(e, data, sizeof data))
			die("replace");
		v[i] = now_us() - t0;
	}
	t->med[1] = median(v, n);
	for (size_t i = 0; i < n; i++) {
		size_t l;
		double t0 = now_us();
		if (bs_entry_read(e, data, sizeof data, &l))
			die("read");
		v[i] = now_us() - t0;
	}
	t->med[2] = median(v, n);
	bs_image_close(im);
	for (size_t i = 0; i < n; i++) {
		double t0 = now_us();
		if (bs_image_open(t->uri, 0, &im))
			die("open");
		bs_image_close(im);
		v[i] = now_us() - t0;
	}
	t->med[3] = median(v, n);
	free(v);
}

int main(int argc, char **argv)
{
	bs_nbd_register(); /* the NBD targets */
	bs_rbd_register(); /* the RBD target */
	const char *env = getenv("BENCH_DIR");
	char dir[400];
	mkdir(env && *env ? env : "build/bench", 0755);
	if (!realpath(env && *env ? env : "build/bench", dir)) {
		perror("bench_backends: BENCH_DIR");
		return 1;
	}
	const char *quick = getenv("BENCH_QUICK");
	size_t n = argc > 1 ? (size_t)atoi(argv[1]) : quick && strcmp(quick, "0") ? 20 : 200;
	if (n < 3)
		n = 3;
#define NT 5
	struct target t[NT] = {{.name = "file"}, {.name = "block (fixed file)"},
			       {.name = "nbd memory"}, {.name = "nbd file"}, {.name = "rbd"}};
	const char *rbd = getenv("BENCH_RBD_CONF");
	if (rbd && *rbd)
		snprintf(t[4].uri, sizeof t[4].uri, "rbd://rbd/bb-rbd-%ld?conf=%s&size=16M",
			 (long)getpid(), rbd);
	snprintf(t[0].file, sizeof t[0].file, "%s/bb-file.img", dir);
	snprintf(t[0].uri, sizeof t[0].uri, "%s", t[0].file);
	snprintf(t[1].file, sizeof t[1].file, "%s/bb-block.img", dir);
	snprintf(t[1].uri, sizeof t[1].uri, "blk://%s?size=16M", t[1].file);
	/* A loop device over the same file when root can attach one. */
	if (geteuid() == 0) {
		int fd = open(t[1].file, O_RDWR | O_CREAT, 0600);
		if (fd >= 0 && ftruncate(fd, 16 << 20) == 0) {
			char cmd[600];
			snprintf(cmd, sizeof cmd, "losetup -f --show '%s' 2>/dev/null", t[1].file);
			FILE *p = popen(cmd, "r");
			if (p && fgets(t[1].loopdev, sizeof t[1].loopdev, p)) {
				t[1].loopdev[strcspn(t[1].loopdev, "\n")] = 0;
				snprintf(t[1].uri, sizeof t[1].uri, "%s", t[1].loopdev);
				t[1].name = "block (loop)";
			}
			if (p)
				pclose(p);
		}
		if (fd >= 0)
			close(fd);
	}
	snprintf(t[2].sock, sizeof t[2].sock, "%s/bb-mem.sock", dir);
	snprintf(t[3].sock, sizeof t[3].sock, "%s/bb-file.sock", dir);
	snprintf(t[3].file, sizeof t[3].file, "%s/bb-nbd.img", dir);
	char filearg[600];
	snprintf(filearg, sizeof filearg, "file=%s", t[3].file);
	int fd = open(t[3].file, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 16 << 20))
		return 1;
	close(fd);
	const char *mem[] = {"memory", "size=64M", NULL};
	const char *file[] = {"file", filearg, NULL};
	const char *const *args[2] = {mem, file};
	for (int i = 0; i < 2; i++) {
		struct target *x = &t[2 + i];
		for (int k = 0; k < OPS; k++)
			x->med[k] = -1;
		if (start_nbdkit(x, args[i]))
			fprintf(stderr, "bench_backends: %s: nbdkit did not start, skipped\n", x->name);
		else
			snprintf(x->uri, sizeof x->uri, "nbd+unix:///?socket=%s", x->sock);
	}
	for (int i = 0; i < NT; i++)
		if (t[i].uri[0])
			measure(&t[i], n);
	printf("backend costs, median of %zu durable operations, microseconds (ratio to file)\n", n);
	printf("%-20s", "backend");
	for (int k = 0; k < OPS; k++)
		printf(" %18s", op_names[k]);
	printf("\n");
	for (int i = 0; i < NT; i++) {
		if (!t[i].uri[0])
			continue;
		printf("%-20s", t[i].name);
		for (int k = 0; k < OPS; k++)
			printf(" %9.1f (%5.2fx)", t[i].med[k], t[i].med[k] / t[0].med[k]);
		printf("\n");
	}
	for (int i = 0; i < NT; i++) {
		if (t[i].nbdkit > 0) {
			kill(t[i].nbdkit, SIGTERM);
			waitpid(t[i].nbdkit, NULL, 0);
			unlink(t[i].sock);
		}
		if (t[i].loopdev[0]) {
			char cmd[128];
			snprintf(cmd, sizeof cmd, "losetup -d '%s'", t[i].loopdev);
			if (system(cmd))
				fprintf(stderr, "bench_backends: cannot detach %s\n", t[i].loopdev);
		}
		if (t[i].file[0])
			unlink(t[i].file);
	}
	return 0;
}
