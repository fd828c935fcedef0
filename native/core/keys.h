// Key derivation (HKDF-SHA256, pinned inputs: docs/security.md#keys) and the key ring that holds
// one or more 32-byte keys in native memory. Keys are wiped (crypto::Cleanse) when the
// ring is destroyed; a ring is shared (shared_ptr) by in-flight work so close() never frees
// a key under a running thread: the last holder wipes it.
#pragma once
#include <array>
#include <cstdint>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.h"

namespace sealed {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kKeyIdSize = 4;
inline constexpr const char* kSalt = "sealed-session/v1";
inline constexpr const char* kKeyIdLabel = "sealed-session kid";
// Flag bit 0 of the envelope: the key is bound to this boot.
inline constexpr uint8_t kFlagBootBound = 0x01;

using KeyId = std::array<uint8_t, kKeyIdSize>;

struct KeyMaterial {
  uint8_t bytes[kKeySize];
  KeyId id;
};

// HKDF-SHA256(ikm, salt, info = scope 0 name 0 uid 0 bootId) -> 32 bytes into out.
void DeriveKey(std::string_view ikm, std::string_view scope, std::string_view name, std::string_view uid,
               std::string_view boot_id, uint8_t out[kKeySize]);

// First 4 bytes of SHA-256("sealed-session kid" || key).
KeyId ComputeKeyId(const uint8_t key[kKeySize]);

inline constexpr size_t kMacSize = 32;
// HMAC-SHA256(key, msg) -> 32 bytes into out.
void HmacSha256(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len, uint8_t out[kMacSize]);

class KeyRing {
 public:
  // Rings alive in this process (constructed and not yet destroyed, so not yet wiped): lets
  // tests prove that an unclosed manager or store that was collected took its keys with it.
  static int64_t LiveCount();

  // ikms: current first. Throws Error(kInvalidArg) on empty ikm list or over-long info.
  KeyRing(const std::vector<std::string>& ikms, std::string_view scope, std::string_view name, std::string_view uid,
          std::string_view boot_id);
  ~KeyRing();
  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;

  size_t size() const { return keys_.size(); }
  const KeyMaterial& key(size_t i) const { return keys_[i]; }
  // Index of the key with this id, or -1.
  int Find(const uint8_t id[kKeyIdSize]) const;
  uint8_t flags() const { return flags_; }
  // HMAC-SHA256 of msg under key i: names an identity's index without holding the identity
  // (a ring derived with scope "store-index" keeps these keys apart from the sealing keys).
  void Mac(size_t i, const uint8_t* msg, size_t len, uint8_t out[kMacSize]) const;

  // A reusable AES-256-GCM decryption context for one key: keyed once (envelope.cc does
  // that on first use), then only the IV is reset per open, which saves the context
  // allocation and the key schedule on every read. A slot is used by one thread at a time.
  struct CtxSlot {
    std::mutex mu;
    std::unique_ptr<crypto::GcmOpener> opener;
  };
  static constexpr size_t kCtxSlotsPerKey = 4;
  // One of key i's slots, locked for the caller (who unlocks it), or null when all are busy:
  // the caller then uses a context of its own. Never blocks.
  CtxSlot* TryTakeSlot(size_t i) const;

 private:
  std::vector<KeyMaterial> keys_;
  uint8_t flags_ = 0;
  // Freed with the ring; freeing an opener wipes the key schedule it holds.
  std::unique_ptr<CtxSlot[]> slots_;
};

}  // namespace sealed
