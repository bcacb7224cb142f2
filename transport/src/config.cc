#include "vigil/transport/config.h"

namespace vigil::transport {

Status LoadTransportConfig(const ConfigReader& root, VerbsOptions& verbs, ConnectionOptions& conn) {
  VIGIL_ASSIGN_OR_RETURN(ConfigReader t, root.Section("transport"));
  VIGIL_RETURN_IF_ERROR(t.RejectUnknownKeys({"device", "port", "gid_index", "sq_depth", "rq_depth",
                                             "max_inline", "signal_every", "ack_timeout",
                                             "retry_count", "rnr_retry", "peer_timeout_ms"}));
  VIGIL_RETURN_IF_ERROR(t.GetString("device", verbs.device));
  VIGIL_RETURN_IF_ERROR(t.GetUint32("port", verbs.port, 0, 255));
  int64_t gid = verbs.gid_index;
  VIGIL_RETURN_IF_ERROR(t.GetInt("gid_index", gid, -1, 255));
  verbs.gid_index = static_cast<int>(gid);
  VIGIL_RETURN_IF_ERROR(t.GetUint32("sq_depth", conn.sq_depth, 1, 32768));
  VIGIL_RETURN_IF_ERROR(t.GetUint32("rq_depth", conn.rq_depth, 1, 32768));
  VIGIL_RETURN_IF_ERROR(t.GetUint32("max_inline", conn.max_inline, 0, 4096));
  VIGIL_RETURN_IF_ERROR(t.GetUint32("signal_every", conn.signal_every, 1, 32768));
  uint32_t v = conn.ack_timeout;
  VIGIL_RETURN_IF_ERROR(t.GetUint32("ack_timeout", v, 0, 31));
  conn.ack_timeout = static_cast<uint8_t>(v);
  v = conn.retry_count;
  VIGIL_RETURN_IF_ERROR(t.GetUint32("retry_count", v, 0, 7));
  conn.retry_count = static_cast<uint8_t>(v);
  v = conn.rnr_retry;
  VIGIL_RETURN_IF_ERROR(t.GetUint32("rnr_retry", v, 0, 7));
  conn.rnr_retry = static_cast<uint8_t>(v);
  VIGIL_RETURN_IF_ERROR(t.GetUint32("peer_timeout_ms", conn.peer_timeout_ms, 0, 3600000));
  if (conn.signal_every > conn.sq_depth) {
    return InvalidArgument(
        root.source() + ": key 'transport.signal_every' = '" + std::to_string(conn.signal_every) +
        "' must not exceed transport.sq_depth (" + std::to_string(conn.sq_depth) + ")");
  }
  return Status::Ok();
}

}  // namespace vigil::transport
