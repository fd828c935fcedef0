// Session: one visitor's server-side state. The store persists it as a plain JSON record
// (toRecord/fromRecord); toJSON is what a JSON logger gets, the redacted view inspect shows
// (the id is a bearer credential, the auth snapshot may hold tokens). The middleware reads the
// flags it raises (dirty, needsNewId, invalidated) to decide whether to write, regenerate the
// id, or delete it at the end of a request.
import { Avatar, checkTagCaps, checkWellFormed, readStored, type AvatarRecord } from './avatar'
import {
  applyPaths,
  Bag,
  bagFromParsed,
  changedPaths,
  resetChanges,
  setChangedPaths,
  trackChanges,
  type BagJSON,
} from './bag'
import { copyJson, freezeParsed, isPlainObject, type JsonObject } from '../core/json'
import { isStoreSessionId, MAX_SESSION_ID_LENGTH } from '../core/ids'
import type { inspect, InspectOptionsStylized } from 'node:util'
import { custom, idPrefix, isoTime, render } from '../core/inspect'
import { checkOptionKeys, checkTimestamp, checkTtl, describe, MAX_MS } from '../core/validate'

/** Server-managed times, all in ms. `maxAge` is the optional absolute lifetime. */
export interface SessionMeta {
  readonly createdAt: number
  readonly lastAccess: number
  readonly ttl: number
  readonly maxAge?: number
}

/** A session as stored and dumped: plain JSON, key order fixed (see the envelope vectors). */
export interface SessionRecord {
  id: string
  meta: { createdAt: number; lastAccess: number; ttl: number; maxAge?: number }
  auth: BagJSON | null
  data: BagJSON
  avatar?: AvatarRecord
}

/** What JSON.stringify and console.log show of a session: no whole id, no auth snapshot. */
export interface SessionView {
  /** The first 6 characters of the id and `…`. */
  id: string
  identity: string
  tags: string[]
  /** Times as ISO strings. */
  meta: { createdAt: string; lastAccess: string; expiresAt: string; ttl: number; maxAge?: number }
  data: BagJSON
  avatarData?: BagJSON
  flags?: string[]
}

export interface SessionOptions {
  /** Absolute lifetime from createdAt, in ms. */
  maxAge?: number
  /** Creation time in ms since the epoch (default Date.now()). */
  now?: number
}

const SESSION_OPTION_KEYS = new Set(['maxAge', 'now'])

/**
 * The shape of session data as the whole app sees it (req.session, request.session, the stores):
 * empty by default. Declare it once to type `session.data`:
 *   declare module 'sealed-session' { interface SessionShape { visits: number } }
 */
// biome-ignore lint/suspicious/noEmptyInterface: an interface, so users can extend it by declaration merging
export interface SessionShape {}

export interface AttachAvatarOptions {
  /** Keep the data gathered before login (default true: a cart survives login). With false the
   *  session's data is cleared, so nothing planted before login (a CSRF token, OAuth state)
   *  reaches the logged-in session. */
  keepData?: boolean
}

interface SessionInternals {
  version(s: Session): number
  storedIdentity(s: Session): string | null
  touchPersisted(s: Session): boolean
  markStored(s: Session, version: number): void
  clearDirty(s: Session): void
  markTouched(s: Session, version: number): void
  rebase(s: Session, latest: Session, version: number): void
  fromParsed(record: unknown): Session
}
// Filled by Session's static block: package-internal access for stores and the middleware.
let internals!: SessionInternals

// An options key only fromRecord can pass (module-private; checkOptionKeys sees string keys
// only): the record carries its avatar, set right after construction.
const AVATAR_FOLLOWS = Symbol('avatarFollows')
type ConstructorOptions = SessionOptions & { [AVATAR_FOLLOWS]?: true }

