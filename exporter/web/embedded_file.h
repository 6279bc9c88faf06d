// Files compiled into the binary at build time (geoip_embed_files in
// embed_files.cmake), so the exporter serves its page with nothing
// installed beside it.
#ifndef EXPORTER_WEB_EMBEDDED_FILE_H_
#define EXPORTER_WEB_EMBEDDED_FILE_H_

#include "absl/strings/string_view.h"

#include "absl/types/span.h"

namespace geoip {

// One embedded file: its base name and its bytes (static storage).
struct EmbeddedFile {
  const char* name;
  absl::string_view data;
};

// The live map page's files from exporter/web/live_map: index.html, its
// script, style sheet and map data.
absl::Span<const EmbeddedFile> LiveMapFiles();

}  // namespace geoip

#endif  // EXPORTER_WEB_EMBEDDED_FILE_H_
