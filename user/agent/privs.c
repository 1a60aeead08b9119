// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Least privilege: once the programs are loaded, attached and pinned and the start-up
 * walk is done, the agent keeps only the capabilities its later work needs (privs.h),
 * and, started as root with --user, goes on as that user. Raw capset(2): no libcap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "agent/privs.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

__u64 kw_privs_keep(void)
{
	/*
	 * CAP_BPF: every bpf() command (map reads, iterator fds, program statistics) when
	 * unprivileged BPF is off (Debian's default). CAP_SYS_ADMIN: setns() into the other
	 * namespaces for the periodic TIME_WAIT census. CAP_SYS_PTRACE: open
	 * /proc/PID/ns/net of processes of other users, to find those namespaces.
	 * CAP_DAC_READ_SEARCH: open /run/netns/NAME, which ip-netns creates with mode 0.
	 */
	return 1ULL << CAP_BPF | 1ULL << CAP_SYS_ADMIN | 1ULL << CAP_SYS_PTRACE |
	       1ULL << CAP_DAC_READ_SEARCH;
}

/* The permitted set now: what is kept cannot exceed it. */
static int permitted(__u64 *mask)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	if (syscall(SYS_capget, &h, d))
		return -errno;
	*mask = (__u64)d[1].permitted << 32 | d[0].permitted;
	return 0;
}

static int capset_mask(__u64 mask)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	d[0].effective = d[0].permitted = (__u32)mask;
	d[1].effective = d[1].permitted = (__u32)(mask >> 32);
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/*
 * The bounding set loses the others. Without CAP_SETPCAP (started unprivileged, with
 * ambient capabilities) it stays as it is: no_new_privs and the smaller permitted set
 * keep them out of reach all the same.
 */
static int drop_bounding(__u64 keep)
{
	int cap;

	for (cap = 0; cap <= 63; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (!prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) || errno == EINVAL)
			continue;
		return errno == EPERM ? 0 : -errno;
	}
	return 0;
}

static int become(const struct passwd *pw)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setgroups(0, NULL) ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
		return -errno;
	return prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) ? -errno : 0;
}

int kw_privs_drop(const char *user, const char **what)
{
	__u64 keep = kw_privs_keep(), now = 0;
	struct passwd *pw = NULL;
	int err;

	if (user) {
		errno = 0;
		pw = getpwnam(user);
		if (!pw) {
			*what = "find the user";
			return errno ? -errno : -ENOENT;
		}
	}
	*what = "drop the bounding set";
	err = drop_bounding(keep);
	if (err)
		return err;
	if (pw) {
		*what = "switch user";
		err = become(pw);
		if (err)
			return err;
	}
	*what = "set no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	*what = "drop capabilities";
	err = permitted(&now);
	if (err)
		return err;
	return capset_mask(keep & now);
}
