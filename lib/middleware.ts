// Cookie sessions for Connect/Express and bare node:http.
//
// One request's life: read the cookie, check the id's form (no store I/O for a malformed one),
// reconnect through store.get or start a fresh in-memory session, put it on req.session. At the
// end of the response, decide once what the cookie must say (the first of writeHead or end), then
// persist, then let the response finish: a client that sees the response can rely on the store
// holding what the handler did.
//
// Login (session.attachAvatar): the handler keeps using the same Session object for the rest of
// the request; at write-back its contents move to a fresh id, the old id is deleted and the cookie
// carries the new id, so an id planted before login (fixation) is worthless. Afterwards
// req.session points at the moved copy, for code that looks at it once the response is done.
// Logout (session.invalidate): the store entry is deleted and the cookie cleared.
//
// Concurrency: the store's save is a compare-and-swap that re-applies this request's own changes
// onto whatever other requests saved meanwhile, and resolves false when the session is gone. A
// false means another request logged out (or the session expired): nothing was written, and this
// response must not hand the cookie back, so the Set-Cookie it prepared is withdrawn.
// The cookie's Max-Age is re-sent whenever the server-side expiry moves (a write-back, or a read
// that persisted its touch), so the browser's copy lives exactly as long as the stored session.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parse, serialize, type SerializeOptions } from 'cookie'
import { generateSessionId, isValidSessionId } from './ids'
import { isPlainObject } from './json'
import { checkLogger, type Logger } from './logger'
import { persistedTouch, Session } from './session'
import { DEFAULT_TTL, checkTtl, type SessionStore } from './store'
import { describe } from './validate'

export interface SessionCookieOptions {
  /** Default true: page scripts cannot read the cookie. */
  httpOnly?: boolean
  /** Default 'lax'. 'none' needs `secure` other than false (browsers drop it otherwise). */
  sameSite?: 'lax' | 'strict' | 'none'
  /** Default 'auto': Secure when the request came over HTTPS. */
  secure?: boolean | 'auto'
  /** Default '/'. */
  path?: string
  domain?: string
}

export interface SessionMiddlewareOptions {
  store: SessionStore
  /** Default 'sid'. */
  cookieName?: string
  cookie?: SessionCookieOptions
  /** Persist (and send a cookie for) new sessions nobody changed. Default false. */
  saveUninitialized?: boolean
  /** Send the cookie on every response. Default false: it is sent when the session's server-side
   *  expiry moves (every write-back and every touch the store persisted). */
  rolling?: boolean
  /** With secure 'auto', also believe `X-Forwarded-Proto: https` (only behind a proxy you run). */
  trustProxy?: boolean
  /** Idle timeout of new sessions in ms. Default: the store's defaultTtl, else 1 h. */
  ttl?: number
  /** Where write-back failures are reported. Default: silent, like the stores (no log line
   *  unless you ask for one); a failure before the handler still reaches next(err). */
  logger?: Logger
}

/** A request once the middleware has run. Not a global augmentation of IncomingMessage: that
 *  would clash with express-session's own `session` on Express.Request. */
export type SessionRequest = IncomingMessage & { session?: Session }

export type NextFunction = (err?: unknown) => void

/** Without `next` it returns a promise that resolves once req.session is set (bare node:http). */
export type SessionMiddleware = {
  (req: IncomingMessage, res: ServerResponse): Promise<void>
  (req: IncomingMessage, res: ServerResponse, next: NextFunction): void
}

// RFC 6265 token characters, the only ones a cookie name may hold.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// A path attribute cannot hold ';' or control characters (it would end or break the header).
const COOKIE_PATH = /^\/[\x20-\x3a\x3c-\x7e]*$/
const COOKIE_DOMAIN = /^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i
const OPTION_KEYS = new Set(['store', 'cookieName', 'cookie', 'saveUninitialized', 'rolling', 'trustProxy', 'ttl', 'logger'])
const COOKIE_KEYS = new Set(['httpOnly', 'sameSite', 'secure', 'path', 'domain'])
// Marks a request the middleware already handled (mounted twice, or app and router both).
const HANDLED = Symbol('sealed-session.handled')
// Ids are base64url: nothing to decode, and no decoding means no second spelling of an id.
const RAW = (value: string): string => value

