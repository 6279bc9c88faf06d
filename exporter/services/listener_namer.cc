#include "exporter/services/listener_namer.h"

#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace geoip {

ListenerNamer::ListenerNamer(std::string proc_root)
    : proc_root_(std::move(proc_root)), containers_([this] {
        ContainerNames::Options options;
        options.proc_root = proc_root_;
        return options;
      }()) {}

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

ListenerIdentity ListenerNamer::Name(const ListeningSocket& socket) {
  // The process may have exited and its PID gone to another since it
  // listened: its cgroups count only while the name still matches.
  const std::string dir = absl::StrCat(proc_root_, "/", socket.pid);
  std::string comm = ReadFile(dir + "/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  CgroupFacts facts;
  if (comm == socket.comm) facts = ParseProcCgroup(ReadFile(dir + "/cgroup"));
  std::optional<std::string> container_name;
  if (!facts.container_id.empty()) {
    container_name = containers_.Lookup(facts.container_id, facts.runtime);
  }
  return NameListener(socket.comm, facts, std::move(container_name));
}

}  // namespace geoip
