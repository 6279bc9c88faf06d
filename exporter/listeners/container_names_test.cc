#include "exporter/listeners/container_names.h"

#include <sys/types.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace geoip {
namespace {

const std::string kId = "bf70c8a7a67338820bfbf24e0518c309605253323a18fa142ba8b579b4a0d0c0";
const std::string kOther = "7adabd9db114d4a72e9030d7887775b5612e6a90e4b0a33052defc32e7542ba4";
const std::string kAbsent = "62fd1cf382ed44060c7e45cbd5e07fc186a560fcbbd98cb8d208c1f4ce577159";

// conmon's argv as Podman 4 and 5 start it (paths shortened).
std::vector<std::string> PodmanConmon(const std::string& id, const std::string& name) {
  return {"/usr/bin/conmon",
          "--api-version",
          "1",
          "-c",
          id,
          "-u",
          id,
          "-r",
          "/usr/bin/crun",
          "-b",
          "/var/lib/containers/storage/overlay-containers/" + id + "/userdata",
          "-p",
          "/run/containers/storage/overlay-containers/" + id + "/userdata/pidfile",
          "-n",
          name,
          "--exit-dir",
          "/run/libpod/exits",
          "--persist-dir",
          "/run/libpod/persist/" + id,
          "--full-attach",
          "-s",
          "-l",
          "k8s-file:/var/lib/containers/storage/overlay-containers/" + id + "/userdata/ctr.log",
          "--log-level",
          "warning",
          "--syslog",
          "--runtime-arg",
          "--log-format=json",
          "--runtime-arg",
          "--log",
          "--runtime-arg=/run/containers/storage/overlay-containers/" + id + "/userdata/oci-log",
          "--conmon-pidfile",
          "/run/containers/storage/overlay-containers/" + id + "/userdata/conmon.pid",
          "--exit-command",
          "/usr/bin/podman",
          "--exit-command-arg",
          "--root",
          "--exit-command-arg",
          "/var/lib/containers/storage",
          "--exit-command-arg",
          "container",
          "--exit-command-arg",
          "cleanup",
          "--exit-command-arg",
          id};
}

TEST(ConmonCommandLine, ReadsPodmansConmon) {
  std::optional<ConmonContainer> container = ParseConmonCommandLine(PodmanConmon(kId, "web"));
  ASSERT_TRUE(container.has_value());
  EXPECT_EQ(container->id, kId);
  EXPECT_EQ(container->name, "web");
}

TEST(ConmonCommandLine, ReadsEveryOptionSpelling) {
  const std::vector<std::vector<std::string>> cases = {
      {"conmon", "--cid", kId, "--name", "web"},
      {"conmon", "--cid=" + kId, "--name=web"},
      {"/usr/libexec/podman/conmon", "-c" + kId, "-nweb"},
      {"conmon", "-ti", "-c", kId, "-n", "web"},
      // An exec session's conmon names the same container.
      {"conmon", "--api-version", "1", "-c", kId, "-u", kOther, "-n", "web", "-e", "--exec-attach",
       "--exec-process-spec", "/tmp/spec"},
      // The last of a repeated option wins, as GLib's parser has it.
      {"conmon", "-c", kOther, "-n", "old", "-c", kId, "-n", "web"},
  };
  for (const std::vector<std::string>& args : cases) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    std::optional<ConmonContainer> container = ParseConmonCommandLine(args);
    ASSERT_TRUE(container.has_value());
    EXPECT_EQ(container->id, kId);
    EXPECT_EQ(container->name, "web");
  }
}

TEST(ConmonCommandLine, OtherOptionsValuesAreNotOptions) {
  const std::vector<std::vector<std::string>> cases = {
      {"conmon", "-c", kId, "-n", "web", "--exit-command-arg", "-n", "--exit-command-arg", "evil"},
      {"conmon", "-c", kId, "--runtime-arg", "-n", "-n", "web", "--log-tag", "--name=evil"},
      {"conmon", "-c", kId, "-n", "web", "-l", "-n"},
      {"conmon", "-c", kId, "-n", "web", "--", "-n", "evil"},
  };
  for (const std::vector<std::string>& args : cases) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    std::optional<ConmonContainer> container = ParseConmonCommandLine(args);
    ASSERT_TRUE(container.has_value());
    EXPECT_EQ(container->name, "web");
  }
}

TEST(ConmonCommandLine, RefusesOtherProgramsAndMissingOrBadValues) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"conmon"},
      {"podman", "-c", kId, "-n", "web"},
      {"/usr/bin/conmon-rs", "-c", kId, "-n", "web"},
      {"conmon", "-c", kId},                             // no name
      {"conmon", "-n", "web"},                           // no id
      {"conmon", "-c", kId, "-n", ""},                   // empty name
      {"conmon", "-c", kId, "-n"},                       // name cut off
      {"conmon", "-c", kId.substr(0, 12), "-n", "web"},  // short id
      {"conmon", "-c", "not-an-id", "-n", "web"},
      {"conmon", "--exit-command-arg", "-c", kId, "-n", "web"},  // -c was a value
  };
  for (const std::vector<std::string>& args : cases) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    EXPECT_FALSE(ParseConmonCommandLine(args).has_value());
  }
}

