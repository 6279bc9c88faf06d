#include "exporter/metrics/collector.h"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "exporter/stats/failure_counts.h"
#include "exporter/util/proc_status.h"

namespace geoip {
namespace {

// Escapes for the text format: backslash and newline, and '"' if quote.
void AppendEscaped(std::string* out, absl::string_view text, bool quote);
// A sample value: integers as such, others in the fewest digits that read
// back as the same double.
void AppendValue(std::string* out, double value);

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddSample(MetricFamily* family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  switch (family->type) {
    case MetricType::Counter:
      metric.counter.value = value;
      break;
    case MetricType::Gauge:
      metric.gauge.value = value;
      break;
    default:
      metric.untyped.value = value;
      break;
  }
  family->metric.push_back(std::move(metric));
}

MetricFamily Single(std::string name, std::string help, MetricType type, double value,
                    std::vector<ClientMetric::Label> labels = {}) {
  MetricFamily family = Family(std::move(name), std::move(help), type);
  AddSample(&family, std::move(labels), value);
  return family;
}

}  // namespace

ExporterCollector::ExporterCollector(const ConnectionStats* stats, const ServiceNames* services,
                                     BuildInfo build, std::function<ExporterHealth()> health,
                                     std::function<std::string(NetworkId)> network_name)
    : stats_(stats),
      services_(services),
      build_(std::move(build)),
      health_(std::move(health)),
      network_name_(std::move(network_name)) {}

constexpr char kConnectionsName[] = "ebpf_geoip_accepted_connections_total";
constexpr char kConnectionsHelp[] =
    "TCP connections accepted, by peer country (ISO 3166-1 alpha-2, or private, "
    "unknown, overflow), local port and the service that accepted them.";
constexpr char kUniquesName[] = "ebpf_geoip_unique_source_addresses";
constexpr char kUniquesHelp[] =
    "Distinct peer addresses seen since start, by country, local port and service; "
    "exact up to a bound per series, a HyperLogLog estimate past it.";
constexpr char kReceivedName[] = "ebpf_geoip_received_bytes_total";
constexpr char kReceivedHelp[] =
    "Payload bytes the kernel counted as received on accepted TCP connections' sockets, by peer "
    "country, local port and service; counted while connections are open and when they close.";
constexpr char kSentName[] = "ebpf_geoip_sent_bytes_total";
constexpr char kSentHelp[] =
    "Payload bytes the kernel counted as sent and acknowledged by the peer on accepted TCP "
    "connections' sockets, by peer country, local port and service; counted while connections "
    "are open and when they close.";
constexpr char kClosedName[] = "ebpf_geoip_closed_connections_total";
constexpr char kClosedHelp[] =
    "Accepted TCP connections that closed, by peer country, local port and service.";
constexpr char kLifetimeName[] = "ebpf_geoip_connection_lifetime_seconds_total";
constexpr char kLifetimeHelp[] =
    "Lifetimes of the connections in ebpf_geoip_closed_connections_total, summed, in seconds; "
    "divided by that count, the mean lifetime per country.";
constexpr char kDurationName[] = "ebpf_geoip_connection_duration_seconds";
constexpr char kDurationHelp[] =
    "Lifetimes of closed accepted TCP connections, by local port and service; no country label "
    "(per country: ebpf_geoip_connection_lifetime_seconds_total and "
    "ebpf_geoip_closed_connections_total).";
constexpr char kFailedName[] = "ebpf_geoip_failed_connections_total";
constexpr char kFailedHelp[] =
    "Inbound TCP connections that failed, by peer country, local port (\"other\" for a port "
    "not watched) and reason: refused = a SYN to a port where nothing listens, answered with a "
    "reset; incomplete = a handshake the kernel gave up on, its SYN-ACK sent again and never "
    "acknowledged.";

constexpr char kNetworksName[] = "ebpf_geoip_accepted_connections_by_asn_total";
constexpr char kNetworksHelp[] =
    "TCP connections accepted, by the peer's network: asn (\"AS3333\"; private, unknown, "
    "overflow; other for ASes past --metrics.max-asns) and as_name, over all countries, ports "
    "and services. /api/v1/networks has every AS, by country, port and service.";

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

std::vector<MetricFamily> ExporterCollector::Collect() const {
  MetricFamily connections = Family(kConnectionsName, kConnectionsHelp, MetricType::Counter);
  MetricFamily uniques = Family(kUniquesName, kUniquesHelp, MetricType::Gauge);
  MetricFamily received = Family(kReceivedName, kReceivedHelp, MetricType::Counter);
  MetricFamily sent = Family(kSentName, kSentHelp, MetricType::Counter);
  MetricFamily closed = Family(kClosedName, kClosedHelp, MetricType::Counter);
  MetricFamily lifetime = Family(kLifetimeName, kLifetimeHelp, MetricType::Counter);
  const std::vector<std::string> services = services_->All();
  for (const ConnectionStats::Series& series : stats_->Snapshot()) {
    std::vector<ClientMetric::Label> labels = {
        {"country", series.country.Label()},
        {"port", absl::StrCat(series.port)},
        {"service", series.service < services.size() ? services[series.service] : "unknown"}};
    AddSample(&connections, labels, static_cast<double>(series.connections));
    if (series.country != CountryId::Overflow()) {
      AddSample(&uniques, labels, static_cast<double>(series.unique_addresses));
    }
    AddSample(&received, labels, static_cast<double>(series.traffic.received_bytes));
    AddSample(&sent, labels, static_cast<double>(series.traffic.sent_bytes));
    AddSample(&closed, labels, static_cast<double>(series.traffic.closed_connections));
    AddSample(&lifetime, std::move(labels), Seconds(series.traffic.lifetime_ns));
  }
  std::vector<MetricFamily> families;
  families.push_back(std::move(connections));
  families.push_back(std::move(uniques));
  families.push_back(std::move(received));
  families.push_back(std::move(sent));
  families.push_back(std::move(closed));
  families.push_back(std::move(lifetime));
  families.push_back(CollectDurations(services));
  families.push_back(CollectFailures());
  for (MetricFamily& family : CollectNetworks()) families.push_back(std::move(family));
  for (MetricFamily& family : CollectHealth()) families.push_back(std::move(family));
  return families;
}

MetricFamily ExporterCollector::CollectDurations(const std::vector<std::string>& services) const {
  MetricFamily durations = Family(kDurationName, kDurationHelp, MetricType::Histogram);
  for (const ConnectionStats::Lifetimes& lifetimes : stats_->LifetimeHistograms()) {
    ClientMetric metric;
    metric.label = {
        {"port", absl::StrCat(lifetimes.port)},
        {"service", lifetimes.service < services.size() ? services[lifetimes.service] : "unknown"}};
    // The kernel's buckets are not cumulative; Prometheus' are.
    uint64_t cumulative = 0;
    for (int i = 0; i < kDurationBuckets; ++i) {
      cumulative += lifetimes.buckets[i];
      metric.histogram.bucket.push_back(
          {cumulative, i + 1 < kDurationBuckets ? kDurationBounds[i]
                                                : std::numeric_limits<double>::infinity()});
    }
    metric.histogram.sample_count = cumulative;
    metric.histogram.sample_sum = Seconds(lifetimes.sum_ns);
    durations.metric.push_back(std::move(metric));
  }
  return durations;
}

MetricFamily ExporterCollector::CollectFailures() const {
  MetricFamily failed = Family(kFailedName, kFailedHelp, MetricType::Counter);
  for (const FailureCounts::Series& series : stats_->Failures()) {
    AddSample(&failed,
              {{"country", series.country.Label()},
               {"port", FailurePortLabel(series.port)},
               {"reason", std::string(FailureReasonLabel(series.reason))}},
              static_cast<double>(series.count));
  }
  return failed;
}

std::vector<MetricFamily> ExporterCollector::CollectNetworks() const {
  MetricFamily networks = Family(kNetworksName, kNetworksHelp, MetricType::Counter);
  for (const auto& [network, count] : stats_->NetworkLabelTotals()) {
    AddSample(&networks,
              {{"asn", network.Label()},
               {"as_name", network_name_ ? network_name_(network) : std::string()}},
              static_cast<double>(count));
  }
  std::vector<MetricFamily> families;
  families.push_back(std::move(networks));
  families.push_back(
      Single("ebpf_geoip_asns_over_cap_total",
             "Distinct ASes counted as asn=\"other\" because --metrics.max-asns was reached; "
             "their connections are counted in full.",
             MetricType::Counter, static_cast<double>(stats_->UnlabelledNetworks())));
  const ConnectionStats::WordCounts words = stats_->WordTotals();
  MetricFamily posted = Family("ebpf_geoip_words_total",
                               "Words posted to the live map's word cloud (--web.words-from), by "
                               "result: counted, or refused and why.",
                               MetricType::Counter);
  AddSample(&posted, {{"result", "counted"}}, static_cast<double>(words.counted));
  for (size_t i = 0; i < kWordRefusalCount; ++i) {
    AddSample(&posted,
              {{"result", absl::StrCat("refused_", WordRefusalLabel(static_cast<WordRefusal>(i)))}},
              static_cast<double>(words.refused[i]));
  }
  families.push_back(std::move(posted));
  families.push_back(Single("ebpf_geoip_words_evicted_total",
                            "Words the word cloud dropped, least posted first, to make room for "
                            "new ones past --web.max-words.",
                            MetricType::Counter, static_cast<double>(words.evicted)));
  return families;
}

std::string ExporterCollector::CollectText() const {
  // The connection series go straight from the statistics into the text:
  // building a MetricFamily per series took most of a 16k-series scrape.
  const std::vector<ConnectionStats::Series> snapshot = stats_->Snapshot();
  std::string out;
  out.reserve(snapshot.size() * 600 + 8192);
  // Each series' labels once, for every family: country labels are two
  // capitals or a lower-case word, and service names are escaped once each.
  const std::vector<std::string> names = services_->All();
  std::vector<std::string> services;
  for (const std::string& name : names) {
    services.emplace_back();
    AppendEscaped(&services.back(), name, /*quote=*/true);
  }
  std::vector<std::string> labels;
  labels.reserve(snapshot.size());
  for (const ConnectionStats::Series& series : snapshot) {
    labels.push_back(absl::StrCat(
        "{country=\"", series.country.Label(), "\",port=\"", series.port, "\",service=\"",
        series.service < services.size() ? services[series.service] : "unknown", "\"} "));
  }
  absl::StrAppend(&out, "# HELP ", kConnectionsName, " ", kConnectionsHelp, "\n# TYPE ",
                  kConnectionsName, " counter\n");
  for (size_t i = 0; i < snapshot.size(); ++i) {
    absl::StrAppend(&out, kConnectionsName, labels[i], snapshot[i].connections, "\n");
  }
  absl::StrAppend(&out, "# HELP ", kUniquesName, " ", kUniquesHelp, "\n# TYPE ", kUniquesName,
                  " gauge\n");
  for (size_t i = 0; i < snapshot.size(); ++i) {
    if (snapshot[i].country == CountryId::Overflow()) continue;
    absl::StrAppend(&out, kUniquesName, labels[i], snapshot[i].unique_addresses, "\n");
  }
  // Byte and connection counts as integers, like the connections above.
  auto counter = [&](const char* name, const char* help, auto value) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n");
    for (size_t i = 0; i < snapshot.size(); ++i) {
      absl::StrAppend(&out, name, labels[i]);
      const auto number = value(snapshot[i].traffic);
      if constexpr (std::is_integral_v<decltype(number)>) {
        absl::StrAppend(&out, number);
      } else {
        AppendValue(&out, number);
      }
      out.push_back('\n');
    }
  };
  using Traffic = ConnectionStats::Traffic;
  counter(kReceivedName, kReceivedHelp, [](const Traffic& t) { return t.received_bytes; });
  counter(kSentName, kSentHelp, [](const Traffic& t) { return t.sent_bytes; });
  counter(kClosedName, kClosedHelp, [](const Traffic& t) { return t.closed_connections; });
  counter(kLifetimeName, kLifetimeHelp, [](const Traffic& t) { return Seconds(t.lifetime_ns); });
  // A series per (port, service) or per failure: few, through the writer.
  std::vector<MetricFamily> families;
  families.push_back(CollectDurations(names));
  families.push_back(CollectFailures());
  for (MetricFamily& family : CollectNetworks()) families.push_back(std::move(family));
  for (MetricFamily& family : CollectHealth()) families.push_back(std::move(family));
  out += SerializeText(families);
  return out;
}

