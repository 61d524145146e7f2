/* cli.h - blobstore-vtpm's two command lines, parsed into one
 * configuration: its own (`blobstore-vtpm --image PATH ...`) and swtpm's
 * (`blobstore-vtpm socket ...`, what libvirt, swtpm_setup and tpm2-tools
 * launch).  Parsing only: no file, socket or key is opened here.
 *
 * Options are matched exactly, never abbreviated: `--pid file=p` is the
 * option --pid with the value "file=p", and an unknown option or sub-option
 * is an error that names it.  Sub-options are swtpm's: comma-separated
 * "key=value" or a bare "key" (true); each key at most once. */
#ifndef VTPM_CLI_H
#define VTPM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* One channel (command or control). */
enum vtpm_chan_kind {
	VTPM_CHAN_NONE,
	VTPM_CHAN_TCP,        /* listen on BINDADDR:PORT */
	VTPM_CHAN_UNIX,       /* listen on PATH */
	VTPM_CHAN_FD_LISTEN,  /* FD is a listening socket */
	VTPM_CHAN_FD_CONN,    /* FD is one connected client */
};

struct vtpm_chan {
	enum vtpm_chan_kind kind;
	unsigned port;
	const char *bindaddr;  /* NULL: 127.0.0.1 */
	const char *ifname;    /* scope of a link-local IPv6 address */
	const char *path;
	mode_t mode;           /* of a UNIX socket; default 0770 */
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
	int fd;
	bool disconnect;       /* command channel: close after each response */
	bool terminate;        /* control channel: exit when the client leaves */
};

/* Where a key comes from (--key, --migration-key, or the own options). */
enum vtpm_key_src {
	VTPM_KEY_NONE,
	VTPM_KEY_FILE,     /* a key file: hex (swtpm) or 32 raw octets */
	VTPM_KEY_FD,
	VTPM_KEY_PWDFILE,  /* a passphrase file */
	VTPM_KEY_PWDFD,
};

struct vtpm_keyopt {
	enum vtpm_key_src src;
	const char *path;
	int fd;
	int format;     /* BS_SWTPM_KEY_HEX or _BINARY (swtpm's format=) */
	size_t keylen;  /* 16 or 32 (mode=aes-128-cbc / aes-256-cbc); 0: not given */
	int kdf;        /* BS_SWTPM_KDF_PBKDF2 or _SHA512 */
	bool remove;    /* unlink the file once read */
	bool swtpm;     /* swtpm's semantics (whole passphrase file; hex key files) */
};

/* --flags startup-*: the TPM2_Startup sent at launch. */
enum vtpm_startup {
	VTPM_STARTUP_NONE = -1,
	VTPM_STARTUP_CLEAR = 0,
	VTPM_STARTUP_STATE = 1,
};

struct vtpm_config {
	bool swtpm;              /* the swtpm-compatible command line */
	bool tpm2;               /* --tpm2 (the own command line: always) */
	/* where the state lives */
	const char *image;       /* own: --image; swtpm: a backend URI or file */
	const char *state_dir;   /* swtpm: --tpmstate dir= or backend-uri=dir:// */
	bool has_state_mode;
	mode_t state_mode;       /* --tpmstate mode= */
	bool create;             /* create the image when missing */
	bool nosync;
	struct vtpm_chan server, ctrl;
	bool not_need_init;
	enum vtpm_startup startup;
	bool disable_auto_shutdown;
	const char *pid_path;
	int pid_fd;              /* -1: none */
	bool pid_atomic;         /* own: written through a temporary file */
	const char *log_path;    /* NULL: no log; "-": stderr (own) */
	int log_fd;              /* -1: none */
	unsigned log_level;
	const char *log_prefix;
	bool log_truncate;
	bool terminate;          /* exit when the command connection closes */
	bool daemon;
	const char *runas;
	struct vtpm_keyopt key, migkey;
	/* own: --kdf-max-iter, --kdf-max-mem, --kdf-max-work, the ceilings on
	 * the KDF costs the image's bs.key may ask for (0: the library's) */
	uint64_t kdf_max_iter, kdf_max_mem, kdf_max_work;
	bool reject_locality4, allow_set_locality;
	bool mig_incoming, mig_release_lock;
	bool print_caps, print_states, version, help;
};

/* Parses ARGV (ARGV[0] is "socket" for the swtpm command line, else the
 * program name) into *CFG.  Returns 0, or 1 after writing the message
 * (naming the option) into ERR/ERRLEN. */
int vtpm_parse_swtpm(int argc, char **argv, struct vtpm_config *cfg, char *err, size_t errlen);
int vtpm_parse_own(int argc, char **argv, struct vtpm_config *cfg, char *err, size_t errlen);

/* The help texts. */
void vtpm_usage_own(FILE *f);
void vtpm_usage_swtpm(FILE *f, const char *prog);

#endif
