#include "vigil/ssr/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "vigil/common/adaptive_wait.h"
#include "vigil/common/logging.h"
#include "vigil/common/text.h"
#include "vigil/security/permissions.h"
#include "vigil/ssr/slot.h"
#include "vigil/ssr/v1/store.grpc.pb.h"
#include "vigil/ssr/wire.h"

namespace vigil::ssr {
namespace {

// Who holds the arena file open at `fd` locked. Every store also takes a process-owned (classic
// POSIX) lock, which /proc/locks lists with its owner's pid (the open file description lock,
// which does the excluding, is listed with pid -1).
std::string LockHolder(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return "pid unknown";
  const std::string id =
      fmt::format("{:02x}:{:02x}:{}", major(st.st_dev), minor(st.st_dev), st.st_ino);
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    // "1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
    std::istringstream in(line);
    std::string n, kind, advisory, mode, pid, file;
    if (in >> n >> kind >> advisory >> mode >> pid >> file && kind == "POSIX" && file == id) {
      return pid == std::to_string(getpid()) ? "pid " + pid + ", this process" : "pid " + pid;
    }
  }
  return "pid unknown";
}

using namespace std::chrono_literals;
using transport::WcStatus;

constexpr uint64_t kArenaMagic = 0x3152535353474956ull;  // "VIGSSSR1"
constexpr uint32_t kArenaVersion = 1;
constexpr size_t kHeaderBytes = 64;
constexpr size_t kServiceBytes = 64;
constexpr size_t kEntryBytes = 32;
constexpr size_t kRecvSlots = 8;
// The work request id of a liveness probe (replies use their slot number).
constexpr uint64_t kProbeWrId = uint64_t{1} << 62;

struct ArenaHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t capacity;
  uint64_t arena_bytes;
  uint64_t entries;
  uint32_t max_services;
  uint32_t reserved[7];
};
static_assert(sizeof(ArenaHeader) == kHeaderBytes);

struct EntryRow {
  uint32_t service_id;  // 0: free
  uint32_t reserved;
  uint64_t client_id;
  uint64_t unused[2];
};
static_assert(sizeof(EntryRow) == kEntryBytes);

size_t Align64(size_t n) { return (n + 63) / 64 * 64; }

std::shared_ptr<spdlog::logger> Log() { return log::Get("ssr-store"); }

}  // namespace

struct Store::ServiceRow {
  char name[48];
  uint32_t in_use;
  uint32_t reserved;
  uint64_t epoch;
};

class Store::Session {
 public:
  struct Grant {
    size_t entry;
    std::unique_ptr<transport::MemoryRegion> mr;
  };

  Session(Store& store, uint64_t id, std::string peer, security::Identity who,
          std::unique_ptr<transport::ProtectionDomain> domain,
          std::unique_ptr<transport::Connection> conn)
      : caller(std::move(who)),
        store_(store),
        id_(id),
        peer_(std::move(peer)),
        domain_(std::move(domain)),
        conn_(std::move(conn)) {}

