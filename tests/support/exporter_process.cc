#include "tests/support/exporter_process.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/http_get.h"

namespace geoip {

absl::StatusOr<ExporterProcess> ExporterProcess::Start(std::vector<std::string> argv) {
  argv.insert(argv.begin() + 1, "--web.listen-address=127.0.0.1:0");
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(argv);
  if (!child.ok()) return child.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    // Printed once start-up is done: "listening on ... (port N), ...".
    const std::string log = child->Stderr();
    if (size_t at = log.find("(port "); at != std::string::npos) {
      int port = 0;
      if (absl::SimpleAtoi(log.substr(at + 6, log.find(')', at) - at - 6), &port)) {
        return ExporterProcess(*std::move(child), port);
      }
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
