/* cli.c - the two command lines of blobstore-vtpm (cli.h).
 *
 * swtpm's meanings, read from its man pages and sources (0.7 to 0.10), are
 * noted where they are not obvious; docs/blobstore-vtpm.8 is the reference
 * for users.  Every error names the option and, for a sub-option, the
 * token. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <blobstore/swtpm.h>
#include "cli.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return 1;
}

static void config_init(struct vtpm_config *c)
{
	memset(c, 0, sizeof *c);
	c->server.kind = c->ctrl.kind = VTPM_CHAN_NONE;
	c->server.fd = c->ctrl.fd = -1;
	c->server.mode = c->ctrl.mode = 0770;
	c->pid_fd = c->log_fd = -1;
	c->startup = VTPM_STARTUP_NONE;
	c->key.fd = c->migkey.fd = -1;
}

/* ---- numbers ------------------------------------------------------------- */

static bool parse_uint(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

/* A positive size: decimal digits, optionally followed by K, M or G (and
 * "B" or "iB"): powers of 1024, as the blobstore tool reads sizes. */
static bool parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	unsigned shift = 0;
	switch (*p) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 0: break;
	default: return false;
	}
	if (shift) {
		p++;
		if (!strcmp(p, "iB") || !strcmp(p, "B"))
			p += strlen(p);
	}
	if (*p || !v || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = v << shift;
	return true;
}

/* ---- sub-options ---------------------------------------------------------- */

#define MAX_SUBOPTS 16

struct subopts {
	size_t n;
	char *key[MAX_SUBOPTS];
	char *val[MAX_SUBOPTS]; /* NULL: a bare key */
	bool used[MAX_SUBOPTS];
	char *buf;
};

static void subopts_free(struct subopts *s)
{
	free(s->buf);
	memset(s, 0, sizeof *s);
}

/* For the options whose values the configuration keeps: the buffer lives
 * as long as the process (the configuration is static), held here. */
static char *kept[8];

static void subopts_keep(struct subopts *s)
{
	for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
		if (!kept[i]) {
			kept[i] = s->buf;
			memset(s, 0, sizeof *s);
			return;
		}
	/* Cannot happen: at most --server, --ctrl, --tpmstate, --key and
	 * --migration-key keep theirs. */
	abort();
}

/* Splits "a=1,b,c=x" (empty tokens skipped, as swtpm does).  A key given
 * twice, an empty key or "key=" with no value is an error. */
static int subopts_split(const char *opt, const char *arg, struct subopts *s, char *err,
			 size_t errlen)
{
	memset(s, 0, sizeof *s);
	if (!(s->buf = strdup(arg)))
		return fail(err, errlen, "out of memory");
	char *save = NULL;
	for (char *t = strtok_r(s->buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq)
			*eq = '\0';
		if (!*t || (eq && !eq[1])) {
			if (eq)
				*eq = '=';
			return fail(err, errlen, "%s: '%s' needs a value", opt, t);
		}
		for (size_t i = 0; i < s->n; i++)
			if (!strcmp(s->key[i], t))
				return fail(err, errlen, "%s: '%s' is given twice", opt, t);
		if (s->n == MAX_SUBOPTS)
			return fail(err, errlen, "%s: more than %d sub-options", opt, MAX_SUBOPTS);
		s->key[s->n] = t;
		s->val[s->n] = eq ? eq + 1 : NULL;
		s->n++;
	}
	return 0;
}

/* The value of KEY, or NULL; *PRESENT tells whether it was given. */
static const char *sub(struct subopts *s, const char *key, bool *present)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->key[i], key)) {
			s->used[i] = true;
			if (present)
				*present = true;
			return s->val[i] ? s->val[i] : "";
		}
	if (present)
		*present = false;
	return NULL;
}

/* swtpm's booleans: a bare key, "true" or "1" are true; other values false. */
static bool sub_bool(struct subopts *s, const char *key)
{
	bool present;
	const char *v = sub(s, key, &present);
	return present && (!*v || !strcasecmp(v, "true") || !strcmp(v, "1"));
}

/* A key that takes a value given bare ("dir" instead of "dir=X"). */
static int need_value(struct subopts *s, const char *opt, const char *key, char *err,
		      size_t errlen)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->key[i], key) && !s->val[i])
			return fail(err, errlen, "%s: '%s' needs a value ('%s=...')", opt, key, key);
	return 0;
}

/* After every sub() of an option: a sub-option nobody asked for is unknown. */
static int subopts_done(struct subopts *s, const char *opt, const char *allowed, char *err,
			size_t errlen)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->used[i])
			return fail(err, errlen, "%s: unknown option '%s%s%s' (%s)", opt, s->key[i],
				    s->val[i] ? "=" : "", s->val[i] ? s->val[i] : "", allowed);
	return 0;
}

static int sub_uint(struct subopts *s, const char *opt, const char *key, int base,
		    unsigned long max, unsigned long *out, bool *present, char *err, size_t errlen)
{
	bool p;
	const char *v = sub(s, key, &p);
	if (present)
		*present = p;
	if (!p)
		return 0;
	if (!parse_uint(v, base, max, out))
		return fail(err, errlen, "%s: invalid %s '%s'", opt, key, v);
	return 0;
}

