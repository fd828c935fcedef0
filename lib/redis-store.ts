// Sessions shared by many app servers through Redis. Each value is one sealed envelope (sealed
// and opened in memory by the native key ring), stored under `prefix + storageName(id)` with a PX
// expiry equal to the session's own expiry, so Redis does the sweeping. No session id ever
// reaches Redis in clear: the key holds its SHA-256, the value is ciphertext.
//
// The client is the user's own node-redis client (v5; v4 is handled where the APIs differ), typed
// structurally so that `redis` stays an optional peer. Every command is a single-key command
// (GET, SET, DEL) or SCAN, so the store works unchanged on Redis Cluster.
import { SessionStoreUnavailableError, toSessionError } from './errors'
import { withFileMutex } from './file-mutex'
import { isPlainObject } from './json'
import type { KeyOptions } from './keys'
import {
  recordIdentity,
  type IndexEntry,
  type RecordWrite,
  type Removed,
  type StoredRecord,
  type WriteCondition,
  type WriteOutcome,
} from './base-store'
import { SealedStore, type SealedStoreOptions } from './sealed-store'
import type { SessionRecord } from './session'
import { makeDump, type SessionDump } from './store'
import { checkTtl, describe } from './validate'

/**
 * The part of a node-redis client (v4 or v5, single node or cluster) this store uses. A client
 * from `createClient()` / `createCluster()` fits as is; nothing is imported from `redis`.
 */
export interface RedisClientLike {
  /** node-redis: true once connected and ready; false while (re)connecting or closed. */
  readonly isReady?: boolean
  /** Cluster clients of node-redis v5 have only isOpen. */
  readonly isOpen?: boolean
  get(key: string): Promise<unknown>
  set(key: string, value: Buffer, options: Record<string, unknown>): Promise<unknown>
  del(key: string): Promise<unknown>
  scan(cursor: string, options: { MATCH: string; COUNT: number }): Promise<unknown>
  /** node-redis v5: a view of the client whose GET replies are Buffers. */
  withTypeMapping?(mapping: Record<number, unknown>): { get(key: string): Promise<unknown> }
  /** node-redis v4: command options (`returnBuffers`) passed as a command's first argument. */
  commandOptions?(options: { returnBuffers: boolean }): unknown
  listenerCount?(event: string): number
  /** Cluster clients: the masters, and a connected client for one of them (SCAN runs per master). */
  readonly masters?: readonly unknown[]
  getMasters?(): readonly unknown[]
  nodeClient?(node: unknown): Promise<unknown> | unknown
}

export interface RedisSessionStoreOptions extends Omit<SealedStoreOptions, 'bindToBoot'> {
  /**
   * A node-redis client you created and connected; it stays yours (close() leaves it open). Give
   * it an 'error' listener (`client.on('error', ...)`): without one, a lost connection makes the
   * client emit an unhandled 'error' event, which ends the process.
   */
  client: RedisClientLike
  /** Required (this or `secrets`): every app server must derive the same key, so a machine-bound key is refused. */
  secret?: KeyOptions['secret']
  /** Prepended to every key (default 'sess:'). */
  prefix?: string
  /** A command not answered within this many ms rejects with SessionStoreUnavailableError (default 2000). */
  commandTimeout?: number
}

const UNAVAILABLE = 'ERR_SESSION_STORE_UNAVAILABLE'
const STORAGE_NAME = /^[0-9a-f]{64}$/
const SCAN_COUNT = 500
// node-redis pipelines concurrent commands on one connection: this many in flight at once.
const BATCH = 100
// RESP3 type byte of a bulk string ('$'), node-redis v5's RESP_TYPES.BLOB_STRING.
const RESP_BLOB_STRING = 36

// Errors of node-redis (by class name: v4's classes do not set `name`) and of the socket that mean
// "the server cannot be reached right now", plus server replies meaning "not serving yet".
const CONNECTION_ERRORS = new Set([
  'AbortError',
  'ClientClosedError',
  'ClientOfflineError',
  'ConnectionTimeoutError',
  'DisconnectsClientError',
  'ReconnectStrategyError',
  'RootNodesUnavailableError',
  'SocketClosedUnexpectedlyError',
  'SocketTimeoutError',
  'TimeoutError',
  'SocketTimeoutDuringMaintenanceError',
  'CommandTimeoutDuringMaintenanceError',
])
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
])
const UNAVAILABLE_REPLY = /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY) /

