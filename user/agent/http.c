// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * HTTP with libmicrohttpd, one internal epoll thread: requests are served one at a time,
 * so route handlers need no locking among themselves (but a streamed body is written while
 * other requests are served, so it must not share state with them). Malformed requests are
 * answered by libmicrohttpd itself (400) and never reach the routes; what it lets pass but
 * the routes must not see (percent-encoded paths, NUL bytes, too many arguments) is refused
 * here from the raw URL, before anything is decoded.
 *
 * Bounded under any client (README, "Limits of the HTTP server"): connections in all and
 * per address, a deadline for a request's headers on top of the idle timeout, a memory
 * limit per connection, and a few large answers in flight at once (503 beyond).
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <microhttpd.h>

#include "agent/http.h"
#include "agent/json.h"
#include "agent/webcfg.h"
#include "lib/log.h"

struct kw_http {
	struct MHD_Daemon *d; /* closes the listening socket when stopped */
	unsigned short port;  /* the one it listens on */
	const struct kw_route *routes;
	unsigned int nroutes;
	void *ctx;
	struct kw_webcfg *web;	/* TLS and users, or NULL */
	unsigned int heavy;	/* large answers in flight (KW_ROUTE_HEAVY) */
	int starting;		/* libmicrohttpd's messages are warnings then */
	struct kw_deadline *dl; /* the headers' deadline, or NULL */
};

/* One request, from its request line on (libmicrohttpd's request context). */
struct kw_req {
	unsigned int refuse; /* a status to answer with at once, or 0 */
	const char *why;     /* and the reason, for the body */
	int heavy;	     /* holds one of the large answers' places */
	int started;	     /* the access handler has seen it */
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
	/*
	 * A value with a NUL byte ("1%00abc") is refused from the raw URL; should one come
	 * through anyway, the route gets a value none of its parsers takes, never the part
	 * before the NUL.
	 */
	if (value && strlen(value) != len)
		return "\x01";
	return value ? value : "";
}

/*
 * What the raw request target (before any decoding) may not be, and the status to answer
 * with: too long (414), a byte outside printable ASCII (400), a '%' in the path (our
 * paths are plain, and "/%6detrics" must not become "/metrics"), a NUL byte encoded in
 * the query, more than KW_HTTP_MAX_ARGS arguments.
 */
