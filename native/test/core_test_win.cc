// The native core's own tests on Windows (core_test.cc is the POSIX set): the known-answer
// vectors, machine id and SID, the security descriptors we create (SDDL), and the private-file
// layer of private_dir_win.cc. Built with mingw-w64 as a Node-API module, so it runs with the
// OpenSSL node.exe exports, exactly as the addon does:
//   node -e "process.exitCode = require('./core_test.node').run(vectorsPath, filter)"
// (scripts/platform-tests.mjs win32-x64 builds and runs it under wine).
#ifndef NOMINMAX
#define NOMINMAX
#endif
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
// windows.h first.
#include <node_api.h>
#include <sddl.h>
#include <wincred.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "envelope.h"
#include "errors.h"
#include "keychain.h"
#include "keys.h"
#include "machine_id.h"
#include "private_dir.h"
#include "private_dir_win.h"
#include "vectors.h"

using namespace sealed;
using Bytes = std::vector<uint8_t>;
using vectors::FromHex;
using vectors::Json;

namespace {

std::string g_vectors_path;

const Json& V() {
  static Json root = vectors::Load(g_vectors_path);
  return root;
}

std::string Hex(const Bytes& b) { return check::Hex(b.data(), b.size()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
constexpr const char* kCtx = "store:default:test";

std::unique_ptr<KeyRing> RingFor(const Json& kv) {
  return std::make_unique<KeyRing>(std::vector<std::string>{kv["ikm"].S()}, kv["scope"].S(), kv["name"].S(),
                                   kv["uid"].S(), kv["bootId"].S());
}
std::unique_ptr<KeyRing> StoreRing() { return RingFor(V()["keys"].arr[2]); }

std::wstring W(const std::string& s) {
  std::wstring w(s.size(), L'\0');
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), static_cast<int>(w.size()));
  w.resize(n > 0 ? n : 0);
  return w;
}

// A fresh directory under the user's temp directory, removed (recursively) at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char base[MAX_PATH];
    GetTempPathA(MAX_PATH, base);
    char rnd[32];
    snprintf(rnd, sizeof rnd, "sealed-core-test-%lu-%lu", GetCurrentProcessId(), GetTickCount());
    static int counter = 0;
    path = std::string(base) + rnd + "-" + std::to_string(counter++);
    CreateDirectoryA(path.c_str(), nullptr);
  }
  ~TempDir() { RemoveTree(path); }
  static void RemoveTree(const std::string& dir) {
    WIN32_FIND_DATAA fd;
    HANDLE h = FindFirstFileA((dir + "\\*").c_str(), &fd);
    if (h != INVALID_HANDLE_VALUE) {
      do {
        std::string n = fd.cFileName;
        if (n == "." || n == "..") continue;
        std::string p = dir + "\\" + n;
        if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) && !(fd.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT))
          RemoveTree(p);
        else if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) RemoveDirectoryA(p.c_str());
        else DeleteFileA(p.c_str());
      } while (FindNextFileA(h, &fd));
      FindClose(h);
    }
    RemoveDirectoryA(dir.c_str());
  }
  std::string operator/(const std::string& name) const { return path + "\\" + name; }
};

std::vector<std::string> RawNames(const std::string& dir) {
  std::vector<std::string> names;
  WIN32_FIND_DATAA fd;
  HANDLE h = FindFirstFileA((dir + "\\*").c_str(), &fd);
  if (h == INVALID_HANDLE_VALUE) return names;
  do {
    std::string n = fd.cFileName;
    if (n != "." && n != "..") names.push_back(n);
  } while (FindNextFileA(h, &fd));
  FindClose(h);
  std::sort(names.begin(), names.end());
  return names;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

bool Exists(const std::string& p) { return GetFileAttributesA(p.c_str()) != INVALID_FILE_ATTRIBUTES; }

std::string ReadRaw(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return "<missing>";
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  fclose(f);
  return s;
}

void WriteRaw(const std::string& path, const std::string& data) {
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("fopen " + path);
  fwrite(data.data(), 1, data.size(), f);
  fclose(f);
}

// A directory created with the security descriptor given in SDDL; false if Windows refused.
bool MakeDirWithSddl(const std::string& path, const std::string& sddl) {
  PSECURITY_DESCRIPTOR sd = nullptr;
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(W(sddl).c_str(), SDDL_REVISION_1, &sd, nullptr))
    return false;
  SECURITY_ATTRIBUTES sa{sizeof sa, sd, FALSE};
  BOOL ok = CreateDirectoryW(W(path).c_str(), &sa);
  LocalFree(sd);
  return ok != 0;
}

