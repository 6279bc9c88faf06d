#include "exporter/geo/geoip_database.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "tests/support/test_mmdb.h"

namespace geoip {
namespace {

const std::string kBundled = GEOIP_SOURCE_DIR "/data/geo-whois-asn-country.mmdb";

IpAddress Ip(const std::string& text) {
  absl::StatusOr<IpAddress> address = ParseIpAddress(text);
  EXPECT_TRUE(address.ok()) << address.status();
  return address.value_or(IpAddress());
}

// Expected lookup result: a country label, or "" for no country.
struct Case {
  std::string address;
  std::string country;
};

void ExpectCountries(const GeoIpDatabase& db, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(db.path() + ": " + c.address);
    absl::StatusOr<std::optional<CountryId>> country = db.Lookup(Ip(c.address));
    ASSERT_TRUE(country.ok()) << country.status();
    EXPECT_EQ(country->has_value() ? (*country)->Label() : "", c.country);
  }
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class GeoIpDatabaseTest : public TestMmdbSuite {
 protected:
  GeoIpDatabase OpenOrDie(const std::string& path) {
    absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(path);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) std::abort();
    return std::move(*db);
  }
};

TEST_F(GeoIpDatabaseTest, ReadsMetadata) {
  GeoIpDatabase db = OpenOrDie(directory_->maxmind());
  EXPECT_EQ(db.path(), directory_->maxmind());
  EXPECT_EQ(db.type(), "GeoLite2-Country");
  EXPECT_EQ(db.build_epoch(), 1700000000u);

  GeoIpDatabase flat = OpenOrDie(directory_->flat());
  EXPECT_EQ(flat.type(), "country ipvAll");
}

TEST_F(GeoIpDatabaseTest, ABuildEpochThatIsNoDateHasNoBuildTime) {
  GeoIpDatabase db = OpenOrDie(directory_->no_date());
  EXPECT_EQ(db.build_epoch(), UINT64_MAX);
  EXPECT_FALSE(db.build_time().has_value());
  EXPECT_EQ(OpenOrDie(directory_->maxmind()).build_time(), 1700000000);
  ExpectCountries(db, {{"8.8.8.8", "US"}});
}

TEST_F(GeoIpDatabaseTest, ReadsMaxMindSchema) {
  GeoIpDatabase db = OpenOrDie(directory_->maxmind());
  IpAddress mapped = IpAddress::V6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 81, 2, 69, 142});
  ExpectCountries(db, {
                          {"81.2.69.142", "GB"},
                          {"89.160.20.5", "SE"},  // country beats registered
                          {"67.43.156.1", "BT"},  // registered_country only
                          {"202.196.224.1", ""},  // neither
                          {"10.1.2.3", "FR"},     // the database does not
                                                  // classify; Geolocator does
                          {"1.2.3.4", ""},        // no record
                          {"2001:218::1", "JP"},
                          {"2a02:d300::1", "UA"},
                          {"2c0f:ff00::1", ""},
                          {"2001:219::1", ""},
                      });
  absl::StatusOr<std::optional<CountryId>> country = db.Lookup(mapped);
  ASSERT_TRUE(country.ok()) << country.status();
  EXPECT_EQ(*country, CountryId::FromIsoCode("GB"));
}

TEST_F(GeoIpDatabaseTest, ReadsFlatSchema) {
  GeoIpDatabase db = OpenOrDie(directory_->flat());
  ExpectCountries(db, {
                          {"138.100.31.225", "ES"},
                          {"8.8.8.8", "US"},
                          {"81.2.69.142", "GB"},  // stored as "gb"
                          {"1.1.1.1", ""},        // record without a country
                          {"9.9.9.9", ""},        // no record
                          {"2001:4860:4860::8888", "US"},
                          {"2a00:1450:4001::1", "IE"},
                          {"2a01::1", ""},
                      });
}

