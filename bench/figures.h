// What the benchmarks print for scripts/bench: one "figure NAME VALUE" line
// per measured figure, which the script finds by NAME (docs/PERFORMANCE.md).
#ifndef BENCH_FIGURES_H_
#define BENCH_FIGURES_H_

#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"

namespace geoip {

inline void PrintFigure(absl::string_view name, double value) {
  std::printf("figure %s %.10g\n", std::string(name).c_str(), value);
}

// Prints `usage` and returns true if the command line asks for --help.
inline bool PrintUsageIfAsked(int argc, char** argv, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    if (absl::string_view(argv[i]) == "--help") {
      std::fputs(usage, stdout);
      return true;
    }
  }
  return false;
}

}  // namespace geoip

#endif  // BENCH_FIGURES_H_
