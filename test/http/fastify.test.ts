// The Fastify 5 plugin over a real listening Fastify server on 127.0.0.1: the shared cookie-session
// suite, then what is Fastify's own (registration, encapsulation, hooks, option errors).
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import sealedSession, { sealedSession as named } from '../../lib/http/fastify'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import type { SessionMiddlewareOptions } from '../../lib/http/session-core'
import { Client, quietLogger, sessionHttpSuite } from '../helpers/session-http-suite'

function routes(app: FastifyInstance): void {
  app.get('/count', async (request) => {
    const n = request.session.data.get('n', 0) + 1
    request.session.data.set('n', n)
    return { n, user: request.session.avatar.identity }
  })
  app.get('/peek', async (request) => ({
    n: request.session.data.get<number>('n') ?? null,
    user: request.session.avatar.identity,
  }))
  app.post('/login', async (request) => {
    request.session.attachAvatar(new Avatar('alice', ['member']))
    return { ok: true }
  })
  app.post('/logout', async (request) => {
    request.session.invalidate()
    return { ok: true }
  })
  app.post('/login-fail', async (request) => {
    request.session.attachAvatar(new Avatar('admin'))
    throw new Error('2FA check failed')
  })
  app.get('/paid-fail', async (request) => {
    request.session.data.set('paid', true)
    throw new Error('payment failed')
  })
  app.post('/logout-fail', async (request) => {
    request.session.invalidate()
    throw new Error('failed after logout')
  })
  app.post('/login-503', async (request, reply) => {
    request.session.attachAvatar(new Avatar('admin'))
    request.session.data.set('paid', true)
    return reply.code(503).send({ ok: false })
  })
}

async function listen(app: FastifyInstance): Promise<{ url: string; close: () => Promise<void> }> {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url: address, close: () => app.close() }
}

sessionHttpSuite('fastify', async (options: SessionMiddlewareOptions) => {
  const app = Fastify()
  await app.register(sealedSession, options)
  routes(app)
  return listen(app)
})

describe('fastify plugin', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!()
  })

  it('is the default export and the named export alike', () => {
    expect(named).toBe(sealedSession)
  })

  it('is not encapsulated: routes of child plugins registered afterwards see request.session', async () => {
    const store = new MemorySessionStore()
    const app = Fastify()
    await app.register(sealedSession, { store, logger: quietLogger() })
    await app.register(async (child) => routes(child), { prefix: '/child' })
    const served = await listen(app)
    cleanups.push(() => store.close(), served.close)
    const client = new Client(served.url)
    expect((await client.call('/child/count')).n).toBe(1)
    expect((await client.call('/child/count')).n).toBe(2)
  })

  it('refuses an unknown option at registration, naming it', async () => {
    const app = Fastify()
    app.register(sealedSession, {
      store: new MemorySessionStore(),
      cookiename: 'x',
    } as unknown as SessionMiddlewareOptions)
    await expect(app.ready()).rejects.toThrow(/options\.cookiename is not an option of sealedSession/)
    await app.close()
  })

  it('a route that throws a 4xx error after a login persists nothing and sends no cookie', async () => {
    const store = new MemorySessionStore()
    const app = Fastify()
    await app.register(sealedSession, { store, logger: quietLogger() })
    app.post('/2fa', async (request) => {
      request.session.attachAvatar(new Avatar('admin'))
      throw Object.assign(new Error('2FA check failed'), { statusCode: 401 })
    })
    routes(app)
    const served = await listen(app)
    cleanups.push(() => store.close(), served.close)
    const client = new Client(served.url)
    await client.call('/count')
    const id = client.cookie!
    await client.call('/2fa', 'POST')
    expect(client.last!.status).toBe(401)
    expect(client.setCookie()).toBeNull()
    expect(store.size).toBe(1)
    expect((await store.get(id))!.avatar.isAnonymous).toBe(true)
  })

  it('a failed write-back goes to the error handler; the reply is its answer', async () => {
    const store = new MemorySessionStore()
    const app = Fastify()
    await app.register(sealedSession, { store, logger: quietLogger() })
    const seen: unknown[] = []
    app.setErrorHandler(async (error, _request, reply) => {
      seen.push(error)
      return reply.code(503).send({ error: (error as Error).message })
    })
    routes(app)
    const served = await listen(app)
    cleanups.push(() => store.close(), served.close)
    const client = new Client(served.url)
    await client.call('/login', 'POST')
    const id = client.cookie!
    const failure = new Error('delete failed')
    vi.spyOn(store, 'delete').mockRejectedValueOnce(failure)
    await client.call('/logout', 'POST')
    expect(client.last!.status).toBe(503)
    expect(seen).toEqual([failure])
    expect(client.setCookie()).toBeNull()
    expect((await store.get(id))?.avatar.identity).toBe('alice')
  })
})
