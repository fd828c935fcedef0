// The systems under test of the store model (store-model.test.ts): every store kind behind one
// small interface — its instances (two app servers on one backend, for files, Redis and
// PostgreSQL), key
// rotation by reopening them with new secrets, injected I/O errors, and cleanup.
//
// Injected errors: the file store's native layer refuses a file we do not own, so a session or
// index file chowned to another uid (as root) cannot be read until its owner is restored; a Redis
// client is wrapped so that chosen commands reject, without being sent, during one operation.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { Redis } from 'ioredis'
import type { createClient } from 'redis'

import { storageName } from '../../../lib/core/ids'
import { FileSessionStore } from '../../../lib/stores/file-store'
import { MemorySessionStore } from '../../../lib/stores/memory-store'
import { PostgresSessionStore, type PostgresClientLike } from '../../../lib/stores/postgres-store'
import { RedisSessionStore, type RedisClientLike } from '../../../lib/stores/redis-store'
import type { SessionStore } from '../../../lib/stores/store'
import { wrapCommands } from '../../helpers/redis-clients'

export type StoreKind = 'memory' | 'file' | 'redis' | 'postgres'

/** What one run configures: the store options that change what the model has to follow. */
export interface StoreConfig {
  ttl: number
  touchAfter: number
  /** undefined: the store's default (1 MiB). Small values make an identity's index outgrow it. */
  maxBytes: number | undefined
}

/** An injected I/O error, for the duration of one operation. */
export type Fault =
  /** File store: these sessions' files (and, with `indexes`, every identity index file) belong to uid 65534. */
  | { kind: 'chown'; indexes: boolean }
  /** Redis: `command` ('script' = EVALSHA/EVAL) rejects `times` times after `skip` calls went through.
   *  PostgreSQL: the same, for reads (GETRANGE), writes (script) and index removals (ZREM). */
  | { kind: 'redis'; command: 'GETRANGE' | 'script' | 'ZREM'; skip: number; times: number }

export interface Backend {
  readonly kind: StoreKind
  /** The store instances sharing this backend (memory: one). */
  readonly instances: SessionStore[]
  /** Reopens every instance with these secrets (current first). */
  rotate(secrets: string[]): Promise<void>
  /** Injects `fault` on instance `inst` (chown: on the files of the sessions `ids`). */
  inject(fault: Fault, inst: number, ids: readonly string[]): Promise<void>
  /** Ends the fault; true when it was hit (Redis: a command was refused; chown: always true). */
  clear(): Promise<boolean>
  dispose(): Promise<void>
}

export const NOBODY = 65534

/** The secret of key generation `gen`. */
export function secretOf(gen: number): string {
  return `store-model secret of key generation ${gen}, over 32 characters`
}

export function memoryBackend(config: StoreConfig): Backend {
  const store = new MemorySessionStore({
    ttl: config.ttl,
    touchAfter: config.touchAfter,
    maxBytes: config.maxBytes,
    sweepInterval: 0,
  })
  return {
    kind: 'memory',
    instances: [store],
    rotate: () => Promise.reject(new Error('MemorySessionStore has no keys to rotate')),
    inject: () => Promise.reject(new Error('MemorySessionStore does no I/O')),
    clear: async () => false,
    dispose: () => store.close(),
  }
}

