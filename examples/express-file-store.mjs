// sealed-session example: Express with sessionMiddleware and an encrypted file store.
//
//   node examples/express-file-store.mjs       (PORT, SESSION_SECRET and SESSION_DIR optional)
//
// GET / counts your visits; POST /login?name=NAME logs in (the session moves to a new id);
// POST /logout deletes the session and clears the cookie.
import express from 'express'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Avatar, FileSessionStore } from 'sealed-session'
import { sessionMiddleware } from 'sealed-session/middleware'

export async function start({
  port = 0,
  dir = path.join(os.tmpdir(), 'sealed-session-express-example'),
  secret = process.env.SESSION_SECRET,
} = {}) {
  if (!secret) throw new Error('set SESSION_SECRET (32+ characters)')
  const store = new FileSessionStore({ dir, secret })
  const app = express()
  app.use(sessionMiddleware({ store }))
  app.get('/', (req, res) => {
    const visits = req.session.data.get('visits', 0) + 1
    req.session.data.set('visits', visits)
    res.json({ visits, user: req.session.avatar.isAnonymous ? null : req.session.avatar.identity })
  })
  app.post('/login', (req, res) => {
    const name = String(req.query.name ?? '')
    if (!/^[\w.-]{1,64}$/.test(name)) return res.status(400).json({ error: 'name: 1 to 64 letters, digits, . _ -' })
    req.session.attachAvatar(new Avatar(name, ['user']))
    res.json({ user: name })
  })
  app.post('/logout', (req, res) => {
    req.session.invalidate()
    res.json({ user: null })
  })
  return listen(app, port, store)
}

async function listen(app, port, store) {
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
      await store.close()
    },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000), dir: process.env.SESSION_DIR })
  console.log(`listening on ${url}`)
}
