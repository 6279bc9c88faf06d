#include "exporter/services/service_registry.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace geoip {
namespace {

ListeningSocket Socket(uint32_t netns, uint16_t port, uint32_t pid, std::string comm) {
  ListeningSocket socket;
  socket.netns = netns;
  socket.port = port;
  socket.pid = pid;
  socket.comm = std::move(comm);
  return socket;
}

// Names a listener after its process, and counts the namings.
struct CountingNamer {
  ListenerIdentity operator()(const ListeningSocket& socket) {
    ++*calls;
    ListenerIdentity identity;
    identity.service = socket.comm;
    identity.process = socket.comm;
    return identity;
  }
  int* calls;
};

TEST(ServiceRegistry, TellsTheSamePortInTwoNamespacesApart) {
  ServiceNames names(64);
  int calls = 0;
  ServiceRegistry registry(&names, CountingNamer{&calls}, 16);
  registry.Learn({Socket(1, 8080, 100, "alpha"), Socket(2, 8080, 200, "beta")});
  EXPECT_EQ(names.Name(registry.ServiceOf(1, 8080)), "alpha");
  EXPECT_EQ(names.Name(registry.ServiceOf(2, 8080)), "beta");
  // Nothing ever listened there.
  EXPECT_EQ(registry.ServiceOf(3, 8080), ServiceNames::kUnknown);
  EXPECT_EQ(registry.ServiceOf(1, 8081), ServiceNames::kUnknown);
  // The same listener again is not named again.
  registry.Learn({Socket(1, 8080, 100, "alpha")});
  EXPECT_EQ(calls, 2);
  const std::vector<ServiceRegistry::Listener> listeners = registry.Listeners();
  ASSERT_EQ(listeners.size(), 2u);
  EXPECT_EQ(listeners[0].netns, 1u);
  EXPECT_EQ(listeners[0].identity.process, "alpha");
  EXPECT_EQ(listeners[1].netns, 2u);
}

TEST(ServiceRegistry, ANewProcessOnTheSamePortRenamesIt) {
  ServiceNames names(64);
  int calls = 0;
  ServiceRegistry registry(&names, CountingNamer{&calls}, 16);
  registry.Learn({Socket(1, 8080, 100, "old-server")});
  const ServiceId old_service = registry.ServiceOf(1, 8080);
  registry.Learn({Socket(1, 8080, 300, "new-server")});
  EXPECT_EQ(names.Name(registry.ServiceOf(1, 8080)), "new-server");
  // The old name keeps its id, so its series keep their label.
  EXPECT_EQ(names.Name(old_service), "old-server");
  EXPECT_EQ(registry.Listeners().size(), 1u);
}

TEST(ServiceRegistry, PastTheCapServicesAreOther) {
  ServiceNames names(2);
  int calls = 0;
  ServiceRegistry registry(&names, CountingNamer{&calls}, 16);
  registry.Learn({Socket(1, 1, 1, "a"), Socket(1, 2, 2, "b"), Socket(1, 3, 3, "c"),
                  Socket(1, 4, 4, "d"), Socket(1, 5, 5, "a")});
  EXPECT_EQ(names.Name(registry.ServiceOf(1, 1)), "a");
  EXPECT_EQ(names.Name(registry.ServiceOf(1, 2)), "b");
  EXPECT_EQ(registry.ServiceOf(1, 3), ServiceNames::kOther);
  EXPECT_EQ(registry.ServiceOf(1, 4), ServiceNames::kOther);
  EXPECT_EQ(names.Name(registry.ServiceOf(1, 5)), "a");  // a known name stays
  EXPECT_EQ(names.overflowed(), 2u);                     // c and d
}

TEST(ServiceRegistry, RemembersABoundedNumberOfListenersOldestFirstOut) {
  ServiceNames names(64);
  int calls = 0;
  ServiceRegistry registry(&names, CountingNamer{&calls}, 3);
  for (uint16_t port = 1; port <= 5; ++port) {
    registry.Learn({Socket(1, port, port, "svc")});
  }
  EXPECT_EQ(registry.Listeners().size(), 3u);
  EXPECT_EQ(registry.ServiceOf(1, 1), ServiceNames::kUnknown);
  EXPECT_EQ(registry.ServiceOf(1, 2), ServiceNames::kUnknown);
  EXPECT_EQ(names.Name(registry.ServiceOf(1, 5)), "svc");
}

}  // namespace
}  // namespace geoip
