#include "exporter/flags.h"

#include <stdio.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace geoip {
namespace {

// The names users type, in --help's order. A contract: renaming one needs a
// deprecated alias (README, "Deprecated names").
const std::vector<std::string> kFlagNames = {"web.listen-address",  "web.telemetry-path",
                                             "web.config.file",     "web.max-connections",
                                             "web.request-timeout", "web.show-full-addresses",
                                             "geoip.database",      "connections.source",
                                             "bpf.probe",           "bpf.ports",
                                             "bpf.drain-interval",  "bpf.max-addresses",
                                             "bpf.traffic",         "bpf.max-open-connections",
                                             "bpf.pin-path",        "metrics.max-services",
                                             "privileges.runas"};

// Old name -> new name, accepted with a warning until 0.3.0.
const std::vector<std::pair<std::string, std::string>> kDeprecated = {
    {"ports", "bpf.ports"},
    {"probe", "bpf.probe"},
    {"source", "connections.source"},
    {"runas", "privileges.runas"}};

// A file of this process in the temporary directory, removed at the end.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text)
      : path_(absl::StrCat(::testing::TempDir(), "flags_test_", getpid(), "_", name)) {
    FILE* file = fopen(path_.c_str(), "w");
    EXPECT_NE(file, nullptr) << path_;
    if (file != nullptr) {
      fputs(text.c_str(), file);
      fclose(file);
    }
  }
  ~TempFile() { remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ParseCommandLine, WithoutFlagsUsesTheDefaultsHelpShows) {
  absl::StatusOr<CommandLine> parsed = ParseCommandLine({"--bpf.pin-path="});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->action, CommandLineAction::kRun);
  EXPECT_TRUE(parsed->warnings.empty());
  const Config& config = parsed->config;
  EXPECT_EQ(config.listen_address, ":19100");
  EXPECT_EQ(config.telemetry_path, "/metrics");
  EXPECT_TRUE(config.web_config.basic_auth_users.empty());
  EXPECT_EQ(config.web_max_connections, 64);
  EXPECT_EQ(config.web_request_timeout, absl::Seconds(10));
  EXPECT_FALSE(config.show_full_addresses);
  EXPECT_EQ(config.database_path, "");
  EXPECT_EQ(config.source, ConnectionSource::kEbpf);
  EXPECT_EQ(config.probe_mode, ProbeMode::kAuto);
  EXPECT_TRUE(config.ports.all());
  EXPECT_EQ(config.drain_interval, absl::Seconds(1));
  EXPECT_EQ(config.max_addresses, 65536u);
  EXPECT_FALSE(config.traffic);
  EXPECT_EQ(config.max_open_connections, 65536u);
  EXPECT_EQ(config.max_services, 64u);
  EXPECT_EQ(config.pin_path, "");
  EXPECT_EQ(config.runas, "nobody");

  const std::string help = HelpText("ebpf_geoip_exporter");
  for (const char* shown :
       {"  --web.listen-address\n", "(default: :19100)", "(default: /metrics)", "(default: 64)",
        "(default: 10s)", "(default: false)", "(default: ebpf)", "(default: auto)", "(default: 1s)",
        "(default: 65536)", "(default: nobody)"}) {
    EXPECT_TRUE(absl::StrContains(help, shown)) << shown;
  }
}

TEST(ParseCommandLine, AutoPinPathSaysWhyItChose) {
  absl::StatusOr<CommandLine> parsed = ParseCommandLine({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->config.pin_path_why.empty());
}

TEST(ParseCommandLine, SetsEveryFlag) {
  TempFile web_config("web.yml",
                      "basic_auth_users:\n  alice: "
                      "$2b$04$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu\n");
  // Both forms: --name=value and --name value.
  absl::StatusOr<CommandLine> parsed = ParseCommandLine(
      {"--web.listen-address=127.0.0.1:9500", "--web.telemetry-path", "/m",
       "--web.config.file=" + web_config.path(), "--web.max-connections=16",
       "--web.request-timeout=100ms", "--web.show-full-addresses", "--geoip.database=/x.mmdb",
       "--connections.source=simulated", "--bpf.probe=tracepoint", "--bpf.ports=8081,9000-9100",
       "--bpf.drain-interval=1m", "--bpf.max-addresses=4194304", "--bpf.traffic",
       "--bpf.max-open-connections=1", "--metrics.max-services=10000",
       "--bpf.pin-path=/sys/fs/bpf/test//", "--privileges.runas="});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->warnings.empty());
  const Config& config = parsed->config;
  EXPECT_EQ(config.listen_address, "127.0.0.1:9500");
  EXPECT_EQ(config.telemetry_path, "/m");
  EXPECT_EQ(config.web_config.basic_auth_users.count("alice"), 1u);
  EXPECT_EQ(config.web_max_connections, 16);
  EXPECT_EQ(config.web_request_timeout, absl::Milliseconds(100));
  EXPECT_TRUE(config.show_full_addresses);
  EXPECT_EQ(config.database_path, "/x.mmdb");
  EXPECT_EQ(config.source, ConnectionSource::kSimulated);
  EXPECT_EQ(config.probe_mode, ProbeMode::kTracepoint);
  EXPECT_EQ(config.ports.ToString(), "8081,9000-9100");
  EXPECT_EQ(config.drain_interval, absl::Minutes(1));
  EXPECT_EQ(config.max_addresses, 4194304u);
  EXPECT_TRUE(config.traffic);
  EXPECT_EQ(config.max_open_connections, 1u);
  EXPECT_EQ(config.max_services, 10000u);
  EXPECT_EQ(config.pin_path, "/sys/fs/bpf/test");
  EXPECT_EQ(config.pin_path_why, "");
  EXPECT_EQ(config.runas, "");
}

