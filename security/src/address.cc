#include "vigil/security/address.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace vigil::security {
namespace {

// An IP address in 16 bytes (IPv4 as v4-mapped IPv6), so both families compare alike.
struct Ip {
  unsigned char bytes[16] = {};
  bool operator==(const Ip&) const = default;
};

Ip FromV4(const in_addr& a) {
  Ip ip;
  ip.bytes[10] = ip.bytes[11] = 0xff;
  std::memcpy(ip.bytes + 12, &a, 4);
  return ip;
}

Ip FromV6(const in6_addr& a) {
  Ip ip;
  std::memcpy(ip.bytes, &a, 16);
  return ip;
}

bool ParseIp(const std::string& host, Ip& out) {
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    out = FromV4(v4);
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    out = FromV6(v6);
    return true;
  }
  return false;
}

}  // namespace

std::string_view HostOf(std::string_view address) {
  if (address.starts_with("ipv4:")) address.remove_prefix(5);
  if (address.starts_with("ipv6:")) address.remove_prefix(5);
  if (address.starts_with("[")) {
    const size_t end = address.find(']');
    return end == std::string_view::npos ? address : address.substr(1, end - 1);
  }
  if (std::count(address.begin(), address.end(), ':') == 1) {
    return address.substr(0, address.find(':'));
  }
  return address;
}

bool IsLoopback(std::string_view address) {
  if (address.starts_with("unix:") || address.starts_with("unix-abstract:")) return true;
  const std::string host(HostOf(address));
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    // ::1, or an IPv4 loopback address as a dual-stack socket reports it (::ffff:127.x.y.z).
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  }
  return false;
}

Status CheckCallersAddress(std::string_view what, const std::string& address,
                           std::string_view peer) {
  auto refuse = [&](std::string_view why) {
    return PermissionDenied(fmt::format("{} '{}' is not the caller's own host ({}): {}", what,
                                        address.substr(0, 128), peer.substr(0, 128), why));
  };
  if (IsLoopback(peer)) {
    return IsLoopback(address) ? Status::Ok() : refuse("a local caller may name loopback only");
  }
  Ip caller;
  if (!ParseIp(std::string(HostOf(peer)), caller)) return refuse("the caller has no IP address");
  const std::string host(HostOf(address));
  Ip ip;
  if (ParseIp(host, ip)) return ip == caller ? Status::Ok() : refuse("another address");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return refuse(fmt::format("cannot resolve '{}': {}", host.substr(0, 128), gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> hold(found, freeaddrinfo);
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET &&
        FromV4(reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr) == caller) {
      return Status::Ok();
    }
    if (a->ai_family == AF_INET6 &&
        FromV6(reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr) == caller) {
      return Status::Ok();
    }
  }
  return refuse("it resolves to other addresses");
}

}  // namespace vigil::security
