// Nothing JavaScript passes into the addon may crash the process: wrong types and values give
// TypeError/RangeError (or a typed SessionError code), never an abort.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawnSync } from 'node:child_process'
import { afterAll, describe, expect, it } from 'vitest'

import { native } from '../../lib/core/native'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-args-'))
// The addon file the package loads (a prebuild or build/Release), for the fresh processes below.
const ADDON: string = require('node-gyp-build').path(path.join(__dirname, '..', '..'))
// Closed first: Windows refuses to remove a directory we hold open.
afterAll(() => {
  dir.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

const ring = new native.KeyRing({ scope: 'store', name: 'args', ikms: [Buffer.alloc(32, 9)] })
const dir = new native.PrivateDir(path.join(tmp, 'd'), true)
const fake = Object.create(native.KeyRing.prototype) as object

// Values of every kind, including look-alikes of our own objects.
const hostile: unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  NaN,
  Infinity,
  -Infinity,
  2 ** 60,
  10n,
  '',
  'x',
  '\0',
  'a/b',
  '../x',
  Symbol('s'),
  {},
  [],
  [1, 2],
  () => 1,
  new Date(0),
  Buffer.alloc(0),
  new Uint8Array(3),
  new ArrayBuffer(8),
  new Float64Array(2),
  new DataView(new ArrayBuffer(4)),
  fake,
  dir,
  ring,
  new Proxy({}, {}),
]

// Each native entry point and a valid argument list; one argument at a time is replaced.
const entries: Array<[string, (...a: unknown[]) => unknown, unknown[]]> = [
  [
    'KeyRing',
    (...a) => new (native.KeyRing as unknown as new (...x: unknown[]) => unknown)(...a),
    [{ scope: 'store', name: 'n', ikms: [Buffer.alloc(32)] }],
  ],
  // Closed at once: an open directory cannot be removed afterwards on Windows.
  [
    'PrivateDir',
    (...a) => {
      const d = new (native.PrivateDir as unknown as new (...x: unknown[]) => { close(): void })(...a)
      d.close()
      return d
    },
    [path.join(tmp, 'p'), true],
  ],
  [
    'PrivateDir without the temp sweep',
    (...a) => {
      const d = new (native.PrivateDir as unknown as new (...x: unknown[]) => { close(): void })(...a)
      d.close()
      return d
    },
    [path.join(tmp, 'p'), true, false],
  ],
  ['peekHeader', (...a) => (native.peekHeader as (...x: unknown[]) => unknown)(...a), [Buffer.alloc(40)]],
  ['ring.seal', (...a) => (ring.seal as (...x: unknown[]) => unknown).apply(ring, a), ['pt', 'ctx', 1, 2]],
  ['ring.mac', (...a) => (ring.mac as (...x: unknown[]) => unknown).apply(ring, a), ['alice', 0]],
  [
    'ring.open',
    (...a) => (ring.open as (...x: unknown[]) => unknown).apply(ring, a),
    [ring.seal('x', 'c', 1, 2), 'c', 1000],
  ],
  [
    'dir.sealToFileSync',
    (...a) => (dir.sealToFileSync as (...x: unknown[]) => unknown).apply(dir, a),
    [ring, 'f', 'pt', 'c', 1, 0],
  ],
  [
    'dir.openFileSync',
    (...a) => (dir.openFileSync as (...x: unknown[]) => unknown).apply(dir, a),
    [ring, 'f', 'c', 1000, 0, 0],
  ],
  ['dir.removeSync', (...a) => (dir.removeSync as (...x: unknown[]) => unknown).apply(dir, a), ['f']],
  ['dir.sweepSync', (...a) => (dir.sweepSync as (...x: unknown[]) => unknown).apply(dir, a), [0]],
  ['dir.lockSync', (...a) => (dir.lockSync as (...x: unknown[]) => { release(): void }).apply(dir, a), ['f']],
]
const asyncEntries: Array<[string, (...a: unknown[]) => Promise<unknown>, unknown[]]> = [
  [
    'dir.sealToFile',
    (...a) => (dir.sealToFile as (...x: unknown[]) => Promise<unknown>).apply(dir, a),
    [ring, 'f', 'pt', 'c', 1, 0],
  ],
  [
    'dir.openFile',
    (...a) => (dir.openFile as (...x: unknown[]) => Promise<unknown>).apply(dir, a),
    [ring, 'f', 'c', 1000, 0, 0],
  ],
  ['dir.remove', (...a) => (dir.remove as (...x: unknown[]) => Promise<unknown>).apply(dir, a), ['f']],
  ['dir.peek', (...a) => (dir.peek as (...x: unknown[]) => Promise<unknown>).apply(dir, a), ['f']],
  ['dir.sweep', (...a) => (dir.sweep as (...x: unknown[]) => Promise<unknown>).apply(dir, a), [0]],
  ['dir.lock', (...a) => (dir.lock as (...x: unknown[]) => Promise<unknown>).apply(dir, a), ['f']],
  [
    'dir.casSeal',
    (...a) => (dir.casSeal as (...x: unknown[]) => Promise<unknown>).apply(dir, a),
    [ring, 'f', casOptions()],
  ],
]

function casOptions(): Record<string, unknown> {
  return {
    stripe: 'stripe-00',
    plaintext: '{"version":1}',
    context: 'c',
    createdAt: 1,
    expiresAt: 0,
    maxBytes: 1000,
    now: 0,
    mode: 'version',
    expected: 1,
  }
}

// What a well-behaved failure looks like: an argument error, or a SessionError code.
function expectTypedFailure(err: unknown, label: string): void {
  expect(err, label).toBeInstanceOf(Error)
  const e = err as Error & { code?: string }
  const ok =
    e instanceof TypeError || e instanceof RangeError || (typeof e.code === 'string' && e.code.startsWith('ERR_'))
  expect(ok, `${label}: ${e.name} ${e.code} ${e.message}`).toBe(true)
}

describe('hostile arguments into every native function', () => {
  it('sync entry points throw typed errors or succeed, never crash', () => {
    let calls = 0
    for (const [name, fn, good] of entries) {
      for (let i = 0; i <= good.length; i++) {
        for (const bad of hostile) {
          const args = [...good]
          args[i] = bad
          calls++
          try {
            const r = fn(...args)
            if (r && typeof (r as { release?: unknown }).release === 'function') (r as { release(): void }).release()
          } catch (err) {
            expectTypedFailure(err, `${name} arg ${i} = ${String(typeof bad === 'symbol' ? 'symbol' : bad)}`)
          }
        }
      }
      // and with no arguments at all
      expect(() => fn()).toThrow()
    }
    expect(calls).toBeGreaterThan(300)
  })

  it('async entry points throw synchronously on bad types and reject typed on bad state', async () => {
    for (const [name, fn, good] of asyncEntries) {
      for (let i = 0; i <= good.length; i++) {
        for (const bad of hostile) {
          const args = [...good]
          args[i] = bad
          try {
            const r = await fn(...args)
            if (r && typeof (r as { release?: unknown }).release === 'function')
              (r as { release(): void }).release()
              // casSeal's conflict hands back the stripe lock still held
            ;(r as { lock?: { release(): void } } | null)?.lock?.release()
          } catch (err) {
            expectTypedFailure(err, `${name} arg ${i}`)
          }
        }
      }
    }
  })

  it("casSeal's options: each field hostile in turn, or a getter that throws, is a typed failure", async () => {
    const cas = dir.casSeal as (...x: unknown[]) => Promise<{ lock?: { release(): void } }>
    for (const key of Object.keys(casOptions())) {
      for (const bad of [...hostile, 'neither']) {
        const options = { ...casOptions(), [key]: bad }
        try {
          ;(await cas.call(dir, ring, 'f', options)).lock?.release()
        } catch (err) {
          expectTypedFailure(err, `casSeal options.${key}`)
        }
      }
      const throwing = Object.defineProperty(casOptions(), key, {
        get() {
          throw new Error('getter')
        },
      })
      await expect(async () => cas.call(dir, ring, 'f', throwing)).rejects.toThrow('getter')
    }
    await expect(async () => cas.call(dir, ring, 'f', { ...casOptions(), mode: 2 })).rejects.toThrow(TypeError)
    await expect(async () => cas.call(dir, ring, 'f', { ...casOptions(), mode: 'version!' })).rejects.toThrow(
      /options\.mode must be 'any', 'absent' or 'version'/,
    )
  })

  it('a KeyRing look-alike is refused, not unwrapped', () => {
    expect(() => dir.openFileSync(fake as never, 'f', 'c', 1000, 0, 0)).toThrow(TypeError)
    expect(() => (ring.seal as (...x: unknown[]) => unknown).call({}, 'x', 'c', 1, 2)).toThrow()
  })

  it('times outside 0..2^53-1 and non-integers are RangeErrors', () => {
    for (const t of [-1, 1.5, 2 ** 53, NaN, Infinity]) {
      expect(() => ring.seal('x', 'c', t, 0)).toThrow(RangeError)
      expect(() => ring.seal('x', 'c', 0, t)).toThrow(RangeError)
    }
  })
})

describe('lifetime', () => {
  it('rings, dirs and locks dropped without close are collected without harm, in a fresh process', () => {
    const script = `
      const native = require(${JSON.stringify(ADDON)});
      const dir = ${JSON.stringify(path.join(tmp, 'gc'))};
      for (let i = 0; i < 2000; i++) {
        const r = new native.KeyRing({ scope: 'store', name: 'n' + i, ikms: [Buffer.alloc(32, i & 255)] });
        const d = new native.PrivateDir(dir, true);
        d.sealToFileSync(r, 'f', 'x', 'c', 1, 0);
        if (i < 200) d.lockSync('l' + i); // never released: the finalizer must let go
        if (i % 500 === 0) global.gc();
      }
      global.gc();
      // an async call still in flight when its objects lose their last JS reference
      (async () => {
        const r = new native.KeyRing({ scope: 'store', name: 'late', ikms: [Buffer.alloc(32, 1)] });
        const d = new native.PrivateDir(dir, true);
        const p = d.sealToFile(r, 'g', 'x', 'c', 1, 0);
        r.close(); d.close(); global.gc();
        await p;
        console.log('ok');
      })();
    `
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 })
    expect(run.stderr).toBe('')
    expect(run.stdout.trim()).toBe('ok')
    expect(run.status).toBe(0)
  })

  it('loads in worker threads and unloads with them', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const addon = ${JSON.stringify(ADDON)};
      let done = 0;
      for (let i = 0; i < 4; i++) {
        const w = new Worker(\`
          const native = require(\${JSON.stringify(addon)});
          const r = new native.KeyRing({ scope: 'store', name: 'w', ikms: [Buffer.alloc(32, 2)] });
          const e = r.seal('from a worker', 'c', 1, 0);
          require('node:worker_threads').parentPort.postMessage(r.open(e, 'c', 1e6).plaintext.toString());
        \`, { eval: true });
        w.on('message', (m) => { if (m === 'from a worker') done++; });
        w.on('exit', () => { if (done === 4) console.log('ok'); });
      }
    `
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 })
    expect(run.stderr).toBe('')
    expect(run.stdout.trim().split('\n')).toContain('ok')
  })
})
