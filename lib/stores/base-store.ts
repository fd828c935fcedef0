// The SessionStore logic every store shares, above where a record lives: id checks before any
// I/O, expiry on read, the touch throttle, re-sealing a record read with an older key, versioned
// compare-and-swap saves that re-apply a stale copy's own changes, delete/restore, and the
// identity index behind listSessions/revokeSessions.
//
// A concrete store supplies a few primitives on its backend (documented on each below):
// readRecord, writeRecord, removeRecord, indexAdd, indexRemove, indexList, dump, purgeExpired,
// close, assertOpen. Every primitive is called with a storage name (lowercase hex SHA-256 of the
// id's UTF-8 bytes) or an index name (lowercase hex HMAC of an identity), never with an id or an
// identity in clear.
//
// Versions: every stored record carries a version, a positive integer below 2^53 kept INSIDE the
// record (`record.version`, so inside the sealed envelope) and, where the backend needs it to
// compare without decrypting, beside it too. An insert draws a random version in [1, 2^48) (so a
// record deleted and inserted again under the same id never repeats the version an old copy
// holds); every later write is the previous version + 1. A record stored before versions existed
// (0.1) reads as version 1.
import { randomBytes, randomInt, createHmac } from 'node:crypto'
import { SessionConflictError } from '../core/errors'
import { generateSessionId, hasLoneSurrogate, isStoreSessionId, storageName } from '../core/ids'
import { checkRecordWritable } from '../core/record-limits'
import {
  isMetaExpired,
  markStored,
  markTouched,
  rebaseSession,
  Session,
  sessionVersion,
  storedIdentity,
  type SessionRecord,
} from '../session/session'
import {
  checkCreateArgs,
  checkSession,
  parseDump,
  type CreateOptions,
  type RevokeOptions,
  type SessionDump,
  type SessionInfo,
  type SessionStore,
  type StoreTiming,
} from './store'
import type { inspect, InspectOptionsStylized } from 'node:util'
import { custom, render, storeView } from '../core/inspect'
import { describe } from '../core/validate'

/** How many times save() re-applies its changes onto a newer version before SessionConflictError. */
export const MAX_SAVE_ATTEMPTS = 8

/** A record as stored: the JSON record of a session plus its version. */
export type VersionedRecord = SessionRecord & { version: number }

/** A session as read back: its version, and the index of the key that opened it (> 0: the
 *  key rotated, write it again with the current key). */
export interface StoredRecord {
  session: Session
  version: number
  keyIndex: number
}

/** What to store for one session. */
export interface RecordWrite {
  /** Storage name (hex SHA-256 of the id). */
  name: string
  id: string
  /** The version being written; also `record.version`. */
  version: number
  /** The record to store. */
  record: VersionedRecord
  /** `record` as JSON, made once (for the size check): sealed stores seal this string. */
  json: string
  /** The identity the record is indexed under (its avatar's); null when anonymous. */
  identity: string | null
  createdAt: number
  /** ms since the epoch; the backend may drop the record from this instant on (Redis PX). */
  expiresAt: number
}

/**
 * When writeRecord may write:
 * - `version`: only over a live record whose version is exactly `version` (compare-and-swap);
 * - `absent`: only when there is no live record under the name (expired or unreadable = absent);
 * - `any`: always (insert or replace; restore).
 */
export type WriteCondition = { kind: 'version'; version: number } | { kind: 'absent' } | { kind: 'any' }

/**
 * What writeRecord did: `written`; `missing` (condition `version`, no live record: nothing
 * written); `conflict` (condition `version`, a live record of another version: nothing written);
 * `exists` (condition `absent`, a live record is there: nothing written).
 */
export type WriteOutcome = 'written' | 'missing' | 'conflict' | 'exists'

/**
 * Given the live record a `version` write met instead of the expected version, the write to make
 * in its place (this copy's changes re-applied onto it, version = current.version + 1). It may
 * throw (size cap): the store then writes nothing and rethrows.
 */
