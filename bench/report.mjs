// What each contender is, which ratios are computed (round by round), and the outputs:
// a table for stdout, bench/results.md and bench/results.svg.
import * as fs from 'node:fs'
import * as path from 'node:path'

import { median } from './common.mjs'

// Display order is key order. family: ours | js | peer | floor (chart colour).
export const CONTENDERS = {
  // file reads, sync
  'ss-native-sync': {
    group: 'File read, sync',
    family: 'ours',
    label: 'sealed-session openFileSync (native) + JSON.parse',
  },
  'ss-manager-sync': {
    group: 'File read, sync',
    family: 'ours',
    label: 'sealed-session SessionManager.getSessionSync()',
  },
  'ss-manager-sync-cached': {
    group: 'File read, sync',
    family: 'ours',
    label: 'sealed-session getSessionSync() with readCache (hit)',
  },
  // The same read through each crypto backend (SEALED_SESSION_CRYPTO set for the contender).
  'ss-native-sync-node-openssl': {
    group: 'File read, sync',
    family: 'ours',
    label: 'openFileSync, crypto backend node-openssl (Node)',
    crypto: 'node-openssl',
  },
  'ss-native-sync-system-openssl': {
    group: 'File read, sync',
    family: 'ours',
    label: 'openFileSync, crypto backend system-openssl (Bun, Deno)',
    crypto: 'system-openssl',
  },
  'js-sync': { group: 'File read, sync', family: 'js', label: 'pure JS: readFileSync + node:crypto + JSON.parse' },
  floor: { group: 'File read, sync', family: 'floor', label: 'C floor: open/read/close + AES-256-GCM' },
  'conf-encrypted': { group: 'File read, sync', family: 'peer', label: 'conf get() with encryptionKey', slow: true },
  // file reads, async
  'ss-native-async': {
    group: 'File read, async, sequential',
    family: 'ours',
    label: 'sealed-session openFile (native) + JSON.parse',
  },
  'ss-manager-async': {
    group: 'File read, async, sequential',
    family: 'ours',
    label: 'sealed-session SessionManager.getSession()',
  },
  'js-async': {
    group: 'File read, async, sequential',
    family: 'js',
    label: 'pure JS: fs.promises.readFile + node:crypto',
  },
  'ss-store-get': {
    group: 'File read, async, sequential',
    family: 'ours',
    label: 'sealed-session FileSessionStore.get()',
  },
  'sfs-plain': {
    group: 'File read, async, sequential',
    family: 'peer',
    label: 'session-file-store get (no encryption)',
  },
  'sfs-secret': {
    group: 'File read, async, sequential',
    family: 'peer',
    label: 'session-file-store get with secret',
    slow: true,
  },
  'iron-unseal': {
    group: 'File read, async, sequential',
    family: 'peer',
    label: 'iron-session unsealData (token in memory)',
  },
  'ss-native-async-64': {
    group: 'File read, async, 64 in flight',
    family: 'ours',
    label: 'sealed-session openFile (native), 64 in flight',
  },
  'ss-native-async-64-pool': {
    group: 'File read, async, 64 in flight',
    family: 'ours',
    label: 'openFile on the thread pool only (as 0.1), 64 in flight',
  },
  'ss-manager-async-64': {
    group: 'File read, async, 64 in flight',
    family: 'ours',
    label: 'sealed-session getSession(), 64 in flight',
  },
  'js-async-64': {
    group: 'File read, async, 64 in flight',
    family: 'js',
    label: 'pure JS: fs.promises.readFile, 64 in flight',
  },
  // in memory
  'ss-ring-open': {
    group: 'In-memory open (Redis path)',
    family: 'ours',
    label: 'sealed-session KeyRing.open (native)',
  },
  'js-memory-open': {
    group: 'In-memory open (Redis path)',
    family: 'js',
    label: 'pure JS: node:crypto createDecipheriv',
  },
  'ss-ring-open-string': {
    group: 'In-memory open (Redis path)',
    family: 'ours',
    label: 'sealed-session KeyRing.open to a string (RedisSessionStore)',
  },
  'js-memory-open-string': {
    group: 'In-memory open (Redis path)',
    family: 'js',
    label: 'pure JS: node:crypto open + toString()',
  },
  // writes
  'ss-manager-login': { group: 'Durable write', family: 'ours', label: 'sealed-session SessionManager.login()' },
  'ss-store-save': { group: 'Durable write', family: 'ours', label: 'sealed-session FileSessionStore.save()' },
  'ss-store-save-v01': {
    group: 'Durable write',
    family: 'ours',
    label: 'sealed-session 0.1 FileSessionStore.save() (no versions, same run)',
    baseline: true,
  },
  'ss-store-save-8w': {
    group: 'Durable write',
    family: 'ours',
    label: 'FileSessionStore get+save, 8 processes on one session (total)',
  },
  'sfs-set-plain': { group: 'Durable write', family: 'peer', label: 'session-file-store set (no encryption)' },
  'sfs-set-secret': { group: 'Durable write', family: 'peer', label: 'session-file-store set with secret', slow: true },
  // event-loop delay
  'eld-ss-store': {
    group: 'Event loop, 64 in flight',
    family: 'ours',
    label: 'FileSessionStore.get, 64 in flight',
    eld: true,
  },
  'eld-sfs-secret': {
    group: 'Event loop, 64 in flight',
    family: 'peer',
    label: 'session-file-store get with secret, 64 in flight',
    eld: true,
    slow: true,
  },
  'eld-ss-native': {
    group: 'Event loop, 64 in flight',
    family: 'ours',
    label: 'native openFile + JSON.parse, 64 in flight',
    eld: true,
  },
  'eld-idle': {
    group: 'Event loop, 64 in flight',
    family: 'floor',
    label: "idle loop (no reads): this machine's baseline",
    eld: true,
  },
  'eld-js-async': {
    group: 'Event loop, 64 in flight',
    family: 'js',
    label: 'pure JS fs.promises read, 64 in flight',
    eld: true,
  },
}

