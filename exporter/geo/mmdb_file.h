// A MaxMind DB (.mmdb) file, memory-mapped: what the country and the AS
// databases share (opening with clear errors, finding an address's record).
#ifndef EXPORTER_GEO_MMDB_FILE_H_
#define EXPORTER_GEO_MMDB_FILE_H_

#include <maxminddb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "exporter/net/address.h"

namespace geoip {

// Sole owner of one MMDB_s; closes it on destruction. Move-only. Find is
// const and safe to call from several threads at once.
class MmdbFile {
 public:
  // Opens path with MMDB_MODE_MMAP. `kind` names the file in errors (e.g.
  // "GeoIP database") and `flag` is the flag that chooses it. NotFound
  // (saying how to get one) if it does not exist, PermissionDenied if it
  // cannot be read, InvalidArgument if it is not a valid MaxMind DB. With
  // `read_from`, the file is read from there instead (the same file
  // through a directory handle, see DatabaseWatcher), and path is still
  // the name it goes by.
  static absl::StatusOr<MmdbFile> Open(const std::string& path, const std::string& kind,
                                       const std::string& flag, const std::string& read_from = "");

  MmdbFile(MmdbFile&&) noexcept;
  MmdbFile& operator=(MmdbFile&&) noexcept;
  MmdbFile(const MmdbFile&) = delete;
  MmdbFile& operator=(const MmdbFile&) = delete;
  ~MmdbFile();

  // The record of address; nullopt if the file has none. Errors mean the
  // lookup itself failed: a corrupt search tree, an IPv6 address in an
  // IPv4-only file (FailedPrecondition), or a moved-from object.
  absl::StatusOr<std::optional<MMDB_entry_s>> Find(const IpAddress& address) const;

  const std::string& path() const { return path_; }
  // The metadata's database_type, e.g. "GeoLite2-Country".
  const std::string& type() const { return type_; }
  // The metadata's build_epoch, in Unix seconds, as the file says.
  uint64_t build_epoch() const { return build_epoch_; }
  // The same if it is a date (before the year 10000); nullopt for a file
  // whose epoch is none, such as 2^64 - 1, which would read as 1969.
  std::optional<int64_t> build_time() const;

 private:
  struct Closer {
    void operator()(MMDB_s* mmdb) const;
  };

  MmdbFile(std::string path, std::unique_ptr<MMDB_s, Closer> mmdb);

  std::string path_;
  std::string type_;
  uint64_t build_epoch_ = 0;
  // Heap-allocated so moves never copy the library's struct.
  std::unique_ptr<MMDB_s, Closer> mmdb_;
};

// The value at `path` (keys into nested maps, ending in nullptr) in the
// record found for `address`: nullopt if a key on the path is missing, an
// error if the path crosses a value that is not a map. The address only
// names the record in errors.
absl::StatusOr<std::optional<MMDB_entry_data_s>> ReadMmdbValue(const MMDB_entry_s& record,
                                                               const char* const* path,
                                                               const IpAddress& address);

}  // namespace geoip

#endif  // EXPORTER_GEO_MMDB_FILE_H_