static int sub_fd(struct subopts *s, const char *opt, const char *key, int *fd, bool *present,
		  char *err, size_t errlen)
{
	unsigned long v;
	int rc = sub_uint(s, opt, key, 10, 65535, &v, present, err, errlen);
	if (!rc && *present)
		*fd = (int)v;
	return rc;
}

static int sub_mode(struct subopts *s, const char *opt, mode_t *mode, bool *present, char *err,
		    size_t errlen)
{
	unsigned long v;
	bool p;
	if (sub_uint(s, opt, "mode", 8, 0777, &v, &p, err, errlen))
		return 1;
	if (p)
		*mode = (mode_t)v;
	if (present)
		*present = p;
	return 0;
}

/* uid= / gid=: a number, or a user or group name. */
static int sub_id(struct subopts *s, const char *opt, const char *key, bool *has, unsigned *id,
		  char *err, size_t errlen)
{
	bool p;
	const char *v = sub(s, key, &p);
	*has = false;
	if (!p)
		return 0;
	unsigned long n;
	if (parse_uint(v, 10, 0xfffffffeul, &n)) {
		*id = (unsigned)n;
	} else if (!strcmp(key, "uid")) {
		struct passwd *pw = getpwnam(v);
		if (!pw)
			return fail(err, errlen, "%s: no user '%s'", opt, v);
		*id = pw->pw_uid;
	} else {
		struct group *gr = getgrnam(v);
		if (!gr)
			return fail(err, errlen, "%s: no group '%s'", opt, v);
		*id = gr->gr_gid;
	}
	*has = true;
	return 0;
}

/* ---- swtpm's options ------------------------------------------------------ */

