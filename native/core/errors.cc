#include "errors.h"

#include <cstring>

namespace sealed {

void ThrowIo(const char* syscall, const std::string& what, int err) {
  throw Error(code::kIo, std::string(syscall) + " " + what + ": " + strerror(err), err, syscall);
}

}  // namespace sealed
