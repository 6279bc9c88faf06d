#include "exporter/services/service_registry.h"

#include <algorithm>
#include <utility>

namespace geoip {

ServiceRegistry::ServiceRegistry(ServiceNames* names, Namer namer, size_t max_listeners)
    : names_(names), namer_(std::move(namer)), max_listeners_(std::max<size_t>(max_listeners, 1)) {}

void ServiceRegistry::Learn(const std::vector<ListeningSocket>& sockets) {
  for (const ListeningSocket& socket : sockets) {
    const Key key(socket.netns, socket.port);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.pid == socket.pid && it->second.comm == socket.comm) {
        continue;  // known, same process
      }
    }
    // Naming reads /proc, so it runs without the lock; only this thread
    // learns.
    Entry entry;
    entry.pid = socket.pid;
    entry.comm = socket.comm;
    entry.listener.netns = socket.netns;
    entry.listener.port = socket.port;
    entry.listener.identity = namer_(socket);
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, added] = entries_.insert_or_assign(key, std::move(entry));
    if (!added) continue;
    learnt_order_.push_back(key);
    while (entries_.size() > max_listeners_ && !learnt_order_.empty()) {
      entries_.erase(learnt_order_.front());
      learnt_order_.pop_front();
    }
  }
}

ServiceId ServiceRegistry::ServiceOf(uint32_t netns, uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key(netns, port));
  if (it == entries_.end()) return ServiceNames::kUnknown;
  Entry& entry = it->second;
  if (!entry.interned) {
    entry.listener.service = names_->Intern(entry.listener.identity.service);
    entry.interned = true;
  }
  return entry.listener.service;
}

std::vector<ServiceRegistry::Listener> ServiceRegistry::Listeners() const {
  std::vector<Listener> listeners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listeners.reserve(entries_.size());
    for (const auto& [key, entry] : entries_) {
      listeners.push_back(entry.listener);
      listeners.back().counted = entry.interned;
    }
  }
  std::sort(listeners.begin(), listeners.end(), [](const Listener& a, const Listener& b) {
    return std::make_pair(a.netns, a.port) < std::make_pair(b.netns, b.port);
  });
  return listeners;
}

}  // namespace geoip
