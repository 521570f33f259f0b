/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The capture's decision for one connect() or one UDP datagram of an
 * enrolled namespace: left alone, sent to one of the proxy's listeners (the
 * outbound one, or the DNS one for the DNS ports), or refused. Every hook
 * that redirects (connect4|6, sendmsg4|6) asks here, so TCP and DNS obey
 * the same exemptions and policy.
 */
#ifndef SHUNT_LIB_CAPTURE_H
#define SHUNT_LIB_CAPTURE_H

#include "addr.h"
#include "common.h"
#include "origdst.h"
#include "policy.h"
#include "trace.h"
#include "udp.h"

enum shunt_connect_action {
	SHUNT_CONNECT_LEAVE,	/* not captured: it goes where it was going */
	SHUNT_CONNECT_REDIRECT, /* rewritten to the proxy's listener */
	SHUNT_CONNECT_REFUSE,	/* refused: the caller sees EPERM */
};

/* Whether the namespace's proxy listens on loopback `port` for `family`
 * (TCP: a listener; UDP: a bound socket). */
static __always_inline bool shunt_proxy_listening(struct bpf_sock_addr *ctx,
						  __u8 family, __u16 port,
						  bool udp)
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
	/* No source: only a listener (or an unconnected socket) matches. */
	if (udp)
		sk = bpf_sk_lookup_udp(ctx, &tuple, size, BPF_F_CURRENT_NETNS,
				       0);
	else
		sk = bpf_sk_lookup_tcp(ctx, &tuple, size, BPF_F_CURRENT_NETNS,
				       0);
	if (!sk)
		return false;
	bpf_sk_release(sk);
	return true;
}

/* No proxy listener: the namespace's proxy-down policy decides. open
 * leaves it alone; closed sends it to the proxy's port anyway, where
 * nothing listens (a connect fails at once with ECONNREFUSED; no record is
 * kept). */
static __always_inline enum shunt_connect_action
shunt_proxy_down(const struct shunt_netns_policy *policy, __u64 netns,
		 const struct shunt_addr *dst, __u8 protocol, __u16 port)
{
	if (policy->flags & SHUNT_POLICY_PROXY_DOWN_OPEN) {
		SHUNT_COUNT(netns, proxy_down_open);
		shunt_trace(netns, dst, SHUNT_TRACE_PROXY_DOWN_OPEN, protocol,
			    0);
		return SHUNT_CONNECT_LEAVE;
	}
	SHUNT_COUNT(netns, proxy_down_closed);
	shunt_trace(netns, dst, SHUNT_TRACE_PROXY_DOWN_CLOSED, protocol, port);
	return SHUNT_CONNECT_REDIRECT;
}

/* Whether the connect (or datagram) is captured by the namespace's policy
 * at all: 0 when it is, else why not (enum shunt_trace_reason). DNS ports
 * are captured whatever the outbound port list says: capture-dns and the
 * DNS port list decide them (the agent takes the excluded outbound ports
 * out of that list). */
static __always_inline __u8 shunt_connect_captured(
	struct bpf_sock_addr *ctx, const struct shunt_netns_policy *policy,
	const struct shunt_config *cfg, __u64 netns,
	const struct shunt_addr *dst, bool dns)
{
	bool dst_is_loopback = shunt_addr_is_loopback(dst);

	if (shunt_task_is_proxy()) {
		SHUNT_COUNT(netns, skipped_proxy_cgroup);
		return SHUNT_TRACE_PROXY_CGROUP;
	}
	if (shunt_has_proxy_identity(cfg, ctx->sk->mark)) {
		SHUNT_COUNT(netns, skipped_bypass);
		return SHUNT_TRACE_BYPASS;
	}
	if (dst_is_loopback &&
	    !(policy->flags & SHUNT_POLICY_REDIRECT_LOOPBACK)) {
		SHUNT_COUNT(netns, skipped_loopback);
		return SHUNT_TRACE_LOOPBACK;
	}
	/* The proxy's own listeners, not every host's ports 15001/15006: a
	 * remote destination on those ports is captured like any other. */
	if (dst_is_loopback && shunt_is_proxy_port(policy, dst->port)) {
		SHUNT_COUNT(netns, skipped_proxy_port);
		return SHUNT_TRACE_PROXY_PORT;
	}
	if (!dns && !shunt_port_captured(policy, netns, SHUNT_DIR_OUTBOUND,
					 dst->port)) {
		SHUNT_COUNT(netns, skipped_policy);
		return SHUNT_TRACE_POLICY_PORT;
	}
	if (shunt_dst_excluded(policy, netns, dst)) {
		SHUNT_COUNT(netns, skipped_policy);
		return SHUNT_TRACE_POLICY_PREFIX;
	}
	if (shunt_task_excluded(policy, netns)) {
		SHUNT_COUNT(netns, skipped_policy);
		return SHUNT_TRACE_POLICY_ID;
	}
	return 0;
}

/* Decides what happens to this TCP connect() and, when it is redirected to
 * a listening proxy, records the original destination; `port` gets the
 * listener it goes to. Over quota (or with the records map full) it is
 * refused: letting it through would let a pod escape the capture by
 * exhausting its records. With no proxy listener, shunt_proxy_down(). */
