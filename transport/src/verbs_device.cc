#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "verbs_internal.h"
#include "vigil/common/logging.h"
#include "vigil/transport/verbs.h"

namespace vigil::transport {
namespace verbs {
namespace {
// Destructors log, never throw. errno is copied before the logger runs.
template <typename Fn>
void Destroy(const char* what, Fn fn) {
  int rc = fn();
  if (rc != 0) {
    int err = rc > 0 ? rc : errno;
    log::Get("transport")
        ->error("{} failed during teardown: {} (errno {})", what, std::strerror(err), err);
  }
}
}  // namespace
void ContextDeleter::operator()(ibv_context* p) const {
  Destroy("ibv_close_device", [p] { return ibv_close_device(p); });
}
void PdDeleter::operator()(ibv_pd* p) const {
  Destroy("ibv_dealloc_pd", [p] { return ibv_dealloc_pd(p); });
}
void MrDeleter::operator()(ibv_mr* p) const {
  Destroy("ibv_dereg_mr", [p] { return ibv_dereg_mr(p); });
}
void ChannelDeleter::operator()(ibv_comp_channel* p) const {
  Destroy("ibv_destroy_comp_channel", [p] { return ibv_destroy_comp_channel(p); });
}
void CqDeleter::operator()(ibv_cq* p) const {
  Destroy("ibv_destroy_cq", [p] { return ibv_destroy_cq(p); });
}
void QpDeleter::operator()(ibv_qp* p) const {
  Destroy("ibv_destroy_qp", [p] { return ibv_destroy_qp(p); });
}
void MwDeleter::operator()(ibv_mw* p) const {
  Destroy("ibv_dealloc_mw", [p] { return ibv_dealloc_mw(p); });
}
}  // namespace verbs

namespace {

struct DeviceListDeleter {
  void operator()(ibv_device** l) const { ibv_free_device_list(l); }
};

bool IsIpv4Mapped(const ibv_gid& g) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(g.raw, kPrefix, sizeof(kPrefix)) == 0;
}

bool IsZero(const ibv_gid& g) {
  for (uint8_t b : g.raw) {
    if (b != 0) return false;
  }
  return true;
}

std::string DeviceNames(ibv_device** list, int n) {
  std::string names;
  for (int i = 0; i < n; ++i)
    names += fmt::format("{}{}", i ? ", " : "", ibv_get_device_name(list[i]));
  return names;
}

// Picks the GID: the configured index, else RoCEv2 IPv4-mapped, else any RoCEv2, else index 0.
Status ChooseGid(ibv_context* ctx, uint8_t port, const ibv_port_attr& pa, int wanted,
                 const std::string& dev, int& index, ibv_gid& gid) {
  if (wanted >= 0) {
    if (wanted >= pa.gid_tbl_len) {
      return InvalidArgument(
          fmt::format("gid_index {} is outside the GID table of {} port {} ({} entries)", wanted,
                      dev, port, pa.gid_tbl_len));
    }
    if (ibv_query_gid(ctx, port, wanted, &gid) != 0 ||
        (pa.link_layer == IBV_LINK_LAYER_ETHERNET && IsZero(gid))) {
      return InvalidArgument(
          fmt::format("gid_index {} of {} port {} is empty; list GIDs with "
                      "`ibv_devinfo -v -d {}`",
                      wanted, dev, port, dev));
    }
    index = wanted;
    return Status::Ok();
  }
  if (pa.link_layer != IBV_LINK_LAYER_ETHERNET) {  // InfiniBand: GID 0, routed by LID
    index = 0;
    if (ibv_query_gid(ctx, port, 0, &gid) != 0) gid = {};
    return Status::Ok();
  }
  int any_v2 = -1;
  for (int i = 0; i < pa.gid_tbl_len; ++i) {
    ibv_gid_entry entry{};
    if (ibv_query_gid_ex(ctx, port, static_cast<uint32_t>(i), &entry, 0) != 0) continue;
    if (entry.gid_type != IBV_GID_TYPE_ROCE_V2) continue;
    ibv_gid g;
    std::memcpy(g.raw, entry.gid.raw, sizeof(g.raw));
    if (IsZero(g)) continue;
    if (IsIpv4Mapped(g)) {
      index = i;
      gid = g;
      return Status::Ok();
    }
    if (any_v2 < 0) any_v2 = i;
  }
  if (any_v2 >= 0) {
    index = any_v2;
    if (ibv_query_gid(ctx, port, any_v2, &gid) != 0) gid = {};
    return Status::Ok();
  }
  return Unavailable(fmt::format(
      "{} port {} has no RoCEv2 GID: give its netdev an IP address (the IPv4-mapped GID appears "
      "then) or set gid_index explicitly (see `ibv_devinfo -v -d {}`)",
      dev, port, dev));
}

}  // namespace