  ~Session() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    grants.clear();  // registrations go before the domain they live in
  }

  Status Init() {
    VIGIL_ASSIGN_OR_RETURN(
        auto recv, transport::RegisteredBuffer::Allocate(*domain_, wire::kRequestBytes * kRecvSlots,
                                                         transport::kLocalWrite));
    VIGIL_ASSIGN_OR_RETURN(
        auto send, transport::RegisteredBuffer::Allocate(*domain_, wire::kReplyBytes * kRecvSlots,
                                                         transport::kLocalWrite));
    recv_ = std::make_unique<transport::RegisteredBuffer>(std::move(recv));
    send_ = std::make_unique<transport::RegisteredBuffer>(std::move(send));
    for (size_t i = 0; i < kRecvSlots; ++i) VIGIL_RETURN_IF_ERROR(PostRecv(i));
    return Status::Ok();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() { stop_ = true; }
  // Ends the session after the answer being sent; `why` is what its closing log line says.
  void Stop(std::string why) {
    MutexLock lock(why_mu_);
    stop_why_ = std::move(why);
    stop_ = true;
  }
  bool finished() const { return finished_; }
  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }

  // Who opened the session (its TLS certificate): a server may serve only its own service.
  const security::Identity caller;
  // Guarded by the store's mutex.
  uint32_t service_id = 0;
  std::string service_name;
  std::string instance;
  std::map<uint64_t, Grant> grants;

  // Under the store's mutex: revokes every grant of this session on `entry`.
  size_t RevokeEntry(size_t entry) {
    return std::erase_if(grants, [&](const auto& g) { return g.second.entry == entry; });
  }

  Result<std::unique_ptr<transport::MemoryRegion>> Register(std::byte* region, size_t bytes) {
    return domain_->Register(region, bytes, transport::kRemoteRead | transport::kRemoteWrite);
  }

 private:
  Status PostRecv(size_t slot) {
    return conn_->PostRecv(recv_->mr().Slice(slot * wire::kRequestBytes, wire::kRequestBytes),
                           slot);
  }

  // The next request: polled (spin, yield, short sleeps) for up to poll_us, since a server that
  // just released a grant usually asks for the next soon; then blocked on the completion
  // channel. The clock is read once every 64 empty polls, and the poll_us window starts at the
  // first read, so a request that is already there costs none.
  Result<transport::Completion> NextRequest(std::chrono::microseconds poll) {
    LazyDeadline window(poll);
    AdaptiveWait wait(20);
    for (uint32_t polls = 1; !stop_; ++polls) {
      transport::Completion c;
      if (conn_->PollRecv(std::span(&c, 1)) == 1) return c;
      if (polls % 64 != 0) continue;
      const auto now = std::chrono::steady_clock::now();
      if (window.LeftAt(now) <= LazyDeadline::Clock::duration::zero()) break;
      wait.Pause(now);
    }
    return conn_->WaitRecv(200ms);
  }

  // Whether the server's side still answers: a zero-length RDMA WRITE (no memory is touched, so
  // no key is needed: IB C9-88), acknowledged by the server's NIC without its process doing
  // anything. An error completion, or none within the connection's peer timeout, means the
  // server is gone.
  Status Probe() {
    transport::SendFlags flags;
    flags.signaled = true;
    VIGIL_RETURN_IF_ERROR(
        conn_->PostWrite(send_->mr().Slice(0, 0), transport::RemoteAddr{0, 0}, kProbeWrId, flags));
    while (true) {
      VIGIL_ASSIGN_OR_RETURN(transport::Completion c, conn_->WaitSend(std::chrono::seconds(30)));
      if (!c.ok()) return c.ToStatus(conn_->name());
      if (c.wr_id == kProbeWrId) return Status::Ok();
    }
  }

  void Run() {
    std::string why = "store shutting down";
    const auto poll = std::chrono::microseconds(store_.options_.poll_us);
    const auto probe_idle = std::chrono::milliseconds(store_.options_.probe_idle_ms);
    auto last_heard = std::chrono::steady_clock::now();
    while (!stop_) {
      auto c = NextRequest(poll);
      if (!c.ok()) {
        if (c.status().code() != StatusCode::kDeadlineExceeded) {
          why = c.status().ToString();
          break;
        }
        const auto now = std::chrono::steady_clock::now();
        if (probe_idle.count() == 0 || now - last_heard < probe_idle) continue;
        Status alive = Probe();
        store_.Probed(alive.ok());
        if (!alive.ok()) {
          why = fmt::format("the server did not answer a liveness probe after {} ms idle: {}",
                            store_.options_.probe_idle_ms, alive.ToString());
          store_.SessionBroken();
          break;
        }
        last_heard = now;
        continue;
      }
      last_heard = std::chrono::steady_clock::now();
      if (!c->ok() || c->wr_id >= kRecvSlots) {
        why = c->ToStatus(conn_->name()).ToString();
        store_.SessionBroken();
        break;
      }
      const std::span<const std::byte> in(recv_->data() + c->wr_id * wire::kRequestBytes,
                                          c->byte_len);
      bool reply_wanted = true;
      wire::Reply reply = store_.Handle(*this, in, reply_wanted);
      // Replies go out unsignaled from the buffer of the request's receive slot: the server waits
      // for each reply before it can send the request that reuses the slot, so a buffer is never
      // rewritten before the NIC read it; errors surface through DrainSendCompletions.
      Status st = transport::DrainSendCompletions(*conn_);
      if (st.ok() && reply_wanted) {
        std::byte* out = send_->data() + c->wr_id * wire::kReplyBytes;
        wire::Encode(reply, std::span<std::byte, wire::kReplyBytes>(out, wire::kReplyBytes));
        transport::SendFlags flags;
        flags.signaled = false;
        st = transport::PostWhenQueueHasRoom(*conn_, [&] {
          return conn_->PostSend(send_->mr().Slice(c->wr_id * wire::kReplyBytes, wire::kReplyBytes),
                                 c->wr_id, flags);
        });
      }
      if (st.ok()) st = PostRecv(c->wr_id);
      if (!st.ok()) {
        why = st.ToString();
        store_.SessionBroken();
        break;
      }
    }
    {
      MutexLock lock(why_mu_);
      if (!stop_why_.empty()) why = stop_why_;
    }
    store_.SessionEnded(*this, why);
    finished_ = true;
  }

  Store& store_;
  uint64_t id_;
  std::string peer_;
  std::unique_ptr<transport::ProtectionDomain> domain_;  // first: destroyed last
  std::unique_ptr<transport::Connection> conn_;
  std::unique_ptr<transport::RegisteredBuffer> recv_;
  std::unique_ptr<transport::RegisteredBuffer> send_;
  std::atomic<bool> stop_{false};
  Mutex why_mu_;
  std::string stop_why_ VIGIL_GUARDED_BY(why_mu_);
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

