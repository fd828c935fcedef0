// Which Redis client errors mean "the store cannot serve right now" (SessionStoreUnavailableError):
// a lost or refused connection, a client giving up, and the server replies a failover or a
// resharding produces. Anything else (a bug, a script error) passes through unchanged.
import { SessionStoreUnavailableError } from '../core/errors'
import { SOCKET_CODES } from './socket-errors'

export const UNAVAILABLE = 'ERR_SESSION_STORE_UNAVAILABLE'

// Error classes of node-redis v5 and v6 and ioredis (by name or class name) meaning "not reachable"
// (or, like our own commandTimeout, "sent, outcome unknown").
const CONNECTION_ERRORS = new Set([
  'AbortError',
  'ClientClosedError',
  'ClientOfflineError',
  'ConnectionTimeoutError',
  'DisconnectsClientError',
  'ReconnectStrategyError',
  'RootNodesUnavailableError',
  'SocketClosedUnexpectedlyError',
  'SocketTimeoutError',
  'TimeoutError',
  'SocketTimeoutDuringMaintenanceError',
  'CommandTimeoutDuringMaintenanceError',
  // node-redis v6: a command that was sent, then timed out or was aborted while awaiting its reply.
  'TimeoutReadError',
  'AbortReadError',
  'CommandTimeoutReadDuringMaintenanceError',
  'MaxRetriesPerRequestError',
  'ClusterAllFailedError',
])
// Server replies while a node loads, fails over or reshards (READONLY: we reached a replica that
// was a master a moment ago; MOVED/ASK: the client gave up following redirections).
const UNAVAILABLE_REPLY = /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|READONLY|MOVED|ASK|NOREPLICAS|UNBLOCKED) /
// ioredis reports these as plain Errors.
const CLIENT_MESSAGES =
  /^(Connection is closed\.|None of startup nodes is available|Too many Cluster redirections|Failed to refresh slots cache|Stream isn't writeable|All sentinels are unreachable|Cluster isn't ready)/

/** A connection-level error as SessionStoreUnavailableError (cause kept); others unchanged. */
export function toUnavailable(err: unknown, what: string): unknown {
  if (err instanceof SessionStoreUnavailableError || !(err instanceof Error)) return err
  const e = err as Error & { code?: unknown }
  const className = (e.constructor as { name?: unknown } | undefined)?.name
  if (
    CONNECTION_ERRORS.has(e.name) ||
    (typeof className === 'string' && CONNECTION_ERRORS.has(className)) ||
    (typeof e.code === 'string' && SOCKET_CODES.has(e.code)) ||
    UNAVAILABLE_REPLY.test(e.message) ||
    CLIENT_MESSAGES.test(e.message)
  ) {
    return new SessionStoreUnavailableError(`Redis is not reachable: ${what} failed (${e.message})`, UNAVAILABLE, {
      cause: err,
    })
  }
  return err
}

/** The error for a command refused before sending because the client is not ready. */
export function notReady(what: string): SessionStoreUnavailableError {
  return new SessionStoreUnavailableError(`Redis is not reachable (client not ready): ${what} not sent`, UNAVAILABLE)
}

export function timedOut(what: string, ms: number): SessionStoreUnavailableError {
  return new SessionStoreUnavailableError(`Redis did not answer ${what} within ${ms} ms`, UNAVAILABLE)
}
