// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The web configuration file: node_exporter's shape accepted, every other key an error
 * naming its line, bcrypt hashes checked at parse time, passwords checked with bcrypt,
 * the certificate and key read beside the file, an unreadable one named at start-up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/webcfg.h"

/* bcrypt of "pw", cost 4 (htpasswd -nbBC 4 would make a $2y$ one) */
#define HASH "$2b$04$WUSFhoGboqPkhhOVZ4fFGOEp7WiErBP9zwvAMVfvYrDCxqSMaYNcy"

static int parse(const char *text, struct kw_webcfg *c, char *err)
{
	return kw_webcfg_parse(text, strlen(text), c, err, 256);
}

static void test_full(void **state)
{
	struct kw_webcfg c;
	char err[256];

	(void)state;
	assert_int_equal(parse("# node_exporter's shape\n"
			       "tls_server_config:\n"
			       "  cert_file: server.pem\n"
			       "  key_file: \"server.key\"\n"
			       "  min_version: TLS13\n"
			       "  client_auth_type: NoClientCert\n"
			       "basic_auth_users:\n"
			       "  alice: " HASH "\n"
			       "  bob: '" HASH "'\n",
			       &c, err),
			 0);
	assert_string_equal(err, "");
	assert_string_equal(c.cert_file, "server.pem");
	assert_string_equal(c.key_file, "server.key");
	assert_null(c.cert_pem); /* parse reads no file */
	assert_string_equal(c.priorities, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
	assert_int_equal(c.nusers, 2);
	assert_string_equal(c.users[0].name, "alice");
	assert_string_equal(c.users[1].hash, HASH);

	assert_int_equal(kw_webcfg_check_user(&c, "alice", "pw"), 1);
	assert_non_null(c.users[0].ok);
	assert_int_equal(kw_webcfg_check_user(&c, "alice", "pw"), 1); /* from the cache */
	assert_int_equal(kw_webcfg_check_user(&c, "alice", "pw "), 0);
	assert_int_equal(kw_webcfg_check_user(&c, "alice", "p"), 0);
	assert_int_equal(kw_webcfg_check_user(&c, "alice", ""), 0);
	assert_int_equal(kw_webcfg_check_user(&c, "carol", "pw"), 0);
	assert_int_equal(kw_webcfg_check_user(&c, "bob", "pw"), 1);
	kw_webcfg_free(&c);
}

static void test_empty_and_partial(void **state)
{
	struct kw_webcfg c;
	char err[256];

	(void)state;
	/* nothing configured: plain HTTP, no users */
	assert_int_equal(parse("", &c, err), 0);
	assert_null(c.cert_file);
	assert_int_equal(c.nusers, 0);
	kw_webcfg_free(&c);
	assert_int_equal(parse("# only a comment\n", &c, err), 0);
	kw_webcfg_free(&c);
	assert_int_equal(parse("tls_server_config:\nbasic_auth_users:\n", &c, err), 0);
	assert_null(c.cert_file);
	kw_webcfg_free(&c);

	/* the default versions: TLS 1.2 and 1.3 */
	assert_int_equal(parse("tls_server_config: {cert_file: a, key_file: b}\n", &c, err), 0);
	assert_string_equal(c.priorities, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
	kw_webcfg_free(&c);
	assert_int_equal(parse("tls_server_config: {cert_file: a, key_file: b, min_version: "
			       "TLS10, max_version: TLS11}\n",
			       &c, err),
			 0);
	assert_string_equal(c.priorities, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0");
	kw_webcfg_free(&c);

	/* users without TLS: allowed (behind a TLS proxy, say) */
	assert_int_equal(parse("basic_auth_users:\n  alice: " HASH "\n", &c, err), 0);
	assert_int_equal(c.nusers, 1);
	kw_webcfg_free(&c);
}

static void bad(const char *text, const char *want)
{
	struct kw_webcfg c;
	char err[256];

	assert_int_equal(kw_webcfg_parse(text, strlen(text), &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_null(c.users); /* left empty */
	assert_null(c.cert_file);
}

static void test_errors(void **state)
{
	(void)state;
	bad("tls_server_config:\n  cert_file: a\n  key_fil: b\n",
	    "line 3: unknown key 'key_fil' in tls_server_config (cert_file, key_file, "
	    "min_version, max_version, client_auth_type)");
	bad("basic_auth_user:\n  a: b\n",
	    "line 1: unknown key 'basic_auth_user' (tls_server_config, basic_auth_users)");
	bad("http_server_config:\n  http2: true\n",
	    "line 1: http_server_config is not supported by keepwatchd");
	bad("tls_server_config:\n  cert_file: a\n", "tls_server_config: cert_file and key_file go "
						    "together");
	bad("tls_server_config:\n  min_version: TLS12\n",
	    "tls_server_config: a version without cert_file and key_file");
	bad("tls_server_config: {cert_file: a, key_file: b, min_version: TLS14}\n",
	    "line 1: tls_server_config: min_version 'TLS14' is not TLS10, TLS11, TLS12 or TLS13");
	bad("tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, "
	    "max_version: TLS12}\n",
	    "tls_server_config: min_version is above max_version");
	bad("tls_server_config:\n  cert_file: a\n  cert_file: b\n",
	    "line 3: tls_server_config: cert_file given twice");
	bad("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n",
	    "line 2: tls_server_config: client_auth_type 'RequireAndVerifyClientCert': only "
	    "NoClientCert is supported (no client certificates)");
	bad("tls_server_config:\n  client_ca_file: ca.pem\n",
	    "line 2: tls_server_config: client_ca_file is not supported by keepwatchd");
	bad("basic_auth_users:\n  alice: secret\n",
	    "line 2: basic_auth_users: the password of 'alice' is not a bcrypt hash ($2b$...; "
	    "make one with htpasswd -nBC 10 alice)");
	bad("basic_auth_users:\n  alice: $2b$04$short\n",
	    "line 2: basic_auth_users: the password of 'alice' is not a bcrypt hash ($2b$...; "
	    "make one with htpasswd -nBC 10 alice)");
	bad("basic_auth_users:\n  alice: " HASH "\n  alice: " HASH "\n",
	    "line 3: basic_auth_users: user 'alice' given twice");
	bad("basic_auth_users:\n  'a:b': " HASH "\n",
	    "line 2: basic_auth_users: user name 'a:b' is empty or has a ':'");
	bad("basic_auth_users:\n  alice: [a, b]\n",
	    "line 2: basic_auth_users: alice: a plain value expected");
	bad("basic_auth_users: alice\n",
	    "line 1: basic_auth_users: a mapping (key: value lines) expected");
	bad("basic_auth_users: {}\nbasic_auth_users: {}\n", "line 2: basic_auth_users given twice");
	bad("- a\n- b\n", "line 1: a mapping (key: value lines) expected");
	bad("tls_server_config: {}\n---\nbasic_auth_users: {}\n",
	    "line 2: one YAML document expected, not several");
	bad("tls_server_config:\n  cert_file: 'a\n", "line 3: found unexpected end of stream");
	bad("tls_server_config:\n  cert_file: \"a\\0b\"\n",
	    "line 2: tls_server_config: cert_file: a plain value expected");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "basic_auth_users: {}\0tls_server_config: {}";
	struct kw_webcfg c;
	char err[256];

	(void)state;
	assert_int_equal(kw_webcfg_parse(text, sizeof(text) - 1, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a NUL byte in the file");
}

static const char *write_file(const char *dir, const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_load(void **state)
{
	char dir[] = "/tmp/kw-webcfg-XXXXXX", cfgpath[512], err[512];
	struct kw_webcfg c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cfgpath, sizeof(cfgpath), "%s",
		 write_file(dir, "web.yml",
			    "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n"));

	/* a certificate that cannot be read is named at start-up */
	assert_int_equal(kw_webcfg_load(cfgpath, &c, err, sizeof(err)), -ENOENT);
	assert_true(strstr(err, "tls_server_config: cert_file ") == err);
	assert_non_null(strstr(err, "/c.pem: No such file or directory"));
	assert_null(c.cert_file);

	write_file(dir, "c.pem", "CERT");
	assert_int_equal(kw_webcfg_load(cfgpath, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "key_file "));
	write_file(dir, "k.pem", "KEY");
	/* both read (relative to the file's folder), then checked as TLS will use them */
	assert_int_equal(kw_webcfg_load(cfgpath, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "tls_server_config: the key and certificate: The requested "
				 "data were not available.");
	assert_null(c.cert_pem);

	assert_int_equal(kw_webcfg_load("/nonexistent/web.yml", &c, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "No such file or directory");
	assert_int_equal(kw_webcfg_load(dir, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "not a regular file");

	unlink(cfgpath);
	snprintf(cfgpath, sizeof(cfgpath), "%s/c.pem", dir);
	unlink(cfgpath);
	snprintf(cfgpath, sizeof(cfgpath), "%s/k.pem", dir);
	unlink(cfgpath);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),   cmocka_unit_test(test_empty_and_partial),
		cmocka_unit_test(test_errors), cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
