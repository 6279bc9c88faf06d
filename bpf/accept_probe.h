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
 * Traffic of the accepted connections of one accept_key: bytes of those
 * still open (reported by the iterator each drain) and of those that
 * closed, and the lifetimes of those that closed.
 * received_bytes: payload from the peer (tcp_sock.bytes_received).
 * sent_bytes:     payload to the peer that it acknowledged (bytes_acked).
 * duration_buckets: closed connections by lifetime, bounds in
 *                 GEOIP_DURATION_BOUNDS_NS, the last one unbounded.
 */
#define GEOIP_DURATION_BUCKETS 8
struct traffic_value {
	__u64 received_bytes;
	__u64 sent_bytes;
	__u64 closed;
	__u64 duration_ns;
	__u64 duration_buckets[GEOIP_DURATION_BUCKETS];
};

/*
 * An accepted connection still open: a slot of open_conns, one cache line.
 * A socket's slot follows from its address (see slot_of()), or is one
 * of the GEOIP_OPEN_PROBES - 1 after that one; it is taken at the handshake
 * and given back at the close. The slots come in blocks of
 * GEOIP_OPEN_BLOCK.
 * owner: 0 (free), GEOIP_OPEN_CLAIMING (being filled), or the socket's
 *        address.
 * base:  where the connection's byte counts start, each way: rcv_nxt -
 *        bytes_received xor snd_una - bytes_acked, in 32 bits. The kernel
 *        moves both halves of each difference together, so it stays fixed
 *        for the connection's life, and it comes from the connection's
 *        random initial sequence numbers: a socket at the owner's address
 *        with another base is another connection.
 * suspect: the iterator found the socket closed, or another connection, at
 *        its last run; it frees the slot if it finds it so again.
 */
#define GEOIP_OPEN_BLOCK 16
#define GEOIP_OPEN_PROBES 16
#define GEOIP_OPEN_CLAIMING 1
struct conn_state {
	__u64 owner;
	struct accept_key key;
	__u64 start_ns;		 /* bpf_ktime_get_ns() at the handshake */
	__u64 received_reported; /* bytes already counted in traffic maps */
	__u64 sent_reported;
	__u32 base;
	__u32 suspect;
};

/* The element of open_conns: one block of slots, so that the iterator runs
 * once per block rather than once per slot. */
struct conn_block {
	struct conn_state slot[GEOIP_OPEN_BLOCK];
};

/*
 * Failed inbound connections: the peer, the local port (0 unless watched:
 * see failure_port()), the namespace, and why.
 */
#define GEOIP_REASON_REFUSED 1
#define GEOIP_REASON_INCOMPLETE 2
#define GEOIP_FAILURE_REASONS 3 /* reasons are 1 .. GEOIP_FAILURE_REASONS - 1 */
struct failure_key {
	__u8 addr[16];
	__u16 port;
	__u8 af;
	__u8 reason;
	__u32 netns;
};

/*
 * Handshakes whose SYN-ACK the kernel had to send again: the connection
 * (peer, local port, namespace) and the peer's port. An entry goes when the
 * handshake completes; one left past expires_ns, when the kernel has given
 * up on it, is counted by user space as incomplete.
 */
#define GEOIP_HALF_OPEN_ENTRIES 16384
struct half_open_key {
	struct accept_key conn;
	__u32 peer_port;
};
struct half_open_value {
	__u64 expires_ns; /* bpf_ktime_get_ns() after which it was given up */
	__u16 label_port; /* the port to count it under (0: other) */
	__u16 pad[3];
};

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
