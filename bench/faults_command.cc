// `vigil-bench faults`: a fault-injection campaign. Each injection runs one replicated job with one
// fault injected into one replica at a random place and time, and classifies what came out
// against the unreplicated (plain) run's output and exit code:
//   masked        completed, right output, nothing detected (the fault changed nothing voted)
//   corrected     completed, right output, TMR out-voted the replica and repaired or replaced it
//   rolled back   completed, right output, DMR detected it and re-executed from the checkpoint
//   recovered     completed, right output, a crashed replica was found gone and handled
//   failed closed the job stopped with an error (no output committed)
//   SDC           completed with a wrong output or exit code: silent data corruption
// A fault that never fired (the program ended before its time) is counted apart, not as masked.
//
// Workloads: crc32 and susan (replica API: a bit of the state region at a random step, a crash
// there, or a hang) and vigil-run's sha256sum, sort and gzip (unmodified programs: a bit of the
// data a read returns, of the result register, of a random register through ptrace, or anywhere
// in the process's writable memory, or the replica crashing or hanging, at a random system
// call). For every workload, a record in flight: one random bit of a replica's n-th RDMA WRITE
// (polling) or SEND (notify) flipped, or that operation dropped while the sender is told it
// arrived (the transport's FaultInjectingConnection, between the replica and the wire). Every
// injection is reproducible from the campaign's seed and its index (--seed S --only I), except that
// which replica's operation is the n-th depends on timing. Replicas are threads of this process
// (the program of each exec replica a real child process), on the chosen transport.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "commands.h"
#include "environment.h"
#include "faults.h"
#include "harness.h"
#include "programs.h"
#include "vigil/common/registers.h"
#include "vigil/replica/context.h"
#include "vigil/replica/protocol.h"
#include "vigil/run/executor.h"
#include "vigil/run/program.h"
#include "vigil/transport/fault_injection.h"
#include "vigil/workloads/workloads.h"

namespace vigil::bench {
namespace {

using namespace std::chrono_literals;

// How long a thread replica waits for a verdict. An incarnation the voter replaced while it was
// not waiting for one waits this long before it ends (a thread cannot be killed); verdicts
// otherwise arrive within milliseconds here.
constexpr std::chrono::milliseconds kVerdictTimeout{3000};

// Faults that can silence a replica (a hang, a dropped or corrupted record) are found only by the
// deadline; they run with this one (or --deadline-ms if shorter), shorter than kVerdictTimeout
// (else the healthy replicas give up waiting first) and so that thousands fit in an hour. A
// hang lasts three deadlines.
constexpr std::chrono::milliseconds kSilentDeadline{1000};

bool IsExec(const std::string& w) { return w == "sha256sum" || w == "sort" || w == "gzip"; }
bool IsSsr(const std::string& w) { return w == "kv"; }

bool IsRecordKind(const std::string& kind) {
  return kind == "record-corrupt" || kind == "record-drop";
}
// A corrupted record can silence a replica too: one whose sequence number no longer matches
// reads as not yet written.
bool SilencesReplica(const std::string& kind) { return kind == "hang" || IsRecordKind(kind); }

// The kinds that fit a workload and method (rpc's records go through gRPC, not the transport).
std::vector<std::string> KindsOf(const std::string& workload, const std::string& method) {
  if (IsSsr(workload)) return {"ssr-slot"};
  std::vector<std::string> kinds =
      IsExec(workload)
          ? std::vector<std::string>{"data", "result", "register", "memory", "crash", "hang"}
          : std::vector<std::string>{"state", "crash", "hang"};
  if (method != "rpc") {
    kinds.push_back("record-corrupt");
    kinds.push_back("record-drop");
  }
  return kinds;
}

// The transport operation that carries a replica's event records.
transport::OpMask RecordOp(const std::string& method) {
  return method == "notify" ? transport::kOpSend : transport::kOpWrite;
}

// 95% Wilson score interval of k successes in n.
std::pair<double, double> Wilson(uint64_t k, uint64_t n) {
  if (n == 0) return {0, 1};
  const double z = 1.96, p = static_cast<double>(k) / static_cast<double>(n);
  const double nn = static_cast<double>(n), d = 1 + z * z / nn;
  const double c = (p + z * z / (2 * nn)) / d;
  const double h = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / d;
  return {std::max(0.0, c - h), std::min(1.0, c + h)};
}

struct Subject {
  std::string name;
  std::string input;    // crc32/susan: the job's input; exec: the file the program reads
  std::string want;     // the unreplicated output
  uint64_t length = 0;  // steps (crc32/susan) or system calls (exec) of a clean replicated run
  // By method: a replica's record-carrying operations in a clean replicated run.
  std::map<std::string, uint64_t> records;
};

struct Injection {
  uint64_t index = 0;
  std::string workload, mode, method, kind;
  uint16_t victim = 0;
  uint64_t at = 0;   // step, call, or record-carrying operation (of any replica)
  uint64_t bit = 0;  // which bit (modulo the target's size)
  std::string reg;   // kind register
};

struct Tally {
  uint64_t n[kOutcomes] = {};
  double wall_ms = 0;
};

class Campaign {
 public:
  Campaign(const FaultsBenchOptions& o, BenchSetup& setup, std::string dir)
      : o_(o), setup_(setup), dir_(std::move(dir)) {}

