// The cookie-session behaviour every HTTP adapter must show (Fastify, fetch/Hono), driven over a
// real listening server with fetch and a one-cookie jar. An adapter's test file supplies `start`,
// which serves these routes with the adapter under test:
//   GET  /count   adds 1 to data.n, answers { n, user }
//   GET  /peek    reads only, answers { n, user }
//   POST /login   attachAvatar(alice), answers { ok }
//   POST /logout  invalidate(), answers { ok }
//   POST /login-fail   attachAvatar(admin), then throws (the framework answers 500)
//   GET  /paid-fail    data.set('paid', true), then throws
//   POST /logout-fail  invalidate(), then throws
//   POST /login-503    attachAvatar(admin) and data.set('paid', true), then answers 503 without a throw
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SessionConflictError, SessionStoreUnavailableError } from '../../lib/core/errors'
import { generateSessionId, isValidSessionId } from '../../lib/core/ids'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import type { SessionMiddlewareOptions } from '../../lib/http/session-core'
import type { SessionStore } from '../../lib/stores/store'

export interface Served {
  url: string
  close(): Promise<void>
}
export type Start = (options: SessionMiddlewareOptions) => Promise<Served>

export const quietLogger = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() })

/** A client that keeps the one session cookie, as a browser would. */
export class Client {
  cookie: string | null = null
  last: Response | null = null
  constructor(
    readonly base: string,
    readonly name = 'sid',
  ) {}

  async call(
    path: string,
    method = 'GET',
    headers: Record<string, string> = {},
  ): Promise<{ n: number | null; user: string; ok?: boolean }> {
    const res = await fetch(new URL(path, this.base), {
      method,
      redirect: 'manual',
      headers: this.cookie === null ? headers : { ...headers, cookie: `${this.name}=${this.cookie}` },
    })
    this.last = res
    const set = this.setCookie()
    if (set !== null) {
      const value = set.split(';')[0].slice(this.name.length + 1)
      this.cookie = /max-age=0/i.test(set) ? null : value
    }
    const text = await res.text()
    return text.startsWith('{') ? JSON.parse(text) : { n: null, user: '', ok: false }
  }

  /** Our Set-Cookie header of the last response, or null. */
  setCookie(): string | null {
    const all = this.last?.headers.getSetCookie() ?? []
    return all.find((c) => c.startsWith(`${this.name}=`)) ?? null
  }
}

