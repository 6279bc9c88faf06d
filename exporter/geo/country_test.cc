#include "exporter/geo/country.h"

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace geoip {
namespace {

TEST(CountryId, ParsesIsoCodesInAnyCase) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"US", "US"}, {"us", "US"}, {"gB", "GB"}, {"Es", "ES"},
      {"AA", "AA"}, {"ZZ", "ZZ"}, {"xk", "XK"},
  };
  for (const auto& [input, label] : cases) {
    SCOPED_TRACE(input);
    std::optional<CountryId> country = CountryId::FromIsoCode(input);
    ASSERT_TRUE(country.has_value());
    EXPECT_EQ(country->Label(), label);
    EXPECT_TRUE(country->is_country());
  }
}

TEST(CountryId, RejectsAnythingButTwoLetters) {
  const std::vector<std::string> cases = {
      "",         "U",       "USA", "U1", "1U", "@A",
      "A[",       "`a",      "a{",  "U ", " U", std::string("U\0", 2),
      "\xc3\x9c",  // "Ü": two bytes, not letters
      "private",  "unknown",
  };
  for (const std::string& input : cases) {
    SCOPED_TRACE(input);
    EXPECT_FALSE(CountryId::FromIsoCode(input).has_value());
  }
}

TEST(CountryId, SpecialLabelsAreNotCountries) {
  EXPECT_EQ(CountryId::Private().Label(), "private");
  EXPECT_EQ(CountryId::Unknown().Label(), "unknown");
  EXPECT_EQ(CountryId::Overflow().Label(), "overflow");
  EXPECT_FALSE(CountryId::Private().is_country());
  EXPECT_FALSE(CountryId::Unknown().is_country());
  EXPECT_FALSE(CountryId::Overflow().is_country());
  EXPECT_NE(CountryId::Private(), CountryId::Unknown());
  EXPECT_NE(CountryId::Unknown(), CountryId::Overflow());
}

TEST(CountryId, IndicesAreDenseAndDistinct) {
  std::set<uint16_t> indices;
  std::set<std::string> labels;
  for (char a = 'A'; a <= 'Z'; ++a) {
    for (char b = 'A'; b <= 'Z'; ++b) {
      const std::string code = {a, b};
      std::optional<CountryId> country = CountryId::FromIsoCode(code);
      ASSERT_TRUE(country.has_value()) << code;
      ASSERT_LT(country->index(), CountryId::kCountries) << code;
      EXPECT_EQ(CountryId::FromIndex(country->index()), *country) << code;
      EXPECT_EQ(country->Label(), code);
      indices.insert(country->index());
      labels.insert(country->Label());
    }
  }
  for (CountryId special : {CountryId::Private(), CountryId::Unknown(), CountryId::Overflow()}) {
    ASSERT_GE(special.index(), CountryId::kCountries);
    ASSERT_LT(special.index(), CountryId::kCount);
    EXPECT_EQ(CountryId::FromIndex(special.index()), special);
    indices.insert(special.index());
    labels.insert(special.Label());
  }
  EXPECT_EQ(indices.size(), CountryId::kCount);
  EXPECT_EQ(labels.size(), CountryId::kCount);
}

TEST(CountryId, OrdersCountriesAlphabetically) {
  EXPECT_LT(*CountryId::FromIsoCode("AD"), *CountryId::FromIsoCode("AE"));
  EXPECT_LT(*CountryId::FromIsoCode("AZ"), *CountryId::FromIsoCode("BA"));
  EXPECT_LT(*CountryId::FromIsoCode("ZZ"), CountryId::Private());
}

}  // namespace
}  // namespace geoip
