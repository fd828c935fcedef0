// `npm run bench`: reads of a ~300-byte session, side by side, in one run.
// Style of better-sqlite3's benchmark: every contender runs in its own fresh process
// (bench/contender.mjs), warm-up first, several rounds interleaved across contenders, medians
// reported, and every ratio computed round by round (median of the per-round ratios), because
// absolute numbers on a shared machine drift while ratios from the same minute hold.
//
// Environment: BENCH_QUICK=1 short run (3 rounds, short windows, scale 1k/10k, 200k reads for
// RSS); BENCH_ROUNDS=n; BENCH_ONLY=name,name (subset of contenders, no results files);
// BENCH_KEEP=1 keeps the fixture directory; BENCH_ONLY=http runs only the HTTP stacks (bench/http.mjs); CC picks the C compiler for the floor (gcc);
// BENCH_ADDON=path measures that build of the addon instead of build/Release; BENCH_STRICT=1 exits 1
// when any contender fails; BENCH_SMOKE=1 runs everything once, short and strict, writing no results.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import {
  APP,
  MANAGER_CONTEXT,
  NAMESPACE,
  ROOT,
  SECRET,
  TTL_MS,
  deriveKey,
  fixturePaths,
  require,
  scaleDir,
  sessionRecordInput,
} from './common.mjs'
import { CONTENDERS, summarizeRun, writeReports, fmtOps, fmtNs, fmtRatio } from './report.mjs'
import { runRedisBench, writeRedisReport } from './redis.mjs'
import { runPostgresBench, writePostgresReport } from './postgres.mjs'

// BENCH_SMOKE=1: everything once, short, no results files, exit 1 if any part fails (CI runs it).
const SMOKE = process.env.BENCH_SMOKE === '1'
if (SMOKE) Object.assign(process.env, { BENCH_QUICK: '1', BENCH_ROUNDS: '1', BENCH_STRICT: '1' })
const QUICK = process.env.BENCH_QUICK === '1'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 5))
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null
const SCALE_SIZES = QUICK ? [1_000, 10_000] : [1_000, 10_000, 100_000]
const RSS_READS = QUICK ? 200_000 : 1_000_000
const BASE = QUICK ? { warmupMs: 100, measureMs: 200 } : { warmupMs: 200, measureMs: 500 }
const FLOOR_READS = QUICK ? 30_000 : 100_000

const started = Date.now()
const PKG = () => process.env.BENCH_PKG
const log = (...a) => console.error(...a)

// A snapshot of the build under test (dist/ and the addon), so that a rebuild in the working
// tree during the run cannot change or break what later rounds measure.
function snapshotPackage(into) {
  for (const f of ['dist/index.js', 'dist/core/native.js', 'build/Release/sealed_session.node']) {
    if (!fs.existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: run \`npm run build\` first`)
  }
  fs.mkdirSync(path.join(into, 'build', 'Release'), { recursive: true })
  fs.cpSync(path.join(ROOT, 'dist'), path.join(into, 'dist'), { recursive: true })
  // BENCH_ADDON=/path/to/sealed_session.node measures another build of the addon (before/after).
  const addon = process.env.BENCH_ADDON ?? path.join(ROOT, 'build', 'Release', 'sealed_session.node')
  fs.copyFileSync(addon, path.join(into, 'build', 'Release', 'sealed_session.node'))
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(into, 'package.json'))
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(into, 'node_modules'))
  require(path.join(into, 'dist', 'core', 'native.js')) // throws early if the addon does not load
  return into
}

