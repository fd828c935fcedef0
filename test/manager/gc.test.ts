// Keys that really go. In fresh processes (--expose-gc): an unclosed
// SessionManager or FileSessionStore with default options (cleanup timer running) is
// collected, and its native key ring with it (the ring's destructor wipes the key: counted by
// the addon's live key-ring counter); and once the key ring exists, the manager keeps no
// reference to the caller's secret (a heap snapshot no longer holds it).
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { requireDist } from '../helpers/dist'
import { lastJsonLine, ROOT, runNode } from '../helpers/run-node'

let root: string

beforeAll(() => {
  requireDist()
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-gc-'))
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

async function child(args: string[]): Promise<Record<string, unknown>> {
  const ran = await runNode(['--expose-gc', path.join(ROOT, 'test/fixtures/manager-gc.mjs'), ...args])
  if (ran.code !== 0 || ran.stderr !== '') throw new Error(`child failed (${ran.code}): ${ran.stderr}`)
  return lastJsonLine(ran)
}

describe('key hygiene: collection and secrets', () => {
  // A store holds two rings: its sealing key and the key of its identity index ('store-index').
  it.each([
    ['manager', 1],
    ['store', 2],
  ] as const)(
    'an unclosed %s with its default timer running is collected and its key rings destroyed',
    async (mode, rings) => {
      const r = await child([mode, fs.mkdtempSync(path.join(root, `${mode}-`))])
      expect(r).toMatchObject({ collected: true, livesBefore: 0, livesInUse: rings, livesAfter: 0 })
    },
  )

  it('control: a manager still referenced is not reported collected and its ring stays alive', async () => {
    const r = await child(['kept', fs.mkdtempSync(path.join(root, 'kept-'))])
    expect(r).toMatchObject({ collected: false, livesBefore: 0, livesInUse: 1, livesAfter: 1, kept: true })
  })

  async function snapshotHolds(mode: 'secret-after' | 'secret-before'): Promise<boolean> {
    const dir = fs.mkdtempSync(path.join(root, `${mode}-`))
    const secret = crypto.randomBytes(36).toString('hex') // 72 chars, found only if kept
    const secretFile = path.join(dir, 'secret.txt')
    fs.writeFileSync(secretFile, `${secret}\n`)
    const snapshot = path.join(dir, 'heap.heapsnapshot')
    const r = await child([mode, dir, secretFile, snapshot])
    expect(r.file).toBe(snapshot)
    const holds = fs.readFileSync(snapshot).includes(Buffer.from(secret))
    fs.rmSync(snapshot)
    return holds
  }

  it('once the key ring exists, the manager keeps no reference to the caller’s secret', async () => {
    expect(await snapshotHolds('secret-after')).toBe(false)
  }, 40_000)

  it('control: before the key ring exists the secret is in the heap, and the search finds it', async () => {
    expect(await snapshotHolds('secret-before')).toBe(true)
  }, 40_000)
})