class Store::Control final : public v1::SsrStore::Service {
 public:
  explicit Control(Store& store) : store_(store) {}
  grpc::Status Status(grpc::ServerContext* ctx, const v1::StatusRequest*,
                      v1::StatusResponse* out) override {
    if (grpc::Status st = security::AuthorizeCall(*ctx, "/vigil.ssr.v1.SsrStore/Status");
        !st.ok()) {
      return st;
    }
    const StoreStats s = store_.Stats();
    out->set_name(store_.options_.node_name);
    out->set_arena_bytes(s.arena_bytes);
    out->set_ssr_bytes(s.ssr_bytes);
    out->set_capacity(store_.capacity_);
    out->set_entries(s.entries);
    out->set_used(s.used);
    out->set_overhead_bytes_per_client(s.overhead_bytes);
    out->set_grants_total(s.grants_total);
    out->set_revoked_by_steal(s.revoked_by_steal);
    out->set_sessions_broken(s.sessions_broken);
    out->set_bad_requests(s.bad_requests);
    out->set_restored(store_.restored_);
    for (const auto& svc : s.services) {
      auto* o = out->add_services();
      o->set_name(svc.name);
      o->set_id(svc.id);
      o->set_epoch(svc.epoch);
      o->set_clients(svc.clients);
    }
    for (const auto& ses : s.session_list) {
      auto* o = out->add_sessions();
      o->set_id(ses.id);
      o->set_peer(ses.peer);
      o->set_service(ses.service);
      o->set_instance(ses.instance);
      o->set_grants(ses.grants);
    }
    return grpc::Status::OK;
  }

 private:
  Store& store_;
};

Store::Store(transport::Transport& transport, const StoreOptions& options)
    : transport_(transport),
      options_(options),
      control_(std::make_unique<Control>(*this)),
      capacity_(options.capacity) {}

