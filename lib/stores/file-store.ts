// One sealed envelope per session in a private directory. A session's file name is its
// storage name (hex SHA-256 of the id): never the id itself, so no path traversal and no id
// in a directory listing. Reads are one native call and take no lock (files are replaced by
// rename, so a reader sees a whole old or a whole new version). Every write, removal and index
// change holds one of 256 stripe locks (`stripe-<first byte of the name>.lock`, flock), so a
// compare-and-swap is atomic across processes; expiry sweeps read only the 40-byte headers.
// An identity's index is a set of small sealed files, one per session, named
// `ix-<index name>-<storage name>` (index name: the hex HMAC of the identity): adding an entry
// that is there is one header read, no entry ever rewrites another, and the index has no size
// limit. Its revocation mark is `revoked-<index name>`. An index of 0.2 (one file,
// `index-<index name>`) is turned into entry files the first time it is listed or swept.
import * as path from 'node:path'

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
import { mapNative, toSessionError } from '../core/errors'
import { dirLockKey, withDirLock, withFileMutex } from '../core/file-mutex'
import { isStorageName } from '../core/ids'
import { isPlainObject } from '../core/json'
import { weakInterval } from '../core/weak-timer'
import { native, OPEN_AS_STRING, OPEN_REMOVE_EXPIRED, type NativePrivateDir, type OpenFileResult } from '../core/native'
import { makeDump, type SessionDump } from './store'
import { SEALED_KEYS, SealedStore, type SealedStoreOptions } from './sealed-store'
import type { SessionRecord } from '../session/session'
import { checkDirPath, checkNonNegativeMs, checkOptionKeys, describe } from '../core/validate'

export interface FileSessionStoreOptions extends SealedStoreOptions {
  /** The private directory (created 0700 if missing; refused if unsafe). */
  dir: string
  /** How often expired files are swept, in ms (default 5 min; 0 disables). */
  sweepInterval?: number
  /**
   * What an acknowledged write survives. `'fsync'` (default): a crash of the process, of the
   * kernel, a power loss (the file and the directory are fsynced before a write resolves).
   * `'process'`: a crash of the process only; writes acknowledged in the last seconds before a
   * kernel crash or power loss may be lost (the session is then its previous version, or gone;
   * never a corrupt one).
   */
  durability?: Durability
}

/** What an acknowledged FileSessionStore write survives (see FileSessionStoreOptions). */
export type Durability = 'fsync' | 'process'
const DURABILITIES: readonly Durability[] = ['fsync', 'process']

const FILE_KEYS = new Set([...SEALED_KEYS, 'dir', 'sweepInterval', 'durability'])
const ENTRY_PREFIX = 'ix-'
const ENTRY_FILE = /^ix-([0-9a-f]{64})-([0-9a-f]{64})$/
const MARK_PREFIX = 'revoked-'
const LEGACY_INDEX_PREFIX = 'index-'
const LEGACY_INDEX_FILE = /^index-([0-9a-f]{64})$/
// A 0.2 index file was written without a size check: read it whole, up to this.
const LEGACY_INDEX_MAX_BYTES = 64 * 1024 * 1024
const READ_FLAGS = OPEN_REMOVE_EXPIRED | OPEN_AS_STRING

/** The epoch a revocation mark file holds; 0 when there is none. */
function markOf(found: OpenFileResult): number {
  if (found === null || 'expired' in found) return 0
  const epoch = (JSON.parse(found.plaintext as string) as { epoch?: unknown }).epoch
  return typeof epoch === 'number' && Number.isSafeInteger(epoch) && epoch > 0 ? epoch : 0
}

function entryFile(index: string, name: string): string {
  return `${ENTRY_PREFIX}${index}-${name}`
}

/** The lock of a hex name: 256 stripes by its first byte (`stripe-ab.lock`). The native
 *  PrivateDir::LockNameOf names the same lock for the files it removes on its own. */
function stripeOf(hexName: string): string {
  return `stripe-${hexName.slice(0, 2)}`
}

function checkOptions(options: FileSessionStoreOptions): FileSessionStoreOptions {
  if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
  checkOptionKeys(options, FILE_KEYS, 'FileSessionStore')
  checkDirPath('options.dir', options.dir)
  if (options.sweepInterval !== undefined) checkNonNegativeMs('options.sweepInterval', options.sweepInterval)
  const { durability } = options
  if (durability !== undefined && !DURABILITIES.includes(durability))
    throw new TypeError(`options.durability must be 'fsync' or 'process', got ${describe(durability)}`)
  return options
}