/* --server / --ctrl. */
static int parse_chan(const char *opt, const char *arg, bool is_ctrl, struct vtpm_chan *ch,
		      char *err, size_t errlen)
{
	struct subopts s;
	int rc = subopts_split(opt, arg, &s, err, errlen);
	if (rc)
		goto out;
	const char *allowed = is_ctrl ? "type=unixio|tcp, path=, port=, bindaddr=, ifname=, fd=, "
					"clientfd=, mode=, uid=, gid=, terminate"
				      : "type=tcp|unixio, port=, bindaddr=, ifname=, fd=, path=, "
					"mode=, uid=, gid=, disconnect";
	bool has_type;
	const char *type = sub(&s, "type", &has_type);
	if (!has_type && is_ctrl) {
		rc = fail(err, errlen, "%s: missing type (type=unixio or type=tcp)", opt);
		goto out;
	}
	if (!has_type)
		type = "tcp";
	const char *keys[] = {"type", "path", "port", "bindaddr", "ifname", "fd", "clientfd", "mode",
			      "uid", "gid"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if ((rc = need_value(&s, opt, keys[i], err, errlen)))
			goto out;
	bool has_fd = false, has_cfd = false, has_port = false, has_path = false, has_mode;
	int fd = -1, cfd = -1;
	unsigned long port = 0;
	if ((rc = sub_fd(&s, opt, "fd", &fd, &has_fd, err, errlen)))
		goto out;
	if (is_ctrl && (rc = sub_fd(&s, opt, "clientfd", &cfd, &has_cfd, err, errlen)))
		goto out;
	if (!strcmp(type, "tcp")) {
		if ((rc = sub_uint(&s, opt, "port", 10, 0xffffffffu, &port, &has_port, err, errlen)))
			goto out;
		if (has_port && (port == 0 || port > 65535)) {
			rc = fail(err, errlen, "%s: TCP socket port %lu outside valid range", opt, port);
			goto out;
		}
		ch->bindaddr = sub(&s, "bindaddr", NULL);
		ch->ifname = sub(&s, "ifname", NULL);
		ch->kind = VTPM_CHAN_TCP;
		ch->port = (unsigned)port;
		if (!is_ctrl && !has_port && !has_fd) {
			/* swtpm's default: the TPM_PORT environment variable. */
			const char *env = getenv("TPM_PORT");
			unsigned long p;
			if (!env || !parse_uint(env, 10, 65535, &p) || !p) {
				rc = fail(err, errlen, "%s: no port= and no valid TPM_PORT in the "
						       "environment", opt);
				goto out;
			}
			ch->port = (unsigned)p;
		}
		if (is_ctrl && !has_port && !has_fd) {
			rc = fail(err, errlen, "%s: type=tcp needs port= or fd=", opt);
			goto out;
		}
	} else if (!strcmp(type, "unixio")) {
		ch->path = sub(&s, "path", &has_path);
		if ((rc = sub_mode(&s, opt, &ch->mode, &has_mode, err, errlen)))
			goto out;
		unsigned id = 0;
		if ((rc = sub_id(&s, opt, "uid", &ch->has_uid, &id, err, errlen)))
			goto out;
		ch->uid = (uid_t)id;
		if ((rc = sub_id(&s, opt, "gid", &ch->has_gid, &id, err, errlen)))
			goto out;
		ch->gid = (gid_t)id;
		ch->kind = VTPM_CHAN_UNIX;
		if (!has_path && !has_fd && !has_cfd) {
			rc = fail(err, errlen, "%s: type=unixio needs path=, fd=%s", opt,
				  is_ctrl ? " or clientfd=" : "");
			goto out;
		}
	} else {
		rc = fail(err, errlen, "%s: unsupported type '%s' (tcp or unixio)", opt, type);
		goto out;
	}
	if ((has_fd + has_cfd + (has_port || has_path)) > 1) {
		rc = fail(err, errlen, "%s: give one of %sfd=%s", opt,
			  !strcmp(type, "tcp") ? "port=, " : "path=, ", is_ctrl ? ", clientfd=" : "");
		goto out;
	}
	if (has_fd) {
		ch->fd = fd;
		/* swtpm: the command channel's fd= is one connected client,
		 * the control channel's a listening socket. */
		ch->kind = is_ctrl ? VTPM_CHAN_FD_LISTEN : VTPM_CHAN_FD_CONN;
	}
	if (has_cfd) {
		ch->fd = cfd;
		ch->kind = VTPM_CHAN_FD_CONN;
	}
	if (is_ctrl)
		ch->terminate = sub_bool(&s, "terminate");
	else
		ch->disconnect = sub_bool(&s, "disconnect");
	rc = subopts_done(&s, opt, allowed, err, errlen);
out:
	if (rc)
		subopts_free(&s);
	else
		subopts_keep(&s);
	return rc;
}

static int parse_key(const char *opt, const char *arg, struct vtpm_keyopt *k, char *err,
		     size_t errlen)
{
	struct subopts s;
	int rc = subopts_split(opt, arg, &s, err, errlen);
	if (rc)
		goto out;
	const char *keys[] = {"file", "fd", "pwdfile", "pwdfd", "format", "mode", "kdf", "remove"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i], "remove") && (rc = need_value(&s, opt, keys[i], err, errlen)))
			goto out;
	bool pf, pfd, ppw, ppwfd;
	const char *file = sub(&s, "file", &pf), *pwfile = sub(&s, "pwdfile", &ppw);
	int fd = -1, pwfd = -1;
	if ((rc = sub_fd(&s, opt, "fd", &fd, &pfd, err, errlen)) ||
	    (rc = sub_fd(&s, opt, "pwdfd", &pwfd, &ppwfd, err, errlen)))
		goto out;
	if (pf + pfd + ppw + ppwfd != 1) {
		rc = fail(err, errlen, "%s: give exactly one of file=, fd=, pwdfile=, pwdfd=", opt);
		goto out;
	}
	k->swtpm = true;
	k->src = pf ? VTPM_KEY_FILE : pfd ? VTPM_KEY_FD : ppw ? VTPM_KEY_PWDFILE : VTPM_KEY_PWDFD;
	k->path = pf ? file : ppw ? pwfile : NULL;
	k->fd = pfd ? fd : ppwfd ? pwfd : -1;
	bool p;
	const char *v = sub(&s, "format", &p);
	if (p && (pf || pfd)) {
		if (!strcmp(v, "hex"))
			k->format = BS_SWTPM_KEY_HEX;
		else if (!strcmp(v, "binary"))
			k->format = BS_SWTPM_KEY_BINARY;
		else {
			rc = fail(err, errlen, "%s: format is hex or binary, not '%s'", opt, v);
			goto out;
		}
	} else if (p) {
		rc = fail(err, errlen, "%s: format= is for file= and fd=", opt);
		goto out;
	}
	v = sub(&s, "mode", &p);
	if (p) {
		if (!strcmp(v, "aes-128-cbc") || !strcmp(v, "aes-cbc"))
			k->keylen = 16;
		else if (!strcmp(v, "aes-256-cbc"))
			k->keylen = 32;
		else {
			rc = fail(err, errlen, "%s: mode is aes-128-cbc or aes-256-cbc, not '%s'", opt,
				  v);
			goto out;
		}
	}
	v = sub(&s, "kdf", &p);
	if (p && (ppw || ppwfd)) {
		if (!strcmp(v, "pbkdf2"))
			k->kdf = BS_SWTPM_KDF_PBKDF2;
		else if (!strcmp(v, "sha512"))
			k->kdf = BS_SWTPM_KDF_SHA512;
		else {
			rc = fail(err, errlen, "%s: kdf is pbkdf2 or sha512, not '%s'", opt, v);
			goto out;
		}
	} else if (p) {
		rc = fail(err, errlen, "%s: kdf= is for pwdfile= and pwdfd=", opt);
		goto out;
	}
	k->remove = sub_bool(&s, "remove");
	rc = subopts_done(&s, opt, "file=, fd=, pwdfile=, pwdfd=, format=, mode=, kdf=, remove",
			  err, errlen);
out:
	if (rc)
		subopts_free(&s);
	else
		subopts_keep(&s);
	return rc;
}

