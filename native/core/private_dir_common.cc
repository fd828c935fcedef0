// The rules of a private directory, for every platform: which lock guards which name, how a
// removal after a check stays safe, and how a sweep judges files. The per-OS primitives they
// stand on (listing, stamps, header reads, unlink-if-same, locks) are in private_dir.cc (POSIX)
// and private_dir_win.cc (Windows).
#include <algorithm>
#include <string_view>

#include "errors.h"
#include "private_dir.h"

namespace sealed {

std::string PrivateDir::LockNameOf(const std::string& name) {
  const auto hex64 = [](std::string_view v) {
    return v.size() == 64 &&
           std::all_of(v.begin(), v.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  // Each name's lock is the stripe the file store takes for it: a session's and an index
  // entry's by the session's name (ix-<index>-<name>); a 0.2 index's and a revocation mark's by
  // the index name.
  const std::string_view v(name);
  if (hex64(v)) return "stripe-" + name.substr(0, 2);
  for (std::string_view prefix : {std::string_view("index-"), std::string_view("revoked-")}) {
    if (v.substr(0, prefix.size()) == prefix && hex64(v.substr(prefix.size())))
      return "stripe-" + name.substr(prefix.size(), 2);
  }
  constexpr std::string_view kEntry = "ix-";
  if (v.size() == kEntry.size() + 64 + 1 + 64 && v.substr(0, kEntry.size()) == kEntry && hex64(v.substr(3, 64)) &&
      v[67] == '-' && hex64(v.substr(68))) {
    return "stripe-" + name.substr(68, 2);
  }
  return name;
}

bool PrivateDir::SealToFile(const KeyRing& ring, const std::string& name, const uint8_t* plaintext, size_t len,
                            std::string_view context, uint64_t created_at, uint64_t expires_at,
                            bool existing_only) const {
  CheckName(name);
  std::vector<uint8_t> env = Seal(ring, plaintext, len, context, created_at, expires_at);
  return WriteAtomic(name, env.data(), env.size(), existing_only, expires_at);
}

std::unique_ptr<FileLock> PrivateDir::Lock(const std::string& name) const { return LockFile(name, false); }

std::unique_ptr<FileLock> PrivateDir::TryLock(const std::string& name) const { return LockFile(name, true); }

// The identity check and the unlink are one step only while no writer can put a new file under
// the name in between: so both happen under the lock every writer of ours takes to replace it
// (LockNameOf). That lock is taken without waiting: a removal runs on a pool thread or the main
// thread, and waiting there for an in-process holder that itself needs one could hang the
// process. Busy means a writer is at work on the name (it replaces or removes the file itself):
// the file is left for a later read or sweep. Renaming the file aside to check it there needs
// no lock, but would make a live file that was put there meanwhile vanish for a moment.
bool PrivateDir::RemoveIfSame(const std::string& name, const FileId& id, bool lock_held) const {
  std::unique_ptr<FileLock> lock;
  if (!lock_held) {
    try {
      lock = TryLock(LockNameOf(name));
    } catch (const Error&) {
      return false;  // no usable lock file (planted symlink, full disk): nothing removed
    }
    if (!lock) return false;
  }
  return UnlinkIfSame(name, id);
}

uint64_t PrivateDir::RemoveStaleTemps() const {
  uint64_t removed = 0;
  try {
    ForEachPlainFile([&](const std::string& name, uint64_t) {
      if (RemoveIfStaleTemp(name)) removed++;
    });
  } catch (const Error&) {
    // Best effort at open: an unreadable listing shows up in the calls that need it.
  }
  return removed;
}

SweepStats PrivateDir::Sweep(uint64_t now, std::string_view collect_prefix) const {
  Check();
  SweepStats s;
  // Files found expired, removed after the pass: each lock (LockNameOf) is tried once for all
  // of its files, and each file is checked to be the one judged under it.
  struct Expired {
    std::string lock, name;
    FileId id;
  };
  std::vector<Expired> expired;
  const auto collect = [&](const std::string& name) {
    if (!collect_prefix.empty() && std::string_view(name).substr(0, collect_prefix.size()) == collect_prefix)
      s.collected.push_back(name);
  };
  ForEachPlainFile([&](const std::string& name, uint64_t listed_expiry_ms) {
    if (EndsWith(name, kLockSuffix)) return;
    if (name[0] == '.') {
      RemoveIfStaleTemp(name);  // a temp file whose writer died before its rename
      return;
    }
    s.scanned++;
    if (StampedAfter(name, listed_expiry_ms, now)) {
      collect(name);
      return;
    }
    FileId id;
    std::optional<Header> h;
    try {
      h = ReadHeader(name, &id);
    } catch (const Error&) {
      s.skipped++;  // not ours to judge (symlink, foreign owner, not an envelope): left alone
      return;
    }
    if (!h) return;  // removed meanwhile
    if (h->ExpiredAt(now)) {
      expired.push_back({LockNameOf(name), name, id});
      return;
    }
    collect(name);
  });
  std::sort(expired.begin(), expired.end(), [](const Expired& a, const Expired& b) { return a.lock < b.lock; });
  for (size_t i = 0; i < expired.size();) {
    size_t end = i;
    while (end < expired.size() && expired[end].lock == expired[i].lock) end++;
    std::unique_ptr<FileLock> lock;
    try {
      lock = TryLock(expired[i].lock);
    } catch (const Error&) {
      // no usable lock file: these files are left, as when the lock is busy
    }
    for (; i < end; i++) {
      if (lock && UnlinkIfSame(expired[i].name, expired[i].id)) s.removed++;
      else collect(expired[i].name);
    }
  }
  if (s.removed > 0) SyncDirQuietly();  // once for the whole batch
  return s;
}

}  // namespace sealed
