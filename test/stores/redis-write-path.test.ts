// What a RedisSessionStore save costs on the wire, through each client (node-redis and ioredis):
// how many round trips (a round trip = commands sent without waiting for a reply in between)
// and which commands, for a logged-in save, a login and a logout; and that sending the
// revocation mark's read together with the swap still lets a revocation win.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { storageName } from '../../lib/core/ids'
import { Avatar } from '../../lib/session/avatar'
import { INDEX_ADD, MARK_RAISE, REMOVE, SWAP, INDEX_LIST } from '../../lib/stores/redis-scripts'
import { RedisSessionStore, type RedisClientLike } from '../../lib/stores/redis-store'
import { CLIENT_KINDS, connectClient, wrapCommands, type TestClient } from '../helpers/redis-clients'
import { startRedisServer, type RedisServer } from '../helpers/redis-server'
import { haveRedisBinaries } from '../helpers/redis-suite'

const SECRET = 'a redis write-path test secret, 32+ chars'
const SCRIPTS = new Map([
  [SWAP.sha, 'SWAP'],
  [INDEX_ADD.sha, 'INDEX_ADD'],
  [REMOVE.sha, 'REMOVE'],
  [MARK_RAISE.sha, 'MARK_RAISE'],
  [INDEX_LIST.sha, 'INDEX_LIST'],
])

/** The client seen through a recorder: each command by name (a script by its name), grouped
 *  into round trips. A command sent after any reply arrived starts a new round trip. */
interface Wire {
  client: RedisClientLike
  /** One array of command names per round trip, in send order. */
  trips: string[][]
  /** Runs before a command named `name` is sent (once), e.g. to let another writer in; the
   *  trip in progress then shows what was sent before it. */
  before(name: string, hook: () => Promise<void>): void
  reset(): void
}

function record(c: TestClient['client']): Wire {
  let answered = true
  const hooks = new Map<string, () => Promise<void>>()
  const wire: Wire = {
    trips: [],
    client: wrapCommands(c as never, async (cmd, args, next) => {
      const upper = cmd.toUpperCase()
      const name = upper === 'EVALSHA' || upper === 'EVAL' ? (SCRIPTS.get(String(args[1])) ?? upper) : upper
      const hook = hooks.get(name)
      if (hook !== undefined) {
        hooks.delete(name)
        await hook()
      }
      if (answered) wire.trips.push([])
      answered = false
      wire.trips[wire.trips.length - 1].push(name)
      try {
        return await next()
      } finally {
        answered = true
      }
    }),
    before: (name, hook) => hooks.set(name, hook),
    reset: () => {
      wire.trips.length = 0
      answered = true
    },
  }
  return wire
}

