#include "exporter/web/api.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "exporter/listeners/service_name.h"
#include "exporter/stats/failure_counts.h"
#include "exporter/web/country_names.h"
#include "exporter/web/embedded_file.h"
#include "exporter/web/json.h"

namespace geoip {
namespace {

constexpr char kAssetPrefix[] = "/live_map/";

// part of whole in percent with one decimal, rounded half up, using
// integers so that the text is exact ("33.3", not "33.333333333333336").
std::string Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return "0.0";
  const unsigned __int128 tenths =
      (static_cast<unsigned __int128>(part) * 2000 + whole) / (2 * whole);
  const uint64_t value = static_cast<uint64_t>(tenths);
  return absl::StrCat(value / 10, ".", value % 10);
}

// Service names are label values (LabelSafe): a longer one cannot be a
// service.
constexpr size_t kMaxServiceBytes = kMaxLabelBytes;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A query value as browsers encode it: %XX is a byte and '+' a space
// (URLSearchParams and forms; encodeURIComponent's %20 works too). nullopt
// on a '%' without two hex digits.
std::optional<std::string> DecodeQueryValue(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    }
  }
  return out;
}

// The filters in a query string. port, if present, must be a port number
// 1-65535, or with `other_port` also "other" (read as 0, the ports failures
// count as "other"); service a name of 1 to 64 bytes, URL-encoded; country
// a two-letter code or private, unknown, overflow; limit 1 to kMaxLimit.
// Other parameters are ignored; of a repeated one, the last counts.
absl::StatusOr<LiveApi::Query> ParseQuery(absl::string_view query, bool other_port = false) {
  LiveApi::Query parsed;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == "port") {
      uint32_t value = 0;
      if (other_port && kv.second == "other") {
        parsed.port = 0;
      } else if (kv.second.empty() || !absl::ascii_isdigit(kv.second[0]) ||
                 !absl::SimpleAtoi(kv.second, &value) || value < 1 || value > 65535) {
        return absl::InvalidArgumentError(absl::StrCat("port must be a number from 1 to 65535",
                                                       other_port ? " or \"other\"" : "",
                                                       ", got \"", kv.second.substr(0, 32), "\""));
      } else {
        parsed.port = static_cast<uint16_t>(value);
      }
    } else if (kv.first == "service") {
      std::optional<std::string> name = DecodeQueryValue(kv.second);
      if (!name) {
        return absl::InvalidArgumentError(absl::StrCat(
            "service must be URL-encoded (%XX for a byte), got \"", kv.second.substr(0, 32), "\""));
      }
      if (name->empty() || name->size() > kMaxServiceBytes) {
        return absl::InvalidArgumentError(absl::StrCat("service must be a name of 1 to ",
                                                       kMaxServiceBytes, " bytes, got ",
                                                       name->size(), " bytes"));
      }
      parsed.service = *std::move(name);
    } else if (kv.first == "country") {
      std::optional<CountryId> country =
          CountryId::FromIsoCode(std::string_view(kv.second.data(), kv.second.size()));
      for (CountryId special :
           {CountryId::Private(), CountryId::Unknown(), CountryId::Overflow()}) {
        if (kv.second == special.Label()) country = special;
      }
      if (!country) {
        return absl::InvalidArgumentError(
            absl::StrCat("country must be a two-letter code such as GB, or private, unknown or "
                         "overflow, got \"",
                         kv.second.substr(0, 32), "\""));
      }
      parsed.country = country;
    } else if (kv.first == "limit") {
      uint32_t value = 0;
      if (kv.second.empty() || !absl::ascii_isdigit(kv.second[0]) ||
          !absl::SimpleAtoi(kv.second, &value) || value < 1 || value > LiveApi::kMaxLimit) {
        return absl::InvalidArgumentError(absl::StrCat("limit must be a number from 1 to ",
                                                       LiveApi::kMaxLimit, ", got \"",
                                                       kv.second.substr(0, 32), "\""));
      }
      parsed.limit = value;
    }
  }
  return parsed;
}

