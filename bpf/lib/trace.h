/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The decision trace: while `shunt-agent trace` runs, each decision of
 * capture.h (and each refusal of the socket-option guard) is written to a
 * ring buffer with the namespace, process and destination. Off, it costs
 * one array lookup and one compare. On, it is rate-limited per second
 * across CPUs; what the limit or a full ring holds back is counted, and
 * the trace command shows it.
 */
#ifndef SHUNT_LIB_TRACE_H
#define SHUNT_LIB_TRACE_H

#include "common.h"

#define SHUNT_TRACE_RING_BYTES (256 * 1024)
#define SHUNT_NSEC_PER_SEC 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shunt_trace_ctl);
} shunt_trace_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SHUNT_TRACE_RING_BYTES);
} shunt_trace_events SEC(".maps");

/* Whether the kernel lets cgroup programs read the current task's pid and
 * command (6.0 and later); set by the agent before load. Where it does
 * not, the calls are dead code the verifier never sees. */
const volatile __u32 shunt_trace_task_helpers = 0;

/* Takes one of this second's events; false when over the rate. */
static __always_inline bool shunt_trace_take(struct shunt_trace_ctl *ctl,
					     __u64 now)
{
	if (!ctl->per_second)
		return true;
	if (now - ctl->window_start >= SHUNT_NSEC_PER_SEC) {
		/* Racy across CPUs at the second's turn: a few events more or
		 * less, never a stuck window. */
		ctl->window_start = now;
		ctl->window_events = 0;
	}
	if (__sync_fetch_and_add(&ctl->window_events, 1) >= ctl->per_second) {
		__sync_fetch_and_add(&ctl->dropped_rate, 1);
		return false;
	}
	return true;
}

static __always_inline void shunt_trace(__u64 netns,
					const struct shunt_addr *dst,
					__u8 reason, __u8 protocol, __u16 port)
{
	struct shunt_trace_event *e;
	struct shunt_trace_ctl *ctl;
	__u32 zero = 0;
	__u64 uid_gid;
	__u64 now;

	ctl = bpf_map_lookup_elem(&shunt_trace_ctl, &zero);
	if (!ctl || !ctl->until_ns)
		return;
	now = bpf_ktime_get_ns();
	if (now >= ctl->until_ns)
		return;
	if (ctl->netns_cookie && ctl->netns_cookie != netns)
		return;
	if (!shunt_trace_take(ctl, now))
		return;
	e = bpf_ringbuf_reserve(&shunt_trace_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&ctl->dropped_full, 1);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->time_ns = now;
	e->netns_cookie = netns;
	uid_gid = bpf_get_current_uid_gid();
	e->uid = (__u32)uid_gid;
	e->gid = (__u32)(uid_gid >> 32);
	if (shunt_trace_task_helpers) {
		e->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	e->reason = reason;
	e->protocol = protocol;
	e->listener_port = port;
	if (dst)
		e->dst = *dst;
	bpf_ringbuf_submit(e, 0);
}

#endif /* SHUNT_LIB_TRACE_H */
