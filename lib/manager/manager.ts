// SessionManager: one persisted login per app and OS user (desktop and CLI apps).
// The record is sealed (AES-256-GCM, machine-bound key or a secret) into
// <dir>/session.enc, written atomically 0600 in a private 0700 directory. Expiry is read
// natively from the authenticated header before anything is decrypted.
import * as fs from 'node:fs'
import * as path from 'node:path'

import { defaultSessionDir, squattedDefault } from './default-dir'
import {
  mapNative,
  SessionClosedError,
  SessionLockTimeoutError,
  UNREADABLE_CODES,
  toSessionError,
} from '../core/errors'
import { assertFits, checkMaxBytes } from '../core/limits'
import { withDirLock, withDirLockWithin } from '../core/file-mutex'
import { weakInterval } from '../core/weak-timer'
import { copyJson, isPlainObject, type JsonObject } from '../core/json'
import {
  checkBindToBoot,
  checkKeySource,
  makeKeyRing,
  secretsFrom,
  type KeyOptions,
  type KeySource,
} from '../core/keys'
import { checkLogger, type Logger } from '../core/logger'
import {
  native,
  OPEN_REMOVE_EXPIRED,
  OPEN_REMOVE_INVALID,
  OPEN_AS_STRING,
  OPEN_LOCK_HELD,
  type NativeKeyRing,
  type NativePrivateDir,
  type OpenFileResult,
} from '../core/native'
import { SessionData } from './session-data'
import {
  ACCOUNTS_FILE,
  accountsContext,
  infoOf,
  liveAccounts,
  parseAccounts,
  serializeAccounts,
  type AccountInfo,
  type StoredAccount,
} from './accounts'
import { checkDirPath, checkOptionKeys, checkTtl, describe, laterBy } from '../core/validate'
import { applyUpdate, checkUpdateOptions, type SessionUpdate, type UpdateOptions } from './update'

export type { SessionUpdate, UpdateOptions } from './update'

function checkUserId(userId: unknown, name: string): asserts userId is string {
  if (typeof userId !== 'string' || userId === '') {
    throw new TypeError(`${name} must be a non-empty string, got ${describe(userId)}`)
  }
}

const READ_FLAGS = OPEN_REMOVE_EXPIRED | OPEN_REMOVE_INVALID | OPEN_AS_STRING
const FILE_NAME = 'session.enc'

export interface SessionManagerOptions extends KeyOptions {
  /** Default session lifetime in ms (8 h). */
  ttl?: number
  /**
   * Directory for session.enc. Default: `$XDG_RUNTIME_DIR/<appName>` on Linux when that
   * directory is private to us, else `<os.tmpdir()>/.<appName>_session-<uid>` (Windows:
   * `<os.tmpdir()>/.<appName>_session`, the user's own temp directory).
   */
  dir?: string
  /** Size cap of session.enc in bytes (default 1 MiB): a bigger record is refused on login. */
  maxBytes?: number
  /**
   * Where the key comes from when no secret is given: 'machine' (the machine id, default) or
   * 'keychain' (a random seed kept in the OS secret store, combined with the machine id).
   */
  keySource?: KeySource
  /** How often expired sessions are removed, in ms (5 min); 0 disables the timer. */
  sweepInterval?: number
  /** @deprecated The old name of `sweepInterval`. */
  cleanupInterval?: number
  logger?: Logger
  /**
   * getSessionSync (and isLoggedInSync) reuse the last record read while neither session.enc
   * nor its directory has changed: same inode, size, mode, owner, link count, mtime and ctime.
   * Any write, rename, removal, chmod or chown misses; expiry is checked on every call.
   * Default false.
   */
  readCache?: boolean
  /**
   * Keep several logins: `login` adds (or replaces) that user's login and makes it active, the
   * others stay; `accounts()`, `switchAccount()`, `logout(userId)`, `logoutAll()`. Every other
   * method acts on the active account. Default false: a login replaces any other.
   */
  accounts?: boolean
}

// A validated read: what getSessionSync returned, and the state of the file and directory
// (taken before that read) it stays valid for.
interface CachedRead {
  session: SessionData
  expiresAt: number
  file: fs.Stats
  dir: fs.Stats
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null
  } catch {
    return null
  }
}

