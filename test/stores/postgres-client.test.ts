// What PostgresSessionStore decides before it talks to a server: which clients it accepts (and
// that it imports neither package, so the package installs without them), which errors mean
// "unavailable", and the table names it derives and quotes.
import * as fs from 'node:fs'
import * as path from 'node:path'
import pg from 'pg'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { linkPostgres } from '../../lib/stores/postgres-client'
import { isRetryable, toUnavailable } from '../../lib/stores/postgres-errors'
import { tableNames } from '../../lib/stores/postgres-schema'
import { PostgresSessionStore } from '../../lib/stores/postgres-store'
import { ROOT } from '../helpers/run-node'

describe('PostgreSQL clients', () => {
  it('accepts a node-postgres Pool or Client and a postgres.js sql, without connecting', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1 })
    const client = new pg.Client({ host: '127.0.0.1', port: 1 })
    const sql = postgres({ host: '127.0.0.1', port: 1 })
    try {
      expect(linkPostgres(pool).kind).toBe('node-postgres pool')
      expect(linkPostgres(client).kind).toBe('node-postgres client')
      expect(linkPostgres(sql).kind).toBe('postgres.js')
      expect(pool.totalCount).toBe(0)
    } finally {
      await Promise.all([pool.end(), sql.end()])
    }
  })

  it('refuses anything else with a TypeError naming both', () => {
    for (const bad of [{}, null, 42, () => {}, { query() {} }, { query() {}, connect() {} }]) {
      expect(() => linkPostgres(bad)).toThrow(TypeError)
      expect(() => linkPostgres(bad)).toThrow(/node-postgres Pool or Client.*postgres\.js/)
    }
  })

  it('is an optional peer: the store modules import neither pg nor postgres', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
    expect(pkg.peerDependenciesMeta.pg).toEqual({ optional: true })
    expect(pkg.peerDependenciesMeta.postgres).toEqual({ optional: true })
    expect(pkg.dependencies?.pg).toBeUndefined()
    for (const f of fs.readdirSync(path.join(ROOT, 'lib', 'stores')).filter((f) => f.startsWith('postgres'))) {
      const src = fs.readFileSync(path.join(ROOT, 'lib', 'stores', f), 'utf8')
      expect(src).not.toMatch(
        /^import[^\n]* from '(pg|postgres)'|require\('(pg|postgres)'\)|import\('(pg|postgres)'\)/m,
      )
    }
  })
})

describe('PostgreSQL errors', () => {
  it('maps lost connections and shutdowns to SessionStoreUnavailableError, keeps the rest', () => {
    const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code })
    for (const e of [
      withCode('ECONNREFUSED'),
      withCode('57P01'),
      withCode('08006'),
      withCode('CONNECTION_CLOSED'),
      new Error('Connection terminated unexpectedly'),
      Object.assign(new AggregateError([withCode('ECONNREFUSED')], 'all failed'), {}),
    ])
      expect(toUnavailable(e, 'read')).toBeInstanceOf(SessionStoreUnavailableError)
    const missing = withCode('42P01', 'relation does not exist')
    expect(toUnavailable(missing, 'read')).toBe(missing)
    expect(isRetryable(withCode('40001'))).toBe(true)
    expect(isRetryable(withCode('40P01'))).toBe(true)
    expect(isRetryable(withCode('23505'))).toBe(false)
  })
})

describe('table names', () => {
  it('quotes a validated (optionally schema-qualified) name and derives the others from it', () => {
    expect(tableNames(undefined).table).toBe('"sealed_sessions"')
    const n = tableNames('app.Sessions')
    expect(n.table).toBe('"app"."Sessions"')
    expect(n.marks).toBe('"app"."Sessions_revocations"')
    expect(n.expiresIndex).toBe('"Sessions_expires_at_idx"')
    for (const bad of ['a;b', 'a.b.c', '"x"', 'drop table x', 'x'.repeat(41), '', '.x', 'x.'])
      expect(() => tableNames(bad)).toThrow(RangeError)
    expect(() => tableNames(1)).toThrow(TypeError)
  })

  it('schema() is the DDL, with the table given', () => {
    const ddl = PostgresSessionStore.schema({ table: 'app.sess' })
    expect(ddl).toContain('CREATE TABLE IF NOT EXISTS "app"."sess" (')
    expect(ddl).toContain('SET STORAGE EXTERNAL')
    expect(ddl).toContain('CREATE INDEX IF NOT EXISTS "sess_expires_at_idx" ON "app"."sess" (expires_at)')
    expect(ddl).toContain('CREATE TABLE IF NOT EXISTS "app"."sess_revocations"')
    expect(PostgresSessionStore.schema()).toContain('"sealed_sessions"')
    expect(() => PostgresSessionStore.schema({ table: 'a b' })).toThrow(RangeError)
    expect(() => PostgresSessionStore.schema({ tabel: 'x' } as never)).toThrow(TypeError)
  })
})
