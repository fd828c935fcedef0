// RedisSessionStore behind Sentinel (one master, one replica, one redis-sentinel), through ioredis
// with `sentinels`: the master is killed; while Sentinel fails over, every call rejects with
// SessionStoreUnavailableError within commandTimeout; afterwards reads and writes work again on
// the promoted replica, and a session acknowledged by the replica (WAIT) before the kill is
// still there. Also: a write that reaches a replica (READONLY) is "unavailable", for both clients.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { RedisSessionStore } from '../../lib/stores/redis-store'
import { CLIENT_KINDS, connectClient } from '../helpers/redis-clients'
import { MASTER_NAME, startSentinelTopology, type SentinelTopology } from '../helpers/redis-sentinel'
import { haveRedisBinaries } from '../helpers/redis-suite'

const SECRET = 'a redis-sentinel test secret, 32+ chars long'
const COMMAND_TIMEOUT = 1_000

if (
  haveRedisBinaries('redis-sentinel.test', {
    'redis-server': 'redis-server',
    'redis-sentinel': 'redis-sentinel',
    'redis-cli': 'redis-tools',
  })
) {
  describe('RedisSessionStore behind Sentinel', () => {
    let topo: SentinelTopology
    let client: Redis
    beforeAll(async () => {
      topo = await startSentinelTopology()
      client = new Redis({
        sentinels: [{ host: '127.0.0.1', port: topo.sentinelPort }],
        name: MASTER_NAME,
        lazyConnect: true,
        retryStrategy: () => 100,
        sentinelRetryStrategy: () => 100,
        maxRetriesPerRequest: 1,
      })
      client.on('error', () => {})
      await client.connect()
    }, 60_000)
    afterAll(async () => {
      client?.disconnect()
      await topo?.stop()
    })

    for (const kind of CLIENT_KINDS) {
      it(`a write that reaches a replica (READONLY) rejects with SessionStoreUnavailableError (${kind})`, async () => {
        const onReplica = await connectClient(kind, topo.replica.port)
        try {
          const store = new RedisSessionStore({
            client: onReplica.client,
            secret: SECRET,
            commandTimeout: COMMAND_TIMEOUT,
          })
          await expect(store.create()).rejects.toMatchObject({
            name: 'SessionStoreUnavailableError',
            message: /READONLY/,
          })
        } finally {
          await onReplica.close()
        }
      })
    }

    it('the master is killed: calls reject within commandTimeout during the failover, then work; an acknowledged session survives', async () => {
      const store = new RedisSessionStore({ client, secret: SECRET, commandTimeout: COMMAND_TIMEOUT })
      expect(store.clientKind).toBe('ioredis')
      const kept = await store.create({ identity: 'alice' })
      kept.data.set('cart', [1, 2, 3])
      await store.save(kept)
      // acknowledged by the replica before the kill
      expect(Number(await client.call('WAIT', '1', '5000'))).toBe(1)

      const unhandled: unknown[] = []
      const onUnhandled = (reason: unknown) => unhandled.push(reason)
      process.on('unhandledRejection', onUnhandled)
      try {
        await topo.master.kill()
        // Call until a read succeeds again; every failure until then must be the typed error, in time.
        const failures: number[] = []
        const deadline = Date.now() + 30_000
        for (;;) {
          const t = Date.now()
          const outcome = await store.get(kept.id).then(
            (s) => s,
            (e: unknown) => e,
          )
          const took = Date.now() - t
          if (!(outcome instanceof Error)) break
          expect(outcome).toBeInstanceOf(SessionStoreUnavailableError)
          expect(took).toBeLessThanOrEqual(COMMAND_TIMEOUT + 700) // the timer, plus event-loop slack on a loaded machine
          failures.push(took)
          if (Date.now() > deadline) throw new Error('no failover within 30 s')
          await new Promise((r) => setTimeout(r, 100))
        }
        expect(failures.length).toBeGreaterThan(0) // the outage was seen, not slept through
        expect(await topo.masterPort()).toBe(topo.replica.port)

        const after = (await store.get(kept.id))!
        expect(after.avatar.identity).toBe('alice')
        expect(after.data.get('cart')).toEqual([1, 2, 3])
        after.data.set('cart', [4])
        await store.save(after)
        const fresh = await store.create({ identity: 'bob' })
        expect((await store.get(fresh.id))?.avatar.identity).toBe('bob')
        expect((await store.get(kept.id))!.data.get('cart')).toEqual([4])
        await new Promise((r) => setTimeout(r, 50))
        expect(unhandled).toEqual([])
      } finally {
        process.off('unhandledRejection', onUnhandled)
      }
    }, 60_000)
  })
}
