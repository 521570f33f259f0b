/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI shared by the BPF programs and the C++ agent and proxy: map keys,
 * map values and flags. Every struct has explicit padding so that its layout
 * is the same for clang -target bpf and for the host compiler, and the C++
 * side checks the sizes with static_assert.
 *
 * Conventions: IP addresses are stored in network byte order in ip[4]
 * (IPv4 in ip[0], the rest zero); ports are stored in host byte order.
 */
#ifndef SHUNT_ABI_H
#define SHUNT_ABI_H

#ifdef __bpf__
/* vmlinux.h provides the __uN types for BPF programs. */
#else
#include <linux/types.h>
#endif

#define SHUNT_ABI_VERSION 5

#define SHUNT_AF_INET 2
#define SHUNT_AF_INET6 10

/* Level/optname the proxy uses to ask for the original destination; the
 * same values as netfilter's SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST, so
 * one call works in every mode. */
#define SHUNT_SOL_IP 0
#define SHUNT_SOL_IPV6 41
#define SHUNT_SO_ORIGINAL_DST 80
/* SOL_IP level, shunt's own: on the proxy's accepted socket, the socket
 * cookie of the socket that connected (8 bytes). A proxy whose upstream
 * connects come back to it recognises its own sockets by it. */
#define SHUNT_SO_ORIGINAL_COOKIE 0x5348

/* "no uid/gid" for the bypass settings. */
#define SHUNT_ID_NONE 0xffffffffu

struct shunt_addr {
	__u32 ip[4];
	__u16 port;
	__u8 family;
	__u8 pad;
};

/* The record's connection got established and its pair was written: the
 * pair, not the record, now holds the namespace's slot. */
#define SHUNT_ORIG_PAIRED (1u << 0)
/* A UDP socket's record (lib/udp.h) keeps the local port its flow is
 * recorded under in the high half of its flags: sock_release cannot read
 * a socket's port. */
#define SHUNT_ORIG_UDP_PORT_SHIFT 16

/* Value of the orig_dst map (key: socket cookie of the application's
 * socket) and of the pairs map. */
struct shunt_orig_dst {
	struct shunt_addr dst;
	__u32 flags;
	__u64 netns_cookie;
	__u64 app_cookie;
};

/* Key of the pairs map: one redirected connection as seen inside one
 * network namespace. app is the application's local address (the peer of
 * the proxy's accepted socket), proxy is the listener it was sent to. */
struct shunt_pair_key {
	__u64 netns_cookie;
	struct shunt_addr app;
	struct shunt_addr proxy;
};

/* Key of the sock hash of the sk_msg fast path: one end of a redirected
 * connection, as that socket sees it. The network namespace cookie makes it
 * unique across namespaces (two pods can hold the same 4-tuple); the peer's
 * key is the same with local and remote swapped. */
struct shunt_sock_key {
	__u64 netns_cookie;
	struct shunt_addr local;
	struct shunt_addr remote;
};

/* Redirect connections to loopback destinations too. */
#define SHUNT_POLICY_REDIRECT_LOOPBACK (1u << 0)
/* Steer new inbound connections to the proxy's inbound listener. */
#define SHUNT_POLICY_CAPTURE_INBOUND (1u << 1)
/* The port maps hold this namespace's ports for outbound / inbound; without
 * the flag every port is captured. */
#define SHUNT_POLICY_OUT_PORTS (1u << 2)
#define SHUNT_POLICY_IN_PORTS (1u << 3)
/* The port maps list the captured ports (else: the ports not captured);
 * whichever needs fewer blocks. */
#define SHUNT_POLICY_OUT_PORTS_CAPTURED (1u << 4)
#define SHUNT_POLICY_IN_PORTS_CAPTURED (1u << 5)
/* Excluded destination prefixes / uids / gids exist for this namespace. */
#define SHUNT_POLICY_EXCLUDE_CIDRS (1u << 6)
#define SHUNT_POLICY_EXCLUDE_UIDS (1u << 7)
#define SHUNT_POLICY_EXCLUDE_GIDS (1u << 8)
/* When the namespace's proxy has no listener, its connections go to their
 * original destination, unproxied (else they are refused at once). */
#define SHUNT_POLICY_PROXY_DOWN_OPEN (1u << 9)
/* cgroup/setsockopt refuses SO_MARK values that carry the proxy mark and
 * IP_TRANSPARENT/IPV6_TRANSPARENT to every process but the proxy. */
#define SHUNT_POLICY_GUARD_SOCKOPTS (1u << 10)
/* The namespace's DNS queries go to the proxy's DNS listener (dns_port):
 * TCP connects and UDP datagrams (connected or not) to the DNS ports. */
