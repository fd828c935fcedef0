// Concurrency and "log out everywhere" on a real redis-server, through both clients, with two
// stores on two connections standing for two app servers: compare-and-swap saves keep disjoint
// changes of two copies, a late save after a delete writes nothing, a touch never revives a
// deleted session, conflicts are bounded; the identity index lists and revokes sessions, keeps no
// identity in any key, and goes with its sessions.
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { Avatar } from '../../lib/session/avatar'
import { SessionConflictError } from '../../lib/core/errors'
import { storageName } from '../../lib/core/ids'
import { SWAP } from '../../lib/stores/redis-scripts'
import { REDIS_SAVE_ATTEMPTS, RedisSessionStore, type RedisSessionStoreOptions } from '../../lib/stores/redis-store'
import { Session } from '../../lib/session/session'
import { CLIENT_KINDS, connectClient, type TestClient } from '../helpers/redis-clients'
import { startRedisServer, type RedisServer } from '../helpers/redis-server'
import { haveRedisBinaries } from '../helpers/redis-suite'

const SECRET = 'a redis-concurrency test secret, 32+ chars'
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

if (haveRedisBinaries('redis-concurrency.test', { 'redis-server': 'redis-server' })) {
  for (const kind of CLIENT_KINDS) {
    describe(`RedisSessionStore concurrency and identity index (${kind})`, () => {
      let server: RedisServer
      let raw: ReturnType<typeof createClient>
      let c1: TestClient
      let c2: TestClient
      let n = 0
      /** Two stores on two connections sharing one prefix: two app servers. */
      const pair = (o: Partial<RedisSessionStoreOptions> = {}) => {
        const prefix = `cc${n++}:`
        return [c1, c2].map((c) => new RedisSessionStore({ client: c.client, secret: SECRET, prefix, ...o })) as [
          RedisSessionStore,
          RedisSessionStore,
        ]
      }
      const keys = async (prefix: string) => {
        const out: string[] = []
        for await (const page of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) out.push(...page)
        return out
      }

      beforeAll(async () => {
        server = await startRedisServer()
        raw = createClient({ url: server.url })
        raw.on('error', () => {})
        await raw.connect()
        ;[c1, c2] = await Promise.all([connectClient(kind, server.port), connectClient(kind, server.port)])
      })
      afterAll(async () => {
        await Promise.allSettled([c1?.close(), c2?.close(), raw?.close()])
        await server?.stop()
      })

      it('two copies changing different paths: both changes are kept; one path changed by both: the later save wins', async () => {
        const [a, b] = pair()
        const s = await a.create({ identity: 'alice' })
        s.data.set('shared', 0)
        await a.save(s)
        const copyA = (await a.get(s.id))!
        const copyB = (await b.get(s.id))!
        copyA.data.set('cart', [1])
        copyA.data.set('shared', 'A')
        copyB.data.set('theme', 'dark')
        copyB.data.set('shared', 'B')
        expect(await a.save(copyA)).toBe(true)
        expect(await b.save(copyB)).toBe(true) // conflict on the version: its own paths re-applied
        const final = (await a.get(s.id))!
        expect(final.data.get('cart')).toEqual([1])
        expect(final.data.get('theme')).toBe('dark')
        expect(final.data.get('shared')).toBe('B')
      })

      it('many concurrent writers on two connections, each on its own path: every change is there', async () => {
        const [a, b] = pair()
        const s = await a.create()
        const writers = Array.from({ length: 40 }, async (_, i) => {
          const store = i % 2 === 0 ? a : b
          const copy = (await store.get(s.id))!
          copy.data.set(`w${i}`, i)
          return store.save(copy)
        })
        expect(await Promise.all(writers)).toEqual(Array(40).fill(true))
        const final = (await b.get(s.id))!
        for (let i = 0; i < 40; i++) expect(final.data.get(`w${i}`)).toBe(i)
      })

      it('delete, then a late save of a copy read before: false, and the session stays gone', async () => {
        const [a, b] = pair()
        const s = await a.create({ identity: 'bob' })
        const stale = (await b.get(s.id))!
        expect(await a.delete(s.id)).toBe(true)
        stale.data.set('x', 1)
        expect(await b.save(stale)).toBe(false)
        expect(await a.get(s.id)).toBeNull()
        expect(await raw.exists(a.prefix + storageName(s.id))).toBe(0)
      })

      it('a touch after a delete does not revive the session', async () => {
        const [a, b] = pair({ touchAfter: 0 })
        const s = await a.create()
        await sleep(5)
        // b reads (and will touch) while a deletes: whichever lands first, the session ends gone
        const [got] = await Promise.all([b.get(s.id), a.delete(s.id)])
        void got
        expect(await a.get(s.id)).toBeNull()
        expect(await raw.exists(a.prefix + storageName(s.id))).toBe(0)
      })

      it('a session built by hand is inserted only if its id is free', async () => {
        const [a] = pair()
        const s = new Session('my-own-id', null, 60_000)
        s.data.set('v', 1)
        expect(await a.save(s)).toBe(true)
        const again = new Session('my-own-id', null, 60_000)
        again.data.set('v', 2)
        expect(await a.save(again)).toBe(false)
        expect((await a.get('my-own-id'))!.data.get('v')).toBe(1)
      })

      it('conflicts are bounded: a writer that loses every race gets SessionConflictError, and writes nothing', async () => {
        const [a, b] = pair()
        const s = await a.create()
        let bumps = 0
        // Before each compare-and-swap of `slow`, another server saves a newer version.
        const slow = new RedisSessionStore({
          client: c1.intercept(
            'EVALSHA',
            async (args) => {
              if (args[1] !== SWAP.sha) return
              const other = (await b.get(s.id))!
              other.data.set(`bump${bumps}`, bumps++)
              expect(await b.save(other)).toBe(true)
            },
            'before',
          ),
          secret: SECRET,
          prefix: a.prefix,
        })
        const copy = (await slow.get(s.id))!
        copy.data.set('mine', 1)
        await expect(slow.save(copy)).rejects.toBeInstanceOf(SessionConflictError)
        // One budget for the whole save: every swap it ran lost to exactly one bump.
        expect(bumps).toBe(REDIS_SAVE_ATTEMPTS)
        const final = (await a.get(s.id))!
        expect(final.data.has('mine')).toBe(false)
        for (let i = 0; i < bumps; i++) expect(final.data.get(`bump${i}`)).toBe(i)
        // without the racing writer the same save goes through
        const calm = (await a.get(s.id))!
        calm.data.set('mine', 1)
        expect(await a.save(calm)).toBe(true)
      })

      it('listSessions/revokeSessions: three of alice, one of bob; revoke alice except one', async () => {
        const [a, b] = pair()
        const alice = await Promise.all([1, 2, 3].map(() => a.create({ identity: 'alice@example.com' })))
        const bob = await b.create({ identity: 'bob@example.com' })
        const anon = await a.create()
        const listed = await b.listSessions('alice@example.com')
        expect(new Set(listed.map((x) => x.id))).toEqual(new Set(alice.map((s) => s.id)))
        for (const info of listed) {
          expect(info.expiresAt).toBeGreaterThan(Date.now())
          expect(info.createdAt).toBeLessThanOrEqual(info.lastAccess)
        }
        // no key names an identity (index keys hold a keyed hash)
        const all = await keys(a.prefix)
        expect(all.some((k) => k.includes('alice') || k.includes('bob'))).toBe(false)
        expect(all.filter((k) => k.startsWith(`${a.prefix}idx:`))).toHaveLength(2)

        expect(await b.revokeSessions('alice@example.com', { except: alice[1].id })).toBe(2)
        expect(await a.get(alice[0].id)).toBeNull()
        expect(await a.get(alice[2].id)).toBeNull()
        expect((await a.get(alice[1].id))?.id).toBe(alice[1].id)
        expect((await a.get(bob.id))?.id).toBe(bob.id)
        expect((await a.get(anon.id))?.id).toBe(anon.id)
        expect((await a.listSessions('alice@example.com')).map((x) => x.id)).toEqual([alice[1].id])
        expect((await a.listSessions('bob@example.com')).map((x) => x.id)).toEqual([bob.id])
      })

      it('login as someone else moves the session to the new identity; delete removes its entry', async () => {
        const [a] = pair()
        const s = await a.create({ identity: 'carol' })
        const copy = (await a.get(s.id))!
        copy.attachAvatar(new Avatar('dave'))
        expect(await a.save(copy)).toBe(true)
        expect(await a.listSessions('carol')).toEqual([])
        expect((await a.listSessions('dave')).map((x) => x.id)).toEqual([s.id])
        expect(await a.delete(s.id)).toBe(true)
        expect(await a.listSessions('dave')).toEqual([])
        expect((await keys(a.prefix)).filter((k) => k.includes('idx:'))).toEqual([])
      })

      it('index entries go with their sessions: expired sessions leave the index, and the index key expires', async () => {
        const [a] = pair()
        const s = await a.create({ identity: 'erin' }, { ttl: 300 })
        const idx = (await keys(a.prefix)).find((k) => k.includes('idx:'))!
        const pttl = await raw.pTTL(idx)
        expect(pttl).toBeGreaterThan(0)
        expect(pttl).toBeLessThanOrEqual(300)
        await sleep(400)
        expect(await a.listSessions('erin')).toEqual([])
        expect(await raw.exists(idx)).toBe(0)
        expect(await raw.exists(a.prefix + storageName(s.id))).toBe(0)
      })

      it('a persisted touch moves the index entry with the session (an active session stays listed)', async () => {
        const [a] = pair({ touchAfter: 0 })
        const s = await a.create({ identity: 'frank' }, { ttl: 400 })
        for (let i = 0; i < 4; i++) {
          await sleep(150)
          expect((await a.get(s.id))?.id).toBe(s.id)
        }
        // 600 ms after creation, past the first expiry: still live, still listed
        expect((await a.listSessions('frank')).map((x) => x.id)).toEqual([s.id])
        expect(await a.revokeSessions('frank')).toBe(1)
        expect(await a.get(s.id)).toBeNull()
      })
    })
  }
}