TEST(ParseCommandLine, BoolFlagsTakeAnExplicitValueToo) {
  for (const auto& [arg, want] :
       std::vector<std::pair<std::string, bool>>{{"--web.show-full-addresses=true", true},
                                                 {"--web.show-full-addresses=false", false},
                                                 {"--web.show-full-addresses=0", false}}) {
    absl::StatusOr<CommandLine> parsed = ParseCommandLine({arg, "--bpf.pin-path="});
    ASSERT_TRUE(parsed.ok()) << arg << ": " << parsed.status();
    EXPECT_EQ(parsed->config.show_full_addresses, want) << arg;
  }
}

TEST(ParseCommandLine, TheLastValueOfARepeatedFlagWins) {
  absl::StatusOr<CommandLine> parsed =
      ParseCommandLine({"--bpf.drain-interval=5ms", "--bpf.drain-interval=2s", "--ports=22",
                        "--bpf.ports=80", "--bpf.pin-path="});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.drain_interval, absl::Seconds(2));
  EXPECT_EQ(parsed->config.ports.ToString(), "80");
}

TEST(ParseCommandLine, EachCallStartsFromTheDefaults) {
  ASSERT_TRUE(ParseCommandLine({"--bpf.max-addresses=4", "--bpf.pin-path="}).ok());
  absl::StatusOr<CommandLine> parsed = ParseCommandLine({"--bpf.pin-path="});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.max_addresses, 65536u);
}

struct BadCase {
  std::vector<std::string> args;
  std::string flag;  // the name the message must start with, as typed
  std::string hint;  // what the message must say to do
};

