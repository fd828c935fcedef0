// Sessions shared by many app servers through Redis. Each value is a version header and one
// sealed envelope (sealed and opened in memory by the native key ring), stored under
// `prefix + storageName(id)` with a PX expiry equal to the session's own expiry, so Redis does the
// sweeping. No session id ever reaches Redis in clear: the key holds its SHA-256, the value is
// ciphertext.
//
// The client is the user's own node-redis (v5 or v6) or ioredis client, reached through one adapter
// (redis-client.ts). Every command names one key, so the store works unchanged on a single
// server, behind Sentinel and on Redis Cluster.
import {
  identityOf,
  type IndexEntry,
  type Rebuild,
  type RecordWrite,
  type Removed,
  type StoredRecord,
  type WriteCondition,
  type WriteOutcome,
} from './base-store'
import { SessionTamperedError, toSessionError } from '../core/errors'
import { isStorageName } from '../core/ids'
import { isPlainObject } from '../core/json'
import type { KeyOptions } from '../core/keys'
import { globEscape, linkRedis, type RedisArg, type RedisLink } from './redis-client'
import { CommandDeadlines } from './redis-deadlines'
import { notReady } from './redis-errors'
import {
  INDEX_ADD,
  INDEX_LIST,
  MARK_RAISE,
  REMOVE,
  SWAP,
  evalArgs,
  isNoScript,
  type RedisScript,
} from './redis-scripts'
import { HEADER_BYTES, parseValue, versionHeader } from './redis-value'
import { SEALED_KEYS, SealedStore, type SealedStoreOptions } from './sealed-store'
import type { SessionRecord } from '../session/session'
import { makeDump, type SessionDump } from './store'
import { checkOptionKeys, checkTtl, describe } from '../core/validate'

/** A node-redis v5 or v6 client or cluster (`createClient()`, `createCluster()` from 'redis'). */
export interface NodeRedisClientLike {
  // biome-ignore lint/suspicious/noExplicitAny: the clients' own overloads must stay assignable
  sendCommand(...args: any[]): Promise<unknown>
  // biome-ignore lint/suspicious/noExplicitAny: the clients' own overloads must stay assignable
  withTypeMapping(...args: any[]): unknown
}
/** An ioredis client or cluster (`new Redis()`, `new Redis.Cluster()`, Sentinel through Redis options). */
export interface IoRedisClientLike {
  readonly status: string
  // biome-ignore lint/suspicious/noExplicitAny: the clients' own overloads must stay assignable
  call(...args: any[]): Promise<unknown>
  // biome-ignore lint/suspicious/noExplicitAny: the clients' own overloads must stay assignable
  callBuffer(...args: any[]): Promise<unknown>
}
/** The clients RedisSessionStore accepts; nothing is imported from either package. */
export type RedisClientLike = NodeRedisClientLike | IoRedisClientLike

export interface RedisSessionStoreOptions extends Omit<SealedStoreOptions, 'bindToBoot'> {
  /**
   * A node-redis (v5 or v6) or ioredis client you created and connected; it stays yours (close() leaves
   * it open). Give it an 'error' listener (`client.on('error', ...)`): without one, a lost
   * connection makes the client emit an unhandled 'error' event, which ends the process.
   */
  client: RedisClientLike
  /** Required (this or `secrets`): every app server must derive the same key, so a machine-bound key is refused. */
  secret?: KeyOptions['secret']
  /** Prepended to every key (default 'sess:'). */
  prefix?: string
  /**
   * A command not answered within this many ms rejects with SessionStoreUnavailableError (default
   * 2000). Such a rejection means "outcome unknown", not "not written": the command has been sent,
   * and a server that answers late (paused, overloaded, failing over) may still apply a save or a
   * delete after the promise rejected. Read the session again before acting on either outcome.
   */
  commandTimeout?: number
}

const REDIS_KEYS = new Set([...SEALED_KEYS, 'client', 'prefix', 'commandTimeout'])
const SCAN_COUNT = 500
// Clients pipeline concurrent commands on one connection: this many in flight at once.
const BATCH = 100
const WRONG_TYPE = /^WRONGTYPE /
// Logged-in sessions whose mark is asked for with their record.
const MARK_HINTS = 4096
/** The swap runs of one save at most (see saveAttempts). */
export const REDIS_SAVE_ATTEMPTS = 64

