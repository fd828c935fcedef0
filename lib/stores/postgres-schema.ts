// The tables of PostgresSessionStore and the statements it runs on them, built once per table
// name. Names are validated as identifiers and always quoted, so a table name is never SQL.
//
// <table>: one row per session: name (hex SHA-256 of the id), envelope (sealed record, bytea
// stored EXTERNAL: uncompressed, so a bounded read fetches only the bytes it asks for), version
// (compare-and-swap), expires_at (ms since the epoch, indexed for the purge), identity_hash (hex
// HMAC of the avatar's identity under the index key; indexed, null for an anonymous session).
// <table>_revocations: one row per identity ever revoked: its hex HMAC and the revocation mark.
import { describe } from '../core/validate'

export const DEFAULT_TABLE = 'sealed_sessions'
// The longest derived name ("<table>_revocations_pkey") must stay within PostgreSQL's 63 bytes.
const MAX_TABLE = 40
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

export interface TableNames {
  /** As given ("app.sessions"), for the purge lock's key and messages. */
  readonly given: string
  /** Quoted, schema-qualified when given so. */
  readonly table: string
  readonly marks: string
  /** The quoted spellings to_regclass takes, to see what exists. */
  readonly regclass: { table: string; marks: string; expires: string; identity: string }
  readonly expiresIndex: string
  readonly identityIndex: string
}

const quote = (s: string): string => `"${s}"`

/** Validates `table` ("name" or "schema.name") and derives every name from it. */
export function tableNames(table: unknown, what = 'options.table'): TableNames {
  if (table === undefined) table = DEFAULT_TABLE
  if (typeof table !== 'string') throw new TypeError(`${what} must be a string, got ${describe(table)}`)
  const parts = table.split('.')
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p) && p.length <= 63) || parts.at(-1)!.length > MAX_TABLE) {
    throw new RangeError(
      `${what} must be an identifier of at most ${MAX_TABLE} characters (letters, digits, _), optionally schema-qualified ("schema.table"), got ${describe(table)}`,
    )
  }
  const base = parts.at(-1) as string
  const schema = parts.length === 2 ? `${quote(parts[0])}.` : ''
  const expires = `${base}_expires_at_idx`
  const identity = `${base}_identity_hash_idx`
  return {
    given: table,
    table: schema + quote(base),
    marks: schema + quote(`${base}_revocations`),
    regclass: {
      table: schema + quote(base),
      marks: schema + quote(`${base}_revocations`),
      expires: schema + quote(expires),
      identity: schema + quote(identity),
    },
    expiresIndex: quote(expires),
    identityIndex: quote(identity),
  }
}

/** The DDL, one statement per entry, in the order init() runs them. */
export function ddl(n: TableNames): { table: string[]; expires: string; identity: string; marks: string } {
  return {
    table: [
      `CREATE TABLE IF NOT EXISTS ${n.table} (
  name text PRIMARY KEY,
  envelope bytea NOT NULL,
  version bigint NOT NULL,
  expires_at bigint NOT NULL,
  identity_hash text
)`,
      // Ciphertext does not compress; uncompressed out-of-line storage lets substring() read a prefix.
      `ALTER TABLE ${n.table} ALTER COLUMN envelope SET STORAGE EXTERNAL`,
    ],
    expires: `CREATE INDEX IF NOT EXISTS ${n.expiresIndex} ON ${n.table} (expires_at)`,
    identity: `CREATE INDEX IF NOT EXISTS ${n.identityIndex} ON ${n.table} (identity_hash) WHERE identity_hash IS NOT NULL`,
    marks: `CREATE TABLE IF NOT EXISTS ${n.marks} (
  identity_hash text PRIMARY KEY,
  revoked_before bigint NOT NULL
)`,
  }
}

/** The whole DDL as one script (for migration tools). */
export function schemaScript(n: TableNames): string {
  const d = ddl(n)
  return `${[...d.table, d.expires, d.identity, d.marks].join(';\n')};\n`
}

/**
 * init() as one statement: a DO block that takes a transaction-level advisory lock (app servers
 * starting together go in turn; the lock ends with the statement, whatever happens), then creates
 * only what is missing, so a complete schema takes no table lock. Names are validated identifiers,
 * safe inside the literals.
 */
export function initBlock(n: TableNames): string {
  const d = ddl(n)
  const r = n.regclass
  const missing = (rel: string, steps: string[]) =>
    `  IF to_regclass('${rel}') IS NULL THEN\n${steps.map((x) => `    ${x};\n`).join('')}  END IF;\n`
  return (
    'DO $sealed_session$\nBEGIN\n' +
    `  PERFORM pg_advisory_xact_lock(hashtextextended('${lockKey(n, 'init')}', 0));\n` +
    missing(r.table, d.table) +
    missing(r.expires, [d.expires]) +
    missing(r.identity, [d.identity]) +
    missing(r.marks, [d.marks]) +
    'END\n$sealed_session$'
  )
}

