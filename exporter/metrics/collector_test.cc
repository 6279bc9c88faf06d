#include "exporter/metrics/collector.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace geoip {
namespace {

ExporterHealth TestHealth() {
  ExporterHealth health;
  health.probe_mode = "tracepoint";
  health.overflow_connections = 2;
  health.database_type = "GeoLite2-Country";
  health.database_path = "/tmp/test.mmdb";
  health.database_build_epoch = 1700000000;
  health.lookup_failures = 1;
  health.probe.accept_misses = 64;
  health.probe.pending_full = 3;
  health.probe.untracked_connections = 2;
  health.probe.traffic_races = 0;
  health.probe.missed_closes = 4;
  health.probe.open_connection_bytes = false;
  health.probe.refused_connections = true;
  health.probe.programs = {{"raw_tp_set_state", 600, 1500000000}, {"fexit_accept", 100, 250000000}};
  return health;
}

IpAddress Addr(const char* text) { return *ParseIpAddress(text); }

TEST(ExporterCollector, ExposesSeriesWithCountryAndPortLabels) {
  ConnectionStats stats;
  const CountryId gb = *CountryId::FromIsoCode("GB");
  const IpAddress a = Addr("81.2.69.142"), b = Addr("81.2.69.143");
  stats.Record(gb, 8081, &a, 3, absl::Now());
  stats.Record(gb, 8081, &b, 1, absl::Now());
  stats.Record(CountryId::Overflow(), 8081, nullptr, 2, absl::Now());
  ServiceNames services(64);
  ExporterCollector collector(&stats, &services, {"1.2.3", "abc", "main"}, TestHealth);

  const std::string text = SerializeText(collector.Collect());
  EXPECT_TRUE(absl::StrContains(text,
                                "ebpf_geoip_accepted_connections_total{country=\"GB\",port="
                                "\"8081\",service=\"unknown\"} 4\n"));
  EXPECT_TRUE(absl::StrContains(
      text,
      "ebpf_geoip_unique_source_addresses{country=\"GB\",port=\"8081\",service=\"unknown\"} 2\n"));
  EXPECT_TRUE(absl::StrContains(text,
                                "ebpf_geoip_accepted_connections_total{country=\"overflow\",port="
                                "\"8081\",service=\"unknown\"} 2\n"));
  // Overflowed connections have no address, so no unique count.
  EXPECT_FALSE(absl::StrContains(text, "ebpf_geoip_unique_source_addresses{country=\"overflow\""));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE ebpf_geoip_accepted_connections_total counter"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE ebpf_geoip_unique_source_addresses gauge"));
}

TEST(ExporterCollector, ExposesNetworksCappedWithNamesAndExactTotals) {
  ConnectionStats::Options options;
  options.max_network_labels = 1;
  ConnectionStats stats(options);
  const CountryId gb = *CountryId::FromIsoCode("GB");
  const IpAddress a = Addr("81.2.69.142"), b = Addr("8.8.8.8"), c = Addr("10.0.0.1");
  stats.Record(gb, 8081, &a, 3, absl::Now(), 0, NetworkId::Of(20712));
  stats.Record(gb, 8081, &b, 2, absl::Now(), 0, NetworkId::Of(15169));  // past the cap
  stats.Record(gb, 8082, &b, 1, absl::Now(), 0, NetworkId::Of(15169));
  stats.Record(CountryId::Private(), 8081, &c, 4, absl::Now(), 0, NetworkId::Private());
  stats.Record(CountryId::Overflow(), 8081, nullptr, 5, absl::Now(), 0, NetworkId::Overflow());
  ASSERT_TRUE(stats.AddWord("ebpf").ok());
  ASSERT_FALSE(stats
                   .AddWord("\xE2\x80\xAE"
                            "evil")
                   .ok());
  ServiceNames services(64);
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, TestHealth, [](NetworkId n) {
    return n == NetworkId::Of(20712) ? "Andrews & \"Arnold\"" : "";
  });
  const std::string text = collector.CollectText();
  for (const char* line : {
           "ebpf_geoip_accepted_connections_by_asn_total{asn=\"AS20712\",as_name=\"Andrews & "
           "\\\"Arnold\\\"\"} 3\n",
           "ebpf_geoip_accepted_connections_by_asn_total{asn=\"private\",as_name=\"\"} 4\n",
           "ebpf_geoip_accepted_connections_by_asn_total{asn=\"overflow\",as_name=\"\"} 5\n",
           "ebpf_geoip_accepted_connections_by_asn_total{asn=\"other\",as_name=\"\"} 3\n",
           "ebpf_geoip_asns_over_cap_total 1\n",
           "ebpf_geoip_words_total{result=\"counted\"} 1\n",
           "ebpf_geoip_words_total{result=\"refused_direction\"} 1\n",
           "ebpf_geoip_words_evicted_total 0\n",
       }) {
    EXPECT_TRUE(absl::StrContains(text, line)) << line << text;
  }
  EXPECT_FALSE(absl::StrContains(text, "AS15169")) << text;
}

