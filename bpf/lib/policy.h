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

/* True when the calling task or socket belongs to the proxy itself. */
static __always_inline bool shunt_is_bypassed(const struct shunt_config *cfg,
					      __u32 sk_mark)
{
	__u64 uid_gid;

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
	       (policy->inbound_port && port == policy->inbound_port);
}

#endif /* SHUNT_LIB_POLICY_H */
