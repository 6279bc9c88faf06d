#include "exporter/geo/database_watcher.h"

#include <fcntl.h>
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

#include "absl/strings/str_cat.h"
#include "exporter/geo/asn_database.h"
#include "exporter/geo/geoip_database.h"

namespace geoip {

DatabaseWatcher::DatabaseWatcher(Geolocator* geolocator) : geolocator_(geolocator) {
  std::vector<std::string> paths = {geolocator_->database()->path()};
  if (const std::shared_ptr<const AsnDatabase> asn = geolocator_->asn_database()) {
    paths.push_back(asn->path());
  }
  for (const std::string& path : paths) {
    const size_t slash = path.rfind('/');
    const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    Watched watched{path, slash == std::string::npos ? path : path.substr(slash + 1),
                    UniqueFd(open(directory.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC))};
    watched_.push_back(std::move(watched));
  }
}

void DatabaseWatcher::Start() {
  thread_ = std::thread([this] { Watch(); });
}

DatabaseWatcher::~DatabaseWatcher() {
  stopping_.Notify();
  if (thread_.joinable()) thread_.join();
}

std::string DatabaseWatcher::Directory(const Watched& watched) {
  if (watched.directory.valid()) return absl::StrCat("/proc/self/fd/", watched.directory.get());
  const size_t slash = watched.path.rfind('/');
  return slash == std::string::npos ? "." : watched.path.substr(0, slash + 1);
}

namespace {

// Opens path (reading it from `read_from`) as a D (GeoIpDatabase or
// AsnDatabase) and hands it to `set`; true if it opened, else says why on
// stderr.
template <typename D, typename Set>
bool ReloadOne(const std::string& path, const std::string& read_from, const char* why, Set set) {
  absl::StatusOr<D> fresh = D::Open(path, read_from);
  if (!fresh.ok()) {
    fprintf(stderr, "database reload (%s) failed, keeping the one in use: %s\n", why,
            std::string(fresh.status().message()).c_str());
    return false;
  }
  set(std::make_shared<const D>(*std::move(fresh)));
  fprintf(stderr, "database reloaded (%s): %s\n", why, path.c_str());
  return true;
}

}  // namespace

void DatabaseWatcher::Reload(const char* why) {
  const Watched& country = watched_[0];
  bool ok = ReloadOne<GeoIpDatabase>(
      country.path, absl::StrCat(Directory(country), "/", country.name), why,
      [this](std::shared_ptr<const GeoIpDatabase> db) { geolocator_->SetDatabase(std::move(db)); });
  if (watched_.size() > 1) {
    const Watched& asn = watched_[1];
    ok &= ReloadOne<AsnDatabase>(asn.path, absl::StrCat(Directory(asn), "/", asn.name), why,
                                 [this](std::shared_ptr<const AsnDatabase> db) {
                                   geolocator_->SetAsnDatabase(std::move(db));
                                 });
  }
  (ok ? successes_ : failures_).fetch_add(1, std::memory_order_relaxed);
}

void DatabaseWatcher::Watch() {
  // Files are replaced by a rename, so watch their directories for the
  // names.
  UniqueFd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  std::vector<int> descriptors;  // per watched_
  for (const Watched& watched : watched_) {
    const int wd = fd.valid() ? inotify_add_watch(fd.get(), Directory(watched).c_str(),
                                                  IN_MOVED_TO | IN_CLOSE_WRITE)
                              : -1;
    if (wd < 0) {
      fprintf(stderr, "not watching %s for updates (%s); reload with SIGHUP\n",
              watched.path.c_str(), strerror(errno));
      return;
    }
    descriptors.push_back(wd);
  }
  alignas(struct inotify_event) char buffer[4096];
  while (!stopping_.HasBeenNotified()) {
    struct pollfd poll_fd = {fd.get(), POLLIN, 0};
    if (poll(&poll_fd, 1, 200) <= 0) continue;
    const ssize_t length = read(fd.get(), buffer, sizeof(buffer));
    bool changed = false;
    for (ssize_t at = 0; at < length;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + at);
      for (size_t i = 0; i < watched_.size(); ++i) {
        if (event->len > 0 && event->wd == descriptors[i] && watched_[i].name == event->name) {
          changed = true;
        }
      }
      at += sizeof(struct inotify_event) + event->len;
    }
    if (changed) Reload("file replaced");
  }
}

}  // namespace geoip
