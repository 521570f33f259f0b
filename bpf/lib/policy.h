/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Which sockets are redirected: the policy map (enrolled network
 * namespaces), the config map (how the proxy's own sockets are recognised)
 * and the per-namespace counters.
 */
#ifndef SHUNT_LIB_POLICY_H
#define SHUNT_LIB_POLICY_H

#include "common.h"

#define SHUNT_MAX_NETNS 4096

/* Enrolled network namespaces, keyed by netns cookie: a runtime creates a
 * pod's namespace before its cgroup exists, so the namespace is the one
 * identity available when the first connect() happens. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_NETNS);
	__type(key, __u64);
	__type(value, struct shunt_netns_policy);
} shunt_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shunt_config);
} shunt_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SHUNT_MAX_NETNS);
	__type(key, __u64);
	__type(value, struct shunt_netns_stats);
} shunt_stats SEC(".maps");

/* Agent bookkeeping only; declared here so that it is created and pinned
 * with the rest of the state. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_NETNS);
	__type(key, __u64);
	__type(value, struct shunt_netns_info);
} shunt_netns_info SEC(".maps");

/* The per-namespace policy's ports, prefixes and ids (shunt_abi.h says how
 * they are keyed). Sized for many namespaces with small policies and a few
 * with thousands of prefixes. */
#define SHUNT_MAX_PORT_BLOCKS 65536
#define SHUNT_MAX_CIDRS 262144
#define SHUNT_MAX_IDS 65536

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_PORT_BLOCKS);
	__type(key, struct shunt_port_key);
	__type(value, struct shunt_port_bits);
} shunt_policy_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SHUNT_MAX_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shunt_cidr_key);
	__type(value, __u8);
} shunt_policy_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_IDS);
	__type(key, struct shunt_id_key);
	__type(value, __u8);
} shunt_policy_ids SEC(".maps");

static __always_inline const struct shunt_config *shunt_config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&shunt_config, &zero);
}

static __always_inline struct shunt_netns_stats *shunt_stats_get(__u64 netns)
{
	return bpf_map_lookup_elem(&shunt_stats, &netns);
}

/* Counters are per CPU, so a plain increment is race free. */
#define SHUNT_COUNT(netns, field)                                       \
	do {                                                            \
		struct shunt_netns_stats *__s = shunt_stats_get(netns); \
		if (__s)                                                \
			__s->field++;                                   \
	} while (0)

/* The cgroups the proxies run in (key: cgroup id), from the agent. A
 * process is in one only if someone with write access to the node's
 * cgroup tree put it there: nothing inside a pod can. */
#define SHUNT_MAX_PROXY_CGROUPS 1024

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_PROXY_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} shunt_proxy_cgroups SEC(".maps");

/* True when the calling task is a proxy: it runs in a proxy cgroup. */
static __always_inline bool shunt_task_is_proxy(void)
{
	__u64 cgroup = bpf_get_current_cgroup_id();

	return bpf_map_lookup_elem(&shunt_proxy_cgroups, &cgroup) != NULL;
}

/* True when the socket carries the fallback identity of the proxy (its
 * mark, uid or gid) and the agent lets that exempt it. */
static __always_inline bool
shunt_has_proxy_identity(const struct shunt_config *cfg, __u32 sk_mark)
{
	__u64 uid_gid;

	if (!(cfg->exemption & SHUNT_EXEMPT_MARK))
		return false;
	if (cfg->proxy_mark && (sk_mark & cfg->proxy_mark) == cfg->proxy_mark)
		return true;
	if (cfg->bypass_uid == SHUNT_ID_NONE &&
	    cfg->bypass_gid == SHUNT_ID_NONE)
		return false;
	uid_gid = bpf_get_current_uid_gid();
	if (cfg->bypass_uid != SHUNT_ID_NONE &&
	    (__u32)uid_gid == cfg->bypass_uid)
		return true;
	if (cfg->bypass_gid != SHUNT_ID_NONE &&
	    (__u32)(uid_gid >> 32) == cfg->bypass_gid)
		return true;
	return false;
}

static __always_inline bool
shunt_is_proxy_port(const struct shunt_netns_policy *policy, __u16 port)
{
	return port == policy->outbound_port ||
	       (policy->inbound_port && port == policy->inbound_port) ||
	       ((policy->flags & SHUNT_POLICY_CAPTURE_DNS) &&
		port == policy->dns_port) ||
	       ((policy->flags & SHUNT_POLICY_UDP_PORTS) &&
		port == policy->udp_port);
}

