// The native read path: a sync read in four system calls, async reads served on the
// main thread when the kernel can do it without blocking (pool otherwise), every refusal kept
// on both paths, and the sweep that passes live files by their mtime. System-call counts come
// from strace: in CI (CI=true) a missing strace fails, locally those tests are reported skipped.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { native, OPEN_AS_STRING, OPEN_REMOVE_EXPIRED } from '../../lib/core/native'
import { callName, mainThreadLines, traceWindow } from '../helpers/strace'

const MAX = native.DEFAULT_MAX_BYTES
const isRoot = process.getuid?.() === 0
const inCI = process.env.CI === 'true' || process.env.CI === '1'
const NOBODY = 65534
const HOUR = 3_600_000

function have(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0
}
const haveStrace = process.platform === 'linux' && have('strace')
if (!haveStrace && !inCI)
  console.warn('native-fastpath: strace tests skipped, strace is not installed (apt-get install strace)')

let tmp: string
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-fast-'))
  native.setInlineReadMode(0)
})
// Closed before the directory is removed: Windows cannot remove a directory held open.
const opened: Array<{ close(): void }> = []
const openDir = (p: string) => {
  const d = new native.PrivateDir(p, true)
  opened.push(d)
  return d
}
afterEach(() => {
  native.setInlineReadMode(0)
  for (const d of opened.splice(0)) d.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

const ring = new native.KeyRing({ scope: 'store', name: 'fast', ikms: [Buffer.alloc(32, 5)] })
const codeOf = async (fn: () => unknown): Promise<string | undefined> => {
  try {
    await fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return 'no error'
}

// The system calls of the main thread between two markers, names only (strace -f output).
// Only file and descriptor calls and credential calls are traced: the allocator's mmap/madvise
// are not the read's business.
function tracedCalls(script: string): string[] {
  return tracedLines(script).map(callName)
}

// The main thread's traced lines (calls with their arguments) between the two marks.
function tracedLines(script: string): string[] {
  const file = path.join(tmp, 'traced.cjs')
  fs.writeFileSync(file, script)
  return mainThreadLines(traceWindow(file, path.join(tmp, 'strace.txt')))
}

// A child script using the built addon through lib/native.js's loader (node-gyp-build).
const prelude = (dir: string) => `
const path = require('node:path'), fs = require('node:fs')
const { native } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'core', 'native.js'))})
const ring = new native.KeyRing({ scope: 'store', name: 'fast', ikms: [Buffer.alloc(32, 5)] })
const dir = ${JSON.stringify(path.join(dir, 'd'))}
const d = new native.PrivateDir(dir, true)
const mark = (m) => fs.statSync('/__ss_' + m + '__', { throwIfNoEntry: false })
`

describe.skipIf(!haveStrace && !inCI)('system calls (strace)', () => {
  it('strace is installed (CI must apt-get install strace)', () => {
    expect(haveStrace).toBe(true)
  })

  it('a sync read is openat, fstat, pread, close: no geteuid, no directory fstat', () => {
    const calls = tracedCalls(
      prelude(tmp) +
        `d.sealToFileSync(ring, 'a', '{"x":1}', 'c', Date.now(), Date.now() + 3600000)
mark('begin')
const r = d.openFileSync(ring, 'a', 'c', ${MAX}, Date.now(), ${OPEN_AS_STRING})
mark('end')
if (r.plaintext !== '{"x":1}') process.exit(3)`,
    )
    expect(calls).toEqual(['openat', 'fstat', 'pread64', 'close'])
  })

  it('a cached async read runs on the main thread: openat2, fstat, preadv2 (RWF_NOWAIT), close', () => {
    const calls = tracedCalls(
      prelude(tmp) +
        `d.sealToFileSync(ring, 'a', '{"x":1}', 'c', Date.now(), Date.now() + 3600000)
d.openFileSync(ring, 'a', 'c', ${MAX}, Date.now(), 0)
mark('begin')
const p = d.openFile(ring, 'a', 'c', ${MAX}, Date.now(), ${OPEN_AS_STRING})
mark('end') // the read is done by now; the promise settles on a later turn
p.then((r) => {
  if (r.plaintext !== '{"x":1}' || native.inlineReads().inline !== 1) process.exit(3)
})`,
    )
    expect(calls).toEqual(['openat2', 'fstat', 'preadv2', 'close'])
  })

  it("FileSessionStore's constructor and first calls leave the directory to the pool: the main thread never names it", () => {
    const store = path.join(tmp, 'store-dir')
    const lines = tracedLines(
      prelude(tmp) +
        `const { FileSessionStore } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'index.js'))})
mark('begin')
const store = new FileSessionStore({ dir: ${JSON.stringify(store)}, secret: 'x'.repeat(32), sweepInterval: 0 })
store.create().then(async (s) => {
  const back = await store.get(s.id)
  await store.purgeExpired()
  mark('end')
  if (back?.id !== s.id || !fs.statSync(${JSON.stringify(store)}).isDirectory()) process.exit(3)
})`,
    )
    expect(lines.length).toBeGreaterThan(0) // the window was traced
    expect(lines.filter((l) => l.includes('store-dir'))).toEqual([])
  })

  it('the sweep passes live files by one fstatat each: no open, read or close per file', () => {
    const calls = tracedCalls(
      prelude(tmp) +
        `for (let i = 0; i < 20; i++) d.sealToFileSync(ring, 's' + i, 'x', 'c', 1, Date.now() + 3600000)
mark('begin')
const r = d.sweepSync(Date.now())
mark('end')
if (r.scanned !== 20 || r.removed !== 0) process.exit(3)`,
    )
    const count = (name: string) => calls.filter((c) => c === name).length
    expect(count('fstat')).toBe(20 + 2) // one per entry; the directory's own check and fdopendir's
    // The directory itself is opened once (readdir); no file is.
    expect(count('openat')).toBe(1)
    expect(count('pread64') + count('read')).toBe(0)
  })
})

describe('inline async reads', () => {
  it.skipIf(process.platform !== 'linux')(
    'are served on the main thread when the file is cached, and settle on a later tick',
    async () => {
      const d = openDir(tmp)
      d.sealToFileSync(ring, 'a', '{"x":1}', 'c', 1, Date.now() + HOUR)
      d.openFileSync(ring, 'a', 'c', MAX, Date.now(), 0) // now in the page cache
      const before = native.inlineReads()
      expect(before.available).toBe(true)
      let settled = false
      const p = d.openFile(ring, 'a', 'c', MAX, Date.now(), OPEN_AS_STRING).then((r) => {
        settled = true
        return r
      })
      expect(settled).toBe(false) // never called back synchronously
      await Promise.resolve()
      expect(settled).toBe(false) // nor from a microtask: on a later turn of the event loop, as I/O
      const r = await p
      expect(r && 'plaintext' in r && r.plaintext).toBe('{"x":1}')
      const after = native.inlineReads()
      expect(after.inline - before.inline).toBe(1)
      expect(after.pool - before.pool).toBe(0)
    },
  )

  it.skipIf(process.platform !== 'linux')(
    'a burst of 64 cached reads settles 16 per event-loop turn: other callbacks run between the slices',
    async () => {
      const d = openDir(tmp)
      d.sealToFileSync(ring, 'a', '{"x":7}', 'c', 1, Date.now() + HOUR)
      d.openFileSync(ring, 'a', 'c', MAX, Date.now(), 0) // now in the page cache
      const before = native.inlineReads()
      let settled = 0
      const reads = Array.from({ length: 64 }, () =>
        d.openFile(ring, 'a', 'c', MAX, Date.now(), OPEN_AS_STRING).then((r) => {
          settled++
          return r
        }),
      )
      expect(native.inlineReads().inline - before.inline).toBe(64)
      // An immediate queued now runs right after this turn's slice; each next one, a turn later.
      const seen: number[] = []
      for (let turn = 0; turn < 5; turn++) {
        await new Promise((resolve) => setImmediate(resolve))
        seen.push(settled)
      }
      expect(seen).toEqual([16, 32, 48, 64, 64])
      for (const r of await Promise.all(reads)) expect(r && 'plaintext' in r && r.plaintext).toBe('{"x":7}')
    },
  )

  it('the test switch that answers EAGAIN sends the read to the pool, with the same result', async () => {
    const d = openDir(tmp)
    d.sealToFileSync(ring, 'a', '{"x":2}', 'c', 1, Date.now() + HOUR)
    native.setInlineReadMode(1)
    const before = native.inlineReads()
    const r = await d.openFile(ring, 'a', 'c', MAX, Date.now(), OPEN_AS_STRING)
    expect(r && 'plaintext' in r && r.plaintext).toBe('{"x":2}')
    const after = native.inlineReads()
    expect(after.pool - before.pool).toBe(1)
    expect(after.inline - before.inline).toBe(0)
    expect(after.available).toBe(process.platform === 'linux') // EAGAIN does not stop later tries
  })

  it.skipIf(process.platform !== 'linux')(
    'a file evicted from the page cache is read on the pool; a resident one inline',
    async () => {
      const d = openDir(tmp)
      d.sealToFileSync(ring, 'a', '{"x":3}', 'c', 1, Date.now() + HOUR)
      const file = path.join(tmp, 'a')
      // dd's nocache flag is posix_fadvise(POSIX_FADV_DONTNEED); tmpfs and some others ignore it.
      // Several tries: on a busy machine the page can come back between the check and the read.
      const tries: Array<{ resident: number; inline: number; pool: number }> = []
      for (let i = 0; i < 5; i++) {
        execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'])
        const resident = Number(
          execFileSync('fincore', ['--raw', '--noheadings', '--output', 'PAGES', file], { encoding: 'utf8' }).trim(),
        )
        const before = native.inlineReads()
        const r = await d.openFile(ring, 'a', 'c', MAX, Date.now(), OPEN_AS_STRING)
        expect(r && 'plaintext' in r && r.plaintext).toBe('{"x":3}')
        const after = native.inlineReads()
        tries.push({ resident, inline: after.inline - before.inline, pool: after.pool - before.pool })
      }
      // A resident file is never sent to the pool; an evicted one (disk-backed file systems) is.
      for (const t of tries.filter((t) => t.resident > 0)) expect(t).toMatchObject({ inline: 1, pool: 0 })
      const evicted = tries.filter((t) => t.resident === 0)
      if (evicted.length > 0)
        expect(
          evicted.some((t) => t.pool === 1 && t.inline === 0),
          JSON.stringify(tries),
        ).toBe(true)
    },
  )

  it('an expired file to be removed goes to the pool, which removes it', async () => {
    const d = openDir(tmp)
    d.sealToFileSync(ring, 'a', 'x', 'c', 1, 1000)
    const r = await d.openFile(ring, 'a', 'c', MAX, Date.now(), OPEN_REMOVE_EXPIRED)
    expect(r).toMatchObject({ expired: true, expiresAt: 1000 })
    expect(fs.existsSync(path.join(tmp, 'a'))).toBe(false)
  })

  it.skipIf(process.platform !== 'linux')(
    'a filesystem without RWF_NOWAIT (simulated EOPNOTSUPP): that directory reads on the pool from then on, others inline',
    async () => {
      const d = openDir(path.join(tmp, 'nfs-like'))
      const other = openDir(path.join(tmp, 'local'))
      d.sealToFileSync(ring, 'a', '{"x":5}', 'c', 1, Date.now() + HOUR)
      other.sealToFileSync(ring, 'a', '{"x":6}', 'c', 1, Date.now() + HOUR)
      d.openFileSync(ring, 'a', 'c', MAX, Date.now(), 0) // both in the page cache
      other.openFileSync(ring, 'a', 'c', MAX, Date.now(), 0)
      const read = async (dir: typeof d) => {
        const before = native.inlineReads()
        const r = await dir.openFile(ring, 'a', 'c', MAX, Date.now(), OPEN_AS_STRING)
        const after = native.inlineReads()
        return {
          plaintext: r && 'plaintext' in r ? r.plaintext : null,
          attempts: after.attempts - before.attempts,
          inline: after.inline - before.inline,
          pool: after.pool - before.pool,
        }
      }
      native.setInlineReadMode(4)
      expect(await read(d)).toEqual({ plaintext: '{"x":5}', attempts: 1, inline: 0, pool: 1 })
      native.setInlineReadMode(0)
      // Learnt: no second attempt on that directory, even with the switch off.
      expect(await read(d)).toEqual({ plaintext: '{"x":5}', attempts: 0, inline: 0, pool: 1 })
      // Another directory (another filesystem, in real life) still reads inline; the process keeps the fast path.
      expect(await read(other)).toEqual({ plaintext: '{"x":6}', attempts: 1, inline: 1, pool: 0 })
      expect(native.inlineReads().available).toBe(true)
    },
  )

  it('a kernel without openat2 (simulated ENOSYS) stops the attempts for the whole process', () => {
    // In a child process: the capability flag is process-wide by design.
    const script = `
const { native } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'core', 'native.js'))})
const fs = require('node:fs')
const ring = new native.KeyRing({ scope: 'store', name: 'fast', ikms: [Buffer.alloc(32, 5)] })
const d = new native.PrivateDir(${JSON.stringify(tmp)}, true)
d.sealToFileSync(ring, 'a', 'ok', 'c', 1, Date.now() + 3600000)
;(async () => {
  const out = { start: native.inlineReads() }
  native.setInlineReadMode(2)
  out.first = (await d.openFile(ring, 'a', 'c', ${MAX}, Date.now(), ${OPEN_AS_STRING})).plaintext
  out.afterSwitch = native.inlineReads()
  native.setInlineReadMode(0)
  out.second = (await d.openFile(ring, 'a', 'c', ${MAX}, Date.now(), ${OPEN_AS_STRING})).plaintext
  out.end = native.inlineReads()
  console.log(JSON.stringify(out))
})()`
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }))
    expect(out.first).toBe('ok')
    expect(out.second).toBe('ok')
    if (process.platform === 'linux') {
      expect(out.start).toEqual({ available: true, attempts: 0, inline: 0, pool: 0 })
      expect(out.afterSwitch).toEqual({ available: false, attempts: 1, inline: 0, pool: 1 })
    }
    // Never tried again, even with the switch off: straight to the pool.
    expect(out.end).toMatchObject({
      available: false,
      attempts: out.afterSwitch.attempts,
      inline: 0,
      pool: out.afterSwitch.pool + 1,
    })
  })
})

