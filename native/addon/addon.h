// The addon's per-load state: one instance per environment (main thread, worker threads), so
// nothing mutable is static. Holds the constructors, the factory of opened objects, and the
// inline reads whose promises wait to be settled on a later turn of the event loop.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "../core/nowait.h"
#include "../core/private_dir.h"
#include "glue.h"

namespace sealed::addon {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);

  Napi::Object NewLock(Napi::Env env, std::unique_ptr<FileLock>& lock);
  Napi::Object NewPrivateDir(Napi::Env env, std::shared_ptr<const PrivateDir>& dir);
  Napi::Function OpenedFactory() const { return opened_factory_.Value(); }

  // An inline read's promise is settled from a setImmediate callback, on a later turn of the
  // event loop, as a pool read would be: a caller that starts a new read from each settlement
  // (64 in flight) still lets timers and I/O run between batches, instead of chaining
  // microtasks for as long as reads are cached. One immediate settles up to kSettlePerTurn
  // reads; the rest wait for the next turn, so a burst is cut into slices the loop can breathe
  // between (a slice: those settlements and whatever their callers do next, new reads included).
  static constexpr size_t kSettlePerTurn = 16;
  Napi::Value SettleLater(Napi::Env env, OpenFileResult r, std::optional<ErrorInfo> error, bool as_string);

  // Per instance (main thread only): the test switch and counters of inline reads.
  nowait::Mode inline_mode = nowait::Mode::kNormal;
  struct {
    uint64_t attempts = 0, served_inline = 0, pool = 0;
  } reads;

 private:
  Napi::Value PeekHeader(const Napi::CallbackInfo& info);
  Napi::Value MachineId(const Napi::CallbackInfo& info);
  Napi::Value BootId(const Napi::CallbackInfo& info);
  Napi::Value LiveKeyRings(const Napi::CallbackInfo& info);
  Napi::Value KeychainStatus(const Napi::CallbackInfo& info);
  Napi::Value CryptoBackend(const Napi::CallbackInfo& info);
  Napi::Value OpenPrivateDir(const Napi::CallbackInfo& info);
  Napi::Value InlineReads(const Napi::CallbackInfo& info);
  Napi::Value SetInlineReadMode(const Napi::CallbackInfo& info);
  void Flush(const Napi::CallbackInfo& info);

  struct Pending {
    napi_deferred deferred;
    OpenFileResult result;
    std::optional<ErrorInfo> error;
    bool as_string;
  };
  std::vector<Pending> pending_;
  bool flush_scheduled_ = false;

  Napi::FunctionReference lock_ctor_;
  Napi::FunctionReference private_dir_ctor_;
  Napi::FunctionReference set_immediate_;
  Napi::FunctionReference flush_;
  Napi::FunctionReference opened_factory_;
};

}  // namespace sealed::addon