Store::~Store() {
  Shutdown();
  if (arena_ != nullptr) munmap(arena_, mapped_bytes_);
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<Store>> Store::Create(transport::Transport& transport,
                                             const StoreOptions& options) {
  if (options.capacity == 0 || options.capacity > (64u << 20)) {
    return InvalidArgument(
        fmt::format("SSR capacity {} bytes is out of range [1, 64 MiB]", options.capacity));
  }
  if (options.max_sessions == 0) return InvalidArgument("max_sessions must be at least 1");
  if (options.max_services == 0 || options.max_services > 4096) {
    return InvalidArgument(
        fmt::format("max_services {} is out of range [1, 4096]", options.max_services));
  }
  std::unique_ptr<Store> store(new Store(transport, options));
  VIGIL_RETURN_IF_ERROR(store->Map());
  const StoreStats s = store->Stats();
  Log()->info("arena of {} bytes{}: {} SSRs of {} payload bytes ({} bytes each, {} used){}",
              s.arena_bytes, options.arena_file.empty() ? "" : " in " + options.arena_file,
              s.entries, options.capacity, s.ssr_bytes, s.used,
              store->restored_ ? ", restored from the file" : "");
  return store;
}

Status Store::Map() {
  // Before any session exists; held so that the tables are only ever touched under it.
  MutexLock lock(mu_);
  region_bytes_ = RegionBytes(capacity_);
  services_off_ = kHeaderBytes;
  entries_off_ = Align64(services_off_ + options_.max_services * kServiceBytes);
  const size_t per_entry = kEntryBytes + region_bytes_;
  if (options_.arena_bytes < entries_off_ + 64 + per_entry) {
    return InvalidArgument(fmt::format(
        "arena of {} bytes cannot hold a single SSR of capacity {} (needs at least {} bytes)",
        options_.arena_bytes, capacity_, entries_off_ + 64 + per_entry));
  }
  entries_ = (options_.arena_bytes - entries_off_ - 64) / per_entry;
  regions_off_ = Align64(entries_off_ + entries_ * kEntryBytes);
  mapped_bytes_ = options_.arena_bytes;

  bool existing = false;
  if (options_.arena_file.empty()) {
    void* p =
        mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return ErrnoStatus(StatusCode::kResourceExhausted,
                         fmt::format("mmap of a {}-byte SSR arena", mapped_bytes_), errno);
    }
    arena_ = static_cast<std::byte*>(p);
  } else {
    fd_ = open(options_.arena_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      return ErrnoStatus(StatusCode::kUnavailable,
                         fmt::format("open arena file '{}'", options_.arena_file), errno);
    }
    // One store per arena file: a second one would hand out the same SSRs. An open file
    // description lock: it conflicts within one process too, and goes when the store exits,
    // however it exits.
    struct flock lk {};
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    lk.l_len = 1;  // byte 0: the lock that excludes
    if (fcntl(fd_, F_OFD_SETLK, &lk) != 0) {
      const int err = errno;
      if (err == EACCES || err == EAGAIN) {
        return FailedPrecondition(
            fmt::format("arena file '{}' is in use by another SSR store ({}): one store per "
                        "arena file",
                        options_.arena_file, LockHolder(fd_)));
      }
      return ErrnoStatus(StatusCode::kUnavailable,
                         fmt::format("lock arena file '{}'", options_.arena_file), err);
    }
    lk.l_start = 1;  // byte 1: a process-owned lock, which names this process to the next one
    static_cast<void>(fcntl(fd_, F_SETLK, &lk));
    struct stat st {};
    if (fstat(fd_, &st) != 0) {
      return ErrnoStatus(StatusCode::kUnavailable,
                         fmt::format("fstat arena file '{}'", options_.arena_file), errno);
    }
    existing = st.st_size > 0;
    if (existing && static_cast<size_t>(st.st_size) != mapped_bytes_) {
      return FailedPrecondition(
          fmt::format("arena file '{}' is {} bytes but arena_bytes is {}: use the size it was "
                      "made with, or another file",
                      options_.arena_file, st.st_size, mapped_bytes_));
    }
    if (!existing && ftruncate(fd_, static_cast<off_t>(mapped_bytes_)) != 0) {
      return ErrnoStatus(
          StatusCode::kResourceExhausted,
          fmt::format("size arena file '{}' to {} bytes", options_.arena_file, mapped_bytes_),
          errno);
    }
    void* p = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) {
      return ErrnoStatus(StatusCode::kResourceExhausted,
                         fmt::format("mmap arena file '{}'", options_.arena_file), errno);
    }
    arena_ = static_cast<std::byte*>(p);
  }
  holders_.assign(entries_, nullptr);
  ssrs_.assign(options_.max_services, 0);
  return existing ? Load() : Format();
}

