// The SSR store suite: the same tests run on the fake transport (unit tier) and over real verbs
// (rxe tier). The store runs in this process behind a real gRPC bootstrap server on loopback;
// servers are StoreSessions dialling it.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "loopback_channel.h"
#include "transport_conformance.h"
#include "vigil/ssr/session.h"
#include "vigil/ssr/store.h"
#include "vigil/ssr/v1/store.grpc.pb.h"
#include "vigil/transport/bootstrap.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;
using ssr::Grant;
using ssr::StoreSession;
using transport::WcStatus;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

class SsrStoreTest : public TransportFixture {
 protected:
  void SetUp() override {
    TransportFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartStore({});
  }
  void TearDown() override {
    sessions_.clear();
    StopStore();
  }

  void StartStore(ssr::StoreOptions opts) {
    if (opts.arena_bytes == ssr::StoreOptions{}.arena_bytes) opts.arena_bytes = 1 << 20;
    if (opts.capacity == ssr::StoreOptions{}.capacity) opts.capacity = 256;
    auto store = ssr::Store::Create(*t_.a, opts);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    server_ = std::make_unique<transport::BootstrapServer>(*t_.a, "ssr-store",
                                                           transport::ConnectionOptions{});
    store_->Attach(*server_);
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }
  void StopStore() {
    if (server_) server_->Shutdown();
    if (store_) store_->Shutdown();
    store_.reset();
    server_.reset();
  }

  Result<std::unique_ptr<StoreSession>> TryOpen(const std::string& instance,
                                                const std::string& service) {
    ssr::SessionOptions o;
    o.store = "127.0.0.1:" + std::to_string(server_->port());
    o.service = service;
    o.instance = instance;
    o.timeout = 20s;
    return StoreSession::Open(*t_.b, o);
  }

  StoreSession* Open(const std::string& instance, const std::string& service = "kv") {
    auto s = TryOpen(instance, service);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return nullptr;
    sessions_.push_back(std::move(*s));
    return sessions_.back().get();
  }

  // Grants, saves `text` as the client's next state and releases.
  void Put(StoreSession& s, uint64_t client, const std::string& text) {
    auto g = s.Acquire(client, true);
    ASSERT_TRUE(g.ok()) << g.status();
    std::vector<std::byte> mirror(s.region_bytes());
    ASSERT_TRUE(s.Load(*g, mirror).ok());
    auto w = s.Save(*g, mirror, Bytes(text));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE(s.Release(*g).ok());
  }

  // The client's newest valid state as text, or the error's code name.
  std::string Get(StoreSession& s, uint64_t client) {
    auto g = s.Acquire(client, false);
    if (!g.ok()) return std::string(StatusCodeName(g.status().code()));
    std::vector<std::byte> mirror(s.region_bytes());
    Status st = s.Load(*g, mirror);
    EXPECT_TRUE(s.Release(*g).ok());
    if (!st.ok()) return std::string(StatusCodeName(st.code()));
    auto state = ssr::Read(mirror, s.capacity(), s.identity(client));
    if (!state.ok()) return std::string(StatusCodeName(state.status().code()));
    return std::string(reinterpret_cast<const char*>(state->payload.data()), state->payload.size());
  }

  std::unique_ptr<ssr::Store> store_;
  std::unique_ptr<transport::BootstrapServer> server_;
  std::vector<std::unique_ptr<StoreSession>> sessions_;
};

