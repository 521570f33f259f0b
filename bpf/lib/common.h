/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Definitions every shunt BPF program needs. */
#ifndef SHUNT_LIB_COMMON_H
#define SHUNT_LIB_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../shunt_abi.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6

/* vmlinux.h has no errno values; the workers return these negated. */
#define EPERM 1
#define ENOENT 2
#define ENOMEM 12
#define EINVAL 22
#define ENOSPC 28
#define EDQUOT 122
#define EPROTONOSUPPORT 93

#define SHUNT_LOOPBACK4 0x7f000001u /* 127.0.0.1, host order */

/* Return codes of cgroup programs: 1 lets the operation continue. */
#define SHUNT_CGROUP_OK 1
/* ... and 0 refuses it (the caller sees EPERM). */
#define SHUNT_CGROUP_REFUSE 0

static __always_inline bool shunt_ip6_is_v4mapped(const __u32 ip6[4])
{
	return ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0x0000ffff);
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

#endif /* SHUNT_LIB_COMMON_H */
