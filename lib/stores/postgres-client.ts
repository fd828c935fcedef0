// One small adapter over the PostgreSQL clients people already have: node-postgres (`pg`: a
// Pool, or one Client) and postgres.js (`sql`). The store speaks only through it: parameterised
// statements whose parameters are strings or Buffers (every number is cast in the SQL), rows as
// plain objects. Every call is one statement on whatever connection the client picks: the store
// never holds a connection, so none can leak or be left holding a lock.
// Nothing is imported from either package: both stay optional peers, the objects are checked
// structurally.
import { createHash } from 'node:crypto'
import { describe } from '../core/validate'

export type PgParam = string | Buffer | null
export type PgRow = Record<string, unknown>

export interface PgLink {
  readonly kind: 'node-postgres pool' | 'node-postgres client' | 'postgres.js'
  query(text: string, params: readonly PgParam[]): Promise<PgRow[]>
  /** False when an idle connection's failure would surface as an unhandled 'error' event (ends the process). */
  hasErrorListener(): boolean
}

export const SUPPORTED_PG =
  "a node-postgres Pool or Client (new Pool() / new Client() from 'pg') or a postgres.js sql (postgres() from 'postgres')"

type Fn = (...args: unknown[]) => unknown
type Obj = Record<string, unknown>
const isFn = (o: Obj, name: string): boolean => typeof o[name] === 'function'

/** The adapter for `client`, or a TypeError naming what is supported. */
export function linkPostgres(client: unknown, what = 'options.client'): PgLink {
  if (typeof client === 'function') {
    const c = client as unknown as Obj
    if (isFn(c, 'unsafe') && isFn(c, 'begin') && isFn(c, 'end')) return postgresJs(c)
  } else if (typeof client === 'object' && client !== null) {
    const c = client as Obj
    if (isFn(c, 'query') && isFn(c, 'connect')) {
      if (typeof c.totalCount === 'number' && typeof c.idleCount === 'number') return pgPool(c)
      if (typeof c.connectionParameters === 'object' && c.connectionParameters !== null) return pgClient(c)
    }
  }
  throw new TypeError(`${what} must be ${SUPPORTED_PG}, got ${describe(client)}`)
}

// node-postgres prepares a named statement once per connection: the name follows the text.
const names = new Map<string, string>()
function statementName(text: string): string {
  let name = names.get(text)
  if (name === undefined) {
    name = `sealed_session_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`
    names.set(text, name)
  }
  return name
}

type PgQuery = (config: { name: string; text: string; values: readonly PgParam[] }) => Promise<{ rows: PgRow[] }>

function pgQuery(target: Obj): (text: string, params: readonly PgParam[]) => Promise<PgRow[]> {
  const query = target.query as PgQuery
  return async (text, params) => (await query.call(target, { name: statementName(text), text, values: params })).rows
}

function listens(c: Obj): () => boolean {
  return () => !isFn(c, 'listenerCount') || (c.listenerCount as Fn).call(c, 'error') !== 0
}

function pgPool(c: Obj): PgLink {
  return { kind: 'node-postgres pool', query: pgQuery(c), hasErrorListener: listens(c) }
}

function pgClient(c: Obj): PgLink {
  return { kind: 'node-postgres client', query: pgQuery(c), hasErrorListener: listens(c) }
}

type Unsafe = (text: string, params: readonly PgParam[], options: { prepare: boolean }) => Promise<PgRow[]>

function postgresJs(c: Obj): PgLink {
  const unsafe = c.unsafe as Unsafe
  return {
    kind: 'postgres.js',
    query: async (text, params) => Array.from(await unsafe.call(c, text, params, { prepare: true })),
    hasErrorListener: () => true,
  }
}
