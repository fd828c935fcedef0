// Reads test/vectors/envelope-v1.json (the known-answer vectors shared with the JS tests)
// with a minimal strict JSON parser: objects, arrays, strings (all escapes, \u with
// surrogate pairs, to UTF-8), non-negative integers, true/false/null. Anything else throws.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace vectors {

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  uint64_t num = 0;
  std::string str;
  std::vector<Json> arr;
  std::map<std::string, Json> obj;

  bool Has(const std::string& k) const { return kind == kObject && obj.count(k) != 0; }
  const Json& operator[](const std::string& k) const {
    auto it = obj.find(k);
    if (kind != kObject || it == obj.end()) throw std::runtime_error("vectors: missing field " + k);
    return it->second;
  }
  const std::string& S() const {
    if (kind != kString) throw std::runtime_error("vectors: not a string");
    return str;
  }
  uint64_t N() const {
    if (kind != kNumber) throw std::runtime_error("vectors: not a number");
    return num;
  }
};

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}
  Json ParseAll() {
    Json v = Value();
    Ws();
    if (i_ != s_.size()) Fail("trailing data");
    return v;
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    throw std::runtime_error(std::string("vectors: bad JSON (") + what + ") at offset " + std::to_string(i_));
  }
  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) i_++;
  }
  char Peek() {
    Ws();
    if (i_ >= s_.size()) Fail("unexpected end");
    return s_[i_];
  }
  void Expect(char c) {
    if (Peek() != c) Fail("unexpected character");
    i_++;
  }
  bool Literal(const char* lit) {
    size_t n = std::char_traits<char>::length(lit);
    if (s_.compare(i_, n, lit) != 0) return false;
    i_ += n;
    return true;
  }
  Json Value() {
    if (++depth_ > 64) Fail("too deep");
    Json v;
    char c = Peek();
    if (c == '{') {
      v.kind = Json::kObject;
      i_++;
      if (Peek() == '}') {
        i_++;
      } else {
        for (;;) {
          if (Peek() != '"') Fail("object key");
          std::string k = String();
          Expect(':');
          v.obj[k] = Value();
          if (Peek() == ',') {
            i_++;
            continue;
          }
          Expect('}');
          break;
        }
      }
    } else if (c == '[') {
      v.kind = Json::kArray;
      i_++;
      if (Peek() == ']') {
        i_++;
      } else {
        for (;;) {
          v.arr.push_back(Value());
          if (Peek() == ',') {
            i_++;
            continue;
          }
          Expect(']');
          break;
        }
      }
    } else if (c == '"') {
      v.kind = Json::kString;
      v.str = String();
    } else if (c >= '0' && c <= '9') {
      v.kind = Json::kNumber;
      size_t start = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        uint64_t d = static_cast<uint64_t>(s_[i_] - '0');
        if (v.num > (UINT64_MAX - d) / 10) Fail("number overflows");
        v.num = v.num * 10 + d;
        i_++;
      }
      if (i_ - start > 1 && s_[start] == '0') Fail("leading zero");
      if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) Fail("only integers supported");
    } else if (Literal("true")) {
      v.kind = Json::kBool;
      v.b = true;
    } else if (Literal("false")) {
      v.kind = Json::kBool;
    } else if (Literal("null")) {
      v.kind = Json::kNull;
    } else {
      Fail("unexpected value");
    }
    depth_--;
    return v;
  }
  unsigned Hex4() {
    if (i_ + 4 > s_.size()) Fail("short \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else Fail("bad \\u escape");
    }
    return v;
  }
  static void Utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  std::string String() {
    Expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) Fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) Fail("control character in string");
      if (c != '\\') {
        out.push_back(c);  // raw UTF-8 passes through byte by byte
        continue;
      }
      if (i_ >= s_.size()) Fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          unsigned cp = Hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') Fail("lone high surrogate");
            i_ += 2;
            unsigned lo = Hex4();
            if (lo < 0xDC00 || lo >= 0xE000) Fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            Fail("lone low surrogate");
          }
          Utf8(out, cp);
          break;
        }
        default:
          Fail("unknown escape");
      }
    }
    return out;
  }

  const std::string& s_;
  size_t i_ = 0;
  int depth_ = 0;
};

inline Json Load(const std::string& path) {
  std::ifstream f(path, std::ios::in | std::ios::binary);
  if (!f) throw std::runtime_error("vectors: cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  return Parser(text).ParseAll();
}

inline std::vector<uint8_t> FromHex(const std::string& hex) {
  if (hex.size() % 2 != 0) throw std::runtime_error("vectors: odd-length hex");
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::runtime_error("vectors: bad hex digit");
  };
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); i++) out[i] = static_cast<uint8_t>(nib(hex[2 * i]) << 4 | nib(hex[2 * i + 1]));
  return out;
}

// The key vector whose derived key is keyHex (envelope vectors name their key by its bytes).
inline const Json& KeyVectorFor(const Json& root, const std::string& key_hex) {
  for (const Json& k : root["keys"].arr) {
    if (k["keyHex"].S() == key_hex) return k;
  }
  throw std::runtime_error("vectors: no key vector derives " + key_hex);
}

}  // namespace vectors
