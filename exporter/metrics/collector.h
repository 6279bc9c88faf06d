// Builds the exporter's metric families at scrape time from its own state,
// instead of keeping a prometheus-cpp Family child per series.
#ifndef EXPORTER_METRICS_COLLECTOR_H_
#define EXPORTER_METRICS_COLLECTOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "exporter/geo/network.h"
#include "exporter/listeners/service_name.h"
#include "exporter/probe/probe_health.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/stats/service_names.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace geoip {

// A listener and its identity, as ebpf_geoip_listener_info shows it.
struct ListenerInfo {
  uint32_t netns = 0;
  uint16_t port = 0;
  std::string service;
  ListenerIdentity identity;
};

// What the exporter knows about its own health at one moment.
struct ExporterHealth {
  std::string probe_mode;
  uint64_t overflow_connections = 0;  // counted under country="overflow"
  uint64_t drain_errors = 0;
  ProbeHealth probe;
  std::string database_type;
  std::string database_path;
  std::optional<int64_t> database_build_epoch;  // nullopt: the file has no date
  // The ASN database; path empty when there is none.
  std::string asn_database_type;
  std::string asn_database_path;
  std::optional<int64_t> asn_database_build_epoch;
  uint64_t reload_successes = 0;
  uint64_t reload_failures = 0;
  uint64_t lookup_failures = 0;
  uint64_t lookup_cache_hits = 0;
  uint64_t lookup_cache_misses = 0;
  // Every listener remembered, for ebpf_geoip_listener_info.
  std::vector<ListenerInfo> listeners;
  // Distinct service names counted as service="other" past the cap.
  uint64_t services_over_cap = 0;
  // Native TLS (tls_server_config); unset when serving plain HTTP.
  struct Tls {
    uint64_t reloads = 0;          // renewed certificate files now served
    uint64_t reload_failures = 0;  // changed files that could not be read
    int64_t not_after = 0;         // expiry of the certificate served
  };
  std::optional<Tls> tls;
};

struct BuildInfo {
  std::string version;
  std::string revision;
  std::string branch;
};

// Collects the connection, traffic and failure series of `stats` plus
// health and build metrics.
// Does not own `stats`, which must outlive it.
class ExporterCollector : public prometheus::Collectable {
 public:
  // Shares `stats` and `services`, which name the series' service label.
  // `network_name` gives the as_name label of an AS (none: empty names).
  ExporterCollector(const ConnectionStats* stats, const ServiceNames* services, BuildInfo build,
                    std::function<ExporterHealth()> health,
                    std::function<std::string(NetworkId)> network_name = nullptr);

  std::vector<prometheus::MetricFamily> Collect() const override;

  // SerializeText(Collect()), written directly: what /metrics serves.
  std::string CollectText() const;

 private:
  // The lifetime histograms per (port, service), with their service names.
  prometheus::MetricFamily CollectDurations(const std::vector<std::string>& services) const;
  // Failed connections per (country, port, reason).
  prometheus::MetricFamily CollectFailures() const;
  // Accepted connections per label network, the ASes past the cap, and
  // the word cloud's counts.
  std::vector<prometheus::MetricFamily> CollectNetworks() const;
  // Everything but the statistics: health, build, process.
  std::vector<prometheus::MetricFamily> CollectHealth() const;

  const ConnectionStats* stats_;
  const ServiceNames* services_;
  BuildInfo build_;
  std::function<ExporterHealth()> health_;
  std::function<std::string(NetworkId)> network_name_;
};

// process_* metrics of the calling process, read from /proc/self.
std::vector<prometheus::MetricFamily> CollectProcessMetrics();

// The Prometheus text exposition format (version 0.0.4) of `families`.
std::string SerializeText(const std::vector<prometheus::MetricFamily>& families);

}  // namespace geoip

#endif  // EXPORTER_METRICS_COLLECTOR_H_
