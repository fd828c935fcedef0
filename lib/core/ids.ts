// Session ids and storage names. An id is the only secret a cookie carries, so it is 256 random
// bits; ids arriving from outside (cookies) are checked against this exact form before any store
// I/O. A store also accepts ids an application chose itself (any well-formed string of at most
// 256 characters): it never puts them where they can be listed, only their storage name.
import * as crypto from 'node:crypto'
import { createHash, randomBytes } from 'node:crypto'
import { describe } from './validate'

const ID_BYTES = 32
/** The longest id `new Session(id, …)` and the stores accept, in UTF-16 code units. */
export const MAX_SESSION_ID_LENGTH = 256

// 32 bytes are 256 bits; 43 base64url chars hold 258, so the last char carries 4 data bits and
// 2 zero bits: only the 16 characters whose low two bits are zero can end a canonical id.
const SESSION_ID = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/
// With the u flag, this class matches only surrogates that are not part of a pair.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

/** A fresh session id: 32 bytes from the CSPRNG, base64url without padding (43 chars). */
export function generateSessionId(): string {
  return randomBytes(ID_BYTES).toString('base64url')
}

/** True only for strings that generateSessionId could have returned: the strict check for ids
 *  that arrive from outside (cookies). Cheap, no I/O. */
export function isValidSessionId(value: unknown): value is string {
  return typeof value === 'string' && SESSION_ID.test(value)
}

/** True when `value` holds a surrogate that is not part of a pair: such a string is not
 *  well-formed UTF-16, and its UTF-8 encoding is the same as with U+FFFD in that place. */
export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value)
}

/** True for any id a store accepts: a non-empty string of at most 256 characters without lone
 *  surrogates (those would encode to the same UTF-8 bytes, so two ids would share a name). */
export function isStoreSessionId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= MAX_SESSION_ID_LENGTH &&
    !LONE_SURROGATE.test(value)
  )
}

/** The name a store files a session under: lowercase hex SHA-256 of the id's UTF-8 bytes, so
 *  no listing or path ever holds a live id (for a generated id, UTF-8 and ASCII are the same). */
export function storageName(id: string): string {
  if (typeof id !== 'string') throw new TypeError(`id must be a string, got ${describe(id)}`)
  if (!isStoreSessionId(id)) {
    throw new RangeError(
      `id must be a session id (a non-empty well-formed string of at most ${MAX_SESSION_ID_LENGTH} characters), got ${describe(id)}`,
    )
  }
  return sha256Hex(id)
}

const STORAGE_NAME = /^[0-9a-f]{64}$/

/** True for a string of the form storageName returns (64 lowercase hex digits): how a store
 *  tells its session entries from anything else in a listing. */
export function isStorageName(value: string): boolean {
  return STORAGE_NAME.test(value)
}

// crypto.hash (Node >= 20.12) is one call with no Hash object: a third of the cost on every read.
const sha256Hex: (s: string) => string =
  typeof crypto.hash === 'function'
    ? (s) => crypto.hash('sha256', s, 'hex')
    : (s) => createHash('sha256').update(s, 'utf8').digest('hex')