std::string NoDeviceAdvice() {
  return "no RDMA device found (ibv_get_device_list returned none). To use soft-RoCE on a "
         "Linux host: `modprobe rdma_rxe && rdma link add rxe0 type rxe netdev <iface>`; where the "
         "kernel has no RDMA support, run through `scripts/with-rxe -- <command>`, which boots a "
         "small qemu guest with rxe";
}

std::string MemlockAdvice(size_t requested_bytes) {
  rlimit rl{};
  std::string limit = "unknown";
  if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
    limit = rl.rlim_cur == RLIM_INFINITY ? "unlimited" : fmt::format("{} KiB", rl.rlim_cur / 1024);
  }
  return fmt::format(
      "registering {} bytes may exceed the locked-memory limit (RLIMIT_MEMLOCK is {}): raise it "
      "with `ulimit -l unlimited`, `memlock` in /etc/security/limits.conf, or "
      "LimitMEMLOCK=infinity "
      "in a systemd unit",
      requested_bytes, limit);
}

std::string GidToString(const ibv_gid& gid) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, gid.raw, buf, sizeof(buf));
  return buf;
}

uint32_t MtuBytes(ibv_mtu mtu) {
  switch (mtu) {
    case IBV_MTU_256:
      return 256;
    case IBV_MTU_512:
      return 512;
    case IBV_MTU_1024:
      return 1024;
    case IBV_MTU_2048:
      return 2048;
    case IBV_MTU_4096:
      return 4096;
  }
  return 0;
}

