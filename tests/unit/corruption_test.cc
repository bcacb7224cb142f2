// Every decoder of bytes that come from another process, over the wire or read from remote
// memory, fed corrupted and hostile input: every bit flipped in turn, random mutations, and
// records whose CRC a faulty peer computed correctly over wrong fields. A decoder either rejects
// the bytes with an error that says what is wrong, or returns something that lies within the bytes
// it was given and encodes back to what was decoded. (The asan tier runs this under
// AddressSanitizer, which catches a read outside the bytes.)
//
// The random cases use fixed seeds, so a failure reproduces; the failing seed and iteration are
// in the message.
#include <gtest/gtest.h>
#include <isa-l/crc.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vigil/channel/record.h"
#include "vigil/common/text.h"
#include "vigil/replica/protocol.h"
#include "vigil/server/framework.h"
#include "vigil/ssr/slot.h"
#include "vigil/ssr/wire.h"

namespace vigil {
namespace {

using Bytes = std::vector<std::byte>;
using Rng = std::mt19937_64;

constexpr int kIterations = 20000;

Bytes RandomBytes(Rng& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

template <typename T>
void PutAt(Bytes& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

// One to four random changes: a bit flipped, a byte replaced, a 32-bit word set to a value that
// trips bounds checks (0, 1, all ones, the top bit, the buffer's size and one more), the end cut
// off (rarely) or bytes appended (rarely).
void Mutate(Bytes& b, Rng& rng) {
  const int changes = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < changes; ++i) {
    const unsigned what = rng() % 16;
    if (b.empty() || what == 14) {
      const Bytes more = RandomBytes(rng, 1 + rng() % 16);
      b.insert(b.end(), more.begin(), more.end());
    } else if (what == 15) {
      b.resize(rng() % b.size());
    } else if (what < 6) {
      b[rng() % b.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
    } else if (what < 10) {
      b[rng() % b.size()] = static_cast<std::byte>(rng());
    } else if (b.size() >= 4) {
      const uint32_t size = static_cast<uint32_t>(b.size());
      const uint32_t values[] = {0, 1, 0xffffffffu, 0x80000000u, size, size + 1};
      PutAt<uint32_t>(b, rng() % (b.size() - 3), values[rng() % 6]);
    }
  }
}

bool Within(std::span<const std::byte> inner, std::span<const std::byte> outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// --- the event record every signalling method carries (channel/record.h) ---

constexpr uint64_t kSeq = 1234;
constexpr size_t kMaxPayload = 64;

Bytes EncodedRecord(uint16_t kind, std::span<const std::byte> payload) {
  Bytes b(channel::kRecordHeaderBytes + payload.size());
  channel::EncodeRecord(b, kSeq, kind, 3, payload);
  return b;
}

TEST(WireRecord, EveryFlippedBitIsRejected) {
  Rng rng(1);
  const Bytes payload = RandomBytes(rng, 37);
  Bytes b = EncodedRecord(6, payload);
  ASSERT_TRUE(channel::DecodeRecord(b, kSeq, kMaxPayload, "signal ring", 3).ok());
  for (size_t bit = 0; bit < 8 * b.size(); ++bit) {
    b[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    auto r = channel::DecodeRecord(b, kSeq, kMaxPayload, "signal ring", 3);
    ASSERT_FALSE(r.ok()) << "bit " << bit << " flipped and the record was accepted";
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(r.status().message().rfind("signal ring slot 3", 0), 0u) << r.status();
    b[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
  }
}

// A faulty peer can compute a correct CRC over a wrong header: the length, sequence and reserved
// bytes must be checked on their own. The model says which records are acceptable.
TEST(WireRecord, HeadersWithACorrectCrcAreCheckedFieldByField) {
  Rng rng(2);
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    const size_t available = rng() % (kMaxPayload + 16);
    const uint32_t lengths[] = {0,
                                static_cast<uint32_t>(available),
                                static_cast<uint32_t>(available + 1),
                                static_cast<uint32_t>(rng() % (kMaxPayload + 16)),
                                kMaxPayload,
                                kMaxPayload + 1,
                                0x7fffffffu,
                                0xffffffffu};
    const uint64_t seqs[] = {kSeq, kSeq, kSeq + 1, kSeq - 1, rng()};
    const uint32_t len = lengths[rng() % 8];
    const uint64_t seq = seqs[rng() % 5];
    const uint32_t reserved = rng() % 4 == 0 ? static_cast<uint32_t>(rng() | 1) : 0;
    Bytes b = RandomBytes(rng, channel::kRecordHeaderBytes + available);
    PutAt<uint64_t>(b, 0, seq);
    PutAt<uint32_t>(b, 8, len);
    PutAt<uint32_t>(b, 20, reserved);
    if (len <= available) {  // a CRC over bytes that are there, as a faulty peer would compute it
      auto* p = reinterpret_cast<unsigned char*>(b.data());
      uint32_t crc = crc32_iscsi(p, 16, 0xFFFFFFFF);
      crc = crc32_iscsi(p + channel::kRecordHeaderBytes, static_cast<int>(len), crc);
      PutAt<uint32_t>(b, 16, crc);
    }
    const bool acceptable = seq == kSeq && len <= kMaxPayload && len <= available && reserved == 0;
    auto r = channel::DecodeRecord(b, kSeq, kMaxPayload, "signal ring");
    ASSERT_EQ(r.ok(), acceptable) << "iteration " << i << ": seq " << seq << ", len " << len
                                  << " of " << available << ", reserved " << reserved << ": "
                                  << (r.ok() ? "accepted" : r.status().ToString());
    if (!r.ok()) continue;
    ++accepted;
    EXPECT_EQ(r->payload.size(), len);
    EXPECT_EQ(r->payload.data(), b.data() + channel::kRecordHeaderBytes);
  }
  EXPECT_GT(accepted, kIterations / 20);  // the model's acceptable records were reached too
}

TEST(WireRecord, RandomMutationsAreRejectedOrStayWithinTheBytes) {
  Rng rng(3);
  int accepted = 0, rejected = 0;
  for (int i = 0; i < kIterations; ++i) {
    Bytes b = EncodedRecord(6, RandomBytes(rng, rng() % kMaxPayload));
    Mutate(b, rng);
    auto r = channel::DecodeRecord(b, kSeq, kMaxPayload, "signal ring");
    if (r.ok()) {
      ++accepted;
      ASSERT_TRUE(Within(r->payload, b)) << "iteration " << i;
      ASSERT_LE(r->payload.size(), kMaxPayload);
    } else {
      ++rejected;
      ASSERT_FALSE(r.status().message().empty());
    }
  }
  // Both outcomes were reached: a decoder that refused everything (or nothing) would fail here.
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, kIterations / 2);
}

// --- events and verdicts inside a record (replica/protocol.h) ---

// Any kind, any payload size, group, replica and reserved field: accepted exactly when the model
// says so, and then the data is the payload after the header.
TEST(WireProtocol, EventsAreAcceptedExactlyWhenEveryFieldChecks) {
  Rng rng(4);
  constexpr uint32_t kGroup = 9;
  constexpr uint16_t kReplica = 2;
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    replica::EventHeader h;
    h.group = rng() % 4 == 0 ? static_cast<uint32_t>(rng()) : kGroup;
    h.replica = rng() % 4 == 0 ? static_cast<uint16_t>(rng() % 4) : kReplica;
    h.reserved = rng() % 8 == 0 ? static_cast<uint16_t>(rng() | 1) : 0;
    h.event_seq = rng();
    h.arg0 = rng();
    Bytes payload = RandomBytes(rng, replica::kEventHeaderBytes + rng() % 32);
    std::memcpy(payload.data(), &h, sizeof(h));
    payload.resize(rng() % 8 == 0 ? rng() % replica::kEventHeaderBytes : payload.size());
    const uint16_t kind = static_cast<uint16_t>(rng() % 24);
    const channel::Record rec{kSeq, kind, 0, payload};
    const bool acceptable = kind >= 1 && kind <= 7 &&
                            payload.size() >= replica::kEventHeaderBytes && h.group == kGroup &&
                            h.replica == kReplica && h.reserved == 0;
    auto e = replica::DecodeEvent(rec, kGroup, kReplica);
    ASSERT_EQ(e.ok(), acceptable) << "iteration " << i << ": kind " << kind << ", "
                                  << payload.size() << " bytes, group " << h.group << ", replica "
                                  << h.replica << ", reserved " << h.reserved << ": "
                                  << (e.ok() ? "accepted" : e.status().ToString());
    if (!e.ok()) {
      EXPECT_NE(e.status().message().find("event from replica 2 of group 9"), std::string::npos)
          << e.status();
      continue;
    }
    EXPECT_EQ(e->header.event_seq, h.event_seq);
    EXPECT_EQ(e->header.arg0, h.arg0);
    EXPECT_EQ(e->data.data(), payload.data() + replica::kEventHeaderBytes);
    EXPECT_EQ(e->data.size(), payload.size() - replica::kEventHeaderBytes);
    ++accepted;
  }
  EXPECT_GT(accepted, kIterations / 50);  // the model's acceptable events were reached
}

TEST(WireProtocol, VerdictsAreAcceptedExactlyWhenEveryFieldChecks) {
  Rng rng(5);
  constexpr uint64_t kEvent = 77;
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    replica::VerdictHeader h;
    h.event_seq = rng() % 3 == 0 ? rng() % 100 : kEvent;
    h.arg = rng();
    Bytes payload = RandomBytes(rng, replica::kVerdictHeaderBytes + rng() % 32);
    std::memcpy(payload.data(), &h, sizeof(h));
    payload.resize(rng() % 8 == 0 ? rng() % replica::kVerdictHeaderBytes : payload.size());
    const uint16_t kind = static_cast<uint16_t>(rng() % 24);
    const channel::Record rec{kSeq, kind, 0, payload};
    const bool abort = kind == static_cast<uint16_t>(replica::VerdictKind::kAbort);
    const bool acceptable = kind >= 16 && kind <= 19 &&
                            payload.size() >= replica::kVerdictHeaderBytes &&
                            (h.event_seq == kEvent || abort);
    auto v = replica::DecodeVerdict(rec, kEvent);
    ASSERT_EQ(v.ok(), acceptable) << "iteration " << i << ": kind " << kind << ", "
                                  << payload.size() << " bytes, answers " << h.event_seq << ": "
                                  << (v.ok() ? "accepted" : v.status().ToString());
    if (!v.ok()) continue;
    EXPECT_EQ(v->header.arg, h.arg);
    EXPECT_TRUE(Within(v->data, payload));
    ++accepted;
  }
  EXPECT_GT(accepted, kIterations / 50);  // the model's acceptable verdicts were reached
}

// --- messages between a server and the SSR store (ssr/wire.h) ---

std::vector<ssr::wire::Request> ValidRequests() {
  using ssr::wire::Op;
  ssr::wire::Request open{Op::kOpen, 1, 0, 0, false, false, "kv", "w1/kv"};
  ssr::wire::Request grant{Op::kGrant, 2, 42, 0, true, false, "", ""};
  ssr::wire::Request release{Op::kRelease, 3, 0, 17, false, true, "", ""};
  ssr::wire::Request forget{Op::kFree, 4, 42, 0, false, false, "", ""};
  ssr::wire::Request list{Op::kList, 5, 40, 0, false, false, "", ""};
  ssr::wire::Request close{Op::kClose, 6, 0, 0, false, false, "", ""};
  return {open, grant, release, forget, list, close};
}

// A request (kRequestBytes) or a reply (kReplyBytes), encoded.
template <size_t N, typename Message>
Bytes Encoded(const Message& m) {
  Bytes b(N);
  ssr::wire::Encode(m, std::span<std::byte, N>(b.data(), N));
  return b;
}

bool SameRequest(const ssr::wire::Request& a, const ssr::wire::Request& b) {
  return a.op == b.op && a.seq == b.seq && a.client_id == b.client_id && a.grant_id == b.grant_id &&
         a.create == b.create && a.no_reply == b.no_reply && a.name == b.name &&
         a.instance == b.instance;
}

TEST(WireSsr, MutatedRequestsAreRejectedOrDecodeToWhatTheyEncode) {
  Rng rng(6);
  const auto valid = ValidRequests();
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    Bytes b = Encoded<ssr::wire::kRequestBytes>(valid[i % valid.size()]);
    Mutate(b, rng);
    auto r = ssr::wire::DecodeRequest(b);
    if (!r.ok()) {
      ASSERT_FALSE(r.status().message().empty());
      continue;
    }
    ++accepted;
    ASSERT_EQ(b.size(), ssr::wire::kRequestBytes) << "iteration " << i;
    ASSERT_LE(r->name.size(), ssr::wire::kMaxName);
    ASSERT_LE(r->instance.size(), ssr::wire::kMaxName);
    if (r->op == ssr::wire::Op::kOpen) {
      ASSERT_TRUE(ssr::wire::CheckName("service", r->name).ok()) << "iteration " << i;
      ASSERT_TRUE(ssr::wire::CheckName("instance", r->instance).ok()) << "iteration " << i;
    }
    auto back = ssr::wire::DecodeRequest(Encoded<ssr::wire::kRequestBytes>(*r));
    ASSERT_TRUE(back.ok()) << "iteration " << i << ": " << back.status();
    ASSERT_TRUE(SameRequest(*r, *back)) << "iteration " << i;
  }
  EXPECT_GT(accepted, 0);
}

TEST(WireSsr, MutatedRepliesAreRejectedOrDecodeToWhatTheyEncode) {
  Rng rng(7);
  ssr::wire::Reply grant;
  grant.op = ssr::wire::Op::kGrant;
  grant.seq = 2;
  grant.grant_id = 17;
  grant.addr = 0x7f0000001000;
  grant.length = 4096;
  grant.rkey = 0x1234;
  grant.created = true;
  ssr::wire::Reply list;
  list.op = ssr::wire::Op::kList;
  list.clients = {1, 2, 3, 40, 41};
  list.more = true;
  ssr::wire::Reply refused;
  refused.op = ssr::wire::Op::kOpen;
  refused.code = StatusCode::kResourceExhausted;
  refused.message = "arena full: 64 of 64 SSRs in use";
  const ssr::wire::Reply valid[] = {grant, list, refused};
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    Bytes b = Encoded<ssr::wire::kReplyBytes>(valid[i % 3]);
    Mutate(b, rng);
    auto r = ssr::wire::DecodeReply(b);
    if (!r.ok()) {
      ASSERT_FALSE(r.status().message().empty());
      continue;
    }
    ++accepted;
    ASSERT_LE(r->clients.size(), ssr::wire::kMaxListed) << "iteration " << i;
    ASSERT_LE(r->message.size(), ssr::wire::kMaxReplyMessage) << "iteration " << i;
    ASSERT_TRUE(IsPrintable(r->message))
        << "iteration " << i << ": '" << Escaped(r->message) << "'";
    auto back = ssr::wire::DecodeReply(Encoded<ssr::wire::kReplyBytes>(*r));
    ASSERT_TRUE(back.ok()) << "iteration " << i << ": " << back.status();
    EXPECT_EQ(back->code, r->code);
    EXPECT_EQ(back->message, r->message);
    EXPECT_EQ(back->clients, r->clients);
    EXPECT_EQ(back->addr, r->addr);
    EXPECT_EQ(back->length, r->length);
    EXPECT_EQ(back->rkey, r->rkey);
  }
  EXPECT_GT(accepted, 0);
}

TEST(WireSsr, AReplyMessageThatWouldForgeALogLineIsRefused) {
  ssr::wire::Reply r;
  r.op = ssr::wire::Op::kGrant;
  r.code = StatusCode::kNotFound;
  r.message = "no SSR\ninfo [store] forged line";
  auto back = ssr::wire::DecodeReply(Encoded<ssr::wire::kReplyBytes>(r));
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("'no SSR\\x0ainfo [store] forged line' is not printable"),
            std::string::npos)
      << back.status();
}

