// The private-file layer on Windows (private_dir.cc is the POSIX one; the interface is
// private_dir.h). The POSIX rules, in Windows terms:
//   0700 / 0600         -> a protected DACL (nothing inherited) with one ACE: the current user,
//                          full access; the owner is the current user
//   owner / group+other -> an existing directory or file must be owned by us (or by the
//   writable refused       token's default owner: an elevated administrator's objects belong
//                          to Administrators) and no ACE may grant write to anyone but us,
//                          SYSTEM or Administrators (who, like root, can take anything anyway)
//   O_NOFOLLOW          -> FILE_FLAG_OPEN_REPARSE_POINT and a check of the attributes: symlinks
//                          and junctions are refused, never followed
//   openat on a dir fd  -> the directory stays open without FILE_SHARE_DELETE, so nobody can
//                          rename or delete it (or swap a link in its place) while we use it
//   rename + fsync      -> FlushFileBuffers, then MoveFileExW(REPLACE_EXISTING | WRITE_THROUGH)
//   flock               -> LockFileEx on <name>.lock
// Handles are kept as CRT descriptors (_open_osfhandle) so the header's int members serve
// both platforms unchanged.
#ifdef _WIN32

#ifndef NOMINMAX
#define NOMINMAX
#endif
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
// windows.h first: these need its types.
#include <aclapi.h>
#include <fcntl.h>
#include <io.h>
#include <sddl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "crypto.h"
#include "errors.h"
#include "private_dir.h"
#include "private_dir_win.h"

namespace sealed {

namespace {

// Rights that let someone change a file or directory, or what is in it.
constexpr ACCESS_MASK kWriteRights = FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA | FILE_WRITE_ATTRIBUTES |
                                     FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL;

// ---- strings and errors ------------------------------------------------------------------

std::wstring Wide(const std::string& s) {
  if (s.empty()) return std::wstring();
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), nullptr, 0);
  if (n <= 0) throw Error(code::kInvalidArg, "path is not valid UTF-8");
  std::wstring w(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), w.data(), n);
  return w;
}

std::string Narrow(const wchar_t* w, size_t len) {
  if (len == 0) return std::string();
  int n = WideCharToMultiByte(CP_UTF8, 0, w, static_cast<int>(len), nullptr, 0, nullptr, nullptr);
  std::string s(static_cast<size_t>(n > 0 ? n : 0), '\0');
  if (n > 0) WideCharToMultiByte(CP_UTF8, 0, w, static_cast<int>(len), s.data(), n, nullptr, nullptr);
  return s;
}

// The POSIX errno closest to a Windows error, for the `errno` JavaScript sees.
int ErrnoOf(DWORD err) {
  switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
      return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD:
      return EACCES;
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
      return EBUSY;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
      return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
      return ENOSPC;
    case ERROR_DIRECTORY:
      return ENOTDIR;
    case ERROR_FILENAME_EXCED_RANGE:
      return ENAMETOOLONG;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
      return ENOMEM;
    default:
      return EIO;
  }
}

// The POSIX name JavaScript sees in `syscall` (as Node's own fs errors on Windows do), so code
// that looks at it works the same everywhere; the message names the Windows function.
const char* PosixName(const char* api) {
  static const struct {
    const char* api;
    const char* posix;
  } kNames[] = {{"CreateFile", "open"},       {"ReadFile", "read"},
                {"WriteFile", "write"},       {"FlushFileBuffers", "fsync"},
                {"CloseHandle", "close"},     {"MoveFileEx", "rename"},
                {"DeleteFile", "unlink"},     {"CreateDirectory", "mkdir"},
                {"LockFileEx", "flock"},      {"GetFileInformationByHandle", "fstat"},
                {"GetSecurityInfo", "fstat"}, {"FindFirstFile", "opendir"},
                {"FindNextFile", "readdir"}};
  for (const auto& n : kNames) {
    if (strcmp(n.api, api) == 0) return n.posix;
  }
  return api;
}

// api must be a string literal (Error keeps the pointer).
[[noreturn]] void ThrowWin(const char* api, const std::string& what, DWORD err) {
  const char* syscall = PosixName(api);
  char buf[256];
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, err, 0, buf, sizeof buf,
                           nullptr);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '.')) n--;
  std::string text = n ? std::string(buf, n) : "error";
  throw Error(
      code::kIo,
      std::string(syscall) + " " + what + ": " + text + " (" + api + ", Windows error " + std::to_string(err) + ")",
      ErrnoOf(err), syscall);
}

struct Handle {
  HANDLE h = INVALID_HANDLE_VALUE;
  Handle() = default;
  explicit Handle(HANDLE x) : h(x) {}
  ~Handle() {
    if (ok()) CloseHandle(h);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : h(o.release()) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      if (ok()) CloseHandle(h);
      h = o.release();
    }
    return *this;
  }
  bool ok() const { return h != INVALID_HANDLE_VALUE && h != nullptr; }
  HANDLE release() {
    HANDLE x = h;
    h = INVALID_HANDLE_VALUE;
    return x;
  }
};

HANDLE H(int fd) { return reinterpret_cast<HANDLE>(_get_osfhandle(fd)); }

