// The OpenSSL backends: the same calls through a table of function pointers, resolved either
// from the host process (Node exports its OpenSSL to addons) or from the system's libcrypto
// opened with dlopen. No OpenSSL header is included and no OpenSSL symbol is linked, so the
// addon loads in hosts that export none (Bun, Deno, Electron). Only calls that exist with the
// same signature in OpenSSL 1.1.1 and 3.x are used; EVP_CIPHER_fetch (3.x) is optional.
#include <climits>
#include <cstring>
#include <string>

#include "crypto_backend.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace sealed::crypto {

namespace {

// Opaque OpenSSL types and the constants used (stable across 1.1.1 and 3.x).
struct EVP_CIPHER;
struct EVP_CIPHER_CTX;
struct EVP_MD;
struct ENGINE;
constexpr int kCtrlGcmGetTag = 0x10;                 // EVP_CTRL_AEAD_GET_TAG
constexpr int kCtrlGcmSetTag = 0x11;                 // EVP_CTRL_AEAD_SET_TAG
constexpr unsigned long kMinVersion = 0x10101000UL;  // 1.1.1

struct Api {
  unsigned long (*OpenSSL_version_num)();
  void (*OPENSSL_cleanse)(void*, size_t);
  int (*RAND_bytes)(unsigned char*, int);
  const EVP_MD* (*EVP_sha256)();
  int (*EVP_Digest)(const void*, size_t, unsigned char*, unsigned int*, const EVP_MD*, ENGINE*);
  unsigned char* (*HMAC)(const EVP_MD*, const void*, int, const unsigned char*, size_t, unsigned char*, unsigned int*);
  const EVP_CIPHER* (*EVP_aes_256_gcm)();
  EVP_CIPHER_CTX* (*EVP_CIPHER_CTX_new)();
  void (*EVP_CIPHER_CTX_free)(EVP_CIPHER_CTX*);
  int (*EVP_CIPHER_CTX_ctrl)(EVP_CIPHER_CTX*, int, int, void*);
  int (*EVP_EncryptInit_ex)(EVP_CIPHER_CTX*, const EVP_CIPHER*, ENGINE*, const unsigned char*, const unsigned char*);
  int (*EVP_EncryptUpdate)(EVP_CIPHER_CTX*, unsigned char*, int*, const unsigned char*, int);
  int (*EVP_EncryptFinal_ex)(EVP_CIPHER_CTX*, unsigned char*, int*);
  int (*EVP_DecryptInit_ex)(EVP_CIPHER_CTX*, const EVP_CIPHER*, ENGINE*, const unsigned char*, const unsigned char*);
  int (*EVP_DecryptUpdate)(EVP_CIPHER_CTX*, unsigned char*, int*, const unsigned char*, int);
  int (*EVP_DecryptFinal_ex)(EVP_CIPHER_CTX*, unsigned char*, int*);
  // Optional (3.x): a cipher fetched once instead of an implicit fetch on every init.
  EVP_CIPHER* (*EVP_CIPHER_fetch)(void*, const char*, const char*);
};

// Resolves a name in one place: the host process or a library handle.
class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual void* Find(const char* name) const = 0;
};

// Fills the table; false with *why naming the first missing symbol. With same_object, every
// symbol must come from the one object that defines the first (never a mix of two OpenSSLs).
template <typename T>
bool Bind(const Resolver& r, const char* name, T* slot, std::string* why) {
  void* p = r.Find(name);
  if (p == nullptr) {
    *why = std::string("no ") + name;
    return false;
  }
  static_assert(sizeof(T) == sizeof(void*), "function pointers are data-pointer sized here");
  memcpy(slot, &p, sizeof p);
  return true;
}

