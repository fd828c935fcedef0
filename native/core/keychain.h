// keySource 'keychain': a random 32-byte seed created once per app and kept in the OS secret
// store (Linux: the Secret Service over D-Bus through libsecret, loaded with dlopen at run
// time so the addon has no link-time dependency on it; macOS: the login Keychain; Windows:
// the Credential Manager). The seed only ever lives in native memory, wiped after use.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sealed {

namespace code {
inline constexpr const char* kKeychainUnavailable = "ERR_KEYCHAIN_UNAVAILABLE";
}

inline constexpr size_t kSeedSize = 32;

// The app's seed (32 raw bytes), created and stored on first use. Throws
// Error(kKeychainUnavailable) naming the other key sources when there is no secret store, it
// is locked, or the stored item is not a seed of ours. The caller wipes the result.
std::string KeychainSeed(std::string_view app);

// "ok", or why the secret store cannot be used; never creates or reads a seed.
std::string KeychainStatus();

}  // namespace sealed
