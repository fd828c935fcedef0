// One sealed envelope per session in a private directory. A session's file name is its
// storage name (hex SHA-256 of the id): never the id itself, so no path traversal and no id
// in a directory listing. Each read and each write is one native call; expiry sweeps read
// only the 40-byte headers.
import { SessionClosedError, UNREADABLE_CODES, toSessionError } from './errors'
import { generateSessionId, isValidSessionId, storageName } from './ids'
import { isPlainObject } from './json'
import { assertFits, checkMaxBytes } from './limits'
import { makeKeyRing, type KeyOptions } from './keys'
import { checkLogger, type Logger } from './logger'
import {
  native,
  OPEN_AS_STRING,
  OPEN_REMOVE_EXPIRED,
  type NativeKeyRing,
  type NativePrivateDir,
  type OpenFileResult,
} from './native'
import { Session, type SessionRecord } from './session'
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
import { checkNamespace } from './namespace'
import { checkNonNegativeMs, describe } from './validate'

export interface FileSessionStoreOptions extends StoreTimingOptions, KeyOptions {
  /** The private directory (created 0700 if missing; refused if unsafe). */
  dir: string
  /** Part of the key derivation and of each envelope's context (default 'default'). */
  namespace?: string
  /** Size cap of one envelope in bytes (default 1 MiB): bigger sessions are refused on save. */
  maxBytes?: number
  /** How often expired files are swept, in ms (default 5 min; 0 disables). */
  sweepInterval?: number
  logger?: Logger
}

const STORAGE_NAME = /^[0-9a-f]{64}$/
const READ_FLAGS = OPEN_REMOVE_EXPIRED | OPEN_AS_STRING
// libuv's pool has 4 threads by default; keep some free for reads while a restore runs.
const RESTORE_CONCURRENCY = 3

export class FileSessionStore implements SessionStore {
  readonly dir: string
  readonly namespace: string
  readonly maxBytes: number
  readonly #timing: StoreTiming
  readonly #logger: Logger
  #ring: NativeKeyRing | null
  #files: NativePrivateDir | null
  #timer: NodeJS.Timeout | null = null

  constructor(options: FileSessionStoreOptions) {
    if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
    if (typeof options.dir !== 'string' || options.dir === '' || options.dir.includes('\0')) {
      throw new TypeError(`options.dir must be a non-empty path string, got ${describe(options.dir)}`)
    }
    this.namespace = checkNamespace(options.namespace)
    this.#timing = resolveTiming(options)
    this.maxBytes = checkMaxBytes(options.maxBytes)
    const sweepInterval =
      options.sweepInterval === undefined ? 5 * 60_000 : checkNonNegativeMs('options.sweepInterval', options.sweepInterval)
    this.#logger = checkLogger(options.logger)
    this.#ring = makeKeyRing('store', this.namespace, options)
    try {
      this.#files = new native.PrivateDir(options.dir, true)
    } catch (err) {
      this.#ring.close()
      throw toSessionError(err)
    }
    this.dir = this.#files.path
    if (sweepInterval > 0) {
      this.#timer = setInterval(() => {
        this.purgeExpired().catch((err: unknown) => this.#logger.warn('session sweep failed', { reason: String(err) }))
      }, sweepInterval)
      this.#timer.unref()
    }
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

