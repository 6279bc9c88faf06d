#include "exporter/geo/network.h"

#include <gtest/gtest.h>

namespace geoip {
namespace {

TEST(NetworkId, LabelsRoundTrip) {
  for (NetworkId network :
       {NetworkId::Of(0), NetworkId::Of(3333), NetworkId::Of(4294967295u), NetworkId::Private(),
        NetworkId::Unknown(), NetworkId::Overflow(), NetworkId::Other()}) {
    SCOPED_TRACE(network.Label());
    EXPECT_EQ(NetworkId::FromLabel(network.Label()), network);
  }
  EXPECT_EQ(NetworkId::Of(3333).Label(), "AS3333");
  EXPECT_EQ(NetworkId::Private().Label(), "private");
  EXPECT_EQ(NetworkId::Other().Label(), "other");
  EXPECT_TRUE(NetworkId::Of(7).is_asn());
  EXPECT_FALSE(NetworkId::Unknown().is_asn());
}

TEST(NetworkId, ParsesAnyCaseAndRefusesTheRest) {
  EXPECT_EQ(NetworkId::FromLabel("as15169"), NetworkId::Of(15169));
  for (const char* bad :
       {"", "AS", "15169", "AS-1", "AS+1", "AS1x", "AS4294967296", "ASN1", " AS1", "Private"}) {
    EXPECT_FALSE(NetworkId::FromLabel(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace geoip
