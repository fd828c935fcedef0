import { describe, expect, it, afterEach, vi } from 'vitest'
import { MemorySessionStore, type MemorySessionStoreOptions } from '../../lib/stores/memory-store'
import { describeStoreContract } from './contract'
import { SessionTooLargeError } from '../../lib/core/errors'
import { Avatar } from '../../lib/session/avatar'

describeStoreContract('MemorySessionStore', async (opts) => new MemorySessionStore(opts))

describe('MemorySessionStore options', () => {
  it('defaults to a one-hour ttl and a 60 s touchAfter', () => {
    const store = new MemorySessionStore()
    expect(store.defaultTtl).toBe(3_600_000)
    expect(store.touchAfter).toBe(60_000)
    expect(store.maxAge).toBeUndefined()
  })

  it('accepts a bare number as defaultTtl', async () => {
    const store = new MemorySessionStore(5_000)
    expect(store.defaultTtl).toBe(5_000)
    expect((await store.create()).meta.ttl).toBe(5_000)
  })

  it('rejects bad options, naming them', () => {
    expect(() => new MemorySessionStore({ defaultTtl: 'x' as never })).toThrow(
      /defaultTtl must be a finite number of milliseconds, got "x"/,
    )
    expect(() => new MemorySessionStore({ defaultTtl: 'x' as never })).toThrow(TypeError)
    expect(() => new MemorySessionStore(0)).toThrow(RangeError)
    expect(() => new MemorySessionStore(NaN)).toThrow(/ttl/)
    expect(() => new MemorySessionStore({ maxAge: -1 })).toThrow(/maxAge/)
    expect(() => new MemorySessionStore({ touchAfter: -1 })).toThrow(RangeError)
    expect(() => new MemorySessionStore({ touchAfter: 0 })).not.toThrow()
    expect(() => new MemorySessionStore('1h' as never)).toThrow(/options/)
    expect(() => new MemorySessionStore(null as never)).toThrow(TypeError)
  })

  it('close() drops every session', async () => {
    const store = new MemorySessionStore()
    await store.create()
    expect(store.size).toBe(1)
    await store.close()
    expect(store.size).toBe(0)
  })
})

// The memory store holds at most maxSessions (least recently used dropped first),
// sweeps expired sessions on an unref'd timer, and refuses a session over maxBytes.
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('MemorySessionStore maxSessions', () => {
  it('defaults to 100 000 sessions, a 5 min sweep and 1 MiB', () => {
    const store = new MemorySessionStore()
    expect(store.maxSessions).toBe(100_000)
    expect(store.sweepInterval).toBe(300_000)
    expect(store.maxBytes).toBe(1024 * 1024)
    void store.close()
  })

  it('past the cap the least recently used session is dropped; a read counts as a use', async () => {
    const store = new MemorySessionStore({ maxSessions: 3, sweepInterval: 0 })
    const [a, b, c] = [await store.create(), await store.create(), await store.create()]
    expect(store.size).toBe(3)
    expect(await store.get(a.id)).not.toBeNull() // a is now the most recently used; b the least
    const d = await store.create()
    expect(store.size).toBe(3)
    expect(await store.get(b.id)).toBeNull()
    for (const s of [a, c, d]) expect(await store.get(s.id)).not.toBeNull()
    // A save counts as a use too.
    await store.save(a) // order now c, d, a
    await store.create()
    expect(await store.get(c.id)).toBeNull()
    expect(store.size).toBe(3)
    await store.close()
  })

  it('50 000 cookieless visitors cannot grow it past the cap', async () => {
    const store = new MemorySessionStore({ maxSessions: 1000, sweepInterval: 0 })
    for (let i = 0; i < 50_000; i++) await store.create(null, { ttl: 1000 })
    expect(store.size).toBe(1000)
    await store.close()
  })

  it('rejects bad maxSessions and sweepInterval values, naming them', () => {
    expect(() => new MemorySessionStore({ maxSessions: '10' as never })).toThrow(
      /options\.maxSessions must be a number/,
    )
    expect(() => new MemorySessionStore({ maxSessions: 0 })).toThrow(RangeError)
    expect(() => new MemorySessionStore({ maxSessions: 1.5 })).toThrow(/options\.maxSessions/)
    expect(() => new MemorySessionStore({ sweepInterval: -1 })).toThrow(/options\.sweepInterval/)
    expect(() => new MemorySessionStore({ sweepInterval: 'x' as never })).toThrow(TypeError)
    expect(() => new MemorySessionStore({ maxBytes: 10 })).toThrow(/options\.maxBytes/)
  })
})