TEST_P(SsrStoreTest, StateWrittenThroughAGrantIsReadBackThroughTheNext) {
  StoreSession* s = Open("server-1");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->capacity(), 256u);
  auto g = s->Acquire(7, true);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(g->created);
  std::vector<std::byte> mirror(s->region_bytes());
  ASSERT_TRUE(s->Load(*g, mirror).ok());
  EXPECT_EQ(ssr::Read(mirror, s->capacity(), s->identity(7)).status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(s->Save(*g, mirror, Bytes("first")).ok());
  auto w = s->Save(*g, mirror, Bytes("second"));  // the other slot: "first" stays intact
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->seq, 2u);
  ASSERT_TRUE(s->Release(*g).ok());
  EXPECT_EQ(Get(*s, 7), "second");
  EXPECT_EQ(Get(*s, 8), "NOT_FOUND");  // never created
  const auto stats = store_->Stats();
  EXPECT_EQ(stats.used, 1u);
  EXPECT_EQ(stats.sessions, 1u);
  EXPECT_EQ(stats.ssr_bytes, ssr::RegionBytes(256));
}

TEST_P(SsrStoreTest, AGrantReachesOnlyItsOwnClientsSsr) {
  StoreSession* s = Open("server-1");
  ASSERT_NE(s, nullptr);
  Put(*s, 1, "client one");
  Put(*s, 2, "client two");
  auto d = store_->RegionOf("kv", 2);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::vector<std::byte> before(d->begin(), d->end());

  // Holding client 1's grant, write into client 2's SSR with client 1's key.
  auto g1 = s->Acquire(1, false);
  ASSERT_TRUE(g1.ok());
  const transport::RemoteAddr into_d{reinterpret_cast<uint64_t>(d->data()), g1->region.rkey};
  auto st = s->ProbeWrite(into_d, 64);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(*st, WcStatus::kRemoteAccessError);
  EXPECT_EQ(0, std::memcmp(before.data(), d->data(), before.size())) << "client 2's SSR changed";
  // The remote access error broke this session (both ends). On a new one, a write straddling the
  // end of client 1's SSR is refused too.
  EXPECT_TRUE(s->broken());
  s = Open("server-2");
  ASSERT_NE(s, nullptr);
  auto g1b = s->Acquire(1, false);
  ASSERT_TRUE(g1b.ok());
  st = s->ProbeWrite({g1b->region.addr + g1b->region.length - 8, g1b->region.rkey}, 64);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(*st, WcStatus::kRemoteAccessError);
  EXPECT_EQ(0, std::memcmp(before.data(), d->data(), before.size())) << "client 2's SSR changed";

  // The store survived both broken connections; a fresh session still sees both states.
  StoreSession* fresh = Open("server-3");
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(Get(*fresh, 1), "client one");
  EXPECT_EQ(Get(*fresh, 2), "client two");
  EXPECT_GE(store_->Stats().sessions_broken, 2u);
}

TEST_P(SsrStoreTest, AKeyIsDeadAfterReleaseAndUselessOnAnotherSession) {
  StoreSession* x = Open("server-x");
  StoreSession* y = Open("server-y");
  ASSERT_TRUE(x && y);
  Put(*x, 5, "five");
  auto g = x->Acquire(5, false);
  ASSERT_TRUE(g.ok());
  // Another server's connection cannot use x's live key (a different protection domain).
  auto st = y->ProbeWrite({g->region.addr, g->region.rkey}, 16);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(*st, WcStatus::kRemoteAccessError);
  // x's own key works until released...
  st = x->ProbeWrite({g->region.addr + g->region.length - 16, g->region.rkey}, 16);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(*st, WcStatus::kSuccess);
  ASSERT_TRUE(x->Release(*g, /*wait=*/true).ok());
  // ...and not after.
  st = x->ProbeWrite({g->region.addr, g->region.rkey}, 16);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(*st, WcStatus::kRemoteAccessError);
  EXPECT_TRUE(x->broken());
}

TEST_P(SsrStoreTest, AGrantToAnotherSessionRevokesTheEarlierOne) {
  StoreSession* x = Open("server-x");
  StoreSession* y = Open("server-y");
  ASSERT_TRUE(x && y);
  Put(*x, 9, "nine");
  auto gx = x->Acquire(9, false);
  ASSERT_TRUE(gx.ok());
  auto gy = y->Acquire(9, false);  // y now serves client 9
  ASSERT_TRUE(gy.ok());
  auto st = x->ProbeWrite({gx->region.addr, gx->region.rkey}, 16);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(*st, WcStatus::kRemoteAccessError);
  EXPECT_EQ(store_->Stats().revoked_by_steal, 1u);
  ASSERT_TRUE(y->Release(*gy).ok());
  EXPECT_EQ(Get(*y, 9), "nine");
}