// Stands in for a live writer: a handle on its temp file holding the lock a writer holds
// (private_dir_win.cc's LockTempRange: one byte at offset 0x7FFFFFFF00000000). Close to release.
HANDLE HoldTempLock(const std::string& path) {
  HANDLE h = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                         OPEN_EXISTING, 0, nullptr);
  if (h == INVALID_HANDLE_VALUE) return h;
  OVERLAPPED ov{};
  ov.OffsetHigh = 0x7FFFFFFF;
  if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov)) {
    CloseHandle(h);
    return INVALID_HANDLE_VALUE;
  }
  return h;
}

// The last-write time in ms since 1970, and setting it (what the sweep reads from the listing).
constexpr uint64_t kEpochTicks = 116444736000000000ULL;
uint64_t WriteTimeMs(const std::string& path) {
  WIN32_FILE_ATTRIBUTE_DATA a;
  if (!GetFileAttributesExA(path.c_str(), GetFileExInfoStandard, &a)) return 0;
  uint64_t t = static_cast<uint64_t>(a.ftLastWriteTime.dwHighDateTime) << 32 | a.ftLastWriteTime.dwLowDateTime;
  return (t - kEpochTicks) / 10000;
}
void SetWriteTimeMs(const std::string& path, uint64_t ms) {
  HANDLE h = CreateFileA(path.c_str(), FILE_WRITE_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         nullptr, OPEN_EXISTING, 0, nullptr);
  uint64_t t = kEpochTicks + ms * 10000;
  FILETIME ft{static_cast<DWORD>(t), static_cast<DWORD>(t >> 32)};
  SetFileTime(h, nullptr, nullptr, &ft);
  CloseHandle(h);
}

// Tries an exclusive, non-blocking lock through a handle of its own (LockFileEx locks belong to
// a handle: this is what another process sees). true if it got the lock (and released it).
bool OtherHandleGetsLock(const std::string& path) {
  HANDLE h = CreateFileA(path.c_str(), GENERIC_READ | GENERIC_WRITE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING, 0, nullptr);
  if (h == INVALID_HANDLE_VALUE) return false;
  OVERLAPPED ov{};
  bool got = LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov) != 0;
  if (got) UnlockFileEx(h, 0, 1, 0, &ov);
  CloseHandle(h);
  return got;
}

// Wine keeps no security descriptor we set (it derives one from the Unix mode and owner), so
// what the DACL tests below create cannot be seen there; they run on Windows itself, and under
// wine the same refusals are checked on directories given loose modes from the Unix side.
bool UnderWine() {
  HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  return ntdll && GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

bool SkipUnderWine(const char* why) {
  if (!UnderWine()) return false;
  std::printf("  skipped under wine: %s\n", why);
  return true;
}

}  // namespace

// ===== vectors (the same known answers as everywhere) ======================================

TEST(win_keys_vectors) {
  CHECK(V()["keys"].arr.size() >= 4);
  for (const Json& kv : V()["keys"].arr) {
    uint8_t key[kKeySize];
    DeriveKey(kv["ikm"].S(), kv["scope"].S(), kv["name"].S(), kv["uid"].S(), kv["bootId"].S(), key);
    CHECK_EQ(check::Hex(key, kKeySize), kv["keyHex"].S());
    KeyId id = ComputeKeyId(key);
    CHECK_EQ(check::Hex(id.data(), id.size()), kv["keyIdHex"].S());
  }
}

TEST(win_envelope_vectors) {
  CHECK(V()["envelopes"].arr.size() >= 4);
  for (const Json& ev : V()["envelopes"].arr) {
    auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
    Bytes nonce = FromHex(ev["nonceHex"].S());
    const std::string& pt = ev["plaintext"].S();
    Bytes env = Seal(*ring, reinterpret_cast<const uint8_t*>(pt.data()), pt.size(), ev["context"].S(),
                     ev["createdAt"].N(), ev["expiresAt"].N(), nonce.data());
    CHECK_EQ(Hex(env), ev["envelopeHex"].S());
    Opened o = Open(*ring, env.data(), env.size(), ev["context"].S(), kDefaultMaxBytes);
    CHECK_EQ(std::string(o.plaintext.begin(), o.plaintext.end()), pt);
    env[env.size() - 1] ^= 1;
    CHECK_CODE(Open(*ring, env.data(), env.size(), ev["context"].S(), kDefaultMaxBytes), code::kTampered);
  }
}

// ===== machine id and user ================================================================

