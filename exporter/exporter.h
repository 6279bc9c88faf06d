// The running exporter: owns the probe, the geolocator, the aggregated
// statistics and the HTTP server, and the thread that drains the kernel.
#ifndef EXPORTER_EXPORTER_H_
#define EXPORTER_EXPORTER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "exporter/flags.h"
#include "exporter/geo/geolocator.h"
#include "exporter/metrics/collector.h"
#include "exporter/probe/accept_probe.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/web/api.h"
#include "exporter/web/http_server.h"

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
  void ReloadDatabase(const char* why);

 private:
  Exporter(const Config& config, const BuildInfo& build);

  void DrainLoop();
  void WatchDatabase();
  void DrainOnce();
  ExporterHealth Health() const;
  HttpResponse ServeMetrics(const HttpRequest& request) const;

  const Config config_;
  ConnectionStats stats_;
  std::unique_ptr<Geolocator> geolocator_;
  std::unique_ptr<AcceptProbe> probe_;
  std::unique_ptr<ExporterCollector> collector_;
  std::unique_ptr<LiveApi> api_;  // the live map and JSON API; server_ calls it
  std::unique_ptr<HttpServer> server_;
  std::atomic<uint64_t> events_lost_{0};
  std::atomic<uint64_t> drain_errors_{0};
  std::atomic<uint64_t> reload_successes_{0};
  std::atomic<uint64_t> reload_failures_{0};
  absl::Notification stopping_;
  std::thread drainer_;
  std::thread watcher_;  // reloads the database when its file is replaced
};

// The database to use: the flag's if given, else the first default found.
absl::StatusOr<std::string> ChooseDatabasePath(const std::string& flag_value);

}  // namespace geoip

#endif  // EXPORTER_EXPORTER_H_