TEST_P(SsrStoreTest, ARestartedInstanceGetsANewEpochAndReplacesTheOldSession) {
  StoreSession* first = Open("kv-0");
  ASSERT_NE(first, nullptr);
  Put(*first, 3, "three");
  auto held = first->Acquire(3, false);
  ASSERT_TRUE(held.ok());
  const uint64_t epoch = first->epoch();
  StoreSession* second = Open("kv-0");  // the same instance, restarted
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->epoch(), epoch + 1);
  EXPECT_EQ(Get(*second, 3), "three");
  // The old session's grant died with it.
  auto st = first->ProbeWrite({held->region.addr, held->region.rkey}, 16);
  EXPECT_TRUE(!st.ok() || *st != WcStatus::kSuccess);
}

TEST_P(SsrStoreTest, CorruptedSsrIsReportedForThatClientOnly) {
  StoreSession* s = Open("server-1");
  ASSERT_NE(s, nullptr);
  Put(*s, 1, "good");
  Put(*s, 2, "victim v1");
  Put(*s, 2, "victim v2");
  auto region = store_->RegionOf("kv", 2);
  ASSERT_TRUE(region.ok());
  // Flip a payload bit in both slots: neither validates any more.
  (*region)[ssr::kSlotHeaderBytes] ^= std::byte{1};
  (*region)[region->size() / 2 + ssr::kSlotHeaderBytes] ^= std::byte{1};
  EXPECT_EQ(Get(*s, 2), "DATA_LOSS");
  EXPECT_EQ(Get(*s, 1), "good");
}

TEST_P(SsrStoreTest, TornWriteKeepsThePreviousVersion) {
  StoreSession* s = Open("server-1");
  ASSERT_NE(s, nullptr);
  Put(*s, 4, "complete");
  auto g = s->Acquire(4, false);
  ASSERT_TRUE(g.ok());
  std::vector<std::byte> mirror(s->region_bytes());
  ASSERT_TRUE(s->Load(*g, mirror).ok());
  // Prepare the next version locally, but let only its header reach the store (a server that
  // died in the middle of its RDMA WRITE).
  auto w = ssr::Write(mirror, s->capacity(), s->identity(4), s->epoch(), Bytes("never arrives"));
  ASSERT_TRUE(w.ok());
  auto region = store_->RegionOf("kv", 4);
  ASSERT_TRUE(region.ok());
  std::memcpy(region->data() + w->offset, mirror.data() + w->offset, ssr::kSlotHeaderBytes);
  ASSERT_TRUE(s->Release(*g).ok());
  EXPECT_EQ(Get(*s, 4), "complete");
}

TEST_P(SsrStoreTest, ClientsAreListedInPagesAndFreedSsrsDisappear) {
  StoreSession* s = Open("lock-0", "lock");
  StoreSession* other = Open("kv-0", "kv");
  ASSERT_TRUE(s && other);
  for (uint64_t c = 100; c < 140; ++c) {
    auto g = s->Acquire(c, true);
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_TRUE(s->Release(*g).ok());
  }
  Put(*other, 100, "kv's own client 100");
  auto all = s->Clients();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 40u);
  EXPECT_EQ(all->front(), 100u);
  EXPECT_EQ(all->back(), 139u);
  ASSERT_TRUE(s->Free(120).ok());
  EXPECT_EQ(s->Free(120).code(), StatusCode::kNotFound);
  all = s->Clients();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 39u);
  EXPECT_EQ(Get(*other, 100), "kv's own client 100");
}