TEST(ExporterCollector, LeavesOutTheBuildTimeOfADatabaseWithoutADate) {
  ConnectionStats stats;
  ServiceNames services(64);
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, [] {
    ExporterHealth health = TestHealth();
    health.database_build_epoch = std::nullopt;
    return health;
  });
  const std::string text = collector.CollectText();
  EXPECT_FALSE(absl::StrContains(text, "ebpf_geoip_database_build_timestamp_seconds")) << text;
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_database_info{")) << text;
}

TEST(ExporterCollector, ExposesHealthAndBuildInfo) {
  ConnectionStats stats;
  ServiceNames services(64);
  ExporterCollector collector(&stats, &services, {"1.2.3", "abc", "main"}, TestHealth);
  const std::string text = SerializeText(collector.Collect());
  EXPECT_TRUE(absl::StrContains(
      text, "ebpf_geoip_build_info{branch=\"main\",revision=\"abc\",version=\"1.2.3\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_info{mode=\"tracepoint\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_overflow_connections_total 2\n"));
  // Deprecated name, same value, until 0.3.0.
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_events_lost_total 2\n"));
  EXPECT_TRUE(absl::StrContains(
      text, "ebpf_geoip_database_info{path=\"/tmp/test.mmdb\",type=\"GeoLite2-Country\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_database_build_timestamp_seconds 1700000000\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_lookup_failures_total 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_accept_misses_total 64\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_pending_full_total 3\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_untracked_connections_total 2\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_traffic_races_total 0\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_missed_closes_total 4\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_part{part=\"open_connection_bytes\"} 0\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_probe_part{part=\"refused_connections\"} 1\n"));
  EXPECT_TRUE(
      absl::StrContains(text, "ebpf_geoip_probe_runs_total{program=\"raw_tp_set_state\"} 600\n"));
  EXPECT_TRUE(
      absl::StrContains(text, "ebpf_geoip_probe_runs_total{program=\"fexit_accept\"} 100\n"));
  EXPECT_TRUE(absl::StrContains(
      text, "ebpf_geoip_probe_run_seconds_total{program=\"raw_tp_set_state\"} 1.5\n"));
  EXPECT_TRUE(absl::StrContains(
      text, "ebpf_geoip_probe_run_seconds_total{program=\"fexit_accept\"} 0.25\n"));
  EXPECT_TRUE(absl::StrContains(text, "process_resident_memory_bytes "));
  EXPECT_FALSE(absl::StrContains(text, "process_resident_memory_bytes 0\n"));
}

