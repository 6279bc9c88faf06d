// The accept storm: one thread connects and closes as fast as it can while
// another accepts and closes, against a listener this process owns. Used by
// ebpf_geoip_traffic --storm, the benchmarks and the load test.
#ifndef TOOLS_LOAD_STORM_H_
#define TOOLS_LOAD_STORM_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "exporter/net/address.h"

namespace geoip {

// How the client ends each connection.
enum class StormClose {
  // SO_LINGER {1, 0} then close(): an RST, no TIME_WAIT anywhere. The
  // default: it measures accepting, not connection teardown.
  kReset,
  // A plain close(): FIN; the client's socket goes to TIME_WAIT, which
  // loopback reuses (net.ipv4.tcp_tw_reuse=2) once the port range wraps.
  kFin,
};

// Source addresses for the clients: connection i binds to a different
// address for each i below Size(), cycling over the prefixes so consecutive
// connections come from different prefixes.
class SourcePool {
 public:
  // Parses "A.B.C.D/LEN[,A.B.C.D/LEN...]"; LEN from 8 to 30. Only host
  // addresses count: not the network's, not the broadcast.
  static absl::StatusOr<SourcePool> Parse(const std::string& text);
  // Every connection from the one address (IPv4 or IPv6).
  static SourcePool Single(const IpAddress& address);

  // Number of distinct addresses.
  uint64_t Size() const;

  // The address of connection i (i modulo Size()).
  IpAddress Address(uint64_t i) const;

 private:
  struct Prefix {
    IpAddress first;  // first host address; only IPv4 has more than one
    uint32_t hosts;
  };
  std::vector<Prefix> prefixes_;
  uint32_t min_hosts_ = 0;
};

struct StormOptions {
  IpAddress listen_address = IpAddress::V4(0x7f000001);  // 127.0.0.1
  uint16_t port = 0;                                     // 0: a free one
  // Connections to make; the storm stops earlier if *stop becomes true.
  uint64_t count = 10000;
  StormClose close = StormClose::kReset;
  // Accept on the connecting thread (connect, accept, close both) instead of
  // a second thread.
  bool one_thread = false;
  // Client source addresses, of listen_address's family; null: the kernel
  // picks (127.0.0.1).
  const SourcePool* sources = nullptr;
  // Bound on the whole storm, checked between connections; a blocking
  // call bounded as well would cost a system call per connection.
  absl::Duration timeout = absl::Seconds(60);
  // Optional: set to true from another thread to end the storm early.
  const std::atomic<bool>* stop = nullptr;
};

struct StormResult {
  uint64_t made = 0;      // connect() calls that succeeded
  uint64_t accepted = 0;  // accept() calls that returned a connection
  // Connections made that the kernel dropped before the listener could
  // accept them: the client's reset overtook the last ACK of its handshake,
  // which the client had sent but the listener had not yet received (on
  // loopback, when the two leave on different CPUs). Those not accepted,
  // as far as the growth of Tcp AttemptFails in the storm's network
  // namespace over the storm accounts for them.
  uint64_t discarded = 0;
  double seconds = 0;  // first connect to last accept
  // CPU time of this process over the same span (user + system of all its
  // threads), which busy neighbours on the machine disturb less than
  // wall-clock time.
  double cpu_seconds = 0;
  double AcceptsPerSecond() const { return seconds > 0 ? accepted / seconds : 0; }
  double AcceptsPerCpuSecond() const { return cpu_seconds > 0 ? accepted / cpu_seconds : 0; }
};

// Listens on options.listen_address:port and runs the storm, filling
// *result with what it did, also when it fails. An error if the listener
// cannot be set up, a connect fails, or, by the timeout, the connections
// accepted and discarded do not add up to those made. Whatever counts the
// storm's connections (an exporter) must count `accepted` of them.
absl::Status RunStorm(const StormOptions& options, StormResult* result);

// RunStorm on a thread inside the network namespace `name` (made with `ip
// netns add`), so its sockets and the source addresses on that namespace's
// loopback are there, while an exporter outside counts them.
absl::Status StormInNamespace(const std::string& name, const StormOptions& options,
                              StormResult* result);

}  // namespace geoip

#endif  // TOOLS_LOAD_STORM_H_
