// Test-only: generates the small MaxMind DBs described in
// tests/testdata/make_test_mmdb.pl into a fresh directory, and removes them.
#ifndef TESTS_SUPPORT_TEST_MMDB_H_
#define TESTS_SUPPORT_TEST_MMDB_H_

#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace geoip {

// Owns a temporary directory holding maxmind.mmdb, flat.mmdb,
// ipv4-only.mmdb, asn.mmdb, ipinfo-asn.mmdb and no-date.mmdb; deletes it on
// destruction.
class TestMmdbDirectory {
 public:
  // Runs the generator script with perl from PATH, or, where there is no
  // perl (the QEMU end-to-end VMs), copies the databases the script wrote
  // on the host into the directory that GEOIP_TEST_MMDB_DIR names.
  static absl::StatusOr<TestMmdbDirectory> Create() {
    std::string pattern = GEOIP_BINARY_DIR "/geo-test-mmdb-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::ErrnoToStatus(errno, "mkdtemp " + pattern);
    }
    TestMmdbDirectory directory(pattern);
    if (const char* generated = getenv("GEOIP_TEST_MMDB_DIR"); generated && *generated) {
      for (const char* name : {"maxmind.mmdb", "flat.mmdb", "ipv4-only.mmdb", "asn.mmdb",
                               "ipinfo-asn.mmdb", "no-date.mmdb"}) {
        std::error_code error;
        std::filesystem::copy_file(std::string(generated) + "/" + name, pattern + "/" + name,
                                   error);
        if (error) {
          return absl::InternalError(absl::StrCat(
              "copying ", name, " from GEOIP_TEST_MMDB_DIR=", generated, ": ", error.message()));
        }
      }
      return directory;
    }
    std::string perl = "perl";
    std::string script = GEOIP_SOURCE_DIR "/tests/testdata/make_test_mmdb.pl";
    char* argv[] = {perl.data(), script.data(), pattern.data(), nullptr};
    pid_t pid;
    const int error = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv, environ);
    if (error != 0) return absl::ErrnoToStatus(error, "spawning perl");
    int wait_status = 0;
    if (waitpid(pid, &wait_status, 0) != pid) {
      return absl::ErrnoToStatus(errno, "waitpid");
    }
    if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
      return absl::InternalError(absl::StrCat(script, " failed, wait status ", wait_status));
    }
    return directory;
  }

  TestMmdbDirectory(TestMmdbDirectory&& other) noexcept : path_(std::move(other.path_)) {
    other.path_.clear();
  }
  TestMmdbDirectory& operator=(TestMmdbDirectory&&) = delete;
  ~TestMmdbDirectory() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  // The directory; tests may put scratch files in it too.
  const std::string& path() const { return path_; }
  // MaxMind schema, IPv6 tree with IPv4 aliased.
  std::string maxmind() const { return path_ + "/maxmind.mmdb"; }
  // Flat ip-location-db schema, IPv6 tree.
  std::string flat() const { return path_ + "/flat.mmdb"; }
  // Flat schema, IPv4-only tree.
  std::string ipv4_only() const { return path_ + "/ipv4-only.mmdb"; }
  // GeoLite2-ASN schema, IPv6 tree with IPv4 aliased.
  std::string asn() const { return path_ + "/asn.mmdb"; }
  // ipinfo's ASN schema, IPv6 tree with IPv4 aliased.
  std::string ipinfo_asn() const { return path_ + "/ipinfo-asn.mmdb"; }
  // Flat schema, build epoch 2^64 - 1: no date.
  std::string no_date() const { return path_ + "/no-date.mmdb"; }

 private:
  explicit TestMmdbDirectory(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// A test suite whose tests share one generated TestMmdbDirectory, made once
// before the first test and removed after the last.
class TestMmdbSuite : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<TestMmdbDirectory> created = TestMmdbDirectory::Create();
    ASSERT_TRUE(created.ok()) << created.status();
    directory_ = new TestMmdbDirectory(std::move(*created));
  }
  static void TearDownTestSuite() {
    delete directory_;
    directory_ = nullptr;
  }

  static inline TestMmdbDirectory* directory_ = nullptr;
};

}  // namespace geoip

#endif  // TESTS_SUPPORT_TEST_MMDB_H_
