// One contender in one fresh process: set up, warm up, measure, print one JSON line.
//   node bench/contender.mjs <name> <fixtureDir> '<options JSON>'
// Started by bench/run.mjs once per round; never shares a process with another contender.
//
// Timing modes (the row's `timing` field says which one produced it):
//   per-op      sync op timed alone with process.hrtime.bigint(); ops/s from the wall time
//               of the whole timed loop (so the ~40 ns of the two clock reads are included)
//   batch       sub-microsecond ops: batches of BATCH ops timed together; p50/p99 are of the
//               per-batch mean (per-op clock reads would cost as much as the op)
//   async-seq   one op in flight, `await`ed, each timed from call to settlement
//   async-64    64 ops in flight, a new one started as each settles; latency from start to
//               settlement; ops/s = settled / elapsed
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'

import {
  APP,
  FILE_NAME,
  MANAGER_CONTEXT,
  MAX_BYTES,
  NAMESPACE,
  ROOT,
  SECRET,
  TTL_MS,
  deriveKey,
  fixturePaths,
  percentile,
  median,
  require,
  scaleDir,
  sessionRecordInput,
} from './common.mjs'

const [name, fixtureDir, optionsJson = '{}'] = process.argv.slice(2)
const opts = { warmupMs: 200, measureMs: 500, minOps: 5, inFlight: 64, ...JSON.parse(optionsJson) }
const P = fixturePaths(fixtureDir)
const meta = fs.existsSync(P.meta) ? JSON.parse(fs.readFileSync(P.meta, 'utf8')) : {}

// run.mjs passes a snapshot of the build in BENCH_PKG (inherited environment).
const dist = (m) => require(path.join(process.env.BENCH_PKG ?? ROOT, 'dist', m))
const hr = () => process.hrtime.bigint()
const MAX_SAMPLES = 1 << 20
const BATCH = 100
// What SessionManager passes: remove expired, remove invalid, plaintext as a string.
const READ_FLAGS = 1 | 2 | 4

function summarize(lat, n, elapsedNs, timing, extra = {}) {
  const sorted = Array.from(lat.subarray(0, n)).sort((a, b) => a - b)
  return {
    name,
    timing,
    n,
    opsPerSec: (n * 1e9) / elapsedNs,
    p50Ns: percentile(sorted, 50),
    p99Ns: percentile(sorted, 99),
    ...extra,
  }
}

function runSync(op, { warmupMs, measureMs, minOps, slow }) {
  const inner = slow ? 1 : 32
  for (let t0 = Date.now(); Date.now() - t0 < warmupMs; ) for (let i = 0; i < inner; i++) op()
  const lat = new Float64Array(MAX_SAMPLES)
  const limit = BigInt(measureMs) * 1_000_000n
  let n = 0
  const start = hr()
  let end = start
  while (n < MAX_SAMPLES) {
    const t0 = hr()
    op()
    end = hr()
    lat[n++] = Number(end - t0)
    if (end - start >= limit && n >= minOps) break
  }
  return summarize(lat, n, Number(end - start), 'per-op')
}

function runBatch(op, { warmupMs, measureMs }) {
  for (let t0 = Date.now(); Date.now() - t0 < warmupMs; ) for (let i = 0; i < BATCH; i++) op()
  const lat = new Float64Array(MAX_SAMPLES)
  const limit = BigInt(measureMs) * 1_000_000n
  let batches = 0
  const start = hr()
  let end = start
  while (batches < MAX_SAMPLES) {
    const t0 = hr()
    for (let i = 0; i < BATCH; i++) op()
    end = hr()
    lat[batches++] = Number(end - t0) / BATCH
    if (end - start >= limit) break
  }
  const r = summarize(lat, batches, Number(end - start), 'batch')
  return { ...r, n: batches * BATCH, opsPerSec: (batches * BATCH * 1e9) / Number(end - start) }
}

async function runAsync(op, { warmupMs, measureMs, minOps }) {
  for (let t0 = Date.now(); Date.now() - t0 < warmupMs; ) await op()
  const lat = new Float64Array(MAX_SAMPLES)
  const limit = BigInt(measureMs) * 1_000_000n
  let n = 0
  const start = hr()
  let end = start
  while (n < MAX_SAMPLES) {
    const t0 = hr()
    await op()
    end = hr()
    lat[n++] = Number(end - t0)
    if (end - start >= limit && n >= minOps) break
  }
  return summarize(lat, n, Number(end - start), 'async-seq')
}