static int parse_tpmstate(const char *opt, const char *arg, struct vtpm_config *c, char *err,
			  size_t errlen)
{
	struct subopts s;
	int rc = subopts_split(opt, arg, &s, err, errlen);
	if (rc)
		goto out;
	if ((rc = need_value(&s, opt, "dir", err, errlen)) ||
	    (rc = need_value(&s, opt, "backend-uri", err, errlen)) ||
	    (rc = need_value(&s, opt, "mode", err, errlen)))
		goto out;
	bool pdir, puri;
	const char *dir = sub(&s, "dir", &pdir), *uri = sub(&s, "backend-uri", &puri);
	if (pdir == puri) {
		rc = fail(err, errlen, "%s: give dir= or backend-uri=", opt);
		goto out;
	}
	if ((rc = sub_mode(&s, opt, &c->state_mode, &c->has_state_mode, err, errlen)))
		goto out;
	/* swtpm 0.10's lock option: the state is always locked here. */
	(void)sub_bool(&s, "lock");
	if (pdir) {
		c->state_dir = dir;
	} else if (!strncmp(uri, "dir://", 6)) {
		c->state_dir = uri + 6;
	} else if (!strncmp(uri, "file://", 7)) {
		c->image = uri + 7;
	} else if (strstr(uri, "://") || !strncmp(uri, "nbd:", 4)) {
		/* Any URI the library opens (nbd://, nbd+unix://, blk://, ...). */
		c->image = uri;
	} else {
		rc = fail(err, errlen, "%s: backend-uri '%s': give dir://PATH, file://PATH or an "
				       "image URI", opt, uri);
		goto out;
	}
	if ((c->state_dir && !*c->state_dir) || (c->image && !*c->image)) {
		rc = fail(err, errlen, "%s: an empty path", opt);
		goto out;
	}
	rc = subopts_done(&s, opt, "dir=, backend-uri=, mode=, lock", err, errlen);
out:
	if (rc)
		subopts_free(&s);
	else
		subopts_keep(&s);
	return rc;
}

/* Comma-separated words, each one of WORDS; sets bit i of *OUT for words[i]. */
static int parse_words(const char *opt, const char *arg, const char *const *words, size_t n,
		       unsigned *out, char *err, size_t errlen)
{
	struct subopts s;
	int rc = subopts_split(opt, arg, &s, err, errlen);
	for (size_t i = 0; !rc && i < s.n; i++) {
		size_t w = 0;
		while (w < n && strcmp(words[w], s.key[i]))
			w++;
		if (w == n || s.val[i]) {
			char list[256] = "";
			for (size_t j = 0; j < n; j++)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
					 j ? ", " : "", words[j]);
			rc = fail(err, errlen, "%s: unknown option '%s%s%s' (%s)", opt, s.key[i],
				  s.val[i] ? "=" : "", s.val[i] ? s.val[i] : "", list);
		} else {
			*out |= 1u << w;
		}
	}
	subopts_free(&s);
	return rc;
}

enum {
	O_TPM2 = 1, O_TPMSTATE, O_SERVER, O_CTRL, O_FLAGS, O_PID, O_LOG, O_TERMINATE, O_DAEMON,
	O_RUNAS, O_KEY, O_MIGKEY, O_SECCOMP, O_LOCALITY, O_MIGRATION, O_PRINT_CAPS,
	O_PRINT_STATES, O_VERSION, O_HELP, O_PORT, O_FD, O_CHROOT, O_UNSUPPORTED,
	/* the own command line */
	O_IMAGE, O_CREATE, O_KEYFILE, O_PWFILE, O_PWFD, O_CTRLPORT, O_SUNIX, O_CUNIX, O_PIDFILE,
	O_NOSYNC, O_KDF_ITER, O_KDF_MEM, O_KDF_WORK,
};

struct opt {
	const char *name;
	char shortname;
	bool arg;
	int id;
};

static const struct opt swtpm_opts[] = {
	{"tpm2", 0, false, O_TPM2},
	{"tpmstate", 0, true, O_TPMSTATE},
	{"server", 'c', true, O_SERVER},
	{"ctrl", 0, true, O_CTRL},
	{"flags", 0, true, O_FLAGS},
	{"pid", 0, true, O_PID},
	{"log", 0, true, O_LOG},
	{"terminate", 't', false, O_TERMINATE},
	{"daemon", 'd', false, O_DAEMON},
	{"runas", 'r', true, O_RUNAS},
	{"key", 0, true, O_KEY},
	{"migration-key", 0, true, O_MIGKEY},
	{"seccomp", 0, true, O_SECCOMP},
	{"locality", 0, true, O_LOCALITY},
	{"migration", 0, true, O_MIGRATION},
	{"print-capabilities", 0, false, O_PRINT_CAPS},
	{"print-states", 0, false, O_PRINT_STATES},
	{"version", 'v', false, O_VERSION},
	{"help", 'h', false, O_HELP},
	{"port", 'p', true, O_PORT},
	{"fd", 'f', true, O_FD},
	/* swtpm's, not here: named as unsupported rather than unknown */
	{"chroot", 'R', true, O_UNSUPPORTED},
	{"profile", 0, true, O_UNSUPPORTED},
	{"print-profiles", 0, false, O_UNSUPPORTED},
	{"print-info", 0, true, O_UNSUPPORTED},
	{"pcap", 0, true, O_UNSUPPORTED},
	{NULL, 0, false, 0},
};