// Hands the handle to the CRT (closing it if that fails): the header stores descriptors.
int ToFd(Handle& h, const std::string& what) {
  int fd = _open_osfhandle(reinterpret_cast<intptr_t>(h.h), _O_RDONLY | _O_NOINHERIT);
  if (fd < 0) ThrowIo("_open_osfhandle", what, EMFILE);
  h.release();
  return fd;
}

// Another process's handle opened without FILE_SHARE_DELETE (an indexer, an antivirus scan,
// a reader on old Windows) makes a rename or delete fail for a moment: retry for up to ~1 s.
template <typename Fn>
bool RetryBusy(Fn fn) {
  for (int i = 0;; i++) {
    if (fn()) return true;
    DWORD err = GetLastError();
    if ((err != ERROR_SHARING_VIOLATION && err != ERROR_ACCESS_DENIED && err != ERROR_LOCK_VIOLATION) || i >= 60) {
      SetLastError(err);
      return false;
    }
    Sleep(i < 10 ? 1 : 20);
  }
}

// ---- who we are -------------------------------------------------------------------------

struct Identity {
  std::vector<uint8_t> user;   // TokenUser
  std::vector<uint8_t> owner;  // TokenOwner: the default owner of what this token creates
  std::string user_string;
};

std::vector<uint8_t> TokenSid(HANDLE token, TOKEN_INFORMATION_CLASS cls) {
  DWORD size = 0;
  GetTokenInformation(token, cls, nullptr, 0, &size);
  std::vector<uint8_t> buf(size ? size : 1);
  if (!size || !GetTokenInformation(token, cls, buf.data(), size, &size))
    ThrowWin("GetTokenInformation", "of this process", GetLastError());
  // TOKEN_USER and TOKEN_OWNER both start with the SID pointer.
  PSID sid = cls == TokenUser ? reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid
                              : reinterpret_cast<TOKEN_OWNER*>(buf.data())->Owner;
  const uint8_t* p = static_cast<const uint8_t*>(sid);
  return std::vector<uint8_t>(p, p + GetLengthSid(sid));
}

std::string SidString(PSID sid) {
  if (!sid) return "nobody";
  LPWSTR str = nullptr;
  if (!ConvertSidToStringSidW(sid, &str)) return "an unreadable SID";
  std::string s = Narrow(str, wcslen(str));
  LocalFree(str);
  return s;
}

Identity ReadIdentity() {
  HANDLE raw = nullptr;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw))
    ThrowWin("OpenProcessToken", "of this process", GetLastError());
  Handle token(raw);
  Identity id;
  id.user = TokenSid(token.h, TokenUser);
  id.owner = TokenSid(token.h, TokenOwner);
  id.user_string = SidString(id.user.data());
  return id;
}

// Read once: the process token's user cannot change.
const Identity& Me() {
  static const Identity id = ReadIdentity();
  return id;
}

bool IsUs(PSID sid) { return EqualSid(sid, const_cast<uint8_t*>(Me().user.data())) != 0; }

bool OwnerAllowed(PSID sid) { return IsUs(sid) || EqualSid(sid, const_cast<uint8_t*>(Me().owner.data())) != 0; }

// Who may hold write access besides us: SYSTEM and Administrators can do anything anyway.
bool TrustedWriter(PSID sid) {
  return IsUs(sid) || IsWellKnownSid(sid, WinLocalSystemSid) || IsWellKnownSid(sid, WinBuiltinAdministratorsSid);
}

// ---- security descriptors ---------------------------------------------------------------

// What we create files and directories with (see PrivateSddl). Not copyable: the descriptor
// points into the object.
class PrivateSd {
 public:
  explicit PrivateSd(bool directory) {
    PSID user = const_cast<uint8_t*>(Me().user.data());
    acl_.resize(sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) - sizeof(DWORD) + GetLengthSid(user));
    PACL acl = reinterpret_cast<PACL>(acl_.data());
    DWORD inherit = directory ? (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) : 0;
    if (!InitializeAcl(acl, static_cast<DWORD>(acl_.size()), ACL_REVISION) ||
        !AddAccessAllowedAceEx(acl, ACL_REVISION, inherit, FILE_ALL_ACCESS, user) ||
        !InitializeSecurityDescriptor(&sd_, SECURITY_DESCRIPTOR_REVISION) ||
        !SetSecurityDescriptorOwner(&sd_, user, FALSE) || !SetSecurityDescriptorDacl(&sd_, TRUE, acl, FALSE) ||
        !SetSecurityDescriptorControl(&sd_, SE_DACL_PROTECTED, SE_DACL_PROTECTED))
      ThrowWin("InitializeSecurityDescriptor", "for a private file", GetLastError());
    sa_.nLength = sizeof sa_;
    sa_.lpSecurityDescriptor = &sd_;
    sa_.bInheritHandle = FALSE;
  }
  PrivateSd(const PrivateSd&) = delete;
  PrivateSd& operator=(const PrivateSd&) = delete;
  SECURITY_ATTRIBUTES* attrs() { return &sa_; }
  PSECURITY_DESCRIPTOR sd() { return &sd_; }

 private:
  std::vector<uint8_t> acl_;
  SECURITY_DESCRIPTOR sd_{};
  SECURITY_ATTRIBUTES sa_{};
};

std::string ToSddl(PSECURITY_DESCRIPTOR sd) {
  LPWSTR str = nullptr;
  if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(
          sd, SDDL_REVISION_1, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &str, nullptr))
    ThrowWin("ConvertSecurityDescriptorToStringSecurityDescriptor", "", GetLastError());
  std::string s = Narrow(str, wcslen(str));
  LocalFree(str);
  return s;
}