bool BindAll(const Resolver& r, Api* a, std::string* why) {
#define SEALED_BIND(fn) \
  if (!Bind(r, #fn, &a->fn, why)) return false;
  SEALED_BIND(OpenSSL_version_num)
  SEALED_BIND(OPENSSL_cleanse)
  SEALED_BIND(RAND_bytes)
  SEALED_BIND(EVP_sha256)
  SEALED_BIND(EVP_Digest)
  SEALED_BIND(HMAC)
  SEALED_BIND(EVP_aes_256_gcm)
  SEALED_BIND(EVP_CIPHER_CTX_new)
  SEALED_BIND(EVP_CIPHER_CTX_free)
  SEALED_BIND(EVP_CIPHER_CTX_ctrl)
  SEALED_BIND(EVP_EncryptInit_ex)
  SEALED_BIND(EVP_EncryptUpdate)
  SEALED_BIND(EVP_EncryptFinal_ex)
  SEALED_BIND(EVP_DecryptInit_ex)
  SEALED_BIND(EVP_DecryptUpdate)
  SEALED_BIND(EVP_DecryptFinal_ex)
#undef SEALED_BIND
  std::string ignored;
  if (!Bind(r, "EVP_CIPHER_fetch", &a->EVP_CIPHER_fetch, &ignored)) a->EVP_CIPHER_fetch = nullptr;
  unsigned long v = a->OpenSSL_version_num();
  if (v < kMinVersion) {
    *why = "OpenSSL older than 1.1.1";
    return false;
  }
  return true;
}

class OpenSsl final : public Backend {
 public:
  OpenSsl(const char* name, const Api& api) : name_(name), api_(api) {
    cipher_ = api_.EVP_CIPHER_fetch != nullptr ? api_.EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr) : nullptr;
    if (cipher_ == nullptr) cipher_ = api_.EVP_aes_256_gcm();
  }
  const char* Name() const override { return name_; }
  void Cleanse(void* p, size_t n) const noexcept override { api_.OPENSSL_cleanse(p, n); }
  bool Random(uint8_t* out, size_t n) const override {
    return n <= static_cast<size_t>(INT_MAX) && api_.RAND_bytes(out, static_cast<int>(n)) == 1;
  }
  bool Sha256(const uint8_t* data, size_t len, uint8_t out[kDigestSize]) const override {
    unsigned char md[64];  // EVP_MAX_MD_SIZE
    unsigned int md_len = 0;
    bool ok = api_.EVP_Digest(data, len, md, &md_len, api_.EVP_sha256(), nullptr) == 1 && md_len == kDigestSize;
    if (ok) memcpy(out, md, kDigestSize);
    return ok;
  }
  bool Hmac(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len,
            uint8_t out[kDigestSize]) const override {
    if (key_len > static_cast<size_t>(INT_MAX)) return false;
    // HMAC() takes a non-null data pointer even for an empty message.
    static const uint8_t kEmpty = 0;
    unsigned int out_len = 0;
    return api_.HMAC(api_.EVP_sha256(), key, static_cast<int>(key_len), msg_len == 0 ? &kEmpty : msg, msg_len, out,
                     &out_len) != nullptr &&
           out_len == kDigestSize;
  }

  bool Seal(const uint8_t key[kKeySize], const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* pt,
            size_t pt_len, uint8_t* ct, uint8_t tag[kTagSize]) const override {
    if (pt_len > static_cast<size_t>(INT_MAX)) return false;
    EVP_CIPHER_CTX* ctx = api_.EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = ctx != nullptr && api_.EVP_EncryptInit_ex(ctx, cipher_, nullptr, key, nonce) == 1 &&
              FeedAad(ctx, aad, true) &&
              (pt_len == 0 || api_.EVP_EncryptUpdate(ctx, ct, &len, pt, static_cast<int>(pt_len)) == 1) &&
              api_.EVP_EncryptFinal_ex(ctx, ct + pt_len, &len) == 1 &&
              api_.EVP_CIPHER_CTX_ctrl(ctx, kCtrlGcmGetTag, static_cast<int>(kTagSize), tag) == 1;
    // Freeing the context wipes its key schedule.
    if (ctx != nullptr) api_.EVP_CIPHER_CTX_free(ctx);
    return ok;
  }

  void* NewOpener(const uint8_t key[kKeySize]) const override {
    EVP_CIPHER_CTX* ctx = api_.EVP_CIPHER_CTX_new();
    if (ctx == nullptr) return nullptr;
    if (api_.EVP_DecryptInit_ex(ctx, cipher_, nullptr, key, nullptr) != 1) {
      api_.EVP_CIPHER_CTX_free(ctx);
      return nullptr;
    }
    return ctx;
  }
  void FreeOpener(void* ctx) const noexcept override { api_.EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx)); }

  GcmOpener::Result Open(void* opener, const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* ct,
                         size_t ct_len, const uint8_t tag[kTagSize], uint8_t* pt) const override {
    if (ct_len > static_cast<size_t>(INT_MAX)) return GcmOpener::Result::kFailed;
    auto* ctx = static_cast<EVP_CIPHER_CTX*>(opener);
    int len = 0;
    // The tag is set before Final; OpenSSL only reads it, the cast drops a const it does not need.
    bool ok = api_.EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) == 1 && FeedAad(ctx, aad, false) &&
              (ct_len == 0 || api_.EVP_DecryptUpdate(ctx, pt, &len, ct, static_cast<int>(ct_len)) == 1) &&
              api_.EVP_CIPHER_CTX_ctrl(ctx, kCtrlGcmSetTag, static_cast<int>(kTagSize), const_cast<uint8_t*>(tag)) == 1;
    if (!ok) return GcmOpener::Result::kFailed;
    return api_.EVP_DecryptFinal_ex(ctx, pt + ct_len, &len) == 1 ? GcmOpener::Result::kOk : GcmOpener::Result::kBadTag;
  }

 private:
  bool FeedAad(EVP_CIPHER_CTX* ctx, const Aad& aad, bool encrypt) const {
    if (aad.head_len > static_cast<size_t>(INT_MAX) || aad.tail.size() > static_cast<size_t>(INT_MAX)) return false;
    auto update = encrypt ? api_.EVP_EncryptUpdate : api_.EVP_DecryptUpdate;
    int len = 0;
    if (aad.head_len != 0 && update(ctx, nullptr, &len, aad.head, static_cast<int>(aad.head_len)) != 1) return false;
    if (!aad.tail.empty() && update(ctx, nullptr, &len, reinterpret_cast<const uint8_t*>(aad.tail.data()),
                                    static_cast<int>(aad.tail.size())) != 1)
      return false;
    return true;
  }

  const char* name_;
  Api api_;
  // Lives for the process, like the provider (or library) that owns it.
  const EVP_CIPHER* cipher_ = nullptr;
};

