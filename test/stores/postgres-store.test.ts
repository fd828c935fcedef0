// PostgresSessionStore against a real PostgreSQL (Debian's postgresql, started by the test in a
// temp directory on a free loopback port), through each supported client (node-postgres and
// postgres.js): the shared contract, then what only a shared, encrypted SQL store must show
// (nothing in clear in a dump, many writer processes, two app servers, the purge, hostile rows,
// outages and connections given back, the schema and init() races, the express-session adapter).
// Inspection goes through a separate node-postgres pool. In CI (CI=true) a missing PostgreSQL
// fails the suite; locally the suite is skipped with a message.
import type { AddressInfo } from 'node:net'
import * as http from 'node:http'
import express from 'express'
import session from 'express-session'
import pg from 'pg'
import postgres from 'postgres'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { storageName } from '../../lib/core/ids'
import { ExpressSessionStore } from '../../lib/http/express'
import { PostgresSessionStore, PURGE_BATCH, type PostgresSessionStoreOptions } from '../../lib/stores/postgres-store'
import { needs } from '../helpers/ci'
import { requireDist } from '../helpers/dist'
import { findPostgres, startPostgresServer, type PostgresServer } from '../helpers/postgres-server'
import { lastJson, runNode } from '../reliability/helpers'
import { describeStoreContract } from './contract'

const SECRET = 'a postgres-store test secret, 32+ chars long'
const KINDS = ['pg', 'postgres.js'] as const
type Kind = (typeof KINDS)[number]
const installed = needs(findPostgres(), 'PostgreSQL (apt-get install postgresql; tests run as root)')

interface TestClient {
  client: PostgresSessionStoreOptions['client']
  close(): Promise<void>
}

function connect(kind: Kind, url: string, max = 10): TestClient {
  if (kind === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max })
    pool.on('error', () => {}) // a restart breaks idle connections: without a listener, the process ends
    return { client: pool, close: () => pool.end() }
  }
  const sql = postgres(url, { max, onnotice: () => {} })
  return { client: sql, close: () => sql.end({ timeout: 1 }) }
}

const quiet = () => {
  const warnings: string[] = []
  return { warnings, logger: { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} } }
}

/** Resolves once the pool has every connection idle again (waits for its 'release' events). */
async function allIdle(pool: pg.Pool): Promise<void> {
  const idle = () => pool.idleCount === pool.totalCount && pool.waitingCount === 0
  if (idle()) return
  await new Promise<void>((resolve, reject) => {
    const guard = setTimeout(
      () => reject(new Error(`pool not idle: ${pool.totalCount} total, ${pool.idleCount} idle`)),
      10_000,
    )
    const check = () => {
      // 'release' fires before the connection is back in the idle list.
      setImmediate(() => {
        if (!idle()) return
        clearTimeout(guard)
        pool.off('release', check)
        pool.off('remove', check)
        resolve()
      })
    }
    pool.on('release', check)
    pool.on('remove', check)
    check()
  })
}

/** A client of `kind` that records the text of every statement the store sends through it. */
function spyStatements(kind: Kind, url: string, seen: string[]): TestClient {
  if (kind === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    pool.on('error', () => {})
    const query = pool.query.bind(pool) as (c: { text: string }) => Promise<unknown>
    ;(pool as unknown as { query: unknown }).query = (c: { text: string }) => {
      seen.push(c.text)
      return query(c)
    }
    return { client: pool, close: () => pool.end() }
  }
  const sql = postgres(url, { max: 2, onnotice: () => {} })
  const unsafe = sql.unsafe.bind(sql)
  ;(sql as unknown as { unsafe: unknown }).unsafe = (...args: Parameters<typeof unsafe>) => {
    seen.push(args[0])
    return unsafe(...args)
  }
  return { client: sql, close: () => sql.end({ timeout: 1 }) }
}

