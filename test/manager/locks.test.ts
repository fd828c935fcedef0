// Login, logout and extendSession hold one cross-process lock, so an
// extension racing in another process never brings back a session logged out meanwhile and
// never overwrites a newer login with the older record it read. A child process extends in a
// tight loop while this process logs out / logs in over and over; after every logout the
// session must be gone, after every login it must be that login.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'

import { SessionManager } from '../../lib/index'
import { requireDist } from '../helpers/dist'

const ROOT = path.join(__dirname, '..', '..')
const SECRET = 'a shared test secret of more than thirty-two characters'
const APP = 'lock-race'
const ROUNDS = 60

beforeAll(requireDist)

const roots: string[] = []
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true })
})

interface Extender {
  /**
   * Resolves at the extender's next "hit" or "miss" line, or false after 20 s: a bound for a
   * child that hangs, far above a slow start (a node.exe under wine on a loaded machine).
   */
  next(line: 'hit' | 'miss'): Promise<boolean>
  stop(): Promise<{ ok: number; tries: number }>
}

/** Starts the extending child; resolves once it has extended the current session once. */
function startExtender(dir: string): Promise<Extender> {
  const child = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/manager-extend-loop.mjs'), dir, APP, SECRET], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  let waiter: { line: string; resolve: (seen: boolean) => void } | null = null
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve))
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const extender: Extender = {
    next(line) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiter = null
          resolve(false)
        }, 20_000)
        waiter = {
          line,
          resolve: (seen) => {
            clearTimeout(timer)
            resolve(seen)
          },
        }
      })
    },
    async stop() {
      child.stdin.end()
      const code = await closed
      clearTimeout(guard)
      expect(err).toBe('')
      expect(code).toBe(0)
      return JSON.parse(out.trim().split('\n').pop()!) as { ok: number; tries: number }
    },
  }
  let buffered = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d
    buffered += d
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      if (waiter && waiter.line === line) {
        const w = waiter
        waiter = null
        w.resolve(true)
      }
    }
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    closed.then((code) => reject(new Error(`extender exited early (${code}): ${err}`)))
    // The session exists (setUp logged in): the first line is a hit once the loop runs.
    extender
      .next('hit')
      .then((seen) => (seen ? resolve(extender) : reject(new Error(`extender never extended: ${err}`))))
  })
}

async function setUp(): Promise<{ dir: string; m: SessionManager }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-locks-'))
  roots.push(root)
  const dir = path.join(root, 'sessions')
  const m = new SessionManager(APP, { dir, secret: SECRET, cleanupInterval: 0 })
  await m.login('first', 'eid-first')
  return { dir, m }
}

describe('SessionManager: login, logout and extendSession under one cross-process lock', () => {
  it(`another process extending in a loop never brings back a logout (${ROUNDS} rounds)`, async () => {
    const { dir, m } = await setUp()
    const extender = await startExtender(dir)
    const revived: string[] = []
    try {
      for (let i = 0; i < ROUNDS; i++) {
        const hit = extender.next('hit')
        await m.login(`user-${i}`, `eid-${i}`)
        // The extender is extending this login (it had missed since the last logout) ...
        await hit
        const miss = extender.next('miss')
        expect(await m.logout()).toBe(true)
        // ... and has seen the logout: any extension it had in flight is finished by now.
        await miss
        const after = await m.getSession()
        if (after !== null) {
          revived.push(`${i}: ${after.userId}`)
          break // the extender keeps a revived session alive: no further round can start clean
        }
      }
      // One last logout while the extender is still running: it must stay logged out.
      await m.login('last', 'eid-last')
      await m.logout()
    } finally {
      // biome-ignore lint/correctness/noInnerDeclarations: var, so the counts outlive the finally block
      var counts = await extender.stop()
    }
    expect(revived).toEqual([])
    expect(await m.getSession()).toBeNull()
    expect(fs.existsSync(path.join(dir, 'session.enc'))).toBe(false)
    // The race was real: the extender extended sessions of this run many times.
    console.log(`manager-locks logout race: extender ${counts.ok} extensions in ${counts.tries} tries`)
    expect(counts.ok).toBeGreaterThan(ROUNDS / 10)
    await m.close()
  }, 60_000)

  it(`another process extending in a loop never overwrites a newer login (${ROUNDS} rounds)`, async () => {
    const { dir, m } = await setUp()
    const extender = await startExtender(dir)
    const overwritten: string[] = []
    try {
      for (let i = 0; i < ROUNDS; i++) {
        const mine = await m.login(`user-${i}`, `eid-${i}`, { data: { round: i } })
        await new Promise((r) => setImmediate(r))
        const now = await m.getSession()
        // Extensions of this login are fine (later expiry); an older record is not.
        if (now === null || now.eid !== mine.eid || now.expiresAtMs < mine.expiresAtMs)
          overwritten.push(`${i}: ${now?.eid}`)
      }
    } finally {
      // biome-ignore lint/correctness/noInnerDeclarations: var, so the counts outlive the finally block
      var counts = await extender.stop()
    }
    expect(overwritten).toEqual([])
    const last = await m.getSession()
    expect(last?.userId).toBe(`user-${ROUNDS - 1}`)
    expect(last?.data).toEqual({ round: ROUNDS - 1 })
    console.log(`manager-locks login race: extender ${counts.ok} extensions in ${counts.tries} tries`)
    expect(counts.ok).toBeGreaterThan(ROUNDS / 10)
    await m.close()
  }, 60_000)
})
