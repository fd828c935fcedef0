// The seed's in-process store. It keeps records (toJSON), never live Session objects, so it
// behaves like the persistent stores: changes reach it only through save(), and every get()
// returns a fresh Session. Nothing survives the process; use it for tests and single instances.
import { SessionClosedError } from './errors'
import { generateSessionId, isValidSessionId } from './ids'
import { isPlainObject } from './json'
import { isMetaExpired, Session, type SessionRecord } from './session'
import {
  checkCreateArgs,
  checkSession,
  makeDump,
  parseDump,
  resolveTiming,
  type CreateOptions,
  type SessionDump,
  type SessionStore,
  type StoreTiming,
  type StoreTimingOptions,
} from './store'
import { describe } from './validate'

export type MemorySessionStoreOptions = StoreTimingOptions

export class MemorySessionStore implements SessionStore {
  readonly #records = new Map<string, SessionRecord>()
  readonly #timing: StoreTiming
  #closed = false

  /** A bare number is taken as defaultTtl (ms), as in the seed. */
  constructor(options: MemorySessionStoreOptions | number = {}) {
    if (typeof options === 'number') options = { defaultTtl: options }
    if (!isPlainObject(options)) throw new TypeError(`options must be a plain object or a number, got ${describe(options)}`)
    this.#timing = resolveTiming(options)
  }

  get defaultTtl(): number {
    return this.#timing.defaultTtl
  }

  get maxAge(): number | undefined {
    return this.#timing.maxAge
  }

  get touchAfter(): number {
    return this.#timing.touchAfter
  }

  /** Number of records held, expired ones included until they are read or purged. */
  get size(): number {
    return this.#records.size
  }

  async create(auth?: Readonly<Record<string, unknown>> | null, options?: CreateOptions): Promise<Session> {
    this.#checkOpen()
    const args = checkCreateArgs(auth, options, this.#timing.defaultTtl)
    let id = generateSessionId()
    while (this.#records.has(id)) id = generateSessionId() // 2^-256: never, but cheap to rule out
    const session = new Session(id, args.auth, args.ttl, { maxAge: this.#timing.maxAge })
    this.#records.set(id, session.toJSON())
    return session
  }

  async get(id: string): Promise<Session | null> {
    this.#checkOpen()
    if (!isValidSessionId(id)) return null
    const record = this.#records.get(id)
    if (record === undefined) return null
    const session = Session.fromJSON(record)
    const now = Date.now()
    if (session.isExpired(now)) {
      this.#records.delete(id)
      return null
    }
    // Persist the new lastAccess only when the stored one is stale: read-heavy traffic then
    // writes at most once per touchAfter, which matters for the file and Redis stores.
    const stale = now - session.meta.lastAccess > this.#timing.touchAfter
    session.touch(now)
    if (stale) this.#records.set(id, session.toJSON())
    return session
  }

  async save(session: Session): Promise<void> {
    this.#checkOpen()
    checkSession(session)
    // Storing an expired session would only resurrect it until the next read: drop it instead.
    if (session.isExpired()) this.#records.delete(session.id)
    else this.#records.set(session.id, session.toJSON())
    session.clearDirty()
  }

  async delete(id: string): Promise<boolean> {
    this.#checkOpen()
    return isValidSessionId(id) && this.#records.delete(id)
  }

  async dump(): Promise<SessionDump> {
    this.#checkOpen()
    const now = Date.now()
    const records: SessionRecord[] = []
    for (const record of this.#records.values()) {
      // Through Session so the caller gets copies, never the records this store holds.
      const session = Session.fromJSON(record)
      if (!session.isExpired(now)) records.push(session.toJSON())
    }
    return makeDump(records)
  }

  async restore(dump: SessionDump): Promise<number> {
    this.#checkOpen()
    const sessions = parseDump(dump)
    const now = Date.now()
    let restored = 0
    for (const session of sessions) {
      if (session.isExpired(now)) continue
      this.#records.set(session.id, session.toJSON())
      restored++
    }
    return restored
  }

  async purgeExpired(): Promise<number> {
    this.#checkOpen()
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

  #checkOpen(): void {
    if (this.#closed) throw new SessionClosedError('MemorySessionStore is closed', 'ERR_SESSION_CLOSED')
  }
}
