// Sessions shared by many app servers through PostgreSQL. One row per session (see
// postgres-schema.ts): its storage name, the sealed envelope (sealed and opened in memory by the
// native key ring), the version it is compared on, its expiry and the keyed hash of its
// identity. No session id, identity or data reaches the database in clear.
//
// Saves are compare-and-swap statements on the version column (UPDATE … WHERE version = $n,
// INSERT … ON CONFLICT); a lost compare reads the row again and re-applies the save's changes.
// The identity column is the identity index: every write sets it, so listing needs no second
// write and an entry is never lost. Revocation marks live in a second table.
//
// The client is the user's own node-postgres Pool/Client or postgres.js sql, reached through one
// adapter (postgres-client.ts).
import type {
  IndexEntry,
  Rebuild,
  RecordWrite,
  Removed,
  StoredRecord,
  WriteCondition,
  WriteOutcome,
} from './base-store'
import { identityOf, MAX_SAVE_ATTEMPTS } from './base-store'
import { SessionConflictError, SessionTamperedError, toSessionError } from '../core/errors'
import { isStorageName } from '../core/ids'
import { isPlainObject } from '../core/json'
import type { KeyOptions } from '../core/keys'
import { weakInterval } from '../core/weak-timer'
import { linkPostgres, type PgLink, type PgParam, type PgRow } from './postgres-client'
import { isRetryable, timedOut, toUnavailable } from './postgres-errors'
import { lockKey, schemaScript, statements, tableNames, type Statements, type TableNames } from './postgres-schema'
import { SEALED_KEYS, SealedStore, type SealedStoreOptions } from './sealed-store'
import type { SessionRecord } from '../session/session'
import { makeDump, type SessionDump } from './store'
import { checkNonNegativeMs, checkOptionKeys, checkTtl, describe } from '../core/validate'

/** A node-postgres `Pool` or `Client` (from 'pg'). */
export interface NodePostgresClientLike {
  // biome-ignore lint/suspicious/noExplicitAny: the client's own overloads must stay assignable
  query(...args: any[]): any
  // biome-ignore lint/suspicious/noExplicitAny: the client's own overloads must stay assignable
  connect(...args: any[]): any
}
/** A postgres.js `sql` (from 'postgres'). */
export interface PostgresJsLike {
  // biome-ignore lint/suspicious/noExplicitAny: the client's own overloads must stay assignable
  unsafe(...args: any[]): any
  // biome-ignore lint/suspicious/noExplicitAny: the client's own overloads must stay assignable
  begin(...args: any[]): any
  // biome-ignore lint/suspicious/noExplicitAny: the client's own overloads must stay assignable
  end(...args: any[]): any
}
/** The clients PostgresSessionStore accepts; nothing is imported from either package. */
export type PostgresClientLike = NodePostgresClientLike | PostgresJsLike

export interface PostgresSessionStoreOptions extends Omit<SealedStoreOptions, 'bindToBoot'> {
  /**
   * A node-postgres Pool (or Client) or a postgres.js sql you created; it stays yours (close()
   * leaves it open). Give a node-postgres Pool an 'error' listener (`pool.on('error', ...)`):
   * without one, an idle connection that breaks (a server restart) ends the process.
   */
  client: PostgresClientLike
  /** Required (this or `secrets`): every app server must derive the same key, so a machine-bound key is refused. */
  secret?: KeyOptions['secret']
  /** The sessions table, optionally schema-qualified ("app.sessions"); default 'sealed_sessions'. */
  table?: string
  /**
   * A command not answered within this many ms rejects with SessionStoreUnavailableError (default
   * 2000). Such a rejection means "outcome unknown": a statement already sent may still commit.
   */
  commandTimeout?: number
  /** How often expired rows are purged, in ms (default 5 min; 0 disables). One app server at a time purges. */
  sweepInterval?: number
}

const PG_KEYS = new Set([...SEALED_KEYS, 'client', 'table', 'commandTimeout', 'sweepInterval'])
/** Rows one purge statement deletes at most. */
export const PURGE_BATCH = 1000
// Restore writes in flight at once (a pool runs them on its connections).
const RESTORE_CONCURRENCY = 8
/** The compare-and-swap runs of one save at most: one per concurrent writer that gets in first. */
export const PG_SAVE_ATTEMPTS = 64

/**
 * Encrypted sessions in PostgreSQL, shared by every app server that has the same `secret`.
 *
 * - `await store.init()` creates the tables and indexes if missing (or run `schema()`'s DDL).
 * - A read fetches at most `maxBytes` + 1 bytes of the envelope; a row that is too big or not a
 *   sealed session reads as no session (one warning).
 * - `purgeExpired()` deletes expired rows in batches of 1000, one app server at a time (an
 *   advisory lock; another server's call returns 0 meanwhile).
 * - An unreachable server: SessionStoreUnavailableError within `commandTimeout`.
 */
