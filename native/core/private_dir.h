// A private directory: 0700 (when we create it), owned by the caller, not a symlink, not
// writable by group or others. It is opened once and every file operation goes through
// its descriptor (openat/renameat/unlinkat), so swapping the path afterwards changes
// nothing we touch. Files are written atomically: temp (O_CREAT|O_EXCL|O_NOFOLLOW, 0600),
// write, fsync, rename, fsync the directory. POSIX: private_dir.cc; Windows (DACLs, reparse
// points refused, MoveFileExW, LockFileEx; handles kept as CRT descriptors): private_dir_win.cc.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <string>
#include <string_view>
#include <vector>

#include "envelope.h"
#include "nowait.h"

namespace sealed {

struct SweepStats {
  uint64_t scanned = 0;
  uint64_t removed = 0;
  uint64_t skipped = 0;
  // The names seen that start with the sweep's collect prefix and were not removed (a caller
  // that needs some of the directory's names gets them from the same pass, not a second listing).
  std::vector<std::string> collected;
};

enum OpenFlags : unsigned {
  kRemoveExpired = 1,
  kRemoveInvalid = 2,
  // The plaintext is handed to JavaScript as a string (decoded as UTF-8 natively), not a Buffer:
  // the addon's concern, the core reads the same either way.
  kAsString = 4,
  // The caller holds the file's lock (PrivateDir::LockNameOf): a removal does not take it again.
  kLockHeld = 8,
};

#ifdef SEALED_TEST_HOOKS
// Core tests only (never in the addon): runs between a removal's check of the file's identity
// and its unlink, where a concurrent writer would land.
namespace test_hooks {
inline std::function<void(const std::string& name)> before_unlink;
}
#endif

// What an attempt to read without blocking came to: done (result set, or the error thrown), or
// the kernel would have had to wait (or the outcome needs a removal): read on the pool instead.
enum class InlineRead { kDone, kWouldBlock };

struct OpenFileResult {
  enum Status { kMissing, kExpired, kOk } status = kMissing;
  Opened opened;  // header always set unless kMissing; plaintext only with kOk
};

// An exclusive flock held on <name>.lock until destroyed or Release()d.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {}
  ~FileLock() { Release(); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  void Release();

 private:
  int fd_;
};

// Lock files are <name>.lock; temp files .<name>.<random>.tmp. Neither is ever a data file's name.
inline constexpr const char* kLockSuffix = ".lock";
inline constexpr const char* kTempSuffix = ".tmp";
inline bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// A file's identity: device and inode (Windows: volume serial and file index). A removal after
// a check removes the file only while its name still leads to the same identity.
struct FileId {
  uint64_t volume = 0;
  uint64_t index = 0;
};

// The rules (which names are ours, how a sweep judges a file, how a removal after a check stays
// safe) are written once, in private_dir_common.cc, over per-OS primitives: private_dir.cc
// (POSIX) and private_dir_win.cc (Windows) implement those and the reads and writes.
class PrivateDir {
 public:
  // Opens path (creating it and missing parents with 0700 when create is set) and checks it.
  // remove_stale_temps: also remove dead writers' temp files (off for read-only inspection).
  PrivateDir(const std::string& path, bool create, bool remove_stale_temps = true);
  ~PrivateDir();
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;

  const std::string& path() const { return path_; }
  // The directory's identity, "<device>:<inode>" (Windows: "<volume serial>:<file index>"),
  // taken when it was opened: the same for every spelling of its path (trailing slash, "..",
  // symlinked parents), so in-process lock queues on it are shared by all of them.
  const std::string& id() const { return id_; }

  // Re-checks owner and mode through the open descriptor (cheap: one fstat).
  void Check() const;

