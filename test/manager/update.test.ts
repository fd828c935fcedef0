// SessionManager.update(fn): a read-modify-write (a token refresh) under the cross-process
// session lock. Processes that update at once run one at a time, each on the last result; a
// throw writes nothing; logged out gives null without calling fn; a holder killed inside fn
// frees the lock at once; a timeout bounds the wait.
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'

import { SessionLockTimeoutError, SessionManager } from '../../lib/index'
import { requireDist } from '../helpers/dist'
import { ROOT } from '../helpers/run-node'

const SECRET = 'a shared test secret of more than thirty-two characters'
const APP = 'update-app'
const FIXTURE = path.join(ROOT, 'test/fixtures/manager-update.mjs')

beforeAll(requireDist)

const roots: string[] = []
const managers: SessionManager[] = []
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close()
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true })
})

function setUp(): { dir: string; root: string; m: SessionManager } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-update-'))
  roots.push(root)
  const dir = path.join(root, 'sessions')
  const m = new SessionManager(APP, { dir, secret: SECRET, sweepInterval: 0 })
  managers.push(m)
  return { dir, root, m }
}

interface Child {
  proc: ChildProcess
  /** Resolves when the child prints this line. */
  line(text: string): Promise<void>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
}

function child(args: string[]): Child {
  const proc = spawn(process.execPath, [FIXTURE, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters: Array<{ text: string; resolve: () => void }> = []
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
    for (const w of waiters.splice(0)) {
      if (stdout.split('\n').includes(w.text)) w.resolve()
      else waiters.push(w)
    }
  })
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const guard = setTimeout(() => proc.kill('SIGKILL'), 60_000)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) =>
      proc.on('close', (code, signal) => {
        clearTimeout(guard)
        resolve({ code, signal, stdout, stderr })
      }),
  )
  return {
    proc,
    exited,
    line: (text) =>
      new Promise((resolve, reject) => {
        if (stdout.split('\n').includes(text)) return resolve()
        waiters.push({ text, resolve })
        exited.then((r) => reject(new Error(`child exited (${r.code}) before "${text}": ${r.stderr}`)))
      }),
  }
}

