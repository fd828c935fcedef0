// Hostile input: 10 000 generated session ids (traversal, absolute paths, NUL, huge,
// unicode, near-valid base64url, storage-name look-alikes) into FileSessionStore and
// MemorySessionStore, and seeded random wrong-typed calls into every public class. No crash, no
// file anywhere outside the sandbox, only TypeError / RangeError / SessionError out.
// The process works inside a sandbox: cwd and TMPDIR point into the test's temp root (so a
// relative path or a default directory lands where the before/after snapshot sees it).
// Replay a run with RELIABILITY_SEED=<seed>.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  Avatar,
  Bag,
  FileSessionStore,
  MemorySessionStore,
  Session,
  SessionData,
  SessionError,
  SessionManager,
  generateSessionId,
  isValidSessionId,
  storageName,
} from '../../lib/index'
import { SECRET, STORE_SECRET, prng, rmTree, snapshotTree, tmpRoot } from './helpers'

const SEED = Number(process.env.RELIABILITY_SEED ?? 20240808)
const ID_COUNT = 10_000
const CALLS = 6_000

let root: string
let cwd: string
let sandboxTmp: string
const savedCwd = process.cwd()
const savedTmp = process.env.TMPDIR
beforeAll(() => {
  root = tmpRoot('input')
  cwd = path.join(root, 'cwd', 'a', 'b')
  sandboxTmp = path.join(root, 'tmp')
  fs.mkdirSync(cwd, { recursive: true })
  fs.mkdirSync(sandboxTmp, { recursive: true })
  process.chdir(cwd)
  process.env.TMPDIR = sandboxTmp
})
afterAll(() => {
  process.chdir(savedCwd)
  if (savedTmp === undefined) delete process.env.TMPDIR
  else process.env.TMPDIR = savedTmp
  rmTree(root)
})

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function hostileIds(random: () => number, count: number, known: { id: string; name: string }): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
  const int = (n: number) => Math.floor(random() * n)
  const validish = () => Array.from({ length: 43 }, () => pick([...B64URL])).join('')
  const replaceAt = (s: string, i: number, c: string) => s.slice(0, i) + c + s.slice(i + 1)
  const unicode = () =>
    Array.from({ length: 1 + int(60) }, () => {
      const r = random()
      if (r < 0.2) return String.fromCharCode(0xd800 + int(0x800)) // lone surrogate
      if (r < 0.4) return String.fromCodePoint(0x1f300 + int(0x300)) // emoji
      if (r < 0.5) return pick(['\u202e', '\u200b', '\ufeff', '\u0301', '\uff0f', '\u2215', '\u2044', '\uff0e'])
      return String.fromCodePoint(0x80 + int(0x2ff80))
    }).join('')
  const gens: Array<() => string> = [
    // traversal
    () =>
      Array.from({ length: 1 + int(12) }, () => pick(['../', '..\\', '%2e%2e%2f', '..%2f', '....//', './', '..'])).join(
        '',
      ) + pick(['etc/passwd', 'x', 'escape', '', 'session.enc', known.name]),
    // absolute
    () =>
      pick([
        '/etc/passwd',
        '/tmp/escape',
        `${root}/escape-${int(1e6)}`,
        `${root}/cwd/x`,
        'C:\\Windows\\x',
        '\\\\srv\\share\\x',
        '/',
        '/dev/null',
        `/proc/self/fd/${int(10)}`,
        `${sandboxTmp}/x`,
      ]),
    // NUL
    () => replaceAt(validish(), int(43), '\0'),
    () => `${known.id}\0${pick(['', '../x', '.lock', '/etc/passwd'])}`,
    () => '\0'.repeat(1 + int(64)),
    // huge (a few are 1 MiB)
    () => (int(200) === 0 ? 'A'.repeat(1 << 20) : pick([...B64URL]).repeat(44 + int(100_000))),
    // unicode
    unicode,
    () => replaceAt(known.id, int(43), pick(['А', 'Ε', 'ο', 'і', 'ℓ', '＿', '－', 'ﬀ'])), // homoglyphs
    () => unicode().slice(0, 43).padEnd(43, 'A'),
    // near-valid base64url
    () => replaceAt(validish(), int(43), pick(['+', '/', '=', '.', ' ', '%', '\n', '\t', '~', '*'])),
    () => validish().slice(0, 42),
    () => validish() + pick([...B64URL, '=', '\n', ' ']),
    () => validish().slice(0, 42) + pick([...'BCDFGHJKLNOPRSTVWXZabdefhijlmnpqrtuvxyz12356789_-']), // non-canonical last char
    () => `${validish()}=`,
    () => ` ${known.id}`,
    () => `${known.id} `,
    () => known.id.toLowerCase(),
    () => known.id.slice(0, 42) + pick([...'BCDFGHJKLN']),
    // look-alikes of what is on disk
    () => known.name,
    () => known.name.slice(0, 43),
    () => pick(['session.enc', `.${known.name}.0011223344556677.tmp`, `${known.name}.lock`, '.', '..', '']),
    // valid but unknown
    () => generateSessionId(),
  ]
  return Array.from({ length: count }, (_, i) => gens[i % gens.length]())
}

