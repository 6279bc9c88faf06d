/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by accept_probe.bpf.c and user space. Nothing else. */
#ifndef EBPF_GEOIP_BPF_ACCEPT_PROBE_H_
#define EBPF_GEOIP_BPF_ACCEPT_PROBE_H_

#define GEOIP_AF_INET 4
#define GEOIP_AF_INET6 6

/* Number of bytes in the per-port bitmap: one bit for each of 65536 ports. */
#define GEOIP_PORT_BITMAP_BYTES 8192

/*
 * One key per (peer address, local port, network namespace) of the accepted
 * connection.
 * addr:  the peer address in network byte order. IPv4 (and IPv4-mapped
 *        IPv6, which the probe normalises) uses addr[0..3]; the rest is zero.
 * port:  the local (listening) port in host byte order.
 * af:    GEOIP_AF_INET or GEOIP_AF_INET6.
 * netns: the inode number of the socket's network namespace, as
 *        /proc/PID/ns/net shows it; two services on one port in two
 *        namespaces are two keys.
 */
struct accept_key {
	__u8 addr[16];
	__u16 port;
	__u8 af;
	__u8 pad;
	__u32 netns;
};

/* A listening socket: (network namespace, port) ... */
struct listener_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

/* ... and who called listen() on it, recorded at that moment. */
#define GEOIP_COMM_LEN 16
struct listener_value {
	__u64 cgroup_id; /* cgroup v2 id (the cgroup directory's inode) */
	__u32 tgid;	 /* the process, as user space sees its PID */
	char comm[GEOIP_COMM_LEN];
};

/* Listeners remembered; the least recently listening go first. */
#define GEOIP_LISTENER_ENTRIES 8192

/* Sockets the accept-hook modes can hold between handshake and accept(). */
#define GEOIP_PENDING_ENTRIES 16384

/*
 * Programs currently writing into the maps of generation slot 0 / 1, one
 * counter pair per CPU on a cache line of its own, so that CPUs counting at
 * once do not pass the line between them. A program enters and leaves on
 * the same CPU (it cannot migrate); past GEOIP_INFLIGHT_CPUS CPUs share
 * pairs, which stays correct (the updates are atomic), only slower.
 */
#define GEOIP_INFLIGHT_CPUS 512
struct inflight_pair {
	__u64 count[2];
	__u64 pad[6];
};

#endif /* EBPF_GEOIP_BPF_ACCEPT_PROBE_H_ */