  Status Prepare(const std::string& workload);
  // One job, with the injection or (inj == nullptr) without: the outcome and the job's length.
  // `records` (optional): a replica's record-carrying operations (the mean over replicas).
  Result<Outcome> Run(const Subject& s, const std::string& mode, const std::string& method,
                      const Injection* inj, uint64_t* length, uint64_t* records = nullptr);
  std::map<std::string, Subject> subjects;

 private:
  std::vector<std::string> Argv(const std::string& workload) const;

  const FaultsBenchOptions& o_;
  BenchSetup& setup_;
  std::string dir_;
  std::unique_ptr<SsrCell> ssr_;  // workload kv
};

std::vector<std::string> Campaign::Argv(const std::string& w) const {
  const std::string file = dir_ + "/input.txt";
  if (w == "sha256sum") return {"sha256sum"};  // reads stdin
  if (w == "sort") return {"sort", "--parallel=1", file};
  return {"gzip", "-c", "-n", file};
}

Status Campaign::Prepare(const std::string& w) {
  Subject s;
  s.name = w;
  if (IsSsr(w)) {
    VIGIL_ASSIGN_OR_RETURN(ssr_, SsrCell::Start(setup_));
    VIGIL_ASSIGN_OR_RETURN(Outcome clean, ssr_->Run(o_.seed, 0, 0, 0));
    if (clean != Outcome::kMasked) return Internal("kv: a run without a fault was not clean");
    s.length = SsrCell::kCalls;
    subjects[w] = std::move(s);
    return Status::Ok();
  }
  if (IsExec(w)) {
    s.input = TextInput(size_t{o_.input_kib} << 10);
    std::ofstream(dir_ + "/input.txt", std::ios::binary) << s.input;
    VIGIL_ASSIGN_OR_RETURN(auto plain, RunPlain(Argv(w), dir_ + "/input.txt"));
    s.want = std::move(plain.first);
  } else {
    if (w == "susan") {
      auto img = workloads::MakeTestImage(120, 90, 5);
      s.input.assign(reinterpret_cast<const char*>(img.data()), img.size());
    } else {
      s.input = TextInput(size_t{o_.input_kib} << 12);  // 4x: many steps in 8 KiB reads
    }
    VIGIL_ASSIGN_OR_RETURN(auto program, workloads::MakeWorkload(w, "edges"));
    std::FILE* in = std::tmpfile();
    std::FILE* out = std::tmpfile();
    if (in == nullptr || out == nullptr) return Internal("tmpfile");
    std::fwrite(s.input.data(), 1, s.input.size(), in);
    std::rewind(in);
    auto ctx = replica::LocalContext::Create(program->state_bytes(), in, out);
    Status st = ctx.ok() ? replica::RunProgram(*program, **ctx) : ctx.status();
    std::fflush(out);
    s.want = ReadFd(fileno(out));
    std::fclose(in);
    std::fclose(out);
    VIGIL_RETURN_IF_ERROR(st);
  }
  // A clean replicated run per method: it must give the same output, and says how long the job
  // is.
  for (const auto& method : o_.methods) {
    VIGIL_ASSIGN_OR_RETURN(Outcome clean,
                           Run(s, "tmr", method, nullptr, &s.length, &s.records[method]));
    if (clean != Outcome::kMasked) {
      return Internal(
          fmt::format("{} over {}: the replicated run without a fault was {}, not clean", w, method,
                      kOutcomeNames[static_cast<int>(clean)]));
    }
  }
  subjects[w] = std::move(s);
  return Status::Ok();
}

Result<Outcome> Campaign::Run(const Subject& s, const std::string& mode_name,
                              const std::string& method, const Injection* inj, uint64_t* length,
                              uint64_t* records) {
  if (IsSsr(s.name)) {
    if (inj == nullptr) return ssr_->Run(o_.seed, 0, 0, 0);
    return ssr_->Run(o_.seed * 0x9E3779B97F4A7C15ull + inj->index, inj->at, inj->bit, inj->victim);
  }
  const voter::Mode mode = *voter::ParseMode(mode_name);
  voter::GroupOptions g;
  g.mode = mode;
  g.deadline = std::chrono::milliseconds(o_.deadline_ms);
  if (inj != nullptr && SilencesReplica(inj->kind))
    g.deadline = std::min(g.deadline, kSilentDeadline);
  // Every replica's connections go through the injector: it counts record-carrying operations,
  // and corrupts or drops the chosen one.
  auto injector = std::make_shared<transport::FaultInjector>();
  if (inj != nullptr && IsRecordKind(inj->kind)) {
    const bool corrupt = inj->kind == "record-corrupt";
    VIGIL_RETURN_IF_ERROR(injector->Add(
        {.ops = RecordOp(method),
         .action = corrupt ? transport::FaultAction::kCorrupt : transport::FaultAction::kDrop,
         .skip = static_cast<uint32_t>(inj->at - 1),
         .count = 1,
         .corrupt_offset = static_cast<size_t>(inj->bit >> 3),  // modulo the payload's length
         .corrupt_mask = static_cast<uint8_t>(1u << (inj->bit & 7))}));
  }
  transport::FaultInjectingTransport replica_transport(*setup_.transport, injector);
  const bool exec = IsExec(s.name);
  g.channel = {
      .method = *channel::ParseMethod(method),
      .slots = 16,
      .max_payload = static_cast<uint32_t>(exec ? 4096 + replica::kEventHeaderBytes : 1024),
      .spin_us = 20};
  if (exec) g.replace_after = 1;  // as vigil-run: an outvoted process is replaced
  auto fired = std::make_shared<std::atomic<bool>>(false);
  auto steps = std::make_shared<std::atomic<uint64_t>>(0);
  testing::ThreadLauncher::ProgramFactory factory;
  if (exec) {
    const std::vector<std::string> argv = Argv(s.name);
    factory = [argv, inj, fired](const voter::LaunchSpec& spec,
                                 std::shared_ptr<std::atomic<bool>> killed)
        -> Result<std::unique_ptr<replica::Program>> {
      run::ExecOptions eo{.argv = argv, .env = ProgramEnvironment(), .killed = killed};
      if (inj != nullptr && !IsRecordKind(inj->kind) && spec.replica == inj->victim &&
          spec.incarnation == 0) {
        run::SetExecFault(ExecFaultFor(inj->kind == "register" ? inj->reg : inj->kind), eo);
        eo.fault_at = inj->at;
        eo.flip_bit = inj->bit;
        eo.injected = fired;
      }
      return std::unique_ptr<replica::Program>(std::make_unique<run::ExecProgram>(std::move(eo)));
    };
  } else {
    factory = [name = s.name, inj, fired, steps, deadline = g.deadline](
                  const voter::LaunchSpec& spec, std::shared_ptr<std::atomic<bool>> killed)
        -> Result<std::unique_ptr<replica::Program>> {
      VIGIL_ASSIGN_OR_RETURN(auto program, workloads::MakeWorkload(name, "edges"));
      const bool victim = inj != nullptr && !IsRecordKind(inj->kind) &&
                          spec.replica == inj->victim && spec.incarnation == 0;
      const bool count = inj == nullptr && spec.replica == 0;
      if (!victim && !count) return program;
      return std::unique_ptr<replica::Program>(std::make_unique<replica::HookedProgram>(
          std::move(program),
          [inj, fired, steps, victim, deadline, killed](uint64_t step,
                                                        replica::ReplicaContext& ctx) -> Status {
            if (!victim) {
              steps->store(step);
              return Status::Ok();
            }
            if (step != inj->at) return Status::Ok();
            fired->store(true);
            if (inj->kind == "crash") return Aborted("injected crash");
            if (inj->kind == "hang") {
              // Three deadlines, or until the voter has it stopped (it is replaced by then).
              const auto until = std::chrono::steady_clock::now() + 3 * deadline;
              while (!killed->load() && std::chrono::steady_clock::now() < until) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
              }
              return Status::Ok();
            }
            auto* channel_ctx = dynamic_cast<replica::ChannelContext*>(&ctx);
            if (channel_ctx == nullptr) return Internal("a replica without a channel context");
            channel_ctx->FlipStateBit(inj->bit);  // modulo the state region's bits
            return Status::Ok();
          }));
    };
  }
  // The job's files: stdin/stdout/stderr of the program (exec), or the input and output.
  std::FILE* in = std::tmpfile();
  std::FILE* out = std::tmpfile();
  if (in == nullptr || out == nullptr) return Internal("tmpfile");
  std::fwrite(s.input.data(), 1, s.input.size(), in);
  std::rewind(in);
  const int err = open("/dev/null", O_WRONLY | O_CLOEXEC);
  std::optional<run::HostExecutor> executor;
  if (exec) {
    // The programs' files are in the campaign's scratch directory: their sandbox's root.
    Result<std::unique_ptr<run::Sandbox>> sandbox = run::Sandbox::Open(dir_);
    if (!sandbox.ok()) return sandbox.status();
    executor.emplace(fileno(in), fileno(out), err, std::move(*sandbox));
  }
  // Small input buffers: crc32 and susan read in many events, and take many steps.
  auto r = RunGroupAsIs(setup_, g, factory, exec ? nullptr : in, exec ? nullptr : out,
                        executor ? &*executor : nullptr, Measure::kNothing, false, exec ? 0 : 8192,
                        kVerdictTimeout, &replica_transport);
  std::fflush(out);
  const std::string got = ReadFd(fileno(out));
  std::fclose(in);
  std::fclose(out);
  close(err);
  if (!r.ok()) return r.status();
  const voter::GroupReport& rep = r->report;
  if (length != nullptr) *length = exec ? executor->calls() : steps->load();
  if (records != nullptr) {
    *records = injector->posted(RecordOp(method)) / voter::ReplicasOf(mode);
  }
  if (inj != nullptr && IsRecordKind(inj->kind)) {
    fired->store(injector->injected(transport::FaultAction::kCorrupt) +
                     injector->injected(transport::FaultAction::kDrop) >
                 0);
  }
  if (inj != nullptr && !fired->load()) return Outcome::kNotFired;
  if (!rep.completed) return Outcome::kFailedClosed;
  if (got != s.want || (exec && rep.exit_code != 0)) return Outcome::kSdc;
  if (rep.rollbacks > 0) return Outcome::kRolledBack;
  if (rep.repairs > 0 || rep.replacements > 0) return Outcome::kCorrected;
  if (rep.crashes > 0 || rep.missed_deadlines > 0) return Outcome::kRecovered;
  return Outcome::kMasked;
}

Injection Draw(const FaultsBenchOptions& o, const std::vector<Injection>& cells,
               const std::map<std::string, Subject>& subjects, uint64_t index) {
  Injection inj = cells[index % cells.size()];
  inj.index = index;
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + index);
  const uint64_t victims =
      IsSsr(inj.workload) ? SsrCell::kClients : voter::ReplicasOf(*voter::ParseMode(inj.mode));
  inj.victim = static_cast<uint16_t>(rng() % victims);
  const Subject& s = subjects.at(inj.workload);
  inj.at =
      1 + rng() % std::max<uint64_t>(
                      1, IsRecordKind(inj.kind) ? s.records.at(inj.method) * victims : s.length);
  inj.bit = rng();
  inj.reg = std::string(kFlippableRegisters[rng() % kFlippableRegisters.size()]);
  return inj;
}

