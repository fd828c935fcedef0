import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateSessionId, isValidSessionId, storageName } from '../../lib/core/ids'

interface StoreVector {
  storageId: string
  storageName: string
}
const vectors = JSON.parse(readFileSync(path.join(__dirname, '..', 'vectors', 'envelope-v1.json'), 'utf8')) as {
  envelopes: Array<Partial<StoreVector>>
}
const storeVectors = vectors.envelopes.filter((v): v is StoreVector => typeof v.storageId === 'string')

describe('generateSessionId', () => {
  it('is 43 base64url characters that decode to 32 bytes', () => {
    const id = generateSessionId()
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const bytes = Buffer.from(id, 'base64url')
    expect(bytes.length).toBe(32)
    expect(bytes.toString('base64url')).toBe(id)
  })

  it('never repeats and always passes isValidSessionId', () => {
    const ids = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      const id = generateSessionId()
      expect(isValidSessionId(id)).toBe(true)
      ids.add(id)
    }
    expect(ids.size).toBe(2000)
  })

  it('uses every one of the 16 possible final characters (the bits are random)', () => {
    const last = new Set<string>()
    for (let i = 0; i < 2000 && last.size < 16; i++) last.add(generateSessionId().slice(-1))
    expect([...last].sort().join('')).toBe([...'AEIMQUYcgkosw048'].sort().join(''))
  })
})

describe('isValidSessionId', () => {
  const good = generateSessionId()

  it('accepts a generated id and the vectors’ ids', () => {
    expect(isValidSessionId(good)).toBe(true)
    expect(storeVectors.length).toBeGreaterThan(0)
    for (const v of storeVectors) expect(isValidSessionId(v.storageId)).toBe(true)
  })

  it('rejects anything generateSessionId cannot return', () => {
    const bad: unknown[] = [
      '',
      good.slice(0, 42),
      good + 'A',
      good.slice(0, 42) + '+',
      good.slice(0, 42) + '/',
      good.slice(0, 41) + '=' + good.slice(-1),
      good.slice(0, 20) + '.' + good.slice(21),
      good.slice(0, 20) + ' ' + good.slice(21),
      good.slice(0, 20) + '\0' + good.slice(21),
      good.slice(0, 20) + 'é' + good.slice(21),
      good.slice(0, 42) + 'B', // non-canonical: the two padding bits would be set
      good.slice(0, 42) + 'z',
      '../' + good.slice(3),
      '/etc/passwd',
      good + '\n',
      'a'.repeat(10_000),
      null,
      undefined,
      42,
      {},
      [good],
      Buffer.from(good),
    ]
    for (const value of bad) expect(isValidSessionId(value), String(value).slice(0, 50)).toBe(false)
  })
})

describe('storageName', () => {
  it('matches the known-answer vectors', () => {
    for (const v of storeVectors) expect(storageName(v.storageId)).toBe(v.storageName)
  })

  it('is 64 lowercase hex chars, different per id, and never contains the id', () => {
    const a = generateSessionId()
    const b = generateSessionId()
    expect(storageName(a)).toMatch(/^[0-9a-f]{64}$/)
    expect(storageName(a)).toBe(storageName(a))
    expect(storageName(a)).not.toBe(storageName(b))
    expect(storageName(a)).not.toContain(a)
  })

  it('hashes the UTF-8 bytes of any id up to 256 characters', () => {
    const sha = (s: string) => createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex')
    for (const id of ['sid-1', '../x', 'é'.repeat(256), '本😀']) expect(storageName(id)).toBe(sha(id))
    // Two ids that differ only beyond ASCII never share a name.
    expect(storageName('é')).not.toBe(storageName('è'))
  })

  it('refuses strings that are not store ids', () => {
    expect(() => storageName('')).toThrow(RangeError)
    expect(() => storageName('x'.repeat(257))).toThrow(RangeError)
    // Lone surrogates would encode to the same bytes (U+FFFD): two ids, one name.
    expect(() => storageName('\uD800')).toThrow(RangeError)
    expect(() => storageName(5 as never)).toThrow(TypeError) // wrong type: TypeError, as everywhere
  })
})
