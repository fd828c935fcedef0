// Key derivation (HKDF-SHA256, pinned inputs: SPEC section 3) and the key ring that holds
// one or more 32-byte keys in native memory. Keys are wiped with OPENSSL_cleanse when the
// ring is destroyed; a ring is shared (shared_ptr) by in-flight work so close() never frees
// a key under a running thread: the last holder wipes it.
#pragma once
#include <array>
#include <cstdint>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

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

class KeyRing {
 public:
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

 private:
  std::vector<KeyMaterial> keys_;
  uint8_t flags_ = 0;
};

}  // namespace sealed
