// `npm run bench` (hooked from run.mjs) or `node bench/redis.mjs`: one session read through Redis,
// three ways, against one redis-server this script starts on a free loopback port and stops by
// pid: a raw node-redis GET of the sealed value, connect-redis `get` (plaintext JSON, what
// express-session users run) and RedisSessionStore.get. Each round is a fresh process in which
// the three take turns in short slices (each on its own connection), so a burst of load from
// elsewhere on a shared machine hits all three alike; ratios are taken round by round, medians
// reported.
//   node bench/redis.mjs               the whole run; prints a table, writes bench/results-redis.md
//   node bench/redis.mjs round <port>  one round (internal)
// Environment: BENCH_QUICK=1, BENCH_ROUNDS=n, BENCH_PKG (a snapshot of the build; default the repo).
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

import {
  NAMESPACE,
  ROOT,
  SECRET,
  TTL_MS,
  freePort,
  median,
  networkRounds,
  require,
  sessionRecordInput,
  sliceTiming,
  timeInSlices,
} from './common.mjs'

const PREFIX = 'bench:'
const KEYS = { raw: 'bench-raw', connect: 'bench-cr:s1', meta: 'bench-meta' }
const SID_CR = 's1'

export const REDIS_CONTENDERS = {
  'redis-raw-get': { label: 'raw node-redis GET of the same sealed bytes (the wire)' },
  'connect-redis-get': { label: 'connect-redis get (plaintext JSON, no encryption)' },
  'ss-redis-get': { label: 'sealed-session RedisSessionStore.get()' },
  'ss-file-get': { label: 'sealed-session FileSessionStore.get() (local encrypted file, same record)' },
}
export const REDIS_RATIOS = [
  {
    num: 'ss-redis-get',
    den: 'connect-redis-get',
    target: 1.15,
    label: 'RedisSessionStore.get ÷ connect-redis get (time, same server, same run)',
  },
  { num: 'ss-redis-get', den: 'redis-raw-get', label: 'RedisSessionStore.get ÷ raw GET of the same bytes (time)' },
  { num: 'connect-redis-get', den: 'redis-raw-get', label: 'connect-redis get ÷ raw GET (time)' },
  {
    num: 'connect-redis-get',
    den: 'ss-file-get',
    atLeast: 3,
    label: 'connect-redis get ÷ FileSessionStore.get (time: plaintext Redis on localhost vs a local encrypted file)',
  },
]

const dist = (m) => require(path.join(process.env.BENCH_PKG ?? ROOT, 'dist', m))

async function connect(port) {
  const { createClient } = require('redis')
  const client = createClient({ url: `redis://127.0.0.1:${port}` })
  client.on('error', () => {})
  await client.connect()
  return client
}

// ---- one contender (child process) -----------------------------------------------------

/** One contender's op on its own connection: resolves to () => Promise. */
async function setup(name, port) {
  const client = await connect(port)
  const meta = JSON.parse(await client.get(KEYS.meta))
  let op
  if (name === 'redis-raw-get') {
    op = () => client.get(KEYS.raw)
  } else if (name === 'connect-redis-get') {
    const { RedisStore } = await import('connect-redis') // connect-redis is ESM only
    const store = new RedisStore({ client, prefix: 'bench-cr:' })
    op = () => store.get(SID_CR)
  } else if (name === 'ss-redis-get') {
    const { RedisSessionStore } = dist('index.js')
    const store = new RedisSessionStore({
      client,
      secret: SECRET,
      namespace: NAMESPACE,
      prefix: PREFIX,
      touchAfter: TTL_MS,
    })
    op = () => store.get(meta.id)
  } else if (name === 'ss-file-get') {
    const { FileSessionStore } = dist('index.js')
    const store = new FileSessionStore({
      dir: meta.fileDir,
      secret: SECRET,
      namespace: NAMESPACE,
      sweepInterval: 0,
      touchAfter: TTL_MS,
    })
    op = () => store.get(meta.fileId)
  } else throw new Error(`unknown contender ${name}`)
  const check = await op()
  if (check === null || check === undefined) throw new Error(`${name}: the fixture is missing`)
  return { op, close: () => client.close() }
}

/** One round: every contender, in turns of 25 ms, one operation in flight, each timed. */
export async function round(port) {
  const names = Object.keys(REDIS_CONTENDERS)
  const all = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await setup(n, port)])))
  return timeInSlices(all, sliceTiming())
}

// ---- the run: server, fixtures, rounds ---------------------------------------------------

async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-bench-redis-'))
  const port = await freePort()
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  )
  const failed = new Promise((_, reject) => child.once('error', reject))
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', stop)
  for (let i = 0; i < 250; i++) {
    const up = await Promise.race([
      failed,
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)))
        s.once('error', () => resolve(false))
      }),
    ])
    if (up) return { port, stop }
    await new Promise((r) => setTimeout(r, 20))
  }
  stop()
  throw new Error('redis-server did not start')
}