TEST_P(SsrStoreTest, FullArenaRefusesWithAClearError) {
  StopStore();
  ssr::StoreOptions opts;
  opts.arena_bytes = 16 << 10;
  opts.capacity = 1000;
  StartStore(opts);
  StoreSession* s = Open("server-1");
  ASSERT_NE(s, nullptr);
  const size_t n = store_->Stats().entries;
  ASSERT_GT(n, 0u);
  for (uint64_t c = 0; c < n; ++c) {
    auto g = s->Acquire(c, true);
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_TRUE(s->Release(*g).ok());
  }
  auto g = s->Acquire(n, true);
  EXPECT_EQ(g.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(g.status().message().find("arena full"), std::string::npos) << g.status();
  EXPECT_FALSE(s->broken());
}

TEST_P(SsrStoreTest, AServiceBeyondItsQuotaIsRefusedAndEveryoneElseIsServed) {
  StopStore();
  ssr::StoreOptions opts;
  opts.max_ssrs_per_service = 3;
  StartStore(opts);
  StoreSession* kv = Open("kv-0", "kv");
  StoreSession* lock = Open("lock-0", "lock");
  ASSERT_TRUE(kv && lock);
  for (uint64_t c = 1; c <= 3; ++c) Put(*kv, c, "kv " + std::to_string(c));
  auto g = kv->Acquire(4, true);
  EXPECT_EQ(g.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(g.status().message().find("max_ssrs_per_service"), std::string::npos) << g.status();
  EXPECT_FALSE(kv->broken());
  EXPECT_EQ(Get(*kv, 2), "kv 2");                           // its existing clients are still served
  for (uint64_t c = 1; c <= 3; ++c) Put(*lock, c, "lock");  // the quota is per service
  ASSERT_TRUE(kv->Free(1).ok());
  Put(*kv, 4, "kv 4");  // room again after a free
  EXPECT_EQ(Get(*kv, 4), "kv 4");
}

TEST_P(SsrStoreTest, SessionsBeyondTheCapAreRefusedAndTheOpenOnesServed) {
  StopStore();
  ssr::StoreOptions opts;
  opts.max_sessions = 2;
  StartStore(opts);
  StoreSession* kv = Open("kv-0", "kv");
  auto other = TryOpen("lock-0", "lock");
  ASSERT_TRUE(kv && other.ok());
  // A peer that keeps trying: 1,000 attempts (200 over verbs, where each costs a queue pair's
  // set-up). The store's threads and queue pairs (one per session) stay where they were.
  const int attempts = GetParam().name == "Fake" ? 1000 : 200;
  const auto threads = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                         std::filesystem::directory_iterator{});
  };
  const auto threads_before = threads();
  for (int i = 0; i < attempts; ++i) {
    auto more = TryOpen("kv-" + std::to_string(i + 1), "kv");
    ASSERT_FALSE(more.ok());
    EXPECT_EQ(more.status().code(), StatusCode::kResourceExhausted) << more.status();
    EXPECT_NE(more.status().message().find("max_sessions"), std::string::npos) << more.status();
  }
  const auto threads_after = threads();
  std::printf("%d refused session attempts: %ld threads before, %ld after; %zu sessions\n",
              attempts, static_cast<long>(threads_before), static_cast<long>(threads_after),
              store_->Stats().sessions);
  // (gRPC may keep a few more pollers around; 1,000 leaked sessions would be 1,000 threads.)
  EXPECT_LE(threads_after, threads_before + 8);
  EXPECT_EQ(store_->Stats().sessions, 2u);
  Put(*kv, 1, "still served");
  EXPECT_EQ(Get(*kv, 1), "still served");
  other->reset();  // a closed session makes room
  for (int i = 0; i < 500 && store_->Stats().sessions > 1; ++i) std::this_thread::sleep_for(10ms);
  auto again = TryOpen("lock-1", "lock");
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_P(SsrStoreTest, AVanishedServersSessionIsProbedAndEndsWhileAnIdleOneLives) {
  StopStore();
  ssr::StoreOptions opts;
  opts.probe_idle_ms = 100;
  opts.max_sessions = 2;
  StartStore(opts);
  StoreSession* idle = Open("lock-0", "lock");
  StoreSession* gone = Open("kv-0", "kv");
  ASSERT_TRUE(idle && gone);
  Put(*gone, 1, "kv's state");
  auto held = gone->Acquire(2, true);  // a grant the vanished server never releases
  ASSERT_TRUE(held.ok()) << held.status();
  gone->Abandon();  // its process died: no close reaches the store
  // The probe finds it gone (at once on the fake transport; over verbs once the store's
  // retries to its destroyed queue pair run out): the session ends, its grant is revoked.
  for (int i = 0; i < 3000 && store_->Stats().sessions > 1; ++i) std::this_thread::sleep_for(10ms);
  const ssr::StoreStats st = store_->Stats();
  EXPECT_EQ(st.sessions, 1u);
  EXPECT_EQ(st.grants, 0u);
  EXPECT_GE(st.probes_failed, 1u);
  EXPECT_GE(st.sessions_broken, 1u);
  // The slot it held under max_sessions is free again, and its state is intact.
  StoreSession* again = Open("kv-1", "kv");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(Get(*again, 1), "kv's state");
  // The idle server was probed too, and still works.
  std::this_thread::sleep_for(500ms);
  EXPECT_GE(store_->Stats().probes - store_->Stats().probes_failed, 2u);
  EXPECT_FALSE(idle->broken());
  Put(*idle, 5, "still served");
  EXPECT_EQ(Get(*idle, 5), "still served");
}

TEST_P(SsrStoreTest, AServiceRowIsReusedOnlyWhenItHoldsNoSsrAndServesNoSession) {
  StopStore();
  ssr::StoreOptions opts;
  opts.max_services = 2;
  StartStore(opts);
  auto a = TryOpen("a-0", "a");
  ASSERT_TRUE(a.ok()) << a.status();
  Put(**a, 1, "a's state");
  auto b = TryOpen("b-0", "b");
  ASSERT_TRUE(b.ok()) << b.status();
  auto full = TryOpen("c-0", "c");
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted) << full.status();
  EXPECT_NE(full.status().message().find("max_services"), std::string::npos) << full.status();
  // Sessions end on the store's side shortly after the server's side closes.
  auto closed = [&](size_t left) {
    for (int i = 0; i < 500 && store_->Stats().sessions > left; ++i)
      std::this_thread::sleep_for(10ms);
    return store_->Stats().sessions == left;
  };
  b->reset();  // b held no SSR: its row is free once its session is gone
  ASSERT_TRUE(closed(1));
  auto c = TryOpen("c-0", "c");
  ASSERT_TRUE(c.ok()) << c.status();
  a->reset();  // a's row still holds an SSR: never reused
  ASSERT_TRUE(closed(1));
  auto d = TryOpen("d-0", "d");
  EXPECT_EQ(d.status().code(), StatusCode::kResourceExhausted) << d.status();
  auto again = TryOpen("a-1", "a");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Get(**again, 1), "a's state");
}

