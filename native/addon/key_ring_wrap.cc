#include "key_ring_wrap.h"

#include <optional>
#include <string>
#include <vector>

#include "../core/crypto.h"
#include "../core/hex.h"
#include "../core/keychain.h"
#include "../core/machine_id.h"

namespace sealed::addon {

Napi::Function KeyRingWrap::Define(Napi::Env env) {
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

KeyRingWrap::KeyRingWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KeyRingWrap>(info) {
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
  struct WipeOnExit {
    std::vector<std::string>& v;
    ~WipeOnExit() {
      for (auto& s : v) crypto::Cleanse(s.data(), s.size());
    }
  } wipe{ikms};

  Guard(env, [&] {
    if (machine) {
      ikms.push_back(ReadMachineId());
      uid = CurrentUid();
      // keySource 'keychain': IKM = the app's 32-byte seed from the OS secret store, then
      // the machine id (salt and info unchanged). The seed stays in native memory (wiped).
      if (spec.Get("keychain").ToBoolean()) {
        std::string seed = KeychainSeed(name);
        std::string ikm;
        ikm.reserve(seed.size() + ikms.back().size());  // no reallocation leaves a copy behind
        ikm.append(seed).append(ikms.back());
        crypto::Cleanse(seed.data(), seed.size());
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
    if (!boot_id && bind_to_boot) boot_id = ReadBootId();
    ring_ = std::make_shared<const KeyRing>(ikms, scope, name, uid.value_or(""), boot_id.value_or(""));
    return 0;
  });
  info.This().As<Napi::Object>().TypeTag(&kKeyRingTag);
}

// The ring for a call, or ERR_SESSION_CLOSED. Workers hold their own reference.
std::shared_ptr<const KeyRing> KeyRingWrap::Ring(Napi::Env env) const {
  if (!ring_) throw MakeError(env, {code::kClosed, "the key ring is closed", 0, ""});
  return ring_;
}

KeyRingWrap* KeyRingWrap::From(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kKeyRingTag))
    ThrowType(env, std::string(name) + " must be a KeyRing");
  return Unwrap(v.As<Napi::Object>());
}

Napi::Value KeyRingWrap::KeyIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env);
  if (ring_) {
    for (size_t i = 0; i < ring_->size(); i++)
      arr.Set(static_cast<uint32_t>(i), Napi::String::New(env, ToHex(ring_->key(i).id.data(), kKeyIdSize)));
  }
  return arr;
}
Napi::Value KeyRingWrap::Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !ring_); }
Napi::Value KeyRingWrap::Flags(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ring_ ? ring_->flags() : 0);
}
// Drops our reference: the keys are wiped now, or when the last in-flight call ends.
Napi::Value KeyRingWrap::Close(const Napi::CallbackInfo& info) {
  ring_.reset();
  return info.Env().Undefined();
}

// seal(plaintext, context, createdAt, expiresAt, nonce?)
Napi::Value KeyRingWrap::Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes pt = GetBytes(info, 0, "plaintext", true);
  std::string ctx = GetString(info, 1, "context");
  uint64_t created = GetUint(info, 2, "createdAt");
  uint64_t expires = GetUint(info, 3, "expiresAt");
  std::optional<Bytes> nonce;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    nonce = GetBytes(info, 4, "nonce", false);
    if (nonce->size() != kNonceSize) ThrowRange(env, "nonce must be 12 bytes");
  }
  auto ring = Ring(env);
  std::vector<uint8_t> env_bytes = Guard(env, [&] {
    return sealed::Seal(*ring, pt.data(), pt.size(), ctx, created, expires, nonce ? nonce->data() : nullptr);
  });
  return Napi::Buffer<uint8_t>::Copy(env, env_bytes.data(), env_bytes.size());
}

// open(envelope, context, maxBytes, asString?)
Napi::Value KeyRingWrap::Open(const Napi::CallbackInfo& info) {
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
  Opened o = Guard(env, [&] { return sealed::Open(*ring, data.data(), data.size(), ctx, max); });
  return OpenedObject(env, o, as_string);
}

// mac(message, keyIndex = 0): lowercase hex HMAC-SHA256 of the message's UTF-8 bytes.
Napi::Value KeyRingWrap::Mac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string msg = GetString(info, 0, "message");
  uint64_t index = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) index = GetUint(info, 1, "keyIndex", 16);
  auto ring = Ring(env);
  if (index >= ring->size()) ThrowRange(env, "keyIndex must name a key of the ring");
  uint8_t out[kMacSize];
  Guard(env,
        [&] { ring->Mac(static_cast<size_t>(index), reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), out); });
  return Napi::String::New(env, ToHex(out, sizeof out));
}

}  // namespace sealed::addon
