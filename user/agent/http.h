/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The agent's HTTP server (libmicrohttpd): GET and HEAD routes by exact path, with the
 * query arguments available to the route; 404 for other paths, 405 for other methods;
 * TLS and basic authentication when a web configuration asks for them (agent/webcfg.h).
 */
#ifndef KW_HTTP_H
#define KW_HTTP_H

#include <stdint.h>
#include <sys/types.h>
#include "lib/buf.h"

struct kw_webcfg;

#define KW_STR_(x) #x
#define KW_STR(x)  KW_STR_(x)

/*
 * The server's limits (README, "Limits of the HTTP server"). Connections: at most
 * KW_HTTP_MAX_CONNECTIONS (fewer if the limit of open files is lower), of which
 * KW_HTTP_MAX_PER_ADDRESS from one client address; closed after KW_HTTP_IDLE_TIMEOUT s
 * without a byte either way, or when the headers of a request are not in
 * KW_HTTP_HEADER_DEADLINE s after the connection or its last request. A request target
 * of more than KW_HTTP_MAX_TARGET bytes gets 414, more than KW_HTTP_MAX_ARGS query
 * arguments 400; headers and arguments must fit in KW_HTTP_CONNECTION_MEMORY (431
 * beyond). At most KW_HTTP_MAX_HEAVY answers of routes marked KW_ROUTE_HEAVY are in
 * flight at once; more get 503 with Retry-After: 1.
 */
#define KW_HTTP_MAX_CONNECTIONS	  4096
#define KW_HTTP_FD_RESERVE	  256
#define KW_HTTP_MAX_PER_ADDRESS	  128
#define KW_HTTP_IDLE_TIMEOUT	  10
#define KW_HTTP_HEADER_DEADLINE	  10
#define KW_HTTP_MAX_TARGET	  4096
#define KW_HTTP_MAX_ARGS	  16
#define KW_HTTP_CONNECTION_MEMORY (256 * 1024)
#define KW_HTTP_MAX_HEAVY	  4
#define KW_HTTP_401_BODY	  "{\"error\":\"unauthorized\"}\n"

/*
 * 0 if the raw request target (as sent, before any decoding) may be routed, else the
 * status to refuse it with (400, 414) and *why.
 */
unsigned int kw_http_check_target(const char *uri, const char **why);

/* One request, as a route sees it. */
struct kw_request;

/*
 * The value of query argument name, percent-decoded: NULL when absent, "" when given
 * without a value ("?since" or "?since="). Repeated arguments: the first.
 */
const char *kw_request_arg(const struct kw_request *req, const char *name);

/* Fills body and sets *ctype (text/plain unless set); returns the HTTP status. */
typedef int (*kw_route_fn)(void *ctx, const struct kw_request *req, struct kw_buf *body,
			   const char **ctype);

/*
 * A body written while it is sent, for pages too large to hold whole: read() writes the
 * next bytes of the body into buf, at most max (the server's send buffer, so that a page
 * written straight into it is copied once, by the kernel), and returns how many: at
 * least 1 until the body ends, then 0; -errno on failure (the connection is then cut, as
 * the status has been sent; the client sees a truncated response). Filling buf saves
 * small sends. size: the body's exact length, sent as Content-Length (a body of another
 * length is cut too), or 0 if unknown (chunked encoding). release() frees cls, also when
 * nothing was sent.
 */
struct kw_stream {
	ssize_t (*read)(void *cls, char *buf, size_t max);
	void (*release)(void *cls);
	void *cls;
	uint64_t size;
};

/*
 * From a route: answer with st instead of the body (the route's status and content type
 * still apply). The stream is released in every case.
 */
void kw_request_stream(const struct kw_request *req, const struct kw_stream *st);

/* A route whose answers are large (a snapshot, a page): few of them at once. */
#define KW_ROUTE_HEAVY 0x1

struct kw_route {
	const char *path;
	kw_route_fn fn;
	unsigned int flags; /* KW_ROUTE_* */
	const char *args;   /* the query arguments it takes, "since,limit"; NULL: none (400) */
};

struct kw_http;

/*
 * A socket listening on host:port (host "" for every address, IPv6 and IPv4; port 0 for
 * any free port): bound before anything else is set up, so that a port in use stops a
 * start before it has done anything. The fd, or -errno.
 */
int kw_http_listen(const char *host, unsigned short port);
/*
 * Starts serving on a socket of kw_http_listen(), which it then owns (closed with the
 * server); routes must outlive the server. NULL with errno set (fd still the caller's).
 */
struct kw_http *kw_http_serve(int fd, const struct kw_route *routes, unsigned int nroutes,
			      void *ctx);
/* The same with TLS and users from web (NULL: plain HTTP), which must outlive the server. */
struct kw_http *kw_http_serve_web(int fd, const struct kw_route *routes, unsigned int nroutes,
				  void *ctx, struct kw_webcfg *web);
/* kw_http_listen, then kw_http_serve. NULL with errno set. */
struct kw_http *kw_http_start(const char *host, unsigned short port, const struct kw_route *routes,
			      unsigned int nroutes, void *ctx);
/* The port it listens on, or 0 if unknown. */
unsigned short kw_http_port(const struct kw_http *h);
void kw_http_stop(struct kw_http *h);

#endif /* KW_HTTP_H */
