// Restartable servers on the FAKE transport, all in one process: the SSR store, a server and its
// clients. Restarts here are "destroy the server object, start a new one on the same address"; the
// rxe tier kills real server processes with SIGKILL (tests/rxe/ssr_kill_test.sh).
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "hostile_rpc.h"
#include "loopback_channel.h"
#include "vigil/common/proc_maps.h"
#include "vigil/server/client.h"
#include "vigil/server/framework.h"
#include "vigil/server/services.h"
#include "vigil/server/v1/restartable.grpc.pb.h"
#include "vigil/ssr/store.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/fake.h"

namespace vigil::server {
namespace {

using namespace std::chrono_literals;

// A memory fault that hits every copy of some bytes: overwrites each occurrence of `needle` in
// this process's writable memory with 'X's, except the needle itself and anything inside `spare`
// (the store's arena: another node in a deployment). Reads and writes go through
// /proc/self/mem, so neither a freed block nor a sanitizer stops them. Returns how many copies
// it overwrote.
size_t OverwriteEveryCopy(const std::string& needle, std::span<const std::byte> spare) {
  const int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (mem < 0) return 0;
  std::vector<uintptr_t> hits;
  std::vector<char> buf(1 << 20);
  const auto in = [](uintptr_t a, const void* p, size_t n) {
    const auto b = reinterpret_cast<uintptr_t>(p);
    return a + 1 > b && a < b + n;  // a within [b, b + n)
  };
  for (const Mapping& m : ReadMappings(0)) {
    if (m.perms.empty() || m.perms[0] != 'r' || !m.writable() || m.end - m.start > (1ull << 30)) {
      continue;
    }
    const uintptr_t lo = m.start, hi = m.end;
    for (uintptr_t at = lo; at < hi; at += buf.size() - needle.size()) {
      const size_t want = std::min<uintptr_t>(buf.size(), hi - at);
      const ssize_t got = pread(mem, buf.data(), want, static_cast<off_t>(at));
      if (got < static_cast<ssize_t>(needle.size())) continue;
      const std::string_view view(buf.data(), static_cast<size_t>(got));
      for (size_t pos = view.find(needle); pos != std::string_view::npos;
           pos = view.find(needle, pos + 1)) {
        const uintptr_t a = at + pos;
        if (!in(a, needle.data(), needle.size()) && !in(a, spare.data(), spare.size()) &&
            !in(a, buf.data(), buf.size())) {
          hits.push_back(a);
        }
      }
      if (want < buf.size()) break;
    }
  }
  const std::string junk(needle.size(), 'X');
  size_t done = 0;
  for (uintptr_t a : std::set<uintptr_t>(hits.begin(), hits.end())) {
    done += pwrite(mem, junk.data(), junk.size(), static_cast<off_t>(a)) ==
            static_cast<ssize_t>(junk.size());
  }
  close(mem);
  return done;
}

// kv, with a memory fault injected while it serves one chosen client.
class FaultWhileServing final : public Service {
 public:
  FaultWhileServing(uint64_t victim_of_call, std::function<void()> fault)
      : inner_(MakeKvService()), when_(victim_of_call), fault_(std::move(fault)) {}
  std::string_view name() const override { return "kv"; }
  Recovery recovery() const override { return Recovery::kPerClient; }
  Status Validate(uint64_t client, std::string_view state) override {
    return inner_->Validate(client, state);
  }
  Status Handle(uint64_t client, std::string& state, std::string_view request, std::string& reply,
                size_t limit) override {
    if (client == when_) fault_();
    return inner_->Handle(client, state, request, reply, limit);
  }

 private:
  std::unique_ptr<Service> inner_;
  uint64_t when_;
  std::function<void()> fault_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fabric_ = std::make_shared<transport::FakeFabric>();
    store_side_ = std::make_unique<transport::FakeTransport>(fabric_, "store");
    server_side_ = std::make_unique<transport::FakeTransport>(fabric_, "server");
    ssr::StoreOptions so;
    so.arena_bytes = ArenaBytes();
    auto store = ssr::Store::Create(*store_side_, so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    bootstrap_ = std::make_unique<transport::BootstrapServer>(*store_side_, "store",
                                                              transport::ConnectionOptions{});
    store_->Attach(*bootstrap_);
    ASSERT_TRUE(bootstrap_->Start("127.0.0.1:0").ok());
  }
  virtual size_t ArenaBytes() const { return 4 << 20; }
  void TearDown() override {
    server_.reset();
    bootstrap_->Shutdown();
    store_->Shutdown();
  }

