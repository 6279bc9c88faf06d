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

// The port filter from a query string: absent means all ports; present, it
// must be a port number 1-65535.
absl::StatusOr<std::optional<uint16_t>> PortFromQuery(absl::string_view query) {
  std::optional<uint16_t> port;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(pair, '=');
    if (kv.first != "port") continue;
    uint32_t value = 0;
    if (kv.second.empty() || !absl::ascii_isdigit(kv.second[0]) ||
        !absl::SimpleAtoi(kv.second, &value) || value < 1 || value > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "port must be a number from 1 to 65535, got \"", kv.second.substr(0, 32), "\""));
    }
    port = static_cast<uint16_t>(value);
  }
  return port;
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

LiveApi::LiveApi(Options options, const ConnectionStats* stats, const absl::Notification* stopping)
    : options_(std::move(options)), stats_(stats), stopping_(stopping) {}

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
  return HttpResponse{200, ContentType("index.html"), std::move(page), {}};
}

std::string LiveApi::CountriesJson(std::optional<uint16_t> port) const {
  std::vector<ConnectionStats::CountryTotal> totals = stats_->CountryTotals({port, std::nullopt});
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
                    ",\"percent\":", Percent(total.connections, all), "}");
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

std::string LiveApi::RecentJson(std::optional<uint16_t> port) const {
  // With a port filter, look further back so the feed still fills up.
  const size_t look_back = port ? options_.recent * 16 : options_.recent;
  std::string json = "[";
  size_t shown = 0;
  for (const ConnectionStats::RecentConnection& recent : stats_->Recent(look_back)) {
    if (port && recent.port != *port) continue;
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
        CountryFields(recent.country), ",\"port\":", recent.port, ",\"address\":", address,
        ",\"connections\":", recent.count, "}");
  }
  return json + "]";
}

std::string LiveApi::StateJson(std::optional<uint16_t> port) const {
  // Read the version first: a change racing with the snapshot is then sent
  // again rather than lost.
  const uint64_t version = stats_->Version();
  uint64_t connections = 0, unique_addresses = 0;
  // Countries partition the addresses, so their distinct counts add up.
  for (const auto& total : stats_->CountryTotals({port, std::nullopt})) {
    connections += total.connections;
    unique_addresses += total.unique_addresses;
  }
  return absl::StrCat(
      "{\"version\":", version, ",\"source\":", options_.simulated ? "\"simulated\"" : "\"ebpf\"",
      ",\"port\":", port ? absl::StrCat(*port) : "null", ",\"connections\":", connections,
      ",\"unique_addresses\":", unique_addresses, ",\"countries\":", CountriesJson(port),
      ",\"ports\":", PortsJson(), ",\"recent\":", RecentJson(port), "}");
}

HttpResponse LiveApi::Countries(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  absl::StatusOr<std::optional<uint16_t>> port = PortFromQuery(request.query);
  if (!port.ok()) return JsonError(400, port.status().message());
  return JsonResponse(200, CountriesJson(*port));
}

HttpResponse LiveApi::Ports(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  return JsonResponse(200, PortsJson());
}

HttpResponse LiveApi::State(const HttpRequest& request) const {
  if (!IsGet(request)) return NotGet();
  absl::StatusOr<std::optional<uint16_t>> port = PortFromQuery(request.query);
  if (!port.ok()) return JsonError(400, port.status().message());
  return JsonResponse(200, StateJson(*port));
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
  absl::StatusOr<std::optional<uint16_t>> port = PortFromQuery(request.query);
  if (!port.ok()) {
    stream.Write(absl::StrCat("retry: 60000\nevent: failure\ndata: {\"error\":",
                              JsonString(port.status().message()), "}\n\n"));
    return;
  }

  // Reconnect 2 s after the exporter restarts or the connection drops.
  uint64_t seen = stats_->Version();
  if (!stream.Write(absl::StrCat("retry: 2000\ndata: ", StateJson(*port), "\n\n"))) return;
  absl::Time last_write = absl::Now();
  while (!stopping_->HasBeenNotified()) {
    const absl::Duration until_keep_alive = last_write + options_.keep_alive - absl::Now();
    if (stats_->WaitForChange(seen, std::min(options_.stop_poll, until_keep_alive))) {
      if (stopping_->WaitForNotificationWithTimeout(options_.coalesce)) return;
      seen = stats_->Version();
      if (!stream.Write(absl::StrCat("data: ", StateJson(*port), "\n\n"))) return;
      last_write = absl::Now();
    } else if (absl::Now() - last_write >= options_.keep_alive) {
      if (!stream.Write(": keep-alive\n\n")) return;
      last_write = absl::Now();
    }
  }
}

}  // namespace geoip
