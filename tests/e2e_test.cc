// End to end with the real probe: the exporter runs outside, services and
// clients run inside private network namespaces whose loopback holds public
// addresses, and /metrics must show exactly the connections made.
//
// Addresses and their countries in the bundled database (checked with
// mmdblookup): 81.2.69.142 and 81.2.69.143 GB, 138.100.31.225 ES, 1.0.16.1
// JP, 2001:4860:4860::8888 US, 2001:12ff::1 BR; 2c0f:fb50::1 has no entry.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "exporter/util/proc_status.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http_get.h"
#include "tests/support/kernel_hooks.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"
#include "tests/support/storm_line.h"
#include "tests/support/test_mmdb.h"

namespace geoip {
namespace {

const std::string kExporter = GEOIP_EXPORTER_BINARY;
const std::string kTraffic = GEOIP_TRAFFIC_BINARY;
const std::string kDatabase = std::string(GEOIP_SOURCE_DIR) + "/data/geo-whois-asn-country.mmdb";

// The exporter on a free loopback port with the bundled database. No
// pinning unless a test asks: a pinned probe would outlive the test and
// count into the next one.
absl::StatusOr<ExporterProcess> StartExporter(std::vector<std::string> flags) {
  std::vector<std::string> argv = {kExporter, "--geoip.database=" + kDatabase,
                                   "--bpf.drain-interval=100ms", "--bpf.pin-path="};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return ExporterProcess::Start(argv);
}

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to load the eBPF probe";
  }
};

// Connections from country to port, whichever service accepted them.
double Connections(const MetricsText& metrics, const std::string& country,
                   const std::string& port) {
  return metrics.Sum("ebpf_geoip_accepted_connections_total",
                     {{"country", country}, {"port", port}});
}

// Distinct peers from country on port (one service per port in these tests).
double Uniques(const MetricsText& metrics, const std::string& country, const std::string& port) {
  return metrics.Sum("ebpf_geoip_unique_source_addresses", {{"country", country}, {"port", port}});
}