/** `Data` types `session.data` (see SessionShape); it is not checked at run time. */
export class Session<Data extends object = SessionShape> {
  readonly #id: string
  #auth: JsonObject | null
  #data = new Bag()
  #avatar!: Avatar
  /** Set by attachAvatar or a record that carried an avatar: the avatar is then persisted. */
  #avatarAttached = false
  readonly #createdAt: number
  #lastAccess: number
  readonly #ttl: number
  readonly #maxAge: number | undefined
  #dirty = false
  #needsNewId = false
  #invalidated = false
  /** The store version this copy was read at or last written as; 0: never stored (built by hand). */
  #version = 0
  /** The identity the stored record at #version is indexed under (null: anonymous or never stored). */
  #storedIdentity: string | null = null
  /** attachAvatar since the last save: on a re-apply, this copy's avatar replaces the stored one. */
  #avatarReplaced = false
  /** attachAvatar with keepData: false since the last save: on a re-apply, this copy's data
   *  replaces the stored data (keys another request added meanwhile go too). */
  #dataCleared = false
  /** The store.get that returned this copy persisted a touch (its server-side expiry moved). */
  #touchPersisted = false

  static {
    internals = {
      version: (s) => s.#version,
      storedIdentity: (s) => s.#storedIdentity,
      touchPersisted: (s) => s.#touchPersisted,
      markStored: (s, version) => {
        s.#version = version
        s.#storedIdentity = s.#avatar.isAnonymous ? null : s.#avatar.identity
        s.#avatarReplaced = false
        s.#dataCleared = false
        s.#dirty = false
        resetChanges(s.#data)
        resetChanges(s.#avatar.data)
      },
      clearDirty: (s) => {
        s.#dirty = false
      },
      markTouched: (s, version) => {
        s.#version = version
        s.#touchPersisted = true
      },
      rebase: (s, latest, version) => s.#rebase(latest, version),
      fromParsed: (record) => readStored(() => Session.#fromRecord(record, true)),
    }
  }

  /** `ttl` is the idle timeout in ms; a ttl <= 0 makes the session expired from the start. */
  constructor(
    sessionId: string,
    auth: Readonly<Record<string, unknown>> | null,
    ttl: number,
    options: SessionOptions = {},
  ) {
    checkId('sessionId', sessionId)
    if (auth !== null && auth !== undefined && !isPlainObject(auth)) {
      throw new TypeError(`auth must be a plain object or null, got ${describe(auth)}`)
    }
    checkSessionTtl('ttl', ttl)
    if (!isPlainObject(options)) throw new TypeError(`options must be a plain object, got ${describe(options)}`)
    checkOptionKeys(options, SESSION_OPTION_KEYS, 'Session')
    const maxAge = options.maxAge === undefined ? undefined : checkTtl('maxAge', options.maxAge)
    const now = options.now === undefined ? Date.now() : checkTimestamp('now', options.now)

    this.#id = sessionId
    // A frozen deep copy: the snapshot can be read by anyone but changed by no one.
    this.#auth = auth ? (copyJson(auth, 'auth', true) as JsonObject) : null
    this.#ttl = ttl
    this.#maxAge = maxAge
    this.#createdAt = now
    this.#lastAccess = now
    this.#data.onChange = () => this.markDirty()
    trackChanges(this.#data)
    // A record that carries its avatar gets it right after (fromRecord): building one from the
    // auth snapshot first would only be thrown away (with many roles, most of a read's work).
    const avatarFollows = (options as ConstructorOptions)[AVATAR_FOLLOWS] === true
    if (!avatarFollows) this.#setAvatar(new Avatar(undefined, undefined, this.#auth))
  }

  /** Rebuild a session from a record (toRecord, a store's dump); throws TypeError/RangeError on
   *  a malformed one. A record is never refused for the avatar caps (tags) or identity rules
   *  newer than it: a stored session always reads back. */
  static fromRecord(record: unknown): Session {
    return readStored(() => Session.#fromRecord(record, false))
  }

  /** @deprecated The old name of `fromRecord` (records and dumps made with toJSON before it
   *  became the redacted view still read back). */
  static fromJSON(record: unknown): Session {
    return Session.fromRecord(record)
  }

  /** `parsed`: the record is fresh JSON.parse output nobody else holds (adopted, not copied). */
  static #fromRecord(record: unknown, parsed: boolean): Session {
    if (!isPlainObject(record)) throw new TypeError(`session record must be a plain object, got ${describe(record)}`)
    const { id, meta, auth, data, avatar } = record
    if (!isStoreSessionId(id)) throw new TypeError(`session record.id must be a session id, got ${describe(id)}`)
    if (!isPlainObject(meta)) throw new TypeError(`session record.meta must be a plain object, got ${describe(meta)}`)
    const createdAt = checkTimestamp('session record.meta.createdAt', meta.createdAt)
    const lastAccess = checkTimestamp('session record.meta.lastAccess', meta.lastAccess)
    checkSessionTtl('session record.meta.ttl', meta.ttl)
    const maxAge = meta.maxAge === undefined ? undefined : checkTtl('session record.meta.maxAge', meta.maxAge)
    if (auth !== null && !isPlainObject(auth)) {
      throw new TypeError(`session record.auth must be a plain object or null, got ${describe(auth)}`)
    }
    if (!isPlainObject(data)) throw new TypeError(`session record.data must be a plain object, got ${describe(data)}`)

    const storedAvatar = avatar === undefined ? null : Avatar.fromJSON(avatar)
    const options: ConstructorOptions = { maxAge, now: createdAt }
    if (storedAvatar !== null) options[AVATAR_FOLLOWS] = true
    const session = new Session(id, parsed ? null : auth, meta.ttl, options)
    if (parsed && auth !== null) {
      session.#auth = freezeParsed(auth, 'session record.auth') as JsonObject
      if (storedAvatar === null) session.#setAvatar(new Avatar(undefined, undefined, session.#auth))
    }
    session.#lastAccess = lastAccess
    // Adopt the Bag built from the record (it is ours alone): copying it entry by entry into
    // the constructor's empty Bag would validate and copy every value a second time.
    session.#data = parsed ? bagFromParsed(data) : Bag.fromJSON(data)
    session.#data.onChange = () => session.markDirty()
    trackChanges(session.#data)
    if (storedAvatar !== null) {
      session.#setAvatar(storedAvatar)
      session.#avatarAttached = true
    }
    session.#dirty = false
    return session
  }

  get id(): string {
    return this.#id
  }

  /** The auth snapshot taken at creation (frozen), or null for an anonymous session. */
  get auth(): JsonObject | null {
    return this.#auth
  }

  get avatar(): Avatar {
    return this.#avatar
  }

  get data(): Bag<Data> {
    return this.#data as Bag<Data>
  }

  /** A frozen copy; the times change only through touch(). */
  get meta(): SessionMeta {
    const meta: { createdAt: number; lastAccess: number; ttl: number; maxAge?: number } = {
      createdAt: this.#createdAt,
      lastAccess: this.#lastAccess,
      ttl: this.#ttl,
    }
    if (this.#maxAge !== undefined) meta.maxAge = this.#maxAge
    return Object.freeze(meta)
  }

  /** True when idle longer than ttl, or older than maxAge. */
  isExpired(now: number = Date.now()): boolean {
    return isMetaExpired(this.meta, checkTimestamp('now', now))
  }

  /** The ms timestamp after which the session is expired, if not touched before. */
  expiresAt(): number {
    const idle = this.#lastAccess + this.#ttl
    return this.#maxAge === undefined ? idle : Math.min(idle, this.#createdAt + this.#maxAge)
  }

  /** Record an access. Does not make the session dirty: stores decide (touchAfter) whether a
   *  new lastAccess alone is worth a write. */
  touch(now: number = Date.now()): void {
    this.#lastAccess = checkTimestamp('now', now)
  }

  /** True when something changed since the last save. */
  get dirty(): boolean {
    return this.#dirty
  }

  markDirty(): void {
    this.#dirty = true
  }

  /** True after attachAvatar: the middleware must move the session to a new id (fixation). */
  get needsNewId(): boolean {
    return this.#needsNewId
  }

  /** True after invalidate(): the middleware deletes the session and clears the cookie. */
  get invalidated(): boolean {
    return this.#invalidated
  }

  /** The login event: the session now belongs to `avatar`. Rotate per-session secrets (a CSRF
   *  token) here: with `keepData: false` everything stored before login is dropped. */
  attachAvatar(avatar: Avatar, options: AttachAvatarOptions = {}): void {
    if (!(avatar instanceof Avatar)) throw new TypeError(`avatar must be an Avatar, got ${describe(avatar)}`)
    if (!isPlainObject(options)) throw new TypeError(`options must be a plain object, got ${describe(options)}`)
    const keepData = options.keepData ?? true
    if (typeof keepData !== 'boolean')
      throw new TypeError(`options.keepData must be a boolean, got ${describe(keepData)}`)
    // An avatar rebuilt from a stored record skipped the caps and identity checks; one attached
    // at login may not.
    checkTagCaps(avatar.tags, 'avatar.tags')
    checkWellFormed('avatar.identity', avatar.identity)
    if (!keepData) {
      this.#data.clear()
      this.#dataCleared = true
    }
    this.#setAvatar(avatar)
    this.#avatarAttached = true
    this.#avatarReplaced = true
    this.#needsNewId = true
    this.markDirty()
  }

  /** The logout event. */
  invalidate(): void {
    this.#invalidated = true
  }

  /**
   * A copy of this session under a new id, for id regeneration: same meta, auth, data and
   * avatar, dirty (it is not stored under the new id yet), and no longer needing a new id.
   * The caller saves the copy and deletes the old id.
   */
  withId(newId: string): Session<Data> {
    checkId('newId', newId)
    const copy = Session.fromRecord({ ...this.toRecord(), id: newId }) as Session<Data>
    copy.#avatarAttached = this.#avatarAttached
    copy.#dirty = true
    return copy
  }

  /** console.log shows who, when and what: never the whole id (a bearer credential) nor the
   *  auth snapshot (it may hold tokens). */
  [custom](depth: number, options: InspectOptionsStylized, fn: typeof inspect): string {
    return render('Session', this.toJSON(), depth, options, fn)
  }

  /** What JSON.stringify (and so every JSON logger) shows: the same redacted view as inspect.
   *  The full record, for storage, is toRecord(). */
  toJSON(): SessionView {
    const meta: SessionView['meta'] = {
      createdAt: isoTime(this.#createdAt),
      lastAccess: isoTime(this.#lastAccess),
      expiresAt: isoTime(this.expiresAt()),
      ttl: this.#ttl,
    }
    if (this.#maxAge !== undefined) meta.maxAge = this.#maxAge
    const view: SessionView = {
      id: idPrefix(this.#id),
      identity: this.#avatar.identity,
      tags: [...this.#avatar.tags],
      meta,
      data: this.#data.toJSON(),
    }
    if (this.#avatar.data.size > 0) view.avatarData = this.#avatar.data.toJSON()
    const flags = [this.#dirty && 'dirty', this.#needsNewId && 'needsNewId', this.#invalidated && 'invalidated'].filter(
      (f) => f !== false,
    )
    if (flags.length > 0) view.flags = flags
    return view
  }

  /** The full record a store persists (id and auth snapshot included): keep it out of logs. */
  toRecord(): SessionRecord {
    const record: SessionRecord = {
      id: this.#id,
      meta: { ...this.meta },
      auth: this.#auth === null ? null : (copyJson(this.#auth, 'auth') as BagJSON),
      data: this.#data.toJSON(),
    }
    if (this.#avatarAttached || this.#avatar.data.size > 0) record.avatar = this.#avatar.toJSON()
    return record
  }

  #setAvatar(avatar: Avatar): void {
    const previous = this.#avatar as Avatar | undefined
    if (previous !== undefined && previous !== avatar) previous.data.onChange = null
    this.#avatar = avatar
    // Avatar data is part of the record, so changing it must also mark the session dirty.
    avatar.data.onChange = () => this.markDirty()
    trackChanges(avatar.data)
  }

  /**
   * Becomes `latest` (a newer stored version of this session) with this copy's own changes
   * re-applied path by path: data paths set or deleted, avatar data paths, and the avatar itself
   * when attachAvatar was called; after attachAvatar with keepData: false, this copy's data
   * whole. The journals are kept, so a second re-apply gives the same.
   */
  #rebase(latest: Session, version: number): void {
    if (latest.#id !== this.#id) throw new Error('internal: rebase onto another session')
    // keepData: false means nothing from before the login, whoever stored it: this copy's data
    // (what it set since the attach) stays as it is.
    if (!this.#dataCleared) {
      const dataPaths = changedPaths(this.#data)
      const data = latest.#data
      applyPaths(this.#data, data, dataPaths)
      setChangedPaths(data, dataPaths)
      this.#data.onChange = null
      data.onChange = () => this.markDirty()
      this.#data = data
    }

    if (!this.#avatarReplaced) {
      const avatarPaths = changedPaths(this.#avatar.data)
      const avatar = latest.#avatar
      applyPaths(this.#avatar.data, avatar.data, avatarPaths)
      this.#setAvatar(avatar)
      setChangedPaths(avatar.data, avatarPaths)
      this.#avatarAttached = latest.#avatarAttached
    }
    this.#auth = latest.#auth
    this.#lastAccess = Math.max(this.#lastAccess, latest.#lastAccess)
    this.#version = version
    this.#storedIdentity = latest.#avatar.isAnonymous ? null : latest.#avatar.identity
  }
}

// Internal to the package (stores and middleware): none of these is exported from lib/index.ts.

/** The store version `session` was read at or last written as; 0 when it was never stored. */
export function sessionVersion(session: Session): number {
  return internals.version(session)
}

/** The identity the stored version of `session` is indexed under; null when anonymous or never stored. */
export function storedIdentity(session: Session): string | null {
  return internals.storedIdentity(session)
}

/**
 * For the middleware: true when the `store.get` that returned `session` persisted a touch, so
 * the session's server-side expiry moved and the cookie's Max-Age should be sent again.
 */
export function persistedTouch(session: Session): boolean {
  return internals.touchPersisted(session)
}

/** For stores: `session` is now stored as `version` (clears dirty and the change journals). */
export function markStored(session: Session, version: number): void {
  internals.markStored(session, version)
}

/** For the middleware: `session`'s changes are persisted elsewhere (under the new id it moved to). */
export function clearDirty(session: Session): void {
  internals.clearDirty(session)
}

/** For stores: a get persisted the touch of `session` as `version`. */
export function markTouched(session: Session, version: number): void {
  internals.markTouched(session, version)
}

/** For stores: re-apply `session`'s own changes onto `latest`, stored as `version` (in place). */
export function rebaseSession(session: Session, latest: Session, version: number): void {
  internals.rebase(session, latest, version)
}

/** The expiry rule on its own, so a store can check a stored record without rebuilding the
 *  Session: idle longer than ttl (ttl <= 0 is always expired), or older than maxAge. */
export function isMetaExpired(meta: SessionMeta, now: number): boolean {
  if (meta.ttl <= 0) return true
  // Expired from the expiry instant on, the rule the native header check uses too.
  if (now - meta.lastAccess >= meta.ttl) return true
  return meta.maxAge !== undefined && now - meta.createdAt >= meta.maxAge
}

/** Unlike a store's ttl option, any finite ttl is allowed here: <= 0 means already expired. */
function checkSessionTtl(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number')
    throw new TypeError(`${name} must be a finite number of milliseconds, got ${describe(value)}`)
  if (!Number.isFinite(value) || Math.abs(value) > MAX_MS) {
    throw new RangeError(`${name} must be a finite number of milliseconds up to ${MAX_MS}, got ${describe(value)}`)
  }
}

function checkId(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describe(value)}`)
  if (!isStoreSessionId(value)) {
    throw new RangeError(
      `${name} must be a non-empty well-formed string of at most ${MAX_SESSION_ID_LENGTH} characters, got ${describe(value)}`,
    )
  }
}

/** For stores: Session.fromRecord of a record fresh from JSON.parse that nobody else holds (its
 *  values are adopted and frozen in place, not validated and copied a second time). */
export function sessionFromParsed(record: unknown): Session {
  return internals.fromParsed(record)
}
