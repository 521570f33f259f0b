/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup/getsockopt answers SO_ORIGINAL_DST (SOL_IP/80 and SOL_IPV6/80) on
 * the proxy's accepted socket, and on a UDP socket it connected to a
 * captured datagram's source (lib/udp.h). Sockets it knows nothing about keep
 * the kernel's own answer, so conntrack still answers in redirect mode.
 * cgroup/setsockopt guards the options that could take a socket past the
 * capture: SO_MARK with the proxy's mark, IP_TRANSPARENT and
 * IPV6_TRANSPARENT. Only the proxies (their cgroups) may set them in an
 * enrolled namespace whose policy asks for the guard.
 */
#ifndef SHUNT_SOCKOPT_H
#define SHUNT_SOCKOPT_H

#include "lib/common.h"
#include "lib/origdst.h"
#include "lib/policy.h"
#include "lib/trace.h"
#include "lib/udp.h"

static __always_inline int shunt_write_sockaddr_in(struct bpf_sockopt *ctx,
						   const struct shunt_addr *dst)
{
	struct sockaddr_in *sin = ctx->optval;

	if (dst->family != SHUNT_AF_INET)
		return -EPROTONOSUPPORT;
	if ((void *)(sin + 1) > ctx->optval_end)
		return -ENOSPC;
	sin->sin_family = AF_INET;
	sin->sin_port = bpf_htons(dst->port);
	sin->sin_addr.s_addr = dst->ip[0];
	__builtin_memset(sin->__pad, 0, sizeof(sin->__pad));
	ctx->optlen = sizeof(*sin);
	return 0;
}

static __always_inline int
shunt_write_sockaddr_in6(struct bpf_sockopt *ctx, const struct shunt_addr *dst)
{
	struct sockaddr_in6 *sin6 = ctx->optval;

	if ((void *)(sin6 + 1) > ctx->optval_end)
		return -ENOSPC;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = bpf_htons(dst->port);
	sin6->sin6_flowinfo = 0;
	sin6->sin6_scope_id = 0;
	shunt_addr_to_ip6(dst, sin6->sin6_addr.in6_u.u6_addr32);
	ctx->optlen = sizeof(*sin6);
	return 0;
}

/* The record of the connection the proxy accepted on `ctx->sk`. */
static __always_inline struct shunt_orig_dst *
shunt_accepted_record(struct bpf_sockopt *ctx)
{
	struct shunt_pair_key key = {};
	struct bpf_sock *sk = ctx->sk;
	struct shunt_ends ends;

	if (!sk)
		return NULL;
	/* A UDP socket of the proxy connected to a captured application
	 * socket's address (its DNS listener asking about a datagram): that
	 * socket's flow, by its port. */
	if (sk->protocol == SHUNT_IPPROTO_UDP) {
		struct shunt_udp_key flow;

		shunt_udp_key_set(&flow, bpf_get_netns_cookie(ctx),
				  bpf_ntohs(sk->dst_port));
		return bpf_map_lookup_elem(&shunt_udp_flows, &flow);
	}
	/* The proxy's accepted socket: its peer is the application. */
	shunt_ends_from_sk(&ends, sk);
	shunt_pair_key_set(&key, bpf_get_netns_cookie(ctx), &ends, false);
	return bpf_map_lookup_elem(&shunt_pairs, &key);
}

static __always_inline int shunt_answer_app_cookie(struct bpf_sockopt *ctx)
{
	struct shunt_orig_dst *orig = shunt_accepted_record(ctx);
	__u64 *out = ctx->optval;

	if (!orig)
		return -ENOENT;
	if ((void *)(out + 1) > ctx->optval_end)
		return -ENOSPC;
	*out = orig->app_cookie;
	ctx->optlen = sizeof(*out);
	ctx->retval = 0;
	return 0;
}

static __always_inline int shunt_answer_orig_dst(struct bpf_sockopt *ctx)
{
	struct shunt_orig_dst *orig = shunt_accepted_record(ctx);
	int err;

	if (!orig)
		return -ENOENT;
	if (ctx->level == SHUNT_SOL_IP)
		err = shunt_write_sockaddr_in(ctx, &orig->dst);
	else
		err = shunt_write_sockaddr_in6(ctx, &orig->dst);
	if (err)
		return err;
	ctx->retval = 0;
	SHUNT_COUNT(orig->netns_cookie, origdst_answered);
	return 0;
}

