/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sockops: when a redirected connection is established its local port is
 * known, so the original destination is copied from the socket-cookie
 * record to the address pair the proxy will see on its accepted socket.
 * The record goes when the application's socket closes (or its connect
 * fails: the state callbacks are asked for as soon as the SYN goes out);
 * the pair when the proxy's accepted socket closes, since the proxy may ask
 * for the original destination after a quick application has gone.
 * A listener on an enrolled namespace's inbound port is the proxy's inbound
 * listener: it goes into the map the sk_lookup program reads.
 */
#ifndef SHUNT_SOCKOPS_H
#define SHUNT_SOCKOPS_H

#include "lib/common.h"
#include "lib/inbound.h"
#include "lib/origdst.h"
#include "lib/policy.h"

/* The pair key of a connection as one of its sockets sees it. */
static __always_inline void
shunt_pair_key_from_sockops(struct shunt_pair_key *key,
			    struct bpf_sock_ops *skops, __u64 netns,
			    bool app_is_local)
{
	struct shunt_ends ends;

	shunt_ends_from_sockops(&ends, skops);
	shunt_pair_key_set(key, netns, &ends, app_is_local);
}

static __always_inline int shunt_sockops_established(struct bpf_sock_ops *skops)
{
	struct shunt_pair_key key = {};
	struct shunt_orig_dst *orig;
	__u64 cookie = bpf_get_socket_cookie(skops);

	orig = shunt_orig_dst_lookup(cookie);
	if (!orig)
		return -ENOENT;
	shunt_pair_key_from_sockops(&key, skops, orig->netns_cookie, true);
	if (bpf_map_update_elem(&shunt_pairs, &key, orig, BPF_ANY))
		return -ENOMEM;
	orig->flags |= SHUNT_ORIG_PAIRED;
	SHUNT_COUNT(orig->netns_cookie, pairs_recorded);
	/* Ask for state changes so that the records go with the socket. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
	return 0;
}

/* A redirected connect is starting: ask for state changes now, so that
 * its record goes if it never gets established. */
static __always_inline int shunt_sockops_connecting(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);

	if (!shunt_orig_dst_lookup(cookie))
		return -ENOENT;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
	return 0;
}

/* The proxy accepted a connection on an enrolled namespace's outbound
 * port: its close is what frees the connection's pair. */
static __always_inline int shunt_sockops_accepted(struct bpf_sock_ops *skops)
{
	const struct shunt_netns_policy *policy;
	__u64 netns = bpf_get_netns_cookie(skops);

	policy = bpf_map_lookup_elem(&shunt_policy, &netns);
	if (!policy || skops->local_port != policy->outbound_port)
		return -ENOENT;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
	return 0;
}

static __always_inline int shunt_sockops_closed(struct bpf_sock_ops *skops)
{
	struct shunt_pair_key key = {};
	__u64 netns;

	/* The application's socket: its record goes. */
	if (!shunt_app_socket_gone(bpf_get_socket_cookie(skops)))
		return 0;
	/* The proxy's side: the pair and the namespace's slot go. */
	netns = bpf_get_netns_cookie(skops);
	shunt_pair_key_from_sockops(&key, skops, netns, false);
	if (bpf_map_delete_elem(&shunt_pairs, &key))
		return -ENOENT;
	shunt_records_release(netns);
	return 0;
}

static __always_inline int shunt_sockops_listen(struct bpf_sock_ops *skops)
{
	const struct shunt_netns_policy *policy;
	struct shunt_listener_key key = {};
	__u64 netns = bpf_get_netns_cookie(skops);

	policy = bpf_map_lookup_elem(&shunt_policy, &netns);
	if (!policy || !policy->inbound_port ||
	    skops->local_port != policy->inbound_port)
		return -ENOENT;
	key.netns_cookie = netns;
	key.family = skops->family;
	return (int)bpf_sock_hash_update(skops, &shunt_inbound_listeners, &key,
					 BPF_ANY);
}

SEC("sockops")
int shunt_sockops(struct bpf_sock_ops *skops)
{
	SHUNT_VARIANT_MARK();

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		shunt_sockops_connecting(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		shunt_sockops_established(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		shunt_sockops_accepted(skops);
		break;
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		shunt_sockops_listen(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			shunt_sockops_closed(skops);
		break;
	default:
		break;
	}
	return 1;
}

#endif /* SHUNT_SOCKOPS_H */
