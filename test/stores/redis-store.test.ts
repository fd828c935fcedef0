// RedisSessionStore against a real redis-server on loopback, through each supported client
// (node-redis and ioredis): the shared contract, then what only a shared, encrypted Redis store
// must show (sharing across servers, nothing in clear, Redis-side expiry, touchAfter, rotation,
// and outages). Inspection goes through a separate raw node-redis client. Needs Debian's
// redis-server: in CI (CI=true) its absence fails the suite; locally the suite is skipped with a message.
import { execFileSync } from 'node:child_process'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { generateSessionId, storageName } from '../../lib/core/ids'
import { makeKeyRing } from '../../lib/core/keys'
import { RedisSessionStore, type RedisSessionStoreOptions } from '../../lib/stores/redis-store'
import { Session } from '../../lib/session/session'
import { CLIENT_KINDS, connectClient, unconnectedClient, wrapCommands, type TestClient } from '../helpers/redis-clients'
import { findRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server'
import { describeStoreContract } from './contract'

const SECRET = 'a redis-store test secret, 32+ chars long'
const OTHER = 'another redis-store secret, also 32+ chars'
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const installed = findRedisServer() !== null
const inCI = process.env.CI === 'true' || process.env.CI === '1'

type Client = ReturnType<typeof createClient>

function newClient(url: string): Client {
  // Quick reconnects keep the outage test short; the default backoff also works, just slower.
  const client = createClient({ url, socket: { reconnectStrategy: () => 50 } })
  client.on('error', () => {}) // a lost connection emits 'error': without a listener, the process would end
  return client
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await sleep(10)
  }
}

