// What a rejected Redis save means: SessionStoreUnavailableError after commandTimeout says the
// store gave up waiting, not that nothing was written. The command already went out; a server
// that answers late still applies it. docs/api/stores.md and commandTimeout's JSDoc say "outcome unknown";
// this shows why, through both clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { RedisSessionStore } from '../../lib/stores/redis-store'
import { CLIENT_KINDS, connectClient, type TestClient } from '../helpers/redis-clients'
import { startRedisServer, type RedisServer } from '../helpers/redis-server'
import { haveRedisBinaries } from '../helpers/redis-suite'

const SECRET = 'a redis timeout-outcome secret, 32+ chars'

if (haveRedisBinaries('redis-timeout-outcome.test', { 'redis-server': 'redis-server' })) {
  for (const kind of CLIENT_KINDS) {
    describe(`a save that timed out through ${kind}`, () => {
      let server: RedisServer
      let tc: TestClient

      beforeAll(async () => {
        server = await startRedisServer()
        tc = await connectClient(kind, server.port)
      })
      afterAll(async () => {
        await tc?.close()
        await server?.stop()
      })

      it('rejects with ERR_SESSION_STORE_UNAVAILABLE, yet lands once the server answers again', async () => {
        const store = new RedisSessionStore({ client: tc.client, secret: SECRET, prefix: 'to:', commandTimeout: 300 })
        try {
          // Anonymous: its save is the swap alone (a logged-in one reads its revocation mark
          // first, and a timeout there rejects before anything is sent).
          const s = await store.create()
          s.data.set('paid', true)
          server.pause() // SIGSTOP: the connection stays open, nothing is answered
          let err: unknown
          try {
            err = await store.save(s).then(
              () => null,
              (e: unknown) => e,
            )
          } finally {
            server.resume()
          }
          expect(err).toBeInstanceOf(SessionStoreUnavailableError)
          expect((err as SessionStoreUnavailableError).code).toBe('ERR_SESSION_STORE_UNAVAILABLE')
          // Redis runs one connection's commands in order: this read comes after the save's write.
          expect((await store.get(s.id))?.data.get('paid')).toBe(true)
        } finally {
          await store.close()
        }
      })
    })
  }
}
