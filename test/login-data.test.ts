// #18.5: login may drop what was stored before it (attachAvatar keepData: false).
import { describe, expect, it } from 'vitest'
import { Avatar } from '../lib/session/avatar'
import { generateSessionId } from '../lib/core/ids'
import { Session, clearDirty } from '../lib/session/session'

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
