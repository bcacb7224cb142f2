// Programs written against the replica API, after the MiBench programs the original evaluation
// used:
//   crc32  the CRC-32 (IEEE 802.3, as zlib and `crc32` compute it) of the input, read in chunks
//          of up to the context's max_read() (256 KiB by default);
//          output: "<crc as 8 hex digits> <bytes>\n".
//   susan  SUSAN image processing of a binary PGM (P5) image of at most 256 x 256 pixels:
//          smoothing, edges or corners (brightness threshold t); output: a P5 image.
// Both run unreplicated (LocalContext) and replicated (ChannelContext) with identical output.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/replica/context.h"

namespace vigil::workloads {

// crc32: `chunks_per_step` reads (each up to ctx.max_read() bytes) between checkpoints.
std::unique_ptr<replica::Program> MakeCrc32(uint32_t chunks_per_step = 4);

enum class SusanMode { kSmooth, kEdges, kCorners };
Result<SusanMode> ParseSusanMode(const std::string& s);  // "smooth" | "edges" | "corners"
inline constexpr uint32_t kSusanMaxSide = 256;
// `rows_per_step` output rows between checkpoints; `threshold` is SUSAN's brightness threshold.
std::unique_ptr<replica::Program> MakeSusan(SusanMode mode, uint32_t threshold = 20,
                                            uint32_t rows_per_step = 32);

// A deterministic test image (P5 PGM): gradients, shapes with sharp edges and corners, and
// pseudo-random noise from `seed`.
std::vector<std::byte> MakeTestImage(uint32_t width, uint32_t height, uint32_t seed);

// Builds a workload from its name and options ("crc32", or "susan" with mode "smooth", "edges",
// "corners"). Errors name the bad value.
Result<std::unique_ptr<replica::Program>> MakeWorkload(const std::string& name,
                                                       const std::string& susan_mode);

}  // namespace vigil::workloads
