// The Redis value layout: a 16-byte version header before the envelope, read without strings or
// regexes; a 0.1 value (bare envelope) reads as version 0; anything else is not ours.
import { describe, expect, it } from 'vitest'
import { HEADER_BYTES, expectedPrefix, parseValue, versionHeader } from '../../lib/stores/redis-value'

const envelope = Buffer.concat([Buffer.from('SEAL'), Buffer.alloc(60, 7)])

describe('Redis value layout', () => {
  it('round-trips versions, up to 2^53 - 1', () => {
    for (const v of [0, 1, 15, 16, 255, 123_456_789, Number.MAX_SAFE_INTEGER]) {
      const h = versionHeader(v)
      expect(h).toHaveLength(HEADER_BYTES)
      const parsed = parseValue(Buffer.concat([Buffer.from(h, 'latin1'), envelope]))!
      expect(parsed.version).toBe(v)
      expect(parsed.legacy).toBe(false)
      expect(parsed.envelope.equals(envelope)).toBe(true)
      expect(expectedPrefix(v, false)).toBe(h)
    }
  })

  it('a bare 0.1 envelope is version 0, legacy', () => {
    expect(parseValue(envelope)).toEqual({ version: 0, legacy: true, envelope })
    expect(expectedPrefix(0, true)).toBe('SEAL')
  })

  it('anything else is not ours', () => {
    for (const bad of [
      '',
      'sv',
      'sv0000000000000g' + 'SEAL....',
      'SV00000000000001SEAL',
      'x'.repeat(100),
      'sv00000000000001',
    ]) {
      expect(parseValue(Buffer.from(bad, 'latin1')), bad).toBeNull()
    }
  })
})
