import { describe, expect, it } from 'vitest'
import { MemorySessionStore } from '../lib/stores/memory-store'
import { describeStoreContract } from './store-contract'

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
