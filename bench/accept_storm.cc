// bench_accept_storm: what the exporter costs on the accept path.
//
// Runs the accept storm (tools/load/storm.h) in interleaved rounds under each
// configuration - no probe, the exporter with each probe mode that attaches,
// and a bpftrace one-liner counting on the same tracepoint - starting and
// stopping the exporter or bpftrace around each round, so that every pair of
// rounds sees the same machine. After each exporter round it checks the
// exporter's count for the storm port against the connections its listener
// accepted (tools/load/storm.h: made = accepted + discarded), and
// reads the exporter's CPU time from /proc.
//
// With --once it instead runs one storm under one exporter (typically from
// many distinct source addresses in a private network namespace) and reports
// exactness, CPU, unique-address estimate and resident memory.
//
// Results go to stdout, one "round ..." line per round and "figure NAME
// VALUE" lines that scripts/bench turns into docs/PERFORMANCE.md.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/ab_support.h"
#include "bench/figures.h"
#include "exporter/util/proc_status.h"
#include "exporter/util/status_macros.h"
#include "tests/support/exporter_process.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"
#include "tools/load/storm.h"

namespace geoip {
namespace {

constexpr char kUsage[] = R"(Usage: bench_accept_storm [FLAGS]

Interleaved A/B accept-storm rounds: no probe, the exporter (per probe mode
that attaches), and a bpftrace counter on the same tracepoint. Needs root.

