// sessionMiddleware over a real node:http server on 127.0.0.1, driven with fetch, against the
// memory and the file store. Each test builds its own server and store and closes both.
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import express from 'express'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { FileSessionStore } from '../../lib/stores/file-store'
import { SessionConflictError, SessionStoreUnavailableError } from '../../lib/core/errors'
import { generateSessionId, isValidSessionId, storageName } from '../../lib/core/ids'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { sessionMiddleware, type SessionMiddlewareOptions, type SessionRequest } from '../../lib/http/middleware'
import type { SessionStore } from '../../lib/stores/store'

const SECRET = 'middleware test secret, 32 chars or more'
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const quietLogger = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() })

// The app under test: /count changes the session, /peek only reads it.
async function app(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const session = (req as SessionRequest).session!
  const url = new URL(req.url!, 'http://x')
  const json = (body: unknown) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(body))
  }
  if (url.pathname === '/count') {
    const n = (session.data.get('n', 0) as number) + 1
    session.data.set('n', n)
    return json({ n, user: session.avatar.identity })
  }
  if (url.pathname === '/peek') return json({ n: session.data.get('n', null), user: session.avatar.identity })
  if (url.pathname === '/login') {
    session.attachAvatar(new Avatar('alice', ['member']))
    return json({ ok: true })
  }
  if (url.pathname === '/logout') {
    session.invalidate()
    return json({ ok: true })
  }
  if (url.pathname === '/own-cookie') {
    session.data.set('n', 1)
    res.writeHead(200, { 'Set-Cookie': 'theme=dark; Path=/' })
    return void res.end('ok')
  }
  if (url.pathname === '/login-fail') {
    session.attachAvatar(new Avatar('admin'))
    throw new Error('2FA check failed')
  }
  if (url.pathname === '/paid-fail') {
    session.data.set('paid', true)
    throw new Error('payment failed')
  }
  if (url.pathname === '/logout-fail') {
    session.invalidate()
    throw new Error('failed after logout')
  }
  if (url.pathname === '/paid-503') {
    session.attachAvatar(new Avatar('admin'))
    session.data.set('paid', true)
    res.statusCode = 503
    return void res.end('busy')
  }
  // The headers leave before the logout: flushed, or with a first body chunk.
  if (url.pathname === '/logout-flushed' || url.pathname === '/logout-chunk') {
    if (url.pathname === '/logout-flushed') res.flushHeaders()
    else res.write('o')
    session.invalidate()
    return void res.end('ut')
  }
  if (url.pathname === '/logout-flushed-fail') {
    res.flushHeaders()
    session.invalidate()
    throw new Error('failed after logout')
  }
  if (url.pathname === '/raw-headers') {
    session.data.set('n', 1)
    res.writeHead(200, 'Fine', ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Test', 'yes'])
    return void res.end('ok')
  }
  res.statusCode = 404
  res.end()
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections()
    await closed
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A bare node:http server: `await mw(req, res)` then the app; any throw becomes a 500. */
async function serve(store: SessionStore, options: Partial<SessionMiddlewareOptions> = {}): Promise<string> {
  const mw = sessionMiddleware({ store, logger: quietLogger(), ...options })
  const server = http.createServer(async (req, res) => {
    try {
      await mw(req, res)
      await app(req, res)
    } catch {
      res.statusCode = 500
      res.end('error')
    }
  })
  return listen(server)
}

/** The session cookie a response set: its value and attributes, or null. */
function sid(res: Response, name = 'sid'): { value: string; attrs: string[]; raw: string } | null {
  const raw = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`))
  if (raw === undefined) return null
  const [pair, ...attrs] = raw.split(';').map((s) => s.trim())
  return { value: pair.slice(name.length + 1), attrs, raw }
}

async function get(url: string, cookie?: string, init: RequestInit = {}): Promise<{ res: Response; body: any }> {
  const headers = new Headers(init.headers)
  if (cookie !== undefined) headers.set('cookie', cookie)
  const res = await fetch(url, { ...init, headers })
  const text = await res.text()
  return { res, body: text.startsWith('{') ? JSON.parse(text) : text }
}

interface Flavour {
  name: string
  make(): SessionStore
  /** The store's file for a session id, when it has files. */
  file?(store: SessionStore, id: string): string
}

const flavours: Flavour[] = [
  { name: 'MemorySessionStore', make: () => new MemorySessionStore() },
  {
    name: 'FileSessionStore',
    make: () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-mw-'))
      const store = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
      cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
      return store
    },
    file: (store, id) => path.join((store as FileSessionStore).dir, storageName(id)),
  },
]

for (const flavour of flavours) {
  describe(`sessionMiddleware over ${flavour.name}`, () => {
    const make = () => {
      const store = flavour.make()
      cleanups.push(() => store.close())
      return store
    }

    it('sets a HttpOnly, SameSite=Lax, Path=/ cookie with Max-Age from the ttl (no Secure over http)', async () => {
      const url = await serve(make(), { ttl: 90_000 })
      const { res, body } = await get(`${url}/count`)
      expect(res.status).toBe(200)
      expect(body.n).toBe(1)
      const cookie = sid(res)!
      expect(isValidSessionId(cookie.value)).toBe(true)
      expect(cookie.attrs).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Lax', 'Path=/', 'Max-Age=90']))
      expect(cookie.attrs).not.toContain('Secure')
      // X-Forwarded-Proto is not believed without trustProxy.
      const spoofed = await get(`${url}/count`, undefined, { headers: { 'x-forwarded-proto': 'https' } })
      expect(sid(spoofed.res)!.attrs).not.toContain('Secure')
    })

    it('adds Secure behind a trusted proxy that says https', async () => {
      const url = await serve(make(), { trustProxy: true })
      const https = await get(`${url}/count`, undefined, { headers: { 'x-forwarded-proto': 'https' } })
      expect(sid(https.res)!.attrs).toContain('Secure')
      const plain = await get(`${url}/count`, undefined, { headers: { 'x-forwarded-proto': 'http' } })
      expect(sid(plain.res)!.attrs).not.toContain('Secure')
    })

    it('reconnects to the same session with the cookie; rolling re-sends it', async () => {
      const store = make()
      const url = await serve(store)
      const first = await get(`${url}/count`)
      const id = sid(first.res)!.value
      const second = await get(`${url}/count`, `other=1; sid=${id}`)
      expect(second.body.n).toBe(2)
      // A write-back moves the stored expiry: the cookie follows it, same id, fresh Max-Age.
      expect(sid(second.res)!.value).toBe(id)
      expect(sid(second.res)!.attrs).toContain('Max-Age=3600')
      expect((await store.get(id))!.data.get('n')).toBe(2)
      // A read whose touch is not persisted (touchAfter) moves nothing: no cookie.
      expect(sid((await get(`${url}/peek`, `sid=${id}`)).res)).toBeNull()

      const rolling = await serve(store, { rolling: true })
      const third = await get(`${rolling}/peek`, `sid=${id}`)
      expect(third.body.n).toBe(2)
      expect(sid(third.res)!.value).toBe(id)
    })

    it('gives an unknown, tampered or malformed cookie a fresh session, never an error', async () => {
      const store = make()
      const getSpy = vi.spyOn(store, 'get')
      const url = await serve(store)
      const real = sid((await get(`${url}/count`)).res)!.value
      const tampered = real.slice(0, 10) + (real[10] === 'A' ? 'B' : 'A') + real.slice(11)
      const valid = [generateSessionId(), tampered]
      const malformed = [
        '../x',
        '../../etc/passwd',
        'a'.repeat(10_000),
        '!!!not*base64url',
        real + 'A',
        real.slice(0, 42),
        '%00',
        '',
      ]
      for (const value of [...valid, ...malformed]) {
        getSpy.mockClear()
        const { res, body } = await get(`${url}/count`, `sid=${value}`)
        expect(res.status, value.slice(0, 20)).toBe(200)
        expect(body.n).toBe(1)
        const fresh = sid(res)!.value
        expect(fresh).not.toBe(value)
        expect(fresh).not.toBe(real)
        // Only a well-formed id reaches the store.
        expect(getSpy).toHaveBeenCalledTimes(valid.includes(value) ? 1 : 0)
      }
      expect((await get(`${url}/peek`, `sid=${real}`)).body.n).toBe(1) // the real one is untouched
    })

    if (flavour.file) {
      it('treats a tampered session file as no session', async () => {
        const store = make()
        const url = await serve(store)
        const id = sid((await get(`${url}/count`)).res)!.value
        const file = flavour.file!(store, id)
        const bytes = fs.readFileSync(file)
        bytes[bytes.length - 5] ^= 0x01
        fs.writeFileSync(file, bytes)
        const { res, body } = await get(`${url}/count`, `sid=${id}`)
        expect(res.status).toBe(200)
        expect(body.n).toBe(1)
        expect(sid(res)!.value).not.toBe(id)
      })
    }

    it('login moves the session to a new id; the old id no longer works', async () => {
      const store = make()
      const url = await serve(store)
      const before = sid((await get(`${url}/count`)).res)!.value
      const login = await get(`${url}/login`, `sid=${before}`, { method: 'POST' })
      const after = sid(login.res)!
      expect(after.value).not.toBe(before)
      expect(isValidSessionId(after.value)).toBe(true)
      expect(after.attrs).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Lax', 'Path=/']))
      expect(await store.get(before)).toBeNull()
      const moved = (await store.get(after.value))!
      expect(moved.avatar.identity).toBe('alice')
      expect(moved.data.get('n')).toBe(1) // the data came along

      const withOld = await get(`${url}/peek`, `sid=${before}`)
      expect(withOld.body).toEqual({ n: null, user: 'anonymous' })
      const withNew = await get(`${url}/count`, `sid=${after.value}`)
      expect(withNew.body).toEqual({ n: 2, user: 'alice' })
    })

    it('a login by a new visitor is stored under an id nobody saw before', async () => {
      const store = make()
      const url = await serve(store)
      const login = await get(`${url}/login`, undefined, { method: 'POST' })
      const id = sid(login.res)!.value
      expect((await store.get(id))!.avatar.identity).toBe('alice')
      expect((await store.dump()).sessions).toHaveLength(1)
    })

    it('logout deletes the session and clears the cookie', async () => {
      const store = make()
      const url = await serve(store)
      const id = sid((await get(`${url}/login`, undefined, { method: 'POST' })).res)!.value
      expect(await store.get(id)).not.toBeNull()
      const logout = await get(`${url}/logout`, `sid=${id}`, { method: 'POST' })
      const cleared = sid(logout.res)!
      expect(cleared.value).toBe('')
      expect(cleared.attrs).toEqual(
        expect.arrayContaining(['Max-Age=0', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'Path=/', 'HttpOnly']),
      )
      expect(await store.get(id)).toBeNull()
      expect((await get(`${url}/peek`, `sid=${id}`)).body.user).toBe('anonymous')
      if (flavour.file) expect(fs.existsSync(flavour.file(store, id))).toBe(false)
    })

    it('a read-only request does not rewrite the store', async () => {
      const store = make()
      const url = await serve(store)
      const id = sid((await get(`${url}/count`)).res)!.value
      const file = flavour.file?.(store, id)
      const mtime = file ? fs.statSync(file).mtimeMs : 0
      const save = vi.spyOn(store, 'save')
      await new Promise((r) => setTimeout(r, 20)) // a rewrite would now show in the mtime
      for (let i = 0; i < 3; i++) expect((await get(`${url}/peek`, `sid=${id}`)).body.n).toBe(1)
      expect(save).not.toHaveBeenCalled()
      if (file) expect(fs.statSync(file).mtimeMs).toBe(mtime)
      await get(`${url}/count`, `sid=${id}`)
      expect(save).toHaveBeenCalledTimes(1)
      if (file) expect(fs.statSync(file).mtimeMs).toBeGreaterThan(mtime)
    })

    it('saveUninitialized false: a visitor who changes nothing costs no write and gets no cookie', async () => {
      const store = make()
      const save = vi.spyOn(store, 'save')
      const url = await serve(store)
      const { res, body } = await get(`${url}/peek`)
      expect(body).toEqual({ n: null, user: 'anonymous' })
      expect(sid(res)).toBeNull()
      expect(save).not.toHaveBeenCalled()
      expect((await store.dump()).sessions).toEqual([])
    })

    it('saveUninitialized true: one write and a cookie for such a visitor', async () => {
      const store = make()
      const save = vi.spyOn(store, 'save')
      const url = await serve(store, { saveUninitialized: true })
      const { res } = await get(`${url}/peek`)
      const id = sid(res)!.value
      expect(save).toHaveBeenCalledTimes(1)
      expect((await store.dump()).sessions.map((r) => r.id)).toEqual([id])
    })

    it('50 concurrent requests of one client that each change their own path keep all 50 changes', async () => {
      const store = make()
      let inside = 0
      const allIn = deferred()
      const url = await hosts[0].serve(
        store,
        gatedApp({ arrived: () => ++inside === 50 && allIn.resolve(), release: allIn.promise }),
      )
      const id = sid((await get(`${url}/count`)).res)!.value
      // Every request has read the session and changed its own path before any of them writes:
      // a last-writer-wins store keeps one mark, a compare-and-swap that re-applies each
      // request's own path keeps all 50.
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => get(`${url}/slow?k=r${i}`, `sid=${id}`)))
      for (const { res } of results) expect(res.status).toBe(200)
      const stored = (await store.get(id))!
      expect(Object.keys(stored.data.toJSON().changes as object).sort()).toEqual(
        Array.from({ length: 50 }, (_, i) => `r${i}`).sort(),
      )
      expect(stored.data.get('n')).toBe(1) // untouched by the marks
      expect((await store.dump()).sessions).toHaveLength(1)
    })

    it('keeps a Set-Cookie passed to writeHead next to its own', async () => {
      const url = await serve(make())
      const { res } = await get(`${url}/own-cookie`)
      expect(res.headers.getSetCookie()).toHaveLength(2)
      expect(res.headers.getSetCookie()).toContain('theme=dark; Path=/')
      expect(sid(res)).not.toBeNull()
      // A raw header array with a repeated name and a status message.
      const raw = await get(`${url}/raw-headers`)
      expect(raw.res.statusText).toBe('Fine')
      expect(raw.res.headers.get('x-test')).toBe('yes')
      expect(raw.res.headers.getSetCookie().slice(0, 2)).toEqual(['a=1', 'b=2'])
      expect(sid(raw.res)).not.toBeNull()
    })
  })
}

describe('sessionMiddleware failures and hosts', () => {
  it('a failed write-back is logged and answered with a 500, without the cookie (bare node:http)', async () => {
    const store = new MemorySessionStore()
    vi.spyOn(store, 'save').mockRejectedValue(new Error('disk full'))
    const logger = quietLogger()
    const url = await serve(store, { logger })
    const { res, body } = await get(`${url}/count`)
    expect(res.status).toBe(500)
    expect(body).not.toMatchObject({ n: 1 })
    expect(sid(res)).toBeNull() // no cookie for a session the store does not hold
    expect(logger.error).toHaveBeenCalledWith('session write-back failed', { reason: 'Error: disk full' })
  })

  it('a failing store.get rejects the bare-node promise (the server answers 500)', async () => {
    const store = new MemorySessionStore()
    vi.spyOn(store, 'get').mockRejectedValue(new Error('unreachable'))
    const url = await serve(store)
    expect((await get(`${url}/peek`, `sid=${generateSessionId()}`)).res.status).toBe(500)
    expect((await get(`${url}/peek`)).res.status).toBe(200) // no cookie, no store call
  })

  it('works as Express middleware: next() on success, next(err) on a store failure', async () => {
    const store = new MemorySessionStore()
    const web = express()
    web.use(sessionMiddleware({ store, logger: quietLogger() }))
    web.get('/count', (req, res) => {
      const session = (req as unknown as SessionRequest).session!
      const n = (session.data.get('n', 0) as number) + 1
      session.data.set('n', n)
      res.json({ n })
    })
    web.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(503).json({ error: err.message })
    })
    const url = await listen(http.createServer(web))
    const first = await get(`${url}/count`)
    const id = sid(first.res)!.value
    expect((await get(`${url}/count`, `sid=${id}`)).body.n).toBe(2)
    expect(first.res.headers.get('content-length')).not.toBeNull() // end() was delayed, not split

    vi.spyOn(store, 'get').mockRejectedValueOnce(new Error('store down'))
    const failed = await get(`${url}/count`, `sid=${id}`)
    expect(failed.res.status).toBe(503)
    expect(failed.body).toEqual({ error: 'store down' })
    expect((await get(`${url}/count`, `sid=${id}`)).body.n).toBe(3)
  })

  it('after the headers went out: later changes of a stored session are saved, a late login is not', async () => {
    const store = new MemorySessionStore()
    const logger = quietLogger()
    const mw = sessionMiddleware({ store, logger })
    const url = await listen(
      http.createServer(async (req, res) => {
        await mw(req, res)
        const session = (req as SessionRequest).session!
        res.write('streaming...') // headers leave here
        if (req.url === '/late-login') session.attachAvatar(new Avatar('mallory'))
        else session.data.set('n', (session.data.get('n', 0) as number) + 1)
        res.end()
      }),
    )
    const fresh = await get(url)
    expect(sid(fresh.res)).toBeNull() // new and clean when the headers left: no cookie, nothing stored
    expect((await store.dump()).sessions).toEqual([])
    expect(logger.warn).toHaveBeenCalledTimes(1)

    const s = await store.create()
    await get(url, `sid=${s.id}`)
    expect((await store.get(s.id))!.data.get('n')).toBe(1)
    await get(`${url}/late-login`, `sid=${s.id}`)
    expect((await store.get(s.id))!.avatar.isAnonymous).toBe(true) // never saved under the old id
    expect(logger.warn).toHaveBeenCalledWith('session login after the response headers were sent was not saved')
  })

  it('validates every option up front, naming it', () => {
    const store = new MemorySessionStore()
    const bad: Array<[unknown, RegExp, ErrorConstructor]> = [
      [undefined, /options must be a plain object/, TypeError],
      [{}, /options\.store/, TypeError],
      [{ store: { get() {} } }, /options\.store\.save/, TypeError],
      [{ store, cookieName: 1 }, /options\.cookieName/, TypeError],
      [{ store, cookieName: 'a b' }, /options\.cookieName/, RangeError],
      [{ store, cookieName: 'a;b' }, /options\.cookieName/, RangeError],
      [{ store, cookie: 'x' }, /options\.cookie /, TypeError],
      [{ store, cookie: { httpOnly: 'yes' } }, /options\.cookie\.httpOnly/, TypeError],
      [{ store, cookie: { sameSite: 'loose' } }, /options\.cookie\.sameSite/, RangeError],
      [{ store, cookie: { sameSite: 'none', secure: false } }, /options\.cookie\.sameSite/, RangeError],
      [{ store, cookie: { secure: 'always' } }, /options\.cookie\.secure/, TypeError],
      [{ store, cookie: { path: 'x' } }, /options\.cookie\.path/, RangeError],
      [{ store, cookie: { path: '/a;b' } }, /options\.cookie\.path/, RangeError],
      [{ store, cookie: { domain: 'a b' } }, /options\.cookie\.domain/, RangeError],
      [{ store, cookie: { maxAge: 1 } }, /options\.cookie\.maxAge is not/, TypeError],
      [{ store, saveUninitialized: 1 }, /options\.saveUninitialized/, TypeError],
      [{ store, rolling: 'no' }, /options\.rolling/, TypeError],
      [{ store, trustProxy: 1 }, /options\.trustProxy/, TypeError],
      [{ store, ttl: 0 }, /options\.ttl/, RangeError],
      [{ store, logger: {} }, /options\.logger/, TypeError],
      [{ store, secret: 'x' }, /options\.secret is not/, TypeError],
    ]
    for (const [options, message, Cls] of bad) {
      expect(() => sessionMiddleware(options as SessionMiddlewareOptions), String(message)).toThrow(Cls)
      expect(() => sessionMiddleware(options as SessionMiddlewareOptions)).toThrow(message)
    }
    expect(() =>
      sessionMiddleware({
        store,
        cookieName: '__Host-sid',
        cookie: { sameSite: 'strict', secure: true, domain: 'example.com' },
      }),
    ).not.toThrow()
  })
})

// ---- write-back failures and requests that end in an error ------------------------------------

/** A server of `app` behind the middleware, and the errors that reached the application. */
type ErrorHost = { name: string; serve(store: SessionStore): Promise<{ url: string; errors: unknown[] }> }

const errorHosts: ErrorHost[] = [
  {
    // No next(): a write-back failure is answered by the middleware; a throw becomes a 500 here.
    name: 'node:http',
    async serve(store) {
      const errors: unknown[] = []
      const mw = sessionMiddleware({ store, logger: quietLogger() })
      const url = await listen(
        http.createServer(async (req, res) => {
          await mw(req, res)
          try {
            await app(req, res)
          } catch (err) {
            errors.push(err)
            res.statusCode = 500
            res.end('error')
          }
        }),
      )
      return { url, errors }
    },
  },
  {
    name: 'Express',
    async serve(store) {
      const errors: unknown[] = []
      const web = express()
      web.use(sessionMiddleware({ store, logger: quietLogger() }))
      web.use((req, res, next) => void app(req, res).catch(next))
      web.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        errors.push(err)
        res.status(500).json({ error: err.message })
      })
      return { url: await listen(http.createServer(web)), errors }
    },
  },
]

for (const host of errorHosts) {
  for (const flavour of flavours) {
    describe(`sessionMiddleware: failures reach the client (${host.name}, ${flavour.name})`, () => {
      const make = () => {
        const store = flavour.make()
        cleanups.push(() => store.close())
        return store
      }
      /** A logged-in client: the store, the server, and the session's id. */
      const loggedIn = async () => {
        const store = make()
        const served = await host.serve(store)
        const id = sid((await get(`${served.url}/login`, undefined, { method: 'POST' })).res)!.value
        return { store, ...served, id }
      }

      it('a logout whose store delete fails is not answered as a success; the client keeps its cookie to retry', async () => {
        const { store, url, errors, id } = await loggedIn()
        const failure = new Error('delete failed')
        vi.spyOn(store, 'delete').mockRejectedValueOnce(failure)
        const { res } = await get(`${url}/logout`, `sid=${id}`, { method: 'POST' })
        expect(res.status).toBe(500)
        expect(sid(res)).toBeNull()
        if (host.name === 'Express') expect(errors).toEqual([failure]) // through next(err)
        expect((await store.get(id))?.avatar.identity).toBe('alice')
        const retry = await get(`${url}/logout`, `sid=${id}`, { method: 'POST' })
        expect(retry.res.status).toBe(200)
        expect(sid(retry.res)!.value).toBe('')
        expect(await store.get(id)).toBeNull()
      })

      it('a save that fails (an error, a conflict, an unavailable store) is not answered as a success', async () => {
        const { store, url, errors, id } = await loggedIn()
        const failures = [
          new Error('disk full'),
          new SessionConflictError('session changed too often', 'ERR_SESSION_CONFLICT'),
          new SessionStoreUnavailableError('store down', 'ERR_SESSION_STORE_UNAVAILABLE'),
        ]
        for (const failure of failures) {
          vi.spyOn(store, 'save').mockRejectedValueOnce(failure)
          const { res } = await get(`${url}/count`, `sid=${id}`)
          expect(res.status, failure.message).toBe(500)
          expect(sid(res)).toBeNull()
        }
        if (host.name === 'Express') expect(errors).toEqual(failures)
        expect((await store.get(id))!.data.get('n')).toBeUndefined()
      })

      it('a write-back that fails after the headers left destroys the connection', async () => {
        for (const path of ['/logout-flushed', '/logout-chunk']) {
          const { store, url, id } = await loggedIn()
          vi.spyOn(store, 'delete').mockRejectedValueOnce(new Error('delete failed'))
          // Whether the 200 status line reached the client before the connection went down or
          // not, the response never completes: the client sees a failure, not "out".
          const body = fetch(`${url}${path}`, { method: 'POST', headers: { cookie: `sid=${id}` } }).then((res) =>
            res.text(),
          )
          await expect(body, path).rejects.toThrow()
          expect((await store.get(id))?.avatar.identity).toBe('alice')
        }
      })

      it('a handler that throws after a login persists nothing and sends no cookie', async () => {
        const store = make()
        const { url } = await host.serve(store)
        const fresh = await get(`${url}/login-fail`, undefined, { method: 'POST' })
        expect(fresh.res.status).toBe(500)
        expect(sid(fresh.res)).toBeNull()
        expect((await store.dump()).sessions).toEqual([])
        const id = sid((await get(`${url}/count`)).res)!.value
        const { res } = await get(`${url}/login-fail`, `sid=${id}`, { method: 'POST' })
        expect(res.status).toBe(500)
        expect(sid(res)).toBeNull()
        expect((await store.dump()).sessions.map((r) => r.id)).toEqual([id])
        expect((await get(`${url}/peek`, `sid=${id}`)).body).toEqual({ n: 1, user: 'anonymous' })
      })

      it('a handler that throws after changing data persists nothing', async () => {
        const store = make()
        const { url } = await host.serve(store)
        const id = sid((await get(`${url}/count`)).res)!.value
        const { res } = await get(`${url}/paid-fail`, `sid=${id}`)
        expect(res.status).toBe(500)
        expect(sid(res)).toBeNull()
        expect((await store.get(id))!.data.toJSON()).toEqual({ n: 1 })
      })

      it('a 5xx response persists nothing, login included, and sends no cookie', async () => {
        const store = make()
        const { url } = await host.serve(store)
        const id = sid((await get(`${url}/count`)).res)!.value
        const { res } = await get(`${url}/paid-503`, `sid=${id}`)
        expect(res.status).toBe(503)
        expect(sid(res)).toBeNull()
        expect((await store.dump()).sessions.map((r) => r.id)).toEqual([id])
        const stored = (await store.get(id))!
        expect(stored.avatar.isAnonymous).toBe(true)
        expect(stored.data.toJSON()).toEqual({ n: 1 })
      })

      it('a logout in a request that throws is still carried out, and the cookie cleared', async () => {
        const { store, url, id } = await loggedIn()
        const { res } = await get(`${url}/logout-fail`, `sid=${id}`, { method: 'POST' })
        expect(res.status).toBe(500)
        expect(sid(res)!.value).toBe('')
        expect(await store.get(id)).toBeNull()
      })

      // Express destroys the connection of an error after the headers left: end() never runs.
      // (Bare node:http: this server's own catch calls end(), which carries out the logout.)
      if (host.name === 'Express') {
        it('a logout in a request that throws after the headers left is still carried out', async () => {
          const { store, url, id } = await loggedIn()
          const res = await fetch(`${url}/logout-flushed-fail`, { method: 'POST', headers: { cookie: `sid=${id}` } })
          await res.text().catch(() => undefined) // the body never completes
          await vi.waitFor(async () => expect(await store.get(id)).toBeNull(), { timeout: 2_000 })
        })
      }
    })
  }
}

// ---- concurrency and expiry over real HTTP, as a browser sees it -----------------------------

/** A one-cookie browser: keeps `sid` as the responses set it, honours Max-Age, forgets it once expired. */
class Jar {
  #value: string | null = null
  #expiresAt = Infinity
  take(res: Response): void {
    const cookie = sid(res)
    if (cookie === null) return
    const maxAge = cookie.attrs.find((a) => a.startsWith('Max-Age='))
    const seconds = maxAge === undefined ? Infinity : Number(maxAge.slice('Max-Age='.length))
    if (cookie.value === '' || seconds <= 0) {
      this.#value = null
      return
    }
    this.#value = cookie.value
    this.#expiresAt = Date.now() + seconds * 1000
  }
  get value(): string | null {
    if (this.#value !== null && Date.now() >= this.#expiresAt) this.#value = null
    return this.#value
  }
  async request(url: string, init: RequestInit = {}): Promise<{ res: Response; body: any }> {
    const value = this.value
    const out = await get(url, value === null ? undefined : `sid=${value}`, init)
    this.take(out.res)
    return out
  }
}

/** A promise with its resolve outside, for the points a test waits on. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** Requests that wait inside the handler, after reading and changing the session, until released. */
function gatedApp(gates: { arrived: (name: string) => void; release: Promise<void> }) {
  return async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url!, 'http://x')
    if (url.pathname === '/slow-peek') {
      const session = (req as SessionRequest).session!
      gates.arrived('peek')
      await gates.release
      res.setHeader('content-type', 'application/json')
      return void res.end(JSON.stringify({ n: session.data.get('n', null) }))
    }
    if (url.pathname === '/slow') {
      const session = (req as SessionRequest).session!
      session.data.set(`changes.${url.searchParams.get('k')}`, true)
      gates.arrived(url.searchParams.get('k')!)
      await gates.release
      res.setHeader('content-type', 'application/json')
      return void res.end(JSON.stringify({ ok: true }))
    }
    return app(req, res)
  }
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>

const hosts: Array<{
  name: string
  serve(store: SessionStore, handler: Handler, options?: Partial<SessionMiddlewareOptions>): Promise<string>
}> = [
  {
    name: 'node:http',
    async serve(store, handler, options = {}) {
      const mw = sessionMiddleware({ store, logger: quietLogger(), ...options })
      return listen(
        http.createServer(async (req, res) => {
          await mw(req, res)
          await handler(req, res)
        }),
      )
    },
  },
  {
    name: 'Express',
    async serve(store, handler, options = {}) {
      const web = express()
      web.use(sessionMiddleware({ store, logger: quietLogger(), ...options }))
      web.use((req, res, next) => void handler(req, res).catch(next))
      return listen(http.createServer(web))
    },
  },
]

for (const host of hosts) {
  for (const flavour of flavours) {
    describe(`sessionMiddleware under concurrent requests (${host.name}, ${flavour.name})`, () => {
      const make = () => {
        const store = flavour.make()
        cleanups.push(() => store.close())
        return store
      }

      it('two concurrent requests that change different paths: both changes are kept', async () => {
        const store = make()
        const arrivals: string[] = []
        const bothIn = deferred()
        const release = deferred()
        const url = await host.serve(
          store,
          gatedApp({
            arrived: (k) => arrivals.push(k) === 2 && bothIn.resolve(),
            release: release.promise,
          }),
        )
        const jar = new Jar()
        await jar.request(`${url}/count`)
        const id = jar.value!
        // Both requests have read the session and changed it before either writes.
        const a = jar.request(`${url}/slow?k=a`)
        const b = jar.request(`${url}/slow?k=b`)
        await bothIn.promise
        release.resolve()
        expect((await a).res.status).toBe(200)
        expect((await b).res.status).toBe(200)
        const stored = (await store.get(id))!
        expect(stored.data.toJSON()).toEqual({ n: 1, changes: { a: true, b: true } })
        expect(jar.value).toBe(id)
      })

      it('logout while a slower request changes data: logged out for the store and for the client', async () => {
        const store = make()
        const inside = deferred()
        const release = deferred()
        const url = await host.serve(store, gatedApp({ arrived: () => inside.resolve(), release: release.promise }))
        const jar = new Jar()
        await jar.request(`${url}/login`, { method: 'POST' })
        const id = jar.value!
        expect((await store.get(id))!.avatar.identity).toBe('alice')

        const slow = jar.request(`${url}/slow?k=late`)
        await inside.promise // the slow request holds the session, changed
        const logout = await jar.request(`${url}/logout`, { method: 'POST' })
        expect(sid(logout.res)!.value).toBe('')
        expect(jar.value).toBeNull()
        release.resolve()
        const late = await slow
        expect(late.res.status).toBe(200)
        expect(sid(late.res)).toBeNull() // the slow response does not hand the cookie back
        expect(jar.value).toBeNull()
        expect(await store.get(id)).toBeNull()
        expect((await store.dump()).sessions).toEqual([])
        expect((await get(`${url}/peek`, `sid=${id}`)).body).toEqual({ n: null, user: 'anonymous' })
      })

      it('a read-only response that finishes after a concurrent logout does not re-send the cookie', async () => {
        const store = make()
        const inside = deferred()
        const release = deferred()
        // rolling: a read-only response would otherwise carry the cookie with a fresh Max-Age.
        const url = await host.serve(store, gatedApp({ arrived: () => inside.resolve(), release: release.promise }), {
          rolling: true,
        })
        const jar = new Jar()
        await jar.request(`${url}/login`, { method: 'POST' })
        const slow = jar.request(`${url}/slow-peek`)
        await inside.promise
        await jar.request(`${url}/logout`, { method: 'POST' })
        expect(jar.value).toBeNull()
        release.resolve()
        const late = await slow
        expect(late.res.status).toBe(200)
        expect(sid(late.res)).toBeNull()
        expect(jar.value).toBeNull()
      })

      it('logout while a slower request logs in: the login does not come back under a new id', async () => {
        const store = make()
        const inside = deferred()
        const release = deferred()
        const url = await host.serve(store, async (req, res) => {
          if (req.url === '/slow-login') {
            ;(req as SessionRequest).session!.attachAvatar(new Avatar('mallory'))
            inside.resolve()
            await release.promise
            return void res.end('ok')
          }
          return app(req, res)
        })
        const jar = new Jar()
        await jar.request(`${url}/count`)
        const slow = jar.request(`${url}/slow-login`, { method: 'POST' })
        await inside.promise
        await jar.request(`${url}/logout`, { method: 'POST' })
        release.resolve()
        expect(sid((await slow).res)).toBeNull()
        expect(jar.value).toBeNull()
        expect((await store.dump()).sessions).toEqual([])
      })
    })
  }

  describe(`sessionMiddleware expiry as the browser sees it (${host.name})`, () => {
    // Real time: a 2 s session, read every 0.5 s for 6 s. The pacing is the scenario itself.
    it('an active client keeps one session past several lifetimes; an idle one loses it, on both ends', async () => {
      const run = async (flavour: Flavour) => {
        const store = flavour.make()
        cleanups.push(() => store.close())
        const url = await host.serve(store, app, { ttl: 2_000 })
        const active = new Jar()
        const idle = new Jar()
        await active.request(`${url}/count`)
        await idle.request(`${url}/count`)
        const activeId = active.value!
        const idleId = idle.value!
        const start = Date.now()
        for (let i = 1; i <= 12; i++) {
          await new Promise((r) => setTimeout(r, Math.max(0, start + i * 500 - Date.now())))
          // Read-only requests: only the touch moves the expiry, and the cookie must follow it.
          const { body } = await active.request(`${url}/peek`)
          expect(body.n, `${flavour.name}, request ${i}`).toBe(1)
          expect(active.value).toBe(activeId)
        }
        expect((await active.request(`${url}/count`)).body.n).toBe(2)
        expect(active.value).toBe(activeId)
        // The idle client made no request for 6 s: the browser forgot the cookie, the store the session.
        expect(idle.value).toBeNull()
        expect(await store.get(idleId)).toBeNull()
        expect((await get(`${url}/peek`, `sid=${idleId}`)).body.n).toBeNull()
      }
      await Promise.all(flavours.map(run))
    }, 20_000)
  })
}

describe('a handler whose end() throws after the write-back', () => {
  it('is logged and its connection closed; no unhandled rejection ends the process', async () => {
    const logger = quietLogger()
    const mw = sessionMiddleware({ store: new MemorySessionStore(), logger })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    cleanups.push(() => void process.off('unhandledRejection', onUnhandled))
    const server = http.createServer(async (req, res) => {
      await mw(req, res)
      ;(req as SessionRequest).session!.data.set('n', 1)
      // A body Node refuses (a number): end() throws once the middleware lets it run.
      ;(res.end as (chunk: unknown) => void)(42)
    })
    const url = await listen(server)
    await expect(fetch(url)).rejects.toThrow()
    await vi.waitFor(() =>
      expect(logger.error).toHaveBeenCalledWith(
        'response could not be ended',
        expect.objectContaining({ reason: expect.stringContaining('chunk') }),
      ),
    )
    // One more turn for a rejection to be reported, had there been one.
    await new Promise((resolve) => setImmediate(resolve))
    expect(unhandled).toEqual([])
  })
})

describe('sessionMiddleware reads without waiting where the store can', () => {
  /** Runs the middleware Express-style on one request; resolves whether next() came before it returned. */
  async function nextInSameTurn(store: SessionStore, cookie: string): Promise<{ sync: boolean; n: unknown }> {
    const mw = sessionMiddleware({ store, logger: quietLogger() })
    let result: { sync: boolean; n: unknown } | null = null
    const server = http.createServer((req, res) => {
      let called = false
      let returned = false
      mw(req, res, (err?: unknown) => {
        called = true
        if (err) throw err
        result = { sync: !returned, n: (req as SessionRequest).session!.data.get('n', null) }
        res.end('ok')
      })
      returned = true
      if (!called) result = null
    })
    const url = await listen(server)
    await get(url, cookie)
    return result!
  }

  async function stored(store: SessionStore, avatar?: Avatar): Promise<string> {
    const session = await store.create()
    session.data.set('n', 7)
    if (avatar) session.attachAvatar(avatar)
    await store.save(session)
    return session.id
  }

  it('a cached session reaches the handler in the same event-loop turn (memory store, file store)', async () => {
    const memory = new MemorySessionStore()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-mw-now-'))
    const files = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    cleanups.push(() => files.close())
    expect(await nextInSameTurn(memory, `sid=${await stored(memory)}`)).toEqual({ sync: true, n: 7 })
    const id = await stored(files)
    await files.get(id) // in the page cache now
    // Where the kernel cannot read without blocking (no RESOLVE_CACHED), the read goes to the pool.
    const inline = (await import('../../lib/core/native')).native.inlineReads().available
    expect(await nextInSameTurn(files, `sid=${id}`)).toEqual({ sync: inline, n: 7 })
  })

  it('still refuses a session another store instance revoked, and still calls a get of its own', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-mw-now-'))
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const a = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    const b = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    cleanups.push(() => a.close())
    cleanups.push(() => b.close())
    const id = await stored(a, new Avatar('alice'))
    expect((await nextInSameTurn(a, `sid=${id}`)).n).toBe(7)
    expect(await b.revokeSessions('alice')).toBe(1)
    expect((await nextInSameTurn(a, `sid=${id}`)).n).toBeNull()

    const own = new MemorySessionStore()
    const ownId = await stored(own)
    const spy = vi.spyOn(own, 'get')
    expect((await nextInSameTurn(own, `sid=${ownId}`)).n).toBe(7)
    expect(spy).toHaveBeenCalledWith(ownId)
  })
})

describe('the session cookie is found as cookie.parse finds it', () => {
  it('the first cookie of the name, trimmed, undecoded, in any header', async () => {
    const fc = await import('fast-check')
    const { parse } = await import('cookie')
    const { cookieValue } = await import('../../lib/http/session-core')
    const part = fc.constantFrom('sid', 'sid2', 'xsid', ' sid', 'sid ', '\tsid', '=', ';', ' ', '"', '%41', 'a', 'b=c')
    const header = fc.array(part, { maxLength: 14 }).map((parts) => parts.join(''))
    fc.assert(
      fc.property(header, (h) => {
        expect(cookieValue(h, 'sid')).toBe(parse(h, { decode: (v) => v }).sid)
      }),
      { numRuns: 3000 },
    )
    expect(cookieValue('a=1; sid = x ; sid=y', 'sid')).toBe('x')
    expect(cookieValue('sid; a=1; sid=z', 'sid')).toBe('z')
  })
})
