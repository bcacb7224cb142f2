// Fuzzes a restartable server's reading of a client's record (server::DecodeRecord), then the kv
// and lock services' checks of the recovered state and their handling of a request: a record
// comes from remote memory, a request from a client.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "vigil/server/framework.h"
#include "vigil/server/services.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  if (size < 2) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  static_cast<void>(server::DecodeRecord(in));
  // First byte: the service and where the state ends and the request begins.
  auto service = server::MakeService(data[0] % 2 ? "lock" : "kv");
  if (!service.ok()) return 0;
  const size_t split = std::min<size_t>(in.size(), data[0] / 2 % 64 * 4);
  std::string state(in.substr(0, split));
  const std::string_view request = in.substr(split);
  if ((*service)->Validate(42, state).ok() && (*service)->Adopt(42, state).ok()) {
    std::string reply;
    static_cast<void>((*service)->Handle(42, state, request, reply, 1024));
    (*service)->Forget(42);
  }
  return 0;
}