Result<std::shared_ptr<VerbsDevice>> VerbsDevice::Open(const VerbsOptions& options) {
  int n = 0;
  std::unique_ptr<ibv_device*, DeviceListDeleter> list(ibv_get_device_list(&n));
  if (!list) {
    int err = errno;
    if (err == ENOSYS) {  // no /sys/class/infiniband: this kernel has no RDMA support loaded
      return Unavailable(NoDeviceAdvice() +
                         " [ibv_get_device_list: kernel has no RDMA support (ENOSYS)]");
    }
    return ErrnoStatus(StatusCode::kUnavailable,
                       "ibv_get_device_list failed (is rdma-core / libibverbs installed?)", err);
  }
  if (n == 0) return Unavailable(NoDeviceAdvice());

  std::shared_ptr<VerbsDevice> dev(new VerbsDevice());
  std::string port_report;
  for (int i = 0; i < n && !dev->ctx_; ++i) {
    const char* name = ibv_get_device_name(list.get()[i]);
    if (!options.device.empty() && options.device != name) continue;
    verbs::ContextPtr ctx(ibv_open_device(list.get()[i]));
    if (!ctx) {
      int err = errno;
      return ErrnoStatus(StatusCode::kUnavailable, fmt::format("ibv_open_device({})", name), err);
    }
    ibv_device_attr attr{};
    if (int rc = ibv_query_device(ctx.get(), &attr); rc != 0) {
      return ErrnoStatus(StatusCode::kUnavailable, fmt::format("ibv_query_device({})", name), rc);
    }
    for (uint32_t p = 1; p <= attr.phys_port_cnt; ++p) {
      if (options.port != 0 && options.port != p) continue;
      ibv_port_attr pa{};
      if (ibv_query_port(ctx.get(), static_cast<uint8_t>(p), &pa) != 0) continue;
      port_report += fmt::format("{}{} port {}: {}", port_report.empty() ? "" : "; ", name, p,
                                 ibv_port_state_str(pa.state));
      if (pa.state != IBV_PORT_ACTIVE) continue;
      dev->port_ = static_cast<uint8_t>(p);
      dev->is_roce_ = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
      dev->lid_ = pa.lid;
      dev->active_mtu_ = pa.active_mtu;
      VIGIL_RETURN_IF_ERROR(ChooseGid(ctx.get(), dev->port_, pa, options.gid_index, name,
                                      dev->gid_index_, dev->gid_));
      dev->name_ = name;
      dev->attr_ = attr;
      dev->ctx_ = std::move(ctx);
      break;
    }
  }
  if (!dev->ctx_) {
    if (!options.device.empty() && port_report.empty()) {
      return NotFound(fmt::format("RDMA device '{}' not found (available: {})", options.device,
                                  DeviceNames(list.get(), n)));
    }
    return Unavailable(fmt::format(
        "no ACTIVE port{} ({}); check the link with `rdma link` / `ibv_devinfo` and that its "
        "network interface is up",
        options.port ? fmt::format(" {}", options.port) : std::string(), port_report));
  }
  dev->pd_.reset(ibv_alloc_pd(dev->ctx_.get()));
  if (!dev->pd_) {
    int err = errno;
    return ErrnoStatus(StatusCode::kResourceExhausted, fmt::format("ibv_alloc_pd({})", dev->name_),
                       err);
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < (64u << 20) && geteuid() != 0) {
    log::Get("transport")->warn("{}", MemlockAdvice(64u << 20));
  }
  log::Get("transport")->debug("opened {}", dev->Describe());
  return dev;
}

std::string VerbsDevice::Describe() const {
  return fmt::format("{} port {} {} gid[{}]={} lid={} active_mtu={} max_qp_wr={} max_mw={}", name_,
                     port_, is_roce_ ? "RoCE" : "InfiniBand", gid_index_, GidToString(gid_), lid_,
                     MtuBytes(active_mtu_), attr_.max_qp_wr, attr_.max_mw);
}

namespace {
class VerbsMemoryRegion final : public MemoryRegion {
 public:
  VerbsMemoryRegion(std::shared_ptr<ibv_pd> pd, verbs::MrPtr mr, uint32_t access)
      : MemoryRegion(static_cast<std::byte*>(mr->addr), mr->length, mr->lkey, mr->rkey, access),
        pd_(std::move(pd)),
        mr_(std::move(mr)) {}
  ibv_mr* ibv() const { return mr_.get(); }

 private:
  std::shared_ptr<ibv_pd> pd_;  // keeps the PD (and device) alive until mr_ is deregistered
  verbs::MrPtr mr_;
};

class VerbsDomain final : public ProtectionDomain {
 public:
  VerbsDomain(std::shared_ptr<VerbsDevice> dev, std::shared_ptr<ibv_pd> pd)
      : dev_(std::move(dev)), pd_(std::move(pd)) {}
  Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size,
                                                 uint32_t access) override {
    return detail::RegisterIn(*dev_, pd_, addr, size, access);
  }
  Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) override {
    return detail::CreateConnectionIn(dev_, pd_, opts);
  }

 private:
  std::shared_ptr<VerbsDevice> dev_;
  std::shared_ptr<ibv_pd> pd_;
};
}  // namespace

namespace detail {
ibv_mr* IbvMrOf(const MemoryRegion& mr) {
  auto* v = dynamic_cast<const VerbsMemoryRegion*>(&mr);
  return v ? v->ibv() : nullptr;
}
}  // namespace detail

