// What a crypto backend provides (crypto.cc selects one and builds HKDF on its HMAC).
// Every method returns false (or null) on failure and never throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto.h"

namespace sealed::crypto {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* Name() const = 0;
  virtual void Cleanse(void* p, size_t n) const noexcept = 0;
  virtual bool Random(uint8_t* out, size_t n) const = 0;
  virtual bool Sha256(const uint8_t* data, size_t len, uint8_t out[kDigestSize]) const = 0;
  virtual bool Hmac(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len,
                    uint8_t out[kDigestSize]) const = 0;
  virtual bool Seal(const uint8_t key[kKeySize], const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* pt,
                    size_t pt_len, uint8_t* ct, uint8_t tag[kTagSize]) const = 0;
  // A decryption context keyed with key, or null.
  virtual void* NewOpener(const uint8_t key[kKeySize]) const = 0;
  virtual void FreeOpener(void* ctx) const noexcept = 0;
  virtual GcmOpener::Result Open(void* ctx, const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* ct,
                                 size_t ct_len, const uint8_t tag[kTagSize], uint8_t* pt) const = 0;
};

// The OpenSSL the host process exports ('node-openssl'), or null with *why set.
std::unique_ptr<Backend> LoadHostOpenSsl(std::string* why);
// The system's libcrypto loaded at run time ('system-openssl'), or null with *why set.
std::unique_ptr<Backend> LoadSystemOpenSsl(std::string* why);
// Windows CNG, bcrypt.dll ('cng'), or null with *why set (always, off Windows).
std::unique_ptr<Backend> LoadCng(std::string* why);

}  // namespace sealed::crypto
