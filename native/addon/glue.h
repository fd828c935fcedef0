// What every wrapper of the addon shares: core errors turned into JS errors, argument checks
// that throw TypeError/RangeError naming the argument, result objects, and the thread-pool
// worker that settles a promise. Only this layer (native/addon) includes napi.h.
#pragma once
#include <napi.h>

#include <functional>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "../core/envelope.h"
#include "../core/errors.h"
#include "../core/private_dir.h"

namespace sealed::addon {

// Type tags tell our wrapped objects apart from look-alikes (a plain object whose
// prototype was set to KeyRing.prototype must not be unwrapped).
constexpr napi_type_tag kKeyRingTag = {0x5ea1ed5e55104e01ULL, 0x8f1c2d3b4a596877ULL};
constexpr napi_type_tag kPrivateDirTag = {0x5ea1ed5e55104e02ULL, 0x8f1c2d3b4a596877ULL};
constexpr napi_type_tag kLockTag = {0x5ea1ed5e55104e03ULL, 0x8f1c2d3b4a596877ULL};

// ---- errors ----

// The error as data, so a worker thread can carry it to the main thread.
struct ErrorInfo {
  std::string code;
  std::string message;
  int sys_errno = 0;
  std::string syscall;
};

ErrorInfo Capture(const Error& e);
ErrorInfo OutOfMemory();
Napi::Error MakeError(Napi::Env env, const ErrorInfo& info);
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

// Runs core code on the main thread, turning core errors into JS errors.
template <typename Fn>
auto Guard(Napi::Env env, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw MakeError(env, Capture(e));
  } catch (const std::bad_alloc&) {
    throw MakeError(env, OutOfMemory());
  }
}

// ---- arguments ----

std::string GetString(const Napi::CallbackInfo& info, size_t i, const char* name);

// Bytes from a Buffer/TypedArray (borrowed for a sync call) or a string (copied as UTF-8).
// data() is computed on each use: a stored pointer into `owned` would dangle after a move.
class Bytes {
 public:
  static Bytes Borrow(const uint8_t* p, size_t n);
  static Bytes Copy(std::string s);
  const uint8_t* data() const { return is_owned_ ? reinterpret_cast<const uint8_t*>(owned_.data()) : borrowed_; }
  size_t size() const { return size_; }
  // Makes a copy that outlives the JS value (for worker threads).
  void Own();

 private:
  std::string owned_;
  const uint8_t* borrowed_ = reinterpret_cast<const uint8_t*>("");
  size_t size_ = 0;
  bool is_owned_ = false;
};

Bytes GetBytes(Napi::Env env, Napi::Value v, const std::string& name, bool allow_string);
inline Bytes GetBytes(const Napi::CallbackInfo& info, size_t i, const char* name, bool allow_string) {
  return GetBytes(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), name, allow_string);
}

// A time or size: a non-negative integer JS can represent exactly.
uint64_t GetUint(Napi::Env env, Napi::Value v, const std::string& name, uint64_t max = kMaxTime);
inline uint64_t GetUint(const Napi::CallbackInfo& info, size_t i, const char* name, uint64_t max = kMaxTime) {
  return GetUint(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), name, max);
}
std::string GetString(Napi::Env env, Napi::Value v, const std::string& name);

// ---- results ----

Napi::Object HeaderObject(Napi::Env env, const Header& h);
// The opened-envelope object; wipes the plaintext it copied out.
Napi::Value OpenedObject(Napi::Env env, Opened& o, bool as_string);
Napi::Value OpenFileResultValue(Napi::Env env, OpenFileResult& r, bool as_string);
Napi::Object SweepObject(Napi::Env env, const SweepStats& s);

// ---- async work ----

// Runs `work` on the libuv thread pool and settles a promise with `done`'s value on the
// main thread. `work` touches no N-API; everything it uses was copied or is shared_ptr-held.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise Start(Napi::Env env, Work work, Done done) {
    auto* w = new PromiseWorker(env, std::move(work), std::move(done));
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      result_ = work_();
    } catch (const Error& e) {
      error_ = Capture(e);
      SetError(error_->message);
    } catch (const std::bad_alloc&) {
      error_ = OutOfMemory();
      SetError(error_->message);
    } catch (const std::exception& e) {
      error_ = ErrorInfo{code::kInternal, e.what(), 0, ""};
      SetError(error_->message);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(done_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::bad_alloc&) {
      // Never let a C++ exception leave a Node-API callback: that would end the process.
      deferred_.Reject(MakeError(env, OutOfMemory()).Value());
    }
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(MakeError(Env(), *error_).Value());
  }

 private:
  PromiseWorker(Napi::Env env, Work work, Done done)
      : Napi::AsyncWorker(env, "sealed-session"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  std::optional<Result> result_;
  std::optional<ErrorInfo> error_;
};

}  // namespace sealed::addon
