/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * What the doctor's files share and nothing else sees: the context a rule runs in (one
 * upstream, the options, the diagnosis being written and the texts every finding quotes),
 * the counts of the requests and idle histograms that the rules read (infer.c), and two
 * small helpers. The public interface is doctor.h.
 */
#ifndef KW_DOCTOR_INTERNAL_H
#define KW_DOCTOR_INTERNAL_H

#include "lib/addr.h"
#include "doctor/doctor.h"

/* Nearest whole number of a value in [0, 1e15): without libm, which the build does not link. */
static inline double whole(double v)
{
	return (double)(long long)(v + 0.5);
}

static inline int known(const struct kw_timeout *t)
{
	return t->confidence != KW_CONF_NONE;
}

/*
 * What a rule reads and writes: one upstream, the options and the diagnosis it adds its
 * finding to (timeouts, reuse and census row already filled in), with the texts findings
 * quote, made once per upstream.
 */
struct ctx {
	const struct kw_upstream *u;
	const struct kw_doctor_opts *o;
	struct kw_diagnosis *d;
	char window[64];	       /* "since the counts started, 3h12m ago" */
	char peer[KW_ENDPOINT_STRLEN]; /* "10.0.0.2:80", "[fd77::2]:80", "other" */
	double rate;		       /* connections opened per s over the window; -1: unknown */
	const struct kw_rule *rule;    /* the rule running: its finding's id and order */
};

/* Connections closed by `by` that carried exactly n requests (n with an exact slot). */
__u64 kw_closed_at(const struct kw_upstream *u, int by, unsigned int n);

/* Connections closed by `by` (by < 0: either) that carried more than n requests. */
__u64 kw_closed_over(const struct kw_upstream *u, int by, unsigned int n);

/* Closes by `by` right after a response: idle at most KW_DOCTOR_MIN_IDLE. */
__u64 kw_prompt_closes(const struct kw_upstream *u, int by);

/* The directions a rule looks at. */
#define KW_RULE_IN   0x1 /* KW_DIR_INBOUND */
#define KW_RULE_OUT  0x2 /* KW_DIR_OUTBOUND */
#define KW_RULE_BOTH (KW_RULE_IN | KW_RULE_OUT)

/* One rule: a row of kw_doctor_rules[] (rules.c). */
struct kw_rule {
	const char *id;		    /* its findings' id */
	unsigned int dirs;	    /* KW_RULE_IN, KW_RULE_OUT or KW_RULE_BOTH */
	enum kw_severity worst;	    /* the most severe finding it reports */
	void (*run)(struct ctx *c); /* adds at most one finding to c->d */
};

/* The rules in the order they run; the last row's id is NULL. */
extern const struct kw_rule kw_doctor_rules[];

#endif /* KW_DOCTOR_INTERNAL_H */