// --- a Server State Region read back from the store's memory (ssr/slot.h) ---

std::string Text(const ssr::State& s) {
  return std::string(reinterpret_cast<const char*>(s.payload.data()), s.payload.size());
}

std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Two versions in the two slots. Flipping any bit of the newer one's header or payload falls
// back to the older version; flipping any bit of the older one leaves the newer one readable.
TEST(WireSlot, AnyFlippedBitOfOneSlotLeavesTheOtherVersion) {
  constexpr size_t kCap = 64;
  const ssr::Identity id{7, 42};
  Bytes region(ssr::RegionBytes(kCap));
  auto first = ssr::Write(region, kCap, id, 1, AsBytes("first version"));
  auto second = ssr::Write(region, kCap, id, 1, AsBytes("second, newer version"));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_NE(first->offset, second->offset);
  const struct {
    const ssr::Written& flipped;
    const char* survivor;
  } cases[] = {{*second, "first version"}, {*first, "second, newer version"}};
  for (const auto& c : cases) {
    for (size_t bit = 0; bit < 8 * c.flipped.length; ++bit) {
      const size_t at = c.flipped.offset + bit / 8;
      region[at] ^= static_cast<std::byte>(1u << (bit % 8));
      auto st = ssr::Read(region, kCap, id);
      ASSERT_TRUE(st.ok()) << "bit " << bit << " of the slot at " << c.flipped.offset << ": "
                           << st.status();
      ASSERT_EQ(Text(*st), c.survivor) << "bit " << bit << " of the slot at " << c.flipped.offset;
      EXPECT_FALSE(st->rejected.empty());
      region[at] ^= static_cast<std::byte>(1u << (bit % 8));
    }
  }
}

