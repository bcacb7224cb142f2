// Reliable-connected queue pair over libibverbs.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "verbs_internal.h"
#include "vigil/common/logging.h"
#include "vigil/transport/verbs.h"

namespace vigil::transport {
namespace {

using Clock = std::chrono::steady_clock;

// wr_id bit reserved for WRs that the connection signals on its own (selective signaling).
constexpr uint64_t kInternalWrId = 1ull << 63;

WcStatus MapStatus(ibv_wc_status s) {
  switch (s) {
    case IBV_WC_SUCCESS:
      return WcStatus::kSuccess;
    case IBV_WC_LOC_LEN_ERR:
      return WcStatus::kLocalLengthError;
    case IBV_WC_LOC_PROT_ERR:
      return WcStatus::kLocalProtectionError;
    case IBV_WC_WR_FLUSH_ERR:
      return WcStatus::kFlushed;
    case IBV_WC_REM_ACCESS_ERR:
      return WcStatus::kRemoteAccessError;
    case IBV_WC_REM_INV_REQ_ERR:
      return WcStatus::kRemoteInvalidRequest;
    case IBV_WC_REM_OP_ERR:
      return WcStatus::kRemoteOperationError;
    case IBV_WC_RETRY_EXC_ERR:
      return WcStatus::kRetryExceeded;
    case IBV_WC_RNR_RETRY_EXC_ERR:
      return WcStatus::kRnrRetryExceeded;
    default:
      return WcStatus::kOther;
  }
}

Opcode MapOpcode(ibv_wc_opcode op) {
  switch (op) {
    case IBV_WC_RDMA_WRITE:
      return Opcode::kWrite;
    case IBV_WC_SEND:
      return Opcode::kSend;
    case IBV_WC_RDMA_READ:
      return Opcode::kRead;
    case IBV_WC_RECV:
      return Opcode::kRecv;
    case IBV_WC_RECV_RDMA_WITH_IMM:
      return Opcode::kRecvWithImm;
    default:
      return Opcode::kOther;
  }
}

Result<ibv_mtu> MtuFromBytes(uint32_t bytes) {
  switch (bytes) {
    case 256:
      return IBV_MTU_256;
    case 512:
      return IBV_MTU_512;
    case 1024:
      return IBV_MTU_1024;
    case 2048:
      return IBV_MTU_2048;
    case 4096:
      return IBV_MTU_4096;
  }
  return InvalidArgument(
      fmt::format("peer MTU {} is not one of 256, 512, 1024, 2048, 4096", bytes));
}

// One completion queue with its own completion channel, so a waiter can sleep on it.
class CompletionQueue {
 public:
  ~CompletionQueue() {
    if (cq_ && unacked_ > 0) ibv_ack_cq_events(cq_.get(), unacked_);
  }
  Status Init(ibv_context* ctx, int depth, const std::string& what) {
    channel_.reset(ibv_create_comp_channel(ctx));
    if (!channel_) {
      int err = errno;
      return ErrnoStatus(StatusCode::kResourceExhausted, "ibv_create_comp_channel for " + what,
                         err);
    }
    cq_.reset(ibv_create_cq(ctx, depth, nullptr, channel_.get(), 0));
    if (!cq_) {
      int err = errno;
      return ErrnoStatus(StatusCode::kResourceExhausted,
                         fmt::format("ibv_create_cq({} entries) for {}", depth, what), err);
    }
    return Status::Ok();
  }
  ibv_cq* get() const { return cq_.get(); }

  // Arm and Block name the CQ as "<conn> (<side> CQ)" in errors; nothing is formatted otherwise:
  // they run on every blocking wait.
  Status Arm(std::string_view conn, std::string_view side) {
    if (int rc = ibv_req_notify_cq(cq_.get(), 0); rc != 0) {
      return ErrnoStatus(StatusCode::kInternal,
                         fmt::format("ibv_req_notify_cq for {} ({} CQ)", conn, side), rc);
    }
    return Status::Ok();
  }

