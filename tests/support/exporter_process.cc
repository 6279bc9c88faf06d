#include "tests/support/exporter_process.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/support/http_get.h"

namespace geoip {
namespace {

// One line, without its newline: "listening on ADDRESS (port N), metrics at
// PATH", ADDRESS without spaces, 1 <= N <= 65535 and PATH not empty.
std::optional<StartupLine> ParseStartupLine(absl::string_view line) {
  constexpr absl::string_view kListening = "listening on ";
  constexpr absl::string_view kPort = " (port ";
  constexpr absl::string_view kMetrics = "), metrics at ";
  if (!absl::ConsumePrefix(&line, kListening)) return std::nullopt;
  const size_t port_at = line.find(kPort);
  const size_t metrics_at = line.find(kMetrics);
  if (port_at == absl::string_view::npos || metrics_at == absl::string_view::npos ||
      metrics_at < port_at) {
    return std::nullopt;
  }
  StartupLine parsed;
  parsed.listen_address = std::string(line.substr(0, port_at));
  const absl::string_view port =
      line.substr(port_at + kPort.size(), metrics_at - port_at - kPort.size());
  parsed.metrics_path = std::string(line.substr(metrics_at + kMetrics.size()));
  const bool digits_only = !port.empty() && port.size() <= 5 &&
                           port.find_first_not_of("0123456789") == absl::string_view::npos;
  if (parsed.listen_address.empty() || absl::StrContains(parsed.listen_address, ' ') ||
      !digits_only || !absl::SimpleAtoi(port, &parsed.port) || parsed.port < 1 ||
      parsed.port > 65535 || parsed.metrics_path.empty()) {
    return std::nullopt;
  }
  return parsed;
}

}  // namespace

std::optional<StartupLine> FindStartupLine(absl::string_view log) {
  // Only lines that end in '\n': the last piece is still being written.
  std::vector<absl::string_view> lines = absl::StrSplit(log, '\n');
  lines.pop_back();
  for (absl::string_view line : lines) {
    if (std::optional<StartupLine> parsed = ParseStartupLine(line)) return parsed;
  }
  return std::nullopt;
}

absl::StatusOr<ExporterProcess> ExporterProcess::Start(std::vector<std::string> argv) {
  argv.insert(argv.begin() + 1, "--web.listen-address=127.0.0.1:0");
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(argv);
  if (!child.ok()) return child.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    if (std::optional<StartupLine> started = FindStartupLine(child->Stderr())) {
      return ExporterProcess(*std::move(child), started->port);
    }
    if (child->Wait(absl::Milliseconds(50)).ok()) {
      return absl::FailedPreconditionError("exporter exited: " + child->Stderr());
    }
  }
  return absl::DeadlineExceededError("exporter did not start: " + child->Stderr());
}

absl::StatusOr<MetricsText> ExporterProcess::Scrape() {
  absl::StatusOr<HttpReply> response = HttpGet("127.0.0.1", port_, "/metrics", absl::Seconds(5));
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::InternalError(absl::StrCat("/metrics answered ", response->status));
  }
  return MetricsText::Parse(response->body);
}

absl::StatusOr<MetricsText> ExporterProcess::ScrapeWhenCounted(
    const std::vector<std::string>& ports, double total) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    absl::StatusOr<MetricsText> metrics = Scrape();
    if (!metrics.ok()) return metrics.status();
    double counted = 0;
    for (const std::string& port : ports) {
      counted += metrics->Sum("ebpf_geoip_accepted_connections_total", {{"port", port}});
    }
    if (counted >= total) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  absl::SleepFor(absl::Milliseconds(400));
  return Scrape();
}

}  // namespace geoip
