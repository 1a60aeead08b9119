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

/* X(id, field, family, type, label name, label value, label2 name, label2 value, help, desc) */
#define KW_FIELDS(X)                                                                               \
	X(CONN, "conn", "connections_opened_total", "counter", NULL, NULL, NULL, NULL,             \
	  "TCP connections established with this upstream.", "Connections opened")                 \
	X(REQ, "req", "requests_total", "counter", NULL, NULL, NULL, NULL,                         \
	  "Requests, counted at request/response turns (sequential HTTP/1.x).", "Requests")        \
	X(REUSE, "reuse", "requests_reused_total", "counter", NULL, NULL, NULL, NULL,              \
	  "Requests on an already used connection (every request after a connection's first).",    \
	  "Reused-connection requests")                                                            \
	X(CLOSED_LOCAL_FIN, "closed_local_fin", "connections_closed_total", "counter",             \
	  "closed_by", "local", "how", "fin", "Connections closed, by who closed first and how.",  \
	  "Closed by us first, FIN")                                                               \
	X(CLOSED_LOCAL_RST, "closed_local_rst", "connections_closed_total", "counter",             \
	  "closed_by", "local", "how", "rst", "Connections closed, by who closed first and how.",  \
	  "Closed by us first, RST")                                                               \
	X(CLOSED_PEER_FIN, "closed_peer_fin", "connections_closed_total", "counter", "closed_by",  \
	  "peer", "how", "fin", "Connections closed, by who closed first and how.",                \
	  "Closed by peer first, FIN")                                                             \
	X(CLOSED_PEER_RST, "closed_peer_rst", "connections_closed_total", "counter", "closed_by",  \
	  "peer", "how", "rst", "Connections closed, by who closed first and how.",                \
	  "Closed by peer first, RST")                                                             \
	X(UNUSED, "unused", "connections_unused_closed_total", "counter", NULL, NULL, NULL, NULL,  \
	  "Connections closed without ever carrying a request.", "Closed without a request")       \
	X(ACTIVE, "active", "connections_active", "gauge", NULL, NULL, NULL, NULL,                 \
	  "Tracked connections open now.", "Connections open now")

enum kw_field_id {
#define KW_X_ID(id, ...) KW_F_##id,
	KW_FIELDS(KW_X_ID)
#undef KW_X_ID
		KW_F_MAX
};

struct kw_field {
	const char *field;  /* JSON key; CLI name after backend_ / client_ */
	const char *family; /* Prometheus family without the keepwatch_ prefix */
	const char *type;   /* "counter" or "gauge" */
	const char *lname[2];
	const char *lvalue[2];
	const char *help; /* Prometheus HELP of the family */
	const char *desc; /* CLI description */
};

extern const struct kw_field kw_fields[KW_F_MAX];

/* Histograms per upstream. */
enum kw_hist_id {
	KW_H_IDLE_LOCAL, /* idle_before_close_seconds{closed_by="local"} */
	KW_H_IDLE_PEER,	 /* idle_before_close_seconds{closed_by="peer"} */
	KW_H_REQS,	 /* requests_per_connection */
	KW_H_MAX
};

struct kw_hist_desc {
	const char *field;  /* JSON key */
	const char *family; /* Prometheus family without the keepwatch_ prefix */
	const char *lname;  /* extra label or NULL */
	const char *lvalue;
	const char *help;
	unsigned int nslots;
	const double *bounds; /* nslots - 1 upper bounds, in the exposed unit */
};

extern const struct kw_hist_desc kw_hists[KW_H_MAX];

#endif /* KW_FIELDS_H */
