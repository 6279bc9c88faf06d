// bench_bulk_transfer: what the exporter costs a bulk transfer, an open
// socket and a failed handshake.
//
// A/B rounds, interleaved like bench_accept_storm's: N loopback connections
// stream data both ways for a fixed time through the real kernel path (both
// ends in this process), with no probe and with the exporter (the first
// probe mode that attaches), which is started before its round and stopped
// after it. The probe has no per-packet hook: its programs run on TCP state
// changes, at a connection's close and on dropped packets, so a transfer
// should run as fast with it as without. After each exporter round the
// exporter's byte counters for the port are checked against the bytes moved.
//
// Then, each on request, under one more exporter with
// kernel.bpf_stats_enabled=1:
//   --bpf-stats       a transfer round: each of its BPF programs' runs and
//                     run time, against the bytes moved;
//   --open-sockets=K  K idle accepted connections held open: the exporter's
//                     CPU per drain per 1000 open sockets, the BPF cost per
//                     connection at open and at close, and the run time of
//                     the iterator over open connections (live_traffic)
//                     where the kernel allows it;
//   --failures=N      N SYNs to a port where nothing listens (refused) and N
//                     handshakes whose last ACK a firewall rule in a private
//                     network namespace drops, so that the server sends its
//                     SYN-ACK again: the BPF cost of each.
//
// Results go to stdout: "round ..." and "program ..." lines, and "figure
// NAME VALUE" lines that scripts/bench turns into docs/PERFORMANCE.md.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/ab_support.h"
#include "bench/figures.h"
#include "exporter/util/status_macros.h"
#include "exporter/util/unique_fd.h"
#include "tests/support/exporter_process.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tools/load/endpoint.h"
#include "tools/load/knock.h"
#include "tools/load/socket.h"

namespace geoip {
namespace {

constexpr char kUsage[] = R"(Usage: bench_bulk_transfer [FLAGS]

Interleaved A/B rounds of bulk transfer over loopback: connections stream
data both ways for a fixed time, with no probe and with the exporter (the
first probe mode that attaches). Then, on request, the exporter's cost per
open socket and per failed handshake. Needs root.

