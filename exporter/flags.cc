#include "exporter/flags.h"

#include <string.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/flags/marshalling.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "exporter/util/auto_pin.h"

namespace geoip {
namespace {

// The release that stops accepting the deprecated flag names (README,
// "Deprecated names").
constexpr char kDeprecatedNamesRemovedIn[] = "0.3.0";

// One flag, declared here and nowhere else. `set` turns a text (the
// default, or what the user passed) into its part of Config, or says what is
// wrong and what to pass instead; the caller puts the flag's name in front,
// as the user typed it.
struct Flag {
  const char* name;           // as users type it, without "--"
  const char* default_value;  // set like a user's value; --help shows it unless empty
  std::string help;
  absl::Status (*set)(absl::string_view text, Config* config);
  bool is_bool = false;            // --name alone means --name=true
  const char* old_name = nullptr;  // deprecated; accepted with a warning until removed
  // A deprecated value and the one that replaces it, accepted with a warning
  // until removed.
  const char* old_value = nullptr;
  const char* new_value = nullptr;
};

// What abseil's parser accepts for each type. Abseil's own reason is kept
// when it gives one; for these types abseil 20220623 gives none (and its
// CommandLineFlag::ParseFrom adds only the internal flag name), so this is
// what the user reads.
absl::string_view Accepts(const absl::Duration*) { return "a duration such as 500ms, 10s or 1m"; }
absl::string_view Accepts(const uint32_t*) { return "a whole number"; }
absl::string_view Accepts(const size_t*) { return "a whole number"; }
absl::string_view Accepts(const int*) { return "a whole number"; }
absl::string_view Accepts(const bool*) { return "true or false"; }

template <typename T>
absl::StatusOr<T> ParseAs(absl::string_view text) {
  T value{};
  std::string reason;
  if (absl::ParseFlag<T>(text, &value, &reason)) return value;
  if (!reason.empty()) absl::StrAppend(&reason, "; ");
  return absl::InvalidArgumentError(
      absl::StrCat("bad value \"", text, "\": ", reason, "expected ", Accepts(&value)));
}

// Parses `text` into `*out` if it lies in [low, high].
template <typename T>
absl::Status SetInRange(absl::string_view text, T low, T high, T* out) {
  absl::StatusOr<T> value = ParseAs<T>(text);
  if (!value.ok()) return value.status();
  if (*value < low || *value > high) {
    return absl::InvalidArgumentError(absl::StrCat("must be between ", absl::UnparseFlag<T>(low),
                                                   " and ", absl::UnparseFlag<T>(high), ", not ",
                                                   text));
  }
  *out = *value;
  return absl::OkStatus();
}

absl::Status SetTelemetryPath(absl::string_view text, Config* config) {
  if (!absl::StartsWith(text, "/") || text == "/") {
    return absl::InvalidArgumentError("must start with / and not be / itself, e.g. /metrics");
  }
  config->telemetry_path = std::string(text);
  return absl::OkStatus();
}

absl::Status SetWebConfigFile(absl::string_view text, Config* config) {
  // Read now, while the exporter may still read files only root can.
  if (text.empty()) return absl::OkStatus();
  absl::StatusOr<WebConfig> web_config = LoadWebConfig(std::string(text));
  if (!web_config.ok()) return web_config.status();
  config->web_config = *std::move(web_config);
  return absl::OkStatus();
}

absl::Status SetSource(absl::string_view text, Config* config) {
  if (text == "ebpf") {
    config->source = ConnectionSource::kEbpf;
  } else if (text == "simulated") {
    config->source = ConnectionSource::kSimulated;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown source \"", text, "\": use ebpf or simulated"));
  }
  return absl::OkStatus();
}

absl::Status SetProbeMode(absl::string_view text, Config* config) {
  absl::StatusOr<ProbeMode> mode = ParseProbeMode(text);
  if (!mode.ok()) return mode.status();
  config->probe_mode = *mode;
  return absl::OkStatus();
}

absl::Status SetPorts(absl::string_view text, Config* config) {
  absl::StatusOr<PortSet> ports = ParsePortList(std::string_view(text.data(), text.size()));
  if (!ports.ok()) return ports.status();
  config->ports = *ports;
  return absl::OkStatus();
}

absl::Status SetWordsFrom(absl::string_view text, Config* config) {
  config->words_from.clear();
  if (text.empty()) return absl::OkStatus();
  for (absl::string_view block : absl::StrSplit(text, ',')) {
    absl::StatusOr<IpNetwork> network =
        ParseIpNetwork(std::string_view(block.data(), block.size()));
    if (!network.ok()) return network.status();
    config->words_from.push_back(*network);
  }
  return absl::OkStatus();
}

