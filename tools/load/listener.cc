#include "tools/load/listener.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "exporter/util/status_macros.h"
#include "tools/load/socket.h"

namespace geoip {

AcceptTally::AcceptTally(size_t listeners)
    : accepted_(new std::atomic<uint64_t>[listeners]), listeners_(listeners) {
  for (size_t i = 0; i < listeners_; ++i) accepted_[i].store(0);
}

void AcceptTally::Add(size_t index) {
  // Sequentially consistent, as is the waiter's flag: either this sees
  // waiting_ set and wakes the waiter, or the waiter sees this count.
  accepted_[index].fetch_add(1);
  if (waiting_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    changed_.notify_all();
  }
}

bool AcceptTally::AwaitAtLeast(const std::vector<uint64_t>& expected, absl::Time deadline) {
  waiting_.store(true);
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_until(lock, absl::ToChronoTime(deadline), [&] {
    for (size_t i = 0; i < expected.size() && i < listeners_; ++i) {
      if (accepted_[i].load() < expected[i]) return false;
    }
    return true;
  });
}

uint64_t AcceptTally::Accepted(size_t index) const { return accepted_[index].load(); }

uint64_t AcceptTally::Total() const {
  uint64_t total = 0;
  for (size_t i = 0; i < listeners_; ++i) total += accepted_[i].load();
  return total;
}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Open(const Endpoint& endpoint) {
  ASSIGN_OR_RETURN(UniqueFd fd, Listen(endpoint));
  Endpoint bound = endpoint;
  if (bound.port == 0) {
    ASSIGN_OR_RETURN(const Endpoint local, LocalEndpoint(fd.get()));
    bound.port = local.port;
  }
  return std::unique_ptr<Listener>(new Listener(bound, std::move(fd)));
}

Listener::~Listener() { Stop(); }

void Listener::Start(int acceptors, AcceptTally* tally, size_t index, Handler handler) {
  for (int i = 0; i < acceptors; ++i) {
    threads_.emplace_back(
        [this, tally, index, handler] { AcceptUntilStopped(tally, index, handler); });
  }
}

void Listener::Stop() {
  if (threads_.empty()) return;
  shutdown(fd_.get(), SHUT_RDWR);
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

bool Listener::Receives(const Endpoint& destination) const {
  if (destination.port != endpoint_.port) return false;
  if (!endpoint_.IsUnspecified()) return destination.address == endpoint_.address;
  // A dual-stack [::] also receives IPv4.
  return destination.address.family == endpoint_.address.family || !endpoint_.address.is_v4();
}

void Listener::AcceptUntilStopped(AcceptTally* tally, size_t index, const Handler& handler) {
  while (true) {
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    const int connection =
        accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC);
    if (connection < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down, past SO_RCVTIMEO, or an error no retry would fix
    }
    UniqueFd owned(connection);
    tally->Add(index);
    if (handler) handler(connection, FromSockaddr(peer));
  }
}

}  // namespace geoip
