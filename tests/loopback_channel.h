// A plaintext channel to a test's own server on loopback, made where vigil makes every channel
// (security::Channel with `insecure`), so tests hold no raw insecure credentials either.
#pragma once

#include <grpcpp/channel.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "vigil/security/tls.h"

namespace vigil::testing {

inline std::shared_ptr<grpc::Channel> LoopbackChannel(const std::string& target) {
  security::TlsOptions plain;
  plain.insecure = true;
  auto channel = security::Channel(plain, target, std::nullopt);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return channel.ok() ? *channel : nullptr;
}

}  // namespace vigil::testing
