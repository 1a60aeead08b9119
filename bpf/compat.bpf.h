/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Every difference between the kernels keepwatch runs on, in one place: each shim names
 * the kernel version (and the change) it covers. Differences are found through BTF and
 * CO-RE at load time, never with #if on a version (backports defeat it).
 */
#ifndef KW_COMPAT_BPF_H
#define KW_COMPAT_BPF_H

/*
 * tcp_of(): the tcp_sock of a full TCP socket. Callers know it is one (TCP state changes,
 * sockets that have our state), so where the kernel has it, the bpf_rdonly_cast kfunc
 * (6.2, "bpf: Add a kfunc for generic type cast") makes the pointer: a cast the verifier
 * inlines, no helper call, which keeps the receive path short; reads through it are
 * fault-safe. Before 6.2, bpf_skc_to_tcp_sock() (5.9, "bpf: Add
 * bpf_skc_to_{tcp,tcp_timewait,tcp_request}_sock() helpers") does the job with a call.
 *
 * The kfunc is weak, so the object loads on a kernel without it: libbpf 1.1 leaves the
 * call unresolved (imm 0), which the verifier accepts if it removes it as dead code (5.16,
 * "bpf: Be conservative while processing invalid kfunc calls"; the removal needs CAP_BPF,
 * which the agent needs anyway). cfg_use_rdonly_cast (keepwatch.bpf.c) at 0 makes it dead.
 * libbpf 1.1 has no bpf_ksym_exists() (1.2 has), hence the flag.
 *
 * The loader clears cfg_use_rdonly_cast when the kernel's BTF has no bpf_rdonly_cast.
 *
 * The helper's result may be NULL (not a full TCP socket), the cast's never is, but the
 * verifier cannot tell which one it got: callers check.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

static __always_inline struct tcp_sock *tcp_of(const struct sock *sk)
{
	if (cfg_use_rdonly_cast)
		return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	return bpf_skc_to_tcp_sock((struct sock *)sk);
}

/*
 * Requests before sock_recv_length (6.3, "net: socket: add sock_recv_length tracepoint";
 * sendfile seen from 6.5): the tcp_rcv_space_adjust tracepoint (4.16, "tcp: add
 * tcp_rcv_space_adjust tracepoint") fires in TCP's receive path each time data has been
 * copied to the reader (tcp_recvmsg, and tcp_read_sock for splice). It is a tracepoint, so
 * it loads wherever tp_btf does (fentry may be refused), and the turn logic of
 * handle_recv() is the same: several fires for one message count once. It knows no
 * length and no flags: a MSG_PEEK that copies data counts its turn at the peek.
 */

/*
 * Reset reasons before 6.10: the two-argument tcp_send_reset (sk, skb). keepwatch names the
 * reason from the socket, as the kernel does since 6.10 for the cases that matter here:
 * - no socket: NO_SOCKET; a timewait socket: TIMEWAIT_SOCKET; a listener (the
 *   connection is gone): TCP_FLAGS;
 * - a reply (skb given) from a full socket the kernel has just closed (tcp_done in
 *   tcp_rcv_state_process: data after our FIN): ABORT_ON_DATA; other replies:
 *   NOT_SPECIFIED;
 * - an active reset (no skb, tcp_send_active_reset): ABORT_ON_CLOSE with data unread (the
 *   FIN, if one came, takes one sequence number), else TCP_STATE (linger 0, abort).
 * Keep-alive timeouts, memory pressure and linger2 aborts are then TCP_STATE.
 */
static __always_inline __u8 rst_reason_inferred(const struct sock *sk, const struct sk_buff *skb)
{
	struct tcp_sock *tp;
	__u32 unread;
	int state;

	if (!sk)
		return KW_RST_NO_SOCKET;
	state = sk->__sk_common.skc_state;
	if (state == TCP_TIME_WAIT)
		return KW_RST_TIMEWAIT_SOCKET;
	if (state == TCP_LISTEN || state == TCP_NEW_SYN_RECV)
		return KW_RST_TCP_FLAGS;
	if (skb)
		return state == TCP_CLOSE ? KW_RST_ABORT_ON_DATA : KW_RST_NOT_SPECIFIED;
	tp = tcp_of(sk);
	if (!tp)
		return KW_RST_TCP_STATE;
	unread = tp->rcv_nxt - tp->copied_seq - (sk->sk_shutdown & RCV_SHUTDOWN ? 1 : 0);
	return (__s32)unread > 0 ? KW_RST_ABORT_ON_CLOSE : KW_RST_TCP_STATE;
}

