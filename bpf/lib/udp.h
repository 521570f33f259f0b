/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where a captured UDP socket's datagrams were going (DNS capture). Two
 * views of one record: by the application socket's cookie (udp_socks), for
 * the hooks that run on that socket (recvmsg, getpeername, the egress
 * program, sock_release), and by its local port in its namespace
 * (udp_flows), the one thing of it the proxy sees on a datagram. A
 * connected socket's port is not known when cgroup/connect runs (it is
 * bound after the hook), so its flow is written by the egress program
 * when its first datagram leaves; sendmsg knows it at once.
 */
#ifndef SHUNT_LIB_UDP_H
#define SHUNT_LIB_UDP_H

#include "common.h"
#include "policy.h"

#define SHUNT_IPPROTO_UDP 17
#define SHUNT_SOCK_DGRAM 2

/* LRUs, unlike the TCP records: a UDP socket holds its record while it
 * lives and says nothing when it stops using it, so the oldest go first if
 * the map fills; sock_release removes the rest. A socket whose record went
 * gets its next datagram recorded again. */
#define SHUNT_MAX_UDP_SOCKETS 65536

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_UDP_SOCKETS);
	__type(key, __u64);
	__type(value, struct shunt_orig_dst);
} shunt_udp_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_UDP_SOCKETS);
	__type(key, struct shunt_udp_key);
	__type(value, struct shunt_orig_dst);
} shunt_udp_flows SEC(".maps");

static __always_inline void shunt_udp_key_set(struct shunt_udp_key *key,
					      __u64 netns, __u16 port)
{
	key->netns_cookie = netns;
	key->port = port;
	key->pad = 0;
	key->pad2 = 0;
}

static __always_inline bool shunt_addr_equal(const struct shunt_addr *a,
					     const struct shunt_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       a->ip[0] == b->ip[0] && a->ip[1] == b->ip[1] &&
	       a->ip[2] == b->ip[2] && a->ip[3] == b->ip[3];
}

static __always_inline __u16 shunt_udp_port_of(const struct shunt_orig_dst *o)
{
	return (__u16)(o->flags >> SHUNT_ORIG_UDP_PORT_SHIFT);
}

/* The flow of the socket of record `orig`, now bound to `port`: written
 * unless it is there already (the egress program runs for every
 * datagram), and the port kept in the record for sock_release. */
static __always_inline int shunt_udp_flow_set(struct shunt_orig_dst *orig,
					      __u16 port)
{
	struct shunt_udp_key key;
	struct shunt_orig_dst *flow;

	if (shunt_udp_port_of(orig) != port)
		orig->flags = (__u32)port << SHUNT_ORIG_UDP_PORT_SHIFT;
	shunt_udp_key_set(&key, orig->netns_cookie, port);
	flow = bpf_map_lookup_elem(&shunt_udp_flows, &key);
	if (flow && flow->app_cookie == orig->app_cookie &&
	    shunt_addr_equal(&flow->dst, &orig->dst))
		return 0;
	return bpf_map_update_elem(&shunt_udp_flows, &key, orig, BPF_ANY);
}

/* Records that the socket `cookie` sends to `dst`; its flow too when it is
 * bound (`port` non-zero). */
static __always_inline int shunt_udp_record(__u64 cookie, __u64 netns,
					    const struct shunt_addr *dst,
					    __u16 port)
{
	struct shunt_orig_dst value = {
		.dst = *dst,
		.flags = (__u32)port << SHUNT_ORIG_UDP_PORT_SHIFT,
		.netns_cookie = netns,
		.app_cookie = cookie,
	};

	if (bpf_map_update_elem(&shunt_udp_socks, &cookie, &value, BPF_ANY))
		return -ENOMEM;
	if (port && shunt_udp_flow_set(&value, port))
		return -ENOMEM;
	return 0;
}

/* The socket `cookie` is gone, or no longer captured: its record and its
 * flow (unless a newer socket took the port over) go. */
static __always_inline void shunt_udp_forget(__u64 cookie)
{
	struct shunt_orig_dst *orig;
	struct shunt_orig_dst *flow;
	struct shunt_udp_key key;
	__u16 port;

	orig = bpf_map_lookup_elem(&shunt_udp_socks, &cookie);
	if (!orig)
		return;
	port = shunt_udp_port_of(orig);
	if (port) {
		shunt_udp_key_set(&key, orig->netns_cookie, port);
		flow = bpf_map_lookup_elem(&shunt_udp_flows, &key);
		if (flow && flow->app_cookie == cookie)
			bpf_map_delete_elem(&shunt_udp_flows, &key);
	}
	bpf_map_delete_elem(&shunt_udp_socks, &cookie);
}

#endif /* SHUNT_LIB_UDP_H */
