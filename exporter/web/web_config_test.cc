#include "exporter/web/web_config.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// bcrypt of "secret" at cost 4 (checked by basic_auth_test).
constexpr char kHash[] = "$2b$04$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu";

// The error of parsing text, or "" if it parsed.
std::string ErrorOf(const std::string& text) {
  absl::StatusOr<WebConfig> config = ParseWebConfig(text);
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(WebConfig, ParsesUsersQuotedAndUnquotedWithComments) {
  const std::string text = absl::StrCat(
      "---\n"
      "# Who may scrape.\n"
      "\n"
      "basic_auth_users:   # bcrypt only\n"
      "  alice: ",
      kHash,
      "\n"
      "  # bob is quoted twice over\n"
      "  \"bob\": \"",
      kHash,
      "\"   # trailing comment\r\n"
      "  'carol o''neil': '",
      kHash,
      "'\n"
      "tls_server_config: {}\n"
      "http_server_config:\n"
      "    http2: false\n"
      "    headers:\n"
      "        X-Frame-Options: deny\n"
      "        Content-Security-Policy: \"default-src 'self'  # not a comment\"\n"
      "        X-Content-Type-Options: nosniff\n");
  absl::StatusOr<WebConfig> config = ParseWebConfig(text);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->basic_auth_users,
            (std::map<std::string, std::string>{
                {"alice", kHash}, {"bob", kHash}, {"carol o'neil", kHash}}));
  // nosniff is always sent, so it is not repeated.
  EXPECT_EQ(config->headers,
            (std::vector<std::pair<std::string, std::string>>{
                {"X-Frame-Options", "deny"},
                {"Content-Security-Policy", "default-src 'self'  # not a comment"}}));
}

TEST(WebConfig, EmptyFileAndEmptySectionsMeanNoAuthentication) {
  for (const char* text : {"", "\n# nothing\n", "basic_auth_users:\n", "basic_auth_users: {}\n",
                           "tls_server_config:\nbasic_auth_users:\n"}) {
    absl::StatusOr<WebConfig> config = ParseWebConfig(text);
    ASSERT_TRUE(config.ok()) << text << ": " << config.status();
    EXPECT_TRUE(config->basic_auth_users.empty()) << text;
  }
}

TEST(WebConfig, RejectsTlsServerConfigPointingToTheProxy) {
  const std::string error = ErrorOf(
      "basic_auth_users:\n"
      "  alice: " +
      std::string(kHash) +
      "\n"
      "tls_server_config:\n"
      "  cert_file: server.crt\n"
      "  key_file: server.key\n");
  EXPECT_TRUE(absl::StartsWith(error, "line 3: tls_server_config is not supported")) << error;
  EXPECT_TRUE(absl::StrContains(error, "civetweb 1.15 crashes")) << error;
  EXPECT_TRUE(absl::StrContains(error, "deploy/tls/stunnel.conf")) << error;
  EXPECT_TRUE(absl::StrContains(error, "deploy/tls/nginx.conf")) << error;
  EXPECT_TRUE(absl::StartsWith(ErrorOf("tls_server_config: server.crt\n"),
                               "line 1: tls_server_config is not supported"));
}

