/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * How the original destination travels: cgroup/connect records it by the
 * application socket's cookie (orig_dst), sockops copies it to the
 * connection's address pair once the port is known (pairs), and
 * cgroup/getsockopt on the proxy's accepted socket finds it by that pair.
 */
#ifndef SHUNT_LIB_ORIGDST_H
#define SHUNT_LIB_ORIGDST_H

#include "common.h"

#define SHUNT_MAX_CONNECTIONS 65536

/* LRU: entries of connections that never completed are evicted instead of
 * filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_CONNECTIONS);
	__type(key, __u64);
	__type(value, struct shunt_orig_dst);
} shunt_orig_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_CONNECTIONS);
	__type(key, struct shunt_pair_key);
	__type(value, struct shunt_orig_dst);
} shunt_pairs SEC(".maps");

static __always_inline int shunt_orig_dst_record(__u64 sock_cookie, __u64 netns,
						 const struct shunt_addr *dst)
{
	struct shunt_orig_dst value = {
		.dst = *dst,
		.netns_cookie = netns,
		.app_cookie = sock_cookie,
	};

	return bpf_map_update_elem(&shunt_orig_dst, &sock_cookie, &value,
				   BPF_ANY);
}

static __always_inline struct shunt_orig_dst *
shunt_orig_dst_lookup(__u64 sock_cookie)
{
	return bpf_map_lookup_elem(&shunt_orig_dst, &sock_cookie);
}

/* Fill one side of a pair key from a socket's view of an address. IPv4
 * carried by an IPv6 socket (v4-mapped) is stored as IPv4, so that both
 * ends of a connection produce the same key whatever their socket family. */
static __always_inline void shunt_addr_from_sock(struct shunt_addr *a,
						 __u32 family, __u32 ip4,
						 const __u32 ip6[4], __u16 port)
{
	if (family == AF_INET6 && !shunt_ip6_is_v4mapped(ip6))
		shunt_addr_set6(a, ip6, port);
	else
		shunt_addr_set4(a, ip4, port);
}

#endif /* SHUNT_LIB_ORIGDST_H */
