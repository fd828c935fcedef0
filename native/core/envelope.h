// The v1 envelope (docs/security.md#the-envelope-format-v1):
//   magic "SEAL" | version 1 | flags | reserved 0,0 | key id (4) | created-at (8, BE ms)
//   | expires-at (8, BE ms, 0 = never) | nonce (12) | AES-256-GCM ciphertext | tag (16)
// AAD = the 40 header bytes || a context string that is not stored.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "keys.h"

namespace sealed {

inline constexpr size_t kHeaderSize = 40;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kMinEnvelope = kHeaderSize + kTagSize;  // 56: empty plaintext
inline constexpr size_t kDefaultMaxBytes = 1u << 20;
inline constexpr uint8_t kVersion = 1;
// JavaScript numbers are exact up to 2^53; times beyond that cannot round-trip.
inline constexpr uint64_t kMaxTime = (uint64_t{1} << 53) - 1;

struct Header {
  uint8_t version;
  uint8_t flags;
  uint8_t key_id[kKeyIdSize];
  uint64_t created_at;
  uint64_t expires_at;
  uint8_t nonce[kNonceSize];

  bool ExpiredAt(uint64_t now) const { return expires_at != 0 && expires_at <= now; }
};

// Reads and checks the 40-byte header. min_len is the length below which the data counts as
// truncated (kHeaderSize for a peek, kMinEnvelope for a whole envelope).
Header ParseHeader(const uint8_t* data, size_t len, size_t min_len = kHeaderSize);

// Seals plaintext under the ring's current key. nonce may be null (a fresh random nonce is
// drawn); a fixed nonce exists for known-answer tests only.
std::vector<uint8_t> Seal(const KeyRing& ring, const uint8_t* plaintext, size_t plaintext_len, std::string_view context,
                          uint64_t created_at, uint64_t expires_at, const uint8_t* nonce = nullptr);

struct Opened {
  Header header;
  std::vector<uint8_t> plaintext;
  int key_index;
};

// Checks size cap, header, key id and tag, in that order; each rejection has its own code.
Opened Open(const KeyRing& ring, const uint8_t* data, size_t len, std::string_view context,
            size_t max_bytes = kDefaultMaxBytes);

}  // namespace sealed