describe('MemorySessionStore sweep', () => {
  it('drops expired sessions every sweepInterval without anyone reading them', async () => {
    vi.useFakeTimers()
    const store = new MemorySessionStore({ sweepInterval: 60_000 })
    for (let i = 0; i < 100; i++) await store.create(null, { ttl: 1000 })
    const keep = await store.create(null, { ttl: 3_600_000 })
    expect(store.size).toBe(101)
    await vi.advanceTimersByTimeAsync(59_999)
    expect(store.size).toBe(101) // the first sweep runs one interval after start
    await vi.advanceTimersByTimeAsync(1)
    expect(store.size).toBe(1)
    expect(await store.get(keep.id)).not.toBeNull()
    await store.close()
  })

  it('the timer is unref()ed and stopped by close(); 0 turns it off', async () => {
    const setSpy = vi.spyOn(globalThis, 'setInterval')
    const clearSpy = vi.spyOn(globalThis, 'clearInterval')
    const store = new MemorySessionStore({ sweepInterval: 20 })
    expect(setSpy).toHaveBeenCalledTimes(1)
    expect(setSpy.mock.calls[0][1]).toBe(20)
    const handle = setSpy.mock.results[0].value as NodeJS.Timeout
    expect(handle.hasRef()).toBe(false)
    await store.close()
    expect(clearSpy).toHaveBeenCalledWith(handle)
    const off = new MemorySessionStore({ sweepInterval: 0 })
    expect(setSpy).toHaveBeenCalledTimes(1)
    await off.close()
  })
})

describe('MemorySessionStore maxBytes', () => {
  it('refuses a session over maxBytes with SessionTooLargeError naming the option, and keeps the old record', async () => {
    const store = new MemorySessionStore({ maxBytes: 4096, sweepInterval: 0 })
    const s = await store.create()
    s.data.set('note', 'small')
    await store.save(s)
    s.data.set('blob', 'x'.repeat(5000))
    const err = await store.save(s).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SessionTooLargeError)
    expect((err as SessionTooLargeError).code).toBe('ERR_SESSION_TOO_LARGE')
    expect((err as Error).message).toMatch(/options\.maxBytes/)
    expect((await store.get(s.id))!.data.toJSON()).toEqual({ note: 'small' })
    // The default cap (1 MiB) holds for a store built without options too.
    const plain = new MemorySessionStore()
    const big = await plain.create()
    big.data.set('blob', 'x'.repeat(20 * 1024 * 1024))
    await expect(plain.save(big)).rejects.toThrow(SessionTooLargeError)
    await Promise.all([store.close(), plain.close()])
  })
})

// What MemorySessionStore drops when it is full: sessions without an identity (a visitor's CSRF
// token, a cart) before logged-in ones, least recently used first within each class; a byte
// budget over all sessions (maxTotalBytes) evicts in the same order; a read that finds a session
// expired removes its index entry at once.
afterEach(() => {
  vi.useRealTimers()
})

const stores: MemorySessionStore[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()))
})
function make(options: MemorySessionStoreOptions): MemorySessionStore {
  const store = new MemorySessionStore({ sweepInterval: 0, ...options })
  stores.push(store)
  return store
}

const KIB = 1024

describe('MemorySessionStore eviction order', () => {
  it('cookieless visitors never log a user out: anonymous sessions go first', async () => {
    const store = make({ maxSessions: 50 })
    const alice = await store.create({ identity: 'alice' })
    const visitors = []
    for (let i = 0; i < 500; i++) visitors.push(await store.create())
    expect(store.size).toBe(50)
    expect((await store.get(alice.id))?.avatar.identity).toBe('alice')
    expect((await store.listSessions('alice')).map((s) => s.id)).toEqual([alice.id])
    // Least recently used first among the anonymous: the newest 49 visitors are the ones kept.
    for (const v of visitors.slice(0, 451)) expect(await store.get(v.id)).toBeNull()
    for (const v of visitors.slice(451)) expect(await store.get(v.id)).not.toBeNull()
  })

  it('a visitor who logs in moves to the kept class; one who logs out moves back', async () => {
    const store = make({ maxSessions: 10 })
    const s = await store.create()
    for (let i = 0; i < 5; i++) await store.create()
    s.attachAvatar(new Avatar('bob'))
    expect(await store.save(s)).toBe(true)
    for (let i = 0; i < 100; i++) await store.create()
    const back = (await store.get(s.id))!
    expect(back.avatar.identity).toBe('bob')
    back.attachAvatar(new Avatar())
    expect(await store.save(back)).toBe(true)
    for (let i = 0; i < 100; i++) await store.create()
    expect(await store.get(s.id)).toBeNull()
  })

  it('once only logged-in sessions are left, the least recently used of them goes; never the one just written', async () => {
    const store = make({ maxSessions: 3 })
    const [a, b, c] = [
      await store.create({ identity: 'a' }),
      await store.create({ identity: 'b' }),
      await store.create({ identity: 'c' }),
    ]
    expect(await store.get(a.id)).not.toBeNull() // order now b, c, a
    // A new visitor finds no other anonymous session: b (the least recently used) makes room.
    const v1 = await store.create()
    expect(await store.get(b.id)).toBeNull()
    expect(await store.listSessions('b')).toEqual([])
    // From then on visitors displace each other, not users.
    let last = v1
    for (let i = 0; i < 20; i++) last = await store.create()
    expect(store.size).toBe(3)
    expect(await store.get(v1.id)).toBeNull()
    for (const s of [a, c, last]) expect(await store.get(s.id)).not.toBeNull() // order now a, c, last
    // Logins past the cap: first the last anonymous session goes, then the least recently used login.
    const d = await store.create({ identity: 'd' })
    expect(await store.get(last.id)).toBeNull()
    const e = await store.create({ identity: 'e' })
    expect(store.size).toBe(3)
    expect(await store.get(a.id)).toBeNull()
    for (const s of [c, d, e]) expect(await store.get(s.id)).not.toBeNull()
  })
})

