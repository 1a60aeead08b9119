/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The one table of per-upstream figures. Each row is one series per upstream: its
 * field name (the JSON key, and the CLI name after a backend_ or client_ prefix), its
 * Prometheus family and the labels that tell the family's series apart, the family's
 * type and help, and the one-line description the CLI prints. Exposition, JSON, the CLI
 * and the README's metric list all come from here.
 *
 * Rows of one family must stay together: the exposition writes HELP/TYPE once per family.
 */
#ifndef KW_FIELDS_H
#define KW_FIELDS_H

#include <stddef.h>

#define RACE_HELP                                                                                  \
	"Keep-alive races: a request met a connection the other side had closed (side=server: "    \
	"we closed and a request arrived; side=client: our request on a reused connection was "    \
	"answered by a reset)."
#define UNUSED_HELP   "Connections closed without ever carrying a request, by who closed first."
#define CF_HELP	      "Outbound connects that failed, by errno (EADDRNOTAVAIL: no ephemeral port left)."
#define RST_SENT_HELP "Resets sent, by the kernel's reason."
#define RST_RCVD_HELP "Resets received, by our socket's state when it arrived."
#define ADOPTED_HELP                                                                               \
	"TCP connections with this upstream already established when keepwatch started, found "    \
	"by its walk of the sockets (not in connections_opened_total)."
#define LOST_HELP                                                                                  \
	"Connections that closed while no agent ran (pinned maps), found at the next start: "      \
	"their closes were not seen (not in connections_closed_total)."

#define BYTES_SENT_HELP                                                                            \
	"TCP payload bytes sent, each once (retransmissions not again; no headers), counted when " \
	"a connection closes."
#define BYTES_RCVD_HELP                                                                            \
	"TCP payload bytes received in order (no headers, SYN or FIN), counted when a connection " \
	"closes."
#define RETRANS_HELP                                                                               \
	"TCP segments retransmitted (the socket's total_retrans, SYN retries included), counted "  \
	"when a connection closes or a connect fails."

