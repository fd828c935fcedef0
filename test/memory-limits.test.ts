// #18.3 and #16.2: the memory store holds at most maxSessions (least recently used dropped first),
// sweeps expired sessions on an unref'd timer, and refuses a session over maxBytes.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SessionTooLargeError } from '../lib/core/errors'
import { MemorySessionStore } from '../lib/stores/memory-store'

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