/* True when `port` is captured in `direction` by the namespace's policy. */
static __always_inline bool
shunt_port_captured(const struct shunt_netns_policy *policy, __u64 netns,
		    __u8 direction, __u16 port)
{
	__u32 listed = direction == SHUNT_DIR_OUTBOUND ? SHUNT_POLICY_OUT_PORTS
						       : SHUNT_POLICY_IN_PORTS;
	__u32 captured = direction == SHUNT_DIR_OUTBOUND
				 ? SHUNT_POLICY_OUT_PORTS_CAPTURED
				 : SHUNT_POLICY_IN_PORTS_CAPTURED;
	struct shunt_port_key key = {
		.netns_cookie = netns,
		.generation = policy->generation,
		.block = port >> 8,
		.direction = direction,
	};
	struct shunt_port_bits *bits;
	bool set = false;

	if (!(policy->flags & listed))
		return true;
	bits = bpf_map_lookup_elem(&shunt_policy_ports, &key);
	if (bits)
		set = (bits->bits[(port >> 6) & 3] >> (port & 63)) & 1;
	return (policy->flags & captured) ? set : !set;
}

/* True when the destination lies in one of the namespace's excluded
 * prefixes. `dst` is IPv4 (ip[0]) or IPv6, as in struct shunt_addr. */
static __always_inline bool
shunt_dst_excluded(const struct shunt_netns_policy *policy, __u64 netns,
		   const struct shunt_addr *dst)
{
	struct shunt_cidr_key key = {
		.prefixlen = SHUNT_CIDR_KEY_FIXED_BITS + 128,
		.generation = policy->generation,
		.netns_cookie = netns,
	};

	if (!(policy->flags & SHUNT_POLICY_EXCLUDE_CIDRS))
		return false;
	if (dst->family == SHUNT_AF_INET) {
		key.ip[10] = 0xff;
		key.ip[11] = 0xff;
		__builtin_memcpy(&key.ip[12], &dst->ip[0], 4);
	} else {
		__builtin_memcpy(key.ip, dst->ip, 16);
	}
	return bpf_map_lookup_elem(&shunt_policy_cidrs, &key) != NULL;
}

static __always_inline bool
shunt_id_listed(const struct shunt_netns_policy *policy, __u64 netns,
		__u32 kind, __u32 id)
{
	struct shunt_id_key key = {
		.netns_cookie = netns,
		.generation = policy->generation,
		.kind = kind,
		.id = id,
	};

	return bpf_map_lookup_elem(&shunt_policy_ids, &key) != NULL;
}

/* True when the calling task's uid or gid is excluded by the policy. */
static __always_inline bool
shunt_task_excluded(const struct shunt_netns_policy *policy, __u64 netns)
{
	__u64 uid_gid;

	if (!(policy->flags &
	      (SHUNT_POLICY_EXCLUDE_UIDS | SHUNT_POLICY_EXCLUDE_GIDS)))
		return false;
	uid_gid = bpf_get_current_uid_gid();
	if ((policy->flags & SHUNT_POLICY_EXCLUDE_UIDS) &&
	    shunt_id_listed(policy, netns, SHUNT_ID_UID, (__u32)uid_gid))
		return true;
	return (policy->flags & SHUNT_POLICY_EXCLUDE_GIDS) &&
	       shunt_id_listed(policy, netns, SHUNT_ID_GID,
			       (__u32)(uid_gid >> 32));
}

/* True when `port` is in the namespace's port list of `direction` (the
 * lists that always hold the ports they name: DNS, UDP). */
static __always_inline bool
shunt_port_listed(const struct shunt_netns_policy *policy, __u64 netns,
		  __u8 direction, __u16 port)
{
	struct shunt_port_key key = {
		.netns_cookie = netns,
		.generation = policy->generation,
		.block = port >> 8,
		.direction = direction,
	};
	struct shunt_port_bits *bits;

	bits = bpf_map_lookup_elem(&shunt_policy_ports, &key);
	return bits && ((bits->bits[(port >> 6) & 3] >> (port & 63)) & 1);
}

/* True when `port` is one of the DNS ports of a namespace that captures
 * DNS: its connects and datagrams go to the proxy's DNS listener. */
static __always_inline bool
shunt_is_dns_port(const struct shunt_netns_policy *policy, __u64 netns,
		  __u16 port)
{
	if (!(policy->flags & SHUNT_POLICY_CAPTURE_DNS) || !policy->dns_port)
		return false;
	if (!(policy->flags & SHUNT_POLICY_DNS_PORTS))
		return port == SHUNT_DNS_PORT;
	return shunt_port_listed(policy, netns, SHUNT_DIR_DNS, port);
}

/* True when UDP to `port` goes to the namespace's UDP relay. */
static __always_inline bool
shunt_is_relayed_port(const struct shunt_netns_policy *policy, __u64 netns,
		      __u16 port)
{
	if (!(policy->flags & SHUNT_POLICY_UDP_PORTS) || !policy->udp_port)
		return false;
	return shunt_port_listed(policy, netns, SHUNT_DIR_UDP, port);
}

#endif /* SHUNT_LIB_POLICY_H */
