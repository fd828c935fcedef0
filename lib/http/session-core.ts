// The cookie-session logic every HTTP adapter shares (Connect/node:http middleware, Fastify,
// Web-standard fetch handlers); the adapters only move headers in and out of their framework.
//
// One request's life: open() reads the cookie, checks the id's form (no store I/O for a malformed
// one) and reconnects through store.get or starts a fresh in-memory session. decide() fixes, once
// and before headers leave, what the cookie must say. persist() then writes what the handler did.
//
// Login (session.attachAvatar): at write-back the contents move to a fresh id, the old id is
// deleted and the cookie carries the new id, so an id planted before login (fixation) is
// worthless. Logout (session.invalidate): the store entry is deleted and the cookie cleared.
//
// Concurrency: the store's save is a compare-and-swap that re-applies this request's own changes
// onto whatever other requests saved meanwhile, and resolves false when the session is gone. A
// false means another request logged out (or the session expired): nothing was written, and the
// response must not hand the cookie back, so persist() says false and the adapter withdraws it.
// The cookie's Max-Age is re-sent whenever the server-side expiry moves (a write-back, or a read
// that persisted its touch), so the browser's copy lives exactly as long as the stored session;
// such a refresh without a write-back first checks that the session still exists.
//
// Failure: a request that ends in an error (the adapter calls fail(): the handler threw, or the
// response is a 5xx) persists nothing and sends no new cookie; a logout in it is still carried
// out. A write-back that fails rejects persist(): the adapter turns it into an error response.
import { serialize, type SerializeOptions } from 'cookie'
import { generateSessionId, isValidSessionId } from '../core/ids'
import { isPlainObject } from '../core/json'
import { checkLogger, type Logger } from '../core/logger'
import { Session, clearDirty, persistedTouch } from '../session/session'
import { readSession } from '../stores/base-store'
import { DEFAULT_TTL, checkStoreOption, checkTtl, type SessionStore } from '../stores/store'
import { checkOptionKeys, describe } from '../core/validate'

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

/** The options of sessionMiddleware, the Fastify plugin and withSession alike. */
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
  /** Idle timeout of new sessions in ms. Default: the store's ttl, else 1 h. */
  ttl?: number
  /** Where write-back failures are reported. Default: silent, like the stores (no log line
   *  unless you ask for one); a failure before the handler still reaches the framework. */
  logger?: Logger
}

export interface SessionConfig {
  store: SessionStore
  cookieName: string
  cookie: {
    httpOnly: boolean
    sameSite: 'lax' | 'strict' | 'none'
    secure: boolean | 'auto'
    path: string
    domain?: string
  }
  saveUninitialized: boolean
  rolling: boolean
  trustProxy: boolean
  ttl: number
  maxAge: number | undefined
  logger: Logger
}

export type Plan =
  | { kind: 'none' } // read-only request of a new visitor: nothing to store, no cookie
  | { kind: 'discard' } // the request failed: nothing stored, no cookie
  | { kind: 'keep'; cookie: string | null } // save under the same id when dirty
  | { kind: 'move'; newId: string; cookie: string } // login: save under newId, delete the old id
  | { kind: 'drop'; cookie: string | null } // logout: delete, cookie cleared

// RFC 6265 token characters, the only ones a cookie name may hold.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// A path attribute cannot hold ';' or control characters (it would end or break the header).
const COOKIE_PATH = /^\/[\x20-\x3a\x3c-\x7e]*$/
const COOKIE_DOMAIN = /^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i
const OPTION_KEYS = new Set([
  'store',
  'cookieName',
  'cookie',
  'saveUninitialized',
  'rolling',
  'trustProxy',
  'ttl',
  'logger',
])
const COOKIE_KEYS = new Set(['httpOnly', 'sameSite', 'secure', 'path', 'domain'])
// Ids are base64url: nothing to decode, and no decoding means no second spelling of an id
// (cookieValue does not decode either).
const RAW = (value: string): string => value

/** One request's session, from the cookie that came in to the write-back. */
export class SessionExchange {
  /** The session the handler sees; after a login's write-back, the copy under the new id. */
  session: Session
  readonly isNew: boolean
  readonly hadCookie: boolean
  #plan: Plan | null = null
  #failed = false
  readonly #config: SessionConfig

  private constructor(config: SessionConfig, session: Session, isNew: boolean, hadCookie: boolean) {
    this.#config = config
    this.session = session
    this.isNew = isNew
    this.hadCookie = hadCookie
  }

