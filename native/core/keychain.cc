#include "keychain.h"

#include <cstring>

#include "crypto.h"
#include "errors.h"
#include "hex.h"

namespace sealed {

namespace {

constexpr const char* kOtherSources =
    "; use keySource 'machine' (the default, machine id only) or pass a secret (options.secret) instead";

[[noreturn]] void Unavailable(const std::string& why) {
  throw Error(code::kKeychainUnavailable, "the OS secret store cannot be used: " + why + kOtherSources);
}

// 64 hex chars -> 32 bytes; false on anything else.
[[maybe_unused]] bool FromHex(const char* hex, std::string* out) {
  if (strlen(hex) != 2 * kSeedSize) return false;
  out->assign(kSeedSize, '\0');
  for (size_t i = 0; i < 2 * kSeedSize; i++) {
    char c = hex[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) {
      crypto::Cleanse(out->data(), out->size());
      return false;
    }
    (*out)[i / 2] = static_cast<char>((*out)[i / 2] << 4 | v);
  }
  return true;
}

// A fresh seed as hex (what the store keeps: its APIs take text on Linux).
[[maybe_unused]] std::string NewSeedHex() {
  uint8_t seed[kSeedSize];
  crypto::RandomBytes(seed, sizeof seed);
  std::string hex = ToHex(seed, sizeof seed);
  crypto::Cleanse(seed, sizeof seed);
  return hex;
}

[[maybe_unused]] std::string Label(std::string_view app) { return "sealed-session key seed for " + std::string(app); }

}  // namespace

}  // namespace sealed

#if defined(__linux__)
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include "private_dir.h"