static const struct opt own_opts[] = {
	{"image", 0, true, O_IMAGE},
	{"create", 0, false, O_CREATE},
	{"key-file", 0, true, O_KEYFILE},
	{"passphrase-file", 0, true, O_PWFILE},
	{"passphrase-fd", 0, true, O_PWFD},
	{"port", 0, true, O_PORT},
	{"ctrl-port", 0, true, O_CTRLPORT},
	{"server-unix", 0, true, O_SUNIX},
	{"ctrl-unix", 0, true, O_CUNIX},
	{"flags", 0, true, O_FLAGS},
	{"pid-file", 0, true, O_PIDFILE},
	{"log", 0, true, O_LOG},
	{"no-sync", 0, false, O_NOSYNC},
	{"kdf-max-iter", 0, true, O_KDF_ITER},
	{"kdf-max-mem", 0, true, O_KDF_MEM},
	{"kdf-max-work", 0, true, O_KDF_WORK},
	{"version", 0, false, O_VERSION},
	{"help", 'h', false, O_HELP},
	{NULL, 0, false, 0},
};

/* The option walker: exact long names ("--name", "--name=value",
 * "--name value"), single short options ("-d", "-p 2321", "-p2321"). */
struct walker {
	int argc, i;
	char **argv;
	const struct opt *opts;
	const char *arg;  /* the value of the option just returned */
	const char *name; /* as the user wrote it, for messages */
};

/* Returns the option id, 0 at the end, -1 after an error in ERR. */
static int next_opt(struct walker *w, char *err, size_t errlen)
{
	if (w->i >= w->argc)
		return 0;
	const char *a = w->argv[w->i++];
	w->name = a;
	w->arg = NULL;
	const struct opt *o = NULL;
	const char *inline_val = NULL;
	if (a[0] == '-' && a[1] == '-' && a[2]) {
		const char *nm = a + 2, *eq = strchr(nm, '=');
		size_t len = eq ? (size_t)(eq - nm) : strlen(nm);
		for (const struct opt *p = w->opts; p->name; p++)
			if (strlen(p->name) == len && !strncmp(p->name, nm, len))
				o = p;
		if (!o)
			return fail(err, errlen, "unrecognized option '--%.*s'", (int)len, nm), -1;
		if (eq) {
			if (!o->arg)
				return fail(err, errlen, "option '--%s' takes no value", o->name), -1;
			inline_val = eq + 1;
		}
	} else if (a[0] == '-' && a[1] && a[1] != '-') {
		for (const struct opt *p = w->opts; p->name; p++)
			if (p->shortname == a[1])
				o = p;
		if (!o)
			return fail(err, errlen, "unrecognized option '%s'", a), -1;
		if (a[2]) {
			if (!o->arg)
				return fail(err, errlen, "unrecognized option '%s' (one short option "
							 "at a time)", a), -1;
			inline_val = a + 2;
		}
	} else {
		return fail(err, errlen, "unknown parameter '%s'", a), -1;
	}
	if (o->arg) {
		if (inline_val)
			w->arg = inline_val;
		else if (w->i < w->argc)
			w->arg = w->argv[w->i++];
		else
			return fail(err, errlen, "option '%s' needs a value", a), -1;
	}
	return o->id;
}