// Refuses what another user could have planted or could change under us.
void CheckOwnedAndPrivate(HANDLE h, const std::string& what) {
  PSID owner = nullptr;
  PACL dacl = nullptr;
  PSECURITY_DESCRIPTOR sd = nullptr;
  DWORD rc = GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner, nullptr,
                             &dacl, nullptr, &sd);
  if (rc != ERROR_SUCCESS) ThrowWin("GetSecurityInfo", what, rc);
  struct Free {
    PSECURITY_DESCRIPTOR p;
    ~Free() { LocalFree(p); }
  } free_sd{sd};
  if (!owner || !OwnerAllowed(owner))
    throw Error(code::kUnsafePath,
                what + " is owned by " + SidString(owner) + ", not by us (" + Me().user_string + ")");
  if (!dacl) throw Error(code::kUnsafePath, what + " has no DACL: everyone may write to it");
  for (DWORD i = 0; i < dacl->AceCount; i++) {
    void* ace = nullptr;
    if (!GetAce(dacl, i, &ace)) ThrowWin("GetAce", what, GetLastError());
    const ACE_HEADER* head = static_cast<ACE_HEADER*>(ace);
    if (head->AceFlags & INHERIT_ONLY_ACE) continue;  // applies to children only
    if (head->AceType == ACCESS_DENIED_ACE_TYPE || head->AceType == ACCESS_DENIED_CALLBACK_ACE_TYPE ||
        head->AceType == SYSTEM_AUDIT_ACE_TYPE || head->AceType == SYSTEM_ALARM_ACE_TYPE)
      continue;
    if (head->AceType != ACCESS_ALLOWED_ACE_TYPE && head->AceType != ACCESS_ALLOWED_CALLBACK_ACE_TYPE)
      throw Error(code::kUnsafePath,
                  what + " has an access rule we cannot judge (ACE type " + std::to_string(head->AceType) + ")");
    const auto* allow = static_cast<const ACCESS_ALLOWED_ACE*>(ace);
    PSID sid = const_cast<DWORD*>(&allow->SidStart);
    if ((allow->Mask & kWriteRights) && !TrustedWriter(sid))
      throw Error(code::kUnsafePath, what + " is writable by " + SidString(sid) + ", not only by us");
  }
}

// ---- paths ------------------------------------------------------------------------------

bool IsSep(wchar_t c) { return c == L'\\' || c == L'/'; }

// Backslashes, without trailing separators (but "C:\" and "\" stay whole).
std::wstring NormalDir(const std::string& path) {
  std::wstring w = Wide(path);
  for (wchar_t& c : w) {
    if (c == L'/') c = L'\\';
  }
  while (w.size() > 1 && IsSep(w.back()) && !(w.size() == 3 && w[1] == L':')) w.pop_back();
  return w;
}

std::wstring Child(const std::string& dir, const std::string& name) { return NormalDir(dir) + L"\\" + Wide(name); }

// Where the first component we may create starts: after "C:\", "\\server\share\" or "\\?\C:\".
size_t RootLength(const std::wstring& p) {
  if (p.size() >= 2 && p[1] == L':') return p.size() >= 3 && IsSep(p[2]) ? 3 : 2;
  if (p.rfind(L"\\\\?\\UNC\\", 0) == 0) {  // the long UNC form: after its server and share
    size_t server_end = p.find(L'\\', 8);
    size_t share_end = server_end == std::wstring::npos ? std::wstring::npos : p.find(L'\\', server_end + 1);
    return share_end == std::wstring::npos ? p.size() : share_end + 1;
  }
  if (p.rfind(L"\\\\?\\", 0) == 0) return p.size() >= 6 && p[5] == L':' ? 7 : 4;
  if (p.size() >= 2 && IsSep(p[0]) && IsSep(p[1])) {
    size_t server_end = p.find(L'\\', 2);
    size_t share_end = server_end == std::wstring::npos ? std::wstring::npos : p.find(L'\\', server_end + 1);
    return share_end == std::wstring::npos ? p.size() : share_end + 1;
  }
  return IsSep(p[0]) ? 1 : 0;
}

// ---- files ------------------------------------------------------------------------------

// The entry's own attributes, by path (INVALID_FILE_ATTRIBUTES when it cannot be read). A layer
// that resolves links itself (wine does) may open a link's target despite
// FILE_FLAG_OPEN_REPARSE_POINT, so reparse points are looked for by path as well as by handle.
DWORD PathAttributes(const std::wstring& p) {
  WIN32_FILE_ATTRIBUTE_DATA d;
  return GetFileAttributesExW(p.c_str(), GetFileExInfoStandard, &d) ? d.dwFileAttributes : INVALID_FILE_ATTRIBUTES;
}

bool IsReparse(DWORD attrs) { return attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_REPARSE_POINT); }

struct FileInfo {
  DWORD volume = 0;
  uint64_t index = 0;
  uint64_t size = 0;
};

FileId IdOf(const FileInfo& info) { return {info.volume, info.index}; }

