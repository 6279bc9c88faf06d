#include "bench/storm.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <string_view>
#include <mutex>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "exporter/util/status_macros.h"

namespace geoip {
namespace {

sockaddr_storage ToSockaddr(const IpAddress& address, uint16_t port, socklen_t* length) {
  sockaddr_storage storage{};
  if (address.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, address.bytes.data(), 4);
    *length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, address.bytes.data(), 16);
    *length = sizeof(sockaddr_in6);
  }
  return storage;
}

absl::StatusOr<int> Listen(const IpAddress& address, uint16_t port) {
  const int fd = socket(address.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket()");
  absl::Cleanup closer = [fd] { close(fd); };
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t length = 0;
  sockaddr_storage storage = ToSockaddr(address, port, &length);
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("bind(", FormatIpAddress(address), ":", port, ")"));
  }
  if (listen(fd, SOMAXCONN) != 0) return absl::ErrnoToStatus(errno, "listen()");
  std::move(closer).Cancel();
  return fd;
}

// One client connection, closed as options.close says. Returns the socket
// (still open) so the one-thread mode can close it after accepting.
absl::StatusOr<int> Connect(const StormOptions& options, const sockaddr_storage& destination,
                            socklen_t length, uint64_t i) {
  const int fd = socket(destination.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket()");
  absl::Cleanup closer = [fd] { close(fd); };
  if (options.sources != nullptr) {
    // Pick the port at connect time, knowing the destination, so each of
    // many source addresses gets the whole port range.
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    const IpAddress source = options.sources->Address(i);
    socklen_t source_length = 0;
    sockaddr_storage storage = ToSockaddr(source, 0, &source_length);
    if (bind(fd, reinterpret_cast<sockaddr*>(&storage), source_length) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("bind(", FormatIpAddress(source), ")"));
    }
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&destination), length) != 0) {
    return absl::ErrnoToStatus(errno, "connect()");
  }
  if (options.close == StormClose::kReset) {
    linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  }
  std::move(closer).Cancel();
  return fd;
}

// Counts accepts and lets the client wait until they reach a target.
class AcceptTally {
 public:
  void Add() {
    const uint64_t now = accepted_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (now >= target_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> lock(mu_);
      reached_.notify_all();
    }
  }

  // Waits until `target` connections were accepted or the deadline passed.
  bool AwaitAtLeast(uint64_t target, absl::Time deadline) {
    target_.store(target, std::memory_order_relaxed);
    std::unique_lock<std::mutex> lock(mu_);
    return reached_.wait_until(lock, absl::ToChronoTime(deadline), [&] {
      return accepted_.load(std::memory_order_relaxed) >= target;
    });
  }

  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> accepted_{0};
  // No notifications (and no lock) until the client has finished.
  std::atomic<uint64_t> target_{UINT64_MAX};
  std::mutex mu_;
  std::condition_variable reached_;
};

double ProcessCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return now.tv_sec + now.tv_nsec / 1e9;
}

}  // namespace

absl::StatusOr<SourcePool> SourcePool::Parse(const std::string& text) {
  SourcePool pool;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(item, '/');
    int length = 0;
    absl::StatusOr<IpAddress> base =
        ParseIpAddress(std::string_view(parts.first.data(), parts.first.size()));
    if (!base.ok() || !base->is_v4() || !absl::SimpleAtoi(parts.second, &length) ||
        length < 8 || length > 30) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad source prefix '", item, "': want A.B.C.D/LEN, LEN 8-30"));
    }
    uint32_t network = 0;
    std::memcpy(&network, base->bytes.data(), 4);
    const uint32_t mask = ~uint32_t{0} << (32 - length);
    const uint32_t hosts = (uint32_t{1} << (32 - length)) - 2;  // no network/broadcast
    pool.prefixes_.push_back(Prefix{(ntohl(network) & mask) + 1, hosts});
  }
  if (pool.prefixes_.empty()) return absl::InvalidArgumentError("no source prefixes");
  pool.min_hosts_ = pool.prefixes_[0].hosts;
  for (const Prefix& prefix : pool.prefixes_) pool.min_hosts_ = std::min(pool.min_hosts_, prefix.hosts);
  return pool;
}

uint64_t SourcePool::Size() const { return uint64_t{min_hosts_} * prefixes_.size(); }

IpAddress SourcePool::Address(uint64_t i) const {
  i %= Size();
  const Prefix& prefix = prefixes_[i % prefixes_.size()];
  return IpAddress::V4(prefix.first + static_cast<uint32_t>(i / prefixes_.size()));
}

absl::StatusOr<StormResult> RunStorm(const StormOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  ASSIGN_OR_RETURN(const int listener, Listen(options.listen_address, options.port));
  absl::Cleanup close_listener = [listener] { close(listener); };
  socklen_t length = 0;
  const sockaddr_storage destination =
      ToSockaddr(options.listen_address, options.port, &length);
  // Every blocking call is bounded: a lost SYN would otherwise stall a
  // connect for seconds, an accept for ever.
  timeval bound = absl::ToTimeval(options.timeout);
  setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));

  AcceptTally tally;
  std::thread acceptor;
  if (!options.one_thread) {
    acceptor = std::thread([listener, &tally] {
      while (true) {
        const int connection = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (connection < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          return;  // the listener was shut down, or the timeout passed
        }
        tally.Add();
        close(connection);
      }
    });
  }
  absl::Cleanup stop_acceptor = [&] {
    if (acceptor.joinable()) {
      shutdown(listener, SHUT_RDWR);
      acceptor.join();
    }
  };

  StormResult result;
  absl::Status failure;
  const absl::Time start = absl::Now();
  const double cpu_start = ProcessCpuSeconds();
  for (uint64_t i = 0; i < options.count; ++i) {
    if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) break;
    if ((i & 1023) == 0 && absl::Now() > deadline) {
      failure = absl::DeadlineExceededError("storm timeout reached");
      break;
    }
    absl::StatusOr<int> client = Connect(options, destination, length, i);
    if (!client.ok()) {
      failure = client.status();
      break;
    }
    ++result.made;
    if (options.one_thread) {
      const int connection = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection >= 0) {
        tally.Add();
        close(connection);
      }
    }
    close(*client);
  }
  const bool all_accepted = options.one_thread || tally.AwaitAtLeast(result.made, deadline);
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  std::move(stop_acceptor).Invoke();
  result.accepted = tally.accepted();
  if (!failure.ok()) {
    return absl::Status(failure.code(), absl::StrCat("connection ", result.made + 1, ": ",
                                                     failure.message()));
  }
  if (!all_accepted || result.accepted != result.made) {
    return absl::DataLossError(absl::StrCat("made ", result.made, " connections but accepted ",
                                            result.accepted));
  }
  return result;
}

absl::StatusOr<StormResult> StormInNamespace(const std::string& name,
                                             const StormOptions& options) {
  absl::StatusOr<StormResult> result = absl::InternalError("storm thread did not run");
  // setns() moves only the calling thread, so the storm gets its own.
  std::thread thread([&] {
    const std::string path = "/var/run/netns/" + name;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      result = absl::ErrnoToStatus(errno, path);
      return;
    }
    const int joined = setns(fd, CLONE_NEWNET);
    close(fd);
    if (joined != 0) {
      result = absl::ErrnoToStatus(errno, "setns()");
      return;
    }
    result = RunStorm(options);
  });
  thread.join();
  return result;
}

}  // namespace geoip
