// FileSessionStore's write path, counted with strace: a save whose identity did not change
// renames its own file alone (its index entry read, not rewritten), and `durability` decides whether a write fsyncs ('fsync', the
// default: file and directory) or only renames ('process': survives a killed process, not a
// power loss). A torn or empty file, what a power loss can leave under 'process', reads as no
// session: test/reliability/tamper.test.ts truncates a store file to every length.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { FileSessionStore } from '../../lib/index'
import { needs } from '../helpers/ci'
import { requireDist } from '../helpers/dist'
import { MARK, callName, haveStrace, traceWindow } from '../helpers/strace'

const ROOT = path.join(__dirname, '..', '..')
const SECRET = 'a durability-test secret, comfortably over 32 chars'

let tmp: string
beforeAll(() => requireDist())
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-durable-'))
})
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('the durability option', () => {
  it("defaults to 'fsync'; 'process' is accepted; anything else is a TypeError naming it and its values", async () => {
    const dir = path.join(tmp, 'd')
    const stores = [
      new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 }),
      new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0, durability: 'fsync' }),
      new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0, durability: 'process' }),
    ]
    expect(stores.map((s) => s.durability)).toEqual(['fsync', 'fsync', 'process'])
    // A 'process' write reads back everywhere like any other.
    const s = await stores[2].create({ identity: 'alice' })
    expect((await stores[0].get(s.id))?.avatar.identity).toBe('alice')
    for (const bad of ['none', 'FSYNC', true, 0, null]) {
      expect(() => new FileSessionStore({ dir, secret: SECRET, durability: bad as never }), String(bad)).toThrow(
        TypeError,
      )
      expect(() => new FileSessionStore({ dir, secret: SECRET, durability: bad as never })).toThrow(
        /^options\.durability must be 'fsync' or 'process', got /,
      )
    }
    await Promise.all(stores.map((st) => st.close()))
  })
})

/** Traced lines (every thread: saves run on the pool) between the script's two marks. */
function traced(script: string): string[] {
  const file = path.join(tmp, 'traced.cjs')
  fs.writeFileSync(
    file,
    `${MARK}
const fs = require('node:fs')
const { Avatar, FileSessionStore } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))})
const dir = ${JSON.stringify(path.join(tmp, 'store'))}
const fail = (err) => { console.error(err); process.exit(3) }
${script}`,
  )
  return traceWindow(file, path.join(tmp, 'strace.txt'), '%file,%desc').lines
}

