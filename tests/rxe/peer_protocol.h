// The tiny command protocol between the two-process rxe test and vigil-rxe-peer. Commands travel
// as SENDs; the peer answers with SEND (echo, digest) or WRITE_WITH_IMM (write-back).
#pragma once

#include <cstdint>

namespace vigil::testing {

inline constexpr char kPeerService[] = "rxe-peer";
inline constexpr size_t kPeerDataBytes = 64 * 1024;   // region "data": read/write
inline constexpr size_t kPeerGuardBytes = 64 * 1024;  // region "guard": read-only, right after data
inline constexpr size_t kPeerMsgBytes = 256;
inline constexpr uint8_t kPeerPatternSeed = 0x5A;

enum PeerOp : uint32_t {
  kPeerEcho = 1,       // SEND the command back unchanged
  kPeerDigest = 2,     // SEND back XXH3-64 of data[offset, offset+len)
  kPeerWriteBack = 3,  // WRITE_WITH_IMM data[offset, +len) to the client's "data" at offset
  kPeerExit = 4,
};

struct PeerCmd {
  uint32_t op;
  uint32_t len;
  uint64_t offset;
  uint32_t imm;
  uint32_t pad;
};

struct PeerDigestReply {
  uint64_t digest;
  uint32_t ok;  // 0 when [offset, +len) was out of bounds
  uint32_t pad;
};

// Byte i of the peer's initial data+guard buffer.
inline uint8_t PeerPattern(size_t i) { return static_cast<uint8_t>(kPeerPatternSeed + i * 13); }

}  // namespace vigil::testing
