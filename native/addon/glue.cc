#include "glue.h"

#include <cmath>

#include "../core/crypto.h"
#include "../core/hex.h"
#include "../core/keys.h"

namespace sealed::addon {

ErrorInfo Capture(const Error& e) { return {e.code(), e.what(), e.sys_errno(), e.syscall() ? e.syscall() : ""}; }

ErrorInfo OutOfMemory() { return {code::kNoMemory, "out of memory", 0, ""}; }

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

void ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError err = Napi::TypeError::New(env, message);
  err.Set("code", Napi::String::New(env, code::kInvalidArgType));
  throw err;
}

void ThrowRange(Napi::Env env, const std::string& message) {
  Napi::RangeError err = Napi::RangeError::New(env, message);
  err.Set("code", Napi::String::New(env, code::kOutOfRange));
  throw err;
}

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

std::string GetString(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsString()) ThrowType(env, name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Bytes Bytes::Borrow(const uint8_t* p, size_t n) {
  Bytes b;
  b.borrowed_ = p;
  b.size_ = n;
  return b;
}

Bytes Bytes::Copy(std::string s) {
  Bytes b;
  b.owned_ = std::move(s);
  b.is_owned_ = true;
  b.size_ = b.owned_.size();
  return b;
}

void Bytes::Own() {
  if (is_owned_) return;
  owned_.assign(reinterpret_cast<const char*>(borrowed_), size_);
  is_owned_ = true;
}

Bytes GetBytes(Napi::Env env, Napi::Value v, const std::string& name, bool allow_string) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    const uint8_t* p = static_cast<const uint8_t*>(ab.Data());
    if (p == nullptr) return Bytes::Borrow(reinterpret_cast<const uint8_t*>(""), 0);
    return Bytes::Borrow(p + ta.ByteOffset(), ta.ByteLength());
  }
  if (allow_string && v.IsString()) return Bytes::Copy(v.As<Napi::String>().Utf8Value());
  ThrowType(env, name + (allow_string ? " must be a Buffer, Uint8Array or string" : " must be a Buffer or Uint8Array"));
}

uint64_t GetUint(Napi::Env env, Napi::Value v, const std::string& name, uint64_t max) {
  if (!v.IsNumber()) ThrowType(env, name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > static_cast<double>(max))
    ThrowRange(env, name + " must be an integer from 0 to " + std::to_string(max));
  return static_cast<uint64_t>(d);
}

Napi::Object HeaderObject(Napi::Env env, const Header& h) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", Napi::Number::New(env, h.version));
  o.Set("flags", Napi::Number::New(env, h.flags));
  o.Set("keyId", Napi::String::New(env, ToHex(h.key_id, kKeyIdSize)));
  o.Set("createdAt", Napi::Number::New(env, static_cast<double>(h.created_at)));
  o.Set("expiresAt", Napi::Number::New(env, static_cast<double>(h.expires_at)));
  return o;
}

Napi::Function OpenedFactory(Napi::Env env);  // addon.cc: per instance

Napi::Value OpenedObject(Napi::Env env, Opened& o, bool as_string) {
  const Header& h = o.header;
  const char* p = reinterpret_cast<const char*>(o.plaintext.data());
  napi_value args[7] = {
      Napi::Number::New(env, h.version),
      Napi::Number::New(env, h.flags),
      Napi::String::New(env, ToHex(h.key_id, kKeyIdSize)),
      Napi::Number::New(env, static_cast<double>(h.created_at)),
      Napi::Number::New(env, static_cast<double>(h.expires_at)),
      as_string ? Napi::Value(Napi::String::New(env, o.plaintext.empty() ? "" : p, o.plaintext.size()))
                : Napi::Value(Napi::Buffer<char>::Copy(env, o.plaintext.empty() ? "" : p, o.plaintext.size())),
      Napi::Number::New(env, o.key_index),
  };
  crypto::Cleanse(o.plaintext.data(), o.plaintext.size());
  return OpenedFactory(env).Call(env.Undefined(), 7, args);
}

Napi::Value OpenFileResultValue(Napi::Env env, OpenFileResult& r, bool as_string) {
  switch (r.status) {
    case OpenFileResult::kMissing:
      return env.Null();
    case OpenFileResult::kExpired: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("expired", Napi::Boolean::New(env, true));
      o.Set("createdAt", Napi::Number::New(env, static_cast<double>(r.opened.header.created_at)));
      o.Set("expiresAt", Napi::Number::New(env, static_cast<double>(r.opened.header.expires_at)));
      return o;
    }
    case OpenFileResult::kOk:
      break;
  }
  return OpenedObject(env, r.opened, as_string);
}

Napi::Object SweepObject(Napi::Env env, const SweepStats& s) {
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

}  // namespace sealed::addon