const fsyncs = (lines: string[]) => lines.map(callName).filter((n) => n === 'fsync' || n === 'fdatasync')
// The files a traced window opened or renamed onto, by name.
const named = (lines: string[]) =>
  lines
    .filter((l) => /^\d+\s+(openat2?|renameat2?)\(/.test(l))
    .map((l) => [...l.matchAll(/"([^"]+)"/g)].map((m) => m[1]).at(-1) as string)

// One logged-in session saved once (its index entry written), then saved again inside the window.
const saveAgain = (options: string) => `
const store = new FileSessionStore({ dir, secret: ${JSON.stringify(SECRET)}, sweepInterval: 0${options} })
store.create({ identity: 'alice' }).then(async (s) => {
  s.data.set('n', 1)
  await store.save(s)
  s.data.set('n', 2)
  mark('begin')
  const ok = await store.save(s)
  mark('end')
  if (!ok || (await store.get(s.id)).data.get('n') !== 2) process.exit(4)
  console.log(require('node:crypto').createHash('sha256').update(s.id).digest('hex'))
}).catch(fail)`

describe.skipIf(!needs(haveStrace, 'strace'))('system calls of a save (strace)', () => {
  it('a save of a logged-in session whose identity did not change renames only its own file; its index entry is read, not rewritten', () => {
    const lines = traced(saveAgain(''))
    const renamed = named(lines.filter((l) => /^\d+\s+renameat2?\(/.test(l)))
    expect(renamed.map((f) => f.replace(/[0-9a-f]{64}/g, 'H'))).toEqual(['H'])
    // The entry is checked after every persisted write, so an entry lost to a concurrent prune is
    // put back by the session's next write (docs/api/concurrency.md); present, it is left alone.
    expect(named(lines).filter((f) => f.startsWith('ix-'))).toHaveLength(1)
  })

  it('a login still writes the index entry first', () => {
    const lines = traced(`
const store = new FileSessionStore({ dir, secret: ${JSON.stringify(SECRET)}, sweepInterval: 0 })
store.create().then(async (s) => {
  mark('begin')
  s.attachAvatar(new Avatar('alice'))
  if (!(await store.save(s))) process.exit(4)
  mark('end')
  if ((await store.listSessions('alice')).length !== 1) process.exit(5)
}).catch(fail)`)
    const renamed = named(lines.filter((l) => /^\d+\s+renameat2?\(/.test(l)))
    expect(renamed.map((f) => f.replace(/[0-9a-f]{64}/g, 'H'))).toEqual(['ix-H-H', 'H'])
  })

  it("the default durability fsyncs the file and the directory on each save; 'process' fsyncs nothing", () => {
    expect(fsyncs(traced(saveAgain('')))).toEqual(['fsync', 'fsync'])
    expect(fsyncs(traced(saveAgain(", durability: 'process'")))).toEqual([])
    // 'process' still replaces by rename: a reader never sees a half-written file.
    expect(traced(saveAgain(", durability: 'process'")).filter((l) => /^\d+\s+renameat2?\(/.test(l))).toHaveLength(1)
  })
})

describe.skipIf(!needs(haveStrace, 'strace'))("durability 'process' (strace)", () => {
  it('still fsyncs a revocation mark: the file before its rename, the directory after', () => {
    const lines = traced(`
const store = new FileSessionStore({ dir, secret: ${JSON.stringify(SECRET)}, sweepInterval: 0, durability: 'process' })
store.create({ identity: 'alice' }).then(async (s) => {
  mark('begin')
  await store.revokeSessions('alice')
  mark('end')
  if ((await store.get(s.id)) !== null) process.exit(4)
}).catch(fail)`)
    const tid = (l: string) => l.split(/\s+/)[0]
    const rename = lines.findIndex((l) => /^\d+\s+renameat2?\(.*"revoked-[0-9a-f]{64}"/.test(l))
    expect(rename, 'the mark was renamed into place').toBeGreaterThan(0)
    const create = lines.findIndex((l) => /"\.revoked-[0-9a-f]{64}\.[0-9a-f]{16}\.tmp", O_WRONLY/.test(l))
    const thread = tid(lines[rename])
    const mine = (from: number, to: number) =>
      lines
        .slice(from, to)
        .filter((l) => tid(l) === thread)
        .map(callName)
    expect(mine(create, rename)).toContain('fsync')
    expect(mine(rename, lines.length)).toContain('fsync')
  })
})

describe('the identity index repairs itself', () => {
  it("an entry lost while its session lives is written again by the session's next save", async () => {
    const dir = path.join(tmp, 'repair')
    const store = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    const s = await store.create({ identity: 'alice' })
    const entries = () => fs.readdirSync(dir).filter((f) => f.startsWith('ix-'))
    expect(entries()).toHaveLength(1)
    // Lost as a prune racing a re-login could lose it: the file removed behind the store's back.
    for (const f of entries()) fs.rmSync(path.join(dir, f))
    expect(await store.listSessions('alice')).toEqual([])
    s.data.set('n', 1)
    expect(await store.save(s)).toBe(true)
    expect((await store.listSessions('alice')).map((i) => i.id)).toEqual([s.id])
    await store.close()
  })
})

describe('the identity index under key rotation', () => {
  it('a save over a record sealed with an older key still writes the entry under the current key', async () => {
    const dir = path.join(tmp, 'rotation')
    const K1 = 'the first key of this rotation test, 32+ chars'
    const K2 = 'the second key of this rotation test, 32+ chars'
    const old = new FileSessionStore({ dir, secret: K1, sweepInterval: 0 })
    const s = await old.create({ identity: 'alice' })
    await old.close()
    // Rotating: a copy read with K1 and saved under K2, with the touch throttle not yet due.
    const rotating = new FileSessionStore({ dir, secrets: [K2, K1], sweepInterval: 0, touchAfter: 3_600_000 })
    const copy = await rotating.get(s.id)
    copy?.data.set('n', 1)
    expect(await rotating.save(copy as NonNullable<typeof copy>)).toBe(true)
    copy?.data.set('n', 2)
    expect(await rotating.save(copy as NonNullable<typeof copy>)).toBe(true)
    await rotating.close()
    // K1 dropped: the session is listed by the index under K2 alone.
    const fresh = new FileSessionStore({ dir, secret: K2, sweepInterval: 0 })
    expect((await fresh.listSessions('alice')).map((i) => i.id)).toEqual([s.id])
    await fresh.close()
  })
})

describe("an acknowledged 'process' write survives SIGKILL of its writer", () => {
  it('the file holds the last save the killed writer announced as done (or a later one)', async () => {
    const dir = path.join(tmp, 'killed')
    for (let round = 0; round < 5; round++) {
      const child = spawn(
        process.execPath,
        [path.join(ROOT, 'test', 'fixtures', 'store-durability-writer.mjs'), dir, SECRET, 'process'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let out = ''
      let id = ''
      let acked = 0
      const target = 20 + round * 17
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      )
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString()
          for (const m of out.matchAll(/^id (\S+)$/gm)) id = m[1]
          for (const m of out.matchAll(/^saved (\d+)$/gm)) acked = Math.max(acked, Number(m[1]))
          if (acked >= target) {
            child.kill('SIGKILL') // right after an acknowledgement, with the next save under way
            resolve()
          }
        })
        child.on('exit', (code) => reject(new Error(`writer exited (${code}) after ${acked} saves`)))
      })
      expect(await exited).toBe('SIGKILL')
      const reader = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
      const back = await reader.get(id)
      await reader.close()
      expect(back?.avatar.identity).toBe('alice')
      expect(back?.data.get('seq') as number).toBeGreaterThanOrEqual(acked)
    }
  }, 60_000)
})
