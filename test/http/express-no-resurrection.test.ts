// A destroyed express-session never comes back through ExpressSessionStore: not when the adapter
// read many other sessions in between (it remembers a bounded number of reads), and not when the
// logout went through another app server (another adapter over the same directory).
import { createHmac } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ExpressSessionStore, expressId } from '../../lib/http/express'
import { FileSessionStore } from '../../lib/stores/file-store'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { expressSessionApp, type Gate } from '../helpers/express-session-app'

const SECRET = 'express adapter test secret, 32+ chars'
const COOKIE_SECRET = 'cookie signing secret'
// More sessions read between a request's get and its set than the adapter could remember.
const OTHERS = 1200

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-express-res-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

const inners = [
  { name: 'MemorySessionStore', make: () => new MemorySessionStore() },
  { name: 'FileSessionStore', make: () => new FileSessionStore({ dir: tempDir(), secret: SECRET, sweepInterval: 0 }) },
]

const call = <T>(fn: (cb: (err: unknown, value?: T) => void) => void) =>
  new Promise<T | undefined>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))

const cookieData = (ms: number) => ({
  originalMaxAge: ms,
  expires: new Date(Date.now() + ms).toISOString(),
  httpOnly: true,
  path: '/',
})

/** The connect.sid header express-session accepts for `sid` (its cookie-signature format). */
function signedCookie(sid: string): string {
  const mac = createHmac('sha256', COOKIE_SECRET).update(sid).digest('base64').replace(/=+$/, '')
  return `connect.sid=${encodeURIComponent(`s:${sid}.${mac}`)}`
}

function sidOf(res: Response): string {
  const raw = res.headers.getSetCookie().find((c) => c.startsWith('connect.sid='))!
  const value = decodeURIComponent(raw.split(';')[0].slice('connect.sid='.length))
  return value.slice(2, value.lastIndexOf('.'))
}

async function request(url: string, cookie?: string, method = 'GET'): Promise<{ res: Response; body: any }> {
  const res = await fetch(url, { method, headers: cookie ? { cookie } : {} })
  return { res, body: await res.json() }
}

/** `count` sessions stored through the adapter, then each read once through `read`. */
async function readOthers(
  adapter: ExpressSessionStore,
  count: number,
  read: (sid: string) => Promise<void>,
): Promise<void> {
  const sids = Array.from({ length: count }, (_, i) => `other-${i}-${Math.random().toString(36).slice(2)}`)
  for (const sid of sids) await call((cb) => adapter.set(sid, { cookie: cookieData(60_000), n: 1 } as never, cb))
  for (let i = 0; i < sids.length; i += 50) await Promise.all(sids.slice(i, i + 50).map(read))
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

/** One app server: express-session over `adapter`; /slow changes the session and waits for `gate`. */
async function appServer(adapter: ExpressSessionStore, gate?: Gate): Promise<string> {
  return expressSessionApp(
    { secret: COOKIE_SECRET, store: adapter, cookie: { maxAge: 60_000 } },
    (c) => cleanups.push(c),
    gate,
  )
}

/** The slow request A on `url` (read, then changed), a logout through `logoutUrl`, OTHERS
 *  sessions read through `readVia`, then A ends. Returns the session's express id. */
async function logoutDuringSlowRequest(options: {
  adapter: ExpressSessionStore
  gate: { entered: ReturnType<typeof deferred>; release: ReturnType<typeof deferred> }
  url: string
  logoutUrl: string
  readVia: string
}): Promise<string> {
  const { adapter, gate, url, logoutUrl, readVia } = options
  const login = await request(`${url}/count`)
  const sid = sidOf(login.res)
  const cookie = signedCookie(sid)
  const slow = request(`${url}/slow`, cookie)
  await gate.entered.promise
  expect((await request(`${logoutUrl}/logout`, cookie, 'POST')).body).toEqual({ ok: true })
  // After the logout: the logout request read the session too, through its own server's adapter.
  await readOthers(adapter, OTHERS, async (other) => {
    expect((await request(`${readVia}/peek`, signedCookie(other))).body.n).toBe(1)
  })
  gate.release.resolve()
  expect((await slow).res.status).toBe(200)
  return sid
}

for (const flavour of inners) {
  describe(`ExpressSessionStore over ${flavour.name}: a destroyed session stays destroyed`, () => {
    it(`directly: get, ${OTHERS} other sessions read, destroy, then set (a loaded session or a copy of the read) writes nothing`, async () => {
      const inner = flavour.make()
      cleanups.push(() => inner.close())
      const adapter = new ExpressSessionStore({ store: inner })
      for (const sid of ['loaded', 'copied'])
        await call((cb) => adapter.set(sid, { cookie: cookieData(60_000), n: 1 } as never, cb))
      // Request A reads both, as express-session does (load gives its Session object) and as a plain get.
      const loaded = (await call<any>((cb) => adapter.load('loaded', cb)))!
      const copied = (await call<any>((cb) => adapter.get('copied', cb)))!
      await readOthers(adapter, OTHERS, async (sid) => {
        expect(await call<any>((cb) => adapter.get(sid, cb))).toMatchObject({ n: 1 })
      })
      // Request B logs both out; then A writes.
      for (const sid of ['loaded', 'copied']) await call((cb) => adapter.destroy(sid, cb))
      loaded.n = 2
      await call((cb) => loaded.save(cb))
      await call((cb) => adapter.set('copied', { ...copied, n: 2 } as never, cb))
      for (const sid of ['loaded', 'copied']) {
        expect(await call((cb) => adapter.get(sid, cb)), sid).toBeNull()
        expect(await inner.get(expressId(sid)), sid).toBeNull()
      }
    }, 60_000)

    it(`over HTTP: a slow request ends with a changed session after ${OTHERS} other reads and a logout; its cookie finds no session`, async () => {
      const inner = flavour.make()
      cleanups.push(() => inner.close())
      const adapter = new ExpressSessionStore({ store: inner })
      const gate = { entered: deferred(), release: deferred() }
      const url = await appServer(adapter, { inside: gate.entered.resolve, release: gate.release.promise })
      const sid = await logoutDuringSlowRequest({ adapter, gate, url, logoutUrl: url, readVia: url })
      expect((await request(`${url}/peek`, signedCookie(sid))).body.n).toBeNull()
      expect(await inner.get(expressId(sid))).toBeNull()
    }, 60_000)
  })
}

describe('two app servers (two adapters over one FileSessionStore directory)', () => {
  it(`a logout on server 2 holds against a slow request on server 1 that read ${OTHERS} other sessions meanwhile`, async () => {
    const dir = tempDir()
    const files1 = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    const files2 = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    cleanups.push(
      () => files1.close(),
      () => files2.close(),
    )
    const adapter1 = new ExpressSessionStore({ store: files1 })
    const adapter2 = new ExpressSessionStore({ store: files2 })
    const gate = { entered: deferred(), release: deferred() }
    const url1 = await appServer(adapter1, { inside: gate.entered.resolve, release: gate.release.promise })
    const url2 = await appServer(adapter2)
    const sid = await logoutDuringSlowRequest({ adapter: adapter1, gate, url: url1, logoutUrl: url2, readVia: url1 })
    for (const url of [url1, url2]) expect((await request(`${url}/peek`, signedCookie(sid))).body.n, url).toBeNull()
    expect(await files2.get(expressId(sid))).toBeNull()
  }, 60_000)
})