#define SHUNT_POLICY_CAPTURE_DNS (1u << 11)
/* The port map lists the DNS ports (direction SHUNT_DIR_DNS); without the
 * flag the one DNS port is SHUNT_DNS_PORT. */
#define SHUNT_POLICY_DNS_PORTS (1u << 12)
#define SHUNT_DNS_PORT 53
/* UDP to the ports the port map lists (direction SHUNT_DIR_UDP) goes to
 * the proxy's UDP relay (udp_port). */
#define SHUNT_POLICY_UDP_PORTS (1u << 13)

/* Value of the policy map; key: network namespace cookie. Present means
 * enrolled. The port, prefix and id maps are keyed by generation too: a
 * changed policy is written under the next generation and takes effect
 * when this one value is replaced, so a connection sees the old policy or
 * the new one, never a mix. */
struct shunt_netns_policy {
	__u16 outbound_port;
	__u16 inbound_port;
	__u32 flags;
	__u32 generation;
	__u16 dns_port; /* with SHUNT_POLICY_CAPTURE_DNS (was padding: 0) */
	__u16 udp_port; /* with SHUNT_POLICY_UDP_PORTS (was padding: 0) */
};

#define SHUNT_DIR_OUTBOUND 0
#define SHUNT_DIR_INBOUND 1
#define SHUNT_DIR_DNS 2 /* the ports DNS is captured on (always a list) */
#define SHUNT_DIR_UDP 3 /* the UDP ports relayed (always a list) */

/* Key of the port map: 256 ports (block = port >> 8) of one direction. */
struct shunt_port_key {
	__u64 netns_cookie;
	__u32 generation;
	__u16 block;
	__u8 direction;
	__u8 pad;
};

struct shunt_port_bits {
	__u64 bits[4];
};

/* Key of the UDP flow map: a captured UDP socket's local port in its
 * namespace, the one thing of the application's socket the proxy sees
 * (the datagram's source). The value is a struct shunt_orig_dst. */
struct shunt_udp_key {
	__u64 netns_cookie;
	__u16 port;
	__u16 pad;
	__u32 pad2;
};

/* Key of the excluded-prefix LPM trie: prefixlen counts the generation and
 * netns bits (96) first, then the address, IPv4 as ::ffff:a.b.c.d. */
struct shunt_cidr_key {
	__u32 prefixlen;
	__u32 generation;
	__u64 netns_cookie;
	__u8 ip[16];
};

#define SHUNT_CIDR_KEY_FIXED_BITS 96

#define SHUNT_ID_UID 0
#define SHUNT_ID_GID 1

/* Key of the excluded uid/gid map. */
struct shunt_id_key {
	__u64 netns_cookie;
	__u32 generation;
	__u32 kind;
	__u32 id;
	__u32 pad;
};

/* Key of the inbound listener sock hash: the proxy's inbound listener of
 * one namespace and family. */
struct shunt_listener_key {
	__u64 netns_cookie;
	__u32 family;
	__u32 pad;
};

/* shunt_config.exemption: the mark, uid and gid exempt a socket from
 * capture. Any process holding CAP_NET_RAW (or that uid) can copy them, so
 * this is a fallback; the proxies' cgroups (the proxy cgroup map) always
 * exempt, and nothing in a pod can forge those. */
#define SHUNT_EXEMPT_MARK (1u << 0)

/* The single entry of the config map: how the proxy's own sockets are
 * recognised. A map, not .rodata, so that a restarted agent adopting the
 * pinned programs can change it without detaching anything. */
struct shunt_config {
	__u32 proxy_mark; /* 0: no mark bypass; else (mark & m) == m bypasses */
	__u32 bypass_uid; /* SHUNT_ID_NONE: none */
	__u32 bypass_gid; /* SHUNT_ID_NONE: none */
	__u32 abi_version;
	/* Most original-destination records one namespace may hold at once
	 * (connections being made or open through its proxy); 0: no quota. */
	__u32 netns_record_quota;
	__u32 exemption; /* SHUNT_EXEMPT_* */
};

/* Value of the netns address map; key: network namespace cookie. The
 * addresses the namespace's connections leave from (zero: unknown), which
 * getsockname() reports on a redirected socket instead of loopback. */
struct shunt_netns_addrs {
	__u32 ip6[4];
	__u32 ip4;
	__u32 pad;
};

/* Value of the in-flight map; key: network namespace cookie. How many
 * original-destination records the namespace holds now. */
struct shunt_netns_records {
	__u64 records;
};

/* Per-CPU counters; key: network namespace cookie. */
/* The decision trace (shunt-agent trace): why a connect() (or a UDP
 * datagram) of an enrolled namespace went where it went. */
