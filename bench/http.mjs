// HTTP bench: whole requests per session stack, over loopback, for Express 5, Fastify 5 and Hono
// 4 (each with no session at all as the baseline): our adapters over the file, Redis and
// PostgreSQL stores, express-session (+ our ExpressSessionStore, + connect-redis,
// + connect-pg-simple), @fastify/session (memory store, connect-redis) and hono-sessions.
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
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

import { ROOT, SECRET, freePort, median, percentile, require } from './common.mjs'
import { startServer as startPostgres } from './postgres.mjs'

const SELF = fileURLToPath(import.meta.url)
const CLIENTS = 16

export const HTTP_CONTENDERS = {
  'express/none': 'Express 5, no session',
  'express/ours-file': 'Express: sessionMiddleware over FileSessionStore',
  'express/ours-file-process': "Express: sessionMiddleware over FileSessionStore, durability 'process' (no fsync)",
  'express/ours-redis': 'Express: sessionMiddleware over RedisSessionStore',
  'express/es+adapter-file': 'Express: express-session + ExpressSessionStore over FileSessionStore',
  'express/es+adapter-redis': 'Express: express-session + ExpressSessionStore over RedisSessionStore',
  'express/es+connect-redis': 'Express: express-session + connect-redis 11',
  'express/ours-postgres': 'Express: sessionMiddleware over PostgresSessionStore (node-postgres)',
  'express/es+adapter-postgres': 'Express: express-session + ExpressSessionStore over PostgresSessionStore',
  'express/es+connect-pg-simple': 'Express: express-session + connect-pg-simple 10',
  'fastify/none': 'Fastify 5, no session',
  'fastify/ours-file': 'Fastify: sealedSession over FileSessionStore',
  'fastify/ours-redis': 'Fastify: sealedSession over RedisSessionStore',
  'fastify/@fastify/session-memory': 'Fastify: @fastify/session + @fastify/cookie, its memory store',
  'fastify/@fastify/session-connect-redis': 'Fastify: @fastify/session + @fastify/cookie + connect-redis 11',
  'hono/none': 'Hono 4 (@hono/node-server), no session',
  'hono/ours-file': 'Hono: withSession over FileSessionStore',
  'hono/ours-redis': 'Hono: withSession over RedisSessionStore',
  'hono/hono-sessions': 'Hono: hono-sessions, its MemoryStore (encrypted session-id cookie)',
}

// Ratios: below 1 means the first is slower. [a, b, label, target read, target write]
const HTTP_RATIOS = [
  ['express/ours-file', 'express/none', 'Express: ours/file ÷ no session', 0.85, 0.5],
  ['express/ours-file-process', 'express/none', "Express: ours/file, durability 'process' ÷ no session", null, 0.5],
  ['express/ours-redis', 'express/none', 'Express: ours/redis ÷ no session', 0.8, null],
  [
    'express/ours-redis',
    'express/es+connect-redis',
    'Express: ours/redis ÷ express-session + connect-redis',
    null,
    1.3,
  ],
  [
    'express/es+adapter-redis',
    'express/es+connect-redis',
    'Express: express-session + adapter/redis ÷ + connect-redis',
    1.1,
    1.0,
  ],
  [
    'express/es+adapter-postgres',
    'express/es+connect-pg-simple',
    'Express: express-session + adapter/postgres ÷ + connect-pg-simple',
    1.0,
    null,
  ],
  [
    'express/ours-postgres',
    'express/es+connect-pg-simple',
    'Express: ours/postgres ÷ express-session + connect-pg-simple',
    null,
    null,
  ],
  ['express/es+adapter-file', 'express/ours-file', 'Express: express-session + adapter/file ÷ ours/file', null, null],
  ['fastify/ours-file', 'fastify/none', 'Fastify: ours/file ÷ no session', null, null],
  [
    'fastify/ours-redis',
    'fastify/@fastify/session-connect-redis',
    'Fastify: ours/redis ÷ @fastify/session + connect-redis',
    1.0,
    null,
  ],
  [
    'fastify/ours-file',
    'fastify/@fastify/session-memory',
    'Fastify: ours/file ÷ @fastify/session memory store',
    1.0,
    null,
  ],
  ['hono/ours-file', 'hono/none', 'Hono: ours/file ÷ no session', null, null],
  ['hono/ours-file', 'hono/hono-sessions', 'Hono: ours/file ÷ hono-sessions (memory)', 1.0, null],
]

const QUIET = { debug() {}, info() {}, warn() {}, error: console.error }
const COOKIE_SECRET = 'cookie signing secret 0123456789abcdef'

// ---- server side (child process) ---------------------------------------------------------

