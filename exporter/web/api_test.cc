#include "exporter/web/api.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "exporter/web/country_names.h"

namespace geoip {
namespace {

CountryId Iso(const char* code) { return CountryId::FromIsoCode(code).value(); }

IpAddress Address(const char* text) { return ParseIpAddress(text).value(); }

// 2023-11-14T22:13:20Z.
const absl::Time kTime = absl::FromUnixSeconds(1700000000);

// The statistics, service names and stop signal an API instance shares.
struct Fixture {
  explicit Fixture(LiveApi::Options options = {}) {
    api = std::make_unique<LiveApi>(options, &stats, &service_names, &stopping);
  }

  void Record(const char* country, uint16_t port, const char* address, uint64_t count,
              absl::Time when = kTime, const char* service = "unknown") {
    const IpAddress ip = Address(address);
    const CountryId id =
        absl::string_view(country) == "private" ? CountryId::Private() : Iso(country);
    stats.Record(id, port, &ip, count, when, service_names.Intern(service));
  }

  // Traffic of connections from `country` to `port`, `closed` of them
  // closed after 1 s each.
  void Traffic(const char* country, uint16_t port, uint64_t received, uint64_t sent,
               uint64_t closed = 0, const char* service = "unknown") {
    DrainedTraffic traffic;
    traffic.port = port;
    traffic.received_bytes = received;
    traffic.sent_bytes = sent;
    traffic.closed = closed;
    traffic.duration_ns = closed * 1'000'000'000;
    traffic.duration_buckets[2] = closed;
    stats.RecordTraffic(Iso(country), service_names.Intern(service), traffic);
  }

  // Refused connections from `country` (or "overflow") to `port` (0: other).
  void Refused(const char* country, uint16_t port, uint64_t count) {
    const CountryId id =
        absl::string_view(country) == "overflow" ? CountryId::Overflow() : Iso(country);
    stats.RecordFailure(id, port, FailureReason::kRefused, count);
  }

  ConnectionStats stats;
  ServiceNames service_names{64};
  absl::Notification stopping;
  std::unique_ptr<LiveApi> api;
};

// A query for one port and/or service; the other filters unset.
LiveApi::Query Filter(std::optional<uint16_t> port, std::optional<std::string> service) {
  LiveApi::Query query;
  query.port = port;
  query.service = std::move(service);
  return query;
}

HttpRequest Get(std::string query = "") {
  HttpRequest request;
  request.method = "GET";
  request.query = std::move(query);
  request.from_loopback = true;
  return request;
}

// US: 3 connections from 2 addresses on 8081; GB: 1 on 8081; private: 1 on
// 8082. Five in all.
void RecordFive(Fixture& f) {
  f.Record("US", 8081, "8.8.8.8", 2);
  f.Record("US", 8081, "9.9.9.9", 1);
  f.Record("GB", 8081, "81.2.69.142", 1);
  f.Record("private", 8082, "10.1.2.3", 1);
}

TEST(LiveApi, CountriesAreExactJsonMostConnectionsFirst) {
  Fixture f;
  RecordFive(f);
  const HttpResponse response = f.api->Countries(Get());
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(response.body,
            "[{\"id\":\"US\",\"name\":\"United States\",\"connections\":3,"
            "\"unique_addresses\":2,\"percent\":60.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"GB\",\"name\":\"United Kingdom\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":20.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"private\",\"name\":\"Private network\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":20.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0}]\n");
}

TEST(LiveApi, CountriesFilterByPortWithSharesOfThatPort) {
  Fixture f;
  RecordFive(f);
  EXPECT_EQ(f.api->Countries(Get("port=8081")).body,
            "[{\"id\":\"US\",\"name\":\"United States\",\"connections\":3,"
            "\"unique_addresses\":2,\"percent\":75.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"GB\",\"name\":\"United Kingdom\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":25.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0}]\n");
  EXPECT_EQ(f.api->Countries(Get("x=1&port=8082")).body,
            "[{\"id\":\"private\",\"name\":\"Private network\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":100.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0}]\n");
  EXPECT_EQ(f.api->Countries(Get("port=9")).body, "[]\n");
}

TEST(LiveApi, PercentRoundsHalfUpToOneDecimal) {
  Fixture f;
  // 1/16 = 6.25% -> 6.3; 2/16 = 12.5%; 13/16 = 81.25% -> 81.3.
  f.Record("FR", 80, "193.51.24.1", 1);
  f.Record("DE", 80, "193.51.24.2", 2);
  f.Record("JP", 80, "133.11.0.1", 13);
  EXPECT_EQ(f.api->Countries(Get()).body,
            "[{\"id\":\"JP\",\"name\":\"Japan\",\"connections\":13,"
            "\"unique_addresses\":1,\"percent\":81.3,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"DE\",\"name\":\"Germany\",\"connections\":2,"
            "\"unique_addresses\":1,\"percent\":12.5,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"FR\",\"name\":\"France\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":6.3,\"received_bytes\":0,\"sent_bytes\":0,\"closed_"
            "connections\":0}]\n");
  Fixture thirds;
  thirds.Record("ES", 80, "138.100.31.225", 1);
  thirds.Record("SE", 80, "130.237.1.1", 2);
  EXPECT_TRUE(absl::StrContains(
      thirds.api->Countries(Get()).body,
      "\"percent\":66.7,\"received_bytes\":0,\"sent_bytes\":0,\"closed_connections\":0}"));
  EXPECT_TRUE(absl::StrContains(
      thirds.api->Countries(Get()).body,
      "\"percent\":33.3,\"received_bytes\":0,\"sent_bytes\":0,\"closed_connections\":0}"));
}

