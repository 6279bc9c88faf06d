// A container's name from its runtime's own state, where the exporter can
// read it: Podman's conmon command line (world-readable), Docker's
// config.v2.json (root only). containerd and CRI-O keep no name a reader of
// files can trust; their pods join to kube-state-metrics by pod UID instead.
#ifndef EXPORTER_LISTENERS_CONTAINER_NAMES_H_
#define EXPORTER_LISTENERS_CONTAINER_NAMES_H_

#include <sys/types.h>

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "exporter/listeners/cgroup_path.h"

namespace geoip {

// The arguments of /proc/PID/cmdline (NUL-separated, NUL-terminated).
std::vector<std::string> SplitCommandLine(absl::string_view cmdline);

// What a conmon process says it watches.
struct ConmonContainer {
  std::string id;    // kContainerIdLength hex digits
  std::string name;  // as `podman ps` shows it
};

// conmon's argv (argv[0] included): "-c ID" or "--cid ID" and "-n NAME" or
// "--name NAME" (also "--cid=ID", "-cID"). Values of conmon's other options
// are skipped, so a runtime or exit-command argument that happens to read
// "-n" is not taken for the name. nullopt if argv[0] is not conmon, or the id
// or the name is missing or malformed.
std::optional<ConmonContainer> ParseConmonCommandLine(const std::vector<std::string>& args);

// A running conmon: the user it runs as and what it claims.
struct ConmonProcess {
  uid_t uid = 0;
  ConmonContainer container;
};

// Container id -> name from the conmons running. Anyone can start a process
// called conmon, so a claim by root outweighs every other claim to the same
// id, and claims by other users count only when they all agree: a user cannot
// rename root's containers, nor another user's without the name turning into
// the short id.
absl::flat_hash_map<std::string, std::string> NamesFromConmons(
    const std::vector<ConmonProcess>& conmons);

// The top-level "Name" of Docker's containers/<id>/config.v2.json, without
// its leading '/'; nullopt if absent, not a string, or the JSON breaks off
// before it. Nested "Name"s (mount points, networks) are not it.
std::optional<std::string> ParseDockerContainerName(absl::string_view config_v2_json);

// Container id -> name, from the runtimes' state. Looks only on a miss, and
// remembers answers (names and "none") for at most max_entries ids, after
// which it starts over. Thread-safe.
class ContainerNames {
 public:
  struct Options {
    std::string proc_root = "/proc";
    std::string docker_root = "/var/lib/docker";  // dockerd --data-root
    size_t max_entries = 4096;
  };

  ContainerNames();
  explicit ContainerNames(Options options);

  // The name of the container with this full id, nullopt where the runtime
  // keeps none or the exporter cannot read it (Docker's state as non-root).
  // Podman: one scan of proc_root for conmon processes, which also answers
  // every other running Podman container at once.
  std::optional<std::string> Lookup(absl::string_view container_id, ContainerRuntime runtime);

  // Scans of proc_root and reads of config.v2.json so far (for tests and the
  // exporter's own health).
  size_t lookups_done() const;

 private:
  // Every conmon under proc_root whose command line parses.
  std::vector<ConmonProcess> ScanConmon() const;
  std::optional<std::string> ReadDockerName(absl::string_view container_id) const;
  void Remember(std::string id, std::optional<std::string> name);

  const Options options_;
  mutable std::mutex mutex_;
  absl::flat_hash_map<std::string, std::optional<std::string>> cache_;
  size_t lookups_done_ = 0;
};

}  // namespace geoip

#endif  // EXPORTER_LISTENERS_CONTAINER_NAMES_H_
