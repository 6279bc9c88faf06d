#include "exporter/listeners/cgroup_path.h"

#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace geoip {
namespace {

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A pod UID as the kubelet writes it into a cgroup name: a UUID whose '-'
// the systemd driver turns into '_' (a '-' in a slice name means nesting),
// or the 32 hex digits the kubelet derives for a static pod. Returned with '-'.
std::optional<std::string> PodUid(absl::string_view text) {
  std::string uid(text);
  for (char& c : uid) {
    if (c == '_') c = '-';
  }
  if (uid.size() == 32 && IsLowerHex(uid)) return uid;
  if (uid.size() != 36) return std::nullopt;
  for (size_t i = 0; i < uid.size(); ++i) {
    const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_here != (uid[i] == '-')) return std::nullopt;
    if (!dash_here && !IsLowerHex(absl::string_view(&uid[i], 1))) return std::nullopt;
  }
  return uid;
}

// The pod UID of a systemd-driver pod slice:
// kubepods-burstable-pod<uid>.slice, kubepods-pod<uid>.slice (guaranteed),
// kubelet-kubepods-besteffort-pod<uid>.slice (kind).
std::optional<std::string> PodUidOfSlice(absl::string_view component) {
  if (!absl::ConsumeSuffix(&component, ".slice") || !absl::StrContains(component, "kubepods")) {
    return std::nullopt;
  }
  const size_t pod = component.rfind("-pod");
  if (pod == absl::string_view::npos) return std::nullopt;
  return PodUid(component.substr(pod + 4));
}

struct Container {
  std::string id;
  ContainerRuntime runtime;
};

// A runtime's prefix in a systemd scope name (<prefix>-<id>.scope) or in
// runc's "slice:prefix:id" form. Longer prefixes first: "libpod-" would
// otherwise take "libpod-payload-<id>" and find no id.
struct ScopePrefix {
  absl::string_view prefix;
  ContainerRuntime runtime;
};
constexpr ScopePrefix kScopePrefixes[] = {
    {"libpod-payload-", ContainerRuntime::kPodman},  // podman --cgroups=split (quadlet)
    {"libpod-", ContainerRuntime::kPodman},
    {"docker-", ContainerRuntime::kDocker},
    {"cri-containerd-", ContainerRuntime::kContainerd},
    {"crio-", ContainerRuntime::kCrio},
    {"nerdctl-", ContainerRuntime::kContainerd},
};

// The container a path component names, if any. The runtimes' own helper
// cgroups (libpod-conmon-<id>.scope, crio-conmon-<id>.scope) are not
// containers and do not match: "conmon-<id>" is not an id.
std::optional<Container> ContainerOfComponent(absl::string_view component, absl::string_view parent,
                                              bool under_kubepods) {
  if (IsContainerId(component)) {
    if (parent == "docker") return Container{std::string(component), ContainerRuntime::kDocker};
    if (under_kubepods) return Container{std::string(component), ContainerRuntime::kCri};
    return Container{std::string(component), ContainerRuntime::kUnknown};
  }
  absl::ConsumeSuffix(&component, ".scope");
  for (const ScopePrefix& scope : kScopePrefixes) {
    absl::string_view id = component;
    if (absl::ConsumePrefix(&id, scope.prefix) && IsContainerId(id)) {
      return Container{std::string(id), scope.runtime};
    }
  }
  return std::nullopt;
}

// runc's systemd cgroup form "<slice>:<prefix>:<id>", which appears as a
// directory name on cgroup v1 hosts whose runtime and kubelet disagree on the
// driver (system.slice/containerd.service/kubepods-...slice:cri-containerd:<id>).
std::optional<Container> ContainerOfRuncTriple(absl::string_view component,
                                               std::optional<std::string>* pod_uid) {
  std::vector<absl::string_view> parts = absl::StrSplit(component, ':');
  if (parts.size() != 3 || !IsContainerId(parts[2])) return std::nullopt;
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
  for (const ScopePrefix& scope : kScopePrefixes) {
    if (absl::StripSuffix(scope.prefix, "-") == parts[1]) runtime = scope.runtime;
  }
  *pod_uid = PodUidOfSlice(parts[0]);
  return Container{std::string(parts[2]), runtime};
}