unsigned int kw_http_check_target(const char *uri, const char **why)
{
	const char *q, *p;
	unsigned int args = 1;
	size_t len = strlen(uri);

	if (len > KW_HTTP_MAX_TARGET) {
		*why = "request target longer than " KW_STR(KW_HTTP_MAX_TARGET) " bytes";
		return 414;
	}
	for (p = uri; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			*why = "request target with a control character or a non-ASCII byte";
			return 400;
		}
	}
	q = strchr(uri, '?');
	if (memchr(uri, '%', q ? (size_t)(q - uri) : len)) {
		*why = "percent-encoded path (paths are plain ASCII)";
		return 400;
	}
	if (!q)
		return 0;
	for (p = q + 1; *p; p++) {
		if (*p == '&' && ++args > KW_HTTP_MAX_ARGS) {
			*why = "more than " KW_STR(KW_HTTP_MAX_ARGS) " query arguments";
			return 400;
		}
		if (p[0] == '%' && p[1] == '0' && p[2] == '0') {
			*why = "NUL byte in the query";
			return 400;
		}
	}
	return 0;
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
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* {"error": why} with status, at once; the connection is closed after 4xx and 5xx. */
static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned int status,
				   const char *why)
{
	struct kw_buf body;
	enum MHD_Result ret;

	kw_buf_init(&body);
	kw_json_error(why, &body);
	ret = reply(conn, status, "application/json", &body);
	kw_buf_free(&body);
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

/*
 * The deadline for a request's headers. libmicrohttpd's timeout is an idle one: a client
 * that sends one header line every few seconds (slowloris) keeps its connection forever.
 * Each connection notes when it began to wait for a request (its start, or the end of its
 * last request); a watchdog thread shuts down, once a second, the sockets that have waited
 * longer than KW_HTTP_HEADER_DEADLINE for their headers. libmicrohttpd then sees the
 * connection end and closes it on its own thread: the watchdog never closes a descriptor,
 * and forgets it (under the lock) before libmicrohttpd closes it.
 */
struct waiting {
	struct waiting *prev, *next;
	int fd;
	int waiting;	       /* for the headers of a request */
	struct timespec since; /* CLOCK_MONOTONIC */
};

struct kw_deadline {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	struct waiting head; /* of a circular list */
	int stop;
	unsigned int timeout; /* s */
};

static void *deadline_watch(void *cls)
{
	struct kw_deadline *dl = cls;
	struct timespec now, wake;
	struct waiting *w;

	pthread_mutex_lock(&dl->lock);
	while (!dl->stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		for (w = dl->head.next; w != &dl->head; w = w->next) {
			if (w->waiting && now.tv_sec - w->since.tv_sec >= (time_t)dl->timeout) {
				shutdown(w->fd, SHUT_RDWR);
				w->waiting = 0; /* once */
				kw_dbg("http: connection %d: no request within %u s, closed", w->fd,
				       dl->timeout);
			}
		}
		clock_gettime(CLOCK_REALTIME, &wake);
		wake.tv_sec++;
		pthread_cond_timedwait(&dl->wake, &dl->lock, &wake);
	}
	pthread_mutex_unlock(&dl->lock);
	return NULL;
}

static struct kw_deadline *deadline_start(unsigned int timeout)
{
	struct kw_deadline *dl = calloc(1, sizeof(*dl));
	int err;

	if (!dl)
		return NULL;
	dl->timeout = timeout;
	dl->head.next = dl->head.prev = &dl->head;
	pthread_mutex_init(&dl->lock, NULL);
	pthread_cond_init(&dl->wake, NULL);
	err = pthread_create(&dl->thread, NULL, deadline_watch, dl);
	if (err) {
		free(dl);
		errno = err;
		return NULL;
	}
	return dl;
}

static void deadline_stop(struct kw_deadline *dl)
{
	if (!dl)
		return;
	pthread_mutex_lock(&dl->lock);
	dl->stop = 1;
	pthread_cond_signal(&dl->wake);
	pthread_mutex_unlock(&dl->lock);
	pthread_join(dl->thread, NULL);
	free(dl);
}

static struct waiting *waiting_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void deadline_set(struct kw_deadline *dl, struct MHD_Connection *conn, int waiting)
{
	struct waiting *w;

	if (!dl || !(w = waiting_of(conn)))
		return;
	pthread_mutex_lock(&dl->lock);
	w->waiting = waiting;
	clock_gettime(CLOCK_MONOTONIC, &w->since);
	pthread_mutex_unlock(&dl->lock);
}

/* The headers are in: no deadline while the request is answered (the idle timeout is). */
static void deadline_met(struct kw_deadline *dl, struct MHD_Connection *conn)
{
	deadline_set(dl, conn, 0);
}

/* A request is done: the next one's headers have the deadline from now. */
static void deadline_restart(struct kw_deadline *dl, struct MHD_Connection *conn)
{
	deadline_set(dl, conn, 1);
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct kw_http *h = cls;
	struct kw_deadline *dl = h->dl;
	const union MHD_ConnectionInfo *ci;
	struct waiting *w = *socket_context;

	if (!dl)
		return;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		w = calloc(1, sizeof(*w));
		if (!w || !ci) {
			free(w);
			return; /* only the idle timeout for this one */
		}
		w->fd = ci->connect_fd;
		w->waiting = 1;
		clock_gettime(CLOCK_MONOTONIC, &w->since);
		pthread_mutex_lock(&dl->lock);
		w->next = dl->head.next;
		w->prev = &dl->head;
		dl->head.next->prev = w;
		dl->head.next = w;
		pthread_mutex_unlock(&dl->lock);
		*socket_context = w;
	} else if (w) {
		pthread_mutex_lock(&dl->lock);
		w->prev->next = w->next;
		w->next->prev = w->prev;
		pthread_mutex_unlock(&dl->lock);
		free(w);
		*socket_context = NULL;
	}
}

/*
 * Basic authentication when the web configuration names users: 0 when the request may
 * pass, else a 401 is queued (libmicrohttpd adds WWW-Authenticate) and its result given.
 */
static int authorize(struct kw_http *h, struct MHD_Connection *conn, enum MHD_Result *ret)
{
	struct MHD_Response *r;
	char *user, *pass = NULL;
	int ok;

	if (!h->web || !h->web->nusers)
		return 0;
	user = MHD_basic_auth_get_username_password(conn, &pass);
	ok = user && pass && kw_webcfg_check_user(h->web, user, pass);
	free(user);
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
	}
	if (ok)
		return 0;
	r = MHD_create_response_from_buffer(strlen(KW_HTTP_401_BODY), (char *)KW_HTTP_401_BODY,
					    MHD_RESPMEM_PERSISTENT);
	if (!r) {
		*ret = MHD_NO;
		return -ENOMEM;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	*ret = MHD_queue_basic_auth_fail_response(conn, "keepwatch", r);
	MHD_destroy_response(r);
	return -EACCES;
}

