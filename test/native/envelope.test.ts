// The native envelope and key ring against the known-answer vectors and node:crypto.
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'

import { native, type NativeKeyRing } from '../../lib/core/native'
import { hkdfKey, jsOpen, jsSeal, keyId } from '../helpers/envelope-js'
import { needs } from '../helpers/ci'

interface KeyVector {
  note: string
  ikm: string
  scope: 'manager' | 'store'
  name: string
  uid: string
  bootId: string
  infoHex: string
  keyHex: string
  keyIdHex: string
}
interface EnvelopeVector {
  note: string
  keyHex: string
  nonceHex: string
  createdAt: number
  expiresAt: number
  flags?: number
  context: string
  plaintext: string
  envelopeHex: string
}
const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'vectors/envelope-v1.json'), 'utf8')) as {
  keys: KeyVector[]
  envelopes: EnvelopeVector[]
}

function ringFor(k: KeyVector): NativeKeyRing {
  return new native.KeyRing({ scope: k.scope, name: k.name, ikms: [Buffer.from(k.ikm)], uid: k.uid, bootId: k.bootId })
}
// The envelope vectors name a key by its bytes; find the key vector that derives it.
function ringForKeyHex(keyHex: string): NativeKeyRing {
  const k = vectors.keys.find((kv) => kv.keyHex === keyHex)
  if (!k) throw new Error(`no key vector derives ${keyHex}`)
  return ringFor(k)
}
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

const MAX = native.DEFAULT_MAX_BYTES

describe('key derivation (docs/security.md#keys)', () => {
  it.each(vectors.keys)('derives the pinned key id: $note', (k) => {
    expect(ringFor(k).keyIds).toEqual([k.keyIdHex])
    // and node:crypto's HKDF with the same inputs gives the vector's key (the vector is honest)
    expect(hkdfKey(k.ikm, k.scope, k.name, k.uid, k.bootId).toString('hex')).toBe(k.keyHex)
  })

  it('a key derived in JavaScript opens what the native key ring sealed, and the reverse', () => {
    const ikm = crypto.randomBytes(32)
    const ring = new native.KeyRing({ scope: 'manager', name: 'app', ikms: [ikm], uid: '1000' })
    const key = hkdfKey(ikm, 'manager', 'app', '1000', '')
    const sealed = ring.seal('hello from C++', 'manager:app', 5, 6)
    expect(jsOpen(key, sealed, 'manager:app').toString()).toBe('hello from C++')
    const js = jsSeal({ key, plaintext: 'hello from JS', context: 'manager:app', createdAt: 1, expiresAt: 2 })
    expect(ring.open(js, 'manager:app', MAX).plaintext.toString()).toBe('hello from JS')
  })

  it('each input of the info changes the key', () => {
    const ikm = [Buffer.alloc(32, 7)]
    const base = { scope: 'store' as const, name: 'n', ikms: ikm, uid: '1', bootId: 'b' }
    const ids = new Set([
      new native.KeyRing(base).keyIds[0],
      new native.KeyRing({ ...base, scope: 'manager' }).keyIds[0],
      new native.KeyRing({ ...base, name: 'm' }).keyIds[0],
      new native.KeyRing({ ...base, uid: '2' }).keyIds[0],
      new native.KeyRing({ ...base, bootId: 'c' }).keyIds[0],
      new native.KeyRing({ ...base, ikms: [Buffer.alloc(32, 8)] }).keyIds[0],
    ])
    expect(ids.size).toBe(6)
  })

  const rawMachineId = fs.existsSync('/etc/machine-id') ? fs.readFileSync('/etc/machine-id', 'utf8').trim() : ''
  it.skipIf(!needs(/^[0-9a-f]{32}$/.test(rawMachineId), 'a valid /etc/machine-id'))(
    'the machine-bound ring uses /etc/machine-id and the euid',
    () => {
      const raw = rawMachineId
      expect(native.machineId()).toBe(raw)
      const machine = new native.KeyRing({ scope: 'manager', name: 'x', machine: true })
      const expected = keyId(hkdfKey(raw, 'manager', 'x', String(process.geteuid!()), ''))
      expect(machine.keyIds[0]).toBe(expected.toString('hex'))
    },
  )
})

describe('envelope v1 known answers (docs/security.md#the-envelope-format-v1)', () => {
  it.each(vectors.envelopes)('seals exactly the vector and opens it: $note', (v) => {
    const ring = ringForKeyHex(v.keyHex)
    const sealed = ring.seal(v.plaintext, v.context, v.createdAt, v.expiresAt, Buffer.from(v.nonceHex, 'hex'))
    expect(sealed.toString('hex')).toBe(v.envelopeHex)
    const opened = ring.open(Buffer.from(v.envelopeHex, 'hex'), v.context, MAX)
    expect(opened.plaintext.toString('utf8')).toBe(v.plaintext)
    expect(opened).toMatchObject({ createdAt: v.createdAt, expiresAt: v.expiresAt, flags: v.flags ?? 0, keyIndex: 0 })
    expect(native.peekHeader(sealed)).toMatchObject({ version: 1, createdAt: v.createdAt, expiresAt: v.expiresAt })
    // decoded natively as UTF-8 (the Redis read path): the same text, non-ASCII included
    expect(ring.open(sealed, v.context, MAX, true).plaintext).toBe(v.plaintext)
  })

  it('node:crypto opens every vector with the header and context as AAD', () => {
    for (const v of vectors.envelopes) {
      const pt = jsOpen(Buffer.from(v.keyHex, 'hex'), Buffer.from(v.envelopeHex, 'hex'), v.context)
      expect(pt.toString()).toBe(v.plaintext)
    }
  })

  it('two seals of the same input differ (fresh random nonce)', () => {
    const ring = ringFor(vectors.keys[0])
    const a = ring.seal('same', 'ctx', 1, 2)
    const b = ring.seal('same', 'ctx', 1, 2)
    expect(a.subarray(28, 40).equals(b.subarray(28, 40))).toBe(false)
    expect(a.equals(b)).toBe(false)
  })
})

