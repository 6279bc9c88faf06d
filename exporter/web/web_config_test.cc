#include "exporter/web/web_config.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace geoip {
namespace {

// bcrypt of "secret" at cost 4 (checked by basic_auth_test).
constexpr char kHash[] = "$2b$04$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu";

// The error of parsing text, or "" if it parsed.
std::string ErrorOf(const std::string& text) {
  absl::StatusOr<WebConfig> config = ParseWebConfig(text);
  return config.ok() ? "" : std::string(config.status().message());
}

// Every field of a TLS config on one line, so that a mismatch shows which.
std::string Describe(const std::optional<TlsServerConfig>& tls) {
  if (!tls.has_value()) return "plain HTTP";
  return absl::StrCat(
      "cert=", tls->cert_file, " key=", tls->key_file,
      " auth=", static_cast<int>(tls->client_auth_type), " ca=", tls->client_ca_file, " sans=[",
      absl::StrJoin(tls->client_allowed_sans, ","), "] ciphers=[",
      absl::StrJoin(tls->cipher_suites, ","), "] curves=[",
      absl::StrJoin(tls->curve_preferences, ","), "] min=", static_cast<int>(tls->min_version),
      " max=", static_cast<int>(tls->max_version),
      " prefer_server=", tls->prefer_server_cipher_suites);
}

// A TLS config with exporter-toolkit's defaults and the given files.
TlsServerConfig Tls(std::string cert, std::string key) {
  TlsServerConfig tls;
  tls.cert_file = std::move(cert);
  tls.key_file = std::move(key);
  return tls;
}

// Writes text to a new file in a new directory, removed on destruction.
class TempConfig {
 public:
  explicit TempConfig(const std::string& text) {
    char dir[] = "/tmp/web_config_test.XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/web.yml";
    FILE* file = fopen(path_.c_str(), "w");
    EXPECT_NE(file, nullptr);
    EXPECT_EQ(fwrite(text.data(), 1, text.size(), file), text.size());
    fclose(file);
  }
  ~TempConfig() {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

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
  EXPECT_FALSE(config->http2);
  EXPECT_FALSE(config->tls.has_value());
}

TEST(WebConfig, EmptyFileAndEmptySectionsMeanNoAuthenticationAndPlainHttp) {
  for (const char* text :
       {"", "\n# nothing\n", "---\n", "{}\n", "basic_auth_users:\n", "basic_auth_users: {}\n",
        "tls_server_config:\nbasic_auth_users:\n", "tls_server_config: {}\n",
        "tls_server_config: ~\n", "tls_server_config:\n  cert_file:\n  key_file: ''\n",
        "tls_server_config:\n  cipher_suites: []\n  client_auth_type: \"\"\n"}) {
    absl::StatusOr<WebConfig> config = ParseWebConfig(text);
    ASSERT_TRUE(config.ok()) << text << ": " << config.status();
    EXPECT_TRUE(config->basic_auth_users.empty()) << text;
    EXPECT_TRUE(config->headers.empty()) << text;
    EXPECT_TRUE(config->http2) << text;
    EXPECT_EQ(Describe(config->tls), "plain HTTP") << text;
  }
}

TEST(WebConfig, ParsesExporterToolkitFilesToExactStructs) {
  TlsServerConfig full = Tls("server.crt", "/etc/exporter/server.key");
  full.client_auth_type = ClientAuthType::kRequireAndVerifyClientCert;
  full.client_ca_file = "clients/ca.crt";
  full.client_allowed_sans = {"scraper.example.com", "10.0.0.1"};
  full.cipher_suites = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"};
  full.curve_preferences = {"X25519", "CurveP256"};
  full.min_version = TlsVersion::kTls13;
  full.max_version = TlsVersion::kTls13;
  full.prefer_server_cipher_suites = false;

  TlsServerConfig flow = Tls("a.crt", "a.key");
  flow.cipher_suites = {"TLS_A", "TLS_B"};
  flow.min_version = TlsVersion::kTls10;
  flow.max_version = TlsVersion::kTls12;

  TlsServerConfig any_cert = Tls("a.crt", "a.key");
  any_cert.client_auth_type = ClientAuthType::kRequireAnyClientCert;
  any_cert.client_allowed_sans = {"spiffe://example.org/prometheus"};
  TlsServerConfig request = Tls("a.crt", "a.key");
  request.client_auth_type = ClientAuthType::kRequestClientCert;
  TlsServerConfig if_given = Tls("a.crt", "a.key");
  if_given.client_auth_type = ClientAuthType::kVerifyClientCertIfGiven;
  if_given.client_ca_file = "ca.crt";

  const struct {
    std::string text;
    TlsServerConfig tls;
  } cases[] = {
      {"# As exporter-toolkit's documentation writes it.\n"
       "tls_server_config:\n"
       "  cert_file: \"server.crt\"   # relative: next to this file\n"
       "  key_file: '/etc/exporter/server.key'\n"
       "  client_auth_type: RequireAndVerifyClientCert\n"
       "  client_ca_file: >-\n"
       "    clients/ca.crt\n"
       "  client_allowed_sans:\n"
       "    - \"scraper.example.com\"\n"
       "    - 10.0.0.1\n"
       "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "
       "\"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\"]\n"
       "  curve_preferences: [ X25519, 'CurveP256' ]\n"
       "  min_version: TLS13\n"
       "  max_version: \"TLS13\"\n"
       "  prefer_server_cipher_suites: false\n",
       full},
      {"tls_server_config: {cert_file: a.crt, key_file: a.key, min_version: TLS10,\n"
       "  max_version: TLS12, cipher_suites: [\n"
       "    TLS_A,   # a comment inside a flow list\n"
       "    TLS_B,\n"
       "  ]}\n",
       flow},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", Tls("a.crt", "a.key")},
      // A literal block scalar's final line break is not part of the path.
      {"tls_server_config:\n  cert_file: |\n    a.crt\n  key_file: a.key\n", Tls("a.crt", "a.key")},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
       "  client_auth_type: RequireClientCert  # exporter-toolkit's old name\n"
       "  client_allowed_sans: [spiffe://example.org/prometheus]\n",
       any_cert},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
       "  client_auth_type: RequestClientCert\n",
       request},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
       "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n",
       if_given},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
       "  client_auth_type: NoClientCert\n  client_ca_file: ''\n  min_version:\n"
       "  prefer_server_cipher_suites: True\n",
       Tls("a.crt", "a.key")},
  };
  for (const auto& c : cases) {
    absl::StatusOr<WebConfig> config = ParseWebConfig(c.text);
    ASSERT_TRUE(config.ok()) << c.text << config.status();
    EXPECT_EQ(Describe(config->tls), Describe(c.tls)) << c.text;
  }

  absl::StatusOr<WebConfig> headers = ParseWebConfig(
      "http_server_config:\n"
      "  http2: true\n"
      "  headers:\n"
      "    Content-Security-Policy: >-\n"
      "      default-src 'self';\n"
      "      img-src 'self' data:\n"
      "    Strict-Transport-Security: >\n"
      "      max-age=31536000;\n"
      "      includeSubDomains\n"
      "    X-XSS-Protection: '1; mode=block'\n");
  ASSERT_TRUE(headers.ok()) << headers.status();
  EXPECT_EQ(headers->headers,
            (std::vector<std::pair<std::string, std::string>>{
                {"Content-Security-Policy", "default-src 'self'; img-src 'self' data:"},
                {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
                {"X-XSS-Protection", "1; mode=block"}}));
  EXPECT_TRUE(headers->http2);
}

