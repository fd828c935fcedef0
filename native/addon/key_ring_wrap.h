// KeyRing: a ring of derived keys held in native memory (wiped when the last holder lets go),
// with seal/open/mac for envelopes that do not live in a private directory (Redis values).
#pragma once
#include <memory>

#include "../core/keys.h"
#include "glue.h"

namespace sealed::addon {

class KeyRingWrap : public Napi::ObjectWrap<KeyRingWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new KeyRing({ scope, name, machine?, keychain?, ikms?, uid?, bindToBoot?, bootId? })
  explicit KeyRingWrap(const Napi::CallbackInfo& info);

  // The ring for a call, or ERR_SESSION_CLOSED. Workers hold their own reference.
  std::shared_ptr<const KeyRing> Ring(Napi::Env env) const;
  static KeyRingWrap* From(Napi::Env env, Napi::Value v, const char* name);

 private:
  Napi::Value KeyIds(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);
  Napi::Value Flags(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Seal(const Napi::CallbackInfo& info);
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Mac(const Napi::CallbackInfo& info);

  std::shared_ptr<const KeyRing> ring_;
};

}  // namespace sealed::addon
