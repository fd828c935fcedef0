#include "cas.h"

#include <cstring>

#include "errors.h"

namespace sealed {

namespace {
constexpr std::string_view kVersionKey = ",\"version\":";
constexpr uint64_t kMaxSafe = (uint64_t{1} << 53) - 1;

bool Unreadable(const char* c) {
  for (const char* u : {code::kBadMagic, code::kBadVersion, code::kBadReserved, code::kTruncated, code::kTampered,
                        code::kUnknownKey, code::kTooLarge}) {
    if (std::strcmp(c, u) == 0) return true;
  }
  return false;
}
}  // namespace

uint64_t RecordVersion(std::string_view json) {
  if (json.size() < 2 || json.back() != '}') return 0;
  size_t end = json.size() - 1;
  size_t start = end;
  while (start > 0 && json[start - 1] >= '0' && json[start - 1] <= '9') start--;
  if (start == end) return 1;  // no digits before the final brace: a record without a version
  if (start < kVersionKey.size() || json.substr(start - kVersionKey.size(), kVersionKey.size()) != kVersionKey)
    return 0;
  if (end - start > 16 || json[start] == '0') return 0;
  uint64_t v = 0;
  for (size_t i = start; i < end; i++) v = v * 10 + static_cast<uint64_t>(json[i] - '0');
  return v <= kMaxSafe ? v : 0;
}

CasResult CasSeal(const PrivateDir& dir, const KeyRing& ring, const CasWrite& w) {
  CasResult r;
  std::unique_ptr<FileLock> lock = dir.Lock(w.stripe);
  // An expired record is removed under the lock held here when it is the name's own lock.
  const unsigned held = w.stripe == PrivateDir::LockNameOf(w.name) ? unsigned{kLockHeld} : 0u;
  if (w.mode != CasMode::kAny) {
    OpenFileResult cur;
    try {
      cur = dir.OpenFile(ring, w.name, w.context, w.max_bytes, w.now, kRemoveExpired | held);
    } catch (const Error& e) {
      if (!Unreadable(e.code())) throw;
      r.unreadable = e.code();
      cur.status = OpenFileResult::kMissing;
    }
    const bool live = cur.status == OpenFileResult::kOk;
    if (w.mode == CasMode::kAbsent && live) {
      r.outcome = CasResult::kExists;
      return r;
    }
    if (w.mode == CasMode::kVersion) {
      if (!live) {
        r.outcome = CasResult::kMissing;
        return r;
      }
      const auto& pt = cur.opened.plaintext;
      std::string_view json(reinterpret_cast<const char*>(pt.data()), pt.size());
      if (RecordVersion(json) != w.expected) {
        r.outcome = CasResult::kConflict;
        r.current.assign(json);
        r.lock = std::move(lock);
        return r;
      }
    }
  }
  dir.SealToFile(ring, w.name, w.plaintext, w.size, w.context, w.created_at, w.expires_at);
  r.outcome = CasResult::kWritten;
  return r;
}

}  // namespace sealed
