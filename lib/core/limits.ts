// The envelope size cap, shared by every writer: nothing is written that the reader would
// refuse (and, for the manager, delete) as too large.
import { SessionTooLargeError } from './errors'
import { native } from './native'
import { describe } from './validate'

export function checkMaxBytes(value: unknown): number {
  if (value === undefined) return native.DEFAULT_MAX_BYTES
  if (typeof value !== 'number') throw new TypeError(`options.maxBytes must be a number, got ${describe(value)}`)
  if (!Number.isInteger(value) || value < 1024 || value > 2 ** 31) {
    throw new RangeError(`options.maxBytes must be an integer from 1024 to 2^31, got ${describe(value)}`)
  }
  return value
}

/** Throws SessionTooLargeError when `json` sealed would exceed `maxBytes`; `how` (in the message's
 *  parentheses) says how to raise the cap. */
export function assertFits(json: string, maxBytes: number, what: string, how = 'options.maxBytes'): void {
  if (Buffer.byteLength(json) + native.MIN_ENVELOPE_SIZE > maxBytes) {
    throw new SessionTooLargeError(`${what} is over the ${maxBytes}-byte cap (${how})`, 'ERR_SESSION_TOO_LARGE')
  }
}