TEST(WebConfig, RejectsWhatItDoesNotSupportNamingTheLine) {
  const std::string user = absl::StrCat("  alice: ", kHash, "\n");
  const std::string tls = "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n";
  const struct {
    std::string text;
    std::string error;  // the message starts with this
  } cases[] = {
      // Keys and structure.
      {"basic_auth_user:\n", "line 1: unknown key \"basic_auth_user\" (supported: "},
      {"\n\nrate_limit:\n  interval: 1s\n", "line 3: unknown key \"rate_limit\""},
      {"basic_auth_users:\n\t alice: x\n",
       "line 2: tab character in the indentation: YAML indents with spaces only"},
      {"basic_auth_users:\n" + user + "\tbob: x\n", "line 3: tab character in the indentation"},
      {"basic_auth_users:\n" + user + "  bob " + kHash + "\n",
       "line 3: user \"bob $2b$04$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu\" needs a "
       "bcrypt hash"},
      {"basic_auth_users:\n" + user + user,
       "line 3: duplicate key \"alice\" in basic_auth_users "
       "(first on line 2)"},
      {"basic_auth_users:\n\"basic_auth_users\":\n",
       "line 2: duplicate key \"basic_auth_users\" in the file (first on line 1)"},
      {"basic_auth_users: alice\n",
       "line 1: basic_auth_users must be a mapping (key: value lines), not a string"},
      {"basic_auth_users:\n  - alice\n", "line 1: basic_auth_users must be a mapping"},
      {"basic_auth_users: [alice]\n", "line 1: basic_auth_users must be a mapping"},
      {"basic_auth_users:alice\n", "line 1: the file must be a mapping"},
      {"- basic_auth_users\n", "line 1: the file must be a mapping (key: value lines), not a list"},
      {"? [a]\n: b\n", "line 1: the keys of the file must be strings, not a list"},
      {"~: 1\n", "line 1: the keys of the file must be strings, not empty"},
      {"basic_auth_users:\n" + user + "    bob: x\n", "line 3: invalid YAML (column 8): "},
      {"basic_auth_users:\n    alice: " + std::string(kHash) + "\n  bob: x\n",
       "line 3: invalid YAML (column 3): end of map not found"},
      {"basic_auth_users:\n  alice: a: b\n", "line 2: invalid YAML (column 11): "},
      {"basic_auth_users:\n  alice: 'x' y\n", "line 2: invalid YAML"},
      {"tls_server_config:\n  cipher_suites: [A,\n  B\n", "line 4: invalid YAML"},
      {"basic_auth_users:\n  alice: x\x01\n", "line 2: control character"},
      {std::string("basic_auth_users:\n\n  alice: x\0y\n", 32), "line 3: control character"},
      {"basic_auth_users: {}\n---\nhttp_server_config: {}\n",
       "line 2: text after the end of the first YAML document (a --- or a stray bracket?): a "
       "web config file holds one document"},
      // yaml-cpp's LoadAll loops forever on these (the second found by the fuzzer).
      {"\n,\n", "line 2: text after the end of the first YAML document"},
      {"\xde\xde\xde\xde\xde\xde  A, #[ c\n, # c\n  }\nsbB]ai-",
       "line 2: text after the end of the first YAML document"},
      // Users.
      {"basic_auth_users:\n  alice: secret\n",
       "line 2: the password of user \"alice\" is not a bcrypt hash"},
      {"basic_auth_users:\n  alice: $2b$03$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu\n",
       "line 2: the password of user \"alice\""},
      {"basic_auth_users:\n  alice: $6$salt$hash\n", "line 2: the password of user \"alice\""},
      {"basic_auth_users: {alice: x}\n", "line 1: the password of user \"alice\""},
      {"basic_auth_users:\n  alice: &hash x\n", "line 2: the password of user \"alice\""},
      {"basic_auth_users:\n  alice:\n", "line 2: user \"alice\" needs a bcrypt hash"},
      {"basic_auth_users:\n  alice: [x]\n", "line 2: user \"alice\" needs a bcrypt hash"},
      {"basic_auth_users:\n  \"a:b\": " + std::string(kHash) + "\n",
       "line 2: a user name must be non-empty and contain no colon"},
      {"basic_auth_users:\n  \"a\\nb\": " + std::string(kHash) + "\n",
       "line 2: a user name contains a control character"},
      // http_server_config.
      {"http_server_config:\n  headers:\n    Set-Cookie: x\n",
       "line 3: header \"Set-Cookie\" cannot be set"},
      {"http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
       "line 3: X-Frame-Options must be deny or sameorigin"},
      {"http_server_config:\n  headers:\n    X-Content-Type-Options: off\n",
       "line 3: X-Content-Type-Options must be nosniff"},
      {"http_server_config:\n  headers:\n    X-XSS-Protection:\n",
       "line 3: header \"X-XSS-Protection\" needs a value"},
      {"http_server_config:\n  headers:\n    X-XSS-Protection: [1]\n",
       "line 3: header \"X-XSS-Protection\" must be a string, not a list"},
      {"http_server_config:\n  headers:\n    X-XSS-Protection: \"1\\r\\nSet-Cookie: x\"\n",
       "line 3: header \"X-XSS-Protection\" contains a control character"},
      {"http_server_config:\n  headers:\n    Content-Security-Policy: |\n      a\n      b\n",
       "line 3: header \"Content-Security-Policy\" contains a control character"},
      {"http_server_config:\n  headers: x\n", "line 2: headers must be a mapping"},
      {"http_server_config:\n  http2: maybe\n", "line 2: http2 must be true or false"},
      {"http_server_config:\n  http2: \"true\"\n", "line 2: http2 must be true or false"},
      {"http_server_config:\n  http2:\n", "line 2: http2 must be true or false"},
      {"http_server_config:\n  http2: [true]\n", "line 2: http2 must be true or false"},
      {"http_server_config:\n  tls: x\n", "line 2: unknown key \"tls\" in http_server_config"},
      {"http_server_config: [headers]\n", "line 1: http_server_config must be a mapping"},
      // tls_server_config: files.
      {"tls_server_config: server.crt\n", "line 1: tls_server_config must be a mapping"},
      {"tls_server_config:\n  cert_file: a.crt\n",
       "line 2: missing key_file: cert_file needs key_file"},
      {"tls_server_config:\n  min_version: TLS12\n  key_file: a.key\n",
       "line 3: missing cert_file: key_file needs cert_file"},
      {"tls_server_config:\n  cert_file: ''\n  key_file: a.key\n",
       "line 3: missing cert_file: key_file needs cert_file"},
      {"tls_server_config:\n  cert_file:\n  min_version: TLS13\n  max_version: TLS13\n",
       "line 3: missing cert_file: tls_server_config sets min_version, which needs cert_file and "
       "key_file; add them to serve HTTPS, or remove tls_server_config for plain HTTP"},
      {"tls_server_config:\n  client_auth_type: NoClientCert\n",
       "line 2: missing cert_file: tls_server_config sets client_auth_type"},
      {"tls_server_config:\n  prefer_server_cipher_suites: false\n",
       "line 2: missing cert_file: tls_server_config sets prefer_server_cipher_suites"},
      {"tls_server_config:\n  cert_file: [a.crt]\n  key_file: a.key\n",
       "line 2: cert_file must be a string, not a list"},
      {"tls_server_config:\n  cert_file: a.crt\n  key_file: {path: a.key}\n",
       "line 3: key_file must be a string, not a mapping"},
      {tls + "  cert_file: b.crt\n",
       "line 4: duplicate key \"cert_file\" in tls_server_config (first on line 2)"},
      {tls + "  cert: |\n    -----BEGIN CERTIFICATE-----\n",
       "line 4: tls_server_config.cert (PEM written inline) is not supported: put it in a file "
       "and use cert_file"},
      {tls + "  key: x\n",
       "line 4: tls_server_config.key (PEM written inline) is not supported: "
       "put it in a file and use key_file"},
      {tls + "  client_ca: x\n",
       "line 4: tls_server_config.client_ca (PEM written inline) is not "
       "supported: put it in a file and use client_ca_file"},
      {tls + "  ca_file: x\n", "line 4: unknown key \"ca_file\" in tls_server_config (supported: "},
      // Client authentication.
      {tls + "  client_ca_file: ca.crt\n",
       "line 4: client_ca_file is set, but client_auth_type is NoClientCert (the default), so no "
       "client certificate is asked for: set client_auth_type: RequireAndVerifyClientCert, or "
       "remove client_ca_file"},
      {tls + "  client_ca_file: ca.crt\n  client_auth_type: NoClientCert\n",
       "line 4: client_ca_file is set, but client_auth_type is NoClientCert"},
      {tls + "  client_auth_type: VerifyClientCertIfGiven\n",
       "line 4: this client_auth_type verifies client certificates and needs client_ca_file"},
      {tls + "  min_version: TLS12\n  client_auth_type: RequireAndVerifyClientCert\n",
       "line 5: this client_auth_type verifies client certificates and needs client_ca_file"},
      {tls + "  client_auth_type: RequireAndVerify\n",
       "line 4: unknown client_auth_type \"RequireAndVerify\": use one of NoClientCert, "
       "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, "
       "RequireAndVerifyClientCert"},
      {tls + "  client_auth_type: RequestClientCert\n  client_allowed_sans: [a]\n",
       "line 5: client_allowed_sans needs a client certificate on every connection"},
      // Versions, ciphers and curves.
      {tls + "  min_version: TLS14\n",
       "line 4: unknown min_version \"TLS14\": use one of TLS10, TLS11, TLS12, TLS13"},
      {tls + "  max_version: 1.3\n",
       "line 4: unknown max_version \"1.3\": use one of TLS10, TLS11, TLS12, TLS13"},
      {tls + "  min_version: TLS13\n  max_version: TLS12\n",
       "line 4: min_version TLS13 is above max_version TLS12: lower min_version or raise "
       "max_version"},
      {tls + "  max_version: TLS11\n",
       "line 4: min_version TLS12 (the default) is above max_version TLS11"},
      {tls + "  min_version: [TLS12]\n", "line 4: min_version must be a string, not a list"},
      {tls + "  cipher_suites: TLS_AES_128_GCM_SHA256\n",
       "line 4: cipher_suites must be a list of strings, e.g. [A, B], not a string"},
      {tls + "  cipher_suites:\n    - TLS_A\n    - [TLS_B]\n",
       "line 6: each entry of cipher_suites must be a non-empty string, not a list"},
      {tls + "  cipher_suites: [TLS_A, '']\n",
       "line 4: each entry of cipher_suites must be a non-empty string, not empty"},
      {tls + "  curve_preferences:\n    - X25519\n    - P256\n",
       "line 6: unknown curve \"P256\" in curve_preferences: use CurveP256, CurveP384, CurveP521 "
       "or X25519"},
      {tls + "  prefer_server_cipher_suites: maybe\n",
       "line 4: prefer_server_cipher_suites must be true or false"},
      // An alias that makes the tree cyclic is walked no deeper than the schema.
      {tls + "  cipher_suites: &loop [*loop]\n",
       "line 4: each entry of cipher_suites must be a non-empty string, not a list"},
  };
  for (const auto& c : cases) {
    const std::string error = ErrorOf(c.text);
    EXPECT_TRUE(absl::StartsWith(error, c.error)) << "text:\n" << c.text << "error: " << error;
  }
}

