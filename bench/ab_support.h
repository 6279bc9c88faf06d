// What the A/B benchmarks share: the exporter started and stopped around
// each round, the CPU time a process has used, and the kernel's run
// statistics of the BPF programs loaded.
#ifndef BENCH_AB_SUPPORT_H_
#define BENCH_AB_SUPPORT_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/exporter_process.h"
#include "tests/support/process.h"

namespace geoip {

// The median of values; NaN if there are none.
double Median(std::vector<double> values);

// How a benchmark starts the exporter for a round.
struct BenchExporter {
  std::string path;      // the exporter binary
  std::string database;  // --geoip.database, if not empty
  std::vector<std::string> extra_flags;
  absl::Duration drain_interval = absl::Seconds(1);
};

// The exporter in probe mode `probe`, without pinning (so that stopping it
// detaches the probe), answering /-/healthy. An error says in one line why,
// for the report's "skip" lines.
absl::StatusOr<ExporterProcess> StartBenchExporter(const BenchExporter& exporter,
                                                   const std::string& probe);

// Sends signo and waits up to 15 s for the process to end; kills it if not.
absl::Status StopProcess(ChildProcess& process, int signo);

// CPU a process has used, two ways: utime+stime from /proc/PID/stat (clock
// ticks, what `ps` and process_cpu_seconds_total show), and the scheduler's
// nanosecond run time summed over its threads (/proc/PID/task/*/schedstat).
struct CpuTime {
  double stat_seconds = 0;
  double schedstat_seconds = 0;
};

absl::StatusOr<CpuTime> ReadCpuTime(pid_t pid);

// Run count and total run time of one loaded BPF program. They only advance
// while kernel.bpf_stats_enabled is 1.
struct ProgramStats {
  std::string name;
  uint32_t type = 0;  // enum bpf_prog_type
  uint64_t run_count = 0;
  uint64_t run_time_ns = 0;
  // Runs the kernel skipped because the program was already running on
  // that CPU (a tracepoint hit again from an interrupt): events it missed.
  uint64_t recursion_misses = 0;
};

// Every loaded BPF program, by id.
std::map<uint32_t, ProgramStats> ReadProgramStats();

// True for the program types that run on kernel events (tracepoints,
// kprobes, fentry/fexit, tp_btf).
bool IsTracing(const ProgramStats& program);

// Sets kernel.bpf_stats_enabled for as long as it lives, then restores it.
class BpfStatsEnabled {
 public:
  BpfStatsEnabled();
  ~BpfStatsEnabled();
  BpfStatsEnabled(const BpfStatsEnabled&) = delete;
  BpfStatsEnabled& operator=(const BpfStatsEnabled&) = delete;

 private:
  const std::string previous_;
};

}  // namespace geoip

#endif  // BENCH_AB_SUPPORT_H_
