// Sessions shared by many app servers through Redis. Each value is a version header and one
// sealed envelope (sealed and opened in memory by the native key ring), stored under
// `prefix + storageName(id)` with a PX expiry equal to the session's own expiry, so Redis does the
// sweeping. No session id ever reaches Redis in clear: the key holds its SHA-256, the value is
// ciphertext.
//
// The client is the user's own node-redis v5 or ioredis client, reached through one adapter
// (redis-client.ts). Every command names one key, so the store works unchanged on a single
// server, behind Sentinel and on Redis Cluster.
import { toSessionError } from './errors'
import { isPlainObject } from './json'
import type { KeyOptions } from './keys'
import { linkRedis, type RedisArg, type RedisLink } from './redis-client'
import { CommandDeadlines } from './redis-deadlines'
import { notReady } from './redis-errors'
import { HEADER_BYTES, parseValue, versionHeader } from './redis-value'
import { SealedStore, type Found, type SealedStoreOptions } from './sealed-store'
import type { Session, SessionRecord } from './session'
import { makeDump, type SessionDump } from './store'
import { checkTtl, describe } from './validate'

/** A node-redis v5 client or cluster (`createClient()`, `createCluster()` from 'redis'). */
export interface NodeRedisClientLike {
  sendCommand(...args: any[]): Promise<unknown> // eslint-disable-line @typescript-eslint/no-explicit-any
  withTypeMapping(...args: any[]): unknown // eslint-disable-line @typescript-eslint/no-explicit-any
}
/** An ioredis client or cluster (`new Redis()`, `new Redis.Cluster()`, Sentinel through Redis options). */
export interface IoRedisClientLike {
  readonly status: string
  call(...args: any[]): Promise<unknown> // eslint-disable-line @typescript-eslint/no-explicit-any
  callBuffer(...args: any[]): Promise<unknown> // eslint-disable-line @typescript-eslint/no-explicit-any
}
/** The clients RedisSessionStore accepts; nothing is imported from either package. */
export type RedisClientLike = NodeRedisClientLike | IoRedisClientLike

export interface RedisSessionStoreOptions extends Omit<SealedStoreOptions, 'bindToBoot'> {
  /**
   * A node-redis v5 or ioredis client you created and connected; it stays yours (close() leaves
   * it open). Give it an 'error' listener (`client.on('error', ...)`): without one, a lost
   * connection makes the client emit an unhandled 'error' event, which ends the process.
   */
  client: RedisClientLike
  /** Required (this or `secrets`): every app server must derive the same key, so a machine-bound key is refused. */
  secret?: KeyOptions['secret']
  /** Prepended to every key (default 'sess:'). */
  prefix?: string
  /** A command not answered within this many ms rejects with SessionStoreUnavailableError (default 2000). */
  commandTimeout?: number
}

const STORAGE_NAME = /^[0-9a-f]{64}$/
const SCAN_COUNT = 500
// Clients pipeline concurrent commands on one connection: this many in flight at once.
const BATCH = 100
const WRONG_TYPE = /^WRONGTYPE /

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
  readonly #link: RedisLink
  readonly #deadlines: CommandDeadlines
  // GETRANGE's inclusive end: the header and maxBytes + 1 bytes of envelope at most.
  readonly #readEnd: string

  constructor(options: RedisSessionStoreOptions) {
    const link = linkRedis(checkKeyOptions(options).client)
    super({ ...options, bindToBoot: false })
    this.#link = link
    this.prefix = checkPrefix(options.prefix)
    this.commandTimeout = options.commandTimeout === undefined ? 2_000 : checkTtl('options.commandTimeout', options.commandTimeout)
    this.#deadlines = new CommandDeadlines(this.commandTimeout)
    this.#readEnd = String(HEADER_BYTES + this.maxBytes)
    if (!link.hasErrorListener()) {
      this.logger.warn("the Redis client has no 'error' listener: a lost connection will end the process; add client.on('error', ...)")
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

  /** SET with PX until the session's expiry; `existingOnly` adds XX, so a touch or re-seal
   *  cannot bring back a session another server deleted meanwhile (logout). */
  protected async writeSession(session: Session, existingOnly: boolean): Promise<void> {
    const { name, context, json } = this.sealable(session)
    const expiresAt = session.expiresAt()
    let envelope: Buffer
    try {
      envelope = this.ring().seal(json, context, session.meta.createdAt, expiresAt)
    } catch (err) {
      throw toSessionError(err)
    }
    const ttl = expiresAt - Date.now()
    if (ttl <= 0) {
      await this.removeName(name)
      return
    }
    const value = Buffer.concat([Buffer.from(versionHeader(1), 'latin1'), envelope])
    const args: RedisArg[] = ['SET', this.prefix + name, value, 'PX', String(ttl)]
    if (existingOnly) args.push('XX')
    await this.#send('SET', args, false)
  }

  protected async readName(name: string): Promise<Found | null> {
    const ring = this.ring()
    const key = this.prefix + name
    let value: unknown
    try {
      value = await this.#send('GETRANGE', ['GETRANGE', key, '0', this.#readEnd], true)
    } catch (err) {
      // A list, hash, ... under a session's key (a shared or hostile Redis): not a session.
      if (err instanceof Error && WRONG_TYPE.test(err.message)) return this.#notOurs('holds a value that is not a string')
      throw err
    }
    if (!Buffer.isBuffer(value)) {
      if (value === null || value === undefined || value === '') return null
      throw new TypeError(`Redis GETRANGE returned ${describe(value)}, not a Buffer`)
    }
    if (value.length === 0) return null // GETRANGE of a missing key
    // GETRANGE stopped at header + maxBytes + 1: anything that long is over the cap.
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

  protected async removeName(name: string): Promise<boolean> {
    const removed = await this.#send('DEL', ['DEL', this.prefix + name], false)
    return Number(removed) > 0
  }

  #notOurs(why: string): null {
    this.logger.warn(`a session key ${why}: read as no session`)
    return null
  }

  /** One command on args[1]'s slot, refused at once while the client is not ready. */
  #send(what: string, args: RedisArg[], binary: boolean): Promise<unknown> {
    if (!this.#link.ready()) return Promise.reject(notReady(what))
    let reply: Promise<unknown>
    try {
      reply = this.#link.send(args[1] as string, args, binary)
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