absl::Status SetPinPath(absl::string_view text, Config* config) {
  std::string path(text);
  config->pin_path_why.clear();
  if (path == "auto") {
    AutoPinPath choice = ChooseAutoPinPath(ReadLaunchFacts(), DefaultPinPath());
    path = std::move(choice.path);
    config->pin_path_why = std::move(choice.why);
  } else if (!path.empty() && !absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError("must be an absolute path, e.g. /sys/fs/bpf/ebpf_geoip");
  }
  while (path.size() > 1 && absl::EndsWith(path, "/")) path.pop_back();
  config->pin_path = std::move(path);
  return absl::OkStatus();
}

std::string ProbeHelp() {
  std::vector<std::string> order;
  for (ProbeMode mode : kAutoOrder) order.emplace_back(ProbeModeName(mode));
  return absl::StrCat("Kernel hook: auto (tries ", absl::StrJoin(order, ", "),
                      " in that order and uses the first that attaches), or one of them.");
}

// Every flag, in --help's order.
const std::vector<Flag>& Flags() {
  static const std::vector<Flag>* const flags = new std::vector<Flag>{
      {"web.listen-address", ":19100",
       "Address to serve metrics and the live map on: :PORT (every interface, IPv4 and "
       "IPv6 where civetweb has IPv6), 0.0.0.0:PORT (IPv4 only), 127.0.0.1:PORT, [::1]:PORT "
       "or [::]:PORT.",
       [](absl::string_view text, Config* config) {
         config->listen_address = std::string(text);
         return absl::OkStatus();
       }},
      {"web.telemetry-path", "/metrics", "Path under which to expose metrics.", SetTelemetryPath},
      {"web.config.file", "",
       "Web config file in the Prometheus exporter-toolkit format: basic_auth_users "
       "(bcrypt hashes), http_server_config.headers, and tls_server_config (HTTPS, "
       "client certificates; certificate files re-read when they change).",
       SetWebConfigFile},
      {"web.max-connections", "64",
       // Live-map streams hold up to 8 threads; scrapes need the rest.
       "HTTP connections served at once (one thread each). Live-map streams may take "
       "half of them. A client that stalls holds one for up to --web.request-timeout.",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, 16, 1024, &config->web_max_connections);
       }},
      {"web.request-timeout", "10s",
       "Time a client has to send its request headers; slower connections are closed.",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, absl::Milliseconds(100), absl::Minutes(5),
                           &config->web_request_timeout);
       }},
      {"web.show-full-addresses", "false",
       "Show whole client addresses in the live map's feed of recent connections, "
       "instead of their /24 (IPv4) or /48 (IPv6) prefix.",
       [](absl::string_view text, Config* config) {
         absl::StatusOr<bool> show = ParseAs<bool>(text);
         if (!show.ok()) return show.status();
         config->show_full_addresses = *show;
         return absl::OkStatus();
       },
       /*is_bool=*/true},
      {"geoip.database", "",
       "GeoIP country database (.mmdb). Default: the first that exists of "
       "/usr/share/GeoIP/GeoLite2-Country.mmdb, /var/lib/GeoIP/GeoLite2-Country.mmdb "
       "and the bundled data/geo-whois-asn-country.mmdb.",
       [](absl::string_view text, Config* config) {
         config->database_path = std::string(text);
         return absl::OkStatus();
       }},
      {"geoip.asn-database", "",
       "ASN database (.mmdb) that names each client's network (autonomous system): MaxMind "
       "GeoLite2-ASN, DB-IP ASN lite, ipinfo, or the bundled data/ip-location-db-asn.mmdb. "
       "Default: the first that exists of /usr/share/GeoIP/GeoLite2-ASN.mmdb, "
       "/var/lib/GeoIP/GeoLite2-ASN.mmdb and the bundled one; none: no networks.",
       [](absl::string_view text, Config* config) {
         config->asn_database_path = std::string(text);
         return absl::OkStatus();
       }},
      {"connections.source", "ebpf",
       "Where connections come from: ebpf (the kernel probe; needs root) or simulated "
       "(no probe, no root: loopback clients POST addresses to /api/v1/connections).",
       SetSource, /*is_bool=*/false, /*old_name=*/"source"},
      {"bpf.probe", "auto", ProbeHelp(), SetProbeMode, /*is_bool=*/false, /*old_name=*/"probe",
       /*old_value=*/"kprobe", /*new_value=*/"kretprobe"},
      {"bpf.ports", "", "Local ports to count, e.g. 8081,8082,9000-9100. Default: every port.",
       SetPorts, /*is_bool=*/false, /*old_name=*/"ports"},
      {"bpf.drain-interval", "1s", "How often to move the kernel's counts into the exporter.",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, absl::Milliseconds(10), absl::Minutes(1), &config->drain_interval);
       }},
      {"bpf.max-addresses", "65536",
       "Distinct (address, port) pairs the kernel tracks per drain interval; "
       "connections past it are counted as country=\"overflow\".",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, uint32_t{1}, uint32_t{1} << 22, &config->max_addresses);
       }},
      {"bpf.traffic", "false",
       "Count the bytes and lifetimes of accepted connections (ebpf_geoip_received_bytes_total "
       "and the others; Linux 5.12+). The kernel keeps a slot per open connection, taken at "
       "the handshake and freed at the close: about 250 ns of kernel time per connection, "
       "which an accept storm on loopback measured at 0.97 to 0.99 of its speed without the "
       "exporter (docs/PERFORMANCE.md). Refused and incomplete connections are counted "
       "either way.",
       [](absl::string_view text, Config* config) {
         absl::StatusOr<bool> traffic = ParseAs<bool>(text);
         if (!traffic.ok()) return traffic.status();
         config->traffic = *traffic;
         return absl::OkStatus();
       },
       /*is_bool=*/true},
      {"bpf.max-open-connections", "65536",
       "Accepted connections open at once whose bytes and lifetimes the kernel follows: slots "
       "of 64 bytes of kernel memory, reserved at start, rounded up to a multiple of 16. Give "
       "it twice the connections open at once: a connection takes one of the 16 slots its "
       "socket's address points at, and one that finds them taken is counted, but not its "
       "bytes (ebpf_geoip_probe_untracked_connections_total says how many).",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, uint32_t{1}, uint32_t{1} << 22, &config->max_open_connections);
       }},
      {"bpf.pin-path", "auto",
       "bpffs directory where the probe and its maps stay pinned, so connections "
       "accepted while the exporter is stopped or restarting are still counted. "
       "auto: /sys/fs/bpf/ebpf_geoip when the exporter runs as a service (started by "
       "systemd, or PID 1 as a container's entrypoint) and bpffs is mounted there; "
       "no pinning when started from a shell, so Ctrl-C leaves nothing running. "
       "Empty: no pinning (stopping the exporter detaches the probe).",
       SetPinPath},
      {"metrics.max-services", "64",
       "Distinct values of the service label (the listener's container, systemd unit or "
       "process name); connections of services past it are counted under "
       "service=\"other\", in full.",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, size_t{1}, size_t{10000}, &config->max_services);
       }},
      {"metrics.max-asns", "200",
       "Distinct networks (ASes) with a label of their own in "
       "ebpf_geoip_accepted_connections_by_asn_total, first come first labelled; later ones "
       "are counted under asn=\"other\", in full. /api/v1/networks has them all. 0: every AS "
       "is \"other\".",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, size_t{0}, size_t{100000}, &config->max_asns);
       }},
      {"web.top-peers", "64",
       "Heaviest clients kept per port and service for /api/v1/peers and the live map "
       "(Space-Saving counters; exact while a port has had at most this many clients, "
       "docs/API.md gives the error bound). Never on /metrics. 0: off.",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, size_t{0}, size_t{4096}, &config->top_peers);
       }},
      {"web.words-from", "",
       "Address blocks allowed to POST words to /api/v1/words, the live map's word cloud, "
       "e.g. 127.0.0.0/8,::1/128. Empty: the word cloud is off (the endpoint answers 404).",
       SetWordsFrom},
      {"web.max-words", "100",
       "Distinct words the word cloud keeps; a new word past it replaces the least posted.",
       [](absl::string_view text, Config* config) {
         return SetInRange(text, size_t{1}, size_t{10000}, &config->max_words);
       }},
      {"privileges.runas", "nobody",
       "When started as root: the user to switch to once the probe is attached, "
       "giving up every capability. Empty: keep running as root.",
       [](absl::string_view text, Config* config) {
         config->runas = std::string(text);
         return absl::OkStatus();
       },
       /*is_bool=*/false, /*old_name=*/"runas"},
  };
  return *flags;
}

