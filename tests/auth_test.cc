// The exporter binary with --web.config.file and its HTTP limits, in
// simulated mode (no probe, no root needed): Basic authentication on the
// metrics, the API and the live page, the health endpoint open, bad config
// files refused at start, and stalled clients unable to block a scrape.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "exporter/web/basic_auth.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"
#include "tests/support/stalled_client.h"

namespace geoip {
namespace {

const std::string kExporter = GEOIP_EXPORTER_BINARY;
const std::string kDatabase = std::string(GEOIP_SOURCE_DIR) + "/data/geo-whois-asn-country.mmdb";
constexpr char kPassword[] = "correct horse battery staple";

// A file in a fresh temporary directory, removed with it.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char dir[] = "/tmp/auth_test.XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/web.yml";
    FILE* file = fopen(path_.c_str(), "w");
    EXPECT_NE(file, nullptr);
    fputs(text.c_str(), file);
    fclose(file);
  }
  ~TempFile() {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

// The exporter in simulated mode on a free loopback port.
absl::StatusOr<ExporterProcess> StartExporter(std::vector<std::string> flags) {
  std::vector<std::string> argv = {kExporter, "--connections.source=simulated",
                                   "--geoip.database=" + kDatabase};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return ExporterProcess::Start(argv);
}

std::string Authorization(absl::string_view user, absl::string_view password) {
  return absl::StrCat("Authorization: Basic ",
                      absl::Base64Escape(absl::StrCat(user, ":", password)), "\r\n");
}

absl::StatusOr<HttpReply> Request(int port, absl::string_view method, absl::string_view path,
                                  absl::string_view headers, absl::string_view body = "") {
  return HttpExchange(
      "127.0.0.1", port,
      absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n", headers,
                   body.empty() ? "" : absl::StrCat("Content-Length: ", body.size(), "\r\n"),
                   "\r\n", body),
      absl::Seconds(5));
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> hash = BcryptHash(kPassword, 10);
    ASSERT_TRUE(hash.ok()) << hash.status();
    config_ = std::make_unique<TempFile>(
        absl::StrCat("# written by auth_test\n"
                     "basic_auth_users:\n"
                     "  scraper: ",
                     *hash,
                     "\n"
                     "  other: '$2y$10$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8e'\n"
                     "http_server_config:\n"
                     "  headers:\n"
                     "    X-Frame-Options: deny\n"));
    absl::StatusOr<ExporterProcess> exporter =
        StartExporter({"--web.config.file=" + config_->path()});
    ASSERT_TRUE(exporter.ok()) << exporter.status();
    exporter_ = std::make_unique<ExporterProcess>(*std::move(exporter));
  }

  int port() const { return exporter_->port(); }

  std::unique_ptr<TempFile> config_;
  std::unique_ptr<ExporterProcess> exporter_;
};

TEST_F(AuthTest, RefusesEveryPathButHealthWithoutTheRightCredentials) {
  const std::string right = Authorization("scraper", kPassword);
  const std::vector<std::string> refused = {
      "",
      Authorization("scraper", "correct horse battery stapler"),
      Authorization("Scraper", kPassword),
      Authorization("nobody", kPassword),
      Authorization("other", kPassword),
      "Authorization: Basic !!!\r\n",
      "Authorization: Bearer " + absl::Base64Escape(absl::StrCat("scraper:", kPassword)) + "\r\n",
  };
  for (const char* path : {"/metrics", "/", "/api/v1/countries", "/api/v1/ports", "/api/v1/stream",
                           "/live_map/live_map.js", "/no/such/page"}) {
    for (const std::string& headers : refused) {
      absl::StatusOr<HttpReply> response = Request(port(), "GET", path, headers);
      ASSERT_TRUE(response.ok()) << path << ": " << response.status();
      EXPECT_EQ(response->status, 401) << path << " with " << headers;
      EXPECT_EQ(response->headers["www-authenticate"], "Basic realm=\"ebpf_geoip_exporter\"");
      EXPECT_FALSE(absl::StrContains(response->body, "ebpf_geoip")) << path;
    }
  }
  for (const char* path :
       {"/metrics", "/", "/api/v1/countries", "/api/v1/ports", "/live_map/live_map.js"}) {
    absl::StatusOr<HttpReply> response = Request(port(), "GET", path, right);
    ASSERT_TRUE(response.ok()) << path << ": " << response.status();
    EXPECT_EQ(response->status, 200) << path;
    EXPECT_EQ(response->headers["x-frame-options"], "deny") << path;
  }
  absl::StatusOr<HttpReply> missing = Request(port(), "GET", "/no/such/page", right);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);

  absl::StatusOr<HttpReply> health = Request(port(), "GET", "/-/healthy", "");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
}

