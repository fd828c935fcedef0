// No identifier of a user or a session in any log line at info or above (debug may carry
// a short prefix); the middleware logs nothing unless given a logger.
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import express from 'express'
import Fastify from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { FileSessionStore } from '../../lib/stores/file-store'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { Session } from '../../lib/session/session'
import { SessionManager } from '../../lib/manager/manager'
import { sessionMiddleware, type SessionRequest } from '../../lib/http/middleware'
import { storageName } from '../../lib/core/ids'

const SECRET = 'log privacy test secret, 32 characters+'
const USER = 'alice-9f3e77'
const EID = 'eid-c0ffee-4821'
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-logs-'))
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
  vi.restoreAllMocks()
})

type Call = { level: string; args: unknown[] }
function spyLogger() {
  const calls: Call[] = []
  const at =
    (level: string) =>
    (...args: unknown[]) =>
      void calls.push({ level, args })
  return { calls, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

/** Every substring of `secret` this long would identify it; none may appear in `text`. */
function expectNoPiece(text: string, secret: string, piece = 8): void {
  for (let i = 0; i + piece <= secret.length; i++)
    expect(text, `holds ${secret.slice(i, i + piece)}`).not.toContain(secret.slice(i, i + piece))
}

async function listen(app: http.RequestListener): Promise<string> {
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections()
    await closed
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function cookieOf(res: Response): string | null {
  const set = res.headers.getSetCookie().find((c) => c.startsWith('sid='))
  return set === undefined ? null : set.split(';')[0]
}

describe('log lines carry no session or user identifier', () => {
  it('middleware and file store: login, use, a failed write-back, tampering, logout', async () => {
    const { calls, logger } = spyLogger()
    const store = new FileSessionStore({
      dir: fs.mkdtempSync(path.join(root, 'files-')),
      secret: SECRET,
      logger,
      maxBytes: 4096,
      sweepInterval: 0,
    })
    cleanups.push(() => store.close())
    const app = express()
    app.use(sessionMiddleware({ store, logger }))
    app.get('/login', (req, res) => {
      ;(req as unknown as SessionRequest).session!.attachAvatar(new Avatar(USER, ['admin']))
      res.send('ok')
    })
    app.get('/count', (req, res) => {
      const s = (req as unknown as SessionRequest).session!
      s.data.set('n', (s.data.get('n', 0) as number) + 1)
      res.json({ id: s.id })
    })
    app.get('/big', (req, res) => {
      ;(req as unknown as SessionRequest).session!.data.set('blob', 'x'.repeat(8000))
      res.send('too big')
    })
    app.get('/logout', (req, res) => {
      ;(req as unknown as SessionRequest).session!.invalidate()
      res.send('bye')
    })
    const url = await listen(app)

    const first = await fetch(`${url}/count`)
    const before = (await first.json()).id as string
    const cookie = cookieOf(first)!
    const login = await fetch(`${url}/login`, { headers: { cookie } })
    const loggedIn = cookieOf(login)!
    const id = (await (await fetch(`${url}/count`, { headers: { cookie: loggedIn } })).json()).id as string
    expect((await fetch(`${url}/big`, { headers: { cookie: loggedIn } })).status).toBe(500) // a failed write-back is an error
    // A tampered envelope under the logged-in id: read as no session, with a warning.
    const file = path.join(store.dir, storageName(id))
    const bytes = fs.readFileSync(file)
    bytes[bytes.length - 1] ^= 1
    fs.writeFileSync(file, bytes)
    await fetch(`${url}/count`, { headers: { cookie: loggedIn } })
    await fetch(`${url}/logout`, { headers: { cookie: loggedIn } })

    const levels = new Set(calls.map((c) => c.level))
    expect(levels.has('error')).toBe(true) // the failed write-back was reported
    expect(levels.has('warn')).toBe(true) // and the tampered envelope
    const loud = JSON.stringify(calls.filter((c) => c.level !== 'debug').map((c) => c.args))
    // A 6-character piece of an id (the old too-large message carried one) is already too much.
    for (const secret of [before, id, USER]) expectNoPiece(loud, secret, 6)
    for (const name of [storageName(id), storageName(before)]) expectNoPiece(loud, name)
  })

  it('SessionManager: login, extend, a tampered file, logout', async () => {
    const { calls, logger } = spyLogger()
    const dir = path.join(root, 'manager')
    const m = new SessionManager('log-app', { dir, secret: SECRET, logger, cleanupInterval: 0 })
    cleanups.push(() => m.close())
    await m.login(USER, EID, { userName: 'Alice Example' })
    expect(await m.extendSession(1000)).toBe(true)
    const bytes = fs.readFileSync(m.sessionFile)
    bytes[bytes.length - 1] ^= 1
    fs.writeFileSync(m.sessionFile, bytes)
    expect(await m.getSession()).toBeNull()
    await m.login(USER, EID)
    await m.logout()
    expect(calls.some((c) => c.level === 'info')).toBe(true)
    const loud = JSON.stringify(calls.filter((c) => c.level !== 'debug').map((c) => c.args))
    for (const secret of [USER, EID, 'Alice Example']) expectNoPiece(loud, secret, 6)
  })
})

describe('JSON loggers get the redacted view of a session', () => {
  const TOKEN = 'at-7d1e0c94b2aa51f3'
  const REFRESH = 'rt-03b9f6e2c8d74a15'

  async function loggedIn(): Promise<Session> {
    const store = new MemorySessionStore({ sweepInterval: 0 })
    cleanups.push(() => store.close())
    const session = await store.create({ sub: USER, roles: ['admin'], access_token: TOKEN, refresh_token: REFRESH })
    session.data.set('cart.items', 2)
    return session
  }

  function expectRedacted(out: string, session: Session): void {
    expect(out).toContain(USER) // the session was logged, as inspect shows it
    expect(out).toContain(session.id.slice(0, 6)) // an id prefix only
    expectNoPiece(out, session.id, 7)
    for (const token of [TOKEN, REFRESH]) expectNoPiece(out, token)
  }

  it('pino (Fastify’s request.log): log.info({ session }) writes no whole id and no token', async () => {
    const session = await loggedIn()
    const lines: string[] = []
    const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => void lines.push(line) } } })
    cleanups.push(() => app.close())
    app.log.info({ session }, 'request done')
    app.log.info({ req: { user: USER }, nested: { sessions: [session] } }, 'nested')
    expect(lines).toHaveLength(2)
    const first = JSON.parse(lines[0]) as { session: Record<string, unknown> }
    expect(first.session.id).toBe(`${session.id.slice(0, 6)}…`)
    for (const line of lines) expectRedacted(line, session)
  })

  it('JSON.stringify(session) is the inspect view; toRecord() is the full record the stores keep', async () => {
    const session = await loggedIn()
    expectRedacted(JSON.stringify(session), session)
    expectRedacted(JSON.stringify({ session, list: [session] }), session)
    const record = session.toRecord()
    expect(record.id).toBe(session.id)
    expect(record.auth).toMatchObject({ access_token: TOKEN })
    expect(Session.fromRecord(JSON.parse(JSON.stringify(record))).id).toBe(session.id)
  })
})

