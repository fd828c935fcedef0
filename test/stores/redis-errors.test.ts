// Which client errors mean "Redis cannot serve right now" (SessionStoreUnavailableError): the
// connection-level errors of node-redis 5 and 6 and ioredis, matched by class name (neither package
// is imported); anything else (a script error, a bug) passes through unchanged.
import { describe, expect, it } from 'vitest'
import { SessionStoreUnavailableError } from '../../lib/core/errors'
import { toUnavailable } from '../../lib/stores/redis-errors'

function named(name: string, message = 'x'): Error {
  const Cls = { [name]: class extends Error {} }[name]
  return new Cls(message)
}

describe('toUnavailable', () => {
  it.each([
    'ClientClosedError',
    'SocketClosedUnexpectedlyError',
    'SocketTimeoutDuringMaintenanceError',
    // node-redis 6: sent, then no reply in time (or aborted): the outcome is unknown.
    'TimeoutReadError',
    'AbortReadError',
    'CommandTimeoutReadDuringMaintenanceError',
    'MaxRetriesPerRequestError',
  ])('%s becomes SessionStoreUnavailableError, the client error as its cause', (name) => {
    const err = named(name, 'Command timed out after 5ms waiting for a reply; it may have been executed')
    const mapped = toUnavailable(err, 'GET')
    expect(mapped).toBeInstanceOf(SessionStoreUnavailableError)
    expect(mapped).toMatchObject({ code: 'ERR_SESSION_STORE_UNAVAILABLE', cause: err })
  })

  it("node-redis 6's MaxCommandRedirectionsError, by its message as ioredis words it", () => {
    expect(toUnavailable(named('MaxCommandRedirectionsError', 'Too many Cluster redirections'), 'GET')).toBeInstanceOf(
      SessionStoreUnavailableError,
    )
  })

  it('other errors pass through unchanged', () => {
    for (const err of [named('ErrorReply', 'ERR Error running script'), named('WatchError'), new TypeError('bug')]) {
      expect(toUnavailable(err, 'EVALSHA')).toBe(err)
    }
  })
})