  // Replaces name atomically. With existing_only, writes nothing (and returns false) when name
  // is gone just before the rename: a touch must not bring back a session deleted meanwhile.
  // With expires_at, the file's mtime is set to it (ms; 0 = never) just after the rename,
  // through the written descriptor: the sweep passes by live files on their metadata alone.
  bool WriteAtomic(const std::string& name, const uint8_t* data, size_t len, bool existing_only = false,
                   std::optional<uint64_t> expires_at = std::nullopt) const;
  // Reads a whole regular file of ours, refusing more than max_bytes. nullopt when missing.
  std::optional<std::vector<uint8_t>> Read(const std::string& name, size_t max_bytes) const;
  bool SealToFile(const KeyRing& ring, const std::string& name, const uint8_t* plaintext, size_t len,
                  std::string_view context, uint64_t created_at, uint64_t expires_at, bool existing_only = false) const;
  OpenFileResult OpenFile(const KeyRing& ring, const std::string& name, std::string_view context, size_t max_bytes,
                          uint64_t now, unsigned flags) const;
  // OpenFile without blocking the calling thread (see nowait.h): kDone with *out set, or throws
  // what OpenFile would throw; kWouldBlock where OpenFile must run on the pool (never touched
  // the disk, or the file is to be removed). Disables the fast path process-wide on ENOSYS/EPERM,
  // and for this directory alone when its filesystem refuses RWF_NOWAIT (EOPNOTSUPP).
  InlineRead TryOpenFileInline(const KeyRing& ring, const std::string& name, std::string_view context, size_t max_bytes,
                               uint64_t now, unsigned flags, nowait::Mode mode, OpenFileResult* out) const;
  // False once this directory's filesystem has refused a non-blocking read: its async reads
  // then go straight to the pool instead of paying for a failed attempt each time.
  bool InlineReadsSupported() const { return inline_reads_.load(std::memory_order_relaxed); }
  // Off: WriteAtomic skips its fsyncs (file and directory). The rename stays atomic, so a write
  // survives a crash of the process, but not of the kernel or a power loss. On by default.
  void SetSyncWrites(bool on) const { sync_writes_.store(on, std::memory_order_relaxed); }
  bool SyncWrites() const { return sync_writes_.load(std::memory_order_relaxed); }
  std::optional<Header> Peek(const std::string& name) const;
  bool Remove(const std::string& name) const;
  std::vector<std::string> List() const;
  SweepStats Sweep(uint64_t now, std::string_view collect_prefix = {}) const;
  // Removes temp files whose writer is gone (their flock can be taken); never a live
  // writer's. Runs when the directory is opened (unless asked not to) and in every Sweep.
  // Returns how many.
  uint64_t RemoveStaleTemps() const;
  // Blocks until the lock is ours: call it off the main thread.
  std::unique_ptr<FileLock> Lock(const std::string& name) const;
  // Lock without waiting: nullptr when someone else (another process, or another descriptor
  // in this one) holds it.
  std::unique_ptr<FileLock> TryLock(const std::string& name) const;
  // The lock (Lock's name) that every writer of `name` holds while it replaces or removes it,
  // and that a removal after a check takes too: the store's stripes (lib/stores/file-store.ts),
  // `stripe-<first byte>`, for a 64-hex session name and for `index-<64 hex>`; the name itself
  // for any other (the manager's session.enc).
  static std::string LockNameOf(const std::string& name);

  // Names must be a plain file name: 1..255 bytes, no '/', no NUL, not starting with '.'
  // (temp files), not ending in ".lock" (lock files).
  static void CheckName(const std::string& name);

 private:
  // Opens name for reading: regular, ours, not a symlink. -1 with errno ENOENT when missing.
  int OpenForRead(const std::string& name, struct stat* st) const;
  int CreateLockedTemp(const std::string& name, std::string* tmp) const;
  bool RemoveIfStaleTemp(const std::string& name) const;
  void CheckOpened(int fd, const struct stat& st, const std::string& name) const;
  // Removes name only if it is still the file we looked at, under its lock (taken here without
  // waiting unless lock_held); true if it did.
  bool RemoveIfSame(const std::string& name, const FileId& id, bool lock_held) const;

  // ---- per-OS primitives under the shared rules ----
  // Calls fn(name, listed_expiry_ms) for each entry the listing shows as a plain file (or cannot
  // tell). listed_expiry_ms: the last-write time the listing carries (Windows), or 0 (POSIX).
  void ForEachPlainFile(const std::function<void(const std::string&, uint64_t)>& fn) const;
  // Whether name is a file of ours whose stamped expiry (its mtime, set by SealToFile) is still
  // after now, known without opening it.
  bool StampedAfter(const std::string& name, uint64_t listed_expiry_ms, uint64_t now) const;
  // The header of a file of ours and its identity; nullopt when missing. Throws for a file that
  // is not ours to read (symlink, foreign owner, not an envelope).
  std::optional<Header> ReadHeader(const std::string& name, FileId* id) const;
  // Unlinks name if it still has this identity (the caller holds its lock); true if it did.
  bool UnlinkIfSame(const std::string& name, const FileId& id) const;
  // Opens (creating) the lock file of name, checked; waits for the lock unless nonblocking.
  std::unique_ptr<FileLock> LockFile(const std::string& name, bool nonblocking) const;
  // fsync of the directory, errors ignored (see its definition).
  void SyncDirQuietly() const;
  // fsync of the directory after a rename, shared by concurrent writers (see its definition).
  void SyncDirGrouped() const;

  // The effective uid, taken once: every file we read must be owned by it. A later seteuid()
  // in this process does not change whose files this directory holds.
  static unsigned EffectiveUid();

  std::string path_;
  std::string id_;
  int fd_ = -1;
  unsigned euid_ = EffectiveUid();
  // A property of the filesystem under fd_, learnt by the first read it refused (any thread).
  mutable std::atomic<bool> inline_reads_{true};
  mutable std::atomic<bool> sync_writes_{true};
  // Group commit of the directory fsync: requests made, requests covered by a successful sync,
  // and whether a sync is running now.
  mutable std::mutex sync_mu_;
  mutable std::condition_variable sync_cv_;
  mutable uint64_t sync_requested_ = 0;
  mutable uint64_t sync_done_ = 0;
  mutable bool sync_running_ = false;
};

}  // namespace sealed
