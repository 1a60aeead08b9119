// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * floorload: the empty 'floor' programs (floor.bpf.c) loaded and attached in a qemu guest,
 * for the guests' cost benchmark (tools/bench/kernels-cost.py). The host benchmark loads
 * them with bpfload.py, but the guests have no Python: this is the same loader in C,
 * linked against the host's libbpf, whose shared libraries go into the initramfs with it.
 *
 *   floorload OBJ
 *	opens and loads OBJ, attaches every program in it, prints "attached N: name,..."
 *	and waits. At each SIGUSR1 it prints one line per program, "prog NAME RUN_CNT
 *	RUN_TIME_NS" (bpf_stats: counted while kernel.bpf_stats_enabled is 1), then
 *	"stats K" (K counts the reports from 1); at SIGTERM (or SIGINT, SIGHUP) the same
 *	report, and it detaches and exits 0. Reports at both ends of a load give its cost
 *	without the warm-up before it (under qemu's TCG, code runs slowly until translated).
 *   floorload -l
 *	lists every BPF program loaded in the system, one line each: "info ID NAME
 *	XLATED_INSNS CALLS JITED_BYTES RUN_CNT RUN_TIME_NS", CALLS the calls left in the
 *	program the verifier produced (helpers and kfunc calls it did not inline, and
 *	subprograms). What the agent's programs became on this kernel.
 *
 * Exit status: 1 on any open, load, attach or info error, with a message on stderr.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PROGS 16

static int print_stats(struct bpf_object *obj)
{
	static int reports;
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj)
	{
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
			fprintf(stderr, "floorload: info of %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			return -1;
		}
		printf("prog %s %llu %llu\n", bpf_program__name(prog),
		       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns);
	}
	printf("stats %d\n", ++reports);
	fflush(stdout);
	return 0;
}

/* One program's line of `floorload -l`; 0, or -1 if its info could not be read. */
static int list_program(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), i, n, calls = 0;
	struct bpf_insn *insns;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	n = info.xlated_prog_len / sizeof(*insns);
	insns = calloc(n ? n : 1, sizeof(*insns));
	if (!insns)
		return -1;
	/* The instructions themselves: a second call with a buffer for them. */
	info = (struct bpf_prog_info){ .xlated_prog_len = n * sizeof(*insns),
				       .xlated_prog_insns = (__u64)(unsigned long)insns };
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		free(insns);
		return -1;
	}
	for (i = 0; i < info.xlated_prog_len / sizeof(*insns); i++)
		calls += insns[i].code == (BPF_JMP | BPF_CALL);
	printf("info %u %s %u %u %u %llu %llu\n", info.id, info.name, n, calls, info.jited_prog_len,
	       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns);
	free(insns);
	return 0;
}

static int list_programs(void)
{
	__u32 id = 0;
	int fd;

	while (bpf_prog_get_next_id(id, &id) == 0) {
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			continue; /* unloaded meanwhile */
		if (list_program(fd)) {
			fprintf(stderr, "floorload: info of program %u: %s\n", id, strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_link *links[MAX_PROGS];
	struct bpf_program *prog;
	struct bpf_object *obj;
	int i, n = 0, sig, rc = 1;
	sigset_t stop; /* and SIGUSR1: report */

	if (argc != 2) {
		fprintf(stderr, "usage: floorload OBJ | floorload -l\n");
		return 2;
	}
	if (!strcmp(argv[1], "-l"))
		return list_programs() ? 1 : 0;
	/* Blocked before anything is attached: a SIGTERM early waits for sigwait(). */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGUSR1);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "floorload: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "floorload: load %s: %s\n", argv[1], strerror(errno));
		goto close_obj;
	}
	bpf_object__for_each_program(prog, obj)
	{
		if (n == MAX_PROGS) {
			fprintf(stderr, "floorload: more than %d programs\n", MAX_PROGS);
			goto destroy_links;
		}
		links[n] = bpf_program__attach(prog);
		if (!links[n]) {
			fprintf(stderr, "floorload: attach %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			goto destroy_links;
		}
		n++;
	}
	printf("attached %d:", n);
	bpf_object__for_each_program(prog, obj)
		printf("%s%s", prog == bpf_object__next_program(obj, NULL) ? " " : ",",
		       bpf_program__name(prog));
	printf("\n");
	fflush(stdout);

	while (sigwait(&stop, &sig) == 0 && print_stats(obj) == 0) {
		if (sig != SIGUSR1) {
			rc = 0;
			break;
		}
	}
destroy_links:
	for (i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
close_obj:
	bpf_object__close(obj);
	return rc;
}
