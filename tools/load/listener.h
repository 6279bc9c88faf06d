// Listeners that the load tools own: threads blocked in accept() on a
// socket, counting every connection they accept into an AcceptTally.
#ifndef TOOLS_LOAD_LISTENER_H_
#define TOOLS_LOAD_LISTENER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "exporter/util/unique_fd.h"
#include "tools/load/endpoint.h"

namespace geoip {

// Accepts counted per listener (by index), and a wait until they reach
// targets. Counting takes no lock until someone waits, so the accepting
// threads of a storm do not contend with the connecting one. std::mutex,
// not absl::Mutex, for ThreadSanitizer (see the top CMakeLists.txt).
class AcceptTally {
 public:
  explicit AcceptTally(size_t listeners = 1);

  // One more connection accepted by listener `index`.
  void Add(size_t index = 0);

  // Waits until listener i has accepted at least expected[i], for every i;
  // false if the deadline comes first.
  bool AwaitAtLeast(const std::vector<uint64_t>& expected, absl::Time deadline);

  // Accepts of listener `index`, and of all listeners together.
  uint64_t Accepted(size_t index = 0) const;
  uint64_t Total() const;

 private:
  std::unique_ptr<std::atomic<uint64_t>[]> accepted_;
  const size_t listeners_;
  std::atomic<bool> waiting_{false};  // set by AwaitAtLeast; Add notifies once set
  std::mutex mu_;
  std::condition_variable changed_;
};

// An owned listening socket and the threads accepting on it. Stop() (and
// the destructor) shuts the socket down, which wakes every blocked accept()
// with EINVAL on Linux, and joins the threads.
class Listener {
 public:
  // Called on an acceptor thread for each connection, after it is counted
  // and before it is closed.
  using Handler = std::function<void(int connection, const Endpoint& peer)>;

  // Binds and listens on endpoint (see Listen() in tools/load/socket.h); a
  // port of 0 becomes the one the kernel chose.
  static absl::StatusOr<std::unique_ptr<Listener>> Open(const Endpoint& endpoint);

  ~Listener();

  // The address listened on, with the real port.
  const Endpoint& endpoint() const { return endpoint_; }
  int fd() const { return fd_.get(); }

  // Starts `acceptors` threads that accept until Stop(), count each
  // connection as tally->Add(index), pass it to handler (if any) and close
  // it. tally must outlive Stop().
  void Start(int acceptors, AcceptTally* tally, size_t index, Handler handler = nullptr);

  // Stops and joins the acceptor threads; the socket stays open.
  void Stop();

  // True if a connection to destination lands on this listener.
  bool Receives(const Endpoint& destination) const;

 private:
  Listener(const Endpoint& endpoint, UniqueFd fd) : endpoint_(endpoint), fd_(std::move(fd)) {}

  void AcceptUntilStopped(AcceptTally* tally, size_t index, const Handler& handler);

  const Endpoint endpoint_;
  const UniqueFd fd_;
  std::vector<std::thread> threads_;
};

}  // namespace geoip

#endif  // TOOLS_LOAD_LISTENER_H_