/** The statements the store runs; `readBytes` is maxBytes + 1 (the bounded read). */
export function statements(n: TableNames, readBytes: number) {
  const t = n.table
  const env = `substring(envelope from 1 for ${readBytes}) AS envelope`
  const set = 'envelope = $2, version = $3::bigint, expires_at = $4::bigint, identity_hash = $5'
  const insert = `INSERT INTO ${t} AS s (name, envelope, version, expires_at, identity_hash) VALUES ($1, $2, $3::bigint, $4::bigint, $5)`
  const upsert =
    'ON CONFLICT (name) DO UPDATE SET envelope = EXCLUDED.envelope, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at, identity_hash = EXCLUDED.identity_hash'
  return {
    // The row and its identity's revocation mark, in one statement (one snapshot).
    read: `SELECT version::text AS version, expires_at::text AS expires_at, xmin::text AS xmin, identity_hash, (SELECT m.revoked_before::text FROM ${n.marks} m WHERE m.identity_hash = s.identity_hash) AS mark, ${env} FROM ${t} s WHERE name = $1`,
    // $6: the version compared; $7: now (an expired row is no longer live); $8: the key ids this
    // store can open, 'kid,kid' (bytes 8..11 of the envelope): a row sealed under a key it lacks
    // is unreadable here, so not the version it read.
    swap: `UPDATE ${t} SET ${set} WHERE name = $1 AND version = $6::bigint AND expires_at > $7::bigint AND encode(substring(envelope from 9 for 4), 'hex') = ANY(string_to_array($8, ',')) RETURNING 1 AS ok`,
    // $6: now. A row there is replaced only once expired.
    insert: `${insert} ${upsert} WHERE s.expires_at <= $6::bigint RETURNING 1 AS ok`,
    // $6: the xmin of the unreadable row seen: replaced only if it is still that row version.
    replace: `UPDATE ${t} SET ${set} WHERE name = $1 AND xmin = $6::xid RETURNING 1 AS ok`,
    put: `${insert} ${upsert}`,
    remove: `DELETE FROM ${t} WHERE name = $1 RETURNING ${env}`,
    removeVersion: `DELETE FROM ${t} WHERE name = $1 AND version = $2::bigint RETURNING ${env}`,
    // $2: now. An expired row read is removed then and there.
    removeExpired: `DELETE FROM ${t} WHERE name = $1 AND expires_at <= $2::bigint`,
    live: `SELECT 1 AS ok FROM ${t} WHERE name = $1 AND expires_at > $2::bigint`,
    // $1: 'hash,hash': every index name of one identity (one per key while keys rotate), read in
    // one statement: a row moving from an old key's name to the new one is seen either way.
    indexList: `SELECT name, expires_at::text AS expires_at FROM ${t} WHERE identity_hash = ANY(string_to_array($1, ','))`,
    // Only rows past their expiry lose their entry: a live session's entry is never dropped.
    indexRemove: `UPDATE ${t} SET identity_hash = NULL WHERE identity_hash = $1 AND name = ANY(string_to_array($2, ',')) AND expires_at <= $3::bigint`,
    markRead: `SELECT revoked_before::text AS mark FROM ${n.marks} WHERE identity_hash = $1`,
    markRaise: `INSERT INTO ${n.marks} AS m (identity_hash, revoked_before) VALUES ($1, $2::bigint) ON CONFLICT (identity_hash) DO UPDATE SET revoked_before = GREATEST(m.revoked_before, EXCLUDED.revoked_before)`,
    // $1: now, $2: batch size, $3: the lock key. One batch under a transaction-level advisory
    // lock taken first (MATERIALIZED: exactly once); ok false: another app server is purging.
    purge: `WITH lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(hashtextextended($3, 0)) AS ok), doomed AS (SELECT name FROM ${t} WHERE (SELECT ok FROM lock) AND expires_at <= $1::bigint ORDER BY expires_at LIMIT $2::int FOR UPDATE SKIP LOCKED), gone AS (DELETE FROM ${t} s USING doomed WHERE s.name = doomed.name RETURNING 1) SELECT (SELECT ok FROM lock) AS ok, (SELECT count(*)::int FROM gone) AS n`,
    // $1: the last name of the previous page; $2: now.
    page: `SELECT name, version::text AS version, expires_at::text AS expires_at, xmin::text AS xmin, ${env} FROM ${t} WHERE name > $1 AND expires_at > $2::bigint ORDER BY name LIMIT 500`,
    init: initBlock(n),
  }
}

export type Statements = ReturnType<typeof statements>

/** The advisory lock keys (hashed by hashtextextended in SQL), documented for operators. */
export const lockKey = (n: TableNames, what: 'init' | 'purge'): string => `sealed-session:${what}:${n.given}`
