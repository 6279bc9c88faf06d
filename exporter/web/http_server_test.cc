#include "exporter/web/http_server.h"

#include <civetweb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/http_get.h"
#include "tests/support/stalled_client.h"

namespace geoip {
namespace {

std::unique_ptr<HttpServer> StartServer(HttpServer::Options options,
                                        const std::string& listen_address = "127.0.0.1:0") {
  options.listen_address = listen_address;
  std::vector<HttpRoute> routes;
  routes.push_back({"/metrics",
                    [](const HttpRequest&) {
                      return HttpResponse{200, "text/plain", "up 1\n", {}};
                    },
                    nullptr});
  routes.push_back({"/-/healthy",
                    [](const HttpRequest&) {
                      return HttpResponse{200, "text/plain", "OK\n", {}};
                    },
                    nullptr});
  routes.push_back({"/peer",
                    [](const HttpRequest& request) {
                      return HttpResponse{200,
                                          "text/plain",
                                          absl::StrCat(request.remote_address,
                                                       request.from_loopback ? " loopback" : ""),
                                          {}};
                    },
                    nullptr});
  routes.push_back({"/echo",
                    [](const HttpRequest& request) {
                      return HttpResponse{200, "text/plain", request.body, {}};
                    },
                    nullptr});
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(options, routes);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

using ReplyOr = absl::StatusOr<HttpReply>;

// Sends request as is to the server on loopback and reads the reply until
// the server closes, for at most timeout.
ReplyOr Send(int port, absl::string_view request, absl::Duration timeout = absl::Seconds(5)) {
  return HttpExchange("127.0.0.1", static_cast<uint16_t>(port), request, timeout);
}

// The body of GET /peer from host (an IPv4 or IPv6 address) to port, or
// the error.
std::string PeerSeenFrom(const std::string& host, int port) {
  ReplyOr reply = HttpExchange(host, static_cast<uint16_t>(port), "GET /peer HTTP/1.0\r\n\r\n",
                               absl::Seconds(5));
  if (!reply.ok()) return "unreachable";
  return reply->status == 200 ? reply->body : absl::StrCat("status ", reply->status);
}

// Whether IPv6 listening must work here: civetweb's own word on how it was
// built and the kernel's on IPv6 sockets, not the code tested.
bool Ipv6Expected() {
  if (mg_check_feature(MG_FEATURES_IPV6) == 0) return false;
  const int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

ReplyOr Send(const HttpServer& server, absl::string_view request) {
  return Send(server.port(), request);
}

// A stalled client, or -1 (failing the test) if it could not connect.
int OpenStalled(int port, absl::string_view prefix) {
  absl::StatusOr<int> fd = OpenStalledConnection(static_cast<uint16_t>(port), prefix);
  EXPECT_TRUE(fd.ok()) << fd.status();
  return fd.ok() ? *fd : -1;
}

TEST(HttpServer, AsksForCredentialsOnEveryPathButTheOpenOnes) {
  HttpServer::Options options;
  options.authorize = [](const HttpRequest& request) {
    auto header = request.headers.find("authorization");
    return header != request.headers.end() && header->second == "Basic YWxpY2U6c2VjcmV0";
  };
  options.response_headers = {{"X-Frame-Options", "deny"}};
  std::unique_ptr<HttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);

  for (const char* path : {"/metrics", "/", "/no/such/page", "/echo"}) {
    ReplyOr response = Send(*server, absl::StrCat("GET ", path, " HTTP/1.0\r\n\r\n"));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 401) << path;
    EXPECT_EQ(response->headers["www-authenticate"], "Basic realm=\"ebpf_geoip_exporter\"");
    EXPECT_EQ(response->headers["x-frame-options"], "deny");
    EXPECT_EQ(response->body, "401 Unauthorized\n");
  }
  ReplyOr wrong =
      Send(*server, "GET /metrics HTTP/1.0\r\nAuthorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n");
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_EQ(wrong->status, 401);

  ReplyOr right =
      Send(*server, "GET /metrics HTTP/1.0\r\nauthorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n");
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(right->status, 200);
  EXPECT_EQ(right->body, "up 1\n");
  EXPECT_EQ(right->headers["x-frame-options"], "deny");

  ReplyOr health = Send(*server, "GET /-/healthy HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
}

TEST(HttpServer, WithoutAnAuthorizerServesEveryone) {
  std::unique_ptr<HttpServer> server = StartServer({});
  ASSERT_NE(server, nullptr);
  ReplyOr response = Send(*server, "GET /metrics HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers.count("www-authenticate"), 0u);
}

TEST(HttpServer, AnswersMalformedAndOversizedRequestsWith4xx) {
  HttpServer::Options options;
  options.max_header_bytes = 8192;
  options.max_body_bytes = 1000;
  std::unique_ptr<HttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  std::string many_headers = "GET /metrics HTTP/1.0\r\n";
  for (int i = 0; i < 100; ++i) absl::StrAppend(&many_headers, "X-H", i, ": v\r\n");
  many_headers += "\r\n";
  const std::vector<std::string> requests = {
      "GARBAGE\r\n\r\n",
      "\x01\x02\x03 / HTTP/1.0\r\n\r\n",
      "GET /metrics HTTP/1.0\r\nNoColonHere\r\n\r\n",
      "GET /metrics HTTP/1.0\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n",
      many_headers,
      "POST /echo HTTP/1.0\r\nContent-Length: 100000\r\n\r\n",
      "POST /echo HTTP/1.0\r\nContent-Length: -5\r\n\r\n",
      "POST /echo HTTP/1.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
  };
  for (const std::string& request : requests) {
    ReplyOr response = Send(*server, request);
    ASSERT_TRUE(response.ok()) << request.substr(0, 60) << ": " << response.status();
    EXPECT_GE(response->status, 400) << request.substr(0, 60);
    EXPECT_LT(response->status, 500) << request.substr(0, 60);
    std::cout << response->status << " for " << absl::CHexEscape(request.substr(0, 40)) << "\n";
  }
  // And the server is still there.
  ReplyOr after = Send(*server, "GET /metrics HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->status, 200);
  ReplyOr echo = Send(*server, "POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(echo->body, "hello");
}

TEST(HttpServer, NeverReadsTheRestOfARefusedRequestAsAnotherRequest) {
  // A refused request's body holds a second request; with keep-alive it
  // would be served as if it had been sent on its own.
  HttpServer::Options options;
  options.authorize = [](const HttpRequest& request) { return request.path == "/echo"; };
  std::unique_ptr<HttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  const std::string inner = "GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\ninner!";
  ReplyOr reply = Send(*server, absl::StrCat("POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                             "Content-Length: ",
                                             inner.size(), "\r\n\r\n", inner));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 401);
  EXPECT_EQ(reply->headers["connection"], "close");
  EXPECT_EQ(reply->body, "401 Unauthorized\n");  // and nothing after it
}

TEST(HttpServer, StalledClientsDoNotBlockAScrapeAndAreClosedAfterTheTimeout) {
  // The timeout is longer than the scrape may take, so only free threads,
  // not expiring clients, can answer the scrape in time.
  HttpServer::Options options;
  options.request_timeout = absl::Seconds(3);
  std::unique_ptr<HttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  // 20 connections that never send a byte, one that stops half-way through
  // its request line, and one that stops in its headers.
  std::vector<int> stalled;
  for (int i = 0; i < 20; ++i) stalled.push_back(OpenStalled(server->port(), ""));
  stalled.push_back(OpenStalled(server->port(), "GET /metr"));
  stalled.push_back(OpenStalled(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  absl::SleepFor(absl::Milliseconds(200));  // let the server pick them up

  const absl::Time start = absl::Now();
  ReplyOr scrape = Send(server->port(), "GET /metrics HTTP/1.0\r\n\r\n", absl::Seconds(1));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->status, 200);
  EXPECT_LT(took, absl::Seconds(1));
  std::cout << "scrape beside " << stalled.size() << " stalled clients took " << took << "\n";

  // None is closed early; all are closed once the request timeout passes.
  for (int fd : stalled) EXPECT_FALSE(ClosedByServer(fd, absl::ZeroDuration()));
  const absl::Time wait_start = absl::Now();
  int closed = 0;
  for (int fd : stalled) closed += ClosedByServer(fd, absl::Seconds(6)) ? 1 : 0;
  std::cout << closed << " of " << stalled.size() << " closed after " << (absl::Now() - start)
            << "\n";
  EXPECT_EQ(closed, static_cast<int>(stalled.size()));
  EXPECT_GE(absl::Now() - wait_start, absl::Seconds(2));
  for (int fd : stalled) close(fd);
}

TEST(HttpServer, ATricklingClientIsCutOffAtTheRequestTimeout) {
  HttpServer::Options options;
  options.request_timeout = absl::Milliseconds(1500);
  std::unique_ptr<HttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  const int fd = OpenStalled(server->port(), "G");
  const absl::Time start = absl::Now();
  // One header byte every 200 ms: each read succeeds, but the request as a
  // whole must finish within the timeout. Bounded at 10 s.
  bool closed = false;
  const std::string trickle = "ET /metrics HTTP/1.1\r\nX-Slow: " + std::string(100, 'a');
  for (size_t i = 0; i < trickle.size() && absl::Now() - start < absl::Seconds(10); ++i) {
    if (ClosedByServer(fd, absl::Milliseconds(200)) ||
        send(fd, &trickle[i], 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
  }
  const absl::Duration lasted = absl::Now() - start;
  close(fd);
  std::cout << "trickling client cut off after " << lasted << "\n";
  EXPECT_TRUE(closed);
  EXPECT_LT(lasted, absl::Seconds(4));
}

TEST(HttpServer, BeyondItsThreadsAScrapeWaitsAtMostTheRequestTimeout) {
  // The documented limit of a thread per connection: with every thread held
  // by a stalled client, a scrape waits until the timeout frees one.
  HttpServer::Options options;
  options.threads = 4;
  options.request_timeout = absl::Milliseconds(1000);
  std::unique_ptr<HttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  std::vector<int> stalled;
  for (int i = 0; i < 4; ++i) stalled.push_back(OpenStalled(server->port(), ""));
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  ReplyOr scrape = Send(server->port(), "GET /metrics HTTP/1.0\r\n\r\n");
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->status, 200);
  EXPECT_LT(took, absl::Seconds(3));
  std::cout << "scrape with all 4 threads stalled took " << took << "\n";
  for (int fd : stalled) close(fd);
}

struct UrlCase {
  std::string listen_address;
  int port;
  std::string want;
};

TEST(BrowserUrl, NamesTheRealPortAndAHostThisMachineReaches) {
  const std::vector<UrlCase> cases = {
      {":19100", 19100, "http://localhost:19100/"},
      {"0.0.0.0:19100", 19100, "http://localhost:19100/"},
      {":0", 40123, "http://localhost:40123/"},  // the port the kernel chose
      {"127.0.0.1:0", 40123, "http://127.0.0.1:40123/"},
      {"127.0.0.1:9500", 9500, "http://127.0.0.1:9500/"},
      {"localhost:9500", 9500, "http://127.0.0.1:9500/"},
      {"192.0.2.7:9500", 9500, "http://192.0.2.7:9500/"},
  };
  for (const UrlCase& c : cases) {
    EXPECT_EQ(BrowserUrl(c.listen_address, c.port), c.want) << c.listen_address;
  }
  EXPECT_EQ(BrowserUrl("127.0.0.1:9500", 9500, /*tls=*/true), "https://127.0.0.1:9500/");
  EXPECT_EQ(BrowserUrl(":9500", 9500, /*tls=*/true), "https://localhost:9500/");
  if (Ipv6Expected()) {
    EXPECT_EQ(BrowserUrl("[::1]:9500", 9500), "http://[::1]:9500/");
    EXPECT_EQ(BrowserUrl("[0:0::1]:0", 40123), "http://[::1]:40123/");
    EXPECT_EQ(BrowserUrl("[::]:9500", 9500, /*tls=*/true), "https://localhost:9500/");
  }
}

struct ListenCase {
  std::string listen_address;
  std::string want;  // civetweb's form, or the start of the error
};

TEST(ToCivetwebListen, TakesPrometheusFormsAndRefusesWhatCannotWork) {
  const bool ipv6 = Ipv6Expected();
  std::vector<ListenCase> cases = {
      {"0.0.0.0:19100", "19100"},
      {"127.0.0.1:0", "127.0.0.1:0"},
      {"localhost:9500", "127.0.0.1:9500"},
      {"19100", "listen address \"19100\" has no port"},
      {"127.0.0.1:http", "listen address \"127.0.0.1:http\" has a bad port"},
      {"::1:19100", "listen address \"::1:19100\" must name an IP address"},
      {"[not-an-address]:19100", "listen address \"[not-an-address]:19100\" must name an IPv6"},
      {"example.org:19100", "listen address \"example.org:19100\" must name an IP address"},
  };
  if (ipv6) {
    // Every interface is dual-stack where IPv6 works: civetweb's "+PORT".
    cases.push_back({":19100", "+19100"});
    cases.push_back({"[::1]:19100", "[::1]:19100"});
    cases.push_back({"[::]:0", "[::]:0"});
    cases.push_back({"[0:0:0::1]:80", "[::1]:80"});
  } else {
    cases.push_back({":19100", "19100"});
    cases.push_back({"[::1]:19100", "listen address \"[::1]:19100\" is IPv6, and"});
  }
  for (const ListenCase& c : cases) {
    absl::StatusOr<std::string> listen = ToCivetwebListen(c.listen_address);
    const std::string got = listen.ok() ? *listen : std::string(listen.status().message());
    EXPECT_TRUE(absl::StartsWith(got, c.want)) << c.listen_address << " gave " << got;
  }
  if (!ipv6) {
    const std::string error(ToCivetwebListen("[::1]:19100").status().message());
    EXPECT_TRUE(absl::StrContains(error, "listen on an IPv4 address such as :PORT")) << error;
  }
}

TEST(HttpServer, ListensOnIpv6AndOnBothFamiliesForEveryInterface) {
  if (!Ipv6Expected()) {
    // Debian 12's civetweb is built without IPv6: what start-up says then
    // is checked in ToCivetwebListen's test above.
    GTEST_SKIP() << "civetweb " << mg_version() << " without IPv6, or no IPv6 in this kernel";
  }
  std::unique_ptr<HttpServer> v6 = StartServer({}, "[::1]:0");
  ASSERT_NE(v6, nullptr);
  EXPECT_EQ(PeerSeenFrom("::1", v6->port()), "::1 loopback");
  EXPECT_EQ(PeerSeenFrom("127.0.0.1", v6->port()), "unreachable");

  // ":0" is both: an IPv4 client is seen as IPv4, not as ::ffff:127.0.0.1,
  // so that address rules (--web.words-from) and logs see one form.
  std::unique_ptr<HttpServer> both = StartServer({}, ":0");
  ASSERT_NE(both, nullptr);
  EXPECT_EQ(PeerSeenFrom("127.0.0.1", both->port()), "127.0.0.1 loopback");
  EXPECT_EQ(PeerSeenFrom("::1", both->port()), "::1 loopback");
  EXPECT_TRUE(CheckCanListen(absl::StrCat(":", both->port())).code() ==
              absl::StatusCode::kUnavailable);

  std::unique_ptr<HttpServer> v4 = StartServer({}, "0.0.0.0:0");
  ASSERT_NE(v4, nullptr);
  EXPECT_EQ(PeerSeenFrom("127.0.0.1", v4->port()), "127.0.0.1 loopback");
  EXPECT_EQ(PeerSeenFrom("::1", v4->port()), "unreachable");
  EXPECT_TRUE(CheckCanListen(absl::StrCat("[::1]:", v6->port())).code() ==
              absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace geoip
