// A model-based test of every store: fast-check generates sequences of create, get, stale-copy
// save (path changes, logins), delete, revokeSessions (with and without `except`, alone or racing
// other requests that keep saving), listSessions, key rotation, purgeExpired, a moving clock and
// injected I/O errors, runs them against MemorySessionStore, FileSessionStore (two instances on
// one directory) and RedisSessionStore (two instances, node-redis and ioredis, on a real
// redis-server), and checks each result against a small reference model (store-model/model.ts):
// - after revokeSessions(identity, { except }) resolves, none of that identity's other sessions
//   reads back from any instance; listSessions(identity) is exactly its live sessions;
// - a deleted session never reads back; a stale copy of a deleted or revoked session saves false;
// - get returns the latest saved data (a stale copy's own changed paths win, others are kept);
// - an I/O error makes an operation reject (or is tolerated) but never loses a live session.
//
// MODEL_OPS (default 500) operations per store, in runs seeded from MODEL_SEED (printed). A
// failure prints the seed, the shrunk sequence and the trace of its run, and how to replay it
// (MODEL_SEED, MODEL_PATH, MODEL_REPLAY). MODEL_SKIP leaves operation kinds out (to look past
// one finding at the next); MODEL_SHRINK_MS bounds shrinking (default 60 s; MODEL_NO_SHRINK=1:
// none); MODEL_TRACE=1 prints every run's trace; MODEL_DIR puts the file store's directories
// elsewhere (default: /dev/shm where there is one). The clock is vitest's fake Date (timers stay real), moved only by
// the model.
import fc from 'fast-check'
import { afterAll, beforeAll, describe, it, vi } from 'vitest'
import type { Redis } from 'ioredis'
import type { createClient } from 'redis'

import { needs } from '../helpers/ci'
import { connectClient, type TestClient } from '../helpers/redis-clients'
import { startRedisServer, type RedisServer } from '../helpers/redis-server'
import { findPostgres, startPostgresServer, type PostgresServer } from '../helpers/postgres-server'
import pg from 'pg'
import postgres from 'postgres'
import { PostgresSessionStore } from '../../lib/stores/postgres-store'
import { IS_ROOT, rmTree } from './helpers'
import {
  fileBackend,
  memoryBackend,
  postgresBackend,
  redisBackend,
  tempRoot,
  type Backend,
  type StoreConfig,
  type StoreKind,
} from './store-model/backends'
import { commandArb, counter, finalCheck } from './store-model/commands'
import { Model, Real } from './store-model/model'

