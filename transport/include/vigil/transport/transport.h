// The transport interface: registered memory plus reliable-connected queue pairs with one-sided
// (WRITE, WRITE_WITH_IMM, READ) and two-sided (SEND/RECV) operations.
//
// Two implementations: VerbsTransport (libibverbs, real NICs and soft-RoCE) and FakeTransport (in
// one process, for protocol tests without a NIC). Both follow the same semantics, including the
// error cases: a remote access error breaks both ends of a connection; a peer that is gone makes
// operations fail with kRetryExceeded instead of hanging.
//
// Threads: a Connection is driven by one thread at a time (posting and polling may be different
// threads only if the caller serializes them). Transports and memory registration are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "vigil/common/status.h"

namespace vigil::transport {

// Access rights of a memory registration (bit mask).
enum Access : uint32_t {
  kLocalWrite = 1u << 0,
  kRemoteRead = 1u << 1,
  kRemoteWrite = 1u << 2,
  kAllAccess = kLocalWrite | kRemoteRead | kRemoteWrite,
};

// Where a peer's queue pair can be reached; exchanged through the bootstrap service.
struct Endpoint {
  uint32_t qpn = 0;
  uint32_t psn = 0;
  std::array<uint8_t, 16> gid{};
  uint32_t gid_index = 0;
  uint32_t mtu = 0;  // bytes
  uint32_t port = 0;
  uint32_t lid = 0;
};

// A raw remote address + key. Built from a RemoteRegion with At(), which bound-checks; tests may
// build one directly to probe what the NIC rejects.
struct RemoteAddr {
  uint64_t addr = 0;
  uint32_t rkey = 0;
};

// Memory a peer advertised as accessible. Never trust it further than its length.
struct RemoteRegion {
  uint64_t addr = 0;
  uint64_t length = 0;
  uint32_t rkey = 0;
  std::string purpose;

  // The address `offset` bytes in, if [offset, offset+len) lies inside the region.
  Result<RemoteAddr> At(uint64_t offset, uint64_t len) const;
};

class MemoryRegion;

// Bytes [offset, offset+length) of a local registration. Checked against the region on post.
struct LocalSlice {
  const MemoryRegion* mr = nullptr;
  size_t offset = 0;
  size_t length = 0;
};

// A registration of local memory. Subclasses own the underlying registration; the memory itself
// belongs to the caller (or to a RegisteredBuffer) and must outlive the registration.
class MemoryRegion {
 public:
  virtual ~MemoryRegion() = default;
  MemoryRegion(const MemoryRegion&) = delete;
  MemoryRegion& operator=(const MemoryRegion&) = delete;

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  uint32_t lkey() const { return lkey_; }
  uint32_t rkey() const { return rkey_; }
  uint32_t access() const { return access_; }

  LocalSlice Slice(size_t offset, size_t length) const { return {this, offset, length}; }
  LocalSlice All() const { return {this, 0, size_}; }
  RemoteRegion Describe(std::string purpose) const;

 protected:
  MemoryRegion(std::byte* data, size_t size, uint32_t lkey, uint32_t rkey, uint32_t access)
      : data_(data), size_(size), lkey_(lkey), rkey_(rkey), access_(access) {}

 private:
  std::byte* data_;
  size_t size_;
  uint32_t lkey_;
  uint32_t rkey_;
  uint32_t access_;
};

enum class Opcode : uint8_t { kWrite, kWriteWithImm, kSend, kRead, kRecv, kRecvWithImm, kOther };
std::string_view OpcodeName(Opcode op);

// The completion statuses both transports produce (a subset of ibv_wc_status).
enum class WcStatus : uint8_t {
  kSuccess,
  kLocalLengthError,
  kLocalProtectionError,
  kFlushed,            // posted while/after the connection broke
  kRemoteAccessError,  // bad rkey, out-of-bounds, or missing remote permission
  kRemoteInvalidRequest,
  kRemoteOperationError,
  kRetryExceeded,     // the peer stopped acknowledging: gone or unreachable
  kRnrRetryExceeded,  // the peer never posted a receive
  kPeerTimeout,       // vigil's watchdog: outstanding work made no progress in peer_timeout
  kOther,
};

// One work completion. Plain data: polling never allocates.
struct Completion {
  uint64_t wr_id = 0;
  Opcode opcode = Opcode::kOther;
  WcStatus status = WcStatus::kSuccess;
  uint32_t byte_len = 0;
  uint32_t imm = 0;
  bool has_imm = false;
  const char* status_text = "success";  // ibv_wc_status_str() for verbs; static storage
  uint32_t vendor_err = 0;

  bool ok() const { return status == WcStatus::kSuccess; }
  // OK, or an error naming the connection, the operation, wr_id and the completion status.
  Status ToStatus(std::string_view connection) const;
};

struct SendFlags {
  bool signaled = true;         // unsignaled WRs complete silently (see signal_every)
  std::optional<uint32_t> imm;  // WRITE -> WRITE_WITH_IMM, SEND -> SEND_WITH_IMM
};

struct ConnectionOptions {
  std::string name = "conn";   // for logs and error messages
  uint32_t sq_depth = 256;     // send queue work requests
  uint32_t rq_depth = 256;     // receive queue work requests
  uint32_t max_inline = 256;   // requested inline bytes; the device may grant less
  uint32_t signal_every = 32;  // at most this many WRs in a row go unsignaled
  uint8_t ack_timeout = 14;    // local ACK timeout exponent: 4.096 us * 2^14 = 67 ms
  uint8_t retry_count = 7;     // transport retries before kRetryExceeded (0..7)
  uint8_t rnr_retry = 7;       // receiver-not-ready retries; 7 means retry forever
  uint8_t min_rnr_timer = 12;  // 0.64 ms between RNR retries
  // Progress watchdog: when send work stays outstanding this long without a single completion,
  // the connection is declared broken (kPeerTimeout) and its queue pair flushed. Some devices
  // (soft-RoCE on Linux 6.1) never report kRetryExceeded towards a destroyed peer, so this is
  // what turns "peer gone" into an error instead of a hang. 0 = automatic: four times the
  // device's retry budget (4.096 us * 2^ack_timeout * (retry_count + 1)), at least 5 s.
  uint32_t peer_timeout_ms = 0;
};

// The watchdog period peer_timeout_ms = 0 resolves to.
std::chrono::milliseconds EffectivePeerTimeout(const ConnectionOptions& opts);

// A reliable-connected queue pair with its send and receive completion queues.
class Connection {
 public:
  virtual ~Connection() = default;

