import { describe, expect, it } from 'vitest'
import { Bag } from '../../lib/session/bag'
import { generateSessionId } from '../../lib/core/ids'
import { Session } from '../../lib/session/session'

describe('Bag paths', () => {
  it('sets and gets top-level and dotted paths, creating intermediate Bags', () => {
    const bag = new Bag()
    bag.set('name', 'alice').set('cart.items', 3).set('cart.total.amount', 9.5)
    expect(bag.get('name')).toBe('alice')
    expect(bag.get('cart.items')).toBe(3)
    expect(bag.get('cart.total.amount')).toBe(9.5)
    const cart = bag.get('cart')
    expect(cart).toBeInstanceOf(Bag)
    expect((cart as Bag).get('total.amount')).toBe(9.5)
  })

  it('returns the fallback only when nothing is stored there', () => {
    const bag = new Bag().set('n', null).set('zero', 0).set('s', 'x')
    expect(bag.get('n', 'fb')).toBeNull()
    expect(bag.get('zero', 'fb')).toBe(0)
    expect(bag.get('missing', 'fb')).toBe('fb')
    expect(bag.get('missing')).toBeUndefined()
    expect(bag.get('a.b.c', 'fb')).toBe('fb')
    // A path that runs through a value (not a Bag) finds nothing.
    expect(bag.get('s.length', 'fb')).toBe('fb')
  })

  it('has and delete follow dotted paths', () => {
    const bag = new Bag().set('a.b', 1).set('a.c', 2)
    expect(bag.has('a.b')).toBe(true)
    expect(bag.has('a')).toBe(true)
    expect(bag.has('a.z')).toBe(false)
    expect(bag.has('a.b.c')).toBe(false)
    expect(bag.delete('a.b')).toBe(true)
    expect(bag.delete('a.b')).toBe(false)
    expect(bag.delete('nope.x')).toBe(false)
    expect(bag.has('a.b')).toBe(false)
    expect(bag.get('a.c')).toBe(2)
  })

  it('keeps insertion order; replacing a value keeps its place', () => {
    const bag = new Bag().set('z', 1).set('a', 2).set('m', 3)
    bag.set('a', 20)
    expect([...bag.keys()]).toEqual(['z', 'a', 'm'])
    expect([...bag.values()]).toEqual([1, 20, 3])
    expect([...bag.entries()]).toEqual([
      ['z', 1],
      ['a', 20],
      ['m', 3],
    ])
    expect([...bag]).toEqual([...bag.entries()])
    expect(JSON.stringify(bag)).toBe('{"z":1,"a":20,"m":3}')
  })

  it('size counts top-level keys; clear empties', () => {
    const bag = new Bag().set('a.b.c', 1).set('d', 2)
    expect(bag.size).toBe(2)
    bag.clear()
    expect(bag.size).toBe(0)
    expect(bag.has('a.b.c')).toBe(false)
    expect(bag.toJSON()).toEqual({})
  })

  it('refuses to set through a value that is not a Bag, naming the path, and changes nothing', () => {
    const bag = new Bag().set('a.b', 5)
    expect(() => bag.set('a.b.c.d', 1)).toThrow(TypeError)
    expect(() => bag.set('a.b.c.d', 1)).toThrow(/"a\.b\.c\.d".*"a\.b"/)
    expect(bag.toJSON()).toEqual({ a: { b: 5 } })
  })

  it('rejects empty path segments with RangeError and non-string paths with TypeError', () => {
    const bag = new Bag().set('a', 1)
    for (const path of ['', '.', 'a.', '.a', 'a..b']) {
      expect(() => bag.set(path, 1), path).toThrow(RangeError)
      expect(() => bag.get(path), path).toThrow(RangeError)
      expect(() => bag.has(path), path).toThrow(RangeError)
      expect(() => bag.delete(path), path).toThrow(RangeError)
    }
    for (const path of [1, null, undefined, ['a'], Symbol('a')]) {
      expect(() => bag.set(path as never, 1)).toThrow(TypeError)
      expect(() => bag.get(path as never)).toThrow(/path must be a string/)
    }
    expect(bag.toJSON()).toEqual({ a: 1 })
  })
})