static __always_inline enum shunt_connect_action
shunt_connect_decide(struct bpf_sock_addr *ctx, const struct shunt_addr *dst,
		     __u16 *port)
{
	const struct shunt_netns_policy *policy;
	const struct shunt_config *cfg;
	__u8 skipped;
	__u64 netns;
	bool dns;
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
	dns = shunt_is_dns_port(policy, netns, dst->port);
	skipped = shunt_connect_captured(ctx, policy, cfg, netns, dst, dns);
	if (skipped) {
		shunt_trace(netns, dst, skipped, IPPROTO_TCP, 0);
		return SHUNT_CONNECT_LEAVE;
	}
	*port = dns ? policy->dns_port : policy->outbound_port;
	if (!shunt_proxy_listening(ctx, dst->family, *port, false))
		return shunt_proxy_down(policy, netns, dst, IPPROTO_TCP, *port);
	err = shunt_orig_dst_record(bpf_get_socket_cookie(ctx), netns, dst,
				    cfg->netns_record_quota);
	if (err == -EDQUOT) {
		SHUNT_COUNT(netns, quota_reached);
		shunt_trace(netns, dst, SHUNT_TRACE_QUOTA, IPPROTO_TCP, 0);
		return SHUNT_CONNECT_REFUSE;
	}
	if (err) {
		SHUNT_COUNT(netns, record_failed);
		shunt_trace(netns, dst, SHUNT_TRACE_RECORD_FAILED, IPPROTO_TCP,
			    0);
		return SHUNT_CONNECT_REFUSE;
	}
	SHUNT_COUNT(netns, redirected);
	shunt_trace(netns, dst, SHUNT_TRACE_REDIRECTED, IPPROTO_TCP, *port);
	return SHUNT_CONNECT_REDIRECT;
}

/* The same for a UDP socket's connect() (`sending` false: the socket is
 * not bound yet) or one datagram sent with an address (`sending` true,
 * sendmsg: it is bound). Only the DNS ports of a namespace capturing DNS
 * (to the DNS listener) and its relayed UDP ports (to the UDP relay) are
 * captured; the record says where the socket was sending, for the proxy
 * (by the socket's port) and for its answers (recvmsg). A connected socket
 * that connects elsewhere loses its record. */
static __always_inline enum shunt_connect_action
shunt_udp_decide(struct bpf_sock_addr *ctx, const struct shunt_addr *dst,
		 __u16 *port, bool sending)
{
	const struct shunt_netns_policy *policy;
	const struct shunt_config *cfg;
	struct bpf_sock *sk = ctx->sk;
	__u16 local_port;
	__u8 skipped;
	__u64 cookie;
	__u64 netns;
	bool dns;

	if (ctx->protocol != SHUNT_IPPROTO_UDP || !sk)
		return SHUNT_CONNECT_LEAVE;
	netns = bpf_get_netns_cookie(ctx);
	policy = bpf_map_lookup_elem(&shunt_policy, &netns);
	if (!policy)
		return SHUNT_CONNECT_LEAVE;
	cfg = shunt_config_get();
	if (!cfg)
		return SHUNT_CONNECT_LEAVE;
	cookie = bpf_get_socket_cookie(ctx);
	local_port = sending ? (__u16)sk->src_port : 0;
	dns = shunt_is_dns_port(policy, netns, dst->port);
	/* UDP the policy never captures is not traced: every datagram of
	 * the namespace would be. */
	skipped = (!dns && !shunt_is_relayed_port(policy, netns, dst->port))
			  ? SHUNT_TRACE_POLICY_PORT
			  : shunt_connect_captured(ctx, policy, cfg, netns, dst,
						   true);
	if (skipped) {
		if (skipped != SHUNT_TRACE_POLICY_PORT)
			shunt_trace(netns, dst, skipped, SHUNT_IPPROTO_UDP, 0);
		if (!sending)
			shunt_udp_forget(cookie);
		return SHUNT_CONNECT_LEAVE;
	}
	*port = dns ? policy->dns_port : policy->udp_port;
	if (!shunt_proxy_listening(ctx, dst->family, *port, true))
		return shunt_proxy_down(policy, netns, dst, SHUNT_IPPROTO_UDP,
					*port);
	if (shunt_udp_record(cookie, netns, dst, local_port)) {
		SHUNT_COUNT(netns, record_failed);
		shunt_trace(netns, dst, SHUNT_TRACE_RECORD_FAILED,
			    SHUNT_IPPROTO_UDP, 0);
		return SHUNT_CONNECT_REFUSE;
	}
	if (dns)
		SHUNT_COUNT(netns, dns_udp_redirected);
	else
		SHUNT_COUNT(netns, udp_relayed);
	shunt_trace(netns, dst, SHUNT_TRACE_REDIRECTED, SHUNT_IPPROTO_UDP,
		    *port);
	return SHUNT_CONNECT_REDIRECT;
}

/* Writes the proxy's loopback listener `port` into a connect or sendmsg
 * context of either family (a v4-mapped destination stays IPv4). */
static __always_inline void shunt_redirect4(struct bpf_sock_addr *ctx,
					    __u16 port)
{
	ctx->user_ip4 = bpf_htonl(SHUNT_LOOPBACK4);
	ctx->user_port = bpf_htons(port);
}

static __always_inline void shunt_redirect6(struct bpf_sock_addr *ctx,
					    const struct shunt_addr *dst,
					    __u16 port)
{
	__u32 ip6_loopback[4] = { 0, 0, 0, bpf_htonl(1) };
	struct shunt_addr proxy;

	if (dst->family == SHUNT_AF_INET)
		shunt_addr_set4(&proxy, bpf_htonl(SHUNT_LOOPBACK4), port);
	else
		shunt_addr_set6(&proxy, ip6_loopback, port);
	shunt_sock_addr_set6(ctx, &proxy);
}

#endif /* SHUNT_LIB_CAPTURE_H */
