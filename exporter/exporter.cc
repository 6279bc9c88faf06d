#include "exporter/exporter.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "exporter/geo/geoip_database.h"

namespace geoip {
namespace {

std::vector<std::string> DefaultDatabases() {
  return {"/usr/share/GeoIP/GeoLite2-Country.mmdb", "/var/lib/GeoIP/GeoLite2-Country.mmdb",
          std::string(GEOIP_DATA_DIR) + "/geo-whois-asn-country.mmdb"};
}

}  // namespace

absl::StatusOr<std::string> ChooseDatabasePath(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const std::vector<std::string> candidates = DefaultDatabases();
  if (std::optional<std::string> found = FindDefaultDatabase(candidates)) return *found;
  return absl::NotFoundError(absl::StrCat(
      "no GeoIP database found (looked for ", absl::StrJoin(candidates, ", "),
      "): pass --geoip.database=PATH or run scripts/update-geoip-db"));
}

Exporter::Exporter(const Config& config, const BuildInfo& build)
    : config_(config) {
  collector_ = std::make_unique<ExporterCollector>(&stats_, build,
                                                   [this] { return Health(); });
}

absl::StatusOr<std::unique_ptr<Exporter>> Exporter::Start(const Config& config,
                                                          const BuildInfo& build) {
  std::unique_ptr<Exporter> exporter(new Exporter(config, build));

  absl::StatusOr<std::string> path = ChooseDatabasePath(config.database_path);
  if (!path.ok()) return path.status();
  absl::StatusOr<GeoIpDatabase> database = GeoIpDatabase::Open(*path);
  if (!database.ok()) return database.status();
  exporter->database_ = std::make_shared<const GeoIpDatabase>(*std::move(database));
  fprintf(stderr, "geoip database: %s (type %s, built %s)\n", path->c_str(),
          exporter->database_->type().c_str(),
          absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(exporter->database_->build_epoch()),
                           absl::UTCTimeZone())
              .c_str());
  exporter->geolocator_ = std::make_unique<Geolocator>(exporter->database_);

  // Fail on a bad or busy listen address before touching the kernel.
  if (absl::Status listen = CheckCanListen(config.listen_address); !listen.ok()) return listen;

  if (config.source == ConnectionSource::kSimulated) {
    fprintf(stderr, "source: simulated (no probe); loopback clients POST to /api/v1/connections\n");
  } else {
    ProbeOptions probe_options;
    probe_options.mode = config.probe_mode;
    probe_options.ports = config.ports;
    probe_options.max_addresses = config.max_addresses;
    std::vector<std::string> attempts;
    absl::StatusOr<std::unique_ptr<AcceptProbe>> probe =
        AcceptProbe::Attach(probe_options, &attempts);
    for (const std::string& attempt : attempts) fprintf(stderr, "probe %s\n", attempt.c_str());
    if (!probe.ok()) return probe.status();
    exporter->probe_ = *std::move(probe);
    fprintf(stderr, "probe mode: %s, ports: %s\n",
            std::string(ProbeModeName(exporter->probe_->mode())).c_str(),
            config.ports.ToString().c_str());
  }

  Exporter* self = exporter.get();
  std::vector<HttpRoute> routes;
  routes.push_back({config.telemetry_path,
                    [self](const HttpRequest& r) { return self->ServeMetrics(r); }, nullptr});
  LiveApi::Options api_options;
  api_options.metrics_path = config.telemetry_path;
  api_options.show_full_addresses = config.show_full_addresses;
  api_options.simulated = config.source == ConnectionSource::kSimulated;
  exporter->api_ = std::make_unique<LiveApi>(api_options, &exporter->stats_,
                                             exporter->geolocator_.get(), &exporter->stopping_);
  for (HttpRoute& route : exporter->api_->Routes()) routes.push_back(std::move(route));
  routes.push_back({"/-/healthy",
                    [](const HttpRequest&) { return HttpResponse{200, "text/plain", "OK\n", {}}; },
                    nullptr});
  HttpServer::Options server_options;
  server_options.listen_address = config.listen_address;
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(server_options, std::move(routes));
  if (!server.ok()) return server.status();
  exporter->server_ = *std::move(server);

  exporter->drainer_ = std::thread([self] { self->DrainLoop(); });
  fprintf(stderr, "listening on %s (port %d), metrics at %s\n", config.listen_address.c_str(),
          exporter->server_->port(), config.telemetry_path.c_str());
  return exporter;
}

Exporter::~Exporter() {
  stopping_.Notify();
  if (drainer_.joinable()) drainer_.join();
  server_.reset();
  if (probe_) DrainOnce();
}

void Exporter::DrainLoop() {
  while (!stopping_.WaitForNotificationWithTimeout(config_.drain_interval)) DrainOnce();
}

void Exporter::DrainOnce() {
  if (!probe_) return;  // --source=simulated
  DrainResult result;
  if (absl::Status drained = probe_->Drain(&result); !drained.ok()) {
    drain_errors_.fetch_add(1, std::memory_order_relaxed);
    fprintf(stderr, "drain: %s\n", std::string(drained.message()).c_str());
  }
  const absl::Time now = absl::Now();
  for (const DrainedCount& count : result.counts) {
    stats_.Record(geolocator_->Locate(count.address), count.port, &count.address, count.count,
                  now);
  }
  for (const auto& [port, count] : result.overflow) {
    stats_.Record(CountryId::Overflow(), port, nullptr, count, now);
    events_lost_.fetch_add(count, std::memory_order_relaxed);
  }
}

ExporterHealth Exporter::Health() const {
  ExporterHealth health;
  health.probe_mode = probe_ ? std::string(ProbeModeName(probe_->mode())) : "simulated";
  health.events_lost = events_lost_.load(std::memory_order_relaxed);
  health.drain_errors = drain_errors_.load(std::memory_order_relaxed);
  health.database_type = database_->type();
  health.database_path = database_->path();
  health.database_build_epoch = static_cast<int64_t>(database_->build_epoch());
  const Geolocator::Stats lookups = geolocator_->stats();
  health.lookup_failures = lookups.failures;
  health.lookup_cache_hits = lookups.cache_hits;
  health.lookup_cache_misses = lookups.cache_misses;
  return health;
}

HttpResponse Exporter::ServeMetrics(const HttpRequest&) const {
  return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                      SerializeText(collector_->Collect()), {}};
}

}  // namespace geoip
