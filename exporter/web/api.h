// The live map and its JSON API over ConnectionStats: the page and its
// files, per-country and per-port totals, the live stream (Server-Sent
// Events). It only reads; connections come in through ConnectionRecorder.
// API reference: docs/API.md.
#ifndef EXPORTER_WEB_API_H_
#define EXPORTER_WEB_API_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/web/http_server.h"

namespace geoip {

// Thread-safe: civetweb calls the handlers from many threads at once. Shares
// (does not own) the statistics and the stop notification, which must
// outlive it and the server serving its routes.
class LiveApi {
 public:
  struct Options {
    // Linked from the page.
    std::string metrics_path = "/metrics";
    // The recent-connections feed shows whole addresses instead of their
    // /24 (IPv4) or /48 (IPv6) prefix.
    bool show_full_addresses = false;
    // --connections.source=simulated: the page says that connections are posted, not
    // counted by a probe.
    bool simulated = false;
    // Entries in the feed of recent connections.
    size_t recent = 20;
    // A comment line is sent this long after the last write, so proxies
    // keep the stream open and a vanished client is noticed.
    absl::Duration keep_alive = absl::Seconds(15);
    // After a change, wait this long before sending: one drain records many
    // series one by one, and clients need one update, not hundreds.
    absl::Duration coalesce = absl::Milliseconds(100);
    // How often an idle stream checks whether the exporter is stopping.
    absl::Duration stop_poll = absl::Milliseconds(500);
    // Each open stream holds one server thread; past this many, new ones are
    // told to poll /api/v1/state instead, so scrapes of /metrics always find
    // a thread.
    int max_streams = 8;
  };

  LiveApi(Options options, const ConnectionStats* stats, const absl::Notification* stopping);

  LiveApi(const LiveApi&) = delete;
  LiveApi& operator=(const LiveApi&) = delete;

  // Every route: "/" (the page), "/live_map/<file>", "/api/v1/countries",
  // "/api/v1/ports", "/api/v1/state" and "/api/v1/stream".
  std::vector<HttpRoute> Routes();

  // GET /: the page, with the metrics path filled in.
  HttpResponse Page(const HttpRequest& request) const;
  // GET /api/v1/countries[?port=N]: one object per country, most
  // connections first.
  HttpResponse Countries(const HttpRequest& request) const;
  // GET /api/v1/ports: the ports seen, ascending, with their connections.
  HttpResponse Ports(const HttpRequest& request) const;
  // GET /api/v1/state[?port=N]: what one stream message carries, for pages
  // that poll because every stream slot is taken.
  HttpResponse State(const HttpRequest& request) const;
  // GET /api/v1/stream[?port=N]: the state on connect, then again on every
  // change, until the client goes or the exporter stops.
  void Stream(const HttpRequest& request, HttpStream& stream);

  // One stream message: totals, countries, ports and recent connections,
  // for one port or all. Public for tests.
  std::string StateJson(std::optional<uint16_t> port) const;

 private:
  std::string CountriesJson(std::optional<uint16_t> port) const;
  std::string PortsJson() const;
  std::string RecentJson(std::optional<uint16_t> port) const;

  const Options options_;
  const ConnectionStats* const stats_;
  const absl::Notification* const stopping_;
  std::atomic<int> active_streams_{0};
};

}  // namespace geoip

#endif  // EXPORTER_WEB_API_H_