/**
 * Encrypted sessions in Redis, shared by every app server that has the same `secret`.
 *
 * - `purgeExpired()` returns 0: each key carries a PX expiry, so Redis removes expired sessions
 *   itself.
 * - While Redis is unreachable (or failing over), calls reject at once (client not ready) or
 *   after `commandTimeout` with SessionStoreUnavailableError instead of waiting in the client's
 *   offline queue; they work again as soon as the client has reconnected.
 * - A read fetches at most `maxBytes` + 1 bytes of the envelope: a value planted under a
 *   session's key that is too big or not a string reads as no session (one warning).
 * - Redis Cluster: every command names one key. `dump()` runs SCAN on every master.
 */
export class RedisSessionStore extends SealedStore {
  readonly prefix: string
  readonly commandTimeout: number
  protected override get restoreConcurrency(): number {
    return BATCH
  }
  // Optimistic swaps without a lock: a save loses once to each writer that gets in first, so
  // its budget covers this many writers of one session at once. One budget per save: the retries
  // of writeRecord and of save draw on it together.
  protected override get saveAttempts(): number {
    return REDIS_SAVE_ATTEMPTS
  }
  // Storage name -> the index name of the identity its record had when last read here: which
  // revocation mark to ask for with the record's next read. Bounded; a miss costs a round trip.
  readonly #markHints = new Map<string, string>()
  // Writes whose index entry writeRecord already refreshed (see afterWrite).
  readonly #indexed = new WeakSet<RecordWrite>()
  readonly #link: RedisLink
  readonly #deadlines: CommandDeadlines
  // GETRANGE's inclusive end: the header and maxBytes + 1 bytes of envelope at most.
  readonly #readEnd: string
  #keyIdList: string | undefined

  constructor(options: RedisSessionStoreOptions) {
    const link = linkRedis(checkKeyOptions(options).client)
    super({ ...options, bindToBoot: false })
    this.#link = link
    this.prefix = checkPrefix(options.prefix)
    this.commandTimeout =
      options.commandTimeout === undefined ? 2_000 : checkTtl('options.commandTimeout', options.commandTimeout)
    this.#deadlines = new CommandDeadlines(this.commandTimeout)
    this.#readEnd = String(HEADER_BYTES + this.maxBytes)
    if (!link.hasErrorListener()) {
      this.logger.warn(
        "the Redis client has no 'error' listener: a lost connection will end the process; add client.on('error', ...)",
      )
    }
  }

  /** Which client the store talks through ('node-redis', 'ioredis cluster', ...). */
  get clientKind(): RedisLink['kind'] {
    return this.#link.kind
  }

  async dump(): Promise<SessionDump> {
    this.ring()
    const now = Date.now()
    const records: SessionRecord[] = []
    const match = `${globEscape(this.prefix)}*`
    // SCAN sees only the node it is sent to: scan every master, then read each key through the
    // client, which routes it to its slot's master.
    for (const scan of await this.#command('SCAN', this.#link.scanners())) {
      let cursor = '0'
      do {
        const [next, keys] = await this.#command('SCAN', scan(cursor, match, SCAN_COUNT))
        cursor = next
        const names = keys
          .filter((k) => k.startsWith(this.prefix))
          .map((k) => k.slice(this.prefix.length))
          .filter(isStorageName)
        for (let i = 0; i < names.length; i += BATCH) {
          const found = await Promise.all(names.slice(i, i + BATCH).map((n) => this.readRecord(n)))
          for (const f of found) if (f && !f.session.isExpired(now)) records.push(f.session.toRecord())
        }
      } while (cursor !== '0')
    }
    return makeDump(records)
  }

  /** Always 0: every key carries a PX expiry, so Redis removes expired sessions by itself. */
  async purgeExpired(): Promise<number> {
    this.ring()
    return 0
  }

  /** Wipes the key ring; later calls reject with SessionClosedError. The client is left open (it is yours). */
  async close(): Promise<void> {
    this.closeRing()
  }

