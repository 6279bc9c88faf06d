// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Counts accepted TCP connections per (peer address, local port), in the
 * kernel, so user space is never woken per connection.
 *
 * A connection is counted once, when its handshake completes after the
 * probe attached. Where it is counted depends on the mode user space loads:
 *   tracepoint  raw_tracepoint/inet_sock_set_state alone counts at the
 *               handshake (SYN_RECV -> ESTABLISHED). Needs no return
 *               instance and sees every handshake: it cannot miss.
 *   fexit       the handshake parks the socket in `pending`; the return of
 *   kprobe      inet_csk_accept (fexit, or a kretprobe) claims and counts it
 *               in the accepting process. A return the hook never sees (an
 *               accept() already blocked when the probe attached, or a
 *               kretprobe return beyond maxactive) leaves the socket parked;
 *               it is claimed and counted when the connection leaves
 *               ESTABLISHED, and `accept_misses` says so. Nothing is lost.
 *               A connection that closes before anyone accepts it is
 *               counted then too (as the tracepoint counts it), no miss.
 * The accept hooks read only the returned socket, so they do not depend on
 * inet_csk_accept's arguments, which changed in 6.10.
 *
 * Counts go to one of two hash maps, chosen by the low bit of `generation`;
 * a peer that does not fit is counted per port in the slot's overflow array.
 * User space flips the generation, waits for programs still using the old
 * map to leave it, then drains that map whole. Nothing is lost in the drain,
 * and the maps only need room for the distinct peers of one interval.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "accept_probe.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Settings, fixed at load time so the verifier prunes what is unused. */
const volatile bool filter_ports = false;
const volatile __u8 port_bitmap[GEOIP_PORT_BITMAP_BYTES] = {};
/* Identifies this load; only the program whose id is active_instance counts. */
const volatile __u64 instance_id = 0;
/* fexit or kprobe mode: the accept hook counts what the handshake parked. */
const volatile bool accept_hook = false;
/* Bytes and lifetimes of accepted connections (needs compare-and-swap: 5.12+). */
const volatile bool track_traffic = false;
/* Slots in open_conns, a multiple of GEOIP_OPEN_BLOCK (set with its size
 * by user space). */
const volatile __u32 open_slots = 1;

/*
 * Shared state. With --bpf.pin-path the maps (this .bss included) are pinned
 * and outlive the exporter, so a restarted or upgraded exporter loads its own
 * program into the same maps, makes it the active instance, and only then
 * lets go of the old program: counts made meanwhile are drained, not lost.
 */
/* The instance that counts; written by user space. */
volatile __u64 active_instance = 0;
/* Written by user space only. Its low bit selects the maps being filled. */
volatile __u64 generation = 0;
/* Programs currently writing into the maps of slot 0 / 1, per CPU. */
struct inflight_pair inflight[GEOIP_INFLIGHT_CPUS] = {};
/* Accepts whose address did not fit, per slot; per port in overflowN. */
__u64 overflow_total[2] = {};
/* New keys added to each slot's map, so user space can drain it early. */
__u64 inserted[2] = {};
/* Connections accepted without the accept hook seeing it; counted on
 * leaving ESTABLISHED instead. Only increases. */
__u64 accept_misses = 0;
/* Connections counted at the handshake because `pending` was full. Only
 * increases. */
__u64 pending_full = 0;
/* Updates of `listeners`: user space reads the map again when this moves. */
__u64 listeners_changed = 0;
/* Traffic whose key did not fit in its slot's map, per slot. */
struct traffic_value traffic_overflow[2] = {};
/* Failures whose key did not fit in its slot's map, per slot and reason. */
__u64 failure_overflow[2][GEOIP_FAILURE_REASONS] = {};
/* Accepted connections that found their slots in open_conns taken:
 * counted, but not their bytes and lifetimes. Only increases. */
__u64 untracked_connections = 0;
/* Local ports that accepted a connection with a slot (bit per port), so
 * that the close of any other socket (an outgoing connection's, say) is
 * told in one load that it has none. Never cleared. */
__u64 accepting_ports[GEOIP_PORT_BITMAP_BYTES / 8] = {};
/* Accepted connections whose close no program saw (the kernel skipped the
 * run, or none was attached): their slot was freed later, their last bytes
 * and lifetime not counted. Only increases. */
__u64 missed_closes = 0;
/* Entries in half_open, so a handshake looks there only if any. */
__u64 half_open_entries = 0;
/* Byte counts given up after losing the race to report them too often
 * (see take_delta); never seen, but counted. Only increases. */
__u64 traffic_races = 0;

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized by user space before load */
	__type(key, struct accept_key);
	__type(value, __u64);
};
struct counts_map counts0 SEC(".maps"), counts1 SEC(".maps");

