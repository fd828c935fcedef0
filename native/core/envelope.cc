#include "envelope.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "errors.h"

namespace sealed {

namespace {
constexpr uint8_t kMagic[4] = {'S', 'E', 'A', 'L'};

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// OpenSSL 3 resolves EVP_aes_256_gcm() through an implicit fetch on every init: a name lookup
// under a lock, costlier than decrypting a session. Fetch it once (thread-safe static init);
// it lives for the process, like the provider that owns it.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher != nullptr ? cipher : EVP_aes_256_gcm();
}

void PutBE64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
}

uint64_t GetBE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

// AAD is fed in two updates (header, then context) so the context is never copied.
bool FeedAad(EVP_CIPHER_CTX* ctx, const uint8_t* header, std::string_view context, bool encrypt) {
  int len = 0;
  auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  if (update(ctx, nullptr, &len, header, static_cast<int>(kHeaderSize)) != 1) return false;
  if (!context.empty() && update(ctx, nullptr, &len, reinterpret_cast<const uint8_t*>(context.data()),
                                 static_cast<int>(context.size())) != 1)
    return false;
  return true;
}
}  // namespace

Header ParseHeader(const uint8_t* data, size_t len, size_t min_len) {
  if (len < min_len || len < kHeaderSize)
    throw Error(code::kTruncated, "envelope is truncated (" + std::to_string(len) + " bytes, at least " +
                                      std::to_string(min_len) + " needed)");
  if (memcmp(data, kMagic, 4) != 0) throw Error(code::kBadMagic, "not a sealed-session envelope (bad magic)");
  if (data[4] != kVersion) throw Error(code::kBadVersion, "unsupported envelope version " + std::to_string(data[4]));
  if ((data[5] & ~kFlagBootBound) != 0 || data[6] != 0 || data[7] != 0)
    throw Error(code::kBadReserved, "envelope has reserved bits set");
  Header h;
  h.version = data[4];
  h.flags = data[5];
  memcpy(h.key_id, data + 8, kKeyIdSize);
  h.created_at = GetBE64(data + 12);
  h.expires_at = GetBE64(data + 20);
  memcpy(h.nonce, data + 28, kNonceSize);
  return h;
}

std::vector<uint8_t> Seal(const KeyRing& ring, const uint8_t* plaintext, size_t plaintext_len, std::string_view context,
                          uint64_t created_at, uint64_t expires_at, const uint8_t* nonce) {
  if (plaintext_len > static_cast<size_t>(INT_MAX) - kMinEnvelope || context.size() > static_cast<size_t>(INT_MAX))
    throw Error(code::kTooLarge, "plaintext too large to seal");
  const KeyMaterial& key = ring.key(0);
  std::vector<uint8_t> out(kMinEnvelope + plaintext_len);
  uint8_t* h = out.data();
  memcpy(h, kMagic, 4);
  h[4] = kVersion;
  h[5] = ring.flags();
  h[6] = h[7] = 0;
  memcpy(h + 8, key.id.data(), kKeyIdSize);
  PutBE64(h + 12, created_at);
  PutBE64(h + 20, expires_at);
  if (nonce != nullptr) {
    memcpy(h + 28, nonce, kNonceSize);
  } else if (RAND_bytes(h + 28, kNonceSize) != 1) {
    throw Error(code::kCrypto, "no randomness for the nonce");
  }

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), Aes256Gcm(), nullptr, key.bytes, h + 28) == 1 &&
            FeedAad(ctx.get(), h, context, true) &&
            (plaintext_len == 0 ||
             EVP_EncryptUpdate(ctx.get(), h + kHeaderSize, &len, plaintext, static_cast<int>(plaintext_len)) == 1) &&
            EVP_EncryptFinal_ex(ctx.get(), h + kHeaderSize + plaintext_len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                                h + kHeaderSize + plaintext_len) == 1;
  if (!ok) throw Error(code::kCrypto, "AES-256-GCM encryption failed");
  return out;
}

Opened Open(const KeyRing& ring, const uint8_t* data, size_t len, std::string_view context, size_t max_bytes) {
  if (len > max_bytes)
    throw Error(code::kTooLarge,
                "envelope is " + std::to_string(len) + " bytes, over the cap of " + std::to_string(max_bytes));
  if (context.size() > static_cast<size_t>(INT_MAX)) throw Error(code::kTooLarge, "context too large");
  Opened r;
  r.header = ParseHeader(data, len, kMinEnvelope);
  r.key_index = ring.Find(r.header.key_id);
  if (r.key_index < 0) throw Error(code::kUnknownKey, "envelope was sealed with a key this key ring does not hold");
  const KeyMaterial& key = ring.key(static_cast<size_t>(r.key_index));

  const size_t ct_len = len - kMinEnvelope;
  r.plaintext.resize(ct_len);
  // A reused context of the ring (keyed once; only the IV is set here), or our own when all
  // of them are in use by other threads.
  KeyRing::CtxSlot* slot = ring.TryTakeSlot(static_cast<size_t>(r.key_index));
  std::unique_lock<std::mutex> hold;
  CipherCtx own;
  EVP_CIPHER_CTX* ctx = nullptr;
  bool ok;
  if (slot != nullptr) {
    hold = std::unique_lock<std::mutex>(slot->mu, std::adopt_lock);
    if (slot->ctx == nullptr) {
      CipherCtx fresh(EVP_CIPHER_CTX_new());
      if (fresh && EVP_DecryptInit_ex(fresh.get(), Aes256Gcm(), nullptr, key.bytes, nullptr) == 1)
        slot->ctx = fresh.release();
    }
    ctx = slot->ctx;
    ok = ctx != nullptr && EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, r.header.nonce) == 1;
  } else {
    own.reset(EVP_CIPHER_CTX_new());
    ctx = own.get();
    ok = ctx != nullptr && EVP_DecryptInit_ex(ctx, Aes256Gcm(), nullptr, key.bytes, r.header.nonce) == 1;
  }
  int out_len = 0;
  // The tag is set before Final; OpenSSL only reads it, the cast drops a const it does not need.
  ok = ok && FeedAad(ctx, data, context, false) &&
       (ct_len == 0 ||
        EVP_DecryptUpdate(ctx, r.plaintext.data(), &out_len, data + kHeaderSize, static_cast<int>(ct_len)) == 1) &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize),
                           const_cast<uint8_t*>(data + len - kTagSize)) == 1;
  if (!ok) {
    // A context in an unknown state is not reused: the next open keys a fresh one.
    if (slot != nullptr && slot->ctx != nullptr) {
      EVP_CIPHER_CTX_free(slot->ctx);
      slot->ctx = nullptr;
    }
    OPENSSL_cleanse(r.plaintext.data(), r.plaintext.size());
    throw Error(code::kCrypto, "AES-256-GCM decryption failed");
  }
  if (EVP_DecryptFinal_ex(ctx, r.plaintext.data() + ct_len, &out_len) != 1) {
    OPENSSL_cleanse(r.plaintext.data(), r.plaintext.size());
    throw Error(code::kTampered, "envelope failed authentication (tampered, wrong key or wrong context)");
  }
  return r;
}

}  // namespace sealed