  // ---- Records: one key each, value = version header + envelope --------------------------------

  protected async readRecord(name: string): Promise<StoredRecord | null> {
    let value: unknown
    const reading = this.#send('GETRANGE', ['GETRANGE', this.prefix + name, '0', this.#readEnd], true)
    // The revocation mark of the identity this record had at its last read, asked right after
    // it on the same connection: a logged-in read is one round trip, not two.
    const hint = this.#markHints.get(name)
    const mark = hint === undefined ? undefined : this.markRead(hint)
    mark?.catch(() => {}) // unused when the identity changed; get reports a failure itself
    try {
      value = await reading
    } catch (err) {
      // A list, hash, ... under a session's key (a shared or hostile Redis): not a session.
      if (err instanceof Error && WRONG_TYPE.test(err.message))
        return this.#notOurs('holds a value that is not a string')
      throw err
    }
    const found = this.#open(name, value)
    const identity = found === null ? null : identityOf(found.session)
    if (identity === null) {
      this.#markHints.delete(name)
      return found
    }
    const index = this.indexNames(identity)[0]
    this.#markHints.delete(name) // re-inserted last: the oldest hint goes first
    this.#markHints.set(name, index)
    if (this.#markHints.size > MARK_HINTS) this.#markHints.delete(this.#markHints.keys().next().value as string)
    if (found !== null && mark !== undefined && hint === index) found.mark = { index, value: mark }
    return found
  }

  /**
   * One SWAP script per attempt: it compares the version header beside the envelope and writes
   * only when the condition holds. On a conflict the script answers with the current value, so a
   * save re-applies its changes (rebuild) and tries again without a separate read.
   */
  protected async writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome> {
    if (condition.kind === 'any') {
      // (restore: the caller has indexed it already)
      await this.#send('SET', ['SET', this.prefix + write.name, this.#value(write), 'PX', px(write.expiresAt)], false)
      return 'written'
    }
    // Keep the identity's index entry as long-lived as the session (touches move its expiry):
    // sent with the write, on the same connection, so it costs no extra round trip.
    const index = condition.kind === 'version' && write.identity !== null ? this.indexNames(write.identity)[0] : null
    const refreshed = write
    const refresh = index !== null ? this.#indexAdd(index, write) : null
    refresh?.catch(() => {})
    let expected: RedisArg = condition.kind === 'version' ? expectedHeader(condition.version) : ''
    let legacy = condition.kind === 'version' && condition.version === 1 ? 'SEAL' : ''
    try {
      for (let attempt = 0; ; attempt++) {
        const reply = await this.#script(SWAP, this.prefix + write.name, [
          expected,
          this.#value(write),
          px(write.expiresAt),
          this.#readEnd,
          legacy,
          this.#keyIds(),
        ])
        if (reply === 1) return 'written'
        if (reply === 0) return condition.kind === 'absent' ? 'exists' : 'missing'
        const current = await this.#open(write.name, reply)
        if (condition.kind === 'absent') {
          if (current !== null) return 'exists'
          // Expired or unreadable counts as absent: replace exactly the value seen (once more at most).
          if (attempt > 0 || !Buffer.isBuffer(reply)) return 'exists'
          expected = reply.subarray(0, Math.min(reply.length, HEADER_BYTES)) // bytes, not a string: compared byte for byte
          legacy = ''
          continue
        }
        if (current === null || current.session.id !== write.id) return 'missing'
        if (rebuild === undefined) return 'conflict'
        write = rebuild(current)
        expected = expectedHeader(current.version)
        legacy = current.version === 1 ? 'SEAL' : ''
      }
    } finally {
      // afterWrite adds the entry again unless this refresh covered the write that landed.
      const ok =
        refresh !== null &&
        (await refresh.then(
          () => true,
          () => false,
        ))
      if (ok && write.expiresAt <= refreshed.expiresAt) this.#indexed.add(write)
    }
  }

  /** DEL (or, with ifVersion, delete only that version) in one script that returns what it removed. */
  protected async removeRecord(name: string, ifVersion?: number): Promise<Removed> {
    const expected = ifVersion === undefined ? '' : expectedHeader(ifVersion)
    const legacy = ifVersion === 1 ? 'SEAL' : ''
    const reply = await this.#script(REMOVE, this.prefix + name, [expected, legacy, this.#readEnd])
    if (reply === 0) return { removed: false, identity: null }
    const found = Buffer.isBuffer(reply) ? await this.#open(name, reply) : null
    if (ifVersion !== undefined && found !== null && found.version !== ifVersion) {
      // The header matched but the sealed record says otherwise (a forged header): already gone.
      this.logger.warn('a session key held a version header that did not match its record')
    }
    const avatar = found?.session.avatar
    return { removed: true, identity: avatar === undefined || avatar.isAnonymous ? null : avatar.identity }
  }

  // PX removes an expired key: a missing key is the only evidence needed.
  protected async recordGone(name: string): Promise<boolean> {
    return (await this.#send('EXISTS', ['EXISTS', this.prefix + name], false)) === 0
  }

  // ---- Identity index: a sorted set per identity (member: storage name, score: expiry) ---------

  // A versioned write refreshed the entry itself, on the same connection as the swap; the entry
  // is added here only when that refresh failed or did not cover the expiry that was written.
  protected override async afterWrite(write: RecordWrite, condition: WriteCondition): Promise<void> {
    if (!this.#indexed.delete(write)) await super.afterWrite(write, condition)
  }

  protected async indexAdd(index: string, entry: IndexEntry): Promise<void> {
    await this.#script(INDEX_ADD, this.#indexKey(index), [entry.name, String(entry.expiresAt), String(Date.now())])
  }

  protected async indexRemove(index: string, names: readonly string[]): Promise<void> {
    if (names.length === 0) return
    const key = this.#indexKey(index)
    try {
      await this.#send('ZREM', ['ZREM', key, ...names], false, key)
    } catch (err) {
      if (!(err instanceof Error && WRONG_TYPE.test(err.message))) throw err
    }
  }

  protected async indexList(index: string): Promise<IndexEntry[]> {
    const reply = await this.#script(INDEX_LIST, this.#indexKey(index), [String(Date.now())])
    const flat = Array.isArray(reply) ? reply.map(String) : []
    const out: IndexEntry[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      if (isStorageName(flat[i])) out.push({ name: flat[i], expiresAt: Number(flat[i + 1]) })
    }
    return out
  }

  // ---- Revocation marks: `<prefix>rev:<index name>`, a decimal integer, no expiry ----------------

  protected async markRead(index: string): Promise<number> {
    const value = await this.#send('GET', ['GET', this.#markKey(index)], false)
    if (value === null || value === undefined) return 0
    const epoch = Number(String(value))
    if (!Number.isSafeInteger(epoch) || epoch < 0)
      throw new SessionTamperedError('a revocation mark in Redis is not a number', 'ERR_SESSION_TAMPERED')
    return epoch
  }

  protected async markRaise(index: string, epoch: number): Promise<void> {
    await this.#script(MARK_RAISE, this.#markKey(index), [String(epoch)])
  }

  /** The ring's key ids as the SWAP script takes them: ',id,id,' (a store's ring never changes). */
  #keyIds(): string {
    this.#keyIdList ??= `,${this.ring().keyIds.join(',')},`
    return this.#keyIdList
  }

  #markKey(index: string): string {
    return `${this.prefix}rev:${index}`
  }

  #indexKey(index: string): string {
    return `${this.prefix}idx:${index}`
  }

  #indexAdd(index: string, write: RecordWrite): Promise<void> {
    return this.indexAdd(index, { name: write.name, expiresAt: write.expiresAt })
  }

  /** The version header and the sealed record: what a session's key holds. */
  #value(write: RecordWrite): Buffer {
    let envelope: Buffer
    try {
      envelope = this.ring().seal(write.json, this.context(write.name), write.createdAt, write.expiresAt)
    } catch (err) {
      throw toSessionError(err)
    }
    const value = Buffer.allocUnsafe(HEADER_BYTES + envelope.length)
    value.write(versionHeader(write.version), 0, 'latin1')
    envelope.copy(value, HEADER_BYTES)
    return value
  }

  /** A value read back (bounded) as a stored record; null when missing, too big or not ours. */
  #open(name: string, value: unknown): StoredRecord | null {
    const ring = this.ring()
    if (!Buffer.isBuffer(value)) {
      if (value === null || value === undefined || value === '') return null
      throw new TypeError(`Redis returned ${describe(value)} for a session value, not a Buffer`)
    }
    if (value.length === 0) return null // GETRANGE of a missing key
    // The read stopped at header + maxBytes + 1: anything that long is over the cap.
    if (value.length > HEADER_BYTES + this.maxBytes) return this.#notOurs(`holds more than maxBytes (${this.maxBytes})`)
    const stored = parseValue(value)
    if (stored === null) return this.#notOurs('holds a value that is not a sealed session')
    if (stored.envelope.length > this.maxBytes) return this.#notOurs(`holds more than maxBytes (${this.maxBytes})`)
    let opened: { plaintext: Buffer | string; keyIndex: number }
    try {
      opened = ring.open(stored.envelope, this.context(name), this.maxBytes, true)
    } catch (err) {
      return this.unreadable(err)
    }
    return this.decode(opened.plaintext as string, opened.keyIndex)
  }

  /** EVALSHA, and EVAL once when the server does not have the script yet. */
  async #script(script: RedisScript, key: string, argv: RedisArg[]): Promise<unknown> {
    try {
      return await this.#send('EVALSHA', evalArgs(script, key, argv), true, key)
    } catch (err) {
      if (!isNoScript(err)) throw err
      return this.#send('EVAL', evalArgs(script, key, argv, true), true, key)
    }
  }

  #notOurs(why: string): null {
    this.logger.warn(`a session key ${why}: read as no session`)
    return null
  }

  /** One command on `key`'s slot (default args[1]), refused at once while the client is not ready. */
  #send(what: string, args: RedisArg[], binary: boolean, key = args[1] as string): Promise<unknown> {
    if (!this.#link.ready()) return Promise.reject(notReady(what))
    let reply: Promise<unknown>
    try {
      reply = this.#link.send(key, args, binary)
    } catch (err) {
      reply = Promise.reject(err)
    }
    return this.#deadlines.watch(what, reply)
  }

  /** A promise from the client, given up after commandTimeout; refused while not ready. */
  #command<T>(what: string, reply: Promise<T>): Promise<T> {
    if (!this.#link.ready()) {
      reply.catch(() => {})
      return Promise.reject(notReady(what))
    }
    return this.#deadlines.watch(what, reply)
  }
}

