// `sealed-session/express`: our encrypted stores behind the express-session package.
//
//   app.use(session({ secret, resave: false, saveUninitialized: false,
//                     store: new ExpressSessionStore({ store: new FileSessionStore({ dir, secret }) }) }))
//
// express-session picks its own ids (24 random bytes by default, any string with genid) and keeps
// the session as a plain JSON-able object with a `cookie`. Each express id maps to one of ours,
// deterministically: base64url(SHA-256(sid)) is 43 characters holding 256 bits, exactly the form
// isValidSessionId accepts. The record holds the express id and the express session as a JSON
// string (as express-session's MemoryStore keeps it): a Bag would refuse keys with '.', which
// express sessions may hold. Both are inside the sealed envelope, so neither is on disk in clear.
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { SessionData, Store as ExpressStore } from 'express-session'
import { SessionError } from './errors'
import { isPlainObject } from './json'
import { Session } from './session'
import { checkNonNegativeMs, checkTtl, DEFAULT_TOUCH_AFTER, type SessionStore } from './store'
import { describe } from './validate'

export interface ExpressSessionStoreOptions {
  store: SessionStore
  /** Lifetime in ms of a session whose cookie has no expiry (a browser-session cookie). Default 1 day. */
  ttl?: number
  /** touch() rewrites a record only when the cookie's expiry moved by more than this. Default 60 s. */
  touchAfter?: number
}

type StoreClass = abstract new () => ExpressStore
type Callback<T> = ((err: unknown, value?: T) => void) | undefined

const DEFAULT_EXPRESS_TTL = 86_400_000
// The record's data keys; a session of our own middleware in the same store has neither.
const SID = 'expressSid'
const SESS = 'expressSession'

// Resolved when this module loads, so the class can extend it; a missing package is reported
// only when someone constructs the store (the subpath itself stays importable).
const Base: StoreClass = loadStoreClass()

export class ExpressSessionStore extends Base {
  readonly store: SessionStore
  readonly ttl: number
  readonly touchAfter: number

  constructor(options: ExpressSessionStoreOptions) {
    super()
    if (!isPlainObject(options as unknown)) throw new TypeError(`options must be a plain object, got ${describe(options)}`)
    const store = options.store as unknown as Record<string, unknown> | null | undefined
    if (typeof store !== 'object' || store === null) throw new TypeError(`options.store must be a SessionStore, got ${describe(store)}`)
    for (const method of ['get', 'save', 'delete', 'dump'] as const) {
      if (typeof store[method] !== 'function') throw new TypeError(`options.store.${method} must be a function (options.store must be a SessionStore)`)
    }
    this.store = options.store
    this.ttl = options.ttl === undefined ? DEFAULT_EXPRESS_TTL : checkTtl('options.ttl', options.ttl)
    this.touchAfter = options.touchAfter === undefined ? DEFAULT_TOUCH_AFTER : checkNonNegativeMs('options.touchAfter', options.touchAfter)
  }

