#include "envelope.h"

#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "crypto.h"
#include "errors.h"

namespace sealed {

namespace {
constexpr uint8_t kMagic[4] = {'S', 'E', 'A', 'L'};

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
  } else {
    crypto::RandomBytes(h + 28, kNonceSize);
  }
  crypto::GcmSeal(key.bytes, h + 28, crypto::Aad{h, kHeaderSize, context}, plaintext, plaintext_len, h + kHeaderSize,
                  h + kHeaderSize + plaintext_len);
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
  // A reused opener of the ring (keyed once; only the nonce is set per open), or our own when
  // all of them are in use by other threads.
  KeyRing::CtxSlot* slot = ring.TryTakeSlot(static_cast<size_t>(r.key_index));
  std::unique_lock<std::mutex> hold;
  std::unique_ptr<crypto::GcmOpener> own;
  crypto::GcmOpener* opener;
  if (slot != nullptr) {
    hold = std::unique_lock<std::mutex>(slot->mu, std::adopt_lock);
    if (!slot->opener) slot->opener = std::make_unique<crypto::GcmOpener>(key.bytes);
    opener = slot->opener.get();
  } else {
    own = std::make_unique<crypto::GcmOpener>(key.bytes);
    opener = own.get();
  }
  crypto::GcmOpener::Result res = opener->Open(r.header.nonce, crypto::Aad{data, kHeaderSize, context},
                                               data + kHeaderSize, ct_len, data + len - kTagSize, r.plaintext.data());
  if (res == crypto::GcmOpener::Result::kFailed) {
    // An opener in an unknown state is not reused: the next open keys a fresh one.
    if (slot != nullptr) slot->opener.reset();
    throw Error(code::kCrypto, "AES-256-GCM decryption failed");
  }
  if (res == crypto::GcmOpener::Result::kBadTag)
    throw Error(code::kTampered, "envelope failed authentication (tampered, wrong key or wrong context)");
  return r;
}

}  // namespace sealed