export type Rebuild = (current: StoredRecord) => RecordWrite

/** What removeRecord did, and the identity the removed record was indexed under (if it could be read). */
export interface Removed {
  removed: boolean
  /** The removed record's avatar identity; null when anonymous, unreadable, or nothing removed. */
  identity: string | null
}

/** One session in an identity's index: its storage name and an expiry hint (the session's
 *  expiry when the entry was written; touches move the real one later). */
export interface IndexEntry {
  name: string
  expiresAt: number
}

/** A random first version in [1, 2^48): see the header comment. */
export function freshVersion(): number {
  return randomInt(1, 2 ** 48)
}

/** The version inside a stored record: a positive safe integer; absent (0.1) is 1; anything else null. */
export function recordVersion(record: unknown): number | null {
  const v = (record as { version?: unknown }).version
  if (v === undefined) return 1
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null
}

/** The identity a stored record is indexed under (its avatar's, built from auth when it has none); null when anonymous. */
export function recordIdentity(record: SessionRecord): string | null {
  return identityOf(Session.fromRecord(record))
}

export abstract class BaseSessionStore implements SessionStore {
  protected readonly timing: StoreTiming
  // The index key of a store that has no key ring (memory): fresh per store, never leaves it.
  #indexKey: Buffer | null = null

  protected constructor(timing: StoreTiming) {
    this.timing = timing
  }

  /** Idle timeout of new sessions in ms (the `ttl` option). */
  get ttl(): number {
    return this.timing.defaultTtl
  }

  /** @deprecated The old name of `ttl`. */
  get defaultTtl(): number {
    return this.timing.defaultTtl
  }

  get maxAge(): number | undefined {
    return this.timing.maxAge
  }

  get touchAfter(): number {
    return this.timing.touchAfter
  }

  /** console.log shows the store's kind and options: never a key, a client or a session. */
  [custom](depth: number, options: InspectOptionsStylized, fn: typeof inspect): string {
    return render(this.constructor.name, storeView(this), depth, options, fn)
  }

