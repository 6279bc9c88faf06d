#include "exporter/stats/service_names.h"

#include <algorithm>
#include <mutex>

namespace geoip {
namespace {

// Distinct refused names remembered for counting; past this, each refusal
// counts (the count then over-states, it never under-states).
constexpr size_t kRefusedRemembered = 4096;

}  // namespace

ServiceNames::ServiceNames(size_t max_services)
    : max_services_(std::min(max_services, kMaxServices)) {
  names_ = {"unknown", "other"};
  ids_["unknown"] = kUnknown;
  ids_["other"] = kOther;
}

ServiceId ServiceNames::Intern(absl::string_view name) {
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (auto it = ids_.find(name); it != ids_.end()) return it->second;
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (auto it = ids_.find(name); it != ids_.end()) return it->second;
  if (names_.size() - 2 >= max_services_) {
    if (refused_.size() >= kRefusedRemembered || refused_.emplace(name).second) {
      ++overflowed_;
    }
    return kOther;
  }
  const auto id = static_cast<ServiceId>(names_.size());
  names_.emplace_back(name);
  ids_.emplace(name, id);
  return id;
}

std::string ServiceNames::Name(ServiceId id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return id < names_.size() ? names_[id] : names_[kUnknown];
}

bool ServiceNames::Find(absl::string_view name, ServiceId* id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = ids_.find(name);
  if (it == ids_.end()) return false;
  *id = it->second;
  return true;
}

std::vector<std::string> ServiceNames::All() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return names_;
}

uint64_t ServiceNames::overflowed() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return overflowed_;
}

}  // namespace geoip
