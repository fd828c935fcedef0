import { describe, expect, it } from 'vitest'
import { Avatar } from '../lib/session/avatar'
import { Bag } from '../lib/session/bag'

describe('Avatar from arguments', () => {
  it('defaults to an anonymous avatar with no tags', () => {
    const a = new Avatar()
    expect(a.identity).toBe('anonymous')
    expect(a.tags).toEqual([])
    expect(a.isAnonymous).toBe(true)
    expect(a.data).toBeInstanceOf(Bag)
    expect(a.data.size).toBe(0)
  })

  it('takes identity and tags (trimmed, empty and repeated tags dropped)', () => {
    const a = new Avatar('bob', [' admin', 'editor ', '', 'admin', '  '])
    expect(a.identity).toBe('bob')
    expect(a.isAnonymous).toBe(false)
    expect(a.tags).toEqual(['admin', 'editor'])
    expect(a.hasTag('admin')).toBe(true)
    expect(a.hasTag('editor')).toBe(true)
    expect(a.hasTag('root')).toBe(false)
    expect(a.hasTag(' admin')).toBe(false)
  })

  it('keeps its own frozen copy of the tags', () => {
    const tags = ['a']
    const a = new Avatar('bob', tags)
    tags.push('b')
    expect(a.tags).toEqual(['a'])
    expect(Object.isFrozen(a.tags)).toBe(true)
    expect(() => (a.tags as string[]).push('x')).toThrow(TypeError)
    expect(a.hasTag('x')).toBe(false)
  })

  it('validates argument types, naming the argument', () => {
    expect(() => new Avatar(5 as never)).toThrow(TypeError)
    expect(() => new Avatar(5 as never)).toThrow(/identity/)
    expect(() => new Avatar('')).toThrow(RangeError)
    expect(() => new Avatar('  ')).toThrow(/identity/)
    expect(() => new Avatar('bob', 'admin' as never)).toThrow(TypeError)
    expect(() => new Avatar('bob', 'admin' as never)).toThrow(/tags/)
    expect(() => new Avatar('bob', ['ok', 7] as never)).toThrow(/tags\[1\]/)
    expect(() => new Avatar('bob', [], new Date() as never)).toThrow(/auth/)
    expect(() => new Avatar('bob', [], [] as never)).toThrow(TypeError)
    expect(() => new Avatar('bob').hasTag(1 as never)).toThrow(/tag must be a string/)
  })
})

describe('Avatar from an auth snapshot', () => {
  it('ignores the first two arguments when auth is given', () => {
    const a = new Avatar('bob', ['x'], { identity: 'alice', tags: ['admin'] })
    expect(a.identity).toBe('alice')
    expect(a.tags).toEqual(['admin'])
  })

  it('takes identity from identity, else sub, user, username', () => {
    const full = { identity: 'i', sub: 's', user: 'u', username: 'n' }
    expect(new Avatar(undefined, undefined, full).identity).toBe('i')
    expect(new Avatar(undefined, undefined, { ...full, identity: undefined }).identity).toBe('s')
    expect(new Avatar(undefined, undefined, { user: 'u', username: 'n' }).identity).toBe('u')
    expect(new Avatar(undefined, undefined, { username: 'n' }).identity).toBe('n')
    // Claims that are not usable strings are skipped.
    expect(new Avatar(undefined, undefined, { identity: 42, sub: '', user: '  ', username: 'n' }).identity).toBe('n')
  })

  it('is anonymous when auth names nobody', () => {
    const a = new Avatar('bob', ['x'], { email: 'a@b.c' })
    expect(a.identity).toBe('anonymous')
    expect(a.isAnonymous).toBe(true)
    expect(a.tags).toEqual([])
    expect(new Avatar('bob', [], null).identity).toBe('bob') // null means "no auth"
  })

  it('reads tags as an array or a comma list, else roles likewise', () => {
    expect(new Avatar(undefined, undefined, { tags: ['a', ' b '] }).tags).toEqual(['a', 'b'])
    expect(new Avatar(undefined, undefined, { tags: 'a, b,,c ,' }).tags).toEqual(['a', 'b', 'c'])
    expect(new Avatar(undefined, undefined, { roles: ['r1', 'r2'] }).tags).toEqual(['r1', 'r2'])
    expect(new Avatar(undefined, undefined, { roles: 'r1,r2' }).tags).toEqual(['r1', 'r2'])
    expect(new Avatar(undefined, undefined, { tags: ['t'], roles: ['r'] }).tags).toEqual(['t'])
    // tags of another type is no tags claim at all: roles is used.
    expect(new Avatar(undefined, undefined, { tags: 5, roles: 'r' }).tags).toEqual(['r'])
    // Non-string entries from a provider are skipped, not fatal.
    expect(new Avatar(undefined, undefined, { tags: ['a', 1, null, 'b'] }).tags).toEqual(['a', 'b'])
  })
})

describe('Avatar and a polluted Object.prototype', () => {
  it('reads claims only from the snapshot’s own properties', () => {
    const proto = Object.prototype as Record<string, unknown>
    proto.sub = 'evil'
    proto.roles = ['root']
    try {
      const a = new Avatar(undefined, undefined, { email: 'x@y.z' })
      expect(a.identity).toBe('anonymous')
      expect(a.tags).toEqual([])
    } finally {
      delete proto.sub
      delete proto.roles
    }
  })
})

describe('Avatar JSON', () => {
  it('round-trips identity, tags and data', () => {
    const a = new Avatar('alice', ['admin', 'ops'])
    a.data.set('prefs.lang', 'it').set('seen', [1, 2])
    const json = JSON.parse(JSON.stringify(a))
    expect(json).toEqual({ identity: 'alice', tags: ['admin', 'ops'], data: { prefs: { lang: 'it' }, seen: [1, 2] } })
    const b = Avatar.fromJSON(json)
    expect(b.identity).toBe('alice')
    expect(b.tags).toEqual(['admin', 'ops'])
    expect(b.data.get('prefs.lang')).toBe('it')
    expect(JSON.stringify(b)).toBe(JSON.stringify(a))
  })

  it('toJSON is a copy', () => {
    const a = new Avatar('alice', ['admin'])
    const json = a.toJSON()
    json.tags.push('root')
    expect(a.hasTag('root')).toBe(false)
  })

  it('fromJSON rejects malformed records with TypeError', () => {
    for (const bad of [null, 'x', [], { tags: [] }, { identity: 1, tags: [] }, { identity: 'a' }, { identity: 'a', tags: 'x' }, { identity: 'a', tags: [1] }, { identity: 'a', tags: [], data: [] }]) {
      expect(() => Avatar.fromJSON(bad), JSON.stringify(bad)).toThrow(TypeError)
    }
    expect(Avatar.fromJSON({ identity: 'a', tags: [] }).data.size).toBe(0)
  })
})
