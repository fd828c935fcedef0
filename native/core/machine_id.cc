#include "machine_id.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

#include "errors.h"

#if defined(__APPLE__)
#include <CoreFoundation/CoreFoundation.h>
#include <IOKit/IOKitLib.h>
#include <sys/sysctl.h>
#include <unistd.h>
#elif defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <sddl.h>
#elif defined(__FreeBSD__)
#include <sys/types.h>
#include <sys/sysctl.h>
#include <unistd.h>
#else
#include <unistd.h>
#endif

namespace sealed {

namespace {
constexpr const char* kFix =
    "no machine id on this system: pass a `secret` (32+ characters) or mount /etc/machine-id "
    "(for example `systemd-machine-id-setup`, or `-v /etc/machine-id:/etc/machine-id:ro` in a container)";

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) b++;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) e--;
  return s.substr(b, e - b);
}

[[maybe_unused]] bool ReadSmallFile(const char* path, std::string* out) {
  std::ifstream f(path, std::ios::in | std::ios::binary);
  if (!f) return false;
  char buf[256];
  f.read(buf, sizeof buf);
  out->assign(buf, static_cast<size_t>(f.gcount()));
  return true;
}
}  // namespace

bool NormalizeLinuxMachineId(const std::string& raw, std::string* out) {
  std::string t = Trim(raw);
  if (t.size() != 32) return false;
  for (char c : t) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  *out = t;
  return true;
}

#if defined(__APPLE__)

std::string ReadMachineId() {
  std::string id;
  io_service_t dev = IOServiceGetMatchingService(kIOMainPortDefault, IOServiceMatching("IOPlatformExpertDevice"));
  if (dev) {
    CFTypeRef uuid = IORegistryEntryCreateCFProperty(dev, CFSTR("IOPlatformUUID"), kCFAllocatorDefault, 0);
    if (uuid && CFGetTypeID(uuid) == CFStringGetTypeID()) {
      char buf[128];
      if (CFStringGetCString(static_cast<CFStringRef>(uuid), buf, sizeof buf, kCFStringEncodingASCII)) id = Trim(buf);
    }
    if (uuid) CFRelease(uuid);
    IOObjectRelease(dev);
  }
  if (id.empty()) throw Error(code::kMachineId, kFix);
  return id;
}

std::string ReadBootId() {
  char buf[128];
  size_t len = sizeof buf;
  if (sysctlbyname("kern.bootsessionuuid", buf, &len, nullptr, 0) != 0 || len == 0)
    throw Error(code::kMachineId, "bindToBoot: kern.bootsessionuuid is not available");
  return Trim(std::string(buf, strnlen(buf, len)));
}

std::string CurrentUid() { return std::to_string(geteuid()); }

#elif defined(_WIN32)

std::string ReadMachineId() {
  char buf[128];
  DWORD len = sizeof buf;
  // The 64-bit view: a 32-bit process would otherwise read a redirected, possibly absent key.
  LSTATUS rc = RegGetValueA(HKEY_LOCAL_MACHINE, "SOFTWARE\\Microsoft\\Cryptography", "MachineGuid",
                            RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY, nullptr, buf, &len);
  if (rc != ERROR_SUCCESS || len <= 1) throw Error(code::kMachineId, kFix);
  std::string id = Trim(std::string(buf, strnlen(buf, len)));
  if (id.empty()) throw Error(code::kMachineId, kFix);
  return id;
}

std::string ReadBootId() { throw Error(code::kMachineId, "bindToBoot is not supported on Windows"); }

std::string CurrentUid() {
  HANDLE token = nullptr;
  std::string sid;
  if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    DWORD size = 0;
    GetTokenInformation(token, TokenUser, nullptr, 0, &size);
    std::string buf(size, '\0');
    if (size && GetTokenInformation(token, TokenUser, buf.data(), size, &size)) {
      LPSTR str = nullptr;
      if (ConvertSidToStringSidA(reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid, &str)) {
        sid = str;
        LocalFree(str);
      }
    }
    CloseHandle(token);
  }
  if (sid.empty()) throw Error(code::kMachineId, "cannot read the current user's SID");
  return sid;
}

#elif defined(__FreeBSD__)

std::string ReadMachineId() {
  char buf[128];
  size_t len = sizeof buf;
  if (sysctlbyname("kern.hostuuid", buf, &len, nullptr, 0) != 0 || len == 0) throw Error(code::kMachineId, kFix);
  std::string id = Trim(std::string(buf, strnlen(buf, len)));
  if (id.empty()) throw Error(code::kMachineId, kFix);
  return id;
}

std::string ReadBootId() { throw Error(code::kMachineId, "bindToBoot is not supported on FreeBSD"); }

std::string CurrentUid() { return std::to_string(geteuid()); }

#else  // Linux and other systemd-style systems

std::string ReadMachineId() {
  // An empty or "uninitialized" /etc/machine-id (first boot, minimal images) falls through.
  for (const char* path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
    std::string raw, id;
    if (ReadSmallFile(path, &raw) && NormalizeLinuxMachineId(raw, &id)) return id;
  }
  throw Error(code::kMachineId, kFix);
}

std::string ReadBootId() {
  std::string raw;
  if (!ReadSmallFile("/proc/sys/kernel/random/boot_id", &raw) || Trim(raw).empty())
    throw Error(code::kMachineId, "bindToBoot: /proc/sys/kernel/random/boot_id is not readable");
  return Trim(raw);
}

std::string CurrentUid() { return std::to_string(geteuid()); }

#endif

}  // namespace sealed