TEST(ConmonCommandLine, SplitsProcCmdline) {
  using Args = std::vector<std::string>;
  EXPECT_EQ(SplitCommandLine(std::string("conmon\0-c\0id\0", 13)), (Args{"conmon", "-c", "id"}));
  EXPECT_EQ(SplitCommandLine(std::string("a\0\0b\0", 5)), (Args{"a", "", "b"}));
  EXPECT_EQ(SplitCommandLine("rewritten title"), (Args{"rewritten title"}));
  EXPECT_EQ(SplitCommandLine(""), Args{});  // a kernel thread
}

TEST(ConmonCommandLine, RootOutweighsOthersAndOthersMustAgree) {
  const uid_t kRoot = 0;
  const uid_t kAlice = 1000;
  const uid_t kMallory = 1001;
  const std::string kThird = "cac063fe6cdda76daaf7400b0d43320d6f62e868a1339f929363592228e54c7d";
  absl::flat_hash_map<std::string, std::string> names = NamesFromConmons({
      {kMallory, {kId, "evil"}},
      {kRoot, {kId, "web"}},
      {kRoot, {kId, "web"}},  // an exec session's conmon
      {kAlice, {kOther, "alices-db"}},
      {kMallory, {kOther, "evil"}},
      {kAlice, {kThird, "alices-app"}},
      {kAlice, {kThird, "alices-app"}},
  });
  EXPECT_EQ(names.size(), 2u);
  EXPECT_EQ(names[kId], "web");
  EXPECT_FALSE(names.contains(kOther));  // two users disagree: no name
  EXPECT_EQ(names[kThird], "alices-app");
}

TEST(DockerConfig, FindsTheTopLevelName) {
  // Abridged from a real config.v2.json: mount points and networks carry
  // "Name"s of their own, before and after the container's.
  const std::string config = absl::StrCat(
      R"({"StreamConfig":{},"State":{"Running":true,"Pid":4242,"Health":null},)", R"("ID":")", kId,
      R"(","Created":"2026-01-02T03:04:05.6Z","Path":"nginx",)",
      R"("Args":["-g","daemon off;"],"Config":{"Hostname":"bf70c8a7a673","Env":["A=\"Name\":\"/x\""],)",
      R"("Labels":{"Name":"label"}},"MountPoints":{"/data":{"Source":"","Name":"webdata",)",
      R"("Driver":"local","Spec":{}}},"Name":"/web","Driver":"overlay2","RestartCount":0,)",
      R"("NetworkSettings":{"Networks":{"bridge":{"Name":"bridge"}}},"HasBeenStarted":true})");
  EXPECT_EQ(ParseDockerContainerName(config), "web");
}

TEST(DockerConfig, ReadsStringsAndRefusesTheRest) {
  const std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
      {R"({"Name":"/web"})", "web"},
      {"{\n  \"ID\": 7,\n  \"Args\": [1, [2, {\"Name\": \"/no\"}]],\n  \"Name\" : \"/web\"\n}",
       "web"},
      {R"({"Flag":true,"Gone":null,"N":-1.5e3,"Name":"/web"})", "web"},
      {R"({"Name":"web"})", "web"},  // no leading slash: kept as it is
      {R"({"Name":"\/caf\u00e9 \"1\" \ud83d\ude00"})", "caf\xc3\xa9 \"1\" \xf0\x9f\x98\x80"},
      {R"({"Name":"\ud83d"})", "\xef\xbf\xbd"},  // a lone surrogate
      {R"({"Name":"/"})", std::nullopt},
      {R"({"Name":""})", std::nullopt},
      {R"({"Name":null})", std::nullopt},
      {R"({"Name":["/web"]})", std::nullopt},
      {R"({"Other":{"Name":"/nested"}})", std::nullopt},
      {R"({"Name":"/we)", std::nullopt},  // cut off
      {R"({"Name":"\q"})", std::nullopt},
      {R"({"Name":"\u12"})", std::nullopt},
      {R"({"A":"unterminated)", std::nullopt},
      {R"({"A":{"B":[}})", std::nullopt},
      {R"(["Name","/web"])", std::nullopt},
      {"", std::nullopt},
      {"{", std::nullopt},
  };
  for (const auto& [json, name] : cases) {
    SCOPED_TRACE(json);
    EXPECT_EQ(ParseDockerContainerName(json), name);
  }
}

