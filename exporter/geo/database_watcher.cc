#include "exporter/geo/database_watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "exporter/geo/asn_database.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/util/unique_fd.h"

namespace geoip {

void DatabaseWatcher::Start() {
  thread_ = std::thread([this] { Watch(); });
}

DatabaseWatcher::~DatabaseWatcher() {
  stopping_.Notify();
  if (thread_.joinable()) thread_.join();
}

namespace {

// Opens path as a D (GeoIpDatabase or AsnDatabase) and hands it to `set`;
// true if it opened, else says why on stderr.
template <typename D, typename Set>
bool ReloadOne(const std::string& path, const char* why, Set set) {
  absl::StatusOr<D> fresh = D::Open(path);
  if (!fresh.ok()) {
    fprintf(stderr, "database reload (%s) failed, keeping the one in use: %s\n", why,
            std::string(fresh.status().message()).c_str());
    return false;
  }
  set(std::make_shared<const D>(*std::move(fresh)));
  fprintf(stderr, "database reloaded (%s): %s\n", why, path.c_str());
  return true;
}

// The directory (with its slash) and the name of path.
std::pair<std::string, std::string> Split(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {path.substr(0, slash + 1), path.substr(slash + 1)};
}

}  // namespace

void DatabaseWatcher::Reload(const char* why) {
  bool ok = ReloadOne<GeoIpDatabase>(
      geolocator_->database()->path(), why,
      [this](std::shared_ptr<const GeoIpDatabase> db) { geolocator_->SetDatabase(std::move(db)); });
  if (const std::shared_ptr<const AsnDatabase> asn = geolocator_->asn_database()) {
    ok &= ReloadOne<AsnDatabase>(asn->path(), why, [this](std::shared_ptr<const AsnDatabase> db) {
      geolocator_->SetAsnDatabase(std::move(db));
    });
  }
  (ok ? successes_ : failures_).fetch_add(1, std::memory_order_relaxed);
}

void DatabaseWatcher::Watch() {
  // Files are replaced by a rename, so watch their directories for the
  // names: the country database's, and the ASN database's if any.
  std::vector<std::string> paths = {geolocator_->database()->path()};
  if (const std::shared_ptr<const AsnDatabase> asn = geolocator_->asn_database()) {
    paths.push_back(asn->path());
  }
  UniqueFd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  std::vector<std::pair<int, std::string>> watched;  // (watch descriptor, name)
  for (const std::string& path : paths) {
    const auto [directory, name] = Split(path);
    const int wd =
        fd.valid() ? inotify_add_watch(fd.get(), directory.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE)
                   : -1;
    if (wd < 0) {
      fprintf(stderr, "not watching %s for updates (%s); reload with SIGHUP\n", path.c_str(),
              strerror(errno));
      return;
    }
    watched.emplace_back(wd, name);
  }
  alignas(struct inotify_event) char buffer[4096];
  while (!stopping_.HasBeenNotified()) {
    struct pollfd poll_fd = {fd.get(), POLLIN, 0};
    if (poll(&poll_fd, 1, 200) <= 0) continue;
    const ssize_t length = read(fd.get(), buffer, sizeof(buffer));
    bool changed = false;
    for (ssize_t at = 0; at < length;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + at);
      for (const auto& [wd, name] : watched) {
        if (event->len > 0 && event->wd == wd && name == event->name) changed = true;
      }
      at += sizeof(struct inotify_event) + event->len;
    }
    if (changed) Reload("file replaced");
  }
}

}  // namespace geoip