  --exporter=PATH        exporter binary; omit to skip the exporter rounds
  --geoip.database=PATH  passed to the exporter
  --probes=LIST          probe modes to try (default fexit,kretprobe,tracepoint);
                         those that cannot attach here are reported, skipped
  --bpftrace=PATH|none   bpftrace binary (default bpftrace)
  --exporter-flag=FLAG   extra exporter flag, repeatable
  --drain-interval=DUR   the exporter's --bpf.drain-interval (default 1s)
  --pairs=N              rounds per configuration, interleaved (default 7)
  --count=N              connections per round (default 100000)
  --port=N               storm listener port on 127.0.0.1 (default: a
                         random one in 20000-29999; the probe counts every
                         network namespace, so a port someone else uses
                         would spoil the exactness check)
  --close=rst|fin        how clients close (default rst)
  --one-thread           accept on the connecting thread, not a second one
  --once                 one storm under one exporter (first probe that
                         attaches), reporting exactness, CPU and memory
  --sources=CIDR[,...]   with --once: clients bind distinct addresses from
                         these IPv4 prefixes, inside a private network
                         namespace that has them on its loopback
  --bpf-stats            after the A/B rounds, one more round per probe
                         with kernel.bpf_stats_enabled=1, reporting the
                         run time of its BPF programs per connection
  --timeout=DUR          bound on the whole run (default 10m)
)";

struct Flags {
  std::string exporter;
  std::string database;
  std::vector<std::string> probes = {"fexit", "kretprobe", "tracepoint"};
  std::string bpftrace = "bpftrace";
  std::vector<std::string> exporter_flags;
  absl::Duration drain_interval = absl::Seconds(1);
  int pairs = 7;
  uint64_t count = 100000;
  uint16_t port = 0;  // 0: random
  StormClose close = StormClose::kReset;
  bool one_thread = false;
  bool once = false;
  std::string sources;
  bool bpf_stats = false;
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
    if (name == "--exporter") {
      flags.exporter = std::string(value);
    } else if (name == "--geoip.database") {
      flags.database = std::string(value);
    } else if (name == "--probes") {
      flags.probes = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (name == "--bpftrace") {
      flags.bpftrace = std::string(value);
    } else if (name == "--exporter-flag") {
      flags.exporter_flags.emplace_back(value);
    } else if (name == "--drain-interval") {
      if (!absl::ParseDuration(value, &flags.drain_interval) ||
          flags.drain_interval <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat("bad --drain-interval '", value, "'"));
      }
    } else if (name == "--pairs") {
      if (!absl::SimpleAtoi(value, &flags.pairs) || flags.pairs < 1 || flags.pairs > 100) {
        return absl::InvalidArgumentError("--pairs must be 1-100");
      }
    } else if (name == "--count") {
      if (!absl::SimpleAtoi(value, &flags.count) || flags.count < 1 || flags.count > 100'000'000) {
        return absl::InvalidArgumentError("--count must be 1-100000000");
      }
    } else if (name == "--port") {
      if (!absl::SimpleAtoi(value, &number) || number < 1 || number > 65535) {
        return absl::InvalidArgumentError("--port must be 1-65535");
      }
      flags.port = static_cast<uint16_t>(number);
    } else if (name == "--close") {
      if (value != "rst" && value != "fin") return absl::InvalidArgumentError("--close=rst|fin");
      flags.close = value == "rst" ? StormClose::kReset : StormClose::kFin;
    } else if (arg == "--one-thread") {
      flags.one_thread = true;
    } else if (arg == "--once") {
      flags.once = true;
    } else if (arg == "--bpf-stats") {
      flags.bpf_stats = true;
    } else if (name == "--sources") {
      flags.sources = std::string(value);
    } else if (name == "--timeout") {
      if (!absl::ParseDuration(value, &flags.timeout) || flags.timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat("bad --timeout '", value, "'"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", arg, "'"));
    }
  }
  if (flags.once && flags.exporter.empty()) {
    return absl::InvalidArgumentError("--once needs --exporter");
  }
  if (flags.port == 0) {
    flags.port =
        static_cast<uint16_t>(20000 + (getpid() ^ absl::ToUnixMicros(absl::Now())) % 10000);
  }
  if (!flags.sources.empty() && !flags.once) {
    return absl::InvalidArgumentError("--sources only applies to --once");
  }
  return flags;
}

// VmRSS and VmHWM (peak) of a process, in bytes.
struct Memory {
  double rss = 0;
  double peak = 0;
};

Memory ReadMemory(pid_t pid) {
  Memory memory;
  absl::StatusOr<ProcStatus> status = ProcStatus::Read(pid);
  if (!status.ok()) return memory;
  memory.rss = status->FirstNumber("VmRSS").value_or(0) * 1024.0;
  memory.peak = status->FirstNumber("VmHWM").value_or(0) * 1024.0;
  return memory;
}

// The exporter in probe mode `probe`, as the flags ask for it.
absl::StatusOr<ExporterProcess> StartExporter(const Flags& flags, const std::string& probe) {
  return StartBenchExporter(
      {flags.exporter, flags.database, flags.exporter_flags, flags.drain_interval}, probe);
}

// What the exporter reports for the storm port.
struct Scraped {
  double connections = 0;           // summed over countries, overflow included
  double unique = 0;                // summed over countries
  double overflow_connections = 0;  // connections counted under country="overflow"
  double series = 0;                // ebpf_geoip_accepted_connections_total series
};

absl::StatusOr<Scraped> Scrape(ExporterProcess& exporter, uint16_t storm_port) {
  ASSIGN_OR_RETURN(MetricsText metrics, exporter.Scrape());
  const MetricLabels port = {{"port", absl::StrCat(storm_port)}};
  Scraped scraped;
  scraped.connections = metrics.Sum("ebpf_geoip_accepted_connections_total", port);
  scraped.unique = metrics.Sum("ebpf_geoip_unique_source_addresses", port);
  scraped.overflow_connections = metrics.Sum("ebpf_geoip_overflow_connections_total");
  for (const auto& [series, value] : metrics.series()) {
    if (absl::StartsWith(series, "ebpf_geoip_accepted_connections_total{")) ++scraped.series;
  }
  return scraped;
}

// Waits for the drain after the storm, then scrapes until the count reaches
// `accepted` or three more drain intervals pass. `cpu` is read before the
// first scrape, so it counts the drain and not the benchmark's own scrapes.
absl::StatusOr<Scraped> AwaitCount(ExporterProcess& exporter, const Flags& flags, uint64_t accepted,
                                   CpuTime* cpu) {
  absl::SleepFor(flags.drain_interval + absl::Milliseconds(300));
  ASSIGN_OR_RETURN(*cpu, ReadCpuTime(exporter.process().pid()));
  const absl::Time deadline = absl::Now() + 3 * flags.drain_interval;
  while (true) {
    ASSIGN_OR_RETURN(Scraped scraped, Scrape(exporter, flags.port));
    if (scraped.connections >= accepted || absl::Now() > deadline) return scraped;
    absl::SleepFor(flags.drain_interval / 4);
  }
}

constexpr char kBpftraceProgram[] =
    "BEGIN { printf(\"ready\\n\"); }\n"
    "tracepoint:sock:inet_sock_set_state\n"
    "/args->oldstate == TCP_SYN_RECV && args->newstate == TCP_ESTABLISHED/\n"
    "{ @[ntop(args->daddr), args->sport] = count(); }";

absl::StatusOr<ChildProcess> StartBpftrace(const Flags& flags) {
  // BEGIN fires only after every probe is attached.
  ASSIGN_OR_RETURN(ChildProcess process,
                   ChildProcess::Spawn({flags.bpftrace, "-B", "line", "-e", kBpftraceProgram}));
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    if (absl::StrContains(process.Stdout(), "ready\n")) return process;
    absl::StatusOr<int> ended = process.Wait(absl::ZeroDuration());
    if (ended.ok()) {
      return absl::UnavailableError(
          absl::StrCat("bpftrace exited with ", *ended, ": ", process.Stderr()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("bpftrace did not attach within 60s");
}

// Stops bpftrace (SIGINT prints its map) and returns its count for
// 127.0.0.1 on the storm port.
absl::StatusOr<uint64_t> StopBpftrace(ChildProcess& process, uint16_t port) {
  RETURN_IF_ERROR(StopProcess(process, SIGINT));
  const std::string wanted = absl::StrCat("@[127.0.0.1, ", port, "]: ");
  for (absl::string_view line : absl::StrSplit(process.Stdout(), '\n')) {
    uint64_t count = 0;
    if (absl::ConsumePrefix(&line, wanted) && absl::SimpleAtoi(line, &count)) return count;
  }
  return uint64_t{0};
}

// One configuration of the A/B comparison.
struct Config {
  enum class Kind { kNone, kExporter, kBpftrace };
  Kind kind;
  std::string probe;  // kExporter only
  std::string Name() const {
    switch (kind) {
      case Kind::kNone:
        return "none";
      case Kind::kExporter:
        return "exporter-" + probe;
      case Kind::kBpftrace:
        return "bpftrace";
    }
    return "";
  }
};

// Everything the rounds of one configuration measured.
struct ConfigResults {
  std::vector<double> rates;      // accepts/s, one per pair
  std::vector<double> cpu_rates;  // accepts per CPU-second of the storm
  uint64_t made = 0;
  uint64_t accepted = 0;  // by the storm's listener: what the exporter must count
  uint64_t counted = 0;
  double cpu_stat = 0;
  double cpu_schedstat = 0;
  uint64_t bpf_runs = 0;    // runs of the configuration's own BPF programs
  uint64_t bpf_ns = 0;      // and their total run time (with --bpf-stats)
  uint64_t bpf_misses = 0;  // and their recursion misses
};

StormOptions MakeStormOptions(const Flags& flags) {
  StormOptions storm;
  storm.port = flags.port;
  storm.count = flags.count;
  storm.close = flags.close;
  storm.one_thread = flags.one_thread;
  storm.timeout = absl::Seconds(120);
  return storm;
}

// One round under `config`: attach, storm, check, detach.
absl::Status RunRound(const Flags& flags, const Config& config, int pair, ConfigResults* results) {
  const std::map<uint32_t, ProgramStats> programs_before = ReadProgramStats();
  std::optional<ExporterProcess> exporter;
  std::optional<ChildProcess> bpftrace;
  if (config.kind == Config::Kind::kExporter) {
    ASSIGN_OR_RETURN(exporter, StartExporter(flags, config.probe));
  } else if (config.kind == Config::Kind::kBpftrace) {
    ASSIGN_OR_RETURN(bpftrace, StartBpftrace(flags));
  }
  // Let start-up work (loading, the first drain) settle, in every
  // configuration alike.
  absl::SleepFor(absl::Milliseconds(300));
  CpuTime before;
  if (exporter) {
    ASSIGN_OR_RETURN(before, ReadCpuTime(exporter->process().pid()));
  }

  // Programs that appeared with the process are its own.
  std::map<uint32_t, ProgramStats> own_before;
  for (const auto& [id, stats] : ReadProgramStats()) {
    if (!programs_before.count(id)) own_before[id] = stats;
  }
  StormResult storm;
  RETURN_IF_ERROR(RunStorm(MakeStormOptions(flags), &storm));
  const std::map<uint32_t, ProgramStats> programs_after = ReadProgramStats();
  for (const auto& [id, stats] : own_before) {
    auto after = programs_after.find(id);
    if (after == programs_after.end()) continue;
    results->bpf_runs += after->second.run_count - stats.run_count;
    results->bpf_ns += after->second.run_time_ns - stats.run_time_ns;
    results->bpf_misses += after->second.recursion_misses - stats.recursion_misses;
  }
  results->rates.push_back(storm.AcceptsPerSecond());
  results->made += storm.made;
  results->accepted += storm.accepted;
  results->cpu_rates.push_back(storm.AcceptsPerCpuSecond());
  // Tracing programs someone else has loaded also run on every connection.
  int foreign = 0;
  for (const auto& [id, stats] : programs_before) foreign += IsTracing(stats);
  std::string line = absl::StrFormat(
      "round pair=%d config=%s made=%d accepts_per_second=%.0f accepts_per_cpu_second=%.0f "
      "foreign_tracing_programs=%d",
      pair, config.Name(), storm.made, storm.AcceptsPerSecond(), storm.AcceptsPerCpuSecond(),
      foreign);
  if (exporter) {
    CpuTime after;
    ASSIGN_OR_RETURN(const Scraped scraped, AwaitCount(*exporter, flags, storm.accepted, &after));
    results->counted += static_cast<uint64_t>(scraped.connections);
    results->cpu_stat += after.stat_seconds - before.stat_seconds;
    results->cpu_schedstat += after.schedstat_seconds - before.schedstat_seconds;
    absl::StrAppendFormat(&line,
                          " counted=%.0f lost=%.0f overflow=%.0f cpu_s=%.3f cpu_sched_s=%.4f",
                          scraped.connections, storm.accepted - scraped.connections,
                          scraped.overflow_connections, after.stat_seconds - before.stat_seconds,
                          after.schedstat_seconds - before.schedstat_seconds);
    RETURN_IF_ERROR(StopProcess(exporter->process(), SIGTERM));
  }
  if (bpftrace) {
    ASSIGN_OR_RETURN(const uint64_t counted, StopBpftrace(*bpftrace, flags.port));
    results->counted += counted;
    absl::StrAppendFormat(&line, " counted=%d", counted);
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

int RunAB(const Flags& flags) {
  // Tracing programs loaded by others run in every configuration, "no
  // probe" included; name them so the report can say so.
  for (const auto& [id, program] : ReadProgramStats()) {
    if (IsTracing(program)) {
      std::printf("foreign program id=%u name=%s type=%u recursion_misses=%llu\n", id,
                  program.name.c_str(), program.type,
                  static_cast<unsigned long long>(program.recursion_misses));
    }
  }
  std::vector<Config> configs = {{Config::Kind::kNone, ""}};
  if (!flags.exporter.empty()) {
    for (const std::string& probe : flags.probes) {
      // One trial start per mode: those that cannot attach here are skipped.
      absl::StatusOr<ExporterProcess> trial = StartExporter(flags, probe);
      if (!trial.ok()) {
        std::printf("skip exporter-%s: %s\n", probe.c_str(),
                    std::string(trial.status().message()).c_str());
        continue;
      }
      StopProcess(trial->process(), SIGTERM).IgnoreError();
      configs.push_back({Config::Kind::kExporter, probe});
    }
  }
  if (flags.bpftrace != "none") configs.push_back({Config::Kind::kBpftrace, ""});

  std::map<std::string, ConfigResults> results;
  for (int pair = 1; pair <= flags.pairs; ++pair) {
    // Rotate the order so no configuration always runs first in its pair.
    for (size_t k = 0; k < configs.size(); ++k) {
      const Config& config = configs[(k + pair) % configs.size()];
      if (absl::Status status = RunRound(flags, config, pair, &results[config.Name()]);
          !status.ok()) {
        std::fprintf(stderr, "bench_accept_storm: round %d %s: %s\n", pair, config.Name().c_str(),
                     status.ToString().c_str());
        return 1;
      }
    }
  }

  const std::vector<double>& none = results["none"].rates;
  const std::vector<double>& none_cpu = results["none"].cpu_rates;
  PrintFigure("rate_none", Median(none));
  PrintFigure("cpu_rate_none", Median(none_cpu));
  // Ratios pair by pair: wall-clock throughput (the target's definition)
  // and throughput per CPU-second of the storm (robust to neighbours).
  std::map<std::string, std::vector<double>> ratios, cpu_ratios;
  for (const Config& config : configs) {
    if (config.kind == Config::Kind::kNone) continue;
    const std::string name = config.Name();
    const ConfigResults& r = results[name];
    for (size_t i = 0; i < r.rates.size(); ++i) {
      ratios[name].push_back(r.rates[i] / none[i]);
      cpu_ratios[name].push_back(r.cpu_rates[i] / none_cpu[i]);
    }
    PrintFigure("rate_" + name, Median(r.rates));
    PrintFigure("ratio_" + name, Median(ratios[name]));
    PrintFigure("cpu_rate_" + name, Median(r.cpu_rates));
    PrintFigure("cpu_ratio_" + name, Median(cpu_ratios[name]));
    PrintFigure("made_" + name, r.made);
    PrintFigure("lost_" + name, static_cast<double>(r.accepted) - static_cast<double>(r.counted));
    PrintFigure("bpf_recursion_misses_" + name, static_cast<double>(r.bpf_misses));
    if (config.kind == Config::Kind::kExporter) {
      PrintFigure("cpu_per_100k_" + name, r.cpu_stat / r.made * 1e5);
      PrintFigure("cpu_sched_per_100k_" + name, r.cpu_schedstat / r.made * 1e5);
    }
  }
  if (ratios.count("bpftrace")) {
    for (const Config& config : configs) {
      if (config.kind != Config::Kind::kExporter) continue;
      const std::string name = config.Name();
      PrintFigure("over_bpftrace_" + name, Median(ratios[name]) / Median(ratios["bpftrace"]));
      std::vector<double> pairwise;
      for (size_t i = 0; i < ratios[name].size(); ++i) {
        pairwise.push_back(ratios[name][i] / ratios["bpftrace"][i]);
      }
      PrintFigure("over_bpftrace_pairwise_" + name, Median(pairwise));
      PrintFigure("cpu_over_bpftrace_" + name,
                  Median(cpu_ratios[name]) / Median(cpu_ratios["bpftrace"]));
    }
  }
  PrintFigure("pairs", flags.pairs);
  PrintFigure("count", flags.count);
  PrintFigure("port", flags.port);

  if (flags.bpf_stats) {
    // Separate rounds: collecting run times costs two clock reads per
    // program run, which the A/B rounds above must not include.
    BpfStatsEnabled enabled;
    for (const Config& config : configs) {
      if (config.kind == Config::Kind::kNone) continue;
      ConfigResults stats_results;
      if (absl::Status status = RunRound(flags, config, 0, &stats_results); !status.ok()) {
        std::fprintf(stderr, "bench_accept_storm: bpf-stats round %s: %s\n", config.Name().c_str(),
                     status.ToString().c_str());
        return 1;
      }
      const double made = static_cast<double>(stats_results.made);
      PrintFigure("bpf_ns_per_connection_" + config.Name(), stats_results.bpf_ns / made);
      PrintFigure("bpf_runs_per_connection_" + config.Name(), stats_results.bpf_runs / made);
      PrintFigure(
          "bpf_ns_per_run_" + config.Name(),
          stats_results.bpf_runs ? double(stats_results.bpf_ns) / stats_results.bpf_runs : 0);
    }
  }
  return 0;
}

int RunOnce(const Flags& flags) {
  auto fail = [](absl::string_view what, const absl::Status& status) {
    std::fprintf(stderr, "bench_accept_storm: %s: %s\n", std::string(what).c_str(),
                 status.ToString().c_str());
    return 1;
  };
  std::optional<SourcePool> sources;
  std::optional<TestNamespace> netns;
  if (!flags.sources.empty()) {
    absl::StatusOr<SourcePool> pool = SourcePool::Parse(flags.sources);
    if (!pool.ok()) return fail("--sources", pool.status());
    sources = *std::move(pool);
    absl::StatusOr<TestNamespace> created = TestNamespace::Create();
    if (!created.ok()) return fail("network namespace", created.status());
    netns = *std::move(created);
    for (absl::string_view prefix : absl::StrSplit(flags.sources, ',', absl::SkipEmpty())) {
      // A prefix on loopback makes every address in it local: any of them
      // can be bound.
      absl::StatusOr<CommandResult> added =
          netns->Run({"ip", "addr", "add", std::string(prefix), "dev", "lo"}, absl::Seconds(10));
      if (!added.ok() || added->exit_code != 0) {
        return fail("ip addr add",
                    added.ok() ? absl::InternalError(added->stderr_text) : added.status());
      }
    }
  }
  std::optional<ExporterProcess> running;
  std::string probe;
  for (const std::string& candidate : flags.probes) {
    absl::StatusOr<ExporterProcess> started = StartExporter(flags, candidate);
    if (started.ok()) {
      running = *std::move(started);
      probe = candidate;
      break;
    }
  }
  if (!running) return fail("exporter", absl::UnavailableError("no probe mode attached"));
  ExporterProcess& exporter = *running;
  absl::SleepFor(absl::Milliseconds(300));
  absl::StatusOr<CpuTime> before = ReadCpuTime(exporter.process().pid());
  if (!before.ok()) return fail("cpu", before.status());
  const Memory idle = ReadMemory(exporter.process().pid());

  StormOptions options = MakeStormOptions(flags);
  options.timeout = absl::Seconds(300);
  options.sources = sources ? &*sources : nullptr;
  StormResult storm;
  const absl::Status stormed =
      netns ? StormInNamespace(netns->name(), options, &storm) : RunStorm(options, &storm);
  if (!stormed.ok()) return fail("storm", stormed);
  CpuTime after;
  absl::StatusOr<Scraped> scraped = AwaitCount(exporter, flags, storm.accepted, &after);
  if (!scraped.ok()) return fail("scrape", scraped.status());
  const Memory memory = ReadMemory(exporter.process().pid());
  std::printf(
      "once probe=%s made=%llu accepts_per_second=%.0f counted=%.0f overflow=%.0f "
      "unique=%.0f series=%.0f cpu_s=%.3f cpu_sched_s=%.3f rss_idle=%.0f rss=%.0f "
      "peak=%.0f\n",
      probe.c_str(), static_cast<unsigned long long>(storm.made), storm.AcceptsPerSecond(),
      scraped->connections, scraped->overflow_connections, scraped->unique, scraped->series,
      after.stat_seconds - before->stat_seconds,
      after.schedstat_seconds - before->schedstat_seconds, idle.rss, memory.rss, memory.peak);
  PrintFigure("once_made", storm.made);
  PrintFigure("once_distinct_sources", sources ? std::min<double>(sources->Size(), storm.made) : 1);
  PrintFigure("once_rate", storm.AcceptsPerSecond());
  PrintFigure("once_lost", storm.accepted - scraped->connections);
  PrintFigure("once_overflow", scraped->overflow_connections);
  PrintFigure("once_unique", scraped->unique);
  PrintFigure("once_cpu_per_100k", (after.stat_seconds - before->stat_seconds) / storm.made * 1e5);
  PrintFigure("once_cpu_sched_per_100k",
              (after.schedstat_seconds - before->schedstat_seconds) / storm.made * 1e5);
  PrintFigure("once_rss_idle_mb", idle.rss / 1048576);
  PrintFigure("once_rss_mb", memory.rss / 1048576);
  PrintFigure("once_peak_rss_mb", memory.peak / 1048576);
  if (absl::Status stopped = StopProcess(exporter.process(), SIGTERM); !stopped.ok()) {
    return fail("stop exporter", stopped);
  }
  return 0;
}

}  // namespace
}  // namespace geoip

int main(int argc, char** argv) {
  if (geoip::PrintUsageIfAsked(argc, argv, geoip::kUsage)) return 0;
  absl::StatusOr<geoip::Flags> flags = geoip::ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_accept_storm: %s\n(see --help)\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  // The hard bound: should anything hang, SIGALRM ends the run (and the
  // exporter and bpftrace die with it: they are spawned with PDEATHSIG).
  alarm(static_cast<unsigned>(absl::ToInt64Seconds(flags->timeout)) + 1);
  signal(SIGPIPE, SIG_IGN);
  return flags->once ? geoip::RunOnce(*flags) : geoip::RunAB(*flags);
}
