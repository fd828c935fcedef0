// One sealed envelope per session in a private directory. A session's file name is its
// storage name (hex SHA-256 of the id): never the id itself, so no path traversal and no id
// in a directory listing. Each read and each write is one native call; expiry sweeps read
// only the 40-byte headers.
import { mapNative, toSessionError } from './errors'
import { isPlainObject } from './json'
import { native, OPEN_AS_STRING, OPEN_REMOVE_EXPIRED, type NativePrivateDir, type OpenFileResult } from './native'
import { makeDump, type SessionDump } from './store'
import { SealedStore, type Found, type SealedStoreOptions } from './sealed-store'
import type { Session, SessionRecord } from './session'
import { checkDirPath, checkNonNegativeMs, describe } from './validate'

export interface FileSessionStoreOptions extends SealedStoreOptions {
  /** The private directory (created 0700 if missing; refused if unsafe). */
  dir: string
  /** How often expired files are swept, in ms (default 5 min; 0 disables). */
  sweepInterval?: number
}

const STORAGE_NAME = /^[0-9a-f]{64}$/
const READ_FLAGS = OPEN_REMOVE_EXPIRED | OPEN_AS_STRING

function checkOptions(options: FileSessionStoreOptions): FileSessionStoreOptions {
  if (!isPlainObject(options as unknown)) throw new TypeError(`options must be an object, got ${describe(options)}`)
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
  #files: NativePrivateDir | null
  #timer: NodeJS.Timeout | null = null

  constructor(options: FileSessionStoreOptions) {
    super(checkOptions(options))
    try {
      this.#files = new native.PrivateDir(options.dir, true)
    } catch (err) {
      this.closeRing()
      throw toSessionError(err)
    }
    this.dir = this.#files.path
    const sweepInterval = options.sweepInterval ?? 5 * 60_000
    if (sweepInterval > 0) {
      // Held weakly: an unclosed store is still collected (its key ring wiped with it); the
      // first tick after that stops the timer.
      const self = new WeakRef(this)
      const timer = setInterval(() => {
        const store = self.deref()
        if (store === undefined) return clearInterval(timer)
        store.purgeExpired().catch((err: unknown) => store.logger.warn('session sweep failed', { reason: String(err) }))
      }, sweepInterval)
      // Never keep a process alive just to sweep.
      timer.unref()
      this.#timer = timer
    }
  }

  async dump(): Promise<SessionDump> {
    const files = this.#open()
    const names = (await mapNative(() => files.list())).filter((n) => STORAGE_NAME.test(n))
    const now = Date.now()
    const records: SessionRecord[] = []
    for (const name of names) {
      let found: Found | null
      try {
        found = await this.readName(name, now)
      } catch (err) {
        // One planted file (a symlink, another user's) must not hide every other session, as
        // the sweep also passes it by; get() on that id still refuses it loudly.
        if ((err as { code?: string }).code !== 'ERR_SESSION_UNSAFE_PATH') throw err
        this.logger.warn('unsafe file left out of the dump', { name })
        continue
      }
      if (found && !found.session.isExpired(now)) records.push(found.session.toJSON())
    }
    return makeDump(records)
  }

  /** Removes expired envelopes by their headers alone (nothing is decrypted). */
  async purgeExpired(): Promise<number> {
    const files = this.#open()
    const result = await mapNative(() => files.sweep(Date.now()))
    if (result.removed > 0) this.logger.debug('expired sessions swept', { removed: result.removed })
    return result.removed
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.closeRing()
    this.#files?.close()
    this.#files = null
  }

  // A file expired by its header is removed by the same native call that found it so.
  protected async readName(name: string, now: number): Promise<Found | null> {
    const files = this.#open()
    let found: OpenFileResult
    try {
      found = await files.openFile(this.ring(), name, this.context(name), this.maxBytes, now, READ_FLAGS)
    } catch (err) {
      return this.unreadable(err)
    }
    if (found === null || 'expired' in found) return null
    return this.decode(found.plaintext as string, found.keyIndex)
  }

  // existingOnly: a touch does not re-create a file another process deleted meanwhile (logout).
  protected async writeSession(session: Session, existingOnly: boolean): Promise<void> {
    const files = this.#open()
    const { name, context, json } = this.sealable(session)
    const ring = this.ring()
    await mapNative(() => files.sealToFile(ring, name, json, context, session.meta.createdAt, session.expiresAt(), existingOnly))
  }

  protected async removeName(name: string): Promise<boolean> {
    const files = this.#open()
    return mapNative(() => files.remove(name))
  }


  #open(): NativePrivateDir {
    this.ring() // throws SessionClosedError once closed
    return this.#files as NativePrivateDir
  }
}
