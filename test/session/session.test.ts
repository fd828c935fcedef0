import * as path from 'node:path'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { Bag, changedPaths } from '../../lib/session/bag'
import { generateSessionId } from '../../lib/core/ids'
import {
  Session,
  clearDirty,
  sessionFromParsed,
  markStored,
  rebaseSession,
  sessionVersion,
  storedIdentity,
} from '../../lib/session/session'

const vectors = JSON.parse(readFileSync(path.join(__dirname, '..', 'vectors', 'envelope-v1.json'), 'utf8')) as {
  envelopes: Array<{ storageId?: string; plaintext: string; createdAt: number; expiresAt: number }>
}
const storeVector = vectors.envelopes.find((v) => v.storageId !== undefined)!

const T0 = 1_763_769_600_000
const id = () => generateSessionId()

describe('Session record format', () => {
  it('serialises exactly as the store vector’s plaintext', () => {
    const v = storeVector
    const s = new Session(v.storageId!, { identity: 'alice', tags: ['admin'] }, v.expiresAt - v.createdAt, {
      now: v.createdAt,
    })
    s.data.set('cart.items', 3)
    expect(JSON.stringify(s.toRecord())).toBe(v.plaintext)
    expect(s.expiresAt()).toBe(v.expiresAt)
  })

  it('reads the vector’s plaintext back to the same session (fromJSON: the deprecated name)', () => {
    const s = Session.fromRecord(JSON.parse(storeVector.plaintext))
    expect(s.id).toBe(storeVector.storageId)
    expect(s.avatar.identity).toBe('alice')
    expect(s.avatar.tags).toEqual(['admin'])
    expect(s.data.get('cart.items')).toBe(3)
    expect(s.dirty).toBe(false)
    expect(JSON.stringify(s.toRecord())).toBe(storeVector.plaintext)
    // A record or dump made by 0.2 (whose toJSON was the record) still reads back.
    expect(JSON.stringify(Session.fromJSON(JSON.parse(storeVector.plaintext)).toRecord())).toBe(storeVector.plaintext)
  })

  it('round-trips maxAge, a null auth and an attached avatar', () => {
    const s = new Session(id(), null, 1000, { maxAge: 5000, now: T0 })
    const who = new Avatar('bob', ['ops'])
    who.data.set('lang', 'it')
    s.attachAvatar(who)
    const json = JSON.stringify(s.toRecord())
    expect(JSON.parse(json).meta).toEqual({ createdAt: T0, lastAccess: T0, ttl: 1000, maxAge: 5000 })
    const back = Session.fromRecord(JSON.parse(json))
    expect(back.auth).toBeNull()
    expect(back.meta).toEqual(s.meta)
    expect(back.avatar.identity).toBe('bob')
    expect(back.avatar.data.get('lang')).toBe('it')
    expect(back.dirty).toBe(false)
    expect(back.needsNewId).toBe(false)
    expect(JSON.stringify(back.toRecord())).toBe(json)
    // a rebuilt session still learns of changes at any depth of its data
    const nested = Session.fromRecord({ ...JSON.parse(json), data: { cart: { items: 1 } } })
    expect(nested.dirty).toBe(false)
    ;(nested.data.get('cart') as Bag).set('items', 2)
    expect(nested.dirty).toBe(true)
  })

  it('records an avatar only when attached or when it carries data', () => {
    const s = new Session(id(), { sub: 'carol' }, 1000, { now: T0 })
    expect(s.toRecord()).not.toHaveProperty('avatar')
    s.avatar.data.set('x', 1)
    expect(s.toRecord().avatar).toEqual({ identity: 'carol', tags: [], data: { x: 1 } })
  })

  it('toRecord is a copy', () => {
    const s = new Session(id(), { sub: 'x', list: [1] }, 1000)
    s.data.set('a', [1])
    const rec = s.toRecord()
    ;(rec.data.a as number[]).push(2)
    ;(rec.auth!.list as number[]).push(2)
    rec.meta.ttl = 5
    expect(s.data.get('a')).toEqual([1])
    expect(s.auth!.list).toEqual([1])
    expect(s.meta.ttl).toBe(1000)
  })

  it('fromRecord rejects malformed records', () => {
    const good = JSON.parse(storeVector.plaintext) as Record<string, unknown>
    const meta = good.meta as Record<string, unknown>
    const bad: unknown[] = [
      null,
      'x',
      [],
      { ...good, id: '' },
      { ...good, id: 'x'.repeat(257) },
      { ...good, id: '\uD800' },
      { ...good, id: 5 },
      { ...good, meta: undefined },
      { ...good, meta: [] },
      { ...good, meta: { ...meta, createdAt: '1' } },
      { ...good, meta: { ...meta, lastAccess: null } },
      { ...good, meta: { ...meta, ttl: 'x' } },
      { ...good, meta: { ...meta, maxAge: null } },
      { ...good, auth: 'alice' },
      { ...good, auth: undefined },
      { ...good, data: [] },
      { ...good, data: undefined },
      { ...good, avatar: 'bob' },
      { ...good, avatar: { identity: 'bob', tags: 'x' } },
    ]
    for (const record of bad) expect(() => Session.fromRecord(record), JSON.stringify(record)).toThrow(TypeError)
    expect(() => Session.fromRecord({ ...good, meta: { ...meta, createdAt: -1 } })).toThrow(RangeError)
    expect(() => Session.fromRecord({ ...good, data: { 'a.b': 1 } })).toThrow(RangeError)
    expect(() => Session.fromRecord(good)).not.toThrow()
  })
})

