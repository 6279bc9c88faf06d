#include "exporter/services/proc_listeners.h"

#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// As Linux 6.1 writes /proc/net/tcp6 and tcp (columns abridged after inode).
constexpr char kTcp[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode\n"
    "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "31337 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 "
    "4242 1 0000000000000000 100 0 0 10 0\n"
    "   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 "
    "777 1 0000000000000000 20 4 30 10 -1\n"
    "   3: garbage\n";
constexpr char kTcp6[] =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0\n";

TEST(ParseProcNetTcp, FindsListeningSocketsOnly) {
  EXPECT_EQ(ParseProcNetTcp(kTcp),
            (std::vector<std::pair<uint64_t, uint16_t>>{{31337, 8080}, {4242, 3306}}));
  EXPECT_EQ(ParseProcNetTcp(kTcp6), (std::vector<std::pair<uint64_t, uint16_t>>{{555, 8081}}));
  EXPECT_TRUE(ParseProcNetTcp("").empty());
  EXPECT_TRUE(ParseProcNetTcp("header only\n").empty());
}

TEST(ScanProcListeners, FindsThisProcessListening) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const uint16_t port = ntohs(address.sin_port);
  struct stat ns {};
  ASSERT_EQ(stat("/proc/self/ns/net", &ns), 0);

  bool found = false;
  const ProcListenerScan scan = ScanProcListeners();
  for (const ListeningSocket& socket : scan.listening) {
    if (socket.port != port || socket.netns != ns.st_ino) continue;
    found = true;
    EXPECT_EQ(socket.pid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(socket.comm, "proc_listeners_");  // the kernel keeps 15 bytes
  }
  EXPECT_TRUE(found) << "port " << port;
  close(fd);
}

// A pod with only CAP_BPF and CAP_PERFMON may not look into other
// processes: the scan says how many it could not read, for the log.
TEST(ScanProcListeners, CountsProcessesItMayNotRead) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to drop capabilities in a child";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  if (child == 0) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};  // no capabilities at all
    int unreadable = -1;
    if (syscall(SYS_capset, &header, data) == 0) unreadable = ScanProcListeners().unreadable;
    (void)!write(fds[1], &unreadable, sizeof unreadable);
    _exit(0);
  }
  close(fds[1]);
  int unreadable = -1;
  ASSERT_EQ(read(fds[0], &unreadable, sizeof unreadable), static_cast<ssize_t>(sizeof unreadable));
  close(fds[0]);
  waitpid(child, nullptr, 0);
  // PID 1 holds capabilities the child has not: the child may not read it.
  EXPECT_GT(unreadable, 0);
}

}  // namespace
}  // namespace geoip
