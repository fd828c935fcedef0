// Concurrency: several processes on one SessionManager file or one FileSessionStore
// directory, all with the same secret (so the same key). Child processes are
// test/fixtures/reliability-{extend,mixed,store-save}.mjs, loading the package from dist/.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { FileSessionStore, SessionManager } from '../../lib/index'
import { SECRET, STORE_SECRET, lastJson, requireDist, rmTree, runNode, tmpRoot } from './helpers'

let root: string
beforeAll(() => {
  requireDist()
  root = tmpRoot('conc')
})
afterAll(() => rmTree(root))

const TEMP = /^\..+\.[0-9a-f]{16}\.tmp$/

describe('concurrency across processes', () => {
  it('8 processes x 250 extendSession(1000) on one session add exactly 2 000 000 ms', async () => {
    const PROCS = 8
    const EACH = 250
    const dir = path.join(root, 'extend')
    const app = 'extend-app'
    const m = new SessionManager(app, { dir, secret: SECRET, cleanupInterval: 0 })
    const before = await m.login('racer', 'eid-extend', { ttl: 3_600_000, data: { n: 1 } })
    const started = Date.now()
    const runs = await Promise.all(
      Array.from({ length: PROCS }, () =>
        runNode('reliability-extend.mjs', [dir, app, SECRET, String(EACH), '1000'], { timeoutMs: 35_000 }),
      ),
    )
    const ms = Date.now() - started
    const results = runs.map((r) => ({ ...lastJson<{ ok: number; errors: string[] }>(r), stderr: r.stderr }))
    const after = await m.getSession()
    await m.close()
    const added = after === null ? NaN : after.expiresAtMs - before.expiresAtMs
    const ok = results.reduce((n, r) => n + r.ok, 0)
    console.log(
      `concurrency: ${PROCS} processes x ${EACH} extendSession(1000) = ${ok} extensions, expiry moved by ${added} ms (expected ${PROCS * EACH * 1000}), ${ms} ms`,
    )
    for (const r of results) {
      expect(r.errors).toEqual([])
      expect(r.stderr).toBe('')
      expect(r.ok).toBe(EACH)
    }
    expect(added).toBe(PROCS * EACH * 1000)
    expect(after!.createdAt).toBe(before.createdAt)
    expect(after!.data).toEqual({ n: 1 })
    expect(fs.readdirSync(dir).filter((e) => TEMP.test(e))).toEqual([])
  }, 40_000)

  it('8 processes mixing login, getSession and logout for 2 s see no torn read and no error', async () => {
    const PROCS = 8
    const dir = path.join(root, 'mixed')
    const app = 'mixed-app'
    // Make the directory first so that no two children race to create it.
    const m = new SessionManager(app, { dir, secret: SECRET, cleanupInterval: 0 })
    await m.init()
    const runs = await Promise.all(
      Array.from({ length: PROCS }, (_, p) =>
        runNode('reliability-mixed.mjs', [dir, app, SECRET, String(p), '2000', String(0xc0ffee + p)], {
          timeoutMs: 30_000,
        }),
      ),
    )
    type Mixed = {
      proc: number
      written: string[]
      read: string[]
      nulls: number
      torn: string[]
      errors: string[]
      warnings: number
    }
    const results = runs.map((r) => ({ ...lastJson<Mixed>(r), stderr: r.stderr }))
    const written = new Set(results.flatMap((r) => r.written))
    const reads = results.flatMap((r) => r.read)
    const phantom = reads.filter((k) => !written.has(k))
    const crossProcess = results.reduce((n, r) => n + r.read.filter((k) => !k.startsWith(`${r.proc}-`)).length, 0)
    const torn = results.flatMap((r) => r.torn)
    const errors = results.flatMap((r) => r.errors)
    const warnings = results.reduce((n, r) => n + r.warnings, 0)
    const nulls = results.reduce((n, r) => n + r.nulls, 0)
    console.log(
      `concurrency: ${PROCS} processes mixing login/getSession/logout for 2 s: ${written.size} logins, ${reads.length + nulls} reads ` +
        `(${reads.length} records, ${crossProcess} written by another process, ${nulls} null), ${torn.length} torn reads, ` +
        `${errors.length} errors, ${warnings} warnings, ${phantom.length} records nobody wrote`,
    )
    expect(torn).toEqual([])
    expect(errors).toEqual([])
    expect(phantom).toEqual([])
    expect(warnings).toBe(0)
    for (const r of results) expect(r.stderr).toBe('')
    expect(reads.length).toBeGreaterThan(0)
    // The file left is one of the records written (or none after a final logout).
    const last = await m.getSession()
    await m.close()
    if (last !== null) expect(written.has(`${last.data.proc}-${last.data.i}`)).toBe(true)
    expect(fs.readdirSync(dir).filter((e) => TEMP.test(e))).toEqual([])
  }, 40_000)

  it('FileSessionStore: 4 processes x 250 parallel saves of distinct sessions lose none', async () => {
    const PROCS = 4
    const EACH = 250
    const dir = path.join(root, 'store')
    const setup = new FileSessionStore({ dir, secret: STORE_SECRET, sweepInterval: 0 })
    await setup.close()
    const started = Date.now()
    const runs = await Promise.all(
      Array.from({ length: PROCS }, (_, p) =>
        runNode('reliability-store-save.mjs', [dir, STORE_SECRET, String(p), String(EACH), '8'], { timeoutMs: 30_000 }),
      ),
    )
    const saveMs = Date.now() - started
    const results = runs.map((r) => ({
      ...lastJson<{ proc: number; ids: string[]; errors: string[] }>(r),
      stderr: r.stderr,
    }))
    const store = new FileSessionStore({ dir, secret: STORE_SECRET, sweepInterval: 0, touchAfter: 3_600_000 })
    let readable = 0
    const lost: string[] = []
    for (const r of results) {
      for (const id of r.ids) {
        const s = await store.get(id)
        if (s !== null && s.data.get('proc') === r.proc && s.avatar.identity === `p${r.proc}`) readable++
        else lost.push(id)
      }
    }
    const dumped = (await store.dump()).sessions.length
    await store.close()
    const saved = results.reduce((n, r) => n + r.ids.length, 0)
    console.log(
      `concurrency: FileSessionStore ${PROCS} processes x ${EACH} parallel saves: ${saved} saved, ${readable} readable afterwards, ` +
        `${lost.length} lost, dump() lists ${dumped} (${saveMs} ms)`,
    )
    for (const r of results) {
      expect(r.errors).toEqual([])
      expect(r.stderr).toBe('')
      expect(r.ids.length).toBe(EACH)
    }
    expect(lost).toEqual([])
    expect(readable).toBe(PROCS * EACH)
    expect(dumped).toBe(PROCS * EACH)
    expect(fs.readdirSync(dir).filter((e) => TEMP.test(e))).toEqual([])
  }, 40_000)
})