TEST(win_machine_id_and_sid) {
  std::string id = ReadMachineId();
  // MachineGuid: 8-4-4-4-12 hex digits.
  CHECK_EQ(id.size(), size_t{36});
  CHECK(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
  wchar_t buf[64];
  DWORD len = sizeof buf;
  CHECK_EQ(RegGetValueW(HKEY_LOCAL_MACHINE, L"SOFTWARE\\Microsoft\\Cryptography", L"MachineGuid",
                        RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY, nullptr, buf, &len),
           LONG{ERROR_SUCCESS});
  std::string reg;
  for (const wchar_t* p = buf; *p; p++) reg.push_back(static_cast<char>(*p));
  CHECK_EQ(id, reg);
  std::string sid = CurrentUid();
  CHECK(sid.rfind("S-1-5-", 0) == 0);
  CHECK_EQ(CurrentUid(), sid);  // stable
  CHECK_CODE(ReadBootId(), code::kMachineId);
  // The machine-bound key of a manager: HKDF info uid = the SID string.
  KeyRing a({id}, "manager", "app", sid, "");
  KeyRing b({id}, "manager", "app", "1000", "");
  CHECK(check::Hex(a.key(0).bytes, kKeySize) != check::Hex(b.key(0).bytes, kKeySize));
}

// ===== security descriptors ===============================================================

TEST(win_private_sddl) {
  const std::string sid = CurrentUid();
  // FA = FILE_ALL_ACCESS; P = protected (nothing inherited); OICI = inherited by what is
  // created inside the directory. One ACE: nobody but the owner has any access.
  CHECK_EQ(win::PrivateSddl(true), "O:" + sid + "D:P(A;OICI;FA;;;" + sid + ")");
  CHECK_EQ(win::PrivateSddl(false), "O:" + sid + "D:P(A;;FA;;;" + sid + ")");
}

TEST(win_created_objects_carry_it) {
  if (SkipUnderWine("wine does not store the security descriptors of files (it shows one made from the Unix mode)"))
    return;
  TempDir t;
  const std::string sid = CurrentUid();
  PrivateDir d(t / "a\\b\\sessions", true);
  CHECK_EQ(win::SddlOfPath(t / "a\\b\\sessions"), win::PrivateSddl(true));
  CHECK_EQ(win::SddlOfPath(t / "a"), win::PrivateSddl(true));  // created parents are private too
  Bytes data = B("payload");
  d.WriteAtomic("f", data.data(), data.size());
  CHECK_EQ(win::SddlOfPath(t / "a\\b\\sessions\\f"), win::PrivateSddl(false));
  { auto lock = d.Lock("f"); }
  CHECK_EQ(win::SddlOfPath(t / "a\\b\\sessions\\f.lock"), win::PrivateSddl(false));
}

TEST(win_loose_or_foreign_dir_refused) {
  if (SkipUnderWine("wine does not store security descriptors; win_unix_loose_dirs_refused checks the refusals there"))
    return;
  TempDir t;
  const std::string sid = CurrentUid();
  // Everyone (WD) may write: refused, and left as it is.
  CHECK(MakeDirWithSddl(t / "open", "D:P(A;OICI;FA;;;" + sid + ")(A;OICI;0x120116;;;WD)"));
  CHECK_CODE(PrivateDir(t / "open", false), code::kUnsafePath);
  CHECK_CODE(PrivateDir(t / "open", true), code::kUnsafePath);
  CHECK(RawNames(t / "open").empty());
  // Authenticated users (AU) with modify rights: refused.
  CHECK(MakeDirWithSddl(t / "au", "D:P(A;OICI;FA;;;" + sid + ")(A;OICI;0x1301bf;;;AU)"));
  CHECK_CODE(PrivateDir(t / "au", false), code::kUnsafePath);
  // Read for others is fine (only write lets them plant files); SYSTEM and Administrators too.
  CHECK(
      MakeDirWithSddl(t / "ro", "D:P(A;OICI;FA;;;" + sid + ")(A;OICI;0x1200a9;;;WD)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"));
  CHECK_NOTHROW(PrivateDir(t / "ro", false));
  // A NULL DACL grants everything to everyone.
  CHECK(MakeDirWithSddl(t / "null", "D:NO_ACCESS_CONTROL"));
  CHECK_CODE(PrivateDir(t / "null", false), code::kUnsafePath);
  // Owned by another principal (Guests): refused.
  if (MakeDirWithSddl(t / "theirs", "O:BGD:P(A;OICI;FA;;;" + sid + ")")) {
    CHECK_CODE(PrivateDir(t / "theirs", false), code::kUnsafePath);
  } else {
    CHECK_MSG(false, "could not create a directory owned by Guests (error " + std::to_string(GetLastError()) + ")");
  }
  // Loosened after opening: every operation re-checks, nothing is written.
  PrivateDir d(t / "later", true);
  PSECURITY_DESCRIPTOR sd = nullptr;
  CHECK(ConvertStringSecurityDescriptorToSecurityDescriptorW(W("D:P(A;OICI;FA;;;" + sid + ")(A;OICI;FA;;;WD)").c_str(),
                                                             SDDL_REVISION_1, &sd, nullptr));
  CHECK(SetFileSecurityW(W(t / "later").c_str(), DACL_SECURITY_INFORMATION, sd));
  LocalFree(sd);
  Bytes data = B("x");
  CHECK_CODE(d.Check(), code::kUnsafePath);
  CHECK_CODE(d.WriteAtomic("s", data.data(), data.size()), code::kUnsafePath);
  CHECK(RawNames(t / "later").empty());
}

// Under wine: directories the runner made from the Unix side (SEALED_WIN_FIXTURES), whose modes
// and owner wine turns into DACL entries for Everyone, the group and another owner.
TEST(win_unix_loose_dirs_refused) {
  const char* root = std::getenv("SEALED_WIN_FIXTURES");
  if (!UnderWine()) {
    std::printf("  skipped on Windows: this is the wine stand-in for win_loose_or_foreign_dir_refused\n");
    return;
  }
  CHECK_MSG(root != nullptr, "SEALED_WIN_FIXTURES is not set: run through scripts/platform-tests.mjs");
  if (!root) return;
  const std::string base = root;
  CHECK_NOTHROW(PrivateDir(base + "\\private", false));
  // (wine shows no group ACE for group bits: only world-writable has a wine form)
  for (const char* loose : {"world-writable"}) {
    std::printf("  %s: %s\n", loose, win::SddlOfPath(base + "\\" + loose).c_str());
    CHECK_CODE(PrivateDir(base + "\\" + loose, false), code::kUnsafePath);
    CHECK_CODE(PrivateDir(base + "\\" + loose, true), code::kUnsafePath);
    CHECK(RawNames(base + "\\" + loose).empty());
  }
  if (Exists(base + "\\foreign")) {
    CHECK_CODE(PrivateDir(base + "\\foreign", false), code::kUnsafePath);
  } else {
    std::printf("  foreign owner not checked: making one needs root on the Unix side\n");
  }
}

// The entry as the directory listing shows it is a reparse point.
bool ListedAsReparsePoint(const std::string& path) {
  WIN32_FIND_DATAA fd;
  HANDLE h = FindFirstFileA(path.c_str(), &fd);
  if (h == INVALID_HANDLE_VALUE) return false;
  FindClose(h);
  return (fd.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0;
}

TEST(win_reparse_points_refused) {
  TempDir t;
  CreateDirectoryA((t / "real").c_str(), nullptr);
  const DWORD kUnprivileged = 0x2;  // SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE
  bool made = CreateSymbolicLinkA((t / "link").c_str(), (t / "real").c_str(),
                                  SYMBOLIC_LINK_FLAG_DIRECTORY | kUnprivileged) != 0;
  if (!ListedAsReparsePoint(t / "link") &&
      SkipUnderWine("wine cannot create reparse points (CreateSymbolicLink leaves no link behind)"))
    return;
  CHECK_MSG(made, "CreateSymbolicLink (directory) failed: " + std::to_string(GetLastError()));
  if (made) {
    CHECK(GetFileAttributesA((t / "link").c_str()) & FILE_ATTRIBUTE_REPARSE_POINT);
    CHECK_CODE(PrivateDir(t / "link", false), code::kUnsafePath);
    CHECK_CODE(PrivateDir(t / "link", true), code::kUnsafePath);
    // A link among the parents is refused too (the path is walked from its root), with or
    // without creating what is below it.
    CHECK_CODE(PrivateDir(t / "link\\inner", true), code::kUnsafePath);
    CreateDirectoryA((t / "real\\there").c_str(), nullptr);
    CHECK_CODE(PrivateDir(t / "link\\there", false), code::kUnsafePath);
    RemoveDirectoryA((t / "real\\there").c_str());
    CHECK(RawNames(t / "real").empty());
  }
  PrivateDir d(t / "s", true);
  auto ring = StoreRing();
  Bytes pt = B("{\"a\":1}");
  d.SealToFile(*ring, "real", pt.data(), pt.size(), kCtx, 1, 0);
  WriteRaw(t / "secret", "do not touch");
  made = CreateSymbolicLinkA((t / "s\\s2").c_str(), (t / "secret").c_str(), kUnprivileged) != 0;
  CHECK_MSG(made, "CreateSymbolicLink (file) failed: " + std::to_string(GetLastError()));
  if (made) {
    CHECK_CODE(d.Read("s2", kDefaultMaxBytes), code::kUnsafePath);
    CHECK_CODE(d.OpenFile(*ring, "s2", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kUnsafePath);
    CHECK_CODE(d.Peek("s2"), code::kUnsafePath);
    CHECK_EQ(d.Sweep(UINT64_MAX).removed, uint64_t{1});  // "real" only; the link is left alone
    // Writing over a link replaces the link itself; its target is never written.
    d.SealToFile(*ring, "s2", pt.data(), pt.size(), kCtx, 1, 0);
    CHECK_EQ(ReadRaw(t / "secret"), std::string("do not touch"));
    CHECK(!(GetFileAttributesA((t / "s\\s2").c_str()) & FILE_ATTRIBUTE_REPARSE_POINT));
    CHECK(d.OpenFile(*ring, "s2", kCtx, kDefaultMaxBytes, 0, 0).status == OpenFileResult::kOk);
  }
}

// ===== the private directory ==============================================================

TEST(win_seal_open_roundtrip) {
  TempDir t;
  PrivateDir d(t / "sessions", true);
  auto ring = StoreRing();
  Bytes pt = B("{\"user\":\"u1\"}");
  CHECK(d.SealToFile(*ring, "s1", pt.data(), pt.size(), kCtx, 1000, 0));
  OpenFileResult r = d.OpenFile(*ring, "s1", kCtx, kDefaultMaxBytes, 5000, 0);
  CHECK(r.status == OpenFileResult::kOk);
  CHECK(r.opened.plaintext == pt);
  CHECK(d.Peek("s1")->created_at == 1000);
  CHECK(!d.Read("missing", 100).has_value());
  CHECK(d.OpenFile(*ring, "missing", kCtx, kDefaultMaxBytes, 0, 0).status == OpenFileResult::kMissing);
  // Too large before reading.
  CHECK_CODE(d.Read("s1", 10), code::kTooLarge);
  // existing_only: nothing written when the file is gone.
  CHECK(!d.SealToFile(*ring, "gone", pt.data(), pt.size(), kCtx, 1, 0, true));
  CHECK(!Exists(t / "sessions\\gone"));
  CHECK(d.SealToFile(*ring, "s1", pt.data(), pt.size(), kCtx, 2000, 0, true));
  CHECK(d.Peek("s1")->created_at == 2000);
  // Expired: reported, removed with kRemoveExpired.
  d.SealToFile(*ring, "old", pt.data(), pt.size(), kCtx, 1, 10);
  CHECK(d.OpenFile(*ring, "old", kCtx, kDefaultMaxBytes, 20, 0).status == OpenFileResult::kExpired);
  CHECK(Exists(t / "sessions\\old"));
  CHECK(d.OpenFile(*ring, "old", kCtx, kDefaultMaxBytes, 20, kRemoveExpired).status == OpenFileResult::kExpired);
  CHECK(!Exists(t / "sessions\\old"));
  // Tampered: refused, removed with kRemoveInvalid.
  WriteRaw(t / "sessions\\bad", std::string(80, 'x'));
  CHECK_CODE(d.OpenFile(*ring, "bad", kCtx, kDefaultMaxBytes, 0, 0), code::kBadMagic);
  CHECK(Exists(t / "sessions\\bad"));
  CHECK_CODE(d.OpenFile(*ring, "bad", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kBadMagic);
  CHECK(!Exists(t / "sessions\\bad"));
  CHECK(d.Remove("s1"));
  CHECK(!d.Remove("s1"));
  // Removals after a check hold the name's lock, as on POSIX: its lock file stays.
  CHECK_EQ(Join(RawNames(t / "sessions")), std::string("bad.lock,old.lock"));
}

TEST(win_atomic_replace_and_no_temp_left) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  for (int i = 0; i < 20; i++) d.SealToFile(*ring, "s", pt.data(), pt.size(), kCtx, static_cast<uint64_t>(i), 0);
  CHECK_EQ(Join(RawNames(t.path)), std::string("s"));
  CHECK(d.Peek("s")->created_at == 19);
  // A reader holding the file open (with FILE_SHARE_DELETE, as ours do) does not stop a replace.
  // A reader holding the file open for a moment does not make a replace fail: the rename is
  // retried until it lets go.
  HANDLE reader = CreateFileA((t / "s").c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                              nullptr, OPEN_EXISTING, 0, nullptr);
  CHECK(reader != INVALID_HANDLE_VALUE);
  std::thread closer([reader] {
    Sleep(150);
    CloseHandle(reader);
  });
  CHECK_NOTHROW(d.SealToFile(*ring, "s", pt.data(), pt.size(), kCtx, 77, 0));
  closer.join();
  CHECK(d.Peek("s")->created_at == 77);
  CHECK_EQ(Join(RawNames(t.path)), std::string("s"));
  // A directory in place of the file: refused with an I/O error, nothing left behind.
  CreateDirectoryA((t / "blocked").c_str(), nullptr);
  WriteRaw(t / "blocked\\x", "x");
  for (int i = 0; i < 3; i++) CHECK_CODE(d.SealToFile(*ring, "blocked", pt.data(), pt.size(), kCtx, 1, 0), code::kIo);
  CHECK_CODE(d.Read("blocked", 100), code::kUnsafePath);
  CHECK_EQ(Join(RawNames(t.path)), std::string("blocked,s"));
  CHECK_EQ(ReadRaw(t / "blocked\\x"), std::string("x"));
}

TEST(win_dir_cannot_be_swapped_while_open) {
  TempDir t;
  auto d = std::make_unique<PrivateDir>(t / "held", true);
  // Held without FILE_SHARE_DELETE: no rename (nor a link swapped in) while we use it.
  CHECK(!MoveFileA((t / "held").c_str(), (t / "moved").c_str()));
  CHECK(Exists(t / "held"));
  d.reset();
  CHECK(MoveFileA((t / "held").c_str(), (t / "moved").c_str()));
}

TEST(win_check_name) {
  for (const char* bad :
       {"",        "a/b",    "a\\b", "a:b", "a*",      "a?",   "a\"b",     "a<b",    "a>b",    "a|b",
        ".hidden", "x.lock", "con",  "NUL", "nul.txt", "COM1", "lpt9.enc", "trail.", "trail ", "tab\tname"}) {
    CHECK_CODE(PrivateDir::CheckName(bad), code::kInvalidArg);
  }
  for (const char* good : {"session.enc", "0123abcd", "console", "com10", "a.b.c"})
    CHECK_NOTHROW(PrivateDir::CheckName(good));
}

TEST(win_list_and_sweep) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  d.SealToFile(*ring, "never", pt.data(), pt.size(), kCtx, 1, 0);
  d.SealToFile(*ring, "live", pt.data(), pt.size(), kCtx, 1, 5000);
  d.SealToFile(*ring, "dead", pt.data(), pt.size(), kCtx, 1, 100);
  { auto lock = d.Lock("live"); }
  WriteRaw(t / ".live.0011223344556677.tmp", "a live writer's temp");
  WriteRaw(t / ".live.8899aabbccddeeff.tmp", "a dead writer's temp");
  HANDLE writer = HoldTempLock(t / ".live.0011223344556677.tmp");
  CHECK(writer != INVALID_HANDLE_VALUE);
  WriteRaw(t / "junk", "not an envelope");
  // Written without an expiry, its write time is now: set to the past so the sweep reads it (a
  // file whose write time is ahead is passed by on the listing alone).
  SetWriteTimeMs(t / "junk", 1);
  CreateDirectoryA((t / "subdir").c_str(), nullptr);
  std::vector<std::string> names = d.List();
  std::sort(names.begin(), names.end());
  CHECK_EQ(Join(names), std::string("dead,junk,live,never"));
  SweepStats s = d.Sweep(1000);
  CHECK_EQ(s.scanned, uint64_t{4});
  CHECK_EQ(s.removed, uint64_t{1});
  CHECK_EQ(s.skipped, uint64_t{1});
  // "dead" was removed under its lock (dead.lock stays, as on POSIX).
  CHECK_EQ(Join(RawNames(t.path)),
           std::string(".live.0011223344556677.tmp,dead.lock,junk,live,live.lock,never,subdir"));
  CloseHandle(writer);  // the writer is gone: its temp goes at the next sweep
  CHECK_EQ(d.Sweep(UINT64_MAX).removed, uint64_t{1});
  CHECK(!Exists(t / ".live.0011223344556677.tmp"));
  CHECK(Exists(t / "never") && !Exists(t / "live") && Exists(t / "live.lock"));
}

TEST(win_expiry_is_the_write_time) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  const uint64_t far_future = (uint64_t{1} << 34) * 1000;  // year 2514, as on POSIX
  d.SealToFile(*ring, "live", pt.data(), pt.size(), kCtx, 1, 1700000000123);
  d.SealToFile(*ring, "never", pt.data(), pt.size(), kCtx, 1, 0);
  d.SealToFile(*ring, "dead", pt.data(), pt.size(), kCtx, 1, 100);
  CHECK_EQ(WriteTimeMs(t / "live"), uint64_t{1700000000123});
  // Never-expiring: far ahead (the file system may clamp it: wine on ext4 stops at 2446).
  CHECK(WriteTimeMs(t / "never") >= uint64_t{13569489360000});  // year 2400
  CHECK_EQ(WriteTimeMs(t / "dead"), uint64_t{100});
  // A plain write keeps its write time (no expiry given).
  Bytes raw = B("x");
  d.WriteAtomic("plain", raw.data(), raw.size());
  CHECK(WriteTimeMs(t / "plain") > uint64_t{1700000000000});
  // A write time pushed ahead delays a removal, and the header still decides it.
  SetWriteTimeMs(t / "dead", far_future);
  SweepStats s = d.Sweep(1000);
  CHECK_EQ(s.scanned, uint64_t{4});
  CHECK_EQ(s.removed, uint64_t{0});
  CHECK(Exists(t / "dead"));
  SetWriteTimeMs(t / "live", 1);  // behind now, but its header says live: read, kept
  CHECK_EQ(d.Sweep(1000).removed, uint64_t{0});
  CHECK(Exists(t / "live"));
  CHECK_EQ(d.Sweep(far_future + 1).removed, uint64_t{2});  // dead and live; "never" and "plain" stay
  CHECK_EQ(Join(RawNames(t.path)), std::string("dead.lock,live.lock,never,plain"));  // removed under their locks
}

TEST(win_inline_read_goes_to_the_pool) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  d.SealToFile(*ring, "s", pt.data(), pt.size(), kCtx, 1, 0);
  OpenFileResult r;
  r.status = OpenFileResult::kOk;
  CHECK(d.TryOpenFileInline(*ring, "s", kCtx, kDefaultMaxBytes, 0, 0, nowait::Mode::kNormal, &r) ==
        InlineRead::kWouldBlock);
  CHECK(r.status == OpenFileResult::kMissing);
  CHECK(!nowait::Available());
  CHECK_CODE(d.TryOpenFileInline(*ring, "a\\b", kCtx, kDefaultMaxBytes, 0, 0, nowait::Mode::kNormal, &r),
             code::kInvalidArg);
}