  // Starts (or restarts, on the same port) the server of `service`.
  void StartServer(const std::string& service) {
    auto svc = MakeService(service);
    ASSERT_TRUE(svc.ok());
    StartServer(std::move(*svc));
  }
  void StartServer(std::unique_ptr<Service> svc) {
    server_.reset();
    ServerOptions o;
    o.listen = port_ == 0 ? "127.0.0.1:0" : "127.0.0.1:" + std::to_string(port_);
    o.store.store = "127.0.0.1:" + std::to_string(bootstrap_->port());
    o.store.instance = std::string(svc->name()) + "-0";
    auto s = RestartableServer::Start(server_side_.get(), std::move(svc), o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    port_ = server_->port();
  }

  std::unique_ptr<Client> NewClient(uint64_t id = 0) {
    ClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(port_);
    o.client_id = id;
    o.deadline = 20s;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::string Must(Client& c, const std::string& req) {
    auto r = c.Call(req);
    EXPECT_TRUE(r.ok()) << req << ": " << r.status();
    return r.ok() ? *r : "";
  }

  // Corrupts both slots of the client's SSR.
  void Corrupt(const std::string& service, uint64_t client) {
    auto region = store_->RegionOf(service, client);
    ASSERT_TRUE(region.ok()) << region.status();
    (*region)[ssr::kSlotHeaderBytes + 2] ^= std::byte{0x40};
    (*region)[region->size() / 2 + ssr::kSlotHeaderBytes + 2] ^= std::byte{0x40};
  }

  std::shared_ptr<transport::FakeFabric> fabric_;
  std::unique_ptr<transport::FakeTransport> store_side_, server_side_;
  std::unique_ptr<ssr::Store> store_;
  std::unique_ptr<transport::BootstrapServer> bootstrap_;
  std::unique_ptr<RestartableServer> server_;
  int port_ = 0;
};

TEST(Record, RoundTripsAndRejectsInconsistentLengths) {
  Record r{42, StatusCode::kNotFound, "no key 'x'", "reply", "state bytes"};
  auto back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->request_id, 42u);
  EXPECT_EQ(back->code, StatusCode::kNotFound);
  EXPECT_EQ(back->error, "no key 'x'");
  EXPECT_EQ(back->reply, "reply");
  EXPECT_EQ(back->state, "state bytes");
  std::string bytes = EncodeRecord(r);
  EXPECT_EQ(DecodeRecord(bytes.substr(0, bytes.size() - 1)).status().code(), StatusCode::kDataLoss);
  bytes[8] = 99;  // status code out of range
  EXPECT_EQ(DecodeRecord(bytes).status().code(), StatusCode::kDataLoss);
}

TEST_F(ServerTest, KvSessionWithCursorSurvivesARestart) {
  StartServer("kv");
  auto c = NewClient();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(Must(*c, "put a 1"), "ok");
  EXPECT_EQ(Must(*c, "put b 2"), "ok");
  EXPECT_EQ(Must(*c, "put c 3"), "ok");
  EXPECT_EQ(Must(*c, "next"), "a");
  EXPECT_EQ(Must(*c, "incr counter"), "1");
  const uint64_t epoch = server_->epoch();
  StartServer("kv");  // a new instance: nothing in its memory
  EXPECT_EQ(server_->epoch(), epoch + 1);
  EXPECT_EQ(Must(*c, "next"), "b");  // the open cursor came back from the SSR
  EXPECT_EQ(Must(*c, "get c"), "3");
  EXPECT_EQ(Must(*c, "incr counter"), "2");
  EXPECT_EQ(c->last().epoch, epoch + 1);
  auto missing = c->Call("get zz");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(server_->Stats().loads, 4u);  // every call reads the SSR: no state kept between
}

// Server-state isolation: a memory fault while the server serves client B overwrites every copy
// of client A's value that the server process holds. The server keeps no client's state between
// calls, so A's SSR is untouched and A's next answers come from it, intact. (With the state of
// every client cached in the server, A's next "get" returned the overwritten value.)
TEST_F(ServerTest, AMemoryFaultWhileServingBLeavesAsSsrAndAnswersIntact) {
  constexpr uint64_t kA = 3001, kB = 3002;
  std::string value;  // built at run time, so that no other copy exists in the program's image
  for (int i = 0; i < 200; ++i) value += static_cast<char>('a' + (i * 7 + 3) % 26);
  std::string decoy = "decoy " + value;  // a copy the fault must reach: proof that it ran
  size_t overwritten = 0;
  std::span<const std::byte> spare;  // A's SSR, in the store (another node in a deployment)
  StartServer(std::make_unique<FaultWhileServing>(
      kB, [&] { overwritten = OverwriteEveryCopy(value, spare); }));
  auto a = NewClient(kA);
  auto b = NewClient(kB);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(Must(*a, "put k " + value), "ok");
  EXPECT_EQ(Must(*a, "get k"), value);
  EXPECT_EQ(Must(*a, "incr n"), "1");
  auto region = store_->RegionOf("kv", kA);
  ASSERT_TRUE(region.ok()) << region.status();
  spare = *region;
  // A hash, not a copy: a copy would be one more copy of A's value for the fault to hit.
  const auto hash_of = [](std::span<const std::byte> r) {
    return std::hash<std::string_view>()(
        std::string_view(reinterpret_cast<const char*>(r.data()), r.size()));
  };
  const size_t before = hash_of(*region);

  EXPECT_EQ(Must(*b, "put k b-value"), "ok");  // the fault strikes during this call

  EXPECT_GE(overwritten, 1u);
  EXPECT_EQ(decoy.substr(6), std::string(value.size(), 'X')) << "the fault did not run";
  EXPECT_EQ(hash_of(*region), before) << "A's SSR changed while the server served B";
  EXPECT_EQ(Must(*a, "get k"), value);
  EXPECT_EQ(Must(*a, "incr n"), "2");
  EXPECT_EQ(Must(*b, "get k"), "b-value");
  EXPECT_EQ(server_->Stats().resets, 0u);
}

TEST_F(ServerTest, ARetriedRequestIsAnsweredFromItsRecordNotExecutedAgain) {
  StartServer("kv");
  auto channel = vigil::testing::LoopbackChannel("127.0.0.1:" + std::to_string(port_));
  auto stub = v1::Restartable::NewStub(channel);
  auto call = [&](uint64_t request) {
    grpc::ClientContext ctx;
    v1::CallRequest req;
    req.set_client_id(77);
    req.set_request_id(request);
    req.set_body("incr n");
    v1::CallReply resp;
    EXPECT_TRUE(stub->Call(&ctx, req, &resp).ok());
    return resp;
  };
  EXPECT_EQ(call(1).body(), "1");
  auto again = call(1);  // the client did not see the answer and retries
  EXPECT_EQ(again.body(), "1");
  EXPECT_TRUE(again.replayed());
  StartServer("kv");  // and once more, across a restart
  again = call(1);
  EXPECT_EQ(again.body(), "1");
  EXPECT_TRUE(again.replayed());
  EXPECT_EQ(call(2).body(), "2");
  auto stale = call(1);
  EXPECT_EQ(stale.code(), static_cast<uint32_t>(StatusCode::kFailedPrecondition));
}

TEST_F(ServerTest, ACallDuringARestartIsSuspendedNotFailed) {
  StartServer("kv");
  auto c = NewClient();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(Must(*c, "incr x"), "1");
  server_.reset();  // the server is down
  std::thread restart([&] {
    std::this_thread::sleep_for(300ms);
    StartServer("kv");
  });
  auto r = c->Call("incr x");
  restart.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "2");
}

TEST_F(ServerTest, CorruptedSsrResetsThatClientOnly) {
  StartServer("kv");
  auto good = NewClient();
  auto victim = NewClient();
  ASSERT_TRUE(good && victim);
  EXPECT_EQ(Must(*good, "put k good"), "ok");
  EXPECT_EQ(Must(*victim, "put k victim"), "ok");
  Corrupt("kv", victim->id());
  StartServer("kv");  // recovers lazily: the corruption is found on the victim's next call
  auto r = victim->Call("get k");
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status();
  EXPECT_TRUE(victim->last().reset);
  EXPECT_NE(r.status().message().find("session reset"), std::string::npos) << r.status();
  EXPECT_EQ(Must(*good, "get k"), "good");
  // The victim's session starts over, empty.
  EXPECT_EQ(victim->Call("get k").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Must(*victim, "put k again"), "ok");
  EXPECT_EQ(server_->Stats().resets, 1u);
}

// An SSR that lost answered requests still validates: its newest slot corrupted, the reader falls
// back to the older one; wiped, it reads as never written. The client's last recorded answer
// tells the restarted server, which resets that session rather than undo the lost requests.
TEST_F(ServerTest, AnSsrThatLostAnsweredRequestsResetsTheClientNotUndoesThem) {
  StartServer("kv");
  auto stale = NewClient();
  auto wiped = NewClient();
  auto good = NewClient();
  ASSERT_TRUE(stale && wiped && good);
  for (auto* c : {stale.get(), wiped.get(), good.get()}) {
    EXPECT_EQ(Must(*c, "incr n"), "1");
    EXPECT_EQ(Must(*c, "incr n"), "2");
  }
  {
    auto region = store_->RegionOf("kv", stale->id());
    ASSERT_TRUE(region.ok()) << region.status();
    uint32_t service_id = 0;  // slot header: magic u32, version u16, reserved u16, service u32
    std::memcpy(&service_id, region->data() + 8, sizeof(service_id));
    auto newest = ssr::Read(*region, server_->capacity(), {service_id, stale->id()});
    ASSERT_TRUE(newest.ok()) << newest.status();
    const size_t slot_at = newest->slot == 0 ? 0 : region->size() / 2;
    (*region)[slot_at + ssr::kSlotHeaderBytes + 2] ^= std::byte{0x40};  // the newest slot only
    auto wiped_region = store_->RegionOf("kv", wiped->id());
    ASSERT_TRUE(wiped_region.ok()) << wiped_region.status();
    std::fill(wiped_region->begin(), wiped_region->end(), std::byte{0});
  }
  StartServer("kv");
  for (auto* c : {stale.get(), wiped.get()}) {
    auto r = c->Call("incr n");  // "2" from the older slot would undo an answered increment
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << (r.ok() ? *r : r.status().ToString());
    EXPECT_NE(r.status().message().find("but request 2 was answered and recorded"),
              std::string::npos)
        << r.status();
    EXPECT_TRUE(c->last().reset);
    EXPECT_EQ(Must(*c, "incr n"), "1");  // the session starts over, and says so once
  }
  EXPECT_EQ(Must(*good, "incr n"), "3");
  EXPECT_EQ(server_->Stats().resets, 2u);
}

TEST_F(ServerTest, KvRefusesAStateThatWouldOverflowItsSsr) {
  StartServer("kv");
  auto c = NewClient();
  ASSERT_NE(c, nullptr);
  const std::string value(200, 'v');
  Status last;
  int stored = 0;
  for (int i = 0; i < 100 && last.ok(); ++i) {
    auto r = c->Call("put key" + std::to_string(i) + " " + value);
    last = r.status();
    if (r.ok()) stored++;
  }
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted) << last;
  EXPECT_EQ(Must(*c, "count"), std::to_string(stored));  // nothing lost, nothing half-stored
}

TEST_F(ServerTest, LockTableIsRebuiltFromEveryClientAtStartUp) {
  StartServer("lock");
  auto a = NewClient();
  auto b = NewClient();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(Must(*a, "acquire alpha"), "granted");
  EXPECT_EQ(Must(*b, "acquire beta"), "granted");
  StartServer("lock");
  // Nothing was lost and nothing can be granted twice: b asks for a's lock before a's first
  // call after the restart, so only the start-up recovery can know it is taken.
  auto r = b->Call("acquire alpha");
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find(std::to_string(a->id())), std::string::npos);
  EXPECT_EQ(Must(*a, "held"), "alpha");
  EXPECT_EQ(Must(*b, "held"), "beta");
  EXPECT_EQ(Must(*a, "release alpha"), "released");
  EXPECT_EQ(Must(*b, "acquire alpha"), "granted");
  EXPECT_EQ(server_->Stats().loads, 2u + 5u);  // both clients at start-up, then each call
}

