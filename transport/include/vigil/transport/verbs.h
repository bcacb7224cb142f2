// libibverbs implementation of the transport: RAII owners for every verbs object, device, port
// and GID selection, and reliable-connected queue pairs.
//
// Teardown order is enforced by ownership: every child object (MR, CQ, QP, MW) holds a
// shared_ptr to the VerbsDevice that owns the context and protection domain, and a connection
// destroys its QP before its CQs and their completion channels.
#pragma once

#include <infiniband/verbs.h>

#include <memory>
#include <string>

#include "vigil/transport/transport.h"

namespace vigil::transport {

namespace verbs {
struct ContextDeleter {
  void operator()(ibv_context* p) const;
};
struct PdDeleter {
  void operator()(ibv_pd* p) const;
};
struct MrDeleter {
  void operator()(ibv_mr* p) const;
};
struct ChannelDeleter {
  void operator()(ibv_comp_channel* p) const;
};
struct CqDeleter {
  void operator()(ibv_cq* p) const;
};
struct QpDeleter {
  void operator()(ibv_qp* p) const;
};
struct MwDeleter {
  void operator()(ibv_mw* p) const;
};
using ContextPtr = std::unique_ptr<ibv_context, ContextDeleter>;
using PdPtr = std::unique_ptr<ibv_pd, PdDeleter>;
using MrPtr = std::unique_ptr<ibv_mr, MrDeleter>;
using ChannelPtr = std::unique_ptr<ibv_comp_channel, ChannelDeleter>;
using CqPtr = std::unique_ptr<ibv_cq, CqDeleter>;
using QpPtr = std::unique_ptr<ibv_qp, QpDeleter>;
using MwPtr = std::unique_ptr<ibv_mw, MwDeleter>;
}  // namespace verbs

struct VerbsOptions {
  std::string device;  // empty: the first device with an ACTIVE port
  uint32_t port = 0;   // 0: the first ACTIVE port
  int gid_index = -1;  // -1: prefer RoCEv2 with an IPv4-mapped address, then any RoCEv2
};

// An opened device: context, protection domain and the chosen port and GID.
class VerbsDevice {
 public:
  static Result<std::shared_ptr<VerbsDevice>> Open(const VerbsOptions& options);

  ibv_context* context() const { return ctx_.get(); }
  ibv_pd* pd() const { return pd_.get(); }
  const std::string& name() const { return name_; }
  uint8_t port() const { return port_; }
  int gid_index() const { return gid_index_; }
  const ibv_gid& gid() const { return gid_; }
  bool is_roce() const { return is_roce_; }
  uint16_t lid() const { return lid_; }
  ibv_mtu active_mtu() const { return active_mtu_; }
  const ibv_device_attr& attr() const { return attr_; }
  std::string Describe() const;

 private:
  VerbsDevice() = default;
  verbs::ContextPtr ctx_;
  verbs::PdPtr pd_;  // declared after ctx_: deallocated before the context closes
  std::string name_;
  uint8_t port_ = 0;
  int gid_index_ = 0;
  ibv_gid gid_{};
  bool is_roce_ = false;
  uint16_t lid_ = 0;
  ibv_mtu active_mtu_ = IBV_MTU_1024;
  ibv_device_attr attr_{};
};

// A type-2 memory window (when the device supports them): a revocable remote key over part of a
// registration, bound to one queue pair with VerbsConnection::PostBindWindow.
class MemoryWindow {
 public:
  uint32_t rkey() const { return rkey_; }
  ibv_mw* get() const { return mw_.get(); }

 private:
  friend class VerbsTransport;
  friend class VerbsConnection;
  std::shared_ptr<VerbsDevice> dev_;
  verbs::MwPtr mw_;
  uint32_t rkey_ = 0;
};

class VerbsTransport final : public Transport {
 public:
  static Result<std::unique_ptr<VerbsTransport>> Open(const VerbsOptions& options);

  std::string_view kind() const override { return "verbs"; }
  std::string Describe() const override { return dev_->Describe(); }
  Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size, uint32_t access) override;
  Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) override;
  // ibv_alloc_pd: registrations in it are reachable only through its own queue pairs.
  Result<std::unique_ptr<ProtectionDomain>> CreateDomain() override;

  const VerbsDevice& device() const { return *dev_; }
  bool SupportsMemoryWindows() const;
  Result<std::unique_ptr<MemoryWindow>> AllocateWindow();

 private:
  explicit VerbsTransport(std::shared_ptr<VerbsDevice> dev) : dev_(std::move(dev)) {}
  std::shared_ptr<ibv_pd> DefaultPd() const;
  std::shared_ptr<VerbsDevice> dev_;
};

// Verbs-specific extension of Connection (use dynamic_cast from a Connection made by a
// VerbsTransport).
class VerbsConnection : public Connection {
 public:
  // Binds `window` to this queue pair over [offset, offset+length) of `mr` (registered with
  // kWindowBind) by posting a signaled BIND_MW work request; the window's rkey() is the new key
  // once that completes. Only this QP's peer can use the key. Revoke with MemoryWindow
  // destruction (ibv_dealloc_mw): never invalidate a window twice (it crashes rxe on Linux 6.1).
  virtual Status PostBindWindow(MemoryWindow& window, const MemoryRegion& mr, size_t offset,
                                size_t length, uint32_t access, uint64_t wr_id) = 0;
  virtual ibv_qp_state QueryState() const = 0;

 protected:
  static void SetWindowRkey(MemoryWindow& window, uint32_t rkey) { window.rkey_ = rkey; }
};

// Access bit for registrations that memory windows will be bound to.
inline constexpr uint32_t kWindowBind = 1u << 8;

// Operator-facing advice, shared by errors and docs.
std::string NoDeviceAdvice();
std::string MemlockAdvice(size_t requested_bytes);
std::string GidToString(const ibv_gid& gid);
uint32_t MtuBytes(ibv_mtu mtu);

}  // namespace vigil::transport
