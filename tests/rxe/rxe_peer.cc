// vigil-rxe-peer: the remote side of the two-process rxe tests. Listens for bootstrap connections,
// exposes a data region and a read-only guard region, and executes the commands of
// peer_protocol.h. Prints "PORT <n>" once it listens.
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "peer_protocol.h"
#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/security/tls_flags.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/verbs.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;
using transport::Connection;
using transport::RegisteredBuffer;

constexpr int kRecvs = 16;

struct Session {
  std::unique_ptr<Connection> conn;
  std::unique_ptr<RegisteredBuffer> msgs;  // kRecvs receive slots + one reply slot
  transport::RemoteRegion client_data;
};

Status PostRecvSlot(Session& s, int slot) {
  return s.conn->PostRecv(s.msgs->mr().Slice(slot * kPeerMsgBytes, kPeerMsgBytes), slot);
}

// Returns false when the session should end.
bool Handle(Session& s, const RegisteredBuffer& data, int slot, const transport::Completion& c,
            const std::shared_ptr<spdlog::logger>& logger) {
  PeerCmd cmd{};
  std::memcpy(&cmd, s.msgs->data() + slot * kPeerMsgBytes,
              std::min<size_t>(sizeof(cmd), c.byte_len));
  const size_t reply = kRecvs * kPeerMsgBytes;
  Status st;
  switch (cmd.op) {
    case kPeerEcho:
      std::memcpy(s.msgs->data() + reply, s.msgs->data() + slot * kPeerMsgBytes, c.byte_len);
      st = s.conn->PostSend(s.msgs->mr().Slice(reply, c.byte_len), 1000);
      break;
    case kPeerDigest: {
      PeerDigestReply r{};
      if (cmd.offset <= kPeerDataBytes && cmd.len <= kPeerDataBytes - cmd.offset) {
        r.digest = XXH3_64bits(data.data() + cmd.offset, cmd.len);
        r.ok = 1;
      }
      std::memcpy(s.msgs->data() + reply, &r, sizeof(r));
      st = s.conn->PostSend(s.msgs->mr().Slice(reply, sizeof(r)), 1001);
      break;
    }
    case kPeerWriteBack: {
      auto dst = s.client_data.At(cmd.offset, cmd.len);
      if (!dst.ok()) {
        logger->warn("write-back refused: {}", dst.status().ToString());
        return true;
      }
      transport::SendFlags f;
      f.imm = cmd.imm;
      st = s.conn->PostWrite(data.mr().Slice(cmd.offset, cmd.len), *dst, 1002, f);
      break;
    }
    case kPeerExit:
      return false;
    default:
      logger->warn("unknown command {}", cmd.op);
      return true;
  }
  if (st.ok()) st = transport::WaitSendOk(*s.conn, 30s);
  if (!st.ok()) {
    logger->warn("command {} failed: {}", cmd.op, st.ToString());
    return false;
  }
  return PostRecvSlot(s, slot).ok();
}

int Main(const std::string& device, const std::string& listen) {
  auto logger = log::Get("rxe-peer");
  auto t = transport::VerbsTransport::Open({.device = device});
  if (!t.ok()) {
    logger->error("{}", t.status().ToString());
    return 1;
  }
  auto& transport = **t;
  auto data = RegisteredBuffer::Allocate(transport, kPeerDataBytes + kPeerGuardBytes,
                                         transport::kLocalWrite);
  if (!data.ok()) {
    logger->error("{}", data.status().ToString());
    return 1;
  }
  for (size_t i = 0; i < data->size(); ++i) data->data()[i] = std::byte{PeerPattern(i)};
  // Two registrations over one buffer: "data" (read/write) and, right after it, "guard"
  // (read-only): an out-of-bounds write through "data" must never reach "guard".
  auto data_mr = transport.Register(data->data(), kPeerDataBytes, transport::kAllAccess);
  auto guard_mr =
      transport.Register(data->data() + kPeerDataBytes, kPeerGuardBytes, transport::kRemoteRead);
  if (!data_mr.ok() || !guard_mr.ok()) {
    logger->error("registering regions failed");
    return 1;
  }

  std::mutex mu;
  std::vector<std::unique_ptr<Session>> pending;
  transport::BootstrapServer server(transport, "rxe-peer", transport::ConnectionOptions{});
  server.AddService(
      kPeerService,
      [&](std::unique_ptr<Connection> conn,
          const transport::PeerInfo& peer) -> Result<std::vector<transport::RemoteRegion>> {
        auto s = std::make_unique<Session>();
        VIGIL_ASSIGN_OR_RETURN(s->client_data, peer.Region("data"));
        VIGIL_ASSIGN_OR_RETURN(auto msgs,
                               RegisteredBuffer::Allocate(transport, (kRecvs + 1) * kPeerMsgBytes,
                                                          transport::kLocalWrite));
        s->msgs = std::make_unique<RegisteredBuffer>(std::move(msgs));
        s->conn = std::move(conn);
        for (int i = 0; i < kRecvs; ++i) VIGIL_RETURN_IF_ERROR(PostRecvSlot(*s, i));
        std::lock_guard lock(mu);
        pending.push_back(std::move(s));
        return std::vector<transport::RemoteRegion>{(*data_mr)->Describe("data"),
                                                    (*guard_mr)->Describe("guard")};
      });
  if (Status st = server.Start(listen); !st.ok()) {
    logger->error("{}", st.ToString());
    return 1;
  }
  std::printf("PORT %d\n", server.port());
  std::fflush(stdout);

  std::vector<std::unique_ptr<Session>> sessions;
  while (!cli::ShutdownRequested()) {
    {
      std::lock_guard lock(mu);
      for (auto& s : pending) sessions.push_back(std::move(s));
      pending.clear();
    }
    if (sessions.empty()) {
      std::this_thread::sleep_for(5ms);
      continue;
    }
    for (size_t i = 0; i < sessions.size();) {
      auto c = sessions[i]->conn->WaitRecv(20ms);
      bool keep = true;
      if (c.ok()) {
        if (!c->ok()) {
          logger->info("session ended: {}", c->ToStatus(sessions[i]->conn->name()).ToString());
          keep = false;
        } else {
          keep = Handle(*sessions[i], *data, static_cast<int>(c->wr_id), *c, logger);
          if (!keep) {
            server.Shutdown();
            return 0;
          }
        }
      }
      if (keep) {
        ++i;
      } else {
        sessions.erase(sessions.begin() + static_cast<long>(i));
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace vigil::testing

int main(int argc, char** argv) {
  CLI::App app{"vigil-rxe-peer: remote side of vigil's two-process real-verbs tests"};
  vigil::cli::CommonOptions common;
  std::string device, listen = "127.0.0.1:0";
  app.add_option("--device", device, "RDMA device (default: first with an ACTIVE port)");
  app.add_option("--listen", listen, "Bootstrap listen address host:port (port 0 = any)")
      ->capture_default_str();
  vigil::cli::AddCommonOptions(app, common);
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  return vigil::cli::Run(app, common, argc, argv, [&] {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    return vigil::testing::Main(device, listen);
  });
}
