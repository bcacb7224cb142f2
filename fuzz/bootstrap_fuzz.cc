// Fuzzes the connection set-up a peer sends (bootstrap Hello: queue pair endpoint and memory
// regions), parsed from the wire and validated (transport::FromProto).
#include <cstddef>
#include <cstdint>

#include "vigil/bootstrap/v1/bootstrap.pb.h"
#include "vigil/transport/bootstrap.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  bootstrap::v1::Hello hello;
  if (!hello.ParseFromArray(data, static_cast<int>(size))) return 0;
  static_cast<void>(transport::FromProto(hello, "verbs"));
  static_cast<void>(transport::FromProto(hello, "fake"));
  return 0;
}
