// #16.2: nesting is limited (32 levels); deeper is a RangeError naming the path, never a stack overflow.
import { describe, expect, it } from 'vitest'
import { Bag } from '../lib/session/bag'
import { generateSessionId } from '../lib/core/ids'
import { Session } from '../lib/session/session'

/** { k: { k: ... { k: leaf } } } with `levels` levels of values (1: { k: leaf }). */
function nested(levels: number, leaf: unknown = 1): Record<string, unknown> {
  let value: unknown = leaf
  for (let i = 0; i < levels - 1; i++) value = { k: value }
  return { k: value } as Record<string, unknown>
}
function nestedArray(levels: number): unknown {
  let value: unknown = 1
  for (let i = 0; i < levels; i++) value = [value]
  return value
}

describe('Bag nesting limit', () => {
  it('32 levels are fine, 33 are a RangeError naming the path', () => {
    expect(Bag.MAX_DEPTH).toBe(32)
    expect(Bag.fromJSON(nested(32)).toJSON()).toEqual(nested(32))
    expect(() => Bag.fromJSON(nested(33))).toThrow(RangeError)
    expect(() => Bag.fromJSON(nested(33))).toThrow(
      new RegExp(`^${Array(33).fill('k').join('\\.')} nests deeper than 32 levels`),
    )
  })

  it('10 000 levels (objects or arrays) are the same RangeError, not a stack overflow', () => {
    const bag = new Bag()
    const deep = nested(10_000)
    expect(() => Bag.fromJSON(deep)).toThrow(/nests deeper than 32 levels/)
    expect(() => bag.set('a', deep)).toThrow(/^a\.k\.k.* nests deeper than 32 levels/)
    expect(() => bag.set('a', nestedArray(10_000))).toThrow(/^a\[0\]\[0\].* nests deeper than 32 levels/)
    expect(() => new Session(generateSessionId(), { sub: 'x', claims: nested(10_000) }, 1000)).toThrow(
      /^auth\.claims\.k.* nests deeper/,
    )
    expect(bag.size).toBe(0)
  })

  it('counts the path and where the Bag sits: set on a child Bag, long dotted paths, Bag values', () => {
    const root = new Bag()
    root.set(Array(31).fill('p').join('.'), { q: 1 }) // the leaf sits at level 32
    expect(() => root.set(Array(32).fill('p').join('.'), { q: 1 })).toThrow(/nests deeper than 32/)
    expect(() => root.set(Array(10_000).fill('p').join('.'), 1)).toThrow(RangeError)
    const child = root.get('p.p.p.p.p.p.p.p.p.p') as Bag // level 10
    child.set(Array(22).fill('x').join('.'), 1)
    expect(() => child.set(Array(23).fill('z').join('.'), 1)).toThrow(/nests deeper than 32/)
    const tall = Bag.fromJSON(nested(25))
    expect(() => child.set('y', tall)).toThrow(/^y nests deeper than 32 levels/)
    child.set('y', Bag.fromJSON(nested(21))) // y at level 11, its leaf at 32
    expect(child.get(['y', ...Array(21).fill('k')].join('.'))).toBe(1)
  })

  it('a session record nested too deep is refused by fromJSON, naming the path', () => {
    const record = {
      id: generateSessionId(),
      meta: { createdAt: 0, lastAccess: 0, ttl: 1000 },
      auth: null,
      data: nested(5000),
    }
    expect(() => Session.fromJSON(record)).toThrow(/nests deeper than 32 levels/)
  })
})
