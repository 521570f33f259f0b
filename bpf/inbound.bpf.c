// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Inbound capture: an sk_lookup program attached to one enrolled network
 * namespace (one bpf_link per namespace) hands new TCP connections for
 * captured ports on the pod's addresses to the proxy's inbound listener.
 * The proxy finds the original destination with getsockname().
 *
 * sk_lookup programs cannot ask for their namespace's cookie, so the agent
 * loads one copy per namespace with the cookie in .rodata; the maps are the
 * main object's pinned ones.
 */
#include "lib/common.h"
#include "lib/inbound.h"
#include "lib/policy.h"

const volatile __u64 shunt_netns = 0;

static __always_inline bool
shunt_lookup_is_local_only(struct bpf_sk_lookup *ctx)
{
	if (ctx->family == AF_INET)
		return (bpf_ntohl(ctx->local_ip4) >> 24) == 127 ||
		       ctx->remote_ip4 == ctx->local_ip4;
	if (!ctx->local_ip6[0] && !ctx->local_ip6[1] && !ctx->local_ip6[2] &&
	    ctx->local_ip6[3] == bpf_htonl(1))
		return true;
	return ctx->remote_ip6[0] == ctx->local_ip6[0] &&
	       ctx->remote_ip6[1] == ctx->local_ip6[1] &&
	       ctx->remote_ip6[2] == ctx->local_ip6[2] &&
	       ctx->remote_ip6[3] == ctx->local_ip6[3];
}

/* Returns 0 when the connection was given to the proxy's listener,
 * -ECONNREFUSED when the proxy has no listener and the namespace's proxy-down
 * policy is closed (the connection must not reach the application unproxied).
 */
static __always_inline int shunt_inbound_steer(struct bpf_sk_lookup *ctx,
					       __u64 netns)
{
	const struct shunt_netns_policy *policy;
	struct shunt_listener_key key = {};
	struct bpf_sock *sk;
	__u16 port = (__u16)ctx->local_port;
	long err;

	if (ctx->protocol != IPPROTO_TCP)
		return -EPROTONOSUPPORT;
	policy = bpf_map_lookup_elem(&shunt_policy, &netns);
	if (!policy || !(policy->flags & SHUNT_POLICY_CAPTURE_INBOUND))
		return -ENOENT;
	/* Loopback, and the proxy's own connection to the pod's address
	 * (source and destination are the same local address): never
	 * steered, so there is no loop whatever the application binds to. */
	if (shunt_lookup_is_local_only(ctx))
		return -EPERM;
	if (shunt_is_proxy_port(policy, port) ||
	    !shunt_port_captured(policy, netns, SHUNT_DIR_INBOUND, port)) {
		SHUNT_COUNT(netns, inbound_skipped);
		return -EPERM;
	}
	key.netns_cookie = netns;
	key.family = ctx->family;
	sk = bpf_map_lookup_elem(&shunt_inbound_listeners, &key);
	if (!sk) {
		SHUNT_COUNT(netns, inbound_no_listener);
		if (policy->flags & SHUNT_POLICY_PROXY_DOWN_OPEN) {
			SHUNT_COUNT(netns, proxy_down_open);
			return -ENOENT;
		}
		SHUNT_COUNT(netns, proxy_down_closed);
		return -ECONNREFUSED;
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err) {
		SHUNT_COUNT(netns, inbound_no_listener);
		return (int)err;
	}
	SHUNT_COUNT(netns, inbound_steered);
	return 0;
}

SEC("sk_lookup")
int shunt_sk_lookup(struct bpf_sk_lookup *ctx)
{
	/* A dropped SYN is retried by the client, and reaches the proxy if
	 * it listens again before the client gives up. */
	if (shunt_inbound_steer(ctx, shunt_netns) == -ECONNREFUSED)
		return SK_DROP;
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
