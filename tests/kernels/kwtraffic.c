// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * kwtraffic: the real traffic of the kernel-matrix tests (tests/kernels/), small enough
 * to build statically and copy into a qemu guest that has nothing but busybox.
 *
 *   kwtraffic serve ADDR PORT IDLE_S [LINGER2_S]
 *	a keep-alive HTTP/1.1 server: answers every request (a header block ending in an
 *	empty line) with a fixed 2-byte response, keeps the connection open, and closes one
 *	that stayed idle IDLE_S seconds since its last response or accept (nginx's
 *	keepalive_timeout). LINGER2_S sets TCP_LINGER2 on each connection: above 60 s an
 *	orphan in FIN_WAIT2 stays a full socket instead of a timewait sock, so a late request
 *	meets the socket (reset reason abort_on_data) rather than its timewait sock
 *	(timewait_socket). Serves until killed; prints "ready" once listening.
 *   kwtraffic client ADDR PORT CONNS REQS PAUSE_S END
 *	opens CONNS connections, then makes REQS rounds of one request on each (sequential on
 *	a connection), sleeping PAUSE_S before every round but the first. A round does not
 *	look for the server's FIN first: after a pause longer than the server's idle timeout
 *	the request races the close, and the reset that answers it is recorded. END is how
 *	each connection ends: "close" (we close first), "wait" (wait for the server's close,
 *	then close 300 ms later), "linger0" (close with SO_LINGER 0: a reset).
 *	Prints one line: connections, responses, resets (and their errno), eofs.
 *
 * Exit status: 0 when the traffic ran (whatever the server answered), 1 on a setup error
 * (bad arguments, connect failed), with a message on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define REQUEST	  "GET / HTTP/1.1\r\nHost: kw\r\n\r\n"
#define RESPONSE  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static const char *prog = "kwtraffic";

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static long number(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: bad %s '%s' (%ld to %ld)\n", prog, what, s, lo, hi);
		exit(1);
	}
	return v;
}

static double seconds(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 3600) {
		fprintf(stderr, "%s: bad %s '%s' (0 to 3600 s)\n", prog, what, s);
		exit(1);
	}
	return v;
}

/* ADDR PORT into a sockaddr (IPv4 or IPv6); returns its length. */
static socklen_t sockaddr_of(const char *addr, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	unsigned short p = (unsigned short)number(port, 1, 65535, "port");

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		return sizeof(*s6);
	}
	fprintf(stderr, "%s: bad address '%s'\n", prog, addr);
	exit(1);
}

/* --- server ---------------------------------------------------------------------------- */

struct sconn {
	int fd;
	double last; /* when the last response went out (or the accept) */
	size_t len;  /* bytes of an unfinished request */
	char buf[1024];
};

/* Answers every complete request in the buffer; returns -1 when the connection is done. */
static int serve_data(struct sconn *c)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	char *end;

	if (n <= 0)
		return -1; /* the client closed (or reset) */
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	while ((end = strstr(c->buf, "\r\n\r\n"))) {
		size_t used = (size_t)(end + 4 - c->buf);

		if (write(c->fd, RESPONSE, sizeof(RESPONSE) - 1) != sizeof(RESPONSE) - 1)
			return -1;
		c->last = now();
		memmove(c->buf, c->buf + used, c->len - used + 1);
		c->len -= used;
	}
	return c->len == sizeof(c->buf) - 1 ? -1 : 0;
}

static void __attribute__((noreturn)) serve(char **argv, int argc)
{
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(argv[0], argv[1], &ss);
	double idle = seconds(argv[2], "idle timeout");
	int linger2 = argc > 3 ? (int)number(argv[3], 1, 120, "linger2") : 0;
	static struct sconn conns[MAX_CONNS];
	struct pollfd pfd[MAX_CONNS + 1];
	int one = 1, lfd, i, n = 0;

	lfd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, sl) || listen(lfd, 128))
		die("bind/listen");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		double t = now(), next = t + 3600;
		int timeout;

		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < n; i++) {
			pfd[i + 1] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
			if (conns[i].last + idle < next)
				next = conns[i].last + idle;
		}
		timeout = next <= t ? 0 : (int)((next - t) * 1000) + 1;
		if (poll(pfd, (nfds_t)n + 1, timeout) < 0 && errno != EINTR)
			die("poll");
		t = now();
		for (i = n - 1; i >= 0; i--) {
			int done = 0;

			if (pfd[i + 1].revents)
				done = serve_data(&conns[i]) < 0;
			else if (t >= conns[i].last + idle)
				done = 1; /* the keep-alive timeout */
			if (done) {
				close(conns[i].fd);
				conns[i] = conns[--n];
			}
		}
		if ((pfd[0].revents & POLLIN) && n < MAX_CONNS) {
			int fd = accept(lfd, NULL, NULL);

			if (fd < 0)
				die("accept");
			if (linger2 &&
			    setsockopt(fd, IPPROTO_TCP, TCP_LINGER2, &linger2, sizeof(linger2)))
				die("setsockopt TCP_LINGER2");
			conns[n].fd = fd;
			conns[n].last = t;
			conns[n].len = 0;
			n++;
		}
	}
}

