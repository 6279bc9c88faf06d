#include "exporter/web/tls_context.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace geoip {

struct KeyPair {
  X509* leaf = nullptr;
  STACK_OF(X509) * chain = nullptr;  // the certificates after the leaf
  EVP_PKEY* key = nullptr;
  FileStamp cert_stamp;
  FileStamp key_stamp;
  int64_t not_after = 0;

  KeyPair() = default;
  KeyPair(const KeyPair&) = delete;
  KeyPair& operator=(const KeyPair&) = delete;
  ~KeyPair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

FileStamp Stamp(const std::string& path) {
  FileStamp stamp;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    stamp.error = errno;
    return stamp;
  }
  stamp.device = st.st_dev;
  stamp.inode = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  return stamp;
}

// The first error OpenSSL queued, in its words; clears the queue.
std::string OpenSslError() {
  const unsigned long code = ERR_peek_error();
  char text[256] = "unknown OpenSSL error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return text;
}

absl::Status CannotRead(absl::string_view key, const std::string& path, int error) {
  return absl::InvalidArgumentError(absl::StrCat(
      "tls_server_config.", key, " ", path, ": cannot read it (", strerror(error), "): ",
      error == EACCES || error == EPERM
          ? "make it readable by the user the exporter runs as after start-up (uid " +
                std::to_string(geteuid()) +
                "; --privileges.runas), so that a renewed file can be read too"
          : "give the path of a PEM file (relative paths are relative to the web config file)"));
}

struct FileCloser {
  void operator()(FILE* file) const { fclose(file); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

int64_t NotAfter(const X509* certificate) {
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &tm) != 1) return 0;
  return timegm(&tm);
}

absl::StatusOr<std::shared_ptr<KeyPair>> ReadKeyPair(const TlsServerConfig& config) {
  auto pair = std::make_shared<KeyPair>();
  // Stamped before reading: a file changed while it is read has a new stamp
  // at the next handshake, which reads it again.
  pair->cert_stamp = Stamp(config.cert_file);
  pair->key_stamp = Stamp(config.key_file);

  FilePtr cert(fopen(config.cert_file.c_str(), "re"));
  if (!cert) return CannotRead("cert_file", config.cert_file, errno);
  pair->leaf = PEM_read_X509(cert.get(), nullptr, nullptr, nullptr);
  if (pair->leaf == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("tls_server_config.cert_file ", config.cert_file,
                     ": no PEM certificate in it (\"-----BEGIN CERTIFICATE-----\"): give the "
                     "server's certificate, then any intermediate certificates"));
  }
  pair->chain = sk_X509_new_null();
  while (X509* next = PEM_read_X509(cert.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(pair->chain, next);
  }
  ERR_clear_error();  // the end of the file reads as an error

  FilePtr key(fopen(config.key_file.c_str(), "re"));
  if (!key) return CannotRead("key_file", config.key_file, errno);
  // No passphrase callback: an encrypted key fails here, as in exporter-toolkit.
  pair->key = PEM_read_PrivateKey(
      key.get(), nullptr, [](char*, int, int, void*) { return -1; }, nullptr);
  if (pair->key == nullptr) {
    const std::string why = OpenSslError();
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_server_config.key_file ", config.key_file, ": no unencrypted PEM private key in it (",
        why, "): give the key of the certificate in cert_file, without a passphrase"));
  }
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_server_config.key_file ", config.key_file, " is not the key of the certificate in ",
        config.cert_file, ": give the pair that was issued together"));
  }
  pair->not_after = NotAfter(pair->leaf);
  return pair;
}

// exporter-toolkit's curve names and OpenSSL's.
constexpr std::pair<absl::string_view, const char*> kCurves[] = {
    {"CurveP256", "P-256"}, {"CurveP384", "P-384"}, {"CurveP521", "P-521"}, {"X25519", "X25519"}};

// TLS 1.3 suites: Go, and so exporter-toolkit, always offers all three and
// ignores them in cipher_suites; so does this exporter.
constexpr absl::string_view kTls13Suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                              "TLS_CHACHA20_POLY1305_SHA256"};

// Every TLS 1.2 suite this OpenSSL has, by its IANA name (which Go uses) to
// OpenSSL's own name.
absl::flat_hash_map<std::string, std::string> OpenSslCipherNames() {
  absl::flat_hash_map<std::string, std::string> names;
  SSL_CTX* scratch = SSL_CTX_new(TLS_server_method());
  if (scratch == nullptr) return names;
  if (SSL_CTX_set_cipher_list(scratch, "ALL:COMPLEMENTOFALL:@SECLEVEL=0") == 1) {
    STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(scratch);
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
      const SSL_CIPHER* cipher = sk_SSL_CIPHER_value(ciphers, i);
      const char* standard = SSL_CIPHER_standard_name(cipher);
      if (standard != nullptr) names[standard] = SSL_CIPHER_get_name(cipher);
    }
  }
  ERR_clear_error();
  SSL_CTX_free(scratch);
  return names;
}

