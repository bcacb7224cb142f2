// Fuzzes the headers on vigil-run's socket to its executor process (run/executor_wire.h): the
// reply decoder vigil-run runs on what the less privileged executor sends, and the request
// decoder the executor runs. Whatever a decoder accepts must respect the bounds it promises, so
// that reading what the header announces stays within the buffers sized from them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "vigil/run/executor_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil::run::wire;
  const auto bytes = std::as_bytes(std::span(data, size));
  // The room a request left for result bytes: the input's first 8 bytes, when it has them.
  uint64_t room = 0;
  if (size >= sizeof(room)) std::memcpy(&room, data, sizeof(room));
  room %= kMaxDataBytes + 1;
  for (auto b : {bytes, size >= sizeof(room) ? bytes.subspan(sizeof(room)) : bytes}) {
    if (auto r = DecodeReply(b, room); r.ok()) {
      if (r->result_bytes > room || r->message_bytes > kMaxMessageBytes) std::abort();
      if (r->code != 0 && (r->result_bytes != 0 || r->message_bytes == 0)) std::abort();
      static_cast<void>(ReplyStatus(*r, "message"));
    }
    if (auto q = DecodeRequest(b); q.ok()) {
      if (q->record_bytes > kMaxRecordBytes || q->aside_bytes > kMaxDataBytes ||
          q->result_room > kMaxDataBytes || q->local_calls > kMaxLocalCalls) {
        std::abort();
      }
      if (q->op != static_cast<uint32_t>(Op::kExecute) &&
          (q->nr | q->piece | q->record_bytes | q->aside_bytes | q->result_room) != 0) {
        std::abort();
      }
    }
  }
  return 0;
}