  /** Reconnects to the cookie's session or starts a fresh one: synchronously when the store
   *  answered without waiting (see readSession). A store failure (not a missing session) rejects
   *  (or throws): the adapter reports it as an error, it does not hand out a new session. */
  static open(
    config: SessionConfig,
    cookieHeader: string | null | undefined,
  ): SessionExchange | Promise<SessionExchange> {
    const raw = typeof cookieHeader === 'string' ? cookieValue(cookieHeader, config.cookieName) : undefined
    // The id's form is checked before any I/O: a hostile cookie never reaches the store.
    const found = raw !== undefined && isValidSessionId(raw) ? readSession(config.store, raw) : null
    if (found instanceof Promise) return found.then((session) => SessionExchange.#start(config, session, raw))
    return SessionExchange.#start(config, found, raw)
  }

  static #start(config: SessionConfig, found: Session | null, raw: string | undefined): SessionExchange {
    const session = found ?? new Session(generateSessionId(), null, config.ttl, { maxAge: config.maxAge })
    return new SessionExchange(config, session, found === null, raw !== undefined)
  }

  /** The plan once decided, else null. */
  get plan(): Plan | null {
    return this.#plan
  }

  /** Marks the request as ended in an error (the handler threw, or the response is an error):
   *  nothing of it is persisted and no new cookie goes out, whatever the handler changed before
   *  failing (a login half done must not stick). A logout is still carried out. */
  fail(): void {
    this.#failed = true
  }

