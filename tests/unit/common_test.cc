#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "vigil/common/adaptive_wait.h"
#include "vigil/common/config.h"
#include "vigil/common/histogram.h"
#include "vigil/common/logging.h"
#include "vigil/common/output_file.h"
#include "vigil/common/status.h"
#include "vigil/common/text.h"

namespace vigil {
namespace {

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd value " + std::to_string(v));
  return v / 2;
}

Result<int> Quarter(int v) {
  VIGIL_ASSIGN_OR_RETURN(int h, Half(v));
  VIGIL_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, OkCarriesNothingAndContextKeepsItOk) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.ToString(), "OK");
  EXPECT_TRUE(ok.WithContext("anything").ok());
}

TEST(Status, ContextIsPrependedAndCodeKept) {
  Status st = NotFound("device 'mlx5_9'").WithContext("opening transport");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "opening transport: device 'mlx5_9'");
  EXPECT_EQ(st.ToString(), "NOT_FOUND: opening transport: device 'mlx5_9'");
}

TEST(Status, ErrnoStatusNamesTheOperationAndErrno) {
  Status st = ErrnoStatus(StatusCode::kResourceExhausted, "ibv_reg_mr(4096 bytes)", ENOMEM);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(), "ibv_reg_mr(4096 bytes): Cannot allocate memory (errno 12)");
}

TEST(Result, PropagatesErrorsThroughMacros) {
  auto q = Quarter(12);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 3);
  auto bad = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd value 3");
}

TEST(Config, ReadsTypedValuesAndKeepsDefaultsForAbsentKeys) {
  auto cfg = ConfigReader::FromString(
      "transport:\n  device: rxe0\n  sq_depth: 128\n  inline: false\n", "t.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto t = cfg->Section("transport");
  ASSERT_TRUE(t.ok());
  std::string dev = "none";
  uint32_t sq = 1, rq = 99;
  bool inl = true;
  EXPECT_TRUE(t->GetString("device", dev).ok());
  EXPECT_TRUE(t->GetUint32("sq_depth", sq, 1, 1024).ok());
  EXPECT_TRUE(t->GetUint32("rq_depth", rq, 1, 1024).ok());
  EXPECT_TRUE(t->GetBool("inline", inl).ok());
  EXPECT_EQ(dev, "rxe0");
  EXPECT_EQ(sq, 128u);
  EXPECT_EQ(rq, 99u);
  EXPECT_FALSE(inl);
  EXPECT_TRUE(t->RejectUnknownKeys({"device", "sq_depth", "inline"}).ok());
}

TEST(Config, ErrorsNameSourceKeyAndValue) {
  auto cfg = ConfigReader::FromString("transport:\n  sq_depth: 0\n  rq_depth: lots\n  sq_dept: 4\n",
                                      "vigil.yaml");
  ASSERT_TRUE(cfg.ok());
  auto t = cfg->Section("transport");
  ASSERT_TRUE(t.ok());
  uint32_t sq = 1;
  Status st = t->GetUint32("sq_depth", sq, 1, 16384);
  EXPECT_EQ(st.message(), "vigil.yaml: key 'transport.sq_depth' = '0' is out of range [1, 16384]");
  EXPECT_EQ(sq, 1u) << "a rejected value must not be stored";
  st = t->GetUint32("rq_depth", sq, 1, 16384);
  EXPECT_EQ(st.message(), "vigil.yaml: key 'transport.rq_depth' = 'lots' is not an integer");
  st = t->RejectUnknownKeys({"sq_depth", "rq_depth"});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("unknown key 'transport.sq_dept'"), std::string::npos) << st;
}

TEST(Config, AKeyThatIsNotANameIsAnErrorNotACrash) {
  // Found by config_fuzz: "{{}}" is a mapping whose only key is itself a mapping.
  for (const char* text : {"{{}}", "? [a, b]\n: 1\n", "transport:\n  ? {x: 1}\n  : 2\n"}) {
    auto cfg = ConfigReader::FromString(text, "odd.yaml");
    ASSERT_TRUE(cfg.ok()) << text;
    auto t = cfg->Section("transport");
    ASSERT_TRUE(t.ok()) << text;
    Status st = cfg->RejectUnknownKeys({"transport"});
    if (st.ok()) st = t->RejectUnknownKeys({"mtu"});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(st.message().find("odd.yaml: a key under"), std::string::npos) << st;
  }
}

TEST(Config, SyntaxErrorsAndMissingFilesAreReported) {
  auto bad = ConfigReader::FromString("a: [1, 2\n", "broken.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("broken.yaml: YAML syntax error at line"),
            std::string::npos)
      << bad.status();
  auto missing = ConfigReader::FromFile("/nonexistent/vigil.yaml");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto scalar = ConfigReader::FromString("just a string", "s.yaml");
  EXPECT_EQ(scalar.status().code(), StatusCode::kInvalidArgument);
  auto cfg = ConfigReader::FromString("transport: 5\n", "x.yaml");
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->Section("transport").status().message(),
            "x.yaml: key 'transport' = '5' must be a mapping of keys");
}

