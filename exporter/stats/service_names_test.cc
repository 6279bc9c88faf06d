#include "exporter/stats/service_names.h"

#include <gtest/gtest.h>

namespace geoip {
namespace {

TEST(ServiceNames, InternsUpToTheCapThenOther) {
  ServiceNames names(2);
  EXPECT_EQ(names.Intern("unknown"), ServiceNames::kUnknown);
  EXPECT_EQ(names.Intern("other"), ServiceNames::kOther);
  const ServiceId web = names.Intern("web");
  const ServiceId db = names.Intern("db");
  EXPECT_NE(web, db);
  EXPECT_EQ(names.Intern("web"), web);
  EXPECT_EQ(names.Intern("cache"), ServiceNames::kOther);
  EXPECT_EQ(names.Intern("cache"), ServiceNames::kOther);  // counted once
  EXPECT_EQ(names.Intern("queue"), ServiceNames::kOther);
  EXPECT_EQ(names.overflowed(), 2u);
  EXPECT_EQ(names.Name(web), "web");
  EXPECT_EQ(names.Name(ServiceNames::kOther), "other");
  EXPECT_EQ(names.Name(999), "unknown");
  EXPECT_EQ(names.All(), (std::vector<std::string>{"unknown", "other", "web", "db"}));
  ServiceId found = 0;
  EXPECT_TRUE(names.Find("db", &found));
  EXPECT_EQ(found, db);
  EXPECT_FALSE(names.Find("cache", &found));
}

}  // namespace
}  // namespace geoip
