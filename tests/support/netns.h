// A private network namespace for end-to-end tests. Public addresses put on
// its loopback let clients inside it look like they come from anywhere,
// while nothing can leave: the namespace has no other interface.
#ifndef TESTS_SUPPORT_NETNS_H_
#define TESTS_SUPPORT_NETNS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace geoip {

// Owns a named network namespace ("geoip-test-<pid>-<n>") with lo up.
// Move-only; the destructor kills every process still inside it and deletes
// it, also when the test fails. Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
class TestNamespace {
 public:
  // Creates the namespace and brings lo up. First deletes namespaces that
  // earlier test processes, now dead, failed to delete.
  static absl::StatusOr<TestNamespace> Create();

  TestNamespace(TestNamespace&& other) noexcept;
  TestNamespace& operator=(TestNamespace&& other) noexcept;
  TestNamespace(const TestNamespace&) = delete;
  TestNamespace& operator=(const TestNamespace&) = delete;
  ~TestNamespace();

  const std::string& name() const { return name_; }

  // Puts address on lo: IPv4 as /32, IPv6 as /128 with nodad, so it is
  // usable at once instead of staying tentative for about 2 s.
  absl::Status AddAddress(absl::string_view address);

  // Runs argv inside the namespace and waits for it. On timeout the command
  // (with its process group) is killed and DeadlineExceeded returned, with
  // what it wrote so far in the message.
  absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv, absl::Duration timeout);

  // Starts argv inside the namespace in the background; the returned handle
  // kills it when destroyed.
  absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv);

  // Pids of all processes in the namespace (from `ip netns pids`).
  absl::StatusOr<std::vector<int>> Pids();

 private:
  explicit TestNamespace(std::string name) : name_(std::move(name)) {}
  void Delete();

  std::string name_;  // empty once moved from or deleted
};

}  // namespace geoip

#endif  // TESTS_SUPPORT_NETNS_H_