const OPS = Number(process.env.MODEL_OPS ?? 500)
const SEED = Number(process.env.MODEL_SEED ?? 2205)
const PATH = process.env.MODEL_PATH
const REPLAY = process.env.MODEL_REPLAY
const NO_SHRINK = process.env.MODEL_NO_SHRINK === '1'
// Comma list of: create, createMany, get, change, login, save, delete, revoke, race, list,
// sweep, advance, rotate, faults.
const SKIP = new Set((process.env.MODEL_SKIP ?? '').split(',').filter(Boolean))
// Long enough for a big index, a rotation and a sweep in one run (a run averages ~20 commands:
// the lengths spread up to this, and commands whose precondition fails are dropped).
const MAX_COMMANDS = 60
const SHRINK_MS = Number(process.env.MODEL_SHRINK_MS ?? 60_000)
const TIMEOUT = Math.max(180_000, OPS * 150 + SHRINK_MS)
for (const [name, value] of Object.entries({ MODEL_OPS: OPS, MODEL_SEED: SEED, MODEL_SHRINK_MS: SHRINK_MS })) {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`)
}

const configArb: fc.Arbitrary<StoreConfig> = fc.record({
  ttl: fc.constantFrom(3_600_000, 3 * 3_600_000),
  touchAfter: fc.constantFrom(60_000, 10 * 60_000),
  maxBytes: fc.constantFrom(undefined, 2048),
})

async function runModel(
  kind: StoreKind,
  make: (config: StoreConfig, run: number) => Backend,
  faults: boolean,
): Promise<void> {
  const started = performance.now()
  const opsBefore = counter.ops
  let run = 0
  // Shrinking re-runs whole sequences (slow on a disk that fsyncs): past SHRINK_MS after the
  // first failure, every further candidate is skipped and the smallest failure so far reported.
  let failedAt: number | null = null
  let cut = false
  // Commands first: they shrink before the options (which could swap one finding for another).
  const property = fc.asyncProperty(
    fc.commands([commandArb(kind, { faults, skip: SKIP })], {
      maxCommands: MAX_COMMANDS,
      size: 'max',
      ...(REPLAY === undefined ? {} : { replayPath: REPLAY }),
    }),
    configArb,
    async (cmds, config) => {
      if (failedAt !== null && performance.now() - failedAt > SHRINK_MS) {
        cut = true
        fc.pre(false)
      }
      vi.useFakeTimers({ toFake: ['Date'] })
      let backend: Backend | null = null
      try {
        backend = make(config, run++)
        const model = new Model(kind, config, backend.instances.length, Date.now())
        const real = new Real(backend)
        await fc.asyncModelRun(() => ({ model, real }), cmds)
        await finalCheck(model, real)
        if (process.env.MODEL_TRACE) console.log(model.trace.join('\n'))
      } catch (err) {
        failedAt ??= performance.now()
        throw err
      } finally {
        vi.useRealTimers()
        await backend?.dispose()
      }
    },
  )
  // Batches of runs, seeds SEED, SEED + 1, ..., until OPS operations ran (a replay: one run).
  let seed = SEED
  let runs = 0
  for (;;) {
    const opsSoFar = counter.ops - opsBefore
    const batch = PATH !== undefined ? 1 : Math.max(1, Math.ceil((OPS - opsSoFar) / 20))
    const details = await fc.check(property, {
      seed,
      numRuns: batch,
      endOnFailure: NO_SHRINK,
      ...(PATH === undefined ? {} : { path: PATH }),
    })
    runs += details.numRuns
    const ops = counter.ops - opsBefore
    const shrunk = cut ? ` (shrinking included, stopped after ${SHRINK_MS} ms)` : ' (shrinking included)'
    const status = `seed ${SEED}${seed === SEED ? '' : `..${seed}`}, ${runs} runs, ${ops} operations${details.failed ? shrunk : ''}`
    if (details.failed) {
      const err = details.errorInstance
      const report = `${fc.defaultReportMessage(details) ?? 'failed'}\n${err instanceof Error ? err.message : String(err)}`
      const replay = /replayPath="([^"]*)"/.exec(report)?.[1]
      console.error(
        `store-model[${kind}] FAILED after ${status}\nreplay: MODEL_SEED=${seed} MODEL_PATH=${details.counterexamplePath} MODEL_REPLAY='${replay}'\n${report}`,
      )
      throw new Error(`store-model[${kind}] (MODEL_SEED=${seed}): ${report}`)
    }
    if (ops >= OPS || PATH !== undefined) {
      const ms = Math.round(performance.now() - started)
      console.log(`store-model[${kind}]: ${status}, ${ms} ms${faults ? '' : ', no injected errors'}`)
      return
    }
    seed++
  }
}

describe('store model: random operation sequences against a reference model', () => {
  let root: string
  let server: RedisServer | null = null
  let clients: TestClient[] = []

  beforeAll(async () => {
    root = tempRoot()
  })
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await server?.stop()
    rmTree(root)
  })

  it(
    `MemorySessionStore (${OPS} operations)`,
    async () => {
      await runModel('memory', (config) => memoryBackend(config), false)
    },
    TIMEOUT,
  )

  it(
    `FileSessionStore, two instances on one directory (${OPS} operations)`,
    async () => {
      // Injected read errors need root (chown to another uid); elsewhere the run goes without them.
      await runModel('file', (config) => fileBackend(config, root), needs(IS_ROOT, 'root (to chown session files)'))
    },
    TIMEOUT,
  )

  it(
    `RedisSessionStore, node-redis and ioredis instances on one redis-server (${OPS} operations)`,
    async () => {
      server = await startRedisServer()
      clients = await Promise.all([connectClient('node-redis', server.port), connectClient('ioredis', server.port)])
      const nodeRedis = clients[0].client as unknown as ReturnType<typeof createClient>
      const ioredis = clients[1].client as unknown as Redis
      await runModel('redis', (config, run) => redisBackend(config, nodeRedis, ioredis, `model${run}:`), true)
    },
    TIMEOUT,
  )

  it.runIf(needs(findPostgres(), 'PostgreSQL (apt-get install postgresql)'))(
    `PostgresSessionStore, node-postgres and postgres.js instances on one table (${OPS} operations)`,
    async () => {
      const pgServer: PostgresServer = await startPostgresServer()
      const pool = new pg.Pool({ connectionString: pgServer.url, max: 4 })
      pool.on('error', () => {})
      const sql = postgres(pgServer.url, { max: 4, onnotice: () => {} })
      try {
        await pool.query(PostgresSessionStore.schema({ table: 'model' }))
        await runModel(
          'postgres',
          (config) => postgresBackend(config, [pool, sql], 'model', (q) => pool.query(q)),
          true,
        )
      } finally {
        await Promise.allSettled([pool.end(), sql.end({ timeout: 1 })])
        await pgServer.stop()
      }
    },
    TIMEOUT,
  )
})
