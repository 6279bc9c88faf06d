#include "bench/ab_support.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include <bpf/bpf.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "exporter/util/proc_status.h"
#include "exporter/util/status_macros.h"
#include "tests/support/http_get.h"

namespace geoip {
namespace {

constexpr char kBpfStatsPath[] = "/proc/sys/kernel/bpf_stats_enabled";

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

void WriteBpfStats(const std::string& value) { std::ofstream(kBpfStatsPath) << value << "\n"; }

}  // namespace

double Median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

absl::StatusOr<ExporterProcess> StartBenchExporter(const BenchExporter& exporter,
                                                   const std::string& probe) {
  // No pinning: the probe must detach when the exporter stops, or the
  // next "no probe" round would still run it.
  std::vector<std::string> argv = {
      exporter.path, "--bpf.pin-path=", absl::StrCat("--bpf.probe=", probe),
      absl::StrCat("--bpf.drain-interval=", absl::FormatDuration(exporter.drain_interval))};
  if (!exporter.database.empty()) argv.push_back("--geoip.database=" + exporter.database);
  for (const std::string& extra : exporter.extra_flags) argv.push_back(extra);
  absl::StatusOr<ExporterProcess> started = ExporterProcess::Start(argv);
  if (!started.ok()) {
    // One line for the report: the last says why (the earlier ones report
    // progress).
    std::vector<absl::string_view> lines =
        absl::StrSplit(started.status().message(), '\n', absl::SkipWhitespace());
    return absl::Status(started.status().code(), lines.empty() ? "" : lines.back());
  }
  absl::StatusOr<HttpReply> healthy =
      HttpGet("127.0.0.1", started->port(), "/-/healthy", absl::Seconds(5));
  if (!healthy.ok() || healthy->status != 200) {
    return absl::UnavailableError("exporter started but /-/healthy did not answer 200");
  }
  return started;
}

absl::Status StopProcess(ChildProcess& process, int signo) {
  RETURN_IF_ERROR(process.Signal(signo));
  absl::StatusOr<int> code = process.Wait(absl::Seconds(15));
  if (!code.ok()) {
    process.Kill();
    return absl::DeadlineExceededError("did not exit within 15s of the signal");
  }
  return absl::OkStatus();
}

absl::StatusOr<CpuTime> ReadCpuTime(pid_t pid) {
  CpuTime cpu;
  absl::StatusOr<ProcStat> stat = ProcStat::Read(pid);
  if (!stat.ok()) return stat.status();
  const double utime = stat->Field(14), stime = stat->Field(15);
  cpu.stat_seconds = (utime + stime) / sysconf(_SC_CLK_TCK);
  // Threads that already ended are only in stat's totals; the exporter's
  // threads live as long as it does.
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(tasks.c_str()), closedir);
  if (dir == nullptr) return absl::ErrnoToStatus(errno, tasks);
  while (struct dirent* entry = readdir(dir.get())) {
    if (entry->d_name[0] == '.') continue;
    const std::string schedstat = ReadFile(absl::StrCat(tasks, "/", entry->d_name, "/schedstat"));
    double ns = 0;
    if (absl::SimpleAtod(schedstat.substr(0, schedstat.find(' ')), &ns)) {
      cpu.schedstat_seconds += ns / 1e9;
    }
  }
  return cpu;
}

std::map<uint32_t, ProgramStats> ReadProgramStats() {
  std::map<uint32_t, ProgramStats> programs;
  uint32_t id = 0;
  // Bounded: ids only increase, and there are far fewer programs than this.
  for (int n = 0; n < 100000 && bpf_prog_get_next_id(id, &id) == 0; ++n) {
    const int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;  // unloaded meanwhile
    bpf_prog_info info = {};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) {
      programs[id] = {info.name, info.type, info.run_cnt, info.run_time_ns, info.recursion_misses};
    }
    close(fd);
  }
  return programs;
}

bool IsTracing(const ProgramStats& program) {
  return program.type == BPF_PROG_TYPE_RAW_TRACEPOINT || program.type == BPF_PROG_TYPE_TRACEPOINT ||
         program.type == BPF_PROG_TYPE_KPROBE || program.type == BPF_PROG_TYPE_TRACING;
}

BpfStatsEnabled::BpfStatsEnabled() : previous_(ReadFile(kBpfStatsPath)) { WriteBpfStats("1"); }

BpfStatsEnabled::~BpfStatsEnabled() {
  WriteBpfStats(previous_.empty() ? "0" : previous_.substr(0, 1));
}

}  // namespace geoip
