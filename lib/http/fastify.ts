// `sealed-session/fastify`: the Fastify 5 adapter of the shared session core.
//
//   app.register(sealedSession, { store })            then request.session in every route
//
// onRequest reconnects to the cookie's session (or starts a fresh one); onSend, which runs before
// the headers leave, decides the cookie and persists what the handler did, so a client that sees
// the response can rely on the store. A route that throws (onError) or a 5xx reply persists
// nothing but a logout; a write-back that fails is thrown from onSend, so Fastify's error
// handling answers instead of the route. The plugin is not encapsulated (as fastify-plugin would
// mark it): its hooks cover the routes of the instance it is registered on. A reply taken over
// with reply.hijack() skips onSend and so is not written back.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Session, SessionShape } from '../session/session'
import {
  SessionExchange,
  checkSessionOptions,
  isErrorStatus,
  isTlsSocket,
  type SessionConfig,
  type SessionMiddlewareOptions,
} from './session-core'

export type SealedSessionOptions = SessionMiddlewareOptions

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the sealed-session plugin for every request of the instance it is registered on. */
    session: Session<SessionShape>
  }
}

const EXCHANGE = Symbol('sealed-session.exchange')
type WithExchange = FastifyRequest & { [EXCHANGE]?: SessionExchange }

async function plugin(app: FastifyInstance, options: SealedSessionOptions): Promise<void> {
  // Fastify hands the plugin a copy of the options object it was given; check that copy.
  const config = checkSessionOptions(options, 'sealedSession')
  app.decorateRequest('session', null as unknown as Session<SessionShape>)

  // A callback hook, not an async one: a session read without waiting goes on in the same turn.
  app.addHook('onRequest', (request: WithExchange, _reply: FastifyReply, done: (err?: Error) => void) => {
    if (request[EXCHANGE] !== undefined) return done()
    const attach = (exchange: SessionExchange): void => {
      request[EXCHANGE] = exchange
      request.session = exchange.session
    }
    let opened: SessionExchange | Promise<SessionExchange>
    try {
      opened = SessionExchange.open(config, request.headers.cookie)
    } catch (err) {
      return done(err as Error)
    }
    if (!(opened instanceof Promise)) {
      attach(opened)
      return done()
    }
    opened.then(
      (exchange) => {
        attach(exchange)
        done()
      },
      (err: unknown) => done(err as Error),
    )
  })

  // Runs before the error handler's reply (and so before its onSend), whatever status that has.
  app.addHook('onError', async (request: WithExchange) => {
    request[EXCHANGE]?.fail()
  })

  // Once per request: the reply of the error handler that a failed write-back leads to passes
  // through here again and goes out as it is.
  app.addHook('onSend', async (request: WithExchange, reply: FastifyReply, payload: unknown) => {
    const exchange = request[EXCHANGE]
    if (exchange === undefined || exchange.plan !== null) return payload
    if (isErrorStatus(reply.statusCode)) exchange.fail()
    await writeBack(config, request, reply, exchange)
    return payload
  })
}

async function writeBack(
  config: SessionConfig,
  request: WithExchange,
  reply: FastifyReply,
  exchange: SessionExchange,
): Promise<void> {
  let cookie: string | null
  try {
    cookie = exchange.cookieFor(isTlsSocket(request.raw.socket), request.headers['x-forwarded-proto'])
  } catch (err) {
    config.logger.error('session cookie could not be set', { reason: String(err) })
    return
  }
  const stored = await exchange.writeBack()
  // Only an id the store holds goes out: a refused write leaves the client the cookie it has.
  if (cookie !== null && stored) reply.header('set-cookie', cookie)
  request.session = exchange.session
}

// What fastify-plugin would set: no encapsulation, and a name in Fastify's plugin tree.
const meta = plugin as unknown as Record<symbol, unknown>
meta[Symbol.for('skip-override')] = true
meta[Symbol.for('fastify.display-name')] = 'sealed-session'
meta[Symbol.for('plugin-meta')] = { name: 'sealed-session', fastify: '5.x' }

/** The Fastify 5 plugin: `app.register(sealedSession, { store, ...middleware options })`. */
export const sealedSession: FastifyPluginAsync<SealedSessionOptions> = plugin
export default sealedSession
