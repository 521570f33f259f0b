// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The one BPF object of shunt. Each hook family lives in its own file; they
 * are compiled together so that they share maps inside one object and one
 * generated skeleton, without relying on pin-by-name across objects.
 */
#include "prog_sock_addr.h"
#include "prog_sockops.h"
#include "prog_sockopt.h"
#include "prog_sock_release.h"
#include "prog_fastpath.h"
#include "prog_udp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