// kind ops: num ops/s ÷ den ops/s (higher is better for num). kind time: num time ÷ den time
// (from ops/s). kind p50: num p50 latency ÷ den p50 latency. kind cpu: den CPU per op ÷ num's.
export const RATIOS = [
  {
    num: 'ss-native-sync-system-openssl',
    den: 'ss-native-sync-node-openssl',
    kind: 'ops',
    label: 'native sync read: system-openssl backend vs node-openssl',
  },
  {
    num: 'ss-native-sync',
    den: 'js-sync',
    kind: 'ops',
    target: ['>=', 2],
    label: 'native sync read vs pure-JS sync read (stretch 2.5×)',
  },
  {
    num: 'ss-native-sync',
    den: 'floor',
    kind: 'time',
    target: ['<=', 1.6],
    label: 'native sync read time ÷ C floor time',
  },
  {
    num: 'ss-store-get',
    den: 'ss-native-sync',
    kind: 'p50',
    target: ['<=', 1.5],
    label: 'FileSessionStore.get (async) p50 ÷ native sync read p50',
  },
  {
    num: 'ss-native-async-64',
    den: 'ss-native-async-64-pool',
    kind: 'ops',
    target: ['>=', 2],
    label: 'native async reads, 64 in flight, vs the pool-only path of 0.1',
  },
  {
    num: 'ss-native-async-64',
    den: 'ss-native-async-64-pool',
    kind: 'cpu',
    label: 'native async reads, 64 in flight: CPU time per read, pool-only (0.1) ÷ inline',
  },
  {
    num: 'ss-manager-sync-cached',
    den: 'js-sync',
    kind: 'ops',
    target: ['>=', 2.5],
    label: 'cached getSessionSync vs pure-JS sync read (validated cache)',
  },
  {
    num: 'ss-manager-sync-cached',
    den: 'floor',
    kind: 'time',
    target: ['<=', 2],
    label: 'cached getSessionSync time ÷ C floor time (validated cache)',
  },
  { num: 'ss-manager-sync', den: 'js-sync', kind: 'ops', label: 'getSessionSync (uncached) vs pure-JS sync read' },
  { num: 'ss-manager-sync', den: 'floor', kind: 'time', label: 'getSessionSync (uncached) time ÷ C floor time' },
  {
    num: 'ss-native-async',
    den: 'js-async',
    kind: 'ops',
    target: ['>=', 4],
    label: 'native async read vs pure-JS fs.promises (sequential)',
  },
  { num: 'ss-manager-async', den: 'js-async', kind: 'ops', label: 'getSession vs pure-JS fs.promises (sequential)' },
  {
    num: 'ss-native-async-64',
    den: 'js-async-64',
    kind: 'ops',
    target: ['>=', 8],
    label: 'native async read vs pure-JS fs.promises (64 in flight)',
  },
  {
    num: 'ss-manager-async-64',
    den: 'js-async-64',
    kind: 'ops',
    label: 'getSession vs pure-JS fs.promises (64 in flight)',
  },
  {
    num: 'ss-ring-open',
    den: 'js-memory-open',
    kind: 'ops',
    target: ['>=', 3],
    label: 'in-memory open: native vs node:crypto',
  },
  {
    num: 'ss-ring-open-string',
    den: 'js-memory-open-string',
    kind: 'ops',
    label: 'in-memory open to the record string: native vs node:crypto',
  },
  {
    num: 'ss-store-get',
    den: 'sfs-secret',
    kind: 'ops',
    target: ['>=', 1500],
    label: 'FileSessionStore.get vs session-file-store get with secret',
  },
  {
    num: 'ss-native-sync',
    den: 'sfs-secret',
    kind: 'ops',
    label: 'native sync read vs session-file-store get with secret',
  },
  {
    num: 'ss-store-get',
    den: 'sfs-plain',
    kind: 'ops',
    label: 'FileSessionStore.get vs session-file-store get (no encryption)',
  },
  {
    num: 'ss-native-sync',
    den: 'iron-unseal',
    kind: 'ops',
    target: ['>=', 50],
    label: 'native sync file read vs iron-session unsealData',
  },
  {
    num: 'ss-manager-sync-cached',
    den: 'iron-unseal',
    kind: 'ops',
    label: 'cached getSessionSync vs iron-session unsealData',
  },
  { num: 'ss-ring-open', den: 'iron-unseal', kind: 'ops', label: 'native in-memory open vs iron-session unsealData' },
  {
    num: 'ss-native-sync',
    den: 'conf-encrypted',
    kind: 'ops',
    label: 'native sync read vs conf get with encryptionKey',
  },
  {
    num: 'ss-manager-login',
    den: 'sfs-set-plain',
    kind: 'ops',
    label: 'login() vs session-file-store set (no encryption)',
  },
  {
    num: 'ss-store-save',
    den: 'sfs-set-plain',
    kind: 'ops',
    label: 'FileSessionStore.save vs session-file-store set (no encryption)',
  },
  {
    num: 'ss-store-save',
    den: 'sfs-set-secret',
    kind: 'ops',
    label: 'FileSessionStore.save vs session-file-store set with secret',
  },
  {
    num: 'ss-store-save',
    den: 'ss-store-save-v01',
    kind: 'p50',
    target: ['<=', 1.25],
    label: 'FileSessionStore.save p50 with versioned CAS ÷ 0.1 save p50',
  },
]

