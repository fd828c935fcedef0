// The contract every session store keeps (memory, files, Redis), and the option and dump
// checks they share so that all of them accept and reject exactly the same inputs.
import { isPlainObject } from '../core/json'
import { Session, type SessionRecord } from '../session/session'
import { checkNonNegativeMs, checkTtl, describe } from '../core/validate'

export { checkNonNegativeMs, checkTtl } from '../core/validate'

export const DEFAULT_TTL = 3_600_000
export const DEFAULT_TOUCH_AFTER = 60_000
export const DUMP_VERSION = 1

/**
 * A dump: every live session as a plain JSON record. It is PLAINTEXT (auth snapshots and
 * data included): whoever holds it holds the sessions, so the caller must protect it.
 */
export interface SessionDump {
  version: typeof DUMP_VERSION
  sessions: SessionRecord[]
}

export interface CreateOptions {
  /** Idle timeout for this session in ms; the store's ttl when absent. */
  ttl?: number
}

/** One live session of an identity, as listSessions reports it (times in ms since the epoch). */
export interface SessionInfo {
  id: string
  createdAt: number
  lastAccess: number
  expiresAt: number
}

export interface RevokeOptions {
  /** A session id to keep ("log out my other devices"). */
  except?: string
}

export interface SessionStore {
  /** A new session with a fresh id, persisted before the promise resolves. */
  create(auth?: Readonly<Record<string, unknown>> | null, options?: CreateOptions): Promise<Session>
  /** A fresh Session, or null for an invalid id (checked before any I/O), a missing, expired
   *  (removed as a side effect) or unreadable session. Touches the session: the new lastAccess
   *  is persisted (on the current version only) once the stored one is older than
   *  min(touchAfter, ttl / 2). */
  get(id: string): Promise<Session | null>
  /**
   * Persist the session's changes and clear its dirty flag. True when written; false when the
   * session no longer exists in the store (deleted, revoked or expired since it was read): then
   * nothing is written. A session read from or created by this store is saved as a compare-and-
   * swap on the version it was read at; when another writer saved in between, this copy's own
   * changes (Bag paths set or deleted, avatar changes) are re-applied onto the latest version
   * and the write is tried again (bounded: SessionConflictError). A session built by hand (never
   * stored) is inserted only if no session with its id exists (false otherwise).
   */
  save(session: Session): Promise<boolean>
  /** True when a session was removed. */
  delete(id: string): Promise<boolean>
  dump(): Promise<SessionDump>
  /** Insert (or replace) every unexpired record; the number restored. The whole dump is
   *  validated before anything is written. */
  restore(dump: SessionDump): Promise<number>
  /** Remove expired sessions; the number removed. */
  purgeExpired(): Promise<number>
  /** The live sessions stored with this avatar identity (login), in no particular order. */
  listSessions(identity: string): Promise<SessionInfo[]>
  /** Remove every session of this identity but `except`; the number removed. */
  revokeSessions(identity: string, options?: RevokeOptions): Promise<number>
  /** Release resources; later calls reject with SessionClosedError. */
  close(): Promise<void>
}

/** Timing options every store takes. */
export interface StoreTimingOptions {
  /** Idle timeout for new sessions in ms (default 1 h). */
  ttl?: number
  /** @deprecated The old name of `ttl`. */
  defaultTtl?: number
  /** Absolute lifetime from creation in ms (default: none). */
  maxAge?: number
  /** A read persists the new lastAccess only when the stored one is older than this (default 60 s). */
  touchAfter?: number
}

export interface StoreTiming {
  defaultTtl: number
  maxAge: number | undefined
  touchAfter: number
}

/** The option keys of every store's timing. */
export const TIMING_KEYS: readonly string[] = ['ttl', 'defaultTtl', 'maxAge', 'touchAfter']

/** Validate and default the timing options (`defaultTtl` is the deprecated name of `ttl`). */
export function resolveTiming(options: StoreTimingOptions): StoreTiming {
  if (options.ttl !== undefined && options.defaultTtl !== undefined) {
    throw new TypeError('pass options.ttl or options.defaultTtl (its deprecated name), not both')
  }
  const ttl = options.ttl ?? options.defaultTtl
  return {
    defaultTtl: ttl === undefined ? DEFAULT_TTL : checkTtl(options.ttl !== undefined ? 'ttl' : 'defaultTtl', ttl),
    maxAge: options.maxAge === undefined ? undefined : checkTtl('maxAge', options.maxAge),
    touchAfter:
      options.touchAfter === undefined ? DEFAULT_TOUCH_AFTER : checkNonNegativeMs('touchAfter', options.touchAfter),
  }
}

/** The arguments of create(): a validated auth snapshot and the ttl to use. */
export function checkCreateArgs(
  auth: unknown,
  options: unknown,
  defaultTtl: number,
): { auth: Record<string, unknown> | null; ttl: number } {
  if (auth !== undefined && auth !== null && !isPlainObject(auth)) {
    throw new TypeError(`auth must be a plain object or null, got ${describe(auth)}`)
  }
  if (options !== undefined && !isPlainObject(options)) {
    throw new TypeError(`options must be a plain object, got ${describe(options)}`)
  }
  const ttl = options?.ttl === undefined ? defaultTtl : checkTtl('ttl', options.ttl)
  return { auth: auth ?? null, ttl }
}

/** save() takes only our Session (a look-alike object would skip every check). */
export function checkSession(value: unknown): asserts value is Session {
  if (!(value instanceof Session)) throw new TypeError(`session must be a Session, got ${describe(value)}`)
}

/** Checks that `options.store` has the SessionStore methods an adapter calls (`methods`);
 *  returns it as a record, for reading its optional fields. */
export function checkStoreOption(store: unknown, methods: readonly (keyof SessionStore)[]): Record<string, unknown> {
  if (typeof store !== 'object' || store === null) {
    throw new TypeError(`options.store must be a SessionStore, got ${describe(store)}`)
  }
  const record = store as Record<string, unknown>
  for (const method of methods) {
    if (typeof record[method] !== 'function') {
      throw new TypeError(`options.store.${method} must be a function (options.store must be a SessionStore)`)
    }
  }
  return record
}

/** Every record of a dump as a Session; throws TypeError/RangeError before the caller writes anything. */
export function parseDump(dump: unknown): Session[] {
  if (!isPlainObject(dump)) throw new TypeError(`dump must be a plain object, got ${describe(dump)}`)
  if (dump.version !== DUMP_VERSION) {
    throw new TypeError(`dump.version must be ${DUMP_VERSION}, got ${describe(dump.version)}`)
  }
  if (!Array.isArray(dump.sessions))
    throw new TypeError(`dump.sessions must be an array, got ${describe(dump.sessions)}`)
  return dump.sessions.map((record: unknown, i) => {
    try {
      return Session.fromRecord(record)
    } catch (err) {
      if (err instanceof TypeError || err instanceof RangeError) {
        const Cls = err instanceof TypeError ? TypeError : RangeError
        throw new Cls(`dump.sessions[${i}]: ${err.message}`, { cause: err })
      }
      throw err
    }
  })
}

/** A dump of the given records. */
export function makeDump(records: SessionRecord[]): SessionDump {
  return { version: DUMP_VERSION, sessions: records }
}