/* --- client ---------------------------------------------------------------------------- */

struct result {
	int responses, resets, eofs, errors;
	int reset_errno;
};

/*
 * After EOF, or an error, on a connection we did not close: a reset makes the socket
 * CLOSED with the reset's errno pending (ECONNRESET, or EPIPE after the peer's FIN).
 * A reset may still be on its way when the FIN is read: wait for it up to a second.
 */
static void classify_end(int fd, int err, struct result *r)
{
	double until = now() + 1.0;
	struct tcp_info ti;
	socklen_t l;

	for (;;) {
		l = sizeof(ti);
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 &&
		    ti.tcpi_state == TCP_CLOSE)
			break;
		if (now() > until) {
			r->eofs++;
			return;
		}
		sleep_s(0.01);
	}
	if (!err) {
		l = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
	}
	r->resets++;
	r->reset_errno = err;
}

/* One request and its response; returns -1 if the connection ended instead. */
static int request(int fd, struct result *r)
{
	char buf[256];
	size_t got = 0;
	ssize_t n;

	if (send(fd, REQUEST, sizeof(REQUEST) - 1, MSG_NOSIGNAL) < 0) {
		classify_end(fd, errno, r);
		return -1;
	}
	while (got < sizeof(RESPONSE) - 1) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			classify_end(fd, n < 0 ? errno : 0, r);
			return -1;
		}
		got += (size_t)n;
	}
	r->responses++;
	return 0;
}

static void end_connection(int fd, const char *end)
{
	char c;

	if (!strcmp(end, "linger0")) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (!strcmp(end, "wait")) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* the server's close: at most a minute */
		while (poll(&p, 1, 60000) == 1 && read(fd, &c, 1) > 0)
			;
		/*
		 * Then close after our ACK of its FIN surely left (delayed ACKs wait at most
		 * 200 ms): the server's orphan is in FIN_WAIT2 when our FIN comes, every time.
		 */
		sleep_s(0.3);
	}
	close(fd);
}

static int client(char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(argv[0], argv[1], &ss);
	int conns = (int)number(argv[2], 1, MAX_CONNS, "connections");
	int reqs = (int)number(argv[3], 0, 1000000, "requests");
	double pause = seconds(argv[4], "pause");
	const char *end = argv[5];
	int fd[MAX_CONNS], alive[MAX_CONNS];
	struct result r = { 0 };
	int i, k;

	if (strcmp(end, "close") && strcmp(end, "wait") && strcmp(end, "linger0")) {
		fprintf(stderr, "%s: bad end '%s' (close, wait, linger0)\n", prog, end);
		return 1;
	}
	for (i = 0; i < conns; i++) {
		fd[i] = socket(ss.ss_family, SOCK_STREAM, 0);
		if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&ss, sl))
			die("connect");
		alive[i] = 1;
	}
	for (k = 0; k < reqs; k++) {
		if (k)
			sleep_s(pause);
		for (i = 0; i < conns; i++)
			if (alive[i] && request(fd[i], &r))
				alive[i] = 0;
	}
	for (i = 0; i < conns; i++) {
		if (alive[i])
			end_connection(fd[i], end);
		else
			close(fd[i]);
	}
	printf("connections=%d responses=%d resets=%d reset_errno=%s eofs=%d\n", conns, r.responses,
	       r.resets, r.resets ? strerrorname_np(r.reset_errno) : "none", r.eofs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 || argc == 6) {
		if (!strcmp(argv[1], "serve"))
			serve(argv + 2, argc - 2);
	}
	if (argc == 8 && !strcmp(argv[1], "client"))
		return client(argv + 2);
	fprintf(stderr,
		"usage: %s serve ADDR PORT IDLE_S [LINGER2_S]\n"
		"       %s client ADDR PORT CONNS REQS PAUSE_S close|wait|linger0\n",
		prog, prog);
	return 1;
}