TEST(LiveApi, BadPortIs400WithAClearMessage) {
  Fixture f;
  RecordFive(f);
  const struct {
    const char* query;
    const char* shown;
  } cases[] = {{"port=abc", "abc"}, {"port=0", "0"},     {"port=65536", "65536"}, {"port=", ""},
               {"port=-1", "-1"},   {"port=+80", "+80"}, {"port=80&port=x", "x"}};
  for (const auto& c : cases) {
    const HttpResponse response = f.api->Countries(Get(c.query));
    EXPECT_EQ(response.status, 400) << c.query;
    EXPECT_EQ(response.content_type, "application/json; charset=utf-8");
    EXPECT_EQ(response.body,
              absl::StrCat("{\"error\":\"port must be a number from 1 to 65535, got \\\"", c.shown,
                           "\\\"\"}\n"))
        << c.query;
  }
}

TEST(LiveApi, PortsListsConnectionsPerPortAscending) {
  Fixture f;
  EXPECT_EQ(f.api->Ports(Get()).body, "[]\n");
  RecordFive(f);
  f.Record("GB", 22, "81.2.69.142", 4);
  EXPECT_EQ(f.api->Ports(Get()).body,
            "[{\"port\":22,\"connections\":4},{\"port\":8081,\"connections\":4},"
            "{\"port\":8082,\"connections\":1}]\n");
}

// Three services, two of them on one port (two network namespaces): web has
// US 2 on 8081 and DE 3 on 8443, api US 1 on 8081, "my app" FR 1 on 9000.
void RecordServices(Fixture& f) {
  f.Record("US", 8081, "8.8.8.8", 2, kTime, "web");
  f.Record("US", 8081, "9.9.9.9", 1, kTime + absl::Seconds(1), "api");
  f.Record("DE", 8443, "193.51.24.1", 3, kTime + absl::Seconds(2), "web");
  f.Record("FR", 9000, "193.51.24.2", 1, kTime + absl::Seconds(3), "my app");
}

TEST(LiveApi, ServicesListsConnectionsPerServiceMostFirst) {
  Fixture f;
  EXPECT_EQ(f.api->Services(Get()).body, "[]\n");
  RecordServices(f);
  const HttpResponse response = f.api->Services(Get());
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/json; charset=utf-8");
  // Ties by name: "api" before "my app".
  EXPECT_EQ(response.body,
            "[{\"service\":\"web\",\"connections\":5},{\"service\":\"api\",\"connections\":1},"
            "{\"service\":\"my app\",\"connections\":1}]\n");
}

TEST(LiveApi, CountriesFilterByServiceAndPort) {
  Fixture f;
  RecordServices(f);
  EXPECT_EQ(f.api->Countries(Get("service=web")).body,
            "[{\"id\":\"DE\",\"name\":\"Germany\",\"connections\":3,"
            "\"unique_addresses\":1,\"percent\":60.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"US\",\"name\":\"United States\",\"connections\":2,"
            "\"unique_addresses\":1,\"percent\":40.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0}]\n");
  const std::string web_on_8081 =
      "[{\"id\":\"US\",\"name\":\"United States\",\"connections\":2,"
      "\"unique_addresses\":1,\"percent\":100.0,\"received_bytes\":0,\"sent_bytes\":0,\"closed_"
      "connections\":0}]\n";
  EXPECT_EQ(f.api->Countries(Get("service=web&port=8081")).body, web_on_8081);
  EXPECT_EQ(f.api->Countries(Get("port=8081&service=web")).body, web_on_8081);
  // Of a repeated parameter, the last counts.
  EXPECT_EQ(f.api->Countries(Get("service=api&port=8081&service=web")).body, web_on_8081);
  // Names no connection has had yet, and a service not on that port: empty.
  EXPECT_EQ(f.api->Countries(Get("service=nosuch")).body, "[]\n");
  EXPECT_EQ(f.api->Countries(Get("service=unknown")).body, "[]\n");
  EXPECT_EQ(f.api->Countries(Get("service=api&port=8443")).body, "[]\n");
  EXPECT_EQ(f.api->Countries(Get(absl::StrCat("service=", std::string(64, 'a')))).status, 200);
  EXPECT_EQ(
      f.api->Countries(Get(absl::StrCat("service=", std::string(58, 'a'), "%C3%A9%C3%A9%C3%A9")))
          .status,
      200);
}

TEST(LiveApi, ServiceNamesAreUrlDecoded) {
  Fixture f;
  RecordServices(f);
  const std::string france =
      "[{\"id\":\"FR\",\"name\":\"France\",\"connections\":1,"
      "\"unique_addresses\":1,\"percent\":100.0,\"received_bytes\":0,\"sent_bytes\":0,\"closed_"
      "connections\":0}]\n";
  for (const char* query : {"service=my%20app", "service=my+app", "service=%6d%79%20%61%70%70",
                            "service=%6D%79%20app"}) {
    EXPECT_EQ(f.api->Countries(Get(query)).body, france) << query;
  }
  EXPECT_EQ(f.api->Countries(Get("service=my%2Bapp")).body, "[]\n");  // "my+app"
}

TEST(LiveApi, BadServiceIs400WithAClearMessage) {
  Fixture f;
  RecordServices(f);
  const struct {
    std::string query;
    const char* error;
  } cases[] = {
      {"service=", "service must be a name of 1 to 64 bytes, got 0 bytes"},
      {absl::StrCat("service=", std::string(65, 'a')),
       "service must be a name of 1 to 64 bytes, got 65 bytes"},
      // Bytes after decoding: 60 + 3 two-byte characters.
      {absl::StrCat("port=8081&service=", std::string(60, 'b'), "%C3%A9%C3%A9%C3%A9"),
       "service must be a name of 1 to 64 bytes, got 66 bytes"},
      {"service=%zz", "service must be URL-encoded (%XX for a byte), got \\\"%zz\\\""},
      {"service=ab%4", "service must be URL-encoded (%XX for a byte), got \\\"ab%4\\\""},
      {"port=80&service=%", "service must be URL-encoded (%XX for a byte), got \\\"%\\\""},
      {"service=web&port=x", "port must be a number from 1 to 65535, got \\\"x\\\""},
  };
  for (const auto& c : cases) {
    for (const HttpResponse& response :
         {f.api->Countries(Get(c.query)), f.api->State(Get(c.query))}) {
      EXPECT_EQ(response.status, 400) << c.query;
      EXPECT_EQ(response.content_type, "application/json; charset=utf-8");
      EXPECT_EQ(response.body, absl::StrCat("{\"error\":\"", c.error, "\"}\n")) << c.query;
    }
  }
}