struct arg_check {
	const char *allowed; /* "a,b" or NULL */
	char why[160];
};

static int allowed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = list; p && *p; p += strcspn(p, ","), p += *p == ',')
		if (strcspn(p, ",") == n && !strncmp(p, name, n))
			return 1;
	return 0;
}

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct arg_check *ac = cls;

	(void)kind;
	(void)value;
	if (allowed(ac->allowed, key))
		return MHD_YES;
	snprintf(ac->why, sizeof(ac->why), "unknown query argument '%.40s' (this path takes %s)",
		 key, ac->allowed ? ac->allowed : "none");
	return MHD_NO;
}

/* Unknown query arguments are refused: a typo must not pass as the default. */
static const char *unknown_arg(struct MHD_Connection *conn, const struct kw_route *route,
			       struct arg_check *ac)
{
	ac->allowed = route->args;
	ac->why[0] = '\0';
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_arg, ac);
	return ac->why[0] ? ac->why : NULL;
}

static const struct kw_route *find_route(const struct kw_http *h, const char *url)
{
	unsigned int i;

	for (i = 0; i < h->nroutes; i++)
		if (!strcmp(url, h->routes[i].path))
			return &h->routes[i];
	return NULL;
}

/* A 5xx: always a JSON body saying why (the route's first line, if not JSON), and a log line. */
static void server_error(const char *url, int status, const char **ctype, struct kw_buf *body)
{
	char why[256] = "internal error";

	if (body->err || !body->len || strcmp(*ctype, "application/json")) {
		if (!body->err && body->len)
			snprintf(why, sizeof(why), "%.*s", (int)strcspn(body->data, "\n"),
				 body->data);
		kw_buf_reset(body);
		kw_json_error(why, body);
		*ctype = "application/json";
	}
	kw_err("http: GET %s: %d %.*s", url, status,
	       body->data ? (int)strcspn(body->data, "\n") : (int)strlen(why),
	       body->data ? body->data : why);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct kw_http *h = cls;
	struct kw_req *rq = *req_cls;
	struct kw_stream st = { 0 };
	struct kw_request req = { .conn = conn, .stream = &st };
	const char *ctype = "text/plain; charset=utf-8";
	const struct kw_route *route;
	struct arg_check ac;
	struct kw_buf body;
	enum MHD_Result ret;
	int status = MHD_HTTP_NOT_FOUND;

	(void)version;
	(void)upload_data;
	if (!rq) /* the URI callback could not allocate */
		return MHD_NO;
	if (!rq->started) {
		/* First call: headers only. Answer at the second, once any body is read. */
		rq->started = 1;
		deadline_met(h->dl, conn);
		if (rq->refuse)
			return reply_error(conn, rq->refuse, rq->why);
		if (authorize(h, conn, &ret))
			return ret;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* discard request bodies */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		kw_buf_init(&body);
		kw_buf_puts(&body, "method not allowed\n");
		ret = reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, ctype, &body);
		kw_buf_free(&body);
		return ret;
	}
	route = find_route(h, url);
	if (route && unknown_arg(conn, route, &ac))
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, ac.why);
	if (route && (route->flags & KW_ROUTE_HEAVY)) {
		if (h->heavy >= KW_HTTP_MAX_HEAVY)
			return reply_error(
				conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				"busy: " KW_STR(
					KW_HTTP_MAX_HEAVY) " large answers in flight; retry in a second");
		h->heavy++;
		rq->heavy = 1;
	}
	kw_buf_init(&body);
	if (route)
		status = route->fn(h->ctx, &req, &body, &ctype);
	else
		not_found(h, &body);
	if (st.read && status < 500) {
		kw_buf_free(&body);
		return reply_stream(conn, status, ctype, &st);
	}
	if (st.read)
		st.release(st.cls);
	if (body.err && status < 500)
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	if (status >= 500)
		server_error(url, status, &ctype, &body);
	ret = reply(conn, status, ctype, &body);
	kw_buf_free(&body);
	return ret;
}

/*
 * The request line is in: the raw target is checked here, before anything is decoded.
 * A refused target's query is emptied: libmicrohttpd splits it into arguments after this
 * call, each one a record in the connection's memory, and thousands of them ("?&&&&...")
 * would leave no memory for the answer, so that none would be sent. This writes into
 * libmicrohttpd's buffer, which it hands over as const: it reads the arguments from the
 * same place after the callback (0.9.75; the end-to-end test of 17.3 checks it).
 */