/**
 * Encrypted sessions in Redis, shared by every app server that has the same `secret`.
 *
 * - `purgeExpired()` returns 0: each key carries a PX expiry, so Redis removes expired sessions
 *   itself. A read-only `get` within `touchAfter` does not rewrite the key, so Redis may drop a
 *   session up to `touchAfter` ms before its in-memory lastAccess says (as with the file store).
 * - While Redis is unreachable, calls reject at once (client not ready) or after `commandTimeout`
 *   with SessionStoreUnavailableError instead of waiting in the client's offline queue; they work
 *   again as soon as the client has reconnected.
 * - Redis Cluster: only single-key commands are used. `dump()` runs SCAN on every master (SCAN
 *   only sees the keys of the node it is sent to).
 */
export class RedisSessionStore extends SealedStore {
  readonly prefix: string
  readonly commandTimeout: number
  // node-redis pipelines concurrent commands on one connection.
  protected override get restoreConcurrency(): number {
    return BATCH
  }
  readonly #client: RedisClientLike
  readonly #getBuffer: (key: string) => Promise<unknown>
  readonly #v5: boolean

  constructor(options: RedisSessionStoreOptions) {
    const { client, getBuffer, v5 } = checkClient(checkKeyOptions(options))
    super({ ...options, bindToBoot: false })
    this.#client = client
    this.#getBuffer = getBuffer
    this.#v5 = v5
    this.prefix = checkPrefix(options.prefix)
    this.commandTimeout = options.commandTimeout === undefined ? 2_000 : checkTtl('options.commandTimeout', options.commandTimeout)
    if (typeof client.listenerCount === 'function' && client.listenerCount('error') === 0) {
      this.logger.warn("the Redis client has no 'error' listener: a lost connection will end the process; add client.on('error', ...)")
    }
  }

