/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Every difference between the kernels keepwatch runs on, in one place: each shim names
 * the kernel version (and the change) it covers. Differences are found through BTF and
 * CO-RE at load time, never with #if on a version (backports defeat it).
 */
#ifndef KW_COMPAT_BPF_H
#define KW_COMPAT_BPF_H

/* 6.2+: a cast the verifier inlines, no helper call; reads through it are fault-safe. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * The tcp_sock of a full TCP socket. Callers know it is one (TCP state changes, sockets
 * that have our state): a cast the verifier inlines beats bpf_skc_to_tcp_sock's call,
 * 15 ns of the receive path's 130.
 */
static __always_inline struct tcp_sock *tcp_of(const struct sock *sk)
{
	return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
}

/* keepwatch's name of the kernel's reset reason, resolved through BTF (6.10+). */
static __always_inline __u8 rst_reason(int r)
{
#define KW_REASON(kname, ours)                                                                     \
	if (bpf_core_enum_value_exists(enum sk_rst_reason, kname) &&                               \
	    r == bpf_core_enum_value(enum sk_rst_reason, kname))                                   \
		return ours;
	KW_REASON(SK_RST_REASON_NOT_SPECIFIED, KW_RST_NOT_SPECIFIED)
	KW_REASON(SK_RST_REASON_NO_SOCKET, KW_RST_NO_SOCKET)
	KW_REASON(SK_RST_REASON_TCP_FLAGS, KW_RST_TCP_FLAGS)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_DATA, KW_RST_ABORT_ON_DATA)
	KW_REASON(SK_RST_REASON_TCP_TIMEWAIT_SOCKET, KW_RST_TIMEWAIT_SOCKET)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_CLOSE, KW_RST_ABORT_ON_CLOSE)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_LINGER, KW_RST_ABORT_ON_LINGER)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_MEMORY, KW_RST_ABORT_ON_MEMORY)
	KW_REASON(SK_RST_REASON_TCP_STATE, KW_RST_TCP_STATE)
	KW_REASON(SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT, KW_RST_KEEPALIVE_TIMEOUT)
	KW_REASON(SK_RST_REASON_TCP_DISCONNECT_WITH_DATA, KW_RST_DISCONNECT_WITH_DATA)
	KW_REASON(SK_RST_REASON_INVALID_SYN, KW_RST_INVALID_SYN)
#undef KW_REASON
	return KW_RST_OTHER;
}

#endif /* KW_COMPAT_BPF_H */