int vtpm_parse_swtpm(int argc, char **argv, struct vtpm_config *c, char *err, size_t errlen)
{
	config_init(c);
	c->swtpm = true;
	c->create = true; /* swtpm creates its state where there is none */
	c->log_level = 0;
	struct walker w = {.argc = argc, .argv = argv, .i = 1, .opts = swtpm_opts};
	const char *tpmstate = NULL, *server = NULL, *ctrl = NULL, *pid = NULL, *log = NULL;
	const char *port = NULL, *fd = NULL;
	bool have_key = false, have_migkey = false;
	int id;
	while ((id = next_opt(&w, err, errlen)) > 0) {
		switch (id) {
		case O_TPM2: c->tpm2 = true; break;
		case O_TPMSTATE: tpmstate = w.arg; break;
		case O_SERVER: server = w.arg; break;
		case O_CTRL: ctrl = w.arg; break;
		case O_PID: pid = w.arg; break;
		case O_LOG: log = w.arg; break;
		case O_TERMINATE: c->terminate = true; break;
		case O_DAEMON: c->daemon = true; break;
		case O_RUNAS: c->runas = w.arg; break;
		case O_PRINT_CAPS: c->print_caps = true; break;
		case O_PRINT_STATES: c->print_states = true; break;
		case O_VERSION: c->version = true; break;
		case O_HELP: c->help = true; break;
		case O_PORT: port = w.arg; break;
		case O_FD: fd = w.arg; break;
		case O_KEY:
			if (have_key || parse_key("--key", w.arg, &c->key, err, errlen))
				return have_key ? fail(err, errlen, "--key given twice") : 1;
			have_key = true;
			break;
		case O_MIGKEY:
			if (have_migkey || parse_key("--migration-key", w.arg, &c->migkey, err, errlen))
				return have_migkey ? fail(err, errlen, "--migration-key given twice") : 1;
			have_migkey = true;
			break;
		case O_FLAGS: {
			static const char *const words[] = {
				"not-need-init", "startup-clear", "startup-state", "startup-deactivated",
				"startup-none", "disable-auto-shutdown"};
			unsigned f = 0;
			if (parse_words("--flags", w.arg, words, 6, &f, err, errlen))
				return 1;
			if (f & 8)
				return fail(err, errlen, "--flags: startup-deactivated is for TPM 1.2 "
							 "(TPM 2.0 has no deactivated startup)");
			if (!!(f & 2) + !!(f & 4) + !!(f & 16) > 1)
				return fail(err, errlen, "--flags: give one startup-* flag");
			c->not_need_init |= (f & (1 | 2 | 4)) != 0;
			if (f & 2)
				c->startup = VTPM_STARTUP_CLEAR;
			if (f & 4)
				c->startup = VTPM_STARTUP_STATE;
			c->disable_auto_shutdown |= (f & 32) != 0;
			break;
		}
		case O_SECCOMP: {
			struct subopts s;
			int rc = subopts_split("--seccomp", w.arg, &s, err, errlen);
			bool p = false;
			const char *a = rc ? NULL : sub(&s, "action", &p);
			if (!rc && p && a && strcmp(a, "none"))
				rc = fail(err, errlen, "--seccomp: action=%s: blobstore-vtpm installs no "
						       "seccomp filter; only action=none is accepted", a);
			if (!rc)
				rc = subopts_done(&s, "--seccomp", "action=none", err, errlen);
			subopts_free(&s);
			if (rc)
				return 1;
			break;
		}
		case O_LOCALITY: {
			static const char *const words[] = {"reject-locality-4", "allow-set-locality"};
			unsigned f = 0;
			if (parse_words("--locality", w.arg, words, 2, &f, err, errlen))
				return 1;
			c->reject_locality4 |= f & 1;
			c->allow_set_locality |= (f & 2) != 0;
			break;
		}
		case O_MIGRATION: {
			static const char *const words[] = {"incoming", "release-lock-outgoing"};
			unsigned f = 0;
			if (parse_words("--migration", w.arg, words, 2, &f, err, errlen))
				return 1;
			c->mig_incoming |= f & 1;
			c->mig_release_lock |= (f & 2) != 0;
			break;
		}
		case O_UNSUPPORTED:
			return fail(err, errlen, "option '%s' of swtpm is not supported by "
						 "blobstore-vtpm", w.name);
		}
	}
	if (id < 0)
		return 1;
	if (c->help || c->version || c->print_caps)
		return 0;
	if (tpmstate) {
		if (parse_tpmstate("--tpmstate", tpmstate, c, err, errlen))
			return 1;
	} else if (getenv("TPM_PATH") && *getenv("TPM_PATH")) {
		c->state_dir = getenv("TPM_PATH"); /* swtpm's fallback */
	}
	if (server && (port || fd))
		return fail(err, errlen, "give --server or -p/--port or -f/--fd, not more");
	if (port && fd)
		return fail(err, errlen, "give -p/--port or -f/--fd, not both");
	if (server && parse_chan("--server", server, false, &c->server, err, errlen))
		return 1;
	if (port) {
		/* -p N: TCP, one command per connection (swtpm's meaning). */
		unsigned long v;
		if (!parse_uint(port, 10, 65535, &v) || !v)
			return fail(err, errlen, "-p/--port: TCP socket port '%s' outside valid range",
				    port);
		c->server.kind = VTPM_CHAN_TCP;
		c->server.port = (unsigned)v;
		c->server.disconnect = true;
	}
	if (fd) {
		unsigned long v;
		if (!parse_uint(fd, 10, 65535, &v))
			return fail(err, errlen, "-f/--fd: invalid file descriptor '%s'", fd);
		c->server.kind = VTPM_CHAN_FD_CONN;
		c->server.fd = (int)v;
	}
	if (ctrl && parse_chan("--ctrl", ctrl, true, &c->ctrl, err, errlen))
		return 1;
	if (c->server.kind == VTPM_CHAN_FD_CONN)
		c->terminate = true; /* a connected client given: end with it */
	if (pid) {
		struct subopts s;
		int rc = subopts_split("--pid", pid, &s, err, errlen);
		bool pf = false, pfd = false;
		if (!rc)
			rc = need_value(&s, "--pid", "file", err, errlen);
		if (!rc)
			c->pid_path = sub(&s, "file", &pf);
		if (!rc)
			rc = sub_fd(&s, "--pid", "fd", &c->pid_fd, &pfd, err, errlen);
		if (!rc && pf == pfd)
			rc = fail(err, errlen, "--pid: give file= or fd=");
		if (!rc)
			rc = subopts_done(&s, "--pid", "file=, fd=", err, errlen);
		if (!rc && c->pid_path && !(c->pid_path = strdup(c->pid_path)))
			rc = fail(err, errlen, "out of memory");
		subopts_free(&s);
		if (rc)
			return 1;
	}
	if (log) {
		struct subopts s;
		int rc = subopts_split("--log", log, &s, err, errlen);
		bool pf = false, pfd = false, pl = false;
		unsigned long lv = 1;
		if (!rc)
			rc = need_value(&s, "--log", "file", err, errlen);
		if (!rc)
			rc = need_value(&s, "--log", "level", err, errlen);
		if (!rc)
			c->log_path = sub(&s, "file", &pf);
		if (!rc)
			rc = sub_fd(&s, "--log", "fd", &c->log_fd, &pfd, err, errlen);
		if (!rc)
			rc = sub_uint(&s, "--log", "level", 10, 100, &lv, &pl, err, errlen);
		if (!rc)
			c->log_prefix = sub(&s, "prefix", NULL);
		if (!rc)
			c->log_truncate = sub_bool(&s, "truncate");
		if (!rc && pf && pfd)
			rc = fail(err, errlen, "--log: give file= or fd=, not both");
		if (!rc)
			rc = subopts_done(&s, "--log", "file=, fd=, level=, prefix=, truncate", err,
					  errlen);
		/* Values borrowed from the split buffer: copy them. */
		if (!rc && c->log_path && !(c->log_path = strdup(c->log_path)))
			rc = fail(err, errlen, "out of memory");
		if (!rc && c->log_prefix && !(c->log_prefix = strdup(c->log_prefix)))
			rc = fail(err, errlen, "out of memory");
		subopts_free(&s);
		if (rc)
			return 1;
		c->log_level = (unsigned)lv;
		if (c->log_path && !strcmp(c->log_path, "-")) {
			free((char *)c->log_path);
			c->log_path = NULL; /* swtpm: file=- turns logging off */
		}
	}
	return 0;
}