SEC("cgroup/getsockopt")
int shunt_getsockopt(struct bpf_sockopt *ctx)
{
	SHUNT_VARIANT_MARK();

	if (ctx->optname == SHUNT_SO_ORIGINAL_DST &&
	    (ctx->level == SHUNT_SOL_IP || ctx->level == SHUNT_SOL_IPV6))
		shunt_answer_orig_dst(ctx);
	else if (ctx->optname == SHUNT_SO_ORIGINAL_COOKIE &&
		 ctx->level == SHUNT_SOL_IP)
		shunt_answer_app_cookie(ctx);
	return SHUNT_CGROUP_OK;
}

#define SHUNT_SOL_SOCKET 1
#define SHUNT_SO_MARK 36
#define SHUNT_IP_TRANSPARENT 19
#define SHUNT_IPV6_TRANSPARENT 75
/* The part of a large option value a sockopt program sees. */
#define SHUNT_SOCKOPT_PAGE 4096

/* The option's value as the kernel reads it: an int, or, for a shorter IP
 * option, its first byte. 0 when there is nothing to read (the kernel
 * refuses such a call itself). */
static __always_inline __u32 shunt_sockopt_value(struct bpf_sockopt *ctx)
{
	__u8 *bytes = ctx->optval;

	if ((void *)(bytes + sizeof(__u32)) <= ctx->optval_end &&
	    ctx->optlen >= (int)sizeof(__u32))
		return *(__u32 *)bytes;
	if ((void *)(bytes + 1) <= ctx->optval_end && ctx->optlen >= 1)
		return bytes[0];
	return 0;
}

/* Whether the call would give the socket a way past the capture. */
static __always_inline bool
shunt_sockopt_escapes(struct bpf_sockopt *ctx, const struct shunt_config *cfg)
{
	__u32 value = shunt_sockopt_value(ctx);

	if (ctx->level == SHUNT_SOL_SOCKET && ctx->optname == SHUNT_SO_MARK)
		return cfg->proxy_mark &&
		       (value & cfg->proxy_mark) == cfg->proxy_mark;
	if (ctx->level == SHUNT_SOL_IP && ctx->optname == SHUNT_IP_TRANSPARENT)
		return value != 0;
	if (ctx->level == SHUNT_SOL_IPV6 &&
	    ctx->optname == SHUNT_IPV6_TRANSPARENT)
		return value != 0;
	return false;
}

/* Returns -EPERM when the guard refuses the call. */
static __always_inline int shunt_guard_sockopt(struct bpf_sockopt *ctx)
{
	const struct shunt_netns_policy *policy;
	const struct shunt_config *cfg;
	__u64 netns;

	netns = bpf_get_netns_cookie(ctx);
	policy = bpf_map_lookup_elem(&shunt_policy, &netns);
	if (!policy || !(policy->flags & SHUNT_POLICY_GUARD_SOCKOPTS))
		return 0;
	cfg = shunt_config_get();
	if (!cfg || !shunt_sockopt_escapes(ctx, cfg) || shunt_task_is_proxy())
		return 0;
	SHUNT_COUNT(netns, sockopt_refused);
	shunt_trace(netns, NULL, SHUNT_TRACE_GUARD_REFUSED, 0, 0);
	return -EPERM;
}

SEC("cgroup/setsockopt")
int shunt_setsockopt(struct bpf_sockopt *ctx)
{
	SHUNT_VARIANT_MARK();

	if (shunt_guard_sockopt(ctx))
		return SHUNT_CGROUP_REFUSE;
	/* A value larger than the page the program sees: the kernel uses the
	 * caller's own buffer (the value was checked on its first page). */
	if (ctx->optlen > SHUNT_SOCKOPT_PAGE)
		ctx->optlen = 0;
	return SHUNT_CGROUP_OK;
}

#endif /* SHUNT_SOCKOPT_H */