struct overflow_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
};
struct overflow_map overflow0 SEC(".maps"), overflow1 SEC(".maps");

/*
 * Accept-hook modes: handshakes completed but not yet claimed by the accept
 * hook, keyed by the socket's address. Holds the sockets waiting in accept
 * queues, plus those accepted by calls the hook did not see until they
 * leave ESTABLISHED. Full: the connection is counted at its handshake.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GEOIP_PENDING_ENTRIES);
	__type(key, __u64);
	__type(value, struct accept_key);
} pending SEC(".maps");

/*
 * Who listens where: written when a socket enters TCP_LISTEN, in the
 * context of the process that called listen(), and read by user space to
 * name the service each connection reached.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GEOIP_LISTENER_ENTRIES);
	__type(key, struct listener_key);
	__type(value, struct listener_value);
} listeners SEC(".maps");

/* Traffic per accept_key, two slots as for counts. */
struct traffic_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized by user space before load */
	__type(key, struct accept_key);
	__type(value, struct traffic_value);
};
struct traffic_map traffic0 SEC(".maps"), traffic1 SEC(".maps");

/* Failed inbound connections per failure_key, two slots as for counts. */
struct failures_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized by user space before load */
	__type(key, struct failure_key);
	__type(value, __u64);
};
struct failures_map failures0 SEC(".maps"), failures1 SEC(".maps");

/* Handshakes waiting on a retransmitted SYN-ACK (see half_open_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GEOIP_HALF_OPEN_ENTRIES);
	__type(key, struct half_open_key);
	__type(value, struct half_open_value);
} half_open SEC(".maps");

/* Accepted connections still open (see struct conn_state). An array sized
 * by user space before load: taking and giving back a slot is a
 * compare-and-swap, with no lock and no allocation. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096); /* blocks; resized by user space before load */
	__type(key, __u32);
	__type(value, struct conn_block);
} open_conns SEC(".maps");

static __always_inline bool port_wanted(__u16 port)
{
	if (!filter_ports)
		return true;
	return port_bitmap[port >> 3] & (1 << (port & 7));
}

/* Adds one to key in map; returns false if the map had no room. */
static __always_inline bool count_in(void *map, __u32 slot, const struct accept_key *key)
{
	__u64 one = 1, *value;

	value = bpf_map_lookup_elem(map, key);
	if (value) {
		__sync_fetch_and_add(value, 1);
		return true;
	}
	if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == 0) {
		__sync_fetch_and_add(&inserted[slot & 1], 1);
		return true;
	}
	/* Another CPU may have inserted the same key meanwhile. */
	value = bpf_map_lookup_elem(map, key);
	if (value) {
		__sync_fetch_and_add(value, 1);
		return true;
	}
	return false;
}

/*
 * Enters the map of the current generation; `count` is this CPU's pair of
 * inflight. The atomic increment and the second read of `generation` pair
 * with user space's flip-then-check, so user space never drains a map a
 * program is still writing to.
 */
static __always_inline __u32 enter_generation(__u64 *count)
{
	__u32 slot = generation & 1;

	__sync_fetch_and_add(&count[slot], 1);
	if ((generation & 1) != slot) {
		__sync_fetch_and_add(&count[slot], -1);
		slot ^= 1;
		__sync_fetch_and_add(&count[slot], 1);
	}
	return slot & 1;
}

static __always_inline void count_overflow(void *map, __u32 slot, __u16 port)
{
	__u32 index = port;
	__u64 *overflow = bpf_map_lookup_elem(map, &index);

	if (overflow)
		__sync_fetch_and_add(overflow, 1);
	__sync_fetch_and_add(&overflow_total[slot & 1], 1);
}

/*
 * Sets key's address from the socket's family and peer address; false if
 * the family is neither IPv4 nor IPv6.
 */
static __always_inline bool set_peer(struct accept_key *key, __u16 family, __u32 daddr,
				     const __u32 *daddr6)
{
	__u32 *raw = (__u32 *)key->addr;

	if (family == AF_INET) {
		key->af = GEOIP_AF_INET;
		raw[0] = daddr;
		return true;
	}
	if (family != AF_INET6)
		return false;
	/* ::ffff:a.b.c.d is an IPv4 client of a dual-stack listener. */
	if (daddr6[0] == 0 && daddr6[1] == 0 && daddr6[2] == bpf_htonl(0xffff)) {
		key->af = GEOIP_AF_INET;
		raw[0] = daddr6[3];
		return true;
	}
	key->af = GEOIP_AF_INET6;
	__builtin_memcpy(raw, daddr6, 16);
	return true;
}

/*
 * The accept hooks get the socket as a plain number, so they read it with
 * helper calls: the first bytes of struct sock (its sock_common) in one
 * call, since the port, family, addresses and namespace all lie in them and
 * a call per field was most of the probe's cost per connection. Fields are
 * taken at the offsets of the running kernel (CO-RE).
 */
