// `sealed-session/express-session`: our encrypted stores behind the express-session package.
//
//   app.use(session({ secret, resave: false, saveUninitialized: false,
//                     store: new ExpressSessionStore({ store: new FileSessionStore({ dir, secret }) }) }))
//
// express-session picks its own ids (24 random bytes by default, any string with genid) and keeps
// the session as a plain JSON-able object with a `cookie`. Each express id maps to one of ours,
// deterministically: base64url(SHA-256(sid)) is 43 characters holding 256 bits, exactly the form
// isValidSessionId accepts. The record holds the express id, the express session without its
// cookie, and the cookie, each as a JSON string under its own data path (a Bag would refuse keys
// with '.', which express sessions may hold). All of it is inside the sealed envelope.
//
// Expiry lives in the record's meta, not in the stored cookie: ttl = the cookie's maxAge (or the
// `ttl` option for a browser-session cookie), createdAt kept from the first write so the store's
// maxAge holds, lastAccess moved by reads under the store's throttle min(touchAfter, ttl / 2).
// get() reports that expiry as `cookie.expires`, so a session in use never looks stale.
//
// Concurrency, as in our own middleware: express-session reads a session (get) at the start of a
// request and writes it (set) or touches it (touch) at the end. A destroyed session must never come
// back, whichever app server destroyed it, so set creates a session only for a new object: one
// express-session's generate made for this adapter (express-session assigns store.generate; an
// accessor wraps it to mark each new req.session) and not stored yet, or one the application built
// itself. A session that was read (express-session's loaded req.session, an object get or all
// returned, or a shallow copy sharing its cookie) is only ever updated: a compare-and-swap on the
// stored version, nothing when the session is gone. The copy get read is remembered (a bounded
// cache, for speed only): set then writes on its version and keeps createdAt, touch reads nothing.
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { SessionData, Store as ExpressStore } from 'express-session'
import { SessionError } from '../core/errors'
import { isPlainObject } from '../core/json'
import { markStored, Session, sessionFromParsed, sessionVersion } from '../session/session'
import { readSession } from '../stores/base-store'
import { checkNonNegativeMs, checkStoreOption, checkTtl, DEFAULT_TOUCH_AFTER, type SessionStore } from '../stores/store'
import { checkOptionKeys, describe } from '../core/validate'

export interface ExpressSessionStoreOptions {
  store: SessionStore
  /** Lifetime in ms of a session whose cookie has no expiry (a browser-session cookie). Default 1 day. */
  ttl?: number
  /** A touch() that comes long after the read persists the moved expiry once the read is older
   *  than min(touchAfter, ttl / 2). Default 60 s. Reads persist it under the store's own touchAfter. */
  touchAfter?: number
}

type StoreClass = abstract new () => ExpressStore
type GenerateRequest = { sessionID?: unknown; session?: unknown }
type GenerateFn = (req: GenerateRequest) => void
type Callback<T> = ((err: unknown, value?: T) => void) | undefined
type Cookie = Record<string, unknown>

const DEFAULT_EXPRESS_TTL = 86_400_000
const EXPRESS_KEYS = new Set(['store', 'ttl', 'touchAfter'])
// The record's data keys; a session of our own middleware in the same store has none of them.
const SID = 'expressSid'
const SESS = 'expressSession' // the express session; 0.1 records keep the cookie in it too
const COOKIE = 'expressCookie'
// Copies read by get, for the set/touch that ends the same request. Enough for this many
// requests in flight at once; past it the oldest is dropped and its set or touch reads again.
const MAX_REMEMBERED = 1024

// Resolved when this module loads, so the class can extend it; a missing package is reported
// only when someone constructs the store (the subpath itself stays importable).
const Base: StoreClass = loadStoreClass()

