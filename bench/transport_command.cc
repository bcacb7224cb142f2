// `vigil-bench transport`: RDMA WRITE ping-pong round trip through vigil's transport, next to
// perftest's ib_write_lat measured in the same run on the same device.
#include <fmt/format.h>

#include "harness.h"
#include "pingpong.h"

namespace vigil::bench {

int RunTransportBench(const TransportBenchOptions& o) {
  PingPongOptions pp;
  pp.sizes = o.sizes;
  pp.iterations = o.common.iterations;
  pp.warmup = o.common.warmup;
  if (Status st = ValidateSizes(pp.sizes); !st.ok()) {
    fmt::print(stderr, "error: --sizes: {}\n", st.message());
    return 2;
  }
  auto setup = OpenAndDescribe(o.common);
  if (!setup) return 1;
  auto server_buf = PingPongBuffer::Allocate(*setup->transport);
  auto client_buf = PingPongBuffer::Allocate(*setup->transport);
  if (!server_buf.ok() || !client_buf.ok()) {
    fmt::print(stderr, "error: {}\n",
               (server_buf.ok() ? client_buf : server_buf).status().ToString());
    return 1;
  }
  fmt::print("# vigil RDMA WRITE ping-pong: {} iterations per size after {} warm-up\n",
             pp.iterations, pp.warmup);
  // One round: a connection pair that ping-pongs `iterations` times at one size.
  auto measure = [&](uint32_t bytes, uint64_t iterations) -> Result<Row> {
    PingPongOptions round = pp;
    round.sizes = {bytes};
    round.iterations = iterations;
    std::vector<PingPongResult> results;
    Side server{{server_buf->Landing()},
                [&](transport::Connection& c) { return PrepareReceive(c, *server_buf); },
                [&](transport::Connection& c, const transport::PeerInfo& peer) -> Status {
                  VIGIL_ASSIGN_OR_RETURN(auto landing, peer.Region("pingpong"));
                  return Serve(c, *server_buf, landing, round.stall_timeout);
                }};
    Side client{{client_buf->Landing()},
                [&](transport::Connection& c) { return PrepareReceive(c, *client_buf); },
                [&](transport::Connection& c, const transport::PeerInfo& peer) -> Status {
                  VIGIL_ASSIGN_OR_RETURN(auto landing, peer.Region("pingpong"));
                  VIGIL_ASSIGN_OR_RETURN(results, RunClient(c, *client_buf, landing, round));
                  return Status::Ok();
                }};
    VIGIL_RETURN_IF_ERROR(RunPair(*setup, std::move(server), std::move(client)));
    if (results.size() != 1) return Internal("the ping-pong client measured no round");
    return Row{results[0].bytes, results[0].bytes, results[0].rtt, std::nullopt};
  };
  return Report(*setup, o.common, "transport", Baseline{"ib_write_lat", ""}, 1.2, o.sizes, measure);
}

}  // namespace vigil::bench