interface Config {
  store: SessionStore
  cookieName: string
  cookie: { httpOnly: boolean; sameSite: 'lax' | 'strict' | 'none'; secure: boolean | 'auto'; path: string; domain?: string }
  saveUninitialized: boolean
  rolling: boolean
  trustProxy: boolean
  ttl: number
  maxAge: number | undefined
  logger: Logger
}

export function sessionMiddleware(options: SessionMiddlewareOptions): SessionMiddleware {
  const config = checkOptions(options)
  function middleware(req: IncomingMessage, res: ServerResponse): Promise<void>
  function middleware(req: IncomingMessage, res: ServerResponse, next: NextFunction): void
  function middleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): Promise<void> | void {
    const started = start(config, req as SessionRequest & { [HANDLED]?: true }, res)
    if (next === undefined) return started
    // Express 4 ignores a returned promise and Express 5 would report a rejection twice: with
    // next, errors go to next(err) and nothing is returned.
    started.then(() => next(), next)
  }
  return middleware
}

async function start(config: Config, req: SessionRequest & { [HANDLED]?: true }, res: ServerResponse): Promise<void> {
  if (req[HANDLED]) return
  req[HANDLED] = true
  const header = req.headers.cookie
  // parse() takes the first of duplicate names, as browsers send the most specific path first.
  const raw = typeof header === 'string' ? parse(header, { decode: RAW })[config.cookieName] : undefined
  // The id's form is checked before any I/O: a hostile cookie never reaches the store.
  // A store failure (not a missing session) rejects: the caller gets next(err), not a new session.
  const found = raw !== undefined && isValidSessionId(raw) ? await config.store.get(raw) : null
  const session = found ?? new Session(generateSessionId(), null, config.ttl, { maxAge: config.maxAge })
  req.session = session
  watch(config, req, res, session, found === null, raw !== undefined)
}

type Plan =
  | { kind: 'none' } // read-only request of a new visitor: nothing to store, no cookie
  | { kind: 'keep'; cookie: string | null } // save under the same id when dirty
  | { kind: 'move'; newId: string; cookie: string } // login: save under newId, delete the old id
  | { kind: 'drop'; cookie: string | null } // logout: delete, cookie cleared