export function fileBackend(config: StoreConfig, root: string): Backend {
  const dir = fs.mkdtempSync(path.join(root, 'run-'))
  const open = (secrets: string[]) =>
    new FileSessionStore({
      dir,
      ...(secrets.length === 1 ? { secret: secrets[0] } : { secrets }),
      ttl: config.ttl,
      touchAfter: config.touchAfter,
      maxBytes: config.maxBytes,
      sweepInterval: 0,
    })
  const instances: SessionStore[] = [open([secretOf(0)]), open([secretOf(0)])]
  let chowned: string[] = []
  return {
    kind: 'file',
    instances,
    async rotate(secrets) {
      await Promise.all(instances.map((s) => s.close!()))
      instances.splice(0, instances.length, open(secrets), open(secrets))
    },
    async inject(fault, _inst, ids) {
      if (fault.kind !== 'chown') throw new Error(`file store: no ${fault.kind} fault`)
      const names = ids.map(storageName)
      if (fault.indexes) names.push(...fs.readdirSync(dir).filter((n) => n.startsWith('index-')))
      for (const name of names) {
        try {
          fs.chownSync(path.join(dir, name), NOBODY, NOBODY)
          chowned.push(name)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
      }
    },
    async clear() {
      for (const name of chowned) {
        try {
          fs.chownSync(path.join(dir, name), process.getuid!(), process.getgid!())
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
      }
      chowned = []
      return true
    },
    async dispose() {
      await Promise.all(instances.map((s) => s.close!()))
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The commands a Redis client is about to send, refused while armed. */
class FaultPlan {
  command: string | null = null
  skip = 0
  times = 0
  hits = 0

  arm(command: string, skip: number, times: number): void {
    Object.assign(this, { command, skip, times, hits: 0 })
  }

  disarm(): boolean {
    const hit = this.hits > 0
    Object.assign(this, { command: null, skip: 0, times: 0, hits: 0 })
    return hit
  }

  /** An error to reject `cmd` with, or null to send it. */
  refuse(cmd: string): Error | null {
    if (this.command === null) return null
    const c = cmd.toUpperCase()
    if (!(this.command === 'script' ? c === 'EVALSHA' || c === 'EVAL' : c === this.command)) return null
    if (this.skip > 0) {
      this.skip--
      return null
    }
    if (this.times <= 0) return null
    this.times--
    this.hits++
    return Object.assign(new Error(`injected fault: ${c} lost its connection`), { code: 'ECONNRESET' })
  }
}

type NodeRedis = ReturnType<typeof createClient>

/** `c` with the commands `plan` refuses rejected, unsent. */
function faulty(c: NodeRedis | Redis, plan: FaultPlan): RedisClientLike {
  return wrapCommands(c, (cmd, _args, next) => {
    const err = plan.refuse(cmd)
    return err !== null ? Promise.reject(err) : next()
  })
}

/** Two instances on one Redis: one through node-redis, one through ioredis; a fresh prefix per run. */
export function redisBackend(config: StoreConfig, nodeRedis: NodeRedis, ioredis: Redis, prefix: string): Backend {
  const plans = [new FaultPlan(), new FaultPlan()]
  const clients = [faulty(nodeRedis, plans[0]), faulty(ioredis, plans[1])]
  const open = (i: number, secrets: string[]) =>
    new RedisSessionStore({
      client: clients[i],
      prefix,
      ...(secrets.length === 1 ? { secret: secrets[0] } : { secrets }),
      ttl: config.ttl,
      touchAfter: config.touchAfter,
      maxBytes: config.maxBytes,
    })
  const instances: SessionStore[] = [open(0, [secretOf(0)]), open(1, [secretOf(0)])]
  return {
    kind: 'redis',
    instances,
    async rotate(secrets) {
      await Promise.all(instances.map((s) => s.close!()))
      instances.splice(0, instances.length, open(0, secrets), open(1, secrets))
    },
    async inject(fault, inst) {
      if (fault.kind !== 'redis') throw new Error(`Redis store: no ${fault.kind} fault`)
      plans[inst].arm(fault.command, fault.skip, fault.times)
    },
    async clear() {
      const hits = plans.map((p) => p.disarm())
      return hits.some(Boolean)
    },
    async dispose() {
      await Promise.all(instances.map((s) => s.close!()))
      // Only this run's keys: the prefix is unique to the run.
      let cursor = '0'
      do {
        const [next, keys] = (await nodeRedis.sendCommand([
          'SCAN',
          cursor,
          'MATCH',
          `${prefix}*`,
          'COUNT',
          '1000',
        ])) as [string, string[]]
        cursor = next
        if (keys.length > 0) await nodeRedis.sendCommand(['DEL', ...keys])
      } while (cursor !== '0')
    },
  }
}

/** Which Redis-named fault a PostgreSQL statement falls under: reads ('GETRANGE'), writes
 *  ('EVAL', as 'script'), index removals ('ZREM'). */
function statementKind(text: string): string {
  if (/^UPDATE \S+ SET identity_hash = NULL/.test(text)) return 'ZREM'
  if (/^(SELECT|WITH)/.test(text)) return 'GETRANGE'
  if (/^(INSERT|UPDATE|DELETE)/.test(text)) return 'EVAL'
  return 'OTHER'
}

type PgQuery = (config: { text: string }) => Promise<unknown>
type PgUnsafe = (text: string, ...rest: unknown[]) => Promise<unknown>

/** `client` (a node-postgres Pool or a postgres.js sql) with the statements `plan` refuses rejected, unsent. */
function faultyPg(client: PostgresClientLike, plan: FaultPlan): PostgresClientLike {
  const c = client as unknown as Record<string, unknown>
  if (typeof client === 'function') {
    const unsafe = (c.unsafe as PgUnsafe).bind(client)
    return Object.assign(() => {}, {
      unsafe: (text: string, ...rest: unknown[]) => {
        const err = plan.refuse(statementKind(text))
        return err !== null ? Promise.reject(err) : unsafe(text, ...rest)
      },
      begin: c.begin,
      end: c.end,
    }) as unknown as PostgresClientLike
  }
  const query = (c.query as PgQuery).bind(client)
  return {
    totalCount: 0,
    idleCount: 0,
    listenerCount: () => 1,
    connect: c.connect,
    query: (config: { text: string }) => {
      const err = plan.refuse(statementKind(config.text))
      return err !== null ? Promise.reject(err) : query(config)
    },
  } as unknown as PostgresClientLike
}

/**
 * Two instances on one PostgreSQL table, one through node-postgres and one through postgres.js,
 * each client wrapped so that chosen statements reject (a lost connection) without being sent.
 * `table` exists already (runs are sequential): dispose empties it.
 */
export function postgresBackend(
  config: StoreConfig,
  clients: [PostgresClientLike, PostgresClientLike],
  table: string,
  truncate: (sql: string) => Promise<unknown>,
): Backend {
  const plans = [new FaultPlan(), new FaultPlan()]
  const wrapped = [faultyPg(clients[0], plans[0]), faultyPg(clients[1], plans[1])]
  const open = (i: number, secrets: string[]) =>
    new PostgresSessionStore({
      client: wrapped[i],
      table,
      ...(secrets.length === 1 ? { secret: secrets[0] } : { secrets }),
      ttl: config.ttl,
      touchAfter: config.touchAfter,
      maxBytes: config.maxBytes,
      sweepInterval: 0,
    })
  const instances: SessionStore[] = [open(0, [secretOf(0)]), open(1, [secretOf(0)])]
  return {
    kind: 'postgres',
    instances,
    async rotate(secrets) {
      await Promise.all(instances.map((s) => s.close!()))
      instances.splice(0, instances.length, open(0, secrets), open(1, secrets))
    },
    async inject(fault, inst) {
      if (fault.kind !== 'redis') throw new Error(`PostgreSQL store: no ${fault.kind} fault`)
      plans[inst].arm(fault.command, fault.skip, fault.times)
    },
    async clear() {
      return plans.map((p) => p.disarm()).some(Boolean)
    },
    async dispose() {
      await Promise.all(instances.map((s) => s.close!()))
      await truncate(`TRUNCATE "${table}", "${table}_revocations"`)
    },
  }
}

/**
 * A temp root for the file store's run directories: MODEL_DIR, else /dev/shm where there is one
 * (tmpfs: the model is about what the store promises, not fsync latency, and shrinking re-runs
 * whole sequences), else the OS temp directory.
 */
export function tempRoot(): string {
  const base = process.env.MODEL_DIR ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir())
  return fs.mkdtempSync(path.join(base, 'ss-model-'))
}
