// SessionManager with `accounts: true`: several logins kept, one active. The active one is
// session.enc exactly as a single login is (so older files read as before and the sync read
// stays one native call); the others live in the sealed side file accounts.enc.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'

import { SessionManager } from '../../lib/index'
import { native } from '../../lib/core/native'
import { needs } from '../helpers/ci'
import { requireDist } from '../helpers/dist'
import { lastJsonLine, ROOT, runNode } from '../helpers/run-node'
import { MARK, callName, haveStrace, mainThreadLines, traceWindow } from '../helpers/strace'

const SECRET = 'a shared test secret of more than thirty-two characters'
const APP = 'acc-app'

beforeAll(requireDist)

const roots: string[] = []
const managers: SessionManager[] = []
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close()
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true })
})

function freshDir(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-acc-'))
  roots.push(root)
  return path.join(root, 'sessions')
}

function manager(dir: string, accounts = true): SessionManager {
  const m = new SessionManager(APP, { dir, secret: SECRET, accounts, sweepInterval: 0 })
  managers.push(m)
  return m
}

const listed = async (m: SessionManager) => (await m.accounts()).map((a) => `${a.userId}${a.active ? '*' : ''}`)

describe('SessionManager accounts: true', () => {
  it('keeps several logins, switches, and a logout makes the most recently active one active', async () => {
    const m = manager(freshDir())
    expect(await m.accounts()).toEqual([])
    const work = await m.login('work', 'eid-w', { userName: 'Work', data: { token: 'w' } })
    await m.login('home', 'eid-h', { userName: 'Home', data: { token: 'h' } })
    expect(await m.accounts()).toEqual([
      { userId: 'home', userName: 'Home', expiresAt: expect.any(String), active: true },
      { userId: 'work', userName: 'Work', expiresAt: work.expiresAt, active: false },
    ])
    expect(m.getSessionSync()?.userId).toBe('home')
    expect(await m.getUserId()).toBe('home')

    expect(await m.switchAccount('work')).toBe(true)
    expect(m.getSessionSync()?.toJSON()).toEqual(work.toJSON()) // the whole record came back
    expect(await m.switchAccount('nobody')).toBe(false)
    expect(await m.switchAccount('work')).toBe(true) // already active
    expect(await listed(m)).toEqual(['work*', 'home'])

    // extendSession and update act on the active account only.
    expect(await m.extendSession(1000)).toBe(true)
    await m.update(() => ({ data: { token: 'w2' } }))
    await m.login('third', 'eid-3')
    // Order of last activity: third (active), work (just left), home.
    expect(await listed(m)).toEqual(['third*', 'work', 'home'])
    expect(await m.switchAccount('home')).toBe(true)
    expect(await listed(m)).toEqual(['home*', 'third', 'work'])

    // A logout of an inactive account leaves the active one alone.
    expect(await m.logout('work')).toBe(true)
    expect(await m.logout('work')).toBe(false)
    expect(await listed(m)).toEqual(['home*', 'third'])
    await m.login('work', 'eid-w-again')
    await m.switchAccount('home')
    expect(await listed(m)).toEqual(['home*', 'work', 'third'])

    // Logging out the active one: the most recently active remaining one takes over.
    expect(await m.logout()).toBe(true)
    expect(m.getSessionSync()?.userId).toBe('work')
    expect(m.getSessionSync()?.eid).toBe('eid-w-again')
    expect(await m.logout('work')).toBe(true) // by id, while active: the same
    expect(await listed(m)).toEqual(['third*'])
    expect(await m.logout()).toBe(true)
    expect(await m.accounts()).toEqual([])
    expect(await m.logout()).toBe(false)
    expect(await m.isLoggedIn()).toBe(false)
  })

  it('a second login of the same user replaces that login only; logoutAll ends all and counts them', async () => {
    const dir = freshDir()
    const m = manager(dir)
    await m.login('a', 'eid-a1', { data: { v: 1 } })
    await m.login('b', 'eid-b')
    await m.login('a', 'eid-a2', { data: { v: 2 } })
    expect(await listed(m)).toEqual(['a*', 'b'])
    expect(m.getSessionSync()?.eid).toBe('eid-a2')
    await m.switchAccount('b')
    expect(await listed(m)).toEqual(['b*', 'a'])
    expect(await m.logoutAll()).toBe(2)
    expect(await m.accounts()).toEqual([])
    expect(m.getSessionSync()).toBeNull()
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.enc'))).toEqual([])
    expect(await m.logoutAll()).toBe(0)
  })

  it('an expired active account is not replaced by another on its own; switching still works', async () => {
    const m = manager(freshDir())
    await m.login('keep', 'eid-k')
    await m.login('short', 'eid-s', { ttl: 1 })
    // Wait for the clock to pass the short login's expiry (a spin on Date.now, no timer).
    const until = Date.now() + 2
    while (Date.now() < until) {
      /* spin */
    }
    expect(m.getSessionSync()).toBeNull()
    expect(await listed(m)).toEqual(['keep'])
    expect(await m.switchAccount('keep')).toBe(true)
    expect(m.getSessionSync()?.userId).toBe('keep')
  })

  it('a switch, a login and a logout are seen by fresh processes', async () => {
    const dir = freshDir()
    const run = async (...args: string[]) => {
      const ran = await runNode([path.join(ROOT, 'test/fixtures/manager-accounts.mjs'), dir, APP, SECRET, ...args])
      expect(ran.stderr).toBe('')
      expect(ran.code).toBe(0)
      return lastJsonLine<{ result: unknown; active: string | null; accounts: string[] }>(ran)
    }
    expect(await run('login', 'work')).toEqual({ result: 'work', active: 'work', accounts: ['work*'] })
    expect(await run('login', 'home')).toEqual({ result: 'home', active: 'home', accounts: ['home*', 'work'] })
    expect(await run('switch', 'work')).toEqual({ result: true, active: 'work', accounts: ['work*', 'home'] })
    expect(await run('read')).toEqual({ result: null, active: 'work', accounts: ['work*', 'home'] })
    // This process sees it too.
    expect(await listed(manager(dir))).toEqual(['work*', 'home'])
    expect(await run('logout')).toEqual({ result: true, active: 'home', accounts: ['home*'] })
    expect(await run('login', 'third')).toEqual({ result: 'third', active: 'third', accounts: ['third*', 'home'] })
    expect(await run('logoutAll')).toEqual({ result: 2, active: null, accounts: [] })
  }, 60_000)

  it('reads a single-login file as written before accounts existed, and a manager without accounts reads the active one', async () => {
    const dir = freshDir()
    // session.enc exactly as a single-login manager seals it: the record's JSON, context manager:<app>.
    const ring = new native.KeyRing({ scope: 'manager', name: APP, ikms: [Buffer.from(SECRET)] })
    const d = new native.PrivateDir(dir, true)
    const now = Date.now()
    const record = {
      userId: 'old',
      userName: 'Old',
      eid: 'eid-old',
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 3_600_000).toISOString(),
      data: { kept: true },
    }
    d.sealToFileSync(ring, 'session.enc', JSON.stringify(record), `manager:${APP}`, now, now + 3_600_000)
    d.close()
    ring.close()

    const m = manager(dir)
    expect(m.getSessionSync()?.toJSON()).toEqual(record)
    expect(await m.accounts()).toEqual([{ userId: 'old', userName: 'Old', expiresAt: record.expiresAt, active: true }])
    await m.login('new', 'eid-new')
    expect(await listed(m)).toEqual(['new*', 'old'])
    // A manager without the option (an older version of the app) still reads who is active.
    const single = manager(dir, false)
    expect(single.getSessionSync()?.userId).toBe('new')
    expect(await listed(single)).toEqual(['new*'])
    expect(await m.logout()).toBe(true)
    expect(m.getSessionSync()?.toJSON()).toEqual(record)
  })

  it('an account in both files (a switch cut short) is listed once, as active; too large a side file is refused first', async () => {
    const dir = freshDir()
    const m = manager(dir)
    const a = await m.login('a', 'eid-a')
    const b = await m.login('b', 'eid-b')
    // The state a crash between a switch's writes leaves: a in session.enc and in accounts.enc.
    const ring = new native.KeyRing({ scope: 'manager', name: APP, ikms: [Buffer.from(SECRET)] })
    const d = new native.PrivateDir(dir, false)
    const now = Date.now()
    const side = JSON.stringify({
      accounts: [
        { lastActive: now, session: a },
        { lastActive: now - 1, session: b },
      ],
    })
    d.sealToFileSync(ring, 'accounts.enc', side, `manager-accounts:${APP}`, now, now + 3_600_000)
    d.sealToFileSync(ring, 'session.enc', JSON.stringify(a), `manager:${APP}`, now, a.expiresAtMs)
    d.close()
    ring.close()
    expect(await listed(m)).toEqual(['a*', 'b'])
    expect(await m.logout()).toBe(true)
    expect(await listed(m)).toEqual(['b*'])

    // maxBytes caps accounts.enc too: the login that would overflow it changes nothing.
    const small = new SessionManager(APP, {
      dir: freshDir(),
      secret: SECRET,
      accounts: true,
      maxBytes: 1024,
      sweepInterval: 0,
    })
    managers.push(small)
    await small.login('x', 'eid-x', { data: { pad: 'p'.repeat(400) } })
    await small.login('y', 'eid-y', { data: { pad: 'p'.repeat(400) } })
    await expect(small.login('z', 'eid-z', { data: { pad: 'p'.repeat(400) } })).rejects.toThrow(/maxBytes/)
    expect(await listed(small)).toEqual(['y*', 'x'])
  })

  it('without the option a login still replaces, and accounts() lists at most one', async () => {
    const m = manager(freshDir(), false)
    await m.login('a', 'eid-a')
    await m.login('b', 'eid-b')
    expect(await listed(m)).toEqual(['b*'])
    expect(await m.switchAccount('a')).toBe(false)
    expect(await m.switchAccount('b')).toBe(true)
    expect(await m.logout('a')).toBe(false)
    expect(m.getSessionSync()?.userId).toBe('b')
    expect(await m.logout('b')).toBe(true)
    expect(await m.logoutAll()).toBe(0)
  })

  it('checks its arguments with errors that name them', async () => {
    expect(() => new SessionManager(APP, { dir: freshDir(), accounts: 'yes' as never })).toThrow(
      /^options\.accounts must be a boolean, got "yes"$/,
    )
    const m = manager(freshDir())
    await expect(m.switchAccount(42 as never)).rejects.toThrow(/^userId must be a non-empty string, got 42$/)
    await expect(m.logout('' as never)).rejects.toThrow(TypeError)
    await expect(m.logout(null as never)).rejects.toThrow(/^userId must be a non-empty string, got null$/)
  })

  it('the side file is sealed, private and names no user', async () => {
    const dir = freshDir()
    const m = manager(dir)
    await m.login('visible-user-id', 'eid-1', { userName: 'Visible Name' })
    await m.login('second-user', 'eid-2')
    const side = path.join(dir, 'accounts.enc')
    expect(fs.statSync(side).mode & 0o777).toBe(0o600)
    const bytes = fs.readFileSync(side)
    expect(bytes.subarray(0, 4).toString()).toBe('SEAL')
    expect(bytes.includes('visible-user-id')).toBe(false)
    expect(bytes.includes('Visible Name')).toBe(false)
    // Sealed for its own context: renamed over session.enc it is refused (and removed) with a warning.
    const warned: string[] = []
    const logged = new SessionManager(APP, {
      dir,
      secret: SECRET,
      accounts: true,
      sweepInterval: 0,
      logger: { debug() {}, info() {}, error() {}, warn: (msg) => warned.push(msg) },
    })
    managers.push(logged)
    fs.copyFileSync(side, path.join(dir, 'session.enc'))
    expect(logged.getSessionSync()).toBeNull()
    expect(warned).toEqual(['session file could not be opened and was removed'])
  })
})

