// A replica group as the voter runs it: it launches the replicas, takes one event per replica at
// each externalization point, votes (vote.h), carries out the agreed effect once (reads input,
// emits output) and answers every replica:
//
//   agreement         proceed (input events carry the same input bytes to every replica)
//   TMR, outvoted     the replica's state is overwritten with a healthy replica's, copied by
//                     RDMA READ (healthy -> voter, digest checked) and RDMA WRITE (voter ->
//                     outvoted); then it proceeds. Faulty `replace_after` times within the policy
//                     window: it is replaced instead.
//   DMR mismatch,     every replica restores its last agreed checkpoint and re-executes; the same
//   TMR no majority   event failing `max_rollbacks` times in a row fails the group.
//   missed deadline,  (crash, hang, broken link, corrupted or out-of-sequence record) the replica
//   bad record        is stopped and a new incarnation started; it joins with a copy of a healthy
//                     replica's state. TMR with two live replicas: the others go on meanwhile; the
//                     newcomer gets a healthy replica's last agreed checkpoint and catches up:
//                     it re-executes from there and is answered from the voter's log of the
//                     events agreed since (its digests checked against the agreed ones) until
//                     it reaches the group's next event, where it votes again. Without a log
//                     (over `catch_up_bytes`) it joins at the next agreed checkpoint instead.
//                     DMR, or TMR down to one: once every newcomer is there, the survivor rolls
//                     back to its last agreed checkpoint and the newcomers get a copy of it.
//   TMR, first two    with the log, a round is decided on the first two matching ballots; the
//                     third replica's ballots are checked against the logged agreed ones as they
//                     arrive (up to `max_lag` events late) and answered from the log. One that
//                     differs is repaired as soon as a healthy replica is blocked on its ballot
//                     (at once, or when one casts its next): that replica's checkpoint
//                     is copied into its checkpoint region, it rolls back to it and catches up.
//
// Every detection and decision is logged (subsystem "voter") and counted in GroupReport.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vigil/channel/endpoints.h"
#include "vigil/common/failure_budget.h"
#include "vigil/common/thread_annotations.h"
#include "vigil/replica/protocol.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/voter/catch_up_log.h"
#include "vigil/voter/input_source.h"
#include "vigil/voter/round.h"
#include "vigil/voter/syscall_executor.h"
#include "vigil/voter/vote.h"

