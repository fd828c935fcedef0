// The seed's in-process store. It keeps records (toRecord), never live Session objects, so it
// behaves like the persistent stores: changes reach it only through save(), and every get()
// returns a fresh Session. Nothing survives the process; use it for tests and single instances.
// Checks and writes run without an await in between, so each one is atomic within the process.
import {
  BaseSessionStore,
  recordEpoch,
  recordIdentity,
  recordVersion,
  type IndexEntry,
  type Rebuild,
  type RecordWrite,
  type Removed,
  type StoredRecord,
  type VersionedRecord,
  type WriteCondition,
  type WriteOutcome,
} from './base-store'
import { SessionClosedError, SessionTooLargeError } from '../core/errors'
import { isPlainObject } from '../core/json'
import { assertFits, checkMaxBytes } from '../core/limits'
import { isMetaExpired, Session, type SessionRecord } from '../session/session'
import { RecordMap } from './memory-records'
import { makeDump, resolveTiming, TIMING_KEYS, type SessionDump, type StoreTimingOptions } from './store'
import { checkNonNegativeMs, checkOptionKeys, describe } from '../core/validate'

export interface MemorySessionStoreOptions extends StoreTimingOptions {
  /**
   * Most sessions held (default 100 000). Past it, sessions without an identity (never logged
   * in, or logged out) are dropped first, least recently used first; then logged-in ones likewise.
   */
  maxSessions?: number
  /**
   * Byte budget over all sessions, counted as each stored record's JSON (default 64 MiB). Past
   * it, sessions are dropped in the maxSessions order; one session bigger than the whole budget
   * is refused with SessionTooLargeError.
   */
  maxTotalBytes?: number
  /** How often expired sessions are dropped, in ms (default 5 min; 0 disables). */
  sweepInterval?: number
  /** Size cap of one session as the sealed stores count it (default 1 MiB): bigger is refused. */
  maxBytes?: number
}

export const DEFAULT_MAX_SESSIONS = 100_000
// A login record is 200-300 bytes of JSON: 64 MiB holds the default 100 000 sessions at ~670
// bytes each, while 100 000 sessions at the 1 MiB maxBytes would be 100 GB. (The heap holds a
// few times the JSON size.)
const DEFAULT_MAX_TOTAL_BYTES = 64 * 1024 * 1024
const DEFAULT_SWEEP_INTERVAL = 5 * 60_000

function checkMaxSessions(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_SESSIONS
  if (typeof value !== 'number') throw new TypeError(`options.maxSessions must be a number, got ${describe(value)}`)
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 32) {
    throw new RangeError(`options.maxSessions must be an integer from 1 to 2^32, got ${describe(value)}`)
  }
  return value
}

function checkMaxTotalBytes(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_TOTAL_BYTES
  if (typeof value !== 'number') throw new TypeError(`options.maxTotalBytes must be a number, got ${describe(value)}`)
  if (!Number.isSafeInteger(value) || value < 1024) {
    throw new RangeError(`options.maxTotalBytes must be an integer from 1024 to 2^53 - 1, got ${describe(value)}`)
  }
  return value
}

const MEMORY_KEYS = new Set([...TIMING_KEYS, 'maxSessions', 'maxTotalBytes', 'sweepInterval', 'maxBytes'])

export class MemorySessionStore extends BaseSessionStore {
  // Every read and write moves a record to the end, so the Map's order is least recently used
  // first; RecordMap keeps the byte total and the anonymous records' order in step.
  /** By storage name. */
  readonly #records = new RecordMap()
  /** Index name -> storage name -> expiry hint. */
  readonly #indexes = new Map<string, Map<string, number>>()
  /** Index name -> revocation mark. */
  readonly #marks = new Map<string, number>()
  readonly maxSessions: number
  readonly maxTotalBytes: number
  readonly maxBytes: number
  readonly sweepInterval: number
  #timer: NodeJS.Timeout | null = null
  #closed = false

  /** A bare number is taken as ttl (ms), as in the seed. */
  constructor(options: MemorySessionStoreOptions | number = {}) {
    if (typeof options === 'number') options = { ttl: options }
    if (!isPlainObject(options))
      throw new TypeError(`options must be a plain object or a number, got ${describe(options)}`)
    checkOptionKeys(options, MEMORY_KEYS, 'MemorySessionStore')
    super(resolveTiming(options))
    this.maxSessions = checkMaxSessions(options.maxSessions)
    this.maxTotalBytes = checkMaxTotalBytes(options.maxTotalBytes)
    this.maxBytes = checkMaxBytes(options.maxBytes)
    this.sweepInterval =
      options.sweepInterval === undefined
        ? DEFAULT_SWEEP_INTERVAL
        : checkNonNegativeMs('options.sweepInterval', options.sweepInterval)
    if (this.sweepInterval > 0) {
      this.#timer = setInterval(() => void this.purgeExpired().catch(() => {}), this.sweepInterval)
      // Never keep a process alive just to sweep.
      this.#timer.unref()
    }
  }

  /** Number of records held, expired ones included until they are read, swept or purged. */
  get size(): number {
    return this.#records.size
  }

  async dump(): Promise<SessionDump> {
    this.assertOpen()
    const now = Date.now()
    const records: SessionRecord[] = []
    for (const record of this.#records.values()) {
      // Through Session so the caller gets copies, never the records this store holds.
      const session = Session.fromRecord(record)
      if (!session.isExpired(now)) records.push(session.toRecord())
    }
    return makeDump(records)
  }