// Keeps `inFlight` ops running for `ms`; resolves with latencies of those settled in time.
function concurrently(op, inFlight, ms, lat) {
  return new Promise((resolve, reject) => {
    const limit = BigInt(ms) * 1_000_000n
    const start = hr()
    let n = 0
    let running = 0
    let stopAt = 0n
    const launch = () => {
      running++
      const t0 = hr()
      op().then(() => {
        running--
        const t1 = hr()
        if (stopAt === 0n) {
          if (lat && n < MAX_SAMPLES) lat[n] = Number(t1 - t0)
          n++
          if (t1 - start >= limit) stopAt = t1
          else launch()
        }
        if (stopAt !== 0n && running === 0) resolve({ n, elapsedNs: Number(stopAt - start) })
      }, reject)
    }
    for (let i = 0; i < inFlight; i++) launch()
  })
}

async function runConcurrent(op, { warmupMs, measureMs, inFlight, eld }) {
  await concurrently(op, inFlight, warmupMs, null)
  const lat = new Float64Array(MAX_SAMPLES)
  const h = eld ? monitorEventLoopDelay({ resolution: 1 }) : null
  h?.enable()
  // CPU time of the whole process (main thread and thread pool) per op: on a shared machine the
  // wall clock also measures how many threads got a share of the CPU; this does not.
  const cpu0 = process.cpuUsage()
  const { n, elapsedNs } = await concurrently(op, inFlight, measureMs, lat)
  const cpu = process.cpuUsage(cpu0)
  h?.disable()
  const extra = {
    cpuNsPerOp: ((cpu.user + cpu.system) * 1000) / n,
    ...(h
      ? {
          eldP50Ms: h.percentile(50) / 1e6,
          eldP99Ms: h.percentile(99) / 1e6,
          eldMaxMs: h.max / 1e6,
          eldSamples: h.count,
        }
      : {}),
  }
  return summarize(lat, Math.min(n, MAX_SAMPLES), elapsedNs, `async-${inFlight}`, extra)
}

// ---- the code under test: what a user of each package would write ---------------------------

function nativeBinding() {
  return dist('core/native.js')
}

function managerRing() {
  const { native } = nativeBinding()
  return new native.KeyRing({ scope: 'manager', name: APP, ikms: [Buffer.from(SECRET)] })
}

function backendRow(backend) {
  const used = dist('index.js').cryptoBackend()
  if (used !== backend) throw new Error(`${name}: crypto backend ${used}, expected ${backend}`)
  return CONTENDERS['ss-native-sync']()
}

function newManager(dir = P.managerDir, extra = {}) {
  const { SessionManager } = dist('index.js')
  return new SessionManager(APP, { secret: SECRET, dir, sweepInterval: 0, ...extra })
}

function newStore(dir = P.storeDir) {
  const { FileSessionStore } = dist('index.js')
  // touchAfter of a day: reads stay reads (no rewrite of lastAccess) for the whole bench.
  return new FileSessionStore({ dir, namespace: NAMESPACE, secret: SECRET, sweepInterval: 0, touchAfter: 86_400_000 })
}

// The envelope opened with node:crypto, written the way a user would: key derived once,
// header checked (magic, version, expiry), AAD = header || context, tag checked by final().
function jsEnvelopeReader() {
  const key = deriveKey(SECRET, 'manager', APP)
  const context = Buffer.from(MANAGER_CONTEXT)
  const openToString = (env) => {
    if (env.length < 56 || env.readUInt32BE(0) !== 0x5345414c || env[4] !== 1) throw new Error('not an envelope')
    const expiresAt = Number(env.readBigUInt64BE(20))
    if (expiresAt !== 0 && expiresAt <= Date.now()) return null
    const d = crypto.createDecipheriv('aes-256-gcm', key, env.subarray(28, 40))
    d.setAAD(env.subarray(0, 40))
    d.setAAD(context)
    d.setAuthTag(env.subarray(env.length - 16))
    const text = d.update(env.subarray(40, env.length - 16), undefined, 'utf8')
    d.final() // throws unless the tag verifies
    return text
  }
  const openToBuffer = (env) => {
    if (env.length < 56 || env.readUInt32BE(0) !== 0x5345414c || env[4] !== 1) throw new Error('not an envelope')
    const expiresAt = Number(env.readBigUInt64BE(20))
    if (expiresAt !== 0 && expiresAt <= Date.now()) return null
    const d = crypto.createDecipheriv('aes-256-gcm', key, env.subarray(28, 40))
    d.setAAD(env.subarray(0, 40))
    d.setAAD(context)
    d.setAuthTag(env.subarray(env.length - 16))
    const pt = d.update(env.subarray(40, env.length - 16))
    d.final()
    return pt
  }
  return { openToString, openToBuffer }
}