TEST(LiveApi, StateFiltersByServiceButListsEveryPortAndService) {
  Fixture f;
  RecordServices(f);
  EXPECT_EQ(
      f.api->StateJson(Filter(std::nullopt, "web")),
      "{\"version\":4,\"source\":\"ebpf\",\"port\":null,\"service\":\"web\",\"connections\":5,"
      "\"unique_addresses\":2,\"received_bytes\":0,\"sent_bytes\":0,\"closed_connections\":0,"
      "\"countries\":[{\"id\":\"DE\",\"name\":\"Germany\",\"connections\":3,"
      "\"unique_addresses\":1,\"percent\":60.0,\"received_bytes\":0,\"sent_bytes\":0,\"closed_"
      "connections\":0},"
      "{\"id\":\"US\",\"name\":\"United States\",\"connections\":2,"
      "\"unique_addresses\":1,\"percent\":40.0,\"received_bytes\":0,\"sent_bytes\":0,\"closed_"
      "connections\":0}],"
      "\"ports\":[{\"port\":8081,\"connections\":3},{\"port\":8443,\"connections\":3},"
      "{\"port\":9000,\"connections\":1}],"
      "\"services\":[{\"service\":\"web\",\"connections\":5},"
      "{\"service\":\"api\",\"connections\":1},{\"service\":\"my app\",\"connections\":1}],"
      "\"failures\":[],"
      "\"peers\":[{\"address\":\"193.51.24.0/"
      "24\",\"country\":\"DE\",\"country_name\":\"Germany\",\"connections\":3,\"max_error\":0},"
      "{\"address\":\"8.8.8.0/24\",\"country\":\"US\",\"country_name\":\"United "
      "States\",\"connections\":2,\"max_error\":0}],"
      "\"recent\":["
      "{\"time\":\"2023-11-14T22:13:22.000Z\",\"id\":\"DE\",\"name\":\"Germany\","
      "\"port\":8443,\"service\":\"web\",\"address\":\"193.51.24.0/24\",\"connections\":3},"
      "{\"time\":\"2023-11-14T22:13:20.000Z\",\"id\":\"US\",\"name\":\"United States\","
      "\"port\":8081,\"service\":\"web\",\"address\":\"8.8.8.0/24\",\"connections\":2}]}");
  const HttpResponse response = f.api->State(Get("service=web&port=8081"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, f.api->StateJson(Filter(8081, "web")) + "\n");
  EXPECT_TRUE(absl::StartsWith(response.body,
                               "{\"version\":4,\"source\":\"ebpf\",\"port\":8081,"
                               "\"service\":\"web\",\"connections\":2,\"unique_addresses\":1,"))
      << response.body;
  EXPECT_TRUE(absl::EndsWith(response.body,
                             "\"recent\":[{\"time\":\"2023-11-14T22:13:20.000Z\",\"id\":\"US\","
                             "\"name\":\"United States\",\"port\":8081,\"service\":\"web\","
                             "\"address\":\"8.8.8.0/24\",\"connections\":2}]}\n"))
      << response.body;
  // A name no connection has had yet: nothing selected, the name echoed as
  // JSON, the lists whole.
  const std::string none = f.api->State(Get("service=%22quoted%22")).body;
  EXPECT_TRUE(absl::StartsWith(none,
                               "{\"version\":4,\"source\":\"ebpf\",\"port\":null,"
                               "\"service\":\"\\\"quoted\\\"\",\"connections\":0,"
                               "\"unique_addresses\":0,\"received_bytes\":0,\"sent_bytes\":0,"
                               "\"closed_connections\":0,\"countries\":[],"
                               "\"ports\":[{"))
      << none;
  EXPECT_TRUE(absl::EndsWith(none,
                             "{\"service\":\"my app\",\"connections\":1}],\"failures\":[],"
                             "\"peers\":[],\"recent\":[]}\n"))
      << none;
}

TEST(LiveApi, StateIsWhatAStreamMessageCarries) {
  Fixture f;
  RecordFive(f);
  HttpResponse response = f.api->State(Get("port=8081"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, f.api->StateJson(Filter(8081, std::nullopt)) + "\n");
  EXPECT_TRUE(absl::StartsWith(response.body,
                               "{\"version\":4,\"source\":\"ebpf\",\"port\":8081,"
                               "\"service\":null,\"connections\":4,\"unique_addresses\":3,"))
      << response.body;
  response = f.api->State(Get("port=x"));
  EXPECT_EQ(response.status, 400);
}

TEST(LiveApi, CountriesCarryTheirTrafficAlsoWithoutConnections) {
  Fixture f;
  RecordFive(f);
  f.Traffic("US", 8081, 1048576, 3145728, 2);
  f.Traffic("US", 8082, 100, 0);
  f.Traffic("GB", 8081, 0, 0, 1);
  // A connection accepted before the exporter started: traffic, no
  // connection.
  f.Traffic("JP", 22, 10, 20, 1);
  EXPECT_EQ(f.api->Countries(Get()).body,
            "[{\"id\":\"US\",\"name\":\"United States\",\"connections\":3,"
            "\"unique_addresses\":2,\"percent\":60.0,\"received_bytes\":1048676,"
            "\"sent_bytes\":3145728,\"closed_connections\":2},"
            "{\"id\":\"GB\",\"name\":\"United Kingdom\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":20.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":1},"
            "{\"id\":\"private\",\"name\":\"Private network\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":20.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"JP\",\"name\":\"Japan\",\"connections\":0,"
            "\"unique_addresses\":0,\"percent\":0.0,\"received_bytes\":10,\"sent_bytes\":20,"
            "\"closed_connections\":1}]\n");
  EXPECT_EQ(f.api->Countries(Get("port=8082")).body,
            "[{\"id\":\"private\",\"name\":\"Private network\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":100.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"US\",\"name\":\"United States\",\"connections\":0,"
            "\"unique_addresses\":0,\"percent\":0.0,\"received_bytes\":100,\"sent_bytes\":0,"
            "\"closed_connections\":0}]\n");
  // The state's totals follow the filter.
  EXPECT_TRUE(absl::StrContains(f.api->StateJson(Filter(8081, std::nullopt)),
                                "\"connections\":4,\"unique_addresses\":3,"
                                "\"received_bytes\":1048576,\"sent_bytes\":3145728,"
                                "\"closed_connections\":3,\"countries\":"));
}

// CN: 40 refused on unwatched ports and 2 on 22; US 2 on 22; overflow 9 on
// unwatched ports.
void RecordRefused(Fixture& f) {
  f.Refused("CN", 0, 40);
  f.Refused("CN", 22, 2);
  f.Refused("US", 22, 2);
  f.Refused("overflow", 0, 9);
}

TEST(LiveApi, FailuresPerCountryAndReasonMostFirst) {
  Fixture f;
  EXPECT_EQ(f.api->Failures(Get()).body, "[]\n");
  RecordRefused(f);
  const HttpResponse response = f.api->Failures(Get());
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(response.body,
            "[{\"id\":\"CN\",\"name\":\"China\",\"failed_connections\":42,"
            "\"reasons\":{\"refused\":42}},"
            "{\"id\":\"overflow\",\"name\":\"Not recorded (overflow)\",\"failed_connections\":9,"
            "\"reasons\":{\"refused\":9}},"
            "{\"id\":\"US\",\"name\":\"United States\",\"failed_connections\":2,"
            "\"reasons\":{\"refused\":2}}]\n");
  // Ties (CN and US on 22) in label order.
  EXPECT_EQ(f.api->Failures(Get("port=22")).body,
            "[{\"id\":\"CN\",\"name\":\"China\",\"failed_connections\":2,"
            "\"reasons\":{\"refused\":2}},"
            "{\"id\":\"US\",\"name\":\"United States\",\"failed_connections\":2,"
            "\"reasons\":{\"refused\":2}}]\n");
  EXPECT_EQ(f.api->Failures(Get("port=other")).body,
            "[{\"id\":\"CN\",\"name\":\"China\",\"failed_connections\":40,"
            "\"reasons\":{\"refused\":40}},"
            "{\"id\":\"overflow\",\"name\":\"Not recorded (overflow)\",\"failed_connections\":9,"
            "\"reasons\":{\"refused\":9}}]\n");
  EXPECT_EQ(f.api->Failures(Get("port=8081")).body, "[]\n");
  // Failed connections reached no service: a service does not filter them.
  EXPECT_EQ(f.api->Failures(Get("port=22&service=web")).body, f.api->Failures(Get("port=22")).body);
  // Failures are not connections.
  EXPECT_EQ(f.api->Countries(Get()).body, "[]\n");
  EXPECT_EQ(f.api->Ports(Get()).body, "[]\n");
}

TEST(LiveApi, FailuresListEachReasonOfACountry) {
  Fixture f;
  RecordRefused(f);
  f.stats.RecordFailure(Iso("US"), 22, FailureReason::kIncomplete, 5);
  EXPECT_EQ(f.api->Failures(Get("port=22")).body,
            "[{\"id\":\"US\",\"name\":\"United States\",\"failed_connections\":7,"
            "\"reasons\":{\"refused\":2,\"incomplete\":5}},"
            "{\"id\":\"CN\",\"name\":\"China\",\"failed_connections\":2,"
            "\"reasons\":{\"refused\":2}}]\n");
}

TEST(LiveApi, FailuresPortIsANumberOrOther) {
  Fixture f;
  RecordRefused(f);
  for (const char* query : {"port=Other", "port=0", "port=", "port=other&port=x", "port=65536"}) {
    const HttpResponse response = f.api->Failures(Get(query));
    EXPECT_EQ(response.status, 400) << query;
    EXPECT_TRUE(absl::StartsWith(
        response.body,
        "{\"error\":\"port must be a number from 1 to 65535 or \\\"other\\\", got \\\""))
        << response.body;
  }
  EXPECT_EQ(f.api->Failures(Get("service=%zz")).status, 400);
  // Only failures have an "other" port.
  EXPECT_EQ(f.api->Countries(Get("port=other")).body,
            "{\"error\":\"port must be a number from 1 to 65535, got \\\"other\\\"\"}\n");
  EXPECT_EQ(f.api->State(Get("port=other")).status, 400);
  HttpRequest post = Get();
  post.method = "POST";
  EXPECT_EQ(f.api->Failures(post).status, 405);
}

TEST(LiveApi, StateCarriesFailuresOfItsPort) {
  Fixture f;
  f.Record("US", 22, "8.8.8.8", 1);
  RecordRefused(f);
  EXPECT_EQ(f.api->StateJson(Filter(22, "unknown")),
            "{\"version\":5,\"source\":\"ebpf\",\"port\":22,\"service\":\"unknown\","
            "\"connections\":1,\"unique_addresses\":1,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0,"
            "\"countries\":[{\"id\":\"US\",\"name\":\"United States\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":100.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0}],"
            "\"ports\":[{\"port\":22,\"connections\":1}],"
            "\"services\":[{\"service\":\"unknown\",\"connections\":1}],"
            "\"failures\":[{\"id\":\"CN\",\"name\":\"China\",\"failed_connections\":2,"
            "\"reasons\":{\"refused\":2}},"
            "{\"id\":\"US\",\"name\":\"United States\",\"failed_connections\":2,"
            "\"reasons\":{\"refused\":2}}],"
            "\"peers\":[{\"address\":\"8.8.8.0/24\",\"country\":\"US\",\"country_name\":\"United "
            "States\",\"connections\":1,\"max_error\":0}],"
            "\"recent\":[{\"time\":\"2023-11-14T22:13:20.000Z\",\"id\":\"US\","
            "\"name\":\"United States\",\"port\":22,\"service\":\"unknown\","
            "\"address\":\"8.8.8.0/24\",\"connections\":1}]}");
  EXPECT_TRUE(absl::StrContains(f.api->StateJson({}),
                                "\"failures\":" + f.api->FailuresJson(std::nullopt) + ","));
}

