// Service attribution end to end, with the real probe: every connection is
// counted under the listener that accepted it, told apart by network
// namespace, and named after its container, systemd unit or process.
// Listeners are copies of the traffic tool under other names, so their
// process names differ; clients are public addresses on the loopback of
// private namespaces.
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "exporter/listeners/service_name.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"

namespace geoip {
namespace {

const std::string kExporter = GEOIP_EXPORTER_BINARY;
const std::string kTraffic = GEOIP_TRAFFIC_BINARY;
const std::string kDatabase = std::string(GEOIP_SOURCE_DIR) + "/data/geo-whois-asn-country.mmdb";
constexpr char kConnections[] = "ebpf_geoip_accepted_connections_total";

absl::StatusOr<ExporterProcess> StartExporter(std::vector<std::string> flags) {
  std::vector<std::string> argv = {kExporter, "--geoip.database=" + kDatabase,
                                   "--bpf.drain-interval=100ms", "--bpf.pin-path="};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return ExporterProcess::Start(argv);
}

// The inode of a namespace's network namespace, as the probe reports it.
std::string NetnsInode(const TestNamespace& ns) {
  struct stat st {};
  if (stat(("/run/netns/" + ns.name()).c_str(), &st) != 0) return "?";
  return absl::StrCat(st.st_ino);
}

class Services : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to load the eBPF probe";
    dir_ = absl::StrCat(GEOIP_BINARY_DIR, "/services-e2e-", getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    listeners_.clear();  // kills them
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // The traffic tool under another name: the kernel names the process after
  // the file (its first 15 bytes).
  std::string ToolNamed(const std::string& name) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::copy_file(kTraffic, path, std::filesystem::copy_options::overwrite_existing);
    return path;
  }

  // Starts argv in ns and waits until it says "listening"; it is killed at
  // the end of the test.
  ::testing::AssertionResult Listen(TestNamespace& ns, std::vector<std::string> argv) {
    absl::StatusOr<ChildProcess> child = ns.Start(argv);
    if (!child.ok()) return ::testing::AssertionFailure() << child.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (child->Stderr().find("listening") == std::string::npos) {
      if (absl::Now() > deadline || child->Wait(absl::Milliseconds(20)).ok()) {
        return ::testing::AssertionFailure() << "no listener: " << child->Stderr();
      }
    }
    listeners_.push_back(*std::move(child));
    return ::testing::AssertionSuccess();
  }

  // A listener called `name` on 0.0.0.0:port in ns.
  ::testing::AssertionResult ListenAs(TestNamespace& ns, const std::string& name, int port) {
    return Listen(ns, {ToolNamed(name), absl::StrCat("--listen=0.0.0.0:", port), "--timeout=60"});
  }

  // `count` connections from `source` (on ns's loopback) to port in ns.
  ::testing::AssertionResult Connect(TestNamespace& ns, const std::string& source, int port,
                                     int count) {
    absl::StatusOr<CommandResult> result =
        ns.Run({kTraffic, absl::StrCat("--connect=", source, ">127.0.0.1:", port, "*", count),
                "--timeout=20"},
               absl::Seconds(30));
    if (!result.ok()) return ::testing::AssertionFailure() << result.status();
    if (result->exit_code != 0) return ::testing::AssertionFailure() << result->stderr_text;
    return ::testing::AssertionSuccess();
  }

  std::string dir_;
  std::vector<ChildProcess> listeners_;
};

TEST_F(Services, SamePortInTwoNamespacesIsTwoServices) {
  absl::StatusOr<TestNamespace> one = TestNamespace::Create();
  absl::StatusOr<TestNamespace> two = TestNamespace::Create();
  ASSERT_TRUE(one.ok() && two.ok());
  ASSERT_TRUE(one->AddAddress("81.2.69.142").ok());
  ASSERT_TRUE(two->AddAddress("8.8.8.8").ok());
  // One listening before the exporter starts (found in /proc), one after
  // (recorded by the probe when it calls listen()).
  ASSERT_TRUE(ListenAs(*one, "svc-alpha", 18120));
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18120"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_TRUE(ListenAs(*two, "svc-beta", 18120));
  ASSERT_TRUE(Connect(*one, "81.2.69.142", 18120, 3));
  ASSERT_TRUE(Connect(*two, "8.8.8.8", 18120, 5));

  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18120"}, 8);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value(kConnections,
                           {{"country", "GB"}, {"port", "18120"}, {"service", "svc-alpha"}}),
            3);
  EXPECT_EQ(
      metrics->Value(kConnections, {{"country", "US"}, {"port", "18120"}, {"service", "svc-beta"}}),
      5);
  EXPECT_EQ(metrics->Sum(kConnections, {{"port", "18120"}}), 8);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_listener_info", {{"port", "18120"},
                                                      {"service", "svc-alpha"},
                                                      {"process", "svc-alpha"},
                                                      {"netns", NetnsInode(*one)}}),
            1);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_listener_info", {{"port", "18120"},
                                                      {"service", "svc-beta"},
                                                      {"process", "svc-beta"},
                                                      {"netns", NetnsInode(*two)}}),
            1);
}

// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup, or
// /sys/fs/cgroup/unified on a hybrid host.
std::string CgroupV2Root() {
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    const std::vector<std::string> fields = absl::StrSplit(line, ' ');
    // ... mount point is field 4; the file system type follows " - ".
    for (size_t i = 6; i + 1 < fields.size(); ++i) {
      if (fields[i] == "-" && fields[i + 1] == "cgroup2") return fields[4];
    }
  }
  return "";
}

