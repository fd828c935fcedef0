// Tampering: every single-bit flip and every truncation of a sealed session file is
// rejected through the public API (SessionManager.getSession / getSessionSync → null,
// FileSessionStore.get → null; never thrown, never accepted), and nothing else is affected:
// the other session in the same store still reads after every variant, and the original bytes
// still open afterwards.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { FileSessionStore, SessionManager, storageName } from '../../lib/index'
import { SECRET, STORE_SECRET, rmTree, tmpRoot } from './helpers'

let root: string
beforeAll(() => {
  root = tmpRoot('tamper')
})
afterAll(() => rmTree(root))

// Under wine every system call is slow, so scripts/platform-tests.mjs sets PLATFORM_TAMPER_EVERY
// there and every k-th variant is tried (the parser every variant reaches is the same C++ that
// the x64 run checks with all of them).
const EVERY = Number(process.env.PLATFORM_TAMPER_EVERY ?? 1)

/** Every variant of `good`: each single-bit flip, then each truncation to 0..len-1 bytes. */
function* variants(good: Buffer): Generator<[string, Buffer]> {
  let i = 0
  for (let byte = 0; byte < good.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      if (i++ % EVERY !== 0) continue
      const v = Buffer.from(good)
      v[byte] ^= 1 << bit
      yield [`flip byte ${byte} bit ${bit}`, v]
    }
  }
  for (let len = 0; len < good.length; len++) {
    if (i++ % EVERY === 0) yield [`truncate to ${len}`, good.subarray(0, len)]
  }
}

/** How many variants `variants(good)` yields. */
const variantCount = (good: Buffer): number => Math.ceil((good.length * 9) / EVERY)

const counting = () => {
  const counts = { warn: 0, debug: 0, error: 0 }
  return {
    counts,
    logger: {
      debug: () => void counts.debug++,
      info() {},
      warn: () => void counts.warn++,
      error: () => void counts.error++,
    },
  }
}

const totals = { variants: 0, flips: 0, truncations: 0, accepted: 0, thrown: 0 }

/** Adds one file's figures to the totals; returns its number of single-bit flips tried. */
function tally(good: Buffer, variants: number, accepted: string[], thrown: string[]): number {
  const flips = Math.ceil((good.length * 8) / EVERY)
  totals.variants += variants
  totals.flips += flips
  totals.truncations += variants - flips
  totals.accepted += accepted.length
  totals.thrown += thrown.length
  return flips
}

describe('tampering', () => {
  it('SessionManager: every bit flip and truncation of session.enc reads as null; other sessions are untouched', async () => {
    const { counts, logger } = counting()
    const dir = path.join(root, 'manager')
    const m = new SessionManager('tamper-app', { dir, secret: SECRET, cleanupInterval: 0, logger })
    const original = await m.login('alice', 'eid-42', { userName: 'Alice', data: { roles: ['admin'], n: 7 } })
    const good = fs.readFileSync(m.sessionFile)
    // Another app's session (another directory, same secret): must read throughout.
    const otherDir = path.join(root, 'manager-other')
    const other = new SessionManager('other-app', { dir: otherDir, secret: SECRET, cleanupInterval: 0 })
    const otherRecord = await other.login('bob', 'eid-b')

    const accepted: string[] = []
    const thrown: string[] = []
    let n = 0
    let removed = 0
    for (const [label, bytes] of variants(good)) {
      fs.writeFileSync(m.sessionFile, bytes, { mode: 0o600 })
      try {
        // Alternate the async read and its sync twin: both go through the same checks.
        const s = n % 2 === 0 ? await m.getSession() : m.getSessionSync()
        if (s !== null) accepted.push(`${label}: ${JSON.stringify(s)}`)
      } catch (err) {
        thrown.push(`${label}: ${String(err)}`)
      }
      if (!fs.existsSync(m.sessionFile)) removed++
      n++
    }
    const flips = tally(good, n, accepted, thrown)
    console.log(
      `tamper: SessionManager session.enc (${good.length} bytes): ${n} variants tried (${flips} bit flips, ${n - flips} truncations${EVERY > 1 ? `, every ${EVERY}th` : ''}), ` +
        `${accepted.length} accepted, ${thrown.length} thrown, ${removed} removed as unreadable or expired, ${counts.warn} warnings`,
    )
    expect(accepted).toEqual([])
    expect(thrown).toEqual([])
    expect(n).toBe(variantCount(good))
    // Every variant was discarded: the manager removes files it cannot open.
    expect(removed).toBe(n)
    expect(counts.error).toBe(0)

    // Nothing else was affected: the original bytes still open, the other app still reads.
    fs.writeFileSync(m.sessionFile, good, { mode: 0o600 })
    expect((await m.getSession())?.toJSON()).toEqual(original.toJSON())
    expect(m.getSessionSync()?.toJSON()).toEqual(original.toJSON())
    expect((await other.getSession())?.toJSON()).toEqual(otherRecord.toJSON())
    await m.close()
    await other.close()
  }, 30_000)

  it('FileSessionStore: every bit flip and truncation of one session file reads as null; the other session still reads', async () => {
    const { counts, logger } = counting()
    const store = new FileSessionStore({
      dir: path.join(root, 'store'),
      secret: STORE_SECRET,
      sweepInterval: 0,
      touchAfter: 3_600_000,
      logger,
    })
    const a = await store.create({ identity: 'alice', roles: 'admin,ops' })
    a.data.set('cart.items', ['book', 'pen'])
    await store.save(a)
    const b = await store.create({ identity: 'bob' })
    const fileA = path.join(store.dir, storageName(a.id))
    const good = fs.readFileSync(fileA)

    const accepted: string[] = []
    const thrown: string[] = []
    const bLost: string[] = []
    let n = 0
    for (const [label, bytes] of variants(good)) {
      fs.writeFileSync(fileA, bytes, { mode: 0o600 })
      try {
        const s = await store.get(a.id)
        if (s !== null) accepted.push(`${label}: ${JSON.stringify(s)}`)
      } catch (err) {
        thrown.push(`${label}: ${String(err)}`)
      }
      try {
        const sb = await store.get(b.id)
        if (sb?.avatar.identity !== 'bob') bLost.push(label)
      } catch (err) {
        bLost.push(`${label}: ${String(err)}`)
      }
      n++
    }
    const flips = tally(good, n, accepted, thrown)
    console.log(
      `tamper: FileSessionStore file (${good.length} bytes): ${n} variants tried (${flips} bit flips, ${n - flips} truncations${EVERY > 1 ? `, every ${EVERY}th` : ''}), ` +
        `${accepted.length} accepted, ${thrown.length} thrown, other session lost after ${bLost.length} variants, ${counts.warn} warnings`,
    )
    expect(accepted).toEqual([])
    expect(thrown).toEqual([])
    expect(bLost).toEqual([])
    expect(n).toBe(variantCount(good))
    expect(counts.error).toBe(0)

    fs.writeFileSync(fileA, good, { mode: 0o600 })
    const back = await store.get(a.id)
    expect(back?.avatar.identity).toBe('alice')
    expect(back?.avatar.tags).toEqual(['admin', 'ops'])
    expect(back?.data.get('cart.items')).toEqual(['book', 'pen'])
    expect((await store.dump()).sessions.map((s) => s.id).sort()).toEqual([a.id, b.id].sort())
    await store.close()
  }, 30_000)

  afterAll(() => {
    console.log(
      `tamper: ${totals.variants} variants tried (${totals.flips} single-bit flips, ${totals.truncations} truncations), ${totals.accepted} accepted, ${totals.thrown} thrown`,
    )
  })
})