  /** Removes expired records, then index entries whose session is gone. */
  async purgeExpired(): Promise<number> {
    this.assertOpen()
    const now = Date.now()
    let removed = 0
    for (const [name, record] of this.#records) {
      if (isMetaExpired(record.meta, now)) {
        this.#records.delete(name)
        removed++
      }
    }
    for (const [index, entries] of this.#indexes) {
      for (const name of entries.keys()) if (!this.#records.has(name)) entries.delete(name)
      if (entries.size === 0) this.#indexes.delete(index)
    }
    return removed
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#records.clear()
    this.#indexes.clear()
    this.#marks.clear()
    this.#closed = true
  }

  // An expired record is removed by the read that finds it so (as the file store does), with its
  // index entry: nothing else would drop that entry while sweepInterval is 0.
  protected async readRecord(name: string, now: number): Promise<StoredRecord | null> {
    return this.readRecordNow(name, now)
  }

  // Everything is in memory: always answered now.
  protected override readRecordNow(name: string, now: number): StoredRecord | null {
    const record = this.#records.get(name)
    if (record === undefined) return null
    if (isMetaExpired(record.meta, now)) {
      this.#drop(name, record)
      return null
    }
    this.#records.delete(name) // most recently used now
    this.#records.set(name, record)
    return {
      session: Session.fromRecord(record),
      version: recordVersion(record) ?? 1,
      keyIndex: 0,
      epoch: recordEpoch(record),
    }
  }

  protected async writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome> {
    const current = this.#live(write.name, Date.now())
    if (condition.kind === 'absent' && current !== null) return 'exists'
    if (condition.kind === 'version') {
      if (current === null) return 'missing'
      if (current.version !== condition.version) {
        if (rebuild === undefined) return 'conflict'
        write = rebuild({
          session: Session.fromRecord(current),
          version: current.version,
          keyIndex: 0,
          epoch: recordEpoch(current),
        })
      }
    }
    this.#records.delete(write.name) // most recently used now
    this.#records.put(write.name, write.record, write.json, write.identity)
    this.#evict(write.name)
    return 'written'
  }

  /**
   * Past maxSessions or maxTotalBytes, drops sessions without an identity before logged-in ones
   * (a flood of cookieless visitors must not log users out), least recently used first in each;
   * never `kept`, the record just written (it fits: checkRecordSize).
   */
  #evict(kept: string): void {
    for (const name of this.#records.evictionOrder()) {
      if (this.#records.size <= this.maxSessions && this.#records.bytes <= this.maxTotalBytes) break
      if (name !== kept) this.#drop(name, this.#records.get(name)!)
    }
  }

  /** Removes a record and its index entry. */
  #drop(name: string, record: VersionedRecord): void {
    this.#records.delete(name)
    const identity = this.#records.identityOf(record)
    if (identity !== null) void this.indexRemove(this.indexNames(identity)[0], [name])
  }

  protected override checkRecordSize(json: string): void {
    // Counted as a sealed store counts it, so a dump moves between stores with the same cap.
    assertFits(json, this.maxBytes, 'session record')
    // Evicting every other session could not make room for it.
    if (Buffer.byteLength(json) > this.maxTotalBytes) {
      throw new SessionTooLargeError(
        `session record is over the ${this.maxTotalBytes}-byte budget of all sessions (options.maxTotalBytes)`,
        'ERR_SESSION_TOO_LARGE',
      )
    }
  }

  protected async removeRecord(name: string, ifVersion?: number): Promise<Removed> {
    const record = this.#records.get(name)
    if (record === undefined) return { removed: false, identity: null }
    if (ifVersion !== undefined && record.version !== ifVersion) return { removed: false, identity: null }
    this.#records.delete(name)
    return { removed: true, identity: recordIdentity(record) }
  }

  protected async indexAdd(index: string, entry: IndexEntry): Promise<void> {
    let entries = this.#indexes.get(index)
    if (entries === undefined) this.#indexes.set(index, (entries = new Map()))
    entries.set(entry.name, entry.expiresAt)
  }

  protected async indexRemove(index: string, names: readonly string[]): Promise<void> {
    const entries = this.#indexes.get(index)
    if (entries === undefined) return
    for (const name of names) entries.delete(name)
    if (entries.size === 0) this.#indexes.delete(index)
  }

  protected async recordGone(name: string, now: number): Promise<boolean> {
    return this.#live(name, now) === null
  }

  protected async markRead(index: string): Promise<number> {
    return this.markReadNow(index)
  }

  protected override markReadNow(index: string): number {
    return this.#marks.get(index) ?? 0
  }

  protected async markRaise(index: string, epoch: number): Promise<void> {
    if (epoch > (this.#marks.get(index) ?? 0)) this.#marks.set(index, epoch)
  }

  protected async indexList(index: string): Promise<IndexEntry[]> {
    return [...(this.#indexes.get(index) ?? [])].map(([name, expiresAt]) => ({ name, expiresAt }))
  }

  protected assertOpen(): void {
    if (this.#closed) throw new SessionClosedError('MemorySessionStore is closed', 'ERR_SESSION_CLOSED')
  }

  #live(name: string, now: number): VersionedRecord | null {
    const record = this.#records.get(name)
    return record === undefined || isMetaExpired(record.meta, now) ? null : record
  }
}
