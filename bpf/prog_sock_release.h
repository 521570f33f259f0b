/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup/sock_release removes the record of a redirected socket closed
 * before its connect ever sent a SYN (the connect failed in the kernel
 * after the connect hook ran: no free local port, say). Sockets that got
 * further are left to sockops, whose state callback fires later, when the
 * connection really closes: the proxy may still have to ask for its
 * original destination then. A captured UDP socket's records go when it
 * closes.
 */
#ifndef SHUNT_SOCK_RELEASE_H
#define SHUNT_SOCK_RELEASE_H

#include "lib/common.h"
#include "lib/origdst.h"
#include "lib/udp.h"

#define SHUNT_TCP_CLOSE 7 /* BPF_TCP_CLOSE */

static __always_inline int shunt_release_record(struct bpf_sock *sk)
{
	/* A captured UDP socket's records go with it, whatever its state. */
	if (sk->type == SHUNT_SOCK_DGRAM) {
		shunt_udp_forget(bpf_get_socket_cookie(sk));
		return 0;
	}
	if (sk->type != SOCK_STREAM || sk->state != SHUNT_TCP_CLOSE)
		return -ENOENT;
	return shunt_app_socket_gone(bpf_get_socket_cookie(sk));
}

SEC("cgroup/sock_release")
int shunt_sock_release(struct bpf_sock *sk)
{
	SHUNT_VARIANT_MARK();

	shunt_release_record(sk);
	return SHUNT_CGROUP_OK;
}

#endif /* SHUNT_SOCK_RELEASE_H */
