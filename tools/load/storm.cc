#include "tools/load/storm.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "exporter/util/status_macros.h"
#include "exporter/util/unique_fd.h"
#include "tools/load/endpoint.h"
#include "tools/load/listener.h"
#include "tools/load/socket.h"
#include "tools/load/tcp_mib.h"

namespace geoip {
namespace {

double ProcessCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return now.tv_sec + now.tv_nsec / 1e9;
}

uint32_t V4HostOrder(const IpAddress& address) {
  uint32_t network = 0;
  std::memcpy(&network, address.bytes.data(), 4);
  return ntohl(network);
}

}  // namespace

absl::StatusOr<SourcePool> SourcePool::Parse(const std::string& text) {
  SourcePool pool;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(item, '/');
    int length = 0;
    absl::StatusOr<IpAddress> base =
        ParseIpAddress(std::string_view(parts.first.data(), parts.first.size()));
    if (!base.ok() || !base->is_v4() || !absl::SimpleAtoi(parts.second, &length) || length < 8 ||
        length > 30) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad source prefix '", item, "': want A.B.C.D/LEN, LEN 8-30"));
    }
    const uint32_t mask = ~uint32_t{0} << (32 - length);
    const uint32_t hosts = (uint32_t{1} << (32 - length)) - 2;  // no network/broadcast
    pool.prefixes_.push_back(Prefix{IpAddress::V4((V4HostOrder(*base) & mask) + 1), hosts});
  }
  if (pool.prefixes_.empty()) return absl::InvalidArgumentError("no source prefixes");
  pool.min_hosts_ = pool.prefixes_[0].hosts;
  for (const Prefix& prefix : pool.prefixes_) {
    pool.min_hosts_ = std::min(pool.min_hosts_, prefix.hosts);
  }
  return pool;
}

SourcePool SourcePool::Single(const IpAddress& address) {
  SourcePool pool;
  pool.prefixes_.push_back(Prefix{address, 1});
  pool.min_hosts_ = 1;
  return pool;
}

uint64_t SourcePool::Size() const { return uint64_t{min_hosts_} * prefixes_.size(); }

IpAddress SourcePool::Address(uint64_t i) const {
  i %= Size();
  const Prefix& prefix = prefixes_[i % prefixes_.size()];
  const uint32_t offset = static_cast<uint32_t>(i / prefixes_.size());
  return offset == 0 ? prefix.first : IpAddress::V4(V4HostOrder(prefix.first) + offset);
}

absl::Status RunStorm(const StormOptions& options, StormResult* result) {
  *result = StormResult();
  const absl::Time deadline = absl::Now() + options.timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<Listener> listener,
                   Listener::Open(Endpoint{options.listen_address, options.port}));
  // Every accept is bounded: should a connection go missing, the acceptor
  // would otherwise wait for ever.
  const timeval bound = absl::ToTimeval(options.timeout);
  setsockopt(listener->fd(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));

  // Read before the first connection, so the growth is the storm's own.
  ASSIGN_OR_RETURN(const uint64_t attempt_fails_before, ReadSnmpCounter("Tcp", "AttemptFails"));

  AcceptTally tally;
  if (!options.one_thread) listener->Start(/*acceptors=*/1, &tally, /*index=*/0);
  absl::Cleanup stop_acceptor = [&listener] { listener->Stop(); };

  absl::Status failure;
  const absl::Time start = absl::Now();
  const double cpu_start = ProcessCpuSeconds();
  for (uint64_t i = 0; i < options.count; ++i) {
    if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) break;
    if ((i & 1023) == 0 && absl::Now() > deadline) {
      failure = absl::DeadlineExceededError("storm timeout reached");
      break;
    }
    std::optional<IpAddress> source;
    if (options.sources != nullptr) source = options.sources->Address(i);
    absl::StatusOr<UniqueFd> client = Connect(listener->endpoint(), source, absl::InfiniteFuture());
    if (!client.ok()) {
      failure = client.status();
      break;
    }
    ++result->made;
    if (options.close == StormClose::kReset) ResetOnClose(client->get());
    if (options.one_thread) {
      UniqueFd connection(accept4(listener->fd(), nullptr, nullptr, SOCK_CLOEXEC));
      if (connection.valid()) tally.Add();
    }
  }
  // Wait until every connection made is accepted or known discarded. A
  // discarded one is final once counted: the listener has no trace of it.
  // Other sockets of the namespace may add to AttemptFails too, so it only
  // has to cover what went unaccepted, once the accept queue is empty (the
  // acceptor's last count is taken after it has stopped).
  uint64_t attempt_fails_growth = 0;
  absl::Status counters;
  while (true) {
    const absl::Time slice = std::min(deadline, absl::Now() + absl::Milliseconds(100));
    if (options.one_thread || tally.AwaitAtLeast({result->made}, slice)) break;
    absl::StatusOr<uint64_t> attempt_fails = ReadSnmpCounter("Tcp", "AttemptFails");
    if (!attempt_fails.ok()) {
      counters = attempt_fails.status();
      break;
    }
    attempt_fails_growth = *attempt_fails - attempt_fails_before;
    if (slice >= deadline) break;
    // Nothing left to accept, and the kernel's count covers the rest.
    absl::StatusOr<uint32_t> queued = AcceptQueueLength(listener->fd());
    if (!queued.ok()) {
      counters = queued.status();
      break;
    }
    if (*queued == 0 && tally.Total() + attempt_fails_growth >= result->made) break;
  }
  result->seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result->cpu_seconds = ProcessCpuSeconds() - cpu_start;
  std::move(stop_acceptor).Invoke();
  result->accepted = tally.Total();
  if (!failure.ok()) {
    return absl::Status(failure.code(),
                        absl::StrCat("connection ", result->made + 1, ": ", failure.message()));
  }
  RETURN_IF_ERROR(counters);
  if (result->accepted < result->made && result->made - result->accepted <= attempt_fails_growth) {
    result->discarded = result->made - result->accepted;
  }
  if (result->accepted + result->discarded != result->made) {
    return absl::DataLossError(
        absl::StrCat("made ", result->made, " connections but accepted ", result->accepted,
                     ", and the kernel discarded at most ", attempt_fails_growth,
                     " before accept (Tcp AttemptFails in this network namespace)"));
  }
  return absl::OkStatus();
}

absl::Status StormInNamespace(const std::string& name, const StormOptions& options,
                              StormResult* result) {
  absl::Status status;
  // setns() moves only the calling thread, so the storm gets its own.
  std::thread thread([&] {
    const std::string path = "/var/run/netns/" + name;
    const UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      status = absl::ErrnoToStatus(errno, path);
      return;
    }
    if (setns(fd.get(), CLONE_NEWNET) != 0) {
      status = absl::ErrnoToStatus(errno, "setns()");
      return;
    }
    status = RunStorm(options, result);
  });
  thread.join();
  return status;
}

}  // namespace geoip