  // Sleeps on the channel until the armed CQ signals an event or the deadline passes. Returns OK
  // in both cases: the caller re-polls and checks the deadline itself.
  Status Block(Clock::time_point deadline, std::string_view conn, std::string_view side) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{channel_->fd, POLLIN, 0};
    int rc = poll(&pfd, 1, static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 1 << 30)));
    if (rc < 0) {
      int err = errno;
      if (err == EINTR) return Status::Ok();
      return ErrnoStatus(StatusCode::kInternal,
                         fmt::format("poll(completion channel) for {} ({} CQ)", conn, side), err);
    }
    if (rc == 0) return Status::Ok();
    ibv_cq* ev_cq = nullptr;
    void* ev_ctx = nullptr;
    if (ibv_get_cq_event(channel_.get(), &ev_cq, &ev_ctx) != 0) {
      int err = errno;
      return ErrnoStatus(StatusCode::kInternal,
                         fmt::format("ibv_get_cq_event for {} ({} CQ)", conn, side), err);
    }
    if (++unacked_ >= 64) {  // acking takes a lock in the library: batch it
      ibv_ack_cq_events(cq_.get(), unacked_);
      unacked_ = 0;
    }
    return Status::Ok();
  }

 private:
  verbs::ChannelPtr channel_;
  verbs::CqPtr cq_;  // destroyed before its channel
  unsigned unacked_ = 0;
};

class VerbsConnectionImpl final : public VerbsConnection {
 public:
  VerbsConnectionImpl(std::shared_ptr<VerbsDevice> dev, std::shared_ptr<ibv_pd> pd,
                      ConnectionOptions opts)
      : dev_(std::move(dev)), pd_(std::move(pd)), opts_(std::move(opts)) {}

  ~VerbsConnectionImpl() override {
    qp_.reset();  // the QP goes before the CQs it points at
  }

  Status Init() {
    const std::string what = fmt::format("connection '{}' on {}", opts_.name, dev_->name());
    if (opts_.sq_depth == 0 || opts_.rq_depth == 0 || opts_.signal_every == 0) {
      return InvalidArgument(what + ": sq_depth, rq_depth and signal_every must be > 0");
    }
    const auto max_wr = static_cast<uint32_t>(dev_->attr().max_qp_wr);
    if (opts_.sq_depth > max_wr || opts_.rq_depth > max_wr) {
      return InvalidArgument(
          fmt::format("{}: queue depth sq={} rq={} exceeds the device's max_qp_wr {}", what,
                      opts_.sq_depth, opts_.rq_depth, max_wr));
    }
    VIGIL_RETURN_IF_ERROR(send_cq_.Init(dev_->context(), static_cast<int>(opts_.sq_depth), what));
    VIGIL_RETURN_IF_ERROR(recv_cq_.Init(dev_->context(), static_cast<int>(opts_.rq_depth), what));
    ibv_qp_init_attr init{};
    init.send_cq = send_cq_.get();
    init.recv_cq = recv_cq_.get();
    init.qp_type = IBV_QPT_RC;
    init.sq_sig_all = 0;
    init.cap.max_send_wr = opts_.sq_depth;
    init.cap.max_recv_wr = opts_.rq_depth;
    init.cap.max_send_sge = 1;
    init.cap.max_recv_sge = 1;
    // Devices cap inline data differently: ask for the configured size, halve on refusal.
    for (uint32_t inl = opts_.max_inline;; inl /= 2) {
      init.cap.max_inline_data = inl;
      qp_.reset(ibv_create_qp(pd_.get(), &init));
      if (qp_ || inl == 0) break;
    }
    if (!qp_) {
      int err = errno;
      return ErrnoStatus(StatusCode::kResourceExhausted, "ibv_create_qp for " + what, err);
    }
    max_inline_ = init.cap.max_inline_data;
    peer_timeout_ = EffectivePeerTimeout(opts_);
    signaled_marks_.assign(opts_.sq_depth + 1, 0);
    std::random_device rd;
    psn_ = rd() & 0xFFFFFF;
    return ToInit();
  }

  const std::string& name() const override { return opts_.name; }
  uint32_t max_inline() const override { return max_inline_; }

  Endpoint local_endpoint() const override {
    Endpoint ep;
    ep.qpn = qp_->qp_num;
    ep.psn = psn_;
    std::memcpy(ep.gid.data(), dev_->gid().raw, 16);
    ep.gid_index = static_cast<uint32_t>(dev_->gid_index());
    ep.mtu = MtuBytes(dev_->active_mtu());
    ep.port = dev_->port();
    ep.lid = dev_->lid();
    return ep;
  }