TEST_P(SsrStoreTest, FileBackedArenaSurvivesAStoreRestart) {
  StopStore();
  const std::string file = ::testing::TempDir() + "vigil-ssr-arena-" + std::to_string(getpid());
  std::filesystem::remove(file);
  ssr::StoreOptions opts;
  opts.arena_bytes = 1 << 20;
  opts.capacity = 256;
  opts.arena_file = file;
  StartStore(opts);
  // A second store on the same file is refused, naming the holder.
  auto second = ssr::Store::Create(*t_.a, opts);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another SSR store (pid " +
                                           std::to_string(getpid()) + ", this process)"),
            std::string::npos)
      << second.status();
  StoreSession* s = Open("server-1");
  ASSERT_NE(s, nullptr);
  Put(*s, 11, "kept across restarts");
  const uint64_t epoch = s->epoch();
  sessions_.clear();
  StopStore();
  StartStore(opts);
  EXPECT_TRUE(store_->restored());
  s = Open("server-1");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->epoch(), epoch + 1);
  EXPECT_EQ(Get(*s, 11), "kept across restarts");
  sessions_.clear();
  StopStore();
  opts.capacity = 512;  // a different geometry is refused, naming both
  auto bad = ssr::Store::Create(*t_.a, opts);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find("capacity 256"), std::string::npos) << bad.status();
  std::filesystem::remove(file);
}

