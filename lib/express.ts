// Entry point `sealed-session/express`: the old name of `sealed-session/express-session`, kept as
// a deprecated alias (same objects, so either import gives the same class).
export {
  /** @deprecated Import from `sealed-session/express-session`. */
  ExpressSessionStore,
  /** @deprecated Import from `sealed-session/express-session`. */
  type ExpressSessionStoreOptions,
  /** @deprecated Import from `sealed-session/express-session`. */
  expressId,
} from './http/express'