describe('every rejection has its own code', () => {
  const v = vectors.envelopes[0]
  const ring = ringForKeyHex(v.keyHex)
  const good = Buffer.from(v.envelopeHex, 'hex')
  const open =
    (buf: Buffer, ctx = v.context, max = MAX) =>
    () =>
      ring.open(buf, ctx, max)
  const patched = (offset: number, value: number) => {
    const b = Buffer.from(good)
    b[offset] = value
    return b
  }

  it('wrong magic', () => expect(codeOf(open(patched(0, 0x73)))).toBe('ERR_SESSION_BAD_MAGIC'))
  it('wrong version', () => expect(codeOf(open(patched(4, 2)))).toBe('ERR_SESSION_BAD_VERSION'))
  it('reserved flag bits and reserved bytes', () => {
    for (const [offset, value] of [
      [5, 0x02],
      [5, 0x80],
      [6, 1],
      [7, 1],
    ]) {
      expect(codeOf(open(patched(offset, value)))).toBe('ERR_SESSION_BAD_RESERVED')
    }
  })
  it('truncated at every length below 56', () => {
    for (let len = 0; len < 56; len++) {
      expect(codeOf(open(good.subarray(0, len)))).toBe('ERR_SESSION_TRUNCATED')
    }
  })
  it('over the size cap', () => {
    expect(codeOf(open(good, v.context, good.length - 1))).toBe('ERR_SESSION_TOO_LARGE')
    expect(ring.open(good, v.context, good.length).plaintext.toString()).toBe(v.plaintext)
  })
  it('unknown key id', () => expect(codeOf(open(patched(8, good[8] ^ 1)))).toBe('ERR_SESSION_UNKNOWN_KEY'))
  it('wrong context', () => {
    expect(codeOf(open(good, 'manager:other'))).toBe('ERR_SESSION_TAMPERED')
    expect(codeOf(open(good, ''))).toBe('ERR_SESSION_TAMPERED')
  })
  it('one flipped bit anywhere is rejected', () => {
    let accepted = 0
    const codes = new Set<string>()
    for (let bit = 0; bit < good.length * 8; bit++) {
      const b = Buffer.from(good)
      b[bit >> 3] ^= 1 << (bit & 7)
      const code = codeOf(open(b))
      if (code === undefined) accepted++
      else codes.add(code)
    }
    expect(accepted).toBe(0)
    expect(codes).toContain('ERR_SESSION_TAMPERED')
  })
  it('peekHeader checks the header without a key', () => {
    expect(codeOf(() => native.peekHeader(good.subarray(0, 39)))).toBe('ERR_SESSION_TRUNCATED')
    expect(codeOf(() => native.peekHeader(patched(0, 0)))).toBe('ERR_SESSION_BAD_MAGIC')
    expect(native.peekHeader(good.subarray(0, 40)).keyId).toBe(vectors.keys[0].keyIdHex)
  })
})

describe('key rotation and closing', () => {
  it('seals with the first key and opens with any, reporting which', () => {
    const old = new native.KeyRing({ scope: 'store', name: 'n', ikms: [Buffer.alloc(32, 1)] })
    const rotated = new native.KeyRing({ scope: 'store', name: 'n', ikms: [Buffer.alloc(32, 2), Buffer.alloc(32, 1)] })
    const fromOld = old.seal('x', 'c', 1, 0)
    expect(rotated.open(fromOld, 'c', MAX).keyIndex).toBe(1)
    const fromNew = rotated.seal('y', 'c', 1, 0)
    expect(native.peekHeader(fromNew).keyId).toBe(rotated.keyIds[0])
    expect(rotated.open(fromNew, 'c', MAX).keyIndex).toBe(0)
    expect(codeOf(() => old.open(fromNew, 'c', MAX))).toBe('ERR_SESSION_UNKNOWN_KEY')
  })

  it('a closed ring refuses to work and forgets its key ids', () => {
    const ring = new native.KeyRing({ scope: 'store', name: 'n', ikms: [Buffer.alloc(32, 1)] })
    const sealed = ring.seal('x', 'c', 1, 0)
    ring.close()
    expect(ring.closed).toBe(true)
    expect(ring.keyIds).toEqual([])
    expect(codeOf(() => ring.open(sealed, 'c', MAX))).toBe('ERR_SESSION_CLOSED')
    expect(codeOf(() => ring.seal('x', 'c', 1, 0))).toBe('ERR_SESSION_CLOSED')
  })

  it('a boot-bound ring sets flag bit 0', () => {
    const ring = new native.KeyRing({ scope: 'manager', name: 'n', ikms: [Buffer.alloc(32, 1)], bindToBoot: true })
    expect(ring.flags).toBe(1)
    expect(native.peekHeader(ring.seal('x', 'c', 1, 0)).flags).toBe(1)
    expect(native.bootId()).toBe(fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim())
  })
})
