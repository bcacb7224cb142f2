// The parameter space the replication suites run over on every transport: DMR and TMR, each with
// every signalling method, and the test-name suffix ("Dmr_polling", ...) for it.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "vigil/channel/endpoints.h"
#include "vigil/voter/vote.h"

namespace vigil::testing {

using ModeAndMethod = std::tuple<voter::Mode, channel::Method>;

inline auto EveryModeAndMethod() {
  return ::testing::Combine(::testing::Values(voter::Mode::kDmr, voter::Mode::kTmr),
                            ::testing::Values(channel::Method::kPolling, channel::Method::kNotify,
                                              channel::Method::kRpc));
}

inline std::string ModeAndMethodName(const ::testing::TestParamInfo<ModeAndMethod>& p) {
  return std::string(std::get<0>(p.param) == voter::Mode::kDmr ? "Dmr" : "Tmr") + "_" +
         std::string(channel::MethodName(std::get<1>(p.param)));
}

}  // namespace vigil::testing