describe('Bag values', () => {
  class Point {
    constructor(public x = 1) {}
  }
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  const cyclicArray: unknown[] = [1]
  cyclicArray.push(cyclicArray)
  const cycleThroughArray: Record<string, unknown> = {}
  cycleThroughArray.list = [cycleThroughArray]

  const bad: Array<[string, unknown]> = [
    ['function', () => 1],
    ['symbol', Symbol('s')],
    ['bigint', 10n],
    ['undefined', undefined],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['Date', new Date()],
    ['Map', new Map()],
    ['Set', new Set()],
    ['class instance', new Point()],
    ['Buffer', Buffer.from('x')],
    ['RegExp', /x/],
    ['cyclic object', cyclic],
    ['cyclic array', cyclicArray],
    ['cycle through an array', cycleThroughArray],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the case under test
    ['array hole', [1, , 3]],
    ['Date inside an array', [1, { when: new Date() }]],
    ['undefined inside an object', { a: { b: undefined } }],
    ['function inside an array', [() => 1]],
  ]
  for (const [label, value] of bad) {
    it(`refuses ${label} with a TypeError naming the path, and changes nothing`, () => {
      let notified = 0
      const bag = new Bag().set('keep', 1)
      bag.onChange = () => notified++
      expect(() => bag.set('user.thing', value)).toThrow(TypeError)
      expect(() => bag.set('user.thing', value)).toThrow(/user\.thing/)
      expect(bag.toJSON()).toEqual({ keep: 1 })
      expect(notified).toBe(0)
    })
  }

  it('accepts every kind of JSON value', () => {
    const bag = new Bag()
    const values = ['', 'ünï©ødé 医生', 0, -0, 1.5, -1e300, true, false, null, [], [1, 'a', null, [true], { k: [1] }]]
    values.forEach((v, i) => bag.set(`v${i}`, v))
    values.forEach((v, i) => expect(bag.get(`v${i}`)).toEqual(v))
  })

  it('stores plain objects as nested Bags (the shape they have after a store round trip)', () => {
    const bag = new Bag().set('user', { name: 'bob', address: { city: 'Rome' } })
    expect(bag.get('user')).toBeInstanceOf(Bag)
    expect(bag.get('user.address.city')).toBe('Rome')
    expect(Bag.fromJSON(bag.toJSON()).get('user.address.city')).toBe('Rome')
    // Objects created with a null prototype are plain too.
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { x: 1 })
    expect(new Bag().set('o', bare).get('o.x')).toBe(1)
  })

  it('rejects object keys that cannot be Bag keys with RangeError', () => {
    expect(() => new Bag().set('a', { 'x.y': 1 })).toThrow(RangeError)
    expect(() => new Bag().set('a', { '': 1 })).toThrow(RangeError)
    // Inside arrays objects stay values, so any key is fine there.
    expect(new Bag().set('a', [{ 'x.y': 1, '': 2 }]).get('a')).toEqual([{ 'x.y': 1, '': 2 }])
  })

  it('stores copies: the caller cannot change a stored value afterwards', () => {
    const list = [1, { n: 2 }]
    const obj = { a: [1] }
    const bag = new Bag().set('list', list).set('obj', obj)
    list.push(3)
    ;(list[1] as { n: number }).n = 99
    obj.a.push(2)
    expect(bag.get('list')).toEqual([1, { n: 2 }])
    expect(bag.get('obj.a')).toEqual([1])
  })

  it('hands out frozen values, so they cannot be changed without set (and its checks)', () => {
    const bag = new Bag().set('list', [1, { n: 2 }])
    const got = bag.get('list') as unknown[]
    expect(Object.isFrozen(got)).toBe(true)
    expect(Object.isFrozen(got[1])).toBe(true)
    expect(() => got.push(new Date())).toThrow(TypeError)
  })

  it('stores a copy of a Bag: later changes to the source do not leak in', () => {
    const source = new Bag().set('x.y', 1)
    const bag = new Bag().set('copy', source)
    source.set('x.y', 2)
    expect(bag.get('copy.x.y')).toBe(1)
    // Setting a Bag into its own subtree copies it too, so no cycle can form.
    bag.set('copy.again', bag)
    expect(bag.get('copy.again.copy.x.y')).toBe(1)
    expect(() => JSON.stringify(bag)).not.toThrow()
  })
})

