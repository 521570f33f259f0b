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
#define ECONNREFUSED 111

#define SHUNT_LOOPBACK4 0x7f000001u /* 127.0.0.1, host order */

/* Return codes of cgroup programs: 1 lets the operation continue. */
#define SHUNT_CGROUP_OK 1
/* ... and 0 refuses it (the caller sees EPERM). */
#define SHUNT_CGROUP_REFUSE 0

/*
 * Marks every program of shunt.bpf.c. A test build of the agent
 * (SHUNT_BPF_TEST_VARIANT, shunt-agent-bpf-variant) gives each one more
 * instruction, so that its programs carry other tags: the upgrade scenario
 * replaces the attached programs with them under load and back.
 */
#ifdef SHUNT_BPF_TEST_VARIANT
#define SHUNT_VARIANT_MARK() asm volatile("r0 = 0" ::: "r0")
#else
#define SHUNT_VARIANT_MARK() \
	do {                 \
	} while (0)
#endif

#endif /* SHUNT_LIB_COMMON_H */