describe('Session construction', () => {
  it('keeps a frozen deep copy of auth and builds the avatar from it', () => {
    const auth = { sub: 'dave', roles: 'a,b', profile: { tz: 'UTC', langs: ['it'] } }
    const s = new Session(id(), auth, 1000)
    auth.profile.langs.push('en')
    auth.sub = 'eve'
    expect(s.auth).toEqual({ sub: 'dave', roles: 'a,b', profile: { tz: 'UTC', langs: ['it'] } })
    expect(Object.isFrozen(s.auth)).toBe(true)
    expect(Object.isFrozen((s.auth!.profile as { langs: string[] }).langs)).toBe(true)
    expect(s.avatar.identity).toBe('dave')
    expect(s.avatar.tags).toEqual(['a', 'b'])
  })

  it('gives an anonymous avatar without auth', () => {
    const s = new Session(id(), null, 1000)
    expect(s.auth).toBeNull()
    expect(s.avatar.isAnonymous).toBe(true)
    expect(s.data).toBeInstanceOf(Bag)
  })

  it('sets meta from now (default Date.now()) and ttl', () => {
    const before = Date.now()
    const s = new Session(id(), null, 1234)
    const after = Date.now()
    expect(s.meta.createdAt).toBeGreaterThanOrEqual(before)
    expect(s.meta.createdAt).toBeLessThanOrEqual(after)
    expect(s.meta.lastAccess).toBe(s.meta.createdAt)
    expect(s.meta.ttl).toBe(1234)
    expect(s.meta).not.toHaveProperty('maxAge')
    const t = new Session(id(), null, 10, { now: T0, maxAge: 99 })
    expect(t.meta).toEqual({ createdAt: T0, lastAccess: T0, ttl: 10, maxAge: 99 })
    expect(Object.isFrozen(t.meta)).toBe(true)
  })

  it('validates its arguments, naming them', () => {
    expect(() => new Session(5 as never, null, 1)).toThrow(TypeError)
    // Any non-empty well-formed string of at most 256 characters (the seed's 'sid-1' included).
    expect(new Session('sid-1', null, 1).id).toBe('sid-1')
    expect(new Session('é'.repeat(256), null, 1).id).toHaveLength(256)
    expect(() => new Session('', null, 1)).toThrow(RangeError)
    expect(() => new Session('x'.repeat(257), null, 1)).toThrow(/sessionId/)
    expect(() => new Session('a\uDC00b', null, 1)).toThrow(/sessionId/)
    expect(() => new Session(id(), 'alice' as never, 1)).toThrow(/auth/)
    expect(() => new Session(id(), new Map() as never, 1)).toThrow(TypeError)
    expect(() => new Session(id(), { when: new Date() }, 1)).toThrow(/auth\.when/)
    expect(() => new Session(id(), { n: undefined }, 1)).toThrow(TypeError)
    expect(() => new Session(id(), null, 'x' as never)).toThrow(/ttl must be a finite number of milliseconds, got "x"/)
    expect(() => new Session(id(), null, NaN)).toThrow(/ttl/)
    expect(() => new Session(id(), null, 1, { maxAge: 0 })).toThrow(RangeError)
    expect(() => new Session(id(), null, 1, { maxAge: '5' as never })).toThrow(/maxAge/)
    expect(() => new Session(id(), null, 1, { now: -1 })).toThrow(/now/)
    expect(() => new Session(id(), null, 1, 'x' as never)).toThrow(/options/)
  })
})