/*
 * Resets without a full socket before 6.10: the two-argument tcp_send_reset fires only
 * for full sockets (tcp_v4_send_reset: "if (sk && sk_fullsock(sk))"), so the resets a
 * timewait socket or no socket at all answers (the late request of a keep-alive race)
 * are seen by fentry on tcp_v4_send_reset and tcp_v6_send_reset, which every reply reset
 * passes (BPF trampolines: 5.5 on x86_64; on arm64 attaching them needs ftrace direct
 * calls, which Debian's 6.1 lacks: the loader then goes on without them). Those programs
 * take only what the tracepoint misses, and the tracepoint's program skips it when they
 * are chosen (cfg_bare_resets_fentry), so that a kernel that fires both counts once.
 */
static __always_inline bool rst_bare(const struct sock *sk)
{
	return !sk || sk->__sk_common.skc_state == TCP_TIME_WAIT;
}

/*
 * Reset reasons: enum sk_rst_reason and the reason argument of tcp_send_reset came in 6.10
 * (5cb2cb3cb20c "net: introduce rstreason to detect why the RST is sent", b533fb9cf4f7
 * "rstreason: make it work in trace world"); later kernels added reasons (ABORT_ON_CLOSE and the other active
 * resets) and renumbered the enum. Before 6.10 the tracepoint has two arguments and the
 * loader does not load kw_send_reset.
 *
 * A local flavor of the enum, so that the object builds against a vmlinux.h without it
 * (6.1's): libbpf matches enum sk_rst_reason___kw to the kernel's enum sk_rst_reason, and
 * each NAME___kw to the kernel's NAME, by dropping the ___ suffix. The values here are
 * placeholders: bpf_core_enum_value() reads the running kernel's. The list names only
 * the reasons keepwatch tells apart.
 */
enum sk_rst_reason___kw {
	SK_RST_REASON_NOT_SPECIFIED___kw,
	SK_RST_REASON_NO_SOCKET___kw,
	SK_RST_REASON_TCP_FLAGS___kw,
	SK_RST_REASON_TCP_ABORT_ON_DATA___kw,
	SK_RST_REASON_TCP_TIMEWAIT_SOCKET___kw,
	SK_RST_REASON_TCP_ABORT_ON_CLOSE___kw,
	SK_RST_REASON_TCP_ABORT_ON_LINGER___kw,
	SK_RST_REASON_TCP_ABORT_ON_MEMORY___kw,
	SK_RST_REASON_TCP_STATE___kw,
	SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT___kw,
	SK_RST_REASON_TCP_DISCONNECT_WITH_DATA___kw,
	SK_RST_REASON_INVALID_SYN___kw,
};

/*
 * keepwatch's name of the kernel's reset reason. A reason the running kernel lacks
 * compiles to a constant false (its value is never read); an unknown one is KW_RST_OTHER.
 */
static __always_inline __u8 rst_reason(int r)
{
#define KW_REASON(kname, ours)                                                                     \
	if (bpf_core_enum_value_exists(enum sk_rst_reason___kw, SK_RST_REASON_##kname##___kw) &&   \
	    r == bpf_core_enum_value(enum sk_rst_reason___kw, SK_RST_REASON_##kname##___kw))       \
		return ours;
	KW_REASON(NOT_SPECIFIED, KW_RST_NOT_SPECIFIED)
	KW_REASON(NO_SOCKET, KW_RST_NO_SOCKET)
	KW_REASON(TCP_FLAGS, KW_RST_TCP_FLAGS)
	KW_REASON(TCP_ABORT_ON_DATA, KW_RST_ABORT_ON_DATA)
	KW_REASON(TCP_TIMEWAIT_SOCKET, KW_RST_TIMEWAIT_SOCKET)
	KW_REASON(TCP_ABORT_ON_CLOSE, KW_RST_ABORT_ON_CLOSE)
	KW_REASON(TCP_ABORT_ON_LINGER, KW_RST_ABORT_ON_LINGER)
	KW_REASON(TCP_ABORT_ON_MEMORY, KW_RST_ABORT_ON_MEMORY)
	KW_REASON(TCP_STATE, KW_RST_TCP_STATE)
	KW_REASON(TCP_KEEPALIVE_TIMEOUT, KW_RST_KEEPALIVE_TIMEOUT)
	KW_REASON(TCP_DISCONNECT_WITH_DATA, KW_RST_DISCONNECT_WITH_DATA)
	KW_REASON(INVALID_SYN, KW_RST_INVALID_SYN)
#undef KW_REASON
	return KW_RST_OTHER;
}

#endif /* KW_COMPAT_BPF_H */
