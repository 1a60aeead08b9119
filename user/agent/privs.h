/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Least privilege once started: the capabilities kept, and the drop. */
#ifndef KW_PRIVS_H
#define KW_PRIVS_H

#include <linux/types.h>

/* The capabilities the agent keeps after its start (a CapEff mask): see privs.c. */
__u64 kw_privs_keep(void);

/*
 * Drops every capability but kw_privs_keep()'s (those of them it has) from the bounding, permitted and effective
 * sets (inheritable and ambient are left empty), sets no_new_privs, and with user (not
 * NULL) switches to that user and its group first, with no supplementary groups. Call
 * before any thread starts: capabilities are per thread. 0, or -errno with *what saying
 * which step failed.
 */
int kw_privs_drop(const char *user, const char **what);

#endif /* KW_PRIVS_H */