export class ExpressSessionStore extends Base {
  readonly store: SessionStore
  readonly ttl: number
  readonly touchAfter: number
  /** Our id → the copy the last get read (never changed: writes work on copies of it). */
  readonly #read = new Map<string, Session>()
  /** Session objects express-session's generate made for this adapter, not stored yet → their id. */
  readonly #generated = new WeakMap<object, string>()
  /** Objects get and all returned (sessions and their cookies) → the express id they were read
   *  under: writing one back under that id never inserts. */
  readonly #handedOut = new WeakMap<object, string>()
  #generate: GenerateFn | undefined

  constructor(options: ExpressSessionStoreOptions) {
    super()
    if (!isPlainObject(options as unknown))
      throw new TypeError(`options must be a plain object, got ${describe(options)}`)
    checkOptionKeys(options, EXPRESS_KEYS, 'ExpressSessionStore')
    checkStoreOption(options.store, ['get', 'save', 'delete', 'dump'])
    this.store = options.store
    this.ttl = options.ttl === undefined ? DEFAULT_EXPRESS_TTL : checkTtl('options.ttl', options.ttl)
    this.touchAfter =
      options.touchAfter === undefined
        ? DEFAULT_TOUCH_AFTER
        : checkNonNegativeMs('options.touchAfter', options.touchAfter)
  }

  /** express-session installs its generate here (`store.generate = fn`); the wrapper marks each
   *  session it makes as new, the only kind set may create. */
  get generate(): GenerateFn | undefined {
    return this.#generate
  }

