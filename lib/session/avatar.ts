// Avatar: who the session belongs to (identity), what they may do (tags), and per-user data.
// Built from an auth snapshot, whose shape depends on the identity provider, so several common
// claim names are read; explicit arguments are checked strictly since they come from our caller.
import { Bag, type BagJSON } from './bag'
import { isPlainObject } from '../core/json'
import type { inspect, InspectOptionsStylized } from 'node:util'
import { custom, render } from '../core/inspect'
import { describe } from '../core/validate'

export const ANONYMOUS = 'anonymous'

/** An avatar as stored in a session record. */
export interface AvatarRecord {
  identity: string
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

// Set only while a stored record is rebuilt (readStored): a session stored under other caps
// must still read back.
let storedRecord = false

/** Runs `build` with the tag caps off: for records read back from a store or a dump. */
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
  readonly #identity: string
  readonly #tags: readonly string[]
  #data = new Bag()

  /** With `auth`, identity and tags come from it and the first two arguments are ignored. */
  constructor(identity: string = ANONYMOUS, tags: readonly string[] = [], auth?: Readonly<Record<string, unknown>> | null) {
    checkIdentity('identity', identity)
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
      this.#identity = identity
      this.#tags = Object.freeze(normaliseTags(tags))
    }
    if (!storedRecord) checkTagCaps(this.#tags, auth ? 'auth tags' : 'tags')
  }

  static readonly MAX_TAGS = MAX_TAGS
  static readonly MAX_TAG_LENGTH = MAX_TAG_LENGTH

  static fromJSON(record: unknown): Avatar {
    if (!isPlainObject(record)) throw new TypeError(`avatar record must be a plain object, got ${describe(record)}`)
    const { identity, tags, data } = record
    if (typeof identity !== 'string') throw new TypeError(`avatar.identity must be a string, got ${describe(identity)}`)
    if (!Array.isArray(tags)) throw new TypeError(`avatar.tags must be an array of strings, got ${describe(tags)}`)
    const avatar = readStored(() => new Avatar(identity, tags as unknown[] as string[]))
    if (data !== undefined) {
      if (!isPlainObject(data)) throw new TypeError(`avatar.data must be a plain object, got ${describe(data)}`)
      avatar.#data = Bag.fromJSON(data)
    }
    return avatar
  }

  get identity(): string {
    return this.#identity
  }

  /** A frozen copy: tags change only by building a new Avatar. */
  get tags(): readonly string[] {
    return this.#tags
  }

  get data(): Bag {
    return this.#data
  }

  get isAnonymous(): boolean {
    return this.#identity === ANONYMOUS
  }

  hasTag(tag: string): boolean {
    if (typeof tag !== 'string') throw new TypeError(`tag must be a string, got ${describe(tag)}`)
    return this.#tags.includes(tag)
  }

  /** console.log shows identity, tags and data. */
  [custom](depth: number, options: InspectOptionsStylized, fn: typeof inspect): string {
    return render('Avatar', { identity: this.#identity, tags: [...this.#tags], data: this.#data.toJSON() }, depth, options, fn)
  }

  toJSON(): AvatarRecord {
    return { identity: this.#identity, tags: [...this.#tags], data: this.#data.toJSON() }
  }
}

function checkIdentity(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describe(value)}`)
  if (value.trim() === '') throw new RangeError(`${name} must not be empty`)
}

function identityFrom(auth: Readonly<Record<string, unknown>>): string {
  for (const key of IDENTITY_KEYS) {
    const value = own(auth, key)
    if (typeof value === 'string' && value.trim() !== '') return value
  }
  return ANONYMOUS
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
