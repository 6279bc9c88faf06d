// End to end with the real probe: the exporter runs outside, services and
// clients run inside private network namespaces whose loopback holds public
// addresses, and /metrics must show exactly the connections made.
//
// Addresses and their countries in the bundled database (checked with
// mmdblookup): 81.2.69.142 and 81.2.69.143 GB, 138.100.31.225 ES, 1.0.16.1
// JP, 2001:4860:4860::8888 US, 2001:12ff::1 BR; 2c0f:fb50::1 has no entry.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"

namespace geoip {
namespace {

const std::string kExporter = GEOIP_EXPORTER_BINARY;
const std::string kTraffic = GEOIP_TRAFFIC_BINARY;
const std::string kDatabase = std::string(GEOIP_SOURCE_DIR) + "/data/geo-whois-asn-country.mmdb";

// The exporter as a child process, with the port it listens on.
class RunningExporter {
 public:
  // Starts the exporter on 127.0.0.1 with a free port and waits until it
  // serves; returns an error with its stderr if it exits instead.
  static absl::StatusOr<RunningExporter> Start(std::vector<std::string> flags) {
    std::vector<std::string> argv = {kExporter, "--web.listen-address=127.0.0.1:0",
                                     "--geoip.database=" + kDatabase,
                                     "--bpf.drain-interval=100ms"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(argv);
    if (!child.ok()) return child.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline) {
      const std::string log = child->Stderr();
      if (size_t at = log.find("(port "); at != std::string::npos) {
        int port = 0;
        if (absl::SimpleAtoi(log.substr(at + 6, log.find(')', at) - at - 6), &port)) {
          return RunningExporter(*std::move(child), port);
        }
      }
      if (child->Wait(absl::Milliseconds(50)).ok()) {
        return absl::FailedPreconditionError("exporter exited: " + child->Stderr());
      }
    }
    return absl::DeadlineExceededError("exporter did not start: " + child->Stderr());
  }

  absl::StatusOr<MetricsText> Scrape() {
    absl::StatusOr<HttpResponse> response =
        HttpGet("127.0.0.1", port_, "/metrics", absl::Seconds(5));
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::InternalError(absl::StrCat("/metrics answered ", response->status));
    }
    return MetricsText::Parse(response->body);
  }

  // Scrapes until the connections counted on `ports` reach `total` (or 10 s
  // pass), then once more after a few drain intervals so that any excess
  // shows too.
  absl::StatusOr<MetricsText> ScrapeWhenCounted(const std::vector<std::string>& ports,
                                                double total) {
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

  ChildProcess& process() { return process_; }
  int port() const { return port_; }

 private:
  RunningExporter(ChildProcess process, int port) : process_(std::move(process)), port_(port) {}
  ChildProcess process_;
  int port_;
};

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to load the eBPF probe";
  }
};

double Connections(const MetricsText& metrics, const std::string& country,
                   const std::string& port) {
  return metrics.Value("ebpf_geoip_accepted_connections_total",
                       {{"country", country}, {"port", port}})
      .value_or(-1);
}

double Uniques(const MetricsText& metrics, const std::string& country, const std::string& port) {
  return metrics.Value("ebpf_geoip_unique_source_addresses",
                       {{"country", country}, {"port", port}})
      .value_or(-1);
}