// The previous release built from git (BENCH_BASELINE_REF, default 0.1's commit) for the
// contenders marked baseline, so that a change is measured against it in the same rounds. Null
// (logged) when it cannot be built: those contenders are then left out.
const RELEASE_0_1 = '73b38e7'
function snapshotBaseline(into) {
  const ref = process.env.BENCH_BASELINE_REF ?? RELEASE_0_1
  fs.mkdirSync(into, { recursive: true })
  const steps = [
    ['sh', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', ROOT, ref, into]],
    ['npm', ['run', '--silent', 'build']],
  ]
  for (const [i, [cmd, args]] of steps.entries()) {
    if (i === 1) fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(into, 'node_modules'))
    const r = spawnSync(cmd, args, { cwd: into, encoding: 'utf8', timeout: 600_000 })
    if (r.status !== 0) {
      log(
        `  baseline ${ref}: could not build (${cmd}): ${(r.stderr || String(r.error)).trim().split('\n').slice(-5).join('\n')}`,
      )
      return null
    }
  }
  log(`  baseline: ${ref} built in ${into}`)
  return into
}

// ---- fixtures ---------------------------------------------------------------------------

async function makeFixtures(fixtureDir) {
  const P = fixturePaths(fixtureDir)
  const ss = require(path.join(PKG(), 'dist', 'index.js'))
  const { userId, eid, options } = sessionRecordInput()

  const manager = new ss.SessionManager(APP, { secret: SECRET, dir: P.managerDir, sweepInterval: 0 })
  const record = (await manager.login(userId, eid, options)).toJSON()
  await manager.close()
  const envelope = fs.readFileSync(P.managerFile)

  const store = new ss.FileSessionStore({
    dir: P.storeDir,
    namespace: NAMESPACE,
    secret: SECRET,
    sweepInterval: 0,
    touchAfter: 86_400_000,
  })
  const session = await store.create({ userId, name: options.userName, roles: options.data.roles }, { ttl: TTL_MS })
  session.data.set('locale', options.data.locale)
  session.data.set('theme', options.data.theme)
  session.data.set('cart', options.data.cart)
  await store.save(session)
  await store.close()
  const storeEnvelope = fs.readFileSync(path.join(P.storeDir, ss.storageName(session.id)))

  // session-file-store: the same record as an express-session session (plain and encrypted).
  const expressSession = require('express-session')
  const FileStore = require('session-file-store')(expressSession)
  const sfsId = 'bench-session-id'
  for (const [dir, secret] of [
    [P.sfsPlainDir, undefined],
    [P.sfsSecretDir, SECRET],
  ]) {
    const s = new FileStore({
      path: dir,
      ttl: TTL_MS / 1000,
      reapInterval: -1,
      logFn() {},
      ...(secret ? { secret } : {}),
    })
    await new Promise((resolve, reject) => s.set(sfsId, { ...record }, (err) => (err ? reject(err) : resolve())))
  }

  const Conf = (await import('conf')).default
  new Conf({ cwd: P.confDir, configName: 'session', encryptionKey: SECRET }).set('session', record)

  const { sealData } = await import('iron-session')
  fs.writeFileSync(P.ironToken, await sealData(record, { password: SECRET, ttl: TTL_MS / 1000 }))

  fs.mkdirSync(P.writesDir, { recursive: true, mode: 0o700 })
  const meta = {
    record,
    storeId: session.id,
    sfsId,
    envelopeBytes: envelope.length,
    plaintextBytes: envelope.length - 56,
    storeEnvelopeBytes: storeEnvelope.length,
    sfsPlainBytes: fs.statSync(path.join(P.sfsPlainDir, `${sfsId}.json`)).size,
    sfsSecretBytes: fs.statSync(path.join(P.sfsSecretDir, `${sfsId}.json`)).size,
    ironTokenBytes: fs.statSync(P.ironToken).size,
  }
  fs.writeFileSync(P.meta, JSON.stringify(meta))
  return meta
}