  --exporter=PATH        exporter binary; omit to run the no-probe rounds only
  --geoip.database=PATH  passed to the exporter
  --probes=LIST          probe modes to try in order (default
                         fexit,kretprobe,tracepoint); the first that attaches
                         is measured, the others are reported as skipped
  --exporter-flag=FLAG   extra exporter flag, repeatable
  --drain-interval=DUR   the exporter's --bpf.drain-interval (default 1s)
  --pairs=N              rounds per configuration, interleaved (default 7)
  --seconds=S            streaming time of a round (default 3)
  --connections=N        connections streaming at once (default 4)
  --port=N               listener port on 127.0.0.1 (default: a random one
                         in 10000-19999; the probe counts every network
                         namespace, so a port someone else uses would spoil
                         the byte check)
  --bpf-stats            one more exporter round with
                         kernel.bpf_stats_enabled=1: runs and run time of
                         each of its BPF programs during the transfer
  --open-sockets=K       K idle accepted connections held open under the
                         exporter for 10 drains, against 10 drains with none:
                         its CPU per drain per 1000 open sockets, the BPF
                         cost per connection at open and at close, and the
                         iterator's run time per socket per drain
  --failures=N           N refused SYNs and N handshakes whose last ACK is
                         dropped (in a private network namespace, with
                         iptables): the BPF cost per refused SYN and per
                         SYN-ACK sent again (at most 4000)
  --timeout=DUR          bound on the whole run (default 10m)
)";

const IpAddress kLoopback = IpAddress::V4(0x7f000001);  // 127.0.0.1
// Bytes per send() and recv().
constexpr size_t kChunk = 64 * 1024;
// Drains per CPU measurement of --open-sockets.
constexpr int kDrainsPerWindow = 10;
// Names the kernel gives the probe's programs (at most 15 characters).
constexpr char kIteratorProgram[] = "live_traffic";
constexpr char kDropProgram[] = "dropped_skb";
constexpr char kSynAckProgram[] = "synack_again";
// What the exporter logs when the kernel refuses the iterator.
constexpr char kIteratorRefused[] = "open connections: this kernel refused the iterator";

struct Flags {
  BenchExporter exporter;  // exporter.path empty: no exporter rounds
  std::vector<std::string> probes = {"fexit", "kretprobe", "tracepoint"};
  int pairs = 7;
  absl::Duration seconds = absl::Seconds(3);
  int connections = 4;
  uint16_t port = 0;  // 0: random
  bool bpf_stats = false;
  int open_sockets = 0;
  int failures = 0;
  absl::Duration timeout = absl::Minutes(10);
};

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(arg, absl::MaxSplits('=', 1));
    const absl::string_view name = kv.first, value = kv.second;
    int number = 0;
    double seconds = 0;
    if (name == "--exporter") {
      flags.exporter.path = std::string(value);
    } else if (name == "--geoip.database") {
      flags.exporter.database = std::string(value);
    } else if (name == "--probes") {
      flags.probes = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (name == "--exporter-flag") {
      flags.exporter.extra_flags.emplace_back(value);
    } else if (name == "--drain-interval") {
      if (!absl::ParseDuration(value, &flags.exporter.drain_interval) ||
          flags.exporter.drain_interval <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat("bad --drain-interval '", value, "'"));
      }
    } else if (name == "--pairs") {
      if (!absl::SimpleAtoi(value, &flags.pairs) || flags.pairs < 1 || flags.pairs > 100) {
        return absl::InvalidArgumentError("--pairs must be 1-100");
      }
    } else if (name == "--seconds") {
      if (!absl::SimpleAtod(value, &seconds) || !(seconds >= 0.1 && seconds <= 600)) {
        return absl::InvalidArgumentError("--seconds must be 0.1-600");
      }
      flags.seconds = absl::Seconds(seconds);
    } else if (name == "--connections") {
      if (!absl::SimpleAtoi(value, &flags.connections) || flags.connections < 1 ||
          flags.connections > 64) {
        return absl::InvalidArgumentError("--connections must be 1-64");
      }
    } else if (name == "--port") {
      if (!absl::SimpleAtoi(value, &number) || number < 1 || number > 65533) {
        return absl::InvalidArgumentError("--port must be 1-65533");
      }
      flags.port = static_cast<uint16_t>(number);
    } else if (arg == "--bpf-stats") {
      flags.bpf_stats = true;
    } else if (name == "--open-sockets") {
      // Each is two fds here, and a client port of the ephemeral range.
      if (!absl::SimpleAtoi(value, &flags.open_sockets) || flags.open_sockets < 0 ||
          flags.open_sockets > 25000) {
        return absl::InvalidArgumentError("--open-sockets must be 0-25000");
      }
    } else if (name == "--failures") {
      // Below the listener's backlog (SOMAXCONN, 4096), so that the kernel
      // keeps every handshake instead of answering with SYN cookies.
      if (!absl::SimpleAtoi(value, &flags.failures) || flags.failures < 0 ||
          flags.failures > 4000) {
        return absl::InvalidArgumentError("--failures must be 0-4000");
      }
    } else if (name == "--timeout") {
      if (!absl::ParseDuration(value, &flags.timeout) || flags.timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat("bad --timeout '", value, "'"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", arg, "'"));
    }
  }
  if (flags.exporter.path.empty() && (flags.bpf_stats || flags.open_sockets || flags.failures)) {
    return absl::InvalidArgumentError("--bpf-stats, --open-sockets and --failures need --exporter");
  }
  if (flags.port == 0) {
    flags.port =
        static_cast<uint16_t>(10000 + (getpid() ^ absl::ToUnixMicros(absl::Now())) % 10000);
  }
  // What this benchmark measures: the bytes are counted only with it.
  flags.exporter.extra_flags.emplace_back("--bpf.traffic");
  return flags;
}

double ProcessCpuSeconds() {
  timespec now = {};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return now.tv_sec + now.tv_nsec / 1e9;
}

absl::Status SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK)");
  }
  return absl::OkStatus();
}

// Waits for events on fd, at most until `until`.
absl::Status Await(int fd, short events, absl::Time until) {
  const absl::Duration left = until - absl::Now();
  if (left <= absl::ZeroDuration()) return absl::OkStatus();
  pollfd entry = {fd, events, 0};
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
  if (poll(&entry, 1, timeout_ms) < 0 && errno != EINTR) {
    return absl::ErrnoToStatus(errno, "poll()");
  }
  return absl::OkStatus();
}

// What one end of a connection moved, as its application sees it.
struct Moved {
  uint64_t sent = 0;
  uint64_t received = 0;          // in all
  uint64_t received_in_time = 0;  // before the end of the timed span
};