absl::Status BadFlag(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", why));
}

// Adds `warning` unless it is there already: each is said once.
void AddWarning(std::string warning, std::vector<std::string>* warnings) {
  if (std::find(warnings->begin(), warnings->end(), warning) == warnings->end()) {
    warnings->push_back(std::move(warning));
  }
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args) {
  const std::vector<Flag>& flags = Flags();
  struct Given {
    std::string typed_name;  // the name the user typed, for errors
    std::string value;
  };
  std::vector<std::optional<Given>> given(flags.size());  // the last value wins
  CommandLine result;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      result.action = CommandLineAction::kHelp;
      return result;
    }
    if (arg == "--version") {
      result.action = CommandLineAction::kVersion;
      return result;
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument \"", arg, "\": flags look like --name=value; see --help"));
    }
    absl::string_view name = arg;
    std::optional<absl::string_view> value;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    size_t index = 0;
    while (index < flags.size() && name != flags[index].name &&
           (flags[index].old_name == nullptr || name != flags[index].old_name)) {
      ++index;
    }
    if (index == flags.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, "; see --help for the flags there are"));
    }
    const Flag& flag = flags[index];
    if (name != flag.name) {
      AddWarning(absl::StrCat("--", name, " is deprecated and will be removed in ",
                              kDeprecatedNamesRemovedIn, "; use --", flag.name),
                 &result.warnings);
    }
    if (!value.has_value()) {
      if (flag.is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return BadFlag(name, absl::StrCat("needs a value, e.g. --", name, "=",
                                          *flag.default_value ? flag.default_value : "VALUE"));
      }
    }
    if (flag.old_value != nullptr && *value == flag.old_value) {
      AddWarning(
          absl::StrCat("--", name, "=", flag.old_value, " is deprecated and will be removed in ",
                       kDeprecatedNamesRemovedIn, "; use --", flag.name, "=", flag.new_value),
          &result.warnings);
      value = flag.new_value;
    }
    given[index] = Given{std::string(name), std::string(*value)};
  }
  for (size_t index = 0; index < flags.size(); ++index) {
    const Flag& flag = flags[index];
    const bool from_user = given[index].has_value();
    const std::string& text = from_user ? given[index]->value : flag.default_value;
    if (absl::Status set = flag.set(text, &result.config); !set.ok()) {
      return BadFlag(from_user ? given[index]->typed_name : flag.name, set.message());
    }
  }
  return result;
}