describe('every refusal stays, sync, inline and on the pool', () => {
  const paths = async (d: ReturnType<typeof open>, name: string) => [
    await codeOf(() => d.openFileSync(ring, name, 'c', 200, Date.now(), 0)),
    await codeOf(() => d.openFile(ring, name, 'c', 200, Date.now(), 0)),
    await (async () => {
      native.setInlineReadMode(1)
      try {
        return await codeOf(() => d.openFile(ring, name, 'c', 200, Date.now(), 0))
      } finally {
        native.setInlineReadMode(0)
      }
    })(),
  ]
  const open = () => openDir(tmp)

  it('a FIFO, a directory, a symlink and an oversized file in place of a session', async () => {
    const d = open()
    execFileSync('mkfifo', [path.join(tmp, 'fifo')])
    fs.mkdirSync(path.join(tmp, 'dir'))
    d.sealToFileSync(ring, 'target', 'x', 'c', 1, Date.now() + HOUR)
    fs.symlinkSync(path.join(tmp, 'target'), path.join(tmp, 'link'))
    fs.writeFileSync(path.join(tmp, 'big'), Buffer.alloc(201), { mode: 0o600 })
    fs.writeFileSync(path.join(tmp, 'shared'), Buffer.alloc(100), { mode: 0o600 })
    fs.chmodSync(path.join(tmp, 'shared'), 0o620)
    for (const name of ['fifo', 'dir', 'link', 'shared'])
      expect(await paths(d, name), name).toEqual(Array(3).fill('ERR_SESSION_UNSAFE_PATH'))
    expect(await paths(d, 'big')).toEqual(Array(3).fill('ERR_SESSION_TOO_LARGE'))
  })

  it.skipIf(!isRoot)('a file owned by another user', async () => {
    const d = open()
    d.sealToFileSync(ring, 'theirs', 'x', 'c', 1, Date.now() + HOUR)
    fs.chownSync(path.join(tmp, 'theirs'), NOBODY, NOBODY)
    expect(await paths(d, 'theirs')).toEqual(Array(3).fill('ERR_SESSION_UNSAFE_PATH'))
  })
})

