// The command line: every flag the exporter has, declared once in flags.cc
// under the dotted names Prometheus users type (--web.listen-address), with
// its default, its help and the rule that turns its text into Config.
#ifndef EXPORTER_FLAGS_H_
#define EXPORTER_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "exporter/net/address.h"
#include "exporter/net/port_list.h"
#include "exporter/probe/accept_probe.h"
#include "exporter/web/web_config.h"

namespace geoip {

// Where connections come from: the kernel probe, or (for demos and CI
// without root) loopback clients posting addresses to the JSON API.
enum class ConnectionSource { kEbpf, kSimulated };

// Everything the command line decides, validated.
struct Config {
  std::string listen_address;
  std::string telemetry_path;
  std::string database_path;  // empty: the first default that exists
  // Empty: the first default that exists, if any; "none": no ASN database.
  std::string asn_database_path;
  PortSet ports;
  ProbeMode probe_mode = ProbeMode::kAuto;
  absl::Duration drain_interval;
  uint32_t max_addresses = 0;
  bool traffic = false;               // --bpf.traffic
  uint32_t max_open_connections = 0;  // --bpf.max-open-connections
  size_t max_services = 64;           // values of the service label before "other"
  size_t max_asns = 0;                // values of the asn label before "other"
  std::string pin_path;               // empty: no pinning
  std::string pin_path_why;  // how --bpf.pin-path=auto decided; empty when a path was given
  std::string runas;         // empty: keep the identity the exporter started with
  bool show_full_addresses = false;
  size_t top_peers = 0;               // --web.top-peers: counters per port and service
  std::vector<IpNetwork> words_from;  // who may post words; empty: the word cloud is off
  size_t max_words = 0;               // --web.max-words
  ConnectionSource source = ConnectionSource::kEbpf;
  WebConfig web_config;  // from --web.config.file; empty: no authentication
  int web_max_connections = 64;
  absl::Duration web_request_timeout = absl::Seconds(10);
};

enum class CommandLineAction { kRun, kHelp, kVersion };

// What the command line asks for.
struct CommandLine {
  CommandLineAction action = CommandLineAction::kRun;
  Config config;  // every flag's value or default; complete only for kRun
  // One line each for stderr before starting, e.g. a deprecated flag name.
  std::vector<std::string> warnings;
};

// Parses the arguments that follow the program name. Errors name the flag
// as the user typed it and say what to pass instead. Holds no global state:
// each call starts from the defaults.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args);

// --help text: usage, every flag with its default, the deprecated names,
// and examples.
std::string HelpText(const std::string& program);

}  // namespace geoip

#endif  // EXPORTER_FLAGS_H_