static void *request_begins(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct kw_req *rq = calloc(1, sizeof(*rq));
	char *q;

	(void)cls;
	(void)conn;
	if (!rq)
		return NULL;
	rq->refuse = kw_http_check_target(uri, &rq->why);
	/*
	 * A NUL byte sent as such ends uri early ("/healthz\0abc" reads "/healthz"). The
	 * target's real end is the NUL libmicrohttpd writes over the space before the
	 * version, so the version follows uri's NUL: anything else follows a NUL sent by
	 * the client. strncmp stops at the first difference, inside the line.
	 */
	if (!rq->refuse && strncmp(uri + strlen(uri) + 1, "HTTP/1.", 7)) {
		rq->refuse = 400;
		rq->why = "NUL byte in the request target";
	}
	q = strchr(uri, '?');
	if (rq->refuse && q)
		q[1] = '\0';
	return rq;
}

static void request_ends(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct kw_http *h = cls;
	struct kw_req *rq = *req_cls;

	(void)toe;
	if (!rq)
		return;
	if (rq->heavy)
		h->heavy--;
	free(rq);
	*req_cls = NULL;
	deadline_restart(h->dl, conn);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct kw_http *h = cls;
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	if (h->starting)
		kw_warn("http: %s", msg);
	else
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

/*
 * Connections at once: every one costs a descriptor, so the soft limit of open files is
 * raised to the hard one (systemd's default soft limit is 1024) and the connections kept
 * KW_HTTP_FD_RESERVE below it, for the maps, the namespaces and the logs.
 */
static unsigned int connection_limit(void)
{
	struct rlimit rl;
	rlim_t want = KW_HTTP_MAX_CONNECTIONS + KW_HTTP_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 64;
	if (rl.rlim_cur < want && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= want)
		return KW_HTTP_MAX_CONNECTIONS;
	return rl.rlim_cur > 2 * KW_HTTP_FD_RESERVE ? rl.rlim_cur - KW_HTTP_FD_RESERVE :
						      KW_HTTP_FD_RESERVE;
}

static struct MHD_Daemon *start_daemon(struct kw_http *h, int fd, unsigned int flags)
{
	const struct kw_webcfg *w = h->web;
	unsigned int limit = connection_limit();
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, w ? w->cert_pem : NULL },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, w ? w->key_pem : NULL },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, w ? (void *)w->priorities : NULL },
		{ MHD_OPTION_END, 0, NULL },
	};

	if (w && w->cert_pem) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			errno = ENOTSUP;
			kw_err("http: this libmicrohttpd was built without TLS");
			return NULL;
		}
		flags |= MHD_USE_TLS;
	} else {
		tls[0].option = MHD_OPTION_END;
	}
	if (limit < KW_HTTP_MAX_CONNECTIONS)
		kw_warn("http: %u connections at most (the limit of open files allows no more)",
			limit);
	return MHD_start_daemon(
		flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		MHD_OPTION_URI_LOG_CALLBACK, request_begins, h, MHD_OPTION_NOTIFY_COMPLETED,
		request_ends, h, MHD_OPTION_NOTIFY_CONNECTION, connection_notify, h,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)KW_HTTP_IDLE_TIMEOUT,
		MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)KW_HTTP_MAX_PER_ADDRESS,
		/* a connection's buffers: streamed bodies go out in chunks of about half of it
		 * (the default 32 KiB made 16 KiB sends); the request's headers and arguments
		 * must fit in it too, or no 431 can be sent */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)KW_HTTP_CONNECTION_MEMORY,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

struct kw_http *kw_http_serve_web(int fd, const struct kw_route *routes, unsigned int nroutes,
				  void *ctx, struct kw_webcfg *web)
{
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
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
	h->web = web;
	if (ss.ss_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
		h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	h->dl = deadline_start(KW_HTTP_HEADER_DEADLINE);
	if (!h->dl)
		goto fail;
	h->starting = 1;
	h->d = start_daemon(h, fd, flags);
	h->starting = 0;
	if (!h->d)
		goto fail;
	return h;
fail:
	err = errno;
	deadline_stop(h->dl);
	free(h);
	errno = err ? err : EINVAL;
	return NULL;
}

struct kw_http *kw_http_serve(int fd, const struct kw_route *routes, unsigned int nroutes,
			      void *ctx)
{
	return kw_http_serve_web(fd, routes, nroutes, ctx, NULL);
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
	deadline_stop(h->dl);
	free(h);
}
