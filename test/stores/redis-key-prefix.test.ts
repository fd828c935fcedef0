// RedisSessionStore over an ioredis client created with `keyPrefix`: ioredis prefixes the keys of
// every command but not SCAN's MATCH pattern nor the keys SCAN returns, so dump() must add the
// keyPrefix to its pattern and strip it from what it finds, or a backup made this way is empty.
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { storageName } from '../../lib/core/ids'
import { RedisSessionStore } from '../../lib/stores/redis-store'
import { startRedisServer, type RedisServer } from '../helpers/redis-server'
import { haveRedisBinaries } from '../helpers/redis-suite'

const SECRET = 'a redis key-prefix test secret, 32+ chars'

if (haveRedisBinaries('redis-key-prefix.test', { 'redis-server': 'redis-server' })) {
  describe('RedisSessionStore through ioredis with keyPrefix', () => {
    let server: RedisServer
    let raw: ReturnType<typeof createClient> // no prefix: sees the keys as Redis holds them
    const clients: Redis[] = []
    const stores: RedisSessionStore[] = []

    async function ioredis(keyPrefix?: string): Promise<Redis> {
      const c = new Redis({
        host: '127.0.0.1',
        port: server.port,
        keyPrefix,
        lazyConnect: true,
        maxRetriesPerRequest: 1,
      })
      c.on('error', () => {})
      await c.connect()
      clients.push(c)
      return c
    }
    function make(client: Redis, prefix: string): RedisSessionStore {
      const store = new RedisSessionStore({ client, secret: SECRET, prefix })
      stores.push(store)
      return store
    }

    beforeAll(async () => {
      server = await startRedisServer()
      raw = createClient({ url: server.url })
      raw.on('error', () => {})
      await raw.connect()
    })
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()))
    })
    afterAll(async () => {
      for (const c of clients) c.disconnect()
      if (raw?.isOpen) await raw.close()
      await server?.stop()
    })

    it('a keyPrefix that is not UTF-8 text is refused at construction, naming the client', () => {
      const client = new Redis({ keyPrefix: Buffer.from([0x61, 0xff, 0x3a]) as never, lazyConnect: true })
      expect(() => new RedisSessionStore({ client, secret: SECRET })).toThrow(TypeError)
      expect(() => new RedisSessionStore({ client, secret: SECRET })).toThrow(
        /options\.client has a keyPrefix that is not UTF-8/,
      )
    })

    // 'app[1]:' is a glob character class unless escaped: its own keys would not match it.
    for (const keyPrefix of ['app:', 'app[1]:']) {
      it(`dump finds every session under keyPrefix ${JSON.stringify(keyPrefix)}, and restore brings them back`, async () => {
        const store = make(await ioredis(keyPrefix), 'kp:')
        const sessions = [
          await store.create({ identity: 'alice' }),
          await store.create(),
          await store.create({ identity: 'bob' }),
        ]
        // The keys really carry both prefixes.
        for (const s of sessions) expect(await raw.exists(`${keyPrefix}kp:${storageName(s.id)}`)).toBe(1)
        // A session of the same store prefix without keyPrefix is another namespace: not in the dump.
        const outside = await make(await ioredis(), 'kp:').create()

        const dump = await store.dump()
        expect(new Set(dump.sessions.map((r) => r.id))).toEqual(new Set(sessions.map((s) => s.id)))
        expect(dump.sessions.map((r) => r.id)).not.toContain(outside.id)

        const fresh = make(await ioredis(keyPrefix), 'kp2:')
        expect(await fresh.restore(dump)).toBe(3)
        for (const s of sessions) expect((await fresh.get(s.id))?.avatar.identity).toBe(s.avatar.identity)
        expect((await fresh.listSessions('alice')).map((x) => x.id)).toEqual([sessions[0].id])
        expect((await fresh.dump()).sessions).toHaveLength(3)
      })
    }
  })
}