TEST(win_path_walk_creates_and_resolves) {
  TempDir t;
  // Missing parents are created, private, down to the last.
  CHECK_NOTHROW(PrivateDir(t / "a\\b\\c", true));
  CHECK(Exists(t / "a\\b\\c"));
  // Without create, a missing parent is an I/O error (ENOENT), nothing is made.
  CHECK_CODE(PrivateDir(t / "x\\y", false), code::kIo);
  CHECK(!Exists(t / "x"));
  // Forward slashes, doubled and trailing separators, "..", and a relative path.
  CHECK_NOTHROW(PrivateDir(t / "a//b/../b\\c\\", false));
  char cwd[MAX_PATH];
  GetCurrentDirectoryA(MAX_PATH, cwd);
  SetCurrentDirectoryA(t.path.c_str());
  bool rel_ok = true;
  try {
    PrivateDir rel("rel\\d", true);
  } catch (const Error&) {
    rel_ok = false;
  }
  SetCurrentDirectoryA(cwd);
  CHECK(rel_ok);
  CHECK(Exists(t / "rel\\d"));
  // A file where a parent should be.
  WriteRaw(t / "file", "x");
  CHECK_CODE(PrivateDir(t / "file\\d", true), code::kIo);
  CHECK_CODE(PrivateDir(t / "file", false), code::kUnsafePath);
}