TEST_F(ServerTest, AClientWhoseLocksConflictIsResetAndTheOwnerKeepsItsLock) {
  StartServer("lock");
  auto a = NewClient(1001);
  auto b = NewClient(1002);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(Must(*a, "acquire alpha"), "granted");
  EXPECT_EQ(Must(*b, "acquire beta"), "granted");
  // Forge b's SSR so that it claims alpha too (valid CRC: only the lock table can tell).
  auto region = store_->RegionOf("lock", 1002);
  ASSERT_TRUE(region.ok());
  std::string held;
  for (std::string l : {"alpha", "beta"}) {
    const auto n = static_cast<uint16_t>(l.size());
    held.append(reinterpret_cast<const char*>(&n), 2);
    held += l;
  }
  const std::string rec = EncodeRecord(Record{2, StatusCode::kOk, "", "granted", held});
  auto epoch_id = server_->epoch();
  ASSERT_TRUE(ssr::Write(*region, store_->capacity(), {1, 1002}, epoch_id,
                         std::as_bytes(std::span(rec.data(), rec.size())))
                  .ok());
  StartServer("lock");
  EXPECT_EQ(Must(*a, "held"), "alpha");
  auto r = b->Call("held");
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status();
  EXPECT_TRUE(b->last().reset);
  EXPECT_EQ(b->Call("acquire alpha").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Must(*b, "acquire beta"), "granted");  // b's reset session released beta
}