/** The server of one contender (not listening yet): the same two routes on every stack. `read`
 *  reads the counter and changes nothing; `write` increments it. */
export async function makeServer(name, { pkg, dir, redisPort, pgPort }) {
  const ss = require(path.join(pkg, 'dist', 'index.js'))
  let client = null
  if (name.includes('redis')) {
    client = require('redis').createClient({ socket: { host: '127.0.0.1', port: redisPort } })
    client.on('error', (err) => console.error('redis:', err.message))
    await client.connect()
  }
  let pool = null
  let pgStore = null
  if (name.endsWith('postgres') || name.endsWith('pg-simple')) {
    const { Pool } = require('pg')
    pool = new Pool({ connectionString: `postgres://postgres@127.0.0.1:${pgPort}/postgres`, max: 16 })
    pool.on('error', (err) => console.error('postgres:', err.message))
  }
  if (name.endsWith('-postgres')) {
    pgStore = new ss.PostgresSessionStore({
      client: pool,
      secret: SECRET,
      table: name.replace(/\W/g, '_'),
      sweepInterval: 0,
    })
    await pgStore.init()
  }
  const ours = () =>
    name.endsWith('-file-process')
      ? new ss.FileSessionStore({ dir, secret: SECRET, sweepInterval: 0, durability: 'process' })
      : name.endsWith('-file')
        ? new ss.FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
        : name.endsWith('-postgres')
          ? pgStore
          : new ss.RedisSessionStore({ client, secret: SECRET, prefix: `${name}:` })
  const connectRedis = async () => {
    const { RedisStore } = await import('connect-redis') // connect-redis is ESM only
    return new RedisStore({ client, prefix: `${name}:` })
  }
  const [framework] = name.split('/')
  if (framework === 'express') return expressServer(name, ss, pkg, ours, connectRedis, pool)
  if (framework === 'fastify') return fastifyServer(name, pkg, ours, connectRedis)
  return honoServer(name, pkg, ours)
}

async function expressServer(name, ss, pkg, ours, connectRedis, pool) {
  const express = require('express')
  const session = require('express-session')
  const app = express()
  const esOptions = { secret: COOKIE_SECRET, resave: false, saveUninitialized: false }
  if (name.startsWith('express/es+adapter-')) {
    const { ExpressSessionStore } = require(path.join(pkg, 'dist', 'express.js'))
    app.use(session({ ...esOptions, store: new ExpressSessionStore({ store: ours() }) }))
  } else if (name === 'express/es+connect-pg-simple') {
    const PgStore = require('connect-pg-simple')(session)
    app.use(
      session({ ...esOptions, store: new PgStore({ pool, createTableIfMissing: true, pruneSessionInterval: false }) }),
    )
  } else if (name === 'express/es+connect-redis') {
    app.use(session({ ...esOptions, store: await connectRedis() }))
  } else if (name.startsWith('express/ours-')) {
    app.use(ss.sessionMiddleware({ store: ours(), logger: QUIET }))
  }
  // express-session's req.session is a plain object, ours a Session.
  const isOurs = name.startsWith('express/ours-')
  let n = 0
  app.get('/write', (req, res) => {
    if (name === 'express/none') return void res.json({ n: ++n })
    if (isOurs) req.session.data.set('n', req.session.data.get('n', 0) + 1)
    else req.session.n = (req.session.n ?? 0) + 1
    res.json({ n: isOurs ? req.session.data.get('n') : req.session.n })
  })
  app.get('/read', (req, res) => {
    if (name === 'express/none') return void res.json({ n: null })
    res.json({ n: isOurs ? req.session.data.get('n', null) : (req.session.n ?? null) })
  })
  return http.createServer(app)
}

async function fastifyServer(name, pkg, ours, connectRedis) {
  const app = require('fastify')({ logger: false })
  const isOurs = name.startsWith('fastify/ours-')
  if (isOurs) {
    const { sealedSession } = require(path.join(pkg, 'dist', 'fastify.js'))
    await app.register(sealedSession, { store: ours(), logger: QUIET })
  } else if (name.startsWith('fastify/@fastify/session')) {
    await app.register(require('@fastify/cookie'))
    const options = { secret: COOKIE_SECRET, cookie: { secure: false }, saveUninitialized: false }
    if (name.endsWith('connect-redis')) options.store = await connectRedis()
    await app.register(require('@fastify/session'), options)
  }
  let n = 0
  app.get('/write', async (req) => {
    if (name === 'fastify/none') return { n: ++n }
    if (isOurs) req.session.data.set('n', req.session.data.get('n', 0) + 1)
    else req.session.set('n', (req.session.get('n') ?? 0) + 1)
    return { n: isOurs ? req.session.data.get('n') : req.session.get('n') }
  })
  app.get('/read', async (req) => {
    if (name === 'fastify/none') return { n: null }
    return { n: isOurs ? req.session.data.get('n', null) : (req.session.get('n') ?? null) }
  })
  await app.ready()
  return app.server
}