Result<std::unique_ptr<VerbsTransport>> VerbsTransport::Open(const VerbsOptions& options) {
  VIGIL_ASSIGN_OR_RETURN(auto dev, VerbsDevice::Open(options));
  return std::unique_ptr<VerbsTransport>(new VerbsTransport(std::move(dev)));
}

Result<std::unique_ptr<MemoryRegion>> VerbsTransport::Register(void* addr, size_t size,
                                                               uint32_t access) {
  return detail::RegisterIn(*dev_, DefaultPd(), addr, size, access);
}

std::shared_ptr<ibv_pd> VerbsTransport::DefaultPd() const {
  return std::shared_ptr<ibv_pd>(dev_, dev_->pd());  // aliasing: owns the device
}

Result<std::unique_ptr<Connection>> VerbsTransport::CreateConnection(
    const ConnectionOptions& opts) {
  return detail::CreateConnectionIn(dev_, DefaultPd(), opts);
}

Result<std::unique_ptr<ProtectionDomain>> VerbsTransport::CreateDomain() {
  ibv_pd* raw = ibv_alloc_pd(dev_->context());
  if (raw == nullptr) {
    int err = errno;
    return ErrnoStatus(StatusCode::kResourceExhausted,
                       fmt::format("ibv_alloc_pd({}) for a new protection domain", dev_->name()),
                       err);
  }
  // The deleter holds the device: the PD is deallocated before the context closes.
  std::shared_ptr<ibv_pd> pd(raw, [dev = dev_](ibv_pd* p) { verbs::PdDeleter{}(p); });
  return std::unique_ptr<ProtectionDomain>(new VerbsDomain(dev_, std::move(pd)));
}

namespace detail {
Result<std::unique_ptr<MemoryRegion>> RegisterIn(const VerbsDevice& dev, std::shared_ptr<ibv_pd> pd,
                                                 void* addr, size_t size, uint32_t access) {
  if (addr == nullptr || size == 0) {
    return InvalidArgument(fmt::format("cannot register {} bytes at {}", size, addr));
  }
  int flags = 0;
  if (access & (kLocalWrite | kRemoteWrite)) flags |= IBV_ACCESS_LOCAL_WRITE;
  if (access & kRemoteWrite) flags |= IBV_ACCESS_REMOTE_WRITE;
  if (access & kRemoteRead) flags |= IBV_ACCESS_REMOTE_READ;
  if (access & kWindowBind) flags |= IBV_ACCESS_MW_BIND;
  verbs::MrPtr mr(ibv_reg_mr(pd.get(), addr, size, flags));
  if (!mr) {
    int err = errno;
    Status st = ErrnoStatus(StatusCode::kResourceExhausted,
                            fmt::format("ibv_reg_mr({} bytes) on {}", size, dev.name()), err);
    if (err == ENOMEM || err == EPERM || err == EAGAIN) st = st.WithContext(MemlockAdvice(size));
    return st;
  }
  return std::unique_ptr<MemoryRegion>(new VerbsMemoryRegion(std::move(pd), std::move(mr), access));
}
}  // namespace detail

bool VerbsTransport::SupportsMemoryWindows() const {
  return dev_->attr().max_mw > 0 &&
         (dev_->attr().device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2B) != 0;
}

Result<std::unique_ptr<MemoryWindow>> VerbsTransport::AllocateWindow() {
  if (!SupportsMemoryWindows()) {
    return FailedPrecondition(fmt::format("{} does not support type-2B memory windows (max_mw {})",
                                          dev_->name(), dev_->attr().max_mw));
  }
  auto window = std::make_unique<MemoryWindow>();
  window->dev_ = dev_;
  window->mw_.reset(ibv_alloc_mw(dev_->pd(), IBV_MW_TYPE_2));
  if (!window->mw_) {
    int err = errno;
    return ErrnoStatus(StatusCode::kResourceExhausted,
                       fmt::format("ibv_alloc_mw(type 2) on {}", dev_->name()), err);
  }
  window->rkey_ = window->mw_->rkey;
  return window;
}

}  // namespace vigil::transport