TEST_F(EndToEnd, CountsConnectionsExactlyByCountryAndPort) {
  absl::StatusOr<RunningExporter> exporter =
      RunningExporter::Start({"--ports=18081,18082,18083"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();

  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  for (const char* address : {"81.2.69.142", "81.2.69.143", "138.100.31.225", "1.0.16.1",
                              "2001:4860:4860::8888", "2001:12ff::1", "2c0f:fb50::1"}) {
    ASSERT_TRUE(ns->AddAddress(address).ok()) << address;
  }
  // 18081: IPv4 only. 18082 and 18083: dual-stack, hit over IPv6 and over
  // IPv4 (the peer then looks like ::ffff:a.b.c.d). 18084 is not watched.
  const std::vector<std::string> connections = {
      "81.2.69.142>127.0.0.1:18081*3",
      "81.2.69.143>127.0.0.1:18081*1",
      "138.100.31.225>127.0.0.1:18081*2",
      "127.0.0.1>127.0.0.1:18081*2",
      "2001:4860:4860::8888>[::1]:18082*4",
      "2001:12ff::1>[::1]:18082*1",
      "2c0f:fb50::1>[::1]:18082*2",
      "81.2.69.142>127.0.0.1:18083*2",
      "1.0.16.1>127.0.0.1:18083*3",
      "138.100.31.225>127.0.0.1:18084*5",
  };
  absl::StatusOr<CommandResult> traffic = ns->Run(
      {kTraffic, "--listen=127.0.0.1:18081,[::]:18082,[::]:18083,127.0.0.1:18084",
       "--connect=" + absl::StrJoin(connections, ","), "--timeout=20"},
      absl::Seconds(30));
  ASSERT_TRUE(traffic.ok()) << traffic.status();
  ASSERT_EQ(traffic->exit_code, 0) << traffic->stdout_text << traffic->stderr_text;
  EXPECT_EQ(traffic->stdout_text, "connections made=25 accepted=25\n");

  absl::StatusOr<MetricsText> metrics =
      exporter->ScrapeWhenCounted({"18081", "18082", "18083"}, 20);
  ASSERT_TRUE(metrics.ok()) << metrics.status();

  const std::map<std::pair<std::string, std::string>, std::pair<double, double>> expected = {
      // (country, port) -> (connections, unique addresses)
      {{"GB", "18081"}, {4, 2}},      {{"ES", "18081"}, {2, 1}},
      {{"private", "18081"}, {2, 1}}, {{"US", "18082"}, {4, 1}},
      {{"BR", "18082"}, {1, 1}},      {{"unknown", "18082"}, {2, 1}},
      {{"GB", "18083"}, {2, 1}},      {{"JP", "18083"}, {3, 1}},
  };
  double total = 0;
  for (const auto& [series, counts] : expected) {
    const auto& [country, port] = series;
    EXPECT_EQ(Connections(*metrics, country, port), counts.first) << country << " " << port;
    EXPECT_EQ(Uniques(*metrics, country, port), counts.second) << country << " " << port;
    total += counts.first;
  }
  // Nothing else on the watched ports, nothing at all on the filtered one.
  double watched = 0;
  for (const char* port : {"18081", "18082", "18083"}) {
    watched += metrics->Sum("ebpf_geoip_accepted_connections_total", {{"port", port}});
  }
  EXPECT_EQ(watched, total);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {{"port", "18084"}}), 0);
  EXPECT_EQ(metrics->Value("ebpf_geoip_events_lost_total"), 0);
  EXPECT_EQ(metrics->Value("ebpf_geoip_probe_info", {{"mode", "tracepoint"}}), 1);

  // Counters keep counting: more connections add exactly to what is there.
  traffic = ns->Run({kTraffic, "--listen=127.0.0.1:18081",
                     "--connect=81.2.69.142>127.0.0.1:18081*5", "--timeout=20"},
                    absl::Seconds(30));
  ASSERT_TRUE(traffic.ok() && traffic->exit_code == 0);
  metrics = exporter->ScrapeWhenCounted({"18081", "18082", "18083"}, total + 5);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(Connections(*metrics, "GB", "18081"), 9);
  EXPECT_EQ(Uniques(*metrics, "GB", "18081"), 2);

  // SIGTERM detaches the probe and exits 0.
  ASSERT_TRUE(exporter->process().Signal(SIGTERM).ok());
  absl::StatusOr<int> exit_code = exporter->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << exporter->process().Stderr();
}

TEST_F(EndToEnd, CountsEveryPortByDefault) {
  absl::StatusOr<RunningExporter> exporter = RunningExporter::Start({});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("138.100.31.225").ok());
  absl::StatusOr<CommandResult> traffic =
      ns->Run({kTraffic, "--listen=127.0.0.1:18091,127.0.0.1:28092",
               "--connect=138.100.31.225>127.0.0.1:18091*2,138.100.31.225>127.0.0.1:28092*3",
               "--timeout=20"},
              absl::Seconds(30));
  ASSERT_TRUE(traffic.ok() && traffic->exit_code == 0);
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18091", "28092"}, 5);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(Connections(*metrics, "ES", "18091"), 2);
  EXPECT_EQ(Connections(*metrics, "ES", "28092"), 3);
}

