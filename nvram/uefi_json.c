/* uefi_json.c - virt-firmware's JSON for UEFI variable stores (what
 * virt-fw-vars --output-json writes and --set-json reads):
 *   {"version": 2, "variables": [{"name": "Timeout", "guid": "8be4df61-...",
 *     "attr": 7, "data": "0000", "time": "<EFI_TIME, 32 hex digits>"}, ...]}
 * The parser is strict RFC 8259 over (pointer, length), with an explicit
 * depth limit and every string and number checked before use; it refuses
 * what it does not know rather than drop it.  The formatter writes what
 * Python's json.dumps(indent=4) writes (virt-fw-vars' own output), so the
 * files compare byte for byte. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blobstore/sys/util.h>
#include <blobstore/uefi.h>

/* No generic value nesting: the format's three levels are parsed by three
 * functions, and anything else is refused, so there is no recursion. */
struct jp {
	const char *s;
	size_t len, pos;
};

/* An error at octet OFF, with its line and column. */
static int jerr(const struct jp *j, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int jerr(const struct jp *j, size_t off, const char *fmt, ...)
{
	size_t line = 1, col = 1;
	for (size_t i = 0; i < off && i < j->len; i++) {
		if (j->s[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ECORRUPT, 0,
			    "JSON line %zu column %zu (octet %zu): %s", line, col, off, msg);
}

static int nomem(void)
{
	return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ENOMEM, 0, "out of memory");
}

static void ws(struct jp *j)
{
	while (j->pos < j->len && strchr(" \t\r\n", j->s[j->pos]) && j->s[j->pos])
		j->pos++;
}

static bool peek(struct jp *j, char c)
{
	ws(j);
	return j->pos < j->len && j->s[j->pos] == c;
}

static int expect(struct jp *j, char c)
{
	if (!peek(j, c))
		return jerr(j, j->pos, j->pos < j->len ? "'%c' expected" : "'%c' expected, "
			    "end of input found", c);
	j->pos++;
	return BS_OK;
}

static void put_utf8(char *o, size_t *n, uint32_t c)
{
	if (c < 0x80) {
		o[(*n)++] = (char)c;
	} else if (c < 0x800) {
		o[(*n)++] = (char)(0xc0 | c >> 6);
		o[(*n)++] = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		o[(*n)++] = (char)(0xe0 | c >> 12);
		o[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[(*n)++] = (char)(0x80 | (c & 0x3f));
	} else {
		o[(*n)++] = (char)(0xf0 | c >> 18);
		o[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3f));
		o[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[(*n)++] = (char)(0x80 | (c & 0x3f));
	}
}

static int hex4(struct jp *j, size_t at, uint32_t *out)
{
	uint32_t v = 0;
	if (j->len - at < 4)
		return jerr(j, at, "\\u needs four hexadecimal digits");
	for (int i = 0; i < 4; i++) {
		int d = bs_hex_digit(j->s[at + (size_t)i]);
		if (d < 0)
			return jerr(j, at + (size_t)i, "\\u needs four hexadecimal digits");
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return BS_OK;
}

/* A string at the current position into a malloc()ed, NUL-terminated
 * UTF-8 *OUT (no NUL inside: \u0000 is refused). */
static int string(struct jp *j, char **out)
{
	ws(j);
	size_t start = j->pos;
	if (j->pos >= j->len || j->s[j->pos] != '"')
		return jerr(j, j->pos, "a string expected");
	j->pos++;
	/* The decoded string is never longer than its source. */
	size_t end = j->pos;
	while (end < j->len && j->s[end] != '"') {
		if (j->s[end] == '\\')
			end++;
		end++;
	}
	if (end >= j->len)
		return jerr(j, start, "string not terminated");
	if (!bs_utf8_valid(j->s + j->pos, end - j->pos))
		return jerr(j, start, "string is not valid UTF-8");
	char *o = malloc(end - j->pos + 1);
	if (!o)
		return nomem();
	size_t n = 0;
	int rc = BS_OK;
	while (j->pos < end && !rc) {
		unsigned char c = (unsigned char)j->s[j->pos];
		if (c < 0x20) {
			rc = jerr(j, j->pos, "control character 0x%02x in a string", c);
			break;
		}
		if (c != '\\') {
			o[n++] = (char)c;
			j->pos++;
			continue;
		}
		char e = j->s[j->pos + 1];
		const char *map = strchr("\"\\/bfnrt", e);
		if (e && map) {
			o[n++] = "\"\\/\b\f\n\r\t"[map - "\"\\/bfnrt"];
			j->pos += 2;
			continue;
		}
		if (e != 'u') {
			rc = jerr(j, j->pos, "unknown escape in a string");
			break;
		}
		uint32_t u, lo;
		if ((rc = hex4(j, j->pos + 2, &u)))
			break;
		j->pos += 6;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (end - j->pos < 6 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u' ||
			    hex4(j, j->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
				rc = jerr(j, j->pos - 6, "unpaired surrogate in a string");
				break;
			}
			u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			j->pos += 6;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			rc = jerr(j, j->pos - 6, "unpaired surrogate in a string");
			break;
		} else if (u == 0) {
			rc = jerr(j, j->pos - 6, "\\u0000 in a string");
			break;
		}
		put_utf8(o, &n, u); /* at most 4 octets for 6 or 12 source octets */
	}
	if (rc) {
		free(o);
		return rc;
	}
	o[n] = 0;
	j->pos = end + 1;
	*out = o;
	return BS_OK;
}

/* A non-negative integer of at most MAX. */
static int integer(struct jp *j, uint64_t max, uint64_t *out, const char *what)
{
	ws(j);
	size_t start = j->pos, p = j->pos;
	uint64_t v = 0;
	if (p < j->len && j->s[p] == '-')
		return jerr(j, start, "%s must not be negative", what);
	if (p >= j->len || j->s[p] < '0' || j->s[p] > '9')
		return jerr(j, start, "%s must be an integer", what);
	if (j->s[p] == '0' && p + 1 < j->len && j->s[p + 1] >= '0' && j->s[p + 1] <= '9')
		return jerr(j, start, "%s: a number must not start with 0", what);
	for (; p < j->len && j->s[p] >= '0' && j->s[p] <= '9'; p++) {
		unsigned d = (unsigned)(j->s[p] - '0');
		if (v > (max - d) / 10)
			return jerr(j, start, "%s is larger than %llu", what, (unsigned long long)max);
		v = v * 10 + d;
	}
	if (p < j->len && strchr(".eE", j->s[p]) && j->s[p])
		return jerr(j, start, "%s must be an integer", what);
	j->pos = p;
	*out = v;
	return BS_OK;
}

/* Hex digits TEXT (an even number) to a malloc()ed buffer. */
static int unhex(struct jp *j, size_t at, const char *text, uint8_t **out, size_t *len)
{
	size_t n = strlen(text);
	if (n % 2)
		return jerr(j, at, "odd number of hexadecimal digits");
	uint8_t *b = malloc(n / 2 + 1);
	if (!b)
		return nomem();
	for (size_t i = 0; i < n / 2; i++) {
		int h = bs_hex_digit(text[2 * i]), l = bs_hex_digit(text[2 * i + 1]);
		if (h < 0 || l < 0) {
			free(b);
			return jerr(j, at, "'%c' is not a hexadecimal digit",
				    h < 0 ? text[2 * i] : text[2 * i + 1]);
		}
		b[i] = (uint8_t)(h << 4 | l);
	}
	*out = b;
	*len = n / 2;
	return BS_OK;
}

static void var_clear(struct bs_uefi_var *v)
{
	free(v->name);
	free(v->data);
	memset(v, 0, sizeof *v);
}

/* One variable object: INDEX for messages. */
static int variable(struct jp *j, size_t index, struct bs_uefi_var *v)
{
	size_t start = j->pos;
	int rc = expect(j, '{');
	bool have_attr = false, have_guid = false, have_time = false, have_data = false;
	if (rc)
		return rc;
	memset(v, 0, sizeof *v);
	v->version = BS_UEFI_VAR_VERSION;
	if (peek(j, '}')) {
		j->pos++;
		return jerr(j, start, "variable %zu is empty", index);
	}
	for (;;) {
		char *key = NULL, *text = NULL;
		size_t kpos = (ws(j), j->pos);
		if ((rc = string(j, &key)) || (rc = expect(j, ':'))) {
			free(key);
			goto out;
		}
		size_t vpos = (ws(j), j->pos);
		bool dup = false;
		if (!strcmp(key, "attr")) {
			uint64_t a;
			dup = have_attr;
			if (!dup && !(rc = integer(j, UINT32_MAX, &a, "attr"))) {
				v->attributes = (uint32_t)a;
				have_attr = true;
			}
		} else if (!strcmp(key, "name") || !strcmp(key, "guid") || !strcmp(key, "data") ||
			   !strcmp(key, "time")) {
			dup = (key[0] == 'n' && v->name) || (key[0] == 'g' && have_guid) ||
			      (key[0] == 'd' && have_data) || (key[0] == 't' && have_time);
			if (!dup && !(rc = string(j, &text))) {
				if (key[0] == 'n') {
					if (!text[0])
						rc = jerr(j, vpos, "variable %zu: empty name", index);
					v->name = text;
					text = NULL;
				} else if (key[0] == 'g') {
					if (bs_uefi_guid_from_text(text, v->guid))
						rc = jerr(j, vpos, "variable %zu: '%s' is not a GUID", index,
							  text);
					have_guid = true;
				} else if (key[0] == 'd') {
					rc = unhex(j, vpos, text, &v->data, &v->data_len);
					have_data = !rc;
				} else {
					uint8_t *t = NULL;
					size_t tl = 0;
					rc = unhex(j, vpos, text, &t, &tl);
					if (!rc && tl != 16)
						rc = jerr(j, vpos, "variable %zu: time has %zu octets, not "
							  "16 (EFI_TIME)", index, tl);
					if (!rc)
						memcpy(v->timestamp, t, 16);
					free(t);
					have_time = true;
				}
			}
		} else {
			rc = jerr(j, kpos, "variable %zu: unknown key \"%s\" (known: name, guid, attr, "
				  "data, time)", index, key);
		}
		if (!rc && dup)
			rc = jerr(j, kpos, "variable %zu: key \"%s\" given twice", index, key);
		free(key);
		free(text);
		if (rc)
			goto out;
		if (peek(j, ',')) {
			j->pos++;
			continue;
		}
		if ((rc = expect(j, '}')))
			goto out;
		break;
	}
	if (!v->name)
		rc = jerr(j, start, "variable %zu has no \"name\"", index);
	else if (!have_guid)
		rc = jerr(j, start, "variable %zu ('%s') has no \"guid\"", index, v->name);
	else if (!have_data)
		rc = jerr(j, start, "variable %zu ('%s') has no \"data\"", index, v->name);
	if (!rc && !have_attr) {
		struct bs_uefi_known k;
		v->attributes = bs_uefi_known_var(v->name, v->guid, &k) == BS_OK
					? k.attributes
					: BS_UEFI_NON_VOLATILE | BS_UEFI_BOOTSERVICE_ACCESS;
	}
	if (!rc && !v->data && !(v->data = malloc(1)))
		rc = nomem();
out:
	if (rc)
		var_clear(v);
	return rc;
}

static int variables(struct jp *j, struct bs_uefi_store *st)
{
	int rc = expect(j, '[');
	size_t cap = 0;
	if (rc)
		return rc;
	if (peek(j, ']')) {
		j->pos++;
		return BS_OK;
	}
	for (;;) {
		if (st->nvars == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct bs_uefi_var *nv = nc > SIZE_MAX / sizeof *nv ? NULL
						 : realloc(st->vars, nc * sizeof *nv);
			if (!nv)
				return nomem();
			st->vars = nv;
			cap = nc;
		}
		size_t at = (ws(j), j->pos);
		if ((rc = variable(j, st->nvars, &st->vars[st->nvars])))
			return rc;
		const struct bs_uefi_var *v = &st->vars[st->nvars];
		for (size_t i = 0; i < st->nvars; i++)
			if (!memcmp(st->vars[i].guid, v->guid, 16) && !strcmp(st->vars[i].name, v->name)) {
				char g[37];
				bs_uefi_guid_str(v->guid, g);
				rc = jerr(j, at, "variables %zu and %zu are both %s:%s", i, st->nvars, g,
					  v->name);
				var_clear(&st->vars[st->nvars]);
				return rc;
			}
		st->nvars++;
		if (peek(j, ',')) {
			j->pos++;
			continue;
		}
		return expect(j, ']');
	}
}

int bs_uefi_json_parse(const char *text, size_t len, struct bs_uefi_store **out)
{
	if ((!text && len) || !out)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	if (len > BS_UEFI_JSON_MAX)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_ELIMIT, 0,
				    "JSON of %zu octets is larger than the limit of %u", len,
				    BS_UEFI_JSON_MAX);
	struct jp j = {.s = text ? text : "", .len = len};
	struct bs_uefi_store *st = calloc(1, sizeof *st);
	if (!st)
		return nomem();
	st->version = BS_UEFI_STORE_VERSION;
	bool have_vars = false, have_version = false;
	int rc = expect(&j, '{');
	while (!rc) {
		char *key = NULL;
		size_t kpos = (ws(&j), j.pos);
		if ((rc = string(&j, &key)) || (rc = expect(&j, ':'))) {
			free(key);
			break;
		}
		if (!strcmp(key, "version") && !have_version) {
			uint64_t ver;
			size_t vpos = (ws(&j), j.pos);
			have_version = true;
			if (!(rc = integer(&j, UINT32_MAX, &ver, "version")) && ver != 2)
				rc = bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EUNSUPPORTED, 0,
						  "JSON varstore version %llu at octet %zu (only 2 is "
						  "known)", (unsigned long long)ver, vpos);
		} else if (!strcmp(key, "variables") && !have_vars) {
			have_vars = true;
			rc = variables(&j, st);
		} else if (!strcmp(key, "variables") || !strcmp(key, "version")) {
			rc = jerr(&j, kpos, "key \"%s\" given twice", key);
		} else {
			rc = jerr(&j, kpos, "unknown key \"%s\" (known: version, variables)", key);
		}
		free(key);
		if (rc)
			break;
		if (peek(&j, ',')) {
			j.pos++;
			continue;
		}
		if ((rc = expect(&j, '}')))
			break;
		ws(&j);
		if (j.pos != j.len)
			rc = jerr(&j, j.pos, "data after the JSON object");
		else if (!have_vars)
			rc = jerr(&j, 0, "no \"variables\" array");
		break;
	}
	if (rc) {
		bs_uefi_store_free(st);
		return rc;
	}
	*out = st;
	return BS_OK;
}

/* ---- formatting ------------------------------------------------------------------- */

struct ob {
	char *p;
	size_t len, cap;
	bool failed;
};

static void ob_put(struct ob *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->cap - b->len < n + 1) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc - b->len < n + 1) {
			if (nc > SIZE_MAX / 2) {
				b->failed = true;
				return;
			}
			nc *= 2;
		}
		char *np = realloc(b->p, nc);
		if (!np) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void ob_str(struct ob *b, const char *s)
{
	ob_put(b, s, strlen(s));
}

/* S as a JSON string the way Python's json.dumps writes it (ensure_ascii):
 * non-ASCII as \uXXXX (surrogate pairs beyond the BMP). */
static void ob_json_str(struct ob *b, const char *s)
{
	char e[16];
	ob_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t c = *p;
		size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		c = l == 1 ? c : l == 2 ? c & 0x1fu : l == 3 ? c & 0x0fu : c & 0x07u;
		for (size_t k = 1; k < l; k++)
			c = c << 6 | (p[k] & 0x3fu);
		p += l;
		const char *m = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
				: c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
				: c == '\f' ? "\\f" : NULL;
		if (m) {
			ob_str(b, m);
		} else if (c >= 0x20 && c < 0x7f) {
			e[0] = (char)c;
			ob_put(b, e, 1);
		} else if (c == 0x7f) {
			ob_put(b, "\x7f", 1);
		} else if (c < 0x10000) {
			snprintf(e, sizeof e, "\\u%04x", (unsigned)c);
			ob_str(b, e);
		} else {
			c -= 0x10000;
			snprintf(e, sizeof e, "\\u%04x\\u%04x", (unsigned)(0xd800 + (c >> 10)),
				 (unsigned)(0xdc00 + (c & 0x3ff)));
			ob_str(b, e);
		}
	}
	ob_put(b, "\"", 1);
}

