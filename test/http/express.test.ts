// ExpressSessionStore under real express + express-session, over FileSessionStore, on a real
// HTTP server on 127.0.0.1. Each test gets a fresh directory; servers and stores are closed.
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import express from 'express'
import session from 'express-session'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ExpressSessionStore, expressId } from '../../lib/http/express'
import { FileSessionStore } from '../../lib/stores/file-store'
import { isValidSessionId, storageName } from '../../lib/core/ids'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { expressSessionApp, type Gate } from '../helpers/express-session-app'

const SECRET = 'express adapter test secret, 32+ chars'
const MARKER = 'plaintext-marker-7f3a'
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-express-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** An express app with express-session over our file store in `dir`; close() stops both. */
async function startApp(dir: string) {
  const files = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
  const store = new ExpressSessionStore({ store: files })
  const app = express()
  app.use(
    session({
      secret: 'cookie signing secret',
      resave: false,
      saveUninitialized: false,
      store,
      cookie: { maxAge: 60_000 },
    }),
  )
  app.get('/count', (req, res) => {
    req.session.n = (req.session.n ?? 0) + 1
    req.session.note = MARKER
    res.json({ n: req.session.n })
  })
  app.get('/peek', (req, res) => {
    res.json({ n: req.session.n ?? null })
  })
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })))
  })
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    const done = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections()
    await done
    await files.close()
  }
  cleanups.push(close)
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, files, store, close }
}

async function get(url: string, cookie?: string, method = 'GET') {
  const res = await fetch(url, { method, headers: cookie ? { cookie } : {} })
  return { res, body: (await res.json()) as any }
}

/** connect.sid from a response, and the express session id inside its signed value. */
function cookieOf(res: Response): { header: string; sid: string } {
  const raw = res.headers.getSetCookie().find((c) => c.startsWith('connect.sid='))!
  const header = raw.split(';')[0]
  const value = decodeURIComponent(header.slice('connect.sid='.length)) // "s:<sid>.<signature>"
  return { header, sid: value.slice(2, value.lastIndexOf('.')) }
}

describe('ExpressSessionStore with express-session over FileSessionStore', () => {
  it('keeps the session across requests and across a restart (new app, new store, same dir)', async () => {
    const dir = tempDir()
    const first = await startApp(dir)
    const one = await get(`${first.url}/count`)
    const { header } = cookieOf(one.res)
    expect(one.body.n).toBe(1)
    expect((await get(`${first.url}/count`, header)).body.n).toBe(2)
    expect((await get(`${first.url}/peek`, header)).body.n).toBe(2)
    await first.close()

    const second = await startApp(dir)
    expect((await get(`${second.url}/peek`, header)).body.n).toBe(2)
    expect((await get(`${second.url}/count`, header)).body.n).toBe(3)
  })

  it('stores an encrypted envelope: SEAL magic, no plaintext of the session', async () => {
    const dir = tempDir()
    const app = await startApp(dir)
    const { sid } = cookieOf((await get(`${app.url}/count`)).res)
    const id = expressId(sid)
    expect(isValidSessionId(id)).toBe(true)
    const files = fs.readdirSync(dir).filter((f) => !f.endsWith('.lock'))
    expect(files).toEqual([storageName(id)]) // named by storage name: neither id in the listing
    const bytes = fs.readFileSync(path.join(dir, files[0]))
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('SEAL')
    const text = bytes.toString('latin1')
    for (const needle of [MARKER, sid, id, 'cookie', 'expires', 'expressSession', '"n"'])
      expect(text).not.toContain(needle)
  })

  it('destroy (logout) removes the file', async () => {
    const dir = tempDir()
    const app = await startApp(dir)
    const { header, sid } = cookieOf((await get(`${app.url}/count`)).res)
    const file = path.join(dir, storageName(expressId(sid)))
    expect(fs.existsSync(file)).toBe(true)
    expect((await get(`${app.url}/logout`, header, 'POST')).body).toEqual({ ok: true })
    expect(fs.existsSync(file)).toBe(false)
    expect((await get(`${app.url}/peek`, header)).body.n).toBeNull()
  })

  it('all, length and clear see the express sessions only', async () => {
    const dir = tempDir()
    const app = await startApp(dir)
    const sids = []
    for (let i = 0; i < 3; i++) sids.push(cookieOf((await get(`${app.url}/count`)).res).sid)
    const own = await app.files.create({ sub: 'not an express session' }) // shares the store

    const all = (await promisify(app.store.all.bind(app.store))())!
    expect(Object.keys(all).sort()).toEqual([...sids].sort())
    for (const sid of sids) {
      expect(all[sid]).toMatchObject({ n: 1, note: MARKER })
      expect(all[sid].cookie.expires).toBeTypeOf('string')
    }
    expect(await promisify(app.store.length.bind(app.store))()).toBe(3)

    await promisify(app.store.clear.bind(app.store))()
    expect(await promisify(app.store.length.bind(app.store))()).toBe(0)
    expect(await app.files.get(own.id)).not.toBeNull() // clear left it alone
  })
})

