// The seed's in-process store. It keeps records (toJSON), never live Session objects, so it
// behaves like the persistent stores: changes reach it only through save(), and every get()
// returns a fresh Session. Nothing survives the process; use it for tests and single instances.
import { BaseSessionStore, type Found } from './base-store'
import { SessionClosedError } from './errors'
import { isPlainObject } from './json'
import { assertFits, checkMaxBytes } from './limits'
import { isMetaExpired, Session, type SessionRecord } from './session'
import { makeDump, resolveTiming, type SessionDump, type StoreTimingOptions } from './store'
import { checkNonNegativeMs, describe } from './validate'

export interface MemorySessionStoreOptions extends StoreTimingOptions {
  /** Most sessions held (default 100 000): past it the least recently used one is dropped. */
  maxSessions?: number
  /** How often expired sessions are dropped, in ms (default 5 min; 0 disables). */
  sweepInterval?: number
  /** Size cap of one session as the sealed stores count it (default 1 MiB): bigger is refused. */
  maxBytes?: number
}

export const DEFAULT_MAX_SESSIONS = 100_000
const DEFAULT_SWEEP_INTERVAL = 5 * 60_000

function checkMaxSessions(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_SESSIONS
  if (typeof value !== 'number') throw new TypeError(`options.maxSessions must be a number, got ${describe(value)}`)
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 32) {
    throw new RangeError(`options.maxSessions must be an integer from 1 to 2^32, got ${describe(value)}`)
  }
  return value
}

export class MemorySessionStore extends BaseSessionStore {
  // A Map keeps insertion order: every read and write moves a record to the end, so the first
  // entry is always the least recently used one, the one dropped past maxSessions.
  readonly #records = new Map<string, SessionRecord>()
  readonly maxSessions: number
  readonly maxBytes: number
  readonly sweepInterval: number
  #timer: NodeJS.Timeout | null = null
  #closed = false

  /** A bare number is taken as defaultTtl (ms), as in the seed. */
  constructor(options: MemorySessionStoreOptions | number = {}) {
    if (typeof options === 'number') options = { defaultTtl: options }
    if (!isPlainObject(options)) throw new TypeError(`options must be a plain object or a number, got ${describe(options)}`)
    super(resolveTiming(options))
    this.maxSessions = checkMaxSessions(options.maxSessions)
    this.maxBytes = checkMaxBytes(options.maxBytes)
    this.sweepInterval =
      options.sweepInterval === undefined ? DEFAULT_SWEEP_INTERVAL : checkNonNegativeMs('options.sweepInterval', options.sweepInterval)
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
      const session = Session.fromJSON(record)
      if (!session.isExpired(now)) records.push(session.toJSON())
    }
    return makeDump(records)
  }

  async purgeExpired(): Promise<number> {
    this.assertOpen()
    const now = Date.now()
    let removed = 0
    for (const [id, record] of this.#records) {
      if (isMetaExpired(record.meta, now)) {
        this.#records.delete(id)
        removed++
      }
    }
    return removed
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#records.clear()
    this.#closed = true
  }

  // Records, never live Session objects: every get() returns a fresh Session, as a persistent
  // store would, and changes reach the store only through save().
  protected async readSession(id: string): Promise<Found | null> {
    const record = this.#records.get(id)
    if (record === undefined) return null
    this.#records.delete(id) // most recently used now
    this.#records.set(id, record)
    return { session: Session.fromJSON(record), keyIndex: 0 }
  }

  protected async writeSession(session: Session, existingOnly: boolean): Promise<void> {
    if (existingOnly && !this.#records.has(session.id)) return
    const record = session.toJSON()
    assertFits(JSON.stringify(record), this.maxBytes, 'session record')
    this.#records.delete(session.id)
    this.#records.set(session.id, record)
    // Past the cap, drop the least recently used (the first in the Map's order).
    for (const oldest of this.#records.keys()) {
      if (this.#records.size <= this.maxSessions) break
      this.#records.delete(oldest)
    }
  }

  protected override checkWritable(session: Session): void {
    assertFits(JSON.stringify(session), this.maxBytes, 'session record')
  }

  protected async removeSession(id: string): Promise<boolean> {
    return this.#records.delete(id)
  }

  protected assertOpen(): void {
    if (this.#closed) throw new SessionClosedError('MemorySessionStore is closed', 'ERR_SESSION_CLOSED')
  }
}