TEST(WebConfig, RejectsWhatItDoesNotSupportNamingTheLine) {
  const std::string user = absl::StrCat("  alice: ", kHash, "\n");
  const struct {
    std::string text;
    std::string error;  // the message starts with this
  } cases[] = {
      {"basic_auth_user:\n", "line 1: unknown key \"basic_auth_user\""},
      {"\n\nrate_limit:\n  interval: 1s\n", "line 3: unknown key \"rate_limit\""},
      {"basic_auth_users:\n\t alice: x\n", "line 2: tab character"},
      {"basic_auth_users:\n" + user + "  bob " + kHash + "\n", "line 3: expected \"key: value\""},
      {"basic_auth_users:\n  alice: secret\n",
       "line 2: the password of user \"alice\" is not a "
       "bcrypt hash"},
      {"basic_auth_users:\n  alice: $2b$03$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu\n",
       "line 2: the password of user \"alice\""},
      {"basic_auth_users:\n  alice: $6$salt$hash\n", "line 2: the password of user \"alice\""},
      {"basic_auth_users:\n  alice:\n", "line 2: user \"alice\" needs a bcrypt hash"},
      {"basic_auth_users:\n" + user + user, "line 3: duplicate key \"alice\" (first on line 2)"},
      {"basic_auth_users:\n  \"a:b\": " + std::string(kHash) + "\n",
       "line 2: a user name must be non-empty and contain no colon"},
      {"basic_auth_users: alice\n", "line 1: basic_auth_users must be a mapping"},
      {"basic_auth_users:\n" + user + "    bob: x\n", "line 3: unexpected indentation"},
      {"basic_auth_users:\n    alice: " + std::string(kHash) + "\n  bob: x\n",
       "line 3: indentation does not line up"},
      {"  basic_auth_users:\n", "line 1: the first key must not be indented"},
      {"basic_auth_users:\n  - alice\n", "line 2: lists are not supported"},
      {"basic_auth_users: {alice: x}\n", "line 1: unsupported YAML (value starts with '{')"},
      {"basic_auth_users: {} x\n", "line 1: unexpected text after {}"},
      {"basic_auth_users: [alice]\n", "line 1: unsupported YAML (value starts with '[')"},
      {"basic_auth_users:\n  alice: &hash x\n", "line 2: unsupported YAML (value starts with '&')"},
      {"basic_auth_users:\n  alice: \"unterminated\n", "line 2: quoted string is not closed"},
      {"basic_auth_users:\n  alice: \"a\\nb\"\n", "line 2: unsupported escape"},
      {"basic_auth_users:\n  alice: 'x' y\n", "line 2: unexpected text after the closing quote"},
      {"basic_auth_users:alice\n", "line 1: expected \"key: value\""},
      {"http_server_config:\n  headers:\n    Set-Cookie: x\n",
       "line 3: header \"Set-Cookie\" "
       "cannot be set"},
      {"http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
       "line 3: X-Frame-Options must be deny or sameorigin"},
      {"http_server_config:\n  headers:\n    X-Content-Type-Options: off\n",
       "line 3: X-Content-Type-Options must be nosniff"},
      {"http_server_config:\n  http2: maybe\n", "line 2: http2 must be true or false"},
      {"http_server_config:\n  tls: x\n", "line 2: unknown key \"tls\" in http_server_config"},
      {"basic_auth_users:\n  alice: a: b\n", "line 2: a value may not contain \": \""},
      {"basic_auth_users:\n  alice: x\x01\n", "line 2: control character"},
  };
  for (const auto& c : cases) {
    const std::string error = ErrorOf(c.text);
    EXPECT_TRUE(absl::StartsWith(error, c.error)) << "text:\n" << c.text << "error: " << error;
  }
}

TEST(WebConfig, KnowsBcryptHashes) {
  EXPECT_TRUE(IsBcryptHash(kHash));
  EXPECT_TRUE(IsBcryptHash("$2y$10$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8e"));
  EXPECT_TRUE(IsBcryptHash("$2a$31$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8e"));
  EXPECT_FALSE(IsBcryptHash("$2x$10$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8e"));
  EXPECT_FALSE(IsBcryptHash("$2y$32$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8e"));
  EXPECT_FALSE(IsBcryptHash("$2y$1a$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8e"));
  EXPECT_FALSE(IsBcryptHash("$2y$10$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8"));
  EXPECT_FALSE(IsBcryptHash("$2y$10$abcdefghijklmnopqrstuuPp7HPfoAs8I2dCQCQ/fW7zEJv8I8C8!"));
  EXPECT_FALSE(IsBcryptHash(""));
}

TEST(WebConfig, LoadNamesTheFileAndTheLine) {
  char path[] = "/tmp/web_config_test.XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = absl::StrCat("basic_auth_users:\n  alice: ", kHash, "\n  bob: x\n");
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  absl::StatusOr<WebConfig> config = LoadWebConfig(path);
  unlink(path);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StartsWith(config.status().message(),
                               absl::StrCat("web config file ", path, ": line 3: ")))
      << config.status();

  config = LoadWebConfig("/nonexistent/web.yml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(config.status().message(), "/nonexistent/web.yml"));
}

TEST(WebConfig, AppliesAuthenticationAndHeadersToServerOptions) {
  HttpServer::Options options;
  ApplyWebConfig(WebConfig{}, &options);
  EXPECT_FALSE(options.authorize);

  absl::StatusOr<WebConfig> config = ParseWebConfig(
      absl::StrCat("basic_auth_users:\n  alice: ", kHash,
                   "\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  ApplyWebConfig(*config, &options);
  ASSERT_TRUE(options.authorize);
  EXPECT_EQ(options.response_headers.size(), 1u);
  HttpRequest request;
  EXPECT_FALSE(options.authorize(request));
  request.headers["authorization"] = "Basic YWxpY2U6c2VjcmV0";  // alice:secret
  EXPECT_TRUE(options.authorize(request));
  request.headers["authorization"] = "Basic YWxpY2U6d3Jvbmc=";  // alice:wrong
  EXPECT_FALSE(options.authorize(request));
  EXPECT_TRUE(options.open_paths.contains("/-/healthy"));
}

}  // namespace
}  // namespace geoip