export class FileSessionStore extends SealedStore {
  readonly dir: string
  readonly durability: Durability
  // libuv's pool has 4 threads by default; keep some free for reads while a restore runs.
  protected override get restoreConcurrency(): number {
    return 3
  }
  #files: NativePrivateDir | null = null
  // Writes in flight that must be fsynced under durability 'process' (see #synced).
  #syncedWrites = 0
  // The directory being opened on the thread pool (null once open, or after a failed try).
  #opening: Promise<NativePrivateDir> | null = null
  #closed = false
  // The periodic sweep in flight, which close() lets finish.
  #sweeping: Promise<unknown> | null = null
  readonly #absDir: string
  #timer: NodeJS.Timeout | null = null

  /**
   * Checks the options at once; the directory is opened (created, checked) on the thread pool,
   * starting now: the constructor does no file I/O. An unsafe or unusable directory rejects each
   * call with its error (ERR_SESSION_UNSAFE_PATH, ...), and each call tries again.
   */
  constructor(options: FileSessionStoreOptions) {
    super(checkOptions(options))
    this.dir = options.dir
    this.durability = options.durability ?? 'fsync'
    // A relative dir means the current directory of now, not of when the pool gets to it.
    this.#absDir = path.isAbsolute(options.dir) ? options.dir : `${process.cwd()}${path.sep}${options.dir}`
    // Started now so the first request finds it open; its failure is each call's to report.
    this.#openDir().catch(() => {})
    const sweepInterval = options.sweepInterval ?? 5 * 60_000
    if (sweepInterval > 0) {
      // Held weakly: an unclosed store is still collected (its key ring wiped with it). Never
      // keeps a process alive just to sweep.
      this.#timer = weakInterval(this, sweepInterval, (store) => {
        if (store.#sweeping !== null) return // the last one is still running
        store.#sweeping = store
          .purgeExpired()
          .catch((err: unknown) => store.logger.warn('session sweep failed', { reason: String(err) }))
          .finally(() => {
            store.#sweeping = null
          })
      })
    }
  }

  /**
   * Opens (creating it if missing) and checks the directory, on the thread pool. Every other
   * method does this by itself first; await it at startup to fail fast on an unsafe directory.
   */
  async init(): Promise<void> {
    await this.#open()
  }

  async dump(): Promise<SessionDump> {
    const files = await this.#open()
    const names = (await mapNative(() => files.list())).filter(isStorageName)
    const now = Date.now()
    const records: SessionRecord[] = []
    for (const name of names) {
      let found: StoredRecord | null
      try {
        found = await this.readRecord(name, now)
      } catch (err) {
        // One planted file (a symlink, another user's) must not hide every other session, as
        // the sweep also passes it by; get() on that id still refuses it loudly.
        if ((err as { code?: string }).code !== 'ERR_SESSION_UNSAFE_PATH') throw err
        // The storage name stays at debug: it identifies a session, and info and up carry none.
        this.logger.warn('unsafe file left out of the dump')
        this.logger.debug('unsafe file left out of the dump', { name: `${name.slice(0, 8)}…` })
        continue
      }
      if (found && !found.session.isExpired(now)) records.push(found.session.toRecord())
    }
    return makeDump(records)
  }

  /** Removes expired envelopes by their headers alone (nothing is decrypted), then prunes the
   *  identity index entries whose session file is gone. */
  async purgeExpired(): Promise<number> {
    const files = await this.#open()
    // Index entries (and 0.2 index files) come from the sweep's own pass: no second listing.
    const result = await mapNative(() => files.sweep(Date.now(), 'i'))
    if (result.removed > 0) this.logger.debug('expired sessions swept', { removed: result.removed })
    for (const file of result.collected) {
      const legacy = LEGACY_INDEX_FILE.exec(file)
      if (legacy !== null) await this.#migrate(legacy[1])
    }
    // What is left after the sweep: a session file missing from it is positive evidence.
    const present = new Set(await mapNative(() => files.list()))
    const gone = new Map<string, string[]>()
    for (const file of present) {
      const m = ENTRY_FILE.exec(file)
      if (m === null || present.has(m[2])) continue
      let names = gone.get(m[1])
      if (names === undefined) gone.set(m[1], (names = []))
      names.push(m[2])
    }
    for (const [index, names] of gone) await this.pruneIndex(index, names)
    return result.removed
  }

  /** Stops the sweep, wipes the keys and releases the directory: a periodic sweep or the
   *  directory's open still on the pool is waited for, so once this resolves the store holds no
   *  descriptor on it (Windows can then remove it), unless a call of yours is still running.
   *  Later calls reject with SessionClosedError. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    // A sweep or the directory's open on the pool holds the directory until it ends: wait for them.
    await Promise.allSettled([this.#sweeping, this.#opening])
    this.#closed = true
    this.closeRing()
    this.#files?.close()
    this.#files = null
  }

  // A file expired by its header is removed by the same native call that found it so.
  protected async readRecord(name: string, now: number): Promise<StoredRecord | null> {
    // Not awaited when already open: this is every get's path.
    const open = this.#open()
    const files = open instanceof Promise ? await open : open
    let found: OpenFileResult
    try {
      found = await files.openFile(this.ring(), name, this.context(name), this.maxBytes, now, READ_FLAGS)
    } catch (err) {
      return this.unreadable(err)
    }
    if (found === null || 'expired' in found) return null
    return this.decode(found.plaintext as string, found.keyIndex)
  }

  // The same read on the main thread when the kernel can serve it without blocking (page cache,
  // cached lookups); undefined when only the pool can, or the directory is still being opened.
  protected override readRecordNow(name: string, now: number): StoredRecord | null | undefined {
    const files = this.#files
    if (files === null) return undefined
    let found: OpenFileResult | undefined
    try {
      found = files.openFileNow(this.ring(), name, this.context(name), this.maxBytes, now, READ_FLAGS)
    } catch (err) {
      return this.unreadable(err)
    }
    if (found === undefined) return undefined
    if (found === null || 'expired' in found) return null
    return this.decode(found.plaintext as string, found.keyIndex)
  }

  // One native call (lock, open, compare, seal, write, unlock: one pool job). On a conflict the
  // stripe lock is still held, so the rebuilt record is written before any other writer.
  protected async writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome> {
    const files = await this.#open()
    const ring = this.ring()
    const { name } = write
    // The same in-process queue as #locked; the native call takes the stripe's flock itself.
    return withFileMutex(dirLockKey(files.id, stripeOf(name)), async () => {
      const { json } = write
      const r = await mapNative(() =>
        files.casSeal(ring, name, {
          stripe: stripeOf(name),
          plaintext: json,
          context: this.context(name),
          createdAt: write.createdAt,
          expiresAt: write.expiresAt,
          maxBytes: this.maxBytes,
          now: Date.now(),
          mode: condition.kind,
          expected: condition.kind === 'version' ? condition.version : undefined,
        }),
      )
      if (r.unreadable !== undefined) this.logger.warn('session envelope could not be opened', { code: r.unreadable })
      if (r.outcome !== 'conflict') return r.outcome
      try {
        const current = this.decode(r.current as string, 0)
        if (current === null) return 'missing'
        if (rebuild === undefined) return 'conflict'
        const next = rebuild(current)
        await this.#seal(name, next.json, next.createdAt, next.expiresAt)
        return 'written'
      } finally {
        r.lock?.release()
      }
    })
  }

  protected async removeRecord(name: string, ifVersion?: number): Promise<Removed> {
    const files = await this.#open()
    // A session that is not there needs no lock (nor a lock file): a delete of an unknown id stays a read.
    let present = true
    try {
      present = (await mapNative(() => files.peek(name))) !== null
    } catch {
      // unreadable or unsafe: the locked path below decides
    }
    if (!present) return { removed: false, identity: null }
    return this.#locked(name, async () => {
      // Opened as at time 0 so that an expired record is still read (its identity, its version).
      const found = await this.readRecord(name, 0)
      if (ifVersion !== undefined && found?.version !== ifVersion) return { removed: false, identity: null }
      const removed = await mapNative(() => files.remove(name))
      return { removed, identity: removed && found !== null ? identityOf(found.session) : null }
    })
  }

  protected async recordGone(name: string, now: number): Promise<boolean> {
    const files = await this.#open()
    let header: Awaited<ReturnType<NativePrivateDir['peek']>>
    try {
      header = await mapNative(() => files.peek(name))
    } catch {
      return false // could not look (an unsafe file, an I/O error): not evidence
    }
    return header === null || (header.expiresAt !== 0 && header.expiresAt <= now)
  }

  // One file per entry: present is one header read; absent is one atomic create.
  protected async indexAdd(index: string, entry: IndexEntry): Promise<void> {
    const files = await this.#open()
    const file = entryFile(index, entry.name)
    if ((await mapNative(() => files.peek(file))) !== null) return
    await this.#seal(file, '{}', Date.now(), 0)
  }

  protected async indexRemove(index: string, names: readonly string[]): Promise<void> {
    const files = await this.#open()
    for (const name of names) await mapNative(() => files.remove(entryFile(index, name)))
  }

  // Under the session's stripe lock, the lock its writes hold: a session written meanwhile is seen.
  protected override async pruneIndex(index: string, names: readonly string[]): Promise<void> {
    const files = await this.#open()
    for (const name of names) {
      await this.#locked(name, async () => {
        if (await this.recordGone(name, Date.now())) await mapNative(() => files.remove(entryFile(index, name)))
      })
    }
  }

  protected async indexList(index: string): Promise<IndexEntry[]> {
    const files = await this.#open()
    await this.#migrate(index)
    const prefix = `${ENTRY_PREFIX}${index}-`
    const out: IndexEntry[] = []
    for (const file of await mapNative(() => files.list())) {
      if (file.startsWith(prefix) && ENTRY_FILE.test(file)) out.push({ name: file.slice(prefix.length), expiresAt: 0 })
    }
    return out
  }

  protected async markRead(index: string): Promise<number> {
    const files = await this.#open()
    const file = MARK_PREFIX + index
    // Not read as "no mark" when it cannot be opened: the identity's reads fail instead.
    return markOf(
      await mapNative(() => files.openFile(this.ring(), file, this.context(file), this.maxBytes, 0, OPEN_AS_STRING)),
    )
  }

  // An identity with no mark costs one cached failed lookup here (no file, no pool job).
  protected override markReadNow(index: string): number | undefined {
    const files = this.#files
    if (files === null) return undefined
    const file = MARK_PREFIX + index
    let found: OpenFileResult | undefined
    try {
      found = files.openFileNow(this.ring(), file, this.context(file), this.maxBytes, 0, OPEN_AS_STRING)
    } catch (err) {
      throw toSessionError(err)
    }
    return found === undefined ? undefined : markOf(found)
  }

  protected async markRaise(index: string, epoch: number): Promise<void> {
    await this.#locked(index, async () => {
      if ((await this.markRead(index)) >= epoch) return
      const file = MARK_PREFIX + index
      await this.#synced(() => this.#seal(file, JSON.stringify({ epoch }), Date.now(), 0))
    })
  }

  /** Runs `fn` with fsynced writes whatever `durability` says: a revocation is never lost to a
   *  power cut. Session writes made meanwhile are fsynced too, which costs only time. */
  async #synced<T>(fn: () => Promise<T>): Promise<T> {
    if (this.durability === 'fsync') return fn()
    const files = await this.#open()
    if (this.#syncedWrites++ === 0) files.setSyncWrites(true)
    try {
      return await fn()
    } finally {
      if (--this.#syncedWrites === 0 && !files.closed) files.setSyncWrites(false)
    }
  }

  /** Turns a 0.2 index file (one sealed list) into entry files, then removes it. */
  async #migrate(index: string): Promise<void> {
    const files = await this.#open()
    const file = LEGACY_INDEX_PREFIX + index
    if ((await mapNative(() => files.peek(file))) === null) return
    await this.#locked(index, async () => {
      let found: OpenFileResult
      try {
        found = await files.openFile(this.ring(), file, this.context(file), LEGACY_INDEX_MAX_BYTES, 0, OPEN_AS_STRING)
      } catch (err) {
        this.unreadable(err) // left in place: not evidence that its sessions are gone
        return
      }
      if (found === null || 'expired' in found) return
      let names: string[]
      try {
        const parsed = JSON.parse(found.plaintext as string) as { entries?: unknown }
        if (!isPlainObject(parsed.entries)) throw new TypeError('bad index')
        names = Object.keys(parsed.entries).filter(isStorageName)
      } catch {
        this.logger.warn('identity index holds no valid record')
        return
      }
      for (const name of names) await this.indexAdd(index, { name, expiresAt: 0 })
      await mapNative(() => files.remove(file))
    })
  }

  async #seal(name: string, json: string, createdAt: number, expiresAt: number): Promise<void> {
    const files = await this.#open()
    const ring = this.ring()
    const context = this.context(name)
    await mapNative(() => files.sealToFile(ring, name, json, context, createdAt, expiresAt))
  }

  /**
   * Runs `fn` holding the stripe lock of a hex name (first byte: 256 stripes, so lock files never
   * pile up). The in-process queue comes first: at most one libuv pool thread per stripe waits in
   * flock, so waiting writers cannot starve the 4-thread pool the lock holder needs. The queue is
   * shared by every store on this directory (keyed by its device and inode).
   */
  async #locked<T>(hexName: string, fn: () => Promise<T>): Promise<T> {
    return withDirLock(await this.#open(), stripeOf(hexName), fn)
  }

  /** The open directory (or the promise of it); throws SessionClosedError once closed. */
  #open(): NativePrivateDir | Promise<NativePrivateDir> {
    this.ring()
    return this.#files ?? this.#openDir()
  }

  /** One open on the pool at a time; a failed one is forgotten, so the next call tries again. */
  #openDir(): Promise<NativePrivateDir> {
    this.#opening ??= mapNative(() => native.openPrivateDir(this.#absDir, true)).then(
      (files) => {
        this.#opening = null
        if (this.#closed) {
          files.close()
          this.ring() // SessionClosedError
        }
        if (this.durability === 'process') files.setSyncWrites(false)
        this.#files = files
        return files
      },
      (err: unknown) => {
        this.#opening = null
        throw err
      },
    )
    return this.#opening
  }
}