TEST_F(GeoIpDatabaseTest, MalformedRecordsAreErrors) {
  GeoIpDatabase maxmind = OpenOrDie(directory_->maxmind());
  GeoIpDatabase flat = OpenOrDie(directory_->flat());
  struct Bad {
    const GeoIpDatabase* db;
    std::string address;
    std::string message;
  };
  const std::vector<Bad> cases = {
      {&maxmind, "6.6.6.6", "country for 6.6.6.6 is not a map (MaxMind DB type 2)"},
      {&maxmind, "5.5.5.5", "country.iso_code for 5.5.5.5 is not a string (MaxMind DB type 6)"},
      {&flat, "7.7.7.7", "country_code for 7.7.7.7 is \"USA\", not a two-letter country code"},
      {&flat, "5.5.5.5", "country_code for 5.5.5.5 is not a string (MaxMind DB type 6)"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.address);
    absl::StatusOr<std::optional<CountryId>> country = c.db->Lookup(Ip(c.address));
    ASSERT_FALSE(country.ok());
    EXPECT_EQ(country.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(country.status().message(), c.message);
  }
}

TEST_F(GeoIpDatabaseTest, Ipv6InIpv4DatabaseIsAnError) {
  GeoIpDatabase db = OpenOrDie(directory_->ipv4_only());
  ExpectCountries(db, {{"8.8.8.8", "US"}, {"8.8.4.4", ""}});
  absl::StatusOr<std::optional<CountryId>> country = db.Lookup(Ip("2001:4860:4860::8888"));
  ASSERT_FALSE(country.ok());
  EXPECT_EQ(country.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(GeoIpDatabaseTest, CorruptSearchTreeIsAnError) {
  // Point the first node's records far past the end of the file: IPv6
  // lookups start there, and MMDB_open does not walk the tree.
  std::string bytes = ReadFile(directory_->maxmind());
  ASSERT_GT(bytes.size(), 6u);
  for (int i = 0; i < 6; ++i) bytes[i] = '\xff';
  const std::string path = directory_->path() + "/corrupt-tree.mmdb";
  WriteFile(path, bytes);
  GeoIpDatabase db = OpenOrDie(path);
  absl::StatusOr<std::optional<CountryId>> country = db.Lookup(Ip("2001:218::1"));
  ASSERT_FALSE(country.ok());
  EXPECT_EQ(country.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(country.status().message().find("2001:218::1"), absl::string_view::npos)
      << country.status();
}

TEST_F(GeoIpDatabaseTest, MoveTransfersOwnership) {
  GeoIpDatabase original = OpenOrDie(directory_->flat());
  GeoIpDatabase moved(std::move(original));
  ExpectCountries(moved, {{"8.8.8.8", "US"}});
  // NOLINTNEXTLINE(bugprone-use-after-move): checking the moved-from state.
  EXPECT_EQ(original.Lookup(Ip("8.8.8.8")).status().code(), absl::StatusCode::kFailedPrecondition);

  GeoIpDatabase assigned = OpenOrDie(directory_->maxmind());
  assigned = std::move(moved);
  EXPECT_EQ(assigned.path(), directory_->flat());
  ExpectCountries(assigned, {{"8.8.8.8", "US"}});
}

TEST(GeoIpDatabaseBundled, FindsKnownCountries) {
  absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(kBundled);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(db->type(), "country ipvAll");
  EXPECT_GT(db->build_epoch(), 1700000000u);
  ExpectCountries(*db, {
                           {"138.100.31.225", "ES"},
                           {"81.2.69.142", "GB"},
                           {"2001:4860:4860::8888", "US"},
                           {"8.8.8.8", "US"},
                           {"10.0.0.1", ""},
                       });
}

TEST_F(GeoIpDatabaseTest, MissingFileIsNotFoundWithHint) {
  const std::string path = directory_->path() + "/missing.mmdb";
  absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(db.status().message(), "GeoIP database " + path +
                                       " does not exist: pass --geoip.database=PATH or run "
                                       "scripts/update-geoip-db");
}

TEST_F(GeoIpDatabaseTest, NonDatabasesAreInvalidArgument) {
  const std::string bundled = ReadFile(kBundled);
  ASSERT_GT(bundled.size(), 1000000u);
  const std::string dir = directory_->path();
  struct Bad {
    std::string name;
    std::string contents;
  };
  const std::vector<Bad> cases = {
      {"text.mmdb", "this is not a MaxMind database\n"},
      {"empty.mmdb", ""},
      {"truncated-half.mmdb", bundled.substr(0, bundled.size() / 2)},
      {"truncated-tail.mmdb", bundled.substr(0, bundled.size() - 20)},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir + "/" + c.name;
    WriteFile(path, c.contents);
    absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(path);
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.status().code(), absl::StatusCode::kInvalidArgument) << db.status();
    EXPECT_EQ(db.status().message().rfind(path + " is not a valid MaxMind DB file: ", 0), 0u)
        << db.status();
  }

  absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(dir);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db.status().message(), dir +
                                       " is a directory, not a MaxMind DB file: pass "
                                       "--geoip.database=PATH with a MaxMind DB file, or run "
                                       "scripts/update-geoip-db");
}

TEST_F(GeoIpDatabaseTest, TextFileErrorQuotesLibmaxminddb) {
  const std::string path = directory_->path() + "/notes.txt";
  WriteFile(path, "hello\n");
  absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().message(), path +
                                       " is not a valid MaxMind DB file: The MaxMind DB file "
                                       "contains invalid metadata: pass --geoip.database=PATH "
                                       "with a MaxMind DB file, or run scripts/update-geoip-db");
}

// Opens path and reports whether it failed with PermissionDenied naming path.
bool OpenIsPermissionDenied(const std::string& path) {
  absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(path);
  return !db.ok() && db.status().code() == absl::StatusCode::kPermissionDenied &&
         db.status().message() == "cannot read GeoIP database " + path + ": Permission denied";
}

TEST_F(GeoIpDatabaseTest, UnreadableFileIsPermissionDenied) {
  const std::string path = directory_->path() + "/unreadable.mmdb";
  WriteFile(path, ReadFile(directory_->flat()));
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  if (geteuid() != 0) {
    EXPECT_TRUE(OpenIsPermissionDenied(path));
    return;
  }
  // Root reads any file, so try from a child running as nobody; it needs
  // to reach the (mkdtemp, 0700) directory.
  ASSERT_EQ(chmod(directory_->path().c_str(), 0711), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    constexpr uid_t kNobody = 65534;
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) {
      _exit(2);
    }
    _exit(OpenIsPermissionDenied(path) ? 0 : 1);
  }
  int wait_status = 0;
  ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
  ASSERT_EQ(chmod(directory_->path().c_str(), 0700), 0);
  ASSERT_TRUE(WIFEXITED(wait_status));
  EXPECT_EQ(WEXITSTATUS(wait_status), 0) << "2: cannot become nobody; 1: wrong error (is "
                                         << GEOIP_BINARY_DIR << " reachable by nobody?)";
}

TEST_F(GeoIpDatabaseTest, FindDefaultDatabasePicksFirstExistingFile) {
  const std::string dir = directory_->path();
  EXPECT_EQ(FindDefaultDatabase({}), std::nullopt);
  EXPECT_EQ(FindDefaultDatabase({dir + "/none-1", dir + "/none-2"}), std::nullopt);
  EXPECT_EQ(FindDefaultDatabase({dir + "/none", dir, directory_->flat(), directory_->maxmind()}),
            directory_->flat());
  const std::string link = dir + "/link.mmdb";
  std::filesystem::create_symlink(directory_->maxmind(), link);
  EXPECT_EQ(FindDefaultDatabase({link, directory_->flat()}), link);
  const std::string dangling = dir + "/dangling.mmdb";
  std::filesystem::create_symlink(dir + "/none", dangling);
  EXPECT_EQ(FindDefaultDatabase({dangling, directory_->flat()}), directory_->flat());
}

}  // namespace
}  // namespace geoip