// One end of a streaming connection: sends filler as fast as the peer takes
// it and reads and drops what comes, until `end`. Then sends its FIN and
// reads until the peer's, so that both ends' counts, and the kernel's, are
// final. Bounded by deadline.
absl::Status Stream(int fd, absl::Time end, absl::Time deadline, Moved* moved) {
  static const std::string* const filler = new std::string(kChunk, '.');
  std::vector<char> buffer(kChunk);
  RETURN_IF_ERROR(SetNonBlocking(fd));
  while (absl::Now() < end) {
    bool progressed = false;
    ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n > 0) {
      moved->received += n;
      moved->received_in_time += n;
      progressed = true;
    } else if (n == 0) {
      return absl::DataLossError("the peer closed before the end");
    } else if (errno != EAGAIN && errno != EINTR) {
      return absl::ErrnoToStatus(errno, "recv()");
    }
    n = send(fd, filler->data(), filler->size(), MSG_NOSIGNAL);
    if (n > 0) {
      moved->sent += n;
      progressed = true;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::ErrnoToStatus(errno, "send()");
    }
    if (!progressed) RETURN_IF_ERROR(Await(fd, POLLIN | POLLOUT, end));
  }
  if (shutdown(fd, SHUT_WR) != 0) return absl::ErrnoToStatus(errno, "shutdown()");
  while (true) {
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n == 0) return absl::OkStatus();
    if (n > 0) {
      moved->received += n;
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) return absl::ErrnoToStatus(errno, "recv()");
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("no FIN from the peer");
    RETURN_IF_ERROR(Await(fd, POLLIN, deadline));
  }
}

// What one round of transfers did.
struct TransferResult {
  double seconds = 0;      // the timed span
  double cpu_seconds = 0;  // of this process (both ends) over the span
  uint64_t bytes_in_time = 0;
  // What the accepted (server) ends received and sent in all: what the
  // exporter's byte counters should show for the port.
  uint64_t server_bytes = 0;
  double BytesPerSecond() const { return seconds > 0 ? bytes_in_time / seconds : 0; }
  double BytesPerCpuSecond() const { return cpu_seconds > 0 ? bytes_in_time / cpu_seconds : 0; }
};

// Opens flags.connections connections to a listener on flags.port and
// streams on all of them, both ways, for flags.seconds.
absl::Status RunTransfers(const Flags& flags, TransferResult* result) {
  const absl::Time deadline = absl::Now() + flags.seconds + absl::Seconds(60);
  const Endpoint destination{kLoopback, flags.port};
  ASSIGN_OR_RETURN(const UniqueFd listener, Listen(destination));
  std::vector<UniqueFd> ends;  // client, server, client, server, ...
  for (int i = 0; i < flags.connections; ++i) {
    ASSIGN_OR_RETURN(UniqueFd client, Connect(destination, std::nullopt, deadline));
    // The handshake is complete: accept() returns at once.
    UniqueFd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!server.valid()) return absl::ErrnoToStatus(errno, "accept4()");
    ends.push_back(std::move(client));
    ends.push_back(std::move(server));
  }
  std::vector<Moved> moved(ends.size());
  std::vector<absl::Status> statuses(ends.size());
  const double cpu_start = ProcessCpuSeconds();
  const absl::Time start = absl::Now();
  const absl::Time end = start + flags.seconds;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ends.size(); ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = Stream(ends[i].get(), end, deadline, &moved[i]);
      // Wakes the peer, which would otherwise wait for the deadline.
      if (!statuses[i].ok()) shutdown(ends[i].get(), SHUT_RDWR);
    });
  }
  absl::SleepFor(end - absl::Now());
  result->cpu_seconds = ProcessCpuSeconds() - cpu_start;
  result->seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (std::thread& thread : threads) thread.join();
  for (size_t i = 0; i < ends.size(); ++i) {
    RETURN_IF_ERROR(statuses[i]);
    result->bytes_in_time += moved[i].received_in_time;
    if (i % 2 == 1) result->server_bytes += moved[i].received + moved[i].sent;
  }
  return absl::OkStatus();
}

// What an exporter's BPF programs ran over a stretch of time.
struct ProgramCost {
  uint64_t runs = 0;
  uint64_t ns = 0;
  uint64_t recursion_misses = 0;
  double NsPerRun() const { return runs ? static_cast<double>(ns) / runs : 0; }
};
using ProgramCosts = std::map<std::string, ProgramCost>;  // by program name

// The programs loaded since `before` was read (the exporter's own), as they
// are now.
std::map<uint32_t, ProgramStats> ProgramsSince(const std::map<uint32_t, ProgramStats>& before) {
  std::map<uint32_t, ProgramStats> own;
  for (const auto& [id, stats] : ReadProgramStats()) {
    if (!before.count(id)) own[id] = stats;
  }
  return own;
}

