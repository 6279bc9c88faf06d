// ebpf_geoip_exporter: parses the command line, starts the exporter and runs
// until SIGINT or SIGTERM; SIGHUP reloads the GeoIP database. The only place a Status becomes an
// exit code.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "exporter/exporter.h"
#include "exporter/flags.h"

namespace {

constexpr char kProgram[] = "ebpf_geoip_exporter";

int Fail(const absl::Status& status) {
  fprintf(stderr, "%s: %s\n", kProgram, std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const geoip::BuildInfo build{GEOIP_VERSION, GEOIP_REVISION, GEOIP_BRANCH};
  const std::vector<std::string> args(argc > 0 ? argv + 1 : argv, argv + argc);
  absl::StatusOr<geoip::CommandLine> command_line = geoip::ParseCommandLine(args);
  if (!command_line.ok()) return Fail(command_line.status());
  if (command_line->action == geoip::CommandLineAction::kHelp) {
    fputs(geoip::HelpText(kProgram).c_str(), stdout);
    return 0;
  }
  if (command_line->action == geoip::CommandLineAction::kVersion) {
    printf("%s, version %s (branch: %s, revision: %s)\n", kProgram, build.version.c_str(),
           build.branch.c_str(), build.revision.c_str());
    return 0;
  }
  for (const std::string& warning : command_line->warnings) {
    fprintf(stderr, "%s: warning: %s\n", kProgram, warning.c_str());
  }
  const geoip::Config& config = command_line->config;

  // Block the stop signals before any thread starts, so that only the wait
  // below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<geoip::Exporter>> exporter = geoip::Exporter::Start(config, build);
  if (!exporter.ok()) return Fail(exporter.status());

  int received = 0;
  while (sigwait(&stop_signals, &received) == 0 && received == SIGHUP) {
    (*exporter)->ReloadDatabase("SIGHUP");
  }
  fprintf(stderr, "received %s, stopping\n", strsignal(received));
  if (config.source == geoip::ConnectionSource::kEbpf && !config.pin_path.empty()) {
    fprintf(stderr,
            "the probe stays pinned at %s and keeps counting for the next start; "
            "`rm -r %s` detaches it\n",
            config.pin_path.c_str(), config.pin_path.c_str());
  }
  exporter->reset();
  return 0;
}