  get(sid: string, callback: (err: unknown, session?: SessionData | null) => void): void {
    settle(this.#get(sid), callback)
  }

  set(sid: string, session: SessionData, callback?: (err?: unknown) => void): void {
    settle(this.#set(sid, session), callback)
  }

  destroy(sid: string, callback?: (err?: unknown) => void): void {
    settle(this.#destroy(sid), callback)
  }

  /** Moves the expiry only: the data stored by a concurrent request is kept. */
  override touch(sid: string, session: SessionData, callback?: (err?: unknown) => void): void {
    settle(this.#touch(sid, session), callback)
  }

  /** Every live express session, keyed by its express id (MemoryStore's shape). */
  override all(callback: (err: unknown, sessions?: { [sid: string]: SessionData } | null) => void): void {
    settle(this.#all(), callback)
  }

  override length(callback: (err: unknown, length?: number) => void): void {
    settle(
      this.#all().then((all) => Object.keys(all).length),
      callback,
    )
  }

  /** Deletes the express sessions only: other sessions sharing the store are left alone. */
  override clear(callback?: (err?: unknown) => void): void {
    settle(this.#clear(), callback)
  }

  async #get(sid: string): Promise<SessionData | null> {
    const id = expressId(sid)
    const found = await this.store.get(id)
    const entry = found === null ? null : readEntry(found.toJSON().data)
    // A record under this id that is not the express session of this sid cannot happen short of
    // a SHA-256 collision; treat it as missing rather than hand out someone else's data.
    if (entry === null || entry.sid !== sid) return null
    if (isPast(entry.session)) {
      await this.store.delete(id)
      return null
    }
    return entry.session
  }

  async #set(sid: string, session: SessionData): Promise<void> {
    const id = expressId(sid)
    if (typeof session !== 'object' || session === null) throw new TypeError(`session must be an express-session object, got ${describe(session)}`)
    const ttl = this.#ttlOf(session)
    if (ttl <= 0) {
      // Already expired: storing it would only resurrect it until the next read.
      await this.store.delete(id)
      return
    }
    const record = new Session(id, null, ttl)
    record.data.set(SID, sid).set(SESS, JSON.stringify(session))
    // Insert or replace, as in 0.1 (save() now inserts a session built by hand only if absent);
    // the versioned set/touch/destroy of #12 point 4 replace this.
    await this.store.restore({ version: 1, sessions: [record.toJSON()] })
  }

  async #destroy(sid: string): Promise<void> {
    await this.store.delete(expressId(sid))
  }

  async #touch(sid: string, session: SessionData): Promise<void> {
    const id = expressId(sid)
    const found = await this.store.get(id)
    const entry = found === null ? null : readEntry(found.toJSON().data)
    if (entry === null || entry.sid !== sid) return
    // express-session touches on every unmodified request; a write per read would defeat the
    // store's touchAfter, so only a real move of the expiry is written.
    const before = expiresOf(entry.session)
    const after = expiresOf(session)
    if (before !== null && after !== null && Math.abs(after - before) <= this.touchAfter) return
    await this.#set(sid, { ...entry.session, cookie: session.cookie })
  }

  async #all(): Promise<{ [sid: string]: SessionData }> {
    const out: { [sid: string]: SessionData } = Object.create(null)
    for (const entry of await this.#entries()) if (!isPast(entry.session)) out[entry.sid] = entry.session
    return out
  }

  async #clear(): Promise<void> {
    for (const entry of await this.#entries()) await this.store.delete(expressId(entry.sid))
  }

  /** The express records of the store (dump skips expired sessions and opens nothing twice). */
  async #entries(): Promise<Array<{ sid: string; session: SessionData }>> {
    const dump = await this.store.dump()
    const entries: Array<{ sid: string; session: SessionData }> = []
    for (const record of dump.sessions) {
      const entry = readEntry(record.data)
      if (entry !== null && record.id === expressId(entry.sid)) entries.push(entry)
    }
    return entries
  }

  /** The cookie's expiry as our idle timeout; a cookie without one gets the `ttl` option. */
  #ttlOf(session: SessionData): number {
    const expires = expiresOf(session)
    return expires === null ? this.ttl : Math.min(Math.ceil(expires - Date.now()), 8.64e15)
  }
}

/** Our session id for an express-session id: base64url of its SHA-256 (43 chars, 256 bits). */
export function expressId(sid: string): string {
  if (typeof sid !== 'string' || sid === '') throw new TypeError(`sid must be a non-empty string, got ${describe(sid)}`)
  return createHash('sha256').update(sid, 'utf8').digest('base64url')
}

function readEntry(data: Record<string, unknown>): { sid: string; session: SessionData } | null {
  const sid = data[SID]
  const json = data[SESS]
  if (typeof sid !== 'string' || typeof json !== 'string') return null
  try {
    const session: unknown = JSON.parse(json)
    return isPlainObject(session) ? { sid, session: session as unknown as SessionData } : null
  } catch {
    return null
  }
}

/** `cookie.expires` in ms (a Date when live, a string once stored), or null for none. */
function expiresOf(session: SessionData): number | null {
  const expires = (session as { cookie?: { expires?: unknown } }).cookie?.expires
  if (expires === null || expires === undefined) return null
  const ms = expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : NaN
  return Number.isFinite(ms) ? ms : null
}

function isPast(session: SessionData): boolean {
  const expires = expiresOf(session)
  return expires !== null && expires <= Date.now()
}

/** Callbacks run outside the promise chain: an exception they throw is theirs, not an
 *  unhandled rejection of ours. */
function settle<T>(promise: Promise<T>, callback: Callback<T>): void {
  promise.then(
    (value) => {
      if (callback) process.nextTick(callback, null, value)
    },
    (err: unknown) => {
      if (callback) process.nextTick(callback, err)
    },
  )
}

function loadStoreClass(): StoreClass {
  try {
    return (require('express-session') as { Store: StoreClass }).Store
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown }
    if (e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes("'express-session'")) throw err
    return class MissingExpressSession extends EventEmitter {
      constructor() {
        super()
        throw new SessionError(
          'ExpressSessionStore needs the express-session package (an optional peer dependency): npm install express-session',
          'ERR_SESSION_PEER_MISSING',
          { cause: err },
        )
      }
    } as unknown as StoreClass
  }
}