TEST_F(EndToEnd, CountsConnectionsExactlyByCountryAndPort) {
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18081,18082,18083"});
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
      "81.2.69.142>127.0.0.1:18081*3",      "81.2.69.143>127.0.0.1:18081*1",
      "138.100.31.225>127.0.0.1:18081*2",   "127.0.0.1>127.0.0.1:18081*2",
      "2001:4860:4860::8888>[::1]:18082*4", "2001:12ff::1>[::1]:18082*1",
      "2c0f:fb50::1>[::1]:18082*2",         "81.2.69.142>127.0.0.1:18083*2",
      "1.0.16.1>127.0.0.1:18083*3",         "138.100.31.225>127.0.0.1:18084*5",
  };
  absl::StatusOr<CommandResult> traffic =
      ns->Run({kTraffic, "--listen=127.0.0.1:18081,[::]:18082,[::]:18083,127.0.0.1:18084",
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
      {{"GB", "18081"}, {4, 2}}, {{"ES", "18081"}, {2, 1}}, {{"private", "18081"}, {2, 1}},
      {{"US", "18082"}, {4, 1}}, {{"BR", "18082"}, {1, 1}}, {{"unknown", "18082"}, {2, 1}},
      {{"GB", "18083"}, {2, 1}}, {{"JP", "18083"}, {3, 1}},
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
  EXPECT_EQ(metrics->Value("ebpf_geoip_overflow_connections_total"), 0);
  // Whatever --bpf.probe=auto should pick on this kernel.
  EXPECT_EQ(metrics->Value("ebpf_geoip_probe_info", {{"mode", ExpectedAutoMode()}}), 1)
      << exporter->process().Stderr();

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
  absl::StatusOr<ExporterProcess> exporter = StartExporter({});
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

TEST_F(EndToEnd, AutoChoosesTheFirstModeTheKernelOffersAndSaysWhy) {
  const std::string expected = ExpectedAutoMode();
  ASSERT_FALSE(expected.empty()) << "this kernel offers no hook the probe can use";
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.probe=auto"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<MetricsText> metrics = exporter->Scrape();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value("ebpf_geoip_probe_info", {{"mode", expected}}), 1);
  // Each mode before it in the documented order says why it failed; none
  // after it is tried.
  const std::string log = exporter->process().Stderr();
  bool before = true;
  for (const std::string& mode : AutoOrder()) {
    if (mode == expected) {
      EXPECT_TRUE(absl::StrContains(log, "probe " + mode + ": attached")) << log;
      before = false;
    } else if (before) {
      EXPECT_TRUE(absl::StrContains(log, "probe " + mode + ": load failed") ||
                  absl::StrContains(log, "probe " + mode + ": attach failed"))
          << log;
    } else {
      EXPECT_FALSE(absl::StrContains(log, "probe " + mode + ":")) << log;
    }
  }
}

// What the exporter printed when it refused to start.
struct Refusal {
  std::string error;  // its last line, the only one naming the program
  std::string log;    // all of its stderr
};

// Runs the exporter expecting it to refuse to start: it exits 1, and its last
// line, one line that starts with its name, says what is wrong (what came
// before is what it did until then). Callers check what that line says.
Refusal Refuse(const std::vector<std::string>& argv) {
  absl::StatusOr<CommandResult> result = RunCommand(argv, absl::Seconds(20));
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  const std::string& log = result->stderr_text;
  EXPECT_EQ(result->exit_code, 1) << log;
  const std::string prefix = "ebpf_geoip_exporter: ";
  const size_t at = log.rfind(prefix);
  EXPECT_NE(at, std::string::npos) << log;
  if (at == std::string::npos) return {"", log};
  EXPECT_TRUE(at == 0 || log[at - 1] == '\n') << log;
  const std::string error = log.substr(at);
  EXPECT_EQ(error.find('\n'), error.size() - 1) << "not one last line: " << log;
  EXPECT_EQ(log.find(prefix), at) << "more than one line names the program: " << log;
  return {error, log};
}

std::string FailingRun(const std::vector<std::string>& argv) { return Refuse(argv).error; }

TEST_F(EndToEnd, RefusesToStartWithoutPrivileges) {
  const std::string log =
      FailingRun({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                  kExporter, "--web.listen-address=127.0.0.1:0", "--geoip.database=" + kDatabase});
  EXPECT_TRUE(absl::StrContains(log, "CAP_BPF")) << log;
  EXPECT_TRUE(absl::StrContains(log, "sudo")) << log;
}

TEST_F(EndToEnd, RefusesAMissingOrCorruptDatabase) {
  std::string log = FailingRun(
      {kExporter, "--geoip.database=/nonexistent/x.mmdb", "--web.listen-address=127.0.0.1:0"});
  EXPECT_TRUE(absl::StrContains(log, "/nonexistent/x.mmdb")) << log;
  EXPECT_TRUE(absl::StrContains(log, "--geoip.database")) << log;

  const std::string corrupt = std::string(GEOIP_BINARY_DIR) + "/e2e-corrupt.mmdb";
  ASSERT_EQ(system(("head -c 4096 " + kDatabase + " > " + corrupt).c_str()), 0);
  log = FailingRun({kExporter, "--geoip.database=" + corrupt, "--web.listen-address=127.0.0.1:0"});
  EXPECT_TRUE(absl::StrContains(log, corrupt)) << log;
  // What is wrong, and what to do about it.
  EXPECT_TRUE(absl::StrContains(log, "not a valid MaxMind DB file")) << log;
  EXPECT_TRUE(absl::StrContains(log, "--geoip.database=PATH")) << log;
  EXPECT_TRUE(absl::StrContains(log, "scripts/update-geoip-db")) << log;
  unlink(corrupt.c_str());
}

TEST_F(EndToEnd, ADatabaseWithoutABuildDateShowsNoAgeRatherThan1969) {
  absl::StatusOr<TestMmdbDirectory> mmdb = TestMmdbDirectory::Create();
  ASSERT_TRUE(mmdb.ok()) << mmdb.status();
  absl::StatusOr<ExporterProcess> exporter =
      ExporterProcess::Start({kExporter, "--geoip.database=" + mmdb->no_date(),
                              "--geoip.asn-database=none", "--connections.source=simulated"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<MetricsText> metrics = exporter->Scrape();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value("ebpf_geoip_database_info",
                           {{"path", mmdb->no_date()}, {"type", "country ipvAll"}}),
            1);
  EXPECT_FALSE(metrics->Value("ebpf_geoip_database_build_timestamp_seconds").has_value());
  EXPECT_FALSE(absl::StrContains(exporter->process().Stderr(), "1969"))
      << exporter->process().Stderr();
  EXPECT_TRUE(absl::StrContains(
      exporter->process().Stderr(),
      "built at an unknown time: its build epoch 18446744073709551615 is no date"))
      << exporter->process().Stderr();
}

// A clone under /root (mode 700): once the exporter has dropped to nobody,
// only the directory handles it took before can reach its databases.
TEST_F(EndToEnd, ReloadsADatabaseOnlyRootCanReachAfterDroppingToNobody) {
  std::string home = std::string(GEOIP_BINARY_DIR) + "/e2e-root-only-XXXXXX";
  ASSERT_NE(mkdtemp(home.data()), nullptr);
  absl::Cleanup remove = [&] { std::filesystem::remove_all(home); };
  ASSERT_EQ(chmod(home.c_str(), 0700), 0);
  const std::string data = home + "/data";
  ASSERT_EQ(mkdir(data.c_str(), 0755), 0);
  std::filesystem::copy_file(kDatabase, data + "/country.mmdb");
  // The country database only: the QEMU guests have no ASN file, and
  // DatabaseWatcher's unit test reloads that one.
  absl::StatusOr<ExporterProcess> exporter = ExporterProcess::Start(
      {kExporter, "--geoip.database=" + data + "/country.mmdb", "--geoip.asn-database=none",
       "--connections.source=simulated", "--privileges.runas=nobody"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  auto reloads = [&](const char* result) {
    absl::StatusOr<MetricsText> metrics = exporter->Scrape();
    return metrics.ok() ? metrics->Value("ebpf_geoip_database_reloads_total", {{"result", result}})
                              .value_or(-1)
                        : -1;
  };
  auto wait_for_reloads = [&](const char* result, double value) {
    for (int i = 0; i < 200 && reloads(result) < value; ++i) absl::SleepFor(absl::Milliseconds(50));
    return reloads(result) == value;
  };
  // A new file renamed over the country database, as geoipupdate does.
  absl::SleepFor(absl::Milliseconds(300));  // the watch is set up in its thread
  std::filesystem::copy_file(kDatabase, data + "/country.mmdb.new");
  ASSERT_EQ(rename((data + "/country.mmdb.new").c_str(), (data + "/country.mmdb").c_str()), 0);
  EXPECT_TRUE(wait_for_reloads("success", 1)) << exporter->process().Stderr();
  ASSERT_TRUE(exporter->process().Signal(SIGHUP).ok());
  EXPECT_TRUE(wait_for_reloads("success", 2)) << exporter->process().Stderr();
  EXPECT_EQ(reloads("failure"), 0) << exporter->process().Stderr();
  const std::string log = exporter->process().Stderr();
  EXPECT_FALSE(absl::StrContains(log, "not watching")) << log;
  // The database keeps the name the user gave it.
  absl::StatusOr<MetricsText> metrics = exporter->Scrape();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value("ebpf_geoip_database_info",
                           {{"path", data + "/country.mmdb"}, {"type", "country ipvAll"}}),
            1);
}

TEST_F(EndToEnd, RefusesAPortInUse) {
  absl::StatusOr<ExporterProcess> first = StartExporter({});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string log =
      FailingRun({kExporter, absl::StrCat("--web.listen-address=127.0.0.1:", first->port()),
                  "--geoip.database=" + kDatabase});
  EXPECT_TRUE(absl::StrContains(log, "already in use")) << log;
}

// The command line, through the binary. No probe and no root: these run in
// an unprivileged ctest -L e2e too. The rules themselves are table-tested in
// exporter/flags_test.cc.
TEST(CommandLine, RefusesBadFlagsBeforeLoadingAnything) {
  // The error is all it prints: nothing was opened or loaded before.
  for (const auto& [flag, says] : std::vector<std::pair<std::string, std::string>>{
           {"--bpf.ports=8081,70000", "ebpf_geoip_exporter: --bpf.ports: invalid port list item"},
           {"--bpf.probe=uprobe", "ebpf_geoip_exporter: --bpf.probe: unknown probe mode"},
           {"--bpf.drain-interval=x",
            "ebpf_geoip_exporter: --bpf.drain-interval: bad value \"x\": expected a duration"},
           {"--ports=8081,70000", "ebpf_geoip_exporter: --ports: invalid port list item"},
           {"--no-such-flag=1", "ebpf_geoip_exporter: unknown flag --no-such-flag"}}) {
    const Refusal refusal = Refuse({kExporter, flag});
    EXPECT_TRUE(absl::StartsWith(refusal.error, says)) << flag << ": " << refusal.log;
    EXPECT_EQ(refusal.log, refusal.error) << flag;
  }
  // The listen address is checked when the exporter binds it, after opening
  // the database and before touching the kernel. 192.0.2.1 (TEST-NET-1) is
  // on no interface of this host.
  const Refusal unbound = Refuse({kExporter, "--web.listen-address=192.0.2.1:9"});
  EXPECT_TRUE(absl::StrContains(unbound.error, "no interface of this host has that address"))
      << unbound.log;
  EXPECT_FALSE(absl::StrContains(unbound.log, "probe")) << unbound.log;
}

TEST(CommandLine, DeprecatedNamesStillWorkAndSayWhatToUse) {
  absl::StatusOr<ExporterProcess> exporter = ExporterProcess::Start(
      {kExporter, "--geoip.database=" + kDatabase, "--source=simulated", "--runas=nobody"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_TRUE(absl::StartsWith(
      exporter->process().Stderr(),
      "ebpf_geoip_exporter: warning: --source is deprecated and will be removed in 0.3.0; "
      "use --connections.source\n"
      "ebpf_geoip_exporter: warning: --runas is deprecated and will be removed in 0.3.0; "
      "use --privileges.runas\n"))
      << exporter->process().Stderr();
  EXPECT_TRUE(absl::StrContains(exporter->process().Stderr(), "source: simulated"))
      << exporter->process().Stderr();
  ASSERT_TRUE(exporter->process().Signal(SIGTERM).ok());
  absl::StatusOr<int> exit_code = exporter->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << exporter->process().Stderr();
}

TEST(CommandLine, HelpAndVersionUseTheFlagNamesUsersType) {
  absl::StatusOr<CommandResult> help = RunCommand({kExporter, "--help"}, absl::Seconds(5));
  ASSERT_TRUE(help.ok());
  EXPECT_EQ(help->exit_code, 0);
  EXPECT_EQ(help->stderr_text, "");
  for (const char* flag : {"--web.listen-address", "--web.telemetry-path", "--geoip.database",
                           "--bpf.ports", "--bpf.probe", "--connections.source",
                           "--privileges.runas", "Deprecated names", "Examples:"}) {
    EXPECT_TRUE(absl::StrContains(help->stdout_text, flag)) << flag;
  }
  EXPECT_FALSE(absl::StrContains(help->stdout_text, "web_listen_address"));
  absl::StatusOr<CommandResult> version = RunCommand({kExporter, "--version"}, absl::Seconds(5));
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(version->stdout_text, "ebpf_geoip_exporter, version "))
      << version->stdout_text;
  EXPECT_TRUE(absl::StrContains(version->stdout_text, "(branch: ")) << version->stdout_text;
}

TEST_F(EndToEnd, ServesLandingAndHealthPages) {
  absl::StatusOr<ExporterProcess> exporter = StartExporter({});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<HttpReply> health =
      HttpGet("127.0.0.1", exporter->port(), "/-/healthy", absl::Seconds(5));
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  absl::StatusOr<HttpReply> landing = HttpGet("127.0.0.1", exporter->port(), "/", absl::Seconds(5));
  ASSERT_TRUE(landing.ok());
  EXPECT_EQ(landing->status, 200);
  EXPECT_TRUE(absl::StrContains(landing->body, "href=\"/metrics\"")) << landing->body;
  absl::StatusOr<HttpReply> missing =
      HttpGet("127.0.0.1", exporter->port(), "/nope", absl::Seconds(5));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

// The effective capabilities of process `pid`; all bits set if unreadable.
uint64_t EffectiveCapabilities(int pid) {
  absl::StatusOr<ProcStatus> status = ProcStatus::Read(pid);
  return status.ok() ? status->Capabilities("CapEff").value_or(~uint64_t{0}) : ~uint64_t{0};
}

TEST_F(EndToEnd, DropsToNobodyWithNoCapabilitiesAndKeepsCounting) {
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18111"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<ProcStatus> status = ProcStatus::Read(exporter->process().pid());
  ASSERT_TRUE(status.ok()) << status.status();
  // Real, effective, saved and filesystem uid all nobody.
  EXPECT_EQ(status->Field("Uid"), "65534\t65534\t65534\t65534") << exporter->process().Stderr();
  // Nothing, or on kernels that need it to read its maps CAP_BPF alone.
  const uint64_t kept = MapReadsNeedCapBpf() ? uint64_t{1} << kCapBpf : 0;
  EXPECT_EQ(status->Capabilities("CapEff"), kept);

  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  double expected = 0;
  for (int round = 1; round <= 3; ++round) {
    absl::StatusOr<CommandResult> traffic =
        ns->Run({kTraffic, "--listen=127.0.0.1:18111",
                 absl::StrCat("--connect=81.2.69.142>127.0.0.1:18111*", round * 10)},
                absl::Seconds(30));
    ASSERT_TRUE(traffic.ok() && traffic->exit_code == 0);
    expected += round * 10;
    absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18111"}, expected);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    EXPECT_EQ(Connections(*metrics, "GB", "18111"), expected);
    // Still unprivileged while it counts.
    EXPECT_EQ(EffectiveCapabilities(exporter->process().pid()), kept);
  }
}

// A pin directory of this test's own, removed (detaching the probe) at the end.
class PinDirectory {
 public:
  PinDirectory() : path_(absl::StrCat("/sys/fs/bpf/geoip-test-", getpid())) { Remove(); }
  ~PinDirectory() { Remove(); }
  const std::string& path() const { return path_; }

 private:
  void Remove() { (void)RunCommand({"rm", "-rf", path_}, absl::Seconds(10)); }
  std::string path_;
};

TEST_F(EndToEnd, PinnedProbeCountsConnectionsMadeWhileTheExporterIsStopped) {
  PinDirectory pins;
  const std::vector<std::string> flags = {"--bpf.ports=18131", "--bpf.pin-path=" + pins.path()};
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  ASSERT_TRUE(ns->AddAddress("138.100.31.225").ok());
  auto connect = [&](const std::string& plan) {
    absl::StatusOr<CommandResult> traffic =
        ns->Run({kTraffic, "--listen=127.0.0.1:18131", "--connect=" + plan}, absl::Seconds(30));
    return traffic.ok() && traffic->exit_code == 0;
  };
  {
    absl::StatusOr<ExporterProcess> first = StartExporter(flags);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE(connect("81.2.69.142>127.0.0.1:18131*3"));
    absl::StatusOr<MetricsText> metrics = first->ScrapeWhenCounted({"18131"}, 3);
    ASSERT_TRUE(metrics.ok());
    EXPECT_EQ(Connections(*metrics, "GB", "18131"), 3);
    ASSERT_TRUE(first->process().Signal(SIGTERM).ok());
    absl::StatusOr<int> exit_code = first->process().Wait(absl::Seconds(10));
    ASSERT_TRUE(exit_code.ok() && *exit_code == 0) << first->process().Stderr();
  }
  // No exporter runs now; the pinned probe goes on counting.
  ASSERT_TRUE(connect("81.2.69.142>127.0.0.1:18131*4,138.100.31.225>127.0.0.1:18131*2"));

  absl::StatusOr<ExporterProcess> second = StartExporter(flags);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(absl::StrContains(second->process().Stderr(), "took over"))
      << second->process().Stderr();
  absl::StatusOr<MetricsText> metrics = second->ScrapeWhenCounted({"18131"}, 6);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(Connections(*metrics, "GB", "18131"), 4);
  EXPECT_EQ(Connections(*metrics, "ES", "18131"), 2);
  // And it counts what comes after, once.
  ASSERT_TRUE(connect("138.100.31.225>127.0.0.1:18131*5"));
  metrics = second->ScrapeWhenCounted({"18131"}, 11);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(Connections(*metrics, "ES", "18131"), 7);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {{"port", "18131"}}), 11);
}

TEST_F(EndToEnd, TwoExportersCannotShareOnePinPath) {
  PinDirectory pins;
  absl::StatusOr<ExporterProcess> first = StartExporter({"--bpf.pin-path=" + pins.path()});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<CommandResult> second =
      RunCommand({kExporter, "--web.listen-address=127.0.0.1:0", "--geoip.database=" + kDatabase,
                  "--bpf.pin-path=" + pins.path()},
                 absl::Seconds(20));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(second->stderr_text, "another ebpf_geoip_exporter"))
      << second->stderr_text;
}

TEST_F(EndToEnd, FullAddressMapOverflowsIntoExactPerPortTotals) {
  // Room for 4 peers per drain; 120 distinct peers arrive in a burst that
  // early draining (at half full, checked every 50 ms) cannot keep up with.
  absl::StatusOr<ExporterProcess> exporter =
      StartExporter({"--bpf.ports=18141", "--bpf.max-addresses=4", "--bpf.drain-interval=5s"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  std::vector<std::string> plan;
  for (int host = 1; host <= 120; ++host) {
    const std::string address = absl::StrCat("81.2.69.", host);
    ASSERT_TRUE(ns->AddAddress(address).ok());
    plan.push_back(absl::StrCat(address, ">127.0.0.1:18141*", host % 3 + 1));
  }
  absl::StatusOr<CommandResult> traffic =
      ns->Run({kTraffic, "--listen=127.0.0.1:18141", "--connect=" + absl::StrJoin(plan, ",")},
              absl::Seconds(30));
  ASSERT_TRUE(traffic.ok() && traffic->exit_code == 0);
  EXPECT_EQ(traffic->stdout_text, "connections made=240 accepted=240\n");

  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18141"}, 240);
  ASSERT_TRUE(metrics.ok());
  const double tracked = Connections(*metrics, "GB", "18141");
  const double overflow = Connections(*metrics, "overflow", "18141");
  EXPECT_EQ(tracked + overflow, 240);  // exact per port
  EXPECT_GT(overflow, 0);
  EXPECT_LT(Uniques(*metrics, "GB", "18141"), 120);
  EXPECT_EQ(metrics->Value("ebpf_geoip_overflow_connections_total"), overflow);
  // The deprecated name says the same until 0.3.0.
  EXPECT_EQ(metrics->Value("ebpf_geoip_events_lost_total"), overflow);
}

TEST_F(EndToEnd, ReloadsTheDatabaseUnderLoadAndRejectsABrokenOne) {
  absl::StatusOr<TestMmdbDirectory> databases = TestMmdbDirectory::Create();
  ASSERT_TRUE(databases.ok()) << databases.status();
  // maxmind.mmdb has no entry for 138.100.0.0/16; flat.mmdb places it in ES.
  const std::string live = databases->path() + "/live.mmdb";
  // The exporter reloads as nobody, so the directory must be readable.
  ASSERT_EQ(chmod(databases->path().c_str(), 0755), 0);
  auto replace_with = [&](const std::string& command) {
    // Written beside it and renamed over it, as geoipupdate does.
    return system((command + " > " + live + ".tmp && mv " + live + ".tmp " + live).c_str()) == 0;
  };
  ASSERT_TRUE(replace_with("cat " + databases->path() + "/maxmind.mmdb"));
  absl::StatusOr<ExporterProcess> exporter =
      StartExporter({"--bpf.ports=18151,18152", "--geoip.database=" + live});
  ASSERT_TRUE(exporter.ok()) << exporter.status();

  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("138.100.31.225").ok());
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  // A steady load on 18152 all along, bounded in count and time. Sized for
  // the QEMU kernels too (tests/kernel_matrix/run_vm_e2e.sh), where software
  // emulation accepts a few hundred connections a second.
  constexpr int kLoad = 10000;
  absl::StatusOr<ChildProcess> load = ns->Start({kTraffic, "--storm=81.2.69.142>127.0.0.1:18152",
                                                 absl::StrCat("--count=", kLoad), "--timeout=90"});
  ASSERT_TRUE(load.ok()) << load.status();

  auto wave = [&](int count) {
    absl::StatusOr<CommandResult> traffic =
        ns->Run({kTraffic, "--listen=127.0.0.1:18151",
                 absl::StrCat("--connect=138.100.31.225>127.0.0.1:18151*", count)},
                absl::Seconds(30));
    return traffic.ok() && traffic->exit_code == 0;
  };
  auto reloads = [&](const char* result) {
    absl::StatusOr<MetricsText> metrics = exporter->Scrape();
    return metrics.ok() ? metrics->Value("ebpf_geoip_database_reloads_total", {{"result", result}})
                              .value_or(-1)
                        : -1;
  };
  auto wait_for_reloads = [&](const char* result, double value) {
    for (int i = 0; i < 100 && reloads(result) < value; ++i) absl::SleepFor(absl::Milliseconds(50));
    return reloads(result) == value;
  };

  ASSERT_TRUE(wave(10));
  // A truncated replacement is rejected and the old database stays.
  ASSERT_TRUE(replace_with("head -c 1000 " + databases->path() + "/flat.mmdb"));
  ASSERT_TRUE(wait_for_reloads("failure", 1));
  ASSERT_TRUE(wave(10));
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18151"}, 20);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(Connections(*metrics, "unknown", "18151"), 20);
  // A good replacement is swapped in without a restart.
  ASSERT_TRUE(replace_with("cat " + databases->path() + "/flat.mmdb"));
  ASSERT_TRUE(wait_for_reloads("success", 1));
  ASSERT_TRUE(wave(5));
  // SIGHUP reloads too.
  ASSERT_TRUE(exporter->process().Signal(SIGHUP).ok());
  ASSERT_TRUE(wait_for_reloads("success", 2));
  ASSERT_TRUE(wave(5));
  metrics = exporter->ScrapeWhenCounted({"18151"}, 30);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(Connections(*metrics, "unknown", "18151"), 20);
  EXPECT_EQ(Connections(*metrics, "ES", "18151"), 10);
  EXPECT_EQ(metrics->Value("ebpf_geoip_database_reloads_total", {{"result", "failure"}}), 1);

  // The load ran through the reloads, and every connection of it counted.
  absl::StatusOr<int> load_exit = load->Wait(absl::Seconds(90));
  ASSERT_TRUE(load_exit.ok() && *load_exit == 0) << load->Stderr();
  absl::StatusOr<StormLine> storm = ParseStormLine(load->Stdout());
  ASSERT_TRUE(storm.ok()) << storm.status();
  EXPECT_EQ(storm->made, kLoad);
  metrics = exporter->ScrapeWhenCounted({"18152"}, storm->accepted);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {{"port", "18152"}}),
            storm->accepted);
  EXPECT_EQ(metrics->Value("ebpf_geoip_lookup_failures_total"), 0);
}

// Every probe mode, forced with --bpf.probe: where the kernel offers its hook it
// counts exactly, also for servers that were already blocked in accept()
// when it attached; where it does not, it refuses clearly and leaves nothing.
class EndToEndMode : public EndToEnd, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    EndToEnd::SetUp();
    if (IsSkipped()) return;
    if (!KernelOffers(GetParam())) {
      GTEST_SKIP() << "this kernel does not offer the " << GetParam()
                   << " hook (EndToEndMissingMode covers it)";
    }
  }

  absl::StatusOr<ExporterProcess> Start(std::vector<std::string> flags) {
    flags.push_back("--bpf.probe=" + GetParam());
    return StartExporter(flags);
  }

  // What the fexit and kretprobe hooks did not see; always 0 for the tracepoint.
  static double AcceptMisses(const MetricsText& metrics) {
    return metrics.Value("ebpf_geoip_probe_accept_misses_total").value_or(-1);
  }
};