// What the programs of `start` ran since it was read.
ProgramCosts CostsSince(const std::map<uint32_t, ProgramStats>& start) {
  ProgramCosts costs;
  const std::map<uint32_t, ProgramStats> now = ReadProgramStats();
  for (const auto& [id, then] : start) {
    auto found = now.find(id);
    if (found == now.end()) continue;
    ProgramCost& cost = costs[then.name];
    cost.runs += found->second.run_count - then.run_count;
    cost.ns += found->second.run_time_ns - then.run_time_ns;
    cost.recursion_misses += found->second.recursion_misses - then.recursion_misses;
  }
  return costs;
}

ProgramCost Total(const ProgramCosts& costs) {
  ProgramCost total;
  for (const auto& [name, cost] : costs) {
    total.runs += cost.runs;
    total.ns += cost.ns;
    total.recursion_misses += cost.recursion_misses;
  }
  return total;
}

ProgramCost CostOf(const ProgramCosts& costs, const std::string& name) {
  auto found = costs.find(name);
  return found == costs.end() ? ProgramCost() : found->second;
}

// One "program" line per program of a phase, with its runs per `unit`.
void PrintCosts(absl::string_view phase, const ProgramCosts& costs, double units,
                absl::string_view unit) {
  for (const auto& [name, cost] : costs) {
    std::printf(
        "program phase=%s name=%s runs=%llu ns=%llu ns_per_run=%.1f runs_per_%s=%.3f "
        "recursion_misses=%llu\n",
        std::string(phase).c_str(), name.c_str(), static_cast<unsigned long long>(cost.runs),
        static_cast<unsigned long long>(cost.ns), cost.NsPerRun(), std::string(unit).c_str(),
        units > 0 ? cost.runs / units : 0.0,
        static_cast<unsigned long long>(cost.recursion_misses));
  }
  std::fflush(stdout);
}

// Scrapes until the exporter's byte counters for the port reach `bytes`
// or three drain intervals pass after the first drain.
absl::StatusOr<double> AwaitBytes(ExporterProcess& exporter, const Flags& flags, double bytes) {
  const absl::Duration interval = flags.exporter.drain_interval;
  absl::SleepFor(interval + absl::Milliseconds(300));
  const absl::Time deadline = absl::Now() + 3 * interval;
  const MetricLabels port = {{"port", absl::StrCat(flags.port)}};
  while (true) {
    ASSIGN_OR_RETURN(MetricsText metrics, exporter.Scrape());
    const double counted = metrics.Sum("ebpf_geoip_received_bytes_total", port) +
                           metrics.Sum("ebpf_geoip_sent_bytes_total", port);
    if (counted >= bytes || absl::Now() > deadline) return counted;
    absl::SleepFor(interval / 4);
  }
}

// One configuration of the A/B comparison: no probe (probe empty), or the
// exporter in one probe mode.
struct Config {
  std::string probe;
  std::string Name() const { return probe.empty() ? "none" : "exporter-" + probe; }
};

// Everything the rounds of one configuration measured.
struct ConfigResults {
  std::vector<double> rates;      // bytes/s, one per pair
  std::vector<double> cpu_rates;  // bytes per CPU-second of this process
  double moved = 0;               // bytes the exporter should have counted
  double counted = 0;             // and those it did
  double cpu_seconds = 0;         // of this process, over the timed spans
};