describe('SessionManager.update', () => {
  it('4 processes updating at once run one at a time, each on the previous result', async () => {
    const { dir, root, m } = setUp()
    await m.login('u', 'eid', { data: { log: [] } })
    const trace = path.join(root, 'trace.txt')
    const ids = ['p0', 'p1', 'p2', 'p3']
    const kids = ids.map((id) => child([dir, APP, SECRET, 'slow', id, trace]))
    await Promise.all(kids.map((k) => k.line('ready')))
    for (const k of kids) k.proc.stdin!.write('go\n')
    const results = await Promise.all(kids.map((k) => k.exited))
    for (const r of results) {
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    }

    // No overlap: every enter is followed by the same process's exit.
    const lines = fs.readFileSync(trace, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(8)
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]).toMatch(/^enter p\d$/)
      expect(lines[i + 1]).toBe(lines[i].replace('enter', 'exit'))
    }
    const order = lines.filter((l) => l.startsWith('enter')).map((l) => l.slice(6))
    expect([...order].sort()).toEqual(ids)
    // Each saw exactly what the ones before it wrote, and the last write holds all four.
    const saw = new Map(
      results.map((r, i) => [ids[i], (JSON.parse(r.stdout.trim().split('\n').pop()!) as { saw: string[] }).saw]),
    )
    order.forEach((id, i) => expect(saw.get(id)).toEqual(order.slice(0, i)))
    expect((await m.getSession())?.data).toEqual({ log: order })
  }, 60_000)

  it('a holder killed inside fn frees the lock: a waiting update proceeds, a bounded one times out first', async () => {
    const { dir, m } = setUp()
    await m.login('u', 'eid', { data: { token: 'rt-1' } })
    const before = fs.readFileSync(path.join(dir, 'session.enc'))
    const holder = child([dir, APP, SECRET, 'hold', 'h'])
    await holder.line('inside')

    // While it holds the lock: a bounded wait gives up with a typed error, having changed nothing.
    let called = false
    const timedOut = await m
      .update(
        () => {
          called = true
          return null
        },
        { timeout: 50 },
      )
      .catch((e: unknown) => e)
    expect(timedOut).toBeInstanceOf(SessionLockTimeoutError)
    expect((timedOut as SessionLockTimeoutError).code).toBe('ERR_SESSION_LOCK_TIMEOUT')
    expect((timedOut as Error).message).toContain('options.timeout')
    expect(called).toBe(false)

    // Two updates wait for it (one unbounded, one polling with a bound far above any release).
    const waiting = m.update((s) => ({ data: { token: `${s.data.token}+a` } }))
    const m2 = new SessionManager(APP, { dir, secret: SECRET, sweepInterval: 0 })
    managers.push(m2)
    const bounded = m2.update((s) => ({ data: { token: `${s.data.token}+b` } }), { timeout: 10_000 })
    holder.proc.kill('SIGKILL')
    const gone = await holder.exited
    expect(gone.signal).toBe('SIGKILL')
    expect((await waiting)?.data).toEqual({ token: 'rt-1+a' })
    expect((await bounded)?.data).toEqual({ token: 'rt-1+a+b' })
    expect(before.equals(fs.readFileSync(path.join(dir, 'session.enc')))).toBe(false)
  }, 60_000)

  it('a throw in fn writes nothing and propagates; null changes nothing and returns the session', async () => {
    const { dir, m } = setUp()
    await m.login('u', 'eid', { data: { token: 'rt-1' } })
    const file = path.join(dir, 'session.enc')
    const before = fs.readFileSync(file)
    const boom = new Error('refresh failed')
    await expect(
      m.update(() => {
        throw boom
      }),
    ).rejects.toBe(boom)
    await expect(m.update(async () => Promise.reject(boom))).rejects.toBe(boom)
    expect(fs.readFileSync(file).equals(before)).toBe(true)
    const same = await m.update(() => null)
    expect(same?.data).toEqual({ token: 'rt-1' })
    expect(fs.readFileSync(file).equals(before)).toBe(true)
    // A result that is not a change is a TypeError, and nothing is written either.
    await expect(m.update(() => ({ token: 'x' }) as never)).rejects.toThrow(TypeError)
    await expect(m.update(() => undefined as never)).rejects.toThrow(/data\?, userName\?, ttl\?/)
    await expect(m.update(() => ({ data: [] as never }))).rejects.toThrow(/data returned by update/)
    expect(fs.readFileSync(file).equals(before)).toBe(true)
    // The lock was released each time: the next update runs.
    expect((await m.update(() => ({ data: { token: 'rt-2' } })))?.data).toEqual({ token: 'rt-2' })
  })

  it('logged out: null, fn not called', async () => {
    const { m } = setUp()
    let called = 0
    expect(await m.update(() => (called++, null))).toBeNull()
    await m.login('u', 'eid')
    await m.logout()
    expect(await m.update(() => (called++, null))).toBeNull()
    expect(called).toBe(0)
  })

  it('changes data, userName and ttl (from now) and keeps the rest', async () => {
    const { m } = setUp()
    const first = await m.login('u', 'eid', { userName: 'U', data: { a: 1 }, ttl: 60_000 })
    const out = await m.update(() => ({ data: { b: 2 }, userName: null, ttl: 3_600_000 }))
    expect(out).toMatchObject({ userId: 'u', eid: 'eid', userName: null, data: { b: 2 }, createdAt: first.createdAt })
    expect(out!.expiresAtMs).toBeGreaterThan(first.expiresAtMs)
    expect(m.getSessionSync()?.toJSON()).toEqual(out!.toJSON())
  })

  it('calls in one process queue too: each sees the previous result', async () => {
    const { m } = setUp()
    await m.login('u', 'eid', { data: { n: 0 } })
    const seen: number[] = []
    await Promise.all(
      Array.from({ length: 5 }, () =>
        m.update(async (s) => {
          seen.push(s.data.n as number)
          await new Promise((r) => setImmediate(r))
          return { data: { n: (s.data.n as number) + 1 } }
        }),
      ),
    )
    expect(seen).toEqual([0, 1, 2, 3, 4])
    expect(m.getSessionSync()?.data).toEqual({ n: 5 })
  })

  it('a bounded update behind a call of this process times out without breaking the queue', async () => {
    const { dir, m } = setUp()
    await m.login('u', 'eid', { data: { n: 0 } })
    let entered!: () => void
    const inside = new Promise<void>((resolve) => (entered = resolve))
    let finish!: () => void
    const held = m.update(async (s) => {
      entered()
      await new Promise<void>((resolve) => (finish = resolve))
      return { data: { n: (s.data.n as number) + 1 } }
    })
    await inside
    const m2 = new SessionManager(APP, { dir, secret: SECRET, sweepInterval: 0 })
    managers.push(m2)
    await expect(m2.update(() => null, { timeout: 20 })).rejects.toBeInstanceOf(SessionLockTimeoutError)
    const queued = m2.update((s) => ({ data: { n: (s.data.n as number) + 10 } }), { timeout: 10_000 })
    finish()
    expect((await held)?.data).toEqual({ n: 1 })
    expect((await queued)?.data).toEqual({ n: 11 })
    expect((await m.update(() => null, { timeout: 0 }))?.data).toEqual({ n: 11 })
  })

  it('checks its arguments', async () => {
    const { m } = setUp()
    await expect(m.update('x' as never)).rejects.toThrow(/^fn must be a function/)
    await expect(m.update(() => null, { timeout: -1 })).rejects.toThrow(RangeError)
    await expect(m.update(() => null, { timeout: -1 })).rejects.toThrow(/options\.timeout/)
    await expect(m.update(() => null, { timout: 5 } as never)).rejects.toThrow(
      /options\.timout is not an option of update/,
    )
  })
})
