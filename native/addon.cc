// Thin N-API glue over the core (native/core): argument checks, JS objects, thread-pool
// workers. Per-load state lives in the Addon instance (no mutable statics), so the addon
// can be loaded in several worker threads or environments at once.
#include <napi.h>

#include <openssl/crypto.h>

#include <cmath>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/envelope.h"
#include "core/errors.h"
#include "core/hex.h"
#include "core/keychain.h"
#include "core/keys.h"
#include "core/machine_id.h"
#include "core/cas.h"
#include "core/private_dir.h"

namespace {

using sealed::Error;
namespace code = sealed::code;

// Type tags tell our wrapped objects apart from look-alikes (a plain object whose
// prototype was set to KeyRing.prototype must not be unwrapped).
constexpr napi_type_tag kKeyRingTag = {0x5ea1ed5e55104e01ULL, 0x8f1c2d3b4a596877ULL};
constexpr napi_type_tag kPrivateDirTag = {0x5ea1ed5e55104e02ULL, 0x8f1c2d3b4a596877ULL};
constexpr napi_type_tag kLockTag = {0x5ea1ed5e55104e03ULL, 0x8f1c2d3b4a596877ULL};

constexpr unsigned kOpenAsString = 4;

// ---- errors -----------------------------------------------------------------------------

// The error as data, so a worker thread can carry it to the main thread.
struct ErrorInfo {
  std::string code;
  std::string message;
  int sys_errno = 0;
  std::string syscall;
};

ErrorInfo Capture(const Error& e) { return {e.code(), e.what(), e.sys_errno(), e.syscall() ? e.syscall() : ""}; }

Napi::Error MakeError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err =
      info.code == code::kInvalidArg ? Napi::RangeError::New(env, info.message) : Napi::Error::New(env, info.message);
  err.Set("code", Napi::String::New(env, info.code));
  if (info.sys_errno != 0) {
    err.Set("errno", Napi::Number::New(env, info.sys_errno));
    err.Set("syscall", Napi::String::New(env, info.syscall));
  }
  return err;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError err = Napi::TypeError::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw err;
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  Napi::RangeError err = Napi::RangeError::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw err;
}

// Runs core code on the main thread, turning core errors into JS errors.
template <typename Fn>
auto Guard(Napi::Env env, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw MakeError(env, Capture(e));
  } catch (const std::bad_alloc&) {
    throw MakeError(env, {"ERR_SESSION_NO_MEMORY", "out of memory", 0, ""});
  }
}

// ---- arguments --------------------------------------------------------------------------

std::string GetString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  // One copy into a stack buffer for the usual short names and contexts (Utf8Value asks V8
  // for the length first, then copies). A string that may not have fit (V8 stops up to 3
  // bytes short rather than split a character) takes the general path.
  char buf[512];
  size_t len = 0;
  if (napi_get_value_string_utf8(info.Env(), info[i], buf, sizeof buf, &len) == napi_ok && len + 4 < sizeof buf)
    return std::string(buf, len);
  return info[i].As<Napi::String>().Utf8Value();
}

// Bytes from a Buffer/TypedArray (borrowed for a sync call) or a string (copied as UTF-8).
// data() is computed on each use: a stored pointer into `owned` would dangle after a move.
class Bytes {
 public:
  static Bytes Borrow(const uint8_t* p, size_t n) {
    Bytes b;
    b.borrowed_ = p;
    b.size_ = n;
    return b;
  }
  static Bytes Copy(std::string s) {
    Bytes b;
    b.owned_ = std::move(s);
    b.is_owned_ = true;
    b.size_ = b.owned_.size();
    return b;
  }
  const uint8_t* data() const { return is_owned_ ? reinterpret_cast<const uint8_t*>(owned_.data()) : borrowed_; }
  size_t size() const { return size_; }
  // Makes a copy that outlives the JS value (for worker threads).
  void Own() {
    if (is_owned_) return;
    owned_.assign(reinterpret_cast<const char*>(borrowed_), size_);
    is_owned_ = true;
  }

 private:
  std::string owned_;
  const uint8_t* borrowed_ = reinterpret_cast<const uint8_t*>("");
  size_t size_ = 0;
  bool is_owned_ = false;
};

Bytes GetBytes(const Napi::CallbackInfo& info, size_t i, const char* name, bool allow_string) {
  if (info.Length() > i && info[i].IsTypedArray()) {
    Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    const uint8_t* p = static_cast<const uint8_t*>(ab.Data());
    if (p == nullptr) return Bytes::Borrow(reinterpret_cast<const uint8_t*>(""), 0);
    return Bytes::Borrow(p + ta.ByteOffset(), ta.ByteLength());
  }
  if (allow_string && info.Length() > i && info[i].IsString())
    return Bytes::Copy(info[i].As<Napi::String>().Utf8Value());
  ThrowType(info.Env(), std::string(name) + (allow_string ? " must be a Buffer, Uint8Array or string"
                                                          : " must be a Buffer or Uint8Array"));
}

// A time or size: a non-negative integer JS can represent exactly.
uint64_t GetUint(const Napi::CallbackInfo& info, size_t i, const char* name, uint64_t max = sealed::kMaxTime) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v < 0 || v != std::floor(v) || v > static_cast<double>(max))
    ThrowRange(info.Env(), std::string(name) + " must be an integer from 0 to " + std::to_string(max));
  return static_cast<uint64_t>(v);
}

