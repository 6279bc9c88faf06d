#include "exporter/listeners/service_name.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "exporter/metrics/collector.h"
#include "prometheus/metric_family.h"

namespace geoip {
namespace {

const std::string kId = "bf70c8a7a67338820bfbf24e0518c309605253323a18fa142ba8b579b4a0d0c0";
const std::string kPodUid = "28d0b944-ebb3-440c-b4f1-789cd8be6d0f";
const std::string kReplacement = "\xef\xbf\xbd";  // U+FFFD

TEST(ServiceName, SystemdServiceWithoutItsSuffix) {
  // The case: a listener in demo-hello.service is service="demo-hello",
  // as `systemctl status demo-hello` names it; the unit label keeps the
  // suffix, as systemd and node_exporter's systemd collector write it.
  const ListenerIdentity identity =
      NameListener("demo-hello", ParseProcCgroup("0::/system.slice/demo-hello.service\n"), {});
  EXPECT_EQ(identity.service, "demo-hello");
  EXPECT_EQ(identity.unit, "demo-hello.service");
  EXPECT_EQ(identity.process, "demo-hello");
  EXPECT_EQ(identity.container_id, "");
  EXPECT_EQ(identity.runtime, "");
  EXPECT_EQ(identity.pod_uid, "");

  EXPECT_EQ(NameListener("agetty",
                         ParseCgroupPath("/system.slice/system-getty.slice/getty@tty1.service"), {})
                .service,
            "getty@tty1");
  // The unit, not the process: python3 -m http.server in web.service is "web".
  EXPECT_EQ(NameListener("python3", ParseCgroupPath("/system.slice/web.service"), {}).service,
            "web");
}

TEST(ServiceName, ScopesAreNotServices) {
  for (const std::string& path :
       std::vector<std::string>{"/user.slice/user-1000.slice/session-3.scope", "/init.scope", "/",
                                "/machine.slice/libpod-conmon-" + kId + ".scope"}) {
    SCOPED_TRACE(path);
    const ListenerIdentity identity = NameListener("python3", ParseCgroupPath(path), {});
    EXPECT_EQ(identity.service, "python3");
    EXPECT_EQ(identity.unit, "");
  }
}

TEST(ServiceName, ContainersByNameElseShortId) {
  const CgroupFacts docker = ParseCgroupPath("/system.slice/docker-" + kId + ".scope");
  const ListenerIdentity named = NameListener("nginx", docker, "web");
  EXPECT_EQ(named.service, "web");
  EXPECT_EQ(named.process, "nginx");
  EXPECT_EQ(named.container_id, kId);  // all 64 digits, to join on
  EXPECT_EQ(named.runtime, "docker");
  EXPECT_EQ(named.unit, "");

  EXPECT_EQ(NameListener("nginx", docker, std::nullopt).service, kId.substr(0, 12));
  EXPECT_EQ(NameListener("nginx", docker, "").service, kId.substr(0, 12));

  // A container wins over the unit it runs in (Quadlet).
  const CgroupFacts quadlet = ParseCgroupPath("/system.slice/web.service/libpod-payload-" + kId);
  const ListenerIdentity in_unit = NameListener("nginx", quadlet, "systemd-web");
  EXPECT_EQ(in_unit.service, "systemd-web");
  EXPECT_EQ(in_unit.unit, "web.service");
  EXPECT_EQ(in_unit.runtime, "podman");
}

TEST(ServiceName, KubernetesPodsByShortIdWithTheirUid) {
  const CgroupFacts facts = ParseCgroupPath(
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
      "28d0b944_ebb3_440c_b4f1_789cd8be6d0f.slice/cri-containerd-" +
      kId + ".scope");
  const ListenerIdentity identity = NameListener("coredns", facts, std::nullopt);
  EXPECT_EQ(identity.service, kId.substr(0, 12));
  EXPECT_EQ(identity.pod_uid, kPodUid);
  EXPECT_EQ(identity.runtime, "containerd");
}

TEST(ServiceName, IgnoresANameWithoutAContainer) {
  EXPECT_EQ(NameListener("sshd", ParseCgroupPath("/system.slice/ssh.service"), "web").service,
            "ssh");
  EXPECT_EQ(NameListener("sshd", ParseCgroupPath("/"), "web").service, "sshd");
}

TEST(ServiceName, ProcessNameFromTheKernelsCommField) {
  // comm is a 16-byte array, NUL-padded.
  const std::string comm("nginx\0\0\0\0\0\0\0\0\0\0\0", 16);
  EXPECT_EQ(NameListener(comm, CgroupFacts(), {}).process, "nginx");
  EXPECT_EQ(NameListener(comm, CgroupFacts(), {}).service, "nginx");
  EXPECT_EQ(NameListener(std::string(16, '\0'), CgroupFacts(), {}).service, "unknown");
  EXPECT_EQ(NameListener("", CgroupFacts(), {}).service, "unknown");
  EXPECT_EQ(NameListener("we\"ird\nname", CgroupFacts(), {}).service,
            "we\"ird" + kReplacement + "name");
}

TEST(LabelSafe, KeepsPrintableUtf8AsItIs) {
  for (const std::string text :
       {"nginx", "my service", "say \"hi\"", "back\\slash", "caf\xc3\xa9", "\xe2\x82\xac 5",
        "\xf0\x9f\x98\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(LabelSafe(text), text);
  }
}

TEST(LabelSafe, ReplacesWhatIsNotUtf8OrIsAControlCharacter) {
  const std::string r = kReplacement;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "unknown"},
      {"\xff", r},
      {"a\xfe\xff"
       "b",
       "a" + r + r + "b"},
      {"a\xe2\x82", "a" + r + r},           // cut-off sequence
      {"\xc0\xaf", r + r},                  // overlong '/'
      {"\xe0\x80\xaf", r + r + r},          // overlong, three bytes
      {"\xed\xa0\x80", r + r + r},          // a surrogate
      {"\xf4\x90\x80\x80", r + r + r + r},  // above U+10FFFF
      {"\xf8\x88\x80\x80\x80", r + r + r + r + r},
      {"\x80x", r + "x"},  // a lone continuation byte
      {std::string("a\0b", 3), "a" + r + "b"},
      {"line\nbreak", "line" + r + "break"},
      {"tab\there", "tab" + r + "here"},
      {"\x1b[31mred", r + "[31mred"},
      {"del\x7f", "del" + r},
      {"c1\xc2\x85", "c1" + r},  // U+0085, NEXT LINE
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(LabelSafe(text), want);
  }
}

TEST(LabelSafe, CutsLongNamesOnACharacterBoundary) {
  EXPECT_EQ(LabelSafe(std::string(200, 'a')), std::string(64, 'a'));
  EXPECT_EQ(LabelSafe(std::string(64, 'a')), std::string(64, 'a'));
  std::string e_acute;
  for (int i = 0; i < 100; ++i) e_acute += "\xc3\xa9";  // 200 bytes of two-byte characters
  EXPECT_EQ(LabelSafe(e_acute), e_acute.substr(0, 64));
  // 63 bytes, then a four-byte character that does not fit.
  EXPECT_EQ(LabelSafe(std::string(63, 'a') + "\xf0\x9f\x98\x80"), std::string(63, 'a'));
  std::string euro;
  for (int i = 0; i < 30; ++i) euro += "\xe2\x82\xac";
  EXPECT_EQ(LabelSafe(euro).size(), 63u);  // 21 characters
  // Replacements count: 22 bad bytes make 21 U+FFFD (63 bytes).
  EXPECT_EQ(LabelSafe(std::string(22, '\xff')).size(), 63u);
  // A 200-byte hostile mix.
  std::string hostile;
  while (hostile.size() < 200) hostile += "\"\\\n\xff \xe2\x82";
  const std::string safe = LabelSafe(hostile);
  EXPECT_LE(safe.size(), kMaxLabelBytes);
  EXPECT_EQ(safe.find('\n'), std::string::npos);
  EXPECT_EQ(LabelSafe(safe), safe);  // already safe
}

TEST(LabelSafe, WhatItReturnsTheMetricsWriterEscapes) {
  // The exposition writer quotes '"' and '\' and would turn a newline into
  // "\n"; LabelSafe leaves no newline to quote. A hostile name makes one
  // well-formed line.
  prometheus::MetricFamily family;
  family.name = "ebpf_geoip_listener_info";
  family.help = "Listeners.";
  family.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric metric;
  metric.label.push_back({"service", LabelSafe("a \"quoted\" \\ name\nwith a newline\xff")});
  metric.gauge.value = 1;
  family.metric.push_back(metric);
  const std::string text = SerializeText({family});
  EXPECT_TRUE(
      absl::StrContains(text, "ebpf_geoip_listener_info{service=\"a \\\"quoted\\\" \\\\ name" +
                                  kReplacement + "with a newline" + kReplacement + "\"} 1\n"))
      << text;
}

}  // namespace
}  // namespace geoip
