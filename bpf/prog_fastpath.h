/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The sk_msg fast path (optional, attached only when the agent's sk-msg
 * setting is on). A second sockops program puts both ends of a redirected
 * connection into the sock hash: the application's socket when it is
 * established, the proxy's accepted socket when the handshake completes on
 * its side. The sk_msg program then moves each sendmsg() straight into the
 * other end's receive queue, skipping TCP/IP on the loopback leg.
 *
 * Correctness rules: a message is redirected only when the peer is in the
 * sock hash, and a socket that has sent anything over TCP/IP never
 * switches to redirection (ordering). Everything else (FIN, RST, close)
 * still travels over TCP/IP, after any bytes already redirected.
 */
#ifndef SHUNT_FASTPATH_H
#define SHUNT_FASTPATH_H

#include "lib/common.h"
#include "lib/fastpath.h"
#include "lib/origdst.h"
#include "lib/policy.h"

#define SHUNT_SK_PASS 1

static __always_inline void
shunt_sock_key_from_sockops(struct shunt_sock_key *key,
			    struct bpf_sock_ops *skops, __u64 netns)
{
	struct shunt_ends ends;

	shunt_ends_from_sockops(&ends, skops);
	shunt_sock_key_set(key, netns, &ends, false);
}

/* The application's end: redirected by cgroup/connect, so it has an
 * original-destination record. */
static __always_inline int shunt_fastpath_add_app(struct bpf_sock_ops *skops)
{
	struct shunt_sock_key key = {};
	struct shunt_orig_dst *orig;

	orig = shunt_orig_dst_lookup(bpf_get_socket_cookie(skops));
	if (!orig)
		return -ENOENT;
	shunt_sock_key_from_sockops(&key, skops, orig->netns_cookie);
	if (bpf_sock_hash_update(skops, &shunt_sock_hash, &key, BPF_ANY)) {
		SHUNT_COUNT(orig->netns_cookie, fastpath_declined);
		return -ENOSPC;
	}
	SHUNT_COUNT(orig->netns_cookie, fastpath_sockets);
	return 0;
}

/* The proxy's accepted end: its peer address is a recorded pair's
 * application address. */
static __always_inline int shunt_fastpath_add_proxy(struct bpf_sock_ops *skops)
{
	struct shunt_sock_key key = {};
	struct shunt_pair_key pair = {};
	__u64 netns = bpf_get_netns_cookie(skops);

	shunt_sock_key_from_sockops(&key, skops, netns);
	pair.netns_cookie = netns;
	pair.app = key.remote;
	pair.proxy = key.local;
	if (!bpf_map_lookup_elem(&shunt_pairs, &pair))
		return -ENOENT;
	if (bpf_sock_hash_update(skops, &shunt_sock_hash, &key, BPF_ANY)) {
		SHUNT_COUNT(netns, fastpath_declined);
		return -ENOSPC;
	}
	SHUNT_COUNT(netns, fastpath_sockets);
	return 0;
}

SEC("sockops")
int shunt_sockops_fastpath(struct bpf_sock_ops *skops)
{
	SHUNT_VARIANT_MARK();

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		shunt_fastpath_add_app(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		shunt_fastpath_add_proxy(skops);
		break;
	default:
		break;
	}
	return 1;
}

/* Chooses the path of one message; the program passes it to TCP/IP
 * unless this returns 0 with the redirect set. */
static __always_inline int shunt_sk_msg_redirect(struct sk_msg_md *msg)
{
	struct shunt_fastpath_state *state;
	struct shunt_sock_key peer = {};
	struct bpf_sock *sk = msg->sk;
	struct shunt_ends ends;
	__u64 netns;

	if (!sk)
		return -EINVAL;
	state = bpf_sk_storage_get(&shunt_fastpath_state, sk, 0,
				   BPF_SK_STORAGE_GET_F_CREATE);
	if (!state)
		return -ENOMEM;
	if (state->path == SHUNT_PATH_TCP)
		return -EPERM;

	netns = bpf_get_netns_cookie(msg);
	shunt_ends_from_msg(&ends, msg);
	/* The peer registered this connection with the ends swapped. */
	shunt_sock_key_set(&peer, netns, &ends, true);
	if (bpf_msg_redirect_hash(msg, &shunt_sock_hash, &peer,
				  BPF_F_INGRESS) == SHUNT_SK_PASS) {
		state->path = SHUNT_PATH_REDIRECT;
		return 0;
	}
	/* The peer is not (or no longer) in the map. Before anything was
	 * redirected this pins the socket to TCP/IP; after, the peer has
	 * closed and TCP/IP gives the sender the usual reset. */
	if (state->path == SHUNT_PATH_UNDECIDED) {
		state->path = SHUNT_PATH_TCP;
		SHUNT_COUNT(netns, fastpath_declined);
	}
	return -ENOENT;
}

SEC("sk_msg")
int shunt_sk_msg(struct sk_msg_md *msg)
{
	SHUNT_VARIANT_MARK();

	shunt_sk_msg_redirect(msg);
	return SHUNT_SK_PASS;
}

#endif /* SHUNT_FASTPATH_H */
