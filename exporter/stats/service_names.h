// The values of the `service` label: an append-only table of names that
// series refer to by a small id. Names are never removed, so a series keeps
// its label after its listener is gone; the table is capped, and names past
// the cap all become "other".
#ifndef EXPORTER_STATS_SERVICE_NAMES_H_
#define EXPORTER_STATS_SERVICE_NAMES_H_

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace geoip {

using ServiceId = uint16_t;

// Thread-safe: the drain thread interns, scrapes and the API read.
class ServiceNames {
 public:
  // Connections to a port where no listener was ever seen.
  static constexpr ServiceId kUnknown = 0;
  // Every name past the cap.
  static constexpr ServiceId kOther = 1;
  // The cap's ceiling (ids are 16 bits).
  static constexpr size_t kMaxServices = 10000;

  // Holds up to `max_services` names besides "unknown" and "other".
  explicit ServiceNames(size_t max_services);

  ServiceNames(const ServiceNames&) = delete;
  ServiceNames& operator=(const ServiceNames&) = delete;

  // The id of `name`, added if new; kOther once the table is full. "unknown"
  // and "other" are their own ids.
  ServiceId Intern(absl::string_view name);

  // The name of `id`; "unknown" for an id never given out.
  std::string Name(ServiceId id) const;

  // The id of `name` if it has one (for ?service= filters); no adding.
  bool Find(absl::string_view name, ServiceId* id) const;

  // Every name, indexed by id.
  std::vector<std::string> All() const;

  // Names that became "other" since start (each distinct name once).
  uint64_t overflowed() const;

 private:
  const size_t max_services_;
  // Guards everything below. A standard mutex: see "ThreadSanitizer" in
  // CMakeLists.txt.
  mutable std::shared_mutex mu_;
  std::vector<std::string> names_;
  absl::flat_hash_map<std::string, ServiceId> ids_;
  // Distinct names refused at the cap, remembered up to a bound so each is
  // counted once.
  absl::flat_hash_set<std::string> refused_;
  uint64_t overflowed_ = 0;
};

}  // namespace geoip

#endif  // EXPORTER_STATS_SERVICE_NAMES_H_
