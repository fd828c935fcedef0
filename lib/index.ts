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
} from './errors'
export { SessionManager, type SessionManagerOptions, type LoginOptions } from './manager'
export { SessionData, type SessionDataRecord } from './session-data'
export type { Logger } from './logger'
export type { KeyOptions, KeySource, Secret } from './keys'
export { Bag, type BagValue, type BagJSON } from './bag'
export { Avatar, type AvatarRecord } from './avatar'
export { Session, type SessionMeta, type SessionRecord, type SessionOptions, type AttachAvatarOptions } from './session'
export { generateSessionId, isValidSessionId, storageName } from './ids'
export type { SessionStore, SessionDump, CreateOptions, StoreTimingOptions, SessionInfo, RevokeOptions } from './store'
export { MemorySessionStore, type MemorySessionStoreOptions } from './memory-store'
export { FileSessionStore, type FileSessionStoreOptions } from './file-store'
export { RedisSessionStore, type RedisSessionStoreOptions, type RedisClientLike } from './redis-store'
export {
  sessionMiddleware,
  type SessionMiddleware,
  type SessionMiddlewareOptions,
  type SessionCookieOptions,
  type SessionRequest,
  type NextFunction,
} from './middleware'
export type { JsonValue, JsonObject } from './json'
