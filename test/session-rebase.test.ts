// A stale copy re-applied onto a newer stored version (what a store's save does on a conflict):
// exactly this copy's own paths move over, whatever Bag they were changed through.
import { describe, expect, it } from 'vitest'
import { Avatar } from '../lib/session/avatar'
import { type Bag, changedPaths } from '../lib/session/bag'
import { generateSessionId } from '../lib/core/ids'
import { markStored, rebaseSession, Session, sessionVersion, storedIdentity } from '../lib/session/session'

const T0 = 1_763_769_600_000

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
