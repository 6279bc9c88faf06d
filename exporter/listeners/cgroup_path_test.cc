#include "exporter/listeners/cgroup_path.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// Made-up ids in the runtimes' shapes.
const std::string kId = "bf70c8a7a67338820bfbf24e0518c309605253323a18fa142ba8b579b4a0d0c0";
const std::string kInner = "7adabd9db114d4a72e9030d7887775b5612e6a90e4b0a33052defc32e7542ba4";
const std::string kPodmanPod = "62fd1cf382ed44060c7e45cbd5e07fc186a560fcbbd98cb8d208c1f4ce577159";
const std::string kPodUid = "28d0b944-ebb3-440c-b4f1-789cd8be6d0f";
const std::string kPodSlice = "28d0b944_ebb3_440c_b4f1_789cd8be6d0f";  // the systemd driver's form
const std::string kStaticPodUid = "665b5c12ed2bac33185c1c54598884fb";

struct Case {
  std::string path;
  std::string unit;
  std::string container_id;
  ContainerRuntime runtime;
  std::string pod_uid;
};

void ExpectFacts(const CgroupFacts& facts, const Case& want) {
  EXPECT_EQ(facts.unit, want.unit);
  EXPECT_EQ(facts.container_id, want.container_id);
  EXPECT_EQ(facts.runtime, want.runtime);
  EXPECT_EQ(facts.pod_uid, want.pod_uid);
}