describe('Session expiry', () => {
  it('expires when idle longer than ttl, measured from lastAccess', () => {
    const s = new Session(id(), null, 1000, { now: T0 })
    expect(s.isExpired(T0)).toBe(false)
    expect(s.isExpired(T0 + 999)).toBe(false)
    // expired from the expiry instant on, as the native header check rules
    expect(s.isExpired(T0 + 1000)).toBe(true)
    s.touch(T0 + 900)
    expect(s.meta.lastAccess).toBe(T0 + 900)
    expect(s.isExpired(T0 + 1500)).toBe(false)
    expect(s.isExpired(T0 + 1899)).toBe(false)
    expect(s.isExpired(T0 + 1900)).toBe(true)
    expect(s.expiresAt()).toBe(T0 + 1900)
  })

  it('treats ttl <= 0 as expired', () => {
    expect(new Session(id(), null, 0, { now: T0 }).isExpired(T0)).toBe(true)
    expect(new Session(id(), null, -5, { now: T0 }).isExpired(T0)).toBe(true)
  })

  it('enforces maxAge from createdAt, whatever the touches', () => {
    const s = new Session(id(), null, 1000, { now: T0, maxAge: 2500 })
    for (let t = T0 + 500; t < T0 + 2500; t += 500) {
      s.touch(t)
      expect(s.isExpired(t), `at +${t - T0}`).toBe(false)
    }
    expect(s.isExpired(T0 + 2499)).toBe(false)
    expect(s.isExpired(T0 + 2500)).toBe(true)
    // expiresAt is whichever limit comes first.
    expect(s.expiresAt()).toBe(T0 + 2500)
    const fresh = new Session(id(), null, 1000, { now: T0, maxAge: 5000 })
    expect(fresh.expiresAt()).toBe(T0 + 1000)
  })

  it('uses the real clock by default', () => {
    expect(new Session(id(), null, 60_000).isExpired()).toBe(false)
    expect(new Session(id(), null, 1000, { now: Date.now() - 5000 }).isExpired()).toBe(true)
  })

  it('touch does not make the session dirty; bad times are refused', () => {
    const s = new Session(id(), null, 1000, { now: T0 })
    s.touch(T0 + 5)
    expect(s.dirty).toBe(false)
    expect(() => s.touch(NaN)).toThrow(RangeError)
    expect(() => s.isExpired('soon' as never)).toThrow(TypeError)
  })
})

describe('Session events', () => {
  it('becomes dirty when data changes, at any depth, and clears on request', () => {
    const s = new Session(id(), null, 1000)
    expect(s.dirty).toBe(false)
    s.data.set('a.b', 1)
    expect(s.dirty).toBe(true)
    clearDirty(s)
    ;(s.data.get('a') as Bag).set('c', 2)
    expect(s.dirty).toBe(true)
    clearDirty(s)
    s.data.delete('a')
    expect(s.dirty).toBe(true)
    clearDirty(s)
    s.data.get('x')
    expect(s.dirty).toBe(false)
    s.markDirty()
    expect(s.dirty).toBe(true)
    // Clearing is the package's business (a store's save, the middleware's id move), not the app's.
    expect('clearDirty' in s).toBe(false)
  })

  it('becomes dirty when avatar data changes', () => {
    const s = new Session(id(), { sub: 'x' }, 1000)
    s.avatar.data.set('k', 1)
    expect(s.dirty).toBe(true)
  })

  it('attachAvatar is the login event: new avatar, dirty, needs a new id', () => {
    const s = new Session(id(), null, 1000)
    const old = s.avatar
    const who = new Avatar('alice', ['admin'])
    expect(s.needsNewId).toBe(false)
    s.attachAvatar(who)
    expect(s.avatar).toBe(who)
    expect(s.dirty).toBe(true)
    expect(s.needsNewId).toBe(true)
    expect(s.toRecord().avatar).toEqual({ identity: 'alice', tags: ['admin'], data: {} })
    clearDirty(s)
    who.data.set('x', 1)
    expect(s.dirty).toBe(true)
    // The replaced avatar no longer reaches this session.
    clearDirty(s)
    old.data.set('y', 1)
    expect(s.dirty).toBe(false)
    expect(() => s.attachAvatar({ identity: 'x' } as never)).toThrow(TypeError)
  })

  it('invalidate is the logout event', () => {
    const s = new Session(id(), null, 1000)
    expect(s.invalidated).toBe(false)
    s.invalidate()
    expect(s.invalidated).toBe(true)
  })

  it('withId copies the session under a new id for regeneration', () => {
    const s = new Session(id(), { sub: 'x' }, 1000, { now: T0, maxAge: 9000 })
    s.data.set('cart.items', 2)
    s.attachAvatar(new Avatar('alice', ['admin']))
    s.touch(T0 + 10)
    const newId = id()
    const copy = s.withId(newId)
    expect(copy).not.toBe(s)
    expect(copy.id).toBe(newId)
    expect(s.id).not.toBe(newId)
    const { id: _a, ...rest } = copy.toRecord()
    const { id: _b, ...orig } = s.toRecord()
    expect(rest).toEqual(orig)
    expect(copy.dirty).toBe(true)
    expect(copy.needsNewId).toBe(false)
    expect(s.needsNewId).toBe(true)
    copy.data.set('cart.items', 5)
    expect(s.data.get('cart.items')).toBe(2)
    expect(() => s.withId('')).toThrow(RangeError)
  })
})

