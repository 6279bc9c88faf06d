// Native TLS for the HTTP server: configures the OpenSSL context civetweb
// serves with from the web config's tls_server_config, the way Prometheus'
// exporter-toolkit does (versions, cipher suites, curves, client
// certificates and their allowed SANs). The certificate and key are re-read
// when their files change, so a renewed certificate is served without a
// restart; a pair that cannot be read keeps the last good one serving.
#ifndef EXPORTER_WEB_TLS_CONTEXT_H_
#define EXPORTER_WEB_TLS_CONTEXT_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "exporter/web/web_config.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace geoip {

// A certificate chain and its private key, as read from their files.
struct KeyPair;

// What identifies one version of a file: a rotation by rename changes the
// inode, one in place the size or the time.
struct FileStamp {
  int error = 0;  // errno of stat(); the rest is zero then
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp& other) const {
    return error == other.error && device == other.device && inode == other.inode &&
           size == other.size && mtime_ns == other.mtime_ns;
  }
};

class TlsContext {
 public:
  // Reads the certificate, its key and the client CA once, so that a wrong
  // file stops start-up with a message that names it and says what to do.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Create(const TlsServerConfig& config);

  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ~TlsContext();

  // Sets up ctx (the context civetweb made for its listener) completely.
  absl::Status Configure(SSL_CTX* ctx) const;

  // Certificate reloads, for the exporter's health metrics.
  struct Stats {
    uint64_t reloads = 0;          // the files changed and the new pair is served
    uint64_t reload_failures = 0;  // the files changed but could not be read
    int64_t not_after = 0;         // expiry of the served certificate, Unix seconds
  };
  Stats stats() const;

  // The pair to serve now: re-read first if the files changed. Called for
  // every handshake; public for OpenSSL's C callback only.
  std::shared_ptr<const KeyPair> Current() const;

  // True when the client's certificate may be used, given OpenSSL's verdict
  // on it; public for OpenSSL's C callback only.
  bool AcceptPeer(bool chain_ok, int depth, void* certificate) const;

 private:
  explicit TlsContext(const TlsServerConfig& config);

  const TlsServerConfig config_;
  mutable std::mutex mutex_;
  mutable std::shared_ptr<const KeyPair> current_;  // guarded by mutex_
  mutable Stats stats_;                             // guarded by mutex_
  // The files as they were when they last failed to read: not read again
  // until one of them changes.
  mutable bool failure_logged_ = false;  // guarded by mutex_
  mutable FileStamp failed_cert_;        // guarded by mutex_
  mutable FileStamp failed_key_;         // guarded by mutex_
};

}  // namespace geoip

#endif  // EXPORTER_WEB_TLS_CONTEXT_H_
