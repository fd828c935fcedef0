// What the stores that keep sealed envelopes (files, Redis) share on top of BaseSessionStore:
// option checks, the key rings (sealing, and naming identity indexes), a session's context, the
// size cap, and how an unreadable envelope is reported. A subclass supplies where envelopes live:
// the record and index primitives of BaseSessionStore, dump, purgeExpired, close.
import { BaseSessionStore, recordEpoch, recordVersion, type StoredRecord } from './base-store'
import { SessionClosedError, UNREADABLE_CODES, toSessionError } from '../core/errors'
import { makeKeyRing, type KeyOptions } from '../core/keys'
import { assertFits, checkMaxBytes } from '../core/limits'
import { checkLogger, type Logger } from '../core/logger'
import type { NativeKeyRing } from '../core/native'
import { checkNamespace } from '../core/namespace'
import { sessionFromParsed, type Session } from '../session/session'
import { resolveTiming, TIMING_KEYS, type StoreTimingOptions } from './store'

export type { StoredRecord } from './base-store'

export interface SealedStoreOptions extends StoreTimingOptions, KeyOptions {
  /** Part of the key derivation and of each envelope's context (default 'default'). */
  namespace?: string
  /** Size cap of one envelope in bytes (default 1 MiB): bigger sessions are refused on save. */
  maxBytes?: number
  logger?: Logger
}

/** The option keys every sealed store takes; a subclass adds its own. */
export const SEALED_KEYS: readonly string[] = [
  ...TIMING_KEYS,
  'namespace',
  'maxBytes',
  'logger',
  'secret',
  'secrets',
  'bindToBoot',
]

/** How many identities' index names a store keeps computed. */
const INDEX_NAMES_KEPT = 4096

export abstract class SealedStore extends BaseSessionStore {
  readonly namespace: string
  readonly maxBytes: number
  protected readonly logger: Logger
  #ring: NativeKeyRing | null
  // Derived like the sealing key with scope 'store-index': index names are HMACs under it.
  #indexRing: NativeKeyRing | null
  // Identity -> its index names: a logged-in request names its index several times (mark read,
  // write, refresh), each an HMAC per key otherwise. Bounded; cleared with the keys.
  readonly #indexNames = new Map<string, string[]>()

  protected constructor(options: SealedStoreOptions) {
    super(resolveTiming(options))
    this.namespace = checkNamespace(options.namespace)
    this.maxBytes = checkMaxBytes(options.maxBytes)
    this.logger = checkLogger(options.logger)
    this.#ring = makeKeyRing('store', this.namespace, options)
    try {
      this.#indexRing = makeKeyRing('store-index', this.namespace, options)
    } catch (err) {
      this.#ring.close()
      throw err
    }
  }

  protected assertOpen(): void {
    this.ring()
  }

  /** The key ring, or SessionClosedError once closed. */
  protected ring(): NativeKeyRing {
    if (this.#ring === null) throw new SessionClosedError(`${this.constructor.name} is closed`, 'ERR_SESSION_CLOSED')
    return this.#ring
  }

  /** Wipes the keys; later calls reject with SessionClosedError. */
  protected closeRing(): void {
    this.#ring?.close()
    this.#ring = null
    this.#indexRing?.close()
    this.#indexRing = null
    this.#indexNames.clear()
  }

  /** One name per key while keys rotate (current first): entries written under an older key stay findable. */
  protected override indexNames(identity: string): string[] {
    this.ring()
    let names = this.#indexNames.get(identity)
    if (names !== undefined) return names
    const ring = this.#indexRing as NativeKeyRing
    names = ring.keyIds.map((_, i) => ring.mac(identity, i))
    if (this.#indexNames.size >= INDEX_NAMES_KEPT) this.#indexNames.clear()
    this.#indexNames.set(identity, names)
    return names
  }

  /** The AAD context of the envelope stored under `name` (a storage name, or an index's file/key name). */
  protected context(name: string): string {
    return `store:${this.namespace}:${name}`
  }

  protected override checkRecordSize(json: string, _session: Session): void {
    // No part of the id in the message: errors end up in logs, and an id is a credential.
    assertFits(json, this.maxBytes, 'session record')
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

  /** The opened record as a stored session, or null (logged) when it is not one. */
  protected decode(plaintext: string, keyIndex: number): StoredRecord | null {
    try {
      const record: unknown = JSON.parse(plaintext)
      const version = recordVersion(record)
      if (version === null) throw new TypeError('bad version')
      return { session: sessionFromParsed(record), version, keyIndex, epoch: recordEpoch(record) }
    } catch {
      this.logger.warn('session envelope holds no valid record')
      return null
    }
  }
}
