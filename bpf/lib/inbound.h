/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The proxy's inbound listeners, one per enrolled namespace and family:
 * sockops puts a listener there when the proxy listens on the namespace's
 * inbound port, the sk_lookup program of that namespace hands new inbound
 * connections to it. A closed listener leaves the map by itself.
 */
#ifndef SHUNT_LIB_INBOUND_H
#define SHUNT_LIB_INBOUND_H

#include "common.h"
#include "policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 2 * SHUNT_MAX_NETNS);
	__type(key, struct shunt_listener_key);
	__type(value, __u64);
} shunt_inbound_listeners SEC(".maps");

#endif /* SHUNT_LIB_INBOUND_H */
