// A MaxMind DB file made of the fuzzer's bytes, opened and looked up through
// the exporter's own GeoIpDatabase (libmaxminddb underneath, then our
// decoding of the record). Nothing may crash; a lookup either fails with an
// error, finds nothing, or names a valid country.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "exporter/geo/geoip_database.h"
#include "exporter/net/address.h"

namespace {

// Addresses inside the networks of tests/testdata/make_test_mmdb.pl (the
// seed corpus), and a few outside.
const char* const kAddresses[] = {
    "81.2.69.142",     "89.160.20.1",  "67.43.156.1",  "202.196.224.1",
    "10.1.2.3",        "6.6.6.6",      "5.5.5.5",      "138.100.1.1",
    "8.8.8.8",         "1.1.1.1",      "7.7.7.7",      "0.0.0.0",
    "255.255.255.255", "2001:218::1",  "2a02:d300::1", "2c0f:ff00::1",
    "2001:4860::1",    "2a00:1450::1", "::",           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "::ffff:8.8.8.8"};

// One memfd for the whole run, rewritten for each input.
int DatabaseFd() {
  static const int fd = memfd_create("fuzz.mmdb", MFD_CLOEXEC);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = DatabaseFd();
  if (fd < 0) abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) abort();
  absl::StatusOr<geoip::GeoIpDatabase> database =
      geoip::GeoIpDatabase::Open("/proc/self/fd/" + std::to_string(fd));
  if (!database.ok()) return 0;
  for (const char* text : kAddresses) {
    absl::StatusOr<geoip::IpAddress> address = geoip::ParseIpAddress(text);
    if (!address.ok()) abort();
    absl::StatusOr<std::optional<geoip::CountryId>> country = database->Lookup(*address);
    if (country.ok() && country->has_value()) {
      // A country read from a record is two letters, A-Z.
      const std::string label = (*country)->Label();
      if (label.size() != 2 || label[0] < 'A' || label[0] > 'Z' || label[1] < 'A' ||
          label[1] > 'Z') {
        abort();
      }
    }
  }
  return 0;
}