Napi::Object HeaderObject(Napi::Env env, const sealed::Header& h) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", Napi::Number::New(env, h.version));
  o.Set("flags", Napi::Number::New(env, h.flags));
  o.Set("keyId", Napi::String::New(env, sealed::ToHex(h.key_id, sealed::kKeyIdSize)));
  o.Set("createdAt", Napi::Number::New(env, static_cast<double>(h.created_at)));
  o.Set("expiresAt", Napi::Number::New(env, static_cast<double>(h.expires_at)));
  return o;
}

// The opened-envelope object is built by a tiny JS function (compiled once per addon
// instance): an object literal gets its final shape in one allocation, where setting seven
// named properties through Node-API walks seven map transitions and internalizes seven keys
// on every call (that was most of the cost of a read). Same keys, order and attributes.
Napi::Function OpenedFactory(Napi::Env env);
constexpr const char* kOpenedFactorySource =
    "'use strict';(function opened(version, flags, keyId, createdAt, expiresAt, plaintext, keyIndex) {"
    "return { version, flags, keyId, createdAt, expiresAt, plaintext, keyIndex } })";

Napi::Value OpenedObject(Napi::Env env, sealed::Opened& o, bool as_string) {
  const sealed::Header& h = o.header;
  const char* p = reinterpret_cast<const char*>(o.plaintext.data());
  napi_value args[7] = {
      Napi::Number::New(env, h.version),
      Napi::Number::New(env, h.flags),
      Napi::String::New(env, sealed::ToHex(h.key_id, sealed::kKeyIdSize)),
      Napi::Number::New(env, static_cast<double>(h.created_at)),
      Napi::Number::New(env, static_cast<double>(h.expires_at)),
      as_string ? Napi::Value(Napi::String::New(env, o.plaintext.empty() ? "" : p, o.plaintext.size()))
                : Napi::Value(Napi::Buffer<char>::Copy(env, o.plaintext.empty() ? "" : p, o.plaintext.size())),
      Napi::Number::New(env, o.key_index),
  };
  OPENSSL_cleanse(o.plaintext.data(), o.plaintext.size());
  return OpenedFactory(env).Call(env.Undefined(), 7, args);
}

Napi::Value OpenFileResultValue(Napi::Env env, sealed::OpenFileResult& r, bool as_string) {
  switch (r.status) {
    case sealed::OpenFileResult::kMissing:
      return env.Null();
    case sealed::OpenFileResult::kExpired: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("expired", Napi::Boolean::New(env, true));
      o.Set("createdAt", Napi::Number::New(env, static_cast<double>(r.opened.header.created_at)));
      o.Set("expiresAt", Napi::Number::New(env, static_cast<double>(r.opened.header.expires_at)));
      return o;
    }
    case sealed::OpenFileResult::kOk:
      break;
  }
  return OpenedObject(env, r.opened, as_string);
}

Napi::Object SweepObject(Napi::Env env, const sealed::SweepStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("scanned", Napi::Number::New(env, static_cast<double>(s.scanned)));
  o.Set("removed", Napi::Number::New(env, static_cast<double>(s.removed)));
  o.Set("skipped", Napi::Number::New(env, static_cast<double>(s.skipped)));
  Napi::Array collected = Napi::Array::New(env, s.collected.size());
  for (size_t i = 0; i < s.collected.size(); i++)
    collected.Set(static_cast<uint32_t>(i), Napi::String::New(env, s.collected[i]));
  o.Set("collected", collected);
  return o;
}

