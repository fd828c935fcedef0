// The fixed key ring of the fuzz target and its seed corpus: the keys of the known-answer
// vectors (test/vectors/envelope-v1.json), so the seeds are envelopes the ring can open.
#pragma once
#include <string>
#include <vector>

#include "keys.h"

namespace fuzz {

inline constexpr size_t kMaxBytes = 64 * 1024;

// Machine-bound manager key of vector 0 (ikm, "manager", "audex", uid "1000", no boot id)
// current, and a second (older) key under the same scope, so rotation lookups are exercised.
inline const sealed::KeyRing& Ring() {
  static const sealed::KeyRing ring({"b08dfa6083e7567a1921a715000001fb", "correct horse battery staple, long enough"},
                                    "manager", "audex", "1000", "");
  return ring;
}

}  // namespace fuzz
