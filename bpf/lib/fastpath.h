/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the sk_msg fast path: the sock hash holding both ends of every
 * redirected connection, and each socket's decision of which path its
 * bytes take.
 */
#ifndef SHUNT_LIB_FASTPATH_H
#define SHUNT_LIB_FASTPATH_H

#include "common.h"
#include "origdst.h"

/* Two sockets per connection. A full map only costs speed: a connection
 * whose ends are not both in it stays on TCP/IP. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 2 * SHUNT_MAX_CONNECTIONS);
	__type(key, struct shunt_sock_key);
	__type(value, __u64);
} shunt_sock_hash SEC(".maps");

/* Once a socket has sent bytes one way it keeps to that way: bytes sent
 * over TCP/IP before the peer joined the sock hash must not be overtaken
 * by later bytes redirected straight into the peer's queue. */
enum shunt_fastpath_path {
	SHUNT_PATH_UNDECIDED = 0,
	SHUNT_PATH_REDIRECT = 1,
	SHUNT_PATH_TCP = 2,
};

struct shunt_fastpath_state {
	__u32 path;
};

/* Socket-local storage: freed with the socket, so nothing can leak. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct shunt_fastpath_state);
} shunt_fastpath_state SEC(".maps");

#endif /* SHUNT_LIB_FASTPATH_H */
