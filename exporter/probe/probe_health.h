// What the kernel says about the probe: misses and the cost of its
// programs. A plain struct, so the metrics layer can export it without
// depending on libbpf.
#ifndef EXPORTER_PROBE_PROBE_HEALTH_H_
#define EXPORTER_PROBE_PROBE_HEALTH_H_

#include <cstdint>
#include <string>
#include <vector>

namespace geoip {

struct ProbeHealth {
  // Times the kernel skipped a program because it was already running on
  // that CPU (bpf_prog_info.recursion_misses), summed over the programs.
  uint64_t recursion_misses = 0;
  // Connections the accept hook did not see return from accept(); each was
  // counted when it left ESTABLISHED instead. Always 0 in tracepoint mode.
  uint64_t accept_misses = 0;
  // Connections counted at the handshake because the table of connections
  // waiting for accept() was full.
  uint64_t pending_full = 0;
  // Accepted connections that found the table of open connections full:
  // counted, but their bytes and lifetime are not.
  uint64_t untracked_connections = 0;
  // Byte counts given up after losing the race to report them (never seen).
  uint64_t traffic_races = 0;
  // Accepted connections whose close the probe did not see: their last
  // bytes and lifetime are not counted.
  uint64_t missed_closes = 0;
  // The optional parts of the probe that this kernel runs.
  bool open_connection_bytes = false;  // bytes of open connections, each drain
  bool refused_connections = false;    // SYNs to ports where nothing listens
  // Per loaded program: runs and nanoseconds spent, which the kernel
  // counts only while sysctl kernel.bpf_stats_enabled=1.
  struct Program {
    std::string name;
    uint64_t runs = 0;
    uint64_t run_time_ns = 0;
  };
  std::vector<Program> programs;
};

}  // namespace geoip

#endif  // EXPORTER_PROBE_PROBE_HEALTH_H_