// ---- async work -------------------------------------------------------------------------

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
      error_ = ErrorInfo{"ERR_SESSION_NO_MEMORY", "out of memory", 0, ""};
      SetError(error_->message);
    } catch (const std::exception& e) {
      error_ = ErrorInfo{"ERR_SESSION_INTERNAL", e.what(), 0, ""};
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
      deferred_.Reject(MakeError(env, {"ERR_SESSION_NO_MEMORY", "out of memory", 0, ""}).Value());
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

// ---- KeyRing ----------------------------------------------------------------------------

class KeyRingWrap : public Napi::ObjectWrap<KeyRingWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "KeyRing",
                       {
                           InstanceAccessor<&KeyRingWrap::KeyIds>("keyIds"),
                           InstanceAccessor<&KeyRingWrap::Closed>("closed"),
                           InstanceAccessor<&KeyRingWrap::Flags>("flags"),
                           InstanceMethod<&KeyRingWrap::Close>("close"),
                           InstanceMethod<&KeyRingWrap::Seal>("seal"),
                           InstanceMethod<&KeyRingWrap::Open>("open"),
                           InstanceMethod<&KeyRingWrap::Mac>("mac"),
                       });
  }

  // new KeyRing({ scope, name, machine?, ikms?, uid?, bindToBoot?, bootId? })
  explicit KeyRingWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KeyRingWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "spec must be an object");
    Napi::Object spec = info[0].As<Napi::Object>();
    auto str = [&](const char* key, bool required) -> std::optional<std::string> {
      Napi::Value v = spec.Get(key);
      if (v.IsUndefined() && !required) return std::nullopt;
      if (!v.IsString()) ThrowType(env, std::string("spec.") + key + " must be a string");
      return v.As<Napi::String>().Utf8Value();
    };
    std::string scope = *str("scope", true);
    if (scope != "manager" && scope != "store" && scope != "store-index")
      ThrowRange(env, "spec.scope must be 'manager', 'store' or 'store-index'");
    std::string name = *str("name", true);
    if (name.empty() || name.size() > 255) ThrowRange(env, "spec.name must be 1 to 255 bytes");
    bool machine = spec.Get("machine").ToBoolean();
    bool bind_to_boot = spec.Get("bindToBoot").ToBoolean();
    std::optional<std::string> boot_id = str("bootId", false);
    std::optional<std::string> uid = str("uid", false);

    std::vector<std::string> ikms;
    // Room for every key up front: a reallocation would leave copies of short (inline-stored)
    // IKMs in freed memory that the wipe below never sees.
    ikms.reserve(17);
    // Wipe IKM copies (they are secrets) however we leave this constructor.
    struct Wipe {
      std::vector<std::string>& v;
      ~Wipe() {
        for (auto& s : v) OPENSSL_cleanse(s.data(), s.size());
      }
    } wipe{ikms};

    Guard(env, [&] {
      if (machine) {
        ikms.push_back(sealed::ReadMachineId());
        uid = sealed::CurrentUid();
        // keySource 'keychain': IKM = the app's 32-byte seed from the OS secret store, then
        // the machine id (salt and info unchanged). The seed stays in native memory (wiped).
        if (spec.Get("keychain").ToBoolean()) {
          std::string seed = sealed::KeychainSeed(name);
          std::string ikm;
          ikm.reserve(seed.size() + ikms.back().size());  // no reallocation leaves a copy behind
          ikm.append(seed).append(ikms.back());
          OPENSSL_cleanse(seed.data(), seed.size());
          ikms.back().swap(ikm);  // what is left in ikm is the machine id alone: not a secret
        }
      } else {
        Napi::Value list = spec.Get("ikms");
        if (!list.IsArray()) ThrowType(env, "spec.ikms must be an array of Buffers when spec.machine is not set");
        Napi::Array arr = list.As<Napi::Array>();
        if (arr.Length() == 0 || arr.Length() > 16) ThrowRange(env, "spec.ikms must hold 1 to 16 keys");
        for (uint32_t i = 0; i < arr.Length(); i++) {
          Napi::Value v = arr.Get(i);
          if (!v.IsTypedArray()) ThrowType(env, "spec.ikms[" + std::to_string(i) + "] must be a Buffer");
          Napi::TypedArray ta = v.As<Napi::TypedArray>();
          if (ta.ByteLength() == 0 || ta.ByteLength() > 4096)
            ThrowRange(env, "spec.ikms[" + std::to_string(i) + "] must be 1 to 4096 bytes");
          const char* p = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
          ikms.emplace_back(p, ta.ByteLength());
        }
      }
      if (!boot_id && bind_to_boot) boot_id = sealed::ReadBootId();
      ring_ = std::make_shared<const sealed::KeyRing>(ikms, scope, name, uid.value_or(""), boot_id.value_or(""));
      return 0;
    });
    info.This().As<Napi::Object>().TypeTag(&kKeyRingTag);
  }

  // The ring for a call, or ERR_SESSION_CLOSED. Workers hold their own reference.
  std::shared_ptr<const sealed::KeyRing> Ring(Napi::Env env) const {
    if (!ring_) throw MakeError(env, {code::kClosed, "the key ring is closed", 0, ""});
    return ring_;
  }

  static KeyRingWrap* From(Napi::Env env, Napi::Value v, const char* name) {
    if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kKeyRingTag))
      ThrowType(env, std::string(name) + " must be a KeyRing");
    return Unwrap(v.As<Napi::Object>());
  }

 private:
  Napi::Value KeyIds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array arr = Napi::Array::New(env);
    if (ring_) {
      for (size_t i = 0; i < ring_->size(); i++)
        arr.Set(static_cast<uint32_t>(i),
                Napi::String::New(env, sealed::ToHex(ring_->key(i).id.data(), sealed::kKeyIdSize)));
    }
    return arr;
  }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !ring_); }
  Napi::Value Flags(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ring_ ? ring_->flags() : 0);
  }
  // Drops our reference: the keys are wiped now, or when the last in-flight call ends.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ring_.reset();
    return info.Env().Undefined();
  }

  // seal(plaintext, context, createdAt, expiresAt, nonce?)
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes pt = GetBytes(info, 0, "plaintext", true);
    std::string ctx = GetString(info, 1, "context");
    uint64_t created = GetUint(info, 2, "createdAt");
    uint64_t expires = GetUint(info, 3, "expiresAt");
    std::optional<Bytes> nonce;
    if (info.Length() > 4 && !info[4].IsUndefined()) {
      nonce = GetBytes(info, 4, "nonce", false);
      if (nonce->size() != sealed::kNonceSize) ThrowRange(env, "nonce must be 12 bytes");
    }
    auto ring = Ring(env);
    std::vector<uint8_t> env_bytes = Guard(env, [&] {
      return sealed::Seal(*ring, pt.data(), pt.size(), ctx, created, expires, nonce ? nonce->data() : nullptr);
    });
    return Napi::Buffer<uint8_t>::Copy(env, env_bytes.data(), env_bytes.size());
  }

  // open(envelope, context, maxBytes, asString?)
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes data = GetBytes(info, 0, "envelope", false);
    std::string ctx = GetString(info, 1, "context");
    uint64_t max = GetUint(info, 2, "maxBytes", uint64_t{1} << 31);
    bool as_string = false;  // the plaintext decoded as UTF-8 natively: no Buffer to allocate
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      if (!info[3].IsBoolean()) ThrowType(env, "asString must be a boolean");
      as_string = info[3].As<Napi::Boolean>().Value();
    }
    auto ring = Ring(env);
    sealed::Opened o = Guard(env, [&] { return sealed::Open(*ring, data.data(), data.size(), ctx, max); });
    return OpenedObject(env, o, as_string);
  }

  // mac(message, keyIndex = 0): lowercase hex HMAC-SHA256 of the message's UTF-8 bytes.
  Napi::Value Mac(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string msg = GetString(info, 0, "message");
    uint64_t index = 0;
    if (info.Length() > 1 && !info[1].IsUndefined()) index = GetUint(info, 1, "keyIndex", 16);
    auto ring = Ring(env);
    if (index >= ring->size()) ThrowRange(env, "keyIndex must name a key of the ring");
    uint8_t out[sealed::kMacSize];
    Guard(env, [&] {
      ring->Mac(static_cast<size_t>(index), reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), out);
    });
    return Napi::String::New(env, sealed::ToHex(out, sizeof out));
  }

  std::shared_ptr<const sealed::KeyRing> ring_;
};