describe('hostile session ids', () => {
  it(`${ID_COUNT} generated ids into FileSessionStore and MemorySessionStore: null/false, no file anywhere`, async () => {
    const random = prng(SEED)
    const fileStore = new FileSessionStore({
      dir: path.join(root, 'store'),
      secret: STORE_SECRET,
      sweepInterval: 0,
      touchAfter: 3_600_000,
    })
    const memStore = new MemorySessionStore()
    const good = await fileStore.create({ identity: 'alice' })
    await memStore.restore(await fileStore.dump())
    const ids = hostileIds(random, ID_COUNT, { id: good.id, name: storageName(good.id) })
    const before = snapshotTree(root)
    const goodFile = fs.readFileSync(path.join(fileStore.dir, storageName(good.id)))

    const bad: string[] = []
    const started = Date.now()
    let validFormat = 0
    for (const id of ids) {
      if (isValidSessionId(id)) validFormat++
      const show = JSON.stringify(id.slice(0, 60))
      try {
        const results = [
          await fileStore.get(id),
          await fileStore.delete(id),
          await memStore.get(id),
          await memStore.delete(id),
        ]
        if (id === good.id) continue // the generator can in principle produce it: not hostile
        if (results.join() !== ',false,,false')
          bad.push(`${show} → ${results.map((r) => (r === null ? 'null' : String(r))).join(', ')}`)
      } catch (err) {
        bad.push(`${show} threw ${String(err)}`)
      }
    }
    const after = snapshotTree(root)
    const stillThere = (await fileStore.get(good.id))?.id === good.id && (await memStore.get(good.id))?.id === good.id
    console.log(
      `hostile-input: ${ids.length} hostile ids (${validFormat} of valid form but unknown) x FileSessionStore.get/delete + MemorySessionStore.get/delete: ` +
        `${bad.length} not null/false or thrown, ${after.length - before.length} new paths in the sandbox, good session ${stillThere ? 'intact' : 'LOST'} (${Date.now() - started} ms, seed ${SEED})`,
    )
    expect(bad).toEqual([])
    expect(after).toEqual(before)
    expect(fs.readFileSync(path.join(fileStore.dir, storageName(good.id)))).toEqual(goodFile)
    expect(stillThere).toBe(true)
    await fileStore.close()
    await memStore.close()
  }, 30_000)
})

// ---- random wrong-typed calls -----------------------------------------------------------

type Outcome = 'ok' | 'TypeError' | 'RangeError' | 'SessionError' | 'other'

function classify(err: unknown): Outcome {
  if (err instanceof SessionError) return 'SessionError'
  if (err instanceof TypeError) return 'TypeError'
  if (err instanceof RangeError) return 'RangeError'
  return 'other'
}

