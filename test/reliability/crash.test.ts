// Crash safety: writers killed with SIGKILL at random moments never leave a torn
// session. Four slots run in parallel (two SessionManager.login loops, two FileSessionStore.save
// loops), each a chain of child processes (test/fixtures/reliability-crash-writer.mjs): a child
// announces a record's sequence number, writes it, announces the next, ...; the test kills it
// 5-60 ms after it is ready, then opens the file with a fresh manager/store in this process. The
// file must hold one of the last two records the child announced, intact (announcing N means N-1
// was written); when a child died before its first write finished, the record found last time or
// that first one. Temp files left by killed writers hold no lock any more: the fresh
// manager/store that reads the file next removes them when it opens the directory.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { FileSessionStore, generateSessionId, Session, SessionManager, storageName } from '../../lib/index'
import { native } from '../../lib/core/native'
import { FIXTURES, ROOT, SECRET, STORE_SECRET, prng, requireDist, rmTree, tmpRoot } from './helpers'

// Fewer under emulators (scripts/platform-tests.mjs), where each child takes seconds to start.
const TOTAL_KILLS = Number(process.env.RELIABILITY_KILLS ?? 200)
const SLOW = Number(process.env.PLATFORM_TIMEOUT_SCALE ?? 1)
const SLOTS = 4
const SEED = Number(process.env.RELIABILITY_SEED ?? 0x5eed8)
const TEMP = /^\..+\.[0-9a-f]{16}\.tmp$/

let root: string
beforeAll(() => {
  requireDist()
  root = tmpRoot('crash')
})
afterAll(() => rmTree(root))

const pad = (seq: number) => (seq % 2 === 1 ? 'o'.repeat(1500) : 'e'.repeat(40))

interface Slot {
  kind: 'manager' | 'store'
  dir: string
  /** appName (manager) or session id (store) */
  name: string
  fileName: string
  secret: string
  /** every sequence number announced, in order */
  announced: number[]
  /** the record the file held at the last check */
  committed: number
  temps: Set<string>
  kills: number
}

const silent = () => {
  const counts = { warn: 0, error: 0 }
  return {
    counts,
    logger: { debug() {}, info() {}, warn: () => void counts.warn++, error: () => void counts.error++ },
  }
}

/** What the slot's file holds, read by a fresh manager/store: the sequence number, or a reason it is torn. */
async function readSlot(slot: Slot): Promise<{ seq: number } | { torn: string }> {
  const { counts, logger } = silent()
  if (slot.kind === 'manager') {
    const m = new SessionManager(slot.name, { dir: slot.dir, secret: slot.secret, cleanupInterval: 0, logger })
    try {
      const s = m.getSessionSync()
      if (s === null) return { torn: `no session (warnings: ${counts.warn})` }
      const seq = s.data.seq as number
      if (
        s.userId !== `user-${seq % 2}` ||
        s.eid !== `eid-${seq}` ||
        s.data.pad !== pad(seq) ||
        s.userName !== (seq % 2 ? null : 'Even')
      ) {
        return { torn: `record ${seq} does not match itself: ${JSON.stringify(s).slice(0, 200)}` }
      }
      return { seq }
    } finally {
      await m.close()
    }
  }
  const store = new FileSessionStore({
    dir: slot.dir,
    secret: slot.secret,
    sweepInterval: 0,
    touchAfter: 3_600_000,
    logger,
  })
  try {
    const s = await store.get(slot.name)
    if (s === null) return { torn: `no session (warnings: ${counts.warn})` }
    const seq = s.data.get('seq') as number
    if (s.avatar.identity !== `user-${seq % 2}` || s.data.get('pad') !== pad(seq)) {
      return { torn: `record ${seq} does not match itself: ${JSON.stringify(s).slice(0, 200)}` }
    }
    return { seq }
  } finally {
    await store.close()
  }
}

async function writeFirst(slot: Slot): Promise<void> {
  if (slot.kind === 'manager') {
    const m = new SessionManager(slot.name, { dir: slot.dir, secret: slot.secret, cleanupInterval: 0 })
    await m.login('user-0', 'eid-0', { userName: 'Even', data: { seq: 0, pad: pad(0) } })
    await m.close()
  } else {
    const store = new FileSessionStore({ dir: slot.dir, secret: slot.secret, sweepInterval: 0 })
    const s = new Session(slot.name, { identity: 'user-0' }, 3_600_000)
    s.data.set('seq', 0)
    s.data.set('pad', pad(0))
    await store.save(s)
    await store.close()
  }
  slot.announced.push(0)
}

/** One child: spawned, killed 5-60 ms after it is ready. Resolves with the numbers it announced. */
function killOne(slot: Slot, delay: number): Promise<number[]> {
  const next = slot.announced[slot.announced.length - 1] + 1
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(FIXTURES, 'reliability-crash-writer.mjs'), slot.kind, slot.dir, slot.name, slot.secret, String(next)],
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
    // A child that never becomes ready is killed too (and reported below).
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000 * SLOW)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      clearTimeout(timer)
      if (signal !== 'SIGKILL' || timer === undefined) {
        reject(new Error(`writer ended by itself or never got ready (code ${code}, signal ${signal})\n${err}`))
        return
      }
      // Only whole lines count: a number is announced before its write starts.
      const mine = out.split('\n').slice(1, -1).map(Number)
      slot.announced.push(...mine)
      slot.kills++
      resolve(mine)
    })
  })
}

