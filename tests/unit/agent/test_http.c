// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The agent's HTTP layer on a loopback port the kernel picks (unprivileged): routes by
 * exact path whatever the query, query arguments percent-decoded and told apart when
 * absent, given empty or repeated, the route's status and content type, 404 with the list
 * of routes, 405 with an Allow header, HEAD without a body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "agent/http.h"

static int route_echo(void *ctx, const struct kw_request *req, struct kw_buf *body,
		      const char **ctype)
{
	const char *since = kw_request_arg(req, "since"), *peer = kw_request_arg(req, "peer");

	(void)ctype;
	(*(int *)ctx)++;
	kw_buf_printf(body, "since=%s peer=%s", since ? since : "(none)", peer ? peer : "(none)");
	return 200;
}

static int route_bad(void *ctx, const struct kw_request *req, struct kw_buf *body,
		     const char **ctype)
{
	(void)ctx;
	(void)req;
	*ctype = "application/json";
	kw_buf_puts(body, "{\"error\":\"no\"}");
	return 400;
}

/* A route that fails: with a line of text (?text), or with nothing to say. */
static int route_fail(void *ctx, const struct kw_request *req, struct kw_buf *body,
		      const char **ctype)
{
	(void)ctx;
	(void)ctype;
	if (kw_request_arg(req, "text"))
		kw_buf_puts(body, "collect: \"boom\"\nsecond line\n");
	return 500;
}

static const struct kw_route routes[] = {
	{ "/echo", route_echo, 0, "since,peer,other" },
	{ "/api/v1/bad", route_bad, 0, "x" },
	{ "/fail", route_fail, 0, "text" },
};

struct reply {
	long status;
	char body[512];
	size_t len;
	char ctype[128];
	char allow[64];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct reply *r = ctx;
	size_t n = size * nmemb;

	if (r->len + n >= sizeof(r->body))
		return 0;
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct reply *r = ctx;
	size_t n = size * nmemb;

	if (n > 7 && !strncasecmp(data, "Allow: ", 7))
		snprintf(r->allow, sizeof(r->allow), "%.*s", (int)strcspn(data + 7, "\r\n"),
			 data + 7);
	return n;
}

static CURLcode fetch(unsigned short port, const char *method, const char *path, struct reply *r);

static void get(unsigned short port, const char *method, const char *path, struct reply *r)
{
	assert_int_equal(fetch(port, method, path, r), CURLE_OK);
}

static CURLcode fetch(unsigned short port, const char *method, const char *path, struct reply *r)
{
	CURLcode ret;
	char url[256];
	char *ctype = NULL;
	CURL *h = curl_easy_init();

	assert_non_null(h);
	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	ret = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
	snprintf(r->ctype, sizeof(r->ctype), "%s", ctype ? ctype : "");
	curl_easy_cleanup(h);
	return ret;
}

