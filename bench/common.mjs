// Shared by bench/run.mjs (fixtures, reporting) and bench/contender.mjs (the measured code):
// the one session record every contender reads, the secrets, and where each fixture lives.
import * as crypto from 'node:crypto'
import * as net from 'node:net'
import * as path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export const require = createRequire(import.meta.url)
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

// Secrets (fixed: the fixtures are throw-away). Each package gets its own, as a user would.
export const SECRET = 'bench-secret-0123456789abcdef-0123456789abcdef'
export const APP = 'bench-app'
export const NAMESPACE = 'bench'
export const MANAGER_CONTEXT = `manager:${APP}`
export const FILE_NAME = 'session.enc'
export const MAX_BYTES = 1 << 20
export const TTL_MS = 8 * 3_600_000

/** The ~300-byte record (SessionManager's SessionData shape) every contender reads. */
export function sessionRecordInput() {
  return {
    userId: 'user-4f1c2a9e',
    eid: 'eid-7d2b9c41-5e3f',
    options: {
      userName: 'Ada Lovelace',
      ttl: TTL_MS,
      data: {
        roles: ['admin', 'editor'],
        locale: 'en-GB',
        theme: 'dark',
        cart: [1042, 2088, 3071],
        flags: { beta: true, mfa: true },
        csrf: 'q2Xb7wVt0pL9sR4yN6mK8jH3',
      },
    },
  }
}

/** HKDF-SHA256 key of docs/security.md#keys for a secret (uid and boot id empty), as a user would derive it. */
export function deriveKey(secret, scope, name) {
  const info = Buffer.concat([Buffer.from(scope), Buffer.from([0]), Buffer.from(name), Buffer.from([0, 0])])
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(secret), 'sealed-session/v1', info, 32))
}

/** Where run.mjs puts each fixture inside the fixture directory. */
export function fixturePaths(fixtureDir) {
  return {
    managerDir: path.join(fixtureDir, 'manager'),
    managerFile: path.join(fixtureDir, 'manager', FILE_NAME),
    storeDir: path.join(fixtureDir, 'store'),
    sfsPlainDir: path.join(fixtureDir, 'sfs-plain'),
    sfsSecretDir: path.join(fixtureDir, 'sfs-secret'),
    confDir: path.join(fixtureDir, 'conf'),
    ironToken: path.join(fixtureDir, 'iron-token.txt'),
    meta: path.join(fixtureDir, 'meta.json'),
    writesDir: path.join(fixtureDir, 'writes'),
  }
}

export function scaleDir(scaleRoot, n) {
  return path.join(scaleRoot, `n${n}`)
}

export const median = (xs) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export const percentile = (sorted, p) => {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

/** A free loopback port (for a server the bench starts). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

const hrNow = () => process.hrtime.bigint()

// The network benches' rounds and slice windows, read when a run starts rather than at import:
// bench/run.mjs sets BENCH_QUICK/BENCH_ROUNDS (the smoke) after its imports are evaluated.
const quick = () => process.env.BENCH_QUICK === '1'
export const networkRounds = () => Number(process.env.BENCH_ROUNDS ?? (quick() ? 3 : 5))
export const sliceTiming = () => (quick() ? { warmupMs: 150, measureMs: 300 } : { warmupMs: 300, measureMs: 800 })

/**
 * One round over network contenders: `all[name] = { op, close }`, run in turns of sliceMs with
 * one operation in flight, each timed; after a warm-up, measureMs per contender. Closes them.
 * Returns { name: { name, n, opsPerSec, p50Ns, p99Ns } }.
 */
export async function timeInSlices(all, { warmupMs, measureMs }, sliceMs = 25) {
  const names = Object.keys(all)
  const lat = Object.fromEntries(names.map((n) => [n, []]))
  const busyNs = Object.fromEntries(names.map((n) => [n, 0]))
  const slice = async (name, record) => {
    const { op } = all[name]
    const until = hrNow() + BigInt(sliceMs) * 1_000_000n
    const start = hrNow()
    let end = start
    while (end < until) {
      const t0 = hrNow()
      await op()
      end = hrNow()
      if (record) lat[name].push(Number(end - t0))
    }
    if (record) busyNs[name] += Number(end - start)
  }
  for (let t0 = Date.now(); Date.now() - t0 < warmupMs; ) for (const n of names) await slice(n, false)
  for (let t0 = Date.now(); Date.now() - t0 < measureMs * names.length; ) for (const n of names) await slice(n, true)
  await Promise.all(names.map((n) => all[n].close()))
  return Object.fromEntries(
    names.map((n) => {
      const l = lat[n].sort((a, b) => a - b)
      const stats = { name: n, n: l.length, opsPerSec: (l.length * 1e9) / busyNs[n] }
      return [n, { ...stats, p50Ns: percentile(l, 50), p99Ns: percentile(l, 99) }]
    }),
  )
}