namespace sealed {
namespace {

// The parts of libsecret's and GLib's ABI we use, declared here because the addon is built
// without their headers (libsecret may be absent where the addon runs).
struct GError {
  uint32_t domain;
  int code;
  char* message;
};
struct SchemaAttribute {
  const char* name;
  int type;  // SECRET_SCHEMA_ATTRIBUTE_STRING = 0
};
struct SecretSchema {
  const char* name;
  int flags;  // SECRET_SCHEMA_NONE = 0
  SchemaAttribute attributes[32];
  int reserved;
  void* reserved1[7];
};

struct LibSecret {
  void* handle = nullptr;
  std::string load_error;
  void* (*service_get_sync)(int, void*, GError**) = nullptr;
  void* (*collection_for_alias_sync)(void*, const char*, int, void*, GError**) = nullptr;
  int (*collection_get_locked)(void*) = nullptr;
  char* (*password_lookup_sync)(const SecretSchema*, void*, GError**, ...) = nullptr;
  int (*password_store_sync)(const SecretSchema*, const char*, const char*, const char*, void*, GError**,
                             ...) = nullptr;
  void (*password_free)(char*) = nullptr;
  void (*error_free)(GError*) = nullptr;
  void (*object_unref)(void*) = nullptr;
};

template <typename T>
bool Sym(void* h, const char* name, T* out) {
  *out = reinterpret_cast<T>(dlsym(h, name));
  return *out != nullptr;
}

// Loaded once per process and kept: GLib cannot be unloaded safely.
const LibSecret& Lib() {
  static LibSecret lib;
  static std::once_flag once;
  std::call_once(once, [] {
    lib.handle = dlopen("libsecret-1.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle) {
      lib.load_error = "libsecret-1.so.0 could not be loaded (install libsecret-1-0)";
      return;
    }
    void* h = lib.handle;
    // g_error_free and g_object_unref come from GLib, which libsecret depends on: dlsym on
    // libsecret's handle searches its dependencies too.
    if (!(Sym(h, "secret_service_get_sync", &lib.service_get_sync) &&
          Sym(h, "secret_collection_for_alias_sync", &lib.collection_for_alias_sync) &&
          Sym(h, "secret_collection_get_locked", &lib.collection_get_locked) &&
          Sym(h, "secret_password_lookup_sync", &lib.password_lookup_sync) &&
          Sym(h, "secret_password_store_sync", &lib.password_store_sync) &&
          Sym(h, "secret_password_free", &lib.password_free) && Sym(h, "g_error_free", &lib.error_free) &&
          Sym(h, "g_object_unref", &lib.object_unref))) {
      lib.load_error = "libsecret-1.so.0 lacks a function sealed-session needs";
      lib.handle = nullptr;
    }
  });
  return lib;
}

const SecretSchema kSchema = {"org.sealed-session.KeySeed", 0, {{"app", 0}, {nullptr, 0}}, 0, {}};

// Test only (test/manager/keychain.test.ts): with SEALED_SESSION_TEST_SEED_GATE=<dir>, a process
// that found no seed says so (creates <dir>/arrived-<pid>) and waits until the test opens the
// FIFO <dir>/go for writing, so that several first runs reach the seed's creation at once.
void TestSeedGate() {
  const char* gate = getenv("SEALED_SESSION_TEST_SEED_GATE");
  if (!gate || !*gate) return;
  const std::string dir(gate);
  int fd = open((dir + "/arrived-" + std::to_string(getpid())).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
  fd = open((dir + "/go").c_str(), O_RDONLY | O_CLOEXEC);  // blocks until a writer opens the FIFO
  if (fd >= 0) close(fd);
}

std::string TakeError(const LibSecret& lib, GError* err, const char* fallback) {
  std::string msg = err && err->message ? err->message : fallback;
  if (err) lib.error_free(err);
  return msg;
}

// Without a session bus, GIO would try to autolaunch one (X11): refuse before calling in.
bool HasSessionBus() {
  const char* addr = getenv("DBUS_SESSION_BUS_ADDRESS");
  if (addr && *addr) return true;
  const char* runtime = getenv("XDG_RUNTIME_DIR");
  struct stat st;
  return runtime && *runtime && stat((std::string(runtime) + "/bus").c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Throws unless a Secret Service answers and its default collection exists and is unlocked
// (a locked one would make the lookup wait for an unlock prompt).
void CheckUnlocked(const LibSecret& lib) {
  if (!lib.handle) Unavailable(lib.load_error);
  if (!HasSessionBus()) Unavailable("there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)");
  GError* err = nullptr;
  void* service = lib.service_get_sync(0, nullptr, &err);
  if (!service) Unavailable("no Secret Service on the session bus (" + TakeError(lib, err, "no reply") + ")");
  void* coll = lib.collection_for_alias_sync(service, "default", 0, nullptr, &err);
  lib.object_unref(service);
  if (!coll) {
    if (err) Unavailable("the default keyring could not be opened (" + TakeError(lib, err, "") + ")");
    Unavailable("the Secret Service has no default keyring");
  }
  bool locked = lib.collection_get_locked(coll) != 0;
  lib.object_unref(coll);
  if (locked) Unavailable("the default keyring is locked (unlock it, e.g. by logging in to the desktop)");
}

// The seed of app as stored, in *seed; false when there is none.
bool LookupSeed(const LibSecret& lib, const std::string& app, std::string* seed) {
  GError* err = nullptr;
  char* found = lib.password_lookup_sync(&kSchema, nullptr, &err, "app", app.c_str(), nullptr);
  if (err) Unavailable("the seed could not be read (" + TakeError(lib, err, "") + ")");
  if (!found) return false;
  bool ok = FromHex(found, seed);
  lib.password_free(found);  // libsecret wipes it
  if (!ok) Unavailable("the keychain item '" + Label(app) + "' is not a seed of ours");
  return true;
}

// The Secret Service has no "store unless present": storing replaces. Two first runs that each
// found no seed would each store one, the second replacing the first, and the logins sealed
// with the first would be lost. So creation is one process at a time for this user: an
// exclusive flock, held from a second lookup to the store. The lock file is in a private
// directory of ours: $XDG_RUNTIME_DIR/.sealed-session-keychain (per user, where the session
// bus lives), else <TMPDIR or /tmp>/.sealed-session-keychain-<uid> (walked and checked as
// every private directory is: one planted by someone else is refused).
std::unique_ptr<FileLock> LockSeedCreation() {
  const char* runtime = getenv("XDG_RUNTIME_DIR");
  std::string dir;
  if (runtime && *runtime == '/') {
    dir = std::string(runtime) + "/.sealed-session-keychain";
  } else {
    const char* tmp = getenv("TMPDIR");
    dir = std::string(tmp && *tmp == '/' ? tmp : "/tmp") + "/.sealed-session-keychain-" + std::to_string(geteuid());
  }
  try {
    return PrivateDir(dir, true).Lock("seed");
  } catch (const Error& e) {
    Unavailable(std::string("the lock for creating the seed could not be taken (") + e.what() + ")");
  }
}

}  // namespace

std::string KeychainStatus() {
  try {
    CheckUnlocked(Lib());
    return "ok";
  } catch (const Error& e) {
    return e.what();
  }
}

std::string KeychainSeed(std::string_view app_view) {
  const LibSecret& lib = Lib();
  CheckUnlocked(lib);
  const std::string app(app_view);
  std::string seed;
  if (LookupSeed(lib, app, &seed)) return seed;
  TestSeedGate();
  std::unique_ptr<FileLock> creating = LockSeedCreation();
  if (LookupSeed(lib, app, &seed)) return seed;  // another process stored it meanwhile
  GError* err = nullptr;
  std::string hex = NewSeedHex();
  int stored = lib.password_store_sync(&kSchema, "default", Label(app).c_str(), hex.c_str(), nullptr, &err, "app",
                                       app.c_str(), nullptr);
  if (!stored || err) {
    crypto::Cleanse(hex.data(), hex.size());
    Unavailable("the seed could not be stored (" + TakeError(lib, err, "refused") + ")");
  }
  FromHex(hex.c_str(), &seed);
  crypto::Cleanse(hex.data(), hex.size());
  return seed;
}

}  // namespace sealed

#elif defined(__APPLE__)
// macOS: a generic password in the user's default (login) Keychain, service "sealed-session",
// account = the app name, holding the 32 raw seed bytes. Not built or run in our CI (Linux).
#include <CoreFoundation/CoreFoundation.h>
#include <Security/Security.h>

namespace sealed {
namespace {

CFMutableDictionaryRef Query(const std::string& app) {
  CFMutableDictionaryRef q =
      CFDictionaryCreateMutable(nullptr, 0, &kCFTypeDictionaryKeyCallBacks, &kCFTypeDictionaryValueCallBacks);
  CFStringRef service = CFStringCreateWithCString(nullptr, "sealed-session", kCFStringEncodingUTF8);
  CFStringRef account = CFStringCreateWithCString(nullptr, app.c_str(), kCFStringEncodingUTF8);
  CFDictionarySetValue(q, kSecClass, kSecClassGenericPassword);
  CFDictionarySetValue(q, kSecAttrService, service);
  CFDictionarySetValue(q, kSecAttrAccount, account);
  CFRelease(service);
  CFRelease(account);
  return q;
}

std::string StatusText(OSStatus st) {
  CFStringRef s = SecCopyErrorMessageString(st, nullptr);
  char buf[256] = "unknown error";
  if (s) {
    CFStringGetCString(s, buf, sizeof buf, kCFStringEncodingUTF8);
    CFRelease(s);
  }
  return std::string(buf) + " (OSStatus " + std::to_string(st) + ")";
}

}  // namespace

std::string KeychainStatus() {
  SecKeychainStatus status = 0;
  SecKeychainRef kc = nullptr;
  if (SecKeychainCopyDefault(&kc) != errSecSuccess || !kc)
    return "the OS secret store cannot be used: no default keychain";
  OSStatus st = SecKeychainGetStatus(kc, &status);
  CFRelease(kc);
  if (st != errSecSuccess) return "the OS secret store cannot be used: " + StatusText(st);
  if (!(status & kSecUnlockStateStatus)) return "the OS secret store cannot be used: the default keychain is locked";
  return "ok";
}

namespace {
// The stored seed of app in *seed (errSecSuccess), or why not (errSecItemNotFound: none).
OSStatus CopySeed(const std::string& app, std::string* seed) {
  // Never show a dialog: a locked or access-controlled item is an error, not a prompt.
  CFMutableDictionaryRef q = Query(app);
  CFDictionarySetValue(q, kSecReturnData, kCFBooleanTrue);
  CFDictionarySetValue(q, kSecMatchLimit, kSecMatchLimitOne);
  CFDictionarySetValue(q, kSecUseAuthenticationUI, kSecUseAuthenticationUIFail);
  CFTypeRef data = nullptr;
  OSStatus st = SecItemCopyMatching(q, &data);
  CFRelease(q);
  if (st != errSecSuccess) return st;
  CFDataRef d = static_cast<CFDataRef>(data);
  seed->assign(reinterpret_cast<const char*>(CFDataGetBytePtr(d)), static_cast<size_t>(CFDataGetLength(d)));
  CFRelease(data);
  if (seed->size() != kSeedSize) {
    crypto::Cleanse(seed->data(), seed->size());
    Unavailable("the keychain item '" + Label(app) + "' is not a seed of ours");
  }
  return st;
}
}  // namespace

std::string KeychainSeed(std::string_view app_view) {
  const std::string app(app_view);
  std::string status = KeychainStatus();
  if (status != "ok") throw Error(code::kKeychainUnavailable, status + kOtherSources);
  std::string seed;
  OSStatus st = CopySeed(app, &seed);
  if (st == errSecSuccess) return seed;
  if (st != errSecItemNotFound) Unavailable("the seed could not be read: " + StatusText(st));
  uint8_t fresh[kSeedSize];
  crypto::RandomBytes(fresh, sizeof fresh);
  CFMutableDictionaryRef add = Query(app);
  CFDataRef value = CFDataCreate(nullptr, fresh, sizeof fresh);
  CFStringRef label = CFStringCreateWithCString(nullptr, Label(app).c_str(), kCFStringEncodingUTF8);
  CFDictionarySetValue(add, kSecValueData, value);
  CFDictionarySetValue(add, kSecAttrLabel, label);
  CFDictionarySetValue(add, kSecAttrAccessible, kSecAttrAccessibleWhenUnlockedThisDeviceOnly);
  st = SecItemAdd(add, nullptr);
  CFRelease(add);
  CFRelease(value);
  CFRelease(label);
  std::string out(reinterpret_cast<const char*>(fresh), sizeof fresh);
  crypto::Cleanse(fresh, sizeof fresh);
  // SecItemAdd never replaces: it is the atomic "create unless present". Another process that
  // added its seed first wins, and this one uses that seed (it has sealed nothing with its own).
  if (st == errSecDuplicateItem) {
    crypto::Cleanse(out.data(), out.size());
    st = CopySeed(app, &seed);
    if (st != errSecSuccess) Unavailable("the seed could not be read: " + StatusText(st));
    return seed;
  }
  if (st != errSecSuccess) {
    crypto::Cleanse(out.data(), out.size());
    Unavailable("the seed could not be stored: " + StatusText(st));
  }
  return out;
}

}  // namespace sealed

#elif defined(_WIN32)
// Windows: a generic credential "sealed-session/<app>" in the user's Credential Manager
// (persisted for the local machine, never roamed), whose blob is the 32 raw seed bytes.
// Not built or run in our CI's Linux jobs; the mingw cross-build compiles it.
#include <windows.h>
#include <wincred.h>

namespace sealed {
namespace {
std::wstring Target(const std::string& app) {
  std::string t = "sealed-session/" + app;
  int n = MultiByteToWideChar(CP_UTF8, 0, t.c_str(), -1, nullptr, 0);
  std::wstring w(n > 0 ? n : 1, L'\0');
  if (n > 0) MultiByteToWideChar(CP_UTF8, 0, t.c_str(), -1, w.data(), n);
  return w;
}

// Two processes of one app creating the seed at once would each store their own, and the
// sessions of the one that wrote first would be sealed with a seed nobody keeps: read-or-create
// runs under a per-app named mutex (in this logon session's namespace).
class SeedMutex {
 public:
  explicit SeedMutex(const std::string& app) {
    std::string name = "Local\\sealed-session-seed/" + app;
    for (size_t i = 6; i < name.size(); i++) {
      if (name[i] == '\\') name[i] = '/';  // a backslash would name a namespace
    }
    int n = MultiByteToWideChar(CP_UTF8, 0, name.c_str(), -1, nullptr, 0);
    std::wstring w(n > 0 ? n : 1, L'\0');
    if (n > 0) MultiByteToWideChar(CP_UTF8, 0, name.c_str(), -1, w.data(), n);
    h_ = CreateMutexW(nullptr, FALSE, w.c_str());
    if (!h_) Unavailable("CreateMutexW failed (error " + std::to_string(GetLastError()) + ")");
    DWORD rc = WaitForSingleObject(h_, INFINITE);
    if (rc != WAIT_OBJECT_0 && rc != WAIT_ABANDONED) {  // abandoned: its holder died; ours now
      CloseHandle(h_);
      Unavailable("waiting for the seed mutex failed (error " + std::to_string(GetLastError()) + ")");
    }
  }
  ~SeedMutex() {
    ReleaseMutex(h_);
    CloseHandle(h_);
  }
  SeedMutex(const SeedMutex&) = delete;
  SeedMutex& operator=(const SeedMutex&) = delete;

 private:
  HANDLE h_ = nullptr;
};
}  // namespace

std::string KeychainStatus() { return "ok"; }  // the Credential Manager is always there for a logged-in user

std::string KeychainSeed(std::string_view app_view) {
  const std::string app(app_view);
  const std::wstring target = Target(app);
  SeedMutex one_at_a_time(app);
  PCREDENTIALW cred = nullptr;
  if (CredReadW(target.c_str(), CRED_TYPE_GENERIC, 0, &cred)) {
    std::string seed(reinterpret_cast<const char*>(cred->CredentialBlob), cred->CredentialBlobSize);
    SecureZeroMemory(cred->CredentialBlob, cred->CredentialBlobSize);
    CredFree(cred);
    if (seed.size() != kSeedSize) {
      crypto::Cleanse(seed.data(), seed.size());
      Unavailable("the credential 'sealed-session/" + app + "' is not a seed of ours");
    }
    return seed;
  }
  DWORD err = GetLastError();
  if (err != ERROR_NOT_FOUND) Unavailable("CredReadW failed (error " + std::to_string(err) + ")");
  uint8_t seed[kSeedSize];
  crypto::RandomBytes(seed, sizeof seed);
  CREDENTIALW c = {};
  c.Type = CRED_TYPE_GENERIC;
  c.TargetName = const_cast<LPWSTR>(target.c_str());
  c.CredentialBlobSize = sizeof seed;
  c.CredentialBlob = seed;
  c.Persist = CRED_PERSIST_LOCAL_MACHINE;
  BOOL ok = CredWriteW(&c, 0);
  err = GetLastError();
  std::string out(reinterpret_cast<const char*>(seed), sizeof seed);
  crypto::Cleanse(seed, sizeof seed);
  if (!ok) {
    crypto::Cleanse(out.data(), out.size());
    Unavailable("CredWriteW failed (error " + std::to_string(err) + ")");
  }
  return out;
}

}  // namespace sealed

#else
namespace sealed {
std::string KeychainStatus() {
  return "the OS secret store cannot be used: not supported on this platform" + std::string(kOtherSources);
}
std::string KeychainSeed(std::string_view) { Unavailable("not supported on this platform"); }
}  // namespace sealed
#endif
