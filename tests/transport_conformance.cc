#include "transport_conformance.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

#include "rdma_env.h"
#include "vigil/transport/transport.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;
using transport::Completion;
using transport::Connection;
using transport::ConnectionOptions;
using transport::Opcode;
using transport::RegisteredBuffer;
using transport::WcStatus;

constexpr auto kWait = 30s;  // generous: the rxe tier runs under software emulation

// A connected pair of connections, each with a 64 KiB buffer exposed to the other.
struct Pair {
  TransportPair t;
  std::unique_ptr<Connection> a, b;
  std::unique_ptr<RegisteredBuffer> abuf, bbuf;
};

void Fill(RegisteredBuffer& buf, uint8_t seed) {
  for (size_t i = 0; i < buf.size(); ++i)
    buf.data()[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
}

class Conformance : public TransportFixture {
 protected:
  void SetUp() override {
    TransportFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    p_.t = t_;
    ConnectionOptions opts;
    opts.sq_depth = 64;
    opts.rq_depth = 64;
    opts.signal_every = 16;
    opts.name = "a";
    auto a = p_.t.a->CreateConnection(opts);
    ASSERT_TRUE(a.ok()) << a.status();
    opts.name = "b";
    auto b = p_.t.b->CreateConnection(opts);
    ASSERT_TRUE(b.ok()) << b.status();
    p_.a = std::move(*a);
    p_.b = std::move(*b);
    auto abuf = RegisteredBuffer::Allocate(*p_.t.a, 64 << 10, transport::kAllAccess);
    ASSERT_TRUE(abuf.ok()) << abuf.status();
    auto bbuf = RegisteredBuffer::Allocate(*p_.t.b, 64 << 10, transport::kAllAccess);
    ASSERT_TRUE(bbuf.ok()) << bbuf.status();
    p_.abuf = std::make_unique<RegisteredBuffer>(std::move(*abuf));
    p_.bbuf = std::make_unique<RegisteredBuffer>(std::move(*bbuf));
    ASSERT_TRUE(p_.a->Connect(p_.b->local_endpoint()).ok());
    ASSERT_TRUE(p_.b->Connect(p_.a->local_endpoint()).ok());
  }

  transport::RemoteAddr BAt(uint64_t offset, uint64_t len) {
    auto r = p_.bbuf->mr().Describe("b").At(offset, len);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : transport::RemoteAddr{};
  }

  Completion WaitSend() {
    auto c = p_.a->WaitSend(kWait);
    EXPECT_TRUE(c.ok()) << c.status();
    Completion failed;
    failed.status = WcStatus::kOther;
    failed.status_text = "test helper: wait failed";
    return c.ok() ? *c : failed;
  }

  Pair p_;
};

TEST_P(Conformance, WriteLandsInRemoteMemoryInlineAndNot) {
  Fill(*p_.abuf, 3);
  for (size_t len : {size_t{8}, size_t{64}, size_t{4096}, size_t{60000}}) {
    std::memset(p_.bbuf->data(), 0, p_.bbuf->size());
    ASSERT_TRUE(p_.a->PostWrite(p_.abuf->mr().Slice(16, len), BAt(100, len), len).ok());
    Completion c = WaitSend();
    EXPECT_TRUE(c.ok()) << c.ToStatus("a");
    EXPECT_EQ(c.wr_id, len);
    EXPECT_EQ(c.opcode, Opcode::kWrite);
    EXPECT_EQ(0, std::memcmp(p_.bbuf->data() + 100, p_.abuf->data() + 16, len)) << "len " << len;
    EXPECT_EQ(p_.bbuf->data()[99], std::byte{0});
    EXPECT_EQ(p_.bbuf->data()[100 + len], std::byte{0});
  }
}

TEST_P(Conformance, UnsignaledWritesDrainThroughPeriodicSignals) {
  // 500 unsignaled writes through a 64-deep send queue: only works if the connection signals
  // every signal_every-th WR by itself and retires the queue on polling.
  Fill(*p_.abuf, 9);
  int exhausted = 0;
  for (uint32_t i = 0; i < 500; ++i) {
    transport::SendFlags flags;
    flags.signaled = false;
    Status st = p_.a->PostWrite(p_.abuf->mr().Slice(i * 64, 64), BAt(i * 64, 64), i, flags);
    while (st.code() == StatusCode::kResourceExhausted) {
      exhausted++;
      Completion cs[8];
      size_t n = p_.a->PollSend(cs);
      for (size_t k = 0; k < n; ++k) ASSERT_TRUE(cs[k].ok()) << cs[k].ToStatus("a");
      st = p_.a->PostWrite(p_.abuf->mr().Slice(i * 64, 64), BAt(i * 64, 64), i, flags);
    }
    ASSERT_TRUE(st.ok()) << st;
    Completion cs[8];
    for (size_t n = p_.a->PollSend(cs), k = 0; k < n; ++k) {
      ASSERT_TRUE(cs[k].ok()) << cs[k].ToStatus("a");
      ADD_FAILURE() << "internal signaled completion leaked to the caller: wr_id " << cs[k].wr_id;
    }
  }
  ASSERT_TRUE(p_.a->PostWrite(p_.abuf->mr().Slice(0, 8), BAt(40000, 8), 777).ok());
  Completion c = WaitSend();
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.wr_id, 777u);  // the internal completions stay internal
  EXPECT_EQ(0, std::memcmp(p_.bbuf->data(), p_.abuf->data(), 500 * 64));
  RecordProperty("send_queue_full_retries", exhausted);
}

