// A tiny test harness for the native core: TEST(name) registers a case, CHECK* record
// checks without stopping the case, RunAll() prints failures and "N passed, M failed".
// No dependencies beyond the standard library (CI pulls no test framework).
#pragma once
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <type_traits>
#include <string>
#include <vector>

#include "errors.h"

namespace check {

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& Registry() {
  static std::vector<Case> cases;
  return cases;
}

struct Counters {
  long passed = 0;
  long failed = 0;
  long case_failed = 0;  // checks failed in the running case
  const char* current = "";
};

inline Counters& C() {
  static Counters c;
  return c;
}

struct Registrar {
  Registrar(const char* name, void (*fn)()) { Registry().push_back({name, fn}); }
};

inline bool Record(bool ok, const char* file, int line, const std::string& what) {
  if (ok) {
    C().passed++;
  } else {
    C().failed++;
    C().case_failed++;
    std::fprintf(stderr, "FAIL %s (%s:%d): %s\n", C().current, file, line, what.c_str());
  }
  return ok;
}

inline std::string Hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; i++) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

// Runs fn, expecting a sealed::Error with exactly this code. Returns the code seen ("" for none).
inline std::string CodeOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const sealed::Error& e) {
    return e.code();
  } catch (const std::exception& e) {
    return std::string("<std::exception: ") + e.what() + ">";
  } catch (...) {
    return "<unknown exception>";
  }
  return "<no exception>";
}

// filter: run only cases whose name starts with it (empty: all).
inline int RunAll(const std::string& filter) {
  long cases = 0;
  for (const Case& c : Registry()) {
    if (!filter.empty() && std::strncmp(c.name, filter.c_str(), filter.size()) != 0) continue;
    cases++;
    C().current = c.name;
    C().case_failed = 0;
    long before = C().passed;
    try {
      c.fn();
    } catch (const sealed::Error& e) {
      Record(false, __FILE__, __LINE__, std::string("uncaught sealed::Error ") + e.code() + ": " + e.what());
    } catch (const std::exception& e) {
      Record(false, __FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    std::printf("%s %s (%ld checks)\n", C().case_failed ? "FAILED" : "ok", c.name,
                C().passed - before + C().case_failed);
    std::fflush(stdout);
  }
  if (cases == 0) Record(false, __FILE__, __LINE__, "no test case matches filter '" + filter + "'");
  std::printf("%ld test cases\n", cases);
  std::printf("%ld passed, %ld failed\n", C().passed, C().failed);
  return C().failed == 0 ? 0 : 1;
}

}  // namespace check

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)
#define TEST(name)                                                     \
  static void name();                                                  \
  static ::check::Registrar CHECK_CAT(check_reg_, name)(#name, &name); \
  static void name()

#define CHECK(cond) ::check::Record(static_cast<bool>(cond), __FILE__, __LINE__, #cond)
#define CHECK_MSG(cond, msg) \
  ::check::Record(static_cast<bool>(cond), __FILE__, __LINE__, std::string(#cond) + ": " + (msg))
#define CHECK_EQ(a, b)                                                                                         \
  do {                                                                                                         \
    auto check_a_ = (a);                                                                                       \
    auto check_b_ = (b);                                                                                       \
    ::check::Record(                                                                                           \
        ::check::Eq(check_a_, check_b_), __FILE__, __LINE__,                                                   \
        std::string(#a " == " #b) + "  [" + ::check::Show(check_a_) + " vs " + ::check::Show(check_b_) + "]"); \
  } while (0)
// The expression must throw sealed::Error with this code.
#define CHECK_CODE(expr, expected)                                                       \
  do {                                                                                   \
    std::string check_got_ = ::check::CodeOf([&] { (void)(expr); });                     \
    ::check::Record(check_got_ == (expected), __FILE__, __LINE__,                        \
                    std::string(#expr " throws ") + (expected) + ", got " + check_got_); \
  } while (0)
#define CHECK_NOTHROW(expr)                                                   \
  do {                                                                        \
    std::string check_got_ = ::check::CodeOf([&] { (void)(expr); });          \
    ::check::Record(check_got_ == "<no exception>", __FILE__, __LINE__,       \
                    std::string(#expr " does not throw, got ") + check_got_); \
  } while (0)

namespace check {
template <typename A, typename B>
bool Eq(const A& a, const B& b) {
  if constexpr (std::is_same_v<A, const char*> || std::is_same_v<A, char*>) {
    return Eq(std::string(a ? a : ""), b);
  } else if constexpr (std::is_same_v<B, const char*> || std::is_same_v<B, char*>) {
    return Eq(a, std::string(b ? b : ""));
  } else {
    return a == b;
  }
}
inline std::string Show(const std::string& s) { return "\"" + s + "\""; }
inline std::string Show(const char* s) { return s ? Show(std::string(s)) : "null"; }
inline std::string Show(bool b) { return b ? "true" : "false"; }
template <typename T>
std::string Show(const T& v) {
  if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else {
    return "<value>";
  }
}
}  // namespace check
