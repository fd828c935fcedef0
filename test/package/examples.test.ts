// Every example in examples/ is started as a user would run it (plain Node, the package through
// its own name from dist/), driven with real requests or commands, and stopped.
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { requireDist } from '../helpers/dist'
import { startExample, type RunningExample } from '../helpers/example-process'
import { needs } from '../helpers/ci'
import { findPostgres, startPostgresServer } from '../helpers/postgres-server'

const SECRET = 'examples test secret, at least 32 characters'
const ROOT = path.join(__dirname, '..', '..')
const run = promisify(execFile)

const dirs: string[] = []
const running: RunningExample[] = []
beforeAll(() => requireDist())
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop()
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-ex-'))
  dirs.push(d)
  return d
}

/** fetch with one cookie jar (every cookie the server sets, by name). */
function browser(base: string) {
  const jar = new Map<string, string>()
  return {
    jar,
    async call(
      method: string,
      pathname: string,
      body?: string,
    ): Promise<{ status: number; json: Record<string, unknown> }> {
      const headers: Record<string, string> = {}
      if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
      const res = await fetch(new URL(pathname, base), { method, headers, body, redirect: 'manual' })
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';')
        const at = pair.indexOf('=')
        if (/max-age=0|expires=thu, 01 jan 1970/i.test(c)) jar.delete(pair.slice(0, at))
        else jar.set(pair.slice(0, at), pair.slice(at + 1))
      }
      const text = await res.text()
      return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : { text } }
    },
  }
}

/** The JSON examples share one flow: count, log in (new id), count on, log out (fresh start). */
async function jsonFlow(example: RunningExample, cookieName: string) {
  const b = browser(example.url)
  expect((await b.call('GET', '/')).json).toEqual({ visits: 1, user: null })
  expect((await b.call('GET', '/')).json).toEqual({ visits: 2, user: null })
  const before = b.jar.get(cookieName)
  expect(before).toBeTruthy()
  expect((await b.call('POST', '/login?name=alice')).json).toEqual({ user: 'alice' })
  expect(b.jar.get(cookieName)).not.toBe(before) // a new id at login
  const third = (await b.call('GET', '/')).json
  expect(third.user).toBe('alice')
  expect((await b.call('POST', '/login?name=../../x')).status).toBe(400)
  expect((await b.call('POST', '/logout')).json).toEqual({ user: null })
  expect((await b.call('GET', '/')).json).toEqual({ visits: 1, user: null })
  // The planted pre-login id is worthless.
  const attacker = browser(example.url)
  attacker.jar.set(cookieName, before!)
  expect((await attacker.call('GET', '/')).json).toEqual({ visits: 1, user: null })
}

/** The session files are sealed: nothing of the data in clear. */
function expectSealed(dir: string, needle: string) {
  const files = fs.readdirSync(dir)
  expect(files.length).toBeGreaterThan(0)
  for (const f of files) expect(fs.readFileSync(path.join(dir, f)).includes(needle)).toBe(false)
}

describe('examples', () => {
  it('cli-login.mjs: login, whoami, logout on SessionManager across processes', async () => {
    const env = { ...process.env, SESSION_DIR: path.join(tmp(), 'cli') }
    const cli = (...args: string[]) => run(process.execPath, ['examples/cli-login.mjs', ...args], { cwd: ROOT, env })
    await expect(cli('whoami')).rejects.toMatchObject({ code: 1, stdout: 'not logged in\n' })
    expect((await cli('login', 'alice')).stdout).toMatch(/^logged in as alice until \d{4}-\d\d-\d\dT/)
    expect((await cli('whoami')).stdout).toMatch(/^alice \(until /)
    expect((await cli('logout')).stdout).toBe('logged out\n')
    await expect(cli('whoami')).rejects.toMatchObject({ code: 1 })
    await expect(cli('dance')).rejects.toMatchObject({ code: 2 })
  })

  it('express-file-store.mjs: Express + sessionMiddleware + FileSessionStore', async () => {
    const dir = path.join(tmp(), 'sessions')
    const ex = await startExample('express-file-store.mjs', { dir, secret: SECRET })
    running.push(ex)
    await jsonFlow(ex, 'sid')
    expectSealed(dir, 'alice')
  })

  it.runIf(needs(findPostgres(), 'PostgreSQL (apt-get install postgresql)'))(
    'postgres.mjs: Express + sessionMiddleware + PostgresSessionStore, other devices logged out',
    async () => {
      const server = await startPostgresServer()
      try {
        const ex = await startExample('postgres.mjs', { databaseUrl: server.url, secret: SECRET })
        running.push(ex)
        await jsonFlow(ex, 'sid')
        const phone = browser(ex.url)
        const laptop = browser(ex.url)
        for (const b of [phone, laptop]) expect((await b.call('POST', '/login?name=bob')).json).toEqual({ user: 'bob' })
        expect((await laptop.call('GET', '/devices')).json).toEqual({ sessions: 2 })
        expect((await laptop.call('POST', '/logout-others')).json).toEqual({ ended: 1 })
        expect((await phone.call('GET', '/')).json).toEqual({ visits: 1, user: null })
        expect((await laptop.call('GET', '/')).json.user).toBe('bob')
        const dump = server.tool('pg_dump', ['-d', 'postgres', '--data-only'])
        for (const clear of ['alice', 'bob', 'visits']) expect(dump).not.toContain(clear)
      } finally {
        for (const r of running.splice(0)) await r.stop()
        await server.stop()
      }
    },
    60_000,
  )

  it('express-session.mjs: express-session + ExpressSessionStore over a FileSessionStore', async () => {
    const dir = path.join(tmp(), 'sessions')
    const ex = await startExample('express-session.mjs', {
      dir,
      secret: SECRET,
      cookieSecret: 'cookie signing secret for the test',
    })
    running.push(ex)
    await jsonFlow(ex, 'connect.sid')
    expectSealed(dir, 'alice')
  })

  it('hono.mjs: Hono + withSession', async () => {
    const dir = path.join(tmp(), 'sessions')
    const ex = await startExample('hono.mjs', { dir, secret: SECRET })
    running.push(ex)
    await jsonFlow(ex, 'sid')
    expectSealed(dir, 'alice')
  })

  it('fastify.mjs: the login page on Fastify (form posts, redirects, escaping)', async () => {
    const dir = path.join(tmp(), 'sessions')
    const ex = await startExample('fastify.mjs', { dir, secret: SECRET })
    running.push(ex)
    const b = browser(ex.url)
    expect(String((await b.call('GET', '/')).json.text)).toContain('<span id="visits">1</span>')
    const login = await b.call('POST', '/login', 'username=' + encodeURIComponent('Zhang <b>Wei</b>'))
    expect(login.status).toBe(303)
    const page = String((await b.call('GET', '/')).json.text)
    expect(page).toContain('<span id="visits">2</span>')
    expect(page).toContain('Zhang &#60;b&#62;Wei&#60;/b&#62;')
    expect((await b.call('POST', '/logout', '')).status).toBe(303)
    expect(b.jar.has('sid')).toBe(false)
    expectSealed(dir, 'Zhang')
  })
})
