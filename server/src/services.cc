#include "vigil/server/services.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <map>
#include <set>
#include <vector>

namespace vigil::server {
namespace {

// Splits "op arg rest..." into the op, the first argument and the rest (the value of put).
struct Parsed {
  std::string_view op, arg, rest;
};
Parsed Parse(std::string_view req) {
  Parsed p;
  auto sp = req.find(' ');
  p.op = req.substr(0, sp);
  if (sp == std::string_view::npos) return p;
  req.remove_prefix(sp + 1);
  sp = req.find(' ');
  p.arg = req.substr(0, sp);
  if (sp != std::string_view::npos) p.rest = req.substr(sp + 1);
  return p;
}

Status CheckName(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxKey;
  for (char c : name) ok = ok && c > 0x20 && c < 0x7f;
  if (!ok) {
    return InvalidArgument(fmt::format("{} '{}' must be 1..{} printable characters without spaces",
                                       what, name.substr(0, kMaxKey), kMaxKey));
  }
  return Status::Ok();
}

// Length-prefixed strings.
void PutStr(std::string& out, std::string_view s) {
  const auto n = static_cast<uint16_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), 2);
  out.append(s);
}
bool GetStr(std::string_view& in, std::string& s) {
  uint16_t n;
  if (in.size() < 2) return false;
  std::memcpy(&n, in.data(), 2);
  in.remove_prefix(2);
  if (in.size() < n) return false;
  s.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

// ---- kv ----------------------------------------------------------------------------------------

struct KvSession {
  std::map<std::string, std::string> data;
  std::string cursor;  // the last key returned by next; empty: at the start
};

std::string EncodeKv(const KvSession& s) {
  std::string out;
  PutStr(out, s.cursor);
  const auto n = static_cast<uint32_t>(s.data.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  for (const auto& [k, v] : s.data) {
    PutStr(out, k);
    PutStr(out, v);
  }
  return out;
}

Result<KvSession> DecodeKv(std::string_view in) {
  KvSession s;
  if (in.empty()) return s;  // a new session
  uint32_t n = 0;
  if (!GetStr(in, s.cursor) || in.size() < 4) return DataLoss("kv session truncated");
  std::memcpy(&n, in.data(), 4);
  in.remove_prefix(4);
  if (!s.cursor.empty()) VIGIL_RETURN_IF_ERROR(CheckName("cursor key", s.cursor));
  std::string prev;
  for (uint32_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!GetStr(in, k) || !GetStr(in, v)) {
      return DataLoss(fmt::format("kv session truncated at entry {} of {}", i, n));
    }
    VIGIL_RETURN_IF_ERROR(CheckName("key", k));
    if (v.size() > kMaxValue) {
      return DataLoss(
          fmt::format("value of key '{}' is {} bytes (max {})", k, v.size(), kMaxValue));
    }
    if (i > 0 && k <= prev) return DataLoss(fmt::format("keys out of order at '{}'", k));
    prev = k;
    s.data.emplace(std::move(k), std::move(v));
  }
  if (!in.empty()) return DataLoss(fmt::format("{} stray bytes after the kv session", in.size()));
  return s;
}

class KvService final : public Service {
 public:
  std::string_view name() const override { return "kv"; }
  Recovery recovery() const override { return Recovery::kPerClient; }
  Status Validate(uint64_t, std::string_view state) override { return DecodeKv(state).status(); }

  Status Handle(uint64_t, std::string& state, std::string_view request, std::string& reply,
                size_t limit) override {
    VIGIL_ASSIGN_OR_RETURN(KvSession s, DecodeKv(state));
    const Parsed p = Parse(request);
    if (p.op == "count") {
      reply = std::to_string(s.data.size());
      return Status::Ok();
    }
    if (p.op == "next") {
      auto it = s.cursor.empty() ? s.data.begin() : s.data.upper_bound(s.cursor);
      if (it == s.data.end()) {
        s.cursor.clear();
        reply.clear();
      } else {
        s.cursor = it->first;
        reply = it->first;
      }
      state = EncodeKv(s);
      return Status::Ok();
    }
    VIGIL_RETURN_IF_ERROR(CheckName("key", p.arg));
    const std::string key(p.arg);
    if (p.op == "get") {
      auto it = s.data.find(key);
      if (it == s.data.end()) return NotFound(fmt::format("no key '{}'", key));
      reply = it->second;
      return Status::Ok();
    }
    if (p.op == "del") {
      if (s.data.erase(key) == 0) return NotFound(fmt::format("no key '{}'", key));
      if (s.cursor == key) s.cursor.clear();
      state = EncodeKv(s);
      reply = "ok";
      return Status::Ok();
    }
    if (p.op == "put" || p.op == "incr") {
      std::string value(p.rest);
      if (p.op == "incr") {
        int64_t v = 0;
        const std::string& cur = s.data[key];
        if (!cur.empty()) {
          auto [ptr, ec] = std::from_chars(cur.data(), cur.data() + cur.size(), v);
          if (ec != std::errc() || ptr != cur.data() + cur.size()) {
            return FailedPrecondition(fmt::format("value of '{}' is not an integer", key));
          }
        }
        value = std::to_string(v + 1);
        reply = value;
      } else {
        reply = "ok";
      }
      if (value.size() > kMaxValue) {
        return InvalidArgument(
            fmt::format("value of {} bytes exceeds {}", value.size(), kMaxValue));
      }
      KvSession next = s;
      next.data[key] = value;
      std::string encoded = EncodeKv(next);
      if (encoded.size() > limit) {
        reply.clear();
        return ResourceExhausted(
            fmt::format("session full: {} bytes of state (limit {})", encoded.size(), limit));
      }
      state = std::move(encoded);
      return Status::Ok();
    }
    return InvalidArgument(fmt::format("unknown kv operation '{}'", p.op.substr(0, 16)));
  }
};

// ---- lock --------------------------------------------------------------------------------------

std::string EncodeLocks(const std::set<std::string>& held) {
  std::string out;
  for (const auto& l : held) PutStr(out, l);
  return out;
}

Result<std::set<std::string>> DecodeLocks(std::string_view in) {
  std::set<std::string> held;
  while (!in.empty()) {
    std::string l;
    if (!GetStr(in, l)) return DataLoss("lock list truncated");
    VIGIL_RETURN_IF_ERROR(CheckName("lock name", l));
    if (!held.empty() && l <= *held.rbegin()) {
      return DataLoss(fmt::format("lock names out of order at '{}'", l));
    }
    held.insert(std::move(l));
    if (held.size() > kMaxLocksPerClient) {
      return DataLoss(fmt::format("more than {} locks held", kMaxLocksPerClient));
    }
  }
  return held;
}

class LockService final : public Service {
 public:
  std::string_view name() const override { return "lock"; }
  Recovery recovery() const override { return Recovery::kAllClients; }
  Status Validate(uint64_t, std::string_view state) override { return DecodeLocks(state).status(); }

  Status Adopt(uint64_t client, std::string_view state) override {
    VIGIL_ASSIGN_OR_RETURN(auto held, DecodeLocks(state));
    for (const auto& l : held) {
      auto it = owner_.find(l);
      if (it != owner_.end() && it->second != client) {
        return FailedPrecondition(
            fmt::format("lock '{}' is also held by client {}", l, it->second));
      }
    }
    for (const auto& l : held) owner_[l] = client;
    return Status::Ok();
  }

  Status Handle(uint64_t client, std::string& state, std::string_view request, std::string& reply,
                size_t limit) override {
    VIGIL_ASSIGN_OR_RETURN(auto held, DecodeLocks(state));
    const Parsed p = Parse(request);
    if (p.op == "held") {
      for (const auto& l : held) reply += (reply.empty() ? "" : " ") + l;
      return Status::Ok();
    }
    VIGIL_RETURN_IF_ERROR(CheckName("lock name", p.arg));
    const std::string lock(p.arg);
    if (p.op == "acquire") {
      auto it = owner_.find(lock);
      if (it != owner_.end()) {
        if (it->second == client) {
          reply = "already held";
          return Status::Ok();
        }
        return FailedPrecondition(fmt::format("'{}' is held by client {}", lock, it->second));
      }
      if (held.size() >= kMaxLocksPerClient) {
        return ResourceExhausted(fmt::format("client holds {} locks already", held.size()));
      }
      held.insert(lock);
      std::string encoded = EncodeLocks(held);
      if (encoded.size() > limit) {
        return ResourceExhausted(
            fmt::format("lock list of {} bytes exceeds {}", encoded.size(), limit));
      }
      state = std::move(encoded);
      owner_[lock] = client;
      reply = "granted";
      return Status::Ok();
    }
    if (p.op == "release") {
      if (held.erase(lock) == 0) return NotFound(fmt::format("'{}' is not held", lock));
      owner_.erase(lock);
      state = EncodeLocks(held);
      reply = "released";
      return Status::Ok();
    }
    return InvalidArgument(fmt::format("unknown lock operation '{}'", p.op.substr(0, 16)));
  }

  void Forget(uint64_t client) override {
    std::erase_if(owner_, [&](const auto& kv) { return kv.second == client; });
  }

 private:
  std::map<std::string, uint64_t> owner_;
};

}  // namespace

std::unique_ptr<Service> MakeKvService() { return std::make_unique<KvService>(); }
std::unique_ptr<Service> MakeLockService() { return std::make_unique<LockService>(); }

Result<std::unique_ptr<Service>> MakeService(std::string_view name) {
  if (name == "kv") return MakeKvService();
  if (name == "lock") return MakeLockService();
  return InvalidArgument(fmt::format("unknown service '{}' (kv or lock)", name));
}

}  // namespace vigil::server
