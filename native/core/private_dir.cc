#include "private_dir.h"

#include "crypto.h"
#include "errors.h"

// POSIX. Windows: private_dir_win.cc (same interface).
#ifndef _WIN32

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>

namespace sealed {

namespace {

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
void CheckOwnedAndPrivate(const struct stat& st, uid_t euid, const std::string& what) {
  if (st.st_uid != euid)
    throw Error(code::kUnsafePath, what + " is owned by uid " + std::to_string(st.st_uid) + ", not by us (uid " +
                                       std::to_string(euid) + ")");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) throw Error(code::kUnsafePath, what + " is writable by group or others");
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
size_t ReadUpTo(int fd, uint8_t* buf, size_t len, off_t offset, const std::string& what, size_t known_size = SIZE_MAX) {
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

// Never-expiring envelopes (0) and expiries past what file systems store get a far-future mtime
// (the kernel clamps it further to the file system's range): the sweep then reads the header.
constexpr int64_t kFarFutureSeconds = int64_t{1} << 34;  // year 2514

struct timespec ExpiryAsTime(uint64_t expires_at_ms) {
  const uint64_t sec = expires_at_ms / 1000;
  if (expires_at_ms == 0 || sec >= static_cast<uint64_t>(kFarFutureSeconds)) return {kFarFutureSeconds, 0};
  return {static_cast<time_t>(sec), static_cast<long>(expires_at_ms % 1000) * 1000000L};
}

FileId IdOf(const struct stat& st) { return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}; }

// The mtime in ms, rounded down.
uint64_t MtimeMs(const struct stat& st) {
  if (st.st_mtim.tv_sec < 0) return 0;
  return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000 + static_cast<uint64_t>(st.st_mtim.tv_nsec) / 1000000;
}

// ----- Resolving a directory path without trusting what others can change -----------------
//
// The path is walked from '/' one component at a time with openat(O_NOFOLLOW), so each step is
// checked on the directory actually held. A directory that someone other than us or root can
// write ("shared") could have any entry swapped, so:
//   - a shared directory without the sticky bit is refused outright;
//   - in a shared sticky directory (like /tmp), an entry is used only when it belongs to us,
//     root or that directory's owner (no one else can rename it), symlinks included: the rule
//     of the kernel's fs.protected_symlinks;
//   - elsewhere symlinks in parents are followed (macOS's /tmp -> /private/tmp); the last
//     component must be a real directory (PrivateDir::Check then wants it ours and private).
// A relative path is taken against the current directory as getcwd() spells it (a path without
// symlinks) and that whole path is walked from '/'. ".." goes up from the directory the walk
// is in, as the kernel does after a symlink.

#ifdef O_PATH
constexpr int kSearchFlags = O_PATH;  // passing through needs search (x) permission only
#else
constexpr int kSearchFlags = O_RDONLY;
#endif
constexpr int kMaxSymlinks = 40;  // as Linux's MAXSYMLINKS: a loop ends in ELOOP

bool WritableByOthers(const struct stat& st) {
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return true;
  return st.st_uid != geteuid() && st.st_uid != 0 && (st.st_mode & S_IWUSR);
}

bool OwnedByTrusted(const struct stat& entry, const struct stat& dir) {
  return entry.st_uid == geteuid() || entry.st_uid == 0 || entry.st_uid == dir.st_uid;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

// Components of p in order, without empty ones and ".".
std::vector<std::string> Components(const std::string& p) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string part = p.substr(start, end - start);
    if (!part.empty() && part != ".") out.push_back(part);
    start = end + 1;
  }
  return out;
}

std::string CurrentDir() {
  std::vector<char> buf(4096);
  while (getcwd(buf.data(), buf.size()) == nullptr) {
    if (errno != ERANGE || buf.size() > (1u << 20)) ThrowIo("getcwd", ".", errno);
    buf.resize(buf.size() * 2);
  }
  return std::string(buf.data());
}

std::string ReadLinkAt(int dirfd, const std::string& name, const std::string& what) {
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
    if (n < 0) ThrowIo("readlink", what, errno);
    if (static_cast<size_t>(n) < buf.size()) return std::string(buf.data(), static_cast<size_t>(n));
    if (buf.size() >= 65536) ThrowIo("readlink", what, ENAMETOOLONG);
    buf.resize(buf.size() * 2);
  }
}