function sfsStore(secret) {
  const session = require('express-session')
  const FileStore = require('session-file-store')(session)
  const store = new FileStore({
    path: secret ? P.sfsSecretDir : P.sfsPlainDir,
    ttl: TTL_MS / 1000,
    reapInterval: -1,
    logFn() {},
    ...(secret ? { secret: SECRET } : {}),
  })
  const get = (sid) =>
    new Promise((resolve, reject) =>
      store.get(sid, (err, s) =>
        err ? reject(err) : s ? resolve(s) : reject(new Error('session-file-store: no session')),
      ),
    )
  const set = (sid, s) => new Promise((resolve, reject) => store.set(sid, s, (err) => (err ? reject(err) : resolve())))
  return { get, set }
}

function mustHave(value, what) {
  if (value === null || value === undefined) throw new Error(`${name}: ${what} returned nothing; fixture broken?`)
  return value
}

const CONTENDERS = {
  // -- reads of one ~300-byte record from a local file --
  'ss-manager-sync'() {
    const m = newManager()
    mustHave(m.getSessionSync(), 'getSessionSync')
    return { run: runSync, op: () => m.getSessionSync() }
  },
  'ss-manager-sync-cached'() {
    // The validated cache: lstat of the file and its directory, expiry check, same record.
    const m = newManager(P.managerDir, { readCache: true })
    mustHave(m.getSessionSync(), 'getSessionSync')
    return { run: runSync, op: () => m.getSessionSync() }
  },
  'ss-native-sync'() {
    const { native } = nativeBinding()
    const ring = managerRing()
    const dir = new native.PrivateDir(P.managerDir, false)
    const op = () =>
      JSON.parse(dir.openFileSync(ring, FILE_NAME, MANAGER_CONTEXT, MAX_BYTES, Date.now(), READ_FLAGS).plaintext)
    mustHave(op(), 'openFileSync')
    return { run: runSync, op }
  },
  // run.mjs sets SEALED_SESSION_CRYPTO for these; the check makes a wrong backend an error.
  'ss-native-sync-node-openssl'() {
    return backendRow('node-openssl')
  },
  'ss-native-sync-system-openssl'() {
    return backendRow('system-openssl')
  },
  'ss-manager-async'() {
    const m = newManager()
    return { run: runAsync, op: () => m.getSession(), check: () => m.getSession() }
  },
  'ss-native-async'() {
    const { native } = nativeBinding()
    const ring = managerRing()
    const dir = new native.PrivateDir(P.managerDir, false)
    const op = () =>
      dir
        .openFile(ring, FILE_NAME, MANAGER_CONTEXT, MAX_BYTES, Date.now(), READ_FLAGS)
        .then((r) => JSON.parse(r.plaintext))
    return { run: runAsync, op, check: op }
  },
  'ss-native-async-64'() {
    return { ...CONTENDERS['ss-native-async'](), run: runConcurrent }
  },
  // 0.1's async read: straight to the thread pool, no inline attempt (same build otherwise).
  'ss-native-async-64-pool'() {
    const { native } = nativeBinding()
    native.setInlineReadMode(3)
    return { ...CONTENDERS['ss-native-async'](), run: runConcurrent }
  },
  'ss-manager-async-64'() {
    return { ...CONTENDERS['ss-manager-async'](), run: runConcurrent }
  },
  'js-sync'() {
    const { openToString } = jsEnvelopeReader()
    const op = () => JSON.parse(openToString(fs.readFileSync(P.managerFile)))
    mustHave(op(), 'pure-JS read')
    return { run: runSync, op }
  },
  'js-async'() {
    const { openToString } = jsEnvelopeReader()
    const op = () => fs.promises.readFile(P.managerFile).then((env) => JSON.parse(openToString(env)))
    return { run: runAsync, op, check: op }
  },
  'js-async-64'() {
    return { ...CONTENDERS['js-async'](), run: runConcurrent }
  },
  'ss-store-get'() {
    const store = newStore()
    const op = () => store.get(meta.storeId).then((s) => mustHave(s, 'FileSessionStore.get'))
    return { run: runAsync, op, check: op }
  },
  'sfs-plain'() {
    const { get } = sfsStore(false)
    return { run: runAsync, op: () => get(meta.sfsId), check: () => get(meta.sfsId) }
  },
  'sfs-secret'() {
    const { get } = sfsStore(true)
    return { run: runAsync, op: () => get(meta.sfsId), check: () => get(meta.sfsId) }
  },
  async 'iron-unseal'() {
    const { unsealData } = await import('iron-session')
    const token = fs.readFileSync(P.ironToken, 'utf8') // read once: iron-session's token lives in a cookie
    const op = () => unsealData(token, { password: SECRET, ttl: TTL_MS / 1000 })
    const check = () => op().then((r) => mustHave(r.userId, 'unsealData'))
    return { run: runAsync, op, check }
  },
  async 'conf-encrypted'() {
    const Conf = (await import('conf')).default
    const conf = new Conf({ cwd: P.confDir, configName: 'session', encryptionKey: SECRET })
    // conf has no cache: every get() goes through the `store` getter, which reads the file and
    // decrypts it again (pbkdf2Sync, 10 000 rounds of SHA-512, then AES-256-CBC).
    const op = () => conf.get('session')
    mustHave(op()?.userId, 'conf.get')
    return { run: runSync, op }
  },

  // -- in-memory open of the envelope (the Redis path) --
  'ss-ring-open'() {
    const ring = managerRing()
    const env = fs.readFileSync(P.managerFile)
    const op = () => ring.open(env, MANAGER_CONTEXT, MAX_BYTES)
    mustHave(op().plaintext, 'ring.open')
    return { run: runBatch, op }
  },
  'js-memory-open'() {
    const { openToBuffer } = jsEnvelopeReader()
    const env = fs.readFileSync(P.managerFile)
    const op = () => openToBuffer(env)
    mustHave(op(), 'node:crypto open')
    return { run: runBatch, op }
  },

  // The same opens ending in the record's string, which is what RedisSessionStore needs: ours
  // decodes UTF-8 natively (no Buffer), node:crypto's Buffer is then decoded with toString().
  'ss-ring-open-string'() {
    const ring = managerRing()
    const env = fs.readFileSync(P.managerFile)
    const op = () => ring.open(env, MANAGER_CONTEXT, MAX_BYTES, true)
    mustHave(op().plaintext.length, 'ring.open as string')
    return { run: runBatch, op }
  },
  'js-memory-open-string'() {
    const { openToBuffer } = jsEnvelopeReader()
    const env = fs.readFileSync(P.managerFile)
    const op = () => openToBuffer(env).toString('utf8')
    mustHave(op().length, 'node:crypto open to a string')
    return { run: runBatch, op }
  },

  // -- writes (each is durable: fsync'd) --
  async 'ss-manager-login'() {
    const m = newManager(path.join(P.writesDir, `manager-${process.pid}`))
    const { userId, eid, options } = sessionRecordInput()
    return { run: runAsync, op: () => m.login(userId, eid, options) }
  },
  async 'ss-store-save'() {
    const store = newStore(path.join(P.writesDir, `store-${process.pid}`))
    const { options } = sessionRecordInput()
    const session = await store.create({ userId: 'user-4f1c2a9e', name: options.userName, roles: options.data.roles })
    return { run: runAsync, op: () => store.save(session) }
  },
  // The same op on the 0.1 build (run.mjs builds it from git into BENCH_BASELINE_PKG).
  async 'ss-store-save-v01'() {
    const { FileSessionStore } = require(path.join(process.env.BENCH_BASELINE_PKG, 'dist', 'index.js'))
    const store = new FileSessionStore({
      dir: path.join(P.writesDir, `store-v01-${process.pid}`),
      namespace: NAMESPACE,
      secret: SECRET,
      sweepInterval: 0,
      touchAfter: 86_400_000,
    })
    const { options } = sessionRecordInput()
    const session = await store.create({ userId: 'user-4f1c2a9e', name: options.userName, roles: options.data.roles })
    return { run: runAsync, op: () => store.save(session) }
  },
  // 8 processes, each reading one shared session, changing a path of its own and saving, for
  // measureMs x 2 after all of them are ready; every save is a compare-and-swap under the stripe lock.
  async 'ss-store-save-8w'() {
    const WRITERS = 8
    const store = newStore(path.join(P.writesDir, `store-8w-${process.pid}`))
    const session = await store.create({ userId: 'user-4f1c2a9e' })
    await store.close()
    const duration = Math.max(opts.measureMs * 2, 1000)
    const { spawn } = await import('node:child_process')
    const children = Array.from({ length: WRITERS }, (_, p) => {
      const args = [
        path.join(ROOT, 'bench', 'cas-writer.mjs'),
        process.env.BENCH_PKG ?? ROOT,
        store.dir,
        SECRET,
        NAMESPACE,
        session.id,
        String(p),
        String(duration),
      ]
      const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
      let out = ''
      const ready = new Promise((resolve) =>
        child.stdout.on('data', (d) => ((out += d), out.includes('ready\n') && resolve())),
      )
      const done = new Promise((resolve, reject) =>
        child.on('close', (code) =>
          code === 0
            ? resolve(JSON.parse(out.slice(out.indexOf('\n') + 1)))
            : reject(new Error(`cas-writer exit ${code}`)),
        ),
      )
      return { child, ready, done }
    })
    await Promise.all(children.map((c) => c.ready))
    for (const c of children) c.child.stdin.end('go\n')
    const runs = await Promise.all(children.map((c) => c.done))
    if (runs.some((r) => r.lost > 0 || r.errors > 0))
      throw new Error(`8 writers: ${JSON.stringify(runs.map((r) => [r.lost, r.errors]))}`)
    const lat = Float64Array.from(runs.flatMap((r) => r.lat))
    return summarize(lat, lat.length, duration * 1e6, `${WRITERS} processes`)
  },
  'sfs-set-plain'() {
    return sfsWrites(false)
  },
  'sfs-set-secret'() {
    return sfsWrites(true)
  },

  // -- event-loop health: 64 reads in flight while the loop's delay is sampled every 1 ms --
  'eld-ss-store'() {
    return { ...CONTENDERS['ss-store-get'](), run: (op, o) => runConcurrent(op, { ...o, eld: true }) }
  },
  'eld-sfs-secret'() {
    return { ...CONTENDERS['sfs-secret'](), run: (op, o) => runConcurrent(op, { ...o, eld: true }) }
  },
  'eld-ss-native'() {
    return { ...CONTENDERS['ss-native-async'](), run: (op, o) => runConcurrent(op, { ...o, eld: true }) }
  },
  'eld-js-async'() {
    return { ...CONTENDERS['js-async'](), run: (op, o) => runConcurrent(op, { ...o, eld: true }) }
  },

  // The loop doing nothing but being sampled: what this machine's scheduling alone costs.
  'eld-idle'() {
    return {
      run: async (_op, o) => {
        const h = monitorEventLoopDelay({ resolution: 1 })
        h.enable()
        await new Promise((resolve) => setTimeout(resolve, o.measureMs))
        h.disable()
        return {
          name,
          timing: 'idle',
          n: 0,
          opsPerSec: NaN,
          p50Ns: NaN,
          p99Ns: NaN,
          eldP50Ms: h.percentile(50) / 1e6,
          eldP99Ms: h.percentile(99) / 1e6,
          eldMaxMs: h.max / 1e6,
        }
      },
      op: null,
    }
  },

  // -- scale and memory: not a single op; they report their own figures --
  scale: runScale,
  rss: runRss,
}

