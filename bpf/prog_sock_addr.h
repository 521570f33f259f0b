/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup/connect4|6 send an enrolled namespace's TCP connections to the
 * proxy's outbound listener (its DNS ones, TCP and UDP, to the DNS
 * listener) and remember where they were going;
 * cgroup/getpeername4|6 give the application that destination back, and
 * cgroup/getsockname4|6 the local address it would have had (the
 * namespace's, not loopback).
 */
#ifndef SHUNT_SOCK_ADDR_H
#define SHUNT_SOCK_ADDR_H

#include "lib/capture.h"
#include "lib/common.h"
#include "lib/origdst.h"
#include "lib/policy.h"
#include "lib/udp.h"

/* A TCP connect, or a UDP socket's (DNS capture): decided by capture.h. */
static __always_inline enum shunt_connect_action
shunt_connect_any(struct bpf_sock_addr *ctx, const struct shunt_addr *dst,
		  __u16 *port)
{
	if (ctx->type == SHUNT_SOCK_DGRAM)
		return shunt_udp_decide(ctx, dst, port, false);
	return shunt_connect_decide(ctx, dst, port);
}

SEC("cgroup/connect4")
int shunt_connect4(struct bpf_sock_addr *ctx)
{
	enum shunt_connect_action action;
	struct shunt_addr dst;
	__u16 port = 0;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get4(&dst, ctx);
	action = shunt_connect_any(ctx, &dst, &port);
	if (action == SHUNT_CONNECT_REFUSE)
		return SHUNT_CGROUP_REFUSE;
	if (action == SHUNT_CONNECT_REDIRECT)
		shunt_redirect4(ctx, port);
	return SHUNT_CGROUP_OK;
}

SEC("cgroup/connect6")
int shunt_connect6(struct bpf_sock_addr *ctx)
{
	enum shunt_connect_action action;
	struct shunt_addr dst;
	__u16 port = 0;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get6(&dst, ctx);
	action = shunt_connect_any(ctx, &dst, &port);
	if (action == SHUNT_CONNECT_REFUSE)
		return SHUNT_CGROUP_REFUSE;
	if (action == SHUNT_CONNECT_REDIRECT)
		shunt_redirect6(ctx, &dst, port);
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

	/* A UDP socket's, while it is connected (to the DNS listener). */
	if (ctx->type == SHUNT_SOCK_DGRAM) {
		__u64 cookie = bpf_get_socket_cookie(ctx);

		if (!ctx->sk || !ctx->sk->dst_port)
			return NULL;
		return bpf_map_lookup_elem(&shunt_udp_socks, &cookie);
	}
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
