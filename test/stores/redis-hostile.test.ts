// A shared or hostile Redis: values planted under session keys by someone else.
// A read fetches at most maxBytes + 1 bytes of envelope (measured on the server's own output
// counter), and a wrong-typed or oversized value reads as null with one warning; dump skips it
// and still returns every real session. Real redis-server, both clients.
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { generateSessionId, storageName } from '../../lib/core/ids'
import { RedisSessionStore } from '../../lib/stores/redis-store'
import { CLIENT_KINDS, connectClient, type TestClient } from '../helpers/redis-clients'
import { startRedisServer, type RedisServer } from '../helpers/redis-server'
import { haveRedisBinaries } from '../helpers/redis-suite'

const SECRET = 'a redis-hostile test secret, 32+ chars long'
const MAX = 64 * 1024

if (haveRedisBinaries('redis-hostile.test', { 'redis-server': 'redis-server' })) {
  for (const kind of CLIENT_KINDS) {
    describe(`RedisSessionStore under a hostile Redis (${kind})`, () => {
      let server: RedisServer
      let raw: ReturnType<typeof createClient>
      let tc: TestClient
      let warnings: string[]
      let n = 0
      const make = () => {
        warnings = []
        const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} }
        return new RedisSessionStore({ client: tc.client, secret: SECRET, prefix: `h${n++}:`, maxBytes: MAX, logger })
      }
      const outputBytes = async () => Number(/total_net_output_bytes:(\d+)/.exec(await raw.info('stats'))![1])

      beforeAll(async () => {
        server = await startRedisServer()
        raw = createClient({ url: server.url })
        raw.on('error', () => {})
        await raw.connect()
        tc = await connectClient(kind, server.port)
      })
      afterAll(async () => {
        await tc?.close()
        await raw?.close()
        await server?.stop()
      })

      it('an oversized value is not downloaded: at most maxBytes + 1 bytes cross the wire, and it reads as null with one warning', async () => {
        const store = make()
        const id = generateSessionId()
        const key = store.prefix + storageName(id)
        await raw.set(key, Buffer.alloc(8 * 1024 * 1024, 0x41)) // 8 MiB under the session's key
        const before = await outputBytes()
        expect(await store.get(id)).toBeNull()
        const sent = (await outputBytes()) - before - 2_000 // minus the INFO reply itself
        expect(sent).toBeLessThanOrEqual(MAX + 16 + 1 + 32)
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toMatch(/maxBytes/)
        expect(await raw.exists(key)).toBe(1) // not ours to delete: left for its owner

        // a real envelope just under the cap still reads
        const s = await store.create()
        s.data.set('blob', 'x'.repeat(MAX - 1_000))
        await store.save(s)
        expect((await store.get(s.id))!.data.get('blob')).toHaveLength(MAX - 1_000)
      })

      it('a list, hash or set under a session key reads as null with one warning, never WRONGTYPE', async () => {
        const store = make()
        for (const plant of [
          (k: string) => raw.rPush(k, ['a', 'b']),
          (k: string) => raw.hSet(k, 'f', 'v'),
          (k: string) => raw.sAdd(k, 'm'),
          (k: string) => raw.set(k, 'not an envelope at all'),
        ]) {
          warnings.length = 0
          const id = generateSessionId()
          await plant(store.prefix + storageName(id))
          expect(await store.get(id)).toBeNull()
          expect(warnings).toHaveLength(1)
          expect(await store.delete(id)).toBe(true) // delete still clears the key
        }
      })

      it('dump skips planted values and returns every real session', async () => {
        const store = make()
        const real = await Promise.all([1, 2, 3].map((i) => store.create({ identity: `u${i}` })))
        await raw.rPush(store.prefix + storageName(generateSessionId()), ['x'])
        await raw.hSet(store.prefix + storageName(generateSessionId()), 'f', 'v')
        await raw.set(store.prefix + storageName(generateSessionId()), Buffer.alloc(MAX + 100, 0x42))
        await raw.set(store.prefix + storageName(generateSessionId()), 'junk')
        const dump = await store.dump()
        expect(new Set(dump.sessions.map((r) => r.id))).toEqual(new Set(real.map((s) => s.id)))
      })
    })
  }
}