function sfsWrites(secret) {
  const session = require('express-session')
  const FileStore = require('session-file-store')(session)
  const dir = path.join(P.writesDir, `sfs-${secret ? 'secret' : 'plain'}-${process.pid}`)
  const store = new FileStore({
    path: dir,
    ttl: TTL_MS / 1000,
    reapInterval: -1,
    logFn() {},
    ...(secret ? { secret: SECRET } : {}),
  })
  const record = meta.record
  const op = () =>
    new Promise((resolve, reject) => store.set('bench-sid', { ...record }, (err) => (err ? reject(err) : resolve())))
  return { run: runAsync, op }
}

// FileSessionStore.get latency and purgeExpired vs opening every file, at each size. Gets
// are interleaved across the sizes (1k, 10k, 100k, 1k, …) so that every size sees the same
// moments of a noisy machine; each get picks a random session of its directory.
async function runScale() {
  const { native } = nativeBinding()
  const sizes = opts.sizes
  const gets = opts.gets ?? 2000
  const out = { name, sizes: {} }
  const dirs = sizes.map((n) => {
    const dir = scaleDir(opts.scaleRoot, n)
    const ids = JSON.parse(fs.readFileSync(path.join(opts.scaleRoot, `ids-${n}.json`), 'utf8'))
    return { n, dir, ids, store: newStore(dir), lat: new Float64Array(gets) }
  })
  const pick = (d) => d.ids[(Math.random() * d.ids.length) | 0]
  for (let i = 0; i < 300; i++) for (const d of dirs) mustHave(await d.store.get(pick(d)), 'scale get')
  for (let i = 0; i < gets; i++) {
    for (let k = 0; k < dirs.length; k++) {
      const d = dirs[(i + k) % dirs.length]
      const id = pick(d)
      const t0 = hr()
      await d.store.get(id)
      d.lat[i] = Number(hr() - t0)
    }
  }
  for (const d of dirs) {
    const { n, dir, store } = d
    const sorted = Array.from(d.lat).sort((a, b) => a - b)
    // purgeExpired: one fstatat per file, the mtime being the expiry (none has expired, so nothing is removed
    // and every round sees the same directory). Repeated on small sizes to get above noise.
    const purgeReps = n <= 10_000 ? 3 : 1
    const purge = []
    for (let r = 0; r < purgeReps; r++) {
      const t0 = hr()
      const removed = await store.purgeExpired()
      purge.push(Number(hr() - t0) / n)
      if (removed !== 0) throw new Error(`scale: purgeExpired removed ${removed} files`)
    }
    // The alternative to a header sweep: open (read, check, decrypt) every file.
    const names = fs.readdirSync(dir).filter((f) => /^[0-9a-f]{64}$/.test(f))
    if (names.length !== n) throw new Error(`scale: ${dir} holds ${names.length} sessions, expected ${n}`)
    const ring = new native.KeyRing({ scope: 'store', name: NAMESPACE, ikms: [Buffer.from(SECRET)] })
    const pd = new native.PrivateDir(dir, false)
    const now = Date.now()
    const t0 = hr()
    for (const f of names) pd.openFileSync(ring, f, `store:${NAMESPACE}:${f}`, MAX_BYTES, now, 4)
    const openEach = Number(hr() - t0) / n
    await store.close()
    out.sizes[n] = {
      getP50Ns: percentile(sorted, 50),
      getP99Ns: percentile(sorted, 99),
      purgePerFileNs: median(purge),
      openEachPerFileNs: openEach,
    }
  }
  return out
}

