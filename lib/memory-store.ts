// The seed's in-process store. It keeps records (toJSON), never live Session objects, so it
// behaves like the persistent stores: changes reach it only through save(), and every get()
// returns a fresh Session. Nothing survives the process; use it for tests and single instances.
// Checks and writes run without an await in between, so each one is atomic within the process.
import {
  BaseSessionStore,
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
import { SessionClosedError } from './errors'
import { isPlainObject } from './json'
import { isMetaExpired, Session, type SessionRecord } from './session'
import { makeDump, resolveTiming, type SessionDump, type StoreTimingOptions } from './store'
import { describe } from './validate'

export type MemorySessionStoreOptions = StoreTimingOptions

export class MemorySessionStore extends BaseSessionStore {
  /** By storage name. */
  readonly #records = new Map<string, VersionedRecord>()
  /** Index name -> storage name -> expiry hint. */
  readonly #indexes = new Map<string, Map<string, number>>()
  #closed = false

  /** A bare number is taken as defaultTtl (ms), as in the seed. */
  constructor(options: MemorySessionStoreOptions | number = {}) {
    if (typeof options === 'number') options = { defaultTtl: options }
    if (!isPlainObject(options)) throw new TypeError(`options must be a plain object or a number, got ${describe(options)}`)
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
    this.#records.clear()
    this.#indexes.clear()
    this.#closed = true
  }

  // An expired record is removed by the read that finds it so (as the file store does); its
  // index entry goes at the next purgeExpired or listSessions.
  protected async readRecord(name: string, now: number): Promise<StoredRecord | null> {
    const record = this.#records.get(name)
    if (record === undefined) return null
    if (isMetaExpired(record.meta, now)) {
      this.#records.delete(name)
      return null
    }
    return { session: Session.fromJSON(record), version: recordVersion(record) ?? 1, keyIndex: 0 }
  }

  protected async writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome> {
    const current = this.#live(write.name, Date.now())
    if (condition.kind === 'absent' && current !== null) return 'exists'
    if (condition.kind === 'version') {
      if (current === null) return 'missing'
      if (current.version !== condition.version) {
        if (rebuild === undefined) return 'conflict'
        write = rebuild({ session: Session.fromJSON(current), version: current.version, keyIndex: 0 })
      }
    }
    this.#records.set(write.name, write.record)
    return 'written'
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