  Status Connect(const Endpoint& peer) override {
    VIGIL_RETURN_IF_ERROR(ToRtr(peer));
    return ToRts();
  }

  ibv_qp_state QueryState() const override {
    ibv_qp_attr attr{};
    ibv_qp_init_attr init{};
    if (ibv_query_qp(qp_.get(), &attr, IBV_QP_STATE, &init) != 0) return IBV_QPS_UNKNOWN;
    return attr.qp_state;
  }

  Status PostWrite(const LocalSlice& src, RemoteAddr dst, uint64_t wr_id,
                   const SendFlags& flags) override {
    ibv_send_wr wr{};
    wr.opcode = flags.imm ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE;
    if (flags.imm) wr.imm_data = htonl(*flags.imm);
    wr.wr.rdma.remote_addr = dst.addr;
    wr.wr.rdma.rkey = dst.rkey;
    return PostSendQueue(wr, src, wr_id, flags.signaled, "RDMA_WRITE");
  }

  Status PostRead(const LocalSlice& dst, RemoteAddr src, uint64_t wr_id) override {
    ibv_send_wr wr{};
    wr.opcode = IBV_WR_RDMA_READ;
    wr.wr.rdma.remote_addr = src.addr;
    wr.wr.rdma.rkey = src.rkey;
    return PostSendQueue(wr, dst, wr_id, true, "RDMA_READ");
  }

  Status PostSend(const LocalSlice& src, uint64_t wr_id, const SendFlags& flags) override {
    ibv_send_wr wr{};
    wr.opcode = flags.imm ? IBV_WR_SEND_WITH_IMM : IBV_WR_SEND;
    if (flags.imm) wr.imm_data = htonl(*flags.imm);
    return PostSendQueue(wr, src, wr_id, flags.signaled, "SEND");
  }

  Status PostRecv(const LocalSlice& dst, uint64_t wr_id) override {
    VIGIL_RETURN_IF_ERROR(CheckSlice(dst, "RECV"));
    ibv_sge sge{reinterpret_cast<uint64_t>(dst.mr->data() + dst.offset),
                static_cast<uint32_t>(dst.length), dst.mr->lkey()};
    ibv_recv_wr wr{};
    wr.wr_id = wr_id;
    wr.sg_list = dst.length ? &sge : nullptr;
    wr.num_sge = dst.length ? 1 : 0;
    ibv_recv_wr* bad = nullptr;
    if (int rc = ibv_post_recv(qp_.get(), &wr, &bad); rc != 0) {
      return ErrnoStatus(
          rc == ENOMEM ? StatusCode::kResourceExhausted : StatusCode::kInternal,
          fmt::format("{}: ibv_post_recv (receive queue depth {})", opts_.name, opts_.rq_depth),
          rc);
    }
    return Status::Ok();
  }

  size_t PollSend(std::span<Completion> out) override { return Poll(send_cq_, out, true); }
  size_t PollRecv(std::span<Completion> out) override { return Poll(recv_cq_, out, false); }

  Result<Completion> WaitSend(std::chrono::nanoseconds timeout) override {
    return Wait(send_cq_, timeout, true);
  }
  Result<Completion> WaitRecv(std::chrono::nanoseconds timeout) override {
    return Wait(recv_cq_, timeout, false);
  }

