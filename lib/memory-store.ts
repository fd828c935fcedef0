// The seed's in-process store. It keeps records (toJSON), never live Session objects, so it
// behaves like the persistent stores: changes reach it only through save(), and every get()
// returns a fresh Session. Nothing survives the process; use it for tests and single instances.
import { BaseSessionStore, type Found } from './base-store'
import { SessionClosedError } from './errors'
import { isPlainObject } from './json'
import { isMetaExpired, Session, type SessionRecord } from './session'
import { makeDump, resolveTiming, TIMING_KEYS, type SessionDump, type StoreTimingOptions } from './store'
import { checkOptionKeys, describe } from './validate'

export type MemorySessionStoreOptions = StoreTimingOptions

const MEMORY_KEYS = new Set(TIMING_KEYS)

export class MemorySessionStore extends BaseSessionStore {
  readonly #records = new Map<string, SessionRecord>()
  #closed = false

  /** A bare number is taken as ttl (ms), as in the seed. */
  constructor(options: MemorySessionStoreOptions | number = {}) {
    if (typeof options === 'number') options = { ttl: options }
    if (!isPlainObject(options)) throw new TypeError(`options must be a plain object or a number, got ${describe(options)}`)
    checkOptionKeys(options, MEMORY_KEYS, 'MemorySessionStore')
    super(resolveTiming(options))
  }

  /** Number of records held, expired ones included until they are read or purged. */
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
    this.#records.clear()
    this.#closed = true
  }

  // Records, never live Session objects: every get() returns a fresh Session, as a persistent
  // store would, and changes reach the store only through save().
  protected async readSession(id: string): Promise<Found | null> {
    const record = this.#records.get(id)
    return record === undefined ? null : { session: Session.fromJSON(record), keyIndex: 0 }
  }

  protected async writeSession(session: Session, existingOnly: boolean): Promise<void> {
    if (existingOnly && !this.#records.has(session.id)) return
    this.#records.set(session.id, session.toJSON())
  }

  protected async removeSession(id: string): Promise<boolean> {
    return this.#records.delete(id)
  }

  protected assertOpen(): void {
    if (this.#closed) throw new SessionClosedError('MemorySessionStore is closed', 'ERR_SESSION_CLOSED')
  }
}