namespace vigil::voter {

struct Link;
struct ReceivedEvent;
enum class Fault { kKill, kStop, kCont, kBitflip };
std::string_view FaultName(Fault f);

struct GroupOptions {
  uint32_t group = 1;
  Mode mode = Mode::kTmr;
  // A replica must produce its next event within this long after the previous verdict (or after
  // being started), else it is failed. Bounds a step's compute time and a replica's start-up.
  std::chrono::milliseconds deadline{20000};
  // A started replica must connect within this long (process start, device open, bootstrap).
  std::chrono::milliseconds start_deadline{60000};
  uint32_t max_rollbacks = 2;  // rollbacks at the same event before the group fails
  // Repairs of one replica within policy.window before it is replaced instead of repaired.
  uint32_t replace_after = 3;
  std::chrono::milliseconds replace_window{60000};
  uint32_t max_incarnations = 8;  // starts per replica slot before the group gives up
  // TMR: bytes of agreed events (with their input and result bytes) the voter keeps since the
  // last agreed checkpoint, so that a newcomer can catch up (0: newcomers join at the next
  // agreed checkpoint). Past it, the log is dropped until the next checkpoint.
  uint64_t catch_up_bytes = uint64_t{256} << 20;
  // TMR: while a replica catches up, each round waits until it has replayed this many events
  // (within its deadline), so that the gap closes by at least catch_up_pace - 1 events a round
  // even when it shares cores with the others. 0: rounds never wait (on cores of its own, a
  // replay without votes usually outpaces the group).
  uint32_t catch_up_pace = 2;
  // TMR with the log: a round is decided on the first two matching ballots, and the third live
  // replica may owe up to this many agreed events (checked against the log as they arrive)
  // before rounds wait for it. 0: every round waits for all three.
  uint32_t max_lag = 8;
  // The largest state, checkpoint or input region a replica's hello may advertise: the first
  // replica fixes the group's sizes and the voter registers a staging buffer of each. A larger
  // one is refused (RESOURCE_EXHAUSTED naming the cap) before anything is allocated.
  uint64_t max_region_bytes = uint64_t{1} << 30;
  int voter_cpu = -1;  // pin the polling method's voter thread here (-1: not pinned)
  // Count GroupReport::voter_ns (benchmarks): two clock reads per decision, so off by default.
  bool measure = false;
  channel::ChannelOptions channel;
};
Status ValidateGroupOptions(const GroupOptions& o);

// Where a replica incarnation finds its voter.
struct LaunchSpec {
  uint32_t group = 0;
  uint16_t replica = 0;
  uint32_t incarnation = 0;
  std::string service;     // bootstrap service to dial
  std::string rpc_target;  // rpc method only
  // The incarnation's nonce (security/nonce.h): the replica must present it in its bootstrap
  // hello and rpc events; a launcher hands it over without logging it.
  std::string nonce;
};

// Starts and stops replica incarnations (processes on worker nodes, or threads in tests).
class Launcher {
 public:
  virtual ~Launcher() = default;
  virtual Status Start(const LaunchSpec& spec) = 0;
  // Stops the incarnation for good (a process: SIGKILL). Must not block for long.
  virtual void Stop(uint16_t replica, uint32_t incarnation) = 0;
  // False once the incarnation is known to be gone (its process exited, its node is lost). The
  // voter asks about replicas it has been waiting for, so a crash is noticed before the
  // deadline. Default: always true (only deadlines detect failures).
  virtual bool Alive(uint16_t replica, uint32_t incarnation);
  // Fault injection into a running incarnation (launchers.h: Fault). Default: unsupported.
  virtual Status Inject(uint16_t replica, uint32_t incarnation, Fault fault, uint64_t bit);
};

struct GroupReport {
  bool completed = false;  // the program exited (exit_code) with agreement
  int exit_code = -1;
  std::string failure;  // why the group failed, if it did
  uint64_t rounds = 0;
  uint64_t mismatches = 0;  // rounds where replicas disagreed
  uint64_t rollbacks = 0;
  uint64_t repairs = 0;       // TMR state copies into an outvoted replica
  uint64_t replacements = 0;  // incarnations started after the first
  uint64_t catch_ups = 0;     // newcomers that caught up from the log and vote again
  uint64_t replayed = 0;      // events answered from the log to newcomers catching up
  // TMR: events of a lagging replica answered from the log after the first two matching ballots
  // had decided their round (each checked against the agreed digest).
  uint64_t late_ballots = 0;
  uint64_t rejected_records = 0;
  uint64_t missed_deadlines = 0;
  uint64_t crashes = 0;  // replicas found gone by the launcher before their deadline
  uint64_t output_bytes = 0;
  uint64_t aside_bytes = 0;  // bytes RDMA-READ from a replica once agreed (large output, writes)
  uint64_t voter_ns = 0;     // with measure: time the voter spent deciding and acting (repairs too)
};

class Group {
 public:
  // `server` must be started; the group registers one bootstrap service per incarnation.
  Group(GroupOptions options, transport::Transport& transport, transport::BootstrapServer& server,
        Launcher& launcher, std::FILE* input, std::FILE* output);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Handles kSyscall events (vigil-run); without it they fail the group. Set before Run().
  void set_syscall_executor(SyscallExecutor* e) { syscalls_ = e; }

  // Launches every replica and runs the group until the program exits or the group fails.
  Result<GroupReport> Run() VIGIL_EXCLUDES(mu_);
  // Ends Run early (shutdown request).
  void Cancel() VIGIL_EXCLUDES(mu_);

  // Test and vigilctl API: stop replica `replica`'s current incarnation now, as a crash would.
  void KillReplica(uint16_t replica) VIGIL_EXCLUDES(mu_);
  // Fault injection into replica `replica`'s current incarnation through the launcher.
  Status InjectFault(uint16_t replica, Fault fault, uint64_t bit = 0) VIGIL_EXCLUDES(mu_);

 private:
  struct Member;