#define GEOIP_SKC_BYTES 128
#define SKC_FIELD(buf, field, type)                                                                \
	(*(type *)((buf) + bpf_core_field_offset(struct sock_common, field)))

/* Fills `key` for sk; false if sk is not a TCP connection on a wanted port. */
static __always_inline bool make_key_read(const struct sock *sk, struct accept_key *key)
{
	__u64 skc_words[GEOIP_SKC_BYTES / 8]; /* 8-byte aligned */
	__u8 *skc = (__u8 *)skc_words;
	const __u32 *daddr6;
	__u16 port;
	struct net *net;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	if (bpf_core_read(skc, sizeof(skc_words), &sk->__sk_common))
		return false;
	port = SKC_FIELD(skc, skc_num, __u16);
	if (!port_wanted(port))
		return false;
	daddr6 = (const __u32 *)(skc + bpf_core_field_offset(struct sock_common, skc_v6_daddr));
	if (!set_peer(key, SKC_FIELD(skc, skc_family, __u16), SKC_FIELD(skc, skc_daddr, __u32),
		      daddr6))
		return false;
	key->port = port;
	net = SKC_FIELD(skc, skc_net, struct net *);
	key->netns = BPF_CORE_READ(net, ns.inum);
	return true;
}

/*
 * The same for the tracepoint, whose socket pointer the verifier knows the
 * type of (tp_btf): plain loads at the running kernel's offsets, no helper
 * calls.
 */