TEST(LiveApi, GetEndpointsRefuseOtherMethods) {
  Fixture f;
  HttpRequest request = Get();
  request.method = "DELETE";
  EXPECT_EQ(f.api->Countries(request).status, 405);
  EXPECT_EQ(f.api->Ports(request).status, 405);
  EXPECT_EQ(f.api->Services(request).status, 405);
  EXPECT_EQ(f.api->State(request).status, 405);
  EXPECT_EQ(f.api->Page(request).status, 405);
}

TEST(LiveApi, StateHasTotalsAndATruncatedFeed) {
  Fixture f;
  f.Record("US", 8081, "8.8.8.8", 2, kTime);
  f.Record("US", 8082, "2001:4860:4860::8888", 1, kTime + absl::Milliseconds(1500));
  const uint64_t version = f.stats.Version();
  EXPECT_EQ(
      f.api->StateJson({}),
      absl::StrCat(
          "{\"version\":", version,
          ",\"source\":\"ebpf\",\"port\":null,\"service\":null,\"connections\":3,"
          "\"unique_addresses\":2,\"received_bytes\":0,\"sent_bytes\":0,\"closed_connections\":0,"
          "\"countries\":[{\"id\":\"US\",\"name\":\"United States\",\"connections\":3,"
          "\"unique_addresses\":2,\"percent\":100.0,\"received_bytes\":0,\"sent_bytes\":0,\"closed_"
          "connections\":0}],"
          "\"ports\":[{\"port\":8081,\"connections\":2},{\"port\":8082,\"connections\":1}],"
          "\"services\":[{\"service\":\"unknown\",\"connections\":3}],"
          "\"failures\":[],"
          "\"peers\":[{\"address\":\"8.8.8.0/24\",\"country\":\"US\",\"country_name\":\"United "
          "States\",\"connections\":2,\"max_error\":0},"
          "{\"address\":\"2001:4860:4860::/48\",\"country\":\"US\",\"country_name\":\"United "
          "States\",\"connections\":1,\"max_error\":0}],"
          "\"recent\":["
          "{\"time\":\"2023-11-14T22:13:21.500Z\",\"id\":\"US\",\"name\":\"United States\","
          "\"port\":8082,\"service\":\"unknown\",\"address\":\"2001:4860:4860::/48\","
          "\"connections\":1},"
          "{\"time\":\"2023-11-14T22:13:20.000Z\",\"id\":\"US\",\"name\":\"United States\","
          "\"port\":8081,\"service\":\"unknown\",\"address\":\"8.8.8.0/24\","
          "\"connections\":2}]}"));
  // The port filter applies to totals, countries and the feed, not to the
  // lists of ports and services the page offers.
  EXPECT_EQ(
      f.api->StateJson(Filter(8082, std::nullopt)),
      absl::StrCat(
          "{\"version\":", version,
          ",\"source\":\"ebpf\",\"port\":8082,\"service\":null,\"connections\":1,"
          "\"unique_addresses\":1,\"received_bytes\":0,\"sent_bytes\":0,\"closed_connections\":0,"
          "\"countries\":[{\"id\":\"US\",\"name\":\"United States\",\"connections\":1,"
          "\"unique_addresses\":1,\"percent\":100.0,\"received_bytes\":0,\"sent_bytes\":0,\"closed_"
          "connections\":0}],"
          "\"ports\":[{\"port\":8081,\"connections\":2},{\"port\":8082,\"connections\":1}],"
          "\"services\":[{\"service\":\"unknown\",\"connections\":3}],"
          "\"failures\":[],"
          "\"peers\":[{\"address\":\"2001:4860:4860::/"
          "48\",\"country\":\"US\",\"country_name\":\"United "
          "States\",\"connections\":1,\"max_error\":0}],"
          "\"recent\":["
          "{\"time\":\"2023-11-14T22:13:21.500Z\",\"id\":\"US\",\"name\":\"United States\","
          "\"port\":8082,\"service\":\"unknown\",\"address\":\"2001:4860:4860::/48\","
          "\"connections\":1}]}"));
}

