// "Log out everywhere" at the edges, over every store: after revokeSessions resolves, no session
// of that identity that existed when it was called reads back from any store instance, whatever
// the identity index holds (a key rotated since the session was indexed, an identity with many
// sessions, an index lost or unreadable during a sweep, a writer saving the same session all the
// while). The index serves listing, and keeps every live session listed.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SessionConflictError } from '../../lib/core/errors'
import { storageName } from '../../lib/core/ids'
import type { Session } from '../../lib/session/session'
import { FileSessionStore } from '../../lib/stores/file-store'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { PostgresSessionStore } from '../../lib/stores/postgres-store'
import { INDEX_ADD } from '../../lib/stores/redis-scripts'
import { RedisSessionStore } from '../../lib/stores/redis-store'
import type { SessionStore } from '../../lib/stores/store'
import { connectClient, type TestClient } from '../helpers/redis-clients'
import { startRedisServer, type RedisServer } from '../helpers/redis-server'
import { haveRedisBinaries } from '../helpers/redis-suite'
import { needs } from '../helpers/ci'
import { findPostgres, startPostgresServer, type PostgresServer } from '../helpers/postgres-server'
import pg from 'pg'

const K1 = 'revocation test key number one, 32+ chars'
const K2 = 'revocation test key number two, 32+ chars'
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-revoke-'))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

type KeyOpts = { secret: string } | { secrets: string[] }

/** A backend two store instances can share (two app servers); `open` makes one instance. */
interface Backend {
  open(keys?: KeyOpts, extra?: Record<string, unknown>): SessionStore
  /** Drops every identity index entry behind the stores' backs (backends kept outside the process). */
  loseIndex?(): Promise<void>
}

interface Kind {
  name: string
  rotates: boolean
  /** Its index lives outside the process, where it can be lost behind the store's back. */
  external: boolean
  backend(): Backend
}

let server: RedisServer | undefined
let client: TestClient | undefined
const redisOk = haveRedisBinaries('revocation.test', { 'redis-server': 'redis-server' })
if (redisOk) {
  beforeAll(async () => {
    server = await startRedisServer()
    client = await connectClient('node-redis', server.port)
  })
  afterAll(async () => {
    await client?.close()
    await server?.stop()
  })
}

let n = 0
const opened: SessionStore[] = []
afterAll(async () => {
  await Promise.allSettled(opened.map((s) => s.close()))
})
function track<T extends SessionStore>(s: T): T {
  opened.push(s)
  return s
}

const kinds: Kind[] = [
  {
    name: 'MemorySessionStore',
    rotates: false,
    external: false,
    backend() {
      const store = track(new MemorySessionStore({ sweepInterval: 0 }))
      return { open: () => store }
    },
  },
  {
    name: 'FileSessionStore',
    rotates: true,
    external: true,
    backend() {
      const dir = path.join(root, `d${n++}`)
      return {
        open: (keys = { secret: K1 }, extra = {}) =>
          track(new FileSessionStore({ dir, sweepInterval: 0, ...keys, ...extra })),
        loseIndex: async () => {
          for (const f of fs.readdirSync(dir)) if (f.startsWith('ix-')) fs.rmSync(path.join(dir, f))
        },
      }
    },
  },
]
if (redisOk) {
  kinds.push({
    name: 'RedisSessionStore',
    rotates: true,
    external: true,
    backend() {
      const prefix = `rv${n++}:`
      return {
        open: (keys = { secret: K1 }, extra = {}) =>
          track(new RedisSessionStore({ client: client!.client, prefix, ...keys, ...extra })),
        loseIndex: async () => {
          const c = client!.client as unknown as { sendCommand(args: string[]): Promise<unknown> }
          const keys = (await c.sendCommand(['KEYS', `${prefix}idx:*`])) as string[]
          if (keys.length > 0) await c.sendCommand(['DEL', ...keys])
        },
      }
    },
  })
}

// PostgreSQL: one server, and a table per backend made ready beforehand (open() is synchronous).
const pgOk = needs(findPostgres(), 'PostgreSQL (apt-get install postgresql)')
let pgServer: PostgresServer | undefined
let pool: pg.Pool | undefined
const pgTables: string[] = []
if (pgOk) {
  beforeAll(async () => {
    pgServer = await startPostgresServer()
    pool = new pg.Pool({ connectionString: pgServer.url, max: 10 })
    pool.on('error', () => {})
    for (let i = 0; i < 12; i++) {
      pgTables.push(`rv${i}`)
      await pool.query(PostgresSessionStore.schema({ table: `rv${i}` }))
    }
  }, 60_000)
  afterAll(async () => {
    await Promise.allSettled(opened.map((s) => s.close()))
    await pool?.end()
    await pgServer?.stop()
  })
  kinds.push({
    name: 'PostgresSessionStore',
    rotates: true,
    external: true,
    backend() {
      const table = pgTables.shift()
      if (table === undefined) throw new Error('revocation.test: prepare more PostgreSQL tables')
      return {
        open: (keys = { secret: K1 }, extra = {}) =>
          track(new PostgresSessionStore({ client: pool!, table, sweepInterval: 0, ...keys, ...extra })),
        loseIndex: async () => {
          await pool!.query(`UPDATE "${table}" SET identity_hash = NULL`)
        },
      }
    },
  })
}

