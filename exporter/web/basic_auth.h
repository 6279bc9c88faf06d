// HTTP Basic authentication against bcrypt hashes, verified with libcrypt.
#ifndef EXPORTER_WEB_BASIC_AUTH_H_
#define EXPORTER_WEB_BASIC_AUTH_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace geoip {

// Longest user name and password accepted. bcrypt reads only 72 bytes of a
// password; the bounds keep every input to libcrypt within its limits.
inline constexpr size_t kMaxUserBytes = 128;
inline constexpr size_t kMaxPasswordBytes = 256;

// A user name and password as sent in an Authorization header.
struct BasicCredentials {
  std::string user;
  std::string password;
};

// Parses "Basic <base64 of user:password>" (the scheme in any case). nullopt
// unless it is well-formed: valid base64, a colon, a user name without
// control characters, no NUL anywhere, and both within the bounds above.
std::optional<BasicCredentials> ParseBasicAuthorization(absl::string_view header);

// Compares in time that depends only on the lengths, not on where the
// texts differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// libcrypt's crypt_rn: hashes phrase with setting (a full hash, or a salt
// from crypt_gensalt). nullopt if libcrypt refuses them.
std::optional<std::string> Crypt(absl::string_view phrase, absl::string_view setting);

// A new bcrypt ($2b$) hash of password with a random salt; cost is 4-31.
absl::StatusOr<std::string> BcryptHash(absl::string_view password, int cost);

// Checks credentials against a fixed table of users and bcrypt hashes.
// Thread-safe. bcrypt is slow on purpose (tens of milliseconds at cost 10),
// so successful checks are remembered, under a salted SHA-256-crypt digest
// of user, password and hash rather than the password itself, in a bounded
// first-in first-out cache.
class BasicAuthenticator {
 public:
  // Counts, for tests and figures.
  struct Stats {
    uint64_t bcrypt_runs = 0;  // times bcrypt actually ran
    uint64_t cache_hits = 0;
  };

  // users: user name -> bcrypt hash. cache_capacity: successful
  // verifications remembered at most.
  explicit BasicAuthenticator(std::map<std::string, std::string> users,
                              size_t cache_capacity = 256);

  BasicAuthenticator(const BasicAuthenticator&) = delete;
  BasicAuthenticator& operator=(const BasicAuthenticator&) = delete;

  // True if the Authorization header names a user with the right password.
  bool Authorize(absl::string_view authorization_header);

  // True if password is user's. An unknown user costs one bcrypt run too,
  // so timing does not tell which users exist.
  bool Verify(absl::string_view user, absl::string_view password);

  Stats stats() const;

 private:
  std::string CacheKey(absl::string_view user, absl::string_view password,
                       absl::string_view hash) const;

  const std::map<std::string, std::string> users_;
  const size_t cache_capacity_;
  std::string cache_salt_;  // a random "$5$rounds=1000$..." setting, per process

  mutable std::mutex mutex_;
  absl::flat_hash_set<std::string> cache_;  // guarded by mutex_
  std::deque<std::string> cache_order_;     // guarded by mutex_; oldest first
  Stats stats_;                             // guarded by mutex_
};

}  // namespace geoip

#endif  // EXPORTER_WEB_BASIC_AUTH_H_