static void ob_hex(struct ob *b, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char chunk[128];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		chunk[k++] = hex[p[i] >> 4];
		chunk[k++] = hex[p[i] & 15];
		if (k == sizeof chunk) {
			ob_put(b, chunk, k);
			k = 0;
		}
	}
	ob_put(b, chunk, k);
}

int bs_uefi_json_format(const struct bs_uefi_var *vars, size_t n, char **out, size_t *len)
{
	static const uint8_t zero[16];
	if ((!vars && n) || !out || !len)
		return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0, "NULL argument");
	struct ob b = {0};
	ob_str(&b, "{\n    \"version\": 2,\n    \"variables\": [");
	for (size_t i = 0; i < n; i++) {
		const struct bs_uefi_var *v = &vars[i];
		char g[37], num[16];
		if (!v->name || !bs_utf8_valid(v->name, strlen(v->name)) || (!v->data && v->data_len)) {
			free(b.p);
			return bs_error_set(NULL, NULL, NULL, BS_NO_OFFSET, BS_EINVAL, 0,
					    "variable %zu has no valid UTF-8 name or no data", i);
		}
		bs_uefi_guid_str(v->guid, g);
		ob_str(&b, i ? ",\n        {\n            \"name\": " : "\n        {\n            \"name\": ");
		ob_json_str(&b, v->name);
		ob_str(&b, ",\n            \"guid\": \"");
		ob_str(&b, g);
		snprintf(num, sizeof num, "%u", (unsigned)v->attributes);
		ob_str(&b, "\",\n            \"attr\": ");
		ob_str(&b, num);
		ob_str(&b, ",\n            \"data\": \"");
		ob_hex(&b, v->data, v->data_len);
		if (memcmp(v->timestamp, zero, 16)) {
			ob_str(&b, "\",\n            \"time\": \"");
			ob_hex(&b, v->timestamp, 16);
		}
		ob_str(&b, "\"\n        }");
	}
	ob_str(&b, n ? "\n    ]\n}" : "]\n}");
	if (b.failed) {
		free(b.p);
		return nomem();
	}
	*out = b.p;
	*len = b.len;
	return BS_OK;
}