export async function makeFixtures(port) {
  const client = await connect(port)
  const { RedisSessionStore, storageName } = dist('index.js')
  const { userId, options } = sessionRecordInput()
  const store = new RedisSessionStore({
    client,
    secret: SECRET,
    namespace: NAMESPACE,
    prefix: PREFIX,
    touchAfter: TTL_MS,
  })
  const session = await store.create({ userId, name: options.userName, roles: options.data.roles }, { ttl: TTL_MS })
  for (const k of ['locale', 'theme', 'cart', 'flags', 'csrf']) session.data.set(k, options.data[k])
  await store.save(session)
  const sealed = await client.withTypeMapping({ 36: Buffer }).get(PREFIX + storageName(session.id))
  await client.set(KEYS.raw, sealed)
  // what express-session would store for the same user: the data plus its cookie
  const { RedisStore } = await import('connect-redis')
  const cr = new RedisStore({ client, prefix: 'bench-cr:' })
  await cr.set(SID_CR, {
    cookie: {
      originalMaxAge: TTL_MS,
      expires: new Date(Date.now() + TTL_MS).toISOString(),
      httpOnly: true,
      path: '/',
      sameSite: 'lax',
    },
    user: { userId, name: options.userName, roles: options.data.roles },
    ...Object.fromEntries(['locale', 'theme', 'cart', 'flags', 'csrf'].map((k) => [k, options.data[k]])),
  })
  const plainBytes = Buffer.byteLength(await client.get('bench-cr:' + SID_CR))
  // The same record in a FileSessionStore: what the file row reads.
  const { FileSessionStore } = dist('index.js')
  const fileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-bench-redis-file-'))
  const files = new FileSessionStore({
    dir: path.join(fileDir, 'sessions'),
    secret: SECRET,
    namespace: NAMESPACE,
    sweepInterval: 0,
    touchAfter: TTL_MS,
  })
  await files.restore(await store.dump())
  await files.close()
  await client.set(
    KEYS.meta,
    JSON.stringify({ id: session.id, fileId: session.id, fileDir: path.join(fileDir, 'sessions') }),
  )
  await client.close()
  return { sealedBytes: sealed.length, plainBytes, fileDir }
}

function runRound(port) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'round', String(port)], {
    encoding: 'utf8',
    timeout: 300_000,
  })
  if (r.status !== 0) throw new Error(`redis bench round failed:\n${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

const fmtNs = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} µs`)

/** The whole Redis run; returns { rows, ratios, markdown }. */
export async function runRedisBench(log = (...a) => console.error(...a)) {
  const server = await startServer()
  let sizes = null
  try {
    sizes = await makeFixtures(server.port)
    const names = Object.keys(REDIS_CONTENDERS)
    const perRound = []
    for (let r = 0; r < networkRounds(); r++) {
      const round = runRound(server.port)
      perRound.push(round)
      log(`redis round ${r + 1}/${networkRounds()}: ${names.map((n) => `${n} ${fmtNs(round[n].p50Ns)}`).join(', ')}`)
    }
    const rows = names.map((name) => ({
      name,
      label: REDIS_CONTENDERS[name].label,
      opsPerSec: median(perRound.map((r) => r[name].opsPerSec)),
      p50Ns: median(perRound.map((r) => r[name].p50Ns)),
      p99Ns: median(perRound.map((r) => r[name].p99Ns)),
    }))
    const ratios = REDIS_RATIOS.map((q) => {
      const value = median(perRound.map((r) => r[q.num].p50Ns / r[q.den].p50Ns))
      const met = q.target !== undefined ? value <= q.target : q.atLeast !== undefined ? value >= q.atLeast : null
      return { ...q, value, met }
    })
    const markdown = [
      `## Redis reads (one local redis-server, ${networkRounds()} rounds, p50 latency, one read in flight, contenders in alternating ${'25 ms'} slices)`,
      '',
      `Sealed value ${sizes.sealedBytes} bytes; connect-redis plaintext JSON ${sizes.plainBytes} bytes.`,
      '',
      '| contender | ops/s | p50 | p99 |',
      '| --- | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.label} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${fmtNs(r.p50Ns)} | ${fmtNs(r.p99Ns)} |`,
      ),
      '',
      '| ratio (median of per-round ratios) | value | target |',
      '| --- | ---: | --- |',
      ...ratios.map((q) => {
        const goal = q.target !== undefined ? `≤ ${q.target}×` : q.atLeast !== undefined ? `≥ ${q.atLeast}×` : ''
        return `| ${q.label} | ${q.value.toFixed(2)}× | ${goal && `${goal} ${q.met ? 'met' : 'MISSED'}`} |`
      }),
      '',
    ].join('\n')
    return { rows, ratios, markdown }
  } finally {
    server.stop()
    if (sizes) fs.rmSync(sizes.fileDir, { recursive: true, force: true })
  }
}

/** bench/results-redis.md: the Redis rows of the latest full run. */
export function writeRedisReport(markdown) {
  const when = `${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, Node ${process.version}`
  fs.writeFileSync(path.join(ROOT, 'bench', 'results-redis.md'), `# Redis bench results (${when})\n\n${markdown}`)
}

const [arg1, arg2] = process.argv.slice(2)
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (arg1 === 'round') {
    console.log(JSON.stringify(await round(Number(arg2))))
  } else {
    const { markdown } = await runRedisBench()
    console.log(markdown)
    // A quick run is a check, not a result: the published file stays.
    if (process.env.BENCH_QUICK !== '1') writeRedisReport(markdown)
  }
}