TEST(ParseCommandLine, RefusesEveryBadValueNamingTheFlagAndWhatToPass) {
  TempFile tls("tls.yml", "tls_server_config:\n  key_file: a.key\n");
  TempFile broken("broken.yml", "basic_auth_users:\n\talice: x\n");
  const std::vector<BadCase> cases = {
      {{"--web.telemetry-path=metrics"}, "web.telemetry-path", "e.g. /metrics"},
      {{"--web.telemetry-path=/"}, "web.telemetry-path", "not be / itself"},
      {{"--web.config.file=/nonexistent/web.yml"}, "web.config.file", "/nonexistent/web.yml"},
      {{"--web.config.file=" + tls.path()}, "web.config.file", "missing cert_file"},
      {{"--web.config.file=" + broken.path()}, "web.config.file", "line 2"},
      {{"--web.max-connections=15"}, "web.max-connections", "between 16 and 1024, not 15"},
      {{"--metrics.max-services=0"}, "metrics.max-services", "between 1 and 10000, not 0"},
      {{"--metrics.max-services=10001"}, "metrics.max-services", "between 1 and 10000"},
      {{"--web.max-connections=1025"}, "web.max-connections", "between 16 and 1024"},
      {{"--web.max-connections=many"},
       "web.max-connections",
       "bad value \"many\": expected a whole number"},
      {{"--web.request-timeout=99ms"}, "web.request-timeout", "between 100ms and 5m"},
      {{"--web.request-timeout=6m"}, "web.request-timeout", "between 100ms and 5m"},
      {{"--web.request-timeout=10"},
       "web.request-timeout",
       "bad value \"10\": expected a duration such as 500ms"},
      {{"--web.show-full-addresses=maybe"},
       "web.show-full-addresses",
       "bad value \"maybe\": expected true or false"},
      {{"--connections.source=kernel"}, "connections.source", "use ebpf or simulated"},
      {{"--bpf.probe=uprobe"}, "bpf.probe", "use auto"},
      {{"--bpf.ports=8081,70000"}, "bpf.ports", "a port 1-65535"},
      {{"--bpf.ports=9100-9000"}, "bpf.ports", "greater than its end"},
      {{"--bpf.drain-interval=5ms"}, "bpf.drain-interval", "between 10ms and 1m"},
      {{"--bpf.drain-interval=61s"}, "bpf.drain-interval", "between 10ms and 1m"},
      {{"--bpf.drain-interval=x"}, "bpf.drain-interval", "bad value \"x\": expected a duration"},
      {{"--bpf.max-addresses=0"}, "bpf.max-addresses", "between 1 and 4194304"},
      {{"--bpf.max-addresses=4194305"}, "bpf.max-addresses", "between 1 and 4194304"},
      {{"--bpf.max-addresses=-1"}, "bpf.max-addresses", "expected a whole number"},
      {{"--bpf.pin-path=ebpf_geoip"}, "bpf.pin-path", "absolute path, e.g. /sys/fs/bpf/"},
      // Deprecated names are named as typed.
      {{"--ports=70000"}, "ports", "a port 1-65535"},
      {{"--probe=uprobe"}, "probe", "use auto"},
      {{"--source=kernel"}, "source", "use ebpf or simulated"},
      // The command line itself.
      {{"--bpf.ports"}, "bpf.ports", "needs a value, e.g. --bpf.ports=VALUE"},
      {{"--bpf.probe"}, "bpf.probe", "needs a value, e.g. --bpf.probe=auto"},
  };
  for (const BadCase& c : cases) {
    const std::string args = absl::StrJoin(c.args, " ");
    absl::StatusOr<CommandLine> parsed = ParseCommandLine(c.args);
    ASSERT_FALSE(parsed.ok()) << args;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << args;
    const std::string message(parsed.status().message());
    EXPECT_TRUE(absl::StartsWith(message, "--" + c.flag + ": ")) << args << " -> " << message;
    EXPECT_TRUE(absl::StrContains(message, c.hint)) << args << " -> " << message;
    // One line, as main prints it.
    EXPECT_FALSE(absl::StrContains(message, "\n")) << args << " -> " << message;
  }
}

TEST(ParseCommandLine, RefusesWhatIsNoFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--no-such-flag=1"}, "unknown flag --no-such-flag; see --help"},
      {{"--bpf_drain_interval=1s"}, "unknown flag --bpf_drain_interval; see --help"},
      {{"8081"}, "unexpected argument \"8081\": flags look like --name=value; see --help"},
      {{"-bpf.ports=80"}, "unexpected argument \"-bpf.ports=80\""},
  };
  for (const auto& [args, want] : cases) {
    absl::StatusOr<CommandLine> parsed = ParseCommandLine(args);
    ASSERT_FALSE(parsed.ok()) << args[0];
    EXPECT_TRUE(absl::StartsWith(parsed.status().message(), want)) << parsed.status();
  }
}

