// One timer for every Redis command in flight: many commands share a single
// timeout, a command that never answers still rejects at its own deadline with
// SessionStoreUnavailableError, answers keep their order-independent values, and a failure that
// arrives after the deadline goes nowhere (no unhandled rejection).
import { describe, expect, it, vi } from 'vitest'
import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { CommandDeadlines } from '../../lib/stores/redis-deadlines'

function deferred<T>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

describe('CommandDeadlines', () => {
  it('a thousand commands in flight hold one timer; answered ones resolve with their values', async () => {
    const d = new CommandDeadlines(5_000)
    const timers = vi.spyOn(globalThis, 'setTimeout')
    const pending = Array.from({ length: 1_000 }, () => deferred<number>())
    let watched: Promise<number>[]
    try {
      watched = pending.map((p, i) => d.watch(`CMD${i}`, p.promise))
      expect(timers).toHaveBeenCalledTimes(1)
    } finally {
      timers.mockRestore()
    }
    pending.forEach((p, i) => p.resolve(i * 2))
    expect(await Promise.all(watched)).toEqual(pending.map((_, i) => i * 2))
  })

  it('a command that never answers rejects at its deadline, while later ones still get theirs', async () => {
    const d = new CommandDeadlines(150)
    const hung = deferred<string>()
    const t = Date.now()
    const first = d.watch('GETRANGE', hung.promise)
    first.catch(() => {})
    await new Promise((r) => setTimeout(r, 60))
    const late = deferred<string>()
    const second = d.watch('SET', late.promise)
    second.catch(() => {})
    await expect(first).rejects.toBeInstanceOf(SessionStoreUnavailableError)
    await expect(first).rejects.toMatchObject({ code: 'ERR_SESSION_STORE_UNAVAILABLE', message: /GETRANGE.*150 ms/ })
    expect(Date.now() - t).toBeGreaterThanOrEqual(145)
    late.resolve('OK') // answered before its own deadline (60 ms later than the first's)
    expect(await second).toBe('OK')
    // a third that hangs too rejects on its own schedule
    const third = d.watch('DEL', deferred<string>().promise)
    const t3 = Date.now()
    await expect(third).rejects.toBeInstanceOf(SessionStoreUnavailableError)
    expect(Date.now() - t3).toBeGreaterThanOrEqual(145)
  })

  it('a failure after the deadline is dropped (no unhandled rejection); connection errors are mapped', async () => {
    const unhandled: unknown[] = []
    const on = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', on)
    try {
      const d = new CommandDeadlines(50)
      const slow = deferred<string>()
      await expect(d.watch('GET', slow.promise)).rejects.toBeInstanceOf(SessionStoreUnavailableError)
      slow.reject(new Error('Connection is closed.'))
      const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
      await expect(d.watch('GET', Promise.reject(refused))).rejects.toMatchObject({
        name: 'SessionStoreUnavailableError',
        cause: refused,
      })
      const scriptError = new Error('ERR Error running script')
      await expect(d.watch('EVALSHA', Promise.reject(scriptError))).rejects.toBe(scriptError) // not an outage: unchanged
      await new Promise((r) => setTimeout(r, 20))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', on)
    }
  })
})