/** The header a value of `version` starts with. */
function expectedHeader(version: number): string {
  return versionHeader(version)
}

/** PX for a record expiring at `expiresAt` (at least 1: an already expired write vanishes at once). */
function px(expiresAt: number): string {
  return String(Math.max(1, expiresAt - Date.now()))
}

/** Checked before any key is derived: a machine-bound or boot-bound key cannot be shared. */
function checkKeyOptions(options: RedisSessionStoreOptions): RedisSessionStoreOptions {
  if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
  checkOptionKeys(options, REDIS_KEYS, 'RedisSessionStore')
  if (options.secret === undefined && options.secrets === undefined) {
    throw new TypeError(
      'RedisSessionStore refuses a machine-bound key: every server sharing this Redis must derive the same key, so pass options.secret (or options.secrets to rotate)',
    )
  }
  if ((options as KeyOptions).bindToBoot !== undefined && (options as KeyOptions).bindToBoot !== false) {
    throw new TypeError(
      "RedisSessionStore does not take options.bindToBoot: a key bound to one machine's boot cannot be shared by several servers",
    )
  }
  return options
}

function checkPrefix(value: unknown): string {
  if (value === undefined) return 'sess:'
  if (typeof value !== 'string') throw new TypeError(`options.prefix must be a string, got ${describe(value)}`)
  if (Buffer.byteLength(value) > 256 || value.includes('\0')) {
    throw new RangeError(`options.prefix must be at most 256 bytes without NUL, got ${describe(value)}`)
  }
  return value
}