function sameStat(a: fs.Stats, b: fs.Stats): boolean {
  return (
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.size === b.size &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.nlink === b.nlink &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs
  )
}

// An authentic file (our key and context) whose plaintext is not a session record: what a
// discard removes. Anything else (none, expired, unreadable, a valid record) is not.
function holdsNoRecord(found: OpenFileResult | Error): boolean {
  if (found === null || found instanceof Error || 'expired' in found) return false
  try {
    SessionData.fromParsed(JSON.parse(found.plaintext as string))
    return false
  } catch {
    return true
  }
}

export interface LoginOptions {
  userName?: string | null
  ttl?: number
  data?: Record<string, unknown>
}

// Never write what the reader would refuse (and then delete) as too large; the error names
// the option that raises the cap.
function checkFits(json: string, maxBytes: number): void {
  assertFits(json, maxBytes, 'session record', 'raise it with the SessionManager option maxBytes')
}

function checkAppName(appName: unknown): string {
  if (typeof appName !== 'string') throw new TypeError(`appName must be a string, got ${describe(appName)}`)
  // The name becomes a directory name and part of the key derivation: nothing that could
  // leave the directory or confuse either.
  if (appName === '' || appName === '.' || appName === '..' || /[/\\\0]/.test(appName) || appName.includes('..')) {
    throw new RangeError(`appName must be a plain name without '/', '\\', '..' or NUL, got ${describe(appName)}`)
  }
  if (Buffer.byteLength(appName) > 200) throw new RangeError('appName must be at most 200 bytes')
  return appName
}

// The option names SessionManager accepts (docs/api/manager.md describes each).
const MANAGER_KEYS = new Set([
  'ttl',
  'dir',
  'secret',
  'secrets',
  'bindToBoot',
  'sweepInterval',
  'cleanupInterval',
  'logger',
  'readCache',
  'maxBytes',
  'keySource',
  'accounts',
])

export class SessionManager implements AsyncDisposable {
  readonly appName: string
  readonly ttl: number
  readonly sessionDir: string
  readonly sessionFile: string
  readonly maxBytes: number
  readonly #context: string
  // Dropped once the key ring exists: the caller's secrets are not kept in JS after that.
  #keyOptions: KeyOptions | null
  readonly #cleanupInterval: number
  readonly #logger: Logger
  readonly #hasLogger: boolean
  readonly #defaultDir: boolean
  readonly #readCache: boolean
  readonly #accounts: boolean
  readonly #accountsContext: string
  #cached: CachedRead | null = null
  // The last record text read and what it decoded to: a read that finds the same authentic text
  // (its expiry checked by that read) returns the same frozen SessionData instead of parsing and
  // checking it again. Keyed by the text itself, so a write, logout or switch need not clear it.
  #parsed: { text: string; session: SessionData } | null = null
  #ring: NativeKeyRing | null = null
  #dir: NativePrivateDir | null = null
  #opening: Promise<NativePrivateDir> | null = null
  readonly #resealing = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | null = null
  #closed = false