TEST_P(Conformance, WriteWithImmWakesABlockedReceiver) {
  ASSERT_TRUE(p_.b->PostRecv(p_.bbuf->mr().Slice(0, 0), 55).ok());
  Fill(*p_.abuf, 1);
  transport::SendFlags flags;
  flags.imm = 0xC0FFEE01u;
  ASSERT_TRUE(p_.a->PostWrite(p_.abuf->mr().Slice(0, 512), BAt(1024, 512), 5, flags).ok());
  auto r = p_.b->WaitRecv(kWait);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok()) << r->ToStatus("b");
  EXPECT_EQ(r->opcode, Opcode::kRecvWithImm);
  EXPECT_EQ(r->wr_id, 55u);
  ASSERT_TRUE(r->has_imm);
  EXPECT_EQ(r->imm, 0xC0FFEE01u);
  EXPECT_EQ(0, std::memcmp(p_.bbuf->data() + 1024, p_.abuf->data(), 512));
  EXPECT_TRUE(WaitSend().ok());
}

TEST_P(Conformance, SendIsReceivedIntoPostedBuffer) {
  ASSERT_TRUE(p_.b->PostRecv(p_.bbuf->mr().Slice(2048, 1024), 9).ok());
  const char msg[] = "vigil says hello over a reliable connection";
  std::memcpy(p_.abuf->data(), msg, sizeof(msg));
  ASSERT_TRUE(p_.a->PostSend(p_.abuf->mr().Slice(0, sizeof(msg)), 4).ok());
  auto r = transport::WaitRecvOk(*p_.b, kWait);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->opcode, Opcode::kRecv);
  EXPECT_EQ(r->byte_len, sizeof(msg));
  EXPECT_FALSE(r->has_imm);
  EXPECT_STREQ(reinterpret_cast<const char*>(p_.bbuf->data() + 2048), msg);
  EXPECT_TRUE(transport::WaitSendOk(*p_.a, kWait).ok());
}

TEST_P(Conformance, SendBeforeReceiveIsPostedWaitsForIt) {
  std::memcpy(p_.abuf->data(), "early", 6);
  ASSERT_TRUE(p_.a->PostSend(p_.abuf->mr().Slice(0, 6), 1).ok());
  auto none = p_.b->WaitRecv(50ms);
  EXPECT_EQ(none.status().code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(p_.b->PostRecv(p_.bbuf->mr().Slice(0, 64), 2).ok());
  auto r = transport::WaitRecvOk(*p_.b, kWait);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_STREQ(reinterpret_cast<const char*>(p_.bbuf->data()), "early");
}

// RC semantics for a SEND that does not fit the receive it lands in, whichever comes first: both
// ends get an error completion and nothing is written past the receive buffer. Which statuses is
// device-specific (ConnectX: local length / remote invalid request; rxe: local QP operation /
// remote operation error), so only "an error, naming it" is required.
void SendLargerThanTheReceive(Pair& p, bool receive_first) {
  std::memset(p.bbuf->data(), 0, 256);
  std::memset(p.abuf->data(), 0x77, 256);
  if (receive_first) {
    ASSERT_TRUE(p.b->PostRecv(p.bbuf->mr().Slice(0, 16), 1).ok());
  }
  ASSERT_TRUE(p.a->PostSend(p.abuf->mr().Slice(0, 200), 2).ok());
  if (!receive_first) {
    std::this_thread::sleep_for(50ms);  // the SEND waits for a receive (RNR retry)
    ASSERT_TRUE(p.b->PostRecv(p.bbuf->mr().Slice(0, 16), 1).ok());
  }
  auto r = p.b->WaitRecv(kWait);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->ok()) << "the receiver must see an error";
  EXPECT_EQ(r->wr_id, 1u);
  auto s = p.a->WaitSend(kWait);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->ok()) << "the sender must see an error";
  EXPECT_EQ(s->wr_id, 2u);
  EXPECT_NE(s->ToStatus("a").message().find("wr_id=2 failed"), std::string::npos);
  for (size_t i = 16; i < 256; ++i) {
    ASSERT_EQ(p.bbuf->data()[i], std::byte{0}) << "byte " << i << " past the receive buffer";
  }
}

