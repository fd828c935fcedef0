// What the stores that keep sealed envelopes (files, Redis) share: option checks, the key ring,
// the storage name and context of a session, and the SessionStore logic above raw reads and
// writes (id validation, expiry, touchAfter, key rotation, restore). A subclass supplies only
// where an envelope lives: readName, writeSession, removeName, dump, purgeExpired, close.
import { SessionClosedError, UNREADABLE_CODES, toSessionError } from './errors'
import { generateSessionId, isValidSessionId, storageName } from './ids'
import { makeKeyRing, type KeyOptions } from './keys'
import { assertFits, checkMaxBytes } from './limits'
import { checkLogger, type Logger } from './logger'
import type { NativeKeyRing } from './native'
import { checkNamespace } from './namespace'
import { Session } from './session'
import {
  checkCreateArgs,
  checkSession,
  parseDump,
  resolveTiming,
  type CreateOptions,
  type SessionDump,
  type SessionStore,
  type StoreTiming,
  type StoreTimingOptions,
} from './store'

export interface SealedStoreOptions extends StoreTimingOptions, KeyOptions {
  /** Part of the key derivation and of each envelope's context (default 'default'). */
  namespace?: string
  /** Size cap of one envelope in bytes (default 1 MiB): bigger sessions are refused on save. */
  maxBytes?: number
  logger?: Logger
}

/** A session as read back, with the index of the key that opened it (> 0: re-seal). */
export interface Found {
  session: Session
  keyIndex: number
}

/** A session sealed for writing: its storage name, context and JSON record. */
export interface Sealable {
  name: string
  context: string
  json: string
}

export abstract class SealedStore implements SessionStore {
  readonly namespace: string
  readonly maxBytes: number
  protected readonly timing: StoreTiming
  protected readonly logger: Logger
  #ring: NativeKeyRing | null

  protected constructor(options: SealedStoreOptions) {
    this.namespace = checkNamespace(options.namespace)
    this.timing = resolveTiming(options)
    this.maxBytes = checkMaxBytes(options.maxBytes)
    this.logger = checkLogger(options.logger)
    this.#ring = makeKeyRing('store', this.namespace, options)
  }

  get defaultTtl(): number {
    return this.timing.defaultTtl
  }

  get maxAge(): number | undefined {
    return this.timing.maxAge
  }

  get touchAfter(): number {
    return this.timing.touchAfter
  }

  async create(auth?: Readonly<Record<string, unknown>> | null, options?: CreateOptions): Promise<Session> {
    this.ring()
    const args = checkCreateArgs(auth, options, this.timing.defaultTtl)
    const session = new Session(generateSessionId(), args.auth, args.ttl, { maxAge: this.timing.maxAge })
    await this.writeSession(session, false)
    return session
  }

  async get(id: string): Promise<Session | null> {
    this.ring()
    if (!isValidSessionId(id)) return null
    const name = storageName(id)
    const now = Date.now()
    const found = await this.readName(name, now)
    if (found === null) return null
    const session = found.session
    // The context binds the envelope to its name; a record of another id here is not this session.
    if (session.id !== id || session.isExpired(now)) {
      if (session.id === id) await this.removeName(name)
      return null
    }
    // Rewrite only when lastAccess is stale (or the key rotated): read-mostly traffic stays reads.
    const stale = now - session.meta.lastAccess > this.timing.touchAfter
    session.touch(now)
    if (stale || found.keyIndex > 0) await this.writeSession(session, true)
    return session
  }

  async save(session: Session): Promise<void> {
    this.ring()
    checkSession(session)
    if (session.isExpired()) await this.removeName(storageName(session.id))
    else await this.writeSession(session, false)
    session.clearDirty()
  }

  async delete(id: string): Promise<boolean> {
    this.ring()
    if (!isValidSessionId(id)) return false
    return this.removeName(storageName(id))
  }

  async restore(dump: SessionDump): Promise<number> {
    this.ring()
    const sessions = parseDump(dump)
    const now = Date.now()
    const live = sessions.filter((s) => !s.isExpired(now))
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < live.length) await this.writeSession(live[next++], false)
    }
    await Promise.all(Array.from({ length: Math.min(this.restoreConcurrency, live.length) }, worker))
    return live.length
  }

  abstract dump(): Promise<SessionDump>
  abstract purgeExpired(): Promise<number>
  abstract close(): Promise<void>

  /** The session sealed under `name`, or null when missing, expired or unreadable. */
  protected abstract readName(name: string, now: number): Promise<Found | null>
  /** Seal and store; `existingOnly` for touches and re-seals (must not revive a deleted session). */
  protected abstract writeSession(session: Session, existingOnly: boolean): Promise<void>
  protected abstract removeName(name: string): Promise<boolean>
  /** How many restore writes are in flight at once. */
  protected abstract readonly restoreConcurrency: number

  /** The key ring, or SessionClosedError once closed. */
  protected ring(): NativeKeyRing {
    if (this.#ring === null) throw new SessionClosedError(`${this.constructor.name} is closed`, 'ERR_SESSION_CLOSED')
    return this.#ring
  }

  /** Wipes the key; later calls reject with SessionClosedError. */
  protected closeRing(): void {
    this.#ring?.close()
    this.#ring = null
  }

  protected context(name: string): string {
    return `store:${this.namespace}:${name}`
  }

  /** The session as it will be sealed, refused here when over the size cap. */
  protected sealable(session: Session): Sealable {
    const json = JSON.stringify(session)
    assertFits(json, this.maxBytes, `session ${session.id.slice(0, 6)}…`)
    const name = storageName(session.id)
    return { name, context: this.context(name), json }
  }

  /**
   * An opening error as "no session" (null) when it means the envelope is unreadable with what
   * we have (tampered, wrong key, renamed): rethrown as a SessionError otherwise.
   */
  protected unreadable(err: unknown): null {
    const e = toSessionError(err) as Error & { code?: string }
    if (e.code === undefined || !UNREADABLE_CODES.has(e.code)) throw e
    this.logger.warn('session envelope could not be opened', { code: e.code })
    return null
  }

  /** The opened record as a Session, or null (logged) when it is not one. */
  protected decode(plaintext: string, keyIndex: number): Found | null {
    try {
      return { session: Session.fromJSON(JSON.parse(plaintext)), keyIndex }
    } catch {
      this.logger.warn('session envelope holds no valid record')
      return null
    }
  }
}
