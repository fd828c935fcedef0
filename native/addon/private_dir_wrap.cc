#include "private_dir_wrap.h"

#include <optional>
#include <vector>

#include "../core/cas.h"
#include "addon.h"

namespace sealed::addon {

Napi::Function LockWrap::Define(Napi::Env env) {
  return DefineClass(env, "Lock", {InstanceMethod<&LockWrap::Release>("release")});
}

LockWrap::LockWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LockWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal()) ThrowType(info.Env(), "Lock cannot be constructed directly");
  auto* ext = info[0].As<Napi::External<std::unique_ptr<FileLock>>>().Data();
  lock_ = std::move(*ext);
  info.This().As<Napi::Object>().TypeTag(&kLockTag);
}

Napi::Value LockWrap::Release(const Napi::CallbackInfo& info) {
  lock_.reset();
  return info.Env().Undefined();
}

Napi::Function PrivateDirWrap::Define(Napi::Env env) {
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
                         InstanceMethod<&PrivateDirWrap::SetSyncWrites>("setSyncWrites"),
                     });
}

// new PrivateDir(path, create), or (from openPrivateDir) new PrivateDir(External<opened dir>)
PrivateDirWrap::PrivateDirWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PrivateDirWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() == 1 && info[0].IsExternal()) {
    dir_ = *info[0].As<Napi::External<std::shared_ptr<const PrivateDir>>>().Data();
    path_ = dir_->path();
    id_ = dir_->id();
  } else {
    path_ = GetString(info, 0, "path");
    if (info.Length() < 2 || !info[1].IsBoolean()) ThrowType(env, "create must be a boolean");
    bool create = info[1].As<Napi::Boolean>().Value();
    bool temps = true;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsBoolean()) ThrowType(env, "removeStaleTemps must be a boolean");
      temps = info[2].As<Napi::Boolean>().Value();
    }
    dir_ = Guard(env, [&] { return std::make_shared<const PrivateDir>(path_, create, temps); });
    id_ = dir_->id();
  }
  info.This().As<Napi::Object>().TypeTag(&kPrivateDirTag);
}

std::shared_ptr<const PrivateDir> PrivateDirWrap::Dir(Napi::Env env) const {
  if (!dir_) throw MakeError(env, {code::kClosed, "the directory handle is closed", 0, ""});
  return dir_;
}

Napi::Value PrivateDirWrap::Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }
// Kept after close(), like path: a lock queue keyed by it outlives the handle.
Napi::Value PrivateDirWrap::Id(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), id_); }
Napi::Value PrivateDirWrap::Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !dir_); }
// setSyncWrites(on): whether writes through this directory fsync (default true). See PrivateDir.
Napi::Value PrivateDirWrap::SetSyncWrites(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean()) ThrowType(env, "on must be a boolean");
  Dir(env)->SetSyncWrites(info[0].As<Napi::Boolean>().Value());
  return env.Undefined();
}
Napi::Value PrivateDirWrap::Close(const Napi::CallbackInfo& info) {
  dir_.reset();
  return info.Env().Undefined();
}