const ids = (list: { id: string }[]) => list.map((s) => s.id).sort()
async function readable(store: SessionStore, sessions: Session[]): Promise<string[]> {
  const out: string[] = []
  for (const s of sessions) if ((await store.get(s.id)) !== null) out.push(s.id)
  return out.sort()
}

for (const kind of kinds) {
  describe(`revocation that holds at the edges: ${kind.name}`, () => {
    it('after revokeSessions resolves, no session of the identity reads back from any instance; a later login does', async () => {
      const backend = kind.backend()
      const a = backend.open()
      const b = backend.open()
      const alice = await Promise.all([
        a.create({ identity: 'alice' }),
        b.create({ identity: 'alice' }),
        a.create({ identity: 'alice' }),
      ])
      const bob = await a.create({ identity: 'bob' })
      expect(await a.revokeSessions('alice')).toBe(3)
      expect(await readable(a, alice)).toEqual([])
      expect(await readable(b, alice)).toEqual([])
      expect(await b.get(bob.id)).not.toBeNull()
      const again = await b.create({ identity: 'alice' })
      expect(await a.get(again.id)).not.toBeNull()
      expect(ids(await a.listSessions('alice'))).toEqual([again.id])
    })

    it('except keeps one session, and a copy of it read before the revocation still saves', async () => {
      const backend = kind.backend()
      const a = backend.open()
      const b = backend.open()
      const kept = await a.create({ identity: 'alice' })
      const other = await a.create({ identity: 'alice' })
      const keptCopy = (await b.get(kept.id))!
      const otherCopy = (await b.get(other.id))!
      expect(await a.revokeSessions('alice', { except: kept.id })).toBe(1)
      keptCopy.data.set('after', true)
      expect(await b.save(keptCopy)).toBe(true)
      otherCopy.data.set('after', true)
      expect(await b.save(otherCopy)).toBe(false)
      expect((await a.get(kept.id))?.data.get('after')).toBe(true)
      expect(await a.get(other.id)).toBeNull()
      expect(ids(await b.listSessions('alice'))).toEqual([kept.id])
    })

    if (kind.external) {
      it('a session the index lost is still revoked', async () => {
        const backend = kind.backend()
        const a = backend.open()
        const alice = [await a.create({ identity: 'alice' }), await a.create({ identity: 'alice' })]
        await backend.loseIndex!()
        await a.revokeSessions('alice')
        expect(await readable(a, alice)).toEqual([])
        expect(await readable(backend.open(), alice)).toEqual([])
      })
    }

    it('40 sessions of one identity under a 2 KiB maxBytes: all listed, all revoked', async () => {
      const backend = kind.backend()
      const a = backend.open(undefined, { maxBytes: 2048 })
      const alice: Session[] = []
      for (let i = 0; i < 40; i++) alice.push(await a.create({ identity: 'alice' }))
      expect(ids(await a.listSessions('alice'))).toEqual(ids(alice))
      expect(await a.revokeSessions('alice')).toBe(40)
      expect(await readable(a, alice)).toEqual([])
    })

    it('10 000 sessions of one identity list and revoke', async () => {
      const backend = kind.backend()
      const a = backend.open()
      const now = Date.now()
      const records = Array.from({ length: 10_000 }, (_, i) => ({
        id: `s${String(i).padStart(5, '0')}-${'x'.repeat(8)}`,
        meta: { createdAt: now, lastAccess: now, ttl: 3_600_000 },
        auth: { identity: 'carol' },
        data: {},
      }))
      expect(await a.restore({ version: 1, sessions: records })).toBe(10_000)
      const listed = await a.listSessions('carol')
      expect(listed).toHaveLength(10_000)
      expect(await a.revokeSessions('carol', { except: records[0].id })).toBe(9_999)
      expect(ids(await a.listSessions('carol'))).toEqual([records[0].id])
      for (const i of [1, 5_000, 9_999]) expect(await a.get(records[i].id)).toBeNull()
    }, 180_000)

    it('a writer saving the same session in a loop cannot make revokeSessions miss it', async () => {
      const backend = kind.backend()
      const a = backend.open()
      const b = backend.open()
      for (let round = 0; round < 5; round++) {
        const s = await a.create({ identity: 'alice' })
        let stop = false
        let saves = 0
        let started!: () => void
        const running = new Promise<void>((r) => (started = r))
        const writer = (async () => {
          while (!stop) {
            const copy = await b.get(s.id)
            if (copy === null) return
            copy.data.set('n', saves++)
            const saved = await b.save(copy)
            started()
            if (!saved) return
          }
        })()
        await running // the revocation starts once the writer has saved at least once
        const outcome = await a.revokeSessions('alice').catch((err: unknown) => err)
        stop = true
        await writer
        // Where it cannot finish it says so; it never resolves with the session still live.
        if (!(outcome instanceof SessionConflictError)) expect(outcome).toBe(1)
        expect(await a.get(s.id)).toBeNull()
        expect(await b.get(s.id)).toBeNull()
        expect(await a.listSessions('alice')).toEqual([])
      }
    })

    if (kind.rotates) {
      it('sessions re-sealed under a new key are listed and revoked once the old key is dropped', async () => {
        const backend = kind.backend()
        const old = backend.open({ secret: K1 })
        const alice = [
          await old.create({ identity: 'alice' }),
          await old.create({ identity: 'alice' }),
          await old.create({ identity: 'alice' }),
        ]
        const rotating = backend.open({ secrets: [K2, K1] })
        for (const s of alice) expect(await rotating.get(s.id)).not.toBeNull() // re-sealed under K2
        const current = backend.open({ secret: K2 })
        expect(await readable(current, alice)).toEqual(ids(alice))
        expect(ids(await current.listSessions('alice'))).toEqual(ids(alice))
        expect(await current.revokeSessions('alice')).toBe(3)
        expect(await readable(current, alice)).toEqual([])
      })

      it('a copy read under a key since dropped does not bring its session back on save', async () => {
        const backend = kind.backend()
        const old = backend.open({ secret: K1 })
        const s = await old.create({ identity: 'alice' })
        const copy = (await old.get(s.id))!
        const current = backend.open({ secret: K2 })
        expect(await current.get(s.id)).toBeNull() // sealed under K1 only: unreadable here, gone
        copy.data.set('late', true)
        expect(await current.save(copy)).toBe(false)
        expect(await current.get(s.id)).toBeNull()
      })

      it('a revocation made while keys rotate holds on an instance that has only the new key', async () => {
        const backend = kind.backend()
        const rotating = backend.open({ secrets: [K2, K1] })
        const s = await backend.open({ secret: K1 }).create({ identity: 'alice' })
        await rotating.get(s.id)
        await rotating.revokeSessions('alice')
        expect(await backend.open({ secret: K2 }).get(s.id)).toBeNull()
      })
    }
  })
}