TEST(WebConfig, HostileNestingIsAnErrorNotAStackOverflow) {
  const std::string cases[] = {
      std::string(10000, '['),
      absl::StrCat("tls_server_config:\n  cipher_suites: ", std::string(10000, '['), "\n"),
      [] {
        std::string text;
        for (int i = 0; i < 10000; ++i) text += "{a: ";
        return text;
      }(),
      [] {
        std::string text;
        for (int i = 0; i < 20000; ++i) text += "- ";
        return text + "x\n";
      }(),
  };
  for (const std::string& text : cases) {
    const std::string error = ErrorOf(text);
    EXPECT_TRUE(absl::StartsWith(error, "line ")) << error;
    EXPECT_TRUE(absl::StrContains(error, "nested too deeply for a web config file")) << error;
  }
  // Nesting by indentation, as deep as 64 KiB allows, is still an error
  // about the shape, not a crash.
  std::string indented;
  for (int i = 0; indented.size() < 60 * 1024; ++i) {
    indented += std::string(i, ' ') + "a:\n";
  }
  EXPECT_TRUE(absl::StartsWith(ErrorOf(indented), "line 1: unknown key \"a\""))
      << ErrorOf(indented);
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
  {
    TempConfig file(absl::StrCat("basic_auth_users:\n  alice: ", kHash, "\n  bob: x\n"));
    absl::StatusOr<WebConfig> config = LoadWebConfig(file.path());
    ASSERT_FALSE(config.ok());
    EXPECT_TRUE(absl::StartsWith(config.status().message(),
                                 absl::StrCat("web config file ", file.path(), ": line 3: ")))
        << config.status();
  }
  absl::StatusOr<WebConfig> config = LoadWebConfig("/nonexistent/web.yml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(config.status().message(), "/nonexistent/web.yml"));
}

TEST(WebConfig, LoadRefusesFilesOver64KiB) {
  // Exactly 64 KiB of comments is a valid (empty) file; one byte more is not.
  std::string text;
  for (int i = 0; i < 1024; ++i) text += "#" + std::string(62, 'x') + "\n";
  ASSERT_EQ(text.size(), 64u * 1024);
  {
    TempConfig file(text);
    absl::StatusOr<WebConfig> config = LoadWebConfig(file.path());
    EXPECT_TRUE(config.ok()) << config.status();
  }
  TempConfig file(text + "\n");
  absl::StatusOr<WebConfig> config = LoadWebConfig(file.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), absl::StrCat("web config file ", file.path(),
                                                    " is over 64 KiB: not a web config file"));
}

TEST(WebConfig, LoadResolvesRelativeTlsPathsAgainstTheFilesDirectory) {
  TempConfig file(
      "tls_server_config:\n"
      "  cert_file: server.crt\n"
      "  key_file: /etc/exporter/server.key\n"
      "  client_auth_type: RequireAndVerifyClientCert\n"
      "  client_ca_file: ../ca/clients.crt\n");
  absl::StatusOr<WebConfig> config = LoadWebConfig(file.path());
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->tls.has_value());
  EXPECT_EQ(config->tls->cert_file, file.dir() + "/server.crt");
  EXPECT_EQ(config->tls->key_file, "/etc/exporter/server.key");
  EXPECT_EQ(config->tls->client_ca_file, file.dir() + "/../ca/clients.crt");

  // Without TLS nothing is resolved, and no file is looked at.
  TempConfig plain("tls_server_config: {}\n");
  config = LoadWebConfig(plain.path());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->tls.has_value());
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