  Status PostBindWindow(MemoryWindow& window, const MemoryRegion& mr, size_t offset, size_t length,
                        uint32_t access, uint64_t wr_id) override {
    ibv_mr* vmr = detail::IbvMrOf(mr);
    if (vmr == nullptr)
      return InvalidArgument(opts_.name + ": bind window: region is not a verbs MR");
    if (offset > mr.size() || length > mr.size() - offset) {
      return OutOfRange(fmt::format("{}: bind window [{}, +{}) outside a {}-byte region",
                                    opts_.name, offset, length, mr.size()));
    }
    VIGIL_RETURN_IF_ERROR(CheckCanPost(wr_id));
    // Type-2 windows are bound by a work request on the QP they will belong to (ibv_bind_mw is
    // for type 1 only). Each bind takes a fresh key: the 8-bit tag of the old one is bumped.
    const uint32_t new_rkey = ibv_inc_rkey(window.rkey());
    ibv_send_wr wr{};
    wr.wr_id = wr_id;
    wr.opcode = IBV_WR_BIND_MW;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.bind_mw.mw = window.get();
    wr.bind_mw.rkey = new_rkey;
    wr.bind_mw.bind_info.mr = vmr;
    wr.bind_mw.bind_info.addr = reinterpret_cast<uint64_t>(mr.data() + offset);
    wr.bind_mw.bind_info.length = length;
    wr.bind_mw.bind_info.mw_access_flags = ((access & kRemoteWrite) ? IBV_ACCESS_REMOTE_WRITE : 0) |
                                           ((access & kRemoteRead) ? IBV_ACCESS_REMOTE_READ : 0);
    ibv_send_wr* bad = nullptr;
    if (int rc = ibv_post_send(qp_.get(), &wr, &bad); rc != 0) {
      return ErrnoStatus(StatusCode::kInternal, opts_.name + ": ibv_post_send(BIND_MW)", rc);
    }
    // The library does not update mw->rkey for type-2 binds: the window tracks the key itself.
    SetWindowRkey(window, new_rkey);
    RecordPosted(/*signaled=*/true);
    return Status::Ok();
  }

 private:
  Status CheckSlice(const LocalSlice& s, const char* op) const {
    return CheckLocalSlice(s, opts_.name, op);
  }

  void PushMark() {
    signaled_marks_[mark_tail_] = posted_;
    mark_tail_ = (mark_tail_ + 1) % signaled_marks_.size();
    unsignaled_run_ = 0;
  }

  Status PostSendQueue(ibv_send_wr& wr, const LocalSlice& s, uint64_t wr_id, bool signaled,
                       const char* op) {
    if (!broken_.ok()) return broken_;
    VIGIL_RETURN_IF_ERROR(CheckSlice(s, op));
    VIGIL_RETURN_IF_ERROR(CheckCanPost(wr_id));
    bool internal = false;
    if (!signaled && unsignaled_run_ + 1 >= opts_.signal_every) {
      signaled = true;  // keep the send queue draining: see ConnectionOptions::signal_every
      internal = true;
    }
    ibv_sge sge{reinterpret_cast<uint64_t>(s.mr->data() + s.offset),
                static_cast<uint32_t>(s.length), s.mr->lkey()};
    wr.wr_id = internal ? (wr_id | kInternalWrId) : wr_id;
    wr.sg_list = s.length ? &sge : nullptr;
    wr.num_sge = s.length ? 1 : 0;
    wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
    if (s.length <= max_inline_ && wr.opcode != IBV_WR_RDMA_READ) wr.send_flags |= IBV_SEND_INLINE;
    ibv_send_wr* bad = nullptr;
    if (int rc = ibv_post_send(qp_.get(), &wr, &bad); rc != 0) {
      return ErrnoStatus(rc == ENOMEM ? StatusCode::kResourceExhausted : StatusCode::kInternal,
                         fmt::format("{}: ibv_post_send({}, {} bytes)", opts_.name, op, s.length),
                         rc);
    }
    RecordPosted(signaled);
    return Status::Ok();
  }

  // Whether one more work request may go on the send queue.
  Status CheckCanPost(uint64_t wr_id) const {
    if (!broken_.ok()) return broken_;
    if (wr_id & kInternalWrId) {
      return InvalidArgument(
          fmt::format("{}: wr_id {:#x} uses reserved bit 63", opts_.name, wr_id));
    }
    if (posted_ - completed_ >= opts_.sq_depth) {
      return ResourceExhausted(
          fmt::format("{}: send queue full ({} work requests outstanding); poll send completions",
                      opts_.name, posted_ - completed_));
    }
    return Status::Ok();
  }

  // Bookkeeping after a successful ibv_post_send (selective signaling and the watchdog).
  void RecordPosted(bool signaled) {
    if (posted_ == completed_) last_progress_ = Clock::now();  // the watchdog starts now
    posted_++;
    if (signaled) {
      PushMark();
    } else {
      unsignaled_run_++;
    }
  }

