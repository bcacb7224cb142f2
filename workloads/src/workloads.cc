#include "vigil/workloads/workloads.h"

#include <fmt/format.h>
#include <isa-l/crc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>

namespace vigil::workloads {
namespace {

using replica::ReplicaContext;

// ---- crc32 ----

struct Crc32State {
  uint32_t crc;
  uint32_t reserved;
  uint64_t bytes;
};

class Crc32 final : public replica::Program {
 public:
  explicit Crc32(uint32_t chunks_per_step) : chunks_(std::max<uint32_t>(1, chunks_per_step)) {}
  std::string name() const override { return "crc32"; }
  size_t state_bytes() const override { return sizeof(Crc32State); }
  Status Init(ReplicaContext&) override { return Status::Ok(); }

  Result<bool> Step(ReplicaContext& ctx) override {
    buf_.resize(ctx.max_read());  // transient, not state: refilled by every Read
    for (uint32_t i = 0; i < chunks_; ++i) {
      VIGIL_ASSIGN_OR_RETURN(size_t n, ctx.Read(buf_));
      auto& s = ctx.State<Crc32State>();  // after the call: the voter may have repaired it
      if (n == 0) {
        const std::string line = fmt::format("{:08x} {}\n", s.crc, s.bytes);
        VIGIL_RETURN_IF_ERROR(ctx.Write(std::as_bytes(std::span(line))));
        return true;
      }
      s.crc = crc32_gzip_refl(s.crc, reinterpret_cast<const unsigned char*>(buf_.data()),
                              static_cast<uint64_t>(n));
      s.bytes += n;
    }
    return false;
  }

 private:
  uint32_t chunks_;
  std::vector<std::byte> buf_;
};

// ---- susan ----

constexpr size_t kMaxPixels = size_t{kSusanMaxSide} * kSusanMaxSide;
constexpr size_t kMaxHeader = 64;
constexpr int kRadius = 3;

enum SusanPhase : uint32_t { kReading, kResponse, kMarking, kWriting, kFinished };

struct SusanState {
  uint32_t phase;
  uint32_t width;
  uint32_t height;
  uint32_t row;         // next row of the current phase
  uint32_t raw_bytes;   // input bytes held in raw
  uint32_t pixel_base;  // offset of the first pixel in raw
  uint32_t out_header;  // bytes of the output header in out
  uint32_t reserved;
  std::array<uint8_t, kMaxHeader + kMaxPixels> raw;
  std::array<uint8_t, kMaxHeader + kMaxPixels> out;
  std::array<uint16_t, kMaxPixels> response;
};

// The 37-pixel circular mask: the half-width of each row dy = -3..3.
constexpr std::array<int, 7> kMaskHalfWidth = {1, 2, 3, 3, 3, 2, 1};

class Susan final : public replica::Program {
 public:
  Susan(SusanMode mode, uint32_t threshold, uint32_t rows_per_step)
      : mode_(mode), rows_(std::max<uint32_t>(1, rows_per_step)) {
    const double t = std::max<uint32_t>(1, threshold);
    for (int d = -255; d <= 255; ++d) {
      // Brightness similarity: exp(-(d/t)^6) for the USAN, exp(-(d/t)^2) for smoothing.
      usan_[static_cast<size_t>(d + 255)] =
          static_cast<uint8_t>(std::lround(100.0 * std::exp(-std::pow(d / t, 6.0))));
      smooth_b_[static_cast<size_t>(d + 255)] =
          static_cast<uint32_t>(std::lround(100.0 * std::exp(-(d / t) * (d / t))));
    }
    for (int dy = -kRadius; dy <= kRadius; ++dy) {
      for (int dx = -kRadius; dx <= kRadius; ++dx) {
        smooth_s_[static_cast<size_t>((dy + kRadius) * 7 + dx + kRadius)] =
            static_cast<uint32_t>(std::lround(100.0 * std::exp(-(dx * dx + dy * dy) / 4.0)));
      }
    }
  }
  std::string name() const override { return "susan"; }
  size_t state_bytes() const override { return sizeof(SusanState); }
  Status Init(ReplicaContext&) override { return Status::Ok(); }

  Result<bool> Step(ReplicaContext& ctx) override {
    switch (ctx.State<SusanState>().phase) {
      case kReading:
        return ReadSome(ctx);
      case kResponse:
      case kMarking:
        return Process(ctx);
      case kWriting:
        return WriteOut(ctx);
      default:
        return true;
    }
  }

 private:
  // Reads straight into the state: the agreed bytes are copied there after the verdict, so a
  // repair during the read (which rewrites the state) cannot lose them.
  Result<bool> ReadSome(ReplicaContext& ctx) {
    for (uint32_t i = 0; i < 16; ++i) {
      auto& s0 = ctx.State<SusanState>();
      const size_t room = s0.raw.size() - s0.raw_bytes;
      if (room == 0) {
        return InvalidArgument(
            fmt::format("susan: input larger than a {0}x{0} P5 image", kSusanMaxSide));
      }
      VIGIL_ASSIGN_OR_RETURN(
          size_t n, ctx.Read(std::as_writable_bytes(std::span(s0.raw)).subspan(s0.raw_bytes)));
      auto& s = ctx.State<SusanState>();
      if (n == 0) {
        VIGIL_RETURN_IF_ERROR(ParseHeader(s));
        s.phase = kResponse;
        s.row = 0;
        return false;
      }
      s.raw_bytes += static_cast<uint32_t>(n);
    }
    return false;
  }

