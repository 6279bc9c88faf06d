#include "exporter/geo/database_watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

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

void DatabaseWatcher::Reload(const char* why) {
  const std::string path = geolocator_->database()->path();
  absl::StatusOr<GeoIpDatabase> fresh = GeoIpDatabase::Open(path);
  if (!fresh.ok()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    fprintf(stderr, "database reload (%s) failed, keeping the one in use: %s\n", why,
            std::string(fresh.status().message()).c_str());
    return;
  }
  geolocator_->SetDatabase(std::make_shared<const GeoIpDatabase>(*std::move(fresh)));
  successes_.fetch_add(1, std::memory_order_relaxed);
  fprintf(stderr, "database reloaded (%s): %s\n", why, path.c_str());
}

void DatabaseWatcher::Watch() {
  // The file is replaced by a rename, so watch the directory for the name.
  const std::string path = geolocator_->database()->path();
  const size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd.valid() ||
      inotify_add_watch(fd.get(), directory.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    fprintf(stderr, "not watching %s for updates (%s); reload with SIGHUP\n", path.c_str(),
            strerror(errno));
    return;
  }
  alignas(struct inotify_event) char buffer[4096];
  while (!stopping_.HasBeenNotified()) {
    struct pollfd poll_fd = {fd.get(), POLLIN, 0};
    if (poll(&poll_fd, 1, 200) <= 0) continue;
    const ssize_t length = read(fd.get(), buffer, sizeof(buffer));
    bool changed = false;
    for (ssize_t at = 0; at < length;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + at);
      if (event->len > 0 && name == event->name) changed = true;
      at += sizeof(struct inotify_event) + event->len;
    }
    if (changed) Reload("file replaced");
  }
}

}  // namespace geoip