TEST(win_stale_temps_go_at_open_and_sweep) {
  TempDir t;
  { PrivateDir first(t.path, false); }
  const std::string dead = t / ".s.0011223344556677.tmp", live = t / ".s.8899aabbccddeeff.tmp";
  WriteRaw(dead, "torn");  // written a moment ago: no age rule
  WriteRaw(live, "in flight");
  HANDLE writer = HoldTempLock(live);
  CHECK(writer != INVALID_HANDLE_VALUE);
  PrivateDir d(t.path, false);
  CHECK(!Exists(dead));  // removed when the directory was opened
  CHECK(Exists(live));   // its writer holds the lock
  CHECK_EQ(d.RemoveStaleTemps(), uint64_t{0});
  // A temp that is not ours to judge (a directory, a session name) is left alone.
  CreateDirectoryA((t / ".d.0011223344556677.tmp").c_str(), nullptr);
  WriteRaw(dead, "torn again");
  d.Sweep(0);
  CHECK(!Exists(dead));
  CHECK(Exists(live));
  CHECK(Exists(t / ".d.0011223344556677.tmp"));
  CloseHandle(writer);
  CHECK_EQ(d.RemoveStaleTemps(), uint64_t{1});
  CHECK(!Exists(live));
  // Writes leave no temp behind, nor does a refused existing_only write; the session they
  // wrote can be read while a later write is under way.
  auto ring = StoreRing();
  Bytes pt = B("{}");
  CHECK(d.SealToFile(*ring, "s", pt.data(), pt.size(), kCtx, 1, 0));
  CHECK(!d.SealToFile(*ring, "gone", pt.data(), pt.size(), kCtx, 1, 0, true));
  CHECK_EQ(Join(RawNames(t.path)), std::string(".d.0011223344556677.tmp,s"));
}