// Opens an entry of the directory without following a reparse point and checks it is a
// regular file of ours that nobody else may write. An invalid Handle when it is missing.
Handle OpenEntry(const std::string& dir, const std::string& name, DWORD access, FileInfo* info,
                 const char* kind = "session file") {
  const std::string what = std::string(kind) + " " + dir + "\\" + name;
  const std::wstring path = Child(dir, name);
  Handle h(CreateFileW(path.c_str(), access | READ_CONTROL | FILE_READ_ATTRIBUTES,
                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                       FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!h.ok()) {
    DWORD err = GetLastError();
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) return Handle();
    ThrowWin("CreateFile", what, err);
  }
  BY_HANDLE_FILE_INFORMATION bi;
  if (!GetFileInformationByHandle(h.h, &bi)) ThrowWin("GetFileInformationByHandle", what, GetLastError());
  if ((bi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) || IsReparse(PathAttributes(path)))
    throw Error(code::kUnsafePath, what + " is a symlink or another reparse point");
  if ((bi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || GetFileType(h.h) != FILE_TYPE_DISK)
    throw Error(code::kUnsafePath, what + " is not a regular file");
  CheckOwnedAndPrivate(h.h, what);
  if (info) {
    info->volume = bi.dwVolumeSerialNumber;
    info->index = (static_cast<uint64_t>(bi.nFileIndexHigh) << 32) | bi.nFileIndexLow;
    info->size = (static_cast<uint64_t>(bi.nFileSizeHigh) << 32) | bi.nFileSizeLow;
  }
  return h;
}

// Reads up to len bytes from the current position; fewer only at the end of the file.
size_t ReadUpTo(HANDLE h, uint8_t* buf, size_t len, const std::string& what) {
  size_t got = 0;
  while (got < len) {
    DWORD want = static_cast<DWORD>(std::min<size_t>(len - got, 1u << 30));
    DWORD n = 0;
    if (!ReadFile(h, buf + got, want, &n, nullptr)) ThrowWin("ReadFile", what, GetLastError());
    if (n == 0) break;
    got += n;
  }
  return got;
}

// The whole file, refusing more than max_bytes before reading (by its size) and after (one
// byte more than that size is asked for, to notice a file that grew meanwhile).
std::vector<uint8_t> ReadCapped(HANDLE h, const FileInfo& info, size_t max_bytes, const std::string& what) {
  if (info.size > max_bytes)
    throw Error(code::kTooLarge, "session file " + what + " is " + std::to_string(info.size) +
                                     " bytes, over the cap of " + std::to_string(max_bytes));
  std::vector<uint8_t> buf(static_cast<size_t>(info.size) + 1);
  size_t got = ReadUpTo(h, buf.data(), buf.size(), what);
  if (got > max_bytes) throw Error(code::kTooLarge, "session file " + what + " grew over the cap while read");
  buf.resize(got);
  return buf;
}

// 100 ns ticks from 1601 to 1970.
constexpr uint64_t kEpochTicks = 116444736000000000ULL;
// Never-expiring envelopes (0) and expiries past year 2514 get that far-future time, as on
// POSIX: the sweep then reads the header.
constexpr uint64_t kFarFutureMs = (uint64_t{1} << 34) * 1000;

FILETIME ExpiryAsFileTime(uint64_t expires_at_ms) {
  const uint64_t ms = expires_at_ms == 0 || expires_at_ms >= kFarFutureMs ? kFarFutureMs : expires_at_ms;
  const uint64_t t = kEpochTicks + ms * 10000;
  FILETIME ft;
  ft.dwLowDateTime = static_cast<DWORD>(t);
  ft.dwHighDateTime = static_cast<DWORD>(t >> 32);
  return ft;
}

// The time in ms since 1970, rounded down (0 before 1970).
uint64_t UnixMs(const FILETIME& ft) {
  const uint64_t t = (static_cast<uint64_t>(ft.dwHighDateTime) << 32) | ft.dwLowDateTime;
  return t < kEpochTicks ? 0 : (t - kEpochTicks) / 10000;
}

// A writer locks its temp file from creation until the rename is done and its handle closed;
// a dead writer's lock goes with its process. The lock sits far past any data: byte-range
// locks are mandatory on Windows, and this one must never stand in the way of a read.
bool LockTempRange(HANDLE h) {
  OVERLAPPED ov{};
  ov.OffsetHigh = 0x7FFFFFFF;
  return LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov) != 0;
}

bool DeletePending(HANDLE h) {
  FILE_STANDARD_INFO si;
  return GetFileInformationByHandleEx(h, FileStandardInfo, &si, sizeof si) && si.DeletePending;
}

// Calls fn(name, find data) for each entry of dir except "." and "..".
template <typename Fn>
void ForEachEntry(const std::string& dir, Fn fn) {
  WIN32_FIND_DATAW fd;
  HANDLE find = FindFirstFileExW((NormalDir(dir) + L"\\*").c_str(), FindExInfoBasic, &fd, FindExSearchNameMatch,
                                 nullptr, FIND_FIRST_EX_LARGE_FETCH);
  if (find == INVALID_HANDLE_VALUE) {
    DWORD err = GetLastError();
    if (err == ERROR_FILE_NOT_FOUND) return;
    ThrowWin("FindFirstFile", dir, err);
  }
  struct Close {
    HANDLE h;
    ~Close() { FindClose(h); }
  } close_find{find};
  do {
    std::string name = Narrow(fd.cFileName, wcslen(fd.cFileName));
    if (name != "." && name != "..") fn(name, fd);
  } while (FindNextFileW(find, &fd));
  DWORD err = GetLastError();
  if (err != ERROR_NO_MORE_FILES) ThrowWin("FindNextFile", dir, err);
}

