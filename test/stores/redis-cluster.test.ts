// RedisSessionStore on a real 3-master Redis Cluster, through each client's cluster mode
// (node-redis createCluster, ioredis Cluster): sessions land on every master and every call finds
// them there; dump scans every master; redirections that never settle (MOVED back and forth), a
// cluster that is down (CLUSTERDOWN) and a killed master reject with SessionStoreUnavailableError
// within commandTimeout instead of hanging or leaking a client error.
import { Cluster } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { generateSessionId, storageName } from '../../lib/core/ids'
import { SWAP } from '../../lib/stores/redis-scripts'
import { RedisSessionStore } from '../../lib/stores/redis-store'
import { CLIENT_KINDS, connectClient, connectCluster, type TestClient } from '../helpers/redis-clients'
import { startRedisCluster, waitForClusterState, type RedisClusterServers } from '../helpers/redis-cluster'
import { haveRedisBinaries } from '../helpers/redis-suite'

const SECRET = 'a redis-cluster test secret, 32+ chars long'
type Raw = ReturnType<typeof createClient>

/** Resolves with how long `call` took to reject with SessionStoreUnavailableError. */
async function rejectsUnavailable(call: Promise<unknown>): Promise<number> {
  const t = Date.now()
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SessionStoreUnavailableError)
  expect((err as SessionStoreUnavailableError).code).toBe('ERR_SESSION_STORE_UNAVAILABLE')
  return Date.now() - t
}