TEST(LiveApi, FullAddressesOnlyWhenAskedAndOverflowHasNone) {
  LiveApi::Options options;
  options.show_full_addresses = true;
  options.recent = 2;
  Fixture f(options);
  f.Record("US", 80, "8.8.8.8", 1);
  f.Record("US", 80, "2001:4860:4860::8888", 1);
  f.stats.Record(CountryId::Overflow(), 80, nullptr, 7, kTime);
  const std::string state = f.api->StateJson({});
  EXPECT_TRUE(absl::StrContains(state,
                                "\"name\":\"Not recorded (overflow)\",\"port\":80,"
                                "\"service\":\"unknown\",\"address\":null,\"connections\":7}"))
      << state;
  EXPECT_TRUE(absl::StrContains(state, "\"address\":\"2001:4860:4860::8888\"")) << state;
  // recent = 2: the oldest of the three is left out of the feed (top
  // peers, before it, still list it).
  const std::string feed = state.substr(state.find("\"recent\":"));
  EXPECT_FALSE(absl::StrContains(feed, "8.8.8.")) << state;
}

TEST(LiveApi, PageLinksTheMetricsPathEscaped) {
  LiveApi::Options options;
  options.metrics_path = "/m\"<x>";
  Fixture f(options);
  const HttpResponse page = f.api->Page(Get());
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(absl::StrContains(page.body, "<a href=\"/m&quot;&lt;x&gt;\">Metrics</a>"))
      << page.body;
  EXPECT_TRUE(absl::StrContains(page.body, "<body data-source=\"ebpf\">"));
  ASSERT_EQ(page.headers.size(), 1u);
  EXPECT_EQ(page.headers[0].first, "Content-Security-Policy");
  EXPECT_EQ(page.headers[0].second,
            "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'");
  EXPECT_FALSE(absl::StrContains(page.body, "{{"));
}