TEST_F(ServerTest, ByeFreesTheClientsSsr) {
  StartServer("lock");
  auto a = NewClient();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(Must(*a, "acquire alpha"), "granted");
  EXPECT_EQ(store_->Stats().used, 1u);
  ASSERT_TRUE(a->Bye().ok());
  EXPECT_EQ(store_->Stats().used, 0u);
  auto b = NewClient();
  EXPECT_EQ(Must(*b, "acquire alpha"), "granted");
}

class TinyArenaServerTest : public ServerTest {
 protected:
  size_t ArenaBytes() const override { return 16 << 10; }  // room for one client's SSR
};

TEST_F(TinyArenaServerTest, AFullArenaIsAnAnswerNotAHang) {
  StartServer("kv");
  auto first = NewClient();
  auto second = NewClient();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(Must(*first, "put k v"), "ok");
  const auto start = std::chrono::steady_clock::now();
  auto r = second->Call("put k v");
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find("arena full"), std::string::npos) << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // not retried until the deadline
  EXPECT_EQ(Must(*first, "get k"), "v");                    // the server is fine
}

TEST_F(ServerTest, MalformedCallsAreRefusedByName) {
  StartServer("kv");
  auto c = NewClient();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Call("frobnicate x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Call("put bad\tkey v").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Call("put k " + std::string(300, 'x')).status().code(),
            StatusCode::kInvalidArgument);
  auto channel = vigil::testing::LoopbackChannel("127.0.0.1:" + std::to_string(port_));
  auto stub = v1::Restartable::NewStub(channel);
  grpc::ClientContext ctx;
  v1::CallRequest req;
  req.set_client_id(0);
  req.set_request_id(1);
  v1::CallReply resp;
  auto st = stub->Call(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("client_id"), std::string::npos);
}

