// PostgresSessionStore on PGlite (in-process PostgreSQL, no server): the whole store contract,
// a quick run of the SQL the store sends (compare-and-swap, bounded reads, the identity column,
// revocation marks, advisory locks). The real-server suite is postgres-store.test.ts.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { storageName } from '../../lib/core/ids'
import { PostgresSessionStore } from '../../lib/stores/postgres-store'
import { pglitePool, type PgLitePool } from '../helpers/pglite-pool'
import { describeStoreContract } from './contract'

const SECRET = 'a pglite store test secret, 32+ chars long'
let pool: PgLitePool
let n = 0

beforeAll(async () => {
  pool = await pglitePool()
})
afterAll(async () => {
  await pool?.end()
})

const make = async (opts: Record<string, unknown> = {}) => {
  const store = new PostgresSessionStore({
    client: pool as never,
    secret: SECRET,
    table: `lite${n++}`,
    sweepInterval: 0,
    ...opts,
  })
  await store.init()
  return store
}

describeStoreContract('PostgresSessionStore (PGlite)', (opts) => make(opts), {
  exposedNames: async (store) => {
    const t = (store as PostgresSessionStore).table
    const r = await pool.query({
      text: `SELECT name AS v FROM "${t}" UNION ALL SELECT identity_hash FROM "${t}" WHERE identity_hash IS NOT NULL UNION ALL SELECT identity_hash FROM "${t}_revocations"`,
    })
    return r.rows.map((row) => row.v as string)
  },
})

it('stores nothing in clear: the row holds the hash of the id, ciphertext and the keyed identity hash', async () => {
  const store = await make()
  const s = await store.create({ identity: 'alice@example.com' })
  s.data.set('note', 'plaintext-marker-9d2b')
  await store.save(s)
  const { rows } = await pool.query({ text: `SELECT name, envelope, identity_hash FROM "${store.table}"` })
  expect(rows).toHaveLength(1)
  expect(rows[0].name).toBe(storageName(s.id))
  const bytes = Buffer.from(rows[0].envelope as Uint8Array)
  expect(bytes.subarray(0, 4).toString()).toBe('SEAL')
  for (const clear of [s.id, 'alice', 'plaintext-marker']) expect(bytes.includes(clear)).toBe(false)
  expect(rows[0].identity_hash).toMatch(/^[0-9a-f]{64}$/)
  await store.close()
})
