/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup/connect4|6 send an enrolled namespace's TCP connections to the
 * proxy's outbound listener and remember where they were going;
 * cgroup/getpeername4|6 give the application that destination back, and
 * cgroup/getsockname4|6 the local address it would have had (the
 * namespace's, not loopback).
 */
#ifndef SHUNT_SOCK_ADDR_H
#define SHUNT_SOCK_ADDR_H

#include "lib/common.h"
#include "lib/origdst.h"
#include "lib/policy.h"

/* What a connect hook does with one connect(). */
enum shunt_connect_action {
	SHUNT_CONNECT_LEAVE,	/* not captured: it goes where it was going */
	SHUNT_CONNECT_REDIRECT, /* rewritten to the proxy's outbound listener */
	SHUNT_CONNECT_REFUSE,	/* refused: the caller sees EPERM */
};

/* Whether the namespace's proxy listens on its outbound port for `family`
 * (the listener a redirected connect of that family is sent to). */
static __always_inline bool shunt_proxy_listening(struct bpf_sock_addr *ctx,
						  __u8 family, __u16 port)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	__u32 size;

	if (family == SHUNT_AF_INET) {
		tuple.ipv4.daddr = bpf_htonl(SHUNT_LOOPBACK4);
		tuple.ipv4.dport = bpf_htons(port);
		size = sizeof(tuple.ipv4);
	} else {
		tuple.ipv6.daddr[3] = bpf_htonl(1);
		tuple.ipv6.dport = bpf_htons(port);
		size = sizeof(tuple.ipv6);
	}
	/* No source: only a listener can match. */
	sk = bpf_sk_lookup_tcp(ctx, &tuple, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return false;
	bpf_sk_release(sk);
	return true;
}

/* Whether the connect is captured by the namespace's policy at all. */
static __always_inline bool
shunt_connect_captured(struct bpf_sock_addr *ctx,
		       const struct shunt_netns_policy *policy,
		       const struct shunt_config *cfg, __u64 netns,
		       const struct shunt_addr *dst)
{
	bool dst_is_loopback = shunt_addr_is_loopback(dst);

	if (shunt_task_is_proxy()) {
		SHUNT_COUNT(netns, skipped_proxy_cgroup);
		return false;
	}
	if (shunt_has_proxy_identity(cfg, ctx->sk->mark)) {
		SHUNT_COUNT(netns, skipped_bypass);
		return false;
	}
	if (dst_is_loopback &&
	    !(policy->flags & SHUNT_POLICY_REDIRECT_LOOPBACK)) {
		SHUNT_COUNT(netns, skipped_loopback);
		return false;
	}
	/* The proxy's own listeners, not every host's ports 15001/15006: a
	 * remote destination on those ports is captured like any other. */
	if (dst_is_loopback && shunt_is_proxy_port(policy, dst->port)) {
		SHUNT_COUNT(netns, skipped_proxy_port);
		return false;
	}
	if (!shunt_port_captured(policy, netns, SHUNT_DIR_OUTBOUND,
				 dst->port) ||
	    shunt_dst_excluded(policy, netns, dst) ||
	    shunt_task_excluded(policy, netns)) {
		SHUNT_COUNT(netns, skipped_policy);
		return false;
	}
	return true;
}

/* Decides what happens to this connect() and, when it is redirected to a
 * listening proxy, records the original destination. Over quota (or with
 * the records map full) it is refused: letting it through would let a pod
 * escape the capture by exhausting its records. With no proxy listener,
 * the namespace's proxy-down policy decides: open leaves it alone, closed
 * sends it to the proxy's port anyway, where nothing listens, so connect()
 * fails at once with ECONNREFUSED (no record is kept for it). */
static __always_inline enum shunt_connect_action
shunt_connect_decide(struct bpf_sock_addr *ctx, const struct shunt_addr *dst,
		     const struct shunt_netns_policy **policy_out)
{
	const struct shunt_netns_policy *policy;
	const struct shunt_config *cfg;
	__u64 netns;
	int err;

	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return SHUNT_CONNECT_LEAVE;
	netns = bpf_get_netns_cookie(ctx);
	policy = bpf_map_lookup_elem(&shunt_policy, &netns);
	if (!policy)
		return SHUNT_CONNECT_LEAVE;
	cfg = shunt_config_get();
	if (!cfg || !ctx->sk)
		return SHUNT_CONNECT_LEAVE;

	SHUNT_COUNT(netns, connect_seen);
	if (!shunt_connect_captured(ctx, policy, cfg, netns, dst))
		return SHUNT_CONNECT_LEAVE;
	*policy_out = policy;
	if (!shunt_proxy_listening(ctx, dst->family,
				   shunt_redirect_port(policy, dst->port))) {
		if (policy->flags & SHUNT_POLICY_PROXY_DOWN_OPEN) {
			SHUNT_COUNT(netns, proxy_down_open);
			return SHUNT_CONNECT_LEAVE;
		}
		SHUNT_COUNT(netns, proxy_down_closed);
		return SHUNT_CONNECT_REDIRECT;
	}
	err = shunt_orig_dst_record(bpf_get_socket_cookie(ctx), netns, dst,
				    cfg->netns_record_quota);
	if (err == -EDQUOT) {
		SHUNT_COUNT(netns, quota_reached);
		return SHUNT_CONNECT_REFUSE;
	}
	if (err) {
		SHUNT_COUNT(netns, record_failed);
		return SHUNT_CONNECT_REFUSE;
	}
	SHUNT_COUNT(netns, redirected);
	return SHUNT_CONNECT_REDIRECT;
}

SEC("cgroup/connect4")
int shunt_connect4(struct bpf_sock_addr *ctx)
{
	const struct shunt_netns_policy *policy = NULL;
	enum shunt_connect_action action;
	struct shunt_addr dst;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get4(&dst, ctx);
	action = shunt_connect_decide(ctx, &dst, &policy);
	if (action == SHUNT_CONNECT_REFUSE)
		return SHUNT_CGROUP_REFUSE;
	if (action != SHUNT_CONNECT_REDIRECT || !policy)
		return SHUNT_CGROUP_OK;
	ctx->user_ip4 = bpf_htonl(SHUNT_LOOPBACK4);
	ctx->user_port = bpf_htons(shunt_redirect_port(policy, dst.port));
	return SHUNT_CGROUP_OK;
}

SEC("cgroup/connect6")
int shunt_connect6(struct bpf_sock_addr *ctx)
{
	const struct shunt_netns_policy *policy = NULL;
	enum shunt_connect_action action;
	struct shunt_addr dst, proxy;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get6(&dst, ctx);
	action = shunt_connect_decide(ctx, &dst, &policy);
	if (action == SHUNT_CONNECT_REFUSE)
		return SHUNT_CGROUP_REFUSE;
	if (action != SHUNT_CONNECT_REDIRECT || !policy)
		return SHUNT_CGROUP_OK;
	/* A v4-mapped destination stays IPv4: the proxy's IPv4 listener. */
	if (dst.family == SHUNT_AF_INET) {
		shunt_addr_set4(&proxy, bpf_htonl(SHUNT_LOOPBACK4),
				shunt_redirect_port(policy, dst.port));
	} else {
		__u32 ip6_loopback[4] = { 0, 0, 0, bpf_htonl(1) };

		shunt_addr_set6(&proxy, ip6_loopback,
				shunt_redirect_port(policy, dst.port));
	}
	shunt_sock_addr_set6(ctx, &proxy);
	return SHUNT_CGROUP_OK;
}

#define SHUNT_IPPROTO_MPTCP 262

/* Where a redirected application socket was going; NULL for any other
 * socket. An MPTCP socket's connect ran on its first subflow, whose record
 * the MPTCP socket itself cannot name: its pair (same addresses, known
 * once established) finds it. */
static __always_inline struct shunt_orig_dst *
shunt_orig_dst_of_app(struct bpf_sock_addr *ctx)
{
	struct shunt_pair_key key = {};
	struct shunt_orig_dst *orig;
	struct shunt_ends ends;
	struct bpf_sock *sk;

	orig = shunt_orig_dst_lookup(bpf_get_socket_cookie(ctx));
	if (orig || ctx->protocol != SHUNT_IPPROTO_MPTCP)
		return orig;
	sk = ctx->sk;
	if (!sk)
		return NULL;
	shunt_ends_from_sk(&ends, sk);
	shunt_pair_key_set(&key, bpf_get_netns_cookie(ctx), &ends, true);
	return bpf_map_lookup_elem(&shunt_pairs, &key);
}

/* The namespace's own addresses (for getsockname), from the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_NETNS);
	__type(key, __u64);
	__type(value, struct shunt_netns_addrs);
} shunt_netns_addrs SEC(".maps");

/* The local address a redirected socket would have had: the namespace's
 * address of the destination's family. NULL when unknown (or when the
 * destination was loopback, where loopback is the right answer). */
static __always_inline const struct shunt_netns_addrs *
shunt_local_addrs_of(const struct shunt_orig_dst *orig)
{
	if (shunt_addr_is_loopback(&orig->dst))
		return NULL;
	return bpf_map_lookup_elem(&shunt_netns_addrs, &orig->netns_cookie);
}

SEC("cgroup/getpeername4")
int shunt_getpeername4(struct bpf_sock_addr *ctx)
{
	struct shunt_orig_dst *orig = shunt_orig_dst_of_app(ctx);

	SHUNT_VARIANT_MARK();
	if (!orig || orig->dst.family != SHUNT_AF_INET)
		return SHUNT_CGROUP_OK;
	ctx->user_ip4 = orig->dst.ip[0];
	ctx->user_port = bpf_htons(orig->dst.port);
	SHUNT_COUNT(orig->netns_cookie, peername_rewritten);
	return SHUNT_CGROUP_OK;
}

SEC("cgroup/getpeername6")
int shunt_getpeername6(struct bpf_sock_addr *ctx)
{
	struct shunt_orig_dst *orig = shunt_orig_dst_of_app(ctx);

	SHUNT_VARIANT_MARK();
	if (!orig)
		return SHUNT_CGROUP_OK;
	shunt_sock_addr_set6(ctx, &orig->dst);
	SHUNT_COUNT(orig->netns_cookie, peername_rewritten);
	return SHUNT_CGROUP_OK;
}

SEC("cgroup/getsockname4")
int shunt_getsockname4(struct bpf_sock_addr *ctx)
{
	const struct shunt_netns_addrs *local;
	struct shunt_orig_dst *orig = shunt_orig_dst_of_app(ctx);

	SHUNT_VARIANT_MARK();
	if (!orig || orig->dst.family != SHUNT_AF_INET)
		return SHUNT_CGROUP_OK;
	local = shunt_local_addrs_of(orig);
	if (local && local->ip4)
		ctx->user_ip4 = local->ip4;
	return SHUNT_CGROUP_OK;
}

SEC("cgroup/getsockname6")
int shunt_getsockname6(struct bpf_sock_addr *ctx)
{
	const struct shunt_netns_addrs *local;
	struct shunt_orig_dst *orig = shunt_orig_dst_of_app(ctx);
	__u32 ip6[4];

	SHUNT_VARIANT_MARK();
	if (!orig)
		return SHUNT_CGROUP_OK;
	local = shunt_local_addrs_of(orig);
	if (!local)
		return SHUNT_CGROUP_OK;
	if (orig->dst.family == SHUNT_AF_INET) {
		if (!local->ip4)
			return SHUNT_CGROUP_OK;
		shunt_ip6_set_v4mapped(ip6, local->ip4);
	} else {
		if (!local->ip6[0] && !local->ip6[1] && !local->ip6[2] &&
		    !local->ip6[3])
			return SHUNT_CGROUP_OK;
		ip6[0] = local->ip6[0];
		ip6[1] = local->ip6[1];
		ip6[2] = local->ip6[2];
		ip6[3] = local->ip6[3];
	}
	shunt_sock_addr_set_ip6(ctx, ip6);
	return SHUNT_CGROUP_OK;
}

#endif /* SHUNT_SOCK_ADDR_H */
