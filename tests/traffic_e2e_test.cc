// Traffic, lifetimes and refused connections end to end, with the real
// probe (issue 14): clients on world addresses in a private network
// namespace move known byte counts, hold connections for known times and
// knock on closed ports, and /metrics must show exactly that.
//
// Addresses and their countries in the bundled database (checked with
// mmdblookup): 81.2.69.142 GB, 138.100.31.225 ES, 1.0.16.1 JP,
// 2001:4860:4860::8888 US, 2001:12ff::1 BR.
//
// Every test is bounded: the traffic tool has its own --timeout, every
// command run here a timeout, and each test a watchdog (alarm) that ends
// the binary should anything still hang.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/exporter_process.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"

namespace geoip {
namespace {

const std::string kExporter = GEOIP_EXPORTER_BINARY;
const std::string kTraffic = GEOIP_TRAFFIC_BINARY;
const std::string kDatabase = std::string(GEOIP_SOURCE_DIR) + "/data/geo-whois-asn-country.mmdb";

constexpr char kReceived[] = "ebpf_geoip_received_bytes_total";
constexpr char kSent[] = "ebpf_geoip_sent_bytes_total";
constexpr char kClosed[] = "ebpf_geoip_closed_connections_total";
constexpr char kLifetime[] = "ebpf_geoip_connection_lifetime_seconds_total";
constexpr char kDuration[] = "ebpf_geoip_connection_duration_seconds";
constexpr char kFailed[] = "ebpf_geoip_failed_connections_total";
constexpr char kAccepted[] = "ebpf_geoip_accepted_connections_total";

constexpr absl::Duration kDrain = absl::Milliseconds(100);
// The watchdog of each test; the slowest (the scan) takes about 10 s.
constexpr unsigned kTestSeconds = 120;

const char kGB[] = "81.2.69.142";
const char kES[] = "138.100.31.225";
const char kJP[] = "1.0.16.1";
const char kUS[] = "2001:4860:4860::8888";
const char kBR[] = "2001:12ff::1";

// The exporter on a free loopback port with the bundled database, draining
// every 100 ms; no pinning, so nothing outlives the test.
absl::StatusOr<ExporterProcess> StartExporter(std::vector<std::string> flags) {
  std::vector<std::string> argv = {
      kExporter, "--geoip.database=" + kDatabase,
      absl::StrCat("--bpf.drain-interval=", absl::ToInt64Milliseconds(kDrain), "ms"),
      "--bpf.pin-path=", "--bpf.traffic"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return ExporterProcess::Start(argv);
}

// What the watchdog prints: set per test, read by the signal handler.
char watchdog_message[512];

void OnWatchdog(int) {
  (void)!write(STDERR_FILENO, watchdog_message, strlen(watchdog_message));
  _exit(1);  // the children die with us (PR_SET_PDEATHSIG)
}

class TrafficEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to load the eBPF probe";
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    snprintf(watchdog_message, sizeof(watchdog_message), "\n%s.%s: no end after %u s: stopped\n",
             test->test_suite_name(), test->name(), kTestSeconds);
    signal(SIGALRM, OnWatchdog);
    alarm(kTestSeconds);
  }
  void TearDown() override { alarm(0); }
};

// A namespace with lo up and the given addresses on it.
absl::StatusOr<TestNamespace> WorldNamespace(const std::vector<std::string>& addresses) {
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  if (!ns.ok()) return ns.status();
  for (const std::string& address : addresses) {
    if (absl::Status status = ns->AddAddress(address); !status.ok()) return status;
  }
  return ns;
}

// Scrapes every 50 ms until done(metrics) holds or timeout passes; then,
// either way, waits three drain intervals and scrapes once more, so that
// counts past the expected ones show too. Returns that last scrape.
absl::StatusOr<MetricsText> ScrapeUntil(ExporterProcess& exporter,
                                        const std::function<bool(const MetricsText&)>& done,
                                        absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<MetricsText> metrics = exporter.Scrape();
    if (!metrics.ok()) return metrics.status();
    if (done(*metrics)) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(3 * kDrain);
  return exporter.Scrape();
}

// The value of metric summed over services, for country and port.
double Of(const MetricsText& metrics, const char* name, const std::string& country,
          const std::string& port) {
  return metrics.Sum(name, {{"country", country}, {"port", port}});
}

// A label of a selected series; empty if it has none.
std::string Label(const MetricsText::Series& series, const std::string& name) {
  auto it = series.labels.find(name);
  return it == series.labels.end() ? "" : it->second;
}

// What the exporter says of its own probe that explains a count missing or
// off: for a failure's message.
std::string ProbeHealth(const MetricsText& metrics) {
  std::string text = "probe health:";
  for (const char* name :
       {"ebpf_geoip_probe_missed_closes_total", "ebpf_geoip_probe_untracked_connections_total",
        "ebpf_geoip_probe_traffic_races_total", "ebpf_geoip_probe_recursion_misses_total",
        "ebpf_geoip_probe_accept_misses_total", "ebpf_geoip_probe_pending_full_total"}) {
    absl::StrAppend(&text, " ", absl::StripPrefix(name, "ebpf_geoip_probe_"), "=",
                    metrics.Sum(name, {}));
  }
  absl::StrAppend(&text, "; accepted per country and port:");
  for (const MetricsText::Series& series : metrics.Select(kAccepted, {})) {
    absl::StrAppend(&text, " ", Label(series, "country"), "/", Label(series, "port"), "=",
                    series.value);
  }
  return text;
}

// Refused connections from country to port ("other" for unwatched ports).
double Refused(const MetricsText& metrics, const std::string& country, const std::string& port) {
  return metrics.Sum(kFailed, {{"country", country}, {"port", port}, {"reason", "refused"}});
}

// Runs the traffic tool in ns with a bound of its own (20 s unless given).
absl::StatusOr<CommandResult> RunTraffic(TestNamespace& ns, std::vector<std::string> flags,
                                         absl::Duration bound = absl::Seconds(20)) {
  flags.insert(flags.begin(), kTraffic);
  flags.push_back(absl::StrCat("--timeout=", absl::ToInt64Seconds(bound)));
  return ns.Run(flags, bound + absl::Seconds(10));
}

TEST_F(TrafficEndToEnd, KnownTransfersCountExactBytesPerCountryAndPort) {
  // 18201 IPv4 and 18202 dual-stack are watched; 18209 is not.
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18201,18202"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = WorldNamespace({kGB, kES, kJP, kUS});
  ASSERT_TRUE(ns.ok()) << ns.status();

  struct Transfer {
    std::string source, destination;  // destination: ADDRESS:PORT
    int clients;
    uint64_t send, receive;  // per client, from the client's side
    std::string country, port;
  };
  const std::vector<Transfer> transfers = {
      {kGB, "127.0.0.1:18201", 2, 1 << 20, 3 << 20, "GB", "18201"},  // 1 MiB up, 3 MiB down
      {kES, "127.0.0.1:18201", 3, 300, 700, "ES", "18201"},          // a few hundred bytes
      {kJP, "127.0.0.1:18201", 2, 0, 0, "JP", "18201"},              // nothing at all
      {kGB, "127.0.0.1:18202", 1, 500, 250, "GB", "18202"},          // IPv4 on dual-stack
      {kUS, "[::1]:18202", 2, 65536, 100000, "US", "18202"},
      {kJP, "127.0.0.1:18202", 1, 20, 0, "JP", "18202"},
      {kES, "127.0.0.1:18209", 1, 1000, 1000, "ES", "18209"},  // not watched
  };
  std::vector<std::string> plan;
  // (country, port) -> what the server received and sent, and connections.
  struct Expected {
    double received = 0, sent = 0, connections = 0;
  };
  std::map<std::pair<std::string, std::string>, Expected> expected;
  uint64_t total_sent = 0, total_received = 0;
  int clients = 0;
  for (const Transfer& t : transfers) {
    plan.push_back(absl::StrCat(t.source, ">", t.destination, "*", t.clients, "/send=", t.send,
                                "/receive=", t.receive));
    Expected& e = expected[{t.country, t.port}];
    e.received += static_cast<double>(t.clients) * t.send;
    e.sent += static_cast<double>(t.clients) * t.receive;
    e.connections += t.clients;
    total_sent += t.clients * t.send;
    total_received += t.clients * t.receive;
    clients += t.clients;
  }
  absl::StatusOr<CommandResult> traffic =
      RunTraffic(*ns, {"--listen=127.0.0.1:18201,[::]:18202,127.0.0.1:18209",
                       "--transfer=" + absl::StrJoin(plan, ",")});
  ASSERT_TRUE(traffic.ok()) << traffic.status();
  ASSERT_EQ(traffic->exit_code, 0) << traffic->stdout_text << traffic->stderr_text;
  EXPECT_EQ(
      traffic->stdout_text,
      absl::StrCat("transfers made=", clients, " sent=", total_sent, " received=", total_received,
                   "\nserved transfers=", clients, " failed=0 received=", total_sent,
                   " sent=", total_received, "\nconnections made=0 accepted=", clients, "\n"));

  // Every connection has closed by now: wait until the exporter has them.
  const double watched_connections = clients - 1;
  absl::StatusOr<MetricsText> metrics = ScrapeUntil(*exporter, [&](const MetricsText& m) {
    return m.Sum(kClosed, {{"port", "18201"}}) + m.Sum(kClosed, {{"port", "18202"}}) >=
           watched_connections;
  });
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  Expected watched;
  for (const auto& [series, e] : expected) {
    const auto& [country, port] = series;
    if (port == "18209") continue;
    EXPECT_EQ(Of(*metrics, kReceived, country, port), e.received) << country << " " << port;
    EXPECT_EQ(Of(*metrics, kSent, country, port), e.sent) << country << " " << port;
    EXPECT_EQ(Of(*metrics, kClosed, country, port), e.connections) << country << " " << port;
    EXPECT_EQ(Of(*metrics, kAccepted, country, port), e.connections) << country << " " << port;
    watched.received += e.received;
    watched.sent += e.sent;
  }
  // Nothing else on the watched ports, nothing on the unwatched one.
  EXPECT_EQ(
      metrics->Sum(kReceived, {{"port", "18201"}}) + metrics->Sum(kReceived, {{"port", "18202"}}),
      watched.received);
  EXPECT_EQ(metrics->Sum(kSent, {{"port", "18201"}}) + metrics->Sum(kSent, {{"port", "18202"}}),
            watched.sent);
  EXPECT_EQ(metrics->Sum(kReceived, {{"port", "18209"}}), 0);
  EXPECT_EQ(metrics->Sum(kSent, {{"port", "18209"}}), 0);
  EXPECT_EQ(metrics->Sum(kClosed, {{"port", "18209"}}), 0);
}

// What the exporter said about counting bytes of open connections: on a
// kernel that refuses the probe's iterator, it counts them only at close.
std::string OpenTrafficNote(ExporterProcess& exporter) {
  for (absl::string_view line : absl::StrSplit(exporter.process().Stderr(), '\n')) {
    if (absl::StrContains(line, "open connections:")) return std::string(line);
  }
  return "";
}

// The value of "transfer 1 step S/K" lines so far: the last S, or 0.
int StepsDone(const std::string& stdout_text) {
  int done = 0;
  for (int step = 1; absl::StrContains(stdout_text, absl::StrCat("transfer 1 step ", step, "/"));
       ++step) {
    done = step;
  }
  return done;
}

TEST_F(TrafficEndToEnd, LongLivedConnectionShowsItsBytesBeforeItCloses) {
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18211"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = WorldNamespace({kGB});
  ASSERT_TRUE(ns.ok()) << ns.status();
  // One connection, 1 MiB up and 3 MiB down in 4 steps, each followed by a
  // pause of 1.5 s (15 drain intervals): about 6 s open in all.
  constexpr int kSteps = 4;
  constexpr uint64_t kUp = 1 << 20, kDown = 3 << 20;
  absl::StatusOr<ChildProcess> client =
      ns->Start({kTraffic, "--listen=127.0.0.1:18211",
                 absl::StrCat("--transfer=", kGB, ">127.0.0.1:18211/send=", kUp, "/receive=", kDown,
                              "/steps=", kSteps, "/hold=6s"),
                 "--timeout=30"});
  ASSERT_TRUE(client.ok()) << client.status();

  // After each step the client has read its share of the download and its
  // upload is acknowledged: the kernel holds exactly that much for the open
  // socket, and the exporter must show it within the pause. A kernel that
  // refuses the iterator over open connections (the exporter says so at
  // start; this development host does) counts them at the close only: then
  // nothing may show before it, and everything after.
  const bool counted_while_open = OpenTrafficNote(*exporter).empty();
  if (!counted_while_open) {
    std::cout << "[ NOTE     ] bytes of open connections are not counted on this kernel: "
              << OpenTrafficNote(*exporter) << "\n";
  }
  for (int step = 1; step <= kSteps; ++step) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (StepsDone(client->Stdout()) < step && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_GE(StepsDone(client->Stdout()), step) << client->Stdout() << client->Stderr();
    const double up = counted_while_open ? static_cast<double>(kUp / kSteps * step) : 0;
    const double down = counted_while_open ? static_cast<double>(kDown / kSteps * step) : 0;
    double received = -1, sent = -1, closed = -1;
    const absl::Time pause_end = absl::Now() + absl::Milliseconds(1200);
    while (absl::Now() < pause_end) {
      absl::StatusOr<MetricsText> metrics = exporter->Scrape();
      ASSERT_TRUE(metrics.ok()) << metrics.status();
      received = Of(*metrics, kReceived, "GB", "18211");
      sent = Of(*metrics, kSent, "GB", "18211");
      closed = Of(*metrics, kClosed, "GB", "18211");
      if (received == up && sent == down) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_EQ(received, up) << "step " << step << " of the open connection; "
                            << OpenTrafficNote(*exporter);
    EXPECT_EQ(sent, down) << "step " << step << " of the open connection; "
                          << OpenTrafficNote(*exporter);
    EXPECT_EQ(closed, 0) << "step " << step
                         << ": the connection is still open; client: " << client->Stdout()
                         << client->Stderr();
  }

  absl::StatusOr<int> exit_code = client->Wait(absl::Seconds(20));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  ASSERT_EQ(*exit_code, 0) << client->Stdout() << client->Stderr();
  absl::StatusOr<MetricsText> metrics = ScrapeUntil(
      *exporter, [](const MetricsText& m) { return Of(m, kClosed, "GB", "18211") >= 1; });
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // At the close: exact, and the bytes counted while it was open are not
  // counted again.
  const std::string context =
      absl::StrCat(ProbeHealth(*metrics), "\nclient: ", client->Stdout(), client->Stderr(),
                   "exporter: ", exporter->process().Stderr());
  EXPECT_EQ(Of(*metrics, kReceived, "GB", "18211"), kUp) << context;
  EXPECT_EQ(Of(*metrics, kSent, "GB", "18211"), kDown) << context;
  EXPECT_EQ(Of(*metrics, kClosed, "GB", "18211"), 1) << context;
  EXPECT_GE(Of(*metrics, kLifetime, "GB", "18211"), 6.0 - 0.005) << context;
  EXPECT_LT(Of(*metrics, kLifetime, "GB", "18211"), 8.0) << context;
}

TEST_F(TrafficEndToEnd, ConnectionsPastTheOpenLimitAreCountedAndSaidUntracked) {
  // Room for 16 open connections (the smallest table: each connection may
  // take any of its 16 slots); 20 are open at once (each holds 2 s after
  // moving its bytes, and all start together).
  absl::StatusOr<ExporterProcess> exporter =
      StartExporter({"--bpf.ports=18215", "--bpf.max-open-connections=16"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = WorldNamespace({kGB});
  ASSERT_TRUE(ns.ok()) << ns.status();
  absl::StatusOr<CommandResult> traffic =
      RunTraffic(*ns, {"--listen=127.0.0.1:18215",
                       absl::StrCat("--transfer=", kGB, ">127.0.0.1:18215*20/send=1000/hold=2s")});
  ASSERT_TRUE(traffic.ok()) << traffic.status();
  ASSERT_EQ(traffic->exit_code, 0) << traffic->stdout_text << traffic->stderr_text;

  absl::StatusOr<MetricsText> metrics = ScrapeUntil(*exporter, [](const MetricsText& m) {
    return Of(m, kAccepted, "GB", "18215") >= 20 && Of(m, kClosed, "GB", "18215") >= 16;
  });
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // Every connection is counted; the bytes and ends of the 16 that had a
  // slot, and the 4 that did not are said.
  EXPECT_EQ(Of(*metrics, kAccepted, "GB", "18215"), 20);
  EXPECT_EQ(Of(*metrics, kClosed, "GB", "18215"), 16);
  EXPECT_EQ(Of(*metrics, kReceived, "GB", "18215"), 16000);
  EXPECT_EQ(metrics->Value("ebpf_geoip_probe_untracked_connections_total"), 4);
  EXPECT_EQ(metrics->Value("ebpf_geoip_probe_missed_closes_total"), 0);
}

// The histogram's buckets of port, summed over services: upper bound ->
// cumulative count.
std::map<double, double> Buckets(const MetricsText& metrics, const std::string& port) {
  std::map<double, double> buckets;
  for (const MetricsText::Series& series :
       metrics.Select(absl::StrCat(kDuration, "_bucket"), {{"port", port}})) {
    const std::string le = Label(series, "le");
    double bound = 0;
    if (le == "+Inf") {
      bound = std::numeric_limits<double>::infinity();
    } else if (!absl::SimpleAtod(le, &bound)) {
      continue;
    }
    buckets[bound] += series.value;
  }
  return buckets;
}

TEST_F(TrafficEndToEnd, DurationsLandInTheirBucketsAndSumPerCountry) {
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18221"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = WorldNamespace({kGB, kES, kUS});
  ASSERT_TRUE(ns.ok()) << ns.status();
  // Holds well inside the buckets (0.01, 0.1], (0.1, 1] and (1, 10], all at
  // once; a few bytes on some, none on others.
  struct Hold {
    const char* source;
    const char* destination;
    int clients;
    double seconds;
    const char* bytes;
    const char* country;
  };
  const std::vector<Hold> holds = {
      {kGB, "127.0.0.1:18221", 4, 0.05, "", "GB"},
      {kES, "127.0.0.1:18221", 3, 0.5, "/send=100/receive=100", "ES"},
      {kUS, "[::1]:18221", 2, 3, "/send=1000/receive=0", "US"},
  };
  std::vector<std::string> plan;
  for (const Hold& h : holds) {
    plan.push_back(absl::StrCat(h.source, ">", h.destination, "*", h.clients,
                                "/hold=", absl::FormatDuration(absl::Seconds(h.seconds)), h.bytes));
  }
  absl::StatusOr<CommandResult> traffic =
      RunTraffic(*ns, {"--listen=[::]:18221", "--transfer=" + absl::StrJoin(plan, ",")});
  ASSERT_TRUE(traffic.ok()) << traffic.status();
  ASSERT_EQ(traffic->exit_code, 0) << traffic->stdout_text << traffic->stderr_text;

  absl::StatusOr<MetricsText> metrics = ScrapeUntil(*exporter, [](const MetricsText& m) {
    return m.Sum(kClosed, {{"port", "18221"}}) >= 9;
  });
  ASSERT_TRUE(metrics.ok()) << metrics.status();

  // The tolerance. The server's socket is established before the client's
  // connect() returns, or within microseconds after it on loopback, and
  // closes only after the client's hold and FIN: each lifetime is at least
  // its hold, less 5 ms for that. Past the hold come the client's FIN, one
  // wake-up of the server's thread, its close and the last ACK: well under
  // 5 ms on an idle machine, but about 60 ms under the QEMU guests'
  // software emulation (vm_traffic_e2e): allowed, a fifth of the hold and
  // at least 45 ms, which still keeps each hold inside its bucket (0.05 s in
  // 0.1, 0.5 in 1, 3 in 10), so the sums are held to what the buckets are.
  constexpr double kEarly = 0.005;
  auto late = [](double hold) { return std::max(0.045, hold / 5); };
  double sum_low = 0, sum_high = 0;
  for (const Hold& h : holds) {
    EXPECT_EQ(Of(*metrics, kClosed, h.country, "18221"), h.clients) << h.country;
    const double lifetime = Of(*metrics, kLifetime, h.country, "18221");
    EXPECT_GE(lifetime, h.clients * (h.seconds - kEarly)) << h.country;
    EXPECT_LE(lifetime, h.clients * (h.seconds + late(h.seconds))) << h.country;
    sum_low += h.clients * (h.seconds - kEarly);
    sum_high += h.clients * (h.seconds + late(h.seconds));
  }
  const std::map<double, double> expected_buckets = {
      {0.01, 0}, {0.1, 4}, {1, 7},    {10, 9},
      {60, 9},   {600, 9}, {3600, 9}, {std::numeric_limits<double>::infinity(), 9},
  };
  EXPECT_EQ(Buckets(*metrics, "18221"), expected_buckets);
  EXPECT_EQ(metrics->Sum(absl::StrCat(kDuration, "_count"), {{"port", "18221"}}), 9);
  const double sum = metrics->Sum(absl::StrCat(kDuration, "_sum"), {{"port", "18221"}});
  EXPECT_GE(sum, sum_low);
  EXPECT_LE(sum, sum_high);
}

TEST_F(TrafficEndToEnd, RefusedConnectionsCountExactlyPerCountryAndWatchedPort) {
  // 18231 has a listener; 18232 is watched but nothing listens; 18239 is
  // neither watched nor listened on.
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18231,18232"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = WorldNamespace({kGB, kES, kUS, kBR});
  ASSERT_TRUE(ns.ok()) << ns.status();
  absl::StatusOr<CommandResult> traffic = RunTraffic(
      *ns, {"--listen=127.0.0.1:18231", absl::StrCat("--connect=", kGB, ">127.0.0.1:18231*2"),
            absl::StrCat("--refused=", kGB, ">127.0.0.1:18232*3,", kES, ">127.0.0.1:18239*4,", kUS,
                         ">[::1]:18232*2,", kBR, ">[::1]:18239*5")});
  ASSERT_TRUE(traffic.ok()) << traffic.status();
  ASSERT_EQ(traffic->exit_code, 0) << traffic->stdout_text << traffic->stderr_text;
  EXPECT_EQ(traffic->stdout_text,
            "refused attempts=14 refused=14\nconnections made=2 accepted=2\n");

  const std::map<std::pair<std::string, std::string>, double> expected = {
      {{"GB", "18232"}, 3}, {{"ES", "other"}, 4}, {{"US", "18232"}, 2}, {{"BR", "other"}, 5}};
  const std::vector<std::string> countries = {"GB", "ES", "US", "BR"};
  absl::StatusOr<MetricsText> metrics = ScrapeUntil(*exporter, [&](const MetricsText& m) {
    double total = 0;
    for (const std::string& country : countries) total += m.Sum(kFailed, {{"country", country}});
    return total >= 14;
  });
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const auto& [series, count] : expected) {
    EXPECT_EQ(Refused(*metrics, series.first, series.second), count)
        << series.first << " " << series.second;
  }
  for (const std::string& country : countries) {
    double all = 0;
    for (const auto& [series, count] : expected) {
      if (series.first == country) all += count;
    }
    EXPECT_EQ(metrics->Sum(kFailed, {{"country", country}}), all) << country;
  }
  // An unwatched port is never a label of its own; accepted connections
  // are not failures, and refused ones are not accepted.
  EXPECT_TRUE(metrics->Select(kFailed, {{"port", "18239"}}).empty());
  EXPECT_EQ(metrics->Sum(kFailed, {{"port", "18231"}}), 0);
  EXPECT_EQ(Of(*metrics, kAccepted, "GB", "18231"), 2);
  EXPECT_EQ(metrics->Sum(kAccepted, {{"port", "18232"}}), 0);
}

TEST_F(TrafficEndToEnd, PortScanLeavesFewSeriesAndExactTotals) {
  // 18241 listens (in the namespace) and 18242 does not; both are watched.
  const std::set<std::string> watched = {"18241", "18242"};
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18241,18242"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> ns = WorldNamespace({kGB, kES, kJP});
  ASSERT_TRUE(ns.ok()) << ns.status();
  // Every port from three addresses, at most 50,000 attempts a second.
  const std::vector<std::pair<std::string, std::string>> scanners = {
      {kGB, "GB"}, {kES, "ES"}, {kJP, "JP"}};
  std::vector<std::string> scans;
  for (const auto& [address, country] : scanners) {
    scans.push_back(absl::StrCat(address, ">127.0.0.1:1-65535"));
  }
  absl::StatusOr<CommandResult> traffic = RunTraffic(
      *ns, {"--listen=127.0.0.1:18241", "--scan=" + absl::StrJoin(scans, ","), "--rate=50000"},
      // About 4 s here; several times that in the QEMU guests.
      absl::Seconds(90));
  ASSERT_TRUE(traffic.ok()) << traffic.status();
  ASSERT_EQ(traffic->exit_code, 0) << traffic->stdout_text << traffic->stderr_text;
  EXPECT_TRUE(
      absl::StartsWith(traffic->stdout_text, "scan attempts=196605 refused=196602 open=3 seconds="))
      << traffic->stdout_text;

  absl::StatusOr<MetricsText> metrics = ScrapeUntil(*exporter, [&](const MetricsText& m) {
    double total = 0;
    for (const auto& scanner : scanners) total += m.Sum(kFailed, {{"country", scanner.second}});
    return total >= 3 * 65534.0;
  });
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const auto& [address, country] : scanners) {
    // Exact per country: every port but the listening one was refused.
    EXPECT_EQ(metrics->Sum(kFailed, {{"country", country}}), 65534) << country;
    EXPECT_EQ(Refused(*metrics, country, "18242"), 1) << country;
    EXPECT_EQ(Refused(*metrics, country, "other"), 65533) << country;
    EXPECT_EQ(Of(*metrics, kAccepted, country, "18241"), 1) << country;
  }
  // Bounded: every failure series of any country names a watched port or
  // "other", so the scanners made at most countries x (watched ports + 1)
  // series per reason, here 3 x 3.
  size_t scanner_series = 0;
  for (const MetricsText::Series& series : metrics->Select(kFailed)) {
    const std::string port = Label(series, "port");
    EXPECT_TRUE(port == "other" || watched.count(port) > 0) << "port=\"" << port << "\"";
    for (const auto& scanner : scanners) {
      if (Label(series, "country") == scanner.second) ++scanner_series;
    }
  }
  EXPECT_LE(scanner_series, scanners.size() * (watched.size() + 1));
  EXPECT_GT(scanner_series, 0u);
}

// Incomplete: bare SYNs from a GB address that belongs to no one, sent
// through a raw socket. The namespace routes that address to its loopback,
// where a packet to an address not its own is dropped, so the SYN-ACK is
// sent (as far as TCP knows) and no reset ever comes back. With
// net.ipv4.tcp_synack_retries=1 the kernel sends each SYN-ACK once more and
// gives up after about 3 s. The exporter counts each handshake once, as
// incomplete, and none as accepted. Needs no veth: it runs in the QEMU
// guests too, whose kernels have no modules.
TEST_F(TrafficEndToEnd, HalfOpenHandshakesCountOnceAsIncompleteWhenTheKernelGivesUp) {
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--bpf.ports=18251"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::StatusOr<TestNamespace> server = TestNamespace::Create();
  ASSERT_TRUE(server.ok()) << server.status();
  const std::vector<std::vector<std::string>> setup = {
      {"ip", "-n", server->name(), "route", "add", absl::StrCat(kGB, "/32"), "dev", "lo"},
      {"ip", "netns", "exec", server->name(), "sysctl", "-w", "net.ipv4.tcp_synack_retries=1"},
  };
  for (const std::vector<std::string>& command : setup) {
    absl::StatusOr<CommandResult> done = RunCommand(command, absl::Seconds(10));
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_EQ(done->exit_code, 0) << absl::StrJoin(command, " ") << ": " << done->stderr_text;
  }
  absl::StatusOr<ChildProcess> listener =
      server->Start({kTraffic, "--listen=127.0.0.1:18251", "--timeout=30"});
  ASSERT_TRUE(listener.ok()) << listener.status();
  const absl::Time ready = absl::Now() + absl::Seconds(10);
  while (!absl::StrContains(listener->Stderr(), "listening") && absl::Now() < ready) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(absl::StrContains(listener->Stderr(), "listening")) << listener->Stderr();

  absl::StatusOr<CommandResult> syns =
      RunTraffic(*server, {absl::StrCat("--half-open=", kGB, ">127.0.0.1:18251*3")});
  ASSERT_TRUE(syns.ok()) << syns.status();
  ASSERT_EQ(syns->exit_code, 0) << syns->stdout_text << syns->stderr_text;
  EXPECT_EQ(syns->stdout_text, "half-open syns=3\nconnections made=0 accepted=0\n");

  // The kernel gives up at about 3 s; the probe's deadline is a second
  // later, then a drain.
  absl::StatusOr<MetricsText> metrics = ScrapeUntil(
      *exporter,
      [](const MetricsText& m) {
        return m.Sum(kFailed, {{"country", "GB"}, {"reason", "incomplete"}}) >= 3;
      },
      absl::Seconds(15));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Sum(kFailed, {{"country", "GB"}, {"port", "18251"}, {"reason", "incomplete"}}),
            3);
  EXPECT_EQ(metrics->Sum(kFailed, {{"country", "GB"}}), 3);
  EXPECT_EQ(Of(*metrics, kAccepted, "GB", "18251"), 0);
}

}  // namespace
}  // namespace geoip