function watch(config: Config, req: SessionRequest, res: ServerResponse, session: Session, isNew: boolean, hadCookie: boolean): void {
  let plan: Plan | null = null
  let ourCookie: string | null = null

  // Decided once, before headers leave: later changes to the session can no longer change the
  // cookie, so end() checks what it still may do against this plan.
  const decide = (): Plan => {
    if (plan !== null) return plan
    const secure = config.cookie.secure === 'auto' ? isHttps(req, config.trustProxy) : config.cookie.secure
    if (session.invalidated) {
      plan = { kind: 'drop', cookie: hadCookie ? clearCookie(config, secure) : null }
    } else if (session.needsNewId) {
      const newId = generateSessionId()
      plan = { kind: 'move', newId, cookie: setCookie(config, newId, session, secure) }
    } else if (isNew) {
      const persist = session.dirty || config.saveUninitialized
      plan = persist ? { kind: 'keep', cookie: setCookie(config, session.id, session, secure) } : { kind: 'none' }
    } else {
      // The stored expiry moves on a write-back and on a persisted touch: the cookie follows it.
      const moves = config.rolling || session.dirty || persistedTouch(session)
      plan = { kind: 'keep', cookie: moves ? setCookie(config, session.id, session, secure) : null }
    }
    if (plan.kind !== 'none' && plan.cookie !== null && !res.headersSent) {
      ourCookie = plan.cookie
      appendSetCookie(res, ourCookie)
    }
    return plan
  }

  // The way on-headers does it: the caller's header argument is applied first, so a Set-Cookie
  // passed to writeHead cannot overwrite ours. Node's implicit headers (write/end without
  // writeHead) also go through res.writeHead, so this sees every response.
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, statusCode: number, reason?: unknown, headers?: unknown): ServerResponse {
    res.writeHead = writeHead
    const message = typeof reason === 'string' ? reason : undefined
    const given = message === undefined ? reason : headers
    if (!this.headersSent) {
      applyHeaders(this, given)
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
    let decided: Plan
    try {
      decided = decide()
    } catch (err) {
      config.logger.error('session cookie could not be set', { reason: String(err) })
      finish()
      return this
    }
    // Do not hand out an id the store does not hold: the client keeps the cookie it has.
    const withdraw = (): void => {
      if (ourCookie !== null && !res.headersSent) removeSetCookie(res, ourCookie)
    }
    persist(decided).then(
      (stored) => {
        if (!stored) withdraw()
        finish()
      },
      (err: unknown) => {
        config.logger.error('session write-back failed', { reason: String(err) })
        withdraw()
        finish()
      },
    )
    return this
  } as ServerResponse['end']

  /** False when the session is gone from the store (another request logged out, or it expired):
   *  then nothing of this request was written and its cookie must not go out. */
  async function persist(plan: Plan): Promise<boolean> {
    const { store, logger } = config
    // Logout wins over everything (a 'drop' plan always ends here), even when it came after the
    // headers went out: the id is then useless, whatever the cookie still says.
    if (session.invalidated) {
      if (!isNew) await store.delete(session.id)
      return true
    }
    if (session.needsNewId && plan.kind !== 'move') {
      // Login after the headers went out: the new id cannot reach the client, and saving the
      // login under the old id would reward a fixed id. Refuse it.
      logger.warn('session login after the response headers were sent was not saved')
      return true
    }
    if (plan.kind === 'move') {
      // Copy at the end, not at decide time: it carries every change the handler made.
      const moved = session.withId(plan.newId)
      if (!isSaved(await store.save(moved))) return false
      // The old id gone already: another request logged out meanwhile. The login must not
      // bring the session back under a new id.
      if (!isNew && !(await store.delete(session.id))) {
        await store.delete(plan.newId)
        return false
      }
      session.clearDirty()
      req.session = moved
      return true
    }
    if (plan.kind === 'none') {
      // Changed only after the headers went out: no cookie names it, so storing it would orphan it.
      if (session.dirty) logger.warn('new session changed after the response headers were sent was not saved')
      return true
    }
    if (session.dirty || (isNew && config.saveUninitialized)) return isSaved(await store.save(session))
    return true
  }
}

/** save() resolves true or false; a store written for 0.1 resolves undefined once it wrote. */
function isSaved(result: boolean | void): boolean {
  return result !== false
}

/** HTTPS as seen by this server, or by the proxy in front of it when trustProxy is set. */
function isHttps(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as { encrypted?: boolean } | null)?.encrypted === true) return true
  if (!trustProxy) return false
  const proto = req.headers['x-forwarded-proto']
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase()
  return first === 'https'
}

function baseAttributes(config: Config, secure: boolean): SerializeOptions {
  const attrs: SerializeOptions = { httpOnly: config.cookie.httpOnly, sameSite: config.cookie.sameSite, path: config.cookie.path, secure }
  if (config.cookie.domain !== undefined) attrs.domain = config.cookie.domain
  return attrs
}

/** Max-Age in whole seconds: the idle timeout (restarted by this request's touch), capped by what
 *  is left of the absolute lifetime. Rounded down so the cookie never outlives the session. */
function setCookie(config: Config, id: string, session: Session, secure: boolean): string {
  const { createdAt, ttl, maxAge } = session.meta
  const left = maxAge === undefined ? ttl : Math.min(ttl, createdAt + maxAge - Date.now())
  return serialize(config.cookieName, id, { ...baseAttributes(config, secure), maxAge: Math.max(0, Math.floor(left / 1000)), encode: RAW })
}