// ---- formatting -------------------------------------------------------------------------

export function fmtOps(x) {
  if (!Number.isFinite(x)) return '–'
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`
  if (x >= 1e4) return `${(x / 1e3).toFixed(0)}k`
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`
  if (x >= 100) return x.toFixed(0)
  return x.toFixed(1)
}

export function fmtNs(ns) {
  if (!Number.isFinite(ns)) return '–'
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(ns >= 1e7 ? 0 : 1)} ms`
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(ns >= 1e4 ? 0 : 1)} µs`
  return `${ns.toFixed(0)} ns`
}

export function fmtRatio(x) {
  if (!Number.isFinite(x)) return '–'
  if (x >= 1000) return `${Math.round(x).toLocaleString('en-US')}×`
  if (x >= 10) return `${x.toFixed(0)}×`
  return `${x.toFixed(2)}×`
}

const fmtMs = (x) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : '–')
const fmtMB = (b) => `${(b / 1048576).toFixed(1)} MB`
const check = (op, value, target) => (op === '>=' ? value >= target : value <= target)

// ---- summary ----------------------------------------------------------------------------

export function summarizeRun(run) {
  const rows = []
  for (const name of Object.keys(CONTENDERS)) {
    const rs = run.rounds.map((r) => r[name]).filter(Boolean)
    if (rs.length === 0) continue
    const ops = rs.map((r) => r.opsPerSec)
    rows.push({
      name,
      ...CONTENDERS[name],
      timing: rs[0].timing,
      rounds: rs.length,
      opsPerSec: median(ops),
      opsMin: Math.min(...ops),
      opsMax: Math.max(...ops),
      p50Ns: median(rs.map((r) => r.p50Ns)),
      p99Ns: median(rs.map((r) => r.p99Ns)),
      eldP99Ms: rs[0].eldP99Ms === undefined ? undefined : median(rs.map((r) => r.eldP99Ms)),
      eldP50Ms: rs[0].eldP50Ms === undefined ? undefined : median(rs.map((r) => r.eldP50Ms)),
      eldMaxMs: rs[0].eldMaxMs === undefined ? undefined : median(rs.map((r) => r.eldMaxMs)),
      eldPerRound: rs.map((r) => r.eldP99Ms),
    })
  }

  const ratios = []
  for (const def of RATIOS) {
    const per = run.rounds
      .filter((r) => r[def.num] && r[def.den])
      .map((r) =>
        def.kind === 'ops'
          ? r[def.num].opsPerSec / r[def.den].opsPerSec
          : def.kind === 'p50'
            ? r[def.num].p50Ns / r[def.den].p50Ns
            : def.kind === 'cpu'
              ? r[def.den].cpuNsPerOp / r[def.num].cpuNsPerOp
              : r[def.den].opsPerSec / r[def.num].opsPerSec,
      )
    if (per.length === 0) continue
    const m = median(per)
    ratios.push({
      ...def,
      perRound: per,
      median: m,
      targetText: def.target ? `${def.target[0] === '>=' ? '≥' : '≤'} ${def.target[1]}×` : undefined,
      met: def.target ? check(def.target[0], m, def.target[1]) : undefined,
    })
  }

  // Event loop, scale and memory targets.
  const targets = ratios
    .filter((r) => r.target)
    .map((r) => ({
      label: r.label,
      value: fmtRatio(r.median),
      perRound: r.perRound.map(fmtRatio),
      targetText: r.targetText,
      met: r.met,
    }))
  const eld = rows.filter((r) => r.eld)
  // p99 delay with 64 store reads in flight above the idle loop's p99, round by round.
  const above = run.rounds
    .filter((r) => r['eld-ss-store'] && r['eld-idle'])
    .map((r) => r['eld-ss-store'].eldP99Ms - r['eld-idle'].eldP99Ms)
  if (above.length) {
    const m = median(above)
    targets.push({
      label: 'p99 event-loop delay, 64 FileSessionStore.get in flight, above the idle baseline',
      value: fmtMs(m),
      perRound: above.map(fmtMs),
      targetText: '≤ 0.5 ms',
      met: m <= 0.5,
    })
  }

  let scale = null
  if (run.scale?.length) {
    const sizes = run.scaleSizes
    const small = sizes[0]
    const big = sizes[sizes.length - 1]
    const at = (n, key) => median(run.scale.map((s) => s.sizes[n]?.[key]).filter(Number.isFinite))
    scale = {
      sizes: sizes.map((n) => ({
        n,
        getP50Ns: at(n, 'getP50Ns'),
        getP99Ns: at(n, 'getP99Ns'),
        purgePerFileNs: at(n, 'purgePerFileNs'),
        openEachPerFileNs: at(n, 'openEachPerFileNs'),
        openOverPurge: median(run.scale.map((s) => s.sizes[n].openEachPerFileNs / s.sizes[n].purgePerFileNs)),
        openOverPurgePerRound: run.scale.map((s) => s.sizes[n].openEachPerFileNs / s.sizes[n].purgePerFileNs),
      })),
      growthPerRound: run.scale.map((s) => s.sizes[big].getP50Ns / s.sizes[small].getP50Ns),
      small,
      big,
    }
    scale.growth = median(scale.growthPerRound)
    targets.push({
      label: `FileSessionStore.get p50 at ${big.toLocaleString('en-US')} ÷ at ${small.toLocaleString('en-US')} sessions`,
      value: fmtRatio(scale.growth),
      perRound: scale.growthPerRound.map(fmtRatio),
      targetText: '≤ 1.3×',
      met: scale.growth <= 1.3,
    })
    const worst = Math.min(...scale.sizes.map((s) => s.openOverPurge))
    targets.push({
      label: 'purgeExpired per file vs opening every file (worst size)',
      value: `${fmtRatio(worst)} cheaper`,
      perRound: scale.sizes.map((s) => `${s.n / 1000}k: ${fmtRatio(s.openOverPurge)}`),
      targetText: '≥ 3×',
      met: worst >= 3,
    })
  }

  let rss = null
  if (run.rss) {
    rss = { ...run.rss, growth: run.rss.after.rss - run.rss.before.rss }
    targets.push({
      label: `RSS growth over ${run.rss.reads.toLocaleString('en-US')} getSessionSync reads`,
      value: fmtMB(rss.growth),
      perRound: [`${fmtMB(rss.before.rss)} → ${fmtMB(rss.after.rss)}`],
      targetText: '≤ 10 MB',
      met: rss.growth <= 10 * 1048576,
    })
  }

  const extraLines = []
  if (eld.length) {
    extraLines.push('\nevent-loop delay (monitorEventLoopDelay, 1 ms resolution; values include the 1 ms interval)')
    for (const r of eld)
      extraLines.push(
        `  ${r.label.padEnd(52)} p99 ${fmtMs(r.eldP99Ms).padStart(10)}  max ${fmtMs(r.eldMaxMs).padStart(10)}  ${fmtOps(r.opsPerSec)} ops/s`,
      )
  }
  if (scale) {
    extraLines.push('\nscale (FileSessionStore in one directory)')
    for (const s of scale.sizes) {
      extraLines.push(
        `  ${String(s.n).padStart(7)} sessions: get p50 ${fmtNs(s.getP50Ns).padStart(8)} p99 ${fmtNs(s.getP99Ns).padStart(8)}  purgeExpired ${fmtNs(s.purgePerFileNs).padStart(8)}/file  open each ${fmtNs(s.openEachPerFileNs).padStart(8)}/file (${fmtRatio(s.openOverPurge)})`,
      )
    }
  }
  if (rss)
    extraLines.push(
      `\nRSS: ${fmtMB(rss.before.rss)} after warm-up, ${fmtMB(rss.after.rss)} after ${rss.reads.toLocaleString('en-US')} reads (growth ${fmtMB(rss.growth)})`,
    )
  const met = targets.filter((t) => t.met).length
  extraLines.push(`\ntargets met: ${met} of ${targets.length}`)
  for (const t of targets)
    extraLines.push(`  ${t.met ? 'met   ' : 'MISSED'}  ${t.label}: ${t.value} (target ${t.targetText})`)

  return { rows, ratios, targets, scale, rss, extraLines }
}