std::vector<MetricFamily> ExporterCollector::CollectHealth() const {
  std::vector<MetricFamily> families;
  const ExporterHealth health = health_();
  families.push_back(Single(
      "ebpf_geoip_build_info", "Version of the exporter; the value is always 1.", MetricType::Gauge,
      1, {{"branch", build_.branch}, {"revision", build_.revision}, {"version", build_.version}}));
  families.push_back(Single("ebpf_geoip_probe_info",
                            "Which kernel hook counts connections; the value is always 1.",
                            MetricType::Gauge, 1, {{"mode", health.probe_mode}}));
  families.push_back(
      Single("ebpf_geoip_overflow_connections_total",
             "Connections whose peer address the kernel could not record (its map was "
             "full); they are counted under country=\"overflow\", so per-port totals stay exact.",
             MetricType::Counter, static_cast<double>(health.overflow_connections)));
  families.push_back(
      Single("ebpf_geoip_events_lost_total",
             "Deprecated, removed in 0.3.0: the same as ebpf_geoip_overflow_connections_total "
             "(nothing was lost; these connections are counted under country=\"overflow\").",
             MetricType::Counter, static_cast<double>(health.overflow_connections)));
  MetricFamily listeners =
      Family("ebpf_geoip_listener_info",
             "A listening socket the probe saw, and who listens on it; the value is always 1. "
             "netns is the network namespace's inode; container_id and pod_uid join to "
             "cAdvisor and kube-state-metrics (kube_pod_info by uid).",
             MetricType::Gauge);
  for (const ListenerInfo& listener : health.listeners) {
    AddSample(&listeners,
              {{"port", absl::StrCat(listener.port)},
               {"service", listener.service},
               {"process", listener.identity.process},
               {"unit", listener.identity.unit},
               {"container_id", listener.identity.container_id},
               {"pod_uid", listener.identity.pod_uid},
               {"netns", absl::StrCat(listener.netns)}},
              1);
  }
  families.push_back(std::move(listeners));
  families.push_back(
      Single("ebpf_geoip_services_over_cap_total",
             "Distinct service names counted as service=\"other\" because --metrics.max-services "
             "was reached; their connections are counted in full.",
             MetricType::Counter, static_cast<double>(health.services_over_cap)));
  families.push_back(
      Single("ebpf_geoip_probe_recursion_misses_total",
             "Times the kernel skipped the probe because it was already running on that CPU; "
             "each may be an accepted connection not counted.",
             MetricType::Counter, static_cast<double>(health.probe.recursion_misses)));
  families.push_back(
      Single("ebpf_geoip_probe_accept_misses_total",
             "Connections whose return from accept() the fexit or kretprobe hook did not see (the "
             "accept() was already blocked when the probe attached, or the kretprobe had no free "
             "instance); each was still counted, when it left ESTABLISHED. Always 0 with "
             "--bpf.probe=tracepoint.",
             MetricType::Counter, static_cast<double>(health.probe.accept_misses)));
  families.push_back(
      Single("ebpf_geoip_probe_pending_full_total",
             "Connections counted at the handshake because the kernel's table of connections "
             "waiting for accept() was full (fexit and kretprobe modes).",
             MetricType::Counter, static_cast<double>(health.probe.pending_full)));
  families.push_back(
      Single("ebpf_geoip_probe_untracked_connections_total",
             "Accepted connections that found the kernel's table of open connections full "
             "(--bpf.max-open-connections): counted, but their bytes and lifetime are not.",
             MetricType::Counter, static_cast<double>(health.probe.untracked_connections)));
  families.push_back(Single("ebpf_geoip_probe_traffic_races_total",
                            "Byte counts of a connection given up after losing the race to report "
                            "them four times in a row; not expected ever to move.",
                            MetricType::Counter, static_cast<double>(health.probe.traffic_races)));
  families.push_back(
      Single("ebpf_geoip_probe_missed_closes_total",
             "Accepted connections whose close the probe did not see (the kernel skipped the "
             "run: see ebpf_geoip_probe_recursion_misses_total): their last bytes and lifetime "
             "are not counted.",
             MetricType::Counter, static_cast<double>(health.probe.missed_closes)));
  MetricFamily parts = Family("ebpf_geoip_probe_part",
                              "1 where this kernel runs an optional part of the probe, 0 where "
                              "it refused it (the start-up log says why): open_connection_bytes "
                              "(bytes of open connections, each drain; else at the close), "
                              "refused_connections.",
                              MetricType::Gauge);
  AddSample(&parts, {{"part", "open_connection_bytes"}},
            health.probe.open_connection_bytes ? 1 : 0);
  AddSample(&parts, {{"part", "refused_connections"}}, health.probe.refused_connections ? 1 : 0);
  families.push_back(std::move(parts));
  MetricFamily runs = Family("ebpf_geoip_probe_runs_total",
                             "Runs of each probe program; counted by the kernel only while "
                             "sysctl kernel.bpf_stats_enabled=1.",
                             MetricType::Counter);
  MetricFamily run_time = Family("ebpf_geoip_probe_run_seconds_total",
                                 "Time spent in each probe program; counted by the kernel "
                                 "only while sysctl kernel.bpf_stats_enabled=1.",
                                 MetricType::Counter);
  for (const ProbeHealth::Program& program : health.probe.programs) {
    AddSample(&runs, {{"program", program.name}}, static_cast<double>(program.runs));
    AddSample(&run_time, {{"program", program.name}},
              static_cast<double>(program.run_time_ns) / 1e9);
  }
  if (!health.probe.programs.empty()) {
    families.push_back(std::move(runs));
    families.push_back(std::move(run_time));
  }
  families.push_back(Single("ebpf_geoip_drain_errors_total", "Failed reads of the kernel's counts.",
                            MetricType::Counter, static_cast<double>(health.drain_errors)));
  families.push_back(Single("ebpf_geoip_database_info",
                            "The GeoIP database in use; the value is always 1.", MetricType::Gauge,
                            1, {{"path", health.database_path}, {"type", health.database_type}}));
  if (health.database_build_epoch) {
    // Left out for a file without a date, which would read as 1969 and
    // fire EbpfGeoipDatabaseStale.
    families.push_back(Single("ebpf_geoip_database_build_timestamp_seconds",
                              "When the GeoIP database in use was built, in Unix time.",
                              MetricType::Gauge,
                              static_cast<double>(*health.database_build_epoch)));
  }
  if (!health.asn_database_path.empty()) {
    families.push_back(
        Single("ebpf_geoip_asn_database_info", "The ASN database in use; the value is always 1.",
               MetricType::Gauge, 1,
               {{"path", health.asn_database_path}, {"type", health.asn_database_type}}));
    if (health.asn_database_build_epoch) {
      families.push_back(Single("ebpf_geoip_asn_database_build_timestamp_seconds",
                                "When the ASN database in use was built, in Unix time.",
                                MetricType::Gauge,
                                static_cast<double>(*health.asn_database_build_epoch)));
    }
  }
  MetricFamily reloads = Family("ebpf_geoip_database_reloads_total",
                                "Attempts to reload the GeoIP database (SIGHUP or file "
                                "replaced), by result.",
                                MetricType::Counter);
  AddSample(&reloads, {{"result", "success"}}, static_cast<double>(health.reload_successes));
  AddSample(&reloads, {{"result", "failure"}}, static_cast<double>(health.reload_failures));
  families.push_back(std::move(reloads));
  if (health.tls) {
    MetricFamily tls_reloads = Family("ebpf_geoip_tls_certificate_reloads_total",
                                      "Changes of the TLS certificate or key files, by result: "
                                      "success (now served) or failure (the previous pair "
                                      "still served).",
                                      MetricType::Counter);
    AddSample(&tls_reloads, {{"result", "success"}}, static_cast<double>(health.tls->reloads));
    AddSample(&tls_reloads, {{"result", "failure"}},
              static_cast<double>(health.tls->reload_failures));
    families.push_back(std::move(tls_reloads));
    families.push_back(Single("ebpf_geoip_tls_certificate_expiry_timestamp_seconds",
                              "When the TLS certificate served expires, in Unix time.",
                              MetricType::Gauge, static_cast<double>(health.tls->not_after)));
  }
  families.push_back(Single("ebpf_geoip_lookup_failures_total",
                            "GeoIP lookups that failed with an error (counted as unknown).",
                            MetricType::Counter, static_cast<double>(health.lookup_failures)));
  families.push_back(Single("ebpf_geoip_lookup_cache_hits_total",
                            "Address lookups answered by the cache.", MetricType::Counter,
                            static_cast<double>(health.lookup_cache_hits)));
  families.push_back(Single("ebpf_geoip_lookup_cache_misses_total",
                            "Address lookups that went to the database.", MetricType::Counter,
                            static_cast<double>(health.lookup_cache_misses)));

  for (MetricFamily& family : CollectProcessMetrics()) families.push_back(std::move(family));
  return families;
}

