// The kernel probe: loads bpf/accept_probe.bpf.c through its skeleton,
// attaches the chosen hook and drains the counts it aggregates in the kernel.
#ifndef EXPORTER_PROBE_ACCEPT_PROBE_H_
#define EXPORTER_PROBE_ACCEPT_PROBE_H_

#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "exporter/geo/address.h"
#include "exporter/util/port_list.h"

struct accept_probe;
struct bpf_link;

namespace geoip {

// Where the probe hooks the accept path. kAuto tries the others in order.
enum class ProbeMode { kAuto, kFexit, kKprobe, kTracepoint };

absl::StatusOr<ProbeMode> ParseProbeMode(absl::string_view text);
absl::string_view ProbeModeName(ProbeMode mode);

struct ProbeOptions {
  ProbeMode mode = ProbeMode::kAuto;
  PortSet ports;  // all ports unless restricted
  // Distinct (address, port) pairs each drain interval can hold before
  // further connections are counted as overflow.
  uint32_t max_addresses = 65536;
  // A directory on bpffs where the maps and the attachment stay pinned, so
  // counting goes on while the exporter is stopped; empty: no pinning.
  std::string pin_path;
};

// Connections from one peer address to one local port since the last drain.
struct DrainedCount {
  IpAddress address;
  uint16_t port = 0;
  uint64_t count = 0;
};

// What one Drain() collected.
struct DrainResult {
  std::vector<DrainedCount> counts;
  // (port, connections) whose peer address did not fit in the kernel map.
  std::vector<std::pair<uint16_t, uint64_t>> overflow;
};

// Owns the loaded skeleton and its attachment; detaches on destruction.
class AcceptProbe {
 public:
  // Loads and attaches the probe. Each mode tried appends one line to
  // `attempts` saying whether it attached and, if not, why.
  static absl::StatusOr<std::unique_ptr<AcceptProbe>> Attach(
      const ProbeOptions& options, std::vector<std::string>* attempts);

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

  // Times the kernel skipped the program because it was already running on
  // that CPU (bpf_prog_info.recursion_misses); each may be a lost accept.
  uint64_t RecursionMisses() const;

 private:
  AcceptProbe(struct accept_probe* skel, struct bpf_link* link, ProbeMode mode,
              uint32_t max_addresses, int pin_lock_fd);

  absl::Status DrainMap(int map_fd, DrainResult* result);
  absl::Status DrainOverflow(int slot, DrainResult* result);

  struct accept_probe* skel_;
  struct bpf_link* link_;
  ProbeMode mode_;
  uint32_t max_addresses_;
  int pin_lock_fd_;  // holds the pin directory's lock; -1 without pinning
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
