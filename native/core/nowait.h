// System calls that never make the calling thread wait (Linux ≥ 5.12): openat2 with
// RESOLVE_CACHED fails with EAGAIN where the lookup would need the disk, and preadv2 with
// RWF_NOWAIT where the data is not in the page cache. An async read tries them on the main
// thread and goes to the thread pool only when they say EAGAIN. Elsewhere Available() is false.
#pragma once
#include <cstddef>
#include <sys/types.h>

namespace sealed {
namespace nowait {

// How an attempt behaves: kNormal, or one of three test switches that stand in for a cold page
// cache (the read answers EAGAIN), for a kernel without openat2 (the open answers ENOSYS) and
// for a filesystem without RWF_NOWAIT (the read answers EOPNOTSUPP).
// kOff: no attempt at all, every async read on the pool as in 0.1 (the bench's baseline).
enum class Mode { kNormal = 0, kForceWouldBlock = 1, kSimulateNoSys = 2, kOff = 3, kSimulateNoFsSupport = 4 };

// Whether the kernel may still serve non-blocking reads. Process-wide on purpose: it describes
// the kernel (or a seccomp filter), which is the same for every addon instance and thread.
bool Available();
// Stops every later attempt in this process (ENOSYS, EPERM, or a kernel that rejects the flags).
void Disable();

// A descriptor for name under dirfd opened read-only, O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
// beneath dirfd, through no symlink, from cached lookups only; or -errno.
int OpenCached(int dirfd, const char* name, Mode mode);
// pread that fails with -EAGAIN instead of waiting for the disk; bytes read or -errno.
ssize_t PreadNoWait(int fd, void* buf, size_t len, off_t offset, Mode mode);

}  // namespace nowait
}  // namespace sealed