function hostileValues(random: () => number, sandbox: string): () => unknown {
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  let deep: unknown = 1
  for (let i = 0; i < 300; i++) deep = { d: deep }
  // biome-ignore lint/suspicious/noSparseArray: the hole is the input under test
  const holes = [1, , 3]
  const values: Array<() => unknown> = [
    () => undefined,
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -0,
    () => -1,
    () => 1,
    () => 1.5,
    () => NaN,
    () => Infinity,
    () => -Infinity,
    () => 2 ** 53,
    () => 2 ** 64,
    () => -(2 ** 31),
    () => Number.MAX_VALUE,
    () => 8.64e15 + 1,
    () => 1000,
    () => 3_600_000,
    () => 10n,
    () => '',
    () => 'x',
    () => 'a'.repeat(100_000),
    () => '\0',
    () => '../x',
    () => '.',
    () => 'a.b..c',
    () => '__proto__',
    () => 'constructor',
    () => '\ud800',
    () => 'x'.repeat(43),
    () => Symbol('s'),
    () => ({}),
    () => [],
    () => [1, 'a'],
    () => [undefined],
    () => holes,
    () => ({ a: undefined }),
    () => ({ a: () => 1 }),
    () => ({ d: new Date(0) }),
    () => cyclic,
    () => deep,
    () => JSON.parse('{"__proto__":{"polluted":1}}'),
    () => Object.create(null),
    () => Object.create({ inherited: 1 }),
    () => () => 1,
    () => class {},
    () => new Date(0),
    () => new Date(NaN),
    () => /re/,
    () => new Map([[1, 2]]),
    () => new Set([1]),
    () => Buffer.alloc(0),
    () => Buffer.alloc(64, 1),
    () => new Uint8Array(40),
    () => new ArrayBuffer(8),
    () => new Proxy({}, {}),
    () => new Proxy([], {}),
    () => Promise.resolve(1),
    () => new Error('e'),
    () => ({ identity: 'eve', tags: 'a,b', roles: ['x', 1, null] }),
    () => ({ sub: 5, user: '', tags: [[]] }),
    () => ({ ttl: -5 }),
    () => ({ ttl: 1.5 }),
    () => ({ ttl: '60000' }),
    () => ({ maxAge: 0 }),
    () => ({ defaultTtl: NaN }),
    () => ({ dir: sandbox, secret: 'short' }),
    () => ({ dir: sandbox, secret: SECRET, secrets: [SECRET] }),
    () => ({ dir: sandbox, secrets: [] }),
    () => ({ dir: sandbox, secrets: 'x'.repeat(40) }),
    () => ({ dir: sandbox, secret: new Uint8Array(31) }),
    () => ({ dir: sandbox, secret: Buffer.alloc(5000) }),
    () => ({ dir: sandbox, namespace: 'a:b' }),
    () => ({ dir: sandbox, namespace: '' }),
    () => ({ dir: sandbox, maxBytes: 10 }),
    () => ({ dir: sandbox, maxBytes: 2 ** 40 }),
    () => ({ dir: sandbox, bindToBoot: 'yes' }),
    () => ({ dir: sandbox, logger: {} }),
    () => ({ dir: sandbox, logger: { debug: 1 } }),
    () => ({ dir: '', secret: SECRET }),
    () => ({ dir: 'rel\0ative', secret: SECRET }),
    () => ({ dir: 42 }),
    () => ({ dir: sandbox, cleanupInterval: -1, secret: SECRET }),
    () => ({ dir: sandbox, sweepInterval: 'often', secret: STORE_SECRET }),
    () => ({ dir: sandbox, touchAfter: -1, secret: STORE_SECRET }),
    () => ({ version: 1, sessions: [{ id: 'x' }] }),
    () => ({ version: 1, sessions: 'x' }),
    () => ({ version: 2, sessions: [] }),
    () => ({
      version: 1,
      sessions: [{ id: generateSessionId(), meta: { createdAt: 1, lastAccess: 1, ttl: 'x' }, auth: null, data: {} }],
    }),
    () => ({ id: generateSessionId(), meta: { createdAt: -1, lastAccess: 0, ttl: 5 }, auth: null, data: {} }),
    () => ({ id: generateSessionId(), meta: { createdAt: 0, lastAccess: 0, ttl: 5 }, auth: [], data: {} }),
    () => ({ identity: 1, tags: [], data: {} }),
    () => ({ identity: 'x', tags: [1] }),
    () => ({ identity: ' ', tags: [] }),
    () => ({ userId: 'u', eid: 'e', createdAt: 'yesterday', expiresAt: new Date().toISOString(), userName: null }),
    () => ({ userId: 1, eid: 'e' }),
    () => ({ userName: 5 }),
    () => ({ data: [] }),
    () => ({ data: { f: () => 1 } }),
    () => ({ data: cyclic }),
    () => generateSessionId(),
    () => new Session(generateSessionId(), null, 1000),
    () => new Avatar('x', ['t']),
    () => new Bag(),
    () => new MemorySessionStore(),
    () => sandbox,
    () => path.join(sandbox, 'sub'),
  ]
  return () => values[Math.floor(random() * values.length)]()
}