// keySource 'keychain' on Windows: one seed per app in the Credential Manager, created once
// even when several threads (or processes: the mutex is named) ask for it first at once.
TEST(win_keychain_seed_created_once) {
  const std::string app = "core-test-" + std::to_string(GetCurrentProcessId()) + "-" + std::to_string(GetTickCount());
  CHECK_EQ(KeychainStatus(), std::string("ok"));
  std::vector<std::string> seeds(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seeds.size(); i++) threads.emplace_back([&, i] { seeds[i] = KeychainSeed(app); });
  for (auto& t : threads) t.join();
  CHECK_EQ(seeds[0].size(), kSeedSize);
  for (const std::string& s : seeds) CHECK(s == seeds[0]);
  CHECK(KeychainSeed(app) == seeds[0]);
  CHECK(KeychainSeed(app + "-other") != seeds[0]);
  // Something else under our name is refused, not used as a key.
  const std::wstring bad = W("sealed-session/" + app + "-bad");
  CREDENTIALW c = {};
  c.Type = CRED_TYPE_GENERIC;
  c.TargetName = const_cast<LPWSTR>(bad.c_str());
  BYTE blob[3] = {1, 2, 3};
  c.CredentialBlobSize = sizeof blob;
  c.CredentialBlob = blob;
  c.Persist = CRED_PERSIST_LOCAL_MACHINE;
  CHECK(CredWriteW(&c, 0));
  CHECK_CODE(KeychainSeed(app + "-bad"), code::kKeychainUnavailable);
  for (const std::string& a : {app, app + "-other", app + "-bad"})
    CredDeleteW(W("sealed-session/" + a).c_str(), CRED_TYPE_GENERIC, 0);
}

