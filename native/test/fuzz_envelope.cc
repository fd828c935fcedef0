// libFuzzer target: the header peek (ParseHeader) and Open of arbitrary bytes with a fixed
// key ring and an arbitrary context. Input layout: byte 0 = context length k (clamped to
// what is left), then k context bytes, then the envelope. Only sealed::Error may escape the
// core; anything else (crash, sanitizer report, other exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "envelope.h"
#include "errors.h"
#include "fuzz_ring.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sealed::KeyRing& ring = fuzz::Ring();
  // Header peek of the raw bytes, at both minimum lengths.
  for (size_t min_len : {sealed::kHeaderSize, sealed::kMinEnvelope}) {
    try {
      sealed::Header h = sealed::ParseHeader(data, size, min_len);
      if (h.version != sealed::kVersion || (h.flags & ~sealed::kFlagBootBound) != 0) abort();
      (void)h.ExpiredAt(static_cast<uint64_t>(size));
    } catch (const sealed::Error&) {
    }
  }
  if (size == 0) return 0;
  size_t k = data[0];
  if (k > size - 1) k = size - 1;
  std::string_view context(reinterpret_cast<const char*>(data + 1), k);
  // A heap copy of exactly the envelope bytes, so ASan sees any read past its end.
  std::vector<uint8_t> env(data + 1 + k, data + size);
  const uint8_t* p = env.empty() ? nullptr : env.data();
  try {
    sealed::Opened o = sealed::Open(ring, p, env.size(), context, fuzz::kMaxBytes);
    // Only a real envelope of ours opens; its plaintext must fit what was given.
    if (o.plaintext.size() + sealed::kMinEnvelope != env.size()) abort();
    if (o.key_index < 0 || static_cast<size_t>(o.key_index) >= ring.size()) abort();
  } catch (const sealed::Error&) {
  }
  // Round trip: whatever the bytes, sealing them and opening the result gives them back.
  if (env.size() <= 4096) {
    std::vector<uint8_t> sealed_env = sealed::Seal(ring, p, env.size(), context, size, 0);
    sealed::Opened o = sealed::Open(ring, sealed_env.data(), sealed_env.size(), context, fuzz::kMaxBytes);
    if (o.plaintext.size() != env.size() || (!env.empty() && memcmp(o.plaintext.data(), p, env.size()) != 0)) abort();
  }
  return 0;
}
