#include "exporter/geo/asn_database.h"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "tests/support/test_mmdb.h"

namespace geoip {
namespace {

IpAddress Ip(const std::string& text) {
  absl::StatusOr<IpAddress> address = ParseIpAddress(text);
  EXPECT_TRUE(address.ok()) << address.status();
  return address.value_or(IpAddress());
}

// Expected lookup result: number 0 means no AS.
struct Case {
  std::string address;
  uint32_t number;
  std::string organization;
};

class AsnDatabaseTest : public TestMmdbSuite {
 protected:
  static void Expect(const std::string& path, const std::vector<Case>& cases) {
    absl::StatusOr<AsnDatabase> db = AsnDatabase::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    for (const Case& c : cases) {
      SCOPED_TRACE(path + ": " + c.address);
      absl::StatusOr<std::optional<AsnRecord>> as = db->Lookup(Ip(c.address));
      ASSERT_TRUE(as.ok()) << as.status();
      if (c.number == 0) {
        EXPECT_FALSE(as->has_value());
        continue;
      }
      ASSERT_TRUE(as->has_value());
      EXPECT_EQ((*as)->number, c.number);
      EXPECT_EQ((*as)->organization, c.organization);
    }
  }
};

TEST_F(AsnDatabaseTest, ReadsGeoLite2AsnSchema) {
  Expect(directory_->asn(), {
                                {"81.2.69.142", 20712, "Andrews & Arnold Ltd"},
                                {"1.1.1.1", 13335, "Cloudflare, Inc."},
                                {"::ffff:1.1.1.1", 13335, "Cloudflare, Inc."},
                                {"89.160.20.1", 29518, ""},
                                {"202.196.224.1", 0, ""},
                                {"9.9.9.9", 0, ""},
                                {"2001:4860:4860::8888", 15169, "Google LLC"},
                            });
}

TEST_F(AsnDatabaseTest, ReadsIpinfoSchema) {
  Expect(directory_->ipinfo_asn(), {
                                       {"8.8.8.8", 15169, "Google LLC"},
                                       {"81.2.69.1", 20712, "Andrews & Arnold Ltd"},
                                       {"1.1.1.1", 0, ""},
                                   });
}

TEST_F(AsnDatabaseTest, MalformedNumbersAreErrorsNamingTheAddress) {
  for (const auto& [path, address] : std::vector<std::pair<std::string, std::string>>{
           {directory_->asn(), "5.5.5.5"}, {directory_->ipinfo_asn(), "7.7.7.7"}}) {
    absl::StatusOr<AsnDatabase> db = AsnDatabase::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::StatusOr<std::optional<AsnRecord>> as = db->Lookup(Ip(address));
    ASSERT_FALSE(as.ok()) << path;
    EXPECT_EQ(as.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(as.status().message().find(address), std::string::npos) << as.status();
  }
}

TEST_F(AsnDatabaseTest, MissingFileNamesItsFlag) {
  absl::StatusOr<AsnDatabase> db = AsnDatabase::Open(directory_->path() + "/absent.mmdb");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(db.status().message().find("--geoip.asn-database"), std::string::npos) << db.status();
  EXPECT_NE(db.status().message().find("ASN database"), std::string::npos) << db.status();
}

TEST_F(AsnDatabaseTest, ReadsMetadata) {
  absl::StatusOr<AsnDatabase> db = AsnDatabase::Open(directory_->asn());
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(db->type(), "GeoLite2-ASN");
  EXPECT_EQ(db->build_epoch(), 1700000000u);
  EXPECT_EQ(db->path(), directory_->asn());
}

}  // namespace
}  // namespace geoip