if (haveRedisBinaries('redis-write-path.test', { 'redis-server': 'redis-server' }))
  for (const kind of CLIENT_KINDS)
    describe(`RedisSessionStore writes through ${kind}`, () => {
      let server: RedisServer
      let tc: TestClient
      let n = 0
      const stores: RedisSessionStore[] = []
      const make = (client: RedisClientLike, prefix = `w${process.pid}-${n++}:`) => {
        const s = new RedisSessionStore({ client, secret: SECRET, prefix })
        stores.push(s)
        return s
      }

      beforeAll(async () => {
        server = await startRedisServer()
        tc = await connectClient(kind, server.port)
      })
      afterAll(async () => {
        await tc?.close()
        await server?.stop()
      })
      afterEach(async () => {
        await Promise.all(stores.splice(0).map((s) => s.close()))
      })

      it('a logged-in save whose identity did not change is one round trip: mark read, swap, index refresh', async () => {
        const wire = record(tc.client)
        const store = make(wire.client)
        const s = await store.create({ identity: 'alice' })
        s.data.set('n', 1)
        expect(await store.save(s)).toBe(true) // the server learns the scripts
        const copy = (await store.get(s.id))!
        copy.data.set('n', 2)
        wire.reset()
        expect(await store.save(copy)).toBe(true)
        expect(wire.trips).toEqual([['GET', 'INDEX_ADD', 'SWAP']])
        expect((await make(tc.client, store.prefix).get(s.id))?.data.get('n')).toBe(2)
        // the same copy again: the version it saved is the one it compares against next
        copy.data.set('n', 3)
        wire.reset()
        expect(await store.save(copy)).toBe(true)
        expect(wire.trips).toHaveLength(1)
        // and an anonymous save is the swap alone
        const anon = await store.create()
        await store.save(anon)
        anon.data.set('n', 1)
        wire.reset()
        expect(await store.save(anon)).toBe(true)
        expect(wire.trips).toEqual([['SWAP']])
      })

      it('a login sends the index entry with the mark read, then the swap: two round trips', async () => {
        const wire = record(tc.client)
        const store = make(wire.client)
        const warm = await store.create({ identity: 'warm' })
        await store.save(warm)
        const s = await store.create()
        s.data.set('n', 1)
        await store.save(s)
        s.attachAvatar(new Avatar('alice'))
        wire.reset()
        expect(await store.save(s)).toBe(true)
        // the entry goes in before the session does, so a crash never hides it from listSessions
        expect(wire.trips).toEqual([
          ['GET', 'INDEX_ADD'],
          ['INDEX_ADD', 'SWAP'],
        ])
        expect((await store.listSessions('alice')).map((i) => i.id)).toEqual([s.id])
      })

      it('a logout waits for the mark, then swaps, then the index entry goes: three round trips', async () => {
        const wire = record(tc.client)
        const store = make(wire.client)
        const s = await store.create({ identity: 'alice' })
        await store.save(s)
        s.attachAvatar(new Avatar())
        wire.reset()
        expect(await store.save(s)).toBe(true)
        // the record it writes is anonymous, so no mark would refuse it: the mark is checked first
        expect(wire.trips).toEqual([['GET'], ['SWAP'], ['ZREM']])
        expect(await store.listSessions('alice')).toEqual([])
        expect((await store.get(s.id))?.avatar.isAnonymous).toBe(true)
      })

      /** Alice's session saved, and a copy of it read back, through a recorded client; `other`
       *  is a second store instance on the same keys. */
      async function aliceCopy() {
        const wire = record(tc.client)
        const store = make(wire.client)
        const other = make(tc.client, store.prefix)
        const s = await store.create({ identity: 'alice' })
        await store.save(s)
        const copy = (await store.get(s.id))!
        return { wire, store, other, s, copy }
      }

      it('a revocation that lands between the mark read and the swap still wins', async () => {
        for (const lostIndex of [false, true]) {
          const { wire, store, other, s, copy } = await aliceCopy()
          copy.data.set('late', true)
          let revoked: number | undefined
          let sentBefore: string[] = []
          wire.before('SWAP', async () => {
            sentBefore = [...wire.trips[wire.trips.length - 1]]
            // the index may have lost the entry: the mark alone must then refuse the session
            if (lostIndex) for (const k of await scanKeys(tc, `${store.prefix}idx:*`)) await del(tc, k)
            revoked = await other.revokeSessions('alice')
          })
          wire.reset()
          const saved = await store.save(copy)
          // the mark was asked for in the same round trip as the swap, before the revocation ran
          expect(sentBefore).toEqual(['GET', 'INDEX_ADD'])
          expect(revoked).toBe(lostIndex ? 0 : 1)
          if (!lostIndex) expect(saved).toBe(false) // the revocation removed it: nothing to swap
          // whatever the save reported, the session never reads back, from any instance
          expect(await store.get(s.id)).toBeNull()
          expect(await other.get(s.id)).toBeNull()
          expect(await other.listSessions('alice')).toEqual([])
        }
      })

      /** A copy of alice's session read before her revocation, whose index entry was lost, so
       *  the revocation could not remove the session: its mark alone must refuse the copy. */
      async function revokedCopy() {
        const { wire, store, other, s, copy } = await aliceCopy()
        for (const k of await scanKeys(tc, `${store.prefix}idx:*`)) await del(tc, k)
        expect(await other.revokeSessions('alice')).toBe(0)
        wire.reset()
        return { wire, store, other, key: store.prefix + storageName(s.id), copy }
      }

      it('a copy read before a revocation that logs out writes nothing: never readable, not even anonymous', async () => {
        const { wire, store, other, key, copy } = await revokedCopy()
        copy.attachAvatar(new Avatar())
        copy.data.set('after-logout', true)
        expect(await store.save(copy)).toBe(false)
        // no SWAP went out: the revoked record was removed instead of being overwritten
        expect(wire.trips.flat()).not.toContain('SWAP')
        expect(await raw(tc, key)).toBeNull()
        expect(await other.get(copy.id)).toBeNull()
      })

      it('a copy read before a revocation loses its save, and what it wrote is removed again', async () => {
        const { wire, store, other, key, copy } = await revokedCopy()
        copy.data.set('late', true)
        expect(await store.save(copy)).toBe(false)
        // one round trip for the save, one to remove what it wrote over the revoked record
        expect(wire.trips[0]).toEqual(['GET', 'INDEX_ADD', 'SWAP'])
        expect(wire.trips[1]).toEqual(['REMOVE'])
        expect(await raw(tc, key)).toBeNull()
        expect(await other.get(copy.id)).toBeNull()
      })
    })

async function scanKeys(tc: TestClient, pattern: string): Promise<string[]> {
  return (await send(tc, ['KEYS', pattern])) as string[]
}

async function del(tc: TestClient, key: string): Promise<void> {
  await send(tc, ['DEL', key])
}

async function raw(tc: TestClient, key: string): Promise<unknown> {
  return send(tc, ['GET', key])
}

function send(tc: TestClient, args: string[]): Promise<unknown> {
  const c = tc.client as unknown as {
    sendCommand?: (a: string[]) => Promise<unknown>
    call?: (...a: string[]) => Promise<unknown>
  }
  // ioredis has a sendCommand of its own, which takes a Command object: call first
  return c.call !== undefined ? c.call(...args) : c.sendCommand!(args)
}
