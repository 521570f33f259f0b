/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A connection's two ends as one of its sockets sees them, read once from
 * whichever context a hook has (sockops, sk_msg, a struct bpf_sock), and the
 * map keys made of them: the pair key (the application's end, the proxy's)
 * and the fast path's sock key (this socket's end, its peer's).
 */
#ifndef SHUNT_LIB_ENDS_H
#define SHUNT_LIB_ENDS_H

#include "addr.h"

struct shunt_ends {
	struct shunt_addr local;
	struct shunt_addr remote;
};

/* sockops and sk_msg contexts name their ends alike: local_port in host
 * order, remote_port in network order. */
#define SHUNT_ENDS_FROM_CTX(ends, ctx)                                      \
	do {                                                                \
		__u32 local6_[4] = SHUNT_CTX_IP6(ctx, local_ip6);           \
		__u32 remote6_[4] = SHUNT_CTX_IP6(ctx, remote_ip6);         \
		shunt_addr_from_sock(&(ends)->local, (ctx)->family,         \
				     (ctx)->local_ip4, local6_,             \
				     (__u16)(ctx)->local_port);             \
		shunt_addr_from_sock(&(ends)->remote, (ctx)->family,        \
				     (ctx)->remote_ip4, remote6_,           \
				     (__u16)bpf_ntohl((ctx)->remote_port)); \
	} while (0)

static __always_inline void shunt_ends_from_sockops(struct shunt_ends *ends,
						    struct bpf_sock_ops *skops)
{
	SHUNT_ENDS_FROM_CTX(ends, skops);
}

static __always_inline void shunt_ends_from_msg(struct shunt_ends *ends,
						struct sk_msg_md *msg)
{
	SHUNT_ENDS_FROM_CTX(ends, msg);
}

static __always_inline void shunt_ends_from_sk(struct shunt_ends *ends,
					       const struct bpf_sock *sk)
{
	__u32 src6[4] = SHUNT_CTX_IP6(sk, src_ip6);
	__u32 dst6[4] = SHUNT_CTX_IP6(sk, dst_ip6);

	shunt_addr_from_sock(&ends->local, sk->family, sk->src_ip4, src6,
			     (__u16)sk->src_port);
	shunt_addr_from_sock(&ends->remote, sk->family, sk->dst_ip4, dst6,
			     bpf_ntohs(sk->dst_port));
}

/* `app_is_local` on the application's socket; false on the proxy's
 * accepted socket, whose peer is the application. */
static __always_inline void shunt_pair_key_set(struct shunt_pair_key *key,
					       __u64 netns,
					       const struct shunt_ends *ends,
					       bool app_is_local)
{
	key->netns_cookie = netns;
	key->app = app_is_local ? ends->local : ends->remote;
	key->proxy = app_is_local ? ends->remote : ends->local;
}

/* `peer`: the key the other end of the connection registered under. */
static __always_inline void shunt_sock_key_set(struct shunt_sock_key *key,
					       __u64 netns,
					       const struct shunt_ends *ends,
					       bool peer)
{
	key->netns_cookie = netns;
	key->local = peer ? ends->remote : ends->local;
	key->remote = peer ? ends->local : ends->remote;
}

#endif /* SHUNT_LIB_ENDS_H */