static __always_inline bool make_key_btf(const struct sock *sk, struct accept_key *key)
{
	const struct sock_common *skc = &sk->__sk_common;
	__u32 daddr6[4] = {};
	__u16 family, port;

	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	port = skc->skc_num;
	if (!port_wanted(port))
		return false;
	family = skc->skc_family;
	if (family == AF_INET6) {
		daddr6[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		daddr6[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		daddr6[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		daddr6[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
	}
	if (!set_peer(key, family, skc->skc_daddr, daddr6))
		return false;
	key->port = port;
	key->netns = skc->skc_net.net->ns.inum;
	return true;
}

/* A socket entered TCP_LISTEN: remember who listens on it. */
static __always_inline void listening(const struct sock *sk)
{
	struct listener_key key = {};
	struct listener_value value = {};

	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return;
	key.port = sk->__sk_common.skc_num;
	if (!port_wanted(key.port))
		return;
	key.netns = sk->__sk_common.skc_net.net->ns.inum;
	value.cgroup_id = bpf_get_current_cgroup_id();
	value.tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(value.comm, sizeof(value.comm));
	bpf_map_update_elem(&listeners, &key, &value, BPF_ANY);
	__sync_fetch_and_add(&listeners_changed, 1);
}

/* This CPU's pair of in-flight counters. */
static __always_inline __u64 *cpu_inflight(void)
{
	return inflight[bpf_get_smp_processor_id() % GEOIP_INFLIGHT_CPUS].count;
}

/* Adds one connection for key to the maps of the current generation. */
static __always_inline void count_key(const struct accept_key *key)
{
	__u64 *count = cpu_inflight();
	/* Everything this event writes stays inside the in-flight window. */
	__u32 slot = enter_generation(count);

	if (slot == 0) {
		if (!count_in(&counts0, 0, key))
			count_overflow(&overflow0, 0, key->port);
	} else {
		if (!count_in(&counts1, 1, key))
			count_overflow(&overflow1, 1, key->port);
	}
	__sync_fetch_and_add(&count[slot], -1);
}

/* The bucket of a lifetime: upper bounds 0.01 0.1 1 10 60 600 3600 s. */
static __always_inline __u32 duration_bucket(__u64 ns)
{
	if (ns <= 10000000ULL)
		return 0;
	if (ns <= 100000000ULL)
		return 1;
	if (ns <= 1000000000ULL)
		return 2;
	if (ns <= 10000000000ULL)
		return 3;
	if (ns <= 60000000000ULL)
		return 4;
	if (ns <= 600000000000ULL)
		return 5;
	if (ns <= 3600000000000ULL)
		return 6;
	return 7;
}

/* Adds `d` (at most one closed connection) to v. */
static __always_inline void add_traffic_to(struct traffic_value *v, const struct traffic_value *d,
					   __u32 bucket)
{
	if (d->received_bytes)
		__sync_fetch_and_add(&v->received_bytes, d->received_bytes);
	if (d->sent_bytes)
		__sync_fetch_and_add(&v->sent_bytes, d->sent_bytes);
	if (d->closed) {
		__sync_fetch_and_add(&v->closed, 1);
		__sync_fetch_and_add(&v->duration_ns, d->duration_ns);
		__sync_fetch_and_add(&v->duration_buckets[bucket % GEOIP_DURATION_BUCKETS], 1);
	}
}

/* Adds d to key in map, or to the slot's overflow if the map has no room. */
static __always_inline void add_traffic_in(void *map, __u32 slot, const struct accept_key *key,
					   const struct traffic_value *d, __u32 bucket)
{
	struct traffic_value *value = bpf_map_lookup_elem(map, key);

	if (!value) {
		if (bpf_map_update_elem(map, key, d, BPF_NOEXIST) == 0)
			return;
		/* Another CPU may have inserted the same key meanwhile. */
		value = bpf_map_lookup_elem(map, key);
		if (!value)
			value = &traffic_overflow[slot & 1];
	}
	add_traffic_to(value, d, bucket);
}

/* Adds d to the traffic maps of the current generation. */
static __always_inline void add_traffic(const struct accept_key *key, struct traffic_value *d)
{
	__u32 bucket = duration_bucket(d->duration_ns);
	__u64 *count = cpu_inflight();
	__u32 slot = enter_generation(count);

	if (d->closed)
		d->duration_buckets[bucket % GEOIP_DURATION_BUCKETS] = 1;
	if (slot == 0)
		add_traffic_in(&traffic0, 0, key, d, bucket);
	else
		add_traffic_in(&traffic1, 1, key, d, bucket);
	__sync_fetch_and_add(&count[slot], -1);
}

/*
 * The part of `total` not yet counted, claimed: *reported only grows while
 * its entry belongs to one connection, and whoever moves it from a value owns
 * the bytes between. The iterator (each drain) and the close of the socket
 * may race; neither counts twice. Should it fall, the entry went to another
 * connection meanwhile (see live_traffic): nothing is taken.
 */
static __always_inline __u64 take_delta(__u64 *reported, __u64 total)
{
	__u64 seen = *(volatile __u64 *)reported, prev;

	for (int i = 0; i < 4; i++) {
		if (total <= seen)
			return 0;
		prev = __sync_val_compare_and_swap(reported, seen, total);
		if (prev == seen)
			return total - seen;
		if (prev < seen)
			return 0;
		seen = prev;
	}
	__sync_fetch_and_add(&traffic_races, 1);
	return 0;
}

/*
 * What the probe reads of a TCP connection to count its bytes: plain loads
 * where the verifier knows the socket (sample_btf), helper calls where it is
 * a number from a map (sample_read).
 */
struct conn_sample {
	__u64 bytes_received;
	__u64 bytes_acked;
	unsigned long flags;
	__u32 rcv_nxt;
	__u32 snd_una;
	__u32 write_seq;
	int state;
};

static __always_inline void sample_btf(const struct tcp_sock *tp, int state, struct conn_sample *s)
{
	s->bytes_received = tp->bytes_received;
	s->bytes_acked = tp->bytes_acked;
	s->flags = tp->inet_conn.icsk_inet.sk.__sk_common.skc_flags;
	s->rcv_nxt = tp->rcv_nxt;
	s->snd_una = tp->snd_una;
	s->write_seq = tp->write_seq;
	s->state = state;
}

static __always_inline void sample_read(const struct tcp_sock *tp, struct conn_sample *s)
{
	s->bytes_received = BPF_CORE_READ(tp, bytes_received);
	s->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	s->flags = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_flags);
	s->rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
	s->snd_una = BPF_CORE_READ(tp, snd_una);
	s->write_seq = BPF_CORE_READ(tp, write_seq);
	s->state = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_state);
}

/* Where the sample's byte counts start each way (see struct conn_state). */
static __always_inline __u32 rcv_base(const struct conn_sample *s)
{
	return s->rcv_nxt - (__u32)s->bytes_received;
}

static __always_inline __u32 snd_base(const struct conn_sample *s)
{
	return s->snd_una - (__u32)s->bytes_acked;
}

/* The connection's base (see struct conn_state). */
static __always_inline __u32 base_of(const struct conn_sample *s)
{
	return rcv_base(s) ^ snd_base(s);
}

/*
 * The kernel's byte counts follow sequence numbers, and a FIN takes one:
 * bytes_received counts the peer's FIN once it arrived (SOCK_DONE, set by
 * tcp_fin() before anything else), bytes_acked counts ours once acked (it
 * was sent if the socket went through a state that sends one, and acked
 * when nothing is left unacknowledged). The sample's state is the socket's,
 * or the one it leaves when it closes.
 */
static __always_inline bool fin_received(const struct conn_sample *s)
{
	unsigned long done = 1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE);

	return s->flags & done;
}

static __always_inline bool fin_acked(const struct conn_sample *s)
{
	bool sent = s->state == TCP_FIN_WAIT1 || s->state == TCP_FIN_WAIT2 ||
		    s->state == TCP_CLOSING || s->state == TCP_LAST_ACK;

	return sent && s->snd_una == s->write_seq;
}

/* Payload bytes the sample says moved each way. */
static __always_inline __u64 received_bytes(const struct conn_sample *s)
{
	return s->bytes_received - (fin_received(s) ? 1 : 0);
}

static __always_inline __u64 sent_bytes(const struct conn_sample *s)
{
	return s->bytes_acked - (fin_acked(s) ? 1 : 0);
}

/* Where a socket's address becomes a number (see address_of). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} scratch SEC(".maps");

/*
 * A socket's address as a number: the verifier does not let a program
 * compute with a pointer, but a privileged one may store it in a map and
 * read it back as one. 0 if the map cannot be had (not expected).
 */
static __always_inline __u64 address_of(const void *p)
{
	__u32 zero = 0;
	__u64 *cell = bpf_map_lookup_elem(&scratch, &zero);

	if (!cell)
		return 0;
	*cell = (__u64)p;
	return *(volatile __u64 *)cell;
}

/*
 * The i-th slot a socket may have. Sockets are slab objects of over 2 KiB
 * in slabs of up to 32 KiB: the 32 KiB region, hashed, picks where a run
 * of 16 slots starts, and the object's 2 KiB line within it picks its slot
 * in the run. So two sockets of one slab never want the same slot, and a
 * socket reused for a new connection (the allocator hands the last one
 * freed out first) gets its slot back: a burst of short connections keeps
 * touching the same few slots, which stay in the cache, instead of a new
 * random one each time. Where the runs of two slabs meet, the next
 * candidates are a stride apart that the region's hash also picks, so the
 * sockets of the two slabs look in different places instead of queueing
 * for the same few slots.
 */
static __always_inline struct conn_state *slot_of(__u64 addr, __u32 i)
{
	__u64 hash = (addr >> 15) * 0x9E3779B97F4A7C15ULL;
	__u64 stride = ((hash >> 8) & 0xffffff) | 1;
	__u32 slot =
	    ((hash >> 32) + ((addr >> 11) & (GEOIP_OPEN_BLOCK - 1)) + i * stride) % open_slots;
	__u32 index = slot / GEOIP_OPEN_BLOCK;
	struct conn_block *b = bpf_map_lookup_elem(&open_conns, &index);

	return b ? &b->slot[slot & (GEOIP_OPEN_BLOCK - 1)] : NULL;
}

static __always_inline __u64 port_bit(__u16 port)
{
	return 1ULL << (port & 63);
}

/* An accepted connection: take a slot for its key, start and base. */
static __always_inline void remember(const struct sock *sk, const struct accept_key *key)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((struct sock *)sk);
	__u64 id = (__u64)sk, addr = address_of(sk), owner;
	struct conn_state *state;
	struct conn_sample s;
	__u16 port = key->port;

	if (!tp)
		return;
	for (__u32 i = 0; i < GEOIP_OPEN_PROBES; i++) {
		state = slot_of(addr, i);
		if (!state)
			break;
		owner = state->owner;
		/* Free, or left by an earlier socket at this address whose close
		 * no program saw. */
		if (owner != 0 && owner != id)
			continue;
		if (__sync_val_compare_and_swap(&state->owner, owner, GEOIP_OPEN_CLAIMING) != owner)
			continue;
		if (owner == id)
			__sync_fetch_and_add(&missed_closes, 1);
		sample_btf(tp, TCP_ESTABLISHED, &s);
		state->key = *key;
		state->start_ns = bpf_ktime_get_ns();
		state->received_reported = 0;
		state->sent_reported = 0;
		state->base = base_of(&s);
		state->suspect = 0;
		if (!(accepting_ports[port >> 6] & port_bit(port)))
			__sync_fetch_and_or(&accepting_ports[port >> 6], port_bit(port));
		/* Published last, by an ordered exchange: whoever sees the owner
		 * sees the slot filled. */
		__sync_lock_test_and_set(&state->owner, id);
		return;
	}
	__sync_fetch_and_add(&untracked_connections, 1);
}