  /** What the cookie must say, decided once (before headers leave): later changes to the
   *  session can no longer change the cookie, so persist() checks what it may still do. */
  decide(secure: boolean): Plan {
    if (this.#plan !== null) return this.#plan
    const { session, isNew } = this
    const config = this.#config
    if (session.invalidated) {
      this.#plan = { kind: 'drop', cookie: this.hadCookie ? clearCookie(config, secure) : null }
    } else if (this.#failed) {
      this.#plan = { kind: 'discard' }
    } else if (session.needsNewId) {
      const newId = generateSessionId()
      this.#plan = { kind: 'move', newId, cookie: setCookie(config, newId, session, secure) }
    } else if (isNew) {
      const persist = session.dirty || config.saveUninitialized
      this.#plan = persist ? { kind: 'keep', cookie: setCookie(config, session.id, session, secure) } : { kind: 'none' }
    } else {
      // The stored expiry moves on a write-back and on a persisted touch: the cookie follows it.
      const moves = config.rolling || session.dirty || persistedTouch(session)
      this.#plan = { kind: 'keep', cookie: moves ? setCookie(config, session.id, session, secure) : null }
    }
    return this.#plan
  }

  /** The cookie to send, or null: decide(secure) first. */
  cookie(secure: boolean): string | null {
    const plan = this.decide(secure)
    return plan.kind === 'none' || plan.kind === 'discard' ? null : plan.cookie
  }

  /** cookie(secure) for a request that came over this server's own TLS (`encrypted`) or, with
   *  trustProxy, with this X-Forwarded-Proto: how every adapter decides the Secure flag. */
  cookieFor(encrypted: boolean, forwardedProto: string | string[] | null | undefined): string | null {
    return this.cookie(isSecureRequest(this.#config, encrypted, forwardedProto))
  }

  /** persist(), with a failure logged before it rejects (the adapter then answers with an error). */
  async writeBack(): Promise<boolean> {
    try {
      return await this.persist()
    } catch (err) {
      this.#config.logger.error('session write-back failed', { reason: String(err) })
      throw err
    }
  }

  /** Writes what the handler did, following the plan (decided now if it was not yet, as
   *  insecure: only a handler that sent nothing gets here without a plan). False when nothing of
   *  this request was written and its cookie must not go out: the session is gone from the store
   *  (another request logged out, or it expired), or the request failed. Rejects when the store
   *  fails: the adapter must then answer with an error, never a success. */
  async persist(): Promise<boolean> {
    const plan = this.#plan ?? this.decide(false)
    const { store, logger } = this.#config
    const { session, isNew } = this
    // Logout wins over everything (a 'drop' plan always ends here), even when it came after the
    // headers went out: the id is then useless, whatever the cookie still says.
    if (session.invalidated) {
      if (!isNew) await store.delete(session.id)
      return true
    }
    // Failed, possibly after the plan was made (the headers had left): still nothing written.
    if (this.#failed) return false
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
      // bring the session back under a new id. Nor may a failed delete leave the login stored
      // under an id no client will hold.
      let oldGone = true
      try {
        if (!isNew) oldGone = await store.delete(session.id)
      } catch (err) {
        await store.delete(plan.newId).catch(() => undefined)
        throw err
      }
      if (!oldGone) {
        await store.delete(plan.newId)
        return false
      }
      clearDirty(session)
      this.session = moved
      return true
    }
    if (plan.kind === 'none') {
      // Changed only after the headers went out: no cookie names it, so storing it would orphan it.
      if (session.dirty) logger.warn('new session changed after the response headers were sent was not saved')
      return true
    }
    if (session.dirty || (isNew && this.#config.saveUninitialized)) return isSaved(await store.save(session))
    // A cookie that only refreshes the expiry (rolling, or a persisted touch) goes out only while
    // the session exists: not after another request logged out during this one.
    if (plan.kind === 'keep' && plan.cookie !== null && !isNew) return this.#stillStored()
    return true
  }

  /** Whether the session still exists. A store that cannot tell withholds the refresh (the
   *  client keeps the cookie it has) rather than failing a request that wrote nothing. */
  async #stillStored(): Promise<boolean> {
    try {
      return (await readSession(this.#config.store, this.session.id)) !== null
    } catch (err) {
      this.#config.logger.warn('session cookie refresh skipped: the store could not be read', { reason: String(err) })
      return false
    }
  }

  /** The response ended without a write-back (its connection closed first, as when an error came
   *  after the headers left): a logout is still carried out, nothing else is written. */
  async abandon(): Promise<void> {
    if (this.session.invalidated && !this.isNew) await this.#config.store.delete(this.session.id)
  }
}

/**
 * The value of the first cookie named `name` in a Cookie header, exactly as cookie's parse()
 * (with no decoding) finds it: pairs split at ';', name and value trimmed of spaces and tabs, a
 * pair without '=' skipped. Only the one value is sliced out: no object of every cookie.
 */
export function cookieValue(header: string, name: string): string | undefined {
  const len = header.length
  let index = 0
  while (index < len) {
    const eq = header.indexOf('=', index)
    if (eq === -1) return undefined
    let end = header.indexOf(';', index)
    if (end === -1) end = len
    if (eq > end) {
      // This pair has no '=': the next one starts after its ';'.
      index = header.lastIndexOf(';', eq - 1) + 1
      continue
    }
    let start = index
    let stop = eq
    while (start < stop && isBlank(header.charCodeAt(start))) start++
    while (stop > start && isBlank(header.charCodeAt(stop - 1))) stop--
    if (stop - start === name.length && header.startsWith(name, start)) {
      let from = eq + 1
      let to = end
      while (from < to && isBlank(header.charCodeAt(from))) from++
      while (to > from && isBlank(header.charCodeAt(to - 1))) to--
      return header.slice(from, to)
    }
    index = end + 1
  }
  return undefined
}

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09
}

/** Whether a response status means the request failed: a 5xx, or 0 (a network error,
 *  `Response.error()`). */
export function isErrorStatus(status: number): boolean {
  return status >= 500 || status < 100
}

/** save() resolves true or false; a store written for 0.1 resolves undefined once it wrote. */
// biome-ignore lint/suspicious/noConfusingVoidType: what a Promise<void> save() resolves to
function isSaved(result: boolean | void): boolean {
  return result !== false
}

/** Whether a node:http request's socket is this server's own TLS. */
export function isTlsSocket(socket: unknown): boolean {
  return (socket as { encrypted?: boolean } | null)?.encrypted === true
}

/** Whether the request came over HTTPS: `encrypted` for this server's own TLS, else the
 *  first X-Forwarded-Proto, believed only with trustProxy. */
function isSecureRequest(
  config: SessionConfig,
  encrypted: boolean,
  forwardedProto: string | string[] | null | undefined,
): boolean {
  if (config.cookie.secure !== 'auto') return config.cookie.secure
  if (encrypted) return true
  if (!config.trustProxy) return false
  const first = (Array.isArray(forwardedProto) ? forwardedProto[0] : forwardedProto)
    ?.split(',')[0]
    ?.trim()
    .toLowerCase()
  return first === 'https'
}

function baseAttributes(config: SessionConfig, secure: boolean): SerializeOptions {
  const attrs: SerializeOptions = {
    httpOnly: config.cookie.httpOnly,
    sameSite: config.cookie.sameSite,
    path: config.cookie.path,
    secure,
  }
  if (config.cookie.domain !== undefined) attrs.domain = config.cookie.domain
  return attrs
}

/** Max-Age in whole seconds: the idle timeout (restarted by this request's touch), capped by what
 *  is left of the absolute lifetime. Rounded down so the cookie never outlives the session. */
function setCookie(config: SessionConfig, id: string, session: Session, secure: boolean): string {
  const { createdAt, ttl, maxAge } = session.meta
  const left = maxAge === undefined ? ttl : Math.min(ttl, createdAt + maxAge - Date.now())
  return serialize(config.cookieName, id, {
    ...baseAttributes(config, secure),
    maxAge: Math.max(0, Math.floor(left / 1000)),
    encode: RAW,
  })
}

function clearCookie(config: SessionConfig, secure: boolean): string {
  return serialize(config.cookieName, '', { ...baseAttributes(config, secure), maxAge: 0, expires: new Date(0) })
}

/** Validates the options of `owner` (sessionMiddleware, sealedSession, withSession). */
export function checkSessionOptions(options: SessionMiddlewareOptions, owner: string): SessionConfig {
  if (!isPlainObject(options as unknown))
    throw new TypeError(`options must be a plain object, got ${describe(options)}`)
  checkOptionKeys(options, OPTION_KEYS, owner)
  const store = checkStoreOption(options.store, ['get', 'save', 'delete'])

  const cookieName = options.cookieName ?? 'sid'
  if (typeof cookieName !== 'string')
    throw new TypeError(`options.cookieName must be a string, got ${describe(cookieName)}`)
  if (!COOKIE_NAME.test(cookieName))
    throw new RangeError(`options.cookieName must be a cookie name (RFC 6265 token), got ${describe(cookieName)}`)

  const c = options.cookie ?? {}
  if (!isPlainObject(c as unknown)) throw new TypeError(`options.cookie must be a plain object, got ${describe(c)}`)
  for (const key of Object.keys(c)) {
    if (!COOKIE_KEYS.has(key)) throw new TypeError(`options.cookie.${key} is not a cookie option`)
  }
  const httpOnly = checkBoolean('options.cookie.httpOnly', c.httpOnly, true)
  const sameSite = c.sameSite ?? 'lax'
  if (typeof sameSite !== 'string')
    throw new TypeError(`options.cookie.sameSite must be a string, got ${describe(sameSite)}`)
  if (!['lax', 'strict', 'none'].includes(sameSite)) {
    throw new RangeError(`options.cookie.sameSite must be 'lax', 'strict' or 'none', got ${describe(sameSite)}`)
  }
  const secure = c.secure ?? 'auto'
  if (secure !== 'auto' && typeof secure !== 'boolean')
    throw new TypeError(`options.cookie.secure must be a boolean or 'auto', got ${describe(secure)}`)
  if (sameSite === 'none' && secure === false) {
    throw new RangeError(
      "options.cookie.sameSite 'none' needs options.cookie.secure true or 'auto' (browsers drop it otherwise)",
    )
  }
  const path = c.path ?? '/'
  if (typeof path !== 'string') throw new TypeError(`options.cookie.path must be a string, got ${describe(path)}`)
  if (!COOKIE_PATH.test(path))
    throw new RangeError(
      `options.cookie.path must start with '/' and hold no ';' or control characters, got ${describe(path)}`,
    )
  const domain = c.domain
  if (domain !== undefined) {
    if (typeof domain !== 'string')
      throw new TypeError(`options.cookie.domain must be a string, got ${describe(domain)}`)
    if (!COOKIE_DOMAIN.test(domain))
      throw new RangeError(`options.cookie.domain must be a domain name, got ${describe(domain)}`)
  }

  // A store's lifetime (`ttl`; `defaultTtl` on stores of 0.1 and look-alikes).
  const storeTtl = typeof store.ttl === 'number' ? store.ttl : store.defaultTtl
  const ttl =
    options.ttl !== undefined
      ? checkTtl('options.ttl', options.ttl)
      : typeof storeTtl === 'number'
        ? storeTtl
        : DEFAULT_TTL
  // The store's absolute lifetime, where it tells: new sessions are built here, not by create().
  const maxAge = typeof store.maxAge === 'number' ? store.maxAge : undefined

  const cookie: SessionConfig['cookie'] = {
    httpOnly,
    sameSite: sameSite as SessionConfig['cookie']['sameSite'],
    secure,
    path,
  }
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