Status Store::Format() {
  std::memset(arena_, 0, regions_off_);
  ArenaHeader h{};
  h.magic = kArenaMagic;
  h.version = kArenaVersion;
  h.capacity = capacity_;
  h.arena_bytes = options_.arena_bytes;
  h.entries = entries_;
  h.max_services = options_.max_services;
  std::memcpy(arena_, &h, sizeof(h));
  free_.clear();
  for (size_t i = entries_; i > 0; --i) free_.push_back(i - 1);
  return Status::Ok();
}

Status Store::Load() {
  ArenaHeader h;
  std::memcpy(&h, arena_, sizeof(h));
  if (h.magic != kArenaMagic || h.version != kArenaVersion) {
    return DataLoss(
        fmt::format("arena file '{}' is not a vigil SSR arena (magic {:#x}, version {})",
                    options_.arena_file, h.magic, h.version));
  }
  if (h.capacity != capacity_ || h.arena_bytes != options_.arena_bytes || h.entries != entries_ ||
      h.max_services != options_.max_services) {
    return FailedPrecondition(fmt::format(
        "arena file '{}' was made with capacity {}, arena_bytes {}, max_services {}; this store "
        "is configured with {}, {}, {}",
        options_.arena_file, h.capacity, h.arena_bytes, h.max_services, capacity_,
        options_.arena_bytes, options_.max_services));
  }
  auto* rows = reinterpret_cast<EntryRow*>(arena_ + entries_off_);
  ServiceRow* services = ServiceRows();
  for (size_t i = 0; i < options_.max_services; ++i) {
    ServiceRow& row = services[i];
    if (row.in_use == 1 && (std::memchr(row.name, 0, sizeof(row.name)) == nullptr ||
                            !wire::CheckName("service name", row.name).ok())) {
      return DataLoss(fmt::format("arena file '{}': service row {} holds no valid name",
                                  options_.arena_file, i));
    }
  }
  for (size_t i = entries_; i > 0; --i) {
    EntryRow& e = rows[i - 1];
    if (e.service_id == 0) {
      free_.push_back(i - 1);
      continue;
    }
    if (e.service_id > options_.max_services || services[e.service_id - 1].in_use != 1 ||
        !index_.emplace(std::make_pair(e.service_id, e.client_id), i - 1).second) {
      Log()->error(
          "arena entry {} names service {} client {}, which is invalid or a duplicate: "
          "entry freed",
          i - 1, e.service_id, e.client_id);
      std::memset(&e, 0, sizeof(e));
      std::memset(RegionAt(i - 1), 0, region_bytes_);
      free_.push_back(i - 1);
      continue;
    }
    ssrs_[e.service_id - 1]++;
  }
  restored_ = true;
  return Status::Ok();
}

std::byte* Store::RegionAt(size_t index) const {
  return arena_ + regions_off_ + index * region_bytes_;
}

void Store::Attach(transport::BootstrapServer& server) {
  server.AddService(
      std::string(kBootstrapService),
      [this](std::unique_ptr<transport::ProtectionDomain> domain,
             std::unique_ptr<transport::Connection> conn, const transport::PeerInfo& peer) {
        return Accept(std::move(domain), std::move(conn), peer);
      });
  server.AddGrpcService(control_.get());
}

Result<std::vector<transport::RemoteRegion>> Store::Accept(
    std::unique_ptr<transport::ProtectionDomain> domain,
    std::unique_ptr<transport::Connection> conn, const transport::PeerInfo& peer) {
  std::vector<std::unique_ptr<Session>> finished;
  Session* raw = nullptr;
  {
    MutexLock lock(mu_);
    if (shut_down_) return Unavailable("SSR store is shutting down");
    if (sessions_.size() >= options_.max_sessions) {
      return ResourceExhausted(
          fmt::format("{} sessions are open: the store's cap (max_sessions) is {}",
                      sessions_.size(), options_.max_sessions));
    }
    for (auto it = closed_.begin(); it != closed_.end();) {
      if ((*it)->finished()) {
        finished.push_back(std::move(*it));
        it = closed_.erase(it);
      } else {
        ++it;
      }
    }
    const uint64_t id = next_session_++;
    auto session = std::make_unique<Session>(*this, id, peer.node_name, peer.caller,
                                             std::move(domain), std::move(conn));
    VIGIL_RETURN_IF_ERROR(session->Init());
    raw = session.get();
    sessions_.emplace(id, std::move(session));
  }
  finished.clear();  // joins outside the lock
  raw->Start();
  Log()->info("session {} opened by '{}'", raw->id(), peer.node_name);
  return std::vector<transport::RemoteRegion>{};
}