TEST_F(Services, ASystemdServiceIsNamedAfterItsUnit) {
  const std::string root = CgroupV2Root();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  const std::string slice = root + "/geoip-test-" + absl::StrCat(getpid()) + ".slice";
  const std::string unit = slice + "/demo-hello.service";
  std::filesystem::create_directories(unit);
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok());
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18124"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  // Moved into the unit's cgroup before it listens, as systemd starts a
  // service: the shell waits for the mark, then becomes the listener. (The
  // cgroup file system is not mounted inside `ip netns exec`, which gives
  // the command a /sys of its own, so the move is made from here.)
  const std::string mark = dir_ + "/moved";
  absl::StatusOr<ChildProcess> child =
      ns->Start({"/bin/sh", "-c",
                 absl::StrCat("while [ ! -e ", mark, " ]; do sleep 0.02; done; exec ",
                              ToolNamed("hello-server"), " --listen=0.0.0.0:18124 --timeout=60")});
  ASSERT_TRUE(child.ok()) << child.status();
  std::ofstream(unit + "/cgroup.procs") << child->pid() << "\n";
  std::ofstream(mark) << "\n";
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (child->Stderr().find("listening") == std::string::npos && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(child->Stderr().find("listening"), std::string::npos) << child->Stderr();
  listeners_.push_back(*std::move(child));
  ASSERT_TRUE(Connect(*ns, "81.2.69.142", 18124, 4));
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18124"}, 4);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value(kConnections,
                           {{"country", "GB"}, {"port", "18124"}, {"service", "demo-hello"}}),
            4);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_listener_info", {{"port", "18124"},
                                                      {"service", "demo-hello"},
                                                      {"process", "hello-server"},
                                                      {"unit", "demo-hello.service"}}),
            1);
  listeners_.clear();  // the cgroup can go once its process is gone
  for (int i = 0; i < 100 && rmdir(unit.c_str()) != 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  rmdir(slice.c_str());
}

TEST_F(Services, PastTheCapServicesAreOtherAndTotalsStayExact) {
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok());
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<ExporterProcess> exporter =
      StartExporter({"--bpf.ports=18121,18122", "--metrics.max-services=1"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_TRUE(ListenAs(*ns, "svc-first", 18121));
  ASSERT_TRUE(Connect(*ns, "81.2.69.142", 18121, 2));
  ASSERT_TRUE(exporter->ScrapeWhenCounted({"18121"}, 2).ok());
  ASSERT_TRUE(ListenAs(*ns, "svc-second", 18122));
  ASSERT_TRUE(Connect(*ns, "81.2.69.142", 18122, 3));
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18121", "18122"}, 5);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value(kConnections,
                           {{"country", "GB"}, {"port", "18121"}, {"service", "svc-first"}}),
            2);
  EXPECT_EQ(
      metrics->Value(kConnections, {{"country", "GB"}, {"port", "18122"}, {"service", "other"}}),
      3);
  EXPECT_EQ(metrics->Sum(kConnections, {{"port", "18122"}}), 3);
  EXPECT_EQ(metrics->Value("ebpf_geoip_services_over_cap_total"), 1);
}

TEST_F(Services, ANewListenerOnTheSamePortIsANewServiceAndTheOldKeepsItsCount) {
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok());
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18123"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_TRUE(ListenAs(*ns, "svc-old", 18123));
  ASSERT_TRUE(Connect(*ns, "81.2.69.142", 18123, 2));
  ASSERT_TRUE(exporter->ScrapeWhenCounted({"18123"}, 2).ok());
  listeners_.clear();  // svc-old exits
  ASSERT_TRUE(ListenAs(*ns, "svc-new", 18123));
  ASSERT_TRUE(Connect(*ns, "81.2.69.142", 18123, 3));
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18123"}, 5);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(
      metrics->Value(kConnections, {{"country", "GB"}, {"port", "18123"}, {"service", "svc-old"}}),
      2);
  EXPECT_EQ(
      metrics->Value(kConnections, {{"country", "GB"}, {"port", "18123"}, {"service", "svc-new"}}),
      3);
}

TEST_F(Services, HostileProcessNamesAreValidLabelValues) {
  // Quotes, a backslash, a space, a control byte and bytes that are not
  // UTF-8, all within the kernel's 15 bytes.
  const std::string hostile = "w\"b \\\x01\xff\xfe";
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok());
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18125"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_TRUE(ListenAs(*ns, hostile, 18125));
  ASSERT_TRUE(Connect(*ns, "81.2.69.142", 18125, 1));
  ASSERT_TRUE(exporter->ScrapeWhenCounted({"18125"}, 1).ok());
  absl::StatusOr<HttpReply> reply =
      HttpGet("127.0.0.1", exporter->port(), "/metrics", absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  // The text parses, and the name is what LabelSafe made of it.
  absl::StatusOr<MetricsText> metrics = MetricsText::Parse(reply->body);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Value(kConnections,
                           {{"country", "GB"}, {"port", "18125"}, {"service", LabelSafe(hostile)}}),
            1)
      << reply->body;
  // Prometheus's own parser and linter accept the page.
  const std::string page = dir_ + "/metrics.txt";
  std::ofstream(page) << reply->body;
  absl::StatusOr<CommandResult> promtool =
      RunCommand({"/bin/sh", "-c", "promtool check metrics < " + page}, absl::Seconds(20));
  ASSERT_TRUE(promtool.ok()) << promtool.status();
  EXPECT_EQ(promtool->exit_code, 0) << promtool->stdout_text << promtool->stderr_text;
}

}  // namespace
}  // namespace geoip