describe('random wrong-typed calls into every public API', () => {
  it(`${CALLS} seeded random calls: only TypeError, RangeError or SessionError come out`, async () => {
    const random = prng(SEED ^ 0x9e3779b9)
    const sandbox = path.join(sandboxTmp, 'fuzz')
    const value = hostileValues(random, sandbox)
    const int = (n: number) => Math.floor(random() * n)
    // Mostly hostile values, sometimes a good one, so calls get past their first check.
    const arg = (good: () => unknown) => (random() < 0.3 ? good() : value())
    const args = (...goods: Array<() => unknown>) => {
      const n = int(goods.length + 2)
      return Array.from({ length: n }, (_, i) => arg(goods[i] ?? (() => undefined)))
    }

    let manager = new SessionManager('fuzz-app', { dir: path.join(sandbox, 'mgr'), secret: SECRET, cleanupInterval: 0 })
    let fileStore = new FileSessionStore({ dir: path.join(sandbox, 'files'), secret: STORE_SECRET, sweepInterval: 0 })
    let memStore = new MemorySessionStore()
    const session = () => new Session(generateSessionId(), { identity: 'fuzz' }, 60_000)
    const target = {
      session: session(),
      avatar: new Avatar('fuzzer', ['a']),
      bag: new Bag(),
      data: null as SessionData | null,
    }
    const id = () => generateSessionId()
    const ms = () => 1000 + int(100_000)
    const str = () => `s${int(100)}`
    const any = (o: object, method: string, a: unknown[]) =>
      (o as Record<string, (...x: unknown[]) => unknown>)[method](...a)
    const build = (Cls: unknown, a: unknown[]) => new (Cls as new (...x: unknown[]) => unknown)(...a)

    const calls: Array<[string, () => unknown]> = [
      [
        'new SessionManager',
        () =>
          build(
            SessionManager,
            args(
              () => 'fuzz-app',
              () => ({ dir: path.join(sandbox, 'm2'), secret: SECRET, cleanupInterval: 0 }),
            ),
          ),
      ],
      [
        'manager.login',
        () =>
          any(
            manager,
            'login',
            args(str, str, () => ({ userName: 'n', ttl: ms(), data: { a: 1 } })),
          ),
      ],
      ['manager.extendSession', () => any(manager, 'extendSession', args(ms))],
      ['manager.logout', () => any(manager, 'logout', args())],
      ['manager.getSession', () => any(manager, 'getSession', args())],
      ['manager.getSessionSync', () => any(manager, 'getSessionSync', args())],
      ['manager.isLoggedIn', () => any(manager, 'isLoggedIn', args())],
      ['manager.isLoggedInSync', () => any(manager, 'isLoggedInSync', args())],
      ['manager.getUserId', () => any(manager, 'getUserId', args())],
      ['manager.init', () => any(manager, 'init', args())],
      [
        'manager.close',
        async () => {
          await manager.close()
          manager = new SessionManager('fuzz-app', {
            dir: path.join(sandbox, 'mgr'),
            secret: SECRET,
            cleanupInterval: 0,
          })
        },
      ],
      [
        'new FileSessionStore',
        async () => {
          const s = build(
            FileSessionStore,
            args(() => ({ dir: path.join(sandbox, 'f2'), secret: STORE_SECRET, sweepInterval: 0 })),
          ) as FileSessionStore
          await s.close()
        },
      ],
      [
        'new MemorySessionStore',
        () =>
          build(
            MemorySessionStore,
            args(() => ({ defaultTtl: ms() })),
          ),
      ],
      ...(['file', 'memory'] as const).flatMap((kind): Array<[string, () => unknown]> => {
        const st = () => (kind === 'file' ? fileStore : memStore)
        return [
          [
            `${kind}.create`,
            () =>
              any(
                st(),
                'create',
                args(
                  () => ({ identity: 'x' }),
                  () => ({ ttl: ms() }),
                ),
              ),
          ],
          [`${kind}.get`, () => any(st(), 'get', args(id))],
          [`${kind}.save`, () => any(st(), 'save', args(session))],
          [`${kind}.delete`, () => any(st(), 'delete', args(id))],
          [`${kind}.dump`, () => any(st(), 'dump', args())],
          [
            `${kind}.restore`,
            () =>
              any(
                st(),
                'restore',
                args(() => ({ version: 1, sessions: [session().toRecord()] })),
              ),
          ],
          [`${kind}.purgeExpired`, () => any(st(), 'purgeExpired', args())],
          [
            `${kind}.close`,
            async () => {
              await st().close()
              if (kind === 'file')
                fileStore = new FileSessionStore({
                  dir: path.join(sandbox, 'files'),
                  secret: STORE_SECRET,
                  sweepInterval: 0,
                })
              else memStore = new MemorySessionStore()
            },
          ],
        ]
      }),
      [
        'new Session',
        () =>
          build(
            Session,
            args(
              id,
              () => ({ identity: 'x' }),
              ms,
              () => ({ maxAge: ms() }),
            ),
          ),
      ],
      ['Session.fromRecord', () => Session.fromRecord(arg(() => session().toRecord()))],
      [
        'session.isExpired',
        () =>
          any(
            target.session,
            'isExpired',
            args(() => Date.now()),
          ),
      ],
      [
        'session.touch',
        () =>
          any(
            target.session,
            'touch',
            args(() => Date.now()),
          ),
      ],
      [
        'session.attachAvatar',
        () =>
          any(
            target.session,
            'attachAvatar',
            args(() => new Avatar('x')),
          ),
      ],
      ['session.withId', () => any(target.session, 'withId', args(id))],
      ['session.toJSON', () => any(target.session, 'toJSON', args())],
      ['session.toRecord', () => any(target.session, 'toRecord', args())],
      [
        'session.data.set',
        () =>
          any(
            target.session.data,
            'set',
            args(str, () => ({ n: 1 })),
          ),
      ],
      [
        'new Avatar',
        () =>
          build(
            Avatar,
            args(
              str,
              () => ['t'],
              () => ({ sub: 'x' }),
            ),
          ),
      ],
      ['Avatar.fromJSON', () => Avatar.fromJSON(arg(() => target.avatar.toJSON()))],
      [
        'avatar.hasTag',
        () =>
          any(
            target.avatar,
            'hasTag',
            args(() => 'a'),
          ),
      ],
      [
        'avatar.data.set',
        () =>
          any(
            target.avatar.data,
            'set',
            args(str, () => 1),
          ),
      ],
      ['new Bag', () => build(Bag, args())],
      ['Bag.fromJSON', () => Bag.fromJSON(arg(() => ({ a: { b: 1 } })))],
      ...(['get', 'has', 'set', 'delete'] as const).map((m): [string, () => unknown] => [
        `bag.${m}`,
        () =>
          any(
            target.bag,
            m,
            args(
              () => ['a', 'a.b', 'x.y.z'][int(3)],
              () => ({ q: [1] }),
            ),
          ),
      ]),
      ['bag.toJSON', () => target.bag.toJSON()],
      [
        'new SessionData',
        () => {
          target.data = build(
            SessionData,
            args(() => ({
              userId: 'u',
              eid: 'e',
              createdAt: new Date().toISOString(),
              expiresAt: new Date().toISOString(),
              userName: null,
              data: {},
            })),
          ) as SessionData
        },
      ],
      ['SessionData.fromJSON', () => SessionData.fromJSON(value())],
      ['isValidSessionId', () => isValidSessionId(value())],
      ['storageName', () => storageName(value() as string)],
      ['generateSessionId', () => (generateSessionId as (...a: unknown[]) => string)(...args())],
    ]

    const tally: Record<Outcome, number> = { ok: 0, TypeError: 0, RangeError: 0, SessionError: 0, other: 0 }
    const others: string[] = []
    const hangs: string[] = []
    const started = Date.now()
    for (let i = 0; i < CALLS; i++) {
      const [name, call] = calls[int(calls.length)]
      let outcome: Outcome = 'ok'
      try {
        const r = call()
        if (r instanceof Promise) {
          let timer: NodeJS.Timeout | undefined
          const timeout = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), 5_000)))
          const settled = await Promise.race([r, timeout])
          clearTimeout(timer)
          if (settled === 'hang') hangs.push(`#${i} ${name}`)
        }
      } catch (err) {
        outcome = classify(err)
        if (outcome === 'other')
          others.push(
            `#${i} ${name}: ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : `threw a non-Error ${String(err)}`}`,
          )
      }
      tally[outcome]++
    }
    const ms_ = Date.now() - started

    // Still running and still working: a full round trip through each store and the manager.
    const s = await fileStore.create({ identity: 'after' })
    expect((await fileStore.get(s.id))?.avatar.identity).toBe('after')
    const m = await manager.login('after', 'e')
    expect((await manager.getSession())?.userId).toBe(m.userId)
    await manager.close()
    await fileStore.close()
    await memStore.close()

    console.log(
      `hostile-input: ${CALLS} random wrong-typed calls into ${calls.length} entry points: ${tally.ok} ok, ${tally.TypeError} TypeError, ` +
        `${tally.RangeError} RangeError, ${tally.SessionError} SessionError, ${tally.other} other, ${hangs.length} hangs (seed ${SEED}, ${ms_} ms)`,
    )
    expect(others).toEqual([])
    expect(hangs).toEqual([])
    expect(tally.TypeError + tally.RangeError).toBeGreaterThan(CALLS / 4)
    // Nothing left the sandbox: whatever was written is under TMPDIR (default directories) or
    // the explicit dirs; nothing relative to the cwd, nothing beside them in the temp root.
    expect(snapshotTree(path.join(root, 'cwd'))).toEqual(['d a', 'd a/b'])
    expect(fs.readdirSync(root).filter((e) => !['cwd', 'store', 'tmp'].includes(e))).toEqual([])
  }, 40_000)
})