// ---- results.md -------------------------------------------------------------------------

function markdown(run, s) {
  const L = []
  const rounds = run.rounds.length
  L.push('# sealed-session benchmark results', '')
  L.push(`- Date: ${run.date}`)
  L.push(
    `- Node ${run.node} (V8 ${run.v8}, OpenSSL ${run.nodeOpenssl}); C floor linked against ${run.floorOpenssl ?? 'n/a'}`,
  )
  L.push(`- CPU: ${run.cpu}; ${run.os}`)
  L.push(
    `- ${rounds} rounds${run.quick ? ' (BENCH_QUICK)' : ''}, each contender in a fresh process per round, interleaved; figures are medians over rounds, ratios are medians of per-round ratios; whole run ${Math.round(run.elapsedS)} s`,
  )
  L.push(
    `- Record: a ${run.meta.plaintextBytes}-byte JSON session (SessionManager's record), ${run.meta.envelopeBytes}-byte envelope on disk`,
  )
  L.push(
    '',
    "How to reproduce: `npm run bench` (a few minutes; `BENCH_QUICK=1 npm run bench` for a short run). Builds the TypeScript, compiles `bench/floor.c` with `gcc` against Node's OpenSSL headers and the system libcrypto, and rewrites this file and `results.svg`.",
    '',
  )
  L.push(
    '> The machine is shared (2 cores, other jobs running): absolute numbers move from run to run by tens of percent; the ratios, taken within each round, are the figures to read.',
    '',
  )
  // BENCH_NOTE: what the machine was doing during this run, printed next to the numbers.
  const note = run.note ?? process.env.BENCH_NOTE
  if (note) L.push(`> **This run:** ${note}`, '')
  L.push('![ops/s per contender, log scale](results.svg)', '')

  L.push('## Targets', '', '| target | measured | per round | goal | met |', '| --- | ---: | --- | ---: | :---: |')
  for (const t of s.targets)
    L.push(`| ${t.label} | ${t.value} | ${t.perRound.join(', ')} | ${t.targetText} | ${t.met ? 'yes' : '**no**'} |`)
  L.push('')

  L.push(
    '## Contenders',
    '',
    '| contender | timing | ops/s | p50 | p99 | ops/s over rounds |',
    '| --- | --- | ---: | ---: | ---: | --- |',
  )
  let group = null
  for (const r of s.rows) {
    if (r.group !== group) {
      group = r.group
      L.push(`| **${group}** | | | | | |`)
    }
    L.push(
      `| ${r.label} (\`${r.name}\`) | ${r.timing} | ${fmtOps(r.opsPerSec)} | ${fmtNs(r.p50Ns)} | ${fmtNs(r.p99Ns)} | ${fmtOps(r.opsMin)} – ${fmtOps(r.opsMax)} |`,
    )
  }
  L.push('')

  L.push(
    '## All ratios (median of per-round ratios)',
    '',
    '| ratio | median | per round | target |',
    '| --- | ---: | --- | --- |',
  )
  for (const r of s.ratios)
    L.push(
      `| ${r.label} | ${fmtRatio(r.median)} | ${r.perRound.map(fmtRatio).join(', ')} | ${r.targetText ? `${r.targetText} ${r.met ? '(met)' : '(**missed**)'}` : ''} |`,
    )
  L.push('')

  const eld = s.rows.filter((r) => r.eld)
  if (eld.length) {
    L.push('## Event-loop delay with 64 reads in flight', '')
    L.push(
      '`perf_hooks.monitorEventLoopDelay({ resolution: 1 })` during the measured window. The histogram records the time between 1 ms timer ticks, so an idle loop already reads about 1.1 ms: the figures include that interval.',
      '',
    )
    L.push('| contender | p50 | p99 | max | ops/s |', '| --- | ---: | ---: | ---: | ---: |')
    for (const r of eld)
      L.push(
        `| ${r.label} | ${fmtMs(r.eldP50Ms)} | ${fmtMs(r.eldP99Ms)} | ${fmtMs(r.eldMaxMs)} | ${fmtOps(r.opsPerSec)} |`,
      )
    L.push('')
  }

  if (s.scale) {
    L.push('## Scale: one directory with many sessions', '')
    L.push(
      '`FileSessionStore.get` of random sessions (sequential, per-op timing), `purgeExpired()` (a sweep of every file: one `fstatat` each, the mtime being the expiry; none expired, so every round sees the same directory), and the alternative: `openFileSync` (read + decrypt) of every file. Fixtures are sealed natively and written once per size, with the expiry as mtime as `sealToFile` does.',
      '',
    )
    L.push(
      '| sessions | get p50 | get p99 | purgeExpired per file | open every file, per file | purge cheaper by |',
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
    )
    for (const x of s.scale.sizes) {
      L.push(
        `| ${x.n.toLocaleString('en-US')} | ${fmtNs(x.getP50Ns)} | ${fmtNs(x.getP99Ns)} | ${fmtNs(x.purgePerFileNs)} | ${fmtNs(x.openEachPerFileNs)} | ${fmtRatio(x.openOverPurge)} |`,
      )
    }
    L.push(
      '',
      `get p50 growth from ${s.scale.small.toLocaleString('en-US')} to ${s.scale.big.toLocaleString('en-US')} sessions: ${fmtRatio(s.scale.growth)} (per round: ${s.scale.growthPerRound.map(fmtRatio).join(', ')})`,
      '',
    )
  }

  if (s.rss) {
    L.push('## Memory', '')
    L.push(
      `${s.rss.reads.toLocaleString('en-US')} \`getSessionSync()\` reads in one process (${fmtOps(s.rss.opsPerSec)} reads/s), \`gc()\` before each sample (\`--expose-gc\`):`,
      '',
    )
    L.push('| | RSS | heap used | external |', '| --- | ---: | ---: | ---: |')
    L.push(
      `| after warm-up (20 000 reads) | ${fmtMB(s.rss.before.rss)} | ${fmtMB(s.rss.before.heapUsed)} | ${fmtMB(s.rss.before.external)} |`,
    )
    L.push(
      `| after ${s.rss.reads.toLocaleString('en-US')} more | ${fmtMB(s.rss.after.rss)} | ${fmtMB(s.rss.after.heapUsed)} | ${fmtMB(s.rss.after.external)} |`,
    )
    L.push(
      `| growth | ${fmtMB(s.rss.growth)} | ${fmtMB(s.rss.after.heapUsed - s.rss.before.heapUsed)} | ${fmtMB(s.rss.after.external - s.rss.before.external)} |`,
    )
    L.push('')
  }

  if (run.tags) {
    const t = run.tags
    L.push('## Many tags', '')
    L.push(
      'Reading back a session whose auth carries 1000 roles and whose avatar 1000 tags (the cap), `JSON.parse` included; tags are de-duplicated with a Set (linear). A record stored before the cap must still read back: 60 000 tags. Median ms per read (`bench/tags.mjs`):',
      '',
    )
    L.push('| read | ms per read |', '| --- | ---: |')
    L.push(`| \`Session.fromJSON\`, 1000 tags | ${t.tags1000FromJsonMs.toFixed(3)} |`)
    L.push(`| \`MemorySessionStore.get\`, 1000 tags | ${t.tags1000MemoryGetMs.toFixed(3)} |`)
    L.push(`| \`Session.fromJSON\`, 60 000 tags | ${t.tags60000FromJsonMs.toFixed(1)} |`)
    L.push('')
  }

  L.push('## What is measured', '')
  L.push(
    '- Every read returns the parsed record. Our rows and the pure-JS rows read the same envelope file (same key, same AAD context); the pure-JS contender derives the key once with `hkdfSync`, then per read `readFileSync`/`fs.promises.readFile`, checks magic, version and expiry, and decrypts with `createDecipheriv` (tag checked by `final()`), then `JSON.parse`.',
  )
  L.push(
    "- `openFileSync`/`openFile` rows call the native surface the way `SessionManager` does (flags: remove expired, remove invalid, plaintext as a string). `getSessionSync`/`getSession` add the manager's record validation and `SessionData` object.",
  )
  L.push(
    '- `getSessionSync() with readCache` is `new SessionManager(app, { readCache: true })` reading an unchanged file: each call `lstat`s the file and its directory, checks expiry and returns the record validated on the last real read (any change to inode, size, mode, owner, link count, mtime or ctime of either makes it read again). It is a separate row; every other row reads and decrypts on every call.',
  )
  L.push(
    `- The C floor (\`bench/floor.c\`, built as \`${run.floorCmd ?? 'n/a'}\`) loops open, read, close and AES-256-GCM decrypt of the same file with a cipher fetched once and the key schedule kept (only the IV reset per read), and checks the tag: the least work any reader can do. It does not check ownership or permissions, nor build a JavaScript value.`,
  )
  L.push(
    '- session-file-store (express-session store): `get` with default options, plain and with `secret` (kruptein: a key derived with scrypt on every read and write). iron-session: `unsealData` of a token held in memory (its cookie), so no file I/O is charged to it. conf: `get()` re-reads and decrypts the file on every call (no cache; pbkdf2 with 10 000 rounds of SHA-512 each time), which is what is measured.',
  )
  L.push(
    '- `openFile on the thread pool only (as 0.1)` is the same build with the inline attempt switched off (`setInlineReadMode(3)`): every read goes to the libuv pool as in 0.1 (which also made 3 more system calls per read, so the ratio against it understates the gain over 0.1).',
  )
  L.push(
    '- In-memory rows: `KeyRing.open(buffer)` (returns header fields and a plaintext Buffer) vs the same open with `node:crypto` returning the plaintext Buffer; timed in batches of 100.',
  )
  L.push(
    '- Writes are durable for ours (temp file, fsync, rename, fsync of the directory) and for session-file-store (write-file-atomic: fsync, rename).',
  )
  L.push(
    '- Timing modes: per-op = each sync op timed with `process.hrtime.bigint()`; batch = 100 ops per timed sample; async-seq = one awaited op at a time; async-64 = 64 in flight, latency from call to settlement.',
  )
  L.push('')
  return L.join('\n')
}