// One round under `config`: start the exporter, transfer, check its byte
// count, stop it. With `costs`, also what its BPF programs ran during the
// transfer.
absl::Status RunRound(const Flags& flags, const Config& config, int pair, ConfigResults* results,
                      ProgramCosts* costs = nullptr) {
  const std::map<uint32_t, ProgramStats> before = ReadProgramStats();
  std::optional<ExporterProcess> exporter;
  if (!config.probe.empty()) {
    ASSIGN_OR_RETURN(exporter, StartBenchExporter(flags.exporter, config.probe));
  }
  // Let start-up work (loading, the first drain) settle, in every
  // configuration alike.
  absl::SleepFor(absl::Milliseconds(300));
  CpuTime exporter_before;
  if (exporter) {
    ASSIGN_OR_RETURN(exporter_before, ReadCpuTime(exporter->process().pid()));
  }
  const std::map<uint32_t, ProgramStats> own = ProgramsSince(before);

  TransferResult transfer;
  RETURN_IF_ERROR(RunTransfers(flags, &transfer));
  if (costs) *costs = CostsSince(own);
  results->rates.push_back(transfer.BytesPerSecond());
  results->cpu_rates.push_back(transfer.BytesPerCpuSecond());
  results->cpu_seconds += transfer.cpu_seconds;
  std::string line = absl::StrFormat(
      "round pair=%d config=%s seconds=%.2f bytes=%d bytes_per_second=%.0f "
      "bytes_per_cpu_second=%.0f cpu_s=%.3f",
      pair, config.Name(), transfer.seconds, transfer.bytes_in_time, transfer.BytesPerSecond(),
      transfer.BytesPerCpuSecond(), transfer.cpu_seconds);
  if (exporter) {
    ASSIGN_OR_RETURN(const CpuTime exporter_after, ReadCpuTime(exporter->process().pid()));
    ASSIGN_OR_RETURN(const double counted,
                     AwaitBytes(*exporter, flags, static_cast<double>(transfer.server_bytes)));
    results->moved += transfer.server_bytes;
    results->counted += counted;
    absl::StrAppendFormat(&line, " server_bytes=%d counted=%.0f uncounted=%.0f exporter_cpu_s=%.4f",
                          transfer.server_bytes, counted, transfer.server_bytes - counted,
                          exporter_after.schedstat_seconds - exporter_before.schedstat_seconds);
    RETURN_IF_ERROR(StopProcess(exporter->process(), SIGTERM));
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

// The one-line reason the exporter gave for running without the iterator
// over open connections, if it did.
std::optional<std::string> IteratorRefusal(ExporterProcess& exporter) {
  for (absl::string_view line : absl::StrSplit(exporter.process().Stderr(), '\n')) {
    if (absl::StrContains(line, kIteratorRefused)) return std::string(line);
  }
  return std::nullopt;
}

// File descriptors kept free for everything else the process opens.
constexpr rlim_t kSpareFds = 256;

// Raises RLIMIT_NOFILE towards `fds` more descriptors than kSpareFds: to the
// hard limit, and past it where the process may (CAP_SYS_RESOURCE). Returns
// how many it has room for.
absl::StatusOr<rlim_t> RoomForFds(rlim_t fds) {
  rlimit limit = {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::ErrnoToStatus(errno, "getrlimit()");
  const rlim_t wanted = fds + kSpareFds;
  if (limit.rlim_cur < wanted) {
    rlimit raised = {wanted, std::max(limit.rlim_max, wanted)};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return fds;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::ErrnoToStatus(errno, "setrlimit()");
  }
  return limit.rlim_cur > kSpareFds ? std::min(fds, limit.rlim_cur - kSpareFds) : 0;
}

// The exporter's CPU over kDrainsPerWindow drain intervals.
absl::StatusOr<CpuTime> CpuOverWindow(ExporterProcess& exporter, const Flags& flags) {
  ASSIGN_OR_RETURN(const CpuTime before, ReadCpuTime(exporter.process().pid()));
  absl::SleepFor(kDrainsPerWindow * flags.exporter.drain_interval);
  ASSIGN_OR_RETURN(const CpuTime after, ReadCpuTime(exporter.process().pid()));
  return CpuTime{after.stat_seconds - before.stat_seconds,
                 after.schedstat_seconds - before.schedstat_seconds};
}

// --open-sockets: the exporter idle, then with K accepted connections open.
absl::Status RunOpenSockets(const Flags& flags, ExporterProcess& exporter,
                            const std::map<uint32_t, ProgramStats>& before) {
  // Both ends of each connection are here: two descriptors each.
  ASSIGN_OR_RETURN(const rlim_t room, RoomForFds(2 * static_cast<rlim_t>(flags.open_sockets)));
  const int k = static_cast<int>(room / 2);
  if (k < flags.open_sockets) {
    std::printf(
        "open note: %d open sockets instead of %d: RLIMIT_NOFILE's hard limit leaves "
        "room for no more (two descriptors per connection here)\n",
        k, flags.open_sockets);
  }
  if (k < 1000) return absl::ResourceExhaustedError("RLIMIT_NOFILE leaves room for too few");
  const std::optional<std::string> refusal = IteratorRefusal(exporter);
  bool iterator = false;
  for (const auto& [id, stats] : ProgramsSince(before)) iterator |= stats.name == kIteratorProgram;
  if (refusal) {
    std::printf("iterator refused: %s\n", refusal->c_str());
    std::printf(
        "iterator note: this kernel runs no iterator over open connections; its cost per open "
        "socket must be measured on a kernel that allows it\n");
  }
  PrintFigure("open_iterator", iterator ? 1 : 0);
  PrintFigure("open_sockets", k);
  PrintFigure("open_sockets_asked", flags.open_sockets);
  PrintFigure("open_drains", kDrainsPerWindow);

  absl::SleepFor(flags.exporter.drain_interval);
  ASSIGN_OR_RETURN(const CpuTime idle, CpuOverWindow(exporter, flags));

  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  const Endpoint destination{kLoopback, flags.port};
  ASSIGN_OR_RETURN(const UniqueFd listener, Listen(destination));
  std::vector<UniqueFd> clients, servers;
  clients.reserve(k);
  servers.reserve(k);
  std::map<uint32_t, ProgramStats> start = ProgramsSince(before);
  for (int i = 0; i < k; ++i) {
    // One accept per connect: the accept queue never fills.
    ASSIGN_OR_RETURN(UniqueFd client, Connect(destination, std::nullopt, deadline));
    UniqueFd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!server.valid()) return absl::ErrnoToStatus(errno, "accept4()");
    clients.push_back(std::move(client));
    servers.push_back(std::move(server));
  }
  const ProgramCosts opening = CostsSince(start);
  PrintCosts("open", opening, k, "connection");

  // A drain with them all before the measured ones.
  absl::SleepFor(flags.exporter.drain_interval);
  start = ProgramsSince(before);
  ASSIGN_OR_RETURN(const CpuTime held, CpuOverWindow(exporter, flags));
  const ProgramCosts holding = CostsSince(start);
  PrintCosts("held", holding, kDrainsPerWindow, "drain");

  start = ProgramsSince(before);
  clients.clear();  // FIN from the clients, then from the servers
  servers.clear();
  absl::SleepFor(absl::Milliseconds(200));  // the last ACKs
  const ProgramCosts closing = CostsSince(start);
  PrintCosts("close", closing, k, "connection");
  // Each close the exporter counts once it drains: a program run the kernel
  // skipped (a recursion miss) at a server socket's close is one it cannot.
  absl::SleepFor(flags.exporter.drain_interval + absl::Milliseconds(300));
  ASSIGN_OR_RETURN(const MetricsText metrics, exporter.Scrape());
  const double closed =
      metrics.Sum("ebpf_geoip_closed_connections_total", {{"port", absl::StrCat(flags.port)}});
  // Those without a slot in the kernel's table of open connections (it was
  // full where they looked) are counted as untracked instead.
  const double untracked =
      metrics.Value("ebpf_geoip_probe_untracked_connections_total").value_or(-1);
  std::printf("open closed=%d counted=%.0f recursion_misses=%llu untracked=%.0f\n", k, closed,
              static_cast<unsigned long long>(Total(closing).recursion_misses), untracked);
  PrintFigure("open_closes_uncounted", k - closed);
  PrintFigure("open_close_recursion_misses", Total(closing).recursion_misses);
  PrintFigure("open_untracked", untracked);

  std::printf("open idle_cpu_s=%.3f idle_cpu_sched_s=%.4f held_cpu_s=%.3f held_cpu_sched_s=%.4f\n",
              idle.stat_seconds, idle.schedstat_seconds, held.stat_seconds, held.schedstat_seconds);
  const double per_thousand = k / 1000.0;
  PrintFigure("open_exporter_ms_per_drain_idle", idle.schedstat_seconds * 1e3 / kDrainsPerWindow);
  PrintFigure("open_exporter_ms_per_drain_held", held.schedstat_seconds * 1e3 / kDrainsPerWindow);
  PrintFigure(
      "open_exporter_ms_per_drain_per_1000",
      (held.schedstat_seconds - idle.schedstat_seconds) * 1e3 / kDrainsPerWindow / per_thousand);
  PrintFigure("open_exporter_stat_ms_per_drain_per_1000",
              (held.stat_seconds - idle.stat_seconds) * 1e3 / kDrainsPerWindow / per_thousand);
  PrintFigure("open_bpf_ns_per_connection_open", Total(opening).ns / static_cast<double>(k));
  PrintFigure("open_bpf_runs_per_connection_open", Total(opening).runs / static_cast<double>(k));
  PrintFigure("open_bpf_ns_per_connection_close", Total(closing).ns / static_cast<double>(k));
  PrintFigure("open_bpf_runs_per_connection_close", Total(closing).runs / static_cast<double>(k));
  const ProgramCost walk = CostOf(holding, kIteratorProgram);
  if (iterator) {
    PrintFigure("open_iterator_runs_per_drain", walk.runs / double(kDrainsPerWindow));
    PrintFigure("open_iterator_ns_per_socket_per_drain",
                walk.ns / double(kDrainsPerWindow) / std::max(1, k));
  }
  return absl::OkStatus();
}

// Runs fn on a thread inside the network namespace `name`.
absl::Status RunInNamespace(const std::string& name, const std::function<absl::Status()>& fn) {
  absl::Status status;
  // setns() moves only the calling thread.
  std::thread thread([&] {
    const std::string path = "/var/run/netns/" + name;
    const UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      status = absl::ErrnoToStatus(errno, path);
    } else if (setns(fd.get(), CLONE_NEWNET) != 0) {
      status = absl::ErrnoToStatus(errno, "setns()");
    } else {
      status = fn();
    }
  });
  thread.join();
  return status;
}

// --failures: refused SYNs, then handshakes whose last ACK is dropped, in a
// private network namespace.
absl::Status RunFailures(const Flags& flags, const std::map<uint32_t, ProgramStats>& before) {
  const int n = flags.failures;
  const uint16_t closed_port = flags.port, half_open_port = flags.port + 1;
  ASSIGN_OR_RETURN(TestNamespace netns, TestNamespace::Create());
  // The client's ACK that completes a handshake (ACK alone among SYN, ACK,
  // FIN and RST) never reaches the listener: the server sends its SYN-ACK
  // again after a second. Its RST at the end passes.
  ASSIGN_OR_RETURN(
      const CommandResult rule,
      netns.Run({"iptables", "-A", "INPUT", "-p", "tcp", "--dport", absl::StrCat(half_open_port),
                 "--tcp-flags", "SYN,ACK,FIN,RST", "ACK", "-j", "DROP"},
                absl::Seconds(10)));
  if (rule.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("iptables: ", rule.stderr_text));
  }
  ProgramCosts refusing, half_open;
  RETURN_IF_ERROR(RunInNamespace(netns.name(), [&]() -> absl::Status {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    std::map<uint32_t, ProgramStats> start = ProgramsSince(before);
    KnockResult knocks;
    RETURN_IF_ERROR(
        RunKnocks({{std::nullopt, kLoopback, closed_port, closed_port, static_cast<uint64_t>(n)}},
                  0, deadline, &knocks));
    if (knocks.refused != static_cast<uint64_t>(n)) {
      return absl::InternalError(absl::StrCat(knocks.refused, " of ", n, " SYNs refused"));
    }
    refusing = CostsSince(start);

    const Endpoint destination{kLoopback, half_open_port};
    ASSIGN_OR_RETURN(const UniqueFd listener, Listen(destination));
    std::vector<UniqueFd> clients;
    start = ProgramsSince(before);
    for (int i = 0; i < n; ++i) {
      // connect() returns once the SYN-ACK is in; the ACK it sends is lost.
      ASSIGN_OR_RETURN(UniqueFd client, Connect(destination, std::nullopt, deadline));
      clients.push_back(std::move(client));
    }
    // The kernel sends each SYN-ACK again one second after the first.
    absl::SleepFor(absl::Milliseconds(1800));
    half_open = CostsSince(start);
    for (const UniqueFd& client : clients) ResetOnClose(client.get());
    return absl::OkStatus();
  }));
  PrintCosts("refused", refusing, n, "syn");
  PrintCosts("half-open", half_open, n, "handshake");
  const ProgramCost drop_refused = CostOf(refusing, kDropProgram);
  const ProgramCost synack = CostOf(half_open, kSynAckProgram);
  const ProgramCost drop_other = CostOf(half_open, kDropProgram);
  PrintFigure("failures", n);
  PrintFigure("refused_drop_runs_per_syn", drop_refused.runs / static_cast<double>(n));
  PrintFigure("refused_drop_ns_per_syn", drop_refused.ns / static_cast<double>(n));
  PrintFigure("refused_bpf_ns_per_syn", Total(refusing).ns / static_cast<double>(n));
  PrintFigure("synack_runs", synack.runs);
  PrintFigure("synack_ns_per_run", synack.NsPerRun());
  PrintFigure("other_drop_runs", drop_other.runs);
  PrintFigure("other_drop_ns_per_run", drop_other.NsPerRun());
  return absl::OkStatus();
}