/* A socket closes: count the rest of an accepted one's bytes, and its end. */
static __always_inline void closing(const struct sock *sk, int oldstate)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((struct sock *)sk);
	struct conn_state *state = NULL, *at;
	struct traffic_value d = {};
	__u64 id = (__u64)sk, addr;
	struct accept_key key;
	struct conn_sample s;
	__u16 port;

	if (!tp)
		return;
	/* The local port, from inet_sport: an orphaned socket's skc_num may
	 * be 0 by now (it is on 6.18 in LAST_ACK). */
	port = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	if (!(accepting_ports[port >> 6] & port_bit(port)))
		return; /* not a port that accepted a connection with a slot */
	addr = address_of(sk);
	for (__u32 i = 0; i < GEOIP_OPEN_PROBES; i++) {
		at = slot_of(addr, i);
		if (at && at->owner == id) {
			state = at;
			break;
		}
	}
	if (!state)
		return; /* not an accepted connection, or one without a slot */
	sample_btf(tp, oldstate, &s);
	if (state->base == base_of(&s)) {
		key = state->key;
		d.received_bytes = take_delta(&state->received_reported, received_bytes(&s));
		d.sent_bytes = take_delta(&state->sent_reported, sent_bytes(&s));
		d.closed = 1;
		d.duration_ns = bpf_ktime_get_ns() - state->start_ns;
		add_traffic(&key, &d);
	} else {
		/* An earlier socket's at this address, its close unseen. */
		__sync_fetch_and_add(&missed_closes, 1);
	}
	__sync_val_compare_and_swap(&state->owner, id, 0);
}

