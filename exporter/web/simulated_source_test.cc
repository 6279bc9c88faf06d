#include "exporter/web/simulated_source.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/web/api.h"

namespace geoip {
namespace {

std::shared_ptr<const GeoIpDatabase> BundledDatabase() {
  absl::StatusOr<GeoIpDatabase> database =
      GeoIpDatabase::Open(GEOIP_SOURCE_DIR "/data/geo-whois-asn-country.mmdb");
  EXPECT_TRUE(database.ok()) << database.status();
  return std::make_shared<const GeoIpDatabase>(*std::move(database));
}

// A source over the bundled database, as the exporter has by default, and
// the API that reads what it records.
struct Fixture {
  explicit Fixture(bool enabled)
      : geolocator(BundledDatabase()),
        recorder(&geolocator, &stats),
        source(SimulatedSource::Options{enabled}, &recorder),
        api(LiveApi::Options{}, &stats, &service_names, &stopping) {}

  ConnectionStats stats;
  ServiceNames service_names{64};
  Geolocator geolocator;
  ConnectionRecorder recorder;
  SimulatedSource source;
  absl::Notification stopping;
  LiveApi api;
};

HttpRequest Get() {
  HttpRequest request;
  request.method = "GET";
  request.from_loopback = true;
  return request;
}

HttpRequest Post(std::string body, bool from_loopback = true) {
  HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/connections";
  request.body = std::move(body);
  request.from_loopback = from_loopback;
  return request;
}

TEST(SimulatedSource, PostIs404UnlessSimulated) {
  Fixture f(/*enabled=*/false);
  const HttpResponse response = f.source.Post(Post("8.8.8.8"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(
      response.body,
      "{\"error\":\"POST /api/v1/connections exists only with --connections.source=simulated\"}\n");
  EXPECT_EQ(f.stats.Version(), 0u);
}

TEST(SimulatedSource, PostIsLoopbackOnly) {
  Fixture f(/*enabled=*/true);
  const HttpResponse response = f.source.Post(Post("8.8.8.8", /*from_loopback=*/false));
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(response.body,
            "{\"error\":\"POST /api/v1/connections is accepted only from loopback clients\"}\n");
  EXPECT_EQ(f.stats.Version(), 0u);
}

TEST(SimulatedSource, PostRecordsThroughTheGeolocator) {
  Fixture f(/*enabled=*/true);
  HttpResponse response =
      f.source.Post(Post(" {\"address\": \"138.100.31.225\", \"port\": 8082}\n"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "{\"id\":\"ES\",\"name\":\"Spain\",\"port\":8082}\n");
  // The original demo's bare address, on the default port.
  response = f.source.Post(Post("8.8.8.8\n"));
  EXPECT_EQ(response.body, "{\"id\":\"US\",\"name\":\"United States\",\"port\":8081}\n");
  response = f.source.Post(Post("{\"port\":8081,\"address\":\"2001:4860:4860::8888\"}"));
  EXPECT_EQ(response.body, "{\"id\":\"US\",\"name\":\"United States\",\"port\":8081}\n");
  response = f.source.Post(Post("{\"address\":\"10.1.2.3\"}"));
  EXPECT_EQ(response.body, "{\"id\":\"private\",\"name\":\"Private network\",\"port\":8081}\n");
  EXPECT_EQ(f.api.Countries(Get()).body,
            "[{\"id\":\"US\",\"name\":\"United States\",\"connections\":2,"
            "\"unique_addresses\":2,\"percent\":50.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"ES\",\"name\":\"Spain\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":25.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0},"
            "{\"id\":\"private\",\"name\":\"Private network\",\"connections\":1,"
            "\"unique_addresses\":1,\"percent\":25.0,\"received_bytes\":0,\"sent_bytes\":0,"
            "\"closed_connections\":0}]\n");
  EXPECT_EQ(f.geolocator.stats().lookups, 4u);
}

TEST(SimulatedSource, BadPostBodiesAre400AndChangeNothing) {
  Fixture f(/*enabled=*/true);
  const struct {
    const char* body;
    const char* error;
  } cases[] = {
      {"",
       "empty body: send {\\\"address\\\":\\\"8.8.8.8\\\",\\\"port\\\":8081} "
       "or a bare address"},
      {"  \n",
       "empty body: send {\\\"address\\\":\\\"8.8.8.8\\\",\\\"port\\\":8081} "
       "or a bare address"},
      {"8.8.8",
       "\\\"8.8.8\\\" is not an IPv4 or IPv6 address; send "
       "{\\\"address\\\":\\\"8.8.8.8\\\",\\\"port\\\":8081} or a bare address"},
      {"address=8.8.8.8",
       "\\\"address=8.8.8.8\\\" is not an IPv4 or IPv6 address; send "
       "{\\\"address\\\":\\\"8.8.8.8\\\",\\\"port\\\":8081} or a bare address"},
      {"{}", "missing \\\"address\\\""},
      {"{\"address\":\"8.8.8.8\"", "expected ',' or '}'"},
      {"{\"address\":\"8.8.8.8\"}x", "unexpected text after the JSON object"},
      {"{\"address\":8}", "\\\"address\\\" must be a string such as \\\"8.8.8.8\\\""},
      {"{\"address\":\"nowhere\"}", "\\\"nowhere\\\" is not an IPv4 or IPv6 address"},
      {"{\"address\":\"8.8.8.8\",\"port\":0}", "\\\"port\\\" must be from 1 to 65535, got 0"},
      {"{\"address\":\"8.8.8.8\",\"port\":70000}",
       "\\\"port\\\" must be from 1 to 65535, got 70000"},
      {"{\"address\":\"8.8.8.8\",\"port\":\"80\"}", "\\\"port\\\" must be a number such as 8081"},
      {"{\"address\":\"8.8.8.8\",\"port\":-5}", "\\\"port\\\" must be a number such as 8081"},
      {"{\"address\":\"8.8.8.8\",\"port\":99999999999}",
       "\\\"port\\\" must be from 1 to 65535, got 99999999999"},
      {"{\"address\":\"8.8.8.8\",\"address\":\"9.9.9.9\"}", "\\\"address\\\" appears twice"},
      {"{\"address\":\"8.8.8.8\",\"country\":\"US\"}",
       "unknown field \\\"country\\\": the fields are \\\"address\\\" and \\\"port\\\""},
      {"{\"addr\\\"ess\":\"8.8.8.8\"}", "unterminated string, or one with a backslash"},
      {"[\"8.8.8.8\"]",
       "\\\"[\\\"8.8.8.8\\\"]\\\" is not an IPv4 or IPv6 address; send "
       "{\\\"address\\\":\\\"8.8.8.8\\\",\\\"port\\\":8081} or a bare address"},
  };
  for (const auto& c : cases) {
    const HttpResponse response = f.source.Post(Post(c.body));
    EXPECT_EQ(response.status, 400) << c.body;
    EXPECT_EQ(response.body, absl::StrCat("{\"error\":\"", c.error, "\"}\n")) << c.body;
  }
  EXPECT_EQ(f.stats.Version(), 0u);
  EXPECT_EQ(f.geolocator.stats().lookups, 0u);
}

TEST(SimulatedSource, PostRefusesLargeBodiesAndOtherMethods) {
  Fixture f(/*enabled=*/true);
  HttpResponse response = f.source.Post(Post(std::string(1025, ' ') + "8.8.8.8"));
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(response.body, "{\"error\":\"body over 1024 bytes\"}\n");
  HttpRequest get = Post("8.8.8.8");
  get.method = "GET";
  EXPECT_EQ(f.source.Post(get).status, 405);
  EXPECT_EQ(f.stats.Version(), 0u);
}

TEST(SimulatedSource, RouteIsTheConnectionsPath) {
  Fixture f(/*enabled=*/true);
  HttpRoute route = f.source.Route();
  EXPECT_EQ(route.path, "/api/v1/connections");
  ASSERT_NE(route.handler, nullptr);
  EXPECT_EQ(route.handler(Post("8.8.8.8")).status, 200);
  EXPECT_EQ(f.stats.Version(), 1u);
}

}  // namespace
}  // namespace geoip
