#include "exporter/geo/database_watcher.h"

#include <stdio.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "exporter/geo/asn_database.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/net/address.h"

namespace geoip {
namespace {

constexpr char kBundled[] = GEOIP_SOURCE_DIR "/data/geo-whois-asn-country.mmdb";

// Polls `done` for up to 10 s; inotify delivers within milliseconds.
template <typename Done>
bool Eventually(Done done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class DatabaseWatcherTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = GEOIP_BINARY_DIR "/database-watcher-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    path_ = directory_ + "/country.mmdb";
    std::filesystem::copy_file(kBundled, path_);
    absl::StatusOr<GeoIpDatabase> database = GeoIpDatabase::Open(path_);
    ASSERT_TRUE(database.ok()) << database.status();
    geolocator_ =
        std::make_unique<Geolocator>(std::make_shared<const GeoIpDatabase>(*std::move(database)));
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  // Writes `bytes` of the bundled database (all if 0) beside the watched
  // file and renames it over, as geoipupdate does.
  void Replace(uintmax_t bytes = 0) {
    const std::string staged = directory_ + "/country.mmdb.new";
    std::filesystem::copy_file(kBundled, staged);
    if (bytes != 0) std::filesystem::resize_file(staged, bytes);
    ASSERT_EQ(rename(staged.c_str(), path_.c_str()), 0);
  }

  std::string directory_;
  std::string path_;
  std::unique_ptr<Geolocator> geolocator_;
};

TEST_F(DatabaseWatcherTest, ReloadsAFileRenamedOverTheDatabase) {
  DatabaseWatcher watcher(geolocator_.get());
  watcher.Start();
  const std::shared_ptr<const GeoIpDatabase> before = geolocator_->database();
  absl::SleepFor(absl::Milliseconds(100));  // the watch is set up in the thread
  Replace();
  ASSERT_TRUE(Eventually([&] { return watcher.successes() == 1; }));
  EXPECT_NE(geolocator_->database(), before);
  EXPECT_EQ(watcher.failures(), 0u);
  EXPECT_EQ(geolocator_->Locate(*ParseIpAddress("138.100.31.225")).country.Label(), "ES");
}

TEST_F(DatabaseWatcherTest, KeepsTheDatabaseInUseWhenTheNewFileIsBroken) {
  DatabaseWatcher watcher(geolocator_.get());
  watcher.Start();
  const std::shared_ptr<const GeoIpDatabase> before = geolocator_->database();
  absl::SleepFor(absl::Milliseconds(100));
  Replace(/*bytes=*/4096);
  ASSERT_TRUE(Eventually([&] { return watcher.failures() == 1; }));
  EXPECT_EQ(watcher.successes(), 0u);
  EXPECT_EQ(geolocator_->database(), before);
  EXPECT_EQ(geolocator_->Locate(*ParseIpAddress("138.100.31.225")).country.Label(), "ES");
}

TEST_F(DatabaseWatcherTest, ReloadsWhenAskedAndIgnoresOtherFiles) {
  DatabaseWatcher watcher(geolocator_.get());
  watcher.Reload("before the thread");  // SIGHUP may come before Start
  EXPECT_EQ(watcher.successes(), 1u);
  watcher.Start();
  absl::SleepFor(absl::Milliseconds(100));
  std::filesystem::copy_file(kBundled, directory_ + "/other.mmdb");
  watcher.Reload("asked");
  EXPECT_EQ(watcher.successes(), 2u);
  absl::SleepFor(absl::Milliseconds(300));  // long enough for a stray event
  EXPECT_EQ(watcher.successes(), 2u);
  EXPECT_EQ(watcher.failures(), 0u);
}

TEST_F(DatabaseWatcherTest, ReloadsTheAsnDatabaseRenamedOverItsFile) {
  constexpr char kAsnBundled[] = GEOIP_SOURCE_DIR "/data/ip-location-db-asn.mmdb";
  const std::string asn_path = directory_ + "/asn.mmdb";
  std::filesystem::copy_file(kAsnBundled, asn_path);
  absl::StatusOr<AsnDatabase> asn = AsnDatabase::Open(asn_path);
  ASSERT_TRUE(asn.ok()) << asn.status();
  geolocator_->SetAsnDatabase(std::make_shared<const AsnDatabase>(*std::move(asn)));
  DatabaseWatcher watcher(geolocator_.get());
  watcher.Start();
  const std::shared_ptr<const AsnDatabase> before = geolocator_->asn_database();
  const std::shared_ptr<const GeoIpDatabase> country = geolocator_->database();
  absl::SleepFor(absl::Milliseconds(100));
  const std::string staged = asn_path + ".new";
  std::filesystem::copy_file(kAsnBundled, staged);
  ASSERT_EQ(rename(staged.c_str(), asn_path.c_str()), 0);
  ASSERT_TRUE(Eventually([&] { return watcher.successes() == 1; }));
  EXPECT_NE(geolocator_->asn_database(), before);
  EXPECT_NE(geolocator_->database(), country);  // a reload reloads both
  EXPECT_TRUE(geolocator_->Locate(*ParseIpAddress("1.1.1.1")).network.is_asn());

  // A broken ASN file: the reload fails, the ASN database in use stays.
  const std::shared_ptr<const AsnDatabase> good = geolocator_->asn_database();
  std::filesystem::copy_file(kAsnBundled, staged);
  std::filesystem::resize_file(staged, 4096);
  ASSERT_EQ(rename(staged.c_str(), asn_path.c_str()), 0);
  ASSERT_TRUE(Eventually([&] { return watcher.failures() == 1; }));
  EXPECT_EQ(geolocator_->asn_database(), good);
}

}  // namespace
}  // namespace geoip