int vtpm_parse_own(int argc, char **argv, struct vtpm_config *c, char *err, size_t errlen)
{
	config_init(c);
	c->tpm2 = true;
	c->log_level = 2; /* every command, as before */
	c->pid_atomic = true;
	struct walker w = {.argc = argc, .argv = argv, .i = 1, .opts = own_opts};
	unsigned long port = 0, ctrl_port = 0;
	int id;
	while ((id = next_opt(&w, err, errlen)) > 0) {
		unsigned long v;
		switch (id) {
		case O_IMAGE: c->image = w.arg; break;
		case O_CREATE: c->create = true; break;
		case O_KEYFILE:
		case O_PWFILE:
		case O_PWFD:
			if (c->key.src != VTPM_KEY_NONE)
				return fail(err, errlen, "give at most one of --key-file, "
							 "--passphrase-file, --passphrase-fd");
			c->key.src = id == O_KEYFILE ? VTPM_KEY_FILE : id == O_PWFILE ? VTPM_KEY_PWDFILE
										: VTPM_KEY_PWDFD;
			if (id == O_PWFD) {
				if (!parse_uint(w.arg, 10, 65535, &v))
					return fail(err, errlen, "invalid file descriptor '%s'", w.arg);
				c->key.fd = (int)v;
			} else {
				c->key.path = w.arg;
			}
			break;
		case O_PORT:
		case O_CTRLPORT:
			if (!parse_uint(w.arg, 10, 65535, &v) || !v)
				return fail(err, errlen, "invalid port '%s'", w.arg);
			*(id == O_PORT ? &port : &ctrl_port) = v;
			break;
		case O_SUNIX: c->server.kind = VTPM_CHAN_UNIX; c->server.path = w.arg; break;
		case O_CUNIX: c->ctrl.kind = VTPM_CHAN_UNIX; c->ctrl.path = w.arg; break;
		case O_FLAGS: {
			static const char *const words[] = {"not-need-init", "startup-clear"};
			unsigned f = 0;
			if (parse_words("--flags", w.arg, words, 2, &f, err, errlen))
				return 1;
			c->not_need_init |= f != 0;
			if (f & 2)
				c->startup = VTPM_STARTUP_CLEAR;
			break;
		}
		case O_PIDFILE: c->pid_path = w.arg; break;
		case O_LOG: c->log_path = w.arg; break;
		case O_NOSYNC: c->nosync = true; break;
		case O_KDF_ITER:
		case O_KDF_WORK:
		case O_KDF_MEM: {
			uint64_t *to = id == O_KDF_ITER ? &c->kdf_max_iter
				       : id == O_KDF_WORK ? &c->kdf_max_work : &c->kdf_max_mem;
			unsigned long n;
			if (id == O_KDF_MEM ? !parse_size(w.arg, to)
					    : !parse_uint(w.arg, 10, ULONG_MAX, &n) || !n)
				return fail(err, errlen, "--kdf-max-%s takes a positive %s, not '%s'",
					    id == O_KDF_ITER ? "iter" : id == O_KDF_WORK ? "work" : "mem",
					    id == O_KDF_MEM ? "size" : "number", w.arg);
			if (id != O_KDF_MEM)
				*to = n;
			break;
		}
		case O_VERSION: c->version = true; break;
		case O_HELP: c->help = true; break;
		}
	}
	if (id < 0)
		return 1;
	if (c->help || c->version)
		return 0;
	if (!c->image)
		return fail(err, errlen, "missing --image PATH");
	if (port && c->server.kind == VTPM_CHAN_UNIX)
		return fail(err, errlen, "give --port or --server-unix, not both");
	if (ctrl_port && c->ctrl.kind == VTPM_CHAN_UNIX)
		return fail(err, errlen, "give --ctrl-port or --ctrl-unix, not both");
	if (port && !ctrl_port && c->ctrl.kind != VTPM_CHAN_UNIX) {
		if (port == 65535)
			return fail(err, errlen, "--port 65535 leaves no room for the control port; "
						 "give --ctrl-port");
		ctrl_port = port + 1; /* the swtpm TCTI's convention */
	}
	if (port) {
		c->server.kind = VTPM_CHAN_TCP;
		c->server.port = (unsigned)port;
	}
	if (ctrl_port) {
		c->ctrl.kind = VTPM_CHAN_TCP;
		c->ctrl.port = (unsigned)ctrl_port;
	}
	if (c->server.kind == VTPM_CHAN_NONE && c->ctrl.kind == VTPM_CHAN_NONE)
		return fail(err, errlen, "no socket: give --port, --server-unix or --ctrl-unix");
	if (c->log_path && !strcmp(c->log_path, "-"))
		c->log_fd = 2, c->log_path = NULL;
	return 0;
}