// ---- results.svg ------------------------------------------------------------------------

const COLORS = { ours: '#1f6fb2', js: '#e07b1a', peer: '#7d7d7d', floor: '#2e8b3e' }
const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function svg(run, s) {
  const rows = s.rows.filter((r) => !r.eld && Number.isFinite(r.opsPerSec))
  const W = 980
  const labelW = 390
  const valueW = 80
  const barX = labelW + 10
  const barW = W - barX - valueW - 10
  const rowH = 20
  const groupH = 24
  const top = 56
  const minOps = Math.min(...rows.map((r) => r.opsPerSec))
  const maxOps = Math.max(...rows.map((r) => r.opsPerSec))
  const lo = Math.floor(Math.log10(minOps))
  const hi = Math.ceil(Math.log10(maxOps))
  const x = (v) => barX + ((Math.log10(v) - lo) / (hi - lo)) * barW
  const out = []
  let y = top
  let group = null
  const body = []
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group
      y += 6
      body.push(`<text x="10" y="${y + 14}" class="g">${esc(group)}</text>`)
      y += groupH
    }
    const w = Math.max(1, x(r.opsPerSec) - barX)
    body.push(`<text x="${labelW}" y="${y + 14}" class="l" text-anchor="end">${esc(r.label)}</text>`)
    body.push(
      `<rect x="${barX}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[r.family]}" rx="2"/>`,
    )
    body.push(`<text x="${(barX + w + 6).toFixed(1)}" y="${y + 14}" class="v">${esc(fmtOps(r.opsPerSec))}</text>`)
    y += rowH
  }
  const H = y + 50
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`,
  )
  out.push(
    '<style>.t{font-size:16px;font-weight:600;fill:#222}.s{font-size:11px;fill:#555}.g{font-size:12px;font-weight:600;fill:#333}.l{font-size:12px;fill:#222}.v{font-size:11px;fill:#222}.a{font-size:10px;fill:#666}</style>',
  )
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  out.push(
    `<text x="10" y="22" class="t">sealed-session: reads of a ${run.meta.plaintextBytes}-byte session, operations per second (log scale, higher is better)</text>`,
  )
  out.push(
    `<text x="10" y="40" class="s">${esc(`${run.date.slice(0, 10)} · Node ${run.node} · ${run.cpu} · median of ${run.rounds.length} rounds, each contender in a fresh process`)}</text>`,
  )
  for (let e = lo; e <= hi; e++) {
    const gx = x(10 ** e).toFixed(1)
    out.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${y + 4}" stroke="#ddd" stroke-width="1"/>`)
    const tick = e >= 6 ? `${10 ** (e - 6)}M` : e >= 3 ? `${10 ** (e - 3)}k` : String(10 ** e)
    out.push(`<text x="${gx}" y="${y + 18}" class="a" text-anchor="middle">${tick}</text>`)
  }
  out.push(...body)
  const legend = [
    ['ours', 'sealed-session'],
    ['js', 'pure JS (node:crypto)'],
    ['peer', 'other packages'],
    ['floor', 'C floor'],
  ]
  out.push(`<text x="${W - valueW - 10}" y="${y + 18}" class="a" text-anchor="end" dx="60">ops/s</text>`)
  let lx = barX
  for (const [fam, text] of legend) {
    out.push(`<rect x="${lx}" y="${y + 30}" width="12" height="12" fill="${COLORS[fam]}" rx="2"/>`)
    out.push(`<text x="${lx + 16}" y="${y + 40}" class="s">${esc(text)}</text>`)
    lx += 30 + text.length * 6.5
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}

export function writeReports(run, dir) {
  const s = summarizeRun(run)
  fs.writeFileSync(path.join(dir, 'results.md'), markdown(run, s))
  fs.writeFileSync(path.join(dir, 'results.svg'), svg(run, s))
}

// Re-render from a saved run: node bench/report.mjs <run.json>
if (
  process.argv[1] &&
  path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname) &&
  process.argv[2]
) {
  writeReports(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')), path.dirname(new URL(import.meta.url).pathname))
}
