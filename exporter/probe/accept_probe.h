// The kernel probe: loads bpf/accept_probe.bpf.c through its skeleton,
// attaches the chosen hook and drains the counts it aggregates in the kernel.
#ifndef EXPORTER_PROBE_ACCEPT_PROBE_H_
#define EXPORTER_PROBE_ACCEPT_PROBE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "exporter/net/address.h"
#include "exporter/net/listening_socket.h"
#include "exporter/net/port_list.h"
#include "exporter/probe/probe_health.h"
#include "exporter/util/unique_fd.h"

struct accept_probe;
struct bpf_link;

namespace geoip {

// Where the probe counts. kAuto tries kAutoOrder until one attaches.
//   kTracepoint  the handshake completing (raw tracepoint inet_sock_set_state)
//   kFexit       the return of inet_csk_accept, through a BPF trampoline
//   kKretprobe   the same through a kretprobe (--bpf.probe=kretprobe; kprobe
//                is its deprecated name)
// The accept hooks count what the tracepoint parked at the handshake, so a
// return they do not see is still counted when the connection leaves
// ESTABLISHED (and reported as an accept miss).
enum class ProbeMode { kAuto, kFexit, kKretprobe, kTracepoint };

// What --bpf.probe=auto tries, in order: the tracepoint first, because it needs
// no return instance and cannot miss an accept() that was already blocked
// when the probe attached; it is also the cheapest (docs/PERFORMANCE.md).
inline constexpr ProbeMode kAutoOrder[] = {ProbeMode::kTracepoint, ProbeMode::kFexit,
                                           ProbeMode::kKretprobe};

absl::StatusOr<ProbeMode> ParseProbeMode(absl::string_view text);
absl::string_view ProbeModeName(ProbeMode mode);

struct ProbeOptions {
  ProbeMode mode = ProbeMode::kAuto;
  PortSet ports;  // all ports unless restricted
  // Distinct (address, port) pairs each drain interval can hold before
  // further connections are counted as overflow.
  uint32_t max_addresses = 65536;
  // Bytes and lifetimes of accepted connections (Linux 5.12+), of at most
  // max_open_connections open at once; those past it are counted as
  // untracked.
  bool traffic = false;
  uint32_t max_open_connections = 65536;
  // A directory on bpffs where the maps and the attachment stay pinned, so
  // counting goes on while the exporter is stopped; empty: no pinning.
  std::string pin_path;
};

// Connections from one peer address to one local port since the last drain.
struct DrainedCount {
  IpAddress address;
  uint16_t port = 0;
  uint32_t netns = 0;  // inode of the listener's network namespace
  uint64_t count = 0;
};

// Lifetimes of closed connections, by upper bound in seconds; the last
// bucket is everything longer (+Inf).
inline constexpr int kDurationBuckets = 8;
inline constexpr double kDurationBounds[kDurationBuckets - 1] = {0.01, 0.1, 1, 10, 60, 600, 3600};

// Traffic of the accepted connections from one peer address to one local
// port since the last drain: bytes of connections still open (read every
// drain) and of those that closed, and the lifetimes of those that closed.
struct DrainedTraffic {
  IpAddress address;
  uint16_t port = 0;
  uint32_t netns = 0;
  uint64_t received_bytes = 0;  // payload from the peer (tcp bytes_received)
  uint64_t sent_bytes = 0;      // payload to the peer it acknowledged (tcp bytes_acked)
  uint64_t closed = 0;          // connections that ended
  uint64_t duration_ns = 0;     // their lifetimes, summed
  // Closed connections by lifetime, not cumulative: bucket i counts those
  // longer than kDurationBounds[i - 1] and at most kDurationBounds[i].
  std::array<uint64_t, kDurationBuckets> duration_buckets{};
};

// Why an inbound connection failed.
//   kRefused     a SYN to a port where nothing listens, answered with a reset
//   kIncomplete  a handshake the kernel gave up on: its SYN-ACK was sent
//                again and no ACK ever came (SYN floods, half-open scans,
//                clients that vanish)
enum class FailureReason : uint8_t { kRefused = 1, kIncomplete = 2 };

// Failed inbound connections from one peer address since the last drain.
struct DrainedFailure {
  IpAddress address;
  // The local port if --bpf.ports names it (or, counting every port, if a
  // listener was ever seen there); 0 for any other port, so that a port
  // scan adds no series: label "other".
  uint16_t port = 0;
  uint32_t netns = 0;
  FailureReason reason = FailureReason::kRefused;
  uint64_t count = 0;
};

// What one Drain() collected.
struct DrainResult {
  std::vector<DrainedCount> counts;
  // (port, connections) whose peer address did not fit in the kernel map.
  std::vector<std::pair<uint16_t, uint64_t>> overflow;
  std::vector<DrainedTraffic> traffic;
  // Traffic whose peer address did not fit in the kernel map (address and
  // netns unset; port 0).
  DrainedTraffic traffic_overflow;
  std::vector<DrainedFailure> failures;
  // Failures whose peer address did not fit in the kernel map, by reason
  // (address and netns unset; port 0).
  std::vector<DrainedFailure> failure_overflow;
};

struct BpfLinkDeleter {
  void operator()(struct bpf_link* link) const;
};
struct SkeletonDeleter {
  void operator()(struct accept_probe* skel) const;
};

// Owns the loaded skeleton and its attachments; detaches on destruction.
class AcceptProbe {
 public:
  // Loads and attaches the probe. Each mode tried appends one line to
  // `attempts` saying whether it attached and, if not, why.
  static absl::StatusOr<std::unique_ptr<AcceptProbe>> Attach(const ProbeOptions& options,
                                                             std::vector<std::string>* attempts);