  set generate(fn: GenerateFn) {
    if (typeof fn !== 'function') throw new TypeError(`generate must be a function, got ${describe(fn)}`)
    const generated = this.#generated
    this.#generate = function (this: unknown, req: GenerateRequest) {
      fn.call(this, req)
      const made = req.session
      if (typeof made === 'object' && made !== null && typeof req.sessionID === 'string')
        generated.set(made, req.sessionID)
    }
  }

  get(sid: string, callback: (err: unknown, session?: SessionData | null) => void): void {
    settle(this.#get(sid), callback)
  }

  /** Creates a new session (see mayInsert); any other is updated only while it exists, so a
   *  session destroyed meanwhile, by any adapter over the store, stays destroyed. */
  set(sid: string, session: SessionData, callback?: (err?: unknown) => void): void {
    settle(this.#set(sid, session), callback)
  }

  destroy(sid: string, callback?: (err?: unknown) => void): void {
    settle(this.#destroy(sid), callback)
  }

  /** Moves the expiry only (the read already did, under the store's throttle); writes when the
   *  cookie itself changed. The data stored by a concurrent request is kept. */
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
    const found = await readSession(this.store, id)
    if (found === null) return null
    const entry = readEntry(found.toRecord().data, found.expiresAt())
    // A record under this id that is not the express session of this sid cannot happen short of
    // a SHA-256 collision; treat it as missing rather than hand out someone else's data.
    if (entry === null || entry.sid !== sid) return null
    this.#remember(id, found)
    return this.#handOut(sid, entry.session)
  }

  async #set(sid: string, session: SessionData): Promise<void> {
    const id = expressId(sid)
    if (typeof session !== 'object' || session === null)
      throw new TypeError(`session must be an express-session object, got ${describe(session)}`)
    const ttl = this.#ttlOf(session)
    const { cookie, rest } = split(session)
    if (ttl <= 0) {
      // Already expired: storing it would only resurrect it until the next read.
      await this.store.delete(id)
      return
    }
    if (this.#mayInsert(sid, session)) {
      // Insert only if absent: a save of a Session never stored does not overwrite.
      const fresh = new Session(id, null, ttl, { maxAge: storeMaxAge(this.store) })
      fresh.data.set(SID, sid).set(SESS, rest).set(COOKIE, cookie)
      const inserted = await this.store.save(fresh)
      // Stored (or found stored): from now on this object is a session to update, not a new one.
      this.#generated.delete(session)
      if (inserted) return this.#remember(id, fresh)
    }
    // Update only: on the copy get read, else on the stored version; a session gone stays gone.
    const base = this.#read.get(id) ?? (await this.store.get(id))
    if (base !== null) await this.#write(id, base, ttl, rest, cookie)
  }

  /**
   * Whether set may create the session: a new one only, made by express-session's generate for
   * this adapter and not stored yet, or built by the application. Never one that was read: a
   * session express-session loaded, nor an object get or all returned, nor a shallow copy of one.
   */
  #mayInsert(sid: string, session: SessionData): boolean {
    if (this.#generated.get(session) === sid) return true
    if (isExpressSessionObject(session)) return false
    const cookie = (session as { cookie?: unknown }).cookie
    return (
      this.#handedOut.get(session) !== sid &&
      !(typeof cookie === 'object' && cookie !== null && this.#handedOut.get(cookie) === sid)
    )
  }

  /** Marks a session get or all returns (and its cookie) as read under `sid`. */
  #handOut(sid: string, session: SessionData): SessionData {
    this.#handedOut.set(session, sid)
    const cookie = (session as { cookie?: unknown }).cookie
    if (typeof cookie === 'object' && cookie !== null) this.#handedOut.set(cookie, sid)
    return session
  }

  async #destroy(sid: string): Promise<void> {
    const id = expressId(sid)
    this.#read.delete(id)
    await this.store.delete(id)
  }

  async #touch(sid: string, session: SessionData): Promise<void> {
    const id = expressId(sid)
    const read = this.#read.get(id)
    // No copy from this request's get: read it (the read itself is the touch, under the store's throttle).
    if (read === undefined) {
      const found = await this.store.get(id)
      if (found !== null) this.#remember(id, found)
      return
    }
    const { cookie } = split(session)
    const storedCookie = read.data.get(COOKIE)
    const maxAge = stableMaxAge(session)
    const ttl = maxAge ?? read.meta.ttl
    // A record of 0.1 keeps its cookie inside the session: the first touch moves it out.
    const cookieChanged = storedCookie === undefined || withoutExpiry(storedCookie) !== withoutExpiry(cookie)
    // express-session touches on every unmodified request. The read at its start already moved
    // the expiry (persisted under the store's throttle), so only a changed cookie (maxAge or an
    // attribute) or a request that outlasted the throttle is written, and the data is not.
    const late = Date.now() - read.meta.lastAccess > Math.min(this.touchAfter, ttl / 2)
    if (ttl === read.meta.ttl && !cookieChanged && !late) return
    await this.#write(id, read, ttl, undefined, cookieChanged || ttl !== read.meta.ttl ? cookie : undefined)
  }

  /**
   * Saves a copy of `base` (a stored version) with the given parts changed and its expiry moved
   * to now: a compare-and-swap on base's version, each part re-applied onto a newer version if
   * another request wrote meanwhile; nothing when the session is gone.
   */
  async #write(
    id: string,
    base: Session,
    ttl: number,
    rest: string | undefined,
    cookie: string | undefined,
  ): Promise<void> {
    // toRecord makes a fresh copy of a session that was checked on its way in: adopted as it is,
    // not checked and copied a second time.
    const record = base.toRecord()
    const copy =
      ttl === base.meta.ttl
        ? sessionFromParsed(record)
        : // A new maxAge: same createdAt, new idle timeout (the store's absolute maxAge still holds).
          sessionFromParsed({ ...record, meta: { ...record.meta, ttl } })
    markStored(copy, sessionVersion(base))
    copy.touch()
    if (rest !== undefined) copy.data.set(SESS, rest)
    if (cookie !== undefined) copy.data.set(COOKIE, cookie)
    if (await this.store.save(copy)) this.#remember(id, copy)
    else this.#read.delete(id) // gone: nothing to remember
  }

  #remember(id: string, session: Session): void {
    this.#read.delete(id)
    this.#read.set(id, session)
    if (this.#read.size > MAX_REMEMBERED) this.#read.delete(this.#read.keys().next().value as string)
  }

  async #all(): Promise<{ [sid: string]: SessionData }> {
    const out: { [sid: string]: SessionData } = Object.create(null)
    for (const entry of await this.#entries()) out[entry.sid] = this.#handOut(entry.sid, entry.session)
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
      const { createdAt, lastAccess, ttl, maxAge } = record.meta
      const expiresAt = maxAge === undefined ? lastAccess + ttl : Math.min(lastAccess + ttl, createdAt + maxAge)
      const entry = readEntry(record.data, expiresAt)
      if (entry !== null && record.id === expressId(entry.sid)) entries.push(entry)
    }
    return entries
  }

  /** The record's idle timeout: the cookie's maxAge, else what is left until its expiry, else
   *  the `ttl` option (a browser-session cookie). */
  #ttlOf(session: SessionData): number {
    const maxAge = stableMaxAge(session)
    const expires = expiresOf(session)
    if (expires !== null && expires <= Date.now()) return 0
    if (maxAge !== null) return maxAge
    return expires === null ? this.ttl : Math.min(Math.ceil(expires - Date.now()), 8.64e15)
  }
}