// RSS after the warm-up and after 1 000 000 sync reads (gc() before each sample).
async function runRss() {
  const m = newManager()
  const reads = opts.reads ?? 1_000_000
  for (let i = 0; i < 20_000; i++) m.getSessionSync()
  const sample = () => {
    globalThis.gc?.()
    globalThis.gc?.()
    const u = process.memoryUsage()
    return { rss: u.rss, heapUsed: u.heapUsed, external: u.external }
  }
  const before = sample()
  const t0 = hr()
  for (let i = 0; i < reads; i++) m.getSessionSync()
  const elapsedNs = Number(hr() - t0)
  const after = sample()
  return {
    name,
    reads,
    gcExposed: typeof globalThis.gc === 'function',
    before,
    after,
    opsPerSec: (reads * 1e9) / elapsedNs,
  }
}

const make = CONTENDERS[name]
if (!make) {
  console.error(`contender: unknown name '${name}' (known: ${Object.keys(CONTENDERS).join(', ')})`)
  process.exit(2)
}
const made = await make()
let result
if (made.run) {
  if (made.check) await made.check()
  result = await made.run(made.op, opts)
} else {
  result = made
}
process.stdout.write(`${JSON.stringify(result)}\n`)
// Some peers leave timers or handles behind; the result is out, so leave now.
process.exit(0)
