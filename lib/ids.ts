// Session ids and storage names. An id is the only secret a cookie carries, so it is 256 random
// bits; ids arriving from outside are checked against this exact form before any store I/O.
import { createHash, randomBytes } from 'node:crypto'
import { describe } from './validate'

const ID_BYTES = 32

// 32 bytes are 256 bits; 43 base64url chars hold 258, so the last char carries 4 data bits and
// 2 zero bits: only the 16 characters whose low two bits are zero can end a canonical id.
const SESSION_ID = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/

/** A fresh session id: 32 bytes from the CSPRNG, base64url without padding (43 chars). */
export function generateSessionId(): string {
  return randomBytes(ID_BYTES).toString('base64url')
}

/** True only for strings that generateSessionId could have returned. Cheap, no I/O. */
export function isValidSessionId(value: unknown): value is string {
  return typeof value === 'string' && SESSION_ID.test(value)
}

/** The name a store files a session under: lowercase hex SHA-256 of the id's ASCII bytes,
 *  so no listing or path ever holds a live id. Only valid ids have one: 'ascii' would fold
 *  other characters together and let two different ids share a file. */
export function storageName(id: string): string {
  if (!isValidSessionId(id)) throw new RangeError(`id must be a session id (43 base64url characters), got ${describe(id)}`)
  return createHash('sha256').update(id, 'ascii').digest('hex')
}
