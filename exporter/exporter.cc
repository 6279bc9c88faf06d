#include "exporter/exporter.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "exporter/geo/asn_database.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/services/proc_listeners.h"
#include "exporter/util/privileges.h"

namespace geoip {
namespace {

// (network namespace, port) pairs whose listener the exporter remembers;
// older ones are forgotten (their series stay).
constexpr size_t kMaxListeners = 4096;

std::vector<std::string> DefaultDatabases() {
  return {"/usr/share/GeoIP/GeoLite2-Country.mmdb", "/var/lib/GeoIP/GeoLite2-Country.mmdb",
          std::string(GEOIP_DATA_DIR) + "/geo-whois-asn-country.mmdb"};
}

std::vector<std::string> DefaultAsnDatabases() {
  return {"/usr/share/GeoIP/GeoLite2-ASN.mmdb", "/var/lib/GeoIP/GeoLite2-ASN.mmdb",
          std::string(GEOIP_DATA_DIR) + "/ip-location-db-asn.mmdb"};
}

ConnectionStats::Options StatsOptions(const Config& config) {
  ConnectionStats::Options options;
  options.max_network_labels = config.max_asns;
  options.top_peers = config.top_peers;
  options.full_peer_addresses = config.show_full_addresses;
  options.max_words = config.max_words;
  return options;
}

// "2026-06-17", or what a file without a date has.
template <typename Database>
std::string BuildDate(const Database& database) {
  if (const std::optional<int64_t> time = database.build_time()) {
    return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(*time), absl::UTCTimeZone());
  }
  return absl::StrCat("at an unknown time: its build epoch ", database.build_epoch(),
                      " is no date");
}

}  // namespace

absl::StatusOr<std::string> ChooseDatabasePath(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const std::vector<std::string> candidates = DefaultDatabases();
  if (std::optional<std::string> found = FindDefaultDatabase(candidates)) return *found;
  return absl::NotFoundError(
      absl::StrCat("no GeoIP database found (looked for ", absl::StrJoin(candidates, ", "),
                   "): pass --geoip.database=PATH or run scripts/update-geoip-db"));
}

std::optional<std::string> ChooseAsnDatabasePath(const std::string& flag_value) {
  if (flag_value == "none") return std::nullopt;
  if (!flag_value.empty()) return flag_value;
  return FindDefaultDatabase(DefaultAsnDatabases());
}

Exporter::Exporter(const BuildInfo& build, const Config& config)
    : stats_(StatsOptions(config)), service_names_(config.max_services) {
  collector_ = std::make_unique<ExporterCollector>(
      &stats_, &service_names_, build, [this] { return Health(); },
      [this](NetworkId network) { return geolocator_->NetworkName(network); });
}