TEST(LiveApi, RoutesServeThePageItsFilesAndTheApi) {
  Fixture f;
  std::vector<std::string> paths;
  for (const HttpRoute& route : f.api->Routes()) {
    paths.push_back(route.path);
    EXPECT_NE(route.handler == nullptr, route.stream == nullptr) << route.path;
    if (route.path == "/live_map/live_map.js") {
      const HttpResponse js = route.handler(Get());
      EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
      EXPECT_TRUE(absl::StrContains(js.body, "new EventSource('/api/v1/stream'"));
    }
    if (route.path == "/live_map/countries-110m.json") {
      const HttpResponse map = route.handler(Get());
      EXPECT_EQ(map.body.size(), 107761u);  // world-atlas 2.0.2, unmodified
      EXPECT_TRUE(absl::StartsWith(map.body, "{\"type\":\"Topology\""));
    }
  }
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "/", "/live_map/live_map.css", "/live_map/live_map.js",
                       "/live_map/countries-110m.json", "/live_map/centroids.json",
                       "/api/v1/countries", "/api/v1/ports", "/api/v1/services", "/api/v1/failures",
                       "/api/v1/networks", "/api/v1/peers", "/api/v1/state", "/api/v1/stream"}));
}

TEST(CountryName, ComesFromIsoCodesWithSpecialLabelsDescribed) {
  EXPECT_EQ(CountryName(Iso("DE")), "Germany");
  EXPECT_EQ(CountryName(Iso("BO")), "Bolivia");  // common_name, not "…, Plurinational State of"
  EXPECT_EQ(CountryName(Iso("CI")), "Côte d'Ivoire");
  EXPECT_EQ(CountryName(Iso("XK")), "Kosovo");
  EXPECT_EQ(CountryName(Iso("ZZ")), "ZZ");
  EXPECT_EQ(CountryName(CountryId::Private()), "Private network");
  EXPECT_EQ(CountryName(CountryId::Unknown()), "Unknown");
}

// Collects what a stream handler writes; fails writes after fail_after.
// A standard mutex: see "ThreadSanitizer" in CMakeLists.txt.
class FakeStream : public HttpStream {
 public:
  explicit FakeStream(size_t fail_after = 1000) : fail_after_(fail_after) {}

  bool Write(absl::string_view data) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (writes_.size() >= fail_after_) return false;
    writes_.emplace_back(data);
    written_.notify_all();
    return true;
  }

  std::vector<std::string> writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }

  // Waits up to 5 s for at least n writes.
  bool WaitForWrites(size_t n) const {
    std::unique_lock<std::mutex> lock(mu_);
    return written_.wait_for(lock, std::chrono::seconds(5), [&] { return writes_.size() >= n; });
  }

 private:
  const size_t fail_after_;
  mutable std::mutex mu_;
  mutable std::condition_variable written_;
  std::vector<std::string> writes_;  // guarded by mu_
};

LiveApi::Options FastStream() {
  LiveApi::Options options;
  options.keep_alive = absl::Hours(1);
  options.coalesce = absl::Milliseconds(20);
  options.stop_poll = absl::Milliseconds(20);
  return options;
}

TEST(LiveApi, StreamSendsStateOnConnectThenOnChangeUntilStopped) {
  Fixture f(FastStream());
  f.Record("US", 8081, "8.8.8.8", 1);
  FakeStream stream;
  std::thread handler([&] { f.api->Stream(Get("port=8081"), stream); });
  ASSERT_TRUE(stream.WaitForWrites(1));
  EXPECT_EQ(
      stream.writes()[0],
      absl::StrCat("retry: 2000\ndata: ", f.api->StateJson(Filter(8081, std::nullopt)), "\n\n"));

  f.Record("GB", 8081, "81.2.69.142", 2);
  ASSERT_TRUE(stream.WaitForWrites(2));
  const std::string update = stream.writes()[1];
  EXPECT_EQ(update, absl::StrCat("data: ", f.api->StateJson(Filter(8081, std::nullopt)), "\n\n"));
  EXPECT_TRUE(absl::StrContains(update, "\"id\":\"GB\"")) << update;

  f.stopping.Notify();
  handler.join();  // returns within stop_poll
  EXPECT_EQ(stream.writes().size(), 2u);
}

TEST(LiveApi, StreamSendsAnUpdateForFailuresAndTraffic) {
  Fixture f(FastStream());
  FakeStream stream;
  std::thread handler([&] { f.api->Stream(Get(), stream); });
  ASSERT_TRUE(stream.WaitForWrites(1));
  // A scan alone, then a download alone: no connection, an update each.
  f.Refused("CN", 0, 3);
  ASSERT_TRUE(stream.WaitForWrites(2));
  EXPECT_TRUE(absl::StrContains(stream.writes()[1], "\"failed_connections\":3,"))
      << stream.writes()[1];
  f.Traffic("GB", 8081, 5000, 0);
  ASSERT_TRUE(stream.WaitForWrites(3));
  EXPECT_TRUE(absl::StrContains(stream.writes()[2], "\"received_bytes\":5000,"))
      << stream.writes()[2];
  f.stopping.Notify();
  handler.join();
}