/*
 * The port a failure is counted under: the port itself where --bpf.ports
 * names it, or, counting every port, where a listener was ever seen in
 * that namespace; else 0 ("other"), so a port scan adds no keys per port.
 */
static __always_inline __u16 failure_port(__u32 netns, __u16 port)
{
	struct listener_key key = {.netns = netns, .port = port};

	if (filter_ports)
		return port_wanted(port) ? port : 0;
	return bpf_map_lookup_elem(&listeners, &key) ? port : 0;
}

/* An index into failure_overflow's reasons, bounded for the verifier. */
static __always_inline __u32 reason_index(__u32 reason)
{
	if (reason >= GEOIP_FAILURE_REASONS)
		return 0;
	return reason;
}

static __always_inline void count_failure_in(void *map, __u32 slot, const struct failure_key *key)
{
	__u64 one = 1, *value = bpf_map_lookup_elem(map, key);

	if (value) {
		__sync_fetch_and_add(value, 1);
		return;
	}
	if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == 0)
		return;
	value = bpf_map_lookup_elem(map, key);
	if (value)
		__sync_fetch_and_add(value, 1);
	else
		__sync_fetch_and_add(&failure_overflow[slot & 1][reason_index(key->reason)], 1);
}

/* Adds one failure of `reason` whose peer is not kept. */
static __always_inline void count_failure_overflow(__u32 reason)
{
	__u64 *count = cpu_inflight();
	__u32 slot = enter_generation(count);

	__sync_fetch_and_add(&failure_overflow[slot & 1][reason_index(reason)], 1);
	__sync_fetch_and_add(&count[slot], -1);
}

/* Adds one failure for key to the maps of the current generation. */
static __always_inline void count_failure(const struct failure_key *key)
{
	__u64 *count = cpu_inflight();
	__u32 slot = enter_generation(count);

	if (slot == 0)
		count_failure_in(&failures0, 0, key);
	else
		count_failure_in(&failures1, 1, key);
	__sync_fetch_and_add(&count[slot], -1);
}

static __always_inline bool active(void)
{
	return active_instance == instance_id;
}

/*
 * Moves sk's entry out of `pending` into *out. Whoever deletes an entry owns
 * it, so an accept hook and a state change racing on two CPUs never both
 * act on it. False if there was none, or another CPU took it first.
 */
static __always_inline bool take(__u64 id, struct accept_key *out)
{
	struct accept_key *entry = bpf_map_lookup_elem(&pending, &id);

	if (!entry)
		return false;
	/* Copied before the delete, which may let the element be reused. */
	*out = *entry;
	return bpf_map_delete_elem(&pending, &id) == 0;
}

/*
 * An entry whose af is 0 is a mark, not a parked handshake: the accept hook
 * saw the socket first. The kernel queues a child for accept() just before
 * it moves it to ESTABLISHED, so a waiting accept() can return it before
 * the handshake is parked; the handshake then finds the mark and counts.
 */
static __always_inline bool is_mark(const struct accept_key *key)
{
	return key->af == 0;
}

/* A handshake that had to wait completed: it is no longer half open. */
static __always_inline void completed(const struct sock *sk, const struct accept_key *key)
{
	struct half_open_key half = {.conn = *key};

	half.peer_port = bpf_ntohs(sk->__sk_common.skc_dport);
	if (bpf_map_delete_elem(&half_open, &half) == 0)
		__sync_fetch_and_add(&half_open_entries, -1);
}

/* Handshake completed: count it now, or park it for the accept hook. */
static __always_inline void handshake_done(const struct sock *sk)
{
	struct accept_key key = {}, found;
	__u64 id = (__u64)sk;

	if (!make_key_btf(sk, &key))
		return;
	if (half_open_entries)
		completed(sk, &key);
	if (track_traffic)
		remember(sk, &key);
	if (!accept_hook) {
		count_key(&key);
		return;
	}
	if (bpf_map_update_elem(&pending, &id, &key, BPF_NOEXIST) == 0)
		return; /* parked */
	if (take(id, &found)) {
		/* The hook's mark: it was accepted already. */
		if (!is_mark(&found))
			count_key(&found); /* stale, never counted */
	} else {
		__sync_fetch_and_add(&pending_full, 1);
	}
	count_key(&key);
}