export class PostgresSessionStore extends SealedStore {
  readonly table: string
  readonly commandTimeout: number
  readonly #link: PgLink
  readonly #names: TableNames
  readonly #sql: Statements
  #timer: NodeJS.Timeout | null = null
  #sweeping: Promise<unknown> | null = null
  // Index name → every index name of its identity, while keys rotate (see indexNames).
  readonly #siblings = new Map<string, readonly string[]>()

  protected override get saveAttempts(): number {
    return PG_SAVE_ATTEMPTS
  }
  protected override get restoreConcurrency(): number {
    return RESTORE_CONCURRENCY
  }

  /** The DDL init() runs, for migration tools: tables, indexes, storage setting. */
  static schema(options: { table?: string } = {}): string {
    if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
    checkOptionKeys(options, new Set(['table']), 'PostgresSessionStore.schema')
    return schemaScript(tableNames(options.table))
  }

  constructor(options: PostgresSessionStoreOptions) {
    checkKeyOptions(options)
    const link = linkPostgres(options.client)
    const names = tableNames(options.table)
    const commandTimeout =
      options.commandTimeout === undefined ? 2_000 : checkTtl('options.commandTimeout', options.commandTimeout)
    const sweepInterval =
      options.sweepInterval === undefined
        ? 5 * 60_000
        : checkNonNegativeMs('options.sweepInterval', options.sweepInterval)
    super({ ...options, bindToBoot: false })
    this.#link = link
    this.#names = names
    this.table = names.given
    this.commandTimeout = commandTimeout
    this.#sql = statements(names, this.maxBytes + 1)
    if (!link.hasErrorListener()) {
      this.logger.warn(
        "the PostgreSQL client has no 'error' listener: a broken idle connection will end the process; add pool.on('error', ...)",
      )
    }
    if (sweepInterval > 0) {
      // Held weakly, never keeps the process alive (see weak-timer.ts).
      this.#timer = weakInterval(this, sweepInterval, (store) => {
        if (store.#sweeping !== null) return
        store.#sweeping = store
          .purgeExpired()
          .catch((err: unknown) => store.logger.warn('session sweep failed', { reason: String(err) }))
          .finally(() => {
            store.#sweeping = null
          })
      })
    }
  }

  /** Which client the store talks through. */
  get clientKind(): PgLink['kind'] {
    return this.#link.kind
  }

  /**
   * Creates the tables and indexes that are missing, in one statement. Idempotent; several app
   * servers may run it at once (an advisory lock puts them in turn). A complete schema takes no
   * table lock.
   */
  async init(): Promise<void> {
    this.ring()
    try {
      await this.#query('init', this.#sql.init, [])
    } catch (err) {
      // Created meanwhile by someone not taking our lock (a migration): look again, once.
      if (!isDuplicate(err)) throw err
      await this.#query('init', this.#sql.init, [])
    }
  }

  async dump(): Promise<SessionDump> {
    this.ring()
    const now = Date.now()
    const records: SessionRecord[] = []
    for (let last = ''; ; ) {
      const rows = await this.#query('dump', this.#sql.page, [last, String(now)])
      for (const row of rows) {
        const found = this.#open(row.name as string, row)
        if (found && !found.session.isExpired(now)) records.push(found.session.toRecord())
      }
      if (rows.length < 500) break
      last = rows[rows.length - 1].name as string
    }
    return makeDump(records)
  }

  /**
   * Deletes expired rows in batches of 1000, each one statement under a transaction-level advisory
   * lock: while another app server is purging, this stops (0 when it could not start). No
   * connection is held between batches, so none can be left holding the lock. The number deleted.
   */
  async purgeExpired(): Promise<number> {
    this.ring()
    const key = lockKey(this.#names, 'purge')
    let total = 0
    for (;;) {
      const [row] = await this.#query('purgeExpired', this.#sql.purge, [now(), String(PURGE_BATCH), key])
      const n = Number(row.n)
      total += n
      if (row.ok !== true || n < PURGE_BATCH) break
    }
    if (total > 0) this.logger.debug('expired sessions purged', { removed: total })
    return total
  }

  /** Stops the sweep (a sweep running is waited for) and wipes the key ring; later calls reject
   *  with SessionClosedError. The client is left open (it is yours). */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    await this.#sweeping
    this.closeRing()
  }

  // ---- Records -----------------------------------------------------------------------------------

  protected async readRecord(name: string, now: number): Promise<StoredRecord | null> {
    const [row] = await this.#query('read', this.#sql.read, [name])
    if (row === undefined) return null
    if (Number(row.expires_at) <= now) {
      await this.#query('delete', this.#sql.removeExpired, [name, String(now)])
      return null
    }
    return this.#open(name, row)
  }

  protected async writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome> {
    if (condition.kind === 'any') {
      await this.#query('save', this.#sql.put, this.#params(write))
      return 'written'
    }
    if (condition.kind === 'absent') return this.#insert(write)
    let expected = condition.version
    for (;;) {
      const done = await this.#query('save', this.#sql.swap, [
        ...this.#params(write),
        String(expected),
        now(),
        this.ring().keyIds.join(','),
      ])
      if (done.length > 0) return 'written'
      const current = await this.readRecord(write.name, Date.now())
      if (current === null || current.session.id !== write.id) return 'missing'
      if (rebuild === undefined) return 'conflict'
      // rebuild counts this attempt against the save's budget (SessionConflictError when spent).
      write = rebuild(current)
      expected = current.version
    }
  }

  protected async removeRecord(name: string, ifVersion?: number): Promise<Removed> {
    const rows =
      ifVersion === undefined
        ? await this.#query('delete', this.#sql.remove, [name])
        : await this.#query('delete', this.#sql.removeVersion, [name, String(ifVersion)])
    if (rows.length === 0) return { removed: false, identity: null }
    const found = this.#open(name, { ...rows[0], version: ifVersion === undefined ? null : String(ifVersion) })
    return { removed: true, identity: found === null ? null : identityOf(found.session) }
  }

  protected async recordGone(name: string, now: number): Promise<boolean> {
    return (await this.#query('read', this.#sql.live, [name, String(now)])).length === 0
  }

  // ---- Identity index: the identity_hash column of each row --------------------------------------

  /** Every write sets the row's identity_hash: the entry is there as soon as the session is. */
  protected async indexAdd(_index: string, _entry: IndexEntry): Promise<void> {}

  protected override async afterWrite(): Promise<void> {}

  protected async indexRemove(index: string, names: readonly string[]): Promise<void> {
    if (names.length === 0) return
    await this.#query('index', this.#sql.indexRemove, [index, names.join(','), now()])
  }

  protected async indexList(index: string): Promise<IndexEntry[]> {
    const rows = await this.#query('list', this.#sql.indexList, [(this.#siblings.get(index) ?? [index]).join(',')])
    return rows
      .filter((r) => isStorageName(r.name as string))
      .map((r) => ({ name: r.name as string, expiresAt: Number(r.expires_at) }))
  }

  /**
   * A re-seal moves a row's identity_hash from an older key's index name to the current one in
   * one write, so listing the names one by one could miss a row that moves in between: each name
   * remembers its siblings, and indexList reads them all at once.
   */
  protected override indexNames(identity: string): string[] {
    const names = super.indexNames(identity)
    if (names.length > 1) {
      for (const name of names) {
        this.#siblings.delete(name) // re-inserted last: the oldest entries go first
        this.#siblings.set(name, names)
      }
      for (const oldest of this.#siblings.keys()) {
        if (this.#siblings.size <= 4096) break
        this.#siblings.delete(oldest)
      }
    }
    return names
  }

  protected async markRead(index: string): Promise<number> {
    const [row] = await this.#query('read', this.#sql.markRead, [index])
    if (row === undefined) return 0
    const mark = Number(row.mark)
    if (!Number.isSafeInteger(mark) || mark < 0)
      throw new SessionTamperedError('a revocation mark in PostgreSQL is not a number', 'ERR_SESSION_TAMPERED')
    return mark
  }

  protected async markRaise(index: string, epoch: number): Promise<void> {
    await this.#query('revoke', this.#sql.markRaise, [index, String(epoch)])
  }

  // ---- Helpers -----------------------------------------------------------------------------------

  /** Insert only where no live record is: a row expired, or unreadable, is replaced. */
  async #insert(write: RecordWrite): Promise<WriteOutcome> {
    const params = this.#params(write)
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((await this.#query('save', this.#sql.insert, [...params, now()])).length > 0) return 'written'
      const [row] = await this.#query('read', this.#sql.read, [write.name])
      if (row === undefined) continue // removed meanwhile: insert again
      if (Number(row.expires_at) > Date.now() && this.#open(write.name, row) !== null) return 'exists'
      // Unreadable (garbage, a foreign key): replaced only if it is still the row version seen.
      const done = await this.#query('save', this.#sql.replace, [...params, row.xmin as string])
      if (done.length > 0) return 'written'
    }
    return 'exists'
  }

  /** name, envelope, version, expires_at, identity_hash: the first five parameters of every write. */
  #params(write: RecordWrite): PgParam[] {
    let envelope: Buffer
    try {
      envelope = this.ring().seal(write.json, this.context(write.name), write.createdAt, write.expiresAt)
    } catch (err) {
      throw toSessionError(err)
    }
    const identity = write.identity === null ? null : this.indexNames(write.identity)[0]
    return [write.name, envelope, String(write.version), String(write.expiresAt), identity]
  }

  /** A row read back (bounded) as a stored record; null (one warning) when it is not one of ours. */
  #open(name: string, row: PgRow): StoredRecord | null {
    const ring = this.ring()
    const envelope = row.envelope
    if (!(envelope instanceof Uint8Array)) return this.#notOurs('holds an envelope that is not bytea')
    // The read stopped at maxBytes + 1: anything that long is over the cap.
    if (envelope.length > this.maxBytes) return this.#notOurs(`holds more than maxBytes (${this.maxBytes})`)
    const buf = Buffer.isBuffer(envelope)
      ? envelope
      : Buffer.from(envelope.buffer, envelope.byteOffset, envelope.length)
    let opened: { plaintext: Buffer | string; keyIndex: number }
    try {
      opened = ring.open(buf, this.context(name), this.maxBytes, true)
    } catch (err) {
      return this.unreadable(err)
    }
    const found = this.decode(opened.plaintext as string, opened.keyIndex)
    // The version compared is the column: a record that says otherwise was not written by us.
    if (found !== null && row.version !== null && row.version !== undefined && String(found.version) !== row.version)
      return this.#notOurs('holds a version that does not match its record')
    if (found !== null && typeof row.identity_hash === 'string' && 'mark' in row) {
      // Read with the row: the base store uses it when it is the identity's current index name.
      const value = row.mark === null ? 0 : Number(row.mark)
      if (Number.isSafeInteger(value) && value >= 0) found.mark = { index: row.identity_hash, value }
    }
    return found
  }

  #notOurs(why: string): null {
    this.logger.warn(`a session row ${why}: read as no session`)
    return null
  }

  /** One statement on the pool, given up after commandTimeout; serialization failures retried. */
  async #query(what: string, text: string, params: readonly PgParam[]): Promise<PgRow[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#watch(what, () => this.#link.query(text, params))
      } catch (err) {
        if (!isRetryable(err)) throw err
        if (attempt >= MAX_SAVE_ATTEMPTS) throw conflict(what, err)
      }
    }
  }

  /** `start()`'s promise, or SessionStoreUnavailableError after commandTimeout or on a connection error. */
  #watch<T>(what: string, start: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        settled = true
        reject(timedOut(what, this.commandTimeout))
      }, this.commandTimeout)
      timer.unref()
      let reply: Promise<T>
      try {
        reply = start()
      } catch (err) {
        reply = Promise.reject(err)
      }
      reply.then(
        (value) => {
          clearTimeout(timer)
          if (!settled) resolve(value)
          settled = true
        },
        (err: unknown) => {
          clearTimeout(timer)
          if (!settled) reject(toUnavailable(err, what))
          settled = true
        },
      )
    })
  }
}

