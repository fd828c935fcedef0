// The core's only door to cryptography: AES-256-GCM, SHA-256, HMAC-SHA256, HKDF-SHA256,
// randomness and wiping, served by a backend chosen once per process on first use
// (docs/platforms.md#crypto-backends):
//   'node-openssl'    the OpenSSL the host process exports (Node does; Bun, Deno, Electron do not)
//   'system-openssl'  the system's libcrypto, loaded with dlopen (OpenSSL 3, then 1.1; not Windows)
//   'cng'             Windows CNG (bcrypt.dll), where the host exports no OpenSSL
// SEALED_SESSION_CRYPTO names one to force it. Nothing here links OpenSSL: every call goes
// through a table of function pointers resolved at selection, so the addon loads in any host.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sealed::crypto {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kDigestSize = 32;

// The backend in use ("node-openssl", "system-openssl", "cng"), selecting it on first call.
// Throws Error(code::kCryptoUnavailable) naming what is missing when there is none.
const char* BackendName();

// Why no backend could be selected (empty when one is in use). Never throws.
std::string Unavailable();

// Wipes memory with the backend's cleanse, or a volatile loop when there is no backend.
// Never throws, never selects a backend (a key can only exist once one was selected).
void Cleanse(void* p, size_t n) noexcept;

// Each of these throws Error(code::kCryptoUnavailable) without a backend and
// Error(code::kCrypto) when the backend fails.
void RandomBytes(uint8_t* out, size_t n);
void Sha256(const uint8_t* data, size_t len, uint8_t out[kDigestSize]);
void HmacSha256(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len, uint8_t out[kDigestSize]);
// HKDF-SHA256 (RFC 5869) with a 32-byte output.
void HkdfSha256(std::string_view ikm, std::string_view salt, std::string_view info, uint8_t out[kKeySize]);

// AES-256-GCM with the AAD fed in two parts (header, then context) so neither is copied.
struct Aad {
  const uint8_t* head;
  size_t head_len;
  std::string_view tail;
};
// ct receives pt_len bytes, tag 16.
void GcmSeal(const uint8_t key[kKeySize], const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* pt,
             size_t pt_len, uint8_t* ct, uint8_t tag[kTagSize]);

// A decryption context keyed once (the key schedule is reused across opens); only the nonce
// changes per open. Used by one thread at a time. Freeing wipes the key schedule.
class GcmOpener {
 public:
  // Throws like the functions above.
  explicit GcmOpener(const uint8_t key[kKeySize]);
  ~GcmOpener();
  GcmOpener(const GcmOpener&) = delete;
  GcmOpener& operator=(const GcmOpener&) = delete;

  enum class Result { kOk, kBadTag, kFailed };
  // pt receives ct_len bytes; on kBadTag or kFailed it is wiped. After kFailed the opener
  // is in an unknown state and must not be reused.
  Result Open(const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* ct, size_t ct_len,
              const uint8_t tag[kTagSize], uint8_t* pt);

 private:
  void* ctx_;
};

}  // namespace sealed::crypto
