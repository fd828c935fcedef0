// No stale temp files. Writers (test/fixtures/reliability-crash-writer.mjs,
// logging in over and over) are SIGKILLed 40 times mid-write; the temp files they leave hold
// no lock any more, so the next manager to open the directory removes them all.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SessionManager } from '../../lib/index'
import { requireDist } from '../helpers/dist'

const ROOT = path.join(__dirname, '..', '..')
const SECRET = 'a stale-temp test secret of more than thirty-two chars'
const KILLS = 40
let root: string

beforeAll(() => {
  requireDist()
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-stale-'))
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const temps = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('.') && n.endsWith('.tmp'))

/** One writer, SIGKILLed `delay` ms after it is ready (mid-write: it writes in a loop). */
function killOne(dir: string, first: number, delay: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'test/fixtures/reliability-crash-writer.mjs'),
        'manager',
        dir,
        'stale-app',
        SECRET,
        String(first),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    let err = ''
    let timer: NodeJS.Timeout | undefined
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (timer === undefined && out.startsWith('ready\n')) timer = setTimeout(() => child.kill('SIGKILL'), delay)
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    // Only for a writer that hangs: an arm64 node under qemu on a loaded machine starts slowly.
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      clearTimeout(timer)
      if (signal === 'SIGKILL' && timer !== undefined) resolve()
      else reject(new Error(`writer ended by itself or never got ready (code ${code}, signal ${signal})\n${err}`))
    })
  })
}

describe('stale temp files', () => {
  it(`after ${KILLS} SIGKILLs mid-write, at most one temp file at a time, none once a new manager has started`, async () => {
    const dir = path.join(root, 'sessions')
    fs.mkdirSync(dir, { mode: 0o700 })
    // Each writer opens the directory as it starts, which removes what the previous one left:
    // at any time at most the last killed writer's temp file is there.
    const perKill: number[] = []
    for (let i = 0; i < KILLS; i++) {
      await killOne(dir, i * 100_000, 5 + ((i * 37) % 55))
      perKill.push(temps(dir).length)
    }
    const total = perKill.reduce((a, b) => a + b, 0)
    console.log(
      `stale temps: ${KILLS} writers killed mid-write; ${total} left a temp file, never more than ${Math.max(...perKill)} at once`,
    )
    expect(Math.max(...perKill)).toBeLessThanOrEqual(1)
    // One more, left by a writer of any kind just now: no age threshold applies.
    fs.writeFileSync(path.join(dir, '.session.enc.00112233aabbccdd.tmp'), 'torn', { mode: 0o600 })
    expect(temps(dir).length).toBeGreaterThanOrEqual(1)

    const m = new SessionManager('stale-app', { dir, secret: SECRET, cleanupInterval: 0 })
    await m.init()
    expect(temps(dir)).toEqual([])
    // And the last complete write is still readable.
    expect((await m.getSession())?.userId).toMatch(/^user-[01]$/)
    await m.close()
  }, 120_000)
})