TEST(Histogram, NearestRankPercentiles) {
  LatencySamples s(1000);
  for (uint64_t i = 1; i <= 1000; ++i) s.Record(i * 1000);  // 1..1000 us
  auto sum = s.Summarize();
  EXPECT_EQ(sum.count, 1000u);
  EXPECT_DOUBLE_EQ(sum.min_us, 1);
  EXPECT_DOUBLE_EQ(sum.p50_us, 500);
  EXPECT_DOUBLE_EQ(sum.p99_us, 990);
  EXPECT_DOUBLE_EQ(sum.p999_us, 999);
  EXPECT_DOUBLE_EQ(sum.max_us, 1000);
  EXPECT_DOUBLE_EQ(sum.mean_us, 500.5);
  s.Record(1);  // full: dropped, never reallocated
  EXPECT_EQ(s.size(), 1000u);
}

TEST(Logging, RejectsUnknownLevelsAndSharesLoggers) {
  EXPECT_EQ(log::SetLevel("loud").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(log::SetLevel("warn").ok());
  auto a = log::Get("unit");
  EXPECT_EQ(a, log::Get("unit"));
  EXPECT_EQ(a->level(), spdlog::level::warn);
  EXPECT_TRUE(log::SetLevel("info").ok());
  EXPECT_EQ(a->level(), spdlog::level::info);
}

TEST(AdaptiveWait, WaitingStartsAtTheFirstCheckAndAgainAfterRestart) {
  using namespace std::chrono_literals;
  using Phase = AdaptiveWait::Phase;
  const auto t = AdaptiveWait::Clock::time_point{} + 1h;
  AdaptiveWait w(20);
  // Constructed long before its first check: it still spins then.
  EXPECT_EQ(w.PhaseAt(t), Phase::kSpin);
  EXPECT_EQ(w.PhaseAt(t + 19us), Phase::kSpin);
  EXPECT_EQ(w.PhaseAt(t + 20us), Phase::kYield);
  EXPECT_EQ(w.PhaseAt(t + 319us), Phase::kYield);
  EXPECT_EQ(w.PhaseAt(t + 320us), Phase::kSleep);
  w.Restart();
  EXPECT_EQ(w.PhaseAt(t + 1s), Phase::kSpin);
  EXPECT_EQ(w.PhaseAt(t + 1s + 20us), Phase::kYield);

  AdaptiveWait forever(0);  // spin_us = 0: a dedicated core, never yields
  EXPECT_EQ(forever.PhaseAt(t), Phase::kSpin);
  EXPECT_EQ(forever.PhaseAt(t + 1h), Phase::kSpin);
}

TEST(LazyDeadline, TheTimeoutRunsFromTheFirstCheck) {
  using namespace std::chrono_literals;
  const auto t = LazyDeadline::Clock::time_point{} + 1h;
  LazyDeadline d(5ms);
  // Constructed long before its first check: the whole timeout is still left then.
  EXPECT_EQ(d.LeftAt(t), 5ms);
  EXPECT_EQ(d.LeftAt(t + 2ms), 3ms);
  EXPECT_EQ(d.LeftAt(t + 5ms), 0ms);
  EXPECT_EQ(d.LeftAt(t + 7ms), -2ms);
  EXPECT_EQ(d.LeftAt(t + 1ms), 4ms);  // later checks count from the first, whatever their order
}

TEST(Text, PrintableMeansAsciiWithoutControlCharacters) {
  EXPECT_TRUE(IsPrintable("w1/kv: 198.18.1.11:7720 ~"));
  EXPECT_TRUE(IsPrintable(""));
  EXPECT_FALSE(IsPrintable("line\nbreak"));
  EXPECT_FALSE(IsPrintable("\x1b[31mred"));
  EXPECT_FALSE(IsPrintable("caf\xc3\xa9"));
  EXPECT_FALSE(IsPrintable(std::string_view("nul\0", 4)));
}

TEST(Text, EscapedShowsEveryByteOutsidePrintableAsciiAndCuts) {
  EXPECT_EQ(Escaped("plain text"), "plain text");
  EXPECT_EQ(Escaped("a\nb\\c\x7f"), "a\\x0ab\\x5cc\\x7f");
  EXPECT_EQ(Escaped(std::string_view("\0\xff", 2)), "\\x00\\xff");
  EXPECT_EQ(Escaped("abcdef", 3), "abc...");
  EXPECT_EQ(Escaped("abc", 3), "abc");
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(OutputFile, AppearsWholeOnCommitAndNotAtAllWithout) {
  char t[] = "/tmp/vigil-output-test-XXXXXX";
  const std::filesystem::path dir = mkdtemp(t);
  const std::string path = (dir / "out").string();
  std::ofstream(path) << "the previous output";
  chmod(path.c_str(), 0640);
  {
    auto o = OutputFile::Open(path);
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    EXPECT_FALSE(o->direct());
    std::fputs("half of a new one", o->get());
    std::fflush(o->get());
    EXPECT_EQ(Slurp(path), "the previous output") << "the destination is not touched until Commit";
  }  // a failed job: no Commit
  EXPECT_EQ(Slurp(path), "the previous output");
  {
    auto o = OutputFile::Open(path);
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    std::fputs("the new output", o->get());
    ASSERT_TRUE(o->Commit().ok());
    EXPECT_FALSE(o->Commit().ok()) << "only once";
  }
  EXPECT_EQ(Slurp(path), "the new output");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u) << "the existing file's mode is kept";
  // Nothing but the output is left in the directory.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  // A device is written in place; a directory that does not exist is named.
  auto null = OutputFile::Open("/dev/null");
  ASSERT_TRUE(null.ok() && null->direct());
  EXPECT_TRUE(null->Commit().ok());
  auto missing = OutputFile::Open((dir / "no/such/out").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no/such/out"), std::string::npos)
      << missing.status().message();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil
