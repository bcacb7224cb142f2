// The system calls vigil-run replicates, and how (docs/vigil-run.md has the same table in prose).
//
// Every call of a replicated program stops (seccomp user notification) and is voted on: its
// number, its six arguments and its instruction pointer (replicas run with the same address
// layout, so pointers agree), plus the bytes it carries (a path, the data of a write). Then:
//
//   kLocal     every replica executes the call itself (memory management, signal set-up,
//              exit): its effect stays inside the replica;
//   kVoter     the voter executes it once, on the replicas' behalf, and every replica gets the
//              same result: the value, and the bytes the call returns written into its memory.
//              Descriptors are the voter's (a replica holds a local copy only of files opened
//              read-only, so that the loader and the program can mmap them);
//   kUnsupported / unknown: the run stops with a message naming the call.
//
// What travels from a replica to the voter for one call (the kSyscall event's data):
//   SyscallRecord (64 bytes) + blob; the blob holds the call's path argument(s), NUL-terminated,
//   or the bytes it writes (a write larger than one event is sent in pieces).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vigil::run {

enum class SyscallClass : uint8_t { kLocal, kVoter, kUnsupported };

struct SyscallSpec {
  int nr = -1;
  const char* name = "";
  // Arguments the call takes: only these are voted (the registers of the others hold leftovers
  // that differ between processes). futex: the first three.
  int8_t args = 0;
  SyscallClass cls = SyscallClass::kUnsupported;
  int8_t path = -1;     // argument holding a path the voter needs
  int8_t path2 = -1;    // a second path (rename)
  int8_t in_buf = -1;   // argument pointing at bytes the call writes out (with in_len)
  int8_t in_len = -1;   // (writev: in_buf is the iovec array, in_len its count)
  int8_t out_buf = -1;  // argument where the result bytes go
  int8_t out_len = -1;  // argument bounding them (-1: out_size bytes)
  uint32_t out_size = 0;
  const char* why = nullptr;  // kUnsupported: the reason given to the user
};

// nullptr for a call vigil-run does not know (treated as unsupported).
const SyscallSpec* FindSyscall(int nr);
// The arguments of `nr` as voted: those it takes, with the ones its other arguments make unused
// zeroed (open's mode without O_CREAT, fcntl's argument for F_GETFD/F_GETFL, ...). An unknown
// call: none.
void VotedArguments(int nr, const uint64_t (&args)[6], uint64_t (&voted)[6]);
// Every known call, for the documentation test.
const SyscallSpec* SyscallTable(size_t* count);

struct SyscallRecord {
  uint64_t args[6] = {};
  uint64_t instruction_pointer = 0;
  uint32_t blob_bytes = 0;  // bytes following the record
  uint32_t flags = 0;       // kRecordLocalFd...
};
inline constexpr size_t kSyscallRecordBytes = 64;
static_assert(sizeof(SyscallRecord) == kSyscallRecordBytes);
// mmap: the replica holds a local copy of the descriptor (the file was opened read-only).
inline constexpr uint32_t kRecordLocalFd = 1;
// A write whose bytes are in the replica's input buffer, for the voter to RDMA-READ once the
// call is agreed; the blob is a BytesAside (the digest is voted with the record).
inline constexpr uint32_t kRecordBytesAside = 2;
struct BytesAside {
  uint64_t bytes = 0;
  uint64_t digest = 0;  // XXH3_64bits of the bytes
};

// The result bytes of the ioctl requests vigil-run replicates (TCGETS: the kernel's struct
// termios, not glibc's larger one; TIOCGWINSZ: struct winsize); 0 for any other request.
size_t IoctlResultBytes(uint64_t request);

// "the program called clone (56): threads and child processes are not replicated" and the
// like: why the run stops at `nr`.
std::string UnsupportedMessage(int nr);

}  // namespace vigil::run
