// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The web configuration file: read with libyaml's event parser (no YAML written by hand),
 * passwords checked with libxcrypt's bcrypt (crypt_r), the result compared in constant
 * time. Every key is known or an error naming its line: a typo must not leave a scrape
 * endpoint open that its operator believes closed.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <gnutls/gnutls.h>
#include <yaml.h>

#include "agent/webcfg.h"

#define MAX_FILE_SIZE (1024 * 1024) /* the configuration, a certificate or a key */
#define MAX_USERS     64

struct reader {
	yaml_parser_t p;
	struct kw_webcfg *cfg;
	char *err;
	size_t errlen;
	int min_version, max_version; /* 0: TLS 1.0 ... 3: TLS 1.3; -1 unset */
};

static int __attribute__((format(printf, 3, 4)))
fail(struct reader *r, const yaml_event_t *ev, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (ev)
		n = snprintf(r->err, r->errlen, "line %zu: ", ev->start_mark.line + 1);
	if (n < r->errlen) {
		va_start(ap, fmt);
		vsnprintf(r->err + n, r->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* The next event; a YAML syntax error is reported with its line. */
static int next(struct reader *r, yaml_event_t *ev)
{
	if (yaml_parser_parse(&r->p, ev))
		return 0;
	memset(ev, 0, sizeof(*ev));
	if (r->p.error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	snprintf(r->err, r->errlen, "line %zu: %s", r->p.problem_mark.line + 1,
		 r->p.problem ? r->p.problem : "not YAML");
	return -EINVAL;
}

static const char *scalar(const yaml_event_t *ev)
{
	return (const char *)ev->data.scalar.value;
}

/* A scalar with no NUL byte inside (YAML can write one as "\0"). */
static int plain(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT && strlen(scalar(ev)) == ev->data.scalar.length;
}

/* "key:" with nothing after it */
static int null_value(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.plain_implicit &&
	       (!ev->data.scalar.length || !strcmp(scalar(ev), "~") || !strcmp(scalar(ev), "null"));
}

static int set_string(struct reader *r, const yaml_event_t *ev, const char *key, char **field,
		      const char *value)
{
	if (*field)
		return fail(r, ev, "tls_server_config: %s given twice", key);
	*field = strdup(value);
	return *field ? 0 : -ENOMEM;
}

static int tls_version(struct reader *r, const yaml_event_t *ev, const char *key, const char *value,
		       int *v)
{
	static const char *const names[] = { "TLS10", "TLS11", "TLS12", "TLS13" };
	int i;

	if (*v >= 0)
		return fail(r, ev, "tls_server_config: %s given twice", key);
	for (i = 0; i < 4; i++) {
		if (!strcmp(value, names[i])) {
			*v = i;
			return 0;
		}
	}
	return fail(r, ev, "tls_server_config: %s '%s' is not TLS10, TLS11, TLS12 or TLS13", key,
		    value);
}

static int tls_pair(struct reader *r, const yaml_event_t *ev, const char *key, const char *value)
{
	struct kw_webcfg *c = r->cfg;

	if (!strcmp(key, "cert_file"))
		return set_string(r, ev, key, &c->cert_file, value);
	if (!strcmp(key, "key_file"))
		return set_string(r, ev, key, &c->key_file, value);
	if (!strcmp(key, "min_version"))
		return tls_version(r, ev, key, value, &r->min_version);
	if (!strcmp(key, "max_version"))
		return tls_version(r, ev, key, value, &r->max_version);
	if (!strcmp(key, "client_auth_type")) {
		if (!strcmp(value, "NoClientCert"))
			return 0;
		return fail(r, ev,
			    "tls_server_config: client_auth_type '%s': only NoClientCert "
			    "is supported (no client certificates)",
			    value);
	}
	if (!strcmp(key, "client_ca_file") || !strcmp(key, "cipher_suites") ||
	    !strcmp(key, "curve_preferences") || !strcmp(key, "prefer_server_cipher_suites"))
		return fail(r, ev, "tls_server_config: %s is not supported by keepwatchd", key);
	return fail(r, ev,
		    "unknown key '%s' in tls_server_config (cert_file, key_file, min_version, "
		    "max_version, client_auth_type)",
		    key);
}

static int is_bcrypt(const char *hash)
{
	struct crypt_data *cd;
	const char *out;
	int ok;

	if (strncmp(hash, "$2a$", 4) && strncmp(hash, "$2b$", 4) && strncmp(hash, "$2y$", 4))
		return 0;
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return -ENOMEM;
	out = crypt_r("", hash, cd);
	ok = out && out[0] == '$' && strlen(out) == strlen(hash) && !strncmp(out, hash, 29);
	free(cd);
	return ok;
}

static int user_pair(struct reader *r, const yaml_event_t *ev, const char *name, const char *hash)
{
	struct kw_webcfg *c = r->cfg;
	struct kw_webuser *u;
	unsigned int i;
	int ok;

	for (i = 0; i < c->nusers; i++)
		if (!strcmp(c->users[i].name, name))
			return fail(r, ev, "basic_auth_users: user '%s' given twice", name);
	if (!*name || strchr(name, ':'))
		return fail(r, ev, "basic_auth_users: user name '%s' is empty or has a ':'", name);
	if (c->nusers == MAX_USERS)
		return fail(r, ev, "basic_auth_users: more than %u users", MAX_USERS);
	ok = is_bcrypt(hash);
	if (ok < 0)
		return ok;
	if (!ok)
		return fail(r, ev,
			    "basic_auth_users: the password of '%s' is not a bcrypt hash ($2b$...; "
			    "make one with htpasswd -nBC 10 %s)",
			    name, name);
	u = realloc(c->users, (c->nusers + 1) * sizeof(*u));
	if (!u)
		return -ENOMEM;
	c->users = u;
	u += c->nusers;
	memset(u, 0, sizeof(*u));
	u->name = strdup(name);
	u->hash = strdup(hash);
	c->nusers++; /* freed with the others even if a strdup failed */
	return u->name && u->hash ? 0 : -ENOMEM;
}

typedef int (*pair_fn)(struct reader *r, const yaml_event_t *ev, const char *key,
		       const char *value);

/* A mapping of plain keys to plain values, each given to fn; "section:" alone is empty. */
static int read_map(struct reader *r, const char *section, pair_fn fn)
{
	yaml_event_t ev, val;
	int err;

	err = next(r, &ev);
	if (err)
		return err;
	if (null_value(&ev)) {
		yaml_event_delete(&ev);
		return 0;
	}
	if (ev.type != YAML_MAPPING_START_EVENT) {
		err = fail(r, &ev, "%s: a mapping (key: value lines) expected", section);
		yaml_event_delete(&ev);
		return err;
	}
	yaml_event_delete(&ev);
	for (;;) {
		err = next(r, &ev);
		if (err)
			return err;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (!plain(&ev)) {
			err = fail(r, &ev, "%s: a plain key expected", section);
			yaml_event_delete(&ev);
			return err;
		}
		err = next(r, &val);
		if (!err && !plain(&val))
			err = fail(r, &val, "%s: %s: a plain value expected", section, scalar(&ev));
		if (!err)
			err = fn(r, &ev, scalar(&ev), scalar(&val));
		yaml_event_delete(&val);
		yaml_event_delete(&ev);
		if (err)
			return err;
	}
}

/* The top mapping's keys, each once. */
static int read_top(struct reader *r)
{
	unsigned int seen = 0, bit;
	yaml_event_t ev;
	const char *key;
	int err;

	for (;;) {
		err = next(r, &ev);
		if (err)
			return err;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		key = plain(&ev) ? scalar(&ev) : "";
		bit = !strcmp(key, "tls_server_config") ? 1 :
		      !strcmp(key, "basic_auth_users")	? 2 :
							  0;
		if (!bit && !strcmp(key, "http_server_config"))
			err = fail(r, &ev, "http_server_config is not supported by keepwatchd");
		else if (!bit)
			err = fail(r, &ev, "unknown key '%s' (tls_server_config, basic_auth_users)",
				   key);
		else if (seen & bit)
			err = fail(r, &ev, "%s given twice", key);
		else
			err = read_map(r, key, bit == 1 ? tls_pair : user_pair);
		seen |= bit;
		yaml_event_delete(&ev);
		if (err)
			return err;
	}
}

/* One document, a mapping at its top, or nothing at all. */
static int read_stream(struct reader *r)
{
	yaml_event_t ev;
	int err, i;

	for (i = 0;; i++) {
		err = next(r, &ev);
		if (err)
			return err;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			return 0;
		case YAML_DOCUMENT_START_EVENT:
			if (i > 1)
				err = fail(r, &ev, "one YAML document expected, not several");
			break;
		case YAML_MAPPING_START_EVENT:
			err = read_top(r);
			break;
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		default:
			if (!null_value(&ev))
				err = fail(r, &ev, "a mapping (key: value lines) expected");
		}
		yaml_event_delete(&ev);
		if (err)
			return err;
	}
}

/* GnuTLS's priority string for the versions from min to max (0: TLS 1.0 ... 3: 1.3). */
static int priorities(struct reader *r, int min, int max)
{
	struct kw_webcfg *c = r->cfg;
	size_t n;
	int v;

	if (min < 0)
		min = 2; /* node_exporter's default: TLS 1.2 */
	if (max < 0)
		max = 3;
	if (min > max)
		return fail(r, NULL, "tls_server_config: min_version is above max_version");
	n = snprintf(c->priorities, sizeof(c->priorities), "NORMAL:-VERS-ALL");
	for (v = max; v >= min; v--)
		n += snprintf(c->priorities + n, sizeof(c->priorities) - n, ":+VERS-TLS1.%d", v);
	return 0;
}

static int check(struct reader *r)
{
	struct kw_webcfg *c = r->cfg;

	if (!c->cert_file != !c->key_file)
		return fail(r, NULL, "tls_server_config: cert_file and key_file go together");
	if (!c->cert_file && (r->min_version >= 0 || r->max_version >= 0))
		return fail(r, NULL, "tls_server_config: a version without cert_file and key_file");
	return priorities(r, r->min_version, r->max_version);
}

int kw_webcfg_parse(const char *text, size_t len, struct kw_webcfg *cfg, char *err, size_t errlen)
{
	struct reader r = {
		.cfg = cfg, .err = err, .errlen = errlen, .min_version = -1, .max_version = -1
	};
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (errlen)
		err[0] = '\0';
	if (memchr(text, '\0', len))
		return fail(&r, NULL, "a NUL byte in the file");
	if (!yaml_parser_initialize(&r.p))
		return -ENOMEM;
	yaml_parser_set_input_string(&r.p, (const unsigned char *)text, len);
	ret = read_stream(&r);
	if (!ret)
		ret = check(&r);
	yaml_parser_delete(&r.p);
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (ret)
		kw_webcfg_free(cfg);
	return ret;
}

/* The whole file at path, NUL-terminated, at most MAX_FILE_SIZE bytes. */
static int read_file(const char *path, char **out, size_t *outlen)
{
	struct stat st;
	ssize_t n;
	size_t len = 0;
	char *buf;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_SIZE) {
		err = errno ? -errno : S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		close(fd);
		return err;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size && (n = read(fd, buf + len, st.st_size - len)) > 0)
		len += n;
	close(fd);
	buf[len] = '\0';
	*out = buf;
	if (outlen)
		*outlen = len;
	return 0;
}

/* name relative to the folder of the configuration file at path */
static int read_beside(const char *path, const char *key, const char *name, char **out, char *err,
		       size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char full[4096];
	int ret;

	if (name[0] == '/' || !slash)
		snprintf(full, sizeof(full), "%s", name);
	else
		snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - path), path, name);
	ret = read_file(full, out, NULL);
	if (ret)
		snprintf(err, errlen, "tls_server_config: %s %s: %s", key, full,
			 ret == -EINVAL ? "not a regular file" : strerror(-ret));
	return ret;
}