void Store::SessionBroken() {
  MutexLock lock(mu_);
  counters_.sessions_broken++;
}

void Store::Probed(bool alive) {
  MutexLock lock(mu_);
  counters_.probes++;
  if (!alive) counters_.probes_failed++;
}

size_t Store::RevokeAll(Session& s) {
  const size_t revoked = s.grants.size();
  for (const auto& [gid, g] : s.grants) {
    if (holders_[g.entry] == &s) holders_[g.entry] = nullptr;
  }
  s.grants.clear();  // deregisters: every key of the session is dead
  return revoked;
}

Store::ServiceRow* Store::ServiceRows() const {
  static_assert(sizeof(ServiceRow) == kServiceBytes, "service row layout");
  return reinterpret_cast<ServiceRow*>(arena_ + services_off_);
}

uint32_t Store::FindService(std::string_view name) const {
  const ServiceRow* rows = ServiceRows();
  for (size_t i = 0; i < options_.max_services; ++i) {
    if (rows[i].in_use == 1 && name == std::string_view(rows[i].name)) {
      return static_cast<uint32_t>(i + 1);
    }
  }
  return 0;
}

size_t Store::TakeServiceRow(std::string_view name) {
  ServiceRow* rows = ServiceRows();
  size_t row = options_.max_services;
  for (size_t i = 0; i < options_.max_services && row == options_.max_services; ++i) {
    if (rows[i].in_use != 1) row = i;
  }
  for (size_t i = 0; i < options_.max_services && row == options_.max_services; ++i) {
    const auto id = static_cast<uint32_t>(i + 1);
    if (ssrs_[i] != 0 || std::any_of(sessions_.begin(), sessions_.end(),
                                     [&](const auto& kv) { return kv.second->service_id == id; })) {
      continue;
    }
    Log()->info("service row {} of '{}' reclaimed for '{}': it holds no SSR and serves no session",
                id, std::string_view(rows[i].name, strnlen(rows[i].name, sizeof(rows[i].name))),
                Escaped(name));
    row = i;
  }
  if (row == options_.max_services) return row;
  std::memset(&rows[row], 0, sizeof(ServiceRow));
  std::memcpy(rows[row].name, name.data(), name.size());
  rows[row].in_use = 1;
  return row;
}

void Store::SessionEnded(Session& s, const std::string& why) {
  MutexLock lock(mu_);
  const size_t revoked = RevokeAll(s);
  auto it = sessions_.find(s.id());
  if (it != sessions_.end()) {
    closed_.push_back(std::move(it->second));
    sessions_.erase(it);
  }
  Log()->info("session {} of '{}' ({} {}) closed, {} grant(s) revoked: {}", s.id(), s.peer(),
              s.service_name.empty() ? "no service" : s.service_name, s.instance, revoked, why);
}