TEST_P(Conformance, SendLargerThanAPostedReceiveBreaksBothEnds) {
  SendLargerThanTheReceive(p_, /*receive_first=*/true);
}

TEST_P(Conformance, SendLargerThanALaterReceiveBreaksBothEnds) {
  SendLargerThanTheReceive(p_, /*receive_first=*/false);
}

TEST_P(Conformance, ReadFetchesRemoteMemory) {
  Fill(*p_.bbuf, 42);
  ASSERT_TRUE(p_.a->PostRead(p_.abuf->mr().Slice(0, 3000), BAt(500, 3000), 11).ok());
  Completion c = WaitSend();
  ASSERT_TRUE(c.ok()) << c.ToStatus("a");
  EXPECT_EQ(c.opcode, Opcode::kRead);
  EXPECT_EQ(0, std::memcmp(p_.abuf->data(), p_.bbuf->data() + 500, 3000));
}

TEST_P(Conformance, WrongRkeyIsRemoteAccessErrorAndBreaksTheConnection) {
  auto dst = BAt(0, 64);
  dst.rkey ^= 0x5a5a00;  // a key the peer never issued
  ASSERT_TRUE(p_.a->PostWrite(p_.abuf->mr().Slice(0, 64), dst, 21).ok());
  Completion c = WaitSend();
  EXPECT_EQ(c.status, WcStatus::kRemoteAccessError);
  Status st = c.ToStatus("a");
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("remote access error"), std::string::npos) << st;
  EXPECT_NE(st.message().find("wr_id=21"), std::string::npos) << st;
  // RC semantics: the connection is now unusable; further work fails, never hangs.
  Status again = p_.a->PostWrite(p_.abuf->mr().Slice(0, 8), BAt(0, 8), 22);
  if (again.ok()) {
    EXPECT_FALSE(WaitSend().ok());
  } else {
    EXPECT_NE(again.code(), StatusCode::kOk);
  }
}

TEST_P(Conformance, WritePastTheRegionEndIsRejectedAndNothingLands) {
  // Register only the first 4 KiB of the peer buffer; the bytes after it are a guard area.
  auto small = p_.t.b->Register(p_.bbuf->data(), 4096, transport::kAllAccess);
  ASSERT_TRUE(small.ok()) << small.status();
  std::memset(p_.bbuf->data(), 0, 8192);
  Fill(*p_.abuf, 77);
  transport::RemoteAddr dst{reinterpret_cast<uint64_t>(p_.bbuf->data()) + 4096 - 32,
                            (*small)->rkey()};
  ASSERT_TRUE(p_.a->PostWrite(p_.abuf->mr().Slice(0, 256), dst, 31).ok());
  Completion c = WaitSend();
  EXPECT_EQ(c.status, WcStatus::kRemoteAccessError) << c.ToStatus("a");
  for (size_t i = 4096; i < 8192; ++i)
    ASSERT_EQ(p_.bbuf->data()[i], std::byte{0}) << "guard byte " << i;
}

TEST_P(Conformance, ReadFromWriteOnlyRegionIsRejected) {
  auto wo = p_.t.b->Register(p_.bbuf->data(), 4096, transport::kRemoteWrite);
  ASSERT_TRUE(wo.ok()) << wo.status();
  transport::RemoteAddr src{reinterpret_cast<uint64_t>(p_.bbuf->data()), (*wo)->rkey()};
  ASSERT_TRUE(p_.a->PostRead(p_.abuf->mr().Slice(0, 64), src, 41).ok());
  EXPECT_EQ(WaitSend().status, WcStatus::kRemoteAccessError);
}