TEST(ExporterCollector, CountersNeverDecreaseAcrossScrapes) {
  ConnectionStats stats;
  const CountryId us = *CountryId::FromIsoCode("US");
  const IpAddress a = Addr("8.8.8.8");
  ServiceNames services(64);
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, TestHealth);
  double last = 0;
  for (int round = 1; round <= 5; ++round) {
    stats.Record(us, 443, &a, round, absl::Now());
    for (const auto& family : collector.Collect()) {
      if (family.name != "ebpf_geoip_accepted_connections_total") continue;
      ASSERT_EQ(family.metric.size(), 1u);
      const double value = family.metric[0].counter.value;
      EXPECT_GT(value, last);
      last = value;
    }
  }
  EXPECT_EQ(last, 1 + 2 + 3 + 4 + 5);
}

TEST(ExporterCollector, CollectTextIsTheTextOfCollect) {
  ConnectionStats stats;
  const IpAddress a = Addr("81.2.69.142"), b = Addr("8.8.8.8");
  for (uint16_t port : {22, 443, 8081}) {
    stats.Record(*CountryId::FromIsoCode("GB"), port, &a, port, absl::Now());
    stats.Record(*CountryId::FromIsoCode("US"), port, &b, 1, absl::Now());
  }
  stats.Record(CountryId::Private(), 443, &a, 2, absl::Now());
  stats.Record(CountryId::Overflow(), 443, nullptr, 5, absl::Now());
  ServiceNames services(64);
  // A service name that needs escaping, in both writers alike.
  stats.Record(CountryId::Private(), 443, &a, 3, absl::Now(), services.Intern("we\"b\\1"));
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, TestHealth);
  const std::string text = collector.CollectText();
  // Process metrics (CPU, memory) may move between two reads; compare the
  // rest exactly.
  auto without_process = [](const std::string& body) {
    return body.substr(0, body.find("# HELP process_"));
  };
  EXPECT_EQ(without_process(text), without_process(SerializeText(collector.Collect())));
  EXPECT_TRUE(absl::StrContains(text,
                                "ebpf_geoip_accepted_connections_total{country=\"GB\",port="
                                "\"8081\",service=\"unknown\"} 8081\n"));
}

