// sealed-session example: an existing express-session app, its sessions now sealed on disk.
//
//   node examples/express-session.mjs   (COOKIE_SECRET and SESSION_SECRET needed; PORT optional)
//
// Nothing changes in the routes: req.session is express-session's. Only the store is ours.
import express from 'express'
import session from 'express-session'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { FileSessionStore } from 'sealed-session'
import { ExpressSessionStore } from 'sealed-session/express-session'

export async function start({
  port = 0,
  dir = path.join(os.tmpdir(), 'sealed-session-express-session-example'),
  secret = process.env.SESSION_SECRET,
  cookieSecret = process.env.COOKIE_SECRET,
} = {}) {
  if (!secret || !cookieSecret) throw new Error('set SESSION_SECRET (32+ characters) and COOKIE_SECRET')
  const files = new FileSessionStore({ dir, secret })
  const app = express()
  app.use(
    session({
      secret: cookieSecret,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: 3_600_000 },
      store: new ExpressSessionStore({ store: files }),
    }),
  )
  app.get('/', (req, res) => {
    req.session.visits = (req.session.visits ?? 0) + 1
    res.json({ visits: req.session.visits, user: req.session.user ?? null })
  })
  app.post('/login', (req, res, next) => {
    const name = String(req.query.name ?? '')
    if (!/^[\w.-]{1,64}$/.test(name)) return res.status(400).json({ error: 'name: 1 to 64 letters, digits, . _ -' })
    // express-session's own fixation defence: a new id, then the login.
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.user = name
      res.json({ user: name })
    })
  })
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.clearCookie('connect.sid').json({ user: null })))
  })
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(port, '127.0.0.1', (err) => (err ? reject(err) : resolve(s)))
  })
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: async () => {
      await new Promise((resolve) => {
        server.close(resolve)
        server.closeAllConnections()
      })
      await files.close()
    },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000), dir: process.env.SESSION_DIR })
  console.log(`listening on ${url}`)
}