TEST(win_lock_excludes_other_handles) {
  TempDir t;
  PrivateDir d(t.path, false);
  const std::string lock_path = t / "s.lock";
  auto lock = d.Lock("s");
  CHECK(lock != nullptr);
  CHECK(!OtherHandleGetsLock(lock_path));  // held: refused
  lock->Release();
  CHECK(OtherHandleGetsLock(lock_path));  // released
  lock->Release();                        // idempotent
  {
    auto again = d.Lock("s");
    CHECK(!OtherHandleGetsLock(lock_path));
  }
  CHECK(OtherHandleGetsLock(lock_path));  // the destructor releases
  // A directory in place of the lock file is refused.
  CreateDirectoryA((t / "y.lock").c_str(), nullptr);
  CHECK_CODE(d.Lock("y"), code::kUnsafePath);
}

// ===== entry point: a Node-API module ======================================================

namespace {
std::string ArgString(napi_env env, napi_value v) {
  size_t len = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, v, s.data(), len + 1, &len);
  return s;
}

// run(vectorsPath, filter?) -> exit code (0: all passed). Output on stdout.
napi_value Run(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  g_vectors_path = argc > 0 ? ArgString(env, argv[0]) : "";
  std::string filter = argc > 1 ? ArgString(env, argv[1]) : "";
  int rc;
  try {
    V();
    std::printf("vectors: %s\n", g_vectors_path.c_str());
    rc = check::RunAll(filter);
  } catch (const std::exception& e) {
    std::printf("cannot load vectors: %s\n0 passed, 1 failed\n", e.what());
    rc = 1;
  }
  std::fflush(stdout);
  napi_value out;
  napi_create_int32(env, rc, &out);
  return out;
}
}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "run", NAPI_AUTO_LENGTH, Run, nullptr, &fn);
  napi_set_named_property(env, exports, "run", fn);
  return exports;
}