describe('the expiry as mtime (sweep)', () => {
  it('sealToFile sets the mtime to the expiry; never-expiring files get a far-future one', () => {
    const d = openDir(tmp)
    const expires = Date.now() + HOUR + 123
    d.sealToFileSync(ring, 'a', 'x', 'c', 1, expires)
    d.sealToFileSync(ring, 'b', 'x', 'c', 1, 0)
    expect(fs.statSync(path.join(tmp, 'a')).mtimeMs).toBe(expires)
    expect(fs.statSync(path.join(tmp, 'b')).mtimeMs).toBeGreaterThan(Date.now() + 100 * 365 * 24 * HOUR)
  })

  it('a forged future mtime delays the sweep, but the expired session still reads as expired', async () => {
    const d = openDir(tmp)
    d.sealToFileSync(ring, 'a', 'x', 'c', 1, Date.now() - 1000)
    const file = path.join(tmp, 'a')
    const future = new Date(Date.now() + HOUR)
    fs.utimesSync(file, future, future)
    expect(d.sweepSync(Date.now())).toMatchObject({ scanned: 1, removed: 0 })
    expect(fs.existsSync(file)).toBe(true)
    // Opening it: the header decides.
    expect(await d.openFile(ring, 'a', 'c', MAX, Date.now(), 0)).toMatchObject({ expired: true })
    expect(d.openFileSync(ring, 'a', 'c', MAX, Date.now(), OPEN_REMOVE_EXPIRED)).toMatchObject({ expired: true })
    expect(fs.existsSync(file)).toBe(false)
  })

  it('a forged past mtime never removes a live session: the header is read and keeps it', async () => {
    const d = openDir(tmp)
    d.sealToFileSync(ring, 'a', 'live', 'c', 1, Date.now() + HOUR)
    const file = path.join(tmp, 'a')
    fs.utimesSync(file, 0, 0)
    // So is a file written without the mtime (0.1, or a copy).
    fs.writeFileSync(path.join(tmp, 'b'), fs.readFileSync(file), { mode: 0o600 })
    expect(d.sweepSync(Date.now())).toEqual({ scanned: 2, removed: 0, skipped: 0, collected: [] })
    const r = await d.openFile(ring, 'a', 'c', MAX, Date.now(), OPEN_AS_STRING)
    expect(r && 'plaintext' in r && r.plaintext).toBe('live')
  })

  it('expired files with their true mtime are removed by the sweep, live ones kept', async () => {
    const d = openDir(tmp)
    const now = Date.now()
    for (let i = 0; i < 10; i++) d.sealToFileSync(ring, `s${i}`, 'x', 'c', 1, i < 4 ? now - 1 : now + HOUR)
    expect(await d.sweep(now)).toEqual({ scanned: 10, removed: 4, skipped: 0, collected: [] })
    // (each removal holds the file's lock: the lock files stay, as every writer's do)
    expect(
      fs
        .readdirSync(tmp)
        .filter((n) => !n.endsWith('.lock'))
        .sort(),
    ).toEqual(['s4', 's5', 's6', 's7', 's8', 's9'])
  })

  it('a sweep hands back the names it kept that start with a prefix (the store finds its indexes in the same pass)', async () => {
    const d = openDir(tmp)
    const now = Date.now()
    d.sealToFileSync(ring, 'index-live', '{}', 'c', 1, 0)
    d.sealToFileSync(ring, 'index-gone', '{}', 'c', 1, now - 1)
    d.sealToFileSync(ring, 'session', '{}', 'c', 1, now + HOUR)
    const r = await d.sweep(now, 'index-')
    expect(r).toMatchObject({ scanned: 3, removed: 1 })
    expect(r.collected).toEqual(['index-live'])
    expect(d.sweepSync(now, 'sess').collected).toEqual(['session'])
    expect(() => d.sweepSync(now, 42 as never)).toThrow(TypeError)
  })
})

describe('openPrivateDir (on the pool)', () => {
  it('opens, creates and refuses like the constructor', async () => {
    const fresh = path.join(tmp, 'new', 'dir')
    const d = await native.openPrivateDir(fresh, true)
    expect(d.path).toBe(fresh)
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o700)
    d.sealToFileSync(ring, 'a', 'x', 'c', 1, 0)
    expect(d.openFileSync(ring, 'a', 'c', MAX, Date.now(), OPEN_AS_STRING)).toMatchObject({ plaintext: 'x' })
    fs.symlinkSync(fresh, path.join(tmp, 'link'))
    expect(await codeOf(() => native.openPrivateDir(path.join(tmp, 'link'), false))).toBe('ERR_SESSION_UNSAFE_PATH')
    fs.chmodSync(fresh, 0o777)
    expect(await codeOf(() => native.openPrivateDir(fresh, false))).toBe('ERR_SESSION_UNSAFE_PATH')
    expect(() => native.openPrivateDir(42 as never, true)).toThrow(TypeError)
  })
})