static void test_routes(void **state)
{
	struct kw_http *http;
	struct reply r;
	unsigned short port;
	int calls = 0;

	(void)state;
	http = kw_http_start("127.0.0.1", 0, routes, 3, &calls);
	assert_non_null(http);
	port = kw_http_port(http);
	assert_true(port > 0);

	get(port, "GET", "/echo", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "since=(none) peer=(none)");
	assert_string_equal(r.ctype, "text/plain; charset=utf-8");

	get(port, "GET", "/echo?since=42&peer=%5Bfd77%3A%3A2%5D%3A8080&other=1", &r);
	assert_string_equal(r.body, "since=42 peer=[fd77::2]:8080");
	get(port, "GET", "/echo?since", &r);
	assert_string_equal(r.body, "since= peer=(none)");
	get(port, "GET", "/echo?since=&peer=a+b", &r);
	assert_string_equal(r.body, "since= peer=a b");
	get(port, "GET", "/echo?since=1&since=2", &r);
	assert_string_equal(r.body, "since=1 peer=(none)");

	get(port, "GET", "/api/v1/bad?x=1", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(r.body, "{\"error\":\"no\"}");

	get(port, "HEAD", "/echo", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);

	/* the path matches exactly; the query is no part of it */
	get(port, "GET", "/echo/", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "not found: try /echo, /api/v1/bad, /fail\n");
	get(port, "GET", "/nope?since=1", &r);
	assert_int_equal(r.status, 404);

	/* arguments a route does not take are refused, never ignored */
	calls = 0;
	get(port, "GET", "/echo?sinc=1", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "{\"error\":\"unknown query argument 'sinc' (this path "
				    "takes since,peer,other)\"}\n");
	get(port, "GET", "/echo?since=1&pe", &r);
	assert_int_equal(r.status, 400);
	get(port, "GET", "/echo?peer&other&since=", &r);
	assert_int_equal(r.status, 200);
	get(port, "GET", "/echo?sincesince", &r);
	assert_int_equal(r.status, 400);
	get(port, "GET", "/echo?", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(calls, 2);

	calls = 0;
	get(port, "POST", "/echo", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "GET, HEAD");
	get(port, "DELETE", "/nope", &r);
	assert_int_equal(r.status, 405);
	assert_int_equal(calls, 0);

	kw_http_stop(http);
}

/* Every 5xx: a JSON body that says why (the route's first line), never an empty one. */
static void test_server_errors(void **state)
{
	struct kw_http *http;
	struct reply r;

	(void)state;
	http = kw_http_start("127.0.0.1", 0, routes, 3, NULL);
	assert_non_null(http);
	get(kw_http_port(http), "GET", "/fail?text", &r);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(r.body, "{\"error\":\"collect: \\\"boom\\\"\"}\n");
	get(kw_http_port(http), "GET", "/fail", &r);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(r.body, "{\"error\":\"internal error\"}\n");
	kw_http_stop(http);
}

static void target(const char *uri, unsigned int status, const char *why)
{
	const char *w = NULL;

	assert_int_equal(kw_http_check_target(uri, &w), status);
	if (why)
		assert_string_equal(w, why);
}

/* The raw request target, before any decoding. */
static void test_check_target(void **state)
{
	char big[KW_HTTP_MAX_TARGET + 2], args[128];
	unsigned int i;

	(void)state;
	target("/metrics", 0, NULL);
	target("/api/v1/events?since=1&limit=10", 0, NULL);
	target("/api/v1/doctor?peer=%5Bfd00%3A%3A1%5D%3A80", 0, NULL);
	target("/x?a=%0a", 0, NULL); /* an encoded byte other than NUL is the route's to judge */
	target("/healthz%00.json", 400, "percent-encoded path (paths are plain ASCII)");
	target("/%6detrics", 400, "percent-encoded path (paths are plain ASCII)");
	target("/api/v1/events?since=1%00abc", 400, "NUL byte in the query");
	target("/api/v1/doctor?peer=1.2.3.4%00:80", 400, "NUL byte in the query");
	target("/metrics\x7f", 400, "request target with a control character or a non-ASCII byte");
	target("/metrics\xc3\xa9", 400,
	       "request target with a control character or a non-ASCII byte");
	target("/metrics?a=\x01", 400,
	       "request target with a control character or a non-ASCII byte");

	/* KW_HTTP_MAX_ARGS arguments pass, one more does not */
	snprintf(args, sizeof(args), "/x?a");
	for (i = 1; i < KW_HTTP_MAX_ARGS; i++)
		strcat(args, "&a");
	target(args, 0, NULL);
	strcat(args, "&");
	target(args, 400, "more than 16 query arguments");

	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[KW_HTTP_MAX_TARGET] = '\0';
	target(big, 0, NULL);
	big[KW_HTTP_MAX_TARGET] = 'a';
	big[KW_HTTP_MAX_TARGET + 1] = '\0';
	target(big, 414, "request target longer than 4096 bytes");
}

/* What a client sends raw reaches no route (curl sends the target as given). */
static void test_refused_targets(void **state)
{
	struct kw_http *http;
	struct reply r;
	int calls = 0;

	(void)state;
	http = kw_http_start("127.0.0.1", 0, routes, 3, &calls);
	assert_non_null(http);
	get(kw_http_port(http), "GET", "/%65cho", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(r.body,
			    "{\"error\":\"percent-encoded path (paths are plain ASCII)\"}\n");
	get(kw_http_port(http), "GET", "/echo?since=1%00abc", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "{\"error\":\"NUL byte in the query\"}\n");
	assert_int_equal(calls, 0);
	get(kw_http_port(http), "GET", "/echo?since=1", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(calls, 1);
	kw_http_stop(http);
}

static void test_port_in_use(void **state)
{
	struct kw_http *a, *b;

	(void)state;
	a = kw_http_start("127.0.0.1", 0, routes, 2, NULL);
	assert_non_null(a);
	errno = 0;
	b = kw_http_start("127.0.0.1", kw_http_port(a), routes, 2, NULL);
	assert_null(b);
	assert_int_equal(errno, EADDRINUSE);
	kw_http_stop(a);
	kw_http_stop(NULL);
}

/*
 * A streamed body read PART_MAX bytes at a time at most, so that it takes several reads
 * (libmicrohttpd asks for up to 1 MiB); with fail_at, that read fails instead.
 */
struct parts {
	unsigned int next, fail_at, released;
	size_t at;     /* of PARTS, read so far */
	size_t max;    /* the largest buffer given */
	uint64_t size; /* announced */
};

#define PARTS	 "part 0\npart 1\npart 2\n"
#define PART_MAX 7

static ssize_t parts_read(void *cls, char *buf, size_t max)
{
	struct parts *p = cls;
	size_t n = strlen(PARTS) - p->at;

	if (max > p->max)
		p->max = max;
	if (p->next++ == p->fail_at)
		return -EIO;
	if (n > max)
		n = max;
	if (n > PART_MAX)
		n = PART_MAX;
	memcpy(buf, PARTS + p->at, n);
	p->at += n;
	return n;
}

static void parts_release(void *cls)
{
	__atomic_add_fetch(&((struct parts *)cls)->released, 1, __ATOMIC_SEQ_CST);
}

static int route_stream(void *ctx, const struct kw_request *req, struct kw_buf *body,
			const char **ctype)
{
	struct parts *p = ctx;

	(void)body;
	*ctype = "text/x-parts";
	kw_request_stream(req, &(struct kw_stream){ .read = parts_read,
						    .release = parts_release,
						    .cls = p,
						    .size = p->size });
	return 200;
}

static const struct kw_route stream_routes[] = {
	{ "/parts", route_stream, 0, NULL },
};

/* The release runs on the server's thread once the response is done with. */
static unsigned int released(struct parts *p)
{
	unsigned int i;

	for (i = 0; i < 200 && !__atomic_load_n(&p->released, __ATOMIC_SEQ_CST); i++)
		usleep(5000);
	return __atomic_load_n(&p->released, __ATOMIC_SEQ_CST);
}

static void test_stream(void **state)
{
	struct parts p = { .fail_at = 99 };
	struct kw_http *http;
	struct reply r;
	unsigned short port;

	(void)state;
	http = kw_http_start("127.0.0.1", 0, stream_routes, 1, &p);
	assert_non_null(http);
	port = kw_http_port(http);

	get(port, "GET", "/parts", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/x-parts");
	assert_string_equal(r.body, PARTS);
	assert_true(p.max >= PART_MAX);
	assert_true(p.next > 3); /* several reads, and the one that ends the body */
	assert_int_equal(released(&p), 1);

	/* with its length announced (Content-Length) */
	memset(&p, 0, sizeof(p));
	p.fail_at = 99;
	p.size = strlen(PARTS);
	get(port, "GET", "/parts", &r);
	assert_string_equal(r.body, PARTS);
	assert_int_equal(released(&p), 1);

	/* a body longer or shorter than announced is cut, never passed as whole */
	memset(&p, 0, sizeof(p));
	p.fail_at = 99;
	p.size = strlen(PARTS) + 1;
	assert_int_not_equal(fetch(port, "GET", "/parts", &r), CURLE_OK);
	assert_int_equal(released(&p), 1);
	memset(&p, 0, sizeof(p));
	p.fail_at = 99;
	p.size = strlen(PARTS) - 1;
	assert_int_not_equal(fetch(port, "GET", "/parts", &r), CURLE_OK);
	assert_int_equal(released(&p), 1);

	/* a HEAD asks for no part, but releases the stream */
	memset(&p, 0, sizeof(p));
	p.fail_at = 99;
	get(port, "HEAD", "/parts", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	assert_int_equal(released(&p), 1);

	/* a part that fails cuts the response: the client must not take it as whole */
	memset(&p, 0, sizeof(p));
	p.fail_at = 1;
	assert_int_not_equal(fetch(port, "GET", "/parts", &r), CURLE_OK);
	assert_int_equal(released(&p), 1);

	kw_http_stop(http);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_server_errors),	cmocka_unit_test(test_check_target),
		cmocka_unit_test(test_refused_targets), cmocka_unit_test(test_stream),
	};
	int ret;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
