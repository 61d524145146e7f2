/* vtpm.h - what the parts of blobstore-vtpm share: the log, and where the
 * TPM's state lives (state.c). */
#ifndef VTPM_VTPM_H
#define VTPM_VTPM_H

#include <stdbool.h>
#include <stddef.h>

#include <blobstore/blobstore.h>
#include <blobstore/crypt.h>
#include <blobstore/swtpm.h>
#include "cli.h"

/* Log levels: errors and what changes the state (import, creation,
 * migration) at 1, every command at 2. */
#define VTPM_LOG_INFO 1u
#define VTPM_LOG_CMD 2u
void vtpm_log(unsigned level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The name of the image inside a --tpmstate dir=DIR.  It ends in "permall"
 * so that swtpm_setup's --overwrite, and its clean-up after a failed run,
 * remove it as they remove swtpm's own state files. */
#define VTPM_DIR_IMAGE "blobstore-vtpm.permall"
/* swtpm's lock file in DIR (an fcntl write lock), taken too so that swtpm
 * and blobstore-vtpm never serve one directory at once. */
#define VTPM_DIR_LOCK ".lock"

struct vtpm_state {
	const struct vtpm_config *cfg;
	char *image;              /* what bs_image_open() gets */
	const char *dir;          /* --tpmstate dir=; NULL otherwise */
	bool local;               /* IMAGE is a local path (stat()-able) */
	int dir_lock;             /* DIR/.lock held, or -1 */
	bs_key *key;              /* the image's key, or NULL */
	bool has_swtpm_key;       /* --key: swtpm's key, to import its encrypted files */
	struct bs_swtpm_key swtpm_key;
	bool has_migkey;          /* --migration-key */
	struct bs_swtpm_key migkey;
	bool created;             /* this run created the image (removed if the start fails) */
};

/* Reads the keys the configuration names and works out where the state
 * lives.  Returns 0, or 1 with a message in ERR. */
int vtpm_state_prepare(struct vtpm_state *st, const struct vtpm_config *cfg, char *err,
		       size_t errlen);

/* Opens the image: read-only and unlocked with RDONLY (an incoming
 * migration's destination before it may lock), else locked, importing
 * swtpm's state files or creating the image first where that is called for,
 * and loading or setting up encryption.  Returns 0 with *IMG, or 1 with a
 * message in ERR (nothing created is left behind), 2 when the state is
 * locked by another process. */
int vtpm_state_open(struct vtpm_state *st, bool rdonly, bs_image **img, char *err, size_t errlen);

/* Releases DIR's lock (the image is closed by the caller). */
void vtpm_state_unlock(struct vtpm_state *st);

/* A start failed: removes an image this run created. */
void vtpm_state_discard(struct vtpm_state *st);

/* swtpm's --print-states on stdout.  Returns the exit status. */
int vtpm_print_states(struct vtpm_state *st);

void vtpm_state_free(struct vtpm_state *st);

#endif
