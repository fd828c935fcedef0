#include "private_dir.h"

#include "errors.h"

#ifdef _WIN32
// Private files rely on POSIX ownership, modes and *at() calls. A Windows port (ACLs,
// ReplaceFileW) is planned; until then every operation says so instead of doing less.
namespace sealed {
namespace {
[[noreturn]] void Unsupported() { throw Error(code::kIo, "private session files are not supported on Windows yet"); }
}  // namespace
void FileLock::Release() {}
PrivateDir::PrivateDir(const std::string&, bool) { Unsupported(); }
PrivateDir::~PrivateDir() {}
void PrivateDir::Check() const { Unsupported(); }
bool PrivateDir::WriteAtomic(const std::string&, const uint8_t*, size_t, bool) const { Unsupported(); }
std::optional<std::vector<uint8_t>> PrivateDir::Read(const std::string&, size_t) const { Unsupported(); }
bool PrivateDir::SealToFile(const KeyRing&, const std::string&, const uint8_t*, size_t, std::string_view, uint64_t,
                            uint64_t, bool) const { Unsupported(); }
OpenFileResult PrivateDir::OpenFile(const KeyRing&, const std::string&, std::string_view, size_t, uint64_t,
                                    unsigned) const { Unsupported(); }
std::optional<Header> PrivateDir::Peek(const std::string&) const { Unsupported(); }
bool PrivateDir::Remove(const std::string&) const { Unsupported(); }
std::vector<std::string> PrivateDir::List() const { Unsupported(); }
SweepStats PrivateDir::Sweep(uint64_t) const { Unsupported(); }
std::unique_ptr<FileLock> PrivateDir::Lock(const std::string&) const { Unsupported(); }
void PrivateDir::CheckName(const std::string&) { Unsupported(); }
}  // namespace sealed
#else

#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>

namespace sealed {

namespace {

constexpr const char* kLockSuffix = ".lock";
constexpr const char* kTempSuffix = ".tmp";

bool EndsWith(const std::string& s, const char* suffix) {
  size_t n = strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

int RetryOpenAt(int dirfd, const char* name, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = openat(dirfd, name, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

void CloseQuietly(int fd) {
  if (fd >= 0) close(fd);
}

struct FdGuard {
  int fd;
  ~FdGuard() { CloseQuietly(fd); }
};

// Refuses what another user could have planted or could change under us.
void CheckOwnedAndPrivate(const struct stat& st, const std::string& what) {
  if (st.st_uid != geteuid())
    throw Error(code::kUnsafePath, what + " is owned by uid " + std::to_string(st.st_uid) + ", not by us (uid " +
                                       std::to_string(geteuid()) + ")");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    throw Error(code::kUnsafePath, what + " is writable by group or others");
}

void WriteAll(int fd, const uint8_t* data, size_t len, const std::string& what) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowIo("write", what, errno);
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
}

// Reads up to len bytes at offset; returns how many were read (short at end of file).
// known_size is the size fstat reported: a short read that has reached it is the end of the
// file, so no second read is made just to see 0 (a short read before it, as some FUSE file
// systems do, still reads on).
size_t ReadUpTo(int fd, uint8_t* buf, size_t len, off_t offset, const std::string& what,
                size_t known_size = SIZE_MAX) {
  size_t got = 0;
  while (got < len) {
    const size_t want = len - got;
    ssize_t n = pread(fd, buf + got, want, offset + static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowIo("read", what, errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < want && got >= known_size) break;
  }
  return got;
}

// The whole file behind fd, refusing more than max_bytes before reading (by fstat's size) and
// after (one byte more than that size is asked for, to notice a file that grew meanwhile).
std::vector<uint8_t> ReadCapped(int fd, const struct stat& st, size_t max_bytes, const std::string& what) {
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    throw Error(code::kTooLarge, "session file " + what + " is " + std::to_string(st.st_size) +
                                     " bytes, over the cap of " + std::to_string(max_bytes));
  std::vector<uint8_t> buf(static_cast<size_t>(st.st_size) + 1);
  size_t got = ReadUpTo(fd, buf.data(), buf.size(), 0, what, static_cast<size_t>(st.st_size));
  if (got > max_bytes) throw Error(code::kTooLarge, "session file " + what + " grew over the cap while read");
  buf.resize(got);
  return buf;
}

void MakeDirs(const std::string& path) {
  // mkdir -p, each created component 0700. Existing components are left as they are:
  // only the final directory must be private (a parent may be /tmp, or a symlink like
  // macOS's /tmp -> /private/tmp).
  for (size_t pos = 1; pos <= path.size(); pos++) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) ThrowIo("mkdir", part, errno);
  }
}

}  // namespace

void FileLock::Release() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
    close(fd_);
    fd_ = -1;
  }
}

