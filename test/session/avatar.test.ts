import { describe, expect, it } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { Bag } from '../../lib/session/bag'
import { generateSessionId } from '../../lib/core/ids'
import { Session } from '../../lib/session/session'
import { MemorySessionStore } from '../../lib/stores/memory-store'

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
    expect(() => new Avatar(true as never)).toThrow(TypeError)
    expect(() => new Avatar(true as never)).toThrow(/identity/)
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

describe('identity claims', () => {
  const fromAuth = (auth: Record<string, unknown>) => new Avatar(undefined, undefined, auth)

  it('a number is its decimal string: a numeric id is a user, not an anonymous visitor with tags', () => {
    const a = fromAuth({ identity: 42, tags: ['admin'] })
    expect(a.identity).toBe('42')
    expect(a.isAnonymous).toBe(false)
    expect(a.hasTag('admin')).toBe(true)
    expect(fromAuth({ sub: 7.5 }).identity).toBe('7.5')
    expect(fromAuth({ user: -0 }).identity).toBe('0')
    expect(new Avatar(1042 as never).identity).toBe('1042')
    expect(new Avatar(1042 as never).isAnonymous).toBe(false)
  })

  it('any other non-string claim is a TypeError naming the claim, not an anonymous avatar', () => {
    for (const [auth, claim] of [
      [{ identity: NaN }, 'auth.identity'],
      [{ sub: Infinity }, 'auth.sub'],
      [{ user: { id: 1 } }, 'auth.user'],
      [{ username: true, tags: ['admin'] }, 'auth.username'],
      [{ identity: null, sub: 'x' }, 'auth.identity'],
      [{ sub: ['alice'] }, 'auth.sub'],
    ] as const) {
      expect(() => fromAuth(auth), JSON.stringify(auth)).toThrow(TypeError)
      expect(() => fromAuth(auth), JSON.stringify(auth)).toThrow(claim)
    }
    expect(() => fromAuth({ identity: '  ', sub: 'x' })).toThrow(RangeError)
    expect(() => new Avatar(NaN as never)).toThrow(TypeError)
    expect(() => new Avatar(-Infinity as never)).toThrow(/identity/)
  })

  it('a lone surrogate is a TypeError: it would share an index name with U+FFFD', () => {
    expect(Buffer.from('bob\uD800')).toEqual(Buffer.from('bob\uFFFD')) // why
    expect(() => fromAuth({ sub: 'bob\uD800' })).toThrow(TypeError)
    expect(() => fromAuth({ sub: 'bob\uD800' })).toThrow(/auth\.sub.*lone surrogate/)
    expect(() => fromAuth({ identity: '\uDC00bob' })).toThrow(/auth\.identity/)
    expect(() => new Avatar('bob\uD800')).toThrow(TypeError)
    expect(() => new Avatar('bob\uD800')).toThrow(/identity/)
    expect(fromAuth({ sub: 'bob\uFFFD' }).identity).toBe('bob\uFFFD')
    expect(new Avatar('b\uD83D\uDE00b').identity).toBe('b\uD83D\uDE00b') // a pair is fine
  })

  it('attachAvatar refuses an avatar rebuilt from a stored record with a lone surrogate', () => {
    const stored = Avatar.fromJSON({ identity: 'bob\uD800', tags: [], data: {} })
    expect(stored.identity).toBe('bob\uD800') // a stored record always reads back
    const s = new Session(generateSessionId(), null, 60_000)
    expect(() => s.attachAvatar(stored)).toThrow(TypeError)
    expect(() => s.attachAvatar(stored)).toThrow(/avatar\.identity/)
    expect(s.avatar.isAnonymous).toBe(true)
  })

  it('anonymous means no identity claim: a user named "anonymous" is a named user', () => {
    expect(new Avatar().isAnonymous).toBe(true)
    expect(new Avatar(undefined, ['x']).isAnonymous).toBe(true)
    expect(fromAuth({ email: 'a@b.c' }).isAnonymous).toBe(true)
    const named = new Avatar('anonymous')
    expect(named.identity).toBe('anonymous')
    expect(named.isAnonymous).toBe(false)
    expect(fromAuth({ username: 'anonymous' }).isAnonymous).toBe(false)
    expect(new Session(generateSessionId(), { sub: 'anonymous' }, 1000).avatar.isAnonymous).toBe(false)
  })

  it('records: a user named "anonymous" carries a marker; records without it read as before', () => {
    const named = new Avatar('anonymous', ['member'])
    expect(named.toJSON()).toEqual({ identity: 'anonymous', anonymous: false, tags: ['member'], data: {} })
    expect(Avatar.fromJSON(JSON.parse(JSON.stringify(named))).isAnonymous).toBe(false)
    // The anonymous avatar's record is unchanged, and a record written without the marker
    // (every record before it) whose identity is 'anonymous' is still the anonymous avatar.
    expect(new Avatar().toJSON()).toEqual({ identity: 'anonymous', tags: [], data: {} })
    expect(Avatar.fromJSON({ identity: 'anonymous', tags: [], data: {} }).isAnonymous).toBe(true)
    expect(Avatar.fromJSON({ identity: 'anonymous', anonymous: true, tags: [] }).isAnonymous).toBe(true)
    expect(Avatar.fromJSON({ identity: 'bob', tags: [] }).isAnonymous).toBe(false)
    expect(() => Avatar.fromJSON({ identity: 'bob', anonymous: true, tags: [] })).toThrow(TypeError)
    expect(() => Avatar.fromJSON({ identity: 'anonymous', anonymous: 'no', tags: [] })).toThrow(/avatar\.anonymous/)
    // Through a session record, attached avatar and avatar rebuilt from auth alike.
    const s = new Session(generateSessionId(), { username: 'anonymous' }, 60_000)
    expect(Session.fromRecord(s.toRecord()).avatar.isAnonymous).toBe(false)
    s.attachAvatar(new Avatar('anonymous'))
    expect(Session.fromRecord(JSON.parse(JSON.stringify(s.toRecord()))).avatar.isAnonymous).toBe(false)
    const anon = new Session(generateSessionId(), null, 60_000)
    anon.attachAvatar(new Avatar())
    expect(Session.fromRecord(anon.toRecord()).avatar.isAnonymous).toBe(true)
  })

  it('a stored auth snapshot the rules now refuse still reads back, its claims skipped as before', () => {
    const record = {
      id: generateSessionId(),
      meta: { createdAt: Date.now(), lastAccess: Date.now(), ttl: 60_000 },
      auth: { identity: { id: 1 }, sub: '', user: 'carol' },
      data: {},
    }
    expect(Session.fromRecord(record).avatar.identity).toBe('carol')
    expect(Session.fromRecord({ ...record, auth: { identity: true } }).avatar.isAnonymous).toBe(true)
    expect(Session.fromRecord({ ...record, auth: { identity: 42 } }).avatar.identity).toBe('42')
    // ...and the checks are back on for the next avatar built from arguments.
    expect(() => fromAuth({ identity: true })).toThrow(TypeError)
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
    for (const bad of [
      null,
      'x',
      [],
      { tags: [] },
      { identity: 1, tags: [] },
      { identity: 'a' },
      { identity: 'a', tags: 'x' },
      { identity: 'a', tags: [1] },
      { identity: 'a', tags: [], data: [] },
    ]) {
      expect(() => Avatar.fromJSON(bad), JSON.stringify(bad)).toThrow(TypeError)
    }
    expect(Avatar.fromJSON({ identity: 'a', tags: [] }).data.size).toBe(0)
  })
})