  constructor(appName: string = 'sealed-session', options: SessionManagerOptions = {}) {
    this.appName = checkAppName(appName)
    if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
    checkOptionKeys(options, MANAGER_KEYS, 'SessionManager')
    this.ttl = options.ttl === undefined ? 8 * 3_600_000 : checkTtl('options.ttl', options.ttl)
    if (options.dir !== undefined) checkDirPath('options.dir', options.dir)
    this.#defaultDir = options.dir === undefined
    this.sessionDir = path.resolve(options.dir ?? defaultSessionDir(this.appName))
    this.maxBytes = checkMaxBytes(options.maxBytes)
    this.sessionFile = path.join(this.sessionDir, FILE_NAME)
    if (options.sweepInterval !== undefined && options.cleanupInterval !== undefined) {
      throw new TypeError('pass options.sweepInterval or options.cleanupInterval (its deprecated name), not both')
    }
    const sweepName = options.cleanupInterval !== undefined ? 'options.cleanupInterval' : 'options.sweepInterval'
    const sweepInterval = options.sweepInterval ?? options.cleanupInterval
    this.#cleanupInterval =
      sweepInterval === undefined || sweepInterval === 0
        ? (sweepInterval ?? 5 * 60_000)
        : checkTtl(sweepName, sweepInterval)
    this.#logger = checkLogger(options.logger)
    this.#hasLogger = options.logger !== undefined
    if (options.readCache !== undefined && typeof options.readCache !== 'boolean') {
      throw new TypeError(`options.readCache must be a boolean, got ${describe(options.readCache)}`)
    }
    this.#readCache = options.readCache ?? false
    if (options.accounts !== undefined && typeof options.accounts !== 'boolean') {
      throw new TypeError(`options.accounts must be a boolean, got ${describe(options.accounts)}`)
    }
    this.#accounts = options.accounts ?? false
    this.#keyOptions = {
      secret: options.secret,
      secrets: options.secrets,
      bindToBoot: options.bindToBoot,
      keySource: options.keySource,
    }
    // Check the key options now (the key itself is derived lazily, on first use).
    for (const copy of secretsFrom(this.#keyOptions)) copy.fill(0)
    checkBindToBoot(options.bindToBoot)
    checkKeySource(this.#keyOptions)
    this.#context = `manager:${this.appName}`
    this.#accountsContext = accountsContext(this.appName)
  }

  /** Opens the private directory and derives the key. Other calls do this lazily. */
  async init(): Promise<void> {
    await this.#readyAsync()
  }

  /** Stops the cleanup timer and wipes the key. The session file stays for the next start. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#cached = null
    this.#parsed = null
    this.#keyOptions = null
    if (this.#timer) clearInterval(this.#timer)
    await Promise.all(this.#resealing)
    this.#timer = null
    this.#ring?.close()
    this.#dir?.close()
    this.#ring = null
    this.#dir = null
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /**
   * Creates a session and makes it the active one. Without `accounts` it replaces any other;
   * with it, it replaces only this user's earlier login and the others stay.
   */
  async login(userId: string, eid: string, options: LoginOptions = {}): Promise<SessionData> {
    const record = this.#newRecord(userId, eid, options)
    // Refused before the lock: a too-large record never waits for another process.
    checkFits(JSON.stringify(record), this.maxBytes)
    const { dir, ring } = await this.#readyAsync()
    await this.#locked(dir, async () => {
      if (this.#accounts) await this.#lockedSide(dir, () => this.#setAsideFor(dir, ring, record.userId))
      await this.#write(dir, ring, record)
    })
    this.#logger.info('session created', { expiresAt: record.expiresAt }) // no eid: ids stay out of logs
    return record
  }

  // Login with accounts, both locks held: the active account (if another user's) joins the side
  // file before session.enc is replaced, so a crash in between loses no account.
  async #setAsideFor(dir: NativePrivateDir, ring: NativeKeyRing, userId: string): Promise<void> {
    const now = Date.now()
    const current = await this.#getSession(dir, ring, true)
    const side = await this.#readSide(dir, ring)
    const others = liveAccounts(side, now, userId)
    if (current !== null && current.userId !== userId) others.unshift({ lastActive: now, session: current })
    if (others.length !== side.length || others.some((a) => !side.includes(a))) {
      await this.#writeSide(dir, ring, others)
    }
  }

  /**
   * Ends a login; false when there was none. Without userId: the active one, and (with
   * `accounts`) the most recently active remaining account becomes active. With userId: that
   * user's login, active or not.
   */
  async logout(userId?: string): Promise<boolean> {
    if (userId !== undefined) checkUserId(userId, 'userId')
    const dir = await this.#dirAsync()
    this.#cached = null
    const removed = await this.#locked(dir, async () => {
      // Removing the only login needs no key (a CLI without a machine id can still log out).
      if (userId === undefined && !(this.#accounts && (await this.#hasSide(dir)))) {
        return mapNative(() => dir.remove(FILE_NAME))
      }
      const { ring } = this.#ready()
      if (this.#accounts) return this.#lockedSide(dir, () => this.#logoutAccount(dir, ring, userId))
      const current = await this.#getSession(dir, ring, true)
      return current !== null && current.userId === userId && (await mapNative(() => dir.remove(FILE_NAME)))
    })
    if (removed) this.#logger.info('session deleted (logout)')
    return removed
  }

