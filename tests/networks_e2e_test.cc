// Networks (ASes) and top peers end to end, with the real probe (issue
// 15): clients on world addresses in a private network namespace, the
// bundled ASN database, and exact counts by AS on /metrics and in
// /api/v1/networks and /api/v1/peers. Which AS each address is in comes
// from mmdblookup on the bundled file, never from this source.
#include <unistd.h>

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
#include "tests/support/exporter_process.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"

namespace geoip {
namespace {

const std::string kExporter = GEOIP_EXPORTER_BINARY;
const std::string kTraffic = GEOIP_TRAFFIC_BINARY;
const std::string kCountries = std::string(GEOIP_SOURCE_DIR) + "/data/geo-whois-asn-country.mmdb";
const std::string kNetworks = std::string(GEOIP_SOURCE_DIR) + "/data/ip-location-db-asn.mmdb";

// The AS label the bundled database gives `address` ("AS15169"), or
// "unknown" if it has none, as mmdblookup reads it.
std::string AsOf(const std::string& address) {
  absl::StatusOr<CommandResult> lookup =
      RunCommand({"mmdblookup", "--file", kNetworks, "--ip", address, "autonomous_system_number"},
                 absl::Seconds(10));
  EXPECT_TRUE(lookup.ok()) << lookup.status();
  if (!lookup.ok() || lookup->exit_code != 0) return "unknown";
  // "\n  13335 <uint32>\n"
  for (absl::string_view word : absl::StrSplit(lookup->stdout_text, absl::ByAnyChar(" \n"))) {
    uint32_t number = 0;
    if (absl::SimpleAtoi(word, &number)) return absl::StrCat("AS", number);
  }
  return "unknown";
}

class NetworksEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to load the eBPF probe";
    if (access(kNetworks.c_str(), R_OK) != 0) GTEST_FAIL() << kNetworks << " is missing";
  }

  // Runs `connections` ("FROM>TO:PORT*N") from a fresh namespace holding
  // the world addresses; returns how many were made.
  static int Connect(const std::vector<std::string>& connections) {
    absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
    EXPECT_TRUE(ns.ok()) << ns.status();
    if (!ns.ok()) return 0;
    std::set<std::string> addresses;
    int made = 0;
    for (const std::string& c : connections) {
      const std::string from = c.substr(0, c.find('>'));
      if (from != "127.0.0.1" && addresses.insert(from).second) {
        EXPECT_TRUE(ns->AddAddress(from).ok()) << from;
      }
      int count = 0;
      EXPECT_TRUE(absl::SimpleAtoi(c.substr(c.find('*') + 1), &count)) << c;
      made += count;
    }
    absl::StatusOr<CommandResult> traffic =
        ns->Run({kTraffic, "--listen=127.0.0.1:18181,[::]:18182",
                 "--connect=" + absl::StrJoin(connections, ","), "--timeout=20"},
                absl::Seconds(30));
    EXPECT_TRUE(traffic.ok()) << traffic.status();
    if (!traffic.ok()) return 0;
    EXPECT_EQ(traffic->exit_code, 0) << traffic->stdout_text << traffic->stderr_text;
    EXPECT_EQ(traffic->stdout_text,
              absl::StrCat("connections made=", made, " accepted=", made, "\n"));
    return made;
  }
};

// World clients and how many connections each makes; 127.0.0.1 is private.
const std::vector<std::pair<std::string, int>> kClients = {
    {"81.2.69.142", 3},          {"138.100.31.225", 2}, {"1.0.16.1", 4},
    {"2001:4860:4860::8888", 1}, {"127.0.0.1", 2},
};

std::vector<std::string> ConnectionsOf(const std::vector<std::pair<std::string, int>>& clients) {
  std::vector<std::string> connections;
  for (const auto& [address, count] : clients) {
    const bool v6 = absl::StrContains(address, ':');
    connections.push_back(absl::StrCat(address, v6 ? ">[::1]:18182*" : ">127.0.0.1:18181*", count));
  }
  return connections;
}