absl::StatusOr<std::string> CipherList(const std::vector<std::string>& suites) {
  const absl::flat_hash_map<std::string, std::string> names = OpenSslCipherNames();
  std::vector<std::string> list;
  for (const std::string& suite : suites) {
    if (std::find(std::begin(kTls13Suites), std::end(kTls13Suites), suite) !=
        std::end(kTls13Suites)) {
      continue;
    }
    auto name = names.find(suite);
    // Go also knows the ChaCha20 suites without their "_SHA256".
    if (name == names.end()) name = names.find(absl::StrCat(suite, "_SHA256"));
    if (name == names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_server_config.cipher_suites: ", suite,
                       " is not a TLS 1.2 cipher suite this OpenSSL offers: use IANA names "
                       "such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, or leave cipher_suites "
                       "out for OpenSSL's defaults"));
    }
    list.push_back(name->second);
  }
  return absl::StrJoin(list, ":");
}

int TlsContextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int SelectCertificate(SSL* ssl, void* context) {
  std::shared_ptr<const KeyPair> pair = static_cast<const TlsContext*>(context)->Current();
  return SSL_use_cert_and_key(ssl, pair->leaf, pair->key, pair->chain, 1) == 1 ? 1 : 0;
}

int VerifyPeer(int chain_ok, X509_STORE_CTX* store) {
  SSL* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* context =
      static_cast<const TlsContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), TlsContextIndex()));
  if (context == nullptr) return 0;
  return context->AcceptPeer(chain_ok == 1, X509_STORE_CTX_get_error_depth(store),
                             X509_STORE_CTX_get_current_cert(store))
             ? 1
             : 0;
}

// The certificate's subject alternative names as Go prints them: DNS names,
// e-mail addresses, URIs, and IP addresses in their canonical text.
std::vector<std::string> SubjectAltNames(X509* certificate) {
  std::vector<std::string> result;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return result;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const ASN1_STRING* value =
        static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
    const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(value));
    const int length = ASN1_STRING_length(value);
    if (type == GEN_DNS || type == GEN_EMAIL || type == GEN_URI) {
      result.emplace_back(data, length);
    } else if (type == GEN_IPADD && (length == 4 || length == 16)) {
      char text[INET6_ADDRSTRLEN];
      if (inet_ntop(length == 4 ? AF_INET : AF_INET6, data, text, sizeof(text))) {
        result.emplace_back(text);
      }
    }
  }
  GENERAL_NAMES_free(names);
  return result;
}

// An allowed SAN as it will be compared: IP addresses in canonical text.
std::string CanonicalSan(const std::string& san) {
  in6_addr v6;
  char text[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET6, san.c_str(), &v6) == 1 &&
      inet_ntop(AF_INET6, &v6, text, sizeof(text)) != nullptr) {
    return text;
  }
  return san;
}

TlsServerConfig WithCanonicalSans(TlsServerConfig config) {
  for (std::string& san : config.client_allowed_sans) san = CanonicalSan(san);
  return config;
}

bool Verifies(ClientAuthType type) {
  return type == ClientAuthType::kVerifyClientCertIfGiven ||
         type == ClientAuthType::kRequireAndVerifyClientCert;
}

}  // namespace

TlsContext::TlsContext(const TlsServerConfig& config) : config_(WithCanonicalSans(config)) {}

TlsContext::~TlsContext() = default;

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(const TlsServerConfig& config) {
  std::unique_ptr<TlsContext> context(new TlsContext(config));
  absl::StatusOr<std::shared_ptr<KeyPair>> pair = ReadKeyPair(config);
  if (!pair.ok()) return pair.status();
  context->current_ = *std::move(pair);
  context->stats_.not_after = context->current_->not_after;
  // Everything else is checked by setting up a context of its own now, so
  // that a bad setting stops start-up rather than every handshake.
  SSL_CTX* scratch = SSL_CTX_new(TLS_server_method());
  if (scratch == nullptr) return absl::InternalError("SSL_CTX_new: " + OpenSslError());
  const absl::Status configured = context->Configure(scratch);
  SSL_CTX_free(scratch);
  if (!configured.ok()) return configured;
  return context;
}