absl::StatusOr<std::unique_ptr<Exporter>> Exporter::Start(const Config& config,
                                                          const BuildInfo& build) {
  std::unique_ptr<Exporter> exporter(new Exporter(build, config));

  absl::StatusOr<std::string> path = ChooseDatabasePath(config.database_path);
  if (!path.ok()) return path.status();
  absl::StatusOr<GeoIpDatabase> database = GeoIpDatabase::Open(*path);
  if (!database.ok()) return database.status();
  fprintf(stderr, "geoip database: %s (type %s, built %s)\n", path->c_str(),
          database->type().c_str(), BuildDate(*database).c_str());
  exporter->geolocator_ =
      std::make_unique<Geolocator>(std::make_shared<const GeoIpDatabase>(*std::move(database)));
  if (std::optional<std::string> asn_path = ChooseAsnDatabasePath(config.asn_database_path)) {
    absl::StatusOr<AsnDatabase> asn = AsnDatabase::Open(*asn_path);
    if (!asn.ok()) return asn.status();
    fprintf(stderr, "asn database: %s (type %s, built %s)\n", asn_path->c_str(),
            asn->type().c_str(), BuildDate(*asn).c_str());
    exporter->geolocator_->SetAsnDatabase(std::make_shared<const AsnDatabase>(*std::move(asn)));
  } else {
    fprintf(
        stderr, "asn database: none (%s): networks are \"unknown\"\n",
        config.asn_database_path == "none"
            ? "--geoip.asn-database=none"
            : "no default found; pass --geoip.asn-database=PATH or run scripts/update-geoip-db");
  }
  exporter->recorder_ =
      std::make_unique<ConnectionRecorder>(exporter->geolocator_.get(), &exporter->stats_);
  exporter->watcher_ = std::make_unique<DatabaseWatcher>(exporter->geolocator_.get());

  // Fail on a bad or busy listen address, or on TLS this build cannot
  // serve or files it cannot read, before touching the kernel.
  if (absl::Status listen = CheckCanListen(config.listen_address); !listen.ok()) return listen;
  std::shared_ptr<const TlsContext> tls;
  if (config.web_config.tls) {
    if (absl::Status can = CanServeTls(); !can.ok()) return can;
    absl::StatusOr<std::unique_ptr<TlsContext>> context =
        TlsContext::Create(*config.web_config.tls);
    if (!context.ok()) return context.status();
    tls = *std::move(context);
    exporter->tls_ = tls;
  }

  if (config.source == ConnectionSource::kSimulated) {
    fprintf(stderr, "source: simulated (no probe); loopback clients POST to /api/v1/connections\n");
  } else {
    ProbeOptions probe_options;
    probe_options.mode = config.probe_mode;
    probe_options.ports = config.ports;
    probe_options.max_addresses = config.max_addresses;
    probe_options.traffic = config.traffic;
    probe_options.max_open_connections = config.max_open_connections;
    probe_options.pin_path = config.pin_path;
    if (!config.pin_path_why.empty()) {
      fprintf(stderr, "--bpf.pin-path=auto: %s\n", config.pin_path_why.c_str());
    }
    std::vector<std::string> attempts;
    absl::StatusOr<std::unique_ptr<AcceptProbe>> probe =
        AcceptProbe::Attach(probe_options, &attempts);
    for (const std::string& attempt : attempts) fprintf(stderr, "probe %s\n", attempt.c_str());
    if (!probe.ok()) return probe.status();
    exporter->probe_ = *std::move(probe);
    // Who listens where: the probe records listen() calls from now on;
    // what listened already is read from /proc while still root.
    exporter->namer_ = std::make_unique<ListenerNamer>();
    ListenerNamer* namer = exporter->namer_.get();
    exporter->services_ = std::make_unique<ServiceRegistry>(
        &exporter->service_names_,
        [namer](const ListeningSocket& socket) { return namer->Name(socket); }, kMaxListeners);
    ProcListenerScan scan = ScanProcListeners();
    std::vector<ListeningSocket>& listening = scan.listening;
    listening.erase(std::remove_if(listening.begin(), listening.end(),
                                   [&config](const ListeningSocket& socket) {
                                     return !config.ports.Contains(socket.port);
                                   }),
                    listening.end());
    exporter->services_->Learn(listening);
    fprintf(stderr, "listeners: %zu listening already\n", listening.size());
    if (scan.unreadable > 0) {
      fprintf(stderr,
              "listeners: the sockets of %d processes were unreadable (no CAP_SYS_PTRACE and "
              "CAP_DAC_READ_SEARCH): what they listen on already counts as service=\"unknown\" "
              "until it listens again; grant both to name them at start (dropped once started)\n",
              scan.unreadable);
    }
    exporter->drainer_ =
        std::make_unique<ProbeDrainer>(exporter->probe_.get(), exporter->services_.get(),
                                       exporter->recorder_.get(), config.drain_interval);
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
  api_options.words = !config.words_from.empty();
  api_options.network_name = [self](NetworkId network) {
    return self->geolocator_->NetworkName(network);
  };
  api_options.simulated = config.source == ConnectionSource::kSimulated;
  // Live-map streams may hold half the server's threads; scrapes and the
  // API always find one in the other half.
  api_options.max_streams = config.web_max_connections / 2;
  exporter->api_ = std::make_unique<LiveApi>(api_options, &exporter->stats_,
                                             &exporter->service_names_, &exporter->stopping_);
  for (HttpRoute& route : exporter->api_->Routes()) routes.push_back(std::move(route));
  SimulatedSource::Options simulated_options;
  simulated_options.enabled = config.source == ConnectionSource::kSimulated;
  exporter->simulated_ =
      std::make_unique<SimulatedSource>(simulated_options, exporter->recorder_.get());
  routes.push_back(exporter->simulated_->Route());
  exporter->words_ = std::make_unique<WordsEndpoint>(config.words_from, &exporter->stats_);
  routes.push_back(exporter->words_->Route());
  if (!config.words_from.empty()) {
    fprintf(stderr, "word cloud: on, POST /api/v1/words from %zu address blocks\n",
            config.words_from.size());
  }
  routes.push_back({"/-/healthy",
                    [](const HttpRequest&) {
                      return HttpResponse{200, "text/plain", "OK\n", {}};
                    },
                    nullptr});
  HttpServer::Options server_options;
  server_options.listen_address = config.listen_address;
  server_options.threads = config.web_max_connections;
  server_options.request_timeout = config.web_request_timeout;
  ApplyWebConfig(config.web_config, &server_options);
  server_options.tls = tls;
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(server_options, std::move(routes));
  if (!server.ok()) return server.status();
  exporter->server_ = *std::move(server);

  // Everything that needs privileges is done: the probe is attached, the
  // port is bound. Threads started from here on inherit the reduced set.
  const bool keep_cap_bpf = exporter->probe_ != nullptr && MapAccessNeedsCapBpf();
  absl::StatusOr<std::string> dropped = DropPrivileges(config.runas, keep_cap_bpf);
  if (!dropped.ok()) return dropped.status();
  if (!dropped->empty()) fprintf(stderr, "%s\n", dropped->c_str());

  if (exporter->drainer_) exporter->drainer_->Start();
  exporter->watcher_->Start();
  fprintf(stderr, "listening on %s (port %d), metrics at %s\n", config.listen_address.c_str(),
          exporter->server_->port(), config.telemetry_path.c_str());
  // Last, so that it is what a user at a terminal sees; with the real port,
  // so it is right for any --web.listen-address, port 0 included.
  fprintf(stderr, "live map: %s\n",
          BrowserUrl(config.listen_address, exporter->server_->port(), tls != nullptr).c_str());
  return exporter;
}

Exporter::~Exporter() {
  // Live-map streams end; the members then go in reverse order: the
  // watcher and drain threads stop, the server closes, the probe detaches
  // unless pinned. Counts not drained yet stay in the kernel: a pinned
  // probe keeps them for the next exporter.
  stopping_.Notify();
}

ExporterHealth Exporter::Health() const {
  ExporterHealth health;
  health.probe_mode = probe_ ? std::string(ProbeModeName(probe_->mode())) : "simulated";
  health.overflow_connections = recorder_->overflowed();
  health.drain_errors = drainer_ ? drainer_->errors() : 0;
  if (probe_) health.probe = probe_->Health();
  const std::shared_ptr<const GeoIpDatabase> database = geolocator_->database();
  health.database_type = database->type();
  health.database_path = database->path();
  health.database_build_epoch = database->build_time();
  if (const std::shared_ptr<const AsnDatabase> asn = geolocator_->asn_database()) {
    health.asn_database_type = asn->type();
    health.asn_database_path = asn->path();
    health.asn_database_build_epoch = asn->build_time();
  }
  health.reload_successes = watcher_ ? watcher_->successes() : 0;
  health.reload_failures = watcher_ ? watcher_->failures() : 0;
  if (tls_) {
    const TlsContext::Stats tls = tls_->stats();
    health.tls = ExporterHealth::Tls{tls.reloads, tls.reload_failures, tls.not_after};
  }
  const Geolocator::Stats lookups = geolocator_->stats();
  health.lookup_failures = lookups.failures;
  health.lookup_cache_hits = lookups.cache_hits;
  health.lookup_cache_misses = lookups.cache_misses;
  health.services_over_cap = service_names_.overflowed();
  if (services_) {
    for (const ServiceRegistry::Listener& listener : services_->Listeners()) {
      // Until its first connection a listener has no place among the
      // services yet: it shows the name it will have below the cap.
      health.listeners.push_back(ListenerInfo{
          listener.netns, listener.port,
          listener.counted ? service_names_.Name(listener.service) : listener.identity.service,
          listener.identity});
    }
  }
  return health;
}

HttpResponse Exporter::ServeMetrics(const HttpRequest&) const {
  return HttpResponse{
      200, "text/plain; version=0.0.4; charset=utf-8", collector_->CollectText(), {}};
}

}  // namespace geoip
