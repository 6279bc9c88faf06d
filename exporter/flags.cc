#include "exporter/flags.h"

#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "exporter/util/auto_pin.h"

ABSL_FLAG(std::string, web_listen_address, ":19100",
          "Address to serve metrics and the live map on (HOST:PORT or :PORT).");
ABSL_FLAG(std::string, web_telemetry_path, "/metrics", "Path under which to expose metrics.");
ABSL_FLAG(std::string, geoip_database, "",
          "GeoIP country database (.mmdb). Default: the first that exists of "
          "/usr/share/GeoIP/GeoLite2-Country.mmdb, /var/lib/GeoIP/GeoLite2-Country.mmdb "
          "and the bundled data/geo-whois-asn-country.mmdb.");
ABSL_FLAG(std::string, ports, "",
          "Local ports to count, e.g. 8081,8082,9000-9100. Default: every port.");
ABSL_FLAG(std::string, probe, "auto",
          "Kernel hook: auto (tries fexit, kprobe, tracepoint in that order), fexit, "
          "kprobe or tracepoint.");
ABSL_FLAG(absl::Duration, bpf_drain_interval, absl::Seconds(1),
          "How often to move the kernel's counts into the exporter.");
ABSL_FLAG(std::string, bpf_pin_path, "auto",
          "bpffs directory where the probe and its maps stay pinned, so connections "
          "accepted while the exporter is stopped or restarting are still counted. "
          "auto: /sys/fs/bpf/ebpf_geoip when the exporter runs as a service (started by "
          "systemd, or PID 1 as a container's entrypoint) and bpffs is mounted there; "
          "no pinning when started from a shell, so Ctrl-C leaves nothing running. "
          "Empty: no pinning (stopping the exporter detaches the probe).");
ABSL_FLAG(std::string, runas, "nobody",
          "When started as root: the user to switch to once the probe is attached, "
          "giving up every capability. Empty: keep running as root.");
ABSL_FLAG(uint32_t, bpf_max_addresses, 65536,
          "Distinct (address, port) pairs the kernel tracks per drain interval; "
          "connections past it are counted as country=\"overflow\".");
ABSL_FLAG(bool, web_show_full_addresses, false,
          "Show whole client addresses in the live map's feed of recent connections, "
          "instead of their /24 (IPv4) or /48 (IPv6) prefix.");
ABSL_FLAG(std::string, source, "ebpf",
          "Where connections come from: ebpf (the kernel probe; needs root) or simulated "
          "(no probe, no root: loopback clients POST addresses to /api/v1/connections).");
ABSL_FLAG(std::string, web_config_file, "",
          "Web config file in the Prometheus exporter-toolkit format: basic_auth_users "
          "(bcrypt hashes) and http_server_config.headers. tls_server_config is refused: "
          "terminate TLS in a proxy (deploy/tls/).");
ABSL_FLAG(int, web_max_connections, 64,
          "HTTP connections served at once (one thread each). Live-map streams may take "
          "half of them. A client that stalls holds one for up to --web.request-timeout.");
ABSL_FLAG(absl::Duration, web_request_timeout, absl::Seconds(10),
          "Time a client has to send its request headers; slower connections are closed.");

