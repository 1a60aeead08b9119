// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * HTTP with libmicrohttpd, one internal polling thread: requests are served one at a
 * time, so route handlers need no locking among themselves (but a streamed body is
 * written while other requests are served, so it must not share state with them). Malformed requests are
 * answered by libmicrohttpd itself (400) and never reach the routes.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <microhttpd.h>

#include "agent/http.h"
#include "lib/log.h"

struct kw_http {
	struct MHD_Daemon *d; /* closes the listening socket when stopped */
	unsigned short port;  /* the one it listens on */
	const struct kw_route *routes;
	unsigned int nroutes;
	void *ctx;
};

struct kw_request {
	struct MHD_Connection *conn;
	struct kw_stream *stream; /* set by kw_request_stream */
};

void kw_request_stream(const struct kw_request *req, const struct kw_stream *st)
{
	if (req->stream->release) /* a second call: the first one is dropped */
		req->stream->release(req->stream->cls);
	*req->stream = *st;
}

const char *kw_request_arg(const struct kw_request *req, const char *name)
{
	const char *value = NULL;
	size_t len = 0;

	if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
					  &value, &len) != MHD_YES)
		return NULL;
	return value ? value : "";
}

/* "not found: try /metrics, /api/v1/upstreams, ..." */
static void not_found(const struct kw_http *h, struct kw_buf *body)
{
	unsigned int i;

	kw_buf_puts(body, "not found: try");
	for (i = 0; i < h->nroutes; i++)
		kw_buf_printf(body, "%s %s", i ? "," : "", h->routes[i].path);
	kw_buf_puts(body, "\n");
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *ctype,
			     struct kw_buf *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len = body->len;
	char *data = kw_buf_steal(body);

	r = MHD_create_response_from_buffer(len, data ? data : (char *)"",
					    data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * The send buffer a stream writes into, sent with one send() each time it is full: large
 * sends mean fewer calls, and fewer wake-ups of the client, for pages of tens of MB;
 * beyond 1 MiB nothing more was gained (BENCHMARKS.md).
 */
#define STREAM_PART (1024 * 1024)

struct streaming {
	struct kw_stream st;
	uint64_t written; /* by read(), so far */
};

/*
 * Content-Length promised st.size: a body longer or shorter must not pass as whole. The
 * server asks for no more than the size announced, so a longer body shows only in a
 * further read once it is all out; a shorter one ends early.
 */
static int check_size(struct streaming *sg, ssize_t n)
{
	char more;

	if (!sg->st.size || (n && sg->written < sg->st.size))
		return 0;
	if (sg->written == sg->st.size && !sg->st.read(sg->st.cls, &more, 1))
		return 0;
	kw_err("http: streamed body is not the %llu bytes announced: %llu%s (a bug)",
	       (unsigned long long)sg->st.size, (unsigned long long)sg->written,
	       n ? " and more" : "");
	return -EPROTO;
}

/* libmicrohttpd's content reader: buf is the response's send buffer, STREAM_PART long. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct streaming *sg = cls;
	ssize_t n;
	int err;

	(void)pos;
	n = sg->st.read(sg->st.cls, buf, max);
	if (n > (ssize_t)max)
		n = -EPROTO;
	if (n >= 0) {
		sg->written += n;
		err = check_size(sg, n);
		if (err)
			n = err;
	}
	if (n < 0) {
		kw_warn("http: response cut short: %s", strerror(-n));
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	return n ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_release(void *cls)
{
	struct streaming *sg = cls;

	sg->st.release(sg->st.cls);
	free(sg);
}

static enum MHD_Result reply_stream(struct MHD_Connection *conn, unsigned int status,
				    const char *ctype, const struct kw_stream *st)
{
	struct MHD_Response *r;
	struct streaming *sg;
	enum MHD_Result ret;

	sg = calloc(1, sizeof(*sg));
	if (!sg) {
		st->release(st->cls);
		return MHD_NO;
	}
	sg->st = *st;
	r = MHD_create_response_from_callback(st->size ? st->size : MHD_SIZE_UNKNOWN, STREAM_PART,
					      stream_read, sg, stream_release);
	if (!r) {
		stream_release(sg);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct kw_http *h = cls;
	struct kw_stream st = { 0 };
	struct kw_request req = { .conn = conn, .stream = &st };
	const char *ctype = "text/plain; charset=utf-8";
	struct kw_buf body;
	enum MHD_Result ret;
	unsigned int i;
	int status = MHD_HTTP_NOT_FOUND;

	(void)version;
	(void)upload_data;
	if (!*req_cls) {
		/* First call: headers only. Answer at the second, once any body is read. */
		*req_cls = (void *)1;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* discard request bodies */
		return MHD_YES;
	}
	kw_buf_init(&body);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		kw_buf_puts(&body, "method not allowed\n");
	} else {
		for (i = 0; i < h->nroutes; i++) {
			if (!strcmp(url, h->routes[i].path)) {
				status = h->routes[i].fn(h->ctx, &req, &body, &ctype);
				break;
			}
		}
		if (i == h->nroutes)
			not_found(h, &body);
	}
	if (st.read) {
		kw_buf_free(&body);
		return reply_stream(conn, status, ctype, &st);
	}
	if (body.err) {
		kw_buf_reset(&body);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		ctype = "text/plain; charset=utf-8";
	}
	ret = reply(conn, status, ctype, &body);
	kw_buf_free(&body);
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	kw_dbg("http: %s", msg);
}

int kw_http_listen(const char *host, unsigned short port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr *addr = (struct sockaddr *)&any;
	socklen_t addrlen = sizeof(any);
	struct addrinfo *ai = NULL;
	int fd, err, one = 1, zero = 0;

	if (*host) {
		err = getaddrinfo(host, NULL, &hints, &ai);
		if (err) {
			kw_err("listen address %s: %s", host, gai_strerror(err));
			return -EINVAL;
		}
		addr = ai->ai_addr;
		addrlen = ai->ai_addrlen;
		if (addr->sa_family == AF_INET6)
			((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
		else
			((struct sockaddr_in *)addr)->sin_port = htons(port);
	}
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* every address: IPv4 too, through the v4-mapped ones */
	if (!ai && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		goto fail;
	if (bind(fd, addr, addrlen) || listen(fd, 64))
		goto fail;
	if (ai)
		freeaddrinfo(ai);
	return fd;
fail:
	err = -errno;
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	return err;
}

struct kw_http *kw_http_serve(int fd, const struct kw_route *routes, unsigned int nroutes,
			      void *ctx)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct kw_http *h;
	int err;

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->routes = routes;
	h->nroutes = nroutes;
	h->ctx = ctx;
	if (ss.ss_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
		h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER,
				mhd_log, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
				/* a connection's buffers: streamed bodies go out in chunks of
				 * about half of it (the default 32 KiB made 16 KiB sends) */
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
				MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END);
	if (!h->d) {
		err = errno;
		free(h);
		errno = err ? err : EINVAL;
		return NULL;
	}
	return h;
}

struct kw_http *kw_http_start(const char *host, unsigned short port, const struct kw_route *routes,
			      unsigned int nroutes, void *ctx)
{
	struct kw_http *h;
	int fd, err;

	fd = kw_http_listen(host, port);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	h = kw_http_serve(fd, routes, nroutes, ctx);
	if (!h) {
		err = errno;
		close(fd);
		errno = err;
	}
	return h;
}

unsigned short kw_http_port(const struct kw_http *h)
{
	return h->port;
}

void kw_http_stop(struct kw_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