// ---- Lock -------------------------------------------------------------------------------

class LockWrap : public Napi::ObjectWrap<LockWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Lock", {InstanceMethod<&LockWrap::Release>("release")});
  }
  explicit LockWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LockWrap>(info) {
    // Only made from C++ with an External holding the lock.
    if (info.Length() < 1 || !info[0].IsExternal()) ThrowType(info.Env(), "Lock cannot be constructed directly");
    auto* ext = info[0].As<Napi::External<std::unique_ptr<sealed::FileLock>>>().Data();
    lock_ = std::move(*ext);
    info.This().As<Napi::Object>().TypeTag(&kLockTag);
  }

 private:
  Napi::Value Release(const Napi::CallbackInfo& info) {
    lock_.reset();
    return info.Env().Undefined();
  }
  std::unique_ptr<sealed::FileLock> lock_;  // released on GC too
};

// ---- PrivateDir -------------------------------------------------------------------------

class Addon;

class PrivateDirWrap : public Napi::ObjectWrap<PrivateDirWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PrivateDir",
                       {
                           InstanceAccessor<&PrivateDirWrap::Path>("path"),
                           InstanceAccessor<&PrivateDirWrap::Id>("id"),
                           InstanceAccessor<&PrivateDirWrap::Closed>("closed"),
                           InstanceMethod<&PrivateDirWrap::Close>("close"),
                           InstanceMethod<&PrivateDirWrap::SealToFile>("sealToFile"),
                           InstanceMethod<&PrivateDirWrap::SealToFileSync>("sealToFileSync"),
                           InstanceMethod<&PrivateDirWrap::OpenFile>("openFile"),
                           InstanceMethod<&PrivateDirWrap::OpenFileSync>("openFileSync"),
                           InstanceMethod<&PrivateDirWrap::OpenFileNow>("openFileNow"),
                           InstanceMethod<&PrivateDirWrap::Remove>("remove"),
                           InstanceMethod<&PrivateDirWrap::RemoveSync>("removeSync"),
                           InstanceMethod<&PrivateDirWrap::Peek>("peek"),
                           InstanceMethod<&PrivateDirWrap::List>("list"),
                           InstanceMethod<&PrivateDirWrap::Sweep>("sweep"),
                           InstanceMethod<&PrivateDirWrap::SweepSync>("sweepSync"),
                           InstanceMethod<&PrivateDirWrap::Lock>("lock"),
                           InstanceMethod<&PrivateDirWrap::LockSync>("lockSync"),
                           InstanceMethod<&PrivateDirWrap::TryLockSync>("tryLockSync"),
                           InstanceMethod<&PrivateDirWrap::CasSeal>("casSeal"),
                       });
  }

  // new PrivateDir(path, create), or (from openPrivateDir) new PrivateDir(External<opened dir>)
  explicit PrivateDirWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PrivateDirWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() == 1 && info[0].IsExternal()) {
      dir_ = *info[0].As<Napi::External<std::shared_ptr<const sealed::PrivateDir>>>().Data();
      path_ = dir_->path();
      id_ = dir_->id();
    } else {
      path_ = GetString(info, 0, "path");
      if (info.Length() < 2 || !info[1].IsBoolean()) ThrowType(env, "create must be a boolean");
      bool create = info[1].As<Napi::Boolean>().Value();
      dir_ = Guard(env, [&] { return std::make_shared<const sealed::PrivateDir>(path_, create); });
      id_ = dir_->id();
    }
    info.This().As<Napi::Object>().TypeTag(&kPrivateDirTag);
  }

 private:
  std::shared_ptr<const sealed::PrivateDir> Dir(Napi::Env env) const {
    if (!dir_) throw MakeError(env, {code::kClosed, "the directory handle is closed", 0, ""});
    return dir_;
  }

  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }
  // Kept after close(), like path: a lock queue keyed by it outlives the handle.
  Napi::Value Id(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), id_); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !dir_); }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    dir_.reset();
    return info.Env().Undefined();
  }

  // Arguments shared by sealToFile and its sync twin.
  struct SealArgs {
    std::shared_ptr<const sealed::KeyRing> ring;
    std::string name;
    Bytes plaintext;
    std::string context;
    uint64_t created_at, expires_at;
    bool existing_only;
  };
  SealArgs GetSealArgs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SealArgs a;
    KeyRingWrap* ring = KeyRingWrap::From(env, info[0], "ring");
    a.name = GetString(info, 1, "name");
    a.plaintext = GetBytes(info, 2, "plaintext", true);
    a.context = GetString(info, 3, "context");
    a.created_at = GetUint(info, 4, "createdAt");
    a.expires_at = GetUint(info, 5, "expiresAt");
    a.existing_only = false;
    if (info.Length() > 6 && !info[6].IsUndefined()) {
      if (!info[6].IsBoolean()) ThrowType(env, "existingOnly must be a boolean");
      a.existing_only = info[6].As<Napi::Boolean>().Value();
    }
    a.ring = ring->Ring(env);
    return a;
  }
  Napi::Value SealToFileSync(const Napi::CallbackInfo& info) {
    SealArgs a = GetSealArgs(info);
    auto dir = Dir(info.Env());
    bool written = Guard(info.Env(), [&] {
      return dir->SealToFile(*a.ring, a.name, a.plaintext.data(), a.plaintext.size(), a.context, a.created_at,
                             a.expires_at, a.existing_only);
    });
    return Napi::Boolean::New(info.Env(), written);
  }
  Napi::Value SealToFile(const Napi::CallbackInfo& info) {
    auto a = std::make_shared<SealArgs>(GetSealArgs(info));
    a->plaintext.Own();
    auto dir = Dir(info.Env());
    return PromiseWorker<bool>::Start(
        info.Env(),
        [dir, a] {
          return dir->SealToFile(*a->ring, a->name, a->plaintext.data(), a->plaintext.size(), a->context, a->created_at,
                                 a->expires_at, a->existing_only);
        },
        [](Napi::Env env, bool& written) -> Napi::Value { return Napi::Boolean::New(env, written); });
  }

  struct OpenArgs {
    std::shared_ptr<const sealed::KeyRing> ring;
    std::string name, context;
    uint64_t max_bytes, now;
    unsigned flags;
  };
  // The ring argument, unwrapped. The store and the manager pass the same ring on every read:
  // the last one is remembered (weakly) and recognised by identity, saving the unwrap and
  // type-tag lookups (two private-symbol property reads, a fifth of a read's instructions).
  KeyRingWrap* RingArg(Napi::Env env, Napi::Value v) {
    if (last_ring_ptr_ != nullptr) {
      Napi::Object cached = last_ring_.Value();
      bool same = false;
      if (!cached.IsEmpty() && napi_strict_equals(env, cached, v, &same) == napi_ok && same) return last_ring_ptr_;
    }
    KeyRingWrap* ring = KeyRingWrap::From(env, v, "ring");
    last_ring_ = Napi::Weak(v.As<Napi::Object>());
    last_ring_ptr_ = ring;
    return ring;
  }
  Napi::ObjectReference last_ring_;
  KeyRingWrap* last_ring_ptr_ = nullptr;

  OpenArgs GetOpenArgs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    OpenArgs a;
    KeyRingWrap* ring = RingArg(env, info[0]);
    a.name = GetString(info, 1, "name");
    a.context = GetString(info, 2, "context");
    a.max_bytes = GetUint(info, 3, "maxBytes", uint64_t{1} << 31);
    a.now = GetUint(info, 4, "now");
    a.flags = static_cast<unsigned>(GetUint(info, 5, "flags", 15));
    a.ring = ring->Ring(env);
    return a;
  }
  Napi::Value OpenFileSync(const Napi::CallbackInfo& info) {
    OpenArgs a = GetOpenArgs(info);
    auto dir = Dir(info.Env());
    sealed::OpenFileResult r =
        Guard(info.Env(), [&] { return dir->OpenFile(*a.ring, a.name, a.context, a.max_bytes, a.now, a.flags); });
    return OpenFileResultValue(info.Env(), r, a.flags & kOpenAsString);
  }
  Napi::Value OpenFile(const Napi::CallbackInfo& info);
  Napi::Value OpenFileNow(const Napi::CallbackInfo& info);

  Napi::Value RemoveSync(const Napi::CallbackInfo& info) {
    std::string name = GetString(info, 0, "name");
    auto dir = Dir(info.Env());
    return Napi::Boolean::New(info.Env(), Guard(info.Env(), [&] { return dir->Remove(name); }));
  }
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    std::string name = GetString(info, 0, "name");
    auto dir = Dir(info.Env());
    return PromiseWorker<bool>::Start(
        info.Env(), [dir, name] { return dir->Remove(name); },
        [](Napi::Env env, bool& removed) -> Napi::Value { return Napi::Boolean::New(env, removed); });
  }

  Napi::Value Peek(const Napi::CallbackInfo& info) {
    std::string name = GetString(info, 0, "name");
    auto dir = Dir(info.Env());
    return PromiseWorker<std::optional<sealed::Header>>::Start(
        info.Env(), [dir, name] { return dir->Peek(name); },
        [](Napi::Env env, std::optional<sealed::Header>& h) -> Napi::Value {
          return h ? Napi::Value(HeaderObject(env, *h)) : env.Null();
        });
  }

  Napi::Value List(const Napi::CallbackInfo& info) {
    auto dir = Dir(info.Env());
    return PromiseWorker<std::vector<std::string>>::Start(
        info.Env(), [dir] { return dir->List(); },
        [](Napi::Env env, std::vector<std::string>& names) -> Napi::Value {
          Napi::Array arr = Napi::Array::New(env, names.size());
          for (size_t i = 0; i < names.size(); i++) arr.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
          return arr;
        });
  }

  // sweep(now, collectPrefix = ''): the names starting with collectPrefix come back in `collected`.
  static std::string CollectPrefix(const Napi::CallbackInfo& info) {
    return info.Length() > 1 && !info[1].IsUndefined() ? GetString(info, 1, "collectPrefix") : std::string();
  }
  Napi::Value SweepSync(const Napi::CallbackInfo& info) {
    uint64_t now = GetUint(info, 0, "now");
    std::string prefix = CollectPrefix(info);
    auto dir = Dir(info.Env());
    sealed::SweepStats s = Guard(info.Env(), [&] { return dir->Sweep(now, prefix); });
    return SweepObject(info.Env(), s);
  }
  Napi::Value Sweep(const Napi::CallbackInfo& info) {
    uint64_t now = GetUint(info, 0, "now");
    std::string prefix = CollectPrefix(info);
    auto dir = Dir(info.Env());
    return PromiseWorker<sealed::SweepStats>::Start(
        info.Env(), [dir, now, prefix] { return dir->Sweep(now, prefix); },
        [](Napi::Env env, sealed::SweepStats& s) -> Napi::Value { return SweepObject(env, s); });
  }

  Napi::Value LockSync(const Napi::CallbackInfo& info);
  Napi::Value Lock(const Napi::CallbackInfo& info);
  Napi::Value TryLockSync(const Napi::CallbackInfo& info);
  Napi::Value CasSeal(const Napi::CallbackInfo& info);

  std::string path_;
  std::string id_;
  std::shared_ptr<const sealed::PrivateDir> dir_;
};

