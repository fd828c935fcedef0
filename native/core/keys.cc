#include "keys.h"

#include <atomic>
#include <cstring>
#include <memory>

#include "crypto.h"
#include "errors.h"

namespace sealed {

namespace {
// OpenSSL 3's HKDF caps info at 1024 bytes; kept on every backend so all accept the same names.
constexpr size_t kMaxInfo = 1024;

std::atomic<int64_t> g_live_rings{0};
}  // namespace

void DeriveKey(std::string_view ikm, std::string_view scope, std::string_view name, std::string_view uid,
               std::string_view boot_id, uint8_t out[kKeySize]) {
  std::string info;
  info.reserve(scope.size() + name.size() + uid.size() + boot_id.size() + 3);
  info.append(scope).push_back('\0');
  info.append(name).push_back('\0');
  info.append(uid).push_back('\0');
  info.append(boot_id);
  if (info.size() > kMaxInfo) throw Error(code::kInvalidArg, "key derivation info is longer than 1024 bytes");
  if (ikm.empty()) throw Error(code::kInvalidArg, "key material must not be empty");

  crypto::HkdfSha256(ikm, kSalt, info, out);
}

KeyId ComputeKeyId(const uint8_t key[kKeySize]) {
  uint8_t input[18 + kKeySize];
  const size_t label_len = strlen(kKeyIdLabel);  // 18
  memcpy(input, kKeyIdLabel, label_len);
  memcpy(input + label_len, key, kKeySize);
  uint8_t digest[crypto::kDigestSize];
  try {
    crypto::Sha256(input, label_len + kKeySize, digest);
  } catch (...) {
    crypto::Cleanse(input, sizeof input);
    throw;
  }
  crypto::Cleanse(input, sizeof input);
  KeyId id;
  memcpy(id.data(), digest, kKeyIdSize);
  return id;
}

void HmacSha256(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len, uint8_t out[kMacSize]) {
  crypto::HmacSha256(key, key_len, msg, msg_len, out);
}

void KeyRing::Mac(size_t i, const uint8_t* msg, size_t len, uint8_t out[kMacSize]) const {
  if (i >= keys_.size()) throw Error(code::kInvalidArg, "no key at that index");
  HmacSha256(keys_[i].bytes, kKeySize, msg, len, out);
}

KeyRing::KeyRing(const std::vector<std::string>& ikms, std::string_view scope, std::string_view name,
                 std::string_view uid, std::string_view boot_id) {
  if (ikms.empty()) throw Error(code::kInvalidArg, "a key ring needs at least one key");
  flags_ = boot_id.empty() ? 0 : kFlagBootBound;
  slots_ = std::make_unique<CtxSlot[]>(ikms.size() * kCtxSlotsPerKey);
  keys_.reserve(ikms.size());  // no reallocation: a moved-from buffer would escape the wipe
  try {
    for (const std::string& ikm : ikms) {
      keys_.emplace_back();
      DeriveKey(ikm, scope, name, uid, boot_id, keys_.back().bytes);
      keys_.back().id = ComputeKeyId(keys_.back().bytes);
    }
  } catch (...) {
    crypto::Cleanse(keys_.data(), keys_.size() * sizeof(KeyMaterial));
    throw;
  }
  g_live_rings.fetch_add(1, std::memory_order_relaxed);
}

int64_t KeyRing::LiveCount() { return g_live_rings.load(std::memory_order_relaxed); }

KeyRing::~KeyRing() {
  slots_.reset();
  crypto::Cleanse(keys_.data(), keys_.size() * sizeof(KeyMaterial));
  g_live_rings.fetch_sub(1, std::memory_order_relaxed);
}

KeyRing::CtxSlot* KeyRing::TryTakeSlot(size_t i) const {
  CtxSlot* first = &slots_[i * kCtxSlotsPerKey];
  for (size_t k = 0; k < kCtxSlotsPerKey; k++) {
    if (first[k].mu.try_lock()) return &first[k];
  }
  return nullptr;
}

int KeyRing::Find(const uint8_t id[kKeyIdSize]) const {
  for (size_t i = 0; i < keys_.size(); i++) {
    if (memcmp(keys_[i].id.data(), id, kKeyIdSize) == 0) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace sealed
