// Versioned saves across processes: 8 processes, each reading one FileSessionStore
// session and saving a path of its own 100 times; the stripe lock makes each compare-and-swap
// atomic, so every one of the 800 changes is present at the end. Children run
// test/fixtures/store-cas-writer.mjs from dist/.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { FileSessionStore } from '../../lib/index'
import { STORE_SECRET, lastJson, requireDist, rmTree, runNode, tmpRoot } from './helpers'

let root: string
beforeAll(() => {
  requireDist()
  root = tmpRoot('cas')
})
afterAll(() => rmTree(root))

describe('FileSessionStore versioned saves across processes', () => {
  it('8 processes x 100 saves, each changing its own path of one session: all 800 changes present', async () => {
    const PROCS = 8
    const EACH = 100
    const dir = path.join(root, 'one-session')
    const store = new FileSessionStore({ dir, secret: STORE_SECRET, sweepInterval: 0 })
    const session = await store.create({ identity: 'shared' })
    const started = Date.now()
    const runs = await Promise.all(
      Array.from({ length: PROCS }, (_, p) =>
        runNode('store-cas-writer.mjs', [dir, STORE_SECRET, session.id, String(p), String(EACH)], {
          timeoutMs: 55_000,
        }),
      ),
    )
    const ms = Date.now() - started
    type Result = { proc: number; saved: number; missing: number; errors: string[]; ms: number }
    const results = runs.map((r) => ({ ...lastJson<Result>(r), stderr: r.stderr }))
    const final = (await store.get(session.id))!
    await store.close()
    const present = Array.from(
      { length: PROCS },
      (_, p) => Array.from({ length: EACH }, (_, n) => final.data.get(`p${p}.i${n}`) === n).filter(Boolean).length,
    )
    const total = present.reduce((a, b) => a + b, 0)
    console.log(
      `store-cas: ${PROCS} processes x ${EACH} saves on one session: ${total} of ${PROCS * EACH} changes present (${ms} ms)`,
    )
    for (const r of results) {
      expect(r.errors).toEqual([])
      expect(r.stderr).toBe('')
      expect(r.saved).toBe(EACH)
    }
    expect(present).toEqual(Array.from({ length: PROCS }, () => EACH))
    expect(final.avatar.identity).toBe('shared')
    // 256 stripes at most, never a lock file per session.
    expect(
      fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.lock'))
        .every((n) => /^stripe-[0-9a-f]{2}\.lock$/.test(n)),
    ).toBe(true)
  }, 60_000)
})