void vtpm_usage_own(FILE *f)
{
	fputs("usage: blobstore-vtpm --image URI [--create] [options]\n"
	      "       blobstore-vtpm socket [swtpm's options]    (swtpm's command line)\n"
	      "A TPM 2.0 (libtpms) whose state lives in a blobstore image, speaking swtpm's\n"
	      "socket protocol (blobstore-vtpm(8), docs/VTPM.md).\n"
	      "  --image URI             the image: a file, a block device or a URI\n"
	      "  --create                create (format) the image when it does not exist;\n"
	      "                          without it a missing image is an error\n"
	      "  --key-file PATH         the image's key (32 octets or 64 hex digits)\n"
	      "  --passphrase-file PATH  the image's passphrase\n"
	      "  --passphrase-fd N       ... read from file descriptor N\n"
	      "  --port N                command channel on 127.0.0.1:N\n"
	      "  --ctrl-port N           control channel on 127.0.0.1:N (default: port + 1)\n"
	      "  --server-unix PATH      command channel on a UNIX socket\n"
	      "  --ctrl-unix PATH        control channel on a UNIX socket (QEMU's chardev)\n"
	      "  --flags LIST            not-need-init: start the TPM at launch, without CMD_INIT;\n"
	      "                          startup-clear: also send TPM2_Startup(SU_CLEAR)\n"
	      "  --pid-file PATH         write the process id once the TPM is ready\n"
	      "  --log PATH              log commands and state writes ('-': stderr)\n"
	      "  --no-sync               do not fsync (fast, NOT durable: measurements only)\n"
	      "  --kdf-max-iter N        open passphrase images asking for at most N PBKDF2\n"
	      "                          iterations (default 2400000)\n"
	      "  --kdf-max-mem SIZE      ... at most SIZE of scrypt memory (default 128M)\n"
	      "  --kdf-max-work N        ... at most N scrypt work N*r*p (default 1048576)\n"
	      "  --version, --help\n"
	      "A key with --create on a new image sets encryption up; a key for an existing\n"
	      "image without encryption is refused (set it up with 'blobstore encrypt-init').\n"
	      "SIGTERM, SIGINT and CMD_SHUTDOWN store the volatile state and exit.\n",
	      f);
}

void vtpm_usage_swtpm(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s socket [options]\n"
		"swtpm's command line (blobstore-vtpm(8) lists what each option means here):\n"
		"  --tpm2                          a TPM 2.0 (required: there is no TPM 1.2)\n"
		"  --tpmstate dir=DIR[,mode=0NNN] | backend-uri=dir://DIR|file://PATH|URI\n"
		"                                  where the state lives (DIR/blobstore-vtpm.permall)\n"
		"  --server type=tcp[,port=N][,bindaddr=A][,ifname=I][,disconnect] | type=tcp,fd=N\n"
		"           | type=unixio,path=P[,mode=0NNN][,uid=N][,gid=N] | type=unixio,fd=N\n"
		"  -p|--port N, -f|--fd N          shorthands of --server\n"
		"  --ctrl type=unixio,path=P[,mode=][,uid=][,gid=] | type=unixio,fd=N|clientfd=N\n"
		"         | type=tcp,port=N[,bindaddr=A][,ifname=I] | type=tcp,fd=N   [,terminate]\n"
		"  --flags not-need-init,startup-clear|startup-state|startup-none,\n"
		"          disable-auto-shutdown\n"
		"  --pid file=P|fd=N               the process id, once the sockets listen\n"
		"  --log file=P|fd=N[,level=N][,prefix=S][,truncate]   (file=-: no log)\n"
		"  -t|--terminate                  exit when the command connection closes\n"
		"  -d|--daemon                     run in the background once ready\n"
		"  -r|--runas USER                 switch to USER first\n"
		"  --key file=P|fd=N[,format=hex|binary][,mode=aes-128-cbc|aes-256-cbc][,remove]\n"
		"      | pwdfile=P|pwdfd=N[,mode=...][,kdf=pbkdf2|sha512][,remove]\n"
		"                                  the state is encrypted (the image's encryption)\n"
		"  --migration-key ...             the same syntax: state blobs leave encrypted\n"
		"  --locality reject-locality-4,allow-set-locality\n"
		"  --migration incoming,release-lock-outgoing   shared-storage migration\n"
		"  --seccomp action=none\n"
		"  --print-capabilities, --print-states, --version, -h|--help\n",
		prog);
}