// ---- the addon (per-load state) ---------------------------------------------------------

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    Napi::Function key_ring = KeyRingWrap::Define(env);
    Napi::Function private_dir = PrivateDirWrap::Define(env);
    Napi::Function lock = LockWrap::Define(env);
    lock_ctor_ = Napi::Persistent(lock);
    private_dir_ctor_ = Napi::Persistent(private_dir);
    set_immediate_ = Napi::Persistent(env.Global().Get("setImmediate").As<Napi::Function>());
    flush_ = Napi::Persistent(Napi::Function::New(
        env, [this](const Napi::CallbackInfo& info) { Flush(info); }, "flushInlineReads"));
    opened_factory_ = Napi::Persistent(env.RunScript(kOpenedFactorySource).As<Napi::Function>());
    DefineAddon(
        exports,
        {
            InstanceValue("KeyRing", key_ring, napi_enumerable),
            InstanceValue("PrivateDir", private_dir, napi_enumerable),
            InstanceMethod<&Addon::PeekHeader>("peekHeader", napi_enumerable),
            InstanceMethod<&Addon::OpenPrivateDir>("openPrivateDir", napi_enumerable),
            InstanceMethod<&Addon::InlineReads>("inlineReads", napi_enumerable),
            InstanceMethod<&Addon::SetInlineReadMode>("setInlineReadMode", napi_enumerable),
            InstanceMethod<&Addon::MachineId>("machineId", napi_enumerable),
            InstanceMethod<&Addon::BootId>("bootId", napi_enumerable),
            InstanceMethod<&Addon::LiveKeyRings>("liveKeyRings", napi_enumerable),
            InstanceMethod<&Addon::KeychainStatus>("keychainStatus", napi_enumerable),
            InstanceValue("HEADER_SIZE", Napi::Number::New(env, sealed::kHeaderSize), napi_enumerable),
            InstanceValue("MIN_ENVELOPE_SIZE", Napi::Number::New(env, sealed::kMinEnvelope), napi_enumerable),
            InstanceValue("DEFAULT_MAX_BYTES", Napi::Number::New(env, sealed::kDefaultMaxBytes), napi_enumerable),
        });
  }

  Napi::Object NewLock(Napi::Env env, std::unique_ptr<sealed::FileLock>& lock) {
    auto ext = Napi::External<std::unique_ptr<sealed::FileLock>>::New(env, &lock);
    return lock_ctor_.New({ext});
  }

 private:
  Napi::Value PeekHeader(const Napi::CallbackInfo& info) {
    Bytes b = GetBytes(info, 0, "envelope", false);
    sealed::Header h = Guard(info.Env(), [&] { return sealed::ParseHeader(b.data(), b.size(), sealed::kHeaderSize); });
    return HeaderObject(info.Env(), h);
  }
  Napi::Value MachineId(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), Guard(info.Env(), [] { return sealed::ReadMachineId(); }));
  }
  Napi::Value BootId(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), Guard(info.Env(), [] { return sealed::ReadBootId(); }));
  }

  // Key rings not yet destroyed (and so not yet wiped), process-wide.
  Napi::Value LiveKeyRings(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(sealed::KeyRing::LiveCount()));
  }

  Napi::Value KeychainStatus(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), Guard(info.Env(), [] { return sealed::KeychainStatus(); }));
  }

  // openPrivateDir(path, create) → Promise<PrivateDir>: the directory opened (and created) on
  // the thread pool, for async paths that must not block the main thread.
  Napi::Value OpenPrivateDir(const Napi::CallbackInfo& info) {
    std::string path = GetString(info, 0, "path");
    if (info.Length() < 2 || !info[1].IsBoolean()) ThrowType(info.Env(), "create must be a boolean");
    bool create = info[1].As<Napi::Boolean>().Value();
    using Dir = std::shared_ptr<const sealed::PrivateDir>;
    return PromiseWorker<Dir>::Start(
        info.Env(), [path, create] { return std::make_shared<const sealed::PrivateDir>(path, create); },
        [](Napi::Env env, Dir& dir) -> Napi::Value {
          auto ext = Napi::External<Dir>::New(env, &dir);
          return env.GetInstanceData<Addon>()->private_dir_ctor_.New({ext});
        });
  }

  // inlineReads() → { available, attempts, inline, pool }: whether the kernel still serves
  // non-blocking reads in this process, and how this instance's async file reads went.
  Napi::Value InlineReads(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("available", Napi::Boolean::New(env, sealed::nowait::Available()));
    o.Set("attempts", Napi::Number::New(env, static_cast<double>(reads.attempts)));
    o.Set("inline", Napi::Number::New(env, static_cast<double>(reads.served_inline)));
    o.Set("pool", Napi::Number::New(env, static_cast<double>(reads.pool)));
    return o;
  }

  // setInlineReadMode(0 | 1 | 2 | 3 | 4): normal, or the switches of nowait::Mode (force the pool
  // fallback as on a cold page cache; answer ENOSYS as a kernel without openat2; no attempt;
  // answer EOPNOTSUPP as a filesystem without RWF_NOWAIT).
  Napi::Value SetInlineReadMode(const Napi::CallbackInfo& info) {
    inline_mode = static_cast<sealed::nowait::Mode>(GetUint(info, 0, "mode", 4));
    return info.Env().Undefined();
  }

  Napi::FunctionReference lock_ctor_;
  Napi::FunctionReference private_dir_ctor_;

 public:
  Napi::Function OpenedFactory() const { return opened_factory_.Value(); }

  // An inline read's promise is settled from a setImmediate callback, on a later turn of the
  // event loop, as a pool read would be: a caller that starts a new read from each settlement
  // (64 in flight) still lets timers and I/O run between batches, instead of chaining
  // microtasks for as long as reads are cached. One immediate settles up to kSettlePerTurn
  // reads; the rest wait for the next turn, so a burst is cut into slices the loop can breathe
  // between (a slice: those settlements and whatever their callers do next, new reads included).
  static constexpr size_t kSettlePerTurn = 16;
  Napi::Value SettleLater(Napi::Env env, sealed::OpenFileResult r, std::optional<ErrorInfo> error, bool as_string) {
    napi_deferred deferred;
    napi_value promise;
    if (napi_create_promise(env, &deferred, &promise) != napi_ok)
      throw Napi::Error::New(env, "could not create a promise");
    pending_.push_back(Pending{deferred, std::move(r), std::move(error), as_string});
    if (!flush_scheduled_) {
      set_immediate_.Call(env.Global(), {flush_.Value()});
      flush_scheduled_ = true;
    }
    return Napi::Value(env, promise);
  }

 private:
  struct Pending {
    napi_deferred deferred;
    sealed::OpenFileResult result;
    std::optional<ErrorInfo> error;
    bool as_string;
  };

  void Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    flush_scheduled_ = false;
    std::vector<Pending> batch;
    if (pending_.size() <= kSettlePerTurn) {
      batch.swap(pending_);
    } else {
      const auto cut = pending_.begin() + static_cast<std::ptrdiff_t>(kSettlePerTurn);
      batch.assign(std::make_move_iterator(pending_.begin()), std::make_move_iterator(cut));
      pending_.erase(pending_.begin(), cut);
    }
    for (Pending& p : batch) {
      Napi::HandleScope scope(env);
      napi_value value;
      bool ok = !p.error;
      if (ok) {
        try {
          value = OpenFileResultValue(env, p.result, p.as_string);
        } catch (const Napi::Error& e) {
          value = e.Value();
          ok = false;
        } catch (const std::bad_alloc&) {
          value = MakeError(env, {"ERR_SESSION_NO_MEMORY", "out of memory", 0, ""}).Value();
          ok = false;
        }
      } else {
        value = MakeError(env, *p.error).Value();
      }
      if (ok) napi_resolve_deferred(env, p.deferred, value);
      else napi_reject_deferred(env, p.deferred, value);
    }
    // The rest on the next turn: queued from inside an immediate, after timers and I/O. Still
    // ahead of the reads this slice's callers start next (they run once this callback returns).
    if (!pending_.empty()) {
      set_immediate_.Call(env.Global(), {flush_.Value()});
      flush_scheduled_ = true;
    }
  }

  std::vector<Pending> pending_;
  bool flush_scheduled_ = false;
  Napi::FunctionReference set_immediate_;
  Napi::FunctionReference flush_;

 public:
  // Per instance (main thread only): the test switch and counters of inline reads.
  sealed::nowait::Mode inline_mode = sealed::nowait::Mode::kNormal;
  struct {
    uint64_t attempts = 0, served_inline = 0, pool = 0;
  } reads;

 private:
  Napi::FunctionReference opened_factory_;
};

