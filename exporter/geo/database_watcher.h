// Keeps the geolocator's databases current: reloads them when a file is
// replaced (geoipupdate and scripts/update-geoip-db rename a new file over
// it) and when asked (SIGHUP). A file that does not open leaves the
// database in use in place.
#ifndef EXPORTER_GEO_DATABASE_WATCHER_H_
#define EXPORTER_GEO_DATABASE_WATCHER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "exporter/geo/geolocator.h"
#include "exporter/util/unique_fd.h"

namespace geoip {

// Shares (does not own) the geolocator, which must outlive it.
class DatabaseWatcher {
 public:
  // Takes a handle on the directory of each of the geolocator's databases
  // (the country one, and the ASN one if set): construct it before
  // dropping privileges, so that it can still read and watch a database
  // whose directory only root can reach (a clone under /root).
  explicit DatabaseWatcher(Geolocator* geolocator);
  // Stops the thread.
  ~DatabaseWatcher();

  // Starts a thread that watches the directory of the geolocator's
  // database. Threads inherit privileges: start it once they are dropped.
  void Start();

  DatabaseWatcher(const DatabaseWatcher&) = delete;
  DatabaseWatcher& operator=(const DatabaseWatcher&) = delete;

  // Opens the database files again (the country one, and the ASN one if
  // any) and swaps them in, saying so on stderr with `why`; one that fails
  // to open stays as it was, and the reload counts as failed. Any thread.
  void Reload(const char* why);

  uint64_t successes() const { return successes_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  // A database file, and a handle on its directory (invalid if it could not
  // be opened: then the path is used).
  struct Watched {
    std::string path;
    std::string name;
    UniqueFd directory;
  };

  // The directory as this process reaches it: through the handle.
  static std::string Directory(const Watched& watched);

  void Watch();

  Geolocator* const geolocator_;
  std::vector<Watched> watched_;  // the country database first
  std::atomic<uint64_t> successes_{0};
  std::atomic<uint64_t> failures_{0};
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace geoip

#endif  // EXPORTER_GEO_DATABASE_WATCHER_H_