TEST(ExporterCollector, LabelsSeriesWithTheirServiceAndListsListeners) {
  ConnectionStats stats;
  ServiceNames services(1);
  const IpAddress a = Addr("81.2.69.142");
  const CountryId gb = *CountryId::FromIsoCode("GB");
  stats.Record(gb, 8080, &a, 2, absl::Now(), services.Intern("demo-hello"));
  // Past the cap of one: "other", and counted as such.
  stats.Record(gb, 8080, &a, 5, absl::Now(), services.Intern("second"));
  auto health = [] {
    ExporterHealth health = TestHealth();
    ListenerInfo listener;
    listener.netns = 4026531840u;
    listener.port = 8080;
    listener.service = "demo-hello";
    listener.identity.process = "python3";
    listener.identity.unit = "demo-hello.service";
    health.listeners.push_back(listener);
    health.services_over_cap = 1;
    return health;
  };
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, health);
  const std::string text = collector.CollectText();
  EXPECT_TRUE(
      absl::StrContains(text,
                        "ebpf_geoip_accepted_connections_total{country=\"GB\",port=\"8080\","
                        "service=\"demo-hello\"} 2\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(
      text,
      "ebpf_geoip_accepted_connections_total{country=\"GB\",port=\"8080\",service=\"other\"} 5\n"));
  EXPECT_TRUE(absl::StrContains(
      text,
      "ebpf_geoip_listener_info{port=\"8080\",service=\"demo-hello\",process=\"python3\","
      "unit=\"demo-hello.service\",container_id=\"\",pod_uid=\"\",netns=\"4026531840\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "ebpf_geoip_services_over_cap_total 1\n"));
}

// GB and US reach "web" on 8081: GB 3 connections, 1 MiB up and 3 MiB down,
// two closed after 1 s and 2.1 s; US one closed after 0.1 s. Overflowed
// traffic: one closed after 20 ms. Refused: CN on 22 and on unwatched
// ports, and overflowed ones; incomplete: CN on 22.
void RecordKnownDrain(ConnectionStats& stats, ServiceNames& services) {
  const ServiceId web = services.Intern("web");
  const IpAddress a = Addr("81.2.69.142");
  stats.Record(*CountryId::FromIsoCode("GB"), 8081, &a, 3, absl::Now(), web);
  DrainedTraffic traffic;
  traffic.port = 8081;
  traffic.received_bytes = 1048576;
  traffic.sent_bytes = 3145728;
  traffic.closed = 2;
  traffic.duration_ns = 3'100'000'000;
  traffic.duration_buckets = {0, 0, 1, 1, 0, 0, 0, 0};
  stats.RecordTraffic(*CountryId::FromIsoCode("GB"), web, traffic);
  traffic.received_bytes = 300;
  traffic.sent_bytes = 0;
  traffic.closed = 1;
  traffic.duration_ns = 100'000'000;
  traffic.duration_buckets = {0, 1, 0, 0, 0, 0, 0, 0};
  stats.RecordTraffic(*CountryId::FromIsoCode("US"), web, traffic);
  traffic.port = 0;
  traffic.received_bytes = 70;
  traffic.duration_ns = 20'000'000;
  stats.RecordTraffic(CountryId::Overflow(), ServiceNames::kUnknown, traffic);
  const CountryId cn = *CountryId::FromIsoCode("CN");
  stats.RecordFailure(cn, 0, FailureReason::kRefused, 40);
  stats.RecordFailure(cn, 22, FailureReason::kRefused, 2);
  stats.RecordFailure(cn, 22, FailureReason::kIncomplete, 5);
  stats.RecordFailure(CountryId::Overflow(), 0, FailureReason::kRefused, 9);
}

// The lines of one family in `text`, from its TYPE line to the next HELP.
std::string FamilyLines(const std::string& text, const std::string& name) {
  const size_t start = text.find(absl::StrCat("# TYPE ", name, " "));
  if (start == std::string::npos) return "";
  const size_t end = text.find("# HELP ", start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(ExporterCollector, ExposesTrafficLifetimesAndFailuresExactly) {
  ConnectionStats stats;
  ServiceNames services(64);
  RecordKnownDrain(stats, services);
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, TestHealth);
  const std::string text = collector.CollectText();

  EXPECT_EQ(FamilyLines(text, "ebpf_geoip_received_bytes_total"),
            "# TYPE ebpf_geoip_received_bytes_total counter\n"
            "ebpf_geoip_received_bytes_total{country=\"GB\",port=\"8081\",service=\"web\"} "
            "1048576\n"
            "ebpf_geoip_received_bytes_total{country=\"US\",port=\"8081\",service=\"web\"} 300\n"
            "ebpf_geoip_received_bytes_total{country=\"overflow\",port=\"0\",service=\"unknown\"} "
            "70\n");
  EXPECT_EQ(FamilyLines(text, "ebpf_geoip_sent_bytes_total"),
            "# TYPE ebpf_geoip_sent_bytes_total counter\n"
            "ebpf_geoip_sent_bytes_total{country=\"GB\",port=\"8081\",service=\"web\"} 3145728\n"
            "ebpf_geoip_sent_bytes_total{country=\"US\",port=\"8081\",service=\"web\"} 0\n"
            "ebpf_geoip_sent_bytes_total{country=\"overflow\",port=\"0\",service=\"unknown\"} 0\n");
  EXPECT_EQ(
      FamilyLines(text, "ebpf_geoip_closed_connections_total"),
      "# TYPE ebpf_geoip_closed_connections_total counter\n"
      "ebpf_geoip_closed_connections_total{country=\"GB\",port=\"8081\",service=\"web\"} 2\n"
      "ebpf_geoip_closed_connections_total{country=\"US\",port=\"8081\",service=\"web\"} 1\n"
      "ebpf_geoip_closed_connections_total{country=\"overflow\",port=\"0\",service=\"unknown\"} "
      "1\n");
  EXPECT_EQ(FamilyLines(text, "ebpf_geoip_connection_lifetime_seconds_total"),
            "# TYPE ebpf_geoip_connection_lifetime_seconds_total counter\n"
            "ebpf_geoip_connection_lifetime_seconds_total{country=\"GB\",port=\"8081\","
            "service=\"web\"} 3.1\n"
            "ebpf_geoip_connection_lifetime_seconds_total{country=\"US\",port=\"8081\","
            "service=\"web\"} 0.1\n"
            "ebpf_geoip_connection_lifetime_seconds_total{country=\"overflow\",port=\"0\","
            "service=\"unknown\"} 0.02\n");
  // Per (port, service) only, and cumulative.
  EXPECT_EQ(FamilyLines(text, "ebpf_geoip_connection_duration_seconds"),
            "# TYPE ebpf_geoip_connection_duration_seconds histogram\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"0.01\"} 0\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"0.1\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"1\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"10\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"60\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"600\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"3600\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"0\",service=\"unknown\","
            "le=\"+Inf\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_sum{port=\"0\",service=\"unknown\"} 0.02\n"
            "ebpf_geoip_connection_duration_seconds_count{port=\"0\",service=\"unknown\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"0.01\"} 0\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"0.1\"} 1\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"1\"} 2\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"10\"} 3\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"60\"} 3\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"600\"} 3\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"3600\"} 3\n"
            "ebpf_geoip_connection_duration_seconds_bucket{port=\"8081\",service=\"web\","
            "le=\"+Inf\"} 3\n"
            "ebpf_geoip_connection_duration_seconds_sum{port=\"8081\",service=\"web\"} 3.2\n"
            "ebpf_geoip_connection_duration_seconds_count{port=\"8081\",service=\"web\"} 3\n");
  EXPECT_EQ(
      FamilyLines(text, "ebpf_geoip_failed_connections_total"),
      "# TYPE ebpf_geoip_failed_connections_total counter\n"
      "ebpf_geoip_failed_connections_total{country=\"CN\",port=\"22\",reason=\"refused\"} 2\n"
      "ebpf_geoip_failed_connections_total{country=\"CN\",port=\"22\",reason=\"incomplete\"} "
      "5\n"
      "ebpf_geoip_failed_connections_total{country=\"CN\",port=\"other\",reason=\"refused\"} 40\n"
      "ebpf_geoip_failed_connections_total{country=\"overflow\",port=\"other\",reason="
      "\"refused\"} 9\n");
  // Traffic is not a connection: US has a series now, with no connections
  // and no addresses.
  EXPECT_TRUE(absl::StrContains(text,
                                "ebpf_geoip_accepted_connections_total{country=\"US\",port="
                                "\"8081\",service=\"web\"} 0\n"));
  EXPECT_TRUE(absl::StrContains(
      text,
      "ebpf_geoip_unique_source_addresses{country=\"US\",port=\"8081\",service=\"web\"} 0\n"));
}

TEST(ExporterCollector, CollectTextIsTheTextOfCollectWithTrafficAndFailures) {
  ConnectionStats stats;
  ServiceNames services(64);
  RecordKnownDrain(stats, services);
  // A service name that needs escaping in the histogram's labels too.
  DrainedTraffic traffic;
  traffic.port = 443;
  traffic.closed = 1;
  traffic.duration_ns = 1'234'567'891;
  traffic.duration_buckets = {0, 0, 0, 1, 0, 0, 0, 0};
  stats.RecordTraffic(CountryId::Private(), services.Intern("we\"b\\1"), traffic);
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, TestHealth);
  const std::string text = collector.CollectText();
  auto without_process = [](const std::string& body) {
    return body.substr(0, body.find("# HELP process_"));
  };
  EXPECT_EQ(without_process(text), without_process(SerializeText(collector.Collect())));
  EXPECT_TRUE(absl::StrContains(text,
                                "ebpf_geoip_connection_duration_seconds_sum{port=\"443\","
                                "service=\"we\\\"b\\\\1\"} 1.234567891\n"))
      << text;
}

TEST(ExporterCollector, HelpSaysWhatBytesAndFailuresAre) {
  ConnectionStats stats;
  ServiceNames services(64);
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, TestHealth);
  const std::string text = collector.CollectText();
  EXPECT_TRUE(absl::StrContains(
      text, "# HELP ebpf_geoip_received_bytes_total Payload bytes the kernel counted as received"));
  EXPECT_TRUE(absl::StrContains(
      text,
      "# HELP ebpf_geoip_sent_bytes_total Payload bytes the kernel counted as sent and "
      "acknowledged"));
  EXPECT_TRUE(absl::StrContains(text, "(\"other\" for a port not watched)"));
  // Families without series still say what they are.
  EXPECT_TRUE(absl::StrContains(text, "# TYPE ebpf_geoip_connection_duration_seconds histogram\n"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE ebpf_geoip_failed_connections_total counter\n"));
}

// promtool's own lint of the exposition, where Debian's prometheus package
// is installed: names, types, histogram buckets and suffixes.
TEST(ExporterCollector, PromtoolChecksTheExposition) {
  if (system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  ConnectionStats stats;
  ServiceNames services(64);
  RecordKnownDrain(stats, services);
  stats.Record(CountryId::Overflow(), 8081, nullptr, 2, absl::Now());
  ExporterCollector collector(&stats, &services, {"1", "r", "b"}, TestHealth);
  // Other build trees may run this test at the same time.
  const std::string path =
      absl::StrCat(testing::TempDir(), "/collector_exposition.", getpid(), ".txt");
  {
    std::ofstream file(path);
    file << collector.CollectText();
  }
  FILE* promtool = popen(absl::StrCat("promtool check metrics < ", path, " 2>&1").c_str(), "r");
  ASSERT_NE(promtool, nullptr);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), promtool) != nullptr) output += buffer;
  EXPECT_EQ(pclose(promtool), 0) << output;
  EXPECT_EQ(output, "") << output;
  std::remove(path.c_str());
}