Napi::Function OpenedFactory(Napi::Env env) { return env.GetInstanceData<Addon>()->OpenedFactory(); }

// An async read tries first on the main thread, where the kernel can serve it without waiting
// (page cache, cached lookups: see nowait.h), and goes to the pool otherwise. An inline result
// still settles the promise on a later tick: promise reactions never run synchronously.
Napi::Value PrivateDirWrap::OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto a = std::make_shared<OpenArgs>(GetOpenArgs(info));
  auto dir = Dir(env);
  Addon* addon = env.GetInstanceData<Addon>();
  const bool as_string = a->flags & kOpenAsString;
  if (sealed::nowait::Available() && addon->inline_mode != sealed::nowait::Mode::kOff && dir->InlineReadsSupported()) {
    addon->reads.attempts++;
    sealed::OpenFileResult r;
    std::optional<ErrorInfo> error;
    sealed::InlineRead st;
    try {
      st =
          dir->TryOpenFileInline(*a->ring, a->name, a->context, a->max_bytes, a->now, a->flags, addon->inline_mode, &r);
    } catch (const Error& e) {
      error = Capture(e);
      st = sealed::InlineRead::kDone;
    } catch (const std::bad_alloc&) {
      error = ErrorInfo{"ERR_SESSION_NO_MEMORY", "out of memory", 0, ""};
      st = sealed::InlineRead::kDone;
    }
    if (st == sealed::InlineRead::kDone) {
      addon->reads.served_inline++;
      return addon->SettleLater(env, std::move(r), std::move(error), as_string);
    }
  }
  addon->reads.pool++;
  return PromiseWorker<sealed::OpenFileResult>::Start(
      env, [dir, a] { return dir->OpenFile(*a->ring, a->name, a->context, a->max_bytes, a->now, a->flags); },
      [as_string](Napi::Env env, sealed::OpenFileResult& r) { return OpenFileResultValue(env, r, as_string); });
}