std::string Reproduce(const FaultsBenchOptions& o, const Injection& i) {
  return fmt::format(
      "injection {} ({} {} {} {}: {}{} {}, bit {}{}); reproduce: vigil-bench faults "
      "--transport {} --seed {} --injections {} --only {} --workloads {} --modes {} --methods {} "
      "{}--input-kib {}",
      i.index, i.workload, i.mode, i.method, i.kind,
      IsRecordKind(i.kind) ? "" : fmt::format("replica {}, ", i.victim),
      IsRecordKind(i.kind) ? "record operation"
      : IsExec(i.workload) ? "call"
                           : "step",
      i.at, i.bit, i.kind == "register" ? " of " + i.reg : "", o.common.transport, o.seed,
      o.injections, i.index, fmt::join(o.workloads, ","), fmt::join(o.modes, ","),
      fmt::join(o.methods, ","),
      o.kinds.empty() ? "" : fmt::format("--kinds {} ", fmt::join(o.kinds, ",")), o.input_kib);
}

}  // namespace

int RunFaultsBench(const FaultsBenchOptions& o) {
  std::optional<BenchSetup> setup = OpenAndDescribe(o.common);
  if (!setup) return 1;
  Result<ScratchDir> dir = ScratchDir::Create("vigil-bench-faults");
  if (!dir.ok()) {
    fmt::print(stderr, "error: {}\n", dir.status().ToString());
    return 1;
  }
  Campaign c(o, *setup, dir->path());
  // The cells, in a fixed order: injection i goes to cell i mod cells.
  std::vector<Injection> cells;
  for (const auto& w : o.workloads) {
    if (Status st = c.Prepare(w); !st.ok()) {
      fmt::print(stderr, "error: {}\n", st.ToString());
      return 1;
    }
    fmt::print("# {}: {} {} in a clean run, output {} bytes\n", w, c.subjects[w].length,
               IsSsr(w)    ? "calls"
               : IsExec(w) ? "system calls"
                           : "steps",
               c.subjects[w].want.size());
    // kv's cell has no mode or method: its clients call one server, over gRPC.
    const std::vector<std::string> none{"-"};
    for (const auto& mode : IsSsr(w) ? std::vector<std::string>{"ssr"} : o.modes) {
      for (const auto& method : IsSsr(w) ? none : o.methods) {
        for (const auto& kind : KindsOf(w, method)) {
          if (!o.kinds.empty() &&
              std::find(o.kinds.begin(), o.kinds.end(), kind) == o.kinds.end()) {
            continue;
          }
          Injection cell;
          cell.workload = w;
          cell.mode = mode;
          cell.method = method;
          cell.kind = kind;
          cells.push_back(std::move(cell));
        }
      }
    }
  }
  if (cells.empty()) {
    fmt::print(stderr, "error: no workload takes the fault kinds {}\n", fmt::join(o.kinds, ","));
    return 2;
  }
  fmt::print("# {} injections over {} cells (workload x mode x method x fault), seed {}\n",
             o.injections, cells.size(), o.seed);
  std::map<std::string, Tally> tallies;  // by "workload mode method kind"
  std::vector<std::string> notable;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < o.injections; ++i) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), i) == o.only.end()) continue;
    const Injection inj = Draw(o, cells, c.subjects, i);
    const auto s0 = std::chrono::steady_clock::now();
    auto outcome = c.Run(c.subjects[inj.workload], inj.mode, inj.method, &inj, nullptr);
    if (!outcome.ok()) {
      fmt::print(stderr, "error: {}: {}\n", Reproduce(o, inj), outcome.status().ToString());
      return 1;
    }
    Tally& t = tallies[fmt::format("{} {} {} {}", inj.workload, inj.mode, inj.method, inj.kind)];
    t.n[static_cast<int>(*outcome)]++;
    t.wall_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
    if (*outcome == Outcome::kSdc || (*outcome == Outcome::kFailedClosed && !IsSsr(inj.workload))) {
      notable.push_back(
          fmt::format("{}: {}", kOutcomeNames[static_cast<int>(*outcome)], Reproduce(o, inj)));
    }
    if ((i + 1) % 500 == 0) {
      fmt::print(stderr, "# {} of {} injections, {:.0f} s\n", i + 1, o.injections,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  // The table: a row per cell, then per mode the rates that matter.
  fmt::print("\n{:<10} {:<4} {:<8} {:<14} | {:>6} {:>7} {:>9} {:>8} {:>9} {:>7} {:>4} | {:>9}\n",
             "workload", "mode", "method", "fault", "fired", "masked", "corrected", "rolledbk",
             "recovered", "failcl", "SDC", "not fired");
  nlohmann::json rows = nlohmann::json::array();
  std::map<std::string, Tally> by_mode;
  uint64_t sdc = 0, fired_total = 0;
  for (const auto& [key, t] : tallies) {
    std::istringstream k(key);
    std::string w, mode, method, kind;
    k >> w >> mode >> method >> kind;
    uint64_t fired = 0;
    for (int x = 0; x < kOutcomes - 1; ++x) fired += t.n[x];
    fired_total += fired;
    sdc += t.n[static_cast<int>(Outcome::kSdc)];
    Tally& m = by_mode[mode];
    for (int x = 0; x < kOutcomes; ++x) m.n[x] += t.n[x];
    fmt::print("{:<10} {:<4} {:<8} {:<14} | {:>6} {:>7} {:>9} {:>8} {:>9} {:>7} {:>4} | {:>9}\n", w,
               mode, method, kind, fired, t.n[0], t.n[1], t.n[2], t.n[3], t.n[4], t.n[5], t.n[6]);
    nlohmann::json outcomes;
    for (int x = 0; x < kOutcomes; ++x) outcomes[kOutcomeNames[x]] = t.n[x];
    const auto [lo, hi] = Wilson(t.n[static_cast<int>(Outcome::kSdc)], fired);
    rows.push_back(
        {{"workload", w},
         {"mode", mode},
         {"method", method},
         {"fault", kind},
         {"injected", fired},
         {"outcomes", outcomes},
         {"sdc_rate_95ci", {lo, hi}},
         {"mean_wall_ms", t.wall_ms / std::max<double>(1, static_cast<double>(fired + t.n[6]))}});
  }
  nlohmann::json summary = nlohmann::json::object();
  fmt::print("\n");
  for (const auto& [mode, m] : by_mode) {
    // State-changing: every fired fault that was not masked.
    const uint64_t changing = m.n[1] + m.n[2] + m.n[3] + m.n[4] + m.n[5];
    const uint64_t handled = mode == "tmr" ? m.n[1] + m.n[3] : m.n[2] + m.n[3] + m.n[4];
    const auto [lo, hi] = Wilson(handled, changing);
    const uint64_t fired = changing + m.n[0];
    const auto [slo, shi] = Wilson(m.n[5], fired);
    fmt::print(
        "{}: {} of {} state-changing faults {} ({:.2f}%, 95% CI {:.2f}-{:.2f}%); SDC {} of "
        "{} injected (95% CI {:.3f}-{:.3f}%)\n",
        mode, handled, changing,
        mode == "tmr" ? "corrected (out-voted and repaired, or a crash recovered)"
                      : "detected (rolled back, recovered, or failed closed)",
        changing ? 100.0 * static_cast<double>(handled) / static_cast<double>(changing) : 100.0,
        100 * lo, 100 * hi, m.n[5], fired, 100 * slo, 100 * shi);
    summary[mode] = {{"state_changing", changing},
                     {mode == "tmr" ? "corrected" : "detected", handled},
                     {"handled_95ci", {lo, hi}},
                     {"injected", fired},
                     {"sdc", m.n[5]},
                     {"sdc_rate_95ci", {slo, shi}}};
  }
  for (const auto& n : notable) fmt::print("{}\n", n);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(
      "{} faults injected ({} not fired) in {:.0f} s; silent data corruptions: {}\n", fired_total,
      [&] {
        uint64_t n = 0;
        for (const auto& [k, t] : tallies) n += t.n[6];
        return n;
      }(),
      secs, sdc);
  if (!o.common.json.empty() &&
      WriteJson(o.common.json, {{"benchmark", "faults"},
                                {"environment", Environment(Describe(*setup))},
                                {"seed", o.seed},
                                {"injections", o.injections},
                                {"input_kib", o.input_kib},
                                {"rows", rows},
                                {"summary", summary},
                                {"notable", notable}}) != 0) {
    return 1;
  }
  if (sdc > 0) {
    fmt::print(stderr, "error: {} silent data corruption(s): see the lines above to reproduce\n",
               sdc);
    return 1;
  }
  return 0;
}

}  // namespace vigil::bench