TEST(WireSlot, RandomCorruptionNeverYieldsAStateThatWasNotWritten) {
  Rng rng(8);
  constexpr size_t kCap = 64;
  const ssr::Identity id{7, 42};
  for (int i = 0; i < kIterations / 4; ++i) {
    Bytes region(ssr::RegionBytes(kCap));
    const std::string a = "version " + std::to_string(rng() % 1000);
    const std::string b = "later " + std::to_string(rng());
    ASSERT_TRUE(ssr::Write(region, kCap, id, 1, AsBytes(a)).ok());
    ASSERT_TRUE(ssr::Write(region, kCap, id, 1, AsBytes(b)).ok());
    const size_t size = region.size();
    Mutate(region, rng);
    region.resize(size);  // the region's size is the reader's; a cut-off end reads as zeros
    auto st = ssr::Read(region, kCap, id);
    if (st.status().code() == StatusCode::kNotFound) {
      // Both headers zeroed: a slot reads as never written, which is all it can say.
      const Bytes zeros(ssr::kSlotHeaderBytes);
      const size_t b_at = ssr::RegionBytes(kCap) / 2;
      ASSERT_TRUE(std::memcmp(region.data(), zeros.data(), zeros.size()) == 0 &&
                  std::memcmp(region.data() + b_at, zeros.data(), zeros.size()) == 0)
          << "iteration " << i << ": " << st.status();
      continue;
    }
    if (!st.ok()) {
      ASSERT_EQ(st.status().code(), StatusCode::kDataLoss) << "iteration " << i << st.status();
      continue;
    }
    const std::string got = Text(*st);
    ASSERT_TRUE(got == a || got == b) << "iteration " << i << " read back '" << got << "'";
  }
}

