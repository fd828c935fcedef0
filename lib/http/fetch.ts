// `sealed-session/fetch`: the Web-standard adapter of the shared session core, for anything that
// maps a Request to a Response (Hono, Next.js route handlers, Bun.serve, Deno.serve).
//
//   export const GET = withSession({ store }, async (request, session) => new Response('hi'))
//
// The wrapper reads the Cookie header, hands the handler its session, persists what the handler
// did once it returned its Response, and only then adds Set-Cookie to that Response. A handler
// that throws, or returns a 5xx or Response.error(), persists nothing but a logout; its error goes
// to the caller unchanged. A write-back that fails is answered with a 500 instead.
import type { Session, SessionShape } from '../session/session'
import { SessionExchange, checkSessionOptions, isErrorStatus, type SessionMiddlewareOptions } from './session-core'
import { describe } from '../core/validate'

export type WithSessionOptions = SessionMiddlewareOptions

export type SessionHandler<Data extends object = SessionShape> = (
  request: Request,
  session: Session<Data>,
) => Response | Promise<Response>

export function withSession<Data extends object = SessionShape>(
  options: WithSessionOptions,
  handler: SessionHandler<Data>,
): (request: Request) => Promise<Response> {
  const config = checkSessionOptions(options, 'withSession')
  if (typeof handler !== 'function') throw new TypeError(`handler must be a function, got ${describe(handler)}`)

  return async (request: Request): Promise<Response> => {
    if (!isRequest(request)) throw new TypeError(`request must be a Request, got ${describe(request)}`)
    const exchange = await SessionExchange.open(config, request.headers.get('cookie'))
    let response: Response
    try {
      response = await handler(request, exchange.session as Session<Data>)
      if (!isResponse(response)) throw new TypeError(`the handler must return a Response, got ${describe(response)}`)
    } catch (err) {
      await settleFailed(exchange)
      throw err
    }
    // Response.error() (a network error, status 0) fails like a 5xx.
    if (response.type === 'error' || isErrorStatus(response.status)) exchange.fail()
    // The URL's scheme is what the server saw (or what the platform was told by its proxy).
    const encrypted = new URL(request.url).protocol === 'https:'
    let cookie: string | null
    try {
      cookie = exchange.cookieFor(encrypted, request.headers.get('x-forwarded-proto'))
      // Not stored (the session is gone: another request logged out): no cookie for it.
      if (!(await exchange.persist())) cookie = null
    } catch (err) {
      // Never a success: the handler's response may say that a logout happened. No cookie
      // either: the client keeps the one it has, and can try again.
      config.logger.error('session write-back failed', { reason: String(err) })
      discardBody(response)
      return new Response('Internal Server Error', {
        status: 500,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
      })
    }
    // A network error carries no headers: a clearing cookie cannot go with it.
    if (cookie === null || response.type === 'error') return response
    return withSetCookie(response, cookie)
  }
}

/** The handler threw: a logout in it is still carried out, nothing else is written. A store
 *  failure then is only logged, the handler's error being the one the caller must see. */
async function settleFailed(exchange: SessionExchange): Promise<void> {
  exchange.fail()
  await exchange.writeBack().catch(() => undefined)
}

/** Releases a body that will not be sent (a stream from fetch() holds its connection). */
function discardBody(response: Response): void {
  const body = response.body as ReadableStream | null | undefined
  if (typeof body?.cancel === 'function' && !body.locked) body.cancel().catch(() => undefined)
}

/** The response with one more Set-Cookie. Responses from Response.redirect() or fetch() have
 *  immutable headers: those are copied into a new Response around the same body. */
function withSetCookie(response: Response, cookie: string): Response {
  try {
    response.headers.append('set-cookie', cookie)
    return response
  } catch {
    const copy = new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers: new Headers(response.headers),
    })
    copy.headers.append('set-cookie', cookie)
    return copy
  }
}

// By shape, not instanceof: platforms and servers (@hono/node-server, edge runtimes) bring their
// own Request and Response classes.
function isRequest(value: unknown): value is Request {
  const r = value as Partial<Request> | null
  return typeof r === 'object' && r !== null && typeof r.url === 'string' && typeof r.headers?.get === 'function'
}

function isResponse(value: unknown): value is Response {
  const r = value as Partial<Response> | null
  return typeof r === 'object' && r !== null && typeof r.status === 'number' && typeof r.headers?.append === 'function'
}