const now = (): string => String(Date.now())

function conflict(what: string, cause: unknown): SessionConflictError {
  return new SessionConflictError(
    `PostgreSQL kept refusing ${what} (serialization failure or deadlock, ${MAX_SAVE_ATTEMPTS} times)`,
    'ERR_SESSION_CONFLICT',
    { cause },
  )
}

/** duplicate_table, duplicate_object, or a unique_violation on the catalog (a concurrent CREATE). */
function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === '42P07' || code === '42710' || code === '23505'
}

/** Checked before any key is derived: a machine-bound or boot-bound key cannot be shared. */
function checkKeyOptions(options: PostgresSessionStoreOptions): void {
  if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
  checkOptionKeys(options, PG_KEYS, 'PostgresSessionStore')
  if (options.secret === undefined && options.secrets === undefined) {
    throw new TypeError(
      'PostgresSessionStore refuses a machine-bound key: every server sharing this database must derive the same key, so pass options.secret (or options.secrets to rotate)',
    )
  }
  if ((options as KeyOptions).bindToBoot !== undefined && (options as KeyOptions).bindToBoot !== false) {
    throw new TypeError(
      "PostgresSessionStore does not take options.bindToBoot: a key bound to one machine's boot cannot be shared by several servers",
    )
  }
}
