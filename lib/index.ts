// Public entry point of sealed-session (CommonJS build; dist/index.mjs re-exports it for ESM,
// so both share one copy of every class and `instanceof` works across them).
export {
  SessionError,
  SessionFormatError,
  SessionTamperedError,
  SessionUnknownKeyError,
  SessionTooLargeError,
  SessionSecurityError,
  MachineIdError,
  SessionIOError,
  SessionClosedError,
  SessionStoreUnavailableError,
  KeychainUnavailableError,
  SessionConflictError,
  SessionLockTimeoutError,
  SessionCryptoError,
  SessionCryptoUnavailableError,
  SessionInternalError,
} from './core/errors'
export { cryptoBackend } from './core/crypto-backend'
export {
  SessionManager,
  type SessionManagerOptions,
  type LoginOptions,
  type SessionUpdate,
  type UpdateOptions,
} from './manager/manager'
export type { AccountInfo } from './manager/accounts'
export { SessionData, type SessionDataRecord } from './manager/session-data'
export type { Logger } from './core/logger'
export type { KeyOptions, KeySource, Secret } from './core/keys'
export { Bag, type BagValue, type BagJSON, type Stored } from './session/bag'
export { Avatar, type AvatarRecord } from './session/avatar'
export {
  Session,
  type SessionMeta,
  type SessionRecord,
  type SessionView,
  type SessionOptions,
  type SessionShape,
  type AttachAvatarOptions,
} from './session/session'
export { generateSessionId, isValidSessionId, storageName } from './core/ids'
export type {
  SessionStore,
  SessionDump,
  CreateOptions,
  StoreTimingOptions,
  SessionInfo,
  RevokeOptions,
} from './stores/store'
export { MemorySessionStore, type MemorySessionStoreOptions } from './stores/memory-store'
export { FileSessionStore, type FileSessionStoreOptions } from './stores/file-store'
export { RedisSessionStore, type RedisSessionStoreOptions, type RedisClientLike } from './stores/redis-store'
export {
  PostgresSessionStore,
  type PostgresSessionStoreOptions,
  type PostgresClientLike,
} from './stores/postgres-store'
export {
  sessionMiddleware,
  type SessionMiddleware,
  type SessionMiddlewareOptions,
  type SessionCookieOptions,
  type SessionRequest,
  type NextFunction,
} from './http/middleware'
export type { JsonValue, JsonObject } from './core/json'