TEST_F(EndToEnd, AutoFallsBackToTheTracepointAndSaysWhy) {
  absl::StatusOr<RunningExporter> exporter = RunningExporter::Start({"--probe=auto"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<MetricsText> metrics = exporter->Scrape();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // This machine's kernel has neither kprobes nor BPF trampolines.
  EXPECT_EQ(metrics->Value("ebpf_geoip_probe_info", {{"mode", "tracepoint"}}), 1);
  const std::string log = exporter->process().Stderr();
  EXPECT_TRUE(absl::StrContains(log, "probe fexit: load failed")) << log;
  EXPECT_TRUE(absl::StrContains(log, "probe kprobe: attach failed")) << log;
  EXPECT_TRUE(absl::StrContains(log, "probe tracepoint: attached")) << log;
}

// Runs the exporter expecting it to refuse to start; returns its stderr.
std::string FailingRun(std::vector<std::string> argv) {
  absl::StatusOr<CommandResult> result = RunCommand(argv, absl::Seconds(20));
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return "";
  EXPECT_EQ(result->exit_code, 1) << result->stderr_text;
  // One line that says what is wrong.
  EXPECT_EQ(std::count(result->stderr_text.begin(), result->stderr_text.end(), '\n') >= 1,
            true);
  return result->stderr_text;
}

TEST_F(EndToEnd, ForcedKprobeFailsClearlyOnThisKernel) {
  const std::string log = FailingRun({kExporter, "--probe=kprobe",
                                      "--web.listen-address=127.0.0.1:0",
                                      "--geoip.database=" + kDatabase});
  EXPECT_TRUE(absl::StrContains(log, "no probe mode could attach")) << log;
  EXPECT_TRUE(absl::StrContains(log, "CONFIG_KPROBES")) << log;
  EXPECT_TRUE(absl::StrContains(log, "--probe=auto")) << log;
}

TEST_F(EndToEnd, ForcedFexitFailsClearlyOnThisKernel) {
  const std::string log = FailingRun({kExporter, "--probe=fexit",
                                      "--web.listen-address=127.0.0.1:0",
                                      "--geoip.database=" + kDatabase});
  EXPECT_TRUE(absl::StrContains(log, "fentry/fexit")) << log;
}

TEST_F(EndToEnd, RefusesToStartWithoutPrivileges) {
  const std::string log =
      FailingRun({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=-all", kExporter, "--web.listen-address=127.0.0.1:0",
                  "--geoip.database=" + kDatabase});
  EXPECT_TRUE(absl::StrContains(log, "CAP_BPF")) << log;
  EXPECT_TRUE(absl::StrContains(log, "sudo")) << log;
}

TEST_F(EndToEnd, RefusesAMissingOrCorruptDatabase) {
  std::string log = FailingRun({kExporter, "--geoip.database=/nonexistent/x.mmdb",
                                "--web.listen-address=127.0.0.1:0"});
  EXPECT_TRUE(absl::StrContains(log, "/nonexistent/x.mmdb")) << log;
  EXPECT_TRUE(absl::StrContains(log, "--geoip.database")) << log;

  const std::string corrupt = std::string(GEOIP_BINARY_DIR) + "/e2e-corrupt.mmdb";
  ASSERT_EQ(system(("head -c 4096 " + kDatabase + " > " + corrupt).c_str()), 0);
  log = FailingRun({kExporter, "--geoip.database=" + corrupt,
                    "--web.listen-address=127.0.0.1:0"});
  EXPECT_TRUE(absl::StrContains(log, corrupt)) << log;
  unlink(corrupt.c_str());
}

TEST_F(EndToEnd, RefusesAPortInUse) {
  absl::StatusOr<RunningExporter> first = RunningExporter::Start({});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string log =
      FailingRun({kExporter, absl::StrCat("--web.listen-address=127.0.0.1:", first->port()),
                  "--geoip.database=" + kDatabase});
  EXPECT_TRUE(absl::StrContains(log, "already in use")) << log;
}

TEST_F(EndToEnd, RefusesBadFlagsBeforeLoadingAnything) {
  EXPECT_TRUE(absl::StrContains(FailingRun({kExporter, "--ports=8081,70000"}), "--ports"));
  EXPECT_TRUE(absl::StrContains(FailingRun({kExporter, "--probe=uprobe"}), "--probe"));
  EXPECT_TRUE(absl::StrContains(FailingRun({kExporter, "--web.listen-address=[::1]:9"}),
                                "IPv6"));
  EXPECT_TRUE(absl::StrContains(FailingRun({kExporter, "--no-such-flag=1"}), "unknown flag"));
}

TEST_F(EndToEnd, HelpAndVersionUseTheFlagNamesUsersType) {
  absl::StatusOr<CommandResult> help = RunCommand({kExporter, "--help"}, absl::Seconds(5));
  ASSERT_TRUE(help.ok());
  EXPECT_EQ(help->exit_code, 0);
  for (const char* flag : {"--web.listen-address", "--web.telemetry-path", "--geoip.database",
                           "--ports", "--probe", "Examples:"}) {
    EXPECT_TRUE(absl::StrContains(help->stdout_text, flag)) << flag;
  }
  EXPECT_FALSE(absl::StrContains(help->stdout_text, "web_listen_address"));
  absl::StatusOr<CommandResult> version =
      RunCommand({kExporter, "--version"}, absl::Seconds(5));
  ASSERT_TRUE(version.ok());
  EXPECT_TRUE(absl::StartsWith(version->stdout_text, "ebpf_geoip_exporter, version "))
      << version->stdout_text;
  EXPECT_TRUE(absl::StrContains(version->stdout_text, "(branch: ")) << version->stdout_text;
}

TEST_F(EndToEnd, ServesLandingAndHealthPages) {
  absl::StatusOr<RunningExporter> exporter = RunningExporter::Start({});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<HttpResponse> health =
      HttpGet("127.0.0.1", exporter->port(), "/-/healthy", absl::Seconds(5));
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  absl::StatusOr<HttpResponse> landing =
      HttpGet("127.0.0.1", exporter->port(), "/", absl::Seconds(5));
  ASSERT_TRUE(landing.ok());
  EXPECT_EQ(landing->status, 200);
  EXPECT_TRUE(absl::StrContains(landing->body, "href=\"/metrics\"")) << landing->body;
  absl::StatusOr<HttpResponse> missing =
      HttpGet("127.0.0.1", exporter->port(), "/nope", absl::Seconds(5));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

}  // namespace
}  // namespace geoip
