// Avatar: who the session belongs to (identity), what they may do (tags), and per-user data.
// Built from an auth snapshot, whose shape depends on the identity provider, so several common
// claim names are read. An identity is what revocation finds a user's sessions by, so a claim it
// could not be found by (an object, a lone surrogate) is refused rather than made anonymous.
import { Bag, type BagJSON } from './bag'
import { isPlainObject } from '../core/json'
import type { inspect, InspectOptionsStylized } from 'node:util'
import { custom, render } from '../core/inspect'
import { describe } from '../core/validate'
import { hasLoneSurrogate } from '../core/ids'

/** What `identity` reads for an anonymous avatar (a user may also be named so: see isAnonymous). */
export const ANONYMOUS = 'anonymous'

/** An avatar as stored in a session record. */
export interface AvatarRecord {
  identity: string
  /** `false` for a user named "anonymous". Absent, identity 'anonymous' is the anonymous avatar
   *  (as records written before the marker say), any other identity a named user. */
  anonymous?: boolean
  tags: string[]
  data: BagJSON
}

// Claim names, in order of preference: ours, then OIDC/JWT `sub`, then common user fields.
const IDENTITY_KEYS = ['identity', 'sub', 'user', 'username'] as const

/** Caps on what an avatar may carry: every read of a session rebuilds its tags, so an auth with
 *  tens of thousands of roles would cost every request. Checked where tags come in (new Avatar,
 *  create, attachAvatar), never when a stored session is read back. */
export const MAX_TAGS = 1000
export const MAX_TAG_LENGTH = 256

// Set only while a stored record is rebuilt (readStored): a session stored under other caps or
// other identity rules must still read back.
let storedRecord = false

/** Runs `build` with the tag caps and the stricter identity checks off: for records read back
 *  from a store or a dump. */
export function readStored<T>(build: () => T): T {
  const outer = storedRecord
  storedRecord = true
  try {
    return build()
  } finally {
    storedRecord = outer
  }
}

export class Avatar {
  /** null: anonymous (no identity claim). */
  readonly #identity: string | null
  readonly #tags: readonly string[]
  #data = new Bag()