TEST(ParseCommandLine, HelpAndVersionStopAtTheirPlace) {
  for (const char* help : {"--help", "-h", "-help"}) {
    absl::StatusOr<CommandLine> parsed = ParseCommandLine({help, "--no-such-flag"});
    ASSERT_TRUE(parsed.ok()) << help << ": " << parsed.status();
    EXPECT_EQ(parsed->action, CommandLineAction::kHelp) << help;
  }
  absl::StatusOr<CommandLine> parsed = ParseCommandLine({"--bpf.ports=80", "--version"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->action, CommandLineAction::kVersion);
  // What comes before them is parsed first.
  EXPECT_FALSE(ParseCommandLine({"--no-such-flag", "--help"}).ok());
}

// Reads the field a deprecated flag and its new name both set.
std::string FieldOf(const std::string& flag, const Config& config) {
  if (flag == "bpf.ports") return config.ports.ToString();
  if (flag == "bpf.probe") return std::string(ProbeModeName(config.probe_mode));
  if (flag == "connections.source") {
    return config.source == ConnectionSource::kSimulated ? "simulated" : "ebpf";
  }
  if (flag == "privileges.runas") return config.runas;
  return "?";
}

TEST(ParseCommandLine, DeprecatedNamesStillWorkAndWarnOnce) {
  const std::map<std::string, std::string> values = {{"ports", "8081-8083"},
                                                     {"probe", "tracepoint"},
                                                     {"source", "simulated"},
                                                     {"runas", "daemon"}};
  for (const auto& [old_name, new_name] : kDeprecated) {
    SCOPED_TRACE(old_name);
    const std::string value = values.at(old_name);
    // Given twice, in both forms: one warning.
    absl::StatusOr<CommandLine> old_parsed = ParseCommandLine(
        {"--" + old_name + "=" + value, "--" + old_name, value, "--bpf.pin-path="});
    ASSERT_TRUE(old_parsed.ok()) << old_parsed.status();
    absl::StatusOr<CommandLine> new_parsed =
        ParseCommandLine({"--" + new_name + "=" + value, "--bpf.pin-path="});
    ASSERT_TRUE(new_parsed.ok()) << new_parsed.status();
    EXPECT_EQ(FieldOf(new_name, old_parsed->config), value);
    EXPECT_EQ(FieldOf(new_name, new_parsed->config), value);
    EXPECT_TRUE(new_parsed->warnings.empty());
    ASSERT_EQ(old_parsed->warnings.size(), 1u);
    EXPECT_EQ(old_parsed->warnings[0], absl::StrCat("--", old_name,
                                                    " is deprecated and will be removed in "
                                                    "0.3.0; use --",
                                                    new_name));
  }
}

TEST(ParseCommandLine, DeprecatedProbeValueStillWorksAndWarnsOnce) {
  // kprobe named a mode that attaches a kretprobe.
  absl::StatusOr<CommandLine> old_value =
      ParseCommandLine({"--bpf.probe=kprobe", "--probe", "kprobe", "--bpf.pin-path="});
  ASSERT_TRUE(old_value.ok()) << old_value.status();
  EXPECT_EQ(old_value->config.probe_mode, ProbeMode::kKretprobe);
  EXPECT_EQ(old_value->warnings,
            (std::vector<std::string>{
                "--bpf.probe=kprobe is deprecated and will be removed in 0.3.0; "
                "use --bpf.probe=kretprobe",
                "--probe is deprecated and will be removed in 0.3.0; use --bpf.probe",
                "--probe=kprobe is deprecated and will be removed in 0.3.0; "
                "use --bpf.probe=kretprobe"}));
  absl::StatusOr<CommandLine> new_value =
      ParseCommandLine({"--bpf.probe=kretprobe", "--bpf.pin-path="});
  ASSERT_TRUE(new_value.ok()) << new_value.status();
  EXPECT_EQ(new_value->config.probe_mode, ProbeMode::kKretprobe);
  EXPECT_TRUE(new_value->warnings.empty());
  EXPECT_TRUE(
      absl::StrContains(HelpText("x"), "\n  --bpf.probe=kprobe  use --bpf.probe=kretprobe\n"));
}

TEST(HelpText, ListsTheFlagNamesUsersTypeAndMarksTheOldOnesDeprecated) {
  const std::string help = HelpText("ebpf_geoip_exporter");
  EXPECT_TRUE(absl::StartsWith(help, "usage: ebpf_geoip_exporter [flags]\n")) << help;
  size_t last = 0;
  for (const std::string& name : kFlagNames) {
    const size_t at = help.find("\n  --" + name + "\n      ");
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GT(at, last) << name << " is out of order";
    last = at;
  }
  for (const char* rest : {"  --version\n", "  --help\n", "Examples:\n"}) {
    EXPECT_TRUE(absl::StrContains(help, rest)) << rest;
  }
  // Abseil's internal names never show.
  EXPECT_FALSE(absl::StrContains(help, "web_listen_address"));
  EXPECT_FALSE(absl::StrContains(help, "bpf_drain_interval"));
  // Old names appear only in the deprecated list, which says how long they last.
  const size_t deprecated = help.find("Deprecated names, accepted with a warning until 0.3.0:\n");
  ASSERT_NE(deprecated, std::string::npos) << help;
  for (const auto& [old_name, new_name] : kDeprecated) {
    const std::string line = absl::StrCat("\n  --", old_name, std::string(6 - old_name.size(), ' '),
                                          "  use --", new_name, "\n");
    EXPECT_GT(help.find(line), deprecated) << line;
    EXPECT_EQ(help.find("--" + old_name + "\n"), std::string::npos) << old_name;
    EXPECT_EQ(help.find("--" + old_name + "="), std::string::npos) << old_name;
  }
  // The probe's help follows the order auto really tries.
  std::vector<std::string> order;
  for (ProbeMode mode : kAutoOrder) order.emplace_back(ProbeModeName(mode));
  EXPECT_TRUE(absl::StrContains(help, "auto (tries " + absl::StrJoin(order, ", "))) << help;
}

}  // namespace
}  // namespace geoip