std::vector<MetricFamily> CollectProcessMetrics() {
  std::vector<MetricFamily> families;
  absl::StatusOr<ProcStat> stat = ProcStat::Read();
  if (!stat.ok()) return families;
  auto field = [&stat](int number) { return stat->Field(number); };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  double boot_time = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string line; std::getline(proc_stat, line);) {
    if (line.rfind("btime ", 0) == 0) (void)absl::SimpleAtod(line.substr(6), &boot_time);
  }
  families.push_back(Single("process_cpu_seconds_total",
                            "Total user and system CPU time spent in seconds.", MetricType::Counter,
                            (field(14) + field(15)) / ticks));
  families.push_back(Single("process_resident_memory_bytes", "Resident memory size in bytes.",
                            MetricType::Gauge, field(24) * page));
  families.push_back(Single("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                            MetricType::Gauge, field(23)));
  families.push_back(Single("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.",
                            MetricType::Gauge, boot_time + field(22) / ticks));
  long open_fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++open_fds;
    closedir(dir);
    open_fds -= 3;  // ".", ".." and the directory's own descriptor
  }
  families.push_back(Single("process_open_fds", "Number of open file descriptors.",
                            MetricType::Gauge, static_cast<double>(open_fds)));
  return families;
}

namespace {

void AppendEscaped(std::string* out, absl::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

void AppendValue(std::string* out, double value) {
  if (std::isnan(value)) {
    out->append("NaN");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "+Inf" : "-Inf");
  } else if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    absl::StrAppend(out, static_cast<int64_t>(value));
  } else {
    // Shortest round trip: 0.1 s of lifetime reads "0.1", not
    // "0.10000000000000001".
    char buffer[32];
    const std::to_chars_result end = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out->append(buffer, end.ptr);
  }
}