export function sessionHttpSuite(adapter: string, start: Start): void {
  describe(`${adapter}: cookie sessions over real HTTP`, () => {
    const cleanups: Array<() => Promise<void> | void> = []
    afterEach(async () => {
      while (cleanups.length > 0) await cleanups.pop()!()
    })
    async function serve(options: Partial<SessionMiddlewareOptions> = {}) {
      const store = (options.store as MemorySessionStore | undefined) ?? new MemorySessionStore()
      const served = await start({ logger: quietLogger(), ...options, store })
      cleanups.push(
        () => store.close(),
        () => served.close(),
      )
      return { store, client: new Client(served.url, options.cookieName), url: served.url }
    }

    it('a new visitor who changes nothing gets no cookie and nothing is stored', async () => {
      const { store, client } = await serve()
      expect(await client.call('/peek')).toEqual({ n: null, user: 'anonymous' })
      expect(client.setCookie()).toBeNull()
      expect(store.size).toBe(0)
    })

    it('stores a changed session, reconnects by its cookie, and answers only once it is stored', async () => {
      const { store, client } = await serve()
      expect((await client.call('/count')).n).toBe(1)
      const cookie = client.setCookie()!
      expect(cookie).toMatch(/HttpOnly/i)
      expect(cookie).toMatch(/SameSite=Lax/i)
      expect(cookie).toMatch(/Path=\//)
      expect(cookie).toMatch(/Max-Age=3600/)
      expect(cookie).not.toMatch(/Secure/i)
      expect(isValidSessionId(client.cookie!)).toBe(true)
      // The response came after the write: the store already holds it.
      expect((await store.get(client.cookie!))?.data.get('n')).toBe(1)
      expect((await client.call('/count')).n).toBe(2)
      expect((await client.call('/peek')).n).toBe(2)
      expect(store.size).toBe(1)
    })

    it('writes back only when the handler changed something', async () => {
      const { store, client } = await serve()
      await client.call('/count')
      const save = vi.spyOn(store, 'save')
      await client.call('/peek')
      await client.call('/peek')
      expect(save).not.toHaveBeenCalled()
      expect(client.setCookie()).toBeNull() // not rolling: nothing to refresh
      await client.call('/count')
      expect(save).toHaveBeenCalledTimes(1)
    })

    it('moves the session to a new id at login and deletes the old one', async () => {
      const { store, client } = await serve()
      await client.call('/count')
      const before = client.cookie!
      expect((await client.call('/login', 'POST')).ok).toBe(true)
      const after = client.cookie!
      expect(after).not.toBe(before)
      expect(isValidSessionId(after)).toBe(true)
      expect(await store.get(before)).toBeNull()
      expect(await client.call('/peek')).toEqual({ n: 1, user: 'alice' }) // data came along
    })

    it('a fixed id planted before login is worthless after it', async () => {
      const { store, client } = await serve()
      await client.call('/count')
      const planted = client.cookie!
      await client.call('/login', 'POST')
      const attacker = new Client(client.base)
      attacker.cookie = planted
      expect(await attacker.call('/peek')).toEqual({ n: null, user: 'anonymous' })
      expect(store.size).toBe(1)
    })

    it('deletes the session and clears the cookie at logout', async () => {
      const { store, client } = await serve()
      await client.call('/login', 'POST')
      const id = client.cookie!
      await client.call('/logout', 'POST')
      expect(client.setCookie()).toMatch(/Max-Age=0/i)
      expect(client.cookie).toBeNull()
      expect(await store.get(id)).toBeNull()
      expect(store.size).toBe(0)
    })

    it('an unknown, malformed or tampered cookie just gets a fresh session, without store I/O for a malformed one', async () => {
      const { store, client } = await serve()
      const get = vi.spyOn(store, 'get')
      for (const bad of ['../../etc/passwd', 'x'.repeat(5000), '%00', generateSessionId()]) {
        client.cookie = bad
        expect(await client.call('/peek')).toEqual({ n: null, user: 'anonymous' })
      }
      expect(get).toHaveBeenCalledTimes(1) // only the well-formed unknown id reached the store
    })

    it('the cookie follows the server-side expiry: re-sent on a write-back and on a persisted touch, not otherwise', async () => {
      const { client } = await serve({ store: new MemorySessionStore({ ttl: 120_000 }) })
      await client.call('/count')
      await client.call('/peek') // a read within touchAfter: the stored expiry did not move
      expect(client.setCookie()).toBeNull()
      await client.call('/count') // a write-back moves it
      expect(client.setCookie()).toMatch(/Max-Age=120;/)
      const touchy = await serve({ store: new MemorySessionStore({ ttl: 120_000, touchAfter: 0 }) })
      await touchy.client.call('/count')
      // A touch persists when the stored lastAccess is older than touchAfter: let the clock move.
      const written = Date.now()
      while (Date.now() <= written + 1) await new Promise((r) => setImmediate(r))
      await touchy.client.call('/peek') // touchAfter 0: every read persists its touch
      expect(touchy.client.setCookie()).toMatch(/Max-Age=120;/)
    })

    it('rolling: the cookie is re-sent with a fresh Max-Age on every response', async () => {
      const { client } = await serve({ rolling: true, ttl: 120_000 })
      await client.call('/count')
      await client.call('/peek')
      expect(client.setCookie()).toMatch(/Max-Age=120/)
    })

    it('Secure comes from X-Forwarded-Proto only with trustProxy', async () => {
      const plain = await serve()
      await plain.client.call('/count', 'GET', { 'x-forwarded-proto': 'https' })
      expect(plain.client.setCookie()).not.toMatch(/Secure/i)
      const proxied = await serve({ trustProxy: true })
      await proxied.client.call('/count', 'GET', { 'x-forwarded-proto': 'https' })
      expect(proxied.client.setCookie()).toMatch(/Secure/i)
    })

    it('a write-back that fails (an error, a conflict, an unavailable store) is an error response without the cookie, and is logged', async () => {
      const failures = [
        new Error('disk on fire'),
        new SessionConflictError('session changed too often', 'ERR_SESSION_CONFLICT'),
        new SessionStoreUnavailableError('store down', 'ERR_SESSION_STORE_UNAVAILABLE'),
      ]
      for (const failure of failures) {
        const logger = quietLogger()
        const store = new MemorySessionStore()
        vi.spyOn(store, 'save').mockRejectedValue(failure)
        const { client } = await serve({ store, logger })
        await client.call('/count')
        expect(client.last!.status, failure.message).toBeGreaterThanOrEqual(500)
        expect(client.setCookie()).toBeNull()
        expect(logger.error).toHaveBeenCalledWith(
          'session write-back failed',
          expect.objectContaining({ reason: expect.stringContaining(failure.message) }),
        )
      }
    })

    it('a logout the store could not record is not answered as a success; the client keeps its cookie to retry', async () => {
      const { store, client } = await serve()
      await client.call('/login', 'POST')
      const id = client.cookie!
      vi.spyOn(store, 'delete').mockRejectedValueOnce(
        new SessionStoreUnavailableError('store down', 'ERR_SESSION_STORE_UNAVAILABLE'),
      )
      await client.call('/logout', 'POST')
      expect(client.last!.status).toBeGreaterThanOrEqual(500)
      expect(client.setCookie()).toBeNull()
      expect((await store.get(id))?.avatar.identity).toBe('alice') // still logged in, and not told otherwise
      await client.call('/logout', 'POST')
      expect(client.last!.status).toBe(200)
      expect(client.cookie).toBeNull()
      expect(await store.get(id)).toBeNull()
    })

    it('a login whose old id could not be deleted is an error response and leaves no copy under a new id', async () => {
      const { store, client } = await serve()
      await client.call('/count')
      const id = client.cookie!
      vi.spyOn(store, 'delete').mockRejectedValueOnce(new Error('delete failed'))
      await client.call('/login', 'POST')
      expect(client.last!.status).toBeGreaterThanOrEqual(500)
      expect(client.setCookie()).toBeNull()
      expect((await store.dump()).sessions.map((r) => r.id)).toEqual([id])
    })

    it('a handler that throws after a login persists nothing and sends no cookie', async () => {
      const { store, client } = await serve()
      await client.call('/login-fail', 'POST') // a new visitor
      expect(client.last!.status).toBe(500)
      expect(client.setCookie()).toBeNull()
      expect(store.size).toBe(0)
      await client.call('/count')
      const id = client.cookie!
      await client.call('/login-fail', 'POST') // a visitor with a session
      expect(client.last!.status).toBe(500)
      expect(client.setCookie()).toBeNull()
      expect(store.size).toBe(1)
      expect((await store.get(id))!.avatar.isAnonymous).toBe(true)
      expect(await client.call('/peek')).toEqual({ n: 1, user: 'anonymous' })
    })

    it('a handler that throws after changing data persists nothing', async () => {
      const { store, client } = await serve()
      await client.call('/paid-fail')
      expect(client.last!.status).toBe(500)
      expect(client.setCookie()).toBeNull()
      expect(store.size).toBe(0)
      await client.call('/count')
      const id = client.cookie!
      await client.call('/paid-fail')
      expect(client.last!.status).toBe(500)
      expect(client.setCookie()).toBeNull()
      expect((await store.get(id))!.data.toJSON()).toEqual({ n: 1 })
    })

    it('a 5xx response persists nothing, login included, and sends no cookie', async () => {
      const { store, client } = await serve()
      await client.call('/count')
      const id = client.cookie!
      await client.call('/login-503', 'POST')
      expect(client.last!.status).toBe(503)
      expect(client.setCookie()).toBeNull()
      expect(store.size).toBe(1)
      const stored = (await store.get(id))!
      expect(stored.avatar.isAnonymous).toBe(true)
      expect(stored.data.toJSON()).toEqual({ n: 1 })
    })

    it('a logout in a request that throws is still carried out', async () => {
      const { store, client } = await serve()
      await client.call('/login', 'POST')
      const id = client.cookie!
      await client.call('/logout-fail', 'POST')
      expect(client.last!.status).toBe(500)
      expect(await store.get(id)).toBeNull()
      expect(store.size).toBe(0)
      const set = client.setCookie()
      if (set !== null) expect(set).toMatch(/Max-Age=0/i) // only a clearing cookie, where the adapter makes the response
    })

    it('a read-only response that finishes after a concurrent logout does not re-send the cookie', async () => {
      // Another request logs out while this one runs: the session is deleted right after this
      // request has read it (and, with touchAfter 0, persisted its touch).
      const logoutDuringRead = (store: MemorySessionStore) => {
        const read = store.get.bind(store)
        vi.spyOn(store, 'get').mockImplementationOnce(async (sid) => {
          const session = await read(sid)
          await store.delete(sid)
          return session
        })
      }
      const rolling = await serve({ rolling: true })
      await rolling.client.call('/count')
      logoutDuringRead(rolling.store)
      expect((await rolling.client.call('/peek')).n).toBe(1)
      expect(rolling.client.setCookie()).toBeNull()

      const touchy = await serve({ store: new MemorySessionStore({ ttl: 120_000, touchAfter: 0 }) })
      await touchy.client.call('/count')
      const written = Date.now()
      while (Date.now() <= written + 1) await new Promise((r) => setImmediate(r))
      logoutDuringRead(touchy.store)
      expect((await touchy.client.call('/peek')).n).toBe(1)
      expect(touchy.client.setCookie()).toBeNull()
    })

    it('takes the middleware options: cookieName, cookie attributes, ttl', async () => {
      const { client } = await serve({
        cookieName: 'app_sid',
        cookie: { sameSite: 'strict', path: '/', secure: true },
        ttl: 90_000,
      })
      await client.call('/count')
      const cookie = client.setCookie()!
      expect(cookie.startsWith('app_sid=')).toBe(true)
      expect(cookie).toMatch(/SameSite=Strict/i)
      expect(cookie).toMatch(/Secure/i)
      expect(cookie).toMatch(/Max-Age=90/)
    })
  })
}

export type { SessionStore }