  Status StartIncarnation(uint16_t slot) VIGIL_REQUIRES(mu_);
  Result<std::vector<transport::RemoteRegion>> Accept(uint16_t slot, uint32_t incarnation,
                                                      std::shared_ptr<channel::VoterEnd> end,
                                                      std::unique_ptr<transport::Connection> conn,
                                                      const transport::PeerInfo& peer)
      VIGIL_EXCLUDES(mu_);
  Status StageFor(uint64_t length, uint64_t& group_bytes,
                  std::optional<transport::RegisteredBuffer>& staging) VIGIL_REQUIRES(mu_);
  void MemberLoop(uint16_t slot, uint32_t incarnation, std::shared_ptr<Link> link)
      VIGIL_EXCLUDES(mu_);
  void PollerLoop() VIGIL_EXCLUDES(mu_);
  // Decodes and votes one event (deciding the round if it completes it); false: the replica
  // failed and was replaced.
  bool SubmitEvent(uint16_t slot, uint32_t incarnation, Link& link, const channel::Record& rec)
      VIGIL_EXCLUDES(mu_);
  // Sends the verdict waiting in `link`; false when the replica is finished or failed.
  bool DeliverVerdict(uint16_t slot, uint32_t incarnation, Link& link) VIGIL_EXCLUDES(mu_);
  // Moves the verdict waiting in `link` to link.sending; returns its kind.
  uint16_t TakeVerdict(Link& link) VIGIL_EXCLUDES(mu_);
  // After sending a verdict of `kind` (status `st`): false when the replica is finished or failed.
  bool Sent(uint16_t slot, uint32_t incarnation, const Link& link, uint16_t kind, const Status& st)
      VIGIL_EXCLUDES(mu_);
  bool WaitForVerdict(Link& link) VIGIL_EXCLUDES(mu_);  // false: the link was stopped
  // Releases mu_ while it asks the launcher (a gRPC call to a node, perhaps).
  void CheckLiveness() VIGIL_REQUIRES(mu_);
  void FailMember(uint16_t slot, uint32_t incarnation, const std::string& why, bool rejected)
      VIGIL_EXCLUDES(mu_);
  // Decides the round (its ballots are in, or the coordinator found it overdue): asks the round
  // machine (round.h) for a plan and carries it out.
  void Decide() VIGIL_REQUIRES(mu_);
  // The coordinator: fails the replicas without a ballot whose deadline passed before `now`.
  void FailOverdue(std::chrono::steady_clock::time_point now) VIGIL_REQUIRES(mu_);
  // The plan's kinds: agreement (repairs, replacements, admissions, then the effect once and the
  // answers), a mismatch (roll back) and recovery from the last agreed checkpoint.
  void Agree(const RoundPlan& plan) VIGIL_REQUIRES(mu_);
  void Mismatch() VIGIL_REQUIRES(mu_);
  void RecoverFromCheckpoint(const RoundPlan& plan) VIGIL_REQUIRES(mu_);
  // TMR: repairs (or replaces, past the failure budget) the outvoted and replaces the diverged;
  // returns the repaired.
  SlotSet HandleOutvoted(const RoundPlan& plan, const ReceivedEvent& winner) VIGIL_REQUIRES(mu_);
  void AdmitJoiners(const RoundPlan& plan, const ReceivedEvent& winner) VIGIL_REQUIRES(mu_);
  // A catching-up or lagging member's event: answered from the log (true), or it reached the
  // group's next event and is live again (true, `live` set), or, lagging, it differed from the
  // agreed event and is held for repair (true), or it failed and was replaced (false). The event
  // is swapped out of `b` when held.
  bool Replay(uint16_t slot, ReceivedEvent& b, bool& live) VIGIL_REQUIRES(mu_);
  // Counts a fault of member `slot`'s (`what`): when it is the replace_after-th within the
  // window, replaces the member rather than letting it be repaired, and returns true.
  bool ReplacedIfFaultyTooOften(uint16_t slot, const std::string& what) VIGIL_REQUIRES(mu_);
  // Members due for repair (kRepairDue) get `from`'s last agreed checkpoint in their checkpoint
  // region (`from` has its ballot in, so that region is still); `then_catch_up`: they are
  // answered "roll back" and catch up from the log (else the caller rolls everyone back).
  void RepairFromCheckpoint(uint16_t from, bool then_catch_up) VIGIL_REQUIRES(mu_);
  // Logs the agreed event `w` (verdict arg, `bytes` result bytes in the input staging buffer).
  void LogAgreed(const ReceivedEvent& w, uint64_t arg, uint64_t bytes) VIGIL_REQUIRES(mu_);
  // After a rollback to the last agreed checkpoint: drops later log entries; members catching up
  // are replaced (their position is no longer agreed history).
  void RewindLog() VIGIL_REQUIRES(mu_);
  bool CanCatchUp() const VIGIL_REQUIRES(mu_);
  // Copies `from`'s state (or last checkpoint), checked against `digest` if given, into
  // newcomer `j` and admits it as live (answered "repaired" for the state at `at_event`). False
  // if the copy failed and `j` was replaced again.
  bool Admit(uint16_t j, uint16_t from, bool from_checkpoint, const uint64_t* digest,
             uint64_t at_event, const std::string& how) VIGIL_REQUIRES(mu_);
  // Carries out the agreed effect once; returns the verdict's arg (input: bytes staged).
  Result<uint64_t> Apply(const ReceivedEvent& winner) VIGIL_REQUIRES(mu_);
  // RDMA-READs the bytes a voted call left aside from a replica that voted for it (`winner`'s
  // digest), into aside_staging_, and checks them against their digest.
  Result<std::span<const std::byte>> FetchAside(const ReceivedEvent& winner, const Aside& aside)
      VIGIL_REQUIRES(mu_);
  // RDMA-WRITEs the staged input to each replica in `to`; drops (and replaces) failures.
  void DeliverInput(uint64_t n, SlotSet& to) VIGIL_REQUIRES(mu_);
  // After Apply(winner): delivers its result bytes, then answers every replica in `to`
  // (`repaired`: those answered kRepaired).
  void Conclude(const ReceivedEvent& winner, uint64_t arg, SlotSet to, SlotSet repaired)
      VIGIL_REQUIRES(mu_);
  // Rolls the syscall executor back with the replicas; false: it could not (the group failed).
  bool RollbackExecutor() VIGIL_REQUIRES(mu_);
  // Copies `from`'s state (or its checkpoint) into `to`'s state (or its checkpoint region).
  Status CopyState(uint16_t from, bool from_checkpoint, uint16_t to, bool into_checkpoint,
                   const uint64_t* digest) VIGIL_REQUIRES(mu_);
  void Answer(uint16_t slot, replica::VerdictKind kind, uint64_t event_seq, uint64_t arg,
              std::span<const std::byte> data) VIGIL_REQUIRES(mu_);
  // Counts the rollback (the group fails past max_rollbacks) and rolls every replica back.
  void RollbackAll(const std::string& why) VIGIL_REQUIRES(mu_);
  // Answers every replica with an event "roll back to the last agreed checkpoint" and rewinds.
  void AnswerRollback() VIGIL_REQUIRES(mu_);
  void FailGroup(const std::string& why) VIGIL_REQUIRES(mu_);
  void Replace(uint16_t slot, const std::string& why) VIGIL_REQUIRES(mu_);