async function honoServer(name, pkg, ours) {
  const { Hono } = await import('hono')
  const { createAdaptorServer } = await import('@hono/node-server')
  const app = new Hono()
  let n = 0
  if (name === 'hono/none') {
    app.get('/write', (c) => c.json({ n: ++n }))
    app.get('/read', (c) => c.json({ n: null }))
  } else if (name.startsWith('hono/ours-')) {
    const { withSession } = require(path.join(pkg, 'dist', 'fetch.js'))
    const options = { store: ours(), logger: QUIET }
    const write = withSession(options, (_request, session) => {
      session.data.set('n', session.data.get('n', 0) + 1)
      return Response.json({ n: session.data.get('n') })
    })
    const read = withSession(options, (_request, session) => Response.json({ n: session.data.get('n', null) }))
    app.get('/write', (c) => write(c.req.raw))
    app.get('/read', (c) => read(c.req.raw))
  } else {
    const { sessionMiddleware, MemoryStore } = await import('hono-sessions')
    app.use(
      '*',
      sessionMiddleware({
        store: new MemoryStore(),
        encryptionKey: COOKIE_SECRET,
        expireAfterSeconds: 3600,
        cookieOptions: { path: '/', httpOnly: true, sameSite: 'Lax' },
      }),
    )
    app.get('/write', (c) => {
      const session = c.get('session')
      session.set('n', (session.get('n') ?? 0) + 1)
      return c.json({ n: session.get('n') })
    })
    app.get('/read', (c) => c.json({ n: c.get('session').get('n') ?? null }))
  }
  return createAdaptorServer({ fetch: app.fetch })
}

async function serve(name, options) {
  const server = await makeServer(name, options)
  server.keepAliveTimeout = 60_000
  listen(server)
}

/** Listens on a free loopback port, prints it, and answers the parent's CPU-time queries (IPC). */
function listen(server) {
  process.on('message', (m) => {
    if (m === 'cpu') process.send({ cpu: process.cpuUsage() })
  })
  // --cpu-prof writes its profile on a normal exit only.
  process.on('SIGTERM', () => process.exit(0))
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })))
}

// ---- load side ---------------------------------------------------------------------------

/** Spawns a child and resolves with it once a stdout line matches `ready`. */
function spawnUntil(cmd, args, ready, what, ipc = false) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])] })
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

/** The server process's CPU time so far (user + system), in µs. */
function serverCpu(child) {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m.cpu.user + m.cpu.system))
    child.send('cpu')
  })
}

/** C clients for `ms` after a warm-up: requests per second, latency percentiles (ns), and the
 *  server's CPU time per request (µs; far less sensitive to other load on the machine). */
async function drive(child, port, urlPath, cookies, { warmupMs, measureMs }) {
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
  const cpu0 = await serverCpu(child)
  const start = process.hrtime.bigint()
  stopAt = Date.now() + measureMs
  await Promise.all(cookies.map((_, i) => loop(i)))
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = (await serverCpu(child)) - cpu0
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return {
    rps: latencies.length / seconds,
    cpuUs: cpu / latencies.length,
    p50Ns: percentile(latencies, 50),
    p99Ns: percentile(latencies, 99),
    n: latencies.length,
  }
}