  /**
   * Without an identity the avatar is anonymous; any identity given, "anonymous" included, names
   * a user. A finite number is taken as its decimal string. With `auth`, identity and tags come
   * from it (the same rules, per claim) and the first two arguments are ignored.
   */
  constructor(
    identity?: string | number,
    tags: readonly string[] = [],
    auth?: Readonly<Record<string, unknown>> | null,
  ) {
    const named = identity === undefined ? null : identityValue('identity', identity)
    if (!Array.isArray(tags)) throw new TypeError(`tags must be an array of strings, got ${describe(tags)}`)
    tags.forEach((tag: unknown, i) => {
      if (typeof tag !== 'string') throw new TypeError(`tags[${i}] must be a string, got ${describe(tag)}`)
    })
    if (auth !== undefined && auth !== null && !isPlainObject(auth)) {
      throw new TypeError(`auth must be a plain object or null, got ${describe(auth)}`)
    }
    if (auth) {
      this.#identity = identityFrom(auth)
      this.#tags = Object.freeze(tagsFrom(auth))
    } else {
      this.#identity = named
      this.#tags = Object.freeze(normaliseTags(tags))
    }
    if (!storedRecord) checkTagCaps(this.#tags, auth ? 'auth tags' : 'tags')
  }

  static readonly MAX_TAGS = MAX_TAGS
  static readonly MAX_TAG_LENGTH = MAX_TAG_LENGTH

  static fromJSON(record: unknown): Avatar {
    if (!isPlainObject(record)) throw new TypeError(`avatar record must be a plain object, got ${describe(record)}`)
    const { identity, anonymous, tags, data } = record
    if (typeof identity !== 'string') throw new TypeError(`avatar.identity must be a string, got ${describe(identity)}`)
    if (anonymous !== undefined && typeof anonymous !== 'boolean') {
      throw new TypeError(`avatar.anonymous must be a boolean, got ${describe(anonymous)}`)
    }
    const isAnonymous = anonymous ?? identity === ANONYMOUS
    if (isAnonymous && identity !== ANONYMOUS) {
      throw new TypeError(`avatar.identity of an anonymous avatar must be '${ANONYMOUS}', got ${describe(identity)}`)
    }
    if (!Array.isArray(tags)) throw new TypeError(`avatar.tags must be an array of strings, got ${describe(tags)}`)
    const avatar = readStored(() => new Avatar(isAnonymous ? undefined : identity, tags as unknown[] as string[]))
    if (data !== undefined) {
      if (!isPlainObject(data)) throw new TypeError(`avatar.data must be a plain object, got ${describe(data)}`)
      avatar.#data = Bag.fromJSON(data)
    }
    return avatar
  }

  /** The user's identity; 'anonymous' for an anonymous avatar. */
  get identity(): string {
    return this.#identity ?? ANONYMOUS
  }

  /** A frozen copy: tags change only by building a new Avatar. */
  get tags(): readonly string[] {
    return this.#tags
  }

  get data(): Bag {
    return this.#data
  }

  /** True only when there is no identity: a user named "anonymous" is not anonymous. */
  get isAnonymous(): boolean {
    return this.#identity === null
  }

  hasTag(tag: string): boolean {
    if (typeof tag !== 'string') throw new TypeError(`tag must be a string, got ${describe(tag)}`)
    return this.#tags.includes(tag)
  }

  /** console.log shows identity, tags and data. */
  [custom](depth: number, options: InspectOptionsStylized, fn: typeof inspect): string {
    return render(
      'Avatar',
      { identity: this.identity, tags: [...this.#tags], data: this.#data.toJSON() },
      depth,
      options,
      fn,
    )
  }

  /** The record (also what JSON loggers get): it holds what inspect shows, nothing secret. */
  toJSON(): AvatarRecord {
    const identity = this.identity
    const tags = [...this.#tags]
    const data = this.#data.toJSON()
    // Only a user named "anonymous" needs the marker; every other record reads as it always has.
    return this.#identity === ANONYMOUS ? { identity, anonymous: false, tags, data } : { identity, tags, data }
  }
}

/** An identity as the string it is indexed under: a finite number becomes its decimal string,
 *  anything else must be a non-blank string without lone surrogates (two such strings encode to
 *  the same UTF-8 bytes, so they would share one index). */
function identityValue(name: string, value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new TypeError(`${name} must be a string or a finite number, got ${describe(value)}`)
    return String(value)
  }
  if (typeof value !== 'string')
    throw new TypeError(`${name} must be a string or a finite number, got ${describe(value)}`)
  if (value.trim() === '') throw new RangeError(`${name} must not be empty`)
  if (!storedRecord) checkWellFormed(name, value)
  return value
}

/** TypeError when `value` has a lone surrogate (checked where identities come in, not on reads). */
export function checkWellFormed(name: string, value: string): void {
  if (hasLoneSurrogate(value)) {
    throw new TypeError(`${name} must be well-formed UTF-16 (it has a lone surrogate), got ${describe(value)}`)
  }
}

/** The first identity claim present; null (anonymous) when there is none. */
function identityFrom(auth: Readonly<Record<string, unknown>>): string | null {
  for (const key of IDENTITY_KEYS) {
    const value = own(auth, key)
    if (value === undefined) continue
    if (storedRecord) {
      // A snapshot stored under older rules still reads back: claims these rules refuse are
      // skipped as they were then; a number reads as its decimal string, as it does on create.
      if (typeof value === 'number' && Number.isFinite(value)) return String(value)
      if (typeof value === 'string' && value.trim() !== '') return value
      continue
    }
    return identityValue(`auth.${key}`, value)
  }
  return null
}

function tagsFrom(auth: Readonly<Record<string, unknown>>): string[] {
  return parseTags(own(auth, 'tags')) ?? parseTags(own(auth, 'roles')) ?? []
}

/** Own properties only: a claim must come from the snapshot, never from a polluted prototype. */
function own(obj: Readonly<Record<string, unknown>>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}

/** An array or a comma list; null when the claim is absent or of another type. Providers put
 *  odd things in claims, so non-string entries are skipped rather than failing the login. */
function parseTags(value: unknown): string[] | null {
  if (typeof value === 'string') return normaliseTags(value.split(','))
  if (Array.isArray(value)) return normaliseTags(value)
  return null
}

/** Trimmed, non-empty, first occurrence only. A Set keeps it linear: a record with many roles
 *  is rebuilt on every read. */
function normaliseTags(tags: readonly unknown[]): string[] {
  const seen = new Set<string>()
  for (const raw of tags) {
    if (typeof raw !== 'string') continue // only claims from auth can hold other types
    const tag = raw.trim()
    if (tag !== '') seen.add(tag)
  }
  return [...seen]
}

/** RangeError naming the cap an avatar's tags go over (called where tags come in, not on reads). */
export function checkTagCaps(tags: readonly string[], where: string): void {
  if (tags.length > MAX_TAGS) {
    throw new RangeError(`${where}: ${tags.length} tags, over the cap of ${MAX_TAGS} tags per avatar (Avatar.MAX_TAGS)`)
  }
  for (let i = 0; i < tags.length; i++) {
    if (tags[i].length > MAX_TAG_LENGTH) {
      throw new RangeError(
        `${where}[${i}] is ${tags[i].length} characters, over the cap of ${MAX_TAG_LENGTH} characters per tag (Avatar.MAX_TAG_LENGTH)`,
      )
    }
  }
}