TEST(CgroupPath, FindsSystemdServices) {
  const std::vector<Case> cases = {
      {"/system.slice/demo-hello.service", "demo-hello.service", "", ContainerRuntime::kNone, ""},
      {"/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", "",
       ContainerRuntime::kNone, ""},
      // The innermost service: a user's own unit under their manager.
      {"/user.slice/user-1000.slice/user@1000.service/app.slice/app-web.service", "app-web.service",
       "", ContainerRuntime::kNone, ""},
      {"/user.slice/user-1000.slice/user@1000.service/init.scope", "user@1000.service", "",
       ContainerRuntime::kNone, ""},
      {"/system.slice/demo-hello.service (deleted)", "demo-hello.service", "",
       ContainerRuntime::kNone, ""},
      // Scopes and slices are not services.
      {"/user.slice/user-1000.slice/session-3.scope", "", "", ContainerRuntime::kNone, ""},
      {"/init.scope", "", "", ContainerRuntime::kNone, ""},
      {"/system.slice", "", "", ContainerRuntime::kNone, ""},
      {"/", "", "", ContainerRuntime::kNone, ""},
      {"", "", "", ContainerRuntime::kNone, ""},
      {"/system.slice/.service", "", "", ContainerRuntime::kNone, ""},
      {"/system.slice/foo.service.d", "", "", ContainerRuntime::kNone, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    ExpectFacts(ParseCgroupPath(c.path), c);
  }
}

TEST(CgroupPath, FindsDockerAndPodmanContainers) {
  const std::vector<Case> cases = {
      // Docker, systemd driver and cgroupfs driver.
      {"/system.slice/docker-" + kId + ".scope", "", kId, ContainerRuntime::kDocker, ""},
      {"/docker/" + kId, "", kId, ContainerRuntime::kDocker, ""},
      // Docker in Docker: the innermost container.
      {"/docker/" + kId + "/docker/" + kInner, "", kInner, ContainerRuntime::kDocker, ""},
      // Podman as root with systemd, and crun's "container" child cgroup.
      {"/machine.slice/libpod-" + kId + ".scope", "", kId, ContainerRuntime::kPodman, ""},
      {"/machine.slice/libpod-" + kId + ".scope/container", "", kId, ContainerRuntime::kPodman, ""},
      // A Podman pod's slice is named by the pod's id; the container is inside.
      {"/machine.slice/machine-libpod_pod_" + kPodmanPod + ".slice/libpod-" + kId +
           ".scope/container",
       "", kId, ContainerRuntime::kPodman, ""},
      // Podman with cgroupfs, as 1.x laid it out (conmon and ctr children).
      {"/libpod_parent/libpod-" + kId, "", kId, ContainerRuntime::kPodman, ""},
      {"/libpod_parent/libpod-" + kId + "/ctr", "", kId, ContainerRuntime::kPodman, ""},
      // Rootless Podman, under the user's manager.
      {"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId +
           ".scope/container",
       "user@1000.service", kId, ContainerRuntime::kPodman, ""},
      // Quadlet (--cgroups=split): the payload inside the unit's own cgroup.
      {"/system.slice/web.service/libpod-payload-" + kId, "web.service", kId,
       ContainerRuntime::kPodman, ""},
      {"/system.slice/web.service/runtime", "web.service", "", ContainerRuntime::kNone, ""},
      // conmon's own scope is not the container.
      {"/machine.slice/libpod-conmon-" + kId + ".scope", "", "", ContainerRuntime::kNone, ""},
      // nerdctl (containerd without Kubernetes), systemd driver and namespaces.
      {"/system.slice/nerdctl-" + kId + ".scope", "", kId, ContainerRuntime::kContainerd, ""},
      {"/default/" + kId, "", kId, ContainerRuntime::kUnknown, ""},
      // Seen from inside a cgroup namespace.
      {"/../../system.slice/docker-" + kId + ".scope", "", kId, ContainerRuntime::kDocker, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    ExpectFacts(ParseCgroupPath(c.path), c);
  }
}

TEST(CgroupPath, FindsKubernetesContainersAndPods) {
  const std::string burstable = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod";
  const std::vector<Case> cases = {
      // The kubelet's systemd driver with containerd and CRI-O.
      {burstable + kPodSlice + ".slice/cri-containerd-" + kId + ".scope", "", kId,
       ContainerRuntime::kContainerd, kPodUid},
      {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kPodSlice +
           ".slice/crio-" + kId + ".scope",
       "", kId, ContainerRuntime::kCrio, kPodUid},
      // Guaranteed pods sit straight under kubepods.slice.
      {"/kubepods.slice/kubepods-pod" + kPodSlice + ".slice/cri-containerd-" + kId + ".scope", "",
       kId, ContainerRuntime::kContainerd, kPodUid},
      // dockershim.
      {burstable + kPodSlice + ".slice/docker-" + kId + ".scope", "", kId,
       ContainerRuntime::kDocker, kPodUid},
      // CRI-O's conmon: the pod, not a container.
      {burstable + kPodSlice + ".slice/crio-conmon-" + kId + ".scope", "", "",
       ContainerRuntime::kNone, kPodUid},
      // A static pod's UID is 32 hex digits, not a UUID.
      {burstable + kStaticPodUid + ".slice/cri-containerd-" + kId + ".scope", "", kId,
       ContainerRuntime::kContainerd, kStaticPodUid},
      // The cgroupfs driver (k3s, containerd's default): bare ids.
      {"/kubepods/burstable/pod" + kPodUid + "/" + kId, "", kId, ContainerRuntime::kCri, kPodUid},
      {"/kubepods/pod" + kPodUid + "/" + kId, "", kId, ContainerRuntime::kCri, kPodUid},
      {"/kubepods/besteffort/pod" + kStaticPodUid + "/" + kId, "", kId, ContainerRuntime::kCri,
       kStaticPodUid},
      // kind: a node in a Docker container, its kubelet under kubelet.slice.
      {"/system.slice/docker-" + kInner +
           ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
           "kubelet-kubepods-besteffort-pod" +
           kPodSlice + ".slice/cri-containerd-" + kId + ".scope",
       "", kId, ContainerRuntime::kContainerd, kPodUid},
      // runc's "slice:prefix:id", left as a directory name on cgroup v1 hosts
      // whose containerd and kubelet disagree on the driver.
      {"/system.slice/containerd.service/kubepods-burstable-pod" + kPodSlice +
           ".slice:cri-containerd:" + kId,
       "containerd.service", kId, ContainerRuntime::kContainerd, kPodUid},
      {"/system.slice/containerd.service/kubepods-burstable-pod" + kPodSlice +
           ".slice:other:" + kId,
       "containerd.service", kId, ContainerRuntime::kUnknown, kPodUid},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    ExpectFacts(ParseCgroupPath(c.path), c);
  }
}

TEST(CgroupPath, RefusesWhatOnlyLooksLikeAnId) {
  const std::string upper = "BF70C8A7A67338820BFBF24E0518C309605253323A18FA142BA8B579B4A0D0C0";
  const std::vector<Case> cases = {
      {"/docker/bf70c8a7a673", "", "", ContainerRuntime::kNone, ""},  // short id
      {"/docker/" + kId.substr(1), "", "", ContainerRuntime::kNone, ""},
      {"/docker/" + kId + "0", "", "", ContainerRuntime::kNone, ""},
      {"/docker/" + upper, "", "", ContainerRuntime::kNone, ""},
      {"/system.slice/docker-" + kId + "x.scope", "", "", ContainerRuntime::kNone, ""},
      {"/system.slice/podman-" + kId + ".scope", "", "", ContainerRuntime::kNone, ""},
      {"/system.slice/var-lib-docker-containers-" + kId + "-mounts-shm.mount", "", "",
       ContainerRuntime::kNone, ""},
      {"/a:b:c:" + kId, "", "", ContainerRuntime::kNone, ""},
      {"/x.slice:docker:" + kId.substr(2), "", "", ContainerRuntime::kNone, ""},
      // Pod UIDs only inside kubepods, and only in a UID's shape.
      {"/pod" + kPodUid, "", "", ContainerRuntime::kNone, ""},
      {"/kubepods/pod" + kPodSlice, "", "", ContainerRuntime::kNone, ""},
      {"/kubepods/pod28d0b944-ebb3-440c-b4f1-789cd8be6d0", "", "", ContainerRuntime::kNone, ""},
      {"/kubepods/pod28d0b944eebb3-440c-b4f1-789cd8be6d0f", "", "", ContainerRuntime::kNone, ""},
      {"/kubepods.slice/kubepods-pod" + kPodSlice + "x.slice", "", "", ContainerRuntime::kNone, ""},
      {"/system.slice/user-pod" + kPodSlice + ".slice", "", "", ContainerRuntime::kNone, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    ExpectFacts(ParseCgroupPath(c.path), c);
  }
}

TEST(ProcCgroup, ReadsCgroupV2) {
  const CgroupFacts facts = ParseProcCgroup("0::/system.slice/demo-hello.service\n");
  EXPECT_EQ(facts.path, "/system.slice/demo-hello.service");
  EXPECT_EQ(facts.unit, "demo-hello.service");
  EXPECT_EQ(facts.runtime, ContainerRuntime::kNone);
}

TEST(ProcCgroup, ReadsV1WhereV2SaysOnlyTheRoot) {
  // A hybrid host (like Debian 12 booted with systemd's hybrid hierarchy)
  // where the unified hierarchy holds nothing.
  const std::string text = absl::StrCat(
      "12:pids:/system.slice/docker-", kId, ".scope\n", "4:memory:/system.slice/docker-", kId,
      ".scope\n", "1:name=systemd:/system.slice/docker-", kId, ".scope\n", "0::/\n");
  const CgroupFacts facts = ParseProcCgroup(text);
  EXPECT_EQ(facts.path, "/system.slice/docker-" + kId + ".scope");  // name=systemd's
  EXPECT_EQ(facts.container_id, kId);
  EXPECT_EQ(facts.runtime, ContainerRuntime::kDocker);
}

TEST(ProcCgroup, PrefersNameSystemdThenTheFirstController) {
  const CgroupFacts facts = ParseProcCgroup(
      "9:name=systemd:/system.slice/demo-hello.service\n"
      "4:memory:/mygroup\n"
      "0::/\n");
  EXPECT_EQ(facts.path, "/system.slice/demo-hello.service");
  EXPECT_EQ(facts.unit, "demo-hello.service");

  const CgroupFacts controllers = ParseProcCgroup(
      "9:name=systemd:/\n"
      "8:pids:/\n"
      "4:memory:/process_api/f6bb499c5177316085740f67c09d57e9\n"
      "2:cpu,cpuacct:/second\n"
      "0::/\n");
  EXPECT_EQ(controllers.path, "/process_api/f6bb499c5177316085740f67c09d57e9");
  EXPECT_EQ(controllers.unit, "");
  EXPECT_EQ(controllers.container_id, "");
}

TEST(ProcCgroup, FindsAContainerThatOnlyTheV1LinesName) {
  // Hybrid host, runtime with the cgroupfs driver: systemd's unified
  // hierarchy still has the process in containerd's service.
  const std::string text = absl::StrCat("11:memory:/docker/", kId, "\n1:name=systemd:/docker/", kId,
                                        "\n0::/system.slice/containerd.service\n");
  const CgroupFacts facts = ParseProcCgroup(text);
  EXPECT_EQ(facts.path, "/system.slice/containerd.service");
  EXPECT_EQ(facts.unit, "containerd.service");
  EXPECT_EQ(facts.container_id, kId);
  EXPECT_EQ(facts.runtime, ContainerRuntime::kDocker);
}

TEST(ProcCgroup, KeepsColonsInsideThePath) {
  const std::string text =
      absl::StrCat("1:name=systemd:/system.slice/containerd.service/kubepods-besteffort-pod",
                   kPodSlice, ".slice:cri-containerd:", kId, "\n");
  const CgroupFacts facts = ParseProcCgroup(text);
  EXPECT_EQ(facts.container_id, kId);
  EXPECT_EQ(facts.runtime, ContainerRuntime::kContainerd);
  EXPECT_EQ(facts.pod_uid, kPodUid);
}

TEST(ProcCgroup, EmptyRootOnlyAndMalformedTextSayNothing) {
  for (const std::string text : {"", "\n", "0::/\n", "garbage\n", "0:/docker/x\n", "::\n",
                                 "9:name=systemd:/\n8:pids:/\n0::/\n"}) {
    SCOPED_TRACE(text);
    const CgroupFacts facts = ParseProcCgroup(text);
    EXPECT_EQ(facts.path, "/");
    EXPECT_EQ(facts.unit, "");
    EXPECT_EQ(facts.container_id, "");
    EXPECT_EQ(facts.runtime, ContainerRuntime::kNone);
    EXPECT_EQ(facts.pod_uid, "");
  }
}

TEST(CgroupPath, NamesRuntimes) {
  EXPECT_EQ(RuntimeName(ContainerRuntime::kNone), "");
  EXPECT_EQ(RuntimeName(ContainerRuntime::kDocker), "docker");
  EXPECT_EQ(RuntimeName(ContainerRuntime::kPodman), "podman");
  EXPECT_EQ(RuntimeName(ContainerRuntime::kContainerd), "containerd");
  EXPECT_EQ(RuntimeName(ContainerRuntime::kCrio), "cri-o");
  EXPECT_EQ(RuntimeName(ContainerRuntime::kCri), "cri");
  EXPECT_EQ(RuntimeName(ContainerRuntime::kUnknown), "unknown");
  EXPECT_TRUE(IsContainerId(kId));
  EXPECT_FALSE(IsContainerId(kId.substr(0, 12)));
}

}  // namespace
}  // namespace geoip