  static Status ParseHeader(SusanState& s) {
    // "P5" whitespace width whitespace height whitespace maxval, one whitespace byte, pixels.
    const uint8_t* p = s.raw.data();
    const uint32_t n = s.raw_bytes;
    uint32_t pos = 0;
    auto space = [&] {
      while (pos < n && pos < kMaxHeader && std::isspace(p[pos])) ++pos;
    };
    auto number = [&](const char* what) -> Result<uint32_t> {
      space();
      uint64_t v = 0;
      uint32_t digits = 0;
      while (pos < n && pos < kMaxHeader && p[pos] >= '0' && p[pos] <= '9' && digits < 6) {
        v = v * 10 + (p[pos++] - '0');
        ++digits;
      }
      if (digits == 0) return InvalidArgument(fmt::format("susan: PGM header: bad {}", what));
      return static_cast<uint32_t>(v);
    };
    if (n < 2 || p[0] != 'P' || p[1] != '5') {
      return InvalidArgument("susan: input is not a binary PGM (does not start with \"P5\")");
    }
    pos = 2;
    VIGIL_ASSIGN_OR_RETURN(uint32_t w, number("width"));
    VIGIL_ASSIGN_OR_RETURN(uint32_t h, number("height"));
    VIGIL_ASSIGN_OR_RETURN(uint32_t maxval, number("maxval"));
    if (w < 2 * kRadius + 1 || h < 2 * kRadius + 1 || w > kSusanMaxSide || h > kSusanMaxSide) {
      return InvalidArgument(fmt::format("susan: image {}x{} outside {}x{} .. {}x{}", w, h,
                                         2 * kRadius + 1, 2 * kRadius + 1, kSusanMaxSide,
                                         kSusanMaxSide));
    }
    if (maxval != 255) {
      return InvalidArgument(fmt::format("susan: maxval {} (only 8-bit images, 255)", maxval));
    }
    if (pos >= n || !std::isspace(p[pos])) return InvalidArgument("susan: PGM header: no pixels");
    ++pos;
    if (n - pos != w * h) {
      return InvalidArgument(fmt::format("susan: {}x{} image needs {} pixel bytes, input has {}", w,
                                         h, w * h, n - pos));
    }
    s.width = w;
    s.height = h;
    s.pixel_base = pos;
    const std::string header = fmt::format("P5\n{} {}\n255\n", w, h);
    std::memcpy(s.out.data(), header.data(), header.size());
    s.out_header = static_cast<uint32_t>(header.size());
    return Status::Ok();
  }

  Result<bool> Process(ReplicaContext& ctx) {
    auto& s = ctx.State<SusanState>();
    const uint32_t end = std::min(s.height, s.row + rows_);
    for (uint32_t y = s.row; y < end; ++y) {
      if (s.phase == kResponse) {
        ResponseRow(s, y);
      } else {
        MarkRow(s, y);
      }
    }
    s.row = end;
    if (s.row == s.height) {
      s.row = 0;
      s.phase = (s.phase == kResponse && mode_ != SusanMode::kSmooth) ? kMarking : kWriting;
    }
    return false;
  }

  uint8_t In(const SusanState& s, uint32_t x, uint32_t y) const {
    return s.raw[s.pixel_base + y * s.width + x];
  }
  uint8_t& Out(SusanState& s, uint32_t x, uint32_t y) const {
    return s.out[s.out_header + y * s.width + x];
  }

  // Pass 1: the USAN response of each pixel (smoothing writes its output here directly).
  void ResponseRow(SusanState& s, uint32_t y) const {
    const uint32_t w = s.width;
    const bool inner_y = y >= kRadius && y + kRadius < s.height;
    const uint32_t g = mode_ == SusanMode::kEdges ? 2775 : 1850;  // 3/4, 1/2 of 37 * 100
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t c = In(s, x, y);
      if (!inner_y || x < kRadius || x + kRadius >= w) {
        s.response[y * w + x] = 0;
        Out(s, x, y) = c;
        continue;
      }
      if (mode_ == SusanMode::kSmooth) {
        uint64_t total = 0, sum = 0;
        for (int dy = -kRadius; dy <= kRadius; ++dy) {
          for (int dx = -kRadius; dx <= kRadius; ++dx) {
            if (dx == 0 && dy == 0) continue;
            const uint8_t v = In(s, x + dx, y + dy);
            const uint64_t wgt = uint64_t{smooth_s_[(dy + kRadius) * 7 + dx + kRadius]} *
                                 smooth_b_[static_cast<size_t>(v - c + 255)];
            total += wgt;
            sum += wgt * v;
          }
        }
        Out(s, x, y) = total == 0 ? c : static_cast<uint8_t>((sum + total / 2) / total);
        continue;
      }
      uint32_t n = 0;
      for (int dy = -kRadius; dy <= kRadius; ++dy) {
        const int hw = kMaskHalfWidth[static_cast<size_t>(dy + kRadius)];
        for (int dx = -hw; dx <= hw; ++dx) {
          n += usan_[static_cast<size_t>(In(s, x + dx, y + dy) - c + 255)];
        }
      }
      s.response[y * w + x] = static_cast<uint16_t>(n < g ? g - n : 0);
    }
  }