// An avatar's tags are capped where they come in (new Avatar, create, attachAvatar) and
// never where a stored session is read back; de-duplication is linear (timed in the bench).
const many = (n: number, prefix = 'role') => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

describe('avatar tag caps', () => {
  it('1000 tags of 256 characters are allowed', () => {
    expect(Avatar.MAX_TAGS).toBe(1000)
    expect(Avatar.MAX_TAG_LENGTH).toBe(256)
    expect(new Avatar('bob', many(1000)).tags).toHaveLength(1000)
    expect(new Avatar('bob', ['x'.repeat(256)]).tags[0]).toHaveLength(256)
    // Counted after trimming and de-duplication: 2000 entries naming 1000 tags are fine.
    expect(new Avatar('bob', [...many(1000), ...many(1000).map((t) => ` ${t} `)]).tags).toHaveLength(1000)
  })

  it('new Avatar: 1001 tags or a 257-character tag is a RangeError naming the cap', () => {
    expect(() => new Avatar('bob', many(1001))).toThrow(RangeError)
    expect(() => new Avatar('bob', many(1001))).toThrow(
      /1001 tags, over the cap of 1000 tags per avatar \(Avatar\.MAX_TAGS\)/,
    )
    expect(() => new Avatar('bob', ['ok', 'x'.repeat(257)])).toThrow(RangeError)
    expect(() => new Avatar('bob', ['ok', 'x'.repeat(257)])).toThrow(
      /tags\[1\] is 257 characters, over the cap of 256 .*Avatar\.MAX_TAG_LENGTH/,
    )
    expect(() => new Avatar(undefined, undefined, { sub: 'bob', roles: many(60_000) })).toThrow(
      /auth tags: 60000 tags.*MAX_TAGS/,
    )
    expect(() => new Avatar(undefined, undefined, { sub: 'bob', roles: many(2000).join(',') })).toThrow(RangeError)
  })

  it('store.create with an auth over the cap rejects with the RangeError and stores nothing', async () => {
    const store = new MemorySessionStore({ sweepInterval: 0 })
    await expect(store.create({ sub: 'bob', roles: many(1001) })).rejects.toThrow(/MAX_TAGS/)
    await expect(store.create({ sub: 'bob', tags: ['y'.repeat(300)] })).rejects.toThrow(/MAX_TAG_LENGTH/)
    expect(store.size).toBe(0)
    await store.close()
  })

  it('attachAvatar refuses an avatar over the caps, even one rebuilt from a record', () => {
    const big = Avatar.fromJSON({ identity: 'bob', tags: many(1500), data: {} })
    expect(big.tags).toHaveLength(1500) // a record always reads back
    const s = new Session(generateSessionId(), null, 60_000)
    expect(() => s.attachAvatar(big)).toThrow(/1500 tags, over the cap of 1000/)
    expect(s.needsNewId).toBe(false)
    expect(s.avatar.isAnonymous).toBe(true)
  })

  it('a stored session over the caps still reads back, from fromJSON and from a store', async () => {
    const record = {
      id: generateSessionId(),
      meta: { createdAt: Date.now(), lastAccess: Date.now(), ttl: 60_000 },
      auth: { sub: 'bob', roles: many(3000) },
      data: {},
      avatar: { identity: 'bob', tags: many(2000, 'a'), data: {} },
    }
    const s = Session.fromJSON(record)
    expect(s.auth!.roles).toHaveLength(3000)
    expect(s.avatar.tags).toHaveLength(2000)
    expect(s.withId(generateSessionId()).avatar.tags).toHaveLength(2000)
    // restore() and get(): the caps are not checked where sessions are read or moved.
    const store = new MemorySessionStore({ sweepInterval: 0 })
    expect(await store.restore({ version: 1, sessions: [record] })).toBe(1)
    expect((await store.get(record.id))!.avatar.tags).toHaveLength(2000)
    await store.close()
  })

  it('the caps are back on once a read fails midway', () => {
    expect(() => Session.fromJSON({ id: 'bad' })).toThrow(TypeError)
    expect(() => new Avatar('bob', many(1001))).toThrow(RangeError)
  })
})