// --- the record a restartable server keeps in an SSR (server/framework.h) ---

TEST(WireServerRecord, MutatedRecordsAreRejectedOrEncodeBackExactly) {
  Rng rng(9);
  const server::Record valid[] = {
      {42, StatusCode::kOk, "", "reply", "state bytes"},
      {7, StatusCode::kNotFound, "no key 'x'", "", ""},
      {1, StatusCode::kOk, "", std::string(300, 'r'), std::string(100, 's')},
  };
  for (int i = 0; i < kIterations; ++i) {
    const std::string s = server::EncodeRecord(valid[i % 3]);
    Bytes b(reinterpret_cast<const std::byte*>(s.data()),
            reinterpret_cast<const std::byte*>(s.data()) + s.size());
    Mutate(b, rng);
    const std::string_view in(reinterpret_cast<const char*>(b.data()), b.size());
    auto r = server::DecodeRecord(in);
    if (!r.ok()) {
      ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << "iteration " << i;
      continue;
    }
    ASSERT_LE(r->error.size(), server::kMaxError) << "iteration " << i;
    ASSERT_LE(r->reply.size(), server::kMaxReply) << "iteration " << i;
    ASSERT_EQ(server::EncodeRecord(*r), in) << "iteration " << i;
  }
}

}  // namespace
}  // namespace vigil