  AcceptProbe(const AcceptProbe&) = delete;
  AcceptProbe& operator=(const AcceptProbe&) = delete;
  ~AcceptProbe();

  // The hook that is attached (never kAuto).
  ProbeMode mode() const { return mode_; }

  // Moves everything counted since the last call into `result` (cleared
  // first). Called from one thread.
  absl::Status Drain(DrainResult* result);

  // True once the map being filled is half full: draining it now, before
  // the interval ends, keeps new peers from overflowing. A memory read.
  bool ShouldDrainEarly() const;

  // Every socket that entered TCP_LISTEN while the probe was loaded (at
  // most GEOIP_LISTENER_ENTRIES, the most recent), and who listens on it.
  // Any thread.
  std::vector<ListeningSocket> Listeners() const;

  // Moves whenever the kernel records a listener: Listeners() need be read
  // again only then. A memory read.
  uint64_t ListenersChanged() const;

  // What the kernel says about the probe's programs and misses.
  ProbeHealth Health() const;

  using Skeleton = std::unique_ptr<struct accept_probe, SkeletonDeleter>;
  using Link = std::unique_ptr<struct bpf_link, BpfLinkDeleter>;

 private:
  AcceptProbe(Skeleton skel, std::vector<Link> links, Link traffic_iterator, ProbeMode mode,
              uint32_t max_addresses, UniqueFd pin_lock);

  absl::Status DrainMap(int map_fd, DrainResult* result);
  absl::Status DrainOverflow(int slot, DrainResult* result);
  absl::Status AdoptParked(DrainResult* result);
  // Counts the bytes the open connections moved since the last drain.
  absl::Status ReadOpenConnections();
  absl::Status DrainTraffic(int slot, DrainResult* result);
  absl::Status DrainFailures(int slot, DrainResult* result);
  // Counts the handshakes the kernel has given up on as incomplete.
  absl::Status ExpireHalfOpen(DrainResult* result);

  Skeleton skel_;
  std::vector<Link> links_;  // the counting hook first
  Link traffic_iterator_;    // empty where the kernel cannot track traffic
  ProbeMode mode_;
  uint32_t max_addresses_;
  // Tracepoint mode after an accept-hook exporter pinned in the same place:
  // what it parked is counted once, at the first drain.
  bool adopt_parked_;
  UniqueFd pin_lock_;  // holds the pin directory's lock; invalid without pinning
  // Reused buffers for batch reads of one map.
  std::vector<uint8_t> keys_;
  std::vector<uint64_t> values_;
};

// The default for --bpf.pin-path: a directory under /sys/fs/bpf if bpffs is
// mounted there, else empty (no pinning).
std::string DefaultPinPath();

// Checks what loading needs before trying: privileges and kernel BTF. The
// error says what to do.
absl::Status CheckProbePrerequisites();

}  // namespace geoip

#endif  // EXPORTER_PROBE_ACCEPT_PROBE_H_