  virtual const std::string& name() const = 0;
  virtual Endpoint local_endpoint() const = 0;
  // Moves the queue pair to ready-to-send towards `peer` (INIT -> RTR -> RTS).
  virtual Status Connect(const Endpoint& peer) = 0;
  // Largest payload posted inline (no DMA read of the local buffer; lowest latency).
  virtual uint32_t max_inline() const = 0;

  // Posting: returns an error at once for bad arguments, a full send queue or a broken
  // connection; everything else is reported by a completion.
  virtual Status PostWrite(const LocalSlice& src, RemoteAddr dst, uint64_t wr_id,
                           const SendFlags& flags = {}) = 0;
  virtual Status PostRead(const LocalSlice& dst, RemoteAddr src, uint64_t wr_id) = 0;
  virtual Status PostSend(const LocalSlice& src, uint64_t wr_id, const SendFlags& flags = {}) = 0;
  virtual Status PostRecv(const LocalSlice& dst, uint64_t wr_id) = 0;

  // Non-blocking: fills up to out.size() completions, returns how many (0 if none).
  virtual size_t PollSend(std::span<Completion> out) = 0;
  virtual size_t PollRecv(std::span<Completion> out) = 0;

  // Blocking on the completion channel (the thread sleeps) until one completion arrives or the
  // timeout passes (kDeadlineExceeded).
  virtual Result<Completion> WaitSend(std::chrono::nanoseconds timeout) = 0;
  virtual Result<Completion> WaitRecv(std::chrono::nanoseconds timeout) = 0;
};

// A protection domain: memory registered in it can be reached remotely only through connections
// created in it (a peer connected to another domain gets kRemoteAccessError). The SSR store gives
// every server connection its own domain, so a key granted on one connection is useless on any
// other. A domain must outlive nothing: its registrations and connections keep it alive.
class ProtectionDomain {
 public:
  virtual ~ProtectionDomain() = default;
  virtual Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size,
                                                         uint32_t access) = 0;
  virtual Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // "verbs" or "fake": peers of different kinds refuse to connect.
  virtual std::string_view kind() const = 0;
  // One line describing the device for logs and benchmark headers.
  virtual std::string Describe() const = 0;
  virtual Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size,
                                                         uint32_t access) = 0;
  virtual Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) = 0;
  // A new protection domain, separate from the transport's default one (which Register and
  // CreateConnection above use).
  virtual Result<std::unique_ptr<ProtectionDomain>> CreateDomain() = 0;
};

// Page-aligned, zeroed memory together with its registration (registration released first).
class RegisteredBuffer {
 public:
  static Result<RegisteredBuffer> Allocate(Transport& transport, size_t size, uint32_t access);
  static Result<RegisteredBuffer> Allocate(ProtectionDomain& domain, size_t size, uint32_t access);

  std::byte* data() const { return mr_->data(); }
  size_t size() const { return mr_->size(); }
  const MemoryRegion& mr() const { return *mr_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> mem_;
  std::unique_ptr<MemoryRegion> mr_;  // declared after mem_: destroyed before it

  using RegisterFn =
      std::function<Result<std::unique_ptr<MemoryRegion>>(void* addr, size_t size, uint32_t)>;
  static Result<RegisteredBuffer> AllocateWith(const RegisterFn& reg, size_t size, uint32_t access);
};

// OK if `s` names a registration and lies inside it (and fits one work request's 32-bit length);
// otherwise an error naming the connection and the operation.
Status CheckLocalSlice(const LocalSlice& s, std::string_view connection, std::string_view op);

// Retires whatever send completions are ready (non-blocking) and returns the first error among
// them, or OK. For callers that post unsignaled work: the connection's internal signals only
// retire the send queue when someone polls it.
Status DrainSendCompletions(Connection& conn);

// Runs `post` (a Post* call returning Status) again for as long as the send queue is full,
// draining send completions in between; returns the first other result.
template <typename Post>
Status PostWhenQueueHasRoom(Connection& conn, Post&& post) {
  Status st = post();
  while (st.code() == StatusCode::kResourceExhausted) {
    VIGIL_RETURN_IF_ERROR(DrainSendCompletions(conn));
    st = post();
  }
  return st;
}

// Reads 8 bytes that a peer's RDMA WRITE places into local memory (a sequence word the caller
// polls). Acquire orders the caller's later reads of the message after this load.
inline uint64_t LoadPolled64(const std::byte* p) {
  return std::atomic_ref<const uint64_t>(*reinterpret_cast<const uint64_t*>(p))
      .load(std::memory_order_acquire);
}

// Waits for one send completion and turns it into a Status (success or the completion's error).
Status WaitSendOk(Connection& conn, std::chrono::nanoseconds timeout);
// Waits for one receive completion; fails if it carries an error.
Result<Completion> WaitRecvOk(Connection& conn, std::chrono::nanoseconds timeout);

}  // namespace vigil::transport