// n sessions per directory, sealed natively in memory and written with writeFileSync (no
// fsync: these are fixtures, not the code under test). Same envelope and names as the store.
function makeScaleFixtures(scaleRoot, sizes) {
  const ss = require(path.join(PKG(), 'dist', 'index.js'))
  const { native } = require(path.join(PKG(), 'dist', 'core', 'native.js'))
  const ring = new native.KeyRing({ scope: 'store', name: NAMESPACE, ikms: [Buffer.from(SECRET)] })
  const { userId, options } = sessionRecordInput()
  const auth = { userId, name: options.userName, roles: options.data.roles }
  for (const n of sizes) {
    const t0 = Date.now()
    const dir = scaleDir(scaleRoot, n)
    new native.PrivateDir(dir, true).close()
    const ids = []
    for (let i = 0; i < n; i++) {
      const session = new ss.Session(ss.generateSessionId(), auth, TTL_MS)
      session.data.set('locale', options.data.locale)
      session.data.set('cart', options.data.cart)
      const name = ss.storageName(session.id)
      const env = ring.seal(
        // The full record (JSON.stringify gives the redacted view since 0.3).
        JSON.stringify(typeof session.toRecord === 'function' ? session.toRecord() : session.toJSON()),
        `store:${NAMESPACE}:${name}`,
        session.meta.createdAt,
        session.expiresAt(),
      )
      fs.writeFileSync(path.join(dir, name), env, { mode: 0o600, flag: 'wx' })
      // As sealToFile does: the expiry as the mtime, which the sweep reads instead of the header.
      fs.utimesSync(path.join(dir, name), new Date(), new Date(session.expiresAt()))
      ids.push(session.id)
    }
    fs.writeFileSync(path.join(scaleRoot, `ids-${n}.json`), JSON.stringify(ids))
    log(`  scale fixture: ${n} sessions in ${Date.now() - t0} ms`)
  }
}

// ---- the C floor ------------------------------------------------------------------------

function buildFloor(outDir) {
  const include = path.join(path.dirname(process.execPath), '..', 'include', 'node')
  const out = path.join(outDir, 'floor')
  const cc = process.env.CC ?? 'gcc'
  const args = ['-O2', '-I', include, path.join(ROOT, 'bench', 'floor.c'), '-o', out, '-lcrypto']
  const r = spawnSync(cc, args, { encoding: 'utf8' })
  if (r.status !== 0) {
    log(`  floor: could not build (${cc} ${args.join(' ')}):\n${r.stderr || r.error}`)
    return null
  }
  return {
    bin: out,
    cmd: `${cc} ${args
      .join(' ')
      .replaceAll(outDir, '$TMP')
      .replaceAll(ROOT + '/', '')}`,
  }
}

// ---- running contenders -----------------------------------------------------------------

function lastJsonLine(text) {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
  return lines.length ? JSON.parse(lines[lines.length - 1]) : null
}

// Contenders (and the floor, the tags run) that failed: with BENCH_STRICT=1 the run then exits 1
// (CI's smoke run: a bench that no longer runs is caught the day it breaks).
let failures = 0

function runContender(name, fixtureDir, options, nodeArgs = []) {
  const r = spawnSync(
    process.execPath,
    [...nodeArgs, path.join(ROOT, 'bench', 'contender.mjs'), name, fixtureDir, JSON.stringify(options)],
    {
      encoding: 'utf8',
      timeout: 180_000,
      maxBuffer: 16 << 20,
      env: CONTENDERS[name]?.crypto ? { ...process.env, SEALED_SESSION_CRYPTO: CONTENDERS[name].crypto } : process.env,
    },
  )
  const result = r.status === 0 ? lastJsonLine(r.stdout) : null
  if (!result) {
    failures++
    log(
      `  ${name}: failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})\n${(r.stderr ?? '').trim().split('\n').slice(-8).join('\n')}`,
    )
  }
  return result
}

function runFloor(floor, fixtureDir) {
  const P = fixturePaths(fixtureDir)
  const key = deriveKey(SECRET, 'manager', APP).toString('hex')
  const r = spawnSync(floor.bin, [P.managerFile, key, MANAGER_CONTEXT, String(FLOOR_READS), '1'], {
    encoding: 'utf8',
    timeout: 120_000,
  })
  const j = r.status === 0 ? lastJsonLine(r.stdout) : null
  if (!j) {
    failures++
    log(`  floor: failed (${r.stderr?.trim() ?? r.error})`)
    return null
  }
  return {
    name: 'floor',
    timing: 'per-op (C)',
    n: FLOOR_READS,
    opsPerSec: 1e9 / j.ns,
    p50Ns: j.p50,
    p99Ns: j.p99,
    openssl: j.openssl,
  }
}

