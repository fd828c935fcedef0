// Stores rebuild each record read with sessionFromParsed: the JSON.parse output is adopted
// (frozen in place) instead of validated and copied a second time. It must build exactly what
// Session.fromRecord builds, keep every value frozen, and still refuse what fromRecord refuses.
import { describe, expect, it } from 'vitest'
import { generateSessionId } from '../lib/core/ids'
import { Session, sessionFromParsed } from '../lib/session/session'

function record(): string {
  const s = new Session(
    generateSessionId(),
    { identity: 'ada', roles: ['admin', 'editor'], nested: { a: [1, { b: 2 }] } },
    60_000,
  )
  s.data.set('cart', [1042, { sku: 'x', qty: [1, 2] }])
  s.data.set('prefs.theme', 'dark')
  s.data.set('flags', { beta: true })
  return JSON.stringify({ ...s.toRecord(), version: 7 })
}

describe('sessionFromParsed', () => {
  it('builds what Session.fromRecord builds', () => {
    const json = record()
    const a = sessionFromParsed(JSON.parse(json))
    const b = Session.fromRecord(JSON.parse(json))
    expect(a.toRecord()).toEqual(b.toRecord())
    expect(a.avatar.identity).toBe('ada')
    expect(a.avatar.tags).toEqual(['admin', 'editor'])
    expect(a.dirty).toBe(false)
  })

  it('adopted values are frozen: a caller cannot change them behind the Bag', () => {
    const s = sessionFromParsed(JSON.parse(record()))
    const cart = s.data.get('cart') as unknown[]
    expect(Object.isFrozen(cart)).toBe(true)
    expect(Object.isFrozen(cart[1])).toBe(true)
    expect(Object.isFrozen((cart[1] as { qty: number[] }).qty)).toBe(true)
    expect(() => (cart as number[]).push(1)).toThrow(TypeError)
    expect(Object.isFrozen(s.auth)).toBe(true)
    expect(Object.isFrozen((s.auth as { nested: { a: unknown[] } }).nested.a)).toBe(true)
    // changing the Bag still works (and marks the session dirty)
    s.data.set('cart', [1])
    expect(s.dirty).toBe(true)
  })

  it('refuses what fromRecord refuses', () => {
    const bad = JSON.parse(record())
    bad.data = { 'a.b': 1 }
    expect(() => Session.fromRecord(structuredClone(bad))).toThrow(RangeError)
    expect(() => sessionFromParsed(bad)).toThrow(RangeError)
    expect(() => sessionFromParsed({ ...JSON.parse(record()), id: '' })).toThrow(TypeError)
  })
})