// The text form a peer key is shown in is TopPeers'; a network's name is
// whatever the database said, escaped as JSON.
std::string NetworkJson(NetworkId network, const std::string& name, uint64_t connections) {
  return absl::StrCat("{\"asn\":", JsonString(network.Label()), ",\"as_name\":", JsonString(name),
                      ",\"connections\":", connections, "}");
}

std::string ContentType(absl::string_view name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".json")) return kJsonContentType;
  return "application/octet-stream";
}

std::string HtmlEscape(absl::string_view text) {
  return absl::StrReplaceAll(
      text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

absl::string_view FindFile(absl::string_view name) {
  for (const EmbeddedFile& file : LiveMapFiles()) {
    if (name == file.name) return file.data;
  }
  return {};
}

bool IsGet(const HttpRequest& request) {
  return request.method == "GET" || request.method == "HEAD";
}

HttpResponse NotGet() {
  HttpResponse response = JsonError(405, "use GET");
  response.headers.emplace_back("Allow", "GET, HEAD");
  return response;
}

}  // namespace

LiveApi::LiveApi(Options options, const ConnectionStats* stats, const ServiceNames* services,
                 const absl::Notification* stopping)
    : options_(std::move(options)), stats_(stats), services_(services), stopping_(stopping) {}

std::vector<HttpRoute> LiveApi::Routes() {
  std::vector<HttpRoute> routes;
  routes.push_back({"/", [this](const HttpRequest& r) { return Page(r); }, nullptr});
  for (const EmbeddedFile& file : LiveMapFiles()) {
    if (absl::string_view(file.name) == "index.html") continue;
    HttpResponse response{200, ContentType(file.name), std::string(file.data), {}};
    routes.push_back({absl::StrCat(kAssetPrefix, file.name),
                      [response](const HttpRequest& r) { return IsGet(r) ? response : NotGet(); },
                      nullptr});
  }
  routes.push_back(
      {"/api/v1/countries", [this](const HttpRequest& r) { return Countries(r); }, nullptr});
  routes.push_back({"/api/v1/ports", [this](const HttpRequest& r) { return Ports(r); }, nullptr});
  routes.push_back(
      {"/api/v1/services", [this](const HttpRequest& r) { return Services(r); }, nullptr});
  routes.push_back(
      {"/api/v1/failures", [this](const HttpRequest& r) { return Failures(r); }, nullptr});
  routes.push_back(
      {"/api/v1/networks", [this](const HttpRequest& r) { return Networks(r); }, nullptr});
  routes.push_back({"/api/v1/peers", [this](const HttpRequest& r) { return Peers(r); }, nullptr});
  routes.push_back({"/api/v1/state", [this](const HttpRequest& r) { return State(r); }, nullptr});
  HttpRoute stream{"/api/v1/stream", nullptr,
                   [this](const HttpRequest& r, HttpStream& s) { Stream(r, s); }};
  stream.stream_content_type = "text/event-stream; charset=utf-8";
  routes.push_back(std::move(stream));
  return routes;
}

HttpResponse LiveApi::Page(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  std::string page = absl::StrReplaceAll(
      FindFile("index.html"), {{"{{METRICS_PATH}}", HtmlEscape(options_.metrics_path)},
                               {"{{SOURCE}}", options_.simulated ? "simulated" : "ebpf"}});
  HttpResponse response{200, ContentType("index.html"), std::move(page), {}};
  // A second line of defence for what the page shows from others (words,
  // AS and service names, always set as text): the page's own files only,
  // no inline script or style, no plugins.
  response.headers.emplace_back("Content-Security-Policy", kPageContentSecurityPolicy);
  return response;
}

std::optional<ConnectionStats::Filter> LiveApi::FilterOf(const Query& query) const {
  ConnectionStats::Filter filter{query.port, std::nullopt};
  if (query.service) {
    ServiceId id = ServiceNames::kUnknown;
    if (!services_->Find(*query.service, &id)) return std::nullopt;
    filter.service = id;
  }
  return filter;
}

std::string LiveApi::CountriesJson(const Query& query) const {
  const std::optional<ConnectionStats::Filter> filter = FilterOf(query);
  if (!filter) return "[]";
  std::vector<ConnectionStats::CountryTotal> totals = stats_->CountryTotals(*filter);
  // Most connections first, as a top-countries table wants; ties by label.
  std::stable_sort(
      totals.begin(), totals.end(),
      [](const ConnectionStats::CountryTotal& a, const ConnectionStats::CountryTotal& b) {
        return a.connections > b.connections;
      });
  uint64_t all = 0;
  for (const auto& total : totals) all += total.connections;
  std::string json = "[";
  for (const auto& total : totals) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, "{", CountryFields(total.country),
                    ",\"connections\":", total.connections,
                    ",\"unique_addresses\":", total.unique_addresses,
                    ",\"percent\":", Percent(total.connections, all),
                    ",\"received_bytes\":", total.traffic.received_bytes,
                    ",\"sent_bytes\":", total.traffic.sent_bytes,
                    ",\"closed_connections\":", total.traffic.closed_connections, "}");
  }
  return json + "]";
}