  async create(auth?: Readonly<Record<string, unknown>> | null, options?: CreateOptions): Promise<Session> {
    this.assertOpen()
    const args = checkCreateArgs(auth, options, this.timing.defaultTtl)
    for (let attempt = 0; attempt < 3; attempt++) {
      const session = new Session(generateSessionId(), args.auth, args.ttl, { maxAge: this.timing.maxAge })
      if (await this.#insert(session)) return session
    }
    // Three 256-bit random ids already taken: the random source is broken, not unlucky.
    throw new SessionConflictError('could not create a session: every fresh id was already taken', 'ERR_SESSION_CONFLICT')
  }

  async get(id: string): Promise<Session | null> {
    this.assertOpen()
    checkIdArgument(id)
    if (!isStoreSessionId(id)) return null
    const now = Date.now()
    const name = storageName(id)
    const found = await this.readRecord(name, now)
    if (found === null) return null
    const session = found.session
    // A record of another id under this name is not this session (sealed stores bind the
    // envelope to its name, so this means a file or key was moved).
    if (session.id !== id) return null
    if (session.isExpired(now)) {
      await this.#remove(name, found.version)
      return null
    }
    markStored(session, found.version)
    // Persist lastAccess only when the stored one is older than the throttle (or the key rotated):
    // read-mostly traffic stays reads, yet a session used once per half lifetime never expires.
    const stale = now - session.meta.lastAccess > this.touchThrottle(session)
    session.touch(now)
    if (stale || found.keyIndex > 0) {
      // The current version only: a touch never rolls back a newer save nor revives a deleted session.
      const write = this.#prepare(session, found.version + 1)
      const outcome = await this.writeRecord(write, { kind: 'version', version: found.version })
      if (outcome === 'written') markTouched(session, write.version)
      else if (outcome === 'missing') return null
      // conflict: another writer saved meanwhile; its version carries its own fresh lastAccess.
    }
    return session
  }

  async save(session: Session): Promise<boolean> {
    this.assertOpen()
    checkSession(session)
    if (sessionVersion(session) === 0) return this.#insert(session)
    const name = storageName(session.id)
    for (let attempt = 0; attempt < MAX_SAVE_ATTEMPTS; attempt++) {
      // Storing an expired copy would only resurrect it until the next read: drop it instead,
      // unless another request kept the session alive meanwhile (a newer version): then this
      // copy's changes go onto that one.
      if (session.isExpired()) {
        if (await this.#remove(name, sessionVersion(session))) return false
        const current = await this.readRecord(name, Date.now())
        if (current === null || current.session.id !== session.id || current.session.isExpired()) return false
        rebaseSession(session, current.session, current.version)
        continue
      }
      const identity = identityOf(session)
      // Written before the session, so a crash never hides a session from revokeSessions.
      const moved = identity !== null && identity !== storedIdentity(session)
      if (moved) await this.#indexAdd(identity, name, session.expiresAt())
      let replaced = storedIdentity(session)
      let write = this.#prepare(session, sessionVersion(session) + 1)
      const rebuild: Rebuild = (current) => {
        rebaseSession(session, current.session, current.version)
        replaced = storedIdentity(session)
        write = this.#prepare(session, current.version + 1)
        return write
      }
      const outcome = await this.writeRecord(write, { kind: 'version', version: sessionVersion(session) }, rebuild)
      if (outcome === 'written') {
        markStored(session, write.version)
        await this.#afterMove(name, replaced, identityOf(session), write.expiresAt, moved)
        return true
      }
      if (outcome !== 'conflict') return false
      const current = await this.readRecord(name, Date.now())
      if (current === null || current.session.id !== session.id || current.session.isExpired()) return false
      rebaseSession(session, current.session, current.version)
    }
    throw new SessionConflictError(
      `session not saved: other writers changed it ${MAX_SAVE_ATTEMPTS} times while its changes were re-applied`,
      'ERR_SESSION_CONFLICT',
    )
  }

  async delete(id: string): Promise<boolean> {
    this.assertOpen()
    checkIdArgument(id)
    if (!isStoreSessionId(id)) return false
    return this.#remove(storageName(id))
  }

  async restore(dump: SessionDump): Promise<number> {
    this.assertOpen()
    const sessions = parseDump(dump)
    const now = Date.now()
    const live = sessions.filter((s) => !s.isExpired(now))
    // All or nothing: every record is prepared (and so checked as its write would check it)
    // before the first write.
    const writes = live.map((s, i) => checkRecordWritable(s, i, () => this.#prepare(s, freshVersion())))
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < live.length) {
        const i = next++
        const session = live[i]
        const write = writes[i]
        const identity = identityOf(session)
        if (identity !== null) await this.#indexAdd(identity, write.name, write.expiresAt)
        await this.writeRecord(write, { kind: 'any' })
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.restoreConcurrency, live.length) }, worker))
    return live.length
  }

  async listSessions(identity: string): Promise<SessionInfo[]> {
    this.assertOpen()
    checkIdentity(identity)
    const now = Date.now()
    const out: SessionInfo[] = []
    const seen = new Set<string>()
    for (const index of this.indexNames(identity)) {
      const dangling: string[] = []
      for (const entry of await this.indexList(index)) {
        const found = await this.readRecord(entry.name, now)
        if (found === null || !belongsTo(found, identity, now)) {
          dangling.push(entry.name)
          continue
        }
        if (seen.has(entry.name)) continue
        seen.add(entry.name)
        const { session } = found
        out.push({ id: session.id, createdAt: session.meta.createdAt, lastAccess: session.meta.lastAccess, expiresAt: session.expiresAt() })
      }
      if (dangling.length > 0) await this.indexRemove(index, dangling)
    }
    return out
  }