TEST_P(Conformance, RegistrationIsUsableOnlyThroughItsOwnProtectionDomain) {
  // Side b gets two fresh domains, each with a connection to a connection of side a, and one
  // registration of the same bytes in domain 1. Its key works through domain 1's connection;
  // through domain 2's it is a remote access error, and nothing lands.
  auto d1 = p_.t.b->CreateDomain();
  ASSERT_TRUE(d1.ok()) << d1.status();
  auto d2 = p_.t.b->CreateDomain();
  ASSERT_TRUE(d2.ok()) << d2.status();
  ConnectionOptions opts;
  opts.sq_depth = 16;
  opts.rq_depth = 16;
  auto make_pair =
      [&](transport::ProtectionDomain& d,
          const char* name) -> std::pair<std::unique_ptr<Connection>, std::unique_ptr<Connection>> {
    opts.name = name;
    auto mine = p_.t.a->CreateConnection(opts);
    auto theirs = d.CreateConnection(opts);
    EXPECT_TRUE(mine.ok() && theirs.ok());
    if (!mine.ok() || !theirs.ok()) return {};
    EXPECT_TRUE((*mine)->Connect((*theirs)->local_endpoint()).ok());
    EXPECT_TRUE((*theirs)->Connect((*mine)->local_endpoint()).ok());
    return {std::move(*mine), std::move(*theirs)};
  };
  auto [a1, b1] = make_pair(**d1, "a-to-domain1");
  auto [a2, b2] = make_pair(**d2, "a-to-domain2");
  ASSERT_TRUE(a1 && a2);
  auto mr = (*d1)->Register(p_.bbuf->data(), 4096, transport::kAllAccess);
  ASSERT_TRUE(mr.ok()) << mr.status();
  const transport::RemoteAddr dst{reinterpret_cast<uint64_t>(p_.bbuf->data()), (*mr)->rkey()};
  std::memset(p_.bbuf->data(), 0, 4096);
  Fill(*p_.abuf, 5);

  ASSERT_TRUE(a2->PostWrite(p_.abuf->mr().Slice(0, 64), dst, 61).ok());
  auto c2 = a2->WaitSend(kWait);
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(c2->status, WcStatus::kRemoteAccessError) << c2->ToStatus("a-to-domain2");
  for (size_t i = 0; i < 64; ++i) ASSERT_EQ(p_.bbuf->data()[i], std::byte{0}) << "byte " << i;

  ASSERT_TRUE(a1->PostWrite(p_.abuf->mr().Slice(0, 64), dst, 62).ok());
  auto c1 = a1->WaitSend(kWait);
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_TRUE(c1->ok()) << c1->ToStatus("a-to-domain1");
  EXPECT_EQ(0, std::memcmp(p_.bbuf->data(), p_.abuf->data(), 64));

  // Deregistration revokes the key at once, on the connection it was valid for.
  mr->reset();
  ASSERT_TRUE(a1->PostWrite(p_.abuf->mr().Slice(0, 64), dst, 63).ok());
  c1 = a1->WaitSend(kWait);
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_EQ(c1->status, WcStatus::kRemoteAccessError) << c1->ToStatus("a-to-domain1");
}

TEST_P(Conformance, PeerGoneFailsInBoundedTime) {
  p_.b.reset();  // the peer's queue pair is destroyed: nothing will ever acknowledge
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      p_.a->PostWrite(p_.abuf->mr().Slice(0, 64), transport::RemoteAddr{0x1000, 1}, 51).ok());
  Completion c = WaitSend();
  const auto took = std::chrono::steady_clock::now() - start;
  // Real NICs report retry-exceeded; where the device never does (rxe on 6.1), the watchdog must.
  EXPECT_TRUE(c.status == WcStatus::kRetryExceeded || c.status == WcStatus::kPeerTimeout)
      << c.ToStatus("a");
  EXPECT_EQ(c.ToStatus("a").code(), StatusCode::kUnavailable);
  EXPECT_LT(took, kWait);
  RecordProperty(
      "peer_gone_detect_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

TEST_P(Conformance, BadLocalSliceIsRejectedAtPost) {
  Status st = p_.a->PostWrite(p_.abuf->mr().Slice(p_.abuf->size() - 4, 8), BAt(0, 8), 1);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st;
  st = p_.a->PostRecv(transport::LocalSlice{}, 1);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st;
}

TEST_P(Conformance, WaitRespectsItsTimeout) {
  const auto start = std::chrono::steady_clock::now();
  auto r = p_.a->WaitRecv(100ms);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
}

TEST_P(Conformance, RemoteRegionBoundsAreCheckedLocally) {
  auto region = p_.bbuf->mr().Describe("b");
  EXPECT_TRUE(region.At(0, region.length).ok());
  EXPECT_EQ(region.At(1, region.length).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(region.At(UINT64_MAX, 2).status().code(), StatusCode::kOutOfRange);
}

INSTANTIATE_TEST_SUITE_P(Transports, Conformance, ::testing::ValuesIn(ConformanceFactories()),
                         FactoryName);

}  // namespace
Result<ConnectionPair> MakeConnections(const TransportPair& t,
                                       std::shared_ptr<transport::FaultInjector> faults) {
  ConnectionPair p;
  VIGIL_ASSIGN_OR_RETURN(p.replica, t.a->CreateConnection({.name = "replica"}));
  VIGIL_ASSIGN_OR_RETURN(p.voter, t.b->CreateConnection({.name = "voter"}));
  if (faults) {
    VIGIL_ASSIGN_OR_RETURN(p.replica, transport::FaultInjectingConnection::Wrap(
                                          std::move(p.replica), std::move(faults), *t.a));
  }
  return p;
}

Status ConnectBoth(ConnectionPair& p) {
  VIGIL_RETURN_IF_ERROR(p.replica->Connect(p.voter->local_endpoint()));
  return p.voter->Connect(p.replica->local_endpoint());
}

}  // namespace vigil::testing
