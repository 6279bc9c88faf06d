#include "exporter/geo/mmdb_file.h"

#include <netinet/in.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// What to do about a file that is no MaxMind DB.
std::string Remedy(const std::string& flag) {
  return absl::StrCat(": pass ", flag,
                      "=PATH with a MaxMind DB file, or run scripts/update-geoip-db");
}

absl::Status OpenError(const std::string& path, const std::string& kind, const std::string& flag,
                       int mmdb_status, int saved_errno) {
  if (mmdb_status == MMDB_FILE_OPEN_ERROR) {
    if (saved_errno == EACCES || saved_errno == EPERM) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot read ", kind, " ", path, ": ", std::strerror(saved_errno)));
    }
    return absl::ErrnoToStatus(saved_errno, absl::StrCat("opening ", kind, " ", path));
  }
  if (mmdb_status == MMDB_OUT_OF_MEMORY_ERROR) {
    return absl::ResourceExhaustedError(
        absl::StrCat("opening ", kind, " ", path, ": ", MMDB_strerror(mmdb_status)));
  }
  if (mmdb_status == MMDB_IO_ERROR) {
    return absl::InternalError(absl::StrCat("reading ", kind, " ", path, ": ",
                                            MMDB_strerror(mmdb_status), ": ",
                                            std::strerror(saved_errno)));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, " is not a valid MaxMind DB file: ", MMDB_strerror(mmdb_status), Remedy(flag)));
}

}  // namespace

void MmdbFile::Closer::operator()(MMDB_s* mmdb) const {
  MMDB_close(mmdb);
  delete mmdb;
}

absl::StatusOr<MmdbFile> MmdbFile::Open(const std::string& path, const std::string& kind,
                                        const std::string& flag, const std::string& read_from) {
  const std::string& file = read_from.empty() ? path : read_from;
  struct stat st;
  if (stat(file.c_str(), &st) != 0) {
    const int saved_errno = errno;
    if (saved_errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(kind, " ", path, " does not exist: pass ", flag,
                                              "=PATH or run scripts/update-geoip-db"));
    }
    return absl::ErrnoToStatus(saved_errno, absl::StrCat(kind, " ", path));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is a directory, not a MaxMind DB file", Remedy(flag)));
  }
  if (st.st_size == 0) {
    // Caught here because mmap of nothing fails with a confusing I/O error.
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a valid MaxMind DB file: the file is empty", Remedy(flag)));
  }
  // Not yet owned by Closer: after a failed MMDB_open there is nothing to
  // close, the library has already released what it allocated.
  auto unopened = std::make_unique<MMDB_s>();
  const int status = MMDB_open(file.c_str(), MMDB_MODE_MMAP, unopened.get());
  const int saved_errno = errno;
  if (status != MMDB_SUCCESS) return OpenError(path, kind, flag, status, saved_errno);
  return MmdbFile(path, std::unique_ptr<MMDB_s, Closer>(unopened.release()));
}

MmdbFile::MmdbFile(std::string path, std::unique_ptr<MMDB_s, Closer> mmdb)
    : path_(std::move(path)),
      type_(mmdb->metadata.database_type != nullptr ? mmdb->metadata.database_type : ""),
      build_epoch_(mmdb->metadata.build_epoch),
      mmdb_(std::move(mmdb)) {}

std::optional<int64_t> MmdbFile::build_time() const {
  constexpr uint64_t kYear10000 = 253402300800;  // 10000-01-01T00:00:00Z
  if (build_epoch_ >= kYear10000) return std::nullopt;
  return static_cast<int64_t>(build_epoch_);
}

MmdbFile::MmdbFile(MmdbFile&&) noexcept = default;
MmdbFile& MmdbFile::operator=(MmdbFile&&) noexcept = default;
MmdbFile::~MmdbFile() = default;

absl::StatusOr<std::optional<MMDB_entry_s>> MmdbFile::Find(const IpAddress& address) const {
  if (mmdb_ == nullptr) return absl::FailedPreconditionError("the database was moved from");
  // A sockaddr lets libmaxminddb place IPv4 addresses in IPv6 databases.
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const sockaddr* socket_address;
  if (address.is_v4()) {
    v4.sin_family = AF_INET;
    std::memcpy(&v4.sin_addr, address.bytes.data(), sizeof(v4.sin_addr));
    socket_address = reinterpret_cast<const sockaddr*>(&v4);
  } else {
    v6.sin6_family = AF_INET6;
    std::memcpy(&v6.sin6_addr, address.bytes.data(), sizeof(v6.sin6_addr));
    socket_address = reinterpret_cast<const sockaddr*>(&v6);
  }
  int mmdb_error = MMDB_SUCCESS;
  MMDB_lookup_result_s result = MMDB_lookup_sockaddr(mmdb_.get(), socket_address, &mmdb_error);
  if (mmdb_error != MMDB_SUCCESS) {
    const std::string message = absl::StrCat("looking up ", FormatIpAddress(address), " in ", path_,
                                             ": ", MMDB_strerror(mmdb_error));
    // An IPv4-only database cannot answer for IPv6; anything else means the
    // search tree is corrupt.
    if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR) {
      return absl::FailedPreconditionError(message);
    }
    return absl::DataLossError(message);
  }
  if (!result.found_entry) return std::nullopt;
  return result.entry;
}

absl::StatusOr<std::optional<MMDB_entry_data_s>> ReadMmdbValue(const MMDB_entry_s& record,
                                                               const char* const* path,
                                                               const IpAddress& address) {
  // One key at a time: libmaxminddb reports a missing key and a scalar
  // where a map should be with the same error, and only the first is fine.
  MMDB_entry_s map = record;
  MMDB_entry_data_s data{};
  std::string name;
  for (const char* const* key = path; *key != nullptr; ++key) {
    absl::StrAppend(&name, name.empty() ? "" : ".", *key);
    const char* const lookup[] = {*key, nullptr};
    const int status = MMDB_aget_value(&map, &data, lookup);
    if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
        (status == MMDB_SUCCESS && !data.has_data)) {
      return std::nullopt;
    }
    if (status != MMDB_SUCCESS) {
      return absl::DataLossError(absl::StrCat("reading ", name, " for ", FormatIpAddress(address),
                                              ": ", MMDB_strerror(status)));
    }
    if (key[1] != nullptr) {
      if (data.type != MMDB_DATA_TYPE_MAP) {
        return absl::DataLossError(absl::StrCat(name, " for ", FormatIpAddress(address),
                                                " is not a map (MaxMind DB type ", data.type, ")"));
      }
      map = MMDB_entry_s{record.mmdb, data.offset};
    }
  }
  return data;
}

}  // namespace geoip
