// Real verbs between two processes: this test and vigil-rxe-peer bootstrap over gRPC on loopback
// and exercise every transport operation with data checks, plus the failure cases a user hits:
// a bad rkey, an out-of-bounds write, a write to read-only memory, and a peer that is killed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstring>
#include <string>

#include "peer_protocol.h"
#include "rdma_env.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/verbs.h"

extern char** environ;

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;
using transport::RegisteredBuffer;
using transport::WcStatus;

constexpr auto kWait = 60s;  // software-emulated guests are slow; still bounded

// vigil-rxe-peer as a child process; killed and reaped on destruction.
class PeerProcess {
 public:
  Status Start() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(StatusCode::kInternal, "pipe2", errno);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    std::string dev = "--device=" + RdmaDevice();
    std::string bin = VIGIL_RXE_PEER_PATH;
    std::string insecure = "--insecure";  // its bootstrap port: plaintext on loopback
    char* argv[] = {bin.data(), dev.data(), insecure.data(), nullptr};
    int rc = posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      return ErrnoStatus(StatusCode::kInternal, "posix_spawn " + bin, rc);
    }
    // Wait for "PORT <n>" (bounded: a peer that cannot start must not hang the test).
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fds[0], POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[64];
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    if (std::sscanf(line.c_str(), "PORT %d", &port_) != 1) {
      return Unavailable("vigil-rxe-peer did not report its port (output: '" + line + "')");
    }
    return Status::Ok();
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  ~PeerProcess() { Kill(); }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class TwoProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = transport::VerbsTransport::Open({.device = RdmaDevice()});
    if (!t.ok()) {
      VIGIL_SKIP_WITHOUT_RDMA(t.status());
    }
    transport_ = std::move(*t);
    ASSERT_TRUE(peer_.Start().ok());
    auto buf = RegisteredBuffer::Allocate(*transport_, kPeerDataBytes, transport::kAllAccess);
    ASSERT_TRUE(buf.ok()) << buf.status();
    data_ = std::make_unique<RegisteredBuffer>(std::move(*buf));
    auto m = RegisteredBuffer::Allocate(*transport_, 2 * kPeerMsgBytes, transport::kLocalWrite);
    ASSERT_TRUE(m.ok()) << m.status();
    msgs_ = std::make_unique<RegisteredBuffer>(std::move(*m));
    Connect();
  }

  void Connect() {
    transport::DialOptions o;
    o.target = "127.0.0.1:" + std::to_string(peer_.port());
    o.service = kPeerService;
    o.node_name = "rxe-test";
    o.regions = {data_->mr().Describe("data")};
    o.timeout = kWait;
    auto d = transport::Dial(*transport_, o);
    ASSERT_TRUE(d.ok()) << d.status();
    conn_ = std::move(d->connection);
    auto pd = d->peer.Region("data");
    auto pg = d->peer.Region("guard");
    ASSERT_TRUE(pd.ok() && pg.ok());
    peer_data_ = *pd;
    peer_guard_ = *pg;
  }

  // Sends a command and waits for its reply SEND (if `reply_len` > 0).
  void Command(PeerCmd cmd, size_t reply_len) {
    if (reply_len) {
      ASSERT_TRUE(conn_->PostRecv(msgs_->mr().Slice(kPeerMsgBytes, kPeerMsgBytes), 2).ok());
    }
    std::memcpy(msgs_->data(), &cmd, sizeof(cmd));
    ASSERT_TRUE(conn_->PostSend(msgs_->mr().Slice(0, sizeof(cmd)), 1).ok());
    Status st = transport::WaitSendOk(*conn_, kWait);
    ASSERT_TRUE(st.ok()) << st;
    if (reply_len) {
      auto r = transport::WaitRecvOk(*conn_, kWait);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->byte_len, reply_len);
    }
  }

  uint64_t PeerDigest(uint64_t offset, uint32_t len) {
    Command({kPeerDigest, len, offset, 0, 0}, sizeof(PeerDigestReply));
    PeerDigestReply r;
    std::memcpy(&r, msgs_->data() + kPeerMsgBytes, sizeof(r));
    EXPECT_EQ(r.ok, 1u);
    return r.digest;
  }

  transport::Completion WaitSend() {
    auto c = conn_->WaitSend(kWait);
    EXPECT_TRUE(c.ok()) << c.status();
    transport::Completion failed;
    failed.status = WcStatus::kOther;
    failed.status_text = "test helper: wait failed";
    return c.ok() ? *c : failed;
  }

  std::unique_ptr<transport::VerbsTransport> transport_;
  PeerProcess peer_;
  std::unique_ptr<RegisteredBuffer> data_, msgs_;
  std::unique_ptr<transport::Connection> conn_;
  transport::RemoteRegion peer_data_, peer_guard_;
};

TEST_F(TwoProcess, WritesLandInThePeerProcess) {
  for (size_t i = 0; i < data_->size(); ++i)
    data_->data()[i] = std::byte(static_cast<uint8_t>(i * 31 + 7));
  for (uint32_t len : {8u, 64u, 200u, 4096u, 60000u}) {
    auto dst = peer_data_.At(512, len);
    ASSERT_TRUE(dst.ok());
    ASSERT_TRUE(conn_->PostWrite(data_->mr().Slice(0, len), *dst, len).ok());
    ASSERT_TRUE(WaitSend().ok());
    EXPECT_EQ(PeerDigest(512, len), XXH3_64bits(data_->data(), len)) << "len " << len;
  }
}

