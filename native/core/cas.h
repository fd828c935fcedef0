// Compare-and-swap writes of store records in a private directory, in one call (one libuv pool
// job for the addon): take the stripe lock, open the current record, compare its version, seal
// and write the new one, release. The version is the one a record's JSON carries at its end
// (`,"version":N}`, as lib/stores/base-store.ts writes it), so the check needs no JSON parser.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "private_dir.h"

namespace sealed {

// The version at the end of a record's JSON; 1 for a record without one (it ends in `}}`);
// 0 when the trailing version is malformed (matches no expected version).
uint64_t RecordVersion(std::string_view json);

enum class CasMode {
  kAny,      // write whatever is there
  kAbsent,   // write only if no live record (missing, expired or unreadable)
  kVersion,  // write only over a live record of exactly `expected`
};

struct CasResult {
  enum Outcome { kWritten, kMissing, kConflict, kExists } outcome = kWritten;
  // kConflict: the live record's plaintext, and the stripe lock still held so the caller can
  // write a rebuilt record before anyone else (it releases the lock).
  std::string current;
  std::unique_ptr<FileLock> lock;
  // The code of an unreadable record that was treated as no record (empty when none).
  std::string unreadable;
};

// One compare-and-swap write: what to write where, and on what condition.
struct CasWrite {
  std::string name;    // the record's file
  std::string stripe;  // the lock taken for it (PrivateDir::LockNameOf(name), or a shared stripe)
  const uint8_t* plaintext = nullptr;
  size_t size = 0;
  std::string context;
  uint64_t created_at = 0;
  uint64_t expires_at = 0;
  size_t max_bytes = kDefaultMaxBytes;  // of the current record, when it is read
  uint64_t now = 0;                     // expiry of the current record is judged at this time
  CasMode mode = CasMode::kAny;
  uint64_t expected = 0;  // kVersion: the version the live record must carry
};

CasResult CasSeal(const PrivateDir& dir, const KeyRing& ring, const CasWrite& w);

}  // namespace sealed
