/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup/getsockopt answers SO_ORIGINAL_DST (SOL_IP/80 and SOL_IPV6/80) on
 * the proxy's accepted socket. Sockets it knows nothing about keep the
 * kernel's own answer, so conntrack still answers in redirect mode.
 */
#ifndef SHUNT_SOCKOPT_H
#define SHUNT_SOCKOPT_H

#include "lib/common.h"
#include "lib/origdst.h"
#include "lib/policy.h"

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
	if (ctx->optname == SHUNT_SO_ORIGINAL_DST &&
	    (ctx->level == SHUNT_SOL_IP || ctx->level == SHUNT_SOL_IPV6))
		shunt_answer_orig_dst(ctx);
	else if (ctx->optname == SHUNT_SO_ORIGINAL_COOKIE &&
		 ctx->level == SHUNT_SOL_IP)
		shunt_answer_app_cookie(ctx);
	return SHUNT_CGROUP_OK;
}

#endif /* SHUNT_SOCKOPT_H */