TEST(LiveApi, StreamEndsWhenTheClientHasGone) {
  Fixture f(FastStream());
  FakeStream stream(/*fail_after=*/1);
  std::thread handler([&] { f.api->Stream(Get(), stream); });
  ASSERT_TRUE(stream.WaitForWrites(1));
  f.Record("US", 8081, "8.8.8.8", 1);
  handler.join();  // the second write fails, and the handler returns
  EXPECT_EQ(stream.writes().size(), 1u);
}

TEST(LiveApi, StreamSendsKeepAlivesWhenIdle) {
  LiveApi::Options options = FastStream();
  options.keep_alive = absl::Milliseconds(50);
  Fixture f(options);
  FakeStream stream(/*fail_after=*/3);
  std::thread handler([&] { f.api->Stream(Get(), stream); });
  ASSERT_TRUE(stream.WaitForWrites(3));
  handler.join();
  EXPECT_EQ(stream.writes()[1], ": keep-alive\n\n");
  EXPECT_EQ(stream.writes()[2], ": keep-alive\n\n");
}

TEST(LiveApi, StreamRefusesBadPortsAndTooManyViewers) {
  LiveApi::Options options = FastStream();
  options.max_streams = 1;
  Fixture f(options);
  FakeStream bad;
  f.api->Stream(Get("port=x"), bad);
  EXPECT_EQ(bad.writes(),
            std::vector<std::string>{
                "retry: 60000\nevent: failure\ndata: {\"error\":\"port must be a number from 1 "
                "to 65535, got \\\"x\\\"\"}\n\n"});

  FakeStream first;
  std::thread handler([&] { f.api->Stream(Get(), first); });
  ASSERT_TRUE(first.WaitForWrites(1));
  FakeStream second;
  f.api->Stream(Get(), second);
  EXPECT_EQ(second.writes(),
            std::vector<std::string>{
                "retry: 30000\nevent: busy\ndata: {\"error\":\"too many live viewers: poll "
                "/api/v1/state\"}\n\n"});
  f.stopping.Notify();
  handler.join();
  // The slot is free again once a stream ends.
  FakeStream third(/*fail_after=*/1);
  f.api->Stream(Get(), third);
  EXPECT_TRUE(absl::StartsWith(third.writes().at(0), "retry: 2000\n"));
}

TEST(LiveApi, StreamForAServiceNotSeenYetFillsInWhenItAppears) {
  Fixture f(FastStream());
  f.Record("US", 8081, "8.8.8.8", 1, kTime, "web");
  FakeStream stream;
  std::thread handler([&] { f.api->Stream(Get("service=late"), stream); });
  ASSERT_TRUE(stream.WaitForWrites(1));
  EXPECT_TRUE(absl::StrContains(stream.writes()[0],
                                "\"service\":\"late\",\"connections\":0,\"unique_addresses\":0,"
                                "\"received_bytes\":0,\"sent_bytes\":0,\"closed_connections\":0,"
                                "\"countries\":[],"))
      << stream.writes()[0];

  // The name gets its id at the service's first connection; the stream,
  // opened before, now selects it.
  f.Record("GB", 8081, "81.2.69.142", 2, kTime, "late");
  ASSERT_TRUE(stream.WaitForWrites(2));
  const std::string update = stream.writes()[1];
  EXPECT_EQ(update, absl::StrCat("data: ", f.api->StateJson(Filter(std::nullopt, "late")), "\n\n"));
  EXPECT_TRUE(absl::StrContains(update,
                                "\"service\":\"late\",\"connections\":2,\"unique_addresses\":1,"
                                "\"received_bytes\":0,\"sent_bytes\":0,\"closed_connections\":0,"
                                "\"countries\":[{\"id\":\"GB\","))
      << update;
  f.stopping.Notify();
  handler.join();
}

TEST(LiveApi, StreamRefusesBadServices) {
  Fixture f(FastStream());
  FakeStream bad;
  f.api->Stream(Get(absl::StrCat("service=", std::string(65, 'x'))), bad);
  EXPECT_EQ(bad.writes(), std::vector<std::string>{
                              "retry: 60000\nevent: failure\ndata: {\"error\":\"service must be a "
                              "name of 1 to 64 bytes, got 65 bytes\"}\n\n"});
}

// Networks, peers and words: the fixture's stats with networks recorded.
TEST(LiveApi, NetworksAreTheTopAsesForAQueryWithTheRestSummed) {
  LiveApi::Options options;
  options.network_name = [](NetworkId network) {
    return network == NetworkId::Of(15169) ? std::string("Google \"LLC\"") : std::string();
  };
  Fixture f(options);
  const IpAddress google = Address("8.8.8.8");
  const IpAddress arnold = Address("81.2.69.142");
  f.stats.Record(Iso("US"), 8081, &google, 5, kTime, f.service_names.Intern("web"),
                 NetworkId::Of(15169));
  f.stats.Record(Iso("GB"), 8081, &arnold, 2, kTime, f.service_names.Intern("web"),
                 NetworkId::Of(20712));
  f.stats.Record(Iso("GB"), 8082, &arnold, 4, kTime, f.service_names.Intern("api"),
                 NetworkId::Of(20712));
  EXPECT_EQ(f.api->Networks(Get()).body,
            "{\"networks\":[{\"asn\":\"AS20712\",\"as_name\":\"\",\"connections\":6},"
            "{\"asn\":\"AS15169\",\"as_name\":\"Google \\\"LLC\\\"\",\"connections\":5}],"
            "\"other_connections\":0}\n");
  EXPECT_EQ(f.api->Networks(Get("limit=1")).body,
            "{\"networks\":[{\"asn\":\"AS20712\",\"as_name\":\"\",\"connections\":6}],"
            "\"other_connections\":5}\n");
  EXPECT_EQ(f.api->Networks(Get("country=US")).body,
            "{\"networks\":[{\"asn\":\"AS15169\",\"as_name\":\"Google \\\"LLC\\\"\","
            "\"connections\":5}],\"other_connections\":0}\n");
  EXPECT_EQ(f.api->Networks(Get("port=8081&country=GB")).body,
            "{\"networks\":[{\"asn\":\"AS20712\",\"as_name\":\"\",\"connections\":2}],"
            "\"other_connections\":0}\n");
  EXPECT_EQ(f.api->Networks(Get("service=api")).body,
            "{\"networks\":[{\"asn\":\"AS20712\",\"as_name\":\"\",\"connections\":4}],"
            "\"other_connections\":0}\n");
  // A service no connection has had yet selects nothing.
  EXPECT_EQ(f.api->Networks(Get("service=none-yet")).body,
            "{\"networks\":[],\"other_connections\":0}\n");
}

