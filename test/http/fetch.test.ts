// withSession (sealed-session/fetch) through Hono on @hono/node-server, over real HTTP on
// 127.0.0.1: the shared cookie-session suite, then what is the fetch adapter's own.
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { withSession, type SessionHandler } from '../../lib/http/fetch'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import type { SessionMiddlewareOptions } from '../../lib/http/session-core'
import { Client, quietLogger, sessionHttpSuite } from '../helpers/session-http-suite'

const handler: SessionHandler = async (request, session) => {
  const { pathname } = new URL(request.url)
  if (pathname === '/count') {
    const n = session.data.get('n', 0) + 1
    session.data.set('n', n)
    return Response.json({ n, user: session.avatar.identity })
  }
  if (pathname === '/peek')
    return Response.json({ n: session.data.get<number>('n') ?? null, user: session.avatar.identity })
  if (pathname === '/login' && request.method === 'POST') {
    session.attachAvatar(new Avatar('alice', ['member']))
    return Response.json({ ok: true })
  }
  if (pathname === '/logout' && request.method === 'POST') {
    session.invalidate()
    return Response.json({ ok: true })
  }
  if (pathname === '/login-redirect' && request.method === 'POST') {
    session.attachAvatar(new Avatar('bob'))
    return Response.redirect(new URL('/peek', request.url), 303) // immutable headers
  }
  if (pathname === '/login-fail' && request.method === 'POST') {
    session.attachAvatar(new Avatar('admin'))
    throw new Error('2FA check failed')
  }
  if (pathname === '/paid-fail') {
    session.data.set('paid', true)
    throw new Error('payment failed')
  }
  if (pathname === '/logout-fail' && request.method === 'POST') {
    session.invalidate()
    throw new Error('failed after logout')
  }
  if (pathname === '/login-503' && request.method === 'POST') {
    session.attachAvatar(new Avatar('admin'))
    session.data.set('paid', true)
    return Response.json({ ok: false }, { status: 503 })
  }
  if (pathname === '/network-error') {
    session.data.set('paid', true)
    if (request.method === 'POST') session.invalidate()
    return Response.error()
  }
  if (pathname === '/throw') {
    session.data.set('n', 99)
    throw new Error('handler failed')
  }
  return new Response('not found', { status: 404 })
}

async function listen(app: Hono): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}/`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
          }),
      })
    })
  })
}

function honoApp(options: SessionMiddlewareOptions): Hono {
  const handle = withSession(options, handler)
  const app = new Hono()
  app.all('*', (c) => handle(c.req.raw))
  app.onError((err, c) => c.text(`error: ${err.message}`, 500))
  return app
}

sessionHttpSuite('fetch (Hono)', async (options) => listen(honoApp(options)))

describe('withSession', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    vi.restoreAllMocks()
    while (cleanups.length > 0) await cleanups.pop()!()
  })

  async function served() {
    const store = new MemorySessionStore()
    const s = await listen(honoApp({ store, logger: quietLogger() }))
    cleanups.push(() => store.close(), s.close)
    return { store, client: new Client(s.url) }
  }

  it('adds the cookie to a response whose headers are immutable (Response.redirect)', async () => {
    const { store, client } = await served()
    await client.call('/login-redirect', 'POST')
    expect(client.last!.status).toBe(303)
    expect(client.last!.headers.get('location')).toMatch(/\/peek$/)
    expect(client.cookie).not.toBeNull()
    expect((await store.get(client.cookie!))?.avatar.identity).toBe('bob')
  })

  it('writes nothing when the handler throws, and passes the error on', async () => {
    const { store, client } = await served()
    await client.call('/throw')
    expect(client.last!.status).toBe(500)
    expect(client.setCookie()).toBeNull()
    expect(store.size).toBe(0)
  })

  it('a handler that returns Response.error() persists nothing and answers that error, not a rejection', async () => {
    const { store, client } = await served()
    await client.call('/count')
    const id = client.cookie!
    // @hono/node-server answers a network error with a 500 and logs the status 0 it refused.
    vi.spyOn(console, 'error').mockImplementation(() => undefined)
    await client.call('/network-error')
    expect(client.last!.ok).toBe(false)
    expect(client.setCookie()).toBeNull()
    expect((await store.get(id))!.data.toJSON()).toEqual({ n: 1 })

    // Called directly: the same Response.error() comes back, with no cookie added.
    const handle = withSession({ store, logger: quietLogger() }, handler)
    const direct = await handle(new Request('http://app.example/network-error', { headers: { cookie: `sid=${id}` } }))
    expect(direct.type).toBe('error')
    expect((await store.get(id))!.data.toJSON()).toEqual({ n: 1 })
    // A logout in it is still carried out.
    const logout = await handle(
      new Request('http://app.example/network-error', { method: 'POST', headers: { cookie: `sid=${id}` } }),
    )
    expect(logout.type).toBe('error')
    expect(await store.get(id)).toBeNull()
  })

  it('a write-back that fails is answered with a 500, without the cookie', async () => {
    const store = new MemorySessionStore()
    cleanups.push(() => store.close())
    const handle = withSession({ store, logger: quietLogger() }, handler)
    const login = await handle(new Request('http://app.example/login', { method: 'POST' }))
    const cookie = login.headers.getSetCookie()[0].split(';')[0]
    vi.spyOn(store, 'delete').mockRejectedValueOnce(new Error('delete failed'))
    const logout = await handle(new Request('http://app.example/logout', { method: 'POST', headers: { cookie } }))
    expect(logout.status).toBe(500)
    expect(logout.headers.getSetCookie()).toEqual([])
    expect((await store.get(cookie.slice('sid='.length)))?.avatar.identity).toBe('alice')
  })

  it('works without a server: a Request in, a Response with Set-Cookie out', async () => {
    const store = new MemorySessionStore()
    cleanups.push(() => store.close())
    const handle = withSession({ store }, handler)
    const first = await handle(new Request('https://app.example/count'))
    const cookie = first.headers.getSetCookie()[0]
    expect(cookie).toMatch(/^sid=[A-Za-z0-9_-]{43}; Max-Age=3600; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
    const second = await handle(new Request('https://app.example/count', { headers: { cookie: cookie.split(';')[0] } }))
    expect(await second.json()).toEqual({ n: 2, user: 'anonymous' })
  })

  it('checks its arguments', async () => {
    const store = new MemorySessionStore()
    cleanups.push(() => store.close())
    expect(() => withSession({ store, ttl: -1 }, handler)).toThrow(RangeError)
    expect(() => withSession({ store, bogus: 1 } as unknown as SessionMiddlewareOptions, handler)).toThrow(
      /options\.bogus is not an option of withSession/,
    )
    expect(() => withSession({ store }, 'nope' as unknown as SessionHandler)).toThrow(/handler must be a function/)
    const bad = withSession({ store }, (async () => 'text') as unknown as SessionHandler)
    await expect(bad(new Request('http://x/'))).rejects.toThrow(/must return a Response/)
    await expect(withSession({ store }, handler)(42 as unknown as Request)).rejects.toThrow(TypeError)
  })
})
