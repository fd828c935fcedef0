// `npm run bench` (hooked from run.mjs) or `node bench/postgres.mjs`: one session read and one
// save through PostgreSQL, against one server this script starts (Debian's postgresql: initdb
// and postgres as the postgres user, a temp directory, a free loopback port, stopped by pid):
// a raw node-postgres SELECT of the sealed bytes (the wire), connect-pg-simple get/set (plaintext
// JSON, what express-session users run), and PostgresSessionStore get/save through node-postgres
// and through postgres.js. Each round is a fresh process in which the contenders take turns in
// short slices, each on its own one-connection pool; ratios are taken round by round, medians
// reported.
//   node bench/postgres.mjs               the whole run; prints a table, writes bench/results-postgres.md
//   node bench/postgres.mjs round <port>  one round (internal)
// Environment: BENCH_QUICK=1, BENCH_ROUNDS=n, BENCH_PKG (a snapshot of the build; default the repo),
// PG_BIN (default: Debian's newest /usr/lib/postgresql/<major>/bin).
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
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

const TABLE = 'bench_sessions'
const SID_CPS = 'bench-cps-1'

export const PG_CONTENDERS = {
  'pg-raw-select': { label: 'raw node-postgres SELECT of the same sealed bytes (the wire)' },
  'connect-pg-simple-get': { label: 'connect-pg-simple get (plaintext JSON, no encryption)' },
  'ss-pg-get': { label: 'sealed-session PostgresSessionStore.get() (node-postgres)' },
  'ss-pgjs-get': { label: 'sealed-session PostgresSessionStore.get() (postgres.js)' },
  'connect-pg-simple-set': { label: 'connect-pg-simple set (plaintext JSON upsert)' },
  'ss-pg-save': { label: 'sealed-session PostgresSessionStore.save() of one changed path (node-postgres, CAS)' },
  'ss-pgjs-save': { label: 'sealed-session PostgresSessionStore.save() of one changed path (postgres.js, CAS)' },
}
export const PG_RATIOS = [
  {
    num: 'ss-pg-get',
    den: 'connect-pg-simple-get',
    target: 1,
    label: 'PostgresSessionStore.get (node-postgres) ÷ connect-pg-simple get (time, same server)',
  },
  {
    num: 'ss-pgjs-get',
    den: 'connect-pg-simple-get',
    label: 'PostgresSessionStore.get (postgres.js) ÷ connect-pg-simple get (time)',
  },
  { num: 'ss-pg-get', den: 'pg-raw-select', label: 'PostgresSessionStore.get (node-postgres) ÷ raw SELECT (time)' },
  {
    num: 'ss-pg-save',
    den: 'connect-pg-simple-set',
    label: 'PostgresSessionStore.save (node-postgres) ÷ connect-pg-simple set (time)',
  },
  {
    num: 'ss-pgjs-save',
    den: 'connect-pg-simple-set',
    label: 'PostgresSessionStore.save (postgres.js) ÷ connect-pg-simple set (time)',
  },
]

const dist = (m) => require(path.join(process.env.BENCH_PKG ?? ROOT, 'dist', m))
const url = (port) => `postgres://postgres@127.0.0.1:${port}/postgres`

function pool(port) {
  const { Pool } = require('pg')
  const p = new Pool({ connectionString: url(port), max: 1 })
  p.on('error', () => {})
  return p
}

const cpsRow = (userId, options) => ({
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

// ---- one contender (child process) -----------------------------------------------------

async function connectPgSimple(p) {
  const session = require('express-session')
  const PgStore = require('connect-pg-simple')(session)
  return new PgStore({ pool: p, tableName: 'cps_session', pruneSessionInterval: false })
}

const promisify = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))))

