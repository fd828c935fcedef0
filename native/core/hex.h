// Lowercase hex of a byte string (key ids in results, the keychain seed as the store keeps it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace sealed {

inline std::string ToHex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; i++) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  return s;
}

}  // namespace sealed