// openFile's inline attempt on its own, answered synchronously: the result when the kernel could
// serve it without blocking, undefined when only the pool can (the caller then uses openFile).
Napi::Value PrivateDirWrap::OpenFileNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenArgs a = GetOpenArgs(info);
  auto dir = Dir(env);
  Addon* addon = env.GetInstanceData<Addon>();
  if (!sealed::nowait::Available() || addon->inline_mode == sealed::nowait::Mode::kOff || !dir->InlineReadsSupported())
    return env.Undefined();
  addon->reads.attempts++;
  sealed::OpenFileResult r;
  sealed::InlineRead st = Guard(env, [&] {
    return dir->TryOpenFileInline(*a.ring, a.name, a.context, a.max_bytes, a.now, a.flags, addon->inline_mode, &r);
  });
  if (st != sealed::InlineRead::kDone) return env.Undefined();
  addon->reads.served_inline++;
  return OpenFileResultValue(env, r, a.flags & kOpenAsString);
}

Napi::Value PrivateDirWrap::LockSync(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  std::unique_ptr<sealed::FileLock> lock = Guard(info.Env(), [&] { return dir->Lock(name); });
  return info.Env().GetInstanceData<Addon>()->NewLock(info.Env(), lock);
}

// tryLockSync(name) → Lock | null: never waits (the main thread must not block on a lock that an
// in-process holder keeps while it waits for the main thread).
Napi::Value PrivateDirWrap::TryLockSync(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  std::unique_ptr<sealed::FileLock> lock = Guard(info.Env(), [&] { return dir->TryLock(name); });
  if (!lock) return info.Env().Null();
  return info.Env().GetInstanceData<Addon>()->NewLock(info.Env(), lock);
}

