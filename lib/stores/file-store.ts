// One sealed envelope per session in a private directory. A session's file name is its
// storage name (hex SHA-256 of the id): never the id itself, so no path traversal and no id
// in a directory listing. Reads are one native call and take no lock (files are replaced by
// rename, so a reader sees a whole old or a whole new version). Every write, removal and index
// change holds one of 256 stripe locks (`stripe-<first byte of the name>.lock`, flock), so a
// compare-and-swap is atomic across processes; expiry sweeps read only the 40-byte headers.
// Each identity's index is one sealed file, `index-<hex HMAC of the identity>`, listing the
// storage names of its sessions with an expiry hint.
import * as path from 'node:path'

import { type IndexEntry, type Rebuild, type RecordWrite, type Removed, type StoredRecord, type WriteCondition, type WriteOutcome } from './base-store'
import { identityOf } from './base-store'
import { mapNative } from '../core/errors'
import { withFileMutex } from '../core/file-mutex'
import { isPlainObject } from '../core/json'
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
}

const STORAGE_NAME = /^[0-9a-f]{64}$/
const FILE_KEYS = new Set([...SEALED_KEYS, 'dir', 'sweepInterval'])
const INDEX_PREFIX = 'index-'
const INDEX_FILE = /^index-[0-9a-f]{64}$/
const READ_FLAGS = OPEN_REMOVE_EXPIRED | OPEN_AS_STRING
// An index is checked against its sessions' headers once it holds this many entries more than
// after its last check: it never holds more than its live sessions plus this slack.
const INDEX_SLACK = 64

/** An index file's plaintext: storage name -> expiry hint (ms). */
interface IndexRecord {
  entries: Record<string, number>
  /** Entry count after the last pruning (see INDEX_SLACK). */
  checked: number
}

/** The lock of a hex name: 256 stripes by its first byte (`stripe-ab.lock`). */
function stripeOf(hexName: string): string {
  return `stripe-${hexName.slice(0, 2)}`
}

function checkOptions(options: FileSessionStoreOptions): FileSessionStoreOptions {
  if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
  checkOptionKeys(options, FILE_KEYS, 'FileSessionStore')
  checkDirPath('options.dir', options.dir)
  if (options.sweepInterval !== undefined) checkNonNegativeMs('options.sweepInterval', options.sweepInterval)
  return options
}

export class FileSessionStore extends SealedStore {
  readonly dir: string
  // libuv's pool has 4 threads by default; keep some free for reads while a restore runs.
  protected override get restoreConcurrency(): number {
    return 3
  }
  #files: NativePrivateDir | null = null
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
    // A relative dir means the current directory of now, not of when the pool gets to it.
    this.#absDir = path.isAbsolute(options.dir) ? options.dir : `${process.cwd()}${path.sep}${options.dir}`
    // Started now so the first request finds it open; its failure is each call's to report.
    this.#openDir().catch(() => {})
    const sweepInterval = options.sweepInterval ?? 5 * 60_000
    if (sweepInterval > 0) {
      // Held weakly: an unclosed store is still collected (its key ring wiped with it); the
      // first tick after that stops the timer.
      const self = new WeakRef(this)
      const timer = setInterval(() => {
        const store = self.deref()
        if (store === undefined) return clearInterval(timer)
        if (store.#sweeping !== null) return // the last one is still running
        store.#sweeping = store
          .purgeExpired()
          .catch((err: unknown) => store.logger.warn('session sweep failed', { reason: String(err) }))
          .finally(() => {
            store.#sweeping = null
          })
      }, sweepInterval)
      // Never keep a process alive just to sweep.
      timer.unref()
      this.#timer = timer
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
    const names = (await mapNative(() => files.list())).filter((n) => STORAGE_NAME.test(n))
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
      if (found && !found.session.isExpired(now)) records.push(found.session.toJSON())
    }
    return makeDump(records)
  }