function clearCookie(config: Config, secure: boolean): string {
  return serialize(config.cookieName, '', { ...baseAttributes(config, secure), maxAge: 0, expires: new Date(0) })
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

function checkOptions(options: SessionMiddlewareOptions): Config {
  if (!isPlainObject(options as unknown)) throw new TypeError(`options must be a plain object, got ${describe(options)}`)
  // A misspelt option (cookiename, saveUnitialized) would otherwise be silently ignored.
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`options.${key} is not an option of sessionMiddleware`)
  }
  const store = options.store as unknown as Record<string, unknown> | null | undefined
  if (typeof store !== 'object' || store === null) throw new TypeError(`options.store must be a SessionStore, got ${describe(store)}`)
  for (const method of ['get', 'save', 'delete'] as const) {
    if (typeof store[method] !== 'function') throw new TypeError(`options.store.${method} must be a function (options.store must be a SessionStore)`)
  }

  const cookieName = options.cookieName ?? 'sid'
  if (typeof cookieName !== 'string') throw new TypeError(`options.cookieName must be a string, got ${describe(cookieName)}`)
  if (!COOKIE_NAME.test(cookieName)) throw new RangeError(`options.cookieName must be a cookie name (RFC 6265 token), got ${describe(cookieName)}`)

  const c = options.cookie ?? {}
  if (!isPlainObject(c as unknown)) throw new TypeError(`options.cookie must be a plain object, got ${describe(c)}`)
  for (const key of Object.keys(c)) {
    if (!COOKIE_KEYS.has(key)) throw new TypeError(`options.cookie.${key} is not a cookie option`)
  }
  const httpOnly = checkBoolean('options.cookie.httpOnly', c.httpOnly, true)
  const sameSite = c.sameSite ?? 'lax'
  if (typeof sameSite !== 'string') throw new TypeError(`options.cookie.sameSite must be a string, got ${describe(sameSite)}`)
  if (!['lax', 'strict', 'none'].includes(sameSite)) {
    throw new RangeError(`options.cookie.sameSite must be 'lax', 'strict' or 'none', got ${describe(sameSite)}`)
  }
  const secure = c.secure ?? 'auto'
  if (secure !== 'auto' && typeof secure !== 'boolean') throw new TypeError(`options.cookie.secure must be a boolean or 'auto', got ${describe(secure)}`)
  if (sameSite === 'none' && secure === false) {
    throw new RangeError("options.cookie.sameSite 'none' needs options.cookie.secure true or 'auto' (browsers drop it otherwise)")
  }
  const path = c.path ?? '/'
  if (typeof path !== 'string') throw new TypeError(`options.cookie.path must be a string, got ${describe(path)}`)
  if (!COOKIE_PATH.test(path)) throw new RangeError(`options.cookie.path must start with '/' and hold no ';' or control characters, got ${describe(path)}`)
  const domain = c.domain
  if (domain !== undefined) {
    if (typeof domain !== 'string') throw new TypeError(`options.cookie.domain must be a string, got ${describe(domain)}`)
    if (!COOKIE_DOMAIN.test(domain)) throw new RangeError(`options.cookie.domain must be a domain name, got ${describe(domain)}`)
  }

  const storeTtl = store.defaultTtl
  const ttl = options.ttl !== undefined ? checkTtl('options.ttl', options.ttl) : typeof storeTtl === 'number' ? storeTtl : DEFAULT_TTL
  // The store's absolute lifetime, where it tells: new sessions are built here, not by create().
  const maxAge = typeof store.maxAge === 'number' ? store.maxAge : undefined

  const cookie: Config['cookie'] = { httpOnly, sameSite: sameSite as Config['cookie']['sameSite'], secure, path }
  if (domain !== undefined) cookie.domain = domain
  return {
    store: options.store,
    cookieName,
    cookie,
    saveUninitialized: checkBoolean('options.saveUninitialized', options.saveUninitialized, false),
    rolling: checkBoolean('options.rolling', options.rolling, false),
    trustProxy: checkBoolean('options.trustProxy', options.trustProxy, false),
    ttl,
    maxAge,
    logger: checkLogger(options.logger),
  }
}

function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describe(value)}`)
  return value
}