  // Pass 2: features are local maxima of the response (3x3 for edges, 5x5 for corners), drawn
  // white on a half-brightness copy of the image.
  void MarkRow(SusanState& s, uint32_t y) const {
    const uint32_t w = s.width;
    const int r = mode_ == SusanMode::kEdges ? 1 : 2;
    for (uint32_t x = 0; x < w; ++x) {
      const uint16_t v = s.response[y * w + x];
      bool peak = v > 0;
      for (int dy = -r; dy <= r && peak; ++dy) {
        for (int dx = -r; dx <= r && peak; ++dx) {
          const int64_t yy = int64_t{y} + dy, xx = int64_t{x} + dx;
          if (yy < 0 || xx < 0 || yy >= s.height || xx >= w || (dx == 0 && dy == 0)) continue;
          const uint16_t o = s.response[static_cast<size_t>(yy) * w + static_cast<size_t>(xx)];
          // Ties go to the earlier pixel in scan order, so a plateau yields one peak.
          if (o > v || (o == v && (dy < 0 || (dy == 0 && dx < 0)))) peak = false;
        }
      }
      Out(s, x, y) = peak ? 255 : static_cast<uint8_t>(In(s, x, y) / 2);
    }
  }

  Result<bool> WriteOut(ReplicaContext& ctx) {
    auto& s = ctx.State<SusanState>();
    const size_t n = s.out_header + size_t{s.width} * s.height;
    // Copy out of the state first: the call may repair (overwrite) the state region.
    std::vector<std::byte> image(n);
    std::memcpy(image.data(), s.out.data(), n);
    VIGIL_RETURN_IF_ERROR(ctx.Write(image));
    ctx.State<SusanState>().phase = kFinished;
    return true;
  }

  SusanMode mode_;
  uint32_t rows_;
  std::array<uint8_t, 511> usan_{};
  std::array<uint32_t, 511> smooth_b_{};
  std::array<uint32_t, 49> smooth_s_{};
};

}  // namespace

std::unique_ptr<replica::Program> MakeCrc32(uint32_t chunks_per_step) {
  return std::make_unique<Crc32>(chunks_per_step);
}

Result<SusanMode> ParseSusanMode(const std::string& s) {
  if (s == "smooth") return SusanMode::kSmooth;
  if (s == "edges") return SusanMode::kEdges;
  if (s == "corners") return SusanMode::kCorners;
  return InvalidArgument(
      fmt::format("susan mode '{}' is not one of smooth, edges, corners", s.substr(0, 32)));
}

std::unique_ptr<replica::Program> MakeSusan(SusanMode mode, uint32_t threshold,
                                            uint32_t rows_per_step) {
  return std::make_unique<Susan>(mode, threshold, rows_per_step);
}

std::vector<std::byte> MakeTestImage(uint32_t width, uint32_t height, uint32_t seed) {
  const std::string header = fmt::format("P5\n{} {}\n255\n", width, height);
  std::vector<std::byte> img(header.size() + size_t{width} * height);
  std::memcpy(img.data(), header.data(), header.size());
  uint32_t lcg = seed * 2654435761u + 1;
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      uint32_t v = (x * 160 / std::max<uint32_t>(1, width)) + 40;  // horizontal gradient
      const uint32_t cx = width / 3, cy = height / 3, rr = std::min(width, height) / 6;
      const int64_t dx = int64_t{x} - cx, dy = int64_t{y} - cy;
      if (dx * dx + dy * dy < int64_t{rr} * rr) v = 230;  // bright disc
      if (x > width / 2 && x < width * 7 / 8 && y > height / 2 && y < height * 7 / 8) v = 20;
      if (x > width / 8 && x < width / 3 && y > height * 2 / 3 && y < height * 5 / 6) v = 200;
      lcg = lcg * 1664525u + 1013904223u;
      v = std::min<uint32_t>(255, v + ((lcg >> 24) & 7));  // a little noise
      img[header.size() + size_t{y} * width + x] = static_cast<std::byte>(v);
    }
  }
  return img;
}

Result<std::unique_ptr<replica::Program>> MakeWorkload(const std::string& name,
                                                       const std::string& susan_mode) {
  if (name == "crc32") return MakeCrc32();
  if (name == "susan") {
    VIGIL_ASSIGN_OR_RETURN(SusanMode mode, ParseSusanMode(susan_mode));
    return MakeSusan(mode);
  }
  return InvalidArgument(
      fmt::format("workload '{}' is not one of crc32, susan", name.substr(0, 32)));
}

}  // namespace vigil::workloads