// One directory on the walk: its descriptor, what fstat said of it, and its path for messages.
struct Step {
  int fd;
  struct stat st;
  std::string where;
};

struct Walk {
  std::vector<Step> steps;
  Walk() = default;
  Walk(const Walk&) = delete;
  Walk& operator=(const Walk&) = delete;
  ~Walk() { PopTo(0); }
  void PopTo(size_t n) {
    while (steps.size() > n) {
      CloseQuietly(steps.back().fd);
      steps.pop_back();
    }
  }
  // Takes fd (closing it on failure) with what fstat says of it.
  void Push(int fd, const std::string& where) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      ThrowIo("fstat", where, err);
    }
    steps.push_back({fd, st, where});
  }
};

// Opens path's last directory as described above, creating missing components 0700 when
// create is set; *created tells whether the last one was made here. Returns an O_RDONLY fd.
int OpenDirWalking(const std::string& path, bool create, bool* created) {
  *created = false;
  const std::string full = path[0] == '/' ? path : JoinPath(CurrentDir(), path);
  std::vector<std::string> todo = Components(full);
  std::reverse(todo.begin(), todo.end());  // a stack: the next component is at the back
  Walk walk;
  int root = RetryOpenAt(AT_FDCWD, "/", kSearchFlags | O_DIRECTORY);
  if (root < 0) ThrowIo("open", "/", errno);
  walk.Push(root, "/");
  int links = 0;
  bool last_created = false;
  while (!todo.empty()) {
    const std::string name = todo.back();
    todo.pop_back();
    const bool last = todo.empty();
    last_created = false;
    if (name == "..") {
      walk.PopTo(std::max<size_t>(1, walk.steps.size() - 1));
      continue;
    }
    const Step cur = walk.steps.back();
    const bool shared = WritableByOthers(cur.st);
    if (shared && !(cur.st.st_mode & S_ISVTX))
      throw Error(code::kUnsafePath, "directory " + cur.where + " on the path of session directory " + path +
                                         " is writable by others and not sticky: anyone could swap what it holds");
    const std::string where = JoinPath(cur.where, name);
    struct stat lst;
    bool made = false;
    if (fstatat(cur.fd, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT || !create) ThrowIo("open", last ? path : where, errno);
      if (mkdirat(cur.fd, name.c_str(), 0700) == 0) made = true;
      else if (errno != EEXIST) ThrowIo("mkdir", where, errno);
      if (fstatat(cur.fd, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) ThrowIo("stat", where, errno);
    }
    if (S_ISLNK(lst.st_mode)) {
      if (last) throw Error(code::kUnsafePath, "session directory " + path + " is a symlink");
      if (shared && !OwnedByTrusted(lst, cur.st))
        throw Error(code::kUnsafePath, "symlink " + where + " in the shared directory " + cur.where +
                                           " belongs to uid " + std::to_string(lst.st_uid) +
                                           ", not to us or root: not followed");
      if (++links > kMaxSymlinks) ThrowIo("open", path, ELOOP);
      const std::string target = ReadLinkAt(cur.fd, name, where);
      if (target.empty()) ThrowIo("open", where, ENOENT);
      if (target[0] == '/') walk.PopTo(1);
      std::vector<std::string> more = Components(target);
      for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_back(*it);
      continue;
    }
    if (!S_ISDIR(lst.st_mode)) {
      if (last) throw Error(code::kUnsafePath, "session directory " + path + " is not a directory");
      ThrowIo("open", where, ENOTDIR);
    }
    int fd = RetryOpenAt(cur.fd, name.c_str(), kSearchFlags | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) {
      int err = errno;
      // Swapped for a symlink since the fstatat: O_NOFOLLOW refused it.
      if (err == ELOOP || err == ENOTDIR)
        throw Error(code::kUnsafePath, "directory " + where + " was replaced while the path was checked");
      ThrowIo("open", where, err);
    }
    walk.Push(fd, where);
    const struct stat& st = walk.steps.back().st;
    // O_PATH|O_NOFOLLOW could hand back a link swapped in since the fstatat: only a directory goes on.
    if (!S_ISDIR(st.st_mode))
      throw Error(code::kUnsafePath, "directory " + where + " was replaced while the path was checked");
    if (shared && !OwnedByTrusted(st, cur.st))
      throw Error(code::kUnsafePath, "directory " + where + " in the shared directory " + cur.where +
                                         " belongs to uid " + std::to_string(st.st_uid) +
                                         ", who could swap it: not used");
    last_created = made;
  }
  // The last directory, readable (the walk holds search-only descriptors where it can).
  const Step& end = walk.steps.back();
  int fd = RetryOpenAt(end.fd, ".", O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    int err = errno;
    // Not even ours to read: say why it is refused rather than EACCES.
    if (end.st.st_uid != geteuid())
      throw Error(code::kUnsafePath,
                  "session directory " + path + " is owned by uid " + std::to_string(end.st.st_uid) + ", not by us");
    ThrowIo("open", path, err);
  }
  *created = last_created;
  return fd;
}

}  // namespace