/* The accept hook: counts what the handshake parked, or leaves a mark. */
static __always_inline void accept_returned(const struct sock *sk)
{
	struct accept_key key = {}, found, mark = {};
	__u64 id = (__u64)sk;

	if (!sk || !active() || !make_key_read(sk, &key))
		return;
	if (take(id, &found) && !is_mark(&found)) {
		count_key(&found);
		return;
	}
	/* Not parked yet: its handshake counts it when it gets there. */
	if (bpf_map_update_elem(&pending, &id, &mark, BPF_NOEXIST) == 0)
		return;
	/* Parked meanwhile (or the table is full: then it was counted). */
	if (take(id, &found) && !is_mark(&found))
		count_key(&found);
}

SEC("fexit/inet_csk_accept")
int fexit_accept(__u64 *ctx)
{
	__u64 ret = 0;

	/* The return value is found without knowing the argument count. */
	if (bpf_get_func_ret(ctx, &ret))
		return 0;
	accept_returned((const struct sock *)ret);
	return 0;
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(kretprobe_accept, struct sock *sk)
{
	accept_returned(sk);
	return 0;
}

/*
 * A raw tracepoint with the kernel's types (tp_btf): the socket is read with
 * plain loads. It needs no BPF trampoline, so it attaches where fexit cannot.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(raw_tp_set_state, const struct sock *sk, int oldstate, int newstate)
{
	/* Most state changes are neither; they leave after these two tests. */
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		if (active())
			handshake_done(sk);
		return 0;
	}
	/* listen(): in the listening process's context. Rare. */
	if (newstate == TCP_LISTEN) {
		listening(sk);
		return 0;
	}
	/*
	 * Still parked on leaving ESTABLISHED: count it now. It was accepted
	 * (grafted onto a struct socket) without the hook seeing it, or it
	 * closed while still waiting in the accept queue, which is no miss.
	 * Grafting follows the hook, so a socket grafted before this take was
	 * one the hook did not see; read it first, or a graft racing with the
	 * take on another CPU would look like a miss. A mark left here (a
	 * socket that was established before the probe attached) goes.
	 */
	if (accept_hook && oldstate == TCP_ESTABLISHED && active()) {
		struct accept_key found;
		bool accepted = sk->sk_socket != NULL;

		if (take((__u64)sk, &found) && !is_mark(&found)) {
			count_key(&found);
			if (accepted)
				__sync_fetch_and_add(&accept_misses, 1);
		}
	}
	/* The end of every TCP socket; only accepted ones have a slot. */
	if (track_traffic && newstate == TCP_CLOSE && active())
		closing(sk, oldstate);
	return 0;
}

/*
 * Gives back bytes take_delta claimed from a slot that turned out to be
 * another connection's (see live_slot): true if they were that slot's.
 */
static __always_inline bool give_back(__u64 *reported, __u64 taken, __u64 total)
{
	return taken && __sync_val_compare_and_swap(reported, total, total - taken) == total;
}

/*
 * Bytes of one accepted connection still open, each drain (see
 * live_traffic). The socket is a number here, read with helper calls. The
 * slot may be given back by the close on another CPU and taken by a new
 * connection while this runs: bytes claimed meanwhile are the close's to
 * count, so they are given back. A socket that is closed, or is no longer
 * the slot's connection, lost its close (a run the kernel skipped): found
 * so on two drains in a row, its slot is freed.
 */
static __always_inline void live_slot(struct conn_state *state)
{
	struct traffic_value d = {};
	__u64 received, sent, sk = state->owner;
	struct accept_key key;
	struct conn_sample s;
	__u32 base;

	if (sk <= GEOIP_OPEN_CLAIMING)
		return;
	key = state->key;
	base = state->base;
	sample_read((const struct tcp_sock *)sk, &s);
	if (s.state == 0 || s.state == TCP_CLOSE || s.state == TCP_LISTEN || base != base_of(&s)) {
		if (!state->suspect) {
			state->suspect = 1;
			return;
		}
		if (__sync_val_compare_and_swap(&state->owner, sk, 0) == sk)
			__sync_fetch_and_add(&missed_closes, 1);
		return;
	}
	if (state->suspect)
		state->suspect = 0;
	received = received_bytes(&s);
	sent = sent_bytes(&s);
	d.received_bytes = take_delta(&state->received_reported, received);
	d.sent_bytes = take_delta(&state->sent_reported, sent);
	if (*(volatile __u64 *)&state->owner != sk || state->base != base) {
		if (give_back(&state->received_reported, d.received_bytes, received))
			d.received_bytes = 0;
		if (give_back(&state->sent_reported, d.sent_bytes, sent))
			d.sent_bytes = 0;
	}
	if (d.received_bytes || d.sent_bytes)
		add_traffic(&key, &d);
}