  /** Removes expired envelopes by their headers alone (nothing is decrypted), then prunes the
   *  identity indexes of entries whose session is gone. */
  async purgeExpired(): Promise<number> {
    const files = await this.#open()
    // The index files come from the sweep's own pass over the directory: no second listing.
    const result = await mapNative(() => files.sweep(Date.now(), INDEX_PREFIX))
    if (result.removed > 0) this.logger.debug('expired sessions swept', { removed: result.removed })
    const indexes = result.collected.filter((n) => INDEX_FILE.test(n))
    for (const file of indexes) {
      // Checked without the lock first: an index with nothing to prune is not rewritten.
      const gone = await this.#dangling(await this.#readIndex(file))
      if (gone.length > 0) await this.indexRemove(file.slice(INDEX_PREFIX.length), gone)
    }
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

  // One native call (lock, open, compare, seal, write, unlock: one pool job). On a conflict the
  // stripe lock is still held, so the rebuilt record is written before any other writer.
  protected async writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome> {
    const files = await this.#open()
    const ring = this.ring()
    const { name } = write
    const mode = condition.kind === 'any' ? 0 : condition.kind === 'absent' ? 1 : 2
    const expected = condition.kind === 'version' ? condition.version : 0
    return withFileMutex(this.#stripeKey(files, name), async () => {
      const { json } = write
      const r = await mapNative(() =>
        files.casSeal(ring, name, stripeOf(name), json, this.context(name), write.createdAt, write.expiresAt, this.maxBytes, Date.now(), mode, expected),
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

  protected async indexAdd(index: string, entry: IndexEntry): Promise<void> {
    await this.#updateIndex(index, async (record) => {
      record.entries[entry.name] = entry.expiresAt
      if (Object.keys(record.entries).length >= record.checked + INDEX_SLACK) await this.#prune(record)
      return true
    })
  }

  protected async indexRemove(index: string, names: readonly string[]): Promise<void> {
    await this.#updateIndex(index, async (record) => {
      let changed = false
      for (const name of names) {
        if (Object.hasOwn(record.entries, name)) {
          delete record.entries[name]
          changed = true
        }
      }
      return changed
    })
  }

  protected async indexList(index: string): Promise<IndexEntry[]> {
    const record = await this.#readIndex(INDEX_PREFIX + index)
    return Object.entries(record.entries).map(([name, expiresAt]) => ({ name, expiresAt }))
  }

  /** Read-modify-write of one index under its stripe lock; `change` returns false when nothing changed.
   *  An index left empty is removed. */
  async #updateIndex(index: string, change: (record: IndexRecord) => Promise<boolean>): Promise<void> {
    const files = await this.#open()
    const file = INDEX_PREFIX + index
    await this.#locked(index, async () => {
      const record = await this.#readIndex(file)
      if (!(await change(record))) return
      if (Object.keys(record.entries).length === 0) {
        await mapNative(() => files.remove(file))
        return
      }
      // Never expires by its header (0): the sweep leaves it to #prune, which checks each session.
      await this.#seal(file, JSON.stringify(record), Date.now(), 0)
    })
  }

  async #readIndex(file: string): Promise<IndexRecord> {
    const files = await this.#open()
    let found: OpenFileResult
    try {
      found = await files.openFile(this.ring(), file, this.context(file), this.maxBytes, 0, OPEN_AS_STRING)
    } catch (err) {
      this.unreadable(err)
      found = null // an unreadable index (foreign key, tampered) starts again empty
    }
    if (found === null || 'expired' in found) return { entries: Object.create(null) as Record<string, number>, checked: 0 }
    try {
      const parsed = JSON.parse(found.plaintext as string) as IndexRecord
      if (!isPlainObject(parsed.entries) || typeof parsed.checked !== 'number') throw new TypeError('bad index')
      return { entries: Object.assign(Object.create(null) as Record<string, number>, parsed.entries), checked: parsed.checked }
    } catch {
      this.logger.warn('identity index holds no valid record')
      return { entries: Object.create(null) as Record<string, number>, checked: 0 }
    }
  }

  /** Drops entries whose session file is gone or expired by its header (40 bytes read each). */
  async #prune(record: IndexRecord): Promise<void> {
    for (const name of await this.#dangling(record)) delete record.entries[name]
    record.checked = Object.keys(record.entries).length
  }

  /** The entries whose session file is gone, unreadable or expired by its header. */
  async #dangling(record: IndexRecord): Promise<string[]> {
    const files = await this.#open()
    const now = Date.now()
    const out: string[] = []
    for (const name of Object.keys(record.entries)) {
      const header = await mapNative(() => files.peek(name)).catch(() => null)
      if (header === null || (header.expiresAt !== 0 && header.expiresAt <= now)) out.push(name)
    }
    return out
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
   * flock, so waiting writers cannot starve the 4-thread pool the lock holder needs.
   */
  async #locked<T>(hexName: string, fn: () => Promise<T>): Promise<T> {
    const files = await this.#open()
    const stripe = stripeOf(hexName)
    return withFileMutex(this.#stripeKey(files, hexName), async () => {
      const lock = await mapNative(() => files.lock(stripe))
      try {
        return await fn()
      } finally {
        lock.release()
      }
    })
  }

  /** The in-process queue of a stripe, shared by every store on this directory: keyed by the
   *  directory's device and inode, so two spellings of it (`dir`, `dir/`) share one queue. */
  #stripeKey(files: NativePrivateDir, hexName: string): string {
    return `${files.id}\0${stripeOf(hexName)}`
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