struct ProcCgroupLine {
  absl::string_view controllers;  // "" for v2, "name=systemd", "memory", "cpu,cpuacct"
  absl::string_view path;
  bool v2 = false;
};

// "hierarchy-id:controllers:path"; the path may itself hold ':'.
std::optional<ProcCgroupLine> ParseLine(absl::string_view line) {
  const size_t first = line.find(':');
  if (first == absl::string_view::npos) return std::nullopt;
  const size_t second = line.find(':', first + 1);
  if (second == absl::string_view::npos) return std::nullopt;
  ProcCgroupLine parsed;
  parsed.controllers = line.substr(first + 1, second - first - 1);
  parsed.path = line.substr(second + 1);
  parsed.v2 = line.substr(0, first) == "0" && parsed.controllers.empty();
  return parsed;
}

}  // namespace

bool IsContainerId(absl::string_view text) {
  return text.size() == kContainerIdLength && IsLowerHex(text);
}

CgroupFacts ParseCgroupPath(absl::string_view path) {
  CgroupFacts facts;
  // A cgroup removed while the process was still in it reads so.
  absl::ConsumeSuffix(&path, " (deleted)");
  facts.path = std::string(path);
  absl::string_view parent;
  bool under_kubepods = false;
  for (absl::string_view component : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (component.size() > 8 && absl::EndsWith(component, ".service")) {
      facts.unit = std::string(component);
    }
    std::optional<std::string> pod_uid;
    std::optional<Container> container;
    if (absl::StrContains(component, ':')) {
      container = ContainerOfRuncTriple(component, &pod_uid);
    } else {
      container = ContainerOfComponent(component, parent, under_kubepods);
      pod_uid = PodUidOfSlice(component);
      absl::string_view cgroupfs_pod = component;
      if (!pod_uid && under_kubepods && absl::ConsumePrefix(&cgroupfs_pod, "pod")) {
        pod_uid = PodUid(cgroupfs_pod);  // the cgroupfs driver: kubepods/burstable/pod<uid>
        if (pod_uid && absl::StrContains(cgroupfs_pod, '_')) pod_uid.reset();
      }
    }
    if (container) {
      facts.container_id = std::move(container->id);
      facts.runtime = container->runtime;
    }
    if (pod_uid) facts.pod_uid = *std::move(pod_uid);
    if (absl::StrContains(component, "kubepods")) under_kubepods = true;
    parent = component;
  }
  return facts;
}

CgroupFacts ParseProcCgroup(absl::string_view proc_pid_cgroup_text) {
  absl::string_view v2;
  absl::string_view systemd;
  std::vector<absl::string_view> controllers;
  for (absl::string_view line : absl::StrSplit(proc_pid_cgroup_text, '\n', absl::SkipEmpty())) {
    std::optional<ProcCgroupLine> parsed = ParseLine(line);
    if (!parsed || parsed->path.empty() || parsed->path == "/") continue;
    if (parsed->v2) {
      if (v2.empty()) v2 = parsed->path;
    } else if (parsed->controllers == "name=systemd") {
      if (systemd.empty()) systemd = parsed->path;
    } else {
      controllers.push_back(parsed->path);
    }
  }
  std::vector<absl::string_view> candidates;
  if (!v2.empty()) candidates.push_back(v2);
  if (!systemd.empty()) candidates.push_back(systemd);
  candidates.insert(candidates.end(), controllers.begin(), controllers.end());

  CgroupFacts facts;
  facts.path = "/";
  for (size_t i = 0; i < candidates.size(); ++i) {
    CgroupFacts found = ParseCgroupPath(candidates[i]);
    if (i == 0) facts.path = found.path;
    if (facts.unit.empty()) facts.unit = std::move(found.unit);
    if (facts.container_id.empty() && !found.container_id.empty()) {
      facts.container_id = std::move(found.container_id);
      facts.runtime = found.runtime;
    }
    if (facts.pod_uid.empty()) facts.pod_uid = std::move(found.pod_uid);
  }
  return facts;
}

absl::string_view RuntimeName(ContainerRuntime runtime) {
  switch (runtime) {
    case ContainerRuntime::kNone:
      return "";
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kPodman:
      return "podman";
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
    case ContainerRuntime::kCri:
      return "cri";
    case ContainerRuntime::kUnknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace geoip