std::string LiveApi::PortsJson() const {
  std::map<uint16_t, uint64_t> connections;
  for (const ConnectionStats::Series& series : stats_->Snapshot()) {
    connections[series.port] += series.connections;
  }
  std::string json = "[";
  for (const auto& [port, count] : connections) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, "{\"port\":", port, ",\"connections\":", count, "}");
  }
  return json + "]";
}

std::string LiveApi::ServicesJson() const {
  std::map<ServiceId, uint64_t> connections;
  for (const ConnectionStats::Series& series : stats_->Snapshot()) {
    connections[series.service] += series.connections;
  }
  std::vector<std::pair<std::string, uint64_t>> services;
  services.reserve(connections.size());
  for (const auto& [id, count] : connections) services.emplace_back(services_->Name(id), count);
  // Most connections first, as a chooser wants its busiest services on top;
  // ties by name.
  std::sort(services.begin(), services.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::string json = "[";
  for (const auto& [name, count] : services) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, "{\"service\":", JsonString(name), ",\"connections\":", count, "}");
  }
  return json + "]";
}

std::string LiveApi::FailuresJson(std::optional<uint16_t> port) const {
  struct CountryFailures {
    CountryId country;
    uint64_t failed = 0;
    std::map<FailureReason, uint64_t> reasons;
  };
  // Failures() comes sorted by country label, so a country's series are
  // next to each other.
  std::vector<CountryFailures> countries;
  for (const FailureCounts::Series& series : stats_->Failures()) {
    if (port && series.port != *port) continue;
    if (countries.empty() || countries.back().country != series.country) {
      countries.push_back({series.country, 0, {}});
    }
    countries.back().failed += series.count;
    countries.back().reasons[series.reason] += series.count;
  }
  // Most failures first; ties stay in label order.
  std::stable_sort(
      countries.begin(), countries.end(),
      [](const CountryFailures& a, const CountryFailures& b) { return a.failed > b.failed; });
  std::string json = "[";
  for (const CountryFailures& country : countries) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, "{", CountryFields(country.country),
                    ",\"failed_connections\":", country.failed, ",\"reasons\":{");
    bool first = true;
    for (const auto& [reason, count] : country.reasons) {
      absl::StrAppend(&json, first ? "" : ",", JsonString(FailureReasonLabel(reason)), ":", count);
      first = false;
    }
    json += "}}";
  }
  return json + "]";
}