// Stores rebuild each record read with sessionFromParsed: the JSON.parse output is adopted
// (frozen in place) instead of validated and copied a second time. It must build exactly what
// Session.fromRecord builds, keep every value frozen, and still refuse what fromRecord refuses.
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

// A stale copy re-applied onto a newer stored version (what a store's save does on a conflict):
// exactly this copy's own paths move over, whatever Bag they were changed through.

/** Two copies of one stored record (version 1), as two store.get calls would return. */
function twoCopies(data: Record<string, unknown>, auth: Record<string, unknown> | null = null): [Session, Session] {
  const base = new Session(generateSessionId(), auth, 60_000, { now: T0 })
  for (const [k, v] of Object.entries(data)) base.data.set(k, v)
  const copy = () => {
    const s = Session.fromRecord(base.toRecord())
    markStored(s, 1)
    return s
  }
  return [copy(), copy()]
}

/** `latest` as stored at `version` after it was saved, then `mine` re-applied onto it. */
function rebased(mine: Session, latest: Session, version = 2): Session {
  const stored = Session.fromRecord(latest.toRecord())
  rebaseSession(mine, stored, version)
  return mine
}

describe('change journal and rebase', () => {
  it('journals paths changed through child Bags, relative to the session data', () => {
    const [a] = twoCopies({ cart: { items: 1, lines: { a: 1 } } })
    ;(a.data.get('cart') as Bag).set('items', 2)
    ;((a.data.get('cart') as Bag).get('lines') as Bag).delete('a')
    a.data.set('x.y', 1)
    expect(changedPaths(a.data)).toEqual(['cart.items', 'cart.lines.a', 'x.y'])
  })

  it("re-applies only this copy's paths, sets and deletes alike, and takes the newer lastAccess", () => {
    const [a, b] = twoCopies({ cart: { items: 1 }, theme: 'light', keep: true })
    b.data.set('cart.coupon', 'X').set('theme', 'dark')
    b.touch(T0 + 500)
    a.data.set('cart.items', 2)
    a.data.delete('keep')
    const out = rebased(a, b)
    expect(out.data.toJSON()).toEqual({ cart: { items: 2, coupon: 'X' }, theme: 'dark' })
    expect(out.meta.lastAccess).toBe(T0 + 500)
    expect(sessionVersion(out)).toBe(2)
    // Re-applying again onto the same version gives the same (a retry is harmless).
    expect(rebased(a, Session.fromRecord(b.toRecord())).data.toJSON()).toEqual(out.data.toJSON())
  })

  it('a path blocked by a value the other writer put in its way: this copy wins for that path', () => {
    const [a, b] = twoCopies({ profile: { name: 'x' } })
    b.data.set('profile', 'gone')
    a.data.set('profile.age', 30)
    // b replaced the whole profile (name gone); a's later save puts its own path back in place.
    expect(rebased(a, b).data.toJSON()).toEqual({ profile: { age: 30 } })
  })

  it('clear() is re-applied key by key: keys the other writer added meanwhile survive', () => {
    const [a, b] = twoCopies({ prefs: { a: 1, b: 2 } })
    b.data.set('prefs.c', 3)
    ;(a.data.get('prefs') as Bag).clear()
    expect(rebased(a, b).data.toJSON()).toEqual({ prefs: { c: 3 } })
  })

  it('attachAvatar with keepData: false: only what this copy set since the login survives, again on a retry', () => {
    const [a, b] = twoCopies({ cart: 1 })
    b.data.set('csrf', 'planted').set('cart', 2)
    a.attachAvatar(new Avatar('alice'), { keepData: false })
    a.data.set('fresh', 1)
    expect(rebased(a, b).data.toJSON()).toEqual({ fresh: 1 })
    expect(rebased(a, Session.fromRecord(b.toRecord()), 3).data.toJSON()).toEqual({ fresh: 1 })
    expect(a.avatar.identity).toBe('alice')
  })

  it('avatar data paths merge; an attachAvatar replaces the avatar and moves the stored identity', () => {
    const [a, b] = twoCopies({}, { identity: 'alice' })
    b.avatar.data.set('lang', 'fr')
    a.avatar.data.set('seen', 1)
    const merged = rebased(a, b)
    expect(merged.avatar.identity).toBe('alice')
    expect(merged.avatar.data.toJSON()).toEqual({ seen: 1, lang: 'fr' })

    const [c, d] = twoCopies({}, { identity: 'alice' })
    d.avatar.data.set('lang', 'fr')
    c.attachAvatar(new Avatar('bob', ['admin']))
    const moved = rebased(c, d)
    expect(moved.avatar.identity).toBe('bob')
    expect(moved.avatar.data.toJSON()).toEqual({})
    expect(storedIdentity(moved)).toBe('alice') // what the stored version is indexed under, until saved
    markStored(moved, 3)
    expect(storedIdentity(moved)).toBe('bob')
    expect(changedPaths(moved.data)).toEqual([])
    expect(moved.dirty).toBe(false)
  })

  it('a copy never stored has version 0; a stored one keeps its version through withId only as 0 (new id)', () => {
    const s = new Session(generateSessionId(), null, 1000)
    expect(sessionVersion(s)).toBe(0)
    markStored(s, 7)
    expect(sessionVersion(s)).toBe(7)
    expect(sessionVersion(s.withId(generateSessionId()))).toBe(0)
  })
})

