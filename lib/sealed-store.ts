// What the stores that keep sealed envelopes (files, Redis) share on top of BaseSessionStore:
// option checks, the key ring, a session's storage name and context, the size cap, and how an
// unreadable envelope is reported. A subclass supplies only where an envelope lives: readName,
// writeSession, removeName, dump, purgeExpired, close.
import { BaseSessionStore, type Found } from './base-store'
import { SessionClosedError, UNREADABLE_CODES, toSessionError } from './errors'
import { storageName } from './ids'
import { makeKeyRing, type KeyOptions } from './keys'
import { assertFits, checkMaxBytes } from './limits'
import { checkLogger, type Logger } from './logger'
import type { NativeKeyRing } from './native'
import { checkNamespace } from './namespace'
import { Session } from './session'
import { resolveTiming, type StoreTimingOptions } from './store'

export type { Found } from './base-store'

export interface SealedStoreOptions extends StoreTimingOptions, KeyOptions {
  /** Part of the key derivation and of each envelope's context (default 'default'). */
  namespace?: string
  /** Size cap of one envelope in bytes (default 1 MiB): bigger sessions are refused on save. */
  maxBytes?: number
  logger?: Logger
}

/** A session sealed for writing: its storage name, context and JSON record. */
export interface Sealable {
  name: string
  context: string
  json: string
}

export abstract class SealedStore extends BaseSessionStore {
  readonly namespace: string
  readonly maxBytes: number
  protected readonly logger: Logger
  #ring: NativeKeyRing | null

  protected constructor(options: SealedStoreOptions) {
    super(resolveTiming(options))
    this.namespace = checkNamespace(options.namespace)
    this.maxBytes = checkMaxBytes(options.maxBytes)
    this.logger = checkLogger(options.logger)
    this.#ring = makeKeyRing('store', this.namespace, options)
  }

  // Sessions live under their storage name (hex SHA-256 of the id), never under the id.
  protected readSession(id: string, now: number): Promise<Found | null> {
    return this.readName(storageName(id), now)
  }

  protected removeSession(id: string): Promise<boolean> {
    return this.removeName(storageName(id))
  }

  protected assertOpen(): void {
    this.ring()
  }

  /** The session sealed under `name`, or null when missing, expired or unreadable. */
  protected abstract readName(name: string, now: number): Promise<Found | null>
  protected abstract removeName(name: string): Promise<boolean>

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
    // No part of the id in the message: errors end up in logs, and an id is a credential.
    assertFits(json, this.maxBytes, 'session record')
    const name = storageName(session.id)
    return { name, context: this.context(name), json }
  }

  protected override checkWritable(session: Session): void {
    this.sealable(session)
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
