#include "exporter/web/basic_auth.h"

#include <crypt.h>
#include <errno.h>

#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// Base64 of the longest user:password accepted, with room to spare.
constexpr size_t kMaxHeaderBytes = 1024;

}  // namespace

std::optional<BasicCredentials> ParseBasicAuthorization(absl::string_view header) {
  if (header.size() > kMaxHeaderBytes || header.size() < 6 ||
      !absl::EqualsIgnoreCase(header.substr(0, 6), "basic ")) {
    return std::nullopt;
  }
  absl::string_view encoded = absl::StripAsciiWhitespace(header.substr(6));
  if (encoded.empty()) return std::nullopt;
  for (char c : encoded) {
    // The token68 alphabet; absl's decoder alone would also skip spaces.
    if (!absl::ascii_isalnum(c) && c != '+' && c != '/' && c != '=') return std::nullopt;
  }
  std::string decoded;
  if (!absl::Base64Unescape(encoded, &decoded)) return std::nullopt;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  BasicCredentials credentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
  if (credentials.user.empty() || credentials.user.size() > kMaxUserBytes ||
      credentials.password.size() > kMaxPasswordBytes ||
      credentials.password.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  for (char c : credentials.user) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
  }
  return credentials;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= a[i] ^ b[i];
  return difference == 0;
}

std::optional<std::string> Crypt(absl::string_view phrase, absl::string_view setting) {
  // crypt_rn takes C strings: an embedded NUL would silently cut the input.
  if (phrase.find('\0') != absl::string_view::npos ||
      setting.find('\0') != absl::string_view::npos) {
    return std::nullopt;
  }
  // crypt_data is about 32 KiB: too large for a server thread's stack.
  auto data = std::make_unique<crypt_data>();
  memset(data.get(), 0, sizeof(crypt_data));
  const std::string phrase_text(phrase), setting_text(setting);
  const char* hash =
      crypt_rn(phrase_text.c_str(), setting_text.c_str(), data.get(), sizeof(crypt_data));
  if (hash == nullptr || hash[0] == '*') return std::nullopt;
  return std::string(hash);
}

absl::StatusOr<std::string> BcryptHash(absl::string_view password, int cost) {
  if (cost < 4 || cost > 31) return absl::InvalidArgumentError("bcrypt cost must be 4 to 31");
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  // No random bytes given: libcrypt reads them from the kernel.
  if (crypt_gensalt_rn("$2b$", cost, nullptr, 0, salt, sizeof(salt)) == nullptr) {
    return absl::ErrnoToStatus(errno, "crypt_gensalt_rn()");
  }
  std::optional<std::string> hash = Crypt(password, salt);
  if (!hash) return absl::InvalidArgumentError("libcrypt cannot hash this password");
  return *hash;
}

BasicAuthenticator::BasicAuthenticator(std::map<std::string, std::string> users,
                                       size_t cache_capacity)
    : users_(std::move(users)), cache_capacity_(cache_capacity) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  // The minimum rounds: the digest only has to hide the password, and the
  // point of the cache is to be fast.
  if (crypt_gensalt_rn("$5$", 1000, nullptr, 0, salt, sizeof(salt)) != nullptr) {
    cache_salt_ = salt;
  }
}

std::string BasicAuthenticator::CacheKey(absl::string_view user, absl::string_view password,
                                         absl::string_view hash) const {
  if (cache_salt_.empty()) return "";
  // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
  std::optional<std::string> digest = Crypt(
      absl::StrCat(user.size(), ":", user, password.size(), ":", password, hash), cache_salt_);
  return digest.value_or("");
}

bool BasicAuthenticator::Authorize(absl::string_view authorization_header) {
  std::optional<BasicCredentials> credentials = ParseBasicAuthorization(authorization_header);
  return credentials.has_value() && Verify(credentials->user, credentials->password);
}

bool BasicAuthenticator::Verify(absl::string_view user, absl::string_view password) {
  if (users_.empty() || user.size() > kMaxUserBytes || password.size() > kMaxPasswordBytes) {
    return false;
  }
  auto entry = users_.find(std::string(user));
  if (entry == users_.end()) {
    // Spend what a known user costs, against some real hash, then refuse.
    (void)Crypt(password, users_.begin()->second);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.bcrypt_runs;
    return false;
  }
  const std::string& hash = entry->second;
  const std::string key = CacheKey(user, password, hash);
  if (!key.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cache_.contains(key)) {
      ++stats_.cache_hits;
      return true;
    }
  }
  std::optional<std::string> computed = Crypt(password, hash);
  const bool ok = computed.has_value() && ConstantTimeEquals(*computed, hash);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.bcrypt_runs;
  if (ok && !key.empty() && cache_capacity_ > 0 && cache_.insert(key).second) {
    cache_order_.push_back(key);
    if (cache_order_.size() > cache_capacity_) {
      cache_.erase(cache_order_.front());
      cache_order_.pop_front();
    }
  }
  return ok;
}

BasicAuthenticator::Stats BasicAuthenticator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace geoip
