#include "keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "errors.h"

namespace sealed {

namespace {
// OpenSSL 3.0 caps HKDF info at 1024 bytes; our info is far shorter for sane names.
constexpr size_t kMaxInfo = 1024;

std::atomic<int64_t> g_live_rings{0};

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
}  // namespace

void Wipe(void* p, size_t n) { OPENSSL_cleanse(p, n); }

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

  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  size_t out_len = kKeySize;
  const char* salt = kSalt;
  bool ok = ctx && EVP_PKEY_derive_init(ctx.get()) > 0 && EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), reinterpret_cast<const unsigned char*>(salt),
                                        static_cast<int>(strlen(salt))) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), reinterpret_cast<const unsigned char*>(ikm.data()),
                                       static_cast<int>(ikm.size())) > 0 &&
            (info.empty() || EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), reinterpret_cast<const unsigned char*>(info.data()),
                                                         static_cast<int>(info.size())) > 0) &&
            EVP_PKEY_derive(ctx.get(), out, &out_len) > 0 && out_len == kKeySize;
  if (!ok) {
    OPENSSL_cleanse(out, kKeySize);
    throw Error(code::kCrypto, "HKDF-SHA256 key derivation failed");
  }
}

KeyId ComputeKeyId(const uint8_t key[kKeySize]) {
  uint8_t input[18 + kKeySize];
  const size_t label_len = strlen(kKeyIdLabel);  // 18
  memcpy(input, kKeyIdLabel, label_len);
  memcpy(input + label_len, key, kKeySize);
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  int ok = EVP_Digest(input, label_len + kKeySize, digest, &digest_len, EVP_sha256(), nullptr);
  OPENSSL_cleanse(input, sizeof input);
  if (ok != 1) throw Error(code::kCrypto, "SHA-256 failed");
  KeyId id;
  memcpy(id.data(), digest, kKeyIdSize);
  return id;
}

void HmacSha256(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len, uint8_t out[kMacSize]) {
  unsigned int out_len = 0;
  // HMAC() takes a non-null data pointer even for an empty message.
  static const uint8_t kEmpty = 0;
  if (HMAC(EVP_sha256(), key, static_cast<int>(key_len), msg_len == 0 ? &kEmpty : msg, msg_len, out, &out_len) ==
          nullptr ||
      out_len != kMacSize) {
    throw Error(code::kCrypto, "HMAC-SHA256 failed");
  }
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
    OPENSSL_cleanse(keys_.data(), keys_.size() * sizeof(KeyMaterial));
    throw;
  }
  g_live_rings.fetch_add(1, std::memory_order_relaxed);
}

int64_t KeyRing::LiveCount() { return g_live_rings.load(std::memory_order_relaxed); }

KeyRing::~KeyRing() {
  for (size_t i = 0; i < keys_.size() * kCtxSlotsPerKey; i++) EVP_CIPHER_CTX_free(slots_[i].ctx);
  OPENSSL_cleanse(keys_.data(), keys_.size() * sizeof(KeyMaterial));
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