TEST_F(AuthTest, OnlyAuthenticatedPostsAreCounted) {
  const std::string right = Authorization("scraper", kPassword);
  absl::StatusOr<HttpReply> anonymous =
      Request(port(), "POST", "/api/v1/connections", "", "81.2.69.142");
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  EXPECT_EQ(anonymous->status, 401);
  absl::StatusOr<HttpReply> posted =
      Request(port(), "POST", "/api/v1/connections", right, "81.2.69.142");
  ASSERT_TRUE(posted.ok()) << posted.status();
  EXPECT_EQ(posted->status, 200) << posted->body;

  absl::StatusOr<HttpReply> metrics = Request(port(), "GET", "/metrics", right);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_EQ(metrics->status, 200);
  absl::StatusOr<MetricsText> parsed = MetricsText::Parse(metrics->body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  // Exactly the one authenticated post: the anonymous one never got in.
  EXPECT_EQ(parsed->Sum("ebpf_geoip_accepted_connections_total"), 1);
  EXPECT_EQ(parsed->Value("ebpf_geoip_accepted_connections_total",
                          {{"country", "GB"}, {"port", "8081"}, {"service", "unknown"}}),
            1);
}

TEST(AuthConfig, BadConfigFilesStopTheStartWithOneClearLine) {
  const struct {
    std::string text;
    std::string message;
  } cases[] = {
      {"basic_auth_users:\n  scraper: plain-text-password\n",
       ": line 2: the password of user \"scraper\" is not a bcrypt hash"},
      {"tls_server_config:\n  cert_file: /etc/x.crt\n",
       ": line 2: missing key_file: cert_file needs key_file"},
      {"basic_auth_users:\n\tscraper: x\n", ": line 2: tab character"},
      {"basic_auth_userz:\n", ": line 1: unknown key \"basic_auth_userz\""},
  };
  for (const auto& c : cases) {
    TempFile config(c.text);
    absl::StatusOr<CommandResult> result =
        RunCommand({kExporter, "--connections.source=simulated", "--web.listen-address=127.0.0.1:0",
                    "--geoip.database=" + kDatabase, "--web.config.file=" + config.path()},
                   absl::Seconds(10));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 1);
    const std::string expected = absl::StrCat(
        "ebpf_geoip_exporter: --web.config.file: web config "
        "file ",
        config.path(), c.message);
    EXPECT_TRUE(absl::StartsWith(result->stderr_text, expected)) << result->stderr_text;
    // One line, nothing else.
    EXPECT_EQ(std::count(result->stderr_text.begin(), result->stderr_text.end(), '\n'), 1)
        << result->stderr_text;
  }
}

// A stalled client, or -1 (failing the test) if it could not connect.
int OpenStalled(int port, absl::string_view prefix) {
  absl::StatusOr<int> fd = OpenStalledConnection(static_cast<uint16_t>(port), prefix);
  EXPECT_TRUE(fd.ok()) << fd.status();
  return fd.ok() ? *fd : -1;
}

TEST(HttpLimits, StalledClientsDoNotBlockAScrapeOfTheExporter) {
  // The timeout is longer than the scrape may take, so only free threads,
  // not expiring clients, can answer the scrape in time.
  absl::StatusOr<ExporterProcess> exporter = StartExporter({"--web.request-timeout=3s"});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  std::vector<int> stalled;
  for (int i = 0; i < 20; ++i) stalled.push_back(OpenStalled(exporter->port(), ""));
  stalled.push_back(OpenStalled(exporter->port(), "GET /metr"));
  absl::SleepFor(absl::Milliseconds(100));

  const absl::Time start = absl::Now();
  absl::StatusOr<HttpReply> scrape =
      HttpGet("127.0.0.1", exporter->port(), "/metrics", absl::Seconds(1));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->status, 200);
  EXPECT_TRUE(absl::StrContains(scrape->body, "ebpf_geoip_build_info"));
  std::cout << "scrape beside " << stalled.size() << " stalled clients: " << took << "\n";

  int closed = 0;
  for (int fd : stalled) closed += ClosedByServer(fd, absl::Seconds(6)) ? 1 : 0;
  std::cout << closed << " of " << stalled.size() << " stalled clients closed "
            << (absl::Now() - start) << " after the scrape\n";
  EXPECT_EQ(closed, static_cast<int>(stalled.size()));
  for (int fd : stalled) close(fd);

  // Garbage and oversized requests get 4xx; the exporter lives on.
  for (const std::string& request :
       {std::string("BLAH\r\n\r\n"),
        "GET /metrics HTTP/1.0\r\nX-Big: " + std::string(40000, 'x') + "\r\n\r\n"}) {
    absl::StatusOr<HttpReply> response =
        HttpExchange("127.0.0.1", exporter->port(), request, absl::Seconds(5));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_GE(response->status, 400);
    EXPECT_LT(response->status, 500);
  }
  absl::StatusOr<HttpReply> after =
      HttpGet("127.0.0.1", exporter->port(), "/-/healthy", absl::Seconds(2));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->status, 200);
  EXPECT_FALSE(exporter->process().Wait(absl::ZeroDuration()).ok());  // still running
}

}  // namespace
}  // namespace geoip