/** One contender's op on its own connection: resolves to () => Promise. */
async function setup(name, port) {
  const p = pool(port)
  const [{ id }] = (await p.query("SELECT value AS id FROM bench_meta WHERE key = 'id'")).rows
  let op
  let close = () => p.end()
  const ours = (client) => {
    const { PostgresSessionStore } = dist('index.js')
    return new PostgresSessionStore({
      client,
      secret: SECRET,
      namespace: NAMESPACE,
      table: TABLE,
      touchAfter: TTL_MS,
      sweepInterval: 0,
    })
  }
  if (name === 'pg-raw-select') {
    const name64 = (await p.query(`SELECT name FROM ${TABLE} LIMIT 1`)).rows[0].name
    op = async () =>
      (await p.query({ name: 'raw', text: `SELECT envelope FROM ${TABLE} WHERE name = $1`, values: [name64] })).rows[0]
  } else if (name === 'connect-pg-simple-get' || name === 'connect-pg-simple-set') {
    const store = await connectPgSimple(p)
    if (name.endsWith('get')) op = () => promisify((cb) => store.get(SID_CPS, cb))
    else {
      const sess = await promisify((cb) => store.get(SID_CPS, cb))
      let n = 0
      op = async () => {
        sess.visits = n++
        await promisify((cb) => store.set(SID_CPS, sess, cb))
        return sess
      }
    }
  } else if (name.startsWith('ss-')) {
    let client = p
    if (name.startsWith('ss-pgjs')) {
      const { default: postgres } = await import('postgres')
      client = postgres(url(port), { max: 1, onnotice: () => {} })
      const sql = client
      close = async () => {
        await p.end()
        await sql.end({ timeout: 1 })
      }
    }
    const store = ours(client)
    if (name.endsWith('get')) op = () => store.get(id)
    else {
      // One copy kept and saved again and again: each save is one CAS UPDATE of the next version.
      const session = await store.get(id)
      let n = 0
      op = async () => {
        session.data.set(`visits.${name}`, n++)
        if (!(await store.save(session))) throw new Error('save found no session')
        return session
      }
    }
  } else throw new Error(`unknown contender ${name}`)
  const check = await op()
  if (check === null || check === undefined) throw new Error(`${name}: the fixture is missing`)
  return { op, close }
}

/** One round: every contender, in turns of 25 ms, one operation in flight, each timed. */
export async function round(port) {
  const names = Object.keys(PG_CONTENDERS)
  const all = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await setup(n, port)])))
  return timeInSlices(all, sliceTiming())
}

// ---- the run: server, fixtures, rounds ---------------------------------------------------

function pgBin() {
  if (process.env.PG_BIN) return process.env.PG_BIN
  let majors = []
  try {
    majors = fs.readdirSync('/usr/lib/postgresql').map(Number).filter(Number.isInteger)
  } catch {}
  return `/usr/lib/postgresql/${majors.length ? Math.max(...majors) : 15}/bin`
}

export async function startServer() {
  const bin = pgBin()
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-bench-pg-'))
  const data = path.join(root, 'data')
  const sock = path.join(root, 'sock')
  fs.mkdirSync(sock)
  spawnSync('chown', ['-R', 'postgres:postgres', root])
  const as = (cmd, args, opts) => spawnSync('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], opts)
  const init = as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`initdb failed (is postgresql installed, and are we root?):\n${init.stderr}`)
  const port = await freePort()
  const child = spawn(
    'runuser',
    [
      '-u',
      'postgres',
      '--',
      path.join(bin, 'postgres'),
      '-D',
      data,
      '-k',
      sock,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
    ],
    { stdio: 'ignore' },
  )
  const failed = new Promise((_, reject) => child.once('error', reject))
  const stop = () => {
    try {
      const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
      process.kill(pid, 'SIGINT')
    } catch {}
    fs.rmSync(root, { recursive: true, force: true })
  }
  process.once('exit', stop)
  const p = pool(port)
  for (let i = 0; i < 500; i++) {
    const up = await Promise.race([
      failed,
      p.query('SELECT 1').then(
        () => true,
        () => false,
      ),
    ])
    if (up) {
      await p.end()
      return { port, stop }
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  stop()
  throw new Error('postgres did not start')
}

export async function makeFixtures(port) {
  const p = pool(port)
  const { PostgresSessionStore } = dist('index.js')
  const { userId, options } = sessionRecordInput()
  const store = new PostgresSessionStore({
    client: p,
    secret: SECRET,
    namespace: NAMESPACE,
    table: TABLE,
    touchAfter: TTL_MS,
    sweepInterval: 0,
  })
  await store.init()
  const session = await store.create({ userId, name: options.userName, roles: options.data.roles }, { ttl: TTL_MS })
  for (const k of ['locale', 'theme', 'cart', 'flags', 'csrf']) session.data.set(k, options.data[k])
  await store.save(session)
  await store.close()
  await p.query('CREATE TABLE bench_meta (key text PRIMARY KEY, value text)')
  await p.query("INSERT INTO bench_meta VALUES ('id', $1)", [session.id])
  // connect-pg-simple's own table (its table.sql) and what express-session would store for the same user
  await p.query(
    fs
      .readFileSync(require.resolve('connect-pg-simple/table.sql'), 'utf8')
      .replaceAll('"session"', 'cps_session')
      .replaceAll('"IDX_session_expire"', 'cps_session_expire'),
  )
  const cps = await connectPgSimple(p)
  await promisify((cb) => cps.set(SID_CPS, cpsRow(userId, options), cb))
  const sizes = (
    await p.query(
      `SELECT (SELECT octet_length(envelope) FROM ${TABLE} LIMIT 1) AS sealed, (SELECT octet_length(sess::text) FROM cps_session) AS plain`,
    )
  ).rows[0]
  await p.end()
  return { sealedBytes: sizes.sealed, plainBytes: sizes.plain }
}

function runRound(port) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'round', String(port)], {
    encoding: 'utf8',
    timeout: 300_000,
  })
  if (r.status !== 0) throw new Error(`postgres bench round failed:\n${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

const fmtNs = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} µs`)

