// HTTP bench: whole requests through Express, per session stack, over loopback.
//   express-session + our ExpressSessionStore (file store, Redis store, PostgreSQL store)
//   express-session + connect-redis, express-session + connect-pg-simple
//   our own sessionMiddleware (file store, Redis store, PostgreSQL store)
// Each server runs in its own process (`node bench/http.mjs serve <name> <json>`), so the load
// generator never shares an event loop with it. redis-server and PostgreSQL (bench/postgres.mjs)
// are started here on free loopback ports and stopped by pid. Two phases per contender: `read` (a logged-in client reads its
// session, changes nothing) and `write` (it increments a counter). C clients, one session each,
// keep-alive, each waiting for its response before the next request. Rounds are interleaved and
// medians reported; ratios are taken round by round, as in bench/run.mjs.
//
// `node bench/http.mjs` runs it alone and writes bench/results-http.md (BENCH_QUICK=1: shorter, no
// file); `npm run bench` calls runHttpBench too.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

import { ROOT, SECRET, median, percentile, require } from './common.mjs'
import { startServer as startPostgres } from './postgres.mjs'

const SELF = fileURLToPath(import.meta.url)
const CLIENTS = 16

export const HTTP_CONTENDERS = {
  'es+adapter/file': 'express-session + ExpressSessionStore over FileSessionStore',
  'es+adapter/redis': 'express-session + ExpressSessionStore over RedisSessionStore',
  'es+connect-redis': 'express-session + connect-redis 11',
  'middleware/file': 'sessionMiddleware over FileSessionStore',
  'middleware/redis': 'sessionMiddleware over RedisSessionStore',
  'es+adapter/postgres': 'express-session + ExpressSessionStore over PostgresSessionStore (node-postgres)',
  'es+connect-pg-simple': 'express-session + connect-pg-simple 10',
  'middleware/postgres': 'sessionMiddleware over PostgresSessionStore (node-postgres)',
}

// Ratios: below 1 means the first is slower.
const HTTP_RATIOS = [
  ['es+adapter/redis', 'es+connect-redis', 'adapter/redis ÷ connect-redis'],
  ['es+adapter/file', 'middleware/file', 'adapter/file ÷ our middleware/file'],
  ['es+adapter/redis', 'middleware/redis', 'adapter/redis ÷ our middleware/redis'],
  ['es+adapter/postgres', 'es+connect-pg-simple', 'adapter/postgres ÷ connect-pg-simple'],
  ['middleware/postgres', 'es+connect-pg-simple', 'our middleware/postgres ÷ connect-pg-simple'],
]

// ---- server side (child process) ---------------------------------------------------------