int Fail(absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "bench_bulk_transfer: %s: %s\n", std::string(what).c_str(),
               status.ToString().c_str());
  return 1;
}

int Run(const Flags& flags) {
  for (const auto& [id, program] : ReadProgramStats()) {
    if (IsTracing(program)) {
      std::printf("foreign program id=%u name=%s type=%u\n", id, program.name.c_str(),
                  program.type);
    }
  }
  std::vector<Config> configs = {{""}};
  if (!flags.exporter.path.empty()) {
    for (const std::string& probe : flags.probes) {
      // One trial start per mode, until one attaches.
      absl::StatusOr<ExporterProcess> trial = StartBenchExporter(flags.exporter, probe);
      if (!trial.ok()) {
        std::printf("skip exporter-%s: %s\n", probe.c_str(),
                    std::string(trial.status().message()).c_str());
        continue;
      }
      StopProcess(trial->process(), SIGTERM).IgnoreError();
      configs.push_back({probe});
      break;
    }
    if (configs.size() == 1) {
      return Fail("exporter", absl::UnavailableError("no probe mode attached"));
    }
  }

  std::map<std::string, ConfigResults> results;
  for (int pair = 1; pair <= flags.pairs; ++pair) {
    // Alternate which configuration runs first in its pair.
    for (size_t k = 0; k < configs.size(); ++k) {
      const Config& config = configs[(k + pair) % configs.size()];
      if (absl::Status status = RunRound(flags, config, pair, &results[config.Name()]);
          !status.ok()) {
        return Fail(absl::StrCat("round ", pair, " ", config.Name()), status);
      }
    }
  }
  const ConfigResults& none = results["none"];
  PrintFigure("rate_none", Median(none.rates));
  PrintFigure("cpu_rate_none", Median(none.cpu_rates));
  for (const Config& config : configs) {
    if (config.probe.empty()) continue;
    const std::string name = config.Name();
    const ConfigResults& r = results[name];
    std::vector<double> ratios, cpu_ratios;
    for (size_t i = 0; i < r.rates.size(); ++i) {
      ratios.push_back(r.rates[i] / none.rates[i]);
      cpu_ratios.push_back(r.cpu_rates[i] / none.cpu_rates[i]);
    }
    PrintFigure("rate_" + name, Median(r.rates));
    PrintFigure("ratio_" + name, Median(ratios));
    PrintFigure("cpu_rate_" + name, Median(r.cpu_rates));
    PrintFigure("cpu_ratio_" + name, Median(cpu_ratios));
    PrintFigure("moved_" + name, r.moved);
    PrintFigure("uncounted_" + name, r.moved - r.counted);
  }
  PrintFigure("pairs", flags.pairs);
  PrintFigure("seconds", absl::ToDoubleSeconds(flags.seconds));
  PrintFigure("connections", flags.connections);
  PrintFigure("port", flags.port);
  if (configs.size() == 1) return 0;
  const Config& exporter_config = configs.back();

  if (!flags.bpf_stats && !flags.open_sockets && !flags.failures) return 0;
  // Separate from the A/B rounds: collecting run times costs two clock
  // reads per program run, which those must not include.
  BpfStatsEnabled enabled;
  if (flags.bpf_stats) {
    ConfigResults stats_results;
    ProgramCosts costs;
    if (absl::Status status = RunRound(flags, exporter_config, 0, &stats_results, &costs);
        !status.ok()) {
      return Fail("bpf-stats round", status);
    }
    const double gib = stats_results.moved / (1024.0 * 1024 * 1024);
    PrintCosts("bulk", costs, gib, "gib");
    const ProgramCost total = Total(costs);
    PrintFigure("bulk_gib", gib);
    PrintFigure("bulk_bpf_runs", total.runs);
    PrintFigure("bulk_bpf_ns", total.ns);
    PrintFigure("bulk_bpf_runs_per_gib", gib > 0 ? total.runs / gib : 0);
    PrintFigure("bulk_bpf_ns_per_gib", gib > 0 ? total.ns / gib : 0);
    // Against this process's CPU time over the span: the programs run
    // there (in its system calls and the softirqs they raise), and on
    // anything else on the machine that calls them, so an upper bound.
    PrintFigure("bulk_bpf_cpu_share", total.ns / (stats_results.cpu_seconds * 1e9));
  }
  if (!flags.open_sockets && !flags.failures) return 0;
  const std::map<uint32_t, ProgramStats> before = ReadProgramStats();
  absl::StatusOr<ExporterProcess> exporter =
      StartBenchExporter(flags.exporter, exporter_config.probe);
  if (!exporter.ok()) return Fail("exporter", exporter.status());
  if (flags.open_sockets) {
    if (absl::Status status = RunOpenSockets(flags, *exporter, before); !status.ok()) {
      return Fail("open sockets", status);
    }
  }
  if (flags.failures) {
    if (absl::Status status = RunFailures(flags, before); !status.ok()) {
      return Fail("failures", status);
    }
  }
  if (absl::Status stopped = StopProcess(exporter->process(), SIGTERM); !stopped.ok()) {
    return Fail("stop exporter", stopped);
  }
  return 0;
}

}  // namespace
}  // namespace geoip

int main(int argc, char** argv) {
  if (geoip::PrintUsageIfAsked(argc, argv, geoip::kUsage)) return 0;
  absl::StatusOr<geoip::Flags> flags = geoip::ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_bulk_transfer: %s\n(see --help)\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  // The hard bound: should anything hang, SIGALRM ends the run (and the
  // exporter dies with it: it is spawned with PDEATHSIG).
  alarm(static_cast<unsigned>(absl::ToInt64Seconds(flags->timeout)) + 1);
  signal(SIGPIPE, SIG_IGN);
  return geoip::Run(*flags);
}