if (!installed) {
  if (inCI) {
    it('redis-server is installed (CI must apt-get install redis-server)', () => {
      throw new Error('redis-server not found on PATH: .ci/run must install the Debian package redis-server')
    })
  } else {
    console.warn('[redis-store.test] redis-server is not installed: skipping (apt-get install redis-server to run it)')
    it.skip('RedisSessionStore (redis-server not installed)', () => {})
  }
} else
  for (const kind of CLIENT_KINDS)
    describe(`through ${kind}`, () => {
      let server: RedisServer
      let client: Client // raw node-redis: plants and inspects values
      let tc: TestClient // the client under test
      let tc2: TestClient
      let n = 0
      const prefix = () => `t${process.pid}-${n++}:`
      const stores: RedisSessionStore[] = []
      const make = (o: Partial<RedisSessionStoreOptions> = {}, c: RedisSessionStoreOptions['client'] = tc.client) => {
        const secret = o.secrets === undefined ? SECRET : undefined
        const s = new RedisSessionStore({ client: c, secret, prefix: prefix(), ...o } as RedisSessionStoreOptions)
        stores.push(s)
        return s
      }
      const raw = async (key: string): Promise<Buffer | null> =>
        (await client.withTypeMapping({ 36: Buffer }).get(key)) as unknown as Buffer | null

      beforeAll(async () => {
        server = await startRedisServer()
        client = newClient(server.url)
        await client.connect()
        ;[tc, tc2] = await Promise.all([connectClient(kind, server.port), connectClient(kind, server.port)])
      })
      afterAll(async () => {
        await Promise.allSettled([client?.close(), tc?.close(), tc2?.close()])
        await server?.stop()
      })
      afterEach(async () => {
        await Promise.all(stores.splice(0).map((s) => s.close()))
      })

      describeStoreContract(`RedisSessionStore (${kind})`, async (opts) => make(opts), {
        expiresByItself: true,
        // every key under the store's prefix, as anyone with access to Redis sees them
        exposedNames: async (store) => {
          const found: string[] = []
          for await (const page of client.scanIterator({
            MATCH: `${(store as RedisSessionStore).prefix}*`,
            COUNT: 1000,
          }))
            found.push(...page)
          return found
        },
      })

      describe('RedisSessionStore options', () => {
        it('refuses a machine-bound key: secret or secrets is required', () => {
          expect(() => new RedisSessionStore({ client } as RedisSessionStoreOptions)).toThrow(TypeError)
          expect(() => new RedisSessionStore({ client } as RedisSessionStoreOptions)).toThrow(/every server.*secret/)
          expect(() => new RedisSessionStore({ client, secret: SECRET, bindToBoot: true } as never)).toThrow(
            /bindToBoot/,
          )
          expect(() => new RedisSessionStore({ client, secret: 'short' })).toThrow(RangeError)
          expect(() => new RedisSessionStore({ client, secret: SECRET, secrets: [SECRET] })).toThrow(TypeError)
        })

        it('checks the client and the other options', () => {
          expect(() => new RedisSessionStore({ client: {} as never, secret: SECRET })).toThrow(/node-redis v5.*ioredis/)
          // node-redis v4's shape (commandOptions, no withTypeMapping) is named as unsupported
          const v4 = { get() {}, set() {}, del() {}, scan() {}, commandOptions() {} }
          expect(() => new RedisSessionStore({ client: v4 as never, secret: SECRET })).toThrow(/v4.*not supported/)
          expect(() => new RedisSessionStore({ client: null as never, secret: SECRET })).toThrow(TypeError)
          expect(() => new RedisSessionStore(null as never)).toThrow(TypeError)
          expect(() => make({ prefix: 3 as never })).toThrow(TypeError)
          expect(() => make({ prefix: 'a\0b' })).toThrow(RangeError)
          expect(() => make({ namespace: 'a:b' })).toThrow(RangeError)
          expect(() => make({ commandTimeout: 0 })).toThrow(RangeError)
          expect(() => make({ maxBytes: 10 })).toThrow(RangeError)
          expect(() => make({ defaultTtl: -1 })).toThrow(RangeError)
          const s = make()
          expect(s.prefix).toMatch(/^t\d+-\d+:$/)
          expect(new RedisSessionStore({ client: tc.client, secret: SECRET }).prefix).toBe('sess:')
          expect(s.commandTimeout).toBe(2_000)
          expect(s.clientKind).toBe(kind)
        })

        it('warns when the client has no error listener, and rejects at once while it is not connected', async () => {
          const warnings: string[] = []
          const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} }
          const bare = unconnectedClient(kind, server.port)
          const store = make({ logger }, bare.client)
          expect(warnings.join('\n')).toMatch(/'error' listener/)
          const t = Date.now()
          await expect(store.get(generateSessionId())).rejects.toMatchObject({ code: 'ERR_SESSION_STORE_UNAVAILABLE' })
          await expect(store.create()).rejects.toBeInstanceOf(SessionStoreUnavailableError)
          expect(Date.now() - t).toBeLessThan(500)
          // the store never connects or closes the user's client
          expect(bare.isOpen()).toBe(false)
        })

        it('close() wipes the store but leaves the client open', async () => {
          const store = make()
          await store.create()
          await store.close()
          expect(tc.ready()).toBe(true)
        })
      })

      describe('RedisSessionStore on a real redis-server', () => {
        it('two servers (two clients) with the same secret share sessions; another secret or namespace reads null', async () => {
          const p = prefix()
          const a = make({ prefix: p }, tc.client)
          const b = make({ prefix: p }, tc2.client)
          const s = await a.create({ identity: 'alice' })
          s.data.set('cart', [1, 2])
          await a.save(s)
          const onB = (await b.get(s.id))!
          expect(onB.avatar.identity).toBe('alice')
          expect(onB.data.get('cart')).toEqual([1, 2])
          onB.data.set('cart', [3])
          await b.save(onB)
          expect((await a.get(s.id))!.data.get('cart')).toEqual([3])
          expect((await b.dump()).sessions.map((r) => r.id)).toEqual([s.id])

          expect(await make({ prefix: p, secret: OTHER }, tc2.client).get(s.id)).toBeNull()
          expect(await make({ prefix: p, namespace: 'other' }, tc2.client).get(s.id)).toBeNull()
          expect((await make({ prefix: p, secret: OTHER }).dump()).sessions).toEqual([])
          // a failed read does not remove the session for the servers that can read it
          expect((await a.get(s.id))?.id).toBe(s.id)

          expect(await b.delete(s.id)).toBe(true)
          expect(await a.get(s.id)).toBeNull()
          expect(await a.delete(s.id)).toBe(false)
        })

        it('a logged-in read asks for the revocation mark in the same round trip as the record', async () => {
          const events: string[] = []
          const view = wrapCommands(client, async (cmd, _args, next) => {
            events.push(`send ${cmd}`)
            const reply = await next()
            events.push(`reply ${cmd}`)
            return reply
          })
          const store = make({}, view)
          const s = await store.create({ identity: 'alice' })
          await store.get(s.id) // learns which mark goes with this record
          events.length = 0
          expect((await store.get(s.id))?.avatar.identity).toBe('alice')
          expect(events.slice(0, 3)).toEqual(['send GETRANGE', 'send GET', 'reply GETRANGE'])
          // and the mark it read still refuses a revoked session
          expect(await make({ prefix: store.prefix }).revokeSessions('alice')).toBe(1)
          expect(await store.get(s.id)).toBeNull()
        })

        it('a key holds an envelope (SEAL), never the id or the session strings', async () => {
          const store = make()
          const s = await store.create({ identity: 'alice@example.com', tags: ['admin'] })
          s.data.set('cart.items', ['книга', 'plaintext-marker'])
          await store.save(s)
          const key = store.prefix + storageName(s.id)

          const cli = execFileSync('redis-cli', ['-p', String(server.port), '--no-raw', 'GET', key], {
            encoding: 'latin1',
          })
          expect(cli).toMatch(/^"sv[0-9a-f]{14}SEAL\\x01/) // version header, then the envelope

          const value = (await raw(key))!
          expect(value.subarray(16, 20).toString()).toBe('SEAL')
          expect(value[20]).toBe(1)
          for (const secret of [s.id, 'alice@example.com', 'admin', 'книга', 'plaintext-marker', 'cart', 'identity']) {
            expect(value.includes(Buffer.from(secret)), secret).toBe(false)
          }
          // no key in the whole database names the session
          const keys: string[] = []
          for await (const page of client.scanIterator({ MATCH: '*', COUNT: 1000 })) keys.push(...page)
          expect(keys).toContain(key)
          expect(keys.some((k) => k.includes(s.id))).toBe(false)
        })

        it('PX matches the session expiry, with maxAge too, and Redis expires a session by itself', async () => {
          const store = make({ defaultTtl: 60_000 })
          const s = await store.create()
          const pttl = await client.pTTL(store.prefix + storageName(s.id))
          expect(pttl).toBeGreaterThan(59_000)
          expect(pttl).toBeLessThanOrEqual(60_000)

          const capped = make({ defaultTtl: 60_000, maxAge: 10_000 })
          const c = await capped.create()
          const cappedTtl = await client.pTTL(capped.prefix + storageName(c.id))
          expect(cappedTtl).toBeGreaterThan(9_000)
          expect(cappedTtl).toBeLessThanOrEqual(10_000)

          const short = await store.create(null, { ttl: 150 })
          const key = store.prefix + storageName(short.id)
          expect(await client.exists(key)).toBe(1)
          await sleep(300)
          expect(await client.exists(key)).toBe(0) // gone without the store doing anything
          expect(await store.purgeExpired()).toBe(0)
        })

        it('touchAfter: a read within it does not rewrite the key; after it, the key is re-sealed with a fresh PX', async () => {
          const store = make({ defaultTtl: 60_000, touchAfter: 300 })
          const s = await store.create()
          const key = store.prefix + storageName(s.id)
          const before = (await raw(key))!
          await sleep(100)
          expect(await store.get(s.id)).not.toBeNull()
          expect((await raw(key))!.equals(before)).toBe(true)
          expect(await client.pTTL(key)).toBeLessThanOrEqual(60_000 - 90)

          await sleep(300)
          const late = (await store.get(s.id))!
          const after = (await raw(key))!
          expect(after.equals(before)).toBe(false)
          expect(after.readBigUInt64BE(16 + 20)).toBe(BigInt(late.meta.lastAccess + 60_000))
          expect(await client.pTTL(key)).toBeGreaterThan(59_000)
        })

        it('a touch does not bring back a session another server deleted meanwhile', async () => {
          const store = make({ touchAfter: 0 })
          // Last accessed a second ago, so the read below must persist a touch (a session created in
          // the same millisecond as the read would not be stale yet).
          const s = new Session(generateSessionId(), null, 60_000, { now: Date.now() - 1000 })
          expect(await store.save(s)).toBe(true)
          const key = store.prefix + storageName(s.id)
          // Simulate the race: the envelope is read, then deleted elsewhere before the touch lands.
          const spied = tc.intercept('GETRANGE', async (args) => {
            await client.del(String(args[1]))
          })
          const racing = make({ prefix: store.prefix, touchAfter: 0 }, spied)
          // The touch finds the record gone: the session stays deleted and the read reports it so.
          expect(await racing.get(s.id)).toBeNull()
          expect(await client.exists(key)).toBe(0)
        })

        it('a value written by 0.1 (a bare envelope, no version) reads, and the next save upgrades it in place', async () => {
          const store = make({ touchAfter: 60_000 })
          const legacy = new Session(generateSessionId(), { identity: 'old' }, 60_000)
          legacy.data.set('cart', [7])
          const name = storageName(legacy.id)
          const ring = makeKeyRing('store', 'default', { secret: SECRET })
          const envelope = ring.seal(
            JSON.stringify(legacy.toRecord()),
            `store:default:${name}`,
            legacy.meta.createdAt,
            legacy.expiresAt(),
          )
          ring.close()
          await client.set(store.prefix + name, envelope, { PX: 60_000 })

          const got = (await store.get(legacy.id))!
          expect(got.data.get('cart')).toEqual([7])
          got.data.set('cart', [8])
          expect(await store.save(got)).toBe(true) // compare-and-swap accepts the 0.1 value as version 1
          const value = (await raw(store.prefix + name))!
          expect(value.subarray(0, 2).toString()).toBe('sv')
          expect((await store.get(legacy.id))!.data.get('cart')).toEqual([8])
          // a stale copy of the 0.1 value no longer matches
          await client.set(store.prefix + name, envelope, { PX: 60_000 })
          const stale = (await store.get(legacy.id))!
          await client.set(store.prefix + name, value, { PX: 60_000 })
          stale.data.set('other', 1)
          expect(await store.save(stale)).toBe(true) // re-applied onto the current version
          const final = (await store.get(legacy.id))!
          expect(final.data.get('cart')).toEqual([8])
          expect(final.data.get('other')).toBe(1)
        })

        it('rotation: an envelope sealed with an older secret opens, and get re-seals it with the current one', async () => {
          const p = prefix()
          const old = make({ prefix: p, secret: OTHER })
          const s = await old.create({ identity: 'r' })
          const key = p + storageName(s.id)
          const oldKid = (await raw(key))!.subarray(16 + 8, 16 + 12).toString('hex')

          expect(await make({ prefix: p, secret: SECRET }).get(s.id)).toBeNull() // new key alone: unreadable
          const rotated = make({ prefix: p, secrets: [SECRET, OTHER], touchAfter: 60_000 })
          expect((await rotated.get(s.id))?.avatar.identity).toBe('r')
          const newKid = (await raw(key))!.subarray(16 + 8, 16 + 12).toString('hex')
          expect(newKid).not.toBe(oldKid)
          // now the current key alone opens it, and the old one no longer does
          expect((await make({ prefix: p, secret: SECRET }).get(s.id))?.avatar.identity).toBe('r')
          expect(await make({ prefix: p, secret: OTHER }).get(s.id)).toBeNull()
          // a write always seals with the current key
          const s2 = await old.create()
          const got = (await rotated.get(s2.id))!
          got.data.set('x', 1)
          await rotated.save(got)
          expect((await raw(p + storageName(s2.id)))!.subarray(16 + 8, 16 + 12).toString('hex')).toBe(newKid)
        })

        it("a value under another session's key, or with a flipped bit, reads as null", async () => {
          const store = make()
          const a = await store.create({ identity: 'a' })
          const b = await store.create({ identity: 'b' })
          const ka = store.prefix + storageName(a.id)
          const kb = store.prefix + storageName(b.id)
          const va = (await raw(ka))!
          await client.set(kb, va, { PX: 60_000 })
          expect(await store.get(b.id)).toBeNull()
          for (const pos of [9, 30, 45, va.length - 1]) {
            const bad = Buffer.from(va)
            bad[pos] ^= 0x10
            await client.set(ka, bad, { PX: 60_000 })
            expect(await store.get(a.id)).toBeNull()
          }
          await client.set(ka, 'not an envelope', { PX: 60_000 })
          expect(await store.get(a.id)).toBeNull()
          expect((await store.dump()).sessions).toEqual([])
        })

        it('dump walks several SCAN pages, restore writes them all, and keys of other prefixes stay out', async () => {
          const source = make()
          const sessions = Array.from({ length: 1_200 }, (_, i) => {
            const s = new Session(generateSessionId(), { identity: `u${i}` }, 60_000)
            s.data.set('i', i)
            return s.toRecord()
          })
          const t = Date.now()
          expect(await source.restore({ version: 1, sessions })).toBe(1_200)
          const dump = await source.dump()
          expect(Date.now() - t).toBeLessThan(5_000)
          expect(dump.sessions.length).toBe(1_200)
          expect(new Set(dump.sessions.map((r) => r.id))).toEqual(new Set(sessions.map((r) => r.id)))
          // a prefix with glob characters sees only its own keys
          const globby = make({ prefix: `${source.prefix.slice(0, -1)}*:` })
          await globby.create()
          expect((await globby.dump()).sessions.length).toBe(1)
          expect((await source.dump()).sessions.length).toBe(1_200)
        })
      })

      describe('RedisSessionStore while Redis is down', () => {
        let own: RedisServer
        let c: TestClient
        beforeAll(async () => {
          own = await startRedisServer()
          c = await connectClient(kind, own.port)
        })
        afterAll(async () => {
          await c?.close()
          await own?.stop()
        })

        it('calls reject promptly with SessionStoreUnavailableError, the process survives, and they work after a restart', async () => {
          const unhandled: unknown[] = []
          const onUnhandled = (reason: unknown) => unhandled.push(reason)
          process.on('unhandledRejection', onUnhandled)
          try {
            const store = make({ commandTimeout: 1_000 }, c.client)
            const s = await store.create({ identity: 'x' })
            expect(await store.get(s.id)).not.toBeNull()

            // A hung server (connection open, no answer): each command gives up after commandTimeout.
            own.pause()
            let t = Date.now()
            await expect(store.get(s.id)).rejects.toMatchObject({
              name: 'SessionStoreUnavailableError',
              code: 'ERR_SESSION_STORE_UNAVAILABLE',
            })
            expect(Date.now() - t).toBeGreaterThanOrEqual(950)
            expect(Date.now() - t).toBeLessThan(3_000)

            // A command in flight when the server dies is rejected too.
            const inFlight = store.get(s.id)
            inFlight.catch(() => {})
            await own.kill()
            t = Date.now()
            await expect(inFlight).rejects.toBeInstanceOf(SessionStoreUnavailableError)
            expect(Date.now() - t).toBeLessThan(3_000)
            await until(() => !c.ready(), 2_000)

            // Server gone: every call fails at once (well before commandTimeout) instead of waiting
            // in the offline queue.
            t = Date.now()
            const session = new Session(generateSessionId(), null, 60_000)
            const calls: Array<[string, Promise<unknown>]> = [
              ['create', store.create()],
              ['get', store.get(s.id)],
              ['save', store.save(session)],
              ['delete', store.delete(s.id)],
              ['dump', store.dump()],
              ['restore', store.restore({ version: 1, sessions: [session.toRecord()] })],
            ]
            for (const [what, call] of calls) {
              await expect(call, what).rejects.toMatchObject({ code: 'ERR_SESSION_STORE_UNAVAILABLE' })
            }
            expect(Date.now() - t).toBeLessThan(500)
            // argument checks still come first, and an invalid id needs no Redis at all
            expect(await store.get('x'.repeat(257))).toBeNull()
            expect(await store.purgeExpired()).toBe(0)

            // Back on the same port: once the client has reconnected, the store works again.
            await own.restart()
            await until(() => c.ready(), 5_000)
            expect(await store.get(s.id)).toBeNull() // no persistence: the old session is gone
            const again = await store.create({ identity: 'y' })
            expect((await store.get(again.id))?.avatar.identity).toBe('y')
            expect((await store.dump()).sessions.map((r) => r.id)).toEqual([again.id])
            await sleep(50)
            expect(unhandled).toEqual([])
          } finally {
            process.off('unhandledRejection', onUnhandled)
          }
        })
      })
    })
