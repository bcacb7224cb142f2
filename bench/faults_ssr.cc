// The SSR cell of `vigil-bench faults` (faults.h).
#include <fmt/format.h>

#include <map>
#include <random>

#include "faults.h"
#include "vigil/server/client.h"
#include "vigil/server/framework.h"
#include "vigil/server/services.h"
#include "vigil/ssr/slot.h"
#include "vigil/ssr/store.h"
#include "vigil/transport/bootstrap.h"

namespace vigil::bench {

struct SsrCell::Parts {
  std::unique_ptr<ssr::Store> store;
  std::unique_ptr<transport::BootstrapServer> bootstrap;
  std::unique_ptr<server::RestartableServer> kv;
  ~Parts() {
    if (kv) kv->Shutdown();
    if (bootstrap) bootstrap->Shutdown();
    if (store) store->Shutdown();
  }
};

SsrCell::SsrCell(std::unique_ptr<Parts> parts) : p_(std::move(parts)) {}
SsrCell::~SsrCell() = default;

Result<std::unique_ptr<SsrCell>> SsrCell::Start(BenchSetup& setup) {
  auto p = std::make_unique<Parts>();
  ssr::StoreOptions so;
  so.arena_bytes = 16 << 20;
  VIGIL_ASSIGN_OR_RETURN(p->store, ssr::Store::Create(*setup.transport, so));
  p->bootstrap =
      std::make_unique<transport::BootstrapServer>(*setup.transport, "ssr-store", setup.conn);
  p->store->Attach(*p->bootstrap);
  VIGIL_RETURN_IF_ERROR(p->bootstrap->Start("127.0.0.1:0"));
  server::ServerOptions o;
  o.store.store = fmt::format("127.0.0.1:{}", p->bootstrap->port());
  o.store.connection = setup.conn;
  o.store.instance = "kv-faults";
  VIGIL_ASSIGN_OR_RETURN(
      p->kv, server::RestartableServer::Start(setup.transport.get(), server::MakeKvService(), o));
  return std::unique_ptr<SsrCell>(new SsrCell(std::move(p)));
}

namespace {

// The bytes of a slot that hold something: its header and the record (these clients' kv sessions
// stay under 200 bytes). The rest of a slot is unused capacity, where a flip changes nothing.
constexpr size_t kUsedBytes = ssr::kSlotHeaderBytes + 256;

// One client and what its answers must be.
struct Checked {
  std::unique_ptr<server::Client> client;
  std::map<std::string, std::string> model;  // the kv session's data
  bool reset = false;
};

// A call and the model's answer to it: the body, or the error code (body empty).
struct Expected {
  std::string request;
  StatusCode code = StatusCode::kOk;
  std::string body;
};

Expected Draw(std::mt19937_64& rng, std::map<std::string, std::string>& m) {
  const std::string key = fmt::format("k{}", rng() % 4);
  const std::string counter = fmt::format("n{}", rng() % 2);
  const auto lookup = [&](const std::string& k, std::string request) {
    auto it = m.find(k);
    return it == m.end() ? Expected{std::move(request), StatusCode::kNotFound, ""}
                         : Expected{std::move(request), StatusCode::kOk, it->second};
  };
  switch (rng() % 5) {
    case 0: {
      const std::string value = fmt::format("v{:x}", rng() % 0xFFFFFF);
      m[key] = value;
      return {fmt::format("put {} {}", key, value), StatusCode::kOk, "ok"};
    }
    case 1:
      return lookup(key, "get " + key);
    case 2: {
      if (m.erase(key) == 0) return {"del " + key, StatusCode::kNotFound, ""};
      return {"del " + key, StatusCode::kOk, "ok"};
    }
    case 3: {
      const std::string next = std::to_string(m.count(counter) ? std::stoll(m[counter]) + 1 : 1);
      m[counter] = next;
      return {"incr " + counter, StatusCode::kOk, next};
    }
    default:
      return lookup(counter, "get " + counter);
  }
}

}  // namespace

Result<Outcome> SsrCell::Run(uint64_t seed, uint64_t at, uint64_t bit, uint16_t victim) {
  std::mt19937_64 rng(seed);
  std::vector<Checked> clients(kClients);
  for (auto& c : clients) {
    server::ClientOptions o;
    o.server = fmt::format("127.0.0.1:{}", p_->kv->port());
    o.deadline = std::chrono::seconds(20);
    VIGIL_ASSIGN_OR_RETURN(c.client, server::Client::Connect(o));
  }
  bool fired = false, read = false, sdc = false;
  for (uint64_t call = 1; call <= kCalls; ++call) {
    Checked& c = clients[call % kClients];
    if (fired && &c == &clients[victim]) read = true;
    if (call == at) {
      // The victim's SSR exists once it made a call; before that there is nothing to corrupt.
      auto region = p_->store->RegionOf("kv", clients[victim].client->id());
      if (region.ok() && region->size() >= 2 * kUsedBytes) {
        const size_t slot = (bit >> 3) & 1, byte = (bit >> 4) % kUsedBytes;
        (*region)[slot * (region->size() / 2) + byte] ^=
            std::byte{static_cast<uint8_t>(1u << (bit % 8))};
        fired = true;
      }
    }
    std::map<std::string, std::string> next = c.model;
    const Expected want = Draw(rng, next);
    auto got = c.client->Call(want.request);
    if (!got.ok() && got.status().code() == StatusCode::kDataLoss && c.client->last().reset) {
      // Failed closed: the session starts over, empty; this request was not executed.
      if (&c != &clients[victim] || !fired) {
        return Internal(fmt::format("client {} was reset without a fault in its SSR: {}",
                                    c.client->id(), got.status().ToString()));
      }
      c.reset = true;
      c.model.clear();
      continue;
    }
    const StatusCode code = got.ok() ? StatusCode::kOk : got.status().code();
    if (code != want.code || (got.ok() && *got != want.body)) {
      fmt::print(stderr, "# SDC: client {} '{}' answered {} '{}', the model says {} '{}'\n",
                 c.client->id(), want.request, StatusCodeName(code), got.ok() ? *got : "",
                 StatusCodeName(want.code), want.body);
      sdc = true;
      break;
    }
    c.model = std::move(next);
  }
  for (auto& c : clients) (void)c.client->Bye();  // frees the SSR; a failure leaves it in the arena
  // Not fired: the victim had no SSR yet, or made no call after the flip (nothing read it).
  if (at != 0 && (!fired || !read)) return Outcome::kNotFired;
  if (sdc) return Outcome::kSdc;
  return clients[victim].reset ? Outcome::kFailedClosed : Outcome::kMasked;
}

}  // namespace vigil::bench