TEST(LiveApi, NetworksAndPeersRefuseBadQueriesSayingWhy) {
  Fixture f;
  for (const char* query : {"country=GBR", "country=", "country=other", "limit=0", "limit=1001",
                            "limit=x", "limit=-1", "port=0"}) {
    SCOPED_TRACE(query);
    const HttpResponse networks = f.api->Networks(Get(query));
    EXPECT_EQ(networks.status, 400);
    EXPECT_TRUE(absl::StrContains(networks.body, "must be")) << networks.body;
    EXPECT_EQ(f.api->Peers(Get(query)).status, 400);
  }
  EXPECT_EQ(f.api->Networks(Get("country=private")).status, 200);
  HttpRequest post = Get();
  post.method = "POST";
  EXPECT_EQ(f.api->Networks(post).status, 405);
  EXPECT_EQ(f.api->Peers(post).status, 405);
}

TEST(LiveApi, PeersAreTheHeaviestPrefixesUnlessFullAddressesAreShown) {
  Fixture prefixes;
  prefixes.Record("US", 8081, "8.8.8.8", 2);
  prefixes.Record("US", 8081, "8.8.8.9", 2);  // the same /24
  prefixes.Record("GB", 8081, "81.2.69.142", 3);
  prefixes.Record("GB", 8082, "81.2.69.142", 1);
  EXPECT_EQ(prefixes.api->Peers(Get()).body,
            "{\"peers\":[{\"address\":\"8.8.8.0/24\",\"country\":\"US\",\"country_name\":"
            "\"United States\",\"connections\":4,\"max_error\":0},"  // ties: by address
            "{\"address\":\"81.2.69.0/24\",\"country\":\"GB\",\"country_name\":"
            "\"United Kingdom\",\"connections\":4,\"max_error\":0}],\"prefix\":true}\n");
  EXPECT_EQ(prefixes.api->Peers(Get("port=8082")).body,
            "{\"peers\":[{\"address\":\"81.2.69.0/24\",\"country\":\"GB\",\"country_name\":"
            "\"United Kingdom\",\"connections\":1,\"max_error\":0}],\"prefix\":true}\n");
  EXPECT_EQ(prefixes.api->Peers(Get("limit=1&port=8081")).body,
            "{\"peers\":[{\"address\":\"8.8.8.0/24\",\"country\":\"US\",\"country_name\":"
            "\"United States\",\"connections\":4,\"max_error\":0}],\"prefix\":true}\n");

  LiveApi::Options full;
  full.show_full_addresses = true;
  ConnectionStats::Options stats_options;
  stats_options.full_peer_addresses = true;
  ConnectionStats stats(stats_options);
  ServiceNames names(8);
  absl::Notification stopping;
  LiveApi api(full, &stats, &names, &stopping);
  const IpAddress a = Address("8.8.8.8"), b = Address("8.8.8.9");
  stats.Record(Iso("US"), 8081, &a, 2, kTime);
  stats.Record(Iso("US"), 8081, &b, 1, kTime);
  EXPECT_EQ(api.Peers(Get()).body,
            "{\"peers\":[{\"address\":\"8.8.8.8\",\"country\":\"US\",\"country_name\":"
            "\"United States\",\"connections\":2,\"max_error\":0},"
            "{\"address\":\"8.8.8.9\",\"country\":\"US\",\"country_name\":\"United States\","
            "\"connections\":1,\"max_error\":0}],\"prefix\":false}\n");
}

TEST(LiveApi, StateCarriesPeersAndWordsOnlyWhenOn) {
  LiveApi::Options with_words;
  with_words.words = true;
  Fixture on(with_words);
  on.Record("GB", 8081, "81.2.69.142", 3);
  ASSERT_TRUE(on.stats.AddWord("<b>hi</b>").ok());
  ASSERT_TRUE(on.stats.AddWord("<b>hi</b>").ok());
  ASSERT_TRUE(on.stats.AddWord("ebpf").ok());
  const std::string state = on.api->StateJson({});
  EXPECT_TRUE(absl::StrContains(
      state,
      ",\"peers\":[{\"address\":\"81.2.69.0/24\",\"country\":\"GB\",\"country_name\":"
      "\"United Kingdom\",\"connections\":3,\"max_error\":0}],"))
      << state;
  EXPECT_TRUE(absl::StrContains(
      state, ",\"words\":[{\"word\":\"<b>hi</b>\",\"count\":2},{\"word\":\"ebpf\",\"count\":1}],"))
      << state;

  ConnectionStats::Options no_peers;
  no_peers.top_peers = 0;
  ConnectionStats stats(no_peers);
  ServiceNames names(8);
  absl::Notification stopping;
  LiveApi off({}, &stats, &names, &stopping);
  const std::string quiet = off.StateJson({});
  EXPECT_FALSE(absl::StrContains(quiet, "\"peers\"")) << quiet;
  EXPECT_FALSE(absl::StrContains(quiet, "\"words\"")) << quiet;
}

}  // namespace
}  // namespace geoip
