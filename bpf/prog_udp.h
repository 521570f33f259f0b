/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * DNS over UDP (capture-dns) and the UDP relay (include-outbound-udp-ports).
 * cgroup/sendmsg4|6 send a datagram addressed to a DNS port to the proxy's
 * DNS listener (to a relayed port: to its UDP relay) and record where it
 * was going (connected sockets are redirected by cgroup/connect4|6,
 * prog_sock_addr.h);
 * cgroup_skb/egress gives a connected socket's record its port once the
 * kernel has bound it; cgroup/recvmsg4|6 make the listener's answers come
 * from the resolver the application asked, which it checks (glibc drops
 * an answer from any other address).
 */
#ifndef SHUNT_PROG_UDP_H
#define SHUNT_PROG_UDP_H

#include "lib/capture.h"
#include "lib/common.h"
#include "lib/policy.h"
#include "lib/udp.h"

SEC("cgroup/sendmsg4")
int shunt_sendmsg4(struct bpf_sock_addr *ctx)
{
	enum shunt_connect_action action;
	struct shunt_addr dst;
	__u16 port = 0;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get4(&dst, ctx);
	action = shunt_udp_decide(ctx, &dst, &port, true);
	if (action == SHUNT_CONNECT_REFUSE)
		return SHUNT_CGROUP_REFUSE;
	if (action == SHUNT_CONNECT_REDIRECT)
		shunt_redirect4(ctx, port);
	return SHUNT_CGROUP_OK;
}

SEC("cgroup/sendmsg6")
int shunt_sendmsg6(struct bpf_sock_addr *ctx)
{
	enum shunt_connect_action action;
	struct shunt_addr dst;
	__u16 port = 0;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get6(&dst, ctx);
	action = shunt_udp_decide(ctx, &dst, &port, true);
	if (action == SHUNT_CONNECT_REFUSE)
		return SHUNT_CGROUP_REFUSE;
	if (action == SHUNT_CONNECT_REDIRECT)
		shunt_redirect6(ctx, &dst, port);
	return SHUNT_CGROUP_OK;
}

/* The resolver a captured socket asked, when the datagram it receives
 * (from `from`) is its namespace's DNS listener's answer; else NULL. A
 * socket with queries out to two resolvers at once sees both answers come
 * from the one it asked last. */
static __always_inline const struct shunt_orig_dst *
shunt_udp_answer_of(struct bpf_sock_addr *ctx, const struct shunt_addr *from)
{
	const struct shunt_netns_policy *policy;
	const struct shunt_orig_dst *orig;
	__u64 cookie;

	if (!shunt_addr_is_loopback(from))
		return NULL;
	cookie = bpf_get_socket_cookie(ctx);
	orig = bpf_map_lookup_elem(&shunt_udp_socks, &cookie);
	if (!orig)
		return NULL;
	policy = bpf_map_lookup_elem(&shunt_policy, &orig->netns_cookie);
	if (!policy || (from->port != policy->dns_port &&
			(!(policy->flags & SHUNT_POLICY_UDP_PORTS) ||
			 from->port != policy->udp_port)))
		return NULL;
	SHUNT_COUNT(orig->netns_cookie, dns_answers_rewritten);
	return orig;
}

SEC("cgroup/recvmsg4")
int shunt_recvmsg4(struct bpf_sock_addr *ctx)
{
	const struct shunt_orig_dst *orig;
	struct shunt_addr from;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get4(&from, ctx);
	orig = shunt_udp_answer_of(ctx, &from);
	if (!orig || orig->dst.family != SHUNT_AF_INET)
		return SHUNT_CGROUP_OK;
	ctx->user_ip4 = orig->dst.ip[0];
	ctx->user_port = bpf_htons(orig->dst.port);
	return SHUNT_CGROUP_OK;
}

SEC("cgroup/recvmsg6")
int shunt_recvmsg6(struct bpf_sock_addr *ctx)
{
	const struct shunt_orig_dst *orig;
	struct shunt_addr from;

	SHUNT_VARIANT_MARK();

	shunt_sock_addr_get6(&from, ctx);
	orig = shunt_udp_answer_of(ctx, &from);
	if (orig)
		shunt_sock_addr_set6(ctx, &orig->dst);
	return SHUNT_CGROUP_OK;
}

/* Every packet the cgroup sends passes here: anything but a datagram of a
 * captured UDP socket leaves after two tests. Never drops (returns 1). */
SEC("cgroup_skb/egress")
int shunt_udp_egress(struct __sk_buff *skb)
{
	struct shunt_orig_dst *orig;
	struct bpf_sock *sk = skb->sk;
	__u64 cookie;

	SHUNT_VARIANT_MARK();

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != SHUNT_IPPROTO_UDP || !sk->src_port)
		return 1;
	cookie = bpf_get_socket_cookie(skb);
	orig = bpf_map_lookup_elem(&shunt_udp_socks, &cookie);
	if (orig)
		shunt_udp_flow_set(orig, (__u16)sk->src_port);
	return 1;
}

#endif /* SHUNT_PROG_UDP_H */
