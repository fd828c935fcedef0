// The Windows CNG backend ('cng'): bcrypt.dll, which every Windows since Vista has, for hosts
// that export no OpenSSL (Bun, Deno, Electron on Windows). AES-256-GCM, SHA-256 and HMAC come
// from CNG's own primitives; nothing is implemented here.
#include <memory>
#include <string>

#include "crypto_backend.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
// windows.h first: bcrypt.h needs its types.
#include <bcrypt.h>

#include <climits>
#include <cstring>

namespace sealed::crypto {

namespace {

constexpr NTSTATUS kAuthTagMismatch = static_cast<NTSTATUS>(0xC000A002L);  // STATUS_AUTH_TAG_MISMATCH

bool Ok(NTSTATUS s) { return s >= 0; }

class Cng final : public Backend {
 public:
  ~Cng() override {
    if (aes_ != nullptr) BCryptCloseAlgorithmProvider(aes_, 0);
    if (sha_ != nullptr) BCryptCloseAlgorithmProvider(sha_, 0);
    if (hmac_ != nullptr) BCryptCloseAlgorithmProvider(hmac_, 0);
  }

  bool Init(std::string* why) {
    if (!Ok(BCryptOpenAlgorithmProvider(&aes_, BCRYPT_AES_ALGORITHM, nullptr, 0)) ||
        !Ok(BCryptSetProperty(aes_, BCRYPT_CHAINING_MODE,
                              reinterpret_cast<PUCHAR>(const_cast<wchar_t*>(BCRYPT_CHAIN_MODE_GCM)),
                              sizeof(BCRYPT_CHAIN_MODE_GCM), 0))) {
      *why = "CNG has no AES-GCM";
      return false;
    }
    if (!Ok(BCryptOpenAlgorithmProvider(&sha_, BCRYPT_SHA256_ALGORITHM, nullptr, 0)) ||
        !Ok(BCryptOpenAlgorithmProvider(&hmac_, BCRYPT_SHA256_ALGORITHM, nullptr, BCRYPT_ALG_HANDLE_HMAC_FLAG))) {
      *why = "CNG has no SHA-256";
      return false;
    }
    return true;
  }

  const char* Name() const override { return "cng"; }
  void Cleanse(void* p, size_t n) const noexcept override { SecureZeroMemory(p, n); }
  bool Random(uint8_t* out, size_t n) const override {
    return n <= ULONG_MAX && Ok(BCryptGenRandom(nullptr, out, static_cast<ULONG>(n), BCRYPT_USE_SYSTEM_PREFERRED_RNG));
  }
  bool Sha256(const uint8_t* data, size_t len, uint8_t out[kDigestSize]) const override {
    return Digest(sha_, nullptr, 0, data, len, out);
  }
  bool Hmac(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len,
            uint8_t out[kDigestSize]) const override {
    return Digest(hmac_, key, key_len, msg, msg_len, out);
  }

  bool Seal(const uint8_t key[kKeySize], const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* pt,
            size_t pt_len, uint8_t* ct, uint8_t tag[kTagSize]) const override {
    void* k = NewOpener(key);
    if (k == nullptr) return false;
    bool ok = Crypt(k, true, nonce, aad, pt, pt_len, ct, tag) == GcmOpener::Result::kOk;
    FreeOpener(k);
    return ok;
  }

  void* NewOpener(const uint8_t key[kKeySize]) const override {
    BCRYPT_KEY_HANDLE k = nullptr;
    // CNG allocates and wipes the key object itself.
    if (!Ok(BCryptGenerateSymmetricKey(aes_, &k, nullptr, 0, const_cast<PUCHAR>(key), kKeySize, 0))) return nullptr;
    return k;
  }
  void FreeOpener(void* k) const noexcept override { BCryptDestroyKey(static_cast<BCRYPT_KEY_HANDLE>(k)); }

  GcmOpener::Result Open(void* k, const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* ct, size_t ct_len,
                         const uint8_t tag[kTagSize], uint8_t* pt) const override {
    return Crypt(k, false, nonce, aad, ct, ct_len, pt, const_cast<uint8_t*>(tag));
  }

 private:
  bool Digest(BCRYPT_ALG_HANDLE alg, const uint8_t* key, size_t key_len, const uint8_t* data, size_t len,
              uint8_t out[kDigestSize]) const {
    if (key_len > ULONG_MAX || len > ULONG_MAX) return false;
    BCRYPT_HASH_HANDLE h = nullptr;
    static UCHAR empty = 0;
    bool ok = Ok(BCryptCreateHash(alg, &h, nullptr, 0, key_len == 0 ? nullptr : const_cast<PUCHAR>(key),
                                  static_cast<ULONG>(key_len), 0)) &&
              Ok(BCryptHashData(h, len == 0 ? &empty : const_cast<PUCHAR>(data), static_cast<ULONG>(len), 0)) &&
              Ok(BCryptFinishHash(h, out, kDigestSize, 0));
    if (h != nullptr) BCryptDestroyHash(h);
    return ok;
  }

  // One GCM call; the AAD is the header and context joined (CNG takes it in one piece).
  GcmOpener::Result Crypt(void* k, bool encrypt, const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* in,
                          size_t len, uint8_t* out, uint8_t* tag) const {
    if (len > ULONG_MAX || aad.head_len + aad.tail.size() > ULONG_MAX) return GcmOpener::Result::kFailed;
    std::string joined(reinterpret_cast<const char*>(aad.head), aad.head_len);
    joined.append(aad.tail);
    BCRYPT_AUTHENTICATED_CIPHER_MODE_INFO info;
    BCRYPT_INIT_AUTH_MODE_INFO(info);
    info.pbNonce = const_cast<PUCHAR>(nonce);
    info.cbNonce = kNonceSize;
    info.pbAuthData = reinterpret_cast<PUCHAR>(joined.data());
    info.cbAuthData = static_cast<ULONG>(joined.size());
    info.pbTag = tag;
    info.cbTag = kTagSize;
    static UCHAR empty = 0;
    ULONG written = 0;
    auto key = static_cast<BCRYPT_KEY_HANDLE>(k);
    PUCHAR src = len == 0 ? &empty : const_cast<PUCHAR>(in);
    PUCHAR dst = len == 0 ? &empty : out;
    NTSTATUS s = encrypt ? BCryptEncrypt(key, src, static_cast<ULONG>(len), &info, nullptr, 0, dst,
                                         static_cast<ULONG>(len), &written, 0)
                         : BCryptDecrypt(key, src, static_cast<ULONG>(len), &info, nullptr, 0, dst,
                                         static_cast<ULONG>(len), &written, 0);
    if (s == kAuthTagMismatch) return GcmOpener::Result::kBadTag;
    return Ok(s) && written == len ? GcmOpener::Result::kOk : GcmOpener::Result::kFailed;
  }

  BCRYPT_ALG_HANDLE aes_ = nullptr;
  BCRYPT_ALG_HANDLE sha_ = nullptr;
  BCRYPT_ALG_HANDLE hmac_ = nullptr;
};

}  // namespace

std::unique_ptr<Backend> LoadCng(std::string* why) {
  auto cng = std::make_unique<Cng>();
  if (!cng->Init(why)) return nullptr;
  return cng;
}

}  // namespace sealed::crypto

#else

namespace sealed::crypto {

std::unique_ptr<Backend> LoadCng(std::string* why) {
  *why = "CNG is only on Windows";
  return nullptr;
}

}  // namespace sealed::crypto

#endif