function optionsFor(name) {
  const c = CONTENDERS[name]
  const o = { ...BASE }
  if (c.slow) Object.assign(o, { warmupMs: 50, measureMs: QUICK ? 300 : 800, minOps: 5, slow: true })
  if (c.eld) Object.assign(o, { warmupMs: 200, measureMs: QUICK ? 500 : 1500 })
  return o
}

// ---- main -------------------------------------------------------------------------------

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sealed-session-bench-'))
  process.env.BENCH_PKG = snapshotPackage(path.join(tmp, 'pkg'))
  const fixtureDir = path.join(tmp, 'fx')
  const scaleRoot = path.join(tmp, 'scale')
  fs.mkdirSync(fixtureDir, { mode: 0o700 })
  fs.mkdirSync(scaleRoot, { mode: 0o700 })
  try {
    log(`sealed-session bench: ${ROUNDS} rounds${QUICK ? ' (BENCH_QUICK)' : ''}, fixtures in ${tmp}`)
    const meta = await makeFixtures(fixtureDir)
    log(`  record: ${meta.plaintextBytes}-byte JSON, envelope ${meta.envelopeBytes} bytes`)
    const floor = buildFloor(tmp)

    const wantBaseline = Object.keys(CONTENDERS).some((n) => CONTENDERS[n].baseline && (!ONLY || ONLY.includes(n)))
    if (wantBaseline) process.env.BENCH_BASELINE_PKG = snapshotBaseline(path.join(tmp, 'baseline')) ?? ''
    const names = Object.keys(CONTENDERS).filter(
      (n) =>
        (!ONLY || ONLY.includes(n)) &&
        (n !== 'floor' || floor) &&
        (!CONTENDERS[n].baseline || process.env.BENCH_BASELINE_PKG),
    )
    const rounds = [] // rounds[r][name] = result
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = Date.now()
      const results = {}
      // Rotate the order each round so no contender always runs first or last.
      const order = names.map((_, i) => names[(i + r * 7) % names.length])
      for (const name of order) {
        const res = name === 'floor' ? runFloor(floor, fixtureDir) : runContender(name, fixtureDir, optionsFor(name))
        if (res) results[name] = res
      }
      rounds.push(results)
      log(`  round ${r + 1}/${ROUNDS}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }

    let scale = null
    if (!ONLY || ONLY.includes('scale')) {
      makeScaleFixtures(scaleRoot, SCALE_SIZES)
      scale = []
      for (let r = 0; r < ROUNDS; r++) {
        const res = runContender('scale', fixtureDir, {
          sizes: SCALE_SIZES,
          scaleRoot,
          round: r,
          gets: QUICK ? 1000 : 2000,
        })
        if (res) scale.push(res)
      }
      log(`  scale: done`)
    }

    let rss = null
    if (!ONLY || ONLY.includes('rss')) {
      rss = runContender('rss', fixtureDir, { reads: RSS_READS }, ['--expose-gc'])
      log(`  rss: done`)
    }

    // Whole HTTP requests per session stack (bench/http.mjs): its own table and results file.
    let httpBench = null
    if (!ONLY || ONLY.includes('http')) {
      const { runHttpBench } = await import('./http.mjs')
      httpBench = await runHttpBench({ pkg: PKG(), rounds: Math.min(ROUNDS, 3), quick: QUICK, log })
    }

    // Reading back a session whose avatar carries 1000 tags (ms per read).
    let tags = null
    if (!ONLY || ONLY.includes('tags')) {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'tags.mjs')], {
        encoding: 'utf8',
        timeout: 180_000,
      })
      tags = r.status === 0 ? lastJsonLine(r.stdout) : null
      if (!tags) failures++
      log(
        tags
          ? '  tags: done'
          : `  tags: failed (exit ${r.status ?? r.signal})\n${(r.stderr ?? '').trim().split('\n').slice(-8).join('\n')}`,
      )
    }

    const run = {
      date: new Date().toISOString(),
      node: process.version,
      v8: process.versions.v8,
      nodeOpenssl: process.versions.openssl,
      floorOpenssl: rounds.find((x) => x.floor)?.floor?.openssl ?? null,
      floorCmd: floor?.cmd ?? null,
      cpu: `${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}`,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      quick: QUICK,
      note: process.env.BENCH_NOTE ?? null,
      rounds,
      names,
      scale,
      scaleSizes: SCALE_SIZES,
      rss,
      tags,
      meta,
      elapsedS: (Date.now() - started) / 1000,
    }
    printTable(run)
    if (httpBench) {
      console.log(`\n${httpBench.markdown}`)
      if (!ONLY && !SMOKE) fs.writeFileSync(path.join(ROOT, 'bench', 'results-http.md'), httpBench.markdown)
    }
    // The raw run, to re-render the reports without running again (node bench/report.mjs <file>).
    const saved = path.join(os.tmpdir(), 'sealed-session-bench-last.json')
    fs.writeFileSync(saved, JSON.stringify(run))
    log(`raw results: ${saved}`)
    if (!ONLY && !SMOKE) writeReports(run, path.join(ROOT, 'bench'))
    else log('(BENCH_ONLY: results files not written)')
    // Redis rows: their own redis-server and file, see bench/redis.mjs (BENCH_ONLY=redis alone)
    if (!ONLY || ONLY.includes('redis')) {
      const redis = await runRedisBench(log)
      console.log(`\n${redis.markdown}`)
      if (!ONLY && !SMOKE) writeRedisReport(redis.markdown)
    }
    // PostgreSQL rows: their own server, see bench/postgres.mjs (BENCH_ONLY=postgres alone)
    if (!ONLY || ONLY.includes('postgres')) {
      const pgRun = await runPostgresBench(log)
      console.log(`\n${pgRun.markdown}`)
      if (!ONLY && !SMOKE) writePostgresReport(pgRun.markdown)
    }
  } finally {
    if (process.env.BENCH_KEEP === '1') log(`fixtures kept in ${tmp}`)
    else fs.rmSync(tmp, { recursive: true, force: true })
  }
}

function printTable(run) {
  const s = summarizeRun(run)
  const pad = (x, n) => String(x).padEnd(n)
  const padl = (x, n) => String(x).padStart(n)
  console.log(`\nsealed-session bench — ${run.date} — Node ${run.node} — ${run.cpu} — ${ROUNDS} rounds (medians)\n`)
  console.log(`${pad('contender', 52)}${padl('ops/s', 12)}${padl('p50', 10)}${padl('p99', 10)}  timing`)
  for (const row of s.rows) {
    console.log(
      `${pad(`${row.name}  ${CONTENDERS[row.name].label}`, 52).slice(0, 52)}${padl(fmtOps(row.opsPerSec), 12)}${padl(fmtNs(row.p50Ns), 10)}${padl(fmtNs(row.p99Ns), 10)}  ${row.timing}`,
    )
  }
  console.log(`\n${pad('ratio (median of per-round ratios)', 62)}${padl('value', 10)}${padl('target', 10)}  met`)
  for (const r of s.ratios) {
    console.log(
      `${pad(r.label, 62).slice(0, 62)}${padl(fmtRatio(r.median), 10)}${padl(r.targetText ?? '', 10)}  ${r.met === undefined ? '' : r.met ? 'yes' : 'NO'}`,
    )
  }
  for (const line of s.extraLines) console.log(line)
  if (run.tags) {
    const t = run.tags
    console.log(
      `\ntags: Session.fromJSON of a record with 1000 tags ${t.tags1000FromJsonMs.toFixed(3)} ms, MemorySessionStore.get ${t.tags1000MemoryGetMs.toFixed(3)} ms; 60 000 tags (stored before the cap) ${t.tags60000FromJsonMs.toFixed(1)} ms`,
    )
  }
  console.log(`\n(${run.elapsedS.toFixed(0)} s)`)
}

await main()
if (failures > 0 && process.env.BENCH_STRICT === '1') {
  console.error(`bench: ${failures} contender run(s) failed`)
  process.exit(1)
}