if (!installed) {
  console.warn('[postgres-store.test] PostgreSQL is not installed: skipping (apt-get install postgresql to run it)')
  it.skip('PostgresSessionStore (PostgreSQL not installed)', () => {})
} else {
  let server: PostgresServer
  let admin: pg.Pool // raw access: plants and inspects rows
  let n = 0
  const table = () => `t${process.pid}_${n++}`
  const rows = async (text: string, values: unknown[] = []) => (await admin.query(text, values)).rows

  beforeAll(async () => {
    server = await startPostgresServer()
    admin = new pg.Pool({ connectionString: server.url, max: 4 })
    admin.on('error', () => {})
  }, 60_000)
  afterAll(async () => {
    await admin?.end()
    await server?.stop()
  })

  for (const kind of KINDS)
    describe(`through ${kind}`, () => {
      let tc: TestClient
      let tc2: TestClient
      const stores: PostgresSessionStore[] = []
      const make = async (o: Partial<PostgresSessionStoreOptions> = {}, client = tc.client) => {
        const s = new PostgresSessionStore({ client, secret: SECRET, table: table(), sweepInterval: 0, ...o })
        stores.push(s)
        await s.init()
        return s
      }
      beforeAll(() => {
        tc = connect(kind, server.url)
        tc2 = connect(kind, server.url)
      })
      afterAll(async () => {
        await Promise.allSettled([tc?.close(), tc2?.close()])
      })
      afterEach(async () => {
        await Promise.all(stores.splice(0).map((s) => s.close()))
      })

      describeStoreContract(`PostgresSessionStore (${kind})`, async (opts) => make(opts), {
        // every value of a name column, as anyone with read access to the database sees them
        exposedNames: async (store) => {
          const t = (store as PostgresSessionStore).table
          const found = await rows(
            `SELECT name AS v FROM "${t}" UNION ALL SELECT identity_hash FROM "${t}" WHERE identity_hash IS NOT NULL UNION ALL SELECT identity_hash FROM "${t}_revocations"`,
          )
          return found.map((r) => r.v as string)
        },
      })

      it('shares sessions between two app servers (two pools): list, revoke, and the revoked stay out', async () => {
        const a = await make()
        const b = new PostgresSessionStore({ client: tc2.client, secret: SECRET, table: a.table, sweepInterval: 0 })
        stores.push(b)
        const s1 = await a.create({ identity: 'alice' })
        const s2 = await b.create({ identity: 'alice' })
        const s3 = await a.create({ identity: 'alice' })
        const other = await b.create({ identity: 'bob' })
        expect((await b.listSessions('alice')).map((e) => e.id).sort()).toEqual([s1.id, s2.id, s3.id].sort())
        // An entry lost (the column cleared by hand): the revocation mark still refuses the session.
        await rows(`UPDATE "${a.table}" SET identity_hash = NULL WHERE name = $1`, [storageName(s3.id)])
        expect(await b.revokeSessions('alice', { except: s2.id })).toBe(1)
        expect(await a.get(s1.id)).toBeNull()
        expect(await a.get(s3.id)).toBeNull()
        expect((await a.get(s2.id))?.id).toBe(s2.id)
        expect((await a.get(other.id))?.id).toBe(other.id)
        expect((await a.listSessions('alice')).map((e) => e.id)).toEqual([s2.id])
      })

      it('a get of a logged-in session is one statement, its revocation mark read with the row', async () => {
        const store = await make({ touchAfter: 3_600_000 })
        const s = await store.create({ identity: 'hana' })
        const statements: string[] = []
        const spied = spyStatements(kind, server.url, statements)
        try {
          const reader = new PostgresSessionStore({
            client: spied.client,
            secret: SECRET,
            table: store.table,
            sweepInterval: 0,
            touchAfter: 3_600_000,
          })
          stores.push(reader)
          expect((await reader.get(s.id))?.id).toBe(s.id)
          expect(statements).toHaveLength(1)
          // A row put back after the revocation (a writer that raced it) is refused by that mark.
          const [row] = await rows(`SELECT * FROM "${store.table}" WHERE name = $1`, [storageName(s.id)])
          expect(await store.revokeSessions('hana')).toBe(1)
          await rows(
            `INSERT INTO "${store.table}" (name, envelope, version, expires_at, identity_hash) VALUES ($1, $2, $3, $4, $5)`,
            [row.name, row.envelope, row.version, row.expires_at, row.identity_hash],
          )
          expect(await reader.get(s.id)).toBeNull()
          expect(await rows(`SELECT 1 FROM "${store.table}"`)).toEqual([])
        } finally {
          await spied.close()
        }
      })

      it('a pg_dump shows no session id, identity or data; names are the SHA-256 of the ids', async () => {
        const store = await make()
        const s = await store.create({ identity: 'carol@example.com', name: 'Carol Example' })
        s.data.set('secret', 'plaintext-marker-5c1e')
        await store.save(s)
        await store.create({ identity: 'dave@example.com' })
        await store.revokeSessions('dave@example.com')
        const dump = server.tool('pg_dump', ['-d', 'postgres', '-t', store.table, '-t', `${store.table}_revocations`])
        expect(dump).toContain(storageName(s.id))
        for (const clear of [s.id, 'carol', 'Carol', 'dave', 'plaintext-marker-5c1e', '"meta"', '"data"'])
          expect(dump).not.toContain(clear)
        // bytea as hex: the envelope's bytes are ciphertext, the marker's bytes appear nowhere
        expect(dump).not.toContain(Buffer.from('plaintext-marker').toString('hex'))
        expect(dump).not.toContain(Buffer.from('carol').toString('hex'))
      })

      it('6 processes × 40 saves of their own path: all 240 kept', async () => {
        requireDist()
        const store = await make()
        const s = await store.create()
        const runs = await Promise.all(
          Array.from({ length: 6 }, (_, p) =>
            runNode('postgres-cas-writer.mjs', [server.url, store.table, SECRET, s.id, String(p), '40', kind], {
              timeoutMs: 120_000,
            }),
          ),
        )
        for (const r of runs) {
          expect(r.code, r.stderr).toBe(0)
          const out = lastJson(r) as { saved: number; missing: number; errors: string[] }
          expect(out.errors).toEqual([])
          expect(out.saved).toBe(40)
        }
        const data = (await store.get(s.id))!.data.toJSON() as Record<string, Record<string, number>>
        let kept = 0
        for (let p = 0; p < 6; p++) for (let i = 0; i < 40; i++) if (data[`p${p}`]?.[`i${i}`] === i) kept++
        expect(kept).toBe(240)
      }, 180_000)

      it('expiry is checked on read (the row outlived its expiry) and purgeExpired deletes in batches, one server at a time', async () => {
        const store = await make()
        const live = await store.create()
        const stale = await store.create()
        await rows(`UPDATE "${store.table}" SET expires_at = 1 WHERE name = $1`, [storageName(stale.id)])
        expect(await store.get(stale.id)).toBeNull()
        // read expired, removed then and there
        expect(await rows(`SELECT 1 FROM "${store.table}" WHERE name = $1`, [storageName(stale.id)])).toEqual([])
        // more expired rows than one batch deletes
        const count = PURGE_BATCH * 2 + 500
        await rows(
          `INSERT INTO "${store.table}" (name, envelope, version, expires_at) SELECT encode(sha256(i::text::bytea), 'hex'), '\\x00'::bytea, 1, $1 FROM generate_series(1, $2::int) i`,
          [Date.now() - 1000, count],
        )
        // Another server holding the purge lock: this one leaves the rows alone.
        const holder = await admin.connect()
        try {
          await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [
            `sealed-session:purge:${store.table}`,
          ])
          expect(await store.purgeExpired()).toBe(0)
          expect(Number((await rows(`SELECT count(*) AS c FROM "${store.table}"`))[0].c)).toBe(count + 1)
        } finally {
          await holder.query('SELECT pg_advisory_unlock_all()')
          holder.release()
        }
        expect(await store.purgeExpired()).toBe(count)
        expect((await rows(`SELECT name FROM "${store.table}"`)).map((r) => r.name)).toEqual([storageName(live.id)])
        expect((await store.get(live.id))?.id).toBe(live.id)
      })

      it('hostile rows read as no session, with one warning; a 16 MiB value is never downloaded', async () => {
        const { warnings, logger } = quiet()
        const store = await make({ logger, maxBytes: 4096 })
        const garbage = await store.create()
        const huge = await store.create()
        const forged = await store.create()
        await rows(`UPDATE "${store.table}" SET envelope = '\\xdeadbeef'::bytea WHERE name = $1`, [
          storageName(garbage.id),
        ])
        await rows(`UPDATE "${store.table}" SET envelope = decode(repeat('ab', 16777216), 'hex') WHERE name = $1`, [
          storageName(huge.id),
        ])
        await rows(`UPDATE "${store.table}" SET version = version + 7 WHERE name = $1`, [storageName(forged.id)])
        const [{ attstorage }] = await rows(
          `SELECT attstorage FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'envelope'`,
          [`"${store.table}"`],
        )
        expect(attstorage).toBe('e') // uncompressed: substring() reads only the first chunks
        // What the client received for the envelope: at most maxBytes + 1 bytes.
        let largest = 0
        const spy = (rowsIn: Record<string, unknown>[]) => {
          for (const r of rowsIn) if (r.envelope instanceof Uint8Array) largest = Math.max(largest, r.envelope.length)
        }
        const reader =
          kind === 'pg'
            ? (() => {
                const pool = new pg.Pool({ connectionString: server.url, max: 2 })
                const query = pool.query.bind(pool) as (c: unknown) => Promise<{ rows: Record<string, unknown>[] }>
                ;(pool as unknown as { query: unknown }).query = async (c: unknown) => {
                  const r = await query(c)
                  spy(r.rows)
                  return r
                }
                return { client: pool, close: () => pool.end() }
              })()
            : (() => {
                const sql = postgres(server.url, { max: 2 })
                const unsafe = sql.unsafe.bind(sql)
                ;(sql as unknown as { unsafe: unknown }).unsafe = (...args: Parameters<typeof unsafe>) =>
                  unsafe(...args).then((r) => {
                    spy(r as unknown as Record<string, unknown>[])
                    return r
                  })
                return { client: sql, close: () => sql.end({ timeout: 1 }) }
              })()
        try {
          const spied = new PostgresSessionStore({
            client: reader.client,
            secret: SECRET,
            table: store.table,
            maxBytes: 4096,
            sweepInterval: 0,
            logger,
          })
          stores.push(spied)
          warnings.length = 0
          expect(await spied.get(huge.id)).toBeNull()
          expect(largest).toBe(4097)
          expect(warnings).toHaveLength(1)
          expect(warnings[0]).toMatch(/maxBytes/)
          warnings.length = 0
          expect(await spied.get(garbage.id)).toBeNull()
          expect(warnings).toHaveLength(1)
          warnings.length = 0
          expect(await spied.get(forged.id)).toBeNull()
          expect(warnings).toHaveLength(1)
          // The garbage row does not block the name: a new session under it replaces the row.
          const again = new (await import('../../lib/session/session')).Session(garbage.id, null, 60_000)
          expect(await spied.save(again)).toBe(true)
          expect((await spied.get(garbage.id))?.id).toBe(garbage.id)
          expect((await spied.dump()).sessions.map((r) => r.id)).toContain(garbage.id)
        } finally {
          await reader.close()
        }
      })

      it('a blocked statement rejects within commandTimeout, and every connection goes back to the pool', async () => {
        const pool = new pg.Pool({ connectionString: server.url, max: 3 })
        pool.on('error', () => {})
        const client = kind === 'pg' ? pool : tc.client
        try {
          const store = await make({ commandTimeout: 300 }, client)
          const s = await store.create()
          s.data.set('x', 1)
          const locker = await admin.connect()
          try {
            await locker.query('BEGIN')
            await locker.query(`SELECT 1 FROM "${store.table}" WHERE name = $1 FOR UPDATE`, [storageName(s.id)])
            const t = Date.now()
            await expect(store.save(s)).rejects.toBeInstanceOf(SessionStoreUnavailableError)
            expect(Date.now() - t).toBeLessThan(2_000)
            // A purge batch behind a table lock times out too.
            await locker.query(`LOCK TABLE "${store.table}" IN ACCESS EXCLUSIVE MODE`)
            await expect(store.purgeExpired()).rejects.toBeInstanceOf(SessionStoreUnavailableError)
          } finally {
            await locker.query('ROLLBACK')
            locker.release()
          }
          // Errors the server answers: a purge and an init on a schema that does not exist.
          const bad = new PostgresSessionStore({ client, secret: SECRET, table: 'nosuch.t', sweepInterval: 0 })
          stores.push(bad)
          await expect(bad.init()).rejects.toMatchObject({ code: '3F000' })
          await expect(bad.purgeExpired()).rejects.toMatchObject({ code: '42P01' })
          await expect(bad.get(s.id)).rejects.toMatchObject({ code: '42P01' })
          if (kind === 'pg') await allIdle(pool)
          // Nothing was left holding the purge lock: the next purge takes it.
          expect(await store.purgeExpired()).toBe(0)
          expect((await store.get(s.id))?.id).toBe(s.id)
          if (kind === 'pg') {
            await allIdle(pool)
            expect(pool.totalCount).toBeLessThanOrEqual(3)
          }
          const [{ c }] = await rows(
            `SELECT count(*)::int AS c FROM pg_stat_activity WHERE datname = 'postgres' AND state LIKE 'idle in transaction%'`,
          )
          expect(c).toBe(0)
        } finally {
          await pool.end()
        }
      })

      it('under SERIALIZABLE, concurrent saves that meet serialization failures are retried: every change kept', async () => {
        const strict = connect(kind, `${server.url}?options=-c%20default_transaction_isolation%3Dserializable`, 12)
        try {
          const store = await make({}, strict.client)
          const q = "SELECT current_setting('transaction_isolation') AS level"
          const [{ level }] =
            kind === 'pg'
              ? (await (strict.client as pg.Pool).query(q)).rows
              : await (strict.client as postgres.Sql).unsafe(q)
          expect(level).toBe('serializable')
          for (let round = 0; round < 4; round++) {
            const s = await store.create()
            const copies = await Promise.all(Array.from({ length: 12 }, () => store.get(s.id)))
            copies.forEach((c, i) => c!.data.set(`k${i}`, i))
            expect(await Promise.all(copies.map((c) => store.save(c!)))).toEqual(copies.map(() => true))
            expect(Object.keys((await store.get(s.id))!.data.toJSON()).sort()).toEqual(
              copies.map((_, i) => `k${i}`).sort(),
            )
          }
        } finally {
          await strict.close()
        }
      })

      it('sweepInterval purges expired rows by itself', async () => {
        let purged!: (n: unknown) => void
        const done = new Promise((r) => (purged = r))
        const logger = {
          debug: (m: string, f?: Record<string, unknown>) => m === 'expired sessions purged' && purged(f?.removed),
          info() {},
          warn() {},
          error() {},
        }
        const store = await make({ sweepInterval: 50, logger })
        const s = await store.create()
        await rows(`UPDATE "${store.table}" SET expires_at = 1 WHERE name = $1`, [storageName(s.id)])
        expect(await done).toBe(1)
        expect(await rows(`SELECT 1 FROM "${store.table}"`)).toEqual([])
      })

      it('checks its options and its client', async () => {
        const c = tc.client
        expect(() => new PostgresSessionStore({ client: {} as never, secret: SECRET })).toThrow(
          /node-postgres.*postgres\.js/,
        )
        expect(() => new PostgresSessionStore({ client: null as never, secret: SECRET })).toThrow(TypeError)
        expect(() => new PostgresSessionStore({ client: c } as PostgresSessionStoreOptions)).toThrow(
          /every server.*secret/,
        )
        expect(() => new PostgresSessionStore({ client: c, secret: SECRET, bindToBoot: true } as never)).toThrow(
          /bindToBoot/,
        )
        expect(() => new PostgresSessionStore({ client: c, secret: SECRET, prefix: 'x' } as never)).toThrow(/prefix/)
        for (const bad of ['a;b', 'a.b.c', '1abc', 'a"b', 'x'.repeat(41), '', 'sessions ']) {
          expect(() => new PostgresSessionStore({ client: c, secret: SECRET, table: bad })).toThrow(RangeError)
          expect(() => PostgresSessionStore.schema({ table: bad })).toThrow(/table/)
        }
        expect(() => new PostgresSessionStore({ client: c, secret: SECRET, table: 3 as never })).toThrow(TypeError)
        expect(() => new PostgresSessionStore({ client: c, secret: SECRET, commandTimeout: 0 })).toThrow(RangeError)
        expect(() => new PostgresSessionStore({ client: c, secret: SECRET, sweepInterval: -1 })).toThrow(RangeError)
        const s = new PostgresSessionStore({ client: c, secret: SECRET })
        stores.push(s)
        expect(s.table).toBe('sealed_sessions')
        expect(s.commandTimeout).toBe(2_000)
        expect(s.clientKind).toBe(kind === 'pg' ? 'node-postgres pool' : 'postgres.js')
        if (kind === 'pg') {
          // A pool without an 'error' listener ends the process when an idle connection breaks: said at once.
          const bare = new pg.Pool({ connectionString: server.url })
          const { warnings, logger } = quiet()
          stores.push(new PostgresSessionStore({ client: bare, secret: SECRET, logger }))
          expect(warnings.join('\n')).toMatch(/'error' listener/)
          await bare.end()
        }
      })

      it('init() is idempotent and safe when many app servers start at once; schema() is the same DDL', async () => {
        await rows('CREATE SCHEMA IF NOT EXISTS app')
        const name = `app.${table()}`
        const racers = Array.from(
          { length: 8 },
          (_, i) =>
            new PostgresSessionStore({
              client: i % 2 ? tc.client : tc2.client,
              secret: SECRET,
              table: name,
              sweepInterval: 0,
            }),
        )
        stores.push(...racers)
        await Promise.all(racers.map((s) => s.init()))
        await Promise.all(racers.map((s) => s.init()))
        const s = await racers[0].create({ identity: 'erin' })
        expect((await racers[7].listSessions('erin')).map((e) => e.id)).toEqual([s.id])
        const objects = await rows(
          `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relname LIKE $1 ORDER BY 1`,
          [`${name.slice(4)}%`],
        )
        // Applying schema() to a fresh table yields the same objects, and init() on it changes nothing.
        const other = table()
        await admin.query(PostgresSessionStore.schema({ table: `app.${other}` }))
        const viaSchema = await rows(
          `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relname LIKE $1 ORDER BY 1`,
          [`${other}%`],
        )
        expect(viaSchema.map((r) => String(r.relname).replace(other, 'T'))).toEqual(
          objects.map((r) => String(r.relname).replace(name.slice(4), 'T')),
        )
        const migrated = await make({ table: `app.${other}` })
        expect((await migrated.get((await migrated.create()).id))?.id).toBeDefined()
      })

      it('the express-session adapter over it: a counter across requests, logout removes the row', async () => {
        const store = await make()
        const app = express()
        app.use(
          session({
            secret: 'cookie signing secret',
            resave: false,
            saveUninitialized: false,
            store: new ExpressSessionStore({ store }),
            cookie: { maxAge: 60_000 },
          }),
        )
        app.get('/count', (req, res) => {
          const s = req.session as unknown as { n?: number }
          s.n = (s.n ?? 0) + 1
          res.json({ n: s.n })
        })
        app.post('/logout', (req, res, next) =>
          req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))),
        )
        const srv = http.createServer(app)
        await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
        try {
          const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`
          let cookie = ''
          for (let i = 1; i <= 3; i++) {
            const res = await fetch(`${base}/count`, { headers: cookie ? { cookie } : {} })
            cookie ||= (res.headers.get('set-cookie') ?? '').split(';')[0]
            expect(await res.json()).toEqual({ n: i })
          }
          expect(await rows(`SELECT name FROM "${store.table}"`)).toHaveLength(1)
          await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } })
          expect(await rows(`SELECT name FROM "${store.table}"`)).toHaveLength(0)
          expect(await (await fetch(`${base}/count`, { headers: { cookie } })).json()).toEqual({ n: 1 })
        } finally {
          await new Promise<void>((r) => srv.close(() => r()))
        }
      })
    })

  describe('a server that stops and comes back', () => {
    for (const kind of KINDS)
      it(`rejects with SessionStoreUnavailableError within commandTimeout, then works again (${kind})`, async () => {
        const own = await startPostgresServer()
        const c = connect(kind, own.url, 4)
        const store = new PostgresSessionStore({
          client: c.client,
          secret: SECRET,
          sweepInterval: 0,
          commandTimeout: 1000,
        })
        try {
          await store.init()
          const s = await store.create({ identity: 'frank' })
          await own.halt()
          for (const call of [
            () => store.get(s.id),
            () => store.create(),
            () => store.purgeExpired(),
            () => store.init(),
          ]) {
            const t = Date.now()
            await expect(call()).rejects.toBeInstanceOf(SessionStoreUnavailableError)
            expect(Date.now() - t).toBeLessThan(1_500)
          }
          await own.restart()
          // The first command after the restart may still meet a connection the server closed.
          let back = null
          for (let i = 0; i < 5 && back === null; i++) back = await store.get(s.id).catch(() => null)
          expect(back?.id).toBe(s.id)
          expect((await store.listSessions('frank')).map((e) => e.id)).toEqual([s.id])
          if (kind === 'pg') await allIdle(c.client as pg.Pool)
        } finally {
          await store.close()
          await c.close()
          await own.stop()
        }
      }, 60_000)
  })

  describe('a single node-postgres Client', () => {
    it('serves the store, init and the purge on its one connection', async () => {
      const client = new pg.Client({ connectionString: server.url })
      client.on('error', () => {})
      await client.connect()
      try {
        const store = new PostgresSessionStore({ client, secret: SECRET, table: table(), sweepInterval: 0 })
        expect(store.clientKind).toBe('node-postgres client')
        await store.init()
        const s = await store.create({ identity: 'gina' }, { ttl: 1000 })
        expect((await store.get(s.id))?.id).toBe(s.id)
        await rows(`UPDATE "${store.table}" SET expires_at = 1`)
        expect(await store.purgeExpired()).toBe(1)
        await store.close()
      } finally {
        await client.end()
      }
    })
  })
}