/** The whole PostgreSQL run; returns { rows, ratios, markdown }. */
export async function runPostgresBench(log = (...a) => console.error(...a)) {
  const server = await startServer()
  try {
    const sizes = await makeFixtures(server.port)
    const names = Object.keys(PG_CONTENDERS)
    const perRound = []
    for (let r = 0; r < networkRounds(); r++) {
      const round = runRound(server.port)
      perRound.push(round)
      log(`postgres round ${r + 1}/${networkRounds()}: ${names.map((n) => `${n} ${fmtNs(round[n].p50Ns)}`).join(', ')}`)
    }
    const rows = names.map((name) => ({
      name,
      label: PG_CONTENDERS[name].label,
      opsPerSec: median(perRound.map((r) => r[name].opsPerSec)),
      p50Ns: median(perRound.map((r) => r[name].p50Ns)),
      p99Ns: median(perRound.map((r) => r[name].p99Ns)),
    }))
    const ratios = PG_RATIOS.map((q) => {
      const value = median(perRound.map((r) => r[q.num].p50Ns / r[q.den].p50Ns))
      return { ...q, value, met: q.target !== undefined ? value <= q.target : null }
    })
    const markdown = [
      `## PostgreSQL reads and saves (one local PostgreSQL, ${networkRounds()} rounds, p50 latency, one operation in flight, one-connection pools, contenders in alternating 25 ms slices)`,
      '',
      `Sealed envelope ${sizes.sealedBytes} bytes; connect-pg-simple plaintext JSON ${sizes.plainBytes} bytes. Saves: ours is a compare-and-swap UPDATE of the next version (seal included); connect-pg-simple's an upsert of plaintext JSON.`,
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
      ...ratios.map(
        (q) =>
          `| ${q.label} | ${q.value.toFixed(2)}× | ${q.target !== undefined ? `≤ ${q.target}× ${q.met ? 'met' : 'MISSED'}` : ''} |`,
      ),
      '',
    ].join('\n')
    return { rows, ratios, markdown }
  } finally {
    server.stop()
  }
}

/** bench/results-postgres.md: the PostgreSQL rows of the latest full run. */
export function writePostgresReport(markdown) {
  const when = `${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, Node ${process.version}`
  fs.writeFileSync(
    path.join(ROOT, 'bench', 'results-postgres.md'),
    `# PostgreSQL bench results (${when})\n\n${markdown}`,
  )
}

const [arg1, arg2] = process.argv.slice(2)
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (arg1 === 'round') {
    console.log(JSON.stringify(await round(Number(arg2))))
  } else {
    const { markdown } = await runPostgresBench()
    console.log(markdown)
    // A quick run is a check, not a result: the published file stays.
    if (process.env.BENCH_QUICK !== '1') writePostgresReport(markdown)
  }
}
