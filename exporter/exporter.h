// The running exporter: puts the pieces together in data-flow order and
// owns them. The probe and its drain thread (or the simulated source) feed
// the recorder, which feeds the statistics; the collector and the live API
// read them; the HTTP server serves both; the watcher keeps the database
// current.
#ifndef EXPORTER_EXPORTER_H_
#define EXPORTER_EXPORTER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "exporter/flags.h"
#include "exporter/geo/database_watcher.h"
#include "exporter/geo/geolocator.h"
#include "exporter/metrics/collector.h"
#include "exporter/probe/accept_probe.h"
#include "exporter/probe_drainer.h"
#include "exporter/services/listener_namer.h"
#include "exporter/services/service_registry.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/stats/recorder.h"
#include "exporter/stats/service_names.h"
#include "exporter/web/api.h"
#include "exporter/web/http_server.h"
#include "exporter/web/simulated_source.h"
#include "exporter/web/tls_context.h"
#include "exporter/web/words_endpoint.h"

namespace geoip {

class Exporter {
 public:
  // Opens the database, attaches the probe and starts serving. Progress and
  // the choices made (database, probe mode) go to stderr.
  static absl::StatusOr<std::unique_ptr<Exporter>> Start(const Config& config,
                                                         const BuildInfo& build);

  // Stops serving and lets go of the probe: an unpinned probe is detached,
  // a pinned one keeps counting for the next exporter.
  ~Exporter();

  // The port the HTTP server listens on.
  int port() const { return server_->port(); }

  // Opens the database file again and swaps it in; on failure the one in
  // use stays. Counted in ebpf_geoip_database_reloads_total.
  void ReloadDatabase(const char* why) { watcher_->Reload(why); }

 private:
  Exporter(const BuildInfo& build, const Config& config);

  ExporterHealth Health() const;
  HttpResponse ServeMetrics(const HttpRequest& request) const;

  // Destroyed in reverse order, so the threads (drainer_, watcher_) stop
  // first and nothing outlives what it uses. All are made before the
  // server starts, so a scrape never sees one missing.
  ConnectionStats stats_;
  ServiceNames service_names_;  // the service label's values
  std::unique_ptr<Geolocator> geolocator_;
  std::unique_ptr<ConnectionRecorder> recorder_;
  std::unique_ptr<AcceptProbe> probe_;  // null with --connections.source=simulated
  std::unique_ptr<ListenerNamer> namer_;
  std::unique_ptr<ServiceRegistry> services_;  // who listens where
  std::unique_ptr<ExporterCollector> collector_;
  absl::Notification stopping_;  // ends live-map streams
  std::unique_ptr<LiveApi> api_;
  std::unique_ptr<SimulatedSource> simulated_;
  std::unique_ptr<WordsEndpoint> words_;
  // Null without tls_server_config; shared with the server, which serves
  // with it, and read here for its reload counts.
  std::shared_ptr<const TlsContext> tls_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<ProbeDrainer> drainer_;  // null with --connections.source=simulated
  std::unique_ptr<DatabaseWatcher> watcher_;
};

// The database to use: the flag's if given, else the first default found.
absl::StatusOr<std::string> ChooseDatabasePath(const std::string& flag_value);

// The ASN database to use: the flag's if given, none for "none", else the
// first default found, if any.
std::optional<std::string> ChooseAsnDatabasePath(const std::string& flag_value);

}  // namespace geoip

#endif  // EXPORTER_EXPORTER_H_