// name{labels[,le="bound"]} for one line of a sample.
void AppendSampleName(std::string* out, absl::string_view name, absl::string_view suffix,
                      const std::vector<ClientMetric::Label>& labels, const double* le) {
  absl::StrAppend(out, name, suffix);
  if (labels.empty() && le == nullptr) return;
  out->push_back('{');
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, labels[i].name, "=\"");
    AppendEscaped(out, labels[i].value, true);
    out->push_back('"');
  }
  if (le != nullptr) {
    out->append(labels.empty() ? "le=\"" : ",le=\"");
    AppendValue(out, *le);
    out->push_back('"');
  }
  out->push_back('}');
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Histogram:
      return "histogram";
    default:
      return "untyped";
  }
}

}  // namespace

std::string SerializeText(const std::vector<MetricFamily>& families) {
  // Our own writer rather than prometheus::TextSerializer: with 16k series
  // its iostream formatting took most of a scrape (docs/PERFORMANCE.md).
  std::string out;
  size_t series = 0;
  for (const MetricFamily& family : families) series += family.metric.size();
  out.reserve(series * 64 + families.size() * 160);
  for (const MetricFamily& family : families) {
    absl::StrAppend(&out, "# HELP ", family.name, " ");
    AppendEscaped(&out, family.help, false);
    absl::StrAppend(&out, "\n# TYPE ", family.name, " ", TypeName(family.type), "\n");
    for (const ClientMetric& metric : family.metric) {
      if (family.type == MetricType::Histogram) {
        for (const ClientMetric::Bucket& bucket : metric.histogram.bucket) {
          AppendSampleName(&out, family.name, "_bucket", metric.label, &bucket.upper_bound);
          absl::StrAppend(&out, " ", bucket.cumulative_count, "\n");
        }
        AppendSampleName(&out, family.name, "_sum", metric.label, nullptr);
        out.push_back(' ');
        AppendValue(&out, metric.histogram.sample_sum);
        out.push_back('\n');
        AppendSampleName(&out, family.name, "_count", metric.label, nullptr);
        absl::StrAppend(&out, " ", metric.histogram.sample_count, "\n");
        continue;
      }
      AppendSampleName(&out, family.name, "", metric.label, nullptr);
      out.push_back(' ');
      switch (family.type) {
        case MetricType::Counter:
          AppendValue(&out, metric.counter.value);
          break;
        case MetricType::Gauge:
          AppendValue(&out, metric.gauge.value);
          break;
        default:
          AppendValue(&out, metric.untyped.value);
          break;
      }
      out.push_back('\n');
    }
  }
  return out;
}

}  // namespace geoip