  async dump(): Promise<SessionDump> {
    this.ring()
    const now = Date.now()
    const records: SessionRecord[] = []
    // On a cluster, SCAN sees only the node it is sent to: scan each master, then GET through
    // the cluster client, which routes each key to its slot's master.
    for (const scanner of await this.#scanners()) {
      let cursor = '0'
      do {
        const reply = await this.#command('SCAN', () => scanner.scan(cursor, { MATCH: `${globEscape(this.prefix)}*`, COUNT: SCAN_COUNT }))
        const { next, keys } = parseScanReply(reply)
        cursor = next
        const names = keys
          .filter((k) => k.startsWith(this.prefix))
          .map((k) => k.slice(this.prefix.length))
          .filter((n) => STORAGE_NAME.test(n))
        for (let i = 0; i < names.length; i += BATCH) {
          const found = await Promise.all(names.slice(i, i + BATCH).map((n) => this.readName(n)))
          for (const f of found) if (f && !f.session.isExpired(now)) records.push(f.session.toJSON())
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

  #key(name: string): string {
    return this.prefix + name
  }

  // PLACEHOLDER until i14-redis lands its Lua scripts: these primitives keep the contract's
  // semantics within one process (one queue per key) but are NOT atomic across servers
  // (GET, then SET/DEL).

  protected async readRecord(name: string): Promise<StoredRecord | null> {
    return this.readName(name)
  }

  protected async writeRecord(write: RecordWrite, condition: WriteCondition): Promise<WriteOutcome> {
    return withFileMutex(`redis\0${this.prefix}${write.name}`, () => this.#writeRecord(write, condition))
  }

  async #writeRecord(write: RecordWrite, condition: WriteCondition): Promise<WriteOutcome> {
    if (condition.kind !== 'any') {
      const current = await this.readName(write.name)
      if (condition.kind === 'absent' && current !== null) return 'exists'
      if (condition.kind === 'version') {
        if (current === null) return 'missing'
        if (current.version !== condition.version) return 'conflict'
      }
    }
    await this.#set(write.name, JSON.stringify(write.record), write.createdAt, write.expiresAt)
    return 'written'
  }

  protected async removeRecord(name: string, ifVersion?: number): Promise<Removed> {
    return withFileMutex(`redis\0${this.prefix}${name}`, () => this.#removeRecord(name, ifVersion))
  }

  async #removeRecord(name: string, ifVersion?: number): Promise<Removed> {
    const found = await this.readName(name)
    if (ifVersion !== undefined && found?.version !== ifVersion) return { removed: false, identity: null }
    const removed = await this.removeName(name)
    return { removed, identity: removed && found !== null ? recordIdentity(found.session.toJSON()) : null }
  }

  protected async indexAdd(index: string, entry: IndexEntry): Promise<void> {
    return withFileMutex(`redis\0${this.prefix}idx:${index}`, () => this.#indexAdd(index, entry))
  }

  async #indexAdd(index: string, entry: IndexEntry): Promise<void> {
    const entries = await this.#readIndex(index)
    entries[entry.name] = entry.expiresAt
    await this.#writeIndex(index, entries)
  }

  protected async indexRemove(index: string, names: readonly string[]): Promise<void> {
    return withFileMutex(`redis\0${this.prefix}idx:${index}`, () => this.#indexRemove(index, names))
  }

  async #indexRemove(index: string, names: readonly string[]): Promise<void> {
    const entries = await this.#readIndex(index)
    for (const name of names) delete entries[name]
    await this.#writeIndex(index, entries)
  }

  protected async indexList(index: string): Promise<IndexEntry[]> {
    return Object.entries(await this.#readIndex(index)).map(([name, expiresAt]) => ({ name, expiresAt }))
  }

  async #readIndex(index: string): Promise<Record<string, number>> {
    const key = `idx:${index}`
    const value = await this.#command('GET', () => this.#getBuffer(this.#key(key)))
    const entries = Object.create(null) as Record<string, number>
    if (!Buffer.isBuffer(value)) return entries
    try {
      const opened = this.ring().open(value, this.context(key), this.maxBytes, true)
      Object.assign(entries, JSON.parse(opened.plaintext as string).entries)
    } catch (err) {
      if (err instanceof SyntaxError) return entries
      this.unreadable(err)
    }
    return entries
  }

  async #writeIndex(index: string, entries: Record<string, number>): Promise<void> {
    const key = `idx:${index}`
    const now = Date.now()
    const live = Object.values(entries).filter((e) => e > now)
    if (live.length === 0) {
      await this.removeName(key)
      return
    }
    // Lives as long as its latest entry's hint plus a day: touches move sessions' expiry later.
    await this.#set(key, JSON.stringify({ entries }), now, Math.max(...live) + 86_400_000)
  }

  /** SET with PX until `expiresAt` (an already expired record is deleted instead). */
  async #set(name: string, json: string, createdAt: number, expiresAt: number): Promise<void> {
    let envelope: Buffer
    try {
      envelope = this.ring().seal(json, this.context(name), createdAt, expiresAt)
    } catch (err) {
      throw toSessionError(err)
    }
    const ttl = expiresAt - Date.now()
    if (ttl <= 0) {
      await this.removeName(name)
      return
    }
    const options: Record<string, unknown> = this.#v5 ? { expiration: { type: 'PX', value: ttl } } : { PX: ttl }
    const client = this.#client
    await this.#command('SET', () => client.set(this.#key(name), envelope, options))
  }

  protected async readName(name: string): Promise<StoredRecord | null> {
    const ring = this.ring()
    const value = await this.#command('GET', () => this.#getBuffer(this.#key(name)))
    if (value === null || value === undefined) return null
    if (!Buffer.isBuffer(value)) {
      throw new TypeError(`Redis GET returned ${describe(value)}, not a Buffer: the client must be a node-redis v4 or v5 client`)
    }
    let opened: { plaintext: Buffer | string; keyIndex: number }
    try {
      opened = ring.open(value, this.context(name), this.maxBytes, true)
    } catch (err) {
      return this.unreadable(err)
    }
    return this.decode(opened.plaintext as string, opened.keyIndex)
  }

  protected async removeName(name: string): Promise<boolean> {
    const client = this.#client
    const removed = await this.#command('DEL', () => client.del(this.#key(name)))
    return Number(removed) > 0
  }

  /** The clients to run SCAN on: each master of a cluster, else the client itself. */
  async #scanners(): Promise<Array<Pick<RedisClientLike, 'scan'>>> {
    const c = this.#client
    const masters = Array.isArray(c.masters) ? c.masters : typeof c.getMasters === 'function' ? c.getMasters() : null
    if (masters === null || typeof c.nodeClient !== 'function') return [c]
    const nodeClient = c.nodeClient.bind(c)
    return Promise.all(
      masters.map((m) => this.#command('SCAN', async () => (await nodeClient(m)) as Pick<RedisClientLike, 'scan'>)),
    )
  }

  /**
   * One Redis command, failing fast: not sent at all while the client is not ready (it would wait
   * in the offline queue), and given up after commandTimeout. Connection errors become
   * SessionStoreUnavailableError; anything else (a server error reply) passes through.
   */
  async #command<T>(what: string, send: () => Promise<T>): Promise<T> {
    const c = this.#client
    const ready = typeof c.isReady === 'boolean' ? c.isReady : c.isOpen !== false
    if (!ready) throw new SessionStoreUnavailableError(`Redis is not reachable (client not ready): ${what} not sent`, UNAVAILABLE)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new SessionStoreUnavailableError(`Redis did not answer ${what} within ${this.commandTimeout} ms`, UNAVAILABLE)),
        this.commandTimeout,
      )
      timer.unref()
    })
    try {
      const reply = Promise.resolve().then(send)
      reply.catch(() => {}) // when the timeout wins, a late rejection must not go unhandled
      return await Promise.race([reply, timeout])
    } catch (err) {
      throw unavailable(err, what)
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Checked before any key is derived: a machine-bound or boot-bound key cannot be shared. */
function checkKeyOptions(options: RedisSessionStoreOptions): RedisSessionStoreOptions {
  if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
  if (options.secret === undefined && options.secrets === undefined) {
    throw new TypeError(
      'RedisSessionStore refuses a machine-bound key: every server sharing this Redis must derive the same key, so pass options.secret (or options.secrets to rotate)',
    )
  }
  if ((options as KeyOptions).bindToBoot !== undefined && (options as KeyOptions).bindToBoot !== false) {
    throw new TypeError("RedisSessionStore does not take options.bindToBoot: a key bound to one machine's boot cannot be shared by several servers")
  }
  return options
}

/** The client, and how to GET a binary value through it (v5: a type-mapped view; v4: commandOptions). */
function checkClient(options: RedisSessionStoreOptions): { client: RedisClientLike; getBuffer: (key: string) => Promise<unknown>; v5: boolean } {
  const client = options.client as unknown as RedisClientLike
  if (typeof client !== 'object' || client === null || !['get', 'set', 'del', 'scan'].every((m) => typeof (client as unknown as Record<string, unknown>)[m] === 'function')) {
    throw new TypeError(`options.client must be a node-redis client (createClient() from 'redis'), got ${describe(client)}`)
  }
  if (typeof client.withTypeMapping === 'function') {
    // v5: a view of the same client (same connection) whose bulk-string replies are Buffers.
    const binary = client.withTypeMapping({ [RESP_BLOB_STRING]: Buffer })
    return { client, getBuffer: (key) => binary.get(key), v5: true }
  }
  if (typeof client.commandOptions === 'function') {
    const returnBuffers = client.commandOptions({ returnBuffers: true })
    const get = client.get as unknown as (opts: unknown, key: string) => Promise<unknown>
    return { client, getBuffer: (key) => get.call(client, returnBuffers, key), v5: false }
  }
  throw new TypeError('options.client must be a node-redis v4 or v5 client: it has neither withTypeMapping (v5) nor commandOptions (v4)')
}

/** A connection-level error as SessionStoreUnavailableError (cause kept); others unchanged. */
function unavailable(err: unknown, what: string): unknown {
  if (err instanceof SessionStoreUnavailableError || !(err instanceof Error)) return err
  const e = err as Error & { code?: unknown }
  const className = (e.constructor as { name?: unknown } | undefined)?.name
  if (
    CONNECTION_ERRORS.has(e.name) ||
    (typeof className === 'string' && CONNECTION_ERRORS.has(className)) ||
    (typeof e.code === 'string' && SOCKET_CODES.has(e.code)) ||
    UNAVAILABLE_REPLY.test(e.message)
  ) {
    return new SessionStoreUnavailableError(`Redis is not reachable: ${what} failed (${e.message})`, UNAVAILABLE, { cause: err })
  }
  return err
}

/** node-redis v5 replies `{ cursor: string, keys }`, v4 `{ cursor: number, keys }`. */
function parseScanReply(reply: unknown): { next: string; keys: string[] } {
  const r = reply as { cursor?: unknown; keys?: unknown } | null
  if (typeof r !== 'object' || r === null || !Array.isArray(r.keys) || (typeof r.cursor !== 'string' && typeof r.cursor !== 'number')) {
    throw new TypeError(`unexpected SCAN reply from the Redis client: ${describe(reply)}`)
  }
  return { next: String(r.cursor), keys: r.keys.map((k: unknown) => (Buffer.isBuffer(k) ? k.toString('utf8') : String(k))) }
}

/** A literal string inside a SCAN MATCH pattern. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}

function checkPrefix(value: unknown): string {
  if (value === undefined) return 'sess:'
  if (typeof value !== 'string') throw new TypeError(`options.prefix must be a string, got ${describe(value)}`)
  if (Buffer.byteLength(value) > 256 || value.includes('\0')) {
    throw new RangeError(`options.prefix must be at most 256 bytes without NUL, got ${describe(value)}`)
  }
  return value
}