void FileLock::Release() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
    close(fd_);
    fd_ = -1;
  }
}

unsigned PrivateDir::EffectiveUid() { return static_cast<unsigned>(geteuid()); }

void PrivateDir::CheckName(const std::string& name) {
  if (name.empty() || name.size() > 255) throw Error(code::kInvalidArg, "file name must be 1 to 255 bytes");
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
    throw Error(code::kInvalidArg, "file name must not contain '/' or NUL");
  if (name[0] == '.') throw Error(code::kInvalidArg, "file name must not start with '.'");
  if (EndsWith(name, kLockSuffix)) throw Error(code::kInvalidArg, "file name must not end with .lock");
}

PrivateDir::PrivateDir(const std::string& path, bool create, bool remove_stale_temps) : path_(path) {
  if (path.empty() || path.find('\0') != std::string::npos)
    throw Error(code::kInvalidArg, "directory path must be non-empty and contain no NUL");
  // Walked from '/' component by component (OpenDirWalking): no parent that others could swap
  // is trusted, and the last component is never a symlink, trailing slashes or not.
  bool created = false;
  fd_ = OpenDirWalking(path, create, &created);
  try {
    // The umask may have taken bits off mkdir's 0700; set it exactly (and only on a new dir).
    if (created && fchmod(fd_, 0700) != 0) ThrowIo("chmod", path, errno);
    Check();
    struct stat st;
    if (fstat(fd_, &st) != 0) ThrowIo("fstat", path, errno);
    id_ = std::to_string(static_cast<uint64_t>(st.st_dev)) + ":" + std::to_string(static_cast<uint64_t>(st.st_ino));
    if (remove_stale_temps) RemoveStaleTemps();
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
  CheckOwnedAndPrivate(st, euid_, "session directory " + path_);
}

// A fresh temp file for name, created and flock()ed by us. The lock is what tells a live
// writer's temp file from a dead one's (RemoveStaleTemps takes only unlocked ones), so it is
// held from just after creation until the rename. A cleaner can take the lock only in the
// instant between openat and flock: we then find the name gone (or locked) and start over.
int PrivateDir::CreateLockedTemp(const std::string& name, std::string* tmp) const {
  for (int attempt = 0; attempt < 8; attempt++) {
    uint8_t rnd[8];
    crypto::RandomBytes(rnd, sizeof rnd);
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

bool PrivateDir::WriteAtomic(const std::string& name, const uint8_t* data, size_t len, bool existing_only,
                             std::optional<uint64_t> expires_at) const {
  CheckName(name);
  Check();
  std::string tmp;
  const std::string what = path_ + "/" + name;
  const bool synced = SyncWrites();
  int fd = CreateLockedTemp(name, &tmp);
  try {
    // Exactly 0600 whatever the umask (it can only have removed bits).
    if (fchmod(fd, 0600) != 0) ThrowIo("chmod", what, errno);
    WriteAll(fd, data, len, what);
    if (synced && fsync(fd) != 0) ThrowIo("fsync", what, errno);
    struct stat st;
    if (existing_only && fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
      close(fd);
      fd = -1;
      unlinkat(fd_, tmp.c_str(), 0);
      return false;
    }
    if (renameat(fd_, tmp.c_str(), fd_, name.c_str()) != 0) ThrowIo("rename", what, errno);
    // The expiry as the mtime, for the sweep (see Sweep), set through our descriptor once the
    // file is in place. Best effort, and not fsynced: where it is missing or lost in a crash,
    // the sweep reads the header instead.
    if (expires_at) {
      const struct timespec times[2] = {{0, UTIME_OMIT}, ExpiryAsTime(*expires_at)};
      futimens(fd, times);
    }
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
  if (synced) SyncDirGrouped();
  return true;
}

// One fsync of the directory makes every rename made before it started durable, so concurrent
// writers share it (group commit): a writer whose rename came before a running sync started
// waits for the next one, which the first writer to find none running starts on behalf of all
// who asked by then. A writer returns only once a sync that started after its rename succeeded;
// after a failed one it syncs again itself, so a failure is never reported as success.
void PrivateDir::SyncDirGrouped() const {
  std::unique_lock<std::mutex> lock(sync_mu_);
  const uint64_t mine = ++sync_requested_;
  while (sync_done_ < mine && sync_running_) sync_cv_.wait(lock);
  if (sync_done_ >= mine) return;
  sync_running_ = true;
  const uint64_t covers = sync_requested_;
  lock.unlock();
  const int err = fsync(fd_) != 0 ? errno : 0;
  lock.lock();
  sync_running_ = false;
  if (err == 0 || err == EINVAL) sync_done_ = std::max(sync_done_, covers);
  sync_cv_.notify_all();
  lock.unlock();
  if (err != 0 && err != EINVAL) ThrowIo("fsync", path_, err);
}

// The refusals of a file opened for reading (fd open, st its fstat): not a regular file (a
// FIFO, a directory), or not ours and private. Closes fd before throwing.
void PrivateDir::CheckOpened(int fd, const struct stat& st, const std::string& name) const {
  if (S_ISREG(st.st_mode) && st.st_uid == euid_ && !(st.st_mode & (S_IWGRP | S_IWOTH))) return;
  close(fd);
  const std::string what = "session file " + path_ + "/" + name;
  if (!S_ISREG(st.st_mode)) throw Error(code::kUnsafePath, what + " is not a regular file");
  CheckOwnedAndPrivate(st, euid_, what);
}

int PrivateDir::OpenForRead(const std::string& name, struct stat* st) const {
  // O_NONBLOCK: a FIFO planted under our name must not hang the thread on open.
  int fd = RetryOpenAt(fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    if (errno == ELOOP) throw Error(code::kUnsafePath, "session file " + path_ + "/" + name + " is a symlink");
    ThrowIo("open", path_ + "/" + name, errno);
  }
  if (fstat(fd, st) != 0) {
    int err = errno;
    close(fd);
    ThrowIo("fstat", path_ + "/" + name, err);
  }
  CheckOpened(fd, *st, name);
  return fd;
}

// Reads take the directory as it was checked when opened: the descriptor pins that directory,
// and only its owner (us) or root can change its mode or owner afterwards.
std::optional<std::vector<uint8_t>> PrivateDir::Read(const std::string& name, size_t max_bytes) const {
  CheckName(name);
  struct stat st;
  FdGuard g{OpenForRead(name, &st)};
  if (g.fd < 0) return std::nullopt;
  return ReadCapped(g.fd, st, max_bytes, path_ + "/" + name);
}

bool PrivateDir::UnlinkIfSame(const std::string& name, const FileId& id) const {
  struct stat now;
  if (fstatat(fd_, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 || IdOf(now).volume != id.volume ||
      IdOf(now).index != id.index)
    return false;
#ifdef SEALED_TEST_HOOKS
  if (test_hooks::before_unlink) test_hooks::before_unlink(name);
#endif
  return unlinkat(fd_, name.c_str(), 0) == 0;
}

// Best effort, for removals of files that are expired or invalid anyway: one that a power cut
// brings back is refused again by its header or its tag, so a failure here is not an error.
void PrivateDir::SyncDirQuietly() const { fsync(fd_); }

namespace {
// After the bytes are read: expiry from the header before any decryption (a forged header
// still fails the tag, so it can shorten nothing but its own life), then the record.
void DecodeFile(const KeyRing& ring, const std::vector<uint8_t>& buf, std::string_view context, size_t max_bytes,
                uint64_t now, OpenFileResult* r) {
  r->opened.header = ParseHeader(buf.data(), buf.size(), kMinEnvelope);
  if (r->opened.header.ExpiredAt(now)) {
    r->status = OpenFileResult::kExpired;
    return;
  }
  r->opened = Open(ring, buf.data(), buf.size(), context, max_bytes);
  r->status = OpenFileResult::kOk;
}

// Whether OpenFile removes the file it failed on: with kRemoveInvalid, for what the file
// holds (not for an I/O or crypto-library failure).
bool RemovesOnError(const Error& e, unsigned flags) {
  return (flags & kRemoveInvalid) && strcmp(e.code(), code::kIo) != 0 && strcmp(e.code(), code::kCrypto) != 0;
}
}  // namespace

OpenFileResult PrivateDir::OpenFile(const KeyRing& ring, const std::string& name, std::string_view context,
                                    size_t max_bytes, uint64_t now, unsigned flags) const {
  CheckName(name);
  OpenFileResult r;
  struct stat st;
  FdGuard g{OpenForRead(name, &st)};
  if (g.fd < 0) return r;
  try {
    std::vector<uint8_t> buf = ReadCapped(g.fd, st, max_bytes, path_ + "/" + name);
    DecodeFile(ring, buf, context, max_bytes, now, &r);
    if (r.status == OpenFileResult::kExpired && (flags & kRemoveExpired) &&
        RemoveIfSame(name, IdOf(st), flags & kLockHeld))
      SyncDirQuietly();
    return r;
  } catch (const Error& e) {
    if (RemovesOnError(e, flags) && RemoveIfSame(name, IdOf(st), flags & kLockHeld)) SyncDirQuietly();
    throw;
  }
}

InlineRead PrivateDir::TryOpenFileInline(const KeyRing& ring, const std::string& name, std::string_view context,
                                         size_t max_bytes, uint64_t now, unsigned flags, nowait::Mode mode,
                                         OpenFileResult* out) const {
  CheckName(name);
  *out = OpenFileResult{};
  const int fd = nowait::OpenCached(fd_, name.c_str(), mode);
  if (fd < 0) {
    switch (-fd) {
      case ENOENT:  // a cached negative lookup: the file is not there
        return InlineRead::kDone;
      case ELOOP:
        throw Error(code::kUnsafePath, "session file " + path_ + "/" + name + " is a symlink");
      case ENOSYS:  // no openat2 (Linux < 5.6)
      case EPERM:   // a seccomp filter refuses it
      case EINVAL:  // openat2 without RESOLVE_CACHED (Linux 5.6 to 5.11)
      case E2BIG:
        nowait::Disable();
        return InlineRead::kWouldBlock;
      default:  // EAGAIN (not cached), or an error the pool path reports as it always has
        return InlineRead::kWouldBlock;
    }
  }
  FdGuard g{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) return InlineRead::kWouldBlock;
  g.fd = -1;  // CheckOpened closes it when it throws
  CheckOpened(fd, st, name);
  g.fd = fd;
  try {
    if (static_cast<uint64_t>(st.st_size) > max_bytes)
      throw Error(code::kTooLarge, "session file " + path_ + "/" + name + " is " + std::to_string(st.st_size) +
                                       " bytes, over the cap of " + std::to_string(max_bytes));
    const size_t size = static_cast<size_t>(st.st_size);
    std::vector<uint8_t> buf(size + 1);
    const ssize_t n = nowait::PreadNoWait(fd, buf.data(), buf.size(), 0, mode);
    if (n == -ENOSYS || n == -EPERM) nowait::Disable();
    if (n == -EOPNOTSUPP) inline_reads_.store(false, std::memory_order_relaxed);
    // Not cached (EAGAIN), partly cached (short), grown meanwhile, or an error: the pool reads it.
    if (n < 0 || static_cast<size_t>(n) != size) return InlineRead::kWouldBlock;
    buf.resize(size);
    DecodeFile(ring, buf, context, max_bytes, now, out);
  } catch (const Error& e) {
    // A removal is a blocking call: the pool path opens the file again and removes it.
    if (RemovesOnError(e, flags)) return InlineRead::kWouldBlock;
    throw;
  }
  if (out->status == OpenFileResult::kExpired && (flags & kRemoveExpired)) return InlineRead::kWouldBlock;
  return InlineRead::kDone;
}

std::optional<Header> PrivateDir::Peek(const std::string& name) const {
  CheckName(name);
  return ReadHeader(name, nullptr);
}

bool PrivateDir::Remove(const std::string& name) const {
  CheckName(name);
  Check();
  if (unlinkat(fd_, name.c_str(), 0) != 0) {
    if (errno == ENOENT) return false;
    ThrowIo("unlink", path_ + "/" + name, errno);
  }
  // A logout or delete is done only once the directory entry's removal is on disk: else a
  // power cut can bring the session back. A failure here is reported, not swallowed.
  if (fsync(fd_) != 0 && errno != EINVAL) ThrowIo("fsync", path_, errno);
  return true;
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
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != euid_) return false;
  // A live writer holds the lock until its rename; a dead one's lock went with its process.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return false;
  struct stat now;
  if (fstatat(fd_, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino)
    return false;
  return unlinkat(fd_, name.c_str(), 0) == 0;  // still locked by us: no writer can be using it
}

void PrivateDir::ForEachPlainFile(const std::function<void(const std::string&, uint64_t)>& fn) const {
  ForEachEntry(fd_, path_, [&](const std::string& name, unsigned char type) {
    if (type == DT_REG || type == DT_UNKNOWN) fn(name, 0);
  });
}

// SealToFile sets each envelope's mtime to its expiry: one fstatat tells a file of ours that is
// still live. Anything else is judged by its header, so a forged mtime can delay a removal but
// never remove a live session.
bool PrivateDir::StampedAfter(const std::string& name, uint64_t, uint64_t now) const {
  struct stat st;
  return fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_uid == euid_ &&
         !(st.st_mode & (S_IWGRP | S_IWOTH)) && MtimeMs(st) > now;
}

std::optional<Header> PrivateDir::ReadHeader(const std::string& name, FileId* id) const {
  struct stat st;
  FdGuard g{OpenForRead(name, &st)};
  if (g.fd < 0) return std::nullopt;
  if (id) *id = IdOf(st);
  uint8_t buf[kHeaderSize];
  size_t got = ReadUpTo(g.fd, buf, sizeof buf, 0, path_ + "/" + name);
  return ParseHeader(buf, got, kHeaderSize);
}

std::unique_ptr<FileLock> PrivateDir::LockFile(const std::string& name, bool nonblocking) const {
  CheckName(name);
  Check();
  const std::string lock_name = name + kLockSuffix;
  int fd = RetryOpenAt(fd_, lock_name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == ELOOP) throw Error(code::kUnsafePath, "lock file " + path_ + "/" + lock_name + " is a symlink");
    ThrowIo("open", path_ + "/" + lock_name, errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != euid_) {
    close(fd);
    throw Error(code::kUnsafePath, "lock file " + path_ + "/" + lock_name + " is not a regular file of ours");
  }
  while (flock(fd, LOCK_EX | (nonblocking ? LOCK_NB : 0)) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    close(fd);
    if (nonblocking && err == EWOULDBLOCK) return nullptr;
    ThrowIo("flock", path_ + "/" + lock_name, err);
  }
  return std::make_unique<FileLock>(fd);
}

}  // namespace sealed
#endif  // !_WIN32
