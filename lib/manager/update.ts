// SessionManager.update: what its function may return, and the record that results.
import { copyJson, isPlainObject, type JsonObject } from '../core/json'
import { checkNonNegativeMs, checkOptionKeys, checkTtl, describe, laterBy } from '../core/validate'
import { SessionData } from './session-data'

/** What `update`'s function returns to change the active session: each field given replaces it. */
export interface SessionUpdate {
  /** The new data object (replaces the old one whole). */
  data?: Record<string, unknown>
  userName?: string | null
  /** A new lifetime from now, in ms. */
  ttl?: number
}

export interface UpdateOptions {
  /**
   * How long to wait for the lock, in ms (default: as long as the holder needs). Past it,
   * `SessionLockTimeoutError` and nothing is changed. Bounds the wait, not `fn` itself.
   */
  timeout?: number
}

const UPDATE_KEYS: ReadonlySet<string> = new Set(['data', 'userName', 'ttl'])

const UPDATE_OPTION_KEYS: ReadonlySet<string> = new Set(['timeout'])

/** The lock timeout in ms, or undefined to wait as long as the holder needs. */
export function checkUpdateOptions(options: unknown): number | undefined {
  checkOptionKeys(options, UPDATE_OPTION_KEYS, 'update')
  const timeout = (options as UpdateOptions).timeout
  if (timeout === undefined || timeout === Number.POSITIVE_INFINITY) return undefined
  return checkNonNegativeMs('options.timeout', timeout)
}

/** The record after fn's change; a TypeError/RangeError for anything that is not a change. */
export function applyUpdate(current: SessionData, change: unknown): SessionData {
  if (!isPlainObject(change)) {
    throw new TypeError(`update's fn must return { data?, userName?, ttl? } or null, got ${describe(change)}`)
  }
  for (const key of Object.keys(change)) {
    if (!UPDATE_KEYS.has(key)) throw new TypeError(`${key} is not a field update's fn can change (data, userName, ttl)`)
  }
  const c = change as SessionUpdate
  const record = { ...current.toJSON() }
  if (c.userName !== undefined) {
    if (c.userName !== null && typeof c.userName !== 'string') {
      throw new TypeError(`userName returned by update's fn must be a string or null, got ${describe(c.userName)}`)
    }
    record.userName = c.userName
  }
  if (c.data !== undefined) {
    if (!isPlainObject(c.data))
      throw new TypeError(`data returned by update's fn must be a plain object, got ${describe(c.data)}`)
    record.data = copyJson(c.data, 'data') as JsonObject
  }
  if (c.ttl !== undefined) {
    const ttl = checkTtl('ttl returned by update', c.ttl)
    record.expiresAt = new Date(laterBy(Date.now(), ttl, 'ttl returned by update')).toISOString()
  }
  return new SessionData(record)
}