/* X(id, field, family, type, label name, label value, label2 name, label2 value, help, desc) */
#define KW_FIELDS(X)                                                                                                                     \
	X(CONN, "conn", "keepwatch_connections_opened_total", "counter", NULL, NULL, NULL, NULL,                                         \
	  "TCP connections established with this upstream.", "Connections opened")                                                       \
	X(ADOPTED, "adopted", "keepwatch_connections_adopted_total", "counter", NULL, NULL, NULL,                                        \
	  NULL, ADOPTED_HELP, "Connections open before start")                                                                           \
	X(LOST, "lost", "keepwatch_connections_lost_total", "counter", NULL, NULL, NULL, NULL,                                           \
	  LOST_HELP, "Closed while no agent ran")                                                                                        \
	X(REQ, "req", "keepwatch_requests_total", "counter", NULL, NULL, NULL, NULL,                                                     \
	  "Requests, counted at request/response turns (sequential HTTP/1.x).", "Requests")                                              \
	X(REUSE, "reuse", "keepwatch_requests_reused_total", "counter", NULL, NULL, NULL, NULL,                                          \
	  "Requests on an already used connection (every request after a connection's first).",                                          \
	  "Reused-connection requests")                                                                                                  \
	X(CLOSED_LOCAL_FIN, "closed_local_fin", "keepwatch_connections_closed_total", "counter",                                         \
	  "closed_by", "local", "how", "fin", "Connections closed, by who closed first and how.",                                        \
	  "Closed by us first, FIN")                                                                                                     \
	X(CLOSED_LOCAL_RST, "closed_local_rst", "keepwatch_connections_closed_total", "counter",                                         \
	  "closed_by", "local", "how", "rst", "Connections closed, by who closed first and how.",                                        \
	  "Closed by us first, RST")                                                                                                     \
	X(CLOSED_PEER_FIN, "closed_peer_fin", "keepwatch_connections_closed_total", "counter",                                           \
	  "closed_by", "peer", "how", "fin", "Connections closed, by who closed first and how.",                                         \
	  "Closed by peer first, FIN")                                                                                                   \
	X(CLOSED_PEER_RST, "closed_peer_rst", "keepwatch_connections_closed_total", "counter",                                           \
	  "closed_by", "peer", "how", "rst", "Connections closed, by who closed first and how.",                                         \
	  "Closed by peer first, RST")                                                                                                   \
	X(UNUSED_LOCAL, "unused_local", "keepwatch_connections_unused_closed_total", "counter",                                          \
	  "closed_by", "local", NULL, NULL, UNUSED_HELP, "Closed unused, by us")                                                         \
	X(UNUSED_PEER, "unused_peer", "keepwatch_connections_unused_closed_total", "counter",                                            \
	  "closed_by", "peer", NULL, NULL, UNUSED_HELP, "Closed unused, by the peer")                                                    \
	X(ACTIVE, "active", "keepwatch_connections_active", "gauge", NULL, NULL, NULL, NULL,                                             \
	  "Tracked connections open now.", "Connections open now")                                                                       \
	X(RACE_SERVER, "race_server", "keepwatch_keepalive_races_total", "counter", "side",                                              \
	  "server", NULL, NULL, RACE_HELP, "Races, server side")                                                                         \
	X(RACE_CLIENT, "race_client", "keepwatch_keepalive_races_total", "counter", "side",                                              \
	  "client", NULL, NULL, RACE_HELP, "Races, client side")                                                                         \
	X(ABORTED_UNREAD, "aborted_unread", "keepwatch_connections_aborted_with_unread_total",                                           \
	  "counter", NULL, NULL, NULL, NULL,                                                                                             \
	  "Connections we closed with a request unread (reset reason abort_on_close) that was not a keep-alive race: requests cut off.", \
	  "Closed with a request unread")                                                                                                \
	X(BYTES_SENT, "bytes_sent", "keepwatch_bytes_sent_total", "counter", NULL, NULL, NULL,                                           \
	  NULL, BYTES_SENT_HELP, "Payload bytes sent")                                                                                   \
	X(BYTES_RECEIVED, "bytes_received", "keepwatch_bytes_received_total", "counter", NULL,                                           \
	  NULL, NULL, NULL, BYTES_RCVD_HELP, "Payload bytes received")                                                                   \
	X(RETRANSMITS, "retransmits", "keepwatch_retransmits_total", "counter", NULL, NULL, NULL,                                        \
	  NULL, RETRANS_HELP, "Segments retransmitted")                                                                                  \
	X(RST_SENT_NOT_SPECIFIED, "rst_sent_not_specified", "keepwatch_resets_sent_total",                                               \
	  "counter", "reason", "not_specified", NULL, NULL, RST_SENT_HELP,                                                               \
	  "Resets sent: not specified")                                                                                                  \
	X(RST_SENT_NO_SOCKET, "rst_sent_no_socket", "keepwatch_resets_sent_total", "counter",                                            \
	  "reason", "no_socket", NULL, NULL, RST_SENT_HELP, "Resets sent: no socket")                                                    \
	X(RST_SENT_TCP_FLAGS, "rst_sent_tcp_flags", "keepwatch_resets_sent_total", "counter",                                            \
	  "reason", "tcp_flags", NULL, NULL, RST_SENT_HELP, "Resets sent: to a listener")                                                \
	X(RST_SENT_ABORT_ON_DATA, "rst_sent_abort_on_data", "keepwatch_resets_sent_total",                                               \
	  "counter", "reason", "abort_on_data", NULL, NULL, RST_SENT_HELP,                                                               \
	  "Resets sent: data after close")                                                                                               \
	X(RST_SENT_TIMEWAIT_SOCKET, "rst_sent_timewait_socket", "keepwatch_resets_sent_total",                                           \
	  "counter", "reason", "timewait_socket", NULL, NULL, RST_SENT_HELP,                                                             \
	  "Resets sent: timewait socket")                                                                                                \
	X(RST_SENT_ABORT_ON_CLOSE, "rst_sent_abort_on_close", "keepwatch_resets_sent_total",                                             \
	  "counter", "reason", "abort_on_close", NULL, NULL, RST_SENT_HELP,                                                              \
	  "Resets sent: closed unread")                                                                                                  \
	X(RST_SENT_ABORT_ON_LINGER, "rst_sent_abort_on_linger", "keepwatch_resets_sent_total",                                           \
	  "counter", "reason", "abort_on_linger", NULL, NULL, RST_SENT_HELP,                                                             \
	  "Resets sent: linger timeout")                                                                                                 \
	X(RST_SENT_ABORT_ON_MEMORY, "rst_sent_abort_on_memory", "keepwatch_resets_sent_total",                                           \
	  "counter", "reason", "abort_on_memory", NULL, NULL, RST_SENT_HELP,                                                             \
	  "Resets sent: out of memory")                                                                                                  \
	X(RST_SENT_TCP_STATE, "rst_sent_tcp_state", "keepwatch_resets_sent_total", "counter",                                            \
	  "reason", "tcp_state", NULL, NULL, RST_SENT_HELP, "Resets sent: linger 0/abort")                                               \
	X(RST_SENT_KEEPALIVE_TIMEOUT, "rst_sent_keepalive_timeout", "keepwatch_resets_sent_total",                                       \
	  "counter", "reason", "keepalive_timeout", NULL, NULL, RST_SENT_HELP,                                                           \
	  "Resets sent: TCP keepalive")                                                                                                  \
	X(RST_SENT_DISCONNECT_WITH_DATA, "rst_sent_disconnect_with_data",                                                                \
	  "keepwatch_resets_sent_total", "counter", "reason", "disconnect_with_data", NULL, NULL,                                        \
	  RST_SENT_HELP, "Resets sent: disconnect")                                                                                      \
	X(RST_SENT_INVALID_SYN, "rst_sent_invalid_syn", "keepwatch_resets_sent_total", "counter",                                        \
	  "reason", "invalid_syn", NULL, NULL, RST_SENT_HELP, "Resets sent: invalid SYN")                                                \
	X(RST_SENT_OTHER, "rst_sent_other", "keepwatch_resets_sent_total", "counter", "reason",                                          \
	  "other", NULL, NULL, RST_SENT_HELP, "Resets sent: protocol error")                                                             \
	X(RST_RCVD_ESTABLISHED, "rst_rcvd_established", "keepwatch_resets_received_total",                                               \
	  "counter", "state", "established", NULL, NULL, RST_RCVD_HELP,                                                                  \
	  "Resets received in established")                                                                                              \
	X(RST_RCVD_SYN_SENT, "rst_rcvd_syn_sent", "keepwatch_resets_received_total", "counter",                                          \
	  "state", "syn_sent", NULL, NULL, RST_RCVD_HELP, "Resets received in syn_sent")                                                 \
	X(RST_RCVD_CLOSE_WAIT, "rst_rcvd_close_wait", "keepwatch_resets_received_total",                                                 \
	  "counter", "state", "close_wait", NULL, NULL, RST_RCVD_HELP,                                                                   \
	  "Resets received in close_wait")                                                                                               \
	X(RST_RCVD_FIN_WAIT1, "rst_rcvd_fin_wait1", "keepwatch_resets_received_total", "counter",                                        \
	  "state", "fin_wait1", NULL, NULL, RST_RCVD_HELP, "Resets received in fin_wait1")                                               \
	X(RST_RCVD_FIN_WAIT2, "rst_rcvd_fin_wait2", "keepwatch_resets_received_total", "counter",                                        \
	  "state", "fin_wait2", NULL, NULL, RST_RCVD_HELP, "Resets received in fin_wait2")                                               \
	X(RST_RCVD_LAST_ACK, "rst_rcvd_last_ack", "keepwatch_resets_received_total", "counter",                                          \
	  "state", "last_ack", NULL, NULL, RST_RCVD_HELP, "Resets received in last_ack")                                                 \
	X(RST_RCVD_CLOSING, "rst_rcvd_closing", "keepwatch_resets_received_total", "counter",                                            \
	  "state", "closing", NULL, NULL, RST_RCVD_HELP, "Resets received in closing")                                                   \
	X(RST_RCVD_OTHER, "rst_rcvd_other", "keepwatch_resets_received_total", "counter", "state",                                       \
	  "other", NULL, NULL, RST_RCVD_HELP, "Resets received in other")                                                                \
	X(TIME_WAIT_ENTERED, "time_wait_entered", "keepwatch_time_wait_entered_total", "counter",                                        \
	  NULL, NULL, NULL, NULL,                                                                                                        \
	  "Our closes that left a TIME_WAIT socket on this host (its port is held for 60 s).",                                           \
	  "TIME_WAIT sockets created")                                                                                                   \
	X(TIME_WAIT, "time_wait", "keepwatch_time_wait_sockets", "gauge", NULL, NULL, NULL, NULL,                                        \
	  "TIME_WAIT sockets of this upstream now, from a census of the namespace.",                                                     \
	  "TIME_WAIT sockets now")                                                                                                       \
	X(CF_EADDRNOTAVAIL, "connect_fail_eaddrnotavail", "keepwatch_connect_failures_total",                                            \
	  "counter", "errno", "EADDRNOTAVAIL", NULL, NULL, CF_HELP, "Connects failed: no port")                                          \
	X(CF_ECONNREFUSED, "connect_fail_econnrefused", "keepwatch_connect_failures_total",                                              \
	  "counter", "errno", "ECONNREFUSED", NULL, NULL, CF_HELP, "Connects failed: refused")                                           \
	X(CF_ETIMEDOUT, "connect_fail_etimedout", "keepwatch_connect_failures_total", "counter",                                         \
	  "errno", "ETIMEDOUT", NULL, NULL, CF_HELP, "Connects failed: timed out")                                                       \
	X(CF_EHOSTUNREACH, "connect_fail_ehostunreach", "keepwatch_connect_failures_total",                                              \
	  "counter", "errno", "EHOSTUNREACH", NULL, NULL, CF_HELP,                                                                       \
	  "Connects failed: host unreach")                                                                                               \
	X(CF_ENETUNREACH, "connect_fail_enetunreach", "keepwatch_connect_failures_total",                                                \
	  "counter", "errno", "ENETUNREACH", NULL, NULL, CF_HELP, "Connects failed: net unreach")                                        \
	X(CF_OTHER, "connect_fail_other", "keepwatch_connect_failures_total", "counter", "errno",                                        \
	  "OTHER", NULL, NULL, CF_HELP, "Connects failed: other")