if (haveRedisBinaries('redis-cluster.test', { 'redis-server': 'redis-server', 'redis-cli': 'redis-tools' })) {
  for (const kind of CLIENT_KINDS) {
    describe(`RedisSessionStore on a 3-master Redis Cluster through ${kind}`, () => {
      let cluster: RedisClusterServers
      let tc: TestClient
      let raw: Raw[] // one plain connection per node, for inspection
      const make = (o: Record<string, unknown> = {}) =>
        new RedisSessionStore({ client: tc.client, secret: SECRET, prefix: 'c:', commandTimeout: 1_000, ...o })

      /** The index of the node serving `key` (other nodes answer MOVED). */
      async function owner(key: string): Promise<number> {
        for (let i = 0; i < raw.length; i++) {
          try {
            await raw[i].sendCommand(['EXISTS', key])
            return i
          } catch {
            /* MOVED: not this node */
          }
        }
        throw new Error(`no node serves ${key}`)
      }

      beforeAll(async () => {
        cluster = await startRedisCluster()
        raw = cluster.ports.map((port) =>
          createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } }),
        )
        for (const r of raw) r.on('error', () => {})
        await Promise.all(raw.map((r) => r.connect()))
        tc = await connectCluster(kind, cluster.ports)
      }, 60_000)
      afterAll(async () => {
        await tc?.close()
        for (const r of raw ?? []) if (r.isOpen) r.destroy()
        await cluster?.stop()
      })

      it('sessions spread over every master; get, save, delete and dump see them all', async () => {
        const store = make()
        expect(store.clientKind).toBe(`${kind} cluster`)
        const sessions = await Promise.all(Array.from({ length: 60 }, (_, i) => store.create({ identity: `u${i}` })))
        const perNode = [0, 0, 0]
        for (const s of sessions) perNode[await owner(store.prefix + storageName(s.id))]++
        expect(perNode.every((n) => n > 0)).toBe(true)
        expect((await Promise.all(raw.map((r) => r.dbSize()))).every((n) => n > 0)).toBe(true)

        for (const s of sessions) expect((await store.get(s.id))?.avatar.identity).toBe(s.avatar.identity)
        const dump = await store.dump()
        expect(new Set(dump.sessions.map((r) => r.id))).toEqual(new Set(sessions.map((s) => s.id)))

        const one = (await store.get(sessions[7].id))!
        one.data.set('cart', [1])
        await store.save(one)
        expect((await store.get(one.id))!.data.get('cart')).toEqual([1])
        expect(await store.delete(sessions[8].id)).toBe(true)
        expect(await store.get(sessions[8].id)).toBeNull()

        // a second store restores the dump onto every master
        const copy = make({ prefix: 'c2:' })
        expect(await copy.restore(await store.dump())).toBe(59)
        expect((await copy.dump()).sessions.length).toBe(59)
      })

      if (kind === 'ioredis') {
        // ioredis prefixes every command's keys with keyPrefix, but not SCAN's pattern nor its replies.
        it('with keyPrefix, dump scans every master for the prefixed keys and restore brings them back', async () => {
          const prefixed = new Cluster(
            cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
            { keyPrefix: 'app:', redisOptions: { maxRetriesPerRequest: 1 } },
          )
          prefixed.on('error', () => {})
          try {
            await new Promise<void>((resolve, reject) => {
              prefixed.once('ready', resolve)
              prefixed.once('end', () => reject(new Error('ioredis cluster ended before ready')))
            })
            const store = new RedisSessionStore({ client: prefixed, secret: SECRET, prefix: 'kp:' })
            const sessions = await Promise.all(
              Array.from({ length: 30 }, (_, i) => store.create({ identity: `k${i}` })),
            )
            const perNode = [0, 0, 0]
            for (const s of sessions) perNode[await owner(`app:kp:${storageName(s.id)}`)]++
            expect(perNode.every((n) => n > 0)).toBe(true)
            const dump = await store.dump()
            expect(new Set(dump.sessions.map((r) => r.id))).toEqual(new Set(sessions.map((s) => s.id)))
            const copy = new RedisSessionStore({ client: prefixed, secret: SECRET, prefix: 'kp2:' })
            expect(await copy.restore(dump)).toBe(30)
            expect((await copy.dump()).sessions).toHaveLength(30)
            expect((await copy.get(sessions[3].id))?.avatar.identity).toBe('k3')
          } finally {
            prefixed.disconnect()
          }
        })
      }

      it('a logged-in save is one round trip, its mark read going to another node than the swap', async () => {
        // Every command the store sends, grouped into round trips (a send after a reply starts one).
        const trips: string[][] = []
        let answered = true
        const note = (args: readonly unknown[]) => {
          if (answered) trips.push([])
          answered = false
          const name = String(args[0]).toUpperCase()
          trips[trips.length - 1].push(
            name === 'EVALSHA' ? (String(args[1]) === SWAP.sha ? 'SWAP' : 'INDEX_ADD') : name,
          )
        }
        const done = <T>(p: Promise<T>) => p.finally(() => (answered = true))
        const c = tc.client as unknown as Record<string, unknown>
        const wrap = (name: string, f: (...a: unknown[]) => Promise<unknown>) =>
          name === 'sendCommand' // node-redis cluster: (key, readonly, args, options)
            ? (...a: unknown[]) => (note(a[2] as unknown[]), done(f.apply(c, a)))
            : (...a: unknown[]) => (note(a), done(f.apply(c, a))) // ioredis: (command, ...args)
        const view = new Proxy(c, {
          get(target, prop) {
            const v = Reflect.get(target, prop, target)
            if (typeof v !== 'function') return v
            return prop === 'sendCommand' || prop === 'call' || prop === 'callBuffer'
              ? wrap(prop, v as never)
              : (v as (...a: unknown[]) => unknown).bind(target)
          },
        })
        const store = make({ client: view })
        const indexName = (who: string) =>
          (store as unknown as { indexNames(identity: string): string[] }).indexNames(who)[0]
        let s = await store.create({ identity: 'u0' })
        for (
          let i = 1;
          (await owner(`c:rev:${indexName(`u${i - 1}`)}`)) === (await owner(`c:${storageName(s.id)}`));
          i++
        )
          s = await store.create({ identity: `u${i}` })
        const copy = (await store.get(s.id))!
        copy.data.set('n', 1)
        expect(await store.save(copy)).toBe(true) // the nodes learn the scripts
        copy.data.set('n', 2)
        trips.length = 0
        expect(await store.save(copy)).toBe(true)
        expect(trips).toEqual([['GET', 'INDEX_ADD', 'SWAP']])
        expect((await make().get(s.id))?.data.get('n')).toBe(2)
      })

      it('listSessions and revokeSessions see sessions on every master; concurrent saves keep every change', async () => {
        const store = make({ prefix: 'ci:' })
        const mine = await Promise.all(Array.from({ length: 24 }, () => store.create({ identity: 'grace' })))
        const other = await store.create({ identity: 'heidi' })
        const perNode = [0, 0, 0]
        for (const s of mine) perNode[await owner(store.prefix + storageName(s.id))]++
        expect(perNode.every((n) => n > 0)).toBe(true)
        expect(new Set((await store.listSessions('grace')).map((x) => x.id))).toEqual(new Set(mine.map((s) => s.id)))
        expect(await store.revokeSessions('grace', { except: mine[0].id })).toBe(23)
        expect((await store.listSessions('grace')).map((x) => x.id)).toEqual([mine[0].id])
        for (const s of mine.slice(1)) expect(await store.get(s.id)).toBeNull()
        expect((await store.get(other.id))?.id).toBe(other.id)

        // compare-and-swap on a cluster: 20 concurrent copies, each its own path
        const copies = await Promise.all(Array.from({ length: 20 }, () => store.get(other.id)))
        copies.forEach((c, i) => c!.data.set(`p${i}`, i))
        expect(await Promise.all(copies.map((c) => store.save(c!)))).toEqual(Array(20).fill(true))
        const final = (await store.get(other.id))!
        for (let i = 0; i < 20; i++) expect(final.data.get(`p${i}`)).toBe(i)
      })

      it('a plain (non-cluster) client that reaches the wrong node gets MOVED: SessionStoreUnavailableError', async () => {
        const first = await connectClient(kind, cluster.ports[0])
        try {
          const store = new RedisSessionStore({
            client: first.client,
            secret: SECRET,
            prefix: 'c:',
            commandTimeout: 1_000,
          })
          let id = generateSessionId()
          while ((await owner(store.prefix + storageName(id))) === 0) id = generateSessionId()
          expect(await rejectsUnavailable(store.get(id))).toBeLessThan(1_500)
        } finally {
          await first.close()
        }
      })

      it('a MOVED storm (two nodes each naming the other as owner) rejects within commandTimeout', async () => {
        const store = make()
        const ids = await Promise.all(raw.map(async (r) => String(await r.sendCommand(['CLUSTER', 'MYID']))))
        // an empty slot of node 0 (a slot holding keys cannot be reassigned)
        let id = generateSessionId()
        for (;;) {
          const key = store.prefix + storageName(id)
          if (
            (await owner(key)) === 0 &&
            Number(
              await raw[0].sendCommand([
                'CLUSTER',
                'COUNTKEYSINSLOT',
                String(await raw[0].sendCommand(['CLUSTER', 'KEYSLOT', key])),
              ]),
            ) === 0
          )
            break
          id = generateSessionId()
        }
        const slot = String(await raw[0].sendCommand(['CLUSTER', 'KEYSLOT', store.prefix + storageName(id)]))
        await raw[0].sendCommand(['CLUSTER', 'SETSLOT', slot, 'NODE', ids[1]]) // node 1 still says node 0
        try {
          expect(await rejectsUnavailable(store.get(id))).toBeLessThan(1_500)
          expect(await rejectsUnavailable(store.delete(id))).toBeLessThan(1_500)
        } finally {
          await raw[0].sendCommand(['CLUSTER', 'SETSLOT', slot, 'NODE', ids[0]])
        }
        // settled again: the slot works
        await waitForClusterState(cluster.ports, 'ok')
        const s = await retryUntil(() => store.create())
        expect((await store.get(s.id))?.id).toBe(s.id)
      })

      it('a killed master: every call rejects with SessionStoreUnavailableError within commandTimeout, never hangs', async () => {
        const store = make()
        const sessions = await Promise.all(Array.from({ length: 30 }, () => store.create()))
        const on = await Promise.all(sessions.map((s) => owner(store.prefix + storageName(s.id))))
        const unhandled: unknown[] = []
        const onUnhandled = (reason: unknown) => unhandled.push(reason)
        process.on('unhandledRejection', onUnhandled)
        try {
          await cluster.nodes[2].kill()
          // right away: the dead node's keys fail (connection lost), the others may still answer
          for (const s of sessions.filter((_, i) => on[i] === 2).slice(0, 3)) {
            expect(await rejectsUnavailable(store.get(s.id))).toBeLessThan(1_500)
          }
          // once the survivors declare the cluster down, every key fails (CLUSTERDOWN)
          await waitForClusterState(cluster.ports.slice(0, 2), 'fail')
          for (const s of [sessions.find((_, i) => on[i] === 0)!, sessions.find((_, i) => on[i] === 1)!]) {
            expect(await rejectsUnavailable(store.get(s.id))).toBeLessThan(1_500)
          }
          expect(await rejectsUnavailable(store.create())).toBeLessThan(1_500)
          expect(await rejectsUnavailable(store.dump())).toBeLessThan(2_500)
          await new Promise((r) => setTimeout(r, 50))
          expect(unhandled).toEqual([])
        } finally {
          process.off('unhandledRejection', onUnhandled)
        }
      })
    })
  }
}

/** `f()`, retried while it rejects with SessionStoreUnavailableError (a slot map settling), up to 5 s. */
async function retryUntil<T>(f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5_000
  for (;;) {
    try {
      return await f()
    } catch (err) {
      if (!(err instanceof SessionStoreUnavailableError) || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}
