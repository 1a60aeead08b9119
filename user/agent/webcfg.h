/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The web configuration file (--web.config.file), in node_exporter's YAML shape where it
 * fits: tls_server_config (cert_file, key_file, min_version, max_version) and
 * basic_auth_users (name: bcrypt hash). Anything else is an error that names its line.
 */
#ifndef KW_WEBCFG_H
#define KW_WEBCFG_H

#include <stddef.h>

struct kw_webuser {
	char *name;
	char *hash; /* bcrypt: $2a$, $2b$ or $2y$ */
	char *ok;   /* the last password that matched hash, so that bcrypt runs once */
};

struct kw_webcfg {
	char *cert_file, *key_file; /* as written (relative to the file's folder) */
	char *cert_pem, *key_pem;   /* their contents (kw_webcfg_load); NULL: plain HTTP */
	char priorities[96];	    /* GnuTLS's, from min_version and max_version */
	struct kw_webuser *users;
	unsigned int nusers;
};

/*
 * Parses a configuration of len bytes (pure: reads no file). 0, or -EINVAL with a message
 * in err ("line 3: unknown key 'foo' in tls_server_config ..."), -ENOMEM; cfg is then
 * left empty.
 */
int kw_webcfg_parse(const char *text, size_t len, struct kw_webcfg *cfg, char *err, size_t errlen);
/*
 * Reads and parses the file at path, then the certificate and key it names (relative
 * paths from the file's folder). 0 or -errno with a message in err.
 */
int kw_webcfg_load(const char *path, struct kw_webcfg *cfg, char *err, size_t errlen);
/* 1 if user is configured and pass is its password, else 0. Not thread-safe. */
int kw_webcfg_check_user(struct kw_webcfg *cfg, const char *user, const char *pass);
void kw_webcfg_free(struct kw_webcfg *cfg);

#endif /* KW_WEBCFG_H */