enum kw_field_id {
#define KW_X_ID(id, ...) KW_F_##id,
	KW_FIELDS(KW_X_ID)
#undef KW_X_ID
		KW_F_MAX
};

struct kw_field {
	const char *field;  /* JSON key; CLI name after backend_ / client_ */
	const char *family; /* Prometheus family */
	const char *type;   /* "counter" or "gauge" */
	const char *lname[2];
	const char *lvalue[2];
	const char *help; /* Prometheus HELP of the family */
	const char *desc; /* CLI description */
};

extern const struct kw_field kw_fields[KW_F_MAX];

/* Rare-event breakdowns, exposed only where not zero (see metrics.c). */
int kw_field_sparse(unsigned int id);

/* Histograms per upstream. */
enum kw_hist_id {
	KW_H_IDLE_LOCAL, /* idle_before_close_seconds{closed_by="local"} */
	KW_H_IDLE_PEER,	 /* idle_before_close_seconds{closed_by="peer"} */
	KW_H_REQS_LOCAL, /* requests_per_connection{closed_by="local"} */
	KW_H_REQS_PEER,	 /* requests_per_connection{closed_by="peer"} */
	KW_H_RACE_IDLE,	 /* race_idle_before_close_seconds */
	KW_H_RACE_GAP,	 /* race_gap_seconds */
	KW_H_LIFETIME,	 /* connection_lifetime_seconds */
	KW_H_CONNECT,	 /* connect_latency_seconds (outbound) */
	KW_H_RTT,	 /* rtt_seconds */
	KW_H_MAX
};

struct kw_hist_desc {
	const char *field;  /* JSON key */
	const char *family; /* Prometheus family */
	const char *lname;  /* extra label or NULL */
	const char *lvalue;
	const char *help;
	unsigned int nslots;
	const double *bounds; /* nslots - 1 upper bounds, in the exposed unit */
};

extern const struct kw_hist_desc kw_hists[KW_H_MAX];

#endif /* KW_FIELDS_H */