// --help's examples; PROGRAM is replaced by the name the exporter was run as.
constexpr char kExamples[] =
    "Examples:\n"
    "  sudo PROGRAM\n"
    "      Count every port; metrics on http://HOST:19100/metrics.\n"
    "  sudo PROGRAM --bpf.ports=8081-8083 --web.listen-address=127.0.0.1:9500\n"
    "      Count three ports; serve on loopback only.\n"
    "  sudo PROGRAM --geoip.database=/var/lib/GeoIP/GeoLite2-Country.mmdb\n"
    "      Use a MaxMind database instead of the bundled one.\n"
    "  sudo PROGRAM --bpf.pin-path=/sys/fs/bpf/ebpf_geoip\n"
    "      Keep the probe counting while the exporter is stopped, even when\n"
    "      started from a shell; `sudo rm -r /sys/fs/bpf/ebpf_geoip` detaches it.\n";

std::string HelpText(const std::string& program) {
  std::string text = absl::StrFormat(
      "usage: %s [flags]\n\n"
      "Counts the TCP connections that services on this host accept, by the\n"
      "country of the client and the local port, with an eBPF probe on the\n"
      "kernel's accept path, and serves them as Prometheus metrics.\n\nFlags:\n",
      program);
  std::string deprecated;
  size_t old_width = 0;
  for (const Flag& flag : Flags()) {
    if (flag.old_name != nullptr) old_width = std::max(old_width, strlen(flag.old_name));
  }
  for (const Flag& flag : Flags()) {
    absl::StrAppendFormat(&text, "  --%s\n      %s\n", flag.name, flag.help);
    if (*flag.default_value != '\0') {
      absl::StrAppendFormat(&text, "      (default: %s)\n", flag.default_value);
    }
    if (flag.old_name != nullptr) {
      absl::StrAppendFormat(&deprecated, "  --%-*s  use --%s\n", old_width, flag.old_name,
                            flag.name);
    }
    if (flag.old_value != nullptr) {
      absl::StrAppendFormat(&deprecated, "  --%s=%s  use --%s=%s\n", flag.name, flag.old_value,
                            flag.name, flag.new_value);
    }
  }
  absl::StrAppend(&text,
                  "  --version\n      Print the version and exit.\n"
                  "  --help\n      Print this text and exit.\n\n"
                  "Deprecated names, accepted with a warning until ",
                  kDeprecatedNamesRemovedIn, ":\n", deprecated, "\n");
  absl::StrAppend(&text, absl::StrReplaceAll(kExamples, {{"PROGRAM", program}}));
  return text;
}

}  // namespace geoip