describe('Bag JSON', () => {
  it('round-trips nested data exactly', () => {
    const bag = new Bag()
      .set('cart.items', 3)
      .set('cart.lines', [
        { sku: 'a', qty: 1 },
        { sku: 'b', qty: 2 },
      ])
      .set('prefs.theme', 'dark')
      .set('prefs.flags.beta', true)
      .set('nothing', null)
      .set('empty', {})
      .set('医生', '张')
    const json = JSON.stringify(bag.toJSON())
    const back = Bag.fromJSON(JSON.parse(json))
    expect(JSON.stringify(back)).toBe(json)
    expect(back.get('prefs.flags')).toBeInstanceOf(Bag)
    expect(back.get('empty')).toBeInstanceOf(Bag)
    expect(Array.isArray(back.get('cart.lines'))).toBe(true)
    expect([...back.keys()]).toEqual([...bag.keys()])
  })

  it('toJSON returns a mutable copy, detached from the Bag', () => {
    const bag = new Bag().set('a.list', [1])
    const json = bag.toJSON() as { a: { list: number[] } }
    json.a.list.push(2)
    json.a = { list: [] }
    expect(bag.get('a.list')).toEqual([1])
  })

  it('fromJSON accepts only plain objects', () => {
    for (const bad of [null, [], 'x', 1, new Date(), new Map()]) expect(() => Bag.fromJSON(bad)).toThrow(TypeError)
    expect(() => Bag.fromJSON({ a: { 'b.c': 1 } })).toThrow(RangeError)
    expect(() => Bag.fromJSON({ a: undefined })).toThrow(TypeError)
  })
})

describe('Bag and prototype pollution', () => {
  it('keeps __proto__, constructor and prototype as plain data', () => {
    const bag = new Bag()
    bag.set('__proto__.polluted', 1)
    bag.set('constructor.prototype.polluted', 2)
    bag.set('prototype', 3)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.prototype).not.toHaveProperty('polluted')
    expect(bag.get('__proto__.polluted')).toBe(1)
    expect(bag.get('constructor.prototype.polluted')).toBe(2)
    expect([...bag.keys()]).toEqual(['__proto__', 'constructor', 'prototype'])
    const json = bag.toJSON()
    expect(Object.getPrototypeOf(json)).toBe(Object.prototype)
    expect(Object.keys(json)).toEqual(['__proto__', 'constructor', 'prototype'])
    expect(JSON.stringify(json)).toBe(
      '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"prototype":3}',
    )
  })

  it('fromJSON of a hostile document does not touch Object.prototype', () => {
    const hostile = JSON.parse('{"__proto__":{"polluted":1},"a":{"__proto__":{"x":[{"__proto__":{"y":1}}]}}}')
    const bag = Bag.fromJSON(hostile)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(bag.get('__proto__.polluted')).toBe(1)
    expect(JSON.stringify(bag)).toBe(JSON.stringify(hostile))
    const list = bag.get('a.__proto__.x') as Array<Record<string, unknown>>
    expect(Object.getPrototypeOf(list[0])).toBe(Object.prototype)
    expect(Object.keys(list[0])).toEqual(['__proto__'])
  })
})

describe('Bag onChange', () => {
  it('fires on set, delete and clear, and bubbles up from nested Bags', () => {
    const bag = new Bag()
    let count = 0
    bag.onChange = () => count++
    bag.set('a.b', 1)
    expect(count).toBe(1)
    ;(bag.get('a') as Bag).set('c', 2) // a change made through the child Bag
    expect(count).toBe(2)
    bag.delete('a.b')
    expect(count).toBe(3)
    bag.clear()
    expect(count).toBe(4)
  })

  it('does not fire when nothing changed', () => {
    const bag = new Bag().set('a', 1)
    let count = 0
    bag.onChange = () => count++
    bag.delete('missing')
    bag.delete('a.b')
    new Bag().clear()
    bag.get('a')
    bag.has('a')
    expect(count).toBe(0)
    bag.delete('a')
    bag.clear() // already empty
    expect(count).toBe(1)
  })

  it('stops hearing from a child Bag once it is removed or replaced', () => {
    const bag = new Bag().set('a.b', 1).set('r.s', 1)
    const removed = bag.get('a') as Bag
    const replaced = bag.get('r') as Bag
    bag.delete('a')
    bag.set('r', 5)
    let count = 0
    bag.onChange = () => count++
    removed.set('b', 2)
    replaced.set('s', 2)
    expect(count).toBe(0)
    expect(bag.toJSON()).toEqual({ r: 5 })
  })
})

// Nesting is limited (32 levels); deeper is a RangeError naming the path, never a stack overflow.
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
