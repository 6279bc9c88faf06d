#include "tools/blocked_accept.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace geoip {
namespace {

struct Case {
  std::string text;
  std::optional<int> fd;
};

TEST(BlockedAcceptFd, ReadsTheListeningFdOfAcceptOnly) {
  const std::string tail = " 0x7ffd1c1e0a90 0x0 0x80000 0x0 0x0 0x7f3a8bdfed70 0x7f3a8c0f2b1f\n";
  const std::vector<Case> cases = {
      {absl::StrCat(SYS_accept4, " 0x3", tail), 3},
      {absl::StrCat(SYS_accept4, " 0x1f", tail), 31},
#ifdef SYS_accept
      {absl::StrCat(SYS_accept, " 0x7", tail), 7},
#endif
      {absl::StrCat(SYS_read, " 0x3", tail), std::nullopt},
      {"running\n", std::nullopt},
      {"-1 0x7ffd1c1e0a90 0x7f3a8c0f2b1f\n", std::nullopt},  // not in a syscall
      {"", std::nullopt},
      {absl::StrCat(SYS_accept4, " 3", tail), std::nullopt},  // no 0x
      {absl::StrCat(SYS_accept4, " 0xzz", tail), std::nullopt},
      {absl::StrCat(SYS_accept4, " 0x100000000", tail), std::nullopt},
      {absl::StrCat(SYS_accept4, " 0x3 0x0\n"), std::nullopt},  // truncated
  };
  for (const Case& c : cases) {
    EXPECT_EQ(BlockedAcceptFd(c.text), c.fd) << c.text;
  }
}

TEST(BlockedAcceptorsByFd, SeesThreadsAsleepInAccept) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in loopback{};
  loopback.sin_family = AF_INET;
  loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // port 0: any free one
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([fd] { accept4(fd, nullptr, nullptr, SOCK_CLOEXEC); });
  }
  int blocked = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (blocked < 3 && absl::Now() < deadline) {
    absl::StatusOr<std::map<int, int>> by_fd = BlockedAcceptorsByFd();
    ASSERT_TRUE(by_fd.ok()) << by_fd.status();
    blocked = by_fd->count(fd) ? by_fd->at(fd) : 0;
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(blocked, 3);
  shutdown(fd, SHUT_RDWR);  // wakes every accept() with EINVAL
  for (std::thread& thread : threads) thread.join();
  absl::StatusOr<std::map<int, int>> after = BlockedAcceptorsByFd();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->count(fd), 0u);
  close(fd);
}

}  // namespace
}  // namespace geoip