PrivateDirWrap::SealArgs PrivateDirWrap::GetSealArgs(const Napi::CallbackInfo& info) {
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
Napi::Value PrivateDirWrap::SealToFileSync(const Napi::CallbackInfo& info) {
  SealArgs a = GetSealArgs(info);
  auto dir = Dir(info.Env());
  bool written = Guard(info.Env(), [&] {
    return dir->SealToFile(*a.ring, a.name, a.plaintext.data(), a.plaintext.size(), a.context, a.created_at,
                           a.expires_at, a.existing_only);
  });
  return Napi::Boolean::New(info.Env(), written);
}
Napi::Value PrivateDirWrap::SealToFile(const Napi::CallbackInfo& info) {
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

// The ring argument, unwrapped. The store and the manager pass the same ring on every read:
// the last one is remembered (weakly) and recognised by identity, saving the unwrap and
// type-tag lookups (two private-symbol property reads, a fifth of a read's instructions).
KeyRingWrap* PrivateDirWrap::RingArg(Napi::Env env, Napi::Value v) {
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

PrivateDirWrap::OpenArgs PrivateDirWrap::GetOpenArgs(const Napi::CallbackInfo& info) {
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
Napi::Value PrivateDirWrap::OpenFileSync(const Napi::CallbackInfo& info) {
  OpenArgs a = GetOpenArgs(info);
  auto dir = Dir(info.Env());
  OpenFileResult r =
      Guard(info.Env(), [&] { return dir->OpenFile(*a.ring, a.name, a.context, a.max_bytes, a.now, a.flags); });
  return OpenFileResultValue(info.Env(), r, a.flags & kAsString);
}

Napi::Value PrivateDirWrap::RemoveSync(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  return Napi::Boolean::New(info.Env(), Guard(info.Env(), [&] { return dir->Remove(name); }));
}
Napi::Value PrivateDirWrap::Remove(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  return PromiseWorker<bool>::Start(
      info.Env(), [dir, name] { return dir->Remove(name); },
      [](Napi::Env env, bool& removed) -> Napi::Value { return Napi::Boolean::New(env, removed); });
}

Napi::Value PrivateDirWrap::Peek(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  return PromiseWorker<std::optional<Header>>::Start(
      info.Env(), [dir, name] { return dir->Peek(name); },
      [](Napi::Env env, std::optional<Header>& h) -> Napi::Value {
        return h ? Napi::Value(HeaderObject(env, *h)) : env.Null();
      });
}

Napi::Value PrivateDirWrap::List(const Napi::CallbackInfo& info) {
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
Napi::Value PrivateDirWrap::SweepSync(const Napi::CallbackInfo& info) {
  uint64_t now = GetUint(info, 0, "now");
  std::string prefix = CollectPrefix(info);
  auto dir = Dir(info.Env());
  SweepStats s = Guard(info.Env(), [&] { return dir->Sweep(now, prefix); });
  return SweepObject(info.Env(), s);
}
Napi::Value PrivateDirWrap::Sweep(const Napi::CallbackInfo& info) {
  uint64_t now = GetUint(info, 0, "now");
  std::string prefix = CollectPrefix(info);
  auto dir = Dir(info.Env());
  return PromiseWorker<SweepStats>::Start(
      info.Env(), [dir, now, prefix] { return dir->Sweep(now, prefix); },
      [](Napi::Env env, SweepStats& s) -> Napi::Value { return SweepObject(env, s); });
}

// An async read tries first on the main thread, where the kernel can serve it without waiting
// (page cache, cached lookups: see nowait.h), and goes to the pool otherwise. An inline result
// still settles the promise on a later tick: promise reactions never run synchronously.
Napi::Value PrivateDirWrap::OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto a = std::make_shared<OpenArgs>(GetOpenArgs(info));
  auto dir = Dir(env);
  Addon* addon = env.GetInstanceData<Addon>();
  const bool as_string = a->flags & kAsString;
  if (nowait::Available() && addon->inline_mode != nowait::Mode::kOff && dir->InlineReadsSupported()) {
    addon->reads.attempts++;
    OpenFileResult r;
    std::optional<ErrorInfo> error;
    InlineRead st;
    try {
      st =
          dir->TryOpenFileInline(*a->ring, a->name, a->context, a->max_bytes, a->now, a->flags, addon->inline_mode, &r);
    } catch (const Error& e) {
      error = Capture(e);
      st = InlineRead::kDone;
    } catch (const std::bad_alloc&) {
      error = OutOfMemory();
      st = InlineRead::kDone;
    }
    if (st == InlineRead::kDone) {
      addon->reads.served_inline++;
      return addon->SettleLater(env, std::move(r), std::move(error), as_string);
    }
  }
  addon->reads.pool++;
  return PromiseWorker<OpenFileResult>::Start(
      env, [dir, a] { return dir->OpenFile(*a->ring, a->name, a->context, a->max_bytes, a->now, a->flags); },
      [as_string](Napi::Env env, OpenFileResult& r) { return OpenFileResultValue(env, r, as_string); });
}

// openFile's inline attempt on its own, answered synchronously: the result when the kernel could
// serve it without blocking, undefined when only the pool can (the caller then uses openFile).
Napi::Value PrivateDirWrap::OpenFileNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenArgs a = GetOpenArgs(info);
  auto dir = Dir(env);
  Addon* addon = env.GetInstanceData<Addon>();
  if (!nowait::Available() || addon->inline_mode == nowait::Mode::kOff || !dir->InlineReadsSupported())
    return env.Undefined();
  addon->reads.attempts++;
  OpenFileResult r;
  InlineRead st = Guard(env, [&] {
    return dir->TryOpenFileInline(*a.ring, a.name, a.context, a.max_bytes, a.now, a.flags, addon->inline_mode, &r);
  });
  if (st != InlineRead::kDone) return env.Undefined();
  addon->reads.served_inline++;
  return OpenFileResultValue(env, r, a.flags & kAsString);
}

Napi::Value PrivateDirWrap::LockSync(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  std::unique_ptr<FileLock> lock = Guard(info.Env(), [&] { return dir->Lock(name); });
  return info.Env().GetInstanceData<Addon>()->NewLock(info.Env(), lock);
}

// tryLockSync(name) → Lock | null: never waits (the main thread must not block on a lock that an
// in-process holder keeps while it waits for the main thread).
Napi::Value PrivateDirWrap::TryLockSync(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  std::unique_ptr<FileLock> lock = Guard(info.Env(), [&] { return dir->TryLock(name); });
  if (!lock) return info.Env().Null();
  return info.Env().GetInstanceData<Addon>()->NewLock(info.Env(), lock);
}

Napi::Value PrivateDirWrap::Lock(const Napi::CallbackInfo& info) {
  std::string name = GetString(info, 0, "name");
  auto dir = Dir(info.Env());
  // shared_ptr: std::function needs a copyable result holder.
  return PromiseWorker<std::shared_ptr<std::unique_ptr<FileLock>>>::Start(
      info.Env(), [dir, name] { return std::make_shared<std::unique_ptr<FileLock>>(dir->Lock(name)); },
      [](Napi::Env env, std::shared_ptr<std::unique_ptr<FileLock>>& lock) -> Napi::Value {
        return env.GetInstanceData<Addon>()->NewLock(env, *lock);
      });
}

// casSeal(ring, name, { stripe, plaintext, context, createdAt, expiresAt, maxBytes, now, mode, expected? })
// mode: 'any' | 'absent' | 'version' (then `expected` is the version the live record must carry).
// Resolves { outcome, current?, lock?, unreadable? }.
Napi::Value PrivateDirWrap::CasSeal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct Args {
    std::shared_ptr<const KeyRing> ring;
    Bytes plaintext;
    CasWrite write;
  };
  auto a = std::make_shared<Args>();
  KeyRingWrap* ring = KeyRingWrap::From(env, info[0], "ring");
  a->write.name = GetString(info, 1, "name");
  if (info.Length() < 3 || !info[2].IsObject() || info[2].IsArray()) ThrowType(env, "options must be an object");
  Napi::Object o = info[2].As<Napi::Object>();
  CasWrite& w = a->write;
  w.stripe = GetString(env, o.Get("stripe"), "options.stripe");
  a->plaintext = GetBytes(env, o.Get("plaintext"), "options.plaintext", true);
  a->plaintext.Own();
  w.plaintext = a->plaintext.data();
  w.size = a->plaintext.size();
  w.context = GetString(env, o.Get("context"), "options.context");
  w.created_at = GetUint(env, o.Get("createdAt"), "options.createdAt");
  w.expires_at = GetUint(env, o.Get("expiresAt"), "options.expiresAt");
  w.max_bytes = GetUint(env, o.Get("maxBytes"), "options.maxBytes", uint64_t{1} << 31);
  w.now = GetUint(env, o.Get("now"), "options.now");
  std::string mode = GetString(env, o.Get("mode"), "options.mode");
  if (mode == "any") w.mode = CasMode::kAny;
  else if (mode == "absent") w.mode = CasMode::kAbsent;
  else if (mode == "version") w.mode = CasMode::kVersion;
  else ThrowRange(env, "options.mode must be 'any', 'absent' or 'version'");
  if (w.mode == CasMode::kVersion)
    w.expected = GetUint(env, o.Get("expected"), "options.expected", (uint64_t{1} << 53) - 1);
  a->ring = ring->Ring(env);
  auto dir = Dir(env);
  return PromiseWorker<std::shared_ptr<CasResult>>::Start(
      env, [dir, a] { return std::make_shared<CasResult>(sealed::CasSeal(*dir, *a->ring, a->write)); },
      [](Napi::Env env, std::shared_ptr<CasResult>& r) -> Napi::Value {
        static const char* kOutcomes[] = {"written", "missing", "conflict", "exists"};
        Napi::Object o = Napi::Object::New(env);
        o.Set("outcome", Napi::String::New(env, kOutcomes[r->outcome]));
        if (!r->unreadable.empty()) o.Set("unreadable", Napi::String::New(env, r->unreadable));
        if (r->outcome == CasResult::kConflict) {
          o.Set("current", Napi::String::New(env, r->current));
          o.Set("lock", env.GetInstanceData<Addon>()->NewLock(env, r->lock));
        }
        return o;
      });
}
}  // namespace sealed::addon
