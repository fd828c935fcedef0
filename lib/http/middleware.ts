// Cookie sessions for Connect/Express and bare node:http: the node:http adapter of the shared
// session core (session-core.ts), which holds every decision; this file only hooks the response.
//
// At the end of the response, the cookie is decided once (the first of writeHead or end), then
// the session is persisted, then the response finishes: a client that sees the response can rely
// on the store holding what the handler did. After a login's write-back, req.session points at
// the moved copy, for code that looks at it once the response is done.
//
// A 5xx status (how an error reaches a Connect/Express middleware: their error handling answers
// it) marks the request failed: nothing but a logout is persisted. A write-back that fails is
// never answered as a success: before the headers leave, next(err) (without next, a bare 500);
// after, the connection is destroyed.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Session } from '../session/session'
import {
  SessionExchange,
  checkSessionOptions,
  isErrorStatus,
  isTlsSocket,
  type SessionConfig,
  type SessionCookieOptions,
  type SessionMiddlewareOptions,
} from './session-core'

export type { SessionCookieOptions, SessionMiddlewareOptions }

/** A request once the middleware has run. Not a global augmentation of IncomingMessage: that
 *  would clash with express-session's own `session` on Express.Request. */
export type SessionRequest = IncomingMessage & { session?: Session }

export type NextFunction = (err?: unknown) => void

/** Without `next` it returns a promise that resolves once req.session is set (bare node:http). */
export type SessionMiddleware = {
  (req: IncomingMessage, res: ServerResponse): Promise<void>
  (req: IncomingMessage, res: ServerResponse, next: NextFunction): void
}

// Marks a request the middleware already handled (mounted twice, or app and router both).
const HANDLED = Symbol('sealed-session.handled')

export function sessionMiddleware(options: SessionMiddlewareOptions): SessionMiddleware {
  const config = checkSessionOptions(options, 'sessionMiddleware')
  function middleware(req: IncomingMessage, res: ServerResponse): Promise<void>
  function middleware(req: IncomingMessage, res: ServerResponse, next: NextFunction): void
  function middleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): Promise<void> | void {
    const request = req as SessionRequest & { [HANDLED]?: true }
    let opened: SessionExchange | Promise<SessionExchange> | null = null
    let failure: { err: unknown } | null = null
    if (!request[HANDLED]) {
      request[HANDLED] = true
      try {
        opened = SessionExchange.open(config, req.headers.cookie)
      } catch (err) {
        failure = { err }
      }
    }
    // A store that answered at once (a cached file read): the handler runs in this same turn.
    if (!(opened instanceof Promise)) {
      if (opened !== null) start(config, request, res, opened, next)
      if (next === undefined) return failure === null ? Promise.resolve() : Promise.reject(failure.err)
      return failure === null ? next() : next(failure.err)
    }
    const started = opened.then((exchange) => start(config, request, res, exchange, next))
    if (next === undefined) return started
    // Express 4 ignores a returned promise and Express 5 would report a rejection twice: with
    // next, errors go to next(err) and nothing is returned.
    started.then(() => next(), next)
  }
  return middleware
}

function start(
  config: SessionConfig,
  req: SessionRequest,
  res: ServerResponse,
  exchange: SessionExchange,
  next: NextFunction | undefined,
): void {
  req.session = exchange.session
  watch(config, req, res, exchange, next)
}