TEST_F(NetworksEndToEnd, CountsConnectionsExactlyByAsWithNames) {
  absl::StatusOr<ExporterProcess> exporter = ExporterProcess::Start(
      {kExporter, "--geoip.database=" + kCountries, "--geoip.asn-database=" + kNetworks,
       "--bpf.drain-interval=100ms", "--bpf.pin-path=", "--bpf.ports=18181,18182"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  std::map<std::string, double> expected;  // asn label -> connections
  for (const auto& [address, count] : kClients) {
    expected[address == "127.0.0.1" ? "private" : AsOf(address)] += count;
  }
  // The test means something only if the database knows these networks.
  ASSERT_GE(expected.size(), 4u) << "the bundled database lost the test's networks";
  const int made = Connect(ConnectionsOf(kClients));
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18181", "18182"}, made);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  double total = 0;
  for (const auto& [asn, count] : expected) {
    EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_by_asn_total", {{"asn", asn}}), count)
        << asn;
    total += count;
  }
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_by_asn_total", {}), total);
  EXPECT_EQ(metrics->Value("ebpf_geoip_asns_over_cap_total"), 0);
  EXPECT_EQ(metrics->Value("ebpf_geoip_asn_database_info",
                           {{"path", kNetworks}, {"type", "ip-location-db-asn"}}),
            1)
      << exporter->process().Stderr();

  // The API: GB's top network is 81.2.69.142's, with its 3 connections and
  // a name; peers are /24 and /48 prefixes, the heaviest first.
  absl::StatusOr<HttpReply> gb =
      HttpGet("127.0.0.1", exporter->port(), "/api/v1/networks?country=GB", absl::Seconds(5));
  ASSERT_TRUE(gb.ok()) << gb.status();
  EXPECT_TRUE(absl::StartsWith(gb->body, absl::StrCat("{\"networks\":[{\"asn\":\"",
                                                      AsOf("81.2.69.142"), "\",\"as_name\":\"")))
      << gb->body;
  EXPECT_TRUE(absl::EndsWith(gb->body, "\"connections\":3}],\"other_connections\":0}\n"))
      << gb->body;
  absl::StatusOr<HttpReply> peers =
      HttpGet("127.0.0.1", exporter->port(), "/api/v1/peers?port=18181&limit=2", absl::Seconds(5));
  ASSERT_TRUE(peers.ok()) << peers.status();
  EXPECT_EQ(peers->body,
            "{\"peers\":[{\"address\":\"1.0.16.0/24\",\"country\":\"JP\",\"country_name\":"
            "\"Japan\",\"connections\":4,\"max_error\":0},{\"address\":\"81.2.69.0/24\","
            "\"country\":\"GB\",\"country_name\":\"United Kingdom\",\"connections\":3,"
            "\"max_error\":0}],\"prefix\":true}\n");
}

TEST_F(NetworksEndToEnd, TheCapLabelsTheFirstAsesAndCountsTheRestAsOtherExactly) {
  absl::StatusOr<ExporterProcess> exporter = ExporterProcess::Start(
      {kExporter, "--geoip.database=" + kCountries, "--geoip.asn-database=" + kNetworks,
       "--bpf.drain-interval=100ms", "--bpf.pin-path=", "--bpf.ports=18181,18182",
       "--metrics.max-asns=1"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  std::map<std::string, double> by_as;
  for (const auto& [address, count] : kClients) {
    if (address != "127.0.0.1") by_as[AsOf(address)] += count;
  }
  by_as.erase("unknown");
  ASSERT_GE(by_as.size(), 3u);
  const int made = Connect(ConnectionsOf(kClients));
  absl::StatusOr<MetricsText> metrics = exporter->ScrapeWhenCounted({"18181", "18182"}, made);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // Exactly one AS has its own label, with exactly its connections; the
  // others are "other", in full; private keeps its label.
  int labelled = 0;
  double labelled_count = 0;
  for (const auto& [asn, count] : by_as) {
    const double seen =
        metrics->Sum("ebpf_geoip_accepted_connections_by_asn_total", {{"asn", asn}});
    if (seen > 0) {
      ++labelled;
      labelled_count = count;
      EXPECT_EQ(seen, count) << asn;
    }
  }
  EXPECT_EQ(labelled, 1);
  double routable = 0;
  for (const auto& [asn, count] : by_as) routable += count;
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_by_asn_total", {{"asn", "other"}}),
            routable - labelled_count);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_by_asn_total", {{"asn", "private"}}), 2);
  EXPECT_EQ(metrics->Value("ebpf_geoip_asns_over_cap_total"), by_as.size() - 1);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_by_asn_total", {}), made);
  // The API still has every AS by number.
  absl::StatusOr<HttpReply> all =
      HttpGet("127.0.0.1", exporter->port(), "/api/v1/networks", absl::Seconds(5));
  ASSERT_TRUE(all.ok()) << all.status();
  for (const auto& [asn, count] : by_as) {
    EXPECT_TRUE(absl::StrContains(all->body, absl::StrCat("{\"asn\":\"", asn, "\"")))
        << asn << " " << all->body;
  }
}

TEST_F(NetworksEndToEnd, RefusesAMissingAsnDatabaseSayingWhatToDo) {
  absl::StatusOr<ExporterProcess> exporter =
      ExporterProcess::Start({kExporter, "--geoip.database=" + kCountries,
                              "--geoip.asn-database=/nonexistent.mmdb", "--bpf.pin-path="});
  ASSERT_FALSE(exporter.ok());
  EXPECT_TRUE(absl::StrContains(exporter.status().message(), "--geoip.asn-database=PATH"))
      << exporter.status();
}

}  // namespace
}  // namespace geoip
