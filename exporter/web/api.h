// The live map and its JSON API over ConnectionStats: the page and its
// files, per-country, per-port and per-service totals, failed connections,
// the live stream (Server-Sent Events). It only reads; connections come in
// through ConnectionRecorder.
// API reference: docs/API.md.
#ifndef EXPORTER_WEB_API_H_
#define EXPORTER_WEB_API_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "exporter/geo/network.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/stats/service_names.h"
#include "exporter/web/http_server.h"

namespace geoip {

// Thread-safe: civetweb calls the handlers from many threads at once. Shares
// (does not own) the statistics, the service names and the stop
// notification, which must outlive it and the server serving its routes.
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
    // The word cloud is on (--web.words-from): stream messages carry it.
    bool words = false;
    // The name of an AS, for /api/v1/networks; none: names are empty.
    std::function<std::string(NetworkId)> network_name;
  };

  // What a request asks for: ?port=N, ?service=NAME, ?country=CC and
  // ?limit=N; absent means all (limit: each route's default).
  struct Query {
    std::optional<uint16_t> port;        // 0: "other", the ports not watched (failures only)
    std::optional<std::string> service;  // decoded; may name no service yet
    std::optional<CountryId> country;
    std::optional<size_t> limit;  // 1 to kMaxLimit
  };

  // The page's Content-Security-Policy header.
  static constexpr char kPageContentSecurityPolicy[] =
      "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";

  // The most rows ?limit= may ask for.
  static constexpr size_t kMaxLimit = 1000;
  // Rows of each list in a stream message.
  static constexpr size_t kStreamWords = 50;
  static constexpr size_t kStreamPeers = 10;

  LiveApi(Options options, const ConnectionStats* stats, const ServiceNames* services,
          const absl::Notification* stopping);

  LiveApi(const LiveApi&) = delete;
  LiveApi& operator=(const LiveApi&) = delete;

  // Every route: "/" (the page), "/live_map/<file>", "/api/v1/countries",
  // "/api/v1/ports", "/api/v1/services", "/api/v1/failures",
  // "/api/v1/networks", "/api/v1/peers", "/api/v1/state" and
  // "/api/v1/stream". (Words come in through WordsEndpoint.)
  std::vector<HttpRoute> Routes();

  // GET /: the page, with the metrics path filled in.
  HttpResponse Page(const HttpRequest& request) const;
  // GET /api/v1/countries[?port=N][&service=NAME]: one object per country,
  // most connections first, with its traffic.
  HttpResponse Countries(const HttpRequest& request) const;
  // GET /api/v1/ports: the ports seen, ascending, with their connections.
  HttpResponse Ports(const HttpRequest& request) const;
  // GET /api/v1/services: the services seen, most connections first, with
  // their connections.
  HttpResponse Services(const HttpRequest& request) const;
  // GET /api/v1/failures[?port=N|other]: failed connections per country and
  // reason, most first.
  HttpResponse Failures(const HttpRequest& request) const;
  // GET /api/v1/networks[?port=N][&service=NAME][&country=CC][&limit=N]:
  // the networks (ASes) with the most accepted connections, most first.
  HttpResponse Networks(const HttpRequest& request) const;
  // GET /api/v1/peers[?port=N][&service=NAME][&limit=N]: the heaviest
  // peers, /24 or /48 networks unless --web.show-full-addresses.
  HttpResponse Peers(const HttpRequest& request) const;
  // GET /api/v1/state[?port=N][&service=NAME]: what one stream message
  // carries, for pages that poll because every stream slot is taken.
  HttpResponse State(const HttpRequest& request) const;
  // GET /api/v1/stream[?port=N][&service=NAME]: the state on connect, then
  // again on every change, until the client goes or the exporter stops.
  void Stream(const HttpRequest& request, HttpStream& stream);

  // One stream message: totals, countries, ports, services, failures and
  // recent connections, for what `query` selects. Public for tests.
  std::string StateJson(const Query& query) const;

  // The failures of one port (0: "other"), or of all; public for tests.
  std::string FailuresJson(std::optional<uint16_t> port) const;

 private:
  // The series `query` selects; nullopt if none can match (a service name
  // that no connection has had yet). Resolved on every message, so a stream
  // for such a name fills in once the service has its first connection.
  std::optional<ConnectionStats::Filter> FilterOf(const Query& query) const;
  std::string CountriesJson(const Query& query) const;
  std::string PortsJson() const;
  std::string ServicesJson() const;
  std::string RecentJson(const Query& query) const;
  std::string PeersJson(const Query& query, size_t limit) const;
  std::string WordsJson() const;

  const Options options_;
  const ConnectionStats* const stats_;
  const ServiceNames* const services_;
  const absl::Notification* const stopping_;
  std::atomic<int> active_streams_{0};
};

}  // namespace geoip

#endif  // EXPORTER_WEB_API_H_