absl::Status TlsContext::Configure(SSL_CTX* ctx) const {
  // The versions come from min_version and max_version only.
  SSL_CTX_clear_options(ctx, SSL_OP_NO_SSL_MASK);
  if (SSL_CTX_set_min_proto_version(ctx, static_cast<int>(config_.min_version)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, static_cast<int>(config_.max_version)) != 1) {
    return absl::InvalidArgumentError("tls_server_config.min_version/max_version: " +
                                      OpenSslError());
  }
  if (config_.prefer_server_cipher_suites) {
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  } else {
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
  if (!config_.cipher_suites.empty()) {
    absl::StatusOr<std::string> list = CipherList(config_.cipher_suites);
    if (!list.ok()) return list.status();
    // Only TLS 1.3 suites listed: TLS 1.2 keeps OpenSSL's defaults.
    if (!list->empty() && SSL_CTX_set_cipher_list(ctx, list->c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_server_config.cipher_suites: OpenSSL refuses ",
                       absl::StrJoin(config_.cipher_suites, ", "), " (", OpenSslError(),
                       "): Debian's OpenSSL refuses suites below its security level"));
    }
  }
  if (!config_.curve_preferences.empty()) {
    std::vector<std::string> groups;
    for (const std::string& curve : config_.curve_preferences) {
      const auto* known = std::find_if(std::begin(kCurves), std::end(kCurves),
                                       [&](const auto& entry) { return entry.first == curve; });
      if (known == std::end(kCurves)) {
        return absl::InvalidArgumentError(
            absl::StrCat("tls_server_config.curve_preferences: unknown curve ", curve,
                         ": use CurveP256, CurveP384, CurveP521 or X25519"));
      }
      groups.push_back(known->second);
    }
    if (SSL_CTX_set1_groups_list(ctx, absl::StrJoin(groups, ":").c_str()) != 1) {
      return absl::InvalidArgumentError("tls_server_config.curve_preferences: " + OpenSslError());
    }
  }

  SSL_CTX_set_ex_data(ctx, TlsContextIndex(), const_cast<TlsContext*>(this));
  SSL_CTX_set_cert_cb(ctx, SelectCertificate, const_cast<TlsContext*>(this));
  // Sessions resumed with a client certificate need an id context.
  static constexpr unsigned char kSessionContext[] = "ebpf_geoip_exporter";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);

  int mode = SSL_VERIFY_NONE;
  switch (config_.client_auth_type) {
    case ClientAuthType::kNoClientCert:
      break;
    case ClientAuthType::kRequestClientCert:
    case ClientAuthType::kVerifyClientCertIfGiven:
      mode = SSL_VERIFY_PEER;
      break;
    case ClientAuthType::kRequireAnyClientCert:
    case ClientAuthType::kRequireAndVerifyClientCert:
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      break;
  }
  SSL_CTX_set_verify(ctx, mode, mode == SSL_VERIFY_NONE ? nullptr : VerifyPeer);
  if (!config_.client_ca_file.empty()) {
    const std::string& ca = config_.client_ca_file;
    if (FilePtr file(fopen(ca.c_str(), "re")); !file) {
      return CannotRead("client_ca_file", ca, errno);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (names == nullptr || SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("tls_server_config.client_ca_file ", ca,
                       ": no PEM certificate in it: give the certificates of the CAs that "
                       "issue client certificates"));
    }
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  return absl::OkStatus();
}

std::shared_ptr<const KeyPair> TlsContext::Current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const FileStamp cert = Stamp(config_.cert_file);
  const FileStamp key = Stamp(config_.key_file);
  if (cert == current_->cert_stamp && key == current_->key_stamp) return current_;
  if (failure_logged_ && cert == failed_cert_ && key == failed_key_) return current_;
  absl::StatusOr<std::shared_ptr<KeyPair>> next = ReadKeyPair(config_);
  if (!next.ok()) {
    // Half way through a renewal (a new certificate, the old key) reads
    // as a mismatch: the old pair serves until the other file changes too.
    ++stats_.reload_failures;
    failed_cert_ = cert;
    failed_key_ = key;
    failure_logged_ = true;
    fprintf(stderr, "tls: still serving the previous certificate: %s\n",
            std::string(next.status().message()).c_str());
    return current_;
  }
  current_ = *std::move(next);
  failure_logged_ = false;
  ++stats_.reloads;
  stats_.not_after = current_->not_after;
  fprintf(stderr, "tls: serving the renewed certificate from %s, valid until %s\n",
          config_.cert_file.c_str(),
          absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(current_->not_after),
                           absl::UTCTimeZone())
              .c_str());
  return current_;
}

bool TlsContext::AcceptPeer(bool chain_ok, int depth, void* certificate) const {
  if (Verifies(config_.client_auth_type) && !chain_ok) return false;
  if (depth != 0 || config_.client_allowed_sans.empty()) return true;
  for (const std::string& san : SubjectAltNames(static_cast<X509*>(certificate))) {
    for (const std::string& allowed : config_.client_allowed_sans) {
      if (san == allowed) return true;
    }
  }
  return false;
}

TlsContext::Stats TlsContext::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace geoip