/* The certificate and the key, as the server will take them: checked before BPF is loaded. */
static int check_pair(const struct kw_webcfg *cfg, char *err, size_t errlen)
{
	gnutls_datum_t cert = { (unsigned char *)cfg->cert_pem, strlen(cfg->cert_pem) };
	gnutls_datum_t key = { (unsigned char *)cfg->key_pem, strlen(cfg->key_pem) };
	gnutls_certificate_credentials_t cred;
	int ret;

	if (gnutls_certificate_allocate_credentials(&cred))
		return -ENOMEM;
	ret = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(cred);
	if (ret < 0) {
		snprintf(err, errlen, "tls_server_config: the key and certificate: %s",
			 gnutls_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

int kw_webcfg_load(const char *path, struct kw_webcfg *cfg, char *err, size_t errlen)
{
	size_t len;
	char *text;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	ret = read_file(path, &text, &len);
	if (ret) {
		snprintf(err, errlen, "%s", ret == -EINVAL ? "not a regular file" : strerror(-ret));
		return ret;
	}
	ret = kw_webcfg_parse(text, len, cfg, err, errlen);
	free(text);
	if (ret || !cfg->cert_file)
		return ret;
	ret = read_beside(path, "cert_file", cfg->cert_file, &cfg->cert_pem, err, errlen);
	if (!ret)
		ret = read_beside(path, "key_file", cfg->key_file, &cfg->key_pem, err, errlen);
	if (!ret)
		ret = check_pair(cfg, err, errlen);
	if (ret)
		kw_webcfg_free(cfg);
	return ret;
}

/* Equal strings, in a time that depends on their lengths only. */
static int same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = la != lb;

	for (i = 0; i < la && i < lb; i++)
		d |= a[i] ^ b[i];
	return !d;
}

static void forget(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

int kw_webcfg_check_user(struct kw_webcfg *cfg, const char *user, const char *pass)
{
	struct kw_webuser *u = NULL;
	struct crypt_data *cd;
	const char *out;
	unsigned int i;
	int ok;

	for (i = 0; i < cfg->nusers; i++)
		if (!strcmp(cfg->users[i].name, user))
			u = &cfg->users[i];
	if (u && u->ok && same(u->ok, pass))
		return 1;
	cd = calloc(1, sizeof(*cd));
	if (!cd || !cfg->nusers) {
		free(cd);
		return 0;
	}
	/* an unknown user costs a bcrypt too, so that the time does not tell users apart */
	out = crypt_r(pass, u ? u->hash : cfg->users[0].hash, cd);
	ok = u && out && same(out, u->hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (ok) {
		forget(&u->ok);
		u->ok = strdup(pass);
	}
	return ok;
}

void kw_webcfg_free(struct kw_webcfg *cfg)
{
	unsigned int i;

	for (i = 0; i < cfg->nusers; i++) {
		free(cfg->users[i].name);
		free(cfg->users[i].hash);
		forget(&cfg->users[i].ok);
	}
	free(cfg->users);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->cert_pem);
	forget(&cfg->key_pem);
	memset(cfg, 0, sizeof(*cfg));
}