async function runOne(name, { pkg, tmp, redisPort, pgPort, timing, writeFirst }) {
  const dir = fs.mkdtempSync(path.join(tmp, 'http-'))
  const prof = process.env.BENCH_HTTP_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_HTTP_PROF] : []
  const { child, match } = await spawnUntil(
    process.execPath,
    [...prof, SELF, 'serve', name, JSON.stringify({ pkg, dir, redisPort, pgPort })],
    /\{"port":(\d+)\}/,
    `server ${name}`,
    true,
  )
  try {
    const port = Number(match[1])
    // One session per client, created by a first write.
    const cookies = await Promise.all(Array.from({ length: CLIENTS }, () => request(undefined, port, '/write')))
    if (!name.endsWith('/none') && cookies.some((c) => c === null)) throw new Error(`${name}: no session cookie`)
    // Phases alternate by round: neither always meets the machine's load at the same moment.
    const out = {}
    const phases = (process.env.BENCH_HTTP_PHASES ?? 'read,write').split(',')
    for (const phase of writeFirst ? [...phases].reverse() : phases)
      out[phase] = await drive(child, port, `/${phase}`, cookies, timing)
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
  // The CI smoke (BENCH_SMOKE=1) only checks that every stack serves: the shortest windows.
  const timing =
    process.env.BENCH_SMOKE === '1'
      ? { warmupMs: 100, measureMs: 250 }
      : quick
        ? { warmupMs: 300, measureMs: 1000 }
        : { warmupMs: 1000, measureMs: 3000 }
  // BENCH_HTTP_ONLY=a,b: only these contenders (profiling); ratios need both of their rows.
  const only = process.env.BENCH_HTTP_ONLY?.split(',')
  const names = Object.keys(HTTP_CONTENDERS).filter((n) => only === undefined || only.includes(n))
  const results = [] // results[r][name] = { read, write }
  try {
    for (let r = 0; r < rounds; r++) {
      const round = {}
      for (const name of names.map((_, i) => names[(i + r) % names.length])) {
        round[name] = await runOne(name, { pkg, tmp, redisPort, pgPort, timing, writeFirst: r % 2 === 1 })
        const show = ([p, m]) => `${p} ${Math.round(m.rps)} req/s, ${m.cpuUs.toFixed(1)} µs CPU/req`
        log(`    ${name}: ${Object.entries(round[name]).map(show).join('; ')}`)
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
    const of = (phase, key) => median(results.map((round) => round[name][phase]?.[key] ?? NaN))
    // p99 added by the session: this stack's p99 minus its framework's no-session p99, per round.
    const base = `${name.split('/')[0]}/none`
    const added = (phase) =>
      names.includes(base) && base !== name
        ? median(results.map((round) => round[name][phase]?.p99Ns - round[base][phase]?.p99Ns))
        : NaN
    const row = { name, label: HTTP_CONTENDERS[name] }
    for (const phase of ['read', 'write']) {
      row[phase] = {
        rps: of(phase, 'rps'),
        p50Ns: of(phase, 'p50Ns'),
        p99Ns: of(phase, 'p99Ns'),
        addedP99Ns: added(phase),
        cpuUs: of(phase, 'cpuUs'),
      }
    }
    return row
  })
  const ratio = (a, b, phase) => median(results.map((round) => round[a][phase]?.rps / round[b][phase]?.rps))
  const ratios = HTTP_RATIOS.filter(([a, b]) => names.includes(a) && names.includes(b)).map(
    ([a, b, label, readTarget, writeTarget]) => ({
      label,
      read: ratio(a, b, 'read'),
      write: ratio(a, b, 'write'),
      readTarget,
      writeTarget,
    }),
  )
  return { rows, ratios, markdown: toMarkdown(rows, ratios, { rounds, quick }) }
}

function toMarkdown(rows, ratios, { rounds, quick }) {
  const ms = (ns) => (Number.isNaN(ns) ? '—' : (ns / 1e6).toFixed(2))
  const num = (x) => (Number.isNaN(x) ? '—' : String(Math.round(x)))
  const times = (x, target) =>
    Number.isNaN(x)
      ? '—'
      : `${x.toFixed(2)}×${target == null ? '' : x >= target ? ` (≥ ${target} ✓)` : ` (< ${target} ✗)`}`
  const lines = [
    `### HTTP: whole requests (${CLIENTS} keep-alive clients, one session each, ${rounds} rounds${quick ? ', quick' : ''}, medians)`,
    '',
    `Run ${new Date().toISOString()}, Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}. ` +
      'Each server in its own process. `read`: the request reads its session and changes nothing; `write`: it ' +
      'increments a counter. express-session with its default cookie (no maxAge), resave and saveUninitialized ' +
      'false. `+p99`: the p99 latency added by the session (this p99 minus the same framework without one). ' +
      "`CPU µs`: the server process's CPU time per request.",
    '',
    '| stack | read req/s | read p50 ms | read +p99 ms | read CPU µs | write req/s | write p50 ms | write +p99 ms | write CPU µs |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      ({ label, read: r, write: w }) =>
        `| ${label} | ${num(r.rps)} | ${ms(r.p50Ns)} | ${ms(r.addedP99Ns)} | ${num(r.cpuUs)} | ${num(w.rps)} | ${ms(w.p50Ns)} | ${ms(w.addedP99Ns)} | ${num(w.cpuUs)} |`,
    ),
    '',
    '| ratio (req/s, median of per-round ratios; targets in brackets) | read | write |',
    '|---|---:|---:|',
    ...ratios.map((r) => `| ${r.label} | ${times(r.read, r.readTarget)} | ${times(r.write, r.writeTarget)} |`),
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
    if (!quick && !process.env.BENCH_HTTP_ONLY) fs.writeFileSync(path.join(ROOT, 'bench', 'results-http.md'), markdown)
  }
}
