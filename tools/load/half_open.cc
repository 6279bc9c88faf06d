#include "tools/load/half_open.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "exporter/util/unique_fd.h"

namespace geoip {
namespace {

constexpr size_t kIpHeader = 20, kTcpHeader = 20;

void Put16(std::string* packet, size_t at, uint16_t value) {
  (*packet)[at] = static_cast<char>(value >> 8);
  (*packet)[at + 1] = static_cast<char>(value & 0xff);
}

// The Internet checksum (RFC 1071) of `data`, after `sum` so far.
uint16_t Checksum(const std::string& data, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < data.size(); i += 2) {
    sum += (static_cast<uint8_t>(data[i]) << 8) | static_cast<uint8_t>(data[i + 1]);
  }
  if (data.size() % 2) sum += static_cast<uint8_t>(data.back()) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

std::string SynPacket(const IpAddress& source, uint16_t source_port, const IpAddress& destination,
                      uint16_t port) {
  std::string packet(kIpHeader + kTcpHeader, '\0');
  packet[0] = 0x45;                           // IPv4, 5 words of header
  Put16(&packet, 2, kIpHeader + kTcpHeader);  // total length
  packet[8] = 64;                             // TTL
  packet[9] = IPPROTO_TCP;
  memcpy(&packet[12], source.bytes.data(), 4);
  memcpy(&packet[16], destination.bytes.data(), 4);
  Put16(&packet, 10, Checksum(packet.substr(0, kIpHeader)));
  const size_t tcp = kIpHeader;
  Put16(&packet, tcp + 0, source_port);
  Put16(&packet, tcp + 2, port);
  Put16(&packet, tcp + 4, 0x1000);               // sequence number
  packet[tcp + 12] = static_cast<char>(5 << 4);  // 5 words of header
  packet[tcp + 13] = 0x02;                       // SYN
  Put16(&packet, tcp + 14, 65535);               // window
  // The TCP checksum covers a pseudo-header of addresses, protocol, length.
  std::string pseudo = packet.substr(12, 8);
  pseudo += std::string("\0", 1);
  pseudo += static_cast<char>(IPPROTO_TCP);
  pseudo += std::string("\0", 1);
  pseudo += static_cast<char>(kTcpHeader);
  Put16(&packet, tcp + 16, Checksum(pseudo + packet.substr(tcp)));
  return packet;
}

absl::Status SendSyns(const IpAddress& source, const IpAddress& destination, uint16_t port,
                      uint64_t count, uint16_t first_source_port) {
  if (!source.is_v4() || !destination.is_v4()) {
    return absl::InvalidArgumentError("half-open handshakes are IPv4 only");
  }
  UniqueFd raw(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
  if (!raw.valid()) {
    return absl::ErrnoToStatus(errno, "socket(SOCK_RAW) (needs CAP_NET_RAW)");
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  memcpy(&to.sin_addr, destination.bytes.data(), 4);
  for (uint64_t i = 0; i < count; ++i) {
    const std::string packet =
        SynPacket(source, static_cast<uint16_t>(first_source_port + i), destination, port);
    if (sendto(raw.get(), packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to),
               sizeof(to)) != static_cast<ssize_t>(packet.size())) {
      return absl::ErrnoToStatus(errno, absl::StrCat("sending SYN ", i + 1, " of ", count));
    }
  }
  return absl::OkStatus();
}

}  // namespace geoip