  async revokeSessions(identity: string, options: RevokeOptions = {}): Promise<number> {
    this.assertOpen()
    checkIdentity(identity)
    const keep = checkRevokeOptions(options)
    const now = Date.now()
    let removed = 0
    for (const index of this.indexNames(identity)) {
      const gone: string[] = []
      for (const entry of await this.indexList(index)) {
        if (entry.name === keep) continue
        // Removed only while it still is this identity's (a login as someone else meanwhile keeps it).
        for (let attempt = 0; attempt < MAX_SAVE_ATTEMPTS; attempt++) {
          const found = await this.readRecord(entry.name, now)
          if (found === null || identityOf(found.session) !== identity) break
          const result = await this.removeRecord(entry.name, found.version)
          if (result.removed) {
            if (!found.session.isExpired(now)) removed++
            break
          }
        }
        gone.push(entry.name)
      }
      if (gone.length > 0) await this.indexRemove(index, gone)
    }
    return removed
  }

  abstract dump(): Promise<SessionDump>
  abstract purgeExpired(): Promise<number>
  abstract close(): Promise<void>

  // ---- Primitives a concrete store supplies --------------------------------------------------

  /**
   * The record stored under `name`, or null when there is none, it expired by `now` (a store may
   * remove it then), or it cannot be read (tampered, foreign key: log it, return null). The
   * session is rebuilt with Session.fromRecord; `version` comes from recordVersion(record). Other
   * failures (I/O, unreachable backend) reject.
   */
  protected abstract readRecord(name: string, now: number): Promise<StoredRecord | null>

  /**
   * Writes `write` under `write.name` if `condition` holds, atomically with the check (file: under
   * the name's stripe lock; Redis: one Lua script comparing the version kept beside the envelope,
   * then SET with PX until write.expiresAt). A record found expired or unreadable counts as absent.
   * `rebuild` (only with condition `version`) is an optional shortcut: a store that holds a lock
   * around its check may, instead of answering `conflict`, call rebuild(current) with the live
   * record it found and write its result under the same lock (a store without such a lock, like
   * Redis, ignores it and answers `conflict`; the caller then re-reads and retries).
   */
  protected abstract writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome>

  /**
   * Removes the record under `name`: any record (even unreadable or expired), or with `ifVersion`
   * only a readable record of exactly that version (expired or not). Atomic with the check (stripe lock / one Lua script
   * that returns the removed envelope so the caller can read its identity).
   */
  protected abstract removeRecord(name: string, ifVersion?: number): Promise<Removed>

  /**
   * Adds (or updates) `entry` in the index `index` (hex HMAC of an identity). Each index holds
   * the storage names of one identity's sessions; it is sealed or otherwise keeps no identity in
   * clear; it must not grow without bound (its entries go with their sessions: purge expired or
   * dangling entries here or in purgeExpired, or give the index a TTL at least the latest
   * entry's expiresAt). Concurrent adds and removes to one index must not lose each other.
   */
  protected abstract indexAdd(index: string, entry: IndexEntry): Promise<void>

  /** Removes these storage names from `index`; an index left empty is removed. Names not in it are ignored. */
  protected abstract indexRemove(index: string, names: readonly string[]): Promise<void>

  /** Every entry of `index`, dangling ones included (the caller checks and prunes them). */
  protected abstract indexList(index: string): Promise<IndexEntry[]>

  /** Throws SessionClosedError once closed. */
  protected abstract assertOpen(): void