namespace geoip {
namespace {

// A flag as users type it, and the abseil flag that stores it.
struct FlagName {
  const char* user;
  const char* absl;
};

constexpr FlagName kFlags[] = {
    {"web.listen-address", "web_listen_address"},
    {"web.telemetry-path", "web_telemetry_path"},
    {"geoip.database", "geoip_database"},
    {"ports", "ports"},
    {"probe", "probe"},
    {"bpf.drain-interval", "bpf_drain_interval"},
    {"bpf.max-addresses", "bpf_max_addresses"},
    {"bpf.pin-path", "bpf_pin_path"},
    {"runas", "runas"},
    {"web.show-full-addresses", "web_show_full_addresses"},
    {"source", "source"},
    {"web.config.file", "web_config_file"},
    {"web.max-connections", "web_max_connections"},
    {"web.request-timeout", "web_request_timeout"},
};

const FlagName* FindFlag(absl::string_view user_name) {
  for (const FlagName& flag : kFlags) {
    if (user_name == flag.user) return &flag;
  }
  return nullptr;
}

absl::Status BadFlag(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", why));
}

absl::Status Validate(Config* config) {
  config->listen_address = absl::GetFlag(FLAGS_web_listen_address);
  config->telemetry_path = absl::GetFlag(FLAGS_web_telemetry_path);
  if (!absl::StartsWith(config->telemetry_path, "/") || config->telemetry_path == "/") {
    return BadFlag("web.telemetry-path", "must start with / and not be / itself, e.g. /metrics");
  }
  config->database_path = absl::GetFlag(FLAGS_geoip_database);
  absl::StatusOr<PortSet> ports = ParsePortList(absl::GetFlag(FLAGS_ports));
  if (!ports.ok()) return BadFlag("ports", ports.status().message());
  config->ports = *ports;
  absl::StatusOr<ProbeMode> mode = ParseProbeMode(absl::GetFlag(FLAGS_probe));
  if (!mode.ok()) return BadFlag("probe", mode.status().message());
  config->probe_mode = *mode;
  config->drain_interval = absl::GetFlag(FLAGS_bpf_drain_interval);
  if (config->drain_interval < absl::Milliseconds(10) ||
      config->drain_interval > absl::Minutes(1)) {
    return BadFlag("bpf.drain-interval", "must be between 10ms and 1m");
  }
  config->max_addresses = absl::GetFlag(FLAGS_bpf_max_addresses);
  if (config->max_addresses < 1 || config->max_addresses > (1u << 22)) {
    return BadFlag("bpf.max-addresses", "must be between 1 and 4194304");
  }
  config->pin_path = absl::GetFlag(FLAGS_bpf_pin_path);
  if (config->pin_path == "auto") {
    AutoPinPath choice = ChooseAutoPinPath(ReadLaunchFacts(), DefaultPinPath());
    config->pin_path = std::move(choice.path);
    config->pin_path_why = std::move(choice.why);
  } else if (!config->pin_path.empty() && !absl::StartsWith(config->pin_path, "/")) {
    return BadFlag("bpf.pin-path", "must be an absolute path, e.g. /sys/fs/bpf/ebpf_geoip");
  }
  while (config->pin_path.size() > 1 && absl::EndsWith(config->pin_path, "/")) {
    config->pin_path.pop_back();
  }
  config->runas = absl::GetFlag(FLAGS_runas);
  config->show_full_addresses = absl::GetFlag(FLAGS_web_show_full_addresses);
  const std::string source = absl::GetFlag(FLAGS_source);
  if (source == "ebpf") {
    config->source = ConnectionSource::kEbpf;
  } else if (source == "simulated") {
    config->source = ConnectionSource::kSimulated;
  } else {
    return BadFlag("source", absl::StrCat("\"", source, "\" is not ebpf or simulated"));
  }
  // Read now, while the exporter may still read files only root can.
  if (const std::string path = absl::GetFlag(FLAGS_web_config_file); !path.empty()) {
    absl::StatusOr<WebConfig> web_config = LoadWebConfig(path);
    if (!web_config.ok()) return BadFlag("web.config.file", web_config.status().message());
    config->web_config = *std::move(web_config);
  }
  config->web_max_connections = absl::GetFlag(FLAGS_web_max_connections);
  if (config->web_max_connections < 16 || config->web_max_connections > 1024) {
    // Live-map streams hold up to 8 threads; scrapes need the rest.
    return BadFlag("web.max-connections", "must be between 16 and 1024");
  }
  config->web_request_timeout = absl::GetFlag(FLAGS_web_request_timeout);
  if (config->web_request_timeout < absl::Milliseconds(100) ||
      config->web_request_timeout > absl::Minutes(5)) {
    return BadFlag("web.request-timeout", "must be between 100ms and 5m");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CommandLineAction> ParseCommandLine(int argc, char** argv, Config* config) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "-help") return CommandLineAction::kHelp;
    if (arg == "--version") return CommandLineAction::kVersion;
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument \"", arg, "\": flags look like --name=value; see --help"));
    }
    absl::string_view name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const FlagName* flag = FindFlag(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, "; see --help for the flags there are"));
    }
    absl::CommandLineFlag* storage = absl::FindCommandLineFlag(flag->absl);
    if (!has_value) {
      if (storage->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return BadFlag(name, "needs a value");
      }
    }
    std::string error;
    if (!storage->ParseFrom(value, &error)) {
      return BadFlag(name, absl::StrCat("bad value \"", value, "\""));
    }
  }
  if (absl::Status valid = Validate(config); !valid.ok()) return valid;
  return CommandLineAction::kRun;
}

std::string HelpText(const std::string& program) {
  std::string text = absl::StrFormat(
      "usage: %s [flags]\n\n"
      "Counts the TCP connections that services on this host accept, by the\n"
      "country of the client and the local port, with an eBPF probe on the\n"
      "kernel's accept path, and serves them as Prometheus metrics.\n\nFlags:\n",
      program);
  for (const FlagName& flag : kFlags) {
    const absl::CommandLineFlag* storage = absl::FindCommandLineFlag(flag.absl);
    absl::StrAppendFormat(&text, "  --%s\n      %s\n", flag.user, storage->Help());
    if (!storage->DefaultValue().empty()) {
      absl::StrAppendFormat(&text, "      (default: %s)\n", storage->DefaultValue());
    }
  }
  absl::StrAppend(&text,
                  "  --version\n      Print the version and exit.\n"
                  "  --help\n      Print this text and exit.\n\n"
                  "Examples:\n"
                  "  sudo ", program, "\n"
                  "      Count every port; metrics on http://HOST:19100/metrics.\n"
                  "  sudo ", program, " --ports=8081-8083 --web.listen-address=127.0.0.1:9500\n"
                  "      Count three ports; serve on loopback only.\n"
                  "  sudo ", program, " --geoip.database=/var/lib/GeoIP/GeoLite2-Country.mmdb\n"
                  "      Use a MaxMind database instead of the bundled one.\n"
                  "  sudo ", program, " --bpf.pin-path=/sys/fs/bpf/ebpf_geoip\n"
                  "      Keep the probe counting while the exporter is stopped, even when\n"
                  "      started from a shell; `sudo rm -r /sys/fs/bpf/ebpf_geoip` detaches it.\n");
  return text;
}

}  // namespace geoip
