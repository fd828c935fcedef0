// PrivateDir: a private 0700 directory held open, with sealed files written and read in one
// native call each (sync twins for small hot paths), sweeps, locks and compare-and-swap
// writes. Lock: a held flock, released by release() or when it is collected.
#pragma once
#include <memory>
#include <string>

#include "../core/private_dir.h"
#include "glue.h"
#include "key_ring_wrap.h"

namespace sealed::addon {

class LockWrap : public Napi::ObjectWrap<LockWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Only made from C++, with an External holding the lock (Addon::NewLock).
  explicit LockWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Release(const Napi::CallbackInfo& info);
  std::unique_ptr<FileLock> lock_;  // released on GC too
};

class PrivateDirWrap : public Napi::ObjectWrap<PrivateDirWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new PrivateDir(path, create, removeStaleTemps = true), or (from openPrivateDir)
  // new PrivateDir(External<opened dir>)
  explicit PrivateDirWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<const PrivateDir> Dir(Napi::Env env) const;

  Napi::Value Path(const Napi::CallbackInfo& info);
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // Arguments shared by sealToFile and its sync twin.
  struct SealArgs {
    std::shared_ptr<const KeyRing> ring;
    std::string name;
    Bytes plaintext;
    std::string context;
    uint64_t created_at, expires_at;
    bool existing_only;
  };
  SealArgs GetSealArgs(const Napi::CallbackInfo& info);
  Napi::Value SealToFileSync(const Napi::CallbackInfo& info);
  Napi::Value SealToFile(const Napi::CallbackInfo& info);

  struct OpenArgs {
    std::shared_ptr<const KeyRing> ring;
    std::string name, context;
    uint64_t max_bytes, now;
    unsigned flags;
  };
  KeyRingWrap* RingArg(Napi::Env env, Napi::Value v);
  OpenArgs GetOpenArgs(const Napi::CallbackInfo& info);
  Napi::Value OpenFileSync(const Napi::CallbackInfo& info);
  Napi::Value OpenFile(const Napi::CallbackInfo& info);
  Napi::Value OpenFileNow(const Napi::CallbackInfo& info);

  Napi::Value RemoveSync(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value Peek(const Napi::CallbackInfo& info);
  Napi::Value List(const Napi::CallbackInfo& info);
  Napi::Value SweepSync(const Napi::CallbackInfo& info);
  Napi::Value Sweep(const Napi::CallbackInfo& info);
  Napi::Value LockSync(const Napi::CallbackInfo& info);
  Napi::Value Lock(const Napi::CallbackInfo& info);
  Napi::Value TryLockSync(const Napi::CallbackInfo& info);
  Napi::Value CasSeal(const Napi::CallbackInfo& info);
  Napi::Value SetSyncWrites(const Napi::CallbackInfo& info);

  // The ring of the last read, held weakly and recognised by identity (see RingArg).
  Napi::ObjectReference last_ring_;
  KeyRingWrap* last_ring_ptr_ = nullptr;

  std::string path_;
  std::string id_;
  std::shared_ptr<const PrivateDir> dir_;
};

}  // namespace sealed::addon