describe('MemorySessionStore maxTotalBytes', () => {
  it('defaults to 64 MiB and refuses bad values, naming the option', () => {
    expect(make({}).maxTotalBytes).toBe(64 * KIB * KIB)
    expect(make({ maxTotalBytes: 10 * KIB }).maxTotalBytes).toBe(10 * KIB)
    expect(() => new MemorySessionStore({ maxTotalBytes: '1024' as never })).toThrow(TypeError)
    expect(() => new MemorySessionStore({ maxTotalBytes: '1024' as never })).toThrow(
      /options\.maxTotalBytes must be a number/,
    )
    for (const bad of [0, -1, 1.5, 1023, NaN, Infinity, 2 ** 53]) {
      expect(() => new MemorySessionStore({ maxTotalBytes: bad })).toThrow(RangeError)
      expect(() => new MemorySessionStore({ maxTotalBytes: bad })).toThrow(/options\.maxTotalBytes/)
    }
  })

  it('past the budget, evicts in the same order: anonymous first, the logged-in user stays', async () => {
    const store = make({ maxTotalBytes: 64 * KIB })
    const alice = await store.create({ identity: 'alice' })
    const visitors = []
    for (let i = 0; i < 100; i++) {
      const v = await store.create()
      v.data.set('blob', 'x'.repeat(4 * KIB))
      expect(await store.save(v)).toBe(true)
      visitors.push(v)
    }
    // Each visitor's record is over 4 KiB of JSON: at most 15 of them fit beside alice.
    expect(store.size).toBeLessThanOrEqual(16)
    expect(store.size).toBeGreaterThan(10)
    expect((await store.get(alice.id))?.avatar.identity).toBe('alice')
    expect(await store.get(visitors[99].id)).not.toBeNull()
    expect(await store.get(visitors[0].id)).toBeNull()
  })

  it('counts what it frees: after deletes, expiry and shrinking saves, the budget is free again', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const store = make({ maxTotalBytes: 64 * KIB })
    const fill = async (n: number, ttl?: number) => {
      const out = []
      for (let i = 0; i < n; i++) {
        const s = await store.create({ identity: `u${i}` }, ttl === undefined ? undefined : { ttl })
        s.data.set('blob', 'x'.repeat(4 * KIB))
        expect(await store.save(s)).toBe(true)
        out.push(s)
      }
      return out
    }
    for (const s of await fill(12)) expect(await store.delete(s.id)).toBe(true)
    const shrunk = await fill(12)
    for (const s of shrunk) {
      s.data.delete('blob')
      expect(await store.save(s)).toBe(true)
    }
    await fill(6, 1_000)
    vi.setSystemTime(Date.now() + 2_000)
    expect(await store.purgeExpired()).toBe(6)
    // 12 small + 12 × 4 KiB fit in 64 KiB only if every byte above was given back.
    const kept = await fill(12)
    expect(store.size).toBe(24)
    for (const s of [...shrunk, ...kept]) expect(await store.get(s.id)).not.toBeNull()
  })

  it('a single session bigger than the budget is refused, naming the option; nothing is evicted for it', async () => {
    const store = make({ maxTotalBytes: 8 * KIB })
    const alice = await store.create({ identity: 'alice' })
    const v = await store.create()
    v.data.set('note', 'small')
    expect(await store.save(v)).toBe(true)
    v.data.set('blob', 'x'.repeat(9 * KIB))
    const err = await store.save(v).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SessionTooLargeError)
    expect((err as SessionTooLargeError).code).toBe('ERR_SESSION_TOO_LARGE')
    expect((err as Error).message).toMatch(/options\.maxTotalBytes/)
    expect(store.size).toBe(2)
    expect(await store.get(alice.id)).not.toBeNull()
    expect((await store.get(v.id))!.data.toJSON()).toEqual({ note: 'small' })
  })
})

// The index is private; this subclass reads it through the protected primitives every store has.
class IndexProbe extends MemorySessionStore {
  async entries(identity: string): Promise<number> {
    return (await this.indexList(this.indexNames(identity)[0])).length
  }
}

describe('MemorySessionStore index on expiry', () => {
  it('a read that finds a session expired drops its index entry at once, not at the next purge', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const store = new IndexProbe({ sweepInterval: 0 })
    stores.push(store)
    const sessions = []
    for (let i = 0; i < 3; i++) sessions.push(await store.create({ identity: 'alice' }, { ttl: 1_000 }))
    const live = await store.create({ identity: 'alice' })
    expect(await store.entries('alice')).toBe(4)
    vi.setSystemTime(Date.now() + 2_000)
    for (const s of sessions) expect(await store.get(s.id)).toBeNull()
    expect(store.size).toBe(1)
    expect(await store.entries('alice')).toBe(1)
    expect((await store.listSessions('alice')).map((s) => s.id)).toEqual([live.id])
  })
})