// The hint each mode's refusal names, in the user's terms.
std::string HintFor(const std::string& mode) {
  if (mode == "fexit") return "fentry/fexit";
  if (mode == "kretprobe") return "kretprobe";
  return "inet_sock_set_state";
}

class EndToEndMissingMode : public EndToEnd, public ::testing::WithParamInterface<std::string> {};

TEST_P(EndToEndMissingMode, FailsClearlyAndLeavesNoPins) {
  if (KernelOffers(GetParam())) {
    GTEST_SKIP() << "this kernel offers the " << GetParam() << " hook (EndToEndMode covers it)";
  }
  PinDirectory pins;
  const std::string log =
      FailingRun({kExporter, "--bpf.probe=" + GetParam(), "--web.listen-address=127.0.0.1:0",
                  "--geoip.database=" + kDatabase, "--bpf.pin-path=" + pins.path()});
  EXPECT_TRUE(absl::StrContains(log, "no probe mode could attach")) << log;
  EXPECT_TRUE(absl::StrContains(log, HintFor(GetParam()))) << log;
  EXPECT_TRUE(absl::StrContains(log, "try --bpf.probe=auto")) << log;
  // Its program may have loaded (and its maps been pinned) before attaching
  // failed: nothing of it may stay behind.
  EXPECT_NE(access(pins.path().c_str(), F_OK), 0) << pins.path() << " still exists";
}