async function serve(name, { pkg, dir, redisPort, pgPort }) {
  const ss = require(path.join(pkg, 'dist', 'index.js'))
  const express = require('express')
  const session = require('express-session')
  const app = express()
  let client = null
  if (name.endsWith('redis')) {
    client = require('redis').createClient({ socket: { host: '127.0.0.1', port: redisPort } })
    client.on('error', (err) => console.error('redis:', err.message))
    await client.connect()
  }
  let pool = null
  if (name.endsWith('postgres') || name.endsWith('pg-simple')) {
    const { Pool } = require('pg')
    pool = new Pool({ connectionString: `postgres://postgres@127.0.0.1:${pgPort}/postgres`, max: 16 })
    pool.on('error', (err) => console.error('postgres:', err.message))
  }
  let pgStore = null
  if (name.endsWith('/postgres')) {
    pgStore = new ss.PostgresSessionStore({
      client: pool,
      secret: SECRET,
      table: name.replace(/\W/g, '_'),
      sweepInterval: 0,
    })
    await pgStore.init()
  }
  const ours = () =>
    name.endsWith('/file')
      ? new ss.FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
      : name.endsWith('/postgres')
        ? pgStore
        : new ss.RedisSessionStore({ client, secret: SECRET, prefix: `${name}:` })
  const esOptions = { secret: 'cookie signing secret', resave: false, saveUninitialized: false }

  if (name.startsWith('es+adapter/')) {
    const { ExpressSessionStore } = require(path.join(pkg, 'dist', 'express.js'))
    app.use(session({ ...esOptions, store: new ExpressSessionStore({ store: ours() }) }))
  } else if (name === 'es+connect-pg-simple') {
    const PgStore = require('connect-pg-simple')(session)
    app.use(
      session({ ...esOptions, store: new PgStore({ pool, createTableIfMissing: true, pruneSessionInterval: false }) }),
    )
  } else if (name === 'es+connect-redis') {
    const { RedisStore } = await import('connect-redis') // connect-redis is ESM only
    app.use(session({ ...esOptions, store: new RedisStore({ client, prefix: 'cr:' }) }))
  } else {
    app.use(ss.sessionMiddleware({ store: ours(), logger: { debug() {}, info() {}, warn() {}, error: console.error } }))
  }
  // The same handlers for every stack: express-session's req.session is a plain object, ours a Session.
  const isOurs = name.startsWith('middleware/')
  app.get('/write', (req, res) => {
    if (isOurs) req.session.data.set('n', req.session.data.get('n', 0) + 1)
    else req.session.n = (req.session.n ?? 0) + 1
    res.json({ n: isOurs ? req.session.data.get('n') : req.session.n })
  })
  app.get('/read', (req, res) => {
    res.json({ n: isOurs ? req.session.data.get('n', null) : (req.session.n ?? null) })
  })
  const server = http.createServer(app)
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })))
}

// ---- load side ---------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Spawns a child and resolves with it once a stdout line matches `ready`. */
function spawnUntil(cmd, args, ready, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error(`${what} did not start in 15 s:\n${out}${err}`))
    }, 15_000)
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      out += chunk
      const m = out.match(ready)
      if (m) {
        clearTimeout(timer)
        resolve({ child, match: m })
      }
    })
    child.stderr.setEncoding('utf8').on('data', (chunk) => (err += chunk))
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code}) before it was ready:\n${out}${err}`))
    })
  })
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.removeAllListeners('exit')
    child.once('exit', () => resolve())
    process.kill(child.pid, 'SIGTERM')
  })
}

function request(agent, port, urlPath, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, agent, headers: cookie ? { cookie } : {} },
      (res) => {
        res.resume()
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${urlPath}: HTTP ${res.statusCode}`))
          const set = res.headers['set-cookie']?.[0]
          resolve(set ? set.split(';')[0] : null)
        })
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** C clients for `ms` after a warm-up: requests per second and latency percentiles (ns). */
async function drive(port, urlPath, cookies, { warmupMs, measureMs }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS })
  const latencies = []
  let measuring = false
  let stopAt = Date.now() + warmupMs
  const loop = async (i) => {
    while (Date.now() < stopAt) {
      const t0 = process.hrtime.bigint()
      const set = await request(agent, port, urlPath, cookies[i])
      if (set) cookies[i] = set
      if (measuring) latencies.push(Number(process.hrtime.bigint() - t0))
    }
  }
  await Promise.all(cookies.map((_, i) => loop(i)))
  measuring = true
  const start = process.hrtime.bigint()
  stopAt = Date.now() + measureMs
  await Promise.all(cookies.map((_, i) => loop(i)))
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return {
    rps: latencies.length / seconds,
    p50Ns: percentile(latencies, 50),
    p99Ns: percentile(latencies, 99),
    n: latencies.length,
  }
}

