#include "exporter/web/tls_context.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace geoip {
namespace {

const std::string kData = std::string(GEOIP_SOURCE_DIR) + "/tests/testdata/tls/";

TlsServerConfig Config(const std::string& cert, const std::string& key) {
  TlsServerConfig config;
  config.cert_file = kData + cert;
  config.key_file = kData + key;
  return config;
}

// The certificate's notAfter, read here with OpenSSL, not by the code tested.
int64_t NotAfterOf(const std::string& path) {
  FILE* file = fopen(path.c_str(), "r");
  if (file == nullptr) return -1;
  X509* certificate = PEM_read_X509(file, nullptr, nullptr, nullptr);
  fclose(file);
  if (certificate == nullptr) return -1;
  struct tm tm {};
  ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &tm);
  X509_free(certificate);
  return timegm(&tm);
}

std::string ErrorOf(const TlsServerConfig& config) {
  absl::StatusOr<std::unique_ptr<TlsContext>> context = TlsContext::Create(config);
  return context.ok() ? "OK" : std::string(context.status().message());
}

TEST(TlsContext, ServesAMatchingPairAndKnowsItsExpiry) {
  absl::StatusOr<std::unique_ptr<TlsContext>> context =
      TlsContext::Create(Config("server.crt", "server.key"));
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ((*context)->stats().not_after, NotAfterOf(kData + "server.crt"));
  EXPECT_EQ((*context)->stats().reloads, 0u);
}

struct ErrorCase {
  std::string what;
  TlsServerConfig config;
  std::vector<std::string> says;  // every one must be in the message
};

