// Compare-and-swap writes of store records in a private directory, in one call (one libuv pool
// job for the addon): take the stripe lock, open the current record, compare its version, seal
// and write the new one, release. The version is the one a record's JSON carries at its end
// (`,"version":N}`, as lib/base-store.ts writes it), so the check needs no JSON parser.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "private_dir.h"

namespace sealed {

// The version at the end of a record's JSON; 1 for a record without one (0.1 records end in
// `}}`); 0 when the trailing version is malformed (matches no expected version).
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

CasResult CasSeal(const PrivateDir& dir, const KeyRing& ring, const std::string& name, const std::string& stripe,
                  const uint8_t* plaintext, size_t len, std::string_view context, uint64_t created_at,
                  uint64_t expires_at, size_t max_bytes, uint64_t now, CasMode mode, uint64_t expected);

}  // namespace sealed
