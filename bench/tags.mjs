// Bench row: reading back a session whose auth and avatar carry many tags.
// Tags are de-duplicated with a Set, so this stays linear in their number. Runs in
// its own process (node bench/tags.mjs, or from run.mjs) and prints one JSON line: ms per read
// for 1000 tags (the cap), and for 60 000 (a record stored before the cap: it must still read).
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { ROOT, median, require } from './common.mjs'

const { Session, MemorySessionStore, generateSessionId } = require(
  path.join(process.env.BENCH_PKG ?? ROOT, 'dist', 'index.js'),
)
const QUICK = process.env.BENCH_QUICK === '1'

function record(n) {
  const roles = Array.from({ length: n }, (_, i) => `role-${i}`)
  const now = Date.now()
  return {
    id: generateSessionId(),
    meta: { createdAt: now, lastAccess: now, ttl: 3_600_000 },
    auth: { sub: 'bench-user', roles },
    data: {},
    avatar: { identity: 'bench-user', tags: roles, data: {} },
  }
}

/** Median ms per call of fn over `rounds` rounds of `reps` calls, after a warm-up. */
function measure(fn, reps, rounds) {
  for (let i = 0; i < Math.max(3, reps >> 2); i++) fn()
  const per = []
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    for (let i = 0; i < reps; i++) fn()
    per.push((performance.now() - t0) / reps)
  }
  return median(per)
}

const rounds = QUICK ? 3 : 7
const small = record(1000)
const json1000 = JSON.stringify(small)
const fromJson1000 = measure(() => Session.fromJSON(JSON.parse(json1000)), QUICK ? 200 : 1000, rounds)
const big = JSON.stringify(record(60_000))
const fromJson60k = measure(() => Session.fromJSON(JSON.parse(big)), QUICK ? 3 : 10, rounds)

// Through a store: MemorySessionStore.get (fromJSON plus the store's work).
const store = new MemorySessionStore({ sweepInterval: 0 })
await store.restore({ version: 1, sessions: [small] })
const t = []
for (let r = 0; r < rounds; r++) {
  const reps = QUICK ? 200 : 1000
  const t0 = performance.now()
  for (let i = 0; i < reps; i++) await store.get(small.id)
  t.push((performance.now() - t0) / reps)
}
await store.close()

console.log(
  JSON.stringify({
    tags1000FromJsonMs: fromJson1000,
    tags60000FromJsonMs: fromJson60k,
    tags1000MemoryGetMs: median(t),
  }),
)