void Store::Shutdown() {
  std::vector<std::unique_ptr<Session>> all;
  {
    MutexLock lock(mu_);
    shut_down_ = true;
    for (auto& [id, s] : sessions_) s->Stop();
  }
  // Sessions move themselves to closed_ as their threads end; wait for all of them.
  for (;;) {
    {
      MutexLock lock(mu_);
      if (sessions_.empty()) {
        all = std::move(closed_);
        closed_.clear();
        break;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  all.clear();
}

wire::Reply Store::Handle(Session& s, std::span<const std::byte> in, bool& reply_wanted) {
  wire::Reply r;
  auto req = wire::DecodeRequest(in);
  if (!req.ok()) {
    MutexLock lock(mu_);
    counters_.bad_requests++;
    Log()->warn("session {} of '{}': rejected request: {}", s.id(), s.peer(),
                req.status().ToString());
    r.code = req.status().code();
    r.message = req.status().message();
    return r;
  }
  r.op = req->op;
  r.seq = req->seq;
  reply_wanted = !req->no_reply;
  const auto t0 = std::chrono::steady_clock::now();
  Status st = Dispatch(s, *req, r);
  {
    MutexLock lock(mu_);
    const auto took = std::chrono::steady_clock::now() - t0;
    if (req->op == wire::Op::kGrant) counters_.grant_time += took;
    if (req->op == wire::Op::kRelease) {
      counters_.release_time += took;
      counters_.releases_total++;
    }
  }
  if (!st.ok()) {
    r.code = st.code();
    r.message = st.message();
    if (st.code() != StatusCode::kNotFound) {
      Log()->warn("session {} of '{}': {} refused: {}", s.id(), s.peer(), wire::OpName(req->op),
                  st.ToString());
    }
  }
  return r;
}

Status Store::Dispatch(Session& s, const wire::Request& req, wire::Reply& r) {
  MutexLock lock(mu_);
  if (req.op == wire::Op::kOpen) {
    if (s.service_id != 0) {
      return FailedPrecondition(
          fmt::format("session already serves '{}' as '{}'", s.service_name, s.instance));
    }
    if (!s.caller.unauthenticated &&
        (s.caller.role != security::Role::kServer || s.caller.name != req.name)) {
      return PermissionDenied(
          fmt::format("a session of {} may not serve '{}'", s.caller.Uri(), Escaped(req.name)));
    }
    ServiceRow* rows = ServiceRows();
    size_t row = options_.max_services;
    if (const uint32_t id = FindService(req.name); id != 0) row = id - 1;
    if (row == options_.max_services) row = TakeServiceRow(req.name);
    if (row == options_.max_services) {
      return ResourceExhausted(fmt::format(
          "all {} service rows (max_services) hold SSRs or serve sessions", options_.max_services));
    }
    rows[row].epoch++;
    s.service_id = static_cast<uint32_t>(row + 1);
    s.service_name = req.name;
    s.instance = req.instance;
    // A restarted server reuses its instance name: the old session is dead or dying.
    for (auto& [id, other] : sessions_) {
      if (other.get() != &s && other->service_id == s.service_id && other->instance == s.instance) {
        RevokeAll(*other);
        other->Stop();
        Log()->info("session {} replaces session {} of '{}' instance '{}'", s.id(), id,
                    s.service_name, s.instance);
      }
    }
    r.service_id = s.service_id;
    r.epoch = rows[row].epoch;
    r.capacity = capacity_;
    Log()->info("session {} of '{}' serves '{}' as '{}', epoch {}", s.id(), s.peer(), req.name,
                req.instance, r.epoch);
    return Status::Ok();
  }
  if (req.op == wire::Op::kClose) {
    RevokeAll(s);
    s.Stop("closed by its server");  // the answer still goes out; then the session ends
    return Status::Ok();
  }
  if (s.service_id == 0) {
    return FailedPrecondition(fmt::format("{} before open", wire::OpName(req.op)));
  }
  auto* entries = reinterpret_cast<EntryRow*>(arena_ + entries_off_);
  const auto key = std::make_pair(s.service_id, req.client_id);
  switch (req.op) {
    case wire::Op::kGrant: {
      auto it = index_.find(key);
      size_t entry;
      if (it != index_.end()) {
        entry = it->second;
      } else {
        if (!req.create) {
          return NotFound(
              fmt::format("client {} of '{}' has no SSR", req.client_id, s.service_name));
        }
        if (free_.empty()) {
          return ResourceExhausted(fmt::format("arena full: all {} SSRs are in use", entries_));
        }
        if (options_.max_ssrs_per_service != 0 &&
            ssrs_[s.service_id - 1] >= options_.max_ssrs_per_service) {
          return ResourceExhausted(
              fmt::format("service '{}' holds {} SSRs, its quota (max_ssrs_per_service)",
                          s.service_name, ssrs_[s.service_id - 1]));
        }
        entry = free_.back();
        free_.pop_back();
        std::memset(RegionAt(entry), 0, region_bytes_);
        entries[entry] = EntryRow{s.service_id, 0, req.client_id, {0, 0}};
        index_.emplace(key, entry);
        ssrs_[s.service_id - 1]++;
        r.created = true;
      }
      if (holders_[entry] != nullptr) {
        Session* holder = holders_[entry];
        const size_t n = holder->RevokeEntry(entry);
        if (holder != &s && n > 0) {
          counters_.revoked_by_steal += n;
          Log()->warn("SSR of client {} of '{}' granted to session {}: revoked from session {}",
                      req.client_id, s.service_name, s.id(), holder->id());
        }
      }
      VIGIL_ASSIGN_OR_RETURN(auto mr, s.Register(RegionAt(entry), region_bytes_));
      const uint64_t gid = next_grant_++;
      r.grant_id = gid;
      r.addr = reinterpret_cast<uint64_t>(mr->data());
      r.length = region_bytes_;
      r.rkey = mr->rkey();
      r.capacity = capacity_;
      s.grants.emplace(gid, Session::Grant{entry, std::move(mr)});
      holders_[entry] = &s;
      counters_.grants_total++;
      return Status::Ok();
    }
    case wire::Op::kRelease: {
      auto it = s.grants.find(req.grant_id);
      if (it == s.grants.end()) {
        return NotFound(fmt::format("no live grant {} in this session", req.grant_id));
      }
      const size_t entry = it->second.entry;
      s.grants.erase(it);  // deregisters: the key is dead from here on
      if (holders_[entry] == &s) holders_[entry] = nullptr;
      return Status::Ok();
    }
    case wire::Op::kFree: {
      auto it = index_.find(key);
      if (it == index_.end()) {
        return NotFound(fmt::format("client {} of '{}' has no SSR", req.client_id, s.service_name));
      }
      const size_t entry = it->second;
      if (holders_[entry] != nullptr) holders_[entry]->RevokeEntry(entry);
      holders_[entry] = nullptr;
      std::memset(&entries[entry], 0, sizeof(EntryRow));
      std::memset(RegionAt(entry), 0, region_bytes_);
      index_.erase(it);
      ssrs_[s.service_id - 1]--;
      free_.push_back(entry);
      return Status::Ok();
    }
    case wire::Op::kList: {
      for (auto it = index_.upper_bound({s.service_id, req.client_id});
           it != index_.end() && it->first.first == s.service_id; ++it) {
        if (r.clients.size() == wire::kMaxListed) {
          r.more = true;
          break;
        }
        r.clients.push_back(it->first.second);
      }
      return Status::Ok();
    }
    case wire::Op::kClose:
    case wire::Op::kOpen:
      break;
  }
  return Internal("unhandled SSR op");
}

StoreStats Store::Stats() const {
  MutexLock lock(mu_);
  StoreStats s = counters_;
  s.arena_bytes = options_.arena_bytes;
  s.ssr_bytes = region_bytes_;
  s.entries = entries_;
  s.used = index_.size();
  s.overhead_bytes = region_bytes_ + kEntryBytes - capacity_;
  s.sessions = sessions_.size();
  s.grants = 0;
  for (const auto& [id, session] : sessions_) {
    s.grants += session->grants.size();
    s.session_list.push_back(SessionStat{id, session->peer(), session->service_name,
                                         session->instance, session->grants.size()});
  }
  const ServiceRow* rows = ServiceRows();
  for (size_t i = 0; i < options_.max_services; ++i) {
    if (rows[i].in_use != 1) continue;
    ServiceStat st;
    st.name.assign(rows[i].name, strnlen(rows[i].name, sizeof(rows[i].name)));
    st.id = static_cast<uint32_t>(i + 1);
    st.epoch = rows[i].epoch;
    st.clients = ssrs_[i];
    s.services.push_back(std::move(st));
  }
  return s;
}

Result<std::span<std::byte>> Store::RegionOf(std::string_view service, uint64_t client) {
  MutexLock lock(mu_);
  if (const uint32_t id = FindService(service); id != 0) {
    if (auto it = index_.find({id, client}); it != index_.end()) {
      return std::span<std::byte>(RegionAt(it->second), region_bytes_);
    }
  }
  return NotFound(fmt::format("no SSR for client {} of service '{}'", client, service));
}

}  // namespace vigil::ssr