std::string LiveApi::RecentJson(const Query& query) const {
  const std::optional<ConnectionStats::Filter> filter = FilterOf(query);
  if (!filter) return "[]";
  // With a filter, look further back so the feed still fills up.
  const bool filtered = filter->port || filter->service;
  const size_t look_back = filtered ? options_.recent * 16 : options_.recent;
  std::string json = "[";
  size_t shown = 0;
  for (const ConnectionStats::RecentConnection& recent : stats_->Recent(look_back)) {
    if (filter->port && recent.port != *filter->port) continue;
    if (filter->service && recent.service != *filter->service) continue;
    if (shown++ == options_.recent) break;
    std::string address = "null";
    if (recent.has_address) {
      address = options_.show_full_addresses
                    ? JsonString(FormatIpAddress(recent.address))
                    : JsonString(absl::StrCat(FormatIpAddress(TruncateForDisplay(recent.address)),
                                              recent.address.is_v4() ? "/24" : "/48"));
    }
    if (json.size() > 1) json += ",";
    absl::StrAppend(
        &json, "{\"time\":",
        JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", recent.time, absl::UTCTimeZone())), ",",
        CountryFields(recent.country), ",\"port\":", recent.port,
        ",\"service\":", JsonString(services_->Name(recent.service)), ",\"address\":", address,
        ",\"connections\":", recent.count, "}");
  }
  return json + "]";
}

std::string LiveApi::StateJson(const Query& query) const {
  // Read the version first: a change racing with the snapshot is then sent
  // again rather than lost.
  const uint64_t version = stats_->Version();
  uint64_t connections = 0, unique_addresses = 0;
  ConnectionStats::Traffic traffic;
  // Countries partition the addresses, so their distinct counts add up.
  if (const std::optional<ConnectionStats::Filter> filter = FilterOf(query)) {
    for (const auto& total : stats_->CountryTotals(*filter)) {
      connections += total.connections;
      unique_addresses += total.unique_addresses;
      traffic.received_bytes += total.traffic.received_bytes;
      traffic.sent_bytes += total.traffic.sent_bytes;
      traffic.closed_connections += total.traffic.closed_connections;
    }
  }
  // Failed connections reached no service: only the port selects them.
  return absl::StrCat(
      "{\"version\":", version, ",\"source\":", options_.simulated ? "\"simulated\"" : "\"ebpf\"",
      ",\"port\":", query.port ? absl::StrCat(*query.port) : "null",
      ",\"service\":", query.service ? JsonString(*query.service) : "null",
      ",\"connections\":", connections, ",\"unique_addresses\":", unique_addresses,
      ",\"received_bytes\":", traffic.received_bytes, ",\"sent_bytes\":", traffic.sent_bytes,
      ",\"closed_connections\":", traffic.closed_connections,
      ",\"countries\":", CountriesJson(query), ",\"ports\":", PortsJson(),
      ",\"services\":", ServicesJson(), ",\"failures\":", FailuresJson(query.port),
      stats_->keeps_peers() ? absl::StrCat(",\"peers\":", PeersJson(query, kStreamPeers)) : "",
      options_.words ? absl::StrCat(",\"words\":", WordsJson()) : "",
      ",\"recent\":", RecentJson(query), "}");
}

std::string LiveApi::PeersJson(const Query& query, size_t limit) const {
  const std::optional<ConnectionStats::Filter> filter = FilterOf(query);
  if (!filter) return "[]";
  std::string json = "[";
  for (const TopPeers::Peer& peer : stats_->Peers(filter->port, filter->service, limit)) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, "{\"address\":", JsonString(peer.address),
                    ",\"country\":", JsonString(peer.country.Label()),
                    ",\"country_name\":", JsonString(CountryName(peer.country)),
                    ",\"connections\":", peer.connections, ",\"max_error\":", peer.max_error, "}");
  }
  return json + "]";
}

std::string LiveApi::WordsJson() const {
  std::string json = "[";
  for (const WordCloud::Entry& entry : stats_->Words(kStreamWords)) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, "{\"word\":", JsonString(entry.word), ",\"count\":", entry.count, "}");
  }
  return json + "]";
}