async function runOne(name, { pkg, tmp, redisPort, pgPort, timing, writeFirst }) {
  const dir = fs.mkdtempSync(path.join(tmp, 'http-'))
  const { child, match } = await spawnUntil(
    process.execPath,
    [SELF, 'serve', name, JSON.stringify({ pkg, dir, redisPort, pgPort })],
    /\{"port":(\d+)\}/,
    `server ${name}`,
  )
  try {
    const port = Number(match[1])
    // One session per client, created by a first write.
    const cookies = await Promise.all(Array.from({ length: CLIENTS }, () => request(undefined, port, '/write')))
    if (cookies.some((c) => c === null)) throw new Error(`${name}: no session cookie`)
    // Phases alternate by round: neither always meets the machine's load at the same moment.
    const out = {}
    for (const phase of writeFirst ? ['write', 'read'] : ['read', 'write'])
      out[phase] = await drive(port, `/${phase}`, cookies, timing)
    return out
  } finally {
    await stop(child)
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Runs every HTTP contender `rounds` times, interleaved; returns { rows, ratios, markdown }. */
export async function runHttpBench({ pkg, rounds, quick, log = console.error }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sealed-session-http-'))
  const redisPort = await freePort()
  const { child: redis } = await spawnUntil(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp],
    /Ready to accept connections/,
    'redis-server',
  )
  let postgres = null
  try {
    postgres = await startPostgres()
  } catch (err) {
    await stop(redis)
    throw err
  }
  const pgPort = postgres.port
  const timing = quick ? { warmupMs: 300, measureMs: 1000 } : { warmupMs: 1000, measureMs: 3000 }
  const names = Object.keys(HTTP_CONTENDERS)
  const results = [] // results[r][name] = { read, write }
  try {
    for (let r = 0; r < rounds; r++) {
      const round = {}
      for (const name of names.map((_, i) => names[(i + r) % names.length])) {
        round[name] = await runOne(name, { pkg, tmp, redisPort, pgPort, timing, writeFirst: r % 2 === 1 })
      }
      results.push(round)
      log(`  http round ${r + 1}/${rounds}`)
    }
  } finally {
    await stop(redis)
    postgres.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  const rows = names.map((name) => {
    const of = (phase, key) => median(results.map((round) => round[name][phase][key]))
    return {
      name,
      label: HTTP_CONTENDERS[name],
      readRps: of('read', 'rps'),
      readP50Ns: of('read', 'p50Ns'),
      writeRps: of('write', 'rps'),
      writeP50Ns: of('write', 'p50Ns'),
    }
  })
  const ratios = HTTP_RATIOS.map(([a, b, label]) => ({
    label,
    read: median(results.map((round) => round[a].read.rps / round[b].read.rps)),
    write: median(results.map((round) => round[a].write.rps / round[b].write.rps)),
  }))
  return { rows, ratios, markdown: toMarkdown(rows, ratios, { rounds, quick }) }
}

function toMarkdown(rows, ratios, { rounds, quick }) {
  const ms = (ns) => (ns / 1e6).toFixed(2)
  const lines = [
    `### HTTP: whole requests through Express (${CLIENTS} keep-alive clients, one session each, ${rounds} rounds${quick ? ', quick' : ''}, medians)`,
    '',
    `Run ${new Date().toISOString()}, Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}. ` +
      '`read`: the request reads its session and changes nothing; `write`: it increments a counter. ' +
      'express-session with its default cookie (no maxAge), resave and saveUninitialized false.',
    '',
    '| stack | read req/s | read p50 ms | write req/s | write p50 ms |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${Math.round(r.readRps)} | ${ms(r.readP50Ns)} | ${Math.round(r.writeRps)} | ${ms(r.writeP50Ns)} |`,
    ),
    '',
    '| ratio (req/s, median of per-round ratios) | read | write |',
    '|---|---:|---:|',
    ...ratios.map((r) => `| ${r.label} | ${r.read.toFixed(2)}× | ${r.write.toFixed(2)}× |`),
    '',
  ]
  return lines.join('\n')
}

// ---- entry points ------------------------------------------------------------------------

if (process.argv[1] === SELF) {
  if (process.argv[2] === 'serve') {
    await serve(process.argv[3], JSON.parse(process.argv[4]))
  } else {
    const quick = process.env.BENCH_QUICK === '1'
    const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3))
    const { markdown } = await runHttpBench({ pkg: ROOT, rounds, quick })
    console.log(markdown)
    if (!quick) fs.writeFileSync(path.join(ROOT, 'bench', 'results-http.md'), markdown)
  }
}