TEST_P(EndToEndMode, CountsExactly) {
  absl::StatusOr<ExporterProcess> exporter = Start({"--bpf.ports=18161,18162"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  for (const char* address : {"81.2.69.142", "138.100.31.225", "2001:4860:4860::8888"}) {
    ASSERT_TRUE(ns->AddAddress(address).ok()) << address;
  }
  absl::StatusOr<CommandResult> traffic =
      ns->Run({kTraffic, "--listen=127.0.0.1:18161,[::]:18162",
               "--connect=81.2.69.142>127.0.0.1:18161*4,138.100.31.225>127.0.0.1:18162*3,"
               "2001:4860:4860::8888>[::1]:18162*5",
               "--timeout=20"},
              absl::Seconds(30));
  ASSERT_TRUE(traffic.ok()) << traffic.status();
  ASSERT_EQ(traffic->exit_code, 0) << traffic->stderr_text;
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18161", "18162"}, 12);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value("ebpf_geoip_probe_info", {{"mode", GetParam()}}), 1);
  EXPECT_EQ(Connections(*metrics, "GB", "18161"), 4);
  EXPECT_EQ(Connections(*metrics, "ES", "18162"), 3);
  EXPECT_EQ(Connections(*metrics, "US", "18162"), 5);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {}), 12);
  // Every listener here started after the probe: the hook saw every accept.
  EXPECT_EQ(AcceptMisses(*metrics), 0);
}

