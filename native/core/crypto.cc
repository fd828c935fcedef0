#include "crypto.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "crypto_backend.h"
#include "errors.h"

namespace sealed::crypto {

namespace {

struct Selection {
  std::unique_ptr<Backend> backend;
  std::string why;  // set when backend is null
};

// Published once selected, so Cleanse can use the backend without ever selecting one.
std::atomic<const Backend*> g_selected{nullptr};

// The platform's own backend when the host exports no OpenSSL.
std::unique_ptr<Backend> LoadPlatform(std::string* why) {
#ifdef _WIN32
  return LoadCng(why);
#else
  return LoadSystemOpenSsl(why);
#endif
}

Selection Select() {
  Selection s;
  const char* forced = std::getenv("SEALED_SESSION_CRYPTO");
  std::string want = forced != nullptr ? forced : "";
  std::string why_host, why_platform;
  if (want.empty()) {
    s.backend = LoadHostOpenSsl(&why_host);
    if (!s.backend) s.backend = LoadPlatform(&why_platform);
    if (!s.backend) s.why = "no crypto backend: " + why_platform + "; " + why_host;
    return s;
  }
  // Never another backend than the one asked for.
  std::string why;
  if (want == "node-openssl") {
    s.backend = LoadHostOpenSsl(&why);
  } else if (want == "system-openssl") {
    s.backend = LoadSystemOpenSsl(&why);
  } else if (want == "cng") {
    s.backend = LoadCng(&why);
  } else {
    s.why = "SEALED_SESSION_CRYPTO='" + want + "' is not a crypto backend (node-openssl, system-openssl, cng)";
    return s;
  }
  if (!s.backend) s.why = "SEALED_SESSION_CRYPTO=" + want + ", but " + why;
  return s;
}

// Never destroyed: key rings collected during process teardown still wipe through it.
const Selection& Selected() {
  static const Selection* const s = [] {
    auto* sel = new Selection(Select());
    g_selected.store(sel->backend.get(), std::memory_order_release);
    return sel;
  }();
  return *s;
}

const Backend& Get() {
  const Selection& s = Selected();
  if (!s.backend) throw Error(code::kCryptoUnavailable, s.why);
  return *s.backend;
}

[[noreturn]] void Fail(const char* what) { throw Error(code::kCrypto, what); }

}  // namespace

const char* BackendName() { return Get().Name(); }

std::string Unavailable() { return Selected().why; }

void Cleanse(void* p, size_t n) noexcept {
  if (p == nullptr || n == 0) return;
  const Backend* b = g_selected.load(std::memory_order_acquire);
  if (b != nullptr) {
    b->Cleanse(p, n);
    return;
  }
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < n; i++) v[i] = 0;
}

void RandomBytes(uint8_t* out, size_t n) {
  if (!Get().Random(out, n)) Fail("no randomness from the crypto backend");
}

void Sha256(const uint8_t* data, size_t len, uint8_t out[kDigestSize]) {
  if (!Get().Sha256(data, len, out)) Fail("SHA-256 failed");
}

void HmacSha256(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t msg_len, uint8_t out[kDigestSize]) {
  if (!Get().Hmac(key, key_len, msg, msg_len, out)) Fail("HMAC-SHA256 failed");
}

// RFC 5869 on the backend's HMAC, the same on every backend: PRK = HMAC(salt, IKM), and
// since the output is one hash long, OKM = T(1) = HMAC(PRK, info || 0x01).
void HkdfSha256(std::string_view ikm, std::string_view salt, std::string_view info, uint8_t out[kKeySize]) {
  static_assert(kKeySize == kDigestSize, "one HKDF block");
  const Backend& b = Get();
  uint8_t prk[kDigestSize];
  std::string block;
  block.reserve(info.size() + 1);
  block.append(info).push_back('\x01');
  bool ok = b.Hmac(reinterpret_cast<const uint8_t*>(salt.data()), salt.size(),
                   reinterpret_cast<const uint8_t*>(ikm.data()), ikm.size(), prk) &&
            b.Hmac(prk, sizeof prk, reinterpret_cast<const uint8_t*>(block.data()), block.size(), out);
  b.Cleanse(prk, sizeof prk);
  if (!ok) {
    b.Cleanse(out, kKeySize);
    Fail("HKDF-SHA256 key derivation failed");
  }
}

void GcmSeal(const uint8_t key[kKeySize], const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* pt,
             size_t pt_len, uint8_t* ct, uint8_t tag[kTagSize]) {
  if (!Get().Seal(key, nonce, aad, pt, pt_len, ct, tag)) Fail("AES-256-GCM encryption failed");
}

GcmOpener::GcmOpener(const uint8_t key[kKeySize]) : ctx_(Get().NewOpener(key)) {
  if (ctx_ == nullptr) Fail("AES-256-GCM decryption failed");
}

// A GcmOpener only exists once a backend was selected.
GcmOpener::~GcmOpener() { Selected().backend->FreeOpener(ctx_); }

GcmOpener::Result GcmOpener::Open(const uint8_t nonce[kNonceSize], const Aad& aad, const uint8_t* ct, size_t ct_len,
                                  const uint8_t tag[kTagSize], uint8_t* pt) {
  Result r = Selected().backend->Open(ctx_, nonce, aad, ct, ct_len, tag, pt);
  if (r != Result::kOk) Cleanse(pt, ct_len);
  return r;
}

}  // namespace sealed::crypto
