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
//
// Revocation: revokeSessions does not depend on the identity index being complete. Each identity
// has a revocation mark, a number that only grows (kept under each of its index names). A record
// of an identity carries the epoch it was stamped with when it was stored under that identity:
// the identity's mark at that moment. revokeSessions raises the mark above every epoch stamped
// so far (and re-stamps the session it keeps), then removes what the index lists; get, save and
// listSessions treat a record whose epoch is below its identity's mark as revoked (and remove
// it). So a session the index missed (a lost entry, a key rotated, a competing writer) is still
// refused by every store instance once revokeSessions has resolved. The index serves listing
// and clean-up; an entry is pruned only on positive evidence that its session is gone.
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

/** A record as stored: the JSON record of a session plus, for a session with an identity, the
 *  revocation epoch it was stamped with, and its version (last: the file store's native
 *  compare-and-swap reads the trailing `"version":N`). */
export type VersionedRecord = SessionRecord & { epoch?: number; version: number }

/** A session as read back: its version, and the index of the key that opened it (> 0: the
 *  key rotated, write it again with the current key). */
export interface StoredRecord {
  session: Session
  version: number
  keyIndex: number
  /** The revocation epoch the record was stamped with (0 when it has none). */
  epoch: number
  /** The mark of index name `index`, read by the backend together with the record (the same
   *  statement, or the same round trip right after it), for the identity the record had when it
   *  was stored or last read: used when that is still the identity's one current index name
   *  (no key rotation under way); otherwise the mark is read as usual. */
  mark?: { index: string; value: number | Promise<number> }
}

/** What to store for one session. */
export interface RecordWrite {
  /** Storage name (hex SHA-256 of the id). */
  name: string
  id: string
  /** The version being written; also `record.version`. */
  version: number
  /** The revocation epoch the record is stamped with (0 for an anonymous session). */
  epoch: number
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

/** The revocation epoch inside a stored record: a non-negative safe integer; absent or invalid is 0
 *  (a record stored before revocation marks existed is revoked by any revocation). */
export function recordEpoch(record: unknown): number {
  const e = (record as { epoch?: unknown }).epoch
  return typeof e === 'number' && Number.isSafeInteger(e) && e > 0 ? e : 0
}

/** The identity a stored record is indexed under (its avatar's, built from auth when it has none); null when anonymous. */
export function recordIdentity(record: SessionRecord): string | null {
  return identityOf(Session.fromRecord(record))
}

/** The method behind readSession: get, synchronous where the backend can answer now. */
const GET_NOW = Symbol('sealed-session.getNow')

type ReadsNow = { [GET_NOW](id: string): Session | null | Promise<Session | null> }

/** store.get(id) for the HTTP adapters: synchronous for a store of ours that can read without
 *  waiting (no event-loop turn between the cookie and the handler), a promise otherwise. Throws
 *  what get would reject with. A get of its own (a subclass's, a wrapper) is always called. */
export function readSession(store: SessionStore, id: string): Session | null | Promise<Session | null> {
  return store.get === BaseSessionStore.prototype.get ? (store as unknown as ReadsNow)[GET_NOW](id) : store.get(id)
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
    throw new SessionConflictError(
      'could not create a session: every fresh id was already taken',
      'ERR_SESSION_CONFLICT',
    )
  }

  async get(id: string): Promise<Session | null> {
    this.assertOpen()
    checkIdArgument(id)
    if (!isStoreSessionId(id)) return null
    const now = Date.now()
    const name = storageName(id)
    return this.#admit(id, name, await this.readRecord(name, now), now)
  }

  /**
   * get(id) for the HTTP adapters (see readSession): the session itself when the backend could
   * read it without waiting (readRecordNow) and nothing is left to write, else a promise. Every
   * rule of get holds on both ways: expiry, revocation marks, the touch throttle.
   */
  [GET_NOW](id: string): Session | null | Promise<Session | null> {
    this.assertOpen()
    checkIdArgument(id)
    if (!isStoreSessionId(id)) return null
    const now = Date.now()
    const name = storageName(id)
    const found = this.readRecordNow(name, now)
    if (found === undefined) return this.readRecord(name, now).then((record) => this.#admit(id, name, record, now))
    return this.#admit(id, name, found, now)
  }

  /** What get returns for the record read under `name`: synchronously unless something must be
   *  read or written first (a revocation mark not readable now, an expired or revoked record to
   *  remove, a touch to persist). */
  #admit(id: string, name: string, found: StoredRecord | null, now: number): Session | null | Promise<Session | null> {
    if (found === null) return null
    const session = found.session
    // A record of another id under this name is not this session (sealed stores bind the
    // envelope to its name, so this means a file or key was moved).
    if (session.id !== id) return null
    if (session.isExpired(now)) return this.#drop(name, found.version)
    const identity = identityOf(session)
    if (identity === null) return this.#accept(found, now)
    const mark = this.#markNow(identity, found.mark)
    if (typeof mark === 'number') return this.#acceptUnlessRevoked(name, found, now, mark)
    return mark.then((m) => this.#acceptUnlessRevoked(name, found, now, m))
  }

  #acceptUnlessRevoked(
    name: string,
    found: StoredRecord,
    now: number,
    mark: number,
  ): Session | null | Promise<Session | null> {
    return found.epoch < mark ? this.#drop(name, found.version) : this.#accept(found, now)
  }