function watch(
  config: SessionConfig,
  req: SessionRequest,
  res: ServerResponse,
  exchange: SessionExchange,
  next: NextFunction | undefined,
): void {
  let ourCookie: string | null = null

  const decide = (): void => {
    if (exchange.plan !== null) return
    const cookie = exchange.cookieFor(isTlsSocket(req.socket), req.headers['x-forwarded-proto'])
    if (cookie !== null && !res.headersSent) {
      ourCookie = cookie
      appendSetCookie(res, cookie)
    }
  }

  // Do not hand out an id the store does not hold: the client keeps the cookie it has.
  const withdraw = (): void => {
    if (ourCookie !== null && !res.headersSent) removeSetCookie(res, ourCookie)
  }

  // The way on-headers does it: the caller's header argument is applied first, so a Set-Cookie
  // passed to writeHead cannot overwrite ours. Node's implicit headers (write/end without
  // writeHead) also go through res.writeHead, so this sees every response.
  const writeHead = res.writeHead
  res.writeHead = function (
    this: ServerResponse,
    statusCode: number,
    reason?: unknown,
    headers?: unknown,
  ): ServerResponse {
    res.writeHead = writeHead
    const message = typeof reason === 'string' ? reason : undefined
    const given = message === undefined ? reason : headers
    if (!this.headersSent) {
      applyHeaders(this, given)
      if (isErrorStatus(statusCode)) exchange.fail()
      decide()
    }
    const original = writeHead as (this: ServerResponse, code: number, message?: string) => ServerResponse
    return message === undefined ? original.call(this, statusCode) : original.call(this, statusCode, message)
  } as ServerResponse['writeHead']

  // end() waits for the store, then ends for real: headers (with Content-Length) and body go out
  // only once the session is persisted. Repeated calls while saving are ignored, as Node ignores
  // an end() after end().
  const end = res.end
  let ending = false
  res.end = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (ending) return this
    ending = true
    const finish = (): void => {
      res.end = end
      ;(end as (...a: unknown[]) => unknown).apply(res, args)
    }
    // Also read here: set after the headers left (a late error), it still keeps the store as is.
    if (isErrorStatus(res.statusCode)) exchange.fail()
    try {
      decide()
    } catch (err) {
      config.logger.error('session cookie could not be set', { reason: String(err) })
      finish()
      return this
    }
    // Called back from a promise: a throw from end() here (its own argument check, a destroyed
    // stream) would be an unhandled rejection, which ends the process. Without the middleware it
    // would have thrown into the handler; here it is logged and the connection closed, so the
    // client is not left waiting for a response that cannot come.
    const finishLater = (): void => {
      try {
        finish()
      } catch (err) {
        config.logger.error('response could not be ended', { reason: String(err) })
        res.destroy()
      }
    }
    exchange.writeBack().then(
      (stored) => {
        if (!stored) withdraw()
        req.session = exchange.session
        finishLater()
      },
      (err: unknown) => answerFailure(err),
    )
    return this
  } as ServerResponse['end']

  // The handler's response is dropped: it would tell the client that what it asked for (a
  // logout) happened. The client keeps the cookie it has, so it can try again.
  const answerFailure = (err: unknown): void => {
    res.end = end
    res.writeHead = writeHead
    if (res.headersSent) return void res.destroy()
    withdraw()
    try {
      if (next !== undefined) {
        // The app's error handling answers; the handler's Content-Length would not fit its body.
        res.removeHeader('content-length')
        next(err)
        return
      }
      for (const name of res.getHeaderNames()) res.removeHeader(name)
      res.statusCode = 500
      res.end()
    } catch (error) {
      config.logger.error('response could not be ended', { reason: String(error) })
      res.destroy()
    }
  }

  // An error after the headers left can close the response without end() (Express destroys the
  // connection then): a logout is still carried out.
  res.once('close', () => {
    if (ending) return
    exchange.abandon().catch((err: unknown) => config.logger.error('session logout failed', { reason: String(err) }))
  })
}

function appendSetCookie(res: ServerResponse, value: string): void {
  const current = res.getHeader('set-cookie')
  const list = current === undefined ? [] : Array.isArray(current) ? current : [String(current)]
  res.setHeader('set-cookie', [...list, value])
}

function removeSetCookie(res: ServerResponse, value: string): void {
  const current = res.getHeader('set-cookie')
  if (!Array.isArray(current)) return
  const rest = current.filter((c) => c !== value)
  if (rest.length === 0) res.removeHeader('set-cookie')
  else res.setHeader('set-cookie', rest)
}

/** writeHead's header argument through setHeader, as Node applies it once setHeader was used:
 *  object keys, or a flat [name, value, ...] array whose repeated names (two Set-Cookie) are
 *  kept together, as Node keeps them when it sends such an array as is. */
function applyHeaders(res: ServerResponse, headers: unknown): void {
  if (Array.isArray(headers)) {
    const byName = new Map<string, { name: string; values: string[] }>()
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (!headers[i]) continue
      const name = String(headers[i])
      const entry = byName.get(name.toLowerCase()) ?? { name, values: [] }
      entry.values.push(...([] as unknown[]).concat(headers[i + 1]).map(String))
      byName.set(name.toLowerCase(), entry)
    }
    for (const { name, values } of byName.values()) res.setHeader(name, values.length === 1 ? values[0] : values)
  } else if (typeof headers === 'object' && headers !== null) {
    for (const [name, value] of Object.entries(headers)) if (name) res.setHeader(name, value as string)
  }
}
