// Error type of the core. Each rejection has its own stable code, shared with JavaScript
// (lib/core/errors.ts maps the code to a SessionError subclass).
#pragma once
#include <stdexcept>
#include <string>

namespace sealed {

namespace code {
inline constexpr const char* kBadMagic = "ERR_SESSION_BAD_MAGIC";
inline constexpr const char* kBadVersion = "ERR_SESSION_BAD_VERSION";
inline constexpr const char* kBadReserved = "ERR_SESSION_BAD_RESERVED";
inline constexpr const char* kTruncated = "ERR_SESSION_TRUNCATED";
inline constexpr const char* kTooLarge = "ERR_SESSION_TOO_LARGE";
inline constexpr const char* kUnknownKey = "ERR_SESSION_UNKNOWN_KEY";
inline constexpr const char* kTampered = "ERR_SESSION_TAMPERED";
inline constexpr const char* kUnsafePath = "ERR_SESSION_UNSAFE_PATH";
inline constexpr const char* kMachineId = "ERR_MACHINE_ID";
inline constexpr const char* kClosed = "ERR_SESSION_CLOSED";
inline constexpr const char* kIo = "ERR_SESSION_IO";
inline constexpr const char* kCrypto = "ERR_SESSION_CRYPTO";
inline constexpr const char* kNoMemory = "ERR_SESSION_NO_MEMORY";
inline constexpr const char* kInternal = "ERR_SESSION_INTERNAL";
inline constexpr const char* kCryptoUnavailable = "ERR_SESSION_CRYPTO_UNAVAILABLE";
// Node's own argument codes: thrown as RangeError / TypeError, as Node's APIs do.
inline constexpr const char* kInvalidArg = "ERR_INVALID_ARG_VALUE";
inline constexpr const char* kInvalidArgType = "ERR_INVALID_ARG_TYPE";
inline constexpr const char* kOutOfRange = "ERR_OUT_OF_RANGE";
}  // namespace code

class Error : public std::runtime_error {
 public:
  Error(const char* code, const std::string& message, int sys_errno = 0, const char* syscall = nullptr)
      : std::runtime_error(message), code_(code), errno_(sys_errno), syscall_(syscall) {}
  const char* code() const noexcept { return code_; }
  int sys_errno() const noexcept { return errno_; }
  const char* syscall() const noexcept { return syscall_; }

 private:
  const char* code_;
  int errno_;
  const char* syscall_;
};

// An I/O failure: message carries the path and strerror, errno and syscall kept for JS.
[[noreturn]] void ThrowIo(const char* syscall, const std::string& what, int err);

}  // namespace sealed