  async #drop(name: string, version: number): Promise<null> {
    await this.#remove(name, version)
    return null
  }

  #accept(found: StoredRecord, now: number): Session | Promise<Session | null> {
    const session = found.session
    markStored(session, found.version)
    epochs.set(session, found.epoch)
    // Persist lastAccess only when the stored one is older than the throttle (or the key rotated):
    // read-mostly traffic stays reads, yet a session used once per half lifetime never expires.
    const stale = now - session.meta.lastAccess > this.touchThrottle(session)
    session.touch(now)
    return stale || found.keyIndex > 0 ? this.#persistTouch(session, found) : session
  }

  async #persistTouch(session: Session, found: StoredRecord): Promise<Session | null> {
    // The current version only: a touch never rolls back a newer save nor revives a deleted session.
    const write = this.#prepare(session, found.version + 1, found.epoch)
    const condition: WriteCondition = { kind: 'version', version: found.version }
    const outcome = await this.writeRecord(write, condition)
    if (outcome === 'written') {
      markTouched(session, write.version)
      await this.afterWrite(write, condition)
    } else if (outcome === 'missing') return null
    // conflict: another writer saved meanwhile; its version carries its own fresh lastAccess.
    return session
  }

  async save(session: Session): Promise<boolean> {
    this.assertOpen()
    checkSession(session)
    if (sessionVersion(session) === 0) return this.#insert(session)
    const name = storageName(session.id)
    // One budget for every write attempt, the ones a backend retries by itself (rebuild) included.
    let attempts = 0
    const spend = (): void => {
      if (++attempts > this.saveAttempts) throw saveConflict(this.saveAttempts)
    }
    for (;;) {
      spend()
      // Storing an expired copy would only resurrect it until the next read: drop it instead,
      // unless another request kept the session alive meanwhile (a newer version): then this
      // copy's changes go onto that one.
      if (session.isExpired()) {
        if (await this.#remove(name, sessionVersion(session))) return false
        const current = await this.#latest(name, session.id)
        if (current === null) return false
        rebaseOnto(session, current)
        continue
      }
      const stored = storedIdentity(session)
      const identity = identityOf(session)
      const marks = new Map<string, number | Promise<number>>()
      const markOf = (who: string): number | Promise<number> => {
        let m = marks.get(who)
        if (m === undefined) {
          marks.set(who, (m = this.#markNow(who)))
          // Awaited below unless the write fails first (its own error is the one reported).
          if (typeof m !== 'number') m.catch(() => {})
        }
        return m
      }
      // Where the mark needs a round trip (Redis), it is asked for now, ahead of the write on the
      // same connection, and checked once the write has landed (see #replacedRevoked): a write
      // over a revoked copy is removed again before save returns, and meanwhile reads refuse it,
      // since it carries the old epoch. A copy that never had its epoch (built from a record by
      // hand) waits for the mark first, and so does one that logs out or in as someone else: its
      // write would carry no epoch of the revoked identity for reads to refuse meanwhile.
      let replacedEpoch = epochs.get(session)
      const storedMark = stored === null ? 0 : markOf(stored)
      const waitForMark = typeof storedMark === 'number' || replacedEpoch === undefined || identity !== stored
      if (stored !== null && waitForMark) {
        // This copy was read before its identity was revoked: the stored version decides (the
        // session revokeSessions kept was re-stamped since; any other is removed, not saved).
        if ((replacedEpoch ?? 0) < (await storedMark)) {
          const current = await this.#latest(name, session.id)
          if (current === null) return false
          const currentIdentity = identityOf(current.session)
          if (currentIdentity !== null && current.epoch < (await markOf(currentIdentity))) {
            if (await this.#remove(name, current.version)) return false
            continue
          }
          rebaseOnto(session, current)
          continue
        }
      }
      replacedEpoch ??= 0
      // A login (a new identity) stamps the record with that identity's mark as it is now; its
      // index entry is written before the session (so a crash never hides a session from
      // listSessions), in the same round trip as the mark.
      const moved = identity !== null && identity !== stored
      const loginEpoch = moved
        ? (await Promise.all([markOf(identity), this.#indexAdd(identity, name, session.expiresAt())]))[0]
        : 0
      const epochNow = (): number => {
        const who = identityOf(session)
        if (who === null) return 0
        return who === storedIdentity(session) ? (epochs.get(session) ?? 0) : loginEpoch
      }
      let replaced = stored
      const condition: WriteCondition = { kind: 'version', version: sessionVersion(session) }
      let write = this.#prepare(session, sessionVersion(session) + 1, epochNow())
      const rebuild: Rebuild = (current) => {
        spend()
        rebaseOnto(session, current)
        replaced = storedIdentity(session)
        replacedEpoch = current.epoch
        write = this.#prepare(session, current.version + 1, epochNow())
        return write
      }
      const outcome = await this.writeRecord(write, condition, rebuild)
      if (outcome === 'written') {
        if (await this.#replacedRevoked(write, replaced, replacedEpoch, markOf)) {
          if (await this.#remove(name, write.version)) return false
          const current = await this.#latest(name, session.id)
          if (current === null) return false
          rebaseOnto(session, current)
          continue
        }
        markStored(session, write.version)
        epochs.set(session, write.epoch)
        await this.afterWrite(write, condition)
        if (replaced !== null && replaced !== write.identity)
          await this.indexRemove(this.indexNames(replaced)[0], [name])
        return true
      }
      if (outcome !== 'conflict') return false
      const current = await this.#latest(name, session.id)
      if (current === null) return false
      rebaseOnto(session, current)
    }
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
    // A restored session is stamped like a login now: a revocation made before the restore does
    // not undo it; one made after does.
    const marks = new Map<string, number>()
    for (const session of live) {
      const identity = identityOf(session)
      if (identity !== null && !marks.has(identity)) marks.set(identity, await this.#mark(identity))
    }
    // All or nothing: every record is prepared (and so checked as its write would check it)
    // before the first write.
    const writes = live.map((s, i) =>
      checkRecordWritable(s, i, () => this.#prepare(s, freshVersion(), marks.get(identityOf(s) ?? '') ?? 0)),
    )
    const condition: WriteCondition = { kind: 'any' }
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < live.length) {
        const write = writes[next++]
        if (write.identity !== null) await this.#indexAdd(write.identity, write.name, write.expiresAt)
        await this.writeRecord(write, condition)
        await this.afterWrite(write, condition)
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.restoreConcurrency, live.length) }, worker))
    return live.length
  }

  async listSessions(identity: string): Promise<SessionInfo[]> {
    this.assertOpen()
    checkIdentity(identity)
    const now = Date.now()
    const mark = await this.#mark(identity)
    const out: SessionInfo[] = []
    const seen = new Set<string>()
    for (const index of this.indexNames(identity)) {
      const gone: string[] = []
      const stale: string[] = []
      for (const entry of await this.indexList(index)) {
        if (seen.has(entry.name)) continue
        const found = await this.readRecord(entry.name, now)
        if (found === null) {
          // Unreadable is not gone (a key this instance lacks, an I/O error): the entry stays.
          if (await this.recordGone(entry.name, now)) gone.push(entry.name)
          continue
        }
        const { session } = found
        // The authenticated record says it is another identity's now, or expired: not listed here.
        if (identityOf(session) !== identity || isMetaExpired(session.meta, now)) {
          stale.push(entry.name)
          continue
        }
        if (found.epoch < mark) {
          // Revoked, and missed by the revocation's own clean-up: removed now.
          if (await this.#remove(entry.name, found.version)) stale.push(entry.name)
          continue
        }
        seen.add(entry.name)
        out.push({
          id: session.id,
          createdAt: session.meta.createdAt,
          lastAccess: session.meta.lastAccess,
          expiresAt: session.expiresAt(),
        })
      }
      if (gone.length > 0) await this.pruneIndex(index, gone)
      if (stale.length > 0) await this.indexRemove(index, stale)
    }
    return out
  }

  async revokeSessions(identity: string, options: RevokeOptions = {}): Promise<number> {
    this.assertOpen()
    checkIdentity(identity)
    const keep = checkRevokeOptions(options)
    const names = this.indexNames(identity)
    const before = await this.#mark(identity)
    // Above every epoch stamped so far; the clock keeps it above stamps a dropped key's marks
    // handed out, where a counter alone would start again from 0.
    const epoch = Math.max(before + 1, Date.now())
    // The kept session is re-stamped first, so that no read of it ever sees it revoked.
    if (keep !== null) await this.#restamp(keep, identity, before, epoch)
    // What the index lists is removed (and counted) before the mark goes up: after it, a
    // concurrent reader would remove a revoked session itself, and it would go uncounted.
    const now = Date.now()
    let revoked = 0
    // While keys rotate a session is listed under more than one index name: handled once.
    const outcomes = new Map<string, RevokeOutcome>()
    try {
      for (const index of names) {
        const gone: string[] = []
        const done: string[] = []
        for (const entry of await this.indexList(index)) {
          if (entry.name === keep) continue
          let outcome = outcomes.get(entry.name)
          if (outcome === undefined) {
            outcomes.set(entry.name, (outcome = await this.#revokeOne(entry.name, identity, epoch, now)))
            if (outcome === 'removed' || outcome === 'refused') revoked++
          }
          if (outcome === 'removed' || outcome === 'foreign') done.push(entry.name)
          else if (outcome === 'gone') gone.push(entry.name)
        }
        if (gone.length > 0) await this.pruneIndex(index, gone)
        if (done.length > 0) await this.indexRemove(index, done)
      }
    } finally {
      // Raised even when the clean-up above failed (an unsafe file, an I/O error): the call then
      // rejects, yet what it revoked stays revoked. From here on no session of this identity
      // stamped before `epoch` reads back from any store instance, listed or not: one the index
      // missed, or that a writer kept replacing above, is refused by every get, save and
      // listSessions (and removed by it).
      for (const index of names) await this.markRaise(index, epoch)
    }
    return revoked
  }

  abstract dump(): Promise<SessionDump>
  abstract purgeExpired(): Promise<number>
  abstract close(): Promise<void>

  // ---- Primitives a concrete store supplies --------------------------------------------------

  /**
   * The record stored under `name`, or null when there is none, it expired by `now` (a store may
   * remove it then), or it cannot be read (tampered, foreign key: log it, return null). The
   * session is rebuilt with Session.fromRecord; `version` comes from recordVersion(record) and
   * `epoch` from recordEpoch(record). Other failures (I/O, unreachable backend) reject.
   */
  protected abstract readRecord(name: string, now: number): Promise<StoredRecord | null>

  /**
   * readRecord answered synchronously where the backend can without waiting (file: the page
   * cache); undefined when it cannot (the caller then uses readRecord). Default: never.
   */
  protected readRecordNow(_name: string, _now: number): StoredRecord | null | undefined {
    return undefined
  }

  /**
   * True only on positive evidence that no live record is stored under `name`: there is none, or
   * the backend's own expiry says it expired by `now`. An unreadable record, or a failure to
   * look, is not evidence (false, or reject).
   */
  protected abstract recordGone(name: string, now: number): Promise<boolean>

  /**
   * Writes `write` under `write.name` if `condition` holds, atomically with the check (file: under
   * the name's stripe lock; Redis: one Lua script comparing the version kept beside the envelope,
   * then SET with PX until write.expiresAt). A record found expired or unreadable counts as absent.
   * `rebuild` (only with condition `version`) is an optional shortcut: a store that holds a lock
   * around its check may, instead of answering `conflict`, call rebuild(current) with the live
   * record it found and write its result under the same lock; a store that compares without a
   * lock (Redis) may call it with the live record its failed compare returned and try again.
   * rebuild throws SessionConflictError once the save's attempts are spent.
   */
  protected abstract writeRecord(
    write: RecordWrite,
    condition: WriteCondition,
    rebuild?: Rebuild,
  ): Promise<WriteOutcome>

  /**
   * Removes the record under `name`: any record (even unreadable or expired), or with `ifVersion`
   * only a readable record of exactly that version (expired or not). Atomic with the check (stripe lock / one Lua script
   * that returns the removed envelope so the caller can read its identity).
   */
  protected abstract removeRecord(name: string, ifVersion?: number): Promise<Removed>

  /**
   * Makes sure `entry` is in the index `index` (hex HMAC of an identity), with at least this
   * expiry hint where the backend keeps one. Each index holds the storage names of one
   * identity's sessions, keeps no identity in clear, and has no size limit of its own (10 000
   * sessions of one identity list and revoke); its entries go only on positive evidence
   * (pruneIndex, indexRemove). Concurrent adds and removes to one index must not lose each other.
   */
  protected abstract indexAdd(index: string, entry: IndexEntry): Promise<void>

  /** Removes these storage names from `index`; an index left empty is removed. Names not in it are ignored. */
  protected abstract indexRemove(index: string, names: readonly string[]): Promise<void>

  /**
   * Removes the entries of `index` whose session is gone (recordGone). A backend whose writes add
   * the entry before and after the record re-checks under the record's lock, so an entry whose
   * session is being written meanwhile is kept.
   */
  protected async pruneIndex(index: string, names: readonly string[]): Promise<void> {
    await this.indexRemove(index, names)
  }

  /** Every entry of `index`, dangling ones included (the caller checks and prunes them). */
  protected abstract indexList(index: string): Promise<IndexEntry[]>

  /** The revocation mark kept under index name `index`; 0 when there is none. */
  protected abstract markRead(index: string): Promise<number>

  /** markRead answered synchronously where the backend can without waiting; else undefined. */
  protected markReadNow(_index: string): number | undefined {
    return undefined
  }

  /** Raises the mark under `index` to `epoch` (a mark never goes down), durably. */
  protected abstract markRaise(index: string, epoch: number): Promise<void>

  /**
   * After every successful write: the index entry of a session with an identity is (re)written
   * under the current key's index name, so a re-seal under a new key, or an entry lost to a
   * concurrent prune, is put right by the next write.
   */
  protected async afterWrite(write: RecordWrite, _condition: WriteCondition): Promise<void> {
    if (write.identity !== null) await this.#indexAdd(write.identity, write.name, write.expiresAt)
  }

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

  /**
   * How many write attempts one save makes in all before SessionConflictError, the backend's own
   * retries included. A store that re-applies under its lock never loses twice in a row; one that
   * compares without a lock (Redis) loses once per concurrent writer that gets in first.
   */
  protected get saveAttempts(): number {
    return MAX_SAVE_ATTEMPTS
  }

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
    const identity = identityOf(session)
    const write = this.#prepare(session, freshVersion(), identity === null ? 0 : await this.#mark(identity))
    // Written before the session, so a crash never hides a session from listSessions.
    if (identity !== null) await this.#indexAdd(identity, write.name, write.expiresAt)
    const condition: WriteCondition = { kind: 'absent' }
    if ((await this.writeRecord(write, condition)) !== 'written') return false
    markStored(session, write.version)
    epochs.set(session, write.epoch)
    await this.afterWrite(write, condition)
    return true
  }

  /** The latest stored version of session `id`, to re-apply a copy's changes onto; null when
   *  the session is gone (deleted, revoked or expired), and then nothing is written. */
  async #latest(name: string, id: string): Promise<StoredRecord | null> {
    const current = await this.readRecord(name, Date.now())
    return current === null || current.session.id !== id || current.session.isExpired() ? null : current
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
   * The identity's revocation mark: the highest under any of its index names (keys rotate). A
   * mark found only under an older key's name is carried to the current one, so it outlives the
   * older key (every session re-sealed under the new key had its mark read this way first).
   */
  async #mark(identity: string): Promise<number> {
    const names = this.indexNames(identity)
    const marks = await Promise.all(names.map((index) => this.markRead(index)))
    const mark = Math.max(0, ...marks)
    if (marks[0] < mark) await this.markRaise(names[0], mark)
    return mark
  }

  /** #mark without waiting when every index name's mark can be read now and none needs carrying
   *  to the current name; else the promise of #mark. */
  #markNow(identity: string, read?: StoredRecord['mark']): number | Promise<number> {
    const names = this.indexNames(identity)
    // Read with the record: one key (no mark under an older key's name to carry over).
    if (read !== undefined && names.length === 1 && read.index === names[0]) return read.value
    let mark = 0
    for (let i = 0; i < names.length; i++) {
      const m = this.markReadNow(names[i])
      if (m === undefined || (i > 0 && m > mark)) return this.#mark(identity)
      mark = Math.max(mark, m)
    }
    return mark
  }

  /**
   * Stamps the session revokeSessions keeps with the new epoch (a compare-and-swap on the version
   * read), before the mark is raised. A session already revoked by an earlier revocation stays
   * revoked. Throws SessionConflictError, before anything is revoked, when other writers keep
   * winning.
   */
  async #restamp(name: string, identity: string, before: number, epoch: number): Promise<void> {
    for (let attempt = 0; attempt < MAX_SAVE_ATTEMPTS; attempt++) {
      const found = await this.readRecord(name, Date.now())
      if (found === null || identityOf(found.session) !== identity || found.session.isExpired() || found.epoch < before)
        return
      const write = this.#prepare(found.session, found.version + 1, epoch)
      const condition: WriteCondition = { kind: 'version', version: found.version }
      const outcome = await this.writeRecord(write, condition)
      if (outcome === 'written') return this.afterWrite(write, condition)
      if (outcome === 'missing') return
    }
    throw new SessionConflictError(
      `sessions not revoked: the session to keep changed ${MAX_SAVE_ATTEMPTS} times while it was re-stamped`,
      'ERR_SESSION_CONFLICT',
    )
  }

  /**
   * Removes one indexed session of a revoked identity. `removed`: it was live and is gone;
   * `gone`: nothing live is there (the entry can be pruned); `foreign`: it is another identity's
   * now (the entry goes); `kept`: stamped at or after this revocation (a new login), or
   * unreadable here; `refused`: other writers kept replacing it (the mark raised next refuses it).
   */
  async #revokeOne(name: string, identity: string, epoch: number, now: number): Promise<RevokeOutcome> {
    for (let attempt = 0; attempt < MAX_SAVE_ATTEMPTS; attempt++) {
      const found = await this.readRecord(name, now)
      if (found === null) return (await this.recordGone(name, now)) ? 'gone' : 'kept'
      if (identityOf(found.session) !== identity) return 'foreign'
      if (found.epoch >= epoch) return 'kept'
      const result = await this.removeRecord(name, found.version)
      if (result.removed) return found.session.isExpired(now) ? 'gone' : 'removed'
    }
    return 'refused'
  }

  /**
   * True when a save's write went over a revoked record (the copy, or the version it was
   * re-applied onto, carried an epoch below its identity's mark), or itself carries an epoch
   * below the mark: revocation wins, and the caller removes what it wrote.
   */
  async #replacedRevoked(
    write: RecordWrite,
    replaced: string | null,
    replacedEpoch: number,
    markOf: (who: string) => number | Promise<number>,
  ): Promise<boolean> {
    if (replaced !== null && replacedEpoch < (await markOf(replaced))) return true
    return write.identity !== null && write.epoch < (await markOf(write.identity))
  }

  #prepare(session: Session, version: number, epoch: number): RecordWrite {
    const identity = identityOf(session)
    // The epoch goes before the version, which stays the record's last field.
    const record: VersionedRecord =
      identity === null ? { ...session.toRecord(), version } : { ...session.toRecord(), epoch, version }
    const json = JSON.stringify(record)
    this.checkRecordSize(json, session)
    return {
      name: storageName(session.id),
      id: session.id,
      version,
      epoch: identity === null ? 0 : epoch,
      record,
      json,
      identity,
      createdAt: session.meta.createdAt,
      expiresAt: session.expiresAt(),
    }
  }
}

/** What revokeSessions did with one indexed session (see #revokeOne). */
type RevokeOutcome = 'removed' | 'gone' | 'foreign' | 'kept' | 'refused'

// The revocation epoch each Session copy was read or last written with (see the header comment).
const epochs = new WeakMap<Session, number>()

/** `session` becomes the stored `current` with its own changes re-applied (its epoch too). */
function rebaseOnto(session: Session, current: StoredRecord): void {
  rebaseSession(session, current.session, current.version)
  epochs.set(session, current.epoch)
}

function saveConflict(attempts: number): SessionConflictError {
  return new SessionConflictError(
    `session not saved: other writers changed it ${attempts} times while its changes were re-applied`,
    'ERR_SESSION_CONFLICT',
  )
}

/** The identity a session is indexed under; null for an anonymous one. */
export function identityOf(session: Session): string | null {
  return session.avatar.isAnonymous ? null : session.avatar.identity
}

function checkIdentity(identity: unknown): asserts identity is string {
  if (typeof identity !== 'string') throw new TypeError(`identity must be a string, got ${describe(identity)}`)
  if (identity.trim() === '') throw new RangeError('identity must not be empty')
  if (hasLoneSurrogate(identity))
    throw new TypeError(`identity must be well-formed UTF-16 (it has a lone surrogate), got ${describe(identity)}`)
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