// A directory tree standing in for /proc and /var/lib/docker.
class FakeRoot {
 public:
  FakeRoot() {
    std::string pattern = ::testing::TempDir() + "container_names_XXXXXX";
    EXPECT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  ~FakeRoot() { std::filesystem::remove_all(root_); }

  void Write(const std::string& relative, const std::string& text) {
    const std::filesystem::path path = std::filesystem::path(root_) / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }
  void AddProcess(int pid, const std::string& comm, const std::vector<std::string>& args) {
    std::string cmdline;
    for (const std::string& arg : args) cmdline += arg + std::string(1, '\0');
    Write(absl::StrCat("proc/", pid, "/comm"), comm + "\n");
    Write(absl::StrCat("proc/", pid, "/cmdline"), cmdline);
  }
  ContainerNames::Options Options() const {
    ContainerNames::Options options;
    options.proc_root = root_ + "/proc";
    options.docker_root = root_ + "/docker";
    return options;
  }

 private:
  std::string root_;
};

TEST(ContainerNames, ScansForConmonOnceForAllRunningPodmanContainers) {
  FakeRoot root;
  root.AddProcess(1, "systemd", {"/sbin/init"});
  root.AddProcess(100, "conmon", PodmanConmon(kId, "web"));
  root.AddProcess(200, "conmon", PodmanConmon(kOther, "db"));
  root.AddProcess(300, "bash", PodmanConmon(kAbsent, "not-conmon"));  // argv, not comm, says conmon
  root.Write("proc/self/comm", "test\n");                             // not a pid
  ContainerNames names(root.Options());

  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kPodman), "web");
  EXPECT_EQ(names.lookups_done(), 1u);
  EXPECT_EQ(names.Lookup(kOther, ContainerRuntime::kPodman), "db");  // found by the same scan
  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kPodman), "web");
  EXPECT_EQ(names.lookups_done(), 1u);

  EXPECT_EQ(names.Lookup(kAbsent, ContainerRuntime::kPodman), std::nullopt);
  EXPECT_EQ(names.lookups_done(), 2u);
  EXPECT_EQ(names.Lookup(kAbsent, ContainerRuntime::kPodman), std::nullopt);  // remembered
  EXPECT_EQ(names.lookups_done(), 2u);
}

TEST(ContainerNames, ReadsDockersConfigWhereReadable) {
  FakeRoot root;
  root.Write("docker/containers/" + kId + "/config.v2.json",
             R"({"ID":")" + kId + R"(","Name":"/web","Driver":"overlay2"})");
  ContainerNames names(root.Options());
  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kDocker), "web");
  EXPECT_EQ(names.Lookup(kOther, ContainerRuntime::kDocker), std::nullopt);
  EXPECT_EQ(names.lookups_done(), 2u);
  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kDocker), "web");
  EXPECT_EQ(names.lookups_done(), 2u);
}

TEST(ContainerNames, RuntimesWithoutNamesCostNothing) {
  FakeRoot root;
  root.AddProcess(100, "conmon", PodmanConmon(kId, "web"));
  ContainerNames names(root.Options());
  for (ContainerRuntime runtime :
       {ContainerRuntime::kNone, ContainerRuntime::kContainerd, ContainerRuntime::kCrio,
        ContainerRuntime::kCri, ContainerRuntime::kUnknown}) {
    EXPECT_EQ(names.Lookup(kId, runtime), std::nullopt);
  }
  EXPECT_EQ(names.Lookup("web", ContainerRuntime::kPodman), std::nullopt);  // not an id
  EXPECT_EQ(names.Lookup(kId.substr(0, 12), ContainerRuntime::kPodman), std::nullopt);
  EXPECT_EQ(names.lookups_done(), 0u);
}

TEST(ContainerNames, ForgetsEverythingWhenFull) {
  FakeRoot root;
  root.Write("docker/containers/" + kId + "/config.v2.json", R"({"Name":"/web"})");
  root.Write("docker/containers/" + kOther + "/config.v2.json", R"({"Name":"/db"})");
  ContainerNames::Options options = root.Options();
  options.max_entries = 1;
  ContainerNames names(options);
  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kDocker), "web");
  EXPECT_EQ(names.Lookup(kOther, ContainerRuntime::kDocker), "db");  // kId forgotten
  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kDocker), "web");
  EXPECT_EQ(names.lookups_done(), 3u);
}

TEST(ContainerNames, MissingRootsAreNoNames) {
  ContainerNames::Options options;
  options.proc_root = "/nonexistent/proc";
  options.docker_root = "/nonexistent/docker";
  ContainerNames names(options);
  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kPodman), std::nullopt);
  EXPECT_EQ(names.Lookup(kId, ContainerRuntime::kDocker), std::nullopt);
}

TEST(ContainerNames, ScansThisHostsProcWithoutTrouble) {
  // Whatever runs here, the real /proc scans and answers.
  ContainerNames names;
  EXPECT_EQ(names.Lookup(kAbsent, ContainerRuntime::kPodman), std::nullopt);
  EXPECT_EQ(names.lookups_done(), 1u);
}

}  // namespace
}  // namespace geoip
