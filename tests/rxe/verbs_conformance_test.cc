// Runs the transport conformance suite against libibverbs on a real (or soft-RoCE) device, both
// ends in this process on the same device.
#include "rdma_env.h"
#include "transport_conformance.h"
#include "vigil/transport/verbs.h"

namespace vigil::testing {

std::vector<TransportFactory> ConformanceFactories() {
  return {{"Verbs", []() -> Result<TransportPair> {
             VIGIL_ASSIGN_OR_RETURN(auto t,
                                    transport::VerbsTransport::Open({.device = RdmaDevice()}));
             std::shared_ptr<transport::Transport> shared = std::move(t);
             return TransportPair{shared, shared};
           }}};
}

}  // namespace vigil::testing

// Verbs-only: a type-2 memory window grants the peer access to part of a registration, only over
// the queue pair it is bound to, and dies with the window.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "rdma_env.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;

TEST(VerbsMemoryWindow, BoundWindowGrantsAccessUntilDeallocated) {
  auto opened = transport::VerbsTransport::Open({.device = RdmaDevice()});
  if (!opened.ok()) {
    VIGIL_SKIP_WITHOUT_RDMA(opened.status());
  }
  auto& t = **opened;
  if (!t.SupportsMemoryWindows()) GTEST_SKIP() << t.Describe() << " has no type-2B memory windows";
  auto a = t.CreateConnection({.name = "client"});
  auto s = t.CreateConnection({.name = "store"});
  ASSERT_TRUE(a.ok() && s.ok());
  ASSERT_TRUE((*a)->Connect((*s)->local_endpoint()).ok());
  ASSERT_TRUE((*s)->Connect((*a)->local_endpoint()).ok());
  auto src = transport::RegisteredBuffer::Allocate(t, 4096, transport::kAllAccess);
  auto arena = transport::RegisteredBuffer::Allocate(
      t, 8192, transport::kAllAccess | transport::kWindowBind);
  ASSERT_TRUE(src.ok() && arena.ok()) << arena.status();
  std::memset(src->data(), 0xAB, 4096);

  auto window = t.AllocateWindow();
  ASSERT_TRUE(window.ok()) << window.status();
  auto* store = dynamic_cast<transport::VerbsConnection*>(s->get());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->PostBindWindow(**window, arena->mr(), 4096, 4096, transport::kRemoteWrite, 1).ok());
  ASSERT_TRUE(transport::WaitSendOk(*store, 30s).ok());

  // The client writes through the window's key into the bound part.
  const uint64_t base = reinterpret_cast<uint64_t>(arena->data()) + 4096;
  ASSERT_TRUE((*a)->PostWrite(src->mr().Slice(0, 256), {base + 100, (*window)->rkey()}, 2).ok());
  Status st = transport::WaitSendOk(**a, 30s);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(arena->data()[4096 + 100], std::byte{0xAB});
  EXPECT_EQ(arena->data()[100], std::byte{0}) << "outside the window must be untouched";

  // Revoked: after ibv_dealloc_mw the same key is refused by the device.
  const uint32_t old_key = (*window)->rkey();
  window->reset();
  std::memset(arena->data() + 4096, 0, 4096);
  ASSERT_TRUE((*a)->PostWrite(src->mr().Slice(0, 64), {base, old_key}, 3).ok());
  auto c = (*a)->WaitSend(30s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->status, transport::WcStatus::kRemoteAccessError) << c->ToStatus("client");
  EXPECT_EQ(arena->data()[4096], std::byte{0}) << "a revoked key must not write";
}

}  // namespace
}  // namespace vigil::testing

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace vigil::testing {
namespace {

// In a child: drop CAP_IPC_LOCK (root ignores RLIMIT_MEMLOCK with it), cap locked memory at
// 64 KiB, then register 1 MiB. The error must name the limit and the fix.
void RegisterOverTheMemlockLimit() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) std::exit(10);
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
  if (syscall(SYS_capset, &hdr, data) != 0) std::exit(11);
  rlimit rl{64 << 10, 64 << 10};
  if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) std::exit(12);
  auto t = transport::VerbsTransport::Open({.device = RdmaDevice()});
  if (!t.ok()) std::exit(13);
  std::vector<std::byte> big(1 << 20);
  auto mr = (*t)->Register(big.data(), big.size(), transport::kAllAccess);
  if (mr.ok()) std::exit(14);
  std::fprintf(stderr, "%s\n", mr.status().ToString().c_str());
  std::exit(0);
}

TEST(VerbsMemlock, RegistrationBeyondTheLimitNamesLimitAndFix) {
  auto t = transport::VerbsTransport::Open({.device = RdmaDevice()});
  if (!t.ok()) {
    VIGIL_SKIP_WITHOUT_RDMA(t.status());
  }
  t->reset();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(RegisterOverTheMemlockLimit(), ::testing::ExitedWithCode(0),
              "RESOURCE_EXHAUSTED: registering 1048576 bytes may exceed the locked-memory limit "
              "\\(RLIMIT_MEMLOCK is 64 KiB\\): raise it with `ulimit -l unlimited`.*ibv_reg_mr");
}

}  // namespace
}  // namespace vigil::testing