void PrivateDir::CheckName(const std::string& name) {
  if (name.empty() || name.size() > 255) throw Error(code::kInvalidArg, "file name must be 1 to 255 bytes");
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
    throw Error(code::kInvalidArg, "file name must not contain '/' or NUL");
  if (name[0] == '.') throw Error(code::kInvalidArg, "file name must not start with '.'");
  if (EndsWith(name, kLockSuffix)) throw Error(code::kInvalidArg, "file name must not end with .lock");
}

PrivateDir::PrivateDir(const std::string& path, bool create) : path_(path) {
  if (path.empty() || path.find('\0') != std::string::npos)
    throw Error(code::kInvalidArg, "directory path must be non-empty and contain no NUL");
  // Without trailing slashes: "link/" would make open() follow a final symlink despite O_NOFOLLOW.
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  bool created = false;
  if (create) {
    // Create the last component ourselves so we know whether to set its mode.
    size_t slash = trimmed.find_last_of('/');
    if (slash != std::string::npos && slash > 0) MakeDirs(trimmed.substr(0, slash));
    if (mkdir(trimmed.c_str(), 0700) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      ThrowIo("mkdir", path, errno);
    }
  }
  do {
    fd_ = open(trimmed.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) {
    int err = errno;
    // O_NOFOLLOW on a symlink gives ELOOP (Linux) or ENOTDIR with O_DIRECTORY.
    struct stat lst;
    if ((err == ELOOP || err == ENOTDIR) && lstat(trimmed.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
      throw Error(code::kUnsafePath, "session directory " + path + " is a symlink");
    if (err == ENOTDIR) throw Error(code::kUnsafePath, "session directory " + path + " is not a directory");
    ThrowIo("open", path, err);
  }
  try {
    // The umask may have taken bits off mkdir's 0700; set it exactly (and only on a new dir).
    if (created && fchmod(fd_, 0700) != 0) ThrowIo("chmod", path, errno);
    Check();
    RemoveStaleTemps();
  } catch (...) {
    close(fd_);
    fd_ = -1;
    throw;
  }
}

PrivateDir::~PrivateDir() { CloseQuietly(fd_); }

void PrivateDir::Check() const {
  struct stat st;
  if (fstat(fd_, &st) != 0) ThrowIo("fstat", path_, errno);
  if (!S_ISDIR(st.st_mode)) throw Error(code::kUnsafePath, "session directory " + path_ + " is not a directory");
  CheckOwnedAndPrivate(st, "session directory " + path_);
}

// A fresh temp file for name, created and flock()ed by us. The lock is what tells a live
// writer's temp file from a dead one's (RemoveStaleTemps takes only unlocked ones), so it is
// held from just after creation until the rename. A cleaner can take the lock only in the
// instant between openat and flock: we then find the name gone (or locked) and start over.
int PrivateDir::CreateLockedTemp(const std::string& name, std::string* tmp) const {
  for (int attempt = 0; attempt < 8; attempt++) {
    uint8_t rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) throw Error(code::kCrypto, "no randomness for a temp name");
    char hex[17];
    for (int i = 0; i < 8; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    *tmp = "." + name + "." + hex + kTempSuffix;
    int fd = RetryOpenAt(fd_, tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd < 0) ThrowIo("open", path_ + "/" + *tmp, errno);
    int rc;
    do {
      rc = flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    struct stat mine, named;
    if (rc == 0 && fstat(fd, &mine) == 0 && fstatat(fd_, tmp->c_str(), &named, AT_SYMLINK_NOFOLLOW) == 0 &&
        mine.st_dev == named.st_dev && mine.st_ino == named.st_ino)
      return fd;
    close(fd);  // taken by a cleaner in that instant: it removes the file; try a new name
  }
  throw Error(code::kIo, "could not create a locked temp file in " + path_);
}

bool PrivateDir::WriteAtomic(const std::string& name, const uint8_t* data, size_t len, bool existing_only) const {
  CheckName(name);
  Check();
  std::string tmp;
  const std::string what = path_ + "/" + name;
  int fd = CreateLockedTemp(name, &tmp);
  try {
    // Exactly 0600 whatever the umask (it can only have removed bits).
    if (fchmod(fd, 0600) != 0) ThrowIo("chmod", what, errno);
    WriteAll(fd, data, len, what);
    if (fsync(fd) != 0) ThrowIo("fsync", what, errno);
    struct stat st;
    if (existing_only && fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
      unlinkat(fd_, tmp.c_str(), 0);
      CloseQuietly(fd);
      return false;
    }
    if (renameat(fd_, tmp.c_str(), fd_, name.c_str()) != 0) ThrowIo("rename", what, errno);
    // Closed (and so unlocked) only after the rename: until then the temp file is ours.
    int rc = close(fd);
    fd = -1;
    if (rc != 0) ThrowIo("close", what, errno);
  } catch (...) {
    if (fd >= 0) unlinkat(fd_, tmp.c_str(), 0);
    CloseQuietly(fd);
    throw;
  }
  // The rename is durable only once the directory entry is on disk.
  if (fsync(fd_) != 0 && errno != EINVAL) ThrowIo("fsync", path_, errno);
  return true;
}

int PrivateDir::OpenForRead(const std::string& name, struct stat* st) const {
  const std::string what = path_ + "/" + name;
  // O_NONBLOCK: a FIFO planted under our name must not hang the thread on open.
  int fd = RetryOpenAt(fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    if (errno == ELOOP) throw Error(code::kUnsafePath, "session file " + what + " is a symlink");
    ThrowIo("open", what, errno);
  }
  if (fstat(fd, st) != 0) {
    int err = errno;
    close(fd);
    ThrowIo("fstat", what, err);
  }
  if (!S_ISREG(st->st_mode)) {
    close(fd);
    throw Error(code::kUnsafePath, "session file " + what + " is not a regular file");
  }
  try {
    CheckOwnedAndPrivate(*st, "session file " + what);
  } catch (...) {
    close(fd);
    throw;
  }
  return fd;
}

std::optional<std::vector<uint8_t>> PrivateDir::Read(const std::string& name, size_t max_bytes) const {
  CheckName(name);
  Check();
  struct stat st;
  FdGuard g{OpenForRead(name, &st)};
  if (g.fd < 0) return std::nullopt;
  return ReadCapped(g.fd, st, max_bytes, path_ + "/" + name);
}

bool PrivateDir::SealToFile(const KeyRing& ring, const std::string& name, const uint8_t* plaintext, size_t len,
                            std::string_view context, uint64_t created_at, uint64_t expires_at,
                            bool existing_only) const {
  CheckName(name);
  std::vector<uint8_t> env = Seal(ring, plaintext, len, context, created_at, expires_at);
  return WriteAtomic(name, env.data(), env.size(), existing_only);
}

void PrivateDir::RemoveIfSame(const std::string& name, const struct stat& st) const {
  struct stat now;
  if (fstatat(fd_, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st.st_dev &&
      now.st_ino == st.st_ino) {
    unlinkat(fd_, name.c_str(), 0);
  }
}

OpenFileResult PrivateDir::OpenFile(const KeyRing& ring, const std::string& name, std::string_view context,
                                    size_t max_bytes, uint64_t now, unsigned flags) const {
  CheckName(name);
  Check();
  OpenFileResult r;
  struct stat st;
  FdGuard g{OpenForRead(name, &st)};
  if (g.fd < 0) return r;
  const std::string what = path_ + "/" + name;
  try {
    std::vector<uint8_t> buf = ReadCapped(g.fd, st, max_bytes, what);
    const size_t got = buf.size();
    // Expiry comes from the header before any decryption; a forged header still fails the
    // tag below, so it can shorten nothing but its own life.
    r.opened.header = ParseHeader(buf.data(), got, kMinEnvelope);
    if (r.opened.header.ExpiredAt(now)) {
      if (flags & kRemoveExpired) RemoveIfSame(name, st);
      r.status = OpenFileResult::kExpired;
      return r;
    }
    r.opened = Open(ring, buf.data(), got, context, max_bytes);
    r.status = OpenFileResult::kOk;
    return r;
  } catch (const Error& e) {
    if ((flags & kRemoveInvalid) && strcmp(e.code(), code::kIo) != 0 && strcmp(e.code(), code::kCrypto) != 0)
      RemoveIfSame(name, st);
    throw;
  }
}

std::optional<Header> PrivateDir::Peek(const std::string& name) const {
  CheckName(name);
  Check();
  struct stat st;
  FdGuard g{OpenForRead(name, &st)};
  if (g.fd < 0) return std::nullopt;
  uint8_t buf[kHeaderSize];
  size_t got = ReadUpTo(g.fd, buf, sizeof buf, 0, path_ + "/" + name);
  return ParseHeader(buf, got, kHeaderSize);
}

bool PrivateDir::Remove(const std::string& name) const {
  CheckName(name);
  Check();
  if (unlinkat(fd_, name.c_str(), 0) == 0) return true;
  if (errno == ENOENT) return false;
  ThrowIo("unlink", path_ + "/" + name, errno);
}

namespace {
// Iterates the directory through a duplicate of our descriptor (readdir closes what it owns).
template <typename Fn>
void ForEachEntry(int dirfd, const std::string& path, Fn fn) {
  int dup_fd = RetryOpenAt(dirfd, ".", O_RDONLY | O_DIRECTORY);
  if (dup_fd < 0) ThrowIo("open", path, errno);
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    int err = errno;
    close(dup_fd);
    ThrowIo("opendir", path, err);
  }
  try {
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") fn(name, e->d_type);
      errno = 0;
    }
    if (errno != 0) ThrowIo("readdir", path, errno);
  } catch (...) {
    closedir(d);
    throw;
  }
  closedir(d);
}
}  // namespace

std::vector<std::string> PrivateDir::List() const {
  Check();
  std::vector<std::string> names;
  ForEachEntry(fd_, path_, [&](const std::string& name, unsigned char type) {
    if (name[0] == '.' || EndsWith(name, kLockSuffix)) return;
    if (type != DT_REG && type != DT_UNKNOWN) return;
    names.push_back(name);
  });
  return names;
}

bool PrivateDir::RemoveIfStaleTemp(const std::string& name) const {
  if (name.size() < 2 || name[0] != '.' || !EndsWith(name, kTempSuffix)) return false;
  int fd = RetryOpenAt(fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  FdGuard g{fd};
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) return false;
  // A live writer holds the lock until its rename; a dead one's lock went with its process.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return false;
  struct stat now;
  if (fstatat(fd_, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_dev != st.st_dev ||
      now.st_ino != st.st_ino)
    return false;
  return unlinkat(fd_, name.c_str(), 0) == 0;  // still locked by us: no writer can be using it
}

uint64_t PrivateDir::RemoveStaleTemps() const {
  uint64_t removed = 0;
  try {
    ForEachEntry(fd_, path_, [&](const std::string& name, unsigned char type) {
      if ((type == DT_REG || type == DT_UNKNOWN) && RemoveIfStaleTemp(name)) removed++;
    });
  } catch (const Error&) {
    // Best effort at open: an unreadable listing shows up in the calls that need it.
  }
  return removed;
}

SweepStats PrivateDir::Sweep(uint64_t now) const {
  Check();
  SweepStats s;
  ForEachEntry(fd_, path_, [&](const std::string& name, unsigned char type) {
    if (type != DT_REG && type != DT_UNKNOWN) return;
    if (EndsWith(name, kLockSuffix)) return;
    if (name[0] == '.') {
      RemoveIfStaleTemp(name);  // a temp file whose writer died before its rename
      return;
    }
    s.scanned++;
    struct stat st;
    int fd;
    try {
      fd = OpenForRead(name, &st);
    } catch (const Error&) {
      s.skipped++;  // not ours to judge (symlink, FIFO, foreign owner): left alone
      return;
    }
    if (fd < 0) return;  // removed meanwhile
    FdGuard g{fd};
    uint8_t buf[kHeaderSize];
    size_t got;
    Header h;
    try {
      got = ReadUpTo(fd, buf, sizeof buf, 0, path_ + "/" + name);
      h = ParseHeader(buf, got, kHeaderSize);
    } catch (const Error&) {
      s.skipped++;
      return;
    }
    if (h.ExpiredAt(now)) {
      RemoveIfSame(name, st);
      s.removed++;
    }
  });
  return s;
}

std::unique_ptr<FileLock> PrivateDir::Lock(const std::string& name) const {
  CheckName(name);
  Check();
  const std::string lock_name = name + kLockSuffix;
  int fd = RetryOpenAt(fd_, lock_name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == ELOOP) throw Error(code::kUnsafePath, "lock file " + path_ + "/" + lock_name + " is a symlink");
    ThrowIo("open", path_ + "/" + lock_name, errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    close(fd);
    throw Error(code::kUnsafePath, "lock file " + path_ + "/" + lock_name + " is not a regular file of ours");
  }
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    close(fd);
    ThrowIo("flock", path_ + "/" + lock_name, err);
  }
  return std::make_unique<FileLock>(fd);
}

}  // namespace sealed
#endif