HttpResponse LiveApi::Networks(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  absl::StatusOr<Query> query = ParseQuery(request.query);
  if (!query.ok()) return JsonError(400, query.status().message());
  const std::optional<ConnectionStats::Filter> filter = FilterOf(*query);
  NetworkCounts::Top top;
  if (filter) {
    top = stats_->TopNetworks({query->country, filter->port, filter->service},
                              query->limit.value_or(20));
  }
  std::string json = "{\"networks\":[";
  for (size_t i = 0; i < top.networks.size(); ++i) {
    const auto& [network, connections] = top.networks[i];
    absl::StrAppend(
        &json, i > 0 ? "," : "",
        NetworkJson(network, options_.network_name ? options_.network_name(network) : "",
                    connections));
  }
  absl::StrAppend(&json, "],\"other_connections\":", top.other, "}");
  return JsonResponse(200, std::move(json));
}

HttpResponse LiveApi::Peers(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  absl::StatusOr<Query> query = ParseQuery(request.query);
  if (!query.ok()) return JsonError(400, query.status().message());
  return JsonResponse(
      200, absl::StrCat("{\"peers\":", PeersJson(*query, query->limit.value_or(20)),
                        ",\"prefix\":", options_.show_full_addresses ? "false" : "true", "}"));
}

HttpResponse LiveApi::Countries(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  absl::StatusOr<Query> query = ParseQuery(request.query);
  if (!query.ok()) return JsonError(400, query.status().message());
  return JsonResponse(200, CountriesJson(*query));
}

HttpResponse LiveApi::Ports(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  return JsonResponse(200, PortsJson());
}

HttpResponse LiveApi::Services(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  return JsonResponse(200, ServicesJson());
}

HttpResponse LiveApi::Failures(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  absl::StatusOr<Query> query = ParseQuery(request.query, /*other_port=*/true);
  if (!query.ok()) return JsonError(400, query.status().message());
  return JsonResponse(200, FailuresJson(query->port));
}

HttpResponse LiveApi::State(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  absl::StatusOr<Query> query = ParseQuery(request.query);
  if (!query.ok()) return JsonError(400, query.status().message());
  return JsonResponse(200, StateJson(*query));
}

void LiveApi::Stream(const HttpRequest& request, HttpStream& stream) {
  // The 200 and headers are already out, so refusals are stream messages;
  // "retry" tells EventSource when to try again. The page polls
  // /api/v1/state meanwhile.
  const int active = active_streams_.fetch_add(1) + 1;
  absl::Cleanup release = [this] { active_streams_.fetch_sub(1); };
  if (active > options_.max_streams) {
    stream.Write(
        "retry: 30000\nevent: busy\ndata: {\"error\":\"too many live viewers: poll "
        "/api/v1/state\"}\n\n");
    return;
  }
  absl::StatusOr<Query> query = ParseQuery(request.query);
  if (!query.ok()) {
    stream.Write(absl::StrCat("retry: 60000\nevent: failure\ndata: {\"error\":",
                              JsonString(query.status().message()), "}\n\n"));
    return;
  }

  // Reconnect 2 s after the exporter restarts or the connection drops.
  uint64_t seen = stats_->Version();
  if (!stream.Write(absl::StrCat("retry: 2000\ndata: ", StateJson(*query), "\n\n"))) return;
  absl::Time last_write = absl::Now();
  while (!stopping_->HasBeenNotified()) {
    const absl::Duration until_keep_alive = last_write + options_.keep_alive - absl::Now();
    if (stats_->WaitForChange(seen, std::min(options_.stop_poll, until_keep_alive))) {
      if (stopping_->WaitForNotificationWithTimeout(options_.coalesce)) return;
      seen = stats_->Version();
      if (!stream.Write(absl::StrCat("data: ", StateJson(*query), "\n\n"))) return;
      last_write = absl::Now();
    } else if (absl::Now() - last_write >= options_.keep_alive) {
      if (!stream.Write(": keep-alive\n\n")) return;
      last_write = absl::Now();
    }
  }
}

}  // namespace geoip
