// #18.1: an avatar's tags are capped where they come in (new Avatar, create, attachAvatar) and
// never where a stored session is read back; de-duplication is linear (timed in the bench).
import { describe, expect, it } from 'vitest'
import { Avatar } from '../lib/session/avatar'
import { generateSessionId } from '../lib/core/ids'
import { MemorySessionStore } from '../lib/stores/memory-store'
import { Session } from '../lib/session/session'

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
