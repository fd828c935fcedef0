// Thin N-API glue over the core (native/core). This file registers the addon and holds its
// per-load state; the wrappers live beside it (key_ring_wrap, private_dir_wrap), and the shared
// argument, error and worker handling in glue.
#include "addon.h"

#include <iterator>
#include <string>

#include "../core/crypto.h"
#include "../core/envelope.h"
#include "../core/keychain.h"
#include "../core/keys.h"
#include "../core/machine_id.h"
#include "key_ring_wrap.h"
#include "private_dir_wrap.h"

namespace sealed::addon {

namespace {

// The opened-envelope object is built by a tiny JS function (compiled once per addon
// instance): an object literal gets its final shape in one allocation, where setting seven
// named properties through Node-API walks seven map transitions and internalizes seven keys
// on every call (that was most of the cost of a read). Same keys, order and attributes.
constexpr const char* kOpenedFactorySource =
    "'use strict';(function opened(version, flags, keyId, createdAt, expiresAt, plaintext, keyIndex) {"
    "return { version, flags, keyId, createdAt, expiresAt, plaintext, keyIndex } })";

// The flags of openFile/openFileSync, exported so JavaScript does not restate them.
Napi::Object OpenFlagsObject(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("REMOVE_EXPIRED", Napi::Number::New(env, kRemoveExpired));
  o.Set("REMOVE_INVALID", Napi::Number::New(env, kRemoveInvalid));
  o.Set("AS_STRING", Napi::Number::New(env, kAsString));
  o.Set("LOCK_HELD", Napi::Number::New(env, kLockHeld));
  o.Freeze();
  return o;
}

}  // namespace

Napi::Function OpenedFactory(Napi::Env env) { return env.GetInstanceData<Addon>()->OpenedFactory(); }

Addon::Addon(Napi::Env env, Napi::Object exports) {
  Napi::Function key_ring = KeyRingWrap::Define(env);
  Napi::Function private_dir = PrivateDirWrap::Define(env);
  Napi::Function lock = LockWrap::Define(env);
  lock_ctor_ = Napi::Persistent(lock);
  private_dir_ctor_ = Napi::Persistent(private_dir);
  set_immediate_ = Napi::Persistent(env.Global().Get("setImmediate").As<Napi::Function>());
  flush_ = Napi::Persistent(Napi::Function::New(
      env, [this](const Napi::CallbackInfo& info) { Flush(info); }, "flushInlineReads"));
  opened_factory_ = Napi::Persistent(env.RunScript(kOpenedFactorySource).As<Napi::Function>());
  DefineAddon(exports,
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
                  InstanceMethod<&Addon::CryptoBackend>("cryptoBackend", napi_enumerable),
                  InstanceValue("OPEN_FLAGS", OpenFlagsObject(env), napi_enumerable),
                  InstanceValue("HEADER_SIZE", Napi::Number::New(env, kHeaderSize), napi_enumerable),
                  InstanceValue("MIN_ENVELOPE_SIZE", Napi::Number::New(env, kMinEnvelope), napi_enumerable),
                  InstanceValue("DEFAULT_MAX_BYTES", Napi::Number::New(env, kDefaultMaxBytes), napi_enumerable),
              });
}

Napi::Object Addon::NewLock(Napi::Env env, std::unique_ptr<FileLock>& lock) {
  auto ext = Napi::External<std::unique_ptr<FileLock>>::New(env, &lock);
  return lock_ctor_.New({ext});
}

Napi::Object Addon::NewPrivateDir(Napi::Env env, std::shared_ptr<const PrivateDir>& dir) {
  auto ext = Napi::External<std::shared_ptr<const PrivateDir>>::New(env, &dir);
  return private_dir_ctor_.New({ext});
}

Napi::Value Addon::PeekHeader(const Napi::CallbackInfo& info) {
  Bytes b = GetBytes(info, 0, "envelope", false);
  Header h = Guard(info.Env(), [&] { return ParseHeader(b.data(), b.size(), kHeaderSize); });
  return HeaderObject(info.Env(), h);
}

Napi::Value Addon::MachineId(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Guard(info.Env(), [] { return ReadMachineId(); }));
}

Napi::Value Addon::BootId(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Guard(info.Env(), [] { return ReadBootId(); }));
}

// Key rings not yet destroyed (and so not yet wiped), process-wide.
Napi::Value Addon::LiveKeyRings(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(KeyRing::LiveCount()));
}

Napi::Value Addon::KeychainStatus(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Guard(info.Env(), [] { return sealed::KeychainStatus(); }));
}

// cryptoBackend() → the crypto backend's name, selecting it; throws
// ERR_SESSION_CRYPTO_UNAVAILABLE (naming what is missing) when there is none.
Napi::Value Addon::CryptoBackend(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Guard(info.Env(), [] { return crypto::BackendName(); }));
}

// openPrivateDir(path, create) → Promise<PrivateDir>: the directory opened (and created) on
// the thread pool, for async paths that must not block the main thread.
Napi::Value Addon::OpenPrivateDir(const Napi::CallbackInfo& info) {
  std::string path = GetString(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsBoolean()) ThrowType(info.Env(), "create must be a boolean");
  bool create = info[1].As<Napi::Boolean>().Value();
  using Dir = std::shared_ptr<const PrivateDir>;
  return PromiseWorker<Dir>::Start(
      info.Env(), [path, create] { return std::make_shared<const PrivateDir>(path, create); },
      [](Napi::Env env, Dir& dir) -> Napi::Value { return env.GetInstanceData<Addon>()->NewPrivateDir(env, dir); });
}

// inlineReads() → { available, attempts, inline, pool }: whether the kernel still serves
// non-blocking reads in this process, and how this instance's async file reads went.
Napi::Value Addon::InlineReads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", Napi::Boolean::New(env, nowait::Available()));
  o.Set("attempts", Napi::Number::New(env, static_cast<double>(reads.attempts)));
  o.Set("inline", Napi::Number::New(env, static_cast<double>(reads.served_inline)));
  o.Set("pool", Napi::Number::New(env, static_cast<double>(reads.pool)));
  return o;
}

// setInlineReadMode(0 | 1 | 2 | 3 | 4): normal, or the switches of nowait::Mode (force the pool
// fallback as on a cold page cache; answer ENOSYS as a kernel without openat2; no attempt;
// answer EOPNOTSUPP as a filesystem without RWF_NOWAIT).
Napi::Value Addon::SetInlineReadMode(const Napi::CallbackInfo& info) {
  inline_mode = static_cast<nowait::Mode>(GetUint(info, 0, "mode", 4));
  return info.Env().Undefined();
}

Napi::Value Addon::SettleLater(Napi::Env env, OpenFileResult r, std::optional<ErrorInfo> error, bool as_string) {
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

void Addon::Flush(const Napi::CallbackInfo& info) {
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
        value = MakeError(env, OutOfMemory()).Value();
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

}  // namespace sealed::addon

// The macro pastes its argument into identifiers: a name without `::`.
using SealedSessionAddon = sealed::addon::Addon;
NODE_API_ADDON(SealedSessionAddon)
