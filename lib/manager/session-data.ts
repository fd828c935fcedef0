// The record SessionManager keeps: one login. Times are ISO-8601 strings, as in the seed.
import { copyJson, isPlainObject, type JsonObject } from '../core/json'
import type { inspect, InspectOptionsStylized } from 'node:util'
import { custom, render } from '../core/inspect'
import { describe } from '../core/validate'

export interface SessionDataRecord {
  userId: string
  userName: string | null
  eid: string
  createdAt: string
  expiresAt: string
  data: JsonObject
}

export class SessionData implements SessionDataRecord {
  readonly userId: string
  readonly userName: string | null
  readonly eid: string
  readonly createdAt: string
  readonly expiresAt: string
  readonly data: JsonObject

  /** @param trustedJson the record is fresh JSON.parse output: JSON values already, no copy needed. */
  constructor(record: SessionDataRecord, trustedJson = false) {
    const r = record as unknown as Record<string, unknown>
    if (!isPlainObject(record)) throw new TypeError(`session record must be an object, got ${describe(record)}`)
    for (const key of ['userId', 'eid', 'createdAt', 'expiresAt'] as const) {
      if (typeof r[key] !== 'string')
        throw new TypeError(`session record ${key} must be a string, got ${describe(r[key])}`)
    }
    if (r.userName !== null && typeof r.userName !== 'string') {
      throw new TypeError(`session record userName must be a string or null, got ${describe(r.userName)}`)
    }
    for (const key of ['createdAt', 'expiresAt'] as const) {
      if (Number.isNaN(Date.parse(r[key] as string)))
        throw new RangeError(`session record ${key} is not an ISO-8601 time`)
    }
    const data = r.data === undefined ? {} : r.data
    if (!isPlainObject(data)) throw new TypeError(`session record data must be a plain object, got ${describe(data)}`)
    this.userId = record.userId
    this.userName = record.userName
    this.eid = record.eid
    this.createdAt = record.createdAt
    this.expiresAt = record.expiresAt
    // A parsed record is ours alone and JSON by construction: freezing it is enough (the hot
    // read path); anything else is validated and copied so the caller cannot change it later.
    this.data = (trustedJson ? deepFreeze(data) : copyJson(data, 'data', true)) as JsonObject
    Object.freeze(this)
  }

  /** Expiry as ms since the epoch. */
  get expiresAtMs(): number {
    return Date.parse(this.expiresAt)
  }

  /** console.log shows the record (times are ISO strings already). */
  [custom](depth: number, options: InspectOptionsStylized, fn: typeof inspect): string {
    return render('SessionData', this.toJSON(), depth, options, fn)
  }

  toJSON(): SessionDataRecord {
    return {
      userId: this.userId,
      userName: this.userName,
      eid: this.eid,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
      data: this.data,
    }
  }

  static fromJSON(record: unknown): SessionData {
    return new SessionData(record as SessionDataRecord)
  }

  /** A record from JSON.parse of a sealed session: checked, frozen, not copied. */
  static fromParsed(record: unknown): SessionData {
    return new SessionData(record as SessionDataRecord, true)
  }
}

function deepFreeze(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}