#ifdef _WIN32
// node.exe exports its OpenSSL like the Linux and macOS binaries do.
class HostResolver final : public Resolver {
 public:
  void* Find(const char* name) const override {
    return reinterpret_cast<void*>(GetProcAddress(GetModuleHandleW(nullptr), name));
  }
};
#else
class HostResolver final : public Resolver {
 public:
  // Every symbol must come from the object that defines the first one looked up: a host that
  // exports part of some other OpenSSL (or a library loaded globally by someone else) is not
  // mixed with another.
  void* Find(const char* name) const override {
    void* p = dlsym(RTLD_DEFAULT, name);
    if (p == nullptr) return nullptr;
    Dl_info info;
    if (dladdr(p, &info) == 0) return nullptr;
    if (base_ == nullptr) base_ = info.dli_fbase;
    return info.dli_fbase == base_ ? p : nullptr;
  }

 private:
  mutable void* base_ = nullptr;
};

class LibraryResolver final : public Resolver {
 public:
  explicit LibraryResolver(void* handle) : handle_(handle) {}
  void* Find(const char* name) const override { return dlsym(handle_, name); }

 private:
  void* handle_;
};
#endif

}  // namespace

std::unique_ptr<Backend> LoadHostOpenSsl(std::string* why) {
  HostResolver r;
  Api api{};
  std::string missing;
  if (!BindAll(r, &api, &missing)) {
    *why = "the host process exports no usable OpenSSL (" + missing + ")";
    return nullptr;
  }
  return std::make_unique<OpenSsl>("node-openssl", api);
}

std::unique_ptr<Backend> LoadSystemOpenSsl(std::string* why) {
#ifdef _WIN32
  *why = "there is no system OpenSSL on Windows";
  return nullptr;
#else
  // Versioned names only: an unversioned libcrypto may be another ABI (on macOS, loading
  // /usr/lib/libcrypto.dylib aborts the process).
#ifdef __APPLE__
  static const char* const kNames[] = {"/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
                                       "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
                                       "/opt/local/lib/libcrypto.3.dylib", "libcrypto.3.dylib"};
  const char* hint = "install OpenSSL 3 (brew install openssl@3)";
#else
  static const char* const kNames[] = {"libcrypto.so.3", "libcrypto.so.1.1"};
  const char* hint = "install libssl3 (Debian, Ubuntu) or openssl-libs (Fedora, RHEL)";
#endif
  std::string tried;
  for (const char* name : kNames) {
    // RTLD_LOCAL: our copy never satisfies symbols of other libraries in the process.
    void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = dlerror();
      if (!tried.empty()) tried += "; ";
      tried += err != nullptr ? err : name;
      continue;
    }
    LibraryResolver r(handle);
    Api api{};
    std::string missing;
    if (BindAll(r, &api, &missing)) return std::make_unique<OpenSsl>("system-openssl", api);
    // Kept open: unloading a libcrypto that ran its initialisers is not safe.
    if (!tried.empty()) tried += "; ";
    tried += std::string(name) + ": " + missing;
  }
  *why = std::string(kNames[0]) + " not found or not loadable: " + hint + " (" + tried + ")";
  return nullptr;
#endif
}

}  // namespace sealed::crypto