describe('ExpressSessionStore callbacks', () => {
  const cookie = (ms: number) => ({
    originalMaxAge: ms,
    expires: new Date(Date.now() + ms).toISOString(),
    httpOnly: true,
    path: '/',
  })
  const make = (options: { touchAfter?: number } = {}) => {
    const inner = new MemorySessionStore()
    cleanups.push(() => inner.close())
    return { inner, store: new ExpressSessionStore({ store: inner, ...options }) }
  }
  const call = <T>(fn: (cb: (err: unknown, value?: T) => void) => void) =>
    new Promise<T | undefined>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))

  it('set/get round-trip; the ttl comes from cookie.expires; get drops an expired one', async () => {
    const { inner, store } = make()
    await call((cb) => store.set('abc', { cookie: cookie(60_000), n: 5 } as never, cb))
    expect(await call((cb) => store.get('abc', cb))).toMatchObject({ n: 5, cookie: { originalMaxAge: 60_000 } })
    expect(await call((cb) => store.get('other', cb))).toBeNull()
    const ttl = (await inner.get(expressId('abc')))!.meta.ttl
    expect(ttl).toBeGreaterThan(59_000)
    expect(ttl).toBeLessThanOrEqual(60_000)

    await call((cb) =>
      store.set('old', { cookie: { ...cookie(60_000), expires: new Date(Date.now() - 1).toISOString() } } as never, cb),
    )
    expect(await inner.get(expressId('old'))).toBeNull() // never stored
    await call((cb) => store.set('soon', { cookie: cookie(40) } as never, cb))
    await new Promise((r) => setTimeout(r, 60))
    expect(await call((cb) => store.get('soon', cb))).toBeNull()
  })

  it('the record holds the expiry: reads keep an active session, get reports it as cookie.expires', async () => {
    const { inner, store } = make()
    await call((cb) => store.set('k', { cookie: cookie(600) } as never, cb))
    let last = 0
    for (let i = 0; i < 4; i++) {
      // Four reads 200 ms apart outlast the cookie's first expiry (600 ms): each read moves it.
      await new Promise((r) => setTimeout(r, 200))
      const before = Date.now()
      const got = (await call<unknown>((cb) => store.get('k', cb))) as { cookie: { expires: string } }
      const expires = Date.parse(got.cookie.expires)
      expect(expires).toBeGreaterThan(last)
      expect(expires).toBeGreaterThanOrEqual(before + 600)
      expect(expires).toBeLessThanOrEqual(Date.now() + 600)
      last = expires
    }
    await new Promise((r) => setTimeout(r, 650)) // idle longer than the maxAge
    expect(await call((cb) => store.get('k', cb))).toBeNull()
    expect(await inner.get(expressId('k'))).toBeNull()
  })

  it('a session cookie without expiry gets the ttl option', async () => {
    const inner = new MemorySessionStore()
    cleanups.push(() => inner.close())
    const store = new ExpressSessionStore({ store: inner, ttl: 5_000 })
    await call((cb) => store.set('s', { cookie: { originalMaxAge: null, expires: null } } as never, cb))
    expect((await inner.get(expressId('s')))!.meta.ttl).toBe(5_000)
  })

  it('touch after a get reads nothing again and writes only a changed cookie, never the data', async () => {
    const { inner, store } = make()
    await call((cb) => store.set('t', { cookie: cookie(60_000), n: 1 } as never, cb))
    const get = vi.spyOn(inner, 'get')
    const save = vi.spyOn(inner, 'save')
    const read = await call<any>((cb) => store.get('t', cb))
    await call((cb) => store.touch('t', { ...read, cookie: cookie(60_000), n: 99 } as never, cb))
    expect(get).toHaveBeenCalledTimes(1) // the get; touch reused its copy
    expect(save).not.toHaveBeenCalled() // the expiry moved with the read; nothing else changed

    // "Remember me": a new maxAge is written (ttl and cookie), the stored data is kept.
    await call((cb) => store.touch('t', { ...read, cookie: cookie(600_000), n: 99 } as never, cb))
    expect(save).toHaveBeenCalledTimes(1)
    expect(get).toHaveBeenCalledTimes(1)
    const stored = (await inner.get(expressId('t')))!
    expect(stored.meta.ttl).toBe(600_000)
    const got = (await call<any>((cb) => store.get('t', cb))) as { n: number; cookie: { originalMaxAge: number } }
    expect(got.n).toBe(1)
    expect(got.cookie.originalMaxAge).toBe(600_000)

    await call((cb) => store.touch('missing', { cookie: cookie(60_000) } as never, cb)) // no-op, no error
    expect(save).toHaveBeenCalledTimes(1)
    expect(await inner.get(expressId('missing'))).toBeNull()
  })

  it('a touch that comes long after its read persists the moved expiry (min(touchAfter, ttl / 2))', async () => {
    const { inner, store } = make({ touchAfter: 60_000 })
    await call((cb) => store.set('slow', { cookie: cookie(400) } as never, cb))
    const read = await call<any>((cb) => store.get('slow', cb))
    const save = vi.spyOn(inner, 'save')
    await new Promise((r) => setTimeout(r, 250)) // a request that outlasts half the lifetime
    await call((cb) => store.touch('slow', read, cb))
    expect(save).toHaveBeenCalledTimes(1)
    await new Promise((r) => setTimeout(r, 200)) // 450 ms after the read, 200 ms after the touch
    expect(await call((cb) => store.get('slow', cb))).not.toBeNull()
  })

  it('set keeps createdAt, so the store maxAge ends a session however active', async () => {
    const inner = new MemorySessionStore({ maxAge: 1_000 })
    cleanups.push(() => inner.close())
    const store = new ExpressSessionStore({ store: inner })
    await call((cb) => store.set('m', { cookie: cookie(60_000), n: 0 } as never, cb))
    const createdAt = (await inner.get(expressId('m')))!.meta.createdAt
    for (let i = 1; i <= 3; i++) {
      await new Promise((r) => setTimeout(r, 150))
      const read = await call<any>((cb) => store.get('m', cb))
      await call((cb) => store.set('m', { ...read, n: i } as never, cb))
    }
    const stored = (await inner.get(expressId('m')))!
    expect(stored.meta.createdAt).toBe(createdAt)
    expect(stored.meta.maxAge).toBe(1_000)
    expect(JSON.parse(stored.data.get('expressSession') as string).n).toBe(3)
    await new Promise((r) => setTimeout(r, Math.max(0, createdAt + 1_000 - Date.now())))
    expect(await call((cb) => store.get('m', cb))).toBeNull()
  })

  it('set and touch after a destroy never bring the session back (20 of 20)', async () => {
    const { inner, store } = make()
    for (let i = 0; i < 20; i++) {
      const sid = `gone-${i}`
      await call((cb) => store.set(sid, { cookie: cookie(60_000), n: 1 } as never, cb))
      const read = await call<any>((cb) => store.get(sid, cb)) // the request that is still running
      await call((cb) => store.destroy(sid, cb)) // logout in another request
      if (i % 2 === 0) await call((cb) => store.set(sid, { ...read, n: 2 } as never, cb))
      else await call((cb) => store.touch(sid, { ...read, cookie: cookie(600_000) } as never, cb))
      expect(await inner.get(expressId(sid)), sid).toBeNull()
    }
    expect((await inner.dump()).sessions).toEqual([])
  })

  it('reports store failures and bad arguments through the callback', async () => {
    const { inner, store } = make()
    await expect(call((cb) => store.get(42 as never, cb))).rejects.toThrow(TypeError)
    await inner.close()
    await expect(call((cb) => store.get('x', cb))).rejects.toMatchObject({ code: 'ERR_SESSION_CLOSED' })
    await expect(call((cb) => store.set('x', { cookie: cookie(1000) } as never, cb))).rejects.toMatchObject({
      code: 'ERR_SESSION_CLOSED',
    })
    await expect(call((cb) => store.destroy('x', cb))).rejects.toMatchObject({ code: 'ERR_SESSION_CLOSED' })
  })

  it('is an express-session Store and checks its options', () => {
    const { store } = make()
    expect(store).toBeInstanceOf(session.Store)
    expect(() => new ExpressSessionStore(undefined as never)).toThrow(TypeError)
    expect(() => new ExpressSessionStore({} as never)).toThrow(/options\.store/)
    expect(() => new ExpressSessionStore({ store: new MemorySessionStore(), ttl: -1 })).toThrow(RangeError)
    expect(() => new ExpressSessionStore({ store: new MemorySessionStore(), touchAfter: 'x' as never })).toThrow(
      /options\.touchAfter/,
    )
  })

  it('maps every express id to a valid session id, deterministically', () => {
    for (const sid of ['a', 'abc', 'x'.repeat(1000), '医生', 'AJ2bc-_~.']) {
      expect(isValidSessionId(expressId(sid))).toBe(true)
      expect(expressId(sid)).toBe(expressId(sid))
    }
    expect(expressId('a')).not.toBe(expressId('b'))
    expect(() => expressId('')).toThrow(TypeError)
  })
})