  // Both locks held. session.enc is replaced by the next account in one rename (never removed
  // first), and that account leaves the side file only after: a crash loses no one.
  async #logoutAccount(dir: NativePrivateDir, ring: NativeKeyRing, userId: string | undefined): Promise<boolean> {
    const current = await this.#getSession(dir, ring, true)
    const side = await this.#readSide(dir, ring)
    const others = liveAccounts(side, Date.now(), current?.userId)
    if (userId !== undefined && current?.userId !== userId) {
      const rest = others.filter((a) => a.session.userId !== userId)
      if (rest.length === others.length) return false
      await this.#writeSide(dir, ring, rest)
      return true
    }
    if (current === null) return false
    const next = others[0]
    if (next === undefined) {
      await mapNative(() => dir.remove(FILE_NAME))
      if (side.length > 0) await this.#writeSide(dir, ring, [])
      return true
    }
    await this.#write(dir, ring, next.session)
    await this.#writeSide(dir, ring, others.slice(1))
    return true
  }

  /** Ends every login (the active one and, with `accounts`, all others); how many were live. */
  async logoutAll(): Promise<number> {
    const { dir, ring } = await this.#readyAsync()
    this.#cached = null
    const count = await this.#locked(dir, () =>
      this.#lockedSide(dir, async () => {
        const current = await this.#getSession(dir, ring, true)
        const others = liveAccounts(await this.#readSide(dir, ring), Date.now(), current?.userId)
        await mapNative(() => dir.remove(FILE_NAME))
        await mapNative(() => dir.remove(ACCOUNTS_FILE))
        return (current === null ? 0 : 1) + others.length
      }),
    )
    if (count > 0) this.#logger.info('sessions deleted (logout all)', { count })
    return count
  }

  /**
   * The logins kept: the active one first, then the others, most recently active first.
   * Without `accounts`, at most one. Waits for a running `update` (it reads under the lock).
   */
  async accounts(): Promise<AccountInfo[]> {
    const { dir, ring } = await this.#readyAsync()
    if (!this.#accounts) {
      const s = await this.#getSession(dir, ring, false)
      return s === null ? [] : [infoOf(s, true)]
    }
    return this.#locked(dir, () =>
      this.#lockedSide(dir, async () => {
        const current = await this.#getSession(dir, ring, true)
        const others = liveAccounts(await this.#readSide(dir, ring), Date.now(), current?.userId)
        return [...(current === null ? [] : [infoOf(current, true)]), ...others.map((a) => infoOf(a.session, false))]
      }),
    )
  }

  /** Makes userId's login the active one; false when there is no live login of that user. */
  async switchAccount(userId: string): Promise<boolean> {
    checkUserId(userId, 'userId')
    const { dir, ring } = await this.#readyAsync()
    this.#cached = null
    return this.#locked(dir, async () => {
      const current = await this.#getSession(dir, ring, true)
      if (current?.userId === userId) return true
      if (!this.#accounts) return false
      return this.#lockedSide(dir, async () => {
        const now = Date.now()
        const others = liveAccounts(await this.#readSide(dir, ring), now, current?.userId)
        const target = others.find((a) => a.session.userId === userId)
        if (target === undefined) return false
        const rest = others.filter((a) => a !== target)
        if (current !== null) {
          rest.unshift({ lastActive: now, session: current })
          // Both in the side file until session.enc holds the target: a crash loses no one.
          await this.#writeSide(dir, ring, [target, ...rest])
        }
        await this.#write(dir, ring, target.session)
        await this.#writeSide(dir, ring, rest)
        this.#logger.info('account switched')
        return true
      })
    })
  }

  /**
   * Read-modify-write of the active session under the cross-process lock: `fn(current)` runs
   * while no other process (or call) can change the session, and returns what to change (or
   * null for nothing). The write is atomic. A throw writes nothing and propagates. Logged out:
   * null, and fn is not called. Returns the session as it is afterwards.
   */
  async update(
    fn: (current: SessionData) => SessionUpdate | null | Promise<SessionUpdate | null>,
    options: UpdateOptions = {},
  ): Promise<SessionData | null> {
    if (typeof fn !== 'function') throw new TypeError(`fn must be a function, got ${describe(fn)}`)
    const timeout = checkUpdateOptions(options)
    const { dir, ring } = await this.#readyAsync()
    const run = async (): Promise<SessionData | null> => {
      const current = await this.#getSession(dir, ring, true)
      if (current === null) return null
      const change = await fn(current)
      if (change === null) return current
      const record = applyUpdate(current, change)
      // existingOnly: a reader that found it expired meanwhile removed it; that stands.
      const written = await this.#write(dir, ring, record, true)
      if (written) this.#logger.info('session updated', { expiresAt: record.expiresAt })
      return written ? record : null
    }
    if (timeout === undefined) return this.#locked(dir, run)
    return withDirLockWithin(
      dir,
      FILE_NAME,
      timeout,
      () =>
        new SessionLockTimeoutError(
          `update waited ${timeout} ms (options.timeout) for the session lock: another process or call held it`,
          'ERR_SESSION_LOCK_TIMEOUT',
        ),
      run,
    )
  }

  async getSession(): Promise<SessionData | null> {
    const { dir, ring } = await this.#readyAsync()
    return this.#getSession(dir, ring, false)
  }

  // held: the caller holds the cross-process lock (extendSession).
  async #getSession(dir: NativePrivateDir, ring: NativeKeyRing, held: boolean): Promise<SessionData | null> {
    let unusable = false
    const session = this.#interpret(await this.#read(dir, ring, held), () => {
      unusable = true
    })
    // Removed on the pool, and awaited: a login right after must not race the removal.
    if (unusable) await (held ? this.#discardHeld(dir, ring) : this.#locked(dir, () => this.#discardHeld(dir, ring)))
    return session
  }

  // A file judged to hold no valid record is removed under the lock, and only if it still holds
  // none: a login that landed after the judgement is kept.
  async #discardHeld(dir: NativePrivateDir, ring: NativeKeyRing): Promise<void> {
    if (holdsNoRecord(await this.#read(dir, ring, true))) await mapNative(() => dir.remove(FILE_NAME))
  }

  // The sync twin of the discard. The lock is taken only if free: the main thread must never
  // wait for it (an in-process holder may be waiting for the main thread). Busy means a writer
  // is at work, which replaces or removes the file itself.
  #discardSync(): void {
    const dir = this.#dir
    const ring = this.#ring
    if (dir === null || ring === null) return
    const lock = dir.tryLockSync(FILE_NAME)
    if (lock === null) return
    try {
      if (holdsNoRecord(this.#readSync(dir, ring, true))) dir.removeSync(FILE_NAME)
    } finally {
      lock.release()
    }
  }

  /** Sync twin of getSession for start-up paths: one native call, no thread hop. */
  getSessionSync(): SessionData | null {
    const { dir, ring } = this.#ready()
    if (!this.#readCache) return this.#interpret(this.#readSync(dir, ring))
    // Stats first: a change between them and the read makes the next call miss, never hit.
    const dirStat = lstatOrNull(this.sessionDir)
    const fileStat = dirStat && lstatOrNull(this.sessionFile)
    const c = this.#cached
    if (
      c !== null &&
      dirStat !== null &&
      fileStat !== null &&
      (c.expiresAt === 0 || c.expiresAt > Date.now()) &&
      sameStat(fileStat, c.file) &&
      sameStat(dirStat, c.dir)
    ) {
      return c.session
    }
    // Expired or changed: the uncached path removes, logs and re-reads exactly as without a cache.
    this.#cached = null
    const found = this.#readSync(dir, ring)
    const session = this.#interpret(found)
    if (
      session !== null &&
      dirStat &&
      fileStat &&
      found &&
      !(found instanceof Error) &&
      !('expired' in found) &&
      found.keyIndex === 0
    ) {
      this.#cached = { session, expiresAt: found.expiresAt, file: fileStat, dir: dirStat }
    }
    return session
  }

  async isLoggedIn(): Promise<boolean> {
    return (await this.getSession()) !== null
  }

  isLoggedInSync(): boolean {
    return this.getSessionSync() !== null
  }

  async getUserId(): Promise<string | null> {
    return (await this.getSession())?.userId ?? null
  }

  /**
   * Adds extraMs to the current expiry (not to now). login, logout and extendSession hold the
   * same cross-process lock, so concurrent extensions from several processes all count, an
   * extension never brings back a session logged out meanwhile and never overwrites a newer
   * login: it reads and rewrites whatever is current while no one else can change it.
   */
  async extendSession(extraMs: number): Promise<boolean> {
    checkTtl('extraMs', extraMs)
    const { dir, ring } = await this.#readyAsync()
    return this.#locked(dir, async () => {
      const current = await this.#getSession(dir, ring, true)
      if (current === null) return false
      const expiresAt = new Date(laterBy(current.expiresAtMs, extraMs, 'extraMs')).toISOString()
      // existingOnly: a reader that found it expired and removed it meanwhile (readers take no
      // lock) is not undone either.
      const written = await this.#write(dir, ring, new SessionData({ ...current.toJSON(), expiresAt }), true)
      if (written) this.#logger.info('session extended', { expiresAt })
      return written
    })
  }

  // The in-process queue first (one pool thread waits per file), then the flock on
  // session.enc.lock that other processes of this app take too. The queue is keyed by the
  // directory's device and inode: managers on two spellings of one directory share it.
  #locked<T>(dir: NativePrivateDir, fn: () => Promise<T>): Promise<T> {
    return withDirLock(dir, FILE_NAME, fn)
  }

  // The side file's own lock, always taken inside session.enc's: the sweep takes it (without
  // waiting) to remove an expired side file, so a write here never lands under its removal.
  #lockedSide<T>(dir: NativePrivateDir, fn: () => Promise<T>): Promise<T> {
    return withDirLock(dir, ACCOUNTS_FILE, fn)
  }

  async #hasSide(dir: NativePrivateDir): Promise<boolean> {
    try {
      return (await dir.peek(ACCOUNTS_FILE)) !== null
    } catch {
      return true // there, but not a header we can read: the keyed path decides
    }
  }

  // Both locks held. Unusable (tampered, foreign, not a list): removed with a warning, as
  // session.enc is. Entries come back as stored; liveAccounts drops expired ones.
  async #readSide(dir: NativePrivateDir, ring: NativeKeyRing): Promise<StoredAccount[]> {
    let found: OpenFileResult
    try {
      found = await dir.openFile(
        ring,
        ACCOUNTS_FILE,
        this.#accountsContext,
        this.maxBytes,
        Date.now(),
        READ_FLAGS | OPEN_LOCK_HELD,
      )
    } catch (err) {
      const e = toSessionError(err) as Error & { code?: string }
      if (e.code === undefined || !UNREADABLE_CODES.has(e.code)) throw e
      this.#discarded(
        'accounts file could not be opened and was removed',
        { code: e.code, reason: e.message },
        ACCOUNTS_FILE,
      )
      return []
    }
    if (found === null || 'expired' in found) return []
    try {
      return parseAccounts(found.plaintext as string)
    } catch (err) {
      this.#discarded('accounts file holds no valid list and was removed', { reason: String(err) }, ACCOUNTS_FILE)
      await mapNative(() => dir.remove(ACCOUNTS_FILE))
      return []
    }
  }

  // Both locks held. Expires with its longest-lived entry, so the sweep removes it then.
  async #writeSide(dir: NativePrivateDir, ring: NativeKeyRing, list: StoredAccount[]): Promise<void> {
    if (list.length === 0) {
      await mapNative(() => dir.remove(ACCOUNTS_FILE))
      return
    }
    const json = serializeAccounts(list)
    checkFits(json, this.maxBytes)
    const expiresAt = Math.max(...list.map((a) => a.session.expiresAtMs))
    await mapNative(() => dir.sealToFile(ring, ACCOUNTS_FILE, json, this.#accountsContext, Date.now(), expiresAt))
  }

  #newRecord(userId: unknown, eid: unknown, options: LoginOptions): SessionData {
    checkUserId(userId, 'userId')
    if (typeof eid !== 'string') throw new TypeError(`eid must be a string, got ${describe(eid)}`)
    if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
    const { userName = null, data = {} } = options
    if (userName !== null && typeof userName !== 'string') {
      throw new TypeError(`options.userName must be a string or null, got ${describe(userName)}`)
    }
    const ttl = options.ttl === undefined ? this.ttl : checkTtl('options.ttl', options.ttl)
    if (!isPlainObject(data)) throw new TypeError(`options.data must be a plain object, got ${describe(data)}`)
    const now = Date.now()
    return new SessionData({
      userId,
      userName,
      eid,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(laterBy(now, ttl, 'options.ttl')).toISOString(),
      data: copyJson(data, 'options.data') as JsonObject,
    })
  }

  async #write(
    dir: NativePrivateDir,
    ring: NativeKeyRing,
    record: SessionData,
    existingOnly = false,
  ): Promise<boolean> {
    const json = JSON.stringify(record)
    checkFits(json, this.maxBytes)
    this.#cached = null
    return mapNative(() =>
      dir.sealToFile(
        ring,
        FILE_NAME,
        json,
        this.#context,
        Date.parse(record.createdAt),
        record.expiresAtMs,
        existingOnly,
      ),
    )
  }

  // held: the caller holds the lock, so the read's own removals (expired, invalid) need not take it.
  #readSync(dir: NativePrivateDir, ring: NativeKeyRing, held = false): OpenFileResult | Error {
    try {
      return dir.openFileSync(
        ring,
        FILE_NAME,
        this.#context,
        this.maxBytes,
        Date.now(),
        held ? READ_FLAGS | OPEN_LOCK_HELD : READ_FLAGS,
      )
    } catch (err) {
      return toSessionError(err) as Error
    }
  }

  async #read(dir: NativePrivateDir, ring: NativeKeyRing, held = false): Promise<OpenFileResult | Error> {
    try {
      return await dir.openFile(
        ring,
        FILE_NAME,
        this.#context,
        this.maxBytes,
        Date.now(),
        held ? READ_FLAGS | OPEN_LOCK_HELD : READ_FLAGS,
      )
    } catch (err) {
      return toSessionError(err) as Error
    }
  }

  // Shared by getSession and its sync twin: what a read found, as the caller sees it.
  // discard removes a file that holds no valid record (the async path removes it on the pool).
  #interpret(found: OpenFileResult | Error, discard = () => this.#discardSync()): SessionData | null {
    if (found instanceof Error) {
      const code = (found as { code?: string }).code
      // Tampered, foreign, rotated away, over the cap: the native call removed the file.
      if (code !== undefined && UNREADABLE_CODES.has(code)) {
        this.#discarded('session file could not be opened and was removed', { code, reason: found.message })
        return null
      }
      throw found
    }
    if (found === null) return null
    if ('expired' in found) {
      this.#logger.debug('session expired, file removed', { expiresAt: new Date(found.expiresAt).toISOString() })
      return null
    }
    const text = found.plaintext as string
    const last = this.#parsed
    if (last !== null && found.keyIndex === 0 && last.text === text) return last.session
    let session: SessionData
    try {
      session = SessionData.fromParsed(JSON.parse(text))
    } catch (err) {
      // Authentic but not a record of ours (another program's key and context): unusable.
      this.#discarded('session file holds no valid record and was removed', { reason: String(err) })
      discard()
      return null
    }
    if (found.keyIndex > 0) this.#reseal(session)
    else this.#parsed = { text, session }
    return session
  }

  // A discarded file is worth one line even when no logger was given: a process warning
  // (shown once per discard on stderr by default) naming the file and why.
  #discarded(message: string, details: { code?: string; reason: string }, file = FILE_NAME): void {
    if (this.#hasLogger) {
      this.#logger.warn(message, details)
      return
    }
    const hint = details.code === 'ERR_SESSION_TOO_LARGE' ? '; the SessionManager option maxBytes raises the cap' : ''
    process.emitWarning(
      `${message}: ${path.join(this.sessionDir, file)} (${details.code ?? 'not a session record'}: ${details.reason}${hint})`,
      {
        code: 'SEALED_SESSION_DISCARDED',
        detail: 'Pass options.logger to SessionManager to receive these as log lines instead.',
      },
    )
  }

  // Opened with an older secret: re-seal with the current one, in the background, under the
  // same lock as extendSession so a concurrent extension in another process is not undone.
  #reseal(session: SessionData): void {
    const { dir, ring } = this.#ready()
    const resealing = this.#locked(dir, async () => {
      const found = await dir.openFile(ring, FILE_NAME, this.#context, this.maxBytes, Date.now(), OPEN_AS_STRING)
      // Only if the file still holds what we read (same expiry) and is still on an old key.
      if (found && !('expired' in found) && found.keyIndex > 0 && found.expiresAt === session.expiresAtMs) {
        await this.#write(dir, ring, session)
      }
    }).catch((err: unknown) =>
      this.#logger.warn('could not re-seal the session with the current key', { reason: String(err) }),
    )
    // close() waits for it: no write may still be in flight once close has settled.
    this.#resealing.add(resealing)
    void resealing.finally(() => this.#resealing.delete(resealing))
  }

  #checkOpen(): void {
    if (this.#closed) throw new SessionClosedError('the session manager is closed', 'ERR_SESSION_CLOSED')
  }

  #ready(): { dir: NativePrivateDir; ring: NativeKeyRing } {
    this.#checkOpen()
    if (this.#dir === null) {
      // Key first: a missing machine id should fail before a directory is created.
      this.#keyRing()
      try {
        this.#dir = new native.PrivateDir(this.sessionDir, true)
      } catch (err) {
        const e = toSessionError(err)
        throw this.#defaultDir ? squattedDefault(e, this.sessionDir) : e
      }
      this.#startCleanup()
    }
    return { dir: this.#dir, ring: this.#keyRing() }
  }

  // Derived once; the caller's secrets are dropped as soon as the ring holds the key.
  #keyRing(): NativeKeyRing {
    if (this.#ring === null) {
      this.#ring = makeKeyRing('manager', this.appName, this.#keyOptions!)
      this.#keyOptions = null
    }
    return this.#ring
  }

  // The async paths open the directory on the thread pool, never blocking the main thread.
  async #readyAsync(): Promise<{ dir: NativePrivateDir; ring: NativeKeyRing }> {
    this.#checkOpen()
    // Key first: a missing machine id should fail before a directory is created.
    if (this.#dir === null) this.#keyRing()
    await this.#dirAsync()
    return this.#ready()
  }

  // The directory alone, for what needs no key (removing the only login).
  async #dirAsync(): Promise<NativePrivateDir> {
    this.#checkOpen()
    if (this.#dir !== null) return this.#dir
    this.#opening ??= native.openPrivateDir(this.sessionDir, true).finally(() => {
      this.#opening = null
    })
    let dir: NativePrivateDir
    try {
      dir = await this.#opening
    } catch (err) {
      const e = toSessionError(err)
      throw this.#defaultDir ? squattedDefault(e, this.sessionDir) : e
    }
    if (this.#dir === null && !this.#closed) {
      this.#dir = dir
      this.#startCleanup()
    } else if (this.#dir !== dir) {
      dir.close()
    }
    this.#checkOpen()
    return this.#dir!
  }

  #startCleanup(): void {
    if (this.#cleanupInterval === 0 || this.#timer) return
    // Held weakly: an unclosed manager is still collected (and its key ring with it, which
    // wipes the key). Never keeps a process alive just to clean up.
    this.#timer = weakInterval(this, this.#cleanupInterval, (m) => m.#sweep())
  }

  #sweep(): void {
    const dir = this.#dir
    if (!dir) return
    const logger = this.#logger
    dir.sweep(Date.now()).then(
      (r) => {
        if (r.removed > 0) logger.debug('expired session removed by cleanup', { removed: r.removed })
      },
      (err: unknown) => logger.warn('session cleanup failed', { reason: String(toSessionError(err)) }),
    )
  }
}
