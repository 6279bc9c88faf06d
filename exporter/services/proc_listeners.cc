#include "exporter/services/proc_listeners.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace geoip {
namespace {

constexpr absl::string_view kListen = "0A";  // TCP_LISTEN, as /proc/net/tcp prints it

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::vector<int> Pids() {
  std::vector<int> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = readdir(proc)) {
    int pid = 0;
    if (absl::SimpleAtoi(entry->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  closedir(proc);
  std::sort(pids.begin(), pids.end());
  return pids;
}

// Socket inodes among pid's open files; false if they may not be read.
bool SocketInodes(int pid, std::vector<uint64_t>* inodes) {
  inodes->clear();
  const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* fds = opendir(fd_dir.c_str());
  if (fds == nullptr) return errno != EACCES && errno != EPERM;
  char target[64];
  while (dirent* entry = readdir(fds)) {
    if (entry->d_name[0] == '.') continue;
    const std::string link = absl::StrCat(fd_dir, "/", entry->d_name);
    const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view text(target, static_cast<size_t>(n));
    uint64_t inode = 0;
    if (absl::ConsumePrefix(&text, "socket:[") && absl::ConsumeSuffix(&text, "]") &&
        absl::SimpleAtoi(text, &inode)) {
      inodes->push_back(inode);
    }
  }
  closedir(fds);
  return true;
}

}  // namespace

std::vector<std::pair<uint64_t, uint16_t>> ParseProcNetTcp(absl::string_view text) {
  // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt
  //   uid  timeout inode ..."; the first line is that header.
  std::vector<std::pair<uint64_t, uint16_t>> listening;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (header) {
      header = false;
      continue;
    }
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() < 10 || fields[3] != kListen) continue;
    const size_t colon = fields[1].rfind(':');
    uint32_t port = 0;
    uint64_t inode = 0;
    if (colon == absl::string_view::npos ||
        !absl::SimpleHexAtoi(fields[1].substr(colon + 1), &port) || port > 65535 ||
        !absl::SimpleAtoi(fields[9], &inode) || inode == 0) {
      continue;
    }
    listening.emplace_back(inode, static_cast<uint16_t>(port));
  }
  return listening;
}

ProcListenerScan ScanProcListeners() {
  // Listening sockets of each network namespace, read from the first
  // process found in it: inode → port.
  absl::flat_hash_map<uint64_t, absl::flat_hash_map<uint64_t, uint16_t>> by_netns;
  absl::flat_hash_set<std::pair<uint64_t, uint16_t>> seen;  // (netns, port)
  ProcListenerScan scan;
  std::vector<uint64_t> inodes;
  for (int pid : Pids()) {
    struct stat ns {};
    if (stat(absl::StrCat("/proc/", pid, "/ns/net").c_str(), &ns) != 0) {
      if (errno == EACCES || errno == EPERM) ++scan.unreadable;
      continue;
    }
    const uint64_t netns = ns.st_ino;
    auto [it, first] = by_netns.try_emplace(netns);
    if (first) {
      for (const char* file : {"tcp", "tcp6"}) {
        for (const auto& [inode, port] :
             ParseProcNetTcp(ReadFile(absl::StrCat("/proc/", pid, "/net/", file)))) {
          it->second[inode] = port;
        }
      }
    }
    if (it->second.empty()) continue;
    if (!SocketInodes(pid, &inodes)) {
      ++scan.unreadable;
      continue;
    }
    for (uint64_t inode : inodes) {
      auto socket = it->second.find(inode);
      if (socket == it->second.end() || !seen.emplace(netns, socket->second).second) continue;
      ListeningSocket listener;
      listener.netns = static_cast<uint32_t>(netns);
      listener.port = socket->second;
      listener.pid = static_cast<uint32_t>(pid);
      listener.comm =
          std::string(absl::StripSuffix(ReadFile(absl::StrCat("/proc/", pid, "/comm")), "\n"));
      scan.listening.push_back(std::move(listener));
    }
  }
  return scan;
}

}  // namespace geoip