// A plain file as far as the listing can tell (no directory, no reparse point).
bool PlainEntry(const WIN32_FIND_DATAW& fd) {
  return !(fd.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT));
}

bool ReservedDeviceName(const std::string& name) {
  std::string base = name.substr(0, name.find('.'));
  for (char& c : base) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  static const char* const kReserved[] = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"};
  for (const char* r : kReserved) {
    if (base == r) return true;
  }
  return base.size() == 4 && (base.rfind("COM", 0) == 0 || base.rfind("LPT", 0) == 0) && base[3] >= '0' &&
         base[3] <= '9';
}

// ---- resolving the directory path -------------------------------------------------------
//
// The path is walked from its root one component at a time (as POSIX does from '/'); each
// existing component is opened without following a reparse point and held without
// FILE_SHARE_DELETE until the next one is open, so none can be renamed or swapped for a link
// while the walk passes. A symlink or junction anywhere on the path is refused: POSIX follows
// symlinks in parents nobody else can change, but which user may retarget a reparse point is
// not told by its parent's DACL, and refusing them all keeps the rule simple. Missing
// components are created private when create is set. Returns the last directory's handle
// (FILE_LIST_DIRECTORY | READ_CONTROL, no FILE_SHARE_DELETE: the path keeps naming it).
Handle OpenDirWalking(const std::string& path, bool create) {
  const std::wstring given = NormalDir(path);
  DWORD n = GetFullPathNameW(given.c_str(), 0, nullptr, nullptr);
  std::wstring dir(n ? n : 1, L'\0');
  n = n ? GetFullPathNameW(given.c_str(), n, dir.data(), nullptr) : 0;
  if (n == 0) ThrowWin("GetFullPathName", path, GetLastError());
  dir.resize(n);
  while (dir.size() > 1 && IsSep(dir.back()) && !(dir.size() == 3 && dir[1] == L':')) dir.pop_back();
  PrivateSd sd(true);
  Handle held;
  for (size_t pos = RootLength(dir), end; pos < dir.size(); pos = end + 1) {
    end = dir.find(L'\\', pos);
    if (end == std::wstring::npos) end = dir.size();
    if (end == pos) continue;  // a doubled separator
    const bool last = end == dir.size();
    const std::wstring part = dir.substr(0, end);
    const std::string where =
        last ? "session directory " + path
             : "directory " + Narrow(part.data(), part.size()) + " on the path of session directory " + path;
    if (create && !CreateDirectoryW(part.c_str(), sd.attrs())) {
      DWORD err = GetLastError();
      if (err != ERROR_ALREADY_EXISTS && err != ERROR_ACCESS_DENIED) ThrowWin("CreateFile", where, err);
    }
    const DWORD access = FILE_READ_ATTRIBUTES | SYNCHRONIZE | (last ? FILE_LIST_DIRECTORY | READ_CONTROL : 0);
    Handle h(CreateFileW(part.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_EXISTING,
                         FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
    const DWORD by_path = PathAttributes(part);
    if (IsReparse(by_path)) throw Error(code::kUnsafePath, where + " is a symlink or junction");
    DWORD attrs;
    if (h.ok()) {
      BY_HANDLE_FILE_INFORMATION bi;
      if (!GetFileInformationByHandle(h.h, &bi)) ThrowWin("GetFileInformationByHandle", where, GetLastError());
      attrs = bi.dwFileAttributes;
    } else {
      DWORD err = GetLastError();
      // A parent we may not open (another user's, or held without sharing by someone): judged
      // by what its listing says. The last directory must open.
      if (last || by_path == INVALID_FILE_ATTRIBUTES || (err != ERROR_ACCESS_DENIED && err != ERROR_SHARING_VIOLATION))
        ThrowWin("CreateFile", last ? path : Narrow(part.data(), part.size()), err);
      attrs = by_path;
    }
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) throw Error(code::kUnsafePath, where + " is a symlink or junction");
    if (!(attrs & FILE_ATTRIBUTE_DIRECTORY)) {
      if (last) throw Error(code::kUnsafePath, where + " is not a directory");
      ThrowWin("CreateFile", Narrow(part.data(), part.size()), ERROR_DIRECTORY);
    }
    // The next one is open: the one before may go (NTFS refuses to rename a directory with a
    // handle open beneath it, so an open child pins its parents' names).
    if (h.ok()) held = std::move(h);
  }
  if (!held.ok()) {
    // The path is a root ("C:\\"): nothing to walk.
    held = Handle(CreateFileW(dir.c_str(), FILE_LIST_DIRECTORY | FILE_READ_ATTRIBUTES | READ_CONTROL | SYNCHRONIZE,
                              FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_EXISTING,
                              FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
    if (!held.ok()) ThrowWin("CreateFile", path, GetLastError());
  }
  return held;
}

}  // namespace

// ---- the interface ----------------------------------------------------------------------

void FileLock::Release() {
  if (fd_ >= 0) {
    OVERLAPPED ov{};
    UnlockFileEx(H(fd_), 0, 1, 0, &ov);
    _close(fd_);
    fd_ = -1;
  }
}

// Windows has no uid: ownership is the token's user SID (see Me()); euid_ goes unused.
unsigned PrivateDir::EffectiveUid() { return 0; }

void PrivateDir::CheckName(const std::string& name) {
  if (name.empty() || name.size() > 255) throw Error(code::kInvalidArg, "file name must be 1 to 255 bytes");
  for (char c : name) {
    if (c == '/' || c == '\\' || c == ':' || c == '*' || c == '?' || c == '"' || c == '<' || c == '>' || c == '|' ||
        static_cast<unsigned char>(c) < 32)
      throw Error(code::kInvalidArg, "file name must not contain / \\ : * ? \" < > | or control characters");
  }
  if (name[0] == '.') throw Error(code::kInvalidArg, "file name must not start with '.'");
  if (name.back() == '.' || name.back() == ' ') throw Error(code::kInvalidArg, "file name must not end in '.' or ' '");
  if (EndsWith(name, kLockSuffix)) throw Error(code::kInvalidArg, "file name must not end with .lock");
  if (ReservedDeviceName(name)) throw Error(code::kInvalidArg, "file name must not be a Windows device name");
}

PrivateDir::PrivateDir(const std::string& path, bool create, bool remove_stale_temps) : path_(path) {
  if (path.empty() || path.find('\0') != std::string::npos)
    throw Error(code::kInvalidArg, "directory path must be non-empty and contain no NUL");
  Handle h = OpenDirWalking(path, create);
  fd_ = ToFd(h, path);
  try {
    Check();
    BY_HANDLE_FILE_INFORMATION bi;
    if (!GetFileInformationByHandle(H(fd_), &bi)) ThrowWin("GetFileInformationByHandle", path_, GetLastError());
    id_ = std::to_string(bi.dwVolumeSerialNumber) + ":" +
          std::to_string((static_cast<uint64_t>(bi.nFileIndexHigh) << 32) | bi.nFileIndexLow);
    if (remove_stale_temps) RemoveStaleTemps();
  } catch (...) {
    _close(fd_);
    fd_ = -1;
    throw;
  }
}

PrivateDir::~PrivateDir() {
  if (fd_ >= 0) _close(fd_);
}

void PrivateDir::Check() const {
  BY_HANDLE_FILE_INFORMATION bi;
  if (!GetFileInformationByHandle(H(fd_), &bi)) ThrowWin("GetFileInformationByHandle", path_, GetLastError());
  if ((bi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) || IsReparse(PathAttributes(NormalDir(path_))))
    throw Error(code::kUnsafePath, "session directory " + path_ + " is a symlink or junction");
  if (!(bi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))
    throw Error(code::kUnsafePath, "session directory " + path_ + " is not a directory");
  CheckOwnedAndPrivate(H(fd_), "session directory " + path_);
}

bool PrivateDir::WriteAtomic(const std::string& name, const uint8_t* data, size_t len, bool existing_only,
                             std::optional<uint64_t> expires_at) const {
  CheckName(name);
  Check();
  std::string tmp;
  const int fd = CreateLockedTemp(name, &tmp);
  const HANDLE h = H(fd);
  const std::wstring wtmp = Child(path_, tmp), wname = Child(path_, name);
  const std::string what = path_ + "\\" + name;
  bool open = true;
  try {
    while (len > 0) {
      DWORD n = 0;
      DWORD want = static_cast<DWORD>(std::min<size_t>(len, 1u << 30));
      if (!WriteFile(h, data, want, &n, nullptr)) ThrowWin("WriteFile", what, GetLastError());
      data += n;
      len -= n;
    }
    const bool synced = SyncWrites();
    if (synced && !FlushFileBuffers(h)) ThrowWin("FlushFileBuffers", what, GetLastError());
    if (existing_only && GetFileAttributesW(wname.c_str()) == INVALID_FILE_ATTRIBUTES &&
        (GetLastError() == ERROR_FILE_NOT_FOUND || GetLastError() == ERROR_PATH_NOT_FOUND)) {
      DeleteFileW(wtmp.c_str());  // gone when we close it, still locked until then
      open = false;
      _close(fd);
      return false;
    }
    // WRITE_THROUGH: returns once the rename is on disk (the directory fsync of POSIX).
    if (!RetryBusy([&] {
          const DWORD through = synced ? MOVEFILE_WRITE_THROUGH : 0;
          return MoveFileExW(wtmp.c_str(), wname.c_str(), MOVEFILE_REPLACE_EXISTING | through) != 0;
        }))
      ThrowWin("MoveFileEx", what, GetLastError());
    // The expiry as the last-write time, for the sweep, set through our handle once the file is
    // in place: a temp left by a crash keeps its write time. Best effort, as on POSIX: where it
    // is missing the sweep reads the header.
    if (expires_at) {
      const FILETIME ft = ExpiryAsFileTime(*expires_at);
      SetFileTime(h, nullptr, nullptr, &ft);
    }
    // Closed (and so unlocked) only after the rename: until then the temp file is ours.
    open = false;
    if (_close(fd) != 0) ThrowWin("CloseHandle", what, GetLastError());
  } catch (...) {
    if (open) {
      DWORD err = GetLastError();
      DeleteFileW(wtmp.c_str());
      _close(fd);
      SetLastError(err);
    }
    throw;
  }
  return true;
}

// A fresh temp file for name, created with our DACL and locked (LockTempRange) by us; its
// handle as a CRT descriptor. The handle shares read (readers open the file once it has its
// name) and delete (MoveFileExW needs it). A cleaner can take the lock only in the instant
// between CreateFileW and LockFileEx: it then marks the file for deletion, which we see, and
// we start over with a new name.
int PrivateDir::CreateLockedTemp(const std::string& name, std::string* tmp) const {
  PrivateSd sd(false);
  for (int attempt = 0; attempt < 8; attempt++) {
    uint8_t rnd[8];
    crypto::RandomBytes(rnd, sizeof rnd);
    char hex[17];
    for (int i = 0; i < 8; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    *tmp = "." + name + "." + hex + kTempSuffix;
    // CREATE_NEW fails on anything already there, a link included (O_CREAT | O_EXCL).
    Handle h(CreateFileW(Child(path_, *tmp).c_str(), GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_DELETE, sd.attrs(),
                         CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr));
    if (!h.ok()) ThrowWin("CreateFile", path_ + "\\" + *tmp, GetLastError());
    if (LockTempRange(h.h) && !DeletePending(h.h)) return ToFd(h, path_ + "\\" + *tmp);
  }
  throw Error(code::kIo, "could not create a locked temp file in " + path_);
}

std::optional<std::vector<uint8_t>> PrivateDir::Read(const std::string& name, size_t max_bytes) const {
  CheckName(name);
  Check();
  FileInfo info;
  Handle h = OpenEntry(path_, name, GENERIC_READ, &info);
  if (!h.ok()) return std::nullopt;
  return ReadCapped(h.h, info, max_bytes, path_ + "\\" + name);
}

OpenFileResult PrivateDir::OpenFile(const KeyRing& ring, const std::string& name, std::string_view context,
                                    size_t max_bytes, uint64_t now, unsigned flags) const {
  CheckName(name);
  Check();
  OpenFileResult r;
  FileInfo info;
  Handle h = OpenEntry(path_, name, GENERIC_READ, &info);
  if (!h.ok()) return r;
  const std::string what = path_ + "\\" + name;
  try {
    std::vector<uint8_t> buf = ReadCapped(h.h, info, max_bytes, what);
    h = Handle();  // closed before any removal below
    // Expiry comes from the header before any decryption; a forged header still fails the tag.
    r.opened.header = ParseHeader(buf.data(), buf.size(), kMinEnvelope);
    if (r.opened.header.ExpiredAt(now)) {
      if (flags & kRemoveExpired) RemoveIfSame(name, IdOf(info), flags & kLockHeld);
      r.status = OpenFileResult::kExpired;
      return r;
    }
    r.opened = Open(ring, buf.data(), buf.size(), context, max_bytes);
    r.status = OpenFileResult::kOk;
    return r;
  } catch (const Error& e) {
    if ((flags & kRemoveInvalid) && strcmp(e.code(), code::kIo) != 0 && strcmp(e.code(), code::kCrypto) != 0) {
      h = Handle();
      RemoveIfSame(name, IdOf(info), flags & kLockHeld);
    }
    throw;
  }
}

// No read on Windows is known not to wait for the disk (nowait::Available() is false there):
// every async read goes to the pool.
InlineRead PrivateDir::TryOpenFileInline(const KeyRing&, const std::string& name, std::string_view, size_t, uint64_t,
                                         unsigned, nowait::Mode, OpenFileResult* out) const {
  CheckName(name);
  *out = OpenFileResult{};
  return InlineRead::kWouldBlock;
}

std::optional<Header> PrivateDir::Peek(const std::string& name) const {
  CheckName(name);
  Check();
  return ReadHeader(name, nullptr);
}

bool PrivateDir::Remove(const std::string& name) const {
  CheckName(name);
  Check();
  const std::wstring w = Child(path_, name);
  if (RetryBusy([&] { return DeleteFileW(w.c_str()) != 0; })) return true;
  DWORD err = GetLastError();
  if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) return false;
  ThrowWin("DeleteFile", path_ + "\\" + name, err);
}

std::vector<std::string> PrivateDir::List() const {
  Check();
  std::vector<std::string> names;
  ForEachEntry(path_, [&](const std::string& name, const WIN32_FIND_DATAW& fd) {
    if (name[0] == '.' || EndsWith(name, kLockSuffix) || !PlainEntry(fd)) return;
    names.push_back(name);
  });
  return names;
}

bool PrivateDir::RemoveIfStaleTemp(const std::string& name) const {
  if (name.size() < 2 || name[0] != '.' || !EndsWith(name, kTempSuffix)) return false;
  const std::wstring w = Child(path_, name);
  // Read access: a lock needs it (a live writer's handle shares read).
  Handle h(CreateFileW(w.c_str(), GENERIC_READ | DELETE | READ_CONTROL | FILE_READ_ATTRIBUTES,
                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                       FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!h.ok()) return false;
  BY_HANDLE_FILE_INFORMATION bi;
  if (!GetFileInformationByHandle(h.h, &bi) ||
      (bi.dwFileAttributes & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY)) ||
      IsReparse(PathAttributes(w)) || GetFileType(h.h) != FILE_TYPE_DISK)
    return false;
  try {
    CheckOwnedAndPrivate(h.h, "temp file " + path_ + "\\" + name);
  } catch (const Error&) {
    return false;  // not ours: left alone
  }
  // A live writer holds the lock until its rename; a dead one's lock went with its process.
  if (!LockTempRange(h.h)) return false;
  // Deleted through this very handle (so it is still the file we judged), once it closes.
  FILE_DISPOSITION_INFO del{TRUE};
  return SetFileInformationByHandle(h.h, FileDispositionInfo, &del, sizeof del) != 0;
}

void PrivateDir::ForEachPlainFile(const std::function<void(const std::string&, uint64_t)>& fn) const {
  ForEachEntry(path_, [&](const std::string& name, const WIN32_FIND_DATAW& fd) {
    if (PlainEntry(fd)) fn(name, UnixMs(fd.ftLastWriteTime));
  });
}

// WriteAtomic sets each envelope's last-write time to its expiry, and the listing carries it: a
// file still ahead is passed by on the listing alone. Anything else is judged by its header, so
// a forged time can delay a removal but never remove a live session.
bool PrivateDir::StampedAfter(const std::string&, uint64_t listed_expiry_ms, uint64_t now) const {
  return listed_expiry_ms > now;
}

std::optional<Header> PrivateDir::ReadHeader(const std::string& name, FileId* id) const {
  FileInfo info;
  Handle h = OpenEntry(path_, name, GENERIC_READ, &info);
  if (!h.ok()) return std::nullopt;
  if (id) *id = IdOf(info);
  uint8_t buf[kHeaderSize];
  size_t got = ReadUpTo(h.h, buf, sizeof buf, path_ + "\\" + name);
  return ParseHeader(buf, got, kHeaderSize);
}

// Deleted through a handle on that very file, once its identity is checked on the handle.
bool PrivateDir::UnlinkIfSame(const std::string& name, const FileId& id) const {
  FileInfo now;
  Handle h;
  try {
    h = OpenEntry(path_, name, DELETE, &now);
  } catch (const Error&) {
    return false;  // no longer a file of ours: not ours to remove
  }
  if (!h.ok() || IdOf(now).volume != id.volume || IdOf(now).index != id.index) return false;
  FILE_DISPOSITION_INFO del{TRUE};
  return SetFileInformationByHandle(h.h, FileDispositionInfo, &del, sizeof del) != 0;
}

// NTFS journals its directory changes; Windows has no fsync of a directory to ask for.
void PrivateDir::SyncDirQuietly() const {}

std::unique_ptr<FileLock> PrivateDir::LockFile(const std::string& name, bool nonblocking) const {
  CheckName(name);
  Check();
  const std::string lock_name = name + kLockSuffix;
  const std::string what = "lock file " + path_ + "\\" + lock_name;
  const std::wstring wlock = Child(path_, lock_name);
  PrivateSd sd(false);
  Handle h(CreateFileW(wlock.c_str(), GENERIC_READ | GENERIC_WRITE,
                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, sd.attrs(), OPEN_ALWAYS,
                       FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
  if (!h.ok()) {
    DWORD err = GetLastError();
    DWORD attrs = PathAttributes(wlock);
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY)))
      throw Error(code::kUnsafePath, what + " is not a regular file of ours");
    ThrowWin("CreateFile", what, err);
  }
  BY_HANDLE_FILE_INFORMATION bi;
  if (!GetFileInformationByHandle(h.h, &bi)) ThrowWin("GetFileInformationByHandle", what, GetLastError());
  if (bi.dwFileAttributes & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY) ||
      IsReparse(PathAttributes(wlock)) || GetFileType(h.h) != FILE_TYPE_DISK)
    throw Error(code::kUnsafePath, what + " is not a regular file of ours");
  CheckOwnedAndPrivate(h.h, what);
  // A synchronous handle: LockFileEx waits until the lock is ours (unless nonblocking).
  OVERLAPPED ov{};
  const DWORD flags = LOCKFILE_EXCLUSIVE_LOCK | (nonblocking ? LOCKFILE_FAIL_IMMEDIATELY : 0);
  if (!LockFileEx(h.h, flags, 0, 1, 0, &ov)) {
    const DWORD err = GetLastError();
    if (nonblocking && (err == ERROR_LOCK_VIOLATION || err == ERROR_IO_PENDING)) return nullptr;
    ThrowWin("LockFileEx", what, err);
  }
  return std::make_unique<FileLock>(ToFd(h, what));
}

// ---- for the tests ------------------------------------------------------------------------

std::string win::PrivateSddl(bool directory) {
  PrivateSd sd(directory);
  return ToSddl(sd.sd());
}

std::string win::SddlOfPath(const std::string& path) {
  Handle h(CreateFileW(NormalDir(path).c_str(), READ_CONTROL, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                       nullptr, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
  if (!h.ok()) ThrowWin("CreateFile", path, GetLastError());
  PSECURITY_DESCRIPTOR sd = nullptr;
  DWORD rc = GetSecurityInfo(h.h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, nullptr,
                             nullptr, nullptr, nullptr, &sd);
  if (rc != ERROR_SUCCESS) ThrowWin("GetSecurityInfo", path, rc);
  std::string s;
  try {
    s = ToSddl(sd);
  } catch (...) {
    LocalFree(sd);
    throw;
  }
  LocalFree(sd);
  return s;
}

}  // namespace sealed

#endif  // _WIN32