  GroupOptions o_;
  transport::Transport& transport_;
  transport::BootstrapServer& server_;
  Launcher& launcher_;
  SyscallExecutor* syscalls_ = nullptr;

  // The group's state: members, the round, the log and the report. The polling path takes it
  // twice per event (submit, take the verdict); decisions hold it (voter/src/group.cc).
  mutable Mutex mu_;
  std::condition_variable_any cv_;
  InputSource input_ VIGIL_GUARDED_BY(mu_);
  std::FILE* output_ VIGIL_PT_GUARDED_BY(mu_);
  uint64_t syscall_bytes_ VIGIL_GUARDED_BY(mu_) = 0;  // result bytes of the last call applied
  std::vector<std::unique_ptr<Member>> members_ VIGIL_GUARDED_BY(mu_);
  // Threads of stopped incarnations, joined at the end.
  std::vector<std::thread> retired_ VIGIL_GUARDED_BY(mu_);
  std::thread poller_;  // polling method: the one thread serving every ring
  std::atomic<bool> poller_stop_{false};
  std::atomic<uint64_t> links_gen_{0};      // bumped when a link comes or goes
  int sleepers_ VIGIL_GUARDED_BY(mu_) = 0;  // threads asleep on cv_ waiting for a verdict
  // Staging buffers: state copies, input (read once), bytes a call left aside.
  std::optional<transport::RegisteredBuffer> staging_ VIGIL_GUARDED_BY(mu_);
  std::optional<transport::RegisteredBuffer> input_staging_ VIGIL_GUARDED_BY(mu_);
  std::optional<transport::RegisteredBuffer> aside_staging_ VIGIL_GUARDED_BY(mu_);
  uint64_t state_bytes_ VIGIL_GUARDED_BY(mu_) = 0;
  uint64_t input_bytes_ VIGIL_GUARDED_BY(mu_) = 0;
  // TMR catch-up log: the events agreed since the last agreed checkpoint (earlier while a
  // member is still catching up from before it).
  CatchUpLog log_ VIGIL_GUARDED_BY(mu_);
  uint64_t emitted_ VIGIL_GUARDED_BY(mu_) = 0;  // output bytes written
  // The round: members' standing, ballots and deadlines, the expected event, the last agreed
  // checkpoint and the rollback count.
  RoundMachine round_ VIGIL_GUARDED_BY(mu_);
  // How many rounds were decided (the coordinator restarts deadlines when it changes).
  uint64_t decisions_ VIGIL_GUARDED_BY(mu_) = 0;
  bool done_ VIGIL_GUARDED_BY(mu_) = false;
  bool cancelled_ VIGIL_GUARDED_BY(mu_) = false;
  GroupReport report_ VIGIL_GUARDED_BY(mu_);
};

// Runs the group; SIGINT/SIGTERM (cli::ShutdownRequested) cancels it. `seconds` (optional)
// receives how long the run took. For the binaries that run one job.
Result<GroupReport> RunUntilShutdown(Group& group, double* seconds = nullptr);

}  // namespace vigil::voter