  /**
   * The index names of an identity, current first: hex HMAC-SHA256 of its UTF-8 bytes. Stores
   * with a key ring derive the key with scope `store-index` (and list one name per key while keys
   * rotate); this default uses a random key of this store alone (memory).
   */
  protected indexNames(identity: string): string[] {
    this.#indexKey ??= randomBytes(32)
    return [createHmac('sha256', this.#indexKey).update(identity, 'utf8').digest('hex')]
  }

  /** Refuses a record too large to store (SessionTooLargeError); default: no cap. */
  protected checkRecordSize(_json: string, _session: Session): void {}

  /** How many restore writes are in flight at once. */
  protected get restoreConcurrency(): number {
    return 1
  }

  /** A read persists the new lastAccess once the stored one is older than this. */
  protected touchThrottle(session: Session): number {
    return Math.min(this.timing.touchAfter, session.meta.ttl / 2)
  }

  // ---- Shared steps ----------------------------------------------------------------------------

  /** Inserts a session never stored (created, or built by hand) only if its id is free. */
  async #insert(session: Session): Promise<boolean> {
    if (session.isExpired()) return false
    const write = this.#prepare(session, freshVersion())
    const identity = identityOf(session)
    if (identity !== null) await this.#indexAdd(identity, write.name, write.expiresAt)
    if ((await this.writeRecord(write, { kind: 'absent' })) !== 'written') return false
    markStored(session, write.version)
    await this.#afterMove(write.name, null, identity, write.expiresAt, identity !== null)
    return true
  }

  /** Removes a record and its index entry. */
  async #remove(name: string, ifVersion?: number): Promise<boolean> {
    const result = await this.removeRecord(name, ifVersion)
    if (result.removed && result.identity !== null) await this.indexRemove(this.indexNames(result.identity)[0], [name])
    return result.removed
  }

  async #indexAdd(identity: string, name: string, expiresAt: number): Promise<void> {
    await this.indexAdd(this.indexNames(identity)[0], { name, expiresAt })
  }

  /**
   * After a write that moved a session to `identity` (login, or an insert with an identity): its
   * entry is added again (a listSessions that ran between the first add and the write may have
   * pruned it as belonging to someone else) and the previous identity's entry is removed.
   */
  async #afterMove(name: string, previous: string | null, identity: string | null, expiresAt: number, moved: boolean): Promise<void> {
    if (!moved || identity === null) return
    await this.#indexAdd(identity, name, expiresAt)
    if (previous !== null && previous !== identity) await this.indexRemove(this.indexNames(previous)[0], [name])
  }

  #prepare(session: Session, version: number): RecordWrite {
    const record: VersionedRecord = { ...session.toRecord(), version }
    const json = JSON.stringify(record)
    this.checkRecordSize(json, session)
    return {
      name: storageName(session.id),
      id: session.id,
      version,
      record,
      json,
      identity: identityOf(session),
      createdAt: session.meta.createdAt,
      expiresAt: session.expiresAt(),
    }
  }
}

/** The identity a session is indexed under; null for an anonymous one. */
export function identityOf(session: Session): string | null {
  return session.avatar.isAnonymous ? null : session.avatar.identity
}

function belongsTo(found: StoredRecord, identity: string, now: number): boolean {
  return identityOf(found.session) === identity && !isMetaExpired(found.session.meta, now)
}

function checkIdentity(identity: unknown): asserts identity is string {
  if (typeof identity !== 'string') throw new TypeError(`identity must be a string, got ${describe(identity)}`)
  if (identity.trim() === '') throw new RangeError('identity must not be empty')
  if (hasLoneSurrogate(identity)) throw new TypeError(`identity must be well-formed UTF-16 (it has a lone surrogate), got ${describe(identity)}`)
}

/** The storage name of the session to keep, or null. */
function checkRevokeOptions(options: unknown): string | null {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`)
  }
  const { except } = options as RevokeOptions
  if (except === undefined) return null
  if (!isStoreSessionId(except)) throw new TypeError(`options.except must be a session id, got ${describe(except)}`)
  return storageName(except)
}

/** A wrong-typed id is the caller's bug (TypeError); a malformed string is just no session. */
function checkIdArgument(id: unknown): void {
  if (typeof id !== 'string') throw new TypeError(`id must be a string, got ${describe(id)}`)
}