// A server that runs before the exporter, as services do: its acceptor
// threads are already blocked in accept() when the probe attaches. `threads`
// acceptors on `port` in ns; returns once every one of them is blocked.
absl::StatusOr<ChildProcess> StartServerFirst(TestNamespace& ns, const std::string& listen,
                                              int threads) {
  absl::StatusOr<ChildProcess> server = ns.Start(
      {kTraffic, "--listen=" + listen, absl::StrCat("--acceptors=", threads), "--timeout=60"});
  if (!server.ok()) return server.status();
  // The traffic tool says "listening" once every acceptor is in accept().
  for (int i = 0; i < 200 && !absl::StrContains(server->Stderr(), "listening"); ++i) {
    if (server->Wait(absl::Milliseconds(50)).ok()) {
      return absl::FailedPreconditionError("server exited: " + server->Stderr());
    }
  }
  if (!absl::StrContains(server->Stderr(), "listening")) {
    return absl::DeadlineExceededError("server never blocked in accept(): " + server->Stderr());
  }
  return server;
}

TEST_P(EndToEndMode, CountsServersThatWereAlreadyBlockedInAccept) {
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  ASSERT_TRUE(ns->AddAddress("2001:4860:4860::8888").ok());
  // One blocking acceptor per port, started before the exporter.
  absl::StatusOr<ChildProcess> server = StartServerFirst(*ns, "127.0.0.1:18171,[::]:18172", 1);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<ExporterProcess> exporter = Start({"--bpf.ports=18171,18172"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<CommandResult> traffic = ns->Run(
      {kTraffic, "--connect=81.2.69.142>127.0.0.1:18171*3,2001:4860:4860::8888>[::1]:18172*2",
       "--timeout=20"},
      absl::Seconds(30));
  ASSERT_TRUE(traffic.ok() && traffic->exit_code == 0) << traffic.status();
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18171", "18172"}, 5);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // From the first connection on, on each port.
  EXPECT_EQ(Connections(*metrics, "GB", "18171"), 3);
  EXPECT_EQ(Connections(*metrics, "US", "18172"), 2);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {}), 5);
}