TEST(TlsContext, RefusesBadFilesAndSettingsSayingWhatToDo) {
  std::vector<ErrorCase> cases = {
      {"missing certificate",
       Config("no-such.crt", "server.key"),
       {"tls_server_config.cert_file", "no-such.crt", "cannot read it", "No such file"}},
      {"not PEM", Config("garbage.pem", "server.key"), {"cert_file", "no PEM certificate"}},
      {"missing key", Config("server.crt", "no-such.key"), {"key_file", "cannot read it"}},
      {"another certificate's key",
       Config("server.crt", "client.key"),
       {"client.key is not the key of the certificate in", "server.crt"}},
      {"encrypted key",
       Config("server.crt", "encrypted.key"),
       {"no unencrypted PEM private key", "without a passphrase"}},
  };
  TlsServerConfig cipher = Config("server.crt", "server.key");
  cipher.cipher_suites = {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_NO_SUCH_SUITE"};
  cases.push_back({"unknown cipher suite", cipher, {"TLS_NO_SUCH_SUITE is not a TLS 1.2 cipher"}});
  TlsServerConfig curve = Config("server.crt", "server.key");
  curve.curve_preferences = {"X25519", "CurveP999"};
  cases.push_back({"unknown curve", curve, {"unknown curve CurveP999", "CurveP256"}});
  TlsServerConfig ca = Config("server.crt", "server.key");
  ca.client_auth_type = ClientAuthType::kRequireAndVerifyClientCert;
  ca.client_ca_file = kData + "garbage.pem";
  cases.push_back({"client CA not PEM", ca, {"client_ca_file", "no PEM certificate"}});
  ca.client_ca_file = kData + "no-such-ca.crt";
  cases.push_back({"client CA missing", ca, {"client_ca_file", "cannot read it"}});
  for (const ErrorCase& c : cases) {
    const std::string error = ErrorOf(c.config);
    for (const std::string& part : c.says) {
      EXPECT_TRUE(absl::StrContains(error, part)) << c.what << ": " << error;
    }
  }
}

TEST(TlsContext, TakesGoNamesOfCipherSuitesAndIgnoresTls13OnesAsGoDoes) {
  TlsServerConfig config = Config("server.crt", "server.key");
  // Go's old name of the ChaCha20 suite has no "_SHA256"; TLS 1.3 suites
  // are always on in Go, and listing them changes nothing.
  config.cipher_suites = {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_AES_128_GCM_SHA256",
                          "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"};
  config.curve_preferences = {"CurveP256", "CurveP384", "CurveP521", "X25519"};
  EXPECT_EQ(ErrorOf(config), "OK");
  config.cipher_suites = {"TLS_AES_256_GCM_SHA384"};
  EXPECT_EQ(ErrorOf(config), "OK");
}

// Copies a file over another by rename, as a certificate renewal does.
void Replace(const std::string& from, const std::string& to) {
  const std::string temporary = to + ".new";
  std::filesystem::copy_file(from, temporary, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(temporary, to);
}

TEST(TlsContext, RereadsRenewedFilesOnlyOnceBothMatch) {
  char dir_template[] = "/tmp/tls_context_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  TlsServerConfig config;
  config.cert_file = dir + "/cert.pem";
  config.key_file = dir + "/key.pem";
  Replace(kData + "server.crt", config.cert_file);
  Replace(kData + "server.key", config.key_file);
  absl::StatusOr<std::unique_ptr<TlsContext>> created = TlsContext::Create(config);
  ASSERT_TRUE(created.ok()) << created.status();
  const TlsContext& context = **created;
  const int64_t first = NotAfterOf(kData + "server.crt");
  const int64_t renewed = NotAfterOf(kData + "renewed.crt");
  ASSERT_NE(first, renewed);

  (void)context.Current();  // nothing changed: nothing read
  EXPECT_EQ(context.stats().reloads, 0u);
  EXPECT_EQ(context.stats().reload_failures, 0u);

  // The certificate first: the old key does not match it. One failure,
  // however many handshakes see the same files.
  Replace(kData + "renewed.crt", config.cert_file);
  for (int i = 0; i < 3; ++i) (void)context.Current();
  EXPECT_EQ(context.stats().reload_failures, 1u);
  EXPECT_EQ(context.stats().reloads, 0u);
  EXPECT_EQ(context.stats().not_after, first);

  Replace(kData + "renewed.key", config.key_file);
  for (int i = 0; i < 3; ++i) (void)context.Current();
  EXPECT_EQ(context.stats().reloads, 1u);
  EXPECT_EQ(context.stats().reload_failures, 1u);
  EXPECT_EQ(context.stats().not_after, renewed);

  // A file gone keeps the renewed pair serving, counted once.
  std::filesystem::remove(config.key_file);
  for (int i = 0; i < 3; ++i) (void)context.Current();
  EXPECT_EQ(context.stats().reload_failures, 2u);
  EXPECT_EQ(context.stats().not_after, renewed);
  std::filesystem::remove_all(dir);
}

TEST(TlsContext, AcceptsPeersByChainVerdictAndAllowedSans) {
  FILE* file = fopen((kData + "client.crt").c_str(), "r");
  ASSERT_NE(file, nullptr);
  X509* client = PEM_read_X509(file, nullptr, nullptr, nullptr);
  fclose(file);
  ASSERT_NE(client, nullptr);

  struct Case {
    ClientAuthType type;
    std::vector<std::string> sans;
    bool chain_ok;
    int depth;
    bool want;
  };
  const std::vector<Case> cases = {
      // Verifying types follow OpenSSL's verdict on the chain.
      {ClientAuthType::kRequireAndVerifyClientCert, {}, true, 0, true},
      {ClientAuthType::kRequireAndVerifyClientCert, {}, false, 0, false},
      {ClientAuthType::kVerifyClientCertIfGiven, {}, false, 1, false},
      // The others take any certificate.
      {ClientAuthType::kRequireAnyClientCert, {}, false, 0, true},
      {ClientAuthType::kRequestClientCert, {}, false, 1, true},
      // Allowed SANs: any DNS name, IP address (any spelling) or e-mail
      // address of the client's certificate, checked on the leaf only.
      {ClientAuthType::kRequireAndVerifyClientCert, {"prometheus.example"}, true, 0, true},
      {ClientAuthType::kRequireAndVerifyClientCert, {"2001:DB8::0:7"}, true, 0, true},
      {ClientAuthType::kRequireAndVerifyClientCert, {"ops@example.org"}, true, 0, true},
      {ClientAuthType::kRequireAndVerifyClientCert, {"intruder.example"}, true, 0, false},
      {ClientAuthType::kRequireAndVerifyClientCert, {"intruder.example"}, true, 1, true},
      {ClientAuthType::kRequireAnyClientCert, {"intruder.example"}, false, 0, false},
  };
  for (const Case& c : cases) {
    TlsServerConfig config = Config("server.crt", "server.key");
    config.client_auth_type = c.type;
    config.client_allowed_sans = c.sans;
    if (c.type == ClientAuthType::kRequireAndVerifyClientCert ||
        c.type == ClientAuthType::kVerifyClientCertIfGiven) {
      config.client_ca_file = kData + "ca.crt";
    }
    absl::StatusOr<std::unique_ptr<TlsContext>> context = TlsContext::Create(config);
    ASSERT_TRUE(context.ok()) << context.status();
    EXPECT_EQ((*context)->AcceptPeer(c.chain_ok, c.depth, client), c.want)
        << static_cast<int>(c.type) << " " << (c.sans.empty() ? "" : c.sans[0]) << " chain "
        << c.chain_ok << " depth " << c.depth;
  }
  X509_free(client);
}

}  // namespace
}  // namespace geoip
