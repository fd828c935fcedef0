// Which PostgreSQL client errors mean "the store cannot serve right now"
// (SessionStoreUnavailableError): a lost or refused connection, a server shutting down or
// starting, a statement cancelled, a client giving up. Serialization failures and deadlocks are
// retried by the store. Anything else (a bug, a missing table) passes through unchanged.
import { SessionStoreUnavailableError } from '../core/errors'
import { SOCKET_CODES } from './socket-errors'

const UNAVAILABLE = 'ERR_SESSION_STORE_UNAVAILABLE'

// SQLSTATE: 08xxx connection exception, 57P01..57P05 shutdown/cannot connect now/idle timeouts,
// 57014 statement cancelled (statement_timeout), 53300 too many connections, 25006 read-only
// transaction (a standby after failover), 55P03 lock_timeout.
const STATES = /^(08...|57P0.|57014|53300|25006|55P03)$/
// Errors the clients raise themselves (postgres.js codes; node's socket codes).
const CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  ...SOCKET_CODES,
  'ENOENT', // a Unix socket that is not there (server down)
])
// node-postgres reports these as plain Errors.
const MESSAGES =
  /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end|Query read timeout)/

/** Serialization failure or deadlock: the statement may simply run again. */
export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === '40001' || code === '40P01'
}

/** A connection-level error as SessionStoreUnavailableError (cause kept); others unchanged. */
export function toUnavailable(err: unknown, what: string): unknown {
  if (err instanceof SessionStoreUnavailableError || !(err instanceof Error)) return err
  const e = err as Error & { code?: unknown; errors?: unknown }
  const code = typeof e.code === 'string' ? e.code : ''
  // node's AggregateError (every address refused) carries the socket codes inside.
  const inner = Array.isArray(e.errors) ? (e.errors as { code?: unknown }[]).map((x) => x?.code) : []
  if (STATES.test(code) || CODES.has(code) || inner.some((c) => CODES.has(c as string)) || MESSAGES.test(e.message)) {
    return new SessionStoreUnavailableError(`PostgreSQL is not reachable: ${what} failed (${e.message})`, UNAVAILABLE, {
      cause: err,
    })
  }
  return err
}

export function timedOut(what: string, ms: number): SessionStoreUnavailableError {
  return new SessionStoreUnavailableError(`PostgreSQL did not answer ${what} within ${ms} ms`, UNAVAILABLE)
}