/** Our session id for an express-session id: base64url of its SHA-256 (43 chars, 256 bits). */
export function expressId(sid: string): string {
  if (typeof sid !== 'string' || sid === '') throw new TypeError(`sid must be a non-empty string, got ${describe(sid)}`)
  return createHash('sha256').update(sid, 'utf8').digest('base64url')
}

/** The express session of a record, its cookie's expiry reported as the record's (null for a
 *  browser-session cookie, which has none). */
function readEntry(data: Record<string, unknown>, expiresAt: number): { sid: string; session: SessionData } | null {
  const sid = data[SID]
  const json = data[SESS]
  const cookieJson = data[COOKIE]
  if (typeof sid !== 'string' || typeof json !== 'string') return null
  try {
    const session: unknown = JSON.parse(json)
    if (!isPlainObject(session)) return null
    if (typeof cookieJson === 'string') session.cookie = JSON.parse(cookieJson)
    const cookie = session.cookie
    if (isPlainObject(cookie) && cookie.expires !== null && cookie.expires !== undefined)
      cookie.expires = new Date(expiresAt).toISOString()
    return { sid, session: session as unknown as SessionData }
  } catch {
    return null
  }
}

/** express-session's own Session object (a loaded or generated req.session): it carries its
 *  request and id as non-enumerable properties, which JSON data cannot. */
function isExpressSessionObject(session: object): boolean {
  return (
    Object.getOwnPropertyDescriptor(session, 'req')?.enumerable === false &&
    Object.getOwnPropertyDescriptor(session, 'id')?.enumerable === false
  )
}

/** The express session as two JSON strings: without its cookie, and the cookie. */
function split(session: SessionData): { rest: string; cookie: string } {
  const { cookie, ...rest } = session as unknown as { cookie?: Cookie }
  return { rest: JSON.stringify(rest), cookie: JSON.stringify(cookie ?? null) }
}

/** A stored cookie (JSON) compared without its expiry, which moves on every request. */
function withoutExpiry(json: unknown): string {
  if (typeof json !== 'string') return ''
  const { expires: _, ...rest } = (JSON.parse(json) ?? {}) as Cookie
  return JSON.stringify(rest)
}

/** The cookie's configured lifetime (express-session's originalMaxAge), when it has one. */
function stableMaxAge(session: SessionData): number | null {
  const maxAge = (session as { cookie?: { originalMaxAge?: unknown } }).cookie?.originalMaxAge
  return typeof maxAge === 'number' && Number.isFinite(maxAge) && maxAge > 0 ? Math.min(maxAge, 8.64e15) : null
}

/** The absolute lifetime the store gives its sessions, when it has one. */
function storeMaxAge(store: SessionStore): number | undefined {
  const maxAge = (store as { maxAge?: unknown }).maxAge
  return typeof maxAge === 'number' ? maxAge : undefined
}

/** `cookie.expires` in ms (a Date when live, a string once stored), or null for none. */
function expiresOf(session: SessionData): number | null {
  const expires = (session as { cookie?: { expires?: unknown } }).cookie?.expires
  if (expires === null || expires === undefined) return null
  const ms = expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : NaN
  return Number.isFinite(ms) ? ms : null
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