describe.skipIf(!needs(haveStrace, 'strace'))('getSessionSync with many accounts (strace)', () => {
  it('stays one native read: openat, fstat, pread64, close, however many accounts', () => {
    const dir = freshDir()
    const out = path.join(path.dirname(dir), 'strace.txt')
    const script = path.join(path.dirname(dir), 'traced.cjs')
    fs.writeFileSync(
      script,
      `${MARK}
const { SessionManager } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))})
const m = new SessionManager(${JSON.stringify(APP)}, { dir: ${JSON.stringify(dir)}, secret: ${JSON.stringify(SECRET)}, accounts: true, sweepInterval: 0 })
;(async () => {
  for (let i = 0; i < 20; i++) await m.login('user-' + i, 'eid-' + i, { data: { token: 'x'.repeat(200) } })
  if ((await m.accounts()).length !== 20) process.exit(3)
  m.getSessionSync() // warm: the directory is open, the key derived
  mark('begin')
  const s = m.getSessionSync()
  mark('end')
  if (s.userId !== 'user-19') process.exit(4)
  await m.close()
})()
`,
    )
    const calls = mainThreadLines(traceWindow(script, out)).map(callName)
    expect(calls).toEqual(['openat', 'fstat', 'pread64', 'close'])
  }, 60_000)
})
