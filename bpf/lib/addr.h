/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Addresses: shunt's own (struct shunt_addr), the tests every hook makes
 * of them, and reading and writing a cgroup/sock_addr context's address.
 * Context fields are read and written one 4-byte word at a time, the only
 * access the verifier allows, so these helpers take the context itself
 * (as Cilium's ctx_{get,set}_v6_address do).
 */
#ifndef SHUNT_LIB_ADDR_H
#define SHUNT_LIB_ADDR_H

#include "common.h"

static __always_inline bool shunt_ip6_is_v4mapped(const __u32 ip6[4])
{
	return ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0x0000ffff);
}

/* ::ffff:ip4 (ip4 in network order). */
static __always_inline void shunt_ip6_set_v4mapped(__u32 ip6[4], __u32 ip4)
{
	ip6[0] = 0;
	ip6[1] = 0;
	ip6[2] = bpf_htonl(0x0000ffff);
	ip6[3] = ip4;
}

/* 127.0.0.0/8 or ::1, or the unspecified address, which connect() takes
 * for this host's loopback too (ip4 in network order). */
static __always_inline bool shunt_ip4_is_loopback(__u32 ip4)
{
	__u32 host = bpf_ntohl(ip4);

	return (host >> 24) == 127 || host == 0;
}

static __always_inline bool shunt_ip6_is_loopback(const __u32 ip6[4])
{
	return !ip6[0] && !ip6[1] && !ip6[2] &&
	       (ip6[3] == bpf_htonl(1) || ip6[3] == 0);
}

static __always_inline void shunt_addr_set4(struct shunt_addr *a, __u32 ip4,
					    __u16 port)
{
	a->family = SHUNT_AF_INET;
	a->ip[0] = ip4;
	a->ip[1] = 0;
	a->ip[2] = 0;
	a->ip[3] = 0;
	a->port = port;
	a->pad = 0;
}

static __always_inline void shunt_addr_set6(struct shunt_addr *a,
					    const __u32 ip6[4], __u16 port)
{
	a->family = SHUNT_AF_INET6;
	a->ip[0] = ip6[0];
	a->ip[1] = ip6[1];
	a->ip[2] = ip6[2];
	a->ip[3] = ip6[3];
	a->port = port;
	a->pad = 0;
}

/* An IPv6 address: IPv4 carried by an IPv6 socket (v4-mapped) is stored as
 * IPv4, so that both ends of a connection name it alike whatever their
 * socket family. */
static __always_inline void shunt_addr_from_ip6(struct shunt_addr *a,
						const __u32 ip6[4], __u16 port)
{
	if (shunt_ip6_is_v4mapped(ip6))
		shunt_addr_set4(a, ip6[3], port);
	else
		shunt_addr_set6(a, ip6, port);
}

/* One end of a socket, from its family's fields. */
static __always_inline void shunt_addr_from_sock(struct shunt_addr *a,
						 __u32 family, __u32 ip4,
						 const __u32 ip6[4], __u16 port)
{
	if (family == AF_INET6)
		shunt_addr_from_ip6(a, ip6, port);
	else
		shunt_addr_set4(a, ip4, port);
}

static __always_inline bool shunt_addr_is_loopback(const struct shunt_addr *a)
{
	if (a->family == SHUNT_AF_INET)
		return shunt_ip4_is_loopback(a->ip[0]);
	return shunt_ip6_is_loopback(a->ip);
}

/* The address as IPv6 (IPv4 v4-mapped). */
static __always_inline void shunt_addr_to_ip6(const struct shunt_addr *a,
					      __u32 ip6[4])
{
	if (a->family == SHUNT_AF_INET) {
		shunt_ip6_set_v4mapped(ip6, a->ip[0]);
		return;
	}
	ip6[0] = a->ip[0];
	ip6[1] = a->ip[1];
	ip6[2] = a->ip[2];
	ip6[3] = a->ip[3];
}

/* Reads the words of an IPv6 context field (any context type). */
#define SHUNT_CTX_IP6(ctx, field)                                  \
	{                                                          \
		(ctx)->field[0], (ctx)->field[1], (ctx)->field[2], \
			(ctx)->field[3]                            \
	}

static __always_inline void shunt_sock_addr_set_ip6(struct bpf_sock_addr *ctx,
						    const __u32 ip6[4])
{
	ctx->user_ip6[0] = ip6[0];
	ctx->user_ip6[1] = ip6[1];
	ctx->user_ip6[2] = ip6[2];
	ctx->user_ip6[3] = ip6[3];
}

/* The context's address and port (an IPv6 context's v4-mapped address is
 * IPv4). */
static __always_inline void
shunt_sock_addr_get4(struct shunt_addr *a, const struct bpf_sock_addr *ctx)
{
	shunt_addr_set4(a, ctx->user_ip4, bpf_ntohs((__u16)ctx->user_port));
}

static __always_inline void
shunt_sock_addr_get6(struct shunt_addr *a, const struct bpf_sock_addr *ctx)
{
	__u32 ip6[4] = SHUNT_CTX_IP6(ctx, user_ip6);

	shunt_addr_from_ip6(a, ip6, bpf_ntohs((__u16)ctx->user_port));
}

/* Writes `a` (IPv4 v4-mapped) and its port into an IPv6 context. */
static __always_inline void shunt_sock_addr_set6(struct bpf_sock_addr *ctx,
						 const struct shunt_addr *a)
{
	__u32 ip6[4];

	shunt_addr_to_ip6(a, ip6);
	shunt_sock_addr_set_ip6(ctx, ip6);
	ctx->user_port = bpf_htons(a->port);
}

#endif /* SHUNT_LIB_ADDR_H */