// Random bytes and randomized requests to every method of the store's port (bootstrap, control)
// and of the kv server: afterwards, a new client is served at once and its answers are right,
// and the client that was there before goes on where it was.
TEST_F(ServerTest, HostileBytesToEveryMethodLeaveNewClientsServed) {
  StartServer("kv");
  auto before = NewClient();
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(Must(*before, "incr n"), "1");
  std::mt19937_64 rng(20);
  const std::string store = "127.0.0.1:" + std::to_string(bootstrap_->port());
  const std::string kv = "127.0.0.1:" + std::to_string(port_);
  int calls = 0;
  for (const auto& [target, service] : {std::pair{store, "vigil.bootstrap.v1.Bootstrap"},
                                        {store, "vigil.ssr.v1.SsrStore"},
                                        {kv, "vigil.server.v1.Restartable"}}) {
    calls += testing::SendHostileBytes(target, service, 60, rng).calls;
  }
  EXPECT_GT(calls, 400);
  auto fresh = NewClient();
  ASSERT_NE(fresh, nullptr);
  for (int i = 1; i <= 20; ++i) {
    auto r = fresh->Call("incr fresh");
    ASSERT_TRUE(r.ok()) << "call " << i << " of a new client: " << r.status();
    EXPECT_EQ(*r, std::to_string(i));
    EXPECT_EQ(fresh->last().attempts, 1u) << "call " << i << " was not served at once";
  }
  EXPECT_EQ(Must(*before, "incr n"), "2");
}

}  // namespace
}  // namespace vigil::server