describe('the middleware is silent by default', () => {
  it('a failed write-back logs nothing to the console; a store failure still reaches next(err)', async () => {
    const spies = (['debug', 'info', 'log', 'warn', 'error'] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation(() => {}),
    )
    const store = new FileSessionStore({
      dir: fs.mkdtempSync(path.join(root, 'quiet-')),
      secret: SECRET,
      maxBytes: 4096,
      sweepInterval: 0,
    })
    cleanups.push(() => store.close())
    const app = express()
    app.use(sessionMiddleware({ store }))
    app.get('/big', (req, res) => {
      ;(req as unknown as SessionRequest).session!.data.set('blob', 'x'.repeat(8000))
      res.send('too big')
    })
    const seen: unknown[] = []
    app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      seen.push(err)
      res.status(503).send('store down')
    })
    const url = await listen(app)
    // A failed write-back goes to next(err) too.
    const big = await fetch(`${url}/big`)
    expect(big.status).toBe(503)
    expect(cookieOf(big)).toBeNull() // nothing stored, no id handed out
    expect((seen[0] as { code?: string }).code).toBe('ERR_SESSION_TOO_LARGE')
    // A store that fails on read: the error goes to next(err).
    const valid = (await store.create()).id
    await store.close()
    const down = await fetch(`${url}/big`, { headers: { cookie: `sid=${valid}` } })
    expect(down.status).toBe(503)
    expect((seen[1] as { code?: string }).code).toBe('ERR_SESSION_CLOSED')
    for (const spy of spies) expect(spy).not.toHaveBeenCalled()
  })
})