describe('FileSessionStore: an I/O error during a sweep is not evidence that a session is gone', () => {
  it('sessions whose files could not be read during purgeExpired stay listed and revocable', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test changes file owners: run it as root (CI does)')
    const dir = path.join(root, `io${n++}`)
    const store = track(new FileSessionStore({ dir, secret: K1, sweepInterval: 0 }))
    const alice = [
      await store.create({ identity: 'alice' }),
      await store.create({ identity: 'alice' }),
      await store.create({ identity: 'alice' }),
    ]
    const files = alice.map((s) => path.join(dir, storageName(s.id)))
    // Owned by someone else for the sweep: the native layer refuses to touch them.
    for (const f of files) fs.chownSync(f, 65534, 65534)
    try {
      await store.purgeExpired()
    } finally {
      for (const f of files) fs.chownSync(f, 0, 0)
    }
    expect(ids(await store.listSessions('alice'))).toEqual(ids(alice))
    expect(await store.revokeSessions('alice')).toBe(3)
    expect(await readable(store, alice)).toEqual([])
  })
})

describe('RedisSessionStore: a re-seal whose pipelined index refresh fails', () => {
  it.runIf(redisOk)(
    'still indexes the session under the new key, so it is listed once the old key is gone',
    async () => {
      const prefix = `rf${n++}:`
      const s = await track(new RedisSessionStore({ client: client!.client, prefix, secret: K1 })).create({
        identity: 'alice',
      })
      let failed = 0
      // The index refresh sent beside the re-seal's swap is refused once.
      const flaky = client!.intercept(
        'EVALSHA',
        async (args) => {
          if (args[1] === INDEX_ADD.sha && failed++ === 0) throw new Error('injected: INDEX_ADD refused')
        },
        'before',
      )
      const rotating = track(new RedisSessionStore({ client: flaky, prefix, secrets: [K2, K1] }))
      expect(await rotating.get(s.id)).not.toBeNull() // re-sealed under K2
      expect(failed).toBeGreaterThan(0)
      const current = track(new RedisSessionStore({ client: client!.client, prefix, secret: K2 }))
      expect(ids(await current.listSessions('alice'))).toEqual([s.id])
    },
  )
})
