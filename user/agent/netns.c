// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Network namespaces: names, inode numbers, finding and entering them; see netns.h. */
#define _GNU_SOURCE /* setns */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "agent/netns.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/numfmt.h"
#include "lib/text.h"

#define CACHE_MAX 256
#define CACHE_TTL 5.0

static struct {
	pthread_mutex_t lock;
	double loaded;
	__u32 self;
	unsigned int n;
	struct {
		__u32 inode;
		char name[KW_NETNS_NAMELEN];
	} e[CACHE_MAX];
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER, .loaded = -1e9 };

int kw_netns_resolve(const char *arg, __u32 *inode)
{
	char path[512];
	struct statfs fs;
	struct stat st;

	if (!*arg)
		return -EINVAL;
	if (strchr(arg, '/'))
		snprintf(path, sizeof(path), "%s", arg);
	else
		snprintf(path, sizeof(path), "%s/%s", KW_NETNS_DIR, arg);
	if (stat(path, &st) || statfs(path, &fs))
		return -errno;
	/* A bound namespace is an nsfs file; a plain file or directory is a mistake. */
	if (fs.f_type != NSFS_MAGIC && fs.f_type != PROC_SUPER_MAGIC)
		return -ENOTSUP;
	*inode = st.st_ino;
	return 0;
}

static void reload(void)
{
	struct dirent *d;
	struct stat st;
	DIR *dir;

	cache.n = 0;
	if (!stat("/proc/self/ns/net", &st))
		cache.self = st.st_ino;
	dir = opendir(KW_NETNS_DIR);
	if (!dir)
		return;
	while ((d = readdir(dir)) && cache.n < CACHE_MAX) {
		__u32 ino;

		if (d->d_name[0] == '.')
			continue;
		/*
		 * The name is any bytes but '/': as a label it must be UTF-8 without control
		 * characters (JSON and Prometheus reject others). One that does not fit,
		 * escapes included, goes by its inode number like an unnamed one.
		 */
		if (kw_text_escape_name(d->d_name, cache.e[cache.n].name, KW_NETNS_NAMELEN) < 0)
			continue;
		if (kw_netns_resolve(d->d_name, &ino))
			continue;
		cache.e[cache.n].inode = ino;
		cache.n++;
	}
	closedir(dir);
}

/* As snprintf(out, len, "%s", s), which showed at one call per upstream per scrape. */
static void copy_name(char *out, size_t len, const char *s, size_t n)
{
	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

void kw_netns_name(__u32 inode, char *out, size_t len)
{
	double now = kw_now();
	char num[KW_NUM_MAX];
	unsigned int i;
	size_t n;

	pthread_mutex_lock(&cache.lock);
	if (now - cache.loaded > CACHE_TTL) {
		reload();
		cache.loaded = now;
	}
	if (inode == cache.self) {
		copy_name(out, len, "host", 4);
		goto out;
	}
	for (i = 0; i < cache.n; i++) {
		if (cache.e[i].inode == inode) {
			copy_name(out, len, cache.e[i].name, strlen(cache.e[i].name));
			goto out;
		}
	}
	n = kw_fmt_u64(num, inode);
	copy_name(out, len, num, n);
out:
	pthread_mutex_unlock(&cache.lock);
}

/* ---- finding and entering namespaces ---- */

#define PATHS_MAX 1024

/* inode -> a path that opens it; checked on every use, since pids die and get reused. */
static struct {
	pthread_mutex_t lock;
	unsigned int n;
	unsigned int unreadable; /* /proc/PID/ns/net refused in the last scan */
	struct {
		__u32 inode;
		char path[48];
	} e[PATHS_MAX];
} paths = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void paths_put(__u32 inode, const char *path)
{
	unsigned int i;

	for (i = 0; i < paths.n; i++)
		if (paths.e[i].inode == inode)
			break;
	if (i == PATHS_MAX)
		return;
	if (i == paths.n)
		paths.n++;
	paths.e[i].inode = inode;
	snprintf(paths.e[i].path, sizeof(paths.e[i].path), "%s", path);
}

static void paths_put_stat(const char *path)
{
	struct stat st;

	if (!stat(path, &st))
		paths_put(st.st_ino, path);
	else if (errno == EACCES || errno == EPERM)
		paths.unreadable++;
}

/* Rebuilds the cache from the agent's namespace, /var/run/netns and /proc/PID/ns/net. */
static void paths_scan(void)
{
	char path[300];
	struct dirent *d;
	DIR *dir;

	paths.n = 0;
	paths.unreadable = 0;
	paths_put_stat("/proc/self/ns/net");
	dir = opendir(KW_NETNS_DIR);
	if (dir) {
		while ((d = readdir(dir))) {
			if (d->d_name[0] == '.' || strlen(d->d_name) > 30)
				continue;
			snprintf(path, sizeof(path), "%s/%s", KW_NETNS_DIR, d->d_name);
			paths_put_stat(path);
		}
		closedir(dir);
	}
	dir = opendir("/proc");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", d->d_name);
		paths_put_stat(path);
	}
	closedir(dir);
}