Napi::Value PrivateDirWrap::Lock(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  // shared_ptr: std::function needs a copyable result holder.
  return PromiseWorker<std::shared_ptr<std::unique_ptr<sealed::FileLock>>>::Start(
      info.Env(), [dir, name] { return std::make_shared<std::unique_ptr<sealed::FileLock>>(dir->Lock(name)); },
      [](Napi::Env env, std::shared_ptr<std::unique_ptr<sealed::FileLock>>& lock) -> Napi::Value {
        return env.GetInstanceData<Addon>()->NewLock(env, *lock);
      });
}

}  // namespace

NODE_API_ADDON(Addon)

// casSeal(ring, name, stripe, plaintext, context, createdAt, expiresAt, maxBytes, now, mode, expected)
// mode: 0 any, 1 absent, 2 version. Resolves { outcome, current?, lock?, unreadable? }.
Napi::Value PrivateDirWrap::CasSeal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct Args {
    std::shared_ptr<const sealed::KeyRing> ring;
    std::string name, stripe, context;
    Bytes plaintext;
    uint64_t created_at, expires_at, max_bytes, now, expected;
    sealed::CasMode mode;
  };
  auto a = std::make_shared<Args>();
  KeyRingWrap* ring = KeyRingWrap::From(env, info[0], "ring");
  a->name = GetString(info, 1, "name");
  a->stripe = GetString(info, 2, "stripe");
  a->plaintext = GetBytes(info, 3, "plaintext", true);
  a->plaintext.Own();
  a->context = GetString(info, 4, "context");
  a->created_at = GetUint(info, 5, "createdAt");
  a->expires_at = GetUint(info, 6, "expiresAt");
  a->max_bytes = GetUint(info, 7, "maxBytes", uint64_t{1} << 31);
  a->now = GetUint(info, 8, "now");
  a->mode = static_cast<sealed::CasMode>(GetUint(info, 9, "mode", 2));
  a->expected = GetUint(info, 10, "expected", (uint64_t{1} << 53) - 1);
  a->ring = ring->Ring(env);
  auto dir = Dir(env);
  return PromiseWorker<std::shared_ptr<sealed::CasResult>>::Start(
      env,
      [dir, a] {
        return std::make_shared<sealed::CasResult>(
            sealed::CasSeal(*dir, *a->ring, a->name, a->stripe, a->plaintext.data(), a->plaintext.size(), a->context,
                            a->created_at, a->expires_at, a->max_bytes, a->now, a->mode, a->expected));
      },
      [](Napi::Env env, std::shared_ptr<sealed::CasResult>& r) -> Napi::Value {
        static const char* kOutcomes[] = {"written", "missing", "conflict", "exists"};
        Napi::Object o = Napi::Object::New(env);
        o.Set("outcome", Napi::String::New(env, kOutcomes[r->outcome]));
        if (!r->unreadable.empty()) o.Set("unreadable", Napi::String::New(env, r->unreadable));
        if (r->outcome == sealed::CasResult::kConflict) {
          o.Set("current", Napi::String::New(env, r->current));
          o.Set("lock", env.GetInstanceData<Addon>()->NewLock(env, r->lock));
        }
        return o;
      });
}
