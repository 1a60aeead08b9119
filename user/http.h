/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The agent's HTTP server (libmicrohttpd): GET routes by exact path, 404/405 otherwise. */
#ifndef KW_HTTP_H
#define KW_HTTP_H

#include "buf.h"

/* Fills body and sets *ctype; returns the HTTP status. */
typedef int (*kw_route_fn)(void *ctx, struct kw_buf *body, const char **ctype);

struct kw_route {
	const char *path;
	kw_route_fn fn;
};

struct kw_http;

/* Starts serving on host:port (host "" for every address); NULL with errno set. */
struct kw_http *kw_http_start(const char *host, unsigned short port, const struct kw_route *routes,
			      unsigned int nroutes, void *ctx);
void kw_http_stop(struct kw_http *h);

#endif /* KW_HTTP_H */
