#include "nowait.h"

#include <atomic>
#include <cerrno>

#if defined(__linux__)
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

namespace sealed {
namespace nowait {

namespace {
// A kernel capability, not per-instance state: once the kernel (or seccomp) has said no, no
// addon instance in this process should pay for asking again.
#if defined(__linux__) && defined(SYS_openat2) && defined(RESOLVE_CACHED) && defined(RWF_NOWAIT)
std::atomic<bool> g_available{true};
#else
std::atomic<bool> g_available{false};
#endif
}  // namespace

bool Available() { return g_available.load(std::memory_order_relaxed); }
void Disable() { g_available.store(false, std::memory_order_relaxed); }

#if defined(__linux__) && defined(SYS_openat2) && defined(RESOLVE_CACHED) && defined(RWF_NOWAIT)

int OpenCached(int dirfd, const char* name, Mode mode) {
  if (mode == Mode::kSimulateNoSys) return -ENOSYS;
  struct open_how how = {};
  how.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  how.resolve = RESOLVE_CACHED | RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  long fd;
  do {
    fd = syscall(SYS_openat2, dirfd, name, &how, sizeof how);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

ssize_t PreadNoWait(int fd, void* buf, size_t len, off_t offset, Mode mode) {
  if (mode == Mode::kForceWouldBlock) return -EAGAIN;
  if (mode == Mode::kSimulateNoFsSupport) return -EOPNOTSUPP;
  struct iovec iov = {buf, len};
  ssize_t n;
  do {
    n = preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

#else

int OpenCached(int, const char*, Mode) { return -ENOSYS; }
ssize_t PreadNoWait(int, void*, size_t, off_t, Mode) { return -ENOSYS; }

#endif

}  // namespace nowait
}  // namespace sealed