// Login may drop what was stored before it (attachAvatar keepData: false).
describe('attachAvatar keepData', () => {
  const planted = () => {
    const s = new Session(generateSessionId(), null, 60_000)
    s.data.set('csrf', 'known-to-the-attacker')
    s.data.set('cart.items', 2)
    clearDirty(s)
    return s
  }

  it('keeps the data by default (a cart survives login)', () => {
    const s = planted()
    s.attachAvatar(new Avatar('alice'))
    expect(s.data.get('cart.items')).toBe(2)
    expect(s.data.get('csrf')).toBe('known-to-the-attacker')
    s.attachAvatar(new Avatar('alice'), { keepData: true })
    expect(s.data.get('csrf')).toBe('known-to-the-attacker')
  })

  it('keepData: false drops everything stored before login, in the session and its moved copy', () => {
    const s = planted()
    s.attachAvatar(new Avatar('alice', ['member']), { keepData: false })
    expect(s.data.size).toBe(0)
    expect(s.dirty).toBe(true)
    expect(s.needsNewId).toBe(true)
    expect(s.avatar.identity).toBe('alice')
    // The rotated secret set after login is what the new id carries.
    s.data.set('csrf', 'fresh')
    const moved = s.withId(generateSessionId())
    expect(moved.data.toJSON()).toEqual({ csrf: 'fresh' })
    expect(moved.toRecord().avatar).toEqual({ identity: 'alice', tags: ['member'], data: {} })
  })

  it('wrong-typed options are a TypeError naming them', () => {
    const s = planted()
    expect(() => s.attachAvatar(new Avatar('a'), { keepData: 'no' } as never)).toThrow(
      /options\.keepData must be a boolean/,
    )
    expect(() => s.attachAvatar(new Avatar('a'), 1 as never)).toThrow(TypeError)
    expect(s.data.get('csrf')).toBe('known-to-the-attacker')
  })
})