TEST_P(EndToEndMode, CountsAPreforkServerExactlyAndReportsWhatTheHookMissed) {
  // A prefork server (Apache prefork, gunicorn sync workers): 64 threads
  // blocked in accept() on one port before the exporter starts. They hold
  // kretprobe instances and their returns bypass a newly attached hook.
  constexpr int kThreads = 64, kConnections = 200;
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("138.100.31.225").ok());
  absl::StatusOr<ChildProcess> server = StartServerFirst(*ns, "127.0.0.1:18181", kThreads);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<ExporterProcess> exporter = Start({"--bpf.ports=18181"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<CommandResult> traffic =
      ns->Run({kTraffic, absl::StrCat("--connect=138.100.31.225>127.0.0.1:18181*", kConnections),
               "--timeout=30"},
              absl::Seconds(40));
  ASSERT_TRUE(traffic.ok() && traffic->exit_code == 0) << traffic.status();
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18181"}, kConnections);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(Connections(*metrics, "ES", "18181"), kConnections);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {}), kConnections);
  if (GetParam() == "tracepoint") {
    EXPECT_EQ(AcceptMisses(*metrics), 0);
  } else {
    // The first connection wakes a thread that entered accept() before the
    // hook existed: at least that one is a miss, and each is reported.
    EXPECT_GE(AcceptMisses(*metrics), 1);
    EXPECT_LE(AcceptMisses(*metrics), kConnections);
  }
}

TEST_P(EndToEndMode, PinnedHandOverCountsEveryConnectionOnce) {
  PinDirectory pins;
  const std::vector<std::string> flags = {"--bpf.ports=18191", "--bpf.pin-path=" + pins.path()};
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<ChildProcess> server = StartServerFirst(*ns, "127.0.0.1:18191", 4);
  ASSERT_TRUE(server.ok()) << server.status();
  auto connect = [&](int count) {
    absl::StatusOr<CommandResult> traffic =
        ns->Run({kTraffic, absl::StrCat("--connect=81.2.69.142>127.0.0.1:18191*", count)},
                absl::Seconds(30));
    return traffic.ok() && traffic->exit_code == 0;
  };
  {
    absl::StatusOr<ExporterProcess> first = Start(flags);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE(connect(3));
    absl::StatusOr<MetricsText> metrics = first->ScrapeWhenCounted({"18191"}, 3);
    ASSERT_TRUE(metrics.ok());
    EXPECT_EQ(Connections(*metrics, "GB", "18191"), 3);
    ASSERT_TRUE(first->process().Signal(SIGTERM).ok());
    ASSERT_TRUE(first->process().Wait(absl::Seconds(10)).ok());
  }
  ASSERT_TRUE(connect(4));  // no exporter: the pinned probe counts
  absl::StatusOr<ExporterProcess> second = Start(flags);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(connect(5));
  absl::StatusOr<MetricsText> metrics = second->ScrapeWhenCounted({"18191"}, 9);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(Connections(*metrics, "GB", "18191"), 9) << second->process().Stderr();
}

INSTANTIATE_TEST_SUITE_P(EveryMode, EndToEndMode,
                         ::testing::Values("tracepoint", "fexit", "kretprobe"),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(EveryMode, EndToEndMissingMode,
                         ::testing::Values("tracepoint", "fexit", "kretprobe"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace geoip
