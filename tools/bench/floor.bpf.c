// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The cost floor for the overhead benchmark: empty programs on the tracepoints keepwatch
 * uses. Whatever keepwatch costs above these is its own work; these measure the price of
 * running any tp_btf program there at all (plus the bpf_stats bookkeeping).
 * Built by tools/bench/run.sh with clang -target bpf against bpf/vmlinux/<arch>/vmlinux.h,
 * loaded and attached by tools/bench/bpfload.py. Built with -DFALLBACKS, the receive
 * program sits where the agent's fallback for kernels before 6.3 does (bench.py --floor
 * fallbacks).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_set_state, const struct sock *sk, int oldstate, int newstate)
{
	return 0;
}

#ifdef FALLBACKS
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(floor_recv, struct sock *sk)
{
	return 0;
}
#else
SEC("tp_btf/sock_recv_length")
int BPF_PROG(floor_recv, struct sock *sk, int ret, int flags)
{
	return 0;
}
#endif

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(floor_rcv_reset, struct sock *sk)
{
	return 0;
}