// Besides its sessions, a store directory holds stripe lock files, identity index entries and
// revocation marks.
const STORE_KEEPS = /^(stripe-[0-9a-f]{2}\.lock|ix-[0-9a-f]{64}-[0-9a-f]{64}|revoked-[0-9a-f]{64})$/

describe('crash safety', () => {
  it(`${TOTAL_KILLS} SIGKILLs of writers at random moments leave the old or the new record, never a torn file`, async () => {
    const started = Date.now()
    const slots: Slot[] = []
    for (let i = 0; i < SLOTS; i++) {
      const kind = i % 2 === 0 ? 'manager' : 'store'
      const id = generateSessionId()
      slots.push({
        kind,
        dir: path.join(root, `slot${i}`),
        name: kind === 'manager' ? `crash-app-${i}` : id,
        fileName: kind === 'manager' ? 'session.enc' : storageName(id),
        secret: kind === 'manager' ? SECRET : STORE_SECRET,
        announced: [],
        committed: 0,
        temps: new Set(),
        kills: 0,
      })
    }
    for (const slot of slots) await writeFirst(slot)

    const random = prng(SEED)
    let reserved = 0
    const torn: string[] = []
    let heldPrevious = 0 // the kill landed after the announcement, before the rename: mid-write
    let heldLatest = 0
    const unexpected: string[] = []

    const loop = async (slot: Slot) => {
      while (reserved < TOTAL_KILLS) {
        reserved++
        const mine = await killOne(slot, 5 + Math.floor(random() * 56))
        for (const entry of fs.readdirSync(slot.dir)) {
          if (
            TEMP.test(entry) &&
            (entry.startsWith(`.${slot.fileName}.`) ||
              (slot.kind === 'store' && (entry.startsWith('.ix-') || entry.startsWith('.revoked-'))))
          )
            slot.temps.add(entry)
        }
        // Within one child, announcing N means N-1 was written: the file holds N-1 or N. A child
        // killed before its first write finished leaves what the last check found (or its one write).
        const allowed = mine.length >= 2 ? mine.slice(-2) : [slot.committed, ...mine]
        const found = await readSlot(slot)
        if ('torn' in found) torn.push(`${slot.kind} slot, child announced [${mine.join(',')}]: ${found.torn}`)
        else if (!allowed.includes(found.seq))
          torn.push(`${slot.kind} slot holds record ${found.seq}, expected one of ${allowed.join(', ')}`)
        else {
          if (found.seq === allowed[allowed.length - 1]) heldLatest++
          else heldPrevious++
          slot.committed = found.seq
        }
        // The reader opened the directory: no temp file is left, only the file and its lock.
        for (const entry of fs.readdirSync(slot.dir)) {
          if (entry === slot.fileName) continue
          if (slot.kind === 'manager' && entry === `${slot.fileName}.lock`) continue
          // A store also keeps stripe lock files and the identity index of its session.
          if (slot.kind === 'store' && STORE_KEEPS.test(entry)) continue
          unexpected.push(`${slot.kind}: ${entry}`)
        }
      }
    }
    await Promise.all(slots.map(loop))
    const killMs = Date.now() - started

    // The temp files killed writers left were all removed by the next open; a sweep finds
    // nothing more and leaves the session alone.
    const temps = slots.reduce((n, s) => n + s.temps.size, 0)
    for (const slot of slots) {
      const d = new native.PrivateDir(slot.dir, false)
      expect(d.sweepSync(Date.now()).removed).toBe(0)
      d.close()
    }
    const left = slots.reduce((n, s) => n + fs.readdirSync(s.dir).filter((e) => TEMP.test(e)).length, 0)
    for (const slot of slots) {
      const found = await readSlot(slot)
      expect(found, `${slot.kind} slot after the sweeps`).toHaveProperty('seq')
      expect((found as { seq: number }).seq).toBe(slot.committed)
    }

    const kills = slots.reduce((n, s) => n + s.kills, 0)
    const writes = slots.reduce((n, s) => n + s.announced.length - 1, 0)
    console.log(
      `crash-safety: ${kills} kills survived, ${torn.length} torn files ` +
        `(${writes} writes announced; file held the newest record after ${heldLatest} kills, the previous after ${heldPrevious} (killed mid-write); ` +
        `${temps} temp files left by killed writers, all removed by the next open, ${left} left; ` +
        `seed ${SEED}, ${killMs} ms)`,
    )
    expect(torn).toEqual([])
    expect(unexpected).toEqual([])
    expect(kills).toBe(TOTAL_KILLS)
    expect(left).toBe(0)
  }, 180_000)
})
