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
#include "ends.h"
#include "policy.h"

/* Records of every namespace together. Each namespace may hold at most its
 * quota (shunt_config.netns_record_quota) of connections, so one pod cannot
 * take what the others need. A connection holds its slot from connect()
 * until it is forgotten: a record is removed when its socket closes or
 * fails to connect (sockops) or is released before it ever sent a SYN
 * (cgroup/sock_release); once established, its pair holds the slot until
 * the proxy's side of the connection closes (the proxy may ask for the
 * original destination after the application has gone). A plain hash, not
 * an LRU: nothing is evicted behind the count's back. */
#define SHUNT_MAX_CONNECTIONS 262144

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_CONNECTIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct shunt_orig_dst);
} shunt_orig_dst SEC(".maps");

/* One entry per redirected connection established to the proxy, counted
 * in the namespace's slots; an LRU only as a safety net. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_CONNECTIONS);
	__type(key, struct shunt_pair_key);
	__type(value, struct shunt_orig_dst);
} shunt_pairs SEC(".maps");

/* Records held per namespace; the agent removes a namespace's entry and its
 * records when it unenrolls it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_NETNS);
	__type(key, __u64);
	__type(value, struct shunt_netns_records);
} shunt_netns_records SEC(".maps");

static __always_inline struct shunt_netns_records *shunt_records_of(__u64 netns)
{
	struct shunt_netns_records zero = {};
	struct shunt_netns_records *count;

	count = bpf_map_lookup_elem(&shunt_netns_records, &netns);
	if (count)
		return count;
	bpf_map_update_elem(&shunt_netns_records, &netns, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&shunt_netns_records, &netns);
}

/* Records where `sock_cookie`'s connection was going. -EDQUOT when the
 * namespace holds its quota of records already, -ENOMEM when the map is
 * full. A socket that connects again replaces its own record. */
static __always_inline int shunt_orig_dst_record(__u64 sock_cookie, __u64 netns,
						 const struct shunt_addr *dst,
						 __u32 quota)
{
	struct shunt_orig_dst value = {
		.dst = *dst,
		.netns_cookie = netns,
		.app_cookie = sock_cookie,
	};
	struct shunt_netns_records *count;

	if (bpf_map_lookup_elem(&shunt_orig_dst, &sock_cookie))
		return bpf_map_update_elem(&shunt_orig_dst, &sock_cookie,
					   &value, BPF_EXIST);
	count = shunt_records_of(netns);
	if (!count)
		return -ENOMEM;
	if (quota && count->records >= quota)
		return -EDQUOT;
	if (bpf_map_update_elem(&shunt_orig_dst, &sock_cookie, &value,
				BPF_NOEXIST))
		return -ENOMEM;
	__sync_fetch_and_add(&count->records, 1);
	return 0;
}

static __always_inline struct shunt_orig_dst *
shunt_orig_dst_lookup(__u64 sock_cookie)
{
	return bpf_map_lookup_elem(&shunt_orig_dst, &sock_cookie);
}

/* Gives one of the namespace's slots back. */
static __always_inline void shunt_records_release(__u64 netns)
{
	struct shunt_netns_records *count;

	count = bpf_map_lookup_elem(&shunt_netns_records, &netns);
	if (count && count->records > 0)
		__sync_fetch_and_add(&count->records, -1);
}

/* Removes a socket's record; true if there was one. The namespace's slot
 * goes back with it unless the connection got its pair, which keeps the
 * slot until the proxy's side closes. */
static __always_inline bool shunt_orig_dst_forget(__u64 sock_cookie,
						  __u64 netns, bool paired)
{
	if (bpf_map_delete_elem(&shunt_orig_dst, &sock_cookie))
		return false;
	if (!paired)
		shunt_records_release(netns);
	return true;
}

/* The application's socket is gone (closed, or its connect failed): its
 * record goes, and a connection that never got established gives its slot
 * back now (an established one's pair keeps it). */
static __always_inline int shunt_app_socket_gone(__u64 sock_cookie)
{
	struct shunt_orig_dst *orig = shunt_orig_dst_lookup(sock_cookie);
	bool paired;
	__u64 netns;

	if (!orig)
		return -ENOENT;
	netns = orig->netns_cookie;
	paired = orig->flags & SHUNT_ORIG_PAIRED;
	if (!paired)
		SHUNT_COUNT(netns, records_released);
	shunt_orig_dst_forget(sock_cookie, netns, paired);
	return 0;
}

#endif /* SHUNT_LIB_ORIGDST_H */