TEST(SerializeText, WritesTheTextFormatWithEscapes) {
  prometheus::MetricFamily family;
  family.name = "test_metric";
  family.help = "Help with a \\ and a\nnewline.";
  family.type = prometheus::MetricType::Gauge;
  for (double value : {0.5, 3.0, -2.0, std::nan(""), HUGE_VAL, 1e20}) {
    prometheus::ClientMetric metric;
    metric.label = {{"path", "a\"b\\c\nd"}};
    metric.gauge.value = value;
    family.metric.push_back(metric);
  }
  prometheus::MetricFamily bare;
  bare.name = "bare_total";
  bare.help = "h";
  bare.type = prometheus::MetricType::Counter;
  bare.metric.emplace_back();
  bare.metric.back().counter.value = 7;

  EXPECT_EQ(SerializeText({family, bare}),
            "# HELP test_metric Help with a \\\\ and a\\nnewline.\n"
            "# TYPE test_metric gauge\n"
            "test_metric{path=\"a\\\"b\\\\c\\nd\"} 0.5\n"
            "test_metric{path=\"a\\\"b\\\\c\\nd\"} 3\n"
            "test_metric{path=\"a\\\"b\\\\c\\nd\"} -2\n"
            "test_metric{path=\"a\\\"b\\\\c\\nd\"} NaN\n"
            "test_metric{path=\"a\\\"b\\\\c\\nd\"} +Inf\n"
            "test_metric{path=\"a\\\"b\\\\c\\nd\"} 1e+20\n"
            "# HELP bare_total h\n"
            "# TYPE bare_total counter\n"
            "bare_total 7\n");
}

}  // namespace
}  // namespace geoip
