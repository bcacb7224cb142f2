#include "hostile_rpc.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>

#include <future>
#include <memory>

#include "loopback_channel.h"

namespace vigil::testing {
namespace {

namespace pb = google::protobuf;

std::string RandomString(std::mt19937_64& rng, size_t max) {
  std::string s(rng() % (max + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 'a' + rng() % 26);
  // Sometimes a name the servers use, so that hostile values meet real ones.
  if (rng() % 4 == 0) s = rng() % 2 ? "kv" : "kv/kv-0";
  return s;
}

uint64_t RandomNumber(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return rng() % 4;  // small: ids and enums that exist
    case 1:
      return ~uint64_t{0} - rng() % 4;  // near the top
    default:
      return rng();
  }
}

void Randomize(pb::Message& m, std::mt19937_64& rng, int depth) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (rng() % 5 == 0) continue;  // left unset
    const int n = f->is_repeated() ? static_cast<int>(rng() % 4) : 1;
    for (int k = 0; k < n; ++k) {
      const bool rep = f->is_repeated();
      const uint64_t v = RandomNumber(rng);
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT32:
          rep ? r->AddInt32(&m, f, static_cast<int32_t>(v))
              : r->SetInt32(&m, f, static_cast<int32_t>(v));
          break;
        case pb::FieldDescriptor::CPPTYPE_INT64:
          rep ? r->AddInt64(&m, f, static_cast<int64_t>(v))
              : r->SetInt64(&m, f, static_cast<int64_t>(v));
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT32:
          rep ? r->AddUInt32(&m, f, static_cast<uint32_t>(v))
              : r->SetUInt32(&m, f, static_cast<uint32_t>(v));
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT64:
          rep ? r->AddUInt64(&m, f, v) : r->SetUInt64(&m, f, v);
          break;
        case pb::FieldDescriptor::CPPTYPE_BOOL:
          rep ? r->AddBool(&m, f, v % 2) : r->SetBool(&m, f, v % 2);
          break;
        case pb::FieldDescriptor::CPPTYPE_ENUM:
          rep ? r->AddEnumValue(&m, f, static_cast<int>(v % 8))
              : r->SetEnumValue(&m, f, static_cast<int>(v % 8));
          break;
        case pb::FieldDescriptor::CPPTYPE_STRING: {
          std::string s =
              RandomString(rng, f->type() == pb::FieldDescriptor::TYPE_BYTES ? 300 : 40);
          rep ? r->AddString(&m, f, s) : r->SetString(&m, f, s);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth < 3)
            Randomize(rep ? *r->AddMessage(&m, f) : *r->MutableMessage(&m, f), rng, depth + 1);
          break;
        default:
          break;  // float and double: none in vigil's protocols
      }
    }
  }
}

grpc::Status Call(grpc::GenericStub& stub, const std::string& method, const std::string& bytes,
                  std::chrono::milliseconds deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

}  // namespace

HostileStats SendHostileBytes(const std::string& target, const std::string& service, int rounds,
                              std::mt19937_64& rng, std::chrono::milliseconds deadline) {
  HostileStats stats;
  const pb::ServiceDescriptor* s = pb::DescriptorPool::generated_pool()->FindServiceByName(service);
  if (s == nullptr) return stats;
  grpc::GenericStub stub(vigil::testing::LoopbackChannel(target));
  pb::DynamicMessageFactory factory;
  for (int m = 0; m < s->method_count(); ++m) {
    const pb::MethodDescriptor* md = s->method(m);
    const std::string method = "/" + service + "/" + md->name();
    const pb::Message* prototype = factory.GetPrototype(md->input_type());
    for (int i = 0; i < 2 * rounds; ++i) {
      std::string bytes;
      if (i % 2 == 0) {
        bytes = RandomString(rng, 200);
      } else {
        std::unique_ptr<pb::Message> msg(prototype->New());
        Randomize(*msg, rng, 0);
        bytes = msg->SerializeAsString();
        if (rng() % 4 == 0 && !bytes.empty())
          bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
      }
      ++stats.calls;
      if (Call(stub, method, bytes, deadline).ok()) ++stats.ok;
    }
  }
  return stats;
}

}  // namespace vigil::testing