  // Called when a poll found nothing. True if the watchdog just declared the peer gone.
  bool WatchdogExpired(bool check_now) {
    if (posted_ == completed_ || !broken_.ok()) return false;  // idle, or already broken
    if (!check_now && ++idle_polls_ % 256 != 0) return false;  // keep clock reads off hot loops
    if (Clock::now() - last_progress_ < peer_timeout_) return false;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(peer_timeout_).count();
    broken_ = Unavailable(fmt::format(
        "{}: connection is broken: {} work requests made no progress for {} ms (peer gone or "
        "unreachable; vigil watchdog)",
        opts_.name, posted_ - completed_, ms));
    log::Get("transport")->warn("{}", broken_.message());
    // Flush everything outstanding so no buffer stays owned by the device.
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_ERR;
    if (int rc = ibv_modify_qp(qp_.get(), &attr, IBV_QP_STATE); rc != 0) {
      log::Get("transport")
          ->error("{}: modify QP to ERR failed: {}", opts_.name, std::strerror(rc));
    }
    return true;
  }

  Completion WatchdogCompletion() const {
    Completion c;
    c.wr_id = 0;
    c.opcode = Opcode::kOther;
    c.status = WcStatus::kPeerTimeout;
    c.status_text = "no progress within peer_timeout (vigil watchdog)";
    return c;
  }

  // Converts one work completion. Returns false for internal completions the caller must skip.
  bool Convert(const ibv_wc& wc, bool send_side, Completion& c) {
    c.wr_id = wc.wr_id & ~kInternalWrId;
    c.status = MapStatus(wc.status);
    c.status_text = ibv_wc_status_str(wc.status);
    c.vendor_err = wc.vendor_err;
    if (wc.status != IBV_WC_SUCCESS) {
      // After an error only wr_id, status and vendor_err are defined.
      c.opcode = Opcode::kOther;
      c.byte_len = 0;
      c.has_imm = false;
      if (broken_.ok()) broken_ = c.ToStatus(opts_.name).WithContext("connection is broken");
      return true;
    }
    c.opcode = MapOpcode(wc.opcode);
    c.byte_len = wc.byte_len;
    c.has_imm = (wc.wc_flags & IBV_WC_WITH_IMM) != 0;
    c.imm = c.has_imm ? ntohl(wc.imm_data) : 0;
    if (send_side) {
      last_progress_ = Clock::now();
      // RC completes in order: this signaled WR retires every WR posted before it.
      completed_ = signaled_marks_[mark_head_];
      mark_head_ = (mark_head_ + 1) % signaled_marks_.size();
      if (wc.wr_id & kInternalWrId) return false;
    }
    return true;
  }

  size_t Poll(CompletionQueue& cq, std::span<Completion> out, bool send_side) {
    ibv_wc wcs[16];
    size_t filled = 0;
    while (filled < out.size()) {
      const int want = static_cast<int>(std::min<size_t>(out.size() - filled, 16));
      const int n = ibv_poll_cq(cq.get(), want, wcs);
      if (n <= 0) break;
      for (int i = 0; i < n; ++i) {
        if (Convert(wcs[i], send_side, out[filled])) filled++;
      }
      if (n < want) break;
    }
    if (filled == 0 && send_side && !out.empty() && WatchdogExpired(false)) {
      out[0] = WatchdogCompletion();
      filled = 1;
    }
    return filled;
  }

