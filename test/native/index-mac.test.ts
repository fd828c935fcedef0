// The key that names identity indexes: HKDF with scope 'store-index' (SPEC §3 inputs, §8), then
// HMAC-SHA256 of the identity's UTF-8 bytes. Checked against node:crypto computing the same
// thing from the specification, so another implementation can find the same index names.
import { createHmac, hkdfSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'

import { native } from '../../lib/core/native'

const SECRET = 'an index-mac test secret of 32+ chars'
const OLDER = 'an older index-mac secret of 32+ chars'

function expected(secret: string, namespace: string, identity: string): string {
  const info = Buffer.from(`store-index\0${namespace}\0\0`)
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(secret), Buffer.from('sealed-session/v1'), info, 32))
  return createHmac('sha256', key).update(identity, 'utf8').digest('hex')
}

describe("KeyRing scope 'store-index' and mac()", () => {
  it('is HMAC-SHA256 under the HKDF key of scope store-index, one name per key', () => {
    const ring = new native.KeyRing({
      scope: 'store-index',
      name: 'default',
      ikms: [Buffer.from(SECRET), Buffer.from(OLDER)],
    })
    for (const identity of ['alice', 'alice@example.com', 'ébène 本 😀', ' ']) {
      expect(ring.mac(identity)).toBe(expected(SECRET, 'default', identity))
      expect(ring.mac(identity, 0)).toBe(expected(SECRET, 'default', identity))
      expect(ring.mac(identity, 1)).toBe(expected(OLDER, 'default', identity))
    }
    expect(ring.mac('alice')).not.toBe(ring.mac('Alice'))
    const other = new native.KeyRing({ scope: 'store-index', name: 'other', ikms: [Buffer.from(SECRET)] })
    expect(other.mac('alice')).toBe(expected(SECRET, 'other', 'alice'))
    expect(other.mac('alice')).not.toBe(ring.mac('alice'))
  })

  it('differs from the sealing key of the same secret and namespace', () => {
    const sealing = new native.KeyRing({ scope: 'store', name: 'default', ikms: [Buffer.from(SECRET)] })
    const index = new native.KeyRing({ scope: 'store-index', name: 'default', ikms: [Buffer.from(SECRET)] })
    expect(sealing.keyIds[0]).not.toBe(index.keyIds[0])
    expect(sealing.mac('alice')).not.toBe(index.mac('alice'))
  })

  it('refuses bad arguments without crashing, and a closed ring', () => {
    expect(() => new native.KeyRing({ scope: 'index' as never, name: 'n', ikms: [Buffer.from(SECRET)] })).toThrow(
      RangeError,
    )
    const ring = new native.KeyRing({ scope: 'store-index', name: 'n', ikms: [Buffer.from(SECRET)] })
    expect(() => ring.mac(42 as never)).toThrow(TypeError)
    expect(() => ring.mac('a', 1)).toThrow(RangeError)
    expect(() => ring.mac('a', -1)).toThrow()
    expect(() => ring.mac('a', 'x' as never)).toThrow(TypeError)
    ring.close()
    expect(() => ring.mac('a')).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED' }))
  })
})