/* Opens a path of the namespace, if it is still that namespace; -errno otherwise. */
static int open_checked(const char *path, __u32 inode)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_ino != inode) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* An fd of the namespace, or -ENOENT; *scanned says whether the cache was rebuilt. */
static int netns_open(__u32 inode, int *scanned)
{
	unsigned int i;
	int fd = -ENOENT, pass;

	pthread_mutex_lock(&paths.lock);
	for (pass = 0; pass < 2 && fd < 0; pass++) {
		if (pass) {
			if (*scanned)
				break;
			paths_scan();
			*scanned = 1;
		}
		for (i = 0; i < paths.n; i++) {
			if (paths.e[i].inode != inode)
				continue;
			fd = open_checked(paths.e[i].path, inode);
			break;
		}
	}
	pthread_mutex_unlock(&paths.lock);
	return fd < 0 ? -ENOENT : fd;
}

static int u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

int kw_netns_all(__u32 *out, unsigned int max)
{
	unsigned int i, n = 0;
	__u32 *all;

	all = malloc(PATHS_MAX * sizeof(*all));
	if (!all)
		return -ENOMEM;
	pthread_mutex_lock(&paths.lock);
	paths_scan();
	for (i = 0; i < paths.n; i++)
		all[n++] = paths.e[i].inode;
	pthread_mutex_unlock(&paths.lock);
	qsort(all, n, sizeof(*all), u32_cmp);
	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	free(all);
	return n;
}

unsigned int kw_netns_unreadable(void)
{
	unsigned int n;

	pthread_mutex_lock(&paths.lock);
	n = paths.unreadable;
	pthread_mutex_unlock(&paths.lock);
	return n;
}

struct each {
	const __u32 *netns;
	unsigned int n;
	int (*fn)(void *arg, __u32 netns);
	void *arg;
	unsigned int skipped; /* namespaces not found or not entered */
	int err;	      /* what stopped the walk: -ENOMEM, or fn's */
};

static void *each_thread(void *arg)
{
	struct each *e = arg;
	unsigned int i, j;
	int *fds, scanned = 0;

	fds = malloc((e->n ? e->n : 1) * sizeof(*fds));
	if (!fds) {
		e->err = -ENOMEM;
		return NULL;
	}
	/* Open every namespace first, from the agent's own (paths under /proc/self). */
	for (i = 0; i < e->n; i++) {
		for (j = 0; j < i && e->netns[j] != e->netns[i]; j++)
			;
		fds[i] = j < i ? -EALREADY : netns_open(e->netns[i], &scanned);
		if (fds[i] == -ENOENT) {
			kw_dbg("netns %u not found", e->netns[i]);
			e->skipped++;
		}
	}
	for (i = 0; i < e->n && !e->err; i++) {
		if (fds[i] < 0)
			continue;
		if (setns(fds[i], CLONE_NEWNET)) {
			kw_dbg("enter netns %u: %s", e->netns[i], strerror(errno));
			e->skipped++;
			continue;
		}
		e->err = e->fn(e->arg, e->netns[i]);
	}
	for (i = 0; i < e->n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return NULL;
}

int kw_netns_each(const __u32 *netns, unsigned int n, int (*fn)(void *arg, __u32 netns), void *arg,
		  unsigned int *skipped)
{
	struct each e = { .netns = netns, .n = n, .fn = fn, .arg = arg };
	pthread_t t;
	int err;

	/* The thread dies with the namespace it entered last: the agent's threads never move. */
	err = pthread_create(&t, NULL, each_thread, &e);
	if (err)
		return -err;
	pthread_join(t, NULL);
	if (skipped)
		*skipped = e.skipped;
	return e.err;
}