TEST_P(SsrStoreTest, ControlServiceReportsServicesAndSessions) {
  StoreSession* s = Open("kv-0");
  ASSERT_NE(s, nullptr);
  Put(*s, 1, "one");
  Put(*s, 2, "two");
  auto stub = ssr::v1::SsrStore::NewStub(
      vigil::testing::LoopbackChannel("127.0.0.1:" + std::to_string(server_->port())));
  grpc::ClientContext ctx;
  ssr::v1::StatusResponse r;
  ASSERT_TRUE(stub->Status(&ctx, ssr::v1::StatusRequest{}, &r).ok());
  EXPECT_EQ(r.used(), 2u);
  EXPECT_EQ(r.capacity(), 256u);
  EXPECT_EQ(r.grants_total(), 2u);
  ASSERT_EQ(r.services_size(), 1);
  EXPECT_EQ(r.services(0).name(), "kv");
  EXPECT_EQ(r.services(0).clients(), 2u);
  EXPECT_EQ(r.services(0).epoch(), s->epoch());
  ASSERT_EQ(r.sessions_size(), 1);
  EXPECT_EQ(r.sessions(0).instance(), "kv-0");
}

TEST_P(SsrStoreTest, MalformedRequestsAreRefusedAndTheStoreCarriesOn) {
  // A raw session that sends garbage, then an oversized message.
  auto msgs = transport::RegisteredBuffer::Allocate(*t_.b, 4096, transport::kLocalWrite);
  ASSERT_TRUE(msgs.ok());
  transport::DialOptions dial;
  dial.target = "127.0.0.1:" + std::to_string(server_->port());
  dial.service = std::string(ssr::kBootstrapService);
  dial.node_name = "rogue";
  dial.before_connect = [&](transport::Connection& c) {
    return c.PostRecv(msgs->mr().Slice(2048, ssr::wire::kReplyBytes), 1);
  };
  auto rogue = transport::Dial(*t_.b, dial);
  ASSERT_TRUE(rogue.ok()) << rogue.status();
  auto& conn = *rogue->connection;
  std::memset(msgs->data(), 0x5a, ssr::wire::kRequestBytes);
  ASSERT_TRUE(conn.PostSend(msgs->mr().Slice(0, ssr::wire::kRequestBytes), 1).ok());
  auto c = conn.WaitRecv(20s);
  ASSERT_TRUE(c.ok()) << c.status();
  auto reply = ssr::wire::DecodeReply(std::span<const std::byte>(msgs->data() + 2048, c->byte_len));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->code, StatusCode::kDataLoss);
  EXPECT_NE(reply->message.find("bad magic"), std::string::npos) << reply->message;
  // Oversized: larger than the store's receive buffer, which breaks this connection only.
  ASSERT_TRUE(conn.PostSend(msgs->mr().Slice(0, 1024), 2).ok());
  StoreSession* s = Open("server-1");
  ASSERT_NE(s, nullptr);
  Put(*s, 1, "still fine");
  EXPECT_EQ(Get(*s, 1), "still fine");
  EXPECT_GE(store_->Stats().bad_requests, 1u);
}

INSTANTIATE_TEST_SUITE_P(Transports, SsrStoreTest, ::testing::ValuesIn(ConformanceFactories()),
                         FactoryName);

}  // namespace
}  // namespace vigil::testing