// ---- express-session + ExpressSessionStore over real HTTP: reads, logout races, expiry -------

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

/** connect.sid as a browser keeps it: set by responses, dropped at its Expires. */
class Jar {
  #header: string | null = null
  #expiresAt = Infinity
  take(res: Response): void {
    const raw = res.headers.getSetCookie().find((c) => c.startsWith('connect.sid='))
    if (raw === undefined) return
    const expires = raw
      .split(';')
      .map((s) => s.trim())
      .find((a) => a.toLowerCase().startsWith('expires='))
    this.#header = raw.split(';')[0]
    this.#expiresAt = expires === undefined ? Infinity : Date.parse(expires.slice('expires='.length))
  }
  get header(): string | undefined {
    if (this.#header !== null && Date.now() >= this.#expiresAt) this.#header = null
    return this.#header ?? undefined
  }
  async request(url: string, method = 'GET'): Promise<{ res: Response; body: any }> {
    const out = await get(url, this.header, method)
    this.take(out.res)
    return out
  }
}

const inners = [
  { name: 'MemorySessionStore', make: () => new MemorySessionStore() },
  { name: 'FileSessionStore', make: () => new FileSessionStore({ dir: tempDir(), secret: SECRET, sweepInterval: 0 }) },
]

async function adapterApp(
  inner: MemorySessionStore | FileSessionStore,
  options: Partial<session.SessionOptions>,
  gate?: Gate,
) {
  cleanups.push(() => inner.close())
  return expressSessionApp(
    { secret: 'cookie signing secret', store: new ExpressSessionStore({ store: inner }), ...options },
    (c) => cleanups.push(c),
    gate,
  )
}

for (const flavour of inners) {
  describe(`express-session + ExpressSessionStore over ${flavour.name}, over HTTP`, () => {
    it("with express-session's default cookie, read-only requests read once and write nothing", async () => {
      const inner = flavour.make()
      const url = await adapterApp(inner, {}) // no cookie.maxAge: a browser-session cookie
      const jar = new Jar()
      await jar.request(`${url}/count`)
      const get = vi.spyOn(inner, 'get')
      const save = vi.spyOn(inner, 'save')
      for (let i = 0; i < 10; i++) expect((await jar.request(`${url}/peek`)).body.n).toBe(1)
      expect(get).toHaveBeenCalledTimes(10) // one read per request: touch reads nothing again
      expect(save).not.toHaveBeenCalled()
      expect((await jar.request(`${url}/count`)).body.n).toBe(2)
      expect(save).toHaveBeenCalledTimes(1)
    })

    it('logout while a slower request changes the session: logged out for the store and for the client', async () => {
      const inner = flavour.make()
      const entered = deferred()
      const release = deferred()
      const url = await adapterApp(
        inner,
        { cookie: { maxAge: 60_000 } },
        { inside: entered.resolve, release: release.promise },
      )
      const jar = new Jar()
      await jar.request(`${url}/count`)
      const before = jar.header
      const slow = jar.request(`${url}/slow`)
      await entered.promise
      expect((await jar.request(`${url}/logout`, 'POST')).body).toEqual({ ok: true })
      release.resolve()
      expect((await slow).res.status).toBe(200)
      expect((await inner.dump()).sessions).toEqual([]) // the slow save did not bring it back
      // Whatever cookie the client holds now (express-session sets one on the slow response), it
      // names no session: the next request starts empty.
      expect((await get(`${url}/peek`, before)).body.n).toBeNull()
      expect((await jar.request(`${url}/peek`)).body.n).toBeNull()
    })
  })
}

describe('express-session + ExpressSessionStore expiry as the browser sees it', () => {
  // Real time: cookie maxAge 2 s (rolling, so express-session re-sends it), a read every 0.5 s for 6 s.
  it('an active client keeps one session past several lifetimes; an idle one loses it, on both ends', async () => {
    const run = async (flavour: (typeof inners)[number]) => {
      const inner = flavour.make()
      const url = await adapterApp(inner, { rolling: true, cookie: { maxAge: 2_000 } })
      const active = new Jar()
      const idle = new Jar()
      await active.request(`${url}/count`)
      await idle.request(`${url}/count`)
      const activeCookie = active.header
      const idleSid = decodeURIComponent(idle.header!.slice('connect.sid='.length)).slice(2).split('.')[0]
      const start = Date.now()
      for (let i = 1; i <= 12; i++) {
        await new Promise((r) => setTimeout(r, Math.max(0, start + i * 500 - Date.now())))
        expect((await active.request(`${url}/peek`)).body.n, `${flavour.name}, request ${i}`).toBe(1)
        expect(active.header).toBe(activeCookie)
      }
      expect((await active.request(`${url}/count`)).body.n).toBe(2)
      expect(idle.header).toBeUndefined()
      expect(await inner.get(expressId(idleSid))).toBeNull()
    }
    await Promise.all(inners.map(run))
  }, 20_000)
})
