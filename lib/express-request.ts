// `sealed-session/middleware`: sessionMiddleware for Express and Connect, with `req.session`
// typed in every Express route once this entry is imported (no casts).
//
// The type goes on express-serve-static-core's Request, not on the global Express.Request that
// @types/express-session augments: two declarations of one global property must be identical,
// so declaring ours there would clash whenever @types/express-session is in the program. Here,
// when it is, req.session is our Session together with express-session's own type.
import type { Session, SessionShape } from './session/session'

export {
  sessionMiddleware,
  type SessionMiddleware,
  type SessionMiddlewareOptions,
  type SessionCookieOptions,
  type SessionRequest,
  type NextFunction,
} from './http/middleware'

/** req.session's type in Express routes: our Session, and express-session's when its types are
 *  in the program too. */
export type ExpressRequestSession = Express.Request extends { session: infer Theirs }
  ? Session<SessionShape> & Theirs
  : Session<SessionShape>

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by sessionMiddleware (sealed-session). */
    session: ExpressRequestSession
  }
}