enum shunt_trace_reason {
	SHUNT_TRACE_REDIRECTED = 1,
	SHUNT_TRACE_PROXY_CGROUP,    /* a proxy's own socket */
	SHUNT_TRACE_BYPASS,	     /* the proxy's mark, bypass-uid or -gid */
	SHUNT_TRACE_LOOPBACK,	     /* redirect-loopback off */
	SHUNT_TRACE_PROXY_PORT,	     /* the proxy's own listener */
	SHUNT_TRACE_POLICY_PORT,     /* a port the policy does not capture */
	SHUNT_TRACE_POLICY_PREFIX,   /* exclude-outbound-cidrs */
	SHUNT_TRACE_POLICY_ID,	     /* exclude-uids, exclude-gids */
	SHUNT_TRACE_PROXY_DOWN_OPEN, /* no listener: sent direct */
	SHUNT_TRACE_PROXY_DOWN_CLOSED, /* no listener: refused */
	SHUNT_TRACE_QUOTA,	       /* netns-record-quota reached: refused */
	SHUNT_TRACE_RECORD_FAILED,     /* no room for the record: refused */
	SHUNT_TRACE_GUARD_REFUSED,     /* a setsockopt the guard refused */
};

/* The trace's switch, written by `shunt-agent trace` (one entry). The
 * programs read until_ns first: 0 (no trace) costs one map lookup. */
struct shunt_trace_ctl {
	__u64 until_ns;	     /* emit while bpf_ktime_get_ns() < until_ns */
	__u64 netns_cookie;  /* only this namespace's; 0: every one */
	__u64 per_second;    /* most events per second; 0: no limit */
	__u64 window_start;  /* ns: the current second's start */
	__u64 window_events; /* emitted in it */
	__u64 dropped_rate;  /* held back by per_second */
	__u64 dropped_full;  /* the ring buffer was full */
};

struct shunt_trace_event {
	__u64 time_ns; /* bpf_ktime_get_ns() */
	__u64 netns_cookie;
	__u32 pid; /* the process (tgid); 0: not known */
	__u32 uid;
	__u32 gid;
	__u16 listener_port;   /* redirected: the proxy's port */
	__u8 reason;	       /* enum shunt_trace_reason */
	__u8 protocol;	       /* 6 TCP, 17 UDP; 0: a socket option */
	struct shunt_addr dst; /* the destination asked for */
	char comm[16];	       /* empty where the kernel gives none */
	__u32 pad;
};

struct shunt_netns_stats {
	__u64 connect_seen;
	__u64 redirected;
	__u64 skipped_bypass; /* proxy mark, uid or gid */
	__u64 skipped_loopback;
	__u64 skipped_proxy_port;
	__u64 record_failed;
	__u64 pairs_recorded;
	__u64 origdst_answered;
	__u64 peername_rewritten;
	__u64 fastpath_sockets;	 /* sockets put in the sk_msg fast path */
	__u64 fastpath_declined; /* connections that stayed on TCP/IP */
	__u64 skipped_policy;	 /* excluded port, prefix, uid or gid */
	__u64 inbound_steered;	 /* inbound connections sent to the proxy */
	__u64 inbound_skipped;	 /* inbound connections to ports not captured */
	__u64 inbound_no_listener; /* captured, but no inbound listener */
	/* connects refused: the namespace holds its quota of records */
	__u64 quota_reached;
	/* records of connects that never completed, removed when they failed */
	__u64 records_released;
	/* connections the proxy-down policy decided (no proxy listener):
	 * sent to their destination unproxied, or refused */
	__u64 proxy_down_open;
	__u64 proxy_down_closed;
	/* setsockopt calls refused by the guard (SO_MARK with the proxy
	 * mark, IP_TRANSPARENT, IPV6_TRANSPARENT) */
	__u64 sockopt_refused;
	/* connects exempted because they came from a proxy cgroup */
	__u64 skipped_proxy_cgroup;
	/* UDP connects and datagrams sent to the DNS listener */
	__u64 dns_udp_redirected;
	/* answers whose source was given back as the resolver asked (and
	 * the UDP relay's, as their destination) */
	__u64 dns_answers_rewritten;
	/* UDP connects and datagrams sent to the UDP relay */
	__u64 udp_relayed;
};

#define SHUNT_NETNS_PATH_MAX 200

/* Value of the netns_info map (agent bookkeeping, not read by programs);
 * key: network namespace cookie. Kept in bpffs so that a restarted agent
 * can list what it enrolled before. */
struct shunt_netns_info {
	char path[SHUNT_NETNS_PATH_MAX];
	__u64 inode;
	__u64 enrolled_at; /* unix seconds */
};

#endif /* SHUNT_ABI_H */