/*
 * Bytes of the accepted connections still open: user space runs this over
 * open_conns each drain, whatever the namespace, once per block of slots.
 */
SEC("iter/bpf_map_elem")
int live_traffic(struct bpf_iter__bpf_map_elem *ctx)
{
	struct conn_block *block;
	__u32 *index = ctx->key, i;

	if (!track_traffic || !index)
		return 0;
	i = *index;
	block = bpf_map_lookup_elem(&open_conns, &i);
	if (!block)
		return 0;
	for (int j = 0; j < GEOIP_OPEN_BLOCK; j++)
		live_slot(&block->slot[j]);
	return 0;
}

/*
 * Refused: a SYN to a port where nothing listens. The kernel answers with a
 * reset and drops the SYN with the reason NO_SOCKET (Linux 5.17+), which
 * is the only moment it is seen: no listener, no socket, no state change.
 */
static __always_inline void refused(const struct sk_buff *skb)
{
	struct failure_key key = {};
	unsigned char *head = skb->head;
	__u16 network = skb->network_header, transport = skb->transport_header;
	struct net_device *dev = skb->dev;
	struct tcphdr tcp;
	__u32 port;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + network) ||
		    ip.protocol != IPPROTO_TCP)
			return;
		key.af = GEOIP_AF_INET;
		*(__u32 *)key.addr = ip.saddr;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + network) ||
		    ip6.nexthdr != IPPROTO_TCP)
			return;
		key.af = GEOIP_AF_INET6;
		__builtin_memcpy(key.addr, &ip6.saddr, 16);
	} else {
		return;
	}
	if (bpf_probe_read_kernel(&tcp, sizeof(tcp), head + transport) || !tcp.syn || tcp.ack)
		return;
	if (!dev)
		return;
	key.netns = dev->nd_net.net->ns.inum;
	/* Older kernels lose a byte swap's bounds: mask where the verifier
	 * sees it, or the port bitmap's index looks unbounded (6.1 refused it). */
	port = bpf_ntohs(tcp.dest);
	barrier_var(port);
	port &= 0xffff;
	key.port = failure_port(key.netns, port);
	key.reason = GEOIP_REASON_REFUSED;
	count_failure(&key);
}

/*
 * Incomplete: the kernel sends a SYN-ACK again because no ACK came. The
 * handshake is remembered until it completes; if it has not when the
 * kernel's next timer would give up on it (1 s << retransmissions so far,
 * at most 120 s, the kernel's own backoff from TCP_TIMEOUT_INIT), user space
 * counts it. A SYN-ACK sent again for a repeated SYN only moves that time.
 */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(synack_again, const struct sock *listener, const struct request_sock *req)
{
	const struct sock_common *skc = &req->__req_common;
	struct half_open_key half = {};
	struct half_open_value value = {};
	__u32 daddr6[4] = {};
	__u64 backoff, timeouts;

	if (!active() || BPF_CORE_READ_BITFIELD(listener, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (skc->skc_family == AF_INET6) {
		daddr6[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		daddr6[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		daddr6[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		daddr6[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
	}
	if (!set_peer(&half.conn, skc->skc_family, skc->skc_daddr, daddr6))
		return 0;
	half.conn.port = skc->skc_num;
	half.conn.netns = skc->skc_net.net->ns.inum;
	half.peer_port = bpf_ntohs(skc->skc_dport);
	timeouts = BPF_CORE_READ_BITFIELD(req, num_timeout);
	backoff = timeouts >= 6 ? 120 : (1ULL << (timeouts + 1));
	if (backoff > 120)
		backoff = 120;
	/* One second more than the kernel's timer, for the timer's slack. */
	value.expires_ns = bpf_ktime_get_ns() + (backoff + 1) * 1000000000ULL;
	value.label_port = failure_port(half.conn.netns, half.conn.port);
	if (bpf_map_update_elem(&half_open, &half, &value, BPF_EXIST) == 0)
		return 0; /* seen before: a later deadline */
	if (bpf_map_update_elem(&half_open, &half, &value, BPF_NOEXIST) == 0) {
		__sync_fetch_and_add(&half_open_entries, 1);
		return 0;
	}
	/*
	 * The table is full (a SYN flood): counted now, as overflow, once per
	 * handshake (at its first timeout; a later one of a handshake the table
	 * never held is the same handshake again).
	 */
	if (timeouts == 0)
		count_failure_overflow(GEOIP_REASON_INCOMPLETE);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dropped_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	if (!bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		return 0;
	if (reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
	    active())
		refused(skb);
	return 0;
}