  Result<Completion> Wait(CompletionQueue& cq, std::chrono::nanoseconds timeout, bool send_side) {
    const auto deadline = Clock::now() + timeout;
    const char* side = send_side ? "send" : "receive";
    bool armed = false;
    for (;;) {
      ibv_wc wc;
      int n = ibv_poll_cq(cq.get(), 1, &wc);
      if (n < 0) return Internal(fmt::format("{}: ibv_poll_cq({}) failed", opts_.name, side));
      if (n == 1) {
        Completion c;
        if (Convert(wc, send_side, c)) return c;
        continue;
      }
      if (send_side && WatchdogExpired(true)) return WatchdogCompletion();
      if (!armed) {
        // Arm, then poll once more: a completion that landed before arming raises no event.
        VIGIL_RETURN_IF_ERROR(cq.Arm(opts_.name, side));
        armed = true;
        continue;
      }
      if (Clock::now() >= deadline) {
        return DeadlineExceeded(
            fmt::format("{}: no {} completion within {} ms", opts_.name, side,
                        std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
      }
      auto wake = deadline;
      if (send_side && posted_ != completed_ && broken_.ok()) {
        wake = std::min(wake, last_progress_ + peer_timeout_);
      }
      VIGIL_RETURN_IF_ERROR(cq.Block(wake, opts_.name, side));
      armed = false;
    }
  }

  Status Modify(ibv_qp_attr& attr, int mask, const char* transition) {
    if (int rc = ibv_modify_qp(qp_.get(), &attr, mask); rc != 0) {
      return ErrnoStatus(StatusCode::kUnavailable,
                         fmt::format("{}: modify QP {} to {} on {} (gid index {})", opts_.name,
                                     qp_->qp_num, transition, dev_->name(), dev_->gid_index()),
                         rc);
    }
    return Status::Ok();
  }

  Status ToInit() {
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_INIT;
    attr.pkey_index = 0;
    attr.port_num = dev_->port();
    attr.qp_access_flags =
        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    return Modify(attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
                  "INIT");
  }

  Status ToRtr(const Endpoint& peer) {
    VIGIL_ASSIGN_OR_RETURN(ibv_mtu peer_mtu, MtuFromBytes(peer.mtu));
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_RTR;
    attr.path_mtu = std::min(peer_mtu, dev_->active_mtu());
    attr.dest_qp_num = peer.qpn;
    attr.rq_psn = peer.psn;
    attr.max_dest_rd_atomic = static_cast<uint8_t>(std::clamp(dev_->attr().max_qp_rd_atom, 1, 16));
    attr.min_rnr_timer = opts_.min_rnr_timer;
    attr.ah_attr.port_num = dev_->port();
    attr.ah_attr.dlid = static_cast<uint16_t>(peer.lid);
    attr.ah_attr.sl = 0;
    if (dev_->is_roce()) {
      attr.ah_attr.is_global = 1;
      std::memcpy(attr.ah_attr.grh.dgid.raw, peer.gid.data(), 16);
      attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(dev_->gid_index());
      attr.ah_attr.grh.hop_limit = 64;
    }
    return Modify(attr,
                  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                      IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
                  "RTR");
  }

  Status ToRts() {
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_RTS;
    attr.timeout = opts_.ack_timeout;
    attr.retry_cnt = opts_.retry_count;
    attr.rnr_retry = opts_.rnr_retry;
    attr.sq_psn = psn_;
    attr.max_rd_atomic = static_cast<uint8_t>(std::clamp(dev_->attr().max_qp_init_rd_atom, 1, 16));
    return Modify(attr,
                  IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                      IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC,
                  "RTS");
  }

  std::shared_ptr<VerbsDevice> dev_;
  std::shared_ptr<ibv_pd> pd_;  // the QP's protection domain (outlives the QP)
  ConnectionOptions opts_;
  CompletionQueue send_cq_;
  CompletionQueue recv_cq_;
  verbs::QpPtr qp_;  // destroyed explicitly first in the destructor
  uint32_t psn_ = 0;
  uint32_t max_inline_ = 0;
  // Selective-signaling bookkeeping (owned by the posting/polling thread).
  uint64_t posted_ = 0;
  uint64_t completed_ = 0;
  uint32_t unsignaled_run_ = 0;
  std::vector<uint64_t> signaled_marks_;
  size_t mark_head_ = 0;
  size_t mark_tail_ = 0;
  Status broken_;
  // Progress watchdog (see ConnectionOptions::peer_timeout_ms).
  std::chrono::nanoseconds peer_timeout_{};
  Clock::time_point last_progress_{};
  uint32_t idle_polls_ = 0;
};

}  // namespace

namespace detail {
Result<std::unique_ptr<Connection>> CreateConnectionIn(std::shared_ptr<VerbsDevice> dev,
                                                       std::shared_ptr<ibv_pd> pd,
                                                       const ConnectionOptions& opts) {
  auto conn = std::make_unique<VerbsConnectionImpl>(std::move(dev), std::move(pd), opts);
  VIGIL_RETURN_IF_ERROR(conn->Init());
  return std::unique_ptr<Connection>(std::move(conn));
}
}  // namespace detail

}  // namespace vigil::transport