TEST_F(TwoProcess, UnsignaledBurstThenOneSignaledWrite) {
  for (size_t i = 0; i < data_->size(); ++i)
    data_->data()[i] = std::byte(static_cast<uint8_t>(i ^ 0x3c));
  transport::SendFlags quiet;
  quiet.signaled = false;
  for (uint32_t i = 0; i < 200; ++i) {  // 200 > sq_depth/2: relies on internal signaling
    Status st = transport::PostWhenQueueHasRoom(*conn_, [&] {
      return conn_->PostWrite(data_->mr().Slice(i * 128, 128), *peer_data_.At(i * 128, 128), i,
                              quiet);
    });
    ASSERT_TRUE(st.ok()) << st;
  }
  ASSERT_TRUE(conn_->PostWrite(data_->mr().Slice(0, 8), *peer_data_.At(0, 8), 999).ok());
  transport::Completion c = WaitSend();
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.wr_id, 999u);
  EXPECT_EQ(PeerDigest(0, 200 * 128), XXH3_64bits(data_->data(), 200 * 128));
}

TEST_F(TwoProcess, ReadSeesThePeersMemory) {
  ASSERT_TRUE(conn_->PostRead(data_->mr().Slice(0, 5000), *peer_guard_.At(100, 5000), 3).ok());
  ASSERT_TRUE(WaitSend().ok());
  for (size_t i = 0; i < 5000; ++i) {
    ASSERT_EQ(data_->data()[i], std::byte{PeerPattern(kPeerDataBytes + 100 + i)}) << "byte " << i;
  }
}

TEST_F(TwoProcess, SendIsEchoedBack) {
  PeerCmd cmd{kPeerEcho, 0xabcdef, 0x1122334455667788ull, 42, 7};
  Command(cmd, sizeof(cmd));
  EXPECT_EQ(0, std::memcmp(msgs_->data() + kPeerMsgBytes, &cmd, sizeof(cmd)));
}

TEST_F(TwoProcess, WriteWithImmFromPeerWakesABlockedWaiter) {
  ASSERT_TRUE(conn_->PostRecv(msgs_->mr().Slice(kPeerMsgBytes, 0), 77).ok());
  Command({kPeerWriteBack, 3000, 1000, 0xfeed0001u, 0}, 0);
  auto r = transport::WaitRecvOk(*conn_, kWait);  // sleeps on the completion channel
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->opcode, transport::Opcode::kRecvWithImm);
  EXPECT_EQ(r->wr_id, 77u);
  EXPECT_EQ(r->imm, 0xfeed0001u);
  for (size_t i = 0; i < 3000; ++i) {
    ASSERT_EQ(data_->data()[1000 + i], std::byte{PeerPattern(1000 + i)}) << "byte " << i;
  }
}

TEST_F(TwoProcess, BadRkeyIsARemoteAccessError) {
  auto dst = *peer_data_.At(0, 64);
  dst.rkey += 0x100;
  ASSERT_TRUE(conn_->PostWrite(data_->mr().Slice(0, 64), dst, 5).ok());
  transport::Completion c = WaitSend();
  EXPECT_EQ(c.status, WcStatus::kRemoteAccessError);
  Status st = c.ToStatus(conn_->name());
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("remote access error"), std::string::npos) << st;
}

TEST_F(TwoProcess, OutOfBoundsWriteIsRejectedAndTheNeighbourIsIntact) {
  std::memset(data_->data(), 0xEE, 256);
  transport::RemoteAddr past{peer_data_.addr + peer_data_.length - 64, peer_data_.rkey};
  ASSERT_TRUE(conn_->PostWrite(data_->mr().Slice(0, 256), past, 6).ok());
  EXPECT_EQ(WaitSend().status, WcStatus::kRemoteAccessError);
  // The connection is broken now (both ends): dial again and check the guard region.
  Connect();
  ASSERT_TRUE(conn_->PostRead(data_->mr().Slice(0, 256), *peer_guard_.At(0, 256), 7).ok());
  ASSERT_TRUE(WaitSend().ok());
  for (size_t i = 0; i < 256; ++i) {
    ASSERT_EQ(data_->data()[i], std::byte{PeerPattern(kPeerDataBytes + i)}) << "guard byte " << i;
  }
}

TEST_F(TwoProcess, WriteToReadOnlyRegionIsRejected) {
  ASSERT_TRUE(conn_->PostWrite(data_->mr().Slice(0, 64), *peer_guard_.At(0, 64), 8).ok());
  EXPECT_EQ(WaitSend().status, WcStatus::kRemoteAccessError);
}

TEST_F(TwoProcess, KilledPeerIsAnErrorWithinBoundedTime) {
  ASSERT_TRUE(conn_->PostWrite(data_->mr().Slice(0, 64), *peer_data_.At(0, 64), 9).ok());
  ASSERT_TRUE(WaitSend().ok());
  peer_.Kill();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(conn_->PostWrite(data_->mr().Slice(0, 64), *peer_data_.At(0, 64), 10).ok());
  transport::Completion c = WaitSend();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  EXPECT_FALSE(c.ok());
  // Real NICs report retry-exceeded; where the device never does (rxe on 6.1), the watchdog must.
  EXPECT_TRUE(c.status == WcStatus::kRetryExceeded || c.status == WcStatus::kPeerTimeout)
      << c.ToStatus(conn_->name());
  EXPECT_EQ(c.ToStatus(conn_->name()).code(), StatusCode::kUnavailable);
  std::printf("peer killed: error after %lld ms (%s)\n", static_cast<long long>(ms), c.status_text);
  RecordProperty("peer_gone_detect_ms", static_cast<int>(ms));
  // Further work fails at once instead of hanging.
  Status again = conn_->PostWrite(data_->mr().Slice(0, 8), *peer_data_.At(0, 8), 11);
  EXPECT_FALSE(again.ok());
}

}  // namespace
}  // namespace vigil::testing