  async create(auth?: Readonly<Record<string, unknown>> | null, options?: CreateOptions): Promise<Session> {
    this.#open()
    const args = checkCreateArgs(auth, options, this.#timing.defaultTtl)
    const session = new Session(generateSessionId(), args.auth, args.ttl, { maxAge: this.#timing.maxAge })
    await this.#write(session)
    return session
  }

  async get(id: string): Promise<Session | null> {
    this.#open()
    if (!isValidSessionId(id)) return null
    const name = storageName(id)
    const now = Date.now()
    const found = await this.#read(name, now, READ_FLAGS)
    if (found === null) return null
    const session = found.session
    if (session.id !== id || session.isExpired(now)) {
      if (session.id === id) await this.#remove(name)
      return null
    }
    // Rewrite only when lastAccess is stale (or the key rotated): read-mostly traffic stays reads.
    const stale = now - session.meta.lastAccess > this.#timing.touchAfter
    session.touch(now)
    if (stale || found.keyIndex > 0) await this.#write(session)
    return session
  }

  async save(session: Session): Promise<void> {
    this.#open()
    checkSession(session)
    if (session.isExpired()) await this.#remove(storageName(session.id))
    else await this.#write(session)
    session.clearDirty()
  }

  async delete(id: string): Promise<boolean> {
    this.#open()
    if (!isValidSessionId(id)) return false
    return this.#remove(storageName(id))
  }

  async dump(): Promise<SessionDump> {
    const files = this.#open()
    const names = (await this.#call(() => files.list())).filter((n) => STORAGE_NAME.test(n))
    const now = Date.now()
    const records: SessionRecord[] = []
    for (const name of names) {
      let found: { session: Session; keyIndex: number } | null
      try {
        found = await this.#read(name, now, OPEN_AS_STRING)
      } catch (err) {
        // One planted file (a symlink, another user's) must not hide every other session, as
        // the sweep also passes it by; get() on that id still refuses it loudly.
        if ((err as { code?: string }).code !== 'ERR_SESSION_UNSAFE_PATH') throw err
        this.#logger.warn('unsafe file left out of the dump', { name })
        continue
      }
      if (found && !found.session.isExpired(now)) records.push(found.session.toJSON())
    }
    return makeDump(records)
  }

  async restore(dump: SessionDump): Promise<number> {
    this.#open()
    const sessions = parseDump(dump)
    const now = Date.now()
    const live = sessions.filter((s) => !s.isExpired(now))
    // A few writes in flight at once: each waits on its own fsync, on the thread pool.
    let next = 0
    const worker = async () => {
      while (next < live.length) await this.#write(live[next++])
    }
    await Promise.all(Array.from({ length: Math.min(RESTORE_CONCURRENCY, live.length) }, worker))
    return live.length
  }

  /** Removes expired envelopes by their headers alone (nothing is decrypted). */
  async purgeExpired(): Promise<number> {
    const files = this.#open()
    const result = await this.#call(() => files.sweep(Date.now()))
    if (result.removed > 0) this.#logger.debug('expired sessions swept', { removed: result.removed })
    return result.removed
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#ring?.close()
    this.#files?.close()
    this.#ring = null
    this.#files = null
  }

  #context(name: string): string {
    return `store:${this.namespace}:${name}`
  }

  async #write(session: Session): Promise<void> {
    const files = this.#open()
    const ring = this.#ring as NativeKeyRing
    const json = JSON.stringify(session)
    assertFits(json, this.maxBytes, `session ${session.id.slice(0, 6)}…`)
    const name = storageName(session.id)
    await this.#call(() =>
      files.sealToFile(ring, name, json, this.#context(name), session.meta.createdAt, session.expiresAt()),
    )
  }

  // The session in a file, or null when missing, expired or unreadable (wrong key, tampered,
  // renamed from another session's name): all of which mean "no session" to a caller.
  async #read(name: string, now: number, flags: number): Promise<{ session: Session; keyIndex: number } | null> {
    const files = this.#open()
    const ring = this.#ring as NativeKeyRing
    let found: OpenFileResult
    try {
      found = await files.openFile(ring, name, this.#context(name), this.maxBytes, now, flags)
    } catch (err) {
      const e = toSessionError(err) as Error & { code?: string }
      if (e.code !== undefined && UNREADABLE_CODES.has(e.code)) {
        this.#logger.warn('session file could not be opened', { code: e.code })
        return null
      }
      throw e
    }
    if (found === null || 'expired' in found) return null
    try {
      return { session: Session.fromJSON(JSON.parse(found.plaintext as string)), keyIndex: found.keyIndex }
    } catch {
      this.#logger.warn('session file holds no valid record')
      return null
    }
  }

  async #remove(name: string): Promise<boolean> {
    const files = this.#open()
    return this.#call(() => files.remove(name))
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw toSessionError(err)
    }
  }

  #open(): NativePrivateDir {
    if (this.#files === null) throw new SessionClosedError('FileSessionStore is closed', 'ERR_SESSION_CLOSED')
    return this.#files
  }
}
